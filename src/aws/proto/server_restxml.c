/* Protocol rest-xml, the server side (Route 53, S3): requests routed to their operation and read
 * back into params, responses and error documents as Route 53 writes them.
 *
 * Requests: the operation is the one whose http.method is the request's and whose
 * requestUri template matches the path ({Label} is one non-empty path segment, {Label+} one
 * or more) and whose literal query part ("?tagging", "?a=b") the query string has; when
 * several match, the one with the most literal characters wins ("/hostedzone/{Id}/rrset"
 * over "/hostedzone/{Id}"). Members come from the URI labels (percent-decoded), the query
 * string (named members; a querystring map takes the parameters no named member took),
 * headers (a single header, or every header with a prefix for a "headers" map; the request
 * headers are lower-case, so such a map's keys are too), and the body: the payload member
 * (raw for a blob or string, else the XML document read as that member) or the XML document
 * read as the input structure (xml_shape.c). Errors:
 *   InvalidAction 404  no operation matches the method and path (Route 53 documents no
 *                      code for this; InvalidAction is the common error for an action that
 *                      does not exist, 404 because nothing lives at that URI)
 *   InvalidInput 400   a body that is not XML, or a value that does not fit its shape
 *                      (what Route 53 answers for XML that breaks its schema)
 *
 * Responses: status http.responseCode (or 200; a statusCode member overrides it); header
 * members (timestamps in RFC 822 unless the model says otherwise; a "headers" map as
 * prefix + key); the body is the payload member (raw, or its XML element) or the output's
 * body members under the root element named by the output's locationName, else
 * "<Operation>Response", with the service namespace: the output's xmlNamespace, else the
 * model's, else the one its requests use (an input's xmlNamespace: Route 53's models
 * declare it there only). An output without body members still gets its (empty) root
 * element, as Route 53 answers <ChangeTagsForResourceResponse/>. Headers: Content-Type
 * text/xml, x-amzn-RequestId (Route 53's request id header; fo's parse_error and botocore
 * also read x-amz-request-id, S3's).
 * Errors: <ErrorResponse xmlns=ns><Error><Type/><Code/><Message/>fields</Error>
 * <RequestId/></ErrorResponse>. */
#include "fo/xml.h"
#include "server.h"
#include "xmlshape.h"

#include <lauxlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LABELS 16

/* ---- routing */

typedef struct label {
    const char *name; /* into the template (not terminated) */
    size_t name_len;
    const char *value; /* into the path */
    size_t value_len;
} label;

typedef struct match {
    label labels[MAX_LABELS];
    int count;
} match;

/* Does the template t[0..tn) match the path p[0..pn)? Fills m's labels. Backtracks for
 * greedy labels only ({X} stops at the next '/'). */
static int match_path(const char *t, size_t tn, const char *p, size_t pn, match *m)
{
    while (tn > 0 && *t != '{') {
        if (pn == 0 || *t != *p)
            return 0;
        t++, tn--, p++, pn--;
    }
    if (tn == 0)
        return pn == 0;
    const char *close = memchr(t, '}', tn);
    if (!close || m->count >= MAX_LABELS)
        return 0;
    size_t len = (size_t)(close - t - 1);
    int greedy = len > 0 && t[len] == '+';
    label *l = &m->labels[m->count];
    l->name = t + 1;
    l->name_len = greedy ? len - 1 : len;
    const char *rest = close + 1;
    size_t rest_n = tn - (size_t)(rest - t);
    size_t max = 0;
    while (max < pn && (greedy || p[max] != '/'))
        max++;
    for (size_t take = max; take >= 1; take--) {
        l->value = p;
        l->value_len = take;
        m->count++;
        if (match_path(rest, rest_n, p + take, pn - take, m))
            return 1;
        m->count--;
        if (!greedy)
            break; /* a segment label takes the whole segment */
    }
    return 0;
}

