/* The XML of responses, written along the output shapes: the inverse of xml_shape.c's
 * reader (botocore's BaseXMLResponseParser), shared by ec2, query and rest-xml.
 *   structure  <Name attrs>members in the model's order (memberOrder)</Name>; members named
 *              by locationName or their name; xmlAttribute members in the start tag
 *   list       <Name><item/>...</Name>, items named by the list member's locationName, else
 *              "member" (query, rest-xml) or "item" (ec2); flattened: the items repeat as
 *              <Name> (the list member's locationName when it has one)
 *   map        <Name><entry><key/><value/></entry>...</Name> (key/value names from the
 *              model), entries in key order; flattened: <Name><key/><value/></Name> repeated
 *   scalars    booleans true/false, floats as Python's repr (botocore's str), timestamps in
 *              ISO 8601 (or the member's timestampFormat), blobs in base64 */
#include "fo/xml.h"
#include "server.h"
#include "xmlshape.h"

#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 64

void fo_xw_init(fo_xw *w, lua_State *L, const fo_op *op, int ec2)
{
    memset(w, 0, sizeof *w);
    w->L = L;
    w->op = op;
    w->ec2 = ec2;
    w->b = fo_buf_new(L);
    w->path = fo_buf_new(L);
}

int fo_xw_fail(fo_xw *w, const char *fmt, ...)
{
    lua_State *L = w->L;
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    fo_buf_push(L, w->path);
    return luaL_error(L, "%s.%s (output): %s: %s", w->op->service, w->op->name,
                      w->path->len ? lua_tostring(L, -1) : "(output)", lua_tostring(L, -2));
}

const char *fo_xml_namespace(lua_State *L, int ref, int shape, const char **prefix)
{
    *prefix = NULL;
    for (int i = 0; i < 2; i++) {
        int t = i == 0 ? ref : shape;
        if (!t)
            continue;
        int type = lua_getfield(L, t, "xmlNamespace");
        const char *uri = NULL;
        if (type == LUA_TSTRING) {
            uri = lua_tostring(L, -1);
        } else if (type == LUA_TTABLE) {
            uri = fo_field_str(L, -1, "uri");
            *prefix = fo_field_str(L, -1, "prefix");
        }
        lua_pop(L, 1); /* the strings stay referenced by the model */
        if (uri)
            return uri;
    }
    return NULL;
}

void fo_xml_element(lua_State *L, fo_buf *b, const char *name, const char *text)
{
    fo_buf_addc(L, b, '<');
    fo_buf_adds(L, b, name);
    fo_buf_addc(L, b, '>');
    fo_xml_escape(L, b, text, strlen(text));
    fo_buf_adds(L, b, "</");
    fo_buf_adds(L, b, name);
    fo_buf_addc(L, b, '>');
}

/* ---- paths */

static size_t path_add(fo_xw *w, const char *name, lua_Integer index)
{
    size_t mark = w->path->len;
    char num[32];
    if (name) {
        if (mark)
            fo_buf_addc(w->L, w->path, '.');
        fo_buf_adds(w->L, w->path, name);
    } else {
        snprintf(num, sizeof num, "[%lld]", (long long)index);
        fo_buf_adds(w->L, w->path, num);
    }
    return mark;
}

/* ---- scalars */

static int is_int_type(const char *t)
{
    return strcmp(t, "integer") == 0 || strcmp(t, "long") == 0 || strcmp(t, "short") == 0 ||
           strcmp(t, "byte") == 0;
}

static void expect(fo_xw *w, int value, int type, const char *what)
{
    if (lua_type(w->L, value) != type)
        fo_xw_fail(w, "expected %s, got %s", what, luaL_typename(w->L, value));
}

