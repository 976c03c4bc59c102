/* Protocol json, requests (botocore's JSONSerializer): POST / with
 *   Content-Type: application/x-amz-json-<metadata.jsonVersion>
 *   X-Amz-Target: <metadata.targetPrefix>.<operation>
 * (Content-Length is the transport's) and the input structure as a JSON object ("{}" without
 * input). Members are written under their locationName when they have one, in sorted order (the
 * output is deterministic); nil members are absent (so is cjson.null). Strings are written as UTF-8
 * with ", \ and control characters escaped; timestamps as epoch seconds unless the member or shape
 * has a timestampFormat (iso8601 and rfc822 are strings); blobs in base64; floats NaN and ±inf as
 * the strings "NaN", "Infinity", "-Infinity" (which are also accepted as values); documents
 * as plain JSON (a Lua table that is a non-empty sequence is an array, otherwise an object).
 * Wrong Lua types raise "svc.Op: Member.Path: expected <type>, got <type>". An operation
 * with an endpoint hostPrefix also gets host_prefix (its {labels} filled in). */
#include "json.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef fo_writer jwriter;

static void add(jwriter *w, const char *s)
{
    fo_buf_adds(w->L, w->b, s);
}

/* JSON's two-character escapes ('\n' → "\\n"); other control characters are written \u00XX. */
static const char SHORT_ESCAPE[0x80] = {['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
                                        ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};

/* Appends s[0..n) as a JSON string; returns -1 (leaving b partly written) when s is not
 * valid UTF-8. */
static int put_string(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *run = p, *end = p + n;
    fo_buf_addc(L, b, '"');
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t len = fo_utf8_seq(p, (size_t)(end - p));
            if (len == 0)
                return -1;
            p += len;
            continue;
        }
        fo_buf_add(L, b, (const char *)run, (size_t)(p - run));
        char esc[7] = {'\\', SHORT_ESCAPE[c], 0, 0, 0, 0, 0};
        size_t elen = 2;
        if (!esc[1]) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        fo_buf_add(L, b, esc, elen);
        p++;
        run = p;
    }
    fo_buf_add(L, b, (const char *)run, (size_t)(p - run));
    fo_buf_addc(L, b, '"');
    return 0;
}

static void write_string(jwriter *w, const char *s, size_t n)
{
    if (put_string(w->L, w->b, s, n) != 0)
        fo_writer_fail(w, "string is not valid UTF-8");
}

void fo_json_write_string(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    if (put_string(L, b, s, n) != 0)
        luaL_error(L, "fo.awsproto: a JSON string is not valid UTF-8");
}

/* The shortest %g form that reads back as the same double. */
static void write_double(jwriter *w, double d)
{
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    add(w, buf);
}

static void write_integer(jwriter *w, lua_Integer i)
{
    char buf[32];
    snprintf(buf, sizeof buf, LUA_INTEGER_FMT, i);
    add(w, buf);
}

static int is_null(lua_State *L, int v)
{
    return lua_isnil(L, v) || (lua_islightuserdata(L, v) && lua_touserdata(L, v) == NULL);
}

/* The string keys of the table at t, sorted, as an array of C strings in a GC-owned buffer
 * pushed on the stack (valid while t is unchanged). Keys whose value is null are left out.
 * Raises on a key that is not a string. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char **sorted_keys(jwriter *w, int t, size_t *count)
{
    lua_State *L = w->L;
    fo_buf *keys = fo_buf_new(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushfstring(L, "expected a table with string keys, got a %s key",
                            luaL_typename(L, -1));
            fo_writer_fail(w, lua_tostring(L, -1));
        }
        if (!is_null(L, -1)) {
            const char *k = lua_tostring(L, -2);
            fo_buf_add(L, keys, (const char *)&k, sizeof k);
        }
        lua_pop(L, 1);
    }
    *count = keys->len / sizeof(const char *);
    if (*count > 1)
        qsort(keys->data, *count, sizeof(const char *), cmp_str);
    return (const char **)keys->data;
}

/* A table that is a non-empty sequence (keys 1..n exactly). */
static int is_sequence(lua_State *L, int t, lua_Integer *n)
{
    lua_Integer len = (lua_Integer)lua_rawlen(L, t), count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    *n = len;
    return count == len && len > 0;
}

