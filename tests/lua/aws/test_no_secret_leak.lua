-- Secrets never appear in any output: a child fo-run with FO_LOG=trace loads credentials
-- from every source (environment, credential_process, IMDS), makes AWS calls that fail in
-- every way (service errors echoing the secrets back, retries, transport errors, a failing
-- credential_process), ends with an uncaught error, and every byte it prints is searched.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local fake = require "support.fake_aws"

local SECRETS = {
  env_secret = "leakcheckSECRETkey0123456789abcdefABCDEF",
  env_token = "leakcheckTOKEN9876543210zyxwvutsrqponmlk",
  proc_secret = "procLEAKsecret/abcdefghijklmnopqrstu+vw",
  proc_token = "procLEAKtoken0123456789012345678901234567",
  failing_proc_secret = "failingPROCsecretABCDEFGHIJKLMNOPQRSTU",
  imds_secret = "imdsLEAKsecret0123456789abcdefghijklmnop",
  imds_token = "imdsLEAKsessionToken9876543210abcdefghij",
  imds_api_token = "imdsAPItokenLEAK0123456789==",
}

-- Answers every request with an error that echoes all it received (headers and body)
-- and, as a hostile or broken endpoint could, the secret key that belongs to the access
-- key id it saw, in the protocol's error format.
local SECRET_OF = { AKIDLEAK = SECRETS.env_secret, AKIDPROC = SECRETS.proc_secret,
                    AKIDIMDS = SECRETS.imds_secret }
local function echo_server()
  return fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    local echo = { req.method, req.target, req.body or "" }
    for k, v in pairs(req.headers) do echo[#echo + 1] = k .. "=" .. v end
    local akid = (req.headers.authorization or ""):match("Credential=([^/]+)")
    local secret = SECRET_OF[akid] or "?"
    local token = req.headers["x-amz-security-token"] or "?"
    echo[#echo + 1] = "secret=" .. secret
    local text = table.concat(echo, " ")
    if req.path:match("^/json") then
      return { status = 400, headers = { ["x-amzn-RequestId"] = token },
               body = require("cjson").encode{ __type = "ThrottlingException", message = text } }
    end
    return { status = 400, headers = { ["X-Echo"] = secret },
             body = "<ErrorResponse><Error><Code>Throttling</Code><Message>" .. fo.xml.escape(text)
               .. "</Message></Error><RequestId>" .. token .. "</RequestId></ErrorResponse>" }
  end }
end

local function imds_server()
  return fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    if req.method == "PUT" then return { status = 200, body = SECRETS.imds_api_token } end
    if req.path == "/latest/meta-data/iam/security-credentials/" then return { status = 200, body = "r" } end
    return { status = 200, body = require("cjson").encode{ AccessKeyId = "AKIDIMDS",
      SecretAccessKey = SECRETS.imds_secret, Token = SECRETS.imds_token,
      Expiration = "2099-01-01T00:00:00Z" } }
  end }
end

