-- The simulator's STS through fo's sts client over the in-process wire: temporary
-- credentials from GetSessionToken, AssumeRole (trust policy with its conditions,
-- MaxSessionDuration, role chaining) and AssumeRoleWithWebIdentity (unsigned, OIDC
-- providers), usable at once (with their session token only) until they expire on the
-- sim's clock, and GetCallerIdentity for them; the simulated IAM Identity Center.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws

local ACCOUNT = "123456789012"

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function trust(principal)
  return ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":%s,'
    .. '"Action":"sts:AssumeRole"}]}'):format(principal)
end

local function setup()
  local sim = simlib.new{ seed = 21 }
  return sim, sim:client("sts", { region = "eu-central-1", max_attempts = 1 }),
    sim:client("iam", { max_attempts = 1 })
end

local function as(sim, creds, service)
  return sim:client(service or "sts", { region = "eu-central-1", max_attempts = 1,
    access_key = creds.AccessKeyId, secret_key = creds.SecretAccessKey,
    session_token = creds.SessionToken })
end

TestSts = {}

function TestSts.test_get_session_token()
  local sim, sts = setup()
  local c = sts:GetSessionToken{ DurationSeconds = 900 }.Credentials
  lu.assertStrMatches(c.AccessKeyId, "ASIA[A-Z0-9]+")
  lu.assertTrue(#c.SecretAccessKey == 40)
  lu.assertTrue(#c.SessionToken > 100)
  lu.assertNotNil(c.Expiration)
  local me = sts:GetCallerIdentity{}
  lu.assertEquals(as(sim, c):GetCallerIdentity{}.Arn, me.Arn)
  -- the token is part of the key: without it the key is unknown
  local bare = sim:client("sts", { region = "eu-central-1", max_attempts = 1,
    access_key = c.AccessKeyId, secret_key = c.SecretAccessKey })
  lu.assertEquals(err_of(bare.GetCallerIdentity, bare, {}).code, "InvalidClientTokenId")
  -- session credentials cannot get another session token
  local e = err_of(as(sim, c).GetSessionToken, as(sim, c), {})
  lu.assertEquals(e.code, "AccessDenied")
  lu.assertEquals(e.message, "Cannot call GetSessionToken with session credentials")
end

function TestSts.test_assume_role()
  local sim, sts, iam = setup()
  local role = iam:CreateRole{ RoleName = "ops", MaxSessionDuration = 7200,
    AssumeRolePolicyDocument = trust(('{"AWS":"arn:aws:iam::%s:root"}'):format(ACCOUNT)) }.Role
  iam:CreateRole{ RoleName = "ec2-only",
    AssumeRolePolicyDocument = trust('{"Service":"ec2.amazonaws.com"}') }
  local out = sts:AssumeRole{ RoleArn = role.Arn, RoleSessionName = "alice", DurationSeconds = 7200 }
  lu.assertEquals(out.AssumedRoleUser.Arn, ("arn:aws:sts::%s:assumed-role/ops/alice"):format(ACCOUNT))
  lu.assertEquals(out.AssumedRoleUser.AssumedRoleId, role.RoleId .. ":alice")
  local who = as(sim, out.Credentials):GetCallerIdentity{}
  lu.assertEquals(who.Arn, out.AssumedRoleUser.Arn)
  lu.assertEquals(who.UserId, role.RoleId .. ":alice")
  lu.assertEquals(who.Account, ACCOUNT)
  -- the role's trust policy decides; a role that does not exist is the same AccessDenied
  local e = err_of(sts.AssumeRole, sts, { RoleArn = ("arn:aws:iam::%s:role/ec2-only"):format(ACCOUNT),
    RoleSessionName = "alice" })
  lu.assertEquals(e.code, "AccessDenied")
  lu.assertStrContains(e.message, "is not authorized to perform: sts:AssumeRole on resource: "
    .. "arn:aws:iam::123456789012:role/ec2-only")
  lu.assertEquals(err_of(sts.AssumeRole, sts, { RoleArn = ("arn:aws:iam::%s:role/nope"):format(ACCOUNT),
    RoleSessionName = "alice" }).code, "AccessDenied")
  e = err_of(sts.AssumeRole, sts, { RoleArn = role.Arn, RoleSessionName = "alice", DurationSeconds = 7201 })
  lu.assertEquals(e.code, "ValidationError")
  lu.assertStrContains(e.message, "exceeds the MaxSessionDuration")
end

local function policy(statement)
  return require("fo.json").encode({ Version = "2012-10-17", Statement = { statement } })
end

function TestSts.test_temporary_keys_expire_on_the_sims_clock_with_each_protocols_code()
  local sim, sts = setup()
  local c = sts:GetSessionToken{ DurationSeconds = 900 }.Credentials
  lu.assertEquals(as(sim, c):GetCallerIdentity{}.Account, ACCOUNT)
  sim:advance(901)
  local e = err_of(as(sim, c).GetCallerIdentity, as(sim, c), {})
  lu.assertEquals({ e.code, e.status, e.message }, { "ExpiredToken", 403,
    "The security token included in the request is expired" })
  lu.assertEquals(err_of(as(sim, c, "dynamodb").ListTables, as(sim, c, "dynamodb"), {}).code,
    "ExpiredTokenException")
  lu.assertEquals(err_of(as(sim, c, "ec2").DescribeVpcs, as(sim, c, "ec2"), {}).code,
    "RequestExpired")
  -- a key that was never issued is still unknown, not expired
  local forged = { AccessKeyId = "ASIAFORGED0000000000", SecretAccessKey = c.SecretAccessKey,
    SessionToken = c.SessionToken }
  lu.assertEquals(err_of(as(sim, forged).GetCallerIdentity, as(sim, forged), {}).code,
    "InvalidClientTokenId")
end

function TestSts.test_trust_conditions_external_id_and_mfa()
  local sim, sts, iam = setup()
  local root = "arn:aws:iam::" .. ACCOUNT .. ":root"
  local vendor = iam:CreateRole{ RoleName = "vendor", AssumeRolePolicyDocument = policy{
    Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = root },
    Condition = { StringEquals = { ["sts:ExternalId"] = "x-1" } } } }.Role.Arn
  lu.assertEquals(err_of(sts.AssumeRole, sts, { RoleArn = vendor, RoleSessionName = "s1" }).code,
    "AccessDenied")
  lu.assertEquals(err_of(sts.AssumeRole, sts, { RoleArn = vendor, RoleSessionName = "s1",
    ExternalId = "x-2" }).code, "AccessDenied")
  lu.assertNotNil(sts:AssumeRole{ RoleArn = vendor, RoleSessionName = "s1", ExternalId = "x-1" }.Credentials)
  local admin = iam:CreateRole{ RoleName = "admin", AssumeRolePolicyDocument = policy{
    Effect = "Allow", Action = "sts:AssumeRole", Principal = { AWS = root },
    Condition = { Bool = { ["aws:MultiFactorAuthPresent"] = "true" } } } }.Role.Arn
  lu.assertEquals(err_of(sts.AssumeRole, sts, { RoleArn = admin, RoleSessionName = "s1" }).code,
    "AccessDenied")
  local e = err_of(sts.AssumeRole, sts, { RoleArn = admin, RoleSessionName = "s1",
    SerialNumber = "arn:aws:iam::123456789012:mfa/alice" })
  lu.assertStrContains(e.message, "MultiFactorAuthentication failed")
  local out = sts:AssumeRole{ RoleArn = admin, RoleSessionName = "s1",
    SerialNumber = "arn:aws:iam::123456789012:mfa/alice", TokenCode = "123456" }
  -- a session with MFA carries it: its GetSessionToken-style successors need no new code
  local mfa_session = sts:GetSessionToken{ SerialNumber = "arn:aws:iam::123456789012:mfa/alice",
    TokenCode = "654321" }.Credentials
  lu.assertNotNil(as(sim, mfa_session):AssumeRole{ RoleArn = admin, RoleSessionName = "t1" }.Credentials)
  -- role chaining: at most one hour
  local chained = as(sim, out.Credentials)
  iam:UpdateAssumeRolePolicy{ RoleName = "vendor", PolicyDocument = policy{ Effect = "Allow",
    Action = "sts:AssumeRole", Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":role/admin" } } }
  iam:UpdateRole{ RoleName = "vendor", MaxSessionDuration = 7200 }
  e = err_of(chained.AssumeRole, chained, { RoleArn = vendor, RoleSessionName = "c1",
    DurationSeconds = 3601 })
  lu.assertStrContains(e.message, "1 hour session limit for roles assumed by role chaining")
  lu.assertNotNil(chained:AssumeRole{ RoleArn = vendor, RoleSessionName = "c1" }.Credentials)
