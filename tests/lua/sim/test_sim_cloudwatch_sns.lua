-- The simulator's SNS and CloudWatch through fo's clients over the in-process wire:
-- topics (idempotent by name, attribute set, default policy, SetTopicAttributes names),
-- subscriptions, tags, Publish with message attributes and its recorded deliveries;
-- metric alarms (PutMetricAlarm checks, DescribeAlarms filters and paging, DeleteAlarms,
-- SetAlarmState and its notification, evaluation with TreatMissingData and M of N), tags,
-- GetMetricData.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local metrics = require "fo.sim.metrics"
local aws = fo.aws
local cjson = require "cjson"

local B = math.ceil(os.time() / 60) * 60 + 60
local REGION = "eu-south-1"

local function setup(region)
  local sim = simlib.new{ seed = 11, time = function() return B end }
  region = region or REGION
  return sim, sim:client("sns", { region = region, max_attempts = 1 }),
    sim:client("cloudwatch", { region = region, max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

TestSns = {}

function TestSns.test_create_topic_idempotent_and_attributes()
  local _, sns = setup()
  local arn = sns:CreateTopic{ Name = "sns-failover-primary", Attributes = { DisplayName = "Failover",
    KmsMasterKeyId = "alias/aws/sns" }, Tags = { { Key = "FailoverRole", Value = "Primary" } } }.TopicArn
  lu.assertEquals(arn, "arn:aws:sns:eu-south-1:123456789012:sns-failover-primary")
  -- the same request again: the same topic
  lu.assertEquals(sns:CreateTopic{ Name = "sns-failover-primary", Attributes = {
    DisplayName = "Failover" } }.TopicArn, arn)
  local e = err_of(sns.CreateTopic, sns, { Name = "sns-failover-primary",
    Attributes = { DisplayName = "Other" } })
  lu.assertEquals(e.code, "InvalidParameter")
  lu.assertEquals(e.message, "Invalid parameter: Attributes Reason: Topic already exists with different attributes")
  e = err_of(sns.CreateTopic, sns, { Name = "sns-failover-primary",
    Tags = { { Key = "FailoverRole", Value = "Standby" } } })
  lu.assertStrContains(e.message, "Topic already exists with different tags")
  local a = sns:GetTopicAttributes{ TopicArn = arn }.Attributes
  lu.assertEquals(a.TopicArn, arn)
  lu.assertEquals(a.Owner, "123456789012")
  lu.assertEquals(a.DisplayName, "Failover")
  lu.assertEquals(a.KmsMasterKeyId, "alias/aws/sns")
  lu.assertEquals(a.SubscriptionsConfirmed, "0")
  lu.assertEquals(a.SubscriptionsPending, "0")
  lu.assertEquals(a.SubscriptionsDeleted, "0")
  local policy = cjson.decode(a.Policy)
  lu.assertEquals(policy.Statement[1].Resource, arn)
  lu.assertEquals(cjson.decode(a.EffectiveDeliveryPolicy).http.defaultHealthyRetryPolicy.numRetries, 3)
end

function TestSns.test_topic_names_and_set_attributes()
  local _, sns = setup()
  lu.assertEquals(err_of(sns.CreateTopic, sns, { Name = "bad name" }).code, "InvalidParameter")
  lu.assertEquals(err_of(sns.CreateTopic, sns, { Name = ("x"):rep(257) }).code, "InvalidParameter")
  lu.assertEquals(err_of(sns.CreateTopic, sns, { Name = "orders.fifo" }).code, "InvalidParameter")
  local fifo = sns:CreateTopic{ Name = "orders.fifo", Attributes = { FifoTopic = "true" } }.TopicArn
  lu.assertEquals(sns:GetTopicAttributes{ TopicArn = fifo }.Attributes.FifoTopic, "true")
  local arn = sns:CreateTopic{ Name = "t" }.TopicArn
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName", AttributeValue = "New" }
  lu.assertEquals(sns:GetTopicAttributes{ TopicArn = arn }.Attributes.DisplayName, "New")
  local e = err_of(sns.SetTopicAttributes, sns, { TopicArn = arn, AttributeName = "Colour",
    AttributeValue = "red" })
  lu.assertEquals(e.message, "Invalid parameter: AttributeName")
  e = err_of(sns.GetTopicAttributes, sns, { TopicArn = arn .. "-missing" })
  lu.assertEquals(e.code, "NotFound")
  lu.assertEquals(e.status, 404)
  lu.assertEquals(e.message, "Topic does not exist")
end

function TestSns.test_list_and_delete_topics()
  local _, sns = setup()
  local arns = {}
  for i = 1, 105 do arns[i] = sns:CreateTopic{ Name = "t" .. i }.TopicArn end
  local p1 = sns:ListTopics{}
  lu.assertEquals(#p1.Topics, 100)
  lu.assertNotNil(p1.NextToken)
  local all = {}
  for t in sns:items("ListTopics", {}) do all[#all + 1] = t.TopicArn end
  lu.assertEquals(all, arns)
  sns:DeleteTopic{ TopicArn = arns[1] }
  sns:DeleteTopic{ TopicArn = arns[1] } -- idempotent
  lu.assertEquals(#sns:ListTopics{ NextToken = p1.NextToken }.Topics, 5)
  lu.assertEquals(err_of(sns.ListTopics, sns, { NextToken = "garbage" }).code, "InvalidParameter")
end

function TestSns.test_subscriptions()
  local _, sns = setup()
  local arn = sns:CreateTopic{ Name = "t" }.TopicArn
  lu.assertEquals(sns:Subscribe{ TopicArn = arn, Protocol = "email",
    Endpoint = "oncall@example.com" }.SubscriptionArn, "pending confirmation")
  local sqs = sns:Subscribe{ TopicArn = arn, Protocol = "sqs",
    Endpoint = "arn:aws:sqs:eu-south-1:123456789012:ops" }.SubscriptionArn
  lu.assertStrMatches(sqs, arn:gsub("%-", "%%-") .. ":%x+%-%x+%-%x+%-%x+%-%x+")
  -- subscribing again gives the same subscription
  lu.assertEquals(sns:Subscribe{ TopicArn = arn, Protocol = "sqs",
    Endpoint = "arn:aws:sqs:eu-south-1:123456789012:ops" }.SubscriptionArn, sqs)
  local full = sns:Subscribe{ TopicArn = arn, Protocol = "https", Endpoint = "https://hooks.example.com/x",
    ReturnSubscriptionArn = true }.SubscriptionArn
  lu.assertStrContains(full, arn .. ":")
  local subs = sns:ListSubscriptionsByTopic{ TopicArn = arn }.Subscriptions
  lu.assertEquals(#subs, 3)
  lu.assertEquals(subs[1].SubscriptionArn, "PendingConfirmation")
  lu.assertEquals(subs[1].Protocol, "email")
  lu.assertEquals(subs[2].SubscriptionArn, sqs)
  lu.assertEquals(subs[2].Owner, "123456789012")
  local a = sns:GetTopicAttributes{ TopicArn = arn }.Attributes
  lu.assertEquals(a.SubscriptionsConfirmed, "1")
  lu.assertEquals(a.SubscriptionsPending, "2")
  sns:Unsubscribe{ SubscriptionArn = sqs }
  lu.assertEquals(sns:GetTopicAttributes{ TopicArn = arn }.Attributes.SubscriptionsDeleted, "1")
  lu.assertEquals(err_of(sns.Unsubscribe, sns, { SubscriptionArn = sqs }).code, "NotFound")
  lu.assertEquals(err_of(sns.Subscribe, sns, { TopicArn = arn, Protocol = "email",
    Endpoint = "not-an-address" }).message, "Invalid parameter: Email address")
  lu.assertEquals(err_of(sns.Subscribe, sns, { TopicArn = arn, Protocol = "sqs",
    Endpoint = "queue" }).message, "Invalid parameter: SQS endpoint ARN")
  lu.assertEquals(err_of(sns.Subscribe, sns, { TopicArn = arn, Protocol = "email",
    Endpoint = "a@example.com", Attributes = { FilterPolicy = "{not json" } }).code, "InvalidParameter")
end

-- GetSubscriptionAttributes: a subscription by its ARN, pending ones too (as AWS gives
-- them with ReturnSubscriptionArn), every value a string, SNS's defaults filled in.
function TestSns.test_subscription_attributes()
  local sim, sns = setup()
  local arn = sns:CreateTopic{ Name = "subs" }.TopicArn
  local sqs = sns:Subscribe{ TopicArn = arn, Protocol = "sqs", ReturnSubscriptionArn = true,
    Endpoint = "arn:aws:sqs:eu-south-1:123456789012:ops",
    Attributes = { FilterPolicy = '{"a":["b"]}' } }.SubscriptionArn
  lu.assertEquals(sns:GetSubscriptionAttributes{ SubscriptionArn = sqs }.Attributes, {
    SubscriptionArn = sqs, TopicArn = arn, Owner = "123456789012", Protocol = "sqs",
    Endpoint = "arn:aws:sqs:eu-south-1:123456789012:ops", PendingConfirmation = "false",
    ConfirmationWasAuthenticated = "true", RawMessageDelivery = "false",
    FilterPolicy = '{"a":["b"]}', FilterPolicyScope = "MessageAttributes" })
  local mail = sns:Subscribe{ TopicArn = arn, Protocol = "email", Endpoint = "a@example.com",
    ReturnSubscriptionArn = true }.SubscriptionArn
  local a = sns:GetSubscriptionAttributes{ SubscriptionArn = mail }.Attributes
  lu.assertEquals({ a.PendingConfirmation, a.ConfirmationWasAuthenticated, a.Protocol },
    { "true", "false", "email" })
  sns:Unsubscribe{ SubscriptionArn = sqs }
  local e = err_of(sns.GetSubscriptionAttributes, sns, { SubscriptionArn = sqs })
  lu.assertEquals({ e.code, e.message }, { "NotFound", "Subscription does not exist" })
  lu.assertEquals(err_of(sns.GetSubscriptionAttributes, sns, { SubscriptionArn = "subs" }).code,
    "InvalidParameter")
  -- another region's subscription is not this region's
  local other = sim:client("sns", { region = "eu-west-1", max_attempts = 1 })
  lu.assertEquals(err_of(other.GetSubscriptionAttributes, other, { SubscriptionArn = mail }).code,
    "NotFound")
end

function TestSns.test_tags()
  local _, sns = setup()
  local arn = sns:CreateTopic{ Name = "t", Tags = { { Key = "a", Value = "1" } } }.TopicArn
  sns:TagResource{ ResourceArn = arn, Tags = { { Key = "Environment", Value = "Production" },
    { Key = "Obsolete", Value = "x" } } }
  sns:UntagResource{ ResourceArn = arn, TagKeys = { "Obsolete" } }
  lu.assertEquals(sns:ListTagsForResource{ ResourceArn = arn }.Tags, {
    { Key = "Environment", Value = "Production" }, { Key = "a", Value = "1" } })
  local e = err_of(sns.ListTagsForResource, sns, { ResourceArn = arn .. "x" })
  lu.assertEquals(e.code, "ResourceNotFound")
end

function TestSns.test_publish_records_deliveries()
  local sim, sns = setup()
  local arn = sns:CreateTopic{ Name = "t" }.TopicArn
  sns:Subscribe{ TopicArn = arn, Protocol = "email", Endpoint = "pending@example.com" }
  local sub = sns:Subscribe{ TopicArn = arn, Protocol = "lambda",
    Endpoint = "arn:aws:lambda:eu-south-1:123456789012:function:notify" }.SubscriptionArn
  local out = sns:Publish{ TopicArn = arn, Subject = "Failover: primary unhealthy",
    Message = "traffic -> eu-central-1", MessageAttributes = {
      severity = { DataType = "String", StringValue = "critical" },
      payload = { DataType = "Binary", BinaryValue = "\1\2bin" } } }
  lu.assertStrMatches(out.MessageId, "%x+%-%x+%-4%x+%-%x+%-%x+")
  local d = sim:deliveries(arn)
  lu.assertEquals(#d, 1)
  lu.assertEquals(d[1].MessageId, out.MessageId)
  lu.assertEquals(d[1].Subject, "Failover: primary unhealthy")
  lu.assertEquals(d[1].Message, "traffic -> eu-central-1")
  lu.assertEquals(d[1].Timestamp, B)
  lu.assertEquals(d[1].MessageAttributes.severity, { DataType = "String", StringValue = "critical" })
  lu.assertEquals(fo.crypto.base64_decode(d[1].MessageAttributes.payload.BinaryValue), "\1\2bin")
  -- only the confirmed subscription receives it
  lu.assertEquals(d[1].Deliveries, { { SubscriptionArn = sub, Protocol = "lambda",
    Endpoint = "arn:aws:lambda:eu-south-1:123456789012:function:notify" } })
  local e = err_of(sns.Publish, sns, { TopicArn = arn .. "-gone", Message = "x" })
  lu.assertEquals(e.code, "NotFound")
  e = err_of(sns.Publish, sns, { TopicArn = arn, Message = "x", MessageAttributes = {
    n = { DataType = "Number", StringValue = "abc" } } })
  lu.assertEquals(e.code, "InvalidParameter")
  e = err_of(sns.Publish, sns, { TopicArn = arn, Message = "x", MessageAttributes = {
    s = { DataType = "String" } } })
  lu.assertStrContains(e.message, "must contain non-empty message attribute value")
  e = err_of(sns.Publish, sns, { TopicArn = arn, Message = '{"email":"x"}', MessageStructure = "json" })
  lu.assertStrContains(e.message, "No default entry in JSON message body")
end

TestCloudWatch = {}

local function alarm(extra)
  local p = { AlarmName = "alarm-hc", Namespace = "AWS/Route53", MetricName = "HealthCheckStatus",
    Dimensions = { { Name = "HealthCheckId", Value = "hc-1" } }, Statistic = "Minimum", Period = 60,
    EvaluationPeriods = 1, Threshold = 1, ComparisonOperator = "LessThanThreshold" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

function TestCloudWatch.test_put_and_describe()
  local _, _, cw = setup("us-east-1")
  cw:PutMetricAlarm(alarm{ AlarmDescription = "primary health", Tags = { { Key = "k", Value = "v" } } })
  local a = cw:DescribeAlarms{}.MetricAlarms[1]
  lu.assertEquals(a.AlarmName, "alarm-hc")
  lu.assertEquals(a.AlarmArn, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:alarm-hc")
  lu.assertEquals(a.StateValue, "INSUFFICIENT_DATA")
  lu.assertEquals(a.StateReason, "Unchecked: Initial alarm creation")
  lu.assertTrue(a.ActionsEnabled)
  lu.assertEquals(a.Threshold, 1.0)
  lu.assertEquals(a.Dimensions, { { Name = "HealthCheckId", Value = "hc-1" } })
  lu.assertEquals(a.AlarmConfigurationUpdatedTimestamp, B)
  lu.assertEquals(cw:ListTagsForResource{ ResourceARN = a.AlarmArn }.Tags, { { Key = "k", Value = "v" } })
  -- an update replaces the configuration, keeps state and tags
  cw:PutMetricAlarm(alarm{ EvaluationPeriods = 3, DatapointsToAlarm = 2,
    Tags = { { Key = "ignored", Value = "x" } } })
  a = cw:DescribeAlarms{ AlarmNames = { "alarm-hc" } }.MetricAlarms[1]
  lu.assertEquals(a.EvaluationPeriods, 3)
  lu.assertNil(a.AlarmDescription)
  lu.assertEquals(#cw:ListTagsForResource{ ResourceARN = a.AlarmArn }.Tags, 1)
end

function TestCloudWatch.test_put_validation()
  local _, _, cw = setup("us-east-1")
  local e = err_of(cw.PutMetricAlarm, cw, alarm{ Period = 45 })
  lu.assertEquals(e.code, "ValidationError")
  lu.assertStrContains(e.message, "Period")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ Period = 3600, EvaluationPeriods = 200 })
  lu.assertStrContains(e.message, "EvaluationPeriods * Period")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ Period = 60, EvaluationPeriods = 1441 })
  lu.assertStrContains(e.message, "Metrics cannot be checked across more than a day")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ ExtendedStatistic = "p99" })
  lu.assertEquals(e.code, "InvalidParameterCombination")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ DatapointsToAlarm = 2 })
  lu.assertEquals(e.code, "ValidationError")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ TreatMissingData = "sometimes" })
  lu.assertEquals(e.code, "ValidationError")
  -- an SNS action must be in the alarm's region
  e = err_of(cw.PutMetricAlarm, cw, alarm{ AlarmActions = {
    "arn:aws:sns:eu-south-1:123456789012:sns-failover-primary" } })
  lu.assertEquals(e.code, "ValidationError")
  lu.assertEquals(e.message, "Invalid region eu-south-1 specified. Only us-east-1 is supported.")
  e = err_of(cw.PutMetricAlarm, cw, alarm{ OKActions = { "not-an-arn" } })
  lu.assertStrContains(e.message, "Invalid arn syntax")
  -- high-resolution periods are accepted
  cw:PutMetricAlarm(alarm{ AlarmName = "fast", Period = 10 })
  local pct = alarm{ AlarmName = "p", ExtendedStatistic = "p99.9" }
  pct.Statistic = nil
  cw:PutMetricAlarm(pct)
