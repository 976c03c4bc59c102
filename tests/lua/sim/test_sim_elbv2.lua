-- The simulated ELBv2 through fo's client (in-process wire path): the stack's ALB, target
-- group and listener in one region, the LoadBalancerAvailable / TargetInService /
-- LoadBalancersDeleted waiters, AWS's name rules, idempotent creates and duplicate
-- errors, subnet/security group checks against EC2, listener rules (HTTPS certificates,
-- SSL policies, duplicate ports), attributes, tags, target health from the Auto Scaling
-- group (unused → healthy → unhealthy in an outage → draining), and teardown order.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local net = require "support.sim_net"

local R = "eu-south-1"
local acm_support = require "support.acm"

local function setup(region)
  local sim = net.sim()
  local n = net.build(sim, region or R)
  return sim, n, sim:client("elbv2", { region = region or R }),
    sim:client("autoscaling", { region = region or R })
end

local function create_alb(elb, n, name, extra)
  local p = { Name = name or "alb-trading-prod", Type = "application", Scheme = "internet-facing",
    IpAddressType = "ipv4", Subnets = n.public, SecurityGroups = { n.alb_sg },
    Tags = { { Key = "fo:stack", Value = "trading-prod" }, { Key = "Environment", Value = "Production" } } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return elb:CreateLoadBalancer(p).LoadBalancers[1]
end

local function create_tg(elb, n, name, extra)
  local p = { Name = name or "tg-trading-app-prod", Protocol = "HTTP", Port = 8080, VpcId = n.vpc,
    TargetType = "instance", HealthCheckPath = "/health", HealthCheckIntervalSeconds = 10,
    HealthCheckTimeoutSeconds = 5, HealthyThresholdCount = 2, UnhealthyThresholdCount = 3,
    Matcher = { HttpCode = "200-299" } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return elb:CreateTargetGroup(p).TargetGroups[1]
end

-- An ARN of the same kind that names nothing.
local function gone(arn) return (arn:gsub("%x+$", "0000000000000000")) end

local function forward(tg) return { { Type = "forward", TargetGroupArn = tg.TargetGroupArn } } end

TestLoadBalancer = {}

function TestLoadBalancer.test_alb_is_provisioning_then_active_through_the_waiter()
  local sim, n, elb = setup()
  local lb = create_alb(elb, n)
  lu.assertEquals(lb.State.Code, "provisioning")
  lu.assertStrMatches(lb.LoadBalancerArn,
    "arn:aws:elasticloadbalancing:eu%-south%-1:123456789012:loadbalancer/app/alb%-trading%-prod/" .. ("%x"):rep(16))
  lu.assertStrMatches(lb.DNSName, "alb%-trading%-prod%-%d+%.eu%-south%-1%.elb%.amazonaws%.com")
  lu.assertEquals(lb.CanonicalHostedZoneId, "Z3ULH7SSC9OV64")
  lu.assertEquals(lb.VpcId, n.vpc)
  lu.assertEquals(lb.Scheme, "internet-facing")
  lu.assertEquals(lb.SecurityGroups, { n.alb_sg })
  lu.assertEquals(#lb.AvailabilityZones, 2)
  lu.assertEquals(lb.AvailabilityZones[1].ZoneName, n.azs[1])
  local out, attempts = elb:wait("LoadBalancerAvailable", { Names = { "alb-trading-prod" } }, { delay = 0.1 })
  lu.assertTrue(attempts >= 2, "the waiter saw provisioning first")
  lu.assertEquals(out.LoadBalancers[1].State.Code, "active")
  lu.assertEquals(sim:count{ service = "elbv2", operation = "DescribeLoadBalancers" }, attempts)
end

function TestLoadBalancer.test_new_load_balancer_is_not_found_inside_the_consistency_window()
  local sim = net.sim{ seed = "consistency", consistency_ms = 200 }
  local n = net.build(sim, R)
  sim:advance(1) -- past the window for the network itself
  local elb = sim:client("elbv2", { region = R })
  local lb = create_alb(elb, n)
  net.expect(lu, "LoadBalancerNotFound", nil, elb.DescribeLoadBalancers, elb, { LoadBalancerArns = { lb.LoadBalancerArn } })
  -- the waiter retries LoadBalancerNotFound, then provisioning, until active
  local out = elb:wait("LoadBalancerAvailable", { LoadBalancerArns = { lb.LoadBalancerArn } }, { delay = 0.1 })
  lu.assertEquals(out.LoadBalancers[1].State.Code, "active")
end

function TestLoadBalancer.test_hosted_zone_id_per_region_as_aws_publishes_it()
  local want = { ["eu-south-1"] = "Z3ULH7SSC9OV64", ["eu-central-1"] = "Z215JYRZR1TBD5",
    ["us-east-1"] = "Z35SXDOTRQ7X7K" }
  local sim = net.sim()
  for region, zone in pairs(want) do
    local n = net.build(sim, region)
    local lb = create_alb(sim:client("elbv2", { region = region }), n)
    lu.assertEquals(lb.CanonicalHostedZoneId, zone, region)
    lu.assertStrContains(lb.DNSName, "." .. region .. ".elb.amazonaws.com")
  end
end

function TestLoadBalancer.test_internal_alb_dns_name_and_default_security_group()
  local _, n, elb = setup()
  local lb = elb:CreateLoadBalancer{ Name = "alb-int", Scheme = "internal", Subnets = n.private }.LoadBalancers[1]
  lu.assertStrMatches(lb.DNSName, "internal%-alb%-int%-%d+%.eu%-south%-1%.elb%.amazonaws%.com")
  lu.assertEquals(#lb.SecurityGroups, 1, "the VPC's default group")
  lu.assertNotEquals(lb.SecurityGroups[1], n.alb_sg)
end

function TestLoadBalancer.test_name_rules()
  local _, n, elb = setup()
  local long = ("a"):rep(33)
  net.expect(lu, "ValidationError", "Load balancer name '" .. long .. "' cannot be longer than '32' characters",
    create_alb, elb, n, long)
  create_alb(elb, n, ("b"):rep(32)) -- exactly 32 is fine
  net.expect(lu, "ValidationError", "Load balancer name 'internal-app' cannot begin with 'internal-'",
    create_alb, elb, n, "internal-app")
  net.expect(lu, "ValidationError", nil, create_alb, elb, n, "-alb")
  net.expect(lu, "ValidationError", nil, create_alb, elb, n, "alb-")
  net.expect(lu, "ValidationError", nil, create_alb, elb, n, "alb_prod")
  net.expect(lu, "ValidationError", nil, create_tg, elb, n, ("t"):rep(33))
  net.expect(lu, "ValidationError", nil, create_tg, elb, n, "tg-")
end

function TestLoadBalancer.test_same_settings_is_idempotent_different_settings_is_a_duplicate()
  local _, n, elb = setup()
  local a = create_alb(elb, n)
  local b = create_alb(elb, n)
  lu.assertEquals(b.LoadBalancerArn, a.LoadBalancerArn)
  lu.assertEquals(b.DNSName, a.DNSName)
  net.expect(lu, "DuplicateLoadBalancerName", nil, create_alb, elb, n, nil, { Scheme = "internal" })
  lu.assertEquals(#elb:DescribeLoadBalancers{}.LoadBalancers, 1)
end

function TestLoadBalancer.test_subnets_and_security_groups_are_checked_in_ec2()
  local sim, n, elb = setup()
  net.expect(lu, "ValidationError", "At least two subnets in two different Availability Zones must be specified",
    create_alb, elb, n, nil, { Subnets = { n.public[1] } })
  net.expect(lu, "InvalidConfigurationRequest", nil, create_alb, elb, n, nil,
    { Subnets = { n.public[1], n.private[1] } })
  net.expect(lu, "SubnetNotFound", "The subnet ID 'subnet-0123456789abcdef0' is not valid",
    create_alb, elb, n, nil, { Subnets = { n.public[1], "subnet-0123456789abcdef0" } })
  net.expect(lu, "InvalidSecurityGroup", "Security group 'sg-0123456789abcdef0' does not exist",
    create_alb, elb, n, nil, { SecurityGroups = { "sg-0123456789abcdef0" } })
  -- an internet-facing load balancer needs the VPC's internet gateway
  local bare = net.build(sim, "eu-central-1", { no_igw = true })
  local elb2 = sim:client("elbv2", { region = "eu-central-1" })
  net.expect(lu, "InvalidSubnet", "VPC " .. bare.vpc .. " has no internet gateway", create_alb, elb2, bare)
  create_alb(elb2, bare, "alb-internal", { Scheme = "internal" })
end

function TestLoadBalancer.test_describe_by_name_arn_and_pages()
  local _, n, elb = setup()
  local a = create_alb(elb, n, "alb-a")
  create_alb(elb, n, "alb-b")
  create_alb(elb, n, "alb-c")
  lu.assertEquals(elb:DescribeLoadBalancers{ LoadBalancerArns = { a.LoadBalancerArn } }.LoadBalancers[1].LoadBalancerName, "alb-a")
  net.expect(lu, "LoadBalancerNotFound", "Load balancers '[nope]' not found", elb.DescribeLoadBalancers, elb, { Names = { "nope" } })
  net.expect(lu, "LoadBalancerNotFound", nil, elb.DescribeLoadBalancers, elb,
    { LoadBalancerArns = { gone(a.LoadBalancerArn) } })
  local names = {}
  for page in elb:paginate("DescribeLoadBalancers", {}, { page_size = 2 }) do
    for _, lb in ipairs(page.LoadBalancers) do names[#names + 1] = lb.LoadBalancerName end
  end
  lu.assertEquals(names, { "alb-a", "alb-b", "alb-c" })
end

function TestLoadBalancer.test_attributes_defaults_modify_and_validation()
  local _, n, elb = setup()
  local lb = create_alb(elb, n)
  local function attrs()
    local out = {}
    for _, a in ipairs(elb:DescribeLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn }.Attributes) do
      out[a.Key] = a.Value
    end
    return out
  end
  local a = attrs()
  lu.assertEquals(a["deletion_protection.enabled"], "false")
  lu.assertEquals(a["idle_timeout.timeout_seconds"], "60")
  lu.assertEquals(a["routing.http2.enabled"], "true")
  lu.assertEquals(a["routing.http.drop_invalid_header_fields.enabled"], "false")
  lu.assertEquals(a["load_balancing.cross_zone.enabled"], "true")
  local out = elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn, Attributes = {
    { Key = "deletion_protection.enabled", Value = "false" },
    { Key = "idle_timeout.timeout_seconds", Value = "120" },
    { Key = "routing.http.drop_invalid_header_fields.enabled", Value = "true" } } }
  lu.assertTrue(#out.Attributes >= 3)
  a = attrs()
  lu.assertEquals(a["idle_timeout.timeout_seconds"], "120")
  lu.assertEquals(a["routing.http.drop_invalid_header_fields.enabled"], "true")
  net.expect(lu, "ValidationError", "Load balancer attribute key 'no.such.key' is not recognized",
    elb.ModifyLoadBalancerAttributes, elb, { LoadBalancerArn = lb.LoadBalancerArn,
      Attributes = { { Key = "no.such.key", Value = "1" } } })
  net.expect(lu, "ValidationError", nil, elb.ModifyLoadBalancerAttributes, elb,
    { LoadBalancerArn = lb.LoadBalancerArn, Attributes = { { Key = "idle_timeout.timeout_seconds", Value = "5000" } } })
  lu.assertEquals(attrs()["idle_timeout.timeout_seconds"], "120", "a rejected change changes nothing")
end

function TestLoadBalancer.test_deletion_protection_blocks_delete()
  local _, n, elb = setup()
  local lb = create_alb(elb, n)
  elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn,
    Attributes = { { Key = "deletion_protection.enabled", Value = "true" } } }
  net.expect(lu, "OperationNotPermitted", nil, elb.DeleteLoadBalancer, elb, { LoadBalancerArn = lb.LoadBalancerArn })
  elb:ModifyLoadBalancerAttributes{ LoadBalancerArn = lb.LoadBalancerArn,
    Attributes = { { Key = "deletion_protection.enabled", Value = "false" } } }
  elb:DeleteLoadBalancer{ LoadBalancerArn = lb.LoadBalancerArn }
  elb:DeleteLoadBalancer{ LoadBalancerArn = lb.LoadBalancerArn } -- gone already: still succeeds
  local _, attempts = elb:wait("LoadBalancersDeleted", { LoadBalancerArns = { lb.LoadBalancerArn } }, { delay = 0.05 })
  lu.assertEquals(attempts, 1)
end

function TestLoadBalancer.test_set_security_groups()
  local _, n, elb = setup()
  local lb = create_alb(elb, n)
  local out = elb:SetSecurityGroups{ LoadBalancerArn = lb.LoadBalancerArn, SecurityGroups = { n.alb_sg, n.app_sg } }
  lu.assertEquals(out.SecurityGroupIds, { n.alb_sg, n.app_sg })
  lu.assertEquals(elb:DescribeLoadBalancers{ LoadBalancerArns = { lb.LoadBalancerArn } }.LoadBalancers[1].SecurityGroups,
    { n.alb_sg, n.app_sg })
  net.expect(lu, "InvalidSecurityGroup", nil, elb.SetSecurityGroups, elb,
    { LoadBalancerArn = lb.LoadBalancerArn, SecurityGroups = { "sg-0000000000000000a" } })
end

function TestLoadBalancer.test_tags_add_remove_describe()
  local _, n, elb = setup()
  local lb = create_alb(elb, n)
  local tg = create_tg(elb, n)
  elb:AddTags{ ResourceArns = { lb.LoadBalancerArn, tg.TargetGroupArn },
    Tags = { { Key = "FailoverRole", Value = "Primary" }, { Key = "Obsolete", Value = "x" } } }
  elb:RemoveTags{ ResourceArns = { lb.LoadBalancerArn }, TagKeys = { "Obsolete", "Owner" } }
  local d = elb:DescribeTags{ ResourceArns = { lb.LoadBalancerArn, tg.TargetGroupArn } }.TagDescriptions
  lu.assertEquals(d[1].ResourceArn, lb.LoadBalancerArn)
  lu.assertEquals(d[1].Tags, { { Key = "Environment", Value = "Production" },
    { Key = "FailoverRole", Value = "Primary" }, { Key = "fo:stack", Value = "trading-prod" } })
  lu.assertEquals(d[2].Tags, { { Key = "FailoverRole", Value = "Primary" }, { Key = "Obsolete", Value = "x" } })
  net.expect(lu, "DuplicateTagKeys", nil, elb.AddTags, elb, { ResourceArns = { lb.LoadBalancerArn },
    Tags = { { Key = "k", Value = "1" }, { Key = "k", Value = "2" } } })
  net.expect(lu, "TargetGroupNotFound", nil, elb.DescribeTags, elb,
    { ResourceArns = { gone(tg.TargetGroupArn) } })
end

TestTargetGroup = {}

function TestTargetGroup.test_defaults_and_given_health_check()
  local _, n, elb = setup()
  local d = elb:CreateTargetGroup{ Name = "tg-defaults", Protocol = "HTTP", Port = 80, VpcId = n.vpc }.TargetGroups[1]
  lu.assertStrMatches(d.TargetGroupArn,
    "arn:aws:elasticloadbalancing:eu%-south%-1:123456789012:targetgroup/tg%-defaults/" .. ("%x"):rep(16))
  lu.assertEquals({ d.HealthCheckProtocol, d.HealthCheckPort, d.HealthCheckPath, d.HealthCheckIntervalSeconds,
    d.HealthCheckTimeoutSeconds, d.HealthyThresholdCount, d.UnhealthyThresholdCount, d.Matcher.HttpCode,
    d.TargetType, d.HealthCheckEnabled },
    { "HTTP", "traffic-port", "/", 30, 5, 5, 2, "200", "instance", true })
  lu.assertEquals(d.LoadBalancerArns, {})
  local tg = create_tg(elb, n)
  lu.assertEquals({ tg.HealthCheckPath, tg.HealthCheckIntervalSeconds, tg.Matcher.HttpCode },
    { "/health", 10, "200-299" })
  local m = elb:ModifyTargetGroup{ TargetGroupArn = tg.TargetGroupArn, HealthCheckPath = "/healthz",
    HealthCheckIntervalSeconds = 15, Matcher = { HttpCode = "200" } }.TargetGroups[1]
  lu.assertEquals({ m.HealthCheckPath, m.HealthCheckIntervalSeconds, m.Matcher.HttpCode, m.Port },
    { "/healthz", 15, "200", 8080 })
end

function TestTargetGroup.test_validation_and_duplicates()
  local _, n, elb = setup()
  net.expect(lu, "ValidationError", "Health check interval must be greater than the timeout.",
    create_tg, elb, n, "tg-bad", { HealthCheckIntervalSeconds = 5, HealthCheckTimeoutSeconds = 5 })
  net.expect(lu, "ValidationError", nil, create_tg, elb, n, "tg-bad", { Matcher = { HttpCode = "600" } })
  net.expect(lu, "ValidationError", "The VPC ID 'vpc-0123456789abcdef0' is not found",
    create_tg, elb, n, "tg-bad", { VpcId = "vpc-0123456789abcdef0" })
  local a = create_tg(elb, n)
  lu.assertEquals(create_tg(elb, n).TargetGroupArn, a.TargetGroupArn, "same settings: the same group")
  net.expect(lu, "DuplicateTargetGroupName", nil, create_tg, elb, n, nil, { Port = 9090 })
  net.expect(lu, "TargetGroupNotFound", nil, elb.DescribeTargetGroups, elb, { Names = { "nope" } })
  net.expect(lu, "TargetGroupNotFound", nil, elb.ModifyTargetGroup, elb,
    { TargetGroupArn = gone(a.TargetGroupArn), HealthCheckPath = "/x" })
end

function TestTargetGroup.test_attributes()
  local _, n, elb = setup()
  local tg = create_tg(elb, n)
  local function attrs()
    local out = {}
    for _, a in ipairs(elb:DescribeTargetGroupAttributes{ TargetGroupArn = tg.TargetGroupArn }.Attributes) do
      out[a.Key] = a.Value
    end
    return out
  end
  lu.assertEquals(attrs()["deregistration_delay.timeout_seconds"], "300")
  lu.assertEquals(attrs()["stickiness.enabled"], "false")
  elb:ModifyTargetGroupAttributes{ TargetGroupArn = tg.TargetGroupArn, Attributes = {
    { Key = "deregistration_delay.timeout_seconds", Value = "30" }, { Key = "stickiness.enabled", Value = "false" } } }
  lu.assertEquals(attrs()["deregistration_delay.timeout_seconds"], "30")
  net.expect(lu, "ValidationError", "Target group attribute key 'bogus' is not recognized",
    elb.ModifyTargetGroupAttributes, elb, { TargetGroupArn = tg.TargetGroupArn, Attributes = { { Key = "bogus", Value = "1" } } })
  net.expect(lu, "ValidationError", nil, elb.ModifyTargetGroupAttributes, elb,
    { TargetGroupArn = tg.TargetGroupArn, Attributes = { { Key = "deregistration_delay.timeout_seconds", Value = "4000" } } })
end

TestListener = {}

function TestListener.test_http_forward_and_describe()
  local _, n, elb = setup()
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg), Tags = { { Key = "fo:stack", Value = "trading-prod" } } }.Listeners[1]
  lu.assertStrMatches(l.ListenerArn, "arn:aws:elasticloadbalancing:eu%-south%-1:123456789012:listener/app/"
    .. "alb%-trading%-prod/" .. lb.LoadBalancerArn:match("(%x+)$") .. "/" .. ("%x"):rep(16))
  local a = l.DefaultActions[1]
  lu.assertEquals(a.TargetGroupArn, tg.TargetGroupArn)
  lu.assertEquals(a.ForwardConfig.TargetGroups, { { TargetGroupArn = tg.TargetGroupArn, Weight = 1 } })
  lu.assertEquals(elb:DescribeListeners{ LoadBalancerArn = lb.LoadBalancerArn }.Listeners[1].ListenerArn, l.ListenerArn)
  lu.assertEquals(elb:DescribeTargetGroups{ LoadBalancerArn = lb.LoadBalancerArn }.TargetGroups[1].LoadBalancerArns,
    { lb.LoadBalancerArn })
  -- the same listener again is the same listener; another action on the port is a duplicate
  local again = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg) }.Listeners[1]
  lu.assertEquals(again.ListenerArn, l.ListenerArn)
  net.expect(lu, "DuplicateListener", nil, elb.CreateListener, elb, { LoadBalancerArn = lb.LoadBalancerArn,
    Protocol = "HTTP", Port = 80, DefaultActions = { { Type = "fixed-response",
      FixedResponseConfig = { StatusCode = "503" } } } })
