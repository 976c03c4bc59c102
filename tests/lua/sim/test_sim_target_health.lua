-- Target health from the simulated data plane (docs/simulator.md, "Target health"): a
-- target is healthy only when the security groups let the load balancer's check through
-- on the health-check port, the instance's user data starts a server there, and it
-- answers the check's path with a code the matcher accepts. DescribeTargetHealth gives
-- AWS's reasons (Target.Timeout, Target.FailedHealthChecks, Target.ResponseCodeMismatch),
-- and Route 53's check through the ALB follows. Last, the trading recipe itself: healthy
-- in both regions as written, unhealthy when its security group rule goes or its user
-- data names a program the image does not have.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local net = require "support.sim_net"
local topo = require "support.sim_topology"
local health_ud = require "support.health_user_data"
local testlib = require "support.testlib"
local simlib = require "fo.sim"

local R = "eu-south-1"

-- One region: ALB (alb-sg), target group HTTP:8080 checking /health, HTTP:80 listener,
-- ASG of 2 in the private subnets (app-sg, admitting 8080 from alb-sg). opts.user_data,
-- opts.tg (CreateTargetGroup fields) change the world before the instances launch.
local function stack(opts)
  opts = opts or {}
  local sim = net.sim()
  local n = net.build(sim, R, { user_data = opts.user_data })
  local elb = sim:client("elbv2", { region = R })
  local ec2 = sim:client("ec2", { region = R })
  local lb = elb:CreateLoadBalancer{ Name = "alb-th", Type = "application", Scheme = "internet-facing",
    Subnets = n.public, SecurityGroups = { n.alb_sg } }.LoadBalancers[1]
  local p = { Name = "tg-th", Protocol = "HTTP", Port = 8080, VpcId = n.vpc, TargetType = "instance",
    HealthCheckPath = "/health", HealthCheckIntervalSeconds = 10, HealthyThresholdCount = 2,
    UnhealthyThresholdCount = 3, Matcher = { HttpCode = "200" } }
  for k, v in pairs(opts.tg or {}) do p[k] = v end
  local tg = elb:CreateTargetGroup(p).TargetGroups[1]
  elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = { { Type = "forward", TargetGroupArn = tg.TargetGroupArn } } }
  sim:client("autoscaling", { region = R }):CreateAutoScalingGroup{ AutoScalingGroupName = "asg-th",
    MinSize = 2, MaxSize = 2, DesiredCapacity = 2,
    LaunchTemplate = { LaunchTemplateId = n.lt, Version = "$Latest" },
    VPCZoneIdentifier = table.concat(n.private, ","), TargetGroupARNs = { tg.TargetGroupArn } }
  local w = { sim = sim, n = n, elb = elb, ec2 = ec2, lb = lb, tg = tg }
  -- Both targets' health (they share their configuration, so it is one answer).
  function w.health()
    local d = elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions
    lu.assertEquals(#d, 2)
    lu.assertEquals(d[1].TargetHealth, d[2].TargetHealth)
    return d[1].TargetHealth
  end
  return w
end

local HEALTHY = { State = "healthy" }
local TIMEOUT = { State = "unhealthy", Reason = "Target.Timeout", Description = "Request timed out" }
local FAILED = { State = "unhealthy", Reason = "Target.FailedHealthChecks",
  Description = "Health checks failed" }

local function ingress(w, group, perm) w.ec2:AuthorizeSecurityGroupIngress{ GroupId = group, IpPermissions = { perm } } end
local function revoke_ingress(w, group, perm) w.ec2:RevokeSecurityGroupIngress{ GroupId = group, IpPermissions = { perm } } end
local from_alb = function(w, port)
  return { IpProtocol = "tcp", FromPort = port or 8080, ToPort = port or 8080,
    UserIdGroupPairs = { { GroupId = w.n.alb_sg } } }
end

TestTargetHealthNetwork = {}

function TestTargetHealthNetwork.test_healthy_when_the_app_group_admits_the_alb_group_on_the_port()
  local w = stack()
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthNetwork.test_timeout_when_the_instance_group_does_not_admit_the_alb()
  local w = stack()
  revoke_ingress(w, w.n.app_sg, from_alb(w))
  lu.assertEquals(w.health(), TIMEOUT)
  -- admitting the ALB's group on another port does not help
  ingress(w, w.n.app_sg, from_alb(w, 8081))
  lu.assertEquals(w.health(), TIMEOUT)
  -- a CIDR over one of the ALB's two subnets leaves the other node's checks dropped
  ingress(w, w.n.app_sg, { IpProtocol = "tcp", FromPort = 8080, ToPort = 8080,
    IpRanges = { { CidrIp = "10.20.1.0/24" } } })
  lu.assertEquals(w.health(), TIMEOUT)
  -- the VPC's CIDR covers both: healthy again
  ingress(w, w.n.app_sg, { IpProtocol = "tcp", FromPort = 8000, ToPort = 9000,
    IpRanges = { { CidrIp = "10.20.0.0/16" } } })
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthNetwork.test_timeout_when_the_alb_group_allows_no_egress_to_the_instances()
  local w = stack()
  w.ec2:RevokeSecurityGroupEgress{ GroupId = w.n.alb_sg, IpPermissions = { { IpProtocol = "-1",
    IpRanges = { { CidrIp = "0.0.0.0/0" } } } } }
  lu.assertEquals(w.health(), TIMEOUT)
  w.ec2:AuthorizeSecurityGroupEgress{ GroupId = w.n.alb_sg, IpPermissions = { { IpProtocol = "tcp",
    FromPort = 8080, ToPort = 8080, UserIdGroupPairs = { { GroupId = w.n.app_sg } } } } }
  lu.assertEquals(w.health(), HEALTHY)
end

TestTargetHealthCheckSettings = {}

function TestTargetHealthCheckSettings.test_another_port_times_out_then_finds_nothing_listening()
  local w = stack({ tg = { HealthCheckPort = "9090" } })
  lu.assertEquals(w.health(), TIMEOUT, "the app group admits 8080 only")
  ingress(w, w.n.app_sg, from_alb(w, 9090))
  lu.assertEquals(w.health(), FAILED, "nothing listens on 9090")
  -- back to the traffic port
  w.elb:ModifyTargetGroup{ TargetGroupArn = w.tg.TargetGroupArn, HealthCheckPort = "traffic-port" }
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthCheckSettings.test_another_path_is_a_response_code_mismatch()
  local w = stack({ tg = { HealthCheckPath = "/ready" } })
  lu.assertEquals(w.health(), { State = "unhealthy", Reason = "Target.ResponseCodeMismatch",
    Description = "Health checks failed with these codes: [404]" })
  -- the server ignores the query string, as the recipe's does
  w.elb:ModifyTargetGroup{ TargetGroupArn = w.tg.TargetGroupArn, HealthCheckPath = "/health?probe=alb" }
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthCheckSettings.test_the_matcher_decides_which_codes_pass()
  local w = stack({ tg = { HealthCheckPath = "/ready", Matcher = { HttpCode = "200-399" } } })
  lu.assertEquals(w.health().Reason, "Target.ResponseCodeMismatch")
  w.elb:ModifyTargetGroup{ TargetGroupArn = w.tg.TargetGroupArn, Matcher = { HttpCode = "200,404" } }
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthCheckSettings.test_an_https_check_on_a_plain_http_server_fails()
  local w = stack({ tg = { HealthCheckProtocol = "HTTPS" } })
  lu.assertEquals(w.health(), FAILED)
end

TestTargetHealthUserData = {}

-- Each broken user data leaves nothing answering on 8080 for the load balancer.
local BROKEN = {
  listens_elsewhere = health_ud.base64(9000, "/health"),
  binary_never_installed = health_ud.base64(8080, "/health", { program = "/usr/bin/node" }),
  relative_program = health_ud.base64(8080, "/health", { program = "python3" }),
  script_never_written = health_ud.base64(8080, "/health", { script_path = "/opt/app/server.py" }),
  bound_to_loopback = health_ud.base64(8080, "/health", { host = "127.0.0.1" }),
  unit_never_started = health_ud.base64(8080, "/health", { start = false }),
  not_a_script = require("fo.crypto").base64_encode(
    (health_ud.script(8080, "/health"):gsub("^#![^\n]*\n", ""))),
  -- Python 2 has no http.server: the script exits at once
  python2_without_fallback = require("fo.crypto").base64_encode(
    (health_ud.script(8080, "/health", { program = "/usr/bin/python" })
      :gsub("try:\n    from http.server [^\n]*\nexcept ImportError:\n    from BaseHTTPServer [^\n]*\n",
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"))),
}

for name, ud in pairs(BROKEN) do
  TestTargetHealthUserData["test_" .. name] = function()
    lu.assertEquals(stack({ user_data = ud }).health(), FAILED)
  end
end

function TestTargetHealthUserData.test_no_user_data_serves_nothing()
  lu.assertEquals(stack({ user_data = false }).health(), FAILED)
end

function TestTargetHealthUserData.test_python2_with_the_fallback_import_serves()
  local w = stack({ user_data = health_ud.base64(8080, "/health", { program = "/usr/bin/python" }) })
  lu.assertEquals(w.health(), HEALTHY)
end

-- The handler's other recognised shape: `if <path comparison>:` … `else:` with literal codes.
local function if_else(script, else_line)
  local out, n = script:gsub("        ok = ([^\n]*)\n        self.send_response%(200 if ok else 404%)\n",
    "        if %1:\n            self.send_response(200)\n        else:\n" .. else_line .. "\n")
  lu.assertEquals(n, 1)
  return require("fo.crypto").base64_encode(out)
end

function TestTargetHealthUserData.test_an_if_else_handler_answers_per_path()
  local w = stack({ user_data = if_else(health_ud.script(8080, "/health"),
    "            self.send_error(404, 'not found')"), tg = { HealthCheckPath = "/ready" } })
  lu.assertEquals(w.health(), { State = "unhealthy", Reason = "Target.ResponseCodeMismatch",
    Description = "Health checks failed with these codes: [404]" })
  w.elb:ModifyTargetGroup{ TargetGroupArn = w.tg.TargetGroupArn, HealthCheckPath = "/health" }
  lu.assertEquals(w.health(), HEALTHY)
end

function TestTargetHealthUserData.test_a_handler_that_sends_nothing_for_the_path_fails()
  local w = stack({ user_data = if_else(health_ud.script(8080, "/health"), "            pass"),
    tg = { HealthCheckPath = "/ready" } })
  lu.assertEquals(w.health(), FAILED)
end

function TestTargetHealthUserData.test_the_user_data_is_the_one_the_instance_launched_with()
  local w = stack()
  -- a new template version with a broken server: running instances keep what they booted
  w.ec2:CreateLaunchTemplateVersion{ LaunchTemplateId = w.n.lt, SourceVersion = "1",
    LaunchTemplateData = { UserData = health_ud.base64(9000, "/health") } }
  lu.assertEquals(w.health(), HEALTHY)
end

-- Amazon Linux 2023 has no /usr/bin/python (only python3): a unit running it fails on an
-- AL2023 instance, python3 serves. The instances move to each new version by an instance
-- refresh (the group pinned to the version number).
function TestTargetHealthUserData.test_al2023_has_python3_only()
  local amis = require "fo.sim.amis"
  local w = stack()
  local asg = w.sim:client("autoscaling", { region = R })
  local function roll(version, program)
    w.ec2:CreateLaunchTemplateVersion{ LaunchTemplateId = w.n.lt, SourceVersion = "1",
      LaunchTemplateData = { ImageId = amis.al2023(R),
        UserData = health_ud.base64(8080, "/health", { program = program }) } }
    asg:UpdateAutoScalingGroup{ AutoScalingGroupName = "asg-th",
      LaunchTemplate = { LaunchTemplateId = w.n.lt, Version = tostring(version) } }
    asg:StartInstanceRefresh{ AutoScalingGroupName = "asg-th",
      Preferences = { MinHealthyPercentage = 50, SkipMatching = true, InstanceWarmup = 1 } }
    w.sim:advance(10)
    local r = asg:DescribeInstanceRefreshes{ AutoScalingGroupName = "asg-th" }.InstanceRefreshes[1]
    lu.assertEquals({ r.Status, r.InstancesToUpdate, r.PercentageComplete }, { "Successful", 0, 100 })
    for _, i in ipairs(asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { "asg-th" } }
        .AutoScalingGroups[1].Instances) do
      if i.LifecycleState == "InService" then lu.assertEquals(i.LaunchTemplate.Version, tostring(version)) end
    end
  end
  roll(2, "/usr/bin/python")
  lu.assertEquals(w.health(), FAILED)
  roll(3, "/usr/bin/python3")
  lu.assertEquals(w.health(), HEALTHY)
end

TestTargetHealthFailover = {}

-- Route 53's HTTP check through the primary ALB fails when no target is healthy, and
-- DNS answers the standby; the standby's alias (EvaluateTargetHealth) is judged the same way.
function TestTargetHealthFailover.test_a_broken_primary_fails_its_check_and_dns_answers_the_standby()
  local B = math.ceil(os.time() / 60) * 60 + 60
  local sim = simlib.new{ seed = 42, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 2, { user_data = health_ud.base64(80, "/healthz") })
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5)
  local g = topo.global(sim, p, s)
  local d = sim:invoke("elbv2", "eu-south-1", "DescribeTargetHealth", { TargetGroupArn = p.tg_arn })
  lu.assertEquals(d.TargetHealthDescriptions[1].TargetHealth.Reason, "Target.ResponseCodeMismatch")
  sim:advance(30) -- three failed checks 10 s apart
  local st = sim:health_check_status(g.hc)
  lu.assertFalse(st.healthy)
  -- the ALB fails open: the request reaches a target, which does not serve /health
  lu.assertStrContains(st.last.status, "HTTP Status Code 404")
  local r = sim:resolve("app.trading.fo.test", "A")
  lu.assertEquals(r.chosen, "standby")
  lu.assertEquals(r.records, { { SetIdentifier = "primary", Weight = 100, healthy = false },
    { SetIdentifier = "standby", Weight = 0, healthy = true } })
end

-- Healthy targets, but the Route 53 check asks the ALB for a path the servers do not
-- serve: the request reaches a target, whose 404 fails the check.
function TestTargetHealthFailover.test_the_route53_path_reaches_a_target_through_the_alb()
  local B = math.ceil(os.time() / 60) * 60 + 60
  local sim = simlib.new{ seed = 42, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 2)
  sim:advance(5)
  local function check(path)
    local id = sim:invoke("route53", nil, "CreateHealthCheck", { CallerReference = "hc" .. path,
      HealthCheckConfig = { Type = "HTTP", FullyQualifiedDomainName = p.dns, Port = 80,
        ResourcePath = path, RequestInterval = 10, FailureThreshold = 3 } }).HealthCheck.Id
    sim:advance(0)
    return sim:health_check_status(id).last.status
  end
  lu.assertEquals(check("/health"), "Success: HTTP Status Code 200, OK")
  lu.assertEquals(check("/health?from=route53"), "Success: HTTP Status Code 200, OK")
  lu.assertEquals(check("/healthz"), "Failure: HTTP Status Code 404, Not Found")
end

TestTargetHealthTradingRecipe = {}

local FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1 }
local dynamodb_sim = require "fo.sim.services.dynamodb"

-- Applies `recipe` (a path) on a fresh simulator: returns sim, outputs.
local function apply(recipe)
  local sim = simlib.new{ seed = "target-health" }
  sim.timing = FAST
  local saved = dynamodb_sim.TIMING
  local t = {}
  for k, v in pairs(saved) do t[k] = v end
  t.table_create, t.table_delete, t.table_update, t.replica_create, t.replica_delete = 0.3, 0.3, 0.2, 1, 0.5
  dynamodb_sim.TIMING = t
  local out = {}
  local dir = testlib.tmpdir() -- the stack's state: only the sim, in memory, is looked at after
  local ok, code, doc = pcall(require("fo.engine").run, { recipe = recipe, sim = sim,
    dir = dir, stack = "th", config = { environmentSuffix = "th" },
    out = function(x) out[#out + 1] = x end, err = function(x) out[#out + 1] = x end })
  dynamodb_sim.TIMING = saved
  testlib.rmtree(dir)
  if not ok then error(code, 0) end
  lu.assertEquals(code, 0, table.concat(out))
  return sim, doc.outputs
end

local function recipe_health(sim, region, role)
  local elb = sim:client("elbv2", { region = region })
  local tg = elb:DescribeTargetGroups{ Names = { ("tg-%s-th"):format(role) } }.TargetGroups[1]
  local out = {}
  for _, d in ipairs(elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions) do
    out[#out + 1] = d.TargetHealth.Reason or d.TargetHealth.State
  end
  return out
end

function TestTargetHealthTradingRecipe.test_healthy_in_both_regions_then_the_app_rule_goes()
  local recipe = testlib.tests_dir .. "/../recipes/trading.lua"
  local sim, o = apply(recipe)
  lu.assertEquals(recipe_health(sim, "eu-south-1", "primary"), { "healthy", "healthy" })
  lu.assertEquals(recipe_health(sim, "eu-central-1", "standby"), { "healthy" })
  -- someone removes the rule admitting the ALB to the primary's instances
  local ec2 = sim:client("ec2", { region = "eu-south-1" })
  local sg = ec2:DescribeSecurityGroups{ Filters = { { Name = "group-name",
    Values = { "app-sg-primary-th" } } } }.SecurityGroups[1]
  for _, r in ipairs(ec2:DescribeSecurityGroupRules{ Filters = { { Name = "group-id",
      Values = { sg.GroupId } } } }.SecurityGroupRules) do
    if not r.IsEgress then
      ec2:RevokeSecurityGroupIngress{ GroupId = sg.GroupId, SecurityGroupRuleIds = { r.SecurityGroupRuleId } }
    end
  end
  lu.assertEquals(recipe_health(sim, "eu-south-1", "primary"), { "Target.Timeout", "Target.Timeout" })
  sim:advance(40)
  lu.assertFalse(sim:health_check_status(o.health_check_id).healthy)
  lu.assertEquals(sim:resolve(o.app_dns_name, "A").chosen, "standby-th")
end

function TestTargetHealthTradingRecipe.test_user_data_running_a_program_the_image_lacks_is_unhealthy()
  local src = assert(io.open(testlib.tests_dir .. "/../recipes/trading.lua")):read("a")
  local broken, n = src:gsub('python = "/usr/bin/python",', 'python = "/usr/bin/python3.11",')
  lu.assertEquals(n, 1)
  local dir = testlib.tmpdir()
  local path = dir .. "/trading.lua"
  local f = assert(io.open(path, "w"))
  f:write(broken)
  f:close()
  -- its region component, which it requires from its own directory
  require("fo.fs").mkdir_p(dir .. "/components", tonumber("755", 8))
  testlib.write(dir .. "/components/trading_region.lua",
    testlib.read(testlib.tests_dir .. "/../recipes/components/trading_region.lua"))
  local sim = apply(path)
  testlib.rmtree(dir)
  lu.assertEquals(recipe_health(sim, "eu-south-1", "primary"),
    { "Target.FailedHealthChecks", "Target.FailedHealthChecks" })
  lu.assertEquals(recipe_health(sim, "eu-central-1", "standby"), { "Target.FailedHealthChecks" })
end

os.exit(lu.LuaUnit.run())
