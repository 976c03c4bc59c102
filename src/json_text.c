/* fo.tables.json_text: the text encoder of fo.json (lua/fo/json.lua) in C — the simulator
 * encodes each changed record on every mutating call it persists, and the engine its state
 * on every save. Its output is byte for byte that of the Lua encoder, which stays the
 * reference (tests/lua/runtime/test_json_text.lua compares the two on random documents):
 * integers as integers, floats with the shortest of %.15g/%.17g that reads back, ".0"
 * added to a float that would read back as an integer; strings with control characters
 * (0x00-0x1f, 0x7f), '"' and '\' escaped, other bytes as they are; EMPTY_ARRAY as [];
 * a table whose keys are exactly 1..n (n > 0) as an array, any other as an object with
 * string keys sorted by byte (Lua's < on strings in the C locale, which fo never
 * changes) — in a JSON line, the top-level keys named in `lead` first, in that order;
 * the same errors, with the same JSONPath, for what JSON cannot hold.
 *
 * What the C encoder does not handle it leaves to the Lua one (returns false): a table with
 * a metatable other than EMPTY_ARRAY's (the Lua encoder honours its __len, __pairs, __index
 * and __eq, which only Lua code can run), a `lead` that is not an array of strings, and
 * nesting deeper than MAX_DEPTH (deeper than fo.json.decode reads back). */
#include "json_text.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this depth the Lua encoder takes over (fo.json.decode refuses more than 200). */
#define MAX_DEPTH 256

#define BUFFER_META "fo.tables.json_buffer"

/* A buffer larger than this after an encode is let go; a smaller one is kept for the next. */
#define KEEP_BYTES (1u << 20)

/* An object's key, with its rank in `lead` (LUA_MAXINTEGER when not there). The text is
 * the table's own key string: the table is on the Lua stack while its keys are used. */
typedef struct {
    const char *s;
    size_t len;
    lua_Integer rank;
} json_key;

/* The text being made and the keys of the objects being encoded (each level's keys above
 * its parent's), in a userdata: freed by its __gc when an error leaves them. */
typedef struct {
    char *p;
    size_t len, cap;
    json_key *keys;
    size_t nkeys, keycap;
    int busy; /* in use by an encode (a nested one — a __tostring — gets its own) */
} json_buffer;

/* One step of the path to the value being encoded: a key (s) or an array index. */
typedef struct {
    const char *s;
    size_t len;
    lua_Integer index;
} json_seg;

typedef struct {
    lua_State *L;
    json_buffer *b;
    int line;     /* one line, no spaces (fo.json.line) */
    int empty;    /* stack index of fo.json.EMPTY_ARRAY */
    size_t nlead; /* b->keys[0..nlead): the lead, rank = index */
    json_seg segs[MAX_DEPTH + 1];
    const void *seen[MAX_DEPTH + 1]; /* the tables being encoded: a cycle check */
} json_ctx;

/* The Lua encoder takes over. */
#define FALLBACK 1

static void release(json_ctx *c)
{
    c->b->busy = 0;
}

/* A buffer that cannot grow: the encode fails as Lua's allocator would (the buffer is
 * let go for the next encode first). */
static int out_of_memory(json_ctx *c)
{
    release(c);
    lua_pushliteral(c->L, "not enough memory");
    return lua_error(c->L);
}

static void reserve(json_ctx *c, size_t extra)
{
    json_buffer *b = c->b;
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        out_of_memory(c);
    b->p = p;
    b->cap = cap;
}

static void put(json_ctx *c, const char *s, size_t n)
{
    reserve(c, n);
    memcpy(c->b->p + c->b->len, s, n);
    c->b->len += n;
}

#define PUT_LITERAL(c, s) put((c), "" s, sizeof(s) - 1)

/* "\n" and two spaces per level (fo.json.encode's layout); nothing on a line. */
static void put_pad(json_ctx *c, int indent)
{
    if (c->line)
        return;
    size_t n = 1 + 2 * (size_t)indent;
    reserve(c, n);
    char *p = c->b->p + c->b->len;
    p[0] = '\n';
    memset(p + 1, ' ', n - 1);
    c->b->len += n;
}

/* Bytes a JSON string escapes: what Lua's %c matches in the C locale (0x00-0x1f, 0x7f),
 * '"' and '\'. Value: the short escape's letter, or 'u' for \u00XX. */
