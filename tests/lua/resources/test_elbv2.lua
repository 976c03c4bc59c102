-- aws:elbv2:load_balancer, target_group, listener driven by the engine on the simulator
-- (the network is built with a sim client: tests/lua/support/sim_net.lua), read back
-- through fo's ELBv2 client: create (tags in the create call, waited active, the region's
-- canonical hosted zone id), rerun without mutating calls, updates in place (subnets,
-- security groups, attributes, health check, listener actions), replacement delete-first,
-- drift and repair, destroy, adoption after an interrupted create, and ELBv2's rules
-- (names, deletion protection, HTTPS needs a certificate, a target group in use).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local net = require "support.sim_net"
require "fo.aws.resources.elbv2"

local R = "eu-south-1"
local sim, dir, n, elb, ec2

local function recipe(o)
  o = o or {}
  return function()
    local lb = fo.resource("aws:elbv2:load_balancer", "alb", { name = o.lb_name or "alb-app-prod",
      subnets = o.subnets or n.public, security_groups = o.sgs or { n.alb_sg },
      attributes = o.attributes or { ["idle_timeout.timeout_seconds"] = 120 },
      tags = o.tags or { Environment = "Production" } }, { region = R })
    local tg = not o.no_tg and fo.resource("aws:elbv2:target_group", "tg", { name = o.tg_name or "tg-app-prod",
      port = 8080, vpc_id = n.vpc,
      health_check = o.health or { path = "/health", interval_seconds = 10, timeout_seconds = 5,
        healthy_threshold = 2, unhealthy_threshold = 3, matcher = "200" },
      attributes = o.tg_attributes or {}, tags = { Environment = "Production" } }, { region = R })
    if not o.no_listener then
      fo.resource("aws:elbv2:listener", "http", { load_balancer_arn = lb.arn, port = o.port or 80,
        protocol = o.protocol, certificate_arn = o.certificate_arn,
        default_actions = o.actions or { { type = "forward", target_group_arn = tg.arn } },
        tags = { Environment = "Production" } }, { region = R })
    end
    fo.output("dns", lb.dns_name)
    fo.output("zone", lb.canonical_hosted_zone_id)
  end
end

TestElbv2 = {}

function TestElbv2:setUp()
  sim, dir = net.sim{ seed = "elbv2-types" }, H.dir()
  sim.timing.lb_eni_release = 0.5
  n = net.build(sim, R)
  elb, ec2 = sim:client("elbv2", { region = R }), sim:client("ec2", { region = R })
  sim.recorder:clear()
end

function TestElbv2:tearDown()
  H.cleanup(dir)
end

local function lbs()
  return elb:DescribeLoadBalancers{}.LoadBalancers
end

local function tags_of(arn)
  return T.tag_map(elb:DescribeTags{ ResourceArns = { arn } }.TagDescriptions[1].Tags)
end

local function attr(list, key)
  for _, a in ipairs(list) do if a.Key == key then return a.Value end end
end

