-- ALB access logs through both AWS CLIs a user may have (the current one on PATH and
-- Debian's), against the served simulator: `aws elbv2 modify-load-balancer-attributes`
-- turning access logs on answers InvalidConfigurationRequest "Access Denied for bucket"
-- while the bucket's policy does not admit eu-south-1's ELB account, and succeeds once it
-- does, leaving the ELBAccessLogTestFile object in the bucket.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local dir = t.tmpdir()
local sim = cli.start_sim(dir, 900)

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url)
  local function ok(args)
    local code, out, err = aws(args)
    lu.assertEquals(code, 0, ("aws %s: %s"):format(table.concat(args, " "), err))
    return out
  end
  local vpc = ok{ "ec2", "create-vpc", "--cidr-block", "10.7.0.0/16", "--query", "Vpc.VpcId" }
  local igw = ok{ "ec2", "create-internet-gateway", "--query", "InternetGateway.InternetGatewayId" }
  ok{ "ec2", "attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc }
  local subnets = {}
  for i, az in ipairs({ "eu-south-1a", "eu-south-1b" }) do
    subnets[i] = ok{ "ec2", "create-subnet", "--vpc-id", vpc, "--availability-zone", az,
      "--cidr-block", ("10.7.%d.0/24"):format(i), "--query", "Subnet.SubnetId" }
  end
  local lb = ok{ "elbv2", "create-load-balancer", "--name", "alb-logs-" .. which,
    "--subnets", subnets[1], subnets[2], "--query", "LoadBalancers[0].LoadBalancerArn" }
  local bucket = "alb-logs-cli-" .. which
  ok{ "s3api", "create-bucket", "--bucket", bucket,
    "--create-bucket-configuration", "LocationConstraint=eu-south-1" }
  local attrs = { "elbv2", "modify-load-balancer-attributes", "--load-balancer-arn", lb,
    "--attributes", "Key=access_logs.s3.enabled,Value=true",
    "Key=access_logs.s3.bucket,Value=" .. bucket, "Key=access_logs.s3.prefix,Value=alb" }
  -- no policy yet: refused as AWS refuses it (v2 exits 254, v1 255)
  local code, _, err = aws(attrs)
  lu.assertTrue(code == 254 or code == 255, "exit " .. code)
  lu.assertStrContains(err, "InvalidConfigurationRequest")
  lu.assertStrContains(err, "Access Denied for bucket: " .. bucket .. ". Please check S3bucket permission")
  -- the policy AWS documents for eu-south-1: its ELB account puts under alb/AWSLogs/<account>/
  ok{ "s3api", "put-bucket-policy", "--bucket", bucket, "--policy", ([[{"Version":"2012-10-17",
    "Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::635631232127:root"},
    "Action":"s3:PutObject","Resource":"arn:aws:s3:::%s/alb/AWSLogs/123456789012/*"}]}]]):format(bucket) }
  ok(attrs)
  lu.assertEquals(ok{ "elbv2", "describe-load-balancer-attributes", "--load-balancer-arn", lb,
    "--query", "Attributes[?Key=='access_logs.s3.enabled'].Value" }, "true")
  lu.assertEquals(ok{ "s3api", "list-objects-v2", "--bucket", bucket, "--query", "Contents[].Key" },
    "alb/AWSLogs/123456789012/ELBAccessLogTestFile")
  print("  " .. version)
end

TestAwsCliElbAccessLogs = {}

function TestAwsCliElbAccessLogs.test_current_cli() scenario("current") end
function TestAwsCliElbAccessLogs.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
