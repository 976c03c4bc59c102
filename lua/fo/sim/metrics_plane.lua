-- The metrics AWS services publish to CloudWatch on their own, sampled every minute of
-- virtual time into the region's CloudWatch store (fo.sim.metrics), with AWS's
-- namespaces, metric names and dimension sets (docs/simulator.md, "Metrics"):
--
-- * AWS/AutoScaling: the group metrics EnableMetricsCollection turned on (only those, only
--   while on), dimension AutoScalingGroupName.
-- * AWS/EC2: CPUUtilization of each running instance (InstanceId) and of each group
--   (AutoScalingGroupName, the average of its running instances): a steady idle value, or
--   the load of fo-run --drill's clients while they run (M.cpu).
-- * AWS/ApplicationELB: HealthyHostCount and UnHealthyHostCount per (LoadBalancer,
--   TargetGroup) and per (LoadBalancer, TargetGroup, AvailabilityZone), from ELBv2's own
--   target health; request metrics (RequestCount, HTTPCode_ELB_*, HTTPCode_Target_*,
--   TargetResponseTime) for the minutes with requests, and the only requests the
--   simulator sends through load balancers are Route 53 health checkers' (fo.sim.failover
--   records them in the ELBv2 state's `traffic`; the load balancer's own target health
--   checks are not requests, as AWS excludes them).
--
-- A sample taken at the minute boundary t describes the minute that just ended and is
-- stamped at its start (t - 60, or when the source appeared if later), as CloudWatch
-- stamps a one-minute datapoint; alarms evaluated at t see it. fo.sim.failover's clock job
-- calls M.publish when M.due says so (the next time is saved in the region's CloudWatch
-- state as plane_next).
local asg_state = require "fo.sim.asg_state"
local ctx_mod = require "fo.sim.ctx"
local metrics = require "fo.sim.metrics"

local M = {}

M.INTERVAL = 60
--- CPUUtilization (percent) of a running instance: the simulator runs no workload, unless
--- a load model says otherwise (M.cpu).
M.IDLE_CPU = 2.0

--- CPUUtilization of instance `inst` of group `group` in `region` over the minute [from, t):
--- a load model's (sim._cpu_load(region, group, inst, from, t), set while fo-run --drill's
--- traffic runs: its clients' load) or idle.
function M.cpu(sim, region, group, inst, from, t)
  local f = sim and rawget(sim, "_cpu_load")
  return f and f(region, group, inst, from, t) or M.IDLE_CPU
end
--- TargetResponseTime (seconds) of a request a target answers: the servers the
--- simulator reads from user data answer at once; this is a LAN round trip.
M.TARGET_RESPONSE_TIME = 0.002

--- Auto Scaling's group metrics and the value of each for group `g` (members: its
--- instances that are not Terminated). Warm pool metrics are left out (no warm pools).
local GROUP = {
  { "GroupMinSize", function(g) return g.MinSize end },
  { "GroupMaxSize", function(g) return g.MaxSize end },
  { "GroupDesiredCapacity", function(g) return g.DesiredCapacity end },
  { "GroupInServiceInstances", function(_, n) return n.InService end },
  { "GroupPendingInstances", function(_, n) return n.Pending end },
  { "GroupStandbyInstances", function(_, n) return n.Standby end },
  { "GroupTerminatingInstances", function(_, n) return n.Terminating end },
  { "GroupTotalInstances", function(_, n) return n.total end },
  -- every simulated instance weighs one capacity unit
  { "GroupInServiceCapacity", function(_, n) return n.InService end },
  { "GroupPendingCapacity", function(_, n) return n.Pending end },
  { "GroupStandbyCapacity", function(_, n) return n.Standby end },
  { "GroupTerminatingCapacity", function(_, n) return n.Terminating end },
  { "GroupTotalCapacity", function(_, n) return n.total end },
}

local function has_sources(r)
  local as, elb = r.autoscaling, r.elbv2
  return (as and next(as.groups or {}) ~= nil) or (elb and next(elb.load_balancers or {}) ~= nil)
end

--- When the region record `r` (store: account → region → services) is next due, or nil
--- when nothing in it publishes. A region that starts publishing is due at the next
--- minute boundary after `now`.
function M.due(sim, account, region, r, now)
  if region == "global" then return nil end
  if not has_sources(r) then
    -- nothing left: a source created later starts afresh, with no minutes to catch up on
    if r.cloudwatch then r.cloudwatch.plane_next = nil end
    return nil
  end
  local cw = r.cloudwatch or sim.store:db(account, region, "cloudwatch")
  if not cw.plane_next then
    cw.plane_next = (math.floor(now / M.INTERVAL) + 1) * M.INTERVAL
  end
  return cw.plane_next
end

