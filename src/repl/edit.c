/* fo.edit: the REPL's input. On a terminal, libedit's readline-compatible callback
 * interface fed by a watch on stdin, so the event loop runs while the prompt waits
 * (history, completion through a Lua function); otherwise plain lines read from a watch.
 * Ctrl-C is a loop event (self-pipe): it clears the prompt or interrupts an evaluation. */
#include "fo/loop.h"
#include "fo/runtime.h"
#include "dl/libedit.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INTERRUPTED "interrupted"
#define PLAIN_MAX (1 << 20) /* a plain input line longer than this is cut there */

/* libedit, loaded when this module is (luaopen_fo_edit). */
static const struct fo_libedit *el;

/* One session per process: libedit's readline interface is global state too. */
static struct {
    int open;
    int tty; /* stdin is a terminal: libedit; else plain lines */
    fo_loop *loop;
    lua_State *main; /* the main thread: completion runs there, at the loop's top */
    int completer;   /* registry ref of the completion function, or LUA_NOREF */
    char *history;   /* the history file, or NULL */
    int history_max;

    fo_watch input; /* stdin, while a task reads */
    int reader;     /* registry ref of the parked reader, or LUA_NOREF */
    int line_done;  /* set by on_line: `line` holds the line, NULL at end of input */
    char *line;
    char *plain; /* plain mode: bytes read and not yet returned */
    size_t plain_len, plain_cap;
    int plain_eof;

    int waiter; /* registry ref of the task in edit.wait, or LUA_NOREF */
    int target; /* registry ref of the coroutine an interrupt stops */
    lua_State *volatile target_co;

    fo_watch signals;
    int pipe[2];
    struct sigaction old_int, old_winch;
} ed = {.reader = LUA_NOREF,
        .waiter = LUA_NOREF,
        .target = LUA_NOREF,
        .pipe = {-1, -1},
        .completer = LUA_NOREF};

/* Runs in the interrupted coroutine at its next instruction: it fails with "interrupted". */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    lua_pushliteral(L, INTERRUPTED);
    lua_error(L);
}

/* Signal context: only a write to the pipe and lua_sethook, which Lua allows here (lua.c's
 * own Ctrl-C does the same), so even a loop that never yields is stopped. */
static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    ssize_t r = write(ed.pipe[1], &b, 1);
    (void)r; /* a full pipe already holds a wake-up */
    lua_State *co = ed.target_co;
    if (signo == SIGINT && co)
        lua_sethook(co, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
    errno = saved;
}

/* Resumes the parked task `*ref` with the `n` values on top of L's stack. */
static void deliver(int *ref, lua_State *L, int n)
{
    int r = *ref;
    *ref = LUA_NOREF;
    lua_State *co = fo_loop_thread(ed.loop, r);
    lua_xmove(L, co, n);
    fo_loop_ready(ed.loop, r, n);
}

static void stop_reading(void)
{
    fo_loop_remove_watch(ed.loop, &ed.input);
    if (ed.tty)
        el->rl_callback_handler_remove();
}

/* Hands the reader its line, or nil and `why` ("eof", "interrupt"). */
static void give_line(const char *line, size_t len, const char *why)
{
    stop_reading();
    lua_State *L = ed.main;
    if (line) {
        lua_pushlstring(L, line, len);
        deliver(&ed.reader, L, 1);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, why);
        deliver(&ed.reader, L, 2);
    }
}

static void on_line(char *line)
{
    ed.line_done = 1;
    ed.line = line;
}

static int stdin_readable(void)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* libedit's getc: never blocks. Ctrl-C flushes the terminal's input queue, so bytes poll
 * reported may be gone by the time libedit reads: a blocking read would then stall the
 * loop until the next key. With nothing to read it returns NUL (set-mark in emacs mode, a
 * no-op on the screen); at the end of input, EOF. */
static int getc_nonblocking(FILE *f)
{
    (void)f;
    unsigned char c;
    int flags = fcntl(STDIN_FILENO, F_GETFL);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK);
    ssize_t n;
    do
        n = read(STDIN_FILENO, &c, 1);
    while (n < 0 && errno == EINTR);
    if (flags >= 0 && !(flags & O_NONBLOCK))
        fcntl(STDIN_FILENO, F_SETFL, flags);
    if (n == 1)
        return c;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
        return EOF;
    return 0;
}

/* Terminal input: one character at a time through libedit until a line is complete. */
static void on_tty_input(short revents)
{
    ed.line_done = 0;
    for (int i = 0; i < 4096 && (revents & POLLIN); i++) {
        el->rl_callback_read_char();
        if (ed.line_done || !stdin_readable())
            break;
    }
    if (ed.line_done) {
        char *line = ed.line;
        ed.line = NULL;
        give_line(line, line ? strlen(line) : 0, "eof");
        free(line);
    } else if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
        give_line(NULL, 0, "eof");
    }
}

