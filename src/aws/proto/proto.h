/* The AWS protocol codecs (fo.awsproto): shared pieces every protocol uses.
 *
 * The model is the Lua table of a service (lua/fo/aws/models/<svc>.json decoded):
 * {metadata=, operations=, shapes=}. Codecs walk it directly: a shape reference is a
 * table like {shape="Name", locationName=, flattened=, ...} and the shape itself is
 * shapes[Name]. Every function here that can fail raises a Lua error (never aborts).
 *
 * Lua values: structure = table keyed by member name, list = array, map = table,
 * string/enum = string, integer/long = integer, float/double = number, boolean,
 * timestamp = number of seconds since the epoch (fractions allowed; strings in ISO 8601
 * accepted on input), blob = raw Lua string (base64 on the wire). */
#ifndef FO_AWS_PROTO_H
#define FO_AWS_PROTO_H

#include <lua.h>
#include <stddef.h>

/* ---- growable byte buffer owned by a Lua userdata (freed by GC, so errors don't leak) */
typedef struct fo_buf {
    char *data;
    size_t len, cap;
} fo_buf;

fo_buf *fo_buf_new(lua_State *L); /* pushes the userdata holding it */
void fo_buf_add(lua_State *L, fo_buf *b, const char *p, size_t n);
void fo_buf_adds(lua_State *L, fo_buf *b, const char *s);
void fo_buf_addc(lua_State *L, fo_buf *b, char c);
void fo_buf_push(lua_State *L, const fo_buf *b); /* pushes the contents as a string */

/* ---- models */
/* Pushes shapes[ref.shape] for the shape reference table at `ref`; raises if missing. */
void fo_shape_push(lua_State *L, int shapes, int ref);
/* Pushes shapes[name]; raises if missing. */
void fo_shape_push_named(lua_State *L, int shapes, const char *name);
/* t[key] as a string or NULL; the string stays valid while t is alive. No stack change. */
const char *fo_field_str(lua_State *L, int t, const char *key);
int fo_field_bool(lua_State *L, int t, const char *key);
/* t[key] as a number; `dflt` when absent. */
double fo_field_num(lua_State *L, int t, const char *key, double dflt);

typedef struct fo_op fo_op;
/* Pushes a map shape's key reference, key shape, value reference and value shape (in that
 * order); raises "svc.Op: the model's map shape has no key" when the model lacks one. */
void fo_map_push(lua_State *L, const fo_op *op, int shape);

/* Walks a structure's members table (absolute index) as lua_next does, skipping entries that
 * are not name → reference: with the previous member name on top (nil to start), pushes the
 * name, its reference and its shape (shapes[ref.shape]) and returns 1, or returns 0 at the
 * end (the name popped). Leave the name on top (pop reference and shape) to go on. */
int fo_next_member(lua_State *L, int shapes, int members);

/* Copies the fields of the table on top into the table at `out` (absolute index, raw sets)
 * and pops it. */
void fo_merge_into(lua_State *L, int out);

/* resp.headers[name] for the response table at resp (name in lower case; header names that
 * differ only in case match too), or NULL. The string lives as long as resp. No stack change. */
const char *fo_resp_header(lua_State *L, int resp, const char *name);

/* Pushes a GC-owned array of the string keys of table t and points *keys at it: in the
 * order of the array of names at `order` (absolute index, 0 for none; e.g. a structure's
 * memberOrder from the model) with unlisted keys after them, else in name order. The
 * strings stay valid while t is alive and unchanged. Returns the count, or (size_t)-1 if
 * t has a key that is not a string (the array is pushed all the same). */
size_t fo_keys(lua_State *L, int t, int order, const char ***keys);

/* ---- timestamps (seconds since the epoch) */
enum fo_ts_format { FO_TS_ISO8601, FO_TS_RFC822, FO_TS_EPOCH };
/* "iso8601" | "rfc822" | "unixTimestamp" (NULL → dflt). */
enum fo_ts_format fo_ts_format_named(const char *name, enum fo_ts_format dflt);
/* Formats t into out (>= 64 bytes): ISO 8601 with milliseconds only when fractional,
 * RFC 822 "Sun, 02 Jan 2000 20:34:56 GMT", epoch as an integer or a decimal. */
void fo_ts_format(double t, enum fo_ts_format fmt, char *out, size_t size);
/* Parses any of the three forms; returns 0 on success. */
int fo_ts_parse(const char *s, double *out);
/* The Lua value at idx as a timestamp (number, or string parsed as above); 0 on success. */
int fo_ts_from_lua(lua_State *L, int idx, double *out);

/* ---- numbers */
/* A double as Python's repr writes it (botocore formats numbers with str()): the shortest
 * digits that read back the same, "1.0" for whole values, exponent form outside 1e-4..1e16,
 * "NaN", "Infinity", "-Infinity". out needs >= 32 bytes. */
