/* XML responses walked along the output shapes, as botocore's BaseXMLResponseParser does:
 * members matched by locationName (or member name), flattened lists and maps as repeated
 * elements, list items whatever their element name, map entries with key/value names from
 * the model, unknown elements ignored, absent members nil, empty elements "" (strings),
 * {} (lists, maps, structures). Element names are compared without namespace prefixes. */
#include "fo/xml.h"
#include "xmlshape.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- traits */

const char *fo_trait_str(lua_State *L, int ref, int shape, const char *key)
{
    const char *s = ref ? fo_field_str(L, ref, key) : NULL;
    if (!s && shape)
        s = fo_field_str(L, shape, key);
    return s;
}

int fo_trait_bool(lua_State *L, int ref, int shape, const char *key)
{
    if (ref) {
        lua_getfield(L, ref, key);
        int t = lua_type(L, -1), v = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (t != LUA_TNIL)
            return v;
    }
    return shape ? fo_field_bool(L, shape, key) : 0;
}

/* ---- documents */

int fo_xml_body_try(lua_State *L, const char *body, size_t len)
{
    fo_xml_error err;
    return fo_xml_parse(L, body, len, FO_XML_MAX_DEPTH, &err);
}

void fo_xml_body(lua_State *L, const fo_op *op, const char *body, size_t len)
{
    fo_xml_error err;
    if (fo_xml_parse(L, body, len, FO_XML_MAX_DEPTH, &err) != 0)
        luaL_error(L, "%s.%s: malformed XML response: %s at line %d", op->service, op->name,
                   err.message, (int)err.line);
}

/* ---- element helpers */

const char *fo_xml_name(lua_State *L, int node)
{
    const char *s = fo_field_str(L, node, "name");
    return s ? s : "";
}

int fo_xml_child(lua_State *L, int node, const char *name)
{
    node = lua_absindex(L, node);
    lua_Integer n = (lua_Integer)lua_rawlen(L, node);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, node, i) == LUA_TTABLE && strcmp(fo_xml_name(L, -1), name) == 0)
            return 1;
        lua_pop(L, 1);
    }
    return 0;
}

void fo_xml_text(lua_State *L, int node)
{
    node = lua_absindex(L, node);
    lua_Integer n = (lua_Integer)lua_rawlen(L, node);
    int parts = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, node, i) == LUA_TSTRING) {
            parts++;
            luaL_checkstack(L, 2, "fo.awsproto: text too fragmented");
        } else {
            lua_pop(L, 1);
        }
    }
    if (parts == 0)
        lua_pushliteral(L, "");
    else if (parts > 1)
        lua_concat(L, parts);
}

int fo_xml_child_text(lua_State *L, int node, const char *name)
{
    if (!fo_xml_child(L, node, name))
        return 0;
    fo_xml_text(L, -1);
    lua_remove(L, -2);
    return 1;
}

int fo_xml_error_element(lua_State *L, const char *body, size_t len, int in_errors, int *root)
{
    *root = 0;
    if (!body || len == 0 || fo_xml_body_try(L, body, len) != 0)
        return 0;
    *root = lua_gettop(L);
    if (strcmp(fo_xml_name(L, *root), "Error") == 0) { /* S3 */
        lua_pushvalue(L, *root);
        return lua_gettop(L);
    }
    if (fo_xml_child(L, *root, "Error"))
        return lua_gettop(L);
    if (in_errors && fo_xml_child(L, *root, "Errors") && fo_xml_child(L, -1, "Error"))
        return lua_gettop(L);
    return 0;
}

void fo_xml_error_status(lua_State *L, int out, int status)
{
    const char *code = fo_field_str(L, out, "code");
    if (code && *code)
        return;
    lua_pushfstring(L, "%d", status);
    lua_setfield(L, out, "code");
    if (!fo_field_str(L, out, "message")) {
        lua_pushstring(L, fo_http_reason(status));
        lua_setfield(L, out, "message");
    }
}

void fo_xml_error_fields(lua_State *L, int err, int out)
{
    static const char *const fields[][2] = {
        {"Code", "code"}, {"Message", "message"}, {"Type", "type"}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fo_xml_child_text(L, err, fields[i][0]))
            lua_setfield(L, out, fields[i][1]);
}

/* ---- scalars */

static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t' || s[*len - 1] == '\n' ||
                        s[*len - 1] == '\r'))
        (*len)--;
    return s;
}

static void bad_value(lua_State *L, const fo_op *op, const char *what, const char *text, size_t len)
{
    luaL_error(L, "%s.%s: malformed response: invalid %s '%s'", op->service, op->name, what,
               len > 64 ? "(long text)" : text);
}

