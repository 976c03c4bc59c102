/* fo.http: HTTP requests on the event loop. request{} starts a libcurl transfer on the
 * loop's multi handle (keep-alive per host comes from its connection cache), parks the
 * calling task, and the loop resumes it with the response or a structured error. */
#include "fo/loop.h"
#include "fo/runtime.h"
#include "dl/libcurl.h"

#include <ctype.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERROR_MT "fo.http.Error"

struct buffer {
    char *data;
    size_t len, cap;
};

struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO: the name asked, another address */
    char *body;
    struct buffer response;
    struct buffer response_headers;
    char *url;
    int ref; /* the parked coroutine */
    fo_loop *loop;
};

/* libcurl, loaded when this module is (luaopen_fo_http). */
static const struct fo_curl *curl;

static struct {
    long in_flight;
    long completed;
} stats;

static int buffer_append(struct buffer *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    return buffer_append(&t->response, p, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct transfer *t = ud;
    /* A new status line (after a redirect or 100-continue) starts a new header block. */
    if (size * n > 5 && strncmp(p, "HTTP/", 5) == 0)
        t->response_headers.len = 0;
    return buffer_append(&t->response_headers, p, size * n) == 0 ? size * n : 0;
}

static void transfer_free(struct transfer *t)
{
    if (t->easy) {
        curl->multi_remove_handle(fo_loop_multi(t->loop), t->easy);
        curl->easy_cleanup(t->easy);
    }
    curl->slist_free_all(t->headers);
    curl->slist_free_all(t->connect_to);
    free(t->body);
    free(t->response.data);
    free(t->response_headers.data);
    free(t->url);
    free(t);
}

/* Pushes the response headers as a table with lower-case names; repeated headers are
 * joined with ", " as HTTP allows. */
static void push_headers(lua_State *co, struct buffer *raw)
{
    lua_newtable(co);
    if (!raw->data)
        return;
    char *line = raw->data;
    while (*line) {
        char *end = strstr(line, "\r\n");
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *colon = memchr(line, ':', len);
        if (colon && strncmp(line, "HTTP/", 5) != 0) {
            luaL_Buffer name;
            luaL_buffinit(co, &name);
            for (char *c = line; c < colon; c++)
                luaL_addchar(&name, (char)tolower((unsigned char)*c));
            luaL_pushresult(&name);
            const char *v = colon + 1;
            const char *vend = line + len;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            lua_pushvalue(co, -1);
            lua_rawget(co, -3);
            if (lua_isstring(co, -1)) {
                lua_pushliteral(co, ", ");
                lua_pushlstring(co, v, (size_t)(vend - v));
                lua_concat(co, 3);
            } else {
                lua_pop(co, 1);
                lua_pushlstring(co, v, (size_t)(vend - v));
            }
            lua_rawset(co, -3);
        }
        if (!end)
            break;
        line = end + 2;
    }
}

static const char *error_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return "resolve";
    case CURLE_COULDNT_CONNECT:
        return "connect";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
        return "tls";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return "io";
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return "url";
    default:
        return "transport";
    }
}

/* Pushes a structured error {kind, message, url, curl_code} with ERROR_MT. */
static void push_error(lua_State *co, const char *kind, const char *message, const char *url,
                       int code)
{
    lua_createtable(co, 0, 4);
    lua_pushstring(co, kind);
    lua_setfield(co, -2, "kind");
    lua_pushstring(co, message);
    lua_setfield(co, -2, "message");
    lua_pushstring(co, url);
    lua_setfield(co, -2, "url");
    lua_pushinteger(co, code);
    lua_setfield(co, -2, "curl_code");
    luaL_setmetatable(co, ERROR_MT);
}

