-- Who may call the simulator, through fo's clients on the wire path: opt-in regions the
-- account has not enabled (knob disabled_regions), temporary keys with their session
-- token (sim:add_key), and presigned (query-string) requests.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local sigv4 = require "fo.sigv4"
local net = require "support.sim_net"

local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

TestOptIn = {}

function TestOptIn.test_sts_in_a_disabled_primary_region_refuses_the_credentials()
  local sim = simlib.new{ disabled_regions = { "eu-south-1" } }
  local sts = sim:client("sts", { region = "eu-south-1", max_attempts = 1 })
  local e = net.expect(lu, "InvalidClientTokenId", nil, sts.GetCallerIdentity, sts, {})
  lu.assertEquals(e.status, 403)
  lu.assertStrContains(e.message, "The security token included in the request is invalid.")
  lu.assertStrContains(e.message, "eu-south-1")
  lu.assertEquals(sim:count{ service = "sts", region = "eu-south-1", code = "InvalidClientTokenId" }, 1)
  -- the standby region and the global endpoints answer
  lu.assertEquals(sim:client("sts", { region = "eu-central-1" }):GetCallerIdentity{}.Account, "123456789012")
  lu.assertEquals(sim:client("iam", { region = "us-east-1" }):ListRoles{}.Roles, {})
  -- enabling the region (the knob's whole list) lets the same call through
  sim:set_knob("disabled_regions", {})
  lu.assertEquals(sts:GetCallerIdentity{}.Account, "123456789012")
end

function TestOptIn.test_enabled_by_default()
  local sim = simlib.new{ env = function() return nil end }
  lu.assertEquals(sim:client("sts", { region = "eu-south-1" }):GetCallerIdentity{}.Account, "123456789012")
end

function TestOptIn.test_codes_per_service()
  local sim = simlib.new{ env = function(k) return k == "FO_SIM_DISABLED_REGIONS" and "eu-south-1" or nil end }
  local cases = {
    { "ec2", "DescribeVpcs", {}, "AuthFailure", 401 },
    { "dynamodb", "ListTables", {}, "UnrecognizedClientException", 400 },
    { "ssm", "GetParameter", { Name = AL2 }, "UnrecognizedClientException", 400 },
    { "elbv2", "DescribeLoadBalancers", {}, "InvalidClientTokenId", 403 },
    { "autoscaling", "DescribeAutoScalingGroups", {}, "InvalidClientTokenId", 403 },
    { "sns", "ListTopics", {}, "InvalidClientTokenId", 403 },
    { "cloudwatch", "DescribeAlarms", {}, "InvalidClientTokenId", 403 },
  }
  for _, c in ipairs(cases) do
    local client = sim:client(c[1], { region = "eu-south-1", max_attempts = 1 })
    local e = net.aws_error(lu, client[c[2]], client, c[3])
    lu.assertEquals({ e.code, e.status }, { c[4], c[5] }, c[1])
    -- the same call works in the standby region
    local other = sim:client(c[1], { region = "eu-central-1" })
    lu.assertTrue(pcall(other[c[2]], other, c[3]), c[1])
  end
end

function TestOptIn.test_only_opt_in_regions_can_be_disabled()
  local ok, e = pcall(simlib.new, { disabled_regions = { "eu-central-1" } })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "disabled_regions")
  lu.assertStrContains(e, "eu-central-1 is not an opt-in region")
  ok, e = pcall(simlib.new, { env = function(k) return k == "FO_SIM_DISABLED_REGIONS" and "mars-1" or nil end })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "FO_SIM_DISABLED_REGIONS")
  local sim = simlib.new{}
  lu.assertErrorMsgContains("us-east-1 is not an opt-in region", sim.set_knob, sim, "disabled_regions", { "us-east-1" })
end

TestSessionToken = {}

local TEMP = { access_key = "ASIAFOSIMTEMPORARY01", secret_key = "tempSecret/ForTests+0001",
  session_token = "IQoJb3JpZ2luX2VjEFoaCXVzLWVhc3QtMSJHMEUCIQDtemp+token/value==" }

local function temp_client(sim, service, token, region)
  return sim:client(service, { region = region or "eu-south-1", access_key = TEMP.access_key,
    secret_key = TEMP.secret_key, session_token = token, max_attempts = 1 })
end

