-- aws:route53:zone, aws:route53:health_check and aws:route53:record driven by the engine on
-- the simulator: create (read back through fo's route53 client), rerun without mutating
-- calls, updates in place, the health check replaced when its interval changes, drift
-- found by refresh and repaired, destroy leaving nothing, adoption after an interrupted
-- create (by CallerReference), a CallerReference used by a rolled-back zone, the zone that
-- still holds records, and weighted records resolving through sim:resolve.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local types = require "support.engine_types"
local topo = require "support.sim_topology"
require "fo.aws.resources.route53"

local sim, dir

local function r53() return sim:client("route53", { region = "us-east-1" }) end

local run, apply, res = T.runner(function() return sim, dir end)

-- A zone, a health check on the primary endpoint, weighted A records 100 / 0.
local function dns(o)
  o = o or {}
  return function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test",
      comment = o.comment or "fo test zone", tags = o.zone_tags or { Environment = "Production" } })
    local hc = fo.resource("aws:route53:health_check", "primary", { type = "HTTP",
      fqdn = o.fqdn or "primary.example-net.test", port = 80, resource_path = "/health",
      request_interval = o.interval or 10, failure_threshold = o.threshold or 3,
      tags = { Name = "primary", FailoverRole = "Primary" } })
    fo.resource("aws:route53:record", "primary", { zone_id = zone.id, name = "app.example-com.test",
      type = "A", set_identifier = "primary", weight = o.weight or 100, ttl = 60,
      records = { "192.0.2.10" }, health_check_id = hc.id })
    fo.resource("aws:route53:record", "standby", { zone_id = zone.id, name = "app.example-com.test",
      type = "A", set_identifier = "standby", weight = 0, ttl = 60, records = { "192.0.2.20" } })
    if not o.no_www then
      fo.resource("aws:route53:record", "www", { zone_id = zone.id, name = "www.example-com.test",
        type = "CNAME", ttl = 300, records = { "app.example-com.test" } })
    end
    fo.output("zone_id", zone.id)
    fo.output("health_check_id", hc.id)
  end
end

local function tags_of(rtype, id)
  local out = {}
  for _, t in ipairs(r53():ListTagsForResource{ ResourceType = rtype, ResourceId = id }
      .ResourceTagSet.Tags) do
    out[t.Key] = t.Value
  end
  return out
end

