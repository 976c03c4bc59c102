-- Issue 4's first proof, issue 11's for the current CLI: the AWS CLI against the served
-- simulator (`fo-run --serve-sim`, state in a temp --sim-file), once per CLI (FO_AWSCLI;
-- ctest runs one entry each, side by side, each with its own served sim):
--   debian   Debian's awscli, /usr/bin/aws (AWS CLI v2.9, botocore 1.29);
--   current  the `aws` first on PATH, the pip awscli (AWS CLI v1.45, botocore 1.43 — what
--            fo's models are generated from; CloudWatch over JSON 1.0).
-- For each resource kind of the failover stack: create → describe (values checked through
-- the CLI's --query) → delete → gone, in eu-south-1, eu-central-1 and us-east-1 (IAM and
-- Route 53 once), with the error cases AWS answers (duplicate names, bad health-check
-- interval, DependencyViolation, an ALB in one AZ, ...) checked as the CLI reports them: its
-- exit code for a service error (v2 254, v1 255) and "An error occurred (Code) when calling
-- the Op operation: ...". The scenarios are data (tests/lua/support/sim_scenarios.lua),
-- shared with test_sim_scenarios.lua (fo's own clients in-process).
--
-- Speed: every scenario × region starts at once (fo.spawn) and each test joins its own;
-- the CLI runs warm (support/awscli.lua, "batch"); FO_AWSCLI_MODE=exec runs every command
-- as its own CLI process instead. A few calls always go through CLI processes: output,
-- exit codes and error texts as a user sees them.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local t = require "support.testlib"
local cli = require "support.awscli"
local scn = require "support.sim_scenarios"

local WHICH = os.getenv("FO_AWSCLI") or "debian"
local CLI, missing = cli.cli(WHICH)
assert(CLI, tostring(missing) .. (WHICH == "debian"
  and ": install Debian's awscli (tools/bootstrap.sh --test)"
  or ": install the current AWS CLI (pip install awscli) so that `aws` on PATH runs it"))

local t0 = fo.now()
local dir = t.tmpdir()
local mode = os.getenv("FO_AWSCLI_MODE") or "batch"
local sim = cli.start_sim(dir, mode == "exec" and 3600 or 600)
scn.POLL_INTERVAL = 1.5 -- each poll is a CLI command
local runner = cli.runner{ cli = CLI, url = sim.url, dir = dir, mode = mode, concurrency = 4 }

-- Every scenario in each of its regions, concurrently.
local runs = scn.start_all(runner)

-- Authentication failures, per protocol, through profiles of the temp credentials file.
local auth = {}
for _, c in ipairs(scn.auth_cases) do
  for _, kind in ipairs({ "bad_secret", "unknown_key" }) do
    auth[#auth + 1] = { case = c, kind = kind, task = fo.spawn(runner.aws, runner, "eu-central-1",
      { "--profile", cli.PROFILES[kind], c[1], cli.command(c[2]) }) }
  end
end

-- CLI processes, started now too.
local function exec(region, args)
  return fo.spawn(runner.aws, runner, region, args, { exec = true })
end
-- What the CLI's botocore speaks to CloudWatch (the other services have one protocol each):
-- Debian's (1.29) the query protocol, botocore 1.43 JSON 1.0 in query-compatible mode; and
-- whether it compresses PutMetricData (requestcompression, botocore >= 1.31: gzip).
local probe = fo.process.run{ argv = { CLI.python, "-c", [[
import awscli, botocore.session
m = botocore.session.get_session().get_service_model("cloudwatch")
print(getattr(m, "resolved_protocol", None) or m.protocol)
op = m.operation_model("PutMetricData")
rc = getattr(op, "request_compression", None) or {}
print("gzip" if "gzip" in (rc.get("encodings") or []) else "none")
print("required" if "MetricData" in op.input_shape.required_members else "optional")]] },
  env = runner.env }
assert(probe.code == 0, "cannot read the CLI's CloudWatch model: " .. probe.stderr)
local CW_PROTOCOL, CW_COMPRESSION, CW_METRIC_DATA = probe.stdout:match("^(%S+)\n(%S+)\n(%S+)")
-- What the CLI's --debug log shows of a DescribeAlarms request in that protocol.
local CW_SIGNS = {
  query = { "'Action': 'DescribeAlarms'" },
  json = { "'X-Amz-Target': 'GraniteServiceVersion20100801.DescribeAlarms'",
    "'x-amzn-query-mode': 'true'" },
  ["smithy-rpc-v2-cbor"] = { "/service/GraniteServiceVersion20100801/operation/DescribeAlarms" },
}

-- 100 metrics (about 16 KB): over botocore's 10,240-byte compression threshold.
local big = {}
for i = 1, 100 do
  big[i] = { MetricName = "Latency", Value = i, Dimensions = {
    { Name = "Host", Value = ("smoke-host-%04d-large-request"):format(i) } } }
end

local smoke = {
  no_metric_data = exec("us-east-1",
    { "cloudwatch", "put-metric-data", "--namespace", "Scn/Empty" }),
  put_metric_data = exec("us-east-1", { "--debug", "cloudwatch", "put-metric-data", "--namespace",
    "Scn/Smoke", "--metric-data", cjson.encode(big) }),
  cloudwatch = exec("us-east-1", { "--debug", "cloudwatch", "describe-alarms", "--alarm-names",
    "scn-no-such-alarm" }),
  identity = exec("eu-south-1", { "sts", "get-caller-identity", "--query", "Account" }),
  not_found = exec("us-east-1", { "elbv2", "describe-target-groups", "--names", "scn-no-such-tg" }),
  client_side = exec("us-east-1", { "route53", "create-health-check", "--caller-reference", "scn-hc-5",
    "--health-check-config", "Type=HTTP,FullyQualifiedDomainName=x.example.com,RequestInterval=5" }),
  bad_secret = exec("eu-central-1", { "--profile", cli.PROFILES.bad_secret, "ec2", "describe-vpcs" }),
}

TestAwsCli = {}
scn.add_tests(TestAwsCli, runs)

--- A wrong secret for the sim's key id and an unknown key id, per protocol: the CLI's exit
--- code for a service error and
--- the code AWS answers (query/rest-xml SignatureDoesNotMatch, InvalidClientTokenId; ec2
--- AuthFailure; json InvalidSignatureException, UnrecognizedClientException).
function TestAwsCli.test_error_bad_signature_and_unknown_key_per_protocol()
  local problems = {}
  for _, a in ipairs(auth) do
    local res = a.task:join()
    local want = a.case[a.kind]
    local code, op = cli.parse_error(res.stderr)
    if res.rc ~= CLI.rc_service or code ~= want or op ~= a.case[2] then
      problems[#problems + 1] = ("%s %s.%s: want exit %d and %s from %s, got exit %s: %s"):format(
        a.kind, a.case[1], a.case[2], CLI.rc_service, want, a.case[2], tostring(res.rc), res.stderr)
    end
  end
  if #problems > 0 then lu.fail(table.concat(problems, "\n")) end
end

--- What a user sees from the CLI's own process: output, a service error (v2 254, v1 255,
--- and its line), a value the CLI's own model check refuses before sending (v2 252, v1
--- 255), a wrong secret.
function TestAwsCli.test_exec_cli_process_exit_codes_and_texts()
  local r = smoke.identity:join()
  lu.assertEquals(r.rc, 0, r.stderr)
  lu.assertEquals(r.stdout, '"' .. scn.ACCOUNT .. '"\n')
  r = smoke.not_found:join()
  lu.assertEquals(r.rc, CLI.rc_service)
  lu.assertStrContains(r.stderr, "An error occurred (TargetGroupNotFound) when calling the "
    .. "DescribeTargetGroups operation (reached max retries: 0): One or more target groups not found")
  -- RequestInterval 5 is below the model's minimum (10): the CLI refuses it itself, so
  -- the sim's InvalidInput for 20 (allowed by the model, refused by Route 53) is what the
  -- route53_health_check scenario checks.
  r = smoke.client_side:join()
  lu.assertEquals(r.rc, CLI.rc_refused)
  lu.assertStrContains(r.stderr, "Invalid value for parameter HealthCheckConfig.RequestInterval, "
    .. "value: 5, valid min value: 10")
  r = smoke.bad_secret:join()
  lu.assertEquals(r.rc, CLI.rc_service)
  lu.assertStrContains(r.stderr, "An error occurred (SignatureDoesNotMatch) when calling the "
    .. "DescribeVpcs operation (reached max retries: 0): The request signature we calculated "
    .. "does not match the signature you provided.")
