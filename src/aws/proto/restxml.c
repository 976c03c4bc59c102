/* Protocol restxml. (placeholder) */
#include "proto.h"

#include <lauxlib.h>

void fo_restxml_serialize(lua_State *L, const fo_op *op, int params)
{
    (void)params;
    luaL_error(L, "%s.%s: the restxml codec is not written yet", op->service, op->name);
}