static void on_transfer_done(fo_loop *loop, CURLMsg *msg)
{
    struct transfer *t = NULL;
    curl->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    if (!t)
        return;
    lua_State *co = fo_loop_thread(loop, t->ref);
    CURLcode rc = msg->data.result;
    stats.in_flight--;
    stats.completed++;
    fo_loop_release(loop);
    if (rc == CURLE_OK) {
        long status = 0;
        curl->easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        lua_pushboolean(co, 1);
        lua_createtable(co, 0, 3);
        lua_pushinteger(co, status);
        lua_setfield(co, -2, "status");
        push_headers(co, &t->response_headers);
        lua_setfield(co, -2, "headers");
        lua_pushlstring(co, t->response.data ? t->response.data : "", t->response.len);
        lua_setfield(co, -2, "body");
    } else {
        lua_pushboolean(co, 0);
        push_error(co, error_kind(rc), curl->easy_strerror(rc), t->url, (int)rc);
    }
    fo_loop_ready(loop, t->ref, 2);
    transfer_free(t);
}

static int request_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (!lua_toboolean(L, -2))
        return lua_error(L);
    return 1;
}

static int add_header(struct transfer *t, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return -1;
    /* "Name;" is curl's way to send a header with an empty value. */
    if (*value)
        snprintf(line, n, "%s: %s", name, value);
    else
        snprintf(line, n, "%s;", name);
    struct curl_slist *l = curl->slist_append(t->headers, line);
    free(line);
    if (!l)
        return -1;
    t->headers = l;
    return 0;
}

/* "Name:" tells curl not to send a header it would add by itself. */
static int remove_header(struct transfer *t, const char *name)
{
    char line[64];
    snprintf(line, sizeof line, "%s:", name);
    struct curl_slist *l = curl->slist_append(t->headers, line);
    if (!l)
        return -1;
    t->headers = l;
    return 0;
}

static double opt_seconds(lua_State *L, const char *field, double def)
{
    lua_getfield(L, 1, field);
    double v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) <= 0 || isnan(lua_tonumber(L, -1)))
            luaL_error(L, "fo.http.request: %s must be a positive number of seconds", field);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* http.request{method=, url=, headers=, body=, timeout=, connect_timeout=, ca_file=,
 * connect_to=}
 * → {status=, headers=, body=}; raises an fo.http.Error on transport failure. */
