/* Protocols ec2 and query, the server side: form requests read back into params, XML
 * responses and error documents written as AWS writes them (the client side is query.c).
 *
 * Requests: the pairs of the query string and of the form body (the body wins) are
 * percent-decoded into a table; Action names the operation and Version must be the model's
 * apiVersion. The params are then read along the input shape with query.c's naming rules
 * (structures Prefix.Member; lists query Name.member.N or flattened Name.N, ec2 Name.N;
 * maps Name.entry.N.key/value; ec2 names from queryName or the capitalized locationName);
 * "Name=" is an empty list (query), an ec2 empty list is simply absent. Scalars: booleans
 * true/false, integers, floats (NaN, Infinity), timestamps (ISO 8601 or epoch) as seconds,
 * blobs from base64.
 *
 * Errors, with the codes of AWS's common errors (docs.aws.amazon.com, "Common Errors" of
 * the query APIs; EC2's error codes):
 *   MissingAction 400          no Action
 *   InvalidAction 400          an Action the model does not have, or a Version other than
 *                              the model's ("Could not find operation X for version Y", as
 *                              the query services answer; the sim speaks one API version)
 *   MissingParameter 400       no Version
 *   MalformedQueryString 404   a bad percent escape in the query string or body
 *   InvalidParameterValue 400  a value that does not fit its shape (not a number, ...)
 *   UnknownParameter 400       (ec2 only) a parameter the operation does not have: EC2
 *                              refuses them; the query services ignore them, and so does this
 *                              reader (the auth parameters of presigned requests included).
 * Missing required members and range/enum violations are the validator's (proto.validate),
 * not the reader's.
 *
 * Responses: Content-Type text/xml (ec2: text/xml;charset=UTF-8), x-amzn-requestid;
 *   query  <OpResponse xmlns=ns><OpResult>members</OpResult>
 *          <ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></OpResponse>
 *          (the result element is the output's resultWrapper; without one the members go
 *          straight under the root, where botocore then looks for them)
 *   ec2    <OpResponse xmlns=ns><requestId>id</requestId>members</OpResponse>; an operation
 *          without output answers <return>true</return>, as EC2 does
 * Errors: query <ErrorResponse xmlns=ns><Error><Type/><Code/><Message/>fields</Error>
 *         <RequestId/></ErrorResponse>; ec2 <Response><Errors><Error><Code/><Message/>
 *         </Error></Errors><RequestID/></Response>. ns is metadata.xmlNamespace (EC2's
 *         model spells it without the final '/', which EC2's answers have). */
#include "server.h"
#include "xmlshape.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

/* ---- reading the form */

/* Adds the pairs of the form text s[0..n) to the table at `form`. */
static void read_pairs(lua_State *L, int form, const char *s, size_t n)
{
    fo_buf *k = fo_buf_new(L), *v = fo_buf_new(L);
    size_t pos = 0;
    int rc;
    while ((rc = fo_form_pair(L, s, n, &pos, k, v)) != 0) {
        if (rc < 0)
            fo_request_error(L, 404, "MalformedQueryString",
                             "The query string contains a syntax error: a bad %%-escape");
        if (k->len > 0) {
            fo_buf_push(L, k);
            fo_buf_push(L, v);
            lua_rawset(L, form);
        }
    }
    lua_pop(L, 2);
}

struct reader {
    lua_State *L;
    const fo_op *op;
    int ec2;
    int form;     /* wire name → value */
    int prefixes; /* every dotted prefix of a wire name → true */
    int used;     /* wire names read → true */
    fo_buf *key;  /* the wire name being read, e.g. "Filter.1.Value" */
};

static size_t key_push(struct reader *r, const char *part)
{
    size_t mark = r->key->len;
    if (mark)
        fo_buf_addc(r->L, r->key, '.');
    fo_buf_adds(r->L, r->key, part);
    return mark;
}

