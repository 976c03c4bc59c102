/* fo.httpd: an HTTP server on the event loop (libmicrohttpd in external-epoll mode: no
 * thread of its own; MHD_run reads whatever each socket has ready, never blocking, so a
 * client trickling its body holds only its own connection). Each request runs its Lua
 * handler as a task; the connection is suspended meanwhile. A body cap (max_body) is checked
 * on Content-Length before the body is read, and while it streams in when there is none. */
#include "fo/loop.h"
#include "fo/runtime.h"
#include "dl/libmicrohttpd.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SERVER_MT "fo.httpd.Server"
#define WRAPPER_KEY "fo.httpd.wrapper"
/* A body refused while streaming is read on (and thrown away) up to this much, so that the
 * client gets the refusal; past it the connection is cut. */
#define DRAIN_MAX ((size_t)64 << 20)

struct server {
    struct MHD_Daemon *daemon;
    fo_loop *loop;
    lua_State *L;
    fo_watch watch;
    int handler_ref;
    int max_body_ref;  /* function(req) -> bytes, or LUA_NOREF */
    size_t max_body;   /* the cap when max_body is a number (SIZE_MAX: none) */
    int too_large_ref; /* function(req, max, got) -> response, or LUA_NOREF */
    int needs_run;
    int closing;
    int active;     /* requests whose handler has not finished */
    int unfinished; /* dispatched requests whose response MHD has not finished sending */
    int port;
};

struct header {
    char *name, *value;
};

struct request {
    struct server *srv;
    struct MHD_Connection *conn;
    char *target;
    char *body;
    size_t body_len, body_cap;
    size_t limit;     /* the body cap of this request (SIZE_MAX: none) */
    size_t discarded; /* bytes thrown away after the cap was passed */
    int started, dispatched, done;
    int refused;  /* the body passed the cap: the refusal is in response */
    int queued;   /* the refusal is queued */
    int orphaned; /* MHD finished with the connection while the handler still ran */
    int status;
    struct header *headers;
    size_t nheaders;
    char *response;
    size_t response_len;
};

/* Runs the user's handler with a traceback and turns its result into a response table,
 * so a failing handler answers 500 instead of killing the server. */
/* libmicrohttpd, loaded when this module is (luaopen_fo_httpd). */
static const struct fo_mhd *mhd;

static const char wrapper_source[] =
    "local handler, req = ...\n"
    "local ok, res = xpcall(handler, debug.traceback, req)\n"
    "if not ok then\n"
    "  io.stderr:write('fo.httpd: handler failed: ', tostring(res), '\\n')\n"
    "  return {status = 500, body = 'internal server error\\n'}\n"
    "end\n"
    "if type(res) ~= 'table' then\n"
    "  io.stderr:write('fo.httpd: handler returned ', type(res), ', not a table\\n')\n"
    "  return {status = 500, body = 'internal server error\\n'}\n"
    "end\n"
    "return res\n";

static void request_free(struct request *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->target);
    free(r->body);
    free(r->response);
    free(r);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = cls;
    r->conn = conn;
    r->target = strdup(uri ? uri : "/");
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct request *r = *con_cls;
    if (!r)
        return;
    if (r->dispatched)
        r->srv->unfinished--;
    if (r->dispatched && !r->done)
        r->orphaned = 1; /* the handler still runs; it frees the request when done */
    else
        request_free(r);
    *con_cls = NULL;
}

static enum MHD_Result push_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    lua_State *L = cls;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (const char *c = key; *c; c++)
        luaL_addchar(&b, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
    luaL_pushresult(&b);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ",");
        lua_pushstring(L, value ? value : "");
        lua_concat(L, 3);
    } else {
        lua_pop(L, 1);
        lua_pushstring(L, value ? value : "");
    }
    lua_rawset(L, -3);
    return MHD_YES;
}

/* Copies the handler's response table (on top of co) into the request. */
static void take_response(struct request *r, lua_State *co)
{
    r->status = 500;
    if (!lua_istable(co, -1))
        return;
    lua_getfield(co, -1, "status");
    r->status = lua_isinteger(co, -1) ? (int)lua_tointeger(co, -1) : 200;
    lua_pop(co, 1);
    lua_getfield(co, -1, "body");
    size_t len = 0;
    const char *body = lua_tolstring(co, -1, &len);
    if (body && (r->response = malloc(len ? len : 1))) {
        memcpy(r->response, body, len);
        r->response_len = len;
    }
    lua_pop(co, 1);
    lua_getfield(co, -1, "headers");
    if (lua_istable(co, -1)) {
        lua_pushnil(co);
        while (lua_next(co, -2)) {
            if (lua_type(co, -2) == LUA_TSTRING && lua_isstring(co, -1)) {
                struct header *h = realloc(r->headers, (r->nheaders + 1) * sizeof *h);
                if (h) {
                    r->headers = h;
                    h[r->nheaders].name = strdup(lua_tostring(co, -2));
                    h[r->nheaders].value = strdup(lua_tostring(co, -1));
                    r->nheaders++;
                }
            }
            lua_pop(co, 1);
        }
    }
    lua_pop(co, 1);
}