void fo_format_double(double v, char *out, size_t size);

/* ---- base64 */
void fo_b64_encode(lua_State *L, fo_buf *b, const unsigned char *p, size_t n);
/* Decodes into b; returns 0 on success, -1 on bad input. */
int fo_b64_decode(lua_State *L, fo_buf *b, const char *s, size_t n);

/* ---- UTF-8 */
/* Length (1-4) of the well-formed UTF-8 sequence at p (n bytes available), or 0 when it is
 * not one: truncated, overlong, a surrogate (U+D800-DFFF) or beyond U+10FFFF. */
size_t fo_utf8_seq(const unsigned char *p, size_t n);

/* ---- XML text: & < > " ' \r \n escaped (fo_xml_entity), for element text and attributes */
void fo_xml_escape(lua_State *L, fo_buf *b, const char *s, size_t n);

/* ---- percent-encoding (RFC 3986 unreserved kept; '/' kept when keep_slash) */
void fo_uri_encode(lua_State *L, fo_buf *b, const char *s, size_t n, int keep_slash);

/* ---- one operation of a model, as the codecs see it (absolute stack indices) */
struct fo_op {
    int model;            /* the service model table */
    int shapes;           /* model.shapes */
    int op;               /* model.operations[name] */
    int input;            /* op.input (a shape reference table), 0 when the op has none */
    int output;           /* op.output, 0 when none */
    const char *name;     /* operation name, e.g. "CreateVpc" */
    const char *service;  /* model.name (fo's module name), e.g. "ec2"; "?" if absent */
    const char *protocol; /* "ec2" | "query" | "json" | "rest-xml" | "smithy-rpc-v2-cbor" */
};

/* Points op at the operation `name` whose table is on top of the stack (op->op) and pushes
 * its input and its output reference (op->input, op->output; 0 for one the operation has
 * not, a nil pushed all the same). `name` must outlive op. */
void fo_op_bind(lua_State *L, fo_op *op, const char *name);

/* ---- writers that walk the model (json, smithy-rpc-v2-cbor): the member path they are at,
 * so an error names it ("svc.Op: A.B[2].C: expected string, got number"). */
#define FO_WRITER_MAX_DEPTH 256
typedef struct fo_writer {
    lua_State *L;
    const fo_op *op;
    const char *what; /* "" for requests, " (output)" for the simulator's responses */
    fo_buf *b;
    int depth;
    struct {
        const char *name; /* member name or map key; NULL for a list index */
        lua_Integer index;
    } path[FO_WRITER_MAX_DEPTH + 2];
} fo_writer;

/* Pushes a writer (a userdata: its path is too large for the C stack) with a new buffer
 * (pushed after it) for `op`; `output` marks the simulator's responses. */
fo_writer *fo_writer_new(lua_State *L, const fo_op *op, int output);
/* Raises "svc.Op: A.B[2].C: msg" (just "svc.Op: msg" at the top). */
void fo_writer_fail(fo_writer *w, const char *msg);
/* Raises "...: expected <expected>, got <type of value v>". */
void fo_writer_fail_type(fo_writer *w, const char *expected, int v);
/* Enters member `name` (or list index `index` when name is NULL); the caller leaves with
 * w->depth--. Raises past FO_WRITER_MAX_DEPTH (a table that contains itself). */
void fo_writer_push(fo_writer *w, const char *name, lua_Integer index);

/* The value at v as an integer: a Lua integer, or a float with no fraction that fits.
 * Raises for a fraction, a float out of range, or any other type. */
lua_Integer fo_writer_integer(fo_writer *w, int v);

/* Pushes the reference shape[field] of a collection ("member" of a list, "value" of a map)
 * and the shape it names, and returns the reference's index. Raises "the model's <kind> has
 * no <field> shape" when the model lacks it. */
int fo_writer_element_shape(fo_writer *w, int shape, const char *kind, const char *field);

/* Enters member `name` of a structure (as fo_writer_push) and pushes its reference from the
 * structure's members table (absolute index; 0 when the shape has none); returns the
 * reference's index. Raises "unknown member" when the model has no such member. */
int fo_writer_member(fo_writer *w, int members, const char *name);

/* Each protocol implements three entry points; `params`/`resp` are absolute indices.
 *   serialize:   pushes {method=, path=, query=, headers={}, body=}
 *   parse:       pushes the output table (resp = {status=, headers={lower-case}, body=})
 *   parse_error: pushes {code=, message=, request_id=, type=, fields={}}
 * Malformed responses raise a Lua error naming the operation and the problem. */
