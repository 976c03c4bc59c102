-- The readiness check's vCPU quota (part of `capacity`, lua/fo/readiness.lua): may the
-- account run the standby group at the primary's size in the standby region? EC2 limits
-- running On-Demand instances of the standard families (A, C, D, H, I, M, R, T, Z) by
-- their vCPUs per region, a quota Service Quotas holds (L-1216C47A; EC2's max-instances
-- account attribute no longer reflects it). The need is the standby's instance type (the
-- launch template version its group launches) times the primary's desired capacity, and
-- times its max size, plus the vCPUs of the region's other running On-Demand Standard
-- instances (the standby group's own are counted once, in the first term). Read calls
-- only: autoscaling (the groups, read by readiness.lua), ec2 DescribeLaunchTemplateVersions,
-- DescribeInstances, DescribeInstanceTypes, servicequotas GetServiceQuota.
local M = {}

M.SERVICE_CODE = "ec2"
M.QUOTA_CODE = "L-1216C47A"
M.QUOTA_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"

-- The families the quota covers: the letters of a type's family before its generation
-- ("t" of t3a.large, "im" of im4gn.large). Inf, Trn, DL, HPC, G, P, F, VT, X, U and Mac
-- instances have quotas of their own.
local STANDARD = { a = true, c = true, d = true, h = true, i = true, im = true, is = true,
  m = true, r = true, t = true, z = true }

--- True when instance type `itype` counts against L-1216C47A.
function M.standard(itype)
  local letters = tostring(itype):match("^(%l+)%d")
  return letters ~= nil and STANDARD[letters] == true
end

local function number(v)
  return tostring(math.tointeger(v) or v)
end

-- The instance type the group launches: its launch template's version (as the group names
-- it), or a mixed instances policy's template.
local function group_type(ec2, g)
  local spec = g.LaunchTemplate or (g.MixedInstancesPolicy and g.MixedInstancesPolicy
    .LaunchTemplate and g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification)
  if not spec then
    error(("group %s launches from no launch template"):format(g.AutoScalingGroupName), 0)
  end
  local v = ec2:DescribeLaunchTemplateVersions{ LaunchTemplateId = spec.LaunchTemplateId,
    LaunchTemplateName = not spec.LaunchTemplateId and spec.LaunchTemplateName or nil,
    Versions = { tostring(spec.Version or "$Default") } }.LaunchTemplateVersions[1]
  local itype = v and v.LaunchTemplateData and v.LaunchTemplateData.InstanceType
  if not itype then
    error(("the launch template of group %s names no instance type"):format(
      g.AutoScalingGroupName), 0)
  end
  return itype
end

-- The region's running (and pending) On-Demand instances: {{id=, type=}}.
local function running(ec2)
  local out, token = {}, nil
  repeat
    local page = ec2:DescribeInstances{ Filters = { { Name = "instance-state-name",
      Values = { "pending", "running" } } }, MaxResults = 1000, NextToken = token }
    for _, r in ipairs(page.Reservations or {}) do
      for _, i in ipairs(r.Instances or {}) do
        -- Spot, scheduled and Capacity Block instances count against other quotas
        if i.InstanceLifecycle == nil then
          out[#out + 1] = { id = i.InstanceId, type = i.InstanceType }
        end
      end
    end
    token = page.NextToken
  until not token
  return out
end

-- vCPUs of each of `types` (a set), from DescribeInstanceTypes.
local function vcpus(ec2, types)
  local list = {}
  for t in pairs(types) do list[#list + 1] = t end
  table.sort(list)
  local out = {}
  for i = 1, #list, 100 do
    local batch = table.move(list, i, math.min(#list, i + 99), 1, {})
    for _, info in ipairs(ec2:DescribeInstanceTypes{ InstanceTypes = batch }.InstanceTypes or {}) do
      out[info.InstanceType] = info.VCpuInfo and info.VCpuInfo.DefaultVCpus
    end
  end
  for _, t in ipairs(list) do
    if not out[t] then error(("EC2 gave no vCPU count for instance type %s"):format(t), 0) end
  end
  return out
end

--- Adds the quota finding to `c` (readiness.lua's Check) for groups p (primary) and s
--- (standby) as DescribeAutoScalingGroups answers them.
function M.check(c, p, s)
  local region = c.regions.standby
  local where = { region = region, resource = s.AutoScalingGroupName }
  c:try("capacity", ("the EC2 vCPU quota %s in %s"):format(M.QUOTA_CODE, region), where, function()
    local ec2 = c:client("ec2", region)
    local itype = group_type(ec2, s)
    if not M.standard(itype) then
      c:add("warning", "capacity", ("the standby launches %s, not an On-Demand Standard type: "
        .. "its vCPU quota is not %s and was not checked"):format(itype, M.QUOTA_CODE), where,
        ("look up the quota of %s's family in Service Quotas (aws service-quotas "
          .. "list-service-quotas --region %s --service-code ec2)"):format(itype, region))
      return
    end
    local own = {}
    for _, i in ipairs(s.Instances or {}) do own[i.InstanceId] = true end
    local others, types = {}, { [itype] = true }
    for _, i in ipairs(running(ec2)) do
      if not own[i.id] and M.standard(i.type) then
        others[#others + 1] = i
        types[i.type] = true
      end
    end
    local per = vcpus(ec2, types)
    local used = 0
    for _, i in ipairs(others) do used = used + per[i.type] end
    local quota = c:client("servicequotas", region):GetServiceQuota{
      ServiceCode = M.SERVICE_CODE, QuotaCode = M.QUOTA_CODE }.Quota.Value
    local at_desired = used + p.DesiredCapacity * per[itype]
    local at_max = used + p.MaxSize * per[itype]
    local text = ("EC2 vCPU quota %s in %s is %s vCPUs; the standby at the primary's max size "
      .. "needs %d (%d × %s of %d vCPUs, plus %d vCPUs of %d other running On-Demand Standard "
      .. "instance%s there), at the primary's desired capacity %d"):format(M.QUOTA_CODE, region,
      number(quota), at_max, p.MaxSize, itype, per[itype], used, #others,
      #others == 1 and "" or "s", at_desired)
    if quota >= at_max then
      c:add("ok", "capacity", text, where)
      return
    end
    local short = quota < at_desired
      and "the standby cannot even take the primary's current load"
      or "the standby cannot grow to the primary's max size"
    c:add("fail", "capacity", text .. ": " .. short, where,
      ("request an increase of %s in Service Quotas to at least %d vCPUs in %s (console: "
        .. "Service Quotas > Amazon EC2 > %s; or aws service-quotas "
        .. "request-service-quota-increase --region %s --service-code ec2 --quota-code %s "
        .. "--desired-value %d); AWS decides within hours to days, so ask before you need it")
        :format(M.QUOTA_CODE, at_max, region, M.QUOTA_NAME, region, M.QUOTA_CODE, at_max))
  end)
end

return M
