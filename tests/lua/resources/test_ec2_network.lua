-- The EC2 network types (aws:ec2:vpc, subnet, internet_gateway, route_table, route,
-- route_table_association, security_group, security_group_rule, vpc_endpoint) driven by
-- the engine on the simulator: create (read back through fo's ec2 client), rerun without
-- mutating calls, updates in place, replacements (delete-first where names or
-- associations are unique), drift found by refresh and repaired, destroy leaving nothing,
-- adoption after interrupted creates, and the AWS rules: security group names, CIDR
-- blocks, an internet gateway that cannot be detached while a deleted load balancer's
-- addresses remain, NotFound right after create.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local types = require "support.engine_types"
local interrupt = require "support.interrupt"
require "fo.aws.resources"

local sim, dir

local function ec2() return sim:client("ec2", { region = H.REGION }) end

local run, apply, res, id_of = T.runner(function() return sim, dir end)

-- The token the resource was created with (its fo:token tag).
local function token_of(urn_tail)
  return assert(res(urn_tail), urn_tail).token
end

local tags = T.tag_map

-- A region's network as the trading stack builds it: a VPC, a public and a private subnet
-- in two AZs, an internet gateway with the public default route, a private route table
-- with the DynamoDB gateway endpoint, the ALB's and the app's security groups and rules.
local function network(o)
  o = o or {}
  return function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16",
      enable_dns_hostnames = o.hostnames ~= false,
      tags = o.vpc_tags or { Environment = "Production", FailoverRole = "Primary" } })
    local igw = fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id,
      tags = { Environment = "Production" } })
    local public_rt = fo.resource("aws:ec2:route_table", "public", { vpc_id = vpc.id })
    fo.resource("aws:ec2:route", "default", { route_table_id = public_rt.id,
      destination_cidr_block = "0.0.0.0/0", gateway_id = igw.id })
    local public = fo.resource("aws:ec2:subnet", "public", { vpc_id = vpc.id,
      cidr_block = o.public_cidr or "10.0.0.0/24", availability_zone = "us-east-1a",
      map_public_ip_on_launch = o.public_ip ~= false })
    fo.resource("aws:ec2:route_table_association", "public", { route_table_id = public_rt.id,
      subnet_id = public.id })
    local private = fo.resource("aws:ec2:subnet", "private", { vpc_id = vpc.id,
      cidr_block = "10.0.10.0/24", availability_zone = "us-east-1b" })
    local private_rt = fo.resource("aws:ec2:route_table", "private", { vpc_id = vpc.id })
    fo.resource("aws:ec2:route_table_association", "private", { route_table_id = private_rt.id,
      subnet_id = private.id })
    local rts = { private_rt.id }
    if o.endpoint_on_public then rts[2] = public_rt.id end
    local ddb = fo.resource("aws:ec2:vpc_endpoint", "dynamodb", { vpc_id = vpc.id,
      service_name = "com.amazonaws.us-east-1.dynamodb", route_table_ids = rts,
      policy_document = o.policy })
    local alb = fo.resource("aws:ec2:security_group", "alb", { vpc_id = vpc.id,
      group_name = o.alb_name or "alb-sg-test", description = "ALB: HTTP from the internet" })
    fo.resource("aws:ec2:security_group_rule", "alb-in-80", { security_group_id = alb.id,
      type = "ingress", protocol = "tcp", from_port = 80, to_port = 80,
      cidr_ipv4 = "0.0.0.0/0", description = "from the internet" })
    local app = fo.resource("aws:ec2:security_group", "app", { vpc_id = vpc.id,
      group_name = "app-sg-test", revoke_default_egress = true })
    fo.resource("aws:ec2:security_group_rule", "app-from-alb", { security_group_id = app.id,
      type = "ingress", from_port = 8080, to_port = 8080, source_security_group_id = alb.id,
      description = "from the ALB" })
    fo.resource("aws:ec2:security_group_rule", "app-to-dynamodb", { security_group_id = app.id,
      type = "egress", from_port = 443, to_port = 443, prefix_list_id = ddb.prefix_list_id,
      tags = { Purpose = "dynamodb" } })
    fo.output("vpc_id", vpc.id)
    fo.output("prefix_list_id", ddb.prefix_list_id)
  end
end

-- The ids of the region's default VPC, its default subnets and its gateway: AWS's, not
-- the stack's.
local function aws_defaults()
  local c, ids = ec2(), {}
  for _, v in ipairs(c:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "true" } } } }
      .Vpcs) do
    ids[v.VpcId] = true
    for _, s in ipairs(c:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
        .Subnets) do
      ids[s.SubnetId] = true
    end
    for _, g in ipairs(c:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
      Values = { v.VpcId } } } }.InternetGateways) do
      ids[g.InternetGatewayId] = true
    end
  end
  return ids
end