void fo_query_serialize(lua_State *L, const fo_op *op, int params, int ec2);
void fo_query_parse(lua_State *L, const fo_op *op, int resp, int ec2);
void fo_query_parse_error(lua_State *L, const fo_op *op, int resp, int ec2);
void fo_json_serialize(lua_State *L, const fo_op *op, int params);
void fo_json_parse(lua_State *L, const fo_op *op, int resp);
void fo_json_parse_error(lua_State *L, const fo_op *op, int resp);
void fo_restxml_serialize(lua_State *L, const fo_op *op, int params);
void fo_restxml_parse(lua_State *L, const fo_op *op, int resp);
void fo_restxml_parse_error(lua_State *L, const fo_op *op, int resp);
void fo_rpcv2cbor_serialize(lua_State *L, const fo_op *op, int params);
void fo_rpcv2cbor_parse(lua_State *L, const fo_op *op, int resp);
void fo_rpcv2cbor_parse_error(lua_State *L, const fo_op *op, int resp);

/* The SDKs' parameter customizations (Route 53 ids): may replace the table at `params`
 * by a fixed copy. Applied before validate and serialize. */
void fo_customize_params(lua_State *L, const fo_op *op, int params);

/* Validation of params against the input shape; raises
 * "svc.Op: Member.Path: expected string, got number" (no position prefix). */
void fo_validate(lua_State *L, const fo_op *op, int params);

/* ---- AWS event streams (application/vnd.amazon.eventstream): the binary framing the
 * protocols share (eventstream.c). A stream is a run of messages, each
 *   total length (u32) | headers length (u32) | CRC-32 of the 8 bytes before |
 *   headers | payload | CRC-32 of all the bytes before,
 * big-endian, CRC-32 of IEEE 802.3; a header is name length (u8) | name | type (u8) |
 * value. Only the framing lives here: what a payload means is the protocol's. */
typedef struct fo_es_message {
    size_t at;           /* byte offset of the message in the stream */
    const char *payload; /* into the stream string (alive while that string is) */
    size_t payload_len;
    size_t payload_at; /* byte offset of the payload in the stream */
} fo_es_message;

/* Decodes the message at *pos of the stream s[0..n): checks both lengths and both
 * checksums, pushes its headers as a table {name = value} (booleans; integers for byte,
 * short, integer, long and timestamp, which is in milliseconds since the epoch; strings for
 * string, bytes and uuid), fills *m and moves *pos past the message. Returns 0 and pushes
 * nothing when *pos == n (the end). A malformed message raises the error of
 * fo_es_malformed. */
int fo_es_next(lua_State *L, const fo_op *op, const char *s, size_t n, size_t *pos,
               fo_es_message *m);
/* Raises "svc.Op: malformed event stream response: <what> at byte <at>". */
void fo_es_malformed(lua_State *L, const fo_op *op, size_t at, const char *what);
/* What the message with the headers table at `headers` is: its :event-type when it is an
 * event (:message-type "event"); NULL for any other message, which readers skip. An
 * exception message raises "svc.Op: event stream exception <:exception-type>: <payload,
 * at most 512 bytes>", an error message "svc.Op: event stream error <:error-code>:
 * <:error-message>". The string lives as long as the headers table. */
const char *fo_es_event_type(lua_State *L, const fo_op *op, int headers, const fo_es_message *m);
/* out[member] = headers[member] for the members of the event structure `shape` marked
 * eventheader that the headers table has; timestamps become seconds (ms / 1000), as botocore
 * does. Absolute indices; no stack change. */
void fo_es_header_members(lua_State *L, const fo_op *op, int shape, int headers, int out);
/* The event of type `name` of the stream shape at `stream`: pushes its shape and a new table
 * (the event's members) holding the message's header members (fo_es_header_members), and
 * returns the shape's index (the table is at index + 1); 0, with the stack as it was, when
 * the stream has no such event. */
int fo_es_event_shape(lua_State *L, const fo_op *op, int stream, int headers, const char *name);
/* The member of the event structure `shape` marked eventpayload: pushes its name and its
 * shape reference and returns 1; 0, pushing nothing, when the event has none (then the
 * whole payload is the event's document). */
int fo_es_payload_member(lua_State *L, int shape);
/* How a protocol reads the payload of an event (fo_es_push_event). With `ref` (the event's
 * payload member: its reference; its shape at `shape`) it pushes that member's value; with
 * ref 0 (no payload member: the payload is the event's document) it pushes the table of the
 * members the document holds, `shape` the event's structure. Returns 1, or 0 pushing
 * nothing when there is no value. */
typedef int (*fo_es_read)(lua_State *L, const fo_op *op, const fo_es_message *m, int ref,
                          int shape);
/* One event of type `name` (message m, headers table at `headers`) of the stream shape at
 * `stream`: pushes {name = {header members and what `read` made of the payload}}, or {} when
 * the stream has no such event. The JSON and XML protocols differ only in `read`. */
void fo_es_push_event(lua_State *L, const fo_op *op, int stream, int headers, const char *name,
                      const fo_es_message *m, fo_es_read read);

#endif
