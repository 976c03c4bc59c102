-- The credential sources a team and CI use, each proven against a served simulator (real
-- HTTP on 127.0.0.1, AWS_ENDPOINT_URL pointing there) with the AWS CLI's own config files
-- in a temporary HOME: assume-role profiles (source_profile chains, cycles,
-- credential_source, external_id, MFA, duration_seconds, in-process cache), web identity
-- (env and profile, the token file re-read on refresh), IAM Identity Center (token cache,
-- refresh through OIDC CreateToken written back, the `aws sso login` messages), container
-- credentials (FULL_URI on loopback with a token file; RELATIVE_URI's address), and
-- temporary credentials expiring in the middle of a run.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local credentials = require "fo.aws.credentials"
local roles = require "fo.aws.credentials.roles"
local json = require "fo.json"

local ACCOUNT = "123456789012"
local KEY = require("fo.sim").DEFAULT_KEY

local dir, srv, sim, url

TestCredentialSources = {}

function TestCredentialSources.setUp()
  dir = testlib.tmpdir()
  fo.fs.mkdir_p(dir .. "/.aws/sso/cache", tonumber("700", 8))
  srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  url = ("http://127.0.0.1:%d"):format(srv.port)
  roles.clear_cache()
end

function TestCredentialSources.tearDown()
  srv:close()
  testlib.rmtree(dir)
end

-- The environment of a CI job or laptop: HOME with the CLI's files, the served sim as
-- every endpoint, no instance metadata.
local function env(extra)
  local t = { HOME = dir, AWS_ENDPOINT_URL = url, AWS_REGION = "us-east-1",
    AWS_EC2_METADATA_DISABLED = "true" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return function(k) return t[k] end
end

local function config(text) testlib.write(dir .. "/.aws/config", text) end
local function creds_file(text) testlib.write(dir .. "/.aws/credentials", text) end

local function static_profile(name)
  return ("[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n"):format(name,
    KEY.access_key, KEY.secret_key)
end

local function trust(statement)
  return json.encode({ Version = "2012-10-17", Statement = { statement } })
end

local function create_role(name, statement, max)
  return sim:invoke("iam", "us-east-1", "CreateRole", { RoleName = name,
    AssumeRolePolicyDocument = trust(statement), MaxSessionDuration = max }).Role.Arn
end

local function account_may_assume(conditions)
  return { Effect = "Allow", Action = "sts:AssumeRole",
    Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" }, Condition = conditions }
end

-- Who the credentials of `profile` are, asked of the served sim through fo's client.
local function whoami(profile, e)
  return require("fo.aws").sts{ region = "us-east-1", profile = profile, env = e or env() }
    :GetCallerIdentity{}.Arn
end

local function resolve_error(opts)
  local ok, err = pcall(credentials.resolve, opts)
  lu.assertFalse(ok, "expected the chain to fail")
  return tostring(err)
end

-- Assume-role profiles ----------------------------------------------------------------

function TestCredentialSources.test_source_profile_assumes_the_role()
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("base"))
  config(("[profile deploy]\nrole_arn = %s\nsource_profile = base\nrole_session_name = ci-42\n")
    :format(arn))
  local c = credentials.resolve{ profile = "deploy", env = env() }
  lu.assertStrMatches(c.access_key, "^ASIA%w+$")
  lu.assertNotNil(c.session_token)
  lu.assertTrue(c.expiration > os.time())
  lu.assertStrContains(c.source, "profile 'deploy'")
  lu.assertEquals(whoami("deploy"), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deploy/ci-42")
end

function TestCredentialSources.test_default_session_name_is_fo_session_and_cached_in_process()
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("base"))
  config(("[profile deploy]\nrole_arn = %s\nsource_profile = base\n"):format(arn))
  lu.assertStrMatches(whoami("deploy"), ".*:assumed%-role/deploy/fo%-session%-%d+$")
  -- another provider of the same role and source key reuses the assumed credentials
  local a = credentials.resolve{ profile = "deploy", env = env() }
  local b = credentials.resolve{ profile = "deploy", env = env() }
  lu.assertEquals(a.access_key, b.access_key)
  lu.assertEquals(sim:count{ service = "sts", operation = "AssumeRole" }, 1)
end

function TestCredentialSources.test_chain_of_source_profiles()
  local first = create_role("first", account_may_assume())
  -- the second role trusts only the first role
  local second = create_role("second", { Effect = "Allow", Action = "sts:AssumeRole",
    Principal = { AWS = first } })
  creds_file(static_profile("base"))
  config(("[profile a]\nrole_arn = %s\nsource_profile = base\n"
    .. "[profile b]\nrole_arn = %s\nsource_profile = a\nrole_session_name = chained\n")
    :format(first, second))
  lu.assertEquals(whoami("b"), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/second/chained")
  lu.assertEquals(sim:count{ service = "sts", operation = "AssumeRole" }, 2)
  -- the base key itself may not assume the second role
  config(("[profile c]\nrole_arn = %s\nsource_profile = base\n"):format(second))
  lu.assertStrContains(resolve_error{ profile = "c", env = env() }, "AccessDenied")
end

function TestCredentialSources.test_cycle_is_an_error_naming_the_profiles()
  config("[profile a]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = b\n"
    .. "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/y\nsource_profile = a\n")
  local err = resolve_error{ profile = "a", env = env() }
  lu.assertStrContains(err, "the source_profile settings form a cycle: a -> b -> a")
  lu.assertEquals(sim:count{ service = "sts" }, 0)
end

function TestCredentialSources.test_profile_naming_itself_uses_its_own_keys()
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("self"))
  config(("[profile self]\nrole_arn = %s\nsource_profile = self\nrole_session_name = me\n")
    :format(arn))
  lu.assertEquals(whoami("self"), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deploy/me")
end

function TestCredentialSources.test_source_profile_and_credential_source_together_is_an_error()
  config("[profile p]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = b\n"
    .. "credential_source = Environment\n")
  lu.assertStrContains(resolve_error{ profile = "p", env = env() },
    "profile 'p' has both source_profile and credential_source")
  config("[profile p]\nrole_arn = arn:aws:iam::123456789012:role/x\ncredential_source = Laptop\n")
  lu.assertStrContains(resolve_error{ profile = "p", env = env() },
    "credential_source 'Laptop' is not one of Environment, Ec2InstanceMetadata, EcsContainer")
  config("[profile p]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = nope\n")
  lu.assertStrContains(resolve_error{ profile = "p", env = env() },
    "its source_profile 'nope' does not exist")
end

function TestCredentialSources.test_credential_source_environment()
  local arn = create_role("deploy", account_may_assume())
  config(("[profile p]\nrole_arn = %s\ncredential_source = Environment\nrole_session_name = env\n")
    :format(arn))
  local e = env{ AWS_ACCESS_KEY_ID = KEY.access_key, AWS_SECRET_ACCESS_KEY = KEY.secret_key }
  -- a profile given as an option skips the environment source (botocore), so the
  -- environment's keys are used to assume the role
  lu.assertEquals(whoami("p", e), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deploy/env")
  -- selected by AWS_PROFILE, the environment's keys come first, as in botocore
  local c = credentials.resolve{ env = env{ AWS_PROFILE = "p", AWS_ACCESS_KEY_ID = KEY.access_key,
    AWS_SECRET_ACCESS_KEY = KEY.secret_key } }
  lu.assertEquals(c.source, "environment")
  lu.assertStrContains(resolve_error{ profile = "p", env = env() },
    "profile 'p': credential_source Environment gave no credentials (AWS_ACCESS_KEY_ID not set)")
end

function TestCredentialSources.test_external_id_condition()
  local arn = create_role("vendor", account_may_assume{
    StringEquals = { ["sts:ExternalId"] = "ext-7781" } })
  creds_file(static_profile("base"))
  config(("[profile v]\nrole_arn = %s\nsource_profile = base\n"):format(arn))
  local err = resolve_error{ profile = "v", env = env() }
  lu.assertStrContains(err, "profile 'v': AssumeRole of " .. arn .. " failed")
  lu.assertStrContains(err, "AccessDenied")
  config(("[profile v]\nrole_arn = %s\nsource_profile = base\nexternal_id = ext-7781\n"):format(arn))
  lu.assertStrMatches(credentials.resolve{ profile = "v", env = env() }.access_key, "^ASIA%w+$")
end

function TestCredentialSources.test_mfa_code_asked_and_required()
  local arn = create_role("admin", account_may_assume{
    Bool = { ["aws:MultiFactorAuthPresent"] = "true" } })
  creds_file(static_profile("base"))
  config(("[profile adm]\nrole_arn = %s\nsource_profile = base\n"
    .. "mfa_serial = arn:aws:iam::123456789012:mfa/alice\n"
    .. "[profile nomfa]\nrole_arn = %s\nsource_profile = base\n"):format(arn, arn))
  lu.assertStrContains(resolve_error{ profile = "nomfa", env = env() }, "AccessDenied")
  -- no terminal (ctest's stdin): one clear message, no call made
  local before = sim:count{ service = "sts", operation = "AssumeRole" }
  local err = resolve_error{ profile = "adm", env = env() }
  lu.assertStrContains(err, "profile 'adm' needs an MFA code (mfa_serial "
    .. "arn:aws:iam::123456789012:mfa/alice) and stdin is not a terminal")
  lu.assertEquals(sim:count{ service = "sts", operation = "AssumeRole" }, before)
  local asked = {}
  local c = credentials.resolve{ profile = "adm", env = env(), mfa_prompt = function(serial, p)
    asked[#asked + 1] = serial .. " " .. p
    return "123456"
  end }
  lu.assertStrMatches(c.access_key, "^ASIA%w+$")
  lu.assertEquals(asked, { "arn:aws:iam::123456789012:mfa/alice adm" })
  -- cached: a second resolve does not ask again
  credentials.resolve{ profile = "adm", env = env(), mfa_prompt = function() error("asked twice") end }
end

function TestCredentialSources.test_duration_seconds_bounds()
  local arn = create_role("short", account_may_assume(), 3600)
  creds_file(static_profile("base"))
  config(("[profile d]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 600\n"):format(arn))
  lu.assertStrContains(resolve_error{ profile = "d", env = env() },
    "profile 'd': duration_seconds is '600'; it must be a whole number of seconds from 900 to 43200")
  -- within fo's bounds, above the role's MaxSessionDuration: STS refuses
  config(("[profile d]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 7200\n"):format(arn))
  lu.assertStrContains(resolve_error{ profile = "d", env = env() },
    "exceeds the MaxSessionDuration")
  config(("[profile d]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 900\n"):format(arn))
  local c = credentials.resolve{ profile = "d", env = env() }
  lu.assertAlmostEquals(c.expiration - os.time(), 900, 5)
end

-- Web identity ------------------------------------------------------------------------

local ISSUER = "https://token.actions.githubusercontent.com"

local function b64url(s)
  return (require("fo.crypto").base64_encode(s):gsub("+", "-"):gsub("/", "_"):gsub("=+$", ""))
end

local function jwt(claims)
  return b64url(json.encode({ alg = "RS256", typ = "JWT", kid = "k1" })) .. "."
    .. b64url(json.encode(claims)) .. "." .. b64url("not-checked-signature")
end

local function github_role()
  local provider = sim:invoke("iam", "us-east-1", "CreateOpenIDConnectProvider", { Url = ISSUER,
    ClientIDList = { "sts.amazonaws.com" } }).OpenIDConnectProviderArn
  return create_role("gha", { Effect = "Allow", Action = "sts:AssumeRoleWithWebIdentity",
    Principal = { Federated = provider }, Condition = {
      StringEquals = { ["token.actions.githubusercontent.com:aud"] = "sts.amazonaws.com" },
      StringLike = { ["token.actions.githubusercontent.com:sub"] = "repo:acme/trading:*" } } })
end

local function write_token(sub, exp)
  local token = jwt{ iss = ISSUER, aud = "sts.amazonaws.com", sub = sub,
    exp = exp or (os.time() + 600), iat = os.time() }
  testlib.write(dir .. "/token", token)
  return token
end

function TestCredentialSources.test_web_identity_from_environment_rereads_the_token()
  local arn = github_role()
  write_token("repo:acme/trading:ref:refs/heads/main")
  local e = env{ AWS_WEB_IDENTITY_TOKEN_FILE = dir .. "/token", AWS_ROLE_ARN = arn,
    AWS_ROLE_SESSION_NAME = "gha-run-1" }
  lu.assertEquals(whoami(nil, e), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/gha/gha-run-1")
  -- the token file is read on every refresh: a token for another repository is refused
  write_token("repo:evil/fork:ref:refs/heads/main")
  local err = resolve_error{ env = e }
  lu.assertStrContains(err, "web identity: AssumeRoleWithWebIdentity of " .. arn .. " failed")
  lu.assertStrContains(err, "AccessDenied")
  -- an expired token: STS's ExpiredTokenException
  write_token("repo:acme/trading:ref:refs/heads/main", os.time() - 60)
  lu.assertStrContains(resolve_error{ env = e }, "ExpiredTokenException")
end

function TestCredentialSources.test_web_identity_from_profile_and_checks()
  local arn = github_role()
  write_token("repo:acme/trading:pull_request")
  config(("[profile ci]\nweb_identity_token_file = %s/token\nrole_arn = %s\n"):format(dir, arn))
  lu.assertStrMatches(whoami("ci"), "^arn:aws:sts::" .. ACCOUNT .. ":assumed%-role/gha/fo%-session%-%d+$")
  config(("[profile ci]\nweb_identity_token_file = %s/token\n"):format(dir))
  lu.assertStrContains(resolve_error{ profile = "ci", env = env() },
    "web_identity_token_file of profile 'ci' is set but no role ARN is")
  -- an audience the provider does not list, a token that is not a JWT
  testlib.write(dir .. "/token", jwt{ iss = ISSUER, aud = "other", sub = "x", exp = os.time() + 60 })
  config(("[profile ci]\nweb_identity_token_file = %s/token\nrole_arn = %s\n"):format(dir, arn))
  lu.assertStrContains(resolve_error{ profile = "ci", env = env() }, "Incorrect token audience")
  testlib.write(dir .. "/token", "not-a-jwt")
  lu.assertStrContains(resolve_error{ profile = "ci", env = env() }, "InvalidIdentityToken")
end

-- IAM Identity Center ------------------------------------------------------------------

local START = "https://acme.awsapps.com/start"

local function sso_config(extra)
  config("[sso-session acme]\nsso_start_url = " .. START .. "\nsso_region = us-east-1\n"
    .. "sso_registration_scopes = sso:account:access\n"
    .. "[profile dev]\nsso_session = acme\nsso_account_id = " .. ACCOUNT
    .. "\nsso_role_name = Developer\nregion = us-east-1\n"
    .. "[profile legacy]\nsso_start_url = " .. START .. "\nsso_region = us-east-1\n"
    .. "sso_account_id = " .. ACCOUNT .. "\nsso_role_name = Developer\n" .. (extra or ""))
end

local function cache_file(key)
  local c = require "fo.crypto"
  return ("%s/.aws/sso/cache/%s.json"):format(dir, c.hex(c.sha1(key)))
end

function TestCredentialSources.test_sso_session_profile_reads_the_cli_cache()
  sso_config()
  local doc = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Developer" } },
    user = "alice", start_url = START, region = "us-east-1" }
  -- the CLI names the file after the sha1 of the session name
  lu.assertStrContains(cache_file("acme"), "/.aws/sso/cache/")
  testlib.write(cache_file("acme"), json.encode(doc))
  lu.assertStrMatches(whoami("dev"),
    "^arn:aws:sts::" .. ACCOUNT .. ":assumed%-role/AWSReservedSSO_Developer_%x+/alice$")
  local c = credentials.resolve{ profile = "dev", env = env() }
  lu.assertAlmostEquals(c.expiration - os.time(), 3600, 5)
  -- a role the user is not assigned: the portal's ForbiddenException
  sso_config("[profile ops]\nsso_session = acme\nsso_account_id = " .. ACCOUNT
    .. "\nsso_role_name = Admin\n")
  lu.assertStrContains(resolve_error{ profile = "ops", env = env() }, "ForbiddenException")
end

function TestCredentialSources.test_sso_token_about_to_expire_is_refreshed_and_written_back()
  sso_config()
  local doc = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Developer" } },
    seconds = 300, start_url = START, region = "us-east-1" }
  testlib.write(cache_file("acme"), json.encode(doc))
  lu.assertStrMatches(credentials.resolve{ profile = "dev", env = env() }.access_key, "^ASIA%w+$")
  local after = json.decode(testlib.read(cache_file("acme")))
  lu.assertNotEquals(after.accessToken, doc.accessToken)
  lu.assertNotEquals(after.refreshToken, doc.refreshToken)
  lu.assertEquals({ after.clientId, after.clientSecret, after.startUrl },
    { doc.clientId, doc.clientSecret, START })
  lu.assertTrue(credentials.epoch_of(after.expiresAt) > os.time() + 3600)
  lu.assertEquals(sim:count{ service = "sso-oidc", operation = "CreateToken" }, 1)
  -- the cache stays private to the user
  local r = fo.process.run{ argv = { "stat", "-c", "%a", cache_file("acme") } }
  lu.assertEquals(r.stdout, "600\n")
end

function TestCredentialSources.test_sso_without_valid_token_says_to_log_in()
  sso_config()
  lu.assertStrContains(resolve_error{ profile = "dev", env = env() },
    "run `aws sso login --profile dev`")
  -- legacy profiles (no sso_session) are never refreshed: an expired token means log in
  local doc = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Developer" } } }
  doc.expiresAt = "2020-01-01T00:00:00Z"
  testlib.write(cache_file(START), json.encode(doc))
  lu.assertStrContains(resolve_error{ profile = "legacy", env = env() },
    "profile 'legacy': the IAM Identity Center (SSO) session has expired; run `aws sso login "
    .. "--profile legacy`")
  -- a token the portal does not know
  doc.expiresAt = "2099-01-01T00:00:00Z"
  doc.accessToken = "unknownAccessTokenValue"
  testlib.write(cache_file(START), json.encode(doc))
  lu.assertStrContains(resolve_error{ profile = "legacy", env = env() },
    "token was refused; run `aws sso login --profile legacy`")
  sso_config("[profile broken]\nsso_session = nope\nsso_account_id = 1\nsso_role_name = x\n")
  lu.assertStrContains(resolve_error{ profile = "broken", env = env() },
    "there is no [sso-session nope] section")
end

-- Container credentials -----------------------------------------------------------------

function TestCredentialSources.test_container_full_uri_with_token_file()
  -- the container agent: a tiny server on loopback handing out the sim's key when the
  -- Authorization header carries the token
  local seen
  local agent = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    seen = req.headers.authorization
    if seen ~= "agent-token-123" then return { status = 401, body = "no" } end
    return { status = 200, body = json.encode{ AccessKeyId = KEY.access_key,
      SecretAccessKey = KEY.secret_key, Token = nil, Expiration = "2099-01-01T00:00:00Z" } }
  end }
  testlib.write(dir .. "/agent-token", "agent-token-123")
  local e = env{ AWS_CONTAINER_CREDENTIALS_FULL_URI = ("http://127.0.0.1:%d/creds"):format(agent.port),
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = dir .. "/agent-token" }
  lu.assertEquals(whoami(nil, e), "arn:aws:iam::" .. ACCOUNT .. ":user/fo-sim")
  lu.assertEquals(seen, "agent-token-123")
  -- credential_source = EcsContainer uses the same source
  local arn = create_role("task", account_may_assume())
  config(("[profile t]\nrole_arn = %s\ncredential_source = EcsContainer\nrole_session_name = task\n")
    :format(arn))
  lu.assertEquals(whoami("t", e), "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/task/task")
  agent:close()
end

function TestCredentialSources.test_container_hosts_allowed_as_botocore()
  local container = require "fo.aws.credentials.container"
  for _, ok in ipairs({ "http://127.0.0.1:80/x", "http://127.1.2.3/x", "http://[::1]:8/x",
      "http://169.254.170.2/x", "http://169.254.170.23/v1/credentials",
      "http://[fd00:ec2::23]/x", "http://localhost:9/x", "https://creds.example.com/x" }) do
    lu.assertNil(container.check_url(ok), ok)
  end
  lu.assertStrContains(container.check_url("http://10.0.0.1/x"),
    "host '10.0.0.1' is neither a loopback address nor one of 169.254.170.2")
  local err = resolve_error{ env = env{ AWS_CONTAINER_CREDENTIALS_FULL_URI = "http://10.0.0.1/x" } }
  lu.assertStrContains(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI is 'http://10.0.0.1/x'")
  -- RELATIVE_URI goes to the ECS agent's address (answered here by a fake transport)
  local asked
  local c = credentials.resolve{ env = env{ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/creds/abc",
    AWS_CONTAINER_AUTHORIZATION_TOKEN = "tok-plain" }, http = { request = function(r)
      asked = r
      return { status = 200, headers = {}, body = json.encode{ AccessKeyId = "ASIACONTAINER",
        SecretAccessKey = "containerSecretValue", Token = "containerSessionToken",
        Expiration = "2099-01-01T00:00:00Z" } }
    end } }
  lu.assertEquals(asked.url, "http://169.254.170.2/v2/creds/abc")
  lu.assertEquals(asked.headers.Authorization, "tok-plain")
  lu.assertEquals(c.access_key, "ASIACONTAINER")
  -- a token that would split the header is refused before anything is sent
  asked = nil
  err = resolve_error{ env = env{ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = "/v2/creds/abc",
    AWS_CONTAINER_AUTHORIZATION_TOKEN = "tok\r\nX-Evil: 1" }, http = { request = function(r)
      asked = r
      return { status = 500, headers = {}, body = "" }
    end } }
  lu.assertStrContains(err, "the container authorization token contains a line break")
  lu.assertNil(asked)
end

-- Expiry during a long run --------------------------------------------------------------

function TestCredentialSources.test_credentials_expiring_mid_run_are_renewed_and_the_run_continues()
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("base"))
  config(("[profile deploy]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 900\n")
    :format(arn))
  local e = env()
  local iam = require("fo.aws").iam{ region = "us-east-1", profile = "deploy", env = e }
  local created = {}
  for i = 1, 6 do
    -- each step of the run outlives the 15-minute session on the sim's clock
    sim:advance(600)
    created[i] = iam:CreateInstanceProfile{ InstanceProfileName = "step" .. i }
      .InstanceProfile.InstanceProfileName
  end
  lu.assertEquals(created, { "step1", "step2", "step3", "step4", "step5", "step6" })
  -- the expired session was answered ExpiredToken and renewed with AssumeRole each time
  lu.assertTrue(sim:count{ service = "iam", code = "ExpiredToken" } >= 2)
  lu.assertTrue(sim:count{ service = "sts", operation = "AssumeRole" } >= 3)
end

function TestCredentialSources.test_refresh_before_expiry_for_temporary_sources()
  -- the provider renews assumed credentials REFRESH_BEFORE seconds before they expire,
  -- without waiting for an ExpiredToken
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("base"))
  config(("[profile deploy]\nrole_arn = %s\nsource_profile = base\nduration_seconds = 900\n")
    :format(arn))
  local now = os.time()
  local clock = function() return now end
  local p = credentials.provider{ profile = "deploy", env = env(), clock = clock }
  local first = p:get()
  lu.assertEquals(p:get().access_key, first.access_key)
  now = first.expiration - credentials.REFRESH_BEFORE + 1
  local second = p:get()
  lu.assertNotEquals(second.access_key, first.access_key)
  lu.assertEquals(sim:count{ service = "sts", operation = "AssumeRole" }, 2)
end

-- AWS_CA_BUNDLE / ca_bundle ----------------------------------------------------------------

function TestCredentialSources.test_ca_bundle_is_trusted_by_every_https_call()
  -- the sim served over TLS with a self-signed certificate for 127.0.0.1
  local r = fo.process.run{ argv = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
    "-keyout", dir .. "/key.pem", "-out", dir .. "/cert.pem", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1" } }
  lu.assertEquals(r.code, 0, r.stderr)
  local tls = fo.httpd.listen{ host = "127.0.0.1", port = 0, tls_cert = testlib.read(dir .. "/cert.pem"),
    tls_key = testlib.read(dir .. "/key.pem"), handler = function(req) return (sim:handle(req)) end }
  local https = ("https://127.0.0.1:%d"):format(tls.port)
  local arn = create_role("deploy", account_may_assume())
  creds_file(static_profile("base"))
  config(("[profile deploy]\nrole_arn = %s\nsource_profile = base\nrole_session_name = tls\n"
    .. "[profile bundled]\nrole_arn = %s\nsource_profile = base\nrole_session_name = tls\n"
    .. "ca_bundle = %s/cert.pem\n"):format(arn, arn, dir))
  -- not in the system store: the chain's own AssumeRole is refused by TLS verification
  local err = resolve_error{ profile = "deploy", env = env{ AWS_ENDPOINT_URL = https } }
  lu.assertStrContains(err, "AssumeRole of " .. arn .. " failed")
  lu.assertStrContains(err, "TransportTls")
  -- trusted through AWS_CA_BUNDLE, then through the profile's ca_bundle
  local expected = "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/deploy/tls"
  lu.assertEquals(whoami("deploy", env{ AWS_ENDPOINT_URL = https,
    AWS_CA_BUNDLE = dir .. "/cert.pem" }), expected)
  roles.clear_cache()
  lu.assertEquals(whoami("bundled", env{ AWS_ENDPOINT_URL = https }), expected)
  tls:close()
end

-- The MFA prompt on a real terminal: a child fo-run under a pseudo-terminal asks for the
-- code, reads it without echoing it (as botocore's getpass), and the role is assumed with it.
function TestCredentialSources.test_mfa_code_is_asked_on_the_terminal()
  local arn = create_role("admin", account_may_assume{
    Bool = { ["aws:MultiFactorAuthPresent"] = "true" } })
  creds_file(static_profile("base"))
  config(("[profile adm]\nrole_arn = %s\nsource_profile = base\nrole_session_name = alice\n"
    .. "mfa_serial = arn:aws:iam::123456789012:mfa/alice\n"):format(arn))
  testlib.write(dir .. "/child.lua", 'print("identity " .. fo.aws.sts{ region = "us-east-1" }'
    .. ':GetCallerIdentity{}.Arn)')
  local spec = { argv = { testlib.fo_run, dir .. "/child.lua" }, env = { HOME = dir,
    AWS_PROFILE = "adm", AWS_ENDPOINT_URL = url, AWS_REGION = "us-east-1",
    AWS_EC2_METADATA_DISABLED = "true", AWS_ACCESS_KEY_ID = "", AWS_SECRET_ACCESS_KEY = "",
    AWS_CONFIG_FILE = dir .. "/.aws/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/.aws/credentials" },
    steps = { { expect = "Enter MFA code for arn:aws:iam::123456789012:mfa/alice: ", timeout = 30 },
      { send = "987650\r" },
      { expect = "identity arn:aws:sts::123456789012:assumed-role/admin/alice", timeout = 30 },
      { exit = true, timeout = 30 } } }
  testlib.write(dir .. "/pty.json", json.encode(spec))
  local r = fo.process.run{ argv = { "/usr/bin/python3",
    testlib.tests_dir .. "/lua/support/pty_session.py", dir .. "/pty.json" }, timeout = 90 }
  lu.assertEquals(r.code, 0, r.stderr)
  local report = require("cjson").decode(r.stdout)
  lu.assertTrue(report.ok, report.screen)
  lu.assertEquals(report.code, 0, report.screen)
  lu.assertNotStrContains(report.screen, "987650")
  lu.assertEquals(sim:count{ service = "sts", operation = "AssumeRole", status = 200 }, 1)
end

os.exit(lu.LuaUnit.run(table.unpack(arg)))
