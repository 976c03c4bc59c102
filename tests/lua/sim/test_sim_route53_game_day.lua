-- The Route 53 calls a game day reads and makes (docs/simulator.md, "Route 53 for game
-- days"): TestDNSAnswer from the zone's name servers (health-checked weighted aliases, the
-- load balancer's addresses), GetHealthCheckLastFailureReason, UpdateHealthCheck's
-- Inverted/Disabled with the HealthCheckVersion guard, and a client's HTTP request to a
-- load balancer's DNS name. Through fo's clients over the in-process wire, on a frozen real
-- clock so virtual times are exact.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local topo = require "support.sim_topology"
local lb_front = require "fo.sim.lb_front"

local B = math.ceil(os.time() / 60) * 60 + 60

local function world()
  local sim = simlib.new{ seed = 42, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 2)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5)
  local g = topo.global(sim, p, s)
  sim:advance(30)
  return sim, p, s, g
end

local function dns(r53, g)
  return r53:TestDNSAnswer{ HostedZoneId = g.zone, RecordName = "app.trading.fo.test",
    RecordType = "A" }
end

local function sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

TestRoute53GameDay = {}

function TestRoute53GameDay.test_test_dns_answer_follows_the_inverted_health_check()
  local sim, p, s, g = world()
  local r53 = sim:client("route53")
  local primary = lb_front.addresses(sim, sim.account, p.dns)
  local standby = lb_front.addresses(sim, sim.account, s.dns)
  -- an ALB answers with one address per zone it is enabled in, stable, distinct per ALB
  lu.assertEquals(#primary, 2)
  lu.assertEquals(lb_front.addresses(sim, sim.account, p.dns), primary)
  lu.assertNotEquals(sorted(primary), sorted(standby))
  local zone = r53:GetHostedZone{ Id = g.zone }
  local a = dns(r53, g)
  lu.assertEquals(a.RecordData, primary)
  lu.assertEquals({ a.ResponseCode, a.Protocol, a.RecordType, a.RecordName },
    { "NOERROR", "UDP", "A", "app.trading.fo.test" })
  lu.assertEquals(a.Nameserver, zone.DelegationSet.NameServers[1])

  -- invert: unhealthy after 3 evaluations 10 s apart, then the standby answers
  local hc = r53:GetHealthCheck{ HealthCheckId = g.hc }.HealthCheck
  local up = r53:UpdateHealthCheck{ HealthCheckId = g.hc,
    HealthCheckVersion = hc.HealthCheckVersion, Inverted = true }.HealthCheck
  lu.assertTrue(up.HealthCheckConfig.Inverted)
  lu.assertEquals(up.HealthCheckVersion, hc.HealthCheckVersion + 1)
  sim:advance(19)
  lu.assertEquals(dns(r53, g).RecordData, primary)
  sim:advance(11)
  lu.assertEquals(dns(r53, g).RecordData, standby)
  -- the checkers still see the endpoint answer (the verdict is what Inverted turns over)
  for _, o in ipairs(r53:GetHealthCheckStatus{ HealthCheckId = g.hc }.HealthCheckObservations) do
    lu.assertStrContains(o.StatusReport.Status, "Success: HTTP Status Code 200")
  end
  -- a stale version is refused and changes nothing
  local ok, err = pcall(r53.UpdateHealthCheck, r53, { HealthCheckId = g.hc,
    HealthCheckVersion = hc.HealthCheckVersion, Inverted = false })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "HealthCheckVersionMismatch")
  lu.assertEquals(err.status, 409)
  lu.assertTrue(r53:GetHealthCheck{ HealthCheckId = g.hc }.HealthCheck.HealthCheckConfig.Inverted)
  -- restored: healthy again after 3 evaluations
  r53:UpdateHealthCheck{ HealthCheckId = g.hc, HealthCheckVersion = up.HealthCheckVersion,
    Inverted = false }
  sim:advance(30)
  lu.assertEquals(dns(r53, g).RecordData, primary)
  -- Disabled: always healthy, whatever the endpoint does
  r53:UpdateHealthCheck{ HealthCheckId = g.hc, Disabled = true }
  sim:set_outage("eu-south-1")
  sim:advance(60)
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
  sim:set_outage("eu-south-1", false)
