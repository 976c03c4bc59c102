/* The JSON parser of protocol json: RFC 8259 text to Lua values, directed by the model.
 *
 * One pass over the bytes, no intermediate tree: each value is converted as it is read,
 * according to the shape it lands in. Nothing is allocated outside the Lua state (the
 * scratch buffer for unescaped strings is a GC-owned fo_buf), so a raised error leaks
 * nothing. Strict: invalid UTF-8, control characters in strings, lone surrogates in \u
 * escapes, leading zeros, trailing commas, truncation and data after the document are
 * errors; objects and arrays nest at most FO_JSON_MAX_DEPTH deep.
 *
 * Shape-directed conversion (botocore's JSONParser):
 *   structure  object; members found by name (or by their locationName), unknown members
 *              skipped, null members absent. A union whose only non-null member is unknown
 *              gives {SDK_UNKNOWN_MEMBER = {name = tag}}. "__type" inside is ignored.
 *   list       array → Lua array; a null element leaves a hole at its index.
 *   map        object → table; null values absent.
 *   integer/long  JSON integers → Lua integers; beyond 64 bits (or with a fraction or an
 *              exponent and no exact integer value) → Lua float.
 *   float/double  any number → Lua float; the strings "NaN", "Infinity", "-Infinity" →
 *              the special floats.
 *   timestamp  number → seconds; string in ISO 8601, RFC 822 or epoch form → seconds
 *              (a Lua integer when whole, a float otherwise).
 *   blob       base64 string → raw bytes.
 *   document (structure with document=true), and any value of a JSON type the shape does
 *              not expect (a number for a string, ...): converted generically, as botocore
 *              passes such values through (an object where the model says string, too).
 *              Where the model expects a structure, list or map, any other JSON type is
 *              an error. */
#include "json.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct jreader {
    lua_State *L;
    const fo_op *op;
    const unsigned char *start, *p, *end;
    size_t base;     /* offset of start in the response body */
    fo_buf *scratch; /* unescaped strings and number lexemes */
    int depth;
    int shapes; /* absolute index of model.shapes */
} jreader;

static void fail_at(jreader *r, const unsigned char *at, const char *what)
{
    luaL_error(r->L, "%s.%s: malformed JSON response: %s at byte %I", r->op->service, r->op->name,
               what, (lua_Integer)(r->base + (size_t)(at - r->start)));
}

static void fail(jreader *r, const char *what)
{
    fail_at(r, r->p, what);
}

/* The JSON reading of each model type; those not listed (a document structure
 * included) read as generic JSON. */
static const struct {
    const char *name;
    enum fo_json_type type;
} JSON_TYPES[] = {
    {"structure", FO_JT_STRUCT}, {"string", FO_JT_STRING}, {"character", FO_JT_STRING},
    {"list", FO_JT_LIST},        {"map", FO_JT_MAP},       {"integer", FO_JT_INT},
    {"long", FO_JT_INT},         {"short", FO_JT_INT},     {"byte", FO_JT_INT},
    {"boolean", FO_JT_BOOL},     {"blob", FO_JT_BLOB},     {"float", FO_JT_FLOAT},
    {"double", FO_JT_FLOAT},     {"timestamp", FO_JT_TS},
};

enum fo_json_type fo_json_type_of(lua_State *L, int shape)
{
    if (!shape)
        return FO_JT_GENERIC;
    const char *t = fo_field_str(L, shape, "type");
    if (!t)
        return FO_JT_GENERIC;
    for (size_t i = 0; i < sizeof JSON_TYPES / sizeof JSON_TYPES[0]; i++) {
        if (strcmp(t, JSON_TYPES[i].name) != 0)
            continue;
        if (JSON_TYPES[i].type == FO_JT_STRUCT && fo_field_bool(L, shape, "document"))
            return FO_JT_GENERIC;
        return JSON_TYPES[i].type;
    }
    return FO_JT_GENERIC;
}

