/* Creates fo's Lua state: standard libraries, the event loop, the native modules in
 * package.preload, the module path (build tree or installed), and the global `fo`. */
#include "fo/runtime.h"
#include "fo/loop.h"
#include "lua_pool.h"

#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fo_runtime {
    lua_State *L;
    fo_lua_pool *pool; /* L's memory (lua_pool.c) */
    fo_loop *loop;
};

static const luaL_Reg native_modules[] = {
    {"fo.core", luaopen_fo_core},
    {"fo.http", luaopen_fo_http},
    {"fo.httpd", luaopen_fo_httpd},
    {"fo.crypto", luaopen_fo_crypto},
    {"fo.sigv4", luaopen_fo_sigv4},
    {"fo.process", luaopen_fo_process},
    {"fo.xml", luaopen_fo_xml},
    {"fo.awsproto", luaopen_fo_awsproto},
    {"fo.fs", luaopen_fo_fs},
    {"fo.signal", luaopen_fo_signal},
    {"fo.edit", luaopen_fo_edit},
    {"fo.tables", luaopen_fo_tables},
    {NULL, NULL},
};

/* The AWS service modules: each name gets a constructor aws.<name>{...} whose operations
 * come from lua/fo/aws/models/<name>.json (the client is lua/fo/aws/client.lua). */
static const char *const aws_services[] = {
    "ec2", "elbv2", "autoscaling", "route53", "dynamodb", "sns", "cloudwatch",    "iam",
    "ssm", "sts",   "kms",         "logs",    "s3",       "acm", "servicequotas",
};

/* require "fo.aws.services": the list above, as a Lua array. */
static int open_aws_services(lua_State *L)
{
    int n = (int)(sizeof aws_services / sizeof aws_services[0]);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, aws_services[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* Lua modules fo's own modules require that come from Debian packages, not from fo: each
 * with the package that installs it (tools/bootstrap.sh lists the same). */
static const struct {
    const char *module, *package;
} system_modules[] = {
    {"cjson", "lua-cjson"},
};

/* The directory of fo's Lua modules: $FO_LUA_DIR, the source tree when running from the
 * build tree, else <prefix>/share/fo/lua relative to the installed executable. */
static void lua_dir(char *out, size_t size)
{
    const char *env = getenv("FO_LUA_DIR");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return;
    }
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, size, "%s", FO_BUILD_LUA_DIR);
        return;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    int n_out;
    if (strcmp(exe, FO_BUILD_BIN_DIR) == 0)
        n_out = snprintf(out, size, "%s", FO_BUILD_LUA_DIR);
    else
        n_out = snprintf(out, size, "%s/../%s", exe, FO_INSTALL_LUA_REL);
    if (n_out < 0 || (size_t)n_out >= size) /* a path this long cannot be opened anyway */
        snprintf(out, size, "%s", FO_BUILD_LUA_DIR);
}

static void set_paths(lua_State *L)
{
    char dir[PATH_MAX];
    lua_dir(dir, sizeof dir);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    for (const luaL_Reg *m = native_modules; m->name; m++) {
        lua_pushcfunction(L, m->func);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
}

static int traceback(lua_State *L)
{
    const char *msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs `f` under a handler that adds a traceback; prints the error on failure. */
static int protected_call(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (status != LUA_OK) {
        fprintf(stderr, "fo-run: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return status;
}

static int init_state(lua_State *L)
{
    luaL_openlibs(L);
    set_paths(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "fo");
    lua_call(L, 1, 1);
    lua_setglobal(L, "fo");
    /* The global `aws` is fo.aws: the AWS core (loaded on first use) and the services. */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open_aws_services);
    lua_setfield(L, -2, "fo.aws.services");
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "fo.aws");
    lua_call(L, 1, 1);
    lua_setglobal(L, "aws");
    return 0;
}

fo_runtime *fo_runtime_new(const char *progname)
{
    (void)progname;
    fo_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->L = fo_lua_pool_newstate(&rt->pool);
    if (!rt->L) {
        free(rt);
        return NULL;
    }
    rt->loop = fo_loop_new(rt->L);
    lua_pushcfunction(rt->L, init_state);
    if (!rt->loop || protected_call(rt->L, 0, 0) != LUA_OK) {
        fo_runtime_free(rt);
        return NULL;
    }
    return rt;
}

int fo_runtime_check_modules(fo_runtime *rt)
{
    lua_State *L = rt->L;
    for (size_t i = 0; i < sizeof system_modules / sizeof system_modules[0]; i++) {
        lua_getglobal(L, "require");
        lua_pushstring(L, system_modules[i].module);
        int status = lua_pcall(L, 1, 0, 0);
        if (status != LUA_OK) {
            lua_pop(L, 1); /* Lua's "not found" lists every path tried: not for users */
            fprintf(stderr,
                    "fo-run: cannot load the Lua module %s: install the Debian package %s "
                    "(apt-get install %s)\n",
                    system_modules[i].module, system_modules[i].package, system_modules[i].package);
            return FO_EXIT_ERROR;
        }
    }
    return FO_EXIT_OK;
}

void fo_runtime_free(fo_runtime *rt)
{
    if (!rt)
        return;
    if (rt->L)
        lua_close(rt->L);
    fo_lua_pool_free(rt->pool);
    fo_loop_free(rt->loop);
    free(rt);
}

lua_State *fo_runtime_lua(fo_runtime *rt)
{
    return rt->L;
}

int fo_runtime_run(fo_runtime *rt, const char *name, const char *source, int nargs)
{
    lua_State *L = rt->L;
    int status;
    if (source) {
        status = luaL_loadbuffer(L, source, strlen(source), name);
    } else {
        status = luaL_loadfile(L, strcmp(name, "-") == 0 ? NULL : name);
    }
    if (status != LUA_OK) {
        fprintf(stderr, "fo-run: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1 + nargs);
        return FO_EXIT_ERROR;
    }
    lua_insert(L, -(nargs + 1));
    /* task.main(chunk, ...) spawns the chunk as the main task and returns a finisher. */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "fo.task");
    if (protected_call(L, 1, 1) != LUA_OK) {
        lua_pop(L, nargs + 1);
        return FO_EXIT_ERROR;
    }
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
    lua_insert(L, -(nargs + 2));
    if (protected_call(L, nargs + 1, 1) != LUA_OK)
        return FO_EXIT_ERROR;
    fo_loop_run(rt->loop);
    /* The finisher prints what failed and returns the exit code. */
    if (protected_call(L, 0, 1) != LUA_OK)
        return FO_EXIT_ERROR;
    int code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return code;
}
