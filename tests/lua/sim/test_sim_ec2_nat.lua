-- The simulator's Elastic IPs and NAT gateways through fo's ec2 client: allocate, describe
-- (ids, public IPs, filters), release (not while a NAT gateway holds the address);
-- NAT gateways pending → available on the virtual clock, ClientToken, failures AWS reports
-- in the gateway's state, filters and paging; routes to a NAT gateway, blackholed when it
-- is deleted; the subnet, VPC and internet gateway kept while a gateway lives there.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws

local REGION = "eu-south-1"

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function tagspec(rtype, tags)
  local list = {}
  for k, v in pairs(tags) do list[#list + 1] = { Key = k, Value = v } end
  table.sort(list, function(a, b) return a.Key < b.Key end)
  return { { ResourceType = rtype, Tags = list } }
end

-- A VPC with an attached internet gateway, a public and a private subnet and a route
-- table for the private one.
local function setup(o)
  o = o or {}
  local sim = simlib.new{ seed = 13 }
  local ec2 = sim:client("ec2", { region = REGION, max_attempts = 1 })
  local vpc = ec2:CreateVpc{ CidrBlock = "10.2.0.0/16" }.Vpc.VpcId
  local igw
  if o.igw ~= false then
    igw = ec2:CreateInternetGateway{}.InternetGateway.InternetGatewayId
    ec2:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  end
  local public = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.2.0.0/24",
    AvailabilityZone = REGION .. "a" }.Subnet.SubnetId
  local rtb = ec2:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  return { sim = sim, ec2 = ec2, vpc = vpc, igw = igw, public = public, rtb = rtb }
end

local function nat_of(ec2, id)
  return ec2:DescribeNatGateways{ NatGatewayIds = { id } }.NatGateways[1]
end

local function route_to(ec2, rtb, cidr)
  for _, r in ipairs(ec2:DescribeRouteTables{ RouteTableIds = { rtb } }.RouteTables[1].Routes) do
    if r.DestinationCidrBlock == cidr then return r end
  end
  return nil
end

TestSimNat = {}

