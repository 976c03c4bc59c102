/* The event loop: a ready queue of coroutines, a timer heap and libcurl's multi handle,
 * polled together with C watchers. Coroutines are only ever resumed from here. The multi
 * handle exists from the first HTTP request on (libcurl is loaded then, src/dl/libcurl.h);
 * until then the watchers are polled with poll(2). */
#include "fo/loop.h"
#include "dl/libcurl.h"

#include <lauxlib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LOOP_KEY "fo.loop"
#define DONE_KEY "fo.loop.done"
#define ABANDON_KEY FO_LOOP_ABANDON_KEY
/* rounds of run_in_turn per turn of the loop */
#define IN_TURN_ROUNDS 4

struct ready_entry {
    int ref;
    int nargs;
};

/* Coroutines to resume, in the order they were queued. */
struct ready_queue {
    struct ready_entry *at;
    size_t len, cap;
};

struct timer {
    double when;
    unsigned long seq;
    int ref;
};

struct done_hook {
    fo_done_fn fn;
    void *data;
};

struct fo_loop {
    lua_State *L;
    CURLM *multi;
    lua_State *current; /* the coroutine being resumed, if any */
    int yielded_by_loop;

    struct ready_queue ready;
    /* to resume in this turn, after `ready`'s batch and before the poll */
    struct ready_queue in_turn;

    struct timer *timers;
    size_t timers_len, timers_cap;
    unsigned long timer_seq;

    int holds;
    fo_watch *watches;
    fo_transfer_done_fn transfer_done;
};

static void *grow(void *p, size_t *cap, size_t elem)
{
    size_t ncap = *cap ? *cap * 2 : 16;
    void *np = realloc(p, ncap * elem);
    if (!np) {
        fputs("fo: out of memory\n", stderr);
        abort();
    }
    *cap = ncap;
    return np;
}

double fo_loop_now(fo_loop *loop)
{
    (void)loop;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

fo_loop *fo_loop_new(lua_State *L)
{
    fo_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->L = L;
    lua_pushlightuserdata(L, loop);
    lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, DONE_KEY);
    return loop;
}

void fo_loop_free(fo_loop *loop)
{
    if (!loop)
        return;
    const struct fo_curl *curl = fo_curl_loaded();
    if (loop->multi && curl)
        curl->multi_cleanup(loop->multi);
    free(loop->ready.at);
    free(loop->in_turn.at);
    free(loop->timers);
    free(loop);
}

fo_loop *fo_loop_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
    fo_loop *loop = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!loop)
        luaL_error(L, "fo: no event loop in this Lua state");
    return loop;
}

CURLM *fo_loop_multi(fo_loop *loop)
{
    const struct fo_curl *curl = fo_curl_loaded();
    if (!loop->multi && curl)
        loop->multi = curl->multi_init();
    return loop->multi;
}

void fo_loop_hold(fo_loop *loop)
{
    loop->holds++;
}

void fo_loop_release(fo_loop *loop)
{
    loop->holds--;
}

void fo_loop_on_transfer_done(fo_loop *loop, fo_transfer_done_fn fn)
{
    loop->transfer_done = fn;
}

void fo_loop_check_task(lua_State *L)
{
    fo_loop *loop = fo_loop_of(L);
    if (L != loop->current || !lua_isyieldable(L))
        luaL_error(L, "this call must run in a task of the fo event loop (the main chunk or "
                      "fo.spawn), not in a plain coroutine or metamethod");
}

