/* Shared pieces of the protocol codecs: a GC-owned byte buffer, model lookups,
 * timestamps in AWS's three wire forms, base64 and URI percent-encoding. */
#define _GNU_SOURCE /* timegm */
#include "fo/xml.h"
#include "server.h"
#include "xmlshape.h"
#include "dl/libcrypto.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BUF_MT "fo.awsproto.buf"

static int buf_gc(lua_State *L)
{
    fo_buf *b = luaL_checkudata(L, 1, BUF_MT);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return 0;
}

fo_buf *fo_buf_new(lua_State *L)
{
    fo_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, BUF_MT)) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

void fo_buf_add(lua_State *L, fo_buf *b, const char *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            luaL_error(L, "fo.awsproto: out of memory");
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void fo_buf_adds(lua_State *L, fo_buf *b, const char *s)
{
    fo_buf_add(L, b, s, strlen(s));
}

void fo_buf_addc(lua_State *L, fo_buf *b, char c)
{
    fo_buf_add(L, b, &c, 1);
}

void fo_buf_push(lua_State *L, const fo_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
}

/* ---- models */

void fo_shape_push_named(lua_State *L, int shapes, const char *name)
{
    if (lua_getfield(L, shapes, name) != LUA_TTABLE)
        luaL_error(L, "fo.awsproto: the model has no shape '%s'", name);
}

void fo_shape_push(lua_State *L, int shapes, int ref)
{
    const char *name = fo_field_str(L, ref, "shape");
    if (!name)
        luaL_error(L, "fo.awsproto: a shape reference without a 'shape' name");
    fo_shape_push_named(L, shapes, name);
}

const char *fo_field_str(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string is still referenced by t */
    return s;
}

int fo_field_bool(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

double fo_field_num(lua_State *L, int t, const char *key, double dflt)
{
    lua_getfield(L, t, key);
    int isnum;
    double v = lua_tonumberx(L, -1, &isnum);
    lua_pop(L, 1);
    return isnum ? v : dflt;
}

const char *fo_resp_header(lua_State *L, int resp, const char *name)
{
    const char *found = NULL;
    if (lua_getfield(L, resp, "headers") != LUA_TTABLE) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
        found = lua_tostring(L, -1);
    } else {
        lua_pop(L, 1);
        lua_pushnil(L);
        while (!found && lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
                strcasecmp(lua_tostring(L, -2), name) == 0) {
                found = lua_tostring(L, -1);
                lua_pop(L, 1); /* keep the key so the stack matches the other branch */
                break;
            }
            lua_pop(L, 1);
        }
        if (!found)
            lua_pushnil(L);
    }
    lua_pop(L, 2); /* the value (or key) and the headers table, which anchors the string */
    return found;
}

void fo_map_push(lua_State *L, const fo_op *op, int shape)
{
    shape = lua_absindex(L, shape);
    int top = lua_gettop(L);
    if (lua_getfield(L, shape, "key") != LUA_TTABLE)
        luaL_error(L, "%s.%s: the model's map shape has no key", op->service, op->name);
    fo_shape_push(L, op->shapes, top + 1);
    if (lua_getfield(L, shape, "value") != LUA_TTABLE)
        luaL_error(L, "%s.%s: the model's map shape has no value", op->service, op->name);
    fo_shape_push(L, op->shapes, top + 3);
}

int fo_next_member(lua_State *L, int shapes, int members)
{
    while (lua_next(L, members)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            fo_shape_push(L, shapes, lua_gettop(L));
            return 1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

void fo_merge_into(lua_State *L, int out)
{
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, out);
    }
    lua_pop(L, 1);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int listed_in(lua_State *L, int order, const char *name)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, order);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, order, i);
        int same = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0;
        lua_pop(L, 1);
        if (same)
            return 1;
    }
    return 0;
}

