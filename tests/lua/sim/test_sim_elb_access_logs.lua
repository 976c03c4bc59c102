-- ALB access logs in the simulator: ModifyLoadBalancerAttributes turning access logs on
-- checks the bucket as AWS does (same region, SSE-S3 default encryption, a policy that lets
-- the region's ELB log deliverer put objects under <prefix>/AWSLogs/<account>/) and answers
-- InvalidConfigurationRequest "Access Denied for bucket: ..." otherwise, changing nothing;
-- on success it writes the ELBAccessLogTestFile object.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local net = require "support.sim_net"

local ACCOUNT = "123456789012"
-- The ELB accounts AWS documents for these regions (ALB guide, bucket permissions).
local ELB = { ["eu-south-1"] = "635631232127", ["eu-central-1"] = "054676820928" }

local function policy(bucket, principal, prefix)
  return cjson.encode({ Version = "2012-10-17", Statement = { {
    Effect = "Allow", Principal = principal, Action = "s3:PutObject",
    Resource = ("arn:aws:s3:::%s/%sAWSLogs/%s/*"):format(bucket, prefix or "alb/", ACCOUNT) } } })
end

local function setup(region)
  local sim = net.sim()
  local n = net.build(sim, region)
  local elb = sim:client("elbv2", { region = region })
  local s3 = sim:client("s3", { region = region })
  local lb = elb:CreateLoadBalancer{ Name = "alb-logs", Type = "application",
    Subnets = n.public, SecurityGroups = { n.alb_sg } }.LoadBalancers[1]
  return sim, elb, s3, lb.LoadBalancerArn
end

local function bucket(s3, name, region, principal, sse)
  s3:CreateBucket{ Bucket = name, CreateBucketConfiguration = { LocationConstraint = region } }
  if sse then
    s3:PutBucketEncryption{ Bucket = name, ServerSideEncryptionConfiguration = { Rules = { {
      ApplyServerSideEncryptionByDefault = { SSEAlgorithm = sse } } } } }
  end
  if principal then s3:PutBucketPolicy{ Bucket = name, Policy = policy(name, principal) } end
end

local function enable(elb, arn, name, prefix)
  return elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = arn, Attributes = {
    { Key = "access_logs.s3.enabled", Value = "true" }, { Key = "access_logs.s3.bucket", Value = name },
    { Key = "access_logs.s3.prefix", Value = prefix or "alb" } } }
end

local function attrs(elb, arn)
  local out = {}
  for _, a in ipairs(elb:DescribeLoadBalancerAttributes{ LoadBalancerArn = arn }.Attributes) do
    out[a.Key] = a.Value
  end
  return out
end

local function denied(elb, arn, name)
  net.expect(lu, "InvalidConfigurationRequest",
    ("Access Denied for bucket: %s. Please check S3bucket permission"):format(name), enable, elb, arn, name)
  lu.assertEquals(attrs(elb, arn)["access_logs.s3.enabled"], "false") -- nothing changed
  lu.assertEquals(attrs(elb, arn)["access_logs.s3.bucket"], "")
end

TestAccessLogs = {}

function TestAccessLogs.test_each_region_delivers_as_its_own_elb_account_and_writes_the_test_file()
  for region, elb_account in pairs(ELB) do
    local _, elb, s3, arn = setup(region)
    local name = "logs-" .. region
    bucket(s3, name, region, { AWS = "arn:aws:iam::" .. elb_account .. ":root" }, "AES256")
    enable(elb, arn, name)
    lu.assertEquals(attrs(elb, arn)["access_logs.s3.enabled"], "true")
    local key = "alb/AWSLogs/" .. ACCOUNT .. "/ELBAccessLogTestFile"
    local obj = s3:GetObject{ Bucket = name, Key = key }
    lu.assertStrContains(obj.Body, "Enable AccessLog for ELB: alb-logs at ")
    lu.assertEquals(obj.ServerSideEncryption, "AES256")
  end
end

