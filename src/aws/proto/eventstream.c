/* AWS event streams (application/vnd.amazon.eventstream): the binary framing shared by the
 * protocols' readers (json.c, restxml_parse.c), as botocore's eventstream.py decodes it:
 * messages with their lengths and CRCs checked, headers as a Lua table, the payload as
 * bytes; plus the rules every protocol applies the same way (message types, event headers
 * bound to members). Every read is bounded by the lengths checked first; a malformed
 * stream raises "svc.Op: malformed event stream response: <what> at byte N". */
#include "proto.h"

#include <lauxlib.h>
#include <stdint.h>
#include <string.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

void fo_es_malformed(lua_State *L, const fo_op *op, size_t at, const char *what)
{
    luaL_error(L, "%s.%s: malformed event stream response: %s at byte %I", op->service, op->name,
               what, (lua_Integer)at);
}

/* Reads the headers p[0..n) of one message (at byte `off` of the stream) into a new table
 * (pushed). */
static void read_headers(lua_State *L, const fo_op *op, const unsigned char *p, size_t n,
                         size_t off)
{
    /* value lengths of the fixed-size types; 6 (bytes) and 7 (string) have a u16 length */
    static const size_t fixed[] = {0, 0, 1, 2, 4, 8, 0, 0, 8, 16};
    lua_newtable(L);
    size_t i = 0;
    while (i < n) {
        size_t at = off + i;
        size_t nlen = p[i++];
        if (nlen == 0 || n - i < nlen + 1)
            fo_es_malformed(L, op, at, "truncated header");
        lua_pushlstring(L, (const char *)p + i, nlen);
        i += nlen;
        unsigned type = p[i++];
        size_t ntypes = sizeof fixed / sizeof fixed[0];
        if (type >= ntypes)
            fo_es_malformed(L, op, at, "unknown header value type");
        size_t vlen = type < ntypes ? fixed[type] : 0; /* (fo_es_malformed does not return) */
        if (type == 6 || type == 7) {
            if (n - i < 2)
                fo_es_malformed(L, op, at, "truncated header");
            vlen = (size_t)p[i] << 8 | p[i + 1];
            i += 2;
        }
        if (n - i < vlen)
            fo_es_malformed(L, op, at, "truncated header");
        const unsigned char *v = p + i;
        uint64_t u = 0;
        if (type >= 2 && type <= 8 && type != 6 && type != 7)
            for (size_t k = 0; k < vlen; k++)
                u = u << 8 | v[k];
        switch (type) {
        case 0:
        case 1:
            lua_pushboolean(L, type == 0);
            break;
        case 2:
            lua_pushinteger(L, (int8_t)u);
            break;
        case 3:
            lua_pushinteger(L, (int16_t)u);
            break;
        case 4:
            lua_pushinteger(L, (int32_t)u);
            break;
        case 5:
        case 8: /* milliseconds since the epoch */
            lua_pushinteger(L, (lua_Integer)(int64_t)u);
            break;
        default: /* bytes, string, uuid */
            lua_pushlstring(L, (const char *)v, vlen);
        }
        i += vlen;
        lua_rawset(L, -3);
    }
}

int fo_es_next(lua_State *L, const fo_op *op, const char *s, size_t n, size_t *pos,
               fo_es_message *m)
{
    size_t at = *pos;
    if (at >= n)
        return 0;
    luaL_checkstack(L, 4, "fo.awsproto: event stream");
    if (n - at < 16)
        fo_es_malformed(L, op, at, "truncated message");
    const unsigned char *p = (const unsigned char *)s + at;
    size_t total = be32(p), hlen = be32(p + 4);
    if (total < 16 || total > n - at)
        fo_es_malformed(L, op, at, "bad message length");
    if (hlen > total - 16)
        fo_es_malformed(L, op, at, "bad headers length");
    if (crc32_ieee(p, 8) != be32(p + 8))
        fo_es_malformed(L, op, at, "prelude checksum mismatch");
    if (crc32_ieee(p, total - 4) != be32(p + total - 4))
        fo_es_malformed(L, op, at, "message checksum mismatch");
    read_headers(L, op, p + 12, hlen, at + 12);
    m->at = at;
    m->payload = (const char *)p + 12 + hlen;
    m->payload_len = total - 16 - hlen;
    m->payload_at = at + 12 + hlen;
    *pos = at + total;
    return 1;
}