/* Is every literal query part of the template ("a&b=c") in the query string? */
static int match_query(lua_State *L, const char *lit, int query)
{
    while (lit && *lit) {
        const char *amp = strchr(lit, '&');
        size_t n = amp ? (size_t)(amp - lit) : strlen(lit);
        const char *eq = memchr(lit, '=', n);
        size_t kn = eq ? (size_t)(eq - lit) : n;
        lua_pushlstring(L, lit, kn);
        int found = lua_rawget(L, query) == LUA_TTABLE;
        if (found && eq) { /* the value must be one of the parameter's */
            lua_rawgeti(L, -1, 1);
            found = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == n - kn - 1 &&
                    memcmp(lua_tostring(L, -1), eq + 1, n - kn - 1) == 0;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (!found)
            return 0;
        lit = amp ? amp + 1 : NULL;
    }
    return 1;
}

/* The query string parsed into name → array of values (percent-decoded, '+' a space). */
static void parse_query(lua_State *L, int req)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_getfield(L, req, "query");
    size_t n = 0;
    const char *s = lua_tolstring(L, -1, &n);
    fo_buf *k = fo_buf_new(L), *v = fo_buf_new(L);
    size_t pos = 0;
    int rc;
    while (s && (rc = fo_form_pair(L, s, n, &pos, k, v)) != 0) {
        if (rc < 0)
            fo_request_error(L, 400, "InvalidInput", "the query string has a bad %%-escape");
        if (k->len == 0)
            continue;
        fo_buf_push(L, k);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, out) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, out);
        }
        fo_buf_push(L, v);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 2);
    }
    lua_settop(L, out);
}

/* Finds the operation for the request; fills op and *m. `query` is the parsed query. */
static void route(lua_State *L, fo_op *op, int req, int query, match *m)
{
    const char *method = fo_field_str(L, req, "method");
    size_t plen = 0;
    lua_getfield(L, req, "path");
    const char *path = lua_tolstring(L, -1, &plen);
    lua_pop(L, 1); /* anchored by req */
    if (!method || !path)
        luaL_error(L, "fo.awsproto.parse_request: the request needs a method and a path");
    lua_getfield(L, op->model, "operations");
    int ops = lua_gettop(L);
    /* S3 answers several operations at one method and URI (PutObject, UploadPart, CopyObject
     * at PUT /{Bucket}/{Key+}) and tells them apart by query parameters and headers the
     * model does not put in requestUri: the caller names the operation then (req.operation),
     * and only its template is matched. */
    const char *only = fo_field_str(L, req, "operation");
    const char **names;
    size_t n = fo_keys(L, ops, 0, &names);
    long best = -1;
    const char *best_name = NULL;
    for (size_t i = 0; i < n && n != (size_t)-1; i++) {
        lua_getfield(L, ops, names[i]);
        const char *m_method = NULL, *uri = NULL;
        if (lua_istable(L, -1) && lua_getfield(L, -1, "http") == LUA_TTABLE) {
            m_method = fo_field_str(L, -1, "method");
            uri = fo_field_str(L, -1, "requestUri");
        }
        lua_settop(L, ops + 1);
        if (!m_method || !uri || strcmp(m_method, method) != 0 ||
            (only && strcmp(only, names[i]) != 0))
            continue;
        const char *q = strchr(uri, '?');
        size_t tn = q ? (size_t)(q - uri) : strlen(uri);
        match cand = {.count = 0};
        if (!match_path(uri, tn, path, plen, &cand) || !match_query(L, q ? q + 1 : NULL, query))
            continue;
        long score = (long)strlen(uri);
        for (int k = 0; k < cand.count; k++)
            score -= (long)cand.labels[k].name_len + 2;
        if (score > best) {
            best = score;
            best_name = names[i];
            *m = cand;
        }
    }
    if (!best_name)
        fo_request_error(L, 404, "InvalidAction", "No operation of %s answers %s %s", op->service,
                         method, path);
    lua_getfield(L, ops, best_name);
    fo_op_bind(L, op, best_name); /* the name is anchored by the operations table */
}

