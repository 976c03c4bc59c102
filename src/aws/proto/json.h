/* Protocol json, private pieces shared by json.c (entry points), json_read.c (the JSON
 * parser) and json_write.c (the serializer). */
#ifndef FO_AWS_PROTO_JSON_H
#define FO_AWS_PROTO_JSON_H

#include "proto.h"

/* Objects and arrays nest at most this deep, in responses and in request parameters
 * (DynamoDB's own limit is 32 levels of attribute values, i.e. about 64 JSON levels). */
#define FO_JSON_MAX_DEPTH 256

/* What a shape is, for the JSON codec (type "structure" with document=true is a document,
 * which like an unknown or absent type is handled as plain JSON: FO_JT_GENERIC). */
enum fo_json_type {
    FO_JT_GENERIC,
    FO_JT_STRUCT,
    FO_JT_LIST,
    FO_JT_MAP,
    FO_JT_STRING,
    FO_JT_INT,
    FO_JT_FLOAT,
    FO_JT_BOOL,
    FO_JT_TS,
    FO_JT_BLOB
};
/* The type of the shape table at index shape (0 → FO_JT_GENERIC). */
enum fo_json_type fo_json_type_of(lua_State *L, int shape);

/* Decodes the JSON document data[0..len) (a well-formed RFC 8259 text, UTF-8) into a Lua
 * value and pushes it. With shape != 0 (absolute index of the shape table) the conversion follows
 * the model: see json_read.c. With shape 0 the value is converted generically (objects and arrays
 * to tables, null dropped). Returns 1 when a value was pushed, 0 when the document is empty (only
 * whitespace) or null (nothing pushed). Raises "svc.Op: malformed JSON response: <what> at byte N"
 * where N is the 0-based offset in the response body (`base` is the offset of data in it). */
int fo_json_decode(lua_State *L, const fo_op *op, const char *data, size_t len, size_t base,
                   int shape);

/* Pushes the JSON text of the value at `value` for the shape reference `ref` ("{}" when ref
 * is 0), as requests are written (json_write.c): member locationNames, timestamps in epoch
 * seconds unless the model says otherwise, blobs in base64, NaN/Infinity as strings. Wrong
 * Lua types raise "svc.Op: Path: ..." (with output: "svc.Op (output): Path: ..."). */
void fo_json_encode(lua_State *L, const fo_op *op, int ref, int value, int output);

/* Appends s[0..n) as a JSON string (quoted, escaped); raises when s is not UTF-8. */
void fo_json_write_string(lua_State *L, fo_buf *b, const char *s, size_t n);

/* A decoder of error documents for fo_rpc_parse_error: pushes the document s[0..n) decoded
 * (shape 0: generically, else along the shape at that absolute index) and returns 1, or
 * returns 0 (nothing pushed) when it is empty; raises on a malformed document. */
typedef int (*fo_doc_decoder)(lua_State *L, const fo_op *op, const char *s, size_t n, int shape);

/* parse_error of the RPC protocols whose errors are a document with __type and message
 * (json, smithy-rpc-v2-cbor), the document read with `decode` (see json.c). */
void fo_rpc_parse_error(lua_State *L, const fo_op *op, int resp, fo_doc_decoder decode);

#endif
