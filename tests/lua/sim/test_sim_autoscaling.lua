-- The simulated Auto Scaling through fo's client (in-process wire path): a group running
-- its desired capacity over its subnets' AZs (seen by EC2 and by ELBv2 target health),
-- size and launch template validation with AWS's texts, the too-new instance profile,
-- scaling in and out with activities, ForceDelete and "Delete in progress", target
-- tracking policies, group metrics (1Minute only) and tags.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local net = require "support.sim_net"

local R = "eu-south-1"
local NAME = "asg-trading-app-prod"

local function setup(opts)
  local sim = net.sim()
  local n = net.build(sim, R, opts)
  return sim, n, sim:client("autoscaling", { region = R }), sim:client("elbv2", { region = R })
end

local function create(asg, n, extra)
  local p = { AutoScalingGroupName = NAME, LaunchTemplate = { LaunchTemplateId = n.lt, Version = "$Latest" },
    MinSize = 2, MaxSize = 6, DesiredCapacity = 2, VPCZoneIdentifier = table.concat(n.private, ","),
    HealthCheckType = "ELB", HealthCheckGracePeriod = 300, NewInstancesProtectedFromScaleIn = false,
    Tags = { { Key = "fo:stack", Value = "trading-prod", PropagateAtLaunch = true, ResourceId = NAME,
      ResourceType = "auto-scaling-group" }, { Key = "FailoverRole", Value = "Primary", PropagateAtLaunch = true } } }
  for k, v in pairs(extra or {}) do p[k] = v end
  asg:CreateAutoScalingGroup(p)
end

local function group(asg, name)
  return asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { name or NAME } }.AutoScalingGroups[1]
end

TestGroup = {}

