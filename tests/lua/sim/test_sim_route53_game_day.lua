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

-- The served simulator's TLS front (fo.sim.server, lb_tls): a client's HTTPS request to a
-- load balancer is answered as its port-443 listener, over TLS with the simulator's own
-- certificate, which the endpoint hands out and nothing trusts by default.
function TestRoute53GameDay.test_the_tls_front_answers_as_the_https_listener()
  local sim, p = world()
  local srv, _, front = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim,
    lb_tls = true }
  local ok, err = pcall(function()
    lu.assertNotNil(front, "the TLS front listens")
    local endpoint = ("http://127.0.0.1:%d"):format(srv.port)
    local d = require("fo.json").decode(fo.http.request{ url = endpoint
      .. require("fo.sim.server").LB_TLS_PATH }.body)
    lu.assertEquals(d.port, front.port)
    local dir = require("support.testlib").tmpdir()
    local ca = dir .. "/ca.pem"
    fo.fs.write_atomic(ca, d.ca)
    local host = p.dns:lower()
    local function get(name, trust)
      return pcall(fo.http.request, { url = ("https://%s/health"):format(name),
        connect_to = ("%s:443:127.0.0.1:%d"):format(name, front.port), ca_file = trust })
    end
    -- not trusted by default: the system's roots do not know the simulator's certificate
    local got, e = get(host, nil)
    lu.assertFalse(got)
    lu.assertEquals(e.kind, "tls")
    -- trusted with it: nothing listens on 443 yet (the ALB has HTTP:80 only), so the
    -- connection would time out; over the front's loopback connection that is a 504
    local r
    got, r = get(host, ca)
    lu.assertTrue(got, tostring(r and r.message))
    lu.assertEquals(r.status, 504)
    -- an HTTPS:443 listener forwarding to the targets: the front answers as it does
    local elb = sim:client("elbv2", { region = "eu-south-1" })
    elb:CreateListener{ LoadBalancerArn = p.lb_arn, Protocol = "HTTPS", Port = 443,
      Certificates = { { CertificateArn = "arn:aws:iam::" .. sim.account
        .. ":server-certificate/front" } },
      DefaultActions = { { Type = "forward", TargetGroupArn = p.tg_arn } } }
    got, r = get(host, ca)
    lu.assertEquals(r.status, 200)
    lu.assertStrContains(r.body, "HTTP Status Code 200")
    -- port 80 redirecting to HTTPS (as with https=true): its Location is the HTTPS one
    local http = elb:DescribeListeners{ LoadBalancerArn = p.lb_arn }.Listeners
    for _, l in ipairs(http) do
      if l.Port == 80 then
        elb:ModifyListener{ ListenerArn = l.ListenerArn, DefaultActions = { { Type = "redirect",
          RedirectConfig = { Protocol = "HTTPS", Port = "443", StatusCode = "HTTP_301" } } } }
      end
    end
    local plain = fo.http.request{ url = endpoint .. "/health?a=1", headers = { Host = host } }
    lu.assertEquals(plain.status, 301)
    lu.assertEquals(plain.headers.location, "https://" .. host .. "/health?a=1")
    -- the certificate names load balancers only: another name fails verification
    got, e = get("app.trading.fo.test", ca)
    lu.assertFalse(got)
    lu.assertEquals(e.kind, "tls")
    require("support.testlib").rmtree(dir)
  end)
  srv:close()
  if front then front:close() end
  if not ok then error(err, 0) end
end

os.exit(lu.LuaUnit.run())