size_t fo_keys(lua_State *L, int t, int order, const char ***keys)
{
    t = lua_absindex(L, t);
    if (order)
        order = lua_absindex(L, order);
    fo_buf *b = fo_buf_new(L);
    size_t n = 0, listed = 0, bad = 0;
    if (order && lua_istable(L, order)) {
        lua_Integer count = (lua_Integer)lua_rawlen(L, order);
        for (lua_Integer i = 1; i <= count; i++) {
            lua_rawgeti(L, order, i);
            if (lua_type(L, -1) == LUA_TSTRING && lua_rawget(L, t) != LUA_TNIL) {
                lua_pop(L, 1);
                lua_rawgeti(L, order, i);
                const char *k = lua_tostring(L, -1); /* kept alive by the order array */
                fo_buf_add(L, b, (const char *)&k, sizeof k);
                listed++;
            }
            lua_pop(L, 1);
        }
    } else {
        order = 0;
    }
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            bad = 1;
            continue;
        }
        const char *k = lua_tostring(L, -1);
        if (order && listed_in(L, order, k))
            continue;
        fo_buf_add(L, b, (const char *)&k, sizeof k);
    }
    n = b->len / sizeof(const char *);
    if (n - listed > 1)
        qsort(b->data + listed * sizeof(const char *), n - listed, sizeof(const char *),
              compare_strings);
    *keys = (const char **)(void *)b->data;
    return bad ? (size_t)-1 : n;
}

/* ---- timestamps */

enum fo_ts_format fo_ts_format_named(const char *name, enum fo_ts_format dflt)
{
    if (!name)
        return dflt;
    if (strcmp(name, "iso8601") == 0)
        return FO_TS_ISO8601;
    if (strcmp(name, "rfc822") == 0)
        return FO_TS_RFC822;
    if (strcmp(name, "unixTimestamp") == 0)
        return FO_TS_EPOCH;
    return dflt;
}

void fo_ts_format(double t, enum fo_ts_format fmt, char *out, size_t size)
{
    double whole = floor(t);
    int millis = (int)lround((t - whole) * 1000.0);
    if (millis == 1000) {
        whole += 1;
        millis = 0;
    }
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    switch (fmt) {
    case FO_TS_EPOCH:
        if (millis == 0)
            snprintf(out, size, "%lld", (long long)secs);
        else
            snprintf(out, size, "%lld.%03d", (long long)secs, millis);
        /* trim trailing zeros of the fraction: 1.500 → 1.5 */
        if (millis != 0) {
            size_t n = strlen(out);
            while (n > 0 && out[n - 1] == '0')
                out[--n] = '\0';
        }
        break;
    case FO_TS_RFC822:
        strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        break;
    case FO_TS_ISO8601:
    default: {
        char base[40];
        strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
        if (millis == 0)
            snprintf(out, size, "%sZ", base);
        else
            snprintf(out, size, "%s.%03dZ", base, millis);
    }
    }
}

static const char *MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "2014-04-29T18:30:38Z", with optional fraction and ±hh:mm offset. */
static int parse_iso8601(const char *s, double *out)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0)
        return -1;
    const char *p = s + n;
    double frac = 0;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9') {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &k) != 2 || k == 0)
            return -1;
        offset = (hh * 60L + mm) * 60L * (*p == '+' ? 1 : -1);
        p += 1 + k;
    }
    if (*p != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (double)timegm(&tm) - (double)offset + frac;
    return 0;
}

/* "Tue, 29 Apr 2014 18:30:38 GMT" */
static int parse_rfc822(const char *s, double *out)
{
    struct tm tm = {0};
    char wday[4], mon[4];
    int n = 0;
    if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", wday, &tm.tm_mday, mon, &tm.tm_year,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 7 ||
        s[n] != '\0')
        return -1;
    tm.tm_mon = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(mon, MONTHS[i]) == 0)
            tm.tm_mon = i;
    if (tm.tm_mon < 0)
        return -1;
    tm.tm_year -= 1900;
    *out = (double)timegm(&tm);
    return 0;
}

int fo_ts_parse(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    if (parse_iso8601(s, out) == 0 || parse_rfc822(s, out) == 0)
        return 0;
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == '\0' && isfinite(v)) {
        *out = v;
        return 0;
    }
    return -1;
}

int fo_ts_from_lua(lua_State *L, int idx, double *out)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        *out = lua_tonumber(L, idx);
        return isfinite(*out) ? 0 : -1;
    }
    if (lua_type(L, idx) == LUA_TSTRING)
        return fo_ts_parse(lua_tostring(L, idx), out);
    return -1;
}

/* ---- numbers */

/* Python's repr of a float (botocore formats numbers with str()): the shortest digits
 * that read back the same, fixed notation for exponents -4..15, else d.ddde+XX. */
