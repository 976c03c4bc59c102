-- aws.call against loopback servers: signing the server can verify, standard-mode retries
-- (throttling, 5xx, Retry-After, non-retryable codes, the quota), expired-credential
-- refresh, the trace line; plus endpoint and region precedence.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local aws = fo.aws
local log = fo.log

local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYTESTKEY"
local function env_of(t)
  local e = { AWS_ACCESS_KEY_ID = "AKIDTEST", AWS_SECRET_ACCESS_KEY = SECRET,
              AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent" }
  for k, v in pairs(t or {}) do e[k] = v end
  return function(k) return e[k] end
end

local function xml_error(code, msg)
  return ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
    .. "<RequestId>req-%s</RequestId></ErrorResponse>"):format(code, msg, code)
end

-- A server that answers from a script of responses, recording each request.
local function scripted(responses)
  local s = { requests = {} }
  s.srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    s.requests[#s.requests + 1] = req
    return responses[math.min(#s.requests, #responses)]
  end }
  s.url = "http://127.0.0.1:" .. s.srv.port
  return s
end

local delays
local function call(s, extra)
  local req = { service = "sts", operation = "GetCallerIdentity", region = "eu-south-1",
    endpoint = s.url, body = "Action=GetCallerIdentity&Version=2011-06-15",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    env = env_of(), random = function() return 0.5 end,
    sleep = function(d) delays[#delays + 1] = d end }
  for k, v in pairs(extra or {}) do req[k] = v end
  return aws.call(req)
end

TestCall = {}
function TestCall.setUp() delays = {} end

function TestCall.test_request_is_signed_so_the_server_can_verify_it()
  local s = scripted{ { status = 200, body = "<ok/>" } }
  local r = call(s)
  s.srv:close()
  lu.assertEquals(r.status, 200)
  lu.assertEquals(r.attempts, 1)
  local req = s.requests[1]
  local auth = assert(fo.sigv4.parse_authorization(req.headers.authorization))
  lu.assertEquals(auth.access_key, "AKIDTEST")
  lu.assertEquals(auth.region, "eu-south-1")
  lu.assertEquals(auth.service, "sts")
  -- Recompute from what arrived, with the signed headers only.
  local again = fo.sigv4.sign{ method = req.method, path = req.path, query = req.query,
    headers = req.headers, body = req.body, region = auth.region, service = auth.service,
    access_key = auth.access_key, secret_key = SECRET, time = req.headers["x-amz-date"],
    signed_headers = auth.signed_headers }
  lu.assertEquals(again.signature, auth.signature)
end

function TestCall.test_throttling_is_retried_with_growing_capped_backoff()
  local s = scripted{ { status = 400, body = xml_error("Throttling", "Rate exceeded") },
                      { status = 400, body = xml_error("Throttling", "Rate exceeded") },
                      { status = 503, body = "" }, { status = 200, body = "<ok/>" } }
  local r = call(s, { max_attempts = 5 })
  s.srv:close()
  lu.assertEquals(#s.requests, 4)
  lu.assertEquals(r.attempts, 4)
  lu.assertEquals(delays, { 0.5, 1.0, 2.0 }) -- random 0.5 × 2^(attempt-1)
  lu.assertEquals(aws.retry.backoff(10, function() return 1 end), 20) -- capped
end

function TestCall.test_attempts_default_to_three_and_then_raise_structured_error()
  local s = scripted{ { status = 400, body = xml_error("Throttling", "Rate exceeded") } }
  local ok, e = pcall(call, s)
  s.srv:close()
  lu.assertFalse(ok)
  lu.assertEquals(#s.requests, 3)
  lu.assertTrue(aws.Error.is(e, "Throttling"))
  lu.assertEquals(e.status, 400)
  lu.assertEquals(e.request_id, "req-Throttling")
  lu.assertTrue(e.retryable)
  lu.assertEquals(e.service, "sts")
  lu.assertEquals(e.operation, "GetCallerIdentity")
  lu.assertStrContains(tostring(e), "sts.GetCallerIdentity: Throttling (HTTP 400): Rate exceeded")
end

function TestCall.test_aws_max_attempts_from_environment()
  local s = scripted{ { status = 500, body = "" } }
  pcall(call, s, { env = env_of{ AWS_MAX_ATTEMPTS = "2" } })
  s.srv:close()
  lu.assertEquals(#s.requests, 2)
end

function TestCall.test_non_retryable_errors_are_not_retried()
  local s = scripted{ { status = 400, body = xml_error("ValidationError", "bad input") } }
  local ok, e = pcall(call, s)
  s.srv:close()
  lu.assertFalse(ok)
  lu.assertEquals(#s.requests, 1)
  lu.assertFalse(e.retryable)
  lu.assertEquals(e.code, "ValidationError")
end

function TestCall.test_retry_after_is_honoured()
  local s = scripted{ { status = 503, headers = { ["Retry-After"] = "3" }, body = "" },
                      { status = 200, body = "" } }
  call(s)
  s.srv:close()
  lu.assertEquals(delays, { 3 })
end

function TestCall.test_json_errors_are_parsed()
  local s = scripted{ { status = 400, headers = { ["x-amzn-RequestId"] = "json-req" },
    body = '{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no table"}' } }
  local ok, e = pcall(call, s, { service = "dynamodb", operation = "DescribeTable" })
  s.srv:close()
  lu.assertEquals(e.code, "ResourceNotFoundException")
  lu.assertEquals(e.message, "no table")
  lu.assertEquals(e.request_id, "json-req")
end

function TestCall.test_transport_errors_are_retried_then_raised()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function() end }
  local url = "http://127.0.0.1:" .. srv.port
  srv:close()
  local ok, e = pcall(call, { url = url })
  lu.assertFalse(ok)
  lu.assertEquals(e.kind, "transport")
  lu.assertEquals(e.code, "TransportConnect")
  lu.assertEquals(e.attempts, 3)
end

function TestCall.test_retry_quota_stops_a_failure_burst()
  local q = aws.retry.new_quota(12)
  lu.assertEquals(q:acquire("throttle"), 5)
  lu.assertEquals(q:acquire("throttle"), 5)
  lu.assertNil(q:acquire("throttle"))
  q:release(5)
  lu.assertNil(q:acquire("timeout")) -- a timeout retry costs 10
  lu.assertEquals(q:acquire("throttle"), 5)
end

function TestCall.test_expired_token_forces_a_credentials_refresh()
  local s = scripted{ { status = 400, body = xml_error("ExpiredToken", "expired") },
                      { status = 200, body = "" } }
  local r = call(s, { max_attempts = 1 })
  s.srv:close()
  lu.assertEquals(r.attempts, 2)
end

function TestCall.test_trace_line_per_call()
  local lines = {}
  local old = log.set_sink(function(l) lines[#lines + 1] = l end)
  log.set_level("info")
  local s = scripted{ { status = 400, body = xml_error("Throttling", "x") }, { status = 200, body = "" } }
  call(s)
  s.srv:close()
  log.set_level("warn")
  log.set_sink(old)
  lu.assertEquals(#lines, 1)
  lu.assertStrMatches(lines[1], ".* info  aws call service=sts operation=GetCallerIdentity "
    .. "region=eu%-south%-1 status=200 attempts=2 latency_ms=%d+")
end

function TestCall.test_endpoint_precedence_and_global_services()
  local e = aws.endpoints
  local env = function(t) return function(k) return t[k] end end
  lu.assertEquals(e.resolve("ec2", "eu-south-1", { env = env{} }).url, "https://ec2.eu-south-1.amazonaws.com")
  lu.assertEquals(e.resolve("elbv2", "eu-central-1", { env = env{} }).url,
    "https://elasticloadbalancing.eu-central-1.amazonaws.com")
  lu.assertEquals(e.resolve("cloudwatch", "us-east-1", { env = env{} }).signing_name, "monitoring")
  local iam = e.resolve("iam", "eu-south-1", { env = env{} })
  lu.assertEquals({ iam.url, iam.signing_region }, { "https://iam.amazonaws.com", "us-east-1" })
  local r53 = e.resolve("route53", "eu-south-1", { env = env{} })
  lu.assertEquals({ r53.url, r53.signing_region }, { "https://route53.amazonaws.com", "us-east-1" })
  local vars = { AWS_ENDPOINT_URL = "http://127.0.0.1:1", AWS_ENDPOINT_URL_DYNAMODB = "http://127.0.0.1:2/" }
  lu.assertEquals(e.resolve("dynamodb", "eu-south-1", { env = env(vars) }).url, "http://127.0.0.1:2")
  lu.assertEquals(e.resolve("sns", "eu-south-1", { env = env(vars) }).url, "http://127.0.0.1:1")
  lu.assertEquals(e.resolve("dynamodb", "eu-south-1", { env = env(vars), endpoint = "http://127.0.0.1:3" }).url,
    "http://127.0.0.1:3")
  lu.assertErrorMsgContains("must be an http:// or https:// URL", e.resolve, "sns", "eu-south-1",
    { env = env{ AWS_ENDPOINT_URL = "ftp://x" } })
end

function TestCall.test_region_precedence()
  local r = aws.region
  local env = function(t) return function(k) return t[k] end end
  local vars = { AWS_REGION = "eu-south-1", AWS_DEFAULT_REGION = "us-east-1", HOME = "/nonexistent" }
  lu.assertEquals(r.resolve{ region = "eu-central-1", env = env(vars) }, "eu-central-1")
  lu.assertEquals(r.resolve{ env = env(vars) }, "eu-south-1")
  vars.AWS_REGION = nil
  lu.assertEquals(r.resolve{ env = env(vars) }, "us-east-1")
  lu.assertErrorMsgContains("not a region name", r.resolve, { region = "Milan", env = env(vars) })
  local ok, err = pcall(r.resolve, { env = env{ HOME = "/nonexistent" } })
  lu.assertStrContains(err, "no AWS region")
end

os.exit(lu.LuaUnit.run())
