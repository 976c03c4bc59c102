-- CloudWatch (regional): metric alarms (PutMetricAlarm's checks, DescribeAlarms' filters
-- and paging, DeleteAlarms, SetAlarmState with its actions), alarm tags, and
-- GetMetricData, GetMetricStatistics and ListMetrics over the datapoints the simulator
-- records (Route 53's HealthCheckStatus from the failover model, the services' own
-- metrics from fo.sim.metrics_plane, custom metrics from PutMetricData). Evaluation and
-- notifications: fo.sim.metrics; the clock that runs evaluations: fo.sim.failover.
local metrics = require "fo.sim.metrics"
local records = require "fo.sim.records"
local crypto = require "fo.crypto"

local M = {}

-- The members of MetricAlarm (DescribeAlarms answers exactly these).
local OUTPUT = { "AlarmName", "AlarmArn", "AlarmDescription",
  "AlarmConfigurationUpdatedTimestamp", "ActionsEnabled", "OKActions", "AlarmActions",
  "InsufficientDataActions", "StateValue", "StateReason", "StateReasonData",
  "StateUpdatedTimestamp", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
  "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
  "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
  "ThresholdMetricId" }
local TREAT = { breaching = true, notBreaching = true, ignore = true, missing = true }

local copy = records.copy

local function failover()
  return require "fo.sim.failover"
end

local function validation(ctx, msg)
  ctx:fail("ValidationError", msg, 400)
end

local function output(a)
  local o = {}
  for _, k in ipairs(OUTPUT) do o[k] = copy(a[k]) end
  return o
end

-- Action ARNs: SNS topics (and Auto Scaling / EC2 / SSM actions) of the alarm's own
-- region. CloudWatch checks the syntax and the region, not that the topic exists.
local function check_actions(ctx, list)
  for _, arn in ipairs(list or {}) do
    local service, region = arn:match("^arn:aws[%w%-]*:([%w%-]+):([%w%-]*):")
    if not service then validation(ctx, ("Invalid arn syntax: %s"):format(arn)) end
    if region ~= ctx.region and region ~= "" then
      validation(ctx, ("Invalid region %s specified. Only %s is supported."):format(region,
        ctx.region))
    end
  end
end

local function check_alarm(ctx, p)
  if p.Metrics then
    for _, k in ipairs{ "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
        "Dimensions", "Period", "Unit" } do
      if p[k] ~= nil then
        ctx:fail("InvalidParameterCombination", ("The parameter %s cannot be specified when "
          .. "Metrics is specified."):format(k), 400)
      end
    end
  else
    for _, k in ipairs{ "MetricName", "Namespace", "Period" } do
      if p[k] == nil then
        ctx:fail("MissingParameter", ("The parameter %s is required."):format(k), 400)
      end
    end
    if p.Statistic and p.ExtendedStatistic then
      ctx:fail("InvalidParameterCombination", "Only one of Statistic or ExtendedStatistic "
        .. "may be specified.", 400)
    end
    if not p.Statistic and not p.ExtendedStatistic then
      ctx:fail("MissingParameter", "One of Statistic or ExtendedStatistic must be specified.", 400)
    end
    if p.ExtendedStatistic and not p.ExtendedStatistic:match("^p%d%d?%.?%d*$")
        and p.ExtendedStatistic ~= "p100" then
      validation(ctx, ("Invalid extended statistic: %s"):format(p.ExtendedStatistic))
    end
    local P = p.Period
    if not (P == 10 or P == 20 or P == 30 or (P >= 60 and P % 60 == 0)) then
      validation(ctx, ("The parameter Period must be 10, 20, 30, or a multiple of 60 (got %d).")
        :format(P))
    end
    local limit = P < 3600 and 86400 or 604800
    if P * p.EvaluationPeriods > limit then
      validation(ctx, ("Metrics cannot be checked across more than a %s (EvaluationPeriods * "
        .. "Period must be <= %d)"):format(limit == 86400 and "day" or "week", limit))
    end
  end
  if p.Threshold == nil and not p.ThresholdMetricId then
    ctx:fail("MissingParameter", "The parameter Threshold is required.", 400)
  end
  if p.DatapointsToAlarm and p.DatapointsToAlarm > p.EvaluationPeriods then
    validation(ctx, "DatapointsToAlarm must be less than or equal to EvaluationPeriods")
  end
  if p.TreatMissingData and not TREAT[p.TreatMissingData] then
    validation(ctx, ("TreatMissingData must be one of [breaching, notBreaching, ignore, "
      .. "missing], got %s"):format(p.TreatMissingData))
  end
  if not metrics.COMPARISONS[p.ComparisonOperator] and not p.ThresholdMetricId then
    validation(ctx, ("ComparisonOperator %s requires ThresholdMetricId"):format(p.ComparisonOperator))
  end
  check_actions(ctx, p.AlarmActions)
  check_actions(ctx, p.OKActions)
  check_actions(ctx, p.InsufficientDataActions)
