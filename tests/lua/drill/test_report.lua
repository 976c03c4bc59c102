-- The drill's verdict on its traffic figures (lua/fo/drill/report.lua): each promise that
-- does not hold is a problem that fails the drill, named with its figures.
local lu = require "luaunit"
local traffic = require "fo.drill.traffic"
local report = require "fo.drill.report"

-- A drill result whose traffic comes from the model on a scripted world: outage at 0, DNS
-- switch at `switch`, detection at `detection`.
local function result(knobs, opts)
  opts = opts or {}
  local p = assert(traffic.params(knobs or {}))
  local t0, switch = 1000, opts.switch or 30
  local m = traffic.new(p, { t0 = t0, ttl = 60, regions = {
    primary = { desired = 2, max = 6, target = 60, warmup = 300, register = 20,
      metric_period = 60 },
    standby = { desired = 1, max = opts.max or 6, target = 60, warmup = 300, register = 20,
      metric_period = 60 } } })
  m:outage(t0)
  for t = t0 + 1, t0 + 900 do
    local dns = t - t0 >= switch and "standby" or "primary"
    m:tick(t, { dns = dns, up = { primary = false, standby = true },
      healthy = { primary = t - t0 < switch, standby = true } })
  end
  local tr = m:result()
  tr.events, tr.series = m.events, m.series
  return { detection = opts.detection or switch, dns_switch = switch, traffic = tr, problems = {} }
end

TestDrillReport = {}

function TestDrillReport:test_a_drill_that_keeps_its_promises_has_no_problem()
  lu.assertEquals(report.problems(result()), {})
end

function TestDrillReport:test_recovery_later_than_detection_plus_ttl_is_a_problem()
  -- the scripted DNS switches at 30 s, but the drill says it detected at 5 s
  local res = result({}, { detection = 5, switch = 30 })
  res.detection, res.dns_switch = 5, 5
  local p = report.problems(res)
  lu.assertEquals(#p, 1)
  lu.assertStrContains(p[1], "client-visible recovery within detection + TTL (65s; slowest client 89s)")
end

function TestDrillReport:test_clients_that_all_ignore_the_ttl_still_count_as_recovered()
  local res = result({ ignore_ttl = 1 })
  lu.assertEquals(res.traffic.recovery.n, 0)
  lu.assertEquals(report.problems(res), {})
  lu.assertStrContains(table.concat(report.summary(res), "\n"),
    "Client-visible recovery: no client honours the TTL; 1000 clients ignoring the TTL: slowest")
end

function TestDrillReport:test_a_standby_that_cannot_reach_the_primary_capacity_is_a_problem()
  -- its maximum is 1: no scale-out possible, 1000 req/s on 900
  local res = result({}, { max = 1 })
  local p = report.problems(res)
  lu.assertEquals(#p, 1)
  lu.assertStrContains(p[1], "the standby reaches the primary's capacity (2 instances; it has 1")
  lu.assertStrContains(table.concat(report.summary(res), "\n"), "Capacity NOT restored: the standby has 1 instance")
end

function TestDrillReport:test_capacity_later_than_its_bound_is_a_problem()
  local res = result()
  res.traffic.capacity.bound = 100
  local p = report.problems(res)
  lu.assertEquals(#p, 1)
  lu.assertStrContains(p[1], "the standby at the primary's capacity within 100s of its CPU passing the target")
end

function TestDrillReport:test_more_sessions_lost_than_writes_in_the_window_is_a_problem()
  local res = result({ replication_lag = 2 })
  res.traffic.sessions.lost = res.traffic.sessions.writes_in_window + 1
  local p = report.problems(res)
  lu.assertEquals(#p, 1)
  lu.assertStrContains(p[1], ("sessions lost (%d) ≤ writes inside the replication lag (%d)")
    :format(res.traffic.sessions.lost, res.traffic.sessions.writes_in_window))
end

os.exit(lu.LuaUnit.run("-v", table.unpack(arg or {})))