end

local function b64url(s)
  return (require("fo.crypto").base64_encode(s):gsub("+", "-"):gsub("/", "_"):gsub("=+$", ""))
end

local function jwt(claims)
  local json = require "fo.json"
  return b64url(json.encode({ alg = "RS256" })) .. "." .. b64url(json.encode(claims)) .. ".c2ln"
end

function TestSts.test_assume_role_with_web_identity()
  local sim, sts, iam = setup()
  local provider = iam:CreateOpenIDConnectProvider{ Url = "https://oidc.example.com/",
    ClientIDList = { "fo" } }.OpenIDConnectProviderArn
  lu.assertEquals(provider, "arn:aws:iam::" .. ACCOUNT .. ":oidc-provider/oidc.example.com")
  lu.assertEquals(iam:GetOpenIDConnectProvider{ OpenIDConnectProviderArn = provider }.ClientIDList, { "fo" })
  lu.assertEquals(err_of(iam.CreateOpenIDConnectProvider, iam, { Url = "https://oidc.example.com",
    ClientIDList = { "x" } }).code, "EntityAlreadyExists")
  local role = iam:CreateRole{ RoleName = "ci", AssumeRolePolicyDocument = policy{ Effect = "Allow",
    Action = "sts:AssumeRoleWithWebIdentity", Principal = { Federated = provider },
    Condition = { StringEquals = { ["oidc.example.com:sub"] = "job-1" } } } }.Role.Arn
  local function call(claims, session)
    return sts:AssumeRoleWithWebIdentity{ RoleArn = role, RoleSessionName = session or "w1",
      WebIdentityToken = type(claims) == "table" and jwt(claims) or claims }
  end
  local ok = { iss = "https://oidc.example.com", aud = "fo", sub = "job-1", exp = os.time() + 300 }
  local out = call(ok)
  lu.assertEquals({ out.SubjectFromWebIdentityToken, out.Audience, out.Provider },
    { "job-1", "fo", provider })
  lu.assertEquals(as(sim, out.Credentials):GetCallerIdentity{}.Arn,
    "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/ci/w1")
  local function code(claims)
    local bad = {}
    for k, v in pairs(ok) do bad[k] = v end
    for k, v in pairs(claims) do bad[k] = v end
    return err_of(call, bad).code
  end
  lu.assertEquals(code{ sub = "job-2" }, "AccessDenied")
  lu.assertEquals(code{ aud = "other" }, "InvalidIdentityToken")
  lu.assertEquals(code{ iss = "https://elsewhere.example.com" }, "InvalidIdentityToken")
  lu.assertEquals(code{ exp = os.time() - 1 }, "ExpiredTokenException")
  lu.assertEquals(err_of(call, "a.bc").code, "InvalidIdentityToken")
  -- the call is unsigned on the wire: the sim answers it without a signature
  local req = { method = "POST", url = "https://sts.amazonaws.com/", headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" .. role
      .. "&RoleSessionName=u1&WebIdentityToken=" .. jwt(ok) }
  local resp = sim:handle(req)
  lu.assertEquals(resp.status, 200)
  lu.assertStrContains(resp.body, "<SubjectFromWebIdentityToken>job-1</SubjectFromWebIdentityToken>")
  -- but other STS calls need one
  req.body = "Action=GetCallerIdentity&Version=2011-06-15"
  lu.assertEquals(sim:handle(req).status, 403)
