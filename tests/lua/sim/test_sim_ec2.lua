-- The simulator's EC2 (lua/fo/sim/services/ec2.lua): one region's network built and torn
-- down as the failover recipe does it, the Describe filters the engine uses, and AWS's
-- validation and error codes. Calls go through fo's EC2 client over the in-process
-- transport (so the ec2 protocol's codecs are exercised both ways) when the server-side
-- codec is built, else straight to the handlers with sim:invoke.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"

local HAVE_CODEC = require("fo.awsproto").parse_request ~= nil
local REGION = "eu-south-1"
local ID17 = ("%x"):rep(17)
-- Every region has its default VPC (with a subnet per AZ, a gateway, a default group):
-- filters that leave it out.
local OWN_VPCS = { Name = "is-default", Values = { "false" } }

-- An EC2 API for `region`: api:Op{params} → output (raises the AWS error).
local function ec2_api(sim, region)
  region = region or REGION
  if HAVE_CODEC then
    local c = sim:client("ec2", { region = region, max_attempts = 1 })
    return setmetatable({}, { __index = function(_, op)
      return function(_, p) return (c[op](c, p or {})) end
    end })
  end
  return setmetatable({}, { __index = function(_, op)
    return function(_, p) return sim:invoke("ec2", region, op, p or {}) end
  end })
end

-- The error api:op(p) raises (fails the test when it succeeds); e.code, e.status, e.message.
local function fails(api, op, p)
  local ok, e = pcall(api[op], api, p)
  lu.assertFalse(ok, op .. " should have failed")
  lu.assertEquals(type(e), "table", tostring(e))
  return e
end

local function assert_code(api, op, p, code, message_part)
  local e = fails(api, op, p)
  lu.assertEquals(e.code, code, tostring(e.message))
  if message_part then lu.assertStrContains(e.message, message_part) end
  return e
end

local function tags(t)
  local out = {}
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = { Key = k, Value = t[k] } end
  return out
end

local function spec(rtype, t) return { { ResourceType = rtype, Tags = tags(t) } } end

local function tag_of(r, key)
  for _, t in ipairs(r.Tags or {}) do
    if t.Key == key then return t.Value end
  end
  return nil
end

local function ids(list, member)
  local out = {}
  for i, r in ipairs(list) do out[i] = r[member] end
  table.sort(out)
  return out
end

local function sorted(t) table.sort(t); return t end

local function new_vpc(api, cidr, name)
  return api:CreateVpc{ CidrBlock = cidr or "10.10.0.0/16",
    TagSpecifications = spec("vpc", { Name = name or "vpc-test" }) }.Vpc.VpcId
end

local function new_subnet(api, vpc, cidr, az)
  return api:CreateSubnet{ VpcId = vpc, CidrBlock = cidr, AvailabilityZone = az or "eu-south-1a" }
    .Subnet.SubnetId
end

local STACK = { ["fo:stack"] = "trading-prod", Environment = "Production",
  FailoverRole = "Primary" }
local function stack_tags(name, extra)
  local t = { ["fo:name"] = name }
  for k, v in pairs(STACK) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local LT_DATA = {
  ImageId = "ami-0abcdef1234567890", InstanceType = "t3.medium",
  MetadataOptions = { HttpTokens = "required", HttpEndpoint = "enabled",
    HttpPutResponseHopLimit = 2 },
  BlockDeviceMappings = { { DeviceName = "/dev/xvda", Ebs = { VolumeSize = 20,
    VolumeType = "gp3", Encrypted = true, DeleteOnTermination = true } } },
  Monitoring = { Enabled = true },
  UserData = "IyEvYmluL2Jhc2gKeXVtIGluc3RhbGwgLXkgaHR0cGQK",
  TagSpecifications = { { ResourceType = "instance", Tags = { { Key = "FailoverRole",
    Value = "Primary" } } } },
}

TestSimEc2 = {}

---------------------------------------------------------------------------------------
-- The recipe's network, built, described and torn down

function TestSimEc2.test_region_network_build_describe_teardown()
  local sim = simlib.new{ seed = "ec2-network" }
  local api = ec2_api(sim)

  -- AZs: the recipe picks two available ones.
  local azs = api:DescribeAvailabilityZones{ Filters = {
    { Name = "state", Values = { "available" } },
    { Name = "zone-type", Values = { "availability-zone" } } } }.AvailabilityZones
  lu.assertEquals(ids(azs, "ZoneName"), { "eu-south-1a", "eu-south-1b", "eu-south-1c" })
  lu.assertEquals(azs[1].RegionName, REGION)
  local az_a, az_b = azs[1].ZoneName, azs[2].ZoneName

  -- VPC, tagged at creation; DNS hostnames enabled for the endpoint and instances.
  local created = api:CreateVpc{ CidrBlock = "10.10.0.0/16", InstanceTenancy = "default",
    TagSpecifications = spec("vpc", stack_tags("primary/vpc", { Name = "vpc-trading-prod" })) }
    .Vpc
  lu.assertStrMatches(created.VpcId, "vpc%-" .. ID17)
  lu.assertEquals(created.State, "pending")
  lu.assertEquals(created.OwnerId, "123456789012")
  lu.assertEquals(created.CidrBlockAssociationSet[1].CidrBlock, "10.10.0.0/16")
  lu.assertEquals(created.CidrBlockAssociationSet[1].CidrBlockState.State, "associated")
  lu.assertEquals(tag_of(created, "fo:name"), "primary/vpc")
  local vpc = created.VpcId
  lu.assertEquals(api:DescribeVpcAttribute{ VpcId = vpc, Attribute = "enableDnsSupport" }
    .EnableDnsSupport.Value, true)
  lu.assertEquals(api:DescribeVpcAttribute{ VpcId = vpc, Attribute = "enableDnsHostnames" }
    .EnableDnsHostnames.Value, false)
  api:ModifyVpcAttribute{ VpcId = vpc, EnableDnsHostnames = { Value = true } }
  local attr = api:DescribeVpcAttribute{ VpcId = vpc, Attribute = "enableDnsHostnames" }
  lu.assertEquals(attr.VpcId, vpc)
  lu.assertEquals(attr.EnableDnsHostnames.Value, true)
  lu.assertNil(attr.EnableDnsSupport)

  -- Adoption by tag finds it; the VPC is available now.
  local found = api:DescribeVpcs{ Filters = {
    { Name = "tag:fo:stack", Values = { "trading-prod" } },
    { Name = "tag:fo:name", Values = { "primary/vpc", "standby/vpc" } } } }.Vpcs
  lu.assertEquals(#found, 1)
  lu.assertEquals(found[1].State, "available")
  lu.assertEquals(#api:DescribeVpcs{ Filters = { { Name = "cidr", Values = { "10.10.0.0/16" } } } }
    .Vpcs, 1)
  lu.assertEquals(#api:DescribeVpcs{ Filters = { { Name = "tag-key", Values = { "fo:*" } } } }
    .Vpcs, 1)

  -- What every VPC gets: the main route table (local route) and the default group.
  local main = api:DescribeRouteTables{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "association.main", Values = { "true" } } } }.RouteTables
  lu.assertEquals(#main, 1)
  lu.assertEquals(main[1].Routes, { { DestinationCidrBlock = "10.10.0.0/16", GatewayId = "local",
    Origin = "CreateRouteTable", State = "active" } })
  lu.assertTrue(main[1].Associations[1].Main)
  local default = api:DescribeSecurityGroups{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "group-name", Values = { "default" } } } }.SecurityGroups
  lu.assertEquals(#default, 1)
  lu.assertEquals(default[1].Description, "default VPC security group")
  lu.assertEquals(default[1].IpPermissionsEgress[1].IpProtocol, "-1")
  lu.assertEquals(default[1].IpPermissionsEgress[1].IpRanges, { { CidrIp = "0.0.0.0/0" } })
  lu.assertEquals(default[1].IpPermissions[1].UserIdGroupPairs[1].GroupId, default[1].GroupId)

  -- Subnets: 2 public + 2 private in two AZs.
  local function subnet(cidr, az, name, tier)
    local s = api:CreateSubnet{ VpcId = vpc, CidrBlock = cidr, AvailabilityZone = az,
      TagSpecifications = spec("subnet", stack_tags(name, { Tier = tier })) }.Subnet
    lu.assertStrMatches(s.SubnetId, "subnet%-" .. ID17)
    lu.assertEquals(s.AvailableIpAddressCount, 251)
    lu.assertEquals(s.MapPublicIpOnLaunch, false)
    lu.assertEquals(s.State, "available")
    lu.assertEquals(s.SubnetArn, "arn:aws:ec2:eu-south-1:123456789012:subnet/" .. s.SubnetId)
    return s.SubnetId
  end
  local pub_a = subnet("10.10.1.0/24", az_a, "primary/subnet-public-a", "public")
  local pub_b = subnet("10.10.2.0/24", az_b, "primary/subnet-public-b", "public")
  local priv_a = subnet("10.10.11.0/24", az_a, "primary/subnet-private-a", "private")
  local priv_b = subnet("10.10.12.0/24", az_b, "primary/subnet-private-b", "private")
  for _, s in ipairs{ pub_a, pub_b } do
    api:ModifySubnetAttribute{ SubnetId = s, MapPublicIpOnLaunch = { Value = true } }
  end
  local subs = api:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "tag:Tier", Values = { "public" } } } }.Subnets
  lu.assertEquals(ids(subs, "SubnetId"), sorted{ pub_a, pub_b })
  for _, s in ipairs(subs) do lu.assertTrue(s.MapPublicIpOnLaunch) end
  lu.assertEquals(ids(api:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "availability-zone", Values = { az_a } } } }.Subnets, "SubnetId"),
    sorted{ pub_a, priv_a })
  lu.assertEquals(ids(api:DescribeSubnets{ Filters = {
    { Name = "cidr-block", Values = { "10.10.11.0/24" } } } }.Subnets, "SubnetId"), { priv_a })
  lu.assertEquals(ids(api:DescribeSubnets{ SubnetIds = { priv_b, pub_b } }.Subnets, "SubnetId"),
    sorted{ priv_b, pub_b })
  lu.assertEquals(api:DescribeSubnets{ SubnetIds = { priv_a } }.Subnets[1].AvailabilityZoneId,
    "eus1-az1")

  -- Internet gateway, attached; public route table with the default route.
  local igw = api:CreateInternetGateway{ TagSpecifications = spec("internet-gateway",
    stack_tags("primary/igw")) }.InternetGateway
  lu.assertStrMatches(igw.InternetGatewayId, "igw%-" .. ID17)
  lu.assertEquals(igw.Attachments, {})
  api:AttachInternetGateway{ InternetGatewayId = igw.InternetGatewayId, VpcId = vpc }
  local gws = api:DescribeInternetGateways{ Filters = {
    { Name = "attachment.vpc-id", Values = { vpc } },
    { Name = "tag:fo:stack", Values = { "trading-prod" } } } }.InternetGateways
  lu.assertEquals(#gws, 1)
  lu.assertEquals(gws[1].Attachments[1].VpcId, vpc)

  local function route_table(name)
    local rt = api:CreateRouteTable{ VpcId = vpc, TagSpecifications = spec("route-table",
      stack_tags(name)) }.RouteTable
    lu.assertStrMatches(rt.RouteTableId, "rtb%-" .. ID17)
    lu.assertEquals(#rt.Routes, 1)
    lu.assertEquals(rt.Associations, {})
    return rt.RouteTableId
  end
  local rt_pub = route_table("primary/rtb-public")
  local rt_a = route_table("primary/rtb-private-a")
  local rt_b = route_table("primary/rtb-private-b")
  lu.assertEquals(api:CreateRoute{ RouteTableId = rt_pub, DestinationCidrBlock = "0.0.0.0/0",
    GatewayId = igw.InternetGatewayId }.Return, true)
  local assoc = {}
  for _, pair in ipairs{ { rt_pub, pub_a }, { rt_pub, pub_b }, { rt_a, priv_a }, { rt_b, priv_b } } do
    local a = api:AssociateRouteTable{ RouteTableId = pair[1], SubnetId = pair[2] }
    lu.assertStrMatches(a.AssociationId, "rtbassoc%-" .. ID17)
    lu.assertEquals(a.AssociationState.State, "associated")
    assoc[#assoc + 1] = a.AssociationId
  end
  local by_subnet = api:DescribeRouteTables{ Filters = {
    { Name = "association.subnet-id", Values = { pub_b } } } }.RouteTables
  lu.assertEquals(#by_subnet, 1)
  lu.assertEquals(by_subnet[1].RouteTableId, rt_pub)
  lu.assertEquals(by_subnet[1].Routes[2], { DestinationCidrBlock = "0.0.0.0/0",
    GatewayId = igw.InternetGatewayId, Origin = "CreateRoute", State = "active" })
  lu.assertEquals(#by_subnet[1].Associations, 2)
  lu.assertEquals(#api:DescribeRouteTables{ Filters = {
    { Name = "route-table-id", Values = { rt_a, rt_b } } } }.RouteTables, 2)
  lu.assertEquals(#api:DescribeRouteTables{ Filters = {
    { Name = "tag:fo:name", Values = { "primary/rtb-*" } } } }.RouteTables, 3)

  -- Security groups: the ALB's (80/443 from anywhere) and the app's (8080 from the ALB,
  -- egress only to DynamoDB through the endpoint's prefix list).
  local alb = api:CreateSecurityGroup{ GroupName = "alb-trading-prod",
    Description = "ALB: HTTP/HTTPS from the internet & Route 53 checkers", VpcId = vpc,
    TagSpecifications = spec("security-group", stack_tags("primary/sg-alb")) }
  lu.assertStrMatches(alb.GroupId, "sg%-" .. ID17)
  lu.assertEquals(tag_of(alb, "fo:name"), "primary/sg-alb")
  local app = api:CreateSecurityGroup{ GroupName = "app-trading-prod", Description = "app",
    VpcId = vpc, TagSpecifications = spec("security-group", stack_tags("primary/sg-app")) }
  local auth = api:AuthorizeSecurityGroupIngress{ GroupId = alb.GroupId, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 80, ToPort = 80,
      IpRanges = { { CidrIp = "0.0.0.0/0", Description = "HTTP from anywhere" } },
      Ipv6Ranges = { { CidrIpv6 = "::/0", Description = "HTTP from anywhere (IPv6)" } } },
    { IpProtocol = "tcp", FromPort = 443, ToPort = 443,
      IpRanges = { { CidrIp = "0.0.0.0/0" } } } },
    TagSpecifications = spec("security-group-rule", { ["fo:stack"] = "trading-prod" }) }
  lu.assertTrue(auth.Return)
  lu.assertEquals(#auth.SecurityGroupRules, 3)
  local r1 = auth.SecurityGroupRules[1]
  lu.assertStrMatches(r1.SecurityGroupRuleId, "sgr%-" .. ID17)
  lu.assertEquals({ r1.GroupId, r1.IsEgress, r1.IpProtocol, r1.FromPort, r1.ToPort, r1.CidrIpv4,
    r1.Description }, { alb.GroupId, false, "tcp", 80, 80, "0.0.0.0/0", "HTTP from anywhere" })
  lu.assertEquals(tag_of(r1, "fo:stack"), "trading-prod")
  api:AuthorizeSecurityGroupIngress{ GroupId = app.GroupId, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 8080, ToPort = 8080,
      UserIdGroupPairs = { { GroupId = alb.GroupId, Description = "app from ALB" } } } } }

  -- Gateway endpoint for DynamoDB on the private route tables: prefix-list routes.
  local ep = api:CreateVpcEndpoint{ VpcEndpointType = "Gateway", VpcId = vpc,
    ServiceName = "com.amazonaws.eu-south-1.dynamodb", RouteTableIds = { rt_a, rt_b },
    ClientToken = "trading-prod/primary/vpce-dynamodb/1",
    TagSpecifications = spec("vpc-endpoint", stack_tags("primary/vpce-dynamodb")) }
  lu.assertEquals(ep.ClientToken, "trading-prod/primary/vpce-dynamodb/1")
  local vpce = ep.VpcEndpoint
  lu.assertStrMatches(vpce.VpcEndpointId, "vpce%-" .. ID17)
  lu.assertEquals(vpce.VpcEndpointType, "Gateway")
  lu.assertEquals(sorted(vpce.RouteTableIds), sorted{ rt_a, rt_b })
  lu.assertStrContains(vpce.PolicyDocument, '"Effect":"Allow"')
  local rt = api:DescribeRouteTables{ RouteTableIds = { rt_a } }.RouteTables[1]
  lu.assertEquals(#rt.Routes, 2)
  local pl = rt.Routes[2].DestinationPrefixListId
  lu.assertStrMatches(pl, "pl%-%x%x%x%x%x%x%x%x")
  lu.assertEquals(rt.Routes[2].GatewayId, vpce.VpcEndpointId)
  lu.assertEquals(#api:DescribeRouteTables{ Filters = {
    { Name = "route.destination-prefix-list-id", Values = { pl } } } }.RouteTables, 2)
  -- The same token and parameters again: the same endpoint, nothing new.
  lu.assertEquals(api:CreateVpcEndpoint{ VpcEndpointType = "Gateway", VpcId = vpc,
    ServiceName = "com.amazonaws.eu-south-1.dynamodb", RouteTableIds = { rt_a, rt_b },
    ClientToken = "trading-prod/primary/vpce-dynamodb/1",
    TagSpecifications = spec("vpc-endpoint", stack_tags("primary/vpce-dynamodb")) }
    .VpcEndpoint.VpcEndpointId, vpce.VpcEndpointId)
  local eps = api:DescribeVpcEndpoints{ Filters = {
    { Name = "service-name", Values = { "com.amazonaws.eu-south-1.dynamodb" } },
    { Name = "vpc-endpoint-type", Values = { "Gateway" } } } }.VpcEndpoints
  lu.assertEquals(ids(eps, "VpcEndpointId"), { vpce.VpcEndpointId })

  -- App egress: drop the default allow-all, allow 443 to DynamoDB.
  api:RevokeSecurityGroupEgress{ GroupId = app.GroupId, IpPermissions = {
    { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }
  api:AuthorizeSecurityGroupEgress{ GroupId = app.GroupId, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 443, ToPort = 443, PrefixListIds = {
      { PrefixListId = pl, Description = "DynamoDB gateway endpoint" } } } } }
  local groups = api:DescribeSecurityGroups{ GroupIds = { app.GroupId, alb.GroupId } }
    .SecurityGroups
  lu.assertEquals(#groups, 2)
  local g_app = groups[1].GroupId == app.GroupId and groups[1] or groups[2]
  lu.assertEquals(g_app.GroupName, "app-trading-prod")
  lu.assertEquals(g_app.IpPermissions, { { IpProtocol = "tcp", FromPort = 8080, ToPort = 8080,
    IpRanges = {}, Ipv6Ranges = {}, PrefixListIds = {},
    UserIdGroupPairs = { { GroupId = alb.GroupId, UserId = "123456789012",
      Description = "app from ALB" } } } })
  lu.assertEquals(g_app.IpPermissionsEgress, { { IpProtocol = "tcp", FromPort = 443,
    ToPort = 443, IpRanges = {}, Ipv6Ranges = {}, UserIdGroupPairs = {},
    PrefixListIds = { { PrefixListId = pl, Description = "DynamoDB gateway endpoint" } } } })
  lu.assertEquals(#api:DescribeSecurityGroups{ Filters = { { Name = "vpc-id", Values = { vpc } },
    { Name = "group-name", Values = { "alb-trading-prod", "app-trading-prod" } } } }
    .SecurityGroups, 2)
  lu.assertEquals(ids(api:DescribeSecurityGroups{ Filters = {
    { Name = "ip-permission.group-id", Values = { alb.GroupId } } } }.SecurityGroups, "GroupId"),
    { app.GroupId })
  local rules = api:DescribeSecurityGroupRules{ Filters = {
    { Name = "group-id", Values = { alb.GroupId } } }, MaxResults = 100 }.SecurityGroupRules
  lu.assertEquals(#rules, 4) -- 3 ingress + the default egress
  local egress = 0
  for _, r in ipairs(rules) do if r.IsEgress then egress = egress + 1 end end
  lu.assertEquals(egress, 1)

  -- Launch template: AL2 t3.medium, IMDSv2, encrypted root volume, user data.
  local lt = api:CreateLaunchTemplate{ LaunchTemplateName = "lt-trading-app-prod",
    VersionDescription = "AL2 t3.medium, IMDSv2, encrypted root",
    ClientToken = "trading-prod/primary/lt-app/1", LaunchTemplateData = LT_DATA,
    TagSpecifications = spec("launch-template", stack_tags("primary/lt-app")) }.LaunchTemplate
  lu.assertStrMatches(lt.LaunchTemplateId, "lt%-" .. ID17)
  lu.assertEquals({ lt.DefaultVersionNumber, lt.LatestVersionNumber }, { 1, 1 })
  lu.assertEquals(lt.CreatedBy, "arn:aws:iam::123456789012:root")
  local v2 = api:CreateLaunchTemplateVersion{ LaunchTemplateId = lt.LaunchTemplateId,
    SourceVersion = "1", VersionDescription = "new AMI",
    LaunchTemplateData = { ImageId = "ami-0fedcba0987654321" } }.LaunchTemplateVersion
  lu.assertEquals(v2.VersionNumber, 2)
  lu.assertFalse(v2.DefaultVersion)
  lu.assertEquals(v2.LaunchTemplateData.ImageId, "ami-0fedcba0987654321")
  lu.assertEquals(v2.LaunchTemplateData.InstanceType, "t3.medium") -- inherited
  lu.assertEquals(api:ModifyLaunchTemplate{ LaunchTemplateId = lt.LaunchTemplateId,
    DefaultVersion = "2" }.LaunchTemplate.DefaultVersionNumber, 2)
  local versions = api:DescribeLaunchTemplateVersions{ LaunchTemplateId = lt.LaunchTemplateId,
    Versions = { "$Latest", "$Default", "1" } }.LaunchTemplateVersions
  lu.assertEquals(#versions, 2)
  lu.assertEquals({ versions[1].VersionNumber, versions[2].VersionNumber }, { 2, 1 })
  lu.assertTrue(versions[1].DefaultVersion)
  local v1 = versions[2].LaunchTemplateData
  lu.assertEquals(v1.MetadataOptions, LT_DATA.MetadataOptions)
  lu.assertEquals(v1.BlockDeviceMappings, LT_DATA.BlockDeviceMappings)
  lu.assertEquals(v1.UserData, LT_DATA.UserData)
  lu.assertEquals(v1.TagSpecifications, LT_DATA.TagSpecifications)
  local lts = api:DescribeLaunchTemplates{ LaunchTemplateNames = { "lt-trading-app-prod" },
    Filters = { { Name = "tag:fo:stack", Values = { "trading-prod" } } } }.LaunchTemplates
  lu.assertEquals(#lts, 1)
  lu.assertEquals(lts[1].LatestVersionNumber, 2)
  lu.assertEquals(#api:DescribeLaunchTemplates{ Filters = {
    { Name = "launch-template-name", Values = { "lt-trading-*" } } } }.LaunchTemplates, 1)

  -- Everything the stack owns, by tag (the orphan sweep).
  local owned = api:DescribeTags{ Filters = { { Name = "key", Values = { "fo:stack" } },
    { Name = "value", Values = { "trading-prod" } } }, MaxResults = 500 }.Tags
  local kinds = {}
  for _, t in ipairs(owned) do kinds[t.ResourceType] = (kinds[t.ResourceType] or 0) + 1 end
  lu.assertEquals(kinds, { vpc = 1, subnet = 4, ["internet-gateway"] = 1, ["route-table"] = 3,
    ["security-group"] = 2, ["security-group-rule"] = 3, ["vpc-endpoint"] = 1,
    ["launch-template"] = 1 })

  -- Teardown in reverse order; DependencyViolation while dependents remain.
  assert_code(api, "DeleteVpc", { VpcId = vpc }, "DependencyViolation",
    "has dependencies and cannot be deleted")
  api:DeleteLaunchTemplate{ LaunchTemplateId = lt.LaunchTemplateId }
  lu.assertEquals(api:DeleteVpcEndpoints{ VpcEndpointIds = { vpce.VpcEndpointId } }
    .Unsuccessful, {})
  lu.assertEquals(#api:DescribeRouteTables{ RouteTableIds = { rt_a } }.RouteTables[1].Routes, 1)
  -- The ALB group is referenced by the app group's rule.
  assert_code(api, "DeleteSecurityGroup", { GroupId = alb.GroupId }, "DependencyViolation",
    "has a dependent object")
  api:DeleteSecurityGroup{ GroupId = app.GroupId }
  api:DeleteSecurityGroup{ GroupId = alb.GroupId }
  assert_code(api, "DeleteSecurityGroup", { GroupId = default[1].GroupId }, "CannotDelete")
  assert_code(api, "DeleteRouteTable", { RouteTableId = rt_pub }, "DependencyViolation")
  for _, a in ipairs(assoc) do api:DisassociateRouteTable{ AssociationId = a } end
  for _, r in ipairs{ rt_pub, rt_a, rt_b } do api:DeleteRouteTable{ RouteTableId = r } end
  assert_code(api, "DeleteRouteTable", { RouteTableId = main[1].RouteTableId },
    "DependencyViolation")
  assert_code(api, "DeleteInternetGateway", { InternetGatewayId = igw.InternetGatewayId },
    "DependencyViolation")
  api:DetachInternetGateway{ InternetGatewayId = igw.InternetGatewayId, VpcId = vpc }
  api:DeleteInternetGateway{ InternetGatewayId = igw.InternetGatewayId }
  assert_code(api, "DeleteVpc", { VpcId = vpc }, "DependencyViolation")
  for _, s in ipairs{ pub_a, pub_b, priv_a, priv_b } do api:DeleteSubnet{ SubnetId = s } end
  api:DeleteVpc{ VpcId = vpc }
  assert_code(api, "DescribeVpcs", { VpcIds = { vpc } }, "InvalidVpcID.NotFound",
    ("The vpc ID '%s' does not exist"):format(vpc))
  -- Its main route table and default group went with it.
  local in_vpc = { { Name = "vpc-id", Values = { vpc } } }
  lu.assertEquals(api:DescribeRouteTables{ Filters = in_vpc }.RouteTables, {})
  lu.assertEquals(api:DescribeSecurityGroups{ Filters = in_vpc }.SecurityGroups, {})
  lu.assertEquals(api:DescribeTags{}.Tags, {})
  assert_code(api, "DeleteVpc", { VpcId = vpc }, "InvalidVpcID.NotFound")
end

---------------------------------------------------------------------------------------
-- Validation

function TestSimEc2.test_vpc_cidr_validation_and_limits()
  local sim = simlib.new{ seed = 2 }
  local api = ec2_api(sim)
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.0/8" }, "InvalidVpc.Range",
    "The CIDR '10.0.0.0/8' is invalid.")
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.0/29" }, "InvalidVpc.Range")
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.300/16" }, "InvalidParameterValue",
    "This is not a valid CIDR block.")
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.1/16" }, "InvalidParameterValue")
  assert_code(api, "CreateVpc", {}, "MissingParameter")
  lu.assertStrMatches(new_vpc(api, "10.0.0.0/28"), "vpc%-" .. ID17)
  -- The default VPC counts against the quota of 5, as on AWS.
  for i = 1, 3 do new_vpc(api, ("10.%d.0.0/16"):format(i)) end
  assert_code(api, "CreateVpc", { CidrBlock = "10.9.0.0/16" }, "VpcLimitExceeded")
  -- Another region has its own VPCs and quota.
  lu.assertStrMatches(new_vpc(ec2_api(sim, "eu-central-1")), "vpc%-" .. ID17)
  assert_code(api, "ModifyVpcAttribute", { VpcId = "vpc-0123456789abcdef0",
    EnableDnsSupport = { Value = true } }, "InvalidVpcID.NotFound")
  assert_code(api, "DescribeVpcs", { VpcIds = { "vpc-123" } }, "InvalidVpcID.Malformed")
  local vpc = api:DescribeVpcs{}.Vpcs[1].VpcId
  assert_code(api, "ModifyVpcAttribute", { VpcId = vpc, EnableDnsSupport = { Value = true },
    EnableDnsHostnames = { Value = true } }, "InvalidParameterCombination")
  assert_code(api, "DescribeVpcs", { Filters = { { Name = "colour", Values = { "x" } } } },
    "InvalidParameterValue", "The filter 'colour' is invalid")
