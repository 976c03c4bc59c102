/* Shared by the libFuzzer targets: one Lua state with the standard libraries and
 * fo.awsproto, set up once by a Lua script that defines run(body); each input is handed to
 * run() under pcall. The codecs must answer every input with a value or a clear Lua error
 * (a string naming the operation); anything else (a crash, a sanitizer report, an error
 * that is not such a string) stops the fuzzer. */
#ifndef FO_FUZZ_COMMON_H
#define FO_FUZZ_COMMON_H

#include "fo/runtime.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *fuzz_state(const char *setup)
{
    static lua_State *L;
    if (L)
        return L;
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "fo.awsproto", luaopen_fo_awsproto, 0);
    lua_pop(L, 1);
    if (luaL_dostring(L, setup) != LUA_OK) {
        fprintf(stderr, "fuzz setup: %s\n", lua_tostring(L, -1));
        abort(); /* the harness itself is broken: no point fuzzing */
    }
    return L;
}

/* Calls run(body); run returns nothing or raises. Returns 0. */
static int fuzz_run(const char *setup, const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state(setup);
    lua_getglobal(L, "run");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        /* run() itself checks the codecs' errors; an error escaping it is a finding */
        fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(non-string)");
        abort();
    }
    lua_settop(L, 0);
    /* Free this input's garbage now: libFuzzer counts mallocs against frees per input and
     * runs a (slow) leak check whenever they differ. */
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}

#endif
