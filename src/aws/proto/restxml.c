/* Protocol rest-xml, the request side (Route 53): the method and URI template of the
 * operation with its labels filled in, querystring and header members, and a body that is
 * either the raw payload member or an XML document, as botocore's RestXMLSerializer makes
 * them. (The response side is restxml_parse.c.)
 *
 * Structure members are written in the model's order (memberOrder; Route 53 checks element
 * order against its XML schema), map keys and other unordered sets in name order. Like
 * botocore, no Content-Type is set (not even for XML bodies) and Content-Length is the
 * transport's business. Route 53's id customization is applied before this runs
 * (customize.c). */
#include "fo/xml.h"
#include "proto.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64 /* nesting of the params (recursive shapes) */

enum where { IN_BODY, IN_QUERY, IN_HEADER, IN_URI };

/* A serialization in progress: the operation and the member path for error messages. */
typedef struct ser {
    lua_State *L;
    const fo_op *op;
    fo_buf *path; /* "ChangeBatch.Changes[1].Action" */
    int depth;
} ser;

static int fail(ser *s, const char *fmt, ...)
{
    lua_State *L = s->L;
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    if (s->path->len == 0)
        return luaL_error(L, "%s.%s: %s", s->op->service, s->op->name, lua_tostring(L, -1));
    fo_buf_push(L, s->path);
    return luaL_error(L, "%s.%s: %s: %s", s->op->service, s->op->name, lua_tostring(L, -1),
                      lua_tostring(L, -2));
}

/* Raises unless the value at v is a table; `what` names the shape ("list", "map", ...). */
static void need_table(ser *s, int v, const char *what)
{
    if (lua_type(s->L, v) != LUA_TTABLE)
        fail(s, "expected a table (%s), got %s", what, luaL_typename(s->L, v));
}

/* ---- member paths */

static size_t path_member(ser *s, const char *name)
{
    size_t mark = s->path->len;
    if (mark > 0)
        fo_buf_addc(s->L, s->path, '.');
    fo_buf_adds(s->L, s->path, name);
    return mark;
}

static size_t path_index(ser *s, lua_Integer i)
{
    size_t mark = s->path->len;
    char n[32];
    snprintf(n, sizeof n, "[%lld]", (long long)i);
    fo_buf_adds(s->L, s->path, n);
    return mark;
}

static size_t path_key(ser *s, const char *key)
{
    size_t mark = s->path->len;
    fo_buf_addc(s->L, s->path, '[');
    fo_buf_adds(s->L, s->path, key);
    fo_buf_addc(s->L, s->path, ']');
    return mark;
}

/* ---- model lookups */

/* A serialization trait: the member reference's, else the target shape's (botocore merges
 * the two the same way). The string stays valid while ref and shape are alive. */
static const char *trait(lua_State *L, int ref, int shape, const char *key)
{
    const char *v = ref ? fo_field_str(L, ref, key) : NULL;
    return v ? v : fo_field_str(L, shape, key);
}

static int trait_bool(lua_State *L, int ref, int shape, const char *key)
{
    return (ref && fo_field_bool(L, ref, key)) || fo_field_bool(L, shape, key);
}

static const char *shape_type(ser *s, int shape)
{
    const char *t = fo_field_str(s->L, shape, "type");
    if (!t)
        fail(s, "the model's shape has no type");
    return t;
}

/* Pushes the shape reference t[key] (a table) and its shape; raises if either is missing. */
static void push_ref(ser *s, int t, const char *key)
{
    if (lua_getfield(s->L, t, key) != LUA_TTABLE)
        fail(s, "the model's %s has no '%s' reference", fo_field_str(s->L, t, "type"), key);
    fo_shape_push(s->L, s->op->shapes, lua_gettop(s->L));
}

/* ---- keys: a GC-owned array of the string keys of the table at t (pushed) */

/* Pushes the table's string keys in name order (valid while the table is alive); raises
 * for a key that is not a string. Returns the count. */
static size_t sorted_keys(ser *s, int t)
{
    const char **keys;
    size_t n = fo_keys(s->L, t, 0, &keys);
    if (n == (size_t)-1)
        fail(s, "expected a table with string keys, got a key that is not a string");
    return n;
}

