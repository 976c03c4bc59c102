/* fo-run: the command line. Runs a Lua file or string with the fo runtime loaded.
 * Options are parsed here; everything else happens in the runtime. */
#include "fo/runtime.h"

#include <curl/curl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fo-run [options] [recipe options] [FILE [args...]]\n"
    "\n"
    "Runs FILE (a Lua 5.4 script or fo recipe) with the fo runtime loaded. When FILE\n"
    "declares resources (fo.resource), the engine then plans and applies them to the stack;\n"
    "a file that declares none is a plain script.\n"
    "\n"
    "options:\n"
    "  -e CODE        run the Lua string CODE (may be repeated; runs before FILE)\n"
    "  --serve-sim IPV4:PORT\n"
    "                 serve the AWS simulator over HTTP until SIGINT/SIGTERM (port 0:\n"
    "                 any free port; the URL and credentials are printed)\n"
    "  --sim-file F   the simulator's state file (with --serve-sim; default: in memory)\n"
    "  -i             interactive: the REPL (docs/repl.md) after -e and FILE; also what\n"
    "                 fo-run with no arguments does on a terminal\n"
    "  -v, --version  print the version and exit\n"
    "  -h, --help     print this help and exit\n"
    "  --             stop option parsing\n"
    "\n"
    "recipe options (docs/recipes.md):\n"
    "  --stack NAME   the stack (default dev); its files are .fo/NAME.*\n"
    "  --target T     sim (the embedded simulator, default for a new stack) or aws\n"
    "  --plan         show the plan only; nothing is changed\n"
    "  --destroy      delete everything the stack owns\n"
    "  --refresh      read every resource, report drift and record it in the state only\n"
    "  --no-refresh   plan against the state without reading the resources first\n"
    "  --yes          do not ask for confirmation (needed for aws when stdin is no terminal)\n"
    "  --parallel N   operations in flight at most (default 10)\n"
    "  --no-rollback  on a failure, keep what was done instead of rolling back\n"
    "  --config K=V   a config value (repeatable)\n"
    "  --json         print one JSON event per line instead of the human report\n"
    "                 (docs/json-events.md)\n"
    "  --graph FILE   write the dependency graph as Graphviz DOT (FILE.svg/.png: drawn\n"
    "                 with dot) and do nothing else\n"
    "  --break-lock   take the stack's lock from a holder that is dead on this host\n"
    "  --rebind-account  let a stack bound to another AWS account go on in this one (it moved)\n"
    "  --rebind-recipe   let a stack bound to another recipe file go on with this one\n"
    "  --accept-removals forget resources a refresh reads as gone even when they are most of\n"
    "                 the stack (else fo suspects a wrong account, region or endpoint)\n"
    "  --state-dir D  where the stack's files are (default .fo, or $FO_STATE_DIR)\n"
    "  --drill        apply on the simulator, then a failover drill on its virtual clock:\n"
    "                 the primary region goes down and comes back (lua/fo/drill.lua)\n"
    "\n"
    "FILE '-' reads the script from standard input. Inside the script, `arg` and `...`\n"
    "hold the arguments as in the lua interpreter, and the global `fo` is the runtime.\n"
    "\n"
    "environment:\n"
    "  FO_LOG         log level: error, warn, info, debug, trace (one line per AWS call\n"
    "                 from info on)\n"
    "  FO_LUA_DIR     directory of fo's Lua modules (default: found next to fo-run)\n"
    "  FO_STATE_DIR   where stacks' files are (default .fo)\n"
    "\n"
    "exit codes: 0 success, 1 the script raised an error (or a recipe error), 2 bad command\n"
    "line, 3 cloud error not rolled back (or rollback failed), 4 cloud error rolled back,\n"
    "5 the stack is locked by another run, 130 interrupted by Ctrl-C (the first Ctrl-C\n"
    "stops scheduling, lets operations in flight finish, then rolls back; a second one\n"
    "exits at once).\n";

/* The recipe options, handed to lua/fo/engine/cli.lua, which checks their values. */
static const struct {
    const char *name;
    int takes_value;
} engine_options[] = {
    {"--stack", 1},         {"--target", 1},          {"--plan", 0},  {"--destroy", 0},
    {"--refresh", 0},       {"--no-refresh", 0},      {"--yes", 0},   {"--parallel", 1},
    {"--no-rollback", 0},   {"--config", 1},          {"--json", 0},  {"--break-lock", 0},
    {"--state-dir", 1},     {"--drill", 0},           {"--graph", 1}, {"--rebind-account", 0},
    {"--rebind-recipe", 0}, {"--accept-removals", 0},
};

/* 1 + takes_value when `a` is a recipe option, else 0. */
static int engine_option(const char *a)
{
    for (size_t i = 0; i < sizeof engine_options / sizeof engine_options[0]; i++)
        if (strcmp(a, engine_options[i].name) == 0)
            return 1 + engine_options[i].takes_value;
    return 0;
}

