-- Simulated EC2 route tables and routes, as AWS behaves:
--   * every table starts with the local route of its VPC's CIDR (immutable); each VPC has
--     a main table, created with it, that cannot be deleted or disassociated;
--   * a subnet has one explicit association (Resource.AlreadyAssociated); a table with
--     associations cannot be deleted (DependencyViolation);
--   * routes: one per destination (RouteAlreadyExists), ReplaceRoute only of an existing
--     one, DeleteRoute of a missing one → InvalidRoute.NotFound; the target must be an
--     internet gateway attached to the table's VPC or a NAT gateway in it (else
--     InvalidParameterValue "... belong to different networks"); a route whose gateway is
--     detached or deleted, or whose NAT gateway is deleting, deleted or failed, is a
--     "blackhole"; routes added by a gateway endpoint belong to the endpoint;
--   * CreateRouteTable's ClientToken makes the create idempotent (IdempotentParameterMismatch
--     for the same token with other parameters) and comes back in the answer.
local C = require "fo.sim.services.ec2.common"
local NAT = require "fo.sim.services.ec2.nat_gateways"

local M = {}

local function nil_if_empty(list)
  return #list > 0 and list or nil
end

function M.main_route_table(ctx, vpc_id)
  for _, rt in pairs(ctx.db.route_tables or {}) do
    if rt.VpcId == vpc_id and rt._main then return rt end
  end
  return nil
end

function M.new_route_table(ctx, vpc, tags, main)
  local rt = { RouteTableId = ctx:id("rtb"), VpcId = vpc.VpcId, OwnerId = ctx.account,
    Routes = { { DestinationCidrBlock = vpc.CidrBlock, GatewayId = "local",
      Origin = "CreateRouteTable", State = "active" } },
    Associations = {}, PropagatingVgws = {}, Tags = tags or {}, _main = main }
  if main then
    rt.Associations[1] = { Main = true, RouteTableAssociationId = ctx:id("rtbassoc"),
      RouteTableId = rt.RouteTableId, AssociationState = { State = "associated" } }
  end
  C.coll(ctx, "route_tables")[rt.RouteTableId] = rt
  C.created(ctx, rt)
  return rt
end

---------------------------------------------------------------------------------------
-- Route tables

-- A route's state: a gateway route is a "blackhole" once its gateway is detached from
-- the table's VPC or deleted.
local function route_state(ctx, rt, r)
  local gw = r.GatewayId
  if gw and gw:match("^igw%-") then
    local g = C.find(ctx, "igw", gw)
    if not g or not g.Attachments[1] or g.Attachments[1].VpcId ~= rt.VpcId then
      return "blackhole"
    end
  elseif gw and gw:match("^vpce%-") and not C.find(ctx, "vpce", gw) then
    return "blackhole"
  elseif r.NatGatewayId then
    local g = C.find(ctx, "nat", r.NatGatewayId)
    if not g or g.State == "deleting" or not NAT.holds_eni(g) then return "blackhole" end
  end
  return "active"
end

local function rtb_view(ctx, rt)
  local routes, assocs = {}, {}
  for i, r in ipairs(rt.Routes) do
    routes[i] = { DestinationCidrBlock = r.DestinationCidrBlock,
      DestinationIpv6CidrBlock = r.DestinationIpv6CidrBlock,
      DestinationPrefixListId = r.DestinationPrefixListId, GatewayId = r.GatewayId,
      NatGatewayId = r.NatGatewayId, Origin = r.Origin, State = route_state(ctx, rt, r) }
  end
  for i, a in ipairs(rt.Associations) do
    assocs[i] = { Main = a.Main == true, RouteTableAssociationId = a.RouteTableAssociationId,
      RouteTableId = a.RouteTableId, SubnetId = a.SubnetId, GatewayId = a.GatewayId,
      AssociationState = { State = a.AssociationState.State } }
  end
  return { RouteTableId = rt.RouteTableId, VpcId = rt.VpcId, OwnerId = rt.OwnerId,
    Routes = routes, Associations = assocs, PropagatingVgws = {},
    Tags = nil_if_empty(C.copy_tags(rt.Tags)) }
end

function M.CreateRouteTable(ctx, p)
  local token_id = C.token_lookup(ctx, p)
  local existing = token_id and C.find(ctx, "rtb", token_id)
  if existing then return { RouteTable = rtb_view(ctx, existing), ClientToken = p.ClientToken } end
  local vpc = C.get(ctx, "vpc", p.VpcId)
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "route-table")
  local rt = M.new_route_table(ctx, vpc, tags, false)
  C.token_store(ctx, p, rt.RouteTableId)
  return { RouteTable = rtb_view(ctx, rt), ClientToken = p.ClientToken }