/* For a map bound to the query string or to headers (its entries become parameters or
 * headers): checks that v is a table, pushes the value reference and shape (top + 1, top + 2)
 * and the array of v's keys in name order, which it returns, with their count in *n. */
static fo_buf *map_values(ser *s, int shape, int v, size_t *n)
{
    need_table(s, v, "map");
    push_ref(s, shape, "value");
    *n = sorted_keys(s, v);
    return lua_touserdata(s->L, -1);
}

/* A structure's member names in the model's order (memberOrder): Route 53 checks its
 * XML against a schema of sequences, so elements must come in that order. Pushes the
 * order table and the key array. */
static size_t member_keys(ser *s, int shape, int members)
{
    lua_getfield(s->L, shape, "memberOrder");
    const char **keys;
    return fo_keys(s->L, members, lua_gettop(s->L), &keys);
}

static const char *key_at(const fo_buf *keys, size_t i)
{
    const char *k;
    memcpy(&k, keys->data + i * sizeof k, sizeof k);
    return k;
}

/* ---- scalars as text */

static void add_number(ser *s, fo_buf *b, int v, const char *type)
{
    lua_State *L = s->L;
    char text[64];
    int is_int = strcmp(type, "integer") == 0 || strcmp(type, "long") == 0 ||
                 strcmp(type, "short") == 0 || strcmp(type, "byte") == 0;
    if (lua_type(L, v) != LUA_TNUMBER)
        fail(s, "expected a number, got %s", luaL_typename(L, v));
    if (lua_isinteger(L, v)) {
        snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, v));
    } else if (is_int) {
        lua_Integer i = 0;
        double d = lua_tonumber(L, v);
        if (floor(d) != d || !lua_numbertointeger(d, &i))
            fail(s, "expected an integer, got %s", lua_tostring(L, v));
        snprintf(text, sizeof text, "%lld", (long long)i);
    } else {
        fo_format_double(lua_tonumber(L, v), text, sizeof text);
    }
    fo_buf_adds(L, b, text);
}

static void add_timestamp(ser *s, fo_buf *b, int ref, int shape, int v, enum fo_ts_format dflt)
{
    double t;
    if (fo_ts_from_lua(s->L, v, &t) != 0)
        fail(s, "expected a timestamp (seconds since the epoch or an ISO 8601 string), got %s",
             lua_type(s->L, v) == LUA_TSTRING ? lua_tostring(s->L, v) : luaL_typename(s->L, v));
    char text[64];
    fo_ts_format(t, fo_ts_format_named(trait(s->L, ref, shape, "timestampFormat"), dflt), text,
                 sizeof text);
    fo_buf_adds(s->L, b, text);
}

/* ---- JSON for jsonvalue headers (compact, like json.dumps(separators=(',', ':'))) */

static void json_value(ser *s, fo_buf *b, int v, int depth);

static void json_string(lua_State *L, fo_buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    fo_buf_addc(L, b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        switch (c) {
        case '"':
            fo_buf_adds(L, b, "\\\"");
            break;
        case '\\':
            fo_buf_adds(L, b, "\\\\");
            break;
        case '\n':
            fo_buf_adds(L, b, "\\n");
            break;
        case '\r':
            fo_buf_adds(L, b, "\\r");
            break;
        case '\t':
            fo_buf_adds(L, b, "\\t");
            break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                fo_buf_add(L, b, esc, 6);
            } else {
                fo_buf_addc(L, b, (char)c);
            }
        }
    }
    fo_buf_addc(L, b, '"');
}

