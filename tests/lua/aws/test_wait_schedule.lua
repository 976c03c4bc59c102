-- When waits against AWS (ctx.target "aws") poll: the notice schedule of fo.aws.waiter, used
-- by resources/common.lua's wait and poll. Against the in-process simulator's DynamoDB, on
-- a test clock: the ctx's sleep moves it (and the simulator's virtual clock) forward, so no
-- test waits for real time. A table ACTIVE 2 s after its create is noticed before 3 s, not
-- at the TableExists waiter's 20 s; gaps grow with the time waited and never exceed the
-- waiter's delay; the waiter's maxAttempts x delay and a timeout still end the wait; a
-- throttled poll backs off. common.retry's consistency retries follow the same schedule.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local common = require "fo.aws.resources.common"
local waiter = require "fo.aws.waiter"
local AwsError = require "fo.aws.error"

local REGION = "eu-south-1"

-- A ctx for AWS on a test clock: sleep(d) records d and moves the clock and the
-- simulator's virtual time by d; polls records the clock at each DynamoDB call.
local function aws_ctx(sim)
  local ctx = { target = "aws", t = 0, sleeps = {}, debug = function() end }
  function ctx:now() return self.t end
  function ctx:sleep(d)
    self.sleeps[#self.sleeps + 1] = d
    self.t = self.t + d
    if sim then sim:advance(d) end
  end
  return ctx
end

local function world()
  local sim = fo.sim.new{ seed = 11 }
  -- one attempt per call: a throttled answer reaches the wait (no real-time client retries)
  return sim, sim:client("dynamodb", { region = REGION, max_attempts = 1 })
end

local function create_table(ddb, name)
  ddb:CreateTable{ TableName = name, BillingMode = "PAY_PER_REQUEST",
    AttributeDefinitions = { { AttributeName = "id", AttributeType = "S" } },
    KeySchema = { { AttributeName = "id", KeyType = "HASH" } } }
end

local function sum(list)
  local s = 0
  for _, v in ipairs(list) do s = s + v end
  return s
end

-- Each gap is the notice schedule's: 10 % of the time waited so far, at least 1 s, at
-- most `cap` (the last one may be shorter: it lands on the limit).
local function assert_notice_gaps(sleeps, cap, skip_last)
  local t = 0
  for i, d in ipairs(sleeps) do
    lu.assertTrue(d <= cap + 1e-9, ("gap %d is %g s, more than the waiter's %g s"):format(i, d, cap))
    if not (skip_last and i == #sleeps) then
      local want = math.min(cap, math.max(1, 0.1 * t))
      lu.assertAlmostEquals(d, want, 1e-6, ("gap %d after %g s"):format(i, t))
    end
    t = t + d
  end
end

-- client:wait's options as common.wait gives them on AWS, on ctx's test clock.
local function notice(ctx, timeout)
  return { schedule = "notice", timeout = timeout, sleep = function(d) ctx:sleep(d) end,
    now = function() return ctx:now() end }
end

TestNotice = {}

function TestNotice.test_a_table_active_at_2s_is_noticed_before_3s_not_at_20s()
  local sim, ddb = world()
  local ddb_model = require("fo.sim.services.dynamodb").TIMING.table_create
  lu.assertEquals(ddb_model, 2, "the simulator's table takes 2 s to become ACTIVE")
  lu.assertEquals(waiter.definition(ddb.model, "dynamodb", "TableExists").delay, 20)
  create_table(ddb, "trades")
  local ctx = aws_ctx(sim)
  local out = common.wait(ctx, ddb, "TableExists", { TableName = "trades" }, 600)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertTrue(#ctx.sleeps >= 2, "it polled again before the 20 s of the model")
  lu.assertTrue(ctx.t >= 2 and ctx.t <= 3, ("noticed at %g s (ACTIVE at 2 s)"):format(ctx.t))
  assert_notice_gaps(ctx.sleeps, 20)
end

function TestNotice.test_gaps_grow_with_the_wait_up_to_the_waiters_delay_and_end_at_max_attempts()
  local sim, ddb = world()
  local ctx = aws_ctx(sim)
  -- a table nobody creates: TableExists retries on ResourceNotFoundException until the
  -- model's 25 attempts 20 s apart are used up, i.e. its last poll 480 s after the first
  local ok, err = pcall(ddb.wait, ddb, "TableExists", { TableName = "never" }, notice(ctx, 600))
  lu.assertFalse(ok)
  lu.assertTrue(waiter.Error.is(err, "max_attempts"), tostring(err))
  lu.assertAlmostEquals(ctx.t, 480, 1e-6)
  assert_notice_gaps(ctx.sleeps, 20, true)
  lu.assertAlmostEquals(ctx.sleeps[#ctx.sleeps - 1], 20, 1e-6, "capped at the waiter's delay")
  lu.assertEquals(err.attempts, #ctx.sleeps + 1)
  -- every 20 s at most, more often early on: more polls than the model's 25, not many more
  lu.assertTrue(err.attempts > 25 and err.attempts < 60, "attempts " .. err.attempts)
end

function TestNotice.test_the_bound_in_seconds_ends_the_wait_with_a_last_poll_at_the_limit()
  local sim, ddb = world()
  local ctx = aws_ctx(sim)
  local ok, err = pcall(ddb.wait, ddb, "TableExists", { TableName = "never" }, notice(ctx, 100))
  lu.assertFalse(ok)
  lu.assertTrue(waiter.Error.is(err, "timeout"), tostring(err))
  lu.assertAlmostEquals(ctx.t, 100, 1e-6)
  assert_notice_gaps(ctx.sleeps, 20, true)
end

function TestNotice.test_throttled_polls_back_off_and_the_schedule_stays_slower()
  local sim, ddb = world()
  create_table(ddb, "trades")
  sim:set_knob("throttle", 1)
  local ctx = aws_ctx(sim)
  local sleep = ctx.sleep
  function ctx:sleep(d)
    sleep(self, d)
    if #self.sleeps == 4 then sim:set_knob("throttle", 0) end -- 4 throttled polls
  end
  local out = ddb:wait("TableExists", { TableName = "trades" }, notice(ctx, 600))
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  -- each throttled answer doubles the gap (from the first 1 s): 2, 4, 8, 16 (the
  -- schedule's own gap after 14 s, 1.4 s, stays below the floor the throttling raised)
  lu.assertEquals({ ctx.sleeps[1], ctx.sleeps[2], ctx.sleeps[3], ctx.sleeps[4] }, { 2, 4, 8, 16 })
  lu.assertEquals(#ctx.sleeps, 4, "noticed on the first answer after the throttling")
end

function TestNotice.test_the_model_schedule_stays_the_default_of_client_wait()
  local sim, ddb = world()
  create_table(ddb, "trades")
  local t, sleeps = 0, {}
  local out, attempts = ddb:wait("TableExists", { TableName = "trades" }, {
    sleep = function(d) sleeps[#sleeps + 1] = d; t = t + d; sim:advance(d) end,
    now = function() return t end })
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertEquals(attempts, 2)
  lu.assertEquals(sleeps, { 20 })
end

function TestNotice.test_an_unknown_schedule_is_refused()
  local _, ddb = world()
  local ok, err = pcall(ddb.wait, ddb, "TableExists", { TableName = "x" }, { schedule = "fast",
    max_attempts = 1 })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), 'schedule must be "model" or "notice", got fast')
end

-- common.poll (waits no model waiter covers) on AWS: the same schedule, at most
-- common.POLL_CAP (15 s) apart, and retryable errors back off.
TestPollNotice = {}

local function throttled()
  return AwsError.new{ service = "autoscaling", operation = "DescribeAutoScalingGroups",
    region = REGION, code = "Throttling", message = "Rate exceeded", status = 400,
    retryable = true, attempts = 1, kind = "service" }
end

-- A probe on the test clock; more polls than a 600 s wait can take end the test.
local function probe(ctx, fn)
  local n = 0
  return function()
    n = n + 1
    if n > 200 then error("polled more than 200 times (the test clock is not used?)", 0) end
    return fn(n)
  end
end

function TestPollNotice.test_done_at_12s_is_noticed_within_10_percent()
  local ctx = aws_ctx()
  local v = common.poll(ctx, "group in service", 600, probe(ctx, function()
    return ctx.t >= 12 and "ok"
  end))
  lu.assertEquals(v, "ok")
  lu.assertTrue(ctx.t >= 12 and ctx.t <= 12 * 1.1, "noticed at " .. ctx.t)
end

function TestPollNotice.test_gaps_grow_up_to_15s_until_the_bound()
  local ctx = aws_ctx()
  local ok, err = pcall(common.poll, ctx, "group in service", 600, probe(ctx, function()
    return false
  end))
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "group in service did not finish within 600 s")
  lu.assertTrue(ctx.t <= 600 and ctx.t > 600 - 15, "polled until the bound, ended at " .. ctx.t)
  assert_notice_gaps(ctx.sleeps, common.POLL_CAP)
  lu.assertEquals(ctx.sleeps[#ctx.sleeps], 15)
end

function TestPollNotice.test_throttled_probes_back_off()
  local ctx = aws_ctx()
  local v = common.poll(ctx, "group in service", 600, probe(ctx, function(n)
    if n <= 3 then error(throttled(), 0) end
    return n == 5 and "ok"
  end))
  lu.assertEquals(v, "ok")
  -- three throttled answers: 2, 4, 8; then a plain "not yet" keeps the floor of 8
  lu.assertEquals(ctx.sleeps, { 2, 4, 8, 8 })
end

-- common.retry (eventual consistency: a new instance profile not yet usable, ...) on AWS:
-- the same schedule, at most the situation's max_delay apart, within its bound.
TestRetryNotice = {}

local function profile_refused()
  return AwsError.new{ service = "ec2", operation = "CreateLaunchTemplate", region = REGION,
    code = "InvalidParameterValue", message = "Invalid IAM Instance Profile name",
    status = 400, retryable = false, attempts = 1, kind = "service" }
end

function TestRetryNotice.test_usable_at_8s_is_used_within_10_percent_not_at_14s()
  local ctx = aws_ctx()
  local v = common.retry(ctx, "instance_profile", probe(ctx, function()
    if ctx.t < 8 then error(profile_refused(), 0) end
    return "lt-1"
  end))
  lu.assertEquals(v, "lt-1")
  -- the situation's doubling (2, 4, 8 s) would have tried again at 2, 6 and 14 s
  lu.assertTrue(ctx.t >= 8 and ctx.t <= 8.8, "used at " .. ctx.t)
  assert_notice_gaps(ctx.sleeps, 10)
end

function TestRetryNotice.test_gaps_stay_under_max_delay_until_the_situations_bound()
  local ctx = aws_ctx()
  local ok, err = pcall(common.retry, ctx, "instance_profile", probe(ctx, function()
    error(profile_refused(), 0)
  end))
  lu.assertFalse(ok)
  lu.assertTrue(AwsError.is(err, "InvalidParameterValue"))
  lu.assertTrue(ctx.t <= 180 and ctx.t > 170, "retried until the bound of 180 s, ended at " .. ctx.t)
  assert_notice_gaps(ctx.sleeps, 10)
end

local function template_unseen()
  return AwsError.new{ service = "autoscaling", operation = "CreateAutoScalingGroup",
    region = REGION, code = "ValidationError", message = "You must use a valid fully-formed "
      .. "launch template. The specified launch template, with template ID lt-1, does not exist.",
    status = 400, retryable = false, attempts = 1, kind = "service" }
end

-- A group naming a new launch template and a new instance profile meets both, one after the
-- other: one retry of the list goes through each (on the sim's doubling schedule), and an
-- error of neither situation is raised at once.
function TestRetryNotice.test_a_list_of_situations_retries_each_and_nothing_else()
  local ctx = aws_ctx()
  ctx.target = "sim"
  local answers = { template_unseen(), profile_refused(), template_unseen(), "asg" }
  local calls = 0
  local v = common.retry(ctx, { "launch_template_not_visible", "instance_profile" }, function()
    calls = calls + 1
    local a = answers[calls]
    if type(a) == "table" then error(a, 0) end
    return a
  end)
  lu.assertEquals(v, "asg")
  lu.assertEquals(calls, 4)
  -- each situation's own delays: the template's 1 then 2 s, the profile's 2 s
  lu.assertEquals(ctx.sleeps, { 1, 2, 2 })
  calls = 0
  local ok, err = pcall(common.retry, ctx, { "launch_template_not_visible", "instance_profile" },
    function()
      calls = calls + 1
      error(AwsError.new{ service = "autoscaling", operation = "CreateAutoScalingGroup",
        region = REGION, code = "ValidationError", message = "Max bound, 5, must be >= min",
        status = 400, retryable = false, attempts = 1, kind = "service" }, 0)
    end)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err.message), "Max bound")
  lu.assertEquals(calls, 1)
end

-- Each situation keeps its own bound, counted from the first call: a template never seen
-- ends at launch_template_not_visible's 120 s although instance_profile allows 180.
function TestRetryNotice.test_each_situation_of_a_list_keeps_its_own_bound()
  local ctx = aws_ctx()
  local ok, err = pcall(common.retry, ctx, { "instance_profile", "launch_template_not_visible" },
    probe(ctx, function() error(template_unseen(), 0) end))
  lu.assertFalse(ok)
  lu.assertTrue(AwsError.is(err, "ValidationError"))
  lu.assertTrue(ctx.t <= 120 and ctx.t > 110, "retried until the bound of 120 s, ended at " .. ctx.t)
end

-- On the simulator (ctx.target "sim") waits poll every common.SIM_POLL from start to start:
-- a poll's latency comes off the sleep after it, so a transition is noticed within one
-- period of it (sleeping the whole period after each answer noticed it up to period +
-- latency late) — and a slow poll still leaves half a period before the next.
TestSimPolls = {}

-- Each probe takes `latency` seconds of the test clock; returns the clock at each start.
local function timed_probe(ctx, latency, done_at)
  local starts = {}
  return starts, function()
    starts[#starts + 1] = ctx.t
    if #starts > 200 then error("polled more than 200 times", 0) end
    ctx.t = ctx.t + latency
    return starts[#starts] >= done_at and "ok"
  end
end

function TestSimPolls.test_polls_start_a_period_apart_whatever_their_latency()
  local ctx = aws_ctx()
  ctx.target = "sim"
  local starts, fn = timed_probe(ctx, 0.1, 2)
  lu.assertEquals(common.poll(ctx, "table active", 600, fn), "ok")
  for i = 2, #starts do
    lu.assertAlmostEquals(starts[i] - starts[i - 1], common.SIM_POLL, 1e-9,
      ("poll %d started %g s after the one before"):format(i, starts[i] - starts[i - 1]))
  end
  lu.assertTrue(starts[#starts] - 2 < common.SIM_POLL + 1e-9,
    ("done at 2 s, noticed by a poll that started at %g s"):format(starts[#starts]))
end

function TestSimPolls.test_a_poll_slower_than_the_period_is_followed_by_half_a_period()
  local ctx = aws_ctx()
  ctx.target = "sim"
  local starts, fn = timed_probe(ctx, 0.4, 3)
  common.poll(ctx, "table active", 600, fn)
  for i = 2, #starts do
    lu.assertAlmostEquals(starts[i] - starts[i - 1], 0.4 + common.SIM_POLL / 2, 1e-9)
  end
end

-- Wraps the client's calls so that each takes `latency` of the test clock; returns the
-- clock at each call's start.
local function timed_calls(client, ctx, sim, latency)
  local starts, invoke = {}, client._invoke
  client._invoke = function(...)
    starts[#starts + 1] = ctx.t
    ctx.t = ctx.t + latency
    if sim then sim:advance(latency) end
    return invoke(...)
  end
  return starts
end

function TestSimPolls.test_a_model_waiter_on_the_simulator_is_paced_the_same_way()
  local sim, ddb = world()
  create_table(ddb, "trades")
  local ctx = aws_ctx(sim)
  ctx.target = "sim"
  timed_calls(ddb, ctx, sim, 0.1) -- each DescribeTable takes 0.1 s of the test clock
  local out = common.wait(ctx, ddb, "TableExists", { TableName = "trades" }, 600)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  for i, d in ipairs(ctx.sleeps) do
    lu.assertAlmostEquals(d, common.SIM_POLL - 0.1, 1e-9, ("sleep %d"):format(i))
  end
  lu.assertTrue(ctx.t <= 2 + common.SIM_POLL + 0.1 + 1e-9, ("ACTIVE at 2 s, seen at %g s"):format(ctx.t))
end

-- A wait begun by a call whose answer already said "not ready yet" (CreateTable's
-- CREATING, CreateLoadBalancer's provisioning; `pending`): its first poll comes one period
-- after the start, where the second would have been, instead of repeating that answer at
-- once; the transition is still noticed within one period of it.
TestPendingStart = {}

function TestPendingStart.test_sim_poll_first_probe_a_period_after_the_start()
  local ctx = aws_ctx()
  ctx.target = "sim"
  local starts, fn = timed_probe(ctx, 0.1, 2)
  lu.assertEquals(common.poll(ctx, "table active", 600, fn, true), "ok")
  lu.assertAlmostEquals(starts[1], common.SIM_POLL, 1e-9, "the first probe one period in")
  for i = 2, #starts do
    lu.assertAlmostEquals(starts[i] - starts[i - 1], common.SIM_POLL, 1e-9)
  end
  lu.assertTrue(starts[#starts] >= 2 and starts[#starts] - 2 < common.SIM_POLL + 1e-9,
    ("done at 2 s, noticed by a poll that started at %g s"):format(starts[#starts]))
  -- without `pending` the first probe is at once (one poll more for the same wait)
  local ctx2 = aws_ctx()
  ctx2.target = "sim"
  local starts2, fn2 = timed_probe(ctx2, 0.1, 2)
  common.poll(ctx2, "table active", 600, fn2)
  lu.assertEquals(starts2[1], 0)
  lu.assertEquals(#starts2, #starts + 1)
end

function TestPendingStart.test_sim_waiter_first_poll_a_period_after_the_start()
  local sim, ddb = world()
  create_table(ddb, "trades")
  local ctx = aws_ctx(sim)
  ctx.target = "sim"
  local starts = timed_calls(ddb, ctx, sim, 0.1)
  local out = common.wait(ctx, ddb, "TableExists", { TableName = "trades" }, 600, true)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertAlmostEquals(starts[1], common.SIM_POLL, 1e-9, "the first poll one period in")
  for i = 2, #starts do
    lu.assertAlmostEquals(starts[i] - starts[i - 1], common.SIM_POLL, 1e-9)
  end
  lu.assertTrue(starts[#starts] >= 2 and starts[#starts] - 2 < common.SIM_POLL + 1e-9,
    ("ACTIVE at 2 s, seen by the poll that started at %g s"):format(starts[#starts]))
end

function TestPendingStart.test_aws_waiter_first_poll_at_the_first_recheck()
  local sim, ddb = world()
  create_table(ddb, "trades")
  local ctx = aws_ctx(sim)
  local starts = timed_calls(ddb, ctx, sim, 0)
  local out = common.wait(ctx, ddb, "TableExists", { TableName = "trades" }, 600, true)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertEquals(starts[1], waiter.NOTICE_FIRST, "the first poll at the notice schedule's first re-check")
  lu.assertTrue(ctx.t >= 2 and ctx.t <= 3, ("ACTIVE at 2 s, noticed at %g s"):format(ctx.t))
  assert_notice_gaps(ctx.sleeps, 20)
end

function TestPendingStart.test_aws_poll_first_probe_at_the_first_recheck()
  local ctx = aws_ctx()
  local starts = {}
  local v = common.poll(ctx, "group in service", 600, probe(ctx, function()
    starts[#starts + 1] = ctx.t
    return ctx.t >= 12 and "ok"
  end), true)
  lu.assertEquals(v, "ok")
  lu.assertEquals(starts[1], waiter.NOTICE_FIRST)
  lu.assertTrue(ctx.t >= 12 and ctx.t <= 12 * 1.1, "noticed at " .. ctx.t)
  assert_notice_gaps(ctx.sleeps, common.POLL_CAP)
end

function TestPendingStart.test_a_bound_shorter_than_the_period_still_polls_once()
  local ctx = aws_ctx()
  local n = 0
  local ok, err = pcall(common.poll, ctx, "x", 0.5, function() n = n + 1 return false end, true)
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "x did not finish within 0.5 s")
  lu.assertEquals(n, 1)
  lu.assertTrue(ctx.t <= 0.5 + 1e-9)
end

os.exit(lu.LuaUnit.run())
