/* fo.signal: a task can wait for SIGINT/SIGTERM/SIGHUP on the event loop (a server runs
 * until one arrives, then closes cleanly). The handler only writes the signal number to
 * a pipe the loop watches (self-pipe), so nothing unsafe runs in signal context and the
 * process's signal mask, inherited by children, is left alone. */
#include "fo/loop.h"
#include "fo/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int signo;
} known_signals[] = {{"INT", SIGINT}, {"TERM", SIGTERM}, {"HUP", SIGHUP}};
#define N_SIGNALS (sizeof known_signals / sizeof known_signals[0])

static int signal_pipe[2] = {-1, -1};

/* The one waiting task (a second concurrent wait is refused). */
static struct {
    fo_watch watch;
    fo_loop *loop;
    int ref;
    int active;
    int installed[N_SIGNALS];
    struct sigaction previous[N_SIGNALS];
} waiter;

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t r = write(signal_pipe[1], &b, 1);
    (void)r; /* a full pipe already holds a wake-up */
    errno = saved;
}

static void restore_handlers(void)
{
    for (size_t i = 0; i < N_SIGNALS; i++)
        if (waiter.installed[i]) {
            sigaction(known_signals[i].signo, &waiter.previous[i], NULL);
            waiter.installed[i] = 0;
        }
}

static const char *signal_name(int signo)
{
    for (size_t i = 0; i < N_SIGNALS; i++)
        if (known_signals[i].signo == signo)
            return known_signals[i].name;
    return "?";
}

static void on_pipe_ready(fo_watch *w, short revents)
{
    (void)revents;
    unsigned char b;
    if (read(w->fd, &b, 1) != 1)
        return;
    restore_handlers();
    fo_loop_remove_watch(waiter.loop, w);
    fo_loop_release(waiter.loop);
    waiter.active = 0;
    lua_State *co = fo_loop_thread(waiter.loop, waiter.ref);
    lua_pushstring(co, signal_name(b));
    fo_loop_ready(waiter.loop, waiter.ref, 1);
}

static int resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)L;
    (void)status;
    (void)ctx;
    return 1;
}

static int open_pipe(void)
{
    if (signal_pipe[0] >= 0)
        return 0;
    if (pipe(signal_pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(signal_pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(signal_pipe[i], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

/* fo.signal.wait{"INT", "TERM"} → the name of the first of these signals to arrive. The
 * calling task waits on the loop (which stays alive meanwhile); the signals' previous
 * handlers are restored once one arrives. */
static int signal_wait(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fo_loop_check_task(L);
    if (waiter.active)
        return luaL_error(L, "fo.signal.wait: another task is already waiting for signals");
    int wanted[N_SIGNALS] = {0};
    lua_Integer n = luaL_len(L, 1);
    if (n < 1)
        return luaL_argerror(L, 1, "name at least one signal (INT, TERM, HUP)");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i);
        const char *name = lua_tostring(L, -1);
        size_t k = 0;
        while (k < N_SIGNALS && !(name && strcmp(name, known_signals[k].name) == 0))
            k++;
        if (k == N_SIGNALS)
            return luaL_error(L, "fo.signal.wait: unknown signal '%s' (use INT, TERM or HUP)",
                              name ? name : "?");
        wanted[k] = 1;
        lua_pop(L, 1);
    }
    if (open_pipe() != 0)
        return luaL_error(L, "fo.signal.wait: cannot create a pipe: %s", strerror(errno));
    fo_loop *loop = fo_loop_of(L);
    for (size_t k = 0; k < N_SIGNALS; k++) {
        if (!wanted[k])
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(known_signals[k].signo, &sa, &waiter.previous[k]);
        waiter.installed[k] = 1;
    }
    waiter.loop = loop;
    waiter.ref = fo_loop_park(L);
    waiter.active = 1;
    waiter.watch = (fo_watch){
        .fd = signal_pipe[0], .events = POLLIN, .keeps_alive = 1, .ready = on_pipe_ready};
    fo_loop_add_watch(loop, &waiter.watch);
    fo_loop_hold(loop);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, resumed);
}

/* fo.signal.cancel() → true when a task was waiting: its wait returns nil and the signals'
 * previous handlers are back; false when none was. The engine arms a wait for the length of
 * an apply and cancels it after, so the loop does not stay alive for it. */
static int signal_cancel(lua_State *L)
{
    if (!waiter.active) {
        lua_pushboolean(L, 0);
        return 1;
    }
    restore_handlers();
    fo_loop_remove_watch(waiter.loop, &waiter.watch);
    fo_loop_release(waiter.loop);
    waiter.active = 0;
    lua_State *co = fo_loop_thread(waiter.loop, waiter.ref);
    lua_pushnil(co);
    fo_loop_ready(waiter.loop, waiter.ref, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg signal_functions[] = {
    {"wait", signal_wait},
    {"cancel", signal_cancel},
    {NULL, NULL},
};

int luaopen_fo_signal(lua_State *L)
{
    luaL_newlib(L, signal_functions);
    return 1;
}