/* Tables: a non-empty sequence is an array, anything else an object with sorted keys. */
static void json_table(ser *s, fo_buf *b, int v, int depth)
{
    lua_State *L = s->L;
    size_t n = lua_rawlen(L, v), count = 0;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        lua_pop(L, 1);
        count++;
    }
    if (n > 0 && count == n) {
        fo_buf_addc(L, b, '[');
        for (size_t i = 1; i <= n; i++) {
            if (i > 1)
                fo_buf_addc(L, b, ',');
            lua_rawgeti(L, v, (lua_Integer)i);
            json_value(s, b, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        fo_buf_addc(L, b, ']');
        return;
    }
    size_t nkeys = sorted_keys(s, v);
    fo_buf *keys = lua_touserdata(L, -1);
    fo_buf_addc(L, b, '{');
    for (size_t i = 0; i < nkeys; i++) {
        const char *k = key_at(keys, i);
        if (i > 0)
            fo_buf_addc(L, b, ',');
        json_string(L, b, k, strlen(k));
        fo_buf_addc(L, b, ':');
        lua_getfield(L, v, k);
        json_value(s, b, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
    }
    fo_buf_addc(L, b, '}');
    lua_pop(L, 1);
}

static void json_value(ser *s, fo_buf *b, int v, int depth)
{
    lua_State *L = s->L;
    if (depth > MAX_DEPTH)
        fail(s, "value nested too deeply");
    luaL_checkstack(L, 8, "fo.awsproto: value nested too deeply");
    switch (lua_type(L, v)) {
    case LUA_TNIL:
        fo_buf_adds(L, b, "null");
        break;
    case LUA_TBOOLEAN:
        fo_buf_adds(L, b, lua_toboolean(L, v) ? "true" : "false");
        break;
    case LUA_TNUMBER:
        add_number(s, b, v, "double");
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *p = lua_tolstring(L, v, &n);
        json_string(L, b, p, n);
        break;
    }
    case LUA_TTABLE:
        json_table(s, b, v, depth);
        break;
    default:
        fail(s, "cannot write a %s as JSON", luaL_typename(L, v));
    }
}

/* The text of a scalar value `v` outside the body (URI label, query, header): booleans
 * true/false, numbers (NaN and infinities by name), timestamps in `ts` unless the member
 * says otherwise, blobs in base64. */
static void add_text(ser *s, fo_buf *b, int ref, int shape, int v, enum fo_ts_format ts)
{
    lua_State *L = s->L;
    const char *type = shape_type(s, shape);
    if (strcmp(type, "string") == 0) {
        if (lua_type(L, v) != LUA_TSTRING)
            fail(s, "expected a string, got %s", luaL_typename(L, v));
        size_t n;
        const char *p = lua_tolstring(L, v, &n);
        fo_buf_add(L, b, p, n);
    } else if (strcmp(type, "boolean") == 0) {
        if (lua_type(L, v) != LUA_TBOOLEAN)
            fail(s, "expected a boolean, got %s", luaL_typename(L, v));
        fo_buf_adds(L, b, lua_toboolean(L, v) ? "true" : "false");
    } else if (strcmp(type, "timestamp") == 0) {
        add_timestamp(s, b, ref, shape, v, ts);
    } else if (strcmp(type, "blob") == 0) {
        if (lua_type(L, v) != LUA_TSTRING)
            fail(s, "expected a string (blob), got %s", luaL_typename(L, v));
        size_t n;
        const char *p = lua_tolstring(L, v, &n);
        fo_b64_encode(L, b, (const unsigned char *)p, n);
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "long") == 0 ||
               strcmp(type, "short") == 0 || strcmp(type, "byte") == 0 ||
               strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        add_number(s, b, v, type);
    } else {
        fail(s, "a %s cannot be written here", type);
    }
}

/* ---- XML body */

/* ` xmlns="uri"` or ` xmlns:prefix="uri"` from the xmlNamespace trait (a table {uri=,
 * prefix=} or, in some models, the uri alone). */
static void xml_namespace(ser *s, fo_buf *b, int ref, int shape)
{
    lua_State *L = s->L;
    int found = 0;
    if (ref)
        found = lua_getfield(L, ref, "xmlNamespace") != LUA_TNIL;
    if (!found) {
        if (ref)
            lua_pop(L, 1);
        found = lua_getfield(L, shape, "xmlNamespace") != LUA_TNIL;
    }
    const char *uri = NULL, *prefix = NULL;
    if (lua_type(L, -1) == LUA_TSTRING) {
        uri = lua_tostring(L, -1);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        uri = fo_field_str(L, lua_gettop(L), "uri");
        prefix = fo_field_str(L, lua_gettop(L), "prefix");
    }
    if (found && uri) {
        fo_buf_adds(L, b, " xmlns");
        if (prefix && *prefix) {
            fo_buf_addc(L, b, ':');
            fo_buf_adds(L, b, prefix);
        }
        fo_buf_adds(L, b, "=\"");
        fo_xml_escape(L, b, uri, strlen(uri));
        fo_buf_addc(L, b, '"');
    }
    lua_pop(L, 1);
}