-- The internet gateways of the region but the default VPC's.
local function gateways()
  local aws, out = aws_defaults(), {}
  for _, g in ipairs(ec2():DescribeInternetGateways{}.InternetGateways) do
    if not aws[g.InternetGatewayId] then out[#out + 1] = g end
  end
  return out
end

-- What the stack could have left in the region: "kind id" strings (the main route table
-- and default security group of a VPC go with it; the default VPC is AWS's).
-- A refresh's drift as sorted "type::name kind" lines.
local function drift_of(doc)
  local out = {}
  for _, d in ipairs(doc.drift) do
    out[#out + 1] = d.urn:match("::([^:]+:[^:]+:[^:]+::.*)$") .. " " .. d.kind
  end
  table.sort(out)
  return out
end

local function inventory()
  local c, out, aws = ec2(), {}, aws_defaults()
  for _, v in ipairs(c:DescribeVpcs{}.Vpcs) do
    if not aws[v.VpcId] then out[#out + 1] = "vpc " .. v.VpcId end
  end
  for _, s in ipairs(c:DescribeSubnets{}.Subnets) do
    if not aws[s.SubnetId] then out[#out + 1] = "subnet " .. s.SubnetId end
  end
  for _, g in ipairs(gateways()) do
    out[#out + 1] = "igw " .. g.InternetGatewayId
  end
  for _, rt in ipairs(c:DescribeRouteTables{}.RouteTables) do
    local main = false
    for _, a in ipairs(rt.Associations or {}) do main = main or a.Main end
    if not main then out[#out + 1] = "rtb " .. rt.RouteTableId end
  end
  for _, g in ipairs(c:DescribeSecurityGroups{}.SecurityGroups) do
    if g.GroupName ~= "default" then out[#out + 1] = "sg " .. g.GroupId end
  end
  for _, e in ipairs(c:DescribeVpcEndpoints{}.VpcEndpoints) do
    out[#out + 1] = "vpce " .. e.VpcEndpointId
  end
  table.sort(out)
  return out
end

local function route_table(id)
  return ec2():DescribeRouteTables{ RouteTableIds = { id } }.RouteTables[1]
end

local function rules(group_id, egress)
  local out = {}
  for _, r in ipairs(ec2():DescribeSecurityGroupRules{ Filters = {
    { Name = "group-id", Values = { group_id } } } }.SecurityGroupRules) do
    if r.IsEgress == egress then out[#out + 1] = r end
  end
  return out
end

local function dns_hostnames(vpc_id)
  return ec2():DescribeVpcAttribute{ VpcId = vpc_id, Attribute = "enableDnsHostnames" }
    .EnableDnsHostnames.Value
end

TestEc2Network = {}

function TestEc2Network:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestEc2Network:tearDown()
  H.cleanup(dir)
end

function TestEc2Network:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(network())
  local c = ec2()
  local vpc = c:DescribeVpcs{ VpcIds = { doc.outputs.vpc_id } }.Vpcs[1]
  lu.assertEquals(vpc.CidrBlock, "10.0.0.0/16")
  lu.assertEquals(tags(vpc.Tags), { Environment = "Production", FailoverRole = "Primary",
    ["fo:stack"] = "dev", ["fo:name"] = "vpc", ["fo:token"] = token_of("aws:ec2:vpc::vpc") })
  lu.assertIsTrue(dns_hostnames(vpc.VpcId))

  local public = c:DescribeSubnets{ SubnetIds = { id_of("aws:ec2:subnet::public") } }.Subnets[1]
  local private = c:DescribeSubnets{ SubnetIds = { id_of("aws:ec2:subnet::private") } }.Subnets[1]
  lu.assertEquals({ public.AvailabilityZone, public.MapPublicIpOnLaunch, public.VpcId },
    { "us-east-1a", true, vpc.VpcId })
  lu.assertEquals({ private.AvailabilityZone, private.MapPublicIpOnLaunch },
    { "us-east-1b", false })
  lu.assertEquals(res("aws:ec2:subnet::public").outputs.availability_zone, "us-east-1a")

  local igw = c:DescribeInternetGateways{ InternetGatewayIds = { id_of("aws:ec2:internet_gateway::igw") } }
    .InternetGateways[1]
  lu.assertEquals(igw.Attachments[1].VpcId, vpc.VpcId)
  lu.assertEquals(tags(igw.Tags)["fo:name"], "igw")

  -- public: 0.0.0.0/0 → the gateway, associated with the public subnet
  local prt = route_table(id_of("aws:ec2:route_table::public"))
  local default
  for _, r in ipairs(prt.Routes) do
    if r.DestinationCidrBlock == "0.0.0.0/0" then default = r end
  end
  lu.assertEquals({ default.GatewayId, default.State }, { igw.InternetGatewayId, "active" })
  lu.assertEquals(id_of("aws:ec2:route::default"), prt.RouteTableId .. "_0.0.0.0/0")
  lu.assertEquals(prt.Associations[1].SubnetId, public.SubnetId)
  lu.assertEquals(prt.Associations[1].RouteTableAssociationId,
    id_of("aws:ec2:route_table_association::public"))

  -- private: the endpoint's route to DynamoDB's prefix list
  local vpce_id = id_of("aws:ec2:vpc_endpoint::dynamodb")
  local pl = doc.outputs.prefix_list_id
  lu.assertStrMatches(pl, "pl%-%x+")
  local via_endpoint
  for _, r in ipairs(route_table(id_of("aws:ec2:route_table::private")).Routes) do
    if r.DestinationPrefixListId == pl then via_endpoint = r.GatewayId end
  end
  lu.assertEquals(via_endpoint, vpce_id)
  local e = c:DescribeVpcEndpoints{ VpcEndpointIds = { vpce_id } }.VpcEndpoints[1]
  lu.assertEquals({ e.VpcEndpointType, e.ServiceName }, { "Gateway", "com.amazonaws.us-east-1.dynamodb" })

  -- security groups: the ALB admits 80 from anywhere; the app admits 8080 from the ALB
  -- and reaches only DynamoDB's prefix list (the default allow-all egress is revoked)
  local alb = c:DescribeSecurityGroups{ GroupIds = { id_of("aws:ec2:security_group::alb") } }
    .SecurityGroups[1]
  lu.assertEquals({ alb.GroupName, alb.Description }, { "alb-sg-test", "ALB: HTTP from the internet" })
  local alb_in = rules(alb.GroupId, false)
  lu.assertEquals(#alb_in, 1)
  lu.assertEquals({ alb_in[1].IpProtocol, alb_in[1].FromPort, alb_in[1].CidrIpv4,
    alb_in[1].SecurityGroupRuleId }, { "tcp", 80, "0.0.0.0/0", id_of("aws:ec2:security_group_rule::alb-in-80") })
  lu.assertEquals(#rules(alb.GroupId, true), 1, "a group keeps AWS's default egress")
  local app_id = id_of("aws:ec2:security_group::app")
  local app_in, app_out = rules(app_id, false), rules(app_id, true)
  lu.assertEquals(#app_in, 1)
  lu.assertEquals({ app_in[1].ReferencedGroupInfo.GroupId, app_in[1].FromPort, app_in[1].Description },
    { alb.GroupId, 8080, "from the ALB" })
  lu.assertEquals(#app_out, 1)
  lu.assertEquals({ app_out[1].PrefixListId, app_out[1].ToPort }, { pl, 443 })
  lu.assertEquals(tags(app_out[1].Tags), { Purpose = "dynamodb", ["fo:stack"] = "dev",
    ["fo:name"] = "app-to-dynamodb",
    ["fo:token"] = token_of("aws:ec2:security_group_rule::app-to-dynamodb") })

  -- everything that takes tags carries fo's
  for _, item in ipairs(inventory()) do
    local id = item:match(" (.*)$")
    local t = {}
    for _, d in ipairs(c:DescribeTags{ Filters = { { Name = "resource-id", Values = { id } } } }.Tags) do
      t[d.Key] = d.Value
    end
    lu.assertEquals(t["fo:stack"], "dev", item)
  end

  local before = H.mutating(sim)
  local _, out = apply(network())
  lu.assertEquals(H.mutating(sim), before)
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Network:test_updates_in_place_keep_the_ids()
  apply(network())
  local before = H.state(dir).resources
  sim.recorder:clear()
  apply(network{ hostnames = false, public_ip = false, endpoint_on_public = true,
    vpc_tags = { Environment = "Staging" },
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
      .. '"Action":"dynamodb:GetItem","Resource":"*"}]}' })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "ec2.CreateTags", "ec2.DeleteTags", "ec2.ModifySubnetAttribute",
    "ec2.ModifyVpcAttribute", "ec2.ModifyVpcEndpoint" })
  local after = H.state(dir).resources
  for urn, rec in pairs(after) do lu.assertEquals(rec.id, before[urn].id, urn) end
  local c = ec2()
  local vpc_id = id_of("aws:ec2:vpc::vpc")
  lu.assertIsFalse(dns_hostnames(vpc_id))
  lu.assertEquals(tags(c:DescribeVpcs{ VpcIds = { vpc_id } }.Vpcs[1].Tags),
    { Environment = "Staging", ["fo:stack"] = "dev", ["fo:name"] = "vpc",
      ["fo:token"] = token_of("aws:ec2:vpc::vpc") })
  lu.assertIsFalse(c:DescribeSubnets{ SubnetIds = { id_of("aws:ec2:subnet::public") } }
    .Subnets[1].MapPublicIpOnLaunch)
  local e = c:DescribeVpcEndpoints{ VpcEndpointIds = { id_of("aws:ec2:vpc_endpoint::dynamodb") } }
    .VpcEndpoints[1]
  local rts = e.RouteTableIds
  table.sort(rts)
  local want = { id_of("aws:ec2:route_table::private"), id_of("aws:ec2:route_table::public") }
  table.sort(want)
  lu.assertEquals(rts, want)
  lu.assertStrContains(e.PolicyDocument, "dynamodb:GetItem")

  -- back again: the endpoint leaves the public table and gets AWS's default policy back
  sim.recorder:clear()
  apply(network())
  lu.assertIsTrue(dns_hostnames(vpc_id))
  e = c:DescribeVpcEndpoints{ VpcEndpointIds = { e.VpcEndpointId } }.VpcEndpoints[1]
  lu.assertEquals(e.RouteTableIds, { id_of("aws:ec2:route_table::private") })
  lu.assertStrContains(e.PolicyDocument, '"Action":"*"')
  local _, out = apply(network())
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Network:test_replacements_delete_first_where_aws_wants_uniqueness()
  apply(network())
  local old = H.state(dir).resources
  sim.recorder:clear()
  -- a new subnet block replaces the subnet (its association too: a subnet has one); a
  -- renamed group is deleted before it is made again, after the rule naming it
  apply(network{ public_cidr = "10.0.1.0/24", alb_name = "alb-sg-renamed" })
  local new = H.state(dir).resources
  for _, urn in ipairs({ "dev::aws:ec2:subnet::public", "dev::aws:ec2:route_table_association::public",
    "dev::aws:ec2:security_group::alb", "dev::aws:ec2:security_group_rule::alb-in-80",
    "dev::aws:ec2:security_group_rule::app-from-alb" }) do
    lu.assertNotEquals(new[urn].id, old[urn].id, urn)
  end
  lu.assertEquals(new["dev::aws:ec2:subnet::private"].id, old["dev::aws:ec2:subnet::private"].id)
  local ops = H.ops(sim, { mutating = true })
  lu.assertIsTrue(H.index(ops, "ec2.RevokeSecurityGroupIngress") < H.index(ops, "ec2.DeleteSecurityGroup"))
  lu.assertIsTrue(H.index(ops, "ec2.DeleteSecurityGroup") < H.index(ops, "ec2.CreateSecurityGroup"))
  lu.assertIsTrue(H.index(ops, "ec2.DisassociateRouteTable") < H.index(ops, "ec2.AssociateRouteTable"))
  lu.assertIsTrue(H.index(ops, "ec2.CreateSubnet") < H.index(ops, "ec2.DeleteSubnet"))
  local prt = route_table(id_of("aws:ec2:route_table::public"))
  lu.assertEquals(prt.Associations[1].SubnetId, new["dev::aws:ec2:subnet::public"].id)
  lu.assertEquals(#inventory(), 9)
  local _, out = apply(network{ public_cidr = "10.0.1.0/24", alb_name = "alb-sg-renamed" })
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Network:test_refresh_finds_drift_and_apply_repairs_it()
  apply(network())
  local c = ec2()
  local vpc_id = id_of("aws:ec2:vpc::vpc")
  c:ModifyVpcAttribute{ VpcId = vpc_id, EnableDnsHostnames = { Value = false } }
  c:DeleteTags{ Resources = { vpc_id }, Tags = { { Key = "FailoverRole" } } }
  c:ModifySubnetAttribute{ SubnetId = id_of("aws:ec2:subnet::public"),
    MapPublicIpOnLaunch = { Value = false } }
  c:DeleteRoute{ RouteTableId = id_of("aws:ec2:route_table::public"),
    DestinationCidrBlock = "0.0.0.0/0" }
  c:DisassociateRouteTable{ AssociationId = id_of("aws:ec2:route_table_association::private") }
  c:ModifyVpcEndpoint{ VpcEndpointId = id_of("aws:ec2:vpc_endpoint::dynamodb"),
    AddRouteTableIds = { id_of("aws:ec2:route_table::public") } }
  c:RevokeSecurityGroupIngress{ GroupId = id_of("aws:ec2:security_group::alb"),
    SecurityGroupRuleIds = { id_of("aws:ec2:security_group_rule::alb-in-80") } }

  local code, doc = run(network(), { mode = "refresh" })
  lu.assertEquals(code, 0)
  lu.assertEquals(drift_of(doc), {
    "aws:ec2:route::default deleted",
    "aws:ec2:route_table_association::private deleted",
    "aws:ec2:security_group_rule::alb-in-80 deleted",
    "aws:ec2:subnet::public changed",
    "aws:ec2:vpc::vpc changed",
    "aws:ec2:vpc_endpoint::dynamodb changed",
  })

  apply(network())
  lu.assertIsTrue(dns_hostnames(vpc_id))
  lu.assertEquals(tags(c:DescribeVpcs{ VpcIds = { vpc_id } }.Vpcs[1].Tags).FailoverRole, "Primary")
  lu.assertIsTrue(c:DescribeSubnets{ SubnetIds = { id_of("aws:ec2:subnet::public") } }
    .Subnets[1].MapPublicIpOnLaunch)
  local prt = route_table(id_of("aws:ec2:route_table::public"))
  local routes = {}
  for _, r in ipairs(prt.Routes) do routes[#routes + 1] = r.DestinationCidrBlock or r.DestinationPrefixListId end
  table.sort(routes)
  lu.assertEquals(routes, { "0.0.0.0/0", "10.0.0.0/16" }, "the endpoint left the public table")
  lu.assertEquals(route_table(id_of("aws:ec2:route_table::private")).Associations[1].SubnetId,
    id_of("aws:ec2:subnet::private"))
  lu.assertEquals(#rules(id_of("aws:ec2:security_group::alb"), false), 1)
  local _, out = apply(network())
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Network:test_creates_describe_only_what_their_answer_lacks()
  apply(network())
  local n = {}
  for _, c in ipairs(sim:calls{ service = "ec2", mutating = false }) do
    n[c.operation] = (n[c.operation] or 0) + 1
  end
  -- CreateSubnet, CreateRouteTable and CreateSecurityGroup answer with what the record
  -- needs; the VPC is described until available; the route and the associations are in a
  -- table and subnets this run created, so nothing is read first (common.fresh_slot); the
  -- endpoint's prefix list is read for its output
  lu.assertEquals(n, { DescribeVpcs = 1, DescribePrefixLists = 1 })
end

-- A run that meets a conflict on what it made itself (the id is not known before): exit 4,
-- one conflict, everything it made rolled back.
-- A VPC 10.0.0.0/16 with an internet gateway attached, made outside fo: the EC2 client, the
-- VPC's and the gateway's ids.
local function outside_vpc_with_gateway()
  local c = ec2()
  local vpc = c:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local igw = c:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  c:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  return c, vpc, igw
end

local function conflict_run(recipe)
  local code, doc, out, err = H.run(recipe, { sim = sim, dir = dir })
  local text = out .. err
  lu.assertEquals(code, 4, text)
  local kinds = {}
  for _, e in ipairs(doc.errors) do kinds[#kinds + 1] = e.error.kind end
  lu.assertEquals(kinds, { "conflict" }, text)
  lu.assertEquals(next(H.state(dir).resources), nil)
  return text
end

-- A table this run created: its route to the VPC's own range is AWS's local route, not this
-- create's (CreateRoute refuses the destination and nothing was read first).
function TestEc2Network:test_a_route_to_the_vpc_range_in_a_new_table_is_a_conflict()
  local c, vpc, igw = outside_vpc_with_gateway()
  sim.recorder:clear()
  local out = conflict_run(function()
    local rt = fo.resource("aws:ec2:route_table", "rt", { vpc_id = vpc })
    fo.resource("aws:ec2:route", "local", { route_table_id = rt.id,
      destination_cidr_block = "10.0.0.0/16", gateway_id = igw })
  end)
  lu.assertStrContains(out, "a route to 10.0.0.0/16 in route table rtb-")
  T.assert_rolled_back(sim, { { "ec2.CreateRouteTable", "ec2.DeleteRouteTable" } })
  lu.assertEquals(H.ops(sim, { operation = "DeleteRoute" }), {})
end

-- Two creates of one child of a table or subnet this run created: the second reads first,
-- as on any other table or subnet, and finds the first one.
function TestEc2Network:test_a_second_route_or_association_of_the_same_identity_is_a_conflict()
  local c, vpc, igw = outside_vpc_with_gateway()
  local out = conflict_run(function()
    local rt = fo.resource("aws:ec2:route_table", "rt", { vpc_id = vpc })
    local r1 = fo.resource("aws:ec2:route", "one", { route_table_id = rt.id,
      destination_cidr_block = "0.0.0.0/0", gateway_id = igw })
    fo.resource("aws:ec2:route", "two", { route_table_id = rt.id,
      destination_cidr_block = "0.0.0.0/0", gateway_id = igw }, { depends_on = { r1 } })
  end)
  lu.assertStrContains(out, "a route to 0.0.0.0/0 in route table rtb-")
  out = conflict_run(function()
    local rt = fo.resource("aws:ec2:route_table", "rt", { vpc_id = vpc })
    local s = fo.resource("aws:ec2:subnet", "s", { vpc_id = vpc, cidr_block = "10.0.3.0/24" })
    local a1 = fo.resource("aws:ec2:route_table_association", "one", { route_table_id = rt.id,
      subnet_id = s.id })
    fo.resource("aws:ec2:route_table_association", "two", { route_table_id = rt.id,
      subnet_id = s.id }, { depends_on = { a1 } })
  end)
  lu.assertStrContains(out, "an association of subnet subnet-")
end

function TestEc2Network:test_a_refresh_reads_each_kind_in_one_describe_and_sees_each_change()
  apply(network())
  sim.recorder:clear()
  local _, out = apply(network())
  lu.assertStrContains(out, "No changes.")
  local n = {}
  for _, c in ipairs(sim:calls{ service = "ec2" }) do n[c.operation] = (n[c.operation] or 0) + 1 end
  lu.assertEquals(n, { DescribeVpcs = 1, DescribeVpcAttribute = 2, DescribeSubnets = 1,
    DescribeInternetGateways = 1, DescribeRouteTables = 2, DescribeSecurityGroups = 1,
    DescribeSecurityGroupRules = 1, DescribeVpcEndpoints = 1, DescribePrefixLists = 1 })
  -- changed by hand: a subnet's and a group's tags; a subnet gone (its association first)
  local c = ec2()
  c:CreateTags{ Resources = { id_of("aws:ec2:subnet::public"), id_of("aws:ec2:security_group::app") },
    Tags = { { Key = "Owner", Value = "someone" } } }
  c:DisassociateRouteTable{ AssociationId = id_of("aws:ec2:route_table_association::private") }
  c:DeleteSubnet{ SubnetId = id_of("aws:ec2:subnet::private") }
  local code, doc = run(network(), { mode = "refresh" })
  lu.assertEquals(code, 0)
  lu.assertEquals(drift_of(doc), {
    "aws:ec2:route_table_association::private deleted",
    "aws:ec2:security_group::app changed",
    "aws:ec2:subnet::private deleted",
    "aws:ec2:subnet::public changed",
  })
end

function TestEc2Network:test_destroy_leaves_nothing()
  apply(network())
  lu.assertEquals(#inventory(), 9)
  local code, _, out, err = run(network(), { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(inventory(), {})
  lu.assertEquals(next(H.state(dir).resources), nil)
  -- deleting again what is already gone is success
  code = run(network(), { mode = "destroy" })
  lu.assertEquals(code, 0)
end

function TestEc2Network:test_every_kind_is_adopted_after_an_interrupted_create()
  apply(network())
  local ids = {}
  for urn, rec in pairs(H.state(dir).resources) do ids[urn] = rec.id end
  local urns = interrupt.forget_as_intents(dir)
  lu.assertEquals(#urns, 15)
  sim.recorder:clear()
  local doc, out = apply(network())
  lu.assertEquals(H.ops(sim, { mutating = true }), {}, out)
  lu.assertEquals(#doc.adopted, 15)
  for urn, id in pairs(ids) do
    lu.assertStrContains(out, ("Adopted %s: %s"):format(urn, id))
    lu.assertEquals(H.state(dir).resources[urn].id, id)
  end
  lu.assertEquals(next(H.state(dir).intents), nil)
end

function TestEc2Network:test_gateway_created_but_not_attached_is_adopted_and_attached()
  local function recipe()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.1.0.0/16" })
    fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id })
  end
  -- CreateVpc (1), CreateInternetGateway (2) succeed; AttachInternetGateway (3) fails and
  -- the run stops there, the intent recorded
  types.fail_mutating_call(sim, 3)
  local code = run(recipe, { rollback = false })
  lu.assertEquals(code, 3)
  local gws = gateways()
  lu.assertEquals(#gws, 1)
  lu.assertEquals(gws[1].Attachments, {})
  sim.recorder:clear()
  local _, out = apply(recipe)
  lu.assertStrContains(out, "Adopted dev::aws:ec2:internet_gateway::igw: " .. gws[1].InternetGatewayId)
  lu.assertEquals(H.ops(sim, { mutating = true }), { "ec2.AttachInternetGateway" })
  gws = gateways()
  lu.assertEquals(gws[1].Attachments[1].VpcId, id_of("aws:ec2:vpc::vpc"))
  local _, again = apply(recipe)
  lu.assertStrContains(again, "No changes.")
end

function TestEc2Network:test_a_failed_gateway_create_is_rolled_back_without_leftovers()
  types.fail_mutating_call(sim, 3)
  local code, _, out, err = run(function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.1.0.0/16" })
    fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id })
  end)
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(inventory(), {})
end

-- A security group "app-sg-test" in a VPC made outside the stack, after a subnet the stack
-- makes there first (so the run has something of its own to roll back).
local function group_in(vpc_id)
  return function()
    local s = fo.resource("aws:ec2:subnet", "s", { vpc_id = vpc_id, cidr_block = "10.0.1.0/24" })
    fo.resource("aws:ec2:security_group", "app", { vpc_id = vpc_id, group_name = "app-sg-test",
      tags = { Subnet = s.id } })
  end
end

function TestEc2Network:test_a_security_group_of_the_same_name_in_the_vpc_not_ours_is_a_conflict()
  local vpc = ec2():CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  -- made outside fo (untagged), then by another copy of the stack (its tags, another token)
  for _, tags in ipairs({ {}, T.other_copy_tags("app", { { Key = "Owner", Value = "ops" } }) }) do
    local g = ec2():CreateSecurityGroup{ VpcId = vpc, GroupName = "app-sg-test",
      Description = "made by hand",
      TagSpecifications = tags[1] and { { ResourceType = "security-group", Tags = tags } } or nil,
    }.GroupId
    ec2():AuthorizeSecurityGroupIngress{ GroupId = g, IpPermissions = { { IpProtocol = "tcp",
      FromPort = 22, ToPort = 22, IpRanges = { { CidrIp = "192.0.2.0/24" } } } } }
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, group_in(vpc), g)
    lu.assertStrContains(out, ('a security group named "app-sg-test" in %s'):format(vpc))
    T.assert_rolled_back(sim, { { "ec2.CreateSubnet", "ec2.DeleteSubnet" } })
    ec2():DeleteSecurityGroup{ GroupId = g }
  end
end

-- A subnet the stack makes in `vpc_id` first, then `declare()` after it (so the run has
-- something of its own to roll back).
local function after_a_subnet(vpc_id, declare)
  return function()
    local s = fo.resource("aws:ec2:subnet", "s", { vpc_id = vpc_id, cidr_block = "10.0.1.0/24" })
    declare(s)
  end
end

function TestEc2Network:test_a_route_already_in_a_table_not_ours_is_a_conflict()
  -- routes carry no tags: CreateRoute refuses the destination (RouteAlreadyExists), and
  -- the rollback of a create that failed must not take the route there for its own
  local c, vpc, igw = outside_vpc_with_gateway()
  local rt = c:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  c:CreateRoute{ RouteTableId = rt, DestinationCidrBlock = "0.0.0.0/0", GatewayId = igw }
  -- the same route, then the destination to another target
  for _, target in ipairs({ { gateway_id = igw },
      { vpc_peering_connection_id = "pcx-0123456789abcdef0" } }) do
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, after_a_subnet(vpc, function(s)
      local p = { route_table_id = rt, destination_cidr_block = "0.0.0.0/0" }
      for k, v in pairs(target) do p[k] = v end
      fo.resource("aws:ec2:route", "default", p, { depends_on = { s } })
    end), rt .. "_0.0.0.0/0")
    lu.assertStrContains(out, ("a route to 0.0.0.0/0 in route table %s"):format(rt))
    T.assert_rolled_back(sim, { { "ec2.CreateSubnet", "ec2.DeleteSubnet" } })
    lu.assertEquals(H.ops(sim, { operation = "DeleteRoute" }), {})
  end
end

function TestEc2Network:test_a_subnet_already_associated_by_someone_else_is_a_conflict()
  local c = ec2()
  local vpc = c:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local rt = c:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  local other = c:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  local subnet = c:CreateSubnet{ VpcId = vpc, CidrBlock = "10.0.2.0/24" }.Subnet.SubnetId
  local assoc = c:AssociateRouteTable{ RouteTableId = rt, SubnetId = subnet }.AssociationId
  -- associated with the very table the recipe names, then with the one it does not
  for _, table_id in ipairs({ rt, other }) do
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, after_a_subnet(vpc, function(s)
      fo.resource("aws:ec2:route_table_association", "a", { route_table_id = table_id,
        subnet_id = subnet }, { depends_on = { s } })
    end), assoc)
    lu.assertStrContains(out, ("an association of subnet %s with route table %s"):format(
      subnet, rt))
    T.assert_rolled_back(sim, { { "ec2.CreateSubnet", "ec2.DeleteSubnet" } })
    lu.assertEquals(H.ops(sim, { operation = "DisassociateRouteTable" }), {})
  end
end

function TestEc2Network:test_security_group_names_and_cidr_blocks_are_checked_before_any_call()
  local code, _, out, err = run(function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    fo.resource("aws:ec2:security_group", "web", { vpc_id = vpc.id, group_name = "sg-web" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, 'property group_name: "sg-web": a security group name may not start with "sg-"')
  code, _, out, err = run(function()
    fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.1/16" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "host bits set; the network is 10.0.0.0/16")
  code, _, out, err = run(function()
    fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/8" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "the prefix length must be /16 to /28")
  lu.assertEquals(sim:count(), 0)
end

function TestEc2Network:test_a_route_needs_exactly_one_target()
  local code, _, out, err = run(function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    local igw = fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id })
    local rt = fo.resource("aws:ec2:route_table", "rt", { vpc_id = vpc.id })
    fo.resource("aws:ec2:route", "r", { route_table_id = rt.id,
      destination_cidr_block = "0.0.0.0/0", gateway_id = igw.id, nat_gateway_id = "nat-0123" })
  end)
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "give exactly one target")
  lu.assertEquals(inventory(), {})
end

function TestEc2Network:test_destroy_waits_while_a_deleted_load_balancer_keeps_its_addresses()
  sim.timing = { lb_eni_release = 1.5 }
  local function recipe()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    fo.resource("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id })
    fo.resource("aws:ec2:subnet", "a", { vpc_id = vpc.id, cidr_block = "10.0.0.0/24",
      availability_zone = "us-east-1a" })
    fo.resource("aws:ec2:subnet", "b", { vpc_id = vpc.id, cidr_block = "10.0.1.0/24",
      availability_zone = "us-east-1b" })
  end
  apply(recipe)
  -- an internet-facing ALB made and deleted outside the stack: its ENIs (and public
  -- addresses) stay a while after the delete
  local elb = sim:client("elbv2", { region = H.REGION })
  local lb = elb:CreateLoadBalancer{ Name = "lb-test", Scheme = "internet-facing",
    Subnets = { id_of("aws:ec2:subnet::a"), id_of("aws:ec2:subnet::b") } }.LoadBalancers[1]
  ec2():DescribeSubnets{} -- EC2 sees the load balancer's ENIs
  elb:DeleteLoadBalancer{ LoadBalancerArn = lb.LoadBalancerArn }
  sim.recorder:clear()
  local code, _, out, err = run(recipe, { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(inventory(), {})
  local detach, subnet = {}, {}
  for _, c in ipairs(sim:calls{ operation = "DetachInternetGateway" }) do detach[#detach + 1] = c.code or "ok" end
  for _, c in ipairs(sim:calls{ operation = "DeleteSubnet" }) do subnet[#subnet + 1] = c.code or "ok" end
  lu.assertEquals(detach[1], "DependencyViolation")
  lu.assertEquals(detach[#detach], "ok")
  lu.assertEquals(subnet[1], "DependencyViolation")
end

function TestEc2Network:test_new_resources_invisible_for_a_while_are_waited_for()
  sim:set_knob("consistency_ms", 1200)
  apply(network())
  lu.assertIsTrue(#sim:calls{ code = "InvalidVpcID.NotFound" } > 0, "the window was met")
  -- (a create whose answer shows its resource usable describes it no more: the window may
  -- still hide the newest ones from a Describe now, as on AWS)
  sim:set_knob("consistency_ms", 0)
  lu.assertEquals(#inventory(), 9)
  local _, out = apply(network())
  lu.assertStrContains(out, "No changes.")
end

-- A rollback right after the creates: AWS may answer NotFound to any call naming an id it
-- made a moment ago (EC2's eventual consistency), a delete included. The simulator's deletes
-- see every resource; here DeleteSubnet and DeleteSecurityGroup answer NotFound inside the
-- window, as AWS may. Taken for "already gone", the rollback would leave both behind.
function TestEc2Network:test_a_rollback_right_after_the_creates_deletes_what_aws_does_not_show_yet()
  sim:set_knob("consistency_ms", 1500)
  local C = require "fo.sim.services.ec2.common"
  local handlers = require "fo.sim.services.ec2"
  local function unseen_while_fresh(op, kind, id_param)
    return function(ctx, p)
      local r = C.find(ctx, kind, p[id_param])
      local k = C.KINDS[kind]
      if r and ctx:fresh(r) then ctx:fail(k.notfound, k.one:format(p[id_param])) end
      return handlers[op](ctx, p)
    end
  end
  sim:add_handlers("ec2", {
    DeleteSubnet = unseen_while_fresh("DeleteSubnet", "subnet", "SubnetId"),
    DeleteSecurityGroup = unseen_while_fresh("DeleteSecurityGroup", "sg", "GroupId") })
  sim:add_handlers("sns", { CreateTopic = function(ctx)
    ctx:fail("AuthorizationError", "not authorized to perform: SNS:CreateTopic", 403)
  end })
  -- (in the region's default VPC: what is left behind then shows at once, no VPC delete
  -- waits on it)
  local vpc = ec2():DescribeVpcs{ Filters = { { Name = "is-default", Values = { "true" } } } }
    .Vpcs[1].VpcId
  local code, _, out, err = run(function()
    local subnet = fo.resource("aws:ec2:subnet", "a", { vpc_id = vpc,
      cidr_block = "172.31.200.0/24", availability_zone = "us-east-1a" })
    local sg = fo.resource("aws:ec2:security_group", "sg", { vpc_id = vpc,
      group_name = "rollback-sg-test" })
    fo.resource("aws:sns:topic", "t", { name = "after-the-network" },
      { depends_on = { subnet, sg } })
  end)
  lu.assertEquals(code, 4, out .. err)
  lu.assertStrContains(out .. err, "rolled back")
  local refused = #sim:calls{ operation = "DeleteSubnet", code = "InvalidSubnetID.NotFound" }
    + #sim:calls{ operation = "DeleteSecurityGroup", code = "InvalidGroup.NotFound" }
  lu.assertTrue(refused >= 1, "a delete met the window")
  sim:set_knob("consistency_ms", 0)
  lu.assertEquals(inventory(), {})
end

-- An interface endpoint (SSM) in two subnets of different AZs with its own security
-- group and private DNS, as the trading stack's private subnets reach AWS services.
local function interface_endpoint(o)
  o = o or {}
  return function()
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16",
      enable_dns_support = true, enable_dns_hostnames = true })
    local a = fo.resource("aws:ec2:subnet", "a", { vpc_id = vpc.id, cidr_block = "10.0.10.0/24",
      availability_zone = "us-east-1a" })
    local b = fo.resource("aws:ec2:subnet", "b", { vpc_id = vpc.id, cidr_block = "10.0.11.0/24",
      availability_zone = "us-east-1b" })
    local sg = fo.resource("aws:ec2:security_group", "vpce", { vpc_id = vpc.id,
      group_name = "vpce-sg-test" })
    local other = fo.resource("aws:ec2:security_group", "other", { vpc_id = vpc.id,
      group_name = "other-sg-test" })
    local e = fo.resource("aws:ec2:vpc_endpoint", "ssm", { vpc_id = vpc.id,
      service_name = "com.amazonaws.us-east-1.ssm", vpc_endpoint_type = "Interface",
      subnet_ids = o.one_subnet and { a.id } or { a.id, b.id },
      security_group_ids = { o.other_group and other.id or sg.id },
      private_dns_enabled = o.private_dns ~= false,
      route_table_ids = o.route_table_ids })
    fo.output("endpoint", e.id)
  end
end

function TestEc2Network:test_an_interface_endpoint_has_its_subnets_group_and_private_dns_and_changes_in_place()
  local doc = apply(interface_endpoint())
  local c = ec2()
  local e = c:DescribeVpcEndpoints{ VpcEndpointIds = { doc.outputs.endpoint } }.VpcEndpoints[1]
  lu.assertEquals(e.VpcEndpointType, "Interface")
  lu.assertEquals(e.ServiceName, "com.amazonaws.us-east-1.ssm")
  lu.assertIsTrue(e.PrivateDnsEnabled)
  local subnets = e.SubnetIds
  table.sort(subnets)
  local want = { id_of("aws:ec2:subnet::a"), id_of("aws:ec2:subnet::b") }
  table.sort(want)
  lu.assertEquals(subnets, want)
  lu.assertEquals(#e.Groups, 1)
  lu.assertEquals(e.Groups[1].GroupId, id_of("aws:ec2:security_group::vpce"))
  lu.assertIsNil(res("aws:ec2:vpc_endpoint::ssm").outputs.prefix_list_id,
    "an interface endpoint is not reached through a prefix list")
  sim.recorder:clear()
  local _, out = apply(interface_endpoint())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})

  -- one subnet fewer, another group, private DNS off: one ModifyVpcEndpoint, same id
  sim.recorder:clear()
  apply(interface_endpoint{ one_subnet = true, other_group = true, private_dns = false })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "ec2.ModifyVpcEndpoint" })
  e = c:DescribeVpcEndpoints{ VpcEndpointIds = { doc.outputs.endpoint } }.VpcEndpoints[1]
  lu.assertEquals(e.SubnetIds, { id_of("aws:ec2:subnet::a") })
  lu.assertEquals(e.Groups[1].GroupId, id_of("aws:ec2:security_group::other"))
  lu.assertEquals(#e.Groups, 1)
  lu.assertIsFalse(e.PrivateDnsEnabled)

  -- private DNS turned off behind the stack's back: refresh sees it, apply repairs it
  apply(interface_endpoint())
  c:ModifyVpcEndpoint{ VpcEndpointId = e.VpcEndpointId, PrivateDnsEnabled = false }
  local code, rdoc = run(interface_endpoint(), { mode = "refresh" })
  lu.assertEquals(code, 0)
  lu.assertEquals(#rdoc.drift, 1)
  lu.assertStrContains(rdoc.drift[1].urn, "aws:ec2:vpc_endpoint::ssm")
  apply(interface_endpoint())
  lu.assertIsTrue(c:DescribeVpcEndpoints{ VpcEndpointIds = { e.VpcEndpointId } }
    .VpcEndpoints[1].PrivateDnsEnabled)
end

function TestEc2Network:test_an_interface_endpoint_with_route_tables_is_refused_before_any_call()
  local code, _, out, err = run(interface_endpoint{ route_table_ids = { "rtb-0123" } })
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "an Interface endpoint takes subnet_ids, not route_table_ids")
  lu.assertEquals(inventory(), {})
end

function TestEc2Network:test_a_gateway_endpoint_recorded_before_interface_endpoints_plans_no_change()
  apply(network())
  -- a state written before aws:ec2:vpc_endpoint knew subnets, groups and private DNS
  local doc = H.state(dir)
  local rec = doc.resources["dev::aws:ec2:vpc_endpoint::dynamodb"]
  rec.inputs.subnet_ids, rec.inputs.security_group_ids, rec.inputs.private_dns_enabled = nil, nil, nil
  fo.fs.write_atomic(dir .. "/dev.state.json", require("fo.json").encode(doc))
  sim.recorder:clear()
  local _, out = apply(network())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
end

os.exit(lu.LuaUnit.run())