void fo_xw_scalar_text(fo_xw *w, fo_buf *out, int ref, int shape, int value, enum fo_ts_format dflt)
{
    lua_State *L = w->L;
    const char *type = fo_field_str(L, shape, "type");
    char text[64];
    if (!type)
        type = "string";
    if (strcmp(type, "boolean") == 0) {
        expect(w, value, LUA_TBOOLEAN, "a boolean");
        fo_buf_adds(L, out, lua_toboolean(L, value) ? "true" : "false");
    } else if (is_int_type(type)) {
        lua_Integer i = 0;
        if (lua_isinteger(L, value))
            i = lua_tointeger(L, value);
        else if (lua_type(L, value) != LUA_TNUMBER ||
                 !lua_numbertointeger(floor(lua_tonumber(L, value)), &i) ||
                 floor(lua_tonumber(L, value)) != lua_tonumber(L, value))
            fo_xw_fail(w, "expected an integer, got %s",
                       lua_type(L, value) == LUA_TNUMBER ? lua_tostring(L, value)
                                                         : luaL_typename(L, value));
        snprintf(text, sizeof text, "%lld", (long long)i);
        fo_buf_adds(L, out, text);
    } else if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        expect(w, value, LUA_TNUMBER, "a number");
        fo_format_double(lua_tonumber(L, value), text, sizeof text);
        fo_buf_adds(L, out, text);
    } else if (strcmp(type, "timestamp") == 0) {
        double t;
        if (fo_ts_from_lua(L, value, &t) != 0)
            fo_xw_fail(w, "expected a timestamp (seconds since the epoch), got %s",
                       luaL_typename(L, value));
        fo_ts_format(t, fo_ts_format_named(fo_trait_str(L, ref, shape, "timestampFormat"), dflt),
                     text, sizeof text);
        fo_buf_adds(L, out, text);
    } else if (strcmp(type, "blob") == 0) {
        expect(w, value, LUA_TSTRING, "a string (blob)");
        size_t n;
        const char *p = lua_tolstring(L, value, &n);
        fo_b64_encode(L, out, (const unsigned char *)p, n);
    } else if (strcmp(type, "string") == 0 || strcmp(type, "character") == 0) {
        expect(w, value, LUA_TSTRING, "a string");
        size_t n;
        const char *p = lua_tolstring(L, value, &n);
        fo_buf_add(L, out, p, n);
    } else {
        fo_xw_fail(w, "a %s cannot be written as text", type);
    }
}

/* ---- elements */

static void write_value(fo_xw *w, int ref, int shape, int value, const char *name);

static void open_tag(fo_xw *w, const char *name, int ref, int shape)
{
    const char *prefix, *uri = fo_xml_namespace(w->L, ref, shape, &prefix);
    fo_buf_addc(w->L, w->b, '<');
    fo_buf_adds(w->L, w->b, name);
    if (uri) {
        fo_buf_adds(w->L, w->b, prefix && *prefix ? " xmlns:" : " xmlns");
        if (prefix && *prefix)
            fo_buf_adds(w->L, w->b, prefix);
        fo_buf_adds(w->L, w->b, "=\"");
        fo_xml_escape(w->L, w->b, uri, strlen(uri));
        fo_buf_addc(w->L, w->b, '"');
    }
}

static void close_tag(fo_xw *w, const char *name)
{
    fo_buf_adds(w->L, w->b, "</");
    fo_buf_adds(w->L, w->b, name);
    fo_buf_addc(w->L, w->b, '>');
}

/* Pushes t[key] (a shape reference) and its shape; raises when the model lacks it. */
static void push_ref(fo_xw *w, int t, const char *key)
{
    if (lua_getfield(w->L, t, key) != LUA_TTABLE)
        fo_xw_fail(w, "the model's shape has no '%s'", key);
    fo_shape_push(w->L, w->op->shapes, lua_gettop(w->L));
}

static void write_list(fo_xw *w, int ref, int shape, int value, const char *name)
{
    lua_State *L = w->L;
    expect(w, value, LUA_TTABLE, "a list (a Lua array)");
    int top = lua_gettop(L);
    push_ref(w, shape, "member");
    int iref = top + 1, ishape = top + 2;
    int flat = fo_trait_bool(L, ref, shape, "flattened");
    const char *item = fo_trait_str(L, iref, ishape, "locationName");
    if (flat) {
        item = name; /* the caller named the element after the list member already */
    } else {
        if (!item)
            item = w->ec2 ? "item" : "member";
        open_tag(w, name, ref, shape);
        fo_buf_addc(L, w->b, '>');
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, value);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t mark = path_add(w, NULL, i);
        lua_rawgeti(L, value, i);
        write_value(w, iref, ishape, lua_gettop(L), item);
        lua_pop(L, 1);
        w->path->len = mark;
    }
    if (!flat)
        close_tag(w, name);
    lua_settop(L, top);
}

