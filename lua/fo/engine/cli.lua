-- fo-run's recipe options (--stack, --target, --plan, ...): src/main.c parses the command
-- line (getopt_long, one table of options) and hands them here as name/value pairs; this
-- file gives them their meaning and checks their values, then the engine runs FILE. A usage
-- problem is exit code 2.
local engine = require "fo.engine"
local errors = require "fo.engine.errors"

local M = {}

-- option → field, and the value a flag sets (nil: the option's value, which src/main.c
-- requires for exactly these options).
local OPTIONS = {
  ["--stack"] = { "stack" }, ["--target"] = { "target" },
  ["--plan"] = { "mode", "plan" }, ["--destroy"] = { "mode", "destroy" },
  ["--refresh"] = { "mode", "refresh" }, ["--no-refresh"] = { "refresh", false },
  ["--yes"] = { "yes", true }, ["--parallel"] = { "parallel" },
  ["--no-rollback"] = { "rollback", false }, ["--config"] = { "config" },
  ["--json"] = { "json", true }, ["--break-lock"] = { "break_lock", true },
  ["--state-dir"] = { "dir" }, ["--drill"] = { "drill", true },
  ["--plot"] = { "plot" }, ["--traffic"] = { "traffic" },
  ["--graph"] = { "graph" }, ["--only"] = { "only" }, ["--out"] = { "plan_out" },
  ["--rebind-account"] = { "rebind_account", true },
  ["--rebind-recipe"] = { "rebind_recipe", true },
  ["--accept-removals"] = { "accept_removals", true },
  ["--backend"] = { "backend" }, ["--backend-unsafe-ok"] = { "backend_unsafe_ok", true },
  ["--lock-timeout"] = { "lock_timeout" }, ["--migrate-state"] = { "migrate_to" },
  ["--print-policy"] = { "print_policy", true },
  ["--drill-scenario"] = { "drill_scenario" }, ["--drill-runs"] = { "drill_runs" },
  ["--drill-seed"] = { "drill_seed" },
  ["--readiness"] = { "readiness", true },
  ["--game-day"] = { "game_day", true },
}

--- Seconds from a duration: "90", "90s", "5m", "1h"; nil when it is not one.
function M.duration(text)
  local n, unit = tostring(text):match("^(%d+%.?%d*)([smh]?)$")
  n = tonumber(n)
  if not n then return nil end
  return n * ({ [""] = 1, s = 1, m = 60, h = 3600 })[unit]
end
M.OPTIONS = OPTIONS

