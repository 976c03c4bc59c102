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
-- and folds of the log into the state file, with the bytes each wrote.
-- usage: fo-run bench/engine_scale.lua [SIZES] [PARALLEL]   e.g. 1000,5000,10000 10
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
-- folds log_bytes state_bytes" (the apply's: durable state writes — appends to the state log
-- and folds of it into the state file — and the bytes each kind wrote).
local function one(kind, n, parallel)
  local base = vmhwm_kb()
  local H = require "support.engine_harness"
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
    local t0 = fo.now()
    local code, doc, _, err = H.run(recipe, o)
    local s = fo.now() - t0
    assert(code == 0, ("%s failed (%d): %s"):format(mode, code, err))
    for k, v in pairs(counts or {}) do
      assert(doc.plan.counts[k] == v, ("%s: %d to %s expected, the plan says %s"):format(mode, v,
        k, tostring(doc.plan.counts[k])))
    end
    return s
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
  local plan_s = timed("plan", { create = n })
  local apply_s = timed("apply")
  local w, f, lb, sb = writes, folds, log_bytes, state_bytes
  local rerun_s = timed("apply", { noop = n, create = 0 })
  fs.write_atomic, fs.append = write_atomic, append
  H.cleanup(dir)
  print(("RESULT %s %d %.6f %.6f %.6f %d %d %d %d %d %d"):format(kind, n, plan_s, apply_s,
    rerun_s, w, base, vmhwm_kb(), f, lb, sb))
end

if arg[1] == "--one" then
  one(arg[2], tonumber(arg[3]), tonumber(arg[4]))
  return
end

local sizes = {}
for s in (arg[1] or "1000,5000,10000"):gmatch("%d+") do sizes[#sizes + 1] = tonumber(s) end
local parallel = tonumber(arg[2] or "10")
local fo_run = arg[-1] or "fo-run"
local results = {}
for _, kind in ipairs({ "sim", "local" }) do
  results[kind] = {}
  for _, n in ipairs(sizes) do
    local r = fo.process.run{ argv = { fo_run, arg[0], "--", "--one", kind, tostring(n),
      tostring(parallel) }, timeout = 3600 }
    local line = r.stdout:match("RESULT[^\n]*")
    assert(r.code == 0 and line, ("child %s %d failed (%s):\n%s%s"):format(kind, n,
      tostring(r.code), r.stdout, r.stderr))
    local _, _, k, nn, plan_s, apply_s, rerun_s, w, base, hwm, f, lb, sb = line:find(
      "RESULT (%S+) (%d+) (%S+) (%S+) (%S+) (%d+) (%d+) (%d+) (%d+) (%d+) (%d+)")
    assert(k == kind and tonumber(nn) == n)
    results[kind][n] = { plan = tonumber(plan_s), apply = tonumber(apply_s),
      rerun = tonumber(rerun_s), writes = tonumber(w), base = tonumber(base), hwm = tonumber(hwm),
      folds = tonumber(f), log_bytes = tonumber(lb), state_bytes = tonumber(sb) }
  end
end

local ms = function(s, n) return s / n * 1000 end
print(("engine scale: 4-ary dependency tree, zero latency, --parallel %d; one child process "
  .. "per size"):format(parallel))
for _, kind in ipairs({ "sim", "local" }) do
  print(("\n%s (%s)"):format(kind, kind == "sim" and "test:topic on the in-process simulator"
    or "bench:local, no calls: the engine alone"))
  print(("%7s %10s %10s %10s %8s %6s %9s %9s %9s %9s %11s"):format("n", "plan ms/r",
    "apply ms/r", "rerun ms/r", "writes", "folds", "log MB", "state MB", "VmHWM MB", "base MB",
    "KB/resource"))
  for _, n in ipairs(sizes) do
    local r = results[kind][n]
    print(("%7d %10.3f %10.3f %10.3f %8d %6d %9.1f %9.1f %9.1f %9.1f %11.2f"):format(n,
      ms(r.plan, n), ms(r.apply, n), ms(r.rerun, n), r.writes, r.folds, r.log_bytes / 2^20,
      r.state_bytes / 2^20, r.hwm / 1024, r.base / 1024, (r.hwm - r.base) / n))
  end
  local a, b = sizes[1], sizes[#sizes]
  if a ~= b then
    local ra, rb = results[kind][a], results[kind][b]
    print(("growth %d -> %d (x%g resources), per resource (1.0 = linear): plan %.2f, apply %.2f, "
      .. "rerun %.2f, RSS %.2f"):format(a, b, b / a, rb.plan / b / (ra.plan / a),
      rb.apply / b / (ra.apply / a), rb.rerun / b / (ra.rerun / a),
      ((rb.hwm - rb.base) / b) / ((ra.hwm - ra.base) / a)))
  end
end