/* ---- members */

/* The header `name` of the request (any case), or NULL. */
static const char *header(lua_State *L, int req, const char *name)
{
    return fo_resp_header(L, req, name);
}

/* out[member] for a header-map member: every header starting with prefix. */
static void header_map(lua_State *L, const fo_op *op, int req, int shape, const char *prefix,
                       int out, const char *member)
{
    int top = lua_gettop(L);
    size_t plen = strlen(prefix);
    lua_newtable(L);
    int map = top + 1;
    lua_getfield(L, shape, "value");
    int vref = top + 2;
    fo_shape_push(L, op->shapes, vref);
    if (lua_getfield(L, req, "headers") == LUA_TTABLE) {
        int headers = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, headers)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (k && lua_type(L, -1) == LUA_TSTRING && strlen(k) > plen &&
                strncasecmp(k, prefix, plen) == 0) {
                size_t len;
                const char *text = lua_tolstring(L, -1, &len);
                fo_restxml_header_value(L, op, vref, vref + 1, text, len);
                lua_setfield(L, map, k + plen);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, map);
    lua_pushnil(L);
    if (lua_next(L, map)) { /* no such headers: the member is absent */
        lua_settop(L, map);
        lua_setfield(L, out, member);
    }
    lua_settop(L, top);
}

/* out[member] for a querystring member: a list takes every value, a scalar the first. */
static void query_member(lua_State *L, const fo_op *op, int query, int ref, int shape,
                         const char *key, int out, const char *member)
{
    int top = lua_gettop(L);
    if (lua_getfield(L, query, key) != LUA_TTABLE) {
        lua_settop(L, top);
        return;
    }
    int values = top + 1;
    const char *type = fo_field_str(L, shape, "type");
    if (type && strcmp(type, "list") == 0) {
        lua_newtable(L);
        lua_getfield(L, shape, "member");
        fo_shape_push(L, op->shapes, top + 3);
        lua_Integer n = (lua_Integer)lua_rawlen(L, values);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, values, i);
            size_t len;
            const char *text = lua_tolstring(L, -1, &len);
            fo_xml_scalar(L, op, top + 3, top + 4, text, len);
            lua_rawseti(L, top + 2, i);
            lua_pop(L, 1);
        }
        lua_pushvalue(L, top + 2);
    } else {
        lua_rawgeti(L, values, 1);
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        fo_restxml_header_value(L, op, ref, shape, text, len);
    }
    lua_setfield(L, out, member);
    lua_settop(L, top);
}

/* out[member] for a querystring map: the parameters no named member took. */
static void query_map(lua_State *L, const fo_op *op, int query, int shape, int named, int out,
                      const char *member)
{
    int top = lua_gettop(L);
    lua_newtable(L);
    int map = top + 1;
    lua_getfield(L, shape, "value");
    fo_shape_push(L, op->shapes, top + 2);
    int vshape = top + 3;
    const char *vtype = fo_field_str(L, vshape, "type");
    int lists = vtype && strcmp(vtype, "list") == 0;
    int any = 0;
    lua_pushnil(L);
    while (lua_next(L, query)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, named) != LUA_TNIL || lua_type(L, -3) != LUA_TSTRING) {
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        if (lists) {
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, map);
        } else {
            lua_rawgeti(L, -1, 1);
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, map);
        }
        any = 1;
        lua_pop(L, 1);
    }
    if (any) {
        lua_pushvalue(L, map);
        lua_setfield(L, out, member);
    }
    lua_settop(L, top);
}