local CHILD = [[
local port, dir, dead = ...
local function env_with(t)
  return function(k) if t[k] ~= nil then return t[k] or nil end return os.getenv(k) end
end
local function try(label, req)
  req.service = req.service or "sts"
  req.operation = req.operation or "GetCallerIdentity"
  req.region = "eu-south-1"
  req.body = req.body or "Action=GetCallerIdentity"
  local ok, e = pcall(fo.aws.call, req)
  print(label, ok, tostring(e), type(e) == "table" and e.message or "")
  io.stderr:write(label, " ", tostring(e), "\n")
end
-- 1. environment credentials, XML and JSON errors that echo everything, retried
try("env-xml", { endpoint = "http://127.0.0.1:" .. port })
try("env-json", { service = "dynamodb", operation = "ListTables", endpoint = "http://127.0.0.1:" .. port .. "/json" })
-- 2. a transport failure
try("env-transport", { endpoint = "http://127.0.0.1:" .. dead })
-- 3. credential_process credentials
local files = { AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_SESSION_TOKEN = false,
  AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }
try("proc", { profile = "proc", env = env_with(files), endpoint = "http://127.0.0.1:" .. port })
-- 4. a credential_process that fails after printing credentials
try("failing-proc", { profile = "failing", env = env_with(files), endpoint = "http://127.0.0.1:" .. port })
-- 5. IMDS credentials
local imds = { AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_SESSION_TOKEN = false,
  AWS_EC2_METADATA_DISABLED = false, HOME = dir .. "/empty",
  AWS_CONFIG_FILE = dir .. "/none", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }
try("imds", { env = env_with(imds), endpoint = "http://127.0.0.1:" .. port })
-- 6. the credentials tables themselves are not printable secrets either
local c = fo.aws.credentials.for_profile(nil, nil):get()
fo.log.error("loaded %s from %s", c.access_key, c.source)
-- 7. an uncaught error: fo-run prints it with a traceback
local _, e = pcall(fo.aws.call, { service = "sts", operation = "GetCallerIdentity", region = "eu-south-1",
  endpoint = "http://127.0.0.1:" .. port, body = "x" })
error(e)
]]

function test_trace_output_and_errors_never_contain_secrets()
  local srv, imds = echo_server(), imds_server()
  local dir = testlib.tmpdir()
  testlib.write(dir .. "/child.lua", CHILD)
  testlib.write(dir .. "/proc.sh", ([[#!/bin/sh
printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "%s", "SessionToken": "%s"}'
]]):format(SECRETS.proc_secret, SECRETS.proc_token), "755")
  testlib.write(dir .. "/failing.sh", ([[#!/bin/sh
printf '{"Version": 1, "AccessKeyId": "AKIDFAIL", "SecretAccessKey": "%s"}'
echo "helper: session expired, run login again" >&2
exit 3
]]):format(SECRETS.failing_proc_secret), "755")
  testlib.write(dir .. "/config", ("[profile proc]\ncredential_process = %s/proc.sh\n"
    .. "[profile failing]\ncredential_process = %s/failing.sh\n"):format(dir, dir))
  local r = testlib.run_fo({ dir .. "/child.lua", tostring(srv.port), dir, tostring(fake.dead_port()) },
    { env = { FO_LOG = "trace", AWS_ACCESS_KEY_ID = "AKIDLEAK",
      AWS_SECRET_ACCESS_KEY = SECRETS.env_secret, AWS_SESSION_TOKEN = SECRETS.env_token,
      AWS_MAX_ATTEMPTS = "2", AWS_EC2_METADATA_DISABLED = "true",
      AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. imds.port,
      AWS_PROFILE = false, AWS_REGION = false, AWS_ENDPOINT_URL = false } })
  srv:close()
  imds:close()
  testlib.rmtree(dir)
  local out = r.stdout .. r.stderr
  lu.assertEquals(r.code, 1, out)
  -- Every scenario ran and said something.
  lu.assertStrContains(out, "aws call service=sts operation=GetCallerIdentity")
  lu.assertStrContains(out, "aws call service=dynamodb operation=ListTables")
  lu.assertStrContains(out, "aws retry")
  lu.assertStrContains(out, "aws send headers")
  lu.assertStrContains(out, "aws recv status=400")
  lu.assertStrContains(out, "TransportConnect")
  lu.assertStrContains(out, "failing-proc")
  lu.assertStrContains(out, "credential_process of profile 'failing'")
  lu.assertStrContains(out, "exited with 3: helper: session expired")
  lu.assertStrContains(out, "AKIDPROC")
  lu.assertStrContains(out, "AKIDIMDS")
  lu.assertStrContains(out, "AKIDLEAK") -- access key ids are not secrets
  lu.assertStrContains(out, "stack traceback")
  lu.assertStrContains(out, "secret=****") -- the echo happened and was redacted
  for name, secret in pairs(SECRETS) do
    lu.assertNotStrContains(out, secret, false, name .. " leaked")
  end
  -- Not even parts of them long enough to matter (a split line, a truncated echo).
  for name, secret in pairs(SECRETS) do
    lu.assertNotStrContains(out, secret:sub(1, 20), false, name .. " (prefix) leaked")
    lu.assertNotStrContains(out, secret:sub(-20), false, name .. " (suffix) leaked")
  end