static void write_map(fo_xw *w, int ref, int shape, int value, const char *name)
{
    lua_State *L = w->L;
    expect(w, value, LUA_TTABLE, "a table (map)");
    int top = lua_gettop(L);
    fo_map_push(L, w->op, shape);
    int kref = top + 1, kshape = top + 2, vref = top + 3, vshape = top + 4;
    const char *kname = fo_trait_str(L, kref, kshape, "locationName");
    const char *vname = fo_trait_str(L, vref, vshape, "locationName");
    int flat = fo_trait_bool(L, ref, shape, "flattened");
    const char **keys;
    size_t n = fo_keys(L, value, 0, &keys);
    if (n == (size_t)-1)
        fo_xw_fail(w, "expected a map with string keys");
    if (!flat) {
        open_tag(w, name, ref, shape);
        fo_buf_addc(L, w->b, '>');
    }
    for (size_t i = 0; i < n; i++) {
        fo_buf_adds(L, w->b, flat ? "<" : "<entry>");
        if (flat) {
            fo_buf_adds(L, w->b, name);
            fo_buf_addc(L, w->b, '>');
        }
        size_t mark = path_add(w, keys[i], 0);
        lua_pushstring(L, keys[i]);
        write_value(w, kref, kshape, lua_gettop(L), kname ? kname : "key");
        lua_getfield(L, value, keys[i]);
        write_value(w, vref, vshape, lua_gettop(L), vname ? vname : "value");
        lua_pop(L, 2);
        w->path->len = mark;
        close_tag(w, flat ? name : "entry");
    }
    if (!flat)
        close_tag(w, name);
    lua_settop(L, top);
}

/* Raises for a key of the structure value that is not a member of the shape. */
static void check_members(fo_xw *w, int members, int value)
{
    lua_State *L = w->L;
    lua_pushnil(L);
    while (lua_next(L, value)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            fo_xw_fail(w, "a structure takes member names as keys, got a %s key",
                       luaL_typename(L, -1));
        if (lua_getfield(L, members, lua_tostring(L, -1)) != LUA_TTABLE)
            fo_xw_fail(w, "unknown member '%s'", lua_tostring(L, -2));
        lua_pop(L, 1);
    }
}

/* Calls each(w, member name, ref, shape, value) for the members set in the structure value,
 * in the model's order; the four are at the stack top during the call. */
static void each_member(fo_xw *w, int shape, int value,
                        void (*each)(fo_xw *, const char *, int, int, int))
{
    lua_State *L = w->L;
    expect(w, value, LUA_TTABLE, "a table (structure)");
    int top = lua_gettop(L);
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    int members = top + 1;
    check_members(w, members, value);
    lua_getfield(L, shape, "memberOrder");
    const char **keys;
    size_t n = fo_keys(L, value, top + 2, &keys);
    for (size_t i = 0; i < n; i++) {
        int at = lua_gettop(L);
        lua_getfield(L, members, keys[i]);
        fo_shape_push(L, w->op->shapes, at + 1);
        lua_getfield(L, value, keys[i]);
        size_t mark = path_add(w, keys[i], 0);
        each(w, keys[i], at + 1, at + 2, at + 3);
        w->path->len = mark;
        lua_settop(L, at);
    }
    lua_settop(L, top);
}

static void member_element(fo_xw *w, const char *member, int ref, int shape, int value)
{
    if (fo_trait_str(w->L, ref, shape, "location") ||
        fo_trait_bool(w->L, ref, shape, "xmlAttribute"))
        return;
    write_value(w, ref, shape, value, fo_xml_member_name(w->L, w->op, ref, shape, member));
}