local function counts(members)
  local n = { InService = 0, Pending = 0, Standby = 0, Terminating = 0, total = #members }
  for _, i in ipairs(members) do
    local s = i.LifecycleState or ""
    if s:match("^Pending") then n.Pending = n.Pending + 1
    elseif s:match("^Terminating") then n.Terminating = n.Terminating + 1
    elseif s:match("^Standby") or s:match("^EnteringStandby") then n.Standby = n.Standby + 1
    elseif s == "InService" then n.InService = n.InService + 1 end
  end
  return n
end

local function running(i)
  local s = i.LifecycleState or ""
  return s == "InService" or s:match("^Pending") or s:match("^Standby") ~= nil
end

local function publish_groups(sim, region, cw, asdb, t)
  local from = t - M.INTERVAL
  local names = {}
  for name in pairs(asdb.groups or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local g = asdb.groups[name]
    local members = asg_state.members(asdb, name)
    local dims = { { Name = "AutoScalingGroupName", Value = name } }
    if #(g.enabled_metrics or {}) > 0 and not g.delete_at then
      local on = {}
      for _, m in ipairs(g.enabled_metrics) do on[m] = true end
      local n = counts(members)
      local stamp = math.max(from, g.metrics_since or from)
      for _, spec in ipairs(GROUP) do
        if on[spec[1]] then
          metrics.put(cw, "AWS/AutoScaling", spec[1], dims, stamp, spec[2](g, n) + 0.0, "None")
        end
      end
    end
    -- EC2 publishes its instance metrics whatever Auto Scaling collects
    local cpu, first = {}, nil
    for _, i in ipairs(members) do
      if running(i) then
        local stamp = math.max(from, i.LaunchTime or from)
        local v = M.cpu(sim, region, name, i, from, t)
        metrics.put(cw, "AWS/EC2", "CPUUtilization", { { Name = "InstanceId", Value = i.InstanceId } },
          stamp, v, "Percent")
        cpu[#cpu + 1] = v
        first = math.min(first or stamp, stamp)
      end
    end
    if #cpu > 0 then
      metrics.put(cw, "AWS/EC2", "CPUUtilization", dims, first, metrics.statistic(cpu, "Average"),
        "Percent")
    end
  end
end

-- The dimension values of ELBv2 metrics: app/<name>/<id> and targetgroup/<name>/<id>.
function M.lb_dimension(arn) return arn:match(":loadbalancer/(.+)$") end
function M.tg_dimension(arn) return arn:match(":(targetgroup/.+)$") end

-- The code class of an HTTP status: "2XX" … "5XX".
local function class(code) return math.floor(code / 100) .. "XX" end

-- Request metrics of load balancer `lb` from the requests recorded before t, each summed
-- into the minute it fell in, with AWS's dimension sets: the load balancer's own answers
-- (HTTPCode_ELB_*) by LoadBalancer and LoadBalancer+AvailabilityZone; RequestCount,
-- HTTPCode_Target_* and TargetResponseTime also by TargetGroup+LoadBalancer and
-- TargetGroup+AvailabilityZone+LoadBalancer. The requests of an evaluation are spread
-- over the load balancer's zones (DNS hands out every node's address).
local function publish_requests(cw, elb, lb, t)
  local lb_arn = lb.desc.LoadBalancerArn
  local keep, sums, order = {}, {}, {}
  local zones = {}
  for _, az in ipairs(lb.desc.AvailabilityZones or {}) do zones[#zones + 1] = az.ZoneName end
  table.sort(zones)
  local function add(minute, name, dims, value, unit, sample)
    local key = minute .. "|" .. name .. "|" .. metrics.key("", name, dims)
    local e = sums[key]
    if not e then
      e = { minute = minute, name = name, dims = dims, unit = unit, sum = 0, samples = {} }
      sums[key] = e
      order[#order + 1] = key
    end
    if sample then e.samples[#e.samples + 1] = value else e.sum = e.sum + value end
  end
  for _, r in ipairs(elb.traffic or {}) do
    if r.lb ~= lb_arn then
      -- another load balancer's
    elseif r.t >= t then
      keep[#keep + 1] = r
    else
      local minute = math.floor(r.t / M.INTERVAL) * M.INTERVAL
      for j = 1, r.n do
        local lb_dims = { { Name = "LoadBalancer", Value = M.lb_dimension(lb_arn) } }
        local sets = { lb_dims }
        if #zones > 0 then
          sets[2] = { lb_dims[1], { Name = "AvailabilityZone", Value = zones[(j - 1) % #zones + 1] } }
        end
        local all = {}
        for _, d in ipairs(sets) do all[#all + 1] = d end
        if r.tg then
          for _, d in ipairs(sets) do
            local x = { { Name = "TargetGroup", Value = M.tg_dimension(r.tg) } }
            for _, y in ipairs(d) do x[#x + 1] = y end
            all[#all + 1] = x
          end
        end
        for _, d in ipairs(all) do
          if r.counted then add(minute, "RequestCount", d, 1, "Count") end
          if r.target then
            add(minute, "HTTPCode_Target_" .. class(r.target) .. "_Count", d, 1, "Count")
            add(minute, "TargetResponseTime", d, M.TARGET_RESPONSE_TIME, "Seconds", true)
          end
        end
        if r.elb then
          for _, d in ipairs(sets) do
            add(minute, "HTTPCode_ELB_" .. class(r.elb) .. "_Count", d, 1, "Count")
            if r.elb == 500 or r.elb == 502 or r.elb == 503 or r.elb == 504 then
              add(minute, "HTTPCode_ELB_" .. r.elb .. "_Count", d, 1, "Count")
            end
          end
        end
      end
    end
  end
  -- the other load balancers' requests stay for their turn
  for _, r in ipairs(elb.traffic or {}) do
    if r.lb ~= lb_arn then keep[#keep + 1] = r end
  end
  elb.traffic = #keep > 0 and keep or nil
  for _, key in ipairs(order) do
    local e = sums[key]
    if #e.samples > 0 then
      for _, v in ipairs(e.samples) do
        metrics.put(cw, "AWS/ApplicationELB", e.name, e.dims, e.minute, v, e.unit)
      end
    else
      metrics.put(cw, "AWS/ApplicationELB", e.name, e.dims, e.minute, e.sum + 0.0, e.unit)
    end
  end
end

local function publish_load_balancers(sim, account, region, cw, elb, asdb, t)
  local failover = require "fo.sim.failover"
  local health = sim:_handlers("elbv2").DescribeTargetHealth
  local ctx = ctx_mod.new{ sim = sim, service = "elbv2", operation = "(metrics)",
    region = region, account = account }
  local az_of = {}
  for name in pairs(asdb.groups or {}) do
    for _, i in ipairs(asg_state.members(asdb, name)) do az_of[i.InstanceId] = i.AvailabilityZone end
  end
  local lbs = {}
  for _, lb in pairs(elb.load_balancers or {}) do
    if lb.desc and lb.desc.Type ~= "network" and lb.desc.Type ~= "gateway"
        and (not lb.active_at or t >= lb.active_at) then
      lbs[#lbs + 1] = lb
    end
  end
  table.sort(lbs, function(a, b) return a.desc.LoadBalancerArn < b.desc.LoadBalancerArn end)
  -- requests to a load balancer deleted since are not published
  if elb.traffic then
    local live = {}
    for _, r in ipairs(elb.traffic) do
      if (elb.load_balancers or {})[r.lb] then live[#live + 1] = r end
    end
    elb.traffic = #live > 0 and live or nil
  end
  for _, lb in ipairs(lbs) do
    publish_requests(cw, elb, lb, t)
    local lb_dim = M.lb_dimension(lb.desc.LoadBalancerArn)
    local stamp = math.max(t - M.INTERVAL, lb.active_at or 0)
    local tgs, seen = {}, {}
    for _, l in ipairs(failover.listeners_of(elb, lb.desc.LoadBalancerArn)) do
      for _, arn in ipairs(failover.listener_tgs(elb, l)) do
        if not seen[arn] then seen[arn] = true; tgs[#tgs + 1] = arn end
      end
    end
    table.sort(tgs)
    for _, tg_arn in ipairs(tgs) do
      local tg = (elb.target_groups or {})[tg_arn]
      -- host counts are reported only for target groups with health checks enabled
      local checked = tg and tg.desc and tg.desc.HealthCheckEnabled ~= false
      local ok, out = false, nil
      if checked then ok, out = pcall(health, ctx, { TargetGroupArn = tg_arn }) end
      if ok then
        local total = { healthy = 0, unhealthy = 0 }
        local per_az = {}
        for _, az in ipairs(lb.desc.AvailabilityZones or {}) do
          per_az[az.ZoneName] = { healthy = 0, unhealthy = 0 }
        end
        for _, d in ipairs(out.TargetHealthDescriptions or {}) do
          local st = d.TargetHealth and d.TargetHealth.State
          if st == "healthy" or st == "unhealthy" then
            total[st] = total[st] + 1
            local z = per_az[az_of[d.Target.Id] or ""]
            if z then z[st] = z[st] + 1 end
          end
        end
        local base = { { Name = "LoadBalancer", Value = lb_dim },
          { Name = "TargetGroup", Value = M.tg_dimension(tg_arn) } }
        local function put(dims, c)
          metrics.put(cw, "AWS/ApplicationELB", "HealthyHostCount", dims, stamp, c.healthy + 0.0, "Count")
          metrics.put(cw, "AWS/ApplicationELB", "UnHealthyHostCount", dims, stamp, c.unhealthy + 0.0,
            "Count")
        end
        put(base, total)
        local zones = {}
        for z in pairs(per_az) do zones[#zones + 1] = z end
        table.sort(zones)
        for _, z in ipairs(zones) do
          put({ base[1], base[2], { Name = "AvailabilityZone", Value = z } }, per_az[z])
        end
      end
    end
  end
end

--- Publishes what region `region` of `account` (store record `r`) has to publish for the
--- minute ending at `t`.
function M.publish(sim, account, region, r, t)
  local cw = metrics.tables(r.cloudwatch or sim.store:db(account, region, "cloudwatch"))
  local asdb = r.autoscaling or {}
  asg_state.settle(asdb, t, asg_state.timing({ sim = sim }, "terminated_visible"))
  publish_groups(sim, region, cw, asdb, t)
  if r.elbv2 then publish_load_balancers(sim, account, region, cw, r.elbv2, asdb, t) end
end

return M
