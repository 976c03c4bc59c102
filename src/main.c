/* fo-run: the command line. Runs a Lua file or string with the fo runtime loaded.
 * Every option is parsed here, by getopt_long from one table, wherever it stands before
 * `--`; the engine's options are then handed to lua/fo/engine/cli.lua as name/value pairs,
 * which checks their values. Nothing runs before the whole command line is known good. */
#include "fo/runtime.h"

#include "dl/libcurl.h"
#include <getopt.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fo-run [options] [FILE [args...]] [-- args...]\n"
    "       fo-run state list|show|rm|mv|pull|push ... [options]\n"
    "       fo-run outputs [NAME] [options]\n"
    "       fo-run apply PLANFILE [options]\n"
    "\n"
    "Runs FILE (a Lua 5.4 script or fo recipe) with the fo runtime loaded. When FILE\n"
    "declares resources (fo.resource), the engine then plans and applies them to the stack;\n"
    "a file that declares none is a plain script.\n"
    "\n"
    "Options may stand anywhere before `--`, also after FILE: `fo-run recipe.lua --plan`\n"
    "plans. Every word that starts with '-' before `--` is an option of fo-run; the other\n"
    "words after FILE, and every word after `--`, are the script's arguments\n"
    "(`fo-run script.lua -- --plan` gives --plan to the script). An option's value may\n"
    "follow it or be joined with '=' (--stack prod, --stack=prod).\n"
    "\n"
    "options:\n"
    "  -e CODE        run the Lua string CODE (may be repeated; runs before FILE)\n"
    "  --serve-sim IPV4:PORT\n"
    "                 serve the AWS simulator over HTTP until SIGINT/SIGTERM (port 0:\n"
    "                 any free port; the URL and credentials are printed). A non-loopback\n"
    "                 address also needs --serve-sim-public\n"
    "  --serve-sim-public\n"
    "                 allow --serve-sim on an address other machines reach: the\n"
    "                 simulator's access key is public, so whoever reaches the port can\n"
    "                 act on it\n"
    "  --sim-file F   the simulator's state file (with --serve-sim; default: in memory)\n"
    "  -i             interactive: the REPL (docs/repl.md) after -e and FILE; also what\n"
    "                 fo-run with no arguments does on a terminal\n"
    "  -v, --version  print the version and exit\n"
    "  -h, --help     print this help and exit\n"
    "  --             end of the options: what follows is FILE (if not given yet) and\n"
    "                 the script's arguments\n"
    "\n"
    "recipe options (docs/recipes.md):\n"
    "  --stack NAME   the stack (default dev); its files are .fo/NAME.*\n"
    "  --target T     sim (the embedded simulator, default for a new stack) or aws\n"
    "  --plan         show the plan only; nothing is changed\n"
    "  --destroy      delete everything the stack owns\n"
    "  --only URN     work on this resource and what it depends on, nothing else (with\n"
    "                 --destroy: it and what depends on it); repeatable; a URN, type::name,\n"
    "                 name or glob (* stops at '/', ** does not, ?); warns that the stack\n"
    "                 may then differ from the recipe\n"
    "  --refresh      read every resource, report drift and record it in the state only\n"
    "  --no-refresh   plan against the state without reading the resources first\n"
    "  --yes          do not ask for confirmation (needed for aws when stdin is no terminal)\n"
    "  --parallel N   operations in flight at most (default 10); a refresh reads up to\n"
    "                 100 resources at once (more with a larger N)\n"
    "  --no-rollback  on a failure, keep what was done instead of rolling back\n"
    "  --config K=V   a config value (repeatable)\n"
    "  --json         print one JSON event per line instead of the human report\n"
    "                 (docs/json-events.md)\n"
    "  --out FILE     with --plan: save the plan to FILE, with what it was computed from\n"
    "                 (`fo-run apply FILE` applies exactly it)\n"
    "  --graph FILE   write the dependency graph as Graphviz DOT (FILE.svg/.png: drawn\n"
    "                 with dot; -: to standard output) and do nothing else\n"
    "  --break-lock   take the stack's lock from a holder that is dead on this host (with\n"
    "                 an S3 backend: a live lease only with --yes as well)\n"
    "  --lock-timeout DURATION\n"
    "                 wait up to DURATION (30s, 5m) for the stack's lock (default: refuse\n"
    "                 at once, exit 5)\n"
    "  --backend URL  where the stack's state, lock and config are: s3://BUCKET/PREFIX or\n"
    "                 local (the default; also `backend` in the stack's config file;\n"
    "                 docs/state-backends.md)\n"
    "  --backend-unsafe-ok  use a state bucket without versioning, encryption or a full\n"
    "                 public access block (refused by default)\n"
    "  --migrate-state URL  move the stack's state and config to URL (s3://BUCKET/PREFIX\n"
    "                 or local), verified, under both locks; the recipe does not run\n"
    "  --rebind-account  let a stack bound to another AWS account go on in this one (it moved)\n"
    "  --rebind-recipe   let a stack bound to another recipe file go on with this one\n"
    "  --accept-removals forget resources a refresh reads as gone even when they are most of\n"
    "                 the stack (else fo suspects a wrong account, region or endpoint)\n"
    "  --state-dir D  where the stack's files are (default .fo, or $FO_STATE_DIR)\n"
    "  --drill        apply on the simulator, then a failover drill on its virtual clock:\n"
    "                 the primary region goes down and comes back (lua/fo/drill.lua);\n"
    "                 with --json, the apply's events then one `drill` event\n"
    "  --drill-scenario NAME  another outage: phase (random moment, over --drill-runs N\n"
    "                 seeded by --drill-seed S), az, app, alb5xx, standby-down, flapping,\n"
    "                 checkers (docs/runbook.md, \"Other outages\")\n"
    "  --plot FILE    with --drill: draw the drill (SVG) into FILE\n"
    "  --traffic K=V  with --drill: a knob of its traffic model (repeatable; docs/runbook.md)\n"
    "  --game-day     on a stack deployed on AWS: invert its primary Route 53 health check,\n"
    "                 measure the failover and failback from Route 53's answers, probe the\n"
    "                 standby, set the check back (also on error or Ctrl-C; asks, or --yes)\n"
    "  --print-policy print the IAM policy (JSON) a deployer needs for FILE: the actions\n"
    "                 its whole lifecycle calls on a private simulator, scoped to its ARNs\n"
    "  --readiness    read-only: is the standby ready? both regions configured alike, the\n"
    "                 replica, health, alarms, subscriptions, capacity (exit 3: a check\n"
    "                 failed; docs/runbook.md)\n"
    "\n"
    "commands (docs/recipes.md, \"Outputs and state commands\"):\n"
    "  state list [--type T] [--region R] [--id ID] [--component C] [--tree]\n"
    "                 the stack's resources: URN, region, id (* in T, R, ID matches\n"
    "                 any text); by component (C: its path, e.g. primary); --tree:\n"
    "                 indented under their components\n"
    "  state show URN  one resource as the state records it (secret values: [secret])\n"
    "  state rm URN...  forget resources: the stack no longer manages them; nothing is\n"
    "                 deleted in the cloud\n"
    "  state mv OLD NEW  rename a resource in the state, without a cloud call (in a\n"
    "                 recipe: fo.moved)\n"
    "  state pull [FILE]  write the state to FILE (default: standard output; an existing\n"
    "                 FILE only with --force)\n"
    "  state push FILE  replace the state by FILE, checked first; refused for another\n"
    "                 stack, target, account or key, or a lower serial, unless --force\n"
    "  state import TYPE::NAME ID [--region R]  bring an existing resource under the\n"
    "                 stack: read it by ID and record it (in a recipe: import = ID)\n"
    "  outputs [NAME]  the stack's outputs (a secret one: [secret] unless --show-secrets)\n"
    "  apply PLANFILE  apply a plan saved by --plan --out, exactly: refused (exit 1),\n"
    "                 naming what changed, when the state, recipe, config or cloud moved\n"
    "                 since it was made; takes --yes, --json, --parallel, --no-rollback\n"
    "                 (also written fo-run --apply PLANFILE)\n"
    "\n"
    "The first word that is no option names a command only when it is `state`,\n"
    "`outputs` or `apply`: run a script so named as ./state. A command takes\n"
    "--stack, --state-dir, --backend and --json; a state command and apply hold the\n"
    "stack's lock (exit 5 when another run holds it; --lock-timeout, --break-lock).\n"
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

