-- aws:autoscaling:group and aws:autoscaling:policy driven by the engine on the simulator
-- (network and launch template built with a sim client: tests/lua/support/sim_net.lua;
-- the instance profile and target group by their own types), read back through fo's
-- clients: a new instance profile retried until Auto Scaling accepts it, tags in the
-- create call, capacity waited for, group metrics, target tracking alarms, rerun without
-- mutating calls, updates in place (sizes, target groups attached/detached, metrics, the
-- policy put again), replacement delete-first, drift and repair (desired capacity left to
-- the scaling policies), destroy waiting until the group is gone before its target group,
-- and adoption after an interrupted create.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local net = require "support.sim_net"
require "fo.aws.resources.iam"
require "fo.aws.resources.elbv2"
require "fo.aws.resources.autoscaling"

local R = "eu-south-1"
local PROFILE = "ip-app-prod"
local sim, dir, n, asg, elb, cw

local TRUST = { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" } } }

local function recipe(o)
  o = o or {}
  return function()
    local role = fo.resource("aws:iam:role", "app", { name = "role-app-prod", assume_role_policy = TRUST })
    local profile = fo.resource("aws:iam:instance_profile", "app", { name = PROFILE, role_name = role.name })
    local tgs = {}
    for _, t in ipairs(o.tgs or { "tg-a" }) do
      tgs[#tgs + 1] = fo.resource("aws:elbv2:target_group", t, { name = t, port = 8080, vpc_id = n.vpc },
        { region = R }).arn
    end
    local g = fo.resource("aws:autoscaling:group", "app", { name = o.name or "asg-app-prod",
      launch_template = { id = n.lt, version = o.version or "$Latest" },
      min_size = o.min or 1, max_size = o.max or 4, desired_capacity = o.desired or 2,
      vpc_zone_identifier = n.private, target_group_arns = tgs,
      health_check_type = "ELB", health_check_grace_period = 120,
      metrics_collection = o.metrics or { granularity = "1Minute",
        metrics = { "GroupInServiceInstances", "GroupDesiredCapacity" } },
      tags = o.tags or { Environment = "Production", FailoverRole = "Primary" } },
      { region = R, depends_on = { profile } })
    local cpu = fo.resource("aws:autoscaling:policy", "cpu", { group_name = g.name,
      policy_name = "cpu-target", target_value = o.target or 60 }, { region = R })
    if o.twice then
      fo.resource("aws:autoscaling:policy", "cpu-again", { group_name = g.name,
        policy_name = "cpu-target", target_value = 50 }, { region = R, depends_on = { cpu } })
    end
    fo.output("group_arn", g.arn)
  end
end

TestAutoScaling = {}

function TestAutoScaling:setUp()
  sim, dir = net.sim{ seed = "asg-types" }, H.dir()
  n = net.build(sim, R, { profile = PROFILE })
  asg, elb = sim:client("autoscaling", { region = R }), sim:client("elbv2", { region = R })
  cw = sim:client("cloudwatch", { region = R })
  sim.recorder:clear()
end

function TestAutoScaling:tearDown()
  H.cleanup(dir)
end

local function group(name)
  return asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { name or "asg-app-prod" } }.AutoScalingGroups[1]
end

local function in_service(g)
  local k = 0
  for _, i in ipairs(g.Instances) do if i.LifecycleState == "InService" then k = k + 1 end end
  return k
end

