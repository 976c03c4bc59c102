-- The simulator's EC2 read operations operators use daily beyond the recipe's: the
-- public images (DescribeImages), instance status checks (DescribeInstanceStatus), and
-- the MaxResults ranges the API reference documents where the model leaves them open.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local amis = require "fo.sim.amis"
local instances = require "fo.sim.services.ec2.instances"

local REGION = "eu-south-1"

local function setup()
  local sim = simlib.new{ seed = 11 }
  return sim, sim:client("ec2", { region = REGION, max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertEquals(type(e), "table", tostring(e))
  return e
end

-- A VPC, two private subnets and an Auto Scaling group of `n` instances.
local function group(sim, ec2, n)
  local vpc = ec2:CreateVpc{ CidrBlock = "10.10.0.0/16" }.Vpc.VpcId
  local a = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.10.10.0/24",
    AvailabilityZone = REGION .. "a" }.Subnet.SubnetId
  local b = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.10.11.0/24",
    AvailabilityZone = REGION .. "b" }.Subnet.SubnetId
  local lt = ec2:CreateLaunchTemplate{ LaunchTemplateName = "lt-app", LaunchTemplateData = {
    ImageId = amis.al2(REGION), InstanceType = "t3.micro" } }.LaunchTemplate
  sim:invoke("autoscaling", REGION, "CreateAutoScalingGroup", { AutoScalingGroupName = "asg",
    MinSize = 0, MaxSize = 10, DesiredCapacity = n,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplateId, Version = "$Latest" },
    VPCZoneIdentifier = a .. "," .. b })
end

TestEc2Ops = {}