end

function TestSimEc2.test_subnet_validation()
  local api = ec2_api(simlib.new{ seed = 3 })
  local vpc = new_vpc(api, "10.10.0.0/16")
  assert_code(api, "CreateSubnet", { VpcId = vpc, CidrBlock = "10.11.0.0/24",
    AvailabilityZone = "eu-south-1a" }, "InvalidSubnet.Range", "The CIDR '10.11.0.0/24' is invalid.")
  assert_code(api, "CreateSubnet", { VpcId = vpc, CidrBlock = "10.10.0.0/29",
    AvailabilityZone = "eu-south-1a" }, "InvalidSubnet.Range")
  assert_code(api, "CreateSubnet", { VpcId = vpc, CidrBlock = "10.10.1.0/24",
    AvailabilityZone = "eu-central-1a" }, "InvalidParameterValue",
    "Value (eu-central-1a) for parameter availabilityZone is invalid. Subnets can currently "
      .. "only be created in the following availability zones: eu-south-1a, eu-south-1b, "
      .. "eu-south-1c.")
  local s = api:CreateSubnet{ VpcId = vpc, CidrBlock = "10.10.0.0/20",
    AvailabilityZone = "eu-south-1b" }.Subnet
  lu.assertEquals(s.AvailableIpAddressCount, 4096 - 5)
  assert_code(api, "CreateSubnet", { VpcId = vpc, CidrBlock = "10.10.1.0/24",
    AvailabilityZone = "eu-south-1a" }, "InvalidSubnet.Conflict",
    "The CIDR '10.10.1.0/24' conflicts with another subnet")
  -- A sibling in another VPC with the same CIDR is fine.
  local other = new_vpc(api, "10.10.0.0/16", "other")
  new_subnet(api, other, "10.10.1.0/24")
  assert_code(api, "CreateSubnet", { VpcId = "vpc-0a1b2c3d4e5f60718", CidrBlock = "10.10.1.0/24" },
    "InvalidVpcID.NotFound")
  assert_code(api, "DescribeSubnets", { SubnetIds = { "subnet-0123456789abcdef0",
    "subnet-0fedcba9876543210" } }, "InvalidSubnetID.NotFound",
    "subnet-0123456789abcdef0, subnet-0fedcba9876543210")
  assert_code(api, "ModifySubnetAttribute", { SubnetId = "subnet-0123456789abcdef0",
    MapPublicIpOnLaunch = { Value = true } }, "InvalidSubnetID.NotFound")
  assert_code(api, "DeleteSubnet", { SubnetId = "subnet-0123456789abcdef0" },
    "InvalidSubnetID.NotFound")
  -- By AZ id instead of name.
  local z = api:CreateSubnet{ VpcId = vpc, CidrBlock = "10.10.32.0/24",
    AvailabilityZoneId = "eus1-az3" }.Subnet
  lu.assertEquals(z.AvailabilityZone, "eu-south-1c")
