-- The failover model on the sim's virtual clock (issue 4): Route 53 health checks probing
-- the ALBs of the ELBv2/Auto Scaling state, detection after FailureThreshold × interval,
-- sim:resolve switching the weighted alias records to the weight-0 standby and back, the
-- HealthCheckStatus metric in us-east-1 driving the alarm, and the alarm's SNS
-- notification. Calls go through fo's clients over the in-process wire; the sim's real
-- clock is frozen (at a minute boundary, near now so signatures pass the skew check), so
-- virtual times are exact.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local topo = require "support.sim_topology"
local cjson = require "cjson"
local json = require "fo.json"

local B = math.ceil(os.time() / 60) * 60 + 60

local function new_sim()
  return simlib.new{ seed = 42, time = function() return B end }
end

-- Primary (eu-south-1, 2 instances) and standby (eu-central-1, 1 instance), active ALBs,
-- then the global part created at B + 5.
local function world(opts)
  local sim = new_sim()
  local p = topo.region(sim, "eu-south-1", 2)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5) -- the load balancers leave "provisioning"
  local g = topo.global(sim, p, s, opts)
  return sim, p, s, g
end

local function advance_to(sim, t) sim:advance(t - sim:now()) end

local function alarm_state(sim, name)
  local cw = sim:client("cloudwatch", { region = "us-east-1" })
  return cw:DescribeAlarms{ AlarmNames = { name } }.MetricAlarms[1]
end