int fo_loop_park(lua_State *L)
{
    fo_loop_check_task(L);
    lua_pushthread(L);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

int fo_loop_yield(lua_State *L, lua_KContext ctx, lua_KFunction k)
{
    fo_loop *loop = fo_loop_of(L);
    loop->yielded_by_loop = 1;
    return lua_yieldk(L, 0, ctx, k);
}

lua_State *fo_loop_thread(fo_loop *loop, int ref)
{
    lua_rawgeti(loop->L, LUA_REGISTRYINDEX, ref);
    lua_State *co = lua_tothread(loop->L, -1);
    lua_pop(loop->L, 1);
    return co;
}

static void queue_push(struct ready_queue *q, int ref, int nargs)
{
    if (q->len == q->cap)
        q->at = grow(q->at, &q->cap, sizeof *q->at);
    q->at[q->len++] = (struct ready_entry){ref, nargs};
}

void fo_loop_ready(fo_loop *loop, int ref, int nargs)
{
    queue_push(&loop->ready, ref, nargs);
}

void fo_loop_ready_in_turn(fo_loop *loop, int ref, int nargs)
{
    queue_push(&loop->in_turn, ref, nargs);
}

void fo_loop_start(fo_loop *loop, lua_State *L, int nargs, fo_done_fn done, void *data)
{
    lua_State *co = lua_newthread(L);
    /* a new thread has room for LUA_MINSTACK values: more arguments need it grown */
    if (!lua_checkstack(co, nargs + 1))
        luaL_error(L, "too many arguments for a task (%d)", nargs);
    lua_insert(L, -(nargs + 2));
    lua_xmove(L, co, nargs + 1);
    if (done) {
        struct done_hook *hook = malloc(sizeof *hook);
        if (!hook) {
            fputs("fo: out of memory\n", stderr);
            abort();
        }
        hook->fn = done;
        hook->data = data;
        lua_getfield(L, LUA_REGISTRYINDEX, DONE_KEY);
        lua_pushvalue(L, -2);
        lua_pushlightuserdata(L, hook);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    fo_loop_ready(loop, luaL_ref(L, LUA_REGISTRYINDEX), nargs);
}

/* Tells the done hook of a finished coroutine (if any) how it ended. */
static void finish(fo_loop *loop, lua_State *co, int status, int nres)
{
    lua_State *L = loop->L;
    lua_getfield(L, LUA_REGISTRYINDEX, DONE_KEY);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    struct done_hook *hook = lua_touserdata(L, -1);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    if (hook) {
        hook->fn(hook->data, co, status, nres);
        free(hook);
    } else if (status != LUA_OK) {
        /* Tasks catch their own errors in Lua, so this is a coroutine that cannot go on
         * (e.g. it yielded directly): tell the task layer, which fails the task. */
        lua_getfield(L, LUA_REGISTRYINDEX, ABANDON_KEY);
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        lua_pushstring(L, luaL_tolstring(co, -1, NULL));
        lua_pop(co, 1);
        if (!lua_isfunction(L, -3)) {
            fprintf(stderr, "fo: a coroutine failed: %s\n", lua_tostring(L, -1));
            lua_pop(L, 3);
        } else if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            fprintf(stderr, "fo: a coroutine failed: %s\n", luaL_tolstring(L, -1, NULL));
            lua_pop(L, 2);
        }
    }
}

static void resume(fo_loop *loop, int ref, int nargs)
{
    lua_State *L = loop->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_State *co = lua_tothread(L, -1);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    /* Keep the thread anchored on L's stack while it runs. */
    lua_State *prev = loop->current;
    loop->current = co;
    loop->yielded_by_loop = 0;
    int nres = 0;
    int status = lua_resume(co, L, nargs, &nres);
    loop->current = prev;
    if (status == LUA_YIELD) {
        if (loop->yielded_by_loop) {
            lua_pop(co, nres);
            lua_pop(L, 1);
            return;
        }
        lua_pop(co, nres);
        lua_pushliteral(co, "coroutine.yield() was called directly in a task of the fo event "
                            "loop; use fo.sleep, fo.http or a coroutine of your own");
        status = LUA_ERRRUN;
        nres = 1;
    }
    finish(loop, co, status, nres);
    lua_pop(L, 1);
}

/* --- timers: a binary min-heap ordered by (when, seq) --- */

static int timer_less(const struct timer *a, const struct timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

void fo_loop_timer(fo_loop *loop, double seconds, int ref)
{
    if (loop->timers_len == loop->timers_cap)
        loop->timers = grow(loop->timers, &loop->timers_cap, sizeof *loop->timers);
    size_t i = loop->timers_len++;
    struct timer t = {fo_loop_now(loop) + seconds, loop->timer_seq++, ref};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_less(&t, &loop->timers[parent]))
            break;
        loop->timers[i] = loop->timers[parent];
        i = parent;
    }
    loop->timers[i] = t;
}

static struct timer timer_pop(fo_loop *loop)
{
    struct timer top = loop->timers[0];
    struct timer last = loop->timers[--loop->timers_len];
    size_t i = 0, n = loop->timers_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_less(&loop->timers[c + 1], &loop->timers[c]))
            c++;
        if (!timer_less(&loop->timers[c], &last))
            break;
        loop->timers[i] = loop->timers[c];
        i = c;
    }
    if (n > 0)
        loop->timers[i] = last;
    return top;
}

static void fire_timers(fo_loop *loop)
{
    double now = fo_loop_now(loop);
    while (loop->timers_len > 0 && loop->timers[0].when <= now) {
        struct timer t = timer_pop(loop);
        fo_loop_ready(loop, t.ref, 0);
    }
}

/* --- watches --- */

void fo_loop_add_watch(fo_loop *loop, fo_watch *w)
{
    w->next = loop->watches;
    loop->watches = w;
}

void fo_loop_remove_watch(fo_loop *loop, fo_watch *w)
{
    for (fo_watch **p = &loop->watches; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            return;
        }
    }
}