/* getopt_long's values for the options without a short form. */
enum {
    OPT_SERVE_SIM = 256,
    OPT_SERVE_SIM_PUBLIC,
    OPT_SIM_FILE,
    OPT_RECIPE,  /* a recipe option: handed to lua/fo/engine/cli.lua */
    OPT_COMMAND, /* an option of the state/outputs commands only (lua/fo/engine/commands.lua) */
};

/* The first words that name a command instead of a FILE (lua/fo/engine/commands.lua). */
static const char *const command_words[] = {"state", "outputs", "apply", NULL};

/* The one table of fo-run's long options. The recipe options' meanings and value checks
 * are lua/fo/engine/cli.lua's (keyed by these names). */
static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {"serve-sim", required_argument, NULL, OPT_SERVE_SIM},
    {"serve-sim-public", no_argument, NULL, OPT_SERVE_SIM_PUBLIC},
    {"sim-file", required_argument, NULL, OPT_SIM_FILE},
    {"stack", required_argument, NULL, OPT_RECIPE},
    {"target", required_argument, NULL, OPT_RECIPE},
    {"plan", no_argument, NULL, OPT_RECIPE},
    {"destroy", no_argument, NULL, OPT_RECIPE},
    {"only", required_argument, NULL, OPT_RECIPE},
    {"refresh", no_argument, NULL, OPT_RECIPE},
    {"no-refresh", no_argument, NULL, OPT_RECIPE},
    {"yes", no_argument, NULL, OPT_RECIPE},
    {"parallel", required_argument, NULL, OPT_RECIPE},
    {"no-rollback", no_argument, NULL, OPT_RECIPE},
    {"config", required_argument, NULL, OPT_RECIPE},
    {"json", no_argument, NULL, OPT_RECIPE},
    {"graph", required_argument, NULL, OPT_RECIPE},
    {"out", required_argument, NULL, OPT_RECIPE},
    {"break-lock", no_argument, NULL, OPT_RECIPE},
    {"state-dir", required_argument, NULL, OPT_RECIPE},
    {"drill", no_argument, NULL, OPT_RECIPE},
    {"drill-scenario", required_argument, NULL, OPT_RECIPE},
    {"drill-runs", required_argument, NULL, OPT_RECIPE},
    {"drill-seed", required_argument, NULL, OPT_RECIPE},
    {"plot", required_argument, NULL, OPT_RECIPE},
    {"traffic", required_argument, NULL, OPT_RECIPE},
    {"rebind-account", no_argument, NULL, OPT_RECIPE},
    {"rebind-recipe", no_argument, NULL, OPT_RECIPE},
    {"accept-removals", no_argument, NULL, OPT_RECIPE},
    {"backend", required_argument, NULL, OPT_RECIPE},
    {"backend-unsafe-ok", no_argument, NULL, OPT_RECIPE},
    {"lock-timeout", required_argument, NULL, OPT_RECIPE},
    {"migrate-state", required_argument, NULL, OPT_RECIPE},
    {"print-policy", no_argument, NULL, OPT_RECIPE},
    {"readiness", no_argument, NULL, OPT_RECIPE},
    {"game-day", no_argument, NULL, OPT_RECIPE},
    {"type", required_argument, NULL, OPT_COMMAND},
    {"region", required_argument, NULL, OPT_COMMAND},
    {"id", required_argument, NULL, OPT_COMMAND},
    {"component", required_argument, NULL, OPT_COMMAND},
    {"tree", no_argument, NULL, OPT_COMMAND},
    {"force", no_argument, NULL, OPT_COMMAND},
    {"show-secrets", no_argument, NULL, OPT_COMMAND},
    {"apply", required_argument, NULL, OPT_COMMAND},
    {NULL, 0, NULL, 0},
};

