-- The simulator's EC2: the 55 operations the failover stack uses (docs/aws-operations.md,
-- EC2), with AWS's behaviour. The handler contract is in docs/simulator.md ("Service
-- handlers"). This file holds availability zones, VPCs, subnets and internet gateways;
-- beside it in services/ec2/: route_tables.lua, security_groups.lua, endpoints.lua,
-- launch_templates.lua, instances.lua (DescribeInstances and tags), run_instances.lua
-- (RunInstances, TerminateInstances), default_vpc.lua (the default VPC every region has,
-- made on the region's first call; account attributes, network ACLs, DHCP options),
-- flow_logs.lua, nat_gateways.lua (Elastic IPs, NAT gateways), instance_types.lua
-- (DescribeInstanceTypes) and common.lua (lookups, tags, filters, paging, CIDRs, other services' state).
--
-- AWS behaviour modelled here (checked against the EC2 API reference):
--   * a new VPC gets its main route table (the local route for its CIDR) and its
--     "default" security group (all egress; all ingress from itself); DNS support on,
--     DNS hostnames off; the VPC CIDR is /16../28 (InvalidVpc.Range); 5 VPCs per region;
--   * subnets lie inside their VPC's CIDR (InvalidSubnet.Range), do not overlap a
--     sibling (InvalidSubnet.Conflict), are /16../28, in an AZ of the region; they have
--     size − 5 usable addresses (AWS reserves 5) minus the ENIs in them;
--   * one internet gateway per VPC (Resource.AlreadyAssociated), detach only from the
--     VPC it is attached to (Gateway.NotAttached), and not while the VPC has public
--     addresses mapped (an internet-facing load balancer); delete only when detached;
--   * deletes of things still in use → DependencyViolation (a VPC with subnets, an
--     attached gateway, security groups, route tables, endpoints, NAT gateways or load
--     balancers; a subnet with ENIs of load balancers, instances, interface endpoints or
--     NAT gateways); the internet gateway stays attached while a NAT gateway maps a
--     public address in its VPC;
--   * right after a create, Describe by id answers NotFound for the consistency window
--     (knob consistency_ms), and lists leave the resource out;
--   * DryRun=true answers 412 DryRunOperation for every operation.
local C = require "fo.sim.services.ec2.common"
local SG = require "fo.sim.services.ec2.security_groups"
local EP = require "fo.sim.services.ec2.endpoints"
local LT = require "fo.sim.services.ec2.launch_templates"
local RT = require "fo.sim.services.ec2.route_tables"
local INST = require "fo.sim.services.ec2.instances"
local DEFAULT = require "fo.sim.services.ec2.default_vpc"
local RUN = require "fo.sim.services.ec2.run_instances"
local FL = require "fo.sim.services.ec2.flow_logs"
local NAT = require "fo.sim.services.ec2.nat_gateways"
local TYPES = require "fo.sim.services.ec2.instance_types"

SG.lt_data = LT.data_of

local M = {}

-- AWS's default quotas per region (VPCs, internet gateways).
local VPCS_PER_REGION = 5
local IGWS_PER_REGION = 5

local function count(t)
  local n = 0
  for _ in pairs(t or {}) do n = n + 1 end
  return n
end

local function nil_if_empty(list)
  return #list > 0 and list or nil
end

---------------------------------------------------------------------------------------
-- Availability zones

local AZ_FILTERS = {
  ["zone-name"] = function(z) return z.ZoneName end,
  ["zone-id"] = function(z) return z.ZoneId end,
  ["state"] = function(z) return z.State end,
  ["region-name"] = function(z) return z.RegionName end,
  ["zone-type"] = function(z) return z.ZoneType end,
  ["group-name"] = function(z) return z.GroupName end,
  ["opt-in-status"] = function(z) return z.OptInStatus end,
  ["network-border-group"] = function(z) return z.NetworkBorderGroup end,
}

local function zones(ctx)
  local out = {}
  for i, z in ipairs(ctx:azs()) do
    out[i] = { ZoneName = z.ZoneName, ZoneId = z.ZoneId, RegionName = ctx.region,
      State = z.State or "available", ZoneType = z.ZoneType or "availability-zone",
      GroupName = z.GroupName or ctx.region, NetworkBorderGroup = z.NetworkBorderGroup
        or ctx.region, OptInStatus = z.OptInStatus or "opt-in-not-required",
      Messages = {} }
  end
  return out
end

function M.DescribeAvailabilityZones(ctx, p)
  local list = zones(ctx)
  local function only(values, field)
    if values == nil or #values == 0 then return end
    local keep = {}
    for _, v in ipairs(values) do
      local hit = false
      for _, z in ipairs(list) do
        if z[field] == v then keep[#keep + 1] = z; hit = true end
      end
      if not hit then
        ctx:fail("InvalidParameterValue", ("Invalid availability zone: [%s]"):format(v))
      end
    end
    list = keep
  end
  only(p.ZoneNames, "ZoneName")
  only(p.ZoneIds, "ZoneId")
  return { AvailabilityZones = C.filter(ctx, list, p.Filters, AZ_FILTERS) }
end

---------------------------------------------------------------------------------------
-- VPCs

local function vpc_view(v, state)
  local assoc = {}
  for i, a in ipairs(v.CidrBlockAssociationSet) do
    assoc[i] = { AssociationId = a.AssociationId, CidrBlock = a.CidrBlock,
      CidrBlockState = { State = a.CidrBlockState.State } }
  end
  local v6 = {}
  for i, a in ipairs(v.Ipv6CidrBlockAssociationSet or {}) do
    v6[i] = { AssociationId = a.AssociationId, Ipv6CidrBlock = a.Ipv6CidrBlock,
      Ipv6CidrBlockState = { State = a.Ipv6CidrBlockState.State },
      NetworkBorderGroup = a.NetworkBorderGroup, Ipv6Pool = a.Ipv6Pool }
  end
  return { VpcId = v.VpcId, CidrBlock = v.CidrBlock, CidrBlockAssociationSet = assoc,
    Ipv6CidrBlockAssociationSet = nil_if_empty(v6), DhcpOptionsId = v.DhcpOptionsId,
    InstanceTenancy = v.InstanceTenancy, IsDefault = v.IsDefault, OwnerId = v.OwnerId,
    State = state or v.State, Tags = nil_if_empty(C.copy_tags(v.Tags)) }
end

-- A block given as a VPC or subnet CIDR: well formed (else InvalidParameterValue), a
-- network address, /16../28 (else `range_code`).
local function block(ctx, cidr, range_code)
  local base, n = C.parse_cidr(cidr)
  if not base or not C.is_network(base, n) then
    ctx:fail("InvalidParameterValue",
      ("Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.")
        :format(tostring(cidr)))
  end
  if n < 16 or n > 28 then
    ctx:fail(range_code, ("The CIDR '%s' is invalid."):format(cidr))
  end
  return base, n
end

-- A new VPC with its main route table and default security group (AWS makes both with
-- it); CreateVpc and the default VPC (ec2/default_vpc.lua) build through here.
local function new_vpc(ctx, cidr, tags, is_default)
  local vpc = { VpcId = ctx:id("vpc"), CidrBlock = cidr, State = "available",
    OwnerId = ctx.account, InstanceTenancy = "default",
    IsDefault = is_default, DhcpOptionsId = DEFAULT.dhcp_options_id(ctx), Tags = tags or {},
    CidrBlockAssociationSet = { { AssociationId = ctx:id("vpc-cidr-assoc"), CidrBlock = cidr,
      CidrBlockState = { State = "associated" } } },
    -- the default VPC has DNS hostnames on, a new one off
    _dns_support = true, _dns_hostnames = is_default, _nau_metrics = false }
  C.coll(ctx, "vpcs")[vpc.VpcId] = vpc
  C.created(ctx, vpc)
  RT.new_route_table(ctx, vpc, {}, true)
  SG.create_group(ctx, vpc, "default", "default VPC security group", {}, true)
  return vpc
end

function M.CreateVpc(ctx, p)
  if p.CidrBlock == nil then
    ctx:fail("MissingParameter", "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.")
  end
  local base, n = block(ctx, p.CidrBlock, "InvalidVpc.Range")
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "vpc")
  if count(ctx.db.vpcs) >= VPCS_PER_REGION then
    ctx:fail("VpcLimitExceeded", "The maximum number of VPCs has been reached.")
  end
  local vpc = new_vpc(ctx, C.ip(base) .. "/" .. n, tags, false)
  if p.InstanceTenancy then vpc.InstanceTenancy = p.InstanceTenancy end
  if p.AmazonProvidedIpv6CidrBlock then
    local h = C.hash_hex(vpc.VpcId, 6)
    vpc.Ipv6CidrBlockAssociationSet = { { AssociationId = ctx:id("vpc-cidr-assoc"),
      Ipv6CidrBlock = ("2a05:d0%s:%s:%s00::/56"):format(h:sub(1, 2), h:sub(3, 6), h:sub(1, 2)),
      Ipv6CidrBlockState = { State = "associated" }, NetworkBorderGroup = ctx.region,
      Ipv6Pool = "Amazon" } }
  end
  -- AWS answers a new VPC as "pending"; it is "available" from then on.
  return { Vpc = vpc_view(vpc, "pending") }
end

local VPC_FILTERS = {
  ["vpc-id"] = function(v) return v.VpcId end,
  ["cidr"] = function(v) return v.CidrBlock end,
  ["cidr-block-association.cidr-block"] = function(v) return v.CidrBlock end,
  ["cidr-block-association.association-id"] = function(v)
    return v.CidrBlockAssociationSet[1].AssociationId
  end,
  ["cidr-block-association.state"] = function() return "associated" end,
  ["dhcp-options-id"] = function(v) return v.DhcpOptionsId end,
  ["is-default"] = function(v) return v.IsDefault end,
  ["owner-id"] = function(v) return v.OwnerId end,
  ["state"] = function(v) return v.State end,
}

function M.DescribeVpcs(ctx, p)
  local list = C.filter(ctx, C.candidates(ctx, "vpc", p.VpcIds), p.Filters, VPC_FILTERS)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, v in ipairs(page) do out[i] = vpc_view(v) end
  return { Vpcs = out, NextToken = token }
end

local VPC_ATTRIBUTES = {
  EnableDnsSupport = "_dns_support", EnableDnsHostnames = "_dns_hostnames",
  EnableNetworkAddressUsageMetrics = "_nau_metrics",
}

function M.ModifyVpcAttribute(ctx, p)
  local vpc = C.get(ctx, "vpc", p.VpcId)
  local given = {}
  for member in pairs(VPC_ATTRIBUTES) do
    if p[member] ~= nil then given[#given + 1] = member end
  end
  table.sort(given)
  -- AWS modifies one attribute per call.
  if #given > 1 then
    local names = {}
    for i, g in ipairs(given) do names[i] = g:sub(1, 1):lower() .. g:sub(2) end
    ctx:fail("InvalidParameterCombination",
      "Fields for multiple attribute types specified: " .. table.concat(names, ", "))
  end
  if #given == 0 then
    ctx:fail("MissingParameter",
      "The request must contain one of the parameters enableDnsSupport, enableDnsHostnames "
        .. "or enableNetworkAddressUsageMetrics")
  end
  local member = given[1]
  local value = p[member].Value
  if value == nil then
    ctx:fail("MissingParameter", ("The request must contain the parameter %s.value")
      :format(member:sub(1, 1):lower() .. member:sub(2)))
  end
  -- DNS hostnames need DNS resolution in the VPC.
  if member == "EnableDnsHostnames" and value and not vpc._dns_support then
    ctx:fail("InvalidParameterValue",
      "Cannot enable DNS hostnames for a VPC that does not have DNS support enabled.")
  end
  vpc[VPC_ATTRIBUTES[member]] = value
  return {}
end

function M.DescribeVpcAttribute(ctx, p)
  local vpc = C.get(ctx, "vpc", p.VpcId)
  local member = p.Attribute:sub(1, 1):upper() .. p.Attribute:sub(2)
  local field = VPC_ATTRIBUTES[member]
  if not field then
    ctx:fail("InvalidParameterValue",
      ("Value (%s) for parameter attribute is invalid. Unknown attribute."):format(p.Attribute))
  end
  return { VpcId = vpc.VpcId, [member] = { Value = vpc[field] == true } }
end

-- What keeps a VPC from being deleted (AWS: DependencyViolation until all are gone).
local function vpc_dependencies(ctx, vpc_id)
  for _, s in pairs(ctx.db.subnets or {}) do
    if s.VpcId == vpc_id then return true end
  end
  for _, g in pairs(ctx.db.internet_gateways or {}) do
    for _, a in ipairs(g.Attachments) do
      if a.VpcId == vpc_id then return true end
    end
  end
  for _, g in pairs(ctx.db.security_groups or {}) do
    if g.VpcId == vpc_id and not g._default then return true end
  end
  for _, rt in pairs(ctx.db.route_tables or {}) do
    if rt.VpcId == vpc_id and not rt._main then return true end
  end
  for _, e in pairs(ctx.db.vpc_endpoints or {}) do
    if e.VpcId == vpc_id then return true end
  end
  for _, lb in ipairs(C.load_balancers(ctx)) do
    if lb.vpc == vpc_id then return true end
  end
  if #NAT.live(ctx, function(g) return g.VpcId == vpc_id end) > 0 then return true end
  return false
end

function M.DeleteVpc(ctx, p)
  local vpc = C.get(ctx, "vpc", p.VpcId)
  if vpc_dependencies(ctx, vpc.VpcId) then
    ctx:fail("DependencyViolation",
      ("The vpc '%s' has dependencies and cannot be deleted."):format(vpc.VpcId))
  end
  -- The main route table and the default security group go with the VPC.
  local rt = RT.main_route_table(ctx, vpc.VpcId)
  if rt then ctx.db.route_tables[rt.RouteTableId] = nil end
  for _, g in pairs(C.copy(ctx.db.security_groups or {})) do
    if g.VpcId == vpc.VpcId then SG.remove_group(ctx, ctx.db.security_groups[g.GroupId]) end
  end
  ctx.db.vpcs[vpc.VpcId] = nil
  return {}
end

---------------------------------------------------------------------------------------
-- Subnets

-- ENIs in a subnet: one per load balancer per subnet, one per interface endpoint, one
-- per instance not terminated, one per NAT gateway not deleted. Returns the count.
local function enis_in(ctx, subnet_id)
  local n = 0
  for _, lb in ipairs(C.load_balancers(ctx)) do
    for _, s in ipairs(lb.subnets) do
      if s == subnet_id then n = n + 1 end
    end
  end
  for _, e in pairs(ctx.db.vpc_endpoints or {}) do
    for _, s in ipairs(e.SubnetIds or {}) do
      if s == subnet_id then n = n + 1 end
    end
  end
  for _, inst in ipairs(C.instances(ctx)) do
    if inst.subnet == subnet_id and inst.state ~= "terminated" then n = n + 1 end
  end
  n = n + #NAT.live(ctx, function(g) return g.SubnetId == subnet_id end)
  return n
end

local function subnet_view(ctx, s)
  local _, n = C.parse_cidr(s.CidrBlock)
  -- AWS reserves the first four addresses and the last one of every subnet.
  local free = (1 << (32 - n)) - 5 - enis_in(ctx, s.SubnetId)
  return { SubnetId = s.SubnetId, SubnetArn = s.SubnetArn, VpcId = s.VpcId,
    CidrBlock = s.CidrBlock, AvailabilityZone = s.AvailabilityZone,
    AvailabilityZoneId = s.AvailabilityZoneId, AvailableIpAddressCount = free,
    DefaultForAz = s.DefaultForAz == true, MapPublicIpOnLaunch = s.MapPublicIpOnLaunch,
    MapCustomerOwnedIpOnLaunch = false, AssignIpv6AddressOnCreation =
      s.AssignIpv6AddressOnCreation, Ipv6CidrBlockAssociationSet = {},
    EnableDns64 = s.EnableDns64, Ipv6Native = false, State = s.State, OwnerId = s.OwnerId,
    PrivateDnsNameOptionsOnLaunch = C.copy(s.PrivateDnsNameOptionsOnLaunch),
    Tags = nil_if_empty(C.copy_tags(s.Tags)) }
end

-- The AZ a subnet goes to: by name or id (they must agree), else the region's first.
local function subnet_zone(ctx, p)
  local list = zones(ctx)
  local names = {}
  for i, z in ipairs(list) do names[i] = z.ZoneName end
  local by_name, by_id
  for _, z in ipairs(list) do
    if z.ZoneName == p.AvailabilityZone then by_name = z end
    if z.ZoneId == p.AvailabilityZoneId then by_id = z end
  end
  if p.AvailabilityZone and not by_name then
    ctx:fail("InvalidParameterValue",
      ("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be "
        .. "created in the following availability zones: %s."):format(p.AvailabilityZone,
        table.concat(names, ", ")))
  end
  if p.AvailabilityZoneId and not by_id then
    ctx:fail("InvalidParameterValue",
      ("Value (%s) for parameter availabilityZoneId is invalid."):format(p.AvailabilityZoneId))
  end
  if by_name and by_id and by_name ~= by_id then
    ctx:fail("InvalidParameterCombination",
      "The parameters availabilityZone and availabilityZoneId do not name the same zone.")
  end
  return by_name or by_id or list[1]
end

-- A new subnet record (CreateSubnet's, and the default VPC's default subnets: those map
-- public addresses on launch).
local function new_subnet(ctx, vpc, cidr, zone, tags, default_for_az)
  local id = ctx:id("subnet")
  local s = { SubnetId = id, SubnetArn = ctx:arn("subnet/" .. id, { service = "ec2" }),
    VpcId = vpc.VpcId, CidrBlock = cidr, AvailabilityZone = zone.ZoneName,
    AvailabilityZoneId = zone.ZoneId, MapPublicIpOnLaunch = default_for_az,
    DefaultForAz = default_for_az or nil,
    AssignIpv6AddressOnCreation = false, EnableDns64 = false, State = "available",
    OwnerId = ctx.account, Tags = tags or {},
    PrivateDnsNameOptionsOnLaunch = { HostnameType = "ip-name",
      EnableResourceNameDnsARecord = false, EnableResourceNameDnsAAAARecord = false } }
  C.coll(ctx, "subnets")[id] = s
  C.created(ctx, s)
  return s
end

function M.CreateSubnet(ctx, p)
  local vpc = C.get(ctx, "vpc", p.VpcId)
  if p.CidrBlock == nil then
    ctx:fail("MissingParameter", "The request must contain the parameter cidrBlock")
  end
  local base, n = block(ctx, p.CidrBlock, "InvalidSubnet.Range")
  local vbase, vn = C.parse_cidr(vpc.CidrBlock)
  if not C.contains(vbase, vn, base, n) then
    ctx:fail("InvalidSubnet.Range", ("The CIDR '%s' is invalid."):format(p.CidrBlock))
  end
  for _, s in pairs(ctx.db.subnets or {}) do
    if s.VpcId == vpc.VpcId then
      local sb, sn = C.parse_cidr(s.CidrBlock)
      if C.overlaps(sb, sn, base, n) then
        ctx:fail("InvalidSubnet.Conflict",
          ("The CIDR '%s' conflicts with another subnet"):format(p.CidrBlock))
      end
    end
  end
  local zone = subnet_zone(ctx, p)
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "subnet")
  local s = new_subnet(ctx, vpc, C.ip(base) .. "/" .. n, zone, tags, false)
  return { Subnet = subnet_view(ctx, s) }
end

local SUBNET_FILTERS = {
  ["subnet-id"] = function(s) return s.SubnetId end,
  ["vpc-id"] = function(s) return s.VpcId end,
  ["availability-zone"] = function(s) return s.AvailabilityZone end,
  ["availability-zone-id"] = function(s) return s.AvailabilityZoneId end,
  ["cidr-block"] = function(s) return s.CidrBlock end,
  ["default-for-az"] = function(s) return s.DefaultForAz == true end,
  ["map-public-ip-on-launch"] = function(s) return s.MapPublicIpOnLaunch end,
  ["owner-id"] = function(s) return s.OwnerId end,
  ["state"] = function(s) return s.State end,
  ["subnet-arn"] = function(s) return s.SubnetArn end,
}
-- AWS still accepts the old names of cidr-block.
SUBNET_FILTERS.cidr = SUBNET_FILTERS["cidr-block"]
SUBNET_FILTERS.cidrBlock = SUBNET_FILTERS["cidr-block"]

function M.DescribeSubnets(ctx, p)
  local fields = {}
  for k, f in pairs(SUBNET_FILTERS) do fields[k] = f end
  fields["available-ip-address-count"] = function(s)
    return subnet_view(ctx, s).AvailableIpAddressCount
  end
  local list = C.filter(ctx, C.candidates(ctx, "subnet", p.SubnetIds), p.Filters, fields)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, s in ipairs(page) do out[i] = subnet_view(ctx, s) end
  return { Subnets = out, NextToken = token }
end

-- ModifySubnetAttribute: one attribute per call; boolean ones arrive as {Value=}.
local SUBNET_BOOL_ATTRIBUTES = {
  MapPublicIpOnLaunch = "MapPublicIpOnLaunch", EnableDns64 = "EnableDns64",
  AssignIpv6AddressOnCreation = "AssignIpv6AddressOnCreation",
  EnableResourceNameDnsARecordOnLaunch = "EnableResourceNameDnsARecord",
  EnableResourceNameDnsAAAARecordOnLaunch = "EnableResourceNameDnsAAAARecord",
  MapCustomerOwnedIpOnLaunch = false,
}

function M.ModifySubnetAttribute(ctx, p)
  local s = C.get(ctx, "subnet", p.SubnetId)
  local given = {}
  for k, v in pairs(p) do
    if k ~= "SubnetId" and k ~= "DryRun" and v ~= nil then given[#given + 1] = k end
  end
  if #given > 1 then
    ctx:fail("InvalidParameterCombination", "You can only modify one attribute at a time.")
  end
  if #given == 0 then
    ctx:fail("MissingParameter", "The request must contain the attribute to modify")
  end
  local member = given[1]
  if member == "PrivateDnsHostnameTypeOnLaunch" then
    s.PrivateDnsNameOptionsOnLaunch.HostnameType = p[member]
    return {}
  end
  local field = SUBNET_BOOL_ATTRIBUTES[member]
  if not field then
    ctx:fail("InvalidParameterValue",
      ("The attribute %s cannot be modified on this subnet"):format(member))
  end
  local value = p[member].Value == true
  if member == "AssignIpv6AddressOnCreation" and value then
    ctx:fail("InvalidParameterValue",
      ("Subnet %s does not have an IPv6 CIDR block"):format(s.SubnetId))
  end
  if field == "EnableResourceNameDnsARecord" or field == "EnableResourceNameDnsAAAARecord" then
    s.PrivateDnsNameOptionsOnLaunch[field] = value
  else
    s[field] = value
  end
  return {}
end

function M.DeleteSubnet(ctx, p)
  local s = C.get(ctx, "subnet", p.SubnetId)
  if enis_in(ctx, s.SubnetId) > 0 then
    ctx:fail("DependencyViolation",
      ("The subnet '%s' has dependencies and cannot be deleted."):format(s.SubnetId))
  end
  -- Its route table association goes with it.
  for _, rt in pairs(ctx.db.route_tables or {}) do
    local keep = {}
    for _, a in ipairs(rt.Associations) do
      if a.SubnetId ~= s.SubnetId then keep[#keep + 1] = a end
    end
    rt.Associations = keep
  end
  ctx.db.subnets[s.SubnetId] = nil
  return {}
end

---------------------------------------------------------------------------------------
-- Internet gateways

local function igw_view(g)
  local att = {}
  -- AWS writes an attached gateway's state as "available", a value the model's
  -- AttachmentStatus enum lacks (model enums are not closed; the sim answers as AWS does).
  for i, a in ipairs(g.Attachments) do att[i] = { State = "available", VpcId = a.VpcId } end
  return { InternetGatewayId = g.InternetGatewayId, OwnerId = g.OwnerId, Attachments = att,
    Tags = nil_if_empty(C.copy_tags(g.Tags)) }
end

local function new_igw(ctx, tags)
  local g = { InternetGatewayId = ctx:id("igw"), OwnerId = ctx.account, Attachments = {},
    Tags = tags or {} }
  C.coll(ctx, "internet_gateways")[g.InternetGatewayId] = g
  C.created(ctx, g)
  return g
end

function M.CreateInternetGateway(ctx, p)
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "internet-gateway")
  if count(ctx.db.internet_gateways) >= IGWS_PER_REGION then
    ctx:fail("InternetGatewayLimitExceeded",
      "The maximum number of internet gateways has been reached.")
  end
  return { InternetGateway = igw_view(new_igw(ctx, tags)) }
end

local function igw_of_vpc(ctx, vpc_id)
  for _, g in pairs(ctx.db.internet_gateways or {}) do
    for _, a in ipairs(g.Attachments) do
      if a.VpcId == vpc_id then return g end
    end
  end
  return nil
end

function M.AttachInternetGateway(ctx, p)
  local g = C.get(ctx, "igw", p.InternetGatewayId)
  local vpc = C.get(ctx, "vpc", p.VpcId)
  if #g.Attachments > 0 then
    ctx:fail("Resource.AlreadyAssociated", ("resource %s is already attached to network %s")
      :format(g.InternetGatewayId, g.Attachments[1].VpcId))
  end
  local other = igw_of_vpc(ctx, vpc.VpcId)
  if other then
    ctx:fail("Resource.AlreadyAssociated",
      ("network %s already has an internet gateway attached"):format(vpc.VpcId))
  end
  g.Attachments[1] = { VpcId = vpc.VpcId, State = "attached" }
  return {}
end

function M.DetachInternetGateway(ctx, p)
  local g = C.get(ctx, "igw", p.InternetGatewayId)
  C.get(ctx, "vpc", p.VpcId)
  if #g.Attachments == 0 or g.Attachments[1].VpcId ~= p.VpcId then
    ctx:fail("Gateway.NotAttached", ("resource %s is not attached to network %s")
      :format(g.InternetGatewayId, p.VpcId))
  end
  -- Public addresses (an internet-facing load balancer's, a public NAT gateway's) keep the
  -- gateway attached.
  local mapped = NAT.live(ctx, function(n)
    return n.VpcId == p.VpcId and n.ConnectivityType == "public"
  end)
  if #mapped > 0 then
    ctx:fail("DependencyViolation",
      ("Network %s has some mapped public address(es). Please unmap those public "
        .. "address(es) before detaching the gateway."):format(p.VpcId))
  end
  for _, lb in ipairs(C.load_balancers(ctx)) do
    if lb.scheme == "internet-facing" then
      for _, sid in ipairs(lb.subnets) do
        local s = C.find(ctx, "subnet", sid)
        if s and s.VpcId == p.VpcId then
          ctx:fail("DependencyViolation",
            ("Network %s has some mapped public address(es). Please unmap those public "
              .. "address(es) before detaching the gateway."):format(p.VpcId))
        end
      end
    end
  end
  g.Attachments = {}
  return {}
end

local IGW_FILTERS = {
  ["internet-gateway-id"] = function(g) return g.InternetGatewayId end,
  ["attachment.vpc-id"] = function(g)
    return g.Attachments[1] and g.Attachments[1].VpcId or nil
  end,
  -- AWS's filter value for an attached gateway is "available", as its state reads.
  ["attachment.state"] = function(g)
    return g.Attachments[1] and "available" or nil
  end,
  ["owner-id"] = function(g) return g.OwnerId end,
}

function M.DescribeInternetGateways(ctx, p)
  local list = C.filter(ctx, C.candidates(ctx, "igw", p.InternetGatewayIds), p.Filters,
    IGW_FILTERS)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, g in ipairs(page) do out[i] = igw_view(g) end
  return { InternetGateways = out, NextToken = token }
end

function M.DeleteInternetGateway(ctx, p)
  local g = C.get(ctx, "igw", p.InternetGatewayId)
  if #g.Attachments > 0 then
    ctx:fail("DependencyViolation",
      ("The internetGateway '%s' has dependencies and cannot be deleted.")
        :format(g.InternetGatewayId))
  end
  ctx.db.internet_gateways[g.InternetGatewayId] = nil
  return {}
end

---------------------------------------------------------------------------------------
-- The handlers of the other files, and DryRun for all of them.

for _, mod in ipairs({ SG, EP, LT, RT, INST, DEFAULT, RUN, FL, NAT, TYPES }) do
  for name, fn in pairs(mod) do
    if type(fn) == "function" and name:match("^%u") then M[name] = fn end
  end
end

-- DryRun: AWS checks the caller's permission and answers 412 DryRunOperation instead of
-- acting (the simulator grants every permission).
-- The default VPC's constructors (ec2/default_vpc.lua builds it on a region's first call).
local BUILD_DEFAULT = {
  vpc = function(ctx, cidr) return new_vpc(ctx, cidr, {}, true) end,
  subnet = function(ctx, vpc, cidr, zone) return new_subnet(ctx, vpc, cidr, zone, {}, true) end,
  igw = function(ctx, vpc)
    local g = new_igw(ctx, {})
    g.Attachments[1] = { VpcId = vpc.VpcId, State = "attached" }
    local rt = RT.main_route_table(ctx, vpc.VpcId)
    rt.Routes[#rt.Routes + 1] = { DestinationCidrBlock = "0.0.0.0/0",
      GatewayId = g.InternetGatewayId, Origin = "CreateRoute", State = "active" }
  end,
}

for name, fn in pairs(M) do
  M[name] = function(ctx, p)
    DEFAULT.ensure(ctx, BUILD_DEFAULT)
    if p and p.DryRun then ctx:fail("DryRunOperation", C.DRY_RUN, 412) end
    return fn(ctx, p or {})
  end
end

return M