end

function TestSimEc2.test_internet_gateway_errors()
  local api = ec2_api(simlib.new{ seed = 4 })
  local vpc, vpc2 = new_vpc(api, "10.10.0.0/16"), new_vpc(api, "10.20.0.0/16")
  local igw = api:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  local igw2 = api:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  assert_code(api, "DetachInternetGateway", { InternetGatewayId = igw, VpcId = vpc },
    "Gateway.NotAttached")
  api:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  assert_code(api, "AttachInternetGateway", { InternetGatewayId = igw, VpcId = vpc2 },
    "Resource.AlreadyAssociated")
  assert_code(api, "AttachInternetGateway", { InternetGatewayId = igw2, VpcId = vpc },
    "Resource.AlreadyAssociated")
  assert_code(api, "DetachInternetGateway", { InternetGatewayId = igw, VpcId = vpc2 },
    "Gateway.NotAttached")
  assert_code(api, "DeleteInternetGateway", { InternetGatewayId = igw }, "DependencyViolation")
  assert_code(api, "AttachInternetGateway", { InternetGatewayId = "igw-0c1d2e3f4a5b6c7d8",
    VpcId = vpc }, "InvalidInternetGatewayID.NotFound")
  assert_code(api, "DescribeInternetGateways", { InternetGatewayIds = { "igw-0c1d2e3f4a5b6c7d8" } },
    "InvalidInternetGatewayID.NotFound")
  lu.assertEquals(#api:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id", Values = { vpc } },
    { Name = "attachment.state", Values = { "available" } } } }.InternetGateways, 1)
  api:DeleteInternetGateway{ InternetGatewayId = igw2 }
