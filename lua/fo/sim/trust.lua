-- A role's trust policy, evaluated for STS: does it let this principal take this action
-- with this request context? Covers what the credentials chain needs: Principal AWS
-- (account id, :root, an ARN, "*"), Service and Federated (an OIDC provider's ARN);
-- Action with wildcards; Condition operators StringEquals, StringNotEquals, StringLike,
-- StringNotLike (with their IfExists forms) and Bool, any key, values lists OR-ed, keys and
-- operators AND-ed, as IAM does. An explicit Deny wins. An unknown operator never
-- matches (an Allow with it does not apply; a Deny with it does not apply either).
local M = {}

-- A policy element that IAM takes as one value or a list of them (Action, Resource, a
-- principal, a condition's values, Statement), as a list.
local function list(v)
  if v == nil then return {} end
  if type(v) ~= "table" then return { v } end
  return v
end

M.list = list

-- IAM's wildcard match: * any run, ? one character; case-sensitive unless `fold`.
local function like(pattern, value, fold)
  if fold then pattern, value = pattern:lower(), value:lower() end
  local p = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
  return value:match(p) ~= nil
end

M.like = like

local function action_matches(stmt, action)
  for _, a in ipairs(list(stmt.Action)) do
    if type(a) == "string" and like(a, action, true) then return true end
  end
  return false
end

-- principal = {aws = {<account>, <arn>}, service = "ec2.amazonaws.com", federated = arn}
local function principal_matches(stmt, principal)
  local pr = stmt.Principal
  if pr == "*" then return true end
  if type(pr) ~= "table" then return false end
  for _, v in ipairs(list(pr.AWS)) do
    if v == "*" then return principal.aws ~= nil end
    for _, mine in ipairs(principal.aws or {}) do
      if v == mine then return true end
    end
  end
  for _, v in ipairs(list(pr.Service)) do
    if principal.service and v == principal.service then return true end
  end
  for _, v in ipairs(list(pr.Federated)) do
    if principal.federated and v == principal.federated then return true end
  end
  return false
end

local OPERATORS = {
  StringEquals = function(want, have) return want == have end,
  StringNotEquals = function(want, have) return want ~= have end,
  StringEqualsIgnoreCase = function(want, have) return want:lower() == have:lower() end,
  StringLike = function(want, have) return like(want, have) end,
  StringNotLike = function(want, have) return not like(want, have) end,
  Bool = function(want, have) return want:lower() == have:lower() end,
  -- ARN operators (IAM: ArnEquals and ArnLike both take * and ? wildcards)
  ArnEquals = function(want, have) return like(want, have) end,
  ArnLike = function(want, have) return like(want, have) end,
  ArnNotEquals = function(want, have) return not like(want, have) end,
  ArnNotLike = function(want, have) return not like(want, have) end,
}
local NEGATED = { StringNotEquals = true, StringNotLike = true, ArnNotEquals = true,
  ArnNotLike = true }

-- One operator's block: every key must match (values OR-ed; a negated operator needs
-- none of them to match). An absent key fails, except with ...IfExists.
local function block_matches(op, block, context)
  local base, if_exists = op:match("^(.-)(IfExists)$")
  base = base or op
  local f = OPERATORS[base]
  if not f or type(block) ~= "table" then return false end
  for key, values in pairs(block) do
    local have = context[key:lower()]
    if have == nil then
      if not if_exists then return false end
    else
      local any = false
      for _, want in ipairs(list(values)) do
        if NEGATED[base] then
          any = true
          if not f(tostring(want), tostring(have)) then any = false; break end
        elseif f(tostring(want), tostring(have)) then
          any = true
          break
        end
      end
      if not any then return false end
    end
  end
  return true
end

--- True when statement `stmt`'s Condition holds in `context` (lower-case keys): shared with
--- the identity-policy evaluator (fo.sim.iam_policy).
function M.conditions_match(stmt, context)
  if stmt.Condition == nil then return true end
  if type(stmt.Condition) ~= "table" then return false end
  for op, block in pairs(stmt.Condition) do
    if not block_matches(op, block, context) then return false end
  end
  return true
end

--- True when policy text `doc` allows `action` (e.g. "sts:AssumeRole") for `principal`
--- with `context` (condition key → value; keys compared case-insensitively).
function M.allows(doc, action, principal, context)
  local ok, policy = pcall(require("cjson.safe").decode, doc or "")
  if not ok or type(policy) ~= "table" then return false end
  local ctx = {}
  for k, v in pairs(context or {}) do ctx[k:lower()] = v end
  local stmts = policy.Statement
  if type(stmts) == "table" and stmts.Effect then stmts = { stmts } end
  local allowed = false
  for _, s in ipairs(list(stmts)) do
    if type(s) == "table" and action_matches(s, action) and principal_matches(s, principal)
        and M.conditions_match(s, ctx) then
      if s.Effect == "Deny" then return false end
      if s.Effect == "Allow" then allowed = true end
    end
  end
  return allowed
end

return M
