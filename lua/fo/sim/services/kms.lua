-- KMS handlers: symmetric keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT), aliases, key state
-- (enable, disable, scheduled deletion and its cancellation), key policies evaluated on
-- every use (fo.sim.kms.access), rotation status, grants, and the cryptographic operations
-- with ciphertext that is really encrypted (fo.sim.kms.blob). AWS managed keys
-- (alias/aws/s3 ...) are made on first use. Other simulated services use keys through
-- fo.sim.kms_use.
local keys = require "fo.sim.kms.keys"
local access = require "fo.sim.kms.access"
local blob = require "fo.sim.kms.blob"
local policy = require "fo.sim.kms.policy"
local records = require "fo.sim.records"
local crypto = require "fo.crypto"

local M = {}

local function principal(ctx)
  return { arn = ctx.caller and ctx.caller.arn, account = ctx.caller and ctx.caller.account
    or ctx.account }
end

local function fail_if(ctx, code, msg)
  if code then ctx:fail(code, msg) end
end

-- The key `ref` names, or the call fails as KMS answers.
local function find(ctx, ref)
  local k, db_or_code, msg = keys.resolve(ctx, ctx.account, ctx.region, ref)
  if not k then ctx:fail(db_or_code, msg) end
  return k, db_or_code
end

-- Fails unless the caller may do `action` on key `k` (context: the encryption context).
local function authorize(ctx, k, action, context)
  fail_if(ctx, access.check(k, { action = action, principal = principal(ctx), context = context }))
end

-- The key `ref` names, after the permission check of `action`.
local function key_for(ctx, ref, action, context)
  local k, db = find(ctx, ref)
  authorize(ctx, k, action, context)
  return k, db
end

local function dry_run(ctx, p)
  if p.DryRun then
    ctx:fail("DryRunOperationException", "The request would have succeeded, but the DryRun "
      .. "option is set.")
  end
end

local function page(ctx, items, p)
  local limit = p.Limit or 100
  local out, next_marker = records.page(items, p.Marker, "kms-", limit)
  if not out then ctx:fail("InvalidMarkerException", "Invalid marker: " .. tostring(p.Marker)) end
  return out, next_marker
end

-- A policy the caller could not change afterwards is refused unless the caller says it
-- knows (BypassPolicyLockoutSafetyCheck), as KMS does.
local function checked_policy(ctx, text, bypass, key_arn)
  local doc, why = policy.parse(text)
  if not doc then ctx:fail("MalformedPolicyDocumentException", why) end
  if not bypass then
    local probe = { Policy = text, Arn = key_arn or "", grants = {} }
    if access.check(probe, { action = "kms:PutKeyPolicy", principal = principal(ctx) }) then
      ctx:fail("MalformedPolicyDocumentException", "The new key policy will not allow you to "
        .. "update the key policy in the future.")
    end
  end
  return text
end

local function check_tags(ctx, tags)
  local seen = {}
  for _, t in ipairs(tags or {}) do
    if t.TagKey:lower():sub(1, 4) == "aws:" then
      ctx:fail("TagException", "Tags beginning with aws: are reserved for AWS use.")
    end
    if seen[t.TagKey] then ctx:fail("TagException", "Duplicate tag keys: " .. t.TagKey) end
    seen[t.TagKey] = true
  end
end

-- Keys and their state ---------------------------------------------------------------

local UNSUPPORTED = "The fo simulator offers symmetric encryption keys only (KeySpec "
  .. "SYMMETRIC_DEFAULT, Origin AWS_KMS, single-Region): %s is not simulated."