void fo_xml_scalar(lua_State *L, const fo_op *op, int ref, int shape, const char *text, size_t len)
{
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "string";
    if (strcmp(type, "boolean") == 0) {
        size_t n = len;
        const char *t = trim(text, &n);
        lua_pushboolean(L, n == 4 && memcmp(t, "true", 4) == 0);
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "long") == 0 ||
               strcmp(type, "short") == 0 || strcmp(type, "byte") == 0) {
        size_t n = len;
        const char *t = trim(text, &n);
        char num[48];
        if (n == 0 || n >= sizeof num)
            bad_value(L, op, type, text, len);
        memcpy(num, t, n);
        num[n] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(num, &end, 10);
        if (*end != '\0' || errno != 0)
            bad_value(L, op, type, text, len);
        lua_pushinteger(L, (lua_Integer)v);
    } else if (strcmp(type, "float") == 0 || strcmp(type, "double") == 0) {
        size_t n = len;
        const char *t = trim(text, &n);
        char num[64];
        if (n == 0 || n >= sizeof num)
            bad_value(L, op, type, text, len);
        memcpy(num, t, n);
        num[n] = '\0';
        double v;
        char *end = num;
        if (strcmp(num, "NaN") == 0)
            v = NAN;
        else if (strcmp(num, "Infinity") == 0)
            v = INFINITY;
        else if (strcmp(num, "-Infinity") == 0)
            v = -INFINITY;
        else {
            v = strtod(num, &end);
            if (*end != '\0' || end == num || !isfinite(v))
                bad_value(L, op, type, text, len);
        }
        lua_pushnumber(L, v);
    } else if (strcmp(type, "timestamp") == 0) {
        size_t n = len;
        const char *t = trim(text, &n);
        char ts[80];
        double v;
        if (n == 0 || n >= sizeof ts)
            bad_value(L, op, "timestamp", text, len);
        memcpy(ts, t, n);
        ts[n] = '\0';
        if (fo_ts_parse(ts, &v) != 0)
            bad_value(L, op, "timestamp", text, len);
        if (v == floor(v) && fabs(v) < 9.0e15)
            lua_pushinteger(L, (lua_Integer)v);
        else
            lua_pushnumber(L, v);
    } else if (strcmp(type, "blob") == 0) {
        fo_buf *b = fo_buf_new(L);
        if (fo_b64_decode(L, b, text, len) != 0)
            bad_value(L, op, "base64 blob", text, len);
        fo_buf_push(L, b);
        lua_remove(L, -2);
    } else {
        (void)ref;
        lua_pushlstring(L, text, len);
    }
}

/* ---- shapes */

static void parse_value(lua_State *L, const fo_op *op, int ref, int shape, int node);

/* Pushes shapes[ref.shape] and returns its absolute index. */
static int push_shape(lua_State *L, const fo_op *op, int ref)
{
    fo_shape_push(L, op->shapes, ref);
    return lua_gettop(L);
}

/* Is the value at `node` a group of repeated elements (an array without a name)? */
static int is_group(lua_State *L, int node)
{
    lua_getfield(L, node, "name");
    int group = lua_isnil(L, -1);
    lua_pop(L, 1);
    return group;
}

/* The element to read a single value from: the node, or the first of a group. */
static int single(lua_State *L, int node)
{
    if (!is_group(L, node)) {
        lua_pushvalue(L, node);
    } else if (lua_rawgeti(L, node, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    return lua_gettop(L);
}

static void parse_list(lua_State *L, const fo_op *op, int ref, int shape, int node)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    if (lua_getfield(L, shape, "member") != LUA_TTABLE)
        luaL_error(L, "%s.%s: list shape without a member", op->service, op->name);
    int mref = lua_gettop(L);
    int mshape = push_shape(L, op, mref);
    lua_Integer k = 0;
    if (is_group(L, node)) { /* flattened: every occurrence is an item */
        lua_Integer n = (lua_Integer)lua_rawlen(L, node);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, node, i);
            parse_value(L, op, mref, mshape, lua_gettop(L));
            lua_rawseti(L, out, ++k);
            lua_pop(L, 1);
        }
    } else if (fo_trait_bool(L, ref, shape, "flattened")) { /* one occurrence */
        parse_value(L, op, mref, mshape, node);
        lua_rawseti(L, out, ++k);
    } else { /* wrapped: every child element is an item, whatever its name */
        lua_Integer n = (lua_Integer)lua_rawlen(L, node);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, node, i) == LUA_TTABLE) {
                parse_value(L, op, mref, mshape, lua_gettop(L));
                lua_rawseti(L, out, ++k);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, out);
}

