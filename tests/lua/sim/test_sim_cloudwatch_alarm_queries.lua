-- The simulator's CloudWatch alarm queries beyond DescribeAlarms: DescribeAlarmsForMetric
-- (the alarms on one metric, narrowed by statistic, exact dimensions, period and unit) and
-- DescribeAlarmHistory (creation, updates and state changes, newest first, filters, pages).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"

local function setup()
  local sim = simlib.new{ seed = 12 }
  return sim, sim:client("cloudwatch", { region = "us-east-1", max_attempts = 1 })
end

local function alarm(name, extra)
  local p = { AlarmName = name, Namespace = "AWS/Route53", MetricName = "HealthCheckStatus",
    Dimensions = { { Name = "HealthCheckId", Value = "hc-1" } }, Statistic = "Minimum", Period = 60,
    EvaluationPeriods = 1, Threshold = 1, ComparisonOperator = "LessThanThreshold" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

TestAlarmQueries = {}

function TestAlarmQueries.test_describe_alarms_for_metric()
  local _, cw = setup()
  cw:PutMetricAlarm(alarm("b-hc1"))
  cw:PutMetricAlarm(alarm("a-hc1-avg", { Statistic = "Average", Period = 300 }))
  cw:PutMetricAlarm(alarm("c-hc2", { Dimensions = { { Name = "HealthCheckId", Value = "hc-2" } } }))
  cw:PutMetricAlarm(alarm("d-cpu", { Namespace = "AWS/EC2", MetricName = "CPUUtilization",
    Dimensions = { { Name = "AutoScalingGroupName", Value = "asg" } }, Statistic = "Average",
    ComparisonOperator = "GreaterThanThreshold", Threshold = 80 }))
  local function names(p)
    local out = {}
    for i, a in ipairs(cw:DescribeAlarmsForMetric(p).MetricAlarms) do out[i] = a.AlarmName end
    return out
  end
  local m = { Namespace = "AWS/Route53", MetricName = "HealthCheckStatus" }
  lu.assertEquals(names(m), { "a-hc1-avg", "b-hc1", "c-hc2" })
  lu.assertEquals(names{ Namespace = m.Namespace, MetricName = m.MetricName,
    Dimensions = { { Name = "HealthCheckId", Value = "hc-1" } } }, { "a-hc1-avg", "b-hc1" })
  lu.assertEquals(names{ Namespace = m.Namespace, MetricName = m.MetricName, Statistic = "Minimum" },
    { "b-hc1", "c-hc2" })
  lu.assertEquals(names{ Namespace = m.Namespace, MetricName = m.MetricName, Period = 300 },
    { "a-hc1-avg" })
  lu.assertEquals(names{ Namespace = "AWS/EC2", MetricName = "CPUUtilization" }, { "d-cpu" })
  lu.assertEquals(names{ Namespace = "AWS/EC2", MetricName = "NetworkIn" }, {})
  local a = cw:DescribeAlarmsForMetric(m).MetricAlarms[2]
  lu.assertEquals(a.AlarmArn, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:b-hc1")
  lu.assertEquals(a.StateValue, "INSUFFICIENT_DATA")
end

function TestAlarmQueries.test_describe_alarm_history()
  local sim, cw = setup()
  local cjson = require "cjson"
  cw:PutMetricAlarm(alarm("hc"))
  sim:advance(5)
  cw:PutMetricAlarm(alarm("hc", { EvaluationPeriods = 2 }))
  cw:PutMetricAlarm(alarm("other"))
  sim:advance(5)
  cw:SetAlarmState{ AlarmName = "hc", StateValue = "ALARM", StateReason = "drill" }
  cw:SetAlarmState{ AlarmName = "hc", StateValue = "OK", StateReason = "back" }
  local h = cw:DescribeAlarmHistory{ AlarmName = "hc" }.AlarmHistoryItems
  local summaries = {}
  for i, x in ipairs(h) do summaries[i] = x.HistorySummary end
  lu.assertEquals(summaries, { "Alarm updated from ALARM to OK",
    "Alarm updated from INSUFFICIENT_DATA to ALARM", 'Alarm "hc" updated', 'Alarm "hc" created' })
  lu.assertEquals(h[1].HistoryItemType, "StateUpdate")
  lu.assertEquals(h[1].AlarmType, "MetricAlarm")
  local data = cjson.decode(h[1].HistoryData)
  lu.assertEquals(data.oldState, { stateValue = "ALARM", stateReason = "drill" })
  lu.assertEquals(data.newState.stateValue, "OK")
  lu.assertEquals(data.newState.stateReason, "back")
  lu.assertTrue(h[1].Timestamp >= h[4].Timestamp)
  -- filters: item type, time, order, all alarms; pages
  lu.assertEquals(#cw:DescribeAlarmHistory{ HistoryItemType = "ConfigurationUpdate" }.AlarmHistoryItems, 3)
  local asc = cw:DescribeAlarmHistory{ ScanBy = "TimestampAscending" }.AlarmHistoryItems
  lu.assertEquals(asc[1].HistorySummary, 'Alarm "hc" created')
  lu.assertEquals(#asc, 5)
  local p1 = cw:DescribeAlarmHistory{ MaxRecords = 2 }
  lu.assertEquals(#p1.AlarmHistoryItems, 2)
  local p2 = cw:DescribeAlarmHistory{ MaxRecords = 2, NextToken = p1.NextToken }
  local p3 = cw:DescribeAlarmHistory{ MaxRecords = 2, NextToken = p2.NextToken }
  lu.assertEquals(#p3.AlarmHistoryItems, 1)
  lu.assertNil(p3.NextToken)
  lu.assertEquals(#cw:DescribeAlarmHistory{ AlarmTypes = { "CompositeAlarm" } }.AlarmHistoryItems, 0)
  lu.assertEquals(#cw:DescribeAlarmHistory{ StartDate = h[2].Timestamp - 0.5, AlarmName = "hc",
    HistoryItemType = "StateUpdate" }.AlarmHistoryItems, 2)
end

os.exit(lu.LuaUnit.run())
