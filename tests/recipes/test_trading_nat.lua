-- recipes/trading.lua with --config private_egress=nat on the embedded simulator, read back
-- through fo's AWS clients (never from the recipe or the state): a NAT gateway with its
-- Elastic IP in each public subnet, each private route table's default route to its own
-- AZ's gateway, no interface endpoints nor their security group (the gateway endpoints
-- stay); back to endpoints, then destroy, leave no gateway and no address.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local engine = require "fo.engine"
local cjson = require "cjson"

local RECIPE = os.getenv("FO_RECIPE") or (testlib.tests_dir .. "/../recipes/trading.lua")
local SUFFIX = "nattest"
local REGIONS = { { region = "eu-south-1", role = "Primary" },
  { region = "eu-central-1", role = "Standby" } }
local LETTERS = { "a", "b" }
local tagmap = testing.tag_map

local function config(egress)
  return { environmentSuffix = SUFFIX, private_egress = egress }
end

local function sorted(t)
  table.sort(t)
  return t
end

-- The stack's VPC in `region` (the default VPC is AWS's) and its subnets by kind: the
-- private ones are those the Auto Scaling group launches into.
local function network(w, region, role)
  local ec2 = w:client("ec2", region)
  local vpcs = ec2:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "false" } } } }.Vpcs
  lu.assertEquals(#vpcs, 1, region)
  local vpc = vpcs[1].VpcId
  local asg = w:client("autoscaling", region):DescribeAutoScalingGroups{ AutoScalingGroupNames = {
    ("asg-%s-%s"):format(role:lower(), SUFFIX) } }.AutoScalingGroups[1]
  local private = {}
  for id in asg.VPCZoneIdentifier:gmatch("[^,]+") do private[id] = true end
  local by_az = {}
  for _, s in ipairs(ec2:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { vpc } } } }.Subnets) do
    by_az[s.AvailabilityZone] = by_az[s.AvailabilityZone] or {}
    by_az[s.AvailabilityZone][private[s.SubnetId] and "private" or "public"] = s.SubnetId
  end
  return ec2, vpc, by_az
end

local function live_nat_gateways(ec2)
  local out = {}
  for _, g in ipairs(ec2:DescribeNatGateways{}.NatGateways) do
    if g.State ~= "deleted" then out[#out + 1] = g end
  end
  return out
end

local function interface_endpoints(ec2, vpc)
  return ec2:DescribeVpcEndpoints{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "vpc-endpoint-type", Values = { "Interface" } } } }.VpcEndpoints
end

local function default_route(ec2, subnet)
  local rt = ec2:DescribeRouteTables{ Filters = { { Name = "association.subnet-id",
    Values = { subnet } } } }.RouteTables[1]
  for _, r in ipairs(rt.Routes) do
    if r.DestinationCidrBlock == "0.0.0.0/0" then return r end
  end
  return nil
end

