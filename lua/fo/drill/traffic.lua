-- The drill's traffic, capacity and data model: a client population that resolves the app
-- name through Route 53 (keeping each answer for its TTL) and sends requests to the region
-- it got; each region serves them while it has healthy targets and capacity; CPU follows
-- the load; target tracking scales the standby out; sessions written in the primary reach
-- the standby after a replication lag. One step per virtual second (fo.drill calls tick).
--
-- AWS facts the model relies on:
-- * Alias records to an ALB answer with the ALB's TTL, 60 s (Route 53 developer guide).
-- * Target tracking (ASGAverageCPUUtilization) owns an AlarmHigh of 3 datapoints in 3
--   periods above the target; while it is in ALARM the policy sets the desired capacity
--   to ceil(counted instances × metric / target) when that is more than the current
--   desired. EC2 Auto Scaling's target tracking uses no cooldown: an instance in its
--   warm-up (EstimatedInstanceWarmup, else the group's DefaultInstanceWarmup, else its
--   DefaultCooldown, 300 s) neither counts in the metric nor as capacity already added.
-- * An instance serves once it is InService (boot) and its target group has seen
--   HealthyThresholdCount successful checks (× HealthCheckIntervalSeconds).
-- * EC2 publishes CPUUtilization every minute with detailed monitoring, every 5 minutes
--   with basic monitoring (metric_period): a launch template's Monitoring.Enabled true is
--   detailed, anything else basic (EC2 API reference, LaunchTemplatesMonitoringRequest).
-- * DynamoDB global tables replicate asynchronously, typically within a second: writes
--   made in the failed region inside the lag before it failed are not in the standby.
local rng = require "fo.sim.rng"

local M = {}

--- The knobs (--traffic key=value): default, what it means. Defaults are documented in
--- docs/runbook.md ("The failover drill").
M.KNOBS = {
  clients = { 1000, "clients using the app" },
  rate = { 1, "requests per second per client" },
  ttl = { nil, "seconds a client keeps a DNS answer (default: the answer's TTL, 60 for an alias to an ALB)" },
  ignore_ttl = { 0.02, "fraction of clients that keep an answer longer than its TTL" },
  stale_for = { 300, "seconds those clients keep an answer" },
  capacity = { 900, "requests per second one instance serves at 100% CPU" },
  idle_cpu = { 2, "CPU percent of an instance without load" },
  boot = { 75, "seconds from launch to InService" },
  register = { nil, "seconds from InService to healthy in the target group (default: the target group's HealthyThresholdCount x interval)" },
  warmup = { nil, "instance warm-up seconds (default: the policy's, else the group's)" },
  target = { nil, "target tracking CPU target (default: the group's policy)" },
  metric_period = { nil, "seconds per CPU datapoint (default: the group's launch template's, 60 with detailed monitoring, 300 basic)" },
  datapoints = { 3, "datapoints above the target before scaling out (the policy's AlarmHigh)" },
  session_interval = { 30, "seconds between a client's session writes" },
  replication_lag = { 1, "seconds a write takes to reach the other region's replica" },
  seed = { 1, "seed of the clients' phases" },
}

local ORDER = { "clients", "rate", "ttl", "ignore_ttl", "stale_for", "capacity", "idle_cpu", "boot",
  "register", "warmup", "target", "metric_period", "datapoints", "session_interval",
  "replication_lag", "seed" }
M.ORDER = ORDER

--- The knobs from text overrides ({key = "value"}): a table of numbers, or nil and a
--- message naming the key and the fix.
function M.params(overrides)
  local p = {}
  for _, k in ipairs(ORDER) do p[k] = M.KNOBS[k][1] end
  for k, v in pairs(overrides or {}) do
    if not M.KNOBS[k] then
      return nil, ("--traffic %s: unknown knob (use one of %s)"):format(k, table.concat(ORDER, ", "))
    end
    local n = tonumber(v)
    if not n or n < 0 or n ~= n or n == math.huge then
      return nil, ("--traffic %s=%s: expected a number ≥ 0"):format(k, tostring(v))
    end
    if k == "ignore_ttl" and n > 1 then
      return nil, ("--traffic ignore_ttl=%s: a fraction from 0 to 1"):format(v)
    end
    if (k == "clients" or k == "datapoints") and (n < 1 or math.floor(n) ~= n) then
      return nil, ("--traffic %s=%s: expected a whole number ≥ 1"):format(k, v)
    end
    if (k == "capacity" or k == "metric_period" or k == "session_interval" or k == "target") and n == 0 then
      return nil, ("--traffic %s=%s: must be more than 0"):format(k, v)
    end
    p[k] = n
  end
  return p