static void xml_open(ser *s, fo_buf *b, const char *name, int ref, int shape)
{
    fo_buf_addc(s->L, b, '<');
    fo_buf_adds(s->L, b, name);
    xml_namespace(s, b, ref, shape);
}

/* The start tag of `name`, closed: the element has no attributes. */
static void xml_start(ser *s, fo_buf *b, const char *name, int ref, int shape)
{
    xml_open(s, b, name, ref, shape);
    fo_buf_addc(s->L, b, '>');
}

static void xml_close(lua_State *L, fo_buf *b, const char *name)
{
    fo_buf_adds(L, b, "</");
    fo_buf_adds(L, b, name);
    fo_buf_addc(L, b, '>');
}

static void xml_value(ser *s, fo_buf *b, int ref, int shape, int v, const char *name);

/* Raises for a key of params (the table at v) that is not a member of the structure. */
static void check_members(ser *s, int members, int v)
{
    lua_State *L = s->L;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            fail(s, "unknown member (a %s key)", luaL_typename(L, -1));
        if (lua_getfield(L, members, lua_tostring(L, -1)) == LUA_TNIL)
            fail(s, "unknown member '%s'", lua_tostring(L, -2));
        lua_pop(L, 1);
    }
}

/* Pushes member m's reference, its shape and its value in the params table at v, and tells
 * whether it is written in this pass of xml_structure: present, an xmlAttribute exactly when
 * `attributes` (the start tag's pass) or not (the content's pass), and with body_only not
 * bound to an HTTP location. */
static int push_member(ser *s, int members, int v, const char *m, int attributes, int body_only)
{
    lua_State *L = s->L;
    lua_getfield(L, members, m);
    int mref = lua_gettop(L);
    fo_shape_push(L, s->op->shapes, mref);
    int mshape = lua_gettop(L);
    return lua_getfield(L, v, m) != LUA_TNIL &&
           !trait_bool(L, mref, mshape, "xmlAttribute") == !attributes &&
           !(body_only && trait(L, mref, mshape, "location"));
}

/* Writes the element `name` for the structure (the params table at v): every member, or
 * with body_only only those without an HTTP location (the input shape's body members). */
static void xml_structure(ser *s, fo_buf *b, int ref, int shape, int v, const char *name,
                          int body_only)
{
    lua_State *L = s->L;
    need_table(s, v, "structure");
    int top = lua_gettop(L);
    if (lua_getfield(L, shape, "members") != LUA_TTABLE)
        fail(s, "the model's structure has no members");
    int members = lua_gettop(L);
    if (!body_only)
        check_members(s, members, v);
    size_t n = member_keys(s, shape, members);
    fo_buf *keys = lua_touserdata(L, -1);
    xml_open(s, b, name, ref, shape);
    /* xmlAttribute members go into the start tag */
    for (size_t i = 0; i < n; i++) {
        const char *m = key_at(keys, i);
        int mref = lua_gettop(L) + 1, mshape = mref + 1;
        if (push_member(s, members, v, m, 1, body_only)) {
            size_t mark = path_member(s, m);
            const char *attr = trait(L, mref, mshape, "locationName");
            fo_buf *text = fo_buf_new(L);
            add_text(s, text, mref, mshape, lua_gettop(L) - 1, FO_TS_ISO8601);
            fo_buf_addc(L, b, ' ');
            fo_buf_adds(L, b, attr ? attr : m);
            fo_buf_adds(L, b, "=\"");
            fo_xml_escape(L, b, text->data ? text->data : "", text->len);
            fo_buf_addc(L, b, '"');
            lua_pop(L, 1);
            s->path->len = mark;
        }
        lua_settop(L, mref - 1);
    }
    fo_buf_addc(L, b, '>');
    for (size_t i = 0; i < n; i++) {
        const char *m = key_at(keys, i);
        int mref = lua_gettop(L) + 1, mshape = mref + 1;
        if (push_member(s, members, v, m, 0, body_only)) {
            size_t mark = path_member(s, m);
            const char *el = trait(L, mref, mshape, "locationName");
            xml_value(s, b, mref, mshape, lua_gettop(L), el ? el : m);
            s->path->len = mark;
        }
        lua_settop(L, mref - 1);
    }
    xml_close(L, b, name);
    lua_settop(L, top);
}

