-- The simulator's metrics plane (fo.sim.metrics_plane) through fo's CloudWatch client:
-- the metrics AWS services publish by themselves every minute, with AWS's namespaces,
-- names and dimension sets (Auto Scaling group metrics only while collection is enabled,
-- and only those enabled; EC2 CPUUtilization; ALB host counts); alarms on a combination
-- AWS does not publish get no data; ListMetrics, GetMetricStatistics, GetMetricData and
-- PutMetricData. The sim's real clock is frozen at a minute boundary.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local topo = require "support.sim_topology"
local aws = fo.aws

local B = math.ceil(os.time() / 60) * 60 + 60
local R = "eu-south-1"

-- A region with an ALB and a group of 2 (created at B); opts.metrics: EnableMetricsCollection's
-- Metrics (true: all of them, nil: collection off).
local function world(opts)
  opts = opts or {}
  local sim = simlib.new{ seed = 7, time = function() return B end }
  local w = topo.region(sim, R, 2)
  w.sim = sim
  w.as = sim:client("autoscaling", { region = R, max_attempts = 1 })
  w.cw = sim:client("cloudwatch", { region = R, max_attempts = 1 })
  if opts.metrics then
    w.as:EnableMetricsCollection{ AutoScalingGroupName = w.asg, Granularity = "1Minute",
      Metrics = opts.metrics ~= true and opts.metrics or nil }
  end
  w.lb_dim = w.lb_arn:match(":loadbalancer/(.+)$")
  w.tg_dim = w.tg_arn:match(":(targetgroup/.+)$")
  return w
end

local function dim_names(dims)
  local n = {}
  for i, d in ipairs(dims) do n[i] = d.Name end
  table.sort(n)
  return table.concat(n, "+")
end

