/* The server side of the protocol codecs (fo.awsproto.parse_request, serialize_response,
 * serialize_error, validate_output), for the embedded AWS simulator (docs/simulator.md,
 * "Server-side codecs"). The mirror image of the client side: a request as fo's client
 * (or botocore, or the AWS CLI) sends it is read back into the operation's params, and an
 * output or error is written as AWS writes it, so that fo.awsproto.parse/parse_error and
 * botocore read it back.
 *
 * A request that cannot be read raises a Lua TABLE {code=, message=, status=} with the code
 * AWS answers (fo_request_error); problems of the model or of the caller's Lua values raise
 * a string, like the client side. Headers of requests and responses are lower-case. */
#ifndef FO_AWS_PROTO_SERVER_H
#define FO_AWS_PROTO_SERVER_H

#include "proto.h"

/* ---- errors of requests */

/* Raises the table {code=, message=, status=}; the message is formatted as lua_pushfstring
 * does. Never returns. */
int fo_request_error(lua_State *L, int status, const char *code, const char *fmt, ...);

/* What a reader sets before calling a shared decoder (json_read.c, xml_shape.c) that raises
 * a string error on a bad value: the request error that string becomes (see
 * fo_request_protect in proto_lua.c). code NULL: string errors stay strings. */
typedef struct fo_request_ctx {
    const char *code;
    int status;
    const char *what; /* "malformed JSON body", ... (prefixed to the decoder's message) */
} fo_request_ctx;

/* Percent-decodes s[0..n) into b ('+' as a space when plus_space); returns -1 on a bad
 * escape. */
int fo_uri_decode(lua_State *L, fo_buf *b, const char *s, size_t n, int plus_space);

/* Decodes the next pair "key=value" of form or query text s[0..n) at *pos into k and v
 * (percent-decoded, '+' a space; "key" alone has an empty value) and moves *pos past it.
 * Returns 1, 0 at the end, -1 on a bad %-escape. */
int fo_form_pair(lua_State *L, const char *s, size_t n, size_t *pos, fo_buf *k, fo_buf *v);

/* ---- checks shared with validate.c */
enum {
    FO_CHECK_UNKNOWN = 1,  /* members the model does not have */
    FO_CHECK_REQUIRED = 2, /* required members; unions with exactly one member */
    FO_CHECK_ENUM = 4,
    FO_CHECK_RANGES = 8, /* min/max: lengths, sizes, values */
    FO_CHECK_ALL = 15
};
/* Checks the value at `value` against the shape reference `ref` (0: the value must be nil or
 * an empty table): types always, the rest as `what` says. Returns the number of problems
 * and, when there are some, pushes "Path: problem; Path: problem" (at most ten). */
int fo_check_value(lua_State *L, const fo_op *op, int ref, int value, unsigned what);

/* Fields of an error table every protocol reads: status (default 400), type (default
 * Sender for 4xx, Receiver for 5xx), code (required), message (default ""). */
typedef struct fo_err_info {
    int status;
    const char *code, *message, *type;
    int fields; /* absolute index of err.fields (a table), 0 when absent */
} fo_err_info;
void fo_err_info_get(lua_State *L, int err, fo_err_info *e);
/* Pushes a copy of the error's fields without a member named message/Message (the message
 * travels in the protocol's own field); returns how many it has. */
int fo_err_fields(lua_State *L, const fo_err_info *e);
/* Pushes a shape reference {shape = name} to the model's error shape for code (a structure
 * named so, or the one whose error.code is code); raises when there is none (fields given for
 * an error the model does not have). */
void fo_error_ref(lua_State *L, const fo_op *op, const char *code);

/* Pushes an error code's __type for the JSON-shaped protocols (json, smithy-rpc-v2-cbor):
 * the request framework's own errors in com.amazon.coral.service (ValidationException in
 * com.amazon.coral.validate), the service's in com.amazonaws.<endpointPrefix>. */
void fo_push_error_type(lua_State *L, const fo_op *op, const char *code);
/* A service that moved from query (metadata.awsQueryCompatible) also answers the query
 * error code, for clients in query mode: headers[x-amzn-query-error] = "Code;Type".
 * `headers` is the response's headers table (absolute index); no stack change. */