static const char ESCAPE[256] = {
    ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',  [0x00] = 'u',
    [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',  [0x06] = 'u',
    [0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u',  [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u',  [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u',  [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', [0x7f] = 'u', ['"'] = '"',  ['\\'] = '\\',
};

static void put_string(json_ctx *c, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !ESCAPE[(unsigned char)s[i]])
        i++;
    reserve(c, (n - i) * 6 + i + 2);
    char *p = c->b->p + c->b->len;
    *p++ = '"';
    memcpy(p, s, i);
    p += i;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e = ESCAPE[ch];
        if (!e) {
            *p++ = (char)ch;
        } else if (e == 'u') {
            static const char HEX[] = "0123456789abcdef";
            memcpy(p, "\\u00", 4);
            p[4] = HEX[ch >> 4];
            p[5] = HEX[ch & 15];
            p += 6;
        } else {
            p[0] = '\\';
            p[1] = e;
            p += 2;
        }
    }
    *p++ = '"';
    c->b->len = (size_t)(p - c->b->p);
}

/* Raises "<path>: <what><tostring of the value at idx, when idx != 0><tail>", the message
 * of the Lua encoder (path_of: "$", ".key" per key, "[i]" per index). */
static int fail(json_ctx *c, int depth, const char *what, int idx, const char *tail)
{
    lua_State *L = c->L;
    release(c);
    if (idx)
        idx = lua_absindex(L, idx);
    luaL_checkstack(L, 6, "fo.json: nesting too deep");
    luaL_Buffer path;
    luaL_buffinit(L, &path);
    luaL_addchar(&path, '$');
    for (int i = 0; i < depth; i++) {
        const json_seg *g = &c->segs[i];
        if (g->s) {
            luaL_addchar(&path, '.');
            luaL_addlstring(&path, g->s, g->len);
        } else {
            lua_pushfstring(L, "[%I]", (LUAI_UACINT)g->index);
            luaL_addvalue(&path);
        }
    }
    luaL_pushresult(&path);
    lua_pushstring(L, what);
    int n = 2;
    if (idx) {
        luaL_tolstring(L, idx, NULL);
        n++;
    }
    lua_pushstring(L, tail);
    lua_concat(L, n + 1);
    return lua_error(L);
}

static void put_number(json_ctx *c, int idx, int depth)
{
    char s[64];
    int n;
    if (lua_isinteger(c->L, idx)) {
        n = snprintf(s, sizeof s, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(c->L, idx));
        put(c, s, (size_t)n);
        return;
    }
    double v = (double)lua_tonumber(c->L, idx);
    if (isnan(v) || isinf(v))
        fail(c, depth, ": ", idx, " cannot be stored in JSON");
    n = snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v)
        n = snprintf(s, sizeof s, "%.17g", v);
    if (!strpbrk(s, ".eE")) { /* stays a float when read back */
        memcpy(s + n, ".0", 3);
        n += 2;
    }
    put(c, s, (size_t)n);
}

static int key_order(const void *x, const void *y)
{
    const json_key *a = x, *b = y;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    int r = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    if (r)
        return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static lua_Integer rank_of(json_ctx *c, const char *s, size_t len)
{
    lua_Integer rank = LUA_MAXINTEGER;
    for (size_t i = 0; i < c->nlead; i++) { /* the last of duplicates, as the Lua one */
        const json_key *k = &c->b->keys[i];
        if (k->len == len && memcmp(k->s, s, len) == 0)
            rank = k->rank;
    }
    return rank;
}

static void add_key(json_ctx *c, const char *s, size_t len, lua_Integer rank)
{
    json_buffer *b = c->b;
    if (b->nkeys == b->keycap) {
        size_t cap = b->keycap ? b->keycap * 2 : 64;
        json_key *keys = realloc(b->keys, cap * sizeof *keys);
        if (!keys)
            out_of_memory(c);
        b->keys = keys;
        b->keycap = cap;
    }
    b->keys[b->nkeys++] = (json_key){s, len, rank};
}

static int encode(json_ctx *c, int idx, int depth);

static int encode_array(json_ctx *c, int idx, int depth)
{
    lua_State *L = c->L;
    PUT_LITERAL(c, "[");
    for (lua_Integer i = 1;; i++) {
        if (lua_rawgeti(L, idx, i) == LUA_TNIL) {
            lua_pop(L, 1);
            break;
        }
        if (i > 1)
            PUT_LITERAL(c, ",");
        put_pad(c, depth + 1);
        c->segs[depth] = (json_seg){NULL, 0, i};
        int r = encode(c, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (r)
            return r;
    }
    put_pad(c, depth);
    PUT_LITERAL(c, "]");
    return 0;
}

static int encode_object(json_ctx *c, int idx, int depth)
{
    lua_State *L = c->L;
    size_t base = c->b->nkeys;
    int lead = c->nlead > 0 && depth == 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            fail(c, depth, ": key ", -1,
                 " is not a string (store maps with string keys, or arrays)");
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        add_key(c, s, len, lead ? rank_of(c, s, len) : LUA_MAXINTEGER);
    }
    size_t count = c->b->nkeys - base;
    if (count == 0) {
        PUT_LITERAL(c, "{}");
        return 0;
    }
    if (count > 1)
        qsort(c->b->keys + base, count, sizeof(json_key), key_order);
    PUT_LITERAL(c, "{");
    for (size_t i = 0; i < count; i++) {
        json_key k = c->b->keys[base + i]; /* a copy: deeper levels may move the array */
        if (i > 0)
            PUT_LITERAL(c, ",");
        put_pad(c, depth + 1);
        put_string(c, k.s, k.len);
        if (c->line)
            PUT_LITERAL(c, ":");
        else
            PUT_LITERAL(c, ": ");
        c->segs[depth] = (json_seg){k.s, k.len, 0};
        lua_pushlstring(L, k.s, k.len);
        lua_rawget(L, idx);
        int r = encode(c, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        if (r)
            return r;
    }
    put_pad(c, depth);
    PUT_LITERAL(c, "}");
    c->b->nkeys = base;
    return 0;
}

/* Encodes the value at idx (absolute) at `depth`; FALLBACK when the Lua encoder must. */
static int encode(json_ctx *c, int idx, int depth)
{
    lua_State *L = c->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(c, s, n);
        return 0;
    }
    case LUA_TNUMBER:
        put_number(c, idx, depth);
        return 0;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            PUT_LITERAL(c, "true");
        else
            PUT_LITERAL(c, "false");
        return 0;
    case LUA_TTABLE:
        break;
    default:
        return fail(c, depth, ": a ", 0,
                    lua_pushfstring(L, "%s cannot be stored in JSON", luaL_typename(L, idx)));
    }
    if (lua_rawequal(L, idx, c->empty)) {
        PUT_LITERAL(c, "[]");
        return 0;
    }
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return FALLBACK;
    }
    if (depth >= MAX_DEPTH)
        return FALLBACK;
    const void *t = lua_topointer(L, idx);
    for (int i = 0; i < depth; i++)
        if (c->seen[i] == t)
            return fail(c, depth, ": a cycle cannot be stored in JSON", 0, "");
    c->seen[depth] = t;
    luaL_checkstack(L, 4, "fo.json: nesting too deep");
    /* an array: keys exactly 1..n, n > 0 (an empty table is an object) */
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n > 0) {
        lua_Unsigned count = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            count++;
        }
        if (count == n)
            return encode_array(c, idx, depth);
    }
    return encode_object(c, idx, depth);
}

