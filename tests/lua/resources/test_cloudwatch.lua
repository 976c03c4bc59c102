-- aws:cloudwatch:alarm driven by the engine on the simulator: the Route 53 HealthCheckStatus
-- alarm in us-east-1 (the metric's only region) with a us-east-1 topic, read back through
-- fo's cloudwatch client; rerun without mutating calls; update in place (PutMetricAlarm,
-- tags apart); drift; destroy; adoption; the region rules checked before any call; someone
-- else's alarm of the same name left alone; the alarm firing and notifying when the check
-- fails.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local types = require "support.engine_types"
require "fo.aws.resources.route53"
require "fo.aws.resources.sns"
require "fo.aws.resources.cloudwatch"

local sim, dir

local function cw(region) return sim:client("cloudwatch", { region = region or "us-east-1" }) end

local run, apply = T.runner(function() return sim, dir end, "us-east-1")

-- A health check, a us-east-1 topic and the HealthCheckStatus alarm on it.
local function alarm(o)
  o = o or {}
  return function()
    local hc = fo.resource("aws:route53:health_check", "primary", { fqdn = o.fqdn or
      "primary.example.net", port = 80, request_interval = 10, failure_threshold = 3 })
    local topic = fo.resource("aws:sns:topic", "alarms", { name = "failover-alarms-test" })
    fo.resource("aws:cloudwatch:alarm", "primary_health", { name = "primary-health-test",
      description = o.description or "primary ALB failed its Route 53 health check",
      namespace = "AWS/Route53", metric_name = "HealthCheckStatus",
      dimensions = { HealthCheckId = hc.id }, statistic = "Minimum", period = 60,
      evaluation_periods = o.periods or 1, threshold = 1, comparison_operator = "LessThanThreshold",
      treat_missing_data = "breaching", alarm_actions = { topic.arn }, ok_actions = { topic.arn },
      tags = o.tags or { Environment = "Production", FailoverRole = "Primary" } },
      { region = o.region })
    fo.output("topic_arn", topic.arn)
    fo.output("health_check_id", hc.id)
  end
end

local function get(name, region)
  return cw(region):DescribeAlarms{ AlarmNames = { name } }.MetricAlarms[1]
end

local function tags(arn, region)
  return T.tag_map(cw(region):ListTagsForResource{ ResourceARN = arn }.Tags)
end

TestCloudWatchTypes = {}

function TestCloudWatchTypes:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestCloudWatchTypes:tearDown()
  H.cleanup(dir)
end

function TestCloudWatchTypes:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(alarm())
  local a = get("primary-health-test")
  lu.assertEquals({ a.Namespace, a.MetricName, a.Statistic, a.Period, a.EvaluationPeriods,
    a.Threshold, a.ComparisonOperator, a.TreatMissingData },
    { "AWS/Route53", "HealthCheckStatus", "Minimum", 60, 1, 1, "LessThanThreshold", "breaching" })
  lu.assertEquals(a.Dimensions, { { Name = "HealthCheckId", Value = doc.outputs.health_check_id } })
  lu.assertEquals(a.AlarmActions, { doc.outputs.topic_arn })
  lu.assertEquals(tags(a.AlarmArn), { Environment = "Production", FailoverRole = "Primary",
    ["fo:name"] = "primary_health", ["fo:stack"] = "dev",
    ["fo:token"] = T.record(dir, "dev::aws:cloudwatch:alarm::primary_health").token })
  lu.assertEquals(H.ops(sim, { service = "cloudwatch", mutating = true }), { "cloudwatch.PutMetricAlarm" })
  local rec = H.state(dir).resources["dev::aws:cloudwatch:alarm::primary_health"]
  lu.assertEquals(rec.outputs.arn, a.AlarmArn)
  local before = H.mutating(sim)
  local _, out = apply(alarm())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestCloudWatchTypes:test_update_in_place_keeps_the_state_and_changes_tags_apart()
  apply(alarm())
  cw():SetAlarmState{ AlarmName = "primary-health-test", StateValue = "OK", StateReason = "test" }
  sim.recorder:clear()
  apply(alarm{ periods = 3, description = "changed", tags = { Environment = "Production" } })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "cloudwatch.PutMetricAlarm", "cloudwatch.UntagResource" })
  local a = get("primary-health-test")
  lu.assertEquals({ a.EvaluationPeriods, a.AlarmDescription, a.StateValue }, { 3, "changed", "OK" })
  lu.assertNil(tags(a.AlarmArn).FailoverRole)
  -- a tag change alone makes no PutMetricAlarm
  sim.recorder:clear()
  apply(alarm{ periods = 3, description = "changed", tags = { Environment = "Staging" } })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "cloudwatch.TagResource" })
end

