-- The drill's traffic model (lua/fo/drill/traffic.lua) on a scripted world: the primary
-- fails at 0, Route 53 answers the standby from `switch` on. The figures the drill
-- promises: client-visible recovery ≤ detection + TTL, the standby at the primary's
-- capacity within the modelled alarm + boot (+ warm-up per further step), sessions lost ≤
-- writes inside the replication lag.
local lu = require "luaunit"
local traffic = require "fo.drill.traffic"

-- Runs the model `seconds` virtual seconds: outage at t0 = 1000, DNS switch `switch` s
-- later; regions sized by `sizes` ({primary=, standby=, max=}); knobs `knobs`.
local function run(knobs, opts)
  opts = opts or {}
  local p = assert(traffic.params(knobs or {}))
  local t0, switch = 1000, opts.switch or 30
  local sizes = opts.sizes or { primary = 2, standby = 1, max = 6 }
  local m = traffic.new(p, { t0 = t0, ttl = 60, regions = {
    primary = { desired = sizes.primary, max = sizes.max, target = 60, warmup = 300, register = 20,
      metric_period = 60 },
    standby = { desired = sizes.standby, max = sizes.max, target = 60, warmup = 300, register = 20,
      metric_period = 60 } } })
  m:outage(t0)
  for t = t0 + 1, t0 + (opts.seconds or 1200) do
    local dns = t - t0 >= switch and "standby" or "primary"
    m:tick(t, { dns = dns, up = { primary = false, standby = true },
      healthy = { primary = t - t0 < switch, standby = true } })
  end
  return m:result(), m
end

TestTraffic = {}

function TestTraffic:test_clients_recover_within_the_switch_plus_the_ttl()
  local r = run({ clients = 2000, ignore_ttl = 0 })
  lu.assertEquals(r.recovery.n, 2000)
  lu.assertTrue(r.recovery.max <= 30 + 60, "slowest " .. r.recovery.max)
  -- clients whose answer expired just before the switch asked again, got the primary and
  -- kept it a whole TTL: the slowest waits nearly switch + TTL
  lu.assertTrue(r.recovery.max >= 85, "slowest " .. r.recovery.max)
  -- no client recovers before the switch
  lu.assertTrue(r.recovery.p50 >= 30)
  -- expiries spread evenly over the TTL: half of them before 60 s
  lu.assertTrue(r.recovery.p50 >= 55 and r.recovery.p50 <= 65, "p50 " .. r.recovery.p50)
  lu.assertTrue(r.recovery.p99 >= 85 and r.recovery.p99 <= 90, "p99 " .. r.recovery.p99)
end

function TestTraffic:test_clients_ignoring_the_ttl_are_reported_apart_and_recover_later()
  local r = run({ clients = 2000, ignore_ttl = 0.1, stale_for = 300 })
  lu.assertTrue(r.ignoring.n > 150 and r.ignoring.n < 250, "about 10%: " .. r.ignoring.n)
  lu.assertEquals(r.ignoring.n + r.recovery.n, 2000)
  lu.assertTrue(r.recovery.max <= 90)
  lu.assertTrue(r.ignoring.max > 90 and r.ignoring.max <= 30 + 300, "ignoring " .. r.ignoring.max)
  -- their requests kept timing out at the failed region meanwhile
  local base = run({ clients = 2000, ignore_ttl = 0 })
  lu.assertTrue(r.requests.timed_out > base.requests.timed_out)
end

function TestTraffic:test_the_standby_reaches_the_primary_capacity_within_alarm_boot_and_registration()
  local r, m = run({ clients = 1000 })
  local c = r.capacity
  lu.assertEquals(c.primary, 2)
  lu.assertEquals(c.standby_final, 2)
  lu.assertEquals(c.steps, 1)
  lu.assertNotNil(c.restored)
  -- 1000 req/s on one 900 req/s instance: shed until the second instance serves
  lu.assertTrue(r.requests.shed > 0)
  -- no faster than 3 datapoints above the target, boot and registration; no slower than
  -- one period more
  local took = c.restored - c.loaded
  lu.assertEquals(c.bound, 4 * 60 + 75 + 20)
  lu.assertTrue(took <= c.bound, ("took %ds, bound %ds"):format(took, c.bound))
  lu.assertTrue(c.restored >= 30 + 2 * 60 + 75 + 20, "restored at " .. c.restored)
  -- the scale-out decision is logged with its figures
  local e
  for _, x in ipairs(m.events) do if x.kind == "scale_out" then e = x end end
  lu.assertStrContains(e.text, "standby scales out 1 → 2 (CPU 100% of 1 counted instance, target 60%)")
  -- once restored, nothing more is shed
  local s = m.series.standby
  for i, t in ipairs(m.series.t) do
    if t > c.restored then lu.assertEquals(s.failed[i], 0, "shed at " .. t) end
  end
end

function TestTraffic:test_boot_and_registration_times_move_capacity_by_exactly_their_difference()
  local a = run({ clients = 1000 })
  local b = run({ clients = 1000, boot = 150, register = 40 })
  lu.assertEquals(b.capacity.restored - a.capacity.restored, (150 - 75) + (40 - 20))
end

