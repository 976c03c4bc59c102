-- KMS resource types: aws:kms:key (a symmetric encryption key) and aws:kms:alias.
--
-- Facts this file relies on (KMS API reference and developer guide):
-- - CreateKey is not idempotent: every call makes a new key. Tags go in the create call
--   (TagKey/TagValue), fo:token among them, so adoption after a crash finds the key this
--   create made by its tags (ListKeys, ListResourceTags) and nothing else.
-- - Without a Policy, KMS gives the key its default policy (the account root may do kms:*,
--   so the account's IAM policies decide). A policy that would lock the caller out is refused
--   (MalformedPolicyDocumentException) unless BypassPolicyLockoutSafetyCheck, which fo never
--   sets on its own.
-- - A key is never deleted at once: ScheduleKeyDeletion waits PendingWindowInDays (7–30,
--   default 30) with the key in PendingDeletion, usable by nothing, and CancelKeyDeletion
--   brings it back (disabled). fo schedules the deletion with the declared window and treats
--   a key pending deletion as gone; it schedules only a key whose tags say this stack's
--   create made it.
-- - Alias names start with alias/; alias/aws/ is AWS's. An alias names one key of its
--   account and region; UpdateAlias moves it. Aliases carry no tags.
local common = require "fo.aws.resources.common"

local M = {}

local function kms(ctx) return ctx:client("kms") end

-- fo's and the user's tags in KMS's shape.
local function kms_tags(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = { TagKey = t.Key, TagValue = t.Value } end
  return out
end

local function tags_of(ctx, key_id)
  local c = kms(ctx)
  local out = common.unless({ "NotFoundException" }, c.ListResourceTags, c, { KeyId = key_id })
  local list = {}
  for i, t in ipairs(out and out.Tags or {}) do list[i] = { Key = t.TagKey, Value = t.TagValue } end
  return list, out ~= nil
end

-- The key's metadata, or nil when it is gone or pending deletion (as good as gone).
local function describe(ctx, key_id)
  local c = kms(ctx)
  local out = common.unless({ "NotFoundException" }, c.DescribeKey, c, { KeyId = key_id })
  local md = out and out.KeyMetadata
  if not md or md.KeyState == "PendingDeletion" or md.KeyState == "PendingReplicaDeletion" then
    return nil
  end
  return md
end

local function key_outputs(md) return { key_id = md.KeyId, arn = md.Arn } end

local function set_rotation(ctx, key_id, on, days)
  local c = kms(ctx)
  if on then
    c:EnableKeyRotation{ KeyId = key_id, RotationPeriodInDays = days }
  else
    c:DisableKeyRotation{ KeyId = key_id }
  end
end

local function check_window(v)
  return math.type(v) == "integer" and v >= 7 and v <= 30, "a whole number of days, 7 to 30"
end

fo.type("aws:kms:key", {
  doc = "a KMS symmetric encryption key (deleting it schedules its deletion after "
    .. "deletion_window_in_days)",
  schema = {
    properties = {
      description = { type = "string", default = "" },
      -- the key policy: a Lua table (written as JSON) or JSON text; absent = KMS's default
      -- policy (the account's IAM policies decide)
      policy = { type = "any", check = function(v)
        return type(v) == "table" or type(v) == "string", "a table or JSON text"
      end },
      enable_key_rotation = { type = "boolean", default = true },
      rotation_period_in_days = { type = "integer", default = 365, check = function(v)
        return v >= 90 and v <= 2560, "90 to 2560 days"
      end },
      deletion_window_in_days = { type = "integer", default = 30, check = check_window },
      tags = { type = "map", default = {} },
    },
    outputs = { "key_id", "arn" },
  },
  diff = common.diff({}, { policy = common.json_equal }),
  create = function(ctx, p)
    local c = kms(ctx)
    local md = c:CreateKey{ Description = p.description, KeySpec = "SYMMETRIC_DEFAULT",
      KeyUsage = "ENCRYPT_DECRYPT", Policy = p.policy and common.json_text(p.policy) or nil,
      Tags = kms_tags(common.tag_list(ctx, p.tags)) }.KeyMetadata
    if p.enable_key_rotation then
      common.retry(ctx, "not_found_after_create", set_rotation, ctx, md.KeyId, true,
        p.rotation_period_in_days)
    end
    return md.KeyId, key_outputs(md)
  end,
  read = function(ctx, key_id, props)
    local c = kms(ctx)
    -- the key, its rotation, tags and policy read at once (none depends on another)
    local md, r = common.read_at_once(function() return describe(ctx, key_id) end, {
      function() return c:GetKeyRotationStatus{ KeyId = key_id } end,
      function() return (tags_of(ctx, key_id)) end,
      function() return props.policy ~= nil and c:GetKeyPolicy{ KeyId = key_id }.Policy end,
    })
    if not md then return nil end
    local rot = r[1]
    local observed = {
      description = md.Description or "",
      enable_key_rotation = rot.KeyRotationEnabled == true,
      rotation_period_in_days = rot.KeyRotationEnabled and rot.RotationPeriodInDays
        or props.rotation_period_in_days,
      -- used only when the key is deleted: nothing on AWS to compare
      deletion_window_in_days = props.deletion_window_in_days,
      tags = common.user_tags(r[2]),
    }
    if props.policy ~= nil then
      observed.policy = common.as_recorded(r[3], props.policy, common.json_equal)
    end
    return key_outputs(md), observed
  end,
  update = function(ctx, key_id, old, new, outputs)
    local c = kms(ctx)
    if old.description ~= new.description then
      c:UpdateKeyDescription{ KeyId = key_id, Description = new.description }
    end
    if new.policy ~= nil and not common.json_equal(old.policy, new.policy) then
      c:PutKeyPolicy{ KeyId = key_id, PolicyName = "default", Policy = common.json_text(new.policy) }
    end
    if old.enable_key_rotation ~= new.enable_key_rotation
        or (new.enable_key_rotation and old.rotation_period_in_days ~= new.rotation_period_in_days) then
      set_rotation(ctx, key_id, new.enable_key_rotation, new.rotation_period_in_days)
    end
    local set, del = common.tag_delta(old.tags, new.tags)
    if #set > 0 then c:TagResource{ KeyId = key_id, Tags = kms_tags(set) } end
    if #del > 0 then c:UntagResource{ KeyId = key_id, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, key_id, props)
    if not describe(ctx, key_id) then return end -- gone, or its deletion is already scheduled
    local tags = tags_of(ctx, key_id)
    if not ctx:owns(tags) then
      error(("KMS key %s in %s does not carry this stack's tags (fo:stack, fo:name, fo:token): "
        .. "fo schedules the deletion only of keys its own create made. Check the key, then "
        .. "remove it from the state or schedule its deletion yourself"):format(key_id,
        ctx.region), 0)
    end
    local c = kms(ctx)
    local ok, err = pcall(c.ScheduleKeyDeletion, c, { KeyId = key_id,
      PendingWindowInDays = props and props.deletion_window_in_days or 30 })
    if not ok and not common.is(err, "NotFoundException", "KMSInvalidStateException") then
      error(err, 0)
    end
  end,
  adopt = function(ctx)
    for k in kms(ctx):items("ListKeys") do
      if not ctx.known_ids[k.KeyId] then
        local tags = tags_of(ctx, k.KeyId)
        if ctx:owns(tags) then
          local md = describe(ctx, k.KeyId)
          if md then return md.KeyId, key_outputs(md) end
        end
      end
    end
    return nil
  end,
})

-- aws:kms:alias ----------------------------------------------------------------------------

local function find_alias(ctx, name)
  for a in kms(ctx):items("ListAliases") do
    if a.AliasName == name then return a end
  end
  return nil
end

-- "1234abcd-…" from a key id or key ARN.
local function key_id_of(ref)
  return (tostring(ref):match("^arn:aws[%w-]*:kms:[^:]*:%d*:key/(.+)$") or ref)
end

local function alias_outputs(a)
  return { name = a.AliasName, arn = a.AliasArn, target_key_id = a.TargetKeyId }
end

fo.type("aws:kms:alias", {
  doc = "a KMS alias (alias/<name>) naming a key of its region",
  schema = {
    properties = {
      name = { type = "string", required = true, check = function(v)
        return v:match("^alias/[%w/_%-]+$") ~= nil and v:sub(1, 10) ~= "alias/aws/"
          and #v <= 256, "alias/ then letters, digits, /, _ and - (alias/aws/ is AWS's)"
      end },
      -- the key's id or ARN (an aws:kms:key's key_id or arn)
      target_key_id = { type = "string", required = true },
    },
    outputs = { "name", "arn", "target_key_id" },
    mutable_outputs = { "target_key_id" },
    replace_on = { "name" },
  },
  diff = common.diff({ "name" }, { target_key_id = function(a, b)
    return key_id_of(a) == key_id_of(b)
  end }),
  create = function(ctx, p)
    local c = kms(ctx)
    local ok, err = pcall(c.CreateAlias, c, { AliasName = p.name, TargetKeyId = p.target_key_id })
    if not ok then
      if not common.is(err, "AlreadyExistsException") then error(err, 0) end
      -- a retried call of this create made it only if it names the declared key; aliases
      -- carry no tags, so anything else is someone else's
      local a = find_alias(ctx, p.name)
      if not a or a.TargetKeyId ~= key_id_of(p.target_key_id) then
        common.conflict(ctx, ("a KMS alias named %q in %s"):format(p.name, ctx.region),
          a and a.AliasArn or p.name, nil)
      end
    end
    -- CreateAlias answers nothing: the outputs are the alias's ARN in its documented form
    -- (arn:<partition>:kms:<region>:<account>:alias/<name>, the key's account: an alias names
    -- a key of its own account and region) and the key named, not read back
    local arn = ctx:arn("kms", p.name)
    if arn then
      return p.name, { name = p.name, arn = arn, target_key_id = key_id_of(p.target_key_id) }
    end
    local a = common.retry(ctx, "not_found_after_create", function()
      local found = find_alias(ctx, p.name)
      if not found then
        error(require("fo.aws.error").new{ code = "NotFoundException", message = p.name
          .. " is not listed yet" }, 0)
      end
      return found
    end)
    return p.name, alias_outputs(a)
  end,
  read = function(ctx, name, props)
    local a = find_alias(ctx, name)
    if not a or not a.TargetKeyId then return nil end
    local target = a.TargetKeyId
    if key_id_of(props.target_key_id) == target then target = props.target_key_id end
    return alias_outputs(a), { name = name, target_key_id = target }
  end,
  update = function(ctx, name, _, new)
    local c = kms(ctx)
    c:UpdateAlias{ AliasName = name, TargetKeyId = new.target_key_id }
    return alias_outputs(find_alias(ctx, name))
  end,
  delete = function(ctx, name)
    local c = kms(ctx)
    common.unless({ "NotFoundException" }, c.DeleteAlias, c, { AliasName = name })
  end,
  adopt = function(ctx, p)
    if ctx.known_ids[p.name] then return nil end
    local a = find_alias(ctx, p.name)
    if a and a.TargetKeyId == key_id_of(p.target_key_id) then return p.name, alias_outputs(a) end
    return nil
  end,
})

return M