function TestGroup.test_group_runs_desired_capacity_across_azs()
  local sim, n, asg = setup()
  create(asg, n, { DesiredCapacity = 3 })
  local g = group(asg)
  lu.assertStrMatches(g.AutoScalingGroupARN, "arn:aws:autoscaling:eu%-south%-1:123456789012:autoScalingGroup:"
    .. "%x+%-%x+%-%x+%-%x+%-%x+:autoScalingGroupName/" .. NAME:gsub("%-", "%%-"))
  lu.assertEquals({ g.MinSize, g.MaxSize, g.DesiredCapacity, g.DefaultCooldown, g.HealthCheckType,
    g.HealthCheckGracePeriod }, { 2, 6, 3, 300, "ELB", 300 })
  lu.assertEquals(g.AvailabilityZones, n.azs)
  lu.assertEquals(g.VPCZoneIdentifier, table.concat(n.private, ","))
  lu.assertEquals(g.LaunchTemplate, { LaunchTemplateId = n.lt, LaunchTemplateName = n.lt_name, Version = "$Latest" })
  lu.assertEquals(g.TerminationPolicies, { "Default" })
  lu.assertEquals(#g.Instances, 3)
  local per_az = {}
  for _, i in ipairs(g.Instances) do
    lu.assertStrMatches(i.InstanceId, "i%-" .. ("%x"):rep(17))
    lu.assertEquals({ i.LifecycleState, i.HealthStatus, i.InstanceType, i.ProtectedFromScaleIn },
      { "InService", "Healthy", "t3.medium", false })
    lu.assertEquals(i.LaunchTemplate, { LaunchTemplateId = n.lt, LaunchTemplateName = n.lt_name, Version = "1" })
    per_az[i.AvailabilityZone] = (per_az[i.AvailabilityZone] or 0) + 1
  end
  lu.assertEquals(per_az, { [n.azs[1]] = 2, [n.azs[2]] = 1 })
  local a = asg:DescribeAutoScalingInstances{ InstanceIds = { g.Instances[1].InstanceId, "i-0fedcba9876543210" } }
  lu.assertEquals(#a.AutoScalingInstances, 1)
  lu.assertEquals(a.AutoScalingInstances[1].AutoScalingGroupName, NAME)
  -- EC2 sees the instances, in the private subnets, with the propagated tags
  local seen = 0
  for _, r in ipairs(sim:client("ec2", { region = R }):DescribeInstances{}.Reservations) do
    for _, i in ipairs(r.Instances) do
      seen = seen + 1
      lu.assertEquals(i.State.Name, "running")
      lu.assertTrue(i.SubnetId == n.private[1] or i.SubnetId == n.private[2])
    end
  end
  lu.assertEquals(seen, 3)
  -- one launch activity per instance, newest first
  local acts = asg:DescribeScalingActivities{ AutoScalingGroupName = NAME, MaxRecords = 20 }.Activities
  lu.assertEquals(#acts, 3)
  lu.assertStrContains(acts[1].Description, "Launching a new EC2 instance: i-")
  lu.assertStrContains(acts[1].Cause, "a user request created an AutoScalingGroup changing the desired capacity from 0 to 3.")
  lu.assertEquals(acts[1].StatusCode, "Successful")
end

function TestGroup.test_tags_are_described_and_filter_groups()
  local _, n, asg = setup()
  create(asg, n)
  create(asg, n, { AutoScalingGroupName = "asg-other", Tags = { { Key = "fo:stack", Value = "other" } },
    DesiredCapacity = 0, MinSize = 0 })
  local g = group(asg)
  lu.assertEquals(g.Tags, {
    { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "FailoverRole", Value = "Primary", PropagateAtLaunch = true },
    { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "fo:stack", Value = "trading-prod", PropagateAtLaunch = true } })
  local found = asg:DescribeAutoScalingGroups{ Filters = { { Name = "tag:fo:stack", Values = { "trading-prod" } } },
    MaxRecords = 50 }.AutoScalingGroups
  lu.assertEquals(#found, 1)
  lu.assertEquals(found[1].AutoScalingGroupName, NAME)
  lu.assertEquals(#asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { "nope" } }.AutoScalingGroups, 0)
  asg:CreateOrUpdateTags{ Tags = {
    { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "Environment", Value = "Production", PropagateAtLaunch = true },
    { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "FailoverRole", Value = "Standby", PropagateAtLaunch = false },
    { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "Obsolete", Value = "x" } } }
  asg:DeleteTags{ Tags = { { ResourceId = NAME, ResourceType = "auto-scaling-group", Key = "Obsolete" } } }
  local tags = asg:DescribeTags{ Filters = { { Name = "auto-scaling-group", Values = { NAME } } } }.Tags
  local keys = {}
  for _, t in ipairs(tags) do keys[#keys + 1] = t.Key .. "=" .. t.Value .. ":" .. tostring(t.PropagateAtLaunch) end
  lu.assertEquals(keys, { "Environment=Production:true", "FailoverRole=Standby:false", "fo:stack=trading-prod:true" })
  local by = asg:DescribeTags{ Filters = { { Name = "key", Values = { "fo:stack" } }, { Name = "value", Values = { "trading-prod" } } },
    MaxRecords = 100 }.Tags
  lu.assertEquals(#by, 1)
  lu.assertEquals(by[1].ResourceId, NAME)
  net.expect(lu, "ValidationError", nil, asg.CreateOrUpdateTags, asg,
    { Tags = { { ResourceId = "nope", ResourceType = "auto-scaling-group", Key = "k", Value = "v" } } })
end

function TestGroup.test_already_exists_and_size_validation()
  local _, n, asg = setup()
  create(asg, n)
  net.expect(lu, "AlreadyExists", "AutoScalingGroup by this name already exists - A group with the name "
    .. NAME .. " already exists", create, asg, n)
  net.expect(lu, "ValidationError", "Desired capacity:7 must be between the specified min size:2 and max size:6",
    create, asg, n, { AutoScalingGroupName = "asg-b", DesiredCapacity = 7 })
  net.expect(lu, "ValidationError", "Max bound, 1, must be greater than or equal to min bound, 2",
    create, asg, n, { AutoScalingGroupName = "asg-b", MaxSize = 1, DesiredCapacity = 2 })
  net.expect(lu, "ValidationError", "Desired capacity:9 must be between the specified min size:2 and max size:6",
    asg.UpdateAutoScalingGroup, asg, { AutoScalingGroupName = NAME, DesiredCapacity = 9 })
  net.expect(lu, "ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
    asg.UpdateAutoScalingGroup, asg, { AutoScalingGroupName = "nope", DesiredCapacity = 1 })
  net.expect(lu, "ValidationError", "The subnet ID 'subnet-0123456789abcdef0' does not exist",
    create, asg, n, { AutoScalingGroupName = "asg-b", VPCZoneIdentifier = "subnet-0123456789abcdef0" })
  net.expect(lu, "ValidationError", "Provided Target Groups may not be valid. Please ensure they exist and try again.",
    create, asg, n, { AutoScalingGroupName = "asg-b", TargetGroupARNs = {
      "arn:aws:elasticloadbalancing:eu-south-1:123456789012:targetgroup/tg-nope/73e2d6bc24d8a067" } })
  -- DesiredCapacity defaults to MinSize
  asg:CreateAutoScalingGroup{ AutoScalingGroupName = "asg-min", MinSize = 1, MaxSize = 2,
    LaunchTemplate = { LaunchTemplateId = n.lt }, VPCZoneIdentifier = n.private[1] }
  lu.assertEquals(group(asg, "asg-min").DesiredCapacity, 1)
end

function TestGroup.test_invalid_launch_template()
  local _, n, asg = setup()
  net.expect(lu, "ValidationError", "You must use a valid fully-formed launch template. The specified launch "
    .. "template, with template ID lt-0123456789abcdef0, does not exist.",
    create, asg, n, { LaunchTemplate = { LaunchTemplateId = "lt-0123456789abcdef0", Version = "$Latest" } })
  net.expect(lu, "ValidationError", nil, create, asg, n,
    { LaunchTemplate = { LaunchTemplateName = "no-such-template", Version = "$Latest" } })
  net.expect(lu, "ValidationError", nil, create, asg, n, { LaunchTemplate = { LaunchTemplateId = n.lt, Version = "7" } })
  create(asg, n, { LaunchTemplate = { LaunchTemplateName = n.lt_name, Version = "1" } })
  lu.assertEquals(group(asg).LaunchTemplate.LaunchTemplateId, n.lt)
end

function TestGroup.test_a_launch_template_just_created_is_not_seen_in_the_consistency_window()
  local sim = net.sim()
  sim:set_knob("consistency_ms", 1000)
  local n = net.build(sim, R)
  local asg = sim:client("autoscaling", { region = R })
  net.expect(lu, "ValidationError", "You must use a valid fully-formed launch template. The specified launch "
    .. "template, with template ID " .. n.lt .. ", does not exist.", create, asg, n)
  sim:advance(1.5)
  create(asg, n)
  sim:advance(1.5) -- (the new group is in its own window)
  lu.assertEquals(group(asg).LaunchTemplate.LaunchTemplateId, n.lt)
end

function TestGroup.test_new_instance_profile_is_refused_until_iam_propagates()
  local sim = net.sim()
  local iam = sim:client("iam", { region = "us-east-1" })
  iam:CreateRole{ RoleName = "role-app", AssumeRolePolicyDocument = '{"Version":"2012-10-17","Statement":'
    .. '[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}' }
  iam:CreateInstanceProfile{ InstanceProfileName = "profile-app" }
  iam:AddRoleToInstanceProfile{ InstanceProfileName = "profile-app", RoleName = "role-app" }
  local n = net.build(sim, R, { profile = "profile-app" })
  local asg = sim:client("autoscaling", { region = R })
  net.expect(lu, "ValidationError", "You must use a valid fully-formed launch template. Value (profile-app) "
    .. "for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", create, asg, n)
  sim:advance(2)
  create(asg, n)
  lu.assertEquals(#group(asg).Instances, 2)
end

function TestGroup.test_update_scales_out_and_in_with_activities()
  local sim, n, asg = setup()
  create(asg, n)
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = NAME, DesiredCapacity = 4 }
  lu.assertEquals(#group(asg).Instances, 4)
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = NAME, MinSize = 0, MaxSize = 6, DesiredCapacity = 1,
    LaunchTemplate = { LaunchTemplateId = n.lt, Version = "1" } }
  local g = group(asg)
  lu.assertEquals(g.DesiredCapacity, 1)
  lu.assertEquals(g.LaunchTemplate.Version, "1")
  local terminating = 0
  for _, i in ipairs(g.Instances) do
    if i.LifecycleState == "Terminating" then terminating = terminating + 1 end
  end
  lu.assertEquals(terminating, 3)
  local acts = asg:DescribeScalingActivities{ AutoScalingGroupName = NAME }.Activities
  lu.assertStrContains(acts[1].Description, "Terminating EC2 instance: i-")
  lu.assertStrContains(acts[1].Cause, "constraints to min: 0, max: 6, desired: 1 changing the desired capacity from 4 to 1.")
  sim:advance(1)
  lu.assertEquals(#group(asg).Instances, 1)
  -- only the bounds: the desired capacity moves into them
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = NAME, MinSize = 2 }
  lu.assertEquals(group(asg).DesiredCapacity, 2)
  lu.assertEquals(#group(asg).Instances, 2)
end

function TestGroup.test_delete_needs_force_then_is_in_progress_then_gone()
  local sim, n, asg = setup()
  create(asg, n)
  net.expect(lu, "ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending "
    .. "Spot instance request(s) still in the group.", asg.DeleteAutoScalingGroup, asg, { AutoScalingGroupName = NAME })
  asg:DeleteAutoScalingGroup{ AutoScalingGroupName = NAME, ForceDelete = true }
  local g = group(asg)
  lu.assertEquals(g.Status, "Delete in progress")
  net.expect(lu, "ScalingActivityInProgress", nil, asg.UpdateAutoScalingGroup, asg,
    { AutoScalingGroupName = NAME, DesiredCapacity = 3 })
  -- the recipe's wait: poll until the group is gone
  local polls = 0
  repeat
    polls = polls + 1
    sim:advance(0.1)
  until #asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { NAME } }.AutoScalingGroups == 0 or polls > 50
  lu.assertTrue(polls > 1 and polls <= 50, "gone after a short window, polls = " .. polls)
  net.expect(lu, "ValidationError", nil, asg.DeleteAutoScalingGroup, asg, { AutoScalingGroupName = NAME })
  -- the instances are terminated (EC2 still lists them for a while)
  for _, r in ipairs(sim:client("ec2", { region = R }):DescribeInstances{}.Reservations) do
    for _, i in ipairs(r.Instances) do lu.assertEquals(i.State.Name, "terminated") end
  end
  lu.assertEquals(#asg:DescribeScalingActivities{ AutoScalingGroupName = NAME }.Activities, 0)
  lu.assertTrue(#asg:DescribeScalingActivities{ AutoScalingGroupName = NAME, IncludeDeletedGroups = true }.Activities > 0)
  -- the name is free again
  create(asg, n)
end

function TestGroup.test_scale_to_zero_then_delete_without_force()
  local sim, n, asg = setup()
  create(asg, n)
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = NAME, MinSize = 0, DesiredCapacity = 0 }
  -- terminating instances are still in the group
  net.expect(lu, "ResourceInUse", nil, asg.DeleteAutoScalingGroup, asg, { AutoScalingGroupName = NAME })
  sim:advance(1)
  asg:DeleteAutoScalingGroup{ AutoScalingGroupName = NAME }
  sim:advance(1)
  lu.assertEquals(#asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { NAME } }.AutoScalingGroups, 0)
end

TestPolicy = {}

local TT = { AutoScalingGroupName = NAME, PolicyName = "cpu-target-60", PolicyType = "TargetTrackingScaling",
  EstimatedInstanceWarmup = 120, Enabled = true, TargetTrackingConfiguration = {
    PredefinedMetricSpecification = { PredefinedMetricType = "ASGAverageCPUUtilization" }, TargetValue = 60.5,
    DisableScaleIn = false } }

function TestPolicy.test_target_tracking_policy_with_alarms()
  local _, n, asg = setup()
  create(asg, n)
  local out = asg:PutScalingPolicy(TT)
  lu.assertStrMatches(out.PolicyARN, "arn:aws:autoscaling:eu%-south%-1:123456789012:scalingPolicy:%x+%-%x+%-%x+%-%x+%-%x+:"
    .. "autoScalingGroupName/asg%-trading%-app%-prod:policyName/cpu%-target%-60")
  lu.assertEquals(#out.Alarms, 2)
  lu.assertStrMatches(out.Alarms[1].AlarmName, "TargetTracking%-asg%-trading%-app%-prod%-AlarmHigh%-.+")
  lu.assertStrMatches(out.Alarms[2].AlarmName, "TargetTracking%-asg%-trading%-app%-prod%-AlarmLow%-.+")
  lu.assertStrContains(out.Alarms[1].AlarmARN, "arn:aws:cloudwatch:eu-south-1:123456789012:alarm:TargetTracking-")
  local pols = asg:DescribePolicies{ AutoScalingGroupName = NAME, PolicyNames = { "cpu-target-60" },
    PolicyTypes = { "TargetTrackingScaling" } }.ScalingPolicies
  lu.assertEquals(#pols, 1)
  lu.assertEquals(pols[1].TargetTrackingConfiguration.TargetValue, 60.5)
  lu.assertEquals(pols[1].TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType,
    "ASGAverageCPUUtilization")
  lu.assertEquals(pols[1].EstimatedInstanceWarmup, 120)
  lu.assertTrue(pols[1].Enabled)
  -- putting it again updates it in place: same ARN and alarms
  local again = asg:PutScalingPolicy(TT)
  lu.assertEquals(again.PolicyARN, out.PolicyARN)
  lu.assertEquals(again.Alarms, out.Alarms)
  asg:DeletePolicy{ AutoScalingGroupName = NAME, PolicyName = "cpu-target-60" }
  lu.assertEquals(asg:DescribePolicies{ AutoScalingGroupName = NAME }.ScalingPolicies, {})
end

-- The region's CloudWatch alarms named `prefix`..., by name.
local function alarms(cw, prefix)
  local out = {}
  for _, a in ipairs(cw:DescribeAlarms{ AlarmNamePrefix = prefix }.MetricAlarms) do out[a.AlarmName] = a end
  return out
end

function TestPolicy.test_target_tracking_alarms_exist_in_cloudwatch()
  local sim, n, asg = setup()
  create(asg, n)
  local cw = sim:client("cloudwatch", { region = R })
  local out = asg:PutScalingPolicy(TT)
  local high, low = out.Alarms[1].AlarmName, out.Alarms[2].AlarmName
  local seen = alarms(cw, "TargetTracking-" .. NAME .. "-")
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNamePrefix = "TargetTracking-" }.MetricAlarms, 2)
  local h, l = seen[high], seen[low]
  lu.assertNotNil(h, high)
  lu.assertNotNil(l, low)
  lu.assertEquals(h.AlarmArn, out.Alarms[1].AlarmARN)
  for _, a in ipairs{ h, l } do
    lu.assertEquals({ a.Namespace, a.MetricName, a.Statistic, a.Period, a.Dimensions, a.AlarmActions, a.OKActions,
      a.ActionsEnabled, a.StateValue }, { "AWS/EC2", "CPUUtilization", "Average", 60,
      { { Name = "AutoScalingGroupName", Value = NAME } }, { out.PolicyARN }, {}, true, "INSUFFICIENT_DATA" })
    lu.assertStrContains(a.AlarmDescription, "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy " .. out.PolicyARN)
  end
  lu.assertEquals({ h.ComparisonOperator, h.Threshold, h.EvaluationPeriods, h.DatapointsToAlarm },
    { "GreaterThanThreshold", 60.5, 3, 3 })
  lu.assertEquals({ l.ComparisonOperator, l.EvaluationPeriods, l.DatapointsToAlarm }, { "LessThanThreshold", 15, 15 })
  lu.assertAlmostEquals(l.Threshold, 60.5 * 0.9, 1e-9)
  -- the alarms are CloudWatch's in this region only
  lu.assertEquals(sim:client("cloudwatch", { region = "eu-central-1" }):DescribeAlarms{}.MetricAlarms, {})
  -- ActionPrefix finds them by the policy
  lu.assertEquals(#cw:DescribeAlarms{ ActionPrefix = out.PolicyARN }.MetricAlarms, 2)

  -- a new target updates them in place (same names, new thresholds)
  local p = {}
  for k, v in pairs(TT) do p[k] = v end
  p.TargetTrackingConfiguration = { PredefinedMetricSpecification = { PredefinedMetricType = "ASGAverageCPUUtilization" },
    TargetValue = 40 }
  lu.assertEquals(asg:PutScalingPolicy(p).Alarms, out.Alarms)
  seen = alarms(cw, "TargetTracking-")
  lu.assertEquals(seen[high].Threshold, 40.0)
  lu.assertAlmostEquals(seen[low].Threshold, 36.0, 1e-9)
  -- without scale-in there is nothing to do on a low metric: AlarmLow goes
  p.TargetTrackingConfiguration.DisableScaleIn = true
  local no_low = asg:PutScalingPolicy(p)
  lu.assertEquals(no_low.Alarms, { out.Alarms[1] })
  seen = alarms(cw, "TargetTracking-")
  lu.assertNotNil(seen[high])
  lu.assertNil(seen[low])
  lu.assertEquals(asg:DescribePolicies{ AutoScalingGroupName = NAME }.ScalingPolicies[1].Alarms, { out.Alarms[1] })
  -- scale-in again: a new AlarmLow
  p.TargetTrackingConfiguration.DisableScaleIn = false
  local back = asg:PutScalingPolicy(p)
  lu.assertEquals(#back.Alarms, 2)
  lu.assertEquals(back.Alarms[1], out.Alarms[1])
  lu.assertStrMatches(back.Alarms[2].AlarmName, "TargetTracking%-asg%-trading%-app%-prod%-AlarmLow%-.+")
  lu.assertNotEquals(back.Alarms[2].AlarmName, low)
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNamePrefix = "TargetTracking-" }.MetricAlarms, 2)

  -- DeletePolicy deletes them; other alarms stay
  cw:PutMetricAlarm{ AlarmName = "mine", MetricName = "CPUUtilization", Namespace = "AWS/EC2", Statistic = "Average",
    Period = 60, EvaluationPeriods = 1, Threshold = 90, ComparisonOperator = "GreaterThanThreshold" }
  asg:DeletePolicy{ AutoScalingGroupName = NAME, PolicyName = "cpu-target-60" }
  lu.assertEquals(cw:DescribeAlarms{ AlarmNamePrefix = "TargetTracking-" }.MetricAlarms, {})
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNames = { "mine" } }.MetricAlarms, 1)
  -- and so does DeletePolicy by ARN
  local again = asg:PutScalingPolicy(TT)
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNamePrefix = "TargetTracking-" }.MetricAlarms, 2)
  asg:DeletePolicy{ PolicyName = again.PolicyARN }
  lu.assertEquals(cw:DescribeAlarms{ AlarmNamePrefix = "TargetTracking-" }.MetricAlarms, {})
end

function TestPolicy.test_alarms_go_with_the_group_and_a_simple_policy_has_none()
  local sim, n, asg = setup()
  create(asg, n)
  local cw = sim:client("cloudwatch", { region = R })
  asg:PutScalingPolicy(TT)
  asg:PutScalingPolicy{ AutoScalingGroupName = NAME, PolicyName = "simple", AdjustmentType = "ChangeInCapacity",
    ScalingAdjustment = 1 }
  lu.assertEquals(#cw:DescribeAlarms{}.MetricAlarms, 2)
  -- a tracking policy turned into a simple one loses its alarms
  local p = { AutoScalingGroupName = NAME, PolicyName = "cpu-target-60", PolicyType = "SimpleScaling",
    AdjustmentType = "ChangeInCapacity", ScalingAdjustment = 1 }
  lu.assertEquals(asg:PutScalingPolicy(p).Alarms, {})
  lu.assertEquals(cw:DescribeAlarms{}.MetricAlarms, {})
  local out = asg:PutScalingPolicy(TT)
  lu.assertEquals(#cw:DescribeAlarms{}.MetricAlarms, 2)
  asg:DeleteAutoScalingGroup{ AutoScalingGroupName = NAME, ForceDelete = true }
  lu.assertEquals(cw:DescribeAlarms{}.MetricAlarms, {})
  sim:advance(5)
  lu.assertEquals(cw:DescribeAlarms{ AlarmNames = { out.Alarms[1].AlarmName } }.MetricAlarms, {})
end

function TestPolicy.test_alb_request_count_alarm_watches_the_target_group()
  local sim, n, asg = setup()
  create(asg, n)
  local label = "app/alb-trading/0123456789abcdef/targetgroup/tg-trading/fedcba9876543210"
  local out = asg:PutScalingPolicy{ AutoScalingGroupName = NAME, PolicyName = "rps", PolicyType = "TargetTrackingScaling",
    TargetTrackingConfiguration = { TargetValue = 1000, PredefinedMetricSpecification = {
      PredefinedMetricType = "ALBRequestCountPerTarget", ResourceLabel = label } } }
  local a = sim:client("cloudwatch", { region = R }):DescribeAlarms{ AlarmNames = { out.Alarms[1].AlarmName } }
    .MetricAlarms[1]
  lu.assertEquals({ a.Namespace, a.MetricName, a.Statistic, a.Dimensions, a.Threshold },
    { "AWS/ApplicationELB", "RequestCountPerTarget", "Sum",
      { { Name = "TargetGroup", Value = "targetgroup/tg-trading/fedcba9876543210" } }, 1000.0 })
end

function TestPolicy.test_policy_validation()
  local _, n, asg = setup()
  create(asg, n)
  local p = {}
  for k, v in pairs(TT) do p[k] = v end
  p.AutoScalingGroupName = "nope"
  net.expect(lu, "ValidationError", nil, asg.PutScalingPolicy, asg, p)
  p.AutoScalingGroupName, p.TargetTrackingConfiguration = NAME, nil
  net.expect(lu, "ValidationError", nil, asg.PutScalingPolicy, asg, p)
  net.expect(lu, "ValidationError", nil, asg.PutScalingPolicy, asg, { AutoScalingGroupName = NAME,
    PolicyName = "alb", PolicyType = "TargetTrackingScaling", TargetTrackingConfiguration = {
      PredefinedMetricSpecification = { PredefinedMetricType = "ALBRequestCountPerTarget" }, TargetValue = 100 } })
  net.expect(lu, "ValidationError", nil, asg.PutScalingPolicy, asg, { AutoScalingGroupName = NAME,
    PolicyName = "simple", PolicyType = "SimpleScaling" })
  local simple = asg:PutScalingPolicy{ AutoScalingGroupName = NAME, PolicyName = "simple",
    AdjustmentType = "ChangeInCapacity", ScalingAdjustment = 1, Cooldown = 60 }
  lu.assertEquals(simple.Alarms, {})
end

TestMetrics = {}

function TestMetrics.test_enable_disable_one_minute_only()
  local _, n, asg = setup()
  create(asg, n)
  net.expect(lu, "ValidationError", nil, asg.EnableMetricsCollection, asg,
    { AutoScalingGroupName = NAME, Granularity = "5Minute" })
  net.expect(lu, "ValidationError", nil, asg.EnableMetricsCollection, asg,
    { AutoScalingGroupName = NAME, Granularity = "1Minute", Metrics = { "GroupBogus" } })
  asg:EnableMetricsCollection{ AutoScalingGroupName = NAME, Granularity = "1Minute",
    Metrics = { "GroupInServiceInstances", "GroupDesiredCapacity", "GroupTotalInstances" } }
  lu.assertEquals(group(asg).EnabledMetrics, {
    { Metric = "GroupDesiredCapacity", Granularity = "1Minute" },
    { Metric = "GroupInServiceInstances", Granularity = "1Minute" },
    { Metric = "GroupTotalInstances", Granularity = "1Minute" } })
  asg:DisableMetricsCollection{ AutoScalingGroupName = NAME, Metrics = { "GroupTotalInstances" } }
  lu.assertEquals(#group(asg).EnabledMetrics, 2)
  asg:DisableMetricsCollection{ AutoScalingGroupName = NAME }
  lu.assertEquals(group(asg).EnabledMetrics, {})
  asg:EnableMetricsCollection{ AutoScalingGroupName = NAME, Granularity = "1Minute" }
  lu.assertEquals(#group(asg).EnabledMetrics, 20, "no metrics named: all of them")
end

TestState = {}

function TestState.test_state_survives_a_reload()
  local path = os.tmpname()
  os.remove(path); os.remove(require("fo.sim.store_log").path(path))
  local sim = require("fo.sim").new{ seed = "reload", file = path }
  sim.timing = net.FAST
  local n = net.build(sim, R)
  local asg = sim:client("autoscaling", { region = R })
  create(asg, n)
  asg:PutScalingPolicy(TT)
  local before = group(asg)
  local sim2 = require("fo.sim").new{ file = path }
  local asg2 = sim2:client("autoscaling", { region = R })
  lu.assertEquals(group(asg2), before)
  asg2:UpdateAutoScalingGroup{ AutoScalingGroupName = NAME, DesiredCapacity = 3 }
  lu.assertEquals(#group(asg2).Instances, 3)
  os.remove(path); os.remove(require("fo.sim.store_log").path(path))
end

TestAttachTargetGroups = {}

function TestAttachTargetGroups.test_target_groups_attach_and_detach_in_place()
  local sim, n, asg, elb = setup()
  local tg = elb:CreateTargetGroup{ Name = "tg-attach", Protocol = "HTTP", Port = 80, VpcId = n.vpc }
    .TargetGroups[1].TargetGroupArn
  sim:advance(1)
  create(asg, n)
  asg:AttachLoadBalancerTargetGroups{ AutoScalingGroupName = NAME, TargetGroupARNs = { tg } }
  asg:AttachLoadBalancerTargetGroups{ AutoScalingGroupName = NAME, TargetGroupARNs = { tg } }
  lu.assertEquals(group(asg).TargetGroupARNs, { tg })
  lu.assertEquals(group(asg).TrafficSources, { { Identifier = tg } })
  -- its instances are registered (unused: no listener forwards to the group yet)
  local th = elb:DescribeTargetHealth{ TargetGroupArn = tg }.TargetHealthDescriptions
  lu.assertEquals(#th, 2)
  net.expect(lu, "ValidationError", "Provided Target Groups may not be valid. Please ensure they exist "
    .. "and try again.", asg.AttachLoadBalancerTargetGroups, asg,
    { AutoScalingGroupName = NAME, TargetGroupARNs = { (tg:gsub("%x+$", "0000000000000000")) } })
  asg:DetachLoadBalancerTargetGroups{ AutoScalingGroupName = NAME, TargetGroupARNs = { tg } }
  lu.assertEquals(group(asg).TargetGroupARNs, {})
  lu.assertEquals(#elb:DescribeTargetHealth{ TargetGroupArn = tg }.TargetHealthDescriptions, 0)
end

os.exit(lu.LuaUnit.run())
