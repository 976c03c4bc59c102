-- How the engine's cost grows with the size of the graph, measured in one run and printed
-- as ratios (docs/engine.md, "Performance"): synthetic graphs of 1k, 5k and 10k resources
-- are planned, applied and re-applied (a no-change rerun: refresh reads everything), each
-- size in a child fo-run process so that peak RSS (VmHWM) is its own.
--
-- Two resource types, each on its own graph shape (a 4-ary tree: resource i depends on
-- resource i // 4, so there are edges to schedule and depth ~log4 n):
--   sim    test:topic (tests/lua/support/engine_types.lua) on the in-process simulator with
--          zero latency: one CreateTopic per create, one GetTopicAttributes and one
--          ListTagsForResource per refresh read, each through SigV4, the wire codec and
--          the sim's handler;
--   local  bench:local, a type whose operations make no call at all: what is left is the
--          engine alone (plan, scheduler, state writes), which the sim's per-call cost
--          would otherwise hide.
-- The apply's state writes are counted: appends to the state log (one per group commit)
-- and folds of the log into the state file, with the bytes each wrote and the time the
-- folds took.
--
-- The machine is shared and noisy: the sizes are run REPS times, interleaved (one round
-- runs every type and size once), and the figures are medians over the rounds; a growth
-- ratio is computed within each round (the smallest and the largest size measured minutes
-- apart at most) and its median printed with the range. Times are wall clock and the
-- process's CPU time (os.clock): other processes on the machine take wall clock, not CPU
-- time, so the CPU figures are the steadier ones (the local type makes no call: its
-- wall-clock time beyond its CPU time is the log's fsyncs). The goals (docs/engine.md,
-- "Scale") are checked at the end: the local type's apply per resource grows by at most
-- 1.1 from the smallest size to the largest, and peak RSS above the empty process stays
-- at most 15 KB per resource.
-- usage: fo-run bench/engine_scale.lua [SIZES] [PARALLEL] [REPS] [TYPES]
--        e.g. 1000,5000,10000 10 5 local,sim (the defaults)
--        (from the repository root; a child is: --one TYPE N PARALLEL)
package.path = "tests/lua/?.lua;" .. package.path

local function vmhwm_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local kb = f:read("a"):match("VmHWM:%s*(%d+)")
  f:close()
  return tonumber(kb) or 0
end

-- One size in this process: prints "RESULT kind n plan_s apply_s rerun_s writes base_kb hwm_kb
-- folds log_bytes state_bytes fold_s" (the apply's: durable state writes — appends to the
-- state log and folds of it into the state file —, the bytes each kind wrote, and the
-- seconds its folds took), then the CPU seconds (os.clock) of plan, apply and rerun, and
-- the apply's CPU split into user and kernel time (fo.process.cpu: the kernel's — fsyncs,
-- page faults — follows the machine's I/O more than the engine's code).
local function one(kind, n, parallel)
  local base = vmhwm_kb()
  local H = require "support.engine_harness"
  local engine = require "fo.engine"
  fo.type("bench:local", {
    doc = "a resource that exists only in the state (benchmarks)",
    schema = { properties = { name = { type = "string", required = true },
      parent = { type = "string" } }, outputs = { "id" } },
    create = function(ctx, p) return "local-" .. p.name, { id = "local-" .. p.name } end,
    read = function(ctx, id) return { id = id }, nil end,
    update = function(ctx, id, old, new, outputs) return outputs end,
    delete = function() end,
  })
  local tname = kind == "sim" and "test:topic" or "bench:local"
  local function recipe()
    local h = {}
    for i = 1, n do
      local name = "r" .. i
      local parent = h[i // 4]
      h[i] = fo.resource(tname, name, { name = name }, { depends_on = parent and { parent } })
    end
  end
  local sim, dir = H.sim(), H.dir()
  local opts = { sim = sim, dir = dir, parallel = parallel }
  -- `counts`: the plan's counts expected (create, noop)
  local function timed(mode, counts)
    local o = { mode = mode }
    for k, v in pairs(opts) do o[k] = v end
    -- the report's text goes nowhere, as a terminal's would (H.run would keep it all in
    -- memory); its errors are kept for the message below
    local errs = {}
    o.recipe, o.out, o.err = recipe, function() end, function(s) errs[#errs + 1] = s end
    local t0, c0, u0, k0 = fo.now(), os.clock(), fo.process.cpu()
    local code, doc = engine.run(o)
    local err = table.concat(errs)
    local u1, k1 = fo.process.cpu()
    local s, cpu = fo.now() - t0, os.clock() - c0
    assert(code == 0, ("%s failed (%d): %s"):format(mode, code, err))
    for k, v in pairs(counts or {}) do
      assert(doc.plan.counts[k] == v, ("%s: %d to %s expected, the plan says %s"):format(mode, v,
        k, tostring(doc.plan.counts[k])))
    end
    return s, cpu, u1 - u0, k1 - k0
  end
  local fs = require "fo.fs"
  local write_atomic, append = fs.write_atomic, fs.append
  local writes, folds, log_bytes, state_bytes = 0, 0, 0, 0
  fs.write_atomic = function(path, data, ...)
    if path:match("%.state%.json$") then
      writes, folds, state_bytes = writes + 1, folds + 1, state_bytes + #data
    elseif path:match("%.state%.log$") then
      log_bytes = log_bytes + #data
    end
    return write_atomic(path, data, ...)
  end
  fs.append = function(path, data, ...)
    if path:match("%.state%.log$") then writes, log_bytes = writes + 1, log_bytes + #data end
    return append(path, data, ...)
  end
  -- the folds' time: the whole document encoded and written (state.lua, FileMedium)
  local medium = getmetatable(require("fo.engine.state").file_medium(dir .. "/x.state.json"))
  local compact, fold_s = medium.compact, 0
  medium.compact = function(...)
    local t0 = fo.now()
    local a, b = compact(...)
    fold_s = fold_s + (fo.now() - t0)
    return a, b
  end
  local plan_s, plan_c = timed("plan", { create = n })
  local apply_s, apply_c, apply_u, apply_k = timed("apply")
  local w, f, lb, sb, fs_s = writes, folds, log_bytes, state_bytes, fold_s
  local rerun_s, rerun_c = timed("apply", { noop = n, create = 0 })
  fs.write_atomic, fs.append, medium.compact = write_atomic, append, compact
  H.cleanup(dir)
  print(("RESULT %s %d %.6f %.6f %.6f %d %d %d %d %d %d %.6f %.6f %.6f %.6f %.6f %.6f"):format(kind,
    n, plan_s, apply_s, rerun_s, w, base, vmhwm_kb(), f, lb, sb, fs_s, plan_c, apply_c, rerun_c,
    apply_u, apply_k))
end

if arg[1] == "--one" then
  one(arg[2], tonumber(arg[3]), tonumber(arg[4]))
  return
end

local sizes = {}
for s in (arg[1] or "1000,5000,10000"):gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
local parallel = tonumber(arg[2] or "10")
local reps = tonumber(arg[3] or "5")
local kinds = {}
for k in (arg[4] or "local,sim"):gmatch("[%w]+") do
  assert(k == "local" or k == "sim", "TYPES: local and/or sim, got " .. k)
  kinds[#kinds + 1] = k
end
local fo_run = arg[-1] or "fo-run"

local function median(xs)
  local t = table.move(xs, 1, #xs, 1, {})
  table.sort(t)
  local m = #t // 2
  return #t % 2 == 1 and t[m + 1] or (t[m] + t[m + 1]) / 2
end
local function range(xs)
  return math.min(table.unpack(xs)), math.max(table.unpack(xs))
end

-- runs[kind][n] = { result, ... } (one per round)
local runs = {}
for _, kind in ipairs(kinds) do
  runs[kind] = {}
  for _, n in ipairs(sizes) do runs[kind][n] = {} end
end
for round = 1, reps do
  io.stderr:write(("round %d/%d\n"):format(round, reps))
  for _, kind in ipairs(kinds) do
    for _, n in ipairs(sizes) do
      local r = fo.process.run{ argv = { fo_run, arg[0], "--", "--one", kind, tostring(n),
        tostring(parallel) }, timeout = 3600 }
      local line = r.stdout:match("RESULT[^\n]*")
      assert(r.code == 0 and line, ("child %s %d failed (%s):\n%s%s"):format(kind, n,
        tostring(r.code), r.stdout, r.stderr))
      local _, _, k, nn, plan_s, apply_s, rerun_s, w, base, hwm, f, lb, sb, fold_s, plan_c, apply_c,
        rerun_c, apply_u, apply_k = line:find("RESULT (%S+) (%d+) (%S+) (%S+) (%S+) (%d+) (%d+) "
          .. "(%d+) (%d+) (%d+) (%d+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
      assert(k == kind and tonumber(nn) == n)
      local rs = runs[kind][n]
      rs[#rs + 1] = { plan = tonumber(plan_s), apply = tonumber(apply_s),
        rerun = tonumber(rerun_s), writes = tonumber(w), base = tonumber(base),
        hwm = tonumber(hwm), folds = tonumber(f), log_bytes = tonumber(lb),
        state_bytes = tonumber(sb), fold = tonumber(fold_s), plan_cpu = tonumber(plan_c),
        apply_cpu = tonumber(apply_c), rerun_cpu = tonumber(rerun_c),
        apply_user = tonumber(apply_u), apply_sys = tonumber(apply_k),
        rss = tonumber(hwm) - tonumber(base) }
    end
  end
end

-- the median over the rounds of field `f` of size n, per resource (`scale`: 1000 for ms)
local function med(kind, n, f, scale)
  local xs = {}
  for i, r in ipairs(runs[kind][n]) do xs[i] = r[f] / n * (scale or 1) end
  return median(xs)
end
-- per round, field `f` per resource (per byte written to the state file: `per_byte`) at
-- size b over size a; the median, min and max
local function growth(kind, a, b, f, per_byte)
  local xs = {}
  for i = 1, reps do
    local ra, rb = runs[kind][a][i], runs[kind][b][i]
    local da, db = per_byte and ra.state_bytes or a, per_byte and rb.state_bytes or b
    xs[i] = (rb[f] / db) / (ra[f] / da)
  end
  return median(xs), range(xs)
end

print(("engine scale: 4-ary dependency tree, zero latency, --parallel %d; one child process "
  .. "per size, %d round%s: medians (ms and KB per resource)"):format(parallel, reps,
    reps == 1 and "" or "s"))
local a, b = sizes[1], sizes[#sizes]
local goals = {}
for _, kind in ipairs(kinds) do
  print(("\n%s (%s)"):format(kind, kind == "sim" and "test:topic on the in-process simulator"
    or "bench:local, no calls: the engine alone"))
  print(("%7s %9s %9s %9s %9s %9s %9s %8s %6s %7s %8s %8s %7s %6s"):format("n", "plan",
    "apply", "apply cpu", "rerun", "rerun cpu", "fold", "writes", "folds", "log MB", "state MB",
    "VmHWM MB", "base MB", "KB/r"))
  for _, n in ipairs(sizes) do
    local r = runs[kind][n][1]
    local hwm, base = {}, {}
    for i, x in ipairs(runs[kind][n]) do hwm[i], base[i] = x.hwm, x.base end
    print(("%7d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %8d %6d %7.1f %8.1f %8.1f %7.1f %6.1f")
      :format(n, med(kind, n, "plan", 1000), med(kind, n, "apply", 1000),
      med(kind, n, "apply_cpu", 1000), med(kind, n, "rerun", 1000),
      med(kind, n, "rerun_cpu", 1000), med(kind, n, "fold", 1000), r.writes, r.folds,
      r.log_bytes / 2^20, r.state_bytes / 2^20,
      median(hwm) / 1024, median(base) / 1024, med(kind, n, "rss")))
  end
  if a ~= b then
    print(("growth %d -> %d per resource (1.0 = linear), median of %d paired rounds (min-max):")
      :format(a, b, reps))
    local parts = {}
    for _, f in ipairs({ "apply", "apply_cpu", "apply_user", "apply_sys", "plan", "plan_cpu",
      "rerun", "rerun_cpu", "fold", "fold/byte", "rss" }) do
      local m, lo, hi = growth(kind, a, b, f:match("^[%a_]+"), f == "fold/byte")
      parts[#parts + 1] = ("%s %.2f (%.2f-%.2f)"):format(f:gsub("_", " "), m, lo, hi)
      if kind == "local" and f == "apply_cpu" then goals.growth = m end
    end
    for i = 1, #parts, 3 do print("  " .. table.concat(parts, ", ", i, math.min(i + 2, #parts))) end
  end
  if kind == "local" then goals.kb = med(kind, b, "rss") end
end
print("")
if goals.growth then
  print(("goal: local apply growth (CPU) %d -> %d per resource <= 1.10: %.2f (%s)"):format(a, b,
    goals.growth, goals.growth <= 1.10 and "met" or "NOT met"))
end
if goals.kb then
  print(("goal: local peak RSS per resource at %d <= 15 KB: %.1f KB (%s)"):format(b, goals.kb,
    goals.kb <= 15 and "met" or "NOT met"))
end
