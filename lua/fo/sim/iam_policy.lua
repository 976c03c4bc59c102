-- Identity-based policies evaluated as IAM does for one request: a statement applies when
-- its Action (or NotAction) names the action (wildcards, case-insensitive), its Resource
-- (or NotResource) matches the request's resource ARN (wildcards, policy variables such
-- as ${aws:PrincipalAccount} filled from the request context) and its Condition holds
-- (fo.sim.trust's operators, shared with the trust-policy evaluator). An explicit Deny
-- wins over any Allow; no Allow is an implicit deny. A statement without Action/NotAction
-- or Resource/NotResource never applies (IAM refuses such a document).
local trust = require "fo.sim.trust"
local cjson = require "cjson.safe"

local M = {}

local list = trust.list

-- "${aws:PrincipalAccount}" → the context's value; an unknown variable stays as written
-- (and so matches nothing, as IAM's unresolvable variables do).
local function substitute(pattern, context)
  return (pattern:gsub("%${([^}]+)}", function(k)
    local v = context[k:lower()]
    return v ~= nil and tostring(v) or nil
  end))
end

local function any_like(patterns, value, fold, context)
  for _, p in ipairs(list(patterns)) do
    if type(p) == "string" then
      if context then p = substitute(p, context) end
      if trust.like(p, value, fold) then return true end
    end
  end
  return false
end

local function applies(s, action, resource, context)
  if s.Action ~= nil then
    if not any_like(s.Action, action, true) then return false end
  elseif s.NotAction ~= nil then
    if any_like(s.NotAction, action, true) then return false end
  else
    return false
  end
  if s.Resource ~= nil then
    if not any_like(s.Resource, resource, false, context) then return false end
  elseif s.NotResource ~= nil then
    if any_like(s.NotResource, resource, false, context) then return false end
  else
    return false
  end
  return trust.conditions_match(s, context)
end

--- The decision of policy texts `docs` for `action` ("ec2:CreateVpc") on `resource` (an
--- ARN, or "*" for actions AWS authorizes on no resource) with `context` (condition key →
--- value, any case): "allow", "deny" (an explicit Deny) or "implicit" (no statement allows).
function M.decide(docs, action, resource, context)
  local ctx = {}
  for k, v in pairs(context or {}) do ctx[k:lower()] = v end
  local allowed = false
  for _, doc in ipairs(docs) do
    local policy = type(doc) == "table" and doc or cjson.decode(doc or "")
    local stmts = type(policy) == "table" and policy.Statement or nil
    if type(stmts) == "table" and stmts.Effect then stmts = { stmts } end
    for _, s in ipairs(list(stmts)) do
      if type(s) == "table" and applies(s, action, resource, ctx) then
        if s.Effect == "Deny" then return "deny" end
        if s.Effect == "Allow" then allowed = true end
      end
    end
  end
  return allowed and "allow" or "implicit"
end

return M