end

function TestCloudWatch.test_describe_filters_paging_delete()
  local _, _, cw = setup()
  for i = 1, 7 do cw:PutMetricAlarm(alarm{ AlarmName = ("cpu-%02d"):format(i) }) end
  cw:PutMetricAlarm(alarm{ AlarmName = "mem-01", AlarmActions = {
    "arn:aws:sns:eu-south-1:123456789012:ops" } })
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNamePrefix = "cpu-" }.MetricAlarms, 7)
  lu.assertEquals(#cw:DescribeAlarms{ StateValue = "ALARM" }.MetricAlarms, 0)
  lu.assertEquals(#cw:DescribeAlarms{ StateValue = "INSUFFICIENT_DATA" }.MetricAlarms, 8)
  lu.assertEquals(cw:DescribeAlarms{ ActionPrefix = "arn:aws:sns:eu-south-1:123456789012:o" }
    .MetricAlarms[1].AlarmName, "mem-01")
  lu.assertEquals(#cw:DescribeAlarms{ AlarmTypes = { "CompositeAlarm" } }.MetricAlarms, 0)
  local p1 = cw:DescribeAlarms{ MaxRecords = 3 }
  lu.assertEquals(#p1.MetricAlarms, 3)
  lu.assertEquals(p1.MetricAlarms[1].AlarmName, "cpu-01")
  local names = {}
  for a in cw:items("DescribeAlarms", { MaxRecords = 3 }, { result_key = "MetricAlarms" }) do
    names[#names + 1] = a.AlarmName
  end
  lu.assertEquals(#names, 8)
  lu.assertEquals(err_of(cw.DescribeAlarms, cw, { NextToken = "bogus" }).code, "InvalidNextToken")
  -- names that match nothing are ignored, the others deleted
  cw:DeleteAlarms{ AlarmNames = { "cpu-01", "no-such-alarm" } }
  lu.assertEquals(#cw:DescribeAlarms{ AlarmNamePrefix = "cpu-" }.MetricAlarms, 6)
end

function TestCloudWatch.test_set_alarm_state_notifies()
  local sim, sns, cw = setup("us-east-1")
  local topic = sns:CreateTopic{ Name = "alerts" }.TopicArn
  cw:PutMetricAlarm(alarm{ AlarmActions = { topic }, OKActions = { topic } })
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "failover drill",
    StateReasonData = '{"drill":true}' }
  local a = cw:DescribeAlarms{}.MetricAlarms[1]
  lu.assertEquals(a.StateValue, "ALARM")
  lu.assertEquals(a.StateReason, "failover drill")
  lu.assertEquals(a.StateReasonData, '{"drill":true}')
  local d = sim:deliveries(topic)
  lu.assertEquals(#d, 1)
  local doc = cjson.decode(d[1].Message)
  lu.assertEquals(doc.NewStateValue, "ALARM")
  lu.assertEquals(doc.OldStateValue, "INSUFFICIENT_DATA")
  lu.assertEquals(doc.NewStateReason, "failover drill")
  -- the same state again: no transition, no notification
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "again" }
  lu.assertEquals(#sim:deliveries(topic), 1)
  lu.assertEquals(err_of(cw.SetAlarmState, cw, { AlarmName = "nope", StateValue = "OK",
    StateReason = "x" }).code, "ResourceNotFound")
  lu.assertEquals(err_of(cw.SetAlarmState, cw, { AlarmName = "alarm-hc", StateValue = "OK",
    StateReason = "x", StateReasonData = "{bad" }).code, "InvalidFormat")
  -- ActionsEnabled false: transitions without notifications
  cw:PutMetricAlarm(alarm{ ActionsEnabled = false, AlarmActions = { topic }, OKActions = { topic } })
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "OK", StateReason = "quiet" }
  lu.assertEquals(#sim:deliveries(topic), 1)
end

-- Evaluation of datapoints put straight into the metrics store (as the failover model
-- does), minute by minute on the virtual clock.
local function put(sim, region, t, v)
  metrics.put(sim.store:db("123456789012", region, "cloudwatch"), "App", "Errors",
    { { Name = "Service", Value = "api" } }, t, v)
end

local function errors_alarm(extra)
  local p = { AlarmName = "errors", Namespace = "App", MetricName = "Errors",
    Dimensions = { { Name = "Service", Value = "api" } }, Statistic = "Sum", Period = 60,
    EvaluationPeriods = 3, DatapointsToAlarm = 2, Threshold = 5,
    ComparisonOperator = "GreaterThanOrEqualToThreshold" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

function TestCloudWatch.test_m_of_n_and_missing_data()
  local sim, _, cw = setup()
  cw:PutMetricAlarm(errors_alarm())
  local function state() return cw:DescribeAlarms{ AlarmNames = { "errors" } }.MetricAlarms[1] end
  -- TreatMissingData missing (default): no data → INSUFFICIENT_DATA
  sim:advance(60)
  lu.assertEquals(state().StateValue, "INSUFFICIENT_DATA")
  put(sim, REGION, B + 70, 3); put(sim, REGION, B + 80, 4)   -- minute 1: sum 7 (breaching)
  put(sim, REGION, B + 130, 1)                               -- minute 2: sum 1
  sim:advance(120)                                            -- now B + 180
  lu.assertEquals(state().StateValue, "OK")                   -- 1 of 3 breaching
  put(sim, REGION, B + 190, 9)                                -- minute 3: sum 9
  sim:advance(60)                                             -- B + 240: 2 of 3
  local a = state()
  lu.assertEquals(a.StateValue, "ALARM")
  lu.assertStrContains(a.StateReason, "Threshold Crossed: 2 out of the last 3 datapoints")
  lu.assertStrContains(a.StateReason, "greater than or equal to the threshold (5.0)")
  lu.assertNotNil(cjson.decode(a.StateReasonData).evaluatedDatapoints)
  -- notBreaching: quiet minutes bring it back to OK
  cw:PutMetricAlarm(errors_alarm{ TreatMissingData = "notBreaching" })
  sim:advance(180)
  lu.assertEquals(state().StateValue, "OK")
  -- breaching: silence is an alarm
  cw:PutMetricAlarm(errors_alarm{ TreatMissingData = "breaching" })
  sim:advance(60)
  a = state()
  lu.assertEquals(a.StateValue, "ALARM")
  lu.assertStrContains(a.StateReason, "treated as [Breaching]")
  -- ignore: the state stays
  cw:PutMetricAlarm(errors_alarm{ TreatMissingData = "ignore" })
  sim:advance(300)
  lu.assertEquals(state().StateValue, "ALARM")
end

function TestCloudWatch.test_get_metric_data()
  local sim, _, cw = setup()
  for i = 0, 11 do put(sim, REGION, B + i * 10, i) end -- two minutes: 0..5, 6..11
  local out = cw:GetMetricData{ StartTime = B, EndTime = B + 120, MetricDataQueries = {
    { Id = "sum", MetricStat = { Metric = { Namespace = "App", MetricName = "Errors",
      Dimensions = { { Name = "Service", Value = "api" } } }, Period = 60, Stat = "Sum" } },
    { Id = "max", Label = "worst", MetricStat = { Metric = { Namespace = "App", MetricName = "Errors",
      Dimensions = { { Name = "Service", Value = "api" } } }, Period = 60, Stat = "Maximum" } },
    { Id = "hidden", ReturnData = false, MetricStat = { Metric = { Namespace = "App",
      MetricName = "Errors" }, Period = 60, Stat = "Sum" } },
    { Id = "math", Expression = "sum * 2" } } }
  local r = out.MetricDataResults
  lu.assertEquals(#r, 3)
  lu.assertEquals(r[1].Id, "sum")
  lu.assertEquals(r[1].Label, "Errors")
  lu.assertEquals(r[1].StatusCode, "Complete")
  lu.assertEquals(r[1].Values, { 51.0, 15.0 }) -- newest first (TimestampDescending)
  lu.assertEquals(r[1].Timestamps, { B + 60, B })
  lu.assertEquals(r[2].Label, "worst")
  lu.assertEquals(r[2].Values, { 11.0, 5.0 })
  lu.assertEquals(r[3].Id, "math")
  lu.assertEquals(r[3].Messages[1].Code, "Unsupported")
  lu.assertEquals(err_of(cw.GetMetricData, cw, { StartTime = B + 10, EndTime = B,
    MetricDataQueries = { { Id = "a", Expression = "1" } } }).code, "ValidationError")
  lu.assertEquals(err_of(cw.GetMetricData, cw, { StartTime = B, EndTime = B + 10,
    MetricDataQueries = { { Id = "Upper", Expression = "1" } } }).code, "ValidationError")
end

function TestCloudWatch.test_alarm_tags()
  local _, _, cw = setup()
  cw:PutMetricAlarm(alarm{})
  local arn = "arn:aws:cloudwatch:eu-south-1:123456789012:alarm:alarm-hc"
  cw:TagResource{ ResourceARN = arn, Tags = { { Key = "Environment", Value = "Production" },
    { Key = "Obsolete", Value = "1" } } }
  cw:UntagResource{ ResourceARN = arn, TagKeys = { "Obsolete" } }
  lu.assertEquals(cw:ListTagsForResource{ ResourceARN = arn }.Tags,
    { { Key = "Environment", Value = "Production" } })
  local e = err_of(cw.TagResource, cw, { ResourceARN = arn .. "-x", Tags = { { Key = "a", Value = "b" } } })
  lu.assertEquals(e.code, "ResourceNotFoundException")
end

os.exit(lu.LuaUnit.run())