function M.CreateKey(ctx, p)
  local spec = p.KeySpec or p.CustomerMasterKeySpec or "SYMMETRIC_DEFAULT"
  if spec ~= "SYMMETRIC_DEFAULT" then
    ctx:fail("UnsupportedOperationException", UNSUPPORTED:format("KeySpec " .. spec))
  end
  if p.KeyUsage and p.KeyUsage ~= "ENCRYPT_DECRYPT" then
    ctx:fail("ValidationException", ("KeyUsage %s is not compatible with KeySpec "
      .. "SYMMETRIC_DEFAULT"):format(p.KeyUsage))
  end
  if (p.Origin and p.Origin ~= "AWS_KMS") or p.CustomKeyStoreId or p.XksKeyId then
    ctx:fail("UnsupportedOperationException", UNSUPPORTED:format("Origin " ..
      tostring(p.Origin or "AWS_CLOUDHSM")))
  end
  if p.MultiRegion then ctx:fail("UnsupportedOperationException", UNSUPPORTED:format("MultiRegion")) end
  check_tags(ctx, p.Tags)
  local text = p.Policy and checked_policy(ctx, p.Policy, p.BypassPolicyLockoutSafetyCheck)
  local db = keys.db(ctx.sim, ctx.account, ctx.region)
  local k = keys.create(ctx, db, ctx.account, ctx.region,
    { Description = p.Description, Policy = text, Tags = p.Tags })
  return { KeyMetadata = keys.metadata(k) }
end

function M.DescribeKey(ctx, p)
  return { KeyMetadata = keys.metadata(key_for(ctx, p.KeyId, "kms:DescribeKey")) }
end

