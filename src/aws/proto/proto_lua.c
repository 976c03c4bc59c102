/* fo.awsproto: the Lua face of the protocol codecs. Looks up the operation in the model,
 * picks the protocol's codec and hands it the operation's shapes. The client side
 * (validate, serialize, parse, parse_error) and the simulator's side (parse_request,
 * serialize_response, serialize_error, validate_output; server.h). */
#include "fo/runtime.h"
#include "cbor.h"
#include "server.h"

#include <lauxlib.h>
#include <string.h>

enum proto { P_EC2, P_QUERY, P_JSON, P_RESTXML, P_CBOR };

static enum proto protocol_of(lua_State *L, const char *name)
{
    if (name && strcmp(name, "ec2") == 0)
        return P_EC2;
    if (name && strcmp(name, "query") == 0)
        return P_QUERY;
    if (name && strcmp(name, "json") == 0)
        return P_JSON;
    if (name && strcmp(name, "rest-xml") == 0)
        return P_RESTXML;
    if (name && strcmp(name, "smithy-rpc-v2-cbor") == 0)
        return P_CBOR;
    return (enum proto)luaL_error(L, "fo.awsproto: protocol '%s' is not supported",
                                  name ? name : "(none)");
}

/* Fills op from the model at 1 (no operation yet: op->op = 0); leaves the lookups on the
 * stack. */
static enum proto load_model(lua_State *L, fo_op *op)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    memset(op, 0, sizeof *op);
    op->name = "?";
    op->model = 1;
    op->service = fo_field_str(L, 1, "name");
    if (!op->service)
        op->service = "?";
    if (lua_getfield(L, 1, "shapes") != LUA_TTABLE)
        luaL_error(L, "fo.awsproto: the model has no shapes");
    op->shapes = lua_gettop(L);
    if (lua_getfield(L, 1, "metadata") != LUA_TTABLE)
        luaL_error(L, "fo.awsproto: the model has no metadata");
    op->protocol = fo_field_str(L, -1, "protocol");
    lua_pop(L, 1);
    return protocol_of(L, op->protocol);
}

/* Fills op from arguments (model, op_name) at 1 and 2; leaves the lookups on the stack. */
static enum proto load_op(lua_State *L, fo_op *op)
{
    enum proto protocol = load_model(L, op);
    const char *name = luaL_checkstring(L, 2);
    if (lua_getfield(L, 1, "operations") != LUA_TTABLE)
        luaL_error(L, "fo.awsproto: the model has no operations");
    if (lua_getfield(L, -1, name) != LUA_TTABLE)
        luaL_error(L, "%s: no operation named '%s'", op->service, name);
    fo_op_bind(L, op, name);
    return protocol;
}

/* Arguments at 3 (params or resp) must be a table; nil params mean {}. */
static int table_arg(lua_State *L, int allow_nil)
{
    if (allow_nil && lua_isnoneornil(L, 3)) {
        lua_newtable(L);
        lua_replace(L, 3);
    }
    luaL_checktype(L, 3, LUA_TTABLE);
    return 3;
}

/* validate(model, op_name, params) */
static int l_validate(lua_State *L)
{
    lua_settop(L, 3);
    table_arg(L, 1);
    fo_op op;
    load_op(L, &op);
    fo_customize_params(L, &op, 3);
    fo_validate(L, &op, 3);
    return 0;
}

/* serialize(model, op_name, params) → {method=, path=, query=, headers=, body=} */
static int l_serialize(lua_State *L)
{
    lua_settop(L, 3);
    table_arg(L, 1);
    fo_op op;
    enum proto protocol = load_op(L, &op);
    fo_customize_params(L, &op, 3);
    switch (protocol) {
    case P_EC2:
        fo_query_serialize(L, &op, 3, 1);
        break;
    case P_QUERY:
        fo_query_serialize(L, &op, 3, 0);
        break;
    case P_JSON:
        fo_json_serialize(L, &op, 3);
        break;
    case P_RESTXML:
        fo_restxml_serialize(L, &op, 3);
        break;
    case P_CBOR:
        fo_rpcv2cbor_serialize(L, &op, 3);
        break;
    }
    return 1;
}

