-- CloudWatch on the wire in the three protocols AWS accepts for it: query (fo's client),
-- JSON 1.0 in query mode and Smithy RPC v2 CBOR (current SDKs; both awsQueryCompatible),
-- each request signed by hand as botocore sends it and answered by sim:handle; errors carry
-- the query error code in x-amzn-query-error.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local sigv4 = require "fo.sigv4"
local proto = require "fo.awsproto"
local models = require "fo.aws.models"

local HOST = "monitoring.us-east-1.amazonaws.com"

-- botocore 1.43's metadata of CloudWatch (the protocols fo's query model lacks).
local function wire_model(protocol)
  local m = models.load("cloudwatch")
  local meta = {}
  for k, v in pairs(m.metadata) do meta[k] = v end
  meta.protocol, meta.targetPrefix = protocol, "GraniteServiceVersion20100801"
  meta.jsonVersion, meta.awsQueryCompatible = "1.0", {}
  return { name = m.name, metadata = meta, operations = m.operations, shapes = m.shapes }
end

local PROTOCOLS = { cbor = wire_model("smithy-rpc-v2-cbor"), json = wire_model("json") }

-- Sends op(params) in `which` protocol, signed; returns the response and the model.
local function call(sim, which, op, params, opts)
  opts = opts or {}
  local model = PROTOCOLS[which]
  local r = proto.serialize(model, op, params)
  local headers = { Host = HOST }
  for k, v in pairs(r.headers) do headers[k] = v end
  local path = opts.path or r.path
  local s = sigv4.sign{ method = "POST", path = path, query = "", headers = headers,
    body = r.body, region = "us-east-1", service = "monitoring",
    access_key = simlib.DEFAULT_KEY.access_key,
    secret_key = opts.secret or simlib.DEFAULT_KEY.secret_key, time = os.time() }
  for k, v in pairs(s.headers) do headers[k] = v end
  local resp = sim:handle{ method = "POST", url = "https://" .. HOST .. path, headers = headers,
    body = r.body }
  local lower = {}
  for k, v in pairs(resp.headers) do lower[k:lower()] = v end
  resp.headers = lower
  return resp, model
end

local ALARM = { AlarmName = "cpu-high", MetricName = "CPUUtilization", Namespace = "AWS/EC2",
  Statistic = "Average", Period = 60, EvaluationPeriods = 2, Threshold = 70.5,
  ComparisonOperator = "GreaterThanThreshold",
  Dimensions = { { Name = "InstanceId", Value = "i-0123456789abcdef0" } } }

TestSimProtocols = {}