function TestSimNat.test_allocate_describe_and_release_an_address()
  local t = setup()
  local a = t.ec2:AllocateAddress{ Domain = "vpc",
    TagSpecifications = tagspec("elastic-ip", { Name = "nat-a", Environment = "Production" }) }
  lu.assertStrMatches(a.AllocationId, "eipalloc%-%x+")
  lu.assertEquals({ a.Domain, a.NetworkBorderGroup, a.PublicIpv4Pool }, { "vpc", REGION, "amazon" })
  -- documentation ranges only: never an address anyone routes
  lu.assertTrue((a.PublicIp:match("^192%.0%.2%.%d+$") or a.PublicIp:match("^198%.51%.100%.%d+$")
    or a.PublicIp:match("^203%.0%.113%.%d+$")) ~= nil, a.PublicIp)
  local b = t.ec2:AllocateAddress{}
  lu.assertNotEquals(b.PublicIp, a.PublicIp)

  local by_id = t.ec2:DescribeAddresses{ AllocationIds = { a.AllocationId } }.Addresses
  lu.assertEquals(#by_id, 1)
  lu.assertEquals({ by_id[1].PublicIp, by_id[1].Domain }, { a.PublicIp, "vpc" })
  lu.assertNil(by_id[1].AssociationId)
  lu.assertEquals(t.ec2:DescribeAddresses{ PublicIps = { b.PublicIp } }.Addresses[1].AllocationId,
    b.AllocationId)
  local tagged = t.ec2:DescribeAddresses{ Filters = { { Name = "tag:Name", Values = { "nat-*" } },
    { Name = "domain", Values = { "vpc" } } } }.Addresses
  lu.assertEquals(#tagged, 1)
  lu.assertEquals(tagged[1].AllocationId, a.AllocationId)
  lu.assertEquals(#t.ec2:DescribeAddresses{ Filters = { { Name = "allocation-id",
    Values = { b.AllocationId } } } }.Addresses, 1)
  lu.assertEquals(#t.ec2:DescribeAddresses{}.Addresses, 2)
  -- tags through the generic calls too
  t.ec2:CreateTags{ Resources = { b.AllocationId }, Tags = { { Key = "Name", Value = "b" } } }
  local tags = t.ec2:DescribeTags{ Filters = { { Name = "resource-id", Values = { b.AllocationId } } } }.Tags
  lu.assertEquals({ tags[1].Key, tags[1].ResourceType }, { "Name", "elastic-ip" })

  t.ec2:ReleaseAddress{ AllocationId = a.AllocationId }
  lu.assertEquals(err_of(t.ec2.DescribeAddresses, t.ec2, { AllocationIds = { a.AllocationId } })
    .code, "InvalidAllocationID.NotFound")
  lu.assertEquals(err_of(t.ec2.ReleaseAddress, t.ec2, { AllocationId = a.AllocationId }).code,
    "InvalidAllocationID.NotFound")
  lu.assertEquals(err_of(t.ec2.DescribeAddresses, t.ec2, { PublicIps = { a.PublicIp } }).code,
    "InvalidAddress.NotFound")
  lu.assertEquals(err_of(t.ec2.ReleaseAddress, t.ec2, { AllocationId = "eipalloc-nope" }).code,
    "InvalidAllocationID.Malformed")
end

function TestSimNat.test_five_addresses_per_region()
  local t = setup()
  for _ = 1, 5 do t.ec2:AllocateAddress{ Domain = "vpc" } end
  lu.assertEquals(err_of(t.ec2.AllocateAddress, t.ec2, { Domain = "vpc" }).code,
    "AddressLimitExceeded")
  -- another region has its own quota
  t.sim:client("ec2", { region = "eu-central-1" }):AllocateAddress{ Domain = "vpc" }
end

function TestSimNat.test_nat_gateway_pending_then_available_with_its_address()
  local t = setup()
  local a = t.ec2:AllocateAddress{ Domain = "vpc" }
  local out = t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId,
    ClientToken = "tok-1", TagSpecifications = tagspec("natgateway", { Name = "nat-a" }) }
  local g = out.NatGateway
  lu.assertEquals(out.ClientToken, "tok-1")
  lu.assertStrMatches(g.NatGatewayId, "nat%-%x+")
  lu.assertEquals({ g.State, g.ConnectivityType, g.SubnetId, g.VpcId },
    { "pending", "public", t.public, t.vpc })
  lu.assertEquals(g.NatGatewayAddresses[1].AllocationId, a.AllocationId)
  -- the same token answers the same gateway
  lu.assertEquals(t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId,
    ClientToken = "tok-1", TagSpecifications = tagspec("natgateway", { Name = "nat-a" }) }
    .NatGateway.NatGatewayId, g.NatGatewayId)
  lu.assertEquals(err_of(t.ec2.CreateNatGateway, t.ec2, { SubnetId = t.public,
    AllocationId = a.AllocationId, ClientToken = "tok-1" }).code, "IdempotentParameterMismatch")

  t.sim:advance(1)
  lu.assertEquals(nat_of(t.ec2, g.NatGatewayId).State, "pending")
  t.sim:advance(10)
  local now = nat_of(t.ec2, g.NatGatewayId)
  lu.assertEquals(now.State, "available")
  local addr = now.NatGatewayAddresses[1]
  lu.assertEquals(addr.PublicIp, a.PublicIp)
  lu.assertStrMatches(addr.NetworkInterfaceId, "eni%-%x+")
  lu.assertStrMatches(addr.PrivateIp, "10%.2%.0%.%d+")
  lu.assertStrMatches(addr.AssociationId, "eipassoc%-%x+")
  lu.assertEquals(now.Tags, { { Key = "Name", Value = "nat-a" } })
  local seen = t.ec2:DescribeAddresses{ AllocationIds = { a.AllocationId } }.Addresses[1]
  lu.assertEquals({ seen.AssociationId, seen.NetworkInterfaceId, seen.PrivateIpAddress },
    { addr.AssociationId, addr.NetworkInterfaceId, addr.PrivateIp })
  -- the model's waiter polls until available
  t.ec2:wait("NatGatewayAvailable", { NatGatewayIds = { g.NatGatewayId } }, { delay = 0.01 })

  -- an address held by a gateway cannot be released
  lu.assertEquals(err_of(t.ec2.ReleaseAddress, t.ec2, { AllocationId = a.AllocationId }).code,
    "InvalidIPAddress.InUse")
end

