-- Bucket policies in the simulator: the document checks of PutBucketPolicy and the
-- evaluation S3 does for a request. An explicit Deny whose principal, action, resource and
-- conditions match refuses the request (403 AccessDenied), whoever asks; the bucket owner's
-- account is otherwise allowed by its own identity, and any other principal (another
-- account, a service principal such as logdelivery.elasticloadbalancing.amazonaws.com or
-- delivery.logs.amazonaws.com, the ELB account of a region) needs an Allow. Conditions:
-- String(Not)Equals(IgnoreCase), String(Not)Like, Null, Bool, Arn(Not)Like/Equals (with
-- ...IfExists); unknown operators never match. The simulator counts every request as sent
-- over TLS (aws:SecureTransport "true"), as clients talking to AWS's https endpoints do.
local cjson = require "cjson"
local SimError = require "fo.sim.error"

local M = {}

local function list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

-- IAM's wildcard match: '*' any run, '?' one character; case-sensitive unless `fold`.
local function like(pattern, s, fold)
  if fold then pattern, s = pattern:lower(), s:lower() end
  local lua = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
  return s:match(lua) ~= nil
end

local function principal_matches(stmt, who)
  local p = stmt.Principal
  if p == "*" then return true end
  if type(p) ~= "table" then return false end
  for _, a in ipairs(list(p.AWS)) do
    if a == "*" then return true end
    if who.account and (a == who.account or a == ("arn:aws:iam::%s:root"):format(who.account)) then
      return true
    end
    if who.arn and a == who.arn then return true end
  end
  for _, s in ipairs(list(p.Service)) do
    if who.service and s == who.service then return true end
  end
  return false
end

local function action_matches(stmt, action)
  for _, a in ipairs(list(stmt.Action)) do
    if like(a, action, true) then return true end
  end
  return false
end

local function resource_matches(stmt, resource)
  for _, r in ipairs(list(stmt.Resource)) do
    if like(r, resource) then return true end
  end
  return false
end

local STRING = {
  StringEquals = function(v, want) return v == want end,
  StringEqualsIgnoreCase = function(v, want) return v:lower() == want:lower() end,
  StringLike = function(v, want) return like(want, v) end,
  ArnEquals = function(v, want) return v == want end,
  ArnLike = function(v, want) return like(want, v) end,
}
local NEGATED = { StringNotEquals = "StringEquals", StringNotEqualsIgnoreCase = "StringEqualsIgnoreCase",
  StringNotLike = "StringLike", ArnNotEquals = "ArnEquals", ArnNotLike = "ArnLike" }

-- One condition operator over its keys (all must hold).
local function operator_holds(op, keys, context)
  local if_exists = op:match("IfExists$") ~= nil
  local base = op:gsub("IfExists$", "")
  for key, wanted in pairs(keys) do
    local v = context[key:lower()]
    local holds
    if base == "Null" then
      holds = (tostring(list(wanted)[1]):lower() == "true") == (v == nil)
    elseif v == nil then
      -- a missing key: the negated operators hold, the others do not (IfExists: all hold)
      holds = if_exists or NEGATED[base] ~= nil
    elseif base == "Bool" then
      holds = false
      for _, w in ipairs(list(wanted)) do
        if tostring(w):lower() == tostring(v):lower() then holds = true end
      end
    elseif STRING[base] then
      holds = false
      for _, w in ipairs(list(wanted)) do
        if STRING[base](tostring(v), tostring(w)) then holds = true end
      end
    elseif NEGATED[base] then
      holds = true
      for _, w in ipairs(list(wanted)) do
        if STRING[NEGATED[base]](tostring(v), tostring(w)) then holds = false end
      end
    else
      holds = false -- an operator the simulator does not evaluate
    end
    if not holds then return false end
  end
  return true
end

local function conditions_hold(stmt, context)
  for op, keys in pairs(stmt.Condition or {}) do
    if type(keys) ~= "table" or not operator_holds(op, keys, context) then return false end
  end
  return true
end

--- Evaluates a policy document (a decoded table) for req = {who = {account=, arn=,
--- service=}, action = "s3:PutObject", resource = "arn:aws:s3:::b/k", context = {key →
--- value, lower-case keys}} → "deny", "allow" or nil (no statement applies).
function M.evaluate(doc, req)
  local decision
  for _, stmt in ipairs(list(doc and doc.Statement)) do
    if principal_matches(stmt, req.who) and action_matches(stmt, req.action)
        and resource_matches(stmt, req.resource) and conditions_hold(stmt, req.context) then
      if stmt.Effect == "Deny" then return "deny" end
      if stmt.Effect == "Allow" then decision = "allow" end
    end
  end
  return decision
