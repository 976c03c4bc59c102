-- ELBv2 listener rules on the simulator through fo's client: CreateRule / DescribeRules /
-- ModifyRule / SetRulePriorities / DeleteRule with AWS's validation (priorities, the
-- conditions' forms and limits, actions and their Order, the default rule, the rule quota,
-- tags), target groups used by rules, and rules steering what a Route 53 health check's
-- request gets through the load balancer.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local net = require "support.sim_net"

local R = "eu-south-1"

-- net.expect, with a part of the message
local function expect(l, code, part, fn, ...)
  local e = net.expect(l, code, nil, fn, ...)
  if part then l.assertStrContains(e.message, part) end
  return e
end

local function setup()
  local sim = net.sim()
  local n = net.build(sim, R)
  local elb = sim:client("elbv2", { region = R })
  local lb = elb:CreateLoadBalancer{ Name = "alb-rules", Type = "application", Scheme = "internet-facing",
    Subnets = n.public, SecurityGroups = { n.alb_sg } }.LoadBalancers[1]
  local function tg(name, extra)
    local p = { Name = name, Protocol = "HTTP", Port = 8080, VpcId = n.vpc, TargetType = "instance",
      HealthCheckPath = "/health" }
    for k, v in pairs(extra or {}) do p[k] = v end
    return elb:CreateTargetGroup(p).TargetGroups[1]
  end
  local main, api = tg("tg-main"), tg("tg-api")
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = { { Type = "forward", TargetGroupArn = main.TargetGroupArn } } }.Listeners[1]
  return { sim = sim, n = n, elb = elb, lb = lb, l = l, main = main, api = api, tg = tg }
end

local function path_rule(s, prio, path, actions)
  return s.elb:CreateRule{ ListenerArn = s.l.ListenerArn, Priority = prio,
    Conditions = { { Field = "path-pattern", Values = { path } } },
    Actions = actions or { { Type = "forward", TargetGroupArn = s.api.TargetGroupArn } } }.Rules[1]
end

local function priorities(s)
  local out = {}
  for _, r in ipairs(s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn }.Rules) do out[#out + 1] = r.Priority end
  return out
end

TestRules = {}

function TestRules.test_create_describe_in_priority_order_with_the_default_last()
  local s = setup()
  local r = path_rule(s, 20, "/api/*")
  lu.assertEquals(r.Priority, "20")
  lu.assertFalse(r.IsDefault)
  lu.assertStrMatches(r.RuleArn, "arn:aws:elasticloadbalancing:eu%-south%-1:%d+:listener%-rule/app/alb%-rules/"
    .. "%x+/%x+/" .. ("%x"):rep(16))
  -- the Values form is answered in both forms
  lu.assertEquals(r.Conditions, { { Field = "path-pattern", Values = { "/api/*" },
    PathPatternConfig = { Values = { "/api/*" } } } })
  lu.assertEquals(r.Actions[1].ForwardConfig.TargetGroups, { { TargetGroupArn = s.api.TargetGroupArn, Weight = 1 } })
  local r5 = s.elb:CreateRule{ ListenerArn = s.l.ListenerArn, Priority = 5, Conditions = {
      { Field = "host-header", HostHeaderConfig = { Values = { "*.example.test", "api.trading.fo.test" } } },
      { Field = "http-header", HttpHeaderConfig = { HttpHeaderName = "X-Canary", Values = { "yes" } } } },
    Actions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "404" } } } }.Rules[1]
  lu.assertEquals(priorities(s), { "5", "20", "default" })
  local page = s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn, PageSize = 2 }
  lu.assertEquals(#page.Rules, 2)
  lu.assertEquals(s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn, PageSize = 2, Marker = page.NextMarker }
    .Rules[1].IsDefault, true)
  local by_arn = s.elb:DescribeRules{ RuleArns = { r.RuleArn, r5.RuleArn } }.Rules
  lu.assertEquals({ by_arn[1].Priority, by_arn[2].Priority }, { "20", "5" })
  -- the target group is now used by the load balancer through the rule
  lu.assertEquals(s.elb:DescribeTargetGroups{ TargetGroupArns = { s.api.TargetGroupArn } }.TargetGroups[1]
    .LoadBalancerArns, { s.lb.LoadBalancerArn })
  expect(lu, "ResourceInUse", nil, s.elb.DeleteTargetGroup, s.elb, { TargetGroupArn = s.api.TargetGroupArn })
end

