-- STS handlers: who is calling (the access key's account and user), and temporary
-- credentials: GetSessionToken (for the caller), AssumeRole (a role whose trust policy,
-- fo.sim.trust, lets the caller in with its ExternalId and MFA) and
-- AssumeRoleWithWebIdentity (unsigned: an OIDC token of a provider registered in IAM).
-- The keys they issue (ASIA…, with a session token) are registered with the simulator,
-- which accepts them with their token until their Expiration on the sim's clock (then
-- answers ExpiredToken); GetCallerIdentity answers the assumed role for them. The secret
-- and the token are registered with fo.log (never logged).
local json = require "fo.json"
local trust = require "fo.sim.trust"

local M = {}

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.GetCallerIdentity(ctx)
  local c = ctx.caller
  return { Account = c.account, Arn = c.arn, UserId = c.user_id }
end

local function issue(ctx, duration, who)
  local key = "ASIA" .. ctx:chars(16)
  local secret = ctx:chars(40, B64)
  local token = "FwoGZXIvYXdzE" .. ctx:chars(200, B64)
  local sim = ctx.sim
  local expires = ctx:now() + duration
  sim:add_key{ access_key = key, secret_key = secret, session_token = token,
    account = who.account or ctx.account, user = who.user, user_id = who.user_id, arn = who.arn,
    expires = expires, mfa = who.mfa }
  return { AccessKeyId = key, SecretAccessKey = secret, SessionToken = token,
    Expiration = expires }
end

local mfa_present

local function temporary(caller) return caller.access_key and caller.access_key:sub(1, 4) == "ASIA" end

function M.GetSessionToken(ctx, p)
  local c = ctx.caller
  if temporary(c) then
    ctx:fail("AccessDenied", "Cannot call GetSessionToken with session credentials", 403)
  end
  local duration = p.DurationSeconds or 43200
  if duration < 900 or duration > 129600 then
    ctx:fail("ValidationError", ("1 validation error detected: Value '%d' at 'durationSeconds' "
      .. "failed to satisfy constraint: Member must have value %s"):format(duration,
        duration < 900 and "greater than or equal to 900" or "less than or equal to 129600"))
  end
  local mfa = mfa_present(ctx, p, c)
  return { Credentials = issue(ctx, duration, { user = c.user, user_id = c.user_id, arn = c.arn,
    mfa = mfa }) }
end

local function temporary_of_role(caller) return caller.arn and caller.arn:match(":assumed%-role/") end

-- The caller as trust policies name it: its ARN, its account id and root; an assumed
-- role also by its role's ARN.
local function aws_principal(c)
  local names = { c.arn, c.account, ("arn:aws:iam::%s:root"):format(c.account) }
  local acct, role = (c.arn or ""):match("^arn:aws:sts::(%d+):assumed%-role/([^/]+)/")
  if acct then names[#names + 1] = ("arn:aws:iam::%s:role/%s"):format(acct, role) end
  return { aws = names }
end

-- The role named by `role_arn` in its account, or nil.
local function role_of(ctx, role_arn)
  local account, path_name = tostring(role_arn):match("^arn:aws:iam::(%d+):role/(.+)$")
  if not account then
    ctx:fail("ValidationError", ("%s is invalid"):format(tostring(role_arn)))
  end
  local name = path_name:match("([^/]+)$")
  local roles = ctx.sim.store:db(account, "global", "iam").roles or {}
  local role = roles[name:lower()]
  if role and role.Arn == role_arn then return role, account end
  return nil, account
end

-- DurationSeconds checked against the role's MaxSessionDuration (and the one-hour limit
-- of role chaining, when an assumed role assumes another).
local function duration_of(ctx, p, role, chained)
  local duration = p.DurationSeconds or 3600
  if chained and duration > 3600 then
    ctx:fail("ValidationError", "The requested DurationSeconds exceeds the 1 hour session "
      .. "limit for roles assumed by role chaining.")
  end
  if duration > (role.MaxSessionDuration or 3600) then
    ctx:fail("ValidationError", ("The requested DurationSeconds exceeds the MaxSessionDuration "
      .. "set for this role."))
  end
  return duration
end

local function assumed(ctx, account, role, session, duration, mfa)
  local arn = ("arn:aws:sts::%s:assumed-role/%s/%s"):format(account, role.RoleName, session)
  local id = role.RoleId .. ":" .. session
  return issue(ctx, duration, { user = role.RoleName, user_id = id, arn = arn, mfa = mfa,
    account = account }), { AssumedRoleId = id, Arn = arn }
end

