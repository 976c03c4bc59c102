/* fo.tables: what Lua code would do slowly over large plain-data tables. equal(a, b)
 * compares two values as JSON would hold them (strings, numbers — integers and floats
 * apart —, booleans, tables by content), for the simulator's log, which compares each
 * entry of a changed service table with what was last saved; copy(v, lua_copy) is
 * fo.sim.records.copy, the deep copy the simulator makes of each record it saves and each
 * record a handler hands out. json_text(v, line, lead, EMPTY_ARRAY) is fo.json's text
 * encoder (src/json_text.c). */
#include "fo/runtime.h"
#include "json_text.h"

#include <lauxlib.h>

/* Deeper than any state the simulator keeps; beyond it the values count as different
 * (the caller then saves the entry: never wrong, only larger). */
#define MAX_DEPTH 64

static int equal_at(lua_State *L, int a, int b, int depth);

/* Tables at stack indices a and b (absolute) have the same keys and equal values. */
static int tables_equal(lua_State *L, int a, int b, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    luaL_checkstack(L, 4, "fo.tables.equal: nesting too deep");
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        count++;
        int va = lua_gettop(L);
        lua_pushvalue(L, va - 1);
        lua_rawget(L, b);
        int same = equal_at(L, va, va + 1, depth + 1);
        lua_pop(L, 2);
        if (!same) {
            lua_pop(L, 1); /* the key */
            return 0;
        }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) {
        lua_pop(L, 1);
        if (--count < 0) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return count == 0;
}

static int equal_at(lua_State *L, int a, int b, int depth)
{
    int ta = lua_type(L, a);
    if (ta != lua_type(L, b))
        return 0;
    switch (ta) {
    case LUA_TNIL:
        return 1;
    case LUA_TNUMBER:
        if (lua_isinteger(L, a) != lua_isinteger(L, b))
            return 0;
        return lua_rawequal(L, a, b);
    case LUA_TTABLE:
        if (lua_rawequal(L, a, b))
            return 1;
        return tables_equal(L, a, b, depth);
    default:
        return lua_rawequal(L, a, b);
    }
}

/* fo.tables.equal(a, b) → boolean. */
static int tables_equal_lua(lua_State *L)
{
    luaL_checkany(L, 1);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    lua_pushboolean(L, equal_at(L, 1, 2, 0));
    return 1;
}

/* Pushes a deep copy of the value at idx (absolute): a table's copy is a new table with
 * its keys and copies of its values (a table met twice is copied twice, as the Lua copy
 * does), filled in the order next() gives (the copy's own order is then that of a copy
 * made in Lua). A table with a metatable (a view, whose __pairs only Lua can run), and
 * one deeper than MAX_DEPTH (a cycle: the Lua copy's "stack overflow"), is copied by the
 * Lua function at stack index `lua_copy`. */
static void copy_at(lua_State *L, int idx, int depth, int lua_copy)
{
    if (lua_type(L, idx) != LUA_TTABLE) {
        lua_pushvalue(L, idx);
        return;
    }
    int lua = depth > MAX_DEPTH;
    if (!lua && lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        lua = 1;
    }
    if (lua) {
        lua_pushvalue(L, lua_copy);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        return;
    }
    luaL_checkstack(L, 5, "fo.tables.copy: nesting too deep");
    lua_newtable(L);
    int out = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pushvalue(L, -2);                     /* key, value, key */
        copy_at(L, out + 2, depth + 1, lua_copy); /* key, value, key, copy */
        lua_rawset(L, out);                       /* key, value */
        lua_pop(L, 1);
    }
}

/* fo.tables.copy(v, lua_copy) → a deep copy of v (fo.sim.records.copy; lua_copy: the same
 * in Lua, for tables with metatables). */
static int tables_copy_lua(lua_State *L)
{
    luaL_checkany(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    copy_at(L, 1, 0, 2);
    return 1;
}

int luaopen_fo_tables(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"equal", tables_equal_lua}, {"copy", tables_copy_lua}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    fo_json_text_register(L);
    return 1;
}
