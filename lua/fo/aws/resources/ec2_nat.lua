-- EC2 private egress through the internet: aws:ec2:eip (an Elastic IP allocated for the
-- stack) and aws:ec2:nat_gateway (a NAT gateway in a public subnet holding one of them).
-- Routes to a NAT gateway are aws:ec2:route with nat_gateway_id (ec2_network.lua).
--
-- The NAT gateway names its address (allocation_id = eip.id), so the engine deletes the
-- gateway first and releases the address after: DeleteNatGateway takes minutes to free
-- the address (InvalidIPAddress.InUse meanwhile), which the gateway's delete waits out.
local common = require "fo.aws.resources.common"
local net = require "fo.aws.resources.ec2_network"

local M = {}

-- How long a NAT gateway may take to become available or to be deleted (AWS: minutes).
local NAT_SECONDS = 900

-- A gateway in these states is gone or never will carry traffic.
local NAT_GONE = { deleting = true, deleted = true, failed = true }

local EIP_NF = "InvalidAllocationID.NotFound"
local NAT_NF = "NatGatewayNotFound"

---------------------------------------------------------------------------------------
-- aws:ec2:eip

local function find_eip(ctx, id)
  return common.describe_one(ctx:client("ec2"), "DescribeAddresses", { AllocationIds = { id } },
    "Addresses", { EIP_NF })
end

local function eip_outputs(a)
  return { id = a.AllocationId, public_ip = a.PublicIp }
end

