-- The drill's outages beyond a clean regional loss (lua/fo/drill/scenarios.lua, issue 14
-- item 2), on the failover topology built through the simulator's handlers
-- (support.sim_topology: primary eu-south-1 with 2 instances in 2 AZs, standby
-- eu-central-1 with 1, the health check at 10 s × 3 over Route 53's 8 checker regions).
-- Everything runs on the virtual clock: the figures are exact.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local topo = require "support.sim_topology"
local scenarios = require "fo.drill.scenarios"
local drill = require "fo.drill"
local cjson = require "cjson"

local B = math.ceil(os.time() / 60) * 60 + 60

-- The world, settled two minutes. opts.monitoring: the launch templates' detailed
-- monitoring (Monitoring.Enabled; nil: not set). opts.hold = N: the trading recipe's failback hold-down
-- (failbackHoldMinutes), built from the same primitives: an N-minute alarm on the check's
-- HealthCheckStatus, a CLOUDWATCH_METRIC check of it, a CALCULATED check of both children
-- on the primary record.
local function world(opts)
  opts = opts or {}
  local sim = simlib.new{ seed = 42, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 2, { monitoring = opts.monitoring })
  local s = topo.region(sim, "eu-central-1", 1, { monitoring = opts.monitoring })
  sim:advance(5)
  local g = topo.global(sim, p, s)
  local o = { app_dns_name = "app.trading.fo.test", primary_alb_dns_name = p.dns,
    standby_alb_dns_name = s.dns, health_check_id = g.hc, health_check_alarm_name = g.alarm,
    global_topic_arn = g.topic, primary_region = "eu-south-1", standby_region = "eu-central-1" }
  if opts.hold then
    sim:invoke("cloudwatch", "us-east-1", "PutMetricAlarm", { AlarmName = "hold",
      Namespace = "AWS/Route53", MetricName = "HealthCheckStatus",
      Dimensions = { { Name = "HealthCheckId", Value = g.hc } }, Statistic = "Minimum",
      Period = 60, EvaluationPeriods = opts.hold, DatapointsToAlarm = 1, Threshold = 1,
      ComparisonOperator = "LessThanThreshold", TreatMissingData = "notBreaching" })
    local hold = sim:invoke("route53", nil, "CreateHealthCheck", { CallerReference = "hold",
      HealthCheckConfig = { Type = "CLOUDWATCH_METRIC", InsufficientDataHealthStatus = "LastKnownStatus",
        AlarmIdentifier = { Region = "us-east-1", Name = "hold" } } }).HealthCheck.Id
    local gate = sim:invoke("route53", nil, "CreateHealthCheck", { CallerReference = "gate",
      HealthCheckConfig = { Type = "CALCULATED", ChildHealthChecks = { g.hc, hold },
        HealthThreshold = 2 } }).HealthCheck.Id
    local rrs = sim:invoke("route53", nil, "ListResourceRecordSets", { HostedZoneId = g.zone })
    for _, rr in ipairs(rrs.ResourceRecordSets) do
      if rr.SetIdentifier == "primary" then
        rr.HealthCheckId = gate
        sim:invoke("route53", nil, "ChangeResourceRecordSets", { HostedZoneId = g.zone,
          ChangeBatch = { Changes = { { Action = "UPSERT", ResourceRecordSet = rr } } } })
      end
    end
    o.failback_hold_minutes = opts.hold
  end
  sim:advance(120 + (opts.shift or 0)) -- (shift: another phase against the minute)
  return sim, o
end

local function run(name, opts, wopts)
  local sim, o = world(wopts)
  local lines = {}
  opts = opts or {}
  opts.print = function(l) lines[#lines + 1] = l end
  local res = scenarios.run(sim, o, name, opts)
  for _, l in ipairs(scenarios.summary(res)) do lines[#lines + 1] = l end
  return res, table.concat(lines, "\n"), sim, o
end

local function kinds(res)
  local out = {}
  for _, e in ipairs(res.events) do out[#out + 1] = e.kind end
  return table.concat(out, " ")
end

TestDrillScenarios = {}

-- The issue's proof: over random phases (every checker region on its own phase, the outage
-- at a random moment), detection for interval 10 × threshold 3 falls in (20, 30] s. The
-- arithmetic: checker i fails its third check (threshold - 1) × 10 s after its first
-- evaluation of the outage, d_i ∈ (0, 10] s after the start; the check turns unhealthy when
-- no more than 18% of the 8 checkers (1) still say healthy: at the 7th checker's verdict,
-- 20 + the 7th smallest d_i. Each run is checked against that, not only the window.
function TestDrillScenarios.test_random_phase_detection_within_20_to_30_s()
  local res, text = run("phase", { runs = 40, seed = 3 })
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(#res.runs, 40)
  for k, r in ipairs(res.runs) do
    local due = {}
    for i, d in ipairs(r.due) do due[i] = d end
    table.sort(due)
    lu.assertEquals(#due, 8)
    lu.assertTrue(due[1] > 0 and due[8] <= 10, "run " .. k)
    lu.assertAlmostEquals(r.detection, 20 + due[7], 1e-6, "run " .. k .. "\n" .. text)
    lu.assertTrue(r.detection > 20 and r.detection <= 30, "run " .. k)
    -- DNS answers with the standby the second the check turns (observed each second)
    lu.assertEquals(r.dns, math.ceil(r.detection - 1e-9), "run " .. k)
    lu.assertTrue(r.first_checker <= math.ceil(20 + due[1]), "run " .. k)
  end
  lu.assertTrue(res.detection.min > 20 and res.detection.max <= 30, text)
  lu.assertTrue(res.detection.min < res.detection.median and res.detection.median < res.detection.max,
    "the phases vary the detection: " .. text)
  -- the 7th of 8 uniform phases sits late in the interval: the median is above 25 s
  lu.assertTrue(res.detection.median > 25, text)
  lu.assertStrContains(text, "Detection over 40 runs: min ")
  -- seeded: the same seed gives the same runs, another seed others
  local again = run("phase", { runs = 40, seed = 3 })
  lu.assertEquals(again.detection, res.detection)
  local other = run("phase", { runs = 40, seed = 4 })
  lu.assertNotEquals(other.detection, res.detection)
end

-- One AZ down: the ALB keeps the other zone's target; Route 53's checkers whose requests
-- reached the lost zone's target fail until the ALB's own checks drop it (3 × 10 s), too
-- few (and too briefly) to turn the check: no failover, capacity halves.
function TestDrillScenarios.test_one_az_down_halves_capacity_without_failover()
  local res, text = run("az")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.az, "eu-south-1a")
  lu.assertEquals({ res.capacity_before, res.capacity_during }, { 2, 1 }, text)
  lu.assertNil(res.detection, text)
  lu.assertNil(res.dns_switch, text)
  -- round robin over the two healthy targets: half the checkers' requests hit the dead one
  lu.assertEquals(res.most_checkers_failing, 4, text)
  lu.assertEquals(res.lowest_healthy_checkers, 8, text)
  local cap = res.events[2]
  lu.assertEquals({ cap.kind, cap.t }, { "checker_results", 10 }, text)
  lu.assertStrContains(text, "primary healthy targets: 1 of 2")
  lu.assertStrContains(text, "DNS stayed on the primary")
end

-- The application fails its health path (500) while EC2 runs: the checkers see the 500
-- through the ALB (which fails open to its unhealthy targets) and the region fails over.
function TestDrillScenarios.test_app_failing_health_path_fails_over()
  local res, text = run("app")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.detection, 30, text)
  lu.assertEquals(res.dns_switch, 30, text)
  lu.assertEquals({ res.capacity_before, res.capacity_during }, { 2, 0 }, text)
  lu.assertEquals(res.failback.detection, 30, text)
  lu.assertEquals(res.failback.dns, 30, text)
  lu.assertStrContains(text, "health check UNHEALTHY (Failure: HTTP Status Code 500")
end

-- The ALB answers 502 with healthy targets: target health (the alias's
-- EvaluateTargetHealth) never notices; the record's Route 53 health check does.
function TestDrillScenarios.test_alb_5xx_with_healthy_targets_fails_over_by_the_health_check()
  local res, text = run("alb5xx")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.detection, 30, text)
  lu.assertEquals(res.dns_switch, 30, text)
  lu.assertEquals({ res.capacity_before, res.capacity_during }, { 2, 2 }, text)
  lu.assertEquals(res.failback.dns, 30, text)
  lu.assertStrContains(text, "Failure: HTTP Status Code 502, Bad Gateway")
end

-- The standby is down when the primary fails: no record is healthy, Route 53 fails open
-- and answers by weight — the primary, down — for the whole outage.
function TestDrillScenarios.test_standby_down_fails_open_to_the_primary()
  local res, text = run("standby-down")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.detection, 30, text)
  lu.assertEquals(res.fail_open, 30, text)
  lu.assertNil(res.dns_switch, "no switch while both are down: " .. text)
  lu.assertEquals(res.answer_during, "primary")
  lu.assertEquals(res.seconds_primary_answered, 120, text)
  lu.assertStrContains(text, "t- 60s  eu-central-1 (standby) down")
  lu.assertStrContains(text, "Route 53 fails open")
end

-- Flapping (120 s down, 60 s up, 4 cycles): Route 53 fails back after 3 good checks each
-- time. The cost: 8 DNS switches, 30 s of answers with the failing region per cycle.
function TestDrillScenarios.test_flapping_fails_over_and_back_every_cycle()
  local res, text = run("flapping")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.dns_switches, 8, text)
  lu.assertEquals(res.seconds_failing_region_answered, 4 * 30, text)
  lu.assertEquals(res.seconds_standby_while_primary_up, 4 * 30, text)
  lu.assertEquals(res.failback_after_last_recovery, 30, text)
  lu.assertEquals(res.hold_minutes, 0)
  lu.assertStrContains(text, "no hold-down: Route 53 fails back after 3 good checks")
