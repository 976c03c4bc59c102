/* Validation of request parameters against the operation's input shape, before anything
 * is serialized or sent: unknown members, wrong types, missing required members, enum
 * values and the model's min/max ranges. Every problem is reported (up to a limit) as
 * "svc.Op: Member.Path: what is wrong", paths in Lua terms (Tags[2].Key).
 *
 * The same checker serves the simulator (server.h: fo_check_value): the types alone for a
 * request body that was read generically (JSON), and outputs (validate_output) without the
 * ranges. */
#include "server.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROBLEMS 10
#define MAX_DEPTH 64
#define MAX_LISTED 12 /* enum values or member names quoted in one message */

struct check {
    lua_State *L;
    int shapes;
    unsigned what; /* FO_CHECK_* beyond the types */
    fo_buf *out;
    int problems;
    char path[1024];
    size_t path_len;
};

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct check *c, const char *fmt, ...)
{
    c->problems++;
    if (c->problems > MAX_PROBLEMS)
        return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->problems > 1)
        fo_buf_adds(c->L, c->out, "; ");
    fo_buf_adds(c->L, c->out, c->path_len ? c->path : "(params)");
    fo_buf_adds(c->L, c->out, ": ");
    fo_buf_adds(c->L, c->out, what);
}

/* Path segments: ".Name" (or "Name" at the top), "[3]", "[\"key\"]". Returns the old
 * length so the caller can restore it. A path too long to hold is cut, never overrun. */
static size_t path_push(struct check *c, const char *fmt, const char *s, long long i)
{
    size_t old = c->path_len;
    size_t room = sizeof c->path - c->path_len;
    int n = s ? snprintf(c->path + c->path_len, room, fmt, s)
              : snprintf(c->path + c->path_len, room, fmt, i);
    if (n > 0)
        c->path_len += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void path_pop(struct check *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

static const char *lua_kind(lua_State *L, int idx)
{
    return luaL_typename(L, idx);
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The structure's member names, sorted, as "A, B, C" (at most MAX_LISTED, then "..."). */
static void member_names(lua_State *L, int members, char *out, size_t size)
{
    const char *names[512];
    size_t n = 0;
    out[0] = '\0';
    if (!lua_istable(L, members))
        return;
    lua_pushnil(L);
    while (lua_next(L, members)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING && n < sizeof names / sizeof *names)
            names[n++] = lua_tostring(L, -1); /* still referenced by the members table */
    }
    qsort(names, n, sizeof *names, compare_names);
    size_t len = 0;
    for (size_t i = 0; i < n && i < MAX_LISTED; i++) {
        int w = snprintf(out + len, size - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= size - len)
            return;
        len += (size_t)w;
    }
    if (n > MAX_LISTED)
        snprintf(out + len, size - len, ", ...");
}

/* "string", "list of Tag", "map" — how a shape reads in messages. */
static const char *describe(lua_State *L, int shape, char *out, size_t size)
{
    const char *type = fo_field_str(L, shape, "type");
    const char *member = NULL;
    if (type && strcmp(type, "list") == 0) {
        if (lua_getfield(L, shape, "member") == LUA_TTABLE)
            member = fo_field_str(L, -1, "shape");
        snprintf(out, size, "list of %s", member ? member : "?");
        lua_pop(L, 1);
    } else {
        snprintf(out, size, "%s", type ? type : "?");
    }
    return out;
}

/* Length of a UTF-8 string in characters (what AWS's string min/max count). */
static size_t utf8_length(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            chars++;
    return chars;
}

static void check_range(struct check *c, int shape, double value, const char *what)
{
    lua_State *L = c->L;
    if (!(c->what & FO_CHECK_RANGES))
        return;
    double min = fo_field_num(L, shape, "min", NAN), max = fo_field_num(L, shape, "max", NAN);
    if (!isnan(min) && value < min)
        problem(c, "%s %.17g is below the minimum %.17g", what, value, min);
    if (!isnan(max) && value > max)
        problem(c, "%s %.17g is above the maximum %.17g", what, value, max);
}

static void check_enum(struct check *c, int shape, int value)
{
    lua_State *L = c->L;
    if (!(c->what & FO_CHECK_ENUM))
        return;
    if (lua_getfield(L, shape, "enum") != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    int values = lua_gettop(L);
    lua_Integer n = luaL_len(L, values);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, values, i);
        int same = lua_rawequal(L, -1, value);
        lua_pop(L, 1);
        if (same) {
            lua_pop(L, 1);
            return;
        }
    }
    char list[400] = "";
    size_t len = 0;
    for (lua_Integer i = 1; i <= n && i <= MAX_LISTED; i++) {
        lua_rawgeti(L, values, i);
        int w = snprintf(list + len, sizeof list - len, "%s'%s'", i > 1 ? ", " : "",
                         lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        if (w < 0 || (size_t)w >= sizeof list - len)
            break;
        len += (size_t)w;
    }
    problem(c, "'%s' is not one of %s%s", lua_tostring(L, value), list,
            n > MAX_LISTED ? ", ..." : "");
    lua_pop(L, 1);
}

/* A Lua array: keys exactly 1..n. Returns n, or -1 with the offending key pushed. */
static lua_Integer array_length(lua_State *L, int t)
{
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            return -1; /* the key stays pushed */
        }
        n++;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, t, i) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushinteger(L, i);
            return -1;
        }
        lua_pop(L, 1);
    }
    return n;
}