end

-- The temporary sources: a child fo-run with FO_LOG=trace assumes a role (a chain through
-- a source profile), exchanges a web identity token, reads and refreshes an SSO token and
-- fetches container credentials, all from a sim served by this process (so the child
-- learns every secret over the wire and must register it itself), then fails in each of
-- them; none of the secrets involved appears in anything it prints.
local TEMP_CHILD = [[
local dir, agent = ...
local function env_with(t)
  return function(k) if t[k] ~= nil then return t[k] or nil end return os.getenv(k) end
end
local function try(label, opts)
  local ok, c = pcall(fo.aws.credentials.resolve, opts)
  print(label, ok, ok and (c.access_key .. " " .. c.source) or tostring(c))
  if ok then
    local sts = fo.aws.sts{ region = "us-east-1", profile = opts.profile, env = opts.env }
    local cok, who = pcall(sts.GetCallerIdentity, sts, {})
    print(label, "identity", cok and who.Arn or tostring(who))
    fo.log.error("%s loaded %s %s", label, tostring(c.secret_key), tostring(c.session_token))
  end
end
try("assume-role", { profile = "chain", env = env_with{} })
try("web-identity", { env = env_with{ AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/token",
  AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/leak" } })
try("web-identity-denied", { env = env_with{ AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/token",
  AWS_ROLE_ARN = "arn:aws:iam::123456789012:role/nope" } })
try("sso", { profile = "dev", env = env_with{} })
try("sso-denied", { profile = "ops", env = env_with{} })
try("container", { env = env_with{ AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://127.0.0.1:" .. agent,
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = dir .. "/agent-token" } })
error("the end")
]]

function test_temporary_credential_sources_never_leak()
  local json = require "fo.json"
  local dir = testlib.tmpdir()
  local srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local url = ("http://127.0.0.1:%d"):format(srv.port)
  local key = require("fo.sim").DEFAULT_KEY
  local root = '{"AWS":"arn:aws:iam::123456789012:root"}'
  for _, name in ipairs({ "leak", "leak2" }) do
    sim:invoke("iam", "us-east-1", "CreateRole", { RoleName = name, AssumeRolePolicyDocument =
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":'
      .. root .. '}]}' })
  end
  local provider = sim:invoke("iam", "us-east-1", "CreateOpenIDConnectProvider",
    { Url = "https://oidc.leak.test", ClientIDList = { "fo" } }).OpenIDConnectProviderArn
  sim:invoke("iam", "us-east-1", "UpdateAssumeRolePolicy", { RoleName = "leak", PolicyDocument =
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":'
    .. root .. '},{"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity","Principal":'
    .. '{"Federated":"' .. provider .. '"}}]}' })
  local function b64url(x)
    return (fo.crypto.base64_encode(x):gsub("+", "-"):gsub("/", "_"):gsub("=+$", ""))
  end
  local token = b64url(json.encode{ alg = "RS256" }) .. "." .. b64url(json.encode{
    iss = "https://oidc.leak.test", aud = "fo", sub = "leak-subject", exp = os.time() + 600 })
    .. "." .. b64url("signature-bytes-of-the-leak-test")
  testlib.write(dir .. "/token", token)
  local sso = sim:sso_login{ assignments = { { account = "123456789012", role = "Dev" } },
    seconds = 120 }
  fo.fs.mkdir_p(dir .. "/.aws/sso/cache", tonumber("700", 8))
  local cache = dir .. "/.aws/sso/cache/" .. fo.crypto.hex(fo.crypto.sha1("acme")) .. ".json"
  testlib.write(cache, json.encode(sso))
  testlib.write(dir .. "/.aws/config", ([[
[profile base]
aws_access_key_id = %s
aws_secret_access_key = %s
[profile mid]
role_arn = arn:aws:iam::123456789012:role/leak2
source_profile = base
[profile chain]
role_arn = arn:aws:iam::123456789012:role/leak
source_profile = mid
[sso-session acme]
sso_start_url = https://acme.awsapps.com/start
sso_region = us-east-1
[profile dev]
sso_session = acme
sso_account_id = 123456789012
sso_role_name = Dev
[profile ops]
sso_session = acme
sso_account_id = 123456789012
sso_role_name = Ops
]]):format(key.access_key, key.secret_key))
  local agent_secret = "containerLEAKsecret0123456789abcdefghijk"
  local agent_token_value = "containerAGENTtokenLEAK0123456789"
  testlib.write(dir .. "/agent-token", agent_token_value)
  local agent = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function()
    return { status = 200, body = json.encode{ AccessKeyId = "ASIACONTAINERLEAK",
      SecretAccessKey = agent_secret, Token = "containerLEAKsessionToken0123456789abc",
      Expiration = "2099-01-01T00:00:00Z" } }
  end }
  testlib.write(dir .. "/child.lua", TEMP_CHILD)
  local r = testlib.run_fo({ dir .. "/child.lua", dir, tostring(agent.port) },
    { env = { FO_LOG = "trace", HOME = dir, AWS_ENDPOINT_URL = url, AWS_REGION = "us-east-1",
      AWS_EC2_METADATA_DISABLED = "true", AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false,
      AWS_SESSION_TOKEN = false, AWS_PROFILE = false, AWS_CONFIG_FILE = false,
      AWS_SHARED_CREDENTIALS_FILE = false, AWS_MAX_ATTEMPTS = "1" } })
  srv:close()
  agent:close()
  local refreshed = json.decode(testlib.read(cache))
  testlib.rmtree(dir)
  local out = r.stdout .. r.stderr
  lu.assertEquals(r.code, 1, out)
  -- every scenario ran, over the wire
  lu.assertStrContains(out, "aws call service=sts operation=AssumeRole ")
  lu.assertStrContains(out, "aws call service=sts operation=AssumeRoleWithWebIdentity ")
  lu.assertStrContains(out, "aws call service=sso_oidc operation=CreateToken ")
  lu.assertStrContains(out, "aws call service=sso operation=GetRoleCredentials ")
  lu.assertStrContains(out, "assume-role\tidentity\tarn:aws:sts::123456789012:assumed-role/leak/")
  lu.assertStrContains(out, "web-identity\tidentity\tarn:aws:sts::123456789012:assumed-role/leak/")
  lu.assertStrContains(out, "sso\tidentity\tarn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_")
  lu.assertStrContains(out, "container\ttrue\tASIACONTAINERLEAK")
  lu.assertStrContains(out, "web-identity-denied\tfalse")
  lu.assertStrContains(out, "sso-denied\tfalse")
  lu.assertNotEquals(refreshed.accessToken, sso.accessToken, "the SSO token was refreshed")
  local secrets = { web_identity_token = token, sso_access = sso.accessToken,
    sso_refresh = sso.refreshToken, sso_client_secret = sso.clientSecret,
    sso_new_access = refreshed.accessToken, sso_new_refresh = refreshed.refreshToken,
    agent_secret = agent_secret, agent_token = agent_token_value }
  local n = 0
  for id, k in pairs(sim.keys) do
    if k.session_token then
      n = n + 1
      secrets["issued_secret_" .. id] = k.secret_key
      secrets["issued_token_" .. id] = k.session_token
    end
  end
  lu.assertTrue(n >= 4, "the sim issued the role, web identity and SSO keys")
  for name, secret in pairs(secrets) do
    lu.assertNotStrContains(out, secret, false, name .. " leaked")
    lu.assertNotStrContains(out, secret:sub(1, 20), false, name .. " (prefix) leaked")
    lu.assertNotStrContains(out, secret:sub(-20), false, name .. " (suffix) leaked")
  end
end

os.exit(lu.LuaUnit.run())
