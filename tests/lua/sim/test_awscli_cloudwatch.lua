-- A current AWS CLI (the `python3` first on PATH running awscli, whose botocore has
-- CloudWatch's protocols list: smithy-rpc-v2-cbor, json, query) against the served
-- simulator: alarms, metric data and statistics, and the errors as the CLI reports them,
-- twice: as the CLI chooses (botocore 1.43 prefers JSON 1.0 in query mode) and with
-- botocore's protocol preference put CBOR first (what SDKs that prefer CBOR send; botocore's
-- own CBOR serializer and parser). Debian's older CLI (query) is test_awscli.lua's. Every
-- command is its own CLI process, as a user runs it.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local t = require "support.testlib"
local cli = require "support.awscli"

-- The interpreter (resolved here: a pyenv shim needs the caller's HOME, the CLI gets a temp
-- one) and what its botocore speaks to CloudWatch.
local probe = fo.process.run{ argv = { "python3", "-c", [[
import sys
try:
    import awscli, botocore.session
    m = botocore.session.get_session().get_service_model("cloudwatch")
    p = m.resolved_protocol if "smithy-rpc-v2-cbor" in (m.metadata.get("protocols") or []) else m.protocol
except Exception as e:
    p = "none (%s)" % e
print(sys.executable)
print(p)]] } }
local python, protocol = (probe.stdout or ""):match("^(%S+)\n(.-)\n")
local HAVE = probe.code == 0 and (protocol == "json" or protocol == "smithy-rpc-v2-cbor")

-- Runs the CLI's main with botocore's protocol preference changed when `first` is given.
local LAUNCHER = [[
import sys
import botocore.model, botocore.utils
first = sys.argv.pop(1)
if first != "default":
    order = (first,) + tuple(p for p in botocore.utils.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
                             if p != first)
    botocore.utils.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = order
    botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = order
from awscli.clidriver import main
sys.exit(main())
]]

TestAwsCliCloudWatch = {}

local dir, sim, env
if HAVE then
  dir = t.tmpdir()
  sim = cli.start_sim(dir, 300)
  env = cli.env(dir)
end

local first = "default" -- which protocol botocore prefers (set per pass below)