function TestElbv2:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = T.run(sim, dir, recipe())
  local lb = lbs()[1]
  lu.assertEquals(lb.State.Code, "active")
  lu.assertEquals(lb.LoadBalancerName, "alb-app-prod")
  lu.assertEquals(lb.Scheme, "internet-facing")
  lu.assertEquals(lb.SecurityGroups, { n.alb_sg })
  lu.assertEquals(doc.outputs.dns, lb.DNSName)
  -- the region's own zone (eu-south-1's ALB zone), never a hard-coded one
  lu.assertEquals(doc.outputs.zone, "Z3ULH7SSC9OV64")
  lu.assertEquals(lb.CanonicalHostedZoneId, doc.outputs.zone)
  lu.assertEquals(tags_of(lb.LoadBalancerArn), { ["fo:stack"] = "dev", ["fo:name"] = "alb",
    ["fo:token"] = T.record(dir, "dev::aws:elbv2:load_balancer::alb").token, Environment = "Production" })
  lu.assertEquals(attr(elb:DescribeLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn }.Attributes,
    "idle_timeout.timeout_seconds"), "120")
  local tg = elb:DescribeTargetGroups{ Names = { "tg-app-prod" } }.TargetGroups[1]
  lu.assertEquals({ tg.HealthCheckPath, tg.HealthCheckIntervalSeconds, tg.HealthyThresholdCount,
    tg.UnhealthyThresholdCount, tg.Matcher.HttpCode, tg.Port }, { "/health", 10, 2, 3, "200", 8080 })
  lu.assertEquals(tg.LoadBalancerArns, { lb.LoadBalancerArn })
  local l = elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners[1]
  lu.assertEquals(l.DefaultActions[1].TargetGroupArn, tg.TargetGroupArn)
  lu.assertEquals(tags_of(l.ListenerArn)["fo:name"], "http")
  local rec = T.record(dir, "dev::aws:elbv2:target_group::tg")
  lu.assertEquals(rec.outputs.arn_suffix, tg.TargetGroupArn:match("(targetgroup/.+)$"))
  -- tags came with the create calls; the wait polled while the ALB was provisioning
  lu.assertNil(T.index(T.mutating(sim), "elbv2.AddTags"))
  lu.assertTrue(#H.ops(sim, { operation = "DescribeLoadBalancers" }) >= 2)

  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
  -- the same subnets in another order are no change
  _, out = T.run(sim, dir, recipe{ subnets = { n.public[2], n.public[1] } })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
end

-- CreateLoadBalancer answers the load balancer "provisioning", which lasts longer than a
-- poll period: the wait for it does not poll at once to hear that again. Its first
-- DescribeLoadBalancers by ARN comes a period (common.SIM_POLL) after the create.
function TestElbv2:test_no_poll_right_after_a_create_that_answered_provisioning()
  local poll = require("fo.aws.resources.common").SIM_POLL
  T.run(sim, dir, recipe{ no_tg = true, no_listener = true })
  local calls = sim.recorder:calls{ service = "elbv2" }
  local created, first
  for _, c in ipairs(calls) do
    if c.operation == "CreateLoadBalancer" then created = c
    elseif created and c.operation == "DescribeLoadBalancers" and not first then first = c end
  end
  lu.assertNotNil(created)
  lu.assertNotNil(first, "the load balancer was waited on")
  -- sleeps last at least as long as asked: a lower bound, not a timing race
  lu.assertTrue(first.t - created.t >= poll - 1e-3,
    ("CreateLoadBalancer, then DescribeLoadBalancers %.3f s later"):format(first.t - created.t))
  lu.assertEquals(lbs()[1].State.Code, "active")
end

function TestElbv2:test_updates_in_place()
  T.run(sim, dir, recipe())
  local arn = lbs()[1].LoadBalancerArn
  local azs = ec2:DescribeAvailabilityZones{}.AvailabilityZones
  local third = ec2:CreateSubnet{ VpcId = n.vpc, CidrBlock = "10.20.40.0/24",
    AvailabilityZone = azs[3].ZoneName }.Subnet.SubnetId
  sim.recorder:clear()
  T.run(sim, dir, recipe{ subnets = { n.public[1], n.public[2], third }, sgs = { n.alb_sg, n.app_sg },
    attributes = { ["routing.http.drop_invalid_header_fields.enabled"] = true },
    tags = { Environment = "Staging" },
    health = { path = "/ready", interval_seconds = 10, timeout_seconds = 5, healthy_threshold = 2,
      unhealthy_threshold = 3, matcher = "200-299" },
    tg_attributes = { ["deregistration_delay.timeout_seconds"] = 30 },
    actions = { { type = "fixed_response", status_code = "503", content_type = "text/plain",
      message_body = "maintenance" } } })
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "elbv2.AddTags", "elbv2.ModifyListener", "elbv2.ModifyLoadBalancerAttributes",
    "elbv2.ModifyTargetGroup", "elbv2.ModifyTargetGroupAttributes", "elbv2.SetSecurityGroups",
    "elbv2.SetSubnets" })
  local lb = lbs()[1]
  lu.assertEquals(lb.LoadBalancerArn, arn)
  lu.assertEquals(#lb.AvailabilityZones, 3)
  lu.assertEquals(#lb.SecurityGroups, 2)
  local attrs = elb:DescribeLoadBalancerAttributes{ LoadBalancerArn = arn }.Attributes
  -- the attribute no longer declared is back to AWS's default
  lu.assertEquals(attr(attrs, "idle_timeout.timeout_seconds"), "60")
  lu.assertEquals(attr(attrs, "routing.http.drop_invalid_header_fields.enabled"), "true")
  local tg = elb:DescribeTargetGroups{ Names = { "tg-app-prod" } }.TargetGroups[1]
  lu.assertEquals({ tg.HealthCheckPath, tg.Matcher.HttpCode }, { "/ready", "200-299" })
  lu.assertEquals(tg.LoadBalancerArns, {})
  local l = elb:DescribeListeners{ LoadBalancerArn = arn }.Listeners[1]
  lu.assertEquals(l.DefaultActions[1].FixedResponseConfig.MessageBody, "maintenance")
  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe{ subnets = { n.public[1], n.public[2], third },
    sgs = { n.alb_sg, n.app_sg }, attributes = { ["routing.http.drop_invalid_header_fields.enabled"] = true },
    tags = { Environment = "Staging" },
    health = { path = "/ready", interval_seconds = 10, timeout_seconds = 5, healthy_threshold = 2,
      unhealthy_threshold = 3, matcher = "200-299" },
    tg_attributes = { ["deregistration_delay.timeout_seconds"] = 30 },
    actions = { { type = "fixed_response", status_code = "503", content_type = "text/plain",
      message_body = "maintenance" } } })
  lu.assertStrContains(out, "No changes.")
end

function TestElbv2:test_http_to_https_redirect_and_the_certificate_rule()
  -- a redirect listener: AWS fills in host/path/query; that is no drift
  local redirect = { { type = "redirect", protocol = "HTTPS", port = 443, status_code = "HTTP_301" } }
  T.run(sim, dir, recipe{ actions = redirect })
  local l = elb:DescribeListeners{ LoadBalancerArn = lbs()[1].LoadBalancerArn }.Listeners[1]
  lu.assertEquals(l.DefaultActions[1].RedirectConfig, { Protocol = "HTTPS", Port = "443", Host = "#{host}",
    Path = "/#{path}", Query = "#{query}", StatusCode = "HTTP_301" })
  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe{ actions = redirect }, { mode = "refresh", explicit = true })
  lu.assertStrContains(out, "no drift")
  -- HTTPS without a certificate is refused before any call
  local _, o2, e2 = T.run(sim, dir, recipe{ actions = redirect, protocol = "HTTPS", port = 443 }, nil, 4)
  lu.assertStrContains(o2 .. e2, "an HTTPS listener needs certificate_arn")
  -- with one: the default TLS 1.3 policy
  local cert = require("support.acm").issued(sim, "eu-south-1")
  T.run(sim, dir, recipe{ protocol = "HTTPS", port = 443, certificate_arn = cert })
  l = elb:DescribeListeners{ LoadBalancerArn = lbs()[1].LoadBalancerArn }.Listeners[1]
  lu.assertEquals({ l.Protocol, l.Port, l.SslPolicy, l.Certificates[1].CertificateArn },
    { "HTTPS", 443, "ELBSecurityPolicy-TLS13-1-2-2021-06", cert })
  sim.recorder:clear()
  _, out = T.run(sim, dir, recipe{ protocol = "HTTPS", port = 443, certificate_arn = cert })
  lu.assertStrContains(out, "No changes.")