local function records(zone_id)
  local out = {}
  for _, rr in ipairs(r53():ListResourceRecordSets{ HostedZoneId = zone_id }.ResourceRecordSets) do
    out[#out + 1] = rr
  end
  return out
end

local function record(zone_id, name, set_id)
  for _, rr in ipairs(records(zone_id)) do
    if rr.Name == name and rr.SetIdentifier == set_id then return rr end
  end
  return nil
end

local function zones() return r53():ListHostedZones{}.HostedZones end
local function checks() return r53():ListHealthChecks{}.HealthChecks end

TestRoute53Types = {}

function TestRoute53Types:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestRoute53Types:tearDown()
  H.cleanup(dir)
end

function TestRoute53Types:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(dns())
  local zone_id = doc.outputs.zone_id
  lu.assertStrMatches(zone_id, "Z[A-Z0-9]+")
  local z = r53():GetHostedZone{ Id = zone_id }
  lu.assertEquals(z.HostedZone.Name, "example-com.test.")
  lu.assertEquals(z.HostedZone.Config.Comment, "fo test zone")
  lu.assertStrMatches(z.HostedZone.CallerReference, ("%x"):rep(32)) -- the create's ctx.token
  lu.assertEquals(res("aws:route53:zone::main").outputs.name_servers, z.DelegationSet.NameServers)
  lu.assertEquals(tags_of("hostedzone", zone_id), { Environment = "Production",
    ["fo:name"] = "main", ["fo:stack"] = "dev",
    ["fo:token"] = res("aws:route53:zone::main").token })

  local hc = r53():GetHealthCheck{ HealthCheckId = doc.outputs.health_check_id }.HealthCheck
  local c = hc.HealthCheckConfig
  lu.assertEquals({ c.Type, c.FullyQualifiedDomainName, c.Port, c.ResourcePath, c.RequestInterval,
    c.FailureThreshold }, { "HTTP", "primary.example-net.test", 80, "/health", 10, 3 })
  lu.assertEquals(tags_of("healthcheck", hc.Id).Name, "primary")

  local p = record(zone_id, "app.example-com.test.", "primary")
  lu.assertEquals({ p.Weight, p.TTL, p.HealthCheckId, p.ResourceRecords[1].Value },
    { 100, 60, hc.Id, "192.0.2.10" })
  local s = record(zone_id, "app.example-com.test.", "standby")
  lu.assertEquals(s.Weight, 0)
  lu.assertNil(s.HealthCheckId)
  lu.assertEquals(record(zone_id, "www.example-com.test.").Type, "CNAME")
  -- changes were waited for: GetChange answered INSYNC
  lu.assertTrue(#H.ops(sim, { operation = "GetChange" }) >= 4)

  local before = H.mutating(sim)
  local _, out = apply(dns())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestRoute53Types:test_updates_in_place()
  local doc = apply(dns())
  local hc_id = doc.outputs.health_check_id
  sim.recorder:clear()
  apply(dns{ threshold = 5, weight = 200, comment = "changed", zone_tags = { Environment = "Staging" } })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "route53.ChangeResourceRecordSets", "route53.ChangeTagsForResource",
    "route53.UpdateHealthCheck", "route53.UpdateHostedZoneComment" })
  local hc = r53():GetHealthCheck{ HealthCheckId = hc_id }.HealthCheck
  lu.assertEquals(hc.HealthCheckConfig.FailureThreshold, 5)
  lu.assertEquals(hc.HealthCheckVersion, 2)
  local zone_id = doc.outputs.zone_id
  lu.assertEquals(record(zone_id, "app.example-com.test.", "primary").Weight, 200)
  lu.assertEquals(r53():GetHostedZone{ Id = zone_id }.HostedZone.Config.Comment, "changed")
  lu.assertEquals(tags_of("hostedzone", zone_id).Environment, "Staging")
  lu.assertEquals(H.state(dir).outputs.health_check_id, hc_id)
end

-- A CALCULATED check of an endpoint check and a CLOUDWATCH_METRIC check of an alarm (the
-- trading recipe's failback hold-down): sent without checker settings, read back without
-- drift, the children and threshold updated in place.
local function aggregate(o)
  return function()
    local ep = fo.resource("aws:route53:health_check", "ep", { fqdn = "primary.example-net.test",
      port = 80, request_interval = 10 })
    local hold = fo.resource("aws:route53:health_check", "hold", { type = "CLOUDWATCH_METRIC",
      alarm_identifier = { region = "us-east-1", name = "hold-alarm" },
      insufficient_data_health_status = "LastKnownStatus" })
    local gate = fo.resource("aws:route53:health_check", "gate", { type = "CALCULATED",
      child_health_checks = o.one and { ep.id } or { ep.id, hold.id },
      health_threshold = o.one and 1 or 2 })
    fo.output("gate", gate.id)
    fo.output("hold", hold.id)
    fo.output("ep", ep.id)
  end
end

function TestRoute53Types:test_calculated_and_metric_health_checks()
  local doc = apply(aggregate{})
  local g = r53():GetHealthCheck{ HealthCheckId = doc.outputs.gate }.HealthCheck.HealthCheckConfig
  lu.assertEquals({ g.Type, g.HealthThreshold, g.ChildHealthChecks },
    { "CALCULATED", 2, { doc.outputs.ep, doc.outputs.hold } })
  local h = r53():GetHealthCheck{ HealthCheckId = doc.outputs.hold }.HealthCheck.HealthCheckConfig
  lu.assertEquals({ h.Type, h.AlarmIdentifier, h.InsufficientDataHealthStatus },
    { "CLOUDWATCH_METRIC", { Region = "us-east-1", Name = "hold-alarm" }, "LastKnownStatus" })
  -- no failure threshold was sent (the declared default, 3, would show)
  lu.assertNotEquals(g.FailureThreshold, 3)
  local before = H.mutating(sim)
  local _, out = apply(aggregate{})
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
  sim.recorder:clear()
  apply(aggregate{ one = true })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "route53.UpdateHealthCheck" })
  g = r53():GetHealthCheck{ HealthCheckId = doc.outputs.gate }.HealthCheck.HealthCheckConfig
  lu.assertEquals({ g.HealthThreshold, g.ChildHealthChecks }, { 1, { doc.outputs.ep } })