/* The located members of the input: labels, query string, headers. */
static void read_located(lua_State *L, const fo_op *op, int req, int query, const match *m,
                         int shape, int out)
{
    int top = lua_gettop(L), members = top + 1, named = top + 2; /* query keys of named members */
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {       /* no members */
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_newtable(L);
    for (int pass = 0; pass < 2; pass++) {
        lua_pushnil(L);
        while (fo_next_member(L, op->shapes, members)) {
            int ref = lua_gettop(L) - 1, mshape = ref + 1;
            const char *member = lua_tostring(L, ref - 1);
            const char *loc = fo_trait_str(L, ref, mshape, "location");
            const char *name = fo_trait_str(L, ref, mshape, "locationName");
            const char *key = name ? name : member;
            const char *type = fo_field_str(L, mshape, "type");
            int is_map = type && strcmp(type, "map") == 0;
            if (!loc) {
                /* body */
            } else if (strcmp(loc, "querystring") == 0) {
                if (pass == 0 && !is_map) {
                    query_member(L, op, query, ref, mshape, key, out, member);
                    lua_pushboolean(L, 1);
                    lua_setfield(L, named, key);
                } else if (pass == 1 && is_map) {
                    query_map(L, op, query, mshape, named, out, member);
                }
            } else if (pass == 1) {
                /* the rest in the first pass */
            } else if (strcmp(loc, "uri") == 0) {
                for (int i = 0; i < m->count; i++) {
                    if (m->labels[i].name_len != strlen(key) ||
                        memcmp(m->labels[i].name, key, m->labels[i].name_len) != 0)
                        continue;
                    fo_buf *b = fo_buf_new(L);
                    if (fo_uri_decode(L, b, m->labels[i].value, m->labels[i].value_len, 0) != 0)
                        fo_request_error(L, 400, "InvalidInput", "the path has a bad %%-escape");
                    fo_restxml_header_value(L, op, ref, mshape, b->data, b->len);
                    lua_setfield(L, out, member);
                }
            } else if (strcmp(loc, "header") == 0) {
                const char *text = header(L, req, key);
                if (text) {
                    fo_restxml_header_value(L, op, ref, mshape, text, strlen(text));
                    lua_setfield(L, out, member);
                }
            } else if (strcmp(loc, "headers") == 0) {
                header_map(L, op, req, mshape, name ? name : "", out, member);
            }
            lua_settop(L, ref);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
}

void fo_restxml_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx)
{
    parse_query(L, req);
    int query = lua_gettop(L);
    match m = {.count = 0};
    route(L, op, req, query, &m);
    lua_newtable(L);
    int out = lua_gettop(L);
    if (!op->input)
        return;
    fo_shape_push(L, op->shapes, op->input);
    int shape = lua_gettop(L);
    lua_getfield(L, req, "body");
    size_t len = 0;
    const char *body = lua_tolstring(L, -1, &len);
    ctx->code = "InvalidInput";
    ctx->status = 400;
    ctx->what = "invalid request body";
    fo_restxml_body(L, op, shape, body, len, out);
    ctx->what = "invalid request";
    read_located(L, op, req, query, &m, shape, out);
    ctx->code = NULL;
    lua_settop(L, out);
}

/* ---- responses */

/* The service namespace (see the header comment), or NULL. */
static const char *xml_namespace(lua_State *L, const fo_op *op, int ref, int shape)
{
    const char *prefix, *uri = fo_xml_namespace(L, ref, shape, &prefix);
    if (!uri) {
        lua_getfield(L, op->model, "metadata");
        uri = lua_istable(L, -1) ? fo_field_str(L, -1, "xmlNamespace") : NULL;
        lua_pop(L, 1);
    }
    if (!uri) { /* the first input that declares one, in name order */
        lua_getfield(L, op->model, "operations");
        int ops = lua_gettop(L);
        const char **names;
        size_t n = fo_keys(L, ops, 0, &names);
        for (size_t i = 0; i < n && n != (size_t)-1 && !uri; i++) {
            if (lua_getfield(L, ops, names[i]) == LUA_TTABLE &&
                lua_getfield(L, -1, "input") == LUA_TTABLE)
                uri = fo_xml_namespace(L, lua_gettop(L), 0, &prefix);
            lua_settop(L, ops + 1);
        }
        lua_settop(L, ops - 1); /* the string stays referenced by the model */
    }
    return uri;
}

/* The root element of the body: <name xmlns=...>members</name> for the structure value. */
static void write_root(fo_xw *w, const char *name, int ref, int shape, int value)
{
    lua_State *L = w->L;
    fo_xml_root(L, w->b, name, xml_namespace(L, w->op, ref, shape));
    fo_xw_attributes(w, shape, value);
    fo_buf_addc(L, w->b, '>');
    fo_xw_members(w, shape, value);
    fo_buf_adds(L, w->b, "</");
    fo_buf_adds(L, w->b, name);
    fo_buf_addc(L, w->b, '>');
}

/* The text of a header member's value (lists comma-joined). */
static void header_text(fo_xw *w, fo_buf *out, int ref, int shape, int value)
{
    lua_State *L = w->L;
    const char *type = fo_field_str(L, shape, "type");
    if (type && strcmp(type, "list") == 0) {
        if (!lua_istable(L, value))
            fo_xw_fail(w, "expected a list, got %s", luaL_typename(L, value));
        lua_getfield(L, shape, "member");
        int iref = lua_gettop(L);
        fo_shape_push(L, w->op->shapes, iref);
        lua_Integer n = (lua_Integer)lua_rawlen(L, value);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1)
                fo_buf_addc(L, out, ',');
            lua_rawgeti(L, value, i);
            fo_xw_scalar_text(w, out, iref, iref + 1, lua_gettop(L), FO_TS_RFC822);
            lua_pop(L, 1);
        }
        lua_pop(L, 2);
    } else if (fo_trait_bool(L, ref, shape, "jsonvalue")) {
        lua_getglobal(L, "require");
        lua_pushliteral(L, "cjson");
        lua_call(L, 1, 1);
        lua_getfield(L, -1, "encode");
        lua_pushvalue(L, value);
        lua_call(L, 1, 1);
        size_t n;
        const char *json = lua_tolstring(L, -1, &n);
        fo_b64_encode(L, out, (const unsigned char *)json, n);
        lua_pop(L, 2);
    } else {
        fo_xw_scalar_text(w, out, ref, shape, value, FO_TS_RFC822);
    }
}