const char *fo_es_event_type(lua_State *L, const fo_op *op, int headers, const fo_es_message *m)
{
    const char *mtype = fo_field_str(L, headers, ":message-type");
    if (!mtype)
        return NULL;
    if (strcmp(mtype, "event") == 0)
        return fo_field_str(L, headers, ":event-type");
    if (strcmp(mtype, "exception") == 0) {
        const char *type = fo_field_str(L, headers, ":exception-type");
        lua_pushlstring(L, m->payload, m->payload_len > 512 ? 512 : m->payload_len);
        luaL_error(L, "%s.%s: event stream exception %s: %s", op->service, op->name,
                   type ? type : "?", lua_tostring(L, -1));
    } else if (strcmp(mtype, "error") == 0) {
        const char *code = fo_field_str(L, headers, ":error-code");
        const char *msg = fo_field_str(L, headers, ":error-message");
        luaL_error(L, "%s.%s: event stream error %s: %s", op->service, op->name, code ? code : "?",
                   msg ? msg : "");
    }
    return NULL;
}

void fo_es_header_members(lua_State *L, const fo_op *op, int shape, int headers, int out)
{
    int top = lua_gettop(L);
    luaL_checkstack(L, 8, "fo.awsproto: event stream");
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_settop(L, top);
        return;
    }
    int members = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, members)) {
        int ref = lua_gettop(L);
        if (lua_type(L, ref - 1) == LUA_TSTRING && lua_istable(L, ref) &&
            fo_field_bool(L, ref, "eventheader")) {
            lua_pushvalue(L, ref - 1);
            if (lua_rawget(L, headers) != LUA_TNIL) {
                fo_shape_push(L, op->shapes, ref);
                const char *type = fo_field_str(L, -1, "type");
                if (type && strcmp(type, "timestamp") == 0 && lua_isinteger(L, -2)) {
                    lua_Number secs = (lua_Number)lua_tointeger(L, -2) / 1000;
                    lua_pop(L, 2);
                    lua_pushnumber(L, secs);
                } else {
                    lua_pop(L, 1);
                }
                lua_pushvalue(L, ref - 1);
                lua_insert(L, -2);
                lua_rawset(L, out);
            }
        }
        lua_settop(L, ref - 1);
    }
    lua_settop(L, top);
}

int fo_es_event_shape(lua_State *L, const fo_op *op, int stream, int headers, const char *name)
{
    int top = lua_gettop(L);
    if (lua_getfield(L, stream, "members") != LUA_TTABLE ||
        lua_getfield(L, -1, name) != LUA_TTABLE) {
        lua_settop(L, top);
        return 0;
    }
    fo_shape_push(L, op->shapes, lua_gettop(L));
    int shape = lua_gettop(L);
    lua_newtable(L);
    fo_es_header_members(L, op, shape, headers, shape + 1);
    return shape;
}

int fo_es_payload_member(lua_State *L, int shape)
{
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    int members = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, members)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) &&
            fo_field_bool(L, lua_gettop(L), "eventpayload")) {
            lua_remove(L, members); /* leaves name, ref */
            return 1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

void fo_es_push_event(lua_State *L, const fo_op *op, int stream, int headers, const char *name,
                      const fo_es_message *m, fo_es_read read)
{
    lua_newtable(L);
    int event = lua_gettop(L);
    int shape = fo_es_event_shape(L, op, stream, headers, name);
    if (!shape)
        return;
    int inner = shape + 1;
    if (fo_es_payload_member(L, shape)) {
        int ref = lua_gettop(L);
        fo_shape_push(L, op->shapes, ref);
        if (read(L, op, m, ref, ref + 1))
            lua_setfield(L, inner, lua_tostring(L, ref - 1));
    } else if (read(L, op, m, 0, shape)) {
        fo_merge_into(L, inner); /* the document's members join the header members */
    }
    lua_settop(L, inner);
    lua_setfield(L, event, name);
    lua_settop(L, event);
}