void fo_query_error_header(lua_State *L, const fo_op *op, const fo_err_info *e, int headers);

/* ---- the XML of responses (server_xml.c), shared by ec2, query and rest-xml */
typedef struct fo_xw {
    lua_State *L;
    const fo_op *op;
    fo_buf *b;    /* the document */
    fo_buf *path; /* member path for error messages: "Vpcs[1].Tags[2].Key" */
    int ec2;      /* list items are <item> unless the model names them */
    int depth;
} fo_xw;

/* Starts a writer (pushes its two buffers). */
void fo_xw_init(fo_xw *w, lua_State *L, const fo_op *op, int ec2);
/* The namespace of a member reference / shape (xmlNamespace: a uri string or {uri=,
 * prefix=}); NULL when none. *prefix is set to the prefix or NULL. */
const char *fo_xml_namespace(lua_State *L, int ref, int shape, const char **prefix);
/* Writes the elements of the structure value at `value` (shape at `shape`), body members
 * only (members with a location are the caller's), in the model's member order; members
 * that are xmlAttribute are written by fo_xw_attributes. Raises on unknown members and on
 * values that do not fit their shape. */
void fo_xw_members(fo_xw *w, int shape, int value);
/* Writes ` name="text"` for the xmlAttribute members of the structure value. */
void fo_xw_attributes(fo_xw *w, int shape, int value);
/* Writes the scalar at `value` as the text of an element or header: booleans true/false,
 * numbers (floats as Python's repr, NaN/Infinity by name), timestamps in the member's
 * timestampFormat else `dflt`, blobs in base64, strings as they are (unescaped). */
void fo_xw_scalar_text(fo_xw *w, fo_buf *out, int ref, int shape, int value,
                       enum fo_ts_format dflt);
/* Writes <name>escaped text</name>. */
void fo_xml_element(lua_State *L, fo_buf *b, const char *name, const char *text);
/* Writes the <Type/> (with_type), <Code/> and <Message/> of an error and its modelled fields
 * (err.fields, written along the model's error shape for the code; a member named
 * message/Message is left out: the message is <Message>). Raises when there are fields and
 * the model has no such error. */
void fo_xml_error_body(fo_xw *w, const fo_err_info *e, int with_type);
/* Writes the XML declaration and `<name xmlns="ns"` (no '>' yet; no xmlns when ns is NULL). */
void fo_xml_root(lua_State *L, fo_buf *b, const char *name, const char *ns);
/* Writes the error document of query and rest-xml: <ErrorResponse xmlns=ns><Error><Type/>
 * <Code/><Message/>fields</Error><RequestId/></ErrorResponse>. */
void fo_xml_error_response(fo_xw *w, const fo_err_info *e, const char *ns, const char *rid);
/* Raises "svc.Op (output): Path: message". */
int fo_xw_fail(fo_xw *w, const char *fmt, ...);

/* ---- one entry point per protocol and job (absolute indices; each pushes its result) */
/* parse_request: pushes the params; op is filled in (the operation the request names). */
void fo_query_parse_request(lua_State *L, fo_op *op, int req, int ec2, fo_request_ctx *ctx);
void fo_json_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx);
void fo_restxml_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx);
void fo_rpcv2cbor_parse_request(lua_State *L, fo_op *op, int req, fo_request_ctx *ctx);
/* serialize_response: pushes {status=, headers=, body=}. */
void fo_query_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid,
                                 int ec2);
void fo_json_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid);
void fo_restxml_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid);
void fo_rpcv2cbor_serialize_response(lua_State *L, const fo_op *op, int output, const char *rid);
/* serialize_error: err = {code=, message=, status=, type=, fields=}; op->op is 0 when the
 * operation is unknown. Pushes {status=, headers=, body=}. */
void fo_query_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid, int ec2);
void fo_json_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid);
void fo_restxml_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid);
void fo_rpcv2cbor_serialize_error(lua_State *L, const fo_op *op, int err, const char *rid);

/* Pops the body (a string on the stack top) and pushes the response {status=, headers=,
 * body=} with the headers content-type and x-amzn-requestid (when rid is not NULL); a NULL
 * content_type is left out. */
void fo_response_new(lua_State *L, int status, const char *content_type, const char *rid);

#endif