local function alarm_messages(sim, topic, state)
  local out = {}
  for _, m in ipairs(sim:deliveries(topic)) do
    local doc = cjson.decode(m.Message)
    if not state or doc.NewStateValue == state then out[#out + 1] = { msg = m, doc = doc } end
  end
  return out
end

TestFailover = {}

-- The issue's proof: outage at t → unhealthy at t + 30 (interval 10, threshold 3) →
-- resolve() answers the standby → the us-east-1 alarm fires and notifies; failback.
function TestFailover.test_outage_detected_after_30s_and_failback()
  local sim, p, s, g = world()
  lu.assertEquals(sim:now(), B + 5)
  advance_to(sim, B + 95) -- evaluations at B+5, B+15, ..., B+95 all pass
  local st = sim:health_check_status(g.hc)
  lu.assertTrue(st.healthy)
  lu.assertEquals(st.next, B + 105)
  local r = sim:resolve("app.trading.fo.test", "A")
  lu.assertEquals(r.chosen, "primary")
  lu.assertEquals(r.answer, { p.dns:lower() .. "." })
  lu.assertEquals(r.eligible, { "primary" })
  lu.assertEquals(alarm_state(sim, g.alarm).StateValue, "OK") -- evaluated at B+60
  lu.assertEquals(#alarm_messages(sim, g.topic, "OK"), 1)     -- INSUFFICIENT_DATA -> OK

  local t = B + 95
  sim:set_outage("eu-south-1")
  advance_to(sim, t + 29)  -- two failures so far (t+10, t+20): still healthy
  st = sim:health_check_status(g.hc)
  lu.assertTrue(st.healthy)
  lu.assertEquals(st.fails, 2)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "primary")
  advance_to(sim, t + 30)  -- third consecutive failure
  st = sim:health_check_status(g.hc)
  lu.assertFalse(st.healthy)
  lu.assertEquals(st.changed_at, t + 30)
  lu.assertStrContains(st.last.status, "Connection timed out")
  r = sim:resolve("app.trading.fo.test", "A")
  lu.assertEquals(r.chosen, "standby")
  lu.assertEquals(r.answer, { s.dns:lower() .. "." })
  lu.assertEquals(r.eligible, { "standby" })
  lu.assertEquals(r.records, { { SetIdentifier = "primary", Weight = 100, healthy = false },
    { SetIdentifier = "standby", Weight = 0, healthy = true } })

  -- GetHealthCheckStatus through Route 53's API: every checker reports the failure.
  local r53 = sim:client("route53")
  local obs = r53:GetHealthCheckStatus{ HealthCheckId = g.hc }.HealthCheckObservations
  lu.assertEquals(#obs, 8)
  for _, o in ipairs(obs) do lu.assertStrContains(o.StatusReport.Status, "Failure") end

  -- The alarm: bucket [B+120, B+180) holds the first 0 (B+125); evaluated at B+180.
  advance_to(sim, B + 179)
  lu.assertEquals(alarm_state(sim, g.alarm).StateValue, "OK")
  advance_to(sim, B + 180)
  local a = alarm_state(sim, g.alarm)
  lu.assertEquals(a.StateValue, "ALARM")
  lu.assertEquals(a.StateUpdatedTimestamp, B + 180)
  local fired = alarm_messages(sim, g.topic, "ALARM")
  lu.assertEquals(#fired, 1)
  local doc = fired[1].doc
  lu.assertEquals(doc.AlarmName, "hc-primary")
  lu.assertEquals(doc.OldStateValue, "OK")
  lu.assertEquals(doc.Region, "US East (N. Virginia)")
  lu.assertEquals(doc.AWSAccountId, "123456789012")
  lu.assertEquals(doc.AlarmArn, "arn:aws:cloudwatch:us-east-1:123456789012:alarm:hc-primary")
  lu.assertStrContains(doc.NewStateReason, "Threshold Crossed: 1 out of the last 1 datapoints [0.0")
  lu.assertStrContains(doc.NewStateReason, "was less than the threshold (1.0)")
  lu.assertEquals(doc.Trigger.MetricName, "HealthCheckStatus")
  lu.assertEquals(doc.Trigger.Namespace, "AWS/Route53")
  lu.assertEquals(doc.Trigger.Statistic, "MINIMUM")
  lu.assertEquals(doc.Trigger.Dimensions, { { name = "HealthCheckId", value = g.hc } })
  lu.assertEquals(doc.Trigger.TreatMissingData, "breaching")
  lu.assertEquals(fired[1].msg.Subject, 'ALARM: "hc-primary" in US East (N. Virginia)')

  -- Failback: the outage ends at B+185. The ALB's targets pass 2 checks 10 s apart
  -- before it calls them healthy (B+205), but with no healthy target it fails open and
  -- forwards to them: the health check passes at B+195, 205, 215 → healthy at +30, when
  -- the alias's target health is back too.
  advance_to(sim, B + 185)
  sim:set_outage("eu-south-1", false)
  advance_to(sim, B + 214)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "standby")
  advance_to(sim, B + 215)
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "primary")
  -- The alarm clears when a whole minute of 1s is in: [B+240, B+300) at B+300.
  advance_to(sim, B + 299)
  lu.assertEquals(alarm_state(sim, g.alarm).StateValue, "ALARM")
  advance_to(sim, B + 300)
  lu.assertEquals(alarm_state(sim, g.alarm).StateValue, "OK")
  local oks = alarm_messages(sim, g.topic, "OK")
  lu.assertEquals(#oks, 2)
  lu.assertEquals(oks[2].doc.OldStateValue, "ALARM")

  -- GetMetricData gives the HealthCheckStatus datapoints the checks published.
  local cw = sim:client("cloudwatch", { region = "us-east-1" })
  local md = cw:GetMetricData{ StartTime = B, EndTime = B + 300, ScanBy = "TimestampAscending",
    MetricDataQueries = { { Id = "hc", MetricStat = { Metric = { Namespace = "AWS/Route53",
      MetricName = "HealthCheckStatus", Dimensions = { { Name = "HealthCheckId", Value = g.hc } } },
      Period = 60, Stat = "Minimum" } } } }
  local res = md.MetricDataResults[1]
  lu.assertEquals(res.Id, "hc")
  lu.assertEquals(res.Values, { 1.0, 1.0, 0.0, 0.0, 1.0 })
  lu.assertEquals(res.Timestamps[1], B)
end

-- Interval 30 and threshold 3: 90 s of failures.
function TestFailover.test_interval_30_takes_90s()
  local sim, _, _, g = world{ interval = 30 }
  advance_to(sim, B + 35) -- evaluations at B+5, B+35
  sim:set_outage("eu-south-1")
  advance_to(sim, B + 124)
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
  advance_to(sim, B + 125)
  lu.assertFalse(sim:health_check_status(g.hc).healthy)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "standby")
end

-- Inverted: a reachable endpoint counts as a failure, an outage as a pass.
function TestFailover.test_inverted()
  local sim, _, _, g = world{ inverted = true }
  advance_to(sim, B + 24)  -- B+5, B+15 inverted failures
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
  advance_to(sim, B + 25)  -- the third
  lu.assertFalse(sim:health_check_status(g.hc).healthy)
  sim:set_outage("eu-south-1")
  advance_to(sim, B + 55)
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
end

-- The endpoint also fails when the Auto Scaling group has no instances (ALB answers 503),
-- not only in a region outage.
function TestFailover.test_no_targets_is_unhealthy()
  local sim, p, _, g = world()
  local asg = sim:client("autoscaling", { region = "eu-south-1" })
  asg:UpdateAutoScalingGroup{ AutoScalingGroupName = p.asg, MinSize = 0, DesiredCapacity = 0 }
  advance_to(sim, B + 65)
  local st = sim:health_check_status(g.hc)
  lu.assertFalse(st.healthy)
  lu.assertStrContains(st.last.status, "HTTP Status Code 50")
end

-- EvaluateTargetHealth on the primary alias follows ELBv2's target health: the ALB's own
-- checks (3 failures 10 s apart) mark its targets unhealthy 30 s into the outage — about
-- when the Route 53 check (10 s × 3, evaluated at B+15, 25, 35) reaches its verdict.
function TestFailover.test_evaluate_target_health_on_primary()
  local sim, _, _, g = world{ primary_eth = true }
  advance_to(sim, B + 10)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "primary")
  sim:set_outage("eu-south-1")
  advance_to(sim, B + 34)
  lu.assertTrue(sim:health_check_status(g.hc).healthy)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "primary")
  advance_to(sim, B + 40)
  lu.assertFalse(sim:health_check_status(g.hc).healthy)
  lu.assertEquals(sim:resolve("app.trading.fo.test").chosen, "standby")
  local failover = require "fo.sim.failover"
  local dns = sim:invoke("elbv2", "eu-south-1", "DescribeLoadBalancers", {}).LoadBalancers[1].DNSName
  lu.assertFalse(failover.lb_healthy(sim, "123456789012", dns), "the ALB's targets are down by now")