end

function TestElbv2:test_rename_replaces_delete_first_and_the_listener_follows()
  T.run(sim, dir, recipe())
  local old = lbs()[1].LoadBalancerArn
  sim.recorder:clear()
  T.run(sim, dir, recipe{ lb_name = "alb-app2-prod" })
  local ops = T.mutating(sim)
  lu.assertTrue(T.index(ops, "elbv2.DeleteListener") < T.index(ops, "elbv2.DeleteLoadBalancer"))
  lu.assertTrue(T.index(ops, "elbv2.DeleteLoadBalancer") < T.index(ops, "elbv2.CreateLoadBalancer"))
  local all = lbs()
  lu.assertEquals(#all, 1)
  lu.assertEquals(all[1].LoadBalancerName, "alb-app2-prod")
  lu.assertNotEquals(all[1].LoadBalancerArn, old)
  lu.assertEquals(#elb:DescribeListeners{ LoadBalancerArn = all[1].LoadBalancerArn }.Listeners, 1)
  lu.assertEquals(T.record(dir, "dev::aws:elbv2:listener::http").inputs.load_balancer_arn, all[1].LoadBalancerArn)
end

function TestElbv2:test_drift_is_reported_and_repaired()
  T.run(sim, dir, recipe())
  local lb = lbs()[1]
  local tg = elb:DescribeTargetGroups{ Names = { "tg-app-prod" } }.TargetGroups[1]
  elb:ModifyTargetGroup{ TargetGroupArn = tg.TargetGroupArn, HealthCheckIntervalSeconds = 30 }
  elb:SetSecurityGroups{ LoadBalancerArn = lb.LoadBalancerArn, SecurityGroups = { n.app_sg } }
  elb:RemoveTags{ ResourceArns = { lb.LoadBalancerArn }, TagKeys = { "Environment" } }
  sim.recorder:clear()
  local doc, out = T.run(sim, dir, recipe(), { mode = "refresh", explicit = true })
  lu.assertEquals(T.mutating(sim), {})
  lu.assertEquals(#doc.drift, 2, out)
  lu.assertStrContains(out, "health_check.interval_seconds: 10 → 30")
  T.run(sim, dir, recipe())
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "elbv2.AddTags", "elbv2.ModifyTargetGroup", "elbv2.SetSecurityGroups" })
  lu.assertEquals(elb:DescribeTargetGroups{ Names = { "tg-app-prod" } }.TargetGroups[1].HealthCheckIntervalSeconds, 10)
  lu.assertEquals(lbs()[1].SecurityGroups, { n.alb_sg })
  -- a listener deleted by hand is created again
  elb:DeleteListener{ ListenerArn = T.record(dir, "dev::aws:elbv2:listener::http").id }
  sim.recorder:clear()
  T.run(sim, dir, recipe())
  lu.assertEquals(T.mutating(sim), { "elbv2.CreateListener" })
end

function TestElbv2:test_destroy_leaves_nothing_and_enis_release_for_the_subnets()
  T.run(sim, dir, recipe())
  sim.recorder:clear()
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  local ops = T.mutating(sim)
  lu.assertTrue(T.index(ops, "elbv2.DeleteListener") < T.index(ops, "elbv2.DeleteTargetGroup"))
  lu.assertEquals(lbs(), {})
  lu.assertEquals(elb:DescribeTargetGroups{}.TargetGroups, {})
  -- the deletion was waited for (LoadBalancersDeleted polled until not found)
  lu.assertTrue(#H.ops(sim, function(c) return c.operation == "DescribeLoadBalancers"
    and c.code == "LoadBalancerNotFound" end) >= 1)
