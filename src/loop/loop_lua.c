/* fo.core: the event loop as Lua sees it — park and wake coroutines, sleep, clocks.
 * Tasks, joins and error propagation are built on these in lua/fo/task.lua. */
#include "fo/loop.h"
#include "fo/runtime.h"

#include <lauxlib.h>
#include <math.h>
#include <time.h>

#define SUSPENDED_KEY "fo.core.suspended"

static int resumed_plain(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* core.suspend(): parks the running task until core.wake(co, ...) gives it values. */
static int core_suspend(lua_State *L)
{
    int ref = fo_loop_park(L);
    lua_getfield(L, LUA_REGISTRYINDEX, SUSPENDED_KEY);
    lua_pushthread(L);
    lua_pushinteger(L, ref);
    lua_rawset(L, -3);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, resumed_plain);
}

/* Queues the task core.suspend parked, `co` (argument 1), to resume with the values after
 * it: in this turn of the loop (before it polls) when `in_turn`, else at the next. */
static int wake(lua_State *L, int in_turn)
{
    luaL_checktype(L, 1, LUA_TTHREAD);
    fo_loop *loop = fo_loop_of(L);
    lua_getfield(L, LUA_REGISTRYINDEX, SUSPENDED_KEY);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    if (lua_isnil(L, -1)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    int ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_State *co = lua_tothread(L, 1);
    int nargs = lua_gettop(L) - 1;
    if (!lua_checkstack(co, nargs))
        return luaL_error(L, "too many values to wake a task with (%d)", nargs);
    lua_xmove(L, co, nargs);
    if (in_turn)
        fo_loop_ready_in_turn(loop, ref, nargs);
    else
        fo_loop_ready(loop, ref, nargs);
    lua_pushboolean(L, 1);
    return 1;
}

/* core.wake(co, ...): queues a suspended task to resume with the given values.
 * Returns false when `co` is not suspended by core.suspend. */
static int core_wake(lua_State *L)
{
    return wake(L, 0);
}

/* core.wake_in_turn(co, ...): core.wake, but `co` resumes in this turn of the loop, before
 * the loop polls for I/O (a task answering others once its work is done: their answers go
 * out with the poll that follows, not one turn later). */
static int core_wake_in_turn(lua_State *L)
{
    return wake(L, 1);
}

/* core.start(fn, ...): runs fn(...) as a new coroutine at the next turn of the loop;
 * returns the coroutine. Errors must be handled inside fn (lua/fo/task.lua does). */
static int core_start(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    fo_loop *loop = fo_loop_of(L);
    int nargs = lua_gettop(L) - 1;
    fo_loop_start(loop, L, nargs, NULL, NULL);
    return 0;
}

/* core.sleep(seconds): parks the running task on a timer. */
static int core_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && !isnan(s), 1, "seconds must be a non-negative number");
    fo_loop *loop = fo_loop_of(L);
    int ref = fo_loop_park(L);
    fo_loop_timer(loop, (double)s, ref);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, resumed_plain);
}

/* core.now(): monotonic seconds, for measuring durations. */
static int core_now(lua_State *L)
{
    lua_pushnumber(L, fo_loop_now(fo_loop_of(L)));
    return 1;
}

/* core.time(): wall-clock seconds since the epoch, with sub-second precision. */
static int core_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* core.running(): the running coroutine, and whether the loop runs it (it can yield). */
static int core_in_task(lua_State *L)
{
    lua_pushboolean(L, lua_isyieldable(L));
    return 1;
}

/* core.on_abandon(fn): fn(co, message) is told of a coroutine that died outside its own
 * error handling (it yielded directly, for instance). */
static int core_on_abandon(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, FO_LOOP_ABANDON_KEY);
    return 0;
}

static const luaL_Reg core_funcs[] = {
    {"on_abandon", core_on_abandon},
    {"suspend", core_suspend},
    {"wake", core_wake},
    {"wake_in_turn", core_wake_in_turn},
    {"start", core_start},
    {"sleep", core_sleep},
    {"now", core_now},
    {"time", core_time},
    {"in_task", core_in_task},
    {NULL, NULL},
};

int luaopen_fo_core(lua_State *L)
{
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, SUSPENDED_KEY);
    luaL_newlib(L, core_funcs);
    return 1;
}
