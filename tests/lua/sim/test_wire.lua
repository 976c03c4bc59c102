-- The simulator on the wire, driven by fo's own clients through sim:transport(): the
-- bytes they would send to AWS, verified (SigV4) and answered in each protocol's format;
-- authentication failures with AWS's per-protocol codes; the latency, throttle, 5xx and
-- outage knobs as the client's retry policy sees them; the recorder.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local sigv4 = require "fo.sigv4"

local HAVE_CODEC = require("fo.awsproto").parse_request ~= nil
local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

local function no_sleep() end

-- Calls fn; returns the fo.aws.Error it raises (fails the test when it does not).
local function aws_error(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an AWS error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

TestWire = {}

function TestWire.test_sts_get_caller_identity_through_the_client()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{}
  local out, meta = sim:client("sts", { region = "eu-south-1" }):GetCallerIdentity{}
  lu.assertEquals(out, { Account = "123456789012", Arn = "arn:aws:iam::123456789012:user/fo-sim",
    UserId = "AIDAFOSIMULATOR000001" })
  lu.assertStrMatches(meta.request_id or "", "%x+%-%x+%-%x+%-%x+%-%x+")
  lu.assertEquals(sim:count{ service = "sts", operation = "GetCallerIdentity", status = 200 }, 1)
end

function TestWire.test_caller_identity_follows_the_access_key()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{ keys = { { access_key = "AKIAOTHERACCOUNT0001", secret_key = "s3cr3t/key",
    account = "210987654321", user = "ops" } } }
  local out = sim:client("sts", { region = "us-east-1", access_key = "AKIAOTHERACCOUNT0001",
    secret_key = "s3cr3t/key" }):GetCallerIdentity{}
  lu.assertEquals(out.Account, "210987654321")
  lu.assertEquals(out.Arn, "arn:aws:iam::210987654321:user/ops")
end

function TestWire.test_ssm_al2_parameter_per_region()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{}
  local seen = {}
  for _, region in ipairs{ "eu-south-1", "eu-central-1", "us-east-1" } do
    local p = sim:client("ssm", { region = region }):GetParameter{ Name = AL2 }.Parameter
    lu.assertStrMatches(p.Value, "ami%-" .. ("%x"):rep(17))
    lu.assertNil(seen[p.Value], "AMI ids differ per region")
    seen[p.Value] = true
    lu.assertEquals(p.Name, AL2)
    lu.assertEquals(p.Type, "String")
    lu.assertEquals(p.DataType, "text")
    lu.assertEquals(p.ARN, ("arn:aws:ssm:%s::parameter%s"):format(region, AL2))
    lu.assertEquals(math.type(p.Version), "integer")
    lu.assertEquals(type(p.LastModifiedDate), "number")
    -- Stable: another sim gives the same id.
    lu.assertEquals(simlib.new{}:client("ssm", { region = region }):GetParameter{ Name = AL2 }
      .Parameter.Value, p.Value)
  end
  local e = aws_error(sim:client("ssm", { region = "eu-south-1" }).GetParameter,
    sim:client("ssm", { region = "eu-south-1" }), { Name = "/no/such/parameter" })
  lu.assertEquals(e.code, "ParameterNotFound")
  lu.assertEquals(e.status, 400)
end

function TestWire.test_bad_signature_per_protocol()
  local sim = simlib.new{}
  local wrong = { access_key = simlib.DEFAULT_KEY.access_key, secret_key = "not-the-secret",
    max_attempts = 1 }
  local cases = {
    { "sts", "GetCallerIdentity", {}, "SignatureDoesNotMatch", 403 },
    { "ec2", "DescribeVpcs", {}, "SignatureDoesNotMatch", 403 },
    { "route53", "ListHostedZones", {}, "SignatureDoesNotMatch", 403 },
    { "dynamodb", "ListTables", {}, "InvalidSignatureException", 400 },
  }
  for _, c in ipairs(cases) do
    local opts = { region = "eu-south-1" }
    for k, v in pairs(wrong) do opts[k] = v end
    local client = sim:client(c[1], opts)
    local e = aws_error(client[c[2]], client, c[3])
    lu.assertEquals(e.code, c[4], c[1])
    lu.assertEquals(e.status, c[5], c[1])
  end
end

function TestWire.test_unknown_access_key_per_protocol()
  local sim = simlib.new{}
  local cases = {
    { "sts", "GetCallerIdentity", {}, "InvalidClientTokenId", 403 },
    { "iam", "ListRoles", {}, "InvalidClientTokenId", 403 },
    { "ec2", "DescribeVpcs", {}, "AuthFailure", 401 },
    { "dynamodb", "ListTables", {}, "UnrecognizedClientException", 400 },
    { "ssm", "GetParameter", { Name = AL2 }, "UnrecognizedClientException", 400 },
    { "route53", "ListHostedZones", {}, "InvalidClientTokenId", 403 },
  }
  for _, c in ipairs(cases) do
    local client = sim:client(c[1], { region = "eu-central-1", access_key = "AKIANOBODYKNOWSTHIS",
      secret_key = "x", max_attempts = 1 })
    local e = aws_error(client[c[2]], client, c[3])
    lu.assertEquals(e.code, c[4], c[1])
    lu.assertEquals(e.status, c[5], c[1])
  end
end

-- A raw STS request, signed (or not) by hand.
local function sts_request(opts)
  local req = { method = "POST", url = "https://sts.eu-south-1.amazonaws.com/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8",
                Host = "sts.eu-south-1.amazonaws.com" },
    body = "Action=GetCallerIdentity&Version=2011-06-15" }
  if opts.sign then
    local s = sigv4.sign{ method = "POST", path = "/", query = "", headers = req.headers,
      body = req.body, region = "eu-south-1", service = "sts",
      access_key = simlib.DEFAULT_KEY.access_key, secret_key = simlib.DEFAULT_KEY.secret_key,
      time = opts.time or os.time() }
    for k, v in pairs(s.headers) do req.headers[k] = v end
  end
  return req