end

function TestSimEc2.test_routes_and_associations()
  local api = ec2_api(simlib.new{ seed = 5 })
  local vpc, vpc2 = new_vpc(api, "10.10.0.0/16"), new_vpc(api, "10.20.0.0/16")
  local s = new_subnet(api, vpc, "10.10.1.0/24")
  local s2 = new_subnet(api, vpc2, "10.20.1.0/24")
  local igw = api:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  local igw2 = api:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  api:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  api:AttachInternetGateway{ InternetGatewayId = igw2, VpcId = vpc2 }
  local rt = api:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  local route = { RouteTableId = rt, DestinationCidrBlock = "0.0.0.0/0", GatewayId = igw }
  assert_code(api, "CreateRoute", { RouteTableId = rt, DestinationCidrBlock = "0.0.0.0/0",
    GatewayId = igw2 }, "InvalidParameterValue", "belong to different networks")
  assert_code(api, "CreateRoute", { RouteTableId = rt, DestinationCidrBlock = "0.0.0.0/0",
    GatewayId = "igw-0c1d2e3f4a5b6c7d9" }, "InvalidGatewayID.NotFound")
  assert_code(api, "ReplaceRoute", route, "InvalidParameterValue",
    "There is no route defined for '0.0.0.0/0' in the route table. Use CreateRoute instead.")
  api:CreateRoute(route)
  assert_code(api, "CreateRoute", route, "RouteAlreadyExists")
  assert_code(api, "CreateRoute", { RouteTableId = rt, DestinationCidrBlock = "10.10.0.0/16",
    GatewayId = igw }, "RouteAlreadyExists")
  api:ReplaceRoute(route)
  assert_code(api, "DeleteRoute", { RouteTableId = rt, DestinationCidrBlock = "10.10.0.0/16" },
    "InvalidParameterValue", "cannot remove local route")
  assert_code(api, "DeleteRoute", { RouteTableId = rt, DestinationCidrBlock = "192.168.0.0/16" },
    "InvalidRoute.NotFound",
    ("no route with destination-cidr-block 192.168.0.0/16 in route table %s"):format(rt))
  assert_code(api, "CreateRoute", { RouteTableId = "rtb-0aa11bb22cc33dd44",
    DestinationCidrBlock = "0.0.0.0/0", GatewayId = igw }, "InvalidRouteTableID.NotFound")
  -- A detached gateway leaves a blackhole.
  local a = api:AssociateRouteTable{ RouteTableId = rt, SubnetId = s }.AssociationId
  assert_code(api, "AssociateRouteTable", { RouteTableId = rt, SubnetId = s },
    "Resource.AlreadyAssociated")
  assert_code(api, "AssociateRouteTable", { RouteTableId = rt, SubnetId = s2 },
    "InvalidParameterValue", "belong to different networks")
  api:DetachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  local routes = api:DescribeRouteTables{ RouteTableIds = { rt } }.RouteTables[1].Routes
  lu.assertEquals(routes[2].State, "blackhole")
  lu.assertEquals(#api:DescribeRouteTables{ Filters = {
    { Name = "route.state", Values = { "blackhole" } } } }.RouteTables, 1)
  api:DeleteRoute{ RouteTableId = rt, DestinationCidrBlock = "0.0.0.0/0" }
  assert_code(api, "DeleteRouteTable", { RouteTableId = rt }, "DependencyViolation",
    ("The routeTable '%s' has dependencies and cannot be deleted."):format(rt))
  -- Deleting the subnet removes its association.
  api:DeleteSubnet{ SubnetId = s }
  assert_code(api, "DisassociateRouteTable", { AssociationId = a }, "InvalidAssociationID.NotFound")
  api:DeleteRouteTable{ RouteTableId = rt }
  assert_code(api, "DescribeRouteTables", { RouteTableIds = { rt } }, "InvalidRouteTableID.NotFound")