end

-- PutMetricAlarm creates or replaces an alarm's configuration. An update leaves the state
-- as it is and ignores Tags (API reference); a new alarm starts INSUFFICIENT_DATA.
function M.PutMetricAlarm(ctx, p)
  local db = metrics.tables(ctx.db)
  check_alarm(ctx, p)
  local a, new = metrics.store_alarm(db, p, ctx:arn("alarm:" .. p.AlarmName), ctx:now())
  if new then ctx:created(a) end
  failover().arm(ctx.sim)
  return {}
end

-- Page tokens name the first alarm of the next page (base64, so clients treat them as
-- opaque): deleting alarms between pages skips or repeats nothing.
local function token_of(name) return crypto.base64_encode("alarms:" .. name) end
local function start_of(ctx, tok)
  if tok == nil then return nil end
  local ok, raw = pcall(crypto.base64_decode, tok)
  local name = ok and raw and raw:match("^alarms:(.+)$")
  if not name then ctx:fail("InvalidNextToken", "The service cannot complete the request "
    .. "because the next token is not valid.", 400) end
  return name
end

function M.DescribeAlarms(ctx, p)
  local db = metrics.tables(ctx.db)
  if p.AlarmNames and p.AlarmNamePrefix then
    ctx:fail("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be "
      .. "specified together.", 400)
  end
  local want_metric = true
  if p.AlarmTypes then
    want_metric = false
    for _, t in ipairs(p.AlarmTypes) do if t == "MetricAlarm" then want_metric = true end end
  end
  local names
  if p.AlarmNames then
    names = {}
    for _, n in ipairs(p.AlarmNames) do names[n] = true end
  end
  local list = {}
  if want_metric and not p.ChildrenOfAlarmName and not p.ParentsOfAlarmName then
    for name, a in pairs(db.alarms) do
      local keep = (not names or names[name])
        and (not p.AlarmNamePrefix or name:sub(1, #p.AlarmNamePrefix) == p.AlarmNamePrefix)
        and (not p.StateValue or a.StateValue == p.StateValue) and not ctx:fresh(a)
      if keep and p.ActionPrefix then
        keep = false
        for _, k in ipairs{ "AlarmActions", "OKActions", "InsufficientDataActions" } do
          for _, arn in ipairs(a[k] or {}) do
            if arn:sub(1, #p.ActionPrefix) == p.ActionPrefix then keep = true end
          end
        end
      end
      if keep then list[#list + 1] = a end
    end
  end
  table.sort(list, function(x, y) return x.AlarmName < y.AlarmName end)
  local max = p.MaxRecords or 50
  local from = start_of(ctx, p.NextToken)
  local out = { MetricAlarms = {}, CompositeAlarms = {} }
  for _, a in ipairs(list) do
    if not from or a.AlarmName >= from then
      if #out.MetricAlarms == max then out.NextToken = token_of(a.AlarmName) break end
      out.MetricAlarms[#out.MetricAlarms + 1] = output(a)
    end
  end
  return out
end

-- Names that match no alarm are ignored; the others are still deleted (API reference).
function M.DeleteAlarms(ctx, p)
  local db = metrics.tables(ctx.db)
  for _, n in ipairs(p.AlarmNames) do db.alarms[n] = nil end
  return {}
end

local function alarm_of(ctx, db, name)
  local a = db.alarms[name]
  if not a then
    ctx:fail("ResourceNotFound", ("Alarm %s does not exist."):format(name), 404)
  end
  return a
end

-- SetAlarmState changes the state and runs the new state's actions as a real transition
-- would; the next evaluation puts the alarm back where its data says.
function M.SetAlarmState(ctx, p)
  local db = metrics.tables(ctx.db)
  local a = alarm_of(ctx, db, p.AlarmName)
  if p.StateReasonData and not pcall(require("cjson").decode, p.StateReasonData) then
    ctx:fail("InvalidFormat", "StateReasonData is not valid JSON.", 400)
  end
  metrics.set_state(ctx, a, p.StateValue, p.StateReason, p.StateReasonData, ctx:now())
  return {}
end

-------------------------------------------------------------------------------
-- Tags

local function tagged(ctx, db, arn)
  local region, account, name = arn:match("^arn:aws:cloudwatch:([%w%-]+):(%d+):alarm:(.+)$")
  if not region then
    ctx:fail("InvalidParameterValue", ("Invalid ARN: %s"):format(arn), 400)
  end
  local a = region == ctx.region and account == ctx.account and db.alarms[name]
  if not a then
    ctx:fail("ResourceNotFoundException", ("The specified resource %s does not exist."):format(arn), 404)
  end
  return a
end

function M.TagResource(ctx, p)
  local db = metrics.tables(ctx.db)
  local a = tagged(ctx, db, p.ResourceARN)
  local tags = copy(a.tags or {})
  for _, t in ipairs(p.Tags) do tags[t.Key] = t.Value end
  local n = 0
  for _ in pairs(tags) do n = n + 1 end
  if n > 50 then
    ctx:fail("InvalidParameterValue", "A resource can have at most 50 tags.", 400)
  end
  a.tags = tags
  return {}
end

function M.UntagResource(ctx, p)
  local db = metrics.tables(ctx.db)
  local a = tagged(ctx, db, p.ResourceARN)
  for _, k in ipairs(p.TagKeys) do a.tags[k] = nil end
  return {}
end

function M.ListTagsForResource(ctx, p)
  local db = metrics.tables(ctx.db)
  local a = tagged(ctx, db, p.ResourceARN)
  local keys = {}
  for k in pairs(a.tags or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = { Key = k, Value = a.tags[k] } end
  return { Tags = out }
end

-------------------------------------------------------------------------------
-- GetMetricData

function M.GetMetricData(ctx, p)
  local db = metrics.tables(ctx.db)
  if p.StartTime >= p.EndTime then
    validation(ctx, "The parameter StartTime must be less than the parameter EndTime.")
  end
  local seen, results = {}, {}
  for i, q in ipairs(p.MetricDataQueries) do
    if not q.Id:match("^[a-z][%w_]*$") then
      validation(ctx, ("The value %s for parameter MetricDataQueries.member.%d.Id is not valid.")
        :format(q.Id, i))
    end
    if seen[q.Id] then
      validation(ctx, ("The values for parameter id in MetricDataQueries are not unique."))
    end
    seen[q.Id] = true
    if (q.MetricStat == nil) == (q.Expression == nil) then
      validation(ctx, ("Exactly one element of MetricStat or Expression must be specified in "
        .. "MetricDataQueries.member.%d."):format(i))
    end
    if q.ReturnData ~= false then
      local r = { Id = q.Id, Timestamps = {}, Values = {}, StatusCode = "Complete",
        Messages = {} }
      if q.MetricStat then
        local m = q.MetricStat.Metric
        r.Label = q.Label or m.MetricName
        local ts, vs = metrics.series(db, m.Namespace, m.MetricName, m.Dimensions,
          q.MetricStat.Stat, q.MetricStat.Period, p.StartTime, p.EndTime)
        if p.ScanBy ~= "TimestampAscending" then
          for a, b in ipairs(ts) do r.Timestamps[#ts - a + 1] = b end
          for a, b in ipairs(vs) do r.Values[#vs - a + 1] = b end
        else
          r.Timestamps, r.Values = ts, vs
        end
        if p.MaxDatapoints and #r.Values > p.MaxDatapoints then
          for k = #r.Values, p.MaxDatapoints + 1, -1 do r.Values[k], r.Timestamps[k] = nil, nil end
          r.StatusCode = "PartialData"
        end
      else
        -- Metric math is not evaluated by the simulator: an empty, labelled result.
        r.Label = q.Label or q.Id
        r.Messages = { { Code = "Unsupported",
          Value = "The fo simulator does not evaluate metric math expressions." } }
      end
      results[#results + 1] = r
    end
  end
  return { MetricDataResults = results, Messages = {} }
end

-------------------------------------------------------------------------------
-- ListMetrics, GetMetricStatistics, PutMetricData

-- ListMetrics lists metrics with datapoints in the last two weeks (three hours with
-- RecentlyActive = PT3H), 500 a page (API reference).
local LIST_PAGE, TWO_WEEKS, RECENT = 500, 14 * 86400, 3 * 3600

local function dims_match(dims, filters)
  for _, f in ipairs(filters or {}) do
    local found = false
    for _, d in ipairs(dims) do
      if d.Name == f.Name and (f.Value == nil or d.Value == f.Value) then found = true end
    end
    if not found then return false end
  end
  return true
end

local function list_token(key) return crypto.base64_encode("metrics:" .. key) end

function M.ListMetrics(ctx, p)
  local db = metrics.tables(ctx.db)
  if p.RecentlyActive and p.RecentlyActive ~= "PT3H" then
    validation(ctx, "The parameter RecentlyActive must be PT3H.")
  end
  local since = ctx:now() - (p.RecentlyActive and RECENT or TWO_WEEKS)
  local from
  if p.NextToken then
    local ok, raw = pcall(crypto.base64_decode, p.NextToken)
    from = ok and raw and raw:match("^metrics:(.+)$")
    if not from then
      ctx:fail("InvalidNextToken", "The service cannot complete the request because the next "
        .. "token is not valid.", 400)
    end
  end
  local keys = {}
  for k, m in pairs(db.metrics) do
    local last = m.points[#m.points]
    if (not p.Namespace or m.Namespace == p.Namespace)
        and (not p.MetricName or m.MetricName == p.MetricName)
        and dims_match(m.Dimensions, p.Dimensions) and last and last[1] >= since
        and (not from or k >= from) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  local out = { Metrics = {} }
  for _, k in ipairs(keys) do
    if #out.Metrics == LIST_PAGE then out.NextToken = list_token(k) break end
    local m = db.metrics[k]
    out.Metrics[#out.Metrics + 1] = { Namespace = m.Namespace, MetricName = m.MetricName,
      Dimensions = copy(m.Dimensions) }
  end
  return out
end

local STATISTICS = { SampleCount = true, Average = true, Sum = true, Minimum = true,
  Maximum = true }

-- GetMetricStatistics: a datapoint per period with data, each with the statistics asked
-- for; the metric is matched exactly (namespace, name and every dimension).
function M.GetMetricStatistics(ctx, p)
  local db = metrics.tables(ctx.db)
  if p.StartTime >= p.EndTime then
    validation(ctx, "The parameter StartTime must be less than the parameter EndTime.")
  end
  local stats, ext = p.Statistics or {}, p.ExtendedStatistics or {}
  if #stats == 0 and #ext == 0 then
    ctx:fail("MissingParameter", "Must specify either Statistics or ExtendedStatistics.", 400)
  end
  if #stats > 0 and #ext > 0 then
    ctx:fail("InvalidParameterCombination", "Must specify either Statistics or "
      .. "ExtendedStatistics, but not both.", 400)
  end
  for _, s in ipairs(stats) do
    if not STATISTICS[s] then
      validation(ctx, ("The value %s for parameter Statistics is not valid."):format(s))
    end
  end
  local P = p.Period
  if not (P == 1 or P == 5 or P == 10 or P == 20 or P == 30 or (P >= 60 and P % 60 == 0)) then
    ctx:fail("InvalidParameterValue", "The parameter Period must be a multiple of 60 (or 1, 5, "
      .. "10, 20, 30 for high-resolution metrics).", 400)
  end
  if (p.EndTime - p.StartTime) / P > 1440 then
    ctx:fail("InvalidParameterCombination", "You have requested up to 1,440 datapoints, which "
      .. "exceeds the limit of 1,440. You may reduce the datapoints requested by increasing "
      .. "Period, or decreasing the time range.", 400)
  end
  local m = db.metrics[metrics.key(p.Namespace, p.MetricName, p.Dimensions)]
  local unit = p.Unit or (m and m.Unit) or "None"
  local points = {}
  local t = math.floor(p.StartTime / P) * P
  while m and t < p.EndTime do
    local vals = metrics.values(db, p.Namespace, p.MetricName, p.Dimensions,
      math.max(t, p.StartTime), math.min(t + P, p.EndTime))
    if #vals > 0 then
      local d = { Timestamp = t, Unit = unit }
      for _, s in ipairs(stats) do d[s] = metrics.statistic(vals, s) end
      if #ext > 0 then
        d.ExtendedStatistics = {}
        for _, s in ipairs(ext) do d.ExtendedStatistics[s] = metrics.statistic(vals, s) end
      end
      points[#points + 1] = d
    end
    t = t + P
  end
  return { Label = p.MetricName, Datapoints = points }
end

-- PutMetricData: custom metrics only (the AWS/ namespaces are AWS's own); a datum is a
-- Value, Values (each repeated Counts times) or StatisticValues (stored as their
-- average, SampleCount times at most 1000), stamped Timestamp or now.
function M.PutMetricData(ctx, p)
  local db = metrics.tables(ctx.db)
  if p.Namespace:match("^AWS/") then
    ctx:fail("InvalidParameterValue", ("The value %s for parameter Namespace is invalid.")
      :format(p.Namespace), 400)
  end
  -- botocore 1.43's model no longer requires MetricData (EntityMetricData may carry the
  -- data instead; the simulator keeps no entity data): with neither, AWS's answer.
  if not p.MetricData or #p.MetricData == 0 then
    if p.EntityMetricData and #p.EntityMetricData > 0 then return {} end
    ctx:fail("MissingParameter", "The parameter MetricData is required.", 400)
  end
  if #p.MetricData > 1000 then
    ctx:fail("InvalidParameterValue", "The collection MetricData must not have a size greater "
      .. "than 1000.", 400)
  end
  for i, d in ipairs(p.MetricData) do
    local given = (d.Value ~= nil and 1 or 0) + (d.Values and 1 or 0) + (d.StatisticValues and 1 or 0)
    if given > 1 then
      ctx:fail("InvalidParameterCombination", ("The parameters MetricData.member.%d.Value, "
        .. "MetricData.member.%d.Values and MetricData.member.%d.StatisticValues are mutually "
        .. "exclusive and you have specified more than one."):format(i, i, i), 400)
    end
    if #(d.Dimensions or {}) > 30 then
      ctx:fail("InvalidParameterValue", ("The collection MetricData.member.%d.Dimensions must "
        .. "not have a size greater than 30."):format(i), 400)
    end
    if d.Counts and (not d.Values or #d.Counts ~= #d.Values) then
      ctx:fail("InvalidParameterValue", ("The parameters MetricData.member.%d.Values and "
        .. "MetricData.member.%d.Counts must be of the same size."):format(i, i), 400)
    end
  end
  local now = ctx:now()
  for _, d in ipairs(p.MetricData) do
    local t = d.Timestamp or now
    local function put(v) metrics.put(db, p.Namespace, d.MetricName, d.Dimensions, t, v + 0.0, d.Unit) end
    if d.Values then
      for i, v in ipairs(d.Values) do
        for _ = 1, math.max(1, math.floor(d.Counts and d.Counts[i] or 1)) do put(v) end
      end
    elseif d.StatisticValues then
      local s = d.StatisticValues
      for _ = 1, math.min(1000, math.max(1, math.floor(s.SampleCount))) do put(s.Sum / math.max(s.SampleCount, 1)) end
    elseif d.Value ~= nil then
      put(d.Value)
    end
  end
  return {}
end



-- DescribeAlarmsForMetric: the metric alarms on one metric (namespace and name), narrowed
-- by the statistic, dimensions (the alarm's exact set), period and unit when given. Alarms
-- on metric math (Metrics) are not alarms "for" a metric and are left out.
local function same_dimensions(a, b)
  local function key(list)
    local parts = {}
    for _, d in ipairs(list or {}) do parts[#parts + 1] = d.Name .. "=" .. d.Value end
    table.sort(parts)
    return table.concat(parts, "\n")
  end
  return key(a) == key(b)
end

function M.DescribeAlarmsForMetric(ctx, p)
  local db = metrics.tables(ctx.db)
  local list = {}
  for _, a in pairs(db.alarms) do
    if not ctx:fresh(a) and a.MetricName == p.MetricName and a.Namespace == p.Namespace
        and (p.Statistic == nil or a.Statistic == p.Statistic)
        and (p.ExtendedStatistic == nil or a.ExtendedStatistic == p.ExtendedStatistic)
        and (p.Dimensions == nil or same_dimensions(a.Dimensions, p.Dimensions))
        and (p.Period == nil or a.Period == p.Period)
        and (p.Unit == nil or a.Unit == p.Unit) then
      list[#list + 1] = a
    end
  end
  table.sort(list, function(x, y) return x.AlarmName < y.AlarmName end)
  local out = {}
  for i, a in ipairs(list) do out[i] = output(a) end
  return { MetricAlarms = out }
end

-- DescribeAlarmHistory: the history items the simulator recorded (creation and updates of
-- an alarm, its state changes), newest first unless ScanBy is TimestampAscending, narrowed
-- by alarm name, item type and time; pages of MaxRecords (default 100).
function M.DescribeAlarmHistory(ctx, p)
  local db = metrics.tables(ctx.db)
  local want_metric = true
  if p.AlarmTypes then
    want_metric = false
    for _, t in ipairs(p.AlarmTypes) do if t == "MetricAlarm" then want_metric = true end end
  end
  local list = {}
  for i, h in ipairs(want_metric and db.history or {}) do
    if (not p.AlarmName or h.AlarmName == p.AlarmName)
        and (not p.HistoryItemType or h.HistoryItemType == p.HistoryItemType)
        and (not p.StartDate or h.Timestamp >= p.StartDate)
        and (not p.EndDate or h.Timestamp <= p.EndDate) then
      list[#list + 1] = { i = i, item = h }
    end
  end
  if p.ScanBy ~= "TimestampAscending" then
    table.sort(list, function(a, b) return a.i > b.i end)
  end
  local first = 1
  if p.NextToken then
    first = math.tointeger(tonumber((p.NextToken:match("^h(%d+)$"))))
    if not first then ctx:fail("InvalidNextToken", "The service couldn't process the NextToken.", 400) end
  end
  local max = p.MaxRecords or 100
  local out = { AlarmHistoryItems = {} }
  for j = first, math.min(#list, first + max - 1) do
    out.AlarmHistoryItems[#out.AlarmHistoryItems + 1] = copy(list[j].item)
  end
  if first + max <= #list then out.NextToken = "h" .. (first + max) end
  return out
end

return M
