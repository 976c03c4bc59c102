-- Simulated EC2 instances and tags.
--   * Instances are run by the simulated Auto Scaling groups (their db, read through
--     common.asg_instances); EC2 describes them as AWS would: one reservation per
--     instance, state from the lifecycle (terminated ones stay listed for a while),
--     the launch template's data (AMI, type, IMDS options, groups, profile), the
--     subnet's VPC and a private address in it, the tags Auto Scaling gave them;
--   * CreateTags/DeleteTags take ids of any kind (an unknown id → that kind's NotFound,
--     an id of no known kind → InvalidID; all or nothing); instances keep their
--     EC2-side tags in db.instance_tags; DescribeTags lists every tag with the
--     key/value/resource-id/resource-type filters.
local C = require "fo.sim.services.ec2.common"
local SG = require "fo.sim.services.ec2.security_groups"
local LT = require "fo.sim.services.ec2.launch_templates"

local M = {}

---------------------------------------------------------------------------------------
-- Instances (run by the simulated Auto Scaling groups; EC2 only describes them)

-- The volumes of an Auto Scaling instance: the image's root device as its launch
-- template's mappings shape it, ids derived from the instance's.
local function asg_volumes(inst, data)
  local vols = { { DeviceName = "/dev/xvda", DeleteOnTermination = true } }
  for _, m in ipairs(data.BlockDeviceMappings or {}) do
    if m.Ebs and not m.NoDevice then
      local v
      for _, x in ipairs(vols) do if x.DeviceName == m.DeviceName then v = x end end
      if not v then
        v = { DeviceName = m.DeviceName, DeleteOnTermination = true }
        vols[#vols + 1] = v
      end
      if m.Ebs.DeleteOnTermination ~= nil then v.DeleteOnTermination = m.Ebs.DeleteOnTermination end
    end
  end
  for _, v in ipairs(vols) do v.VolumeId = "vol-" .. C.hash_hex("vol " .. inst.id .. v.DeviceName) end
  return vols
end

local function dns_name(ip, region)
  return ("ip-%s.%s.compute.internal"):format(ip:gsub("%.", "-"), region)
end

local function public_dns(ip, region)
  local where = region == "us-east-1" and "compute-1" or (region .. ".compute")
  return ("ec2-%s.%s.amazonaws.com"):format(ip:gsub("%.", "-"), where)
end

function M.instance_record(ctx, inst)
  -- RunInstances' instances carry their launch data; Auto Scaling's read their template.
  local data = inst.own and inst.data or LT.data_of(ctx, inst.lt) or {}
  local subnet = inst.subnet and C.find(ctx, "subnet", inst.subnet)
  local ip = inst.private_ip
  if not ip and subnet then
    local base, n = C.parse_cidr(subnet.CidrBlock)
    local span = (1 << (32 - n)) - 5
    ip = C.ip(base + 4 + tonumber(C.hash_hex(inst.id, 6), 16) % span)
  end
  local groups = {}
  for _, gid in ipairs(SG.instance_groups(ctx, inst)) do
    local g = C.find(ctx, "sg", gid)
    groups[#groups + 1] = { GroupId = gid, GroupName = g and g.GroupName or nil }
  end
  -- Tags: the launch template's instance tags, then those Auto Scaling gave the instance
  -- (aws:autoscaling:groupName and the group's propagated tags, which win over the
  -- template's for the same key, as AWS documents), else the group's name; AWS's
  -- aws:ec2launchtemplate:id/version; then tags set on the instance through EC2.
  -- RunInstances' instances keep the tags they launched with.
  local r = { Tags = {} }
  local function merge(list)
    for _, t in ipairs(list or {}) do
      local found = false
      for _, have in ipairs(r.Tags) do
        if have.Key == t.Key then have.Value = t.Value or ""; found = true end
      end
      if not found then r.Tags[#r.Tags + 1] = { Key = t.Key, Value = t.Value or "" } end
    end
  end
  if inst.own then
    merge(inst.tags)
  else
    for _, spec in ipairs(data.TagSpecifications or {}) do
      if spec.ResourceType == "instance" then merge(spec.Tags) end
    end
    merge(inst.tags or { { Key = "aws:autoscaling:groupName", Value = inst.asg } })
    local lt = type(inst.lt) == "table" and inst.lt or {}
    if lt.LaunchTemplateId and math.tointeger(tonumber(lt.Version)) then
      merge({ { Key = "aws:ec2launchtemplate:id", Value = lt.LaunchTemplateId },
        { Key = "aws:ec2launchtemplate:version", Value = tostring(lt.Version) } })
    end
  end
  merge((ctx.db.instance_tags or {})[inst.id])
  local profile
  local prof = inst.profile or data.IamInstanceProfile
  if type(prof) == "table" and (prof.Arn or prof.Name) then
    local arn = prof.Arn
      or ("arn:aws:iam::%s:instance-profile/%s"):format(ctx.account, prof.Name)
    profile = { Arn = arn, Id = prof.Id or ("AIPA" .. C.hash_hex(arn, 17):upper()) }
  end
  local mo = data.MetadataOptions or {}
  local state = inst.state
  local gone = state == "terminated"
  local launched = inst.launch_time
  -- The primary network interface and the volumes go with the instance; a terminated
  -- one lists neither (nor its public address).
  local nis, bdms, public
  if not gone and subnet then
    public = inst.public_ip
    local eni = inst.eni or ("eni-" .. C.hash_hex("eni " .. inst.id))
    local h = C.hash_hex("mac " .. inst.id, 10)
    local mac = "0a:" .. h:gsub("(%x%x)", "%1:"):sub(1, 14)
    nis = { {
      NetworkInterfaceId = eni, SubnetId = subnet.SubnetId, VpcId = subnet.VpcId,
      Description = "", OwnerId = ctx.account, Status = "in-use", MacAddress = mac,
      PrivateIpAddress = ip, PrivateDnsName = dns_name(ip, ctx.region),
      SourceDestCheck = true, InterfaceType = "interface", Groups = C.copy(groups),
      Ipv6Addresses = {},
      Attachment = { AttachmentId = inst.eni_attachment
          or ("eni-attach-" .. C.hash_hex("eni-attach " .. inst.id)),
        AttachTime = launched, DeleteOnTermination = true, DeviceIndex = 0,
        NetworkCardIndex = 0, Status = "attached" },
      PrivateIpAddresses = { { Primary = true, PrivateIpAddress = ip,
        PrivateDnsName = dns_name(ip, ctx.region) } },
    } }
    if public then
      local assoc = { PublicIp = public, PublicDnsName = public_dns(public, ctx.region),
        IpOwnerId = "amazon" }
      nis[1].Association = assoc
      nis[1].PrivateIpAddresses[1].Association = C.copy(assoc)
    end
    bdms = {}
    for i, v in ipairs(inst.volumes or asg_volumes(inst, data)) do
      bdms[i] = { DeviceName = v.DeviceName, Ebs = { VolumeId = v.VolumeId,
        Status = state == "shutting-down" and "detaching" or "attached", AttachTime = launched,
        DeleteOnTermination = v.DeleteOnTermination ~= false } }
    end
  end
  return {
    InstanceId = inst.id, ImageId = inst.image_id or data.ImageId, InstanceType = inst.instance_type
      or data.InstanceType, LaunchTime = launched, AmiLaunchIndex = inst.launch_index or 0,
    Placement = { AvailabilityZone = inst.az, AvailabilityZoneId = subnet
        and subnet.AvailabilityZoneId or inst.az_id, Tenancy = data.Tenancy or "default",
      GroupName = "" },
    State = { Code = C.STATE_CODES[state] or 16, Name = state },
    -- (Auto Scaling's terminations are the service's, those through EC2 the user's)
    StateTransitionReason = gone and ("%s initiated (%s)"):format(inst.own and "User" or "Service",
      os.date("!%Y-%m-%d %H:%M:%S GMT", math.floor(inst.terminate_at or launched or 0))) or "",
    -- a terminated instance has left its subnet: no address, subnet, VPC or groups
    SubnetId = not gone and (subnet and subnet.SubnetId or inst.subnet) or nil,
    VpcId = not gone and subnet and subnet.VpcId or nil,
    PrivateIpAddress = not gone and ip or nil,
    PrivateDnsName = (not gone and ip) and dns_name(ip, ctx.region) or "",
    PublicIpAddress = public, PublicDnsName = public and public_dns(public, ctx.region) or "",
    NetworkInterfaces = nis or {}, BlockDeviceMappings = bdms or {},
    SecurityGroups = gone and {} or groups, Tags = r.Tags, IamInstanceProfile = profile,
    KeyName = data.KeyName, ClientToken = inst.client_token or "",
    MetadataOptions = { State = (inst.own and state == "pending") and "pending" or "applied",
      HttpTokens = mo.HttpTokens or "optional",
      HttpEndpoint = mo.HttpEndpoint or "enabled",
      HttpPutResponseHopLimit = mo.HttpPutResponseHopLimit or 1,
      HttpProtocolIpv6 = mo.HttpProtocolIpv6 or "disabled",
      InstanceMetadataTags = mo.InstanceMetadataTags or "disabled" },
    Monitoring = { State = (data.Monitoring and data.Monitoring.Enabled) and "enabled"
      or "disabled" },
    Architecture = "x86_64", RootDeviceName = "/dev/xvda", RootDeviceType = "ebs",
    VirtualizationType = "hvm", Hypervisor = "xen", EbsOptimized = data.EbsOptimized == true,
    EnaSupport = true, SourceDestCheck = true, PlatformDetails = "Linux/UNIX",
    UsageOperation = "RunInstances",
  }
end

local INSTANCE_FILTERS = {
  ["instance-id"] = function(i) return i.InstanceId end,
  ["instance-state-name"] = function(i) return i.State.Name end,
  ["instance-state-code"] = function(i) return i.State.Code end,
  ["availability-zone"] = function(i) return i.Placement.AvailabilityZone end,
  ["subnet-id"] = function(i) return i.SubnetId end,
  ["vpc-id"] = function(i) return i.VpcId end,
  ["image-id"] = function(i) return i.ImageId end,
  ["instance-type"] = function(i) return i.InstanceType end,
  ["private-ip-address"] = function(i) return i.PrivateIpAddress end,
  ["iam-instance-profile.arn"] = function(i)
    return i.IamInstanceProfile and i.IamInstanceProfile.Arn
  end,
  ["instance.group-id"] = function(i)
    local out = {}
    for _, g in ipairs(i.SecurityGroups) do out[#out + 1] = g.GroupId end
    return out
  end,
  ["metadata-options.http-tokens"] = function(i) return i.MetadataOptions.HttpTokens end,
  ["ip-address"] = function(i) return i.PublicIpAddress end,
  ["key-name"] = function(i) return i.KeyName end,
  ["client-token"] = function(i) return i.ClientToken end,
  ["root-device-type"] = function(i) return i.RootDeviceType end,
  ["network-interface.network-interface-id"] = function(i)
    return i.NetworkInterfaces[1] and i.NetworkInterfaces[1].NetworkInterfaceId
  end,
  ["network-interface.subnet-id"] = function(i)
    return i.NetworkInterfaces[1] and i.NetworkInterfaces[1].SubnetId
  end,
  ["block-device-mapping.volume-id"] = function(i)
    local out = {}
    for _, b in ipairs(i.BlockDeviceMappings) do out[#out + 1] = b.Ebs.VolumeId end
    return out
  end,
  ["block-device-mapping.device-name"] = function(i)
    local out = {}
    for _, b in ipairs(i.BlockDeviceMappings) do out[#out + 1] = b.DeviceName end
    return out
  end,
}

-- Reservation id of each described instance (set by DescribeInstances for its call):
-- RunInstances' reservation, else one per Auto Scaling instance.
local reservation_of = {}
INSTANCE_FILTERS["reservation-id"] = function(i) return reservation_of[i.InstanceId] end

local function reservation_id(inst)
  return inst.reservation or ("r-" .. C.hash_hex("reservation:" .. inst.id))
end

function M.DescribeInstances(ctx, p)
  if p.InstanceIds and #p.InstanceIds > 0 and p.MaxResults then
    ctx:fail("InvalidParameterCombination",
      "The parameter instancesSet cannot be used with the parameter maxResults")
  end
  local all = {}
  reservation_of = {}
  for _, inst in ipairs(C.instances(ctx)) do
    all[#all + 1] = M.instance_record(ctx, inst)
    reservation_of[inst.id] = reservation_id(inst)
  end
  local list = all
  if p.InstanceIds and #p.InstanceIds > 0 then
    list = {}
    local missing = {}
    for _, id in ipairs(p.InstanceIds) do
      if not C.well_formed(id, "i") then
        ctx:fail("InvalidInstanceID.Malformed", ('Invalid id: "%s"'):format(tostring(id)))
      end
      local hit
      for _, i in ipairs(all) do
        if i.InstanceId == id then hit = i end
      end
      if hit then list[#list + 1] = hit else missing[#missing + 1] = id end
    end
    if #missing == 1 then
      ctx:fail("InvalidInstanceID.NotFound",
        ("The instance ID '%s' does not exist"):format(missing[1]))
    elseif #missing > 1 then
      ctx:fail("InvalidInstanceID.NotFound",
        ("The instance IDs '%s' do not exist"):format(table.concat(missing, ", ")))
    end
  end
  list = C.filter(ctx, list, p.Filters, INSTANCE_FILTERS)
  local page, token = C.page(ctx, list, p)
  -- An Auto Scaling group launches each instance in its own reservation; the instances
  -- of one RunInstances call share theirs.
  local reservations = {}
  for _, inst in ipairs(page) do
    local rid = reservation_of[inst.InstanceId]
    local last = reservations[#reservations]
    if last and last.ReservationId == rid then
      last.Instances[#last.Instances + 1] = inst
    else
      reservations[#reservations + 1] = { ReservationId = rid, OwnerId = ctx.account,
        Groups = {}, Instances = { inst } }
    end
  end
  return { Reservations = reservations, NextToken = token }
end

---------------------------------------------------------------------------------------
-- Volumes and network interfaces of instances (read-only: they exist only with their
-- instance, made and deleted with it). Their tags are those EC2 applied at launch: the
-- launch template's or RunInstances' TagSpecifications of ResourceType volume /
-- network-interface (Auto Scaling propagates its group's tags to instances only, never
-- to volumes: AWS's documented behaviour).

local function launch_tags(ctx, inst, rtype)
  if inst.own then
    return rtype == "volume" and nil or inst.eni_tags
  end
  local data = LT.data_of(ctx, inst.lt) or {}
  local out = {}
  for _, spec in ipairs(data.TagSpecifications or {}) do
    if spec.ResourceType == rtype then
      for _, t in ipairs(spec.Tags or {}) do out[#out + 1] = { Key = t.Key, Value = t.Value or "" } end
    end
  end
  return out
end

local function by_ids(ctx, list, ids, field, code, what)
  if not ids or #ids == 0 then return list end
  local out = {}
  for _, id in ipairs(ids) do
    local hit
    for _, x in ipairs(list) do if x[field] == id then hit = x end end
    if not hit then ctx:fail(code, ("The %s '%s' does not exist."):format(what, id)) end
    out[#out + 1] = hit
  end
  return out
end

local VOLUME_FILTERS = {
  ["volume-id"] = function(v) return v.VolumeId end,
  ["attachment.instance-id"] = function(v) return v.Attachments[1].InstanceId end,
  ["status"] = function(v) return v.State end,
}

function M.DescribeVolumes(ctx, p)
  local list = {}
  for _, inst in ipairs(C.instances(ctx)) do
    local rec = M.instance_record(ctx, inst)
    local own = {}
    for _, v in ipairs(inst.volumes or {}) do own[v.VolumeId] = v end
    local tags = launch_tags(ctx, inst, "volume")
    for _, b in ipairs(rec.BlockDeviceMappings) do
      local v = own[b.Ebs.VolumeId]
      list[#list + 1] = { VolumeId = b.Ebs.VolumeId, AvailabilityZone = rec.Placement.AvailabilityZone,
        State = "in-use", CreateTime = rec.LaunchTime, Size = v and v.VolumeSize or 8,
        VolumeType = v and v.VolumeType or "gp2", Encrypted = v and v.Encrypted or false,
        Tags = C.copy(v and v.Tags or tags or {}),
        Attachments = { { VolumeId = b.Ebs.VolumeId, InstanceId = rec.InstanceId,
          Device = b.DeviceName, State = b.Ebs.Status, AttachTime = b.Ebs.AttachTime,
          DeleteOnTermination = b.Ebs.DeleteOnTermination } } }
    end
  end
  list = by_ids(ctx, list, p.VolumeIds, "VolumeId", "InvalidVolume.NotFound", "volume")
  list = C.filter(ctx, list, p.Filters, VOLUME_FILTERS)
  local page, token = C.page(ctx, list, p)
  return { Volumes = page, NextToken = token }
end

local ENI_FILTERS = {
  ["network-interface-id"] = function(n) return n.NetworkInterfaceId end,
  ["attachment.instance-id"] = function(n) return n.Attachment.InstanceId end,
  ["subnet-id"] = function(n) return n.SubnetId end,
  ["vpc-id"] = function(n) return n.VpcId end,
}

--- The network interfaces of instances (load balancers' and endpoints' are not listed).
function M.DescribeNetworkInterfaces(ctx, p)
  local list = {}
  for _, inst in ipairs(C.instances(ctx)) do
    local rec = M.instance_record(ctx, inst)
    for _, n in ipairs(rec.NetworkInterfaces) do
      local eni = C.copy(n)
      eni.AvailabilityZone = rec.Placement.AvailabilityZone
      eni.Attachment.InstanceId = rec.InstanceId
      eni.Attachment.InstanceOwnerId = ctx.account
      eni.TagSet = C.copy(launch_tags(ctx, inst, "network-interface") or {})
      list[#list + 1] = eni
    end
  end
  list = by_ids(ctx, list, p.NetworkInterfaceIds, "NetworkInterfaceId",
    "InvalidNetworkInterfaceID.NotFound", "network interface")
  list = C.filter(ctx, list, p.Filters, ENI_FILTERS)
  local page, token = C.page(ctx, list, p)
  return { NetworkInterfaces = page, NextToken = token }
end

---------------------------------------------------------------------------------------
-- Tags on any resource

local function instance_exists(ctx, id)
  for _, inst in ipairs(C.instances(ctx)) do
    if inst.id == id then return true end
  end
  return false
end

-- The record CreateTags/DeleteTags act on; instances keep EC2-side tags in
-- db.instance_tags (their records belong to Auto Scaling).
local function taggable(ctx, id)
  local prefix = type(id) == "string" and id:match("^(%a+)%-") or nil
  if prefix == "i" then
    if not instance_exists(ctx, id) then
      ctx:fail("InvalidInstanceID.NotFound", ("The instance ID '%s' does not exist"):format(id))
    end
    local t = C.coll(ctx, "instance_tags")
    local rec = { Tags = t[id] or {} }
    return rec, function() t[id] = rec.Tags end
  end
  local kind = prefix and C.BY_PREFIX[prefix]
  if not kind then
    ctx:fail("InvalidID", ("The ID '%s' is not valid"):format(tostring(id)))
  end
  return C.get(ctx, kind.name, id), function() end
end

function M.CreateTags(ctx, p)
  -- Every resource is checked before any is tagged (the call is all or nothing).
  local targets = {}
  for _, id in ipairs(p.Resources) do targets[#targets + 1] = { taggable(ctx, id) } end
  for _, t in ipairs(targets) do
    C.add_tags(ctx, t[1], p.Tags)
    t[2]()
  end
  return {}
end

function M.DeleteTags(ctx, p)
  local targets = {}
  for _, id in ipairs(p.Resources) do targets[#targets + 1] = { taggable(ctx, id) } end
  for _, t in ipairs(p.Tags or {}) do
    if t.Key and t.Key:lower():sub(1, 4) == "aws:" then
      ctx:fail("InvalidParameterValue",
        "Tag keys starting with 'aws:' are reserved for internal use")
    end
  end
  for _, t in ipairs(targets) do
    C.remove_tags(t[1], p.Tags)
    t[2]()
  end
  return {}
end

local TAG_FILTERS = {
  key = function(t) return t.Key end,
  value = function(t) return t.Value end,
  ["resource-id"] = function(t) return t.ResourceId end,
  ["resource-type"] = function(t) return t.ResourceType end,
}

function M.DescribeTags(ctx, p)
  local resources = {}
  for _, kind in pairs(C.KINDS) do
    for _, r in pairs(ctx.db[kind.coll] or {}) do
      if C.visible(ctx, r) and r.Tags and #r.Tags > 0 then
        resources[#resources + 1] = { r = r, kind = kind }
      end
    end
  end
  table.sort(resources, function(a, b) return (a.r._seq or 0) < (b.r._seq or 0) end)
  local id_member = { vpc = "VpcId", subnet = "SubnetId", igw = "InternetGatewayId",
    rtb = "RouteTableId", sg = "GroupId", sgr = "SecurityGroupRuleId", vpce = "VpcEndpointId",
    lt = "LaunchTemplateId", eipalloc = "AllocationId", nat = "NatGatewayId" }
  local items = {}
  for _, e in ipairs(resources) do
    local rid = e.r[id_member[e.kind.name]]
    for _, t in ipairs(e.r.Tags) do
      -- tag:<key> filters look at the resource's tags, so each item carries them.
      items[#items + 1] = { Key = t.Key, Value = t.Value, ResourceId = rid,
        ResourceType = e.kind.rtype, Tags = e.r.Tags }
    end
  end
  for _, inst in ipairs(C.instances(ctx)) do
    local rec = M.instance_record(ctx, inst)
    for _, t in ipairs(rec.Tags) do
      items[#items + 1] = { Key = t.Key, Value = t.Value, ResourceId = inst.id,
        ResourceType = "instance", Tags = rec.Tags }
    end
  end
  items = C.filter(ctx, items, p.Filters, TAG_FILTERS)
  local page, token = C.page(ctx, items, p, { max = 1000 })
  local out = {}
  for i, t in ipairs(page) do
    out[i] = { Key = t.Key, Value = t.Value, ResourceId = t.ResourceId,
      ResourceType = t.ResourceType }
  end
  return { Tags = out, NextToken = token }
end

---------------------------------------------------------------------------------------
-- Instance status: the status checks of the running instances (IncludeAllInstances: of
-- every instance). A running instance passes both checks; one that has just started is
-- "initializing" (the simulator models no impaired instance: an outage takes the whole
-- region's API away).

local STATUS_FILTERS = {
  ["availability-zone"] = function(s) return s.AvailabilityZone end,
  ["instance-state-name"] = function(s) return s.InstanceState.Name end,
  ["instance-state-code"] = function(s) return s.InstanceState.Code end,
  ["instance-status.status"] = function(s) return s.InstanceStatus.Status end,
  ["system-status.status"] = function(s) return s.SystemStatus.Status end,
  ["instance-status.reachability"] = function(s)
    return s.InstanceStatus.Details and s.InstanceStatus.Details[1].Status
  end,
  ["system-status.reachability"] = function(s)
    return s.SystemStatus.Details and s.SystemStatus.Details[1].Status
  end,
}

-- Seconds a started instance's checks stay "initializing" (AWS: a few minutes).
M.STATUS_INITIALIZING_SECONDS = 120

local function status_of(ctx, inst)
  local running = inst.State.Name == "running"
  local summary, detail = "ok", "passed"
  if (inst.LaunchTime or 0) + M.STATUS_INITIALIZING_SECONDS > ctx:now() then
    summary, detail = "initializing", "initializing"
  end
  local function check(name)
    if not running then return { Status = "not-applicable" } end
    return { Status = summary, Details = { { Name = name, Status = detail } } }
  end
  return { InstanceId = inst.InstanceId, AvailabilityZone = inst.Placement.AvailabilityZone,
    InstanceState = { Code = inst.State.Code, Name = inst.State.Name },
    InstanceStatus = check("reachability"), SystemStatus = check("reachability") }
end

function M.DescribeInstanceStatus(ctx, p)
  if p.InstanceIds and #p.InstanceIds > 0 and p.MaxResults then
    ctx:fail("InvalidParameterCombination",
      "The parameter instancesSet cannot be used with the parameter maxResults")
  end
  local by_id, all = {}, {}
  for _, inst in ipairs(C.instances(ctx)) do
    local r = M.instance_record(ctx, inst)
    by_id[r.InstanceId] = r
    all[#all + 1] = r
  end
  local list = {}
  if p.InstanceIds and #p.InstanceIds > 0 then
    local missing = {}
    for _, id in ipairs(p.InstanceIds) do
      if by_id[id] then list[#list + 1] = by_id[id] else missing[#missing + 1] = id end
    end
    if #missing > 0 then
      ctx:fail("InvalidInstanceID.NotFound", (#missing == 1 and "The instance ID '%s' does not "
        .. "exist" or "The instance IDs '%s' do not exist"):format(table.concat(missing, ", ")))
    end
  else
    list = all
  end
  local statuses = {}
  for _, r in ipairs(list) do
    if p.IncludeAllInstances or r.State.Name == "running" then
      statuses[#statuses + 1] = status_of(ctx, r)
    end
  end
  statuses = C.filter(ctx, statuses, p.Filters, STATUS_FILTERS)
  local page, token = C.page(ctx, statuses, p)
  return { InstanceStatuses = page, NextToken = token }
end

---------------------------------------------------------------------------------------
-- Images: the public images the simulator publishes (the Amazon Linux 2 AMI of the
-- region, fo.sim.amis); the account owns none.

local amis = require "fo.sim.amis"

local IMAGE_FILTERS = {
  ["image-id"] = function(i) return i.ImageId end,
  name = function(i) return i.Name end,
  ["owner-alias"] = function(i) return i.ImageOwnerAlias end,
  ["owner-id"] = function(i) return i.OwnerId end,
  state = function(i) return i.State end,
  architecture = function(i) return i.Architecture end,
  ["is-public"] = function(i) return tostring(i.Public) end,
  ["image-type"] = function(i) return i.ImageType end,
  ["virtualization-type"] = function(i) return i.VirtualizationType end,
  ["root-device-type"] = function(i) return i.RootDeviceType end,
  ["platform-details"] = function(i) return i.PlatformDetails end,
}

function M.DescribeImages(ctx, p)
  local images = amis.images(ctx.region)
  if p.ImageIds and #p.ImageIds > 0 then
    local found, missing = {}, {}
    for _, id in ipairs(p.ImageIds) do
      if not C.well_formed(id, "ami") then
        ctx:fail("InvalidAMIID.Malformed", ("Invalid id: \"%s\" (expecting \"ami-...\")"):format(id))
      end
      local hit
      for _, i in ipairs(images) do if i.ImageId == id then hit = i end end
      if hit then found[#found + 1] = hit else missing[#missing + 1] = id end
    end
    if #missing > 0 then
      ctx:fail("InvalidAMIID.NotFound", ("The image id%s '[%s]' %s"):format(
        #missing > 1 and "s" or "", table.concat(missing, ", "),
        #missing > 1 and "do not exist" or "does not exist"))
    end
    images = found
  end
  if p.Owners and #p.Owners > 0 then
    local kept = {}
    for _, i in ipairs(images) do
      for _, o in ipairs(p.Owners) do
        if o == i.ImageOwnerAlias or o == i.OwnerId then kept[#kept + 1] = i; break end
      end
    end
    images = kept
  end
  images = C.filter(ctx, images, p.Filters, IMAGE_FILTERS)
  local page, token = C.page(ctx, images, p)
  return { Images = page, NextToken = token }
end

return M