/* Plain mode: the first line in the buffer, if complete (or the rest at the end of input):
 * 1 and its text and length (without the newline) and the bytes it used; 0 when there is
 * none yet; -1 at the end of input. */
static int plain_next(size_t *len, size_t *used)
{
    char *nl = ed.plain_len ? memchr(ed.plain, '\n', ed.plain_len) : NULL;
    size_t n;
    if (nl)
        n = (size_t)(nl - ed.plain);
    else if (ed.plain_eof || ed.plain_len >= PLAIN_MAX)
        n = ed.plain_len;
    else
        return 0;
    if (!nl && n == 0)
        return -1;
    *len = n > 0 && ed.plain[n - 1] == '\r' ? n - 1 : n;
    *used = nl ? n + 1 : n;
    return 1;
}

static void plain_consume(size_t used)
{
    memmove(ed.plain, ed.plain + used, ed.plain_len - used);
    ed.plain_len -= used;
}

/* Plain mode: hands the reader the next line if there is one (or the end of input). */
static void take_plain_line(void)
{
    size_t len, used;
    int r = plain_next(&len, &used);
    if (r < 0) {
        give_line(NULL, 0, "eof");
    } else if (r > 0) {
        give_line(ed.plain, len, NULL);
        plain_consume(used);
    }
}

static void on_plain_input(void)
{
    if (ed.plain_cap - ed.plain_len < 4096) {
        size_t cap = ed.plain_cap ? ed.plain_cap * 2 : 8192;
        char *p = realloc(ed.plain, cap);
        if (!p) {
            ed.plain_eof = 1; /* cannot read on: end the session rather than spin */
            take_plain_line();
            return;
        }
        ed.plain = p;
        ed.plain_cap = cap;
    }
    ssize_t n = read(STDIN_FILENO, ed.plain + ed.plain_len, ed.plain_cap - ed.plain_len);
    if (n > 0)
        ed.plain_len += (size_t)n;
    else if (n == 0 || (errno != EINTR && errno != EAGAIN))
        ed.plain_eof = 1;
    take_plain_line();
}

static void on_input(fo_watch *w, short revents)
{
    (void)w;
    if (ed.reader == LUA_NOREF)
        return;
    if (ed.tty)
        on_tty_input(revents);
    else
        on_plain_input();
}

/* The end of a wait: the interrupt target is forgotten before the values go back. */
static void forget_target(lua_State *L)
{
    ed.target_co = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, ed.target);
    ed.target = LUA_NOREF;
}

/* Ctrl-C: clears the prompt (the reader gets nil, "interrupt") or ends a wait. */
static void on_signal_pipe(fo_watch *w, short revents)
{
    (void)revents;
    unsigned char b[64];
    ssize_t n = read(w->fd, b, sizeof b);
    for (ssize_t i = 0; i < n; i++) {
        if (b[i] == SIGWINCH) {
            if (ed.tty && ed.reader != LUA_NOREF)
                el->rl_resize_terminal();
        } else if (ed.reader != LUA_NOREF) {
            if (ed.tty) {
                el->rl_replace_line("", 0);
                el->rl_callback_handler_remove();
                fputs("\n", stdout);
                fflush(stdout);
            }
            give_line(NULL, 0, "interrupt");
        } else if (ed.waiter != LUA_NOREF) {
            fo_loop_release(ed.loop);
            lua_pushliteral(ed.main, "interrupt");
            deliver(&ed.waiter, ed.main, 1);
        }
    }
}

struct completion {
    char **matches;
};

/* The longest common prefix of matches[1..n], as a new string. */
static char *common_prefix(char **m, size_t n)
{
    size_t len = strlen(m[1]);
    for (size_t i = 2; i <= n; i++) {
        size_t k = 0;
        while (k < len && m[i][k] == m[1][k])
            k++;
        len = k;
    }
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, m[1], len);
        p[len] = '\0';
    }
    return p;
}

/* Protected: calls completer(line before the cursor, word) and copies the strings of the
 * array it returns into a readline match list (first entry: their common prefix). */
