-- fo-run's commands on a stack, run without its recipe: `fo-run state list|show|rm|mv|pull|
-- push` (state_cmd.lua) and `fo-run outputs` (outputs_cmd.lua). src/main.c sends a command
-- line here when its first word that is no option is one of M.WORDS (a script of that name
-- runs as ./state). This file checks the options, opens the stack as a recipe run does
-- (state directory, backend, lock) and reports as a run does (report.lua: the human text,
-- or --json events ending with a summary). Exit codes as a run's (docs/engine.md).
local errors = require "fo.engine.errors"
local cli = require "fo.engine.cli"

local M = {}
local EXIT = errors.EXIT

--- The words that name a command.
M.WORDS = { state = true, outputs = true, apply = true }

-- The options of src/main.c's that only the commands take (cli.lua does not know them):
-- option → field, and the value of a flag.
local OWN = { ["--type"] = { "type" }, ["--region"] = { "region" }, ["--id"] = { "id" },
  ["--component"] = { "component" }, ["--tree"] = { "tree", true },
  ["--force"] = { "force", true }, ["--show-secrets"] = { "show_secrets", true } }
M.OWN = OWN

-- The recipe options every state command takes (cli.lua gives them their meaning).
local STACK = { "--stack", "--backend", "--backend-unsafe-ok", "--state-dir", "--json" }
local LOCKING = { "--break-lock", "--lock-timeout", "--yes" }

local function set(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, name in ipairs(list) do out[name] = true end
  end
  return out
end

-- Per command: the options it takes, its arguments (min, max; max nil: any number), and the
-- usage line for messages.
local COMMANDS = {
  ["state list"] = { options = set(STACK, LOCKING, { "--type", "--region", "--id",
    "--component", "--tree" }), min = 0, max = 0,
    usage = "fo-run state list [--type T] [--region R] [--id ID] [--component C] [--tree] [--stack S]" },
  ["state show"] = { options = set(STACK, LOCKING), min = 1, max = 1,
    usage = "fo-run state show URN [--stack S]" },
  ["state rm"] = { options = set(STACK, LOCKING), min = 1,
    usage = "fo-run state rm URN... [--stack S]" },
  ["state mv"] = { options = set(STACK, LOCKING), min = 2, max = 2,
    usage = "fo-run state mv OLD NEW [--stack S]" },
  ["state pull"] = { options = set(STACK, LOCKING, { "--force" }), min = 0, max = 1,
    usage = "fo-run state pull [FILE] [--force] [--stack S]" },
  ["state push"] = { options = set(STACK, LOCKING, { "--force" }), min = 1, max = 1,
    usage = "fo-run state push FILE [--force] [--stack S]" },
  ["state import"] = { options = set(STACK, LOCKING, { "--region" }), min = 2, max = 2,
    usage = "fo-run state import TYPE::NAME ID [--region R] [--stack S]" },
  ["apply"] = { options = set(STACK, LOCKING, { "--parallel", "--no-rollback" }), min = 1,
    max = 1, usage = "fo-run apply PLANFILE [--yes] [--json] [--parallel N] [--no-rollback]" },
  ["outputs"] = { options = set(STACK, { "--show-secrets" }), min = 0, max = 1,
    usage = "fo-run outputs [NAME] [--show-secrets] [--json] [--stack S]" },
}
M.COMMANDS = COMMANDS

local STATE_WORDS = { "list", "show", "rm", "mv", "pull", "push", "import" }

local function usage(fmt, ...)
  errors.raise("usage", select("#", ...) > 0 and fmt:format(...) or fmt)
end

--- The command, its options and arguments from src/main.c's pairs (as cli.parse takes them)
--- and the words that are no option (`state`, `list`, ...). Raises a usage error.
function M.parse(pairs_, words)
  local name, args = words[1], {}
  local first = 2
  -- `fo-run --apply PLANFILE` (src/main.c sends it here with no word): `fo-run apply PLANFILE`
  local rest = {}
  for _, pair in ipairs(pairs_) do
    if pair[1] == "--apply" then
      if name ~= nil then usage("--apply PLANFILE is a command of its own: fo-run --apply PLANFILE") end
      words = { "apply", pair[2] }
    else
      rest[#rest + 1] = pair
    end
  end
  pairs_, name = rest, words[1]
  if name == "state" then
    local sub = words[2]
    if not sub then
      usage("fo-run state needs a command: %s", table.concat(STATE_WORDS, ", "))
    end
    name = "state " .. sub
    if not COMMANDS[name] then
      usage("fo-run state %s: no such command%s; the state commands: %s", sub,
        errors.did_you_mean(sub, STATE_WORDS), table.concat(STATE_WORDS, ", "))
    end
    first = 3
  end
  local spec = COMMANDS[name]
  for i = first, #words do args[#args + 1] = words[i] end
  local own, theirs = {}, {}
  for _, pair in ipairs(pairs_) do
    if not spec.options[pair[1]] then
      usage("fo-run %s takes no %s (usage: %s)", name, pair[1], spec.usage)
    end
    local o = OWN[pair[1]]
    if o then own[o[1]] = o[2] == nil and pair[2] or o[2] else theirs[#theirs + 1] = pair end
  end
  local opts, err = cli.parse(theirs)
  if not opts then usage("%s", err) end
  for k, v in pairs(own) do opts[k] = v end
  if #args < spec.min or (spec.max and #args > spec.max) then
    usage("fo-run %s takes %s (usage: %s)", name, spec.max == 0 and "no arguments"
      or spec.max == spec.min and ("%d argument%s"):format(spec.min, spec.min == 1 and "" or "s")
      or spec.max and ("%d to %d arguments"):format(spec.min, spec.max)
      or ("at least %d argument"):format(spec.min), spec.usage)
  end
  opts.stack_given = opts.stack ~= nil
  opts.stack = opts.stack or "dev"
  if not opts.stack:match("^[%w][%w_.%-]*$") then
    usage("stack name %q: use letters, digits, _ . -", opts.stack)
  end
  return name, opts, args
end

local default_region = require("fo.engine.location").default_region

-- The stack directory without a recipe: --state-dir, $FO_STATE_DIR, else the `.fo` of the
-- current directory or the nearest one above it (stopping at a repository's root), so that
-- a command run in a subfolder of the project finds the stack a recipe run made.
function M.state_dir(dir)
  local location = require "fo.engine.location"
  if dir then return dir end
  local env = os.getenv("FO_STATE_DIR")
  if env and env ~= "" then return env end
  local fs = require "fo.fs"
  local here = fs.realpath(".")
  while here do
    local prefix = here == "/" and "" or here
    if fs.exists(prefix .. "/" .. location.DIR_NAME) then return prefix .. "/" .. location.DIR_NAME end
    if fs.exists(prefix .. "/.git") or here == "/" then break end
    here = here:match("^(.*)/[^/]*$")
    if here == "" then here = "/" end
  end
  return location.DIR_NAME
end

--- The stack of a command: { opts, paths (engine.paths), settings, backend, report }.
--- Raises (usage) for a bad backend.
function M.open(opts, report)
  local config = require "fo.engine.config"
  local backend_mod = require "fo.engine.backend"
  opts.dir = M.state_dir(opts.dir)
  local paths = require("fo.engine.backend.local").paths(opts.dir, opts.stack)
  local settings = backend_mod.take_settings(config.read_file(paths.config) or {}, paths.config)
  local be = backend_mod.open{ spec = opts.backend, settings = settings, dir = opts.dir,
    stack = opts.stack, region = default_region(), unsafe_ok = opts.backend_unsafe_ok,
    objects = opts.objects, client = opts.s3_client }
  return { opts = opts, paths = paths, settings = settings, backend = be, report = report,
    region = default_region() }
end

--- The keys of the stack whose state document is `doc` (secret.lua): nothing is read
--- before a sealed value is opened.
function M.keyring(st, doc)
  return require("fo.engine.secret").keyring{ stack = st.opts.stack, key_path = st.paths.key,
    meta = doc and doc.secrets, provider = st.settings.secrets_provider, region = st.region,
    no_key_file = st.backend.kind ~= "local", kms = st.opts.kms }
end

--- The error of a stack that has no state.
function M.no_state(st)
  usage("stack %s has no state (%s): check --stack, --state-dir and --backend (`fo-run state "
    .. "push FILE` restores a backup)", st.opts.stack, st.backend.where)
