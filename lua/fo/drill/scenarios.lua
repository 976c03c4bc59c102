-- The drill's outages that are not a clean regional loss (`fo-run --drill
-- --drill-scenario NAME`, docs/runbook.md "Other outages"), on the simulator's virtual
-- clock, each with a timeline and a summary:
--
--   phase         the regional outage at a random moment, over N seeded runs: each run
--                 gives every Route 53 checker region its own phase in the interval and
--                 starts the outage at a random point; detection min/median/max
--   az            one Availability Zone of the primary down: the ALB keeps a healthy
--                 target in the other zone, no failover, capacity halves
--   app           the application answers 500 on its health path while EC2 runs: failover
--   alb5xx        the ALB answers 5xx while its targets stay healthy: failover by the
--                 Route 53 health check (target health alone would not see it)
--   standby-down  the standby down, then the primary: no healthy record, Route 53 fails
--                 open and answers as if all were healthy (the primary, by weight)
--   flapping      the primary down and up in cycles: failover and failback each time
--                 (Route 53 fails back after FailureThreshold successes, no hold-down);
--                 DNS switches and the time DNS answered with the failing region
--   checkers      the primary unreachable from some checker regions only: healthy while
--                 more than 18% of the checkers can reach it
--
-- Like the region drill it observes through the simulator (sim:resolve,
-- sim:health_check_status, DescribeTargetHealth) and makes no mutating call: faults are the
-- simulator's knobs (sim:set_outage, sim:set_fault), all ended before it returns.
local M = {}

M.NAMES = { "region", "phase", "az", "app", "alb5xx", "standby-down", "flapping", "checkers" }
M.DEFAULT_RUNS, M.DEFAULT_SEED = 25, 1
-- flapping: seconds down, seconds up, cycles (down long enough for a failback hold-down
-- to engage in any phase: its alarm closes a minute, its check follows within 30 s)
M.FLAP = { down = 120, up = 60, cycles = 4 }

local function norm(name) return (tostring(name or ""):lower():gsub("%.$", "")) end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- The primary's (or standby's) target group and region, from its ALB's listeners.
local function target_group(sim, o, side)
  local failover = require "fo.sim.failover"
  local lb, region, db = failover.find_lb(sim, sim.account, o[side .. "_alb_dns_name"])
  if not lb then error(("fo.drill: no load balancer %s in the simulator"):format(
    tostring(o[side .. "_alb_dns_name"])), 0) end
  for _, l in ipairs(failover.listeners_of(db, lb.desc.LoadBalancerArn)) do
    local tgs = failover.listener_tgs(db, l)
    if tgs[1] then return tgs[1], region end
  end
  return nil, region
end

-- Healthy and registered targets of a side, with their zones: healthy, total, {az → healthy}.
local function capacity(sim, o, side)
  local tg, region = target_group(sim, o, side)
  if not tg then return 0, 0, {} end
  local out = sim:client("elbv2", { region = region }):DescribeTargetHealth{ TargetGroupArn = tg }
  local asdb = sim.store:db(sim.account, region, "autoscaling")
  local healthy, zones = 0, {}
  for _, d in ipairs(out.TargetHealthDescriptions or {}) do
    local inst = require("fo.sim.asg_state").instance(asdb, d.Target.Id)
    local az = inst and inst.AvailabilityZone or "?"
    zones[az] = zones[az] or 0
    if d.TargetHealth.State == "healthy" then
      healthy = healthy + 1
      zones[az] = zones[az] + 1
    end
  end
  return healthy, #(out.TargetHealthDescriptions or {}), zones
end

-- What the world looks like now: DNS side, the check's verdict and checkers, fail-open.
local function observe(sim, o)
  local r = sim:resolve(o.app_dns_name, "A")
  local answer = r.answer and r.answer[1]
  local side = norm(answer) == norm(o.primary_alb_dns_name) and "primary"
    or norm(answer) == norm(o.standby_alb_dns_name) and "standby" or "none"
  local hc = sim:health_check_status(o.health_check_id) or {}
  -- the checkers whose last request failed, and the status a failing one saw
  local failing, why = 0, nil
  for _, c in ipairs(hc.checkers or {}) do
    if c.last and c.last.status:match("^Failure") then
      failing = failing + 1
      if not c.healthy or not why then why = c.last.status end
    end
  end
  return { dns = side, answer = answer, fail_open = r.healthy == false, healthy = hc.healthy,
    up = hc.healthy_checkers, n = hc.checker_count, changed_at = hc.changed_at,
    failing = failing, last = (not hc.healthy and why) or (hc.last and hc.last.status) }
end

-- A scenario's recorder: events {t=, kind=, text=} from t0, printed as they happen.
local function recorder(sim, say)
  local rec = { events = {}, t0 = sim:now() }
  function rec.event(kind, fmt, ...)
    local t = sim:now() - rec.t0
    local text = fmt:format(...)
    rec.events[#rec.events + 1] = { t = t, kind = kind, text = text }
    local whole = math.floor(t + 0.5)
    say(("  t%s%3ds  %s"):format(whole < 0 and "-" or "+", math.abs(whole), text))
  end
  -- Advances a second at a time for up to `limit` s (or until done(state)), recording the
  -- changes of the check's verdict, its checkers and the DNS answer. Returns the state.
  function rec.watch(o, state, limit, done, tick)
    local stop = sim:now() + limit
    while sim:now() < stop and not (done and done(state)) do
      sim:advance(1)
      local new = observe(sim, o)
      if new.failing ~= state.failing then
        rec.event("checker_results", "checkers whose last request failed: %d of %d",
          new.failing, new.n or 0)
      end
      if new.up ~= state.up and new.up and state.up then
        rec.event("checkers", "checkers reporting healthy: %d of %d", new.up, new.n)
      end
      if new.healthy ~= state.healthy then
        rec.event(new.healthy and "check_healthy" or "check_unhealthy", "health check %s (%s)",
          new.healthy and "HEALTHY" or "UNHEALTHY", tostring(new.last))
      end
      if new.dns ~= state.dns then
        rec.event("dns_" .. new.dns, "DNS %s → %s (%s ALB)", o.app_dns_name, norm(new.answer),
          new.dns)
      end
      if new.fail_open ~= state.fail_open then
        rec.event(new.fail_open and "fail_open" or "fail_open_end", new.fail_open
          and "no record healthy: Route 53 fails open and answers as if all were healthy"
          or "a record is healthy again")
      end
      if tick then tick(new) end
      state = new
    end
    return state
  end
  function rec.first(kind, after)
    for _, e in ipairs(rec.events) do
      if e.kind == kind and e.t >= (after or 0) then return e.t end
    end
  end
  return rec
end

-- Waits for the steady state (check healthy, DNS on the primary, no fault): error otherwise.
local function steady(sim, o, limit)
  local t0 = sim:now()
  local st = observe(sim, o)
  while not (st.healthy and st.dns == "primary") and sim:now() - t0 < (limit or 300) do
    sim:advance(1)
    st = observe(sim, o)
  end
  if not (st.healthy and st.dns == "primary") then
    error(("fo.drill: the stack is not in its steady state after %ds (health check %s, DNS "
      .. "answer %s): apply the recipe first"):format(math.floor(sim:now() - t0),
      st.healthy and "healthy" or "unhealthy", st.dns), 0)
  end
  return st
end

local function interval_of(sim, o)
  local db = sim.store:db(sim.account, "global", "route53")
  local hc = db.health_checks and db.health_checks[o.health_check_id]
  local cfg = hc and hc.HealthCheckConfig or {}
  return cfg.RequestInterval or 30, cfg.FailureThreshold or 3
end

-------------------------------------------------------------------------------
-- Scenarios: each returns a result {scenario=, events=, ok=, problems=, ...}

local S = {}

-- Random phase: N seeded runs of a regional outage.
function S.phase(sim, o, opts, say)
  local rng = require "fo.sim.rng"
  local interval, threshold = interval_of(sim, o)
  local runs, seed = opts.runs or M.DEFAULT_RUNS, opts.seed or M.DEFAULT_SEED
  local res = { runs = {}, interval = interval, threshold = threshold, seed = seed }
  say(("%d runs (seed %d): each checker region on its own phase in the %ds interval, the "
    .. "outage at a random moment; detection = the check turning UNHEALTHY."):format(runs, seed,
    interval))
  for k = 1, runs do
    steady(sim, o)
    local r = rng.new(rng.mix(seed * 1000003 + k))
    local offsets = {}
    for i = 1, 8 do offsets[i] = r:float() * interval end
    local regions = sim:set_checker_phases(o.health_check_id, offsets)
    for i = #regions + 1, #offsets do offsets[i] = nil end
    sim:advance(interval + r:float() * interval) -- every checker past its new phase once
    local st = observe(sim, o)
    local t0 = sim:now()
    -- when each checker next evaluates, from the start of the outage
    local due = {}
    for i, c in ipairs(sim:health_check_status(o.health_check_id).checkers or {}) do
      due[i] = c.next - t0
    end
    sim:set_outage(o.primary_region, true)
    local first_checker, dns
    while st.healthy and sim:now() - t0 < 3 * threshold * interval do
      sim:advance(1)
      st = observe(sim, o)
      if not first_checker and st.up and st.up < st.n then first_checker = sim:now() - t0 end
      if not dns and st.dns == "standby" then dns = sim:now() - t0 end
    end
    local detection = st.changed_at and not st.healthy and st.changed_at - t0 or nil
    sim:set_outage(o.primary_region, false)
    steady(sim, o)
    res.runs[k] = { detection = detection, dns = dns, first_checker = first_checker,
      offsets = offsets, due = due }
    say(("  run %2d: first checker UNHEALTHY at %s, check UNHEALTHY at %s, DNS → standby at %s")
      :format(k, first_checker and ("%ds"):format(first_checker) or "never",
        detection and ("%.1fs"):format(detection) or "never", dns and ("%ds"):format(dns) or "never"))
  end
  local ds, dn = {}, {}
  for _, run in ipairs(res.runs) do
    ds[#ds + 1] = run.detection
    dn[#dn + 1] = run.dns
  end
  table.sort(ds)
  res.detection = { min = ds[1], median = median(ds), max = ds[#ds], n = #ds }
  res.dns_switch = { min = math.min(table.unpack(dn)), median = median(dn),
    max = math.max(table.unpack(dn)) }
  local lo, hi = (threshold - 1) * interval, threshold * interval
  res.window = { lo, hi }
  res.problems = {}
  if #ds < runs then res.problems[#res.problems + 1] = ("%d of %d runs never detected")
    :format(runs - #ds, runs) end
  if ds[1] and not (ds[1] > lo and ds[#ds] <= hi) then
    res.problems[#res.problems + 1] = ("detection outside (%d, %d] s: %.1f..%.1f"):format(lo, hi,
      ds[1], ds[#ds])
  end
  return res
end

-- One AZ of the primary down.
function S.az(sim, o, opts, say)
  local rec = recorder(sim, say)
  local h0, n0, zones = capacity(sim, o, "primary")
  local azs = {}
  for az in pairs(zones) do azs[#azs + 1] = az end
  table.sort(azs)
  local az = opts.az or azs[1]
  local res = { az = az, capacity_before = h0, registered = n0 }
  local st = observe(sim, o)
  rec.t0 = sim:now()
  sim:set_fault(o.primary_region, "az", az)
  rec.event("fault", "%s down in %s (its instances stop answering; EC2 elsewhere runs)", az,
    o.primary_region)
  local low, most_failing = st.up, 0
  local cap = h0
  st = rec.watch(o, st, opts.hold or 120, nil, function(new)
    if new.up and (not low or new.up < low) then low = new.up end
    most_failing = math.max(most_failing, new.failing)
    local h = capacity(sim, o, "primary")
    if h ~= cap then
      rec.event("capacity", "primary healthy targets: %d of %d", h, n0)
      cap = h
    end
  end)
  res.capacity_during, res.lowest_healthy_checkers, res.checkers = cap, low, st.n
  res.most_checkers_failing = most_failing
  sim:set_fault(o.primary_region, "az", nil)
  rec.event("recovered", "%s back", az)
  st = rec.watch(o, st, 120, function() return capacity(sim, o, "primary") == h0 end)
  res.events, res.dns_switch = rec.events, rec.first("dns_standby")
  res.detection = rec.first("check_unhealthy")
  res.problems = {}
  if res.dns_switch or res.detection then
    res.problems[#res.problems + 1] = "the loss of one zone failed the region over"
  end
  if not (cap < h0) then res.problems[#res.problems + 1] = "capacity did not drop" end
  return res
end

-- A fault that should fail the region over (app, alb5xx): outage of `hold` s, then recovery.
local function failing(sim, o, opts, say, kind, value, what)
  local rec = recorder(sim, say)
  local h0 = capacity(sim, o, "primary")
  local st = observe(sim, o)
  rec.t0 = sim:now()
  sim:set_fault(o.primary_region, kind, value)
  rec.event("fault", "%s", what)
  local cap_low = h0
  st = rec.watch(o, st, opts.hold or 90, nil, function()
    local h = capacity(sim, o, "primary")
    if h ~= cap_low and h < h0 then
      rec.event("capacity", "primary healthy targets: %d", h)
      cap_low = h
    end
  end)
  local res = { capacity_before = h0, capacity_during = cap_low }
  res.detection, res.dns_switch = rec.first("check_unhealthy"), rec.first("dns_standby")
  local t_end = sim:now() - rec.t0
  sim:set_fault(o.primary_region, kind, nil)
  rec.event("recovered", "fault ended")
  st = rec.watch(o, st, 300, function(s) return s.healthy and s.dns == "primary" end)
  res.failback = { detection = rec.first("check_healthy", t_end) and rec.first("check_healthy", t_end) - t_end,
    dns = rec.first("dns_primary", t_end) and rec.first("dns_primary", t_end) - t_end }
  res.events = rec.events
  local _, threshold = interval_of(sim, o)
  local interval = interval_of(sim, o)
  res.problems = {}
  if not (res.detection and res.detection <= threshold * interval) then
    res.problems[#res.problems + 1] = ("health check unhealthy within %ds (got %s)")
      :format(threshold * interval, tostring(res.detection))
  end
  if not (res.dns_switch and res.detection and res.dns_switch <= res.detection) then
    res.problems[#res.problems + 1] = "DNS answers with the standby at detection at the latest"
  end
  return res
end

function S.app(sim, o, opts, say)
  return failing(sim, o, opts, say, "app", true, ("the application in %s answers 500 on every "
    .. "path (its health path too); EC2 and the instances run"):format(o.primary_region))
end

function S.alb5xx(sim, o, opts, say)
  local res = failing(sim, o, opts, say, "alb_5xx", 502, ("the primary ALB answers 502 to every "
    .. "request; its targets stay healthy"):format())
  if res.capacity_during < res.capacity_before then
    res.problems[#res.problems + 1] = "targets turned unhealthy (the fault is the ALB's)"
  end
  return res
end

-- The standby down first, then the primary: fail-open.
S["standby-down"] = function(sim, o, opts, say)
  local rec = recorder(sim, say)
  local st = observe(sim, o)
  local standby = o.standby_region
  if not standby then
    local _, region = target_group(sim, o, "standby")
    standby = region
  end
  rec.t0 = sim:now() + 60 -- times from the primary's outage, a minute later
  sim:set_outage(standby, true)
  rec.event("standby_down", "%s (standby) down", standby)
  st = rec.watch(o, st, 60)
  sim:set_outage(o.primary_region, true)
  rec.event("outage", "%s (primary) down too", o.primary_region)
  local served_down = 0
  st = rec.watch(o, st, opts.hold or 120, nil, function(new)
    if new.dns == "primary" then served_down = served_down + 1 end
  end)
  local res = { events = rec.events, detection = rec.first("check_unhealthy"),
    dns_switch = rec.first("dns_standby"), fail_open = rec.first("fail_open"),
    answer_during = st.dns, seconds_primary_answered = served_down }
  sim:set_outage(o.primary_region, false)
  sim:set_outage(standby, false)
  rec.event("recovered", "both regions back")
  rec.watch(o, st, 300, function(s) return s.healthy and s.dns == "primary" and not s.fail_open end)
  res.events = rec.events
  res.problems = {}
  if not res.fail_open then res.problems[#res.problems + 1] = "Route 53 did not fail open" end
  if res.answer_during ~= "primary" then
    res.problems[#res.problems + 1] = "fail-open answers by weight: the primary (weight 100)"
  end
  return res
end

-- Down `down` s, up `up` s, `cycles` times: what failback without a hold-down costs.
function S.flapping(sim, o, opts, say)
  local rec = recorder(sim, say)
  local flap = { down = opts.down or M.FLAP.down, up = opts.up or M.FLAP.up,
    cycles = opts.cycles or M.FLAP.cycles }
  local st = observe(sim, o)
  local switches, served_failing, served_standby_healthy = 0, 0, 0
  local down = false
  -- each second counts with the answer DNS gave at its start
  local function tick(new)
    if down and st.dns == "primary" then served_failing = served_failing + 1 end
    if not down and st.dns == "standby" then served_standby_healthy = served_standby_healthy + 1 end
    if new.dns ~= st.dns then switches = switches + 1 end
    st = new
  end
  for c = 1, flap.cycles do
    down = true
    sim:set_outage(o.primary_region, true)
    rec.event("outage", "cycle %d: %s down for %ds", c, o.primary_region, flap.down)
    rec.watch(o, st, flap.down, nil, tick)
    down = false
    sim:set_outage(o.primary_region, false)
    rec.event("recovered", "cycle %d: %s up for %ds", c, o.primary_region, flap.up)
    rec.watch(o, st, flap.up, nil, tick)
  end
  local res = { flap = flap, dns_switches = switches, seconds_failing_region_answered = served_failing,
    seconds_standby_while_primary_up = served_standby_healthy, events = rec.events,
    hold_minutes = tonumber(o.failback_hold_minutes) or 0, problems = {} }
  -- the last recovery: when DNS is back on the primary for good
  local last_up = sim:now() - rec.t0 - flap.up
  if st.dns ~= "primary" then
    rec.watch(o, st, 900 + 60 * res.hold_minutes, function(s) return s.dns == "primary" end, tick)
  end
  local back = rec.first("dns_primary", last_up)
  res.failback_after_last_recovery = back and back - last_up
  res.events = rec.events
  if not back then res.problems[#res.problems + 1] = "DNS never came back to the primary" end
  return res
end

-- The primary unreachable from the first `k` checker regions only (opts.unreachable).
function S.checkers(sim, o, opts, say)
  local rec = recorder(sim, say)
  local st = observe(sim, o)
  local hc = sim:health_check_status(o.health_check_id)
  local regions = {}
  for i, c in ipairs(hc.checkers or {}) do regions[i] = c.region end
  local res = { steps = {}, checkers = #regions, problems = {} }
  local interval, threshold = interval_of(sim, o)
  for k = 1, #regions do
    local cut = { table.unpack(regions, 1, k) }
    sim:set_fault(o.primary_region, "checkers", cut)
    rec.event("fault", "primary unreachable from %d of %d checker regions (%s)", k, #regions,
      table.concat(cut, ", "))
    st = rec.watch(o, st, (threshold + 1) * interval)
    res.steps[k] = { unreachable = k, healthy_checkers = st.up, healthy = st.healthy,
      dns = st.dns }
  end
  sim:set_fault(o.primary_region, "checkers", nil)
  rec.event("recovered", "every checker region reaches the primary again")
  st = rec.watch(o, st, 300, function(s) return s.healthy and s.dns == "primary" end)
  res.events = rec.events
  for k, step in ipairs(res.steps) do
    if step.healthy ~= ((#regions - k) > 0.18 * #regions) then
      res.problems[#res.problems + 1] = ("%d of %d checkers healthy: the check should be %s")
        :format(#regions - k, #regions, step.healthy and "unhealthy" or "healthy")
    end
  end
  return res
end

--- Runs scenario `name` on `sim` for a stack with outputs `o` (opts: runs, seed, az, hold,
--- down, up, cycles, print). The real clock is frozen under the virtual one meanwhile.
function M.run(sim, o, name, opts)
  opts = opts or {}
  local fn = S[name]
  if not fn then
    error(("fo.drill: unknown scenario %s (use %s)"):format(tostring(name),
      table.concat(M.NAMES, ", ")), 0)
  end
  local say = opts.print or function() end
  return require("fo.drill").frozen(sim, function()
    steady(sim, o)
    -- like the region drill, the fault starts right after an evaluation of the check (the
    -- worst case for detection); the phase scenario draws its own moments
    local hc = sim:health_check_status(o.health_check_id)
    if hc and hc.next and hc.next > sim:now() then sim:advance(hc.next - sim:now()) end
    local res = fn(sim, o, opts, say)
    res.scenario = name
    res.ok = #res.problems == 0
    return res
  end)
end

local function secs(t)
  if not t then return "never" end
  if t == math.floor(t) then return ("%ds"):format(t) end
  return ("%.1fs"):format(t)
end

--- The summary lines of a scenario's result.
function M.summary(res)
  local l = {}
  local n = res.scenario
  if n == "phase" then
    local d = res.detection
    l[#l + 1] = ("Detection over %d runs: min %s, median %s, max %s (window %d–%d s: the third "
      .. "failed check of the checker that tips the 18%% rule)"):format(d.n, secs(d.min),
      secs(d.median), secs(d.max), res.window[1], res.window[2])
    l[#l + 1] = ("DNS switch to the standby: min %s, median %s, max %s"):format(
      secs(res.dns_switch.min), secs(res.dns_switch.median), secs(res.dns_switch.max))
  elseif n == "az" then
    l[#l + 1] = ("%s down: primary capacity %d → %d healthy targets; health check %s, DNS %s")
      :format(res.az, res.capacity_before, res.capacity_during,
        res.detection and ("UNHEALTHY at " .. secs(res.detection)) or "stayed HEALTHY",
        res.dns_switch and ("switched at " .. secs(res.dns_switch)) or "stayed on the primary")
    l[#l + 1] = ("Checkers whose request reached the lost zone's target: up to %d of %s; "
      .. "checkers reporting healthy: at least %s of %s (the check stays healthy while more "
      .. "than 18%% do)"):format(res.most_checkers_failing, tostring(res.checkers),
      tostring(res.lowest_healthy_checkers), tostring(res.checkers))
  elseif n == "app" or n == "alb5xx" then
    l[#l + 1] = ("Detection: %s; DNS switch to the standby: %s; primary healthy targets %d → %d")
      :format(secs(res.detection), secs(res.dns_switch), res.capacity_before, res.capacity_during)
    l[#l + 1] = ("Failback: health check healthy %s after the fault ended, DNS back %s")
      :format(secs(res.failback.detection), secs(res.failback.dns))
  elseif n == "standby-down" then
    l[#l + 1] = ("Primary health check UNHEALTHY at %s; no record healthy from %s: Route 53 "
      .. "fails open and answers with the %s (weight 100) — %ds of DNS answers with a region "
      .. "that is down"):format(secs(res.detection), secs(res.fail_open), res.answer_during,
      res.seconds_primary_answered)
  elseif n == "flapping" then
    l[#l + 1] = ("%d cycles of %ds down / %ds up: %d DNS switches; DNS answered with the failing "
      .. "region for %ds, with the standby while the primary was up for %ds"):format(
      res.flap.cycles, res.flap.down, res.flap.up, res.dns_switches,
      res.seconds_failing_region_answered, res.seconds_standby_while_primary_up)
    l[#l + 1] = ("Failback after the last recovery: %s (%s)"):format(
      secs(res.failback_after_last_recovery), res.hold_minutes > 0
        and ("failback hold-down of %d minutes"):format(res.hold_minutes)
        or "no hold-down: Route 53 fails back after 3 good checks")
    l[#l + 1] = "(clients caching the 60 s alias answer add up to a minute per switch)"
  elseif n == "checkers" then
    local parts = {}
    for _, s in ipairs(res.steps) do
      parts[#parts + 1] = ("%d unreachable → %s"):format(s.unreachable, s.healthy and "HEALTHY" or "UNHEALTHY")
    end
    l[#l + 1] = ("Of %d checkers: %s"):format(res.checkers, table.concat(parts, ", "))
  end
  l[#l + 1] = res.ok and "Scenario passed." or ("Scenario FAILED: " .. table.concat(res.problems, "; "))
  return l
end

return M
