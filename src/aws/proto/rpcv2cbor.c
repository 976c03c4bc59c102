/* Protocol smithy-rpc-v2-cbor, the client side: requests, responses and errors; the CBOR
 * codec is cbor.c.
 *
 * serialize: POST /service/<metadata.targetPrefix>/operation/<Op> with the headers
 *   smithy-protocol: rpc-v2-cbor and Accept: application/cbor, the input as a CBOR map
 *   (fo_cbor_encode) with Content-Type: application/cbor; no input: no body and no
 *   Content-Type. A service marked awsQueryCompatible also gets x-amzn-query-mode: true.
 * parse: the body decoded and converted along the output shape; empty body or no output: {}.
 * parse_error: as for json (fo_rpc_parse_error): the x-amzn-query-error header's code, else
 *   the body's __type shortened ("ns#Code" → "Code"), message/Message, fields from the
 *   modelled error shape. */
#include "cbor.h"
#include "json.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

/* ---- encoding along the model */

typedef fo_writer cwriter;

static const char **keys_of(cwriter *w, int v, size_t *count)
{
    const char **keys;
    *count = fo_keys(w->L, v, 0, &keys);
    if (*count == (size_t)-1)
        fo_writer_fail(w, "expected a table with string keys");
    return keys;
}

static void write_value(cwriter *w, int shape, int v);

static void write_structure(cwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table", v);
    int top = lua_gettop(L);
    int members = lua_getfield(L, shape, "members") == LUA_TTABLE ? lua_gettop(L) : 0;
    size_t count;
    const char **keys = keys_of(w, v, &count);
    int base = lua_gettop(L);
    fo_cbor_head(L, w->b, 5, count);
    for (size_t i = 0; i < count; i++) {
        int ref = fo_writer_member(w, members, keys[i]);
        fo_cbor_text(L, w->b, keys[i], strlen(keys[i]));
        fo_shape_push(L, w->op->shapes, ref);
        lua_getfield(L, v, keys[i]);
        write_value(w, ref + 1, ref + 2);
        lua_settop(L, base);
        w->depth--;
    }
    lua_settop(L, top);
}

static void write_list(cwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table (a list)", v);
    lua_Integer n = (lua_Integer)lua_rawlen(L, v);
    lua_Integer keys = 0;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n)
        fo_writer_fail(w, "expected a list (a Lua array), got a table with other keys");
    int ref = fo_writer_element_shape(w, shape, "list", "member");
    fo_cbor_head(L, w->b, 4, (uint64_t)n);
    for (lua_Integer i = 1; i <= n; i++) {
        fo_writer_push(w, NULL, i);
        lua_rawgeti(L, v, i);
        write_value(w, ref + 1, lua_gettop(L));
        lua_pop(L, 1);
        w->depth--;
    }
    lua_pop(L, 2);
}

static void write_map(cwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    if (!lua_istable(L, v))
        fo_writer_fail_type(w, "table (a map)", v);
    int ref = fo_writer_element_shape(w, shape, "map", "value");
    size_t count;
    const char **keys = keys_of(w, v, &count);
    int base = lua_gettop(L);
    fo_cbor_head(L, w->b, 5, count);
    for (size_t i = 0; i < count; i++) {
        fo_cbor_text(L, w->b, keys[i], strlen(keys[i]));
        fo_writer_push(w, keys[i], 0);
        lua_getfield(L, v, keys[i]);
        write_value(w, ref + 1, lua_gettop(L));
        lua_settop(L, base);
        w->depth--;
    }
    lua_pop(L, 3);
}