end

function TestRoute53GameDay.test_test_dns_answer_other_names_and_errors()
  local sim, _, _, g = world()
  local r53 = sim:client("route53")
  local a = r53:TestDNSAnswer{ HostedZoneId = g.zone, RecordName = "nothing.trading.fo.test",
    RecordType = "A" }
  lu.assertEquals({ a.ResponseCode, #a.RecordData }, { "NXDOMAIN", 0 })
  -- the zone's own NS record set
  a = r53:TestDNSAnswer{ HostedZoneId = g.zone, RecordName = "trading.fo.test", RecordType = "NS" }
  lu.assertEquals(#a.RecordData, 4)
  -- a name with records of other types: NOERROR, no data
  a = r53:TestDNSAnswer{ HostedZoneId = g.zone, RecordName = "app.trading.fo.test",
    RecordType = "AAAA" }
  lu.assertEquals({ a.ResponseCode, #a.RecordData }, { "NOERROR", 0 })
  local ok, err = pcall(r53.TestDNSAnswer, r53, { HostedZoneId = "Z0000000000000000000X",
    RecordName = "app.trading.fo.test", RecordType = "A" })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "NoSuchHostedZone")
end

function TestRoute53GameDay.test_last_failure_reason_per_checker()
  local sim, _, _, g = world()
  local r53 = sim:client("route53")
  -- no failure yet: no observation
  lu.assertEquals(r53:GetHealthCheckLastFailureReason{ HealthCheckId = g.hc }
    .HealthCheckObservations, {})
  local t = sim:now()
  sim:set_outage("eu-south-1")
  sim:advance(10)
  local obs = r53:GetHealthCheckLastFailureReason{ HealthCheckId = g.hc }.HealthCheckObservations
  lu.assertEquals(#obs, 8)
  for _, o in ipairs(obs) do
    lu.assertStrContains(o.StatusReport.Status, "Failure: Connection timed out")
    lu.assertTrue(o.StatusReport.CheckedTime > t)
  end
  lu.assertEquals(obs[1].Region, "us-east-1")
  -- the endpoint recovers: the last failure stays what it was
  sim:set_outage("eu-south-1", false)
  sim:advance(40)
  local again = r53:GetHealthCheckLastFailureReason{ HealthCheckId = g.hc }.HealthCheckObservations
  lu.assertEquals(again[1].StatusReport, obs[1].StatusReport)
end

function TestRoute53GameDay.test_a_load_balancer_name_is_answered_as_the_load_balancer()
  local sim, p = world()
  local host = p.dns:lower()
  local resp = sim:handle{ method = "GET", url = "http://127.0.0.1:4566/health",
    headers = { Host = host } }
  lu.assertEquals(resp.status, 200)
  lu.assertStrContains(resp.body, "HTTP Status Code 200")
  -- the instances' server answers only its health path
  resp = sim:handle{ method = "GET", url = "http://127.0.0.1:4566/", headers = { Host = host } }
  lu.assertEquals(resp.status, 404)
  sim:set_outage("eu-south-1")
  resp = sim:handle{ method = "GET", url = "http://127.0.0.1:4566/health", headers = { Host = host } }
  lu.assertEquals(resp.status, 504)
  -- a name no load balancer has
  resp = sim:handle{ method = "GET", url = "http://127.0.0.1:4566/",
    headers = { Host = "nope-1.eu-south-1.elb.amazonaws.com" } }
  lu.assertEquals(resp.status, 502)
end

os.exit(lu.LuaUnit.run())