end

function TestWire.test_missing_authentication()
  local sim = simlib.new{}
  local resp = sim:handle(sts_request{})
  lu.assertEquals(resp.status, 403)
  lu.assertStrContains(resp.body, "<Code>MissingAuthenticationToken</Code>")
  lu.assertStrContains(resp.body, 'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"')
end

function TestWire.test_request_time_skew_over_15_minutes()
  local sim = simlib.new{}
  local resp = sim:handle(sts_request{ sign = true, time = os.time() - 16 * 60 })
  lu.assertEquals(resp.status, 403)
  lu.assertStrContains(resp.body, "<Code>SignatureDoesNotMatch</Code>")
  lu.assertStrContains(resp.body, "Signature expired")
  resp = sim:handle(sts_request{ sign = true, time = os.time() - 14 * 60 })
  lu.assertNotEquals(resp.status, 403)
end

function TestWire.test_tampered_body_breaks_the_signature()
  local sim = simlib.new{}
  local req = sts_request{ sign = true }
  req.body = req.body .. "&Extra=1"
  local resp = sim:handle(req)
  lu.assertEquals(resp.status, 403)
  lu.assertStrContains(resp.body, "<Code>SignatureDoesNotMatch</Code>")
end

function TestWire.test_latency_is_spent_on_the_event_loop()
  local sim = simlib.new{ latency_ms = 150, latency_jitter_ms = 50, seed = 1 }
  local client = sim:client("ec2", { region = "eu-south-1", access_key = "AKIANOBODY", secret_key = "x",
    max_attempts = 1 })
  -- Two calls in parallel: the second is made while the first waits out its latency (the
  -- wait is on the loop, not a blocking sleep), and each waits at least the latency. An
  -- ordering, not a wall-time bound: loaded machines stretch time, not the order.
  local started, answered = {}, {}
  local tasks = {}
  for i = 1, 2 do
    tasks[i] = fo.spawn(function()
      started[i] = fo.now()
      local ok = pcall(client.DescribeVpcs, client, {})
      answered[i] = fo.now()
      return ok
    end)
  end
  for _, t in ipairs(tasks) do t:join() end
  lu.assertTrue(started[2] < answered[1], "the second call waited for the first")
  lu.assertTrue(answered[1] - started[1] >= 0.15, tostring(answered[1] - started[1]))
  lu.assertTrue(answered[2] - started[2] >= 0.15, tostring(answered[2] - started[2]))
end

