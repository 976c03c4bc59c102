-- Read-only views of the EC2 handler's state for the services that depend on it (ELBv2
-- validates subnets and security groups, Auto Scaling resolves subnets and launch
-- templates). One place knows the EC2 db's layout, so a change there is fixed here.
--
-- Layout read (ctx:db_of("ec2") in the caller's region), as lua/fo/sim/services/ec2.lua
-- (and ec2/common.lua) stores it: maps keyed by id of records in EC2's output shapes,
-- `_`-prefixed fields being the EC2 handler's bookkeeping:
--   vpcs[VpcId]          = {VpcId, CidrBlock, ...}
--   subnets[SubnetId]    = {SubnetId, VpcId, AvailabilityZone, CidrBlock, ...}
--   sgs[GroupId]         = {GroupId, GroupName, VpcId, _default = true for "default"}
--   igws[Id]             = {InternetGatewayId, Attachments = {{VpcId=, State=}}}
--   security_group_rules[SecurityGroupRuleId] = {GroupId, IsEgress, IpProtocol ("tcp",
--                           "-1", ...), FromPort, ToPort, CidrIpv4 | ReferencedGroupInfo
--                           = {GroupId=} | ...}
--   lts[Id]              = {LaunchTemplateId, LaunchTemplateName, DefaultVersionNumber,
--                           LatestVersionNumber, _versions = {[n] = {VersionNumber=,
--                           LaunchTemplateData = {...}}}}
local M = {}

-- The table of `kind` in the EC2 db, trying the names a handler author may have used.
local ALIASES = {
  vpcs = { "vpcs" },
  subnets = { "subnets" },
  security_groups = { "sgs", "security_groups" },
  internet_gateways = { "igws", "internet_gateways" },
  launch_templates = { "lts", "launch_templates" },
}

local function tables(db, kind)
  for _, name in ipairs(ALIASES[kind]) do
    if type(db[name]) == "table" then return db[name] end
  end
  return nil
end

-- The record of `kind` with id `id` (keyed by id, or found by its id field).
local function find(ctx, kind, id, field, region)
  local t = tables(ctx:db_of("ec2", region), kind)
  if not t or id == nil then return nil end
  local r = t[id]
  if r ~= nil then return r end
  for _, v in pairs(t) do
    if type(v) == "table" and v[field] == id then return v end
  end
  return nil
end

function M.vpc(ctx, id) return find(ctx, "vpcs", id, "VpcId") end
function M.subnet(ctx, id) return find(ctx, "subnets", id, "SubnetId") end
function M.security_group(ctx, id) return find(ctx, "security_groups", id, "GroupId") end

--- The rules of security group `group_id`, ingress (egress false) or egress (true).
function M.security_group_rules(ctx, group_id, egress)
  local out = {}
  for _, r in pairs(ctx:db_of("ec2").security_group_rules or {}) do
    if type(r) == "table" and r.GroupId == group_id and (r.IsEgress == true) == egress then
      out[#out + 1] = r
    end
  end
  return out
end

--- The default security group of `vpc_id` (every VPC has one, named "default").
function M.default_security_group(ctx, vpc_id)
  local t = tables(ctx:db_of("ec2"), "security_groups") or {}
  for _, sg in pairs(t) do
    if type(sg) == "table" and sg.VpcId == vpc_id and (sg._default or sg.GroupName == "default") then
      return sg
    end
  end
  return nil
end

--- true/false when the EC2 state says whether an internet gateway is attached to
--- `vpc_id`; nil when EC2 does not know the VPC (then nothing can be said).
function M.has_internet_gateway(ctx, vpc_id)
  if not M.vpc(ctx, vpc_id) then return nil end
  local t = tables(ctx:db_of("ec2"), "internet_gateways") or {}
  for _, igw in pairs(t) do
    for _, a in ipairs(type(igw) == "table" and igw.Attachments or {}) do
      if a.VpcId == vpc_id and (a.State == nil or a.State == "available"
          or a.State == "attached") then
        return true
      end
    end
  end
  return false
end

--- The launch template named by id or name, or nil.
function M.launch_template(ctx, id, name)
  if id then return find(ctx, "launch_templates", id, "LaunchTemplateId") end
  local t = tables(ctx:db_of("ec2"), "launch_templates") or {}
  for _, lt in pairs(t) do
    if type(lt) == "table" and lt.LaunchTemplateName == name then return lt end
  end
  return nil
end

--- The version record of a launch template for `version` ("$Latest", "$Default" or a
--- number as a string; nil = "$Default", as EC2 resolves it) and its number, or nil.
function M.launch_template_version(lt, version)
  local n
  if version == nil or version == "$Default" then n = lt.DefaultVersionNumber or 1
  elseif version == "$Latest" then n = lt.LatestVersionNumber or 1
  else n = math.tointeger(tonumber(version)) end
  if not n then return nil end
  local versions = lt._versions or lt.versions
  if versions == nil then
    -- a template stored without its versions: only the data it carries, as version 1
    if n == 1 then return { VersionNumber = 1, LaunchTemplateData = lt.LaunchTemplateData or {} }, 1 end
    return nil
  end
  local v = versions[n] or versions[tostring(n)]
  if v == nil then
    for _, x in pairs(versions) do
      if type(x) == "table" and x.VersionNumber == n then v = x; break end
    end
  end
  if v == nil then return nil end
  return v, n
end

return M