end

function TestListener.test_https_needs_a_certificate_and_a_known_policy()
  local sim, n, elb = setup()
  local CERT = acm_support.issued(sim, R)
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  local base = { LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTPS", Port = 443, DefaultActions = forward(tg) }
  net.expect(lu, "ValidationError", "A certificate must be specified for HTTPS listeners", elb.CreateListener, elb, base)
  local bad = {}
  for k, v in pairs(base) do bad[k] = v end
  bad.Certificates = { { CertificateArn = "arn:aws:acm:eu-central-1:123456789012:certificate/12345678-1234-1234-1234-123456789012" } }
  net.expect(lu, "CertificateNotFound", nil, elb.CreateListener, elb, bad)
  bad.Certificates = { { CertificateArn = CERT } }
  bad.SslPolicy = "ELBSecurityPolicy-Nope"
  net.expect(lu, "SSLPolicyNotFound", nil, elb.CreateListener, elb, bad)
  bad.SslPolicy = nil
  local l = elb:CreateListener(bad).Listeners[1]
  lu.assertEquals(l.SslPolicy, "ELBSecurityPolicy-2016-08")
  lu.assertEquals(l.Certificates, { { CertificateArn = CERT } })
  local l2 = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTPS", Port = 8443,
    SslPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06", Certificates = { { CertificateArn = CERT } },
    DefaultActions = { { Type = "forward", Order = 1, ForwardConfig = { TargetGroups = {
      { TargetGroupArn = tg.TargetGroupArn, Weight = 1 } }, TargetGroupStickinessConfig = { Enabled = false } } } } }.Listeners[1]
  lu.assertEquals(l2.SslPolicy, "ELBSecurityPolicy-TLS13-1-2-2021-06")