function M.ListKeys(ctx, p)
  local db = keys.db(ctx.sim, ctx.account, ctx.region)
  keys.purge(db, ctx:now())
  local items = {}
  for _, k in ipairs(keys.sorted(db)) do items[#items + 1] = { KeyId = k.KeyId, KeyArn = k.Arn } end
  local out, marker = page(ctx, items, p)
  return { Keys = out, NextMarker = marker, Truncated = marker ~= nil }
end

-- The key p.KeyId names, allowed `action`, not pending deletion (what AWS requires of a
-- key whose description or state changes).
local function live_key(ctx, p, action)
  local k = key_for(ctx, p.KeyId, action)
  fail_if(ctx, access.not_pending(k))
  return k
end

function M.UpdateKeyDescription(ctx, p)
  live_key(ctx, p, "kms:UpdateKeyDescription").Description = p.Description
  return {}
end

function M.EnableKey(ctx, p)
  local k = live_key(ctx, p, "kms:EnableKey")
  k.Enabled, k.KeyState = true, "Enabled"
  return {}
end

function M.DisableKey(ctx, p)
  local k = live_key(ctx, p, "kms:DisableKey")
  k.Enabled, k.KeyState = false, "Disabled"
  return {}
end

function M.ScheduleKeyDeletion(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:ScheduleKeyDeletion")
  local days = p.PendingWindowInDays or 30
  if days < 7 or days > 30 then
    ctx:fail("ValidationException", ("1 validation error detected: Value '%d' at "
      .. "'pendingWindowInDays' failed to satisfy constraint: Member must have value between "
      .. "7 and 30"):format(days))
  end
  fail_if(ctx, access.not_pending(k))
  k.KeyState, k.Enabled = "PendingDeletion", false
  k.DeletionDate = ctx:now() + days * keys.DAY
  return { KeyId = k.Arn, DeletionDate = k.DeletionDate, KeyState = k.KeyState,
    PendingWindowInDays = days }
end

function M.CancelKeyDeletion(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:CancelKeyDeletion")
  if k.KeyState ~= "PendingDeletion" then
    ctx:fail("KMSInvalidStateException", k.Arn .. " is not pending deletion.")
  end
  -- a key back from the deletion window is disabled, as AWS leaves it
  k.KeyState, k.Enabled, k.DeletionDate = "Disabled", false, nil
  return { KeyId = k.Arn }
end

-- Policies and rotation ----------------------------------------------------------------

local function policy_name(ctx, name)
  if name ~= nil and name ~= "default" then
    ctx:fail("NotFoundException", "No such policy exists: " .. name)
  end
end

function M.GetKeyPolicy(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:GetKeyPolicy")
  policy_name(ctx, p.PolicyName)
  return { Policy = k.Policy, PolicyName = "default" }
end

function M.PutKeyPolicy(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:PutKeyPolicy")
  policy_name(ctx, p.PolicyName)
  k.Policy = checked_policy(ctx, p.Policy, p.BypassPolicyLockoutSafetyCheck, k.Arn)
  return {}
end

function M.ListKeyPolicies(ctx, p)
  key_for(ctx, p.KeyId, "kms:ListKeyPolicies")
  return { PolicyNames = { "default" }, Truncated = false }
end

function M.GetKeyRotationStatus(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:GetKeyRotationStatus")
  local on = k.rotation and k.KeyState ~= "PendingDeletion"
  local period = on and k.RotationPeriodInDays or nil
  return { KeyId = k.Arn, KeyRotationEnabled = on, RotationPeriodInDays = period,
    NextRotationDate = on and (k.rotation_from or k.CreationDate) + period * keys.DAY or nil }
end

local function rotation(ctx, p, action, on)
  local k = key_for(ctx, p.KeyId, action)
  fail_if(ctx, access.usable(k))
  if k.KeyManager == "AWS" then
    ctx:fail("UnsupportedOperationException", "Rotation of AWS managed keys cannot be changed.")
  end
  k.rotation = on
  if on then
    k.RotationPeriodInDays = p.RotationPeriodInDays or 365
    k.rotation_from = ctx:now()
  end
  return {}
end

function M.EnableKeyRotation(ctx, p) return rotation(ctx, p, "kms:EnableKeyRotation", true) end
function M.DisableKeyRotation(ctx, p) return rotation(ctx, p, "kms:DisableKeyRotation", false) end

-- Aliases ---------------------------------------------------------------------------

local function check_alias_name(ctx, name)
  if name:sub(1, 6) ~= "alias/" or #name == 6 then
    ctx:fail("ValidationException", 'Alias must start with the prefix "alias/". Please see '
      .. "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
  end
  if name:sub(1, 10) == "alias/aws/" then
    ctx:fail("NotAuthorizedException", ("%s: the prefix alias/aws/ is reserved for AWS "
      .. "managed keys"):format(name))
  end
end

-- The customer managed key an alias may point at (key id or key ARN, not another alias).
local function alias_target(ctx, ref, action)
  if ref:match("^alias/") or ref:match("^arn:aws:kms:[^:]*:%d*:alias/") then
    ctx:fail("ValidationException", ("%s: an alias must point at a key id or key ARN, not "
      .. "an alias"):format(ref))
  end
  local k, db = key_for(ctx, ref, action)
  if k.AWSAccountId ~= ctx.account then
    ctx:fail("NotFoundException", ("Key '%s' does not exist"):format(k.Arn))
  end
  fail_if(ctx, access.not_pending(k))
  if k.KeyManager == "AWS" then
    ctx:fail("NotAuthorizedException", k.Arn .. " is an AWS managed key")
  end
  return k, db
end

function M.CreateAlias(ctx, p)
  check_alias_name(ctx, p.AliasName)
  local k, db = alias_target(ctx, p.TargetKeyId, "kms:CreateAlias")
  if db.aliases[p.AliasName] then
    ctx:fail("AlreadyExistsException", ("An alias with the name %s already exists")
      :format(keys.alias_arn(ctx.region, ctx.account, p.AliasName)))
  end
  local t = ctx:now()
  db.aliases[p.AliasName] = { AliasName = p.AliasName, TargetKeyId = k.KeyId, CreationDate = t,
    LastUpdatedDate = t }
  return {}
end

local function existing_alias(ctx, name)
  check_alias_name(ctx, name)
  local db = keys.db(ctx.sim, ctx.account, ctx.region)
  keys.purge(db, ctx:now())
  local a = db.aliases[name]
  if not a then
    ctx:fail("NotFoundException", ("Alias %s is not found.")
      :format(keys.alias_arn(ctx.region, ctx.account, name)))
  end
  return a, db
end

function M.UpdateAlias(ctx, p)
  local a = existing_alias(ctx, p.AliasName)
  local old = find(ctx, a.TargetKeyId)
  authorize(ctx, old, "kms:UpdateAlias")
  local k = alias_target(ctx, p.TargetKeyId, "kms:UpdateAlias")
  a.TargetKeyId, a.LastUpdatedDate = k.KeyId, ctx:now()
  return {}
end

function M.DeleteAlias(ctx, p)
  local a, db = existing_alias(ctx, p.AliasName)
  authorize(ctx, find(ctx, a.TargetKeyId), "kms:DeleteAlias")
  db.aliases[p.AliasName] = nil
  return {}
end

function M.ListAliases(ctx, p)
  local db = keys.db(ctx.sim, ctx.account, ctx.region)
  keys.purge(db, ctx:now())
  local only
  if p.KeyId then only = key_for(ctx, p.KeyId, "kms:ListAliases").KeyId end
  local names = {}
  for name, a in pairs(db.aliases) do
    if not only or a.TargetKeyId == only then names[#names + 1] = name end
  end
  -- AWS lists the aliases of AWS managed keys before their keys exist (without a target)
  if not only then
    for name in pairs(keys.MANAGED) do
      if not db.aliases[name] then names[#names + 1] = name end
    end
  end
  table.sort(names)
  local items = {}
  for _, name in ipairs(names) do
    local a = db.aliases[name] or { AliasName = name }
    items[#items + 1] = { AliasName = name, AliasArn = keys.alias_arn(ctx.region, ctx.account, name),
      TargetKeyId = a.TargetKeyId, CreationDate = a.CreationDate, LastUpdatedDate = a.LastUpdatedDate }
  end
  local out, marker = page(ctx, items, p)
  return { Aliases = out, NextMarker = marker, Truncated = marker ~= nil }
end

-- Tags ------------------------------------------------------------------------------

function M.TagResource(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:TagResource")
  fail_if(ctx, access.not_pending(k))
  check_tags(ctx, p.Tags)
  for _, t in ipairs(p.Tags) do
    local found = false
    for _, have in ipairs(k.Tags) do
      if have.TagKey == t.TagKey then have.TagValue, found = t.TagValue, true end
    end
    if not found then k.Tags[#k.Tags + 1] = { TagKey = t.TagKey, TagValue = t.TagValue } end
  end
  return {}
end

function M.UntagResource(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:UntagResource")
  fail_if(ctx, access.not_pending(k))
  local drop = {}
  for _, name in ipairs(p.TagKeys) do drop[name] = true end
  local kept = {}
  for _, t in ipairs(k.Tags) do
    if not drop[t.TagKey] then kept[#kept + 1] = t end
  end
  k.Tags = kept
  return {}
end

function M.ListResourceTags(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:ListResourceTags")
  local out, marker = page(ctx, records.copy(k.Tags), p)
  return { Tags = out, NextMarker = marker, Truncated = marker ~= nil }
end

-- Grants ----------------------------------------------------------------------------

local function grant_entry(k, g)
  return { KeyId = k.Arn, GrantId = g.GrantId, Name = g.Name, CreationDate = g.CreationDate,
    GranteePrincipal = g.GranteePrincipal, RetiringPrincipal = g.RetiringPrincipal,
    IssuingAccount = ("arn:aws:iam::%s:root"):format(k.AWSAccountId),
    Operations = records.copy(g.Operations), Constraints = records.copy(g.Constraints) }
end

local function same_grant(g, p)
  local function enc(v) return require("fo.json").encode(v or {}) end
  local ops = records.copy(p.Operations)
  local have = records.copy(g.Operations)
  table.sort(ops); table.sort(have)
  return g.GranteePrincipal == p.GranteePrincipal and g.RetiringPrincipal == p.RetiringPrincipal
    and enc(ops) == enc(have) and enc(g.Constraints) == enc(p.Constraints)
end

function M.CreateGrant(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:CreateGrant")
  fail_if(ctx, access.not_pending(k))
  if #p.Operations == 0 then
    ctx:fail("ValidationException", "A grant must allow at least one operation.")
  end
  dry_run(ctx, p)
  -- a grant of the same name and the same content is the same grant (CreateGrant is
  -- idempotent by name)
  for _, g in ipairs(k.grants) do
    if p.Name and g.Name == p.Name and same_grant(g, p) then
      return { GrantId = g.GrantId, GrantToken = g.token }
    end
  end
  local g = { GrantId = ctx:chars(64, "0123456789abcdef"), Name = p.Name,
    CreationDate = ctx:now(), GranteePrincipal = p.GranteePrincipal,
    RetiringPrincipal = p.RetiringPrincipal, Operations = records.copy(p.Operations),
    Constraints = records.copy(p.Constraints),
    token = "AQpAM2" .. ctx:chars(120, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") }
  k.grants[#k.grants + 1] = g
  return { GrantId = g.GrantId, GrantToken = g.token }
end

function M.ListGrants(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:ListGrants")
  local items = {}
  for _, g in ipairs(k.grants) do
    if (not p.GrantId or g.GrantId == p.GrantId)
        and (not p.GranteePrincipal or g.GranteePrincipal == p.GranteePrincipal) then
      items[#items + 1] = grant_entry(k, g)
    end
  end
  local out, marker = page(ctx, items, p)
  return { Grants = out, NextMarker = marker, Truncated = marker ~= nil }
end

-- The grants of the account's keys in this region that `RetiringPrincipal` may retire.
function M.ListRetirableGrants(ctx, p)
  local db = keys.db(ctx.sim, ctx.account, ctx.region)
  keys.purge(db, ctx:now())
  local items = {}
  for _, k in ipairs(keys.sorted(db)) do
    for _, g in ipairs(k.grants) do
      if g.RetiringPrincipal == p.RetiringPrincipal then items[#items + 1] = grant_entry(k, g) end
    end
  end
  local out, marker = page(ctx, items, p)
  return { Grants = out, NextMarker = marker, Truncated = marker ~= nil }
end

local function remove_grant(k, g)
  for i, x in ipairs(k.grants) do
    if x == g then table.remove(k.grants, i); return end
  end
end

local function grant_of(ctx, k, id)
  for _, g in ipairs(k.grants) do
    if g.GrantId == id then return g end
  end
  ctx:fail("NotFoundException", ("Grant ID %s not found"):format(id))
end

function M.RetireGrant(ctx, p)
  local k, g
  if p.GrantToken then
    local db = keys.db(ctx.sim, ctx.account, ctx.region)
    for _, key in pairs(db.keys) do
      for _, x in ipairs(key.grants) do
        if x.token == p.GrantToken then k, g = key, x end
      end
    end
    if not g then ctx:fail("InvalidGrantTokenException", "Invalid grant token.") end
  elseif p.KeyId and p.GrantId then
    k = find(ctx, p.KeyId)
    g = grant_of(ctx, k, p.GrantId)
  else
    ctx:fail("ValidationException", "Either GrantToken, or both GrantId and KeyId, must be "
      .. "specified.")
  end
  -- the retiring principal, the grantee when the grant allows RetireGrant, or whom the key
  -- policy allows kms:RetireGrant may retire a grant
  local who = principal(ctx)
  local may = g.RetiringPrincipal and policy.principal_is(g.RetiringPrincipal, who)
  if not may and policy.principal_is(g.GranteePrincipal, who) then
    for _, o in ipairs(g.Operations) do may = may or o == "RetireGrant" end
  end
  if not may then authorize(ctx, k, "kms:RetireGrant") end
  dry_run(ctx, p)
  remove_grant(k, g)
  return {}
end

function M.RevokeGrant(ctx, p)
  local k = key_for(ctx, p.KeyId, "kms:RevokeGrant")
  local g = grant_of(ctx, k, p.GrantId)
  dry_run(ctx, p)
  remove_grant(k, g)
  return {}
end

-- Cryptographic operations --------------------------------------------------------------

local function algorithm(ctx, a)
  if a and a ~= "SYMMETRIC_DEFAULT" then
    ctx:fail("InvalidKeyUsageException", ("The encryption algorithm %s is not compatible with "
      .. "a symmetric encryption key"):format(a))
  end
end

-- The key for a cryptographic `action` on `ref` with encryption `context`: usable, and the
-- caller allowed.
local function crypto_key(ctx, ref, action, context)
  local k = find(ctx, ref)
  fail_if(ctx, access.usable(k))
  authorize(ctx, k, action, context)
  return k
end

-- The key and plaintext of ciphertext `c` under `context`; `ref` (optional) must name the
-- key that made it.
local function open(ctx, c, context, ref, action)
  local arn = blob.key_arn(c)
  if not arn then ctx:fail("InvalidCiphertextException", "") end
  local k = keys.resolve(ctx, ctx.account, ctx.region, arn)
  if not k then ctx:fail("InvalidCiphertextException", "") end
  if ref then
    local want = find(ctx, ref)
    if want.Arn ~= k.Arn then
      ctx:fail("IncorrectKeyException", "The key ID in the request does not identify a CMK "
        .. "that can perform this operation.")
    end
  end
  fail_if(ctx, access.usable(k))
  authorize(ctx, k, action, context)
  local plain = blob.open(k, c, context)
  if not plain then ctx:fail("InvalidCiphertextException", "") end
  return k, plain
end

function M.Encrypt(ctx, p)
  algorithm(ctx, p.EncryptionAlgorithm)
  local k = crypto_key(ctx, p.KeyId, "kms:Encrypt", p.EncryptionContext)
  dry_run(ctx, p)
  return { CiphertextBlob = blob.seal(k, p.Plaintext, p.EncryptionContext), KeyId = k.Arn,
    EncryptionAlgorithm = "SYMMETRIC_DEFAULT" }
end

function M.Decrypt(ctx, p)
  algorithm(ctx, p.EncryptionAlgorithm)
  local k, plain = open(ctx, p.CiphertextBlob, p.EncryptionContext, p.KeyId, "kms:Decrypt")
  dry_run(ctx, p)
  return { KeyId = k.Arn, Plaintext = plain, EncryptionAlgorithm = "SYMMETRIC_DEFAULT" }
end

local function data_key(ctx, p, action)
  if (p.NumberOfBytes == nil) == (p.KeySpec == nil) then
    ctx:fail("ValidationException", "Please specify either number of bytes or key spec.")
  end
  local n = p.NumberOfBytes or (p.KeySpec == "AES_128" and 16 or 32)
  local k = crypto_key(ctx, p.KeyId, action, p.EncryptionContext)
  dry_run(ctx, p)
  local plain = crypto.random(n)
  return k, plain, blob.seal(k, plain, p.EncryptionContext)
end

function M.GenerateDataKey(ctx, p)
  local k, plain, c = data_key(ctx, p, "kms:GenerateDataKey")
  return { CiphertextBlob = c, Plaintext = plain, KeyId = k.Arn }
end

function M.GenerateDataKeyWithoutPlaintext(ctx, p)
  local k, _, c = data_key(ctx, p, "kms:GenerateDataKeyWithoutPlaintext")
  return { CiphertextBlob = c, KeyId = k.Arn }
end

function M.ReEncrypt(ctx, p)
  algorithm(ctx, p.SourceEncryptionAlgorithm)
  algorithm(ctx, p.DestinationEncryptionAlgorithm)
  local src, plain = open(ctx, p.CiphertextBlob, p.SourceEncryptionContext, p.SourceKeyId,
    "kms:ReEncryptFrom")
  local dst = crypto_key(ctx, p.DestinationKeyId, "kms:ReEncryptTo",
    p.DestinationEncryptionContext)
  dry_run(ctx, p)
  return { CiphertextBlob = blob.seal(dst, plain, p.DestinationEncryptionContext),
    SourceKeyId = src.Arn, KeyId = dst.Arn, SourceEncryptionAlgorithm = "SYMMETRIC_DEFAULT",
    DestinationEncryptionAlgorithm = "SYMMETRIC_DEFAULT" }
end

function M.GenerateRandom(ctx, p)
  return { Plaintext = crypto.random(p.NumberOfBytes or 32) }
end

return M