static void write_value(cwriter *w, int shape, int v)
{
    lua_State *L = w->L;
    const char *type = fo_field_str(L, shape, "type");
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
    case FO_JT_STRING:
    case FO_JT_BLOB: {
        if (lua_type(L, v) != LUA_TSTRING)
            fo_writer_fail_type(w, "string", v);
        size_t n;
        const char *s = lua_tolstring(L, v, &n);
        if (fo_json_type_of(L, shape) == FO_JT_BLOB) {
            fo_cbor_bytes(L, w->b, s, n);
        } else {
            for (size_t i = 0; i < n;) {
                size_t k = fo_utf8_seq((const unsigned char *)s + i, n - i);
                if (!k)
                    fo_writer_fail(w, "string is not UTF-8");
                i += k;
            }
            fo_cbor_text(L, w->b, s, n);
        }
        return;
    }
    case FO_JT_INT:
        fo_cbor_int(L, w->b, (int64_t)fo_writer_integer(w, v));
        return;
    case FO_JT_FLOAT: {
        if (lua_type(L, v) != LUA_TNUMBER)
            fo_writer_fail_type(w, "number", v);
        fo_cbor_float(L, w->b, (double)lua_tonumber(L, v), type && strcmp(type, "float") == 0);
        return;
    }
    case FO_JT_BOOL:
        if (!lua_isboolean(L, v))
            fo_writer_fail_type(w, "boolean", v);
        fo_cbor_bool(L, w->b, lua_toboolean(L, v));
        return;
    case FO_JT_TS: {
        double t;
        if (fo_ts_from_lua(L, v, &t) != 0)
            fo_writer_fail_type(w, "timestamp (seconds since the epoch or an ISO 8601 string)", v);
        fo_cbor_epoch(L, w->b, t);
        return;
    }
    case FO_JT_GENERIC:
        break;
    }
    lua_pushfstring(L, "the smithy-rpc-v2-cbor codec has no encoding for shapes of type '%s'",
                    type ? type : "(none)");
    fo_writer_fail(w, lua_tostring(L, -1));
}

void fo_cbor_encode(lua_State *L, const fo_op *op, int ref, int value, int output)
{
    int top = lua_gettop(L);
    cwriter *w = fo_writer_new(L, op, output);
    if (!ref) {
        fo_cbor_head(L, w->b, 5, 0);
    } else {
        fo_shape_push(L, op->shapes, ref);
        if (lua_isnoneornil(L, value)) {
            lua_newtable(L);
            value = lua_gettop(L);
        }
        write_value(w, top + 3, value);
    }
    fo_buf_push(L, w->b);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* ---- decoding along the model */

static int sfail(lua_State *L, const fo_op *op, const char *path, const char *msg)
{
    return luaL_error(L, "%s.%s: malformed CBOR response: %s: %s", op->service, op->name, path,
                      msg);
}

/* Converts the value at v along shape (absolute indices); pushes the result. `path` names
 * the place for errors. */
static void shape_value(lua_State *L, const fo_op *op, int shape, int v, const char *path,
                        int depth)
{
    luaL_checkstack(L, 16, "CBOR document too deep");
    if (depth > FO_CBOR_MAX_DEPTH)
        sfail(L, op, path, "nesting too deep");
    enum fo_json_type t = fo_json_type_of(L, shape);
    int vt = lua_type(L, v);
    switch (t) {
    case FO_JT_STRUCT: {
        if (vt != LUA_TTABLE)
            sfail(L, op, path, "expected a map");
        lua_newtable(L);
        int out = lua_gettop(L);
        if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
            lua_pop(L, 1);
            return;
        }
        int members = lua_gettop(L);
        lua_pushnil(L);
        while (fo_next_member(L, op->shapes, members)) {
            const char *name = lua_tostring(L, -3);
            int mshape = lua_gettop(L);
            if (lua_getfield(L, v, name) != LUA_TNIL) {
                shape_value(L, op, mshape, lua_gettop(L), name, depth + 1);
                lua_setfield(L, out, name);
            }
            lua_settop(L, mshape - 2); /* the name stays */
        }
        lua_settop(L, out);
        return;
    }
    case FO_JT_LIST: {
        if (vt != LUA_TTABLE)
            sfail(L, op, path, "expected an array");
        if (lua_getfield(L, shape, "member") != LUA_TTABLE)
            sfail(L, op, path, "the model's list has no member shape");
        fo_shape_push(L, op->shapes, lua_gettop(L));
        int mshape = lua_gettop(L);
        lua_Integer n = (lua_Integer)lua_rawlen(L, v);
        lua_createtable(L, n > 64 ? 64 : (int)n, 0);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, v, i);
            shape_value(L, op, mshape, lua_gettop(L), path, depth + 1);
            lua_rawseti(L, -3, i);
            lua_pop(L, 1);
        }
        lua_replace(L, mshape - 1);
        lua_settop(L, mshape - 1);
        return;
    }
    case FO_JT_MAP: {
        if (vt != LUA_TTABLE)
            sfail(L, op, path, "expected a map");
        if (lua_getfield(L, shape, "value") != LUA_TTABLE)
            sfail(L, op, path, "the model's map has no value shape");
        fo_shape_push(L, op->shapes, lua_gettop(L));
        int vshape = lua_gettop(L);
        lua_newtable(L);
        int out = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, v)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                sfail(L, op, path, "map key that is not a string");
            shape_value(L, op, vshape, lua_gettop(L), lua_tostring(L, -2), depth + 1);
            lua_pushvalue(L, -3);
            lua_insert(L, -2);
            lua_rawset(L, out);
            lua_pop(L, 1);
        }
        lua_replace(L, vshape - 1);
        lua_settop(L, vshape - 1);
        return;
    }
    case FO_JT_STRING:
    case FO_JT_BLOB:
        if (vt != LUA_TSTRING)
            sfail(L, op, path, "expected a string");
        break;
    case FO_JT_INT:
        if (vt != LUA_TNUMBER)
            sfail(L, op, path, "expected an integer");
        if (!lua_isinteger(L, v)) {
            lua_Integer i;
            double d = (double)lua_tonumber(L, v);
            if (d == floor(d) && lua_numbertointeger(d, &i)) {
                lua_pushinteger(L, i);
                return;
            }
            sfail(L, op, path, "expected an integer, got a number with a fraction");
        }
        break;
    case FO_JT_FLOAT:
    case FO_JT_TS:
        if (vt != LUA_TNUMBER)
            sfail(L, op, path, t == FO_JT_TS ? "expected a timestamp" : "expected a number");
        break;
    case FO_JT_BOOL:
        if (vt != LUA_TBOOLEAN)
            sfail(L, op, path, "expected a boolean");
        break;
    case FO_JT_GENERIC:
        break;
    }
    lua_pushvalue(L, v);
}

