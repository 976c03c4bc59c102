-- Key policy evaluation as KMS does it for the callers the simulator knows: a statement
-- applies when its Principal, Action (or NotAction) and Condition all match the request;
-- an explicit Deny wins over any Allow, no matching Allow is an implicit deny. The account
-- principal (arn:aws:iam::<acct>:root or the bare account id) means "the account's IAM
-- policies decide": the simulator evaluates no IAM policies, so it lets every principal of
-- that account through such a statement. Resource is "*" in key policies (the key itself).
local json = require "fo.json"

local M = {}

-- A glob of IAM ("*" any run, "?" one character) as an anchored Lua pattern.
local function glob(s)
  return "^" .. s:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

local function list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

local function matches_action(patterns, action)
  for _, p in ipairs(list(patterns)) do
    if type(p) == "string" and action:lower():match(glob(p:lower())) then return true end
  end
  return false
end

-- "arn:aws:sts::<acct>:assumed-role/<role>/<session>" → "<acct>", "<role>".
local function assumed_role(arn)
  return arn:match("^arn:aws:sts::(%d+):assumed%-role/([^/]+)/")
end

-- Does the policy's AWS principal `p` name the request's IAM principal `who`
-- ({arn=, account=})?
local function matches_aws(p, who)
  if p == "*" then return true end
  if not who.arn then return false end
  local acct = p:match("^(%d%d%d%d%d%d%d%d%d%d%d%d)$") or p:match("^arn:aws:iam::(%d+):root$")
  if acct then return acct == who.account end
  if p == who.arn then return true end
  local racct, role = assumed_role(who.arn)
  local pacct, prole = p:match("^arn:aws:iam::(%d+):role/.-([^/]+)$")
  return racct ~= nil and racct == pacct and role == prole
end

--- True when the grantee or policy principal string `p` names `who` ({arn=, account=} or
--- {service=}).
function M.principal_is(p, who)
  if who.service then return p == who.service end
  return matches_aws(p, who)
end

local function matches_principal(principal, who)
  if principal == "*" then return true end
  if type(principal) ~= "table" then return false end
  for _, p in ipairs(list(principal.AWS)) do
    if matches_aws(p, who) and (p == "*" or not who.service) then return true end
  end
  if who.service then
    for _, s in ipairs(list(principal.Service)) do
      if s == who.service then return true end
    end
  end
  return false
end

-- Condition operators: base name → function(request value, policy value) → bool.
local OPS = {
  StringEquals = function(a, b) return a == b end,
  StringEqualsIgnoreCase = function(a, b) return a:lower() == b:lower() end,
  StringLike = function(a, b) return a:match(glob(b)) ~= nil end,
  ArnEquals = function(a, b) return a == b end,
  ArnLike = function(a, b) return a:match(glob(b)) ~= nil end,
  Bool = function(a, b) return a:lower() == b:lower() end,
  NumericEquals = function(a, b) return tonumber(a) == tonumber(b) end,
  NumericLessThan = function(a, b) return (tonumber(a) or 0) < (tonumber(b) or 0) end,
  NumericLessThanEquals = function(a, b) return (tonumber(a) or 0) <= (tonumber(b) or 0) end,
  NumericGreaterThan = function(a, b) return (tonumber(a) or 0) > (tonumber(b) or 0) end,
  NumericGreaterThanEquals = function(a, b) return (tonumber(a) or 0) >= (tonumber(b) or 0) end,
}
-- Negated operators: the base they negate.
local NEGATED = { StringNotEquals = "StringEquals", StringNotEqualsIgnoreCase =
  "StringEqualsIgnoreCase", StringNotLike = "StringLike", ArnNotEquals = "ArnEquals",
  ArnNotLike = "ArnLike", NumericNotEquals = "NumericEquals" }

-- "ForAnyValue:StringLikeIfExists" → base operator, set prefix, negated, if_exists; nil
-- when the operator is not one the simulator knows.
local function parse_op(name)
  local set, rest = name:match("^(For%a+Values?):(.+)$")
  if set and set ~= "ForAnyValue" and set ~= "ForAllValues" then return nil end
  rest = rest or name
  local base, if_exists = rest:match("^(.-)IfExists$")
  base = base or rest
  if base == "Null" then return "Null", set, false, false end
  if OPS[base] then return base, set, false, if_exists ~= nil end
  if NEGATED[base] then return NEGATED[base], set, true, if_exists ~= nil end
  return nil
end

local function str(v)
  if type(v) == "boolean" then return v and "true" or "false" end
  return tostring(v)
end