function TestEc2Ops.test_describe_images_the_public_al2_and_al2023_images()
  local _, ec2 = setup()
  local id = amis.al2(REGION)
  local all = ec2:DescribeImages{ Owners = { "amazon" } }.Images
  lu.assertEquals(#all, 2)
  lu.assertEquals({ all[1].ImageId, all[2].ImageId }, { id, amis.al2023(REGION) })
  lu.assertEquals(all[1].Name, amis.AL2_NAME)
  lu.assertEquals(all[2].Name, amis.AL2023_NAME)
  lu.assertEquals(#ec2:DescribeImages{ Owners = { amis.OWNER }, Filters = {
    { Name = "name", Values = { "al2023-ami-2023.*-kernel-6.1-x86_64" } } } }.Images, 1)
  lu.assertEquals(ec2:DescribeImages{ ImageIds = { id } }.Images[1].OwnerId, amis.OWNER)
  -- the way operators look the image up: by name pattern and owner
  local found = ec2:DescribeImages{ Owners = { amis.OWNER }, Filters = {
    { Name = "name", Values = { "amzn2-ami-hvm-*-x86_64-gp2" } },
    { Name = "state", Values = { "available" } } } }.Images
  lu.assertEquals(#found, 1)
  lu.assertEquals(#ec2:DescribeImages{ Owners = { "self" } }.Images, 0)
  lu.assertEquals(#ec2:DescribeImages{ Filters = { { Name = "architecture", Values = { "arm64" } } } }
    .Images, 0)
  local e = err_of(ec2.DescribeImages, ec2, { ImageIds = { "ami-0123456789abcdef0" } })
  lu.assertEquals(e.code, "InvalidAMIID.NotFound")
  lu.assertEquals(e.message, "The image id '[ami-0123456789abcdef0]' does not exist")
  lu.assertEquals(err_of(ec2.DescribeImages, ec2, { ImageIds = { "img-1" } }).code,
    "InvalidAMIID.Malformed")
  lu.assertEquals(err_of(ec2.DescribeImages, ec2, { Filters = { { Name = "colour", Values = { "x" } } } })
    .code, "InvalidParameterValue")
end

function TestEc2Ops.test_describe_instance_status()
  local sim, ec2 = setup()
  group(sim, ec2, 3)
  -- instances not running are left out unless IncludeAllInstances
  local st = ec2:DescribeInstanceStatus{}.InstanceStatuses
  local all = ec2:DescribeInstanceStatus{ IncludeAllInstances = true }.InstanceStatuses
  lu.assertEquals(#all, 3)
  local running = 0
  for _, s in ipairs(all) do
    if s.InstanceState.Name ~= "running" then
      lu.assertEquals(s.InstanceStatus.Status, "not-applicable")
    else
      running = running + 1
    end
  end
  lu.assertEquals(#st, running)
  sim:advance(60)
  st = ec2:DescribeInstanceStatus{}.InstanceStatuses
  lu.assertEquals(#st, 3)
  lu.assertEquals(st[1].InstanceState, { Code = 16, Name = "running" })
  lu.assertEquals(st[1].InstanceStatus.Status, "initializing")
  sim:advance(instances.STATUS_INITIALIZING_SECONDS + 1)
  st = ec2:DescribeInstanceStatus{}.InstanceStatuses
  lu.assertEquals(st[1].InstanceStatus, { Status = "ok",
    Details = { { Name = "reachability", Status = "passed" } } })
  lu.assertEquals(st[1].SystemStatus.Status, "ok")
  lu.assertStrMatches(st[1].AvailabilityZone, "eu%-south%-1[ab]")
  local one = ec2:DescribeInstanceStatus{ InstanceIds = { st[2].InstanceId } }.InstanceStatuses
  lu.assertEquals(#one, 1)
  lu.assertEquals(one[1].InstanceId, st[2].InstanceId)
  lu.assertEquals(#ec2:DescribeInstanceStatus{ Filters = { { Name = "instance-status.status",
    Values = { "impaired" } } } }.InstanceStatuses, 0)
  local page = ec2:DescribeInstanceStatus{ MaxResults = 5 }
  lu.assertEquals(#page.InstanceStatuses, 3)
  local e = err_of(ec2.DescribeInstanceStatus, ec2, { InstanceIds = { "i-0123456789abcdef0" } })
  lu.assertEquals(e.code, "InvalidInstanceID.NotFound")
  e = err_of(ec2.DescribeInstanceStatus, ec2, { InstanceIds = { one[1].InstanceId }, MaxResults = 5 })
  lu.assertEquals(e.code, "InvalidParameterCombination")
end

-- MaxResults outside the documented range: InvalidParameterValue, as AWS answers it.
function TestEc2Ops.test_max_results_ranges()
  local _, ec2 = setup()
  local e = err_of(ec2.DescribeInstances, ec2, { MaxResults = 1 })
  lu.assertEquals(e.code, "InvalidParameterValue")
  lu.assertEquals(e.message, "Value ( 1 ) for parameter maxResults is invalid. Expecting a value "
    .. "greater than 5.")
  lu.assertEquals(err_of(ec2.DescribeInstances, ec2, { MaxResults = 1001 }).code, "InvalidParameterValue")
  lu.assertEquals(err_of(ec2.DescribeTags, ec2, { MaxResults = 4 }).code, "InvalidParameterValue")
  lu.assertEquals(err_of(ec2.DescribeInstanceStatus, ec2, { MaxResults = 2 }).code, "InvalidParameterValue")
  ec2:CreateLaunchTemplate{ LaunchTemplateName = "lt-app", LaunchTemplateData = {
    ImageId = amis.al2(REGION), InstanceType = "t3.micro" } }
  e = err_of(ec2.DescribeLaunchTemplateVersions, ec2, { LaunchTemplateName = "lt-app", MaxResults = 1000 })
  lu.assertEquals(e.code, "InvalidParameterValue")
  lu.assertEquals(e.message, "Maximum results allowed are between 1 and 200")
  -- the bounds themselves are fine
  ec2:DescribeInstances{ MaxResults = 5 }
  ec2:DescribeInstances{ MaxResults = 1000 }
  ec2:DescribeTags{ MaxResults = 5 }
end

-- The AWS services a VPC endpoint can reach, as DescribeVpcEndpointServices lists them.
function TestEc2Ops.test_describe_vpc_endpoint_services()
  local _, ec2 = setup()
  local all = ec2:DescribeVpcEndpointServices{}
  local ssm = "com.amazonaws.eu-south-1.ssm"
  local s3 = "com.amazonaws.eu-south-1.s3"
  local has = {}
  for _, n in ipairs(all.ServiceNames) do has[n] = (has[n] or 0) + 1 end
  lu.assertEquals(has[ssm], 1)
  lu.assertEquals(has[s3], 1)
  local out = ec2:DescribeVpcEndpointServices{ ServiceNames = { s3 } }
  lu.assertEquals(out.ServiceNames, { s3 })
  lu.assertEquals(#out.ServiceDetails, 2) -- Gateway and Interface
  lu.assertEquals(out.ServiceDetails[1].ServiceType, { { ServiceType = "Gateway" } })
  lu.assertEquals(out.ServiceDetails[2].ServiceType, { { ServiceType = "Interface" } })
  lu.assertEquals(out.ServiceDetails[2].PrivateDnsName, "s3.eu-south-1.amazonaws.com")
  lu.assertEquals(out.ServiceDetails[1].Owner, "amazon")
  lu.assertStrMatches(out.ServiceDetails[1].ServiceId, "vpce%-svc%-" .. ("%x"):rep(17))
  lu.assertEquals(#out.ServiceDetails[1].AvailabilityZones, 3)
  local gw = ec2:DescribeVpcEndpointServices{ Filters = { { Name = "service-type", Values = { "Gateway" } } } }
  table.sort(gw.ServiceNames)
  lu.assertEquals(gw.ServiceNames, { "com.amazonaws.eu-south-1.dynamodb", s3 })
  local e = err_of(ec2.DescribeVpcEndpointServices, ec2, { ServiceNames = { "com.amazonaws.eu-south-1.nope" } })
  lu.assertEquals(e.code, "InvalidServiceName")
  lu.assertEquals(e.message, "The Vpc Endpoint Service 'com.amazonaws.eu-south-1.nope' does not exist")
  -- every service listed is one CreateVpcEndpoint accepts
  local page = ec2:DescribeVpcEndpointServices{ MaxResults = 5 }
  lu.assertEquals(#page.ServiceDetails, 5)
  lu.assertNotNil(page.NextToken)
end

os.exit(lu.LuaUnit.run())
