-- `fo-run --readiness` (lua/fo/readiness.lua) on recipes/trading.lua: a fresh deployment is
-- ready (every check ok); each thing broken through the AWS API (never through the recipe)
-- is found, with its region, resource and what to do, and the run exits 3; the check makes
-- no mutating call. Then the same through `fo-run --target aws` at a served simulator: the
-- same findings as the in-process run on that simulator.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local cjson = require "cjson"
local readiness_cli = require "fo.readiness_cli"

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"
local SUFFIX = "rdy"
local P, S, G = "eu-south-1", "eu-central-1", "us-east-1"

local stack -- the shared applied stack

-- Every topic of the stack gets a confirmed subscription (an operator's queue): a stack
-- nobody is notified by is a warning, which a fresh deploy should not show.
local function subscribe_all(sim, outputs)
  for _, k in ipairs({ "primary_topic_arn", "standby_topic_arn", "global_topic_arn" }) do
    local arn = outputs[k]
    local region = arn:match("^arn:aws:sns:([^:]+):")
    sim:client("sns", { region = region }):Subscribe{ TopicArn = arn, Protocol = "sqs",
      Endpoint = ("arn:aws:sqs:%s:123456789012:oncall"):format(region) }
  end
end

local function applied()
  if not stack then
    stack = testing.apply(RECIPE, { seed = "readiness", stack = "ci",
      config = { environmentSuffix = SUFFIX } })
    stack:check()
    subscribe_all(stack.sim, stack.outputs)
    stack:advance(180) -- the alarms' first whole minutes (the health-check alarm starts in ALARM)
  end
  return stack
end

local function client(service, region) return applied():client(service, region) end

-- `fo-run --readiness --json` in process on the stack's simulator: the exit code and the
-- JSON document; asserts that it made no mutating call.
local function readiness()
  local st = applied()
  local before = st:mutating_calls()
  local out = {}
  local code = readiness_cli.main({ stack = st.stack, dir = st.dir, sim = st.sim, json = true,
    recipe = RECIPE }, function(s) out[#out + 1] = s end)
  lu.assertEquals(st:mutating_calls(), before, "the readiness check made a mutating call")
  local text = table.concat(out)
  lu.assertEquals(select(2, text:gsub("\n", "")), 1, "one JSON document: " .. text)
  return code, cjson.decode(text), text
end

local function failures(doc)
  local out = {}
  for _, f in ipairs(doc.findings) do
    if f.severity ~= "ok" then out[#out + 1] = f end
  end
  return out
end

-- `s` as a Lua pattern that matches it literally.
local function lit(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

-- The one failure of the document (the others all ok), asserted to be about `pattern`.
local function the_failure(code, doc, text, pattern)
  lu.assertEquals(code, 3, text)
  lu.assertEquals(doc.status, "failed")
  local fs = failures(doc)
  local whats = {}
  for i, f in ipairs(fs) do whats[i] = f.severity .. ": " .. f.what end
  local found
  for _, f in ipairs(fs) do
    if f.what:match(pattern) then found = f end
  end
  lu.assertNotNil(found, ("no finding matches %q in:\n%s"):format(pattern, table.concat(whats, "\n")))
  lu.assertEquals(found.severity, "fail")
  lu.assertTrue(#found.fix > 10, "a finding says what to do")
  return found, fs
end

local function assert_ready()
  local code, doc, text = readiness()
  local fs = failures(doc)
  lu.assertEquals(#fs, 0, text)
  lu.assertEquals(code, 0, text)
  lu.assertEquals(doc.status, "ok")
  return doc
end

-- Runs check(); then restore() whatever happened, so that a failed test leaves the next
-- one a ready stack.
local function broken(check, restore)
  local ok, err = pcall(check)
  restore()
  if not ok then error(err, 0) end
  assert_ready()
end

TestReadiness = {}

function TestReadiness:test_1_a_fresh_deployment_is_ready()
  local doc = assert_ready()
  lu.assertEquals(doc.v, 1)
  lu.assertEquals(doc.event, "readiness")
  lu.assertEquals(doc.primary_region, P)
  lu.assertEquals(doc.standby_region, S)
  lu.assertEquals(doc.counts.fail, 0)
  lu.assertEquals(doc.counts.warning, 0)
  -- every kind of check ran and passed
  local checks = {}
  for _, f in ipairs(doc.findings) do checks[f.check] = (checks[f.check] or 0) + 1 end
  for _, c in ipairs({ "alike", "data", "health", "alarms", "capacity" }) do
    lu.assertTrue((checks[c] or 0) > 0, "no " .. c .. " finding")
  end
  -- alike: ALB, listeners, target group, template, group, 3 groups, 3 alarm pairs
  lu.assertEquals(checks.alike, 11)
  -- the vCPU quota is checked: the simulator's default 32 vCPUs hold the standby at the
  -- primary's max size (6 × t3.medium, 2 vCPUs each)
  lu.assertEquals(#doc.not_checked, 0)
  local quota
  for _, f in ipairs(doc.findings) do
    if f.what:match("^EC2 vCPU quota") then quota = f end
  end
  lu.assertNotNil(quota, "no quota finding")
  lu.assertEquals({ quota.severity, quota.check, quota.region }, { "ok", "capacity", S })
  lu.assertStrContains(quota.what, ("EC2 vCPU quota L-1216C47A in %s is 32 vCPUs; the standby "
    .. "at the primary's max size needs 12 (6 × t3.medium of 2 vCPUs, plus 0 vCPUs of 0 other "
    .. "running On-Demand Standard instances there), at the primary's desired capacity 4")
    :format(S))
end

function TestReadiness:test_2_a_listener_changed_in_one_region()
  local elb = client("elbv2", S)
  local lb = elb:DescribeLoadBalancers{ Names = { "alb-standby-" .. SUFFIX } }.LoadBalancers[1]
  local l = elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners[1]
  elb:ModifyListener{ ListenerArn = l.ListenerArn, Port = 8081 }
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text, "^listeners of load balancer alb differs")
    lu.assertEquals(f.region, S)
    lu.assertStrContains(f.what, "HTTP:80")
    lu.assertStrContains(f.what, "HTTP:8081")
  end, function() elb:ModifyListener{ ListenerArn = l.ListenerArn, Port = 80 } end)
end

function TestReadiness:test_3_pitr_disabled_on_the_replica()
  local ddb = client("dynamodb", S)
  local name = "trading-sessions-" .. SUFFIX
  ddb:UpdateContinuousBackups{ TableName = name,
    PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = false } }
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text,
      lit(("point-in-time recovery of %s is DISABLED in %s"):format(name, S)))
    lu.assertEquals(f.region, S)
    lu.assertEquals(f.resource, name)
    lu.assertStrContains(f.fix, "update-continuous-backups --region " .. S)
  end, function()
    ddb:UpdateContinuousBackups{ TableName = name,
      PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = true } }
  end)
end

function TestReadiness:test_4_standby_max_below_the_primary_desired()
  local as = client("autoscaling", S)
  local name = "asg-standby-" .. SUFFIX
  as:UpdateAutoScalingGroup{ AutoScalingGroupName = name, MaxSize = 1 }
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text, "^" .. lit(("standby group %s may grow to 1 "
      .. "instances; the primary runs 2"):format(name)))
    lu.assertEquals(f.check, "capacity")
    lu.assertEquals(f.region, S)
    lu.assertEquals(f.resource, name)
    lu.assertStrContains(f.fix, "--max-size")
  end, function() as:UpdateAutoScalingGroup{ AutoScalingGroupName = name, MaxSize = 6 } end)
