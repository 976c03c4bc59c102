-- The simulator's encrypted SNS topics (KmsMasterKeyId) through fo's clients: a Publish
-- needs kms:GenerateDataKey and kms:Decrypt on the topic's key (SNS's KMSNotFound,
-- KMSDisabled, KMSAccessDenied otherwise), and a CloudWatch alarm action publishing to an
-- encrypted topic is judged as the service principal cloudwatch.amazonaws.com: with
-- alias/aws/sns or a key whose policy leaves CloudWatch out the action fails (no message,
-- an Action item in the alarm history), with a key that allows it the message arrives.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws
local cjson = require "cjson"

local B = math.ceil(os.time() / 60) * 60 + 60
local REGION = "eu-south-1"
local ACCOUNT = "123456789012"

local function setup()
  local sim = simlib.new{ seed = 11, time = function() return B end }
  local function client(svc) return sim:client(svc, { region = REGION, max_attempts = 1 }) end
  return sim, client("sns"), client("cloudwatch"), client("kms")
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

-- A customer managed key: the account's root administers it; `extra` statements added.
local function cmk(kms, extra)
  local doc = { Version = "2012-10-17", Statement = { { Sid = "admin", Effect = "Allow",
    Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" }, Action = "kms:*",
    Resource = "*" } } }
  for _, s in ipairs(extra or {}) do doc.Statement[#doc.Statement + 1] = s end
  return kms:CreateKey{ Policy = cjson.encode(doc) }.KeyMetadata
end

local CLOUDWATCH = { Sid = "alarms", Effect = "Allow",
  Principal = { Service = "cloudwatch.amazonaws.com" },
  Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*",
  Condition = { StringEquals = { ["aws:SourceAccount"] = ACCOUNT } } }

local function alarm(topic)
  return { AlarmName = "alarm-hc", Namespace = "AWS/Route53", MetricName = "HealthCheckStatus",
    Dimensions = { { Name = "HealthCheckId", Value = "hc-1" } }, Statistic = "Minimum",
    Period = 60, EvaluationPeriods = 1, Threshold = 1,
    ComparisonOperator = "LessThanThreshold", AlarmActions = { topic } }
end

local function action_items(cw)
  return cw:DescribeAlarmHistory{ AlarmName = "alarm-hc", HistoryItemType = "Action" }
    .AlarmHistoryItems or {}
end

TestSnsKms = {}

function TestSnsKms.test_publish_to_encrypted_topic_uses_the_key()
  local sim, sns, _, kms = setup()
  local key = cmk(kms)
  local arn = sns:CreateTopic{ Name = "t", Attributes = { KmsMasterKeyId = key.Arn } }.TopicArn
  lu.assertEquals(sns:GetTopicAttributes{ TopicArn = arn }.Attributes.KmsMasterKeyId, key.Arn)
  sns:Publish{ TopicArn = arn, Message = "hello" }
  lu.assertEquals(#sim:deliveries(arn), 1)
  -- the AWS managed key works for the account's own publishers
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = "alias/aws/sns" }
  sns:Publish{ TopicArn = arn, Message = "managed" }
  lu.assertEquals(#sim:deliveries(arn), 2)
  -- a key that does not exist: stored as given, refused when used
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = "alias/missing" }
  local e = err_of(sns.Publish, sns, { TopicArn = arn, Message = "x" })
  lu.assertEquals({ e.code, e.status }, { "KMSNotFound", 400 })
  -- a disabled key
  kms:DisableKey{ KeyId = key.KeyId }
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = key.KeyId }
  lu.assertEquals(err_of(sns.Publish, sns, { TopicArn = arn, Message = "x" }).code, "KMSDisabled")
  -- a key whose policy lets nobody in this account use it
  local locked = kms:CreateKey{ Policy = cjson.encode{ Version = "2012-10-17", Statement = {
    { Effect = "Allow", Principal = { AWS = "arn:aws:iam::210987654321:root" },
      Action = "kms:*", Resource = "*" } } }, BypassPolicyLockoutSafetyCheck = true }.KeyMetadata
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = locked.Arn }
  lu.assertEquals(err_of(sns.Publish, sns, { TopicArn = arn, Message = "x" }).code, "KMSAccessDenied")
  lu.assertEquals(#sim:deliveries(arn), 2)
  -- an empty value turns encryption off again
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId", AttributeValue = "" }
  sns:Publish{ TopicArn = arn, Message = "plain" }
  lu.assertEquals(#sim:deliveries(arn), 3)
end

function TestSnsKms.test_alarm_to_topic_under_aws_managed_key_fails()
  local sim, sns, cw = setup()
  local arn = sns:CreateTopic{ Name = "alerts",
    Attributes = { KmsMasterKeyId = "alias/aws/sns" } }.TopicArn
  cw:PutMetricAlarm(alarm(arn))
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "drill" }
  lu.assertEquals(cw:DescribeAlarms{}.MetricAlarms[1].StateValue, "ALARM")
  lu.assertEquals(#sim:deliveries(arn), 0)
  local items = action_items(cw)
  lu.assertEquals(#items, 1)
  lu.assertStrContains(items[1].HistorySummary, "Failed to execute action " .. arn
    .. ". Received error: \"null (Service: AWSKMS; Status Code: 400; Error Code: "
    .. "AccessDeniedException;")
  lu.assertEquals(cjson.decode(items[1].HistoryData).actionState, "Failed")
end

function TestSnsKms.test_alarm_needs_cloudwatch_in_the_key_policy()
  local sim, sns, cw, kms = setup()
  local without = cmk(kms)
  local arn = sns:CreateTopic{ Name = "alerts",
    Attributes = { KmsMasterKeyId = without.Arn } }.TopicArn
  cw:PutMetricAlarm(alarm(arn))
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "one" }
  lu.assertEquals(#sim:deliveries(arn), 0)
  lu.assertEquals(#action_items(cw), 1)
  -- the key allows CloudWatch (for this account): the notification arrives
  local with = cmk(kms, { CLOUDWATCH })
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = with.Arn }
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "OK", StateReason = "two" }
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "three" }
  local d = sim:deliveries(arn)
  lu.assertEquals(#d, 1)
  lu.assertEquals(cjson.decode(d[1].Message).NewStateReason, "three")
  lu.assertEquals(#action_items(cw), 1)
  -- scoped to another account: refused again
  local other = cmk(kms, { { Effect = "Allow", Principal = { Service = "cloudwatch.amazonaws.com" },
    Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*",
    Condition = { StringEquals = { ["aws:SourceAccount"] = "210987654321" } } } })
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "KmsMasterKeyId",
    AttributeValue = other.Arn }
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "OK", StateReason = "four" }
  cw:SetAlarmState{ AlarmName = "alarm-hc", StateValue = "ALARM", StateReason = "five" }
  lu.assertEquals(#sim:deliveries(arn), 1)
  lu.assertEquals(#action_items(cw), 2)
end

os.exit(lu.LuaUnit.run(table.unpack(arg)))