static void on_handler_done(void *data, lua_State *co, int status, int nres)
{
    struct request *r = data;
    struct server *srv = r->srv;
    if (status == LUA_OK && nres >= 1)
        take_response(r, co);
    else
        r->status = 500;
    r->done = 1;
    srv->active--;
    if (r->orphaned) {
        request_free(r);
        return;
    }
    mhd->resume_connection(r->conn);
    srv->needs_run = 1;
}

/* Pushes the request table {method, target, path, query, body, headers, remote}; the body
 * only when with_body (the cap hooks run before it is read). */
static void push_request(lua_State *L, struct request *r, const char *method, int with_body)
{
    lua_createtable(L, 0, 7);
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->target);
    lua_setfield(L, -2, "target");
    const char *q = strchr(r->target, '?');
    if (q) {
        lua_pushlstring(L, r->target, (size_t)(q - r->target));
        lua_setfield(L, -2, "path");
        lua_pushstring(L, q + 1);
    } else {
        lua_pushstring(L, r->target);
        lua_setfield(L, -2, "path");
        lua_pushliteral(L, "");
    }
    lua_setfield(L, -2, "query");
    if (with_body) {
        lua_pushlstring(L, r->body ? r->body : "", r->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_newtable(L);
    mhd->get_connection_values(r->conn, MHD_HEADER_KIND, push_header, L);
    lua_setfield(L, -2, "headers");
    /* The client's address:port tells tests whether a connection was reused. */
    const union MHD_ConnectionInfo *ci =
        mhd->get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        lua_pushfstring(L, "%s:%d", ip, (int)ntohs(in->sin_port));
        lua_setfield(L, -2, "remote");
    }
}

static void dispatch(struct server *srv, struct request *r, const char *method)
{
    lua_State *L = srv->L;
    lua_getfield(L, LUA_REGISTRYINDEX, WRAPPER_KEY);
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handler_ref);
    push_request(L, r, method, 1);
    srv->active++;
    srv->unfinished++;
    r->dispatched = 1;
    mhd->suspend_connection(r->conn);
    fo_loop_start(srv->loop, L, 2, on_handler_done, r);
}

/* The body cap of a request: the max_body function's answer (called before the body is
 * read; it must not yield), else the fixed cap. A failing hook is reported and the request
 * gets the fixed cap. */
static size_t body_limit(struct server *srv, struct request *r, const char *method)
{
    if (srv->max_body_ref == LUA_NOREF)
        return srv->max_body;
    lua_State *L = srv->L;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, srv->max_body_ref);
    push_request(L, r, method, 0);
    size_t limit = srv->max_body;
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        fprintf(stderr, "fo.httpd: max_body failed: %s\n", lua_tostring(L, -1));
    else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
        limit = (size_t)lua_tointeger(L, -1);
    lua_settop(L, top);
    return limit;
}

/* Fills r's response with the refusal of a body over the cap: the too_large hook's answer
 * (req, max, got: the size announced by Content-Length; nil, SIZE_MAX here, for a body
 * without one that passed the cap while streaming), else a plain 413. */
static void refuse(struct server *srv, struct request *r, const char *method, size_t got)
{
    r->refused = 1;
    lua_State *L = srv->L;
    int top = lua_gettop(L);
    if (srv->too_large_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, srv->too_large_ref);
        push_request(L, r, method, 0);
        lua_pushinteger(L, (lua_Integer)r->limit);
        if (got == SIZE_MAX)
            lua_pushnil(L);
        else
            lua_pushinteger(L, (lua_Integer)got);
        if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            take_response(r, L);
            lua_settop(L, top);
            return;
        }
        fprintf(stderr, "fo.httpd: too_large failed: %s\n",
                lua_isstring(L, -1) ? lua_tostring(L, -1) : "it returned no table");
        lua_settop(L, top);
    }
    static const char text[] = "request body too large\n";
    free(r->response);
    r->response = malloc(sizeof text - 1);
    r->response_len = r->response ? sizeof text - 1 : 0;
    if (r->response)
        memcpy(r->response, text, sizeof text - 1);
    r->status = 413;
}

/* The Content-Length header as a number; SIZE_MAX when it does not fit, 0 when absent. */
static size_t content_length(struct MHD_Connection *conn, int *present)
{
    const char *v = mhd->lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    *present = v != NULL;
    if (!v)
        return 0;
    size_t n = 0;
    for (const char *c = v; *c >= '0' && *c <= '9'; c++) {
        if (n > (SIZE_MAX - 9) / 10)
            return SIZE_MAX;
        n = n * 10 + (size_t)(*c - '0');
    }
    return n;
}

