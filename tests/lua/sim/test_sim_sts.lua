-- The simulator's STS through fo's sts client over the in-process wire: temporary
-- credentials from GetSessionToken and AssumeRole (trust policy, MaxSessionDuration),
-- usable at once (with their session token only), and GetCallerIdentity for them.
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

os.exit(lu.LuaUnit.run())