local function aws(args, extra_env)
  local argv = { python, "-c", LAUNCHER, first, "--endpoint-url", sim.url, "--region", "us-east-1",
    "--output", "json" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(extra_env or {}) do e[k] = v end
  local r = fo.process.run{ argv = argv, env = e, timeout = 120 }
  return r
end

local function ok(args)
  local r = aws(args)
  lu.assertEquals(r.code, 0, table.concat(args, " ") .. ": " .. r.stderr)
  return r.stdout:match("%S") and cjson.decode(r.stdout) or nil
end

local function iso(s) return os.date("!%Y-%m-%dT%H:%M:%SZ", s) end

local SKIP = "no current AWS CLI: python3's awscli speaks " .. tostring(protocol or probe.stderr)
  .. " to CloudWatch, not json or smithy-rpc-v2-cbor"

-- What the CLI's debug log shows of each protocol's request.
local SIGNS = {
  json = { "x-amzn-query-mode", "GraniteServiceVersion20100801.PutMetricAlarm" },
  ["smithy-rpc-v2-cbor"] = { "rpc-v2-cbor", "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm" },
}

local function alarms(want)
  lu.skipIf(not HAVE, SKIP)
  local r = aws({ "--debug", "cloudwatch", "put-metric-alarm", "--alarm-name", "cli-cpu",
    "--metric-name", "CPUUtilization", "--namespace", "AWS/EC2", "--statistic", "Average",
    "--period", "60", "--threshold", "70.5", "--comparison-operator", "GreaterThanThreshold",
    "--evaluation-periods", "2", "--dimensions", "Name=InstanceId,Value=i-0123456789abcdef0" })
  lu.assertEquals(r.code, 0, r.stderr:sub(-2000))
  for _, s in ipairs(SIGNS[want]) do lu.assertStrContains(r.stderr, s) end

  local out = ok{ "cloudwatch", "describe-alarms", "--alarm-names", "cli-cpu" }
  lu.assertEquals(#out.MetricAlarms, 1)
  local a = out.MetricAlarms[1]
  lu.assertEquals(a.AlarmName, "cli-cpu")
  lu.assertEquals(a.Threshold, 70.5)
  lu.assertEquals(a.EvaluationPeriods, 2)
  lu.assertEquals(a.StateValue, "INSUFFICIENT_DATA")
  lu.assertEquals(a.Dimensions, { { Name = "InstanceId", Value = "i-0123456789abcdef0" } })

  ok{ "cloudwatch", "delete-alarms", "--alarm-names", "cli-cpu" }
  out = ok{ "cloudwatch", "describe-alarms", "--alarm-names", "cli-cpu" }
  lu.assertEquals(out.MetricAlarms, {})
end

local function metric_data()
  lu.skipIf(not HAVE, SKIP)
  local now = os.time()
  local at = iso(now - 120)
  ok{ "cloudwatch", "put-metric-data", "--namespace", "Fo/Test", "--metric-data",
    cjson.encode{ { MetricName = "Latency", Timestamp = at, Value = 3.5,
      Dimensions = { { Name = "Host", Value = first } } },
    { MetricName = "Latency", Timestamp = at, Values = { 6.5, 1 }, Counts = { 1, 2 },
      Dimensions = { { Name = "Host", Value = first } } } } }
  local out = ok{ "cloudwatch", "get-metric-statistics", "--namespace", "Fo/Test",
    "--metric-name", "Latency", "--dimensions", "Name=Host,Value=" .. first,
    "--statistics", "Average", "Maximum", "Minimum", "SampleCount", "Sum",
    "--period", "3600", "--start-time", iso(now - 3600), "--end-time", iso(now + 60) }
  lu.assertEquals(out.Label, "Latency")
  local sum, count, max, min = 0, 0, -math.huge, math.huge
  for _, d in ipairs(out.Datapoints) do
    sum, count = sum + d.Sum, count + d.SampleCount
    max, min = math.max(max, d.Maximum), math.min(min, d.Minimum)
  end
  lu.assertEquals(count, 4)
  lu.assertEquals(sum, 12)
  lu.assertEquals(max, 6.5)
  lu.assertEquals(min, 1)
end

local function errors()
  lu.skipIf(not HAVE, SKIP)
  local cases = {
    { { "cloudwatch", "put-metric-data", "--namespace", "AWS/EC2", "--metric-name", "X",
        "--value", "1" }, "InvalidParameterValue", "PutMetricData" },
    { { "cloudwatch", "get-metric-statistics", "--namespace", "Fo/Test", "--metric-name", "X",
        "--statistics", "Average", "--period", "60", "--start-time", "2020-01-01T00:00:00Z",
        "--end-time", "2030-01-01T00:00:00Z" }, "InvalidParameterCombination",
      "GetMetricStatistics" },
    { { "cloudwatch", "set-alarm-state", "--alarm-name", "no-such-alarm", "--state-value",
        "ALARM", "--state-reason", "test" }, "ResourceNotFound", "SetAlarmState" },
  }
  for _, c in ipairs(cases) do
    local r = aws(c[1])
    lu.assertNotEquals(r.code, 0, c[2])
    local code, op = cli.parse_error(r.stderr)
    lu.assertEquals(code, c[2], r.stderr)
    lu.assertEquals(op, c[3])
  end
  -- a wrong secret: the query protocol's code, as the CLI sees it over CBOR
  local r = aws({ "cloudwatch", "describe-alarms" },
    { AWS_SECRET_ACCESS_KEY = "wrong" .. cli.SECRET:sub(6) })
  lu.assertEquals((cli.parse_error(r.stderr)), "SignatureDoesNotMatch", r.stderr)
end

-- Each pass: the protocol botocore prefers, what its request must show.
for _, pass in ipairs{ { "default", protocol }, { "smithy-rpc-v2-cbor", "smithy-rpc-v2-cbor" } } do
  local name = (pass[1] == "default" and "cli_choice" or "cbor_first")
  local function with(f)
    return function()
      first = pass[1]
      f(pass[2])
    end
  end
  TestAwsCliCloudWatch["test_" .. name .. "_a_alarms"] = with(alarms)
  TestAwsCliCloudWatch["test_" .. name .. "_b_metric_data_and_statistics"] = with(metric_data)
  TestAwsCliCloudWatch["test_" .. name .. "_c_errors_carry_the_query_codes"] = with(errors)
end

function TestAwsCliCloudWatch.test_z_stop_the_sim()
  lu.skipIf(not HAVE, SKIP)
  local res = cli.stop_sim(sim)
  t.rmtree(dir)
  lu.assertStrContains(res.stdout .. res.stderr, "exit=0")
end

os.exit(lu.LuaUnit.run("-v"))
