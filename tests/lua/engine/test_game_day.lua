-- `fo-run --game-day` end to end (docs/runbook.md, "Game day on a real account"): a real
-- fo-run child with --target aws against a simulator this process serves on loopback, the
-- trading stack applied to it first by another child. The game day inverts the stack's
-- health check, Route 53's answers (GetHealthCheckStatus per checker, TestDNSAnswer) move to
-- the standby within the model's bounds, the standby's load balancer answers, the check is
-- set back and failback is measured; Ctrl-C in the middle and a failed probe set it back
-- too (asserted through the API); without confirmation nothing is changed. The served
-- simulator runs on the real clock (health checks every 10 s), so a full game day takes
-- about a minute.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json_events = require "support.json_events"
local cjson = require "cjson"

TestGameDay = {}

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"
local STACK = "prod"

local dir, sim, srv, front, outputs
-- a function(req, answer) → response or nil: what the served simulator answers instead
-- (answer() lets the simulator handle the request first)
local fault
local child

local function env()
  local k = require("fo.sim.keys").DEFAULT
  return { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = "us-east-1", AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port),
    FO_STATE_DIR = dir .. "/.fo", HOME = dir, NO_COLOR = "1" }
end

local function fo_run(args, timeout)
  local argv = { "--stack", STACK, "--target", "aws" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = RECIPE
  return testlib.run_fo(argv, { env = env(), timeout = timeout or 300 })
end

-- The stack, applied once for the whole file.
local function stack()
  if outputs then return outputs end
  dir = H.dir()
  sim = fo.sim.new{ seed = 14 }
  local handle = sim.handle
  sim.handle = function(self, req, via)
    local r = fault and fault(req, function() return handle(self, req, via) end)
    if r then return r, { service = "-", operation = "(test fault)", region = "-",
      status = r.status } end
    return handle(self, req, via)
  end
  -- (with its TLS front: load balancers' HTTPS listeners)
  local _
  srv, _, front = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim,
    lb_tls = true }
  local r = fo_run({ "--yes" }, 600)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  outputs = H.state(dir .. "/.fo", STACK).outputs
  return outputs
end

local function r53() return sim:client("route53") end

local function health_check()
  return r53():GetHealthCheck{ HealthCheckId = outputs.health_check_id }.HealthCheck
end

-- Waits (real time) until Route 53 calls the primary healthy and answers with it again.
local function wait_healthy()
  local deadline = fo.now() + 90
  while fo.now() < deadline do
    local st = sim:health_check_status(outputs.health_check_id)
    if st and st.healthy and sim:resolve(outputs.app_dns_name, "A").chosen:match("^primary") then
      return
    end
    fo.sleep(0.5)
  end
  lu.fail("the primary did not turn healthy again")
end

function TestGameDay:setUp()
  stack()
  fault = nil
  wait_healthy()
end

function TestGameDay:tearDown()
  fault = nil
  if child then
    fo.process.run{ argv = { "kill", "-KILL", tostring(child) } }
    child = nil
  end
end

local function mutating_route53()
  return sim.recorder:count{ service = "route53", mutating = true }
end

function TestGameDay:test_refused_without_confirmation_nothing_changed()
  local before, version = mutating_route53(), health_check().HealthCheckVersion
  local r = fo_run({ "--game-day" })
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "the game day changes a health check of stack prod on AWS: "
    .. "it needs --yes when the input is not a terminal; nothing was changed")
  lu.assertEquals(mutating_route53(), before)
  lu.assertEquals(health_check().HealthCheckVersion, version)
  -- a stack bound to the simulator is not a game day's
  r = testlib.run_fo({ "--game-day", "--target", "sim", RECIPE }, { env = env() })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--game-day runs on a stack deployed on AWS")
end