static size_t key_push_index(struct reader *r, lua_Integer i)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)i);
    return key_push(r, num);
}

/* Does some wire name start with the current key (or equal it)? */
static int present(struct reader *r)
{
    fo_buf_push(r->L, r->key);
    int yes = lua_rawget(r->L, r->prefixes) != LUA_TNIL;
    lua_pop(r->L, 1);
    return yes;
}

/* Pushes the value of the current key and marks it read; returns 0 (nothing pushed) if absent. */
static int take(struct reader *r)
{
    lua_State *L = r->L;
    fo_buf_push(L, r->key);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, r->form) == LUA_TNIL) {
        lua_pop(L, 2);
        return 0;
    }
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, r->used);
    lua_remove(L, -2);
    return 1;
}

static int bad_value(struct reader *r, const char *text, const char *expected)
{
    fo_buf_push(r->L, r->key);
    return fo_request_error(r->L, 400, "InvalidParameterValue",
                            "Value (%s) for parameter %s is invalid. Expected %s.", text,
                            lua_tostring(r->L, -1), expected);
}

static const char *wire_name(struct reader *r, int ref, int shape, const char *member, char *tmp,
                             size_t size)
{
    return fo_query_name(r->L, ref, shape, member, r->ec2, tmp, size);
}

static int read_value(struct reader *r, int ref, int shape, int depth);

static int read_scalar(struct reader *r, int ref, int shape)
{
    lua_State *L = r->L;
    if (!take(r))
        return 0;
    size_t n;
    const char *text = lua_tolstring(L, -1, &n);
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "string";
    if (strcmp(type, "boolean") == 0) {
        if (strcasecmp(text, "true") != 0 && strcasecmp(text, "false") != 0)
            bad_value(r, text, "a boolean (true or false)");
        lua_pushboolean(L, strcasecmp(text, "true") == 0);
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "long") == 0 ||
               strcmp(type, "short") == 0 || strcmp(type, "byte") == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (n == 0 || *end != '\0' || errno != 0)
            bad_value(r, text, "an integer");
        lua_pushinteger(L, (lua_Integer)v);
    } else if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        char *end;
        double v = strcmp(text, "NaN") == 0         ? NAN
                   : strcmp(text, "Infinity") == 0  ? INFINITY
                   : strcmp(text, "-Infinity") == 0 ? -INFINITY
                                                    : strtod(text, &end);
        if (isfinite(v) && (n == 0 || *end != '\0'))
            bad_value(r, text, "a number");
        lua_pushnumber(L, v);
    } else if (strcmp(type, "timestamp") == 0) {
        double t;
        lua_Integer i;
        if (fo_ts_parse(text, &t) != 0)
            bad_value(r, text, "a timestamp (ISO 8601)");
        if (t == floor(t) && lua_numbertointeger(t, &i))
            lua_pushinteger(L, i);
        else
            lua_pushnumber(L, t);
    } else if (strcmp(type, "blob") == 0) {
        fo_buf *b = fo_buf_new(L);
        if (fo_b64_decode(L, b, text, n) != 0)
            bad_value(r, text, "base64");
        fo_buf_push(L, b);
        lua_remove(L, -2);
    } else {
        (void)ref;
        lua_pushvalue(L, -1);
    }
    lua_remove(L, -2);
    return 1;
}