static void skip_ws(jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static void enter(jreader *r)
{
    if (++r->depth > FO_JSON_MAX_DEPTH)
        fail(r, "nesting too deep");
    luaL_checkstack(r->L, 16, "JSON document too deep");
}

/* ---- strings */

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static void add_utf8(jreader *r, unsigned cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    fo_buf_add(r->L, r->scratch, out, n);
}

/* At a backslash: appends the escaped character to the scratch buffer. */
static void read_escape(jreader *r)
{
    const unsigned char *at = r->p;
    r->p++;
    if (r->p >= r->end)
        fail(r, "truncated string");
    unsigned char c = *r->p++;
    char out;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        out = (char)c;
        break;
    case 'b':
        out = '\b';
        break;
    case 'f':
        out = '\f';
        break;
    case 'n':
        out = '\n';
        break;
    case 'r':
        out = '\r';
        break;
    case 't':
        out = '\t';
        break;
    case 'u': {
        unsigned cp;
        if (r->end - r->p < 4)
            fail(r, "truncated \\u escape");
        if (hex4(r->p, &cp) != 0)
            fail_at(r, at, "invalid \\u escape");
        r->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            fail_at(r, at, "lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo = 0;
            if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                hex4(r->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                fail_at(r, at, "lone high surrogate in \\u escape");
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        add_utf8(r, cp);
        return;
    }
    default:
        fail_at(r, at, "invalid escape in string");
        return;
    }
    fo_buf_addc(r->L, r->scratch, out);
}

/* At the opening quote: reads the string, checking it, and returns its bytes (valid until
 * the next string is read). */
static const char *read_string(jreader *r, size_t *len)
{
    r->p++;
    const unsigned char *seg = r->p;
    int escaped = 0;
    r->scratch->len = 0;
    for (;;) {
        if (r->p >= r->end)
            fail(r, "truncated string");
        unsigned char c = *r->p;
        if (c == '"')
            break;
        if (c == '\\') {
            fo_buf_add(r->L, r->scratch, (const char *)seg, (size_t)(r->p - seg));
            escaped = 1;
            read_escape(r);
            seg = r->p;
        } else if (c < 0x20) {
            fail(r, "control character in string");
        } else if (c < 0x80) {
            r->p++;
        } else {
            size_t n = fo_utf8_seq(r->p, (size_t)(r->end - r->p));
            if (n == 0)
                fail(r, "invalid UTF-8 in string");
            r->p += n;
        }
    }
    const char *s;
    if (escaped) {
        fo_buf_add(r->L, r->scratch, (const char *)seg, (size_t)(r->p - seg));
        s = r->scratch->data ? r->scratch->data : "";
        *len = r->scratch->len;
    } else {
        s = (const char *)seg;
        *len = (size_t)(r->p - seg);
    }
    r->p++; /* closing quote */
    return s;
}

/* ---- numbers */

typedef struct jnum {
    int integral; /* the lexeme has no fraction nor exponent and fits a lua_Integer */
    lua_Integer i;
    double d;
} jnum;

static int is_digit(jreader *r)
{
    return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static void read_number(jreader *r, jnum *num)
{
    const unsigned char *s = r->p;
    int plain = 1;
    if (*r->p == '-')
        r->p++;
    if (!is_digit(r))
        fail(r, r->p >= r->end ? "truncated number" : "invalid number");
    if (*r->p == '0') {
        r->p++;
        if (is_digit(r))
            fail(r, "leading zero in number");
    } else {
        while (is_digit(r))
            r->p++;
    }
    if (r->p < r->end && *r->p == '.') {
        plain = 0;
        r->p++;
        if (!is_digit(r))
            fail(r, r->p >= r->end ? "truncated number" : "invalid number");
        while (is_digit(r))
            r->p++;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        plain = 0;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!is_digit(r))
            fail(r, r->p >= r->end ? "truncated number" : "invalid number");
        while (is_digit(r))
            r->p++;
    }
    /* strtod/strtoll need a terminated copy: the text may go on with more digits (an
     * event-stream payload is followed by binary data). */
    r->scratch->len = 0;
    fo_buf_add(r->L, r->scratch, (const char *)s, (size_t)(r->p - s));
    fo_buf_addc(r->L, r->scratch, '\0');
    const char *text = r->scratch->data;
    num->integral = 0;
    if (plain) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0 && v >= LUA_MININTEGER && v <= LUA_MAXINTEGER) {
            num->integral = 1;
            num->i = (lua_Integer)v;
            num->d = (double)v;
            return;
        }
    }
    num->d = strtod(text, NULL); /* out of range: ±HUGE_VAL or 0, as the text says */
}

/* ---- literals */