function TestSimNat.test_create_errors_and_failures()
  local t = setup()
  local a = t.ec2:AllocateAddress{ Domain = "vpc" }
  lu.assertEquals(err_of(t.ec2.CreateNatGateway, t.ec2, { SubnetId = "subnet-0123456789abcdef0",
    AllocationId = a.AllocationId }).code, "InvalidSubnetID.NotFound")
  lu.assertEquals(err_of(t.ec2.CreateNatGateway, t.ec2, { SubnetId = t.public,
    AllocationId = "eipalloc-0123456789abcdef0" }).code, "InvalidAllocationID.NotFound")
  lu.assertEquals(err_of(t.ec2.CreateNatGateway, t.ec2, { SubnetId = t.public }).code,
    "MissingParameter")
  -- an address another gateway holds: AWS takes the request and fails the gateway
  t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId }
  local second = t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId }
    .NatGateway.NatGatewayId
  t.sim:advance(10)
  local g = nat_of(t.ec2, second)
  lu.assertEquals({ g.State, g.FailureCode }, { "failed", "Resource.AlreadyAssociated" })
  local ok, e = pcall(t.ec2.wait, t.ec2, "NatGatewayAvailable", { NatGatewayIds = { second } },
    { delay = 0.01 })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(e), "failed")
  -- a VPC without an internet gateway
  local bare = setup{ igw = false }
  local b = bare.ec2:AllocateAddress{}
  local id = bare.ec2:CreateNatGateway{ SubnetId = bare.public, AllocationId = b.AllocationId }
    .NatGateway.NatGatewayId
  bare.sim:advance(10)
  lu.assertEquals(nat_of(bare.ec2, id).FailureCode, "Gateway.NotAttached")
  bare.ec2:ReleaseAddress{ AllocationId = b.AllocationId }
end

function TestSimNat.test_describe_filters_paging_and_not_found()
  local t = setup()
  local ids = {}
  for i = 1, 6 do
    local a = t.ec2:AllocateAddress{} -- five per region: the sixth gateway is private
    ids[i] = t.ec2:CreateNatGateway{ SubnetId = t.public,
      AllocationId = i <= 5 and a.AllocationId or nil,
      ConnectivityType = i <= 5 and "public" or "private",
      TagSpecifications = tagspec("natgateway", { N = tostring(i) }) }.NatGateway.NatGatewayId
    if i == 5 then
      lu.assertEquals(err_of(t.ec2.AllocateAddress, t.ec2, {}).code, "AddressLimitExceeded")
      break
    end
  end
  t.sim:advance(10)
  local all = {}
  for g in t.ec2:items("DescribeNatGateways", { MaxResults = 5 }) do all[#all + 1] = g.NatGatewayId end
  lu.assertEquals(#all, 5)
  local page = t.ec2:DescribeNatGateways{ MaxResults = 5 }
  lu.assertNil(page.NextToken)
  -- AWS's range 5..1000 (the model's)
  local ok, e = pcall(t.ec2.DescribeNatGateways, t.ec2, { MaxResults = 4 })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(e), "minimum 5")
  local f = t.ec2:DescribeNatGateways{ Filter = { { Name = "tag:N", Values = { "2" } },
    { Name = "state", Values = { "available" } }, { Name = "subnet-id", Values = { t.public } },
    { Name = "vpc-id", Values = { t.vpc } } } }.NatGateways
  lu.assertEquals(#f, 1)
  lu.assertEquals(f[1].NatGatewayId, ids[2])
  lu.assertEquals(#t.ec2:DescribeNatGateways{ Filter = { { Name = "nat-gateway-id",
    Values = { ids[3], ids[4] } } } }.NatGateways, 2)
  lu.assertEquals(err_of(t.ec2.DescribeNatGateways, t.ec2,
    { NatGatewayIds = { "nat-0123456789abcdef0" } }).code, "NatGatewayNotFound")
  lu.assertEquals(err_of(t.ec2.DeleteNatGateway, t.ec2,
    { NatGatewayId = "nat-0123456789abcdef0" }).code, "NatGatewayNotFound")
end