end

-- Both regions down: no healthy record, Route 53 fails open and answers by weight.
function TestFailover.test_all_unhealthy_fails_open()
  local sim = world()
  sim:set_outage("eu-south-1")
  sim:set_outage("eu-central-1")
  advance_to(sim, B + 40)
  local r = sim:resolve("app.trading.fo.test")
  lu.assertFalse(r.healthy)
  lu.assertEquals(r.chosen, "primary")
  lu.assertEquals(r.eligible, { "primary" })
end

-- The model survives a save and reload: the next evaluation comes from the state file.
function TestFailover.test_state_reload_keeps_evaluating()
  local dir = os.getenv("TMPDIR") or "/tmp"
  local file = ("%s/fo-failover-%d.sim.json"):format(dir, math.random(1, 1e9))
  local sim = simlib.new{ seed = 9, file = file, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 1)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5)
  local g = topo.global(sim, p, s)
  advance_to(sim, B + 15)
  sim:save()
  local again = simlib.new{ file = file, time = function() return B + 15 end }
  again:set_outage("eu-south-1")
  again:advance(30)
  lu.assertFalse(again:health_check_status(g.hc).healthy)
  lu.assertEquals(again:resolve("app.trading.fo.test").chosen, "standby")
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
end

-- What the model changes on the clock (health checks, metrics, alarms and their actions)
-- is saved with the next call's log record, not only by a whole-state save: a sim loaded
-- from the file holds exactly the live state.
function TestFailover.test_clock_work_is_saved_with_the_next_call()
  local dir = os.getenv("TMPDIR") or "/tmp"
  local file = ("%s/fo-failover-%d.sim.json"):format(dir, math.random(1, 1e9))
  local sim = simlib.new{ seed = 9, file = file, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 1)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5)
  topo.global(sim, p, s)
  sim:set_outage("eu-south-1")
  advance_to(sim, B + 300) -- checks fail over, alarms fire, their actions run
  sim:invoke("ssm", "eu-west-1", "PutParameter", { Name = "after", Value = "v", Type = "String" })
  local log = require("fo.sim.store_log").path(file)
  local f = assert(io.open(log)); local n = select(2, f:read("a"):gsub("\n", "")); f:close()
  lu.assertTrue(n > 1, "the calls went to the log")
  local loaded = require("fo.sim.store").load(file)
  lu.assertEquals(json.encode(loaded.data), json.encode(sim.store.data))
  os.remove(file); os.remove(log)
end

-------------------------------------------------------------------------------
-- Weighted record edge cases (plain A records; health checks on endpoints the sim does
-- not know fail, and Inverted makes them pass; threshold 1 settles at the first check).