void fo_format_double(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char sci[40];
    for (int p = 0; p < 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    /* sci = [-]d[.ddd]e±XX */
    char digits[24];
    size_t nd = 0;
    const char *c = sci;
    int neg = 0;
    if (*c == '-') {
        neg = 1;
        c++;
    }
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9' && nd < sizeof digits - 1)
            digits[nd++] = *c;
    digits[nd] = '\0';
    int exp = atoi(c + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = '\0';
    char *o = out;
    size_t left = size;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(o, left, __VA_ARGS__);                                                   \
        if (w_ < 0 || (size_t)w_ >= left)                                                          \
            return;                                                                                \
        o += w_;                                                                                   \
        left -= (size_t)w_;                                                                        \
    } while (0)
    if (neg)
        PUT("-");
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            PUT("0.");
            for (int i = 0; i < -exp - 1; i++)
                PUT("0");
            PUT("%s", digits);
        } else if ((size_t)exp + 1 >= nd) {
            PUT("%s", digits);
            for (size_t i = nd; i < (size_t)exp + 1; i++)
                PUT("0");
            PUT(".0");
        } else {
            PUT("%.*s.%s", exp + 1, digits, digits + exp + 1);
        }
    } else {
        PUT("%c", digits[0]);
        if (nd > 1)
            PUT(".%s", digits + 1);
        PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
#undef PUT
}

/* ---- base64 */

void fo_b64_encode(lua_State *L, fo_buf *b, const unsigned char *p, size_t n)
{
    /* EVP_EncodeBlock takes an int; encode in chunks that are a multiple of 3 bytes. */
    unsigned char out[4 * 3072 / 3 + 1];
    while (n > 0) {
        size_t chunk = n > 3072 ? 3072 : n;
        int len = fo_libcrypto()->EVP_EncodeBlock(out, p, (int)chunk);
        fo_buf_add(L, b, (const char *)out, (size_t)len);
        p += chunk;
        n -= chunk;
    }
}

int fo_b64_decode(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    /* Whitespace inside the text (XML pretty-printing) is not part of the data. The
     * scratch copy is GC-owned so that an allocation error cannot leak it. */
    fo_buf *clean = fo_buf_new(L);
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            fo_buf_addc(L, clean, s[i]);
    int rc = clean->len % 4 == 0 ? 0 : -1;
    size_t start = b->len;
    for (size_t i = 0; i < clean->len && rc == 0; i += 4096) {
        size_t chunk = clean->len - i > 4096 ? 4096 : clean->len - i;
        unsigned char out[4096 / 4 * 3];
        int len = fo_libcrypto()->EVP_DecodeBlock(out, (const unsigned char *)clean->data + i,
                                                  (int)chunk);
        if (len < 0) {
            rc = -1;
            break;
        }
        /* EVP_DecodeBlock counts padding as zero bytes; padding may only end the text. */
        int pad = 0;
        for (size_t k = 0; k < chunk; k++) {
            if (clean->data[i + k] != '=')
                continue;
            if (i + chunk != clean->len || k + 2 < chunk ||
                (pad == 0 && k + 2 == chunk && clean->data[i + k + 1] != '=')) {
                rc = -1;
                break;
            }
            pad++;
        }
        if (rc == 0)
            fo_buf_add(L, b, (const char *)out, (size_t)(len - pad));
    }
    lua_pop(L, 1);
    if (rc != 0)
        b->len = start;
    return rc;
}

/* ---- UTF-8 */

size_t fo_utf8_seq(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* ---- XML text */

void fo_xml_escape(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *entity = fo_xml_entity(s[i]);
        if (entity) {
            fo_buf_add(L, b, s + start, i - start);
            fo_buf_adds(L, b, entity);
            start = i + 1;
        }
    }
    fo_buf_add(L, b, s + start, n - start);
}

/* ---- URI encoding */

void fo_uri_encode(lua_State *L, fo_buf *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            fo_buf_addc(L, b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            fo_buf_add(L, b, esc, 3);
        }
    }
}

int fo_uri_decode(lua_State *L, fo_buf *b, const char *s, size_t n, int plus_space)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+' && plus_space) {
            c = ' ';
        } else if (c == '%') {
            int v = 0;
            for (size_t k = 1; k <= 2; k++) {
                char h = i + k < n ? s[i + k] : '\0';
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0)
                    return -1;
                v = v * 16 + d;
            }
            c = (char)v;
            i += 2;
        }
        fo_buf_addc(L, b, c);
    }
    return 0;
}

