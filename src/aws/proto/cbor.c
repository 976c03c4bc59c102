/* CBOR (RFC 8949): a strict decoder into Lua values and the encoder's primitives (cbor.h).
 * Model-free: what a value means is the protocol's (rpcv2cbor.c). */
#include "cbor.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

/* ---- decoding */

typedef struct creader {
    lua_State *L;
    const fo_op *op;
    const unsigned char *start, *p, *end;
    int depth;
} creader;

static int fail(creader *r, const char *what)
{
    return luaL_error(r->L, "%s.%s: malformed CBOR response: %s at byte %d", r->op->service,
                      r->op->name, what, (int)(r->p - r->start));
}

static unsigned char next_byte(creader *r)
{
    if (r->p >= r->end)
        fail(r, "truncated item");
    return *r->p++;
}

/* The argument of a head with additional information `ai` (0..27); 31 is the caller's. */
static uint64_t argument(creader *r, unsigned ai)
{
    if (ai < 24)
        return ai;
    if (ai > 27)
        fail(r, "reserved additional information");
    size_t n = (size_t)1 << (ai - 24);
    if ((size_t)(r->end - r->p) < n)
        fail(r, "truncated item");
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | *r->p++;
    return v;
}

static double half_to_double(unsigned h)
{
    int exp = (h >> 10) & 0x1f;
    unsigned mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp != 31)
        v = ldexp(mant + 1024, exp - 25);
    else
        v = mant == 0 ? HUGE_VAL : NAN;
    return (h & 0x8000) ? -v : v;
}

static void enter(creader *r)
{
    if (++r->depth > FO_CBOR_MAX_DEPTH)
        fail(r, "nesting too deep");
    luaL_checkstack(r->L, 16, "CBOR document too deep");
}

static int read_item(creader *r);

/* A byte or text string (major 2 or 3), definite or indefinite; pushes it. */
static void read_string(creader *r, unsigned major, unsigned ai)
{
    if (ai != 31) {
        uint64_t n = argument(r, ai);
        if (n > (uint64_t)(r->end - r->p))
            fail(r, "truncated string");
        if (major == 3) {
            for (size_t i = 0; i < n;) {
                size_t k = fo_utf8_seq(r->p + i, (size_t)n - i);
                if (!k) {
                    r->p = r->p + i;
                    fail(r, "text string not UTF-8");
                }
                i += k;
            }
        }
        lua_pushlstring(r->L, (const char *)r->p, (size_t)n);
        r->p += n;
        return;
    }
    luaL_Buffer chunks;
    luaL_buffinit(r->L, &chunks);
    for (;;) {
        unsigned char ib = next_byte(r);
        if (ib == 0xff)
            break;
        if ((unsigned)(ib >> 5) != major || (ib & 0x1f) == 31) {
            r->p--;
            fail(r, "bad chunk in an indefinite-length string");
        }
        read_string(r, major, ib & 0x1f);
        luaL_addvalue(&chunks);
    }
    luaL_pushresult(&chunks);
}

/* Is the next byte the break (0xff)? Consumes it when so. */
static int at_break(creader *r)
{
    if (r->p >= r->end)
        fail(r, "truncated item");
    if (*r->p == 0xff) {
        r->p++;
        return 1;
    }
    return 0;
}

static void read_array(creader *r, unsigned ai)
{
    enter(r);
    uint64_t n = ai == 31 ? 0 : argument(r, ai);
    if (ai != 31 && n > (uint64_t)(r->end - r->p))
        fail(r, "truncated array"); /* each item takes at least one byte */
    lua_createtable(r->L, n > 64 ? 64 : (int)n, 0);
    lua_Integer count = 0;
    for (uint64_t i = 0; ai == 31 ? !at_break(r) : i < n; i++)
        if (read_item(r))
            lua_rawseti(r->L, -2, ++count);
    r->depth--;
}

static void read_map(creader *r, unsigned ai)
{
    enter(r);
    uint64_t n = ai == 31 ? 0 : argument(r, ai);
    if (ai != 31 && n > (uint64_t)(r->end - r->p) / 2)
        fail(r, "truncated map");
    lua_createtable(r->L, 0, n > 64 ? 64 : (int)n);
    for (uint64_t i = 0; ai == 31 ? !at_break(r) : i < n; i++) {
        unsigned char kb = r->p < r->end ? *r->p : 0;
        unsigned km = kb >> 5;
        if (r->p < r->end && km != 0 && km != 1 && km != 3)
            fail(r, "map key that is neither a text string nor an integer");
        read_item(r); /* an integer or a string: never null */
        if (read_item(r))
            lua_rawset(r->L, -3);
        else
            lua_pop(r->L, 1);
    }
    r->depth--;
}

