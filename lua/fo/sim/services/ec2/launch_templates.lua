-- Simulated EC2 launch templates, as AWS behaves:
--   * names: 3–128 characters of [a-zA-Z0-9().-/_], unique per region
--     (InvalidLaunchTemplateName.AlreadyExistsException);
--   * versions are numbered from 1 in creation order; LatestVersionNumber and
--     DefaultVersionNumber; "$Latest" and "$Default" name them in requests;
--     CreateLaunchTemplateVersion with SourceVersion inherits that version's data, the
--     top-level members given replacing the inherited ones;
--   * LaunchTemplateData is kept and answered as given (IMDSv2 HttpTokens, encrypted
--     BlockDeviceMappings, base64 UserData, IamInstanceProfile …); UserData must be
--     base64 and at most 16 KB decoded;
--   * unknown id → InvalidLaunchTemplateId.NotFound, unknown name →
--     InvalidLaunchTemplateName.NotFoundException, unknown version →
--     InvalidLaunchTemplateId.VersionNotFound;
--   * ClientToken makes CreateLaunchTemplate/CreateLaunchTemplateVersion idempotent.
local C = require "fo.sim.services.ec2.common"
local crypto = require "fo.crypto"

local M = {}

local NAME = "^[%w%(%)%.%-/_]+$"

local function created_by(ctx)
  return ctx.caller_arn or ("arn:aws:iam::%s:root"):format(ctx.account)
end

function M.view(lt)
  local tags = C.copy_tags(lt.Tags)
  return { LaunchTemplateId = lt.LaunchTemplateId, LaunchTemplateName = lt.LaunchTemplateName,
    CreateTime = lt.CreateTime, CreatedBy = lt.CreatedBy,
    DefaultVersionNumber = lt.DefaultVersionNumber,
    LatestVersionNumber = lt.LatestVersionNumber, Tags = #tags > 0 and tags or nil }
end

local function version_view(lt, v)
  return { LaunchTemplateId = lt.LaunchTemplateId, LaunchTemplateName = lt.LaunchTemplateName,
    VersionNumber = v.VersionNumber, VersionDescription = v.VersionDescription,
    CreateTime = v.CreateTime, CreatedBy = v.CreatedBy,
    DefaultVersion = v.VersionNumber == lt.DefaultVersionNumber,
    LaunchTemplateData = C.copy(v.LaunchTemplateData) }
end

local function by_name(ctx, name)
  for _, lt in pairs(ctx.db.launch_templates or {}) do
    if lt.LaunchTemplateName == name then return lt end
  end
  return nil
end

local function name_not_found(ctx, name)
  ctx:fail("InvalidLaunchTemplateName.NotFoundException",
    ("The specified launch template, with template name %s, does not exist."):format(name))
end

-- The template a call names by LaunchTemplateId or LaunchTemplateName (exactly one).
local function target(ctx, p)
  if p.LaunchTemplateId and p.LaunchTemplateName then
    ctx:fail("InvalidParameterCombination",
      "You must specify either the launch template ID or the launch template name, but not both.")
  end
  if p.LaunchTemplateId then return C.get(ctx, "lt", p.LaunchTemplateId) end
  if p.LaunchTemplateName then
    return by_name(ctx, p.LaunchTemplateName) or name_not_found(ctx, p.LaunchTemplateName)
  end
  ctx:fail("MissingParameter",
    "The request must contain the parameter launchTemplateName or launchTemplateId")
end

M.target = target

local function version_not_found(ctx, lt, v)
  ctx:fail("InvalidLaunchTemplateId.VersionNotFound",
    ("Could not find launch template version %s for launch template %s")
      :format(tostring(v), lt.LaunchTemplateId))
end

--- The version record `v` ("$Latest", "$Default", a number or nil = default) names.
function M.version(ctx, lt, v)
  local n
  if v == nil or v == "$Default" then n = lt.DefaultVersionNumber
  elseif v == "$Latest" then n = lt.LatestVersionNumber
  else n = math.tointeger(tonumber(v)) end
  local rec = n and lt.versions[n]
  if not rec then version_not_found(ctx, lt, v) end
  return rec
end

--- The LaunchTemplateData an instance launched from `ref` ({LaunchTemplateId= or
--- LaunchTemplateName=, Version=}) got, or nil when that template or version is gone.
function M.data_of(ctx, ref)
  if type(ref) ~= "table" then return nil end
  local lt = ref.LaunchTemplateId and C.find(ctx, "lt", ref.LaunchTemplateId)
    or ref.LaunchTemplateName and by_name(ctx, ref.LaunchTemplateName)
  if not lt then return nil end
  local n
  if ref.Version == nil or ref.Version == "$Default" then n = lt.DefaultVersionNumber
  elseif ref.Version == "$Latest" then n = lt.LatestVersionNumber
  else n = math.tointeger(tonumber(ref.Version)) end
  local rec = n and lt.versions[n]
  return rec and rec.LaunchTemplateData or nil
end

-- What AWS checks in the data at creation: UserData is base64 of at most 16 KB.
local function check_data(ctx, data)
  local ud = data.UserData
  if ud ~= nil then
    local ok, raw = false, nil
    if #ud % 4 == 0 and ud:match("^[%w%+/]*=?=?$") then
      ok, raw = pcall(crypto.base64_decode, ud)
    end
    if not ok or type(raw) ~= "string" then
      ctx:fail("InvalidUserData.Malformed", "Invalid BASE64 encoding of user data.")
    end
    if #raw > 16384 then
      ctx:fail("InvalidParameterValue", "User data is limited to 16384 bytes")
    end
  end
end

M.check_user_data = check_data

local function new_version(ctx, lt, data, description)
  check_data(ctx, data)
  local n = #lt.versions + 1
  lt.versions[n] = { VersionNumber = n, VersionDescription = description,
    CreateTime = ctx:now(), CreatedBy = created_by(ctx), LaunchTemplateData = C.copy(data) }
  lt.LatestVersionNumber = n
  return lt.versions[n]
end

function M.CreateLaunchTemplate(ctx, p)
  local existing = C.token_lookup(ctx, p)
  if existing and C.find(ctx, "lt", existing) then
    return { LaunchTemplate = M.view(C.find(ctx, "lt", existing)) }
  end
  local name = p.LaunchTemplateName
  if #name < 3 or #name > 128 or not name:match(NAME) then
    ctx:fail("InvalidLaunchTemplateName.MalformedException",
      "A launch template name must be between 3 and 128 characters, and may contain "
        .. "letters, numbers, and the following characters: - ( ) . / _.")
  end
  if by_name(ctx, name) then
    ctx:fail("InvalidLaunchTemplateName.AlreadyExistsException",
      ("Launch template name already in use."))
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "launch-template")
  local lt = { LaunchTemplateId = ctx:id("lt"), LaunchTemplateName = name,
    CreateTime = ctx:now(), CreatedBy = created_by(ctx), DefaultVersionNumber = 1,
    LatestVersionNumber = 0, Tags = tags, versions = {} }
  new_version(ctx, lt, p.LaunchTemplateData, p.VersionDescription)
  C.coll(ctx, "launch_templates")[lt.LaunchTemplateId] = lt
  C.created(ctx, lt)
  C.token_store(ctx, p, lt.LaunchTemplateId)
  return { LaunchTemplate = M.view(lt) }