-- An MFA code is "valid" in the sim when a serial number comes with six digits (the sim
-- has no MFA devices); a code without a serial, or a serial without a code, is refused.
function mfa_present(ctx, p, c)
  if p.SerialNumber == nil and p.TokenCode == nil then return c.mfa == true end
  if not p.SerialNumber or not tostring(p.TokenCode or ""):match("^%d%d%d%d%d%d$") then
    ctx:fail("AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass "
      .. "code. ", 403)
  end
  return true
end

function M.AssumeRole(ctx, p)
  local c = ctx.caller
  local denied = ("User: %s is not authorized to perform: sts:AssumeRole on resource: %s")
    :format(c.arn, p.RoleArn)
  local role, account = role_of(ctx, p.RoleArn)
  local mfa = mfa_present(ctx, p, c)
  local context = { ["sts:ExternalId"] = p.ExternalId,
    ["aws:MultiFactorAuthPresent"] = mfa and "true" or "false",
    ["aws:PrincipalArn"] = c.arn, ["aws:PrincipalAccount"] = c.account,
    ["sts:RoleSessionName"] = p.RoleSessionName }
  if not role or not trust.allows(role.AssumeRolePolicyDocument, "sts:AssumeRole",
      aws_principal(c), context) then
    ctx:fail("AccessDenied", denied, 403)
  end
  local duration = duration_of(ctx, p, role, temporary_of_role(c))
  local creds, user = assumed(ctx, account, role, p.RoleSessionName, duration, mfa)
  return { Credentials = creds, AssumedRoleUser = user }
end

local function b64url_json(part)
  local s = part:gsub("-", "+"):gsub("_", "/")
  s = s .. ("="):rep((4 - #s % 4) % 4)
  local ok, raw = pcall(require("fo.crypto").base64_decode, s)
  if not ok or not raw then return nil end
  local dok, doc = pcall(json.decode, raw)
  return dok and type(doc) == "table" and doc or nil
end

-- The claims of a JWT (header.payload.signature, base64url JSON parts), or nil.
local function jwt_claims(token)
  local h, pl, sig = tostring(token):match("^([%w_-]+)%.([%w_-]+)%.([%w_-]*)$")
  if not h then return nil end
  local header, claims = b64url_json(h), b64url_json(pl)
  if not header or not claims or type(header.alg) ~= "string" then return nil end
  return claims, header, sig
end

-- AssumeRoleWithWebIdentity: unsigned. The token must be a JWT whose iss names an OIDC
-- provider of the role's account (IAM CreateOpenIDConnectProvider), whose aud is in the
-- provider's client ids, whose exp is in the future (the sim's clock) and which has a
-- sub; the role's trust policy must allow sts:AssumeRoleWithWebIdentity to that
-- provider (Federated) with the token's <provider>:aud and <provider>:sub. The
-- signature is not verified (the sim holds no issuer keys).
function M.AssumeRoleWithWebIdentity(ctx, p)
  local claims = jwt_claims(p.WebIdentityToken)
  if not claims then
    ctx:fail("InvalidIdentityToken", "Couldn't parse the web identity token: it is not a JWT "
      .. "(header.payload.signature)")
  end
  local iss, sub, exp = claims.iss, claims.sub, tonumber(claims.exp)
  if type(iss) ~= "string" or type(sub) ~= "string" or not exp then
    ctx:fail("InvalidIdentityToken", "The web identity token lacks one of the claims iss, sub, exp")
  end
  local role, account = role_of(ctx, p.RoleArn)
  local key = require("fo.sim.services.iam_oidc").key_of(iss)
  local providers = ctx.sim.store:db(account, "global", "iam").oidc_providers or {}
  local provider = providers[key]
  if not provider then
    ctx:fail("InvalidIdentityToken", ("No OpenIDConnect provider found in your account for %s")
      :format(iss))
  end
  local auds = type(claims.aud) == "table" and claims.aud or { claims.aud }
  local aud
  for _, a in ipairs(auds) do
    for _, id in ipairs(provider.ClientIDList) do
      if a == id then aud = a end
    end
  end
  if not aud then ctx:fail("InvalidIdentityToken", "Incorrect token audience") end
  if exp <= ctx:now() then
    ctx:fail("ExpiredTokenException", ("Token expired: current date/time %d must be before "
      .. "the expiration date/time %d"):format(math.floor(ctx:now()), math.floor(exp)))
  end
  local context = { [key .. ":aud"] = aud, [key .. ":sub"] = sub }
  if not role or not trust.allows(role.AssumeRolePolicyDocument, "sts:AssumeRoleWithWebIdentity",
      { federated = provider.Arn }, context) then
    ctx:fail("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
  end
  local duration = duration_of(ctx, p, role, false)
  local creds, user = assumed(ctx, account, role, p.RoleSessionName, duration, false)
  return { Credentials = creds, AssumedRoleUser = user, SubjectFromWebIdentityToken = sub,
    Provider = provider.Arn, Audience = aud }
end

return M
