-- The drill's traffic part, between fo.drill and its model (fo.drill.traffic): writes the
-- clients' sessions before the outage (fo.drill.sessions), starts the model at the outage,
-- feeds it every second the drill watches, prints its decisions in the drill's timeline,
-- checks what it measured against the promises (client-visible recovery ≤ detection +
-- TTL, the standby at the primary's capacity within the modelled delays, sessions lost ≤
-- writes inside the lag window), writes the summary lines and draws the picture.
local traffic = require "fo.drill.traffic"
local world = require "fo.drill.world"
local sessions = require "fo.drill.sessions"

local M = {}

--- Seconds the outage goes on once the standby is at the primary's capacity (the picture
--- shows it serving at full capacity).
M.AFTER = 60

--- A hook for one drill run on `sim`: nil when opts.traffic is false. Its methods:
--- outage(t), recovered(t), tick(obs) (after each virtual second), settled(), result().
function M.start(sim, o, opts)
  if opts.traffic == false then return nil end
  local p = opts.traffic_params
  if not p then
    local err
    p, err = traffic.params(opts.traffic)
    if not p then error("fo.drill: " .. err, 0) end
  end
  local say = opts.print or function() end
  local h = { sim = sim, o = o }
  local model
  local printed = 0
  local function flush()
    for i = printed + 1, #model.events do
      local e = model.events[i]
      if e.kind ~= "outage" and e.kind ~= "recovered" then
        local base = (model.recovered_at and model.recovered_at - model.t0) or 0
        say(("  t+%3ds  %s"):format(math.floor(e.t - base + 0.5), e.text))
      end
    end
    printed = #model.events
  end
  local setup
  local alarms = {}
  local function create(t0)
    setup = world.setup(sim, o, t0)
    model = traffic.new(p, setup)
    h.model = model
  end
  --- Before the outage (the clock right after a health-check evaluation, `interval` s
  --- apart): the clients write their sessions to the table in the primary for a whole
  --- session interval, a second at a time, with the replication lag on; the clock ends a
  --- whole number of intervals later, so still right after an evaluation.
  function h.before(interval)
    if not o.table_name then return end
    local n = math.ceil((p.session_interval + 1) / interval) * interval
    local t0 = sim:now() + n
    create(t0)
    rawset(sim, "_replication_lag", p.replication_lag)
    local put = sessions.writer(sim, o, setup.names.primary)
    if not put then return end
    model.sessions_table = o.table_name
    -- writes half a second past each whole second, `d - 0.5` s before the outage
    sim:advance(0.5)
    for d = n, 1, -1 do
      if d < n then sim:advance(1) end
      for i, c in ipairs(model.clients) do
        if d >= c.last and (d - c.last) % p.session_interval == 0 then put(i, d) end
      end
    end
    model.read_session = sessions.reader(sim, o, setup.names.standby)
    sim:advance(0.5)
  end
  function h.outage(t)
    if not model or math.abs(model.t0 - t) > 1e-6 then create(t) end
    model:outage(t)
    printed = #model.events
    -- the simulator's metrics plane publishes the CPU the clients cause, so that the
    -- groups' own target tracking alarms (fo.sim's, as Auto Scaling creates them) see it
    rawset(sim, "_cpu_load", function(region, group, _, from, to)
      for side, r in pairs(setup.regions) do
        if r.region == region and r.group == group then return model:cpu(side, from, to) end
      end
      return nil
    end)
    for side, r in pairs(setup.regions) do alarms[side] = world.alarm_state(sim, r.region, r.alarm_high) end
  end
  function h.stop()
    rawset(sim, "_cpu_load", nil)
    rawset(sim, "_replication_lag", nil)
  end
  -- transitions of the simulator's target tracking high alarms, in the timeline
  local function watch_alarms()
    for side, r in pairs(setup.regions) do
      local st = world.alarm_state(sim, r.region, r.alarm_high)
      if st ~= alarms[side] and (st == "ALARM" or alarms[side] == "ALARM") then
        model:event(sim:now(), "sim_alarm", ("CloudWatch alarm %s: %s → %s"):format(r.alarm_high,
          tostring(alarms[side]), tostring(st)), side)
      end
      alarms[side] = st
    end
  end
  function h.recovered(t) if model then model:recovered(t); printed = #model.events end end
  function h.tick(obs)
    if not model then return end
    model:tick(sim:now(), world.now(sim, o, obs))
    watch_alarms()
    flush()
  end
  -- the outage lasts until the standby has served at full capacity for a minute
  function h.settled()
    if not model then return true end
    if model:enough(sim:now()) then return true end
    if model.restored then return sim:now() - model.outage_at >= model.restored + M.AFTER end
    return model:settled(sim:now())
  end
  function h.result()
    if not model then return nil end
    local r = model:result()
    r.events, r.series = model.events, model.series
    return r
  end
  return h
end

local function secs(t) return t and ("%ds"):format(math.floor(t + 0.5)) or "never" end

