-- Simulated RunInstances and TerminateInstances, as AWS behaves:
--   * the image must exist (the region's public Amazon Linux 2 AMI, fo.sim.amis):
--     InvalidAMIID.Malformed / InvalidAMIID.NotFound; MinCount ≥ 1, MaxCount ≥ 1,
--     MinCount ≤ MaxCount (InvalidParameterValue); InstanceType defaults to m1.small;
--   * the subnet: SubnetId, else the first network interface's, else the default subnet
--     of the Placement AZ (or the region's first AZ); no default VPC → VPCIdNotSpecified.
--     SubnetId or SecurityGroupIds beside NetworkInterfaces → InvalidParameterCombination;
--   * security groups (SecurityGroupIds, SecurityGroups by name, or the interface's
--     Groups) must be in the subnet's VPC (InvalidParameter "... belong to different
--     networks"); none given → the VPC's default group;
--   * LaunchTemplate (id or name, Version $Default / $Latest / n): its data applies, the
--     request's members override it; TagSpecifications of both are merged (the request
--     wins for the same key); the instance is tagged aws:ec2launchtemplate:id and
--     aws:ec2launchtemplate:version;
--   * MetadataOptions (HttpTokens optional|required, hop limit 1..64),
--     BlockDeviceMappings (volume type, size ≥ the snapshot's for the root device),
--     UserData (base64, ≤ 16 KB), IamInstanceProfile (must exist in IAM and have
--     propagated) are checked and kept;
--   * ClientToken: the same token and parameters answer the first call's reservation;
--     other parameters → IdempotentParameterMismatch;
--   * instances are "pending" for sim.timing.instance_start seconds, then "running";
--     TerminateInstances answers each instance's PreviousState and CurrentState
--     (shutting-down, then terminated after instance_terminate); terminated instances
--     stay listed for terminated_visible. An Auto Scaling group's instance terminated
--     this way is replaced by its group at once (AWS's health check notices it within a
--     minute or so).
--
-- State: ctx.db.instances[id] = { id, own = true, reservation, launch_index, az, az_id,
--   subnet, vpc, state ("pending" | "running" | "shutting-down" | "terminated"),
--   launch_time, running_at, terminate_at, terminated_at, instance_type, image_id,
--   private_ip, public_ip, security_groups = {ids}, profile = {Arn=, Id=},
--   tags = {{Key, Value}}, data = the effective launch data (MetadataOptions, Monitoring,
--   EbsOptimized, UserData, KeyName, DisableApiTermination ...), volumes = {{DeviceName,
--   VolumeId, DeleteOnTermination, VolumeSize, VolumeType, Encrypted, Tags}}, lt =
--   {LaunchTemplateId, LaunchTemplateName, Version}, client_token, _seq }.
local C = require "fo.sim.services.ec2.common"
local LT = require "fo.sim.services.ec2.launch_templates"
local INST = require "fo.sim.services.ec2.instances"
local DEFAULT = require "fo.sim.services.ec2.default_vpc"
local amis = require "fo.sim.amis"
local asg_state = require "fo.sim.asg_state"

local M = {}

local VOLUME_TYPES = { standard = true, io1 = true, io2 = true, gp2 = true, gp3 = true,
  sc1 = true, st1 = true }
local TAGGABLE = { instance = true, volume = true, ["network-interface"] = true,
  ["spot-instances-request"] = true, ["elastic-gpu"] = true }

local function invalid(ctx, msg) ctx:fail("InvalidParameterValue", msg) end

-- The launch data: the template version's (when one is named), the request's members
-- over it. Returns data, the template's record or nil, the version number.
local function launch_data(ctx, p)
  local data, lt, n = {}, nil, nil
  if p.LaunchTemplate then
    lt = LT.target(ctx, p.LaunchTemplate)
    local v = LT.version(ctx, lt, p.LaunchTemplate.Version)
    data = C.copy(v.LaunchTemplateData or {})
    n = v.VersionNumber
  end
  for _, k in ipairs({ "ImageId", "InstanceType", "KeyName", "UserData", "EbsOptimized",
    "IamInstanceProfile", "Monitoring", "DisableApiTermination", "Placement",
    "InstanceInitiatedShutdownBehavior", "SecurityGroupIds", "SecurityGroups",
    "NetworkInterfaces", "BlockDeviceMappings" }) do
    if p[k] ~= nil then data[k] = C.copy(p[k]) end
  end
  -- Metadata options merge member by member (the request's win).
  if p.MetadataOptions then
    data.MetadataOptions = data.MetadataOptions or {}
    for k, v in pairs(p.MetadataOptions) do data.MetadataOptions[k] = v end
  end
  -- Tags: the template's specifications, then the request's (same key: the request's).
  local specs = {}
  for _, s in ipairs(data.TagSpecifications or {}) do specs[#specs + 1] = s end
  for _, s in ipairs(p.TagSpecifications or {}) do
    if not TAGGABLE[s.ResourceType] then
      invalid(ctx, ("'%s' is not a valid taggable resource type for this operation.")
        :format(tostring(s.ResourceType)))
    end
    specs[#specs + 1] = s
  end
  data.TagSpecifications = specs
  return data, lt, n
end

local function check_counts(ctx, p)
  local min, max = p.MinCount, p.MaxCount
  if max == nil or max < 1 then invalid(ctx, "Maximum instance count must be greater than zero") end
  if min == nil or min < 1 then invalid(ctx, "Minimum instance count must be greater than zero") end
  if min > max then
    invalid(ctx, "Minimum instance count must be less than or equal to maximum instance count")
  end
end

local function check_image(ctx, id)
  if id == nil then ctx:fail("MissingParameter", "The request must contain the parameter ImageId") end
  if not C.well_formed(id, "ami") then
    ctx:fail("InvalidAMIID.Malformed", ('Invalid id: "%s" (expecting "ami-...")'):format(id))
  end
  local image = amis.image(ctx.region, id)
  if not image then
    ctx:fail("InvalidAMIID.NotFound", ("The image id '[%s]' does not exist"):format(id))
  end
  return image
end

-- The subnet the instances go to (and the network interface spec, if any).
local function pick_subnet(ctx, p, data)
  local nis = data.NetworkInterfaces
  local ni
  if nis and #nis > 0 then
    if p.SubnetId then
      ctx:fail("InvalidParameterCombination", "Network interfaces and an instance-level subnet "
        .. "ID may not be specified on the same request")
    end
    if (p.SecurityGroupIds and #p.SecurityGroupIds > 0) or (p.SecurityGroups and #p.SecurityGroups > 0) then
      ctx:fail("InvalidParameterCombination", "Network interfaces and an instance-level "
        .. "security groups may not be specified on the same request")
    end
    for _, x in ipairs(nis) do
      if (x.DeviceIndex or 0) == 0 then ni = x end
      if x.NetworkInterfaceId then
        ctx:fail("InvalidNetworkInterfaceID.NotFound",
          ("The networkInterface ID '%s' does not exist"):format(x.NetworkInterfaceId))
      end
    end
    if #nis > 1 then
      invalid(ctx, "The simulator launches instances with one network interface (device index 0).")
    end
  end
  local sid = p.SubnetId or (ni and ni.SubnetId)
  if sid then return C.get(ctx, "subnet", sid), ni end
  local az = data.Placement and data.Placement.AvailabilityZone
  if az then
    local known = false
    for _, z in ipairs(ctx:azs()) do if z.ZoneName == az then known = true end end
    if not known then
      invalid(ctx, ("Invalid availability zone: [%s]"):format(az))
    end
  end
  local s = DEFAULT.subnet_for(ctx, az)
  if not s then
    ctx:fail("VPCIdNotSpecified", "No default VPC for this user")
  end
  return s, ni
end

local function check_groups(ctx, data, subnet, ni)
  local ids = {}
  for _, g in ipairs(ni and ni.Groups or data.SecurityGroupIds or {}) do ids[#ids + 1] = g end
  for _, name in ipairs(data.SecurityGroups or {}) do
    local hit
    for _, g in pairs(ctx.db.security_groups or {}) do
      if g.VpcId == subnet.VpcId and g.GroupName == name then hit = g end
    end
    if not hit then
      ctx:fail("InvalidGroup.NotFound", ("The security group '%s' does not exist in VPC '%s'")
        :format(name, subnet.VpcId))
    end
    ids[#ids + 1] = hit.GroupId
  end
  for _, id in ipairs(ids) do
    local g = C.get(ctx, "sg", id)
    if g.VpcId ~= subnet.VpcId then
      ctx:fail("InvalidParameter", ("Security group %s and subnet %s belong to different networks.")
        :format(id, subnet.SubnetId))
    end
  end
  if #ids == 0 then
    for _, g in pairs(ctx.db.security_groups or {}) do
      if g.VpcId == subnet.VpcId and g._default then ids[1] = g.GroupId end
    end
  end
  return ids
end

local function check_metadata(ctx, mo)
  if mo == nil then return end
  if mo.HttpTokens and mo.HttpTokens ~= "optional" and mo.HttpTokens ~= "required" then
    invalid(ctx, ("Value (%s) for parameter HttpTokens is invalid. Valid values are optional, "
      .. "required."):format(mo.HttpTokens))
  end
  if mo.HttpEndpoint and mo.HttpEndpoint ~= "enabled" and mo.HttpEndpoint ~= "disabled" then
    invalid(ctx, ("Value (%s) for parameter HttpEndpoint is invalid."):format(mo.HttpEndpoint))
  end
  local hop = mo.HttpPutResponseHopLimit
  if hop ~= nil and (hop < 1 or hop > 64) then
    invalid(ctx, ("Value (%d) for parameter HttpPutResponseHopLimit is invalid. Valid values "
      .. "are 1 to 64."):format(hop))
  end
end

-- The volumes an instance gets: the image's root device (size, type, encryption from a
-- mapping for it), then the other EBS mappings.
local function volumes_of(ctx, data, image)
  local root = image.BlockDeviceMappings[1]
  local vols = { { DeviceName = root.DeviceName, VolumeSize = root.Ebs.VolumeSize,
    VolumeType = root.Ebs.VolumeType, Encrypted = root.Ebs.Encrypted,
    DeleteOnTermination = root.Ebs.DeleteOnTermination } }
  for _, m in ipairs(data.BlockDeviceMappings or {}) do
    if m.DeviceName == nil then
      ctx:fail("MissingParameter", "The request must contain the parameter blockDeviceMapping.deviceName")
    end
    local ebs = m.Ebs
    if ebs and not m.NoDevice then
      if ebs.VolumeType and not VOLUME_TYPES[ebs.VolumeType] then
        invalid(ctx, ("Value (%s) for parameter volumeType is invalid. Valid values are: "
          .. "standard, io1, io2, gp2, sc1, st1, gp3"):format(ebs.VolumeType))
      end
      local v
      if m.DeviceName == root.DeviceName then
        v = vols[1]
        if ebs.VolumeSize and ebs.VolumeSize < root.Ebs.VolumeSize then
          ctx:fail("InvalidBlockDeviceMapping", ("Volume of size %dGB is smaller than snapshot "
            .. "'%s', expect size >= %dGB"):format(ebs.VolumeSize, root.Ebs.SnapshotId,
            root.Ebs.VolumeSize))
        end
      else
        if ebs.VolumeSize == nil and ebs.SnapshotId == nil then
          ctx:fail("MissingParameter", "The request must contain the parameter size or snapshotId")
        end
        v = { DeviceName = m.DeviceName, VolumeType = "gp2", Encrypted = false,
          DeleteOnTermination = true }
        vols[#vols + 1] = v
      end
      if ebs.VolumeSize then v.VolumeSize = ebs.VolumeSize end
      if ebs.VolumeType then v.VolumeType = ebs.VolumeType end
      if ebs.Encrypted ~= nil then v.Encrypted = ebs.Encrypted end
      if ebs.DeleteOnTermination ~= nil then v.DeleteOnTermination = ebs.DeleteOnTermination end
    end
  end
  return vols
end

-- The instance profile named by {Arn=} or {Name=}: it must exist in IAM and have
-- propagated (IAM is eventually consistent; EC2 refuses a profile used seconds after its
-- creation with "Invalid IAM Instance Profile name").
local function check_profile(ctx, prof)
  if type(prof) ~= "table" or (prof.Name == nil and prof.Arn == nil) then return nil end
  local name = prof.Name or tostring(prof.Arn):match(":instance%-profile/(.+)$") or prof.Arn
  name = name:match("([^/]+)$") or name
  local profiles = ctx:db_of("iam").instance_profiles
  local rec = type(profiles) == "table" and profiles[name:lower()] or nil
  if rec and prof.Arn and rec.Arn ~= prof.Arn then rec = nil end
  local since = rec and math.max(rec.created_at or 0, rec.role_added_at or 0)
  if rec == nil or ctx:now() - since < asg_state.timing(ctx, "profile_propagation") then
    local which = prof.Arn and "arn" or "name"
    invalid(ctx, ("Value (%s) for parameter iamInstanceProfile.%s is invalid. Invalid IAM "
      .. "Instance Profile %s"):format(prof.Arn or prof.Name, which, which))
  end
  return { Arn = rec.Arn, Id = rec.InstanceProfileId }
end

local function tags_for(ctx, specs, rtype)
  local r = { Tags = {} }
  for _, s in ipairs(specs) do
    if s.ResourceType == rtype then C.add_tags(ctx, r, s.Tags or {}) end
  end
  return r.Tags
end

-- A private address of the subnet no other instance there holds (AWS reserves the
-- first four and the last one).
local function private_ip(ctx, subnet, id, taken)
  local base, n = C.parse_cidr(subnet.CidrBlock)
  local span = (1 << (32 - n)) - 5
  local k = tonumber(C.hash_hex(id, 6), 16) % span
  for _ = 1, span do
    local ip = C.ip(base + 4 + k)
    if not taken[ip] then taken[ip] = true; return ip end
    k = (k + 1) % span
  end
  ctx:fail("InsufficientFreeAddressesInSubnet",
    ("There are not enough free addresses in subnet '%s' to satisfy the requested number of "
      .. "instances."):format(subnet.SubnetId))
end

local function public_ip(id)
  local h = C.hash_hex("public " .. id, 6)
  return ("3.%d.%d.%d"):format(tonumber(h:sub(1, 2), 16), tonumber(h:sub(3, 4), 16),
    math.max(1, tonumber(h:sub(5, 6), 16)))
end

local function reservation_of(ctx, rid)
  local list = {}
  for _, inst in ipairs(C.instances(ctx)) do
    if inst.reservation == rid then list[#list + 1] = inst end
  end
  return list
end

local function reservation_view(ctx, rid, list)
  local out = {}
  for i, inst in ipairs(list) do out[i] = INST.instance_record(ctx, inst) end
  return { ReservationId = rid, OwnerId = ctx.account, Groups = {}, Instances = out }
end

function M.RunInstances(ctx, p)
  local prior = C.token_lookup(ctx, p)
  if prior then return reservation_view(ctx, prior, reservation_of(ctx, prior)) end
  check_counts(ctx, p)
  local data, lt, version = launch_data(ctx, p)
  local image = check_image(ctx, data.ImageId)
  local itype = data.InstanceType or "m1.small"
  if type(itype) ~= "string" or not itype:match("^%l[%w%-]*%.%w+$") then
    invalid(ctx, ("Invalid value '%s' for InstanceType."):format(tostring(itype)))
  end
  local subnet, ni = pick_subnet(ctx, p, data)
  if data.Placement and data.Placement.AvailabilityZone
    and data.Placement.AvailabilityZone ~= subnet.AvailabilityZone then
    invalid(ctx, ("Invalid availability zone: [%s]"):format(data.Placement.AvailabilityZone))
  end
  local groups = check_groups(ctx, data, subnet, ni)
  check_metadata(ctx, data.MetadataOptions)
  if data.UserData ~= nil then LT.check_user_data(ctx, data) end
  local vols = volumes_of(ctx, data, image)
  local profile = check_profile(ctx, data.IamInstanceProfile)
  local itags = tags_for(ctx, data.TagSpecifications, "instance")
  local vtags = tags_for(ctx, data.TagSpecifications, "volume")
  if lt then
    -- AWS's own tags on an instance launched from a template (not subject to the aws:
    -- prefix rule that applies to callers).
    itags[#itags + 1] = { Key = "aws:ec2launchtemplate:id", Value = lt.LaunchTemplateId }
    itags[#itags + 1] = { Key = "aws:ec2launchtemplate:version", Value = tostring(version) }
  end
  local public = subnet.MapPublicIpOnLaunch == true
  if ni and ni.AssociatePublicIpAddress ~= nil then public = ni.AssociatePublicIpAddress end
  local taken = {}
  for _, other in ipairs(C.instances(ctx)) do
    if other.subnet == subnet.SubnetId and other.state ~= "terminated" and other.private_ip then
      taken[other.private_ip] = true
    end
  end
  local now = ctx:now()
  local rid = ctx:id("r")
  local list = {}
  local stored = C.coll(ctx, "instances")
  for i = 1, p.MaxCount do
    local id = ctx:id("i")
    local vs = {}
    for k, v in ipairs(vols) do
      vs[k] = C.copy(v)
      vs[k].VolumeId = ctx:id("vol")
      vs[k].Tags = C.copy(vtags)
    end
    local ip = (i == 1 and ni and ni.PrivateIpAddress) or private_ip(ctx, subnet, id, taken)
    local inst = { id = id, own = true, reservation = rid, launch_index = i - 1,
      az = subnet.AvailabilityZone, az_id = subnet.AvailabilityZoneId, subnet = subnet.SubnetId,
      vpc = subnet.VpcId, state = "pending", launch_time = now,
      running_at = now + C.timing(ctx, "instance_start"), instance_type = itype,
      image_id = image.ImageId, private_ip = ip, public_ip = public and public_ip(id) or nil,
      security_groups = C.copy(groups), profile = profile, tags = C.copy(itags),
      data = { MetadataOptions = data.MetadataOptions, Monitoring = data.Monitoring,
        EbsOptimized = data.EbsOptimized, UserData = data.UserData, KeyName = data.KeyName,
        DisableApiTermination = data.DisableApiTermination,
        Tenancy = data.Placement and data.Placement.Tenancy },
      volumes = vs, client_token = p.ClientToken,
      eni_tags = tags_for(ctx, data.TagSpecifications, "network-interface"),
      eni = ctx:id("eni"), eni_attachment = ctx:id("eni-attach"),
      lt = lt and { LaunchTemplateId = lt.LaunchTemplateId,
        LaunchTemplateName = lt.LaunchTemplateName, Version = tostring(version) } or nil }
    C.created(ctx, inst)
    stored[id] = inst
    list[#list + 1] = inst
  end
  C.token_store(ctx, p, rid)
  return reservation_view(ctx, rid, list)
end

---------------------------------------------------------------------------------------
-- TerminateInstances

local function asg_member(ctx, id)
  local ok, db = pcall(ctx.db_of, ctx, "autoscaling")
  if not ok or type(db) ~= "table" then return nil end
  local inst, g = asg_state.instance(db, id)
  return inst, g, db
end

function M.TerminateInstances(ctx, p)
  local ids = p.InstanceIds or {}
  if #ids == 0 then
    ctx:fail("MissingParameter", "The request must contain the parameter InstanceId")
  end
  local known = {}
  for _, inst in ipairs(C.instances(ctx)) do known[inst.id] = inst end
  local missing = {}
  for _, id in ipairs(ids) do
    if not C.well_formed(id, "i") then
      ctx:fail("InvalidInstanceID.Malformed", ('Invalid id: "%s"'):format(id))
    end
    if not known[id] then missing[#missing + 1] = id end
  end
  if #missing > 0 then
    ctx:fail("InvalidInstanceID.NotFound", (#missing == 1 and "The instance ID '%s' does not exist"
      or "The instance IDs '%s' do not exist"):format(table.concat(missing, ", ")))
  end
  for _, id in ipairs(ids) do
    local inst = known[id]
    if inst.own and inst.data.DisableApiTermination and inst.state ~= "terminated" then
      ctx:fail("OperationNotPermitted", ("The instance '%s' may not be terminated. Modify its "
        .. "'disableApiTermination' instance attribute and try again."):format(id))
    end
  end
  local now = ctx:now()
  local out, seen = {}, {}
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      local inst = known[id]
      local before = inst.state
      local after = before
      if before ~= "terminated" and before ~= "shutting-down" then
        after = "shutting-down"
        if inst.own then
          inst.state = "shutting-down"
          inst.terminate_at = now
          inst.terminated_at = now + C.timing(ctx, "instance_terminate")
        else
          local member, g, db = asg_member(ctx, id)
          if member then
            require("fo.sim.services.autoscaling").instance_terminated(ctx, db, g, member)
          end
        end
      end
      out[#out + 1] = { InstanceId = id,
        PreviousState = { Code = C.STATE_CODES[before], Name = before },
        CurrentState = { Code = C.STATE_CODES[after], Name = after } }
    end
  end
  return { TerminatingInstances = out }
end

return M
