/* placeholder: fo.sigv4 Lua binding (being written) */
#include "fo/runtime.h"
#include <lauxlib.h>
int luaopen_fo_sigv4(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
