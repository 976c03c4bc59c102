-- Who may do what with a KMS key: the key policy (fo.sim.kms.policy) decides, an explicit
-- Deny wins, and the key's grants add permissions (a grant's operations, for its grantee,
-- within its encryption context constraints). Also the key-state checks every use of a key
-- makes (disabled, pending deletion) with KMS's error codes and messages.
local policy = require "fo.sim.kms.policy"

local M = {}

-- The condition keys of a request (lower-case names, as policies compare them).
local function condition_keys(req)
  local keys = {}
  local who = req.principal
  if who.account then keys["kms:calleraccount"] = who.account end
  if who.arn then keys["aws:principalarn"] = who.arn; keys["aws:principalaccount"] = who.account end
  if req.via then keys["kms:viaservice"] = req.via end
  if req.source_arn then keys["aws:sourcearn"] = req.source_arn end
  if req.source_account then keys["aws:sourceaccount"] = req.source_account end
  if req.context then
    local names = {}
    for k, v in pairs(req.context) do
      keys["kms:encryptioncontext:" .. k:lower()] = v
      names[#names + 1] = k
    end
    table.sort(names)
    keys["kms:encryptioncontextkeys"] = names
  end
  return keys
end

-- Does grant g's constraint allow encryption context `ctx`?
local function constraints_hold(g, context)
  local c = g.Constraints
  if not c then return true end
  context = context or {}
  if c.EncryptionContextEquals then
    for k, v in pairs(c.EncryptionContextEquals) do
      if context[k] ~= v then return false end
    end
    for k in pairs(context) do
      if c.EncryptionContextEquals[k] == nil then return false end
    end
  end
  if c.EncryptionContextSubset then
    for k, v in pairs(c.EncryptionContextSubset) do
      if context[k] ~= v then return false end
    end
  end
  return true
end

local function granted(key, req)
  local op = req.action:match("^kms:(.+)$")
  for _, g in ipairs(key.grants or {}) do
    if policy.principal_is(g.GranteePrincipal, req.principal) and constraints_hold(g, req.context) then
      for _, o in ipairs(g.Operations) do
        if o == op then return true end
      end
    end
  end
  return false
end

local function who_text(who)
  return who.service and ("Service: " .. who.service) or ("User: " .. tostring(who.arn))
end

--- nil when req = {action=, principal = {arn=, account=} | {service=}, via=, context=,
--- source_arn=, source_account=} may act on key record `key`; else "AccessDeniedException"
--- and KMS's message.
function M.check(key, req)
  local doc = policy.parse(key.Policy)
  req.keys = condition_keys(req)
  local decision = doc and policy.evaluate(doc, req) or nil
  if decision == "allow" then return nil end
  if decision ~= "deny" and granted(key, req) then return nil end
  return "AccessDeniedException", ("%s is not authorized to perform: %s on resource: %s %s")
    :format(who_text(req.principal), req.action, key.Arn, decision == "deny"
      and "with an explicit deny in a resource-based policy"
      or ("because no resource-based policy allows the %s action"):format(req.action))
end

--- nil when `key` can be used for a cryptographic operation; else the error code and
--- message KMS answers (disabled, pending deletion).
function M.usable(key)
  if key.KeyState == "PendingDeletion" then
    return "KMSInvalidStateException", key.Arn .. " is pending deletion."
  end
  if key.KeyState == "Disabled" then return "DisabledException", key.Arn .. " is disabled." end
  return nil
end

--- nil unless `key` is pending deletion (most changes to a key are refused then).
function M.not_pending(key)
  if key.KeyState == "PendingDeletion" then
    return "KMSInvalidStateException", key.Arn .. " is pending deletion."
  end
  return nil
end

return M