static void member_attribute(fo_xw *w, const char *member, int ref, int shape, int value)
{
    lua_State *L = w->L;
    if (!fo_trait_bool(L, ref, shape, "xmlAttribute"))
        return;
    const char *name = fo_trait_str(L, ref, shape, "locationName");
    fo_buf *text = fo_buf_new(L);
    fo_xw_scalar_text(w, text, ref, shape, value, FO_TS_ISO8601);
    fo_buf_addc(L, w->b, ' ');
    fo_buf_adds(L, w->b, name ? name : member);
    fo_buf_adds(L, w->b, "=\"");
    fo_xml_escape(L, w->b, text->data ? text->data : "", text->len);
    fo_buf_addc(L, w->b, '"');
    lua_pop(L, 1);
}

void fo_xw_members(fo_xw *w, int shape, int value)
{
    each_member(w, lua_absindex(w->L, shape), lua_absindex(w->L, value), member_element);
}

void fo_xw_attributes(fo_xw *w, int shape, int value)
{
    each_member(w, lua_absindex(w->L, shape), lua_absindex(w->L, value), member_attribute);
}

static void write_value(fo_xw *w, int ref, int shape, int value, const char *name)
{
    lua_State *L = w->L;
    if (++w->depth > MAX_DEPTH)
        fo_xw_fail(w, "nested more than %d levels deep (a table that contains itself?)", MAX_DEPTH);
    luaL_checkstack(L, 24, "fo.awsproto: output nested too deeply");
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "string";
    if (strcmp(type, "structure") == 0 || strcmp(type, "union") == 0) {
        open_tag(w, name, ref, shape);
        fo_xw_attributes(w, shape, value);
        fo_buf_addc(L, w->b, '>');
        fo_xw_members(w, shape, value);
        close_tag(w, name);
    } else if (strcmp(type, "list") == 0) {
        write_list(w, ref, shape, value, name);
    } else if (strcmp(type, "map") == 0) {
        write_map(w, ref, shape, value, name);
    } else {
        fo_buf *text = fo_buf_new(L);
        fo_xw_scalar_text(w, text, ref, shape, value, FO_TS_ISO8601);
        open_tag(w, name, ref, shape);
        fo_buf_addc(L, w->b, '>');
        fo_xml_escape(L, w->b, text->data ? text->data : "", text->len);
        close_tag(w, name);
        lua_pop(L, 1);
    }
    w->depth--;
}

/* ---- errors */

void fo_xml_error_body(fo_xw *w, const fo_err_info *e, int with_type)
{
    lua_State *L = w->L;
    if (with_type)
        fo_xml_element(L, w->b, "Type", e->type);
    fo_xml_element(L, w->b, "Code", e->code);
    fo_xml_element(L, w->b, "Message", e->message);
    int top = lua_gettop(L);
    int fields = top + 1;
    if (fo_err_fields(L, e) == 0) {
        lua_settop(L, top);
        return;
    }
    fo_error_ref(L, w->op, e->code);
    fo_shape_push(L, w->op->shapes, lua_gettop(L));
    int shape = lua_gettop(L);
    fo_xw_members(w, shape, fields);
    lua_settop(L, top);
}

void fo_xml_root(lua_State *L, fo_buf *b, const char *name, const char *ns)
{
    fo_buf_adds(L, b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
    fo_buf_adds(L, b, name);
    if (ns) {
        fo_buf_adds(L, b, " xmlns=\"");
        fo_xml_escape(L, b, ns, strlen(ns));
        fo_buf_addc(L, b, '"');
    }
}

void fo_xml_error_response(fo_xw *w, const fo_err_info *e, const char *ns, const char *rid)
{
    fo_xml_root(w->L, w->b, "ErrorResponse", ns);
    fo_buf_adds(w->L, w->b, "><Error>");
    fo_xml_error_body(w, e, 1);
    fo_buf_adds(w->L, w->b, "</Error>");
    fo_xml_element(w->L, w->b, "RequestId", rid);
    fo_buf_adds(w->L, w->b, "</ErrorResponse>");
}
