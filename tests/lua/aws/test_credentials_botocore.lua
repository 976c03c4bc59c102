-- fo and botocore (1.43, the SDK the chain follows), given the same config files, the same
-- SSO token cache and the same environment, end up as the same identity on a served
-- simulator: the assume-role, SSO (cache file names, token refresh written back by one and
-- read by the other) and web identity sources agree, and the simulator's STS, portal and
-- OIDC answers parse in botocore as in fo.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local credentials = require "fo.aws.credentials"
local json = require "fo.json"

local ACCOUNT = "123456789012"

-- Prints {profile or "-": caller ARN or "error: ..."} for each profile, as botocore
-- resolves it.
local BOTOCORE = [[
import json, sys
import botocore.session
out = {}
for prof in sys.argv[1:]:
    try:
        s = botocore.session.Session(profile=None if prof == "-" else prof)
        c = s.create_client("sts", region_name="us-east-1")
        out[prof] = c.get_caller_identity()["Arn"]
    except Exception as e:
        out[prof] = "error: %s" % e
print(json.dumps(out))
]]

local function b64url(s)
  return (fo.crypto.base64_encode(s):gsub("+", "-"):gsub("/", "_"):gsub("=+$", ""))
end

function test_fo_and_botocore_resolve_the_same_identities()
  local dir = testlib.tmpdir()
  local srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local url = ("http://127.0.0.1:%d"):format(srv.port)
  local key = require("fo.sim").DEFAULT_KEY
  local provider = sim:invoke("iam", "us-east-1", "CreateOpenIDConnectProvider",
    { Url = "https://oidc.ci.test", ClientIDList = { "sts.amazonaws.com" } }).OpenIDConnectProviderArn
  local role = sim:invoke("iam", "us-east-1", "CreateRole", { RoleName = "deployer",
    AssumeRolePolicyDocument = json.encode{ Version = "2012-10-17", Statement = {
      { Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = ACCOUNT } },
      { Effect = "Allow", Action = "sts:AssumeRoleWithWebIdentity",
        Principal = { Federated = provider } } } } }).Role.Arn
  testlib.write(dir .. "/token", b64url(json.encode{ alg = "RS256" }) .. "." .. b64url(json.encode{
    iss = "https://oidc.ci.test", aud = "sts.amazonaws.com", sub = "ci", exp = os.time() + 600 })
    .. ".c2ln")
  fo.fs.mkdir_p(dir .. "/.aws/sso/cache", tonumber("700", 8))
  -- a token 5 minutes from expiry: whichever reads it first refreshes it and writes it back
  local doc = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Dev" } },
    user = "alice", seconds = 300, start_url = "https://acme.awsapps.com/start", region = "us-east-1" }
  local cache = dir .. "/.aws/sso/cache/" .. fo.crypto.hex(fo.crypto.sha1("acme")) .. ".json"
  testlib.write(cache, json.encode(doc))
  testlib.write(dir .. "/.aws/credentials", ("[base]\naws_access_key_id = %s\n"
    .. "aws_secret_access_key = %s\n"):format(key.access_key, key.secret_key))
  testlib.write(dir .. "/.aws/config", ([[
[profile deploy]
role_arn = %s
source_profile = base
role_session_name = same
[sso-session acme]
sso_start_url = https://acme.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
[profile dev]
sso_session = acme
sso_account_id = %s
sso_role_name = Dev
[profile chained]
role_arn = %s
source_profile = dev
role_session_name = via-sso
]]):format(role, ACCOUNT, role))
  local env = { HOME = dir, AWS_ENDPOINT_URL = url, AWS_REGION = "us-east-1",
    AWS_EC2_METADATA_DISABLED = "true", AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false,
    AWS_SESSION_TOKEN = false, AWS_PROFILE = false, AWS_CONFIG_FILE = false,
    AWS_SHARED_CREDENTIALS_FILE = false, AWS_CA_BUNDLE = false,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = false, AWS_CONTAINER_CREDENTIALS_FULL_URI = false,
    AWS_WEB_IDENTITY_TOKEN_FILE = false, AWS_ROLE_ARN = false }
  testlib.write(dir .. "/resolve.py", BOTOCORE)
  local function botocore(profiles, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    local argv = { "python3", dir .. "/resolve.py" }
    for _, p in ipairs(profiles) do argv[#argv + 1] = p end
    local r = fo.process.run{ argv = argv, env = e, timeout = 120 }
    lu.assertEquals(r.code, 0, r.stderr)
    return json.decode(r.stdout)
  end
  local function fo_arn(profile, extra)
    local t = {}
    for k, v in pairs(env) do if v then t[k] = v end end
    for k, v in pairs(extra or {}) do t[k] = v end
    return require("fo.aws").sts{ region = "us-east-1", profile = profile,
      env = function(k) return t[k] end }:GetCallerIdentity{}.Arn
  end

  -- botocore first: it refreshes the SSO token and writes the cache
  local b = botocore({ "deploy", "dev", "chained" })
  lu.assertEquals(b.deploy, "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deployer/same")
  lu.assertStrMatches(b.dev, "arn:aws:sts::" .. ACCOUNT .. ":assumed%-role/AWSReservedSSO_Dev_%x+/alice")
  lu.assertEquals(b.chained, "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deployer/via-sso")
  local refreshed = json.decode(testlib.read(cache))
  lu.assertNotEquals(refreshed.accessToken, doc.accessToken, "botocore refreshed the token")
  -- fo reads what botocore wrote, and gets the same identities
  lu.assertEquals(fo_arn("deploy"), b.deploy)
  lu.assertStrMatches(fo_arn("dev"), "arn:aws:sts::" .. ACCOUNT .. ":assumed%-role/AWSReservedSSO_Dev_%x+/alice")
  lu.assertEquals(fo_arn("chained"), b.chained)
  lu.assertEquals(sim:count{ service = "sso-oidc", operation = "CreateToken" }, 1)

  -- now fo refreshes (the token again near expiry) and botocore reads fo's cache file
  local again = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Dev" } },
    user = "bob", seconds = 300, start_url = "https://acme.awsapps.com/start", region = "us-east-1" }
  testlib.write(cache, json.encode(again))
  lu.assertStrMatches(fo_arn("dev"), ".*/bob")
  lu.assertEquals(sim:count{ service = "sso-oidc", operation = "CreateToken" }, 2)
  lu.assertStrMatches(botocore({ "dev" }).dev, ".*/bob")
  lu.assertEquals(sim:count{ service = "sso-oidc", operation = "CreateToken" }, 2,
    "fo's refreshed token is good for botocore as written")

  -- web identity from the environment
  local wi = { AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/token", AWS_ROLE_ARN = role,
    AWS_ROLE_SESSION_NAME = "gha" }
  lu.assertEquals(botocore({ "-" }, wi)["-"], "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deployer/gha")
  lu.assertEquals(fo_arn(nil, wi), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deployer/gha")
  -- both refuse an expired token they cannot refresh (fo says how to log in again)
  local stale = json.decode(testlib.read(cache))
  stale.expiresAt, stale.refreshToken = "2020-01-01T00:00:00Z", nil
  testlib.write(cache, json.encode(stale))
  lu.assertStrContains(botocore({ "dev" }).dev, "Token has expired and refresh failed")
  local ok, err = pcall(credentials.resolve, { profile = "dev", env = function(k)
    return env[k] or nil end })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "run `aws sso login --profile dev`")
  srv:close()
  testlib.rmtree(dir)
end

-- The AWS CLI's assume-role cache (~/.aws/cli/cache, the pip awscli on botocore 1.43):
-- a role session fo assumed is reused by `aws`, and one `aws` assumed is reused by fo —
-- one AssumeRole (and one MFA code) per session for both.
function test_fo_and_the_aws_cli_share_the_assume_role_cache()
  local dir = testlib.tmpdir()
  local srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local key = require("fo.sim").DEFAULT_KEY
  for _, name in ipairs({ "first", "second" }) do
    sim:invoke("iam", "us-east-1", "CreateRole", { RoleName = name,
      AssumeRolePolicyDocument = json.encode{ Version = "2012-10-17", Statement = {
        { Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = ACCOUNT } } } } })
  end
  fo.fs.mkdir_p(dir .. "/.aws", tonumber("700", 8))
  testlib.write(dir .. "/.aws/credentials", ("[base]\naws_access_key_id = %s\n"
    .. "aws_secret_access_key = %s\n"):format(key.access_key, key.secret_key))
  testlib.write(dir .. "/.aws/config", ([[
[profile first]
role_arn = arn:aws:iam::%s:role/first
source_profile = base
duration_seconds = 3600
[profile second]
role_arn = arn:aws:iam::%s:role/second
source_profile = base
external_id = shared-7
]]):format(ACCOUNT, ACCOUNT))
  local env = { HOME = dir, AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port),
    AWS_REGION = "us-east-1", AWS_DEFAULT_REGION = "us-east-1", AWS_EC2_METADATA_DISABLED = "true",
    AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_SESSION_TOKEN = false,
    AWS_PROFILE = false, AWS_CONFIG_FILE = false, AWS_SHARED_CREDENTIALS_FILE = false,
    AWS_CA_BUNDLE = false, AWS_WEB_IDENTITY_TOKEN_FILE = false, AWS_PAGER = "",
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = false, AWS_CONTAINER_CREDENTIALS_FULL_URI = false }
  local function cli(profile)
    local r = fo.process.run{ argv = { "python3", "-m", "awscli", "sts", "get-caller-identity",
      "--profile", profile, "--output", "json" }, env = env, timeout = 120 }
    lu.assertEquals(r.code, 0, r.stderr)
    return json.decode(r.stdout).Arn
  end
  local function fo_arn(profile)
    return require("fo.aws").sts{ region = "us-east-1", profile = profile,
      env = function(k) return env[k] or nil end }:GetCallerIdentity{}.Arn
  end
  local function assumed() return sim:count{ service = "sts", operation = "AssumeRole" } end
  -- fo first: the CLI reuses fo's session
  local mine = fo_arn("first")
  lu.assertStrMatches(mine, ".*:assumed%-role/first/fo%-session%-%d+")
  lu.assertEquals(assumed(), 1)
  lu.assertEquals(cli("first"), mine)
  lu.assertEquals(assumed(), 1, "the CLI used fo's cached session")
  -- the CLI first: fo reuses the CLI's session
  local theirs = cli("second")
  lu.assertStrMatches(theirs, ".*:assumed%-role/second/botocore%-session%-%d+")
  lu.assertEquals(assumed(), 2)
  require("fo.aws.credentials.roles").clear_cache()
  lu.assertEquals(fo_arn("second"), theirs)
  lu.assertEquals(assumed(), 2, "fo used the CLI's cached session")
  -- the cache files are the user's alone
  local r = fo.process.run{ argv = { "sh", "-c", "stat -c %a " .. dir .. "/.aws/cli/cache/*.json" } }
  lu.assertStrMatches(r.stdout, "^600\n600\n$")
  srv:close()
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
