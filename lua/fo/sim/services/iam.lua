-- IAM for the simulator: roles (trust policy, inline and attached managed policies,
-- tags) and instance profiles, with IAM's names, ids, ARNs, error codes and paging.
-- IAM is global: ctx.db is the account's "global" state, ARNs have no region.
--
-- State (ctx.db): roles[<lower-case name>] and instance_profiles[<lower-case name>]
-- (IAM names are unique regardless of case). Other services may read them:
--   ctx:db_of("iam").instance_profiles[name:lower()] =
--     { InstanceProfileName=, InstanceProfileId=, Arn=, Path=, CreateDate=,
--       created_at = <virtual time of CreateInstanceProfile, seconds, fractions kept>,
--       roles = { <role name> } (at most one),
--       role_added_at = <virtual time the role was added, nil when none>, tags = {...} }
-- created_at/role_added_at let EC2 and Auto Scaling model AWS's propagation delay: a
-- profile used within seconds of its creation (or of getting its role) is refused with
-- InvalidParameterValue "Invalid IAM Instance Profile name" on AWS.
local records = require "fo.sim.records"

local M = {}

M.MAX_TAGS = 50
M.MAX_ATTACHED = 10          -- managed policies per role (default quota)
M.MAX_INLINE_BYTES = 10240   -- all inline policies of a role together
M.MAX_TRUST_BYTES = 2048     -- a trust policy (ACLSizePerRole)
M.DEFAULT_MAX_ITEMS = 100

-- AWS-managed policies the simulator knows (ARN → path); attaching any other
-- arn:aws:iam::aws:policy/... answers NoSuchEntity, as AWS does for a policy that does not
-- exist.
M.AWS_MANAGED = {
  AmazonSSMManagedInstanceCore = "/",
  CloudWatchAgentServerPolicy = "/",
  AmazonEC2RoleforSSM = "/service-role/",
  AmazonDynamoDBFullAccess = "/",
  AmazonDynamoDBReadOnlyAccess = "/",
  CloudWatchLogsFullAccess = "/",
  AmazonS3ReadOnlyAccess = "/",
  ReadOnlyAccess = "/",
  ViewOnlyAccess = "/job-function/",
  AdministratorAccess = "/",
}

local function fail(ctx, code, msg, status) ctx:fail(code, msg, status) end
local function no_such(ctx, msg) fail(ctx, "NoSuchEntity", msg, 404) end

-- Model patterns the codec does not check (it checks lengths, types, enums): AWS answers
-- ValidationError with the constraint, like its other model checks.
local function pattern_error(ctx, value, member, pattern)
  fail(ctx, "ValidationError", ("1 validation error detected: Value '%s' at '%s' failed to "
    .. "satisfy constraint: Member must satisfy regular expression pattern: %s")
    :format(value, member, pattern))
end

local function check_name(ctx, value, member)
  if not value:match("^[%w_+=,.@%-]+$") then
    pattern_error(ctx, value, member, "[\\w+=,.@-]+")
  end
end

local function check_path(ctx, path, member)
  if path ~= "/" and not (path:match("^/[\33-\127]+/$")) then
    pattern_error(ctx, path, member or "path", "(\\u002F)|(\\u002F[\\u0021-\\u007F]+\\u002F)")
  end
end

-- Percent-encodes a policy document as IAM returns it (every byte except RFC 3986's
-- unreserved characters): the AWS CLI and SDKs decode it again.
local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end
M.url_encode = url_encode

-- Policy documents ------------------------------------------------------------------------

local function as_list(v)
  if type(v) == "table" and v[1] ~= nil then return v end
  if v == nil then return {} end
  return { v }
end