end

function TestElbv2:test_interrupted_creates_are_adopted_without_a_mutating_call()
  T.assert_adopted(sim, dir, recipe(), { "dev::aws:elbv2:load_balancer::alb",
    "dev::aws:elbv2:target_group::tg", "dev::aws:elbv2:listener::http" })
end

function TestElbv2:test_a_name_taken_by_someone_else_is_an_error()
  local arn = elb:CreateLoadBalancer{ Name = "alb-app-prod", Subnets = n.public,
    SecurityGroups = { n.alb_sg } }.LoadBalancers[1].LoadBalancerArn
  local out = T.assert_conflict(sim, dir, recipe{ no_listener = true }, arn)
  lu.assertStrContains(out, 'a load balancer named "alb-app-prod" in eu-south-1')
end

function TestElbv2:test_a_listener_on_the_port_not_ours_is_a_conflict()
  -- a load balancer made outside the stack with its listener on port 80; the stack makes a
  -- target group and declares a listener on that port: the same settings (CreateListener
  -- would answer the existing listener as if new), then other ones (DuplicateListener)
  local lb = elb:CreateLoadBalancer{ Name = "alb-other", Subnets = n.public,
    SecurityGroups = { n.alb_sg } }.LoadBalancers[1].LoadBalancerArn
  local listener = elb:CreateListener{ LoadBalancerArn = lb, Port = 80, Protocol = "HTTP",
    DefaultActions = { { Type = "fixed-response", FixedResponseConfig = { StatusCode = "404",
      ContentType = "text/plain" } } }, Tags = { { Key = "Owner", Value = "ops" } } }
    .Listeners[1].ListenerArn
  for _, action in ipairs({ { type = "fixed_response", status_code = "404",
      content_type = "text/plain" }, "forward" }) do
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, function()
      local tg = fo.resource("aws:elbv2:target_group", "tg", { name = "tg-app-prod",
        port = 8080, vpc_id = n.vpc }, { region = R })
      fo.resource("aws:elbv2:listener", "http", { load_balancer_arn = lb, port = 80,
        default_actions = { action == "forward" and { type = "forward",
          target_group_arn = tg.arn } or action } }, { region = R, depends_on = { tg } })
    end, listener, { region = R })
    lu.assertStrContains(out, "a listener on port 80 of load balancer app/alb-other/")
    T.assert_rolled_back(sim, { { "elbv2.CreateTargetGroup", "elbv2.DeleteTargetGroup" } })
    lu.assertEquals(H.ops(sim, { operation = "DeleteListener" }), {})
  end
