-- The REPL's helpers, globals of the session: help(), stack("dev") (a stack's state and
-- dependency graph, read-only, from lua/fo/engine/state.lua) and sim() (its simulator).
local M = {}

M.HELP = [[
fo REPL — Lua 5.4 with the fo runtime (`fo`, `aws`). Each line runs as a task on the
event loop; its values are printed. Globals you set (x = 1, or local x = 1) last for
the session; `_` is the last value printed.

  ec2 = aws.ec2{ region = "eu-south-1" }       a client (AWS credentials as for fo-run)
  s = fo.sim.new{}; ec2 = s:client("ec2", { region = "eu-south-1" })   the simulator
  ec2:DescribeVpcs{}                           call an operation
  ec2:operations()   help(ec2, "CreateVpc")    what a service offers, an operation's shape
  st = stack("dev")                            a stack's state: st.resources, st.outputs,
                                               st.graph; .stack NAME prints it
  s = sim()                                    the simulator of that stack (target sim)
  fo.spawn(fn)                                 background task: runs while you type

keys: TAB completes names (globals, fields, operations after `ec2:`, an operation's
member names inside its `{ }`), Ctrl-C interrupts a running line or clears the input,
Ctrl-D (or os.exit()) leaves. A line that is not complete continues on the next one.
History: ~/.fo_history ($FO_HISTORY). docs/repl.md has the details.]]

--- help() prints the above; help(client) the service; help(client, "Op") or
--- help("ec2", "Op") the operation's input and output shapes.
function M.help(what, op)
  local client_mod = require "fo.aws.client"
  if what == nil then
    print(M.HELP)
  elseif client_mod.is(what) then
    print(what:help(op))
  elseif type(what) == "string" then
    local models = require "fo.aws.models"
    local model = models.load(what)
    if op == nil then
      local ops = {}
      for k in pairs(model.operations) do ops[#ops + 1] = k end
      table.sort(ops)
      print(("aws.%s: %d operations: %s"):format(what, #ops, table.concat(ops, ", ")))
    else
      if not model.operations[op] then
        error(("%s has no operation '%s'%s"):format(what, tostring(op),
          require("fo.aws.suggest").hint(op, model.operations)), 2)
      end
      print(require("fo.aws.shape_help").operation(model, what, op, {}))
    end
  else
    error("help(): give nothing, a client (with an operation name) or a service name", 2)
  end
end

-- A read-only view of `t`: reads and pairs pass through, writes raise.
local function readonly(t, what)
  if type(t) ~= "table" then return t end
  local cache = {}
  local function wrap(v)
    if type(v) ~= "table" then return v end
    local w = cache[v]
    if not w then
      w = readonly(v, what)
      cache[v] = w
    end
    return w
  end
  return setmetatable({}, {
    __index = function(_, k) return wrap(t[k]) end,
    __newindex = function() error(what .. " is read-only", 2) end,
    __pairs = function()
      return function(_, k)
        local nk, nv = next(t, k)
        return nk, wrap(nv)
      end, nil, nil
    end,
    __len = function() return #t end,
  })
end

local current -- the stack named last by stack()

local function stack_paths(name)
  local engine = require "fo.engine"
  return engine.paths(engine.state_dir(), name)
end

--- stack(name) → the stack's state, read-only: name, target, file, outputs, config,
--- resources (URN → record: type, name, id, region, inputs, outputs, deps) and graph
--- (URN → {depends_on = {...}, dependents = {...}}). Without a name: the last one.
function M.stack(name)
  name = name or current or "dev"
  if type(name) ~= "string" or not name:match("^[%w_.-]+$") then
    error("stack(name): a stack name such as \"dev\"", 2)
  end
  local paths = stack_paths(name)
  local doc = require("fo.engine.state").read(paths.state)
  if not doc then
    error(("stack %s has no state file (%s): it was never applied in this state directory")
      :format(name, paths.state), 2)
  end
  current = name
  local graph = {}
  for urn, rec in pairs(doc.resources) do
    graph[urn] = graph[urn] or { depends_on = {}, dependents = {} }
    for _, dep in ipairs(rec.deps or {}) do
      graph[urn].depends_on[#graph[urn].depends_on + 1] = dep
      graph[dep] = graph[dep] or { depends_on = {}, dependents = {} }
      graph[dep].dependents[#graph[dep].dependents + 1] = urn
    end
  end
  for _, g in pairs(graph) do
    table.sort(g.depends_on)
    table.sort(g.dependents)
  end
  local count = 0
  for _ in pairs(doc.resources) do count = count + 1 end
  return readonly({ name = name, target = doc.target, file = paths.state, recipe = doc.recipe,
    outputs = doc.outputs, config = doc.config, resources = doc.resources, graph = graph,
    count = count, deposed = doc.deposed }, "stack " .. name)
end

--- sim(name) → the simulator of stack `name` (default: the last stack()), loaded from its
--- .fo/<name>.sim.json: sim:client("ec2", {region = ...}) explores what the stack built.
function M.sim(name)
  name = name or current or "dev"
  local paths = stack_paths(name)
  if not require("fo.fs").exists(paths.sim) then
    error(("stack %s has no simulator file (%s): is its target sim?"):format(name, paths.sim), 2)
  end
  current = name
  return require("fo.sim").new{ file = paths.sim }
end

return M