static void xml_list(ser *s, fo_buf *b, int ref, int shape, int v, const char *name)
{
    lua_State *L = s->L;
    need_table(s, v, "list");
    int top = lua_gettop(L);
    push_ref(s, shape, "member");
    int iref = top + 1, ishape = top + 2;
    int flat = trait_bool(L, ref, shape, "flattened");
    const char *item = name;
    if (!flat) {
        item = trait(L, iref, ishape, "locationName");
        if (!item)
            item = "member";
        xml_start(s, b, name, ref, shape);
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, v);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t mark = path_index(s, i);
        lua_rawgeti(L, v, i);
        xml_value(s, b, iref, ishape, lua_gettop(L), item);
        lua_pop(L, 1);
        s->path->len = mark;
    }
    if (!flat)
        xml_close(L, b, name);
    lua_settop(L, top);
}

static void xml_map(ser *s, fo_buf *b, int ref, int shape, int v, const char *name)
{
    lua_State *L = s->L;
    need_table(s, v, "map");
    int top = lua_gettop(L);
    push_ref(s, shape, "key");
    int kref = top + 1, kshape = top + 2;
    push_ref(s, shape, "value");
    int vref = top + 3, vshape = top + 4;
    const char *kname = trait(L, kref, kshape, "locationName");
    const char *vname = trait(L, vref, vshape, "locationName");
    int flat = trait_bool(L, ref, shape, "flattened");
    size_t n = sorted_keys(s, v);
    fo_buf *keys = lua_touserdata(L, -1);
    if (!flat) {
        xml_start(s, b, name, ref, shape);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = key_at(keys, i);
        size_t mark = path_key(s, k);
        fo_buf_addc(L, b, '<');
        fo_buf_adds(L, b, flat ? name : "entry");
        fo_buf_addc(L, b, '>');
        lua_pushstring(L, k);
        xml_value(s, b, kref, kshape, lua_gettop(L), kname ? kname : "key");
        lua_getfield(L, v, k);
        xml_value(s, b, vref, vshape, lua_gettop(L), vname ? vname : "value");
        lua_pop(L, 2);
        xml_close(L, b, flat ? name : "entry");
        s->path->len = mark;
    }
    if (!flat)
        xml_close(L, b, name);
    lua_settop(L, top);
}

/* Writes the element `name` for the value at v of the shape at `shape` (reference `ref`). */
static void xml_value(ser *s, fo_buf *b, int ref, int shape, int v, const char *name)
{
    lua_State *L = s->L;
    if (++s->depth > MAX_DEPTH)
        fail(s, "value nested too deeply");
    luaL_checkstack(L, 16, "fo.awsproto: value nested too deeply");
    const char *type = shape_type(s, shape);
    if (strcmp(type, "structure") == 0 || strcmp(type, "union") == 0) {
        xml_structure(s, b, ref, shape, v, name, 0);
    } else if (strcmp(type, "list") == 0) {
        xml_list(s, b, ref, shape, v, name);
    } else if (strcmp(type, "map") == 0) {
        xml_map(s, b, ref, shape, v, name);
    } else {
        fo_buf *text = fo_buf_new(L);
        add_text(s, text, ref, shape, v, FO_TS_ISO8601);
        xml_start(s, b, name, ref, shape);
        fo_xml_escape(L, b, text->data ? text->data : "", text->len);
        xml_close(L, b, name);
        lua_pop(L, 1);
    }
    s->depth--;
}

/* ---- the request */

/* A query parameter: key=value, both percent-encoded. */
static void query_add(lua_State *L, fo_buf *q, const char *key, const char *value, size_t n)
{
    if (q->len > 0)
        fo_buf_addc(L, q, '&');
    fo_uri_encode(L, q, key, strlen(key), 0);
    fo_buf_addc(L, q, '=');
    fo_uri_encode(L, q, value, n, 0);
}

