/* Protocol json (1.0 and 1.1), the server side (DynamoDB, SSM): requests read back into
 * params, responses and error documents as the JSON services write them.
 *
 * Requests: X-Amz-Target "<metadata.targetPrefix>.<Operation>" names the operation; the
 * body is read with fo's JSON reader along the input shape (json_read.c: unknown members
 * skipped, timestamps to seconds, blobs from base64) and its types then checked against the
 * model (validate.c's checker, types only: a number where a string belongs, ...). An empty
 * body is {}. Errors (the Coral framework's codes, as DynamoDB answers them):
 *   UnknownOperationException 400  no X-Amz-Target, another service's prefix, or an
 *                                  operation the model does not have
 *   SerializationException 400     a body that is not JSON, or a value of the wrong type
 *
 * Responses: 200, Content-Type application/x-amz-json-<jsonVersion>, x-amzn-RequestId; the
 * body is the output written as requests are (json_write.c), "{}" without output.
 * Errors: {"__type": "<namespace>#<Code>", "message": ..., modelled fields}, with the
 * header x-amzn-ErrorType: <Code>. The namespace is com.amazon.coral.service for the
 * framework's own errors (UnknownOperationException, SerializationException, ...;
 * com.amazon.coral.validate for ValidationException), else com.amazonaws.<endpointPrefix>.
 * Clients take what follows the '#' (botocore, fo's parse_error). A service marked
 * awsQueryCompatible (one that moved from the query protocol) adds the header
 * x-amzn-query-error: <Code>;<Sender|Receiver>, the code its query clients know. */
#include "json.h"
#include "server.h"
#include "xmlshape.h"

#include <lauxlib.h>
#include <string.h>
#include <strings.h>

/* The operation named by X-Amz-Target: fills op (lookups left on the stack). */
static void find_operation(lua_State *L, fo_op *op, int req)
{
    lua_getfield(L, op->model, "metadata");
    const char *prefix = lua_istable(L, -1) ? fo_field_str(L, -1, "targetPrefix") : NULL;
    lua_pop(L, 1);
    const char *target = fo_resp_header(L, req, "x-amz-target");
    if (!target)
        fo_request_error(L, 400, "UnknownOperationException",
                         "The request has no X-Amz-Target header naming the operation");
    const char *dot = strrchr(target, '.');
    size_t plen = prefix ? strlen(prefix) : 0;
    if (!dot || !prefix || (size_t)(dot - target) != plen || strncmp(target, prefix, plen) != 0)
        fo_request_error(L, 400, "UnknownOperationException",
                         "X-Amz-Target %s does not name an operation of %s", target, op->service);
    lua_getfield(L, op->model, "operations");
    if (lua_getfield(L, -1, dot + 1) != LUA_TTABLE)
        fo_request_error(L, 400, "UnknownOperationException",
                         "X-Amz-Target %s does not name an operation of %s", target, op->service);
    fo_op_bind(L, op, dot + 1); /* the name is anchored by the request */
}

void fo_json_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx)
{
    find_operation(L, op, req);
    lua_getfield(L, req, "body");
    size_t n = 0;
    const char *body = lua_tolstring(L, -1, &n);
    int shape = 0;
    if (op->input) {
        fo_shape_push(L, op->shapes, op->input);
        shape = lua_gettop(L);
    }
    ctx->code = "SerializationException";
    ctx->status = 400;
    ctx->what = "malformed JSON body";
    int got = body && fo_json_decode(L, op, body, n, 0, shape);
    ctx->code = NULL;
    if (!got)
        lua_newtable(L);
    int params = lua_gettop(L);
    if (!lua_istable(L, params))
        fo_request_error(L, 400, "SerializationException", "the body must be a JSON object, got %s",
                         luaL_typename(L, params));
    if (op->input && fo_check_value(L, op, op->input, params, 0) > 0)
        fo_request_error(L, 400, "SerializationException", "%s", lua_tostring(L, -1));
    lua_settop(L, params);
}

static const char *json_content_type(lua_State *L, const fo_op *op)
{
    lua_getfield(L, op->model, "metadata");
    const char *version = lua_istable(L, -1) ? fo_field_str(L, -1, "jsonVersion") : NULL;
    lua_pop(L, 1);
    lua_pushfstring(L, "application/x-amz-json-%s", version ? version : "1.0");
    return lua_tostring(L, -1); /* left on the stack */
}

void fo_json_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid)
{
    int top = lua_gettop(L);
    const char *ctype = json_content_type(L, op);
    fo_json_encode(L, op, op->output, output, 1);
    fo_response_new(L, 200, ctype, rid);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}

void fo_json_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid)
{
    int top = lua_gettop(L);
    fo_err_info e;
    fo_err_info_get(L, err, &e);
    const char *ctype = json_content_type(L, op);
    fo_buf *b = fo_buf_new(L);
    fo_buf_adds(L, b, "{\"__type\":");
    fo_push_error_type(L, op, e.code);
    fo_json_write_string(L, b, lua_tostring(L, -1), lua_rawlen(L, -1));
    fo_buf_adds(L, b, ",\"message\":");
    fo_json_write_string(L, b, e.message, strlen(e.message));
    /* the modelled fields, written along the error shape (the message is "message") */
    int fields = lua_gettop(L) + 1;
    int any = fo_err_fields(L, &e) > 0;
    if (any) {
        fo_error_ref(L, op, e.code);
        fo_json_encode(L, op, lua_gettop(L), fields, 1);
        size_t n;
        const char *doc = lua_tolstring(L, -1, &n); /* "{...}" */
        if (n > 2) {
            fo_buf_addc(L, b, ',');
            fo_buf_add(L, b, doc + 1, n - 2);
        }
    }
    fo_buf_addc(L, b, '}');
    fo_buf_push(L, b);
    fo_response_new(L, e.status, ctype, rid);
    lua_getfield(L, -1, "headers");
    lua_pushstring(L, e.code);
    lua_setfield(L, -2, "x-amzn-errortype");
    fo_query_error_header(L, op, &e, lua_gettop(L));
    lua_pop(L, 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
}
