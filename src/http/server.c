/* placeholder */
#include "fo/runtime.h"
#include <lauxlib.h>
int luaopen_fo_httpd(lua_State *L)
{
    lua_newtable(L);
    return 1;
}