/* Pushes prefix .. name in lower case (response header names are lower-case). */
static void push_lower(lua_State *L, const char *prefix, const char *name)
{
    lua_pushfstring(L, "%s%s", prefix, name);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    fo_buf *b = fo_buf_new(L);
    for (size_t i = 0; i < n; i++)
        fo_buf_addc(L, b, s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i]);
    fo_buf_push(L, b);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Header and status members of the output: sets headers[...] and *status. */
static void write_located(fo_xw *w, int shape, int output, int headers, int *status)
{
    lua_State *L = w->L;
    int top = lua_gettop(L), members = top + 1;
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) { /* no members */
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_pushnil(L);
    while (fo_next_member(L, w->op->shapes, members)) {
        int ref = lua_gettop(L) - 1, mshape = ref + 1;
        const char *member = lua_tostring(L, ref - 1);
        const char *loc = fo_trait_str(L, ref, mshape, "location");
        const char *name = fo_trait_str(L, ref, mshape, "locationName");
        lua_getfield(L, output, member);
        int v = ref + 2;
        if (loc && !lua_isnil(L, v)) {
            size_t mark = w->path->len;
            fo_buf_adds(L, w->path, member);
            if (strcmp(loc, "statusCode") == 0) {
                if (!lua_isinteger(L, v))
                    fo_xw_fail(w, "expected an integer (HTTP status), got %s", luaL_typename(L, v));
                *status = (int)lua_tointeger(L, v);
            } else if (strcmp(loc, "header") == 0) {
                push_lower(L, name ? name : member, "");
                fo_buf *text = fo_buf_new(L);
                header_text(w, text, ref, mshape, v);
                fo_buf_push(L, text);
                lua_remove(L, -2);
                lua_settable(L, headers);
            } else if (strcmp(loc, "headers") == 0) {
                lua_getfield(L, mshape, "value");
                int vref = lua_gettop(L);
                fo_shape_push(L, w->op->shapes, vref);
                lua_pushnil(L);
                while (lua_next(L, v)) {
                    if (lua_type(L, -2) != LUA_TSTRING)
                        fo_xw_fail(w, "expected a map with string keys");
                    push_lower(L, name ? name : "", lua_tostring(L, -2));
                    fo_buf *text = fo_buf_new(L);
                    header_text(w, text, vref, vref + 1, lua_gettop(L) - 2);
                    fo_buf_push(L, text);
                    lua_remove(L, -2);
                    lua_settable(L, headers);
                    lua_pop(L, 1);
                }
            }
            w->path->len = mark;
        }
        lua_settop(L, ref - 1);
    }
    lua_settop(L, top);
}