end

function TestSts.test_identity_center_portal_and_token_refresh()
  local sim = setup()
  local doc = sim:sso_login{ assignments = { { account = ACCOUNT, role = "Dev" } }, seconds = 600 }
  local function portal(token, role)
    return sim:handle{ method = "GET", url = "https://portal.sso.us-east-1.amazonaws.com"
      .. "/federation/credentials?account_id=" .. ACCOUNT .. "&role_name=" .. role,
      headers = { ["x-amz-sso_bearer_token"] = token } }
  end
  local json = require "fo.json"
  local r = portal(doc.accessToken, "Dev")
  lu.assertEquals(r.status, 200)
  local rc = json.decode(r.body).roleCredentials
  lu.assertStrMatches(rc.accessKeyId, "ASIA%w+")
  lu.assertTrue(rc.expiration > os.time() * 1000)
  lu.assertEquals(portal(doc.accessToken, "Admin").status, 403)
  lu.assertEquals(portal("nope", "Dev").status, 401)
  local function refresh(rt, secret)
    return sim:handle{ method = "POST", url = "https://oidc.us-east-1.amazonaws.com/token",
      headers = { ["Content-Type"] = "application/json" }, body = json.encode{
        grantType = "refresh_token", clientId = doc.clientId, clientSecret = secret or doc.clientSecret,
        refreshToken = rt } }
  end
  lu.assertEquals(refresh(doc.refreshToken, "wrong").status, 401)
  r = refresh(doc.refreshToken)
  lu.assertEquals(r.status, 200)
  local fresh = json.decode(r.body)
  lu.assertEquals(portal(fresh.accessToken, "Dev").status, 200)
  -- a refresh token is used once
  lu.assertEquals(json.decode(refresh(doc.refreshToken).body).error, "invalid_grant")
  sim:advance(601)
  lu.assertEquals(portal(doc.accessToken, "Dev").status, 401)
  lu.assertEquals(portal(fresh.accessToken, "Dev").status, 200)
end

os.exit(lu.LuaUnit.run())