static void check_value(struct check *c, int shape, int value, int depth);

static void check_members(struct check *c, int shape, int value, int depth)
{
    lua_State *L = c->L;
    lua_getfield(L, shape, "members");
    int members = lua_gettop(L);
    int is_union = fo_field_bool(L, shape, "union");
    int set = 0;
    /* Every key must be a member. */
    lua_pushnil(L);
    while (lua_next(L, value)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            const char *kind = lua_kind(L, -1);
            problem(c, "a structure takes member names as keys, got %s key %s", kind,
                    luaL_tolstring(L, -1, NULL));
            lua_pop(L, 1);
            continue;
        }
        set++;
        if (!(c->what & FO_CHECK_UNKNOWN)) {
            /* the caller dropped or allows members the model does not have */
        } else if (!lua_istable(L, members) ||
                   lua_getfield(L, members, lua_tostring(L, -1)) == LUA_TNIL) {
            if (lua_istable(L, members))
                lua_pop(L, 1);
            char names[400];
            member_names(L, members, names, sizeof names);
            size_t old = path_push(c, c->path_len ? ".%s" : "%s", lua_tostring(L, -1), 0);
            problem(c, "unknown member (valid members: %s)", names[0] ? names : "none");
            path_pop(c, old);
        } else {
            lua_pop(L, 1);
        }
    }
    if (is_union && set != 1 && (c->what & FO_CHECK_REQUIRED))
        problem(c, "exactly one member of this union must be set, got %d", set);
    /* Required members present; each present member checked against its shape. */
    if (lua_getfield(L, shape, "required") == LUA_TTABLE && (c->what & FO_CHECK_REQUIRED)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            const char *name = lua_tostring(L, -1);
            if (name && lua_getfield(L, value, name) == LUA_TNIL) {
                size_t old = path_push(c, c->path_len ? ".%s" : "%s", name, 0);
                problem(c, "required member is missing");
                path_pop(c, old);
            }
            if (name)
                lua_pop(L, 1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (lua_istable(L, members)) {
        lua_pushnil(L);
        while (lua_next(L, members)) {
            int ref = lua_gettop(L);
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (name && lua_istable(L, ref)) {
                if (lua_getfield(L, value, name) != LUA_TNIL) {
                    fo_shape_push(L, c->shapes, ref);
                    size_t old = path_push(c, c->path_len ? ".%s" : "%s", name, 0);
                    check_value(c, lua_gettop(L), ref + 1, depth + 1);
                    path_pop(c, old);
                    lua_pop(L, 1);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static void check_list(struct check *c, int shape, int value, int depth)
{
    lua_State *L = c->L;
    lua_Integer n = array_length(L, value);
    if (n < 0) {
        char d[128];
        problem(c, "expected %s (a Lua array), got a table with key %s",
                describe(L, shape, d, sizeof d), luaL_tolstring(L, -1, NULL));
        lua_pop(L, 2);
        return;
    }
    check_range(c, shape, (double)n, "number of elements");
    lua_getfield(L, shape, "member");
    int ref = lua_gettop(L);
    fo_shape_push(L, c->shapes, ref);
    int member = lua_gettop(L);
    for (lua_Integer i = 1; i <= n && c->problems <= MAX_PROBLEMS; i++) {
        lua_rawgeti(L, value, i);
        size_t old = path_push(c, "[%lld]", NULL, (long long)i);
        check_value(c, member, lua_gettop(L), depth + 1);
        path_pop(c, old);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

static void check_map(struct check *c, int shape, int value, int depth)
{
    lua_State *L = c->L;
    lua_getfield(L, shape, "key");
    fo_shape_push(L, c->shapes, lua_gettop(L));
    int key_shape = lua_gettop(L);
    lua_getfield(L, shape, "value");
    fo_shape_push(L, c->shapes, lua_gettop(L));
    int value_shape = lua_gettop(L);
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, value)) {
        n++;
        int k = lua_gettop(L) - 1, v = lua_gettop(L);
        if (lua_type(L, k) != LUA_TSTRING) {
            problem(c, "map keys must be strings, got %s key %s", lua_kind(L, k),
                    luaL_tolstring(L, k, NULL));
            lua_pop(L, 2);
            continue;
        }
        size_t old = path_push(c, "[\"%s\"]", lua_tostring(L, k), 0);
        check_value(c, key_shape, k, depth + 1);
        check_value(c, value_shape, v, depth + 1);
        path_pop(c, old);
        lua_pop(L, 1);
    }
    check_range(c, shape, (double)n, "number of entries");
    lua_pop(L, 4);
}

static void check_value(struct check *c, int shape, int value, int depth)
{
    lua_State *L = c->L;
    if (c->problems > MAX_PROBLEMS)
        return;
    if (depth > MAX_DEPTH) {
        problem(c, "nested more than %d levels deep (a table that contains itself?)", MAX_DEPTH);
        return;
    }
    luaL_checkstack(L, 16, "fo.awsproto: validation nested too deeply");
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "";
    int vt = lua_type(L, value);
    char d[128];
    if (strcmp(type, "structure") == 0) {
        if (fo_field_bool(L, shape, "document"))
            return; /* any JSON-like value */
        if (vt != LUA_TTABLE) {
            problem(c, "expected structure (a table), got %s", lua_kind(L, value));
            return;
        }
        check_members(c, shape, value, depth);
    } else if (strcmp(type, "list") == 0) {
        if (vt != LUA_TTABLE) {
            problem(c, "expected %s (a Lua array), got %s", describe(L, shape, d, sizeof d),
                    lua_kind(L, value));
            return;
        }
        check_list(c, shape, value, depth);
    } else if (strcmp(type, "map") == 0) {
        if (vt != LUA_TTABLE) {
            problem(c, "expected map (a table), got %s", lua_kind(L, value));
            return;
        }
        check_map(c, shape, value, depth);
    } else if (strcmp(type, "string") == 0) {
        if (vt != LUA_TSTRING) {
            problem(c, "expected string, got %s", lua_kind(L, value));
            return;
        }
        size_t n;
        const char *s = lua_tolstring(L, value, &n);
        check_range(c, shape, (double)utf8_length(s, n), "length");
        check_enum(c, shape, value);
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "long") == 0) {
        lua_Integer i;
        if (vt != LUA_TNUMBER || !lua_isinteger(L, value)) {
            /* 3.0 is an integer for every purpose of the wire */
            double f = lua_tonumber(L, value);
            if (vt != LUA_TNUMBER || f != floor(f) || !(fabs(f) < 9.2e18)) {
                problem(c, "expected %s, got %s", type,
                        vt == LUA_TNUMBER ? luaL_tolstring(L, value, NULL) : lua_kind(L, value));
                if (vt == LUA_TNUMBER)
                    lua_pop(L, 1);
                return;
            }
            i = (lua_Integer)f;
        } else {
            i = lua_tointeger(L, value);
        }
        if (strcmp(type, "integer") == 0 && (i < -2147483648LL || i > 2147483647LL))
            problem(c, "%lld does not fit a 32-bit integer", (long long)i);
        check_range(c, shape, (double)i, "value");
    } else if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        if (vt != LUA_TNUMBER) {
            problem(c, "expected %s (a number), got %s", type, lua_kind(L, value));
            return;
        }
        check_range(c, shape, lua_tonumber(L, value), "value");
    } else if (strcmp(type, "boolean") == 0) {
        if (vt != LUA_TBOOLEAN)
            problem(c, "expected boolean, got %s", lua_kind(L, value));
    } else if (strcmp(type, "timestamp") == 0) {
        double t;
        if (fo_ts_from_lua(L, value, &t) != 0)
            problem(c,
                    "expected timestamp (seconds since the epoch, or an ISO 8601 string), "
                    "got %s",
                    vt == LUA_TSTRING ? lua_tostring(L, value) : lua_kind(L, value));
    } else if (strcmp(type, "blob") == 0) {
        if (vt != LUA_TSTRING) {
            problem(c, "expected blob (a string of bytes), got %s", lua_kind(L, value));
            return;
        }
        check_range(c, shape, (double)lua_rawlen(L, value), "size");
    }
}

int fo_check_value(lua_State *L, const fo_op *op, int ref, int value, unsigned what)
{
    value = lua_absindex(L, value);
    int top = lua_gettop(L);
    struct check c = {.L = L, .shapes = op->shapes, .what = what};
    c.out = fo_buf_new(L);
    if (!ref) {
        if (lua_type(L, value) == LUA_TTABLE) {
            lua_pushnil(L);
            if (lua_next(L, value)) {
                lua_pop(L, 2);
                problem(&c, "this operation takes no parameters");
            }
        }
    } else {
        fo_shape_push(L, op->shapes, ref);
        check_value(&c, lua_gettop(L), value, 0);
    }
    if (c.problems == 0) {
        lua_settop(L, top);
        return 0;
    }
    fo_buf_push(L, c.out);
    if (c.problems > MAX_PROBLEMS)
        lua_pushfstring(L, "; and %d more problems", c.problems - MAX_PROBLEMS);
    else
        lua_pushliteral(L, "");
    lua_concat(L, 2);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return c.problems;
}

void fo_validate(lua_State *L, const fo_op *op, int params)
{
    if (fo_check_value(L, op, op->input, params, FO_CHECK_ALL) == 0)
        return;
    lua_pushfstring(L, "%s.%s: %s", op->service, op->name, lua_tostring(L, -1));
    lua_error(L);
}