static void write_value(jwriter *w, int ref, int shape, int v);

/* A document: plain JSON from Lua values. */
/* Starts element i (from 1) of the array at v: the comma before all but the first, the path
 * entry, and v[i] pushed. The caller writes the value, pops it and leaves with w->depth--. */
static void open_element(jwriter *w, int v, lua_Integer i)
{
    if (i > 1)
        fo_buf_addc(w->L, w->b, ',');
    fo_writer_push(w, NULL, i);
    lua_rawgeti(w->L, v, i);
}

/* Starts entry i (from 0) of the object for the table at v: the comma before all but the
 * first, `"key":`, the path entry, and v[key] pushed. The caller writes the value, pops it
 * and leaves with w->depth--. */
static void open_entry(jwriter *w, int v, size_t i, const char *key)
{
    if (i > 0)
        fo_buf_addc(w->L, w->b, ',');
    write_string(w, key, strlen(key));
    fo_buf_addc(w->L, w->b, ':');
    fo_writer_push(w, key, 0);
    lua_getfield(w->L, v, key);
}

static void write_plain(jwriter *w, int v)
{
    lua_State *L = w->L;
    switch (lua_type(L, v)) {
    case LUA_TBOOLEAN:
        add(w, lua_toboolean(L, v) ? "true" : "false");
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, v)) {
            write_integer(w, lua_tointeger(L, v));
        } else {
            double d = (double)lua_tonumber(L, v);
            if (!isfinite(d))
                fo_writer_fail(w, "a document cannot hold NaN or infinity");
            write_double(w, d);
        }
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        write_string(w, s, n);
        return;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, v) == NULL) {
            add(w, "null");
            return;
        }
        break;
    case LUA_TTABLE: {
        lua_Integer n;
        if (is_sequence(L, v, &n)) {
            fo_buf_addc(L, w->b, '[');
            for (lua_Integer i = 1; i <= n; i++) {
                open_element(w, v, i);
                write_plain(w, lua_gettop(L));
                lua_pop(L, 1);
                w->depth--;
            }
            fo_buf_addc(L, w->b, ']');
            return;
        }
        size_t count;
        const char **keys = sorted_keys(w, v, &count);
        fo_buf_addc(L, w->b, '{');
        for (size_t i = 0; i < count; i++) {
            open_entry(w, v, i, keys[i]);
            write_plain(w, lua_gettop(L));
            lua_pop(L, 1);
            w->depth--;
        }
        fo_buf_addc(L, w->b, '}');
        lua_pop(L, 1); /* keys */
        return;
    }
    default:
        break;
    }
    fo_writer_fail_type(w, "a document value (boolean, number, string or table)", v);
}

static void write_structure(jwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table", v);
    int top = lua_gettop(L);
    int members = lua_getfield(L, shape, "members") == LUA_TTABLE ? lua_gettop(L) : 0;
    size_t count;
    const char **keys = sorted_keys(w, v, &count);
    int base = lua_gettop(L);
    fo_buf_addc(L, w->b, '{');
    for (size_t i = 0; i < count; i++) {
        int ref = fo_writer_member(w, members, keys[i]);
        const char *wire = fo_field_str(L, ref, "locationName");
        if (i > 0)
            fo_buf_addc(L, w->b, ',');
        write_string(w, wire ? wire : keys[i], strlen(wire ? wire : keys[i]));
        fo_buf_addc(L, w->b, ':');
        fo_shape_push(L, w->op->shapes, ref);
        lua_getfield(L, v, keys[i]);
        write_value(w, ref, ref + 1, ref + 2);
        lua_settop(L, base);
        w->depth--;
    }
    fo_buf_addc(L, w->b, '}');
    lua_settop(L, top);
}

