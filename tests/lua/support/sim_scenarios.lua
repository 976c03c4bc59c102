-- The failover stack's resource kinds as scenarios — create → describe (values checked
-- through JMESPath) → delete → gone — shared by two proofs of issue 4:
--   tests/lua/sim/test_awscli.lua        the AWS CLI against the served simulator
--                                        (checks are the CLI's --query);
--   tests/lua/sim/test_sim_scenarios.lua fo's own clients in-process (checks through
--                                        fo.aws.jmespath on the client's output).
-- A scenario is data: steps of {service, Operation, params} with checks, saved values,
-- expected error codes and waiters. `M.run(scenario, runner, ctx)` executes it with a
-- runner (the CLI's or fo's) that turns one step into one call.
--
-- Step fields:
--   [1] service (fo's module name), [2] operation (or waiter name when `wait`), [3] params
--   check  = { {jmespath, expected}, ... }  expected: a value (deep equality; "${x}"
--            substituted), M.match(lua_pattern), M.present
--   save   = { name = jmespath }             values for later "${name}"
--   error  = "Code"                          the call must fail with this code
--   message = "plain text"                   ... and its message contain this
--   wait   = true                            [2] is a waiter of the service's model
--   poll   = seconds                         repeat the call until its checks pass
--   always = true                            cleanup: runs even after a failed step
--   async  = "name"                          runs in its own task; {join = "name"} waits
--   region = "..."                           another region than the scenario's
--   page_size = n                            read every page, n items a page (the CLI's
--                                            --page-size; fo's client:paginate), merged
-- Strings in params, checks and regions may hold "${name}": saved values and the context
-- (region, other = the next region, az1, az2, azid1, azid2, n = 1..3, al2 = SSM path).
local M = {}

M.REGIONS = { "eu-south-1", "eu-central-1", "us-east-1" }
M.VPC_QUOTA = 5
M.ACCOUNT = "123456789012"
M.AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

-- AZ ids of the first two zones (lua/fo/sim/regions.lua, docs/simulator.md) and ALB
-- hosted zone ids as AWS publishes them ("Elastic Load Balancing endpoints and quotas").
local AZ_IDS = {
  ["eu-south-1"] = { "eus1-az1", "eus1-az2" },
  ["eu-central-1"] = { "euc1-az2", "euc1-az3" },
  ["us-east-1"] = { "use1-az1", "use1-az2" },
}
M.ALB_ZONE = { ["eu-south-1"] = "Z3ULH7SSC9OV64", ["eu-central-1"] = "Z215JYRZR1TBD5",
  ["us-east-1"] = "Z35SXDOTRQ7X7K" }

local MATCH, PRESENT = {}, {}
function M.match(pattern) return setmetatable({ pattern = pattern }, MATCH) end
M.present = setmetatable({}, PRESENT)

--- The context of a scenario run in `region` (index n of M.REGIONS).
function M.context(region)
  local n
  for i, r in ipairs(M.REGIONS) do if r == region then n = i end end
  return { region = region, n = n, other = M.REGIONS[n % #M.REGIONS + 1],
    az1 = region .. "a", az2 = region .. "b", azid1 = AZ_IDS[region][1],
    azid2 = AZ_IDS[region][2], al2 = M.AL2, account = M.ACCOUNT,
    alb_zone = M.ALB_ZONE[region] }
end

local function S(svc, op, params, opts)
  local s = opts or {}
  s[1], s[2], s[3] = svc, op, params or {}
  return s
end

local TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
  .. '{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
local POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":'
  .. '["dynamodb:GetItem","dynamodb:PutItem"],"Resource":"*"}]}'

-- Building blocks --------------------------------------------------------------------

-- A VPC (saved as `vpc`) with its Name tag.
local function vpc(cidr, name)
  return S("ec2", "CreateVpc", { CidrBlock = cidr, TagSpecifications = { { ResourceType = "vpc",
    Tags = { { Key = "Name", Value = name } } } } }, { save = { vpc = "Vpc.VpcId" } })
end

local function delete_vpc()
  return S("ec2", "DeleteVpc", { VpcId = "${vpc}" }, { always = true })
end

-- The public network an ALB needs: VPC 10.<o>.0.0/16, an attached internet gateway, two
-- subnets in the first two AZs (saved sub1, sub2), a security group (sg) open on 80.
local function network(o, name)
  return {
    vpc(("10.%d.0.0/16"):format(o), name),
    S("ec2", "CreateInternetGateway", {}, { save = { igw = "InternetGateway.InternetGatewayId" } }),
    S("ec2", "AttachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = ("10.%d.1.0/24"):format(o),
      AvailabilityZone = "${az1}" }, { save = { sub1 = "Subnet.SubnetId" } }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = ("10.%d.2.0/24"):format(o),
      AvailabilityZone = "${az2}" }, { save = { sub2 = "Subnet.SubnetId" } }),
    S("ec2", "CreateSecurityGroup", { GroupName = name .. "-alb", Description = "ALB",
      VpcId = "${vpc}" }, { save = { sg = "GroupId" } }),
    S("ec2", "AuthorizeSecurityGroupIngress", { GroupId = "${sg}", IpPermissions = { {
      IpProtocol = "tcp", FromPort = 80, ToPort = 80, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }),
  }
end

-- After a load balancer's deletion its network interfaces linger a few seconds (AWS:
-- minutes), and an Auto Scaling group's instances take a moment to terminate: the
-- security group and subnets answer DependencyViolation meanwhile, and clients retry, as
-- these steps do (poll).
local function teardown_network()
  return {
    S("ec2", "DeleteSecurityGroup", { GroupId = "${sg}" }, { always = true, poll = 20 }),
    S("ec2", "DeleteSubnet", { SubnetId = "${sub1}" }, { always = true, poll = 20 }),
    S("ec2", "DeleteSubnet", { SubnetId = "${sub2}" }, { always = true, poll = 20 }),
    S("ec2", "DetachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }, { always = true }),
    S("ec2", "DeleteInternetGateway", { InternetGatewayId = "${igw}" }, { always = true }),
    S("ec2", "DeleteVpc", { VpcId = "${vpc}" }, { always = true }),
    S("ec2", "DescribeVpcs", { VpcIds = { "${vpc}" } }, { error = "InvalidVpcID.NotFound" }),
  }
end

--- The network the load balancer, listener, Auto Scaling and Route 53 scenarios share in
--- each region (scenarios with `fixture = true`): built before them, torn down after them.
--- Its ids are variables of those scenarios: vpc, igw, sub1, sub2, sg for the scenario's
--- region, and "sub1@eu-central-1" etc. for every region.
M.fixture = {
  vars = { "vpc", "igw", "sub1", "sub2", "sg" },
  build = function() return network(30, "scn-net") end,
  teardown = function() return teardown_network() end,
}

local function concat(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    for _, s in ipairs(list) do out[#out + 1] = s end
  end
  return out
end

-- An internet-facing ALB in the network's two subnets; `region`: another region's network
-- (its fixture variables, "${sub1@eu-south-1}").
local function load_balancer(name, region)
  local at = region and ("@" .. region) or ""
  return S("elbv2", "CreateLoadBalancer", { Name = name, Subnets = { "${sub1" .. at .. "}",
    "${sub2" .. at .. "}" }, SecurityGroups = { "${sg" .. at .. "}" }, Scheme = "internet-facing", Type = "application",
    IpAddressType = "ipv4" }, { region = region, save = { lb = "LoadBalancers[0].LoadBalancerArn",
      lb_dns = "LoadBalancers[0].DNSName", lb_zone = "LoadBalancers[0].CanonicalHostedZoneId" } })
end

-- Scenarios ---------------------------------------------------------------------------
-- name: the test's name after "test_"; global: run once (IAM, Route 53), else per region;
-- fixture: uses the shared network (M.fixture); vpc: creates a VPC of its own (AWS's
-- default quota is 5 VPCs per region, which the sim enforces: VpcLimitExceeded, so at
-- most M.VPC_QUOTA - 2 of these run at once in a region, beside the default VPC and the
-- shared network);
-- priority: a runner with a limit on calls in flight serves lower numbers first
-- (default 10): scenarios with long waits ahead.

M.scenarios = {}
local function scenario(name, opts, build)
  opts.name, opts.build = name, build
  M.scenarios[#M.scenarios + 1] = opts
  M.scenarios[name] = opts
end

scenario("sts_get_caller_identity", {}, function()
  return {
    S("sts", "GetCallerIdentity", {}, { check = { { "Account", "${account}" },
      { "Arn", "arn:aws:iam::${account}:user/fo-sim" }, { "UserId", "AIDAFOSIMULATOR000001" } } }),
  }
end)

scenario("ssm_get_parameter_al2_ami", {}, function()
  return {
    S("ssm", "GetParameter", { Name = "${al2}" }, { check = {
      { "Parameter.Name", "${al2}" }, { "Parameter.Type", "String" },
      { "Parameter.DataType", "text" }, { "Parameter.Value", M.match("^ami%-" .. ("%x"):rep(17) .. "$") },
      { "Parameter.ARN", "arn:aws:ssm:${region}::parameter${al2}" } },
      save = { ami = "Parameter.Value" } }),
    S("ssm", "GetParameters", { Names = { "${al2}" } }, { check = {
      { "Parameters[0].Value", "${ami}" }, { "length(InvalidParameters)", 0 } } }),
    S("ssm", "GetParameter", { Name = "/aws/service/no/such/parameter" },
      { error = "ParameterNotFound" }),
  }
end)

scenario("ec2_vpc_create_describe_delete", { vpc = true }, function()
  return {
    S("ec2", "DescribeAvailabilityZones", {}, { check = {
      { "AvailabilityZones[0:2].ZoneName", { "${az1}", "${az2}" } },
      { "AvailabilityZones[0:2].ZoneId", { "${azid1}", "${azid2}" } },
      { "AvailabilityZones[0].RegionName", "${region}" } } }),
    vpc("10.0.0.0/16", "scn-vpc"),
    S("ec2", "VpcAvailable", { VpcIds = { "${vpc}" } }, { wait = true }),
    S("ec2", "DescribeVpcs", { VpcIds = { "${vpc}" } }, { check = {
      { "Vpcs[0].CidrBlock", "10.0.0.0/16" }, { "Vpcs[0].State", "available" },
      { "Vpcs[0].IsDefault", false }, { "Vpcs[0].OwnerId", "${account}" },
      { "Vpcs[0].Tags[?Key=='Name'].Value | [0]", "scn-vpc" } } }),
    S("ec2", "DescribeVpcs", { Filters = { { Name = "tag:Name", Values = { "scn-vpc" } } } },
      { check = { { "Vpcs[*].VpcId", { "${vpc}" } } } }),
    S("ec2", "ModifyVpcAttribute", { VpcId = "${vpc}", EnableDnsHostnames = { Value = true } }),
    S("ec2", "DescribeVpcAttribute", { VpcId = "${vpc}", Attribute = "enableDnsHostnames" },
      { check = { { "EnableDnsHostnames.Value", true }, { "VpcId", "${vpc}" } } }),
    -- the main route table and default security group come with the VPC
    S("ec2", "DescribeRouteTables", { Filters = { { Name = "vpc-id", Values = { "${vpc}" } } } },
      { check = { { "RouteTables[0].Associations[0].Main", true },
        { "RouteTables[0].Routes[0].GatewayId", "local" } } }),
    S("ec2", "DescribeSecurityGroups", { Filters = { { Name = "vpc-id", Values = { "${vpc}" } } } },
      { check = { { "SecurityGroups[*].GroupName", { "default" } } } }),
    S("ec2", "DeleteVpc", { VpcId = "${vpc}" }),
    S("ec2", "DescribeVpcs", { VpcIds = { "${vpc}" } }, { error = "InvalidVpcID.NotFound",
      message = "${vpc}" }),
  }
end)

scenario("ec2_subnet_create_describe_delete", { vpc = true }, function()
  return {
    vpc("10.1.0.0/16", "scn-subnet"),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.1.1.0/24", AvailabilityZone = "${az1}" },
      { save = { sub1 = "Subnet.SubnetId" } }),
    S("ec2", "SubnetAvailable", { SubnetIds = { "${sub1}" } }, { wait = true }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.1.2.0/24", AvailabilityZoneId = "${azid2}" },
      { save = { sub2 = "Subnet.SubnetId" }, check = { { "Subnet.AvailabilityZone", "${az2}" } } }),
    S("ec2", "DescribeSubnets", { SubnetIds = { "${sub1}" } }, { check = {
      { "Subnets[0].CidrBlock", "10.1.1.0/24" }, { "Subnets[0].VpcId", "${vpc}" },
      { "Subnets[0].AvailabilityZone", "${az1}" }, { "Subnets[0].AvailabilityZoneId", "${azid1}" },
      { "Subnets[0].AvailableIpAddressCount", 251 }, { "Subnets[0].State", "available" },
      { "Subnets[0].SubnetArn", "arn:aws:ec2:${region}:${account}:subnet/${sub1}" } } }),
    S("ec2", "DescribeSubnets", { Filters = { { Name = "vpc-id", Values = { "${vpc}" } } } },
      { check = { { "length(Subnets)", 2 }, { "sort(Subnets[*].AvailabilityZone)", { "${az1}", "${az2}" } } } }),
    S("ec2", "ModifySubnetAttribute", { SubnetId = "${sub1}", MapPublicIpOnLaunch = { Value = true } }),
    S("ec2", "DescribeSubnets", { SubnetIds = { "${sub1}" } },
      { check = { { "Subnets[0].MapPublicIpOnLaunch", true } } }),
    -- AWS's rules: a CIDR outside the VPC, overlapping a sibling, an AZ of another region
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.2.0.0/24", AvailabilityZone = "${az1}" },
      { error = "InvalidSubnet.Range" }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.1.1.128/25", AvailabilityZone = "${az1}" },
      { error = "InvalidSubnet.Conflict" }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.1.3.0/24", AvailabilityZone = "${other}a" },
      { error = "InvalidParameterValue" }),
    -- DependencyViolation: the VPC still has subnets
    S("ec2", "DeleteVpc", { VpcId = "${vpc}" }, { error = "DependencyViolation" }),
    S("ec2", "DeleteSubnet", { SubnetId = "${sub1}" }, { always = true }),
    S("ec2", "DeleteSubnet", { SubnetId = "${sub2}" }, { always = true }),
    S("ec2", "DescribeSubnets", { SubnetIds = { "${sub1}" } }, { error = "InvalidSubnetID.NotFound" }),
    delete_vpc(),
  }
end)

scenario("ec2_internet_gateway_attach_detach", { vpc = true }, function()
  return {
    vpc("10.2.0.0/16", "scn-igw"),
    S("ec2", "CreateInternetGateway", {}, { save = { igw = "InternetGateway.InternetGatewayId" },
      check = { { "length(InternetGateway.Attachments)", 0 } } }),
    S("ec2", "InternetGatewayExists", { InternetGatewayIds = { "${igw}" } }, { wait = true }),
    S("ec2", "AttachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }),
    S("ec2", "DescribeInternetGateways", { InternetGatewayIds = { "${igw}" } }, { check = {
      { "InternetGateways[0].Attachments[0].VpcId", "${vpc}" },
      { "InternetGateways[0].Attachments[0].State", "available" },
      { "InternetGateways[0].OwnerId", "${account}" } } }),
    S("ec2", "DescribeInternetGateways", { Filters = { { Name = "attachment.vpc-id", Values = { "${vpc}" } } } },
      { check = { { "InternetGateways[*].InternetGatewayId", { "${igw}" } } } }),
    -- a VPC with an attached gateway cannot go
    S("ec2", "DeleteVpc", { VpcId = "${vpc}" }, { error = "DependencyViolation" }),
    S("ec2", "DetachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }, { always = true }),
    S("ec2", "DescribeInternetGateways", { InternetGatewayIds = { "${igw}" } },
      { check = { { "length(InternetGateways[0].Attachments)", 0 } } }),
    S("ec2", "DeleteInternetGateway", { InternetGatewayId = "${igw}" }, { always = true }),
    S("ec2", "DescribeInternetGateways", { InternetGatewayIds = { "${igw}" } },
      { error = "InvalidInternetGatewayID.NotFound" }),
    delete_vpc(),
  }
end)

scenario("ec2_route_table_route_association", { vpc = true }, function()
  return {
    vpc("10.3.0.0/16", "scn-rtb"),
    S("ec2", "CreateInternetGateway", {}, { save = { igw = "InternetGateway.InternetGatewayId" } }),
    S("ec2", "AttachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }),
    S("ec2", "CreateSubnet", { VpcId = "${vpc}", CidrBlock = "10.3.1.0/24", AvailabilityZone = "${az1}" },
      { save = { sub1 = "Subnet.SubnetId" } }),
    S("ec2", "CreateRouteTable", { VpcId = "${vpc}" }, { save = { rtb = "RouteTable.RouteTableId" },
      check = { { "RouteTable.VpcId", "${vpc}" }, { "RouteTable.Routes[0].DestinationCidrBlock", "10.3.0.0/16" } } }),
    S("ec2", "CreateRoute", { RouteTableId = "${rtb}", DestinationCidrBlock = "0.0.0.0/0",
      GatewayId = "${igw}" }, { check = { { "Return", true } } }),
    S("ec2", "AssociateRouteTable", { RouteTableId = "${rtb}", SubnetId = "${sub1}" },
      { save = { assoc = "AssociationId" }, check = { { "AssociationState.State", "associated" } } }),
    S("ec2", "DescribeRouteTables", { RouteTableIds = { "${rtb}" } }, { check = {
      { "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].GatewayId | [0]", "${igw}" },
      { "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].State | [0]", "active" },
      { "RouteTables[0].Associations[0].SubnetId", "${sub1}" },
      { "RouteTables[0].Associations[0].RouteTableAssociationId", "${assoc}" },
      { "RouteTables[0].Associations[0].Main", false } } }),
    S("ec2", "DescribeRouteTables", { Filters = { { Name = "association.subnet-id", Values = { "${sub1}" } } } },
      { check = { { "RouteTables[*].RouteTableId", { "${rtb}" } } } }),
    -- a table with an association cannot go
    S("ec2", "DeleteRouteTable", { RouteTableId = "${rtb}" }, { error = "DependencyViolation" }),
    S("ec2", "DisassociateRouteTable", { AssociationId = "${assoc}" }, { always = true }),
    S("ec2", "DeleteRoute", { RouteTableId = "${rtb}", DestinationCidrBlock = "0.0.0.0/0" }, { always = true }),
    S("ec2", "DescribeRouteTables", { RouteTableIds = { "${rtb}" } }, { check = {
      { "length(RouteTables[0].Routes)", 1 }, { "length(RouteTables[0].Associations)", 0 } } }),
    S("ec2", "DeleteRouteTable", { RouteTableId = "${rtb}" }, { always = true }),
    S("ec2", "DescribeRouteTables", { RouteTableIds = { "${rtb}" } }, { error = "InvalidRouteTableID.NotFound" }),
    S("ec2", "DeleteSubnet", { SubnetId = "${sub1}" }, { always = true }),
    S("ec2", "DetachInternetGateway", { InternetGatewayId = "${igw}", VpcId = "${vpc}" }, { always = true }),
    S("ec2", "DeleteInternetGateway", { InternetGatewayId = "${igw}" }, { always = true }),
    delete_vpc(),
  }
end)

scenario("ec2_security_group_ingress", { vpc = true }, function()
  return {
    vpc("10.4.0.0/16", "scn-sg"),
    S("ec2", "CreateSecurityGroup", { GroupName = "scn-web", Description = "web tier",
      VpcId = "${vpc}" }, { save = { sg = "GroupId" } }),
    S("ec2", "SecurityGroupExists", { GroupIds = { "${sg}" } }, { wait = true }),
    S("ec2", "AuthorizeSecurityGroupIngress", { GroupId = "${sg}", IpPermissions = { {
      IpProtocol = "tcp", FromPort = 80, ToPort = 80,
      IpRanges = { { CidrIp = "0.0.0.0/0", Description = "http" } } } } },
      { check = { { "Return", true }, { "SecurityGroupRules[0].FromPort", 80 },
        { "SecurityGroupRules[0].IsEgress", false } } }),
    S("ec2", "DescribeSecurityGroups", { GroupIds = { "${sg}" } }, { check = {
      { "SecurityGroups[0].GroupName", "scn-web" }, { "SecurityGroups[0].Description", "web tier" },
      { "SecurityGroups[0].VpcId", "${vpc}" },
      { "SecurityGroups[0].IpPermissions[0].IpProtocol", "tcp" },
      { "SecurityGroups[0].IpPermissions[0].FromPort", 80 },
      { "SecurityGroups[0].IpPermissions[0].IpRanges[0].CidrIp", "0.0.0.0/0" },
      { "SecurityGroups[0].IpPermissionsEgress[0].IpProtocol", "-1" } } }),
    S("ec2", "DescribeSecurityGroups", { Filters = { { Name = "group-name", Values = { "scn-web" } },
      { Name = "vpc-id", Values = { "${vpc}" } } } }, { check = { { "SecurityGroups[*].GroupId", { "${sg}" } } } }),
    -- the same rule twice, the same name twice
    S("ec2", "AuthorizeSecurityGroupIngress", { GroupId = "${sg}", IpPermissions = { {
      IpProtocol = "tcp", FromPort = 80, ToPort = 80, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } },
      { error = "InvalidPermission.Duplicate" }),
    S("ec2", "CreateSecurityGroup", { GroupName = "scn-web", Description = "again", VpcId = "${vpc}" },
      { error = "InvalidGroup.Duplicate" }),
    S("ec2", "RevokeSecurityGroupIngress", { GroupId = "${sg}", IpPermissions = { {
      IpProtocol = "tcp", FromPort = 80, ToPort = 80, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } },
      { check = { { "Return", true } } }),
    S("ec2", "DescribeSecurityGroups", { GroupIds = { "${sg}" } },
      { check = { { "length(SecurityGroups[0].IpPermissions)", 0 } } }),
    S("ec2", "DeleteSecurityGroup", { GroupId = "${sg}" }, { always = true }),
    S("ec2", "DescribeSecurityGroups", { GroupIds = { "${sg}" } }, { error = "InvalidGroup.NotFound" }),
    delete_vpc(),
  }
end)

scenario("ec2_vpc_endpoint_dynamodb_gateway", { vpc = true }, function()
  return {
    vpc("10.5.0.0/16", "scn-vpce"),
    S("ec2", "CreateRouteTable", { VpcId = "${vpc}" }, { save = { rtb = "RouteTable.RouteTableId" } }),
    S("ec2", "CreateVpcEndpoint", { VpcId = "${vpc}", VpcEndpointType = "Gateway",
      ServiceName = "com.amazonaws.${region}.dynamodb", RouteTableIds = { "${rtb}" } },
      { save = { vpce = "VpcEndpoint.VpcEndpointId" },
        check = { { "VpcEndpoint.VpcEndpointId", M.match("^vpce%-%x+$") } } }),
    S("ec2", "DescribeVpcEndpoints", { VpcEndpointIds = { "${vpce}" } }, { check = {
      { "VpcEndpoints[0].ServiceName", "com.amazonaws.${region}.dynamodb" },
      { "VpcEndpoints[0].VpcEndpointType", "Gateway" }, { "VpcEndpoints[0].VpcId", "${vpc}" },
      { "VpcEndpoints[0].State", "available" }, { "VpcEndpoints[0].RouteTableIds", { "${rtb}" } } } }),
    -- the gateway endpoint routes the service's prefix list through itself
    S("ec2", "DescribeRouteTables", { RouteTableIds = { "${rtb}" } }, { check = {
      { "RouteTables[0].Routes[?GatewayId=='${vpce}'].DestinationPrefixListId | [0]", M.match("^pl%-%x+$") } } }),
    S("ec2", "CreateVpcEndpoint", { VpcId = "${vpc}", VpcEndpointType = "Gateway",
      ServiceName = "com.amazonaws.${region}.nosuchservice", RouteTableIds = { "${rtb}" } },
      { error = "InvalidServiceName" }),
    S("ec2", "DeleteVpcEndpoints", { VpcEndpointIds = { "${vpce}" } }, { always = true,
      check = { { "length(Unsuccessful)", 0 } } }),
    S("ec2", "DescribeVpcEndpoints", { VpcEndpointIds = { "${vpce}" } },
      { error = "InvalidVpcEndpointId.NotFound" }),
    S("ec2", "DescribeRouteTables", { RouteTableIds = { "${rtb}" } },
      { check = { { "length(RouteTables[0].Routes)", 1 } } }),
    S("ec2", "DeleteRouteTable", { RouteTableId = "${rtb}" }, { always = true }),
    delete_vpc(),
  }
end)

scenario("ec2_launch_template_versions", {}, function()
  return {
    S("ssm", "GetParameter", { Name = "${al2}" }, { save = { ami = "Parameter.Value" } }),
    S("ec2", "CreateLaunchTemplate", { LaunchTemplateName = "scn-lt-${region}",
      VersionDescription = "v1", LaunchTemplateData = { ImageId = "${ami}", InstanceType = "t3.micro",
        MetadataOptions = { HttpTokens = "required" } } },
      { save = { lt = "LaunchTemplate.LaunchTemplateId" }, check = {
        { "LaunchTemplate.LaunchTemplateName", "scn-lt-${region}" },
        { "LaunchTemplate.LatestVersionNumber", 1 }, { "LaunchTemplate.DefaultVersionNumber", 1 } } }),
    S("ec2", "DescribeLaunchTemplates", { LaunchTemplateNames = { "scn-lt-${region}" } },
      { check = { { "LaunchTemplates[0].LaunchTemplateId", "${lt}" } } }),
    S("ec2", "DescribeLaunchTemplateVersions", { LaunchTemplateId = "${lt}", Versions = { "$Latest" } },
      { check = { { "LaunchTemplateVersions[0].LaunchTemplateData.ImageId", "${ami}" },
        { "LaunchTemplateVersions[0].LaunchTemplateData.InstanceType", "t3.micro" },
        { "LaunchTemplateVersions[0].LaunchTemplateData.MetadataOptions.HttpTokens", "required" },
        { "LaunchTemplateVersions[0].VersionDescription", "v1" } } }),
    S("ec2", "CreateLaunchTemplateVersion", { LaunchTemplateId = "${lt}", SourceVersion = "1",
      LaunchTemplateData = { InstanceType = "t3.small" } },
      { check = { { "LaunchTemplateVersion.VersionNumber", 2 },
        { "LaunchTemplateVersion.LaunchTemplateData.ImageId", "${ami}" } } }),
    S("ec2", "DescribeLaunchTemplates", { LaunchTemplateIds = { "${lt}" } }, { check = {
      { "LaunchTemplates[0].LatestVersionNumber", 2 }, { "LaunchTemplates[0].DefaultVersionNumber", 1 } } }),
    S("ec2", "CreateLaunchTemplate", { LaunchTemplateName = "scn-lt-${region}",
      LaunchTemplateData = { ImageId = "${ami}" } },
      { error = "InvalidLaunchTemplateName.AlreadyExistsException" }),
    S("ec2", "DeleteLaunchTemplate", { LaunchTemplateId = "${lt}" }, { always = true,
      check = { { "LaunchTemplate.LaunchTemplateId", "${lt}" } } }),
    S("ec2", "DescribeLaunchTemplates", { LaunchTemplateNames = { "scn-lt-${region}" } },
      { error = "InvalidLaunchTemplateName.NotFoundException" }),
    S("ec2", "DescribeLaunchTemplates", { LaunchTemplateIds = { "${lt}" } },
      { error = "InvalidLaunchTemplateId.NotFound" }),
  }
end)

-- An instance of its own, as an operator runs one: into the default VPC (no subnet
-- given), waited for, described, terminated.
scenario("ec2_run_terminate_instances", {}, function()
  local by_name = { { Name = "tag:Name", Values = { "scn-run-${region}" } } }
  return {
    S("ssm", "GetParameter", { Name = "${al2}" }, { save = { ami = "Parameter.Value" } }),
    S("ec2", "DescribeAccountAttributes", { AttributeNames = { "default-vpc" } },
      { save = { dvpc = "AccountAttributes[0].AttributeValues[0].AttributeValue" }, check = {
        { "AccountAttributes[0].AttributeValues[0].AttributeValue", M.match("^vpc%-%x+$") } } }),
    S("ec2", "RunInstances", { ImageId = "${ami}", InstanceType = "t3.micro", MinCount = 1,
      MaxCount = 1, Placement = { AvailabilityZone = "${az2}" },
      MetadataOptions = { HttpTokens = "required" },
      TagSpecifications = { { ResourceType = "instance", Tags = { { Key = "Name",
        Value = "scn-run-${region}" } } } } },
      { save = { inst = "Instances[0].InstanceId" }, check = {
        { "Instances[0].State.Name", "pending" }, { "Instances[0].VpcId", "${dvpc}" },
        { "Instances[0].Placement.AvailabilityZone", "${az2}" },
        { "Instances[0].InstanceId", M.match("^i%-%x+$") } } }),
    S("ec2", "InstanceRunning", { InstanceIds = { "${inst}" } }, { wait = true }),
    S("ec2", "DescribeInstances", { Filters = by_name }, { check = {
      { "length(Reservations[].Instances[])", 1 },
      { "Reservations[0].Instances[0].State.Name", "running" },
      { "Reservations[0].Instances[0].MetadataOptions.HttpTokens", "required" },
      { "Reservations[0].Instances[0].NetworkInterfaces[0].VpcId", "${dvpc}" },
      { "Reservations[0].Instances[0].BlockDeviceMappings[0].DeviceName", "/dev/xvda" },
      { "Reservations[0].Instances[0].PublicIpAddress", M.present } } }),
    S("ec2", "TerminateInstances", { InstanceIds = { "${inst}" } }, { always = true, check = {
      { "TerminatingInstances[0].CurrentState.Name", "shutting-down" } } }),
    S("ec2", "InstanceTerminated", { InstanceIds = { "${inst}" } }, { wait = true }),
    S("ec2", "TerminateInstances", { InstanceIds = { "i-0123456789abcdef0" } },
      { error = "InvalidInstanceID.NotFound" }),
  }
end)

scenario("elbv2_target_group", { vpc = true }, function()
  return {
    vpc("10.6.0.0/16", "scn-tg"),
    S("elbv2", "CreateTargetGroup", { Name = "scn-tg-${n}", Protocol = "HTTP", Port = 80,
      VpcId = "${vpc}", TargetType = "instance", HealthCheckPath = "/health",
      HealthCheckIntervalSeconds = 10, HealthyThresholdCount = 2, Matcher = { HttpCode = "200" } },
      { save = { tg = "TargetGroups[0].TargetGroupArn" }, check = {
        { "TargetGroups[0].TargetGroupArn",
          M.match("^arn:aws:elasticloadbalancing:${region}:${account}:targetgroup/scn%-tg%-${n}/%x+$") } } }),
    S("elbv2", "DescribeTargetGroups", { Names = { "scn-tg-${n}" } }, { check = {
      { "TargetGroups[0].TargetGroupArn", "${tg}" }, { "TargetGroups[0].Protocol", "HTTP" },
      { "TargetGroups[0].Port", 80 }, { "TargetGroups[0].VpcId", "${vpc}" },
      { "TargetGroups[0].HealthCheckPath", "/health" },
      { "TargetGroups[0].HealthCheckIntervalSeconds", 10 },
      { "TargetGroups[0].HealthyThresholdCount", 2 }, { "TargetGroups[0].UnhealthyThresholdCount", 2 },
      { "TargetGroups[0].Matcher.HttpCode", "200" }, { "TargetGroups[0].TargetType", "instance" },
      { "length(TargetGroups[0].LoadBalancerArns)", 0 } } }),
    -- the same name with other settings
    S("elbv2", "CreateTargetGroup", { Name = "scn-tg-${n}", Protocol = "HTTP", Port = 8080,
      VpcId = "${vpc}" }, { error = "DuplicateTargetGroupName" }),
    S("elbv2", "ModifyTargetGroup", { TargetGroupArn = "${tg}", HealthCheckPath = "/ready" },
      { check = { { "TargetGroups[0].HealthCheckPath", "/ready" } } }),
    S("elbv2", "DescribeTargetGroupAttributes", { TargetGroupArn = "${tg}" }, { check = {
      { "Attributes[?Key=='deregistration_delay.timeout_seconds'].Value | [0]", "300" } } }),
    S("elbv2", "DeleteTargetGroup", { TargetGroupArn = "${tg}" }, { always = true }),
    S("elbv2", "DescribeTargetGroups", { TargetGroupArns = { "${tg}" } }, { error = "TargetGroupNotFound" }),
    delete_vpc(),
  }
end)

scenario("elbv2_load_balancer", { priority = 2, fixture = true }, function()
  return {
    -- one subnet (one AZ) is not enough for an ALB
    S("elbv2", "CreateLoadBalancer", { Name = "scn-lb-one-az", Subnets = { "${sub1}" },
      Type = "application" }, { error = "ValidationError",
      message = "At least two subnets in two different Availability Zones must be specified" }),
    load_balancer("scn-lb-${n}"),
    S("elbv2", "DescribeLoadBalancers", { LoadBalancerArns = { "${lb}" } }, { check = {
      { "LoadBalancers[0].LoadBalancerName", "scn-lb-${n}" },
      { "LoadBalancers[0].Scheme", "internet-facing" }, { "LoadBalancers[0].Type", "application" },
      { "LoadBalancers[0].VpcId", "${vpc}" }, { "LoadBalancers[0].CanonicalHostedZoneId", "${alb_zone}" },
      { "LoadBalancers[0].DNSName", M.match("^scn%-lb%-${n}%-%d+%.${region}%.elb%.amazonaws%.com$") },
      { "sort(LoadBalancers[0].AvailabilityZones[*].ZoneName)", { "${az1}", "${az2}" } },
      { "LoadBalancers[0].SecurityGroups", { "${sg}" } } } }),
    -- the waiter sees "provisioning", sleeps its 15 s and sees "active"; meanwhile:
    S("elbv2", "LoadBalancerAvailable", { LoadBalancerArns = { "${lb}" } }, { wait = true,
      async = "available" }),
    S("elbv2", "ModifyLoadBalancerAttributes", { LoadBalancerArn = "${lb}", Attributes = {
      { Key = "idle_timeout.timeout_seconds", Value = "30" } } },
      { check = { { "Attributes[?Key=='idle_timeout.timeout_seconds'].Value | [0]", "30" } } }),
    S("elbv2", "DescribeLoadBalancerAttributes", { LoadBalancerArn = "${lb}" }, { check = {
      { "Attributes[?Key=='idle_timeout.timeout_seconds'].Value | [0]", "30" },
      { "Attributes[?Key=='deletion_protection.enabled'].Value | [0]", "false" } } }),
    { join = "available" },
    S("elbv2", "DescribeLoadBalancers", { Names = { "scn-lb-${n}" } },
      { check = { { "LoadBalancers[0].State.Code", "active" } } }),
    S("elbv2", "DeleteLoadBalancer", { LoadBalancerArn = "${lb}" }, { always = true }),
    S("elbv2", "DescribeLoadBalancers", { Names = { "scn-lb-${n}" } }, { error = "LoadBalancerNotFound" }),
    S("elbv2", "LoadBalancersDeleted", { LoadBalancerArns = { "${lb}" } }, { wait = true }),
  }
end)

scenario("elbv2_listener", { fixture = true }, function()
  return {
    load_balancer("scn-lis-${n}"),
    S("elbv2", "CreateTargetGroup", { Name = "scn-lis-tg-${n}", Protocol = "HTTP", Port = 80,
      VpcId = "${vpc}" }, { save = { tg = "TargetGroups[0].TargetGroupArn" } }),
    S("elbv2", "CreateListener", { LoadBalancerArn = "${lb}", Protocol = "HTTP", Port = 80,
      DefaultActions = { { Type = "forward", TargetGroupArn = "${tg}" } } },
      { save = { listener = "Listeners[0].ListenerArn" }, check = {
        { "Listeners[0].ListenerArn",
          M.match("^arn:aws:elasticloadbalancing:${region}:${account}:listener/app/scn%-lis%-${n}/%x+/%x+$") } } }),
    S("elbv2", "DescribeListeners", { LoadBalancerArn = "${lb}" }, { check = {
      { "Listeners[0].ListenerArn", "${listener}" }, { "Listeners[0].Port", 80 },
      { "Listeners[0].Protocol", "HTTP" }, { "Listeners[0].DefaultActions[0].Type", "forward" },
      { "Listeners[0].DefaultActions[0].TargetGroupArn", "${tg}" } } }),
    S("elbv2", "DescribeTargetGroups", { TargetGroupArns = { "${tg}" } },
      { check = { { "TargetGroups[0].LoadBalancerArns", { "${lb}" } } } }),
    -- the same listener again is idempotent; another one on the same port is not
    S("elbv2", "CreateListener", { LoadBalancerArn = "${lb}", Protocol = "HTTP", Port = 80,
      DefaultActions = { { Type = "forward", TargetGroupArn = "${tg}" } } },
      { check = { { "Listeners[0].ListenerArn", "${listener}" } } }),
    S("elbv2", "CreateListener", { LoadBalancerArn = "${lb}", Protocol = "HTTP", Port = 80,
      DefaultActions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "503" } } } },
      { error = "DuplicateListener" }),
    -- a target group behind a listener cannot go
    S("elbv2", "DeleteTargetGroup", { TargetGroupArn = "${tg}" }, { error = "ResourceInUse" }),
    S("elbv2", "DeleteListener", { ListenerArn = "${listener}" }, { always = true }),
    S("elbv2", "DescribeListeners", { ListenerArns = { "${listener}" } }, { error = "ListenerNotFound" }),
    S("elbv2", "DeleteTargetGroup", { TargetGroupArn = "${tg}" }, { always = true }),
    S("elbv2", "DeleteLoadBalancer", { LoadBalancerArn = "${lb}" }, { always = true }),
  }
end)

scenario("autoscaling_group_policy_metrics", { priority = 2, fixture = true }, function()
  return {
    S("ssm", "GetParameter", { Name = "${al2}" }, { save = { ami = "Parameter.Value" } }),
    S("ec2", "CreateLaunchTemplate", { LaunchTemplateName = "scn-asg-lt-${region}",
      LaunchTemplateData = { ImageId = "${ami}", InstanceType = "t3.micro",
        SecurityGroupIds = { "${sg}" } } }, { save = { lt = "LaunchTemplate.LaunchTemplateId" } }),
    S("elbv2", "CreateTargetGroup", { Name = "scn-asg-tg-${n}", Protocol = "HTTP", Port = 80,
      VpcId = "${vpc}" }, { save = { tg = "TargetGroups[0].TargetGroupArn" } }),
    S("autoscaling", "CreateAutoScalingGroup", { AutoScalingGroupName = "scn-asg-${region}",
      MinSize = 1, MaxSize = 3, DesiredCapacity = 2, HealthCheckType = "ELB",
      HealthCheckGracePeriod = 60, VPCZoneIdentifier = "${sub1},${sub2}",
      LaunchTemplate = { LaunchTemplateId = "${lt}", Version = "$Latest" },
      TargetGroupARNs = { "${tg}" },
      Tags = { { Key = "Name", Value = "scn-asg", PropagateAtLaunch = true } } }),
    S("autoscaling", "DescribeAutoScalingGroups", { AutoScalingGroupNames = { "scn-asg-${region}" } },
      { check = {
        { "AutoScalingGroups[0].MinSize", 1 }, { "AutoScalingGroups[0].MaxSize", 3 },
        { "AutoScalingGroups[0].DesiredCapacity", 2 }, { "AutoScalingGroups[0].HealthCheckType", "ELB" },
        { "AutoScalingGroups[0].LaunchTemplate.LaunchTemplateId", "${lt}" },
        { "AutoScalingGroups[0].LaunchTemplate.LaunchTemplateName", "scn-asg-lt-${region}" },
        { "AutoScalingGroups[0].TargetGroupARNs", { "${tg}" } },
        { "sort(AutoScalingGroups[0].AvailabilityZones)", { "${az1}", "${az2}" } },
        { "AutoScalingGroups[0].AutoScalingGroupARN",
          M.match("^arn:aws:autoscaling:${region}:${account}:autoScalingGroup:[%x%-]+:autoScalingGroupName/scn%-asg%-${region}$") },
        { "length(AutoScalingGroups[0].Instances)", 2 } } }),
    -- the group registers its instances in the target group; no load balancer uses it yet
    S("elbv2", "DescribeTargetHealth", { TargetGroupArn = "${tg}" }, { poll = 10, check = {
      { "length(TargetHealthDescriptions)", 2 },
      { "TargetHealthDescriptions[*].TargetHealth.State", { "unused", "unused" } },
      { "TargetHealthDescriptions[0].TargetHealth.Reason", "Target.NotInUse" } } }),
    S("autoscaling", "CreateAutoScalingGroup", { AutoScalingGroupName = "scn-asg-${region}",
      MinSize = 0, MaxSize = 1, VPCZoneIdentifier = "${sub1}",
      LaunchTemplate = { LaunchTemplateId = "${lt}" } }, { error = "AlreadyExists" }),
    S("autoscaling", "PutScalingPolicy", { AutoScalingGroupName = "scn-asg-${region}",
      PolicyName = "cpu50", PolicyType = "TargetTrackingScaling",
      TargetTrackingConfiguration = { TargetValue = 50,
        PredefinedMetricSpecification = { PredefinedMetricType = "ASGAverageCPUUtilization" } } },
      { save = { policy = "PolicyARN" }, check = { { "length(Alarms)", 2 } } }),
    S("autoscaling", "DescribePolicies", { AutoScalingGroupName = "scn-asg-${region}" }, { check = {
      { "ScalingPolicies[0].PolicyName", "cpu50" }, { "ScalingPolicies[0].PolicyARN", "${policy}" },
      { "ScalingPolicies[0].PolicyType", "TargetTrackingScaling" },
      { "ScalingPolicies[0].TargetTrackingConfiguration.TargetValue", 50 } } }),
    S("autoscaling", "EnableMetricsCollection", { AutoScalingGroupName = "scn-asg-${region}",
      Granularity = "1Minute", Metrics = { "GroupInServiceInstances", "GroupDesiredCapacity" } }),
    S("autoscaling", "DescribeAutoScalingGroups", { AutoScalingGroupNames = { "scn-asg-${region}" } },
      { check = { { "sort(AutoScalingGroups[0].EnabledMetrics[*].Metric)",
        { "GroupDesiredCapacity", "GroupInServiceInstances" } },
        { "AutoScalingGroups[0].EnabledMetrics[0].Granularity", "1Minute" } } }),
    -- instances are running in the group's subnets: their subnets cannot go yet
    S("ec2", "DescribeInstances", { Filters = { { Name = "tag:aws:autoscaling:groupName",
      Values = { "scn-asg-${region}" } } } },
      { check = { { "length(Reservations[].Instances[])", 2 } } }),
    S("autoscaling", "DeletePolicy", { AutoScalingGroupName = "scn-asg-${region}", PolicyName = "cpu50" },
      { always = true }),
    S("autoscaling", "DescribePolicies", { AutoScalingGroupName = "scn-asg-${region}" },
      { check = { { "length(ScalingPolicies)", 0 } } }),
    S("autoscaling", "DeleteAutoScalingGroup", { AutoScalingGroupName = "scn-asg-${region}" },
      { error = "ResourceInUse" }),
    S("autoscaling", "DeleteAutoScalingGroup", { AutoScalingGroupName = "scn-asg-${region}",
      ForceDelete = true }, { always = true }),
    S("autoscaling", "DescribeAutoScalingGroups", { AutoScalingGroupNames = { "scn-asg-${region}" } },
      { poll = 20, always = true, check = { { "length(AutoScalingGroups)", 0 } } }),
    S("ec2", "DescribeInstances", { Filters = { { Name = "tag:aws:autoscaling:groupName",
      Values = { "scn-asg-${region}" } }, { Name = "instance-state-name", Values = { "running", "shutting-down", "pending" } } } },
      { poll = 20, always = true, check = { { "length(Reservations[].Instances[])", 0 } } }),
    S("elbv2", "DeleteTargetGroup", { TargetGroupArn = "${tg}" }, { always = true }),
    S("ec2", "DeleteLaunchTemplate", { LaunchTemplateId = "${lt}" }, { always = true }),
  }
end)

scenario("dynamodb_table_streams_replica_items", { priority = 1 }, function()
  local T = "scn-orders-${region}"
  return {
    S("dynamodb", "CreateTable", { TableName = T, BillingMode = "PAY_PER_REQUEST",
      AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" } },
      KeySchema = { { AttributeName = "pk", KeyType = "HASH" } },
      StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" } },
      { check = { { "TableDescription.TableStatus", "CREATING" } } }),
    S("dynamodb", "CreateTable", { TableName = T, BillingMode = "PAY_PER_REQUEST",
      AttributeDefinitions = { { AttributeName = "id", AttributeType = "N" } },
      KeySchema = { { AttributeName = "id", KeyType = "HASH" } } },
      { error = "ResourceInUseException" }),
    -- the waiter sees CREATING and sleeps its 20 s; meanwhile the table is used
    S("dynamodb", "TableExists", { TableName = T }, { wait = true, async = "exists" }),
    S("dynamodb", "DescribeTable", { TableName = T }, { poll = 20, check = {
      { "Table.TableStatus", "ACTIVE" }, { "Table.KeySchema[0].AttributeName", "pk" },
      { "Table.BillingModeSummary.BillingMode", "PAY_PER_REQUEST" },
      { "Table.StreamSpecification.StreamViewType", "NEW_AND_OLD_IMAGES" },
      { "Table.TableArn", "arn:aws:dynamodb:${region}:${account}:table/" .. T },
      { "Table.LatestStreamArn",
        M.match("^arn:aws:dynamodb:${region}:${account}:table/scn%-orders%-${region}/stream/.+") } } }),
    S("dynamodb", "PutItem", { TableName = T, Item = { pk = { S = "order-1" }, qty = { N = "3" },
      side = { S = "buy" } } }),
    S("dynamodb", "GetItem", { TableName = T, Key = { pk = { S = "order-1" } }, ConsistentRead = true },
      { check = { { "Item.qty.N", "3" }, { "Item.side.S", "buy" } } }),
    S("dynamodb", "UpdateTable", { TableName = T, ReplicaUpdates = { { Create = { RegionName = "${other}" } } } },
      { check = { { "TableDescription.Replicas[0].RegionName", "${other}" },
        { "TableDescription.Replicas[0].ReplicaStatus", "CREATING" } } }),
    S("dynamodb", "DescribeTable", { TableName = T }, { poll = 30, check = {
      { "Table.Replicas[0].ReplicaStatus", "ACTIVE" }, { "Table.TableStatus", "ACTIVE" } } }),
    -- the item is in the replica; a write there comes back
    S("dynamodb", "GetItem", { TableName = T, Key = { pk = { S = "order-1" } } },
      { region = "${other}", check = { { "Item.qty.N", "3" } } }),
    S("dynamodb", "PutItem", { TableName = T, Item = { pk = { S = "order-2" }, qty = { N = "5" } } },
      { region = "${other}" }),
    S("dynamodb", "GetItem", { TableName = T, Key = { pk = { S = "order-2" } } },
      { poll = 10, check = { { "Item.qty.N", "5" } } }),
    { join = "exists" },
    S("dynamodb", "UpdateTable", { TableName = T, ReplicaUpdates = { { Delete = { RegionName = "${other}" } } } },
      { always = true }),
    S("dynamodb", "DescribeTable", { TableName = T }, { poll = 30, always = true, check = {
      { "length(Table.Replicas || `[]`)", 0 }, { "Table.TableStatus", "ACTIVE" } } }),
    S("dynamodb", "DeleteTable", { TableName = T }, { always = true,
      check = { { "TableDescription.TableStatus", "DELETING" } } }),
    S("dynamodb", "DescribeTable", { TableName = T }, { poll = 20, error = "ResourceNotFoundException" }),
    S("dynamodb", "TableNotExists", { TableName = T }, { wait = true }),
  }
end)

scenario("sns_topic_subscription_publish", {}, function()
  return {
    S("sns", "CreateTopic", { Name = "scn-alerts", Tags = { { Key = "stack", Value = "scn" } } },
      { save = { topic = "TopicArn" },
        check = { { "TopicArn", "arn:aws:sns:${region}:${account}:scn-alerts" } } }),
    S("sns", "GetTopicAttributes", { TopicArn = "${topic}" }, { check = {
      { "Attributes.TopicArn", "${topic}" }, { "Attributes.Owner", "${account}" },
      { "Attributes.SubscriptionsPending", "0" } } }),
    S("sns", "Subscribe", { TopicArn = "${topic}", Protocol = "email", Endpoint = "ops@example.com" },
      { check = { { "SubscriptionArn", "pending confirmation" } } }),
    S("sns", "Subscribe", { TopicArn = "${topic}", Protocol = "sqs",
      Endpoint = "arn:aws:sqs:${region}:${account}:scn-queue", ReturnSubscriptionArn = true },
      { save = { sub = "SubscriptionArn" }, check = {
        { "SubscriptionArn", M.match("^arn:aws:sns:${region}:${account}:scn%-alerts:[%x%-]+$") } } }),
    S("sns", "ListSubscriptionsByTopic", { TopicArn = "${topic}" }, { check = {
      { "sort(Subscriptions[*].Protocol)", { "email", "sqs" } },
      { "Subscriptions[?Protocol=='sqs'].SubscriptionArn | [0]", "${sub}" },
      { "Subscriptions[?Protocol=='email'].SubscriptionArn | [0]", "PendingConfirmation" } } }),
    S("sns", "Publish", { TopicArn = "${topic}", Subject = "failover", Message = "primary down" },
      { check = { { "MessageId", M.match("^[%x%-]+$") } } }),
    S("sns", "Unsubscribe", { SubscriptionArn = "${sub}" }, { always = true }),
    S("sns", "DeleteTopic", { TopicArn = "${topic}" }, { always = true }),
    S("sns", "GetTopicAttributes", { TopicArn = "${topic}" }, { error = "NotFound" }),
    S("sns", "Publish", { TopicArn = "${topic}", Message = "x" }, { error = "NotFound" }),
  }
end)

-- TreatMissingData "ignore": with no data (no such health check) each minute's evaluation
-- keeps the state, so the checks below do not depend on when it runs.
-- PutMetricData of 100 metrics, about 16 KB of input: over botocore's 10,240-byte threshold,
-- so the current AWS CLI (botocore >= 1.31) sends it gzip-compressed (Content-Encoding:
-- gzip, the operation's requestcompression trait), as AWS accepts.
local function large_metric_data()
  local data = {}
  for i = 1, 100 do
    data[i] = { MetricName = "Latency", Value = i, Unit = "Milliseconds",
      Dimensions = { { Name = "Host", Value = ("scn-host-%04d-large-request"):format(i) },
        { Name = "AvailabilityZone", Value = "${region}a" } } }
  end
  return data
end

scenario("cloudwatch_alarm_state", {}, function()
  return {
    S("cloudwatch", "PutMetricData", { Namespace = "Scn/Large", MetricData = large_metric_data() }),
    S("cloudwatch", "ListMetrics", { Namespace = "Scn/Large", MetricName = "Latency" }, { check = {
      { "length(Metrics)", 100 },
      { "length(Metrics[?Dimensions[?Name=='Host' && Value=='scn-host-0042-large-request']])", 1 } } }),
    S("sns", "CreateTopic", { Name = "scn-alarm-topic" }, { save = { topic = "TopicArn" } }),
    S("cloudwatch", "PutMetricAlarm", { AlarmName = "scn-primary-health", Namespace = "AWS/Route53",
      MetricName = "HealthCheckStatus", Dimensions = { { Name = "HealthCheckId", Value = "0d4c5b0f-1111-4f8e-9c55-3f1f1c2a7b01" } },
      Statistic = "Minimum", Period = 60, EvaluationPeriods = 1, Threshold = 1,
      ComparisonOperator = "LessThanThreshold", TreatMissingData = "ignore",
      AlarmActions = { "${topic}" }, OKActions = { "${topic}" } }),
    S("cloudwatch", "AlarmExists", { AlarmNames = { "scn-primary-health" } }, { wait = true }),
    S("cloudwatch", "DescribeAlarms", { AlarmNames = { "scn-primary-health" } }, { check = {
      { "MetricAlarms[0].AlarmName", "scn-primary-health" },
      { "MetricAlarms[0].AlarmArn", "arn:aws:cloudwatch:${region}:${account}:alarm:scn-primary-health" },
      { "MetricAlarms[0].Namespace", "AWS/Route53" }, { "MetricAlarms[0].MetricName", "HealthCheckStatus" },
      { "MetricAlarms[0].Threshold", 1 }, { "MetricAlarms[0].ComparisonOperator", "LessThanThreshold" },
      { "MetricAlarms[0].AlarmActions", { "${topic}" } }, { "MetricAlarms[0].ActionsEnabled", true },
      { "MetricAlarms[0].TreatMissingData", "ignore" },
      { "MetricAlarms[0].StateValue", "INSUFFICIENT_DATA" } } }),
    S("cloudwatch", "SetAlarmState", { AlarmName = "scn-primary-health", StateValue = "ALARM",
      StateReason = "testing the notification path" }),
    S("cloudwatch", "DescribeAlarms", { AlarmNamePrefix = "scn-primary", StateValue = "ALARM" }, { check = {
      { "MetricAlarms[*].AlarmName", { "scn-primary-health" } },
      { "MetricAlarms[0].StateReason", "testing the notification path" } } }),
    S("cloudwatch", "SetAlarmState", { AlarmName = "scn-no-such-alarm", StateValue = "OK",
      StateReason = "x" }, { error = "ResourceNotFound" }),
    S("cloudwatch", "PutMetricAlarm", { AlarmName = "scn-bad", Namespace = "AWS/Route53",
      MetricName = "HealthCheckStatus", Statistic = "Minimum", ExtendedStatistic = "p99", Period = 60,
      EvaluationPeriods = 1, Threshold = 1, ComparisonOperator = "LessThanThreshold" },
      { error = "InvalidParameterCombination" }),
    S("cloudwatch", "DeleteAlarms", { AlarmNames = { "scn-primary-health" } }, { always = true }),
    S("cloudwatch", "DescribeAlarms", { AlarmNames = { "scn-primary-health" } },
      { check = { { "length(MetricAlarms)", 0 } } }),
    S("sns", "DeleteTopic", { TopicArn = "${topic}" }, { always = true }),
  }
end)

scenario("iam_role_policy_instance_profile", { global = true }, function()
  return {
    S("iam", "CreateRole", { RoleName = "scn-app-role", Path = "/fo/", AssumeRolePolicyDocument = TRUST,
      Description = "app instances" }, { save = { role_arn = "Role.Arn" }, check = {
        { "Role.Arn", "arn:aws:iam::${account}:role/fo/scn-app-role" },
        { "Role.RoleId", M.match("^AROA[A-Z0-9]+$") } } }),
    S("iam", "RoleExists", { RoleName = "scn-app-role" }, { wait = true }),
    S("iam", "CreateRole", { RoleName = "scn-app-role", AssumeRolePolicyDocument = TRUST },
      { error = "EntityAlreadyExists", message = "scn-app-role" }),
    S("iam", "GetRole", { RoleName = "scn-app-role" }, { check = {
      { "Role.RoleName", "scn-app-role" }, { "Role.Path", "/fo/" }, { "Role.Description", "app instances" },
      { "Role.AssumeRolePolicyDocument.Statement[0].Principal.Service", "ec2.amazonaws.com" } } }),
    S("iam", "PutRolePolicy", { RoleName = "scn-app-role", PolicyName = "ddb", PolicyDocument = POLICY }),
    S("iam", "GetRolePolicy", { RoleName = "scn-app-role", PolicyName = "ddb" }, { check = {
      { "PolicyName", "ddb" }, { "PolicyDocument.Statement[0].Action", { "dynamodb:GetItem", "dynamodb:PutItem" } } } }),
    S("iam", "ListRolePolicies", { RoleName = "scn-app-role" }, { check = { { "PolicyNames", { "ddb" } } } }),
    S("iam", "CreateInstanceProfile", { InstanceProfileName = "scn-app-profile", Path = "/fo/" },
      { check = { { "InstanceProfile.Arn", "arn:aws:iam::${account}:instance-profile/fo/scn-app-profile" },
        { "length(InstanceProfile.Roles)", 0 } } }),
    S("iam", "InstanceProfileExists", { InstanceProfileName = "scn-app-profile" }, { wait = true }),
    S("iam", "AddRoleToInstanceProfile", { InstanceProfileName = "scn-app-profile", RoleName = "scn-app-role" }),
    S("iam", "GetInstanceProfile", { InstanceProfileName = "scn-app-profile" }, { check = {
      { "InstanceProfile.Roles[*].RoleName", { "scn-app-role" } },
      { "InstanceProfile.InstanceProfileId", M.match("^AIPA[A-Z0-9]+$") } } }),
    S("iam", "ListInstanceProfilesForRole", { RoleName = "scn-app-role" }, { check = {
      { "InstanceProfiles[*].InstanceProfileName", { "scn-app-profile" } } } }),
    -- a role in a profile, with a policy, cannot go
    S("iam", "DeleteRole", { RoleName = "scn-app-role" }, { error = "DeleteConflict" }),
    S("iam", "RemoveRoleFromInstanceProfile", { InstanceProfileName = "scn-app-profile",
      RoleName = "scn-app-role" }, { always = true }),
    S("iam", "DeleteInstanceProfile", { InstanceProfileName = "scn-app-profile" }, { always = true }),
    S("iam", "DeleteRolePolicy", { RoleName = "scn-app-role", PolicyName = "ddb" }, { always = true }),
    S("iam", "DeleteRole", { RoleName = "scn-app-role" }, { always = true }),
    S("iam", "GetRole", { RoleName = "scn-app-role" }, { error = "NoSuchEntity" }),
    S("iam", "GetInstanceProfile", { InstanceProfileName = "scn-app-profile" }, { error = "NoSuchEntity" }),
  }
end)

scenario("route53_zone_weighted_alias_records", { priority = 2, global = true, fixture = true }, function()
  local P, B = "eu-south-1", "eu-central-1"
  local function rr(id, weight, dns, zone)
    return { Name = "app.scn.example-com.test", Type = "A", SetIdentifier = id, Weight = weight,
      AliasTarget = { HostedZoneId = zone, DNSName = dns, EvaluateTargetHealth = true } }
  end
  local steps = {}
  -- an ALB in the primary and the standby region (provisioning is enough for an alias)
  for i, region in ipairs({ P, B }) do
    local sfx = i == 1 and "p" or "s"
    local lb = load_balancer("scn-r53-" .. sfx, region)
    lb.save = { ["lb_" .. sfx] = "LoadBalancers[0].LoadBalancerArn",
      ["dns_" .. sfx] = "LoadBalancers[0].DNSName", ["zone_" .. sfx] = "LoadBalancers[0].CanonicalHostedZoneId" }
    steps[#steps + 1] = lb
  end
  local zone_steps = {
    S("route53", "CreateHostedZone", { Name = "scn.example-com.test", CallerReference = "scn-zone-1",
      HostedZoneConfig = { Comment = "scenario" } }, { save = { zone = "HostedZone.Id" }, check = {
        { "HostedZone.Id", M.match("^/hostedzone/Z[A-Z0-9]+$") }, { "HostedZone.Name", "scn.example-com.test." },
        { "ChangeInfo.Status", "PENDING" }, { "length(DelegationSet.NameServers)", 4 } } }),
    S("route53", "GetHostedZone", { Id = "${zone}" }, { check = {
      { "HostedZone.Config.Comment", "scenario" }, { "HostedZone.ResourceRecordSetCount", 2 },
      { "HostedZone.Config.PrivateZone", false } } }),
    S("route53", "CreateHostedZone", { Name = "scn.example-com.test", CallerReference = "scn-zone-1" },
      { error = "HostedZoneAlreadyExists" }),
    S("route53", "ChangeResourceRecordSets", { HostedZoneId = "${zone}", ChangeBatch = {
      Comment = "failover pair", Changes = {
        { Action = "CREATE", ResourceRecordSet = rr("primary", 100, "${dns_p}", "${zone_p}") },
        { Action = "CREATE", ResourceRecordSet = rr("standby", 0, "${dns_s}", "${zone_s}") } } } },
      { save = { change = "ChangeInfo.Id" }, check = { { "ChangeInfo.Status", "PENDING" },
        { "ChangeInfo.Comment", "failover pair" } } }),
    S("route53", "ResourceRecordSetsChanged", { Id = "${change}" }, { wait = true }),
    S("route53", "GetChange", { Id = "${change}" }, { check = { { "ChangeInfo.Status", "INSYNC" } } }),
    S("route53", "ListResourceRecordSets", { HostedZoneId = "${zone}", StartRecordName = "app.scn.example-com.test",
      StartRecordType = "A" }, { check = {
        { "ResourceRecordSets[?SetIdentifier=='primary'].Weight | [0]", 100 },
        { "ResourceRecordSets[?SetIdentifier=='standby'].Weight | [0]", 0 },
        { "ResourceRecordSets[?SetIdentifier=='primary'].AliasTarget.DNSName | [0]", "${dns_p}." },
        { "ResourceRecordSets[?SetIdentifier=='primary'].AliasTarget.HostedZoneId | [0]", M.ALB_ZONE[P] },
        { "ResourceRecordSets[?SetIdentifier=='standby'].AliasTarget.HostedZoneId | [0]", M.ALB_ZONE[B] },
        { "ResourceRecordSets[?SetIdentifier=='standby'].AliasTarget.EvaluateTargetHealth | [0]", true },
        { "ResourceRecordSets[0].Name", "app.scn.example-com.test." } } }),
    -- one record a page: NextRecordName, NextRecordType and NextRecordIdentifier (the
    -- weighted records share name and type) carry the reader through all four
    S("route53", "ListResourceRecordSets", { HostedZoneId = "${zone}" }, { page_size = 1, check = {
      { "ResourceRecordSets[*].Type", { "NS", "SOA", "A", "A" } },
      { "sort(ResourceRecordSets[?Type=='A'].SetIdentifier)", { "primary", "standby" } } } }),
    -- a weighted record without its SetIdentifier, a weight over 255 (the CLI lets both through)
    S("route53", "ChangeResourceRecordSets", { HostedZoneId = "${zone}", ChangeBatch = { Changes = {
      { Action = "CREATE", ResourceRecordSet = { Name = "x.scn.example-com.test", Type = "A", Weight = 10,
        TTL = 60, ResourceRecords = { { Value = "192.0.2.1" } } } } } } }, { error = "InvalidInput" }),
    S("route53", "ChangeResourceRecordSets", { HostedZoneId = "${zone}", ChangeBatch = { Changes = {
      { Action = "CREATE", ResourceRecordSet = rr("primary", 100, "${dns_p}", "${zone_p}") } } } },
      { error = "InvalidChangeBatch" }),
    S("route53", "DeleteHostedZone", { Id = "${zone}" }, { error = "HostedZoneNotEmpty" }),
    S("route53", "ChangeResourceRecordSets", { HostedZoneId = "${zone}", ChangeBatch = { Changes = {
      { Action = "DELETE", ResourceRecordSet = rr("primary", 100, "${dns_p}", "${zone_p}") },
      { Action = "DELETE", ResourceRecordSet = rr("standby", 0, "${dns_s}", "${zone_s}") } } } },
      { always = true }),
    S("route53", "DeleteHostedZone", { Id = "${zone}" }, { always = true,
      check = { { "ChangeInfo.Status", "PENDING" } } }),
    S("route53", "GetHostedZone", { Id = "${zone}" }, { error = "NoSuchHostedZone" }),
  }
  for _, s in ipairs(zone_steps) do steps[#steps + 1] = s end
  for i, region in ipairs({ P, B }) do
    local sfx = i == 1 and "p" or "s"
    steps[#steps + 1] = S("elbv2", "DeleteLoadBalancer", { LoadBalancerArn = "${lb_" .. sfx .. "}" },
      { always = true, region = region })
  end
  return steps
end)

scenario("route53_health_check", { global = true }, function()
  local config = { Type = "HTTP", FullyQualifiedDomainName = "primary.scn.example-com.test", Port = 80,
    ResourcePath = "/health", RequestInterval = 10, FailureThreshold = 3 }
  local bad, other = {}, {}
  for k, v in pairs(config) do bad[k], other[k] = v, v end
  bad.RequestInterval = 20
  other.RequestInterval = 30
  return {
    S("route53", "CreateHealthCheck", { CallerReference = "scn-hc-1", HealthCheckConfig = config },
      { save = { hc = "HealthCheck.Id" }, check = {
        { "HealthCheck.Id", M.match("^%x+%-%x+%-%x+%-%x+%-%x+$") },
        { "HealthCheck.HealthCheckConfig.RequestInterval", 10 },
        { "HealthCheck.HealthCheckConfig.FailureThreshold", 3 }, { "HealthCheck.HealthCheckVersion", 1 } } }),
    S("route53", "GetHealthCheck", { HealthCheckId = "${hc}" }, { check = {
      { "HealthCheck.HealthCheckConfig.Type", "HTTP" },
      { "HealthCheck.HealthCheckConfig.FullyQualifiedDomainName", "primary.scn.example-com.test" },
      { "HealthCheck.HealthCheckConfig.ResourcePath", "/health" },
      { "HealthCheck.HealthCheckConfig.Port", 80 }, { "HealthCheck.HealthCheckConfig.RequestInterval", 10 },
      { "HealthCheck.HealthCheckConfig.FailureThreshold", 3 }, { "HealthCheck.CallerReference", "scn-hc-1" } } }),
    -- 20 is within the model's 10..30, but Route 53 takes 10 or 30 only
    S("route53", "CreateHealthCheck", { CallerReference = "scn-hc-bad", HealthCheckConfig = bad },
      { error = "InvalidInput" }),
    -- the same CallerReference with another config
    S("route53", "CreateHealthCheck", { CallerReference = "scn-hc-1", HealthCheckConfig = other },
      { error = "HealthCheckAlreadyExists" }),
    S("route53", "UpdateHealthCheck", { HealthCheckId = "${hc}", FailureThreshold = 2 },
      { check = { { "HealthCheck.HealthCheckConfig.FailureThreshold", 2 }, { "HealthCheck.HealthCheckVersion", 2 } } }),
    S("route53", "DeleteHealthCheck", { HealthCheckId = "${hc}" }, { always = true }),
    S("route53", "GetHealthCheck", { HealthCheckId = "${hc}" }, { error = "NoSuchHealthCheck" }),
  }
end)

-- Authentication failures: per protocol, the code AWS answers (docs/simulator.md).
M.auth_cases = {
  { "sts", "GetCallerIdentity", {}, bad_secret = "SignatureDoesNotMatch", unknown_key = "InvalidClientTokenId" },
  { "ec2", "DescribeVpcs", {}, bad_secret = "SignatureDoesNotMatch", unknown_key = "AuthFailure" },
  { "iam", "ListRoles", {}, bad_secret = "SignatureDoesNotMatch", unknown_key = "InvalidClientTokenId" },
  { "dynamodb", "ListTables", {}, bad_secret = "InvalidSignatureException", unknown_key = "UnrecognizedClientException" },
  { "route53", "ListHostedZones", {}, bad_secret = "SignatureDoesNotMatch", unknown_key = "InvalidClientTokenId" },
  { "elbv2", "DescribeLoadBalancers", {}, bad_secret = "SignatureDoesNotMatch", unknown_key = "InvalidClientTokenId" },
}
M.UNKNOWN_KEY = "AKIAFOSIMUNKNOWN0001"

-- The engine ---------------------------------------------------------------------------

local function subst(v, vars)
  if type(v) == "string" then
    local whole = v:match("^%${([%w_@%-]+)}$")
    if whole and vars[whole] ~= nil then return vars[whole] end
    return (v:gsub("%${([%w_@%-]+)}", function(k)
      local x = vars[k]
      return x ~= nil and tostring(x) or nil
    end))
  elseif type(v) == "table" and getmetatable(v) == nil then
    local out = {}
    for k, x in pairs(v) do out[k] = subst(x, vars) end
    return out
  elseif type(v) == "table" and getmetatable(v) == MATCH then
    -- substituted values are literal text inside the pattern
    return M.match((v.pattern:gsub("%${([%w_@%-]+)}", function(k)
      local x = vars[k]
      return x ~= nil and (tostring(x):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) or nil
    end)))
  end
  return v
end
M.subst = subst

local function is_null(v) return v == nil or (type(v) == "userdata") end

local function equal(a, b)
  if is_null(a) and is_null(b) then return true end
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not equal(v, b[k]) then return false end end
  for k, v in pairs(b) do if not equal(a[k], v) then return false end end
  return true
end

local function show(v)
  if type(v) == "table" and getmetatable(v) == MATCH then return "match " .. v.pattern end
  if v == M.present then return "present" end
  if type(v) == "table" then
    local ok, s = pcall(require("cjson").encode, v)
    return ok and s or tostring(v)
  end
  if is_null(v) then return "null" end
  return ("%q"):format(v)
end
M.show = show

-- Does `got` satisfy `want`? Returns nil or a problem.
local function mismatch(want, got)
  if type(want) == "table" and getmetatable(want) == MATCH then
    if type(got) == "string" and got:match(want.pattern) then return nil end
  elseif want == M.present then
    if not is_null(got) then return nil end
  elseif equal(want, got) then
    return nil
  end
  return ("want %s, got %s"):format(show(want), show(got))
end

--- The step's checks and saves as one JMESPath multi-select hash (keys c1.., s_name) and
--- the key list; nil when the step has neither.
function M.query(step, vars)
  local parts, keys = {}, {}
  for i, c in ipairs(step.check or {}) do
    parts[#parts + 1] = ("c%d: %s"):format(i, subst(c[1], vars))
  end
  local names = {}
  for name in pairs(step.save or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    parts[#parts + 1] = ("s_%s: %s"):format(name, subst(step.save[name], vars))
    keys[#keys + 1] = name
  end
  if #parts == 0 then return nil end
  return "{" .. table.concat(parts, ", ") .. "}", keys
end

local function describe(step, region)
  return ("%s.%s%s in %s"):format(step[1], step[2], step.wait and " (waiter)" or "", region)
end

M.POLL_INTERVAL = 1 -- seconds between the calls of a `poll` step

--- Runs `scenario` with `runner` in ctx (M.context(region)). runner:call(region, service,
--- op, params, query) → true, value | false, err ({code=, message=, ...});
--- runner:wait(region, service, waiter, params) → true | false, err;
--- runner:error_problems(step, err) → list of extra problems with an expected error
--- (the CLI's exit code and text). Returns {problems = {...}, calls = n}.
function M.run(scenario, runner, ctx)
  local vars = {}
  for k, v in pairs(ctx) do vars[k] = v end
  local problems, failed, calls, pending = {}, false, 0, {}

  -- One step (with its polling); returns its problems (.fatal: later steps cannot run).
  local function run_step(step, region)
    local params = subst(step[3], vars)
    local query, save_keys = M.query(step, vars)
    local deadline = fo.now() + (step.poll or 0)
    local out
    repeat
      out = {}
      calls = calls + 1
      local ok, got
      if step.wait then
        ok, got = runner:wait(region, step[1], step[2], params)
      else
        ok, got = runner:call(region, step[1], step[2], params, query,
          { priority = scenario.priority, page_size = step.page_size })
      end
      if step.error then
        if ok then
          out[#out + 1] = ("want error %s, the call succeeded"):format(step.error)
        elseif got.code ~= step.error then
          out[#out + 1] = ("want error %s, got %s: %s"):format(step.error, tostring(got.code),
            tostring(got.message))
        else
          local want_msg = step.message and subst(step.message, vars)
          if want_msg and not tostring(got.message):find(want_msg, 1, true) then
            out[#out + 1] = ("error %s: message %q does not contain %q"):format(got.code,
              tostring(got.message), want_msg)
          end
          for _, p in ipairs(runner:error_problems(step, got) or {}) do out[#out + 1] = p end
        end
      elseif not ok then
        out[#out + 1] = ("failed: %s: %s"):format(tostring(got.code), tostring(got.message))
        out.fatal = true
      elseif query then
        got = type(got) == "table" and got or {}
        for ci, c in ipairs(step.check or {}) do
          local bad = mismatch(subst(c[2], vars), got["c" .. ci])
          if bad then out[#out + 1] = ("%s: %s"):format(subst(c[1], vars), bad) end
        end
        for _, name in ipairs(save_keys) do
          local v = got["s_" .. name]
          if is_null(v) then
            out[#out + 1] = ("nothing to save as %s at %s"):format(name, step.save[name])
            out.fatal = true
          else
            vars[name] = v
          end
        end
      end
      if #out == 0 or not step.poll or fo.now() >= deadline then break end
      fo.sleep(M.POLL_INTERVAL)
    until false
    return out
  end

  local function record(step, region, out)
    -- after a failure, cleanup is best effort: its problems are not the scenario's
    if not failed then
      for _, p in ipairs(out) do
        problems[#problems + 1] = ("step %d %s: %s"):format(step.index, describe(step, region), p)
      end
    end
    if out.fatal then failed = true end
  end

  for i, step in ipairs(scenario.build(ctx)) do
    step.index = i
    if step.rename then
      for from, to in pairs(step.rename) do vars[to], vars[from] = vars[from], nil end
    elseif step.join then
      local p = pending[step.join]
      if p then
        pending[step.join] = nil
        record(p.step, p.region, p.task:join())
      end
    elseif not failed or step.always then
      local region = subst(step.region or ctx.region, vars)
      if step.async then
        -- runs meanwhile (a waiter that sleeps between its polls); {join = name} ends it
        pending[step.async] = { step = step, region = region, task = fo.spawn(run_step, step, region) }
      else
        record(step, region, run_step(step, region))
      end
    end
  end
  for _, p in pairs(pending) do p.task:wait() end
  return { problems = problems, calls = calls, vars = vars, failed = failed, ended = fo.now() }
end

--- Starts every scenario in each of its regions (global ones in us-east-1) at once, with
--- `runner`; those with `fixture` once the regions' networks exist, which go when they
--- end. Returns {[scenario name] = {{region=, task=}...}}: each task's join gives
--- {problems=, calls=}. opts.only: a set of scenario names to run.
function M.start_all(runner, opts)
  opts = opts or {}
  local fixtures = {}
  local function wanted(s) return not opts.only or opts.only[s.name] end
  local need_fixture = false
  for _, s in ipairs(M.scenarios) do if s.fixture and wanted(s) then need_fixture = true end end
  if need_fixture then
    for _, region in ipairs(M.REGIONS) do
      fixtures[region] = fo.spawn(M.run, { name = "network", build = M.fixture.build }, runner,
        M.context(region))
    end
  end
  -- the fixture variables of every region, or raises what went wrong building them
  local function fixture_vars(region)
    local ctx, trouble = M.context(region), {}
    for _, r in ipairs(M.REGIONS) do
      local res = fixtures[r]:join()
      for _, p in ipairs(res.problems) do trouble[#trouble + 1] = "network fixture " .. p end
      for _, k in ipairs(M.fixture.vars) do
        ctx[k .. "@" .. r] = res.vars[k]
        if r == region then ctx[k] = res.vars[k] end
      end
    end
    if #trouble > 0 then error(table.concat(trouble, "\n"), 0) end
    return ctx
  end
  -- VPCs in use per region: the default VPC (every region has one, and it counts against
  -- the quota), the shared network's and those of running `vpc` scenarios
  local vpcs = {}
  for _, region in ipairs(M.REGIONS) do vpcs[region] = need_fixture and 2 or 1 end
  local runs, dependents = {}, {}
  for _, s in ipairs(M.scenarios) do
    if wanted(s) then
      runs[s.name] = {}
      for _, region in ipairs(s.global and { "us-east-1" } or M.REGIONS) do
        local task = fo.spawn(function()
          local ctx = s.fixture and fixture_vars(region) or M.context(region)
          if not s.vpc then return M.run(s, runner, ctx) end
          while vpcs[region] >= M.VPC_QUOTA do fo.sleep(0.05) end
          vpcs[region] = vpcs[region] + 1
          local ok, res = pcall(M.run, s, runner, ctx)
          vpcs[region] = vpcs[region] - 1
          if not ok then error(res, 0) end
          return res
        end)
        table.insert(runs[s.name], { region = region, task = task })
        if s.fixture then dependents[#dependents + 1] = task end
      end
    end
  end
  if need_fixture then
    local teardown = fo.spawn(function()
      for _, task in ipairs(dependents) do task:wait() end
      local out = {}
      for _, region in ipairs(M.REGIONS) do
        local built = fixtures[region]:join()
        out[#out + 1] = fo.spawn(M.run, { name = "network teardown", build = M.fixture.teardown },
          runner, built.vars)
      end
      local problems = {}
      for _, task in ipairs(out) do
        for _, p in ipairs(task:join().problems) do problems[#problems + 1] = p end
      end
      return { problems = problems, calls = 0 }
    end)
    runs["network fixture teardown"] = { { region = "all", task = teardown } }
  end
  return runs
end

--- Adds to `suite` (a LuaUnit test table) a test_<name> per scenario and
--- test_ec2_shared_network_teardown (the network shared by the load balancer, listener,
--- Auto Scaling and Route 53 scenarios goes once they are done), each joining its runs
--- of `runs` (M.start_all's) and failing with their problems in every region.
function M.add_tests(suite, runs)
  local lu = require "luaunit"
  local function check(name)
    local problems = {}
    for _, r in ipairs(runs[name]) do
      local ok, res = pcall(r.task.join, r.task)
      if not ok then
        problems[#problems + 1] = r.region .. ": " .. tostring(res)
      else
        for _, p in ipairs(res.problems) do problems[#problems + 1] = p end
      end
    end
    if #problems > 0 then
      lu.fail(("%s: %d problem(s)\n  %s"):format(name, #problems, table.concat(problems, "\n  ")))
    end
  end
  for _, s in ipairs(M.scenarios) do
    suite["test_" .. s.name] = function() check(s.name) end
  end
  suite.test_ec2_shared_network_teardown = function() check("network fixture teardown") end
end

return M