function TestCloudWatchTypes:test_refresh_finds_drift_and_apply_repairs_it()
  local doc = apply(alarm())
  local a = get("primary-health-test")
  cw():PutMetricAlarm{ AlarmName = a.AlarmName, Namespace = a.Namespace, MetricName = a.MetricName,
    Dimensions = a.Dimensions, Statistic = "Average", Period = 60, EvaluationPeriods = 1,
    Threshold = 0.5, ComparisonOperator = "LessThanThreshold", AlarmActions = {} }
  local code, rdoc, out = run(alarm(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, 'statistic: "Minimum" → "Average"')
  lu.assertStrContains(out, "threshold: 1 → 0.5")
  lu.assertEquals(#rdoc.drift, 1)
  apply(alarm())
  a = get("primary-health-test")
  lu.assertEquals({ a.Statistic, a.Threshold, a.TreatMissingData, a.AlarmActions[1] },
    { "Minimum", 1, "breaching", doc.outputs.topic_arn })
  local _, again = apply(alarm())
  lu.assertStrContains(again, "No changes.")
  -- deleted by hand: re-created
  cw():DeleteAlarms{ AlarmNames = { "primary-health-test" } }
  local _, o2 = apply(alarm())
  lu.assertStrContains(o2, "dev::aws:cloudwatch:alarm::primary_health: deleted")
  lu.assertNotNil(get("primary-health-test"))
end

-- Three alarms on the same health check and topic, `thresholds` their thresholds.
local function three_alarms(thresholds)
  return function()
    local hc = fo.resource("aws:route53:health_check", "primary", { fqdn = "primary.example.net",
      port = 80, request_interval = 10, failure_threshold = 3 })
    for i = 1, 3 do
      fo.resource("aws:cloudwatch:alarm", "a" .. i, { name = "alarm-" .. i .. "-test",
        namespace = "AWS/Route53", metric_name = "HealthCheckStatus",
        dimensions = { HealthCheckId = hc.id }, statistic = "Minimum", period = 60,
        evaluation_periods = 1, threshold = thresholds and thresholds[i] or 1,
        comparison_operator = "LessThanThreshold", tags = { N = tostring(i) } })
    end
  end
end

function TestCloudWatchTypes:test_a_create_describes_its_alarm_once()
  -- the check of the name before PutMetricAlarm; the ARN is not described again
  apply(alarm())
  lu.assertEquals(H.ops(sim, { service = "cloudwatch" }),
    { "cloudwatch.DescribeAlarms", "cloudwatch.PutMetricAlarm" })
  local a = get("primary-health-test")
  lu.assertEquals(H.state(dir).resources["dev::aws:cloudwatch:alarm::primary_health"].outputs,
    { arn = a.AlarmArn, name = a.AlarmName })
end

function TestCloudWatchTypes:test_a_refresh_reads_its_alarms_in_one_describe_and_sees_each_change()
  apply(three_alarms())
  sim.recorder:clear()
  -- (--parallel 1 bounds the writes: the reads still run at once)
  local _, out = apply(three_alarms(), { parallel = 1 })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(sim:count{ operation = "DescribeAlarms" }, 1)
  lu.assertEquals(sim:count{ operation = "ListTagsForResource", service = "cloudwatch" }, 3)
  -- changed by hand: the threshold of one, the tags of another, a third deleted
  local a2 = get("alarm-2-test")
  cw():PutMetricAlarm{ AlarmName = a2.AlarmName, Namespace = a2.Namespace,
    MetricName = a2.MetricName, Dimensions = a2.Dimensions, Statistic = "Minimum", Period = 60,
    EvaluationPeriods = 1, Threshold = 0.5, ComparisonOperator = "LessThanThreshold" }
  cw():TagResource{ ResourceARN = get("alarm-3-test").AlarmArn, Tags = { { Key = "N", Value = "x" } } }
  cw():DeleteAlarms{ AlarmNames = { "alarm-1-test" } }
  local code, rdoc, rout = run(three_alarms(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, rout)
  lu.assertStrContains(rout, "threshold: 1 → 0.5")
  lu.assertStrContains(rout, 'N: "3" → "x"')
  local kinds = {}
  for _, d in ipairs(rdoc.drift) do kinds[#kinds + 1] = d.urn .. " " .. d.kind end
  lu.assertEquals(kinds, { "dev::aws:cloudwatch:alarm::a1 deleted",
    "dev::aws:cloudwatch:alarm::a2 changed", "dev::aws:cloudwatch:alarm::a3 changed" })
end

function TestCloudWatchTypes:test_destroy_leaves_nothing()
  apply(alarm())
  local code, _, out = run(alarm(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(cw():DescribeAlarms{}.MetricAlarms, {})
  lu.assertEquals(sim:client("sns", { region = "us-east-1" }):ListTopics{}.Topics, {})
  code = run(alarm(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
end

function TestCloudWatchTypes:test_health_check_alarms_live_in_us_east_1()
  -- declared in eu-south-1: refused with the reason, nothing of the alarm created
  local code, _, out, err = run(alarm{ region = "eu-south-1" })
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "published only in us-east-1")
  lu.assertEquals(H.ops(sim, { operation = "PutMetricAlarm" }), {})
end

function TestCloudWatchTypes:test_actions_must_be_in_the_alarm_region()
  local code, _, out, err = run(function()
    fo.resource("aws:cloudwatch:alarm", "cpu", { name = "cpu-test", namespace = "AWS/EC2",
      metric_name = "CPUUtilization", statistic = "Average", period = 60, evaluation_periods = 3,
      threshold = 80, comparison_operator = "GreaterThanThreshold",
      alarm_actions = { "arn:aws:sns:us-east-1:123456789012:elsewhere" } }, { region = "eu-central-1" })
  end)
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "an alarm's actions must be in its own region (eu-central-1)")
  lu.assertEquals(H.ops(sim, { operation = "PutMetricAlarm" }), {})
  -- and the schema's rules: a period CloudWatch refuses
  code, _, out, err = run(function()
    fo.resource("aws:cloudwatch:alarm", "cpu", { name = "cpu-test", namespace = "AWS/EC2",
      metric_name = "CPUUtilization", statistic = "Average", period = 45, evaluation_periods = 3,
      threshold = 80, comparison_operator = "GreaterThanThreshold" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "10, 20, 30 or a multiple of 60")
end

function TestCloudWatchTypes:test_an_alarm_of_the_same_name_not_ours_is_not_overwritten()
  cw():PutMetricAlarm{ AlarmName = "primary-health-test", Namespace = "AWS/EC2",
    MetricName = "CPUUtilization", Statistic = "Average", Period = 60, EvaluationPeriods = 1,
    Threshold = 50, ComparisonOperator = "GreaterThanThreshold" }
  local out = T.assert_conflict(sim, dir, alarm(), get("primary-health-test").AlarmArn,
    { region = "us-east-1" })
  lu.assertStrContains(out, 'a CloudWatch alarm named "primary-health-test" in us-east-1')
  lu.assertEquals(get("primary-health-test").Namespace, "AWS/EC2")
end

function TestCloudWatchTypes:test_another_copy_of_the_stacks_alarm_is_not_overwritten()
  cw():PutMetricAlarm{ AlarmName = "primary-health-test", Namespace = "AWS/EC2",
    MetricName = "CPUUtilization", Statistic = "Average", Period = 60, EvaluationPeriods = 1,
    Threshold = 50, ComparisonOperator = "GreaterThanThreshold",
    Tags = T.other_copy_tags("primary_health") }
  T.assert_conflict(sim, dir, alarm(), get("primary-health-test").AlarmArn, { region = "us-east-1" })
end

function TestCloudWatchTypes:test_interrupted_create_is_adopted()
  -- PutMetricAlarm makes the alarm but the run stops before recording it: simulate with
  -- its answer lost (an error after the alarm is made)
  sim:add_handlers("cloudwatch", { PutMetricAlarm = function(ctx, p)
    require("fo.sim.services.cloudwatch").PutMetricAlarm(ctx, p)
    ctx:fail("InternalFailureX", "injected", 400)
  end })
  local code = run(alarm(), { rollback = false })
  lu.assertEquals(code, 3)
  lu.assertNotNil(H.state(dir).intents["dev::aws:cloudwatch:alarm::primary_health"])
  lu.assertNotNil(get("primary-health-test"))
  sim.recorder:clear()
  local _, out = apply(alarm())
  lu.assertStrContains(out, "Adopted dev::aws:cloudwatch:alarm::primary_health: primary-health-test")
  lu.assertEquals(H.mutating(sim), 0)
end

function TestCloudWatchTypes:test_the_alarm_fires_and_notifies_when_the_health_check_fails()
  -- the check targets a name no load balancer answers: unhealthy after 3 × 10 s; the
  -- alarm's minute closes below 1 → ALARM → the us-east-1 topic gets the notification
  local doc = apply(alarm{ fqdn = "nothing-here.example.net" })
  sim:advance(150)
  lu.assertEquals(get("primary-health-test").StateValue, "ALARM")
  local found = false
  for _, m in ipairs(sim:deliveries(doc.outputs.topic_arn)) do
    local n = cjson.decode(m.Message)
    if n.NewStateValue == "ALARM" and n.AlarmName == "primary-health-test" then found = true end
  end
  lu.assertTrue(found, "ALARM notification delivered to the us-east-1 topic")
end

os.exit(lu.LuaUnit.run())