end

function TestElbv2:test_a_listener_of_a_new_load_balancer_reads_nothing_but_a_second_one_does()
  -- the load balancer is this run's: its listener's create reads nothing first or after
  -- (common.fresh_slot), and the load balancer is the wait's last answer
  local lb_reads = {}
  T.run(sim, dir, recipe())
  for _, c in ipairs(sim:calls{ service = "elbv2", mutating = false }) do
    lb_reads[c.operation] = (lb_reads[c.operation] or 0) + 1
  end
  lu.assertNil(lb_reads.DescribeListeners)
  -- the target group's and the load balancer's claims (one DescribeTags each)
  lu.assertEquals(lb_reads.DescribeTags, 2)
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  -- a second listener on the same port of it, in the same run: read first, a conflict
  local code, doc, out, err = H.run(function()
    local lb = fo.resource("aws:elbv2:load_balancer", "alb", { name = "alb-app-prod",
      subnets = n.public, security_groups = { n.alb_sg } }, { region = R })
    local action = { { type = "fixed_response", status_code = "404", content_type = "text/plain" } }
    local one = fo.resource("aws:elbv2:listener", "one", { load_balancer_arn = lb.arn, port = 80,
      default_actions = action }, { region = R })
    fo.resource("aws:elbv2:listener", "two", { load_balancer_arn = lb.arn, port = 80,
      default_actions = action }, { region = R, depends_on = { one } })
  end, { sim = sim, dir = dir, region = R })
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(#doc.errors, 1)
  lu.assertEquals(doc.errors[1].error.kind, "conflict")
  lu.assertStrContains(out .. err, "a listener on port 80 of load balancer app/alb-app-prod/")
  lu.assertEquals(next(H.state(dir).resources), nil)
end

function TestElbv2:test_another_copy_of_the_stacks_load_balancer_or_target_group_is_not_taken_over()
  -- the same settings: CreateLoadBalancer would answer it as if new
  local arn = elb:CreateLoadBalancer{ Name = "alb-app-prod", Subnets = n.public,
    SecurityGroups = { n.alb_sg }, Tags = T.other_copy_tags("alb") }.LoadBalancers[1].LoadBalancerArn
  T.assert_conflict(sim, dir, recipe{ no_listener = true }, arn)
  elb:DeleteLoadBalancer{ LoadBalancerArn = arn }
  local tg = elb:CreateTargetGroup{ Name = "tg-app-prod", Protocol = "HTTP", Port = 8080,
    VpcId = n.vpc, Tags = T.other_copy_tags("tg") }.TargetGroups[1].TargetGroupArn
  T.assert_conflict(sim, dir, recipe{ no_listener = true }, tg)
end

function TestElbv2:test_names_and_deletion_protection_are_checked_before_anything_is_made()
  local cases = {
    { { lb_name = ("a"):rep(33) }, "33 characters; ELBv2 names have 1 to 32" },
    { { lb_name = "internal-app" }, 'must not begin with "internal-"' },
    { { lb_name = "-app" }, "must not begin or end with a hyphen" },
    { { tg_name = "tg_app" }, "may contain only letters, digits and hyphens" },
    { { attributes = { ["deletion_protection.enabled"] = "true" } }, "deletion_protection.enabled must stay false" },
    { { subnets = { n.public[1] } }, "at least 2 subnets" },
  }
  for _, c in ipairs(cases) do
    local _, out, err = T.run(sim, dir, recipe(c[1]), nil, 1)
    lu.assertStrContains(out .. err, c[2])
  end
  -- 32 characters is fine
  lu.assertNil(require("fo.aws.resources.elbv2").name_problem(("a"):rep(32), true))
  lu.assertEquals(H.mutating(sim), 0)
end

function TestElbv2:test_deletion_protection_turned_on_by_hand_does_not_stop_destroy()
  T.run(sim, dir, recipe())
  elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = lbs()[1].LoadBalancerArn,
    Attributes = { { Key = "deletion_protection.enabled", Value = "true" } } }
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true, no_refresh = true })
  lu.assertEquals(lbs(), {})