void fo_restxml_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid)
{
    int top = lua_gettop(L);
    fo_xw w;
    fo_xw_init(&w, L, op, 0);
    int status = 200;
    if (lua_getfield(L, op->op, "http") == LUA_TTABLE)
        status = (int)fo_field_num(L, lua_gettop(L), "responseCode", 200);
    lua_pop(L, 1);
    lua_newtable(L);
    int headers = lua_gettop(L);
    int has_body = 0;
    if (op->output) {
        if (!lua_istable(L, output))
            luaL_error(L, "%s.%s (output): expected a table, got %s", op->service, op->name,
                       luaL_typename(L, output));
        fo_shape_push(L, op->shapes, op->output);
        int shape = lua_gettop(L);
        write_located(&w, shape, output, headers, &status);
        const char *payload = fo_field_str(L, shape, "payload");
        if (payload) {
            lua_getfield(L, shape, "members");
            lua_getfield(L, -1, payload);
            int pref = lua_gettop(L);
            fo_shape_push(L, op->shapes, pref);
            int pshape = pref + 1;
            lua_getfield(L, output, payload);
            int v = pref + 2;
            const char *type = fo_field_str(L, pshape, "type");
            if (lua_isnil(L, v)) {
                /* no body */
            } else if (type && (strcmp(type, "string") == 0 || strcmp(type, "blob") == 0)) {
                if (lua_type(L, v) != LUA_TSTRING)
                    luaL_error(L, "%s.%s (output): %s: expected a string, got %s", op->service,
                               op->name, payload, luaL_typename(L, v));
                size_t n;
                const char *p = lua_tolstring(L, v, &n);
                fo_buf_add(L, w.b, p, n);
            } else {
                const char *root = fo_trait_str(L, pref, pshape, "locationName");
                if (!root)
                    root = fo_field_str(L, pref, "shape");
                write_root(&w, root, pref, pshape, v);
                has_body = 1;
            }
        } else {
            const char *root = fo_trait_str(L, op->output, shape, "locationName");
            if (!root) {
                lua_pushfstring(L, "%sResponse", op->name);
                root = lua_tostring(L, -1);
            }
            write_root(&w, root, op->output, shape, output);
            has_body = 1;
        }
    }
    fo_buf_push(L, w.b);
    fo_response_new(L, status, has_body ? "text/xml" : NULL, rid);
    lua_getfield(L, -1, "headers");
    lua_pushnil(L);
    while (lua_next(L, headers)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_pop(L, 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

void fo_restxml_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid)
{
    int top = lua_gettop(L);
    fo_err_info e;
    fo_err_info_get(L, err, &e);
    fo_xw w;
    fo_xw_init(&w, L, op, 0);
    fo_xml_error_response(&w, &e, xml_namespace(L, op, 0, 0), rid);
    fo_buf_push(L, w.b);
    fo_response_new(L, e.status, "text/xml", rid);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}