-- ListMetrics of a namespace as sorted "MetricName dim+dim" strings.
local function listed(w, ns, extra)
  local p = { Namespace = ns }
  for k, v in pairs(extra or {}) do p[k] = v end
  local out = {}
  for _, m in ipairs(w.cw:ListMetrics(p).Metrics) do
    out[#out + 1] = m.MetricName .. " " .. dim_names(m.Dimensions)
  end
  table.sort(out)
  return out
end

local function alarm(w, name, props)
  local p = { AlarmName = name, Statistic = "Minimum", Period = 60, EvaluationPeriods = 3,
    DatapointsToAlarm = 3, Threshold = 2, ComparisonOperator = "LessThanThreshold" }
  for k, v in pairs(props) do p[k] = v end
  w.cw:PutMetricAlarm(p)
end

local function state(w, name)
  return w.cw:DescribeAlarms{ AlarmNames = { name } }.MetricAlarms[1].StateValue
end

local function stats(w, ns, name, dims, from, to)
  local out = {}
  for _, d in ipairs(w.cw:GetMetricStatistics{ Namespace = ns, MetricName = name, Dimensions = dims,
      StartTime = from, EndTime = to, Period = 60, Statistics = { "Minimum", "Maximum" } }.Datapoints) do
    out[#out + 1] = d
  end
  table.sort(out, function(a, b) return a.Timestamp < b.Timestamp end)
  return out
end

local GROUP_METRICS = { "GroupDesiredCapacity", "GroupInServiceCapacity",
  "GroupInServiceInstances", "GroupMaxSize", "GroupMinSize", "GroupPendingCapacity",
  "GroupPendingInstances", "GroupStandbyCapacity", "GroupStandbyInstances",
  "GroupTerminatingCapacity", "GroupTerminatingInstances", "GroupTotalCapacity",
  "GroupTotalInstances" }

TestMetricsPlane = {}

function TestMetricsPlane.test_group_metrics_all_enabled_each_minute_dimension_group_name_only()
  local w = world{ metrics = true }
  w.sim:advance(300)
  local want = {}
  for i, m in ipairs(GROUP_METRICS) do want[i] = m .. " AutoScalingGroupName" end
  lu.assertEquals(listed(w, "AWS/AutoScaling"), want)
  local dims = { { Name = "AutoScalingGroupName", Value = w.asg } }
  local pts = stats(w, "AWS/AutoScaling", "GroupInServiceInstances", dims, B, B + 300)
  lu.assertEquals(#pts, 5, "one datapoint a minute")
  for i, d in ipairs(pts) do
    lu.assertEquals(d.Timestamp, B + (i - 1) * 60)
    lu.assertEquals(d.Minimum, 2)
  end
  lu.assertEquals(stats(w, "AWS/AutoScaling", "GroupMaxSize", dims, B, B + 300)[1].Maximum, 4)
  lu.assertEquals(stats(w, "AWS/AutoScaling", "GroupPendingInstances", dims, B, B + 300)[1].Maximum, 0)
  alarm(w, "in-service", { Namespace = "AWS/AutoScaling", MetricName = "GroupInServiceInstances",
    Dimensions = dims, TreatMissingData = "breaching" })
  w.sim:advance(60)
  lu.assertEquals(state(w, "in-service"), "OK")
end

function TestMetricsPlane.test_group_metrics_not_published_while_collection_is_disabled()
  local w = world()
  w.sim:advance(300)
  lu.assertEquals(listed(w, "AWS/AutoScaling"), {})
  local dims = { { Name = "AutoScalingGroupName", Value = w.asg } }
  alarm(w, "missing", { Namespace = "AWS/AutoScaling", MetricName = "GroupInServiceInstances",
    Dimensions = dims })
  alarm(w, "breaching", { Namespace = "AWS/AutoScaling", MetricName = "GroupInServiceInstances",
    Dimensions = dims, TreatMissingData = "breaching" })
  w.sim:advance(180)
  lu.assertEquals(state(w, "missing"), "INSUFFICIENT_DATA")
  lu.assertEquals(state(w, "breaching"), "ALARM")
  -- EC2 publishes its instance metrics whatever Auto Scaling collects
  lu.assertEquals(listed(w, "AWS/EC2"), { "CPUUtilization AutoScalingGroupName",
    "CPUUtilization InstanceId", "CPUUtilization InstanceId" })
end

function TestMetricsPlane.test_partial_collection_publishes_only_the_metrics_enabled_and_disable_stops_them()
  local w = world{ metrics = { "GroupInServiceInstances", "GroupDesiredCapacity" } }
  w.sim:advance(120)
  lu.assertEquals(listed(w, "AWS/AutoScaling"), { "GroupDesiredCapacity AutoScalingGroupName",
    "GroupInServiceInstances AutoScalingGroupName" })
  local dims = { { Name = "AutoScalingGroupName", Value = w.asg } }
  w.as:DisableMetricsCollection{ AutoScalingGroupName = w.asg, Metrics = { "GroupDesiredCapacity" } }
  w.sim:advance(120)
  lu.assertEquals(#stats(w, "AWS/AutoScaling", "GroupInServiceInstances", dims, B + 120, B + 240), 2)
  lu.assertEquals(#stats(w, "AWS/AutoScaling", "GroupDesiredCapacity", dims, B + 120, B + 240), 0)
  w.as:DisableMetricsCollection{ AutoScalingGroupName = w.asg }
  alarm(w, "in-service", { Namespace = "AWS/AutoScaling", MetricName = "GroupInServiceInstances",
    Dimensions = dims })
  w.sim:advance(240)
  lu.assertEquals(#stats(w, "AWS/AutoScaling", "GroupInServiceInstances", dims, B + 240, B + 480), 0)
  lu.assertEquals(state(w, "in-service"), "INSUFFICIENT_DATA")
end

function TestMetricsPlane.test_an_alarm_on_a_dimension_set_aws_does_not_publish_gets_no_data()
  local w = world{ metrics = true }
  alarm(w, "wrong-dim", { Namespace = "AWS/AutoScaling", MetricName = "GroupInServiceInstances",
    Dimensions = { { Name = "AutoScalingGroup", Value = w.asg } } })
  alarm(w, "wrong-dim-breaching", { Namespace = "AWS/AutoScaling",
    MetricName = "GroupInServiceInstances", TreatMissingData = "breaching",
    Dimensions = { { Name = "AutoScalingGroup", Value = w.asg } } })
  local unhealthy = { Namespace = "AWS/ApplicationELB", MetricName = "UnHealthyHostCount",
    Statistic = "Maximum", EvaluationPeriods = 2, DatapointsToAlarm = 2, Threshold = 0,
    ComparisonOperator = "GreaterThanThreshold" }
  local function with(t, extra)
    local o = {}
    for k, v in pairs(t) do o[k] = v end
    for k, v in pairs(extra) do o[k] = v end
    return o
  end
  alarm(w, "lb-only", with(unhealthy, { Dimensions = { { Name = "LoadBalancer", Value = w.lb_dim } } }))
  alarm(w, "lb-and-tg", with(unhealthy, { Dimensions = { { Name = "LoadBalancer", Value = w.lb_dim },
    { Name = "TargetGroup", Value = w.tg_dim } } }))
  w.sim:advance(300)
  lu.assertEquals(state(w, "wrong-dim"), "INSUFFICIENT_DATA")
  lu.assertEquals(state(w, "wrong-dim-breaching"), "ALARM")
  lu.assertEquals(state(w, "lb-only"), "INSUFFICIENT_DATA")
  lu.assertEquals(state(w, "lb-and-tg"), "OK")
end

function TestMetricsPlane.test_alb_host_counts_per_target_group_and_per_zone_and_no_request_metrics_without_traffic()
  local w = world()
  w.sim:advance(180)
  lu.assertEquals(listed(w, "AWS/ApplicationELB"), {
    "HealthyHostCount AvailabilityZone+LoadBalancer+TargetGroup",
    "HealthyHostCount AvailabilityZone+LoadBalancer+TargetGroup",
    "HealthyHostCount LoadBalancer+TargetGroup",
    "UnHealthyHostCount AvailabilityZone+LoadBalancer+TargetGroup",
    "UnHealthyHostCount AvailabilityZone+LoadBalancer+TargetGroup",
    "UnHealthyHostCount LoadBalancer+TargetGroup" })
  local base = { { Name = "LoadBalancer", Value = w.lb_dim }, { Name = "TargetGroup", Value = w.tg_dim } }
  local pts = stats(w, "AWS/ApplicationELB", "HealthyHostCount", base, B, B + 180)
  lu.assertEquals(#pts, 3)
  lu.assertEquals(pts[3].Minimum, 2)
  lu.assertEquals(pts[3].Unit, "Count")
  -- the group spreads its two instances over the two zones: one healthy host in each
  local zones = w.sim:invoke("ec2", R, "DescribeAvailabilityZones", {}).AvailabilityZones
  for i = 1, 2 do
    local dims = { base[1], base[2], { Name = "AvailabilityZone", Value = zones[i].ZoneName } }
    lu.assertEquals(stats(w, "AWS/ApplicationELB", "HealthyHostCount", dims, B + 120, B + 180)[1].Minimum, 1)
  end
  -- an outage: the targets fail the ALB's checks and UnHealthyHostCount says so (read
  -- once the region answers again)
  w.sim:set_outage(R)
  w.sim:advance(120)
  w.sim:set_outage(R, false)
  local un = stats(w, "AWS/ApplicationELB", "UnHealthyHostCount", base, B + 180, B + 300)
  lu.assertEquals(un[#un].Maximum, 2)
  lu.assertEquals(listed(w, "AWS/ApplicationELB", { MetricName = "RequestCount" }), {})
end

function TestMetricsPlane.test_a_region_that_had_nothing_to_publish_for_a_while_does_not_replay_the_idle_minutes()
  local w = world()
  w.sim:advance(120)
  w.sim:invoke("autoscaling", R, "DeleteAutoScalingGroup", { AutoScalingGroupName = w.asg,
    ForceDelete = true })
  w.sim:invoke("elbv2", R, "DeleteLoadBalancer", { LoadBalancerArn = w.lb_arn })
  w.sim:advance(600)
  local t0 = w.sim:now()
  local subnets = {}
  -- the world's subnets (not the default VPC's)
  for _, sn in ipairs(w.sim:invoke("ec2", R, "DescribeSubnets", { Filters = {
    { Name = "default-for-az", Values = { "false" } } } }).Subnets) do
    subnets[#subnets + 1] = sn.SubnetId
  end
  w.sim:invoke("autoscaling", R, "CreateAutoScalingGroup", { AutoScalingGroupName = "later",
    MinSize = 1, MaxSize = 1, LaunchTemplate = { LaunchTemplateName = "lt-" .. R },
    VPCZoneIdentifier = table.concat(subnets, ",") })
  w.sim:advance(180)
  local pts = w.cw:GetMetricStatistics{ Namespace = "AWS/EC2", MetricName = "CPUUtilization",
    Dimensions = { { Name = "AutoScalingGroupName", Value = "later" } }, StartTime = B,
    EndTime = t0 + 180, Period = 60, Statistics = { "SampleCount" } }.Datapoints
  table.sort(pts, function(a, b) return a.Timestamp < b.Timestamp end)
  lu.assertEquals(#pts, 3)
  lu.assertTrue(pts[1].Timestamp >= t0, "nothing stamped before the group existed")
  for _, d in ipairs(pts) do lu.assertEquals(d.SampleCount, 1, "one sample a minute, no replay") end
end

function TestMetricsPlane.test_list_metrics_filters_by_dimension_name_and_value()
  local w = world{ metrics = true }
  w.sim:advance(120)
  lu.assertEquals(listed(w, "AWS/EC2", { Dimensions = { { Name = "AutoScalingGroupName" } } }),
    { "CPUUtilization AutoScalingGroupName" })
  local m = w.cw:ListMetrics{ Namespace = "AWS/EC2", Dimensions = { { Name = "InstanceId" } } }.Metrics
  lu.assertEquals(#m, 2)
  local one = w.cw:ListMetrics{ Dimensions = { { Name = "InstanceId", Value = m[1].Dimensions[1].Value } } }.Metrics
  lu.assertEquals(#one, 1)
  lu.assertEquals(one[1].Namespace, "AWS/EC2")
  lu.assertEquals(#w.cw:ListMetrics{ MetricName = "GroupMinSize" }.Metrics, 1)
end

function TestMetricsPlane.test_put_metric_data_custom_metrics_and_get_metric_data()
  local w = world()
  local dims = { { Name = "Service", Value = "orders" } }
  w.cw:PutMetricData{ Namespace = "Trading/App", MetricData = {
    { MetricName = "Latency", Dimensions = dims, Value = 12, Unit = "Milliseconds" },
    { MetricName = "Latency", Dimensions = dims, Values = { 10, 20 }, Counts = { 1, 2 } } } }
  lu.assertEquals(listed(w, "Trading/App"), { "Latency Service" })
  local d = w.cw:GetMetricStatistics{ Namespace = "Trading/App", MetricName = "Latency",
    Dimensions = dims, StartTime = B - 60, EndTime = B + 60, Period = 60,
    Statistics = { "SampleCount", "Sum", "Maximum" } }.Datapoints
  lu.assertEquals(#d, 1)
  lu.assertEquals(d[1].SampleCount, 4)
  lu.assertEquals(d[1].Sum, 62)
  lu.assertEquals(d[1].Unit, "Milliseconds")
  local r = w.cw:GetMetricData{ StartTime = B - 60, EndTime = B + 60, MetricDataQueries = {
    { Id = "m", MetricStat = { Metric = { Namespace = "Trading/App", MetricName = "Latency",
      Dimensions = dims }, Period = 60, Stat = "Average" } } } }.MetricDataResults[1]
  lu.assertEquals(r.Values, { 15.5 })
  local ok, e = pcall(w.cw.PutMetricData, w.cw, { Namespace = "AWS/EC2",
    MetricData = { { MetricName = "CPUUtilization", Value = 1 } } })
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(e), tostring(e))
  lu.assertEquals(e.code, "InvalidParameterValue")
  ok, e = pcall(w.cw.GetMetricStatistics, w.cw, { Namespace = "Trading/App", MetricName = "Latency",
    StartTime = B, EndTime = B + 60, Period = 60 })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "MissingParameter")
end

-- Route 53's checkers are clients of the load balancer: each HTTP evaluation is one request
-- from each of the 8 checker regions, and the ALB publishes its request metrics for the
-- minutes with requests, with AWS's dimension sets.
local function health_check(w, path)
  return w.sim:invoke("route53", nil, "CreateHealthCheck", { CallerReference = "hc-" .. path,
    HealthCheckConfig = { Type = "HTTP", FullyQualifiedDomainName = w.sim:invoke("elbv2", R,
      "DescribeLoadBalancers", { LoadBalancerArns = { w.lb_arn } }).LoadBalancers[1].DNSName,
      Port = 80, ResourcePath = path, RequestInterval = 10, FailureThreshold = 3 } }).HealthCheck.Id
end

local function sum(w, name, dims, from, to)
  local d = w.cw:GetMetricStatistics{ Namespace = "AWS/ApplicationELB", MetricName = name,
    Dimensions = dims, StartTime = from, EndTime = to, Period = to - from,
    Statistics = { "Sum", "SampleCount", "Average" } }.Datapoints
  return d[1] and d[1].Sum or 0, d[1]
end

function TestMetricsPlane.test_route53_checkers_requests_give_the_alb_request_metrics()
  local w = world()
  w.sim:advance(5) -- the load balancer is active
  health_check(w, "/health") -- evaluations at B+5, B+15, …
  w.sim:advance(175)
  local lb = { { Name = "LoadBalancer", Value = w.lb_dim } }
  local by_tg = { { Name = "LoadBalancer", Value = w.lb_dim }, { Name = "TargetGroup", Value = w.tg_dim } }
  local names = {}
  for _, m in ipairs(listed(w, "AWS/ApplicationELB")) do
    if not m:find("HostCount", 1, true) then names[#names + 1] = m end
  end
  lu.assertEquals(names, {
    "HTTPCode_Target_2XX_Count AvailabilityZone+LoadBalancer",
    "HTTPCode_Target_2XX_Count AvailabilityZone+LoadBalancer",
    "HTTPCode_Target_2XX_Count AvailabilityZone+LoadBalancer+TargetGroup",
    "HTTPCode_Target_2XX_Count AvailabilityZone+LoadBalancer+TargetGroup",
    "HTTPCode_Target_2XX_Count LoadBalancer",
    "HTTPCode_Target_2XX_Count LoadBalancer+TargetGroup",
    "RequestCount AvailabilityZone+LoadBalancer",
    "RequestCount AvailabilityZone+LoadBalancer",
    "RequestCount AvailabilityZone+LoadBalancer+TargetGroup",
    "RequestCount AvailabilityZone+LoadBalancer+TargetGroup",
    "RequestCount LoadBalancer",
    "RequestCount LoadBalancer+TargetGroup",
    "TargetResponseTime AvailabilityZone+LoadBalancer",
    "TargetResponseTime AvailabilityZone+LoadBalancer",
    "TargetResponseTime AvailabilityZone+LoadBalancer+TargetGroup",
    "TargetResponseTime AvailabilityZone+LoadBalancer+TargetGroup",
    "TargetResponseTime LoadBalancer",
    "TargetResponseTime LoadBalancer+TargetGroup" })
  -- a whole minute: 6 evaluations × 8 checkers, half through each zone's node
  lu.assertEquals(sum(w, "RequestCount", lb, B + 60, B + 120), 48)
  lu.assertEquals(sum(w, "RequestCount", by_tg, B + 60, B + 120), 48)
  local zone = w.sim:invoke("ec2", R, "DescribeAvailabilityZones", {}).AvailabilityZones[1].ZoneName
  lu.assertEquals(sum(w, "RequestCount", { lb[1], { Name = "AvailabilityZone", Value = zone } },
    B + 60, B + 120), 24)
  local _, rt = sum(w, "TargetResponseTime", lb, B + 60, B + 120)
  lu.assertEquals(rt.SampleCount, 48)
  lu.assertEquals(rt.Unit, "Seconds")
  lu.assertTrue(rt.Average > 0 and rt.Average < 0.1)
  lu.assertEquals(listed(w, "AWS/ApplicationELB", { MetricName = "HTTPCode_ELB_5XX_Count" }), {})
  -- the health check's status metric goes to us-east-1 only
  lu.assertEquals(listed(w, "AWS/Route53"), {})
  local east = w.sim:client("cloudwatch", { region = "us-east-1", max_attempts = 1 })
  lu.assertEquals(#east:ListMetrics{ Namespace = "AWS/Route53", MetricName = "HealthCheckStatus" }.Metrics, 1)
end

function TestMetricsPlane.test_the_albs_own_5xx_answers_and_the_recipes_5xx_alarm()
  local w = world()
  w.sim:advance(5)
  -- the trading recipe's alarm: more than 10 of the ALB's own 5xx in a minute
  alarm(w, "alb-5xx", { Namespace = "AWS/ApplicationELB", MetricName = "HTTPCode_ELB_5XX_Count",
    Statistic = "Sum", EvaluationPeriods = 1, DatapointsToAlarm = 1, Threshold = 10,
    ComparisonOperator = "GreaterThanThreshold", TreatMissingData = "notBreaching",
    Dimensions = { { Name = "LoadBalancer", Value = w.lb_dim } } })
  health_check(w, "/health")
  w.sim:advance(115)
  lu.assertEquals(state(w, "alb-5xx"), "OK")
  -- a listener rule answers the check's path with a fixed 503 from B+120 on
  local l = w.sim:invoke("elbv2", R, "DescribeListeners", { LoadBalancerArn = w.lb_arn }).Listeners[1]
  w.sim:invoke("elbv2", R, "CreateRule", { ListenerArn = l.ListenerArn, Priority = 1,
    Conditions = { { Field = "path-pattern", Values = { "/health" } } },
    Actions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "503" } } } })
  w.sim:advance(65)
  local lb = { { Name = "LoadBalancer", Value = w.lb_dim } }
  lu.assertEquals(sum(w, "HTTPCode_ELB_5XX_Count", lb, B + 120, B + 180), 48)
  lu.assertEquals(sum(w, "HTTPCode_ELB_503_Count", lb, B + 120, B + 180), 48)
  lu.assertEquals(sum(w, "RequestCount", lb, B + 120, B + 180), 48)
  lu.assertEquals(sum(w, "HTTPCode_Target_2XX_Count", lb, B + 120, B + 180), 0)
  -- the load balancer's own answers carry no TargetGroup dimension
  lu.assertEquals(listed(w, "AWS/ApplicationELB", { MetricName = "HTTPCode_ELB_5XX_Count" }),
    { "HTTPCode_ELB_5XX_Count AvailabilityZone+LoadBalancer",
      "HTTPCode_ELB_5XX_Count AvailabilityZone+LoadBalancer", "HTTPCode_ELB_5XX_Count LoadBalancer" })
  lu.assertEquals(state(w, "alb-5xx"), "ALARM")
end

function TestMetricsPlane.test_no_registered_target_503s_are_not_requests()
  local w = world()
  w.sim:invoke("autoscaling", R, "UpdateAutoScalingGroup", { AutoScalingGroupName = w.asg,
    MinSize = 0, DesiredCapacity = 0 })
  w.sim:advance(5)
  health_check(w, "/health")
  w.sim:advance(175)
  local lb = { { Name = "LoadBalancer", Value = w.lb_dim } }
  lu.assertEquals(sum(w, "HTTPCode_ELB_503_Count", lb, B + 60, B + 120), 48)
  lu.assertEquals(listed(w, "AWS/ApplicationELB", { MetricName = "RequestCount" }), {})
end

-- MetricData is optional in botocore 1.43's model (EntityMetricData may carry the data
-- instead), so the current AWS CLI sends `put-metric-data --namespace X` as it is: AWS's
-- MissingParameter, not a handler crash (500); entity data alone is accepted (not kept).
function TestMetricsPlane.test_put_metric_data_without_metric_data()
  local w = world()
  local inputs = { { Namespace = "Trading/App" }, { Namespace = "Trading/App", MetricData = {} } }
  for _, p in ipairs(inputs) do
    local ok, e = pcall(w.cw.PutMetricData, w.cw, p)
    lu.assertFalse(ok)
    lu.assertTrue(aws.Error.is(e), tostring(e))
    lu.assertEquals(e.code, "MissingParameter")
    lu.assertEquals(e.message, "The parameter MetricData is required.")
  end
  w.cw:PutMetricData{ Namespace = "Trading/App", EntityMetricData = { { Entity = {
    KeyAttributes = { Type = "Service", Name = "api", Environment = "prod" } },
    MetricData = { { MetricName = "Latency", Value = 1 } } } } }
end

os.exit(lu.LuaUnit.run())