--- Checks a policy document as IAM does; kind = "trust" (AssumeRolePolicyDocument) or
--- "identity" (inline policy). Raises MalformedPolicyDocument with IAM's messages.
local function check_policy(ctx, text, kind)
  local function malformed(msg) fail(ctx, "MalformedPolicyDocument", msg, 400) end
  local ok, doc = pcall(require("cjson.safe").decode, text)
  if not ok or type(doc) ~= "table" or doc[1] ~= nil or next(doc) == nil and text:match("^%s*%[") then
    malformed("Syntax errors in policy.")
  end
  if doc.Version ~= nil and doc.Version ~= "2012-10-17" and doc.Version ~= "2008-10-17" then
    malformed("The policy failed legacy parsing")
  end
  if doc.Statement == nil then malformed("Missing required field Statement") end
  local statements = as_list(doc.Statement)
  if #statements == 0 then malformed("Syntax errors in policy.") end
  for _, st in ipairs(statements) do
    if type(st) ~= "table" then malformed("Syntax errors in policy.") end
    if st.Effect ~= "Allow" and st.Effect ~= "Deny" then
      if st.Effect == nil then malformed("Missing required field Effect") end
      malformed("Invalid effect: " .. tostring(st.Effect))
    end
    if st.Action == nil and st.NotAction == nil then
      malformed("Policy statement must contain actions.")
    end
    if kind == "trust" then
      if st.Principal == nil and st.NotPrincipal == nil then
        malformed("AssumeRolePolicy policy: Missing required field Principal")
      end
      if st.Resource ~= nil or st.NotResource ~= nil then
        malformed("Has prohibited field Resource")
      end
    else
      if st.Principal ~= nil or st.NotPrincipal ~= nil then
        malformed("Policy document should not specify a principal.")
      end
      if st.Resource == nil and st.NotResource == nil then
        malformed("Policy statement must contain resources.")
      end
    end
  end
end

-- Records and their output shapes ---------------------------------------------------------

local function roles(ctx)
  ctx.db.roles = ctx.db.roles or {}
  return ctx.db.roles
end

local function profiles(ctx)
  ctx.db.instance_profiles = ctx.db.instance_profiles or {}
  return ctx.db.instance_profiles
end

local function role_or_fail(ctx, name)
  local r = roles(ctx)[name:lower()]
  if not r then no_such(ctx, ("The role with name %s cannot be found."):format(name)) end
  return r
end

-- The role `name` for a call that names it; inside the consistency window of its create
-- (knob consistency_ms) NoSuchEntity, as AWS answers any call naming a role created a
-- moment ago.
local function visible_role(ctx, name)
  local r = role_or_fail(ctx, name)
  if ctx:fresh(r) then no_such(ctx, ("The role with name %s cannot be found."):format(name)) end
  return r
end

local function profile_or_fail(ctx, name)
  local ip = profiles(ctx)[name:lower()]
  if not ip then no_such(ctx, ("Instance Profile %s cannot be found."):format(name)) end
  return ip
end

local function copy_tags(tags)
  local out = {}
  for i, t in ipairs(tags or {}) do out[i] = { Key = t.Key, Value = t.Value } end
  return out
end

-- The Role shape. opts.tags: include Tags (GetRole, CreateRole); opts.last_used:
-- include RoleLastUsed (GetRole answers it, empty for a role never used).
local function role_out(r, opts)
  opts = opts or {}
  local out = {
    Path = r.Path, RoleName = r.RoleName, RoleId = r.RoleId, Arn = r.Arn,
    CreateDate = r.CreateDate, AssumeRolePolicyDocument = url_encode(r.AssumeRolePolicyDocument),
    Description = r.Description, MaxSessionDuration = r.MaxSessionDuration,
  }
  if opts.tags and #r.tags > 0 then out.Tags = copy_tags(r.tags) end
  if opts.last_used then out.RoleLastUsed = {} end
  return out
end