local function metrics(g)
  local out = {}
  for _, m in ipairs(g.EnabledMetrics) do out[#out + 1] = m.Metric end
  table.sort(out)
  return out
end

function TestAutoScaling:test_create_waits_out_the_new_instance_profile_and_reads_back()
  local doc = T.run(sim, dir, recipe())
  -- Auto Scaling refused the profile while it was new, then accepted it (one group)
  local refused = H.ops(sim, function(c) return c.operation == "CreateAutoScalingGroup"
    and c.code == "ValidationError" end)
  lu.assertTrue(#refused >= 1, "the too-new instance profile was retried")
  local g = group()
  lu.assertEquals(doc.outputs.group_arn, g.AutoScalingGroupARN)
  lu.assertEquals({ g.MinSize, g.MaxSize, g.DesiredCapacity, g.HealthCheckType, g.HealthCheckGracePeriod },
    { 1, 4, 2, "ELB", 120 })
  lu.assertEquals(in_service(g), 2)
  lu.assertEquals(g.LaunchTemplate.LaunchTemplateId, n.lt)
  lu.assertEquals(g.TargetGroupARNs, { T.record(dir, "dev::aws:elbv2:target_group::tg-a").id })
  lu.assertEquals(metrics(g), { "GroupDesiredCapacity", "GroupInServiceInstances" })
  local tags = {}
  for _, t in ipairs(g.Tags) do tags[t.Key] = t.PropagateAtLaunch end
  lu.assertEquals(tags, { ["fo:stack"] = false, ["fo:name"] = false, ["fo:token"] = false,
    Environment = true, FailoverRole = true })
  -- the policy and the alarms Auto Scaling made for it
  local pol = asg:DescribePolicies{ AutoScalingGroupName = "asg-app-prod" }.ScalingPolicies[1]
  lu.assertEquals(pol.TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType,
    "ASGAverageCPUUtilization")
  lu.assertEquals(pol.TargetTrackingConfiguration.TargetValue, 60.0)
  local rec = T.record(dir, "dev::aws:autoscaling:policy::cpu")
  lu.assertEquals(rec.id, pol.PolicyARN)
  lu.assertEquals(#rec.outputs.alarm_names, 2)
  local alarms = cw:DescribeAlarms{ AlarmNames = rec.outputs.alarm_names }.MetricAlarms
  lu.assertEquals(#alarms, 2)

  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
end

function TestAutoScaling:test_updates_in_place()
  T.run(sim, dir, recipe())
  local arn = group().AutoScalingGroupARN
  local pol = T.record(dir, "dev::aws:autoscaling:policy::cpu")
  sim.recorder:clear()
  T.run(sim, dir, recipe{ max = 6, desired = 3, tgs = { "tg-b" }, target = 45,
    metrics = { granularity = "1Minute" }, tags = { Environment = "Production" } })
  local ops = T.mutating_ok(sim)
  lu.assertTrue(T.index(ops, "autoscaling.AttachLoadBalancerTargetGroups")
    < T.index(ops, "autoscaling.DetachLoadBalancerTargetGroups"))
  lu.assertTrue(T.index(ops, "autoscaling.DetachLoadBalancerTargetGroups") < T.index(ops, "elbv2.DeleteTargetGroup"))
  lu.assertNil(T.index(ops, "autoscaling.DeleteAutoScalingGroup"))
  local g = group()
  lu.assertEquals(g.AutoScalingGroupARN, arn)
  lu.assertEquals({ g.MaxSize, g.DesiredCapacity }, { 6, 3 })
  lu.assertEquals(g.TargetGroupARNs, { T.record(dir, "dev::aws:elbv2:target_group::tg-b").id })
  lu.assertTrue(#metrics(g) >= 13, "every group metric")
  local keys = {}
  for _, t in ipairs(g.Tags) do keys[#keys + 1] = t.Key end
  lu.assertEquals(keys, { "Environment", "fo:name", "fo:stack", "fo:token" })
  local after = T.record(dir, "dev::aws:autoscaling:policy::cpu")
  lu.assertEquals(after.id, pol.id)                               -- put again: the same policy
  lu.assertEquals(after.outputs.alarm_names, pol.outputs.alarm_names)
  local p = asg:DescribePolicies{ AutoScalingGroupName = "asg-app-prod" }.ScalingPolicies[1]
  lu.assertEquals(p.TargetTrackingConfiguration.TargetValue, 45.0)
  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe{ max = 6, desired = 3, tgs = { "tg-b" }, target = 45,
    metrics = { granularity = "1Minute" }, tags = { Environment = "Production" } })
  lu.assertStrContains(out, "No changes.")
end

-- A new launch template version: the group moves to it and an instance refresh replaces
-- the instances on the old one (SkipMatching, 90% minimum healthy), waited for; a rerun
-- starts no second refresh.
function TestAutoScaling:test_a_new_template_version_rolls_the_instances()
  local ec2 = sim:client("ec2", { region = R })
  T.run(sim, dir, recipe{ version = "1" })
  local before = {}
  for _, i in ipairs(group().Instances) do before[i.InstanceId] = true end
  ec2:CreateLaunchTemplateVersion{ LaunchTemplateId = n.lt, SourceVersion = "1",
    LaunchTemplateData = { InstanceType = "t3.large" } }
  sim.recorder:clear()
  T.run(sim, dir, recipe{ version = "2" })
  local r = asg:DescribeInstanceRefreshes{ AutoScalingGroupName = "asg-app-prod" }.InstanceRefreshes
  lu.assertEquals(#r, 1)
  lu.assertEquals(r[1].Status, "Successful")
  lu.assertEquals(r[1].Preferences.MinHealthyPercentage, 90)
  lu.assertIsTrue(r[1].Preferences.SkipMatching)
  local g = group()
  lu.assertEquals(g.LaunchTemplate.Version, "2")
  lu.assertEquals(in_service(g), 2)
  for _, i in ipairs(g.Instances) do
    if i.LifecycleState == "InService" then
      lu.assertEquals(i.LaunchTemplate.Version, "2")
      lu.assertNil(before[i.InstanceId], "replaced: " .. i.InstanceId)
    end
  end
  local _, out = T.run(sim, dir, recipe{ version = "2" })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(#asg:DescribeInstanceRefreshes{ AutoScalingGroupName = "asg-app-prod" }
    .InstanceRefreshes, 1)
end

function TestAutoScaling:test_drift_is_repaired_but_desired_capacity_is_the_policies_business()
  T.run(sim, dir, recipe())
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = "asg-app-prod", MaxSize = 9, DesiredCapacity = 3 }
  asg:DisableMetricsCollection{ AutoScalingGroupName = "asg-app-prod" }
  sim.recorder:clear()
  local doc, out = T.run(sim, dir, recipe(), { mode = "refresh", explicit = true })
  lu.assertEquals(#doc.drift, 1, out)
  lu.assertStrContains(out, "max_size: 4 → 9")
  lu.assertNotStrContains(out, "desired_capacity")
  T.run(sim, dir, recipe())
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "autoscaling.EnableMetricsCollection", "autoscaling.UpdateAutoScalingGroup" })
  local g = group()
  lu.assertEquals({ g.MaxSize, g.DesiredCapacity }, { 4, 3 })
  lu.assertEquals(metrics(g), { "GroupDesiredCapacity", "GroupInServiceInstances" })
  -- a policy deleted by hand is put back
  asg:DeletePolicy{ AutoScalingGroupName = "asg-app-prod", PolicyName = "cpu-target" }
  sim.recorder:clear()
  T.run(sim, dir, recipe())
  lu.assertEquals(T.mutating(sim), { "autoscaling.PutScalingPolicy" })
end

function TestAutoScaling:test_a_group_deleted_by_hand_is_created_again_once_it_is_gone()
  T.run(sim, dir, recipe())
  asg:DeleteAutoScalingGroup{ AutoScalingGroupName = "asg-app-prod", ForceDelete = true }
  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe())
  lu.assertStrContains(out, "dev::aws:autoscaling:group::app: deleted")
  local g = group()
  lu.assertNil(g.Status)
  lu.assertEquals(in_service(g), 2)
  lu.assertEquals(#asg:DescribePolicies{ AutoScalingGroupName = "asg-app-prod" }.ScalingPolicies, 1)
end

function TestAutoScaling:test_destroy_waits_until_the_group_is_gone_before_its_target_group()
  T.run(sim, dir, recipe())
  local ids = {}
  for _, i in ipairs(group().Instances) do ids[#ids + 1] = i.InstanceId end
  sim.recorder:clear()
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  local calls = sim:calls()
  local deleted, gone_seen, tg_deleted
  for k, c in ipairs(calls) do
    if c.operation == "DeleteAutoScalingGroup" then deleted = k end
    if deleted and not tg_deleted and c.operation == "DescribeAutoScalingGroups" then gone_seen = k end
    if c.operation == "DeleteTargetGroup" then tg_deleted = k end
  end
  lu.assertTrue(deleted < gone_seen and gone_seen < tg_deleted)
  lu.assertEquals(asg:DescribeAutoScalingGroups{}.AutoScalingGroups, {})
  local ec2 = sim:client("ec2", { region = R })
  for _, r in ipairs(ec2:DescribeInstances{ InstanceIds = ids }.Reservations) do
    for _, i in ipairs(r.Instances) do lu.assertEquals(i.State.Name, "terminated") end
  end
  lu.assertEquals(elb:DescribeTargetGroups{}.TargetGroups, {})
  lu.assertEquals(cw:DescribeAlarms{}.MetricAlarms, {})
  lu.assertEquals(sim:client("iam", {}):ListRoles{}.Roles, {})
end

function TestAutoScaling:test_rename_replaces_delete_first_and_the_policy_follows()
  T.run(sim, dir, recipe())
  sim.recorder:clear()
  T.run(sim, dir, recipe{ name = "asg-app2-prod" })
  local ops = T.mutating_ok(sim)
  lu.assertTrue(T.index(ops, "autoscaling.DeletePolicy") < T.index(ops, "autoscaling.DeleteAutoScalingGroup"))
  lu.assertTrue(T.index(ops, "autoscaling.DeleteAutoScalingGroup") < T.index(ops, "autoscaling.CreateAutoScalingGroup"))
  local names = {}
  for _, g in ipairs(asg:DescribeAutoScalingGroups{}.AutoScalingGroups) do names[#names + 1] = g.AutoScalingGroupName end
  lu.assertEquals(names, { "asg-app2-prod" })
  lu.assertEquals(#asg:DescribePolicies{ AutoScalingGroupName = "asg-app2-prod" }.ScalingPolicies, 1)
end

function TestAutoScaling:test_interrupted_creates_are_adopted_without_a_mutating_call()
  T.assert_adopted(sim, dir, recipe(),
    { "dev::aws:autoscaling:group::app", "dev::aws:autoscaling:policy::cpu" })
end

function TestAutoScaling:test_a_group_of_the_same_name_not_ours_is_not_taken_over()
  local lt = sim:client("ec2", { region = R }):CreateLaunchTemplate{ LaunchTemplateName = "lt-other",
    LaunchTemplateData = { ImageId = "ami-0abcdef1234567890", InstanceType = "t3.micro" } }
    .LaunchTemplate.LaunchTemplateId
  asg:CreateAutoScalingGroup{ AutoScalingGroupName = "asg-app-prod", MinSize = 0, MaxSize = 1,
    LaunchTemplate = { LaunchTemplateId = lt }, VPCZoneIdentifier = n.private[1] }
  local arn = group().AutoScalingGroupARN
  local out = T.assert_conflict(sim, dir, recipe(), arn)
  lu.assertStrContains(out, 'an Auto Scaling group named "asg-app-prod" in eu-south-1')
end

function TestAutoScaling:test_another_copy_of_the_stacks_group_is_not_taken_over()
  local lt = sim:client("ec2", { region = R }):CreateLaunchTemplate{ LaunchTemplateName = "lt-other",
    LaunchTemplateData = { ImageId = "ami-0abcdef1234567890", InstanceType = "t3.micro" } }
    .LaunchTemplate.LaunchTemplateId
  local tags = {}
  for i, t in ipairs(T.other_copy_tags("app")) do
    tags[i] = { ResourceId = "asg-app-prod", ResourceType = "auto-scaling-group", Key = t.Key,
      Value = t.Value, PropagateAtLaunch = false }
  end
  asg:CreateAutoScalingGroup{ AutoScalingGroupName = "asg-app-prod", MinSize = 0, MaxSize = 1,
    LaunchTemplate = { LaunchTemplateId = lt }, VPCZoneIdentifier = n.private[1], Tags = tags }
  T.assert_conflict(sim, dir, recipe(), group().AutoScalingGroupARN)
end

function TestAutoScaling:test_a_policy_of_a_new_group_is_not_read_first_but_a_second_one_is()
  -- the group is this run's: its policy is put without a DescribePolicies first
  -- (common.fresh_slot)
  T.run(sim, dir, recipe())
  lu.assertEquals(H.ops(sim, { operation = "DescribePolicies" }), {})
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  -- a second policy of the same name in the same run: read first, a conflict
  local code, doc, out, err = H.run(recipe{ twice = true }, { sim = sim, dir = dir })
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(#doc.errors, 1, out .. err)
  lu.assertEquals(doc.errors[1].error.kind, "conflict")
  lu.assertStrContains(out .. err, 'a scaling policy named "cpu-target" of Auto Scaling group '
    .. '"asg-app-prod"')
  lu.assertEquals(next(H.state(dir).resources), nil)
end

function TestAutoScaling:test_a_scaling_policy_of_the_same_name_not_ours_is_a_conflict()
  -- a group made outside the stack, with its own policy "cpu-target" (PutScalingPolicy is an
  -- upsert: a create that called it would overwrite that policy and its alarms)
  local lt = sim:client("ec2", { region = R }):CreateLaunchTemplate{
    LaunchTemplateName = "lt-other",
    LaunchTemplateData = { ImageId = "ami-0abcdef1234567890", InstanceType = "t3.micro" } }
    .LaunchTemplate.LaunchTemplateId
  asg:CreateAutoScalingGroup{ AutoScalingGroupName = "asg-other", MinSize = 0, MaxSize = 1,
    LaunchTemplate = { LaunchTemplateId = lt }, VPCZoneIdentifier = n.private[1] }
  local arn = asg:PutScalingPolicy{ AutoScalingGroupName = "asg-other", PolicyName = "cpu-target",
    PolicyType = "TargetTrackingScaling", TargetTrackingConfiguration = {
      PredefinedMetricSpecification = { PredefinedMetricType = "ASGAverageCPUUtilization" },
      TargetValue = 40.0 } }.PolicyARN
  sim.recorder:clear()
  -- the stack makes a target group first, then declares a policy of that name on the group
  local out = T.assert_conflict(sim, dir, function()
    local tg = fo.resource("aws:elbv2:target_group", "tg", { name = "tg-a", port = 8080,
      vpc_id = n.vpc }, { region = R })
    fo.resource("aws:autoscaling:policy", "cpu", { group_name = "asg-other",
      policy_name = "cpu-target", target_value = 60 }, { region = R, depends_on = { tg } })
  end, arn, { region = R })
  lu.assertStrContains(out, 'a scaling policy named "cpu-target" of Auto Scaling group "asg-other"')
  T.assert_rolled_back(sim, { { "elbv2.CreateTargetGroup", "elbv2.DeleteTargetGroup" } })
  lu.assertEquals(H.ops(sim, { operation = "PutScalingPolicy" }), {})
end

function TestAutoScaling:test_schema_rules()
  local _, out, err = T.run(sim, dir, recipe{ metrics = { granularity = "5Minute" } }, nil, 1)
  lu.assertStrContains(out .. err, "Auto Scaling publishes group metrics at 1Minute only")
  lu.assertEquals(H.mutating(sim), 0)
end

function TestAutoScaling:test_a_group_not_yet_visible_after_create_is_waited_for()
  sim:set_knob("consistency_ms", 800)
  T.run(sim, dir, recipe())
  local g = group()
  lu.assertEquals(in_service(g), 2)
  lu.assertEquals(metrics(g), { "GroupDesiredCapacity", "GroupInServiceInstances" })
  lu.assertEquals(T.record(dir, "dev::aws:autoscaling:group::app").outputs.arn, g.AutoScalingGroupARN)
end

-- A launch template's create does not wait until EC2 lists it (its answer holds the
-- outputs); Auto Scaling, which does not see a template created a moment ago ("The
-- specified launch template ... does not exist", the consistency window here), has its
-- CreateAutoScalingGroup retried until it does.
function TestAutoScaling:test_a_new_launch_template_not_yet_visible_is_retried_by_the_group()
  require "fo.aws.resources.ec2_launch"
  sim:set_knob("consistency_ms", 800)
  T.run(sim, dir, function()
    local lt = fo.resource("aws:ec2:launch_template", "app", { name = "lt-app-new",
      image_id = "ami-0abcdef1234567890", instance_type = "t3.medium",
      security_group_ids = { n.app_sg } }, { region = R })
    local g = fo.resource("aws:autoscaling:group", "app", { name = "asg-app-prod",
      launch_template = { id = lt.id, version = "$Latest" }, min_size = 1, max_size = 2,
      desired_capacity = 1, vpc_zone_identifier = n.private }, { region = R })
    fo.output("lt", lt.id)
    fo.output("version", lt.latest_version)
    fo.output("group_arn", g.arn)
  end)
  local g = group()
  local doc = H.state(dir)
  lu.assertEquals(g.LaunchTemplate.LaunchTemplateName, "lt-app-new")
  lu.assertEquals(doc.resources["dev::aws:ec2:launch_template::app"].outputs.latest_version, 1)
  lu.assertEquals(H.ops(sim, { operation = "DescribeLaunchTemplates" }), {})
  local refused = H.ops(sim, { operation = "CreateAutoScalingGroup", code = "ValidationError" })
  lu.assertTrue(#refused >= 1, "Auto Scaling did not see the new template at first")
end

os.exit(lu.LuaUnit.run())