static enum MHD_Result send_response(struct request *r)
{
    if (r->queued)
        return MHD_YES;
    r->queued = 1;
    struct MHD_Response *resp =
        mhd->create_response_from_buffer(r->response_len, r->response, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < r->nheaders; i++)
        mhd->add_response_header(resp, r->headers[i].name, r->headers[i].value);
    enum MHD_Result ok = mhd->queue_response(r->conn, (unsigned)r->status, resp);
    mhd->destroy_response(resp);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)version;
    struct server *srv = cls;
    struct request *r = *con_cls;
    if (!r)
        return MHD_NO;
    r->conn = conn;
    if (!r->started) {
        r->started = 1;
        r->limit = body_limit(srv, r, method);
        int present = 0;
        size_t announced = content_length(conn, &present);
        if (present && announced > r->limit) {
            /* Refused before a byte of the body is read: MHD sends no 100 Continue, closes
             * the connection after the answer and never reads the body. */
            refuse(srv, r, method, announced);
            return send_response(r);
        }
        return MHD_YES;
    }
    if (r->done)
        return send_response(r);
    if (r->dispatched)
        return MHD_YES;
    if (r->refused) {
        /* Past the cap while streaming: what follows is thrown away, never stored; the
         * refusal goes out once the client stops sending, or the connection is cut when
         * it sends more than DRAIN_MAX. */
        if (*upload_data_size == 0)
            return send_response(r);
        r->discarded += *upload_data_size;
        *upload_data_size = 0;
        return r->discarded > DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (n > r->limit - r->body_len) {
            refuse(srv, r, method, SIZE_MAX);
            free(r->body);
            r->body = NULL;
            r->body_len = r->body_cap = 0;
            r->discarded = n;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->body_len + n > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
            while (cap < r->body_len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    dispatch(srv, r, method);
    return MHD_YES;
}

static void stop(struct server *srv)
{
    if (srv->daemon) {
        fo_loop_remove_watch(srv->loop, &srv->watch);
        mhd->stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    int *refs[] = {&srv->handler_ref, &srv->max_body_ref, &srv->too_large_ref};
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        if (*refs[i] != LUA_NOREF) {
            luaL_unref(srv->L, LUA_REGISTRYINDEX, *refs[i]);
            *refs[i] = LUA_NOREF;
        }
    }
}

/* A closing server stops once no handler runs and every response has been sent: stopping
 * earlier would cut off responses still queued in MHD (clients see "no data"). */
static int drained(const struct server *srv)
{
    return srv->closing && srv->active == 0 && srv->unfinished == 0;
}

static void on_ready(fo_watch *w, short revents)
{
    (void)revents;
    struct server *srv = w->data;
    srv->needs_run = 0;
    mhd->run(srv->daemon);
    if (srv->closing)
        srv->watch.keeps_alive = srv->unfinished > 0;
    if (drained(srv))
        stop(srv);
}

static long on_timeout(fo_watch *w)
{
    struct server *srv = w->data;
    if (srv->needs_run || drained(srv))
        return 0;
    MHD_UNSIGNED_LONG_LONG ms;
    if (mhd->get_timeout(srv->daemon, &ms) == MHD_YES)
        return ms > 60000 ? 60000 : (long)ms;
    return -1;
}

/* httpd.listen{host=, port=, handler=, max_body=, too_large=} → server (server.port is the
 * bound port). max_body: a byte count or function(req) -> bytes (req without body), the cap
 * on request bodies; too_large: function(req, max, got) -> the response refusing one. */
static int httpd_listen(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fo_loop *loop = fo_loop_of(L);
    lua_getfield(L, 1, "host");
    const char *host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    lua_Integer port = luaL_optinteger(L, -1, 0);
    if (port < 0 || port > 65535)
        return luaL_error(L, "fo.httpd.listen: port must be 0..65535");
    lua_getfield(L, 1, "handler");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "fo.httpd.listen: handler must be a function(req) -> response");
    lua_getfield(L, 1, "tls_cert");
    const char *tls_cert = lua_tostring(L, -1);
    lua_getfield(L, 1, "tls_key");
    const char *tls_key = lua_tostring(L, -1);
    if (!tls_cert != !tls_key)
        return luaL_error(L, "fo.httpd.listen: tls_cert and tls_key (PEM text) go together");
    lua_getfield(L, 1, "max_body");
    int max_body_type = lua_type(L, -1);
    if (max_body_type != LUA_TNIL && max_body_type != LUA_TFUNCTION &&
        !(lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0))
        return luaL_error(L, "fo.httpd.listen: max_body must be a byte count or a "
                             "function(req) -> bytes");
    lua_Integer max_body_n = max_body_type == LUA_TNUMBER ? lua_tointeger(L, -1) : -1;
    lua_getfield(L, 1, "too_large");
    if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
        return luaL_error(L, "fo.httpd.listen: too_large must be a function(req, max, got) -> "
                             "response");
    lua_pop(L, 2);
    lua_settop(L, 4);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return luaL_error(L,
                          "fo.httpd.listen: host must be an IPv4 address such as 127.0.0.1, "
                          "got '%s'",
                          host);

    struct server *srv = lua_newuserdatauv(L, sizeof *srv, 0);
    memset(srv, 0, sizeof *srv);
    srv->handler_ref = LUA_NOREF;
    srv->max_body_ref = LUA_NOREF;
    srv->too_large_ref = LUA_NOREF;
    srv->max_body = max_body_n >= 0 ? (size_t)max_body_n : SIZE_MAX;
    luaL_setmetatable(L, SERVER_MT);
    srv->loop = loop;
    /* Handlers are started from the loop's top level, on the main thread. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    srv->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (tls_cert ? MHD_USE_TLS : 0);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, srv},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_CONNECTION_LIMIT, 2048, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, 120, NULL},
        {tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)tls_cert},
        {tls_key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = mhd->start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                    MHD_OPTION_END);
    if (!srv->daemon)
        return luaL_error(L, "fo.httpd.listen: cannot listen on %s:%d (port in use?)", host,
                          (int)port);
    const union MHD_DaemonInfo *info = mhd->get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : (int)port;
    info = mhd->get_daemon_info(srv->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    lua_pushvalue(L, -2);
    srv->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (max_body_type == LUA_TFUNCTION) {
        lua_getfield(L, 1, "max_body");
        srv->max_body_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_getfield(L, 1, "too_large");
    if (lua_isfunction(L, -1))
        srv->too_large_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_pop(L, 1);
    srv->watch = (fo_watch){.fd = info ? info->epoll_fd : -1,
                            .events = POLLIN,
                            .keeps_alive = 1,
                            .ready = on_ready,
                            .timeout_ms = on_timeout,
                            .data = srv};
    fo_loop_add_watch(loop, &srv->watch);
    /* The registry holds the server while it listens, so a script need not keep it. */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    return 1;
}

static struct server *check_server(lua_State *L)
{
    return luaL_checkudata(L, 1, SERVER_MT);
}

/* server:close(): stops accepting; requests in progress finish first. */
static int server_close(lua_State *L)
{
    struct server *srv = check_server(L);
    if (!srv->daemon || srv->closing)
        return 0;
    srv->closing = 1;
    /* Only responses still being sent keep the program alive now (see on_ready). */
    srv->watch.keeps_alive = srv->unfinished > 0;
    MHD_socket fd = mhd->quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    if (drained(srv))
        stop(srv);
    else
        srv->needs_run = 1; /* let the loop flush what is queued, then stop */
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, srv);
    return 0;
}