function TestRules.test_priorities_unique_and_in_range()
  local s = setup()
  path_rule(s, 10, "/a")
  expect(lu, "PriorityInUse", "Priority '10' is currently in use", path_rule, s, 10, "/b")
  -- another listener may use the same priority
  local l2 = s.elb:CreateListener{ LoadBalancerArn = s.lb.LoadBalancerArn, Protocol = "HTTP", Port = 8081,
    DefaultActions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "503" } } } }.Listeners[1]
  s.elb:CreateRule{ ListenerArn = l2.ListenerArn, Priority = 10, Conditions = {
    { Field = "path-pattern", Values = { "/a" } } }, Actions = { { Type = "fixed-response",
      FixedResponseConfig = { StatusCode = "200" } } } }
  local ok = pcall(path_rule, s, 50001, "/c")
  lu.assertFalse(ok, "priority above 50000")
end

function TestRules.test_condition_rules()
  local s = setup()
  local function bad(conditions, text)
    expect(lu, "ValidationError", text, s.elb.CreateRule, s.elb, { ListenerArn = s.l.ListenerArn,
      Priority = 1, Conditions = conditions, Actions = { { Type = "fixed-response",
        FixedResponseConfig = { StatusCode = "200" } } } })
  end
  bad({}, "at least one condition")
  bad({ { Field = "cookie", Values = { "x" } } }, "Condition field 'cookie' is not valid")
  bad({ { Field = "path-pattern", Values = { "/a" } }, { Field = "path-pattern", Values = { "/b" } } },
    "at most one 'path-pattern' condition")
  bad({ { Field = "path-pattern", Values = { "/a" }, PathPatternConfig = { Values = { "/b" } } } },
    "either Values or PathPatternConfig")
  bad({ { Field = "path-pattern", HostHeaderConfig = { Values = { "a.test" } } } },
    "HostHeaderConfig can be specified only when the condition field is 'host-header'")
  bad({ { Field = "http-request-method", Values = { "GET" } } }, "Values can be used only for host-header")
  bad({ { Field = "path-pattern", PathPatternConfig = { Values = { "" } } } }, "cannot be empty")
  bad({ { Field = "host-header", Values = { "bad_host.test" } } }, "host-header condition value 'bad_host.test'")
  bad({ { Field = "http-request-method", HttpRequestMethodConfig = { Values = { "get" } } } },
    "http-request-method condition value 'get'")
  bad({ { Field = "source-ip", SourceIpConfig = { Values = { "10.0.0.*" } } } }, "a CIDR block")
  bad({ { Field = "http-header", HttpHeaderConfig = { HttpHeaderName = "X-*", Values = { "1" } } } },
    "HTTP header name 'X-*' is not valid")
  bad({ { Field = "host-header", HostHeaderConfig = { RegexValues = { "^a+$" } } } },
    "RegexValues")
  -- at most 5 condition values and 5 wildcards in a rule
  bad({ { Field = "path-pattern", PathPatternConfig = { Values = { "/a", "/b", "/c" } } },
        { Field = "host-header", HostHeaderConfig = { Values = { "a.test", "b.test", "c.test" } } } },
    "at most 5 condition values; this one has 6")
  bad({ { Field = "path-pattern", PathPatternConfig = { Values = { "/*/*/*" } } },
        { Field = "host-header", HostHeaderConfig = { Values = { "*.?.*" } } } },
    "at most 5 wildcards")
  expect(lu, "ValidationError", "transforms are not supported", s.elb.CreateRule, s.elb, {
    ListenerArn = s.l.ListenerArn, Priority = 1, Conditions = { { Field = "path-pattern", Values = { "/a" } } },
    Actions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "200" } } },
    Transforms = { { Type = "url-rewrite", UrlRewriteConfig = { Rewrites = { { Regex = "^/a", Replace = "/b" } } } } } })
  -- the *Config forms of every field
  local r = s.elb:CreateRule{ ListenerArn = s.l.ListenerArn, Priority = 1, Conditions = {
      { Field = "http-request-method", HttpRequestMethodConfig = { Values = { "GET", "HEAD" } } },
      { Field = "query-string", QueryStringConfig = { Values = { { Key = "v", Value = "2" } } } },
      { Field = "source-ip", SourceIpConfig = { Values = { "10.0.0.0/8", "2001:db8::/32" } } } },
    Actions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "200" } } } }.Rules[1]
  lu.assertEquals(r.Conditions[2], { Field = "query-string", QueryStringConfig = {
    Values = { { Key = "v", Value = "2" } } } })
  lu.assertNil(r.Conditions[1].Values)
end