/* '-' first: non-options come back in order as option 1 (FILE, then the script's
 * arguments), whatever POSIXLY_CORRECT says; ':' next: a missing value is ':'. */
static const char short_options[] = "-:e:ihv";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "fo-run: <message>" and the hint, on stderr; returns the usage exit code. */
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fo-run: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'fo-run --help'.\n", stderr);
    return FO_EXIT_USAGE;
}

/* Edit distance of a and b (the first n bytes of a), case-insensitive; as fo.aws.suggest. */
static size_t distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b), prev[64], cur[64];
    if (n >= 63 || m >= 63)
        return (size_t)-1;
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + cost < best)
                best = prev[j - 1] + cost;
            cur[j] = best;
        }
        memcpy(prev, cur, (m + 1) * sizeof prev[0]);
    }
    return prev[m];
}

/* The long option nearest to `word` (after its dashes, before any '='): the only one it
 * is a prefix of, else the closest by edit distance when near enough; NULL when none. */
static const char *nearest_option(const char *word)
{
    while (*word == '-')
        word++;
    size_t n = strcspn(word, "=");
    const char *prefixed = NULL;
    int prefixes = 0;
    for (const struct option *o = long_options; o->name; o++) {
        if (n > 0 && strncmp(o->name, word, n) == 0) {
            prefixed = o->name;
            prefixes++;
        }
    }
    if (prefixes == 1)
        return prefixed;
    const char *best = NULL;
    size_t best_d = (n / 4 > 2 ? n / 4 : 2) + 1;
    for (const struct option *o = long_options; o->name; o++) {
        size_t d = distance(word, n, o->name);
        if (d < best_d) {
            best = o->name;
            best_d = d;
        }
    }
    return best;
}

