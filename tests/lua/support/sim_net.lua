-- A region's network in a simulator, built through the simulated EC2 with fo's client as
-- the failover stack builds it: VPC, two public + two private subnets in two AZs, an
-- internet gateway, the ALB's and the app's security groups (the app's admits 8080 from
-- the ALB's) and a launch template whose user data serves /health on 8080.
local M = {}

--- Short transition windows for tests (virtual seconds; see fo.sim.asg_state and the
--- ELBv2 handler): waiters still see the intermediate states.
M.FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1 }

--- A sim with fast transitions.
function M.sim(opts)
  local sim = require("fo.sim").new(opts or { seed = "sim-net" })
  sim.timing = M.FAST
  return sim
end

--- Builds the network of `region` (default eu-south-1); returns
--- {vpc=, public={subnet ids}, private={subnet ids}, azs={2 names}, alb_sg=, app_sg=,
--- lt= (launch template id), lt_name=, igw=}. opts.user_data: the launch template's
--- base64 user data instead of the health server's (false: none).
function M.build(sim, region, opts)
  opts = opts or {}
  region = region or "eu-south-1"
  local ec2 = sim:client("ec2", { region = region })
  local azs = {}
  for _, z in ipairs(ec2:DescribeAvailabilityZones{}.AvailabilityZones) do azs[#azs + 1] = z.ZoneName end
  local vpc = ec2:CreateVpc{ CidrBlock = "10.20.0.0/16" }.Vpc.VpcId
  local n = { vpc = vpc, public = {}, private = {}, azs = { azs[1], azs[2] } }
  for i = 1, 2 do
    n.public[i] = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = ("10.20.%d.0/24"):format(i),
      AvailabilityZone = azs[i] }.Subnet.SubnetId
    n.private[i] = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = ("10.20.%d.0/24"):format(10 + i),
      AvailabilityZone = azs[i] }.Subnet.SubnetId
  end
  if not opts.no_igw then
    n.igw = ec2:CreateInternetGateway{}.InternetGateway.InternetGatewayId
    ec2:AttachInternetGateway{ InternetGatewayId = n.igw, VpcId = vpc }
  end
  n.alb_sg = ec2:CreateSecurityGroup{ GroupName = "alb-sg", Description = "ALB", VpcId = vpc }.GroupId
  n.app_sg = ec2:CreateSecurityGroup{ GroupName = "app-sg", Description = "app", VpcId = vpc }.GroupId
  -- the instances admit the app port from the ALB and serve /health there
  ec2:AuthorizeSecurityGroupIngress{ GroupId = n.app_sg, IpPermissions = { { IpProtocol = "tcp",
    FromPort = 8080, ToPort = 8080, UserIdGroupPairs = { { GroupId = n.alb_sg } } } } }
  local data = { ImageId = "ami-0abcdef1234567890", InstanceType = "t3.medium",
    SecurityGroupIds = { n.app_sg }, MetadataOptions = { HttpTokens = "required" },
    UserData = opts.user_data or require("support.health_user_data").base64(8080, "/health") }
  if opts.user_data == false then data.UserData = nil end
  if opts.profile then data.IamInstanceProfile = { Name = opts.profile } end
  n.lt_name = opts.lt_name or "lt-app"
  n.lt = ec2:CreateLaunchTemplate{ LaunchTemplateName = n.lt_name, LaunchTemplateData = data }
    .LaunchTemplate.LaunchTemplateId
  return n
end

--- Calls fn(...) expecting an AWS error; returns it.
function M.aws_error(lu, fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an AWS error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

--- Like aws_error, also checking the code (and the message when given).
function M.expect(lu, code, message, fn, ...)
  local e = M.aws_error(lu, fn, ...)
  lu.assertEquals(e.code, code, tostring(e))
  if message then lu.assertEquals(e.message, message) end
  return e
end

return M