function TestRules.test_actions_target_groups_and_order()
  local s = setup()
  local other_vpc = net.build(s.sim, R, { lt_name = "lt-other", no_igw = true })
  local foreign = s.tg("tg-foreign", { VpcId = other_vpc.vpc })
  expect(lu, "InvalidConfigurationRequest", "not in the same VPC", path_rule, s, 1, "/x",
    { { Type = "forward", TargetGroupArn = foreign.TargetGroupArn } })
  local tcp = s.tg("tg-tcp", { Protocol = "TCP", HealthCheckPath = nil })
  expect(lu, "IncompatibleProtocols", nil, path_rule, s, 1, "/x",
    { { Type = "forward", TargetGroupArn = tcp.TargetGroupArn } })
  expect(lu, "InvalidLoadBalancerAction", "A rule's actions must include exactly one", path_rule, s, 1,
    "/x", { { Type = "fixed-response", Order = 1, FixedResponseConfig = { StatusCode = "200" } },
      { Type = "redirect", Order = 2, RedirectConfig = { StatusCode = "HTTP_301", Protocol = "HTTPS" } } })
  expect(lu, "ValidationError", "order must be specified", path_rule, s, 1, "/x",
    { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "200" } },
      { Type = "redirect", RedirectConfig = { StatusCode = "HTTP_301" } } })
  -- weighted forward to two groups
  local r = path_rule(s, 1, "/w", { { Type = "forward", ForwardConfig = { TargetGroups = {
    { TargetGroupArn = s.main.TargetGroupArn, Weight = 90 }, { TargetGroupArn = s.api.TargetGroupArn, Weight = 10 } } } } })
  lu.assertNil(r.Actions[1].TargetGroupArn)
  lu.assertEquals(#r.Actions[1].ForwardConfig.TargetGroups, 2)
end

function TestRules.test_modify_priorities_delete_and_the_default_rule()
  local s = setup()
  local a, b = path_rule(s, 1, "/a"), path_rule(s, 2, "/b")
  local m = s.elb:ModifyRule{ RuleArn = a.RuleArn, Conditions = { { Field = "path-pattern",
    PathPatternConfig = { Values = { "/z/*" } } } } }.Rules[1]
  lu.assertEquals(m.Conditions[1].Values, { "/z/*" })
  lu.assertEquals(m.Actions, a.Actions, "actions not given stay")
  -- a swap is fine; a clash is not, and changes nothing
  s.elb:SetRulePriorities{ RulePriorities = { { RuleArn = a.RuleArn, Priority = 2 }, { RuleArn = b.RuleArn, Priority = 1 } } }
  lu.assertEquals(s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn }.Rules[1].RuleArn, b.RuleArn)
  expect(lu, "PriorityInUse", nil, s.elb.SetRulePriorities, s.elb, { RulePriorities = {
    { RuleArn = a.RuleArn, Priority = 1 } } })
  lu.assertEquals(priorities(s), { "1", "2", "default" })
  local default = s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn }.Rules[3]
  expect(lu, "OperationNotPermitted", nil, s.elb.DeleteRule, s.elb, { RuleArn = default.RuleArn })
  expect(lu, "OperationNotPermitted", nil, s.elb.ModifyRule, s.elb, { RuleArn = default.RuleArn,
    Conditions = { { Field = "path-pattern", Values = { "/" } } } })
  expect(lu, "OperationNotPermitted", nil, s.elb.SetRulePriorities, s.elb, { RulePriorities = {
    { RuleArn = default.RuleArn, Priority = 9 } } })
  -- the default rule's actions are the listener's default actions
  s.elb:ModifyRule{ RuleArn = default.RuleArn, Actions = { { Type = "fixed-response",
    FixedResponseConfig = { StatusCode = "503" } } } }
  lu.assertEquals(s.elb:DescribeListeners{ ListenerArns = { s.l.ListenerArn } }.Listeners[1].DefaultActions[1].Type,
    "fixed-response")
  s.elb:DeleteRule{ RuleArn = a.RuleArn }
  expect(lu, "RuleNotFound", nil, s.elb.DeleteRule, s.elb, { RuleArn = a.RuleArn })
  expect(lu, "RuleNotFound", nil, s.elb.DescribeRules, s.elb, { RuleArns = { a.RuleArn } })
  lu.assertEquals(priorities(s), { "1", "default" })
  -- a listener's rules go with it
  s.elb:DeleteListener{ ListenerArn = s.l.ListenerArn }
  expect(lu, "RuleNotFound", nil, s.elb.DescribeRules, s.elb, { RuleArns = { b.RuleArn } })
end

