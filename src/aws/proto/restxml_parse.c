/* Protocol rest-xml, the response side (botocore's RestXMLParser): members bound to the
 * status code and to headers (a single header, or a prefix map of them), then either the
 * payload member (a raw string/blob body, or an XML document for a structure) or the body
 * document's root element read as the output structure. A payload member that is an event
 * stream (S3's SelectObjectContent) reads the body as one (application/vnd.amazon.eventstream,
 * framing in eventstream.c; botocore's EventStreamXMLParser): the member is the list of the
 * events, each {EventName = {...}}, whose members come from the message's headers
 * (eventheader) and its payload: the eventpayload member (raw bytes for a blob or string, else
 * the XML document read as that member), or without one the XML document read as the event
 * structure. An event the model does not know is {} (as in json.c), messages other than
 * events are skipped, an exception or error message raises. Errors: <ErrorResponse><Error>
 * (Route 53, CloudFront) or a bare <Error> (S3), request id from the body or the
 * x-amz-request-id / x-amzn-requestid header. */
#include "fo/xml.h"
#include "xmlshape.h"

#include <lauxlib.h>
#include <string.h>
#include <strings.h>

/* Pushes the value of header `name` (resp headers are lower-case; any case accepted). */
static int push_header(lua_State *L, int headers, const char *name)
{
    if (!headers)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, headers)) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
            strcasecmp(lua_tostring(L, -2), name) == 0) {
            lua_remove(L, -2);
            return 1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* The jsonvalue trait: a header holding base64-encoded JSON. */
static void push_json_header(lua_State *L, const fo_op *op, const char *text, size_t len)
{
    fo_buf *b = fo_buf_new(L);
    if (fo_b64_decode(L, b, text, len) != 0)
        luaL_error(L, "%s.%s: malformed response: a JSON header value is not base64", op->service,
                   op->name);
    int buf = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "decode");
    fo_buf_push(L, b);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        luaL_error(L, "%s.%s: malformed response: a JSON header value: %s", op->service, op->name,
                   lua_tostring(L, -1));
    lua_replace(L, buf);
    lua_settop(L, buf);
}

void fo_restxml_header_value(lua_State *L, const fo_op *op, int ref, int shape, const char *text,
                             size_t len)
{
    const char *type = fo_field_str(L, shape, "type");
    if (type && strcmp(type, "list") == 0) {
        /* "a, b, c" (RFC 7230); RFC 822 dates contain ", " themselves */
        lua_newtable(L);
        int out = lua_gettop(L);
        lua_getfield(L, shape, "member");
        int mref = lua_gettop(L);
        fo_shape_push(L, op->shapes, mref);
        int mshape = lua_gettop(L);
        const char *mtype = fo_field_str(L, mshape, "type");
        int dates = mtype && strcmp(mtype, "timestamp") == 0 && strstr(text, "GMT");
        lua_Integer n = 0;
        const char *p = text, *end = text + len;
        while (p < end) {
            const char *sep;
            if (dates) {
                sep = strstr(p, "GMT");
                sep = sep ? sep + 3 : end;
            } else {
                sep = memchr(p, ',', (size_t)(end - p));
                if (!sep)
                    sep = end;
            }
            const char *a = p, *z = sep;
            while (a < z && (*a == ' ' || *a == '\t'))
                a++;
            while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
                z--;
            if (z > a || !dates) {
                fo_xml_scalar(L, op, mref, mshape, a, (size_t)(z - a));
                lua_rawseti(L, out, ++n);
            }
            p = sep;
            while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
                p++;
        }
        lua_settop(L, out);
    } else if (fo_trait_bool(L, ref, shape, "jsonvalue")) {
        push_json_header(L, op, text, len);
    } else {
        fo_xml_scalar(L, op, ref, shape, text, len);
    }
}