end

-- CreateRouteTable's ClientToken (botocore 1.43's model; the 2022 model had none, so the
-- sim answered UnknownParameter): the same token with the same parameters answers the
-- table the first call made; with other parameters, IdempotentParameterMismatch.
function TestSimEc2.test_create_route_table_client_token_is_idempotent()
  local api = ec2_api(simlib.new{ seed = 5 })
  local vpc, vpc2 = new_vpc(api, "10.10.0.0/16"), new_vpc(api, "10.20.0.0/16")
  local first = api:CreateRouteTable{ VpcId = vpc, ClientToken = "rtb-token-1" }
  lu.assertEquals(first.ClientToken, "rtb-token-1")
  local again = api:CreateRouteTable{ VpcId = vpc, ClientToken = "rtb-token-1" }
  lu.assertEquals(again.RouteTable.RouteTableId, first.RouteTable.RouteTableId)
  assert_code(api, "CreateRouteTable", { VpcId = vpc2, ClientToken = "rtb-token-1" },
    "IdempotentParameterMismatch")
  local other = api:CreateRouteTable{ VpcId = vpc, ClientToken = "rtb-token-2" }
  lu.assertNotEquals(other.RouteTable.RouteTableId, first.RouteTable.RouteTableId)
  -- two tables besides the VPC's main one
  lu.assertEquals(#api:DescribeRouteTables{ Filters = {
    { Name = "vpc-id", Values = { vpc } } } }.RouteTables, 3)
end