-- One condition operator's block: every key in it must hold.
local function holds(opname, block, keys)
  local base, set, negated, if_exists = parse_op(opname)
  for key, want in pairs(block) do
    local have = keys[key:lower()]
    local wants = list(want)
    if base == "Null" then
      local absent = have == nil or (type(have) == "table" and #have == 0)
      if (str(wants[1]):lower() == "true") ~= absent then return false end
    elseif have == nil then
      if set == "ForAllValues" then -- vacuously true on an absent multi-valued key
      elseif not (negated or if_exists) then return false end
    else
      local op = OPS[base]
      local function one(v)
        for _, w in ipairs(wants) do
          if op(str(v), str(w)) then return true end
        end
        return false
      end
      local values = type(have) == "table" and have or { have }
      local ok
      if set == "ForAllValues" then
        ok = true
        for _, v in ipairs(values) do ok = ok and (one(v) ~= negated) end
      else
        ok = false
        for _, v in ipairs(values) do ok = ok or (one(v) ~= negated) end
      end
      if not ok then return false end
    end
  end
  return true
end

local function conditions_hold(cond, keys)
  for opname, block in pairs(cond or {}) do
    if not holds(opname, block, keys) then return false end
  end
  return true
end

--- The policy document (a JSON string) as a table with its statements checked, or nil and
--- why it is malformed (the message of MalformedPolicyDocumentException).
function M.parse(text)
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then return nil, "The policy is not valid JSON." end
  local stmts = doc.Statement
  if type(stmts) == "table" and stmts.Effect then stmts = { stmts } end
  if type(stmts) ~= "table" or #stmts == 0 then
    return nil, "The policy has no Statement."
  end
  for i, s in ipairs(stmts) do
    local where = ("Statement %d"):format(i)
    if type(s) ~= "table" then return nil, where .. " is not an object." end
    if s.Effect ~= "Allow" and s.Effect ~= "Deny" then
      return nil, where .. ": Effect must be \"Allow\" or \"Deny\"."
    end
    if s.Principal == nil then
      return nil, "Policy contains a statement with no principal."
    end
    if s.Action == nil and s.NotAction == nil then
      return nil, where .. " has no Action."
    end
    if s.Condition ~= nil and type(s.Condition) ~= "table" then
      return nil, where .. ": Condition must be an object."
    end
    for opname in pairs(s.Condition or {}) do
      if not parse_op(opname) then
        return nil, ("%s: condition operator %s is not supported."):format(where, opname)
      end
    end
  end
  doc.Statement = stmts
  return doc
end

--- The decision of policy `doc` (from M.parse) on req = {action = "kms:Encrypt",
--- principal = {arn=, account=} | {service=}, keys = {lower-case condition key → value or
--- list}}: "deny" (an explicit Deny matched), "allow", or nil (nothing allows it).
function M.evaluate(doc, req)
  local allowed = false
  for _, s in ipairs(doc.Statement) do
    local act = s.Action ~= nil and matches_action(s.Action, req.action)
      or (s.Action == nil and not matches_action(s.NotAction, req.action))
    if act and matches_principal(s.Principal, req.principal)
        and conditions_hold(s.Condition, req.keys or {}) then
      if s.Effect == "Deny" then return "deny" end
      allowed = true
    end
  end
  return allowed and "allow" or nil
end

--- The default key policy KMS gives a key created without one: the account's IAM policies
--- decide (the root principal may do everything).
function M.default(account)
  return json.encode({
    Version = "2012-10-17", Id = "key-default-1",
    Statement = { {
      Sid = "Enable IAM User Permissions", Effect = "Allow",
      Principal = { AWS = ("arn:aws:iam::%s:root"):format(account) },
      Action = "kms:*", Resource = "*",
    } },
  })
end

--- The policy of the AWS managed key of `service` ("s3"): every principal of the account
--- may use it through that service in `region`; the account may read its metadata.
function M.managed(account, region, service)
  return json.encode({
    Version = "2012-10-17", Id = "auto-" .. service .. "-1",
    Statement = {
      { Sid = ("Allow access through %s for all principals in the account that are "
          .. "authorized to use %s"):format(service, service),
        Effect = "Allow", Principal = { AWS = "*" },
        Action = { "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
          "kms:CreateGrant", "kms:DescribeKey" },
        Resource = "*",
        Condition = { StringEquals = { ["kms:CallerAccount"] = account,
          ["kms:ViaService"] = ("%s.%s.amazonaws.com"):format(service, region) } } },
      { Sid = "Allow direct access to key metadata to the account", Effect = "Allow",
        Principal = { AWS = ("arn:aws:iam::%s:root"):format(account) },
        Action = { "kms:Describe*", "kms:Get*", "kms:List*" }, Resource = "*" },
    },
  })
end

return M