local function alarms_round_trip(which)
  local sim = simlib.new{}
  local resp, model = call(sim, which, "PutMetricAlarm", ALARM)
  lu.assertEquals(resp.status, 200, resp.body)
  resp = call(sim, which, "DescribeAlarms", { AlarmNames = { "cpu-high" } })
  lu.assertEquals(resp.status, 200)
  local out = proto.parse(model, "DescribeAlarms", resp)
  lu.assertEquals(#out.MetricAlarms, 1)
  local a = out.MetricAlarms[1]
  lu.assertEquals(a.AlarmName, "cpu-high")
  lu.assertEquals(a.Threshold, 70.5)
  lu.assertEquals(a.Dimensions, ALARM.Dimensions)
  lu.assertEquals(type(a.StateUpdatedTimestamp), "number")
  resp = call(sim, which, "DeleteAlarms", { AlarmNames = { "cpu-high" } })
  lu.assertEquals(resp.status, 200)
  out = proto.parse(model, "DescribeAlarms", call(sim, which, "DescribeAlarms", {}))
  lu.assertEquals(out.MetricAlarms or {}, {})
  return resp
end

function TestSimProtocols.test_cbor_alarms()
  local resp = alarms_round_trip("cbor")
  lu.assertEquals(resp.headers["smithy-protocol"], "rpc-v2-cbor")
  lu.assertEquals(resp.headers["content-type"], "application/cbor")
end

function TestSimProtocols.test_json_alarms()
  local resp = alarms_round_trip("json")
  lu.assertEquals(resp.headers["content-type"], "application/x-amz-json-1.0")
end

-- A handler's error: the query code in x-amzn-query-error, which clients report.
local function handler_error(which)
  local sim = simlib.new{}
  local resp, model = call(sim, which, "SetAlarmState", { AlarmName = "nope",
    StateValue = "ALARM", StateReason = "test" })
  lu.assertEquals(resp.status, 404)
  lu.assertEquals(resp.headers["x-amzn-query-error"], "ResourceNotFound;Sender")
  local e = proto.parse_error(model, "SetAlarmState", resp)
  lu.assertEquals(e.code, "ResourceNotFound")
  lu.assertEquals(e.type, "Sender")
  lu.assertStrContains(e.message, "nope")
end

function TestSimProtocols.test_cbor_handler_error()
  handler_error("cbor")
end

function TestSimProtocols.test_json_handler_error()
  handler_error("json")
end

-- A validation error (before the handler): still the query code.
function TestSimProtocols.test_validation_error_in_cbor()
  local sim = simlib.new{}
  local resp, model = call(sim, "cbor", "DescribeAlarms", { MaxRecords = 0 })
  lu.assertEquals(resp.status, 400)
  local e = proto.parse_error(model, "DescribeAlarms", resp)
  lu.assertEquals(e.code, resp.headers["x-amzn-query-error"]:match("^[^;]+"))
  lu.assertStrContains(e.message, "MaxRecords")
end

-- A bad signature and an unknown operation are answered in CBOR too (no XML for a CBOR
-- client).
function TestSimProtocols.test_errors_before_the_operation_are_cbor()
  local sim = simlib.new{}
  local resp, model = call(sim, "cbor", "DescribeAlarms", {}, { secret = "wrong" })
  lu.assertEquals(resp.status, 403)
  lu.assertEquals(resp.headers["content-type"], "application/cbor")
  lu.assertEquals(proto.parse_error(model, "DescribeAlarms", resp).code, "SignatureDoesNotMatch")
  resp = call(sim, "cbor", "DescribeAlarms", {},
    { path = "/service/GraniteServiceVersion20100801/operation/NoSuchThing" })
  lu.assertEquals(resp.status, 404)
  lu.assertEquals(resp.headers["content-type"], "application/cbor")
  lu.assertEquals(proto.parse_error(model, "DescribeAlarms", resp).code,
    "UnknownOperationException")
end

-- PutMetricData and GetMetricStatistics (the statistics of the recorded datapoints), in CBOR,
-- and their errors with the query codes.
function TestSimProtocols.test_metric_data_and_statistics_in_cbor()
  local sim = simlib.new{}
  local now = os.time()
  local dims = { { Name = "Host", Value = "a" } }
  local resp, model = call(sim, "cbor", "PutMetricData", { Namespace = "Fo/Test", MetricData = {
    { MetricName = "Latency", Dimensions = dims, Timestamp = now - 60, Value = 3.5 },
    { MetricName = "Latency", Dimensions = dims, Timestamp = now - 60, Values = { 6.5, 1 },
      Counts = { 1, 2 } } } })
  lu.assertEquals(resp.status, 200, resp.body)
  resp = call(sim, "cbor", "GetMetricStatistics", { Namespace = "Fo/Test", MetricName = "Latency",
    Dimensions = dims, StartTime = now - 3600, EndTime = now + 60, Period = 3600 * 2,
    Statistics = { "SampleCount", "Sum", "Minimum", "Maximum", "Average" } })
  lu.assertEquals(resp.status, 200, resp.body)
  local out = proto.parse(model, "GetMetricStatistics", resp)
  lu.assertEquals(out.Label, "Latency")
  lu.assertEquals(#out.Datapoints, 1)
  local d = out.Datapoints[1]
  lu.assertEquals({ d.SampleCount, d.Sum, d.Minimum, d.Maximum, d.Average },
    { 4, 12, 1, 6.5, 3 })
  -- other dimensions: another metric
  out = proto.parse(model, "GetMetricStatistics", call(sim, "cbor", "GetMetricStatistics", {
    Namespace = "Fo/Test", MetricName = "Latency", StartTime = now - 3600, EndTime = now + 60,
    Period = 3600, Statistics = { "Sum" } }))
  lu.assertEquals(out.Datapoints or {}, {})

  local function code_of(op, params)
    local r = call(sim, "cbor", op, params)
    lu.assertEquals(r.status, 400, op)
    return proto.parse_error(model, op, r).code
  end
  lu.assertEquals(code_of("PutMetricData", { Namespace = "AWS/EC2",
    MetricData = { { MetricName = "X", Value = 1 } } }), "InvalidParameterValue")
  lu.assertEquals(code_of("PutMetricData", { Namespace = "Fo/Test",
    MetricData = { { MetricName = "X", Value = 1, Values = { 2 } } } }),
    "InvalidParameterCombination")
  lu.assertEquals(code_of("GetMetricStatistics", { Namespace = "Fo/Test", MetricName = "X",
    StartTime = now - 86400 * 2, EndTime = now, Period = 60, Statistics = { "Sum" } }),
    "InvalidParameterCombination")
end

-- The query protocol is served as before, on the same sim and data.
function TestSimProtocols.test_query_and_cbor_share_the_alarms()
  local sim = simlib.new{}
  lu.assertEquals(call(sim, "cbor", "PutMetricAlarm", ALARM).status, 200)
  local out = sim:client("cloudwatch"):DescribeAlarms{}
  lu.assertEquals(out.MetricAlarms[1].AlarmName, "cpu-high")
end

os.exit(lu.LuaUnit.run())
