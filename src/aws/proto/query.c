/* Protocols ec2 and query: form-encoded requests, XML responses. (placeholder) */
#include "proto.h"

#include <lauxlib.h>

void fo_query_serialize(lua_State *L, const fo_op *op, int params, int ec2)
{
    (void)params;
    (void)ec2;
    luaL_error(L, "%s.%s: the query codec is not written yet", op->service, op->name);
}

void fo_query_parse(lua_State *L, const fo_op *op, int resp, int ec2)
{
    (void)resp;
    (void)ec2;
    luaL_error(L, "%s.%s: the query codec is not written yet", op->service, op->name);
}

void fo_query_parse_error(lua_State *L, const fo_op *op, int resp, int ec2)
{
    (void)resp;
    (void)ec2;
    luaL_error(L, "%s.%s: the query codec is not written yet", op->service, op->name);
}