end

--- The request context S3 gives a policy's conditions for params (the operation's input).
function M.context(ctx, params)
  params = params or {}
  local c = { ["aws:securetransport"] = "true" }
  if ctx then
    c["aws:principalaccount"] = ctx.account
    c["aws:principalarn"] = ctx.caller and ctx.caller.arn or nil
  end
  c["s3:x-amz-server-side-encryption"] = params.ServerSideEncryption
  c["s3:x-amz-server-side-encryption-aws-kms-key-id"] = params.SSEKMSKeyId
  c["s3:x-amz-acl"] = params.ACL
  return c
end

local function resource_of(bucket, params)
  if params and params.Key then return ("arn:aws:s3:::%s/%s"):format(bucket.name, params.Key) end
  return ("arn:aws:s3:::%s"):format(bucket.name)
end

--- Would `who` ({account=, arn=, service=}) be allowed `action` on the bucket (key in
--- params.Key)? For principals other than the owner's account: an Allow and no Deny. Used by
--- the simulated log delivery of other services.
function M.permits(bucket, who, action, params, context)
  local doc = bucket.policy and cjson.decode(bucket.policy) or nil
  local d = doc and M.evaluate(doc, { who = who, action = action,
    resource = resource_of(bucket, params), context = context or M.context(nil, params) })
  if d == "deny" then return false end
  if who.account and who.account == bucket.account then return true end
  return d == "allow"
end

--- Raises AccessDenied (403) when the bucket policy denies the caller `action` with these
--- params, or when the caller is another account that the policy does not allow.
function M.authorize(ctx, bucket, action, params)
  local who = { account = ctx.account, arn = ctx.caller and ctx.caller.arn or nil }
  if not M.permits(bucket, who, action, params, M.context(ctx, params)) then
    SimError.raise("AccessDenied", "Access Denied", 403)
  end
end

-- PutBucketPolicy's checks ------------------------------------------------------------------

local function malformed(message)
  SimError.raise("MalformedPolicy", message, 400)
end

--- The policy document decoded and checked as S3 does; raises MalformedPolicy.
function M.parse(text, bucket_name)
  local ok, doc = pcall(cjson.decode, text)
  if not ok or type(doc) ~= "table" then malformed("Policies must be valid JSON and the first byte must be '{'") end
  if doc.Version ~= nil and doc.Version ~= "2012-10-17" and doc.Version ~= "2008-10-17" then
    malformed("The policy must contain a valid version string")
  end
  local stmts = list(doc.Statement)
  if #stmts == 0 and doc.Statement == nil then malformed("Missing required field Statement") end
  for _, s in ipairs(stmts) do
    if s.Effect ~= "Allow" and s.Effect ~= "Deny" then malformed("Invalid effect: " .. tostring(s.Effect)) end
    if s.Principal == nil and s.NotPrincipal == nil then malformed("Missing required field Principal") end
    if s.Action == nil and s.NotAction == nil then malformed("Missing required field Action") end
    for _, a in ipairs(list(s.Action)) do
      if type(a) ~= "string" or not (a == "*" or a:lower():match("^s3:")) then
        malformed("Policy has invalid action")
      end
    end
    if s.Resource == nil and s.NotResource == nil then malformed("Missing required field Resource") end
    for _, r in ipairs(list(s.Resource)) do
      local b = type(r) == "string" and r:match("^arn:aws:s3:::([^/]+)")
      if not b or not like(b, bucket_name) then
        malformed("Policy has invalid resource")
      end
    end
  end
  return doc
end

--- True when the policy grants public access (an Allow to Principal "*" or AWS "*" without
--- a condition), what BlockPublicPolicy refuses.
function M.is_public(doc)
  for _, s in ipairs(list(doc.Statement)) do
    local p = s.Principal
    local everyone = p == "*" or (type(p) == "table" and (p.AWS == "*"
      or (type(p.AWS) == "table" and p.AWS[1] == "*")))
    if s.Effect == "Allow" and everyone and s.Condition == nil then return true end
  end
  return false
end

return M
