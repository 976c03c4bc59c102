/* Protocol json (1.0 and 1.1), responses: the output document, event streams and errors.
 * Requests are in json_write.c, the JSON parser in json_read.c.
 *
 * parse: the body is decoded against the output shape (json_read.c); an empty body or an
 * operation without output gives {}. An output with an event-stream member is read as an
 * AWS event stream (application/vnd.amazon.eventstream): the first event must be the
 * "initial-response" (the output's other members, in JSON), the following events become
 * the stream member's list, each {EventName = {...}} (an event the model does not know is
 * {}); an exception or error message raises.
 *
 * parse_error → {code=, message=, request_id=, type=, fields=}:
 *   code        the first of: the x-amzn-query-error header's code ("Code;Sender"), the
 *               body's __type, the x-amzn-errortype header, the body's code or Code;
 *               shortened to the name after the last '#' and before any ':'
 *               ("aws.foo#FooError:http://..." → "FooError")
 *   message     the body's message or Message; a body that is not JSON is the message
 *               itself (its first 512 bytes)
 *   request_id  the x-amzn-requestid (or x-amz-request-id) header
 *   type        "Sender" or "Receiver": the x-amzn-query-error header's, else the modelled
 *               error's fault (error.senderFault / fault), else by status (4xx / 5xx)
 *   fields      when the model has an error shape for the code (a structure named so, or
 *               one whose error.code is the code): the body parsed as that shape; else {}
 * parse_error itself never fails on a bad body: it is the answer of an error already. */
#include "json.h"

#include <lauxlib.h>
#include <math.h>
#include <string.h>

/* ---- protected decoding (for error documents, which must not raise) */

static int l_decode(lua_State *L)
{
    fo_op op = *(const fo_op *)lua_touserdata(L, 1);
    op.shapes = 2; /* absolute indices are per call frame */
    size_t n;
    const char *s = lua_tolstring(L, 3, &n);
    const fo_doc_decoder *decode = lua_touserdata(L, 5);
    if (!(*decode)(L, &op, s, n, lua_istable(L, 4) ? 4 : 0))
        lua_pushnil(L);
    return 1;
}

static int json_doc(lua_State *L, const fo_op *op, const char *s, size_t n, int shape)
{
    return fo_json_decode(L, op, s, n, 0, shape);
}

