-- Simulated Elastic IP addresses and NAT gateways, as AWS behaves:
--   * AllocateAddress gives a VPC address (Domain "vpc", the only kind left) from the
--     documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24: never routed),
--     5 per region (AWS's default quota: AddressLimitExceeded); ReleaseAddress of an
--     address still associated → InvalidIPAddress.InUse, of an unknown one →
--     InvalidAllocationID.NotFound;
--   * CreateNatGateway (public by default) takes a subnet and, when public, an allocation;
--     it answers "pending", then on the virtual clock the gateway is "available" (its
--     network interface in the subnet, the address associated), or "failed" with AWS's
--     FailureCode when the address is associated already (Resource.AlreadyAssociated) or
--     the VPC has no internet gateway (Gateway.NotAttached); ClientToken makes the create
--     idempotent;
--   * DeleteNatGateway: "deleting", then "deleted" (the address is disassociated then and
--     can be released); a deleted or failed gateway stays listed for an hour, as on AWS;
--   * DescribeNatGateways: NatGatewayNotFound for an unknown id (the waiters' code), its
--     own member name `Filter`, MaxResults 5..1000.
-- A live gateway (not deleted, not failed) holds an ENI in its subnet and its public
-- address in the VPC: the subnet and VPC cannot be deleted, nor the internet gateway
-- detached, meanwhile (ec2.lua asks M.live).
local C = require "fo.sim.services.ec2.common"

local M = {}

local ADDRESSES_PER_REGION = 5

-- Virtual seconds of each transition; sim.timing.<key> overrides (docs/simulator.md,
-- Timing). AWS takes minutes for the first two and keeps deleted gateways about an hour.
local TIMING = { nat_provisioning = 5, nat_delete = 3, nat_deleted_visible = 3600 }

local function timing(ctx, key)
  local t = ctx.sim and rawget(ctx.sim, "timing")
  if type(t) == "table" and type(t[key]) == "number" then return t[key] end
  return TIMING[key]
end

local function nil_if_empty(list)
  return #list > 0 and list or nil
end

---------------------------------------------------------------------------------------
-- Elastic IP addresses

-- The three documentation /24s, 254 usable addresses each.
local RANGES = { "192.0.2.", "198.51.100.", "203.0.113." }

-- A public address no address of this region has: drawn from the documentation ranges,
-- starting at a point that depends on the region (two regions rarely give the same one).
local function new_public_ip(ctx)
  local used = {}
  for _, a in pairs(ctx.db.addresses or {}) do used[a.PublicIp] = true end
  local start = tonumber(C.hash_hex("eip:" .. ctx.region, 4), 16) % 762
  for k = 0, 761 do
    local n = (start + k) % 762
    local ip = RANGES[n // 254 + 1] .. (n % 254 + 1)
    if not used[ip] then return ip end
  end
  ctx:fail("AddressLimitExceeded", "The maximum number of addresses has been reached.")
end

local function address_view(a)
  return { AllocationId = a.AllocationId, PublicIp = a.PublicIp, Domain = a.Domain,
    PublicIpv4Pool = a.PublicIpv4Pool, NetworkBorderGroup = a.NetworkBorderGroup,
    AssociationId = a.AssociationId, NetworkInterfaceId = a.NetworkInterfaceId,
    NetworkInterfaceOwnerId = a.NetworkInterfaceOwnerId,
    PrivateIpAddress = a.PrivateIpAddress, Tags = nil_if_empty(C.copy_tags(a.Tags)) }
end

function M.AllocateAddress(ctx, p)
  if p.Domain ~= nil and p.Domain ~= "vpc" then
    ctx:fail("InvalidParameterValue", ("Value (%s) for parameter domain is invalid. "
      .. "EC2-Classic addresses are no longer available: use vpc."):format(tostring(p.Domain)))
  end
  if p.Address or p.PublicIpv4Pool or p.CustomerOwnedIpv4Pool or p.IpamPoolId then
    ctx:fail("InvalidParameterValue",
      "The simulator allocates Amazon's addresses only (no Address, pools or IPAM).")
  end
  if p.NetworkBorderGroup ~= nil and p.NetworkBorderGroup ~= ctx.region then
    ctx:fail("InvalidParameterValue", ("Network border group '%s' is not valid in %s")
      :format(p.NetworkBorderGroup, ctx.region))
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "elastic-ip")
  local n = 0
  for _ in pairs(ctx.db.addresses or {}) do n = n + 1 end
  if n >= ADDRESSES_PER_REGION then
    ctx:fail("AddressLimitExceeded", "The maximum number of addresses has been reached.")
  end
  local a = { AllocationId = ctx:id("eipalloc"), PublicIp = new_public_ip(ctx), Domain = "vpc",
    PublicIpv4Pool = "amazon", NetworkBorderGroup = ctx.region, Tags = tags }
  C.coll(ctx, "addresses")[a.AllocationId] = a
  C.created(ctx, a)
  return { AllocationId = a.AllocationId, PublicIp = a.PublicIp, Domain = a.Domain,
    PublicIpv4Pool = a.PublicIpv4Pool, NetworkBorderGroup = a.NetworkBorderGroup }
end

local ADDRESS_FILTERS = {
  ["allocation-id"] = function(a) return a.AllocationId end,
  ["association-id"] = function(a) return a.AssociationId end,
  domain = function(a) return a.Domain end,
  ["instance-id"] = function() return nil end,
  ["network-border-group"] = function(a) return a.NetworkBorderGroup end,
  ["network-interface-id"] = function(a) return a.NetworkInterfaceId end,
  ["network-interface-owner-id"] = function(a) return a.NetworkInterfaceOwnerId end,
  ["private-ip-address"] = function(a) return a.PrivateIpAddress end,
  ["public-ip"] = function(a) return a.PublicIp end,
}

local function by_public_ip(ctx, ip)
  for _, a in pairs(ctx.db.addresses or {}) do
    if a.PublicIp == ip then return a end
  end
  return nil
end

function M.DescribeAddresses(ctx, p)
  M.settle(ctx)
  local list = C.candidates(ctx, "eipalloc", p.AllocationIds)
  if p.PublicIps and #p.PublicIps > 0 then
    local keep = {}
    for _, ip in ipairs(p.PublicIps) do
      local a = by_public_ip(ctx, ip)
      if not a or not C.visible(ctx, a) then
        ctx:fail("InvalidAddress.NotFound", ("Address '%s' not found."):format(ip))
      end
      for _, x in ipairs(list) do
        if x == a then keep[#keep + 1] = a end
      end
    end
    list = keep
  end
  list = C.filter(ctx, list, p.Filters, ADDRESS_FILTERS)
  local out = {}
  for i, a in ipairs(list) do out[i] = address_view(a) end
  return { Addresses = out }
end

function M.ReleaseAddress(ctx, p)
  M.settle(ctx)
  local a
  if p.AllocationId ~= nil then
    a = C.get(ctx, "eipalloc", p.AllocationId)
  elseif p.PublicIp ~= nil then
    -- a VPC address is released by its allocation id
    a = by_public_ip(ctx, p.PublicIp)
    if not a then
      ctx:fail("InvalidAddress.NotFound", ("Address '%s' not found."):format(p.PublicIp))
    end
    ctx:fail("InvalidParameterValue",
      "You must specify an allocation id when releasing a VPC elastic IP address")
  else
    ctx:fail("MissingParameter", "Either public IP or allocation id must be specified")
  end
  if a.AssociationId then
    ctx:fail("InvalidIPAddress.InUse", ("Address %s is in use."):format(a.PublicIp))
  end
  ctx.db.addresses[a.AllocationId] = nil
  return {}
end

---------------------------------------------------------------------------------------
-- NAT gateways

-- Brings every gateway's state to now: pending → available (or failed), deleting →
-- deleted (the address disassociated), deleted/failed ones forgotten after an hour.
function M.settle(ctx)
  local now = ctx:now()
  local t = ctx.db.nat_gateways or {}
  for id, g in pairs(t) do
    if g.State == "pending" and now >= g._ready_at then
      if g._failure then
        g.State, g.FailureCode, g.FailureMessage = "failed", g._failure[1], g._failure[2]
        g.DeleteTime = g._ready_at
        g._gone_at = g._ready_at + timing(ctx, "nat_deleted_visible")
      else
        g.State = "available"
        local a = g._allocation and C.find(ctx, "eipalloc", g._allocation)
        if a and a._nat == g.NatGatewayId then
          a.AssociationId, a.NetworkInterfaceId = g._association, g._eni
          a.NetworkInterfaceOwnerId, a.PrivateIpAddress = ctx.account, g._private_ip
        end
      end
    end
    if g.State == "deleting" and now >= g._deleted_at then
      g.State, g.DeleteTime = "deleted", g._deleted_at
      g._gone_at = g._deleted_at + timing(ctx, "nat_deleted_visible")
      M.release(ctx, g)
    end
    if g._gone_at and now >= g._gone_at then t[id] = nil end
  end
end

--- Frees gateway g's address (its association ends).
function M.release(ctx, g)
  local a = g._allocation and C.find(ctx, "eipalloc", g._allocation)
  if a and a._nat == g.NatGatewayId then
    a._nat, a.AssociationId, a.NetworkInterfaceId = nil, nil, nil
    a.NetworkInterfaceOwnerId, a.PrivateIpAddress = nil, nil
  end
end

--- True when gateway g still holds its network interface (not failed, not deleted).
function M.holds_eni(g)
  return g.State ~= "deleted" and g.State ~= "failed"
end

--- The gateways (settled) that hold an ENI and pass pred(g).
function M.live(ctx, pred)
  M.settle(ctx)
  local out = {}
  for _, g in ipairs(C.sorted(ctx.db.nat_gateways or {})) do
    if M.holds_eni(g) and pred(g) then out[#out + 1] = g end
  end
  return out
end

local function nat_view(g)
  local addr = { AllocationId = g._allocation, NetworkInterfaceId = g._eni,
    PrivateIp = g._private_ip, PublicIp = g._public_ip, IsPrimary = true,
    AssociationId = (g.State == "available" or g.State == "deleting") and g._association or nil,
    Status = g.State == "failed" and "failed" or g.State == "pending" and "associating"
      or g.State == "deleting" and "disassociating" or "succeeded" }
  return { NatGatewayId = g.NatGatewayId, SubnetId = g.SubnetId, VpcId = g.VpcId,
    State = g.State, ConnectivityType = g.ConnectivityType, CreateTime = g.CreateTime,
    DeleteTime = g.DeleteTime, FailureCode = g.FailureCode, FailureMessage = g.FailureMessage,
    NatGatewayAddresses = { addr }, Tags = nil_if_empty(C.copy_tags(g.Tags)) }
end

-- A private address of the subnet for the gateway's ENI (derived from its id; only the
-- form matters: inside the subnet, past AWS's four reserved addresses).
local function private_ip(subnet, id)
  local base, n = C.parse_cidr(subnet.CidrBlock)
  local size = 1 << (32 - n)
  return C.ip(base + 4 + tonumber(C.hash_hex(id, 6), 16) % (size - 5))
end

local function igw_attached(ctx, vpc_id)
  for _, g in pairs(ctx.db.internet_gateways or {}) do
    if g.Attachments[1] and g.Attachments[1].VpcId == vpc_id then return true end
  end
  return false
end

function M.CreateNatGateway(ctx, p)
  M.settle(ctx)
  local existing = C.token_lookup(ctx, p)
  if existing and C.find(ctx, "nat", existing) then
    return { NatGateway = nat_view(C.find(ctx, "nat", existing)), ClientToken = p.ClientToken }
  end
  if p.SubnetId == nil then
    ctx:fail("MissingParameter", "The request must contain the parameter subnetId")
  end
  local subnet = C.get(ctx, "subnet", p.SubnetId)
  local connectivity = p.ConnectivityType or "public"
  local a
  if connectivity == "public" then
    if p.AllocationId == nil then
      ctx:fail("MissingParameter",
        "The request must contain the parameter allocationId for a public NAT gateway")
    end
    a = C.get(ctx, "eipalloc", p.AllocationId)
  elseif p.AllocationId ~= nil then
    ctx:fail("InvalidParameterCombination",
      "A private NAT gateway cannot have an Elastic IP address (allocationId)")
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "natgateway")
  local id = ctx:id("nat")
  local g = { NatGatewayId = id, SubnetId = subnet.SubnetId, VpcId = subnet.VpcId,
    State = "pending", ConnectivityType = connectivity, CreateTime = ctx:now(), Tags = tags,
    _ready_at = ctx:now() + timing(ctx, "nat_provisioning"), _eni = ctx:id("eni"),
    _private_ip = private_ip(subnet, id) }
  if a then
    g._allocation, g._public_ip = a.AllocationId, a.PublicIp
    if a._nat or a.AssociationId then
      -- AWS takes the request and fails the gateway (its FailureCode says why).
      g._failure = { "Resource.AlreadyAssociated",
        ("Elastic IP address %s is already associated"):format(a.AllocationId) }
    else
      a._nat, g._association = id, ctx:id("eipassoc")
    end
  end
  if not g._failure and connectivity == "public" and not igw_attached(ctx, subnet.VpcId) then
    g._failure = { "Gateway.NotAttached",
      ("Network %s has no Internet gateway attached"):format(subnet.VpcId) }
    M.release(ctx, g)
  end
  C.coll(ctx, "nat_gateways")[id] = g
  C.created(ctx, g)
  C.token_store(ctx, p, id)
  return { NatGateway = nat_view(g), ClientToken = p.ClientToken }
end

local NAT_FILTERS = {
  ["nat-gateway-id"] = function(g) return g.NatGatewayId end,
  state = function(g) return g.State end,
  ["subnet-id"] = function(g) return g.SubnetId end,
  ["vpc-id"] = function(g) return g.VpcId end,
}

function M.DescribeNatGateways(ctx, p)
  M.settle(ctx)
  local list = C.filter(ctx, C.candidates(ctx, "nat", p.NatGatewayIds), p.Filter, NAT_FILTERS)
  local page, token = C.page(ctx, list, p, { max = 1000 })
  local out = {}
  for i, g in ipairs(page) do out[i] = nat_view(g) end
  return { NatGateways = out, NextToken = token }
end

function M.DeleteNatGateway(ctx, p)
  M.settle(ctx)
  local g = C.get(ctx, "nat", p.NatGatewayId)
  if g.State == "pending" or g.State == "available" then
    g.State = "deleting"
    g._deleted_at = ctx:now() + timing(ctx, "nat_delete")
  end
  return { NatGatewayId = g.NatGatewayId }
end

return M
