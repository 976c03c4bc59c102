-- recipes/components/trading_region.lua on its own: a recipe of this test's (not
-- recipes/trading.lua) requires the component and makes one instance, "edge", in one
-- region, applied on the embedded simulator and read back through fo's AWS clients: its
-- resources named edge/..., the network, the ALB serving healthy targets, the alarms on
-- the region's topic, the logs under the given key; a rerun changes nothing; destroy
-- leaves nothing of it.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local health_user_data = require "support.health_user_data"

local REGION = "eu-west-1"
local S = "comp"

-- The recipe: what a region needs from the rest of a stack (an account probe, the
-- instances' role and profile, the region's key), then the component.
local RECIPE = ([=[
package.path = %q .. "/?.lua;" .. package.path
require "fo.aws.resources"
local region = require "components.trading_region"
local REGION, S, GLOBAL = %q, %q, "us-east-1"

fo.type("edge:account", { data = true, schema = { properties = {}, outputs = { "account" } },
  create = function(ctx)
    return ctx.region, { account = ctx:client("sts"):GetCallerIdentity{}.Account }
  end,
  read = function(_, _, _, outputs) return outputs end,
  update = function(_, _, _, _, outputs) return outputs end })
local probe = fo.resource("edge:account", "account", {}, { region = REGION })
local function tags(role, name) return { Environment = "Test", FailoverRole = role, Name = name } end
local function log_group_name(kind) return ("/edge/%%s/%%s"):format(S, kind) end

local key = fo.resource("aws:kms:key", "key", { description = "edge " .. S,
  deletion_window_in_days = 7, enable_key_rotation = true,
  policy = fo.apply(probe.account, function(account) return { Version = "2012-10-17", Statement = {
    { Sid = "Admin", Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. account .. ":root" },
      Action = "kms:*", Resource = "*" },
    { Sid = "Alarms", Effect = "Allow", Principal = { Service = "cloudwatch.amazonaws.com" },
      Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*" },
    { Sid = "Logs", Effect = "Allow", Principal = { Service = "logs." .. REGION .. ".amazonaws.com" },
      Action = { "kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
        "kms:Describe*" }, Resource = "*",
      Condition = { ArnLike = { ["kms:EncryptionContext:aws:logs:arn"] =
        ("arn:aws:logs:%%s:%%s:log-group:/edge/*"):format(REGION, account) } } } } } end) },
  { region = REGION })
local role = fo.resource("aws:iam:role", "ec2", { name = "edge-ec2-" .. S,
  assume_role_policy = { Version = "2012-10-17", Statement = { { Effect = "Allow",
    Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" } } } },
  { region = GLOBAL })
local profile = fo.resource("aws:iam:instance_profile", "ec2", { name = "edge-ec2-" .. S,
  role_name = role.name }, { region = GLOBAL })

local edge = region("edge", {
  role = "Primary", region = REGION, vpc_cidr = "10.42.0.0/16", capacity = 1,
  cfg = { primaryRegion = REGION, availabilityZones = { "a", "b" }, private_egress = "endpoints",
    appPort = 8080, healthPath = "/health", cpuTarget = 50, maxCapacity = 2,
    instanceType = "t3.micro", logRetentionDays = 7, alarmEmail = "" },
  suffix = S, tags = tags, probes = { probe }, global_region = GLOBAL, key = key,
  profile = profile, ami = { parameter = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2" },
  user_data = %q, log_kinds = { "vpc-flow-logs", "app", "health" },
  log_group_name = log_group_name,
  topic_policy = function(arn) return { Version = "2012-10-17", Statement = { { Sid = "Alarms",
    Effect = "Allow", Principal = { Service = "cloudwatch.amazonaws.com" },
    Action = "sns:Publish", Resource = arn } } } end,
}, { region = REGION })
fo.output("alb_dns_name", edge.alb.dns_name)
fo.output("topic_arn", edge.topic.arn)
]=]):format(testlib.tests_dir .. "/../recipes", REGION, S, health_user_data.script(8080, "/health"))

local st
TestTradingRegionComponent = {}

function TestTradingRegionComponent.setUp()
  if st then return end
  local dir = testing.tmpdir()
  testlib.write(dir .. "/edge.lua", RECIPE)
  st = testing.apply(dir .. "/edge.lua")
  st.recipe_dir = dir
  st:check()
end

local function state()
  return require("fo.json").decode(testlib.read(st.dir .. "/test.state.json"))
end

function TestTradingRegionComponent.test_1_resources_are_named_under_the_instance()
  local names, outside = 0, {}
  for _, rec in pairs(state().resources) do
    if rec.name:match("^edge/") then names = names + 1
    else outside[#outside + 1] = rec.name end
  end
  table.sort(outside)
  lu.assertEquals(outside, { "account", "ec2", "ec2", "key" })
  lu.assertTrue(names >= 40, names)
  lu.assertNotNil(state().resources["test::aws:ec2:vpc::edge/vpc"])
  lu.assertNotNil(state().resources["test::aws:iam:role::edge/flow-logs"])
  -- the plan showed them under the instance
  lu.assertStrContains(st.out, "      edge/ (region)\n")
  lu.assertStrContains(st.out, "\n  +     aws:ec2:vpc edge/vpc ")
end

function TestTradingRegionComponent.test_2_network_alb_and_healthy_targets()
  local ec2 = st:client("ec2", REGION)
  local vpcs = ec2:DescribeVpcs{ Filters = { { Name = "cidr", Values = { "10.42.0.0/16" } } } }.Vpcs
  lu.assertEquals(#vpcs, 1)
  lu.assertEquals(testing.tag_map(vpcs[1].Tags).Name, "vpc-edge-" .. S)
  local subnets = ec2:DescribeSubnets{ Filters = { { Name = "vpc-id", Values = { vpcs[1].VpcId } } } }.Subnets
  lu.assertEquals(#subnets, 4)
  local elb = st:client("elbv2", REGION)
  local lb = elb:DescribeLoadBalancers{ Names = { "alb-edge-" .. S } }.LoadBalancers[1]
  lu.assertEquals(lb.DNSName, st.outputs.alb_dns_name)
  local tg = elb:DescribeTargetGroups{ Names = { "tg-edge-" .. S } }.TargetGroups[1]
  st:advance(120)
  local health = elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions
  lu.assertEquals(#health, 1)
  lu.assertEquals(health[1].TargetHealth.State, "healthy")
end

function TestTradingRegionComponent.test_3_alarms_notify_the_topic_and_logs_use_the_key()
  local cw = st:client("cloudwatch", REGION)
  local alarms = cw:DescribeAlarms{}.MetricAlarms
  local mine = {}
  for _, a in ipairs(alarms) do
    if a.AlarmName:match("%-edge%-" .. S .. "$") then
      mine[#mine + 1] = a.AlarmName
      lu.assertEquals(a.AlarmActions, { st.outputs.topic_arn })
    end
  end
  table.sort(mine)
  lu.assertEquals(mine, { "alb-5xx-alarm-edge-" .. S, "alb-unhealthy-hosts-alarm-edge-" .. S,
    "asg-in-service-alarm-edge-" .. S })
  local key_arn = state().resources["test::aws:kms:key::key"].outputs.arn
  local groups = st:client("logs", REGION):DescribeLogGroups{ logGroupNamePrefix = "/edge/" }.logGroups
  lu.assertEquals(#groups, 3)
  for _, g in ipairs(groups) do lu.assertEquals(g.kmsKeyId, key_arn, g.logGroupName) end
end

function TestTradingRegionComponent.test_4_rerun_changes_nothing_then_destroy_leaves_nothing()
  local before = st:mutating_calls()
  lu.assertEquals(st:run(), 0, st.err)
  lu.assertStrContains(st.out, "No changes.")
  lu.assertEquals(st:mutating_calls(), before)
  lu.assertEquals(st:destroy(), 0, st.out .. st.err)
  local ec2 = st:client("ec2", REGION)
  lu.assertEquals(ec2:DescribeVpcs{ Filters = { { Name = "cidr", Values = { "10.42.0.0/16" } } } }.Vpcs, {})
  lu.assertEquals(st:client("elbv2", REGION):DescribeLoadBalancers{}.LoadBalancers, {})
  lu.assertEquals(next(state().resources), nil)
  st:close()
  testing.rmtree(st.recipe_dir)
end

os.exit(lu.LuaUnit.run("-v", table.unpack(arg or {})))