/* Pushes the decoded body (shape 0: generic), or nil when it cannot be decoded. */
static void decode_protected(lua_State *L, const fo_op *op, int body, int shape,
                             const fo_doc_decoder *decode)
{
    lua_pushcfunction(L, l_decode);
    lua_pushlightuserdata(L, (void *)op);
    lua_pushvalue(L, op->shapes);
    lua_pushvalue(L, body);
    if (shape)
        lua_pushvalue(L, shape);
    else
        lua_pushnil(L);
    lua_pushlightuserdata(L, (void *)decode);
    if (lua_pcall(L, 5, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* ---- errors */

static const char *doc_str(lua_State *L, int doc, const char *key)
{
    return lua_istable(L, doc) ? fo_field_str(L, doc, key) : NULL;
}

/* Pushes the short form of an error code. */
static void push_short_code(lua_State *L, const char *code)
{
    const char *colon = strchr(code, ':');
    size_t n = colon ? (size_t)(colon - code) : strlen(code);
    const char *start = code;
    for (size_t i = 0; i < n; i++)
        if (code[i] == '#')
            start = code + i + 1;
    lua_pushlstring(L, start, n - (size_t)(start - code));
}

static int is_error_shape(lua_State *L, int shape)
{
    const char *type = fo_field_str(L, shape, "type");
    if (!type || strcmp(type, "structure") != 0)
        return 0;
    int yes = fo_field_bool(L, shape, "exception") || fo_field_bool(L, shape, "fault");
    if (!yes) {
        yes = lua_getfield(L, shape, "error") == LUA_TTABLE;
        lua_pop(L, 1);
    }
    return yes;
}

/* Pushes the model's error shape for code, or nothing (returns 0). */
static int push_error_shape(lua_State *L, const fo_op *op, const char *code)
{
    if (lua_getfield(L, op->shapes, code) == LUA_TTABLE && is_error_shape(L, lua_gettop(L)))
        return 1;
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, op->shapes)) {
        if (lua_istable(L, -1) && is_error_shape(L, lua_gettop(L))) {
            const char *c = NULL;
            if (lua_getfield(L, -1, "error") == LUA_TTABLE)
                c = fo_field_str(L, -1, "code"); /* anchored by the shape */
            lua_pop(L, 1);
            if (c && strcmp(c, code) == 0) {
                lua_remove(L, -2);
                return 1;
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

void fo_json_parse_error(lua_State *L, const fo_op *op, int resp)
{
    fo_rpc_parse_error(L, op, resp, json_doc);
}

void fo_rpc_parse_error(lua_State *L, const fo_op *op, int resp, fo_doc_decoder decode)
{
    int base = lua_gettop(L);
    if (lua_getfield(L, resp, "body") != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    int body = lua_gettop(L);
    decode_protected(L, op, body, 0, &decode);
    int doc = lua_gettop(L);

    lua_createtable(L, 0, 5);
    int out = lua_gettop(L);

    /* code (and type) */
    const char *code = NULL, *qe = fo_resp_header(L, resp, "x-amzn-query-error");
    const char *semi = qe ? strchr(qe, ';') : NULL;
    if (semi && semi > qe && !strchr(semi + 1, ';')) {
        lua_pushlstring(L, qe, (size_t)(semi - qe));
        lua_setfield(L, out, "code");
        lua_pushstring(L, semi + 1);
        lua_setfield(L, out, "type");
    } else {
        code = doc_str(L, doc, "__type");
        if (!code)
            code = fo_resp_header(L, resp, "x-amzn-errortype");
        if (!code)
            code = doc_str(L, doc, "code");
        if (!code)
            code = doc_str(L, doc, "Code");
        if (code) {
            push_short_code(L, code);
            if (lua_rawlen(L, -1) > 0)
                lua_setfield(L, out, "code");
            else
                lua_pop(L, 1);
        }
    }

    /* message */
    const char *msg = doc_str(L, doc, "message");
    if (!msg)
        msg = doc_str(L, doc, "Message");
    if (msg) {
        lua_pushstring(L, msg);
        lua_setfield(L, out, "message");
    } else if (!lua_istable(L, doc) && lua_rawlen(L, body) > 0) {
        size_t n;
        const char *s = lua_tolstring(L, body, &n);
        lua_pushlstring(L, s, n > 512 ? 512 : n);
        lua_setfield(L, out, "message");
    }

    const char *rid = fo_resp_header(L, resp, "x-amzn-requestid");
    if (!rid)
        rid = fo_resp_header(L, resp, "x-amz-request-id");
    if (rid) {
        lua_pushstring(L, rid);
        lua_setfield(L, out, "request_id");
    }

    /* fields, from the modelled error shape */
    int shape = 0;
    lua_getfield(L, out, "code");
    if (lua_isstring(L, -1) && push_error_shape(L, op, lua_tostring(L, -1)))
        shape = lua_gettop(L);
    if (shape && lua_istable(L, doc)) {
        decode_protected(L, op, body, shape, &decode);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_newtable(L);
        }
    } else {
        lua_newtable(L);
    }
    lua_setfield(L, out, "fields");

    /* type */
    if (lua_getfield(L, out, "type") == LUA_TNIL) {
        const char *type = NULL;
        if (shape) {
            if (lua_getfield(L, shape, "error") == LUA_TTABLE)
                type = fo_field_bool(L, -1, "senderFault") ? "Sender" : NULL;
            lua_pop(L, 1);
            if (!type && fo_field_bool(L, shape, "fault"))
                type = "Receiver";
        }
        if (!type) {
            double status = fo_field_num(L, resp, "status", 0);
            type = status >= 500 ? "Receiver" : status >= 400 ? "Sender" : NULL;
        }
        if (type) {
            lua_pushstring(L, type);
            lua_setfield(L, out, "type");
        }
    }

    lua_pushvalue(L, out);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
}

/* ---- event streams (the framing is eventstream.c's) */

/* Pushes the member name of shape's event-stream member, or nothing (returns 0). */
static int push_stream_member(lua_State *L, const fo_op *op, int shape)
{
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 0;
    }
    int members = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, members)) {
        if (lua_istable(L, -1) && lua_type(L, -2) == LUA_TSTRING) {
            const char *target = fo_field_str(L, -1, "shape");
            if (target && lua_getfield(L, op->shapes, target) == LUA_TTABLE &&
                fo_field_bool(L, -1, "eventstream")) {
                lua_pop(L, 2);
                lua_remove(L, members);
                return 1;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* An event's payload for fo_es_push_event: a blob or string payload member as the raw
 * bytes, anything else decoded as JSON. */
static int read_event_payload(lua_State *L, const fo_op *op, const fo_es_message *m, int ref,
                              int shape)
{
    if (ref) {
        enum fo_json_type t = fo_json_type_of(L, shape);
        if (t == FO_JT_BLOB || t == FO_JT_STRING) {
            lua_pushlstring(L, m->payload, m->payload_len);
            return 1;
        }
    }
    return fo_json_decode(L, op, m->payload, m->payload_len, m->payload_at, shape);
}

static void parse_event_stream(lua_State *L, const fo_op *op, int body, int shape, int member)
{
    size_t len;
    const char *s = lua_tolstring(L, body, &len);
    lua_getfield(L, shape, "members");
    lua_pushvalue(L, member);
    lua_gettable(L, -2);
    fo_shape_push(L, op->shapes, lua_gettop(L));
    int stream = lua_gettop(L);
    lua_pushnil(L);
    int result = lua_gettop(L);
    lua_newtable(L);
    int events = lua_gettop(L);
    lua_Integer count = 0;
    size_t pos = 0;
    fo_es_message m;
    while (fo_es_next(L, op, s, len, &pos, &m)) {
        int headers = lua_gettop(L);
        const char *etype = fo_es_event_type(L, op, headers, &m);
        if (m.at == 0) {
            if (!etype || strcmp(etype, "initial-response") != 0)
                fo_es_malformed(L, op, m.at, "the first event is not the initial-response");
            if (!fo_json_decode(L, op, m.payload, m.payload_len, m.payload_at, shape))
                lua_newtable(L);
            lua_replace(L, result);
        } else if (etype) {
            fo_es_push_event(L, op, stream, headers, etype, &m, read_event_payload);
            lua_rawseti(L, events, ++count);
        }
        lua_settop(L, events);
    }
    if (lua_isnil(L, result))
        fo_es_malformed(L, op, 0, "no initial-response event");
    lua_pushvalue(L, member);
    lua_pushvalue(L, events);
    lua_settable(L, result);
    lua_pushvalue(L, result);
}

/* ---- parse */

void fo_json_parse(lua_State *L, const fo_op *op, int resp)
{
    int base = lua_gettop(L);
    if (!op->output) {
        lua_newtable(L);
        return;
    }
    if (lua_getfield(L, resp, "body") != LUA_TSTRING) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    int body = lua_gettop(L);
    fo_shape_push(L, op->shapes, op->output);
    int shape = lua_gettop(L);
    if (push_stream_member(L, op, shape)) {
        parse_event_stream(L, op, body, shape, lua_gettop(L));
    } else {
        size_t n;
        const char *s = lua_tolstring(L, body, &n);
        if (!fo_json_decode(L, op, s, n, 0, shape))
            lua_newtable(L);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
}
