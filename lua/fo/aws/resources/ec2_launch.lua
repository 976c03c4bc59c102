-- aws:ec2:launch_template: what Auto Scaling launches (AMI, type, instance profile,
-- groups, user data, IMDS options, block devices). A change makes a new version and
-- makes it the default; the template's name is unique per region (replaced delete-first):
-- a template of that name that this create's ClientToken did not make is a conflict
-- (InvalidLaunchTemplateName.AlreadyExistsException), never taken over.
local common = require "fo.aws.resources.common"

local LT_NF = "InvalidLaunchTemplateId.NotFound"
local LT_NAME_NF = "InvalidLaunchTemplateName.NotFoundException"

-- Nested property tables (metadata_options, block_device_mappings) are the API's shapes
-- in snake_case: http_tokens ↔ HttpTokens, ebs.volume_size ↔ Ebs.VolumeSize.
local function camel_key(k)
  return (k:gsub("^%l", string.upper):gsub("_(%w)", string.upper))
end

local function snake_key(k)
  return (k:gsub("(%l)(%u)", "%1_%2"):gsub("(%d)(%u)", "%1_%2"):lower())
end

local function convert(v, key)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    out[type(k) == "string" and key(k) or k] = convert(x, key)
  end
  return out
end

-- The LaunchTemplateData of the properties (top-level members listed one by one: the
-- properties are the recipe's vocabulary, not a copy of the API's).
local function template_data(p)
  local data = {
    ImageId = p.image_id, InstanceType = p.instance_type, KeyName = p.key_name,
    SecurityGroupIds = p.security_group_ids and #p.security_group_ids > 0
      and p.security_group_ids or nil,
    UserData = p.user_data and require("fo.crypto").base64_encode(p.user_data) or nil,
    MetadataOptions = convert(p.metadata_options, camel_key),
    BlockDeviceMappings = convert(p.block_device_mappings, camel_key),
    EbsOptimized = p.ebs_optimized,
  }
  if p.iam_instance_profile then
    -- An ARN or a name.
    data.IamInstanceProfile = p.iam_instance_profile:match("^arn:")
      and { Arn = p.iam_instance_profile } or { Name = p.iam_instance_profile }
  end
  if p.monitoring ~= nil then data.Monitoring = { Enabled = p.monitoring } end
  -- resource_tags: what each launched resource is tagged with (instance, volume,
  -- network-interface): TagSpecifications in the template, applied at launch by EC2
  local types = {}
  for rtype in pairs(p.resource_tags or {}) do types[#types + 1] = rtype end
  table.sort(types)
  if #types > 0 then
    data.TagSpecifications = {}
    for _, rtype in ipairs(types) do
      local list = {}
      for k, v in pairs(p.resource_tags[rtype]) do list[#list + 1] = { Key = k, Value = v } end
      table.sort(list, function(a, b) return a.Key < b.Key end)
      data.TagSpecifications[#data.TagSpecifications + 1] = { ResourceType = rtype, Tags = list }
    end
  end
  return data
end

-- The resource_tags a version's TagSpecifications show (nil when it has none).
local function resource_tags_of(specs)
  if not specs or #specs == 0 then return nil end
  local out = {}
  for _, s in ipairs(specs) do
    local m = out[s.ResourceType] or {}
    for _, t in ipairs(s.Tags or {}) do m[t.Key] = t.Value end
    out[s.ResourceType] = m
  end
  return out
end

-- Resource types a launch template's TagSpecifications take (CreateLaunchTemplate).
local LAUNCH_TAG_TYPES = { instance = true, volume = true, ["network-interface"] = true,
  ["spot-instances-request"] = true, ["elastic-gpu"] = true }

local function resource_tags_check(v)
  for rtype, tags in pairs(v) do
    if not LAUNCH_TAG_TYPES[rtype] then
      return false, ("%s: a launch template tags instance, volume, network-interface or "
        .. "spot-instances-request at launch"):format(tostring(rtype))
    end
    if type(tags) ~= "table" then
      return false, ("%s: a map of tag keys to values"):format(rtype)
    end
  end
  return true
end

-- A schema check of a nested property against the API model (unknown members, value
-- types), so a mistake shows at declaration rather than at apply.
local function data_check(member)
  return function(v)
    local models = require "fo.aws.models"
    local params = { LaunchTemplateName = "check",
      LaunchTemplateData = { [member] = convert(v, camel_key) } }
    local ok, err = pcall(require("fo.awsproto").validate, models.load("ec2"),
      "CreateLaunchTemplate", params)
    if ok then return true end
    return false, (tostring(err):gsub("^ec2%.CreateLaunchTemplate: ", ""))
  end
end

local function name_check(v)
  if #v < 3 or #v > 128 or not v:match("^[%w%(%)%.%-/_]+$") then
    return false, ("%q: a launch template name has 3 to 128 characters of a-z, A-Z, 0-9 "
      .. "and ( ) . - / _"):format(v)
  end
  return true
end

local function user_data_check(v)
  if #v > 16384 then
    return false, ("user data is at most 16384 bytes (before base64), got %d"):format(#v)
  end
  return true
end

-- `observed` shaped like `declared`: for a declared table, only its keys (AWS may hold
-- members the recipe leaves to their defaults); list elements by position; extra
-- observed list elements are kept (they are drift).
local function project(declared, observed)
  if type(declared) ~= "table" or type(observed) ~= "table" then return observed end
  local out = {}
  if #declared > 0 or #observed > 0 then
    for i = 1, math.max(#declared, #observed) do out[i] = project(declared[i], observed[i]) end
    return out
  end
  for k, d in pairs(declared) do out[k] = project(d, observed[k]) end
  return out
end

-- What a declared property reads as when the template lacks it: an empty value of its
-- kind, so the plan shows the drift (nil would keep the recorded value).
local function missing(declared)
  if type(declared) == "string" then return "" end
  if type(declared) == "boolean" then return false end
  if type(declared) == "table" then return {} end
  return nil
end

-- The properties a template version shows, as the recipe declared them.
local function observed_props(p, lt, data)
  local profile = data.IamInstanceProfile
  local out = {
    name = lt.LaunchTemplateName, image_id = data.ImageId, instance_type = data.InstanceType,
    key_name = data.KeyName,
    iam_instance_profile = profile and ((p.iam_instance_profile or ""):match("^arn:")
      and profile.Arn or profile.Name or profile.Arn),
    security_group_ids = data.SecurityGroupIds,
    user_data = data.UserData and require("fo.crypto").base64_decode(data.UserData) or nil,
    metadata_options = project(p.metadata_options, convert(data.MetadataOptions, snake_key)),
    block_device_mappings = project(p.block_device_mappings,
      convert(data.BlockDeviceMappings, snake_key)),
    ebs_optimized = data.EbsOptimized,
    monitoring = data.Monitoring and data.Monitoring.Enabled,
    resource_tags = resource_tags_of(data.TagSpecifications),
    tags = common.user_tags(lt.Tags),
  }
  for k, v in pairs(p) do
    if out[k] == nil then out[k] = missing(v) end
  end
  return out
end

local function lt_outputs(lt)
  return { id = lt.LaunchTemplateId, name = lt.LaunchTemplateName,
    latest_version = lt.LatestVersionNumber, default_version = lt.DefaultVersionNumber }
end

local function find_lt(ctx, id)
  return common.describe_one(ctx:client("ec2"), "DescribeLaunchTemplates",
    { LaunchTemplateIds = { id } }, "LaunchTemplates", { LT_NF })
end

-- A canonical text of a data table (sorted keys), for the version's idempotency token.
local function canonical(v, out)
  if type(v) ~= "table" then
    out[#out + 1] = type(v):sub(1, 1) .. tostring(v)
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  out[#out + 1] = "{"
  for _, k in ipairs(keys) do
    out[#out + 1] = tostring(k) .. "="
    canonical(v[k], out)
    out[#out + 1] = ";"
  end
  out[#out + 1] = "}"
end

-- The same data gives the same token, so a retried call (or a rollback to data a version
-- already holds) answers that version instead of adding one.
local function version_token(ctx, data)
  local out = {}
  canonical(data, out)
  local crypto = require "fo.crypto"
  return ctx.token .. "-" .. crypto.hex(crypto.sha256(table.concat(out))):sub(1, 24)
end

-- The create's idempotency token: ctx.token (the same on a retry after a crash) with the
-- name, since a delete-first replacement (a rename) may get the token of the first create
-- again, which AWS refuses for other parameters (IdempotentParameterMismatch).
local function create_token(ctx, name)
  local crypto = require "fo.crypto"
  return ctx.token .. "-" .. crypto.hex(crypto.sha256(name)):sub(1, 16)
end

-- The template named `name` in ctx's region, or nil.
local function by_name(ctx, name)
  return common.describe_one(ctx:client("ec2"), "DescribeLaunchTemplates",
    { LaunchTemplateNames = { name } }, "LaunchTemplates", { LT_NAME_NF })
end

local function same_data(a, b)
  local x, y = {}, {}
  canonical(a, x)
  canonical(b, y)
  return table.concat(x) == table.concat(y)
end

fo.type("aws:ec2:launch_template", {
  doc = "an EC2 launch template; a change of its data makes a new version, the default",
  schema = {
    properties = {
      name = { type = "string", required = true, check = name_check },
      image_id = { type = "string", required = true },
      instance_type = { type = "string", required = true },
      key_name = { type = "string" },
      iam_instance_profile = { type = "string" },
      security_group_ids = { type = "list" },
      user_data = { type = "string", check = user_data_check },
      metadata_options = { type = "map", check = data_check("MetadataOptions") },
      block_device_mappings = { type = "list", check = data_check("BlockDeviceMappings") },
      ebs_optimized = { type = "boolean" },
      monitoring = { type = "boolean" },
      -- {instance = {K = V}, volume = {...}, ["network-interface"] = {...}}: tags EC2
      -- puts on what it launches from the template (its TagSpecifications)
      resource_tags = { type = "map", check = resource_tags_check },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "name", "latest_version", "default_version" },
    mutable_outputs = { "latest_version", "default_version" },
    replace_on = { "name" },
    delete_first = true,
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    -- An instance profile created a moment ago may not be usable yet (where AWS checks).
    local ok, out = pcall(common.retry, ctx, "instance_profile", ec2.CreateLaunchTemplate, ec2, {
      LaunchTemplateName = p.name, LaunchTemplateData = template_data(p),
      ClientToken = create_token(ctx, p.name),
      TagSpecifications = common.ec2_tag_specs(ctx, "launch-template", p.tags),
    })
    local lt = ok and out.LaunchTemplate
    if not ok then
      -- the name is taken by a template this create's token did not make
      local other = common.is(out, "InvalidLaunchTemplateName.AlreadyExistsException")
        and by_name(ctx, p.name)
      if not other then error(out, 0) end
      common.claim(ctx, ("a launch template named %q in %s"):format(p.name, ctx.region),
        other.LaunchTemplateId, other.Tags)
      lt = other
    end
    local id = lt.LaunchTemplateId
    -- The token may give back a template made earlier whose tags were lost since.
    if not ctx:owns(lt.Tags or {}) then
      ec2:CreateTags{ Resources = { id }, Tags = common.tag_list(ctx, p.tags) }
    end
    -- The outputs are the answer's (or the claimed template's); no wait until it is listed:
    -- its one user, an Auto Scaling group, retries while it does not see it yet
    -- (autoscaling.lua, "launch_template_not_visible").
    return id, lt_outputs(lt)
  end,
  read = function(ctx, id, props)
    local ec2 = ctx:client("ec2")
    local lt = find_lt(ctx, id)
    if not lt then return nil end
    local out = common.unless({ LT_NF }, ec2.DescribeLaunchTemplateVersions, ec2,
      { LaunchTemplateId = id, Versions = { "$Default" } })
    local v = out and out.LaunchTemplateVersions and out.LaunchTemplateVersions[1]
    if not v then return nil end
    return lt_outputs(lt), observed_props(props, lt, v.LaunchTemplateData or {})
  end,
  update = function(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    local data = template_data(new)
    if not same_data(template_data(old), data) then
      local v = common.retry(ctx, "instance_profile", ec2.CreateLaunchTemplateVersion, ec2, {
        LaunchTemplateId = id, LaunchTemplateData = data,
        ClientToken = version_token(ctx, data),
      }).LaunchTemplateVersion
      local lt = ec2:ModifyLaunchTemplate{ LaunchTemplateId = id,
        DefaultVersion = tostring(v.VersionNumber) }.LaunchTemplate
      outputs = lt_outputs(lt)
    end
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    local ec2 = ctx:client("ec2")
    common.unless({ LT_NF }, ec2.DeleteLaunchTemplate, ec2, { LaunchTemplateId = id })
  end,
  adopt = function(ctx, p)
    -- The name is the template's identity in its region.
    local lt = by_name(ctx, p.name)
    if lt and not ctx.known_ids[lt.LaunchTemplateId] and ctx:owns(lt.Tags or {}) then
      return lt.LaunchTemplateId, lt_outputs(lt)
    end
    return nil
  end,
})
