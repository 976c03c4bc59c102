/* fo.process: runs a child process without a shell and without blocking the loop; its
 * stdout/stderr pipes and a pidfd are watched by the loop, a deadline kills it. */
#define _GNU_SOURCE
#include "fo/loop.h"
#include "fo/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERROR_MT "fo.process.Error"

extern char **environ;

struct pipe_in {
    fo_watch watch;
    char *data;
    size_t len, cap;
    int eof;
};

struct child {
    fo_loop *loop;
    pid_t pid;
    fo_watch exit_watch; /* the pidfd */
    struct pipe_in out, err;
    double deadline;
    int exited, status, timed_out;
    int ref;
    char *name;
};

static void pipe_close(struct child *c, struct pipe_in *p)
{
    if (p->watch.fd >= 0) {
        fo_loop_remove_watch(c->loop, &p->watch);
        close(p->watch.fd);
        p->watch.fd = -1;
    }
    p->eof = 1;
}

static void child_free(struct child *c)
{
    pipe_close(c, &c->out);
    pipe_close(c, &c->err);
    if (c->exit_watch.fd >= 0) {
        fo_loop_remove_watch(c->loop, &c->exit_watch);
        close(c->exit_watch.fd);
    }
    free(c->out.data);
    free(c->err.data);
    free(c->name);
    free(c);
}

/* Resumes the waiting task once the child has exited and both pipes are drained. */
static void maybe_finish(struct child *c)
{
    if (!c->exited || !c->out.eof || !c->err.eof)
        return;
    lua_State *co = fo_loop_thread(c->loop, c->ref);
    if (c->timed_out) {
        lua_pushboolean(co, 0);
        lua_createtable(co, 0, 3);
        lua_pushliteral(co, "timeout");
        lua_setfield(co, -2, "kind");
        lua_pushfstring(co, "process '%s' did not finish in time and was killed", c->name);
        lua_setfield(co, -2, "message");
        lua_pushstring(co, c->name);
        lua_setfield(co, -2, "command");
        luaL_setmetatable(co, ERROR_MT);
    } else {
        lua_pushboolean(co, 1);
        lua_createtable(co, 0, 4);
        if (WIFEXITED(c->status)) {
            lua_pushinteger(co, WEXITSTATUS(c->status));
            lua_setfield(co, -2, "code");
        } else if (WIFSIGNALED(c->status)) {
            lua_pushinteger(co, 128 + WTERMSIG(c->status));
            lua_setfield(co, -2, "code");
            lua_pushinteger(co, WTERMSIG(c->status));
            lua_setfield(co, -2, "signal");
        }
        lua_pushlstring(co, c->out.data ? c->out.data : "", c->out.len);
        lua_setfield(co, -2, "stdout");
        lua_pushlstring(co, c->err.data ? c->err.data : "", c->err.len);
        lua_setfield(co, -2, "stderr");
    }
    fo_loop_ready(c->loop, c->ref, 2);
    fo_loop_release(c->loop);
    child_free(c);
}

static void on_pipe(fo_watch *w, short revents)
{
    (void)revents;
    struct child *c = w->data;
    struct pipe_in *p = w == &c->out.watch ? &c->out : &c->err;
    char buf[8192];
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n > 0) {
            if (p->len + (size_t)n > p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 8192;
                while (cap < p->len + (size_t)n)
                    cap *= 2;
                char *d = realloc(p->data, cap);
                if (!d)
                    break;
                p->data = d;
                p->cap = cap;
            }
            memcpy(p->data + p->len, buf, (size_t)n);
            p->len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        pipe_close(c, p);
        break;
    }
    maybe_finish(c);
}

static void on_exit_ready(fo_watch *w, short revents)
{
    struct child *c = w->data;
    if (!revents && !c->timed_out && fo_loop_now(c->loop) >= c->deadline) {
        c->timed_out = 1;
        kill(-c->pid, SIGKILL);
        return;
    }
    if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
        c->exited = 1;
        fo_loop_remove_watch(c->loop, w);
        close(w->fd);
        w->fd = -1;
        if (c->timed_out) { /* a descendant that left the group may still hold the pipes */
            pipe_close(c, &c->out);
            pipe_close(c, &c->err);
        }
        maybe_finish(c);
    }
}

static long exit_timeout(fo_watch *w)
{
    struct child *c = w->data;
    if (c->timed_out || c->deadline <= 0)
        return -1;
    double left = (c->deadline - fo_loop_now(c->loop)) * 1000.0;
    return left <= 0 ? 0 : (long)left + 1;
}

static int run_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (!lua_toboolean(L, -2))
        return lua_error(L);
    return 1;
}

/* Builds the child's environment: ours, with `env` entries set (false removes one). */
static char **build_env(lua_State *L, int idx)
{
    size_t n = 0;
    while (environ[n])
        n++;
    size_t extra = 0;
    if (lua_istable(L, idx)) {
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            extra++;
            lua_pop(L, 1);
        }
    }
    char **envp = calloc(n + extra + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nlen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        if (lua_istable(L, idx)) {
            lua_pushlstring(L, environ[i], nlen);
            lua_rawget(L, idx);
            overridden = !lua_isnil(L, -1);
            lua_pop(L, 1);
        }
        if (!overridden)
            envp[k++] = environ[i];
    }
    if (lua_istable(L, idx)) {
        /* The "NAME=value" strings live in a table at `holder` until the spawn is done. */
        lua_newtable(L);
        int holder = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
                const char *kv =
                    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
                lua_rawseti(L, holder, (lua_Integer)k + 1);
                envp[k++] = (char *)kv;
            }
            lua_pop(L, 1);
        }
    }
    return envp;
}