end

function M.CreateLaunchTemplateVersion(ctx, p)
  local lt = target(ctx, p)
  local existing = C.token_lookup(ctx, p)
  if existing then
    local n = math.tointeger(tonumber(existing:match(":(%d+)$")))
    if n and lt.versions[n] then
      return { LaunchTemplateVersion = version_view(lt, lt.versions[n]) }
    end
  end
  local data = p.LaunchTemplateData
  if p.SourceVersion ~= nil then
    -- The new version inherits the source's data; members given replace them.
    data = C.copy(M.version(ctx, lt, p.SourceVersion).LaunchTemplateData)
    for k, v in pairs(p.LaunchTemplateData) do data[k] = C.copy(v) end
  end
  local v = new_version(ctx, lt, data, p.VersionDescription)
  C.token_store(ctx, p, lt.LaunchTemplateId .. ":" .. v.VersionNumber)
  return { LaunchTemplateVersion = version_view(lt, v) }
end

function M.ModifyLaunchTemplate(ctx, p)
  local lt = target(ctx, p)
  if p.DefaultVersion ~= nil then
    local n = math.tointeger(tonumber(p.DefaultVersion))
    if not n or not lt.versions[n] then version_not_found(ctx, lt, p.DefaultVersion) end
    lt.DefaultVersionNumber = n
  end
  return { LaunchTemplate = M.view(lt) }
end

local FILTERS = {
  ["launch-template-name"] = function(lt) return lt.LaunchTemplateName end,
  ["launch-template-id"] = function(lt) return lt.LaunchTemplateId end,
}

