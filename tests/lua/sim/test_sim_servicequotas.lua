-- The simulator's Service Quotas (the EC2 vCPU quota L-1216C47A and its knob) and EC2's
-- DescribeInstanceTypes, through fo's own clients in-process; and which instance types the
-- readiness check counts against that quota.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local fosim = require "fo.sim"
local quota = require "fo.readiness_quota"

local REGION = "eu-central-1"
local CODES = { ServiceCode = "ec2", QuotaCode = "L-1216C47A" }

local function aws_error(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an AWS error")
  lu.assertIsTable(e, tostring(e))
  return e
end

TestServiceQuotas = {}

function TestServiceQuotas.test_applied_value_is_the_knob_per_region()
  local sim = fosim.new{ seed = 1, env = function() return nil end }
  local sq = sim:client("servicequotas", { region = REGION })
  local q = sq:GetServiceQuota(CODES).Quota
  lu.assertEquals({ q.Value, q.Unit, q.Adjustable, q.GlobalQuota, q.QuotaAppliedAtLevel },
    { 32, "None", true, false, "ACCOUNT" })
  lu.assertEquals(q.QuotaArn, "arn:aws:servicequotas:eu-central-1:123456789012:ec2/L-1216C47A")
  sim:set_knob("ec2_vcpu_quota", 8)
  lu.assertEquals(sq:GetServiceQuota(CODES).Quota.Value, 8)
  local other = sim:client("servicequotas", { region = "eu-south-1" }):GetServiceQuota(CODES).Quota
  lu.assertEquals({ other.Value, other.QuotaArn }, { 8,
    "arn:aws:servicequotas:eu-south-1:123456789012:ec2/L-1216C47A" })
  -- AWS's default does not follow the account's value
  local d = sq:GetAWSDefaultServiceQuota(CODES).Quota
  lu.assertEquals({ d.Value, d.QuotaArn },
    { 5, "arn:aws:servicequotas:eu-central-1::ec2/L-1216C47A" })
end

function TestServiceQuotas.test_knob_from_option_and_environment_checked()
  lu.assertEquals(fosim.new{ ec2_vcpu_quota = 64 }.knobs.ec2_vcpu_quota, 64)
  local env = function(k) return k == "FO_SIM_EC2_VCPU_QUOTA" and "12" or nil end
  lu.assertEquals(fosim.new{ env = env }.knobs.ec2_vcpu_quota, 12)
  local ok, err = pcall(fosim.new, { ec2_vcpu_quota = -1 })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "sim knob ec2_vcpu_quota (option ec2_vcpu_quota)")
end

function TestServiceQuotas.test_unknown_codes_and_context_are_no_such_resource()
  local sq = fosim.new{ seed = 1 }:client("servicequotas", { region = REGION })
  local e = aws_error(sq.GetServiceQuota, sq, { ServiceCode = "EC2", QuotaCode = "L-1216C47A" })
  lu.assertEquals({ e.code, e.status }, { "NoSuchResourceException", 400 })
  lu.assertStrContains(e.message, "the specified service does not exist")
  e = aws_error(sq.GetAWSDefaultServiceQuota, sq, { ServiceCode = "ec2", QuotaCode = "L-34B43A08" })
  lu.assertEquals(e.code, "NoSuchResourceException")
  e = aws_error(sq.GetServiceQuota, sq, { ServiceCode = "ec2", QuotaCode = "L-1216C47A",
    ContextId = "arn:aws:ec2:eu-central-1:123456789012:instance/i-0123456789abcdef0" })
  lu.assertEquals(e.code, "NoSuchResourceException")
end

TestInstanceTypes = {}

function TestInstanceTypes.test_vcpus_and_memory_as_aws_documents_them()
  local ec2 = fosim.new{ seed = 1 }:client("ec2", { region = REGION })
  local got = {}
  for _, t in ipairs(ec2:DescribeInstanceTypes{ InstanceTypes = { "t3.medium", "t3.2xlarge",
    "m5.large", "m5.24xlarge", "c5.9xlarge", "c5.metal", "m1.small" } }.InstanceTypes) do
    got[t.InstanceType] = { t.VCpuInfo.DefaultVCpus, t.VCpuInfo.DefaultCores,
      t.VCpuInfo.DefaultThreadsPerCore, t.MemoryInfo.SizeInMiB, t.BareMetal,
      t.Hypervisor or "none", t.CurrentGeneration }
  end
  lu.assertEquals(got, {
    ["t3.medium"] = { 2, 1, 2, 4096, false, "nitro", true },
    ["t3.2xlarge"] = { 8, 4, 2, 32768, false, "nitro", true },
    ["m5.large"] = { 2, 1, 2, 8192, false, "nitro", true },
    ["m5.24xlarge"] = { 96, 48, 2, 393216, false, "nitro", true },
    ["c5.9xlarge"] = { 36, 18, 2, 73728, false, "nitro", true },
    ["c5.metal"] = { 96, 48, 2, 196608, true, "none", true },
    ["m1.small"] = { 1, 1, 1, 1740, false, "xen", false },
  })
end

function TestInstanceTypes.test_pages_filters_and_unknown_types()
  local ec2 = fosim.new{ seed = 1 }:client("ec2", { region = REGION })
  local all, pages, token = {}, 0, nil
  repeat
    local out = ec2:DescribeInstanceTypes{ MaxResults = 5, NextToken = token }
    pages = pages + 1
    lu.assertTrue(#out.InstanceTypes <= 5)
    for _, t in ipairs(out.InstanceTypes) do all[#all + 1] = t.InstanceType end
    token = out.NextToken
  until not token
  lu.assertEquals(#all, 33) -- t3 and t3a 7 sizes each, m5 and c5 9 each, m1.small
  lu.assertEquals(pages, 7)
  local two = ec2:DescribeInstanceTypes{ Filters = { { Name = "vcpu-info.default-vcpus",
    Values = { "36" } } } }.InstanceTypes
  lu.assertEquals(#two, 1)
  lu.assertEquals(two[1].InstanceType, "c5.9xlarge")
  -- a type EC2 has but the simulator does not describe: refused, not answered wrongly
  local e = aws_error(ec2.DescribeInstanceTypes, ec2,
    { InstanceTypes = { "t3.small", "r5.large" } })
  lu.assertEquals(e.code, "InvalidInstanceType")
  lu.assertStrContains(e.message, "[r5.large]")
end

TestQuotaFamilies = {}

function TestQuotaFamilies.test_standard_families_only()
  for _, t in ipairs({ "t3.medium", "t3a.large", "m5.xlarge", "c5.large", "r5.large",
    "i3.large", "im4gn.large", "d3.xlarge", "h1.2xlarge", "z1d.large", "a1.large" }) do
    lu.assertTrue(quota.standard(t), t)
  end
  for _, t in ipairs({ "g4dn.xlarge", "p3.2xlarge", "inf1.xlarge", "x2idn.16xlarge",
    "f1.2xlarge", "dl1.24xlarge", "trn1.2xlarge", "hpc6a.48xlarge", "mac1.metal",
    "u-6tb1.metal", "vt1.3xlarge" }) do
    lu.assertFalse(quota.standard(t), t)
  end
end

os.exit(lu.LuaUnit.run("-v"))