static int usage_error(const char *msg, const char *what)
{
    fprintf(stderr, "fo-run: %s%s\nTry 'fo-run --help'.\n", msg, what ? what : "");
    return FO_EXIT_USAGE;
}

/* Sets the global `arg` as lua.c does: arg[0] the script, negative indices before it. */
static void set_arg(lua_State *L, char **argv, int argc, int script)
{
    lua_createtable(L, argc - script - 1, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

int main(int argc, char **argv)
{
    const char *codes[64];
    int ncodes = 0;
    int script = argc; /* index of FILE in argv, argc when none */
    const char *serve_sim = NULL, *sim_file = NULL;
    int interactive = argc == 1 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    int engine_args[256], nengine = 0; /* indices in argv of recipe options and values */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int eo = engine_option(a);
        if (eo) {
            if (eo == 2 && i + 1 >= argc)
                return usage_error("option needs a value: ", a);
            if (nengine + eo > 256)
                return usage_error("too many recipe options", NULL);
            engine_args[nengine++] = i;
            if (eo == 2)
                engine_args[nengine++] = ++i;
        } else if (strcmp(a, "--") == 0) {
            script = i + 1;
            break;
        } else if (strcmp(a, "-i") == 0) {
            interactive = 1;
        } else if (strcmp(a, "-e") == 0) {
            if (i + 1 >= argc)
                return usage_error("-e needs a Lua string", NULL);
            if (ncodes == 64)
                return usage_error("too many -e options", NULL);
            codes[ncodes++] = argv[++i];
        } else if (strcmp(a, "--serve-sim") == 0) {
            if (i + 1 >= argc)
                return usage_error("--serve-sim needs IPV4:PORT", NULL);
            serve_sim = argv[++i];
        } else if (strcmp(a, "--sim-file") == 0) {
            if (i + 1 >= argc)
                return usage_error("--sim-file needs a path", NULL);
            sim_file = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return FO_EXIT_OK;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            printf("fo-run %s (%s, %s)\n", FO_VERSION, LUA_RELEASE, curl_version());
            return FO_EXIT_OK;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option ", a);
        } else {
            script = i;
            break;
        }
    }
    if (sim_file && !serve_sim)
        return usage_error("--sim-file goes with --serve-sim", NULL);
    if (serve_sim && script < argc)
        return usage_error("--serve-sim runs the simulator, not a FILE: ", argv[script]);
    if (nengine > 0 && script >= argc && !serve_sim)
        return usage_error("recipe options need a RECIPE file: ", argv[engine_args[0]]);
    if (script >= argc && ncodes == 0 && !serve_sim && !interactive)
        return usage_error("nothing to run: give a FILE or -e CODE", NULL);
    if (nengine > 0 && serve_sim)
        return usage_error("--serve-sim takes no recipe options: ", argv[engine_args[0]]);

    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("fo-run: libcurl failed to initialise\n", stderr);
        return FO_EXIT_ERROR;
    }
    fo_runtime *rt = fo_runtime_new(argv[0]);
    if (!rt) {
        fputs("fo-run: could not create the Lua runtime\n", stderr);
        curl_global_cleanup();
        return FO_EXIT_ERROR;
    }
    if (fo_runtime_check_modules(rt) != FO_EXIT_OK) {
        fo_runtime_free(rt);
        curl_global_cleanup();
        return FO_EXIT_ERROR;
    }
    lua_State *L = fo_runtime_lua(rt);
    set_arg(L, argv, argc, script < argc ? script : 0);
    int code = FO_EXIT_OK;
    for (int i = 0; i < ncodes && code == FO_EXIT_OK; i++)
        code = fo_runtime_run(rt, "=(command line)", codes[i], 0);
    if (code == FO_EXIT_OK && script < argc) {
        /* FILE runs through the engine's entry, which runs it and then acts on what it
         * declared; the entry leaves its exit code in the registry. */
        lua_createtable(L, nengine, 0);
        for (int i = 0; i < nengine; i++) {
            lua_pushstring(L, argv[engine_args[i]]);
            lua_rawseti(L, -2, i + 1);
        }
        for (int i = script; i < argc; i++)
            lua_pushstring(L, argv[i]);
        code = fo_runtime_run(rt, "=(fo-run)", "return require('fo.engine.cli').main(...)",
                              argc - script + 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "fo.exit_code");
        if (code == FO_EXIT_OK && lua_isinteger(L, -1))
            code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (code == FO_EXIT_OK && interactive && !serve_sim)
        code = fo_runtime_run(rt, "=(repl)", "return require('fo.repl').main()", 0);
    if (code == FO_EXIT_OK && serve_sim) {
        lua_pushstring(L, serve_sim);
        lua_pushstring(L, sim_file); /* nil when absent */
        code = fo_runtime_run(rt, "=(--serve-sim)", "return require('fo.sim.server').main(...)", 2);
        lua_getfield(L, LUA_REGISTRYINDEX, "fo.exit_code"); /* 5: the sim file is locked */
        if (code == FO_EXIT_OK && lua_isinteger(L, -1))
            code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    fo_runtime_free(rt);
    curl_global_cleanup();
    return code;
}