end

-- The account's vCPU quota in the standby region (Service Quotas L-1216C47A, the sim's knob
-- ec2_vcpu_quota) below what the standby needs at the primary's max size, then below what it
-- needs at the primary's desired capacity: a failure naming the value to ask for.
function TestReadiness:test_4b_the_vcpu_quota_below_the_need()
  local st = applied()
  for _, case in ipairs({
    { quota = 8, short = "the standby cannot grow to the primary's max size" },
    { quota = 3, short = "the standby cannot even take the primary's current load" },
  }) do
    st.sim.knobs:set("ec2_vcpu_quota", case.quota)
    broken(function()
      local code, doc, text = readiness()
      local f = the_failure(code, doc, text, "^" .. lit(("EC2 vCPU quota L-1216C47A in %s is %d "
        .. "vCPUs; the standby at the primary's max size needs 12"):format(S, case.quota)))
      lu.assertEquals(f.check, "capacity")
      lu.assertEquals(f.region, S)
      lu.assertEquals(f.resource, "asg-standby-" .. SUFFIX)
      lu.assertStrContains(f.what, case.short)
      lu.assertStrContains(f.fix, "request an increase of L-1216C47A in Service Quotas to at "
        .. "least 12 vCPUs in " .. S)
      lu.assertStrContains(f.fix, "--region " .. S .. " --service-code ec2 --quota-code "
        .. "L-1216C47A --desired-value 12")
      lu.assertEquals(doc.counts.fail, 1, text)
    end, function() st.sim.knobs:set("ec2_vcpu_quota", 32) end)
  end