static int unknown_option(const char *word)
{
    /* A prefix of several options (--no): name them all. */
    const char *name = word + strspn(word, "-");
    size_t n = strcspn(name, "="), len = 0;
    char list[512];
    int count = 0;
    for (const struct option *o = long_options; n > 0 && o->name; o++) {
        if (strncmp(o->name, name, n) == 0 && len + strlen(o->name) + 5 < sizeof list) {
            len += (size_t)snprintf(list + len, sizeof list - len, "%s--%s", count ? " or " : "",
                                    o->name);
            count++;
        }
    }
    int shown = (int)strcspn(word, "="); /* the option, not its value */
    if (count > 1)
        return usage_error("unknown option %.*s; did you mean %s?", shown, word, list);
    const char *near = nearest_option(word);
    if (near)
        return usage_error("unknown option %.*s; did you mean --%s?", shown, word, near);
    return usage_error("unknown option %.*s", shown, word);
}

/* The command line, parsed. */
struct command {
    const char *codes[64];
    int ncodes;
    const char *serve_sim, *sim_file;
    int serve_sim_public, interactive;
    int *recipe_opts; /* long_options index of each recipe option, in order */
    const char **recipe_values;
    int nrecipe;
    int *positional; /* argv indices: FILE, then the script's arguments */
    int npositional;
    int *is_positional; /* per argv index */
};