end

function TestListener.test_modify_to_redirect_and_delete()
  local _, n, elb = setup()
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg) }.Listeners[1]
  local m = elb:ModifyListener{ ListenerArn = l.ListenerArn, Port = 80, Protocol = "HTTP", DefaultActions = {
    { Type = "redirect", RedirectConfig = { Protocol = "HTTPS", Port = "443", StatusCode = "HTTP_301" } } } }.Listeners[1]
  lu.assertEquals(m.DefaultActions[1].RedirectConfig, { Protocol = "HTTPS", Port = "443", Host = "#{host}",
    Path = "/#{path}", Query = "#{query}", StatusCode = "HTTP_301" })
  lu.assertEquals(elb:DescribeTargetGroups{ TargetGroupArns = { tg.TargetGroupArn } }.TargetGroups[1].LoadBalancerArns, {})
  elb:DeleteListener{ ListenerArn = l.ListenerArn }
  net.expect(lu, "ListenerNotFound", nil, elb.DeleteListener, elb, { ListenerArn = l.ListenerArn })
  net.expect(lu, "ListenerNotFound", nil, elb.DescribeListeners, elb, { ListenerArns = { l.ListenerArn } })
  net.expect(lu, "LoadBalancerNotFound", nil, elb.CreateListener, elb, { LoadBalancerArn =
    gone(lb.LoadBalancerArn), Protocol = "HTTP", Port = 81, DefaultActions = forward(tg) })
  net.expect(lu, "TargetGroupNotFound", nil, elb.CreateListener, elb, { LoadBalancerArn = lb.LoadBalancerArn,
    Protocol = "HTTP", Port = 81, DefaultActions = { { Type = "forward",
      TargetGroupArn = gone(tg.TargetGroupArn) } } })
