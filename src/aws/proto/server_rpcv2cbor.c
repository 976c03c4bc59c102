/* Protocol smithy-rpc-v2-cbor, the server side: requests read back into params, responses
 * and errors written as the Smithy RPC v2 CBOR services write them.
 *
 * Requests: POST /service/<metadata.targetPrefix>/operation/<Operation> names the
 * operation (the header smithy-protocol: rpc-v2-cbor is the caller's to check); the body is
 * a CBOR map read along the input shape (cbor.c, rpcv2cbor.c: unknown members dropped) and
 * its types then checked against the model. An empty body is {}. Errors:
 *   UnknownOperationException 404  a path that names no operation of this service
 *   SerializationException 400     a body that is not CBOR, or a value of the wrong type
 *
 * Responses: 200, Content-Type application/cbor, smithy-protocol: rpc-v2-cbor,
 * x-amzn-RequestId; the body is the output in CBOR ({} without output).
 * Errors: a CBOR map {__type = "<namespace>#<Code>", message = ..., modelled fields}; a
 * service marked awsQueryCompatible adds the header x-amzn-query-error: <Code>;<Sender|
 * Receiver>, from which clients take the query protocol's error code. */
#include "cbor.h"
#include "server.h"

#include <lauxlib.h>
#include <string.h>

static void find_operation(lua_State *L, fo_op *op, int req)
{
    lua_getfield(L, op->model, "metadata");
    const char *prefix = lua_istable(L, -1) ? fo_field_str(L, -1, "targetPrefix") : NULL;
    lua_pop(L, 1);
    const char *path = lua_getfield(L, req, "path") == LUA_TSTRING ? lua_tostring(L, -1) : "";
    static const char svc[] = "/service/", opn[] = "/operation/";
    size_t plen = prefix ? strlen(prefix) : 0;
    const char *name = NULL;
    if (prefix && strncmp(path, svc, sizeof svc - 1) == 0 &&
        strncmp(path + sizeof svc - 1, prefix, plen) == 0 &&
        strncmp(path + sizeof svc - 1 + plen, opn, sizeof opn - 1) == 0)
        name = path + sizeof svc - 1 + plen + sizeof opn - 1;
    if (!name || !*name || strchr(name, '/'))
        fo_request_error(L, 404, "UnknownOperationException", "%s does not name an operation of %s",
                         path, op->service);
    lua_getfield(L, op->model, "operations");
    if (lua_getfield(L, -1, name) != LUA_TTABLE)
        fo_request_error(L, 404, "UnknownOperationException", "%s does not name an operation of %s",
                         path, op->service);
    fo_op_bind(L, op, name); /* the name is anchored by the request */
}

void fo_rpcv2cbor_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx)
{
    find_operation(L, op, req);
    lua_getfield(L, req, "body");
    size_t n = 0;
    const char *body = lua_tolstring(L, -1, &n);
    ctx->code = "SerializationException";
    ctx->status = 400;
    ctx->what = "malformed CBOR body";
    int got = body && fo_cbor_decode(L, op, body, n);
    if (got && !lua_istable(L, -1))
        fo_request_error(L, 400, "SerializationException", "the body must be a CBOR map, got %s",
                         luaL_typename(L, -1));
    if (got && op->input) {
        fo_shape_push(L, op->shapes, op->input);
        fo_cbor_shape(L, op, lua_gettop(L), lua_gettop(L) - 1);
    }
    ctx->code = NULL;
    if (!got)
        lua_newtable(L);
    int params = lua_gettop(L);
    if (op->input && fo_check_value(L, op, op->input, params, 0) > 0)
        fo_request_error(L, 400, "SerializationException", "%s", lua_tostring(L, -1));
    lua_settop(L, params);
}

static void protocol_headers(lua_State *L)
{
    lua_getfield(L, -1, "headers");
    lua_pushliteral(L, "rpc-v2-cbor");
    lua_setfield(L, -2, "smithy-protocol");
    lua_pop(L, 1);
}

void fo_rpcv2cbor_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid)
{
    fo_cbor_encode(L, op, op->output, output, 1);
    fo_response_new(L, 200, "application/cbor", rid);
    protocol_headers(L);
}

void fo_rpcv2cbor_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid)
{
    int top = lua_gettop(L);
    fo_err_info e;
    fo_err_info_get(L, err, &e);
    fo_buf *b = fo_buf_new(L);
    fo_buf_addc(L, b, (char)0xbf); /* a map of indefinite length: the fields join it */
    fo_cbor_text(L, b, "__type", 6);
    fo_push_error_type(L, op, e.code);
    fo_cbor_text(L, b, lua_tostring(L, -1), lua_rawlen(L, -1));
    fo_cbor_text(L, b, "message", 7);
    fo_cbor_text(L, b, e.message, strlen(e.message));
    int fields = lua_gettop(L) + 1;
    if (fo_err_fields(L, &e) > 0) {
        fo_error_ref(L, op, e.code);
        fo_cbor_encode(L, op, lua_gettop(L), fields, 1);
        size_t n;
        const unsigned char *doc = (const unsigned char *)lua_tolstring(L, -1, &n);
        unsigned ai = n ? doc[0] & 0x1f : 0;
        size_t head = ai < 24 ? 1 : ai == 24 ? 2 : ai == 25 ? 3 : ai == 26 ? 5 : 9;
        if (n > head) /* the map's entries, after its head */
            fo_buf_add(L, b, (const char *)doc + head, n - head);
    }
    fo_buf_addc(L, b, (char)0xff);
    fo_buf_push(L, b);
    fo_response_new(L, e.status, "application/cbor", rid);
    protocol_headers(L);
    lua_getfield(L, -1, "headers");
    fo_query_error_header(L, op, &e, lua_gettop(L));
    lua_pop(L, 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}
