-- IAM resource types: aws:iam:role, aws:iam:role_policy (inline), aws:iam:instance_profile.
--
-- AWS facts they keep (IAM API reference and user guide):
-- - IAM is global (its clients sign for us-east-1 whatever the resource's region) and
--   eventually consistent: a role or profile just created may be NoSuchEntity for a
--   moment (the "not_found_after_create" retry), and a new instance profile is not usable
--   by EC2 / Auto Scaling for up to minutes — their types retry that ("instance_profile").
--   Neither a new role nor a new profile is waited for: their creates read nothing of
--   them afterwards, and each call that names one retries while it is not there yet
--   (PutRolePolicy and AddRoleToInstanceProfile NoSuchEntity,
--   "not_found_after_create"; CreateFlowLogs "Unable to assume given IAM role",
--   "flow_log_role") — GetRole answering in IAM would say nothing about those services;
-- - role and instance profile names are unique in the account (regardless of case):
--   replaced delete-first, adopted by name + fo tags (the intent's fo:token included); a
--   name taken by a role or profile that is not this create's is a conflict; inline
--   policies are identified by role and policy name (PutRolePolicy is an upsert: a policy
--   of that name already on the role is a conflict, checked before the call);
-- - policy documents are JSON: given as a Lua table or a JSON text, compared by content
--   (IAM answers them URL-encoded and reformatted: decoded before comparing for drift);
-- - a role is deleted only when it has no inline or managed policies and no instance
--   profile holds it: those are their own resources (deleted first, as dependents); a
--   leftover made outside the stack gives a DeleteConflict error that names it.
local common = require "fo.aws.resources.common"

local M = {}

-- Instance profiles of this run's stack that a role's delete took the role out of (role
-- name, lower case → profile names): when the role is replaced under the same name (a path
-- change), the new role goes back into them at its create — the profile itself sees no
-- change to apply. In memory: after a crash in between, refresh reports the profile's
-- missing role as drift and the next apply puts it back.
local detached = {}

-- IAM is global: one client, whatever the resource's region.
local function iam(ctx) return ctx:client("iam", "us-east-1") end

local function not_found(fn)
  return common.unless({ "NoSuchEntity" }, fn)
end

-- Names of roles, profiles, inline policies: [\w+=,.@-], 1..max characters.
local function name_check(max)
  return function(v)
    if #v < 1 or #v > max then return false, ("%q: 1 to %d characters"):format(v, max) end
    if not v:match("^[%w_+=,.@%-]+$") then
      return false, ("%q: only letters, digits and _+=,.@- (IAM's [\\w+=,.@-])"):format(v)
    end
    return true
  end
end

local function path_check(v)
  if v == "/" or (v:match("^/[\33-\126]+/$") and #v <= 512) then return true end
  return false, ("%q: a path is / or /text/ (ASCII, at most 512 characters)"):format(v)
end

local function document_check(v)
  if type(v) == "table" then return true end
  if type(v) == "string" then
    if require("cjson.safe").decode(v) == nil then return false, "not valid JSON" end
    return true
  end
  return false, "a policy document is a Lua table or a JSON text"
end

-- The document as IAM answers it (URL-encoded JSON) in the declared form when the content
-- is the same.
local function observed_document(encoded, declared)
  return common.as_recorded(common.url_decode(encoded), declared, common.json_equal)
end

-- aws:iam:role ---------------------------------------------------------------------------------

local function profile_roles(ip)
  local out = {}
  for _, r in ipairs(ip and ip.Roles or {}) do out[#out + 1] = r.RoleName end
  return out
end

local function get_profile(ctx, name)
  local out = not_found(function() return iam(ctx):GetInstanceProfile{ InstanceProfileName = name } end)
  return out and out.InstanceProfile
end


local function role_outputs(r)
  return { arn = r.Arn, name = r.RoleName, id = r.RoleId }
end

local function get_role(ctx, name)
  local out = not_found(function() return iam(ctx):GetRole{ RoleName = name } end)
  return out and out.Role
end

-- What keeps a role from being deleted, as text ("" when nothing is found).
local function role_leftovers(ctx, name)
  local c = iam(ctx)
  local parts = {}
  local ok, out = pcall(function()
    local inline = {}
    for n in c:items("ListRolePolicies", { RoleName = name }) do inline[#inline + 1] = n end
    local managed = {}
    for a in c:items("ListAttachedRolePolicies", { RoleName = name }) do managed[#managed + 1] = a.PolicyArn end
    local profiles = {}
    for ip in c:items("ListInstanceProfilesForRole", { RoleName = name }) do
      profiles[#profiles + 1] = ip.InstanceProfileName
    end
    return { inline, managed, profiles }
  end)
  if not ok then return "" end
  local labels = { "inline policies", "managed policies attached", "instance profiles holding it" }
  for i, list in ipairs(out) do
    if #list > 0 then parts[#parts + 1] = labels[i] .. ": " .. table.concat(list, ", ") end
  end
  return table.concat(parts, "; ")
end

fo.type("aws:iam:role", {
  doc = "an IAM role (name-unique in the account: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = name_check(64) },
      path = { type = "string", default = "/", check = path_check },
      assume_role_policy = { type = "any", required = true, check = document_check },
      description = { type = "string", default = "" },
      max_session_duration = { type = "integer", default = 3600, check = function(v)
        return v >= 3600 and v <= 43200, "3600 to 43200 seconds" end },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name", "id" },
    replace_on = { "name", "path" },
    delete_first = true,
  },
  diff = common.diff({ "name", "path" }, { assume_role_policy = common.json_equal }),
  create = function(ctx, p)
    local c = iam(ctx)
    local ok, out = pcall(c.CreateRole, c, { RoleName = p.name, Path = p.path,
      AssumeRolePolicyDocument = common.json_text(p.assume_role_policy),
      Description = p.description ~= "" and p.description or nil,
      MaxSessionDuration = p.max_session_duration, Tags = common.tag_list(ctx, p.tags) })
    local r
    if ok then
      r = out.Role
    else
      if not common.is(out, "EntityAlreadyExists") then error(out, 0) end
      -- a retried call of this create made it (its token); any other role is a conflict
      r = get_role(ctx, p.name)
      if not r then error(out, 0) end
      common.claim(ctx, ("an IAM role named %q (names are unique in the account)"):format(p.name),
        r.Arn, r.Tags)
    end
    common.made(c, p.name:lower()) -- (its inline policies need no read first: fresh_slot)
    local key = ctx.stack .. "\0" .. p.name:lower()
    for _, profile in ipairs(detached[key] or {}) do
      local ip = get_profile(ctx, profile)
      if ip and #profile_roles(ip) == 0 then
        ctx:info("putting role %s back into instance profile %s", p.name, profile)
        common.retry(ctx, "not_found_after_create", function()
          return c:AddRoleToInstanceProfile{ InstanceProfileName = profile, RoleName = p.name }
        end)
      end
    end
    detached[key] = nil
    return r.RoleName, role_outputs(r)
  end,
  read = function(ctx, name, props)
    local r = get_role(ctx, name)
    if not r then return nil end
    return role_outputs(r), {
      name = r.RoleName, path = r.Path, description = r.Description or "",
      max_session_duration = r.MaxSessionDuration,
      assume_role_policy = observed_document(r.AssumeRolePolicyDocument, props.assume_role_policy),
      tags = common.user_tags(r.Tags),
    }
  end,
  update = function(ctx, name, old, new, outputs)
    local c = iam(ctx)
    if old.description ~= new.description or old.max_session_duration ~= new.max_session_duration then
      c:UpdateRole{ RoleName = name, Description = new.description,
        MaxSessionDuration = new.max_session_duration }
    end
    if not common.json_equal(old.assume_role_policy, new.assume_role_policy) then
      c:UpdateAssumeRolePolicy{ RoleName = name, PolicyDocument = common.json_text(new.assume_role_policy) }
    end
    local set, del = common.tag_delta(old.tags, new.tags)
    if #set > 0 then c:TagRole{ RoleName = name, Tags = set } end
    if #del > 0 then c:UntagRole{ RoleName = name, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, name)
    local c = iam(ctx)
    -- When the role is replaced (delete-first: the name is unique), an instance profile of
    -- this stack that holds it is updated in place only after the new role exists, so the
    -- old role comes out of it here; the profile's update puts the new one in.
    local held = not_found(function()
      local out = {}
      for ip in c:items("ListInstanceProfilesForRole", { RoleName = name }) do out[#out + 1] = ip end
      return out
    end)
    for _, ip in ipairs(held or {}) do
      local full = get_profile(ctx, ip.InstanceProfileName)
      local tags = full and full.Tags or {}
      local stack
      for _, t in ipairs(tags or {}) do if t.Key == "fo:stack" then stack = t.Value end end
      if stack == ctx.stack then
        ctx:info("taking role %s out of instance profile %s (of this stack) before deleting it",
          name, ip.InstanceProfileName)
        not_found(function()
          return c:RemoveRoleFromInstanceProfile{ InstanceProfileName = ip.InstanceProfileName, RoleName = name }
        end)
        local key = ctx.stack .. "\0" .. name:lower()
        detached[key] = detached[key] or {}
        table.insert(detached[key], ip.InstanceProfileName)
      end
    end
    local ok, err = pcall(c.DeleteRole, c, { RoleName = name })
    if ok or common.is(err, "NoSuchEntity") then return end
    if common.is(err, "DeleteConflict") then
      local left = role_leftovers(ctx, name)
      error(("IAM role %s cannot be deleted: %s. fo deletes only what the stack declares "
        .. "(its aws:iam:role_policy and aws:iam:instance_profile resources go first); remove "
        .. "what was added outside the stack, or declare it, then run again")
        :format(name, left ~= "" and left or tostring(err.message)), 0)
    end
    error(err, 0)
  end,
  adopt = function(ctx, p)
    local r = get_role(ctx, p.name)
    if r and not ctx.known_ids[r.RoleName] and ctx:owns(r.Tags or {}) then
      return r.RoleName, role_outputs(r)
    end
    return nil
  end,
})

-- aws:iam:role_policy --------------------------------------------------------------------------

local function policy_id(role, name) return role .. ":" .. name end

local function get_role_policy(ctx, role, name)
  return not_found(function()
    return iam(ctx):GetRolePolicy{ RoleName = role, PolicyName = name }
  end)
end

local function put_role_policy(ctx, p)
  -- the role may be a moment old: NoSuchEntity is retried
  common.retry(ctx, "not_found_after_create", function()
    return iam(ctx):PutRolePolicy{ RoleName = p.role_name, PolicyName = p.policy_name,
      PolicyDocument = common.json_text(p.policy_document) }
  end)
end

local function role_policy_outputs(p)
  return { id = policy_id(p.role_name, p.policy_name), name = p.policy_name, role_name = p.role_name }
end

fo.type("aws:iam:role_policy", {
  doc = "an inline policy of an IAM role (PutRolePolicy: an upsert)",
  schema = {
    properties = {
      role_name = { type = "string", required = true },
      policy_name = { type = "string", required = true, check = name_check(128) },
      policy_document = { type = "any", required = true, check = document_check },
    },
    outputs = { "id", "name", "role_name" },
    replace_on = { "role_name", "policy_name" },
  },
  diff = common.diff({ "role_name", "policy_name" }, { policy_document = common.json_equal }),
  create = function(ctx, p)
    -- PutRolePolicy would overwrite a policy of that name: one there is not this create's
    -- (inline policies carry no tags; after a crash, adopt takes the interrupted one)
    -- (a role just created may not be visible yet: it has no policy then). A role this
    -- run created holds only the policies this run put in it: no read (common.fresh_slot;
    -- names compared without case, as IAM compares role names).
    if not common.fresh_slot(iam(ctx), p.role_name:lower(), p.policy_name:lower())
        and get_role_policy(ctx, p.role_name, p.policy_name) then
      common.conflict(ctx, ("an inline policy %q of IAM role %q"):format(p.policy_name,
        p.role_name), policy_id(p.role_name, p.policy_name))
    end
    put_role_policy(ctx, p)
    return policy_id(p.role_name, p.policy_name), role_policy_outputs(p)
  end,
  read = function(ctx, id, props)
    local out = get_role_policy(ctx, props.role_name, props.policy_name)
    if not out then return nil end
    return role_policy_outputs(props), {
      role_name = out.RoleName, policy_name = out.PolicyName,
      policy_document = observed_document(out.PolicyDocument, props.policy_document),
    }
  end,
  update = function(ctx, id, old, new, outputs)
    put_role_policy(ctx, new)
    return outputs
  end,
  delete = function(ctx, id, props)
    not_found(function()
      return iam(ctx):DeleteRolePolicy{ RoleName = props.role_name, PolicyName = props.policy_name }
    end)
  end,
  adopt = function(ctx, p)
    -- role and policy name are the identity (inline policies carry no tags)
    local id = policy_id(p.role_name, p.policy_name)
    if not ctx.known_ids[id] and get_role_policy(ctx, p.role_name, p.policy_name) then
      return id, role_policy_outputs(p)
    end
    return nil
  end,
})

-- aws:iam:instance_profile ---------------------------------------------------------------------

local function profile_outputs(ip)
  return { arn = ip.Arn, name = ip.InstanceProfileName, id = ip.InstanceProfileId }
end

-- Puts role `role` (nil: none) in the profile, taking out any other first (a profile
-- holds at most one role). `ip`: the profile as just read, if it was.
local function set_profile_role(ctx, name, role, ip)
  local c = iam(ctx)
  if role == "" then role = nil end
  ip = ip or common.retry(ctx, "not_found_after_create", function()
    return c:GetInstanceProfile{ InstanceProfileName = name }
  end).InstanceProfile
  local has = false
  for _, r in ipairs(profile_roles(ip)) do
    if role ~= nil and r:lower() == role:lower() then has = true
    else
      not_found(function() return c:RemoveRoleFromInstanceProfile{ InstanceProfileName = name, RoleName = r } end)
    end
  end
  if role ~= nil and not has then
    common.retry(ctx, "not_found_after_create", function()
      return c:AddRoleToInstanceProfile{ InstanceProfileName = name, RoleName = role }
    end)
  end
end

fo.type("aws:iam:instance_profile", {
  doc = "an IAM instance profile holding a role (name-unique: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = name_check(128) },
      path = { type = "string", default = "/", check = path_check },
      role_name = { type = "string" },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name", "id" },
    replace_on = { "name", "path" },
    delete_first = true,
  },
  create = function(ctx, p)
    local c = iam(ctx)
    local ok, out = pcall(c.CreateInstanceProfile, c, { InstanceProfileName = p.name, Path = p.path,
      Tags = common.tag_list(ctx, p.tags) })
    local ip
    if ok then
      ip = out.InstanceProfile
    else
      if not common.is(out, "EntityAlreadyExists") then error(out, 0) end
      ip = get_profile(ctx, p.name)
      if not ip then error(out, 0) end
      common.claim(ctx, ("an IAM instance profile named %q (names are unique in the account)")
        :format(p.name), ip.Arn, ip.Tags)
    end
    -- The answer (or the claimed profile, read above) says which roles it holds: a new one
    -- none. No wait until IAM lists it: AddRoleToInstanceProfile retries while it answers
    -- NoSuchEntity, and the launch templates and Auto Scaling groups that use the profile
    -- retry until EC2 can ("instance_profile"), which IAM listing it would not tell.
    set_profile_role(ctx, p.name, p.role_name, ip)
    return ip.InstanceProfileName, profile_outputs(ip)
  end,
  read = function(ctx, name, props)
    local ip = get_profile(ctx, name)
    if not ip then return nil end
    -- a declared role that is gone is reported as "" (nil would mean "not observed")
    local role = profile_roles(ip)[1]
    if role == nil and props.role_name ~= nil then role = "" end
    return profile_outputs(ip), { name = ip.InstanceProfileName, path = ip.Path,
      role_name = role, tags = common.user_tags(ip.Tags) }
  end,
  update = function(ctx, name, old, new, outputs)
    local c = iam(ctx)
    if old.role_name ~= new.role_name then set_profile_role(ctx, name, new.role_name) end
    local set, del = common.tag_delta(old.tags, new.tags)
    if #set > 0 then c:TagInstanceProfile{ InstanceProfileName = name, Tags = set } end
    if #del > 0 then c:UntagInstanceProfile{ InstanceProfileName = name, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, name)
    local c = iam(ctx)
    local ip = get_profile(ctx, name)
    if not ip then return end
    -- a profile is deleted empty: its role comes out first
    for _, r in ipairs(profile_roles(ip)) do
      not_found(function() return c:RemoveRoleFromInstanceProfile{ InstanceProfileName = name, RoleName = r } end)
    end
    not_found(function() return c:DeleteInstanceProfile{ InstanceProfileName = name } end)
  end,
  adopt = function(ctx, p)
    local ip = get_profile(ctx, p.name)
    if ip and not ctx.known_ids[ip.InstanceProfileName] and ctx:owns(ip.Tags or {}) then
      return ip.InstanceProfileName, profile_outputs(ip)
    end
    return nil
  end,
})

return M
