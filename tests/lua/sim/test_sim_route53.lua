-- The simulator's Route 53 through fo's route53 client over the in-process wire: hosted
-- zones (SOA/NS, delegation set, CallerReference), change batches (atomic, AWS's
-- InvalidChangeBatch and InvalidInput messages), record listing order and paging,
-- changes PENDING → INSYNC (and the waiter), health checks (defaults, RequestInterval
-- rules, CallerReference reuse, versions, observations), tags and rate limits.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws
local route53_sim = require "fo.sim.services.route53"
local throttle = require "fo.sim.route53.throttle"
local topo = require "support.sim_topology"

local B = math.ceil(os.time() / 60) * 60 + 60

local function setup()
  local sim = simlib.new{ seed = 5, time = function() return B end }
  return sim, sim:client("route53", { max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function zone(r53, name, ref)
  return r53:CreateHostedZone{ Name = name or "example-com.test", CallerReference = ref or "ref-1",
    HostedZoneConfig = { Comment = "test zone" } }
end

local function change(r53, zid, ...)
  return r53:ChangeResourceRecordSets{ HostedZoneId = zid, ChangeBatch = { Changes = { ... } } }
end

local function a_record(action, name, ip, extra)
  local rr = { Name = name, Type = "A", TTL = 300, ResourceRecords = { { Value = ip } } }
  for k, v in pairs(extra or {}) do rr[k] = v end
  return { Action = action, ResourceRecordSet = rr }
end

TestRoute53 = {}

function TestRoute53.tearDown()
  route53_sim.SYNC_SECONDS = 0
  throttle.enabled = true
end

function TestRoute53.test_create_zone_ids_soa_ns_delegation()
  local _, r53 = setup()
  local z = zone(r53, "Example-COM.Test")
  lu.assertStrMatches(z.HostedZone.Id, "/hostedzone/Z[A-Z0-9]+")
  local len = #z.HostedZone.Id - #"/hostedzone/"
  lu.assertTrue(len >= 14 and len <= 22, z.HostedZone.Id)
  lu.assertEquals(z.HostedZone.Name, "example-com.test.")
  lu.assertEquals(z.HostedZone.ResourceRecordSetCount, 2)
  lu.assertEquals(z.HostedZone.Config.Comment, "test zone")
  lu.assertEquals(z.ChangeInfo.Status, "PENDING")
  lu.assertStrMatches(z.ChangeInfo.Id, "/change/C[A-Z0-9]+")
  lu.assertStrContains(z.Location, "/2013-04-01/hostedzone/Z")
  local ns = z.DelegationSet.NameServers
  lu.assertEquals(#ns, 4)
  lu.assertStrMatches(ns[1], "ns%-%d+%.awsdns%-%d%d%.com")
  lu.assertStrMatches(ns[4], "ns%-%d+%.awsdns%-%d%d%.co%.uk")
  local list = r53:ListResourceRecordSets{ HostedZoneId = z.HostedZone.Id }.ResourceRecordSets
  lu.assertEquals(#list, 2)
  lu.assertEquals(list[1].Type, "NS")
  lu.assertEquals(list[1].TTL, 172800)
  lu.assertEquals(list[1].ResourceRecords[1].Value, ns[1] .. ".")
  lu.assertEquals(list[2].Type, "SOA")
  lu.assertStrContains(list[2].ResourceRecords[1].Value, "awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400")
  local got = r53:GetHostedZone{ Id = z.HostedZone.Id }
  lu.assertEquals(got.HostedZone.Id, z.HostedZone.Id)
  lu.assertEquals(got.DelegationSet.NameServers, ns)
end

function TestRoute53.test_get_hosted_zone_count()
  local _, r53 = setup()
  lu.assertEquals(r53:GetHostedZoneCount{}.HostedZoneCount, 0)
  local z = zone(r53, "one.test", "c1").HostedZone.Id
  zone(r53, "two.test", "c2")
  lu.assertEquals(r53:GetHostedZoneCount{}.HostedZoneCount, 2)
  r53:DeleteHostedZone{ Id = z }
  lu.assertEquals(r53:GetHostedZoneCount{}.HostedZoneCount, 1)
end

function TestRoute53.test_caller_reference_is_used_once()
  local _, r53 = setup()
  local z = zone(r53)
  lu.assertEquals(err_of(zone, r53, "other.com", "ref-1").code, "HostedZoneAlreadyExists")
  -- even after the zone is deleted
  r53:DeleteHostedZone{ Id = z.HostedZone.Id }
  local e = err_of(zone, r53, "example-com.test", "ref-1")
  lu.assertEquals(e.code, "HostedZoneAlreadyExists")
  lu.assertEquals(e.status, 409)
  lu.assertEquals(err_of(r53.GetHostedZone, r53, { Id = z.HostedZone.Id }).code, "NoSuchHostedZone")
end

function TestRoute53.test_update_hosted_zone_comment()
  local _, r53 = setup()
  local id = zone(r53).HostedZone.Id
  local out = r53:UpdateHostedZoneComment{ Id = id, Comment = "new comment" }
  lu.assertEquals(out.HostedZone.Config.Comment, "new comment")
  lu.assertEquals(r53:GetHostedZone{ Id = id }.HostedZone.Config.Comment, "new comment")
  -- no Comment removes it (API reference)
  r53:UpdateHostedZoneComment{ Id = id }
  lu.assertNil(r53:GetHostedZone{ Id = id }.HostedZone.Config.Comment)
  lu.assertEquals(err_of(r53.UpdateHostedZoneComment, r53, { Id = "/hostedzone/ZNOSUCHZONE0000000000" })
    .code, "NoSuchHostedZone")
end

function TestRoute53.test_list_zones_paging_and_by_name()
  local _, r53 = setup()
  local ids = {}
  for i, n in ipairs{ "b.example-com.test", "a.example-org.test", "c.example-net.test" } do
    ids[i] = zone(r53, n, "r" .. i).HostedZone.Id
  end
  local p1 = r53:ListHostedZones{ MaxItems = "2" }
  lu.assertEquals(#p1.HostedZones, 2)
  lu.assertTrue(p1.IsTruncated)
  lu.assertEquals(p1.MaxItems, "2")
  local p2 = r53:ListHostedZones{ MaxItems = "2", Marker = p1.NextMarker }
  lu.assertEquals(#p2.HostedZones, 1)
  lu.assertFalse(p2.IsTruncated)
  local all = {}
  for z in r53:items("ListHostedZones", { MaxItems = "1" }) do all[#all + 1] = z.Id end
  lu.assertEquals(all, ids)
  -- by name: labels reversed (test.example-com.b < test.example-net.c < test.example-org.a)
  local byname = r53:ListHostedZonesByName{}
  lu.assertEquals(byname.HostedZones[1].Name, "b.example-com.test.")
  lu.assertEquals(byname.HostedZones[2].Name, "c.example-net.test.")
  lu.assertEquals(byname.HostedZones[3].Name, "a.example-org.test.")
  local from = r53:ListHostedZonesByName{ DNSName = "c.example-net.test", MaxItems = "1" }
  lu.assertEquals(from.HostedZones[1].Name, "c.example-net.test.")
  lu.assertEquals(from.NextDNSName, "a.example-org.test.")
  lu.assertEquals(err_of(r53.ListHostedZones, r53, { MaxItems = "x" }).code, "InvalidInput")
end

function TestRoute53.test_change_batch_create_upsert_delete_and_not_empty()
  local _, r53 = setup()
  local zid = zone(r53).HostedZone.Id
  change(r53, zid, a_record("CREATE", "www.example-com.test", "192.0.2.1"),
    { Action = "CREATE", ResourceRecordSet = { Name = "_fo.example-com.test", Type = "TXT", TTL = 300,
      ResourceRecords = { { Value = '"fo:stack=x"' } } } })
  local e = err_of(r53.DeleteHostedZone, r53, { Id = zid })
  lu.assertEquals(e.code, "HostedZoneNotEmpty")
  change(r53, zid, a_record("UPSERT", "www.example-com.test", "192.0.2.2"))
  local rr = r53:ListResourceRecordSets{ HostedZoneId = zid, StartRecordName = "www.example-com.test",
    StartRecordType = "A", MaxItems = "1" }.ResourceRecordSets[1]
  lu.assertEquals(rr.ResourceRecords[1].Value, "192.0.2.2")
  -- DELETE must match the current values exactly
  e = err_of(change, r53, zid, a_record("DELETE", "www.example-com.test", "192.0.2.1"))
  lu.assertEquals(e.code, "InvalidChangeBatch")
  lu.assertStrContains(e.message, "Tried to delete resource record set [name='www.example-com.test.', "
    .. "type='A'] but the values provided do not match the current values")
  change(r53, zid, a_record("DELETE", "www.example-com.test", "192.0.2.2"),
    { Action = "DELETE", ResourceRecordSet = { Name = "_fo.example-com.test", Type = "TXT", TTL = 300,
      ResourceRecords = { { Value = '"fo:stack=x"' } } } })
  r53:DeleteHostedZone{ Id = zid }
end

function TestRoute53.test_change_batch_is_atomic_and_lists_every_problem()
  local _, r53 = setup()
  local zid = zone(r53).HostedZone.Id
  change(r53, zid, a_record("CREATE", "a.example-com.test", "192.0.2.1"))
  local e = err_of(change, r53, zid, a_record("CREATE", "b.example-com.test", "192.0.2.2"),
    a_record("CREATE", "a.example-com.test", "192.0.2.3"),
    a_record("DELETE", "c.example-com.test", "192.0.2.4"),
    a_record("CREATE", "d.example-org.test", "192.0.2.5"))
  lu.assertEquals(e.code, "InvalidChangeBatch")
  lu.assertEquals(e.status, 400)
  lu.assertStrContains(e.message, "[Tried to create resource record set [name='a.example-com.test.', "
    .. "type='A'] but it already exists")
  lu.assertStrContains(e.message, "Tried to delete resource record set [name='c.example-com.test.', "
    .. "type='A'] but it was not found")
  lu.assertStrContains(e.message, "RRSet with DNS name d.example-org.test. is not permitted in zone example-com.test.")
  lu.assertEquals(#e.fields.messages, 3)
  -- b was valid but nothing of the batch was applied
  local names = {}
  for _, rr in ipairs(r53:ListResourceRecordSets{ HostedZoneId = zid }.ResourceRecordSets) do
    names[#names + 1] = rr.Name .. rr.Type
  end
  lu.assertEquals(names, { "example-com.test.NS", "example-com.test.SOA", "a.example-com.test.A" })
  -- DELETE then CREATE of one record in a batch is the classic update
  change(r53, zid, a_record("DELETE", "a.example-com.test", "192.0.2.1"),
    a_record("CREATE", "a.example-com.test", "192.0.2.9"))
end

function TestRoute53.test_record_shape_rules()
  local sim, r53 = setup()
  local zid = zone(r53).HostedZone.Id
  -- weighted records need SetIdentifier
  local e = err_of(change, r53, zid, a_record("CREATE", "w.example-com.test", "192.0.2.1", { Weight = 5 }))
  lu.assertEquals(e.code, "InvalidInput")
  lu.assertStrContains(e.message, "Invalid request: Missing field 'SetIdentifier' in Change with "
    .. "[Action=CREATE, Name=w.example-com.test., Type=A, SetIdentifier=null]")
  -- SetIdentifier without a routing policy
  e = err_of(change, r53, zid, a_record("CREATE", "w.example-com.test", "192.0.2.1", { SetIdentifier = "x" }))
  lu.assertStrContains(e.message, "Expected exactly one of [Weight, Region, Failover")
  -- alias records have no TTL
  e = err_of(change, r53, zid, { Action = "CREATE", ResourceRecordSet = { Name = "al.example-com.test",
    Type = "A", TTL = 60, AliasTarget = { HostedZoneId = "Z3ULH7SSC9OV64",
      DNSName = "x.eu-south-1.elb.amazonaws.com", EvaluateTargetHealth = false } } })
  lu.assertEquals(e.code, "InvalidInput")
  lu.assertStrContains(e.message, "Expected exactly one of [AliasTarget, all of [TTL, and "
    .. "ResourceRecords], or TrafficPolicyInstanceId], but found more than one")
  -- Weight above 255 (the model's range: refused by the sim's validation)
  local ok, e2 = pcall(sim.invoke, sim, "route53", nil, "ChangeResourceRecordSets", {
    HostedZoneId = zid, ChangeBatch = { Changes = { a_record("CREATE", "w.example-com.test",
      "192.0.2.1", { SetIdentifier = "x", Weight = 256 }) } } })
  lu.assertFalse(ok)
  lu.assertEquals(e2.code, "InvalidInput")
  -- bad IPv4, unquoted TXT
  e = err_of(change, r53, zid, a_record("CREATE", "bad.example-com.test", "300.1.1.1"))
  lu.assertStrContains(e.message, "ARRDATAIllegalIPv4Address")
  -- CNAME conflicts with other types at the same name
  change(r53, zid, a_record("CREATE", "c.example-com.test", "192.0.2.1"))
  e = err_of(change, r53, zid, { Action = "CREATE", ResourceRecordSet = { Name = "c.example-com.test",
    Type = "CNAME", TTL = 60, ResourceRecords = { { Value = "x.example-com.test" } } } })
  lu.assertStrContains(e.message, "RRSet of type CNAME with DNS name c.example-com.test. is not permitted")
  -- weighted and non-weighted sets of one name and type do not mix
  e = err_of(change, r53, zid, a_record("CREATE", "c.example-com.test", "192.0.2.2",
    { SetIdentifier = "w", Weight = 1 }))
  lu.assertStrContains(e.message, "cannot be created as a non-weighted set exists")
  -- the apex SOA cannot go
  local soa
  for _, rr in ipairs(r53:ListResourceRecordSets{ HostedZoneId = zid }.ResourceRecordSets) do
    if rr.Type == "SOA" then soa = rr end
  end
  e = err_of(change, r53, zid, { Action = "DELETE", ResourceRecordSet = soa })
  lu.assertStrContains(e.message, "A HostedZone must contain exactly one SOA record.")
  -- a health check that does not exist
  e = err_of(change, r53, zid, a_record("CREATE", "h.example-com.test", "192.0.2.1",
    { HealthCheckId = "00000000-0000-4000-8000-000000000000" }))
  lu.assertEquals(e.code, "NoSuchHealthCheck")
end

function TestRoute53.test_weighted_alias_records_round_trip()
  local sim, r53 = setup()
  local p = topo.region(sim, "eu-south-1", 0)
  local s = topo.region(sim, "eu-central-1", 0)
  local zid = zone(r53).HostedZone.Id
  change(r53, zid, { Action = "UPSERT", ResourceRecordSet = { Name = "app.example-com.test", Type = "A",
    SetIdentifier = "primary", Weight = 100, AliasTarget = { HostedZoneId = "/hostedzone/" .. p.zone_id,
      DNSName = p.dns:upper(), EvaluateTargetHealth = true } } },
    { Action = "UPSERT", ResourceRecordSet = { Name = "*.example-com.test", Type = "A",
      SetIdentifier = "standby", Weight = 0, AliasTarget = { HostedZoneId = s.zone_id,
        DNSName = "dualstack." .. s.dns .. ".", EvaluateTargetHealth = true } } })
  local list = r53:ListResourceRecordSets{ HostedZoneId = zid }.ResourceRecordSets
  -- labels reversed: test.example-com. < test.example-com.\052 < test.example-com.app
  lu.assertEquals(list[3].Name, "\\052.example-com.test.")
  lu.assertEquals(list[4].Name, "app.example-com.test.")
  lu.assertEquals(list[4].Weight, 100)
  lu.assertNil(list[4].TTL)
  lu.assertEquals(list[4].AliasTarget, { HostedZoneId = "Z3ULH7SSC9OV64",
    DNSName = p.dns:lower() .. ".", EvaluateTargetHealth = true })
end

-- AWS's checks of an alias target (InvalidChangeBatch, "Tried to create an alias that
-- targets <name>, type A in zone <id>, but ..."): a load balancer only with its own
-- region's canonical zone id (eu-south-1's ALB zone is not eu-central-1's) and only when
-- it exists; a record set of the same zone only when it exists there.
function TestRoute53.test_alias_targets_are_checked_as_aws_does()
  local sim, r53 = setup()
  local p = topo.region(sim, "eu-south-1", 0)
  local s = topo.region(sim, "eu-central-1", 0)
  local zid = zone(r53).HostedZone.Id
  local bare = zid:match("Z[A-Z0-9]+$")
  local function alias(name, dns, hz, action)
    return { Action = action or "CREATE", ResourceRecordSet = { Name = name, Type = "A",
      AliasTarget = { HostedZoneId = hz, DNSName = dns, EvaluateTargetHealth = false } } }
  end
  -- the standby ALB's zone id for the primary ALB's name
  local e = err_of(change, r53, zid, alias("a.example-com.test", p.dns, s.zone_id))
  lu.assertEquals(e.code, "InvalidChangeBatch")
  lu.assertEquals(e.message, ("[Tried to create an alias that targets %s., type A in zone %s, "
    .. "but the alias target name does not lie within the target zone]"):format(p.dns:lower(), s.zone_id))
  -- the hosted zone's own id for a load balancer's name (a common mistake)
  e = err_of(change, r53, zid, alias("a.example-com.test", p.dns, bare, "UPSERT"))
  lu.assertStrContains(e.message, "but the alias target name does not lie within the target zone")
  -- an ELB zone id for a name that is no load balancer's
  e = err_of(change, r53, zid, alias("a.example-com.test", "www.other.test", p.zone_id))
  lu.assertStrContains(e.message, "does not lie within the target zone")
  -- the right zone, but no such load balancer (a deleted one, a typo)
  local ghost = p.dns:gsub("^alb%-", "gone-")
  e = err_of(change, r53, zid, alias("a.example-com.test", ghost, p.zone_id))
  lu.assertEquals(e.message, ("[Tried to create an alias that targets %s., type A in zone %s, "
    .. "but that target was not found]"):format(ghost:lower(), p.zone_id))
  -- an NLB zone id (same region) for an ALB's name
  e = err_of(change, r53, zid, alias("a.example-com.test", p.dns, "Z23146JA1KNAFP"))
  lu.assertStrContains(e.message, "does not lie within the target zone")
  -- every problem of the batch is listed; nothing applied
  e = err_of(change, r53, zid, alias("a.example-com.test", p.dns, s.zone_id),
    alias("b.example-com.test", s.dns, p.zone_id))
  local _, n = e.message:gsub("Tried to create an alias", "")
  lu.assertEquals(n, 2)
  lu.assertEquals(#r53:ListResourceRecordSets{ HostedZoneId = zid }.ResourceRecordSets, 2)
  -- a record set of the same zone: only one that exists (with that type), and in the zone
  e = err_of(change, r53, zid, alias("a.example-com.test", "www.example-com.test", bare))
  lu.assertEquals(e.message, ("[Tried to create an alias that targets www.example-com.test., "
    .. "type A in zone %s, but that target was not found]"):format(bare))
  e = err_of(change, r53, zid, alias("a.example-com.test", "www.elsewhere.test", bare))
  lu.assertStrContains(e.message, "does not lie within the target zone")
  -- the target created earlier in the same batch counts; then both forms work
  change(r53, zid, a_record("CREATE", "www.example-com.test", "192.0.2.1"),
    alias("a.example-com.test", "www.example-com.test", bare))
  change(r53, zid, alias("lb.example-com.test", p.dns, p.zone_id),
    alias("lb2.example-com.test", "dualstack." .. s.dns, s.zone_id))
  lu.assertEquals(#r53:ListResourceRecordSets{ HostedZoneId = zid }.ResourceRecordSets, 6)
  -- deleting an alias record does not check its target (the load balancer may be gone)
  sim:invoke("elbv2", "eu-south-1", "DeleteLoadBalancer", { LoadBalancerArn = p.lb_arn })
  change(r53, zid, alias("lb.example-com.test", p.dns:lower() .. ".", p.zone_id, "DELETE"))
end

-- Route 53 refuses the names RFC 2606 reserves for documentation, and every name below
-- them: InvalidDomainName "<name> is reserved by AWS!".
function TestRoute53.test_reserved_domain_names_are_refused()
  local _, r53 = setup()
  for _, name in ipairs{ "example.com", "Example.NET.", "example.org", "trading.example.com",
      "a.b.example.org" } do
    local e = err_of(zone, r53, name, "ref-" .. name)
    lu.assertEquals(e.code, "InvalidDomainName", name)
    lu.assertEquals(e.message, name:lower():gsub("%.$", "") .. " is reserved by AWS!")
  end
  -- a top-level domain alone cannot be a hosted zone
  local e = err_of(zone, r53, "com", "tld")
  lu.assertEquals(e.code, "InvalidDomainName")
  lu.assertEquals(e.message, "com is reserved by AWS!")
  -- names that merely look alike are ordinary domains
  for i, name in ipairs{ "myexample.com", "example.co", "example.com.au", "example-com.test" } do
    lu.assertEquals(zone(r53, name, "ok-" .. i).HostedZone.Name, name .. ".")
  end
end

function TestRoute53.test_list_record_sets_paging()
  local _, r53 = setup()
  local zid = zone(r53).HostedZone.Id
  local changes = {}
  for i = 1, 5 do
    changes[i] = a_record("CREATE", "w.example-com.test", "192.0.2." .. i,
      { SetIdentifier = "s" .. i, Weight = i })
  end
  r53:ChangeResourceRecordSets{ HostedZoneId = zid, ChangeBatch = { Changes = changes } }
  local p = r53:ListResourceRecordSets{ HostedZoneId = zid, MaxItems = "3" }
  lu.assertTrue(p.IsTruncated)
  lu.assertEquals(p.NextRecordName, "w.example-com.test.")
  lu.assertEquals(p.NextRecordType, "A")
  lu.assertEquals(p.NextRecordIdentifier, "s2")
  local ids = {}
  for rr in r53:items("ListResourceRecordSets", { HostedZoneId = zid, MaxItems = "2" }) do
    ids[#ids + 1] = rr.SetIdentifier or rr.Type
  end
  lu.assertEquals(ids, { "NS", "SOA", "s1", "s2", "s3", "s4", "s5" })
  local e = err_of(r53.ListResourceRecordSets, r53, { HostedZoneId = zid, StartRecordType = "A" })
  lu.assertEquals(e.code, "InvalidInput")
end

function TestRoute53.test_change_pending_then_insync_and_waiter()
  local sim, r53 = setup()
  route53_sim.SYNC_SECONDS = 20
  local zid = zone(r53).HostedZone.Id
  local c = change(r53, zid, a_record("CREATE", "a.example-com.test", "192.0.2.1")).ChangeInfo
  lu.assertEquals(c.Status, "PENDING")
  lu.assertEquals(r53:GetChange{ Id = c.Id }.ChangeInfo.Status, "PENDING")
  sim:advance(20)
  lu.assertEquals(r53:GetChange{ Id = c.Id }.ChangeInfo.Status, "INSYNC")
  route53_sim.SYNC_SECONDS = 0
  local c2 = change(r53, zid, a_record("CREATE", "b.example-com.test", "192.0.2.1")).ChangeInfo
  r53:wait("ResourceRecordSetsChanged", { Id = c2.Id }, { delay = 0, max_attempts = 2 })
  lu.assertEquals(err_of(r53.GetChange, r53, { Id = "/change/CNOPE" }).code, "NoSuchChange")
end

local function https_check(extra)
  local c = { Type = "HTTPS", FullyQualifiedDomainName = "alb-1.eu-south-1.elb.amazonaws.com",
    ResourcePath = "/health", RequestInterval = 10, FailureThreshold = 3 }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

function TestRoute53.test_health_check_create_defaults_and_get()
  local _, r53 = setup()
  local hc = r53:CreateHealthCheck{ CallerReference = "hc-1", HealthCheckConfig = https_check() }
  local id = hc.HealthCheck.Id
  lu.assertStrMatches(id, "%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x+")
  local cfg = hc.HealthCheck.HealthCheckConfig
  lu.assertEquals(cfg.Port, 443)
  lu.assertTrue(cfg.EnableSNI)
  lu.assertFalse(cfg.Inverted)
  lu.assertFalse(cfg.Disabled)
  lu.assertFalse(cfg.MeasureLatency)
  lu.assertEquals(hc.HealthCheck.HealthCheckVersion, 1)
  lu.assertStrContains(hc.Location, "/2013-04-01/healthcheck/" .. id)
  lu.assertEquals(r53:GetHealthCheck{ HealthCheckId = id }.HealthCheck.HealthCheckConfig, cfg)
  local d = r53:CreateHealthCheck{ CallerReference = "hc-2", HealthCheckConfig = {
    Type = "HTTP", FullyQualifiedDomainName = "x.example-com.test" } }.HealthCheck.HealthCheckConfig
  lu.assertEquals(d.RequestInterval, 30)
  lu.assertEquals(d.FailureThreshold, 3)
  lu.assertEquals(d.Port, 80)
end

function TestRoute53.test_health_check_validation()
  local _, r53 = setup()
  local e = err_of(r53.CreateHealthCheck, r53, { CallerReference = "a",
    HealthCheckConfig = https_check{ RequestInterval = 20 } })
  lu.assertEquals(e.code, "InvalidInput")
  lu.assertStrContains(e.message, "RequestInterval")
  -- FailureThreshold 11 breaks the model: fo's client refuses it before sending, the sim
  -- answers InvalidInput to anyone who sends it
  local sim = simlib.new{ seed = 1 }
  local ok, e2 = pcall(sim.invoke, sim, "route53", nil, "CreateHealthCheck", { CallerReference = "a",
    HealthCheckConfig = https_check{ FailureThreshold = 11 } })
  lu.assertFalse(ok)
  lu.assertEquals(e2.code, "InvalidInput")
  e = err_of(r53.CreateHealthCheck, r53, { CallerReference = "a",
    HealthCheckConfig = { Type = "HTTP_STR_MATCH", FullyQualifiedDomainName = "x.example-com.test" } })
  lu.assertStrContains(e.message, "SearchString")
end

-- The endpoint rules of the API reference (HealthCheckConfig): a TCP check by IP address
-- names no domain; an address in a local, private, non-routable or multicast range (RFC
-- 5735, RFC 6598, RFC 5156) cannot be checked — on create and on update.
function TestRoute53.test_health_check_endpoint_rules()
  local _, r53 = setup()
  local function create(ref, cfg)
    return r53:CreateHealthCheck{ CallerReference = ref, HealthCheckConfig = cfg }
  end
  local e = err_of(create, "tcp", { Type = "TCP", Port = 5432, IPAddress = "8.8.8.8",
    FullyQualifiedDomainName = "db.example-com.test" })
  lu.assertEquals(e.code, "InvalidInput")
  lu.assertEquals(e.message, "TCP health checks that have IP address must not have a fully "
    .. "qualified domain name specified.")
  for _, ip in ipairs{ "10.1.2.3", "172.31.0.5", "192.168.1.1", "127.0.0.1", "169.254.169.254",
      "100.64.0.1", "192.0.2.44", "224.0.0.1", "0.1.2.3", "fd00::1", "::1", "2001:db8::1" } do
    e = err_of(create, "ip-" .. ip, { Type = "HTTP", IPAddress = ip, Port = 80 })
    lu.assertEquals(e.code, "InvalidInput", ip)
    lu.assertStrContains(e.message, "local, private, non-routable, or multicast range", false, ip)
  end
  e = err_of(create, "bad-ip", { Type = "HTTP", IPAddress = "300.1.1.1", Port = 80 })
  lu.assertStrContains(e.message, "not a valid IPv4 address")
  -- public addresses (and a TCP check by name, or by address alone) are fine
  create("tcp-name", { Type = "TCP", Port = 5432, FullyQualifiedDomainName = "db.example-com.test" })
  local hc = create("ok", { Type = "HTTP", IPAddress = "172.32.0.1", Port = 80 }).HealthCheck
  create("ok6", { Type = "HTTP", IPAddress = "2600:1f18::1", Port = 80 })
  e = err_of(r53.UpdateHealthCheck, r53, { HealthCheckId = hc.Id, IPAddress = "10.0.0.1" })
  lu.assertStrContains(e.message, "IPAddress 10.0.0.1 is in a local, private")
end

function TestRoute53.test_health_check_caller_reference()
  local _, r53 = setup()
  local id = r53:CreateHealthCheck{ CallerReference = "hc", HealthCheckConfig = https_check() }
    .HealthCheck.Id
  -- same reference and settings: the same health check
  lu.assertEquals(r53:CreateHealthCheck{ CallerReference = "hc", HealthCheckConfig = https_check() }
    .HealthCheck.Id, id)
  -- different settings
  local e = err_of(r53.CreateHealthCheck, r53, { CallerReference = "hc",
    HealthCheckConfig = https_check{ ResourcePath = "/other" } })
  lu.assertEquals(e.code, "HealthCheckAlreadyExists")
  lu.assertEquals(e.status, 409)
  -- the reference of a deleted check, whatever the settings
  r53:DeleteHealthCheck{ HealthCheckId = id }
  e = err_of(r53.CreateHealthCheck, r53, { CallerReference = "hc", HealthCheckConfig = https_check() })
  lu.assertEquals(e.code, "HealthCheckAlreadyExists")
  lu.assertEquals(err_of(r53.GetHealthCheck, r53, { HealthCheckId = id }).code, "NoSuchHealthCheck")
end

function TestRoute53.test_update_health_check_versions_and_immutable_interval()
  local _, r53 = setup()
  local id = r53:CreateHealthCheck{ CallerReference = "hc", HealthCheckConfig = https_check{
    Regions = { "us-east-1", "eu-west-1", "us-west-2" } } }.HealthCheck.Id
  local u = r53:UpdateHealthCheck{ HealthCheckId = id, HealthCheckVersion = 1, FailureThreshold = 2,
    ResourcePath = "/healthz", ResetElements = { "Regions" } }.HealthCheck
  lu.assertEquals(u.HealthCheckVersion, 2)
  lu.assertEquals(u.HealthCheckConfig.FailureThreshold, 2)
  lu.assertEquals(u.HealthCheckConfig.ResourcePath, "/healthz")
  lu.assertNil(u.HealthCheckConfig.Regions)
  lu.assertEquals(u.HealthCheckConfig.RequestInterval, 10)
  local e = err_of(r53.UpdateHealthCheck, r53, { HealthCheckId = id, HealthCheckVersion = 1,
    FailureThreshold = 4 })
  lu.assertEquals(e.code, "HealthCheckVersionMismatch")
  lu.assertEquals(e.status, 409)
  -- RequestInterval is not even a member of UpdateHealthCheck's input
  local ok, msg = pcall(r53.UpdateHealthCheck, r53, { HealthCheckId = id, RequestInterval = 30 })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(msg), "RequestInterval")
  -- the sim answers InvalidInput for it too (its model validation)
  local sim = simlib.new{ seed = 1 }
  local ok2, e2 = pcall(sim.invoke, sim, "route53", nil, "UpdateHealthCheck",
    { HealthCheckId = id, RequestInterval = 30 })
  lu.assertFalse(ok2)
  lu.assertEquals(e2.code, "InvalidInput")
end

function TestRoute53.test_list_health_checks_and_status()
  local _, r53 = setup()
  local ids = {}
  for i = 1, 3 do
    ids[i] = r53:CreateHealthCheck{ CallerReference = "hc" .. i,
      HealthCheckConfig = https_check{ Regions = i == 1 and { "us-east-1", "eu-west-1",
        "ap-southeast-1" } or nil } }.HealthCheck.Id
  end
  local got = {}
  for hc in r53:items("ListHealthChecks", { MaxItems = "2" }) do got[#got + 1] = hc.Id end
  lu.assertEquals(got, ids)
  local obs = r53:GetHealthCheckStatus{ HealthCheckId = ids[1] }.HealthCheckObservations
  lu.assertEquals(#obs, 3)
  lu.assertEquals(obs[1].Region, "us-east-1")
  lu.assertStrMatches(obs[1].IPAddress, "%d+%.%d+%.%d+%.%d+")
  -- the ALB does not exist: the checkers cannot resolve it
  lu.assertStrContains(obs[1].StatusReport.Status, "Failure: DNS resolution failed")
end

function TestRoute53.test_tags()
  local _, r53 = setup()
  local zid = zone(r53).HostedZone.Id
  local hc = r53:CreateHealthCheck{ CallerReference = "hc", HealthCheckConfig = https_check() }
    .HealthCheck.Id
  r53:ChangeTagsForResource{ ResourceType = "healthcheck", ResourceId = hc,
    AddTags = { { Key = "Name", Value = "hc-primary" }, { Key = "Obsolete", Value = "x" } } }
  r53:ChangeTagsForResource{ ResourceType = "healthcheck", ResourceId = hc,
    AddTags = { { Key = "fo:stack", Value = "trading" } }, RemoveTagKeys = { "Obsolete" } }
  local set = r53:ListTagsForResource{ ResourceType = "healthcheck", ResourceId = hc }.ResourceTagSet
  lu.assertEquals(set.ResourceType, "healthcheck")
  lu.assertEquals(set.ResourceId, hc)
  lu.assertEquals(set.Tags, { { Key = "Name", Value = "hc-primary" },
    { Key = "fo:stack", Value = "trading" } })
  r53:ChangeTagsForResource{ ResourceType = "hostedzone", ResourceId = zid,
    AddTags = { { Key = "Environment", Value = "Production" } } }
  lu.assertEquals(r53:ListTagsForResource{ ResourceType = "hostedzone", ResourceId = zid }
    .ResourceTagSet.Tags, { { Key = "Environment", Value = "Production" } })
  lu.assertEquals(err_of(r53.ListTagsForResource, r53, { ResourceType = "hostedzone",
    ResourceId = "ZNOPE" }).code, "NoSuchHostedZone")
end

function TestRoute53.test_rate_limits()
  local sim, r53 = setup()
  local zid = zone(r53).HostedZone.Id -- one token of the account's 50
  for _ = 1, 49 do r53:GetHostedZone{ Id = zid } end
  local e = err_of(r53.GetHostedZone, r53, { Id = zid })
  lu.assertEquals(e.code, "Throttling")
  lu.assertEquals(e.message, "Rate exceeded")
  sim:advance(1) -- 10 tokens per second
  for _ = 1, 10 do r53:GetHostedZone{ Id = zid } end
  lu.assertEquals(err_of(r53.GetHostedZone, r53, { Id = zid }).code, "Throttling")
  -- GetHealthCheckStatus has its own bucket of 4
  sim:advance(10)
  local hc = r53:CreateHealthCheck{ CallerReference = "hc", HealthCheckConfig = https_check() }
    .HealthCheck.Id
  for _ = 1, 4 do r53:GetHealthCheckStatus{ HealthCheckId = hc } end
  lu.assertEquals(err_of(r53.GetHealthCheckStatus, r53, { HealthCheckId = hc }).code, "Throttling")
  -- a throttled call did nothing; the default client retries throttling with backoff
  throttle.enabled = false
  for _ = 1, 60 do r53:GetHostedZone{ Id = zid } end
end

os.exit(lu.LuaUnit.run())
