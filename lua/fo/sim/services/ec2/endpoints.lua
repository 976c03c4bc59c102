-- Simulated VPC endpoints, as AWS behaves:
--   * Gateway endpoints (com.amazonaws.<region>.dynamodb / .s3) add a route to the
--     service's prefix list (pl-…) → the endpoint to each route table given, and remove
--     it when the table is removed from the endpoint or the endpoint is deleted;
--     a route table with a route to that prefix list already → RouteAlreadyExists;
--   * Interface endpoints take one subnet per AZ and hold one ENI per subnet (so the
--     subnet cannot be deleted while they exist); private DNS needs the VPC's DNS
--     support and hostnames; adding a security group the endpoint has already is a no-op;
--   * the default policy is full access; ClientToken makes a create idempotent;
--   * DeleteVpcEndpoints answers ids it cannot delete in Unsuccessful, not as an error;
--   * DescribePrefixLists lists the AWS-managed prefix list of each gateway service
--     (com.amazonaws.<region>.dynamodb / .s3): what a security group egress rule names
--     to reach the service through a gateway endpoint.
local C = require "fo.sim.services.ec2.common"

local M = {}

-- Services offering a Gateway endpoint; every listed service offers Interface ones.
local GATEWAY_SERVICES = { dynamodb = true, s3 = true }
local INTERFACE_SERVICES = { dynamodb = true, s3 = true, ec2 = true, ec2messages = true,
  ssm = true, ssmmessages = true, logs = true, monitoring = true, sns = true, sqs = true,
  sts = true, kms = true, secretsmanager = true, elasticloadbalancing = true,
  autoscaling = true, ["ecr.api"] = true, ["ecr.dkr"] = true, events = true }