local function weighted(records)
  local sim = new_sim()
  local r53 = sim:client("route53")
  local zone = r53:CreateHostedZone{ Name = "w.example-com.test", CallerReference = "w" }.HostedZone.Id
  local changes = {}
  for i, r in ipairs(records) do
    local hc
    if r.health ~= nil then
      hc = r53:CreateHealthCheck{ CallerReference = "hc" .. i, HealthCheckConfig = {
        Type = "HTTP", FullyQualifiedDomainName = "nowhere.invalid", RequestInterval = 10,
        FailureThreshold = 1, Inverted = r.health } }.HealthCheck.Id
    end
    changes[i] = { Action = "CREATE", ResourceRecordSet = { Name = "x.w.example-com.test", Type = "A",
      SetIdentifier = r.id, Weight = r.weight, TTL = 60, HealthCheckId = hc,
      ResourceRecords = { { Value = r.ip } } } }
  end
  r53:ChangeResourceRecordSets{ HostedZoneId = zone, ChangeBatch = { Changes = changes } }
  sim:advance(1)
  return sim
end

function TestFailover.test_weighted_by_weight_with_draw()
  local sim = weighted{ { id = "a", weight = 1, ip = "10.0.0.1" },
    { id = "b", weight = 3, ip = "10.0.0.2" } }
  lu.assertEquals(sim:resolve("x.w.example-com.test", "A", { draw = 0.2 }).answer, { "10.0.0.1" })
  lu.assertEquals(sim:resolve("x.w.example-com.test", "A", { draw = 0.3 }).answer, { "10.0.0.2" })
  local counts = { a = 0, b = 0 }
  for _ = 1, 400 do
    local r = sim:resolve("x.w.example-com.test")
    counts[r.chosen] = counts[r.chosen] + 1
  end
  lu.assertTrue(counts.b > 2 * counts.a, ("a=%d b=%d"):format(counts.a, counts.b))
end

function TestFailover.test_weight_zero_only_when_nonzero_unhealthy()
  local sim = weighted{ { id = "main", weight = 10, ip = "10.0.0.1", health = true },
    { id = "spare", weight = 0, ip = "10.0.0.2" } }
  lu.assertEquals(sim:resolve("x.w.example-com.test").eligible, { "main" })
  sim = weighted{ { id = "main", weight = 10, ip = "10.0.0.1", health = false },
    { id = "spare", weight = 0, ip = "10.0.0.2" } }
  local r = sim:resolve("x.w.example-com.test")
  lu.assertEquals(r.eligible, { "spare" })
  lu.assertEquals(r.answer, { "10.0.0.2" })
end

function TestFailover.test_unhealthy_weight_zero_still_excluded()
  local sim = weighted{ { id = "main", weight = 10, ip = "10.0.0.1", health = false },
    { id = "spare1", weight = 0, ip = "10.0.0.2", health = false },
    { id = "spare2", weight = 0, ip = "10.0.0.3", health = true } }
  lu.assertEquals(sim:resolve("x.w.example-com.test").eligible, { "spare2" })
end

function TestFailover.test_all_zero_splits_evenly()
  local sim = weighted{ { id = "a", weight = 0, ip = "10.0.0.1" },
    { id = "b", weight = 0, ip = "10.0.0.2" } }
  local r = sim:resolve("x.w.example-com.test", "A", { draw = 0.49 })
  lu.assertEquals(r.eligible, { "a", "b" })
  lu.assertEquals(r.chosen, "a")
  lu.assertEquals(sim:resolve("x.w.example-com.test", "A", { draw = 0.51 }).chosen, "b")
end

function TestFailover.test_all_unhealthy_considered_healthy()
  local sim = weighted{ { id = "a", weight = 5, ip = "10.0.0.1", health = false },
    { id = "b", weight = 0, ip = "10.0.0.2", health = false } }
  local r = sim:resolve("x.w.example-com.test")
  lu.assertFalse(r.healthy)
  lu.assertEquals(r.eligible, { "a" })
end

function TestFailover.test_resolve_simple_and_missing_names()
  local sim = weighted{ { id = "a", weight = 1, ip = "10.0.0.1" } }
  lu.assertEquals(sim:resolve("nope.w.example-com.test").rcode, "NXDOMAIN")
  lu.assertEquals(sim:resolve("x.w.example-com.test", "AAAA").rcode, "NOERROR")
  lu.assertEquals(#sim:resolve("x.w.example-com.test", "AAAA").answer, 0)
  lu.assertEquals(sim:resolve("example-org.test").rcode, "REFUSED")
  local ns = sim:resolve("w.example-com.test", "NS")
  lu.assertEquals(#ns.answer, 4)
  lu.assertEquals(ns.ttl, 172800)
end

os.exit(lu.LuaUnit.run())