/* Reads one item; pushes it and returns 1, or returns 0 for null/undefined. */
static int read_item(creader *r)
{
    lua_State *L = r->L;
    const unsigned char *at = r->p;
    unsigned char ib = next_byte(r);
    unsigned major = ib >> 5, ai = ib & 0x1f;
    switch (major) {
    case 0:
    case 1: {
        if (ai == 31) {
            r->p = at;
            fail(r, "indefinite length on an integer");
        }
        uint64_t v = argument(r, ai);
        if (v <= (uint64_t)INT64_MAX)
            lua_pushinteger(L, major == 0 ? (lua_Integer)v : -1 - (lua_Integer)v);
        else
            lua_pushnumber(L, major == 0 ? (double)v : -1.0 - (double)v);
        return 1;
    }
    case 2:
    case 3:
        read_string(r, major, ai);
        return 1;
    case 4:
        read_array(r, ai);
        return 1;
    case 5:
        read_map(r, ai);
        return 1;
    case 6: {
        if (ai == 31) {
            r->p = at;
            fail(r, "indefinite length on a tag");
        }
        uint64_t tag = argument(r, ai);
        enter(r);
        const unsigned char *content = r->p;
        int got = read_item(r);
        r->depth--;
        if (tag == 1 && (!got || !lua_isnumber(L, -1) || lua_type(L, -1) != LUA_TNUMBER)) {
            r->p = content;
            fail(r, "epoch time (tag 1) that is not a number");
        }
        return got;
    }
    default: /* 7: simple values and floats */
        switch (ai) {
        case 20:
        case 21:
            lua_pushboolean(L, ai == 21);
            return 1;
        case 22:
        case 23:
            return 0;
        case 25: {
            uint64_t h = argument(r, ai);
            lua_pushnumber(L, half_to_double((unsigned)h));
            return 1;
        }
        case 26: {
            uint32_t u = (uint32_t)argument(r, ai);
            float f;
            memcpy(&f, &u, sizeof f);
            lua_pushnumber(L, f);
            return 1;
        }
        case 27: {
            uint64_t u = argument(r, ai);
            double d;
            memcpy(&d, &u, sizeof d);
            lua_pushnumber(L, d);
            return 1;
        }
        case 31:
            r->p = at;
            return fail(r, "unexpected break");
        default:
            r->p = at;
            return fail(r, "unsupported simple value");
        }
    }
}

int fo_cbor_decode(lua_State *L, const fo_op *op, const char *data, size_t len)
{
    if (len == 0)
        return 0;
    creader r = {L,
                 op,
                 (const unsigned char *)data,
                 (const unsigned char *)data,
                 (const unsigned char *)data + len,
                 0};
    luaL_checkstack(L, 16, "CBOR document too deep");
    int got = read_item(&r);
    if (r.p != r.end)
        fail(&r, "data after the item");
    return got;
}

/* ---- encoding */

void fo_cbor_head(lua_State *L, fo_buf *b, unsigned major, uint64_t n)
{
    unsigned char h[9];
    size_t len;
    unsigned m = major << 5;
    if (n < 24) {
        h[0] = (unsigned char)(m | n);
        len = 1;
    } else if (n <= 0xff) {
        h[0] = (unsigned char)(m | 24);
        h[1] = (unsigned char)n;
        len = 2;
    } else if (n <= 0xffff) {
        h[0] = (unsigned char)(m | 25);
        len = 3;
    } else if (n <= 0xffffffffu) {
        h[0] = (unsigned char)(m | 26);
        len = 5;
    } else {
        h[0] = (unsigned char)(m | 27);
        len = 9;
    }
    for (size_t i = len - 1; i >= 1 && len > 2; i--, n >>= 8)
        h[i] = (unsigned char)(n & 0xff);
    fo_buf_add(L, b, (const char *)h, len);
}

void fo_cbor_int(lua_State *L, fo_buf *b, int64_t v)
{
    if (v >= 0)
        fo_cbor_head(L, b, 0, (uint64_t)v);
    else
        fo_cbor_head(L, b, 1, (uint64_t)(-1 - v));
}

void fo_cbor_text(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    fo_cbor_head(L, b, 3, n);
    fo_buf_add(L, b, s, n);
}

void fo_cbor_bytes(lua_State *L, fo_buf *b, const char *s, size_t n)
{
    fo_cbor_head(L, b, 2, n);
    fo_buf_add(L, b, s, n);
}

void fo_cbor_bool(lua_State *L, fo_buf *b, int v)
{
    fo_buf_addc(L, b, (char)(v ? 0xf5 : 0xf4));
}

void fo_cbor_float(lua_State *L, fo_buf *b, double v, int single)
{
    unsigned char h[9];
    size_t len;
    if (isnan(v) || isinf(v)) {
        unsigned half = isnan(v) ? 0x7e00 : v > 0 ? 0x7c00 : 0xfc00;
        h[0] = 0xf9;
        h[1] = (unsigned char)(half >> 8);
        h[2] = (unsigned char)(half & 0xff);
        len = 3;
    } else if (single) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        h[0] = 0xfa;
        for (int i = 4; i >= 1; i--, u >>= 8)
            h[i] = (unsigned char)(u & 0xff);
        len = 5;
    } else {
        uint64_t u;
        memcpy(&u, &v, sizeof u);
        h[0] = 0xfb;
        for (int i = 8; i >= 1; i--, u >>= 8)
            h[i] = (unsigned char)(u & 0xff);
        len = 9;
    }
    fo_buf_add(L, b, (const char *)h, len);
}

void fo_cbor_epoch(lua_State *L, fo_buf *b, double seconds)
{
    fo_cbor_head(L, b, 6, 1);
    if (seconds == floor(seconds) && fabs(seconds) < 9e15)
        fo_cbor_int(L, b, (int64_t)seconds);
    else
        fo_cbor_float(L, b, seconds, 0);
}
