-- client:wait against loopback servers that change their answer over polls: success on
-- the 3rd poll, failure acceptors, timeout, max attempts, error acceptors (retry and
-- success), status acceptors, boolean path results, unexpected errors, and that waiting
-- sleeps on the event loop (other tasks run meanwhile).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local codec_mod = require "support.fake_codec"

local function client(service, s, extra)
  return aws[service](codec_mod.client_options(codec_mod.new(), s, extra))
end

local function vpcs(...)
  local list = {}
  for i, state in ipairs{ ... } do list[i] = { VpcId = "vpc-" .. i, State = state } end
  return codec_mod.ok{ Vpcs = list }
end

-- A server answering operation `op` with answers[n] on poll n (the last one repeats).
local function polls(op, answers)
  return codec_mod.server{ [op] = function(_, _, n) return answers[math.min(n, #answers)] end }
end

local function wait_error(c, ...)
  local ok, err = pcall(c.wait, c, ...)
  lu.assertFalse(ok, "the wait should have failed")
  lu.assertTrue(aws.WaiterError.is(err), "a WaiterError, got: " .. tostring(err))
  return err
end

TestWait = {}

function TestWait.test_succeeds_on_the_third_poll_after_the_delay()
  local s = polls("DescribeVpcs", { vpcs("pending"), vpcs("available", "pending"), vpcs("available", "available") })
  local ec2 = client("ec2", s)
  local out, attempts = ec2:wait("VpcAvailable", { VpcIds = { "vpc-1", "vpc-2" } }, { delay = 0.05 })
  s.close()
  lu.assertEquals(attempts, 3)
  lu.assertEquals(out.Vpcs[2].State, "available")
  lu.assertEquals(#s.requests, 3)
  lu.assertEquals(s.params[3], { VpcIds = { "vpc-1", "vpc-2" } })
  for i = 2, 3 do
    lu.assertTrue(s.times[i] - s.times[i - 1] >= 0.045, "polls are a delay apart")
  end
end

function TestWait.test_a_failure_acceptor_ends_the_wait_with_the_state_and_reason()
  local function instances(state)
    return codec_mod.ok{ Reservations = { { Instances = { { InstanceId = "i-1", State = { Name = state } } } } } }
  end
  local s = polls("DescribeInstances", { instances("pending"), instances("terminated") })
  local ec2 = client("ec2", s)
  local err = wait_error(ec2, "InstanceRunning", { InstanceIds = { "i-1" } }, { delay = 0.01 })
  s.close()
  lu.assertEquals(err.reason, "failure")
  lu.assertEquals(err.waiter, "InstanceRunning")
  lu.assertEquals(err.attempts, 2)
  lu.assertEquals(tostring(err), "ec2 waiter InstanceRunning reached a failure state after 2 "
    .. 'attempts; last state: failure (pathAny Reservations[].Instances[].State.Name == "terminated": '
    .. 'Reservations[].Instances[].State.Name = ["terminated"])')
end

function TestWait.test_timeout_ends_the_wait_in_time()
  local s = polls("DescribeVpcs", { vpcs("pending") })
  local ec2 = client("ec2", s)
  local started = fo.now()
  local err = wait_error(ec2, "VpcAvailable", {}, { delay = 0.05, timeout = 0.2 })
  local elapsed = fo.now() - started
  s.close()
  lu.assertEquals(err.reason, "timeout")
  -- The model allows 40 polls 15 s apart; the timeout ends it within about 0.2 s (with
  -- room for a slow sanitizer build), never sleeping past the deadline.
  lu.assertTrue(elapsed < 1, "stopped by the timeout, took " .. elapsed)
  lu.assertTrue(err.attempts >= 2 and err.attempts <= 5, "attempts " .. err.attempts)
  lu.assertStrContains(tostring(err), "ec2 waiter VpcAvailable timed out after")
  lu.assertStrContains(tostring(err), '(timeout 0.2 s); last state: pending (Vpcs[].State = ["pending"])')
end

function TestWait.test_max_attempts_option_overrides_the_model()
  local s = polls("DescribeVpcs", { vpcs("pending") })
  local ec2 = client("ec2", s)
  local err = wait_error(ec2, "VpcAvailable", {}, { delay = 0, max_attempts = 2 })
  s.close()
  lu.assertEquals(err.reason, "max_attempts")
  lu.assertEquals(#s.requests, 2)
  lu.assertEquals(tostring(err), "ec2 waiter VpcAvailable gave up after 2 attempts (max attempts); "
    .. 'last state: pending (Vpcs[].State = ["pending"])')
end

function TestWait.test_pathAll_does_not_match_an_empty_list()
  local s = polls("DescribeVpcs", { codec_mod.ok{ Vpcs = {} }, vpcs("available") })
  local ec2 = client("ec2", s)
  local _, attempts = ec2:wait("VpcAvailable", {}, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 2)
end

function TestWait.test_error_acceptor_retries_then_path_succeeds()
  local s = polls("DescribeTable", {
    codec_mod.error(400, "ResourceNotFoundException", "Requested resource not found"),
    codec_mod.ok{ Table = { TableStatus = "CREATING" } },
    codec_mod.ok{ Table = { TableStatus = "ACTIVE" } },
  })
  local ddb = client("dynamodb", s)
  local out, attempts = ddb:wait("TableExists", { TableName = "orders" }, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 3)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
end

function TestWait.test_error_acceptor_can_be_the_success()
  local s = polls("DescribeTable", {
    codec_mod.ok{ Table = { TableStatus = "DELETING" } },
    codec_mod.error(400, "ResourceNotFoundException", "gone"),
  })
  local ddb = client("dynamodb", s)
  local out, attempts = ddb:wait("TableNotExists", { TableName = "orders" }, { delay = 0 })
  s.close()
  lu.assertNil(out)
  lu.assertEquals(attempts, 2)
end

function TestWait.test_status_acceptor_with_an_error_retry()
  local s = polls("GetRole", { codec_mod.error(404, "NoSuchEntity", "no role"),
                               codec_mod.ok{ Role = { RoleName = "app" } } })
  local iam = client("iam", s)
  local out, attempts = iam:wait("RoleExists", { RoleName = "app" }, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 2)
  lu.assertEquals(out.Role.RoleName, "app")
end

function TestWait.test_boolean_path_result()
  local s = polls("DescribeAlarms", { codec_mod.ok{ MetricAlarms = {} },
                                      codec_mod.ok{ MetricAlarms = { { AlarmName = "p99" } } } })
  local cw = client("cloudwatch", s)
  local _, attempts = cw:wait("AlarmExists", { AlarmNames = { "p99" } }, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 2)
end

function TestWait.test_an_error_no_acceptor_expects_ends_the_wait_at_once()
  local s = polls("DescribeVpcs", { codec_mod.error(403, "UnauthorizedOperation", "not allowed") })
  local ec2 = client("ec2", s)
  local err = wait_error(ec2, "VpcAvailable", {}, { delay = 0 })
  s.close()
  lu.assertEquals(err.reason, "error")
  lu.assertEquals(#s.requests, 1)
  lu.assertTrue(aws.Error.is(err.error, "UnauthorizedOperation"))
  lu.assertStrContains(tostring(err), "ec2 waiter VpcAvailable stopped on an unexpected error after "
    .. "1 attempt; last state: error (ec2.DescribeVpcs: UnauthorizedOperation (HTTP 403)")
end

function TestWait.test_a_503_past_the_clients_retries_does_not_end_the_wait()
  -- max_attempts = 1: the client does not retry, so the 503s reach the waiter itself
  local s = polls("DescribeVpcs", { codec_mod.error(503, "Unavailable", "busy"),
    codec_mod.error(400, "RequestLimitExceeded", "slow down"), vpcs("available") })
  local ec2 = client("ec2", s, { max_attempts = 1 })
  local out, attempts = ec2:wait("VpcAvailable", {}, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 3)
  lu.assertEquals(out.Vpcs[1].State, "available")
end

function TestWait.test_retryable_errors_until_the_end_are_reported_with_the_last_one()
  local s = polls("DescribeVpcs", { codec_mod.error(500, "InternalError", "oops") })
  local ec2 = client("ec2", s, { max_attempts = 1 })
  local err = wait_error(ec2, "VpcAvailable", {}, { delay = 0, max_attempts = 4 })
  s.close()
  lu.assertEquals(err.reason, "max_attempts")
  lu.assertEquals(err.attempts, 4)
  lu.assertEquals(err.state, "retry")
  lu.assertTrue(aws.Error.is(err.error, "InternalError"))
  lu.assertStrContains(tostring(err), "last state: retry (error InternalError, HTTP 500)")
end

function TestWait.test_the_waiters_calls_go_through_the_clients_retries()
  local s = polls("DescribeVpcs", { codec_mod.error(503, "Unavailable", "busy"),
    codec_mod.error(503, "Unavailable", "busy"), vpcs("available") })
  local ec2 = client("ec2", s, { max_attempts = 3 })
  local _, attempts = ec2:wait("VpcAvailable", {}, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 1, "one poll: the client retried the 503s")
  lu.assertEquals(#s.requests, 3)
end

function TestWait.test_errors_before_sending_are_raised_unchanged()
  local ec2 = aws.ec2(codec_mod.client_options(codec_mod.new{ reject = { Bad = "expected string, got number" } }, nil))
  local ok, err = pcall(ec2.wait, ec2, "VpcAvailable", { Bad = 1 }, { delay = 0 })
  lu.assertFalse(ok)
  lu.assertEquals(err, "ec2.DescribeVpcs: Bad: expected string, got number")
end

function TestWait.test_waiting_sleeps_on_the_event_loop()
  local s = polls("DescribeVpcs", { vpcs("pending"), vpcs("pending"), vpcs("available") })
  local ec2 = client("ec2", s)
  local ticks, stop = 0, false
  local ticker = fo.spawn(function()
    while not stop do ticks = ticks + 1; fo.sleep(0.01) end
  end)
  ec2:wait("VpcAvailable", {}, { delay = 0.05 })
  stop = true
  ticker:join()
  s.close()
  lu.assertTrue(ticks >= 3, "other tasks ran while waiting: " .. ticks)
end

-- Waiter definitions the ten models do not have (error matcher true/false), on a copy.
local function with_waiters(c, waiters)
  rawset(c, "model", setmetatable({ waiters = waiters }, { __index = c.model }))
  return c
end

function TestWait.test_error_matcher_true_and_false()
  local s = polls("DescribeVpcs", { vpcs("pending"), codec_mod.error(400, "AnyError", "x") })
  local ec2 = with_waiters(client("ec2", s), {
    UntilError = { operation = "DescribeVpcs", delay = 0, maxAttempts = 5,
      acceptors = { { matcher = "error", expected = true, state = "success" },
                    { matcher = "error", expected = false, state = "retry" } } },
    NoError = { operation = "DescribeVpcs", delay = 0, maxAttempts = 5,
      acceptors = { { matcher = "error", expected = false, state = "success" } } },
  })
  local _, attempts = ec2:wait("UntilError", {})
  lu.assertEquals(attempts, 2)
  local err = wait_error(ec2, "NoError", {})
  s.close()
  lu.assertEquals(err.reason, "error")
end

TestMistakes = {}

function TestMistakes.test_unknown_waiter_names_a_close_one_and_lists_them()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local ok, err = pcall(ec2.wait, ec2, "VpcAvailible", {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "ec2 has no waiter 'VpcAvailible' (did you mean 'VpcAvailable'?); waiters: BundleTaskComplete,")
  local sts = aws.sts{ region = "eu-south-1" }
  ok, err = pcall(sts.wait, sts, "X", {})
  lu.assertStrContains(err, "waiters: none")
end

function TestMistakes.test_bad_options()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local ok, err = pcall(ec2.wait, ec2, "VpcAvailable", {}, { delay = -1 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "wait: delay must be a number >= 0, got -1")
end

function TestMistakes.test_waiters_lists_the_models()
  lu.assertEquals(aws.dynamodb{ region = "eu-south-1" }:waiters(), { "ContributorInsightsEnabled",
    "ExportCompleted", "ImportCompleted", "KinesisStreamingDestinationActive", "TableExists",
    "TableNotExists" })
end

os.exit(lu.LuaUnit.run())