/* A scalar or list querystring value under `key`. */
static void query_value(ser *s, fo_buf *q, const char *key, int ref, int shape, int v)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    if (strcmp(shape_type(s, shape), "list") == 0) {
        need_table(s, v, "list");
        push_ref(s, shape, "member");
        lua_Integer n = (lua_Integer)lua_rawlen(L, v);
        for (lua_Integer i = 1; i <= n; i++) {
            size_t mark = path_index(s, i);
            lua_rawgeti(L, v, i);
            query_value(s, q, key, top + 1, top + 2, lua_gettop(L));
            lua_pop(L, 1);
            s->path->len = mark;
        }
    } else {
        fo_buf *text = fo_buf_new(L);
        add_text(s, text, ref, shape, v, FO_TS_ISO8601);
        query_add(L, q, key, text->data ? text->data : "", text->len);
    }
    lua_settop(L, top);
}

/* A querystring map: each key is a parameter, unless a named member already set it. */
static void query_map(ser *s, fo_buf *q, int shape, int v, int named)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    size_t n;
    fo_buf *keys = map_values(s, shape, v, &n);
    for (size_t i = 0; i < n; i++) {
        const char *k = key_at(keys, i);
        if (lua_getfield(L, named, k) != LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_pop(L, 1);
        size_t mark = path_key(s, k);
        lua_getfield(L, v, k);
        query_value(s, q, k, top + 1, top + 2, lua_gettop(L));
        lua_pop(L, 1);
        s->path->len = mark;
    }
    lua_settop(L, top);
}

/* A header value: lists comma-joined (strings quoted when they hold ',' or '"'),
 * timestamps in RFC 822 unless the member says otherwise, jsonvalue strings as base64 JSON. */
static void header_value(ser *s, fo_buf *h, int ref, int shape, int v)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    const char *type = shape_type(s, shape);
    if (strcmp(type, "list") == 0) {
        need_table(s, v, "list");
        push_ref(s, shape, "member");
        int iref = top + 1, ishape = top + 2;
        int quote = strcmp(shape_type(s, ishape), "string") == 0;
        lua_Integer n = (lua_Integer)lua_rawlen(L, v);
        for (lua_Integer i = 1; i <= n; i++) {
            size_t mark = path_index(s, i);
            lua_rawgeti(L, v, i);
            fo_buf *item = fo_buf_new(L);
            header_value(s, item, iref, ishape, lua_gettop(L) - 1);
            if (i > 1)
                fo_buf_addc(L, h, ',');
            if (quote && item->len > 0 &&
                (memchr(item->data, ',', item->len) || memchr(item->data, '"', item->len))) {
                fo_buf_addc(L, h, '"');
                for (size_t k = 0; k < item->len; k++) {
                    if (item->data[k] == '"')
                        fo_buf_addc(L, h, '\\');
                    fo_buf_addc(L, h, item->data[k]);
                }
                fo_buf_addc(L, h, '"');
            } else {
                fo_buf_add(L, h, item->data ? item->data : "", item->len);
            }
            lua_pop(L, 2);
            s->path->len = mark;
        }
    } else if (strcmp(type, "string") == 0 && trait_bool(L, ref, shape, "jsonvalue")) {
        fo_buf *json = fo_buf_new(L);
        json_value(s, json, v, 0);
        fo_b64_encode(L, h, (const unsigned char *)(json->data ? json->data : ""), json->len);
    } else {
        add_text(s, h, ref, shape, v, FO_TS_RFC822);
    }
    lua_settop(L, top);
}

/* Sets headers[prefix .. key] for each entry of a "headers" map member. */
static void header_map(ser *s, int headers, const char *prefix, int shape, int v)
{
    lua_State *L = s->L;
    int top = lua_gettop(L);
    size_t n;
    fo_buf *keys = map_values(s, shape, v, &n);
    for (size_t i = 0; i < n; i++) {
        const char *k = key_at(keys, i);
        size_t mark = path_key(s, k);
        lua_getfield(L, v, k);
        fo_buf *h = fo_buf_new(L);
        header_value(s, h, top + 1, top + 2, lua_gettop(L) - 1);
        lua_pushfstring(L, "%s%s", prefix, k);
        fo_buf_push(L, h);
        lua_settable(L, headers);
        lua_pop(L, 2);
        s->path->len = mark;
    }
    lua_settop(L, top);
}