end

local function route_targets(rt, fn)
  local out = {}
  for _, r in ipairs(rt.Routes) do
    local v = fn(r)
    if v ~= nil then out[#out + 1] = v end
  end
  return out
end

local function assoc_values(rt, fn)
  local out = {}
  for _, a in ipairs(rt.Associations) do
    local v = fn(a)
    if v ~= nil then out[#out + 1] = v end
  end
  return out
end

function M.DescribeRouteTables(ctx, p)
  local fields = {
    ["route-table-id"] = function(rt) return rt.RouteTableId end,
    ["vpc-id"] = function(rt) return rt.VpcId end,
    ["owner-id"] = function(rt) return rt.OwnerId end,
    ["association.route-table-association-id"] = function(rt)
      return assoc_values(rt, function(a) return a.RouteTableAssociationId end)
    end,
    ["association.route-table-id"] = function(rt)
      return assoc_values(rt, function(a) return a.RouteTableId end)
    end,
    ["association.subnet-id"] = function(rt)
      return assoc_values(rt, function(a) return a.SubnetId end)
    end,
    ["association.gateway-id"] = function(rt)
      return assoc_values(rt, function(a) return a.GatewayId end)
    end,
    ["association.main"] = function(rt) return rt._main == true end,
    ["route.destination-cidr-block"] = function(rt)
      return route_targets(rt, function(r) return r.DestinationCidrBlock end)
    end,
    ["route.destination-prefix-list-id"] = function(rt)
      return route_targets(rt, function(r) return r.DestinationPrefixListId end)
    end,
    ["route.gateway-id"] = function(rt)
      return route_targets(rt, function(r) return r.GatewayId end)
    end,
    ["route.origin"] = function(rt)
      return route_targets(rt, function(r) return r.Origin end)
    end,
    ["route.state"] = function(rt)
      return route_targets(rt, function(r) return route_state(ctx, rt, r) end)
    end,
  }
  fields["route.nat-gateway-id"] = function(rt)
    return route_targets(rt, function(r) return r.NatGatewayId end)
  end
  NAT.settle(ctx)
  local list = C.filter(ctx, C.candidates(ctx, "rtb", p.RouteTableIds), p.Filters, fields)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, rt in ipairs(page) do out[i] = rtb_view(ctx, rt) end
  return { RouteTables = out, NextToken = token }
end

local function find_association(ctx, assoc_id)
  for _, rt in pairs(ctx.db.route_tables or {}) do
    for i, a in ipairs(rt.Associations) do
      if a.RouteTableAssociationId == assoc_id then return rt, i, a end
    end
  end
  return nil
end

function M.AssociateRouteTable(ctx, p)
  local rt = C.get(ctx, "rtb", p.RouteTableId)
  if (p.SubnetId == nil) == (p.GatewayId == nil) then
    ctx:fail("InvalidParameterCombination",
      "The request must contain exactly one of subnetId or gatewayId")
  end
  local a = { RouteTableId = rt.RouteTableId, Main = false,
    AssociationState = { State = "associated" } }
  if p.SubnetId then
    local s = C.get(ctx, "subnet", p.SubnetId)
    if s.VpcId ~= rt.VpcId then
      ctx:fail("InvalidParameterValue", ("Route table %s and subnet %s belong to different "
        .. "networks"):format(rt.RouteTableId, s.SubnetId))
    end
    for _, other in pairs(ctx.db.route_tables) do
      for _, have in ipairs(other.Associations) do
        if have.SubnetId == s.SubnetId then
          -- A subnet has one explicit association; ReplaceRouteTableAssociation moves it.
          ctx:fail("Resource.AlreadyAssociated",
            ("the specified association for route table %s conflicts with an existing "
              .. "association"):format(rt.RouteTableId))
        end
      end
    end
    a.SubnetId = s.SubnetId
  else
    local g = C.get(ctx, "igw", p.GatewayId)
    if not g.Attachments[1] or g.Attachments[1].VpcId ~= rt.VpcId then
      ctx:fail("InvalidParameterValue", ("Route table %s and gateway %s belong to different "
        .. "networks"):format(rt.RouteTableId, g.InternetGatewayId))
    end
    a.GatewayId = g.InternetGatewayId
  end
  a.RouteTableAssociationId = ctx:id("rtbassoc")
  rt.Associations[#rt.Associations + 1] = a
  return { AssociationId = a.RouteTableAssociationId, AssociationState = { State = "associated" } }
end

function M.DisassociateRouteTable(ctx, p)
  local rt, i, a = find_association(ctx, p.AssociationId)
  if not rt then
    ctx:fail("InvalidAssociationID.NotFound",
      ("The association ID '%s' does not exist"):format(p.AssociationId))
  end
  if a.Main then
    ctx:fail("InvalidParameterValue",
      ("cannot disassociate the main route table association %s"):format(p.AssociationId))
  end
  table.remove(rt.Associations, i)
  return {}
end

-- The destination a route call names (exactly one kind) and how to match it.
local function destination(ctx, p)
  local given = {}
  if p.DestinationCidrBlock then given[#given + 1] = "DestinationCidrBlock" end
  if p.DestinationIpv6CidrBlock then given[#given + 1] = "DestinationIpv6CidrBlock" end
  if p.DestinationPrefixListId then given[#given + 1] = "DestinationPrefixListId" end
  if #given == 0 then
    ctx:fail("MissingParameter",
      "The request must contain the parameter destinationCidrBlock or destinationIpv6CidrBlock")
  end
  if #given > 1 then
    ctx:fail("InvalidParameterCombination",
      "The request must contain exactly one destination (CIDR block, IPv6 CIDR block or prefix list)")
  end
  local key = given[1]
  local value = p[key]
  if key == "DestinationCidrBlock" then
    local base, n = C.parse_cidr(value)
    if not base then
      ctx:fail("InvalidParameterValue", ("Value (%s) for parameter destinationCidrBlock is "
        .. "invalid. This is not a valid CIDR block."):format(value))
    end
    -- AWS keeps the network address (10.0.0.1/8 is stored as 10.0.0.0/8).
    value = C.ip(base & C.mask(n)) .. "/" .. n
  end
  return key, value
end

-- Targets the simulator models; the others name resources it does not have.
local OTHER_TARGETS = {
  InstanceId = { "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" },
  NetworkInterfaceId = { "InvalidNetworkInterfaceID.NotFound",
    "The networkInterface ID '%s' does not exist" },
  VpcPeeringConnectionId = { "InvalidVpcPeeringConnectionID.NotFound",
    "The vpcPeeringConnection ID '%s' does not exist" },
  TransitGatewayId = { "InvalidTransitGatewayID.NotFound",
    "The transitGateway ID '%s' does not exist" },
  EgressOnlyInternetGatewayId = { "InvalidGatewayID.NotFound",
    "The gateway ID '%s' does not exist" },
  LocalGatewayId = { "InvalidLocalGatewayID.NotFound",
    "The localGateway ID '%s' does not exist" },
  CarrierGatewayId = { "InvalidCarrierGatewayID.NotFound",
    "The carrierGateway ID '%s' does not exist" },
  VpcEndpointId = { "InvalidVpcEndpointId.NotFound", "The Vpc Endpoint Id '%s' does not exist" },
  CoreNetworkArn = { "InvalidParameterValue", "The core network %s does not exist" },
}

-- A NAT gateway target: one in the table's VPC, not deleted (AWS: the ID does not exist).
local function nat_target(ctx, rt, id)
  NAT.settle(ctx)
  local g = C.find(ctx, "nat", id)
  if not g or g.State == "deleted" or g.State == "deleting" then
    if not g and not C.well_formed(id, "nat") then
      ctx:fail("InvalidNatGatewayID.Malformed", ('Invalid id: "%s" (expecting "nat-...")')
        :format(tostring(id)))
    end
    ctx:fail("InvalidNatGatewayID.NotFound", ("The natGateway ID '%s' does not exist"):format(id))
  end
  if g.VpcId ~= rt.VpcId then
    ctx:fail("InvalidParameterValue", ("route table %s and NAT gateway %s belong to "
      .. "different networks"):format(rt.RouteTableId, id))
  end
  return "NatGatewayId", id
end

-- The route target of a create/replace (member, id): an internet gateway attached to the
-- table's VPC, or a NAT gateway in it.
local function route_target(ctx, rt, p)
  local n = 0
  for member in pairs(OTHER_TARGETS) do
    if p[member] ~= nil then n = n + 1 end
  end
  if p.GatewayId ~= nil then n = n + 1 end
  if p.NatGatewayId ~= nil then n = n + 1 end
  if n ~= 1 then
    ctx:fail(n == 0 and "MissingParameter" or "InvalidParameterCombination",
      "The request must contain exactly one of gatewayId, natGatewayId, networkInterfaceId, "
        .. "vpcPeeringConnectionId, instanceId, egressOnlyInternetGatewayId, "
        .. "transitGatewayId, localGatewayId, carrierGatewayId, vpcEndpointId or coreNetworkArn")
  end
  for member, err in pairs(OTHER_TARGETS) do
    if p[member] ~= nil then ctx:fail(err[1], err[2]:format(p[member])) end
  end
  if p.NatGatewayId ~= nil then return nat_target(ctx, rt, p.NatGatewayId) end
  local gw = p.GatewayId
  if gw == "local" then
    ctx:fail("InvalidParameterValue", "The local route cannot be created or changed this way")
  end
  if gw:match("^vpce%-") then
    -- Gateway endpoints add their routes themselves.
    ctx:fail("RouteNotSupported", ("Route table contains unsupported route target: %s. VPC "
      .. "Endpoints of this type cannot be used as route targets."):format(gw))
  end
  local g = C.find(ctx, "igw", gw)
  if not g then
    ctx:fail("InvalidGatewayID.NotFound", ("The gateway ID '%s' does not exist"):format(gw))
  end
  if not g.Attachments[1] or g.Attachments[1].VpcId ~= rt.VpcId then
    ctx:fail("InvalidParameterValue", ("route table %s and network gateway %s belong to "
      .. "different networks"):format(rt.RouteTableId, gw))
  end
  return "GatewayId", gw
end

local function find_route(rt, key, value)
  for i, r in ipairs(rt.Routes) do
    if r[key] == value then return i, r end
  end
  return nil
end

function M.CreateRoute(ctx, p)
  local rt = C.get(ctx, "rtb", p.RouteTableId)
  local key, value = destination(ctx, p)
  if find_route(rt, key, value) then
    ctx:fail("RouteAlreadyExists", ("The route identified by %s already exists."):format(value))
  end
  local member, target = route_target(ctx, rt, p)
  rt.Routes[#rt.Routes + 1] = { [key] = value, [member] = target, Origin = "CreateRoute",
    State = "active" }
  return { Return = true }
end

function M.ReplaceRoute(ctx, p)
  local rt = C.get(ctx, "rtb", p.RouteTableId)
  local key, value = destination(ctx, p)
  local i, r = find_route(rt, key, value)
  if not i then
    ctx:fail("InvalidParameterValue", ("There is no route defined for '%s' in the route "
      .. "table. Use CreateRoute instead."):format(value))
  end
  if r.GatewayId == "local" or (r.GatewayId or ""):match("^vpce%-") then
    ctx:fail("InvalidParameterValue",
      ("cannot replace route %s in route table %s: it is managed by AWS")
        :format(value, rt.RouteTableId))
  end
  local member, target = route_target(ctx, rt, p)
  rt.Routes[i] = { [key] = value, [member] = target, Origin = "CreateRoute", State = "active" }
  return {}
end

function M.DeleteRoute(ctx, p)
  local rt = C.get(ctx, "rtb", p.RouteTableId)
  local key, value = destination(ctx, p)
  local i, r = find_route(rt, key, value)
  if not i then
    local kind = key == "DestinationPrefixListId" and "destination-prefix-list-id"
      or key == "DestinationIpv6CidrBlock" and "destination-ipv6-cidr-block"
      or "destination-cidr-block"
    ctx:fail("InvalidRoute.NotFound", ("no route with %s %s in route table %s")
      :format(kind, value, rt.RouteTableId))
  end
  if r.GatewayId == "local" then
    ctx:fail("InvalidParameterValue", ("cannot remove local route %s in route table %s")
      :format(value, rt.RouteTableId))
  end
  if (r.GatewayId or ""):match("^vpce%-") then
    ctx:fail("InvalidParameterValue", ("Route %s in route table %s was added by VPC endpoint "
      .. "%s: remove the route table from the endpoint instead"):format(value, rt.RouteTableId,
      r.GatewayId))
  end
  table.remove(rt.Routes, i)
  return {}
end

function M.DeleteRouteTable(ctx, p)
  local rt = C.get(ctx, "rtb", p.RouteTableId)
  if rt._main or #rt.Associations > 0 then
    ctx:fail("DependencyViolation",
      ("The routeTable '%s' has dependencies and cannot be deleted."):format(rt.RouteTableId))
  end
  -- Gateway endpoints forget the table (their routes went with it).
  for _, e in pairs(ctx.db.vpc_endpoints or {}) do
    local keep = {}
    for _, id in ipairs(e.RouteTableIds or {}) do
      if id ~= rt.RouteTableId then keep[#keep + 1] = id end
    end
    e.RouteTableIds = keep
  end
  ctx.db.route_tables[rt.RouteTableId] = nil
  return {}
end

return M