static int read_structure(struct reader *r, int shape, int depth)
{
    lua_State *L = r->L;
    if (depth > 0 && !present(r))
        return 0;
    int top = lua_gettop(L);
    lua_newtable(L);
    int out = top + 1;
    if (lua_getfield(L, shape, "members") != LUA_TTABLE)
        return (lua_settop(L, out), 1);
    int members = top + 2;
    lua_pushnil(L);
    while (fo_next_member(L, r->op->shapes, members)) {
        int ref = lua_gettop(L) - 1, mshape = ref + 1;
        const char *member = lua_tostring(L, ref - 1);
        char tmp[256];
        size_t mark = key_push(r, wire_name(r, ref, mshape, member, tmp, sizeof tmp));
        const char *type = fo_field_str(L, mshape, "type");
        if (!r->ec2 && type && strcmp(type, "list") == 0 &&
            fo_trait_bool(L, ref, mshape, "flattened") &&
            lua_getfield(L, mshape, "member") == LUA_TTABLE) {
            /* a flattened list is named after its member's locationName, if it has one */
            int iref = lua_gettop(L);
            fo_shape_push(L, r->op->shapes, iref);
            const char *item = fo_trait_str(L, iref, iref + 1, "locationName");
            if (item) {
                r->key->len = mark;
                key_push(r, item);
            }
            lua_settop(L, mshape);
        }
        if (read_value(r, ref, mshape, depth + 1))
            lua_setfield(L, out, member);
        r->key->len = mark;
        lua_settop(L, ref - 1);
    }
    lua_settop(L, out);
    return 1;
}

/* An empty query list ("Name="): the key itself is present with an empty value. */
static int empty_list(struct reader *r)
{
    lua_State *L = r->L;
    if (r->ec2 || !take(r))
        return 0;
    int empty = lua_rawlen(L, -1) == 0;
    lua_pop(L, 1);
    if (!empty) {
        fo_buf_push(L, r->key);
        fo_request_error(L, 400, "InvalidParameterValue",
                         "Parameter %s is a list: give its items as %s.member.N",
                         lua_tostring(L, -1), lua_tostring(L, -1));
    }
    lua_newtable(L);
    return 1;
}

static int read_list(struct reader *r, int ref, int shape, int depth)
{
    lua_State *L = r->L;
    if (!present(r))
        return 0;
    if (empty_list(r))
        return 1;
    int top = lua_gettop(L);
    lua_newtable(L);
    if (lua_getfield(L, shape, "member") != LUA_TTABLE)
        luaL_error(L, "%s.%s: the model's list shape has no member", r->op->service, r->op->name);
    int iref = top + 2;
    fo_shape_push(L, r->op->shapes, iref);
    size_t base = r->key->len;
    if (!r->ec2 && !fo_trait_bool(L, ref, shape, "flattened")) {
        const char *item = fo_trait_str(L, iref, iref + 1, "locationName");
        key_push(r, item ? item : "member");
    }
    size_t items = r->key->len;
    for (lua_Integer i = 1;; i++) {
        key_push_index(r, i);
        int got = present(r) && read_value(r, iref, iref + 1, depth + 1);
        r->key->len = items;
        if (!got)
            break;
        lua_rawseti(L, top + 1, i);
    }
    r->key->len = base;
    lua_settop(L, top + 1);
    return 1;
}

static int read_map(struct reader *r, int ref, int shape, int depth)
{
    lua_State *L = r->L;
    if (!present(r))
        return 0;
    int top = lua_gettop(L);
    lua_newtable(L);
    int out = top + 1;
    fo_map_push(L, r->op, shape);
    int kref = top + 2, kshape = top + 3, vref = top + 4, vshape = top + 5;
    char ktmp[256], vtmp[256];
    const char *kname = wire_name(r, kref, kshape, "key", ktmp, sizeof ktmp);
    const char *vname = wire_name(r, vref, vshape, "value", vtmp, sizeof vtmp);
    size_t base = r->key->len;
    if (!fo_trait_bool(L, ref, shape, "flattened"))
        key_push(r, "entry");
    size_t entries = r->key->len;
    for (lua_Integer i = 1;; i++) {
        key_push_index(r, i);
        if (!present(r))
            break;
        size_t at = r->key->len;
        key_push(r, kname);
        if (!read_value(r, kref, kshape, depth + 1)) {
            fo_buf_push(L, r->key);
            fo_request_error(L, 400, "MissingParameter",
                             "The request must contain the parameter %s", lua_tostring(L, -1));
        }
        r->key->len = at;
        key_push(r, vname);
        if (!read_value(r, vref, vshape, depth + 1))
            lua_pushliteral(L, "");
        lua_rawset(L, out);
        r->key->len = entries;
    }
    r->key->len = base;
    lua_settop(L, out);
    return 1;
}

