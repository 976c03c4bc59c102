-- The simulator's CloudWatch Logs through fo's logs client over the in-process wire: log
-- group names, tags (both API styles), retention values and retention on the virtual
-- clock, KMS keys judged by their key policy, streams, PutLogEvents' batch rules and
-- rejections, GetLogEvents' tokens, FilterLogEvents' plain-term patterns, paging.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local json = require "fo.json"
local aws = fo.aws

local ACCOUNT = "123456789012"
local REGION = "eu-south-1"
local DAY = 86400

local function setup()
  local sim = simlib.new{ seed = 5 }
  return sim, sim:client("logs", { region = REGION, max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function ms(sim) return math.floor(sim:now() * 1000) end

local function group(logs, name)
  local gs = logs:DescribeLogGroups{ logGroupNamePrefix = name }.logGroups
  for _, g in ipairs(gs) do if g.logGroupName == name then return g end end
  return nil
end

TestLogGroups = {}

function TestLogGroups.test_create_describe_delete_with_arns_and_name_rules()
  local sim, logs = setup()
  logs:CreateLogGroup{ logGroupName = "/fo/app#1_x.y-z" }
  local g = group(logs, "/fo/app#1_x.y-z")
  local arn = ("arn:aws:logs:%s:%s:log-group:/fo/app#1_x.y-z"):format(REGION, ACCOUNT)
  lu.assertEquals(g.arn, arn .. ":*")
  lu.assertEquals(g.logGroupArn, arn)
  lu.assertTrue(math.abs(g.creationTime - ms(sim)) < 1000)
  lu.assertNil(g.retentionInDays)
  lu.assertEquals(g.storedBytes, 0)
  local e = err_of(logs.CreateLogGroup, logs, { logGroupName = "/fo/app#1_x.y-z" })
  lu.assertEquals(e.code, "ResourceAlreadyExistsException")
  for _, bad in ipairs({ "has space", "colon:name", "star*", "é" }) do
    e = err_of(logs.CreateLogGroup, logs, { logGroupName = bad })
    lu.assertEquals(e.code, "InvalidParameterException", bad)
  end
  -- 512 characters is the most
  logs:CreateLogGroup{ logGroupName = ("a"):rep(512) }
  local ok, se = pcall(sim.invoke, sim, "logs", REGION, "CreateLogGroup", { logGroupName = ("a"):rep(513) })
  lu.assertFalse(ok)
  lu.assertTrue(simlib.Error.is(se, "InvalidParameterException"), tostring(se))
  logs:DeleteLogGroup{ logGroupName = "/fo/app#1_x.y-z" }
  lu.assertNil(group(logs, "/fo/app#1_x.y-z"))
  e = err_of(logs.DeleteLogGroup, logs, { logGroupName = "/fo/app#1_x.y-z" })
  lu.assertEquals(e.code, "ResourceNotFoundException")
  lu.assertEquals(e.message, "The specified log group does not exist.")
  -- groups are regional
  local other = sim:client("logs", { region = "eu-central-1", max_attempts = 1 })
  lu.assertEquals(#other:DescribeLogGroups{}.logGroups, 0)
end

function TestLogGroups.test_describe_prefix_pattern_limit_and_paging()
  local sim, logs = setup()
  for i = 1, 7 do logs:CreateLogGroup{ logGroupName = ("/fo/svc-%d"):format(i) } end
  logs:CreateLogGroup{ logGroupName = "/other/SVC" }
  lu.assertEquals(#logs:DescribeLogGroups{ logGroupNamePrefix = "/fo/" }.logGroups, 7)
  -- the pattern matches anywhere, case-insensitively
  lu.assertEquals(#logs:DescribeLogGroups{ logGroupNamePattern = "svc" }.logGroups, 8)
  local e = err_of(logs.DescribeLogGroups, logs, { logGroupNamePrefix = "/fo", logGroupNamePattern = "x" })
  lu.assertEquals(e.code, "InvalidParameterException")
  -- limit 1..50: fo's client refuses what the model forbids; the sim answers as AWS does
  for _, n in ipairs({ 0, 51 }) do
    local ok, se = pcall(sim.invoke, sim, "logs", REGION, "DescribeLogGroups", { limit = n })
    lu.assertFalse(ok)
    lu.assertTrue(simlib.Error.is(se, "InvalidParameterException"), tostring(se))
  end
  local names, token = {}, nil
  repeat
    local out = logs:DescribeLogGroups{ limit = 3, nextToken = token }
    lu.assertTrue(#out.logGroups <= 3)
    for _, g in ipairs(out.logGroups) do names[#names + 1] = g.logGroupName end
    token = out.nextToken
  until not token
  lu.assertEquals(#names, 8)
  lu.assertEquals(names[1], "/fo/svc-1")
  lu.assertEquals(names[8], "/other/SVC")
  e = err_of(logs.DescribeLogGroups, logs, { nextToken = "bogus" })
  lu.assertEquals(e.code, "InvalidParameterException")
end

function TestLogGroups.test_tags_on_create_new_and_old_apis()
  local _, logs = setup()
  logs:CreateLogGroup{ logGroupName = "g", tags = { ["fo:token"] = "t1", env = "prod" } }
  local arn = group(logs, "g").logGroupArn
  lu.assertEquals(logs:ListTagsForResource{ resourceArn = arn }.tags, { ["fo:token"] = "t1", env = "prod" })
  logs:TagResource{ resourceArn = arn, tags = { team = "ops", env = "dev" } }
  logs:UntagResource{ resourceArn = arn, tagKeys = { "fo:token" } }
  lu.assertEquals(logs:ListTagsLogGroup{ logGroupName = "g" }.tags, { env = "dev", team = "ops" })
  logs:TagLogGroup{ logGroupName = "g", tags = { a = "1" } }
  logs:UntagLogGroup{ logGroupName = "g", tags = { "team" } }
  lu.assertEquals(logs:ListTagsForResource{ resourceArn = arn }.tags, { env = "dev", a = "1" })
  local e = err_of(logs.TagResource, logs, { resourceArn = arn .. "-nope", tags = { a = "1" } })
  lu.assertEquals(e.code, "ResourceNotFoundException")
  e = err_of(logs.TagResource, logs, { resourceArn = arn, tags = { ["aws:x"] = "1" } })
  lu.assertEquals(e.code, "InvalidParameterException")
  local many = {}
  for i = 1, 49 do many["k" .. i] = "v" end
  e = err_of(logs.TagResource, logs, { resourceArn = arn, tags = many })
  lu.assertEquals(e.code, "TooManyTagsException")
end

function TestLogGroups.test_retention_values_and_expiry_on_the_virtual_clock()
  local sim, logs = setup()
  logs:CreateLogGroup{ logGroupName = "r" }
  for _, bad in ipairs({ 0, 2, 4, 366, 3650, 10000 }) do
    local e = err_of(logs.PutRetentionPolicy, logs, { logGroupName = "r", retentionInDays = bad })
    lu.assertEquals(e.code, "InvalidParameterException", tostring(bad))
  end
  for _, ok in ipairs({ 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
      1827, 2192, 2557, 2922, 3288, 3653 }) do
    logs:PutRetentionPolicy{ logGroupName = "r", retentionInDays = ok }
    lu.assertEquals(group(logs, "r").retentionInDays, ok)
  end
  logs:PutRetentionPolicy{ logGroupName = "r", retentionInDays = 1 }
  logs:CreateLogStream{ logGroupName = "r", logStreamName = "s" }
  local t0 = ms(sim)
  logs:PutLogEvents{ logGroupName = "r", logStreamName = "s",
    logEvents = { { timestamp = t0, message = "early" } } }
  sim:advance(12 * 3600)
  logs:PutLogEvents{ logGroupName = "r", logStreamName = "s",
    logEvents = { { timestamp = ms(sim), message = "late" } } }
  local function messages()
    local out = {}
    for _, e in ipairs(logs:GetLogEvents{ logGroupName = "r", logStreamName = "s", startFromHead = true }.events) do
      out[#out + 1] = e.message
    end
    return out
  end
  lu.assertEquals(messages(), { "early", "late" })
  sim:advance(13 * 3600) -- "early" is now 25 h old, past one day of retention
  lu.assertEquals(messages(), { "late" })
  -- without retention, events stay
  logs:DeleteRetentionPolicy{ logGroupName = "r" }
  lu.assertNil(group(logs, "r").retentionInDays)
  sim:advance(30 * DAY)
  lu.assertEquals(messages(), { "late" })
  local e = err_of(logs.PutRetentionPolicy, logs, { logGroupName = "nope", retentionInDays = 7 })
  lu.assertEquals(e.code, "ResourceNotFoundException")
end

TestLogKms = {}

local function kms_key(sim, with_logs_statement, group_name)
  local kms = sim:client("kms", { region = REGION, max_attempts = 1 })
  local doc = { Version = "2012-10-17", Statement = { { Sid = "admin", Effect = "Allow",
    Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" }, Action = "kms:*", Resource = "*" } } }
  if with_logs_statement then
    doc.Statement[2] = { Effect = "Allow", Principal = { Service = "logs." .. REGION .. ".amazonaws.com" },
      Action = { "kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*" },
      Resource = "*", Condition = { ArnEquals = { ["kms:EncryptionContext:aws:logs:arn"] =
        ("arn:aws:logs:%s:%s:log-group:%s"):format(REGION, ACCOUNT, group_name) } } }
  end
  return kms:CreateKey{ Policy = json.encode(doc) }.KeyMetadata.Arn
end

function TestLogKms.test_key_policy_must_allow_the_logs_principal_for_this_group()
  local sim, logs = setup()
  local good = kms_key(sim, true, "enc")
  logs:CreateLogGroup{ logGroupName = "enc", kmsKeyId = good }
  lu.assertEquals(group(logs, "enc").kmsKeyId, good)
  -- the same key for another group: the condition names "enc" only
  local e = err_of(logs.CreateLogGroup, logs, { logGroupName = "other", kmsKeyId = good })
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "The specified KMS key does not exist or is not allowed to be used with Arn 'arn:aws:logs:"
    .. REGION .. ":" .. ACCOUNT .. ":log-group:other'")
  lu.assertNil(group(logs, "other"))
  -- a key whose policy lacks the service principal
  local bare = kms_key(sim, false)
  lu.assertEquals(err_of(logs.CreateLogGroup, logs, { logGroupName = "enc2", kmsKeyId = bare }).code,
    "AccessDeniedException")
  -- a key that does not exist
  local missing = ("arn:aws:kms:%s:%s:key/00000000-0000-4000-8000-000000000000"):format(REGION, ACCOUNT)
  lu.assertEquals(err_of(logs.CreateLogGroup, logs, { logGroupName = "enc3", kmsKeyId = missing }).code,
    "AccessDeniedException")
  -- a key id is not an ARN
  lu.assertEquals(err_of(logs.CreateLogGroup, logs, { logGroupName = "enc4",
    kmsKeyId = good:match("key/(.+)$") }).code, "InvalidParameterException")
  -- associate / disassociate later
  logs:CreateLogGroup{ logGroupName = "plain" }
  lu.assertEquals(err_of(logs.AssociateKmsKey, logs, { logGroupName = "plain", kmsKeyId = good }).code,
    "AccessDeniedException")
  local for_plain = kms_key(sim, true, "plain")
  logs:AssociateKmsKey{ logGroupName = "plain", kmsKeyId = for_plain }
  lu.assertEquals(group(logs, "plain").kmsKeyId, for_plain)
  logs:DisassociateKmsKey{ logGroupName = "plain" }
  lu.assertNil(group(logs, "plain").kmsKeyId)
end

TestLogEvents = {}

local function stream(logs, g, s)
  logs:CreateLogGroup{ logGroupName = g }
  logs:CreateLogStream{ logGroupName = g, logStreamName = s }
end

function TestLogEvents.test_streams_describe_and_errors()
  local sim, logs = setup()
  stream(logs, "g", "b")
  logs:CreateLogStream{ logGroupName = "g", logStreamName = "a" }
  lu.assertEquals(err_of(logs.CreateLogStream, logs, { logGroupName = "g", logStreamName = "a" }).code,
    "ResourceAlreadyExistsException")
  lu.assertEquals(err_of(logs.CreateLogStream, logs, { logGroupName = "g", logStreamName = "x:y" }).code,
    "InvalidParameterException")
  lu.assertEquals(err_of(logs.CreateLogStream, logs, { logGroupName = "nope", logStreamName = "a" }).code,
    "ResourceNotFoundException")
  logs:PutLogEvents{ logGroupName = "g", logStreamName = "b",
    logEvents = { { timestamp = ms(sim) - 1000, message = "x" }, { timestamp = ms(sim), message = "yz" } } }
  local out = logs:DescribeLogStreams{ logGroupName = "g" }.logStreams
  lu.assertEquals({ out[1].logStreamName, out[2].logStreamName }, { "a", "b" })
  lu.assertEquals(out[2].lastEventTimestamp - out[2].firstEventTimestamp, 1000)
  lu.assertTrue(out[2].lastIngestionTime >= out[2].lastEventTimestamp - 1000)
  lu.assertEquals(out[2].arn, ("arn:aws:logs:%s:%s:log-group:g:log-stream:b"):format(REGION, ACCOUNT))
  out = logs:DescribeLogStreams{ logGroupName = "g", orderBy = "LastEventTime", descending = true }.logStreams
  lu.assertEquals(out[1].logStreamName, "b")
  lu.assertEquals(err_of(logs.DescribeLogStreams, logs, { logGroupName = "g", orderBy = "LastEventTime",
    logStreamNamePrefix = "a" }).code, "InvalidParameterException")
  lu.assertEquals(#logs:DescribeLogStreams{ logGroupName = "g", logStreamNamePrefix = "a" }.logStreams, 1)
  local e = err_of(logs.PutLogEvents, logs, { logGroupName = "g", logStreamName = "zz",
    logEvents = { { timestamp = ms(sim), message = "x" } } })
  lu.assertEquals({ e.code, e.message }, { "ResourceNotFoundException", "The specified log stream does not exist." })
  logs:DeleteLogStream{ logGroupName = "g", logStreamName = "a" }
  lu.assertEquals(#logs:DescribeLogStreams{ logGroupName = "g" }.logStreams, 1)
end

function TestLogEvents.test_put_log_events_batch_rules_and_rejections()
  local sim, logs = setup()
  stream(logs, "g", "s")
  local now = ms(sim)
  local function put(events) return logs:PutLogEvents{ logGroupName = "g", logStreamName = "s", logEvents = events } end
  local e = err_of(put, { { timestamp = now, message = "b" }, { timestamp = now - 1, message = "a" } })
  lu.assertEquals(e.code, "InvalidParameterException")
  lu.assertStrContains(e.message, "chronological order")
  e = err_of(put, { { timestamp = now - 25 * 3600 * 1000, message = "a" }, { timestamp = now, message = "b" } })
  lu.assertStrContains(e.message, "cannot span more than 24 hours")
  -- bytes: each event counts its message plus 26
  local big = ("x"):rep(1048576 - 26)
  put({ { timestamp = now, message = big } })
  e = err_of(put, { { timestamp = now, message = big .. "x" } })
  lu.assertEquals(e.code, "InvalidParameterException")
  lu.assertStrContains(e.message, "1048577")
  local many = {}
  for i = 1, 10001 do many[i] = { timestamp = now, message = "m" } end
  local ok, se = pcall(sim.invoke, sim, "logs", REGION, "PutLogEvents",
    { logGroupName = "g", logStreamName = "s", logEvents = many })
  lu.assertFalse(ok)
  lu.assertTrue(simlib.Error.is(se, "InvalidParameterException"), tostring(se))
  many[10001] = nil
  put(many)
  -- too old (> 14 days): 0-based index of the last one; the rest is stored
  local H = 3600 * 1000
  local out = put({ { timestamp = now - 14 * DAY * 1000 - 2 * H, message = "old1" },
    { timestamp = now - 14 * DAY * 1000 - H, message = "old2" },
    { timestamp = now - 14 * DAY * 1000 + H, message = "kept" } })
  lu.assertEquals(out.rejectedLogEventsInfo, { tooOldLogEventEndIndex = 1 })
  lu.assertNotNil(out.nextSequenceToken)
  -- too new (> 2 h ahead): 0-based index of the first one
  out = put({ { timestamp = now, message = "now" }, { timestamp = now + 3 * H, message = "new" } })
  lu.assertEquals(out.rejectedLogEventsInfo, { tooNewLogEventStartIndex = 1 })
  -- older than the retention: expired
  logs:PutRetentionPolicy{ logGroupName = "g", retentionInDays = 1 }
  out = put({ { timestamp = now - 25 * H, message = "exp" }, { timestamp = now - 2 * H, message = "on time" } })
  lu.assertEquals(out.rejectedLogEventsInfo, { expiredLogEventEndIndex = 0 })
  -- sequence tokens are ignored, as AWS does now
  out = logs:PutLogEvents{ logGroupName = "g", logStreamName = "s", sequenceToken = "49999",
    logEvents = { { timestamp = now, message = "tok" } } }
  lu.assertNil(out.rejectedLogEventsInfo)
  local seen = {}
  for _, ev in ipairs(logs:FilterLogEvents{ logGroupName = "g", filterPattern = "o" }.events) do
    seen[#seen + 1] = ev.message
  end
  lu.assertEquals(seen, { "on time", "now", "tok" }) -- "kept" is past the 1-day retention now
end

function TestLogEvents.test_get_log_events_tokens_forward_and_backward()
  local sim, logs = setup()
  stream(logs, "g", "s")
  local t = ms(sim)
  local events = {}
  for i = 1, 5 do events[i] = { timestamp = t + i, message = "e" .. i } end
  logs:PutLogEvents{ logGroupName = "g", logStreamName = "s", logEvents = events }
  local function msgs(out)
    local r = {}
    for _, e in ipairs(out.events) do r[#r + 1] = e.message end
    return r
  end
  -- default: the latest events
  local out = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2 }
  lu.assertEquals(msgs(out), { "e4", "e5" })
  local back = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2, nextToken = out.nextBackwardToken }
  lu.assertEquals(msgs(back), { "e2", "e3" })
  out = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2, startFromHead = true }
  lu.assertEquals(msgs(out), { "e1", "e2" })
  out = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2, nextToken = out.nextForwardToken }
  lu.assertEquals(msgs(out), { "e3", "e4" })
  out = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2, nextToken = out.nextForwardToken }
  lu.assertEquals(msgs(out), { "e5" })
  local last = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", limit = 2, nextToken = out.nextForwardToken }
  lu.assertEquals(msgs(last), {})
  -- at the end the forward token stays the same (how readers know they caught up)
  lu.assertEquals(last.nextForwardToken, out.nextForwardToken)
  out = logs:GetLogEvents{ logGroupName = "g", logStreamName = "s", startTime = t + 2, endTime = t + 4, startFromHead = true }
  lu.assertEquals(msgs(out), { "e2", "e3" })
  lu.assertEquals(out.events[1].timestamp, t + 2)
  lu.assertTrue(out.events[1].ingestionTime >= t)
  lu.assertEquals(err_of(logs.GetLogEvents, logs, { logGroupName = "g", logStreamName = "nope" }).code,
    "ResourceNotFoundException")
end

function TestLogEvents.test_filter_log_events_terms_streams_and_paging()
  local sim, logs = setup()
  stream(logs, "g", "a")
  logs:CreateLogStream{ logGroupName = "g", logStreamName = "b" }
  local t = ms(sim)
  logs:PutLogEvents{ logGroupName = "g", logStreamName = "a", logEvents = {
    { timestamp = t, message = "GET /health 200" }, { timestamp = t + 2, message = "GET /orders 500 ERROR" } } }
  logs:PutLogEvents{ logGroupName = "g", logStreamName = "b", logEvents = {
    { timestamp = t + 1, message = "POST /orders 201" }, { timestamp = t + 3, message = "ERROR timeout" } } }
  local function msgs(p)
    p.logGroupName = "g"
    local r = {}
    for _, e in ipairs(logs:FilterLogEvents(p).events) do r[#r + 1] = e.message end
    return r
  end
  lu.assertEquals(msgs{}, { "GET /health 200", "POST /orders 201", "GET /orders 500 ERROR", "ERROR timeout" })
  lu.assertEquals(msgs{ filterPattern = "ERROR" }, { "GET /orders 500 ERROR", "ERROR timeout" })
  lu.assertEquals(msgs{ filterPattern = "ERROR /orders" }, { "GET /orders 500 ERROR" })
  lu.assertEquals(msgs{ filterPattern = '"POST /orders"' }, { "POST /orders 201" })
  lu.assertEquals(msgs{ filterPattern = "error" }, {})
  lu.assertEquals(msgs{ logStreamNames = { "b" } }, { "POST /orders 201", "ERROR timeout" })
  lu.assertEquals(msgs{ logStreamNamePrefix = "a", startTime = t + 1 }, { "GET /orders 500 ERROR" })
  local e = err_of(logs.FilterLogEvents, logs, { logGroupName = "g", filterPattern = "{ $.x = 1 }" })
  lu.assertEquals(e.code, "InvalidParameterException")
  -- paging
  local got, token = {}, nil
  repeat
    local out = logs:FilterLogEvents{ logGroupName = "g", limit = 3, nextToken = token }
    for _, ev in ipairs(out.events) do got[#got + 1] = ev.logStreamName end
    token = out.nextToken
  until not token
  lu.assertEquals(got, { "a", "b", "a", "b" })
  -- by the group's ARN
  local arn = logs:DescribeLogGroups{}.logGroups[1].logGroupArn
  lu.assertEquals(#logs:FilterLogEvents{ logGroupIdentifier = arn }.events, 4)
end

TestLogState = {}

function TestLogState.test_groups_streams_events_and_tags_survive_a_saved_state()
  local file = os.tmpname()
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
  local sim = simlib.new{ seed = 5, file = file }
  local logs = sim:client("logs", { region = REGION, max_attempts = 1 })
  logs:CreateLogGroup{ logGroupName = "kept" }
  logs:CreateLogGroup{ logGroupName = "tagged", tags = { ["1"] = "one", env = "prod" } }
  logs:CreateLogStream{ logGroupName = "kept", logStreamName = "empty" }
  logs:CreateLogStream{ logGroupName = "kept", logStreamName = "s" }
  logs:PutLogEvents{ logGroupName = "kept", logStreamName = "s",
    logEvents = { { timestamp = ms(sim), message = "line" } } }
  local again = simlib.new{ file = file }:client("logs", { region = REGION, max_attempts = 1 })
  lu.assertEquals(again:ListTagsLogGroup{ logGroupName = "kept" }.tags, nil)
  lu.assertEquals(again:ListTagsLogGroup{ logGroupName = "tagged" }.tags, { ["1"] = "one", env = "prod" })
  lu.assertEquals(#again:DescribeLogStreams{ logGroupName = "kept" }.logStreams, 2)
  lu.assertEquals(again:GetLogEvents{ logGroupName = "kept", logStreamName = "s" }.events[1].message, "line")
  -- the reloaded state takes new tags, streams and events
  again:TagLogGroup{ logGroupName = "kept", tags = { a = "b" } }
  again:PutLogEvents{ logGroupName = "kept", logStreamName = "empty",
    logEvents = { { timestamp = ms(sim), message = "more" } } }
  lu.assertEquals(again:ListTagsLogGroup{ logGroupName = "kept" }.tags, { a = "b" })
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
end

os.exit(lu.LuaUnit.run())