end

-- Other On-Demand Standard instances running in the standby region use the same quota,
-- each by its type's vCPUs (DescribeInstanceTypes); instances of another region do not.
function TestReadiness:test_4c_other_instances_in_the_region_count()
  local st = applied()
  local ec2 = client("ec2", S)
  local ids = {}
  for _, i in ipairs(ec2:RunInstances{ ImageId = require("fo.sim.amis").al2(S),
    InstanceType = "m5.xlarge", MinCount = 2, MaxCount = 2 }.Instances) do
    ids[#ids + 1] = i.InstanceId
  end
  local elsewhere = client("ec2", P):RunInstances{ ImageId = require("fo.sim.amis").al2(P),
    InstanceType = "c5.9xlarge", MinCount = 1, MaxCount = 1 }.Instances[1].InstanceId
  local ok, err = pcall(function()
    local _, doc = readiness()
    local quota
    for _, f in ipairs(doc.findings) do
      if f.what:match("^EC2 vCPU quota") then quota = f end
    end
    lu.assertEquals(quota.severity, "ok", quota.what)
    lu.assertStrContains(quota.what, "needs 20 (6 × t3.medium of 2 vCPUs, plus 8 vCPUs of 2 "
      .. "other running On-Demand Standard instances there), at the primary's desired capacity 12")
    st.sim.knobs:set("ec2_vcpu_quota", 16)
    local code, doc2, text = readiness()
    local f = the_failure(code, doc2, text, "^EC2 vCPU quota L%-1216C47A in " .. lit(S)
      .. " is 16 vCPUs; the standby at the primary's max size needs 20")
    lu.assertStrContains(f.fix, "--desired-value 20")
  end)
  st.sim.knobs:set("ec2_vcpu_quota", 32)
  ec2:TerminateInstances{ InstanceIds = ids }
  client("ec2", P):TerminateInstances{ InstanceIds = { elsewhere } }
  if not ok then error(err, 0) end
  assert_ready()
end

function TestReadiness:test_5_an_alarm_in_alarm()
  local cw = client("cloudwatch", S)
  local name = "alb-5xx-alarm-standby-" .. SUFFIX
  cw:SetAlarmState{ AlarmName = name, StateValue = "ALARM", StateReason = "readiness test" }
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text, "^" .. lit(("alarm %s is in ALARM"):format(name)))
    lu.assertEquals(f.region, S)
    lu.assertEquals(f.check, "alarms")
  end, function()
    cw:SetAlarmState{ AlarmName = name, StateValue = "OK", StateReason = "readiness test" }
  end)
end

function TestReadiness:test_6_standby_targets_unhealthy()
  local elb = client("elbv2", S)
  local tg = elb:DescribeTargetGroups{ Names = { "tg-standby-" .. SUFFIX } }.TargetGroups[1]
  -- the instances answer 404 there: the ALB marks them unhealthy after 3 checks 10 s apart
  elb:ModifyTargetGroup{ TargetGroupArn = tg.TargetGroupArn, HealthCheckPath = "/nothing" }
  applied():advance(40)
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text, "^standby target group tg%-standby%-" .. SUFFIX
      .. ": 0 of 1 targets healthy")
    lu.assertEquals(f.region, S)
    lu.assertEquals(f.resource, tg.TargetGroupArn)
    -- and the two regions' target groups no longer judge targets alike
    the_failure(code, doc, text, "^target group tg differs between the regions: HealthCheckPath")
  end, function()
    elb:ModifyTargetGroup{ TargetGroupArn = tg.TargetGroupArn, HealthCheckPath = "/health" }
    applied():advance(200) -- healthy again, and the regions' alarms back to OK
  end)
end

function TestReadiness:test_7_the_health_check_failing_in_a_region_outage()
  local st = applied()
  st.sim:set_outage(P, true)
  st:advance(40)
  broken(function()
    local code, doc, text = readiness()
    local f = the_failure(code, doc, text,
      "^health check [%x%-]+: 0 of %d+ checkers report success")
    lu.assertEquals(f.resource, st.outputs.health_check_id)
  end, function()
    st.sim:set_outage(P, false)
    st:advance(240)
  end)
end

