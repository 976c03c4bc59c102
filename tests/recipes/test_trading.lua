-- recipes/trading.lua on the embedded simulator: what it builds, read back through fo's
-- AWS clients (never from the recipe's source or the stack's state): issue 6's list of
-- recipe unit tests, then the CI proof — apply, rerun with zero mutating calls, the
-- failover drill, destroy, nothing of the stack left — and `fo-run --drill` itself.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local cjson = require "cjson"

local ROOT = testlib.tests_dir .. "/.."
-- FO_RECIPE: another copy of the recipe to test (the mutation suite, tests/mutation/run.lua).
local RECIPE = os.getenv("FO_RECIPE") or (ROOT .. "/recipes/trading.lua")
-- FO_RECIPE_TESTS=fast: only what one shared apply can tell (its read-back and the drill
-- on it; "fast+destroy": and its destroy leaves nothing), for the mutation suite; the other
-- stacks (reruns, updates, HTTPS, fo-run --drill) are left out. "https": only the read-back
-- of a stack applied with https=true and the run turning https on in an undelegated zone
-- (the mutants of the HTTPS parts).
local MODE = os.getenv("FO_RECIPE_TESTS") or ""
local FAST_MODE = MODE:match("^fast") ~= nil
local SUFFIX = "citest"
local P, S, G = "eu-south-1", "eu-central-1", "us-east-1"
local REGIONS = { { region = P, role = "Primary", desired = 2, cidr = "10.10.0.0/16" },
  { region = S, role = "Standby", desired = 1, cidr = "10.20.0.0/16" } }
local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"
local APP = "app.trading.fo.test"

--- A stack applied from the recipe (fo.testing): world.sim, .dir, .code, .doc, .out, .err.
--- With `world` (a stack of fo.testing) the engine runs again on its simulator.
local function deploy(world, opts)
  opts = opts or {}
  if not world then
    return testing.apply(RECIPE, { seed = opts.seed or ("trading-" .. SUFFIX),
      stack = opts.stack or "ci", config = opts.config or { environmentSuffix = SUFFIX },
      before = opts.before, sim_options = opts.sim_options })
  end
  world:run{ mode = opts.mode, config = opts.config }
  return world
end

local stack -- the shared applied stack (built by the first test that needs it)
local function applied()
  if not stack then
    stack = deploy()
  end
  if stack.code ~= 0 then -- the run's end says why (the whole text is long to report)
    lu.fail(("the apply exited %d:\n%s%s"):format(stack.code, stack.out:sub(-2500), stack.err:sub(-2500)))
  end
  return stack
end

local function client(service, region)
  return applied():client(service, region)
end

local function outputs() return applied().doc.outputs end

-- Helpers -----------------------------------------------------------------------------

local tagmap = testing.tag_map

local function as_list(v) return type(v) == "table" and v or { v } end

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

local function one(list, what)
  lu.assertEquals(#list, 1, what)
  return list[1]
end

-- Every region has its default VPC (AWS makes it with the account): not the stack's.
local NOT_DEFAULT_VPC = { { Name = "is-default", Values = { "false" } } }

local function vpc_of(region)
  return one(client("ec2", region):DescribeVpcs{ Filters = NOT_DEFAULT_VPC }.Vpcs,
    "one VPC in " .. region)
end

local function by_vpc(vpc_id) return { { Name = "vpc-id", Values = { vpc_id } } } end

-- The ids of the region's default VPC and of what AWS made with it (default subnets,
-- gateway, main route table, default group), to leave out of what the stack made.
local function aws_defaults(ec2)
  local ids = {}
  for _, v in ipairs(ec2:DescribeVpcs{ Filters = { { Name = "is-default", Values = { "true" } } } }
      .Vpcs) do
    ids[v.VpcId] = true
    local f = by_vpc(v.VpcId)
    for _, x in ipairs(ec2:DescribeSubnets{ Filters = f }.Subnets) do ids[x.SubnetId] = true end
    for _, x in ipairs(ec2:DescribeSecurityGroups{ Filters = f }.SecurityGroups) do
      ids[x.GroupId] = true
    end
    for _, x in ipairs(ec2:DescribeRouteTables{ Filters = f }.RouteTables) do
      ids[x.RouteTableId] = true
    end
    for _, x in ipairs(ec2:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
      Values = { v.VpcId } } } }.InternetGateways) do
      ids[x.InternetGatewayId] = true
    end
  end
  return ids
end

local function load_balancer(region, role)
  return client("elbv2", region):DescribeLoadBalancers{ Names = {
    ("alb-%s-%s"):format(role:lower(), SUFFIX) } }.LoadBalancers[1]
end

local function asg_of(region, role)
  return one(client("autoscaling", region):DescribeAutoScalingGroups{ AutoScalingGroupNames = {
    ("asg-%s-%s"):format(role:lower(), SUFFIX) } }.AutoScalingGroups, "the ASG of " .. region)
end

local function health_check()
  return client("route53", G):GetHealthCheck{ HealthCheckId = outputs().health_check_id }
    .HealthCheck
end

local function zone_id()
  local zones = client("route53", G):ListHostedZones{}.HostedZones
  return one(zones, "one hosted zone").Id
end

