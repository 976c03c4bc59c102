-- CloudWatch's data and alarm logic, shared by the CloudWatch handlers and the failover
-- model: recorded datapoints (per metric: namespace, name, dimensions), statistics over
-- periods, metric-alarm evaluation (Period, EvaluationPeriods, DatapointsToAlarm,
-- Threshold, ComparisonOperator, Statistic/ExtendedStatistic, TreatMissingData) and state
-- transitions, which publish AWS's alarm notification JSON to the SNS topics of the new
-- state's actions (same region as the alarm).
--
-- cloudwatch db (per account and region) = {
--   alarms = { [name] = {<MetricAlarm members>, tags = {k → v}, seq =, next_eval =} },
--   metrics = { [key] = {Namespace=, MetricName=, Dimensions=, points = { {t, v}, ... }} },
--   seq = n }
local sns_state = require "fo.sim.sns_state"
local kms_use = require "fo.sim.kms_use"
local records = require "fo.sim.records"

local M = {}

--- Datapoints kept per metric (oldest dropped): two days of 10-second points.
M.MAX_POINTS = 17280

function M.tables(db)
  db.alarms = db.alarms or {}
  db.metrics = db.metrics or {}
  db.seq = db.seq or 0
  return db
end

local copy = records.copy

--- What PutMetricAlarm sets (the configuration; state members are kept on update).
M.ALARM_CONFIG = { "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
  "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic",
  "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
  "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics",
  "ThresholdMetricId" }