int fo_form_pair(lua_State *L, const char *s, size_t n, size_t *pos, fo_buf *k, fo_buf *v)
{
    if (*pos >= n)
        return 0;
    size_t i = *pos;
    const char *amp = memchr(s + i, '&', n - i);
    size_t end = amp ? (size_t)(amp - s) : n;
    const char *eq = memchr(s + i, '=', end - i);
    size_t kend = eq ? (size_t)(eq - s) : end;
    k->len = v->len = 0;
    *pos = end + 1;
    if (fo_uri_decode(L, k, s + i, kend - i, 1) != 0 ||
        (eq && fo_uri_decode(L, v, eq + 1, end - kend - 1, 1) != 0))
        return -1;
    return 1;
}

/* ---- the server side's shared pieces (server.h) */

int fo_request_error(lua_State *L, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, code);
    lua_setfield(L, -2, "code");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    return lua_error(L);
}

void fo_err_info_get(lua_State *L, int err, fo_err_info *e)
{
    e->status = (int)fo_field_num(L, err, "status", 400);
    e->code = fo_field_str(L, err, "code");
    if (!e->code || !*e->code)
        luaL_error(L, "fo.awsproto.serialize_error: the error has no code");
    e->message = fo_field_str(L, err, "message");
    if (!e->message)
        e->message = "";
    e->type = fo_field_str(L, err, "type");
    if (!e->type)
        e->type = e->status >= 500 ? "Receiver" : "Sender";
    e->fields = 0;
    if (lua_getfield(L, err, "fields") == LUA_TTABLE)
        e->fields = lua_gettop(L); /* stays on the stack for the caller */
    else
        lua_pop(L, 1);
}

int fo_err_fields(lua_State *L, const fo_err_info *e)
{
    lua_newtable(L);
    int out = lua_gettop(L), n = 0;
    if (!e->fields)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, e->fields)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (k && strcasecmp(k, "message") == 0) {
            lua_pop(L, 1);
            continue;
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, out);
        n++;
    }
    return n;
}

void fo_error_ref(lua_State *L, const fo_op *op, const char *code)
{
    if (!op->op || !fo_error_shape(L, op, code))
        luaL_error(L,
                   "fo.awsproto.serialize_error: error %s has fields but %s models no such error",
                   code, op->service);
    int shape = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, op->shapes)) {
        if (lua_rawequal(L, -1, shape)) {
            lua_pop(L, 1);
            lua_createtable(L, 0, 1);
            lua_insert(L, -2);
            lua_setfield(L, -2, "shape");
            lua_remove(L, shape);
            return;
        }
        lua_pop(L, 1);
    }
    luaL_error(L, "fo.awsproto: the model's error shape for %s has no name", code);
}

void fo_response_new(lua_State *L, int status, const char *content_type, const char *rid)
{
    lua_createtable(L, 0, 3);
    lua_insert(L, -2);
    lua_setfield(L, -2, "body");
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_createtable(L, 0, 2);
    if (content_type) {
        lua_pushstring(L, content_type);
        lua_setfield(L, -2, "content-type");
    }
    if (rid) {
        lua_pushstring(L, rid);
        lua_setfield(L, -2, "x-amzn-requestid");
    }
    lua_setfield(L, -2, "headers");
}

void fo_op_bind(lua_State *L, fo_op *op, const char *name)
{
    op->name = name;
    op->op = lua_gettop(L);
    op->input = lua_getfield(L, op->op, "input") == LUA_TTABLE ? lua_gettop(L) : 0;
    op->output = lua_getfield(L, op->op, "output") == LUA_TTABLE ? lua_gettop(L) : 0;
}

/* ---- writers that walk the model */

fo_writer *fo_writer_new(lua_State *L, const fo_op *op, int output)
{
    fo_writer *w = lua_newuserdatauv(L, sizeof *w, 0);
    memset(w, 0, sizeof *w);
    w->L = L;
    w->op = op;
    w->what = output ? " (output)" : "";
    w->b = fo_buf_new(L);
    return w;
}