/* Parses argv into `c`; returns -1 when fine, else the exit code (help, version, usage). */
static int parse(int argc, char **argv, struct command *c)
{
    opterr = 0;
    optind = 1;
    for (;;) {
        /* Returning in order (no permutation), getopt_long works on argv[optind]: the word
         * holding the option it returns; a value given separately is the word after it. */
        int at = optind, longindex = -1;
        int ch = getopt_long(argc, argv, short_options, long_options, &longindex);
        if (ch == -1)
            break;
        const char *word = argv[at];
        int separate = ch != 1 && optarg != NULL && at + 1 < argc && optarg == argv[at + 1];
        if (longindex >= 0) {
            /* getopt_long takes any unambiguous prefix (--pl for --plan); fo-run acts only
             * on what is typed in full. */
            const char *name = word + 2;
            size_t n = strcspn(name, "=");
            if (strncmp(word, "--", 2) != 0 || n != strlen(long_options[longindex].name) ||
                strncmp(name, long_options[longindex].name, n) != 0)
                return unknown_option(word);
            /* `--stack --plan` is a forgotten value, not a stack named --plan. */
            if (separate && optarg[0] == '-' && optarg[1] != '\0')
                return usage_error("%s needs a value, got '%s' (an option?); if that is the "
                                   "value, join it with '=': --%s=%s",
                                   word, optarg, long_options[longindex].name, optarg);
        }
        switch (ch) {
        case 1:
            c->positional[c->npositional++] = optind - 1;
            c->is_positional[optind - 1] = 1;
            break;
        case 'e':
            if (c->ncodes == 64)
                return usage_error("too many -e options (at most 64)");
            c->codes[c->ncodes++] = optarg;
            break;
        case 'i':
            c->interactive = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return FO_EXIT_OK;
        case 'v': {
            char err[256];
            const struct fo_curl *curl = fo_curl_load(err, sizeof err);
            printf("fo-run %s (%s, %s)\n", FO_VERSION, LUA_RELEASE, curl ? curl->version() : err);
            fo_curl_cleanup();
            return FO_EXIT_OK;
        }
        case OPT_SERVE_SIM:
            c->serve_sim = optarg;
            break;
        case OPT_SERVE_SIM_PUBLIC:
            c->serve_sim_public = 1;
            break;
        case OPT_SIM_FILE:
            c->sim_file = optarg;
            break;
        case OPT_RECIPE:
        case OPT_COMMAND:
            c->recipe_opts[c->nrecipe] = longindex;
            c->recipe_values[c->nrecipe++] = optarg;
            break;
        case ':':
            if (optopt == 'e')
                return usage_error("-e needs a Lua string");
            return usage_error("%s needs a value", word);
        default: /* '?': unknown, or a value given to an option that takes none */
            if (strncmp(word, "--", 2) == 0) {
                const char *eq = strchr(word, '=');
                for (const struct option *o = long_options; eq && o->name; o++)
                    if (strlen(o->name) == (size_t)(eq - word - 2) &&
                        strncmp(o->name, word + 2, (size_t)(eq - word - 2)) == 0)
                        return usage_error("%s: --%s takes no value", word, o->name);
                return unknown_option(word);
            }
            if (strlen(word) > 2) /* -stack: meant as --stack, not as -s -t -a ... */
                return unknown_option(word);
            char opt[3] = {'-', (char)optopt, '\0'};
            return unknown_option(opt);
        }
    }
    /* After `--`: FILE (when not given yet) and the script's arguments. */
    for (int i = optind; i < argc; i++) {
        c->positional[c->npositional++] = i;
        c->is_positional[i] = 1;
    }
    return -1;
}

/* Sets the global `arg` as lua.c does: arg[0] the script, arg[1..] its arguments, and at
 * negative indices fo-run and the words that were not the script's (options, values, `--`).
 * Without a script, arg[0] is fo-run and the options follow it. */
