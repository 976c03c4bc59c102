-- fo-run's recipe options (--stack, --target, --plan, ...): parsed here from what src/main.c
-- collected before FILE, then the engine runs FILE. A usage problem is exit code 2.
local engine = require "fo.engine"
local errors = require "fo.engine.errors"

local M = {}

-- option → field and kind ("value" takes the next argument, "flag" does not).
local OPTIONS = {
  ["--stack"] = { "stack", "value" }, ["--target"] = { "target", "value" },
  ["--plan"] = { "mode", "flag", "plan" }, ["--destroy"] = { "mode", "flag", "destroy" },
  ["--refresh"] = { "mode", "flag", "refresh" }, ["--no-refresh"] = { "refresh", "flag", false },
  ["--yes"] = { "yes", "flag", true }, ["--parallel"] = { "parallel", "value" },
  ["--no-rollback"] = { "rollback", "flag", false }, ["--config"] = { "config", "value" },
  ["--json"] = { "json", "flag", true }, ["--break-lock"] = { "break_lock", "flag", true },
  ["--state-dir"] = { "dir", "value" }, ["--drill"] = { "drill", "flag", true },
  ["--graph"] = { "graph", "value" },
  ["--rebind-account"] = { "rebind_account", "flag", true },
  ["--rebind-recipe"] = { "rebind_recipe", "flag", true },
  ["--accept-removals"] = { "accept_removals", "flag", true },
}
M.OPTIONS = OPTIONS

--- Options from the argument list; nil and a message on a usage problem.
function M.parse(args)
  local opts = { config = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local spec = OPTIONS[a]
    if not spec then return nil, "unknown option " .. tostring(a) end
    local field, kind, value = spec[1], spec[2], spec[3]
    if kind == "value" then
      value = args[i + 1]
      if value == nil then return nil, a .. " needs a value" end
      i = i + 1
    end
    if field == "mode" then
      if opts.mode and opts.mode ~= value then
        return nil, ("--%s and --%s cannot be combined"):format(opts.mode, value)
      end
      opts.mode, opts.explicit = value, true
    elseif field == "config" then
      local k, v = value:match("^([^=]+)=(.*)$")
      if not k then return nil, ("--config %s: expected key=value"):format(value) end
      opts.config[k] = v
    elseif field == "target" then
      if not require("fo.engine.target").KINDS[value] then
        return nil, ("--target %s: use sim or aws"):format(value)
      end
      opts.target = value
    elseif field == "parallel" then
      local n = math.tointeger(tonumber(value))
      if not n or n < 1 or n > 1000 then
        return nil, ("--parallel %s: expected a whole number from 1 to 1000"):format(value)
      end
      opts.parallel = n
    else
      opts[field] = value
    end
    i = i + 1
  end
  if opts.mode == "destroy" and opts.rollback == false then
    return nil, "--no-rollback goes with an apply, not --destroy"
  end
  if opts.graph and (opts.mode or opts.drill) then
    return nil, "--graph writes the dependency graph and does nothing else: it takes no --plan, "
      .. "--destroy, --refresh or --drill"
  end
  if opts.drill and (opts.mode or opts.json or opts.target == "aws") then
    return nil, "--drill applies the recipe on the simulator, then drills: it takes no --plan, "
      .. "--destroy, --refresh, --json or --target aws"
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
  local ok, res = pcall(require("fo.drill").main, sim, report and report.outputs or {},
    function(line) io.stdout:write(line, "\n") end)
  if not ok then
    io.stderr:write("fo-run: --drill: ", tostring(res), "\n")
    return errors.EXIT.cloud
  end
  return res
end

--- fo-run's entry for FILE: args are the recipe options given before it, script the
--- file ("-" for stdin), ... its own arguments. Leaves the exit code where src/main.c
--- reads it (registry field "fo.exit_code").
function M.main(args, script, ...)
  local opts, err = M.parse(args or {})
  local code
  if not opts then
    io.stderr:write("fo-run: ", err, "\nTry 'fo-run --help'.\n")
    code = errors.EXIT.usage
  else
    opts.recipe, opts.args = script, table.pack(...)
    opts.interrupt = true -- the first Ctrl-C stops an apply cleanly (engine.md)
    local words = { "fo-run" }
    for _, a in ipairs(args) do words[#words + 1] = quote(a) end
    words[#words + 1] = quote(script)
    opts.command = table.concat(words, " ")
    if opts.drill then code = M.drill(opts) else code = engine.run(opts) end
  end
  debug.getregistry()["fo.exit_code"] = code
end

return M
