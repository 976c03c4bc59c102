-- The simulator's persistence and virtual clock: state saved atomically after mutating
-- calls and seen by a sim loaded from the file; ids never repeat across reloads; corrupt
-- files are refused with the fix; reset; scheduled work runs in virtual-time order.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local simlib = require "fo.sim"

local handlers = { sns = {
  CreateTopic = function(ctx, p)
    local arn = ctx:arn(p.Name)
    ctx.db.topics = ctx.db.topics or {}
    ctx.db.topics[p.Name] = { arn = arn, id = ctx:id("topic"), n = 3, ratio = 2.0,
      created = ctx:now(), list = { "a" }, empty = {} }
    return { TopicArn = arn }
  end,
  ListTopics = function(ctx)
    local out = {}
    for _, topic in pairs(ctx.db.topics or {}) do out[#out + 1] = { TopicArn = topic.arn } end
    return { Topics = out }
  end,
} }

local function ls(dir)
  return fo.process.run{ argv = { "ls", "-A", dir } }.stdout
end

TestState = {}

function TestState.test_saved_after_mutating_calls_and_loaded_by_a_new_sim()
  local dir = t.tmpdir()
  local file = dir .. "/.fo/trading.sim.json"
  local a = simlib.new{ file = file, handlers = handlers }
  a:invoke("sns", "eu-south-1", "ListTopics", {})
  lu.assertFalse(fo.fs.exists(file), "reads do not save")
  local arn = a:invoke("sns", "eu-south-1", "CreateTopic", { Name = "alerts" }).TopicArn
  -- the snapshot and its log, no temp file left
  lu.assertEquals(ls(dir .. "/.fo"), "trading.sim.json\ntrading.sim.log\n")
  for _, f in ipairs({ file, dir .. "/.fo/trading.sim.log" }) do
    lu.assertEquals(fo.process.run{ argv = { "stat", "-c", "%a", f } }.stdout, "600\n")
  end

  local b = simlib.new{ file = file, handlers = handlers }
  lu.assertEquals(b:invoke("sns", "eu-south-1", "ListTopics", {}).Topics, { { TopicArn = arn } })
  local topic = b.store:db("123456789012", "eu-south-1", "sns").topics.alerts
  lu.assertEquals(math.type(topic.n), "integer")
  lu.assertEquals(math.type(topic.ratio), "float")
  lu.assertEquals(topic.list, { "a" })
  lu.assertEquals(topic.empty, {})
  -- The id stream continues: no id handed out twice.
  local first = topic.id
  b:invoke("sns", "eu-south-1", "CreateTopic", { Name = "other" })
  lu.assertNotEquals(b.store:db("123456789012", "eu-south-1", "sns").topics.other.id, first)
  local c = simlib.new{ file = file, handlers = handlers }
  lu.assertEquals(#c:invoke("sns", "eu-south-1", "ListTopics", {}).Topics, 2)
  t.rmtree(dir)
end

function TestState.test_corrupt_file_is_refused_with_the_fix()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  t.write(file, '{"format": "fo-sim-state", "version": 1, "accounts": {')
  local ok, e = pcall(simlib.new, { file = file })
  lu.assertFalse(ok)
  lu.assertStrContains(e, file)
  lu.assertStrContains(e, "invalid JSON")
  lu.assertStrContains(e, "sim:reset()")
  lu.assertStrContains(e, "rm " .. file)
  t.write(file, '{"something": "else"}')
  ok, e = pcall(simlib.new, { file = file })
  lu.assertStrContains(e, "not a simulator state document")
  t.rmtree(dir)
end

function TestState.test_reset_empties_and_saves()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local a = simlib.new{ file = file, handlers = handlers }
  a:invoke("sns", "eu-south-1", "CreateTopic", { Name = "alerts" })
  a:reset()
  lu.assertEquals(a:invoke("sns", "eu-south-1", "ListTopics", {}).Topics, {})
  local b = simlib.new{ file = file, handlers = handlers }
  lu.assertEquals(b:invoke("sns", "eu-south-1", "ListTopics", {}).Topics, {})
  t.rmtree(dir)
end

function TestState.test_unsavable_handler_state_is_a_clear_error()
  local sim = simlib.new{}
  sim.store:db("1", "r", "s").bad = function() end
  local ok, e = pcall(sim.store.encode, sim.store)
  lu.assertFalse(ok)
  lu.assertStrContains(e, "$.accounts.1.r.s.bad")
end

TestClock = {}

function TestClock.test_advance_runs_due_work_in_time_order()
  local sim = simlib.new{}
  local t0 = sim:now()
  local log = {}
  sim.clock:every(10, function(at) log[#log + 1] = ("every %d"):format(math.floor(at - t0 + 0.5)) end)
  sim.clock:at(t0 + 25, function(at)
    log[#log + 1] = "at 25"
    lu.assertAlmostEquals(sim:now(), at, 0.5) -- now() reads the job's time while it runs
  end)
  local late = sim.clock:at(t0 + 100, function() log[#log + 1] = "never" end)
  sim:advance(35)
  late.cancel()
  sim:advance(100)
  lu.assertEquals({ table.unpack(log, 1, 5) }, { "every 10", "every 20", "at 25", "every 30", "every 40" })
  lu.assertNotNil(sim:now() - t0 >= 135)
  for _, l in ipairs(log) do lu.assertNotEquals(l, "never") end
end

function TestClock.test_ctx_now_follows_virtual_time()
  local seen
  local sim = simlib.new{ handlers = { sts = { GetCallerIdentity = function(ctx)
    seen = ctx:now()
    return { Account = ctx.account }
  end } } }
  sim:advance(3600)
  sim:invoke("sts", "us-east-1", "GetCallerIdentity", {})
  lu.assertTrue(seen - os.time() > 3590)
end

function TestClock.test_jobs_cannot_advance_the_clock()
  local sim = simlib.new{}
  sim.clock:every(1, function() sim:advance(1) end)
  local ok, e = pcall(sim.advance, sim, 2)
  lu.assertFalse(ok)
  lu.assertStrContains(e, "cannot advance from inside a scheduled job")
end

TestKnobs = {}

function TestKnobs.test_environment_and_options()
  local env = { FO_SIM_LATENCY_MS = "20", FO_SIM_THROTTLE = "0.25", FO_SIM_OUTAGE = "eu-south-1, us-east-1" }
  local sim = simlib.new{ env = function(k) return env[k] end, fail_5xx = 0.1, throttle = 0.5 }
  lu.assertEquals(sim.knobs.latency_ms, 20)
  lu.assertEquals(sim.knobs.throttle, 0.5) -- the option wins
  lu.assertEquals(sim.knobs.fail_5xx, 0.1)
  lu.assertTrue(sim.knobs:in_outage("us-east-1"))
  local ok, e = pcall(simlib.new, { throttle = 2 })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "throttle")
  env = { FO_SIM_CONSISTENCY_MS = "soon" }
  ok, e = pcall(simlib.new, { env = function(k) return env[k] end })
  lu.assertStrContains(e, "FO_SIM_CONSISTENCY_MS")
  sim:set_knob("latency_ms", 5)
  lu.assertEquals(sim.knobs.latency_ms, 5)
end

os.exit(lu.LuaUnit.run())
