-- EC2 network resource types: VPC, subnet, internet gateway (with its attachment), route
-- table, route, route table association, security group and rule, VPC gateway endpoint.
--
-- Shared habits: every create tags in the same call (TagSpecifications) and, when the
-- create's answer does not show the resource usable yet, waits until a Describe does
-- (NotFound meanwhile is eventual consistency, retried through common.retry); a create whose
-- answer holds what the record needs describes nothing more; calls that name a resource
-- created a moment ago retry
-- "not_found_after_create"; deletes retry "dependency_violation" (ENIs of a deleted load
-- balancer or instance detach minutes late) and take NotFound as done; read reports only
-- what it can observe, in the form the recipe declared it (a property left out keeps its
-- recorded value).
local common = require "fo.aws.resources.common"

local M = {}

-- How long a new resource may take to reach its usable state (beyond the NotFound
-- window, which consistency.lua bounds).
local READY_SECONDS = 300

---------------------------------------------------------------------------------------
-- Helpers

--- Polls describe() (nil while AWS does not show the new resource yet: NotFound right
--- after a create) until ready(record) is true, and returns the record. ready may return
--- false, why to stop at once (a failed state); `what` names the resource in errors.
function M.await(ctx, what, describe, ready, seconds)
  return common.poll(ctx, what .. " to be usable", seconds or READY_SECONDS, function()
    local r = describe()
    local ok, why = ready(r)
    if why then error(("%s: %s"):format(what, why), 0) end
    return ok and r
  end)
end

--- Calls ec2[op](ec2, params) and retries it while the resources it names are too new to
--- be seen (NotFound right after their create).
local function fresh_call(ctx, ec2, op, params)
  return common.retry(ctx, "not_found_after_create", ec2[op], ec2, params)
end

