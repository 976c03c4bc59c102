/* The event loop: one Lua state, coroutines parked on timers, HTTP transfers and file
 * descriptors, resumed from the loop's top level only (the cosocket model). */
#ifndef FO_LOOP_H
#define FO_LOOP_H

#include <curl/curl.h>
#include <lua.h>

typedef struct fo_loop fo_loop;

/* Registry field holding function(co, message), called when a coroutine started
 * without a done hook dies outside its own error handling. */
#define FO_LOOP_ABANDON_KEY "fo.loop.abandon"

/* Called when a coroutine started with fo_loop_start finishes: `co` holds its `nres`
 * results (status LUA_OK) or its error value (any other status). */
typedef void (*fo_done_fn)(void *data, lua_State *co, int status, int nres);

/* A file descriptor the loop polls for some C component (the HTTP server, a child
 * process). `ready` runs at the loop's top level with the poll result. `timeout_ms`
 * (optional) lets the component ask to be woken earlier; -1 means no deadline. */
typedef struct fo_watch {
    int fd;
    short events;
    int keeps_alive; /* does this watch keep fo_loop_run from returning? */
    void (*ready)(struct fo_watch *w, short revents);
    long (*timeout_ms)(struct fo_watch *w);
    void *data;
    struct fo_watch *next;
} fo_watch;

fo_loop *fo_loop_new(lua_State *L);
void fo_loop_free(fo_loop *loop);
/* The loop that owns L (stored in the registry), or a Lua error if none. */
fo_loop *fo_loop_of(lua_State *L);
/* libcurl's multi handle, created on the first call once libcurl is loaded (fo.http loads
 * it, src/dl/libcurl.h); NULL before that. */
CURLM *fo_loop_multi(fo_loop *loop);
double fo_loop_now(fo_loop *loop);

/* Runs until no coroutine is ready and nothing is pending. */
void fo_loop_run(fo_loop *loop);

/* Raises a Lua error unless L is a coroutine the loop runs (so it can park). Primitives
 * call it before starting any I/O on L's behalf. */
void fo_loop_check_task(lua_State *L);
/* Parks the running coroutine L (it must be one the loop resumed) and returns a
 * reference that fo_loop_ready takes to wake it. Raises a Lua error when L cannot
 * be parked (main thread, or a coroutine the loop does not run). */
int fo_loop_park(lua_State *L);
/* Yields L after fo_loop_park; `k` runs when it is resumed (may be NULL). */
int fo_loop_yield(lua_State *L, lua_KContext ctx, lua_KFunction k);
/* The coroutine of a parked reference (no stack change). */
lua_State *fo_loop_thread(fo_loop *loop, int ref);
/* Queues a parked coroutine to resume with the `nargs` values on top of its stack. */
void fo_loop_ready(fo_loop *loop, int ref, int nargs);
/* As fo_loop_ready, but the coroutine resumes in this turn of the loop, before it polls for
 * I/O: once the coroutines ready when the turn began have run (fo.core.wake_in_turn). */
void fo_loop_ready_in_turn(fo_loop *loop, int ref, int nargs);
/* Starts the function (plus `nargs` arguments) on top of L's stack as a new coroutine at
 * the next turn of the loop; `done` (may be NULL) is told how it ended. */
void fo_loop_start(fo_loop *loop, lua_State *L, int nargs, fo_done_fn done, void *data);

/* Counts a pending operation that keeps the loop alive (transfers, timers...). */
void fo_loop_hold(fo_loop *loop);
void fo_loop_release(fo_loop *loop);

void fo_loop_add_watch(fo_loop *loop, fo_watch *w);
void fo_loop_remove_watch(fo_loop *loop, fo_watch *w);

/* Wakes the parked coroutine `ref` after `seconds`. */
void fo_loop_timer(fo_loop *loop, double seconds, int ref);

/* Called by the HTTP client when a transfer of the multi handle completes. */
typedef void (*fo_transfer_done_fn)(fo_loop *loop, CURLMsg *msg);
void fo_loop_on_transfer_done(fo_loop *loop, fo_transfer_done_fn fn);

#endif