static void write_list(jwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    lua_Integer n;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table (a list)", v);
    if (!is_sequence(L, v, &n)) {
        lua_pushnil(L);
        if (lua_next(L, v))
            fo_writer_fail(w, "expected a list (a Lua array), got a table with other keys");
        n = 0;
    }
    int ref = fo_writer_element_shape(w, shape, "list", "member");
    fo_buf_addc(L, w->b, '[');
    for (lua_Integer i = 1; i <= n; i++) {
        open_element(w, v, i);
        if (is_null(L, -1))
            add(w, "null");
        else
            write_value(w, ref, ref + 1, lua_gettop(L));
        lua_pop(L, 1);
        w->depth--;
    }
    fo_buf_addc(L, w->b, ']');
    lua_pop(L, 2);
}

static void write_map(jwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table (a map)", v);
    int ref = fo_writer_element_shape(w, shape, "map", "value");
    size_t count;
    const char **keys = sorted_keys(w, v, &count);
    int base = lua_gettop(L);
    fo_buf_addc(L, w->b, '{');
    for (size_t i = 0; i < count; i++) {
        open_entry(w, v, i, keys[i]);
        write_value(w, ref, ref + 1, lua_gettop(L));
        lua_settop(L, base);
        w->depth--;
    }
    fo_buf_addc(L, w->b, '}');
    lua_pop(L, 3);
}

static const char *special_float(lua_State *L, int v)
{
    if (lua_type(L, v) == LUA_TSTRING) {
        const char *s = lua_tostring(L, v);
        if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0)
            return s;
        return NULL;
    }
    double d = (double)lua_tonumber(L, v);
    if (isnan(d))
        return "NaN";
    if (isinf(d))
        return d > 0 ? "Infinity" : "-Infinity";
    return NULL;
}

static void write_value(jwriter *w, int ref, int shape, int v)
{
    lua_State *L = w->L;
    switch (fo_json_type_of(L, shape)) {
    case FO_JT_STRUCT:
        write_structure(w, shape, v);
        return;
    case FO_JT_LIST:
        write_list(w, shape, v);
        return;
    case FO_JT_MAP:
        write_map(w, shape, v);
        return;
    case FO_JT_STRING: {
        if (lua_type(L, v) != LUA_TSTRING)
            fo_writer_fail_type(w, "string", v);
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        write_string(w, s, n);
        return;
    }
    case FO_JT_INT:
        write_integer(w, fo_writer_integer(w, v));
        return;
    case FO_JT_FLOAT: {
        const char *special;
        if (lua_type(L, v) != LUA_TNUMBER &&
            !(lua_type(L, v) == LUA_TSTRING && special_float(L, v)))
            fo_writer_fail_type(w, "number", v);
        if ((special = special_float(L, v)) != NULL)
            write_string(w, special, strlen(special));
        else if (lua_isinteger(L, v))
            write_integer(w, lua_tointeger(L, v));
        else
            write_double(w, (double)lua_tonumber(L, v));
        return;
    }
    case FO_JT_BOOL:
        if (!lua_isboolean(L, v))
            fo_writer_fail_type(w, "boolean", v);
        add(w, lua_toboolean(L, v) ? "true" : "false");
        return;
    case FO_JT_TS: {
        double t;
        if (fo_ts_from_lua(L, v, &t) != 0) {
            if (lua_type(L, v) == LUA_TSTRING)
                fo_writer_fail(w,
                               "expected a timestamp (epoch seconds or an ISO 8601 string), got a "
                               "string that is neither");
            fo_writer_fail_type(w, "timestamp (epoch seconds or an ISO 8601 string)", v);
        }
        const char *fmt_name = ref ? fo_field_str(L, ref, "timestampFormat") : NULL;
        if (!fmt_name)
            fmt_name = fo_field_str(L, shape, "timestampFormat");
        enum fo_ts_format fmt = fo_ts_format_named(fmt_name, FO_TS_EPOCH);
        char out[64];
        fo_ts_format(t, fmt, out, sizeof out);
        if (fmt == FO_TS_EPOCH)
            add(w, out);
        else
            write_string(w, out, strlen(out));
        return;
    }
    case FO_JT_BLOB: {
        if (lua_type(L, v) != LUA_TSTRING)
            fo_writer_fail_type(w, "string (a blob)", v);
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        fo_buf_addc(L, w->b, '"');
        fo_b64_encode(L, w->b, (const unsigned char *)s, n);
        fo_buf_addc(L, w->b, '"');
        return;
    }
    case FO_JT_GENERIC:
    default:
        write_plain(w, v);
        return;
    }
}