void fo_cbor_shape(lua_State *L, const fo_op *op, int shape, int value)
{
    shape_value(L, op, shape, value, "(document)", 0);
}

/* ---- entry points */

static int query_compatible(lua_State *L, const fo_op *op)
{
    int top = lua_gettop(L);
    int yes = lua_getfield(L, op->model, "metadata") == LUA_TTABLE &&
              lua_getfield(L, -1, "awsQueryCompatible") != LUA_TNIL;
    lua_settop(L, top);
    return yes;
}

void fo_rpcv2cbor_serialize(lua_State *L, const fo_op *op, int params)
{
    int top = lua_gettop(L);
    lua_getfield(L, op->model, "metadata");
    const char *prefix = fo_field_str(L, top + 1, "targetPrefix");
    if (!prefix)
        luaL_error(L, "%s.%s: the model's metadata lacks targetPrefix", op->service, op->name);
    if (op->input)
        fo_cbor_encode(L, op, op->input, params, 0);
    else
        lua_pushliteral(L, "");
    int body = lua_gettop(L);

    lua_createtable(L, 0, 5);
    int out = lua_gettop(L);
    lua_pushliteral(L, "POST");
    lua_setfield(L, out, "method");
    lua_pushfstring(L, "/service/%s/operation/%s", prefix, op->name);
    lua_setfield(L, out, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, out, "query");

    lua_createtable(L, 0, 4);
    lua_pushliteral(L, "rpc-v2-cbor");
    lua_setfield(L, -2, "smithy-protocol");
    lua_pushliteral(L, "application/cbor");
    lua_setfield(L, -2, "Accept");
    if (lua_rawlen(L, body) > 0) {
        lua_pushliteral(L, "application/cbor");
        lua_setfield(L, -2, "Content-Type");
    }
    if (query_compatible(L, op)) {
        lua_pushliteral(L, "true");
        lua_setfield(L, -2, "x-amzn-query-mode");
    }
    lua_setfield(L, out, "headers");
    lua_pushvalue(L, body);
    lua_setfield(L, out, "body");
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

/* Decodes a CBOR document (shape 0: generic) for fo_rpc_parse_error. */
static int decode_doc(lua_State *L, const fo_op *op, const char *s, size_t n, int shape)
{
    if (!fo_cbor_decode(L, op, s, n))
        return 0;
    if (shape) {
        fo_cbor_shape(L, op, shape, lua_gettop(L));
        lua_remove(L, -2);
    }
    return 1;
}

void fo_rpcv2cbor_parse(lua_State *L, const fo_op *op, int resp)
{
    int base = lua_gettop(L);
    if (!op->output) {
        lua_newtable(L);
        return;
    }
    size_t n = 0;
    const char *s = lua_getfield(L, resp, "body") == LUA_TSTRING ? lua_tolstring(L, -1, &n) : "";
    fo_shape_push(L, op->shapes, op->output);
    int shape = lua_gettop(L);
    if (!decode_doc(L, op, s, n, shape))
        lua_newtable(L);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
}

void fo_rpcv2cbor_parse_error(lua_State *L, const fo_op *op, int resp)
{
    fo_rpc_parse_error(L, op, resp, decode_doc);
}