end

function TestElbv2:test_a_target_group_in_use_is_retried_until_free()
  T.run(sim, dir, recipe{ no_listener = true })
  local tg = T.record(dir, "dev::aws:elbv2:target_group::tg").id
  -- a listener made outside the stack uses the group for a moment
  local l = elb:CreateListener{ LoadBalancerArn = lbs()[1].LoadBalancerArn, Port = 8081, Protocol = "HTTP",
    DefaultActions = { { Type = "forward", TargetGroupArn = tg } } }.Listeners[1]
  -- it goes once the stack's delete of the group was refused (on the next call: the clock
  -- runs what is due before each), however long the run took to get there
  local delete = require("fo.sim.services.elbv2").DeleteTargetGroup
  sim:add_handlers("elbv2", { DeleteTargetGroup = function(ctx, p)
    local ok, res = pcall(delete, ctx, p)
    if ok then return res end
    sim.clock:at(sim:now(), function()
      sim:invoke("elbv2", R, "DeleteListener", { ListenerArn = l.ListenerArn })
    end)
    error(res, 0)
  end })
  sim.recorder:clear()
  -- the group is no longer declared: deleted while the listener still forwards to it
  T.run(sim, dir, recipe{ no_listener = true, no_tg = true })
  local in_use = H.ops(sim, function(c) return c.operation == "DeleteTargetGroup" and c.code == "ResourceInUse" end)
  lu.assertTrue(#in_use >= 1)
  lu.assertEquals(elb:DescribeTargetGroups{}.TargetGroups, {})
end

function TestElbv2:test_not_found_right_after_create_is_waited_out()
  -- (a window the first call after a create meets however loaded the machine is)
  sim:set_knob("consistency_ms", 2500)
  T.run(sim, dir, recipe{ tg_attributes = { ["deregistration_delay.timeout_seconds"] = 30 } })
  -- the first call after a create (the check of its tags, then the attributes) may meet it
  local retried = H.ops(sim, function(c)
    return ((c.operation == "ModifyLoadBalancerAttributes" or c.operation == "DescribeTags")
        and c.code == "LoadBalancerNotFound")
      or ((c.operation == "ModifyTargetGroupAttributes" or c.operation == "DescribeTags")
        and c.code == "TargetGroupNotFound")
  end)
  lu.assertTrue(#retried >= 1, "a call after the create met NotFound and was retried")
  lu.assertEquals(lbs()[1].State.Code, "active")
  local tg = elb:DescribeTargetGroups{ Names = { "tg-app-prod" } }.TargetGroups[1]
  lu.assertEquals(attr(elb:DescribeTargetGroupAttributes{ TargetGroupArn = tg.TargetGroupArn }.Attributes,
    "deregistration_delay.timeout_seconds"), "30")
end

function TestElbv2:test_subnets_aws_does_not_show_yet_are_waited_for()
  -- right after their creates, AWS may not yet know the subnets a load balancer names
  local create, refused = require("fo.sim.services.elbv2").CreateLoadBalancer, 0
  sim:add_handlers("elbv2", { CreateLoadBalancer = function(ctx, p)
    if refused < 2 then
      refused = refused + 1
      ctx:fail("SubnetNotFound", ("The subnet ID '%s' is not valid"):format(p.Subnets[1]), 400)
    end
    return create(ctx, p)
  end })
  T.run(sim, dir, recipe())
  lu.assertEquals(refused, 2)
  lu.assertEquals(lbs()[1].State.Code, "active")
end

function TestElbv2:test_a_failed_listener_create_rolls_back_the_load_balancer_and_target_group()
  local types = require "support.engine_types"
  -- CreateLoadBalancer, ModifyLoadBalancerAttributes, CreateTargetGroup, then CreateListener
  types.fail_mutating_call(sim, 4)
  local _, out = T.run(sim, dir, recipe(), nil, 4)
  lu.assertStrContains(out, "rolled back")
  lu.assertEquals(lbs(), {})
  lu.assertEquals(elb:DescribeTargetGroups{}.TargetGroups, {})
  lu.assertEquals(next(H.state(dir).resources), nil)
end

os.exit(lu.LuaUnit.run())