--- Stores an alarm as PutMetricAlarm does, in cloudwatch db `db`: a new one (ARN `arn`)
--- starts INSUFFICIENT_DATA with p.Tags; an existing one gets the new configuration and
--- keeps its state and tags (API reference). `p`: PutMetricAlarm's params, already
--- checked. Shared by the CloudWatch handler and the services that own alarms (Auto
--- Scaling's target tracking alarms), so both store the same shape. Returns the stored
--- alarm and true when it is new; the caller re-arms evaluation (fo.sim.failover.arm).
function M.store_alarm(db, p, arn, now)
  M.tables(db)
  local a = db.alarms[p.AlarmName]
  local new = a == nil
  if new then
    db.seq = db.seq + 1
    a = { AlarmName = p.AlarmName, AlarmArn = arn,
      StateValue = "INSUFFICIENT_DATA", StateReason = "Unchecked: Initial alarm creation",
      StateUpdatedTimestamp = now, tags = {}, seq = db.seq }
    for _, t in ipairs(p.Tags or {}) do a.tags[t.Key] = t.Value end
    db.alarms[p.AlarmName] = a
  end
  for _, k in ipairs(M.ALARM_CONFIG) do a[k] = copy(p[k]) end
  if a.ActionsEnabled == nil then a.ActionsEnabled = true end
  a.OKActions = a.OKActions or {}
  a.AlarmActions = a.AlarmActions or {}
  a.InsufficientDataActions = a.InsufficientDataActions or {}
  a.Dimensions = a.Dimensions or (a.MetricName and {} or nil)
  a.AlarmConfigurationUpdatedTimestamp = now
  a.next_eval = M.next_eval(a, now)
  M.add_history(db, a, "ConfigurationUpdate", ('Alarm "%s" %s'):format(a.AlarmName,
    new and "created" or "updated"), require("cjson").encode({ version = "1.0",
      type = new and "Create" or "Update" }), now)
  return a, new
end

local function sorted_dims(dims)
  local d = {}
  for i, x in ipairs(dims or {}) do d[i] = { Name = x.Name, Value = x.Value } end
  table.sort(d, function(a, b) return a.Name < b.Name end)
  return d
end

--- The identity of a metric: namespace, name and dimensions (in any order).
function M.key(ns, name, dims)
  local parts = { ns or "", name or "" }
  for _, d in ipairs(sorted_dims(dims)) do parts[#parts + 1] = d.Name .. "=" .. d.Value end
  return table.concat(parts, "|")
end

--- Records datapoint `value` of a metric at time `t` (points stay in time order); `unit`
--- (optional) is the metric's unit as GetMetricStatistics reports it.
function M.put(db, ns, name, dims, t, value, unit)
  M.tables(db)
  local k = M.key(ns, name, dims)
  local m = db.metrics[k]
  if not m then
    m = { Namespace = ns, MetricName = name, Dimensions = sorted_dims(dims), points = {} }
    db.metrics[k] = m
  end
  if unit then m.Unit = unit end
  local pts = m.points
  local i = #pts
  while i > 0 and pts[i][1] > t do i = i - 1 end
  table.insert(pts, i + 1, { t, value })
  while #pts > M.MAX_POINTS do table.remove(pts, 1) end
end

--- Values of a metric with from <= t < to.
function M.values(db, ns, name, dims, from, to)
  local m = M.tables(db).metrics[M.key(ns, name, dims)]
  local out = {}
  for _, p in ipairs(m and m.points or {}) do
    if p[1] >= from and p[1] < to then out[#out + 1] = p[2] end
  end
  return out
end

--- A statistic of `vals` (nil when there are none): SampleCount, Sum, Average, Minimum,
--- Maximum, or a percentile "pNN" / "pNN.N" (nearest rank).
function M.statistic(vals, stat)
  if #vals == 0 then return nil end
  if stat == "SampleCount" then return #vals + 0.0 end
  local sum, min, max = 0.0, math.huge, -math.huge
  for _, v in ipairs(vals) do
    sum = sum + v
    if v < min then min = v end
    if v > max then max = v end
  end
  if stat == "Sum" then return sum end
  if stat == "Average" then return sum / #vals end
  if stat == "Minimum" then return min + 0.0 end
  if stat == "Maximum" then return max + 0.0 end
  local pct = type(stat) == "string" and tonumber(stat:match("^p(%d+%.?%d*)$"))
  if pct then
    local s = {}
    for i, v in ipairs(vals) do s[i] = v end
    table.sort(s)
    local rank = math.max(1, math.ceil(pct / 100 * #s))
    return s[rank] + 0.0
  end
  return nil
end

--- {timestamps, values} of a metric's `stat` per `period` over [from, to), periods aligned
--- to `period` from the epoch; periods without data are left out (as GetMetricData does).
function M.series(db, ns, name, dims, stat, period, from, to)
  local ts, vs = {}, {}
  local start = math.floor(from / period) * period
  local t = start
  while t < to do
    local v = M.statistic(M.values(db, ns, name, dims, math.max(t, from), math.min(t + period, to)), stat)
    if v then ts[#ts + 1] = t; vs[#vs + 1] = v end
    t = t + period
  end
  return ts, vs
end

-------------------------------------------------------------------------------
-- Alarm evaluation

local CMP = {
  GreaterThanOrEqualToThreshold = { function(v, th) return v >= th end, "greater than or equal to" },
  GreaterThanThreshold = { function(v, th) return v > th end, "greater than" },
  LessThanThreshold = { function(v, th) return v < th end, "less than" },
  LessThanOrEqualToThreshold = { function(v, th) return v <= th end, "less than or equal to" },
}
M.COMPARISONS = CMP

--- The region names alarm notifications use.
M.REGION_NAMES = { ["us-east-1"] = "US East (N. Virginia)", ["us-west-2"] = "US West (Oregon)",
  ["eu-west-1"] = "EU (Ireland)", ["eu-central-1"] = "EU (Frankfurt)",
  ["eu-south-1"] = "EU (Milan)" }

--- How often an alarm is evaluated: every minute, or every Period for the high-resolution
--- periods 10 and 30.
function M.step(alarm)
  local p = alarm.Period or 60
  return p < 60 and p or 60
end

--- The first evaluation time after `now` (aligned to the alarm's step).
function M.next_eval(alarm, now)
  local s = M.step(alarm)
  return (math.floor(now / s) + 1) * s
end

local function fmt_num(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%.1f"):format(v) end
  return ("%.15g"):format(v)
end

local function stamp(t) return os.date("!%d/%m/%y %H:%M:%S", math.floor(t)) end

--- ISO 8601 as CloudWatch writes it in notifications: 2025-01-31T12:00:00.000+0000.
function M.iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. (".%03d+0000"):format(
    math.floor((t - math.floor(t)) * 1000))
end

local function plural(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end

--- Evaluates `alarm` (stored table) against the metrics in `db` at time `now`. Returns the
--- state it should be in, the reason and the reason data (JSON), or nil to keep the
--- current state (TreatMissingData=ignore with no data; metric-math alarms, which the
--- simulator does not evaluate).
function M.evaluate(db, alarm, now)
  if not alarm.MetricName then return nil end
  local P, N = alarm.Period, alarm.EvaluationPeriods
  local need = alarm.DatapointsToAlarm or N
  local stat = alarm.Statistic or alarm.ExtendedStatistic
  local cmp = CMP[alarm.ComparisonOperator]
  if not cmp then return nil end
  local finish = math.floor(now / P) * P
  local breaching, ok, missing, shown, evaluated = 0, 0, 0, {}, {}
  local treat = alarm.TreatMissingData or "missing"
  for k = 1, N do
    local s = finish - k * P
    local v = M.statistic(M.values(db, alarm.Namespace, alarm.MetricName, alarm.Dimensions,
      s, s + P), stat)
    if v == nil then
      missing = missing + 1
      if treat == "breaching" then breaching = breaching + 1
      elseif treat == "notBreaching" then ok = ok + 1 end
    else
      shown[#shown + 1] = ("%s (%s)"):format(fmt_num(v), stamp(s))
      evaluated[#evaluated + 1] = ('{"timestamp":"%s","value":%s}'):format(M.iso(s), fmt_num(v))
      if cmp[1](v, alarm.Threshold) then breaching = breaching + 1 else ok = ok + 1 end
    end
  end
  local data = ('{"version":"1.0","queryDate":"%s","statistic":"%s","period":%d,'
    .. '"threshold":%s,"evaluatedDatapoints":[%s]}'):format(M.iso(now), stat, P,
      fmt_num(alarm.Threshold), table.concat(evaluated, ","))
  local from = alarm.StateValue or "INSUFFICIENT_DATA"
  local present = N - missing
  if breaching >= need then
    local reason
    if present == 0 then
      reason = ("Threshold Crossed: no datapoints were received for %s and %s %s treated as "
        .. "[Breaching]."):format(plural(N, "period"), plural(missing, "missing datapoint"),
          missing == 1 and "was" or "were")
    else
      reason = ("Threshold Crossed: %d out of the last %d datapoints [%s] %s %s the threshold "
        .. "(%s) (minimum %s for %s -> ALARM transition)."):format(breaching, N,
          table.concat(shown, ", "), breaching == 1 and "was" or "were", cmp[2],
          fmt_num(alarm.Threshold), plural(need, "datapoint"), from == "ALARM" and "OK" or from)
    end
    return "ALARM", reason, data
  end
  if breaching + ok == 0 then
    if treat == "ignore" then return nil end
    return "INSUFFICIENT_DATA", ("Insufficient Data: %s %s unknown."):format(
      plural(missing, "datapoint"), missing == 1 and "was" or "were"), data
  end
  return "OK", ("Threshold Crossed: %d out of the last %d datapoints [%s] %s not %s the "
    .. "threshold (%s) (minimum %s for %s -> OK transition)."):format(ok, N,
      table.concat(shown, ", "), ok == 1 and "was" or "were", cmp[2], fmt_num(alarm.Threshold),
      plural(1, "datapoint"), from == "OK" and "ALARM" or from), data
end

-------------------------------------------------------------------------------
-- Notifications

-- A JSON encoder that keeps the member order of AWS's notifications: `fields` is a list
-- of {name, value}; values are strings, numbers, booleans, nil (null), lists (plain Lua
-- arrays) or nested ordered lists marked with `ordered = true`.
local function enc(v)
  local cjson = require "cjson"
  if v == nil then return "null" end
  if type(v) == "string" then return cjson.encode(v) end
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return fmt_num(v)
  end
  if v.ordered then
    local parts = {}
    for _, f in ipairs(v) do parts[#parts + 1] = cjson.encode(f[1]) .. ":" .. enc(f[2]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  local parts = {}
  for i, x in ipairs(v) do parts[i] = enc(x) end
  return "[" .. table.concat(parts, ",") .. "]"
end

--- AWS's alarm notification (the SNS Message of an alarm action) for a transition.
function M.notification(alarm, old, account, region, now)
  local dims = {}
  for i, d in ipairs(alarm.Dimensions or {}) do
    dims[i] = { ordered = true, { "value", d.Value }, { "name", d.Name } }
  end
  local trigger = { ordered = true,
    { "MetricName", alarm.MetricName }, { "Namespace", alarm.Namespace },
    { "StatisticType", alarm.ExtendedStatistic and "ExtendedStatistic" or "Statistic" },
    { "Statistic", alarm.ExtendedStatistic or (alarm.Statistic or ""):upper() },
    { "Unit", alarm.Unit }, { "Dimensions", dims }, { "Period", alarm.Period },
    { "EvaluationPeriods", alarm.EvaluationPeriods },
    { "DatapointsToAlarm", alarm.DatapointsToAlarm or alarm.EvaluationPeriods },
    { "ComparisonOperator", alarm.ComparisonOperator }, { "Threshold", alarm.Threshold + 0.0 },
    { "TreatMissingData", alarm.TreatMissingData or "missing" },
    { "EvaluateLowSampleCountPercentile", alarm.EvaluateLowSampleCountPercentile or "" } }
  return enc{ ordered = true,
    { "AlarmName", alarm.AlarmName }, { "AlarmDescription", alarm.AlarmDescription },
    { "AWSAccountId", account },
    { "AlarmConfigurationUpdatedTimestamp", M.iso(alarm.AlarmConfigurationUpdatedTimestamp) },
    { "NewStateValue", alarm.StateValue }, { "NewStateReason", alarm.StateReason },
    { "StateChangeTime", M.iso(now) }, { "Region", M.REGION_NAMES[region] or region },
    { "AlarmArn", alarm.AlarmArn }, { "OldStateValue", old },
    { "OKActions", alarm.OKActions or {} }, { "AlarmActions", alarm.AlarmActions or {} },
    { "InsufficientDataActions", alarm.InsufficientDataActions or {} },
    { "Trigger", trigger } }
end

local ACTIONS = { ALARM = "AlarmActions", OK = "OKActions",
  INSUFFICIENT_DATA = "InsufficientDataActions" }

-- Alarm history (DescribeAlarmHistory): db.history, oldest first, at most HISTORY_MAX
-- items (AWS keeps two weeks of it; the simulator keeps the latest items instead).
M.HISTORY_MAX = 1000

--- Appends an AlarmHistoryItem to cloudwatch db `db`.
function M.add_history(db, alarm, kind, summary, data, now)
  db.history = db.history or {}
  db.history[#db.history + 1] = { AlarmName = alarm.AlarmName, AlarmType = "MetricAlarm",
    HistoryItemType = kind, HistorySummary = summary, HistoryData = data, Timestamp = now }
  if #db.history > M.HISTORY_MAX then table.remove(db.history, 1) end
end

--- Whether CloudWatch may publish `alarm`'s notification to `topic` (in `account` and
--- `region`): an encrypted topic needs kms:GenerateDataKey and kms:Decrypt on its key for
--- the service principal cloudwatch.amazonaws.com (never so for alias/aws/sns, whose policy
--- names only the account's own callers through SNS). On a refusal the action fails: no
--- message, and an Action item in the alarm history with the error as AWS records it.
function M.topic_key_usable(ctx, alarm, topic, account, region, now)
  local key = sns_state.kms_key(topic)
  if not key then return true end
  -- the key is the topic's: found in the topic's account and region
  local kctx = setmetatable({ account = account, region = region }, { __index = ctx })
  for _, action in ipairs{ "kms:GenerateDataKey", "kms:Decrypt" } do
    local ok, _, _, status, kms_code = kms_use.use(kctx, { key = key, action = action,
      service = "sns.amazonaws.com", caller = "cloudwatch.amazonaws.com",
      context = { ["aws:sns:topicArn"] = topic.TopicArn },
      source_arn = alarm.AlarmArn, source_account = ctx.account })
    if not ok then
      local err = ("null (Service: AWSKMS; Status Code: %d; Error Code: %s; Request ID: %s; "
        .. "Proxy: null)"):format(status, kms_code, sns_state.uuid(ctx))
      local cjson = require "cjson"
      M.add_history(ctx.sim.store:db(ctx.account, ctx.region, "cloudwatch"), alarm, "Action",
        ("Failed to execute action %s. Received error: \"%s\""):format(topic.TopicArn, err),
        cjson.encode({ actionState = "Failed", stateUpdateTimestamp = now,
          notificationResource = topic.TopicArn, error = err }), now)
      return false
    end
  end
  return true
end

--- Puts `alarm` (stored in the cloudwatch db of ctx's account and region) in `state`;
--- on a change of state, runs the new state's actions: each SNS topic that exists gets
--- AWS's notification (subject 'ALARM: "name" in Region'). Returns true when the state
--- changed.
function M.set_state(ctx, alarm, state, reason, data, now)
  local old = alarm.StateValue
  alarm.StateReason, alarm.StateReasonData = reason, data
  if old == state then return false end
  local old_reason = alarm.history_reason
  alarm.StateValue = state
  alarm.StateUpdatedTimestamp = now
  alarm.history_reason = reason
  do
    local cjson = require "cjson"
    local new_state = { stateValue = state, stateReason = reason }
    local ok, decoded = pcall(cjson.decode, data or "")
    if ok and type(decoded) == "table" then new_state.stateReasonData = decoded end
    M.add_history(ctx.sim.store:db(ctx.account, ctx.region, "cloudwatch"), alarm, "StateUpdate",
      ("Alarm updated from %s to %s"):format(old, state), cjson.encode({ version = "1.0",
        oldState = { stateValue = old, stateReason = old_reason
          or "Unchecked: Initial alarm creation" }, newState = new_state }), now)
  end
  if alarm.ActionsEnabled == false then return true end
  local message = M.notification(alarm, old, ctx.account, ctx.region, now)
  local region_name = M.REGION_NAMES[ctx.region] or ctx.region
  local subject = ('%s: "%s" in %s'):format(state, alarm.AlarmName, region_name)
  if #subject > 100 then subject = subject:sub(1, 100) end
  for _, arn in ipairs(alarm[ACTIONS[state]] or {}) do
    local region, account = sns_state.parse_arn(arn)
    if region then
      local sdb = sns_state.tables(ctx.sim.store:db(account, region, "sns"))
      local topic = sdb.topics[arn]
      -- A missing topic: the action fails (CloudWatch records it in the alarm history).
      if topic and M.topic_key_usable(ctx, alarm, topic, account, region, now) then
        sns_state.publish(sdb, topic, { Message = message, Subject = subject },
          sns_state.uuid(ctx), now)
      end
    end
  end
  return true
end

--- Evaluates every alarm of the db that is due at `now` (their next_eval), applying
--- transitions. ctx: a cloudwatch ctx of the db's account and region.
function M.run_alarms(ctx, db, now)
  M.tables(db)
  local names = {}
  for name in pairs(db.alarms) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local a = db.alarms[name]
    if a and a.next_eval and a.next_eval <= now then
      local state, reason, data = M.evaluate(db, a, a.next_eval)
      if state then M.set_state(ctx, a, state, reason, data, a.next_eval) end
      a.next_eval = a.next_eval + M.step(a)
    end
  end
end

return M