end

local REGIONS = { "primary", "standby" }
M.REGIONS = REGIONS

--- A model for `setup`: { t0 = virtual time, ttl =, regions = { primary = {desired=,
--- max=, warmup=, register=, target=, metric_period=}, standby = {...} } } with knobs `p`
--- (M.params). A region's metric_period defaults to basic monitoring's 300 s.
function M.new(p, setup)
  local self = setmetatable({ p = p, t0 = setup.t0, events = {}, series = { t = {} },
    regions = {}, clients = {} }, { __index = M })
  local ttl = p.ttl or setup.ttl or 60
  self.ttl = ttl
  local r = rng.new(rng.seed_of(p.seed))
  for _, name in ipairs(REGIONS) do
    local cfg = setup.regions[name]
    local g = { name = name, desired = cfg.desired, max = math.max(cfg.max or cfg.desired, cfg.desired),
      warmup = p.warmup or cfg.warmup or 300, register = p.register or cfg.register or 20,
      target = p.target or cfg.target or 60, metric_period = p.metric_period or cfg.metric_period
        or 300, instances = {}, points = {}, alarm = false,
      window = { sum = 0, n = 0 } }
    -- The primary carries the whole load before the outage: its target tracking policy
    -- would hold it at the size that keeps CPU under the target (within its maximum).
    if name == "primary" then
      local per = p.capacity * math.max(1, g.target - p.idle_cpu) / 100
      local need = math.min(g.max, math.ceil(p.clients * p.rate / per - 1e-9))
      if need > g.desired then
        self.sized = { from = g.desired, to = need }
        g.desired = need
      end
    end
    -- the instances running before the drill are past boot and warm-up
    for _ = 1, g.desired do
      g.instances[#g.instances + 1] = { launched = -math.huge, in_service = -math.huge,
        serving = -math.huge, counted = -math.huge }
    end
    self.regions[name] = g
    self.series[name] = { healthy = {}, served = {}, failed = {}, in_service = {}, desired = {},
      cpu = {} }
  end
  self.series.dns = {}
  -- every client has resolved the app name some time in the last TTL: expiries spread
  for i = 1, p.clients do
    local ignores = r:float() < p.ignore_ttl
    -- its last session write was `last` - 0.5 s before the outage (`last` from 1 to the
    -- interval: the drill writes half a second past each whole second)
    self.clients[i] = { region = "primary", ignores = ignores,
      expires = setup.t0 + r:float() * (ignores and p.stale_for or ttl),
      last = 1 + math.floor(r:float() * p.session_interval) }
  end
  self.totals = { served = 0, failed = 0, shed = 0, timed_out = 0 }
  self.initial = { primary = #self.regions.primary.instances,
    standby = #self.regions.standby.instances }
  return self
end

local function serving(g, t)
  local n = 0
  for _, i in ipairs(g.instances) do if t >= i.serving then n = n + 1 end end
  return n
end

local function in_service(g, t)
  local n = 0
  for _, i in ipairs(g.instances) do if t >= i.in_service then n = n + 1 end end
  return n
end

function M:event(t, kind, text, region)
  self.events[#self.events + 1] = { t = t - self.t0, kind = kind, text = text, region = region }
end

--- The outage of the primary starts at virtual time t: the sessions written inside the
--- replication lag before it are not in the standby.
function M:outage(t)
  self.outage_at = t
  local p, window, writes = self.p, 0, 0
  for _, c in ipairs(self.clients) do
    -- the client's writes last - 0.5 + k × interval seconds before t; those in [t - lag, t)
    local age = c.last - 0.5
    local n = p.replication_lag >= age
      and math.floor((p.replication_lag - age) / p.session_interval) + 1 or 0
    c.unreplicated = n > 0
    writes = writes + n
    if n > 0 then window = window + 1 end
  end
  self.sessions = { writes_in_window = writes, clients_in_window = window, lost = 0, read = 0 }
  self:event(t, "outage", "primary down")
end

--- The outage ends at t.
function M:recovered(t)
  self.recovered_at = t
  self:event(t, "recovered", "primary back")
end

-- Target tracking on one region at a datapoint boundary t.
local function scale(self, g, t, point)
  g.points[#g.points + 1] = point
  local p = self.p
  local n = #g.points
  local high = n >= p.datapoints
  for k = n - p.datapoints + 1, n do
    if k < 1 or not g.points[k] or g.points[k] <= g.target then high = false end
  end
  if high ~= g.alarm then
    g.alarm = high
    self:event(t, high and "alarm_high" or "alarm_high_ok", ("%s CPU %s target %g%% for %d datapoints: "
      .. "target tracking alarm %s"):format(g.name, high and "above" or "back under", g.target,
      p.datapoints, high and "ALARM" or "OK"), g.name)
  end
  if not high then return end
  local counted = 0
  for _, i in ipairs(g.instances) do if t >= i.counted then counted = counted + 1 end end
  if counted == 0 then return end
  local want = math.min(g.max, math.ceil(counted * point / g.target - 1e-9))
  if want > g.desired then
    local from = g.desired
    for _ = from + 1, want do
      g.instances[#g.instances + 1] = { launched = t, in_service = t + p.boot,
        serving = t + p.boot + g.register, counted = t + p.boot + g.warmup }
    end
    g.desired = want
    self:event(t, "scale_out", ("%s scales out %d → %d (CPU %.0f%% of %d counted instance%s, target %g%%)")
      :format(g.name, from, want, point, counted, counted == 1 and "" or "s", g.target), g.name)
  end
end

--- One virtual second ending at t: world = { dns = "primary"|"standby"|"none" (Route 53's
--- answer now), up = {primary=, standby=} (the region answers: not out, healthy targets),
--- healthy = {primary=, standby=} (the records' health as Route 53 sees it) }.
function M:tick(t, world)
  local p = self.p
  local prev = self.last or self.t0
  self.last, self.world = t, world
  local demand = { primary = 0, standby = 0 }
  local outage = self.outage_at and t > self.outage_at
  for i, c in ipairs(self.clients) do
    if t >= c.expires and (world.dns == "primary" or world.dns == "standby") then
      c.region = world.dns
      c.expires = t + (c.ignores and p.stale_for or self.ttl)
    end
    demand[c.region] = demand[c.region] + p.rate
    if outage and not c.recovered and world.up[c.region] then
      c.recovered = t - self.outage_at
      if c.region == "standby" and self.sessions then
        -- it reads its session from the standby: from the table when the drill wrote them
        -- (self.read_session), else by the model
        self.sessions.read = self.sessions.read + 1
        local lost = c.unreplicated
        if self.read_session then lost = not self.read_session(i, c) end
        if lost then self.sessions.lost = self.sessions.lost + 1 end
      end
    end
  end
  local s = self.series
  s.t[#s.t + 1] = t - self.t0
  s.dns[#s.dns + 1] = world.dns
  for _, name in ipairs(REGIONS) do
    local g, d = self.regions[name], demand[name]
    local n = serving(g, t)
    local served, failed = 0, d
    if world.up[name] and n > 0 then
      served = math.min(d, n * p.capacity)
      failed = d - served
      self.totals.shed = self.totals.shed + failed
    else
      self.totals.timed_out = self.totals.timed_out + failed
    end
    self.totals.served, self.totals.failed = self.totals.served + served, self.totals.failed + failed
    -- CPU of a serving instance: idle plus its share of the demand (capped at 100)
    local cpu = n > 0 and world.up[name] and math.min(100, p.idle_cpu + 100 * d / n / p.capacity) or p.idle_cpu
    local sr = s[name]
    sr.healthy[#sr.healthy + 1] = world.healthy[name] and 1 or 0
    sr.served[#sr.served + 1] = served
    sr.failed[#sr.failed + 1] = failed
    sr.in_service[#sr.in_service + 1] = n
    sr.desired[#sr.desired + 1] = g.desired
    sr.cpu[#sr.cpu + 1] = cpu
    -- instances that came into service this second
    for _, i in ipairs(g.instances) do
      if i.serving <= t and i.serving > prev then
        self:event(t, "in_service", ("%s: a new instance serves (%d in service)"):format(name, n), name)
      end
    end
    if name == "standby" and outage and not self.restored and n >= self.initial.primary then
      self.restored = t - self.outage_at
      self:event(t, "capacity", ("standby at the primary's capacity: %d instances serving"):format(n), name)
    end
    -- the load needs more capacity from the first second the standby runs above its target
    if name == "standby" and cpu > g.target and not self.loaded and outage then
      self.loaded = t - self.outage_at
    end
    -- the standby carries its load without shedding, under the target: no scaling needed
    if name == "standby" and outage then
      if d > 0 and served >= d and cpu <= g.target then
        self.adequate_since = self.adequate_since or t
      else
        self.adequate_since = nil
      end
    end
    -- the CPU datapoint of the period ending at t
    g.window.sum, g.window.n = g.window.sum + cpu, g.window.n + 1
    if math.floor(t / g.metric_period) > math.floor(prev / g.metric_period) then
      local point = g.window.sum / g.window.n
      g.window.sum, g.window.n = 0, 0
      scale(self, g, t, point)
    end
  end
end

--- The average CPU of a serving instance of region `side` ("primary"/"standby") over the
--- virtual seconds in (from, to], nil before the model's first second.
function M:cpu(side, from, to)
  local s, sum, n = self.series, 0, 0
  for i = #s.t, 1, -1 do
    local at = self.t0 + s.t[i]
    if at <= from then break end
    if at <= to then sum, n = sum + s[side].cpu[i], n + 1 end
  end
  return n > 0 and sum / n or nil
end

--- True at t once the standby has reached the primary's capacity, or cannot: it is at its
--- maximum size with every instance serving, or it does not answer at all.
function M:settled(t)
  local g = self.regions.standby
  return self.restored ~= nil or (g.desired >= g.max and serving(g, t) == #g.instances)
    or self:enough(t) or (self.world ~= nil and not self.world.up.standby)
end

--- True at t when the standby has served all its load under the CPU target for longer than
--- target tracking's alarm looks back (it will not scale: it does not need to).
function M:enough(t)
  local p, g = self.p, self.regions.standby
  return self.adequate_since ~= nil and t - self.adequate_since >= (p.datapoints + 1) * g.metric_period
end

local function percentile(sorted, q)
  if #sorted == 0 then return nil end
  local k = math.max(1, math.ceil(q / 100 * #sorted))
  return sorted[k]
end

--- The figures: { clients =, recovery = {p50=, p99=, max=, n=}, ignoring = {n=, max=},
--- requests = {served=, failed=, timed_out=, shed=}, capacity = {restored=, loaded=,
--- bound=, primary=, standby_initial=, standby_final=}, sessions = {...}, ttl = }.
function M:result()
  local resp, ign = {}, { n = 0 }
  for _, c in ipairs(self.clients) do
    if c.recovered then
      if c.ignores then
        ign.n = ign.n + 1
        ign.max = math.max(ign.max or 0, c.recovered)
      else
        resp[#resp + 1] = c.recovered
      end
    end
  end
  table.sort(resp)
  local g, p = self.regions.standby, self.p
  -- the first step waits for the datapoints above the target (plus the period the load
  -- starts in); each further one for the last step's instances to boot and warm up (then
  -- counted) and a datapoint; the last step's instances then boot and turn healthy
  local steps = 0
  for _, e in ipairs(self.events) do if e.kind == "scale_out" and e.region == "standby" then steps = steps + 1 end end
  local bound = (p.datapoints + 1) * g.metric_period + p.boot + g.register
    + math.max(0, steps - 1) * (p.boot + g.warmup + g.metric_period)
  return {
    clients = #self.clients, ttl = self.ttl,
    recovery = { p50 = percentile(resp, 50), p99 = percentile(resp, 99), max = resp[#resp], n = #resp },
    ignoring = ign,
    requests = { served = self.totals.served, failed = self.totals.failed,
      timed_out = self.totals.timed_out, shed = self.totals.shed },
    capacity = { sized = self.sized, restored = self.restored, enough = self.restored == nil and self.last ~= nil
        and self:enough(self.last) or nil, loaded = self.loaded, bound = bound, steps = steps,
      primary = self.initial.primary, standby_initial = self.initial.standby,
      standby_final = g.desired, warmup = g.warmup, register = g.register, boot = p.boot,
      target = g.target, metric_period = g.metric_period, datapoints = p.datapoints },
    sessions = self.sessions and {
      writes_in_window = self.sessions.writes_in_window, lost = self.sessions.lost,
      read = self.sessions.read, lag = p.replication_lag, interval = p.session_interval,
      clients_in_window = self.sessions.clients_in_window,
      table = self.sessions_table } or nil,
    params = p,
  }
end

return M
