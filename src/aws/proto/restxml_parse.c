/* Protocol rest-xml: the response side (parse and parse_error). (placeholder) */
#include "proto.h"

#include <lauxlib.h>

void fo_restxml_parse(lua_State *L, const fo_op *op, int resp)
{
    (void)resp;
    luaL_error(L, "%s.%s: the restxml codec is not written yet", op->service, op->name);
}

void fo_restxml_parse_error(lua_State *L, const fo_op *op, int resp)
{
    (void)resp;
    luaL_error(L, "%s.%s: the restxml codec is not written yet", op->service, op->name);
}