/* parse(model, op_name, {status=, headers=, body=}) → output table */
static int l_parse(lua_State *L)
{
    lua_settop(L, 3);
    table_arg(L, 0);
    fo_op op;
    switch (load_op(L, &op)) {
    case P_EC2:
        fo_query_parse(L, &op, 3, 1);
        break;
    case P_QUERY:
        fo_query_parse(L, &op, 3, 0);
        break;
    case P_JSON:
        fo_json_parse(L, &op, 3);
        break;
    case P_RESTXML:
        fo_restxml_parse(L, &op, 3);
        break;
    case P_CBOR:
        fo_rpcv2cbor_parse(L, &op, 3);
        break;
    }
    return 1;
}

/* parse_error(model, op_name, resp) → {code=, message=, request_id=, type=, fields=} */
static int l_parse_error(lua_State *L)
{
    lua_settop(L, 3);
    table_arg(L, 0);
    fo_op op;
    switch (load_op(L, &op)) {
    case P_EC2:
        fo_query_parse_error(L, &op, 3, 1);
        break;
    case P_QUERY:
        fo_query_parse_error(L, &op, 3, 0);
        break;
    case P_JSON:
        fo_json_parse_error(L, &op, 3);
        break;
    case P_RESTXML:
        fo_restxml_parse_error(L, &op, 3);
        break;
    case P_CBOR:
        fo_rpcv2cbor_parse_error(L, &op, 3);
        break;
    }
    return 1;
}

/* ---- the simulator's side */

/* The body of parse_request, run protected: (model, req, ctx) → op_name, params. */
static int parse_request_body(lua_State *L)
{
    fo_request_ctx *ctx = lua_touserdata(L, 3);
    luaL_checktype(L, 2, LUA_TTABLE);
    fo_op op;
    switch (load_model(L, &op)) {
    case P_EC2:
        fo_query_parse_request(L, &op, 2, 1, ctx);
        break;
    case P_QUERY:
        fo_query_parse_request(L, &op, 2, 0, ctx);
        break;
    case P_JSON:
        fo_json_parse_request(L, &op, 2, ctx);
        break;
    case P_RESTXML:
        fo_restxml_parse_request(L, &op, 2, ctx);
        break;
    case P_CBOR:
        fo_rpcv2cbor_parse_request(L, &op, 2, ctx);
        break;
    }
    lua_pushstring(L, op.name);
    lua_insert(L, -2);
    return 2;
}

/* What follows "response: " in a shared decoder's message ("svc.Op: malformed JSON response:
 * truncated string at byte 10" → "truncated string at byte 10"), else the message after
 * its "svc.Op: ". */
static const char *decoder_detail(const char *msg)
{
    const char *at = strstr(msg, "response: ");
    if (at)
        return at + strlen("response: ");
    at = strstr(msg, ": ");
    return at ? at + 2 : msg;
}

/* parse_request(model, req) → op_name, params; a request that cannot be read raises
 * {code=, message=, status=}. */
static int l_parse_request(lua_State *L)
{
    lua_settop(L, 2);
    fo_request_ctx ctx = {0};
    lua_pushcfunction(L, parse_request_body);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushlightuserdata(L, &ctx);
    if (lua_pcall(L, 3, 2, 0) == LUA_OK)
        return 2;
    if (ctx.code && lua_type(L, -1) == LUA_TSTRING) /* a shared decoder refused a value */
        fo_request_error(L, ctx.status, ctx.code, "%s: %s",
                         ctx.what ? ctx.what : "malformed request",
                         decoder_detail(lua_tostring(L, -1)));
    return lua_error(L);
}

/* opts.request_id, or a fixed id when none is given. */
static const char *request_id(lua_State *L, int opts)
{
    const char *rid = lua_istable(L, opts) ? fo_field_str(L, opts, "request_id") : NULL;
    return rid ? rid : "00000000-0000-0000-0000-000000000000";
}