local function assert_nat_egress(w)
  for _, r in ipairs(REGIONS) do
    local ec2, vpc, by_az = network(w, r.region, r.role)
    local nats = ec2:DescribeNatGateways{ Filter = { { Name = "vpc-id", Values = { vpc } },
      { Name = "state", Values = { "available" } } } }.NatGateways
    lu.assertEquals(#nats, 2, r.region .. ": one NAT gateway per AZ")
    for _, letter in ipairs(LETTERS) do
      local az = r.region .. letter
      local subnets = by_az[az]
      lu.assertNotNil(subnets and subnets.public and subnets.private, az)
      -- the AZ's gateway is in its public subnet, public, with an address of the stack
      local nat
      for _, g in ipairs(nats) do
        if g.SubnetId == subnets.public then nat = g end
      end
      lu.assertNotNil(nat, az .. ": a NAT gateway in the public subnet")
      lu.assertEquals(nat.ConnectivityType, "public")
      local t = tagmap(nat.Tags)
      lu.assertEquals({ t.Environment, t.FailoverRole, t.Name },
        { "Production", r.role, ("nat-%s-%s-%s"):format(letter, r.role:lower(), SUFFIX) })
      local addr = nat.NatGatewayAddresses[1]
      local eip = ec2:DescribeAddresses{ AllocationIds = { addr.AllocationId } }.Addresses[1]
      lu.assertEquals(eip.PublicIp, addr.PublicIp)
      lu.assertEquals(eip.NetworkInterfaceId, addr.NetworkInterfaceId, "the address is the gateway's")
      t = tagmap(eip.Tags)
      lu.assertEquals({ t.Environment, t.FailoverRole, t.Name },
        { "Production", r.role, ("nat-eip-%s-%s-%s"):format(letter, r.role:lower(), SUFFIX) })
      -- the AZ's private subnet routes the internet to its own AZ's gateway
      local route = default_route(ec2, subnets.private)
      lu.assertNotNil(route, az .. ": a default route from the private subnet")
      lu.assertEquals({ route.NatGatewayId, route.State }, { nat.NatGatewayId, "active" }, az)
      -- the public subnet still goes out through the internet gateway
      lu.assertStrMatches(default_route(ec2, subnets.public).GatewayId, "igw%-%x+")
    end
    lu.assertEquals(#ec2:DescribeAddresses{}.Addresses, 2, r.region .. ": two addresses")
    -- the gateways replace the interface endpoints and their group; the free gateway
    -- endpoints (DynamoDB, S3) stay
    lu.assertEquals(interface_endpoints(ec2, vpc), {}, r.region)
    local gateways = {}
    for _, e in ipairs(ec2:DescribeVpcEndpoints{ Filters = { { Name = "vpc-id", Values = { vpc } } } }
        .VpcEndpoints) do
      gateways[#gateways + 1] = e.ServiceName:match("[^.]+$")
    end
    lu.assertEquals(sorted(gateways), { "dynamodb", "s3" })
    lu.assertEquals(ec2:DescribeSecurityGroups{ Filters = { { Name = "group-name",
      Values = { ("vpce-sg-%s-%s"):format(r.role:lower(), SUFFIX) } } } }.SecurityGroups, {})
  end
end

TestTradingNat = {}

function TestTradingNat:test_nat_egress_then_back_to_endpoints_then_destroy_leaves_no_address()
  local w = testing.apply(RECIPE, { seed = "trading-nat", stack = "nat", config = config("nat") })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    assert_nat_egress(w)
    -- a rerun changes nothing
    w:run{}
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")

    -- back to the endpoints: the gateways go, their addresses are released, the default
    -- routes leave the private tables, the interface endpoints come
    w:run{ config = config("endpoints") }
    lu.assertEquals(w.code, 0, w.out .. w.err)
    for _, r in ipairs(REGIONS) do
      local ec2, vpc, by_az = network(w, r.region, r.role)
      lu.assertEquals(live_nat_gateways(ec2), {}, r.region)
      lu.assertEquals(ec2:DescribeAddresses{}.Addresses, {}, r.region .. ": addresses released")
      for az, subnets in pairs(by_az) do
        lu.assertNil(default_route(ec2, subnets.private), az .. ": no default route")
      end
      lu.assertEquals(#interface_endpoints(ec2, vpc), 5, r.region)
    end

    -- and to NAT again, then destroy: nothing left, addresses included
    w:run{ config = config("nat") }
    lu.assertEquals(w.code, 0, w.out .. w.err)
    assert_nat_egress(w)
    w:destroy()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    for _, r in ipairs(REGIONS) do
      local ec2 = w:client("ec2", r.region)
      lu.assertEquals(live_nat_gateways(ec2), {}, r.region)
      lu.assertEquals(ec2:DescribeAddresses{}.Addresses, {}, r.region)
      lu.assertEquals(ec2:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "false" } } } }
        .Vpcs, {}, r.region)
    end
  end)
  w:close()
  if not ok then error(err, 0) end
end

