-- The simulator's default VPC and the instance operations operators use beside Auto
-- Scaling: RunInstances, TerminateInstances and what DescribeInstances tells of an
-- instance (its network interface, volumes, tags, placement, metadata options).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local amis = require "fo.sim.amis"

local REGION = "eu-south-1"
local AMI = amis.al2(REGION)

local function setup(opts)
  local sim = simlib.new(opts or { seed = 21 })
  return sim, sim:client("ec2", { region = REGION, max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertEquals(type(e), "table", tostring(e))
  return e
end

local function code_of(fn, ...) return err_of(fn, ...).code end

local function tag(list, key)
  for _, t in ipairs(list or {}) do if t.Key == key then return t.Value end end
  return nil
end

local function default_vpc(ec2)
  return ec2:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "true" } } } }.Vpcs[1]
end

local function one(ec2, id)
  local r = ec2:DescribeInstances{ InstanceIds = { id } }.Reservations
  lu.assertEquals(#r, 1)
  return r[1].Instances[1]
end

TestDefaultVpc = {}

function TestDefaultVpc.test_every_region_has_its_default_vpc()
  local _, ec2 = setup()
  local vpcs = ec2:DescribeVpcs{}.Vpcs
  lu.assertEquals(#vpcs, 1)
  local v = vpcs[1]
  lu.assertTrue(v.IsDefault)
  lu.assertEquals(v.CidrBlock, "172.31.0.0/16")
  lu.assertEquals(v.Tags, nil, "AWS's default VPC carries no tags (fo never owns it)")
  local attrs = ec2:DescribeAccountAttributes{ AttributeNames = { "default-vpc" } }.AccountAttributes
  lu.assertEquals(attrs, { { AttributeName = "default-vpc",
    AttributeValues = { { AttributeValue = v.VpcId } } } })
  lu.assertEquals(#ec2:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "false" } } } }
    .Vpcs, 0)
  -- one default subnet per AZ, /20 blocks in AZ order, mapping public addresses
  local subnets = ec2:DescribeSubnets{ Filters = { { Name = "default-for-az",
    Values = { "true" } } } }.Subnets
  local azs = ec2:DescribeAvailabilityZones{}.AvailabilityZones
  lu.assertEquals(#subnets, #azs)
  for i, s in ipairs(subnets) do
    lu.assertEquals(s.VpcId, v.VpcId)
    lu.assertEquals(s.CidrBlock, ("172.31.%d.0/20"):format((i - 1) * 16))
    lu.assertEquals(s.AvailabilityZone, azs[i].ZoneName)
    lu.assertTrue(s.DefaultForAz)
    lu.assertTrue(s.MapPublicIpOnLaunch)
    lu.assertEquals(s.AvailableIpAddressCount, 4096 - 5)
  end
  -- an attached internet gateway, and the main route table's default route to it
  local igws = ec2:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
    Values = { v.VpcId } } } }.InternetGateways
  lu.assertEquals(#igws, 1)
  local rts = ec2:DescribeRouteTables{ Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
    .RouteTables
  lu.assertEquals(#rts, 1)
  lu.assertTrue(rts[1].Associations[1].Main)
  local default_route
  for _, r in ipairs(rts[1].Routes) do
    if r.DestinationCidrBlock == "0.0.0.0/0" then default_route = r end
  end
  lu.assertEquals(default_route.GatewayId, igws[1].InternetGatewayId)
  lu.assertEquals(default_route.State, "active")
  -- the default security group, network ACL and DHCP options
  local sgs = ec2:DescribeSecurityGroups{ Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
    .SecurityGroups
  lu.assertEquals(#sgs, 1)
  lu.assertEquals(sgs[1].GroupName, "default")
  local acls = ec2:DescribeNetworkAcls{ Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
    .NetworkAcls
  lu.assertEquals(#acls, 1)
  lu.assertTrue(acls[1].IsDefault)
  lu.assertEquals(#acls[1].Associations, #azs)
  local dhcp = ec2:DescribeDhcpOptions{ DhcpOptionsIds = { v.DhcpOptionsId } }.DhcpOptions
  lu.assertEquals(#dhcp, 1)
  lu.assertEquals(dhcp[1].DhcpConfigurations[1], { Key = "domain-name",
    Values = { { Value = REGION .. ".compute.internal" } } })
end

function TestDefaultVpc.test_ids_are_stable_per_seed_and_leave_other_ids_alone()
  local _, a = setup{ seed = 5 }
  local _, b = setup{ seed = 5 }
  local _, c = setup{ seed = 6 }
  lu.assertEquals(default_vpc(a).VpcId, default_vpc(b).VpcId)
  lu.assertNotEquals(default_vpc(a).VpcId, default_vpc(c).VpcId)
  -- the same seed gives the same ids whether the default VPC was looked at first or not
  local sim1 = simlib.new{ seed = 9 }
  local sim2 = simlib.new{ seed = 9 }
  local x = sim1:client("ec2", { region = REGION, max_attempts = 1 })
  local y = sim2:client("ec2", { region = REGION, max_attempts = 1 })
  default_vpc(x)
  sim2:client("ec2", { region = "eu-west-1", max_attempts = 1 }):DescribeVpcs{}
  lu.assertEquals(x:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId,
    y:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId)
end

function TestDefaultVpc.test_counts_against_the_vpc_quota()
  local _, ec2 = setup()
  for i = 1, 4 do ec2:CreateVpc{ CidrBlock = ("10.%d.0.0/16"):format(i) } end
  lu.assertEquals(code_of(ec2.CreateVpc, ec2, { CidrBlock = "10.9.0.0/16" }), "VpcLimitExceeded")
end

function TestDefaultVpc.test_security_group_without_vpc_goes_to_the_default_vpc()
  local _, ec2 = setup()
  local g = ec2:CreateSecurityGroup{ GroupName = "web", Description = "web" }.GroupId
  local got = ec2:DescribeSecurityGroups{ GroupIds = { g } }.SecurityGroups[1]
  lu.assertEquals(got.VpcId, default_vpc(ec2).VpcId)
  ec2:DeleteSecurityGroup{ GroupName = "web" }
  lu.assertEquals(code_of(ec2.DescribeSecurityGroups, ec2, { GroupIds = { g } }),
    "InvalidGroup.NotFound")
end

function TestDefaultVpc.test_delete_as_on_aws()
  local _, ec2 = setup()
  local v = default_vpc(ec2)
  local e = err_of(ec2.DeleteVpc, ec2, { VpcId = v.VpcId })
  lu.assertEquals(e.code, "DependencyViolation")
  for _, s in ipairs(ec2:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
      .Subnets) do
    ec2:DeleteSubnet{ SubnetId = s.SubnetId }
  end
  lu.assertEquals(code_of(ec2.DeleteVpc, ec2, { VpcId = v.VpcId }), "DependencyViolation")
  local igw = ec2:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
    Values = { v.VpcId } } } }.InternetGateways[1].InternetGatewayId
  ec2:DetachInternetGateway{ InternetGatewayId = igw, VpcId = v.VpcId }
  ec2:DeleteInternetGateway{ InternetGatewayId = igw }
  ec2:DeleteVpc{ VpcId = v.VpcId }
  lu.assertEquals(ec2:DescribeVpcs{}.Vpcs, {})
  lu.assertEquals(ec2:DescribeAccountAttributes{ AttributeNames = { "default-vpc" } }
    .AccountAttributes[1].AttributeValues[1].AttributeValue, "none")
  -- without it, an instance needs a subnet and a group a VPC
  lu.assertEquals(code_of(ec2.RunInstances, ec2, { ImageId = AMI, MinCount = 1, MaxCount = 1 }),
    "VPCIdNotSpecified")
  lu.assertEquals(code_of(ec2.CreateSecurityGroup, ec2, { GroupName = "x", Description = "x" }),
    "VPCIdNotSpecified")
end

TestRunInstances = {}

function TestRunInstances.test_default_subnet_pending_then_running()
  local sim, ec2 = setup()
  local v = default_vpc(ec2)
  local r = ec2:RunInstances{ ImageId = AMI, InstanceType = "t3.micro", MinCount = 2, MaxCount = 2,
    Placement = { AvailabilityZone = REGION .. "b" } }
  lu.assertStrMatches(r.ReservationId, "r%-" .. ("%x"):rep(17))
  lu.assertEquals(#r.Instances, 2)
  for i, inst in ipairs(r.Instances) do
    lu.assertEquals(inst.AmiLaunchIndex, i - 1)
    lu.assertEquals(inst.State, { Code = 0, Name = "pending" })
    lu.assertEquals(inst.VpcId, v.VpcId)
    lu.assertEquals(inst.Placement.AvailabilityZone, REGION .. "b")
    lu.assertEquals(inst.InstanceType, "t3.micro")
    -- in 172.31.16.0/20, AZ b's default subnet
    local third = tonumber(inst.PrivateIpAddress:match("^172%.31%.(%d+)%.%d+$"))
    lu.assertTrue(third >= 16 and third < 32, inst.PrivateIpAddress)
    lu.assertNotNil(inst.PublicIpAddress, "default subnets map public addresses")
    lu.assertEquals(inst.SecurityGroups[1].GroupName, "default")
  end
  lu.assertNotEquals(r.Instances[1].PrivateIpAddress, r.Instances[2].PrivateIpAddress)
  -- one reservation in DescribeInstances too
  local res = ec2:DescribeInstances{}.Reservations
  lu.assertEquals(#res, 1)
  lu.assertEquals(res[1].ReservationId, r.ReservationId)
  lu.assertEquals(#res[1].Instances, 2)
  sim:advance(10)
  lu.assertEquals(one(ec2, r.Instances[1].InstanceId).State, { Code = 16, Name = "running" })
  -- no Placement: the default subnet of the region's first AZ
  local x = ec2:RunInstances{ ImageId = AMI, MinCount = 1, MaxCount = 1 }.Instances[1]
  lu.assertEquals(x.Placement.AvailabilityZone, REGION .. "a")
  lu.assertEquals(x.InstanceType, "m1.small")
end

function TestRunInstances.test_validation()
  local _, ec2 = setup()
  local function run(p)
    p.ImageId = p.ImageId or AMI
    p.MinCount = p.MinCount or 1
    p.MaxCount = p.MaxCount or 1
    return err_of(ec2.RunInstances, ec2, p)
  end
  lu.assertEquals(run{ ImageId = "ami-0123456789abcdef0" }.code, "InvalidAMIID.NotFound")
  lu.assertEquals(run{ ImageId = "image-1" }.code, "InvalidAMIID.Malformed")
  lu.assertEquals(run{ MinCount = 2, MaxCount = 1 }.code, "InvalidParameterValue")
  lu.assertEquals(run{ MinCount = 0 }.code, "InvalidParameterValue")
  lu.assertEquals(run{ MaxCount = 0 }.message, "Maximum instance count must be greater than zero")
  lu.assertEquals(run{ SubnetId = "subnet-0123456789abcdef0" }.code, "InvalidSubnetID.NotFound")
  -- a group of another VPC
  local vpc = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local other = ec2:CreateSecurityGroup{ GroupName = "o", Description = "o", VpcId = vpc }.GroupId
  local e = run{ SecurityGroupIds = { other } }
  lu.assertEquals(e.code, "InvalidParameter")
  lu.assertStrContains(e.message, "belong to different networks")
  lu.assertEquals(run{ SecurityGroupIds = { "sg-0123456789abcdef0" } }.code, "InvalidGroup.NotFound")
  lu.assertEquals(run{ SubnetId = default_vpc and nil, NetworkInterfaces = { { DeviceIndex = 0,
    SubnetId = "subnet-0123456789abcdef0" } }, SecurityGroupIds = { other } }.code,
    "InvalidParameterCombination")
  lu.assertEquals(run{ MetadataOptions = { HttpPutResponseHopLimit = 65 } }.code,
    "InvalidParameterValue")
  lu.assertEquals(run{ UserData = "not base64!" }.code, "InvalidUserData.Malformed")
  lu.assertEquals(run{ BlockDeviceMappings = { { DeviceName = "/dev/xvda",
    Ebs = { VolumeSize = 4 } } } }.code, "InvalidBlockDeviceMapping")
  lu.assertEquals(run{ IamInstanceProfile = { Name = "nope" } }.code, "InvalidParameterValue")
  lu.assertEquals(run{ TagSpecifications = { { ResourceType = "vpc",
    Tags = { { Key = "a", Value = "b" } } } } }.code, "InvalidParameterValue")
  lu.assertEquals(run{ LaunchTemplate = { LaunchTemplateName = "nope" } }.code,
    "InvalidLaunchTemplateName.NotFoundException")
  local dry = run{ DryRun = true }
  lu.assertEquals(dry.code, "DryRunOperation")
  lu.assertEquals(dry.status, 412)
  lu.assertEquals(ec2:DescribeInstances{}.Reservations, {}, "nothing was launched")
end

function TestRunInstances.test_subnet_groups_devices_metadata_profile()
  local sim, ec2 = setup()
  local iam = sim:client("iam", { region = REGION, max_attempts = 1 })
  iam:CreateInstanceProfile{ InstanceProfileName = "app" }
  sim:advance(10)
  local vpc = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local subnet = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.0.1.0/24",
    AvailabilityZone = REGION .. "c" }.Subnet.SubnetId
  local g = ec2:CreateSecurityGroup{ GroupName = "app", Description = "app", VpcId = vpc }.GroupId
  local user_data = require("fo.crypto").base64_encode("#!/bin/sh\necho hi\n")
  local inst = ec2:RunInstances{ ImageId = AMI, InstanceType = "t3.small", MinCount = 1,
    MaxCount = 1, SubnetId = subnet, SecurityGroupIds = { g }, UserData = user_data,
    MetadataOptions = { HttpTokens = "required", HttpPutResponseHopLimit = 2 },
    IamInstanceProfile = { Name = "app" }, KeyName = "ops",
    BlockDeviceMappings = {
      { DeviceName = "/dev/xvda", Ebs = { VolumeSize = 20, VolumeType = "gp3", Encrypted = true } },
      { DeviceName = "/dev/sdf", Ebs = { VolumeSize = 50, DeleteOnTermination = false } } },
    TagSpecifications = {
      { ResourceType = "instance", Tags = { { Key = "Name", Value = "app-1" } } },
      { ResourceType = "volume", Tags = { { Key = "Backup", Value = "yes" } } } } }.Instances[1]
  sim:advance(10)
  local d = one(ec2, inst.InstanceId)
  lu.assertEquals(d.SubnetId, subnet)
  lu.assertEquals(d.VpcId, vpc)
  lu.assertEquals(d.Placement.AvailabilityZone, REGION .. "c")
  lu.assertEquals(d.PublicIpAddress, nil, "a new subnet maps no public address")
  lu.assertStrMatches(d.PrivateIpAddress, "10%.0%.1%.%d+")
  lu.assertEquals(d.SecurityGroups, { { GroupId = g, GroupName = "app" } })
  lu.assertEquals(d.KeyName, "ops")
  lu.assertEquals(d.MetadataOptions.HttpTokens, "required")
  lu.assertEquals(d.MetadataOptions.HttpPutResponseHopLimit, 2)
  lu.assertEquals(d.MetadataOptions.State, "applied")
  lu.assertStrContains(d.IamInstanceProfile.Arn, ":instance-profile/app")
  lu.assertStrMatches(d.IamInstanceProfile.Id, "AIPA.+")
  lu.assertEquals(tag(d.Tags, "Name"), "app-1")
  lu.assertEquals(d.RootDeviceName, "/dev/xvda")
  lu.assertEquals(d.RootDeviceType, "ebs")
  -- the network interface
  lu.assertEquals(#d.NetworkInterfaces, 1)
  local ni = d.NetworkInterfaces[1]
  lu.assertStrMatches(ni.NetworkInterfaceId, "eni%-" .. ("%x"):rep(17))
  lu.assertEquals(ni.SubnetId, subnet)
  lu.assertEquals(ni.VpcId, vpc)
  lu.assertEquals(ni.PrivateIpAddress, d.PrivateIpAddress)
  lu.assertEquals(ni.Groups, { { GroupId = g, GroupName = "app" } })
  lu.assertStrMatches(ni.MacAddress, "%x%x:%x%x:%x%x:%x%x:%x%x:%x%x")
  lu.assertEquals(ni.Attachment.DeviceIndex, 0)
  lu.assertEquals(ni.Attachment.Status, "attached")
  lu.assertStrMatches(ni.Attachment.AttachmentId, "eni%-attach%-%x+")
  -- the volumes
  lu.assertEquals(#d.BlockDeviceMappings, 2)
  lu.assertEquals(d.BlockDeviceMappings[1].DeviceName, "/dev/xvda")
  lu.assertTrue(d.BlockDeviceMappings[1].Ebs.DeleteOnTermination)
  lu.assertEquals(d.BlockDeviceMappings[1].Ebs.Status, "attached")
  lu.assertStrMatches(d.BlockDeviceMappings[1].Ebs.VolumeId, "vol%-" .. ("%x"):rep(17))
  lu.assertEquals(d.BlockDeviceMappings[2].DeviceName, "/dev/sdf")
  lu.assertFalse(d.BlockDeviceMappings[2].Ebs.DeleteOnTermination)
  -- filters
  local function ids(filters)
    local out = {}
    for _, r in ipairs(ec2:DescribeInstances{ Filters = filters }.Reservations) do
      for _, i in ipairs(r.Instances) do out[#out + 1] = i.InstanceId end
    end
    return out
  end
  lu.assertEquals(ids{ { Name = "subnet-id", Values = { subnet } } }, { inst.InstanceId })
  lu.assertEquals(ids{ { Name = "vpc-id", Values = { vpc } } }, { inst.InstanceId })
  lu.assertEquals(ids{ { Name = "tag:Name", Values = { "app-*" } } }, { inst.InstanceId })
  lu.assertEquals(ids{ { Name = "instance-state-name", Values = { "running" } } }, { inst.InstanceId })
  lu.assertEquals(ids{ { Name = "instance-state-name", Values = { "pending" } } }, {})
  lu.assertEquals(ids{ { Name = "instance-id", Values = { inst.InstanceId } } }, { inst.InstanceId })
  lu.assertEquals(ids{ { Name = "block-device-mapping.volume-id",
    Values = { d.BlockDeviceMappings[2].Ebs.VolumeId } } }, { inst.InstanceId })
end

function TestRunInstances.test_launch_template()
  local sim, ec2 = setup()
  local lt = ec2:CreateLaunchTemplate{ LaunchTemplateName = "web", LaunchTemplateData = {
    ImageId = AMI, InstanceType = "t3.micro", MetadataOptions = { HttpTokens = "required" },
    TagSpecifications = { { ResourceType = "instance", Tags = {
      { Key = "Role", Value = "web" }, { Key = "Name", Value = "from-template" } } } } } }
    .LaunchTemplate
  ec2:CreateLaunchTemplateVersion{ LaunchTemplateId = lt.LaunchTemplateId, SourceVersion = "1",
    LaunchTemplateData = { InstanceType = "t3.large" } }
  local function launch(spec, extra)
    local p = { MinCount = 1, MaxCount = 1, LaunchTemplate = spec }
    for k, v in pairs(extra or {}) do p[k] = v end
    return ec2:RunInstances(p).Instances[1]
  end
  local a = launch{ LaunchTemplateId = lt.LaunchTemplateId } -- $Default = 1
  local b = launch{ LaunchTemplateName = "web", Version = "$Latest" }
  local c = launch({ LaunchTemplateName = "web", Version = "1" }, { InstanceType = "t3.nano",
    TagSpecifications = { { ResourceType = "instance", Tags = { { Key = "Name", Value = "mine" } } } } })
  sim:advance(10)
  a, b, c = one(ec2, a.InstanceId), one(ec2, b.InstanceId), one(ec2, c.InstanceId)
  lu.assertEquals(a.InstanceType, "t3.micro")
  lu.assertEquals(b.InstanceType, "t3.large")
  lu.assertEquals(c.InstanceType, "t3.nano", "the request's members override the template's")
  lu.assertEquals(a.MetadataOptions.HttpTokens, "required")
  lu.assertEquals(tag(a.Tags, "Role"), "web")
  lu.assertEquals(tag(a.Tags, "Name"), "from-template")
  lu.assertEquals(tag(c.Tags, "Name"), "mine")
  lu.assertEquals(tag(c.Tags, "Role"), "web")
  lu.assertEquals(tag(a.Tags, "aws:ec2launchtemplate:id"), lt.LaunchTemplateId)
  lu.assertEquals(tag(a.Tags, "aws:ec2launchtemplate:version"), "1")
  lu.assertEquals(tag(b.Tags, "aws:ec2launchtemplate:version"), "2")
  lu.assertEquals(code_of(ec2.RunInstances, ec2, { MinCount = 1, MaxCount = 1,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplateId, Version = "7" } }),
    "InvalidLaunchTemplateId.VersionNotFound")
end

function TestRunInstances.test_network_interface_group_names_and_dependencies()
  local sim, ec2 = setup()
  local vpc = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local subnet = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.0.1.0/24" }.Subnet.SubnetId
  local g = ec2:CreateSecurityGroup{ GroupName = "app", Description = "app", VpcId = vpc }.GroupId
  local inst = ec2:RunInstances{ ImageId = AMI, MinCount = 1, MaxCount = 1,
    NetworkInterfaces = { { DeviceIndex = 0, SubnetId = subnet, Groups = { g },
      AssociatePublicIpAddress = true, PrivateIpAddress = "10.0.1.50" } } }.Instances[1]
  lu.assertEquals(inst.SubnetId, subnet)
  lu.assertEquals(inst.PrivateIpAddress, "10.0.1.50")
  lu.assertNotNil(inst.PublicIpAddress, "AssociatePublicIpAddress")
  lu.assertEquals(inst.SecurityGroups[1].GroupId, g)
  -- the subnet and the group are in use while the instance lives
  lu.assertEquals(code_of(ec2.DeleteSubnet, ec2, { SubnetId = subnet }), "DependencyViolation")
  lu.assertEquals(code_of(ec2.DeleteSecurityGroup, ec2, { GroupId = g }), "DependencyViolation")
  -- tags set later show
  ec2:CreateTags{ Resources = { inst.InstanceId }, Tags = { { Key = "Owner", Value = "ops" } } }
  lu.assertEquals(tag(one(ec2, inst.InstanceId).Tags, "Owner"), "ops")
  ec2:TerminateInstances{ InstanceIds = { inst.InstanceId } }
  sim:advance(10)
  ec2:DeleteSecurityGroup{ GroupId = g }
  ec2:DeleteSubnet{ SubnetId = subnet }
  -- groups by name: those of the default VPC
  local web = ec2:CreateSecurityGroup{ GroupName = "web", Description = "web" }.GroupId
  local w = ec2:RunInstances{ ImageId = AMI, MinCount = 1, MaxCount = 1,
    SecurityGroups = { "web" } }.Instances[1]
  lu.assertEquals(w.SecurityGroups, { { GroupId = web, GroupName = "web" } })
  lu.assertEquals(code_of(ec2.RunInstances, ec2, { ImageId = AMI, MinCount = 1, MaxCount = 1,
    SecurityGroups = { "app" } }), "InvalidGroup.NotFound")
end

function TestRunInstances.test_client_token_idempotency()
  local _, ec2 = setup()
  local p = { ImageId = AMI, MinCount = 1, MaxCount = 2, ClientToken = "tok-1" }
  local r1 = ec2:RunInstances(p)
  local r2 = ec2:RunInstances(p)
  lu.assertEquals(r2.ReservationId, r1.ReservationId)
  lu.assertEquals(r2.Instances[1].InstanceId, r1.Instances[1].InstanceId)
  lu.assertEquals(#ec2:DescribeInstances{}.Reservations, 1)
  lu.assertEquals(r1.Instances[1].ClientToken, "tok-1")
  lu.assertEquals(code_of(ec2.RunInstances, ec2, { ImageId = AMI, MinCount = 1, MaxCount = 1,
    ClientToken = "tok-1" }), "IdempotentParameterMismatch")
end

function TestRunInstances.test_terminate()
  local sim, ec2 = setup()
  local ids = {}
  for _, i in ipairs(ec2:RunInstances{ ImageId = AMI, MinCount = 2, MaxCount = 2 }.Instances) do
    ids[#ids + 1] = i.InstanceId
  end
  sim:advance(10)
  local t = ec2:TerminateInstances{ InstanceIds = { ids[1] } }.TerminatingInstances
  lu.assertEquals(t, { { InstanceId = ids[1], PreviousState = { Code = 16, Name = "running" },
    CurrentState = { Code = 32, Name = "shutting-down" } } })
  lu.assertEquals(one(ec2, ids[1]).State.Name, "shutting-down")
  sim:advance(10)
  local gone = one(ec2, ids[1])
  lu.assertEquals(gone.State, { Code = 48, Name = "terminated" })
  lu.assertEquals(gone.NetworkInterfaces, {})
  lu.assertEquals(gone.BlockDeviceMappings, {})
  lu.assertEquals(gone.PublicIpAddress, nil)
  lu.assertEquals({ gone.SubnetId, gone.VpcId, gone.PrivateIpAddress }, {})
  lu.assertEquals(gone.SecurityGroups, {})
  t = ec2:TerminateInstances{ InstanceIds = { ids[1] } }.TerminatingInstances
  lu.assertEquals(t[1].PreviousState.Name, "terminated")
  lu.assertEquals(t[1].CurrentState.Name, "terminated")
  lu.assertEquals(code_of(ec2.TerminateInstances, ec2, { InstanceIds = { "i-0123456789abcdef0" } }),
    "InvalidInstanceID.NotFound")
  lu.assertEquals(code_of(ec2.TerminateInstances, ec2, { InstanceIds = { "web-1" } }),
    "InvalidInstanceID.Malformed")
  lu.assertEquals(code_of(ec2.DescribeInstances, ec2, { InstanceIds = { "web-1" } }),
    "InvalidInstanceID.Malformed")
  -- terminated instances stay listed for a while (an hour), then are forgotten
  sim:advance(1800)
  lu.assertEquals(#ec2:DescribeInstances{ Filters = { { Name = "instance-state-name",
    Values = { "terminated" } } } }.Reservations, 1)
  sim:advance(3600)
  lu.assertEquals(code_of(ec2.DescribeInstances, ec2, { InstanceIds = { ids[1] } }),
    "InvalidInstanceID.NotFound")
  lu.assertEquals(one(ec2, ids[2]).State.Name, "running")
  -- DisableApiTermination protects an instance
  local p = ec2:RunInstances{ ImageId = AMI, MinCount = 1, MaxCount = 1,
    DisableApiTermination = true }.Instances[1].InstanceId
  lu.assertEquals(code_of(ec2.TerminateInstances, ec2, { InstanceIds = { p } }),
    "OperationNotPermitted")
end

function TestRunInstances.test_terminating_an_asg_instance_gets_it_replaced()
  local sim, ec2 = setup()
  local subnet = ec2:DescribeSubnets{ Filters = { { Name = "default-for-az",
    Values = { "true" } } } }.Subnets[1].SubnetId
  local lt = ec2:CreateLaunchTemplate{ LaunchTemplateName = "app", LaunchTemplateData = {
    ImageId = AMI, InstanceType = "t3.micro" } }.LaunchTemplate
  sim:invoke("autoscaling", REGION, "CreateAutoScalingGroup", { AutoScalingGroupName = "asg",
    MinSize = 1, MaxSize = 3, DesiredCapacity = 1, VPCZoneIdentifier = subnet,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplateId, Version = "$Latest" } })
  local first = ec2:DescribeInstances{}.Reservations[1].Instances[1]
  lu.assertEquals(tag(first.Tags, "aws:autoscaling:groupName"), "asg")
  lu.assertEquals(tag(first.Tags, "aws:ec2launchtemplate:id"), lt.LaunchTemplateId)
  lu.assertEquals(tag(first.Tags, "aws:ec2launchtemplate:version"), "1")
  lu.assertEquals(#first.NetworkInterfaces, 1)
  lu.assertEquals(first.BlockDeviceMappings[1].DeviceName, "/dev/xvda")
  local t = ec2:TerminateInstances{ InstanceIds = { first.InstanceId } }.TerminatingInstances[1]
  lu.assertEquals(t.CurrentState.Name, "shutting-down")
  local running = ec2:DescribeInstances{ Filters = { { Name = "instance-state-name",
    Values = { "pending", "running" } } } }.Reservations
  lu.assertEquals(#running, 1, "the group launched a replacement")
  lu.assertNotEquals(running[1].Instances[1].InstanceId, first.InstanceId)
  sim:advance(10)
  lu.assertEquals(one(ec2, first.InstanceId).State.Name, "terminated")
  local acts = sim:invoke("autoscaling", REGION, "DescribeScalingActivities",
    { AutoScalingGroupName = "asg" }).Activities
  local found = false
  for _, a in ipairs(acts) do
    if a.Description == "Terminating EC2 instance: " .. first.InstanceId then found = true end
  end
  lu.assertTrue(found)
end

-- What an Auto Scaling instance is tagged with: the template's instance tags, the group's
-- propagated tags over them (same key: the group's, as AWS documents); its volumes and
-- network interface carry the template's volume / network-interface tags only (Auto
-- Scaling never propagates to volumes), read through DescribeVolumes and
-- DescribeNetworkInterfaces.
function TestRunInstances.test_asg_instance_volume_and_interface_tags()
  local sim, ec2 = setup()
  local subnet = ec2:DescribeSubnets{ Filters = { { Name = "default-for-az",
    Values = { "true" } } } }.Subnets[1].SubnetId
  local function spec(rtype, name)
    return { ResourceType = rtype, Tags = { { Key = "Name", Value = name },
      { Key = "Env", Value = "prod" } } }
  end
  local lt = ec2:CreateLaunchTemplate{ LaunchTemplateName = "tagged", LaunchTemplateData = {
    ImageId = AMI, InstanceType = "t3.micro", TagSpecifications = { spec("instance", "from-lt"),
      spec("volume", "vol-name"), spec("network-interface", "eni-name") } } }.LaunchTemplate
  sim:invoke("autoscaling", REGION, "CreateAutoScalingGroup", { AutoScalingGroupName = "asg",
    MinSize = 1, MaxSize = 1, DesiredCapacity = 1, VPCZoneIdentifier = subnet,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplateId, Version = "1" },
    Tags = { { Key = "Name", Value = "from-asg", PropagateAtLaunch = true },
      { Key = "Team", Value = "t", PropagateAtLaunch = true } } })
  local i = ec2:DescribeInstances{}.Reservations[1].Instances[1]
  lu.assertEquals({ tag(i.Tags, "Name"), tag(i.Tags, "Env"), tag(i.Tags, "Team") },
    { "from-asg", "prod", "t" })
  local vols = ec2:DescribeVolumes{ Filters = { { Name = "attachment.instance-id",
    Values = { i.InstanceId } } } }.Volumes
  lu.assertEquals(#vols, 1)
  lu.assertEquals(vols[1].VolumeId, i.BlockDeviceMappings[1].Ebs.VolumeId)
  lu.assertEquals(vols[1].Attachments[1].InstanceId, i.InstanceId)
  lu.assertEquals({ tag(vols[1].Tags, "Name"), tag(vols[1].Tags, "Env"), tag(vols[1].Tags, "Team") },
    { "vol-name", "prod", nil })
  local eni = ec2:DescribeNetworkInterfaces{ NetworkInterfaceIds = {
    i.NetworkInterfaces[1].NetworkInterfaceId } }.NetworkInterfaces[1]
  lu.assertEquals(eni.Attachment.InstanceId, i.InstanceId)
  lu.assertEquals({ tag(eni.TagSet, "Name"), tag(eni.TagSet, "Team") }, { "eni-name", nil })
  lu.assertEquals(code_of(ec2.DescribeVolumes, ec2, { VolumeIds = { "vol-0123456789abcdef0" } }),
    "InvalidVolume.NotFound")
end

function TestRunInstances.test_describe_instances_paging()
  local _, ec2 = setup()
  ec2:RunInstances{ ImageId = AMI, MinCount = 7, MaxCount = 7 }
  local p1 = ec2:DescribeInstances{ MaxResults = 5 }
  local n = 0
  for _, r in ipairs(p1.Reservations) do n = n + #r.Instances end
  lu.assertEquals(n, 5)
  lu.assertNotNil(p1.NextToken)
  local p2 = ec2:DescribeInstances{ MaxResults = 5, NextToken = p1.NextToken }
  n = 0
  for _, r in ipairs(p2.Reservations) do n = n + #r.Instances end
  lu.assertEquals(n, 2)
  lu.assertNil(p2.NextToken)
  local id = p1.Reservations[1].Instances[1].InstanceId
  lu.assertEquals(code_of(ec2.DescribeInstances, ec2, { InstanceIds = { id }, MaxResults = 5 }),
    "InvalidParameterCombination")
  lu.assertEquals(code_of(ec2.DescribeInstances, ec2, { MaxResults = 4 }), "InvalidParameterValue")
end

os.exit(lu.LuaUnit.run())