fo.type("aws:ec2:eip", {
  doc = "an Elastic IP address (VPC) allocated for the stack; delete releases it",
  schema = {
    properties = {
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "public_ip" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    -- AllocateAddress takes no token: after a crash, adopt finds the address by its tags.
    local id = ec2:AllocateAddress{ Domain = "vpc",
      TagSpecifications = common.ec2_tag_specs(ctx, "elastic-ip", p.tags) }.AllocationId
    local a = net.await(ctx, "Elastic IP " .. id, function() return find_eip(ctx, id) end,
      function(x) return x ~= nil end)
    return id, eip_outputs(a)
  end,
  read = function(ctx, id)
    local a = find_eip(ctx, id)
    if not a then return nil end
    return eip_outputs(a), { tags = common.user_tags(a.Tags) }
  end,
  update = common.ec2_update_tags,
  delete = function(ctx, id)
    -- A NAT gateway deleted a moment ago still holds the address for a while.
    common.unless({ EIP_NF }, common.retry, ctx, "address_in_use",
      function() return ctx:client("ec2"):ReleaseAddress{ AllocationId = id } end)
  end,
  adopt = function(ctx)
    local out = ctx:client("ec2"):DescribeAddresses{ Filters = ctx:tag_filters() }
    local a = common.unknown_owned(ctx, out.Addresses, "AllocationId")
    if a then return a.AllocationId, eip_outputs(a) end
    return nil
  end,
})

---------------------------------------------------------------------------------------
-- aws:ec2:nat_gateway

local function find_nat(ctx, id)
  return common.describe_one(ctx:client("ec2"), "DescribeNatGateways",
    { NatGatewayIds = { id } }, "NatGateways", { NAT_NF })
end

local function primary_address(g)
  for _, a in ipairs(g.NatGatewayAddresses or {}) do
    if a.IsPrimary ~= false then return a end
  end
  return {}
end

local function nat_outputs(g)
  local a = primary_address(g)
  return { id = g.NatGatewayId, public_ip = a.PublicIp, private_ip = a.PrivateIp }
end

-- Every NAT gateway of the region that may still hold an address (not deleted/failed).
local function live_gateways(ctx, filters)
  local out = {}
  for g in ctx:client("ec2"):items("DescribeNatGateways", { Filter = filters }) do
    if not NAT_GONE[g.State] then out[#out + 1] = g end
  end
  return out
end

-- An address a gateway this create did not make holds already is a conflict (AWS would
-- take the request and fail the new gateway: Resource.AlreadyAssociated).
local function check_address_free(ctx, allocation_id)
  if allocation_id == nil then return end
  local what = ("an association of Elastic IP %s"):format(allocation_id)
  for _, g in ipairs(live_gateways(ctx)) do
    for _, a in ipairs(g.NatGatewayAddresses or {}) do
      if a.AllocationId == allocation_id then
        common.claim(ctx, what .. " with NAT gateway " .. g.NatGatewayId, g.NatGatewayId, g.Tags)
        return
      end
    end
  end
  local a = find_eip(ctx, allocation_id)
  if a and a.AssociationId then common.conflict(ctx, what, a.AssociationId) end
end

fo.type("aws:ec2:nat_gateway", {
  doc = "a NAT gateway in a subnet (public: with an Elastic IP, allocation_id); create "
    .. "waits until it is available, delete until it is deleted (its address is then free)",
  schema = {
    properties = {
      subnet_id = { type = "string", required = true },
      allocation_id = { type = "string" },
      connectivity_type = { type = "string", default = "public", enum = { "public", "private" } },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "public_ip", "private_ip" },
    replace_on = { "subnet_id", "allocation_id", "connectivity_type" },
    -- an address is held by one gateway at a time: the old one lets go of it first
    delete_first = true,
  },
  create = function(ctx, p)
    if (p.connectivity_type == "public") ~= (p.allocation_id ~= nil) then
      error("aws:ec2:nat_gateway: a public NAT gateway needs allocation_id (an aws:ec2:eip's "
        .. "id); a private one takes none", 0)
    end
    check_address_free(ctx, p.allocation_id)
    local ec2 = ctx:client("ec2")
    local g = common.retry(ctx, "not_found_after_create", ec2.CreateNatGateway, ec2, {
      SubnetId = p.subnet_id, AllocationId = p.allocation_id,
      ConnectivityType = p.connectivity_type, ClientToken = ctx.token,
      TagSpecifications = common.ec2_tag_specs(ctx, "natgateway", p.tags) }).NatGateway
    local id = g.NatGatewayId
    -- The token may give back a gateway made earlier whose tags were lost since.
    if not ctx:owns(g.Tags or {}) then
      ec2:CreateTags{ Resources = { id }, Tags = common.tag_list(ctx, p.tags) }
    end
    g = net.await(ctx, "NAT gateway " .. id, function() return find_nat(ctx, id) end,
      function(x)
        if x and NAT_GONE[x.State] then
          return false, ("state %s%s"):format(x.State, x.FailureCode and (": %s: %s")
            :format(x.FailureCode, tostring(x.FailureMessage)) or "")
        end
        return x ~= nil and x.State == "available"
      end, NAT_SECONDS)
    return id, nat_outputs(g)
  end,
  read = function(ctx, id)
    local g = find_nat(ctx, id)
    if not g or NAT_GONE[g.State] then return nil end
    return nat_outputs(g), { subnet_id = g.SubnetId,
      allocation_id = primary_address(g).AllocationId, connectivity_type = g.ConnectivityType,
      tags = common.user_tags(g.Tags) }
  end,
  update = common.ec2_update_tags,
  delete = function(ctx, id)
    common.unless({ NAT_NF }, function()
      return ctx:client("ec2"):DeleteNatGateway{ NatGatewayId = id }
    end)
    -- Deleted, the gateway frees its address and its network interface in the subnet.
    common.poll(ctx, ("NAT gateway %s deletion"):format(id), NAT_SECONDS, function()
      local g = find_nat(ctx, id)
      return g == nil or g.State == "deleted" or g.State == "failed"
    end)
  end,
  adopt = function(ctx, p)
    local f = ctx:tag_filters()
    f[#f + 1] = { Name = "subnet-id", Values = { p.subnet_id } }
    local g = common.unknown_owned(ctx, live_gateways(ctx, f), "NatGatewayId")
    if g then return g.NatGatewayId, nat_outputs(g) end
    return nil
  end,
})

return M
