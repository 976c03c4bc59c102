/* CBOR (RFC 8949), the data format of the smithy-rpc-v2-cbor protocol: the codec itself
 * (cbor.c), independent of any model, and the protocol's pieces that share it (rpcv2cbor.c,
 * server_rpcv2cbor.c). */
#ifndef FO_AWS_PROTO_CBOR_H
#define FO_AWS_PROTO_CBOR_H

#include "proto.h"

#include <stdint.h>

/* Arrays, maps and tags nest at most this deep (as JSON documents do, json.h). */
#define FO_CBOR_MAX_DEPTH 256

/* ---- decoding */

/* Decodes the single CBOR data item data[0..len) into a Lua value and pushes it:
 *   unsigned and negative integers → integer (outside the int64 range: a float), byte and
 *   text strings → string (text must be UTF-8), arrays → sequence, maps → table,
 *   tag 1 (epoch time) → its number (seconds), other tags → their content,
 *   false/true → boolean, half/single/double floats → number, null and undefined → nil.
 * Definite and indefinite lengths are read (indefinite strings as chunks of their own major
 * type). Null members of maps and null items of arrays are left out (a Lua table holds no
 * nil). Map keys must be strings or integers; a repeated key keeps the last value.
 * Returns 1 when a value was pushed, 0 when data is empty or the item is null (nothing
 * pushed). Bytes after the item, truncation, reserved additional information, a break
 * outside an indefinite item, a tag 1 on something other than a number and nesting beyond
 * FO_CBOR_MAX_DEPTH raise "svc.Op: malformed CBOR response: <what> at byte N". */
int fo_cbor_decode(lua_State *L, const fo_op *op, const char *data, size_t len);

/* ---- encoding: appends one head or scalar item to b */
void fo_cbor_head(lua_State *L, fo_buf *b, unsigned major, uint64_t n);
void fo_cbor_int(lua_State *L, fo_buf *b, int64_t v);
void fo_cbor_text(lua_State *L, fo_buf *b, const char *s, size_t n);
void fo_cbor_bytes(lua_State *L, fo_buf *b, const char *s, size_t n);
void fo_cbor_bool(lua_State *L, fo_buf *b, int v);
/* A float (single precision) or a double; NaN and the infinities as half-precision
 * 0x7e00 / 0x7c00 / 0xfc00, as botocore writes them. */
void fo_cbor_float(lua_State *L, fo_buf *b, double v, int single);
/* Tag 1 and the seconds: an integer when whole, else a double. */
void fo_cbor_epoch(lua_State *L, fo_buf *b, double seconds);

/* ---- the protocol, model-driven (rpcv2cbor.c) */

/* Pushes the CBOR of the value at `value` for the shape reference `ref` (absolute indices):
 * structures as maps keyed by member name (nil members left out), lists as arrays, maps,
 * strings and enums as text, blobs as byte strings, integers, float (single) and double,
 * booleans, timestamps as tag 1. Wrong Lua types raise "svc.Op: Path: ..." (with output:
 * "svc.Op (output): Path: ..."). */
void fo_cbor_encode(lua_State *L, const fo_op *op, int ref, int value, int output);

/* Converts the decoded value at `value` (fo_cbor_decode's) along the shape at `shape` and
 * pushes the result: members the model lacks are dropped, timestamps and numbers kept as
 * numbers, values of the wrong CBOR type raise "svc.Op: malformed CBOR response: Path: ...". */
void fo_cbor_shape(lua_State *L, const fo_op *op, int shape, int value);

#endif
