/* Protocols ec2 and query: form-encoded requests, XML responses. The wire rules are
 * botocore's (serialize.py QuerySerializer/EC2Serializer, parsers.py QueryParser/
 * EC2QueryParser):
 *   structures  Prefix.Member            lists  query: Name.member.N (member locationName),
 *   maps  Name.entry.N.key / .value             flattened: Name.N; ec2: always Name.N
 *   (flattened: Name.N.key; locationNames)      empty list: query "Name=", ec2 nothing
 *   names  query: locationName or member name; ec2: queryName, else locationName with its
 *          first letter capitalized, else member name
 * Map entries are numbered in sorted key order (a Lua table has no order). */
#include "xmlshape.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* ---- serializing */

struct ser {
    lua_State *L;
    const fo_op *op;
    int ec2;
    fo_buf *body;
    fo_buf *prefix; /* the key being built, e.g. "Filter.1.Value" */
};

static void ser_fail(struct ser *s, const char *fmt, const char *arg)
{
    lua_State *L = s->L;
    fo_buf_push(L, s->prefix);
    luaL_error(L, "%s.%s: %s: %s%s", s->op->service, s->op->name,
               s->prefix->len ? lua_tostring(L, -1) : "(input)", fmt, arg ? arg : "");
}

/* Appends "&key=value" with both percent-encoded. */
static void add_pair(struct ser *s, const char *v, size_t n)
{
    fo_buf_addc(s->L, s->body, '&');
    fo_uri_encode(s->L, s->body, s->prefix->data, s->prefix->len, 0);
    fo_buf_addc(s->L, s->body, '=');
    fo_uri_encode(s->L, s->body, v, n, 0);
}

const char *fo_query_name(lua_State *L, int ref, int shape, const char *dflt, int ec2, char *tmp,
                          size_t tmpsize)
{
    if (ec2) {
        const char *q = fo_trait_str(L, ref, shape, "queryName");
        if (q)
            return q;
        const char *n = fo_trait_str(L, ref, shape, "locationName");
        if (n && *n) {
            snprintf(tmp, tmpsize, "%s", n);
            if (tmp[0] >= 'a' && tmp[0] <= 'z')
                tmp[0] = (char)(tmp[0] - 'a' + 'A');
            return tmp;
        }
        return dflt;
    }
    const char *n = fo_trait_str(L, ref, shape, "locationName");
    return n ? n : dflt;
}

static const char *ser_name(struct ser *s, int ref, int shape, const char *dflt, char *tmp,
                            size_t tmpsize)
{
    return fo_query_name(s->L, ref, shape, dflt, s->ec2, tmp, tmpsize);
}

static void ser_value(struct ser *s, int ref, int shape, int value, int depth);

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The string keys of the table at `t`, sorted, in a GC-owned buffer pushed on the stack
 * (the strings stay alive as keys of t). Returns the count; raises on a non-string key. */
static size_t sorted_keys(struct ser *s, int t, const char ***keys)
{
    lua_State *L = s->L;
    fo_buf *b = fo_buf_new(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            ser_fail(s, "expected string keys, got a key of type ", luaL_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        fo_buf_add(L, b, (const char *)&k, sizeof k);
        n++;
    }
    if (n > 1)
        qsort(b->data, n, sizeof(const char *), cmp_str);
    *keys = (const char **)(void *)b->data;
    return n;
}

static void prefix_push(struct ser *s, const char *part, size_t *saved)
{
    *saved = s->prefix->len;
    if (s->prefix->len)
        fo_buf_addc(s->L, s->prefix, '.');
    fo_buf_adds(s->L, s->prefix, part);
}

static void prefix_push_index(struct ser *s, lua_Integer i, size_t *saved)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)i);
    prefix_push(s, num, saved);
}