--- Calls ec2[op](ec2, params) while something still depends on the target (bounded by
--- consistency.lua's "dependency_violation"); the NotFound codes `gone` mean done.
local function delete_call(ctx, ec2, op, params, gone)
  common.delete_unless_gone(ctx, gone, common.retry, ctx, "dependency_violation", ec2[op], ec2,
    params)
end

--- The one record `op` describes for id, or nil when AWS says it does not exist. In a
--- refresh, the ids read at once go out in one call (common.batched; id_field names the
--- records' id member).
local function describe_one(ctx, op, ids_member, list_member, notfound, id, id_field)
  local ec2 = ctx:client("ec2")
  local function one(x)
    return common.describe_one(ec2, op, { [ids_member] = { x } }, list_member, { notfound })
  end
  if not id_field then return one(id) end
  return common.batched(ctx, "ec2." .. op, id, function(ids)
    return common.index_by(ec2[op](ec2, { [ids_member] = ids })[list_member], id_field)
  end, one)
end

--- Every record of a paginated Describe with `params`.
local function list_all(ec2, op, params)
  local out = {}
  for r in ec2:items(op, params) do out[#out + 1] = r end
  return out
end

--- The first record tagged for ctx that the state does not know (adoption), by a
--- Describe filtered on the fo tags (plus `filters`).
local function adopt_by_tags(ctx, op, id_field, filters)
  local f = ctx:tag_filters()
  for _, x in ipairs(filters or {}) do f[#f + 1] = x end
  return common.unknown_owned(ctx, list_all(ctx:client("ec2"), op, { Filters = f }), id_field)
end

-- An IPv4 CIDR block: its address as an integer and prefix length, or nil.
local function parse_cidr(s)
  local a, b, c, d, n = tostring(s):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a then return nil end
  local ip = 0
  for _, o in ipairs({ a, b, c, d }) do
    o = tonumber(o)
    if o > 255 then return nil end
    ip = (ip << 8) | o
  end
  n = tonumber(n)
  if n > 32 then return nil end
  return ip, n
end

--- A schema check of an IPv4 CIDR block: well formed, no host bits (AWS stores the
--- network address, so 10.0.0.1/16 would read back as drift), prefix within min..max.
function M.cidr_check(min, max)
  return function(v)
    local ip, n = parse_cidr(v)
    if not ip then return false, ("%q is not an IPv4 CIDR block (a.b.c.d/n)"):format(v) end
    local mask = n == 0 and 0 or (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
    if ip & ~mask & 0xFFFFFFFF ~= 0 then
      local net = ip & mask
      return false, ("%s has host bits set; the network is %d.%d.%d.%d/%d"):format(v,
        net >> 24, (net >> 16) & 255, (net >> 8) & 255, net & 255, n)
    end
    if (min and n < min) or (max and n > max) then
      return false, ("%s: the prefix length must be /%d to /%d"):format(v, min, max)
    end
    return true
  end
end

---------------------------------------------------------------------------------------
-- aws:ec2:vpc

local VPC_NF = "InvalidVpcID.NotFound"

local function find_vpc(ctx, id)
  return describe_one(ctx, "DescribeVpcs", "VpcIds", "Vpcs", VPC_NF, id, "VpcId")
end

-- DNS attributes from `old` to `new` (one attribute per call, as AWS wants): hostnames
-- go off before support does, and on after it (hostnames need support).
local function set_dns(ctx, ec2, id, old, new)
  local function modify(member, value)
    fresh_call(ctx, ec2, "ModifyVpcAttribute", { VpcId = id, [member] = { Value = value } })
  end
  if old.enable_dns_hostnames and not new.enable_dns_hostnames then
    modify("EnableDnsHostnames", false)
  end
  if old.enable_dns_support ~= new.enable_dns_support then
    modify("EnableDnsSupport", new.enable_dns_support)
  end
  if new.enable_dns_hostnames and not old.enable_dns_hostnames then
    modify("EnableDnsHostnames", true)
  end
end

local function vpc_outputs(v)
  return { id = v.VpcId, cidr_block = v.CidrBlock }
end

fo.type("aws:ec2:vpc", {
  doc = "an EC2 VPC with its DNS attributes",
  schema = {
    properties = {
      cidr_block = { type = "string", required = true, check = M.cidr_check(16, 28) },
      enable_dns_support = { type = "boolean", default = true },
      enable_dns_hostnames = { type = "boolean", default = false },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "cidr_block" },
    replace_on = { "cidr_block" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local id = ec2:CreateVpc{ CidrBlock = p.cidr_block,
      TagSpecifications = common.ec2_tag_specs(ctx, "vpc", p.tags) }.Vpc.VpcId
    local vpc = M.await(ctx, "VPC " .. id, function() return find_vpc(ctx, id) end,
      function(v) return v ~= nil and v.State == "available" end)
    -- A new VPC has DNS support on and hostnames off.
    set_dns(ctx, ec2, id, { enable_dns_support = true, enable_dns_hostnames = false }, p)
    return id, vpc_outputs(vpc)
  end,
  read = function(ctx, id)
    local ec2 = ctx:client("ec2")
    local function attribute(name, member)
      local out = common.unless({ VPC_NF }, ec2.DescribeVpcAttribute, ec2,
        { VpcId = id, Attribute = name })
      return out and out[member] and out[member].Value == true
    end
    -- (the VPC and its two attributes read at once; nil when the VPC went meanwhile)
    local vpc, r = common.read_at_once(function() return find_vpc(ctx, id) end, {
      function() return attribute("enableDnsSupport", "EnableDnsSupport") end,
      function() return attribute("enableDnsHostnames", "EnableDnsHostnames") end,
    })
    if not vpc then return nil end
    local support, hostnames = r[1], r[2]
    if support == nil or hostnames == nil then return nil end
    return vpc_outputs(vpc), { cidr_block = vpc.CidrBlock, enable_dns_support = support,
      enable_dns_hostnames = hostnames, tags = common.user_tags(vpc.Tags) }
  end,
  update = function(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    set_dns(ctx, ec2, id, old, new)
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    delete_call(ctx, ctx:client("ec2"), "DeleteVpc", { VpcId = id }, { VPC_NF })
  end,
  adopt = function(ctx)
    local v = adopt_by_tags(ctx, "DescribeVpcs", "VpcId")
    if v then return v.VpcId, vpc_outputs(v) end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:subnet

local SUBNET_NF = "InvalidSubnetID.NotFound"

local function find_subnet(ctx, id)
  return describe_one(ctx, "DescribeSubnets", "SubnetIds", "Subnets", SUBNET_NF, id,
    "SubnetId")
end

local function subnet_outputs(s)
  return { id = s.SubnetId, arn = s.SubnetArn, vpc_id = s.VpcId, cidr_block = s.CidrBlock,
    availability_zone = s.AvailabilityZone }
end

local function set_public_ip(ctx, ec2, id, value)
  fresh_call(ctx, ec2, "ModifySubnetAttribute",
    { SubnetId = id, MapPublicIpOnLaunch = { Value = value } })
end

fo.type("aws:ec2:subnet", {
  doc = "an EC2 subnet in one availability zone",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      cidr_block = { type = "string", required = true, check = M.cidr_check(16, 28) },
      availability_zone = { type = "string" },
      map_public_ip_on_launch = { type = "boolean", default = false },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "arn", "vpc_id", "cidr_block", "availability_zone" },
    replace_on = { "vpc_id", "cidr_block", "availability_zone" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local s = fresh_call(ctx, ec2, "CreateSubnet", { VpcId = p.vpc_id,
      CidrBlock = p.cidr_block, AvailabilityZone = p.availability_zone,
      TagSpecifications = common.ec2_tag_specs(ctx, "subnet", p.tags) }).Subnet
    local id = s.SubnetId
    common.made(ec2, id) -- (its association needs no read first: common.fresh_slot)
    -- the answer is the new subnet: described again only while it is pending
    if s.State ~= "available" then
      s = M.await(ctx, "subnet " .. id, function() return find_subnet(ctx, id) end,
        function(x) return x ~= nil and x.State == "available" end)
    end
    if p.map_public_ip_on_launch then set_public_ip(ctx, ec2, id, true) end
    return id, subnet_outputs(s)
  end,
  read = function(ctx, id, props)
    local s = find_subnet(ctx, id)
    if not s then return nil end
    return subnet_outputs(s), { vpc_id = s.VpcId, cidr_block = s.CidrBlock,
      availability_zone = props.availability_zone and s.AvailabilityZone or nil,
      map_public_ip_on_launch = s.MapPublicIpOnLaunch == true,
      tags = common.user_tags(s.Tags) }
  end,
  update = function(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    if old.map_public_ip_on_launch ~= new.map_public_ip_on_launch then
      set_public_ip(ctx, ec2, id, new.map_public_ip_on_launch)
    end
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    delete_call(ctx, ctx:client("ec2"), "DeleteSubnet", { SubnetId = id }, { SUBNET_NF })
  end,
  adopt = function(ctx, p)
    local s = adopt_by_tags(ctx, "DescribeSubnets", "SubnetId",
      { { Name = "vpc-id", Values = { p.vpc_id } } })
    if s then return s.SubnetId, subnet_outputs(s) end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:internet_gateway (its attachment to the VPC is part of it)

local IGW_NF = "InvalidInternetGatewayID.NotFound"

local function find_igw(ctx, id)
  return describe_one(ctx, "DescribeInternetGateways", "InternetGatewayIds",
    "InternetGateways", IGW_NF, id, "InternetGatewayId")
end

local function attached_vpc(g)
  return g.Attachments and g.Attachments[1] and g.Attachments[1].VpcId or nil
end

local function attach(ctx, ec2, id, vpc_id)
  fresh_call(ctx, ec2, "AttachInternetGateway", { InternetGatewayId = id, VpcId = vpc_id })
end

-- What read reports as vpc_id for a gateway attached nowhere (a create that stopped
-- between the gateway and its attachment, or a detach by hand): the next apply attaches it.
local DETACHED = "(detached)"

local function igw_outputs(g)
  return { id = g.InternetGatewayId, vpc_id = attached_vpc(g) }
end

fo.type("aws:ec2:internet_gateway", {
  doc = "an internet gateway attached to a VPC (the attachment is part of it: detached "
    .. "before delete; a move to another VPC replaces it, a lost attachment is restored)",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "vpc_id" },
    mutable_outputs = { "vpc_id" },
    replace_on = { "vpc_id" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local id = ec2:CreateInternetGateway{
      TagSpecifications = common.ec2_tag_specs(ctx, "internet-gateway", p.tags),
    }.InternetGateway.InternetGatewayId
    attach(ctx, ec2, id, p.vpc_id)
    return id, { id = id, vpc_id = p.vpc_id }
  end,
  read = function(ctx, id)
    local g = find_igw(ctx, id)
    if not g then return nil end
    return igw_outputs(g), { vpc_id = attached_vpc(g) or DETACHED,
      tags = common.user_tags(g.Tags) }
  end,
  -- Another VPC replaces the gateway (detaching it could wait on the old VPC's load
  -- balancer for minutes); a gateway attached nowhere is attached in place.
  diff = function(old, new)
    local changed = {}
    if old.vpc_id ~= new.vpc_id then changed[#changed + 1] = "vpc_id" end
    if not common.deep_equal(old.tags, new.tags) then changed[#changed + 1] = "tags" end
    return changed, old.vpc_id ~= new.vpc_id and old.vpc_id ~= DETACHED
  end,
  update = function(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    if old.vpc_id == DETACHED and new.vpc_id ~= DETACHED then
      attach(ctx, ec2, id, new.vpc_id)
      outputs = { id = id, vpc_id = new.vpc_id }
    end
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    local ec2 = ctx:client("ec2")
    local g = find_igw(ctx, id)
    if not g then return end
    -- Detaching waits out an internet-facing load balancer's public addresses
    -- (DependencyViolation "has some mapped public address(es)").
    for _, a in ipairs(g.Attachments or {}) do
      delete_call(ctx, ec2, "DetachInternetGateway", { InternetGatewayId = id, VpcId = a.VpcId },
        { IGW_NF, VPC_NF, "Gateway.NotAttached" })
    end
    delete_call(ctx, ec2, "DeleteInternetGateway", { InternetGatewayId = id }, { IGW_NF })
  end,
  adopt = function(ctx)
    -- A gateway the create left unattached is taken as it is: refresh reports it
    -- detached and the apply attaches it.
    local g = adopt_by_tags(ctx, "DescribeInternetGateways", "InternetGatewayId")
    if g then return g.InternetGatewayId, igw_outputs(g) end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:route_table

local RTB_NF = "InvalidRouteTableID.NotFound"

local function find_rtb(ctx, id)
  return describe_one(ctx, "DescribeRouteTables", "RouteTableIds", "RouteTables", RTB_NF, id,
    "RouteTableId")
end

fo.type("aws:ec2:route_table", {
  doc = "a route table of a VPC (its routes and subnet associations are separate resources)",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "vpc_id" },
    replace_on = { "vpc_id" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local id = fresh_call(ctx, ec2, "CreateRouteTable", { VpcId = p.vpc_id,
      TagSpecifications = common.ec2_tag_specs(ctx, "route-table", p.tags),
    }).RouteTable.RouteTableId
    common.made(ec2, id) -- (its routes need no read first: common.fresh_slot)
    -- A route table has no pending state: usable once created (the calls naming it, routes
    -- and associations, retry while it is too new to be seen).
    return id, { id = id, vpc_id = p.vpc_id }
  end,
  read = function(ctx, id)
    local rt = find_rtb(ctx, id)
    if not rt then return nil end
    return { id = id, vpc_id = rt.VpcId }, { vpc_id = rt.VpcId, tags = common.user_tags(rt.Tags) }
  end,
  update = common.ec2_update_tags,
  delete = function(ctx, id)
    delete_call(ctx, ctx:client("ec2"), "DeleteRouteTable", { RouteTableId = id }, { RTB_NF })
  end,
  adopt = function(ctx, p)
    local rt = adopt_by_tags(ctx, "DescribeRouteTables", "RouteTableId",
      { { Name = "vpc-id", Values = { p.vpc_id } } })
    if rt then return rt.RouteTableId, { id = rt.RouteTableId, vpc_id = rt.VpcId } end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:route (id "<route table id>_<destination>"; routes carry no tags: their
-- identity is the table and the destination)

-- Destination properties → API members (exactly one is given).
local DESTINATIONS = {
  { prop = "destination_cidr_block", member = "DestinationCidrBlock" },
  { prop = "destination_ipv6_cidr_block", member = "DestinationIpv6CidrBlock" },
  { prop = "destination_prefix_list_id", member = "DestinationPrefixListId" },
}
-- Target properties → API members of CreateRoute/ReplaceRoute and of the Route that
-- DescribeRouteTables answers (a Gateway Load Balancer endpoint reads back as GatewayId).
local TARGETS = {
  { prop = "gateway_id", member = "GatewayId" },
  { prop = "nat_gateway_id", member = "NatGatewayId" },
  { prop = "vpc_endpoint_id", member = "VpcEndpointId", read = "GatewayId" },
  { prop = "transit_gateway_id", member = "TransitGatewayId" },
  { prop = "vpc_peering_connection_id", member = "VpcPeeringConnectionId" },
  { prop = "network_interface_id", member = "NetworkInterfaceId" },
  { prop = "egress_only_internet_gateway_id", member = "EgressOnlyInternetGatewayId" },
}

local function names(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.prop end
  return table.concat(out, ", ")
end

-- The one entry of `list` whose property p gives, or raises naming the choices.
local function exactly_one(p, list, what)
  local found = {}
  for _, x in ipairs(list) do
    if p[x.prop] ~= nil then found[#found + 1] = x end
  end
  if #found ~= 1 then
    error(("aws:ec2:route: give exactly one %s (%s); got %s"):format(what, names(list),
      #found == 0 and "none" or names(found)), 0)
  end
  return found[1]
end

local function route_id(p)
  local d = exactly_one(p, DESTINATIONS, "destination")
  return p.route_table_id .. "_" .. p[d.prop], d
end

local function route_params(p, with_target)
  local d = exactly_one(p, DESTINATIONS, "destination")
  local params = { RouteTableId = p.route_table_id, [d.member] = p[d.prop] }
  if with_target then
    local t = exactly_one(p, TARGETS, "target")
    params[t.member] = p[t.prop]
  end
  return params
end

-- The route of table `rtb_id` to the destination of p (nil when the table or the route
-- is gone).
local function find_route(ctx, p)
  local rt = find_rtb(ctx, p.route_table_id)
  if not rt then return nil end
  local d = exactly_one(p, DESTINATIONS, "destination")
  for _, r in ipairs(rt.Routes or {}) do
    if r[d.member] == p[d.prop] then return r end
  end
  return nil
end

-- The target properties a route shows, in the recipe's terms.
local function route_targets(p, r)
  local out = {}
  for _, t in ipairs(TARGETS) do
    local v = r[t.read or t.member]
    if v ~= nil and v ~= "" then
      if t.prop == "vpc_endpoint_id" and not v:match("^vpce%-") then v = nil end
      if t.prop == "gateway_id" and v:match("^vpce%-") and p.vpc_endpoint_id then v = nil end
      out[t.prop] = v
    end
  end
  return out
end

-- True when route r (as DescribeRouteTables answers it) goes where p says.
local function same_target(p, r)
  local seen = route_targets(p, r)
  for _, t in ipairs(TARGETS) do
    if p[t.prop] ~= seen[t.prop] then return false end
  end
  return true
end

local function target_changed(old, new)
  for _, t in ipairs(TARGETS) do
    if old[t.prop] ~= new[t.prop] then return true end
  end
  return false
end

local ROUTE_GONE = { "InvalidRoute.NotFound", RTB_NF }

fo.type("aws:ec2:route", {
  doc = "a route of a route table: one destination (destination_cidr_block, "
    .. "destination_ipv6_cidr_block or destination_prefix_list_id) to one target "
    .. "(gateway_id, nat_gateway_id, vpc_endpoint_id, ...); a new target is replaced in place",
  schema = {
    properties = {
      route_table_id = { type = "string", required = true },
      destination_cidr_block = { type = "string", check = M.cidr_check(0, 32) },
      destination_ipv6_cidr_block = { type = "string" },
      destination_prefix_list_id = { type = "string" },
      gateway_id = { type = "string" },
      nat_gateway_id = { type = "string" },
      vpc_endpoint_id = { type = "string" },
      transit_gateway_id = { type = "string" },
      vpc_peering_connection_id = { type = "string" },
      network_interface_id = { type = "string" },
      egress_only_internet_gateway_id = { type = "string" },
    },
    outputs = { "id" },
    replace_on = { "route_table_id", "destination_cidr_block", "destination_ipv6_cidr_block",
      "destination_prefix_list_id" },
  },
  create = function(ctx, p)
    local id, d = route_id(p)
    -- Routes carry no tags: a route to this destination already in the table is not this
    -- create's (CreateRoute would refuse it; after a crash, adopt takes the interrupted one).
    -- A table this run created holds no route but its VPC's local ones and those this run
    -- adds: no read (common.fresh_slot; the local routes are told apart below).
    local what = ("a route to %s in route table %s"):format(p[d.prop], p.route_table_id)
    local ec2 = ctx:client("ec2")
    if not common.fresh_slot(ec2, p.route_table_id, "route to " .. p[d.prop])
        and find_route(ctx, p) then
      common.conflict(ctx, what, id)
    end
    local ok, err = pcall(fresh_call, ctx, ec2, "CreateRoute", route_params(p, true))
    if not ok then
      -- none was there a moment ago: a retried call of this create made it (its target),
      -- or someone else just did; a route the table was made with (the VPC's local
      -- range, Origin CreateRouteTable) or that a gateway propagates is not a CreateRoute's
      local r = common.is(err, "RouteAlreadyExists") and find_route(ctx, p)
      if not r then error(err, 0) end
      if (r.Origin and r.Origin ~= "CreateRoute") or not same_target(p, r) then
        common.conflict(ctx, what, id)
      end
    end
    return id, { id = id }
  end,
  read = function(ctx, id, props)
    local r = find_route(ctx, props)
    if not r then return nil end
    local observed = route_targets(props, r)
    for _, t in ipairs(TARGETS) do
      -- A target the route no longer has reads as a marker, so the plan shows the drift.
      if props[t.prop] ~= nil and observed[t.prop] == nil then observed[t.prop] = "(none)" end
    end
    return { id = id }, observed
  end,
  update = function(ctx, id, old, new, outputs)
    if target_changed(old, new) then
      ctx:client("ec2"):ReplaceRoute(route_params(new, true))
    end
    return outputs
  end,
  delete = function(ctx, id, p)
    common.unless(ROUTE_GONE, function()
      return ctx:client("ec2"):DeleteRoute(route_params(p, false))
    end)
  end,
  adopt = function(ctx, p)
    local id = route_id(p)
    local r = find_route(ctx, p)
    if r and not ctx.known_ids[id] and same_target(p, r) then return id, { id = id } end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:route_table_association (a subnet has one explicit association: replaced
-- delete-first)

local ASSOC_NF = "InvalidAssociationID.NotFound"

-- The associations of the route tables that have one of `ids` (a filter: an id that
-- matches nothing is no error), by id.
local function associations(ctx, ids)
  local out = ctx:client("ec2"):DescribeRouteTables{ Filters = {
    { Name = "association.route-table-association-id", Values = ids } } }
  local got = {}
  for _, rt in ipairs(out.RouteTables or {}) do
    for _, a in ipairs(rt.Associations or {}) do got[a.RouteTableAssociationId] = a end
  end
  return got
end

-- (in a refresh, the associations read at once in one call)
local function find_association(ctx, id)
  return common.batched(ctx, "ec2.DescribeRouteTables.associations", id,
    function(ids) return associations(ctx, ids) end,
    function(x) return associations(ctx, { x })[x] end)
end

-- The explicit association the subnet has (with any route table), or nil.
local function subnet_association(ctx, subnet_id)
  local out = ctx:client("ec2"):DescribeRouteTables{ Filters = {
    { Name = "association.subnet-id", Values = { subnet_id } } } }
  for _, rt in ipairs(out.RouteTables or {}) do
    for _, a in ipairs(rt.Associations or {}) do
      if a.SubnetId == subnet_id and not a.Main and not (a.AssociationState
          and a.AssociationState.State == "disassociated") then
        return a
      end
    end
  end
  return nil
end

fo.type("aws:ec2:route_table_association", {
  doc = "the association of a subnet with a route table",
  schema = {
    properties = {
      route_table_id = { type = "string", required = true },
      subnet_id = { type = "string", required = true },
    },
    outputs = { "id" },
    replace_on = { "route_table_id", "subnet_id" },
    delete_first = true,
  },
  create = function(ctx, p)
    -- An association carries no tags: one the subnet already has is not this create's
    -- (AssociateRouteTable would refuse it; after a crash, adopt takes the interrupted one).
    local function conflict(a)
      common.conflict(ctx, ("an association of subnet %s with route table %s"):format(
        p.subnet_id, a.RouteTableId), a.RouteTableAssociationId)
    end
    -- A subnet this run created has no explicit association but the one this create
    -- makes: no read (common.fresh_slot).
    local ec2 = ctx:client("ec2")
    local a
    if not common.fresh_slot(ec2, p.subnet_id, "route table association") then
      a = subnet_association(ctx, p.subnet_id)
      if a then conflict(a) end
    end
    local ok, out = pcall(fresh_call, ctx, ec2, "AssociateRouteTable",
      { RouteTableId = p.route_table_id, SubnetId = p.subnet_id })
    if not ok then
      -- none was there a moment ago: a retried call of this create made it, or someone
      -- else just did
      a = common.is(out, "Resource.AlreadyAssociated") and subnet_association(ctx, p.subnet_id)
      if not a then error(out, 0) end
      if a.RouteTableId ~= p.route_table_id then conflict(a) end
      return a.RouteTableAssociationId, { id = a.RouteTableAssociationId }
    end
    return out.AssociationId, { id = out.AssociationId }
  end,
  read = function(ctx, id)
    local a = find_association(ctx, id)
    if not a or (a.AssociationState and a.AssociationState.State == "disassociated") then
      return nil
    end
    return { id = id }, { route_table_id = a.RouteTableId, subnet_id = a.SubnetId }
  end,
  delete = function(ctx, id)
    common.unless({ ASSOC_NF }, function()
      return ctx:client("ec2"):DisassociateRouteTable{ AssociationId = id }
    end)
  end,
  adopt = function(ctx, p)
    local rt = find_rtb(ctx, p.route_table_id)
    for _, a in ipairs(rt and rt.Associations or {}) do
      if a.SubnetId == p.subnet_id and not ctx.known_ids[a.RouteTableAssociationId] then
        return a.RouteTableAssociationId, { id = a.RouteTableAssociationId }
      end
    end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:security_group (its name is unique in its VPC: replaced delete-first; its
-- rules are aws:ec2:security_group_rule resources)

local SG_NF = "InvalidGroup.NotFound"

local function find_sg(ctx, id)
  return describe_one(ctx, "DescribeSecurityGroups", "GroupIds", "SecurityGroups", SG_NF, id,
    "GroupId")
end

-- CreateSecurityGroup's documented constraints on names and descriptions.
local SG_CHARS = "^[%w %._%-:/%(%)#,@%[%]%+=&;{}!%$%*]*$"
local SG_CHARS_TEXT = "a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*"

local function sg_name_check(v)
  if #v == 0 or #v > 255 then
    return false, ("a security group name has 1 to 255 characters, %q has %d"):format(v, #v)
  end
  if v:lower():sub(1, 3) == "sg-" then
    return false, ("%q: a security group name may not start with \"sg-\" (AWS rejects it: "
      .. "it would read as a group id)"):format(v)
  end
  if v:lower() == "default" then
    return false, "\"default\" is the name of the VPC's own group (reserved)"
  end
  if not v:match(SG_CHARS) then
    return false, ("%q: a security group name may hold only %s"):format(v, SG_CHARS_TEXT)
  end
  return true
end

local function sg_description_check(v)
  if #v == 0 or #v > 255 or not v:match(SG_CHARS) then
    return false, ("a security group description has 1 to 255 characters of %s")
      :format(SG_CHARS_TEXT)
  end
  return true
end

-- The rule every new group gets: all traffic out to anywhere.
local DEFAULT_EGRESS = { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } }

local function set_default_egress(ctx, ec2, id, revoke)
  if revoke then
    common.unless({ "InvalidPermission.NotFound" }, fresh_call, ctx, ec2,
      "RevokeSecurityGroupEgress", { GroupId = id, IpPermissions = DEFAULT_EGRESS })
  else
    common.unless({ "InvalidPermission.Duplicate" }, fresh_call, ctx, ec2,
      "AuthorizeSecurityGroupEgress", { GroupId = id, IpPermissions = DEFAULT_EGRESS })
  end
end

local function sg_outputs(g)
  return { id = g.GroupId, group_name = g.GroupName, vpc_id = g.VpcId }
end

fo.type("aws:ec2:security_group", {
  doc = "a VPC security group (name and description are immutable: a change replaces it, "
    .. "delete-first as names are unique per VPC); revoke_default_egress removes the "
    .. "allow-all egress rule AWS gives every new group",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      group_name = { type = "string", required = true, check = sg_name_check },
      description = { type = "string", default = "Managed by fo", check = sg_description_check },
      revoke_default_egress = { type = "boolean", default = false },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "group_name", "vpc_id" },
    replace_on = { "vpc_id", "group_name", "description" },
    delete_first = true,
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local ok, out = pcall(fresh_call, ctx, ec2, "CreateSecurityGroup", { VpcId = p.vpc_id,
      GroupName = p.group_name, Description = p.description,
      TagSpecifications = common.ec2_tag_specs(ctx, "security-group", p.tags) })
    local id = ok and out.GroupId
    local g = ok and { GroupId = id, GroupName = p.group_name, VpcId = p.vpc_id }
    if not ok then
      -- the name is taken in the VPC: by this create (a retried call) or a conflict
      local other = common.is(out, "InvalidGroup.Duplicate") and ec2:DescribeSecurityGroups{
        Filters = { { Name = "vpc-id", Values = { p.vpc_id } },
          { Name = "group-name", Values = { p.group_name } } } }.SecurityGroups[1]
      if not other then error(out, 0) end
      common.claim(ctx, ("a security group named %q in %s"):format(p.group_name, p.vpc_id),
        other.GroupId, other.Tags)
      id, g = other.GroupId, other
    end
    -- (a security group has no pending state: the calls naming it retry while it is too new
    -- to be seen)
    if p.revoke_default_egress then set_default_egress(ctx, ec2, id, true) end
    return id, sg_outputs(g)
  end,
  read = function(ctx, id)
    local g = find_sg(ctx, id)
    if not g then return nil end
    -- revoke_default_egress is not read back: an allow-all egress rule may also be one
    -- the recipe declares.
    return sg_outputs(g), { vpc_id = g.VpcId, group_name = g.GroupName,
      description = g.Description, tags = common.user_tags(g.Tags) }
  end,
  update = function(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    if old.revoke_default_egress ~= new.revoke_default_egress then
      set_default_egress(ctx, ec2, id, new.revoke_default_egress)
    end
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    delete_call(ctx, ctx:client("ec2"), "DeleteSecurityGroup", { GroupId = id }, { SG_NF })
  end,
  adopt = function(ctx, p)
    local g = adopt_by_tags(ctx, "DescribeSecurityGroups", "GroupId",
      { { Name = "vpc-id", Values = { p.vpc_id } } })
    if g then return g.GroupId, sg_outputs(g) end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:security_group_rule (id: the sgr- id; a rule is immutable but for its tags:
-- any other change replaces it, delete-first since the same rule cannot exist twice)

local RULE_NF = "InvalidSecurityGroupRuleId.NotFound"

-- Protocols as AWS stores them (names for tcp/udp/icmp/icmpv6, "-1" for all).
local PROTOCOLS = { tcp = "tcp", ["6"] = "tcp", udp = "udp", ["17"] = "udp", icmp = "icmp",
  ["1"] = "icmp", icmpv6 = "icmpv6", ["58"] = "icmpv6", ["-1"] = "-1", all = "-1" }

local function protocol_of(v)
  local s = tostring(v):lower()
  return PROTOCOLS[s] or s
end

local function protocol_check(v)
  local s = protocol_of(v)
  local n = math.tointeger(tonumber(s))
  if s == "tcp" or s == "udp" or s == "icmp" or s == "icmpv6" or s == "-1"
    or (n and n >= 0 and n <= 255) then
    return true
  end
  return false, ("%q is not a protocol: tcp, udp, icmp, icmpv6, -1 (all) or a number "
    .. "0-255"):format(v)
end

local PEERS = {
  { prop = "cidr_ipv4", perm = "IpRanges", key = "CidrIp", read = "CidrIpv4" },
  { prop = "cidr_ipv6", perm = "Ipv6Ranges", key = "CidrIpv6", read = "CidrIpv6" },
  { prop = "source_security_group_id", perm = "UserIdGroupPairs", key = "GroupId" },
  { prop = "prefix_list_id", perm = "PrefixListIds", key = "PrefixListId", read = "PrefixListId" },
}

local function rule_permission(p)
  local peers = {}
  for _, x in ipairs(PEERS) do
    if p[x.prop] ~= nil then peers[#peers + 1] = x end
  end
  if #peers ~= 1 then
    error(("aws:ec2:security_group_rule: give exactly one peer (cidr_ipv4, cidr_ipv6, "
      .. "source_security_group_id or prefix_list_id); got %d"):format(#peers), 0)
  end
  local proto = protocol_of(p.protocol)
  if (proto == "tcp" or proto == "udp") and (p.from_port == nil or p.to_port == nil) then
    error(("aws:ec2:security_group_rule: protocol %s needs from_port and to_port")
      :format(proto), 0)
  end
  if p.from_port and p.to_port and proto ~= "icmp" and proto ~= "icmpv6"
    and p.from_port > p.to_port then
    error(("aws:ec2:security_group_rule: from_port %d is above to_port %d")
      :format(p.from_port, p.to_port), 0)
  end
  local peer = peers[1]
  local perm = { IpProtocol = p.protocol, [peer.perm] = { { [peer.key] = p[peer.prop],
    Description = p.description } } }
  if proto ~= "-1" then perm.FromPort, perm.ToPort = p.from_port, p.to_port end
  return perm
end

local function find_rule(ctx, id)
  return describe_one(ctx, "DescribeSecurityGroupRules", "SecurityGroupRuleIds",
    "SecurityGroupRules", RULE_NF, id, "SecurityGroupRuleId")
end

local function rule_direction(p)
  return p.type == "egress" and "Egress" or "Ingress"
end

fo.type("aws:ec2:security_group_rule", {
  doc = "one ingress or egress rule of a security group: protocol, ports and one peer "
    .. "(cidr_ipv4, cidr_ipv6, source_security_group_id or prefix_list_id)",
  schema = {
    properties = {
      security_group_id = { type = "string", required = true },
      type = { type = "string", required = true, enum = { "ingress", "egress" } },
      protocol = { type = "string", default = "tcp", check = protocol_check },
      from_port = { type = "integer" },
      to_port = { type = "integer" },
      cidr_ipv4 = { type = "string", check = M.cidr_check(0, 32) },
      cidr_ipv6 = { type = "string" },
      source_security_group_id = { type = "string" },
      prefix_list_id = { type = "string" },
      description = { type = "string" },
      tags = { type = "map", default = {} },
    },
    outputs = { "id" },
    replace_on = { "security_group_id", "type", "protocol", "from_port", "to_port",
      "cidr_ipv4", "cidr_ipv6", "source_security_group_id", "prefix_list_id", "description" },
    delete_first = true,
  },
  create = function(ctx, p)
    local out = fresh_call(ctx, ctx:client("ec2"), "AuthorizeSecurityGroup" .. rule_direction(p), {
      GroupId = p.security_group_id, IpPermissions = { rule_permission(p) },
      TagSpecifications = common.ec2_tag_specs(ctx, "security-group-rule", p.tags) })
    local id = out.SecurityGroupRules[1].SecurityGroupRuleId
    return id, { id = id }
  end,
  read = function(ctx, id, props)
    local r = find_rule(ctx, id)
    if not r then return nil end
    local observed = { security_group_id = r.GroupId,
      type = r.IsEgress and "egress" or "ingress",
      protocol = protocol_of(props.protocol) == r.IpProtocol and props.protocol or r.IpProtocol,
      cidr_ipv4 = r.CidrIpv4, cidr_ipv6 = r.CidrIpv6, prefix_list_id = r.PrefixListId,
      source_security_group_id = r.ReferencedGroupInfo and r.ReferencedGroupInfo.GroupId,
      description = r.Description ~= "" and r.Description or nil,
      tags = common.user_tags(r.Tags) }
    -- Ports of all-traffic rules (and icmp's "any") read as -1: only a declared port is
    -- compared.
    if r.IpProtocol ~= "-1" then
      if props.from_port ~= nil or r.FromPort ~= -1 then observed.from_port = r.FromPort end
      if props.to_port ~= nil or r.ToPort ~= -1 then observed.to_port = r.ToPort end
    end
    for _, x in ipairs(PEERS) do
      if props[x.prop] ~= nil and observed[x.prop] == nil then observed[x.prop] = "(none)" end
    end
    if props.description ~= nil and observed.description == nil then observed.description = "" end
    return { id = id }, observed
  end,
  update = common.ec2_update_tags,
  delete = function(ctx, id, p)
    common.unless({ RULE_NF, SG_NF }, function()
      local ec2 = ctx:client("ec2")
      return ec2["RevokeSecurityGroup" .. rule_direction(p)](ec2,
        { GroupId = p.security_group_id, SecurityGroupRuleIds = { id } })
    end)
  end,
  adopt = function(ctx, p)
    local rules = common.unless({ SG_NF }, list_all, ctx:client("ec2"),
      "DescribeSecurityGroupRules",
      { Filters = { { Name = "group-id", Values = { p.security_group_id } } } })
    local egress = p.type == "egress"
    local mine = {}
    for _, r in ipairs(rules or {}) do
      if r.IsEgress == egress then mine[#mine + 1] = r end
    end
    local r = common.unknown_owned(ctx, mine, "SecurityGroupRuleId")
    if r then return r.SecurityGroupRuleId, { id = r.SecurityGroupRuleId } end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:vpc_endpoint (Gateway endpoints: DynamoDB, S3; Interface endpoints: SSM, logs, ...)

local VPCE_NF = "InvalidVpcEndpointId.NotFound"

local function find_vpce(ctx, id)
  local e = describe_one(ctx, "DescribeVpcEndpoints", "VpcEndpointIds", "VpcEndpoints",
    VPCE_NF, id, "VpcEndpointId")
  if e and (e.State or ""):lower() == "deleted" then return nil end
  return e
end

-- The AWS-managed prefix list of a gateway service (what a security group egress rule
-- names to reach DynamoDB through the endpoint), or nil.
local function prefix_list_ids(ctx, service_names)
  local out = ctx:client("ec2"):DescribePrefixLists{ Filters = {
    { Name = "prefix-list-name", Values = service_names } } }
  local got = {}
  for _, pl in ipairs(out.PrefixLists or {}) do got[pl.PrefixListName] = pl.PrefixListId end
  return got
end

-- The services with Gateway endpoints (each has an AWS-managed prefix list per region).
local GATEWAY_SERVICES = { "dynamodb", "s3" }

-- The prefix list of a gateway service in ctx's region. Their ids are AWS's and do not
-- change: one call per run and region asks for every gateway service's at once, and the
-- run keeps the answer with its EC2 client of the region (common.run_memo).
local function prefix_list_id(ctx, service_name)
  local known = common.run_memo(ctx:client("ec2"), "prefix lists")
  if known[service_name] == nil then
    local function ask(names)
      local all, seen = {}, {}
      for _, n in ipairs(names) do all[#all + 1], seen[n] = n, true end
      for _, s in ipairs(GATEWAY_SERVICES) do
        local n = ("com.amazonaws.%s.%s"):format(ctx.region, s)
        if not seen[n] then all[#all + 1] = n end
      end
      local got = prefix_list_ids(ctx, all)
      for _, n in ipairs(all) do known[n] = got[n] or false end
      return got
    end
    -- (in a refresh, one call for the endpoints read at once)
    common.batched(ctx, "ec2.DescribePrefixLists", service_name, ask,
      function(n) return ask({ n })[n] end)
  end
  return known[service_name] or nil
end

local function json_check(v)
  local ok, doc = pcall(require("cjson").decode, v)
  if not ok or type(doc) ~= "table" then
    return false, "a policy document is a JSON object: " .. tostring(doc)
  end
  return true
end

local VPCE_BAD_STATES = { failed = true, rejected = true, expired = true }

local function vpce_outputs(ctx, e)
  -- Only a gateway endpoint is reached through the service's prefix list.
  return { id = e.VpcEndpointId, prefix_list_id = e.VpcEndpointType == "Gateway"
    and prefix_list_id(ctx, e.ServiceName) or nil }
end

-- What the type of endpoint allows: route tables for a Gateway, subnets (one per AZ),
-- security groups and private DNS for an Interface (AWS refuses the others).
local function vpce_check(p)
  local gw = p.vpc_endpoint_type == "Gateway"
  if gw and (#p.subnet_ids > 0 or #p.security_group_ids > 0 or p.private_dns_enabled ~= nil) then
    error("aws:ec2:vpc_endpoint: subnet_ids, security_group_ids and private_dns_enabled "
      .. "are for vpc_endpoint_type = \"Interface\"; a Gateway endpoint takes route_table_ids", 0)
  end
  if not gw and #p.route_table_ids > 0 then
    error("aws:ec2:vpc_endpoint: an Interface endpoint takes subnet_ids, not route_table_ids", 0)
  end
  if not gw and #p.subnet_ids == 0 then
    error("aws:ec2:vpc_endpoint: an Interface endpoint needs subnet_ids (one subnet per AZ)", 0)
  end
end

--- The members to add to and remove from a set going from list old to list new.
local function set_changes(old, new)
  local before, after = {}, {}
  for _, x in ipairs(old or {}) do before[x] = true end
  for _, x in ipairs(new or {}) do after[x] = true end
  local add, remove = {}, {}
  for _, x in ipairs(new or {}) do
    if not before[x] then add[#add + 1] = x end
  end
  for _, x in ipairs(old or {}) do
    if not after[x] then remove[#remove + 1] = x end
  end
  return add, remove
end

local function group_ids(e)
  local out = {}
  for i, g in ipairs(e.Groups or {}) do out[i] = g.GroupId end
  return out
end

fo.type("aws:ec2:vpc_endpoint", {
  doc = "a VPC endpoint: Gateway (com.amazonaws.<region>.dynamodb / .s3) routed from the "
    .. "given route tables, or Interface (e.g. com.amazonaws.<region>.ssm) with one network "
    .. "interface in each given subnet, its security groups and private DNS; route tables, "
    .. "subnets, security groups, private DNS and policy change in place",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      service_name = { type = "string", required = true },
      vpc_endpoint_type = { type = "string", default = "Gateway",
        enum = { "Gateway", "Interface" } },
      route_table_ids = { type = "list", default = {} },
      subnet_ids = { type = "list", default = {} },
      security_group_ids = { type = "list", default = {} },
      private_dns_enabled = { type = "boolean" },
      policy_document = { type = "string", check = json_check },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "prefix_list_id" },
    replace_on = { "vpc_id", "service_name", "vpc_endpoint_type" },
  },
  create = function(ctx, p)
    vpce_check(p)
    local ec2 = ctx:client("ec2")
    local e = fresh_call(ctx, ec2, "CreateVpcEndpoint", { VpcId = p.vpc_id,
      ServiceName = p.service_name, VpcEndpointType = p.vpc_endpoint_type,
      RouteTableIds = #p.route_table_ids > 0 and p.route_table_ids or nil,
      SubnetIds = #p.subnet_ids > 0 and p.subnet_ids or nil,
      SecurityGroupIds = #p.security_group_ids > 0 and p.security_group_ids or nil,
      PrivateDnsEnabled = p.private_dns_enabled,
      PolicyDocument = p.policy_document, ClientToken = ctx.token,
      TagSpecifications = common.ec2_tag_specs(ctx, "vpc-endpoint", p.tags) }).VpcEndpoint
    local id = e.VpcEndpointId
    -- The token may give back an endpoint made earlier whose tags were lost since.
    if not ctx:owns(e.Tags or {}) then
      ec2:CreateTags{ Resources = { id }, Tags = common.tag_list(ctx, p.tags) }
    end
    -- A gateway endpoint is usually available in the answer: described only while not.
    if (e.State or ""):lower() ~= "available" then
      e = M.await(ctx, "VPC endpoint " .. id, function() return find_vpce(ctx, id) end,
        function(x)
          local state = x and (x.State or ""):lower()
          if state and VPCE_BAD_STATES[state] then return false, "state " .. x.State end
          return state == "available"
        end)
    end
    return id, vpce_outputs(ctx, e)
  end,
  read = function(ctx, id, props)
    local e = find_vpce(ctx, id)
    if not e then return nil end
    -- Left out, private DNS is AWS's default (on for AWS services): not compared.
    local private_dns
    if props.private_dns_enabled ~= nil then private_dns = e.PrivateDnsEnabled == true end
    return vpce_outputs(ctx, e), { vpc_id = e.VpcId, service_name = e.ServiceName,
      vpc_endpoint_type = e.VpcEndpointType,
      -- AWS keeps no order of the route tables.
      route_table_ids = common.as_recorded(e.RouteTableIds or {}, props.route_table_ids,
        common.same_set),
      subnet_ids = common.as_recorded(e.SubnetIds or {}, props.subnet_ids, common.same_set),
      -- Without groups AWS gives the VPC's default group: compared only when given.
      security_group_ids = #(props.security_group_ids or {}) > 0
        and common.as_recorded(group_ids(e), props.security_group_ids, common.same_set)
        or {},
      private_dns_enabled = private_dns,
      -- A policy the recipe leaves out is AWS's default (full access): not compared.
      policy_document = props.policy_document ~= nil
        and common.as_recorded(e.PolicyDocument, props.policy_document, common.json_equal)
        or nil,
      tags = common.user_tags(e.Tags) }
  end,
  update = function(ctx, id, old, new, outputs)
    vpce_check(new)
    local ec2 = ctx:client("ec2")
    local params, change = { VpcEndpointId = id }, false
    for _, m in ipairs({ { "route_table_ids", "RouteTableIds" }, { "subnet_ids", "SubnetIds" },
      { "security_group_ids", "SecurityGroupIds" } }) do
      local add, remove = set_changes(old[m[1]], new[m[1]])
      if #add > 0 then params["Add" .. m[2]], change = add, true end
      if #remove > 0 then params["Remove" .. m[2]], change = remove, true end
    end
    if new.private_dns_enabled ~= nil and new.private_dns_enabled ~= old.private_dns_enabled then
      params.PrivateDnsEnabled, change = new.private_dns_enabled, true
    end
    if not (old.policy_document == nil and new.policy_document == nil
      or old.policy_document ~= nil and new.policy_document ~= nil
      and common.json_equal(old.policy_document, new.policy_document)) then
      if new.policy_document == nil then params.ResetPolicy = true
      else params.PolicyDocument = new.policy_document end
      change = true
    end
    if change then fresh_call(ctx, ec2, "ModifyVpcEndpoint", params) end
    common.ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    local ec2 = ctx:client("ec2")
    local out = ec2:DeleteVpcEndpoints{ VpcEndpointIds = { id } }
    -- Failures come back per id, not as an error.
    for _, u in ipairs(out.Unsuccessful or {}) do
      local err = u.Error or {}
      if err.Code ~= VPCE_NF then
        error(("ec2.DeleteVpcEndpoints: %s: %s: %s"):format(id, tostring(err.Code),
          tostring(err.Message)), 0)
      end
    end
    common.poll(ctx, ("VPC endpoint %s deletion"):format(id), READY_SECONDS, function()
      return find_vpce(ctx, id) == nil
    end)
  end,
  adopt = function(ctx, p)
    local list = {}
    for _, e in ipairs(list_all(ctx:client("ec2"), "DescribeVpcEndpoints", { Filters = {
      { Name = "vpc-id", Values = { p.vpc_id } } } })) do
      if (e.State or ""):lower() ~= "deleted" then list[#list + 1] = e end
    end
    local e = common.unknown_owned(ctx, list, "VpcEndpointId")
    if e then return e.VpcEndpointId, vpce_outputs(ctx, e) end
    return nil
  end,
})

return M