local function profile_out(ctx, ip, with_tags)
  local rs = {}
  for _, name in ipairs(ip.roles) do
    local r = roles(ctx)[name:lower()]
    if r then rs[#rs + 1] = role_out(r) end
  end
  local out = { Path = ip.Path, InstanceProfileName = ip.InstanceProfileName,
    InstanceProfileId = ip.InstanceProfileId, Arn = ip.Arn, CreateDate = ip.CreateDate,
    Roles = rs }
  if with_tags and #ip.tags > 0 then out.Tags = copy_tags(ip.tags) end
  return out
end

-- Paging: Marker is the position of the next item, opaque to callers.
local function page(ctx, list, p)
  local out, nxt = records.page(list, p.Marker, "fo-sim-marker-",
    p.MaxItems or M.DEFAULT_MAX_ITEMS)
  if not out then fail(ctx, "ValidationError", "Invalid Marker.") end
  return out, nxt ~= nil, nxt
end

-- Tags ------------------------------------------------------------------------------------

-- Merges `new` into the tag list `tags` (keys compare regardless of case, as IAM's do).
local function merge_tags(ctx, tags, new)
  local seen = {}
  for _, t in ipairs(new) do
    local k = t.Key:lower()
    if seen[k] then
      fail(ctx, "InvalidInput", "Duplicate tag keys found. Please note that Tag keys are case "
        .. "insensitive.")
    end
    seen[k] = true
    if k:sub(1, 4) == "aws:" then
      fail(ctx, "InvalidInput", "User-provided tag keys cannot begin with the reserved prefix "
        .. "'aws:'.")
    end
  end
  local out = copy_tags(tags)
  for _, t in ipairs(new) do
    local found = false
    for _, x in ipairs(out) do
      if x.Key:lower() == t.Key:lower() then x.Key, x.Value, found = t.Key, t.Value, true end
    end
    if not found then out[#out + 1] = { Key = t.Key, Value = t.Value } end
  end
  if #out > M.MAX_TAGS then
    fail(ctx, "LimitExceeded", "The number of tags has reached the maximum limit.", 409)
  end
  return out
end

local function remove_tags(tags, keys)
  local drop = {}
  for _, k in ipairs(keys) do drop[k:lower()] = true end
  local out = {}
  for _, t in ipairs(tags) do if not drop[t.Key:lower()] then out[#out + 1] = t end end
  return out
end

-- Roles -------------------------------------------------------------------------------------

local function check_trust(ctx, doc)
  if #doc > M.MAX_TRUST_BYTES then
    fail(ctx, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: " .. M.MAX_TRUST_BYTES, 409)
  end
  check_policy(ctx, doc, "trust")
end

function M.CreateRole(ctx, p)
  check_name(ctx, p.RoleName, "roleName")
  local path = p.Path or "/"
  check_path(ctx, path)
  if roles(ctx)[p.RoleName:lower()] then
    fail(ctx, "EntityAlreadyExists", ("Role with name %s already exists."):format(p.RoleName), 409)
  end
  check_trust(ctx, p.AssumeRolePolicyDocument)
  if p.PermissionsBoundary then
    fail(ctx, "InvalidInput", "the fo simulator does not implement permissions boundaries")
  end
  local tags = merge_tags(ctx, {}, p.Tags or {})
  local now = ctx:now()
  local r = {
    RoleName = p.RoleName, Path = path, RoleId = "AROA" .. ctx:chars(17),
    Arn = ctx:arn("role" .. path .. p.RoleName), CreateDate = math.floor(now), created_at = now,
    AssumeRolePolicyDocument = p.AssumeRolePolicyDocument, Description = p.Description,
    MaxSessionDuration = p.MaxSessionDuration or 3600,
    tags = tags, inline = {}, attached = {},
  }
  roles(ctx)[p.RoleName:lower()] = r
  ctx:created(r)
  return { Role = role_out(r, { tags = true }) }
end

function M.GetRole(ctx, p)
  local r = visible_role(ctx, p.RoleName)
  return { Role = role_out(r, { tags = true, last_used = true }) }
end

function M.ListRoles(ctx, p)
  local prefix = p.PathPrefix or "/"
  local list = {}
  for _, r in pairs(roles(ctx)) do
    if r.Path:sub(1, #prefix) == prefix then list[#list + 1] = r end
  end
  table.sort(list, function(a, b) return a.RoleName:lower() < b.RoleName:lower() end)
  local items, truncated, marker = page(ctx, list, p)
  local out = {}
  for i, r in ipairs(items) do out[i] = role_out(r) end
  return { Roles = out, IsTruncated = truncated, Marker = marker }
end

function M.UpdateRole(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  if p.Description ~= nil then r.Description = p.Description end
  if p.MaxSessionDuration ~= nil then r.MaxSessionDuration = p.MaxSessionDuration end
  return {}
end

function M.UpdateAssumeRolePolicy(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  check_trust(ctx, p.PolicyDocument)
  r.AssumeRolePolicyDocument = p.PolicyDocument
  return {}
end

-- The instance profiles that hold role `name` (sorted by name).
local function profiles_with_role(ctx, name)
  local out = {}
  for _, ip in pairs(profiles(ctx)) do
    for _, rn in ipairs(ip.roles) do
      if rn:lower() == name:lower() then out[#out + 1] = ip end
    end
  end
  table.sort(out, function(a, b) return a.InstanceProfileName:lower() < b.InstanceProfileName:lower() end)
  return out
end

function M.DeleteRole(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  if #profiles_with_role(ctx, r.RoleName) > 0 then
    fail(ctx, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile "
      .. "first.", 409)
  end
  if next(r.inline) then
    fail(ctx, "DeleteConflict", "Cannot delete entity, must delete policies first.", 409)
  end
  if #r.attached > 0 then
    fail(ctx, "DeleteConflict", "Cannot delete entity, must detach all policies first.", 409)
  end
  roles(ctx)[r.RoleName:lower()] = nil
  return {}
end

-- Inline policies ---------------------------------------------------------------------------

-- A policy's size as IAM counts it against its quotas: white space is not counted.
local function policy_size(doc)
  return #(doc:gsub("%s", ""))
end

local function inline_bytes(r, except)
  local n = 0
  for name, doc in pairs(r.inline) do
    if name ~= except then n = n + policy_size(doc) end
  end
  return n
end

function M.PutRolePolicy(ctx, p)
  check_name(ctx, p.PolicyName, "policyName")
  local r = visible_role(ctx, p.RoleName)
  check_policy(ctx, p.PolicyDocument, "identity")
  if inline_bytes(r, p.PolicyName) + policy_size(p.PolicyDocument) > M.MAX_INLINE_BYTES then
    fail(ctx, "LimitExceeded", ("Maximum policy size of %d bytes exceeded for role %s")
      :format(M.MAX_INLINE_BYTES, r.RoleName), 409)
  end
  r.inline[p.PolicyName] = p.PolicyDocument
  return {}
end

function M.GetRolePolicy(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  local doc = r.inline[p.PolicyName]
  if not doc then
    no_such(ctx, ("The role policy with name %s cannot be found."):format(p.PolicyName))
  end
  return { RoleName = r.RoleName, PolicyName = p.PolicyName, PolicyDocument = url_encode(doc) }
end

function M.ListRolePolicies(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  local names = {}
  for name in pairs(r.inline) do names[#names + 1] = name end
  table.sort(names)
  local items, truncated, marker = page(ctx, names, p)
  return { PolicyNames = items, IsTruncated = truncated, Marker = marker }
end

function M.DeleteRolePolicy(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  if not r.inline[p.PolicyName] then
    no_such(ctx, ("The role policy with name %s cannot be found."):format(p.PolicyName))
  end
  r.inline[p.PolicyName] = nil
  return {}
end

-- Managed policies ---------------------------------------------------------------------------

-- The attachable policy for an ARN: {PolicyArn=, PolicyName=, path=}. AWS-managed ones
-- from M.AWS_MANAGED; customer-managed ones from ctx.db.policies (not created by this
-- module: the simulator does not implement CreatePolicy).
local function managed_policy(ctx, arn)
  local acct, rest = arn:match("^arn:aws:iam::([%w]+):policy(/.*)$")
  if not acct then fail(ctx, "InvalidInput", ("ARN %s is not valid."):format(arn)) end
  local path, name = rest:match("^(.*/)([^/]+)$")
  local exists
  if acct == "aws" then
    exists = M.AWS_MANAGED[name] == path
  else
    exists = acct == ctx.account and ctx.db.policies and ctx.db.policies[arn] ~= nil
  end
  if not exists then
    no_such(ctx, ("Policy %s does not exist or is not attachable."):format(arn))
  end
  return { PolicyArn = arn, PolicyName = name, path = path }
end

function M.AttachRolePolicy(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  local pol = managed_policy(ctx, p.PolicyArn)
  for _, a in ipairs(r.attached) do
    if a.PolicyArn == pol.PolicyArn then return {} end -- attaching again changes nothing
  end
  if #r.attached >= M.MAX_ATTACHED then
    fail(ctx, "LimitExceeded", "Cannot exceed quota for PoliciesPerRole: " .. M.MAX_ATTACHED, 409)
  end
  r.attached[#r.attached + 1] = pol
  return {}
end

function M.ListAttachedRolePolicies(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  local prefix = p.PathPrefix or "/"
  local list = {}
  for _, a in ipairs(r.attached) do
    if a.path:sub(1, #prefix) == prefix then
      list[#list + 1] = { PolicyName = a.PolicyName, PolicyArn = a.PolicyArn }
    end
  end
  table.sort(list, function(a, b) return a.PolicyName < b.PolicyName end)
  local items, truncated, marker = page(ctx, list, p)
  return { AttachedPolicies = items, IsTruncated = truncated, Marker = marker }
end

function M.DetachRolePolicy(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  for i, a in ipairs(r.attached) do
    if a.PolicyArn == p.PolicyArn then
      table.remove(r.attached, i)
      return {}
    end
  end
  no_such(ctx, ("Policy %s was not found."):format(p.PolicyArn))
end

-- Instance profiles ---------------------------------------------------------------------------

function M.CreateInstanceProfile(ctx, p)
  check_name(ctx, p.InstanceProfileName, "instanceProfileName")
  local path = p.Path or "/"
  check_path(ctx, path)
  if profiles(ctx)[p.InstanceProfileName:lower()] then
    fail(ctx, "EntityAlreadyExists", ("Instance Profile %s already exists.")
      :format(p.InstanceProfileName), 409)
  end
  local tags = merge_tags(ctx, {}, p.Tags or {})
  local now = ctx:now()
  local ip = {
    InstanceProfileName = p.InstanceProfileName, Path = path,
    InstanceProfileId = "AIPA" .. ctx:chars(17),
    Arn = ctx:arn("instance-profile" .. path .. p.InstanceProfileName),
    CreateDate = math.floor(now), created_at = now, roles = {}, tags = tags,
  }
  profiles(ctx)[p.InstanceProfileName:lower()] = ip
  ctx:created(ip)
  return { InstanceProfile = profile_out(ctx, ip, true) }
end

function M.GetInstanceProfile(ctx, p)
  local ip = profile_or_fail(ctx, p.InstanceProfileName)
  if ctx:fresh(ip) then
    no_such(ctx, ("Instance Profile %s cannot be found."):format(p.InstanceProfileName))
  end
  return { InstanceProfile = profile_out(ctx, ip, true) }
end

function M.ListInstanceProfilesForRole(ctx, p)
  local r = role_or_fail(ctx, p.RoleName)
  local items, truncated, marker = page(ctx, profiles_with_role(ctx, r.RoleName), p)
  local out = {}
  for i, ip in ipairs(items) do out[i] = profile_out(ctx, ip, false) end
  return { InstanceProfiles = out, IsTruncated = truncated, Marker = marker }
end

function M.AddRoleToInstanceProfile(ctx, p)
  local ip = profile_or_fail(ctx, p.InstanceProfileName)
  local r = visible_role(ctx, p.RoleName)
  if #ip.roles >= 1 then
    -- one role per instance profile, even the same role again
    fail(ctx, "LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1", 409)
  end
  ip.roles[1] = r.RoleName
  ip.role_added_at = ctx:now()
  return {}
end

function M.RemoveRoleFromInstanceProfile(ctx, p)
  local ip = profile_or_fail(ctx, p.InstanceProfileName)
  local r = role_or_fail(ctx, p.RoleName)
  for i, name in ipairs(ip.roles) do
    if name:lower() == r.RoleName:lower() then
      table.remove(ip.roles, i)
      ip.role_added_at = nil
      return {}
    end
  end
  no_such(ctx, ("The role with name %s cannot be found in instance profile %s.")
    :format(p.RoleName, ip.InstanceProfileName))
end

function M.DeleteInstanceProfile(ctx, p)
  local ip = profile_or_fail(ctx, p.InstanceProfileName)
  if #ip.roles > 0 then
    fail(ctx, "DeleteConflict", "Cannot delete entity, must remove roles from instance profile "
      .. "first.", 409)
  end
  profiles(ctx)[ip.InstanceProfileName:lower()] = nil
  return {}
end

-- Tags of roles and instance profiles ------------------------------------------------------------

-- TagX, UntagX and ListXTags for the entities find(ctx, p) looks up: roles and instance
-- profiles keep their tags alike (merged, removed by key, listed a page at a time).
local function tag_handlers(find)
  local function tag(ctx, p)
    local e = find(ctx, p)
    e.tags = merge_tags(ctx, e.tags, p.Tags)
    return {}
  end
  local function untag(ctx, p)
    local e = find(ctx, p)
    e.tags = remove_tags(e.tags, p.TagKeys)
    return {}
  end
  local function list(ctx, p)
    local e = find(ctx, p)
    local items, truncated, marker = page(ctx, copy_tags(e.tags), p)
    return { Tags = items, IsTruncated = truncated, Marker = marker }
  end
  return tag, untag, list
end

M.TagRole, M.UntagRole, M.ListRoleTags = tag_handlers(function(ctx, p)
  return role_or_fail(ctx, p.RoleName)
end)
M.TagInstanceProfile, M.UntagInstanceProfile, M.ListInstanceProfileTags = tag_handlers(
  function(ctx, p) return profile_or_fail(ctx, p.InstanceProfileName) end)

-- OpenID Connect providers (for STS AssumeRoleWithWebIdentity) live in their own file.
for k, v in pairs(require("fo.sim.services.iam_oidc")) do
  if k:match("^%u") then M[k] = v end
end

return M