end

-- The same flapping with the failback hold-down (5 minutes): one switch, the failing region
-- answered only before the first detection, failback only after 5 clean minutes; failover
-- itself is as fast as without it (the CALCULATED check follows its endpoint child at once).
-- Whatever the phase of the outage against the alarm's minutes.
function TestDrillScenarios.test_flapping_with_failback_hold_down_switches_once()
  for shift = 0, 50, 10 do
    local res, text = run("flapping", nil, { hold = 5, shift = shift })
    lu.assertEquals(res.dns_switches, 1, "shift " .. shift .. "\n" .. text)
    lu.assertEquals(res.seconds_failing_region_answered, 30, "shift " .. shift)
  end
  local res, text = run("flapping", nil, { hold = 5 })
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.dns_switches, 1, text)
  lu.assertEquals(res.seconds_failing_region_answered, 30, text)
  lu.assertEquals(res.seconds_standby_while_primary_up, 4 * 60, text)
  lu.assertTrue(res.failback_after_last_recovery >= 5 * 60
    and res.failback_after_last_recovery <= 7 * 60, text)
  lu.assertEquals(res.events[1].kind, "outage")
  local switch
  for _, e in ipairs(res.events) do
    if e.kind == "dns_standby" then switch = e.t break end
  end
  lu.assertEquals(switch, 30, "failover at detection, as without the hold-down: " .. text)
  lu.assertStrContains(text, "failback hold-down of 5 minutes")
