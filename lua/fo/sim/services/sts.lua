-- STS handlers: who is calling (the access key's account and user), and temporary
-- credentials: GetSessionToken (for the caller) and AssumeRole (a role of the account
-- whose trust policy lets the caller in). The keys they issue (ASIA…, with a session
-- token) are registered with the simulator, which accepts them with their token from
-- then on; GetCallerIdentity answers the assumed role for them. The secret and the token
-- are registered with fo.log (never logged).
local json = require "fo.json"

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
  sim:add_key{ access_key = key, secret_key = secret, session_token = token,
    account = ctx.account, user = who.user, user_id = who.user_id, arn = who.arn }
  return { AccessKeyId = key, SecretAccessKey = secret, SessionToken = token,
    Expiration = ctx:now() + duration }
end

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
  return { Credentials = issue(ctx, duration, { user = c.user, user_id = c.user_id, arn = c.arn }) }
end

-- The principals a trust policy statement names (Principal "*" or {AWS = ... }).
local function aws_principals(stmt)
  local pr = stmt.Principal
  if pr == "*" then return { "*" } end
  if type(pr) ~= "table" then return {} end
  local v = pr.AWS
  if type(v) == "string" then return { v } end
  return type(v) == "table" and v or {}
end

local function action_matches(stmt)
  local a = stmt.Action
  if type(a) == "string" then a = { a } end
  for _, x in ipairs(a or {}) do
    if x == "*" or x == "sts:*" or x:lower() == "sts:assumerole" then return true end
  end
  return false
end

-- True when the trust policy `doc` lets `caller` (of `account`) assume the role: an Allow
-- statement for sts:AssumeRole naming the caller, its account (id or :root) or "*", and
-- no such Deny. (Conditions are not evaluated.)
local function trusted(doc, caller, account)
  local ok, policy = pcall(json.decode, doc)
  if not ok or type(policy) ~= "table" then return false end
  local stmts = policy.Statement
  if type(stmts) == "table" and stmts.Effect then stmts = { stmts } end
  local allowed = false
  for _, s in ipairs(stmts or {}) do
    if action_matches(s) then
      for _, pr in ipairs(aws_principals(s)) do
        if pr == "*" or pr == account or pr == ("arn:aws:iam::%s:root"):format(account)
            or pr == caller.arn then
          if s.Effect == "Deny" then return false end
          if s.Effect == "Allow" then allowed = true end
        end
      end
    end
  end
  return allowed
end

function M.AssumeRole(ctx, p)
  local c = ctx.caller
  local denied = ("User: %s is not authorized to perform: sts:AssumeRole on resource: %s")
    :format(c.arn, p.RoleArn)
  local account, path_name = p.RoleArn:match("^arn:aws:iam::(%d+):role/(.+)$")
  if not account then
    ctx:fail("ValidationError", ("%s is invalid"):format(p.RoleArn))
  end
  local name = path_name:match("([^/]+)$")
  local roles = ctx.sim.store:db(account, "global", "iam").roles or {}
  local role = roles[name:lower()]
  if not role or role.Arn ~= p.RoleArn or not trusted(role.AssumeRolePolicyDocument, c, c.account) then
    ctx:fail("AccessDenied", denied, 403)
  end
  local duration = p.DurationSeconds or 3600
  if duration > (role.MaxSessionDuration or 3600) then
    ctx:fail("ValidationError", ("The requested DurationSeconds exceeds the MaxSessionDuration "
      .. "set for this role."))
  end
  local arn = ("arn:aws:sts::%s:assumed-role/%s/%s"):format(account, role.RoleName,
    p.RoleSessionName)
  local id = role.RoleId .. ":" .. p.RoleSessionName
  return { Credentials = issue(ctx, duration, { user = role.RoleName, user_id = id, arn = arn }),
    AssumedRoleUser = { AssumedRoleId = id, Arn = arn } }
end

return M