void fo_writer_fail(fo_writer *w, const char *msg)
{
    lua_State *L = w->L;
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (int i = 0; i < w->depth; i++) {
        if (w->path[i].name) {
            if (i > 0)
                luaL_addchar(&lb, '.');
            luaL_addstring(&lb, w->path[i].name);
        } else {
            lua_pushfstring(L, "[%I]", w->path[i].index);
            luaL_addvalue(&lb);
        }
    }
    luaL_pushresult(&lb);
    const char *path = lua_tostring(L, -1);
    if (*path)
        luaL_error(L, "%s.%s%s: %s: %s", w->op->service, w->op->name, w->what, path, msg);
    luaL_error(L, "%s.%s%s: %s", w->op->service, w->op->name, w->what, msg);
}

void fo_writer_fail_type(fo_writer *w, const char *expected, int v)
{
    lua_pushfstring(w->L, "expected %s, got %s", expected, luaL_typename(w->L, v));
    fo_writer_fail(w, lua_tostring(w->L, -1));
}

void fo_writer_push(fo_writer *w, const char *name, lua_Integer index)
{
    if (w->depth >= FO_WRITER_MAX_DEPTH)
        fo_writer_fail(w, "nesting too deep (a table that contains itself?)");
    w->path[w->depth].name = name;
    w->path[w->depth].index = index;
    w->depth++;
    luaL_checkstack(w->L, 16, "parameters nest too deep");
}

lua_Integer fo_writer_integer(fo_writer *w, int v)
{
    lua_State *L = w->L;
    lua_Integer i = 0;
    if (lua_isinteger(L, v)) {
        i = lua_tointeger(L, v);
    } else if (lua_type(L, v) == LUA_TNUMBER) {
        double d = (double)lua_tonumber(L, v);
        if (d != floor(d) || !lua_numbertointeger(d, &i))
            fo_writer_fail(w, "expected an integer, got a number with a fraction or out of range");
    } else {
        fo_writer_fail_type(w, "integer", v);
    }
    return i;
}

int fo_writer_element_shape(fo_writer *w, int shape, const char *kind, const char *field)
{
    lua_State *L = w->L;
    if (lua_getfield(L, shape, field) != LUA_TTABLE) {
        lua_pushfstring(L, "the model's %s has no %s shape", kind, field);
        fo_writer_fail(w, lua_tostring(L, -1));
    }
    int ref = lua_gettop(L);
    fo_shape_push(L, w->op->shapes, ref);
    return ref;
}

int fo_writer_member(fo_writer *w, int members, const char *name)
{
    fo_writer_push(w, name, 0);
    if (!members || lua_getfield(w->L, members, name) != LUA_TTABLE)
        fo_writer_fail(w, "unknown member");
    return lua_gettop(w->L);
}

/* ---- errors of the JSON-shaped protocols */

void fo_push_error_type(lua_State *L, const fo_op *op, const char *code)
{
    static const char *const coral[] = {"UnknownOperationException",
                                        "SerializationException",
                                        "InternalFailure",
                                        "AccessDeniedException",
                                        "IncompleteSignatureException",
                                        "MissingAuthenticationTokenException",
                                        "UnrecognizedClientException",
                                        "InvalidSignatureException",
                                        "ThrottlingException",
                                        "RequestExpired",
                                        "ServiceUnavailableException",
                                        NULL};
    if (strcmp(code, "ValidationException") == 0) {
        lua_pushfstring(L, "com.amazon.coral.validate#%s", code);
        return;
    }
    for (size_t i = 0; coral[i]; i++) {
        if (strcmp(code, coral[i]) == 0) {
            lua_pushfstring(L, "com.amazon.coral.service#%s", code);
            return;
        }
    }
    lua_getfield(L, op->model, "metadata");
    const char *prefix = lua_istable(L, -1) ? fo_field_str(L, -1, "endpointPrefix") : NULL;
    lua_pushfstring(L, "com.amazonaws.%s#%s", prefix ? prefix : op->service, code);
    lua_remove(L, -2);
}

void fo_query_error_header(lua_State *L, const fo_op *op, const fo_err_info *e, int headers)
{
    int top = lua_gettop(L);
    int qc = lua_getfield(L, op->model, "metadata") == LUA_TTABLE &&
             lua_getfield(L, -1, "awsQueryCompatible") != LUA_TNIL;
    lua_settop(L, top);
    if (qc) {
        lua_pushfstring(L, "%s;%s", e->code, e->type);
        lua_setfield(L, headers, "x-amzn-query-error");
    }
}