end

-- Without the hold-down's gate the region drill fails back at the healthy verdict; with
-- it, minutes later (the drill waits for it).
function TestDrillScenarios.test_region_drill_waits_for_the_hold_down()
  local sim, o = world{ hold = 3 }
  local res = drill.run(sim, o)
  lu.assertEquals(res.detection, 30)
  lu.assertEquals(res.dns_switch, 30)
  lu.assertEquals(res.failback.detection, 30)
  lu.assertTrue(res.failback.dns >= 3 * 60, tostring(res.failback.dns))
  lu.assertIsTrue(res.ok, table.concat(res.problems, "; "))
end

-- The 18% rule: the primary unreachable from k of the 8 checker regions stays healthy
-- while more than 18% (2 or more) still reach it; GetHealthCheckStatus answers per checker.
function TestDrillScenarios.test_checkers_cut_off_follow_the_18_percent_rule()
  local res, text = run("checkers")
  lu.assertIsTrue(res.ok, text)
  lu.assertEquals(res.checkers, 8)
  for k, step in ipairs(res.steps) do
    lu.assertEquals(step.healthy, k <= 6, k .. " unreachable\n" .. text)
    lu.assertEquals(step.healthy_checkers, 8 - k, text)
    lu.assertEquals(step.dns, k <= 6 and "primary" or "standby", text)
  end
end