end

--- CloudWatch in the protocol this CLI's botocore chooses (the scenarios' alarms went the
--- same way), answered in it: the request as the --debug log shows it, the output parsed.
function TestAwsCli.test_exec_cloudwatch_in_the_cli_protocol()
  local signs = CW_SIGNS[CW_PROTOCOL]
  lu.assertNotNil(signs, "CloudWatch protocol " .. tostring(CW_PROTOCOL))
  local r = smoke.cloudwatch:join()
  lu.assertEquals(r.rc, 0, r.stderr:sub(-2000))
  for _, sign in ipairs(signs) do lu.assertStrContains(r.stderr, sign) end
  lu.assertEquals(cjson.decode(r.stdout).MetricAlarms, {})
end

--- A PutMetricData over the compression threshold: gzip-compressed by a CLI whose botocore
--- compresses it (the current one), plain by Debian's; accepted either way, every metric there.
function TestAwsCli.test_exec_large_put_metric_data_compressed_or_not()
  local r = smoke.put_metric_data:join()
  lu.assertEquals(r.rc, 0, r.stderr:sub(-2000))
  if CW_COMPRESSION == "gzip" then
    lu.assertStrContains(r.stderr, "'Content-Encoding': 'gzip'")
  else
    lu.assertNotStrContains(r.stderr, "'Content-Encoding': 'gzip'")
  end
  r = runner:aws("us-east-1", { "cloudwatch", "list-metrics", "--namespace", "Scn/Smoke",
    "--query", "length(Metrics)" }, { exec = true })
  lu.assertEquals(r.rc, 0, r.stderr)
  lu.assertEquals(r.stdout, "100\n")