static int complete_in_lua(lua_State *L)
{
    struct completion *c = lua_touserdata(L, 1);
    const char *text = lua_touserdata(L, 2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ed.completer);
    const char *buffer = *el->rl_line_buffer;
    size_t point = *el->rl_point > 0 && buffer ? (size_t)*el->rl_point : 0;
    if (buffer && point > strlen(buffer))
        point = strlen(buffer);
    lua_pushlstring(L, buffer ? buffer : "", point);
    lua_pushstring(L, text);
    lua_call(L, 2, 1);
    if (!lua_istable(L, -1))
        return 0;
    size_t n = lua_rawlen(L, -1), k = 0;
    if (n == 0)
        return 0;
    char **m = calloc(n + 2, sizeof *m);
    if (!m)
        return 0;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        const char *s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
        if (s && (m[k + 1] = strdup(s)) != NULL)
            k++;
        lua_pop(L, 1);
    }
    if (k > 0)
        m[0] = common_prefix(m, k);
    if (!m[0]) {
        for (size_t i = 1; i <= k; i++)
            free(m[i]);
        free(m);
        return 0;
    }
    c->matches = m;
    return 0;
}

/* libedit's completion hook: the Lua completer, never the file names fallback. */
static char **complete(const char *text, int start, int end)
{
    (void)start;
    (void)end;
    *el->rl_attempted_completion_over = 1;
    if (!ed.main || ed.completer == LUA_NOREF)
        return NULL;
    struct completion c = {NULL};
    lua_State *L = ed.main;
    int top = lua_gettop(L);
    lua_pushcfunction(L, complete_in_lua);
    lua_pushlightuserdata(L, &c);
    lua_pushlightuserdata(L, (void *)text);
    lua_pcall(L, 2, 0, 0); /* a failing completer completes nothing */
    lua_settop(L, top);
    return c.matches;
}

static void restore_signals(void)
{
    sigaction(SIGINT, &ed.old_int, NULL);
    if (ed.tty)
        sigaction(SIGWINCH, &ed.old_winch, NULL);
}