static void set_arg(lua_State *L, char **argv, int argc, const struct command *c)
{
    if (c->npositional == 0) {
        lua_createtable(L, argc, 1);
        for (int i = 0; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i);
        }
        lua_setglobal(L, "arg");
        return;
    }
    int before = argc - c->npositional;
    lua_createtable(L, c->npositional - 1, before + 1);
    for (int i = 0, k = -before; i < argc; i++) {
        if (!c->is_positional[i]) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, k++);
        }
    }
    for (int i = 0; i < c->npositional; i++) {
        lua_pushstring(L, argv[c->positional[i]]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
}

/* Pushes FILE and the script's arguments (or the command's words) onto the Lua stack,
 * which holds only LUA_MINSTACK values unless grown: a long argument list must grow it
 * first. Returns 0 (after saying so) when it cannot. */
static int push_positional(lua_State *L, char **argv, const struct command *c)
{
    if (!lua_checkstack(L, c->npositional + 1)) {
        fprintf(stderr, "fo-run: too many arguments (%d)\n", c->npositional);
        return 0;
    }
    for (int i = 0; i < c->npositional; i++)
        lua_pushstring(L, argv[c->positional[i]]);
    return 1;
}

/* Runs a Lua entry point of fo-run; its exit code is what it left in the registry field
 * "fo.exit_code" (when it finished without raising). */
static int run_entry(fo_runtime *rt, const char *name, const char *source, int nargs)
{
    lua_State *L = fo_runtime_lua(rt);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "fo.exit_code");
    int code = fo_runtime_run(rt, name, source, nargs);
    lua_getfield(L, LUA_REGISTRYINDEX, "fo.exit_code");
    if (code == FO_EXIT_OK && lua_isinteger(L, -1))
        code = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return code;
}

