/* The response side shared by the XML protocols (ec2, query, rest-xml): XML documents
 * read with fo's one XML reader (src/xml/xml.c) and walked along the output shapes with
 * botocore's rules (parsers.py, BaseXMLResponseParser). Internal to src/aws/proto. */
#ifndef FO_AWS_PROTO_XMLSHAPE_H
#define FO_AWS_PROTO_XMLSHAPE_H

#include "proto.h"

/* A serialization trait of a member: the member reference first, then its shape (botocore
 * merges the two the same way). `ref` or `shape` may be 0. NULL when absent. */
const char *fo_trait_str(lua_State *L, int ref, int shape, const char *key);
int fo_trait_bool(lua_State *L, int ref, int shape, const char *key);

/* Pushes the root element of a response body; a malformed body raises
 * "svc.Op: malformed XML response: <expat message> at line N". */
void fo_xml_body(lua_State *L, const fo_op *op, const char *body, size_t len);
/* Same, but returns -1 (pushing nothing) on a malformed body. */
int fo_xml_body_try(lua_State *L, const char *body, size_t len);

/* Pushes the Lua value of the element at `node` for the member reference `ref` whose
 * shape is at `shape`. For flattened lists and maps `node` may be an array of elements
 * (every occurrence). Raises "svc.Op: ..." on a value that does not fit the shape. */
void fo_xml_value(lua_State *L, const fo_op *op, int ref, int shape, int node);
/* Pushes the structure `shape` read from the children (and attributes) of `node`;
 * members bound elsewhere (location = header, statusCode, ...) are left out. */
void fo_xml_structure(lua_State *L, const fo_op *op, int shape, int node);
/* Pushes a scalar of shape `shape` read from text (headers, element text). */
void fo_xml_scalar(lua_State *L, const fo_op *op, int ref, int shape, const char *text, size_t len);

/* The element name of the structure member `member` (reference `ref`, shape `mshape`), as
 * botocore's _member_key_name: a flattened list's items are named by the list member's
 * locationName, anything else by the member's locationName or its name. */
const char *fo_xml_member_name(lua_State *L, const fo_op *op, int ref, int mshape,
                               const char *member);

/* Pushes the value of a header (or of a request's URI label or query parameter) for the
 * member `ref`/`shape` (restxml_parse.c): lists comma-separated ("a, b"; RFC 822 dates
 * keep their comma), jsonvalue strings base64 JSON, scalars as fo_xml_scalar reads them. */
void fo_restxml_header_value(lua_State *L, const fo_op *op, int ref, int shape, const char *text,
                             size_t len);

/* The wire name of a member (or map key/value) reference in a query/ec2 form (query.c):
 * query: locationName, else dflt; ec2: queryName, else locationName with its first letter
 * capitalized (written into tmp), else dflt. */
const char *fo_query_name(lua_State *L, int ref, int shape, const char *dflt, int ec2, char *tmp,
                          size_t tmpsize);

/* Reads a rest-xml body into out (restxml_parse.c): the payload member (an event stream, the
 * raw bytes of a blob or string, else the XML document read as that member) or the XML
 * document read as the structure `shape`. A malformed document raises "svc.Op: malformed
 * XML response: ...". */
void fo_restxml_body(lua_State *L, const fo_op *op, int shape, const char *body, size_t len,
                     int out);

/* Element helpers on fo.xml trees. */
const char *fo_xml_name(lua_State *L, int node);
/* Pushes the first child element named `name`; returns 0 (nothing pushed) if none. */
int fo_xml_child(lua_State *L, int node, const char *name);
/* Pushes the text of the element (its text runs joined; "" when empty). */
void fo_xml_text(lua_State *L, int node);
/* Text of the child `name` as a Lua string pushed, or nothing (returns 0). */
int fo_xml_child_text(lua_State *L, int node, const char *name);

/* The <Error> element of an XML error body (ec2, query and rest-xml share the search): the
 * root itself (S3), else the root's <Error> child, else with in_errors the first <Error> of
 * the root's <Errors> (EC2's <Response><Errors><Error>). Pushes the parsed root (*root its
 * index; 0, nothing pushed, for an empty or malformed body) and the elements walked; returns
 * the index of the <Error> element, or 0 when there is none. */
int fo_xml_error_element(lua_State *L, const char *body, size_t len, int in_errors, int *root);
/* Sets out.code, out.message and out.type from the texts of the Code, Message and Type
 * children of the <Error> element at err (those it has). */
void fo_xml_error_fields(lua_State *L, int err, int out);
/* An XML error whose body gave no Code (none, or not XML): out.code becomes the HTTP status
 * ("503") and out.message, when it has none, the status's reason phrase. */
void fo_xml_error_status(lua_State *L, int out, int status);

/* Pushes the shape modelling the error `code` (shapes[code] when it is an exception, or
 * the exception whose error.code is `code`); returns 0 (nothing pushed) if none. */
int fo_error_shape(lua_State *L, const fo_op *op, const char *code);

/* The reason phrase of an HTTP status ("Not Found"), "" if unknown. */
const char *fo_http_reason(int status);

#endif