function M.DescribeLaunchTemplates(ctx, p)
  local list
  if p.LaunchTemplateNames and #p.LaunchTemplateNames > 0 then
    list = {}
    for _, name in ipairs(p.LaunchTemplateNames) do
      local lt = by_name(ctx, name)
      if not lt or not C.visible(ctx, lt) then
        ctx:fail("InvalidLaunchTemplateName.NotFoundException",
          "At least one of the launch templates specified in the request does not exist.")
      end
      list[#list + 1] = lt
    end
    if p.LaunchTemplateIds and #p.LaunchTemplateIds > 0 then
      for _, lt in ipairs(C.describe_ids(ctx, "lt", p.LaunchTemplateIds)) do list[#list + 1] = lt end
    end
  else
    list = C.candidates(ctx, "lt", p.LaunchTemplateIds)
  end
  list = C.filter(ctx, list, p.Filters, FILTERS)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, lt in ipairs(page) do out[i] = M.view(lt) end
  return { LaunchTemplates = out, NextToken = token }
end

local function data_field(pick)
  return function(item)
    local d = item.v.LaunchTemplateData or {}
    return pick(d)
  end
end

local VERSION_FILTERS = {
  ["is-default-version"] = function(item)
    return item.v.VersionNumber == item.lt.DefaultVersionNumber
  end,
  ["image-id"] = data_field(function(d) return d.ImageId end),
  ["instance-type"] = data_field(function(d) return d.InstanceType end),
  ["iam-instance-profile"] = data_field(function(d)
    return d.IamInstanceProfile and (d.IamInstanceProfile.Name or d.IamInstanceProfile.Arn)
  end),
  ["http-tokens"] = data_field(function(d) return d.MetadataOptions and d.MetadataOptions.HttpTokens end),
  ["http-endpoint"] = data_field(function(d)
    return d.MetadataOptions and d.MetadataOptions.HttpEndpoint
  end),
  ["ebs-optimized"] = data_field(function(d) return d.EbsOptimized end),
}

function M.DescribeLaunchTemplateVersions(ctx, p)
  local templates
  if p.LaunchTemplateId or p.LaunchTemplateName then
    local lt = target(ctx, p)
    if not C.visible(ctx, lt) then
      if p.LaunchTemplateId then
        ctx:fail("InvalidLaunchTemplateId.NotFound",
          C.KINDS.lt.one:format(p.LaunchTemplateId))
      end
      name_not_found(ctx, p.LaunchTemplateName)
    end
    templates = { lt }
  else
    -- Without a template, AWS describes $Latest/$Default of every template.
    for _, v in ipairs(p.Versions or {}) do
      if v ~= "$Latest" and v ~= "$Default" then
        ctx:fail("InvalidParameterCombination",
          "A launch template ID or name is required to describe specific version numbers.")
      end
    end
    templates = C.candidates(ctx, "lt", nil)
  end
  local min = p.MinVersion and math.tointeger(tonumber(p.MinVersion))
  local max = p.MaxVersion and math.tointeger(tonumber(p.MaxVersion))
  local items = {}
  for _, lt in ipairs(templates) do
    local wanted = {}
    if p.Versions and #p.Versions > 0 then
      for _, v in ipairs(p.Versions) do wanted[M.version(ctx, lt, v).VersionNumber] = true end
    elseif not (p.LaunchTemplateId or p.LaunchTemplateName) then
      wanted[lt.DefaultVersionNumber], wanted[lt.LatestVersionNumber] = true, true
    end
    -- Newest first, as AWS lists them.
    for n = #lt.versions, 1, -1 do
      local v = lt.versions[n]
      local pick = next(wanted) == nil or wanted[n]
      if pick and (min == nil or n >= min) and (max == nil or n <= max) then
        items[#items + 1] = { lt = lt, v = v }
      end
    end
  end
  items = C.filter(ctx, items, p.Filters, VERSION_FILTERS)
  local page, token = C.page(ctx, items, p)
  local out = {}
  for i, it in ipairs(page) do out[i] = version_view(it.lt, it.v) end
  return { LaunchTemplateVersions = out, NextToken = token }
end

function M.DeleteLaunchTemplate(ctx, p)
  local lt = target(ctx, p)
  ctx.db.launch_templates[lt.LaunchTemplateId] = nil
  return { LaunchTemplate = M.view(lt) }
end

return M