/* Fills the path template (`tpl`, n bytes, without the query part) from the uri members
 * (`keys`: the sorted member names). */
static void render_path(ser *s, fo_buf *path, const char *tpl, size_t n, int members,
                        const fo_buf *keys, size_t nkeys, int params)
{
    lua_State *L = s->L;
    size_t i = 0;
    while (i < n) {
        const char *open = memchr(tpl + i, '{', n - i);
        if (!open) {
            fo_buf_add(L, path, tpl + i, n - i);
            break;
        }
        fo_buf_add(L, path, tpl + i, (size_t)(open - (tpl + i)));
        const char *close = memchr(open, '}', n - (size_t)(open - tpl));
        if (!close)
            fail(s, "the model's requestUri has an unclosed '{'");
        size_t len = (size_t)(close - open - 1);
        int greedy = len > 0 && open[len] == '+';
        int top = lua_gettop(L);
        lua_pushlstring(L, open + 1, greedy ? len - 1 : len);
        const char *label = lua_tostring(L, -1);
        size_t k = 0;
        for (; k < nkeys; k++) { /* the member bound to this label */
            const char *m = key_at(keys, k);
            lua_getfield(L, members, m);
            int mref = top + 2;
            fo_shape_push(L, s->op->shapes, mref);
            const char *loc = trait(L, mref, mref + 1, "location");
            const char *lname = trait(L, mref, mref + 1, "locationName");
            if (loc && strcmp(loc, "uri") == 0 && strcmp(lname ? lname : m, label) == 0) {
                size_t mark = path_member(s, m);
                if (lua_getfield(L, params, m) == LUA_TNIL)
                    fail(s, "missing: it fills the {%s} of the URI", label);
                fo_buf *text = fo_buf_new(L);
                add_text(s, text, mref, mref + 1, lua_gettop(L) - 1, FO_TS_ISO8601);
                if (text->len == 0)
                    fail(s, "empty: it fills the {%s} of the URI", label);
                fo_uri_encode(L, path, text->data, text->len, greedy);
                s->path->len = mark;
                break;
            }
            lua_settop(L, top + 1);
        }
        if (k == nkeys)
            fail(s, "the model's requestUri has a label {%s} that no member fills", label);
        lua_settop(L, top);
        i = (size_t)(close - tpl) + 1;
    }
}

