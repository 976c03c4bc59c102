-- How close an apply of recipes/trading.lua comes to its critical-path bound, measured in
-- one run and printed as ratios (docs/engine.md, "Waits and the trading critical path").
--
-- The bound: the longest dependency path of the stack (the dependencies the state records),
-- each resource weighing calls x LATENCY + provisioning, where
--   calls         the simulator calls its create makes when nothing takes time (a dry run,
--                 zero latency and every provisioning delay at zero: each wait is answered
--                 by its first poll, nothing is retried);
--   provisioning  how long its create waits for the simulator (a dry run at zero latency
--                 with the simulator's timings, polls and consistency retries every 10 ms):
--                 a load balancer provisioning, a table becoming ACTIVE, instances starting,
--                 an instance profile propagating, ...
-- plus the calls made before the first create (the regions' probes) x LATENCY. Calls are
-- told to their resource by the coroutine of its create. Then three applies, each on a
-- fresh simulator with LATENCY ms per call and --parallel 1000 (above the graph's width):
--   (a) in-process simulator (target sim), its timings;
--   (b) in-process simulator with every provisioning delay at zero (bound: calls only);
--   (c) fo-run --target aws against the simulator served on 127.0.0.1 (AWS's waits); the
--       served simulator adds no latency, so its bound counts the calls as nothing.
-- usage: fo-run bench/trading_critical_path.lua [LATENCY_MS]   (from the repository root)
package.path = "tests/lua/?.lua;" .. package.path
local testlib = require "support.testlib"
if not os.getenv("FO_RUN") then testlib.fo_run = "build/fo-run" end
local types = require "fo.engine.types"

local LATENCY_MS = tonumber(arg[1] or "100")
local PARALLEL = 1000
local RECIPE = "recipes/trading.lua"
local STACK = "bench"
local CONFIG = { environmentSuffix = "bench" }

-- Every provisioning delay of the simulator at zero.
local ZERO = { lb_provisioning = 0, lb_eni_release = 0, instance_start = 0,
  instance_terminate = 0, group_delete = 0, profile_propagation = 0, nat_provisioning = 0,
  nat_delete = 0, refresh_batch = 0 }
local ddb = require "fo.sim.services.dynamodb"
local DDB_DEFAULT = ddb.TIMING
local DDB_ZERO = {}
for k in pairs(DDB_DEFAULT) do DDB_ZERO[k] = 0 end

-- Each create's span and calls, by URN; calls are told to a resource by the coroutine.
local owner = setmetatable({}, { __mode = "k" })
local spans, outside = {}, {}
require "fo.aws.resources"
-- Every type's create wrapped, those the recipe registers too: the registry (an upvalue
-- of types.get) is replaced by a proxy that wraps each entry stored in it.
local function wrap(entry)
  local create = entry.create
  entry.create = function(ctx, ...)
    local co = coroutine.running()
    local s = { t0 = fo.now(), calls = 0 }
    spans[ctx.urn] = s
    owner[co] = s
    local r = table.pack(pcall(create, ctx, ...))
    owner[co] = nil
    s.t1 = fo.now()
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
  return entry
end
local slot, shadow
for i = 1, math.huge do
  local name, v = debug.getupvalue(types.get, i)
  if not name then break end
  if name == "registry" then slot, shadow = i, v end
end
assert(slot, "fo.engine.types has no registry upvalue")
for _, entry in pairs(shadow) do wrap(entry) end
debug.setupvalue(types.get, slot, setmetatable({}, {
  __index = shadow,
  __newindex = function(_, k, v) shadow[k] = v and wrap(v) end,
  __pairs = function() return next, shadow, nil end,
}))

local function new_sim(latency_ms, zero)
  local sim = fo.sim.new{ seed = "bench-trading", latency_ms = latency_ms }
  if zero then sim.timing = ZERO end
  local add = sim.recorder.add
  sim.recorder.add = function(self, call)
    local s = owner[coroutine.running()]
    if s then s.calls = s.calls + 1 else outside[#outside + 1] = fo.now() end
    return add(self, call)
  end
  return sim
end

local function with_ddb(timing, fn)
  ddb.TIMING = timing
  local ok, a, b = pcall(fn)
  ddb.TIMING = DDB_DEFAULT
  if not ok then error(a, 0) end
  return a, b
end

-- One apply in-process; returns its wall time and the state's dependencies.
local function apply(sim, zero)
  local dir = testlib.tmpdir()
  spans, outside = {}, {}
  local out = {}
  local t0 = fo.now()
  local code = with_ddb(zero and DDB_ZERO or DDB_DEFAULT, function()
    return require("fo.engine").run{ recipe = RECIPE, sim = sim, dir = dir, stack = STACK,
      config = CONFIG, parallel = PARALLEL, out = function(s) out[#out + 1] = s end,
      err = function(s) out[#out + 1] = s end }
  end)
  local wall = fo.now() - t0
  assert(code == 0, ("apply failed (%d): %s"):format(code, table.concat(out):sub(-3000)))
  local doc = require("fo.engine.state").read(("%s/%s.state.json"):format(dir, STACK))
  testlib.rmtree(dir)
  return wall, doc, t0
end

-- Dry run 1: calls per resource (zero latency, zero provisioning).
local _, doc, t0 = apply(new_sim(0, true), true)
local calls, prelude_calls, total, first = {}, 0, 0, math.huge
for urn, s in pairs(spans) do
  calls[urn] = s.calls
  total = total + s.calls
  first = math.min(first, s.t0)
end
for _, t in ipairs(outside) do if t < first then prelude_calls = prelude_calls + 1 end end
local outside_calls = #outside
local provisioning_zero = {}
for urn, s in pairs(spans) do provisioning_zero[urn] = s.t1 - s.t0 end
_ = t0

-- Dry run 2: provisioning per resource (zero latency, the sim's timings, 10 ms polls).
local common = require "fo.aws.resources.common"
local consistency = require "fo.aws.resources.consistency"
local saved_poll, saved_delays = common.SIM_POLL, {}
common.SIM_POLL = 0.01
for name, sit in pairs(consistency) do
  saved_delays[name] = { sit.delay, sit.max_delay }
  sit.delay, sit.max_delay = 0.01, 0.01
end
apply(new_sim(0, false), false)
common.SIM_POLL = saved_poll
for name, d in pairs(saved_delays) do consistency[name].delay, consistency[name].max_delay = d[1], d[2] end
local provisioning = {}
for urn, s in pairs(spans) do provisioning[urn] = s.t1 - s.t0 end

-- The critical path: the longest dependency path, each resource weighing its calls x
-- latency plus its provisioning.
local lat = LATENCY_MS / 1000
local function critical_path(prov, lat)
  local finish, via = {}, {}
  local function done(urn)
    if finish[urn] then return finish[urn] end
    finish[urn] = 0 -- a cycle cannot happen (the engine refused it); guards the recursion
    local best, from = 0, nil
    for _, d in ipairs(doc.resources[urn] and doc.resources[urn].deps or {}) do
      if doc.resources[d] then
        local f = done(d)
        if f > best then best, from = f, d end
      end
    end
    finish[urn] = best + (calls[urn] or 0) * lat + (prov[urn] or 0)
    via[urn] = from
    return finish[urn]
  end
  local cp, last = 0, nil
  for urn in pairs(doc.resources) do
    if done(urn) > cp then cp, last = done(urn), urn end
  end
  local path = {}
  while last do
    table.insert(path, 1, ("%s(%d calls%s)"):format(last:gsub("^" .. STACK .. "::", ""), calls[last] or 0,
      (prov[last] or 0) >= 0.05 and (", %.1f s"):format(prov[last]) or ""))
    last = via[last]
  end
  return cp + prelude_calls * lat, path
end

local n = 0
for _ in pairs(doc.resources) do n = n + 1 end
local bound_a, path_a = critical_path(provisioning, lat)
local bound_b, path_b = critical_path(provisioning_zero, lat)
-- the served sim adds no latency (the knob is the in-process transport's): calls cost
-- what loopback HTTP costs, counted as nothing
local bound_c = critical_path(provisioning, 0)
print(("trading: %d resources, %d calls in creates, %d outside them (%d before the first create)")
  :format(n, total, outside_calls, prelude_calls))
print(("latency %d ms per call, --parallel %d"):format(LATENCY_MS, PARALLEL))
print("critical path with the sim's timings: " .. table.concat(path_a, " > "))
print("critical path without provisioning:   " .. table.concat(path_b, " > "))

local rows = {}
local function row(name, wall, bound, goal)
  rows[#rows + 1] = ("%-50s %8.2f %8.2f %8.3f %6.2f"):format(name, wall, bound, wall / bound, goal)
end

-- (a) in-process, the sim's timings.
row("(a) in-process sim", apply(new_sim(LATENCY_MS, false), false), bound_a, 1.03)
-- (b) in-process, provisioning at zero.
row("(b) in-process sim, provisioning at zero", apply(new_sim(LATENCY_MS, true), true), bound_b, 1.5)
-- (c) fo-run --target aws against the served sim.
do
  local sim = new_sim(LATENCY_MS, false)
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local k = require("fo.sim.keys").DEFAULT
  local dir = testlib.tmpdir()
  local env = { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = "us-east-1", AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port),
    FO_STATE_DIR = dir .. "/.fo", FO_LOG = "warn" }
  local t = fo.now()
  local r = testlib.run_fo({ "--target", "aws", "--yes", "--stack", STACK, "--parallel",
    tostring(PARALLEL), "--config", "environmentSuffix=" .. CONFIG.environmentSuffix, RECIPE },
    { env = env, timeout = 900 })
  local wall = fo.now() - t
  srv:close()
  testlib.rmtree(dir)
  assert(r.code == 0, ("--target aws apply failed (%d): %s%s"):format(r.code,
    r.stdout:sub(-2000), r.stderr:sub(-2000)))
  row("(c) fo-run --target aws, served sim (no latency)", wall, bound_c, 1.15)
end

print(("%-50s %8s %8s %8s %6s"):format("apply", "wall s", "bound s", "ratio", "goal"))
for _, r in ipairs(rows) do print(r) end
