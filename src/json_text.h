/* fo.tables.json_text: fo.json's text encoder in C (src/json_text.c). */
#ifndef FO_JSON_TEXT_H
#define FO_JSON_TEXT_H

#include <lua.h>

/* Adds json_text to the module table on top of the stack. */
void fo_json_text_register(lua_State *L);

#endif