void fo_restxml_serialize(lua_State *L, const fo_op *op, int params)
{
    luaL_checkstack(L, 32, "fo.awsproto: out of stack");
    ser s = {.L = L, .op = op};
    s.path = fo_buf_new(L);
    int base = lua_gettop(L);

    lua_createtable(L, 0, 5); /* the request */
    int req = lua_gettop(L);
    lua_newtable(L);
    int headers = lua_gettop(L);
    fo_buf *path = fo_buf_new(L);
    fo_buf *query = fo_buf_new(L);
    fo_buf *body = fo_buf_new(L);
    lua_newtable(L); /* query keys set by named members (they win over map entries) */
    int named = lua_gettop(L);

    const char *method = "POST", *uri = "/";
    if (lua_getfield(L, op->op, "http") == LUA_TTABLE) {
        const char *m = fo_field_str(L, -1, "method");
        const char *u = fo_field_str(L, -1, "requestUri");
        method = m ? m : method;
        uri = u ? u : uri;
    }
    lua_pop(L, 1); /* the strings stay referenced by op */
    const char *qmark = strchr(uri, '?');
    size_t tpl_len = qmark ? (size_t)(qmark - uri) : strlen(uri);
    if (qmark && qmark[1])
        fo_buf_adds(L, query, qmark + 1); /* a literal query part, kept as the model has it */

    if (!op->input) {
        fo_buf_add(L, path, uri, tpl_len);
    } else {
        fo_shape_push(L, op->shapes, op->input);
        int shape = lua_gettop(L);
        if (lua_getfield(L, shape, "members") != LUA_TTABLE)
            fail(&s, "the model's input shape has no members");
        int members = lua_gettop(L);
        check_members(&s, members, params);
        lua_pushvalue(L, params); /* params as sent (a copy when ids are fixed) */
        params = lua_gettop(L);
        size_t n = member_keys(&s, shape, members);
        fo_buf *keys = lua_touserdata(L, -1);
        render_path(&s, path, uri, tpl_len, members, keys, n, params);
        int has_body = 0;
        /* named querystring members and headers first, then querystring maps */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < n; i++) {
                const char *m = key_at(keys, i);
                int top = lua_gettop(L);
                lua_getfield(L, members, m);
                int mref = top + 1;
                fo_shape_push(L, op->shapes, mref);
                int mshape = top + 2;
                lua_getfield(L, params, m);
                int v = top + 3;
                const char *loc = trait(L, mref, mshape, "location");
                const char *lname = trait(L, mref, mshape, "locationName");
                const char *key = lname ? lname : m;
                size_t mark = path_member(&s, m);
                if (lua_isnil(L, v)) {
                    /* absent */
                } else if (!loc) {
                    has_body = 1;
                } else if (strcmp(loc, "querystring") == 0) {
                    int is_map = strcmp(shape_type(&s, mshape), "map") == 0;
                    if (pass == 1 && is_map) {
                        query_map(&s, query, mshape, v, named);
                    } else if (pass == 0 && !is_map) {
                        query_value(&s, query, key, mref, mshape, v);
                        lua_pushboolean(L, 1);
                        lua_setfield(L, named, key);
                    }
                } else if (pass == 1) {
                    /* uri members are in the path already */
                } else if (strcmp(loc, "header") == 0) {
                    int is_list = strcmp(shape_type(&s, mshape), "list") == 0;
                    if (!(is_list && lua_type(L, v) == LUA_TTABLE && lua_rawlen(L, v) == 0)) {
                        fo_buf *h = fo_buf_new(L);
                        header_value(&s, h, mref, mshape, v);
                        fo_buf_push(L, h);
                        lua_setfield(L, headers, key);
                    }
                } else if (strcmp(loc, "headers") == 0) {
                    header_map(&s, headers, key, mshape, v);
                }
                s.path->len = mark;
                lua_settop(L, top);
            }
        }

        const char *payload = fo_field_str(L, shape, "payload");
        if (payload) {
            if (lua_getfield(L, members, payload) != LUA_TTABLE)
                fail(&s, "the model's payload member '%s' does not exist", payload);
            int pref = lua_gettop(L);
            fo_shape_push(L, op->shapes, pref);
            int pshape = pref + 1;
            lua_getfield(L, params, payload);
            int v = pref + 2;
            const char *type = shape_type(&s, pshape);
            path_member(&s, payload);
            if (strcmp(type, "blob") == 0 || strcmp(type, "string") == 0) {
                if (!lua_isnil(L, v)) {
                    if (lua_type(L, v) != LUA_TSTRING)
                        fail(&s, "expected a string, got %s", luaL_typename(L, v));
                    size_t len;
                    const char *p = lua_tolstring(L, v, &len);
                    fo_buf_add(L, body, p, len);
                }
            } else if (!lua_isnil(L, v)) {
                const char *root = trait(L, pref, pshape, "locationName");
                xml_value(&s, body, pref, pshape, v, root ? root : fo_field_str(L, pref, "shape"));
            }
            s.path->len = 0;
        } else if (has_body) {
            const char *root = trait(L, op->input, shape, "locationName");
            xml_structure(&s, body, op->input, shape, params,
                          root ? root : fo_field_str(L, op->input, "shape"), 1);
        }
    }

    lua_pushstring(L, method);
    lua_setfield(L, req, "method");
    fo_buf_push(L, path);
    lua_setfield(L, req, "path");
    fo_buf_push(L, query);
    lua_setfield(L, req, "query");
    lua_pushvalue(L, headers);
    lua_setfield(L, req, "headers");
    fo_buf_push(L, body);
    lua_setfield(L, req, "body");
    lua_settop(L, req);
    lua_remove(L, base); /* the path buffer; the request is left on top */
}