/* One <entry> (or flattened occurrence) of a map into out[key] = value. */
static void map_entry(lua_State *L, const fo_op *op, int out, int entry, int kref, int kshape,
                      const char *kname, int vref, int vshape, const char *vname)
{
    int top = lua_gettop(L);
    int key = 0, val = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, entry);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, entry, i) != LUA_TTABLE) {
            lua_pop(L, 1);
            continue;
        }
        int child = lua_gettop(L);
        const char *name = fo_xml_name(L, child);
        if (strcmp(name, kname) == 0) {
            fo_xml_text(L, child);
            const char *k = lua_tostring(L, -1);
            size_t klen = lua_rawlen(L, -1);
            fo_xml_scalar(L, op, kref, kshape, k, klen);
            lua_replace(L, child);
            key = child;
        } else if (strcmp(name, vname) == 0) {
            parse_value(L, op, vref, vshape, child);
            lua_replace(L, child);
            val = child;
        } else {
            lua_pop(L, 1);
        }
    }
    if (key && val && !lua_isnil(L, key)) {
        lua_pushvalue(L, key);
        lua_pushvalue(L, val);
        lua_rawset(L, out);
    }
    lua_settop(L, top);
}

static void parse_map(lua_State *L, const fo_op *op, int ref, int shape, int node)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    if (lua_getfield(L, shape, "key") != LUA_TTABLE ||
        lua_getfield(L, shape, "value") != LUA_TTABLE)
        luaL_error(L, "%s.%s: map shape without key or value", op->service, op->name);
    int kref = out + 1, vref = out + 2;
    int kshape = push_shape(L, op, kref);
    int vshape = push_shape(L, op, vref);
    const char *kname = fo_trait_str(L, kref, kshape, "locationName");
    const char *vname = fo_trait_str(L, vref, vshape, "locationName");
    if (!kname)
        kname = "key";
    if (!vname)
        vname = "value";
    if (is_group(L, node)) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, node);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, node, i);
            map_entry(L, op, out, lua_gettop(L), kref, kshape, kname, vref, vshape, vname);
            lua_pop(L, 1);
        }
    } else if (fo_trait_bool(L, ref, shape, "flattened")) {
        map_entry(L, op, out, node, kref, kshape, kname, vref, vshape, vname);
    } else {
        lua_Integer n = (lua_Integer)lua_rawlen(L, node);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, node, i) == LUA_TTABLE)
                map_entry(L, op, out, lua_gettop(L), kref, kshape, kname, vref, vshape, vname);
            lua_pop(L, 1);
        }
    }
    lua_settop(L, out);
}

const char *fo_xml_member_name(lua_State *L, const fo_op *op, int ref, int mshape,
                               const char *member)
{
    const char *type = fo_field_str(L, mshape, "type");
    if (type && strcmp(type, "list") == 0 && fo_trait_bool(L, ref, mshape, "flattened")) {
        if (lua_getfield(L, mshape, "member") == LUA_TTABLE) {
            int lref = lua_gettop(L);
            int lshape = push_shape(L, op, lref);
            const char *name = fo_trait_str(L, lref, lshape, "locationName");
            lua_pop(L, 2); /* the name stays referenced by the model */
            if (name)
                return name;
        } else {
            lua_pop(L, 1);
        }
    }
    const char *name = fo_trait_str(L, ref, mshape, "locationName");
    return name ? name : member;
}

/* Pushes every child element of `node` named `name` as an array (a group); 0 if none. */
static int push_group(lua_State *L, int node, const char *name)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, node), k = 0;
    lua_newtable(L);
    int group = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, node, i) == LUA_TTABLE && strcmp(fo_xml_name(L, -1), name) == 0)
            lua_rawseti(L, group, ++k);
        else
            lua_pop(L, 1);
    }
    if (k == 0) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