end

function TestListener.test_target_group_in_use_and_one_load_balancer_per_group()
  local _, n, elb = setup()
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg) }.Listeners[1]
  net.expect(lu, "ResourceInUse", nil, elb.DeleteTargetGroup, elb, { TargetGroupArn = tg.TargetGroupArn })
  local other = create_alb(elb, n, "alb-other")
  net.expect(lu, "TargetGroupAssociationLimit", nil, elb.CreateListener, elb, { LoadBalancerArn =
    other.LoadBalancerArn, Protocol = "HTTP", Port = 80, DefaultActions = forward(tg) })
  elb:DeleteListener{ ListenerArn = l.ListenerArn }
  elb:DeleteTargetGroup{ TargetGroupArn = tg.TargetGroupArn }
  net.expect(lu, "TargetGroupNotFound", nil, elb.DescribeTargetGroups, elb, { TargetGroupArns = { tg.TargetGroupArn } })
end

-- DescribeRules: a listener's default rule (its default actions, priority "default"),
-- by listener or by rule ARN; unknown ones are RuleNotFound / ListenerNotFound.
function TestListener.test_describe_rules_answers_the_default_rule()
  local _, n, elb = setup()
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg) }.Listeners[1]
  local rules = elb:DescribeRules{ ListenerArn = l.ListenerArn }.Rules
  lu.assertEquals(#rules, 1)
  local r = rules[1]
  lu.assertEquals({ r.Priority, r.IsDefault }, { "default", true })
  lu.assertEquals(r.Conditions, {})
  lu.assertEquals(r.Actions, l.DefaultActions)
  lu.assertStrMatches(r.RuleArn, "arn:aws:elasticloadbalancing:eu%-south%-1:123456789012:listener%-rule/app/"
    .. "alb%-trading%-prod/%x+/%x+/" .. ("%x"):rep(16))
  lu.assertEquals(elb:DescribeRules{ RuleArns = { r.RuleArn } }.Rules[1], r)
  -- the rule follows the listener's default actions
  local tg2 = create_tg(elb, n, "tg-other")
  elb:ModifyListener{ ListenerArn = l.ListenerArn, DefaultActions = forward(tg2) }
  lu.assertEquals(elb:DescribeRules{ ListenerArn = l.ListenerArn }.Rules[1].Actions[1].TargetGroupArn,
    tg2.TargetGroupArn)
  net.expect(lu, "RuleNotFound", "One or more rules not found", elb.DescribeRules, elb,
    { RuleArns = { gone(r.RuleArn) } })
  net.expect(lu, "ListenerNotFound", nil, elb.DescribeRules, elb, { ListenerArn = gone(l.ListenerArn) })
  net.expect(lu, "ValidationError", nil, elb.DescribeRules, elb, {})
end

-- DescribeSSLPolicies: the predefined policies with the TLS versions each allows.
function TestListener.test_describe_ssl_policies()
  local _, _, elb = setup()
  local all = elb:DescribeSSLPolicies{}.SslPolicies
  lu.assertEquals(#all, 18)
  local one = elb:DescribeSSLPolicies{ Names = { "ELBSecurityPolicy-TLS13-1-2-2021-06" } }.SslPolicies
  lu.assertEquals(one[1].SslProtocols, { "TLSv1.2", "TLSv1.3" })
  lu.assertEquals(one[1].SupportedLoadBalancerTypes, { "application", "network" })
  lu.assertEquals(elb:DescribeSSLPolicies{ Names = { "ELBSecurityPolicy-2016-08" } }.SslPolicies[1]
    .SslProtocols, { "TLSv1", "TLSv1.1", "TLSv1.2" })
  net.expect(lu, "SSLPolicyNotFound", nil, elb.DescribeSSLPolicies, elb, { Names = { "Mine" } })
  local p1 = elb:DescribeSSLPolicies{ PageSize = 10 }
  lu.assertEquals(#p1.SslPolicies, 10)
  lu.assertEquals(#elb:DescribeSSLPolicies{ PageSize = 10, Marker = p1.NextMarker }.SslPolicies, 8)
end

TestTargetHealth = {}

-- The stack in one region: ALB, target group, HTTP listener, ASG of 2 on the private
-- subnets attached to the target group.
local function stack()
  local sim, n, elb, asg = setup()
  local lb, tg = create_alb(elb, n), create_tg(elb, n)
  asg:CreateAutoScalingGroup{ AutoScalingGroupName = "asg-trading-app-prod", MinSize = 2, MaxSize = 6,
    DesiredCapacity = 2, LaunchTemplate = { LaunchTemplateId = n.lt, Version = "$Latest" },
    VPCZoneIdentifier = table.concat(n.private, ","), TargetGroupARNs = { tg.TargetGroupArn },
    HealthCheckType = "ELB", HealthCheckGracePeriod = 300 }
  return sim, n, elb, asg, lb, tg
end

local function states(elb, tg)
  local out = {}
  for _, d in ipairs(elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions) do
    out[#out + 1] = d.TargetHealth.State
  end
  return out
end

function TestTargetHealth.test_unused_without_listener_then_healthy()
  local _, _, elb, _, lb, tg = stack()
  local d = elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn }.TargetHealthDescriptions
  lu.assertEquals(#d, 2)
  lu.assertEquals(d[1].TargetHealth, { State = "unused", Reason = "Target.NotInUse",
    Description = "Target group is not configured to receive traffic from the load balancer" })
  lu.assertEquals(d[1].Target.Port, 8080)
  lu.assertEquals(d[1].HealthCheckPort, "8080")
  lu.assertStrMatches(d[1].Target.Id, "i%-" .. ("%x"):rep(17))
  elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80, DefaultActions = forward(tg) }
  lu.assertEquals(states(elb, tg), { "healthy", "healthy" })
  local targets = {}
  for _, x in ipairs(d) do targets[#targets + 1] = { Id = x.Target.Id, Port = 8080 } end
  local _, attempts = elb:wait("TargetInService", { TargetGroupArn = tg.TargetGroupArn, Targets = targets }, { delay = 0.05 })
  lu.assertEquals(attempts, 1)
  -- a target the groups do not hold is not registered
  local one = elb:DescribeTargetHealth{ TargetGroupArn = tg.TargetGroupArn,
    Targets = { { Id = "i-0123456789abcdef0", Port = 8080 } } }.TargetHealthDescriptions
  lu.assertEquals(one[1].TargetHealth.Reason, "Target.NotRegistered")
  net.expect(lu, "InvalidTarget", nil, elb.DescribeTargetHealth, elb,
    { TargetGroupArn = tg.TargetGroupArn, Targets = { { Id = "10.0.0.1" } } })
end

function TestTargetHealth.test_outage_turns_targets_unhealthy()
  local sim, _, elb, _, lb, tg = stack()
  elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80, DefaultActions = forward(tg) }
  sim:set_outage(R, true)
  -- the region's endpoints fail on the wire; the handler still answers sim:invoke (the
  -- view Route 53's health checks take of the targets)
  local ok, err = pcall(elb.DescribeTargetHealth, elb, { TargetGroupArn = tg.TargetGroupArn })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "outage")
  local function health()
    local d = sim:invoke("elbv2", R, "DescribeTargetHealth", { TargetGroupArn = tg.TargetGroupArn }).TargetHealthDescriptions
    lu.assertEquals(#d, 2)
    lu.assertEquals(d[1].TargetHealth, d[2].TargetHealth)
    return d[1].TargetHealth
  end
  -- the ALB's own checks notice after UnhealthyThresholdCount (3) failures 10 s apart
  -- (the failed wire call above spent real seconds on retries: the clock moved a little)
  lu.assertEquals(health().State, "healthy")
  sim:advance(20)
  lu.assertEquals(health().State, "healthy")
  sim:advance(10)
  lu.assertEquals(health(), { State = "unhealthy", Reason = "Target.Timeout", Description = "Request timed out" })
  -- and come back after HealthyThresholdCount (2) good checks once the region is back
  sim:set_outage(R, false)
  lu.assertEquals(health().State, "unhealthy")
  sim:advance(20)
  lu.assertEquals(states(elb, tg), { "healthy", "healthy" })
end

function TestTargetHealth.test_scale_in_drains_then_target_leaves()
  local sim, _, elb, asg, lb, tg = stack()
  elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80, DefaultActions = forward(tg) }
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = "asg-trading-app-prod", MinSize = 1, DesiredCapacity = 1 }
  local s = states(elb, tg)
  table.sort(s)
  lu.assertEquals(s, { "draining", "healthy" })
  sim:advance(1)
  lu.assertEquals(states(elb, tg), { "healthy" })
end

function TestTargetHealth.test_teardown_in_dependency_order()
  local sim, _, elb, asg, lb, tg = stack()
  local l = elb:CreateListener{ LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP", Port = 80,
    DefaultActions = forward(tg) }.Listeners[1]
  -- ASG first (ForceDelete, wait until gone), then listener, load balancer, target group
  asg:DeleteAutoScalingGroup{ AutoScalingGroupName = "asg-trading-app-prod", ForceDelete = true }
  lu.assertEquals(asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { "asg-trading-app-prod" } }
    .AutoScalingGroups[1].Status, "Delete in progress")
  lu.assertEquals(states(elb, tg), { "draining", "draining" })
  sim:advance(1)
  lu.assertEquals(#asg:DescribeAutoScalingGroups{ AutoScalingGroupNames = { "asg-trading-app-prod" } }.AutoScalingGroups, 0)
  lu.assertEquals(states(elb, tg), {})
  net.expect(lu, "ResourceInUse", nil, elb.DeleteTargetGroup, elb, { TargetGroupArn = tg.TargetGroupArn })
  elb:DeleteListener{ ListenerArn = l.ListenerArn }
  elb:DeleteLoadBalancer{ LoadBalancerArn = lb.LoadBalancerArn }
  elb:DeleteTargetGroup{ TargetGroupArn = tg.TargetGroupArn }
  net.expect(lu, "LoadBalancerNotFound", nil, elb.DescribeLoadBalancers, elb, { LoadBalancerArns = { lb.LoadBalancerArn } })
  lu.assertEquals(elb:DescribeTargetGroups{}.TargetGroups, {})
end

TestSetSubnets = {}

function TestSetSubnets.test_an_albs_subnets_change_in_place_with_the_creation_rules()
  local sim, n, elb = setup()
  local lb = create_alb(elb, n)
  sim:advance(1)
  local ec2 = sim:client("ec2", { region = R })
  local azs = ec2:DescribeAvailabilityZones{}.AvailabilityZones
  local third = ec2:CreateSubnet{ VpcId = n.vpc, CidrBlock = "10.20.30.0/24",
    AvailabilityZone = azs[3].ZoneName }.Subnet.SubnetId
  local out = elb:SetSubnets{ LoadBalancerArn = lb.LoadBalancerArn, Subnets = { n.public[1], n.public[2], third } }
  lu.assertEquals(#out.AvailabilityZones, 3)
  local d = elb:DescribeLoadBalancers{ LoadBalancerArns = { lb.LoadBalancerArn } }.LoadBalancers[1]
  local ids = {}
  for _, z in ipairs(d.AvailabilityZones) do ids[#ids + 1] = z.SubnetId end
  table.sort(ids)
  local want = { n.public[1], n.public[2], third }
  table.sort(want)
  lu.assertEquals(ids, want)
  net.expect(lu, "ValidationError", "At least two subnets in two different Availability Zones must be specified",
    elb.SetSubnets, elb, { LoadBalancerArn = lb.LoadBalancerArn, Subnets = { n.public[1] } })
  net.expect(lu, "InvalidConfigurationRequest", nil, elb.SetSubnets, elb,
    { LoadBalancerArn = lb.LoadBalancerArn, Subnets = { n.public[1], n.private[1] } })
  net.expect(lu, "LoadBalancerNotFound", nil, elb.SetSubnets, elb,
    { LoadBalancerArn = gone(lb.LoadBalancerArn), Subnets = n.public })
end

os.exit(lu.LuaUnit.run())
