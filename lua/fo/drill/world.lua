-- What the traffic model (fo.drill.traffic) needs from the simulator: each region's Auto
-- Scaling group behind the stack's load balancer (desired and maximum size, its target
-- tracking policy's target and warm-up, its target group's time to mark a new target
-- healthy, its launch template's monitoring: the period of the CPU metric), and, every
-- second, whether each region answers requests and how Route 53 judges its record.
-- Read-only: internal looks at the sim's state, no API call.
local failover = require "fo.sim.failover"
local asg_state = require "fo.sim.asg_state"
local ec2_lookup = require "fo.sim.ec2_lookup"
local ctx_mod = require "fo.sim.ctx"

local M = {}

local function norm(name) return (tostring(name or ""):lower():gsub("%.$", "")) end

-- The Auto Scaling group attached to a target group the load balancer named `dns` forwards
-- to, with its target group: group, target group description, region.
local function group_behind(sim, dns)
  local lb, region, db = failover.find_lb(sim, sim.account, dns)
  if not lb then return nil end
  local tgs = {}
  for _, l in ipairs(failover.listeners_of(db, lb.desc.LoadBalancerArn)) do
    for _, arn in ipairs(failover.listener_tgs(db, l)) do tgs[arn] = true end
  end
  local asdb = sim.store:db(sim.account, region, "autoscaling")
  local names = {}
  for name in pairs(asdb.groups or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local g = asdb.groups[name]
    for _, arn in ipairs(g.TargetGroupARNs or {}) do
      if tgs[arn] then return g, db.target_groups[arn] and db.target_groups[arn].desc, region, asdb end
    end
  end
  return nil, nil, region
end

-- The seconds between the CPUUtilization datapoints of group g's instances in `region`:
-- 60 when its launch template version turns detailed monitoring on (Monitoring.Enabled),
-- else 300 (basic monitoring, EC2's default).
local function metric_period(sim, region, g)
  local spec = g.LaunchTemplate or {}
  local ctx = ctx_mod.new{ sim = sim, service = "ec2", region = region, account = sim.account }
  local lt = ec2_lookup.launch_template(ctx, spec.LaunchTemplateId, spec.LaunchTemplateName)
  local v = lt and ec2_lookup.launch_template_version(lt, spec.Version)
  local monitoring = v and (v.LaunchTemplateData or {}).Monitoring
  return monitoring and monitoring.Enabled == true and 60 or 300
end

-- One region's setup for the model: {desired=, max=, target=, warmup=, register=,
-- metric_period=}.
local function region_setup(sim, dns)
  local g, tg, region, asdb = group_behind(sim, dns)
  if not g then return { desired = 1, max = 1 }, region end
  local out = { desired = #asg_state.members(asdb, g.AutoScalingGroupName), max = g.MaxSize,
    region = region, group = g.AutoScalingGroupName, metric_period = metric_period(sim, region, g) }
  local warmup = g.DefaultInstanceWarmup or g.DefaultCooldown
  for _, pol in pairs(asdb.policies or {}) do
    local ttc = pol.TargetTrackingConfiguration
    if pol.AutoScalingGroupName == g.AutoScalingGroupName and ttc
        and (ttc.PredefinedMetricSpecification or {}).PredefinedMetricType == "ASGAverageCPUUtilization" then
      out.target = ttc.TargetValue
      warmup = pol.EstimatedInstanceWarmup or warmup
      for _, a in ipairs(pol.Alarms or {}) do
        if a.AlarmName:find("-AlarmHigh-", 1, true) then out.alarm_high = a.AlarmName end
      end
    end
  end
  out.warmup = warmup
  if tg then
    out.register = (tg.HealthyThresholdCount or 5) * (tg.HealthCheckIntervalSeconds or 30)
  end
  return out, region
end

--- The model's setup for a stack with outputs `o`, at virtual time `t0`.
function M.setup(sim, o, t0)
  local primary, pr = region_setup(sim, o.primary_alb_dns_name)
  local standby, sr = region_setup(sim, o.standby_alb_dns_name)
  local r = sim:resolve(o.app_dns_name, "A")
  return { t0 = t0, ttl = r.ttl, regions = { primary = primary, standby = standby },
    names = { primary = pr, standby = sr } }
end

--- The state of the simulator's CloudWatch alarm `name` in `region` (nil when none).
function M.alarm_state(sim, region, name)
  if not (region and name) then return nil end
  local cw = sim.store:db(sim.account, region, "cloudwatch")
  local a = cw.alarms and cw.alarms[name]
  return a and a.StateValue
end

--- The world at this second for a drill observation `obs` (fo.drill's observe: dns,
--- healthy): { dns =, up = {primary=, standby=}, healthy = {primary=, standby=} }.
function M.now(sim, o, obs)
  local up, healthy = {}, {}
  for _, side in ipairs{ "primary", "standby" } do
    local dns = o[side .. "_alb_dns_name"]
    local _, region = failover.find_lb(sim, sim.account, dns)
    local lb_ok = failover.lb_healthy(sim, sim.account, dns)
    up[side] = lb_ok and not (region and sim.knobs:in_outage(region))
    healthy[side] = lb_ok
  end
  -- the primary record carries the Route 53 health check: its verdict is the record's
  if obs.healthy ~= nil then healthy.primary = obs.healthy and healthy.primary end
  return { dns = obs.dns, up = up, healthy = healthy, answer = norm(obs.answer) }
end

return M