-- A check left disabled (Route 53 then calls it healthy whatever the primary does) or
-- inverted (a game day interrupted by hand) is found, each with the command that undoes it.
function TestReadiness:test_7b_the_health_check_disabled_or_inverted()
  local st = applied()
  local id = st.outputs.health_check_id
  local r53 = client("route53", "us-east-1")
  for _, case in ipairs({ { field = "Disabled", word = "disabled", fix = "--no-disabled" },
    { field = "Inverted", word = "inverted", fix = "--no-inverted" } }) do
    r53:UpdateHealthCheck{ HealthCheckId = id, [case.field] = true }
    broken(function()
      local code, doc, text = readiness()
      local f = the_failure(code, doc, text, "^health check " .. lit(id) .. " is " .. case.word)
      lu.assertEquals(f.resource, id)
      lu.assertStrContains(f.fix, case.fix)
    end, function()
      r53:UpdateHealthCheck{ HealthCheckId = id, [case.field] = false }
      st:advance(60)
    end)
  end
end

function TestReadiness:test_8_a_subscription_pending()
  local arn = applied().outputs.standby_topic_arn
  client("sns", S):Subscribe{ TopicArn = arn, Protocol = "email", Endpoint = "ops@example.com" }
  local code, doc, text = readiness()
  local f = the_failure(code, doc, text, "^topic failover%-topic%-standby%-" .. SUFFIX
    .. ": 1 subscription pending confirmation %(email ops@example.com%)")
  lu.assertEquals(f.region, S)
  lu.assertEquals(f.resource, arn)
end

function TestReadiness:test_9_text_report_for_an_operator()
  local st = applied()
  local out = {}
  local code = readiness_cli.main({ stack = st.stack, dir = st.dir, sim = st.sim, recipe = RECIPE },
    function(s) out[#out + 1] = s end)
  local text = table.concat(out)
  lu.assertEquals(code, 3, text)
  lu.assertStrContains(text, "Readiness of stack ci (target sim): primary eu-south-1, standby eu-central-1")
  -- failures first, each followed by what to do
  lu.assertStrMatches(text, "^[^\n]*\n  FAIL  alarms   topic failover%-topic%-standby%-rdy: 1 subscription "
    .. "pending confirmation %(email ops@example.com%) %[eu%-central%-1 arn:[^\n]*\n                 do: confirm it.*")
  lu.assertNotStrContains(text, "not checked")
  lu.assertStrContains(text, "Readiness: 1 failed, 0 warnings, ")
  lu.assertStrContains(text, "NOT ready.")
end

function TestReadiness:test_8b_a_rule_and_a_group_setting_changed_in_one_region()
  local ec2, as = client("ec2", P), client("autoscaling", S)
  local sg = ec2:DescribeSecurityGroups{ Filters = { { Name = "group-name",
    Values = { "alb-sg-primary-" .. SUFFIX } } } }.SecurityGroups[1]
  local perm = { { IpProtocol = "tcp", FromPort = 22, ToPort = 22,
    IpRanges = { { CidrIp = "0.0.0.0/0" } } } }
  ec2:AuthorizeSecurityGroupIngress{ GroupId = sg.GroupId, IpPermissions = perm }
  as:UpdateAutoScalingGroup{ AutoScalingGroupName = "asg-standby-" .. SUFFIX,
    HealthCheckGracePeriod = 600 }
  local code, doc, text = readiness()
  local ok, err = pcall(function()
    local f = the_failure(code, doc, text, "^security group alb%-sg differs between the regions")
    lu.assertStrContains(f.what, "tcp 22-22 from 0.0.0.0/0")
    f = the_failure(code, doc, text, "^Auto Scaling group asg differs between the regions")
    lu.assertStrContains(f.what, "HealthCheckGracePeriod: 120 (eu-south-1) vs 600 (eu-central-1)")
    -- the pending subscription of the test before, and these two
    lu.assertEquals(doc.counts.fail, 3, text)
  end)
  ec2:RevokeSecurityGroupIngress{ GroupId = sg.GroupId, IpPermissions = perm }
  as:UpdateAutoScalingGroup{ AutoScalingGroupName = "asg-standby-" .. SUFFIX,
    HealthCheckGracePeriod = 120 }
  if not ok then error(err, 0) end
end

function TestReadiness:test_usage_a_stack_with_no_state()
  local st = applied()
  local code = readiness_cli.main({ stack = "nope", dir = st.dir, sim = st.sim, recipe = RECIPE },
    function() end)
  lu.assertEquals(code, 2)
end

function TestReadiness:test_usage_readiness_changes_nothing_so_takes_no_plan()
  local r = testlib.run_fo({ "--readiness", "--plan", RECIPE })
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "--readiness reads the stack and AWS, and changes nothing")
  lu.assertNotStrContains(r.stderr, "traceback")
end

-- `fo-run --target aws` at a served simulator ------------------------------------------

-- Short AWS transition windows: the served sim's clock runs in real time while fo-run
-- (target aws) polls as it would at AWS.
local FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1 }
local DDB_FAST = { table_create = 0.3, table_delete = 0.3, table_update = 0.2,
  replica_create = 1, replica_delete = 0.5 }