function TestRules.test_at_most_100_rules_per_load_balancer_and_tags()
  local s = setup()
  local l2 = s.elb:CreateListener{ LoadBalancerArn = s.lb.LoadBalancerArn, Protocol = "HTTP", Port = 8081,
    DefaultActions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "503" } } } }.Listeners[1]
  local fixed = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "200" } } }
  for i = 1, 100 do
    s.elb:CreateRule{ ListenerArn = i <= 50 and s.l.ListenerArn or l2.ListenerArn, Priority = i,
      Conditions = { { Field = "path-pattern", Values = { "/p" .. i } } }, Actions = fixed,
      Tags = i == 1 and { { Key = "team", Value = "web" } } or nil }
  end
  expect(lu, "TooManyRules", nil, s.elb.CreateRule, s.elb, { ListenerArn = l2.ListenerArn, Priority = 101,
    Conditions = { { Field = "path-pattern", Values = { "/p101" } } }, Actions = fixed })
  local first = s.elb:DescribeRules{ ListenerArn = s.l.ListenerArn }.Rules[1]
  lu.assertEquals(s.elb:DescribeTags{ ResourceArns = { first.RuleArn } }.TagDescriptions[1].Tags,
    { { Key = "team", Value = "web" } })
  s.elb:AddTags{ ResourceArns = { first.RuleArn }, Tags = { { Key = "tier", Value = "1" } } }
  s.elb:RemoveTags{ ResourceArns = { first.RuleArn }, TagKeys = { "team" } }
  lu.assertEquals(s.elb:DescribeTags{ ResourceArns = { first.RuleArn } }.TagDescriptions[1].Tags,
    { { Key = "tier", Value = "1" } })
end

TestRuleRouting = {}

-- A Route 53 health check's request through the load balancer takes the first rule whose
-- conditions match it (by priority), else the default actions (fo.sim.failover.probe).
function TestRuleRouting.test_rules_steer_the_health_checks_request()
  local topo = require "support.sim_topology"
  local failover = require "fo.sim.failover"
  local sim = require("fo.sim").new{ seed = 7 }
  local region = topo.region(sim, R, 2)
  sim:advance(5)
  local account = sim:client("sts", { region = R }):GetCallerIdentity{}.Account
  local function call(op, p) return sim:invoke("elbv2", R, op, p) end
  local l = call("DescribeListeners", { LoadBalancerArn = region.lb_arn }).Listeners[1]
  local function probe(path)
    return failover.probe(sim, account, { Type = "HTTP", FullyQualifiedDomainName = region.dns,
      Port = 80, ResourcePath = path })
  end
  local ok, text = probe("/health")
  lu.assertTrue(ok, text)
  local function rule(prio, conditions, actions)
    return call("CreateRule", { ListenerArn = l.ListenerArn, Priority = prio, Conditions = conditions,
      Actions = actions or { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "503" } } } }).Rules[1]
  end
  -- conditions the check's request does not meet leave it to the default action
  rule(1, { { Field = "host-header", Values = { "other.example.test" } } })
  rule(2, { { Field = "http-request-method", HttpRequestMethodConfig = { Values = { "POST" } } } })
  rule(3, { { Field = "source-ip", SourceIpConfig = { Values = { "192.0.2.0/24" } } } })
  rule(4, { { Field = "path-pattern", Values = { "/health" } },
            { Field = "query-string", QueryStringConfig = { Values = { { Key = "deep", Value = "1" } } } } })
  lu.assertTrue((probe("/health")))
  -- a matching rule decides: its fixed response
  ok, text = probe("/health?deep=1")
  lu.assertFalse(ok)
  lu.assertStrContains(text, "HTTP Status Code 503")
  -- host (any case), header and path wildcards; the lowest priority wins
  local api = call("CreateTargetGroup", { Name = "tg-api", Protocol = "HTTP", Port = 80,
    VpcId = call("DescribeLoadBalancers", { LoadBalancerArns = { region.lb_arn } }).LoadBalancers[1].VpcId,
    TargetType = "instance" }).TargetGroups[1]
  rule(10, { { Field = "host-header", Values = { (region.dns:upper():gsub("^[^.]+", "*")) } },
             { Field = "http-header", HttpHeaderConfig = { HttpHeaderName = "User-Agent",
               Values = { "Amazon-Route53-*" } } },
             { Field = "path-pattern", Values = { "/he?lth" } } },
    { { Type = "redirect", RedirectConfig = { Protocol = "HTTPS", Port = "443", StatusCode = "HTTP_302" } } })
  local r20 = rule(20, { { Field = "path-pattern", Values = { "/api/*" } } },
    { { Type = "forward", TargetGroupArn = api.TargetGroupArn } })
  ok, text = probe("/health")
  lu.assertTrue(ok)
  lu.assertStrContains(text, "HTTP Status Code 302")
  -- a target group with no registered targets: the load balancer answers 503 itself
  ok, text = probe("/api/v1")
  lu.assertFalse(ok)
  lu.assertStrContains(text, "503")
  -- moved in front of the redirect, and pointed at the stack's target group, it serves
  call("SetRulePriorities", { RulePriorities = { { RuleArn = r20.RuleArn, Priority = 9 } } })
  call("ModifyRule", { RuleArn = r20.RuleArn, Conditions = { { Field = "path-pattern", Values = { "/h*" } } },
    Actions = { { Type = "forward", TargetGroupArn = region.tg_arn } } })
  ok, text = probe("/health")
  lu.assertTrue(ok, text)
  lu.assertStrContains(text, "HTTP Status Code 200")
end

os.exit(lu.LuaUnit.run())