void fo_xml_structure(lua_State *L, const fo_op *op, int shape, int node)
{
    luaL_checkstack(L, 24, "fo.awsproto: response nested too deeply");
    shape = lua_absindex(L, shape);
    node = lua_absindex(L, node);
    lua_newtable(L);
    int out = lua_gettop(L);
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_settop(L, out);
        return;
    }
    int members = lua_gettop(L);
    int matched = 0;
    lua_pushnil(L);
    while (fo_next_member(L, op->shapes, members)) {
        int mshape = lua_gettop(L), ref = mshape - 1;
        const char *member = lua_tostring(L, ref - 1);
        /* members bound to the status code or headers are read elsewhere; request-only
         * bindings (uri, querystring) mean nothing in a response: read from the body */
        const char *loc = fo_trait_str(L, ref, mshape, "location");
        if ((loc && (strcmp(loc, "header") == 0 || strcmp(loc, "headers") == 0 ||
                     strcmp(loc, "statusCode") == 0)) ||
            fo_trait_bool(L, ref, mshape, "eventheader")) {
            lua_settop(L, ref - 1);
            continue;
        }
        const char *xml_name = fo_xml_member_name(L, op, ref, mshape, member);
        const char *type = fo_field_str(L, mshape, "type");
        int flat = type && (strcmp(type, "list") == 0 || strcmp(type, "map") == 0) &&
                   fo_trait_bool(L, ref, mshape, "flattened");
        int found = flat ? push_group(L, node, xml_name) : fo_xml_child(L, node, xml_name);
        if (found) {
            parse_value(L, op, ref, mshape, lua_gettop(L));
            lua_setfield(L, out, member);
            matched++;
        } else if (fo_trait_bool(L, ref, mshape, "xmlAttribute")) {
            const char *attr = fo_trait_str(L, ref, mshape, "locationName");
            if (!attr)
                attr = member;
            if (lua_getfield(L, node, "attr") == LUA_TTABLE &&
                lua_getfield(L, -1, attr) == LUA_TSTRING) {
                lua_setfield(L, out, member);
                matched++;
            }
        }
        lua_settop(L, ref - 1);
    }
    /* A union whose only element is unknown to the model (botocore's tagged unions). */
    if (matched == 0 && fo_field_bool(L, shape, "union")) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, node), elems = 0;
        const char *tag = NULL;
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, node, i) == LUA_TTABLE) {
                elems++;
                tag = fo_xml_name(L, -1);
            }
            lua_pop(L, 1);
        }
        if (elems == 1 && tag) {
            lua_createtable(L, 0, 1);
            lua_pushstring(L, tag);
            lua_setfield(L, -2, "name");
            lua_setfield(L, out, "SDK_UNKNOWN_MEMBER");
        }
    }
    lua_settop(L, out);
}

static void parse_value(lua_State *L, const fo_op *op, int ref, int shape, int node)
{
    luaL_checkstack(L, 24, "fo.awsproto: response nested too deeply");
    int top = lua_gettop(L);
    const char *type = fo_field_str(L, shape, "type");
    if (!type)
        type = "string";
    if (strcmp(type, "list") == 0) {
        parse_list(L, op, ref, shape, node);
    } else if (strcmp(type, "map") == 0) {
        parse_map(L, op, ref, shape, node);
    } else if (strcmp(type, "structure") == 0) {
        int el = single(L, node);
        fo_xml_structure(L, op, shape, el);
    } else {
        int el = single(L, node);
        fo_xml_text(L, el);
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        fo_xml_scalar(L, op, ref, shape, text, len);
    }
    /* the value is on top; drop whatever was pushed below it */
    if (lua_gettop(L) > top + 1) {
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
    }
}

void fo_xml_value(lua_State *L, const fo_op *op, int ref, int shape, int node)
{
    parse_value(L, op, lua_absindex(L, ref), lua_absindex(L, shape), lua_absindex(L, node));
}

/* ---- errors */

int fo_error_shape(lua_State *L, const fo_op *op, const char *code)
{
    if (!code || !*code)
        return 0;
    if (lua_getfield(L, op->shapes, code) == LUA_TTABLE &&
        (fo_field_bool(L, -1, "exception") || fo_field_bool(L, -1, "error"))) {
        /* a shape whose error.code differs is not modelled by this name */
        if (lua_getfield(L, -1, "error") == LUA_TTABLE) {
            const char *c = fo_field_str(L, -1, "code");
            lua_pop(L, 1);
            if (!c || strcmp(c, code) == 0)
                return 1;
        } else {
            lua_pop(L, 1);
            return 1;
        }
    }
    lua_pop(L, 1);
    /* an exception with a customized code (error.code) */
    lua_pushnil(L);
    while (lua_next(L, op->shapes)) {
        int found = 0;
        if (lua_type(L, -1) == LUA_TTABLE) {
            if (lua_getfield(L, -1, "error") == LUA_TTABLE) {
                const char *c = fo_field_str(L, -1, "code");
                found = c && strcmp(c, code) == 0;
            }
            lua_pop(L, 1);
        }
        if (found) {
            lua_remove(L, -2); /* the key */
            return 1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

const char *fo_http_reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}
