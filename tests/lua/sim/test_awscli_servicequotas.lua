-- The AWS CLI's `aws service-quotas` and `aws ec2 describe-instance-types` against the
-- served simulator, with both CLIs a user may have: the current one (the `aws` on PATH, or
-- FO_AWS_CLI_CURRENT) and Debian's (/usr/bin/aws, or FO_AWS_CLI). What `fo-run --readiness`
-- reads for the vCPU quota, parsed by each CLI's own botocore: the applied quota (the served
-- sim's FO_SIM_EC2_VCPU_QUOTA), AWS's default, an unknown code refused, vCPUs of a type.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"
local json = require "fo.json"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 600, { FO_SIM_EC2_VCPU_QUOTA = "24" })

local REGION = "eu-central-1"
local QUOTA_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url, REGION)
  local code, out, err = aws{ "service-quotas", "get-service-quota", "--service-code", "ec2",
    "--quota-code", "L-1216C47A", "--output", "json" }
  lu.assertEquals(code, 0, err)
  local q = json.decode(out).Quota
  lu.assertEquals({ q.ServiceCode, q.QuotaCode, q.QuotaName, q.Value, q.Unit, q.Adjustable,
    q.GlobalQuota, q.QuotaArn }, { "ec2", "L-1216C47A", QUOTA_NAME, 24, "None", true, false,
    "arn:aws:servicequotas:" .. REGION .. ":123456789012:ec2/L-1216C47A" })
  lu.assertEquals(q.ServiceName, "Amazon Elastic Compute Cloud (Amazon EC2)")
  lu.assertEquals({ q.UsageMetric.MetricNamespace, q.UsageMetric.MetricName,
    q.UsageMetric.MetricDimensions.Resource, q.UsageMetric.MetricDimensions.Class },
    { "AWS/Usage", "ResourceCount", "vCPU", "Standard/OnDemand" })
  -- the text output, as a script reads the value
  code, out, err = aws{ "service-quotas", "get-service-quota", "--service-code", "ec2",
    "--quota-code", "L-1216C47A", "--query", "Quota.Value" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(tonumber(out), 24)
  -- AWS's default for a new account, without the account in the ARN
  code, out, err = aws{ "service-quotas", "get-aws-default-service-quota", "--service-code",
    "ec2", "--quota-code", "L-1216C47A", "--output", "json" }
  lu.assertEquals(code, 0, err)
  q = json.decode(out).Quota
  lu.assertEquals({ q.Value, q.QuotaArn }, { 5, "arn:aws:servicequotas:" .. REGION
    .. "::ec2/L-1216C47A" })
  -- codes are case-sensitive: an unknown service or quota is NoSuchResourceException
  code, _, err = aws{ "service-quotas", "get-service-quota", "--service-code", "EC2",
    "--quota-code", "L-1216C47A" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "NoSuchResourceException")
  lu.assertStrContains(err, "the specified service does not exist")
  code, _, err = aws{ "service-quotas", "get-service-quota", "--service-code", "ec2",
    "--quota-code", "L-00000000" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "NoSuchResourceException")
  -- the vCPUs of the recipe's instance type, and a type the simulator does not offer
  code, out, err = aws{ "ec2", "describe-instance-types", "--instance-types", "t3.medium",
    "m5.2xlarge", "--query", "InstanceTypes[].[InstanceType,VCpuInfo.DefaultVCpus,"
      .. "MemoryInfo.SizeInMiB]", "--output", "json" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(json.decode(out), { { "m5.2xlarge", 8, 32768 }, { "t3.medium", 2, 4096 } })
  code, _, err = aws{ "ec2", "describe-instance-types", "--instance-types", "r5.large" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidInstanceType")
  print("  " .. version)
end

TestAwsCliServiceQuotas = {}

function TestAwsCliServiceQuotas.test_current_cli() scenario("current") end
function TestAwsCliServiceQuotas.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