function TestSimNat.test_routes_to_a_nat_gateway_and_blackhole_after_delete()
  local t = setup()
  local a = t.ec2:AllocateAddress{}
  local nat = t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId }
    .NatGateway.NatGatewayId
  t.sim:advance(10)
  t.ec2:CreateRoute{ RouteTableId = t.rtb, DestinationCidrBlock = "0.0.0.0/0", NatGatewayId = nat }
  local r = route_to(t.ec2, t.rtb, "0.0.0.0/0")
  lu.assertEquals({ r.NatGatewayId, r.State, r.GatewayId }, { nat, "active", nil })
  local hits = t.ec2:DescribeRouteTables{ Filters = { { Name = "route.nat-gateway-id",
    Values = { nat } } } }.RouteTables
  lu.assertEquals(#hits, 1)
  -- replace to the internet gateway and back
  t.ec2:ReplaceRoute{ RouteTableId = t.rtb, DestinationCidrBlock = "0.0.0.0/0", GatewayId = t.igw }
  lu.assertEquals(route_to(t.ec2, t.rtb, "0.0.0.0/0").GatewayId, t.igw)
  t.ec2:ReplaceRoute{ RouteTableId = t.rtb, DestinationCidrBlock = "0.0.0.0/0", NatGatewayId = nat }
  lu.assertEquals(route_to(t.ec2, t.rtb, "0.0.0.0/0").NatGatewayId, nat)
  lu.assertEquals(err_of(t.ec2.CreateRoute, t.ec2, { RouteTableId = t.rtb,
    DestinationCidrBlock = "10.9.0.0/16", NatGatewayId = "nat-0123456789abcdef0" }).code,
    "InvalidNatGatewayID.NotFound")
  -- a gateway of another VPC
  local other = t.ec2:CreateVpc{ CidrBlock = "10.3.0.0/16" }.Vpc.VpcId
  local other_rtb = t.ec2:CreateRouteTable{ VpcId = other }.RouteTable.RouteTableId
  lu.assertEquals(err_of(t.ec2.CreateRoute, t.ec2, { RouteTableId = other_rtb,
    DestinationCidrBlock = "0.0.0.0/0", NatGatewayId = nat }).code, "InvalidParameterValue")

  -- while it lives: its subnet, VPC and gateway stay
  lu.assertEquals(err_of(t.ec2.DeleteSubnet, t.ec2, { SubnetId = t.public }).code,
    "DependencyViolation")
  lu.assertEquals(err_of(t.ec2.DetachInternetGateway, t.ec2,
    { InternetGatewayId = t.igw, VpcId = t.vpc }).code, "DependencyViolation")

  lu.assertEquals(t.ec2:DeleteNatGateway{ NatGatewayId = nat }.NatGatewayId, nat)
  lu.assertEquals(nat_of(t.ec2, nat).State, "deleting")
  lu.assertEquals(route_to(t.ec2, t.rtb, "0.0.0.0/0").State, "blackhole")
  lu.assertEquals(err_of(t.ec2.ReleaseAddress, t.ec2, { AllocationId = a.AllocationId }).code,
    "InvalidIPAddress.InUse")
  lu.assertEquals(err_of(t.ec2.DeleteSubnet, t.ec2, { SubnetId = t.public }).code,
    "DependencyViolation")
  t.sim:advance(10)
  -- deleted: still listed (for an hour, as on AWS), its address free again
  local g = nat_of(t.ec2, nat)
  lu.assertEquals(g.State, "deleted")
  lu.assertNotNil(g.DeleteTime)
  t.ec2:wait("NatGatewayDeleted", { NatGatewayIds = { nat } }, { delay = 0.01 })
  lu.assertEquals(route_to(t.ec2, t.rtb, "0.0.0.0/0").State, "blackhole")
  lu.assertNil(t.ec2:DescribeAddresses{ AllocationIds = { a.AllocationId } }.Addresses[1].AssociationId)
  lu.assertEquals(err_of(t.ec2.CreateRoute, t.ec2, { RouteTableId = t.rtb,
    DestinationCidrBlock = "10.9.0.0/16", NatGatewayId = nat }).code, "InvalidNatGatewayID.NotFound")
  t.ec2:ReleaseAddress{ AllocationId = a.AllocationId }
  t.ec2:DetachInternetGateway{ InternetGatewayId = t.igw, VpcId = t.vpc }
  t.ec2:DeleteSubnet{ SubnetId = t.public }
  t.sim:advance(3700)
  lu.assertEquals(err_of(t.ec2.DescribeNatGateways, t.ec2, { NatGatewayIds = { nat } }).code,
    "NatGatewayNotFound")
end

function TestSimNat.test_a_vpc_with_a_nat_gateway_cannot_be_deleted()
  local t = setup()
  local a = t.ec2:AllocateAddress{}
  local nat = t.ec2:CreateNatGateway{ SubnetId = t.public, AllocationId = a.AllocationId }
    .NatGateway.NatGatewayId
  t.sim:advance(10)
  t.ec2:DeleteRouteTable{ RouteTableId = t.rtb }
  lu.assertEquals(err_of(t.ec2.DeleteVpc, t.ec2, { VpcId = t.vpc }).code, "DependencyViolation")
  t.ec2:DeleteNatGateway{ NatGatewayId = nat }
  t.sim:advance(10)
  t.ec2:DetachInternetGateway{ InternetGatewayId = t.igw, VpcId = t.vpc }
  t.ec2:DeleteInternetGateway{ InternetGatewayId = t.igw }
  t.ec2:DeleteSubnet{ SubnetId = t.public }
  t.ec2:DeleteVpc{ VpcId = t.vpc }
end

os.exit(lu.LuaUnit.run())