/* Pushes the value at the current key for the shape; returns 0 (nothing pushed) if absent. */
static int read_value(struct reader *r, int ref, int shape, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    luaL_checkstack(r->L, 24, "fo.awsproto: request nested too deeply");
    const char *type = fo_field_str(r->L, shape, "type");
    if (!type)
        type = "string";
    if (strcmp(type, "structure") == 0)
        return read_structure(r, shape, depth);
    if (strcmp(type, "list") == 0)
        return read_list(r, ref, shape, depth);
    if (strcmp(type, "map") == 0)
        return read_map(r, ref, shape, depth);
    return read_scalar(r, ref, shape);
}

/* prefixes[p] = true for every dotted prefix p of every wire name. */
static void index_prefixes(lua_State *L, int form, int prefixes)
{
    lua_pushnil(L);
    while (lua_next(L, form)) {
        lua_pop(L, 1);
        size_t n;
        const char *k = lua_tolstring(L, -1, &n);
        for (size_t i = 1; i <= n; i++) {
            if (i == n || k[i] == '.') {
                lua_pushlstring(L, k, i);
                lua_pushboolean(L, 1);
                lua_rawset(L, prefixes);
            }
        }
    }
}

/* Raises UnknownParameter for the first wire name (in name order) nobody read (ec2). */
static void refuse_unread(struct reader *r)
{
    lua_State *L = r->L;
    const char **keys;
    size_t n = fo_keys(L, r->form, 0, &keys);
    for (size_t i = 0; i < n; i++) {
        if (lua_getfield(L, r->used, keys[i]) == LUA_TNIL)
            fo_request_error(L, 400, "UnknownParameter", "The parameter %s is not recognized",
                             keys[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

void fo_query_parse_request(lua_State *L, fo_op *op, int req, int ec2, fo_request_ctx *ctx)
{
    (void)ctx;
    int top = lua_gettop(L);
    lua_newtable(L);
    int form = top + 1;
    size_t n;
    lua_getfield(L, req, "query");
    const char *s = lua_tolstring(L, -1, &n);
    if (s)
        read_pairs(L, form, s, n);
    lua_getfield(L, req, "body");
    s = lua_tolstring(L, -1, &n);
    if (s)
        read_pairs(L, form, s, n);
    lua_settop(L, form);

    const char *action = fo_field_str(L, form, "Action");
    if (!action || !*action)
        fo_request_error(L, 400, "MissingAction", "The request must contain the parameter Action");
    lua_getfield(L, op->model, "metadata");
    const char *api = lua_istable(L, -1) ? fo_field_str(L, -1, "apiVersion") : NULL;
    lua_pop(L, 1);
    const char *version = fo_field_str(L, form, "Version");
    lua_getfield(L, op->model, "operations");
    int known = lua_getfield(L, -1, action) == LUA_TTABLE;
    if (!known)
        fo_request_error(L, 400, "InvalidAction",
                         ec2 ? "The action %s is not valid for this web service."
                             : "Could not find operation %s for version %s",
                         action, version ? version : "(none)");
    if (!version || !*version)
        fo_request_error(L, 400, "MissingParameter",
                         "The request must contain the parameter Version");
    if (api && strcmp(version, api) != 0)
        fo_request_error(L, 400, "InvalidAction", "Could not find operation %s for version %s",
                         action, version);
    fo_op_bind(L, op, action);
    lua_pushnil(L);
    lua_setfield(L, form, "Action");
    lua_pushnil(L);
    lua_setfield(L, form, "Version");

    struct reader r = {.L = L, .op = op, .ec2 = ec2, .form = form};
    lua_newtable(L);
    r.prefixes = lua_gettop(L);
    index_prefixes(L, form, r.prefixes);
    lua_newtable(L);
    r.used = lua_gettop(L);
    r.key = fo_buf_new(L);
    if (op->input) {
        fo_shape_push(L, op->shapes, op->input);
        read_structure(&r, lua_gettop(L), 0);
    } else {
        lua_newtable(L);
    }
    int params = lua_gettop(L);
    if (ec2)
        refuse_unread(&r);
    lua_settop(L, params);
}

/* ---- responses */

/* metadata.xmlNamespace (ec2: with the final '/' EC2 writes), or NULL. A string it makes
 * is left on the stack. */
static const char *xml_namespace(lua_State *L, const fo_op *op, int ec2)
{
    lua_getfield(L, op->model, "metadata");
    const char *ns = lua_istable(L, -1) ? fo_field_str(L, -1, "xmlNamespace") : NULL;
    lua_pop(L, 1); /* the string stays referenced by the model */
    size_t n = ns ? strlen(ns) : 0;
    if (ec2 && n > 0 && ns[n - 1] != '/')
        ns = lua_pushfstring(L, "%s/", ns);
    return ns;
}

static const char *content_type(int ec2)
{
    return ec2 ? "text/xml;charset=UTF-8" : "text/xml";
}

void fo_query_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid,
                                 int ec2)
{
    int top = lua_gettop(L);
    fo_xw w;
    fo_xw_init(&w, L, op, ec2);
    lua_pushfstring(L, "%sResponse", op->name);
    const char *root = lua_tostring(L, -1);
    fo_xml_root(L, w.b, root, xml_namespace(L, op, ec2));
    fo_buf_addc(L, w.b, '>');
    if (ec2)
        fo_xml_element(L, w.b, "requestId", rid);
    if (op->output) {
        fo_shape_push(L, op->shapes, op->output);
        int shape = lua_gettop(L);
        const char *wrapper = ec2 ? NULL : fo_trait_str(L, op->output, shape, "resultWrapper");
        if (wrapper) {
            fo_buf_addc(L, w.b, '<');
            fo_buf_adds(L, w.b, wrapper);
            fo_buf_addc(L, w.b, '>');
        }
        fo_xw_members(&w, shape, output);
        if (wrapper) {
            fo_buf_adds(L, w.b, "</");
            fo_buf_adds(L, w.b, wrapper);
            fo_buf_addc(L, w.b, '>');
        }
    } else if (ec2) {
        fo_xml_element(L, w.b, "return", "true");
    }
    if (!ec2) {
        fo_buf_adds(L, w.b, "<ResponseMetadata>");
        fo_xml_element(L, w.b, "RequestId", rid);
        fo_buf_adds(L, w.b, "</ResponseMetadata>");
    }
    fo_buf_adds(L, w.b, "</");
    fo_buf_adds(L, w.b, root);
    fo_buf_addc(L, w.b, '>');
    fo_buf_push(L, w.b);
    fo_response_new(L, 200, content_type(ec2), rid);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* ---- errors */

void fo_query_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid, int ec2)
{
    int top = lua_gettop(L);
    fo_err_info e;
    fo_err_info_get(L, err, &e);
    fo_xw w;
    fo_xw_init(&w, L, op, ec2);
    if (ec2) {
        fo_xml_root(L, w.b, "Response", NULL);
        fo_buf_adds(L, w.b, "><Errors><Error>");
        fo_xml_error_body(&w, &e, 0);
        fo_buf_adds(L, w.b, "</Error></Errors>");
        fo_xml_element(L, w.b, "RequestID", rid);
        fo_buf_adds(L, w.b, "</Response>");
    } else {
        fo_xml_error_response(&w, &e, xml_namespace(L, op, 0), rid);
    }
    fo_buf_push(L, w.b);
    fo_response_new(L, e.status, content_type(ec2), rid);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}