function TestWire.test_throttling_is_retried_then_surfaces_with_the_services_code()
  local sim = simlib.new{ throttle = 1 }
  local cases = { { "sts", "GetCallerIdentity", {}, "Throttling", 400 },
                  { "ec2", "DescribeVpcs", {}, "RequestLimitExceeded", 503 },
                  { "dynamodb", "ListTables", {}, "ThrottlingException", 400 },
                  { "route53", "ListHostedZones", {}, "Throttling", 400 },
                  { "s3", "ListBuckets", {}, "SlowDown", 503 } }
  for _, c in ipairs(cases) do
    local client = sim:client(c[1], { region = "eu-south-1", sleep = no_sleep, max_attempts = 3 })
    local e = aws_error(client[c[2]], client, c[3])
    lu.assertEquals(e.code, c[4])
    lu.assertEquals(e.status, c[5])
    lu.assertEquals(e.attempts, 3)
    lu.assertTrue(e.retryable)
  end
  lu.assertEquals(sim:count{ code = "Throttling" }, 6)
  -- a HEAD answer has no body: S3's 503 is what makes it retryable
  local s3 = sim:client("s3", { region = "eu-south-1", sleep = no_sleep, max_attempts = 3 })
  local e = aws_error(s3.HeadBucket, s3, { Bucket = "any-bucket" })
  lu.assertEquals({ e.status, e.attempts, e.retryable }, { 503, 3, true })
end

function TestWire.test_seeded_throttling_is_reproducible_and_retried_to_success()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local function run()
    local sim = simlib.new{ throttle = 0.5, seed = 42 }
    local client = sim:client("sts", { region = "eu-south-1", sleep = no_sleep, max_attempts = 10 })
    local attempts = {}
    for i = 1, 5 do
      local _, meta = client:GetCallerIdentity{}
      attempts[i] = meta.attempts
    end
    return attempts, sim:count{ code = "Throttling" }
  end
  local a, throttled = run()
  local b = run()
  lu.assertEquals(a, b)
  lu.assertTrue(throttled > 0)
end

function TestWire.test_transient_5xx()
  local sim = simlib.new{ fail_5xx = 1, seed = 5 }
  local client = sim:client("sts", { region = "eu-central-1", sleep = no_sleep, max_attempts = 4 })
  local e = aws_error(client.GetCallerIdentity, client, {})
  lu.assertEquals(e.attempts, 4)
  lu.assertTrue(e.code == "InternalFailure" or e.code == "ServiceUnavailable", e.code)
  lu.assertTrue(e.status == 500 or e.status == 503)
  local codes = {}
  for _, c in ipairs(sim:calls{ service = "sts" }) do codes[c.code] = true end
  lu.assertTrue(codes.InternalFailure and codes.ServiceUnavailable, "both 500 and 503 drawn")
  local ddb = sim:client("dynamodb", { region = "eu-central-1", sleep = no_sleep, max_attempts = 1 })
  e = aws_error(ddb.ListTables, ddb, {})
  lu.assertTrue(e.code == "InternalServerError" or e.code == "ServiceUnavailable", e.code)
end