function TestSimEc2.test_security_group_rules_and_errors()
  local api = ec2_api(simlib.new{ seed = 6 })
  local vpc = new_vpc(api)
  local g = api:CreateSecurityGroup{ GroupName = "web", Description = "web", VpcId = vpc }.GroupId
  assert_code(api, "CreateSecurityGroup", { GroupName = "WEB", Description = "x", VpcId = vpc },
    "InvalidGroup.Duplicate", "already exists for VPC")
  -- The recipe's naming pattern "sg-<name>" is refused by AWS: names cannot start with sg-.
  assert_code(api, "CreateSecurityGroup", { GroupName = "sg-alb-prod", Description = "x",
    VpcId = vpc }, "InvalidParameterValue", "sg-*")
  assert_code(api, "CreateSecurityGroup", { GroupName = "default", Description = "x",
    VpcId = vpc }, "InvalidParameterValue")
  assert_code(api, "CreateSecurityGroup", { GroupName = "x", Description = "x",
    VpcId = "vpc-0a1b2c3d4e5f60718" }, "InvalidVpcID.NotFound")
  local perm = { IpProtocol = "tcp", FromPort = 80, ToPort = 80,
    IpRanges = { { CidrIp = "0.0.0.0/0" } } }
  api:AuthorizeSecurityGroupIngress{ GroupId = g, IpPermissions = { perm } }
  local e = assert_code(api, "AuthorizeSecurityGroupIngress", { GroupId = g,
    IpPermissions = { perm } }, "InvalidPermission.Duplicate")
  lu.assertStrContains(e.message, "peer: 0.0.0.0/0, TCP, from port: 80, to port: 80, ALLOW")
  -- A duplicate anywhere in the call refuses all of it.
  assert_code(api, "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 81, ToPort = 81, IpRanges = { { CidrIp = "10.0.0.0/8" } } },
    perm } }, "InvalidPermission.Duplicate")
  lu.assertEquals(#api:DescribeSecurityGroupRules{ Filters = {
    { Name = "group-id", Values = { g } } } }.SecurityGroupRules, 2)
  -- Protocol numbers are stored by name; TCP needs ports.
  api:AuthorizeSecurityGroupIngress{ GroupId = g, IpPermissions = { { IpProtocol = "6",
    FromPort = 443, ToPort = 443, IpRanges = { { CidrIp = "10.0.0.0/8" } } } } }
  assert_code(api, "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = {
    { IpProtocol = "tcp", IpRanges = { { CidrIp = "10.0.0.0/8" } } } } }, "InvalidParameterValue")
  assert_code(api, "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 1, ToPort = 2, IpRanges = { { CidrIp = "10.0.0/8" } } } } },
    "InvalidParameterValue", "malformed")
  assert_code(api, "AuthorizeSecurityGroupIngress", { GroupId = g, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 1, ToPort = 2, UserIdGroupPairs = {
      { GroupId = "sg-0fedcba9876543210" } } } } }, "InvalidGroup.NotFound")
  local tcp = api:DescribeSecurityGroups{ GroupIds = { g } }.SecurityGroups[1].IpPermissions
  lu.assertEquals(tcp[2].IpProtocol, "tcp")
  lu.assertEquals(tcp[2].FromPort, 443)
  -- Revoke: unknown rule → NotFound; partly known → the known ones go, the rest reported.
  assert_code(api, "RevokeSecurityGroupIngress", { GroupId = g, IpPermissions = {
    { IpProtocol = "tcp", FromPort = 22, ToPort = 22, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } },
    "InvalidPermission.NotFound", "The specified rule does not exist in this security group")
  local r = api:RevokeSecurityGroupIngress{ GroupId = g, IpPermissions = { perm,
    { IpProtocol = "udp", FromPort = 53, ToPort = 53, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }
  lu.assertTrue(r.Return)
  lu.assertEquals(#r.UnknownIpPermissions, 1)
  lu.assertEquals(r.UnknownIpPermissions[1].IpProtocol, "udp")
  -- By rule id.
  local rules = api:DescribeSecurityGroupRules{ Filters = { { Name = "group-id", Values = { g } } } }
    .SecurityGroupRules
  local ingress
  for _, x in ipairs(rules) do if not x.IsEgress then ingress = x.SecurityGroupRuleId end end
  assert_code(api, "RevokeSecurityGroupEgress", { GroupId = g, SecurityGroupRuleIds = { ingress } },
    "InvalidSecurityGroupRuleId.NotFound")
  api:RevokeSecurityGroupIngress{ GroupId = g, SecurityGroupRuleIds = { ingress } }
  lu.assertEquals(api:DescribeSecurityGroups{ GroupIds = { g } }.SecurityGroups[1].IpPermissions, {})
  assert_code(api, "DescribeSecurityGroupRules", { SecurityGroupRuleIds = { ingress } },
    "InvalidSecurityGroupRuleId.NotFound")
  assert_code(api, "DescribeSecurityGroups", { GroupIds = { "sg-0123456789abcdef0" } },
    "InvalidGroup.NotFound", "The security group 'sg-0123456789abcdef0' does not exist")
  assert_code(api, "DeleteSecurityGroup", { GroupId = "sg-0123456789abcdef0" },
    "InvalidGroup.NotFound")
  assert_code(api, "AuthorizeSecurityGroupEgress", { GroupId = "sg-0123456789abcdef0",
    IpPermissions = { perm } }, "InvalidGroup.NotFound")
  -- Egress rule all traffic answered without ports.
  local eg = api:DescribeSecurityGroups{ GroupIds = { g } }.SecurityGroups[1].IpPermissionsEgress
  lu.assertEquals(eg, { { IpProtocol = "-1", IpRanges = { { CidrIp = "0.0.0.0/0" } },
    Ipv6Ranges = {}, PrefixListIds = {}, UserIdGroupPairs = {} } })
  api:DeleteSecurityGroup{ GroupId = g }
end

function TestSimEc2.test_tags()
  local api = ec2_api(simlib.new{ seed = 7 })
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.0/16",
    TagSpecifications = spec("subnet", { Name = "x" }) }, "InvalidParameterValue",
    "'subnet' is not a valid taggable resource type for this operation.")
  assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.0/16",
    TagSpecifications = spec("vpc", { ["aws:owner"] = "x" }) }, "InvalidParameterValue", "aws:")
  lu.assertEquals(api:DescribeVpcs{ Filters = { OWN_VPCS } }.Vpcs, {}) -- nothing was created by the refused calls
  local vpc = new_vpc(api, "10.0.0.0/16", "a")
  local s = new_subnet(api, vpc, "10.0.1.0/24")
  api:CreateTags{ Resources = { vpc, s }, Tags = { { Key = "Environment", Value = "Production" },
    { Key = "FailoverRole", Value = "Primary" }, { Key = "Owner", Value = "ops" },
    { Key = "Obsolete" } } }
  local v = api:DescribeVpcs{ VpcIds = { vpc } }.Vpcs[1]
  lu.assertEquals(tag_of(v, "Name"), "a")
  lu.assertEquals(tag_of(v, "Environment"), "Production")
  lu.assertEquals(tag_of(v, "Obsolete"), "")
  -- DeleteTags: without a value any value; with a value only that one.
  api:DeleteTags{ Resources = { vpc }, Tags = { { Key = "Obsolete" },
    { Key = "Owner", Value = "someone-else" }, { Key = "FailoverRole", Value = "Primary" } } }
  v = api:DescribeVpcs{ VpcIds = { vpc } }.Vpcs[1]
  lu.assertNil(tag_of(v, "Obsolete"))
  lu.assertNil(tag_of(v, "FailoverRole"))
  lu.assertEquals(tag_of(v, "Owner"), "ops")
  lu.assertEquals(#api:DescribeVpcs{ Filters = { { Name = "tag:Environment",
    Values = { "Production" } } } }.Vpcs, 1)
  lu.assertEquals(#api:DescribeVpcs{ Filters = { { Name = "tag-value", Values = { "op?" } } } }
    .Vpcs, 1)
  local t = api:DescribeTags{ Filters = { { Name = "resource-type", Values = { "subnet" } } } }.Tags
  lu.assertEquals(#t, 4)
  lu.assertEquals(t[1].ResourceId, s)
  lu.assertEquals(#api:DescribeTags{ Filters = { { Name = "resource-id", Values = { vpc } },
    { Name = "key", Values = { "Name" } } } }.Tags, 1)
  -- Unknown resources: the kind's NotFound; an id of no known kind: InvalidID; nothing
  -- is tagged when one resource is wrong.
  assert_code(api, "CreateTags", { Resources = { s, "vpc-0a1b2c3d4e5f60718" },
    Tags = { { Key = "x", Value = "y" } } }, "InvalidVpcID.NotFound")
  lu.assertNil(tag_of(api:DescribeSubnets{ SubnetIds = { s } }.Subnets[1], "x"))
  assert_code(api, "CreateTags", { Resources = { "foo-123" }, Tags = { { Key = "x" } } }, "InvalidID")
  assert_code(api, "CreateTags", { Resources = { vpc }, Tags = { { Key = "aws:x", Value = "y" } } },
    "InvalidParameterValue")
  local many = {}
  for i = 1, 51 do many[i] = { Key = "k" .. i, Value = "v" } end
  assert_code(api, "CreateTags", { Resources = { s }, Tags = many }, "TagLimitExceeded")
  -- Paging DescribeTags.
  local page = api:DescribeTags{ MaxResults = 5 }
  lu.assertEquals(#page.Tags, 5)
  lu.assertNotNil(page.NextToken)
end

function TestSimEc2.test_eventual_consistency_window()
  local sim = simlib.new{ seed = 8, consistency_ms = 2000 }
  local api = ec2_api(sim)
  local vpc = new_vpc(api)
  assert_code(api, "DescribeVpcs", { VpcIds = { vpc } }, "InvalidVpcID.NotFound")
  lu.assertEquals(api:DescribeVpcs{ Filters = { OWN_VPCS } }.Vpcs, {})
  -- The resource exists: mutations and dependent creates work.
  api:ModifyVpcAttribute{ VpcId = vpc, EnableDnsHostnames = { Value = true } }
  local s = new_subnet(api, vpc, "10.10.1.0/24")
  assert_code(api, "DescribeSubnets", { SubnetIds = { s } }, "InvalidSubnetID.NotFound")
  local g = api:CreateSecurityGroup{ GroupName = "g", Description = "g", VpcId = vpc }.GroupId
  assert_code(api, "DescribeSecurityGroups", { GroupIds = { g } }, "InvalidGroup.NotFound")
  sim:advance(2.5)
  lu.assertEquals(api:DescribeVpcs{ VpcIds = { vpc } }.Vpcs[1].VpcId, vpc)
  lu.assertEquals(#api:DescribeSubnets{ SubnetIds = { s } }.Subnets, 1)
  lu.assertEquals(#api:DescribeSecurityGroups{ GroupIds = { g } }.SecurityGroups, 1)
end

function TestSimEc2.test_pagination()
  local api = ec2_api(simlib.new{ seed = 9 })
  local vpc = new_vpc(api)
  local made = {}
  for i = 1, 7 do made[i] = new_subnet(api, vpc, ("10.10.%d.0/24"):format(i)) end
  local in_vpc = { { Name = "vpc-id", Values = { vpc } } }
  local p1 = api:DescribeSubnets{ MaxResults = 5, Filters = in_vpc }
  lu.assertEquals(#p1.Subnets, 5)
  lu.assertNotNil(p1.NextToken)
  local p2 = api:DescribeSubnets{ MaxResults = 5, NextToken = p1.NextToken, Filters = in_vpc }
  lu.assertEquals(#p2.Subnets, 2)
  lu.assertNil(p2.NextToken)
  local all = {}
  for _, s in ipairs(p1.Subnets) do all[#all + 1] = s.SubnetId end
  for _, s in ipairs(p2.Subnets) do all[#all + 1] = s.SubnetId end
  lu.assertEquals(all, made) -- creation order, no repeats
  assert_code(api, "DescribeSubnets", { MaxResults = 5, NextToken = "bogus" },
    "InvalidPaginationToken")
  -- A token of another operation is refused too.
  assert_code(api, "DescribeVpcs", { MaxResults = 5, NextToken = p1.NextToken },
    "InvalidPaginationToken")
end

function TestSimEc2.test_dry_run()
  local sim = simlib.new{ seed = 10 }
  local api = ec2_api(sim)
  local e = assert_code(api, "CreateVpc", { CidrBlock = "10.0.0.0/16", DryRun = true },
    "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
  lu.assertEquals(e.status, 412)
  lu.assertEquals(api:DescribeVpcs{ Filters = { OWN_VPCS } }.Vpcs, {})
  assert_code(api, "DescribeVpcs", { DryRun = true }, "DryRunOperation")
end

function TestSimEc2.test_launch_template_rules()
  local api = ec2_api(simlib.new{ seed = 11 })
  local p = { LaunchTemplateName = "lt-app", LaunchTemplateData = LT_DATA, ClientToken = "tok-1" }
  local lt = api:CreateLaunchTemplate(p).LaunchTemplate
  -- The same ClientToken and parameters: the same template; other parameters: mismatch.
  lu.assertEquals(api:CreateLaunchTemplate(p).LaunchTemplate.LaunchTemplateId, lt.LaunchTemplateId)
  assert_code(api, "CreateLaunchTemplate", { LaunchTemplateName = "lt-other",
    LaunchTemplateData = LT_DATA, ClientToken = "tok-1" }, "IdempotentParameterMismatch")
  assert_code(api, "CreateLaunchTemplate", { LaunchTemplateName = "lt-app",
    LaunchTemplateData = LT_DATA }, "InvalidLaunchTemplateName.AlreadyExistsException",
    "Launch template name already in use.")
  assert_code(api, "CreateLaunchTemplate", { LaunchTemplateName = "lt app!",
    LaunchTemplateData = LT_DATA }, "InvalidLaunchTemplateName.MalformedException")
  assert_code(api, "CreateLaunchTemplate", { LaunchTemplateName = "lt-bad-ud",
    LaunchTemplateData = { UserData = "not base64!" } }, "InvalidUserData.Malformed")
  assert_code(api, "DescribeLaunchTemplates", { LaunchTemplateNames = { "nope" } },
    "InvalidLaunchTemplateName.NotFoundException")
  assert_code(api, "DescribeLaunchTemplates", { LaunchTemplateIds = { "lt-0123456789abcdef0" } },
    "InvalidLaunchTemplateId.NotFound")
  assert_code(api, "DescribeLaunchTemplateVersions", { LaunchTemplateId = lt.LaunchTemplateId,
    Versions = { "7" } }, "InvalidLaunchTemplateId.VersionNotFound")
  assert_code(api, "DescribeLaunchTemplateVersions", { LaunchTemplateName = "nope",
    Versions = { "$Latest" } }, "InvalidLaunchTemplateName.NotFoundException")
  assert_code(api, "ModifyLaunchTemplate", { LaunchTemplateId = lt.LaunchTemplateId,
    DefaultVersion = "2" }, "InvalidLaunchTemplateId.VersionNotFound")
  assert_code(api, "CreateLaunchTemplateVersion", { LaunchTemplateName = "nope",
    LaunchTemplateData = { InstanceType = "t3.micro" } }, "InvalidLaunchTemplateName.NotFoundException")
  assert_code(api, "DeleteLaunchTemplate", { LaunchTemplateId = "lt-0123456789abcdef0" },
    "InvalidLaunchTemplateId.NotFound")
  -- By name; without SourceVersion a version holds only the data given.
  local v = api:CreateLaunchTemplateVersion{ LaunchTemplateName = "lt-app",
    LaunchTemplateData = { InstanceType = "t3.large" } }.LaunchTemplateVersion
  lu.assertEquals(v.VersionNumber, 2)
  lu.assertEquals(v.LaunchTemplateData, { InstanceType = "t3.large" })
  local latest = api:DescribeLaunchTemplateVersions{ LaunchTemplateName = "lt-app",
    Versions = { "$Latest" } }.LaunchTemplateVersions
  lu.assertEquals(#latest, 1)
  lu.assertEquals(latest[1].VersionNumber, 2)
  lu.assertFalse(latest[1].DefaultVersion)
  lu.assertEquals(#api:DescribeLaunchTemplateVersions{ LaunchTemplateName = "lt-app",
    Filters = { { Name = "http-tokens", Values = { "required" } } } }.LaunchTemplateVersions, 1)
  local d = api:DeleteLaunchTemplate{ LaunchTemplateName = "lt-app" }.LaunchTemplate
  lu.assertEquals(d.LaunchTemplateId, lt.LaunchTemplateId)
  assert_code(api, "DescribeLaunchTemplates", { LaunchTemplateNames = { "lt-app" } },
    "InvalidLaunchTemplateName.NotFoundException")
end

function TestSimEc2.test_vpc_endpoints()
  local api = ec2_api(simlib.new{ seed = 12 })
  local vpc = new_vpc(api)
  local rt1 = api:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  local rt2 = api:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  assert_code(api, "CreateVpcEndpoint", { VpcId = vpc,
    ServiceName = "com.amazonaws.eu-central-1.dynamodb" }, "InvalidServiceName")
  assert_code(api, "CreateVpcEndpoint", { VpcId = vpc, ServiceName = "com.amazonaws.eu-south-1.s3",
    RouteTableIds = { "rtb-0aa11bb22cc33dd44" } }, "InvalidRouteTableID.NotFound")
  local e = api:CreateVpcEndpoint{ VpcId = vpc, ServiceName = "com.amazonaws.eu-south-1.dynamodb",
    RouteTableIds = { rt1 } }.VpcEndpoint
  lu.assertEquals(e.VpcEndpointType, "Gateway") -- the default type
  -- A second DynamoDB endpoint cannot route the same table to the same prefix list.
  assert_code(api, "CreateVpcEndpoint", { VpcId = vpc,
    ServiceName = "com.amazonaws.eu-south-1.dynamodb", RouteTableIds = { rt1 } },
    "RouteAlreadyExists")
  api:ModifyVpcEndpoint{ VpcEndpointId = e.VpcEndpointId, AddRouteTableIds = { rt2 },
    RemoveRouteTableIds = { rt1 }, PolicyDocument = '{"Statement":[]}' }
  local d = api:DescribeVpcEndpoints{ VpcEndpointIds = { e.VpcEndpointId } }.VpcEndpoints[1]
  lu.assertEquals(d.RouteTableIds, { rt2 })
  lu.assertEquals(d.PolicyDocument, '{"Statement":[]}')
  lu.assertEquals(#api:DescribeRouteTables{ RouteTableIds = { rt1 } }.RouteTables[1].Routes, 1)
  lu.assertEquals(#api:DescribeRouteTables{ RouteTableIds = { rt2 } }.RouteTables[1].Routes, 2)
  -- Endpoint routes belong to the endpoint.
  local pl = api:DescribeRouteTables{ RouteTableIds = { rt2 } }.RouteTables[1].Routes[2]
    .DestinationPrefixListId
  assert_code(api, "DeleteRoute", { RouteTableId = rt2, DestinationPrefixListId = pl },
    "InvalidParameterValue")
  api:ModifyVpcEndpoint{ VpcEndpointId = e.VpcEndpointId, ResetPolicy = true }
  lu.assertStrContains(api:DescribeVpcEndpoints{ VpcEndpointIds = { e.VpcEndpointId } }
    .VpcEndpoints[1].PolicyDocument, '"Action":"*"')
  assert_code(api, "DescribeVpcEndpoints", { VpcEndpointIds = { "vpce-0123456789abcdef0" } },
    "InvalidVpcEndpointId.NotFound")
  assert_code(api, "ModifyVpcEndpoint", { VpcEndpointId = "vpce-0123456789abcdef0",
    ResetPolicy = true }, "InvalidVpcEndpointId.NotFound")
  assert_code(api, "DeleteVpc", { VpcId = vpc }, "DependencyViolation")
  local out = api:DeleteVpcEndpoints{ VpcEndpointIds = { e.VpcEndpointId, "vpce-0123456789abcdef0" } }
  lu.assertEquals(#out.Unsuccessful, 1)
  lu.assertEquals(out.Unsuccessful[1].ResourceId, "vpce-0123456789abcdef0")
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "InvalidVpcEndpointId.NotFound")
  lu.assertEquals(#api:DescribeRouteTables{ RouteTableIds = { rt2 } }.RouteTables[1].Routes, 1)
  -- Interface endpoints: one subnet per AZ, private DNS needs the VPC's DNS hostnames.
  local s1 = new_subnet(api, vpc, "10.10.1.0/24", "eu-south-1a")
  local s2 = new_subnet(api, vpc, "10.10.2.0/24", "eu-south-1a")
  assert_code(api, "CreateVpcEndpoint", { VpcId = vpc, VpcEndpointType = "Interface",
    ServiceName = "com.amazonaws.eu-south-1.ssm", SubnetIds = { s1 } }, "InvalidParameter",
    "enableDnsHostnames")
  assert_code(api, "CreateVpcEndpoint", { VpcId = vpc, VpcEndpointType = "Interface",
    ServiceName = "com.amazonaws.eu-south-1.ssm", SubnetIds = { s1, s2 },
    PrivateDnsEnabled = false }, "DuplicateSubnetsInSameZone")
  local i = api:CreateVpcEndpoint{ VpcId = vpc, VpcEndpointType = "Interface",
    ServiceName = "com.amazonaws.eu-south-1.ssm", SubnetIds = { s1 }, PrivateDnsEnabled = false }
    .VpcEndpoint
  lu.assertEquals(#i.NetworkInterfaceIds, 1)
  lu.assertEquals(#i.Groups, 1) -- the VPC's default group
  -- adding a group the endpoint has already changes nothing (a retried or rolled-back
  -- ModifyVpcEndpoint must not list it twice)
  api:ModifyVpcEndpoint{ VpcEndpointId = i.VpcEndpointId, AddSecurityGroupIds = { i.Groups[1].GroupId } }
  lu.assertEquals(api:DescribeVpcEndpoints{ VpcEndpointIds = { i.VpcEndpointId } }.VpcEndpoints[1].Groups,
    i.Groups)
  lu.assertEquals(api:DescribeSubnets{ SubnetIds = { s1 } }.Subnets[1].AvailableIpAddressCount, 250)
  assert_code(api, "DeleteSubnet", { SubnetId = s1 }, "DependencyViolation")
  api:DeleteVpcEndpoints{ VpcEndpointIds = { i.VpcEndpointId } }
  api:DeleteSubnet{ SubnetId = s1 }
end

function TestSimEc2.test_prefix_lists_of_gateway_services()
  local api = ec2_api(simlib.new{ seed = 13 })
  local lists = api:DescribePrefixLists{}.PrefixLists
  lu.assertEquals(#lists, 2)
  local ddb = api:DescribePrefixLists{ Filters = { { Name = "prefix-list-name",
    Values = { "com.amazonaws.eu-south-1.dynamodb" } } } }.PrefixLists
  lu.assertEquals(#ddb, 1)
  lu.assertStrMatches(ddb[1].PrefixListId, "pl%-%x+")
  lu.assertEquals(#ddb[1].Cidrs, 2)
  -- the list a DynamoDB gateway endpoint routes to
  local vpc = new_vpc(api)
  local rt = api:CreateRouteTable{ VpcId = vpc }.RouteTable.RouteTableId
  api:CreateVpcEndpoint{ VpcId = vpc, ServiceName = "com.amazonaws.eu-south-1.dynamodb",
    RouteTableIds = { rt } }
  lu.assertEquals(api:DescribeRouteTables{ RouteTableIds = { rt } }.RouteTables[1].Routes[2]
    .DestinationPrefixListId, ddb[1].PrefixListId)
  lu.assertEquals(api:DescribePrefixLists{ PrefixListIds = { ddb[1].PrefixListId } }
    .PrefixLists[1].PrefixListName, "com.amazonaws.eu-south-1.dynamodb")
  assert_code(api, "DescribePrefixLists", { PrefixListIds = { "pl-00000000" } },
    "InvalidPrefixListID.NotFound")
  -- another region has its own ids
  local other = ec2_api(simlib.new{ seed = 13 }, "eu-central-1"):DescribePrefixLists{ Filters = {
    { Name = "prefix-list-name", Values = { "com.amazonaws.eu-central-1.dynamodb" } } } }
  lu.assertNotEquals(other.PrefixLists[1].PrefixListId, ddb[1].PrefixListId)
end

---------------------------------------------------------------------------------------
-- With the other simulated services: load balancers and Auto Scaling instances hold
-- ENIs in subnets and use security groups.

function TestSimEc2.test_dependencies_on_load_balancers_and_instances()
  local sim = simlib.new{ seed = 13 }
  local api = ec2_api(sim)
  local vpc = new_vpc(api)
  local pub_a = new_subnet(api, vpc, "10.10.1.0/24", "eu-south-1a")
  local pub_b = new_subnet(api, vpc, "10.10.2.0/24", "eu-south-1b")
  local priv_a = new_subnet(api, vpc, "10.10.11.0/24", "eu-south-1a")
  local priv_b = new_subnet(api, vpc, "10.10.12.0/24", "eu-south-1b")
  local igw = api:CreateInternetGateway{}.InternetGateway.InternetGatewayId
  api:AttachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  local alb_sg = api:CreateSecurityGroup{ GroupName = "alb", Description = "alb", VpcId = vpc }
    .GroupId
  local app_sg = api:CreateSecurityGroup{ GroupName = "app", Description = "app", VpcId = vpc }
    .GroupId
  local lb = sim:invoke("elbv2", REGION, "CreateLoadBalancer", { Name = "alb-trading-prod",
    Subnets = { pub_a, pub_b }, SecurityGroups = { alb_sg }, Scheme = "internet-facing",
    Type = "application" }).LoadBalancers[1]
  assert_code(api, "DeleteSubnet", { SubnetId = pub_a }, "DependencyViolation",
    ("The subnet '%s' has dependencies and cannot be deleted."):format(pub_a))
  assert_code(api, "DeleteSecurityGroup", { GroupId = alb_sg }, "DependencyViolation")
  assert_code(api, "DetachInternetGateway", { InternetGatewayId = igw, VpcId = vpc },
    "DependencyViolation", "mapped public address")
  lu.assertEquals(api:DescribeSubnets{ SubnetIds = { pub_a } }.Subnets[1].AvailableIpAddressCount,
    250)

  local data = { ImageId = "ami-0abcdef1234567890", InstanceType = "t3.medium",
    SecurityGroupIds = { app_sg }, MetadataOptions = { HttpTokens = "required" } }
  local lt = api:CreateLaunchTemplate{ LaunchTemplateName = "lt-app", LaunchTemplateData = data }
    .LaunchTemplate
  sim:invoke("autoscaling", REGION, "CreateAutoScalingGroup", { AutoScalingGroupName = "asg-app",
    MinSize = 2, MaxSize = 4, DesiredCapacity = 2,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplateId, Version = "$Latest" },
    VPCZoneIdentifier = priv_a .. "," .. priv_b,
    Tags = { { Key = "FailoverRole", Value = "Primary", PropagateAtLaunch = true } } })
  local res = api:DescribeInstances{ Filters = {
    { Name = "tag:aws:autoscaling:groupName", Values = { "asg-app" } },
    { Name = "instance-state-name", Values = { "pending", "running" } } }, MaxResults = 50 }
    .Reservations
  lu.assertEquals(#res, 2)
  local azs = {}
  for _, r in ipairs(res) do
    lu.assertStrMatches(r.ReservationId, "r%-" .. ID17)
    local inst = r.Instances[1]
    lu.assertStrMatches(inst.InstanceId, "i%-" .. ID17)
    lu.assertEquals(inst.ImageId, "ami-0abcdef1234567890")
    lu.assertEquals(inst.InstanceType, "t3.medium")
    lu.assertEquals(inst.VpcId, vpc)
    lu.assertEquals(inst.MetadataOptions.HttpTokens, "required")
    lu.assertEquals(inst.SecurityGroups[1].GroupId, app_sg)
    lu.assertEquals(tag_of(inst, "FailoverRole"), "Primary")
    azs[#azs + 1] = inst.Placement.AvailabilityZone
  end
  lu.assertEquals(sorted(azs), { "eu-south-1a", "eu-south-1b" })
  local one = res[1].Instances[1].InstanceId
  lu.assertEquals(#api:DescribeInstances{ InstanceIds = { one } }.Reservations, 1)
  assert_code(api, "DescribeInstances", { InstanceIds = { "i-0123456789abcdef0" } },
    "InvalidInstanceID.NotFound")
  -- Tags set through EC2 on an instance.
  api:CreateTags{ Resources = { one }, Tags = { { Key = "Drill", Value = "yes" } } }
  lu.assertEquals(tag_of(api:DescribeInstances{ InstanceIds = { one } }.Reservations[1]
    .Instances[1], "Drill"), "yes")
  lu.assertEquals(#api:DescribeTags{ Filters = { { Name = "resource-type",
    Values = { "instance" } }, { Name = "key", Values = { "Drill" } } } }.Tags, 1)

  -- The instances' ENIs and groups keep the subnets and the app group in use.
  local s = api:DescribeSubnets{ SubnetIds = { priv_a } }.Subnets[1]
  lu.assertEquals(s.AvailableIpAddressCount, 250)
  assert_code(api, "DeleteSubnet", { SubnetId = priv_a }, "DependencyViolation")
  assert_code(api, "DeleteSecurityGroup", { GroupId = app_sg }, "DependencyViolation")

  -- Gone: the group (forced) and the load balancer; then the subnets can go.
  sim:invoke("autoscaling", REGION, "DeleteAutoScalingGroup", { AutoScalingGroupName = "asg-app",
    ForceDelete = true })
  sim:invoke("elbv2", REGION, "DeleteLoadBalancer", { LoadBalancerArn = lb.LoadBalancerArn })
  -- A deleted load balancer's ENIs detach a little later (AWS: minutes): retry.
  assert_code(api, "DeleteSubnet", { SubnetId = pub_a }, "DependencyViolation")
  sim:advance(60)
  local states = {}
  for _, r in ipairs(api:DescribeInstances{}.Reservations) do
    states[#states + 1] = r.Instances[1].State.Name
  end
  lu.assertEquals(states, { "terminated", "terminated" }) -- still listed for a while
  for _, id in ipairs{ pub_a, pub_b, priv_a, priv_b } do api:DeleteSubnet{ SubnetId = id } end
  api:DeleteSecurityGroup{ GroupId = app_sg }
  api:DeleteSecurityGroup{ GroupId = alb_sg }
  api:DetachInternetGateway{ InternetGatewayId = igw, VpcId = vpc }
  api:DeleteInternetGateway{ InternetGatewayId = igw }
  api:DeleteVpc{ VpcId = vpc }
end

function TestSimEc2.test_state_survives_save_and_reload()
  local dir = os.tmpname()
  os.remove(dir)
  local file = dir .. ".sim.json"
  local sim = simlib.new{ seed = 14, file = file }
  local api = ec2_api(sim)
  local vpc = new_vpc(api)
  local lt = api:CreateLaunchTemplate{ LaunchTemplateName = "lt-app", LaunchTemplateData = LT_DATA }
    .LaunchTemplate.LaunchTemplateId
  local sim2 = simlib.new{ file = file }
  local api2 = ec2_api(sim2)
  lu.assertEquals(api2:DescribeVpcs{ VpcIds = { vpc } }.Vpcs[1].VpcId, vpc)
  local v = api2:DescribeLaunchTemplateVersions{ LaunchTemplateId = lt }.LaunchTemplateVersions[1]
  lu.assertEquals(v.LaunchTemplateData.BlockDeviceMappings[1].Ebs.VolumeSize, 20)
  lu.assertEquals(math.type(v.LaunchTemplateData.BlockDeviceMappings[1].Ebs.VolumeSize), "integer")
  lu.assertEquals(#api2:DescribeSecurityGroups{ Filters = { { Name = "vpc-id", Values = { vpc } } } }
    .SecurityGroups, 1)
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
end

os.exit(lu.LuaUnit.run())