function TestDrillScenarios.test_get_health_check_status_answers_per_checker()
  local sim, o = world()
  sim:set_fault("eu-south-1", "checkers", { "us-west-1", "sa-east-1" })
  sim:advance(30)
  local r53 = sim:client("route53", { region = "us-east-1" })
  local obs = r53:GetHealthCheckStatus{ HealthCheckId = o.health_check_id }.HealthCheckObservations
  lu.assertEquals(#obs, 8)
  local failing = {}
  for _, ob in ipairs(obs) do
    if ob.StatusReport.Status:match("^Failure") then failing[#failing + 1] = ob.Region end
  end
  lu.assertEquals(failing, { "us-west-1", "sa-east-1" })
  lu.assertIsTrue(sim:health_check_status(o.health_check_id).healthy)
  lu.assertEquals(sim:health_check_status(o.health_check_id).healthy_checkers, 6)
end

-- Checkers on their own phases: each evaluates once per interval, the load balancer sees
-- one request per checker per interval (the request metrics are unchanged).
function TestDrillScenarios.test_checker_phases_spread_the_requests()
  local sim, o = world()
  local regions = sim:set_checker_phases(o.health_check_id, { 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5 })
  lu.assertEquals(#regions, 8)
  local t0 = sim:now()
  sim:advance(10)
  local st = sim:health_check_status(o.health_check_id)
  for i, c in ipairs(st.checkers) do
    lu.assertAlmostEquals(c.last.t - t0, i - 0.5, 1e-9)
    lu.assertAlmostEquals(c.next - t0, i - 0.5 + 10, 1e-9)
  end
  lu.assertErrorMsgContains("is not an endpoint health check", function()
    sim:set_checker_phases("nope", {})
  end)
end

-- Target tracking acts on the instances' CPU datapoints: one a minute with the launch
-- template's detailed monitoring, one every 5 minutes with basic monitoring (Enabled false,
-- or not set: EC2's default). The drill takes the period from the standby group's template,
-- so without detailed monitoring its 3 datapoints above the target come later, and so does
-- the standby's capacity: the alarm fires two periods after the first breaching period ends,
-- at the earliest 2 × 300 s after the load, while detailed monitoring's fires within 4 × 60 s
-- of it (the diluted period the load starts in, then 3), so at least 600 - 240 s apart.
function TestDrillScenarios.test_the_metric_period_follows_the_launch_templates_monitoring()
  local function capacity(monitoring)
    local sim, o = world{ monitoring = monitoring }
    local res = drill.run(sim, o, { print = function() end, traffic = {} })
    lu.assertIsTrue(res.ok, table.concat(res.problems, "; "))
    return res.traffic.capacity
  end
  local detailed, basic = capacity(true), capacity(false)
  lu.assertEquals({ detailed.metric_period, basic.metric_period }, { 60, 300 })
  lu.assertEquals({ detailed.steps, basic.steps }, { 1, 1 })
  lu.assertNotNil(basic.restored)
  lu.assertTrue(basic.restored - detailed.restored >= 2 * 300 - 4 * 60,
    ("restored at %s s with detailed monitoring, %s s with basic"):format(detailed.restored,
      basic.restored))
  lu.assertTrue(basic.restored - basic.loaded <= basic.bound)
  -- a template that does not say is basic monitoring
  local sim, o = world()
  local setup = require("fo.drill.world").setup(sim, o, sim:now())
  lu.assertEquals({ setup.regions.primary.metric_period, setup.regions.standby.metric_period },
    { 300, 300 })
end

function TestDrillScenarios.test_unknown_fault_is_refused()
  local sim = world()
  lu.assertErrorMsgContains("use az, app, alb_5xx or checkers", function()
    sim:set_fault("eu-south-1", "power", true)
  end)
  lu.assertErrorMsgContains("expected a string", function()
    sim:set_fault("eu-south-1", "az", 3)
  end)
end

-- fo-run's options: a scenario name it does not know, runs without the phase scenario.
function TestDrillScenarios.test_cli_options()
  local cli = require "fo.engine.cli"
  local opts = assert(cli.parse{ { "--drill" }, { "--drill-scenario", "phase" },
    { "--drill-runs", "50" }, { "--drill-seed", "9" }, { "--json" } })
  lu.assertEquals({ opts.drill_scenario, opts.drill_runs, opts.drill_seed, opts.json },
    { "phase", 50, 9, true })
  local _, err = cli.parse{ { "--drill" }, { "--drill-scenario", "meteor" } }
  lu.assertStrContains(err, "--drill-scenario meteor: use region, phase, az, app, alb5xx, "
    .. "standby-down, flapping, checkers")
  _, err = cli.parse{ { "--drill" }, { "--drill-runs", "5" } }
  lu.assertStrContains(err, "go with --drill-scenario phase")
  _, err = cli.parse{ { "--drill-scenario", "az" } }
  lu.assertStrContains(err, "go with --drill")
  _, err = cli.parse{ { "--drill" }, { "--drill-scenario", "phase" }, { "--drill-runs", "0" } }
  lu.assertStrContains(err, "--drill-runs 0: expected a whole number from 1 to 10000")
end

-- --json: one `drill` event with the scenario, the verdict, the summary and the figures.
function TestDrillScenarios.test_json_event()
  local res = run("alb5xx")
  res.summary = scenarios.summary(res)
  local line = drill.json_event(res, 12.3456)
  local events = require "support.json_events"
  lu.assertEquals(events.problems(events.parse(line)), {}, "valid against docs/json-events.schema.json")
  local doc = cjson.decode(line)
  lu.assertEquals({ doc.v, doc.event, doc.t, doc.scenario, doc.ok }, { 1, "drill", 12.346, "alb5xx", true })
  lu.assertEquals(doc.result.detection, 30)
  lu.assertEquals(doc.result.events[1].kind, "fault")
  lu.assertEquals(doc.summary[#doc.summary], "Scenario passed.")
  lu.assertEquals(doc.result.problems, {})
end

os.exit(lu.LuaUnit.run("-v", table.unpack(arg or {})))