/* serialize_response(model, op_name, output, {request_id=}) → {status=, headers=, body=} */
static int l_serialize_response(lua_State *L)
{
    lua_settop(L, 4);
    table_arg(L, 1);
    fo_op op;
    enum proto protocol = load_op(L, &op);
    const char *rid = request_id(L, 4);
    switch (protocol) {
    case P_EC2:
        fo_query_serialize_response(L, &op, 3, rid, 1);
        break;
    case P_QUERY:
        fo_query_serialize_response(L, &op, 3, rid, 0);
        break;
    case P_JSON:
        fo_json_serialize_response(L, &op, 3, rid);
        break;
    case P_RESTXML:
        fo_restxml_serialize_response(L, &op, 3, rid);
        break;
    case P_CBOR:
        fo_rpcv2cbor_serialize_response(L, &op, 3, rid);
        break;
    }
    return 1;
}

/* serialize_error(model, op_name or nil, err, {request_id=}) → {status=, headers=, body=} */
static int l_serialize_error(lua_State *L)
{
    lua_settop(L, 4);
    luaL_checktype(L, 3, LUA_TTABLE);
    fo_op op;
    enum proto protocol = lua_isnil(L, 2) ? load_model(L, &op) : load_op(L, &op);
    const char *rid = request_id(L, 4);
    switch (protocol) {
    case P_EC2:
        fo_query_serialize_error(L, &op, 3, rid, 1);
        break;
    case P_QUERY:
        fo_query_serialize_error(L, &op, 3, rid, 0);
        break;
    case P_JSON:
        fo_json_serialize_error(L, &op, 3, rid);
        break;
    case P_RESTXML:
        fo_restxml_serialize_error(L, &op, 3, rid);
        break;
    case P_CBOR:
        fo_rpcv2cbor_serialize_error(L, &op, 3, rid);
        break;
    }
    return 1;
}

/* validate_output(model, op_name, output): the output's types, members and required members;
 * not enums (see below) nor the min/max ranges, which the models state for what AWS accepts (shapes
 * are shared by inputs and outputs) rather than for what it answers. Raises "svc.Op (output): Path:
 * problem". */
static int l_validate_output(lua_State *L)
{
    lua_settop(L, 3);
    table_arg(L, 1);
    fo_op op;
    load_op(L, &op);
    int problems;
    if (op.output) {
        /* Not the enums: a model's enums are not closed, and AWS answers values they lack
         * (EC2 reports an attached internet gateway as "available", not "attached"). */
        problems = fo_check_value(L, &op, op.output, 3, FO_CHECK_UNKNOWN | FO_CHECK_REQUIRED);
    } else {
        lua_pushnil(L);
        problems = lua_next(L, 3) != 0;
        if (problems) {
            lua_pop(L, 2);
            lua_pushliteral(L, "this operation has no output");
        }
    }
    if (problems)
        luaL_error(L, "%s.%s (output): %s", op.service, op.name, lua_tostring(L, -1));
    return 0;
}

/* cbor_decode(bytes) → the value (fo_cbor_decode: maps and arrays as tables, null as nil);
 * malformed CBOR raises. For tests and tools that look into CBOR bodies. */
static int l_cbor_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    fo_op op;
    memset(&op, 0, sizeof op);
    op.service = "cbor";
    op.name = "decode";
    if (!fo_cbor_decode(L, &op, s, n))
        lua_pushnil(L);
    return 1;
}

int luaopen_fo_awsproto(lua_State *L)
{
    static const luaL_Reg fns[] = {{"validate", l_validate},
                                   {"serialize", l_serialize},
                                   {"parse", l_parse},
                                   {"parse_error", l_parse_error},
                                   {"parse_request", l_parse_request},
                                   {"serialize_response", l_serialize_response},
                                   {"serialize_error", l_serialize_error},
                                   {"validate_output", l_validate_output},
                                   {"cbor_decode", l_cbor_decode},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