static int server_gc(lua_State *L)
{
    struct server *srv = check_server(L);
    if (srv->active == 0)
        stop(srv);
    return 0;
}

static int server_index(lua_State *L)
{
    struct server *srv = check_server(L);
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "port") == 0) {
        lua_pushinteger(L, srv->port);
        return 1;
    }
    if (strcmp(k, "close") == 0) {
        lua_pushcfunction(L, server_close);
        return 1;
    }
    if (strcmp(k, "active") == 0) {
        lua_pushinteger(L, srv->active);
        return 1;
    }
    return 0;
}

static int server_tostring(lua_State *L)
{
    struct server *srv = check_server(L);
    lua_pushfstring(L, "fo.httpd.Server(port %d%s)", srv->port, srv->daemon ? "" : ", closed");
    return 1;
}

static const luaL_Reg server_meta[] = {
    {"__index", server_index},       {"__gc", server_gc}, {"__close", server_close},
    {"__tostring", server_tostring}, {NULL, NULL},
};

static const luaL_Reg httpd_funcs[] = {
    {"listen", httpd_listen},
    {NULL, NULL},
};

int luaopen_fo_httpd(lua_State *L)
{
    char err[256];
    mhd = fo_mhd_load(err, sizeof err);
    if (!mhd)
        return luaL_error(L, "fo.httpd: %s", err);
    luaL_newmetatable(L, SERVER_MT);
    luaL_setfuncs(L, server_meta, 0);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, wrapper_source, sizeof wrapper_source - 1, "=fo.httpd") != LUA_OK)
        return lua_error(L);
    lua_setfield(L, LUA_REGISTRYINDEX, WRAPPER_KEY);
    luaL_newlib(L, httpd_funcs);
    return 1;
}