static int open_pipe(void)
{
    if (ed.pipe[0] >= 0)
        return 0;
    if (pipe(ed.pipe) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(ed.pipe[i], F_SETFD, FD_CLOEXEC);
        fcntl(ed.pipe[i], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

static void check_open(lua_State *L, const char *fn)
{
    if (!ed.open)
        luaL_error(L, "fo.edit.%s: no session (call fo.edit.open first)", fn);
}

/* edit.open{history = PATH, history_max = N, completer = fn(line, word) → {words}} → true
 * when stdin is a terminal (libedit: editing, history, completion), false for plain lines.
 * Takes over SIGINT (and SIGWINCH) until edit.close(). */
static int edit_open(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (ed.open)
        return luaL_error(L, "fo.edit.open: a session is already open");
    lua_getfield(L, 1, "history");
    const char *history = luaL_optstring(L, -1, NULL);
    lua_getfield(L, 1, "history_max");
    lua_Integer max = luaL_optinteger(L, -1, 1000);
    luaL_argcheck(L, max >= 1 && max <= 1000000, 1, "history_max must be 1..1000000");
    lua_getfield(L, 1, "completer");
    if (!lua_isnil(L, -1))
        luaL_checktype(L, -1, LUA_TFUNCTION);
    fo_loop *loop = fo_loop_of(L);
    if (open_pipe() != 0)
        return luaL_error(L, "fo.edit.open: cannot create a pipe: %s", strerror(errno));
    ed.completer = lua_isnil(L, -1) ? LUA_NOREF : luaL_ref(L, LUA_REGISTRYINDEX);
    ed.history = history ? strdup(history) : NULL;
    ed.history_max = (int)max;
    ed.loop = loop;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    ed.main = lua_tothread(L, -1);
    lua_pop(L, 1);
    ed.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    ed.plain_len = 0;
    ed.plain_eof = 0;
    if (ed.tty) {
        *el->rl_readline_name = "fo";
        *el->rl_catch_signals = 0; /* ours go through the loop; libedit's would re-raise */
        *el->rl_catch_sigwinch = 0;
        *el->rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(,+-*/%^#~[]})";
        *el->rl_attempted_completion_function = complete;
        *el->rl_completion_append_character = '\0';
        *el->rl_getc_function = getc_nonblocking;
        el->rl_initialize();
        el->stifle_history(ed.history_max);
        if (ed.history)
            el->read_history(ed.history); /* none yet is fine */
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &ed.old_int);
    if (ed.tty)
        sigaction(SIGWINCH, &sa, &ed.old_winch);
    ed.signals = (fo_watch){.fd = ed.pipe[0], .events = POLLIN, .ready = on_signal_pipe};
    fo_loop_add_watch(loop, &ed.signals);
    ed.open = 1;
    lua_pushboolean(L, ed.tty);
    return 1;
}

static int resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

/* edit.read(prompt) → the next line (without its newline); nil, "eof" at the end of input
 * (Ctrl-D); nil, "interrupt" on Ctrl-C. The task waits on the loop meanwhile. The prompt
 * is shown on a terminal only. */
static int edit_read(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    check_open(L, "read");
    fo_loop_check_task(L);
    if (ed.reader != LUA_NOREF)
        return luaL_error(L, "fo.edit.read: another task is already reading");
    if (!ed.tty) {
        size_t len, used;
        int r = plain_next(&len, &used);
        if (r < 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "eof");
            return 2;
        }
        if (r > 0) {
            lua_pushlstring(L, ed.plain, len);
            plain_consume(used);
            return 1;
        }
    }
    ed.reader = fo_loop_park(L);
    ed.input =
        (fo_watch){.fd = STDIN_FILENO, .events = POLLIN, .keeps_alive = 1, .ready = on_input};
    fo_loop_add_watch(ed.loop, &ed.input);
    if (ed.tty) {
        fflush(stdout);
        el->rl_callback_handler_install(prompt, on_line);
    }
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, resumed);
}

/* edit.wait() → the values given to edit.wake(...), or "interrupt" on Ctrl-C. */
static int edit_wait(lua_State *L)
{
    check_open(L, "wait");
    fo_loop_check_task(L);
    if (ed.waiter != LUA_NOREF)
        return luaL_error(L, "fo.edit.wait: another task is already waiting");
    ed.waiter = fo_loop_park(L);
    fo_loop_hold(ed.loop);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, resumed);
}

/* edit.guard(co): from now on Ctrl-C also stops the coroutine `co` at its next
 * instruction (when it runs again) with the error "interrupted"; edit.guard(nil): no more. */
static int edit_guard(lua_State *L)
{
    check_open(L, "guard");
    if (!lua_isnoneornil(L, 1))
        luaL_checktype(L, 1, LUA_TTHREAD);
    forget_target(L);
    if (!lua_isnoneornil(L, 1)) {
        lua_settop(L, 1);
        ed.target_co = lua_tothread(L, 1);
        ed.target = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

/* edit.wake(...) → true when a task was waiting in edit.wait (it gets the values). */
static int edit_wake(lua_State *L)
{
    check_open(L, "wake");
    if (ed.waiter == LUA_NOREF) {
        lua_pushboolean(L, 0);
        return 1;
    }
    fo_loop_release(ed.loop);
    deliver(&ed.waiter, L, lua_gettop(L));
    lua_pushboolean(L, 1);
    return 1;
}

/* edit.add_history(line) → true, or nil and why the history file could not be written.
 * The file is rewritten (mode 0600) at each line so that a crash or os.exit loses
 * nothing; it holds the last history_max lines. No-op in plain mode. */
static int edit_add_history(lua_State *L)
{
    const char *line = luaL_checkstring(L, 1);
    check_open(L, "add_history");
    if (!ed.tty) {
        lua_pushboolean(L, 1);
        return 1;
    }
    el->add_history(line);
    if (ed.history) {
        mode_t old = umask(077);
        int r = el->write_history(ed.history);
        umask(old);
        if (r != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot write the history file %s: %s", ed.history,
                            strerror(r > 0 ? r : errno));
            return 2;
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* edit.close(): the terminal back to normal, signals back to their previous handlers. */
static int edit_close(lua_State *L)
{
    if (!ed.open)
        return 0;
    if (ed.reader != LUA_NOREF) {
        stop_reading();
        luaL_unref(L, LUA_REGISTRYINDEX, ed.reader); /* that task stays parked for good */
        ed.reader = LUA_NOREF;
    }
    forget_target(L);
    if (ed.waiter != LUA_NOREF) {
        fo_loop_release(ed.loop);
        luaL_unref(L, LUA_REGISTRYINDEX, ed.waiter);
        ed.waiter = LUA_NOREF;
    }
    restore_signals();
    fo_loop_remove_watch(ed.loop, &ed.signals);
    luaL_unref(L, LUA_REGISTRYINDEX, ed.completer);
    ed.completer = LUA_NOREF;
    free(ed.history);
    ed.history = NULL;
    free(ed.plain);
    ed.plain = NULL;
    ed.plain_cap = ed.plain_len = 0;
    ed.open = 0;
    return 0;
}

/* edit.isatty() → whether a session would use libedit (stdin and stdout are terminals). */
static int edit_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
    return 1;
}

static const luaL_Reg edit_functions[] = {
    {"open", edit_open},
    {"read", edit_read},
    {"wait", edit_wait},
    {"wake", edit_wake},
    {"guard", edit_guard},
    {"close", edit_close},
    {"add_history", edit_add_history},
    {"isatty", edit_isatty},
    {NULL, NULL},
};

int luaopen_fo_edit(lua_State *L)
{
    char err[256];
    el = fo_libedit_load(err, sizeof err);
    if (!el)
        return luaL_error(L, "fo.edit: %s", err);
    luaL_newlib(L, edit_functions);
    return 1;
}