TestReadinessServed = {}

function TestReadinessServed:test_target_aws_gives_the_same_findings()
  local dir = testlib.tmpdir()
  local srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  sim.timing = FAST
  local ddb = require "fo.sim.services.dynamodb"
  local saved = ddb.TIMING
  local t = {}
  for k, v in pairs(saved) do t[k] = v end
  for k, v in pairs(DDB_FAST) do t[k] = v end
  ddb.TIMING = t
  local ok, err = pcall(function()
    local k = require("fo.sim.keys").DEFAULT
    local env = { FO_STATE_DIR = dir .. "/.fo", AWS_ACCESS_KEY_ID = k.access_key,
      AWS_SECRET_ACCESS_KEY = k.secret_key, AWS_REGION = "us-east-1",
      AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port), NO_COLOR = "1" }
    local r = testlib.run_fo({ "--target", "aws", "--yes", "--stack", "prod", "--config",
      "environmentSuffix=" .. SUFFIX, RECIPE }, { env = env, timeout = 400 })
    lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
    local doc = require("fo.engine.state").read(dir .. "/.fo/prod.state.json")
    subscribe_all(sim, doc.outputs)
    sim:advance(180)
    -- the virtual clock alone moves from here: both runs see the same world
    local frozen = sim.clock.real()
    sim.clock.real = function() return frozen end
    -- two things broken through the API
    sim:client("dynamodb", { region = S }):UpdateContinuousBackups{
      TableName = "trading-sessions-" .. SUFFIX,
      PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = false } }
    sim:client("autoscaling", { region = S }):UpdateAutoScalingGroup{
      AutoScalingGroupName = "asg-standby-" .. SUFFIX, MaxSize = 1 }
    -- and the account's vCPU quota there (Service Quotas, read over the wire) too low
    sim.knobs:set("ec2_vcpu_quota", 8)

    local before = sim:count{ mutating = true }
    r = testlib.run_fo({ "--readiness", "--json", "--stack", "prod", RECIPE },
      { env = env, timeout = 120 })
    lu.assertEquals(sim:count{ mutating = true }, before, "the readiness check made a mutating call")
    lu.assertEquals(r.code, 3, r.stdout .. r.stderr)
    local served = cjson.decode(r.stdout)
    lu.assertEquals(served.target, "aws")
    lu.assertEquals(served.counts.fail, 3, r.stdout)
    local quota
    for _, f in ipairs(served.findings) do
      if f.what:match("^EC2 vCPU quota") then quota = f end
    end
    lu.assertEquals(quota.severity, "fail", r.stdout)
    lu.assertStrContains(quota.what, "EC2 vCPU quota L-1216C47A in " .. S .. " is 8 vCPUs")

    -- the same check in process, through the simulator's own clients
    local here = require("fo.readiness").run(doc, function(service, region)
      return sim:client(service, { region = region })
    end)
    local function rows(list)
      local out = {}
      for i, f in ipairs(list) do
        out[i] = table.concat({ f.severity, f.check, f.what, tostring(f.region),
          tostring(f.resource) }, " | ")
      end
      return out
    end
    lu.assertEquals(rows(served.findings), rows(here.findings))
    -- and the text report on a terminal-less stdout
    r = testlib.run_fo({ "--readiness", "--target", "aws", "--stack", "prod", RECIPE },
      { env = env, timeout = 120 })
    lu.assertEquals(r.code, 3, r.stdout .. r.stderr)
    lu.assertStrContains(r.stdout, "Readiness of stack prod (target aws)")
    lu.assertStrContains(r.stdout, "Readiness: 3 failed, 0 warnings")
    -- --target sim on a stack bound to aws is a usage error
    r = testlib.run_fo({ "--readiness", "--target", "sim", "--stack", "prod", RECIPE },
      { env = env, timeout = 60 })
    lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
    lu.assertStrContains(r.stderr, "stack prod is bound to target aws, not sim")
  end)
  srv:close()
  ddb.TIMING = saved
  testlib.rmtree(dir)
  if not ok then error(err, 0) end
end

os.exit(lu.LuaUnit.run("-v"))