end

function TestRoute53Types:test_changing_the_interval_replaces_the_health_check()
  local doc = apply(dns())
  local old = doc.outputs.health_check_id
  sim.recorder:clear()
  local code, _, out = run(dns{ interval = 30 }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "request_interval: 10 → 30  (forces replacement)")
  doc = apply(dns{ interval = 30 })
  local new = doc.outputs.health_check_id
  lu.assertNotEquals(new, old)
  local ops = H.ops(sim, { mutating = true })
  -- create before delete: the record moves to the new check before the old one goes
  lu.assertEquals(ops[1], "route53.CreateHealthCheck")
  lu.assertTrue(H.index(ops, "route53.ChangeResourceRecordSets") < H.index(ops, "route53.DeleteHealthCheck"))
  lu.assertEquals(#checks(), 1)
  lu.assertEquals(checks()[1].HealthCheckConfig.RequestInterval, 30)
  lu.assertEquals(record(doc.outputs.zone_id, "app.example-com.test.", "primary").HealthCheckId, new)
end

function TestRoute53Types:test_refresh_finds_drift_and_apply_repairs_it()
  local doc = apply(dns())
  local zone_id, hc_id = doc.outputs.zone_id, doc.outputs.health_check_id
  -- by hand: the primary's weight, the health check's threshold, a zone tag; the CNAME deleted
  local p = record(zone_id, "app.example-com.test.", "primary")
  p.Weight = 50
  local www = record(zone_id, "www.example-com.test.")
  r53():ChangeResourceRecordSets{ HostedZoneId = zone_id, ChangeBatch = { Changes = {
    { Action = "UPSERT", ResourceRecordSet = p }, { Action = "DELETE", ResourceRecordSet = www } } } }
  local hc = r53():GetHealthCheck{ HealthCheckId = hc_id }.HealthCheck
  r53():UpdateHealthCheck{ HealthCheckId = hc_id, HealthCheckVersion = hc.HealthCheckVersion,
    FailureThreshold = 7 }
  r53():ChangeTagsForResource{ ResourceType = "hostedzone", ResourceId = zone_id,
    RemoveTagKeys = { "Environment" } }
  local before = H.mutating(sim)
  local code, rdoc, out = run(dns(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(H.mutating(sim), before)
  lu.assertStrContains(out, "weight: 100 → 50")
  lu.assertStrContains(out, "failure_threshold: 3 → 7")
  lu.assertStrContains(out, "dev::aws:route53:record::www: deleted")
  lu.assertEquals(#rdoc.drift, 4)
  sim.recorder:clear()
  apply(dns())
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "route53.ChangeResourceRecordSets", "route53.ChangeResourceRecordSets",
    "route53.ChangeTagsForResource", "route53.UpdateHealthCheck" })
  lu.assertEquals(record(zone_id, "app.example-com.test.", "primary").Weight, 100)
  lu.assertEquals(record(zone_id, "www.example-com.test.").ResourceRecords[1].Value, "app.example-com.test")
  lu.assertEquals(r53():GetHealthCheck{ HealthCheckId = hc_id }.HealthCheck.HealthCheckConfig
    .FailureThreshold, 3)
  lu.assertEquals(tags_of("hostedzone", zone_id).Environment, "Production")
  local _, again = apply(dns())
  lu.assertStrContains(again, "No changes.")
end

function TestRoute53Types:test_destroy_leaves_nothing()
  apply(dns())
  sim.recorder:clear()
  local code, _, out = run(dns(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Destroy complete: 5 deleted.")
  lu.assertEquals(zones(), {})
  lu.assertEquals(checks(), {})
  local ops = H.ops(sim, { mutating = true })
  lu.assertEquals(ops[#ops], "route53.DeleteHostedZone") -- after its records
  -- deleting again is "already gone"
  code = run(dns(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
end

function TestRoute53Types:test_a_record_deleted_by_hand_is_already_gone_on_removal()
  local doc = apply(dns())
  local www = record(doc.outputs.zone_id, "www.example-com.test.")
  r53():ChangeResourceRecordSets{ HostedZoneId = doc.outputs.zone_id, ChangeBatch = { Changes = {
    { Action = "DELETE", ResourceRecordSet = www } } } }
  apply(dns{ no_www = true }, { refresh = false })
  lu.assertNil(res("aws:route53:record::www"))
end

local function zone_only()
  fo.resource("aws:route53:zone", "main", { name = "example-com.test",
    tags = { Environment = "Production" } })
end

local function zone_and_record()
  local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
  fo.resource("aws:route53:record", "www", { zone_id = zone.id, name = "www.example-com.test",
    type = "A", ttl = 60, records = { "192.0.2.1" } })
  fo.output("zone_id", zone.id)
end

-- A health check the stack makes first, then the zone "example-com.test" (so the run has
-- something of its own to roll back when the zone is a conflict).
local function check_then_zone()
  local hc = fo.resource("aws:route53:health_check", "primary", { fqdn = "primary.example-net.test",
    port = 80 })
  fo.resource("aws:route53:zone", "main", { name = "example-com.test" }, { depends_on = { hc } })
end

function TestRoute53Types:test_a_public_zone_of_the_same_name_not_ours_is_a_conflict()
  -- made outside fo (untagged), then by another copy of the stack (its tags, another token)
  for i, tags in ipairs({ {}, T.other_copy_tags("main") }) do
    local z = r53():CreateHostedZone{ Name = "example-com.test", CallerReference = "by-hand-" .. i }
    local id = z.HostedZone.Id:match("([^/]+)$")
    if tags[1] then
      r53():ChangeTagsForResource{ ResourceType = "hostedzone", ResourceId = id, AddTags = tags }
    end
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, check_then_zone, id)
    lu.assertStrContains(out, 'a public hosted zone named "example-com.test."')
    T.assert_rolled_back(sim, { { "route53.CreateHealthCheck", "route53.DeleteHealthCheck" } })
    -- no second zone of the name was made (it would split the domain's delegation)
    lu.assertEquals(H.ops(sim, { operation = "CreateHostedZone" }), {})
    lu.assertEquals(#zones(), 1)
    r53():DeleteHostedZone{ Id = id }
  end
end

-- The zone and its www record; with `api`, a health check and the weighted record
-- api.example-com.test A (set identifier "blue") that uses it.
local function zone_and_api(api)
  return function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
    fo.resource("aws:route53:record", "www", { zone_id = zone.id, name = "www.example-com.test",
      type = "A", ttl = 60, records = { "192.0.2.1" } })
    if api then
      local hc = fo.resource("aws:route53:health_check", "api", { fqdn = "api.example-net.test",
        port = 80 })
      fo.resource("aws:route53:record", "api", { zone_id = zone.id, name = "API.example-com.test",
        type = "A", set_identifier = "blue", weight = 50, ttl = 60, records = { "192.0.2.7" },
        health_check_id = hc.id })
    end
    fo.output("zone_id", zone.id)
  end
end

function TestRoute53Types:test_a_record_set_in_our_zone_not_ours_is_a_conflict()
  local zone_id = apply(zone_and_api(false)).outputs.zone_id
  -- someone adds api.example-com.test A "blue" to the stack's zone by hand
  r53():ChangeResourceRecordSets{ HostedZoneId = zone_id, ChangeBatch = { Changes = { {
    Action = "CREATE", ResourceRecordSet = { Name = "api.example-com.test", Type = "A",
      SetIdentifier = "blue", Weight = 10, TTL = 300,
      ResourceRecords = { { Value = "198.51.100.7" } } } } } } }
  sim.recorder:clear()
  local out = T.assert_conflict(sim, dir, zone_and_api(true),
    zone_id .. "_api.example-com.test_A_blue")
  lu.assertStrContains(out, ('a A record set "api.example-com.test." (set identifier blue) in '
    .. 'hosted zone %s'):format(zone_id))
  T.assert_rolled_back(sim, { { "route53.CreateHealthCheck", "route53.DeleteHealthCheck" } })
  -- the only change batch was the one made by hand: nothing written over it
  lu.assertEquals(H.ops(sim, { operation = "ChangeResourceRecordSets" }), {})
  lu.assertEquals(record(zone_id, "api.example-com.test.", "blue").ResourceRecords,
    { { Value = "198.51.100.7" } })
end

-- A run that meets a conflict in a zone it made itself: exit 4, one conflict, all rolled back.
local function conflict_run(recipe)
  local code, doc, out, err = H.run(recipe, { sim = sim, dir = dir })
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(#doc.errors, 1, out .. err)
  lu.assertEquals(doc.errors[1].error.kind, "conflict")
  lu.assertEquals(next(H.state(dir).resources), nil)
  lu.assertEquals(zones(), {})
  return out .. err
end

function TestRoute53Types:test_records_of_a_new_zone_are_not_read_first_but_its_own_ns_is()
  -- a zone this run made holds its NS and SOA and what this run writes: a record set of
  -- another type is not looked for before the UPSERT (common.fresh_slot)
  sim.recorder:clear()
  apply(zone_and_record)
  lu.assertEquals(H.ops(sim, { operation = "ListResourceRecordSets" }), {})
  apply(zone_and_record, { mode = "destroy", explicit = true })
  -- the zone's own NS record set is AWS's: read first, a conflict (never overwritten)
  local out = conflict_run(function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
    fo.resource("aws:route53:record", "ns", { zone_id = zone.id, name = "example-com.test",
      type = "NS", ttl = 60, records = { "ns-1.example.net." } })
  end)
  lu.assertStrContains(out, 'a NS record set "example-com.test."')
  -- a second record set of the same identity in the same run: read first, a conflict
  out = conflict_run(function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
    local one = fo.resource("aws:route53:record", "one", { zone_id = zone.id,
      name = "www.example-com.test", type = "A", ttl = 60, records = { "192.0.2.1" } })
    fo.resource("aws:route53:record", "two", { zone_id = zone.id, name = "WWW.example-com.test",
      type = "A", ttl = 60, records = { "192.0.2.2" } }, { depends_on = { one } })
  end)
  lu.assertStrContains(out, 'a A record set "www.example-com.test."')
end

function TestRoute53Types:test_interrupted_zone_create_is_adopted()
  -- CreateHostedZone (1) succeeds, its ChangeTagsForResource (2) fails: the run stops with
  -- the intent recorded (no rollback), as if it had died there
  types.fail_mutating_call(sim, 2)
  local code = run(zone_only, { rollback = false })
  lu.assertEquals(code, 3)
  lu.assertEquals(#zones(), 1)
  lu.assertNotNil(H.state(dir).intents["dev::aws:route53:zone::main"])
  local zone_id = zones()[1].Id:match("([^/]+)$")
  lu.assertEquals(tags_of("hostedzone", zone_id), {})
  sim.recorder:clear()
  local _, out = apply(zone_only)
  lu.assertStrContains(out, "Adopted dev::aws:route53:zone::main: " .. zone_id)
  lu.assertEquals(#zones(), 1)
  lu.assertEquals(H.ops(sim, { operation = "CreateHostedZone" }), {})
  lu.assertEquals(res("aws:route53:zone::main").id, zone_id)
  -- the adopted zone gets its tags (drift of the user tags; fo's own ride along)
  lu.assertEquals(tags_of("hostedzone", zone_id), { Environment = "Production",
    ["fo:name"] = "main", ["fo:stack"] = "dev",
    ["fo:token"] = res("aws:route53:zone::main").token })
  lu.assertNil(next(H.state(dir).intents))
  local _, again = apply(zone_only)
  lu.assertStrContains(again, "No changes.")
end

function TestRoute53Types:test_a_record_changed_by_hand_is_deleted_with_its_current_values()
  local doc = apply(dns())
  local www = record(doc.outputs.zone_id, "www.example-com.test.")
  www.TTL = 999
  r53():ChangeResourceRecordSets{ HostedZoneId = doc.outputs.zone_id, ChangeBatch = { Changes = {
    { Action = "UPSERT", ResourceRecordSet = www } } } }
  -- no refresh: the state still says ttl 300, DELETE must carry 999
  apply(dns{ no_www = true }, { refresh = false })
  lu.assertNil(record(doc.outputs.zone_id, "www.example-com.test."))
end

function TestRoute53Types:test_interrupted_health_check_create_is_adopted()
  types.fail_mutating_call(sim, 2)
  local code = run(function()
    fo.resource("aws:route53:health_check", "hc", { fqdn = "x.example-net.test", port = 80 })
  end, { rollback = false })
  lu.assertEquals(code, 3)
  lu.assertEquals(#checks(), 1)
  local id = checks()[1].Id
  sim.recorder:clear()
  local _, out = apply(function()
    fo.resource("aws:route53:health_check", "hc", { fqdn = "x.example-net.test", port = 80 })
  end)
  lu.assertStrContains(out, "Adopted dev::aws:route53:health_check::hc: " .. id)
  lu.assertEquals(#checks(), 1)
  lu.assertEquals(H.ops(sim, { operation = "CreateHealthCheck" }), {})
end

function TestRoute53Types:test_a_rolled_back_zone_is_created_again_with_a_fresh_reference()
  -- the record's change (3rd mutating call) fails: the run rolls back, deleting the zone
  -- whose CallerReference Route 53 will never accept again
  types.fail_mutating_call(sim, 3)
  local code = run(zone_and_record)
  lu.assertEquals(code, 4)
  lu.assertEquals(zones(), {})
  local used = H.ops(sim, { operation = "CreateHostedZone" })
  local doc = apply(zone_and_record)
  local z = r53():GetHostedZone{ Id = doc.outputs.zone_id }.HostedZone
  -- the engine gives the new create a new token: accepted at the first try
  lu.assertStrMatches(z.CallerReference, ("%x"):rep(32))
  lu.assertEquals(#H.ops(sim, { operation = "CreateHostedZone" }), #used + 1)
  lu.assertEquals(#zones(), 1)
end

function TestRoute53Types:test_a_zone_holding_other_records_is_not_deleted_and_says_why()
  local doc = apply(dns{ no_www = true })
  r53():ChangeResourceRecordSets{ HostedZoneId = doc.outputs.zone_id, ChangeBatch = { Changes = {
    { Action = "CREATE", ResourceRecordSet = { Name = "manual.example-com.test", Type = "TXT", TTL = 60,
      ResourceRecords = { { Value = '"by hand"' } } } } } } }
  local code, _, out, err = run(dns{ no_www = true }, { mode = "destroy", explicit = true })
  lu.assertEquals(code, 3)
  lu.assertStrContains(out .. err, "still holds record sets")
  lu.assertStrContains(out .. err, "manual.example-com.test. TXT")
  lu.assertEquals(#zones(), 1)
  lu.assertNotNil(res("aws:route53:zone::main"))
end

function TestRoute53Types:test_record_rules_the_sim_enforces()
  -- a weight without a set identifier is refused before anything is sent
  local code, _, out, err = run(function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
    fo.resource("aws:route53:record", "bad", { zone_id = zone.id, name = "x.example-com.test",
      type = "A", weight = 10, ttl = 60, records = { "192.0.2.1" } })
  end)
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "a weighted record needs a set_identifier")
  -- Route 53's own check: a name outside the zone
  code, _, out, err = run(function()
    local zone = fo.resource("aws:route53:zone", "main", { name = "example-com.test" })
    fo.resource("aws:route53:record", "bad", { zone_id = zone.id, name = "x.example-org.test",
      type = "A", ttl = 60, records = { "192.0.2.1" } })
  end)
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "InvalidChangeBatch")
  lu.assertEquals(zones(), {}) -- rolled back
  -- a weight out of range is a recipe error
  code, _, out, err = run(function()
    fo.resource("aws:route53:record", "bad", { zone_id = "Z1", name = "x.example-com.test",
      type = "A", set_identifier = "a", weight = 300, ttl = 60, records = { "192.0.2.1" } })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "weight: 0..255")
end

function TestRoute53Types:test_weighted_records_fail_over_when_the_health_check_fails()
  -- the primary's check targets a name no load balancer answers: unhealthy after
  -- 3 failures, so Route 53 answers the weight-0 standby
  local doc = apply(dns{ no_www = true, fqdn = "nothing-here.example-net.test" })
  lu.assertEquals(sim:resolve("app.example-com.test", "A").chosen, "primary")
  sim:advance(31)
  local r = sim:resolve("app.example-com.test", "A")
  lu.assertEquals(r.chosen, "standby")
  lu.assertEquals(r.answer, { "192.0.2.20" })
  lu.assertFalse(sim:health_check_status(doc.outputs.health_check_id).healthy)
end

function TestRoute53Types:test_weighted_alias_records_to_load_balancers()
  local p = topo.region(sim, "eu-south-1", 2)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5)
  local function recipe()
    local zone = fo.resource("aws:route53:zone", "main", { name = "trading.fo.test" })
    local hc = fo.resource("aws:route53:health_check", "primary", { fqdn = p.dns, port = 80,
      resource_path = "/health", request_interval = 10, failure_threshold = 3 })
    fo.resource("aws:route53:record", "primary", { zone_id = zone.id, name = "app.trading.fo.test",
      type = "A", set_identifier = "primary", weight = 100, health_check_id = hc.id,
      alias = { dns_name = p.dns, hosted_zone_id = p.zone_id, evaluate_target_health = true } })
    fo.resource("aws:route53:record", "standby", { zone_id = zone.id, name = "app.trading.fo.test",
      type = "A", set_identifier = "standby", weight = 0,
      alias = { dns_name = p.dns == s.dns and "x" or s.dns, hosted_zone_id = s.zone_id,
        evaluate_target_health = true } })
  end
  apply(recipe)
  local r = sim:resolve("app.trading.fo.test", "A")
  lu.assertEquals(r.chosen, "primary")
  lu.assertEquals(r.answer, { p.dns:lower() .. "." })
  -- Route 53 answers the alias target lower-case with a final dot: no drift from that
  local before = H.mutating(sim)
  local _, out = apply(recipe)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
  sim:set_outage("eu-south-1")
  sim:advance(31)
  r = sim:resolve("app.trading.fo.test", "A")
  lu.assertEquals(r.chosen, "standby")
  lu.assertEquals(r.answer, { s.dns:lower() .. "." })
  sim:set_outage("eu-south-1", false)
  local code, _, dout = run(recipe, { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, dout)
  lu.assertEquals(zones(), {})
end

os.exit(lu.LuaUnit.run())