static void ser_structure(struct ser *s, int shape, int value, int depth)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_newtable(L);
        lua_replace(L, -2);
    }
    int members = lua_gettop(L);
    const char **keys;
    size_t n = sorted_keys(s, value, &keys);
    for (size_t i = 0; i < n; i++) {
        int mtop = lua_gettop(L);
        if (lua_getfield(L, members, keys[i]) != LUA_TTABLE)
            ser_fail(s, "unknown member ", keys[i]);
        int ref = lua_gettop(L);
        fo_shape_push(L, s->op->shapes, ref);
        int mshape = lua_gettop(L);
        lua_getfield(L, value, keys[i]);
        int v = lua_gettop(L);
        char tmp[256];
        size_t saved;
        prefix_push(s, ser_name(s, ref, mshape, keys[i], tmp, sizeof tmp), &saved);
        ser_value(s, ref, mshape, v, depth + 1);
        s->prefix->len = saved;
        lua_settop(L, mtop);
    }
    lua_settop(L, top);
}

static void ser_list(struct ser *s, int ref, int shape, int value, int depth)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, value);
    if (n == 0) {
        lua_pushnil(L);
        if (lua_next(L, value))
            ser_fail(s, "expected a list (an array), got a table with other keys", NULL);
        if (!s->ec2) /* the query protocol sends empty lists as "Name=" */
            add_pair(s, "", 0);
        return;
    }
    if (lua_getfield(L, shape, "member") != LUA_TTABLE)
        ser_fail(s, "the model's list shape has no member", NULL);
    int mref = lua_gettop(L);
    fo_shape_push(L, s->op->shapes, mref);
    int mshape = lua_gettop(L);
    size_t base = s->prefix->len;
    if (!s->ec2) {
        const char *mname = fo_trait_str(L, mref, mshape, "locationName");
        if (fo_trait_bool(L, ref, shape, "flattened")) {
            if (mname) { /* replace the last part of the prefix: ".Original" → ".{name}" */
                size_t cut = s->prefix->len;
                while (cut > 0 && s->prefix->data[cut - 1] != '.')
                    cut--;
                s->prefix->len = cut;
                fo_buf_adds(L, s->prefix, mname);
            }
        } else {
            size_t ignored;
            prefix_push(s, mname ? mname : "member", &ignored);
        }
    }
    size_t list_prefix = s->prefix->len;
    for (lua_Integer i = 1; i <= n; i++) {
        size_t saved;
        prefix_push_index(s, i, &saved);
        lua_rawgeti(L, value, i);
        ser_value(s, mref, mshape, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        s->prefix->len = list_prefix;
    }
    s->prefix->len = base;
    lua_settop(L, top);
}

static void ser_map(struct ser *s, int ref, int shape, int value, int depth)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    fo_map_push(L, s->op, shape);
    int kref = top + 1, kshape = top + 2, vref = top + 3, vshape = top + 4;
    char ktmp[256], vtmp[256];
    const char *ksuffix = ser_name(s, kref, kshape, "key", ktmp, sizeof ktmp);
    const char *vsuffix = ser_name(s, vref, vshape, "value", vtmp, sizeof vtmp);
    size_t base = s->prefix->len, saved;
    if (!fo_trait_bool(L, ref, shape, "flattened"))
        prefix_push(s, "entry", &saved);
    size_t entry_prefix = s->prefix->len;
    const char **keys;
    size_t n = sorted_keys(s, value, &keys);
    for (size_t i = 0; i < n; i++) {
        prefix_push_index(s, (lua_Integer)i + 1, &saved);
        size_t at = s->prefix->len;
        prefix_push(s, ksuffix, &saved);
        lua_pushstring(L, keys[i]);
        ser_value(s, kref, kshape, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        s->prefix->len = at;
        prefix_push(s, vsuffix, &saved);
        lua_getfield(L, value, keys[i]);
        ser_value(s, vref, vshape, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        s->prefix->len = entry_prefix;
    }
    s->prefix->len = base;
    lua_settop(L, top);
}

static void expect(struct ser *s, int value, int type, const char *what)
{
    if (lua_type(s->L, value) != type) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected %s, got ", what);
        ser_fail(s, msg, luaL_typename(s->L, value));
    }
}

