-- How many AWS calls the trading stack costs, measured in one run and printed as ratios
-- against the goals (docs/engine.md, "Performance", "Calls and reads").
--
-- 1. recipes/trading.lua applied on the in-process simulator at zero latency, one
--    operation at a time: the calls per resource of the apply, by resource type (the calls
--    each type's create made) and by API operation, so one sees what is left.
-- 2. A no-op rerun of that stack (nothing to change) with LATENCY ms per call: its reads
--    per resource and its wall time (median of RUNS), at the default --parallel (10), at
--    --parallel 10 given and at --parallel 1: the reads' concurrency is not --parallel's.
--
-- 3. The same apply as `fo-run recipes/trading.lua` meets it: the simulator's own
--    provisioning times (a DynamoDB replica takes 10 s, a load balancer provisions ...),
--    LATENCY ms per call, the default --parallel. Its waits poll for as long as the
--    transitions take, and calls the simulator's eventual consistency refuses are retried.
--
-- Polls of a create that waits for provisioning count as calls; in 1 the sim's fast
-- timings of fo.testing (M.FAST) keep those few, in 3 they are what a user's run makes.
-- usage: fo-run bench/trading_calls.lua [LATENCY_MS] [RUNS]   (from the repository root)
local testing = require "fo.testing"
local types = require "fo.engine.types"

local LATENCY_MS = tonumber(arg[1] or "100")
local RUNS = tonumber(arg[2] or "3")
local GOAL_APPLY = 1.3       -- calls per resource for the apply
local GOAL_RERUN_READS = 1.1 -- reads per resource for the no-op rerun
local GOAL_RERUN_WALL = 0.5  -- seconds for the no-op rerun at 100 ms per call

require "fo.aws.resources"

-- Calls each type's create makes (one operation at a time: the difference is its own);
-- the longest read of each type (wall seconds) while timing_reads.
local counting_sim
local by_type, creates = {}, {}
local timing_reads, read_wall = false, {}
for _, name in ipairs(types.names()) do
  local t = types.get(name)
  local read = t.read
  t.read = function(...)
    local t0 = fo.now()
    local r = table.pack(read(...))
    if timing_reads then read_wall[name] = math.max(read_wall[name] or 0, fo.now() - t0) end
    return table.unpack(r, 1, r.n)
  end
  local create = t.create
  t.create = function(ctx, p)
    local before = counting_sim and counting_sim:count() or 0
    local r = table.pack(create(ctx, p))
    if counting_sim then
      by_type[name] = (by_type[name] or 0) + counting_sim:count() - before
      creates[name] = (creates[name] or 0) + 1
    end
    return table.unpack(r, 1, r.n)
  end
end

-- The resources the apply created (a first apply creates every one).
local function resources_of(st)
  local n = 0
  for _, op in ipairs(st.doc.operations) do
    if op.action == "create" then n = n + 1 end
  end
  return n
end

local function check(st, what)
  if st.code ~= 0 then
    error(("%s exited %d:\n%s%s"):format(what, st.code, st.out:sub(-3000), st.err:sub(-3000)), 0)
  end
end

local function sorted_counts(map)
  local list = {}
  for k, v in pairs(map) do list[#list + 1] = { k = k, n = v } end
  table.sort(list, function(a, b)
    if a.n ~= b.n then return a.n > b.n end
    return a.k < b.k
  end)
  return list
end

-- 1. The apply.
local st = testing.apply("recipes/trading.lua", { seed = "bench-trading", stack = "bench",
  config = { environmentSuffix = "bench" }, parallel = 1, before = function(sim)
    -- each region's default VPC exists from the start, as in an account (not fo's calls)
    for _, region in ipairs({ "eu-south-1", "eu-central-1", "us-east-1" }) do
      sim:invoke("ec2", region, "DescribeVpcs", {})
    end
    sim.recorder:clear()
    counting_sim = sim
  end })
check(st, "the apply")
counting_sim = nil
st.parallel = nil -- the reruns: the engine's default unless said
local n = resources_of(st)
local counts = st.sim:counts()
local sum = 0
for _, v in pairs(by_type) do sum = sum + v end

print(("trading apply: %d resources, %d calls (%d mutating, %d reads): %.2f calls per resource")
  :format(n, counts.total, counts.mutating, counts.total - counts.mutating, counts.total / n))
print(("  calls outside the creates (the plan, refresh, outputs): %d"):format(counts.total - sum))
print("  calls per create, by type (calls / resources):")
for _, e in ipairs(sorted_counts(by_type)) do
  print(("    %-38s %4d / %-3d = %.2f"):format(e.k, e.n, creates[e.k], e.n / creates[e.k]))
end
print("  calls by operation:")
for _, e in ipairs(sorted_counts(counts.by_operation)) do
  print(("    %-46s %4d"):format(e.k, e.n))
end

-- 2. No-op reruns with latency.
local function rerun(parallel)
  st.sim.recorder:clear()
  st.sim:set_knob("latency_ms", LATENCY_MS)
  local t0 = fo.now()
  local code = st:run{ parallel = parallel }
  local wall = fo.now() - t0
  st.sim:set_knob("latency_ms", 0)
  if code ~= 0 or not st.out:find("No changes", 1, true) then
    error(("the rerun (--parallel %s) exited %d or changed something:\n%s%s"):format(
      tostring(parallel), code, st.out:sub(-3000), st.err:sub(-3000)), 0)
  end
  local c = st.sim:counts()
  return c, wall
end

-- each --parallel: the median wall time of RUNS reruns (the machine may be shared), and
-- the calls of the last
local function reruns(parallel)
  local walls, c = {}, nil
  for i = 1, RUNS do c, walls[i] = rerun(parallel) end
  table.sort(walls)
  return c, walls[(RUNS + 1) // 2]
end
timing_reads = true
local default_c, default_wall = reruns(nil)
timing_reads = false
local p10_c, p10_wall = reruns(10)
local p1_c, p1_wall = reruns(1)
print(("no-op rerun at %d ms per call (median wall of %d runs):"):format(LATENCY_MS, RUNS))
print(("  %-22s %6s %6s %9s %8s"):format("", "calls", "reads", "reads/res", "wall s"))
for _, r in ipairs({ { "default --parallel", default_c, default_wall },
  { "--parallel 10", p10_c, p10_wall }, { "--parallel 1", p1_c, p1_wall } }) do
  local c = r[2]
  print(("  %-22s %6d %6d %9.2f %8.3f"):format(r[1], c.total, c.total - c.mutating,
    (c.total - c.mutating) / n, r[3]))
end
print("  longest read of a resource, by type (default --parallel; seconds):")
for i, e in ipairs(sorted_counts(read_wall)) do
  if i > 8 then break end
  print(("    %-38s %.3f"):format(e.k, e.n))
end
print("  rerun reads by operation (default --parallel):")
for _, e in ipairs(sorted_counts(default_c.by_operation)) do
  print(("    %-46s %4d"):format(e.k, e.n))
end

-- 3. The apply at the simulator's own timings and LATENCY_MS, as a user's run meets it.
st:close()
local user = testing.apply("recipes/trading.lua", { seed = "bench-trading", stack = "bench",
  config = { environmentSuffix = "bench" }, fast = false,
  sim_options = { knobs = { latency_ms = LATENCY_MS } }, before = function(sim)
    for _, region in ipairs({ "eu-south-1", "eu-central-1", "us-east-1" }) do
      sim:invoke("ec2", region, "DescribeVpcs", {})
    end
    sim.recorder:clear()
  end })
check(user, "the apply at the simulator's own timings")
local uc = user.sim:counts()
local un = resources_of(user)
print(("trading apply at the simulator's own timings, %d ms per call, default --parallel: "
  .. "%d resources, %d calls (%d mutating, %d reads): %.2f calls per resource, %.1f s")
  :format(LATENCY_MS, un, uc.total, uc.mutating, uc.total - uc.mutating, uc.total / un,
    user.doc.seconds or 0))
print("  its most frequent calls (polls of waits, retried creates):")
for i, e in ipairs(sorted_counts(uc.by_operation)) do
  if i > 8 then break end
  print(("    %-46s %4d"):format(e.k, e.n))
end
user:close()

local scale = LATENCY_MS / 100
print("against the goals (ratio ≤ 1 meets it):")
print(("  apply calls per resource        %.2f / %.2f = %.2f"):format(counts.total / n,
  GOAL_APPLY, counts.total / n / GOAL_APPLY))
print(("  same, the sim's own timings     %.2f / %.2f = %.2f"):format(uc.total / un,
  GOAL_APPLY, uc.total / un / GOAL_APPLY))
print(("  rerun reads per resource        %.2f / %.2f = %.2f"):format(
  (default_c.total - default_c.mutating) / n, GOAL_RERUN_READS,
  (default_c.total - default_c.mutating) / n / GOAL_RERUN_READS))
print(("  rerun wall (default --parallel) %.3f / %.3f = %.2f"):format(default_wall,
  GOAL_RERUN_WALL * scale, default_wall / (GOAL_RERUN_WALL * scale)))
print(("  rerun wall (--parallel 10)      %.3f / %.3f = %.2f"):format(p10_wall,
  GOAL_RERUN_WALL * scale, p10_wall / (GOAL_RERUN_WALL * scale)))
