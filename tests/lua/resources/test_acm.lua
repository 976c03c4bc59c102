-- aws:acm:certificate driven by the engine on the simulator: the certificate requested
-- with its tags (fo:token among them), its validation CNAMEs put in the declared zone and
-- the wait for ISSUED; a rerun without mutating calls; tags changed in place; a new
-- certificate before the old one goes when the names change (the shared record kept, a
-- record no certificate needs removed); a clear error and nothing left behind when the
-- zone is not delegated; destroy removing only records that still hold the certificate's
-- value; adoption of an interrupted create by its tags.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
require "fo.aws.resources.route53"
require "fo.aws.resources.acm"

local REGION = "eu-central-1"
local URN = "dev::aws:acm:certificate::site"
local sim, dir

local function acm() return sim:client("acm", { region = REGION }) end
local function r53() return sim:client("route53", { region = "us-east-1" }) end

local run, apply, res = T.runner(function() return sim, dir end, REGION)

local function recipe(o)
  o = o or {}
  return function()
    local z = fo.resource("aws:route53:zone", "public", { name = o.zone or "fo.test" })
    local c = fo.resource("aws:acm:certificate", "site", { domain_name = o.domain or "trading.fo.test",
      subject_alternative_names = o.sans or { "*.trading.fo.test" }, validation_zone_id = z.id,
      validation_timeout = o.timeout or 60, tags = o.tags or { Team = "trading" } })
    fo.output("arn", c.arn)
    fo.output("zone", z.id)
  end
end

local function describe(arn) return acm():DescribeCertificate{ CertificateArn = arn }.Certificate end

local function tags(arn)
  local out = {}
  for _, t in ipairs(acm():ListTagsForCertificate{ CertificateArn = arn }.Tags) do out[t.Key] = t.Value end
  return out
end

-- The zone's CNAME records: name → value.
local function cnames(zone)
  local out = {}
  for _, rr in ipairs(r53():ListResourceRecordSets{ HostedZoneId = zone }.ResourceRecordSets) do
    if rr.Type == "CNAME" then out[rr.Name] = rr.ResourceRecords[1].Value end
  end
  return out
end

