/* The one XML reader of fo (libexpat), as a C entry for native code such as the AWS
 * protocol codecs. Same rules as fo.xml.decode: no DTDs (so no entity expansion),
 * bounded nesting, namespace prefixes stripped from element names. Also the escaping of
 * xml.escape, one character at a time, for writers. */
#ifndef FO_XML_H
#define FO_XML_H

#include <lua.h>
#include <stddef.h>

/* Default nesting limit of a parsed document. */
#define FO_XML_MAX_DEPTH 256

/* Why a document was refused: expat's message (or fo's: DTD, depth, no root) and where. */
typedef struct fo_xml_error {
    char message[128];
    unsigned long line, column;
} fo_xml_error;

/* Parses s[0..len) into a Lua tree (root element {name=, attr=?, [i] = child element or
 * text}) and pushes it; max_depth <= 0 means FO_XML_MAX_DEPTH. Returns 0, or -1 with err
 * filled and nothing pushed for a malformed document, one with a DTD, or one nested too
 * deeply. Raises a Lua error only when out of memory (nothing leaks). */
int fo_xml_parse(lua_State *L, const char *s, size_t len, int max_depth, fo_xml_error *err);

/* The entity or character reference that replaces c in escaped XML text and attribute
 * values (& < > " ' as entities, \r and \n as character references, so a parser gives
 * back exactly the same text), or NULL when c is written as is. */
const char *fo_xml_entity(char c);

#endif
