/* The fo runtime: a Lua 5.4 state with the event loop and fo's native modules loaded. */
#ifndef FO_RUNTIME_H
#define FO_RUNTIME_H

#include <lua.h>

/* Exit codes of fo-run (docs/runtime.md). */
enum {
    FO_EXIT_OK = 0,
    FO_EXIT_ERROR = 1, /* the script or recipe raised an error */
    FO_EXIT_USAGE = 2, /* bad command line */
};

typedef struct fo_runtime fo_runtime;

/* Creates the state; `progname` is argv[0]. NULL on allocation failure. */
fo_runtime *fo_runtime_new(const char *progname);
void fo_runtime_free(fo_runtime *rt);

/* Loads the Lua modules that come from Debian packages (lua-cjson). When one cannot be
 * loaded, prints one line naming the package to install and returns FO_EXIT_ERROR. */
int fo_runtime_check_modules(fo_runtime *rt);
lua_State *fo_runtime_lua(fo_runtime *rt);

/* Runs a chunk as the main task, then the loop until all work is done. The values on top
 * of the stack (`nargs` of them) are passed as `...`. `name` is the chunk name for errors.
 * `source` NULL means: load the file `name` ("-" for stdin). Returns an FO_EXIT_ code;
 * errors are printed to stderr with their traceback. */
int fo_runtime_run(fo_runtime *rt, const char *name, const char *source, int nargs);

/* Native modules, registered in package.preload. */
int luaopen_fo_core(lua_State *L);
int luaopen_fo_http(lua_State *L);
int luaopen_fo_httpd(lua_State *L);
int luaopen_fo_crypto(lua_State *L);
int luaopen_fo_sigv4(lua_State *L);
int luaopen_fo_process(lua_State *L);
int luaopen_fo_xml(lua_State *L);
int luaopen_fo_awsproto(lua_State *L);
int luaopen_fo_fs(lua_State *L);
int luaopen_fo_tables(lua_State *L);
int luaopen_fo_signal(lua_State *L);
int luaopen_fo_edit(lua_State *L);

#endif