function TestSessionToken.test_temporary_key_works_with_its_token()
  local sim = simlib.new{}
  local e = sim:add_key{ access_key = TEMP.access_key, secret_key = TEMP.secret_key,
    session_token = TEMP.session_token, account = "210987654321", user = "deployer" }
  lu.assertEquals(e.account, "210987654321")
  local out = temp_client(sim, "sts", TEMP.session_token):GetCallerIdentity{}
  lu.assertEquals({ out.Account, out.Arn }, { "210987654321", "arn:aws:iam::210987654321:user/deployer" })
  lu.assertEquals(temp_client(sim, "dynamodb", TEMP.session_token):ListTables{}.TableNames, {})
  lu.assertEquals(#temp_client(sim, "ec2", TEMP.session_token):DescribeAvailabilityZones{}.AvailabilityZones, 3)
end

function TestSessionToken.test_missing_or_wrong_token_per_protocol()
  local sim = simlib.new{}
  sim:add_key(TEMP)
  local cases = {
    { "sts", "GetCallerIdentity", {}, "InvalidClientTokenId", 403 },
    { "elbv2", "DescribeLoadBalancers", {}, "InvalidClientTokenId", 403 },
    { "ec2", "DescribeVpcs", {}, "AuthFailure", 401 },
    { "dynamodb", "ListTables", {}, "UnrecognizedClientException", 400 },
    { "route53", "ListHostedZones", {}, "InvalidClientTokenId", 403 },
  }
  for _, c in ipairs(cases) do
    for _, token in ipairs{ false, "not-the-token" } do
      local client = temp_client(sim, c[1], token or nil)
      local e = net.aws_error(lu, client[c[2]], client, c[3])
      lu.assertEquals({ e.code, e.status }, { c[4], c[5] }, c[1] .. " token " .. tostring(token))
    end
  end
end

function TestSessionToken.test_a_long_term_key_refuses_a_token()
  local sim = simlib.new{}
  local sts = sim:client("sts", { region = "eu-south-1", access_key = simlib.DEFAULT_KEY.access_key,
    secret_key = simlib.DEFAULT_KEY.secret_key, session_token = "stray-token", max_attempts = 1 })
  net.expect(lu, "InvalidClientTokenId", nil, sts.GetCallerIdentity, sts, {})
end

function TestSessionToken.test_add_key_checks_its_argument()
  local sim = simlib.new{}
  lu.assertErrorMsgContains("sim:add_key needs access_key and secret_key", sim.add_key, sim, { access_key = "A" })
  lu.assertErrorMsgContains("session_token must be a non-empty string", sim.add_key, sim,
    { access_key = "A", secret_key = "B", session_token = "" })
end

TestPresigned = {}

-- A presigned GET of `query` (Action=...&Version=...) to `service` in eu-south-1, signed
-- `age` seconds ago with `key` (default the sim's).
local function presign(service, host, query, o)
  o = o or {}
  local key = o.key or simlib.DEFAULT_KEY
  local s = sigv4.sign{ method = "GET", path = "/", query = query, headers = { Host = host }, body = "",
    region = "eu-south-1", service = service, access_key = key.access_key, secret_key = key.secret_key,
    session_token = o.token, time = os.time() - (o.age or 0), mode = "query", expires = o.expires or 900 }
  return { method = "GET", url = "https://" .. host .. "/?" .. s.query, headers = { Host = host } }
end

local STS_HOST = "sts.eu-south-1.amazonaws.com"
local STS_QUERY = "Action=GetCallerIdentity&Version=2011-06-15"

local function code_of(resp)
  return resp.body:match("<Code>(.-)</Code>")
end

function TestPresigned.test_presigned_sts_get_caller_identity()
  local sim = simlib.new{}
  local req = presign("sts", STS_HOST, STS_QUERY)
  lu.assertStrContains(req.url, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=")
  local resp, info = sim:handle(req)
  lu.assertEquals(resp.status, 200, resp.body)
  lu.assertStrContains(resp.body, "<Account>123456789012</Account>")
  lu.assertEquals({ info.service, info.operation, info.region }, { "sts", "GetCallerIdentity", "eu-south-1" })
  -- the same URL again, within its window, still works
  lu.assertEquals(sim:handle(req).status, 200)
end

function TestPresigned.test_tampered_incomplete_and_expired()
  local sim = simlib.new{}
  local req = presign("sts", STS_HOST, STS_QUERY)
  local tampered = { method = "GET", url = req.url:gsub("Version=2011%-06%-15", "Version=2011-06-15&Extra=1"),
    headers = req.headers }
  local resp = sim:handle(tampered)
  lu.assertEquals({ resp.status, code_of(resp) }, { 403, "SignatureDoesNotMatch" })
  local cut = { method = "GET", url = req.url:gsub("&X%-Amz%-Signature=%x+", ""), headers = req.headers }
  resp = sim:handle(cut)
  lu.assertEquals({ resp.status, code_of(resp) }, { 403, "MissingAuthenticationToken" })
  lu.assertStrContains(resp.body, "X-Amz-Signature")
  -- older than AWS's 15 minutes: expired, whatever X-Amz-Expires says
  resp = sim:handle(presign("sts", STS_HOST, STS_QUERY, { age = 16 * 60, expires = 3600 }))
  lu.assertEquals({ resp.status, code_of(resp) }, { 403, "SignatureDoesNotMatch" })
  lu.assertStrContains(resp.body, "Signature expired")
  lu.assertEquals(sim:handle(presign("sts", STS_HOST, STS_QUERY, { age = 14 * 60 })).status, 200)
  -- EC2 answers an expired request with its own code
  resp = sim:handle(presign("ec2", "ec2.eu-south-1.amazonaws.com", "Action=DescribeVpcs&Version=2016-11-15",
    { age = 20 * 60 }))
  lu.assertEquals({ resp.status, code_of(resp) }, { 400, "RequestExpired" })
end

function TestPresigned.test_ec2_reads_the_operation_without_the_auth_parameters()
  local sim = simlib.new{}
  local resp = sim:handle(presign("ec2", "ec2.eu-south-1.amazonaws.com", "Action=DescribeVpcs&Version=2016-11-15"))
  lu.assertEquals(resp.status, 200, resp.body)
  lu.assertStrContains(resp.body, "<DescribeVpcsResponse")
end

function TestPresigned.test_presigned_with_a_session_token()
  local sim = simlib.new{}
  sim:add_key(TEMP)
  local req = presign("sts", STS_HOST, STS_QUERY, { key = TEMP, token = TEMP.session_token })
  lu.assertStrContains(req.url, "&X-Amz-Security-Token=")
  local resp = sim:handle(req)
  lu.assertEquals(resp.status, 200, resp.body)
  lu.assertStrContains(resp.body, "<Arn>arn:aws:iam::123456789012:user/user-asiafosimtemporary01</Arn>")
  for _, token in ipairs{ false, "other" } do
    resp = sim:handle(presign("sts", STS_HOST, STS_QUERY, { key = TEMP, token = token or nil }))
    lu.assertEquals({ resp.status, code_of(resp) }, { 403, "InvalidClientTokenId" })
  end
end

TestHostSigned = {}

-- A request of `service` signed without Host among its SignedHeaders (the signature is
-- otherwise right): header-signed POST of `body`, or presigned GET of `query`.
local function without_host(service, host, o)
  local key = simlib.DEFAULT_KEY
  local headers = { Host = host, ["X-Fo-Test"] = "1" }
  if o.body then headers["Content-Type"] = o.content_type end
  local s = sigv4.sign{ method = o.body and "POST" or "GET", path = "/", query = o.query or "",
    headers = headers, body = o.body or "", region = "eu-south-1", service = service,
    access_key = key.access_key, secret_key = key.secret_key, time = os.time(),
    mode = not o.body and "query" or nil, expires = 900,
    signed_headers = o.body and { "content-type", "x-amz-date", "x-fo-test" } or { "x-fo-test" } }
  for k, v in pairs(s.headers or {}) do headers[k] = v end
  if o.target then headers["X-Amz-Target"] = o.target end
  return { method = o.body and "POST" or "GET", headers = headers,
    url = "https://" .. host .. "/" .. (o.body and "" or "?" .. s.query), body = o.body }
end

local HOST_MESSAGE = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
local HOST_MESSAGE_XML = "<Message>" .. HOST_MESSAGE:gsub("'", "&apos;") .. "</Message>"

function TestHostSigned.test_header_signed_without_host_is_refused()
  local sim = simlib.new{}
  local req = without_host("sts", STS_HOST, { body = STS_QUERY,
    content_type = "application/x-www-form-urlencoded; charset=utf-8" })
  lu.assertStrContains(req.headers.Authorization, "SignedHeaders=content-type;x-amz-date;x-fo-test,")
  local resp, info = sim:handle(req)
  lu.assertEquals({ resp.status, code_of(resp) }, { 403, "SignatureDoesNotMatch" })
  lu.assertStrContains(resp.body, HOST_MESSAGE_XML)
  lu.assertEquals(info.operation, "GetCallerIdentity")
  -- the JSON protocol's bad-signature code
  req = without_host("dynamodb", "dynamodb.eu-south-1.amazonaws.com", { body = "{}",
    content_type = "application/x-amz-json-1.0", target = "DynamoDB_20120810.ListTables" })
  resp = sim:handle(req)
  lu.assertEquals(resp.status, 400, resp.body)
  local doc = require("cjson").decode(resp.body)
  lu.assertStrContains(doc.__type, "InvalidSignatureException")
  lu.assertEquals(doc.message, HOST_MESSAGE)
  lu.assertEquals(sim:count{ code = "SignatureDoesNotMatch" } + sim:count{ code = "InvalidSignatureException" }, 2)
end

function TestHostSigned.test_presigned_without_host_is_refused()
  local sim = simlib.new{}
  local req = without_host("sts", STS_HOST, { query = STS_QUERY })
  lu.assertStrContains(req.url, "X-Amz-SignedHeaders=x-fo-test&")
  local resp = sim:handle(req)
  lu.assertEquals({ resp.status, code_of(resp) }, { 403, "SignatureDoesNotMatch" })
  lu.assertStrContains(resp.body, HOST_MESSAGE_XML)
end

os.exit(lu.LuaUnit.run())