static void ser_value(struct ser *s, int ref, int shape, int value, int depth)
{
    lua_State *L = s->L;
    if (depth > MAX_DEPTH)
        ser_fail(s, "input nested too deeply (a cycle?)", NULL);
    luaL_checkstack(L, 16, "fo.awsproto: input nested too deeply");
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "string";
    char num[64];
    if (strcmp(type, "structure") == 0) {
        expect(s, value, LUA_TTABLE, "a table");
        ser_structure(s, shape, value, depth);
    } else if (strcmp(type, "list") == 0) {
        expect(s, value, LUA_TTABLE, "a list (an array)");
        ser_list(s, ref, shape, value, depth);
    } else if (strcmp(type, "map") == 0) {
        expect(s, value, LUA_TTABLE, "a table");
        ser_map(s, ref, shape, value, depth);
    } else if (strcmp(type, "boolean") == 0) {
        expect(s, value, LUA_TBOOLEAN, "a boolean");
        const char *b = lua_toboolean(L, value) ? "true" : "false";
        add_pair(s, b, strlen(b));
    } else if (strcmp(type, "blob") == 0) {
        expect(s, value, LUA_TSTRING, "a string");
        size_t n;
        const char *p = lua_tolstring(L, value, &n);
        fo_buf *b = fo_buf_new(L);
        fo_b64_encode(L, b, (const unsigned char *)p, n);
        add_pair(s, b->data ? b->data : "", b->len);
        lua_pop(L, 1);
    } else if (strcmp(type, "timestamp") == 0) {
        double t;
        if (fo_ts_from_lua(L, value, &t) != 0)
            ser_fail(s, "expected a timestamp (seconds since the epoch or an ISO 8601 string)",
                     NULL);
        enum fo_ts_format fmt =
            fo_ts_format_named(fo_trait_str(L, ref, shape, "timestampFormat"), FO_TS_ISO8601);
        fo_ts_format(t, fmt, num, sizeof num);
        add_pair(s, num, strlen(num));
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "long") == 0 ||
               strcmp(type, "short") == 0 || strcmp(type, "byte") == 0 ||
               strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        int isint = strcmp(type, "float") != 0 && strcmp(type, "double") != 0;
        if (lua_type(L, value) == LUA_TSTRING) { /* e.g. "NaN", "Infinity" */
            size_t n;
            const char *p = lua_tolstring(L, value, &n);
            add_pair(s, p, n);
            return;
        }
        expect(s, value, LUA_TNUMBER, "a number");
        if (lua_isinteger(L, value)) {
            snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, value));
        } else {
            double d = lua_tonumber(L, value);
            if (isint && d == floor(d) && fabs(d) < 9.2e18)
                snprintf(num, sizeof num, "%lld", (long long)d);
            else if (isint)
                ser_fail(s, "expected an integer, got a fractional number", NULL);
            else
                fo_format_double(d, num, sizeof num);
        }
        add_pair(s, num, strlen(num));
    } else { /* string, character, enums */
        if (lua_type(L, value) != LUA_TSTRING && lua_type(L, value) != LUA_TNUMBER)
            expect(s, value, LUA_TSTRING, "a string");
        size_t n;
        lua_pushvalue(L, value);
        const char *p = lua_tolstring(L, -1, &n);
        add_pair(s, p, n);
        lua_pop(L, 1);
    }
}