static int watch_listed(fo_loop *loop, fo_watch *w)
{
    for (fo_watch *x = loop->watches; x; x = x->next)
        if (x == w)
            return 1;
    return 0;
}

static int alive(fo_loop *loop)
{
    if (loop->ready.len > 0 || loop->in_turn.len > 0 || loop->holds > 0 || loop->timers_len > 0)
        return 1;
    for (fo_watch *w = loop->watches; w; w = w->next)
        if (w->keeps_alive)
            return 1;
    return 0;
}

/* Resumes what `q` holds now; what they queue meanwhile waits in `q` for the next batch
 * (so that I/O is polled between batches). */
static void run_batch(fo_loop *loop, struct ready_queue *q)
{
    struct ready_queue batch = *q;
    *q = (struct ready_queue){0};
    for (size_t i = 0; i < batch.len; i++)
        resume(loop, batch.at[i].ref, batch.at[i].nargs);
    free(batch.at);
}

/* Resumes what was queued to run in this turn (fo_loop_ready_in_turn), and what that queues
 * in turn, a few rounds at most: what is left goes to the ready queue, after the next poll
 * (tasks waking each other in turn again and again must not keep I/O from being polled). */
static void run_in_turn(fo_loop *loop)
{
    for (int round = 0; round < IN_TURN_ROUNDS && loop->in_turn.len > 0; round++)
        run_batch(loop, &loop->in_turn);
    for (size_t i = 0; i < loop->in_turn.len; i++)
        fo_loop_ready(loop, loop->in_turn.at[i].ref, loop->in_turn.at[i].nargs);
    loop->in_turn.len = 0;
}

static int poll_timeout_ms(fo_loop *loop)
{
    if (loop->ready.len > 0 || loop->in_turn.len > 0)
        return 0;
    long t = 60000;
    if (loop->timers_len > 0) {
        double d = (loop->timers[0].when - fo_loop_now(loop)) * 1000.0;
        long ms = d <= 0 ? 0 : (long)d + 1;
        if (ms < t)
            t = ms;
    }
    long curl_ms = -1;
    if (loop->multi)
        fo_curl_loaded()->multi_timeout(loop->multi, &curl_ms);
    if (curl_ms >= 0 && curl_ms < t)
        t = curl_ms;
    for (fo_watch *w = loop->watches; w; w = w->next) {
        long ms = w->timeout_ms ? w->timeout_ms(w) : -1;
        if (ms >= 0 && ms < t)
            t = ms;
    }
    return (int)t;
}

/* curl_multi_poll without transfers: poll(2) on the watchers' descriptors. */
static void poll_fds(struct curl_waitfd *fds, unsigned n, int timeout_ms)
{
    struct pollfd pfds[64];
    for (unsigned i = 0; i < n; i++)
        pfds[i] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events, .revents = 0};
    if (poll(pfds, n, timeout_ms) <= 0)
        return; /* timeout, or EINTR: the caller's deadlines are checked all the same */
    for (unsigned i = 0; i < n; i++)
        fds[i].revents = pfds[i].revents;
}

static void poll_once(fo_loop *loop)
{
    struct curl_waitfd fds[64];
    fo_watch *owners[64];
    unsigned n = 0;
    for (fo_watch *w = loop->watches; w && n < 64; w = w->next) {
        if (w->fd < 0)
            continue;
        fds[n] = (struct curl_waitfd){.fd = w->fd, .events = w->events, .revents = 0};
        owners[n++] = w;
    }
    if (loop->multi) {
        const struct fo_curl *curl = fo_curl_loaded();
        int numfds = 0;
        curl->multi_poll(loop->multi, fds, n, poll_timeout_ms(loop), &numfds);
        int running = 0;
        curl->multi_perform(loop->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl->multi_info_read(loop->multi, &left)))
            if (msg->msg == CURLMSG_DONE && loop->transfer_done)
                loop->transfer_done(loop, msg);
    } else {
        poll_fds(fds, n, poll_timeout_ms(loop));
    }
    /* Watchers run after transfers; a callback may remove watches, so skip the gone. */
    for (unsigned i = 0; i < n; i++) {
        if (!watch_listed(loop, owners[i]))
            continue;
        long ms = owners[i]->timeout_ms ? owners[i]->timeout_ms(owners[i]) : -1;
        if (fds[i].revents || ms == 0)
            owners[i]->ready(owners[i], fds[i].revents);
    }
    /* Watches with a deadline but no fd activity. */
    fire_timers(loop);
}

void fo_loop_run(fo_loop *loop)
{
    while (alive(loop)) {
        if (loop->ready.len > 0)
            run_batch(loop, &loop->ready);
        if (loop->in_turn.len > 0)
            run_in_turn(loop);
        if (!alive(loop))
            break;
        poll_once(loop);
    }
}
