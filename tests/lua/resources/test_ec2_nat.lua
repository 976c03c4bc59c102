-- aws:ec2:eip and aws:ec2:nat_gateway (with aws:ec2:route to a NAT gateway) driven by the
-- engine on the simulator: create (read back through fo's ec2 client), rerun without
-- mutating calls, tags in place, adoption after interrupted creates, destroy in AWS's
-- order (the route, the gateway waited to "deleted", then the address released), and an
-- address some other NAT gateway holds is a conflict.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local interrupt = require "support.interrupt"
require "fo.aws.resources"

local sim, dir

local function ec2() return sim:client("ec2", { region = H.REGION }) end

local run, apply, res, id_of = T.runner(function() return sim, dir end)
local tags = T.tag_map

-- A VPC with its internet gateway, a public subnet holding the NAT gateway and its
-- address, and a private route table whose default route goes to the gateway.
local function egress(o)
  o = o or {}
  return function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    local igw = fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id })
    local public = fo.resource("aws:ec2:subnet", "public", { vpc_id = vpc.id,
      cidr_block = o.public_cidr or "10.0.0.0/24", availability_zone = "us-east-1a" })
    local eip = fo.resource("aws:ec2:eip", "nat-a", { tags = o.eip_tags or { Name = "eip-nat-a" } })
    local nat = fo.resource("aws:ec2:nat_gateway", "a", { subnet_id = public.id,
      allocation_id = eip.id, tags = o.nat_tags or { Name = "nat-a", Environment = "Production" } },
      { depends_on = { igw } })
    local rt = fo.resource("aws:ec2:route_table", "private", { vpc_id = vpc.id })
    fo.resource("aws:ec2:route", "private-default", { route_table_id = rt.id,
      destination_cidr_block = "0.0.0.0/0", nat_gateway_id = nat.id })
    fo.output("public_ip", nat.public_ip)
  end
end

local function nat_gateways()
  local out = {}
  for _, g in ipairs(ec2():DescribeNatGateways{}.NatGateways) do
    if g.State ~= "deleted" then out[#out + 1] = g end
  end
  return out
end

TestEc2Nat = {}

function TestEc2Nat:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestEc2Nat:tearDown()
  H.cleanup(dir)
end

function TestEc2Nat:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(egress())
  local c = ec2()
  local alloc = id_of("aws:ec2:eip::nat-a")
  local a = c:DescribeAddresses{ AllocationIds = { alloc } }.Addresses[1]
  lu.assertEquals(a.Domain, "vpc")
  lu.assertEquals(tags(a.Tags), { Name = "eip-nat-a", ["fo:stack"] = "dev",
    ["fo:name"] = "nat-a", ["fo:token"] = res("aws:ec2:eip::nat-a").token })
  lu.assertEquals(res("aws:ec2:eip::nat-a").outputs.public_ip, a.PublicIp)

  local nat_id = id_of("aws:ec2:nat_gateway::a")
  local g = c:DescribeNatGateways{ NatGatewayIds = { nat_id } }.NatGateways[1]
  lu.assertEquals({ g.State, g.SubnetId, g.ConnectivityType },
    { "available", id_of("aws:ec2:subnet::public"), "public" })
  lu.assertEquals(g.NatGatewayAddresses[1].AllocationId, alloc)
  lu.assertEquals(tags(g.Tags).Name, "nat-a")
  lu.assertEquals(tags(g.Tags)["fo:token"], res("aws:ec2:nat_gateway::a").token)
  lu.assertEquals(doc.outputs.public_ip, a.PublicIp)
  -- the address is the gateway's now
  lu.assertEquals(a.NetworkInterfaceId, g.NatGatewayAddresses[1].NetworkInterfaceId)

  local rt = c:DescribeRouteTables{ RouteTableIds = { id_of("aws:ec2:route_table::private") } }
    .RouteTables[1]
  local default
  for _, r in ipairs(rt.Routes) do
    if r.DestinationCidrBlock == "0.0.0.0/0" then default = r end
  end
  lu.assertEquals({ default.NatGatewayId, default.State }, { nat_id, "active" })

  sim.recorder:clear()
  local _, out = apply(egress())
  lu.assertEquals(T.mutating(sim), {})
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Nat:test_tags_change_in_place()
  apply(egress())
  local before = H.state(dir).resources
  sim.recorder:clear()
  apply(egress{ eip_tags = { Name = "eip-renamed" }, nat_tags = { Name = "nat-a" } })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "ec2.CreateTags", "ec2.DeleteTags" })
  for urn, rec in pairs(H.state(dir).resources) do lu.assertEquals(rec.id, before[urn].id, urn) end
  local c = ec2()
  lu.assertEquals(tags(c:DescribeAddresses{ AllocationIds = { id_of("aws:ec2:eip::nat-a") } }
    .Addresses[1].Tags).Name, "eip-renamed")
  lu.assertNil(tags(c:DescribeNatGateways{ NatGatewayIds = { id_of("aws:ec2:nat_gateway::a") } }
    .NatGateways[1].Tags).Environment)
end

