-- CloudWatch resource type: aws:cloudwatch:alarm (a metric alarm).
--
-- Facts this file relies on (CloudWatch API reference and user guide):
-- - PutMetricAlarm creates or replaces an alarm by name: it is the create and the update.
--   On update it ignores Tags (TagResource/UntagResource change them), and it keeps the
--   alarm's state. An alarm's name is its identity in its region: an alarm of that name
--   that does not carry this create's fo:token (Auto Scaling's target tracking alarms,
--   someone else's, another copy of the stack's) is a conflict, checked before the call;
--   the type is replaced delete-first.
-- - An alarm's actions must be in the alarm's own region ("Invalid region X specified.
--   Only Y is supported."). Route 53 health-check metrics (AWS/Route53 HealthCheckStatus)
--   exist only in us-east-1: their alarms are declared with region = "us-east-1", with a
--   us-east-1 SNS topic as action. Both are checked before any call, with a clear message.
-- - For HealthCheckStatus (1 healthy, 0 unhealthy, one datapoint a minute): statistic
--   Minimum, period 60, threshold 1, LessThanThreshold, treat_missing_data "breaching" (a
--   check that stopped reporting is not a healthy one).
local common = require "fo.aws.resources.common"

local function cw(ctx) return ctx:client("cloudwatch") end

local STATISTICS = { "SampleCount", "Average", "Sum", "Minimum", "Maximum" }
local COMPARISONS = { "GreaterThanOrEqualToThreshold", "GreaterThanThreshold",
  "LessThanThreshold", "LessThanOrEqualToThreshold", "LessThanLowerOrGreaterThanUpperThreshold",
  "LessThanLowerThreshold", "GreaterThanUpperThreshold" }
local TREAT = { "missing", "breaching", "notBreaching", "ignore" }

local function find(ctx, name)
  return cw(ctx):DescribeAlarms{ AlarmNames = { name }, AlarmTypes = { "MetricAlarm" } }
    .MetricAlarms[1]
end

local function alarm_tags(ctx, arn)
  local client = cw(ctx)
  local out = common.unless({ "ResourceNotFoundException", "ResourceNotFound" },
    client.ListTagsForResource, client, { ResourceARN = arn })
  return out and out.Tags or {}
end

-- Checks what CloudWatch would refuse or silently get wrong, before any call.
local function check(ctx, p)
  if p.namespace == "AWS/Route53" and ctx.region ~= "us-east-1" then
    error(("aws:cloudwatch:alarm %s: Route 53 health-check metrics are published only in "
      .. "us-east-1; declare the alarm with region = \"us-east-1\" (and a us-east-1 SNS topic "
      .. "as its action), not in %s"):format(p.name, ctx.region), 0)
  end
  for _, k in ipairs{ "alarm_actions", "ok_actions", "insufficient_data_actions" } do
    for _, arn in ipairs(p[k] or {}) do
      local region = tostring(arn):match("^arn:[^:]+:[^:]+:([^:]*):")
      if region and region ~= "" and region ~= ctx.region then
        error(("aws:cloudwatch:alarm %s: %s names %s in %s, but an alarm's actions must be in "
          .. "its own region (%s)"):format(p.name, k, arn, region, ctx.region), 0)
      end
    end
  end
  if (p.statistic == nil) == (p.extended_statistic == nil) then
    error(("aws:cloudwatch:alarm %s: give statistic or extended_statistic (one of them)")
      :format(p.name), 0)
  end
  if p.datapoints_to_alarm and p.datapoints_to_alarm > p.evaluation_periods then
    error(("aws:cloudwatch:alarm %s: datapoints_to_alarm (%d) exceeds evaluation_periods (%d)")
      :format(p.name, p.datapoints_to_alarm, p.evaluation_periods), 0)
  end
end

local function dimensions(map)
  local keys = {}
  for k in pairs(map or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = { Name = k, Value = map[k] } end
  return out
end

-- PutMetricAlarm's params from the properties.
local function params(p)
  return { AlarmName = p.name, AlarmDescription = p.description ~= "" and p.description or nil,
    Namespace = p.namespace, MetricName = p.metric_name, Dimensions = dimensions(p.dimensions),
    Statistic = p.statistic, ExtendedStatistic = p.extended_statistic, Period = p.period,
    Unit = p.unit, EvaluationPeriods = p.evaluation_periods,
    DatapointsToAlarm = p.datapoints_to_alarm, Threshold = p.threshold,
    ComparisonOperator = p.comparison_operator, TreatMissingData = p.treat_missing_data,
    ActionsEnabled = p.actions_enabled, AlarmActions = p.alarm_actions, OKActions = p.ok_actions,
    InsufficientDataActions = p.insufficient_data_actions }
end

-- The properties an alarm shows, in the declared form (lists in any order count as the
-- declared ones).
local function observed(a, props)
  local dims = {}
  for _, d in ipairs(a.Dimensions or {}) do dims[d.Name] = d.Value end
  local function actions(list, declared)
    return common.as_recorded(list or {}, declared, common.same_set)
  end
  return { name = a.AlarmName, description = a.AlarmDescription or "", namespace = a.Namespace,
    metric_name = a.MetricName, dimensions = dims, statistic = a.Statistic,
    extended_statistic = a.ExtendedStatistic, period = a.Period, unit = a.Unit,
    evaluation_periods = a.EvaluationPeriods,
    datapoints_to_alarm = (props.datapoints_to_alarm ~= nil or
      a.DatapointsToAlarm ~= a.EvaluationPeriods) and a.DatapointsToAlarm or nil,
    threshold = a.Threshold, comparison_operator = a.ComparisonOperator,
    treat_missing_data = a.TreatMissingData or "missing", actions_enabled = a.ActionsEnabled,
    alarm_actions = actions(a.AlarmActions, props.alarm_actions),
    ok_actions = actions(a.OKActions, props.ok_actions),
    insufficient_data_actions = actions(a.InsufficientDataActions, props.insufficient_data_actions) }
end

local function outputs(a)
  return { arn = a.AlarmArn, name = a.AlarmName }
end

local same = common.same_set
fo.type("aws:cloudwatch:alarm", {
  doc = "a CloudWatch metric alarm (in the resource's region; its actions in that region too)",
  schema = {
    properties = {
      name = { type = "string", required = true },
      description = { type = "string", default = "" },
      namespace = { type = "string", required = true },
      metric_name = { type = "string", required = true },
      dimensions = { type = "map", default = {} },
      statistic = { type = "string", enum = STATISTICS },
      extended_statistic = { type = "string" },
      period = { type = "integer", required = true, check = function(v)
        return v == 10 or v == 20 or v == 30 or (v >= 60 and v % 60 == 0),
          "10, 20, 30 or a multiple of 60 (seconds)"
      end },
      unit = { type = "string" },
      evaluation_periods = { type = "integer", required = true,
        check = function(v) return v >= 1, "at least 1" end },
      datapoints_to_alarm = { type = "integer", check = function(v) return v >= 1, "at least 1" end },
      threshold = { type = "number", required = true },
      comparison_operator = { type = "string", required = true, enum = COMPARISONS },
      treat_missing_data = { type = "string", default = "missing", enum = TREAT },
      actions_enabled = { type = "boolean", default = true },
      alarm_actions = { type = "list", default = {} },
      ok_actions = { type = "list", default = {} },
      insufficient_data_actions = { type = "list", default = {} },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name" },
    replace_on = { "name" },
    delete_first = true, -- the name is the alarm's identity in its region
  },
  diff = common.diff({ "name" }, { alarm_actions = same, ok_actions = same,
    insufficient_data_actions = same }),
  create = function(ctx, p)
    check(ctx, p)
    local existing = find(ctx, p.name)
    if existing then
      -- PutMetricAlarm would overwrite it: only this create's own (its token) is taken
      common.claim(ctx, ("a CloudWatch alarm named %q in %s"):format(p.name, ctx.region),
        existing.AlarmArn, alarm_tags(ctx, existing.AlarmArn))
    end
    local client = cw(ctx)
    local put = params(p)
    put.Tags = common.tag_list(ctx, p.tags)
    client:PutMetricAlarm(put)
    if existing then
      -- this create's alarm (a retried call): PutMetricAlarm ignored the tags
      local set = common.tag_delta(common.user_tags(alarm_tags(ctx, existing.AlarmArn)), p.tags)
      if #set > 0 then client:TagResource{ ResourceARN = existing.AlarmArn, Tags = set } end
    end
    -- The ARN is the one found, or the documented form: PutMetricAlarm answers nothing, and
    -- describing the new alarm would cost a call (and wait out DescribeAlarms' eventual
    -- consistency) for what is known already.
    local arn = existing and existing.AlarmArn or ctx:arn("cloudwatch", "alarm:" .. p.name)
    if arn then return p.name, { arn = arn, name = p.name } end
    local a = common.poll(ctx, ("alarm %s listed by DescribeAlarms"):format(p.name), 120,
      function() return find(ctx, p.name) end)
    return p.name, outputs(a)
  end,
  read = function(ctx, name, props)
    -- in a refresh, one DescribeAlarms names the alarms read at once
    -- and its tags at the same time, by the ARN the alarm has (one call's time, not two)
    local arn = ctx:arn("cloudwatch", "alarm:" .. name)
    local got = common.together{ function()
      return common.batched(ctx, "cloudwatch.DescribeAlarms", name, function(names)
        return common.index_by(cw(ctx):DescribeAlarms{ AlarmNames = names,
          AlarmTypes = { "MetricAlarm" }, MaxRecords = 100 }.MetricAlarms, "AlarmName")
      end, function(n) return find(ctx, n) end)
    end, function() return arn and alarm_tags(ctx, arn) end }
    local a, tags = got[1], got[2]
    if not a then return nil end
    if a.AlarmArn ~= arn then tags = alarm_tags(ctx, a.AlarmArn) end
    local o = observed(a, props)
    o.tags = common.user_tags(tags)
    return outputs(a), o
  end,
  update = function(ctx, name, old, new, outs)
    check(ctx, new)
    local client = cw(ctx)
    local config_changed = false
    for k in pairs(new) do
      if k ~= "tags" and not common.deep_equal(old[k], new[k]) then config_changed = true end
    end
    for k in pairs(old) do
      if k ~= "tags" and new[k] == nil then config_changed = true end
    end
    if config_changed then client:PutMetricAlarm(params(new)) end
    local set, del = common.tag_delta(old.tags, new.tags)
    if #set > 0 then client:TagResource{ ResourceARN = outs.arn, Tags = set } end
    if #del > 0 then client:UntagResource{ ResourceARN = outs.arn, TagKeys = del } end
    return outs
  end,
  delete = function(ctx, name)
    -- DeleteAlarms ignores names that match no alarm: "already gone" is success.
    cw(ctx):DeleteAlarms{ AlarmNames = { name } }
  end,
  adopt = function(ctx, p)
    local a = find(ctx, p.name)
    if a and not ctx.known_ids[a.AlarmName] and ctx:owns(alarm_tags(ctx, a.AlarmArn)) then
      return a.AlarmName, outputs(a)
    end
    return nil
  end,
})