local function arns()
  local out = {}
  for _, s in ipairs(acm():ListCertificates{}.CertificateSummaryList) do out[#out + 1] = s.CertificateArn end
  return out
end

TestAcmType = {}

function TestAcmType:setUp()
  sim, dir = H.sim(), H.dir()
  sim:set_knob("registered_domains", { "fo.test" })
end

function TestAcmType:tearDown()
  H.cleanup(dir)
end

function TestAcmType:test_create_puts_the_records_waits_for_issued_and_rerun_changes_nothing()
  local doc = apply(recipe())
  local arn = doc.outputs.arn
  local c = describe(arn)
  lu.assertEquals({ c.Status, c.DomainName, c.SubjectAlternativeNames }, { "ISSUED", "trading.fo.test",
    { "trading.fo.test", "*.trading.fo.test" } })
  lu.assertEquals(tags(arn), { Team = "trading", ["fo:name"] = "site", ["fo:stack"] = "dev",
    ["fo:token"] = res("aws:acm:certificate::site").token })
  local rr = c.DomainValidationOptions[1].ResourceRecord
  lu.assertEquals(cnames(doc.outputs.zone), { [rr.Name] = rr.Value }) -- one record for both names
  lu.assertEquals(H.ops(sim, { operation = "AddTagsToCertificate" }), {})
  sim.recorder:clear()
  local _, out = apply(recipe())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
end

function TestAcmType:test_tags_in_place_and_a_name_change_replaces_create_first()
  local doc = apply(recipe())
  local old = doc.outputs.arn
  local zone = doc.outputs.zone
  local old_rr = describe(old).DomainValidationOptions[1].ResourceRecord
  sim.recorder:clear()
  apply(recipe{ tags = { Team = "ops" } })
  lu.assertEquals(T.mutating(sim), { "acm.AddTagsToCertificate" })
  lu.assertEquals(tags(old).Team, "ops")
  -- another SAN: a new certificate, then the old one deleted; the record of
  -- trading.fo.test is the new one's too, so it stays
  sim.recorder:clear()
  doc = apply(recipe{ tags = { Team = "ops" }, sans = { "*.trading.fo.test", "api.fo.test" } })
  local ops = T.mutating(sim)
  lu.assertTrue(H.index(ops, "acm.RequestCertificate") < H.index(ops, "acm.DeleteCertificate"))
  lu.assertNotEquals(doc.outputs.arn, old)
  lu.assertEquals(arns(), { doc.outputs.arn })
  lu.assertEquals(describe(doc.outputs.arn).Status, "ISSUED")
  local records = cnames(zone)
  lu.assertEquals(records[old_rr.Name], old_rr.Value)
  lu.assertEquals(#(function() local n = {} for k in pairs(records) do n[#n + 1] = k end return n end)(), 2)
  -- another domain: the trading.fo.test record is needed by nobody and goes
  doc = apply(recipe{ domain = "www.fo.test", sans = {} })
  lu.assertEquals(arns(), { doc.outputs.arn })
  records = cnames(zone)
  lu.assertNil(records[old_rr.Name])
  local www = describe(doc.outputs.arn).DomainValidationOptions[1].ResourceRecord
  lu.assertEquals(records, { [www.Name] = www.Value })
end

function TestAcmType:test_tag_drift_is_found_and_repaired_and_a_deleted_certificate_is_gone()
  local doc = apply(recipe())
  local arn = doc.outputs.arn
  acm():AddTagsToCertificate{ CertificateArn = arn, Tags = { { Key = "Team", Value = "by hand" } } }
  local code, rdoc, out = run(recipe(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#rdoc.drift, 1)
  apply(recipe())
  lu.assertEquals(tags(arn).Team, "trading")
  -- deleted outside fo: the next run requests a new one (the record in place validates it)
  acm():DeleteCertificate{ CertificateArn = arn }
  doc = apply(recipe())
  lu.assertNotEquals(doc.outputs.arn, arn)
  lu.assertEquals(describe(doc.outputs.arn).Status, "ISSUED")
end

function TestAcmType:test_an_undelegated_zone_is_a_clear_error_and_leaves_nothing()
  sim:set_knob("registered_domains", {})
  local code, _, out, err = run(recipe{ zone = "trading.fo.test", timeout = 1 })
  lu.assertEquals(code, 4, out .. err)
  local text = out .. err
  lu.assertStrContains(text, "still PENDING_VALIDATION after 1 s")
  lu.assertStrContains(text, "the zone trading.fo.test is not delegated")
  lu.assertStrContains(text, "Delegate it, or leave https off")
  lu.assertNil(text:find("stack traceback", 1, true))
  -- the certificate and its record are gone (the zone was rolled back too)
  lu.assertEquals(acm():ListCertificates{ CertificateStatuses = { "PENDING_VALIDATION", "ISSUED" } }
    .CertificateSummaryList, {})
  lu.assertEquals(r53():ListHostedZones{}.HostedZones, {})
end

function TestAcmType:test_destroy_removes_only_records_holding_the_certificates_value()
  local doc = apply(recipe())
  local arn, zone = doc.outputs.arn, doc.outputs.zone
  local rr = describe(arn).DomainValidationOptions[1].ResourceRecord
  -- someone points the record elsewhere: destroy leaves it (and so the zone)
  r53():ChangeResourceRecordSets{ HostedZoneId = zone, ChangeBatch = { Changes = { { Action = "UPSERT",
    ResourceRecordSet = { Name = rr.Name, Type = "CNAME", TTL = 60,
      ResourceRecords = { { Value = "elsewhere.example.net." } } } } } } }
  local code = run(recipe(), { mode = "destroy", explicit = true })
  lu.assertNotEquals(code, 0) -- the zone is not empty: Route 53 refuses its deletion
  lu.assertEquals(arns(), {})
  lu.assertEquals(cnames(zone), { [rr.Name] = "elsewhere.example.net." })
  -- a fresh stack: its own record goes with its certificate
  H.cleanup(dir)
  sim, dir = H.sim(), H.dir()
  sim:set_knob("registered_domains", { "fo.test" })
  doc = apply(recipe())
  code = run(recipe(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertEquals(arns(), {})
  lu.assertEquals(r53():ListHostedZones{}.HostedZones, {})
end

-- Two regions' certificates of one name share one validation record (the record of a name
-- is the same in every region of the account), as the trading recipe's do.
local function two_regions(keep_standby)
  return function()
    local z = fo.resource("aws:route53:zone", "public", { name = "fo.test" })
    for _, r in ipairs({ { "primary", "eu-south-1" }, { "standby", REGION } }) do
      if r[1] == "primary" or keep_standby ~= false then
        fo.resource("aws:acm:certificate", r[1], { domain_name = "trading.fo.test",
          validation_zone_id = z.id, validation_timeout = 60 }, { region = r[2] })
      end
    end
    fo.output("zone", z.id)
  end
end

function TestAcmType:test_a_record_two_regions_share_stays_while_one_needs_it_and_both_deletes_end_clean()
  local doc = apply(two_regions())
  local zone = doc.outputs.zone
  local shared = cnames(zone)
  local n = 0
  for _ in pairs(shared) do n = n + 1 end
  lu.assertEquals(n, 1)
  -- the standby's certificate goes: the primary's still needs the record
  lu.assertEquals(run(two_regions(false), {}), 0)
  lu.assertEquals(arns(), {})
  lu.assertEquals(cnames(zone), shared)
  -- both certificates deleted together (the destroy runs them in parallel): both succeed,
  -- whichever removes the record first, and nothing is left
  lu.assertEquals(run(two_regions(), {}), 0)
  lu.assertEquals(run(two_regions(), { mode = "destroy", explicit = true }), 0)
  lu.assertEquals(r53():ListHostedZones{}.HostedZones, {})
end

function TestAcmType:test_interrupted_create_is_adopted_by_its_tags()
  T.assert_adopted(sim, dir, recipe(), { URN })
  local arn = T.record(dir, URN).id
  local c = sim:client("acm", { region = arn:match("^arn:aws:acm:([^:]+):") })
  lu.assertEquals(c:DescribeCertificate{ CertificateArn = arn }.Certificate.Status, "ISSUED")
end

os.exit(lu.LuaUnit.run())