function TestGameDay:test_game_day_switches_probes_restores_and_fails_back()
  local hc0 = health_check()
  local r = fo_run({ "--game-day", "--yes", "--json" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  local s = json_events.last(events, "game_day_summary")
  -- interval 10 × threshold 3: each checker needs 3 inverted results; the first comes
  -- 0-10 s after the change, so Route 53 calls it unhealthy 20-30 s after (checkers' time)
  lu.assertTrue(s.seconds_to_unhealthy >= 19.5 and s.seconds_to_unhealthy <= 30.5,
    "unhealthy after " .. s.seconds_to_unhealthy)
  -- the answer moves when the verdict does (the simulator's name servers have it at
  -- once); seen at the next poll (every 2 s, more under load)
  lu.assertTrue(s.seconds_to_dns_switch >= s.seconds_to_unhealthy - 0.5
    and s.seconds_to_dns_switch <= s.seconds_to_unhealthy + 15,
    "DNS after " .. s.seconds_to_dns_switch)
  lu.assertEquals({ s.probe_status, s.probe_ok, s.restored }, { 200, true, true })
  lu.assertTrue(s.seconds_to_healthy >= 19.5 and s.seconds_to_healthy <= 30.5,
    "healthy after " .. s.seconds_to_healthy)
  lu.assertTrue(s.seconds_to_failback <= s.seconds_to_healthy + 15)
  lu.assertEquals(json_events.last(events, "summary").status, "ok")
  -- the DNS steps name the standby's answer, then the primary's
  local sides = {}
  for _, e in ipairs(json_events.all(events, "game_day")) do
    if e.step == "dns" then sides[#sides + 1] = e.side end
  end
  lu.assertEquals(sides, { "standby", "primary" })
  -- through the API: as it was, two versions on (inverted, restored)
  local hc = health_check()
  lu.assertFalse(hc.HealthCheckConfig.Inverted)
  lu.assertFalse(hc.HealthCheckConfig.Disabled)
  lu.assertEquals(hc.HealthCheckVersion, hc0.HealthCheckVersion + 2)
  -- the only mutating calls were the two updates of that health check
  local ups = sim.recorder:calls{ service = "route53", mutating = true }
  lu.assertEquals(ups[#ups].operation, "UpdateHealthCheck")
  lu.assertEquals(ups[#ups - 1].operation, "UpdateHealthCheck")
end

-- Starts the game day in the background (stdout to a file read while it runs); returns
-- the task and the pid.
local function start()
  local t
  t, child = testlib.spawn_fo({ "--stack", STACK, "--target", "aws", "--game-day", "--yes",
    "--json", RECIPE }, { env = env(), pidfile = dir .. "/pid", timeout = 300 })
  return t, child
end

local function wait_for(text)
  local deadline = fo.now() + 60
  while fo.now() < deadline do
    if (testlib.read(dir .. "/pid.out") or ""):find(text, 1, true) then return end
    fo.sleep(0.05)
  end
  lu.fail("the child never wrote " .. text)
end

-- Ctrl-C (SIGINT) or SIGTERM while Route 53 is switching: the check is set back first.
local function interrupted(sig)
  local hc0 = health_check()
  local t, pid = start()
  wait_for('"step":"inverted"')
  lu.assertTrue(health_check().HealthCheckConfig.Inverted)
  if sig == "TERM" then
    -- the game day holds the stack's lock: an apply now (which would set the check back)
    -- is refused
    local r = fo_run({ "--yes" })
    lu.assertEquals(r.code, 5, r.stdout .. r.stderr)
    lu.assertStrContains(r.stderr, "stack prod is locked by")
  end
  fo.process.run{ argv = { "kill", "-" .. sig, tostring(pid) } }
  local r = t:join()
  child = nil
  lu.assertEquals(r.code, 130, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "SIG" .. sig .. ": setting the health check back first")
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  lu.assertEquals(json_events.last(events, "summary").status, "interrupted")
  lu.assertEquals(json_events.last(events, "interrupt").signal, sig)
  local restored
  for _, e in ipairs(json_events.all(events, "game_day")) do
    if e.step == "restored" then restored = e end
  end
  lu.assertNotNil(restored)
  local hc = health_check()
  lu.assertFalse(hc.HealthCheckConfig.Inverted)
  lu.assertEquals(hc.HealthCheckVersion, hc0.HealthCheckVersion + 2)
end

function TestGameDay:test_ctrl_c_sets_the_health_check_back() interrupted("INT") end
function TestGameDay:test_sigterm_sets_the_health_check_back() interrupted("TERM") end

function TestGameDay:test_a_terminal_must_type_the_stack_name()
  lu.skipIf(not testlib.has_command("script"),
    "script(1) (util-linux) is needed for a pseudo-terminal")
  local before = mutating_route53()
  -- "yes" is not the stack's name
  local r = fo.process.run{ argv = { "sh", "-c", 'printf "yes\\n" | script -qec "$0" /dev/null',
    ("%s --game-day --target aws --stack %s %s"):format(testlib.fo_run, STACK, RECIPE) },
    env = env(), timeout = 60 }
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "The game day inverts Route 53 health check "
    .. outputs.health_check_id .. " of stack prod in account 123456789012")
  lu.assertStrContains(r.stdout, "Type the stack's name (prod) to go on: ")
  lu.assertStrContains(r.stdout, "not confirmed: nothing was changed")
  lu.assertEquals(mutating_route53(), before)
end

function TestGameDay:test_a_failed_probe_sets_the_health_check_back()
  local hc0 = health_check()
  local standby = outputs.standby_alb_dns_name:lower():gsub("%.$", "")
  -- the standby's load balancer answers 503 to clients (its health as Route 53 sees it is
  -- unchanged, so the answer still moves to it)
  -- and Route 53 throttles the first four reads of the checkers after the inversion (more
  -- than the client's three attempts): the game day reads again at its next poll
  local throttled, inverted = 0, false
  fault = function(req)
    local host = tostring((req.headers or {}).host or (req.headers or {}).Host or "")
    if host:lower():gsub(":%d+$", "") == standby then
      return { status = 503, headers = {}, body = "down\n" }
    end
    local path = tostring(req.path)
    if req.method == "POST" and path:find("/healthcheck/", 1, true) then inverted = true end
    if inverted and throttled < 4 and path:find("/status$") then
      throttled = throttled + 1
      return { status = 400, headers = { ["Content-Type"] = "text/xml" }, body = [[<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>0f0e0d0c-0b0a-4909-8807-060504030201</RequestId></ErrorResponse>]] }
    end
  end
  local r = fo_run({ "--game-day", "--yes" })
  lu.assertEquals(throttled, 4)
  lu.assertEquals(r.code, 3, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "the standby did not serve: GET ")
  lu.assertStrContains(r.stderr, "answered 503; the health check was set back")
  lu.assertStrContains(r.stdout, "health check set back: Inverted false")
  local hc = health_check()
  lu.assertFalse(hc.HealthCheckConfig.Inverted)
  lu.assertEquals(hc.HealthCheckVersion, hc0.HealthCheckVersion + 2)
end

-- The inversion is made but its answer is lost (a 503 after the change; the client's retry
-- then meets HealthCheckVersionMismatch): the game day reads the check, finds it inverted
-- and sets it back.
function TestGameDay:test_a_lost_answer_to_the_inversion_is_set_back()
  local hc0 = health_check()
  local lost = false
  fault = function(req, answer)
    if not lost and req.method == "POST" and tostring(req.path):find("/healthcheck/", 1, true)
        and tostring(req.body):find("<Inverted>true</Inverted>", 1, true) then
      lost = true
      answer()
      return { status = 503, headers = {}, body = "" }
    end
  end
  local r = fo_run({ "--game-day", "--yes" })
  lu.assertTrue(lost)
  lu.assertEquals(r.code, 3, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "HealthCheckVersionMismatch")
  lu.assertStrContains(r.stderr, "the health check was set back")
  local hc = health_check()
  lu.assertFalse(hc.HealthCheckConfig.Inverted)
  lu.assertEquals(hc.HealthCheckVersion, hc0.HealthCheckVersion + 2)
end

-- The stack's state kept in the S3 backend (docs/state-backends.md), here the served
-- simulator's S3: the game day reads it through the backend as the apply does, holds the
-- stack's lease while it runs (an apply meanwhile is refused), writes no state and leaves
-- no lease. --readiness reads it there too. The stack goes back to the local backend after.
function TestGameDay:test_a_stack_whose_state_is_in_the_s3_backend()
  local BUCKET, SPEC = "fo-game-day-state", "s3://fo-game-day-state/team"
  local s3 = sim:client("s3", { region = "us-east-1" })
  if not pcall(s3.HeadBucket, s3, { Bucket = BUCKET }) then
    s3:CreateBucket{ Bucket = BUCKET }
    s3:PutBucketVersioning{ Bucket = BUCKET, VersioningConfiguration = { Status = "Enabled" } }
    s3:PutBucketEncryption{ Bucket = BUCKET, ServerSideEncryptionConfiguration = { Rules = {
      { ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "aws:kms" } } } } }
    s3:PutPublicAccessBlock{ Bucket = BUCKET, PublicAccessBlockConfiguration = {
      BlockPublicAcls = true, IgnorePublicAcls = true, BlockPublicPolicy = true,
      RestrictPublicBuckets = true } }
  end
  local r = fo_run({ "--yes", "--migrate-state", SPEC })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local objects = require("fo.engine.backend.s3_objects").new{ bucket = BUCKET,
    prefix = "team", client = s3 }
  local keys = require("fo.engine.backend.s3_state").keys(STACK)
  local function stored()
    local body, etag = objects:get(keys.state)
    return { body = body, etag = etag, log = objects:list(keys.log) }
  end
  local ok, err = pcall(function()
    lu.assertNil(testlib.read(dir .. "/.fo/" .. STACK .. ".state.json"), "no local state")
    local before = stored()
    lu.assertNotNil(before.body)
    -- readiness reads the state there (the check of the primary: as healthy as it is now)
    r = fo_run({ "--backend", SPEC, "--readiness", "--json" })
    lu.assertNotStrContains(r.stderr, "has no state", false, r.stdout .. r.stderr)
    lu.assertEquals(cjson.decode(r.stdout).stack, STACK)
    -- the game day, in the background: the lease is held, an apply is refused
    local t, pid = testlib.spawn_fo({ "--stack", STACK, "--target", "aws", "--game-day",
      "--yes", "--json", "--backend", SPEC, RECIPE }, { env = env(), pidfile = dir .. "/pid",
      timeout = 300 })
    child = pid
    wait_for('"step":"inverted"')
    lu.assertNotNil(objects:get(keys.lock), "the game day holds the stack's lease")
    local applied = fo_run({ "--yes", "--backend", SPEC })
    lu.assertEquals(applied.code, 5, applied.stdout .. applied.stderr)
    lu.assertStrContains(applied.stderr, "stack prod is locked by")
    -- once the check is set back the lease goes, while failback is still being measured
    -- (Route 53 needs 20 s or more to call the check healthy again)
    wait_for('"step":"restored"')
    local deadline = fo.now() + 15
    while objects:get(keys.lock) and fo.now() < deadline do fo.sleep(0.1) end
    lu.assertNil(objects:get(keys.lock), "the lease is released after the restore")
    lu.assertNil((testlib.read(dir .. "/pid.out") or ""):find('"step":"healthy"', 1, true),
      "failback still being measured")
    r = t:join()
    child = nil
    lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
    local events = json_events.parse(r.stdout)
    lu.assertEquals(json_events.problems(events), {})
    local s = json_events.last(events, "game_day_summary")
    lu.assertEquals({ s.probe_status, s.probe_ok, s.restored }, { 200, true, true })
    lu.assertFalse(health_check().HealthCheckConfig.Inverted)
    -- nothing written to the state, the lease released
    lu.assertEquals(stored(), before)
    lu.assertNil(objects:get(keys.lock))
  end)
  -- back to the local backend for the other tests
  local back = fo_run({ "--yes", "--backend", SPEC, "--migrate-state", "local" })
  if not ok then error(err, 0) end
  lu.assertEquals(back.code, 0, back.stdout .. back.stderr)
end

-- A standby serving HTTPS: its load balancer (as ELBv2 describes it, whatever the recipe
-- says) has an HTTPS:443 listener and its port 80 only redirects (301), as a stack applied
-- with https=true has. A client is redirected on 80, so a 301 there is not the app
-- serving: the probe goes to the HTTPS listener as a client does (here the served
-- simulator's TLS front, verified with its certificate) and sees the app's 200.
function TestGameDay:test_an_https_standby_is_probed_over_https_not_by_its_redirect()
  local elb = sim:client("elbv2", { region = outputs.standby_region })
  local want = outputs.standby_alb_dns_name:lower():gsub("%.$", "")
  local lb
  for _, l in ipairs(elb:DescribeLoadBalancers{}.LoadBalancers) do
    if l.DNSName:lower() == want then lb = l end
  end
  local http = elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners[1]
  lu.assertEquals(http.Port, 80)
  local forward = http.DefaultActions
  local https = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTPS",
    Port = 443, Certificates = { { CertificateArn =
      "arn:aws:iam::123456789012:server-certificate/game-day-test" } },
    DefaultActions = { { Type = "forward", TargetGroupArn = forward[1].TargetGroupArn } },
  }.Listeners[1]
  elb:ModifyListener{ ListenerArn = http.ListenerArn, DefaultActions = { { Type = "redirect",
    RedirectConfig = { Protocol = "HTTPS", Port = "443", StatusCode = "HTTP_301" } } } }
  local ok, err = pcall(function()
    local r = fo_run({ "--game-day", "--yes", "--json" })
    lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
    local events = json_events.parse(r.stdout)
    lu.assertEquals(json_events.problems(events), {})
    local s = json_events.last(events, "game_day_summary")
    lu.assertEquals({ s.probe_status, s.probe_ok, s.restored }, { 200, true, true })
    local step
    for _, e in ipairs(json_events.all(events, "game_day")) do
      if e.step == "probe" then step = e end
    end
    lu.assertStrContains(step.url, "https://" .. outputs.app_dns_name:gsub("%.$", ""))
    lu.assertFalse(health_check().HealthCheckConfig.Inverted)
    -- the HTTPS listener sends everyone elsewhere (a maintenance page): its redirect is
    -- followed no further than the app's name, and is no answer from the app
    elb:ModifyListener{ ListenerArn = http.ListenerArn, DefaultActions = forward }
    elb:ModifyListener{ ListenerArn = https.ListenerArn, DefaultActions = { { Type = "redirect",
      RedirectConfig = { Host = "maintenance.example.com", StatusCode = "HTTP_302" } } } }
    wait_healthy()
    r = fo_run({ "--game-day", "--yes" })
    lu.assertEquals(r.code, 3, r.stdout .. r.stderr)
    lu.assertStrContains(r.stderr, "the standby did not serve: GET https://"
      .. outputs.app_dns_name:gsub("%.$", "") .. "/health answered 302, then GET "
      .. "https://maintenance.example.com/health -> redirected to "
      .. "https://maintenance.example.com/health: not the app's name nor the standby's load "
      .. "balancer; the health check was set back")
    lu.assertFalse(health_check().HealthCheckConfig.Inverted)
  end)
  elb:ModifyListener{ ListenerArn = http.ListenerArn, DefaultActions = forward }
  elb:DeleteListener{ ListenerArn = https.ListenerArn }
  if not ok then error(err, 0) end
end

local code = lu.LuaUnit.run()
if srv then srv:close() end
if front then front:close() end
if dir then H.cleanup(dir) end
os.exit(code)