function TestTradingNat:test_the_plan_with_nat_lists_the_gateways_and_not_the_interface_endpoints()
  -- (a state directory of its own: a stack the user deployed from this checkout is not this)
  local state = testlib.tmpdir()
  local r = testlib.run_fo({ "--plan", "--config", "private_egress=nat", "--config",
    "environmentSuffix=" .. SUFFIX, RECIPE }, { timeout = 300, env = { FO_STATE_DIR = state } })
  testlib.rmtree(state)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  for _, want in ipairs({ "aws:ec2:nat_gateway", "aws:ec2:eip", "primary/nat-1", "standby/nat-2",
    "primary/private-default-1" }) do
    lu.assertStrContains(r.stdout, want)
  end
  lu.assertNotStrContains(r.stdout, "primary/ssmmessages")
  lu.assertNotStrContains(r.stdout, "vpce-sg")
end

-- The deployer's policy for this option: the address and gateway actions, their creates
-- only with the stack's tag, tagging on those creates.
function TestTradingNat:test_the_deployer_policy_covers_the_addresses_and_gateways()
  local state = testlib.tmpdir() -- (not a stack the user deployed from this checkout)
  local r = testlib.run_fo({ "--print-policy", "--config", "private_egress=nat", RECIPE },
    { timeout = 300, env = { FO_STATE_DIR = state } })
  testlib.rmtree(state)
  lu.assertEquals(r.code, 0, r.stderr)
  local doc = cjson.decode(r.stdout)
  local by_sid = {}
  for _, st in ipairs(doc.Statement) do by_sid[st.Sid] = st end
  local function has(list, x)
    for _, v in ipairs(type(list) == "table" and list or { list }) do
      if v == x then return true end
    end
    return false
  end
  local tagged = by_sid.Ec2CreateStackTagged
  for _, a in ipairs({ "ec2:AllocateAddress", "ec2:CreateNatGateway" }) do
    lu.assertIsTrue(has(tagged.Action, a), a .. " only with the stack's tag")
  end
  for _, op in ipairs({ "AllocateAddress", "CreateNatGateway" }) do
    lu.assertIsTrue(has(by_sid.Ec2TagOnCreate.Condition.StringEquals["ec2:CreateAction"], op),
      "ec2:CreateTags on " .. op)
  end
  local all = {}
  for _, st in pairs(by_sid) do
    for _, a in ipairs(type(st.Action) == "table" and st.Action or { st.Action }) do all[a] = true end
  end
  for _, a in ipairs({ "ec2:DescribeAddresses", "ec2:ReleaseAddress", "ec2:DescribeNatGateways",
    "ec2:DeleteNatGateway" }) do
    lu.assertIsTrue(all[a] == true, a)
  end

  -- a role holding exactly that policy applies and destroys the stack with NAT egress (the
  -- simulator evaluates the role's policy for every call)
  local sim = fo.sim.new{ seed = "nat-deployer" }
  sim.timing = testing.FAST
  local iam, sts = sim:client("iam"), sim:client("sts")
  iam:CreateRole{ RoleName = "deployer", MaxSessionDuration = 43200,
    AssumeRolePolicyDocument = cjson.encode{ Version = "2012-10-17", Statement = { {
      Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. sim.account .. ":root" },
      Action = "sts:AssumeRole" } } } }
  iam:PutRolePolicy{ RoleName = "deployer", PolicyName = "fo-deployer",
    PolicyDocument = r.stdout }
  local c = sts:AssumeRole{ RoleArn = ("arn:aws:iam::%s:role/deployer"):format(sim.account),
    RoleSessionName = "ci", DurationSeconds = 43200 }.Credentials
  sim.client_key = { access_key = c.AccessKeyId, secret_key = c.SecretAccessKey,
    session_token = c.SessionToken }
  local dir = testlib.tmpdir()
  for _, mode in ipairs({ "apply", "destroy" }) do
    local out = {}
    local code = engine.run{ recipe = RECIPE, sim = sim, dir = dir, mode = mode ~= "apply" and mode
      or nil, config = { private_egress = "nat" }, out = function(x) out[#out + 1] = x end,
      err = function(x) out[#out + 1] = x end }
    lu.assertEquals(code, 0, table.concat(out))
  end
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run("-v", table.unpack(arg or {})))