local function app_records()
  local out = {}
  for _, rr in ipairs(client("route53", G):ListResourceRecordSets{ HostedZoneId = zone_id() }
      .ResourceRecordSets) do
    if rr.Name == APP .. "." then out[#out + 1] = rr end
  end
  table.sort(out, function(a, b) return (a.Weight or 0) > (b.Weight or 0) end)
  return out
end

local function role_policy()
  local iam = client("iam", G)
  local role = "ec2-role-" .. SUFFIX
  local names = iam:ListRolePolicies{ RoleName = role }.PolicyNames
  lu.assertEquals(names, { "ec2-policy-" .. SUFFIX })
  return testing.policy(iam:GetRolePolicy{ RoleName = role, PolicyName = names[1] }.PolicyDocument)
end

-- Everything taggable the stack made, read from the simulator: { {what=, region=, tags={}} }.
local function taggable()
  local out = {}
  local function add(what, region, tags) out[#out + 1] = { what = what, region = region, tags = tags } end
  for _, r in ipairs(REGIONS) do
    local ec2, region = client("ec2", r.region), r.region
    local aws = aws_defaults(ec2)
    for _, v in ipairs(ec2:DescribeVpcs{}.Vpcs) do
      if not aws[v.VpcId] then add("vpc " .. v.VpcId, region, tagmap(v.Tags)) end
    end
    for _, s in ipairs(ec2:DescribeSubnets{}.Subnets) do
      if not aws[s.SubnetId] then add("subnet " .. s.SubnetId, region, tagmap(s.Tags)) end
    end
    for _, g in ipairs(ec2:DescribeInternetGateways{}.InternetGateways) do
      if not aws[g.InternetGatewayId] then
        add("igw " .. g.InternetGatewayId, region, tagmap(g.Tags))
      end
    end
    for _, rt in ipairs(ec2:DescribeRouteTables{}.RouteTables) do
      local main = false
      for _, a in ipairs(rt.Associations or {}) do main = main or a.Main end
      if not main then add("route table " .. rt.RouteTableId, region, tagmap(rt.Tags)) end
    end
    local default_sg = {}
    for _, g in ipairs(ec2:DescribeSecurityGroups{}.SecurityGroups) do
      if g.GroupName ~= "default" then add("sg " .. g.GroupName, region, tagmap(g.Tags))
      else default_sg[g.GroupId] = true end
    end
    -- the ingress rules the stack authorized (not the VPC's default group's, nor the
    -- allow-all egress rule EC2 gives every new group)
    for _, rule in ipairs(ec2:DescribeSecurityGroupRules{}.SecurityGroupRules) do
      if not rule.IsEgress and not default_sg[rule.GroupId] then
        add("sg rule " .. rule.SecurityGroupRuleId, region, tagmap(rule.Tags))
      end
    end
    for _, e in ipairs(ec2:DescribeVpcEndpoints{}.VpcEndpoints) do
      add("vpc endpoint " .. e.VpcEndpointId, region, tagmap(e.Tags))
    end
    for _, t in ipairs(ec2:DescribeLaunchTemplates{}.LaunchTemplates) do
      add("launch template " .. t.LaunchTemplateName, region, tagmap(t.Tags))
    end
    local elb = client("elbv2", region)
    local arns = {}
    for _, lb in ipairs(elb:DescribeLoadBalancers{}.LoadBalancers) do
      arns[#arns + 1] = lb.LoadBalancerArn
      for _, l in ipairs(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners) do
        arns[#arns + 1] = l.ListenerArn
      end
    end
    for _, tg in ipairs(elb:DescribeTargetGroups{}.TargetGroups) do arns[#arns + 1] = tg.TargetGroupArn end
    for _, d in ipairs(elb:DescribeTags{ ResourceArns = arns }.TagDescriptions) do
      add("elbv2 " .. d.ResourceArn, region, tagmap(d.Tags))
    end
    for _, g in ipairs(client("autoscaling", region):DescribeAutoScalingGroups{}.AutoScalingGroups) do
      add("asg " .. g.AutoScalingGroupName, region, tagmap(g.Tags))
    end
    for _, f in ipairs(ec2:DescribeFlowLogs{}.FlowLogs) do
      add("flow log " .. f.FlowLogId, region, tagmap(f.Tags))
    end
    local logs = client("logs", region)
    for _, g in ipairs(logs:DescribeLogGroups{}.logGroups) do
      add("log group " .. g.logGroupName, region,
        logs:ListTagsForResource{ resourceArn = g.logGroupArn }.tags or {})
    end
    -- what the groups launched: instances, and each one's volumes and network interfaces
    -- (the ids its description names, their tags read through EC2)
    local volumes, enis = {}, {}
    for _, v in ipairs(ec2:DescribeVolumes{}.Volumes) do volumes[v.VolumeId] = v end
    for _, n in ipairs(ec2:DescribeNetworkInterfaces{}.NetworkInterfaces) do
      enis[n.NetworkInterfaceId] = n
    end
    local running = 0
    for _, res in ipairs(ec2:DescribeInstances{ Filters = { { Name = "instance-state-name",
        Values = { "pending", "running" } } } }.Reservations) do
      for _, i in ipairs(res.Instances) do
        running = running + 1
        add("instance " .. i.InstanceId, region, tagmap(i.Tags))
        lu.assertTrue(#i.BlockDeviceMappings >= 1, i.InstanceId .. " has its root volume")
        for _, b in ipairs(i.BlockDeviceMappings) do
          local v = volumes[b.Ebs.VolumeId]
          lu.assertNotNil(v, "volume " .. b.Ebs.VolumeId .. " of " .. i.InstanceId)
          add("volume " .. b.Ebs.VolumeId, region, tagmap(v.Tags))
        end
        for _, n in ipairs(i.NetworkInterfaces) do
          local eni = enis[n.NetworkInterfaceId]
          lu.assertNotNil(eni, "network interface " .. n.NetworkInterfaceId .. " of " .. i.InstanceId)
          add("network interface " .. n.NetworkInterfaceId, region, tagmap(eni.TagSet))
        end
      end
    end
    lu.assertEquals(running, r.desired, "the instances of " .. region)
  end
  for _, region in ipairs({ P, S, G }) do
    local sns = client("sns", region)
    for _, t in ipairs(sns:ListTopics{}.Topics) do
      add("topic " .. t.TopicArn, region, tagmap(sns:ListTagsForResource{ ResourceArn = t.TopicArn }.Tags))
    end
    local cw = client("cloudwatch", region)
    for _, a in ipairs(cw:DescribeAlarms{}.MetricAlarms) do
      if not a.AlarmName:match("^TargetTracking%-") then -- Auto Scaling's own
        add("alarm " .. a.AlarmName, region, tagmap(cw:ListTagsForResource{ ResourceARN = a.AlarmArn }.Tags))
      end
    end
  end
  -- the buckets, each read in its own region
  for _, b in ipairs(client("s3", P):ListBuckets{}.Buckets or {}) do
    local region = client("s3", P):GetBucketLocation{ Bucket = b.Name }.LocationConstraint or G
    add("bucket " .. b.Name, region, tagmap(client("s3", region):GetBucketTagging{ Bucket = b.Name }.TagSet))
  end
  -- the table and its replica: each tagged in its own region
  for _, region in ipairs({ P, S }) do
    local ddb = client("dynamodb", region)
    for _, name in ipairs(ddb:ListTables{}.TableNames) do
      local arn = ddb:DescribeTable{ TableName = name }.Table.TableArn
      add("table " .. name .. " in " .. region, region,
        tagmap(ddb:ListTagsOfResource{ ResourceArn = arn }.Tags))
    end
  end
  local iam = client("iam", G)
  for _, r in ipairs(iam:ListRoles{}.Roles) do
    -- IAM is global; a role serving one region (its flow logs' delivery) is that region's
    add("role " .. r.RoleName, r.RoleName:match("%-standby%-") and S or G,
      tagmap(iam:ListRoleTags{ RoleName = r.RoleName }.Tags))
  end
  for _, r in ipairs(iam:ListRoles{}.Roles) do
    for _, p in ipairs(iam:ListInstanceProfilesForRole{ RoleName = r.RoleName }.InstanceProfiles) do
      add("instance profile " .. p.InstanceProfileName, G,
        tagmap(iam:ListInstanceProfileTags{ InstanceProfileName = p.InstanceProfileName }.Tags))
    end
  end
  local r53 = client("route53", G)
  for _, z in ipairs(r53:ListHostedZones{}.HostedZones) do
    local id = z.Id:match("[^/]+$")
    add("zone " .. z.Name, G, tagmap(r53:ListTagsForResource{ ResourceType = "hostedzone",
      ResourceId = id }.ResourceTagSet.Tags))
  end
  for _, h in ipairs(r53:ListHealthChecks{}.HealthChecks) do
    add("health check " .. h.Id, G, tagmap(r53:ListTagsForResource{ ResourceType = "healthcheck",
      ResourceId = h.Id }.ResourceTagSet.Tags))
  end
  return out
end

-- The recipe's tests ------------------------------------------------------------------

TestTradingRecipe = {}

function TestTradingRecipe:test_apply_succeeds_and_publishes_the_outputs()
  local o = outputs()
  lu.assertEquals(o.app_dns_name, APP)
  lu.assertStrMatches(o.primary_alb_dns_name, "alb%-primary%-" .. SUFFIX .. "%-.*%.eu%-south%-1%.elb%.amazonaws%.com")
  lu.assertStrMatches(o.standby_alb_dns_name, "alb%-standby%-" .. SUFFIX .. "%-.*%.eu%-central%-1%.elb%.amazonaws%.com")
  lu.assertEquals(o.health_check_id, health_check().Id)
  lu.assertEquals(o.table_name, "trading-sessions-" .. SUFFIX)
  lu.assertStrMatches(o.table_arn, "arn:aws:dynamodb:eu%-south%-1:%d+:table/trading%-sessions%-" .. SUFFIX)
  lu.assertStrMatches(o.replica_arn, "arn:aws:dynamodb:eu%-central%-1:%d+:table/trading%-sessions%-" .. SUFFIX)
  for _, k in ipairs({ "primary_topic_arn", "standby_topic_arn", "global_topic_arn" }) do
    lu.assertStrMatches(o[k], "arn:aws:sns:.*")
  end
end

function TestTradingRecipe:test_two_vpcs_one_per_region_with_their_cidrs()
  for _, r in ipairs(REGIONS) do
    local v = vpc_of(r.region)
    lu.assertEquals(v.CidrBlock, r.cidr)
  end
  lu.assertEquals(#client("ec2", G):DescribeVpcs{ Filters = NOT_DEFAULT_VPC }.Vpcs, 0,
    "no VPC in us-east-1")
end

function TestTradingRecipe:test_each_vpc_has_two_public_and_two_private_subnets_in_different_azs_with_the_right_routes()
  for _, r in ipairs(REGIONS) do
    local ec2 = client("ec2", r.region)
    local vpc = vpc_of(r.region).VpcId
    local igw = one(ec2:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
      Values = { vpc } } } }.InternetGateways, "one attached IGW").InternetGatewayId
    local endpoint = one(ec2:DescribeVpcEndpoints{ Filters = { by_vpc(vpc)[1], { Name =
      "service-name", Values = { "com.amazonaws." .. r.region .. ".dynamodb" } } } }.VpcEndpoints,
      "one DynamoDB endpoint")
    lu.assertEquals(endpoint.ServiceName, "com.amazonaws." .. r.region .. ".dynamodb")
    lu.assertEquals(endpoint.VpcEndpointType, "Gateway")
    local on_endpoint = {}
    for _, id in ipairs(endpoint.RouteTableIds) do on_endpoint[id] = true end
    local table_of = {}
    for _, rt in ipairs(ec2:DescribeRouteTables{ Filters = by_vpc(vpc) }.RouteTables) do
      for _, a in ipairs(rt.Associations or {}) do
        if a.SubnetId then table_of[a.SubnetId] = rt end
      end
    end
    local public, private = {}, {}
    local subnets = ec2:DescribeSubnets{ Filters = by_vpc(vpc) }.Subnets
    lu.assertEquals(#subnets, 4)
    for _, s in ipairs(subnets) do
      local rt = table_of[s.SubnetId]
      lu.assertNotNil(rt, "subnet " .. s.SubnetId .. " has its own route table")
      local to_igw = false
      for _, route in ipairs(rt.Routes) do
        if route.DestinationCidrBlock == "0.0.0.0/0" then
          lu.assertEquals(route.GatewayId, igw, "the default route goes to the VPC's IGW")
          to_igw = true
        end
      end
      if to_igw then
        lu.assertIsFalse(on_endpoint[rt.RouteTableId] or false, "public tables do not need the endpoint")
        public[#public + 1] = s
      else
        lu.assertIsTrue(on_endpoint[rt.RouteTableId] or false,
          "private route table " .. rt.RouteTableId .. " reaches DynamoDB through the gateway endpoint")
        private[#private + 1] = s
      end
    end
    lu.assertEquals(#public, 2, r.region .. " public subnets")
    lu.assertEquals(#private, 2, r.region .. " private subnets")
    for _, kind in ipairs({ public, private }) do
      lu.assertNotEquals(kind[1].AvailabilityZone, kind[2].AvailabilityZone)
      for _, s in ipairs(kind) do
        lu.assertStrMatches(s.AvailabilityZone, r.region:gsub("%-", "%%-") .. "%l")
      end
    end
  end
end

-- Private subnets have no route to the internet: SSM Agent, CloudWatch metrics and Logs
-- are reached through interface endpoints (private DNS, so the default hostnames resolve
-- to them), the package repositories (S3) through a gateway endpoint.
local INTERFACE_SERVICES = { "ec2messages", "logs", "monitoring", "ssm", "ssmmessages" }

function TestTradingRecipe:test_private_subnets_reach_ssm_monitoring_logs_and_s3_through_endpoints_only()
  for _, r in ipairs(REGIONS) do
    local ec2 = client("ec2", r.region)
    local vpc = vpc_of(r.region).VpcId
    local lt = ec2:DescribeLaunchTemplateVersions{ LaunchTemplateName =
      ("lt-%s-%s"):format(r.role:lower(), SUFFIX), Versions = { "$Latest" } }.LaunchTemplateVersions[1]
    local app_sg = one(lt.LaunchTemplateData.SecurityGroupIds, "one instance SG")
    -- the private subnets: those the Auto Scaling group launches into
    local asg = asg_of(r.region, r.role)
    local private = {}
    for id in asg.VPCZoneIdentifier:gmatch("[^,]+") do private[#private + 1] = id end
    private = sorted(private)
    lu.assertEquals(#private, 2)
    local by_service, groups = {}, {}
    for _, e in ipairs(ec2:DescribeVpcEndpoints{ Filters = by_vpc(vpc) }.VpcEndpoints) do
      lu.assertEquals(e.State, "available")
      if e.VpcEndpointType == "Interface" then
        local svc = e.ServiceName:match("^com%.amazonaws%." .. r.region:gsub("%-", "%%-") .. "%.(.+)$")
        lu.assertNotNil(svc, e.ServiceName)
        by_service[svc] = e
        lu.assertIsTrue(e.PrivateDnsEnabled, svc .. ": private DNS")
        lu.assertEquals(sorted(e.SubnetIds), private, svc .. ": in both private subnets")
        for _, g in ipairs(e.Groups) do groups[g.GroupId] = true end
        lu.assertEquals(#e.Groups, 1, svc .. ": one security group")
      end
    end
    local services = {}
    for svc in pairs(by_service) do services[#services + 1] = svc end
    lu.assertEquals(sorted(services), INTERFACE_SERVICES, r.region .. " interface endpoints")
    -- their group admits HTTPS from the instances' group, nothing else
    local ids = {}
    for id in pairs(groups) do ids[#ids + 1] = id end
    lu.assertEquals(#ids, 1, "one endpoint security group")
    lu.assertNotEquals(ids[1], app_sg)
    local sg = one(ec2:DescribeSecurityGroups{ GroupIds = ids }.SecurityGroups, "endpoint SG")
    local perm = one(sg.IpPermissions, "one ingress rule on the endpoints")
    lu.assertEquals({ perm.IpProtocol, perm.FromPort, perm.ToPort }, { "tcp", 443, 443 })
    lu.assertEquals(#(perm.IpRanges or {}), 0, "no CIDR reaches the endpoints")
    lu.assertEquals(#(perm.Ipv6Ranges or {}), 0, "no IPv6 CIDR reaches the endpoints")
    lu.assertEquals(#(perm.PrefixListIds or {}), 0)
    lu.assertEquals(one(perm.UserIdGroupPairs, "one source group").GroupId, app_sg)
    -- S3 (the package repositories) through a gateway endpoint on the private route tables
    local s3 = one(ec2:DescribeVpcEndpoints{ Filters = { by_vpc(vpc)[1],
      { Name = "service-name", Values = { "com.amazonaws." .. r.region .. ".s3" } },
      { Name = "vpc-endpoint-type", Values = { "Gateway" } } } }.VpcEndpoints, "one S3 gateway endpoint")
    local private_rts = {}
    for _, id in ipairs(private) do
      local rt = one(ec2:DescribeRouteTables{ Filters = { { Name = "association.subnet-id",
        Values = { id } } } }.RouteTables, "the route table of " .. id)
      private_rts[#private_rts + 1] = rt.RouteTableId
      local routed = false
      for _, route in ipairs(rt.Routes) do
        lu.assertNotEquals(route.DestinationCidrBlock, "0.0.0.0/0", "no default route from a private subnet")
        routed = routed or route.GatewayId == s3.VpcEndpointId
      end
      lu.assertIsTrue(routed, rt.RouteTableId .. " routes S3's prefix list to the endpoint")
    end
    lu.assertEquals(sorted(s3.RouteTableIds), sorted(private_rts))
  end
end

function TestTradingRecipe:test_alb_and_target_group_with_health_checks_in_both_regions()
  for _, r in ipairs(REGIONS) do
    local elb = client("elbv2", r.region)
    local lb = load_balancer(r.region, r.role)
    lu.assertEquals(lb.Type, "application")
    lu.assertEquals(lb.Scheme, "internet-facing")
    lu.assertEquals(lb.State.Code, "active")
    lu.assertEquals(#lb.AvailabilityZones, 2)
    lu.assertNotEquals(lb.AvailabilityZones[1].ZoneName, lb.AvailabilityZones[2].ZoneName)
    local tg = one(elb:DescribeTargetGroups{ LoadBalancerArn = lb.LoadBalancerArn }.TargetGroups, "one TG")
    lu.assertEquals(tg.TargetGroupName, ("tg-%s-%s"):format(r.role:lower(), SUFFIX))
    lu.assertEquals(tg.Protocol, "HTTP")
    lu.assertEquals(tg.Port, 8080)
    lu.assertIsTrue(tg.HealthCheckEnabled)
    lu.assertEquals(tg.HealthCheckPath, "/health")
    lu.assertEquals(tg.HealthCheckIntervalSeconds, 10)
    lu.assertEquals(tg.UnhealthyThresholdCount, 3)
    lu.assertTrue(tg.HealthCheckIntervalSeconds * tg.UnhealthyThresholdCount <= 30,
      "the ALB drops a dead target within 30 s, as Route 53 drops the region")
    local listener = one(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners, "HTTP only without a certificate")
    lu.assertEquals(listener.Port, 80)
    lu.assertEquals(listener.Protocol, "HTTP")
    lu.assertEquals(listener.DefaultActions[1].Type, "forward")
    lu.assertEquals(listener.DefaultActions[1].TargetGroupArn, tg.TargetGroupArn)
    local health = elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions
    lu.assertEquals(#health, r.desired, "the ASG's instances are the targets")
    for _, h in ipairs(health) do lu.assertEquals(h.TargetHealth.State, "healthy") end
  end
end

function TestTradingRecipe:test_security_groups_admit_the_internet_to_the_alb_and_only_the_alb_to_instances()
  for _, r in ipairs(REGIONS) do
    local ec2 = client("ec2", r.region)
    local lb = load_balancer(r.region, r.role)
    local alb_sg = one(ec2:DescribeSecurityGroups{ GroupIds = lb.SecurityGroups }.SecurityGroups, "ALB SG")
    local ports = {}
    for _, p in ipairs(alb_sg.IpPermissions) do
      lu.assertEquals(p.IpRanges[1].CidrIp, "0.0.0.0/0")
      ports[#ports + 1] = p.FromPort
    end
    -- https off (the default): no HTTPS listener, so 443 stays closed; the plan said why
    lu.assertEquals(sorted(ports), { 80 })
    lu.assertStrContains(applied().err, "fo: warning: https off: clients reach " .. APP
      .. " over plain HTTP")
    local lt = client("ec2", r.region):DescribeLaunchTemplateVersions{ LaunchTemplateName =
      ("lt-%s-%s"):format(r.role:lower(), SUFFIX), Versions = { "$Latest" } }.LaunchTemplateVersions[1]
    local app_sg = one(ec2:DescribeSecurityGroups{ GroupIds = lt.LaunchTemplateData.SecurityGroupIds }
      .SecurityGroups, "app SG")
    local perm = one(app_sg.IpPermissions, "one ingress rule on instances")
    lu.assertEquals(perm.FromPort, 8080)
    lu.assertEquals(perm.ToPort, 8080)
    lu.assertEquals(#(perm.IpRanges or {}), 0, "no CIDR reaches the instances")
    lu.assertEquals(perm.UserIdGroupPairs[1].GroupId, alb_sg.GroupId)
    for _, g in ipairs({ alb_sg, app_sg }) do
      lu.assertIsNil(g.GroupName:match("^sg%-"), "SG names must not start with sg-: " .. g.GroupName)
    end
  end
end

function TestTradingRecipe:test_launch_templates_use_the_al2_ami_from_ssm_t3_medium_imdsv2_and_encrypted_ebs()
  for _, r in ipairs(REGIONS) do
    local ami = client("ssm", r.region):GetParameter{ Name = AL2 }.Parameter.Value
    local v = client("ec2", r.region):DescribeLaunchTemplateVersions{ LaunchTemplateName =
      ("lt-%s-%s"):format(r.role:lower(), SUFFIX), Versions = { "$Latest" } }.LaunchTemplateVersions[1]
    local d = v.LaunchTemplateData
    lu.assertEquals(d.ImageId, ami)
    lu.assertEquals(d.InstanceType, "t3.medium")
    lu.assertEquals(d.MetadataOptions.HttpTokens, "required")
    -- one-minute CPU datapoints: what target tracking's scale-out time rests on
    lu.assertEquals(d.Monitoring, { Enabled = true })
    lu.assertIsTrue(d.BlockDeviceMappings[1].Ebs.Encrypted)
    lu.assertStrContains(d.IamInstanceProfile.Arn or d.IamInstanceProfile.Name, "ec2-profile-" .. SUFFIX)
  end
end

-- Binaries the AMI (Amazon Linux 2, the recipe's SSM parameter) ships: python is its 2.7.
local AL2_BINARIES = { ["/bin/bash"] = true, ["/usr/bin/bash"] = true, ["/bin/sh"] = true,
  ["/usr/bin/python"] = true, ["/usr/bin/python2"] = true, ["/usr/bin/python2.7"] = true }

-- What a launch template's user data sets up: { files = {path = content}, units = {name =
-- {exec = {argv}}}, enabled = {name = true}, shebang = }.
local function bootstrap(script)
  local b = { files = {}, units = {}, enabled = {}, shebang = script:match("^#!(%S+)") }
  for path, body in script:gmatch("cat > (%S+) <<'EOF'\n(.-)\nEOF\n") do b.files[path] = body end
  for path, body in pairs(b.files) do
    local unit = path:match("^/etc/systemd/system/([%w%-_.@]+%.service)$")
    if unit then
      local argv = {}
      for w in (body:match("\nExecStart=([^\n]+)") or ""):gmatch("%S+") do argv[#argv + 1] = w end
      b.units[unit] = { exec = argv, body = body }
    end
  end
  for unit in script:gmatch("systemctl enable %-%-now (%S+)") do b.enabled[unit] = true end
  return b
end

-- The health endpoint as each region's instances serve it, next to what checks it: the
-- server listens on the target group's port (the ALB's health-check port), answers 200 on
-- its health-check path, which is Route 53's too, runs as an enabled systemd unit whose
-- ExecStart is a program the AMI ships or the user data writes, on a script it writes.
function TestTradingRecipe:test_the_user_data_serves_the_health_check_the_alb_and_route53_make()
  local hc = health_check().HealthCheckConfig
  for _, r in ipairs(REGIONS) do
    local v = client("ec2", r.region):DescribeLaunchTemplateVersions{ LaunchTemplateName =
      ("lt-%s-%s"):format(r.role:lower(), SUFFIX), Versions = { "$Latest" } }.LaunchTemplateVersions[1]
    local script = testing.user_data(v.LaunchTemplateData.UserData)
    local b = bootstrap(script)
    lu.assertEquals(b.shebang, "/bin/bash")
    local lb = load_balancer(r.region, r.role)
    local tg = client("elbv2", r.region):DescribeTargetGroups{ LoadBalancerArn = lb.LoadBalancerArn }
      .TargetGroups[1]
    local check_port = tg.HealthCheckPort == "traffic-port" and tg.Port or tonumber(tg.HealthCheckPort)
    lu.assertEquals(tg.Matcher.HttpCode, "200")
    -- the server: which port it binds, which path answers 200
    local unit_name, unit = next(b.units)
    lu.assertNotNil(unit, "a systemd unit runs the health server")
    lu.assertIsNil(next(b.units, unit_name), "one unit")
    lu.assertIsTrue(b.enabled[unit_name] or false, unit_name .. " is enabled and started")
    local exec = unit.exec
    lu.assertIsTrue(AL2_BINARIES[exec[1]] or b.files[exec[1]] ~= nil,
      "ExecStart=" .. tostring(exec[1]) .. " is neither on Amazon Linux 2 nor written by the user data")
    local server = b.files[exec[2] or ""]
    lu.assertNotNil(server, "the unit runs " .. tostring(exec[2]) .. ", which the user data writes")
    local port = tonumber(server:match('HTTPServer%(%("[^"]*", (%d+)%)'))
    lu.assertEquals(port, check_port, "the health server listens on the target group's health-check port")
    local path = server:match('self%.path%.split%("%?"%)%[0%] == "([^"]+)"')
    lu.assertEquals(path, tg.HealthCheckPath, "the health server answers 200 on the ALB's health-check path")
    lu.assertStrContains(server, "self.send_response(200 if ok else 404)")
    if r.role == "Primary" then
      lu.assertEquals(hc.ResourcePath, path, "Route 53 checks the path the instances answer")
    end
  end
end

function TestTradingRecipe:test_auto_scaling_groups_desired_2_and_1_with_cpu_scaling_group_metrics_and_elb_health()
  for _, r in ipairs(REGIONS) do
    local g = asg_of(r.region, r.role)
    lu.assertEquals(g.DesiredCapacity, r.desired)
    lu.assertEquals(g.MinSize, r.desired)
    lu.assertEquals(g.HealthCheckType, "ELB")
    lu.assertEquals(#g.Instances, r.desired)
    -- pinned to the template's version number (not $Latest/$Default), which its
    -- instances run
    local lt = one(client("ec2", r.region):DescribeLaunchTemplates{ LaunchTemplateIds = {
      g.LaunchTemplate.LaunchTemplateId } }.LaunchTemplates, "the group's template")
    lu.assertEquals(g.LaunchTemplate.Version, tostring(lt.LatestVersionNumber))
    for _, i in ipairs(g.Instances) do
      lu.assertEquals(i.LaunchTemplate.Version, g.LaunchTemplate.Version, i.InstanceId)
    end
    local lb = load_balancer(r.region, r.role)
    local tg = client("elbv2", r.region):DescribeTargetGroups{ LoadBalancerArn = lb.LoadBalancerArn }
      .TargetGroups[1]
    lu.assertEquals(g.TargetGroupARNs, { tg.TargetGroupArn })
    -- in the private subnets: those whose route table has no route to the internet
    local lb_subnets = {}
    for _, az in ipairs(lb.AvailabilityZones) do lb_subnets[az.SubnetId] = true end
    local zones = {}
    for id in g.VPCZoneIdentifier:gmatch("[^,]+") do
      lu.assertIsNil(lb_subnets[id], "instances are not in the ALB's public subnets")
      zones[#zones + 1] = id
    end
    lu.assertEquals(#zones, 2)
    local azs = {}
    for _, sn in ipairs(client("ec2", r.region):DescribeSubnets{ SubnetIds = zones }.Subnets) do
      azs[sn.AvailabilityZone] = true
    end
    lu.assertNotNil(next(azs, next(azs)), "instances spread over two AZs")
    lu.assertTrue(#g.EnabledMetrics >= 8, "group metrics enabled")
    for _, m in ipairs(g.EnabledMetrics) do lu.assertEquals(m.Granularity, "1Minute") end
    local policy = one(client("autoscaling", r.region):DescribePolicies{ AutoScalingGroupName =
      g.AutoScalingGroupName }.ScalingPolicies, "one scaling policy")
    lu.assertEquals(policy.PolicyType, "TargetTrackingScaling")
    lu.assertEquals(policy.TargetTrackingConfiguration.PredefinedMetricSpecification
      .PredefinedMetricType, "ASGAverageCPUUtilization")
    lu.assertEquals(policy.TargetTrackingConfiguration.TargetValue, 60)
  end
  -- identical ALB/ASG configuration apart from the capacity
  local a, b = asg_of(P, "Primary"), asg_of(S, "Standby")
  lu.assertEquals(a.MaxSize, b.MaxSize)
  lu.assertEquals(a.HealthCheckGracePeriod, b.HealthCheckGracePeriod)
end

function TestTradingRecipe:test_health_check_on_the_primary_alb_every_10s_with_threshold_3()
  local c = health_check().HealthCheckConfig
  lu.assertEquals(c.Type, "HTTP")
  lu.assertEquals(c.FullyQualifiedDomainName, load_balancer(P, "Primary").DNSName)
  lu.assertEquals(c.Port, 80)
  lu.assertEquals(c.ResourcePath, "/health")
  lu.assertEquals(c.RequestInterval, 10)
  lu.assertEquals(c.FailureThreshold, 3)
  lu.assertTrue(c.RequestInterval * c.FailureThreshold <= 30, "failures detected within 30 s")
  lu.assertEquals(#client("route53", G):ListHealthChecks{}.HealthChecks, 1)
  -- the checkers reach a listener of the primary ALB through its security group
  local lb = load_balancer(P, "Primary")
  local elb = client("elbv2", P)
  local listener
  for _, l in ipairs(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners) do
    if l.Port == c.Port then listener = l end
  end
  lu.assertNotNil(listener, "Route 53 checks port " .. c.Port .. ", a listener's")
  lu.assertEquals(listener.Protocol, c.Type)
  local open = false
  for _, g in ipairs(client("ec2", P):DescribeSecurityGroups{ GroupIds = lb.SecurityGroups }.SecurityGroups) do
    for _, perm in ipairs(g.IpPermissions) do
      for _, range in ipairs(perm.IpRanges or {}) do
        open = open or (range.CidrIp == "0.0.0.0/0" and perm.FromPort <= c.Port and c.Port <= perm.ToPort)
      end
    end
  end
  lu.assertIsTrue(open, "the ALB's security group admits Route 53's checkers on " .. c.Port)
end

function TestTradingRecipe:test_weighted_alias_records_100_primary_with_health_check_and_0_standby()
  local rr = app_records()
  lu.assertEquals(#rr, 2)
  local primary, standby = rr[1], rr[2]
  lu.assertEquals({ primary.Weight, standby.Weight }, { 100, 0 })
  lu.assertEquals({ primary.Type, standby.Type }, { "A", "A" })
  lu.assertNotEquals(primary.SetIdentifier, standby.SetIdentifier)
  lu.assertEquals(primary.HealthCheckId, outputs().health_check_id)
  for i, r in ipairs(REGIONS) do
    local lb = load_balancer(r.region, r.role)
    local at = rr[i].AliasTarget
    lu.assertEquals(at.HostedZoneId, lb.CanonicalHostedZoneId, "each ALB's own zone id")
    lu.assertEquals(at.DNSName:lower():gsub("%.$", ""):gsub("^dualstack%.", ""),
      lb.DNSName:lower())
    lu.assertIsTrue(at.EvaluateTargetHealth)
    lu.assertIsNil(rr[i].TTL, "alias records have no TTL")
  end
  lu.assertNotEquals(rr[1].AliasTarget.HostedZoneId, rr[2].AliasTarget.HostedZoneId)
  -- and Route 53 answers with the primary
  lu.assertEquals(applied().sim:resolve(APP, "A").answer[1]:lower(),
    load_balancer(P, "Primary").DNSName:lower() .. ".")
end

function TestTradingRecipe:test_global_table_key_session_id_replica_in_standby_sse_streams_pitr()
  local ddb = client("dynamodb", P)
  local t = ddb:DescribeTable{ TableName = "trading-sessions-" .. SUFFIX }.Table
  lu.assertEquals(t.KeySchema, { { AttributeName = "sessionId", KeyType = "HASH" } })
  lu.assertEquals(t.AttributeDefinitions, { { AttributeName = "sessionId", AttributeType = "S" } })
  lu.assertEquals(t.BillingModeSummary.BillingMode, "PAY_PER_REQUEST")
  lu.assertIsTrue(t.StreamSpecification.StreamEnabled)
  lu.assertEquals(t.StreamSpecification.StreamViewType, "NEW_AND_OLD_IMAGES")
  lu.assertEquals(t.SSEDescription.Status, "ENABLED")
  lu.assertEquals(t.SSEDescription.SSEType, "KMS")
  -- Nothing is retained on destroy, so no deletion protection (DeleteTable refuses a
  -- protected table), in either region.
  lu.assertIsFalse(t.DeletionProtectionEnabled)
  local replicas = {}
  for _, rep in ipairs(t.Replicas or {}) do replicas[rep.RegionName] = rep.ReplicaStatus end
  lu.assertEquals(replicas[S], "ACTIVE")
  local pitr = ddb:DescribeContinuousBackups{ TableName = t.TableName }.ContinuousBackupsDescription
  lu.assertEquals(pitr.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  local rep = client("dynamodb", S):DescribeTable{ TableName = t.TableName }.Table
  lu.assertEquals(rep.TableStatus, "ACTIVE")
  lu.assertEquals(rep.TableArn, outputs().replica_arn)
  lu.assertIsFalse(rep.DeletionProtectionEnabled)
  lu.assertEquals(rep.SSEDescription and rep.SSEDescription.Status, "ENABLED", "the replica is encrypted too")
  -- point-in-time recovery is the replica's own, read in its region: the standby's copy
  -- is restorable too
  local rep_pitr = client("dynamodb", S):DescribeContinuousBackups{ TableName = t.TableName }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription
  lu.assertEquals(rep_pitr.PointInTimeRecoveryStatus, "ENABLED", "PITR on the replica")
  lu.assertEquals(tagmap(client("dynamodb", S):ListTagsOfResource{ ResourceArn = rep.TableArn }
    .Tags).FailoverRole, "Standby")
end

function TestTradingRecipe:test_sns_topics_in_each_region_and_us_east_1()
  local expect = { [P] = "failover-topic-primary-", [S] = "failover-topic-standby-",
    [G] = "failover-topic-global-" }
  for region, prefix in pairs(expect) do
    local topic = one(client("sns", region):ListTopics{}.Topics, "one topic in " .. region)
    lu.assertStrMatches(topic.TopicArn, "arn:aws:sns:" .. region:gsub("%-", "%%-") .. ":%d+:"
      .. prefix:gsub("%-", "%%-") .. SUFFIX)
    local attrs = client("sns", region):GetTopicAttributes{ TopicArn = topic.TopicArn }.Attributes
    local policy = cjson.decode(attrs.Policy)
    local cloudwatch = false
    for _, st in ipairs(policy.Statement) do
      cloudwatch = cloudwatch or (st.Principal.Service == "cloudwatch.amazonaws.com")
    end
    lu.assertIsTrue(cloudwatch, "CloudWatch alarms may publish to " .. topic.TopicArn)
  end
end

-- Each topic is encrypted at rest with a customer managed key of its own region that
-- rotates and whose policy lets CloudWatch alarms use it (alias/aws/sns never does: alarms
-- could not notify). Read back from the simulator through SNS and KMS.
function TestTradingRecipe:test_topics_encrypted_with_a_rotating_key_of_their_region_cloudwatch_may_use()
  local o = outputs()
  for region, arn in pairs({ [P] = o.primary_topic_arn, [S] = o.standby_topic_arn,
      [G] = o.global_topic_arn }) do
    local key_ref = client("sns", region):GetTopicAttributes{ TopicArn = arn }.Attributes
      .KmsMasterKeyId
    lu.assertNotNil(key_ref, arn .. " is encrypted")
    local kms = client("kms", region)
    local md = kms:DescribeKey{ KeyId = key_ref }.KeyMetadata
    lu.assertEquals(md.KeyManager, "CUSTOMER", arn .. ": a customer managed key, not alias/aws/sns")
    lu.assertStrMatches(md.Arn, "arn:aws:kms:" .. region:gsub("%-", "%%-") .. ":%d+:key/.+")
    lu.assertEquals(md.KeyState, "Enabled", md.Arn)
    lu.assertIsTrue(kms:GetKeyRotationStatus{ KeyId = md.KeyId }.KeyRotationEnabled,
      md.Arn .. " rotates")
    local policy = cjson.decode(kms:GetKeyPolicy{ KeyId = md.KeyId, PolicyName = "default" }.Policy)
    local actions = {}
    for _, st in ipairs(policy.Statement) do
      local svc = st.Principal and st.Principal.Service
      if st.Effect == "Allow" and (svc == "cloudwatch.amazonaws.com"
          or (type(svc) == "table" and svc[1] == "cloudwatch.amazonaws.com")) then
        for _, a in ipairs(as_list(st.Action)) do actions[a] = true end
      end
    end
    lu.assertIsTrue(actions["kms:Decrypt"] and (actions["kms:GenerateDataKey*"]
      or actions["kms:GenerateDataKey"]), md.Arn .. ": CloudWatch may use the key")
  end
end

-- The session table at rest (tableEncryption = "cmk", the default): each replica under the
-- customer managed key of its own region (the region's topics' key, alias
-- trading-data-<role>-<suffix>), read in that region; the key's policy lets this
-- account's principals use it only through DynamoDB of that region (the instances' item
-- calls and the deployer's table changes), and an item written in one region is read in
-- the other.
function TestTradingRecipe:test_session_table_replicas_under_their_regions_customer_managed_key()
  local name = "trading-sessions-" .. SUFFIX
  local keys = {}
  for _, r in ipairs(REGIONS) do
    local kms = client("kms", r.region)
    local md = kms:DescribeKey{ KeyId = ("alias/trading-data-%s-%s"):format(r.role:lower(),
      SUFFIX) }.KeyMetadata
    keys[r.region] = md.Arn
    local t = client("dynamodb", r.region):DescribeTable{ TableName = name }.Table
    lu.assertEquals(t.TableStatus, "ACTIVE", r.region)
    lu.assertEquals(t.SSEDescription and t.SSEDescription.SSEType, "KMS", r.region)
    lu.assertEquals(t.SSEDescription.Status, "ENABLED", r.region)
    lu.assertEquals(t.SSEDescription.KMSMasterKeyArn, md.Arn,
      r.region .. ": the replica is under its region's own key")
    lu.assertEquals(md.KeyManager, "CUSTOMER")
    lu.assertEquals(md.KeyState, "Enabled")
    local policy = cjson.decode(kms:GetKeyPolicy{ KeyId = md.KeyId, PolicyName = "default" }.Policy)
    local via
    for _, st in ipairs(policy.Statement) do
      local cond = st.Condition and st.Condition.StringEquals
      if st.Effect == "Allow" and cond and cond["kms:ViaService"] then
        local actions = {}
        for _, a in ipairs(as_list(st.Action)) do actions[a] = true end
        if actions["kms:CreateGrant"] and actions["kms:Decrypt"] then via = cond end
      end
    end
    lu.assertNotNil(via, md.Arn .. ": DynamoDB may use the key")
    lu.assertEquals(via["kms:ViaService"], "dynamodb." .. r.region .. ".amazonaws.com")
    lu.assertStrMatches(via["kms:CallerAccount"], "%d+")
  end
  lu.assertNotEquals(keys[P], keys[S])
  local t = client("dynamodb", P):DescribeTable{ TableName = name }.Table
  lu.assertEquals(t.Replicas[1].KMSMasterKeyId, keys[S])
  client("dynamodb", S):PutItem{ TableName = name, Item = { sessionId = { S = "key-check" } } }
  lu.assertEquals(client("dynamodb", P):GetItem{ TableName = name,
    Key = { sessionId = { S = "key-check" } } }.Item, { sessionId = { S = "key-check" } })
  client("dynamodb", P):DeleteItem{ TableName = name, Key = { sessionId = { S = "key-check" } } }
end

function TestTradingRecipe:test_alarm_on_the_health_check_in_us_east_1_and_per_region_alarms_to_their_topics()
  local o = outputs()
  local a = one(client("cloudwatch", G):DescribeAlarms{}.MetricAlarms, "one alarm in us-east-1")
  lu.assertEquals(a.Namespace, "AWS/Route53")
  lu.assertEquals(a.MetricName, "HealthCheckStatus")
  lu.assertEquals(a.Dimensions, { { Name = "HealthCheckId", Value = o.health_check_id } })
  lu.assertEquals(a.Statistic, "Minimum")
  lu.assertEquals(a.Period, 60)
  lu.assertEquals(a.Threshold, 1)
  lu.assertEquals(a.ComparisonOperator, "LessThanThreshold")
  lu.assertEquals(a.TreatMissingData, "breaching")
  lu.assertEquals(a.EvaluationPeriods, 1)
  lu.assertEquals(a.DatapointsToAlarm, 1)
  lu.assertEquals(a.AlarmActions, { o.global_topic_arn })
  lu.assertEquals(a.OKActions, { o.global_topic_arn })
  for _, r in ipairs(REGIONS) do
    local topic = r.role == "Primary" and o.primary_topic_arn or o.standby_topic_arn
    local metrics = {}
    for _, al in ipairs(client("cloudwatch", r.region):DescribeAlarms{}.MetricAlarms) do
      if not al.AlarmName:match("^TargetTracking%-") then
        lu.assertEquals(al.AlarmActions, { topic }, al.AlarmName)
        metrics[#metrics + 1] = al.Namespace .. " " .. al.MetricName
      end
    end
    lu.assertEquals(sorted(metrics), { "AWS/ApplicationELB HTTPCode_ELB_5XX_Count",
      "AWS/ApplicationELB UnHealthyHostCount", "AWS/AutoScaling GroupInServiceInstances" })
  end
end

-- The metrics AWS publishes that the stack's alarms may watch, with the dimension sets
-- AWS publishes them under (an alarm on any other combination never gets a data point):
-- ELB's CloudWatch metrics, Auto Scaling's group metrics, Route 53's health-check metrics
-- (us-east-1 only). nonzero: published only when not zero (no data is the normal case).
local ELB_TG_DIMS = { "LoadBalancer,TargetGroup", "AvailabilityZone,LoadBalancer,TargetGroup" }
local ELB_LB_DIMS = { "LoadBalancer", "AvailabilityZone,LoadBalancer" }
local PUBLISHED = {
  ["AWS/ApplicationELB UnHealthyHostCount"] = { dims = ELB_TG_DIMS },
  ["AWS/ApplicationELB HealthyHostCount"] = { dims = ELB_TG_DIMS },
  ["AWS/ApplicationELB HTTPCode_ELB_5XX_Count"] = { dims = ELB_LB_DIMS, nonzero = true },
  ["AWS/ApplicationELB HTTPCode_Target_5XX_Count"] = { dims = ELB_TG_DIMS, nonzero = true },
  ["AWS/AutoScaling GroupInServiceInstances"] = { dims = { "AutoScalingGroupName" }, group = true },
  ["AWS/AutoScaling GroupDesiredCapacity"] = { dims = { "AutoScalingGroupName" }, group = true },
  ["AWS/Route53 HealthCheckStatus"] = { dims = { "HealthCheckId" }, region = G },
}

-- Does `value` breach the alarm's threshold?
local function breaches(a, value)
  local op, t = a.ComparisonOperator, a.Threshold
  if op == "GreaterThanThreshold" then return value > t end
  if op == "GreaterThanOrEqualToThreshold" then return value >= t end
  if op == "LessThanThreshold" then return value < t end
  if op == "LessThanOrEqualToThreshold" then return value <= t end
  error("unexpected comparison " .. tostring(op))
end

function TestTradingRecipe:test_every_alarm_watches_a_metric_aws_publishes_for_the_stacks_own_resources()
  local hc = health_check()
  local seen = {}
  for _, region in ipairs({ P, S, G }) do
    -- the real resources of the region, as their services name them in metrics
    local lb_dim, tg_dim, group = {}, {}, {}
    local elb = client("elbv2", region)
    for _, lb in ipairs(elb:DescribeLoadBalancers{}.LoadBalancers) do
      lb_dim[testing.arn_suffix(lb.LoadBalancerArn)] = lb
      for _, tg in ipairs(elb:DescribeTargetGroups{ LoadBalancerArn = lb.LoadBalancerArn }.TargetGroups) do
        tg_dim[testing.arn_suffix(tg.TargetGroupArn)] = lb
      end
    end
    for _, g in ipairs(client("autoscaling", region):DescribeAutoScalingGroups{}.AutoScalingGroups) do
      group[g.AutoScalingGroupName] = g
    end
    for _, a in ipairs(client("cloudwatch", region):DescribeAlarms{}.MetricAlarms) do
      if not a.AlarmName:match("^TargetTracking%-") then -- Auto Scaling's own
        local key = a.Namespace .. " " .. a.MetricName
        local spec = PUBLISHED[key]
        lu.assertNotNil(spec, a.AlarmName .. ": " .. key .. " is no metric AWS publishes for this stack")
        lu.assertEquals(region, spec.region or region, a.AlarmName .. ": " .. key
          .. " is published in " .. tostring(spec.region) .. " only")
        local names, dims = {}, {}
        for _, d in ipairs(a.Dimensions or {}) do
          names[#names + 1] = d.Name
          dims[d.Name] = d.Value
        end
        local set = table.concat(sorted(names), ",")
        local known = false
        for _, ok in ipairs(spec.dims) do known = known or ok == set end
        lu.assertIsTrue(known, ("%s: %s is published with dimensions {%s}, not {%s}")
          :format(a.AlarmName, key, table.concat(spec.dims, "} or {"), set))
        -- the values name this region's real resources
        if dims.LoadBalancer then
          lu.assertNotNil(lb_dim[dims.LoadBalancer], a.AlarmName .. ": LoadBalancer "
            .. dims.LoadBalancer .. " is no load balancer's ARN suffix in " .. region)
        end
        if dims.TargetGroup then
          lu.assertNotNil(tg_dim[dims.TargetGroup], a.AlarmName .. ": TargetGroup "
            .. dims.TargetGroup .. " is no target group's ARN suffix in " .. region)
          lu.assertIs(tg_dim[dims.TargetGroup], lb_dim[dims.LoadBalancer],
            a.AlarmName .. ": the target group is the load balancer's")
        end
        if dims.AvailabilityZone then
          lu.assertStrMatches(dims.AvailabilityZone, region:gsub("%-", "%%-") .. "%l")
        end
        if dims.AutoScalingGroupName then
          local g = group[dims.AutoScalingGroupName]
          lu.assertNotNil(g, a.AlarmName .. ": no Auto Scaling group " .. dims.AutoScalingGroupName
            .. " in " .. region)
          local enabled = {}
          for _, m in ipairs(g.EnabledMetrics or {}) do enabled[m.Metric] = true end
          lu.assertIsTrue(enabled[a.MetricName] or false, a.AlarmName .. ": the group publishes "
            .. a.MetricName .. " only with its metrics collection enabled")
        end
        if dims.HealthCheckId then lu.assertEquals(dims.HealthCheckId, hc.Id) end
        if spec.nonzero then
          lu.assertIsTrue(a.TreatMissingData == "notBreaching" or a.TreatMissingData == "ignore",
            a.AlarmName .. ": " .. key .. " has no data while all is well")
        end
        seen[#seen + 1] = a
      end
    end
  end
  lu.assertEquals(#seen, 7, "three alarms per region and the health check's")
end

function TestTradingRecipe:test_the_alarms_fire_on_a_failure_and_stay_ok_at_steady_state()
  local by_metric = {}
  for _, region in ipairs({ P, S, G }) do
    for _, a in ipairs(client("cloudwatch", region):DescribeAlarms{}.MetricAlarms) do
      if not a.AlarmName:match("^TargetTracking%-") then
        by_metric[a.MetricName] = by_metric[a.MetricName] or {}
        table.insert(by_metric[a.MetricName], a)
        lu.assertTrue(a.Period * (a.DatapointsToAlarm or a.EvaluationPeriods) <= 180,
          a.AlarmName .. ": fires within 3 minutes")
      end
    end
  end
  for _, a in ipairs(by_metric.UnHealthyHostCount) do
    lu.assertIsFalse(breaches(a, 0), a.AlarmName .. ": all targets healthy is OK")
    lu.assertIsTrue(breaches(a, 1), a.AlarmName .. ": one unhealthy target alarms")
    lu.assertEquals(a.Statistic, "Maximum", a.AlarmName)
  end
  for _, a in ipairs(by_metric.HTTPCode_ELB_5XX_Count) do
    lu.assertIsFalse(breaches(a, 0), a.AlarmName)
    lu.assertIsTrue(breaches(a, 100), a.AlarmName .. ": 100 5xx a minute alarm")
  end
  for _, a in ipairs(by_metric.GroupInServiceInstances) do
    local g = client("autoscaling", a.AlarmArn:match("^arn:[^:]+:cloudwatch:([^:]+)"))
      :DescribeAutoScalingGroups{ AutoScalingGroupNames = { a.Dimensions[1].Value } }
      .AutoScalingGroups[1]
    lu.assertIsFalse(breaches(a, g.DesiredCapacity), a.AlarmName .. ": all in service is OK")
    lu.assertIsTrue(breaches(a, g.DesiredCapacity - 1), a.AlarmName .. ": one lost alarms")
  end
  local hc = one(by_metric.HealthCheckStatus, "one alarm on the health check")
  lu.assertIsFalse(breaches(hc, 1), "a healthy check (1) is OK")
  lu.assertIsTrue(breaches(hc, 0), "an unhealthy check (0) alarms")
  lu.assertEquals(hc.Statistic, "Minimum", "any unhealthy verdict in the minute")
  lu.assertTrue(hc.Period * (hc.DatapointsToAlarm or hc.EvaluationPeriods) <= 60,
    "the alarm's minute closes within a minute of detection")
  -- no data: the check (or its checkers) are gone, which is no steady state
  lu.assertEquals(hc.TreatMissingData, "breaching")
end

-- What SSM Agent calls (AWS Systems Manager's reference "ec2messages, ssmmessages and
-- other API operations"): registration, Session Manager's channels, Run Command's messages.
local SSM_AGENT_ACTIONS = sorted({ "ssm:UpdateInstanceInformation",
  "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
  "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
  "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply" })

function TestTradingRecipe:test_iam_policy_least_privilege_no_wildcard_action_names_table_and_replica()
  local o = outputs()
  local iam = client("iam", G)
  local role = iam:GetRole{ RoleName = "ec2-role-" .. SUFFIX }.Role
  local trust = testing.policy(role.AssumeRolePolicyDocument)
  lu.assertEquals(trust.Statement[1].Principal.Service, "ec2.amazonaws.com")
  lu.assertEquals(trust.Statement[1].Action, "sts:AssumeRole")
  local profile = iam:GetInstanceProfile{ InstanceProfileName = "ec2-profile-" .. SUFFIX }.InstanceProfile
  lu.assertEquals(profile.Roles[1].RoleName, role.RoleName)
  lu.assertEquals(#iam:ListAttachedRolePolicies{ RoleName = role.RoleName }.AttachedPolicies, 0)

  -- The policy as IAM holds it: exactly the item actions on exactly the table and its
  -- replica (their ARNs as DynamoDB answers them), PutMetricData into one namespace.
  local doc = role_policy()
  local ddb = client("dynamodb", P)
  local t = ddb:DescribeTable{ TableName = "trading-sessions-" .. SUFFIX }.Table
  local rep = client("dynamodb", S):DescribeTable{ TableName = t.TableName }.Table
  local want_resources = { t.TableArn, rep.TableArn }
  if t.GlobalSecondaryIndexes or t.LocalSecondaryIndexes then -- Query on an index names it
    want_resources[#want_resources + 1] = t.TableArn .. "/index/*"
    want_resources[#want_resources + 1] = rep.TableArn .. "/index/*"
  end
  local ITEM_ACTIONS = { "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
    "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem" }
  local dynamodb_actions, ssm_actions, metrics = {}, {}, 0
  for _, st in ipairs(doc.Statement) do
    lu.assertEquals(st.Effect, "Allow")
    lu.assertIsNil(st.NotAction, "NotAction grants everything else")
    lu.assertIsNil(st.NotResource, "NotResource grants everything else")
    local actions = as_list(st.Action)
    for _, action in ipairs(actions) do
      lu.assertNotStrContains(action, "*", false, "no wildcard action")
      if action:match("^dynamodb:") then
        dynamodb_actions[#dynamodb_actions + 1] = action
        lu.assertEquals(sorted(as_list(st.Resource)), sorted(want_resources),
          "DynamoDB actions on the table and its replica only")
      elseif action:match("^ssm:") or action:match("^ssmmessages:")
        or action:match("^ec2messages:") then
        ssm_actions[#ssm_actions + 1] = action
        lu.assertEquals(st.Resource, "*") -- the agent's actions take no resource ARN
      elseif action:match("^logs:") then
        -- the CloudWatch agent's, on the stack's groups: test_instances_ship_the_app_...
        lu.assertNotEquals(st.Resource, "*")
      else
        lu.assertEquals(action, "cloudwatch:PutMetricData", "no action the instances do not need")
        lu.assertEquals(#actions, 1)
        metrics = metrics + 1
        lu.assertEquals(st.Resource, "*") -- PutMetricData takes no resource
        -- the condition key that scopes it: one namespace, the application's own
        local keys = {}
        for op, kv in pairs(st.Condition or {}) do
          for k, v in pairs(kv) do keys[#keys + 1] = { op, k, v } end
        end
        lu.assertEquals(#keys, 1, "one condition: the namespace")
        lu.assertEquals(keys[1][1], "StringEquals")
        lu.assertEquals(keys[1][2], "cloudwatch:namespace")
        lu.assertEquals(type(keys[1][3]), "string")
        lu.assertIsNil(keys[1][3]:match("^AWS/"), "AWS/ namespaces are AWS's own")
      end
    end
  end
  lu.assertEquals(sorted(dynamodb_actions), ITEM_ACTIONS,
    "item actions only: no DeleteTable, UpdateTable, Scan of the whole table ...")
  lu.assertEquals(metrics, 1)
  -- SSM Agent's own actions (registration, Session Manager's channels, Run Command's
  -- messages), not AmazonSSMManagedInstanceCore's documents, parameters and inventory
  lu.assertEquals(sorted(ssm_actions), SSM_AGENT_ACTIONS)
end

-- Logging (issue 13 item 8), read back from CloudWatch Logs, EC2, KMS and IAM.
local LOG_KINDS = { "app", "health", "vpc-flow-logs" }
local LOG_ACTIONS = { "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents" }

-- The stack's log groups of region r as CloudWatch Logs lists them: {kind = group}.
local function log_groups(r)
  local prefix = ("/trading/%s/%s/"):format(SUFFIX, r.role:lower())
  local out, kinds = {}, {}
  for _, g in ipairs(client("logs", r.region):DescribeLogGroups{ logGroupNamePrefix = prefix }
      .logGroups) do
    local kind = g.logGroupName:sub(#prefix + 1)
    out[kind] = g
    kinds[#kinds + 1] = kind
  end
  lu.assertEquals(sorted(kinds), LOG_KINDS, r.region .. ": the log groups under " .. prefix)
  return out
end

-- The ARN of the key that encrypts the region's topic (the region's key).
local function region_key_arn(region, topic_arn)
  local ref = client("sns", region):GetTopicAttributes{ TopicArn = topic_arn }.Attributes.KmsMasterKeyId
  return client("kms", region):DescribeKey{ KeyId = ref }.KeyMetadata.Arn
end

function TestTradingRecipe:test_log_groups_kept_90_days_encrypted_with_the_region_key_only_for_them()
  local o = outputs()
  local account = client("sts", P):GetCallerIdentity{}.Account
  for _, r in ipairs(REGIONS) do
    local key = region_key_arn(r.region, r.role == "Primary" and o.primary_topic_arn or o.standby_topic_arn)
    local arns = {}
    for kind, g in pairs(log_groups(r)) do
      lu.assertEquals(g.retentionInDays, 90, g.logGroupName .. ": the default retention")
      lu.assertEquals(g.kmsKeyId, key, g.logGroupName .. ": encrypted with the region's key")
      lu.assertEquals(g.logGroupArn, ("arn:aws:logs:%s:%s:log-group:%s"):format(r.region,
        account, g.logGroupName), kind)
      arns[#arns + 1] = g.logGroupArn
    end
    -- the key policy: CloudWatch Logs of this region, for exactly these groups
    local kms = client("kms", r.region)
    local policy = cjson.decode(kms:GetKeyPolicy{ KeyId = key, PolicyName = "default" }.Policy)
    local found = 0
    for _, st in ipairs(policy.Statement) do
      local svc = st.Principal and st.Principal.Service
      for _, sv in ipairs(as_list(svc or {})) do
        lu.assertNil(tostring(sv):match("^logs%.") and sv ~= "logs." .. r.region .. ".amazonaws.com"
          or nil, "only this region's CloudWatch Logs: " .. tostring(sv))
        if sv == "logs." .. r.region .. ".amazonaws.com" then
          found = found + 1
          lu.assertEquals(st.Effect, "Allow")
          local cond = st.Condition or {}
          local ctx = (cond.ArnEquals or cond.ArnLike or {})["kms:EncryptionContext:aws:logs:arn"]
          lu.assertNotNil(ctx, "the statement is conditioned on the group's ARN")
          lu.assertEquals(sorted(as_list(ctx)), sorted(arns), "exactly the stack's groups")
        end
      end
    end
    lu.assertEquals(found, 1, r.region .. ": one key policy statement for CloudWatch Logs")
  end
  -- the global region's key encrypts no group: its policy names no CloudWatch Logs
  local gkey = region_key_arn(G, o.global_topic_arn)
  local gpolicy = client("kms", G):GetKeyPolicy{ KeyId = gkey, PolicyName = "default" }.Policy
  lu.assertNotStrContains(gpolicy, "logs.")
end

function TestTradingRecipe:test_vpc_flow_logs_all_traffic_to_their_group_by_a_role_scoped_to_it()
  local account = client("sts", P):GetCallerIdentity{}.Account
  local iam = client("iam", G)
  for _, r in ipairs(REGIONS) do
    local group = log_groups(r)["vpc-flow-logs"]
    local vpc = vpc_of(r.region).VpcId
    local f = one(client("ec2", r.region):DescribeFlowLogs{ Filter = { { Name = "resource-id",
      Values = { vpc } } } }.FlowLogs, "one flow log of the VPC in " .. r.region)
    lu.assertEquals({ f.TrafficType, f.LogDestinationType, f.LogGroupName, f.FlowLogStatus,
      f.DeliverLogsStatus }, { "ALL", "cloud-watch-logs", group.logGroupName, "ACTIVE", "SUCCESS" })
    lu.assertIsNil(f.DeliverLogsErrorMessage)
    -- the delivery role: trusts the flow-logs service for this account's flow logs of this
    -- region, may write only to the group
    local name = f.DeliverLogsPermissionArn:match(":role/(.+)$")
    local role = iam:GetRole{ RoleName = name }.Role
    local trust = testing.policy(role.AssumeRolePolicyDocument)
    local st = one(trust.Statement, name .. ": one trust statement")
    lu.assertEquals({ st.Effect, st.Principal.Service, st.Action },
      { "Allow", "vpc-flow-logs.amazonaws.com", "sts:AssumeRole" })
    lu.assertEquals(st.Condition.StringEquals["aws:SourceAccount"], account)
    lu.assertEquals(st.Condition.ArnLike["aws:SourceArn"],
      ("arn:aws:ec2:%s:%s:vpc-flow-log/*"):format(r.region, account))
    lu.assertEquals(#iam:ListAttachedRolePolicies{ RoleName = name }.AttachedPolicies, 0)
    local pname = one(iam:ListRolePolicies{ RoleName = name }.PolicyNames, name .. ": one inline policy")
    local doc = testing.policy(iam:GetRolePolicy{ RoleName = name, PolicyName = pname }.PolicyDocument)
    local grant = one(doc.Statement, pname .. ": one statement")
    lu.assertEquals(grant.Effect, "Allow")
    lu.assertEquals(sorted(as_list(grant.Action)), LOG_ACTIONS)
    lu.assertEquals(as_list(grant.Resource), { group.logGroupArn .. ":*" })
    lu.assertIsNil(grant.Condition)
  end
end

function TestTradingRecipe:test_instances_ship_the_app_and_health_logs_to_their_groups_with_scoped_grants()
  -- the instance role writes to the app and health groups of both regions, nothing else
  local want = {}
  for _, r in ipairs(REGIONS) do
    local g = log_groups(r)
    want[#want + 1] = g.app.logGroupArn .. ":*"
    want[#want + 1] = g.health.logGroupArn .. ":*"
  end
  local logs_statements = 0
  for _, st in ipairs(role_policy().Statement) do
    local actions = as_list(st.Action)
    if actions[1]:match("^logs:") then
      logs_statements = logs_statements + 1
      lu.assertEquals(sorted(actions), LOG_ACTIONS, "no CreateLogGroup, retention or delete")
      lu.assertEquals(sorted(as_list(st.Resource)), sorted(want))
    end
  end
  lu.assertEquals(logs_statements, 1)
  -- the user data installs, configures and starts the CloudWatch agent for those groups,
  -- and the health service writes the log the agent reads
  local CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
  for _, r in ipairs(REGIONS) do
    local g = log_groups(r)
    local v = client("ec2", r.region):DescribeLaunchTemplateVersions{ LaunchTemplateName =
      ("lt-%s-%s"):format(r.role:lower(), SUFFIX), Versions = { "$Latest" } }.LaunchTemplateVersions[1]
    local script = testing.user_data(v.LaunchTemplateData.UserData)
    local b = bootstrap(script)
    lu.assertStrContains(script, "\nyum install -y amazon-cloudwatch-agent\n")
    lu.assertNotNil(b.files[CONFIG], "the user data writes the agent's configuration")
    lu.assertStrContains(script, "amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \\\n  -c file:"
      .. CONFIG .. "\n")
    local files = {}
    for _, c in ipairs(cjson.decode(b.files[CONFIG]).logs.logs_collected.files.collect_list) do
      files[c.log_group_name] = c.file_path
    end
    lu.assertEquals(files, { [g.app.logGroupName] = "/var/log/trading/app.log",
      [g.health.logGroupName] = "/var/log/trading/health.log" })
    lu.assertStrContains(b.files["/opt/trading/health.py"],
      'sys.stderr = open("/var/log/trading/health.log", "a", 1)')
  end
end

function TestTradingRecipe:test_every_taggable_resource_has_environment_and_failover_role()
  local list = taggable()
  lu.assertTrue(#list >= 50, ("found %d taggable resources"):format(#list))
  local kinds = {}
  for _, r in ipairs(list) do kinds[r.what:match("^(.-) [^ ]+$") or r.what] = true end
  for _, kind in ipairs({ "instance", "volume", "network interface", "launch template",
      "vpc endpoint", "asg", "log group", "flow log", "bucket" }) do
    lu.assertTrue(kinds[kind], "the list holds a " .. kind)
  end
  for _, r in ipairs(list) do
    lu.assertEquals(r.tags.Environment, "Production", r.what)
    lu.assertNotNil(r.tags.Name, r.what .. " has a Name")
    local expect = r.region == S and "Standby" or "Primary"
    lu.assertEquals(r.tags.FailoverRole, expect, r.what)
  end
end

-- The ELB account AWS documents for each region's access log delivery (ALB user guide).
local ELB_LOG_ACCOUNT = { [P] = "635631232127", [S] = "054676820928" }

function TestTradingRecipe:test_each_alb_logs_to_a_versioned_sse_s3_bucket_of_its_region_that_admits_its_elb()
  local account = client("sts", P):GetCallerIdentity{}.Account
  for _, r in ipairs(REGIONS) do
    local elb, s3 = client("elbv2", r.region), client("s3", r.region)
    local lb = one(elb:DescribeLoadBalancers{}.LoadBalancers, "one ALB in " .. r.region)
    local attrs = {}
    for _, a in ipairs(elb:DescribeLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn }.Attributes) do
      attrs[a.Key] = a.Value
    end
    local bucket = attrs["access_logs.s3.bucket"]
    lu.assertEquals({ attrs["access_logs.s3.enabled"], bucket, attrs["access_logs.s3.prefix"] },
      { "true", ("alb-logs-%s-%s-%s"):format(account, r.region, SUFFIX), "alb" })
    lu.assertEquals(s3:GetBucketLocation{ Bucket = bucket }.LocationConstraint, r.region)
    lu.assertEquals(s3:GetBucketVersioning{ Bucket = bucket }.Status, "Enabled")
    local rule = s3:GetBucketEncryption{ Bucket = bucket }.ServerSideEncryptionConfiguration.Rules[1]
    lu.assertEquals(rule.ApplyServerSideEncryptionByDefault.SSEAlgorithm, "AES256", "SSE-S3: all ALB logs take")
    local block = s3:GetPublicAccessBlock{ Bucket = bucket }.PublicAccessBlockConfiguration
    lu.assertEquals({ block.BlockPublicAcls, block.IgnorePublicAcls, block.BlockPublicPolicy,
      block.RestrictPublicBuckets }, { true, true, true, true })
    local arn = "arn:aws:s3:::" .. bucket
    local allow, deny = {}, {}
    for _, st in ipairs(as_list(cjson.decode(s3:GetBucketPolicy{ Bucket = bucket }.Policy).Statement)) do
      if st.Effect == "Allow" then allow[#allow + 1] = st else deny[#deny + 1] = st end
    end
    local a = one(allow, "one Allow: the region's ELB log delivery")
    lu.assertEquals(as_list(a.Principal.AWS), { "arn:aws:iam::" .. ELB_LOG_ACCOUNT[r.region] .. ":root" })
    lu.assertEquals(as_list(a.Action), { "s3:PutObject" })
    lu.assertEquals(as_list(a.Resource), { ("%s/alb/AWSLogs/%s/*"):format(arn, account) })
    local d = one(deny, "one Deny: requests without TLS")
    lu.assertEquals(d.Principal, "*")
    lu.assertEquals(tostring(d.Condition.Bool["aws:SecureTransport"]), "false")
    lu.assertEquals(sorted(as_list(d.Resource)), { arn, arn .. "/*" })
    -- ELB wrote its test object when the logs were turned on
    local test_file = s3:GetObject{ Bucket = bucket, Key = ("alb/AWSLogs/%s/ELBAccessLogTestFile"):format(account) }
    lu.assertStrContains(test_file.Body, lb.LoadBalancerName)
    local tags = tagmap(s3:GetBucketTagging{ Bucket = bucket }.TagSet)
    lu.assertEquals({ tags.Environment, tags.FailoverRole }, { "Production", r.role })
  end
end

function TestTradingRecipe:test_every_name_carries_the_suffix()
  local names = {}
  for _, r in ipairs(taggable()) do names[#names + 1] = { r.what, r.tags.Name } end
  for _, r in ipairs(REGIONS) do
    for _, g in ipairs(client("ec2", r.region):DescribeSecurityGroups{}.SecurityGroups) do
      if g.GroupName ~= "default" then names[#names + 1] = { "sg", g.GroupName } end
    end
    for _, l in ipairs(client("elbv2", r.region):DescribeLoadBalancers{}.LoadBalancers) do
      names[#names + 1] = { "lb", l.LoadBalancerName }
    end
    for _, t in ipairs(client("elbv2", r.region):DescribeTargetGroups{}.TargetGroups) do
      names[#names + 1] = { "tg", t.TargetGroupName }
    end
    for _, p in ipairs(client("autoscaling", r.region):DescribePolicies{}.ScalingPolicies) do
      names[#names + 1] = { "scaling policy", p.PolicyName }
    end
  end
  for _, region in ipairs({ P, S, G }) do
    for _, a in ipairs(client("cloudwatch", region):DescribeAlarms{}.MetricAlarms) do
      names[#names + 1] = { "alarm", a.AlarmName }
    end
  end
  local iam = client("iam", G)
  for _, r in ipairs(iam:ListRoles{}.Roles) do
    names[#names + 1] = { "role", r.RoleName }
    for _, p in ipairs(iam:ListRolePolicies{ RoleName = r.RoleName }.PolicyNames) do
      names[#names + 1] = { "role policy", p }
    end
  end
  for _, rr in ipairs(app_records()) do names[#names + 1] = { "record set", rr.SetIdentifier } end
  lu.assertTrue(#names > 60)
  for _, n in ipairs(names) do
    lu.assertNotNil(n[2], n[1] .. " has a name")
    lu.assertStrContains(n[2], SUFFIX, false, n[1])
  end
end

-- Stacks of their own (other config, another account): left out in the fast mode.
TestTradingOptions = {}

function TestTradingOptions:test_a_suffix_too_long_for_elbv2_names_is_refused_before_anything_is_created()
  local st = deploy(nil, { seed = 1, stack = "long",
    config = { environmentSuffix = "a-suffix-much-too-long" } })
  st:close()
  lu.assertEquals(st.code, 1)
  local text = st.out .. st.err
  lu.assertStrContains(text, "environmentSuffix")
  lu.assertStrContains(text, "AWS allows 32")
  lu.assertEquals(st:mutating_calls(), 0)
end

function TestTradingOptions:test_with_certificates_https_listeners_http_redirects_and_an_https_health_check()
  -- issued ACM certificates, one per region, already in the account
  local certs = {}
  local w = deploy(nil, { seed = "https", stack = "https", config = { environmentSuffix = "tls" },
    before = function(sim, config)
      local issued = require("support.acm").issued
      certs[P], certs[S] = issued(sim, P), issued(sim, S)
      config.primaryCertificateArn, config.standbyCertificateArn = certs[P], certs[S]
    end })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    for _, r in ipairs(REGIONS) do
      local elb = w.sim:client("elbv2", { region = r.region })
      local lb = elb:DescribeLoadBalancers{ Names = { ("alb-%s-tls"):format(r.role:lower()) } }.LoadBalancers[1]
      local by_port = {}
      for _, l in ipairs(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners) do
        by_port[l.Port] = l
      end
      lu.assertEquals(by_port[443].Protocol, "HTTPS")
      lu.assertEquals(by_port[443].Certificates[1].CertificateArn, certs[r.region])
      lu.assertEquals(by_port[443].DefaultActions[1].Type, "forward")
      lu.assertEquals(by_port[80].DefaultActions[1].Type, "redirect")
      lu.assertEquals(by_port[80].DefaultActions[1].RedirectConfig.Protocol, "HTTPS")
      lu.assertEquals(by_port[80].DefaultActions[1].RedirectConfig.StatusCode, "HTTP_301")
    end
    local c = w.sim:client("route53", { region = G }):GetHealthCheck{
      HealthCheckId = w.doc.outputs.health_check_id }.HealthCheck.HealthCheckConfig
    lu.assertEquals(c.Type, "HTTPS")
    lu.assertEquals(c.Port, 443)
    lu.assertIsTrue(c.EnableSNI)
    w.sim:advance(30)
    lu.assertIsTrue(w.sim:health_check_status(w.doc.outputs.health_check_id).healthy)
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- Each instance's image, read through EC2, per region.
local function images_in_service(w)
  local out = {}
  for _, r in ipairs(REGIONS) do
    local ids = {}
    for _, res in ipairs(w.sim:client("ec2", { region = r.region }):DescribeInstances{ Filters = {
        { Name = "instance-state-name", Values = { "pending", "running" } } } }.Reservations) do
      for _, i in ipairs(res.Instances) do ids[i.ImageId] = true end
    end
    out[r.region] = ids
  end
  return out
end

local AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

-- ami_family = al2023: the AL2023 image in both regions, a health endpoint AL2023 can run
-- (python3: AL2023 has no /usr/bin/python), healthy targets, no end-of-support warning
-- (before AL2023's own, 2029-06-30); back to al2: a new template version that the groups
-- pin, and an instance refresh puts every instance on it.
function TestTradingOptions:test_ami_family_al2023_then_back_to_al2_rolls_the_instances()
  local w = deploy(nil, { seed = "al2023", stack = "al2023", config = { environmentSuffix = "al23",
    ami_family = "al2023" } })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    if os.date("!%Y-%m-%d") <= "2029-06-30" then
      lu.assertNotStrContains(w.err, "end of support")
    end
    local want = {}
    for _, r in ipairs(REGIONS) do
      local ssm = w.sim:client("ssm", { region = r.region })
      local ami = ssm:GetParameter{ Name = AL2023 }.Parameter.Value
      lu.assertNotEquals(ami, ssm:GetParameter{ Name = AL2 }.Parameter.Value)
      want[r.region] = { [ami] = true }
      local v = w.sim:client("ec2", { region = r.region }):DescribeLaunchTemplateVersions{
        LaunchTemplateName = ("lt-%s-al23"):format(r.role:lower()), Versions = { "$Latest" } }
        .LaunchTemplateVersions[1].LaunchTemplateData
      lu.assertEquals(v.ImageId, ami)
      local script = require("fo.crypto").base64_decode(v.UserData)
      lu.assertStrContains(script, "ExecStart=/usr/bin/python3 /opt/trading/health.py")
      lu.assertNotStrContains(script, "yum")
      lu.assertStrContains(script, "\ndnf install -y amazon-cloudwatch-agent\n")
    end
    lu.assertEquals(images_in_service(w), want)
    w.sim:advance(30)
    lu.assertIsTrue(w.sim:health_check_status(w.doc.outputs.health_check_id).healthy)

    w:run{ config = { environmentSuffix = "al23", ami_family = "al2" } }
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.err, "Amazon Linux 2 reached its end of support on 2026-06-30")
    for _, r in ipairs(REGIONS) do
      local ami = w.sim:client("ssm", { region = r.region }):GetParameter{ Name = AL2 }.Parameter.Value
      want[r.region] = { [ami] = true }
      local auto = w.sim:client("autoscaling", { region = r.region })
      local g = auto:DescribeAutoScalingGroups{ AutoScalingGroupNames = {
        ("asg-%s-al23"):format(r.role:lower()) } }.AutoScalingGroups[1]
      lu.assertEquals(g.LaunchTemplate.Version, "2")
      local refresh = auto:DescribeInstanceRefreshes{ AutoScalingGroupName =
        g.AutoScalingGroupName }.InstanceRefreshes
      lu.assertEquals(#refresh, 1)
      lu.assertEquals(refresh[1].Status, "Successful")
      lu.assertEquals(refresh[1].Preferences.MinHealthyPercentage, 90)
    end
    lu.assertEquals(images_in_service(w), want, "every instance on the new version's image")
    w.sim:advance(30)
    lu.assertIsTrue(w.sim:health_check_status(w.doc.outputs.health_check_id).healthy)
    -- a rerun changes nothing (no second refresh)
    w:run{}
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- The default domain is one Route 53 accepts (the simulator refuses the reserved
-- example.* names as Route 53 does): a plan-free apply of the defaults made the zone.
function TestTradingOptions:test_the_default_domain_is_one_route53_accepts()
  local r53 = client("route53", G)
  local names = {}
  for _, z in ipairs(r53:ListHostedZones{}.HostedZones) do names[#names + 1] = z.Name end
  lu.assertEquals(names, { "trading.fo.test." })
  -- and Route 53 (the simulator) does refuse a reserved one
  local ok, e = pcall(r53.CreateHostedZone, r53, { Name = "trading.example.com",
    CallerReference = "reserved-check" })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "InvalidDomainName")
end

-- On a fresh stack the plan shows what keeps the private subnets off the internet (the
-- interface and gateway endpoints) and the regions' keys, and warns that Amazon Linux 2 is
-- past its end of support, in the text output and as a --json notice event.
function TestTradingOptions:test_the_plan_shows_endpoints_and_keys_and_warns_that_al2_is_past_end_of_support()
  local dir = testlib.tmpdir()
  local r = testlib.run_fo({ "--state-dir", dir, "--plan", "--config", "environmentSuffix=eol", RECIPE },
    { timeout = 120 })
  local j = testlib.run_fo({ "--state-dir", dir, "--plan", "--json", "--config",
    "environmentSuffix=eol", RECIPE }, { timeout = 120 })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  for _, role in ipairs({ "primary", "standby" }) do
    local region = role == "primary" and P or S
    for _, svc in ipairs({ "ssm", "ssmmessages", "ec2messages", "monitoring", "logs" }) do
      lu.assertStrMatches(r.stdout, ".*%+%s+aws:ec2:vpc_endpoint " .. role .. "/" .. svc
        .. "%s+create\n[^+]-service_name%s+= \"com%.amazonaws%." .. region:gsub("%-", "%%-")
        .. "%." .. svc .. "\".*")
    end
    lu.assertStrMatches(r.stdout, ".*%+%s+aws:ec2:vpc_endpoint " .. role .. "/s3%s+create\n.*")
    lu.assertStrMatches(r.stdout, ".*%+%s+aws:kms:key " .. role
      .. "/topic%-key%s+create\n[^+]-enable_key_rotation%s+= true.*")
  end
  lu.assertStrContains(r.stderr, "fo: warning: ami_family al2: Amazon Linux 2 reached its end "
    .. "of support on 2026-06-30")
  lu.assertStrContains(r.stderr, "ami_family=al2023")
  -- https off (the default): plain HTTP, why, and the fix
  lu.assertStrContains(r.stderr, "fo: warning: https off: clients reach " .. APP .. " over plain "
    .. "HTTP (port 80, unencrypted). HTTPS needs an ACM certificate, and ACM validates it by DNS: "
    .. "the zone trading.fo.test must be delegated")
  lu.assertStrContains(r.stderr, "Delegate it, then rerun with --config https=true")
  lu.assertNil(r.stdout:find("aws:acm:certificate", 1, true))
  local found = false
  for line in j.stdout:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and ev.event == "notice" and ev.level == "warning"
        and tostring(ev.text):find("end of support", 1, true) then
      found = true
    end
  end
  lu.assertTrue(found, "a warning notice event: " .. j.stdout:sub(1, 2000))
end

-- With https=true the plan shows each region's certificate for the application's name in
-- the stack's zone, the HTTPS listener and 443 opened, and no plain-HTTP warning; https=true
-- with certificate ARNs is refused before anything is created.
function TestTradingOptions:test_the_plan_with_https_shows_the_certificates_and_refuses_two_sources()
  local dir = testlib.tmpdir()
  local r = testlib.run_fo({ "--state-dir", dir, "--plan", "--config", "environmentSuffix=tls",
    "--config", "https=true", RECIPE }, { timeout = 120 })
  local both = testlib.run_fo({ "--state-dir", dir, "--plan", "--config", "environmentSuffix=tls",
    "--config", "https=true", "--config", "primaryCertificateArn="
    .. "arn:aws:acm:eu-south-1:123456789012:certificate/abc", "--config", "standbyCertificateArn="
    .. "arn:aws:acm:eu-central-1:123456789012:certificate/def", RECIPE }, { timeout = 120 })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  for _, role in ipairs({ "primary", "standby" }) do
    lu.assertStrMatches(r.stdout, ".*%+%s+aws:acm:certificate " .. role .. "/certificate%s+create\n"
      .. "[^+]-domain_name%s+= \"app%.trading%.fo%.test\".*")
    lu.assertStrMatches(r.stdout, ".*%+%s+aws:elbv2:listener " .. role .. "/https%s+create\n.*")
    lu.assertStrMatches(r.stdout, ".*%+%s+aws:ec2:security_group_rule " .. role
      .. "/alb%-in%-443%s+create\n.*")
  end
  lu.assertNil(r.stderr:find("https off", 1, true))
  lu.assertEquals(both.code, 1, both.stdout .. both.stderr)
  lu.assertStrContains(both.stderr, "config https=true makes the stack's own certificates; "
    .. "primaryCertificateArn and standbyCertificateArn bring your own: give one or the other")
end

function TestTradingOptions:test_an_account_without_eu_south_1_enabled_is_told_so_before_anything_is_created()
  local st = testing.apply(RECIPE, { seed = 2, stack = "optin", config = {},
    sim_options = { disabled_regions = { P } } })
  st:close()
  local text = st.out .. st.err
  lu.assertEquals(st.code, 4, text) -- failed and rolled back: nothing was made
  lu.assertStrContains(text, "region eu-south-1 refuses these credentials (InvalidClientTokenId)")
  lu.assertStrContains(text, "aws account enable-region --region-name eu-south-1")
  lu.assertEquals(st:mutating_calls(), 0, "no resource anywhere")
end

-- The CI proof ------------------------------------------------------------------------

-- The ACM certificates of `region`, every status and key type (DescribeCertificate's).
local function certificates(sim, region)
  local acm = sim:client("acm", { region = region })
  local out = {}
  for _, s in ipairs(acm:ListCertificates{ CertificateStatuses = { "PENDING_VALIDATION", "ISSUED",
      "INACTIVE", "EXPIRED", "VALIDATION_TIMED_OUT", "REVOKED", "FAILED" },
      Includes = { keyTypes = { "RSA_2048", "EC_prime256v1", "EC_secp384r1" } } }
      .CertificateSummaryList) do
    out[#out + 1] = acm:DescribeCertificate{ CertificateArn = s.CertificateArn }.Certificate
  end
  return out
end

-- What of the stack is left in the simulator: a list of "kind id" strings.
local function leftovers(sim)
  local out = {}
  local function add(kind, id) out[#out + 1] = kind .. " " .. tostring(id) end
  local function c(svc, region) return sim:client(svc, { region = region }) end
  for _, region in ipairs({ P, S, G }) do
    local ec2 = c("ec2", region)
    -- the default VPC and what came with it are AWS's: left out (and left alone by fo)
    local aws = aws_defaults(ec2)
    local function add_ec2(kind, id) if not aws[id] then add(kind, id) end end
    for _, v in ipairs(ec2:DescribeVpcs{}.Vpcs) do add_ec2("vpc", v.VpcId) end
    for _, s in ipairs(ec2:DescribeSubnets{}.Subnets) do add_ec2("subnet", s.SubnetId) end
    for _, g in ipairs(ec2:DescribeInternetGateways{}.InternetGateways) do add_ec2("igw", g.InternetGatewayId) end
    for _, g in ipairs(ec2:DescribeSecurityGroups{}.SecurityGroups) do add_ec2("sg", g.GroupId) end
    for _, e in ipairs(ec2:DescribeVpcEndpoints{}.VpcEndpoints) do add("endpoint", e.VpcEndpointId) end
    for _, f in ipairs(ec2:DescribeFlowLogs{}.FlowLogs) do add("flow log", f.FlowLogId) end
    for _, g in ipairs(c("logs", region):DescribeLogGroups{}.logGroups) do
      add("log group", g.logGroupName)
    end
    for _, t in ipairs(ec2:DescribeLaunchTemplates{}.LaunchTemplates) do add("lt", t.LaunchTemplateName) end
    for _, r in ipairs(ec2:DescribeInstances{}.Reservations) do
      for _, i in ipairs(r.Instances) do
        if i.State.Name ~= "terminated" then add("instance", i.InstanceId) end
      end
    end
    for _, l in ipairs(c("elbv2", region):DescribeLoadBalancers{}.LoadBalancers) do add("lb", l.LoadBalancerName) end
    for _, t in ipairs(c("elbv2", region):DescribeTargetGroups{}.TargetGroups) do add("tg", t.TargetGroupName) end
    for _, g in ipairs(c("autoscaling", region):DescribeAutoScalingGroups{}.AutoScalingGroups) do
      add("asg", g.AutoScalingGroupName)
    end
    for _, t in ipairs(c("sns", region):ListTopics{}.Topics) do add("topic", t.TopicArn) end
    for _, a in ipairs(c("cloudwatch", region):DescribeAlarms{}.MetricAlarms) do add("alarm", a.AlarmName) end
    for _, t in ipairs(c("dynamodb", region):ListTables{}.TableNames) do add("table", t) end
    -- a customer managed key is gone once its deletion is scheduled (7 days at least)
    local kms = c("kms", region)
    for _, k in ipairs(kms:ListKeys{}.Keys) do
      local md = kms:DescribeKey{ KeyId = k.KeyId }.KeyMetadata
      if md.KeyManager == "CUSTOMER" and md.KeyState ~= "PendingDeletion" then add("key", md.Arn) end
    end
    for _, a in ipairs(kms:ListAliases{}.Aliases) do
      if not a.AliasName:match("^alias/aws/") then add("alias", a.AliasName) end
    end
    for _, cert in ipairs(certificates(sim, region)) do add("certificate", cert.CertificateArn) end
  end
  for _, b in ipairs(c("s3", P):ListBuckets{}.Buckets or {}) do add("bucket", b.Name) end
  local iam, r53 = c("iam", G), c("route53", G)
  for _, r in ipairs(iam:ListRoles{}.Roles) do add("role", r.RoleName) end
  -- (the simulator has no ListInstanceProfiles: the profile is looked up by name)
  local gone = require("fo.aws.resources.common").unless({ "NoSuchEntity" }, iam.GetInstanceProfile,
    iam, { InstanceProfileName = "ec2-profile-" .. SUFFIX })
  if gone then add("profile", gone.InstanceProfile.InstanceProfileName) end
  for _, z in ipairs(r53:ListHostedZones{}.HostedZones) do add("zone", z.Name) end
  for _, h in ipairs(r53:ListHealthChecks{}.HealthChecks) do add("health check", h.Id) end
  table.sort(out)
  return out
end

TestTradingProof = {}

-- A few minutes after the apply, every alarm of the stack reads OK through fo's CloudWatch
-- client: the ALB host counts, the Auto Scaling group metrics (the recipe enables their
-- collection), the EC2 CPU behind the target tracking alarms and Route 53's
-- HealthCheckStatus all have datapoints, as on AWS. And no topic was sent an ALARM
-- notification on the way. (A target tracking policy's AlarmLow is Auto Scaling's own:
-- after 15 idle minutes at minimum capacity it sits in ALARM on AWS too, so the clock stops
-- well before.)
local function assert_steady_state_alarms_ok(w)
  local o = w.doc.outputs
  w.sim:advance(240)
  local n = 0
  for _, region in ipairs{ P, S, G } do
    local alarms = w.sim:client("cloudwatch", { region = region }):DescribeAlarms{}.MetricAlarms
    for _, a in ipairs(alarms) do
      n = n + 1
      lu.assertEquals(a.StateValue, "OK", region .. " " .. a.AlarmName .. ": " .. a.StateReason)
    end
  end
  lu.assertEquals(n, 11, "4 alarms per region (2 of them target tracking) and 1 in us-east-1")
  for _, topic in ipairs{ o.primary_topic_arn, o.standby_topic_arn, o.global_topic_arn } do
    for _, m in ipairs(w.sim:deliveries(topic)) do
      local doc = cjson.decode(m.Message)
      lu.assertNotEquals(doc.NewStateValue, "ALARM", topic .. ": " .. tostring(doc.AlarmName)
        .. " " .. tostring(doc.NewStateReason))
    end
  end
end

function TestTradingProof:test_apply_rerun_without_mutating_calls_drill_destroy_leaves_nothing()
  local w = deploy()
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "Apply complete")
    -- rerun: zero mutating calls, at most 1.1 reads per resource (a refresh batches the
    -- reads of one record each: bench/trading_calls.lua)
    local resources = 0
    for _, op in ipairs(w.doc.operations) do
      if op.action == "create" then resources = resources + 1 end
    end
    local before = w.sim:count{ mutating = true }
    local reads_before = w.sim:count{ mutating = false }
    deploy(w)
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")
    lu.assertEquals(w.sim:count{ mutating = true }, before, "a rerun makes no mutating call")
    local reads = w.sim:count{ mutating = false } - reads_before
    lu.assertTrue(reads <= 1.1 * resources, ("the rerun read %d times for %d resources")
      :format(reads, resources))
    -- steady state: every alarm has the data AWS would publish and is OK, no topic got ALARM
    assert_steady_state_alarms_ok(w)
    -- drill: the timeline
    local res, lines = w:drill()
    local text = table.concat(lines, "\n")
    lu.assertIsTrue(res.ok, table.concat(res.problems, "; ") .. "\n" .. text)
    lu.assertTrue(res.detection <= 30, "detected within 30 s: " .. res.detection)
    lu.assertTrue(res.detection > 20, "not before the third failed check: " .. res.detection)
    lu.assertTrue(res.dns_switch <= res.detection, "DNS switched at detection at the latest")
    lu.assertTrue(res.alarm >= res.detection and res.alarm <= res.detection + 60,
      "the alarm's minute closes within a minute of detection")
    lu.assertTrue(res.notified >= res.alarm)
    local kinds = {}
    for _, e in ipairs(res.events) do kinds[#kinds + 1] = e.phase .. ":" .. e.kind end
    local function pos(k)
      for i, v in ipairs(kinds) do if v == k then return i end end
      error("no event " .. k .. " in " .. table.concat(kinds, ", "))
    end
    lu.assertTrue(pos("failover:outage") < pos("failover:check_failure"))
    lu.assertTrue(pos("failover:check_failure") < pos("failover:check_unhealthy"))
    lu.assertTrue(pos("failover:check_unhealthy") < pos("failover:alarm_alarm"))
    lu.assertTrue(pos("failover:alarm_alarm") <= pos("failover:notified"))
    lu.assertTrue(pos("failover:dns_standby") < pos("failover:alarm_alarm"))
    lu.assertTrue(pos("failback:recovered") < pos("failback:check_healthy"))
    lu.assertTrue(pos("failback:check_healthy") <= pos("failback:dns_primary"))
    lu.assertTrue(pos("failback:dns_primary") < pos("failback:alarm_ok"))
    -- back after the ALB's 2 good checks (20 s) and the health check's 3 (≤ 30 s more)
    lu.assertTrue(res.failback.detection <= 60, tostring(res.failback.detection))
    lu.assertEquals(res.failback.dns, res.failback.detection, "failback at the healthy verdict")
    lu.assertStrContains(text, "health check UNHEALTHY")
    -- the primary's targets fail the ALB's checks: its host-count alarm fires and notifies
    -- the primary's topic; no other regional alarm does (the groups keep their instances)
    local fired = {}
    for i, a in ipairs(res.regional_alarms) do fired[i] = a.name end
    lu.assertEquals(fired, { "alb-unhealthy-hosts-alarm-primary-" .. SUFFIX }, text)
    lu.assertTrue(res.regional_alarms[1].t > res.detection, text)
    lu.assertTrue(pos("failback:recovered") < pos("failback:regional_ok"))
    lu.assertStrContains(text, "DNS " .. APP .. " → " .. w.doc.outputs.standby_alb_dns_name:lower())
    -- the drill changed nothing: a rerun still has nothing to do
    before = w.sim:count{ mutating = true }
    deploy(w)
    lu.assertStrContains(w.out, "No changes.")
    lu.assertEquals(w.sim:count{ mutating = true }, before)
    -- destroy: nothing of the stack left
    deploy(w, { mode = "destroy" })
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertEquals(leftovers(w.sim), {})
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- The apply's summary counts what its plan counted, the same way: per resource, a
-- replacement one `replace` whichever way it went (the suffix renames resources: some are
-- replaced delete-first, being unique by name, others create-before-delete).
function TestTradingProof:test_the_apply_summary_counts_what_the_plan_counted()
  local w = deploy(nil, { stack = "counts" })
  local ok, err = pcall(function()
    local function check(world, want)
      lu.assertEquals(world.code, 0, world.out .. world.err)
      local p = world.doc.plan.counts
      lu.assertEquals({ p.create, p.update, p.replace, p.delete }, want)
      lu.assertStrContains(world.out, ("Plan: %d to add, %d to change, %d to replace, %d to "
        .. "destroy."):format(p.create, p.update, p.replace, p.delete))
      lu.assertStrContains(world.out, ("Apply complete: %d created, %d updated, %d replaced, %d "
        .. "deleted."):format(p.create, p.update, p.replace, p.delete))
    end
    check(w, { 111, 0, 0, 0 })
    local first = 0
    deploy(w, { stack = "counts", config = { environmentSuffix = SUFFIX .. "2" } })
    for _, s in ipairs(w.doc.plan.steps) do
      if s.action == "replace" and s.delete_first then first = first + 1 end
    end
    lu.assertTrue(first > 0 and first < w.doc.plan.counts.replace,
      "both kinds of replacement: " .. first .. " delete-first")
    check(w, { 0, w.doc.plan.counts.update, w.doc.plan.counts.replace, 0 })
    lu.assertTrue(w.doc.plan.counts.replace > 0 and w.doc.plan.counts.update > 0)
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- tableEncryption changed on a deployed stack: the session table and its replica move
-- between the AWS managed key, each region's customer managed key and the AWS owned key in
-- place (the same table in both regions, nothing replaced), read back in each region.
function TestTradingProof:test_table_encryption_switches_in_place()
  local cfg = { environmentSuffix = SUFFIX, tableEncryption = "aws-managed" }
  local w = deploy(nil, { stack = "tablekey", config = cfg })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    local name = "trading-sessions-" .. SUFFIX
    local function table_in(region)
      return w:client("dynamodb", region):DescribeTable{ TableName = name }.Table
    end
    local ids = { [P] = table_in(P).TableId, [S] = table_in(S).TableId }
    local function key_of(region)
      local d = table_in(region).SSEDescription
      return d and d.KMSMasterKeyArn
    end
    local function region_key(region, role)
      return w:client("kms", region):DescribeKey{ KeyId = ("alias/trading-data-%s-%s")
        :format(role, SUFFIX) }.KeyMetadata.Arn
    end
    lu.assertEquals(key_of(P), w:client("kms", P):DescribeKey{ KeyId = "alias/aws/dynamodb" }
      .KeyMetadata.Arn)
    for _, mode in ipairs({ "cmk", "aws-owned" }) do
      cfg.tableEncryption = mode
      deploy(w, { config = cfg })
      lu.assertEquals(w.code, 0, w.out .. w.err)
      lu.assertEquals(w.doc.plan.counts.replace, 0, mode)
      lu.assertEquals(w.doc.plan.counts.create, 0, mode)
      lu.assertTrue(w.doc.plan.counts.update >= 1, mode)
      lu.assertEquals({ table_in(P).TableId, table_in(S).TableId }, { ids[P], ids[S] }, mode)
      if mode == "cmk" then
        lu.assertEquals({ key_of(P), key_of(S) },
          { region_key(P, "primary"), region_key(S, "standby") })
      else
        lu.assertEquals({ key_of(P), key_of(S) }, {})
      end
    end
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- What the simulator holds but for what it changes by itself (H.sim_holdings).
local function holdings(sim)
  return require("support.engine_harness").sim_holdings(sim)
end

-- Moves the stack's state files (ci.state.*) out of `dir`, as a second checkout or a lost
-- .fo directory leaves things: the resources are there, no state of this stack records them.
local function move_state_away(dir)
  local r = fo.process.run{ argv = { "sh", "-c", 'mkdir -p "$1/away" && mv "$1"/ci.state.* "$1/away/"',
    "sh", dir } }
  lu.assertEquals(r.code, 0, r.stderr)
end

-- The first deployment is left exactly as it was: every resource the second apply meets is
-- a conflict (roles, the zone, key aliases, ...: the first ones met stop the run), and the
-- rollback deletes only what the second apply created itself.
local function assert_first_deployment_survives(w, before)
  lu.assertEquals(w.code, 4, w.out .. w.err)
  local text = w.out .. w.err
  lu.assertStrContains(text, 'conflict: an IAM role named "ec2-role-' .. SUFFIX .. '"')
  lu.assertStrContains(text, 'tagged as resource "ec2" of stack "ci"')
  lu.assertStrContains(text, "Remove it, or rename the resource in the recipe")
  lu.assertStrContains(text, "Apply failed; rolled back")
  -- KMS deletes no key at once: the keys the second apply made are left pending deletion
  -- (as good as gone), the only thing the simulator holds beyond the first deployment
  local H = require "support.engine_harness"
  local d = H.first_difference(before, H.without_new_pending_keys(before, holdings(w.sim)))
  lu.assertNil(d, d)
end

function TestTradingProof:test_a_state_moved_away_never_deletes_the_first_deployment()
  local w = deploy()
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    local before = holdings(w.sim)
    move_state_away(w.dir)
    deploy(w)
    assert_first_deployment_survives(w, before)
    -- and the first deployment's state still drives its stack: nothing to change
    local r = fo.process.run{ argv = { "sh", "-c", 'mv "$1"/ci.state.* "$1/" 2>/dev/null; '
      .. 'mv "$1"/away/ci.state.* "$1/"', "sh", w.dir } }
    lu.assertEquals(r.code, 0, r.stderr)
    deploy(w)
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- fo-run --drill, the command a user types: a new sim stack is applied, then drilled.
function TestTradingProof:test_fo_run_drill_prints_the_timeline_and_passes()
  local dir = testlib.tmpdir()
  local r = testlib.run_fo({ "--drill", "--state-dir", dir, "--config",
    "environmentSuffix=clidrill", RECIPE }, { timeout = 110 })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Failover drill on the simulator's virtual clock")
  lu.assertStrMatches(r.stdout, ".*t%+ *30s  health check UNHEALTHY.*")
  lu.assertStrContains(r.stdout, "Detection: 30s after the outage")
  lu.assertStrContains(r.stdout, "Regional alarms in ALARM during the outage: "
    .. "alb-unhealthy-hosts-alarm-primary-clidrill (")
  lu.assertStrContains(r.stdout, "Drill passed.")
end

-- failbackHoldMinutes: the primary record is gated by a CALCULATED check of the endpoint
-- check and a CLOUDWATCH_METRIC check of an N-minute alarm on its verdict; a flapping
-- primary then takes the traffic back once, after N clean minutes (issue 14).
function TestTradingProof:test_failback_hold_down_gates_the_primary_record()
  local w = deploy(nil, { stack = "hold", config = { environmentSuffix = "hold",
    failbackHoldMinutes = "3" } })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    local o = w.doc.outputs
    lu.assertEquals(o.failback_hold_minutes, 3)
    local r53 = w.sim:client("route53", { region = G })
    local gate
    for _, rr in ipairs(r53:ListResourceRecordSets{ HostedZoneId = o.hosted_zone_id }.ResourceRecordSets) do
      if rr.SetIdentifier == "primary-hold" then gate = rr.HealthCheckId end
    end
    local cfg = r53:GetHealthCheck{ HealthCheckId = gate }.HealthCheck.HealthCheckConfig
    lu.assertEquals(cfg.Type, "CALCULATED")
    lu.assertEquals(cfg.HealthThreshold, 2)
    lu.assertEquals(#cfg.ChildHealthChecks, 2)
    local hold
    for _, id in ipairs(cfg.ChildHealthChecks) do
      if id ~= o.health_check_id then hold = id end
    end
    lu.assertNotNil(hold, "the endpoint check is a child")
    local hcfg = r53:GetHealthCheck{ HealthCheckId = hold }.HealthCheck.HealthCheckConfig
    lu.assertEquals(hcfg.Type, "CLOUDWATCH_METRIC")
    lu.assertEquals(hcfg.AlarmIdentifier, { Region = G, Name = "failback-hold-alarm-primary-hold" })
    local alarm = w.sim:client("cloudwatch", { region = G }):DescribeAlarms{
      AlarmNames = { "failback-hold-alarm-primary-hold" } }.MetricAlarms[1]
    lu.assertEquals({ alarm.EvaluationPeriods, alarm.DatapointsToAlarm, alarm.Period },
      { 3, 1, 60 })
    -- a rerun has nothing to do (the aggregate checks read back as declared)
    local before = w.sim:count{ mutating = true }
    deploy(w, { config = { environmentSuffix = "hold", failbackHoldMinutes = "3" } })
    lu.assertStrContains(w.out, "No changes.")
    lu.assertEquals(w.sim:count{ mutating = true }, before)
    -- flapping: one switch, the failing region answered only until the first detection
    local res = require("fo.drill.scenarios").run(w.sim, o, "flapping")
    lu.assertIsTrue(res.ok, table.concat(res.problems, "; "))
    lu.assertEquals(res.dns_switches, 1)
    lu.assertEquals(res.seconds_failing_region_answered, 30)
    lu.assertTrue(res.failback_after_last_recovery >= 3 * 60, tostring(res.failback_after_last_recovery))
  end)
  w:close()
  if not ok then error(err, 0) end
end

-- fo-run --drill --drill-scenario ... --json: the apply's events, then one drill event.
function TestTradingProof:test_fo_run_drill_scenario_json()
  local dir = testlib.tmpdir()
  local r = testlib.run_fo({ "--drill", "--drill-scenario", "alb5xx", "--json", "--state-dir",
    dir, "--config", "environmentSuffix=clijson", RECIPE }, { timeout = 110 })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local events = require "support.json_events"
  local all = events.parse(r.stdout)
  lu.assertEquals(events.problems(all), {}, "every event valid against the schema")
  local last = all[#all]
  lu.assertEquals(all[#all - 1].event, "summary")
  lu.assertEquals({ last.event, last.scenario, last.ok }, { "drill", "alb5xx", true })
  lu.assertEquals(last.result.detection, 30)
  lu.assertEquals(last.result.capacity_during, 2)
  lu.assertEquals(last.summary[#last.summary], "Scenario passed.")
end

function TestTradingProof:test_fo_run_drill_refuses_other_modes_and_aws()
  -- (--json is taken: the apply's events, then a drill event)
  for _, extra in ipairs({ { "--plan" }, { "--destroy" }, { "--target", "aws" } }) do
    local args = { "--drill" }
    for _, a in ipairs(extra) do args[#args + 1] = a end
    args[#args + 1] = RECIPE
    local r = testlib.run_fo(args)
    lu.assertEquals(r.code, 2, table.concat(extra, " "))
    lu.assertStrContains(r.stderr, "--drill applies the recipe on the simulator")
  end
end

-- Route 53 refuses example.com / .net / .org and their subdomains (reserved by AWS): the
-- recipe says so before anything is created, naming the key and the fix.
function TestTradingProof:test_a_reserved_domain_is_refused_before_anything_is_created()
  local dir = testlib.tmpdir()
  local r = testlib.run_fo({ "--state-dir", dir, "--config", "domainName=trading.Example.NET",
    "--config", "environmentSuffix=reserved", RECIPE }, { timeout = 60 })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "domainName")
  lu.assertStrContains(r.stderr, "Route 53 refuses example.net and every name below it")
  lu.assertStrContains(r.stderr, "set a domain you own")
  lu.assertNotStrContains(r.stderr, "stack traceback")
  lu.assertNotStrContains(r.stdout, "created")
end

-- The fast mode's proof on the shared stack (after its read-back tests: the class sorts
-- after TestTradingRecipe): the drill, then the destroy leaves nothing.
TestTradingSharedStack = {}

function TestTradingSharedStack:test_1_the_drill_fails_over_within_30_s_and_back()
  local res, lines = applied():drill()
  lu.assertIsTrue(res.ok, table.concat(res.problems, "; ") .. "\n" .. table.concat(lines, "\n"))
  lu.assertTrue(res.detection <= 30, "detected within 30 s: " .. tostring(res.detection))
  -- the notifications went through the encrypted topics: the primary's host-count alarm
  -- reached its topic (CloudWatch may use the region's key), and the health check's alarm
  -- the us-east-1 topic
  local fired = {}
  for i, a in ipairs(res.regional_alarms) do fired[i] = a.name end
  lu.assertEquals(fired, { "alb-unhealthy-hosts-alarm-primary-" .. SUFFIX }, table.concat(lines, "\n"))
  lu.assertNotNil(res.notified, "the us-east-1 topic is notified")
end

function TestTradingSharedStack:test_2_destroy_leaves_nothing()
  local w = applied()
  local function default_vpcs()
    local out = {}
    for _, region in ipairs({ P, S, G }) do
      local ids = {}
      for id in pairs(aws_defaults(w.sim:client("ec2", { region = region }))) do ids[#ids + 1] = id end
      table.sort(ids)
      out[region] = ids
    end
    return out
  end
  local defaults = default_vpcs()
  lu.assertTrue(#defaults[P] >= 5, "the default VPC, its subnets, gateway, table and group")
  w:destroy()
  lu.assertEquals(w.code, 0, w.out .. w.err)
  lu.assertEquals(leftovers(w.sim), {})
  -- the account's default VPCs are not the stack's: all still there
  lu.assertEquals(default_vpcs(), defaults)
end

-- HTTPS (config https=true): the stack's own certificates, validated in its zone. ACM
-- issues them only when public DNS answers the validation records: the simulator's
-- registrar points trading.fo.test at the stack's zone (knob registered_domains), as a
-- delegated domain does on AWS.
TestTradingHttps = {}
local DELEGATED = { registered_domains = { "trading.fo.test" } }
local TLS13 = "ELBSecurityPolicy-TLS13-1-2-2021-06"

local tls -- the https stack the tests of this class share, in their order
local function tls_stack(config)
  if not tls then
    tls = deploy(nil, { seed = "tls", stack = "tls", sim_options = DELEGATED,
      config = { environmentSuffix = "tls", https = "true" } })
  elseif config then
    tls:run{ config = config }
  end
  lu.assertEquals(tls.code, 0, tls.out:sub(-3000) .. tls.err:sub(-3000))
  return tls
end

-- The ALB of `role` in `region` of stack `w`, its listeners by port and the ports its
-- security groups open to the internet (sorted).
local function alb_front(w, region, role, suffix)
  local elb = w.sim:client("elbv2", { region = region })
  local lb = elb:DescribeLoadBalancers{ Names = { ("alb-%s-%s"):format(role:lower(), suffix) } }
    .LoadBalancers[1]
  local by_port, open = {}, {}
  for _, l in ipairs(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners) do
    by_port[l.Port] = l
  end
  local groups = w.sim:client("ec2", { region = region }):DescribeSecurityGroups{
    GroupIds = lb.SecurityGroups }.SecurityGroups
  for _, g in ipairs(groups) do
    for _, perm in ipairs(g.IpPermissions) do
      for _, range in ipairs(perm.IpRanges or {}) do
        if range.CidrIp == "0.0.0.0/0" then open[#open + 1] = perm.FromPort end
      end
    end
  end
  return lb, by_port, sorted(open)
end

-- The zone's CNAME records of stack `w`: {name = value}.
local function cnames(w)
  local r53 = w.sim:client("route53", { region = G })
  local out = {}
  for _, z in ipairs(r53:ListHostedZones{}.HostedZones) do
    for _, rr in ipairs(r53:ListResourceRecordSets{ HostedZoneId = z.Id }.ResourceRecordSets) do
      if rr.Type == "CNAME" then out[rr.Name] = rr.ResourceRecords[1].Value end
    end
  end
  return out
end

local function hc_config(w)
  return w.sim:client("route53", { region = G }):GetHealthCheck{
    HealthCheckId = w.doc.outputs.health_check_id }.HealthCheck.HealthCheckConfig
end

-- HTTPS in both regions, read back through ACM, ELBv2, EC2 and Route 53.
local function assert_https(w)
  local records = cnames(w)
  for _, r in ipairs(REGIONS) do
    local cert = one(certificates(w.sim, r.region), "one certificate in " .. r.region)
    lu.assertEquals(cert.DomainName, APP)
    lu.assertEquals(cert.Status, "ISSUED")
    local t = tagmap(w.sim:client("acm", { region = r.region }):ListTagsForCertificate{
      CertificateArn = cert.CertificateArn }.Tags)
    lu.assertEquals({ t.Environment, t.FailoverRole, t.Name }, { "Production", r.role,
      ("certificate-%s-tls"):format(r.role:lower()) })
    local v = one(cert.DomainValidationOptions, "one name validated")
    lu.assertEquals(v.ValidationMethod, "DNS")
    lu.assertEquals(v.ValidationStatus, "SUCCESS")
    lu.assertEquals(records[v.ResourceRecord.Name], v.ResourceRecord.Value,
      "the validation CNAME is in the stack's zone")
    local lb, by_port, open = alb_front(w, r.region, r.role, "tls")
    lu.assertEquals(by_port[443].Protocol, "HTTPS")
    lu.assertEquals(by_port[443].SslPolicy, TLS13)
    lu.assertEquals(one(by_port[443].Certificates, "one certificate").CertificateArn,
      cert.CertificateArn)
    lu.assertEquals(by_port[443].DefaultActions[1].Type, "forward")
    local redirect = one(by_port[80].DefaultActions, "one action on 80")
    lu.assertEquals(by_port[80].Protocol, "HTTP")
    lu.assertEquals(redirect.Type, "redirect")
    lu.assertEquals(redirect.RedirectConfig.Protocol, "HTTPS")
    lu.assertEquals(tostring(redirect.RedirectConfig.Port), "443")
    lu.assertEquals(redirect.RedirectConfig.StatusCode, "HTTP_301")
    lu.assertEquals(open, { 80, 443 }, "80 for the redirect, 443 for the HTTPS listener")
    lu.assertItemsEquals(cert.InUseBy, { lb.LoadBalancerArn })
  end
  local c = hc_config(w)
  lu.assertEquals(c.Type, "HTTPS")
  lu.assertEquals(c.Port, 443)
  lu.assertIsTrue(c.EnableSNI)
  lu.assertEquals(c.FullyQualifiedDomainName, (alb_front(w, P, "Primary", "tls")).DNSName)
  lu.assertEquals(c.ResourcePath, "/health")
  lu.assertEquals(c.RequestInterval, 10)
  lu.assertEquals(c.FailureThreshold, 3)
  w.sim:advance(30)
  lu.assertIsTrue(w.sim:health_check_status(w.doc.outputs.health_check_id).healthy,
    "Route 53's checkers pass over HTTPS")
end

function TestTradingHttps:test_1_https_on_issues_certificates_and_serves_tls13_redirect_https_health_check()
  local w = tls_stack()
  lu.assertNil(w.err:find("https off", 1, true), "no plain-HTTP warning with https on")
  assert_https(w)
end

function TestTradingHttps:test_2_https_off_again_removes_certificates_records_and_443()
  local w = tls_stack{ environmentSuffix = "tls", https = "false" }
  lu.assertStrContains(w.err, "fo: warning: https off: clients reach " .. APP .. " over plain HTTP")
  lu.assertStrContains(w.err, "--config https=true")
  for _, r in ipairs(REGIONS) do
    lu.assertEquals(certificates(w.sim, r.region), {}, "no certificate left in " .. r.region)
    local _, by_port, open = alb_front(w, r.region, r.role, "tls")
    lu.assertIsNil(by_port[443], "no HTTPS listener")
    lu.assertEquals(by_port[80].DefaultActions[1].Type, "forward")
    lu.assertEquals(open, { 80 }, "443 closed without an HTTPS listener")
  end
  lu.assertEquals(cnames(w), {}, "the validation records are gone")
  local c = hc_config(w)
  lu.assertEquals({ c.Type, c.Port }, { "HTTP", 80 })
  w.sim:advance(30)
  lu.assertIsTrue(w.sim:health_check_status(w.doc.outputs.health_check_id).healthy)
  local before = w:mutating_calls()
  tls_stack{ environmentSuffix = "tls", https = "false" }
  lu.assertStrContains(w.out, "No changes.")
  lu.assertEquals(w:mutating_calls(), before, "converged: a rerun makes no mutating call")
end

function TestTradingHttps:test_3_https_on_again_then_destroy_leaves_nothing()
  local w = tls_stack{ environmentSuffix = "tls", https = "true" }
  assert_https(w)
  w:destroy()
  lu.assertEquals(w.code, 0, w.out .. w.err)
  lu.assertEquals(leftovers(w.sim), {}, "certificates included")
  lu.assertEquals(cnames(w), {})
  w:close()
end

-- What stack `w` (suffix "nodns") serves from, read back through the AWS APIs: every
-- resource of the stack (leftovers' list), each ALB's listeners and open ports, the health
-- checks and the zone's records.
local function front(w)
  local out = { inventory = leftovers(w.sim) }
  for _, r in ipairs(REGIONS) do
    local _, by_port, open = alb_front(w, r.region, r.role, "nodns")
    local ls = {}
    for port, l in pairs(by_port) do
      ls[#ls + 1] = { port, l.ListenerArn, l.Protocol, l.DefaultActions[1].Type }
    end
    table.sort(ls, function(a, b) return a[1] < b[1] end)
    out[r.region] = { listeners = ls, open = open }
  end
  local r53 = w.sim:client("route53", { region = G })
  out.health_checks = r53:ListHealthChecks{}.HealthChecks
  for _, z in ipairs(r53:ListHostedZones{}.HostedZones) do
    out[z.Name] = r53:ListResourceRecordSets{ HostedZoneId = z.Id }.ResourceRecordSets
  end
  return out
end

-- https on while the zone is not delegated: the certificate's message says what is missing,
-- the run rolls back, and the stack an earlier run built is left exactly as it was.
function TestTradingHttps:test_https_on_an_undelegated_zone_stops_clearly_and_keeps_the_stack()
  local w = deploy(nil, { seed = "nodns", stack = "nodns", config = { environmentSuffix = "nodns" } })
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    local before, calls = front(w), w.sim:counts{ mutating = true }.by_operation
    deploy(w, { config = { environmentSuffix = "nodns", https = "true", certificateTimeout = "2" } })
    local text = w.out .. w.err
    lu.assertEquals(w.code, 4, text)
    -- the redirect and the HTTPS health check wait for the HTTPS listener, which waits for
    -- the certificate: the running front was never touched, not even undone afterwards
    local now = w.sim:counts{ mutating = true }.by_operation
    for _, op in ipairs{ "elbv2.ModifyListener", "elbv2.CreateListener", "route53.CreateHealthCheck",
        "route53.UpdateHealthCheck", "route53.DeleteHealthCheck" } do
      lu.assertEquals(now[op] or 0, calls[op] or 0, op)
    end
    lu.assertStrContains(text, "ACM certificate for " .. APP .. " is still PENDING_VALIDATION after 2 s")
    lu.assertStrContains(text, "the zone trading.fo.test is not delegated")
    w.sim:advance(120) -- (nothing compared changes with the clock)
    lu.assertEquals(front(w), before, "the stack is as the earlier run left it")
    for _, r in ipairs(REGIONS) do lu.assertEquals(certificates(w.sim, r.region), {}) end
    deploy(w, { config = { environmentSuffix = "nodns" } })
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")
  end)
  w:close()
  if not ok then error(err, 0) end
end

if MODE == "https" then
  -- the mutation suite's mutants of the HTTPS parts: the https stack's read-back only
  TestTradingRecipe, TestTradingProof, TestTradingOptions, TestTradingSharedStack = nil, nil, nil, nil
  for name in pairs(TestTradingHttps) do
    if name ~= "test_1_https_on_issues_certificates_and_serves_tls13_redirect_https_health_check"
        and name ~= "test_https_on_an_undelegated_zone_stops_clearly_and_keeps_the_stack" then
      TestTradingHttps[name] = nil
    end
  end
elseif FAST_MODE then
  TestTradingProof, TestTradingOptions, TestTradingHttps = nil, nil, nil
  if not MODE:find("+destroy", 1, true) then TestTradingSharedStack.test_2_destroy_leaves_nothing = nil end
else
  TestTradingSharedStack = nil
end

local code = lu.LuaUnit.run("-v", table.unpack(arg or {}))
if stack then stack:close() end
if tls then tls:close() end
os.exit(code)
