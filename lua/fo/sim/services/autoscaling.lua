-- Auto Scaling handlers: groups that "run" their desired capacity as simulated instances
-- (spread over their subnets' AZs), scaling activities, target tracking policies, group
-- metrics and tags, with Auto Scaling's validation and error texts.
--
-- The db (ctx.db = ctx:db_of("autoscaling", region)), read by ELBv2 (target health) and
-- EC2 (DescribeInstances). Transitions fall due with time; a reader calls
-- require("fo.sim.asg_state").settle(db, ctx:now()) first to apply them.
--   groups[name] = { AutoScalingGroupName, AutoScalingGroupARN, MinSize, MaxSize,
--       DesiredCapacity, DefaultCooldown, LaunchTemplate = {LaunchTemplateId,
--       LaunchTemplateName, Version}, VPCZoneIdentifier = "subnet-a,subnet-b",
--       subnets = {ids}, AvailabilityZones, VpcId, TargetGroupARNs = {arns},
--       HealthCheckType, HealthCheckGracePeriod, CreatedTime,
--       Tags = {{Key, Value, PropagateAtLaunch}} (sorted by key),
--       enabled_metrics = {names}, seq, delete_at (set while "Delete in progress"),
--       Instances = { instance, ... } (launch order; Terminated ones stay listed for a
--         while, as EC2 shows terminated instances) }
--   instance = { InstanceId ("i-" + 17 hex), AutoScalingGroupName, AvailabilityZone,
--       SubnetId, VpcId, InstanceType, ImageId, LaunchTemplate = {LaunchTemplateId,
--       LaunchTemplateName, Version = the resolved number, as a string},
--       LifecycleState = "InService" | "Terminating" | "Terminated" (EC2 state: running,
--       shutting-down, terminated), HealthStatus = "Healthy" | "Unhealthy",
--       ProtectedFromScaleIn, LaunchTime, PrivateIpAddress, SecurityGroups = {ids},
--       IamInstanceProfile = {Arn=|Name=} | nil, InstanceTags = {{Key, Value}}
--       (propagated tags + aws:autoscaling:groupName), UserData = the launch template
--       version's base64 user data ("" for none), terminate_at / terminated_at }
--   retired[name#seq] = { AutoScalingGroupName, VPCZoneIdentifier, Tags, Instances }:
--       the terminated instances of deleted groups, until they are forgotten
--   policies[PolicyARN] = ScalingPolicy (output shape); a target tracking policy's Alarms
--       exist in the region's CloudWatch state (fo.sim.metrics), kept in step by sync_alarms
--   activities = { Activity (output shape) + group_deleted, oldest first }
local asg_state = require "fo.sim.asg_state"
local ec2 = require "fo.sim.ec2_lookup"
local metrics = require "fo.sim.metrics"
local records = require "fo.sim.records"

local M = {}

-- Limits and vocabularies ---------------------------------------------------------------

local MAX_TAGS = 50
local HEALTH_CHECK_TYPES = { EC2 = true, ELB = true, VPC_LATTICE = true, EBS = true }
local POLICY_TYPES = { SimpleScaling = true, StepScaling = true, TargetTrackingScaling = true,
  PredictiveScaling = true }
local ADJUSTMENT_TYPES = { ChangeInCapacity = true, ExactCapacity = true,
  PercentChangeInCapacity = true }
-- EnableMetricsCollection's metrics, in the order AWS documents them (all of them when
-- the request names none).
local METRICS = { "GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity",
  "GroupInServiceInstances", "GroupPendingInstances", "GroupStandbyInstances",
  "GroupTerminatingInstances", "GroupTotalInstances", "GroupInServiceCapacity",
  "GroupPendingCapacity", "GroupStandbyCapacity", "GroupTerminatingCapacity",
  "GroupTotalCapacity", "WarmPoolDesiredCapacity", "WarmPoolWarmedCapacity",
  "WarmPoolPendingCapacity", "WarmPoolTerminatingCapacity", "WarmPoolTotalCapacity",
  "GroupAndWarmPoolDesiredCapacity", "GroupAndWarmPoolTotalCapacity" }
local METRIC_SET = {}
for _, m in ipairs(METRICS) do METRIC_SET[m] = true end

-- Helpers -----------------------------------------------------------------------------

local function invalid(ctx, message) ctx:fail("ValidationError", message) end

local copy = records.copy

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

-- A UUID from the sim's id stream (Auto Scaling ARNs and activity ids carry one).
local function uuid(ctx)
  local h = ctx:id(nil, 32)
  return ("%s-%s-%s-%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20),
    h:sub(21, 32))
end

local next_seq = records.next_seq

-- The db with its tables, after applying the transitions due now.
local function state(ctx)
  local db = ctx.db
  db.groups = db.groups or {}
  db.policies = db.policies or {}
  db.activities = db.activities or {}
  asg_state.settle(db, ctx:now(), asg_state.timing(ctx, "terminated_visible"))
  return db
end

-- AWS's text for a group it does not know (UpdateAutoScalingGroup and friends).
local function not_found(ctx, name)
  invalid(ctx, ("AutoScalingGroup name not found - AutoScalingGroup '%s' not found"):format(name))
end

-- The group `name`, or ValidationError; a group being deleted refuses changes as AWS does.
local function group_of(ctx, db, name, for_change)
  local g = db.groups[name]
  if not g then not_found(ctx, name) end
  if for_change and g.delete_at then
    ctx:fail("ScalingActivityInProgress", ("AutoScalingGroup %s is pending delete."):format(name))
  end
  return g
end

-- Paging over `items` with an opaque token (an index; AWS's tokens are opaque strings):
-- MaxRecords defaults to `default` and may not exceed `limit`.
local function page(ctx, items, token, max, default, limit)
  max = max or default
  if max < 1 or max > limit then
    invalid(ctx, ("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy "
      .. "constraint: Member must have value less than or equal to %d"):format(max, limit))
  end
  local out, next_token = records.page(items, token, "tok-", max)
  if not out then ctx:fail("InvalidNextToken", "The token '" .. token .. "' is invalid.") end
  return out, next_token
end

-- Launch template --------------------------------------------------------------------

-- AWS validates the launch template with a dry run of RunInstances and wraps EC2's
-- complaint in this prefix.
local LT_PREFIX = "You must use a valid fully-formed launch template. "

-- Raises the error EC2 gives for launch template data naming an instance profile that
-- does not exist or is too new to be used: IAM is eventually consistent, and AWS refuses
-- a profile used seconds after its creation (or after getting its role) with "Invalid
-- IAM Instance Profile name". Reads lua/fo/sim/services/iam.lua's state:
-- instance_profiles[<lower-case name>] = {InstanceProfileName, Arn, created_at,
-- role_added_at, ...}.
local function check_instance_profile(ctx, data)
  local p = data.IamInstanceProfile
  if type(p) ~= "table" or (p.Name == nil and p.Arn == nil) then return end
  local name = p.Name or tostring(p.Arn):match(":instance%-profile/(.+)$") or p.Arn
  name = name:match("([^/]+)$") or name
  local profiles = ctx:db_of("iam").instance_profiles
  local prof = type(profiles) == "table" and profiles[name:lower()] or nil
  if prof and p.Arn and prof.Arn ~= p.Arn then prof = nil end
  local since = prof and math.max(prof.created_at or 0, prof.role_added_at or 0)
  if prof == nil or ctx:now() - since < asg_state.timing(ctx, "profile_propagation") then
    invalid(ctx, LT_PREFIX .. ("Value (%s) for parameter iamInstanceProfile.name is invalid. "
      .. "Invalid IAM Instance Profile name"):format(p.Name or p.Arn))
  end
end

-- Resolves spec = {LaunchTemplateId | LaunchTemplateName, Version} against EC2's launch
-- templates: returns the group's stored spec (both id and name filled in, as AWS
-- answers) and the version's data.
local function resolve_template(ctx, spec)
  if spec.LaunchTemplateId and spec.LaunchTemplateName then
    invalid(ctx, LT_PREFIX .. "Specify either a launch template ID or a launch template name, "
      .. "but not both.")
  end
  if not spec.LaunchTemplateId and not spec.LaunchTemplateName then
    invalid(ctx, LT_PREFIX .. "A launch template ID or a launch template name must be specified.")
  end
  local lt = ec2.launch_template(ctx, spec.LaunchTemplateId, spec.LaunchTemplateName)
  -- a template EC2 created a moment ago (knob consistency_ms) is not seen yet, as on AWS
  if lt and ctx:fresh(lt) then lt = nil end
  if not lt then
    if spec.LaunchTemplateId then
      invalid(ctx, LT_PREFIX .. ("The specified launch template, with template ID %s, does not "
        .. "exist."):format(spec.LaunchTemplateId))
    end
    invalid(ctx, LT_PREFIX .. ("The specified launch template, with template name %s, does not "
      .. "exist."):format(spec.LaunchTemplateName))
  end
  local version, n = ec2.launch_template_version(lt, spec.Version)
  if not version then
    invalid(ctx, LT_PREFIX .. ("The specified launch template version '%s' for launch template "
      .. "%s does not exist."):format(tostring(spec.Version), lt.LaunchTemplateId))
  end
  local data = version.LaunchTemplateData or {}
  check_instance_profile(ctx, data)
  return { LaunchTemplateId = lt.LaunchTemplateId, LaunchTemplateName = lt.LaunchTemplateName,
    Version = spec.Version or "$Default" }, data, n
end

-- Subnets and capacity ----------------------------------------------------------------

-- The subnets of a VPCZoneIdentifier ("subnet-a,subnet-b"): ids, their AZs (distinct, in
-- order) and their VPC. Raises ValidationError for unknown subnets or mixed VPCs.
local function resolve_subnets(ctx, vzi)
  local ids, azs, seen, vpc = {}, {}, {}, nil
  for id in vzi:gmatch("[^,%s]+") do
    local s = ec2.subnet(ctx, id)
    if not s then invalid(ctx, ("The subnet ID '%s' does not exist"):format(id)) end
    if vpc and s.VpcId ~= vpc then
      invalid(ctx, "The subnets in the VPCZoneIdentifier must all belong to the same VPC.")
    end
    vpc = s.VpcId
    ids[#ids + 1] = id
    if not seen[s.AvailabilityZone] then
      seen[s.AvailabilityZone] = true
      azs[#azs + 1] = s.AvailabilityZone
    end
  end
  if #ids == 0 then invalid(ctx, "At least one Availability Zone or VPC Subnet is required.") end
  return ids, azs, vpc
end

-- Checks Min <= Desired <= Max with AWS's texts.
local function check_sizes(ctx, min, max, desired)
  if min < 0 then invalid(ctx, ("MinSize must be greater than or equal to 0, got %d"):format(min)) end
  if max < min then
    invalid(ctx, ("Max bound, %d, must be greater than or equal to min bound, %d"):format(max, min))
  end
  if desired < min or desired > max then
    invalid(ctx, ("Desired capacity:%d must be between the specified min size:%d and max size:%d")
      :format(desired, min, max))
  end
end

-- Target groups must exist in ELBv2 in this region, in the group's VPC.
local function check_target_groups(ctx, arns, vpc)
  local elb = ctx:db_of("elbv2")
  for _, arn in ipairs(arns or {}) do
    local tg = (elb.target_groups or {})[arn]
    if not tg then
      invalid(ctx, "Provided Target Groups may not be valid. Please ensure they exist and try again.")
    end
    if vpc and tg.desc.VpcId and tg.desc.VpcId ~= vpc then
      invalid(ctx, ("The target group %s is not in the same VPC as the Auto Scaling group's "
        .. "subnets."):format(arn))
    end
  end
end

-- A private address in the subnet's CIDR (AWS reserves the first four of each subnet).
local function private_ip(ctx, db, subnet_id)
  local s = ec2.subnet(ctx, subnet_id)
  local a, b, c, d = tostring(s and s.CidrBlock or "10.0.0.0/24"):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)")
  db.ip_counter = (db.ip_counter or 0) + 1
  local n = ((tonumber(a) << 24) | (tonumber(b) << 16) | (tonumber(c) << 8) | tonumber(d))
    + 3 + db.ip_counter
  return ("%d.%d.%d.%d"):format((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- Activities --------------------------------------------------------------------------

local function record_activity(ctx, db, g, a)
  local now = ctx:now()
  a.ActivityId = uuid(ctx)
  a.AutoScalingGroupName = g.AutoScalingGroupName
  a.AutoScalingGroupARN = g.AutoScalingGroupARN
  a.StartTime = now
  a.EndTime = now
  a.StatusCode = a.StatusCode or "Successful"
  a.Progress = 100
  db.activities[#db.activities + 1] = a
end

-- The subnet for the next instance: the group's AZ with fewest members (AWS balances
-- capacity across AZs), first subnet listed for that AZ.
local function pick_subnet(ctx, g, members)
  local count = {}
  for _, az in ipairs(g.AvailabilityZones) do count[az] = 0 end
  for _, i in ipairs(members) do
    if i.LifecycleState == "InService" then
      count[i.AvailabilityZone] = (count[i.AvailabilityZone] or 0) + 1
    end
  end
  local best
  for _, az in ipairs(g.AvailabilityZones) do
    if best == nil or count[az] < count[best] then best = az end
  end
  for _, id in ipairs(g.subnets) do
    local s = ec2.subnet(ctx, id)
    if s and s.AvailabilityZone == best then return s end
  end
  return ec2.subnet(ctx, g.subnets[1])
end

local function launch(ctx, db, g, data, version_n, cause)
  local members = asg_state.members(db, g.AutoScalingGroupName)
  local subnet = pick_subnet(ctx, g, members)
  local id = ctx:id("i")
  local tags = {}
  for _, t in ipairs(g.Tags) do
    if t.PropagateAtLaunch then tags[#tags + 1] = { Key = t.Key, Value = t.Value } end
  end
  -- AWS tags every instance it launches with its group's name
  tags[#tags + 1] = { Key = "aws:autoscaling:groupName", Value = g.AutoScalingGroupName }
  local sgs = copy(data.SecurityGroupIds or {})
  for _, ni in ipairs(data.NetworkInterfaces or {}) do
    for _, sg in ipairs(ni.Groups or {}) do sgs[#sgs + 1] = sg end
  end
  local inst = {
    InstanceId = id, AutoScalingGroupName = g.AutoScalingGroupName,
    AvailabilityZone = subnet.AvailabilityZone, SubnetId = subnet.SubnetId, VpcId = subnet.VpcId,
    InstanceType = data.InstanceType or "t3.micro", ImageId = data.ImageId,
    LaunchTemplate = { LaunchTemplateId = g.LaunchTemplate.LaunchTemplateId,
      LaunchTemplateName = g.LaunchTemplate.LaunchTemplateName, Version = tostring(version_n) },
    LifecycleState = "InService", HealthStatus = "Healthy",
    ProtectedFromScaleIn = g.NewInstancesProtectedFromScaleIn or false,
    LaunchTime = ctx:now(), PrivateIpAddress = private_ip(ctx, db, subnet.SubnetId),
    SecurityGroups = sgs, IamInstanceProfile = copy(data.IamInstanceProfile),
    InstanceTags = tags,
    -- what the instance runs at boot is fixed at launch (ELBv2's target health reads it)
    UserData = data.UserData or "",
  }
  table.insert(g.Instances, inst)
  record_activity(ctx, db, g, {
    Description = "Launching a new EC2 instance: " .. id,
    Cause = cause .. ("  At %s an instance was started in response to a difference between "
      .. "desired and actual capacity, increasing the capacity from %d to %d.")
      :format(iso(ctx:now()), #members, #members + 1),
    Details = ('{"Subnet ID":"%s","Availability Zone":"%s"}'):format(subnet.SubnetId,
      subnet.AvailabilityZone),
  })
  return inst
end

-- Starts terminating `inst` (it leaves the group after the termination window).
local function terminate(ctx, db, g, inst, cause, from, to)
  inst.LifecycleState = "Terminating"
  inst.terminate_at = ctx:now() + asg_state.timing(ctx, "instance_terminate")
  record_activity(ctx, db, g, {
    Description = "Terminating EC2 instance: " .. inst.InstanceId,
    Cause = cause .. ("  At %s an instance was taken out of service in response to a difference "
      .. "between desired and actual capacity, shrinking the capacity from %d to %d.  At %s "
      .. "instance %s was selected for termination."):format(iso(ctx:now()), from, to,
      iso(ctx:now()), inst.InstanceId),
    Details = ('{"Subnet ID":"%s","Availability Zone":"%s"}'):format(inst.SubnetId,
      inst.AvailabilityZone),
  })
end

-- The instance the default termination policy picks: from the AZ with the most
-- instances, an unprotected one on the oldest launch, newest launched last.
local function pick_victim(members)
  local count = {}
  for _, i in ipairs(members) do count[i.AvailabilityZone] = (count[i.AvailabilityZone] or 0) + 1 end
  local best
  for _, i in ipairs(members) do
    if not i.ProtectedFromScaleIn then
      if best == nil or count[i.AvailabilityZone] > count[best.AvailabilityZone] then best = i end
    end
  end
  return best
end

-- Brings the group's in-service instances to its DesiredCapacity.
local function reconcile(ctx, db, g, cause)
  local in_service = {}
  for _, i in ipairs(asg_state.members(db, g.AutoScalingGroupName)) do
    if i.LifecycleState == "InService" then in_service[#in_service + 1] = i end
  end
  local have = #in_service
  if have < g.DesiredCapacity then
    local _, data, n = resolve_template(ctx, { LaunchTemplateId = g.LaunchTemplate.LaunchTemplateId,
      Version = g.LaunchTemplate.Version })
    for _ = have + 1, g.DesiredCapacity do launch(ctx, db, g, data, n, cause) end
  else
    while have > g.DesiredCapacity do
      local victim = pick_victim(in_service)
      if not victim then break end
      for k, i in ipairs(in_service) do if i == victim then table.remove(in_service, k) break end end
      terminate(ctx, db, g, victim, cause, have, have - 1)
      have = have - 1
    end
  end
end

--- EC2's TerminateInstances of member `inst` of group `g` (db: this region's Auto Scaling
--- db): the instance starts terminating and, the group's capacity being short, the
--- group launches its replacement (AWS's EC2 health check notices the termination).
function M.instance_terminated(ctx, db, g, inst)
  local at = iso(ctx:now())
  inst.LifecycleState = "Terminating"
  inst.HealthStatus = "Unhealthy"
  inst.terminate_at = ctx:now() + asg_state.timing(ctx, "instance_terminate")
  record_activity(ctx, db, g, {
    Description = "Terminating EC2 instance: " .. inst.InstanceId,
    Cause = ("At %s an instance was taken out of service in response to an EC2 health check "
      .. "indicating it has been terminated or stopped."):format(at),
    Details = ('{"Subnet ID":"%s","Availability Zone":"%s"}'):format(inst.SubnetId,
      inst.AvailabilityZone),
  })
  if not g.delete_at then
    reconcile(ctx, db, g, ("At %s an instance was taken out of service in response to an EC2 "
      .. "health check indicating it has been terminated or stopped."):format(at))
  end
end

-- Output ------------------------------------------------------------------------------

local function tag_descriptions(g)
  local out = {}
  for _, t in ipairs(g.Tags) do
    out[#out + 1] = { ResourceId = g.AutoScalingGroupName, ResourceType = "auto-scaling-group",
      Key = t.Key, Value = t.Value, PropagateAtLaunch = t.PropagateAtLaunch }
  end
  return out
end

local function instance_view(i)
  return { InstanceId = i.InstanceId, InstanceType = i.InstanceType,
    AvailabilityZone = i.AvailabilityZone, LifecycleState = i.LifecycleState,
    HealthStatus = i.HealthStatus, LaunchTemplate = copy(i.LaunchTemplate),
    ProtectedFromScaleIn = i.ProtectedFromScaleIn }
end

-- Group fields copied as they are into the output.
local PLAIN = { "AutoScalingGroupName", "AutoScalingGroupARN", "MinSize", "MaxSize",
  "DesiredCapacity", "DefaultCooldown", "HealthCheckType", "HealthCheckGracePeriod",
  "CreatedTime", "VPCZoneIdentifier", "NewInstancesProtectedFromScaleIn",
  "ServiceLinkedRoleARN", "CapacityRebalance", "MaxInstanceLifetime", "DefaultInstanceWarmup",
  "Context", "DesiredCapacityType", "PlacementGroup" }

local function group_view(db, g)
  local out = {}
  for _, k in ipairs(PLAIN) do out[k] = g[k] end
  out.LaunchTemplate = copy(g.LaunchTemplate)
  out.AvailabilityZones = copy(g.AvailabilityZones)
  out.LoadBalancerNames = {}
  out.TargetGroupARNs = copy(g.TargetGroupARNs)
  out.TerminationPolicies = copy(g.TerminationPolicies)
  out.SuspendedProcesses = {}
  out.Instances = {}
  for _, i in ipairs(asg_state.members(db, g.AutoScalingGroupName)) do
    out.Instances[#out.Instances + 1] = instance_view(i)
  end
  out.EnabledMetrics = {}
  for _, m in ipairs(g.enabled_metrics) do
    out.EnabledMetrics[#out.EnabledMetrics + 1] = { Metric = m, Granularity = "1Minute" }
  end
  out.Tags = tag_descriptions(g)
  out.TrafficSources = {}
  for _, arn in ipairs(g.TargetGroupARNs) do out.TrafficSources[#out.TrafficSources + 1] = { Identifier = arn } end
  if g.delete_at then out.Status = "Delete in progress" end
  return out
end

-- Groups in creation order.
local function sorted_groups(db)
  local out = {}
  for _, g in pairs(db.groups) do out[#out + 1] = g end
  table.sort(out, function(a, b) return a.AutoScalingGroupName < b.AutoScalingGroupName end)
  return out
end

-- Tags --------------------------------------------------------------------------------

local function sort_tags(tags) table.sort(tags, function(a, b) return a.Key < b.Key end) end

-- Sets (or replaces) tags on the group; PropagateAtLaunch defaults to false.
local function put_tags(ctx, g, tags)
  for _, t in ipairs(tags) do
    local found = false
    for _, e in ipairs(g.Tags) do
      if e.Key == t.Key then
        e.Value, e.PropagateAtLaunch = t.Value or "", t.PropagateAtLaunch or false
        found = true
      end
    end
    if not found then
      g.Tags[#g.Tags + 1] = { Key = t.Key, Value = t.Value or "", PropagateAtLaunch = t.PropagateAtLaunch or false }
    end
  end
  if #g.Tags > MAX_TAGS then
    ctx:fail("LimitExceeded", ("The number of tags for %s exceeds the limit of %d.")
      :format(g.AutoScalingGroupName, MAX_TAGS))
  end
  sort_tags(g.Tags)
end

-- Checks one tag of a Tags parameter names the group (ResourceId) as a group.
local function check_tag_target(ctx, t, name)
  if t.ResourceType and t.ResourceType ~= "auto-scaling-group" then
    invalid(ctx, ("Invalid resource type '%s': only auto-scaling-group is supported.")
      :format(t.ResourceType))
  end
  if name and t.ResourceId and t.ResourceId ~= name then
    invalid(ctx, ("Tag ResourceId '%s' does not match the AutoScalingGroupName '%s'.")
      :format(t.ResourceId, name))
  end
  if t.Key:sub(1, 4) == "aws:" then
    invalid(ctx, ("Tag keys starting with 'aws:' are reserved for internal use: %s"):format(t.Key))
  end
end

-- Target tracking alarms --------------------------------------------------------------

-- The metric a predefined target tracking metric type stands for (what Auto Scaling's
-- alarms watch): namespace, name, statistic.
local PREDEFINED = {
  ASGAverageCPUUtilization = { "AWS/EC2", "CPUUtilization", "Average" },
  ASGAverageNetworkIn = { "AWS/EC2", "NetworkIn", "Average" },
  ASGAverageNetworkOut = { "AWS/EC2", "NetworkOut", "Average" },
  ALBRequestCountPerTarget = { "AWS/ApplicationELB", "RequestCountPerTarget", "Sum" },
}

-- PutMetricAlarm params of a tracking alarm, without its name: the metric of the policy's
-- configuration (predefined: the group's, or the target group's for
-- ALBRequestCountPerTarget; customized: as given, metric math included), 60 s periods, and
-- the policy as the only action. AlarmHigh breaches above the target for 3
-- minutes (scale out); AlarmLow below 90% of it for 15 (scale in, more cautiously).
local function tracking_alarm_params(group, pol, which)
  local ttc = pol.TargetTrackingConfiguration
  local high = which == "AlarmHigh"
  local p = { AlarmDescription = "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
      .. pol.PolicyARN .. ".",
    ActionsEnabled = true, AlarmActions = { pol.PolicyARN }, OKActions = {},
    InsufficientDataActions = {}, Period = 60,
    EvaluationPeriods = high and 3 or 15, DatapointsToAlarm = high and 3 or 15,
    Threshold = (high and ttc.TargetValue or ttc.TargetValue * 0.9) + 0.0,
    ComparisonOperator = high and "GreaterThanThreshold" or "LessThanThreshold" }
  local pre, cust = ttc.PredefinedMetricSpecification, ttc.CustomizedMetricSpecification
  if pre then
    local m = PREDEFINED[pre.PredefinedMetricType] or PREDEFINED.ASGAverageCPUUtilization
    p.Namespace, p.MetricName, p.Statistic = m[1], m[2], m[3]
    if pre.PredefinedMetricType == "ALBRequestCountPerTarget" then
      -- ResourceLabel = app/<lb>/<id>/targetgroup/<tg>/<id>; the dimension is its tail
      p.Dimensions = { { Name = "TargetGroup",
        Value = pre.ResourceLabel:match("(targetgroup/.*)$") or pre.ResourceLabel } }
    else
      p.Dimensions = { { Name = "AutoScalingGroupName", Value = group } }
    end
  elseif cust.Metrics then
    p.Period = nil
    p.Metrics = {}
    for i, q in ipairs(cust.Metrics) do
      local stat = q.MetricStat and { Metric = copy(q.MetricStat.Metric), Stat = q.MetricStat.Stat,
        Unit = q.MetricStat.Unit, Period = 60 }
      p.Metrics[i] = { Id = q.Id, Expression = q.Expression, Label = q.Label,
        ReturnData = q.ReturnData, MetricStat = stat }
    end
  else
    p.Namespace, p.MetricName, p.Statistic = cust.Namespace, cust.MetricName, cust.Statistic
    p.Dimensions, p.Unit = copy(cust.Dimensions or {}), cust.Unit
  end
  return p
end

-- The CloudWatch alarms Auto Scaling owns for a target tracking policy: AlarmHigh, and
-- AlarmLow unless scale-in is disabled (Auto Scaling then has nothing to do on a low
-- metric). An updated policy keeps its alarms' names (`old`: its previous Alarms).
local function tracking_alarms(ctx, group, ttc, old)
  local by_kind = {}
  for _, a in ipairs(old or {}) do
    local kind = a.AlarmName:match("%-(Alarm%a+)%-[%x%-]+$")
    if kind then by_kind[kind] = a end
  end
  local out = {}
  for _, which in ipairs{ "AlarmHigh", "AlarmLow" } do
    if which == "AlarmHigh" or not ttc.DisableScaleIn then
      local a = by_kind[which]
      if not a then
        local name = ("TargetTracking-%s-%s-%s"):format(group, which, uuid(ctx))
        a = { AlarmName = name, AlarmARN = ctx:arn("alarm:" .. name, { service = "cloudwatch" }) }
      end
      out[#out + 1] = copy(a)
    end
  end
  return out
end

-- Makes the region's CloudWatch alarms match policy `pol` (nil: none): puts each of its
-- Alarms with the policy's current configuration (created, or updated in place keeping
-- their state), and deletes those of `old` (previous Alarms) it no longer has. AWS does
-- this itself, so DescribeAlarms shows what PutScalingPolicy answered.
local function sync_alarms(ctx, group, pol, old)
  local cw = metrics.tables(ctx:db_of("cloudwatch"))
  local keep = {}
  for _, a in ipairs(pol and pol.Alarms or {}) do
    keep[a.AlarmName] = true
    local p = tracking_alarm_params(group, pol, a.AlarmName:match("%-(Alarm%a+)%-[%x%-]+$"))
    p.AlarmName = a.AlarmName
    metrics.store_alarm(cw, p, a.AlarmARN, ctx:now())
  end
  for _, a in ipairs(old or {}) do
    if not keep[a.AlarmName] then cw.alarms[a.AlarmName] = nil end
  end
  require("fo.sim.failover").arm(ctx.sim)
end

-- Groups ------------------------------------------------------------------------------

local function check_health_check_type(ctx, v)
  if v == nil then return end
  for part in v:gmatch("[^,]+") do
    if not HEALTH_CHECK_TYPES[part] then
      invalid(ctx, ("Invalid health check type '%s'. Valid values: EC2, ELB, VPC_LATTICE, EBS.")
        :format(v))
    end
  end
end

function M.CreateAutoScalingGroup(ctx, p)
  local db = state(ctx)
  local name = p.AutoScalingGroupName
  if db.groups[name] then
    ctx:fail("AlreadyExists", ("AutoScalingGroup by this name already exists - A group with the "
      .. "name %s already exists"):format(name))
  end
  if not p.LaunchTemplate then
    if p.LaunchConfigurationName or p.MixedInstancesPolicy or p.InstanceId then
      invalid(ctx, "The fo simulator supports LaunchTemplate groups only (LaunchConfigurationName, "
        .. "MixedInstancesPolicy and InstanceId are not simulated).")
    end
    invalid(ctx, "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, "
      .. "InstanceId or MixedInstancesPolicy parameter.")
  end
  if not p.VPCZoneIdentifier then
    invalid(ctx, p.AvailabilityZones and "The fo simulator needs VPCZoneIdentifier (EC2-Classic "
      .. "style AvailabilityZones-only groups are not simulated)."
      or "At least one Availability Zone or VPC Subnet is required.")
  end
  local desired = p.DesiredCapacity or p.MinSize
  check_sizes(ctx, p.MinSize, p.MaxSize, desired)
  check_health_check_type(ctx, p.HealthCheckType)
  local subnets, azs, vpc = resolve_subnets(ctx, p.VPCZoneIdentifier)
  if p.AvailabilityZones then
    local ok = {}
    for _, az in ipairs(azs) do ok[az] = true end
    for _, az in ipairs(p.AvailabilityZones) do
      if not ok[az] then
        invalid(ctx, ("The availability zone %s is not used by any of the subnets in "
          .. "VPCZoneIdentifier."):format(az))
      end
    end
  end
  check_target_groups(ctx, p.TargetGroupARNs, vpc)
  local spec = resolve_template(ctx, p.LaunchTemplate)
  for _, t in ipairs(p.Tags or {}) do check_tag_target(ctx, t, name) end

  local g = {
    AutoScalingGroupName = name,
    AutoScalingGroupARN = ctx:arn(("autoScalingGroup:%s:autoScalingGroupName/%s"):format(uuid(ctx), name)),
    LaunchTemplate = spec, MinSize = p.MinSize, MaxSize = p.MaxSize, DesiredCapacity = desired,
    DefaultCooldown = p.DefaultCooldown or 300, AvailabilityZones = azs,
    VPCZoneIdentifier = table.concat(subnets, ","), subnets = subnets, VpcId = vpc,
    TargetGroupARNs = copy(p.TargetGroupARNs or {}),
    HealthCheckType = p.HealthCheckType or "EC2",
    -- the API's default grace period is 0 (the console's is 300)
    HealthCheckGracePeriod = p.HealthCheckGracePeriod or 0,
    TerminationPolicies = copy(p.TerminationPolicies or { "Default" }),
    NewInstancesProtectedFromScaleIn = p.NewInstancesProtectedFromScaleIn or false,
    CapacityRebalance = p.CapacityRebalance or false,
    ServiceLinkedRoleARN = p.ServiceLinkedRoleARN or ("arn:aws:iam::%s:role/aws-service-role/"
      .. "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"):format(ctx.account),
    MaxInstanceLifetime = p.MaxInstanceLifetime, DefaultInstanceWarmup = p.DefaultInstanceWarmup,
    Context = p.Context, DesiredCapacityType = p.DesiredCapacityType,
    PlacementGroup = p.PlacementGroup,
    CreatedTime = ctx:now(), Tags = {}, enabled_metrics = {}, Instances = {}, seq = next_seq(db),
  }
  put_tags(ctx, g, p.Tags or {})
  db.groups[name] = g
  ctx:created(name)
  reconcile(ctx, db, g, ("At %s a user request created an AutoScalingGroup changing the desired "
    .. "capacity from 0 to %d."):format(iso(ctx:now()), desired))
  require("fo.sim.failover").arm(ctx.sim) -- its instances' metrics (fo.sim.metrics_plane)
  return {}
end

-- Filters of DescribeAutoScalingGroups: tag:<key>, tag-key, tag-value.
local function group_matches(ctx, g, filters)
  for _, f in ipairs(filters or {}) do
    local name, values = f.Name or "", f.Values or {}
    local any = false
    for _, t in ipairs(g.Tags) do
      for _, v in ipairs(values) do
        if (name == "tag-key" and t.Key == v) or (name == "tag-value" and t.Value == v)
            or (name:sub(1, 4) == "tag:" and t.Key == name:sub(5) and t.Value == v) then
          any = true
        end
      end
    end
    if name ~= "tag-key" and name ~= "tag-value" and name:sub(1, 4) ~= "tag:" then
      invalid(ctx, ("The filter '%s' is not valid. Valid filters: tag:<key>, tag-key, tag-value.")
        :format(name))
    end
    if not any then return false end
  end
  return true
end

function M.DescribeAutoScalingGroups(ctx, p)
  local db = state(ctx)
  local list = {}
  if p.AutoScalingGroupNames and #p.AutoScalingGroupNames > 0 then
    for _, n in ipairs(p.AutoScalingGroupNames) do
      local g = db.groups[n]
      if g and not ctx:fresh(n) then list[#list + 1] = g end
    end
  else
    list = sorted_groups(db)
  end
  local matched = {}
  for _, g in ipairs(list) do
    if group_matches(ctx, g, p.Filters) then matched[#matched + 1] = g end
  end
  local items, token = page(ctx, matched, p.NextToken, p.MaxRecords, 50, 100)
  local out = {}
  for _, g in ipairs(items) do out[#out + 1] = group_view(db, g) end
  return { AutoScalingGroups = out, NextToken = token }
end

function M.UpdateAutoScalingGroup(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  local min = p.MinSize or g.MinSize
  local max = p.MaxSize or g.MaxSize
  local desired = p.DesiredCapacity
  if desired == nil then
    -- AWS moves the desired capacity into a new [min, max] when only the bounds change
    desired = math.max(min, math.min(max, g.DesiredCapacity))
  end
  check_sizes(ctx, min, max, desired)
  check_health_check_type(ctx, p.HealthCheckType)
  local spec = g.LaunchTemplate
  if p.LaunchTemplate then spec = resolve_template(ctx, p.LaunchTemplate) end
  if p.VPCZoneIdentifier then
    local subnets, azs, vpc = resolve_subnets(ctx, p.VPCZoneIdentifier)
    g.subnets, g.AvailabilityZones, g.VpcId = subnets, azs, vpc
    g.VPCZoneIdentifier = table.concat(subnets, ",")
  end
  local before = g.DesiredCapacity
  g.MinSize, g.MaxSize, g.DesiredCapacity, g.LaunchTemplate = min, max, desired, spec
  for _, k in ipairs{ "DefaultCooldown", "HealthCheckType", "HealthCheckGracePeriod",
      "NewInstancesProtectedFromScaleIn", "CapacityRebalance", "MaxInstanceLifetime",
      "DefaultInstanceWarmup", "Context", "DesiredCapacityType", "PlacementGroup" } do
    if p[k] ~= nil then g[k] = p[k] end
  end
  if p.TerminationPolicies then g.TerminationPolicies = copy(p.TerminationPolicies) end
  reconcile(ctx, db, g, ("At %s a user request update of AutoScalingGroup constraints to min: %d, "
    .. "max: %d, desired: %d changing the desired capacity from %d to %d."):format(iso(ctx:now()),
    min, max, desired, before, desired))
  return {}
end

-- Instance refresh ------------------------------------------------------------------------
-- Simplified (docs/simulator.md): a Rolling refresh replaces, at StartInstanceRefresh, every
-- in-service instance not on the group's launch template version (all of them unless
-- Preferences.SkipMatching), in batches sized by MinHealthyPercentage (default 90): a batch
-- is at most DesiredCapacity × (100 − MinHealthyPercentage) / 100 instances, at least one,
-- so that at least MinHealthyPercentage of the capacity stays in service; each batch's old
-- instances start terminating and their replacements launch from the group's current
-- version. The refresh reports InProgress for InstanceWarmup (default the group's
-- HealthCheckGracePeriod) seconds per batch, at most sim.timing.refresh_batch (the sim
-- keeps AWS's minutes short), then Successful. One refresh at a time per
-- group (InstanceRefreshInProgress). Checkpoints, rollback, DesiredConfiguration and
-- MaxHealthyPercentage above 100 are not modelled.

-- The refresh's status at `now` (InProgress until its batches' warmups have passed).
local function refresh_status(r, now)
  if r.Status ~= "InProgress" then return r.Status end
  if now >= r.end_at then
    r.Status, r.EndTime, r.PercentageComplete = "Successful", r.end_at, 100
    r.StatusReason = nil
  end
  return r.Status
end

local function refresh_view(r, now)
  local status = refresh_status(r, now)
  local pct = r.PercentageComplete
  if status == "InProgress" and r.batches > 0 then
    pct = math.floor(100 * math.min(r.batches, math.floor((now - r.StartTime) / r.warmup)) / r.batches)
  end
  return { InstanceRefreshId = r.InstanceRefreshId, AutoScalingGroupName = r.AutoScalingGroupName,
    Status = status, StatusReason = r.StatusReason, StartTime = r.StartTime, EndTime = r.EndTime,
    PercentageComplete = pct, InstancesToUpdate = status == "InProgress" and r.to_update or 0,
    Strategy = "Rolling", Preferences = copy(r.Preferences) }
end

function M.StartInstanceRefresh(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  if p.Strategy ~= nil and p.Strategy ~= "Rolling" then
    invalid(ctx, ("1 validation error detected: Value '%s' at 'strategy' failed to satisfy "
      .. "constraint: Member must satisfy enum value set: [Rolling, ReplaceRootVolume]")
      :format(tostring(p.Strategy)))
  end
  if p.DesiredConfiguration ~= nil then
    invalid(ctx, "the fo simulator does not model DesiredConfiguration: update the group's "
      .. "launch template, then start the refresh")
  end
  local prefs = copy(p.Preferences or {})
  local min_healthy = prefs.MinHealthyPercentage or 90
  if type(min_healthy) ~= "number" or min_healthy < 0 or min_healthy > 100 then
    invalid(ctx, "MinHealthyPercentage must be between 0 and 100")
  end
  db.refreshes = db.refreshes or {}
  for _, r in ipairs(db.refreshes) do
    if r.AutoScalingGroupName == g.AutoScalingGroupName and refresh_status(r, ctx:now()) == "InProgress" then
      ctx:fail("InstanceRefreshInProgress", ("An Instance Refresh is already in progress and "
        .. "blocks the execution of this Instance Refresh."), 400)
    end
  end
  local _, data, n = resolve_template(ctx, { LaunchTemplateId = g.LaunchTemplate.LaunchTemplateId,
    Version = g.LaunchTemplate.Version })
  local stale = {}
  for _, i in ipairs(asg_state.members(db, g.AutoScalingGroupName)) do
    if i.LifecycleState == "InService" and (not prefs.SkipMatching
        or i.LaunchTemplate.LaunchTemplateId ~= g.LaunchTemplate.LaunchTemplateId
        or i.LaunchTemplate.Version ~= tostring(n)) then
      stale[#stale + 1] = i
    end
  end
  local batch = math.max(1, math.floor(g.DesiredCapacity * (100 - min_healthy) / 100))
  local warmup = prefs.InstanceWarmup or g.HealthCheckGracePeriod or 300
  prefs.MinHealthyPercentage, prefs.InstanceWarmup = min_healthy, warmup
  warmup = math.max(0.1, math.min(warmup, asg_state.timing(ctx, "refresh_batch")))
  local now = ctx:now()
  local id = uuid(ctx)
  local cause = ("At %s an instance refresh %s replaced the instance."):format(iso(now), id)
  local count = #asg_state.members(db, g.AutoScalingGroupName)
  for k, inst in ipairs(stale) do
    terminate(ctx, db, g, inst, cause, count, count - 1)
    launch(ctx, db, g, data, n, cause)
    if k % batch == 0 then count = #asg_state.members(db, g.AutoScalingGroupName) end
  end
  local batches = math.ceil(#stale / batch)
  db.refreshes[#db.refreshes + 1] = { InstanceRefreshId = id,
    AutoScalingGroupName = g.AutoScalingGroupName, Status = "InProgress", StartTime = now,
    end_at = now + batches * warmup, batches = batches, warmup = warmup, to_update = #stale,
    PercentageComplete = 0, Preferences = prefs }
  return { InstanceRefreshId = id }
end

function M.DescribeInstanceRefreshes(ctx, p)
  local db = state(ctx)
  group_of(ctx, db, p.AutoScalingGroupName)
  local wanted
  if p.InstanceRefreshIds and #p.InstanceRefreshIds > 0 then
    wanted = {}
    for _, id in ipairs(p.InstanceRefreshIds) do wanted[id] = true end
  end
  local out = {}
  local list = db.refreshes or {}
  for k = #list, 1, -1 do -- newest first, as AWS lists them
    local r = list[k]
    if r.AutoScalingGroupName == p.AutoScalingGroupName and (not wanted or wanted[r.InstanceRefreshId]) then
      out[#out + 1] = refresh_view(r, ctx:now())
    end
  end
  local items, token = page(ctx, out, p.NextToken, p.MaxRecords, 50, 100)
  return { InstanceRefreshes = items, NextToken = token }
end

function M.DeleteAutoScalingGroup(ctx, p)
  local db = state(ctx)
  local name = p.AutoScalingGroupName
  local g = db.groups[name]
  if not g then not_found(ctx, name) end
  if g.delete_at then return {} end -- already being deleted
  local members = asg_state.members(db, name)
  if #members > 0 and not p.ForceDelete then
    ctx:fail("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or "
      .. "pending Spot instance request(s) still in the group.")
  end
  local cause = ("At %s a user request deleted the AutoScalingGroup."):format(iso(ctx:now()))
  for _, inst in ipairs(members) do
    if inst.LifecycleState == "InService" then terminate(ctx, db, g, inst, cause, #members, 0) end
  end
  -- Deleting a group deletes its policies' alarms; the policies themselves go with the
  -- group (asg_state.settle), which has no CloudWatch state at hand, so the alarms go now.
  for _, pol in pairs(db.policies) do
    if pol.AutoScalingGroupName == name then sync_alarms(ctx, name, nil, pol.Alarms) end
  end
  -- the group stays visible as "Delete in progress" until its instances are gone
  g.delete_at = ctx:now() + math.max(asg_state.timing(ctx, "group_delete"),
    #members > 0 and asg_state.timing(ctx, "instance_terminate") or 0)
  return {}
end

-- Target groups attached to / detached from a group in place (UpdateAutoScalingGroup
-- has no TargetGroupARNs): its instances register with (leave) them, which is what
-- ELBv2's target health reads from TargetGroupARNs.
function M.AttachLoadBalancerTargetGroups(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  check_target_groups(ctx, p.TargetGroupARNs, g.VpcId)
  local have = {}
  for _, arn in ipairs(g.TargetGroupARNs) do have[arn] = true end
  for _, arn in ipairs(p.TargetGroupARNs) do
    if not have[arn] then
      have[arn] = true
      g.TargetGroupARNs[#g.TargetGroupARNs + 1] = arn
    end
  end
  return {}
end

function M.DetachLoadBalancerTargetGroups(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  local drop = {}
  for _, arn in ipairs(p.TargetGroupARNs) do drop[arn] = true end
  local keep = {}
  for _, arn in ipairs(g.TargetGroupARNs) do
    if not drop[arn] then keep[#keep + 1] = arn end
  end
  g.TargetGroupARNs = keep
  return {}
end

function M.DescribeAutoScalingInstances(ctx, p)
  local db = state(ctx)
  local list = {}
  if p.InstanceIds and #p.InstanceIds > 0 then
    for _, id in ipairs(p.InstanceIds) do
      local i = asg_state.instance(db, id)
      if i then list[#list + 1] = i end
    end
  else
    for _, g in pairs(db.groups) do
      for _, i in ipairs(asg_state.members(db, g.AutoScalingGroupName)) do list[#list + 1] = i end
    end
    table.sort(list, function(a, b) return a.InstanceId < b.InstanceId end)
  end
  local items, token = page(ctx, list, p.NextToken, p.MaxRecords, 50, 50)
  local out = {}
  for _, i in ipairs(items) do
    local v = instance_view(i)
    v.AutoScalingGroupName = i.AutoScalingGroupName
    out[#out + 1] = v
  end
  return { AutoScalingInstances = out, NextToken = token }
end

-- Activity fields that belong to the output shape.
local ACTIVITY_FIELDS = { "ActivityId", "AutoScalingGroupName", "Description", "Cause", "StartTime",
  "EndTime", "StatusCode", "StatusMessage", "Progress", "Details", "AutoScalingGroupARN" }

function M.DescribeScalingActivities(ctx, p)
  local db = state(ctx)
  local wanted
  if p.ActivityIds and #p.ActivityIds > 0 then
    wanted = {}
    for _, id in ipairs(p.ActivityIds) do wanted[id] = true end
  end
  local list = {}
  for k = #db.activities, 1, -1 do -- newest first, as AWS lists them
    local a = db.activities[k]
    local ok = (p.AutoScalingGroupName == nil or a.AutoScalingGroupName == p.AutoScalingGroupName)
      and (wanted == nil or wanted[a.ActivityId])
      and (not a.group_deleted or p.IncludeDeletedGroups)
    if ok then
      local v = {}
      for _, f in ipairs(ACTIVITY_FIELDS) do v[f] = a[f] end
      if a.group_deleted then v.AutoScalingGroupState = "Deleted" end
      list[#list + 1] = v
    end
  end
  local items, token = page(ctx, list, p.NextToken, p.MaxRecords, 100, 100)
  return { Activities = items, NextToken = token }
end

-- Policies ----------------------------------------------------------------------------

-- Checks a target tracking configuration as AWS does: one metric specification;
-- ALBRequestCountPerTarget needs its ResourceLabel.
local function check_target_tracking(ctx, ttc)
  if not ttc then
    invalid(ctx, "TargetTrackingConfiguration is required for policies of type TargetTrackingScaling.")
  end
  local pre, cust = ttc.PredefinedMetricSpecification, ttc.CustomizedMetricSpecification
  if (pre == nil) == (cust == nil) then
    invalid(ctx, "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification "
      .. "must be specified.")
  end
  if pre and pre.PredefinedMetricType == "ALBRequestCountPerTarget" and not pre.ResourceLabel then
    invalid(ctx, "ResourceLabel is required for the predefined metric type ALBRequestCountPerTarget.")
  end
  if pre and pre.PredefinedMetricType ~= "ALBRequestCountPerTarget" and pre.ResourceLabel then
    invalid(ctx, ("ResourceLabel is not allowed for the predefined metric type %s.")
      :format(pre.PredefinedMetricType))
  end
end

local POLICY_FIELDS = { "AdjustmentType", "MinAdjustmentStep", "MinAdjustmentMagnitude",
  "ScalingAdjustment", "Cooldown", "MetricAggregationType", "EstimatedInstanceWarmup" }

function M.PutScalingPolicy(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  local ptype = p.PolicyType or "SimpleScaling"
  if not POLICY_TYPES[ptype] then
    invalid(ctx, ("Invalid policy type '%s'. Valid values: SimpleScaling, StepScaling, "
      .. "TargetTrackingScaling, PredictiveScaling."):format(ptype))
  end
  if ptype == "TargetTrackingScaling" then
    check_target_tracking(ctx, p.TargetTrackingConfiguration)
  elseif ptype == "PredictiveScaling" then
    invalid(ctx, "The fo simulator does not simulate PredictiveScaling policies.")
  else
    if p.AdjustmentType == nil or not ADJUSTMENT_TYPES[p.AdjustmentType] then
      invalid(ctx, ("AdjustmentType is required and must be one of ChangeInCapacity, "
        .. "ExactCapacity, PercentChangeInCapacity, got '%s'."):format(tostring(p.AdjustmentType)))
    end
    if ptype == "SimpleScaling" and p.ScalingAdjustment == nil then
      invalid(ctx, "ScalingAdjustment is required for policies of type SimpleScaling.")
    end
    if ptype == "StepScaling" and (p.StepAdjustments == nil or #p.StepAdjustments == 0) then
      invalid(ctx, "StepAdjustments are required for policies of type StepScaling.")
    end
  end
  -- the same name updates the policy in place: same ARN (and alarms for target tracking)
  local existing
  for _, pol in pairs(db.policies) do
    if pol.AutoScalingGroupName == g.AutoScalingGroupName and pol.PolicyName == p.PolicyName then
      existing = pol
    end
  end
  local arn = existing and existing.PolicyARN or ctx:arn(("scalingPolicy:%s:autoScalingGroupName/%s"
    .. ":policyName/%s"):format(uuid(ctx), g.AutoScalingGroupName, p.PolicyName))
  local pol = { AutoScalingGroupName = g.AutoScalingGroupName, PolicyName = p.PolicyName,
    PolicyARN = arn, PolicyType = ptype, StepAdjustments = copy(p.StepAdjustments or {}),
    Enabled = p.Enabled ~= false, Alarms = {} }
  for _, k in ipairs(POLICY_FIELDS) do pol[k] = p[k] end
  if ptype == "TargetTrackingScaling" then
    pol.TargetTrackingConfiguration = copy(p.TargetTrackingConfiguration)
    pol.TargetTrackingConfiguration.DisableScaleIn = p.TargetTrackingConfiguration.DisableScaleIn or false
    pol.Alarms = tracking_alarms(ctx, g.AutoScalingGroupName, pol.TargetTrackingConfiguration,
      existing and existing.Alarms)
  end
  db.policies[arn] = pol
  sync_alarms(ctx, g.AutoScalingGroupName, pol, existing and existing.Alarms)
  return { PolicyARN = arn, Alarms = copy(pol.Alarms) }
end

function M.DescribePolicies(ctx, p)
  local db = state(ctx)
  local names, types
  if p.PolicyNames and #p.PolicyNames > 0 then
    names = {}
    for _, n in ipairs(p.PolicyNames) do names[n] = true end
  end
  if p.PolicyTypes and #p.PolicyTypes > 0 then
    types = {}
    for _, t in ipairs(p.PolicyTypes) do types[t] = true end
  end
  if p.AutoScalingGroupName and not db.groups[p.AutoScalingGroupName] then
    not_found(ctx, p.AutoScalingGroupName)
  end
  local list = {}
  for _, pol in pairs(db.policies) do
    if (p.AutoScalingGroupName == nil or pol.AutoScalingGroupName == p.AutoScalingGroupName)
        and (names == nil or names[pol.PolicyName] or names[pol.PolicyARN])
        and (types == nil or types[pol.PolicyType]) then
      list[#list + 1] = copy(pol)
    end
  end
  table.sort(list, function(a, b)
    if a.AutoScalingGroupName ~= b.AutoScalingGroupName then
      return a.AutoScalingGroupName < b.AutoScalingGroupName
    end
    return a.PolicyName < b.PolicyName
  end)
  local items, token = page(ctx, list, p.NextToken, p.MaxRecords, 50, 50)
  return { ScalingPolicies = items, NextToken = token }
end

-- Deletes a policy and the alarms Auto Scaling made for it.
local function drop_policy(ctx, db, arn)
  local pol = db.policies[arn]
  db.policies[arn] = nil
  sync_alarms(ctx, pol.AutoScalingGroupName, nil, pol.Alarms)
end

function M.DeletePolicy(ctx, p)
  local db = state(ctx)
  if p.PolicyName:sub(1, 4) == "arn:" then
    if not db.policies[p.PolicyName] then
      invalid(ctx, ("Policy %s does not exist"):format(p.PolicyName))
    end
    drop_policy(ctx, db, p.PolicyName)
    return {}
  end
  if not p.AutoScalingGroupName then
    invalid(ctx, "AutoScalingGroupName is required when PolicyName is not an ARN.")
  end
  group_of(ctx, db, p.AutoScalingGroupName)
  for arn, pol in pairs(db.policies) do
    if pol.AutoScalingGroupName == p.AutoScalingGroupName and pol.PolicyName == p.PolicyName then
      drop_policy(ctx, db, arn)
      return {}
    end
  end
  -- AWS answers success for a policy name the group no longer has
  return {}
end

-- Metrics -----------------------------------------------------------------------------

local function check_metrics(ctx, metrics)
  for _, m in ipairs(metrics or {}) do
    if not METRIC_SET[m] then
      invalid(ctx, ("Invalid metric name: %s. Valid metrics: %s."):format(m, table.concat(METRICS, ", ")))
    end
  end
end

function M.EnableMetricsCollection(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  -- Auto Scaling publishes group metrics at one granularity only
  if p.Granularity ~= "1Minute" then
    invalid(ctx, ("Valid value for Granularity is 1Minute, got '%s'."):format(p.Granularity))
  end
  check_metrics(ctx, p.Metrics)
  local want = (p.Metrics and #p.Metrics > 0) and p.Metrics or METRICS
  local have = {}
  for _, m in ipairs(g.enabled_metrics) do have[m] = true end
  for _, m in ipairs(want) do have[m] = true end
  -- group metrics start from now (fo.sim.metrics_plane publishes them every minute)
  if #g.enabled_metrics == 0 then g.metrics_since = ctx:now() end
  g.enabled_metrics = {}
  for _, m in ipairs(METRICS) do
    if have[m] then g.enabled_metrics[#g.enabled_metrics + 1] = m end
  end
  require("fo.sim.failover").arm(ctx.sim)
  return {}
end

function M.DisableMetricsCollection(ctx, p)
  local db = state(ctx)
  local g = group_of(ctx, db, p.AutoScalingGroupName, true)
  check_metrics(ctx, p.Metrics)
  if not p.Metrics or #p.Metrics == 0 then
    g.enabled_metrics = {}
    return {}
  end
  local drop = {}
  for _, m in ipairs(p.Metrics) do drop[m] = true end
  local keep = {}
  for _, m in ipairs(g.enabled_metrics) do
    if not drop[m] then keep[#keep + 1] = m end
  end
  g.enabled_metrics = keep
  return {}
end

-- Tags --------------------------------------------------------------------------------

-- The group a Tags entry names (ResourceId), or ValidationError.
local function tag_group(ctx, db, t)
  if not t.ResourceId then invalid(ctx, "ResourceId is required for each tag.") end
  check_tag_target(ctx, t)
  local g = db.groups[t.ResourceId]
  if not g then not_found(ctx, t.ResourceId) end
  return g
end

function M.CreateOrUpdateTags(ctx, p)
  local db = state(ctx)
  local by_group = {}
  for _, t in ipairs(p.Tags) do
    local g = tag_group(ctx, db, t)
    by_group[g] = by_group[g] or {}
    table.insert(by_group[g], t)
  end
  for g, tags in pairs(by_group) do put_tags(ctx, g, tags) end
  return {}
end

function M.DeleteTags(ctx, p)
  local db = state(ctx)
  for _, t in ipairs(p.Tags) do
    local g = tag_group(ctx, db, t)
    for k = #g.Tags, 1, -1 do
      if g.Tags[k].Key == t.Key then table.remove(g.Tags, k) end
    end
  end
  return {}
end

-- DescribeTags filters: auto-scaling-group, key, value, propagate-at-launch (values of a
-- filter are ORed, filters ANDed).
local TAG_FILTERS = {
  ["auto-scaling-group"] = function(td, v) return td.ResourceId == v end,
  key = function(td, v) return td.Key == v end,
  value = function(td, v) return td.Value == v end,
  ["propagate-at-launch"] = function(td, v) return tostring(td.PropagateAtLaunch) == v end,
}

function M.DescribeTags(ctx, p)
  local db = state(ctx)
  for _, f in ipairs(p.Filters or {}) do
    if not TAG_FILTERS[f.Name or ""] then
      invalid(ctx, ("Filter name '%s' is not valid. Valid filters: auto-scaling-group, key, value, "
        .. "propagate-at-launch."):format(tostring(f.Name)))
    end
  end
  local list = {}
  for _, g in ipairs(sorted_groups(db)) do
    for _, td in ipairs(tag_descriptions(g)) do
      local ok = true
      for _, f in ipairs(p.Filters or {}) do
        local any = false
        for _, v in ipairs(f.Values or {}) do
          if TAG_FILTERS[f.Name](td, v) then any = true end
        end
        if not any then ok = false end
      end
      if ok then list[#list + 1] = td end
    end
  end
  local items, token = page(ctx, list, p.NextToken, p.MaxRecords, 50, 100)
  return { Tags = items, NextToken = token }
end

return M