void fo_query_serialize(lua_State *L, const fo_op *op, int params, int ec2)
{
    struct ser s = {.L = L, .op = op, .ec2 = ec2};
    s.body = fo_buf_new(L);
    s.prefix = fo_buf_new(L);
    fo_buf_adds(L, s.body, "Action=");
    fo_uri_encode(L, s.body, op->name, strlen(op->name), 0);
    lua_getfield(L, op->model, "metadata");
    const char *version = lua_istable(L, -1) ? fo_field_str(L, -1, "apiVersion") : NULL;
    if (version) {
        fo_buf_adds(L, s.body, "&Version=");
        fo_uri_encode(L, s.body, version, strlen(version), 0);
    }
    lua_pop(L, 1);
    if (op->input) {
        fo_shape_push(L, op->shapes, op->input);
        ser_value(&s, op->input, lua_gettop(L), params, 0);
        lua_pop(L, 1);
    } else {
        lua_pushnil(L);
        if (lua_next(L, params))
            luaL_error(L, "%s.%s: the operation takes no input", op->service, op->name);
    }
    const char *method = "POST";
    if (lua_getfield(L, op->op, "http") == LUA_TTABLE && fo_field_str(L, -1, "method"))
        method = fo_field_str(L, -1, "method");
    lua_pop(L, 1);

    lua_createtable(L, 0, 5);
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushliteral(L, "/");
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "query");
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "application/x-www-form-urlencoded; charset=utf-8");
    lua_setfield(L, -2, "Content-Type");
    lua_setfield(L, -2, "headers");
    fo_buf_push(L, s.body);
    lua_setfield(L, -2, "body");
}

/* ---- parsing */

void fo_query_parse(lua_State *L, const fo_op *op, int resp, int ec2)
{
    lua_getfield(L, resp, "body");
    size_t len = 0;
    const char *body = lua_tolstring(L, -1, &len);
    if (!body)
        body = "";
    if (!op->output && len == 0) {
        lua_newtable(L);
        return;
    }
    fo_xml_body(L, op, body, len);
    int root = lua_gettop(L);
    if (!op->output) {
        lua_newtable(L);
        return;
    }
    fo_shape_push(L, op->shapes, op->output);
    int shape = lua_gettop(L);
    int start = root;
    const char *wrapper = ec2 ? NULL : fo_trait_str(L, op->output, shape, "resultWrapper");
    if (wrapper) {
        if (!fo_xml_child(L, root, wrapper)) { /* nothing in the result */
            lua_newtable(L);
            return;
        }
        start = lua_gettop(L);
    }
    fo_xml_structure(L, op, shape, start);
}

/* {code=, message=, request_id=, type=, fields={}} from an error document: query
 * <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>, ec2
 * <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>. A
 * body that is not XML still gives an error (code = the HTTP status). */
void fo_query_parse_error(lua_State *L, const fo_op *op, int resp, int ec2)
{
    (void)ec2;
    int status = (int)fo_field_num(L, resp, "status", 0);
    lua_getfield(L, resp, "body");
    size_t len = 0;
    const char *body = lua_tolstring(L, -1, &len);
    lua_createtable(L, 0, 5);
    int out = lua_gettop(L);
    lua_newtable(L);
    lua_setfield(L, out, "fields");
    int root;
    int err = fo_xml_error_element(L, body, len, 1, &root);
    if (err) {
        fo_xml_error_fields(L, err, out);
        if (fo_xml_child_text(L, root, "RequestId") || fo_xml_child_text(L, root, "RequestID") ||
            fo_xml_child_text(L, err, "RequestId"))
            lua_setfield(L, out, "request_id");
        const char *code = fo_field_str(L, out, "code");
        if (fo_error_shape(L, op, code)) {
            fo_xml_structure(L, op, lua_gettop(L), err);
            lua_setfield(L, out, "fields");
        }
    }
    fo_xml_error_status(L, out, status);
    if (!fo_field_str(L, out, "request_id") && lua_getfield(L, resp, "headers") == LUA_TTABLE) {
        const char *id = fo_field_str(L, -1, "x-amzn-requestid");
        if (!id)
            id = fo_field_str(L, -1, "x-amz-request-id");
        if (id) {
            lua_pushstring(L, id);
            lua_setfield(L, out, "request_id");
        }
    }
    lua_settop(L, out);
}