end

--- put-metric-data with no data: Debian's botocore (MetricData required) refuses it itself;
--- botocore 1.43 (MetricData optional: EntityMetricData may carry the data) sends it, and the
--- answer is AWS's MissingParameter.
function TestAwsCli.test_exec_put_metric_data_without_data()
  local r = smoke.no_metric_data:join()
  lu.assertEquals(r.rc, CW_METRIC_DATA == "required" and CLI.rc_refused or CLI.rc_service, r.stderr)
  if CW_METRIC_DATA == "required" then
    lu.assertStrContains(r.stderr, 'Missing required parameter in input: "MetricData"')
  else
    lu.assertStrContains(r.stderr, "An error occurred (MissingParameter) when calling the "
      .. "PutMetricData operation (reached max retries: 0): The parameter MetricData is required.")
  end
end

--- Last (LuaUnit runs tests by name): the sim logged every call and stops cleanly.
function TestAwsCli.test_zz_served_sim_log_and_stop()
  for _, list in pairs(runs) do for _, r in ipairs(list) do r.task:wait() end end
  for _, a in ipairs(auth) do a.task:wait() end
  for _, task in pairs(smoke) do task:wait() end
  local cpu = runner:close()
  local sim_cpu = cli.sim_cpu(sim)
  local res = cli.stop_sim(sim)
  t.rmtree(dir)
  local elapsed = fo.now() - t0
  local n = select(2, res.stderr:gsub("sim POST ", ""))
  local per = {}
  for _, s in ipairs(scn.scenarios) do
    local calls, ended = 0, 0
    for _, r in ipairs(runs[s.name]) do
      local ok, out = pcall(r.task.join, r.task)
      calls = calls + (ok and out.calls or 0)
      ended = math.max(ended, ok and out.ended or 0)
    end
    per[#per + 1] = ("%-40s %3d commands, done at %4.1f s"):format(s.name, calls, ended - t0)
  end
  print(("\nawscli %s (%s, aws-cli/%s, CloudWatch over %s, PutMetricData %s): %d commands "
    .. "(%s; CPU: CLI helpers %.1f s, sim %s s), %d requests served, %.1f s\n  %s"):format(
    CLI.name, CLI.aws, CLI.version, CW_PROTOCOL,
    CW_COMPRESSION, runner.commands, mode, cpu, tostring(sim_cpu), n, elapsed,
    table.concat(per, "\n  ")))
  lu.assertStrContains(res.stdout, "exit=0")
  lu.assertNotStrContains(res.stdout .. res.stderr, cli.SECRET)
  lu.assertStrContains(res.stderr, "code=SignatureDoesNotMatch")
  lu.assertTrue(n >= runner.commands - #auth, "requests logged")
  -- Speed is reported, not asserted: on an idle 2-core machine a run takes ~40 s per CLI
  -- (about 60 s of CPU: the CLI ~40, the sim and the CLI processes the rest); on a loaded
  -- one, ctest's timeout is the limit.
end

os.exit(lu.LuaUnit.run())