-- fail_mutating_call = k: the k-th mutating call on the wire fails for good (a 400 in the
-- protocol's format, not retried), its handler not run; reads are not counted.
function TestWire.test_fail_mutating_call_injects_one_non_retryable_failure()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{ fail_mutating_call = 2, seed = 3 }
  local ec2 = sim:client("ec2", { region = "eu-central-1", sleep = no_sleep })
  ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }                      -- call 1
  local own = { Filters = { { Name = "is-default", Values = { "false" } } } } -- not the default VPC
  lu.assertEquals(#ec2:DescribeVpcs(own).Vpcs, 1)                 -- a read: not counted
  local e = aws_error(ec2.CreateVpc, ec2, { CidrBlock = "10.1.0.0/16" }) -- call 2
  lu.assertEquals(e.code, "FoInjectedFault")
  lu.assertEquals(e.status, 400)
  lu.assertEquals(e.attempts, 1)
  lu.assertStrContains(e.message, "injected failure of mutating call 2 (ec2.CreateVpc")
  lu.assertEquals(#ec2:DescribeVpcs(own).Vpcs, 1)                 -- the handler did not run
  ec2:CreateVpc{ CidrBlock = "10.2.0.0/16" }                      -- call 3 succeeds
  lu.assertEquals(sim:count{ mutating = true, code = "FoInjectedFault" }, 1)
  -- each protocol writes it in its own format; set_knob counts from now
  for _, case in ipairs({
    { "sns", "CreateTopic", { Name = "t" } },                               -- query
    { "dynamodb", "DeleteTable", { TableName = "nope" } },                  -- json
    { "route53", "CreateHostedZone", { Name = "example-com.test", CallerReference = "r1" } }, -- rest-xml
  }) do
    sim:set_knob("fail_mutating_call", 1)
    local c = sim:client(case[1], { region = "eu-central-1", sleep = no_sleep })
    e = aws_error(c[case[2]], c, case[3])
    lu.assertEquals(e.code, "FoInjectedFault", case[1])
    lu.assertEquals(e.status, 400, case[1])
    lu.assertEquals(e.attempts, 1, case[1])
  end
  sim:set_knob("fail_mutating_call", 0)
  sim:client("sns", { region = "eu-central-1" }):CreateTopic{ Name = "t" }
  -- sim:invoke never injects; bad values name the knob
  sim:set_knob("fail_mutating_call", 1)
  sim:invoke("sns", "eu-central-1", "CreateTopic", { Name = "u" })
  lu.assertEquals(sim.knobs.mutating_seen, 0)
  local ok, err = pcall(simlib.new, { env = function(n)
    return n == "FO_SIM_FAIL_MUTATING_CALL" and "1.5" or nil end })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "sim knob fail_mutating_call (FO_SIM_FAIL_MUTATING_CALL): 1.5 is not a "
    .. "whole number")
  local from_env = simlib.new{ env = function(n)
    return n == "FO_SIM_FAIL_MUTATING_CALL" and "7" or nil end }
  lu.assertEquals(from_env.knobs.fail_mutating_call, 7)
end

function TestWire.test_region_outage_is_a_connection_failure()
  local sim = simlib.new{ outage = { "eu-south-1" } }
  local client = sim:client("sts", { region = "eu-south-1", sleep = no_sleep, max_attempts = 2 })
  local e = aws_error(client.GetCallerIdentity, client, {})
  lu.assertEquals(e.kind, "transport")
  lu.assertEquals(e.code, "TransportConnect")
  lu.assertEquals(e.attempts, 2)
  lu.assertStrContains(e.message, "outage")
  -- A raw transport call raises fo.http's structured error.
  local ok, he = pcall(sim:transport().request, { method = "POST",
    url = "https://ec2.eu-south-1.amazonaws.com/", headers = { Authorization =
      "AWS4-HMAC-SHA256 Credential=AKIA/20240101/eu-south-1/ec2/aws4_request, SignedHeaders=host, Signature=00" },
    body = "" })
  lu.assertFalse(ok)
  lu.assertEquals(he.kind, "connect")
  lu.assertEquals(he.url, "https://ec2.eu-south-1.amazonaws.com/")
  -- Other regions and the global services still answer; the outage ends.
  local iam = sim:client("iam", { max_attempts = 1 })
  local ie = select(2, pcall(iam.ListRoles, iam, {}))
  lu.assertNotEquals(aws.Error.is(ie) and ie.kind, "transport")
  sim:set_outage("eu-south-1", false)
  local again = select(2, pcall(client.GetCallerIdentity, client, {}))
  lu.assertNotEquals(aws.Error.is(again) and again.kind, "transport")
end

function TestWire.test_recorder_sees_wire_calls()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{}
  sim:client("sts", { region = "eu-south-1" }):GetCallerIdentity{}
  sim:client("ssm", { region = "eu-central-1" }):GetParameter{ Name = AL2 }
  local calls = sim:calls()
  lu.assertEquals(#calls, 2)
  lu.assertEquals(calls[1].service, "sts")
  lu.assertEquals(calls[1].region, "eu-south-1")
  lu.assertFalse(calls[1].mutating)
  lu.assertEquals(calls[2].operation, "GetParameter")
  lu.assertEquals(calls[2].region, "eu-central-1")
  lu.assertEquals(sim:counts().total, 2)
end

function TestWire.test_body_over_the_service_cap_is_413_in_the_protocols_document()
  local MiB = 1024 * 1024 -- the caps of fo.sim.limits: SNS 1 MiB, DynamoDB 16 MiB
  local sim = simlib.new{}
  -- an SNS Publish whose form body passes SNS's cap (a 256 KiB message, form-encoded, fits)
  local sns = sim:client("sns", { region = "eu-south-1", max_attempts = 1 })
  local arn = sns:CreateTopic{ Name = "big" }.TopicArn
  lu.assertNotNil(sns:Publish{ TopicArn = arn, Message = ("%"):rep(256 * 1024) }.MessageId)
  local e = aws_error(sns.Publish, sns, { TopicArn = arn, Message = ("%"):rep(MiB // 3 + 1) })
  lu.assertEquals({ e.status, e.code }, { 413, "RequestEntityTooLarge" })
  lu.assertStrContains(e.message, "sns accepts at most 1048576")
  -- DynamoDB's 16 MB: a 2 MiB body is read (and answered by the codec), a larger one refused
  local ddb = sim:client("dynamodb", { region = "eu-south-1", max_attempts = 1 })
  local function put(n) return { TableName = "none", Item = { pk = { S = ("t"):rep(n) } } } end
  e = aws_error(ddb.PutItem, ddb, put(2 * 1024 * 1024))
  lu.assertEquals(e.code, "ResourceNotFoundException")
  e = aws_error(ddb.PutItem, ddb, put(16 * MiB))
  lu.assertEquals({ e.status, e.code }, { 413, "RequestEntityTooLargeException" })
  lu.assertEquals(sim:count{ status = 413 }, 2)
end

function TestWire.test_recorder_keeps_the_last_calls_and_counts_them_all()
  local sim = simlib.new{ record_calls = 3 }
  local sts = sim:client("sts", { region = "eu-south-1" })
  local ssm = sim:client("ssm", { region = "eu-central-1" })
  for _ = 1, 5 do sts:GetCallerIdentity{} end
  ssm:GetParameter{ Name = AL2 }
  sts:GetCallerIdentity{}
  -- the calls themselves: the last three, oldest first
  local calls = sim:calls()
  lu.assertEquals(#calls, 3)
  lu.assertEquals({ calls[1].service, calls[2].service, calls[3].service }, { "sts", "ssm", "sts" })
  lu.assertEquals(#sim:calls{ service = "sts" }, 2)
  -- the counts: every call since the start
  lu.assertEquals(sim:count(), 7)
  lu.assertEquals(sim:count{ service = "sts", region = "eu-south-1" }, 6)
  local c = sim:counts()
  lu.assertEquals({ c.total, c.mutating }, { 7, 0 })
  lu.assertEquals(c.by_operation, { ["sts.GetCallerIdentity"] = 6, ["ssm.GetParameter"] = 1 })
  -- a filter on what only each call has (its request id, a function) looks at the kept ones
  lu.assertEquals(sim:count{ request_id = calls[2].request_id }, 1)
  lu.assertEquals(sim:count(function(call) return call.service == "sts" end), 2)
  lu.assertEquals({ sim.recorder:sizes() }, { 7, 3 })
  sim.recorder:clear()
  lu.assertEquals({ sim:count(), #sim:calls() }, { 0, 0 })
end

function TestWire.test_recorder_size_default_environment_and_bad_values()
  lu.assertEquals(simlib.new{ env = function() return nil end }.recorder.max, 10000)
  local sim = simlib.new{ env = function(k) return k == "FO_SIM_RECORD_CALLS" and "2" or nil end }
  lu.assertEquals(sim.recorder.max, 2)
  for _ = 1, 50 do sim:invoke("sts", "eu-south-1", "GetCallerIdentity", {}) end
  lu.assertEquals({ #sim:calls(), sim:count() }, { 2, 50 })
  local ok, e = pcall(simlib.new, { env = function(k) return k == "FO_SIM_RECORD_CALLS" and "lots" or nil end })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "FO_SIM_RECORD_CALLS must be a whole number of calls ≥ 1, got lots")
  ok, e = pcall(simlib.new, { record_calls = 0 })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "record_calls must be a whole number of calls ≥ 1, got 0")
end

function TestWire.test_consistency_window_seen_by_a_client()
  lu.skipIf(not HAVE_CODEC, "server-side codec not built yet")
  local sim = simlib.new{ consistency_ms = 5000, load_services = false, handlers = { ec2 = {
    CreateVpc = function(ctx, p)
      local v = { VpcId = ctx:id("vpc"), CidrBlock = p.CidrBlock, State = "available" }
      ctx.db.vpcs = ctx.db.vpcs or {}
      ctx.db.vpcs[v.VpcId] = v
      ctx:created(v)
      return { Vpc = v }
    end,
    DescribeVpcs = function(ctx, p)
      local v = (ctx.db.vpcs or {})[p.VpcIds[1]]
      if not v or ctx:fresh(v) then
        ctx:fail("InvalidVpcID.NotFound", ("The vpc ID '%s' does not exist"):format(p.VpcIds[1]))
      end
      return { Vpcs = { v } }
    end,
  } } }
  local ec2 = sim:client("ec2", { region = "eu-south-1", max_attempts = 1 })
  local id = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local e = aws_error(ec2.DescribeVpcs, ec2, { VpcIds = { id } })
  lu.assertEquals(e.code, "InvalidVpcID.NotFound")
  sim:advance(5)
  lu.assertEquals(ec2:DescribeVpcs{ VpcIds = { id } }.Vpcs[1].VpcId, id)
  lu.assertEquals(sim:count{ mutating = true }, 1)
end

os.exit(lu.LuaUnit.run())