end

--- Runs fn(st, doc, original, info, lock) with the stack's lock held; the lock is released
--- after (also on an error). A local stack with no state file is refused before anything
--- is made (unless opts.new_ok: push creates one).
function M.locked(st, fn)
  local be, opts = st.backend, st.opts
  local fs = require "fo.fs"
  if be.kind == "local" and not st.new_ok and not fs.exists(be.where)
      and not fs.exists(require("fo.engine.state").log_path(be.where)) then
    M.no_state(st)
  end
  be:prepare()
  local lk = be:lock(require("fo.engine.secret").scrub(opts.command or "fo-run state"),
    { break_lock = opts.break_lock, yes = opts.yes, timeout = opts.lock_timeout })
  local ok, err = pcall(function()
    local doc, original, info = be:read_state()
    for _, text in ipairs(info.notices or {}) do st.report:notice(text) end
    if not doc and not st.new_ok then M.no_state(st) end
    return fn(st, doc, original, info, lk)
  end)
  lk:unlock()
  if not ok then error(err, 0) end
  return err
end

local function quote(s)
  if s:match("^[%w_%-%./=:,@]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- fo-run's entry for a command: pairs as cli.prepare takes them, then the words that are
--- no option. Leaves the exit code where src/main.c reads it (registry "fo.exit_code").
function M.main(pairs_, ...)
  local words = { ... }
  local report_mod = require "fo.engine.report"
  local code
  local ok, name, opts, args = pcall(M.parse, pairs_ or {}, words)
  if not ok then
    io.stderr:write("fo-run: ", errors.is(name) and name.message or tostring(name),
      "\nTry 'fo-run --help'.\n")
    debug.getregistry()["fo.exit_code"] = EXIT.usage
    return
  end
  local line = { "fo-run" }
  for _, w in ipairs(words) do line[#line + 1] = quote(w) end
  for _, pair in ipairs(pairs_ or {}) do
    for _, w in ipairs(pair) do line[#line + 1] = quote(w) end
  end
  opts.command = table.concat(line, " ")
  if name == "apply" then -- a saved plan: a run of its recipe (saved_plan.lua)
    debug.getregistry()["fo.exit_code"] = require("fo.engine.saved_plan").main(opts, args[1])
    return
  end
  -- the mode of events: state-list, ..., outputs
  local mode = name:gsub(" ", "-")
  local report = report_mod.new{ json = opts.json, stack = opts.stack, mode = mode,
    live = false }
  report.doc.stack, report.doc.mode = opts.stack, mode
  code = M.run(name, opts, args, report)
  debug.getregistry()["fo.exit_code"] = code
end

--- Runs the command `name` (a key of COMMANDS) with opts (as M.parse gives them) and its
--- arguments, reporting to `report`; returns the exit code. In-process callers (tests)
--- may give opts.objects, opts.s3_client, opts.kms as engine.run takes them.
function M.run(name, opts, args, report)
  local st
  local ok, err = xpcall(function()
    st = M.open(opts, report)
    if name == "outputs" then return require("fo.engine.outputs_cmd").run(st, args) end
    return require("fo.engine.state_cmd").run(name:match("^state (%a+)$"), st, args)
  end, function(e)
    if errors.is(e) then return e end
    return { text = debug.traceback(require("fo.task").describe(e), 2) }
  end)
  local code
  if ok then
    code = err or EXIT.ok
  elseif errors.is(err) then
    report:error(err)
    code = errors.exit_code(err)
  else
    report:crash(err, require("fo.log").redact(err.text))
    code = EXIT.recipe
  end
  report:finish(code, { state_file = st and st.backend.where })
  return code
end

return M
