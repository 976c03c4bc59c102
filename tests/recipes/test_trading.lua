-- recipes/trading.lua on the embedded simulator: what it builds, read back through fo's
-- AWS clients (never from the recipe's source or the stack's state): issue 6's list of
-- recipe unit tests, then the CI proof — apply, rerun with zero mutating calls, the
-- failover drill, destroy, nothing of the stack left — and `fo-run --drill` itself.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local engine = require "fo.engine"
local drill = require "fo.drill"
local cjson = require "cjson"

local ROOT = testlib.tests_dir .. "/.."
local RECIPE = ROOT .. "/recipes/trading.lua"
local SUFFIX = "citest"
local P, S, G = "eu-south-1", "eu-central-1", "us-east-1"
local REGIONS = { { region = P, role = "Primary", desired = 2, cidr = "10.10.0.0/16" },
  { region = S, role = "Standby", desired = 1, cidr = "10.20.0.0/16" } }
local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"
local APP = "app.trading.fo.test"

-- Short AWS transition windows (virtual seconds) so the suite runs in seconds; waiters
-- still see every intermediate state.
local FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1 }
local dynamodb_sim = require "fo.sim.services.dynamodb"
local DDB_FAST = { table_create = 0.3, table_delete = 0.3, table_update = 0.2,
  replica_create = 1, replica_delete = 0.5 }

local function with_fast_dynamodb(fn)
  local saved = dynamodb_sim.TIMING
  local t = {}
  for k, v in pairs(saved) do t[k] = v end
  for k, v in pairs(DDB_FAST) do t[k] = v end
  dynamodb_sim.TIMING = t
  local ok, a, b = pcall(fn)
  dynamodb_sim.TIMING = saved
  if not ok then error(a, 0) end
  return a, b
end

--- A stack applied from the recipe: {sim=, dir=, code=, doc=, out=}.
local function deploy(world, opts)
  world = world or {}
  if not world.sim then
    world.sim = fo.sim.new{ seed = "trading-" .. SUFFIX }
    world.sim.timing = FAST
    world.dir = testlib.tmpdir()
  end
  local out, err = {}, {}
  local o = { recipe = RECIPE, sim = world.sim, dir = world.dir, stack = "ci",
    config = { environmentSuffix = SUFFIX }, out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end }
  for k, v in pairs(opts or {}) do o[k] = v end
  world.code, world.doc = with_fast_dynamodb(function() return engine.run(o) end)
  world.out, world.err = table.concat(out), table.concat(err)
  return world
end

local stack -- the shared applied stack (built by the first test that needs it)
local function applied()
  if not stack then
    stack = deploy()
    lu.assertEquals(stack.code, 0, stack.out .. stack.err)
  end
  return stack
end

local function client(service, region)
  return applied().sim:client(service, { region = region })
end

local function outputs() return applied().doc.outputs end

-- Helpers -----------------------------------------------------------------------------

local function tagmap(list)
  local m = {}
  for _, t in ipairs(list or {}) do m[t.Key] = t.Value end
  return m
end

local function url_decode(s)
  if s:sub(1, 1) == "{" then return s end
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

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

local function vpc_of(region)
  return one(client("ec2", region):DescribeVpcs{}.Vpcs, "one VPC in " .. region)
end

local function by_vpc(vpc_id) return { { Name = "vpc-id", Values = { vpc_id } } } end

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
  return cjson.decode(url_decode(iam:GetRolePolicy{ RoleName = role, PolicyName = names[1] }
    .PolicyDocument))
end