function TestTraffic:test_a_larger_primary_takes_more_steps_each_after_a_warm_up()
  -- 2000 req/s: the primary runs 4 instances at 58%; the standby's one is saturated, its
  -- CPU capped at 100%, so target tracking adds one instance at a time: 1 → 2, then once the
  -- new one has warmed up (it does not count before) 2 → 4
  local r, m = run({ clients = 2000 }, { sizes = { primary = 4, standby = 1, max = 6 }, seconds = 1800 })
  local c = r.capacity
  lu.assertEquals(c.steps, 2)
  lu.assertEquals(c.standby_final, 4)
  local steps = {}
  for _, e in ipairs(m.events) do if e.kind == "scale_out" then steps[#steps + 1] = e end end
  -- the second step waits for the first's instance: boot 75 + warm-up 300 from launch
  lu.assertTrue(steps[2].t - steps[1].t >= 75 + 300, ("%d → %d"):format(steps[1].t, steps[2].t))
  lu.assertTrue(steps[2].t - steps[1].t <= 75 + 300 + 60)
  lu.assertEquals(c.bound, 4 * 60 + 75 + 20 + (75 + 300 + 60))
  lu.assertTrue(c.restored - c.loaded <= c.bound)
end

function TestTraffic:test_warm_up_delays_the_second_step_by_its_difference()
  local sizes = { primary = 4, standby = 1, max = 6 }
  local a = run({ clients = 2000 }, { sizes = sizes, seconds = 1800 })
  local b = run({ clients = 2000, warmup = 420 }, { sizes = sizes, seconds = 1800 })
  lu.assertEquals(b.capacity.restored - a.capacity.restored, 120)
end

function TestTraffic:test_the_primary_is_sized_for_the_load_within_its_maximum()
  -- 4000 req/s need 8 instances under 60% (522 req/s each): the primary holds its maximum
  -- of 6; the standby climbs 1 → 2 → 4 → 6 (its CPU capped at 100%, a step per warm-up)
  local r, m = run({ clients = 4000 }, { sizes = { primary = 2, standby = 1, max = 6 }, seconds = 2400 })
  local c = r.capacity
  lu.assertEquals(c.sized, { from = 2, to = 6 })
  lu.assertEquals(c.primary, 6)
  lu.assertEquals(c.standby_final, 6)
  lu.assertEquals(c.steps, 3)
  lu.assertEquals(c.bound, 4 * 60 + 75 + 20 + 2 * (75 + 300 + 60))
  lu.assertTrue(c.restored - c.loaded <= c.bound, ("took %d, bound %d"):format(c.restored - c.loaded, c.bound))
  -- at its maximum the standby serves everything, above the target (4000 / 6 / 900 → 76%)
  local s = m.series.standby
  lu.assertEquals(s.failed[#s.failed], 0)
  lu.assertTrue(s.cpu[#s.cpu] > 60)
end

function TestTraffic:test_a_standby_under_its_target_is_enough_without_scaling()
  local r, m = run({ clients = 400 })
  lu.assertEquals(r.capacity.steps, 0)
  lu.assertIsNil(r.capacity.restored)
  lu.assertTrue(r.capacity.enough)
  lu.assertEquals(r.requests.shed, 0)
  lu.assertTrue(m:settled(m.last))
end

function TestTraffic:test_sessions_lost_are_the_writes_inside_the_lag_window()
  for _, lag in ipairs{ 0, 1, 5 } do
    local r = run({ clients = 3000, ignore_ttl = 0, replication_lag = lag })
    local s = r.sessions
    lu.assertTrue(s.lost <= s.writes_in_window, ("lag %d: lost %d, window %d"):format(lag, s.lost, s.writes_in_window))
    -- every client read its session from the standby: each write in the window is a loss
    lu.assertEquals(s.read, 3000)
    lu.assertEquals(s.lost, s.writes_in_window)
    -- one write every 30 s per client: about clients × lag / 30 of them
    local expected = 3000 * lag / 30
    lu.assertTrue(math.abs(s.writes_in_window - expected) <= math.max(3, expected * 0.3),
      ("lag %d: %d writes, expected about %d"):format(lag, s.writes_in_window, expected))
  end
end

function TestTraffic:test_clients_that_stay_on_the_primary_lose_nothing()
  -- no DNS switch within the run: nobody reads from the standby
  local r = run({ clients = 500, replication_lag = 5 }, { switch = 10 ^ 6, seconds = 300 })
  lu.assertEquals(r.sessions.read, 0)
  lu.assertEquals(r.sessions.lost, 0)
  lu.assertTrue(r.sessions.writes_in_window > 0)
  lu.assertEquals(r.recovery.n, 0)
end

function TestTraffic:test_knobs_are_checked_with_the_fix_in_the_message()
  local p, err = traffic.params({ clinets = "5" })
  lu.assertIsNil(p)
  lu.assertStrContains(err, "--traffic clinets: unknown knob (use one of clients, rate")
  p, err = traffic.params({ ignore_ttl = "2" })
  lu.assertStrContains(err, "--traffic ignore_ttl=2: a fraction from 0 to 1")
  p, err = traffic.params({ boot = "soon" })
  lu.assertStrContains(err, "--traffic boot=soon: expected a number ≥ 0")
  p, err = traffic.params({ capacity = "0" })
  lu.assertStrContains(err, "--traffic capacity=0: must be more than 0")
  p = assert(traffic.params({ boot = "90" }))
  lu.assertEquals(p.boot, 90)
  lu.assertEquals(p.clients, 1000)
end

os.exit(lu.LuaUnit.run("-v", table.unpack(arg or {})))