-- The policy an endpoint gets without one (AWS's default: full access).
local FULL_ACCESS = '{"Version":"2008-10-17","Statement":[{"Effect":"Allow",'
  .. '"Principal":"*","Action":"*","Resource":"*"}]}'

-- AWS writes the endpoint State in lower case ("available") although the model's enum says
-- "Available"; the sim answers as AWS does (model enums are not closed).
local AVAILABLE = "available"

--- The AWS-managed prefix list of a gateway service in this region: a fixed id per
--- region and service (AWS's are per region too, e.g. pl-xxxxxxxx).
function M.prefix_list(region, service)
  return "pl-" .. C.hash_hex("prefix-list:" .. region .. ":" .. service, 8)
end

-- Illustrative public ranges of a prefix list (AWS's change over time; only the shape
-- matters here): two /24 blocks derived from the list's id.
local function prefix_list_cidrs(id)
  local h = tonumber(C.hash_hex(id, 4), 16)
  return { ("52.94.%d.0/24"):format(h % 256), ("3.218.%d.0/24"):format((h >> 8) % 256) }
end

local function service_of(ctx, name)
  local svc = type(name) == "string"
    and name:match("^com%.amazonaws%." .. ctx.region:gsub("%-", "%%-") .. "%.(.+)$")
  if not svc or not INTERFACE_SERVICES[svc] then
    ctx:fail("InvalidServiceName",
      ("The Vpc Endpoint Service '%s' does not exist"):format(tostring(name)))
  end
  return svc
end

function M.view(e)
  local tags = C.copy_tags(e.Tags)
  local gw = e.VpcEndpointType == "Gateway"
  local groups
  if not gw then
    groups = {}
    for i, g in ipairs(e.Groups or {}) do groups[i] = { GroupId = g.GroupId, GroupName = g.GroupName } end
  end
  local dns
  if not gw then
    dns = {}
    for i, d in ipairs(e.DnsEntries or {}) do dns[i] = { DnsName = d.DnsName, HostedZoneId = d.HostedZoneId } end
  end
  return { VpcEndpointId = e.VpcEndpointId, VpcEndpointType = e.VpcEndpointType,
    VpcId = e.VpcId, ServiceName = e.ServiceName, State = e.State,
    PolicyDocument = e.PolicyDocument, RouteTableIds = C.copy(e.RouteTableIds or {}),
    SubnetIds = C.copy(e.SubnetIds or {}), Groups = groups,
    NetworkInterfaceIds = C.copy(e.NetworkInterfaceIds or {}), DnsEntries = dns,
    IpAddressType = e.IpAddressType,
    DnsOptions = not gw and { DnsRecordIpType = "ipv4" } or nil,
    PrivateDnsEnabled = e.PrivateDnsEnabled, RequesterManaged = false,
    CreationTimestamp = e.CreationTimestamp, OwnerId = e.OwnerId,
    Tags = #tags > 0 and tags or nil }
end

-- Route tables of a gateway endpoint: each must exist, be in the endpoint's VPC and not
-- route the prefix list already.
local function check_tables(ctx, e, ids)
  local out = {}
  for _, id in ipairs(ids or {}) do
    local rt = C.get(ctx, "rtb", id)
    if rt.VpcId ~= e.VpcId then
      ctx:fail("InvalidParameter",
        ("Route table %s does not belong to VPC %s"):format(id, e.VpcId))
    end
    for _, r in ipairs(rt.Routes) do
      if r.DestinationPrefixListId == e._prefix_list then
        ctx:fail("RouteAlreadyExists",
          ("route table %s already has a route with destination-prefix-list-id %s")
            :format(id, e._prefix_list))
      end
    end
    out[#out + 1] = rt
  end
  return out
end

local function add_route(e, rt)
  rt.Routes[#rt.Routes + 1] = { DestinationPrefixListId = e._prefix_list,
    GatewayId = e.VpcEndpointId, Origin = "CreateRoute", State = "active" }
  local ids = e.RouteTableIds
  for _, id in ipairs(ids) do
    if id == rt.RouteTableId then return end
  end
  ids[#ids + 1] = rt.RouteTableId
end

local function remove_route(ctx, e, rt_id)
  local rt = C.find(ctx, "rtb", rt_id)
  if rt then
    local keep = {}
    for _, r in ipairs(rt.Routes) do
      if r.GatewayId ~= e.VpcEndpointId then keep[#keep + 1] = r end
    end
    rt.Routes = keep
  end
  local ids = {}
  for _, id in ipairs(e.RouteTableIds) do
    if id ~= rt_id then ids[#ids + 1] = id end
  end
  e.RouteTableIds = ids
end

-- Interface endpoint subnets: in the VPC, one per AZ; each gets an ENI.
local function add_subnets(ctx, e, ids)
  local zones = {}
  for _, sid in ipairs(e.SubnetIds) do
    local s = C.find(ctx, "subnet", sid)
    if s then zones[s.AvailabilityZone] = sid end
  end
  for _, sid in ipairs(ids or {}) do
    local s = C.get(ctx, "subnet", sid)
    if s.VpcId ~= e.VpcId then
      ctx:fail("InvalidParameter",
        ("Subnet %s does not belong to VPC %s"):format(sid, e.VpcId))
    end
    if zones[s.AvailabilityZone] then
      ctx:fail("DuplicateSubnetsInSameZone",
        ("Found another VPC endpoint subnet in the availability zone of %s. VPC endpoint "
          .. "subnets should be in different availability zones supported by the VPC "
          .. "endpoint service."):format(sid))
    end
    zones[s.AvailabilityZone] = sid
    e.SubnetIds[#e.SubnetIds + 1] = sid
    e.NetworkInterfaceIds[#e.NetworkInterfaceIds + 1] = ctx:id("eni")
    e._enis = e._enis or {}
    e._enis[sid] = e.NetworkInterfaceIds[#e.NetworkInterfaceIds]
  end
end

local function add_groups(ctx, e, ids)
  for _, gid in ipairs(ids or {}) do
    local g = C.get(ctx, "sg", gid)
    if g.VpcId ~= e.VpcId then
      ctx:fail("InvalidParameter",
        ("Security group %s does not belong to VPC %s"):format(gid, e.VpcId))
    end
    -- a group the endpoint has already is not added twice
    local have = false
    for _, x in ipairs(e.Groups) do have = have or x.GroupId == g.GroupId end
    if not have then e.Groups[#e.Groups + 1] = { GroupId = g.GroupId, GroupName = g.GroupName } end
  end
end

local function check_private_dns(ctx, vpc)
  if not (vpc._dns_support and vpc._dns_hostnames) then
    ctx:fail("InvalidParameter",
      ("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC "
        .. "attributes set to true for %s"):format(vpc.VpcId))
  end
end

function M.CreateVpcEndpoint(ctx, p)
  local existing = C.token_lookup(ctx, p)
  if existing and C.find(ctx, "vpce", existing) then
    return { VpcEndpoint = M.view(C.find(ctx, "vpce", existing)), ClientToken = p.ClientToken }
  end
  local vpc = C.get(ctx, "vpc", p.VpcId)
  local etype = p.VpcEndpointType or "Gateway"
  local svc = service_of(ctx, p.ServiceName)
  if etype == "Gateway" and not GATEWAY_SERVICES[svc] then
    ctx:fail("InvalidParameter",
      ("The VPC endpoint service %s does not support the VPC endpoint type Gateway.")
        :format(p.ServiceName))
  end
  if etype ~= "Gateway" and etype ~= "Interface" then
    ctx:fail("InvalidParameter",
      ("The VPC endpoint service %s does not support the VPC endpoint type %s.")
        :format(p.ServiceName, etype))
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "vpc-endpoint")
  local e = { VpcEndpointId = ctx:id("vpce"), VpcEndpointType = etype, VpcId = vpc.VpcId,
    ServiceName = p.ServiceName, State = AVAILABLE,
    PolicyDocument = p.PolicyDocument or FULL_ACCESS, RouteTableIds = {}, SubnetIds = {},
    NetworkInterfaceIds = {}, Groups = {}, CreationTimestamp = ctx:now(),
    OwnerId = ctx.account, Tags = tags, PrivateDnsEnabled = false }
  if etype == "Gateway" then
    if p.SubnetIds and #p.SubnetIds > 0 then
      ctx:fail("InvalidParameter", "Subnets are not supported for Gateway VPC endpoints")
    end
    e._prefix_list = M.prefix_list(ctx.region, svc)
    for _, rt in ipairs(check_tables(ctx, e, p.RouteTableIds)) do add_route(e, rt) end
  else
    if p.RouteTableIds and #p.RouteTableIds > 0 then
      ctx:fail("InvalidParameter", "Route tables are not supported for Interface VPC endpoints")
    end
    if p.SubnetIds == nil or #p.SubnetIds == 0 then
      ctx:fail("InvalidParameter", "Interface VPC endpoints need at least one subnet (SubnetIds)")
    end
    e.IpAddressType = p.IpAddressType or "ipv4"
    -- AWS services' interface endpoints enable private DNS unless told not to.
    e.PrivateDnsEnabled = p.PrivateDnsEnabled ~= false
    if e.PrivateDnsEnabled then check_private_dns(ctx, vpc) end
    add_subnets(ctx, e, p.SubnetIds)
    if p.SecurityGroupIds and #p.SecurityGroupIds > 0 then
      add_groups(ctx, e, p.SecurityGroupIds)
    else
      for _, g in pairs(ctx.db.security_groups or {}) do
        if g.VpcId == vpc.VpcId and g._default then
          e.Groups[1] = { GroupId = g.GroupId, GroupName = g.GroupName }
        end
      end
    end
    e.DnsEntries = { { DnsName = ("%s-%s.%s.%s.vpce.amazonaws.com"):format(e.VpcEndpointId,
      C.hash_hex(e.VpcEndpointId, 8), svc, ctx.region), HostedZoneId = "Z7HUB22UULQXV" } }
  end
  C.coll(ctx, "vpc_endpoints")[e.VpcEndpointId] = e
  C.created(ctx, e)
  C.token_store(ctx, p, e.VpcEndpointId)
  return { VpcEndpoint = M.view(e), ClientToken = p.ClientToken }
end

local FILTERS = {
  ["vpc-endpoint-id"] = function(e) return e.VpcEndpointId end,
  ["vpc-id"] = function(e) return e.VpcId end,
  ["service-name"] = function(e) return e.ServiceName end,
  ["vpc-endpoint-type"] = function(e) return e.VpcEndpointType end,
  ["vpc-endpoint-state"] = function(e) return e.State end,
  ["ip-address-type"] = function(e) return e.IpAddressType end,
}

function M.DescribeVpcEndpoints(ctx, p)
  local list = C.filter(ctx, C.candidates(ctx, "vpce", p.VpcEndpointIds), p.Filters, FILTERS)
  local page, token = C.page(ctx, list, p, { max = 1000 })
  local out = {}
  for i, e in ipairs(page) do out[i] = M.view(e) end
  return { VpcEndpoints = out, NextToken = token }
end

function M.ModifyVpcEndpoint(ctx, p)
  local e = C.get(ctx, "vpce", p.VpcEndpointId)
  local gw = e.VpcEndpointType == "Gateway"
  if gw then
    if (p.AddSubnetIds and #p.AddSubnetIds > 0) or (p.AddSecurityGroupIds
      and #p.AddSecurityGroupIds > 0) then
      ctx:fail("InvalidParameter",
        "Subnets and security groups are not supported for Gateway VPC endpoints")
    end
    for _, id in ipairs(p.RemoveRouteTableIds or {}) do
      local known = false
      for _, have in ipairs(e.RouteTableIds) do known = known or have == id end
      if not known then C.get(ctx, "rtb", id) end
      remove_route(ctx, e, id)
    end
    for _, rt in ipairs(check_tables(ctx, e, p.AddRouteTableIds)) do add_route(e, rt) end
  else
    if p.AddRouteTableIds and #p.AddRouteTableIds > 0 then
      ctx:fail("InvalidParameter", "Route tables are not supported for Interface VPC endpoints")
    end
    for _, sid in ipairs(p.RemoveSubnetIds or {}) do
      local keep, enis = {}, {}
      for _, have in ipairs(e.SubnetIds) do
        if have ~= sid then
          keep[#keep + 1] = have
          enis[#enis + 1] = e._enis and e._enis[have] or nil
        end
      end
      if e._enis then e._enis[sid] = nil end
      e.SubnetIds, e.NetworkInterfaceIds = keep, enis
    end
    add_subnets(ctx, e, p.AddSubnetIds)
    for _, gid in ipairs(p.RemoveSecurityGroupIds or {}) do
      local keep = {}
      for _, g in ipairs(e.Groups) do
        if g.GroupId ~= gid then keep[#keep + 1] = g end
      end
      e.Groups = keep
    end
    add_groups(ctx, e, p.AddSecurityGroupIds)
    if p.PrivateDnsEnabled ~= nil then
      if p.PrivateDnsEnabled then check_private_dns(ctx, C.get(ctx, "vpc", e.VpcId)) end
      e.PrivateDnsEnabled = p.PrivateDnsEnabled
    end
  end
  if p.ResetPolicy then
    e.PolicyDocument = FULL_ACCESS
  elseif p.PolicyDocument then
    e.PolicyDocument = p.PolicyDocument
  end
  return { Return = true }
end

local PREFIX_LIST_FILTERS = {
  ["prefix-list-id"] = function(pl) return pl.PrefixListId end,
  ["prefix-list-name"] = function(pl) return pl.PrefixListName end,
}

function M.DescribePrefixLists(ctx, p)
  local all, by_id = {}, {}
  local services = {}
  for svc in pairs(GATEWAY_SERVICES) do services[#services + 1] = svc end
  table.sort(services)
  for _, svc in ipairs(services) do
    local id = M.prefix_list(ctx.region, svc)
    local pl = { PrefixListId = id, PrefixListName = ("com.amazonaws.%s.%s"):format(ctx.region, svc),
      Cidrs = prefix_list_cidrs(id) }
    all[#all + 1] = pl
    by_id[id] = pl
  end
  local list = all
  if p.PrefixListIds and #p.PrefixListIds > 0 then
    list = {}
    for _, id in ipairs(p.PrefixListIds) do
      if not by_id[id] then
        ctx:fail("InvalidPrefixListID.NotFound",
          ("The prefix list ID '%s' does not exist"):format(id))
      end
      list[#list + 1] = by_id[id]
    end
  end
  list = C.filter(ctx, list, p.Filters, PREFIX_LIST_FILTERS)
  local page, token = C.page(ctx, list, p)
  return { PrefixLists = C.copy(page), NextToken = token }
end

--- Removes an endpoint and the routes it added.
function M.remove(ctx, e)
  for _, id in ipairs(C.copy(e.RouteTableIds or {})) do remove_route(ctx, e, id) end
  ctx.db.vpc_endpoints[e.VpcEndpointId] = nil
end

function M.DeleteVpcEndpoints(ctx, p)
  local failed = {}
  for _, id in ipairs(p.VpcEndpointIds) do
    local e = C.find(ctx, "vpce", id)
    if e then
      M.remove(ctx, e)
    else
      failed[#failed + 1] = { ResourceId = id, Error = { Code = "InvalidVpcEndpointId.NotFound",
        Message = ("The VpcEndpoint Id '%s' does not exist"):format(id) } }
    end
  end
  return { Unsuccessful = failed }
end

---------------------------------------------------------------------------------------
-- DescribeVpcEndpointServices: the AWS services of the region one can make an endpoint
-- to (those CreateVpcEndpoint accepts). A service offering both types (s3, dynamodb) is
-- listed once per type, as AWS does; ServiceNames lists each name once.

local SERVICE_FILTERS = {
  ["service-name"] = function(d) return d.ServiceName end,
  ["service-type"] = function(d) return d.ServiceType[1].ServiceType end,
  owner = function(d) return d.Owner end,
}

local function service_details(ctx)
  local names = {}
  for svc in pairs(INTERFACE_SERVICES) do names[#names + 1] = svc end
  table.sort(names)
  local azs = {}
  for _, az in ipairs(ctx:azs(ctx.region)) do azs[#azs + 1] = az.ZoneName or az end
  local out = {}
  for _, svc in ipairs(names) do
    local name = ("com.amazonaws.%s.%s"):format(ctx.region, svc)
    local host = ("%s.%s.amazonaws.com"):format(svc, ctx.region)
    local types = GATEWAY_SERVICES[svc] and { "Gateway", "Interface" } or { "Interface" }
    for _, t in ipairs(types) do
      local d = { ServiceName = name, ServiceType = { { ServiceType = t } },
        ServiceId = "vpce-svc-" .. C.hash_hex("endpoint-service:" .. name .. ":" .. t, 17),
        Owner = "amazon", AvailabilityZones = C.copy(azs), BaseEndpointDnsNames = { host },
        VpcEndpointPolicySupported = true, AcceptanceRequired = false,
        ManagesVpcEndpoints = false, SupportedIpAddressTypes = { "ipv4" }, Tags = {} }
      if t == "Interface" then
        d.PrivateDnsName = host
        d.PrivateDnsNames = { { PrivateDnsName = host } }
        d.PrivateDnsNameVerificationState = "verified"
      end
      out[#out + 1] = d
    end
  end
  return out
end

function M.DescribeVpcEndpointServices(ctx, p)
  local details = service_details(ctx)
  if p.ServiceNames and #p.ServiceNames > 0 then
    local want = {}
    for _, n in ipairs(p.ServiceNames) do want[n] = true end
    local kept, seen = {}, {}
    for _, d in ipairs(details) do
      if want[d.ServiceName] then kept[#kept + 1] = d; seen[d.ServiceName] = true end
    end
    for _, n in ipairs(p.ServiceNames) do
      if not seen[n] then
        ctx:fail("InvalidServiceName", ("The Vpc Endpoint Service '%s' does not exist"):format(n))
      end
    end
    details = kept
  end
  details = C.filter(ctx, details, p.Filters, SERVICE_FILTERS)
  local page, token = C.page(ctx, details, p, { max = 1000 })
  local names, seen = {}, {}
  for _, d in ipairs(page) do
    if not seen[d.ServiceName] then seen[d.ServiceName] = true; names[#names + 1] = d.ServiceName end
  end
  return { ServiceNames = names, ServiceDetails = page, NextToken = token }
end

return M
