-- aws.call against loopback servers: signing the server can verify (regional and global
-- services), region and endpoint resolution, error parsing for each protocol family,
-- expired-credential refresh, shared credentials across calls, and the trace lines.
-- (Retry behaviour has its own suite: test_retry.lua.)
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local fake = require "support.fake_aws"
local aws = fo.aws
local log = fo.log

local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYTESTKEY"
local function base_env(extra)
  return fake.merge({ AWS_ACCESS_KEY_ID = "AKIDTEST", AWS_SECRET_ACCESS_KEY = SECRET,
    AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent" }, extra)
end

local delays
local function call(s, extra)
  local req = { service = "sts", operation = "GetCallerIdentity", region = "eu-south-1",
    endpoint = s.url, body = "Action=GetCallerIdentity&Version=2011-06-15",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    env = fake.env(base_env()), random = function() return 0.5 end,
    sleep = function(d) delays[#delays + 1] = d end }
  for k, v in pairs(extra or {}) do req[k] = v end
  return aws.call(req)
end

-- Recomputes the signature of a received request with the signed headers only.
local function verify(req, secret)
  local auth = assert(fo.sigv4.parse_authorization(req.headers.authorization))
  local again = fo.sigv4.sign{ method = req.method, path = req.path, query = req.query,
    headers = req.headers, body = req.body, region = auth.region, service = auth.service,
    access_key = auth.access_key, secret_key = secret or SECRET, time = req.headers["x-amz-date"],
    signed_headers = auth.signed_headers }
  return again.signature == auth.signature, auth
end

local function capture_log(level, fn)
  local lines = {}
  local old_sink = log.set_sink(function(l) lines[#lines + 1] = l end)
  local old_level = log.level()
  log.set_level(level)
  local ok, err = pcall(fn)
  log.set_level(old_level)
  log.set_sink(old_sink)
  if not ok then error(err, 0) end
  return lines
end

TestCall = {}
function TestCall.setUp() delays = {} end

function TestCall.test_request_is_signed_so_the_server_can_verify_it()
  local s = fake.scripted{ { status = 200, headers = { ["x-amzn-RequestId"] = "r1" }, body = "<ok/>" } }
  local r = call(s)
  s.close()
  lu.assertEquals(r.status, 200)
  lu.assertEquals(r.attempts, 1)
  lu.assertEquals(r.body, "<ok/>")
  lu.assertEquals(r.headers["x-amzn-requestid"], "r1")
  lu.assertTrue(r.latency >= 0)
  local ok, auth = verify(s.requests[1])
  lu.assertTrue(ok)
  lu.assertEquals({ auth.access_key, auth.region, auth.service }, { "AKIDTEST", "eu-south-1", "sts" })
  lu.assertEquals(s.requests[1].headers["content-type"], "application/x-www-form-urlencoded; charset=utf-8")
  lu.assertNil(s.requests[1].headers["x-amz-security-token"])
end

function TestCall.test_session_token_is_sent_and_signed()
  local s = fake.scripted{ { status = 200, body = "" } }
  call(s, { env = fake.env(base_env{ AWS_SESSION_TOKEN = "tok/en+value" }) })
  s.close()
  local req = s.requests[1]
  lu.assertEquals(req.headers["x-amz-security-token"], "tok/en+value")
  lu.assertTrue(verify(req))
  lu.assertStrContains(req.headers.authorization, "x-amz-security-token")
end

function TestCall.test_global_service_is_signed_for_us_east_1_with_its_signing_name()
  local s = fake.scripted{ { status = 200, body = "" } }
  call(s, { service = "iam", operation = "GetUser", region = "eu-south-1",
            body = "Action=GetUser&Version=2010-05-08" })
  call(s, { service = "cloudwatch", operation = "ListMetrics", region = "eu-central-1" })
  s.close()
  local ok1, a1 = verify(s.requests[1])
  local ok2, a2 = verify(s.requests[2])
  lu.assertTrue(ok1 and ok2)
  lu.assertEquals({ a1.region, a1.service }, { "us-east-1", "iam" })
  lu.assertEquals({ a2.region, a2.service }, { "eu-central-1", "monitoring" })
end

function TestCall.test_region_and_endpoint_come_from_the_environment_when_not_given()
  local s = fake.scripted{ { status = 200, body = "" } }
  call(s, { region = false, endpoint = nil, env = fake.env(base_env{ AWS_REGION = "eu-central-1",
    AWS_ENDPOINT_URL_STS = s.url }) })
  s.close()
  local _, auth = verify(s.requests[1])
  lu.assertEquals(auth.region, "eu-central-1")
end

function TestCall.test_path_query_and_method_reach_the_server()
  local s = fake.scripted{ { status = 200, body = "" } }
  call(s, { service = "route53", operation = "ListHostedZones", method = "GET",
    path = "/2013-04-01/hostedzone", query = "maxitems=10", body = "", headers = {},
    endpoint = s.url .. "/prefix/" })
  s.close()
  local req = s.requests[1]
  lu.assertEquals({ req.method, req.path, req.query }, { "GET", "/prefix/2013-04-01/hostedzone", "maxitems=10" })
end

function TestCall.test_ec2_style_error_is_parsed_and_formatted()
  local s = fake.scripted{ { status = 400, body = "<Response><Errors><Error><Code>InvalidParameterValue"
    .. "</Code><Message>Value (10.0.0.0/33) for parameter cidrBlock is invalid.</Message></Error>"
    .. "</Errors><RequestID>ec2-req-1</RequestID></Response>" } }
  local ok, e = pcall(call, s, { service = "ec2", operation = "CreateVpc", body = "Action=CreateVpc" })
  s.close()
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(e))
  lu.assertTrue(aws.Error.is(e, "InvalidParameterValue"))
  lu.assertFalse(aws.Error.is(e, "Throttling"))
  lu.assertEquals(getmetatable(e).__name, "fo.aws.Error")
  lu.assertEquals({ e.service, e.operation, e.code, e.status, e.request_id, e.region, e.retryable },
    { "ec2", "CreateVpc", "InvalidParameterValue", 400, "ec2-req-1", "eu-south-1", false })
  lu.assertEquals(tostring(e), "ec2.CreateVpc: InvalidParameterValue (HTTP 400): Value "
    .. "(10.0.0.0/33) for parameter cidrBlock is invalid. [request id ec2-req-1] [region eu-south-1]")
end

function TestCall.test_json_and_rest_json_errors_are_parsed()
  local s = fake.scripted{
    { status = 400, headers = { ["x-amzn-RequestId"] = "json-req" },
      body = '{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}' },
    { status = 404, headers = { ["x-amzn-ErrorType"] = "NotFoundException:http://internal.amazon.com/" },
      body = '{"Message":"nothing here"}' } }
  local _, e1 = pcall(call, s, { service = "dynamodb", operation = "DescribeTable" })
  local _, e2 = pcall(call, s, { service = "dynamodb", operation = "DescribeTable" })
  s.close()
  lu.assertEquals({ e1.code, e1.message, e1.request_id }, { "ResourceNotFoundException", "no table", "json-req" })
  lu.assertEquals({ e2.code, e2.message }, { "NotFoundException", "nothing here" })
end

function TestCall.test_error_without_a_body_gets_the_status_as_code()
  local s = fake.scripted{ { status = 403, body = "" } }
  local _, e = pcall(call, s)
  s.close()
  lu.assertEquals({ e.code, e.status, e.kind }, { "403", 403, "service" })
  lu.assertEquals(tostring(e), "sts.GetCallerIdentity: 403 (HTTP 403) [region eu-south-1]")
end

function TestCall.test_custom_parse_error_is_used()
  local s = fake.scripted{ { status = 409, body = "busy:try later" } }
  local _, e = pcall(call, s, { parse_error = function(resp)
    local code, msg = resp.body:match("^(%w+):(.*)$")
    return { code = code == "busy" and "Throttling" or code, message = msg, request_id = "custom" }
  end, max_attempts = 2 })
  s.close()
  lu.assertEquals({ e.code, e.message, e.request_id, e.attempts }, { "Throttling", "try later", "custom", 2 })
end

function TestCall.test_expired_token_forces_one_refresh_and_retry_with_new_credentials()
  local vars = base_env{ AWS_ACCESS_KEY_ID = "AKIDOLD" }
  local env = fake.env(vars)
  local s = fake.scripted{ function()
    vars.AWS_ACCESS_KEY_ID = "AKIDNEW" -- what a refresh will find from now on
    return { status = 400, body = fake.xml_error("ExpiredToken", "The security token included in the request is expired") }
  end, { status = 200, body = "" } }
  local r = call(s, { env = env, max_attempts = 1 })
  s.close()
  lu.assertEquals(r.attempts, 2, "the refresh attempt is outside the retry budget")
  lu.assertEquals(delays, {}, "no backoff before it")
  local _, a1 = verify(s.requests[1])
  local _, a2 = verify(s.requests[2])
  lu.assertEquals({ a1.access_key, a2.access_key }, { "AKIDOLD", "AKIDNEW" })
end

function TestCall.test_expired_credentials_refresh_only_once()
  for _, code in ipairs{ "ExpiredToken", "ExpiredTokenException", "RequestExpired" } do
    local s = fake.scripted{ { status = 400, body = fake.xml_error(code, "expired") } }
    local ok, e = pcall(call, s, { max_attempts = 3 })
    s.close()
    lu.assertFalse(ok)
    lu.assertEquals(#s.requests, 2, code)
    lu.assertEquals(e.code, code)
    lu.assertFalse(e.retryable)
  end
end

function TestCall.test_calls_share_cached_credentials_per_profile()
  local dir = testlib.tmpdir()
  local counter = dir .. "/count"
  testlib.write(dir .. "/helper.sh", ([[#!/bin/sh
n=$(cat %s 2>/dev/null || echo 0); echo $((n+1)) > %s
printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "procsecret0123456789"}'
]]):format(counter, counter), "755")
  testlib.write(dir .. "/config", ("[profile p]\ncredential_process = %s/helper.sh\n"):format(dir))
  local env = fake.env{ HOME = dir, AWS_CONFIG_FILE = dir .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/none", AWS_EC2_METADATA_DISABLED = "true" }
  local s = fake.scripted{ { status = 200, body = "" } }
  local tasks = {}
  for i = 1, 8 do tasks[i] = fo.spawn(call, s, { env = env, profile = "p" }) end
  fo.all(tasks)
  call(s, { env = env, profile = "p" })
  s.close()
  lu.assertEquals(testlib.read(counter), "1\n", "one run of credential_process for nine calls")
  for _, req in ipairs(s.requests) do lu.assertTrue(verify(req, "procsecret0123456789")) end
  testlib.rmtree(dir)
end

function TestCall.test_info_line_per_call()
  local s = fake.scripted{ { status = 400, body = fake.xml_error("Throttling", "x") },
                           { status = 200, body = "" },
                           { status = 400, body = fake.xml_error("ValidationError", "bad") } }
  local lines = capture_log("info", function()
    call(s)
    pcall(call, s)
  end)
  s.close()
  lu.assertEquals(#lines, 2)
  lu.assertStrMatches(lines[1], "%d%d%d%d%-%d%d%-%d%dT[%d:]+Z info  aws call service=sts "
    .. "operation=GetCallerIdentity region=eu%-south%-1 status=200 attempts=2 latency_ms=%d+")
  lu.assertStrMatches(lines[2], ".* info  aws call service=sts operation=GetCallerIdentity "
    .. "region=eu%-south%-1 status=400 attempts=1 latency_ms=%d+ ValidationError")
end

function TestCall.test_debug_and_trace_lines_hide_authorization_and_token()
  local s = fake.scripted{ { status = 503, headers = { ["x-amzn-RequestId"] = "t1" },
    body = "<Error><Code>ServiceUnavailable</Code>\n<Message>busy</Message></Error>" },
    { status = 200, body = "" } }
  local lines = capture_log("trace", function()
    call(s, { env = fake.env(base_env{ AWS_SESSION_TOKEN = "SESSIONTOKENVALUE123" }) })
  end)
  s.close()
  local all = table.concat(lines, "\n")
  lu.assertStrContains(all, "aws send service=sts operation=GetCallerIdentity POST " .. s.url .. "/ attempt=1")
  lu.assertStrContains(all:lower(), "authorization=<hidden>")
  lu.assertStrContains(all:lower(), "x-amz-security-token=<hidden>")
  lu.assertStrContains(all, "aws recv status=503")
  lu.assertStrContains(all, "aws retry service=sts operation=GetCallerIdentity attempt=1 "
    .. "reason=ServiceUnavailable class=transient delay_ms=500")
  lu.assertNotStrContains(all, "SESSIONTOKENVALUE123")
  lu.assertNotStrContains(all, SECRET)
  for _, l in ipairs(lines) do lu.assertNotStrContains(l, "\n") end
end

function TestCall.test_bad_requests_fail_before_sending()
  lu.assertErrorMsgContains("service and operation are required", aws.call, { service = "sts" })
  lu.assertErrorMsgContains("expected a table", aws.call, "sts")
  lu.assertErrorMsgContains("unknown AWS service 'nope'", aws.call, { service = "nope",
    operation = "X", region = "eu-south-1", env = fake.env(base_env()) })
  lu.assertErrorMsgContains("no AWS region", aws.call, { service = "sts", operation = "X",
    env = fake.env(base_env()) })
end

function TestCall.test_module_surface()
  local m = require "fo.aws"
  lu.assertIs(m, fo.aws)
  for _, k in ipairs{ "call", "credentials", "region", "endpoints", "retry", "Error" } do
    lu.assertNotNil(m[k], k)
  end
  lu.assertFalse(m.Error.is({ code = "x" }))
  lu.assertFalse(m.Error.is("x"))
end

os.exit(lu.LuaUnit.run())