static int buffer_gc(lua_State *L)
{
    json_buffer *b = luaL_checkudata(L, 1, BUFFER_META);
    free(b->p);
    free(b->keys);
    memset(b, 0, sizeof *b);
    return 0;
}

static json_buffer *new_buffer(lua_State *L)
{
    json_buffer *b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    luaL_setmetatable(L, BUFFER_META);
    return b;
}

/* Collects the lead (an array of key names) into b->keys; 0 when the Lua encoder must
 * (a lead that is not a plain array of strings). */
static int collect_lead(json_ctx *c, int idx)
{
    lua_State *L = c->L;
    if (!lua_toboolean(L, idx))
        return 1;
    if (!lua_istable(L, idx))
        return 0;
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return 0;
    }
    for (lua_Integer i = 1;; i++) {
        int t = lua_rawgeti(L, idx, i);
        if (t != LUA_TSTRING) {
            lua_pop(L, 1);
            return t == LUA_TNIL;
        }
        size_t len;
        const char *s = lua_tolstring(L, -1, &len); /* anchored in the lead table */
        lua_pop(L, 1);
        add_key(c, s, len, i);
        c->nlead++;
    }
}

/* json_text(v, line, lead, EMPTY_ARRAY) → the JSON text of v (as fo.json.encode, or as
 * fo.json.line(v, lead) when `line`), or false: the Lua encoder must encode it. Raises the
 * Lua encoder's error for what JSON cannot hold. */
static int json_text(lua_State *L)
{
    lua_settop(L, 4);
    json_buffer *b = lua_touserdata(L, lua_upvalueindex(1));
    if (b->busy)
        b = new_buffer(L); /* an encode within an encode: a buffer of its own */
    /* (an error other than fail's — out of memory — leaves the kept buffer busy: the
     * encodes after it then use buffers of their own, as above) */
    b->busy = 1;
    b->len = 0;
    b->nkeys = 0;
    json_ctx c;
    c.L = L;
    c.b = b;
    c.line = lua_toboolean(L, 2);
    c.empty = 4;
    c.nlead = 0;
    int r = FALLBACK;
    if (!c.line || collect_lead(&c, 3))
        r = encode(&c, 1, 0);
    b->busy = 0;
    if (r)
        lua_pushboolean(L, 0);
    else
        lua_pushlstring(L, b->p, b->len);
    if (b->cap > KEEP_BYTES) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    if (b->keycap > KEEP_BYTES / sizeof(json_key)) {
        free(b->keys);
        b->keys = NULL;
        b->keycap = 0;
    }
    return 1;
}

/* Adds json_text to the module table on top of the stack. */
void fo_json_text_register(lua_State *L)
{
    if (luaL_newmetatable(L, BUFFER_META)) {
        lua_pushcfunction(L, buffer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    new_buffer(L);
    lua_pushcclosure(L, json_text, 1);
    lua_setfield(L, -2, "json_text");
}
