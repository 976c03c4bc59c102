/* fo.awsproto: the Lua face of the protocol codecs. Looks up the operation in the model,
 * picks the protocol's codec and hands it the operation's shapes. */
#include "fo/runtime.h"
#include "proto.h"

#include <lauxlib.h>
#include <string.h>

enum proto { P_EC2, P_QUERY, P_JSON, P_RESTXML };

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
    return (enum proto)luaL_error(L, "fo.awsproto: protocol '%s' is not supported",
                                  name ? name : "(none)");
}

/* Fills op from arguments (model, op_name) at 1 and 2; leaves the lookups on the stack. */
static enum proto load_op(lua_State *L, fo_op *op)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    op->name = luaL_checkstring(L, 2);
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
    if (lua_getfield(L, 1, "operations") != LUA_TTABLE)
        luaL_error(L, "fo.awsproto: the model has no operations");
    if (lua_getfield(L, -1, op->name) != LUA_TTABLE)
        luaL_error(L, "%s: no operation named '%s'", op->service, op->name);
    op->op = lua_gettop(L);
    op->input = lua_getfield(L, op->op, "input") == LUA_TTABLE ? lua_gettop(L) : 0;
    op->output = lua_getfield(L, op->op, "output") == LUA_TTABLE ? lua_gettop(L) : 0;
    return protocol_of(L, op->protocol);
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
    }
    return 1;
}

int luaopen_fo_awsproto(lua_State *L)
{
    static const luaL_Reg fns[] = {{"validate", l_validate},
                                   {"serialize", l_serialize},
                                   {"parse", l_parse},
                                   {"parse_error", l_parse_error},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