/* out[member] for the members of `shape` bound to the status code and headers. */
static void parse_located(lua_State *L, const fo_op *op, int shape, int resp, int out)
{
    int top = lua_gettop(L);
    int headers = lua_getfield(L, resp, "headers") == LUA_TTABLE ? lua_gettop(L) : 0;
    if (lua_getfield(L, shape, "members") != LUA_TTABLE) {
        lua_settop(L, top);
        return;
    }
    int members = lua_gettop(L);
    lua_pushnil(L);
    while (fo_next_member(L, op->shapes, members)) {
        int mshape = lua_gettop(L), ref = mshape - 1;
        const char *member = lua_tostring(L, ref - 1);
        const char *loc = fo_trait_str(L, ref, mshape, "location");
        const char *name = fo_trait_str(L, ref, mshape, "locationName");
        if (!loc) {
            /* body member */
        } else if (strcmp(loc, "statusCode") == 0) {
            lua_pushinteger(L, (lua_Integer)fo_field_num(L, resp, "status", 0));
            lua_setfield(L, out, member);
        } else if (strcmp(loc, "headers") == 0) {
            size_t plen = name ? strlen(name) : 0;
            lua_newtable(L);
            int map = lua_gettop(L);
            if (headers) {
                lua_pushnil(L);
                while (lua_next(L, headers)) {
                    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
                    if (k && lua_type(L, -1) == LUA_TSTRING && strlen(k) >= plen &&
                        strncasecmp(k, name ? name : "", plen) == 0) {
                        lua_pushvalue(L, -1);
                        lua_setfield(L, map, k + plen);
                    }
                    lua_pop(L, 1);
                }
            }
            lua_setfield(L, out, member);
        } else if (strcmp(loc, "header") == 0) {
            if (push_header(L, headers, name ? name : member)) {
                size_t len;
                const char *text = lua_tolstring(L, -1, &len);
                fo_restxml_header_value(L, op, ref, mshape, text, len);
                lua_setfield(L, out, member);
            }
        }
        lua_settop(L, ref - 1);
    }
    lua_settop(L, top);
}

/* Is the body only whitespace? */
static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* ---- event streams */

/* Pushes the root element of an event's XML payload; an empty payload (only whitespace) is an
 * element without name and content, as botocore's ETree.Element(''). */
static void push_event_document(lua_State *L, const fo_op *op, const fo_es_message *m)
{
    if (blank(m->payload, m->payload_len)) {
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "");
        lua_setfield(L, -2, "name");
        return;
    }
    fo_xml_error err;
    if (fo_xml_parse(L, m->payload, m->payload_len, FO_XML_MAX_DEPTH, &err) != 0) {
        lua_pushfstring(L, "XML event payload (%s at line %d)", err.message, (int)err.line);
        fo_es_malformed(L, op, m->payload_at, lua_tostring(L, -1));
    }
}

/* An event's payload for fo_es_push_event: a blob or string payload member as the raw
 * bytes, anything else read from the XML document. */
static int read_event_payload(lua_State *L, const fo_op *op, const fo_es_message *m, int ref,
                              int shape)
{
    if (ref) {
        const char *type = fo_field_str(L, shape, "type");
        if (type && (strcmp(type, "blob") == 0 || strcmp(type, "string") == 0)) {
            lua_pushlstring(L, m->payload, m->payload_len);
            return 1;
        }
        push_event_document(L, op, m);
        fo_xml_value(L, op, ref, shape, lua_gettop(L));
        return 1;
    }
    push_event_document(L, op, m);
    fo_xml_structure(L, op, shape, lua_gettop(L));
    return 1;
}

/* Pushes the list of the events of the stream body[0..len) for the stream shape at `stream`. */
static void parse_event_stream(lua_State *L, const fo_op *op, const char *body, size_t len,
                               int stream)
{
    lua_newtable(L);
    int events = lua_gettop(L);
    lua_Integer count = 0;
    size_t pos = 0;
    fo_es_message m;
    while (fo_es_next(L, op, body, len, &pos, &m)) {
        int headers = lua_gettop(L);
        const char *etype = fo_es_event_type(L, op, headers, &m);
        if (etype) {
            fo_es_push_event(L, op, stream, headers, etype, &m, read_event_payload);
            lua_rawseti(L, events, ++count);
        }
        lua_settop(L, events);
    }
}