--- The promises the traffic figures must keep, for drill result `res` (res.traffic set):
--- a list of problems (empty: kept).
function M.problems(res)
  local tr, out = res.traffic, {}
  if not tr then return out end
  local switch = res.dns_switch or res.detection
  if tr.recovery.max and switch then
    local limit = math.max(res.detection or switch, switch) + tr.ttl
    if tr.recovery.max > limit then
      out[#out + 1] = ("client-visible recovery within detection + TTL (%s; slowest client %s)")
        :format(secs(limit), secs(tr.recovery.max))
    end
  elseif tr.recovery.n + tr.ignoring.n == 0 and tr.clients > 0 then
    out[#out + 1] = "clients recover during the outage (none did)"
  end
  local c = tr.capacity
  if c.enough then
    -- the standby serves everything under its target: nothing to restore
  elseif not c.restored then
    out[#out + 1] = ("the standby reaches the primary's capacity (%d instances; it has %d, maximum "
      .. "reached or too slow)"):format(c.primary, c.standby_final)
  elseif c.loaded and c.restored - c.loaded > c.bound then
    out[#out + 1] = ("the standby at the primary's capacity within %s of its CPU passing the target (took %s)")
      :format(secs(c.bound), secs(c.restored - c.loaded))
  end
  local s = tr.sessions
  if s and s.lost > s.writes_in_window then
    out[#out + 1] = ("sessions lost (%d) ≤ writes inside the replication lag (%d)")
      :format(s.lost, s.writes_in_window)
  end
  return out
end

--- The summary lines of the traffic figures.
function M.summary(res)
  local tr = res.traffic
  if not tr then return {} end
  local rq, c, s = tr.requests, tr.capacity, tr.sessions
  local ignoring = tr.ignoring.n > 0
    and ("%d clients ignoring the TTL: slowest %s"):format(tr.ignoring.n, secs(tr.ignoring.max)) or ""
  local lines = {
    tr.recovery.n == 0 and ("Client-visible recovery: no client honours the TTL; " .. ignoring) or
    ("Client-visible recovery over %d clients (TTL %ds): p50 %s, p99 %s, slowest %s after the outage%s")
      :format(tr.recovery.n, tr.ttl, secs(tr.recovery.p50), secs(tr.recovery.p99),
        secs(tr.recovery.max), ignoring ~= "" and "; " .. ignoring or ""),
    ("Errors served: %d of %d requests failed (%d timed out at the failed region, %d shed for "
      .. "capacity)"):format(math.floor(rq.failed), math.floor(rq.failed + rq.served),
        math.floor(rq.timed_out), math.floor(rq.shed)),
    c.enough and ("Capacity: the standby serves all its load under the %g%% CPU target with %d "
      .. "instance%s (the primary runs %d): no scale-out needed"):format(c.target, c.standby_final,
        c.standby_final == 1 and "" or "s", c.primary) or
    not c.restored and ("Capacity NOT restored: the standby has %d instance%s (desired) when the "
      .. "outage ends, the primary ran %d"):format(c.standby_final, c.standby_final == 1 and "" or "s",
        c.primary) or
    ("Capacity restored: the standby serves with %d instances (the primary's %d) %s after the "
      .. "outage, %s after its CPU passed the target (bound %s: %d × %ds datapoints + %ds period, boot %ds, "
      .. "target healthy %ds%s)"):format(c.standby_final, c.primary, secs(c.restored),
        secs(c.restored and c.loaded and c.restored - c.loaded), secs(c.bound), c.datapoints,
        c.metric_period, c.metric_period, c.boot, c.register,
        c.steps > 1 and (", then %d more step%s of boot + warm-up %ds + a datapoint"):format(c.steps - 1,
          c.steps == 2 and "" or "s", c.warmup) or ""),
  }
  if c.sized then
    table.insert(lines, 3, ("Load: %d clients × %g req/s need %d primary instances under the %g%% "
      .. "target (the stack runs %d; the drill starts the primary at %d, as its target tracking "
      .. "would hold it)"):format(tr.clients, tr.params.rate, c.sized.to, c.target, c.sized.from,
        c.sized.to))
  end
  if s then
    lines[#lines + 1] = ("Sessions lost: %d of %d read from the standby (writes inside the %gs "
      .. "replication lag: %d, one every %gs per client)"):format(s.lost, s.read, s.lag,
      s.writes_in_window, s.interval)
  end
  return lines
end

--- After the drill: draws opts.plot (SVG) and says where; then drops the per-second series
--- from the result (its JSON event carries the figures, not the series).
function M.finish(res, opts, print_line)
  if opts.plot and res.traffic then
    local f, err = io.open(opts.plot, "w")
    if not f then error(("--plot %s: cannot write it (%s)"):format(opts.plot, err), 0) end
    f:write(require("fo.drill.plot").svg(res, "Failover drill: primary region outage"))
    f:close()
    print_line(("Picture: %s"):format(opts.plot))
  end
  if res.traffic then res.traffic.series = nil end
end

return M
