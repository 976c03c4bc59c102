/* fo's Lua allocator: small blocks from per-size free lists (src/lua_pool.c). */
#ifndef FO_LUA_POOL_H
#define FO_LUA_POOL_H

#include <lua.h>

typedef struct fo_lua_pool fo_lua_pool;

/* A Lua state whose memory comes from a new pool, with the panic and warning functions
 * luaL_newstate sets; *pool receives the pool, to be freed after lua_close. NULL (and no
 * pool) when memory ran out. */
lua_State *fo_lua_pool_newstate(fo_lua_pool **pool);

/* Gives back the pool's memory: call after lua_close of its state. NULL is ignored. */
void fo_lua_pool_free(fo_lua_pool *pool);

#endif
