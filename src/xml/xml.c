/* fo.xml: XML documents to Lua trees with libexpat, and text escaping for writers.
 * The shape-driven AWS codecs walk these trees; they never see raw XML. */
#include "fo/runtime.h"
#include "fo/xml.h"

#include <expat.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

/* A parse in progress: the Lua stack holds the open elements, innermost on top. */
struct parse {
    lua_State *L;
    XML_Parser parser;
    int depth;
    int max_depth;
    const char *error;
};

/* Strips a namespace prefix ("ns:Tag" → "Tag"); AWS documents rarely use them, and the
 * codecs match on local names. */
static const char *local_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct parse *p = ud;
    lua_State *L = p->L;
    if (p->error)
        return;
    if (++p->depth > p->max_depth || !lua_checkstack(L, 8)) {
        p->error = "document nested too deeply";
        XML_StopParser(p->parser, XML_FALSE);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, local_name(name));
    lua_setfield(L, -2, "name");
    if (attrs[0]) {
        lua_newtable(L);
        for (int i = 0; attrs[i]; i += 2) {
            lua_pushstring(L, attrs[i + 1]);
            lua_setfield(L, -2, attrs[i]);
        }
        lua_setfield(L, -2, "attr");
    }
}

/* Appends a child (element or text run) to the element below the top of the stack. */
static void append_child(lua_State *L)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, -2);
    lua_rawseti(L, -2, n + 1);
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    struct parse *p = ud;
    if (p->error)
        return;
    p->depth--;
    if (p->depth > 0)
        append_child(p->L);
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *p = ud;
    lua_State *L = p->L;
    if (p->error || p->depth == 0)
        return;
    /* Expat may split one text run into pieces: merge with a preceding text child. */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    if (n > 0 && lua_rawgeti(L, -1, n) == LUA_TSTRING) {
        lua_pushlstring(L, s, (size_t)len);
        lua_concat(L, 2);
        lua_rawseti(L, -2, n);
        return;
    }
    if (n > 0)
        lua_pop(L, 1);
    lua_pushlstring(L, s, (size_t)len);
    append_child(L);
}

/* AWS never sends a DTD; refusing them rules out entity-expansion tricks entirely. */
static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    struct parse *p = ud;
    p->error = "DTDs are not allowed";
    XML_StopParser(p->parser, XML_FALSE);
}

#define PARSER_MT "fo.xml.parser"

/* The expat parser lives in a userdata so that a Lua error raised while building the tree
 * (out of memory) cannot leak it: the GC frees it. */
static int parser_gc(lua_State *L)
{
    XML_Parser *pp = luaL_checkudata(L, 1, PARSER_MT);
    if (*pp) {
        XML_ParserFree(*pp);
        *pp = NULL;
    }
    return 0;
}

int fo_xml_parse(lua_State *L, const char *s, size_t len, int max_depth, fo_xml_error *err)
{
    luaL_checkstack(L, 16, "fo.xml: document too deep");
    XML_Parser *pp = lua_newuserdatauv(L, sizeof *pp, 0);
    *pp = NULL;
    if (luaL_newmetatable(L, PARSER_MT)) {
        lua_pushcfunction(L, parser_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    int base = lua_gettop(L); /* the parser userdata; the tree is built above it */
    struct parse p = {.L = L, .max_depth = max_depth > 0 ? max_depth : FO_XML_MAX_DEPTH};
    p.parser = *pp = XML_ParserCreate("UTF-8");
    if (!p.parser)
        return luaL_error(L, "fo.xml: out of memory");
    XML_SetUserData(p.parser, &p);
    XML_SetElementHandler(p.parser, on_start, on_end);
    XML_SetCharacterDataHandler(p.parser, on_text);
    XML_SetParamEntityParsing(p.parser, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetStartDoctypeDeclHandler(p.parser, on_doctype);
    /* expat takes int lengths: feed big documents in pieces */
    enum XML_Status st = XML_STATUS_OK;
    do {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        st = XML_Parse(p.parser, s, (int)chunk, chunk == len ? XML_TRUE : XML_FALSE);
        s += chunk;
        len -= chunk;
    } while (st == XML_STATUS_OK && !p.error && len > 0);
    const char *msg = NULL;
    if (st != XML_STATUS_OK || p.error)
        msg = p.error ? p.error : XML_ErrorString(XML_GetErrorCode(p.parser));
    else if (lua_gettop(L) != base + 1)
        msg = "no root element";
    if (msg) {
        snprintf(err->message, sizeof err->message, "%s", msg);
        err->line = XML_GetCurrentLineNumber(p.parser);
        err->column = XML_GetCurrentColumnNumber(p.parser);
        lua_settop(L, base - 1); /* drops the parser (freed by the GC) and any partial tree */
        return -1;
    }
    lua_remove(L, base); /* the parser userdata; freed by the GC */
    return 0;
}

/* xml.decode(s [, max_depth]) → root element {name=, attr=?, [i] = child element or text},
 * or nil, "line:col: message" for a malformed document or one with a DTD. */
static int xml_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int max_depth = (int)luaL_optinteger(L, 2, FO_XML_MAX_DEPTH);
    lua_settop(L, 1);
    fo_xml_error err;
    if (fo_xml_parse(L, s, len, max_depth, &err) != 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%d:%d: %s", (int)err.line, (int)err.column, err.message);
        return 2;
    }
    return 1;
}

const char *fo_xml_entity(char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\r':
        return "&#xD;";
    case '\n':
        return "&#xA;";
    default:
        return NULL;
    }
}

/* xml.escape(s) → s with & < > " ' as entities, and \r \n as character references
 * (so a parser gives back exactly the same text). */
static int xml_escape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        const char *entity = fo_xml_entity(s[i]);
        if (entity)
            luaL_addstring(&b, entity);
        else
            luaL_addchar(&b, s[i]);
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg xml_funcs[] = {
    {"decode", xml_decode},
    {"escape", xml_escape},
    {NULL, NULL},
};

int luaopen_fo_xml(lua_State *L)
{
    luaL_newlib(L, xml_funcs);
    return 1;
}