function TestAccessLogs.test_the_other_regions_elb_account_is_refused()
  local _, elb, s3, arn = setup("eu-south-1")
  bucket(s3, "logs-wrong", "eu-south-1", { AWS = "arn:aws:iam::" .. ELB["eu-central-1"] .. ":root" })
  denied(elb, arn, "logs-wrong")
  lu.assertEquals(s3:ListObjectVersions{ Bucket = "logs-wrong" }.Versions, nil)
end

function TestAccessLogs.test_a_bucket_without_policy_missing_or_in_another_region_is_refused()
  local sim, elb, s3, arn = setup("eu-south-1")
  bucket(s3, "logs-nopolicy", "eu-south-1")
  denied(elb, arn, "logs-nopolicy")
  denied(elb, arn, "logs-missing")
  local s3c = sim:client("s3", { region = "eu-central-1" })
  bucket(s3c, "logs-central", "eu-central-1", { AWS = "arn:aws:iam::" .. ELB["eu-south-1"] .. ":root" })
  denied(elb, arn, "logs-central")
end

function TestAccessLogs.test_an_sse_kms_bucket_is_refused_even_with_the_right_policy()
  local _, elb, s3, arn = setup("eu-south-1")
  bucket(s3, "logs-kms", "eu-south-1", { AWS = "arn:aws:iam::" .. ELB["eu-south-1"] .. ":root" }, "aws:kms")
  denied(elb, arn, "logs-kms")
end

function TestAccessLogs.test_a_policy_for_another_prefix_or_a_deny_is_refused()
  local _, elb, s3, arn = setup("eu-south-1")
  bucket(s3, "logs-prefix", "eu-south-1", { AWS = "arn:aws:iam::" .. ELB["eu-south-1"] .. ":root" })
  net.expect(lu, "InvalidConfigurationRequest", nil, enable, elb, arn, "logs-prefix", "other")
  -- an explicit Deny of the deliverer wins over the Allow
  local doc = cjson.decode(policy("logs-prefix", { AWS = "arn:aws:iam::" .. ELB["eu-south-1"] .. ":root" }))
  doc.Statement[2] = { Effect = "Deny", Principal = "*", Action = "s3:PutObject",
    Resource = "arn:aws:s3:::logs-prefix/*" }
  s3:PutBucketPolicy{ Bucket = "logs-prefix", Policy = cjson.encode(doc) }
  denied(elb, arn, "logs-prefix")
end

function TestAccessLogs.test_a_region_without_elb_account_uses_the_log_delivery_service_principal()
  -- regions launched since August 2022 have no ELB account: fo.aws.elb_log_delivery says
  -- which principal; the sim serves none of them, so the module's answer is checked here
  local d = require "fo.aws.elb_log_delivery"
  lu.assertEquals(d.principal("eu-south-2"), { Service = "logdelivery.elasticloadbalancing.amazonaws.com" })
  lu.assertEquals(d.principal("eu-south-1"), { AWS = "arn:aws:iam::635631232127:root" })
  lu.assertEquals(d.principal("eu-central-1"), { AWS = "arn:aws:iam::054676820928:root" })
  lu.assertEquals(d.key_prefix("/alb/", ACCOUNT), "alb/AWSLogs/123456789012/")
  lu.assertEquals(d.key_prefix("", ACCOUNT), "AWSLogs/123456789012/")
end

function TestAccessLogs.test_turning_logs_off_needs_no_bucket()
  local _, elb, s3, arn = setup("eu-south-1")
  bucket(s3, "logs-ok", "eu-south-1", { AWS = "arn:aws:iam::" .. ELB["eu-south-1"] .. ":root" })
  enable(elb, arn, "logs-ok")
  s3:DeleteBucketPolicy{ Bucket = "logs-ok" }
  elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = arn,
    Attributes = { { Key = "access_logs.s3.enabled", Value = "false" } } }
  lu.assertEquals(attrs(elb, arn)["access_logs.s3.enabled"], "false")
  -- other attributes never look at the bucket
  elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = arn,
    Attributes = { { Key = "idle_timeout.timeout_seconds", Value = "30" } } }
end

os.exit(lu.LuaUnit.run())