static int run(int argc, char **argv, struct command *c)
{
    int code = parse(argc, argv, c);
    if (code >= 0)
        return code;
    int has_file = c->npositional > 0;
    if (argc == 1)
        c->interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    const char *first_recipe = c->nrecipe > 0 ? long_options[c->recipe_opts[0]].name : NULL;
    const char *command = NULL;
    for (int i = 0; has_file && command_words[i]; i++)
        if (strcmp(argv[c->positional[0]], command_words[i]) == 0)
            command = command_words[i];
    /* `fo-run --apply PLANFILE` is `fo-run apply PLANFILE` (commands.lua reads the option) */
    for (int i = 0; i < c->nrecipe && !command && !has_file; i++)
        if (strcmp(long_options[c->recipe_opts[i]].name, "apply") == 0)
            command = "apply";
    for (int i = 0; i < c->nrecipe && !command; i++)
        if (strcmp(long_options[c->recipe_opts[i]].name, "apply") == 0)
            return usage_error("--apply PLANFILE takes no FILE: the plan names its recipe "
                               "(fo-run --apply PLANFILE)");
    for (int i = 0; i < c->nrecipe && !command; i++)
        if (long_options[c->recipe_opts[i]].val == OPT_COMMAND)
            return usage_error("--%s goes with the state and outputs commands (fo-run state "
                               "list --%s ...)",
                               long_options[c->recipe_opts[i]].name,
                               long_options[c->recipe_opts[i]].name);
    if (command && (c->ncodes > 0 || c->interactive))
        return usage_error("fo-run %s takes no -e or -i", command);
    if (c->sim_file && !c->serve_sim)
        return usage_error("--sim-file goes with --serve-sim");
    if (c->serve_sim_public && !c->serve_sim)
        return usage_error("--serve-sim-public goes with --serve-sim");
    if (c->serve_sim && has_file)
        return usage_error("--serve-sim runs the simulator, not a FILE: %s",
                           argv[c->positional[0]]);
    if (c->nrecipe > 0 && c->serve_sim)
        return usage_error("--serve-sim takes no recipe options: --%s", first_recipe);
    if (c->nrecipe > 0 && !has_file && !command)
        return usage_error("recipe options need a RECIPE file: --%s", first_recipe);
    if (!has_file && !command && c->ncodes == 0 && !c->serve_sim && !c->interactive)
        return usage_error("nothing to run: give a FILE or -e CODE");

    signal(SIGPIPE, SIG_IGN);
    /* libcurl is loaded and initialised by the first HTTP request (src/dl/libcurl.h). */
    fo_runtime *rt = fo_runtime_new(argv[0]);
    if (!rt) {
        fputs("fo-run: could not create the Lua runtime\n", stderr);
        fo_curl_cleanup();
        return FO_EXIT_ERROR;
    }
    if (fo_runtime_check_modules(rt) != FO_EXIT_OK) {
        fo_runtime_free(rt);
        fo_curl_cleanup();
        return FO_EXIT_ERROR;
    }
    lua_State *L = fo_runtime_lua(rt);
    set_arg(L, argv, argc, c);
    code = FO_EXIT_OK;
    if (has_file || command) {
        /* The recipe options' values are checked before anything runs (-e included). */
        lua_createtable(L, c->nrecipe, 0);
        for (int i = 0; i < c->nrecipe; i++) {
            lua_createtable(L, 2, 0);
            lua_pushfstring(L, "--%s", long_options[c->recipe_opts[i]].name);
            lua_rawseti(L, -2, 1);
            if (c->recipe_values[i]) {
                lua_pushstring(L, c->recipe_values[i]);
                lua_rawseti(L, -2, 2);
            }
            lua_rawseti(L, -2, i + 1);
        }
    }
    if (command) { /* the options' pairs, then the command's words */
        if (!push_positional(L, argv, c)) {
            fo_runtime_free(rt);
            fo_curl_cleanup();
            return FO_EXIT_USAGE;
        }
        code = run_entry(rt, "=(fo-run)", "return require('fo.engine.commands').main(...)",
                         c->npositional + 1);
        fo_runtime_free(rt);
        fo_curl_cleanup();
        return code;
    }
    if (has_file) {
        /* and the table's recipe options, {name = takes a value}: cli.lua checks that it
         * gives each a meaning (the two lists cannot drift apart) */
        lua_newtable(L);
        for (const struct option *o = long_options; o->name; o++) {
            if (o->val == OPT_RECIPE) {
                lua_pushfstring(L, "--%s", o->name);
                lua_pushboolean(L, o->has_arg == required_argument);
                lua_settable(L, -3);
            }
        }
        code = run_entry(rt, "=(fo-run)", "return require('fo.engine.cli').prepare(...)", 2);
    }
    for (int i = 0; i < c->ncodes && code == FO_EXIT_OK; i++)
        code = fo_runtime_run(rt, "=(command line)", c->codes[i], 0);
    if (code == FO_EXIT_OK && has_file) {
        /* FILE runs through the engine's entry, which runs it and then acts on what it
         * declared. */
        code = push_positional(L, argv, c)
                   ? run_entry(rt, "=(fo-run)", "return require('fo.engine.cli').main(...)",
                               c->npositional)
                   : FO_EXIT_USAGE;
    }
    if (code == FO_EXIT_OK && c->interactive && !c->serve_sim)
        code = fo_runtime_run(rt, "=(repl)", "return require('fo.repl').main()", 0);
    if (code == FO_EXIT_OK && c->serve_sim) {
        lua_pushstring(L, c->serve_sim);
        lua_pushstring(L, c->sim_file); /* nil when absent */
        lua_pushboolean(L, c->serve_sim_public);
        code = run_entry(rt, "=(--serve-sim)", "return require('fo.sim.server').main(...)", 3);
    }
    fo_runtime_free(rt);
    fo_curl_cleanup();
    return code;
}

int main(int argc, char **argv)
{
    struct command c = {0};
    c.recipe_opts = calloc((size_t)argc, sizeof *c.recipe_opts);
    c.recipe_values = calloc((size_t)argc, sizeof *c.recipe_values);
    c.positional = calloc((size_t)argc, sizeof *c.positional);
    c.is_positional = calloc((size_t)argc, sizeof *c.is_positional);
    int code = FO_EXIT_ERROR;
    if (c.recipe_opts && c.recipe_values && c.positional && c.is_positional)
        code = run(argc, argv, &c);
    else
        fputs("fo-run: out of memory\n", stderr);
    free(c.recipe_opts);
    free((void *)c.recipe_values);
    free(c.positional);
    free(c.is_positional);
    return code;
}