-- Everything taggable the stack made, read from the simulator: { {what=, region=, tags={}} }.
local function taggable()
  local out = {}
  local function add(what, region, tags) out[#out + 1] = { what = what, region = region, tags = tags } end
  for _, r in ipairs(REGIONS) do
    local ec2, region = client("ec2", r.region), r.region
    for _, v in ipairs(ec2:DescribeVpcs{}.Vpcs) do add("vpc " .. v.VpcId, region, tagmap(v.Tags)) end
    for _, s in ipairs(ec2:DescribeSubnets{}.Subnets) do add("subnet " .. s.SubnetId, region, tagmap(s.Tags)) end
    for _, g in ipairs(ec2:DescribeInternetGateways{}.InternetGateways) do
      add("igw " .. g.InternetGatewayId, region, tagmap(g.Tags))
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
  local ddb = client("dynamodb", P)
  for _, name in ipairs(ddb:ListTables{}.TableNames) do
    local arn = ddb:DescribeTable{ TableName = name }.Table.TableArn
    add("table " .. name, P, tagmap(ddb:ListTagsOfResource{ ResourceArn = arn }.Tags))
  end
  local iam = client("iam", G)
  for _, r in ipairs(iam:ListRoles{}.Roles) do
    add("role " .. r.RoleName, G, tagmap(iam:ListRoleTags{ RoleName = r.RoleName }.Tags))
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
  lu.assertEquals(#client("ec2", G):DescribeVpcs{}.Vpcs, 0, "no VPC in us-east-1")
end

function TestTradingRecipe:test_each_vpc_has_two_public_and_two_private_subnets_in_different_azs_with_the_right_routes()
  for _, r in ipairs(REGIONS) do
    local ec2 = client("ec2", r.region)
    local vpc = vpc_of(r.region).VpcId
    local igw = one(ec2:DescribeInternetGateways{ Filters = { { Name = "attachment.vpc-id",
      Values = { vpc } } } }.InternetGateways, "one attached IGW").InternetGatewayId
    local endpoint = one(ec2:DescribeVpcEndpoints{ Filters = by_vpc(vpc) }.VpcEndpoints, "one endpoint")
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
    lu.assertEquals(sorted(ports), { 80, 443 })
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
    lu.assertIsTrue(d.BlockDeviceMappings[1].Ebs.Encrypted)
    lu.assertStrContains(d.IamInstanceProfile.Arn or d.IamInstanceProfile.Name, "ec2-profile-" .. SUFFIX)
    local script = fo.crypto.base64_decode(d.UserData)
    lu.assertStrContains(script, "#!/bin/bash")
    lu.assertStrContains(script, "systemctl enable --now trading-health.service")
    lu.assertStrContains(script, '"/health"')
  end
end

function TestTradingRecipe:test_auto_scaling_groups_desired_2_and_1_with_cpu_scaling_group_metrics_and_elb_health()
  for _, r in ipairs(REGIONS) do
    local g = asg_of(r.region, r.role)
    lu.assertEquals(g.DesiredCapacity, r.desired)
    lu.assertEquals(g.MinSize, r.desired)
    lu.assertEquals(g.HealthCheckType, "ELB")
    lu.assertEquals(#g.Instances, r.desired)
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
  lu.assertEquals(#client("route53", G):ListHealthChecks{}.HealthChecks, 1)
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
  lu.assertNotEquals(t.DeletionProtectionEnabled, true)
  local replicas = {}
  for _, rep in ipairs(t.Replicas or {}) do replicas[rep.RegionName] = rep.ReplicaStatus end
  lu.assertEquals(replicas[S], "ACTIVE")
  local pitr = ddb:DescribeContinuousBackups{ TableName = t.TableName }.ContinuousBackupsDescription
  lu.assertEquals(pitr.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  local rep = client("dynamodb", S):DescribeTable{ TableName = t.TableName }.Table
  lu.assertEquals(rep.TableStatus, "ACTIVE")
  lu.assertEquals(rep.TableArn, outputs().replica_arn)
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

function TestTradingRecipe:test_iam_policy_least_privilege_no_wildcard_action_names_table_and_replica()
  local o = outputs()
  local iam = client("iam", G)
  local role = iam:GetRole{ RoleName = "ec2-role-" .. SUFFIX }.Role
  local trust = cjson.decode(url_decode(role.AssumeRolePolicyDocument))
  lu.assertEquals(trust.Statement[1].Principal.Service, "ec2.amazonaws.com")
  lu.assertEquals(trust.Statement[1].Action, "sts:AssumeRole")
  local profile = iam:GetInstanceProfile{ InstanceProfileName = "ec2-profile-" .. SUFFIX }.InstanceProfile
  lu.assertEquals(profile.Roles[1].RoleName, role.RoleName)
  lu.assertEquals(#iam:ListAttachedRolePolicies{ RoleName = role.RoleName }.AttachedPolicies, 0)

  local doc = role_policy()
  local dynamodb_resources
  for _, st in ipairs(doc.Statement) do
    lu.assertEquals(st.Effect, "Allow")
    for _, action in ipairs(as_list(st.Action)) do
      lu.assertNotStrContains(action, "*", "no wildcard action")
      if action == "cloudwatch:PutMetricData" then
        lu.assertEquals(st.Resource, "*")
        lu.assertNotNil(st.Condition.StringEquals["cloudwatch:namespace"], "namespace condition")
      else
        lu.assertStrMatches(action, "dynamodb:%a+")
        lu.assertNotEquals(st.Resource, "*", "DynamoDB actions are scoped")
        dynamodb_resources = sorted(as_list(st.Resource))
      end
    end
  end
  lu.assertEquals(dynamodb_resources, sorted({ o.table_arn, o.replica_arn }))
end

function TestTradingRecipe:test_every_taggable_resource_has_environment_and_failover_role()
  local list = taggable()
  lu.assertTrue(#list >= 50, ("found %d taggable resources"):format(#list))
  for _, r in ipairs(list) do
    lu.assertEquals(r.tags.Environment, "Production", r.what)
    local expect = r.region == S and "Standby" or "Primary"
    lu.assertEquals(r.tags.FailoverRole, expect, r.what)
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
    lu.assertStrContains(n[2], SUFFIX, n[1])
  end
end

function TestTradingRecipe:test_a_suffix_too_long_for_elbv2_names_is_refused_before_anything_is_created()
  local sim = fo.sim.new{ seed = 1 }
  local dir = testlib.tmpdir()
  local out, err = {}, {}
  local code = engine.run{ recipe = RECIPE, sim = sim, dir = dir, stack = "long",
    config = { environmentSuffix = "a-suffix-much-too-long" }, out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end }
  testlib.rmtree(dir)
  lu.assertEquals(code, 1)
  local text = table.concat(out) .. table.concat(err)
  lu.assertStrContains(text, "environmentSuffix")
  lu.assertStrContains(text, "AWS allows 32")
  lu.assertEquals(sim:count{ mutating = true }, 0)
end

function TestTradingRecipe:test_with_certificates_https_listeners_http_redirects_and_an_https_health_check()
  local w = { sim = fo.sim.new{ seed = "https" }, dir = testlib.tmpdir() }
  w.sim.timing = FAST
  local certs = { [P] = "arn:aws:acm:eu-south-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
    [S] = "arn:aws:acm:eu-central-1:123456789012:certificate/66666666-7777-8888-9999-000000000000" }
  local ok, err = pcall(function()
    deploy(w, { stack = "https", config = { environmentSuffix = "tls",
      primaryCertificateArn = certs[P], standbyCertificateArn = certs[S] } })
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
  testlib.rmtree(w.dir)
  if not ok then error(err, 0) end
end

function TestTradingRecipe:test_an_account_without_eu_south_1_enabled_is_told_so_before_anything_is_created()
  local sim = fo.sim.new{ seed = 2, disabled_regions = { P } }
  local dir = testlib.tmpdir()
  local out, err = {}, {}
  local code = engine.run{ recipe = RECIPE, sim = sim, dir = dir, stack = "optin",
    out = function(s) out[#out + 1] = s end, err = function(s) err[#err + 1] = s end }
  testlib.rmtree(dir)
  local text = table.concat(out) .. table.concat(err)
  lu.assertEquals(code, 4, text) -- failed and rolled back: nothing was made
  lu.assertStrContains(text, "region eu-south-1 refuses these credentials (InvalidClientTokenId)")
  lu.assertStrContains(text, "aws account enable-region --region-name eu-south-1")
  lu.assertEquals(sim:count{ mutating = true }, 0, "no resource anywhere")
end

-- The CI proof ------------------------------------------------------------------------

-- What of the stack is left in the simulator: a list of "kind id" strings.
local function leftovers(sim)
  local out = {}
  local function add(kind, id) out[#out + 1] = kind .. " " .. tostring(id) end
  local function c(svc, region) return sim:client(svc, { region = region }) end
  for _, region in ipairs({ P, S, G }) do
    local ec2 = c("ec2", region)
    for _, v in ipairs(ec2:DescribeVpcs{}.Vpcs) do add("vpc", v.VpcId) end
    for _, s in ipairs(ec2:DescribeSubnets{}.Subnets) do add("subnet", s.SubnetId) end
    for _, g in ipairs(ec2:DescribeInternetGateways{}.InternetGateways) do add("igw", g.InternetGatewayId) end
    for _, g in ipairs(ec2:DescribeSecurityGroups{}.SecurityGroups) do add("sg", g.GroupId) end
    for _, e in ipairs(ec2:DescribeVpcEndpoints{}.VpcEndpoints) do add("endpoint", e.VpcEndpointId) end
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
  end
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

function TestTradingProof:test_apply_rerun_without_mutating_calls_drill_destroy_leaves_nothing()
  local w = deploy()
  local ok, err = pcall(function()
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "Apply complete")
    -- rerun: zero mutating calls
    local before = w.sim:count{ mutating = true }
    deploy(w)
    lu.assertEquals(w.code, 0, w.out .. w.err)
    lu.assertStrContains(w.out, "No changes.")
    lu.assertEquals(w.sim:count{ mutating = true }, before, "a rerun makes no mutating call")
    -- drill: the timeline
    local lines = {}
    local res = drill.run(w.sim, w.doc.outputs, { print = function(l) lines[#lines + 1] = l end })
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
  testlib.rmtree(w.dir)
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
    check(w, { 77, 0, 0, 0 })
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
  testlib.rmtree(w.dir)
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
-- a conflict (DynamoDB table, topics, roles, ...), and the rollback deletes only what the
-- second apply created itself.
local function assert_first_deployment_survives(w, before)
  lu.assertEquals(w.code, 4, w.out .. w.err)
  local text = w.out .. w.err
  lu.assertStrContains(text, 'conflict: a DynamoDB table named "trading-sessions-' .. SUFFIX .. '"')
  lu.assertStrContains(text, 'tagged as resource "sessions" of stack "ci"')
  lu.assertStrContains(text, "Remove it, or rename the resource in the recipe")
  lu.assertStrContains(text, "Apply failed; rolled back")
  local d = require("support.engine_harness").first_difference(before, holdings(w.sim))
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
  testlib.rmtree(w.dir)
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
  lu.assertStrContains(r.stdout, "Drill passed.")
end

function TestTradingProof:test_fo_run_drill_refuses_other_modes_and_aws()
  for _, extra in ipairs({ { "--plan" }, { "--destroy" }, { "--json" }, { "--target", "aws" } }) do
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

local code = lu.LuaUnit.run("-v")
if stack then testlib.rmtree(stack.dir) end
os.exit(code)