static int http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fo_loop *loop = fo_loop_of(L);
    fo_loop_check_task(L);
    lua_getfield(L, 1, "url");
    const char *url = lua_tostring(L, -1);
    if (!url || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "fo.http.request: url must be a string");
    lua_getfield(L, 1, "method");
    const char *method = luaL_optstring(L, -1, "GET");
    lua_getfield(L, 1, "body");
    size_t body_len = 0;
    const char *body = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "fo.http.request: body must be a string");
        body = lua_tolstring(L, -1, &body_len);
    }
    double timeout = opt_seconds(L, "timeout", 60);
    double connect_timeout = opt_seconds(L, "connect_timeout", 10);
    lua_getfield(L, 1, "ca_file");
    const char *ca_file = lua_tostring(L, -1);
    lua_getfield(L, 1, "connect_to");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "fo.http.request: connect_to must be a string "
                             "(HOST:PORT:CONNECT-HOST:CONNECT-PORT)");
    const char *connect_to = lua_tostring(L, -1);
    lua_getfield(L, 1, "headers");
    int hidx = lua_gettop(L);
    if (!lua_isnil(L, hidx) && !lua_istable(L, hidx))
        return luaL_error(L, "fo.http.request: headers must be a table of name = value");

    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return luaL_error(L, "fo.http.request: out of memory");
    t->loop = loop;
    t->url = strdup(url);
    t->easy = curl->easy_init();
    if (!t->url || !t->easy) {
        transfer_free(t);
        return luaL_error(L, "fo.http.request: out of memory");
    }
    /* Headers curl would add on its own are removed unless the caller set them, so the
     * bytes sent are the bytes that were signed. */
    int has_ct = 0, has_accept = 0, has_expect = 0;
    if (lua_istable(L, hidx)) {
        lua_pushnil(L);
        while (lua_next(L, hidx)) {
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
                transfer_free(t);
                return luaL_error(L, "fo.http.request: headers must map strings to strings");
            }
            const char *name = lua_tostring(L, -2);
            if (strcasecmp(name, "content-type") == 0)
                has_ct = 1;
            if (strcasecmp(name, "accept") == 0)
                has_accept = 1;
            if (strcasecmp(name, "expect") == 0) /* S3's Expect: 100-continue for large PUTs */
                has_expect = 1;
            if (add_header(t, name, lua_tostring(L, -1)) != 0) {
                transfer_free(t);
                return luaL_error(L, "fo.http.request: out of memory");
            }
            lua_pop(L, 1);
        }
    }
    if ((!has_ct && remove_header(t, "Content-Type") != 0) ||
        (!has_accept && remove_header(t, "Accept") != 0) ||
        (!has_expect && remove_header(t, "Expect") != 0)) {
        transfer_free(t);
        return luaL_error(L, "fo.http.request: out of memory");
    }
    if (connect_to && !(t->connect_to = curl->slist_append(NULL, connect_to))) {
        transfer_free(t);
        return luaL_error(L, "fo.http.request: out of memory");
    }
    if (body) {
        t->body = malloc(body_len ? body_len : 1);
        if (!t->body) {
            transfer_free(t);
            return luaL_error(L, "fo.http.request: out of memory");
        }
        memcpy(t->body, body, body_len);
    }

    CURL *e = t->easy;
    curl->easy_setopt(e, CURLOPT_URL, url);
    curl->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl->easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout * 1000));
    curl->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl->easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl->easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl->easy_setopt(e, CURLOPT_PRIVATE, t);
    /* Verification stays on; ca_file only replaces the trusted roots (AWS_CA_BUNDLE). */
    if (ca_file)
        curl->easy_setopt(e, CURLOPT_CAINFO, ca_file);
    /* The URL's name stays what is asked for (Host, TLS SNI and the certificate check) while
     * the connection goes to another address: a request to one of several servers of a name. */
    if (t->connect_to)
        curl->easy_setopt(e, CURLOPT_CONNECT_TO, t->connect_to);
    curl->easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    if (strcmp(method, "HEAD") == 0) {
        curl->easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (body || strcmp(method, "GET") != 0) {
        curl->easy_setopt(e, CURLOPT_POSTFIELDS, t->body ? t->body : "");
        curl->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (curl->multi_add_handle(fo_loop_multi(loop), e) != CURLM_OK) {
        transfer_free(t);
        return luaL_error(L, "fo.http.request: could not start the transfer");
    }
    t->ref = fo_loop_park(L);
    fo_loop_hold(loop);
    stats.in_flight++;
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, request_resumed);
}

/* http.stats() → {in_flight=, completed=}: counters for tests and benchmarks. */
static int http_stats(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, stats.in_flight);
    lua_setfield(L, -2, "in_flight");
    lua_pushinteger(L, stats.completed);
    lua_setfield(L, -2, "completed");
    return 1;
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "url");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "http %s error: %s: %s", lua_tostring(L, -3), lua_tostring(L, -2),
                    lua_tostring(L, -1));
    return 1;
}

static const luaL_Reg http_funcs[] = {
    {"request", http_request},
    {"stats", http_stats},
    {NULL, NULL},
};

int luaopen_fo_http(lua_State *L)
{
    fo_loop *loop = fo_loop_of(L);
    char err[256];
    curl = fo_curl_load(err, sizeof err);
    if (!curl)
        return luaL_error(L, "fo.http: %s", err);
    if (!fo_loop_multi(loop))
        return luaL_error(L, "fo.http: libcurl could not create its multi handle");
    fo_loop_on_transfer_done(loop, on_transfer_done);
    curl->multi_setopt(fo_loop_multi(loop), CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    if (luaL_newmetatable(L, ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, ERROR_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_newlib(L, http_funcs);
    return 1;
}