/* hostPrefix "foo-{Name}." with params.Name filled in; pushes it, or nothing (returns 0). */
static int push_host_prefix(lua_State *L, const fo_op *op, int params)
{
    if (lua_getfield(L, op->op, "endpoint") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    const char *prefix = fo_field_str(L, -1, "hostPrefix");
    if (!prefix) {
        lua_pop(L, 1);
        return 0;
    }
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (const char *p = prefix; *p;) {
        const char *open = strchr(p, '{'), *close = open ? strchr(open, '}') : NULL;
        if (!open || !close) {
            luaL_addstring(&lb, p);
            break;
        }
        luaL_addlstring(&lb, p, (size_t)(open - p));
        lua_pushlstring(L, open + 1, (size_t)(close - open - 1));
        const char *label = lua_tostring(L, -1);
        lua_getfield(L, params, label);
        if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            luaL_error(L, "%s.%s: %s: required (a non-empty string) for the endpoint's host",
                       op->service, op->name, label);
        lua_remove(L, -2);
        luaL_addvalue(&lb);
        p = close + 1;
    }
    luaL_pushresult(&lb);
    lua_remove(L, -2);
    return 1;
}

void fo_json_encode(lua_State *L, const fo_op *op, int ref, int value, int output)
{
    value = lua_absindex(L, value);
    int top = lua_gettop(L) + 1;
    jwriter *w = fo_writer_new(L, op, output);
    if (ref) {
        fo_shape_push(L, op->shapes, ref);
        write_value(w, ref, lua_gettop(L), value);
    } else {
        fo_buf_adds(L, w->b, "{}");
    }
    fo_buf_push(L, w->b);
    lua_replace(L, top);
    lua_settop(L, top);
}

void fo_json_serialize(lua_State *L, const fo_op *op, int params)
{
    lua_getfield(L, op->model, "metadata");
    int meta = lua_gettop(L);
    const char *prefix = fo_field_str(L, meta, "targetPrefix");
    const char *version = fo_field_str(L, meta, "jsonVersion");
    if (!prefix || !version)
        luaL_error(L, "%s.%s: the model's metadata lacks targetPrefix or jsonVersion", op->service,
                   op->name);

    fo_json_encode(L, op, op->input, params, 0);
    int body = lua_gettop(L);

    lua_createtable(L, 0, 6);
    int out = lua_gettop(L);
    const char *method = "POST";
    if (lua_getfield(L, op->op, "http") == LUA_TTABLE && fo_field_str(L, -1, "method"))
        method = fo_field_str(L, -1, "method");
    lua_pushstring(L, method);
    lua_setfield(L, out, "method");
    lua_pop(L, 1);
    lua_pushliteral(L, "/");
    lua_setfield(L, out, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, out, "query");

    lua_createtable(L, 0, 2);
    lua_pushfstring(L, "application/x-amz-json-%s", version);
    lua_setfield(L, -2, "Content-Type");
    lua_pushfstring(L, "%s.%s", prefix, op->name);
    lua_setfield(L, -2, "X-Amz-Target");
    /* A service that moved from the query protocol (awsQueryCompatible) is told so: it then
     * answers errors with the x-amzn-query-error header carrying the query error code. */
    if (lua_getfield(L, meta, "awsQueryCompatible") != LUA_TNIL) {
        lua_pushliteral(L, "true");
        lua_setfield(L, -3, "x-amzn-query-mode");
    }
    lua_pop(L, 1);
    lua_setfield(L, out, "headers");

    lua_pushvalue(L, body);
    lua_setfield(L, out, "body");
    if (push_host_prefix(L, op, params))
        lua_setfield(L, out, "host_prefix");
    lua_replace(L, meta);
    lua_settop(L, meta);
}