--- Options from the pairs src/main.c parsed ({ {"--stack", "prod"}, {"--plan"}, ... }, in
--- command-line order); nil and a message on a usage problem.
function M.parse(pairs_)
  local opts = { config = {} }
  for _, pair in ipairs(pairs_) do
    local a = pair[1]
    local spec = OPTIONS[a]
    if not spec then return nil, "unknown option " .. tostring(a) end
    local field, value = spec[1], spec[2]
    if value == nil then value = pair[2] end
    if value == nil then return nil, a .. " needs a value" end
    if field == "mode" then
      if opts.mode and opts.mode ~= value then
        return nil, ("--%s and --%s cannot be combined"):format(opts.mode, value)
      end
      opts.mode, opts.explicit = value, true
    elseif field == "config" then
      local k, v = value:match("^([^=]+)=(.*)$")
      if not k then return nil, ("--config %s: expected key=value"):format(value) end
      opts.config[k] = v
    elseif field == "only" then -- repeatable: every pattern (fo.engine.only)
      if value == "" then return nil, "--only needs a resource: a URN, type::name, name or glob" end
      opts.only = opts.only or {}
      opts.only[#opts.only + 1] = value
    elseif field == "traffic" then
      local k, v = value:match("^([^=]+)=(.*)$")
      if not k then return nil, ("--traffic %s: expected knob=value"):format(value) end
      opts.traffic = opts.traffic or {}
      opts.traffic[k] = v
    elseif field == "target" then
      if not require("fo.engine.target").KINDS[value] then
        return nil, ("--target %s: use sim or aws"):format(value)
      end
      opts.target = value
    elseif field == "backend" then
      local ok, why = require("fo.engine.backend").check_spec(value)
      if not ok then return nil, ("--backend %s: %s"):format(value, why) end
      opts.backend = value
    elseif field == "migrate_to" then
      local ok, why = require("fo.engine.backend").check_spec(value)
      if not ok then return nil, ("--migrate-state %s: %s"):format(value, why) end
      opts.migrate_to = value
    elseif field == "lock_timeout" then
      local s = M.duration(value)
      if not s then
        return nil, ("--lock-timeout %s: expected a duration (30s, 5m, 1h)"):format(value)
      end
      opts.lock_timeout = s
    elseif field == "drill_scenario" then
      local names = require("fo.drill.scenarios").NAMES
      local known = false
      for _, n in ipairs(names) do known = known or n == value end
      if not known then
        return nil, ("--drill-scenario %s: use %s"):format(value, table.concat(names, ", "))
      end
      opts.drill_scenario = value
    elseif field == "drill_runs" or field == "drill_seed" then
      local n = math.tointeger(tonumber(value))
      local lo, hi = field == "drill_runs" and 1 or 0, field == "drill_runs" and 10000 or 2^31 - 1
      if not n or n < lo or n > hi then
        return nil, ("%s %s: expected a whole number from %d to %d"):format(a, value, lo, hi)
      end
      opts[field] = n
    elseif field == "parallel" then
      local n = math.tointeger(tonumber(value))
      if not n or n < 1 or n > 1000 then
        return nil, ("--parallel %s: expected a whole number from 1 to 1000"):format(value)
      end
      opts.parallel = n
    else
      opts[field] = value
    end
  end
  if opts.plan_out and opts.mode ~= "plan" then
    return nil, "--out FILE saves a plan: it goes with --plan (then `fo-run apply FILE` applies it)"
  end
  if opts.mode == "destroy" and opts.rollback == false then
    return nil, "--no-rollback goes with an apply, not --destroy"
  end
  if opts.migrate_to and (opts.mode or opts.drill or opts.graph or opts.json) then
    return nil, "--migrate-state moves the stack's state and does nothing else: it takes no "
      .. "--plan, --destroy, --refresh, --drill, --graph or --json"
  end
  if opts.only and (opts.drill or opts.graph or opts.migrate_to or opts.print_policy
      or opts.readiness or opts.game_day) then
    return nil, "--only selects the resources of an apply, --plan, --destroy or --refresh: it "
      .. "takes no --drill, --graph, --migrate-state, --print-policy, --readiness or --game-day"
  end
  if opts.graph and (opts.mode or opts.drill) then
    return nil, "--graph writes the dependency graph and does nothing else: it takes no --plan, "
      .. "--destroy, --refresh or --drill"
  end
  if opts.graph == "-" and opts.json then
    return nil, "--graph - writes the DOT text to standard output: it takes no --json"
  end
  if opts.drill and (opts.mode or opts.target == "aws") then
    return nil, "--drill applies the recipe on the simulator, then drills: it takes no --plan, "
      .. "--destroy, --refresh or --target aws"
  end
  if (opts.drill_scenario or opts.drill_runs or opts.drill_seed) and not opts.drill then
    return nil, "--drill-scenario, --drill-runs and --drill-seed go with --drill"
  end
  if (opts.drill_runs or opts.drill_seed) and opts.drill_scenario ~= "phase" then
    return nil, "--drill-runs and --drill-seed go with --drill-scenario phase (the random moment)"
  end
  if (opts.plot or opts.traffic) and not opts.drill then
    return nil, (opts.plot and "--plot" or "--traffic") .. " goes with --drill"
  end
  if (opts.plot or opts.traffic) and opts.drill_scenario and opts.drill_scenario ~= "region" then
    return nil, (opts.plot and "--plot" or "--traffic") .. " goes with the region drill (clients, "
      .. "capacity and sessions follow a regional outage): leave out --drill-scenario"
  end
  if opts.traffic then
    local ok, err = require("fo.drill.traffic").params(opts.traffic)
    if not ok then return nil, err end
  end
  if opts.print_policy and (opts.mode or opts.drill or opts.graph or opts.json
      or opts.target == "aws") then
    return nil, "--print-policy runs the recipe's lifecycle on a private simulator and prints "
      .. "the deployer's IAM policy: it takes no --plan, --destroy, --refresh, --drill, "
      .. "--graph, --json or --target aws"
  end
  if opts.readiness and (opts.mode or opts.drill or opts.graph or opts.print_policy) then
    return nil, "--readiness reads the stack and AWS, and changes nothing: it takes no --plan, "
      .. "--destroy, --refresh, --drill, --graph or --print-policy"
  end
  if opts.game_day and (opts.mode or opts.drill or opts.graph or opts.print_policy
      or opts.migrate_to or opts.target == "sim") then
    return nil, "--game-day runs on a stack deployed on AWS and does nothing else: it takes "
      .. "no --plan, --destroy, --refresh, --drill, --graph, --print-policy, --migrate-state "
      .. "or --target sim"
  end
  return opts
end

local function quote(s)
  if s:match("^[%w_%-%./=:,@]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- --drill: converges the stack (a sim stack only), then runs lua/fo/drill.lua on its
--- simulator with the stack's outputs. Exit code: the apply's when it failed, else the
--- drill's (0 passed, 3 failed).
function M.drill(opts)
  opts.stack = opts.stack or "dev"
  local paths = engine.paths(engine.state_dir(opts.dir, opts.recipe), opts.stack)
  local doc = require("fo.engine.state").read(paths.state)
  if doc and doc.target ~= "sim" then
    io.stderr:write(("fo-run: --drill runs on the simulator; stack %s is bound to target %s. "
      .. "On AWS, follow docs/runbook.md instead.\n"):format(opts.stack, doc.target))
    return errors.EXIT.usage
  end
  local code, report = engine.run(opts)
  if code ~= errors.EXIT.ok then return code end
  local sim = require("fo.sim").new{ file = paths.sim }
  local t0 = require("fo.core").now()
  local ok, res, result = pcall(require("fo.drill").main, sim, report and report.outputs or {},
    function(line) io.stdout:write(line, "\n") end, { scenario = opts.drill_scenario,
      runs = opts.drill_runs, seed = opts.drill_seed, json = opts.json, plot = opts.plot,
      traffic = opts.traffic })
  if not ok then
    io.stderr:write("fo-run: --drill: ", tostring(res), "\n")
    return errors.EXIT.cloud
  end
  if opts.json then
    -- one more event after the apply's (docs/json-events.md, "drill")
    local t = (report and report.seconds or 0) + require("fo.core").now() - t0
    io.stdout:write(require("fo.drill").json_event(result, t), "\n")
  end
  return res
end

-- The recipe options of this run, checked by M.prepare before anything runs.
local prepared

-- src/main.c's recipe options ({name = takes a value}) and OPTIONS must name the same
-- options, and a flag here must be one without a value there: raises (fo's bug) if not.
local function check_table(c_options)
  for name, takes_value in pairs(c_options) do
    local spec = OPTIONS[name]
    assert(spec, "fo.engine.cli: src/main.c's option " .. name .. " has no meaning here")
    assert((spec[2] == nil) == takes_value,
      "fo.engine.cli: option " .. name .. " takes a value in one table, not in the other")
  end
  for name in pairs(OPTIONS) do
    assert(c_options[name] ~= nil, "fo.engine.cli: option " .. name .. " is not in src/main.c")
  end
end

--- fo-run's first step when a FILE is given: checks the recipe options (pairs as M.parse
--- takes them) before -e code or FILE runs; c_options: src/main.c's table of them. Leaves
--- the exit code where src/main.c reads it (registry field "fo.exit_code"): 0, or 2 after
--- saying what is wrong.
function M.prepare(pairs_, c_options)
  if c_options then check_table(c_options) end
  local opts, err = M.parse(pairs_ or {})
  local code = errors.EXIT.ok
  if not opts then
    io.stderr:write("fo-run: ", err, "\nTry 'fo-run --help'.\n")
    code = errors.EXIT.usage
  else
    local words = { "fo-run" }
    for _, pair in ipairs(pairs_ or {}) do
      for _, w in ipairs(pair) do words[#words + 1] = quote(w) end
    end
    opts.words = words
    prepared = opts
  end
  debug.getregistry()["fo.exit_code"] = code
end

--- fo-run's entry for FILE, after M.prepare: script is the file ("-" for stdin), ... its
--- own arguments. Leaves the exit code in the registry, as M.prepare.
function M.main(script, ...)
  local opts = assert(prepared, "fo.engine.cli.main: the options were not prepared")
  prepared = nil
  local code
  opts.recipe, opts.args = script, table.pack(...)
  opts.interrupt = true -- the first Ctrl-C stops an apply cleanly (engine.md)
  local words = opts.words
  opts.words = nil
  words[#words + 1] = quote(script)
  opts.command = table.concat(words, " ")
  if opts.print_policy then
    code = require("fo.engine.deployer_policy").main(opts)
  elseif opts.drill then
    code = M.drill(opts)
  elseif opts.readiness then
    code = require("fo.readiness_cli").main(opts)
  elseif opts.game_day then
    code = require("fo.game_day").main(opts)
  else
    code = engine.run(opts)
  end
  debug.getregistry()["fo.exit_code"] = code
end

return M