function TestEc2Nat:test_a_new_subnet_replaces_the_gateway_delete_first_with_the_same_address()
  apply(egress())
  local old_nat, alloc = id_of("aws:ec2:nat_gateway::a"), id_of("aws:ec2:eip::nat-a")
  sim.recorder:clear()
  apply(egress{ public_cidr = "10.0.1.0/24" })
  local ops = H.ops(sim, { mutating = true })
  -- the address is held by one gateway at a time: the old one goes first
  lu.assertTrue(H.index(ops, "ec2.DeleteNatGateway") < H.index(ops, "ec2.CreateNatGateway"))
  lu.assertNil(H.index(ops, "ec2.ReleaseAddress"))
  local new_nat = id_of("aws:ec2:nat_gateway::a")
  lu.assertNotEquals(new_nat, old_nat)
  local c = ec2()
  local g = c:DescribeNatGateways{ NatGatewayIds = { new_nat } }.NatGateways[1]
  lu.assertEquals({ g.State, g.SubnetId, g.NatGatewayAddresses[1].AllocationId },
    { "available", id_of("aws:ec2:subnet::public"), alloc })
  local rt = c:DescribeRouteTables{ RouteTableIds = { id_of("aws:ec2:route_table::private") } }
    .RouteTables[1]
  for _, r in ipairs(rt.Routes) do
    if r.DestinationCidrBlock == "0.0.0.0/0" then
      lu.assertEquals({ r.NatGatewayId, r.State }, { new_nat, "active" })
    end
  end
  local _, out = apply(egress{ public_cidr = "10.0.1.0/24" })
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Nat:test_every_kind_is_adopted_after_an_interrupted_create()
  apply(egress())
  local ids = {}
  for urn, rec in pairs(H.state(dir).resources) do ids[urn] = rec.id end
  lu.assertEquals(#interrupt.forget_as_intents(dir, { "dev::aws:ec2:eip::nat-a",
    "dev::aws:ec2:nat_gateway::a", "dev::aws:ec2:route::private-default" }), 3)
  sim.recorder:clear()
  local doc, out = apply(egress())
  lu.assertEquals(H.ops(sim, { mutating = true }), {}, out)
  lu.assertEquals(#doc.adopted, 3)
  for urn, id in pairs(ids) do lu.assertEquals(H.state(dir).resources[urn].id, id, urn) end
end

function TestEc2Nat:test_destroy_deletes_the_gateway_then_releases_its_address()
  apply(egress())
  local nat_id = id_of("aws:ec2:nat_gateway::a")
  sim.recorder:clear()
  local code, _, out, err = run(egress(), { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  local ops = H.ops(sim, { mutating = true })
  lu.assertTrue(H.index(ops, "ec2.DeleteRoute") < H.index(ops, "ec2.DeleteNatGateway"))
  lu.assertTrue(H.index(ops, "ec2.DeleteNatGateway") < H.index(ops, "ec2.ReleaseAddress"))
  lu.assertTrue(H.index(ops, "ec2.DeleteNatGateway") < H.index(ops, "ec2.DeleteSubnet"))
  local c = ec2()
  lu.assertEquals(c:DescribeAddresses{}.Addresses, {})
  -- AWS lists a deleted gateway for a while
  lu.assertEquals(c:DescribeNatGateways{ NatGatewayIds = { nat_id } }.NatGateways[1].State, "deleted")
  lu.assertEquals(nat_gateways(), {})
  lu.assertEquals(next(H.state(dir).resources), nil)
  lu.assertEquals(run(egress(), { mode = "destroy" }), 0)
end

function TestEc2Nat:test_a_public_gateway_without_an_address_is_refused()
  local code, _, out, err = run(function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    local s = fo.resource("aws:ec2:subnet", "s", { vpc_id = vpc.id, cidr_block = "10.0.0.0/24" })
    fo.resource("aws:ec2:nat_gateway", "a", { subnet_id = s.id })
  end)
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "a public NAT gateway needs allocation_id")
  lu.assertEquals(H.ops(sim, { operation = "CreateNatGateway" }), {})
end

function TestEc2Nat:test_an_address_another_nat_gateway_holds_is_a_conflict()
  local c = ec2()
  local vpc = c:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local igw = c:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  c:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  local subnet = c:CreateSubnet{ VpcId = vpc, CidrBlock = "10.0.0.0/24" }.Subnet.SubnetId
  local alloc = c:AllocateAddress{ Domain = "vpc" }.AllocationId
  -- made outside fo, then by another copy of the stack
  for _, spec in ipairs({ {}, T.other_copy_tags("a") }) do
    local nat = c:CreateNatGateway{ SubnetId = subnet, AllocationId = alloc,
      TagSpecifications = spec[1] and { { ResourceType = "natgateway", Tags = spec } } or nil }
      .NatGateway.NatGatewayId
    sim:advance(10)
    -- available (the simulator settles states when asked)
    c:wait("NatGatewayAvailable", { NatGatewayIds = { nat } }, { delay = 0.01 })
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, function()
      local s = fo.resource("aws:ec2:subnet", "s", { vpc_id = vpc, cidr_block = "10.0.1.0/24" })
      fo.resource("aws:ec2:nat_gateway", "a", { subnet_id = subnet, allocation_id = alloc },
        { depends_on = { s } })
    end, nat)
    lu.assertStrContains(out, ("an association of Elastic IP %s with NAT gateway %s")
      :format(alloc, nat))
    T.assert_rolled_back(sim, { { "ec2.CreateSubnet", "ec2.DeleteSubnet" } })
    lu.assertEquals(H.ops(sim, { operation = "CreateNatGateway" }), {})
    c:DeleteNatGateway{ NatGatewayId = nat }
    sim:advance(10)
  end
end

os.exit(lu.LuaUnit.run())
