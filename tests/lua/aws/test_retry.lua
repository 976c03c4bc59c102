-- Standard-mode retries: the retryable-code table, full-jitter backoff growth and cap,
-- Retry-After, the retry quota, max attempts; then aws.call against loopback servers that
-- throttle N times and succeed, fail for good, time out, or refuse connections.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local fake = require "support.fake_aws"
local retry = require "fo.aws.retry"
local aws = require "fo.aws"

local function always(x) return function() return x end end

---------------------------------------------------------------------------------------
TestRetryLogic = {}

function TestRetryLogic.test_throttling_codes_are_retryable()
  for _, code in ipairs{ "Throttling", "ThrottlingException", "ThrottledException",
      "RequestThrottledException", "TooManyRequestsException",
      "ProvisionedThroughputExceededException", "TransactionInProgressException",
      "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
      "RequestThrottled", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException" } do
    lu.assertEquals(retry.classify{ code = code, status = 400 }, "throttle", code)
  end
end

function TestRetryLogic.test_transient_codes_and_statuses_are_retryable()
  for _, code in ipairs{ "RequestTimeout", "RequestTimeoutException", "InternalError",
      "InternalFailure", "ServiceUnavailable", "IDPCommunicationError" } do
    lu.assertEquals(retry.classify{ code = code, status = 400 }, "transient", code)
  end
  for _, status in ipairs{ 500, 502, 503, 504 } do
    lu.assertEquals(retry.classify{ code = tostring(status), status = status }, "transient")
  end
end

function TestRetryLogic.test_transport_kinds()
  lu.assertEquals(retry.classify{ kind = "timeout" }, "timeout")
  lu.assertEquals(retry.classify{ kind = "connect" }, "transient")
  lu.assertEquals(retry.classify{ kind = "io" }, "transient")
  for _, kind in ipairs{ "resolve", "tls", "url", "transport" } do
    lu.assertNil(retry.classify{ kind = kind }, kind)
  end
end

function TestRetryLogic.test_client_errors_are_not_retryable()
  for _, f in ipairs{ { code = "ValidationError", status = 400 }, { code = "AccessDenied", status = 403 },
      { code = "InvalidVpcID.NotFound", status = 400 }, { code = "404", status = 404 },
      { code = "501", status = 501 }, { code = "429", status = 429 } } do
    lu.assertNil(retry.classify(f), f.code)
  end
end

function TestRetryLogic.test_backoff_grows_exponentially_and_is_capped_at_20s()
  local got = {}
  for attempt = 1, 8 do got[attempt] = retry.backoff(attempt, always(1)) end
  lu.assertEquals(got, { 1, 2, 4, 8, 16, 20, 20, 20 })
  lu.assertEquals(retry.backoff(3, always(0)), 0)
  lu.assertEquals(retry.backoff(3, always(0.25)), 1)
  -- Full jitter with the real random source stays within [0, cap).
  for attempt = 1, 10 do
    for _ = 1, 50 do
      local d = retry.backoff(attempt)
      lu.assertTrue(d >= 0 and d < math.min(20, 2 ^ (attempt - 1)), tostring(d))
    end
  end
end

function TestRetryLogic.test_retry_after_headers()
  lu.assertEquals(retry.retry_after{ ["retry-after"] = "3" }, 3)
  lu.assertEquals(retry.retry_after{ ["x-amz-retry-after"] = "1500" }, 1.5)
  lu.assertEquals(retry.retry_after{ ["x-amz-retry-after"] = "250", ["retry-after"] = "9" }, 0.25)
  lu.assertNil(retry.retry_after{ ["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT" })
  lu.assertNil(retry.retry_after{ ["retry-after"] = "-1" })
  lu.assertNil(retry.retry_after{})
  lu.assertNil(retry.retry_after(nil))
end

function TestRetryLogic.test_quota_costs_and_refunds()
  local q = retry.new_quota()
  lu.assertEquals(q.available, 500)
  lu.assertEquals(q:acquire("throttle"), 5)
  lu.assertEquals(q:acquire("transient"), 5)
  lu.assertEquals(q:acquire("timeout"), 10)
  lu.assertEquals(q.available, 480)
  q:release(10) -- success after a timeout retry gives its cost back
  q:release()   -- success without retry gives 1
  lu.assertEquals(q.available, 491)
  for _ = 1, 20 do q:release() end
  lu.assertEquals(q.available, 500, "never above capacity")
  local small = retry.new_quota(12)
  lu.assertEquals(small:acquire("throttle"), 5)
  lu.assertEquals(small:acquire("throttle"), 5)
  lu.assertNil(small:acquire("throttle"), "empty: no retry")
  small:release(5)
  lu.assertNil(small:acquire("timeout"), "a timeout retry costs 10")
  lu.assertEquals(small:acquire("throttle"), 5)
end

function TestRetryLogic.test_policy_decisions()
  local q = retry.new_quota(500)
  local p = retry.policy{ max_attempts = 3, quota = q, random = always(1) }
  local throttled = { code = "Throttling", status = 400 }
  lu.assertEquals({ p:decide(throttled, 1) }, { 1, "throttle" })
  lu.assertEquals({ p:decide(throttled, 2) }, { 2, "throttle" })
  lu.assertEquals({ p:decide(throttled, 3) }, { nil, "attempts exhausted", "throttle" })
  lu.assertEquals({ p:decide({ code = "ValidationError", status = 400 }, 1) }, { nil, "not retryable" })
  lu.assertEquals(q.available, 490)
  p:succeeded()
  lu.assertEquals(q.available, 495, "success after a retry refunds that retry's cost")
  -- Retry-After raises the delay, within the cap.
  local r = retry.policy{ max_attempts = 5, random = always(0.1) }
  lu.assertEquals(r:decide({ code = "503", status = 503, headers = { ["retry-after"] = "4" } }, 1), 4)
  lu.assertEquals(r:decide({ code = "503", status = 503, headers = { ["retry-after"] = "3600" } }, 2), 20)
  lu.assertAlmostEquals(r:decide({ code = "503", status = 503, headers = { ["retry-after"] = "0" } }, 3), 0.4, 1e-9)
  -- Empty quota: stop at once.
  local e = retry.policy{ max_attempts = 5, quota = retry.new_quota(4) }
  lu.assertEquals({ e:decide(throttled, 1) }, { nil, "retry quota exhausted", "throttle" })
end

function TestRetryLogic.test_max_attempts_sources()
  lu.assertEquals(retry.max_attempts({}, fake.env{}), 3)
  lu.assertEquals(retry.max_attempts({}, fake.env{ AWS_MAX_ATTEMPTS = "7" }), 7)
  lu.assertEquals(retry.max_attempts({ max_attempts = 2 }, fake.env{ AWS_MAX_ATTEMPTS = "7" }), 2)
  lu.assertEquals(retry.max_attempts({}, fake.env{ AWS_MAX_ATTEMPTS = "" }), 3)
  lu.assertErrorMsgContains("AWS_MAX_ATTEMPTS must be a positive integer, got 'lots'",
    retry.max_attempts, {}, fake.env{ AWS_MAX_ATTEMPTS = "lots" })
  lu.assertErrorMsgContains("max_attempts must be a positive integer, got '0'",
    retry.max_attempts, { max_attempts = 0 }, fake.env{})
  lu.assertErrorMsgContains("got '1.5'", retry.max_attempts, { max_attempts = 1.5 }, fake.env{})
end

-- Retry settings: option > AWS_RETRY_MODE/AWS_MAX_ATTEMPTS > the profile's retry_mode /
-- max_attempts (shared config file) > a caller's defaults (the engine's) > standard, 3.
local testlib = require "support.testlib"

local function with_config(text, vars)
  local dir = testlib.tmpdir()
  testlib.write(dir .. "/config", text)
  local t = { HOME = "/nonexistent", AWS_CONFIG_FILE = dir .. "/config",
              AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }
  for k, v in pairs(vars or {}) do t[k] = v end
  return fake.env(t), dir
end

function TestRetryLogic.test_settings_default_to_standard_with_3_attempts()
  local c = retry.config({}, fake.env{ HOME = "/nonexistent" })
  lu.assertEquals({ c.mode, c.max_attempts, c.max_transient }, { "standard", 3, nil })
  lu.assertEquals(c.source, { mode = "default", max_attempts = "default" })
end

function TestRetryLogic.test_settings_from_the_profile()
  local env, dir = with_config("[default]\nretry_mode = adaptive\nmax_attempts = 7\n"
    .. "[profile ci]\nretry_mode = legacy\nmax_attempts = 2\n")
  local c = retry.config({}, env)
  lu.assertEquals({ c.mode, c.max_attempts }, { "adaptive", 7 })
  lu.assertStrContains(c.source.max_attempts, "max_attempts in profile 'default'")
  -- the profile option selects another profile; legacy behaves as standard
  c = retry.config({ profile = "ci" }, env)
  lu.assertEquals({ c.mode, c.max_attempts }, { "standard", 2 })
  testlib.rmtree(dir)
end

function TestRetryLogic.test_environment_beats_profile_and_option_beats_both()
  local env, dir = with_config("[default]\nretry_mode = adaptive\nmax_attempts = 7\n",
    { AWS_RETRY_MODE = "standard", AWS_MAX_ATTEMPTS = "4" })
  local c = retry.config({}, env)
  lu.assertEquals({ c.mode, c.max_attempts }, { "standard", 4 })
  lu.assertEquals(c.source, { mode = "AWS_RETRY_MODE", max_attempts = "AWS_MAX_ATTEMPTS" })
  c = retry.config({ retry_mode = "adaptive", max_attempts = 9 }, env)
  lu.assertEquals({ c.mode, c.max_attempts }, { "adaptive", 9 })
  testlib.rmtree(dir)
end

function TestRetryLogic.test_a_callers_defaults_apply_only_to_what_the_user_left_unset()
  local defaults = { mode = "adaptive", max_attempts = 25, max_transient = 5 }
  local none = fake.env{ HOME = "/nonexistent" }
  local c = retry.config({ retry_defaults = defaults }, none)
  lu.assertEquals({ c.mode, c.max_attempts, c.max_transient }, { "adaptive", 25, 5 })
  -- the user's max attempts win, and with them no separate budget for 5xx
  c = retry.config({ retry_defaults = defaults }, fake.env{ HOME = "/nonexistent",
    AWS_MAX_ATTEMPTS = "3" })
  lu.assertEquals({ c.mode, c.max_attempts, c.max_transient }, { "adaptive", 3, nil })
  local env, dir = with_config("[default]\nretry_mode = standard\n")
  c = retry.config({ retry_defaults = defaults }, env)
  lu.assertEquals({ c.mode, c.max_attempts, c.max_transient }, { "standard", 25, 5 })
  testlib.rmtree(dir)
end

function TestRetryLogic.test_bad_settings_name_where_they_come_from()
  lu.assertErrorMsgContains("AWS_RETRY_MODE must be standard, adaptive or legacy, got 'fast'",
    retry.config, {}, fake.env{ HOME = "/nonexistent", AWS_RETRY_MODE = "fast" })
  lu.assertErrorMsgContains("retry_mode must be standard, adaptive or legacy, got 'x'",
    retry.config, { retry_mode = "x" }, fake.env{ HOME = "/nonexistent" })
  local env, dir = with_config("[profile ci]\nmax_attempts = many\n", { AWS_PROFILE = "ci" })
  lu.assertErrorMsgContains("max_attempts in profile 'ci' (", retry.config, {}, env)
  lu.assertErrorMsgContains("must be a positive integer, got 'many'", retry.config, {}, env)
  testlib.rmtree(dir)
end

function TestRetryLogic.test_a_separate_budget_for_failures_other_than_throttling()
  local p = retry.policy{ max_attempts = 25, max_transient = 3, quota = retry.new_quota(),
    random = always(0) }
  local throttled, unavailable = { code = "Throttling", status = 400 }, { code = "503", status = 503 }
  local attempt = 0
  local function decide(f) attempt = attempt + 1; return (p:decide(f, attempt)) end
  for _ = 1, 10 do lu.assertNotNil(decide(throttled)) end
  lu.assertNotNil(decide(unavailable))
  lu.assertNotNil(decide(unavailable))
  lu.assertNotNil(decide(throttled), "throttling still has its budget")
  lu.assertEquals({ p:decide(unavailable, attempt + 1) }, { nil, "attempts exhausted", "transient" })
  -- throttling alone stops at max_attempts
  local q = retry.policy{ max_attempts = 25, max_transient = 3, random = always(0) }
  lu.assertNotNil(q:decide(throttled, 24))
  lu.assertEquals({ q:decide(throttled, 25) }, { nil, "attempts exhausted", "throttle" })
end

---------------------------------------------------------------------------------------
-- The adaptive mode's rate limiter, on a fake clock.
local ratelimit = require "fo.aws.ratelimit"

local function fake_clock()
  local c = { t = 1000, slept = 0 }
  c.now = function() return c.t end
  c.sleep = function(d) c.t = c.t + d; c.slept = c.slept + d end
  return c
end

TestRateLimiter = {}

function TestRateLimiter.test_limits_nothing_before_the_first_throttling_answer()
  local c = fake_clock()
  local l = ratelimit.new{ now = c.now, sleep = c.sleep }
  for _ = 1, 100 do
    lu.assertEquals(l:acquire(), 0)
    lu.assertEquals(l:record(false), 0)
  end
  lu.assertEquals(c.slept, 0)
end

function TestRateLimiter.test_a_throttling_answer_cuts_the_rate_to_70_percent_of_the_sending_rate()
  local c = fake_clock()
  local l = ratelimit.new{ now = c.now, sleep = c.sleep }
  for _ = 1, 10 do l:acquire() end -- 10 requests within the last second
  lu.assertAlmostEquals(l:record(true), 7, 1e-9)
  -- more throttling answers within the same second do not cut it again
  lu.assertAlmostEquals(l:record(true), 7, 1e-9)
  -- from now on requests go at 7/s: 14 more take about 2 s
  local start = c.t
  for _ = 1, 14 do l:acquire() end
  lu.assertTrue(c.t - start > 1.5 and c.t - start < 2.1, tostring(c.t - start))
  -- a throttling answer a second later cuts again, from what was really sent (≤ 7/s)
  lu.assertTrue(l:record(true) <= 7 * 0.7 + 1e-9)
end

function TestRateLimiter.test_the_rate_recovers_slowly_then_faster()
  local c = fake_clock()
  local l = ratelimit.new{ now = c.now, sleep = c.sleep }
  for _ = 1, 10 do l:acquire() end
  l:record(true) -- w_max 10, rate 7
  local rates = {}
  for s = 1, 6 do
    c.t = c.t + 1
    rates[s] = l:record(false)
  end
  -- CUBIC: below 10 until K = (10 × 0.3 / 0.4)^(1/3) ≈ 1.96 s, then growing ever faster
  lu.assertTrue(rates[1] > 7 and rates[1] < 10, tostring(rates[1]))
  lu.assertTrue(rates[3] > 10, tostring(rates[3]))
  lu.assertTrue(rates[6] - rates[5] > rates[4] - rates[3])
  lu.assertTrue(rates[6] > 20, tostring(rates[6]))
end

function TestRateLimiter.test_never_slower_than_the_minimum_rate()
  local c = fake_clock()
  local l = ratelimit.new{ now = c.now, sleep = c.sleep }
  l:acquire()
  for _ = 1, 20 do
    c.t = c.t + 1.5
    lu.assertTrue(l:record(true) >= ratelimit.MIN_RATE)
  end
  lu.assertEquals(l.fill_rate, ratelimit.MIN_RATE)
end

function TestRateLimiter.test_a_documented_rate_holds_from_the_start()
  local c = fake_clock()
  local l = ratelimit.new{ now = c.now, sleep = c.sleep, rate = 10, burst = 50 }
  for _ = 1, 50 do l:acquire() end
  lu.assertEquals(c.slept, 0, "the burst is free")
  for _ = 1, 20 do l:acquire() end
  lu.assertAlmostEquals(c.slept, 2, 0.01) -- then 10 per second
end

function TestRateLimiter.test_one_limiter_per_endpoint_and_credentials()
  local env1, env2 = fake.env{}, fake.env{}
  local a = ratelimit.for_endpoint(env1, "ec2", "https://ec2.eu-south-1.amazonaws.com")
  lu.assertIs(ratelimit.for_endpoint(env1, "ec2", "https://ec2.eu-south-1.amazonaws.com"), a)
  lu.assertNotIs(ratelimit.for_endpoint(env1, "ec2", "https://ec2.eu-central-1.amazonaws.com"), a)
  lu.assertNotIs(ratelimit.for_endpoint(env2, "ec2", "https://ec2.eu-south-1.amazonaws.com"), a)
  local r53 = ratelimit.for_endpoint(env1, "route53", "https://route53.amazonaws.com")
  lu.assertEquals({ r53.fill_rate, r53.max_capacity }, { 10, 50 })
end

---------------------------------------------------------------------------------------
-- aws.call against loopback servers. sleep is injected (recording the delays) unless a
-- test wants real time to pass.
TestRetryCalls = {}

local SECRET = "retryTestSecretKey0123456789abcdefghijk"
local delays
local function call(url, extra)
  local req = { service = "sts", operation = "GetCallerIdentity", region = "eu-south-1",
    endpoint = url, body = "Action=GetCallerIdentity&Version=2011-06-15",
    env = fake.env{ AWS_ACCESS_KEY_ID = "AKIDRETRY", AWS_SECRET_ACCESS_KEY = SECRET,
                    AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent" },
    random = always(1), sleep = function(d) delays[#delays + 1] = d end }
  for k, v in pairs(extra or {}) do req[k] = v end
  return aws.call(req)
end

local function throttle_then_ok(n, code, headers)
  local script = {}
  for i = 1, n do
    script[i] = { status = 400, headers = headers, body = fake.xml_error(code or "Throttling", "Rate exceeded") }
  end
  script[n + 1] = { status = 200, body = "<ok/>" }
  return fake.scripted(script)
end

function TestRetryCalls.setUp() delays = {} end

function TestRetryCalls.test_throttled_n_times_then_succeeds()
  local s = throttle_then_ok(3)
  local r = call(s.url, { max_attempts = 4 })
  s.close()
  lu.assertEquals(r.status, 200)
  lu.assertEquals(#s.requests, 4)
  lu.assertEquals(r.attempts, 4)
  lu.assertEquals(delays, { 1, 2, 4 })
  -- Each attempt is signed afresh (same signing inputs, so the same x-amz-date is fine,
  -- but the Authorization header must be present every time).
  for _, req in ipairs(s.requests) do lu.assertNotNil(req.headers.authorization) end
end

function TestRetryCalls.test_backoff_is_capped_over_many_attempts()
  local s = throttle_then_ok(8)
  local r = call(s.url, { max_attempts = 9 })
  s.close()
  lu.assertEquals(r.attempts, 9)
  lu.assertEquals(delays, { 1, 2, 4, 8, 16, 20, 20, 20 })
end

function TestRetryCalls.test_backoff_really_waits_on_the_loop()
  local s = fake.scripted{ { status = 503, body = "" }, { status = 503, body = "" },
                           { status = 200, body = "" } }
  local r = call(s.url, { random = always(0.1), sleep = fo.sleep })
  s.close()
  lu.assertEquals(r.attempts, 3)
  -- 0.1 × 2^0 then 0.1 × 2^1 seconds between the requests (timer granularity aside).
  lu.assertTrue(s.times[2] - s.times[1] >= 0.09, tostring(s.times[2] - s.times[1]))
  lu.assertTrue(s.times[3] - s.times[2] >= 0.19, tostring(s.times[3] - s.times[2]))
  lu.assertTrue(r.latency >= 0.29)
end

function TestRetryCalls.test_attempts_exhausted_raises_a_retryable_error()
  local s = throttle_then_ok(10, "ThrottlingException")
  local ok, e = pcall(call, s.url)
  s.close()
  lu.assertFalse(ok)
  lu.assertEquals(#s.requests, 3, "AWS_MAX_ATTEMPTS default is 3")
  lu.assertTrue(aws.Error.is(e, "ThrottlingException"))
  lu.assertTrue(e.retryable)
  lu.assertEquals(e.attempts, 3)
  lu.assertEquals(e.why, "attempts exhausted")
  lu.assertEquals(delays, { 1, 2 })
end

function TestRetryCalls.test_retry_after_is_honoured_and_capped()
  local s = fake.scripted{
    { status = 503, headers = { ["Retry-After"] = "3" }, body = "" },
    { status = 400, headers = { ["x-amz-retry-after"] = "1500" }, body = fake.xml_error("SlowDown") },
    { status = 503, headers = { ["Retry-After"] = "86400" }, body = "" },
    { status = 200, body = "" } }
  local r = call(s.url, { max_attempts = 4, random = always(0.5) })
  s.close()
  lu.assertEquals(r.attempts, 4)
  -- max(jitter, server's ask), capped at 20: max(0.5, 3), max(1, 1.5), min(86400, 20)
  lu.assertEquals(delays, { 3, 1.5, 20 })
end

function TestRetryCalls.test_non_retryable_codes_are_not_retried()
  for _, resp in ipairs{
      { status = 400, body = fake.xml_error("ValidationError", "bad input") },
      { status = 403, body = fake.xml_error("AccessDenied", "no") },
      { status = 400, body = fake.json_error("ResourceNotFoundException", "no table") },
      { status = 404, body = "" } } do
    delays = {}
    local s = fake.scripted{ resp }
    local ok, e = pcall(call, s.url, { max_attempts = 5 })
    s.close()
    lu.assertFalse(ok)
    lu.assertEquals(#s.requests, 1, e.code)
    lu.assertFalse(e.retryable)
    lu.assertEquals(e.why, "not retryable")
    lu.assertEquals(delays, {})
  end
end

function TestRetryCalls.test_quota_stops_retries_during_a_failure_burst()
  local s = fake.scripted{ { status = 503, body = "" } }
  local quota = aws.retry.quota_for(s.url)
  lu.assertEquals(quota.available, 500)
  -- Each failing call spends two retries (10 tokens): 50 calls empty the bucket...
  for i = 1, 50 do
    local ok, e = pcall(call, s.url)
    lu.assertFalse(ok)
    lu.assertEquals(e.attempts, 3, "call " .. i)
  end
  lu.assertEquals(quota.available, 0)
  lu.assertEquals(#s.requests, 150)
  -- ...and from then on a failure fails at once instead of adding load.
  local ok, e = pcall(call, s.url)
  lu.assertFalse(ok)
  lu.assertEquals(e.attempts, 1)
  lu.assertEquals(e.why, "retry quota exhausted")
  lu.assertTrue(e.retryable)
  lu.assertStrContains(tostring(e), "retry quota exhausted")
  lu.assertEquals(#s.requests, 151)
  s.close()
  -- Successes refill it: 1 token per call that needed no retry.
  local good = fake.scripted{ { status = 200, body = "" } }
  quota = aws.retry.quota_for(good.url)
  quota.available = 0
  for _ = 1, 7 do call(good.url) end
  good.close()
  lu.assertEquals(quota.available, 7)
end

function TestRetryCalls.test_refused_connections_are_retried()
  local ok, e = pcall(call, "http://127.0.0.1:" .. fake.dead_port())
  lu.assertFalse(ok)
  lu.assertEquals(e.kind, "transport")
  lu.assertEquals(e.code, "TransportConnect")
  lu.assertEquals(e.attempts, 3)
  lu.assertTrue(e.retryable)
  lu.assertEquals(delays, { 1, 2 })
end

function TestRetryCalls.test_timeouts_are_retried_and_cost_more()
  local s = fake.scripted{ function() fo.sleep(0.6); return { status = 200, body = "late" } end,
                           { status = 200, body = "fast" } }
  local quota = aws.retry.quota_for(s.url)
  local seen
  local r = call(s.url, { timeout = 0.2, sleep = function(d)
    delays[#delays + 1] = d
    seen = quota.available -- while the retry is pending, its cost is taken
  end })
  lu.assertEquals(r.body, "fast")
  lu.assertEquals(r.attempts, 2)
  lu.assertEquals(seen, 490, "a timeout retry costs 10")
  lu.assertEquals(quota.available, 500, "and the success gives it back")
  fo.sleep(0.5) -- let the slow handler finish before closing
  s.close()
end

-- Transport failures that will not heal are not retried (a stub transport stands in:
-- tests reach nothing but 127.0.0.1, so no real DNS or TLS peer is involved).
function TestRetryCalls.test_resolve_tls_and_url_errors_are_not_retried()
  local HttpError = { __name = "fo.http.Error" }
  for _, kind in ipairs{ "resolve", "tls", "url" } do
    delays = {}
    local n = 0
    local stub = { request = function(r)
      n = n + 1
      error(setmetatable({ kind = kind, message = kind .. " failed", url = r.url }, HttpError))
    end }
    local ok, e = pcall(call, "https://sts.example.invalid", { http = stub, max_attempts = 5 })
    lu.assertFalse(ok)
    lu.assertEquals(n, 1, kind)
    lu.assertEquals(e.kind, "transport")
    lu.assertEquals(e.code, "Transport" .. kind:gsub("^%l", string.upper))
    lu.assertFalse(e.retryable)
    lu.assertEquals(delays, {})
  end
end

function TestRetryCalls.test_concurrent_calls_each_retry_independently()
  -- The server throttles the first request of each caller (by the x-test-id header).
  local seen = {}
  local s = fake.scripted{ function(req)
    local id = req.headers["x-test-id"]
    seen[id] = (seen[id] or 0) + 1
    if seen[id] == 1 then return { status = 400, body = fake.xml_error("Throttling") } end
    fo.sleep(0.02)
    return { status = 200, body = id }
  end }
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = fo.spawn(call, s.url, { headers = { ["X-Test-Id"] = tostring(i) },
      random = always(0.01), sleep = fo.sleep })
  end
  local results = fo.all(tasks)
  s.close()
  for i, r in ipairs(results) do
    lu.assertEquals(r.body, tostring(i))
    lu.assertEquals(r.attempts, 2)
  end
  lu.assertEquals(#s.requests, 40)
end

os.exit(lu.LuaUnit.run())