static int read_literal(jreader *r)
{
    static const struct {
        const char *text;
        size_t len;
        int kind; /* 0 null, 1 true, 2 false */
    } lits[] = {{"null", 4, 0}, {"true", 4, 1}, {"false", 5, 2}};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        if (*r->p != (unsigned char)lits[i].text[0])
            continue;
        if ((size_t)(r->end - r->p) < lits[i].len || memcmp(r->p, lits[i].text, lits[i].len) != 0)
            fail(r, (size_t)(r->end - r->p) < lits[i].len &&
                            memcmp(r->p, lits[i].text, (size_t)(r->end - r->p)) == 0
                        ? "truncated literal"
                        : "invalid literal");
        r->p += lits[i].len;
        return lits[i].kind;
    }
    fail(r, "unexpected character");
    return 0;
}

/* ---- values */

static int read_value(jreader *r, int shape, int build);

static void expect_colon(jreader *r)
{
    skip_ws(r);
    if (r->p >= r->end)
        fail(r, "truncated object");
    if (*r->p != ':')
        fail(r, "expected ':'");
    r->p++;
}

/* After a member or element: returns 1 at the closing bracket (consumed), 0 after a comma. */
static int next_or_close(jreader *r, unsigned char close)
{
    skip_ws(r);
    if (r->p >= r->end)
        fail(r, close == '}' ? "truncated object" : "truncated array");
    if (*r->p == ',') {
        r->p++;
        skip_ws(r);
        if (r->p < r->end && *r->p == close)
            fail(r, "trailing comma");
        return 0;
    }
    if (*r->p == close) {
        r->p++;
        return 1;
    }
    fail(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    return 1;
}

/* At '{' or '[': 1 when the container is empty (and consumed). */
static int open_container(jreader *r, unsigned char close)
{
    enter(r);
    r->p++;
    skip_ws(r);
    if (r->p >= r->end)
        fail(r, close == '}' ? "truncated object" : "truncated array");
    if (*r->p == close) {
        r->p++;
        r->depth--;
        return 1;
    }
    return 0;
}

/* Reads an object's member name and the colon after it, pushing the name when `push`. */
static void read_key(jreader *r, int push)
{
    if (r->p >= r->end)
        fail(r, "truncated object");
    if (*r->p != '"')
        fail(r, "expected a member name");
    size_t n;
    const char *s = read_string(r, &n);
    if (push)
        lua_pushlstring(r->L, s, n);
    expect_colon(r);
}

/* Finds the member of the structure whose wire name is the string at key: pushes the
 * member's name and its shape reference, or nothing (returns 0). */
static int find_member(lua_State *L, int members, int key)
{
    if (!members)
        return 0;
    lua_pushvalue(L, key);
    if (lua_rawget(L, members) == LUA_TTABLE) {
        const char *loc = fo_field_str(L, -1, "locationName");
        if (!loc || strcmp(loc, lua_tostring(L, key)) == 0) {
            lua_pushvalue(L, key);
            lua_insert(L, -2);
            return 1;
        }
    }
    lua_pop(L, 1);
    const char *k = lua_tostring(L, key);
    lua_pushnil(L);
    while (lua_next(L, members)) {
        if (lua_type(L, -1) == LUA_TTABLE && lua_type(L, -2) == LUA_TSTRING) {
            const char *loc = fo_field_str(L, -1, "locationName");
            if (loc && strcmp(loc, k) == 0)
                return 1; /* name, ref */
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* Pushes t seconds: a Lua integer when whole, a float otherwise. */
static void push_seconds(lua_State *L, double t)
{
    lua_Integer i;
    if (t == floor(t) && lua_numbertointeger(t, &i))
        lua_pushinteger(L, i);
    else
        lua_pushnumber(L, t);
}

static const char *expected_kind(enum fo_json_type t)
{
    switch (t) {
    case FO_JT_STRUCT:
        return "a structure";
    case FO_JT_LIST:
        return "a list";
    case FO_JT_MAP:
        return "a map";
    default:
        return "a scalar";
    }
}

static void mismatch(jreader *r, const unsigned char *at, const char *found, enum fo_json_type t)
{
    lua_pushfstring(r->L, "%s where the model expects %s", found, expected_kind(t));
    fail_at(r, at, lua_tostring(r->L, -1));
}

static int is_container(enum fo_json_type t)
{
    return t == FO_JT_STRUCT || t == FO_JT_LIST || t == FO_JT_MAP;
}

static void read_structure(jreader *r, int shape)
{
    lua_State *L = r->L;
    lua_newtable(L);
    int result = lua_gettop(L);
    int members = lua_getfield(L, shape, "members") == LUA_TTABLE ? result + 1 : 0;
    int is_union = fo_field_bool(L, shape, "union");
    lua_pushnil(L); /* the first unknown non-null member of a union */
    int tag = lua_gettop(L);
    if (!open_container(r, '}')) {
        do {
            read_key(r, 1);
            int key = lua_gettop(L);
            if (find_member(L, members, key)) {
                int ref = lua_gettop(L);
                fo_shape_push(L, r->shapes, ref);
                if (!read_value(r, lua_gettop(L), 1))
                    lua_pushnil(L); /* null: absent, also after an earlier value */
                lua_pushvalue(L, ref - 1);
                lua_insert(L, -2);
                lua_rawset(L, result);
            } else {
                skip_ws(r);
                if (is_union && lua_isnil(L, tag) && strcmp(lua_tostring(L, key), "__type") != 0 &&
                    r->p < r->end && *r->p != 'n') {
                    lua_pushvalue(L, key);
                    lua_replace(L, tag);
                }
                read_value(r, 0, 0);
            }
            lua_settop(L, tag);
        } while (!next_or_close(r, '}'));
        r->depth--;
    }
    lua_pushnil(L);
    if (is_union && !lua_isnil(L, tag) && !lua_next(L, result)) {
        lua_createtable(L, 0, 1);
        lua_pushvalue(L, tag);
        lua_setfield(L, -2, "name");
        lua_setfield(L, result, "SDK_UNKNOWN_MEMBER");
    }
    lua_settop(L, result);
}

/* Pushes shapes[t[field].shape], or nothing (returns 0) when t has no such reference. */
static int push_target(jreader *r, int t, const char *field)
{
    lua_State *L = r->L;
    if (lua_getfield(L, t, field) != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    fo_shape_push(L, r->shapes, lua_gettop(L));
    lua_remove(L, -2);
    return lua_gettop(L);
}

static void read_map(jreader *r, int shape)
{
    lua_State *L = r->L;
    lua_newtable(L);
    int result = lua_gettop(L);
    int value = push_target(r, shape, "value");
    int base = lua_gettop(L);
    if (!open_container(r, '}')) {
        do {
            read_key(r, 1);
            if (read_value(r, value, 1))
                lua_rawset(L, result);
            lua_settop(L, base);
        } while (!next_or_close(r, '}'));
        r->depth--;
    }
    lua_settop(L, result);
}

static void read_list(jreader *r, int shape)
{
    lua_State *L = r->L;
    lua_newtable(L);
    int result = lua_gettop(L);
    int member = push_target(r, shape, "member");
    int base = lua_gettop(L);
    lua_Integer i = 0;
    if (!open_container(r, ']')) {
        do {
            i++;
            if (read_value(r, member, 1))
                lua_rawseti(L, result, i); /* a null leaves a hole at its index */
            lua_settop(L, base);
        } while (!next_or_close(r, ']'));
        r->depth--;
    }
    lua_settop(L, result);
}

/* Objects and arrays without a shape: tables (build), or only checked (!build). */
static void read_generic_object(jreader *r, int build)
{
    lua_State *L = r->L;
    int result = 0;
    if (build) {
        lua_newtable(L);
        result = lua_gettop(L);
    }
    if (open_container(r, '}'))
        return;
    do {
        read_key(r, build);
        if (read_value(r, 0, build))
            lua_rawset(L, result);
        else if (build)
            lua_pop(L, 1);
    } while (!next_or_close(r, '}'));
    r->depth--;
}

static void read_generic_array(jreader *r, int build)
{
    lua_State *L = r->L;
    int result = 0;
    if (build) {
        lua_newtable(L);
        result = lua_gettop(L);
    }
    if (open_container(r, ']'))
        return;
    lua_Integer i = 0;
    do {
        i++;
        if (read_value(r, 0, build))
            lua_rawseti(L, result, i);
    } while (!next_or_close(r, ']'));
    r->depth--;
}

static void push_string_as(jreader *r, const unsigned char *at, const char *s, size_t n,
                           enum fo_json_type t)
{
    lua_State *L = r->L;
    switch (t) {
    case FO_JT_BLOB: {
        fo_buf *b = fo_buf_new(L);
        if (fo_b64_decode(L, b, s, n) != 0)
            fail_at(r, at, "invalid base64 in a blob");
        fo_buf_push(L, b);
        lua_remove(L, -2);
        return;
    }
    case FO_JT_TS: {
        double secs;
        if (memchr(s, '\0', n))
            fail_at(r, at, "invalid timestamp");
        lua_pushlstring(L, s, n);
        if (fo_ts_parse(lua_tostring(L, -1), &secs) != 0)
            fail_at(r, at, "invalid timestamp");
        lua_pop(L, 1);
        push_seconds(L, secs);
        return;
    }
    case FO_JT_FLOAT:
        if (n == 3 && memcmp(s, "NaN", 3) == 0) {
            lua_pushnumber(L, (lua_Number)NAN);
            return;
        }
        if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
            lua_pushnumber(L, (lua_Number)HUGE_VAL);
            return;
        }
        if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
            lua_pushnumber(L, -(lua_Number)HUGE_VAL);
            return;
        }
        break;
    default:
        break;
    }
    lua_pushlstring(L, s, n);
}

static void push_number_as(lua_State *L, const jnum *num, enum fo_json_type t)
{
    lua_Integer i;
    if (t == FO_JT_FLOAT)
        lua_pushnumber(L, (lua_Number)num->d);
    else if (num->integral)
        lua_pushinteger(L, num->i);
    else if (t == FO_JT_INT && num->d == floor(num->d) && lua_numbertointeger(num->d, &i))
        lua_pushinteger(L, i);
    else
        lua_pushnumber(L, (lua_Number)num->d);
}

static int read_value(jreader *r, int shape, int build)
{
    lua_State *L = r->L;
    skip_ws(r);
    if (r->p >= r->end)
        fail(r, "truncated document");
    enum fo_json_type t = build ? fo_json_type_of(L, shape) : FO_JT_GENERIC;
    const unsigned char *at = r->p;
    switch (*r->p) {
    case '{':
        if (t == FO_JT_STRUCT)
            read_structure(r, shape);
        else if (t == FO_JT_MAP)
            read_map(r, shape);
        else if (!is_container(t))
            read_generic_object(r, build); /* also for a scalar shape, as botocore */
        else
            mismatch(r, at, "an object", t);
        return build;
    case '[':
        if (t == FO_JT_LIST)
            read_list(r, shape);
        else if (!is_container(t))
            read_generic_array(r, build);
        else
            mismatch(r, at, "an array", t);
        return build;
    case '"': {
        size_t n;
        const char *s = read_string(r, &n);
        if (!build)
            return 0;
        if (is_container(t))
            mismatch(r, at, "a string", t);
        push_string_as(r, at, s, n, t);
        return 1;
    }
    case 't':
    case 'f':
    case 'n': {
        int kind = read_literal(r);
        if (!build || kind == 0)
            return 0;
        if (is_container(t))
            mismatch(r, at, "a boolean", t);
        lua_pushboolean(L, kind == 1);
        return 1;
    }
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) {
            jnum num;
            read_number(r, &num);
            if (!build)
                return 0;
            if (is_container(t))
                mismatch(r, at, "a number", t);
            push_number_as(L, &num, t);
            return 1;
        }
        fail(r, "unexpected character");
        return 0;
    }
}

int fo_json_decode(lua_State *L, const fo_op *op, const char *data, size_t len, size_t base,
                   int shape)
{
    jreader r;
    memset(&r, 0, sizeof r);
    r.L = L;
    r.op = op;
    r.start = r.p = (const unsigned char *)data;
    r.end = r.start + len;
    r.base = base;
    r.shapes = op->shapes;
    luaL_checkstack(L, 16, "JSON document");
    r.scratch = fo_buf_new(L);
    int scratch = lua_gettop(L);
    skip_ws(&r);
    int got = 0;
    if (r.p < r.end) {
        got = read_value(&r, shape, 1);
        skip_ws(&r);
        if (r.p < r.end)
            fail(&r, "unexpected data after the document");
    }
    lua_remove(L, scratch);
    return got;
}