void fo_restxml_parse(lua_State *L, const fo_op *op, int resp)
{
    lua_newtable(L);
    int out = lua_gettop(L);
    if (!op->output)
        return;
    fo_shape_push(L, op->shapes, op->output);
    int shape = lua_gettop(L);
    lua_getfield(L, resp, "body");
    size_t len = 0;
    const char *body = lua_tolstring(L, -1, &len);
    if (!body)
        len = 0;
    parse_located(L, op, shape, resp, out);
    fo_restxml_body(L, op, shape, body, len, out);
    lua_settop(L, out);
}

void fo_restxml_body(lua_State *L, const fo_op *op, int shape, const char *body, size_t len,
                     int out)
{
    int top = lua_gettop(L);
    if (!body)
        len = 0;
    const char *payload = fo_field_str(L, shape, "payload");
    if (payload) {
        if (lua_getfield(L, shape, "members") != LUA_TTABLE ||
            lua_getfield(L, -1, payload) != LUA_TTABLE)
            luaL_error(L, "%s.%s: the model's payload member '%s' is missing", op->service,
                       op->name, payload);
        int pref = lua_gettop(L);
        fo_shape_push(L, op->shapes, pref);
        int pshape = lua_gettop(L);
        const char *type = fo_field_str(L, pshape, "type");
        if (fo_trait_bool(L, pref, pshape, "eventstream")) {
            parse_event_stream(L, op, body ? body : "", len, pshape);
            lua_setfield(L, out, payload);
        } else if (type && (strcmp(type, "string") == 0 || strcmp(type, "blob") == 0)) {
            if (len > 0) { /* the raw body */
                lua_pushlstring(L, body, len);
                lua_setfield(L, out, payload);
            }
        } else if (len > 0 && !blank(body, len)) {
            fo_xml_body(L, op, body, len);
            fo_xml_value(L, op, pref, pshape, lua_gettop(L));
            lua_setfield(L, out, payload);
        }
    } else if (len > 0 && !blank(body, len)) {
        fo_xml_body(L, op, body, len);
        fo_xml_structure(L, op, shape, lua_gettop(L));
        fo_merge_into(L, out);
    }
    lua_settop(L, top);
}

void fo_restxml_parse_error(lua_State *L, const fo_op *op, int resp)
{
    int status = (int)fo_field_num(L, resp, "status", 0);
    lua_getfield(L, resp, "body");
    size_t len = 0;
    const char *body = lua_tolstring(L, -1, &len);
    int headers = lua_getfield(L, resp, "headers") == LUA_TTABLE ? lua_gettop(L) : 0;
    lua_createtable(L, 0, 5);
    int out = lua_gettop(L);
    lua_newtable(L);
    int fields = lua_gettop(L);
    lua_pushvalue(L, fields);
    lua_setfield(L, out, "fields");
    int root;
    int err = fo_xml_error_element(L, body, len, 0, &root);
    if (err) {
        fo_xml_error_fields(L, err, out);
        if (fo_xml_child_text(L, root, "RequestId") || fo_xml_child_text(L, err, "RequestId"))
            lua_setfield(L, out, "request_id");
    }
    const char *code = fo_field_str(L, out, "code");
    if (code && *code && fo_error_shape(L, op, code)) {
        int eshape = lua_gettop(L);
        parse_located(L, op, eshape, resp, fields);
        fo_xml_structure(L, op, eshape, err);
        fo_merge_into(L, fields);
        lua_settop(L, eshape - 1);
    }
    fo_xml_error_status(L, out, status);
    if (!fo_field_str(L, out, "request_id") && (push_header(L, headers, "x-amz-request-id") ||
                                                push_header(L, headers, "x-amzn-requestid")))
        lua_setfield(L, out, "request_id");
    lua_settop(L, out);
}