/* process.run{argv = {...}, timeout = seconds, env = {NAME = value|false}}
 * → {code=, signal=, stdout=, stderr=}; raises {kind="spawn"|"timeout", message=}. */
static int process_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fo_loop *loop = fo_loop_of(L);
    fo_loop_check_task(L);
    lua_getfield(L, 1, "argv");
    if (!lua_istable(L, -1) || lua_rawlen(L, -1) == 0)
        return luaL_error(L, "fo.process.run: argv must be a non-empty list of strings");
    int argv_idx = lua_gettop(L);
    size_t argc = lua_rawlen(L, argv_idx);
    lua_getfield(L, 1, "timeout");
    double timeout = luaL_optnumber(L, -1, 60);
    if (!(timeout > 0) || isnan(timeout))
        return luaL_error(L, "fo.process.run: timeout must be a positive number of seconds");
    lua_getfield(L, 1, "env");
    int env_idx = lua_gettop(L);
    if (!lua_isnil(L, env_idx) && !lua_istable(L, env_idx))
        return luaL_error(L, "fo.process.run: env must be a table");

    /* Each argument stays on the stack until the spawn: room for all of them (beyond
     * LUA_MINSTACK the Lua stack must be grown first, or pushes write past its end). */
    if (argc > 100000)
        return luaL_error(L, "fo.process.run: too many arguments (%d)", (int)argc);
    luaL_checkstack(L, (int)argc + 8, "fo.process.run: too many arguments");
    char **argv = lua_newuserdatauv(L, (argc + 1) * sizeof *argv, 0);
    for (size_t i = 0; i < argc; i++) {
        lua_rawgeti(L, argv_idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "fo.process.run: argv[%d] must be a string", (int)i + 1);
        argv[i] = (char *)lua_tostring(L, -1);
        lua_insert(L, argv_idx + 1); /* keep it anchored */
        env_idx++;
    }
    argv[argc] = NULL;

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return luaL_error(L, "fo.process.run: pipe: %s", strerror(errno));
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return luaL_error(L, "fo.process.run: pipe: %s", strerror(errno));
    }
    char **envp = build_env(L, env_idx);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    /* Its own process group, so a deadline kills whatever it started too (sh -c "sleep 5"). */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    int rc = envp ? posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp) : ENOMEM;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(out[1]);
    close(err[1]);
    int pidfd = rc == 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
    if (rc != 0 || pidfd < 0) {
        close(out[0]);
        close(err[0]);
        if (rc == 0) { /* no pidfd (old kernel): reap synchronously, report it */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        lua_createtable(L, 0, 3);
        lua_pushliteral(L, "spawn");
        lua_setfield(L, -2, "kind");
        lua_pushfstring(L, "cannot run '%s': %s", argv[0], strerror(rc ? rc : errno));
        lua_setfield(L, -2, "message");
        lua_pushstring(L, argv[0]);
        lua_setfield(L, -2, "command");
        luaL_setmetatable(L, ERROR_MT);
        return lua_error(L);
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);

    struct child *c = calloc(1, sizeof *c);
    if (!c) {
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return luaL_error(L, "fo.process.run: out of memory");
    }
    c->loop = loop;
    c->pid = pid;
    c->name = strdup(argv[0]);
    c->deadline = fo_loop_now(loop) + timeout;
    c->out.watch = (fo_watch){.fd = out[0], .events = POLLIN, .ready = on_pipe, .data = c};
    c->err.watch = (fo_watch){.fd = err[0], .events = POLLIN, .ready = on_pipe, .data = c};
    c->exit_watch = (fo_watch){.fd = pidfd,
                               .events = POLLIN,
                               .keeps_alive = 1,
                               .ready = on_exit_ready,
                               .timeout_ms = exit_timeout,
                               .data = c};
    fo_loop_add_watch(loop, &c->out.watch);
    fo_loop_add_watch(loop, &c->err.watch);
    fo_loop_add_watch(loop, &c->exit_watch);
    c->ref = fo_loop_park(L);
    fo_loop_hold(loop);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, run_resumed);
}

/* process.cpu(): the CPU seconds this process has used, in user mode and in the kernel
 * (getrusage): a benchmark tells its own code's time from the kernel's (fsync, page
 * faults), which varies with the machine's I/O more than with the code. */
static int process_cpu(lua_State *L)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return luaL_error(L, "fo.process.cpu: getrusage: %s", strerror(errno));
    lua_pushnumber(L, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6);
    lua_pushnumber(L, (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return 2;
}

static const luaL_Reg process_funcs[] = {
    {"run", process_run},
    {"cpu", process_cpu},
    {NULL, NULL},
};

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "process error: %s", lua_tostring(L, -1));
    return 1;
}

int luaopen_fo_process(lua_State *L)
{
    if (luaL_newmetatable(L, ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, ERROR_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_newlib(L, process_funcs);
    return 1;
}
