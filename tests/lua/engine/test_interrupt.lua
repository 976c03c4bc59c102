-- Ctrl-C with real signals: a `fo-run` child applying the 22-resource graph (simulated
-- latency, --parallel 3, so operations are in flight and more wait) gets SIGINT from
-- kill(1). The first stops scheduling, lets the operations in flight finish and rolls back
-- (exit 130, the simulator exactly as before the run), or keeps what was done with
-- --no-rollback; a second exits at once (killed by SIGINT), and the rerun converges from
-- the journal with no duplicate and no leak.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json_events = require "support.json_events"

TestInterrupt = {}

local RECIPE = require("support.engine_graph").stack_file(testlib.tests_dir)

local LATENCY = { FO_SIM_LATENCY_MS = "60" }

local dir, path

function TestInterrupt:setUp()
  dir = H.dir()
  path = dir .. "/stack.lua"
  testlib.write(path, RECIPE)
end

function TestInterrupt:tearDown()
  if child then
    fo.process.run{ argv = { "kill", "-KILL", tostring(child) } }
    child = nil
  end
  H.cleanup(dir)
end

local function env(extra)
  local e = { FO_STATE_DIR = dir .. "/.fo", NO_COLOR = "1" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local function fo_run(args, extra_env)
  local argv = { "--stack", "t" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = path
  return testlib.run_fo(argv, { env = env(extra_env), timeout = 120 })
end

local function sim()
  return fo.sim.new{ file = dir .. "/.fo/t.sim.json" }
end

local child -- the pid of the child running, killed by tearDown if a test fails

-- Starts `fo-run --stack t ARGS RECIPE` in the background with sim latency; its output
-- goes to files the test reads while it runs.
local function start(args, latency)
  local argv = { "--stack", "t" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = path
  local t
  t, child = testlib.spawn_fo(argv, { env = env(latency or LATENCY), pidfile = dir .. "/pid" })
  return t, child
end

local function sigint(pid)
  local r = fo.process.run{ argv = { "kill", "-INT", tostring(pid) } }
  lu.assertEquals(r.code, 0, r.stderr)
end

-- Waits until the child reported `n` operations done (plain lines end in "(0.12s)"; JSON
-- op_end events).
local function wait_for_done(n)
  local deadline = fo.now() + 30
  local seen = 0
  while fo.now() < deadline do
    local text = testlib.read(dir .. "/pid.out") or ""
    seen = select(2, text:gsub('"event":"op_end"', "")) + select(2, text:gsub("%(%d+%.%d%ds%)\n", ""))
    if seen >= n then return end
    fo.sleep(0.02)
  end
  lu.fail(("the child reported %d operations done, not %d"):format(seen, n))
end

local function converges(version)
  local args = { "--config", "version=" .. version }
  local r = fo_run(args)
  lu.assertEquals(r.code, 0, "rerun\n" .. r.stdout .. r.stderr)
  r = fo_run({ "--json", table.unpack(args) })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json_events.last(json_events.parse(r.stdout), "summary").calls.mutating, 0,
    "the second rerun changed something")
  local st = H.state(dir .. "/.fo", "t")
  lu.assertEquals(H.ownership_problems(sim(), st), {})
  local n = 0
  for _ in pairs(st.resources) do n = n + 1 end
  lu.assertEquals(n, version == 1 and 22 or 23)
end

function TestInterrupt:test_first_ctrl_c_finishes_in_flight_then_rolls_back()
  local r = fo_run({ "--config", "version=1" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local before = H.sim_dump(sim())
  local state_before = H.state(dir .. "/.fo", "t")
  -- v1 -> v2: updates, replacements, creates, deletions; interrupted early in phase 1
  local t, pid = start({ "--parallel", "3", "--json", "--config", "version=2" })
  wait_for_done(3)
  sigint(pid)
  r = t:join()
  child = nil
  lu.assertEquals(r.code, 130, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "fo: interrupted: Ctrl-C: no new operation starts")
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  local summary = json_events.last(events, "summary")
  lu.assertEquals(summary.status, "interrupted")
  lu.assertEquals(summary.exit_code, 130)
  lu.assertStrContains(summary.text, "Apply interrupted; rolled back")
  lu.assertNotNil(json_events.last(events, "interrupt"))
  -- every operation that started also ended (in-flight ones finished), and some never started
  local started, ended = {}, {}
  for _, e in ipairs(events) do
    if e.event == "op_start" and e.phase == "apply" then started[e.urn] = true end
    if e.event == "op_end" and e.phase == "apply" then ended[e.urn] = true end
  end
  lu.assertEquals(ended, started)
  lu.assertTrue(#json_events.all(events, "op_start") > 0)
  lu.assertStrContains(summary.text, "never started")
  lu.assertTrue(#json_events.all(events, "op_end") > 0)
  -- the simulator and the state are as before the run
  local diff = H.first_difference(before, H.sim_dump(sim()))
  lu.assertNil(diff, "the simulator differs from before the run: " .. tostring(diff))
  lu.assertEquals(H.state(dir .. "/.fo", "t").resources, state_before.resources)
  converges(1)
end

function TestInterrupt:test_ctrl_c_with_no_rollback_keeps_progress()
  local t, pid = start({ "--parallel", "3", "--no-rollback" })
  wait_for_done(3)
  sigint(pid)
  local r = t:join()
  child = nil
  lu.assertEquals(r.code, 130, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Apply interrupted; --no-rollback: what was done is kept")
  local st = H.state(dir .. "/.fo", "t")
  local n = 0
  for _ in pairs(st.resources) do n = n + 1 end
  lu.assertTrue(n > 0 and n < 22, ("%d resources kept"):format(n))
  lu.assertEquals(H.ownership_problems(sim(), st), {})
  converges(1)
end

function TestInterrupt:test_second_ctrl_c_exits_at_once_and_the_rerun_recovers()
  -- slow operations, so the rollback the first Ctrl-C starts lasts seconds, and the second
  -- comes once the child said it is rolling back (a fixed delay raced the rollback under load)
  local t, pid = start({ "--parallel", "3" }, { FO_SIM_LATENCY_MS = "800" })
  wait_for_done(3)
  sigint(pid)
  local deadline = fo.now() + 30
  while not (testlib.read(dir .. "/pid.err") or ""):find("Press Ctrl-C again", 1, true)
      and fo.now() < deadline do
    fo.sleep(0.02)
  end
  sigint(pid)
  local r = t:join()
  child = nil
  lu.assertEquals(r.signal, 2, ("not killed by SIGINT (exit %s)\n%s%s"):format(tostring(r.code),
    r.stdout, r.stderr))
  -- it did not wait for the rollback to finish
  lu.assertNotStrContains(r.stdout, "Apply interrupted")
  converges(1)
  -- and the stack can go away completely
  r = fo_run({ "--destroy" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertEquals(H.resources(sim()), {})
end

function TestInterrupt:test_ctrl_c_during_destroy_stops_and_the_rerun_finishes()
  local r = fo_run({})
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local t, pid = start({ "--parallel", "2", "--destroy" })
  wait_for_done(2)
  sigint(pid)
  r = t:join()
  child = nil
  lu.assertEquals(r.code, 130, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy interrupted:")
  lu.assertEquals(H.ownership_problems(sim(), H.state(dir .. "/.fo", "t")), {})
  r = fo_run({ "--destroy" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertEquals(H.resources(sim()), {})
end

os.exit(lu.LuaUnit.run())
