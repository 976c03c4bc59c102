-- The failover model on the sim's virtual clock (docs/sim-failover.md; the timeline it
-- plays is in docs/architecture.md, "Traffic and failover"):
--
-- * Each Route 53 health check evaluates its endpoint when created and then every
--   RequestInterval seconds of virtual time. An endpoint is an ALB's DNS name in the
--   ELBv2 state: it passes when its region is not in outage, the load balancer is active,
--   it has a listener on the check's port, and the check's request, routed by that
--   listener's rules (fo.sim.elb_rules) or default actions, gets a 2xx/3xx: a redirect
--   (301/302), a fixed response, or the answer of a target of the target group it is
--   forwarded to for the check's path — a healthy target (ELBv2's own
--   DescribeTargetHealth decides, from the Auto Scaling instances attached, their
--   security groups and what their user data serves: fo.sim.target_checks), else an
--   unhealthy one (the ALB fails open); no registered target is the ALB's own 503.
--   Anything else (unknown name, an IP address) fails. Each checker region (the check's
--   Regions, else Route 53's default eight) evaluates on its own clock: by default all
--   start when the check is created, sim:set_checker_phases gives each its own phase.
--   Each evaluation is one request to the load balancer, kept for its request metrics
--   (fo.sim.metrics_plane).
--   Inverted flips the result; a Disabled check is healthy. A checker's verdict flips
--   after FailureThreshold consecutive results the other way, and the check is healthy
--   while more than 18% of its checkers say so (Route 53's rule). CALCULATED checks count
--   healthy children, again as soon as a child changes; CLOUDWATCH_METRIC checks follow
--   their alarm.
-- * Each evaluation publishes HealthCheckStatus (AWS/Route53, dimension HealthCheckId,
--   1/0) to CloudWatch in us-east-1 of the account, the only region Route 53 publishes to.
-- * Metric alarms are evaluated every minute (every Period for 10/20/30 s periods) by
--   fo.sim.metrics; a transition publishes AWS's notification to the topics of the new
--   state's actions (sim:deliveries(topic_arn) reads them).
-- * sim:resolve(name, type) answers as Route 53 would (see M.resolve).
--
-- One clock job drives it all: it runs at the earliest time something is due (each
-- health check's eval.next, each alarm's next_eval — both saved with the state, so a
-- reloaded sim carries on) and re-arms itself. Evaluations are stamped with their own
-- due time, in time order, so a large sim:advance() replays them exactly.
local ctx_mod = require "fo.sim.ctx"
local elb_rules = require "fo.sim.elb_rules"
local names = require "fo.sim.route53.names"
local metrics = require "fo.sim.metrics"
local sns_state = require "fo.sim.sns_state"
local rng = require "fo.sim.rng"
local target_checks = require "fo.sim.target_checks"
local plane = require "fo.sim.metrics_plane"

local M = {}

M.METRIC_REGION = "us-east-1"

-- Checker status texts (as GetHealthCheckStatus reports them).
local OK_TCP = "Success: TCP connection established"
local TIMEOUT = "Failure: Connection timed out. The endpoint or the internet connection is "
  .. "down, or requests are being blocked by your firewall. See "
  .. "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html"
local NXDOMAIN = "Failure: DNS resolution failed: Rcode NXDomain(3)"

local function ctx_for(sim, account, service, region)
  return ctx_mod.new{ sim = sim, service = service, operation = "(failover model)",
    region = region, account = account }
end

local function r53_db(sim, account)
  return sim.store:db(account, "global", "route53")
end

-------------------------------------------------------------------------------
-- Load balancers

--- The load balancer whose DNS name is `host` (any case, trailing dot, "dualstack."
--- prefix), searched in the account's ELBv2 state: the region in the name first, then
--- every region. Returns lb (stored table), region, elbv2 db.
function M.find_lb(sim, account, host)
  host = tostring(host):lower():gsub("%.$", ""):gsub("^dualstack%.", "")
  local hinted = host:match("%.([%w%-]+)%.elb%.amazonaws%.com$")
  local order = {}
  if hinted then order[1] = hinted end
  for _, r in ipairs(require("fo.sim.regions").names()) do
    if r ~= hinted then order[#order + 1] = r end
  end
  local acct = sim.store.data.accounts[account]
  for _, region in ipairs(order) do
    local db = acct and acct[region] and acct[region].elbv2
    for _, lb in pairs(db and db.load_balancers or {}) do
      if lb.desc and type(lb.desc.DNSName) == "string" and lb.desc.DNSName:lower() == host then
        return lb, region, db
      end
    end
  end
end

-- Target groups a listener's default actions forward to.
function M.forwarded(actions)
  local out = {}
  for _, a in ipairs(actions or {}) do
    if a.Type == "forward" then
      if a.TargetGroupArn then out[#out + 1] = a.TargetGroupArn end
      for _, t in ipairs(a.ForwardConfig and a.ForwardConfig.TargetGroups or {}) do
        out[#out + 1] = t.TargetGroupArn
      end
    end
  end
  return out
end

function M.listeners_of(db, lb_arn)
  local out = {}
  for _, l in pairs(db.listeners or {}) do
    if l.desc and l.desc.LoadBalancerArn == lb_arn then out[#out + 1] = l.desc end
  end
  table.sort(out, function(a, b) return (a.Port or 0) < (b.Port or 0) end)
  return out
end

--- Target groups listener `l` (description) forwards to, by its default actions or any
--- of its rules, each once.
function M.listener_tgs(db, l)
  local out, seen = {}, {}
  local lists = { l.DefaultActions }
  for _, r in ipairs(elb_rules.listener_rules(db, l.ListenerArn)) do lists[#lists + 1] = r.Actions end
  for _, actions in ipairs(lists) do
    for _, arn in ipairs(M.forwarded(actions)) do
      if not seen[arn] then seen[arn] = true; out[#out + 1] = arn end
    end
  end
  return out
end

local forwarded, listeners_of = M.forwarded, M.listeners_of

-- Healthy targets of a target group, as ELBv2's DescribeTargetHealth reports them (the
-- handler is called directly: an internal look, not a recorded API call): healthy count,
-- registered count, the descriptions.
local function healthy_targets(sim, account, region, tg_arn)
  local h = sim:_handlers("elbv2").DescribeTargetHealth
  if not h then return 0, 0, {} end
  local ok, out = pcall(h, ctx_for(sim, account, "elbv2", region), { TargetGroupArn = tg_arn })
  if not ok then return 0, 0, {} end
  local healthy = 0
  for _, d in ipairs(out.TargetHealthDescriptions or {}) do
    if d.TargetHealth and d.TargetHealth.State == "healthy" then healthy = healthy + 1 end
  end
  return healthy, #(out.TargetHealthDescriptions or {}), out.TargetHealthDescriptions or {}
end

-- Reason phrases of the status codes a checker may report.
local PHRASES = { [200] = "OK", [201] = "Created", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [400] = "Bad Request", [403] = "Forbidden",
  [404] = "Not Found", [500] = "Internal Server Error", [501] = "Not Implemented",
  [502] = "Bad Gateway", [503] = "Service Temporarily Unavailable", [504] = "Gateway Time-out" }

local function http_status(code)
  local ok = code >= 200 and code < 400
  local phrase = PHRASES[code]
  return ok, ("%s: HTTP Status Code %d%s"):format(ok and "Success" or "Failure", code,
    phrase and (", " .. phrase) or "")
end

-- The status the ALB answers for a GET of `path` forwarded to a target of target group
-- `tg_arn`: a healthy one, or with none an unhealthy one (an ALB fails open: "If a target
-- group contains only unhealthy registered targets, the load balancer routes requests to
-- all those targets"). The target's own code passes through; a dropped request is 504, a
-- refused or malformed one 502 (fo.sim.target_checks). Returns the code and whether the
-- target (not the load balancer) answered it.
local function forward_status(sim, account, region, db, lb, tg_arn, descs, path)
  -- healthy targets take requests in turn (round robin), so that a target its group has
  -- not yet found dead (an AZ just lost) gets its share
  local healthy = {}
  for _, d in ipairs(descs) do
    if d.TargetHealth.State == "healthy" then healthy[#healthy + 1] = d end
  end
  local pick
  if #healthy > 0 then
    local turns = rawget(sim, "_lb_turns") or {}
    rawset(sim, "_lb_turns", turns)
    local k = turns[tg_arn] or 0
    turns[tg_arn] = k + 1
    pick = healthy[k % #healthy + 1]
  end
  if not pick then
    for _, d in ipairs(descs) do
      -- (targets of a group with health checks disabled take requests too)
      local st = d.TargetHealth.State
      if st == "unhealthy" or st == "unavailable" then pick = d break end
    end
  end
  local tg = db.target_groups and db.target_groups[tg_arn]
  local asdb = sim.store:db(account, region, "autoscaling")
  local inst = pick and tg and require("fo.sim.asg_state").instance(asdb, pick.Target.Id)
  if not inst then return 502, false end
  local code, failure = target_checks.request(ctx_for(sim, account, "elbv2", region), tg.desc,
    lb.desc, inst, pick.Target.Port, path)
  if code then return code, true end
  return failure == "timeout" and 504 or 502, false
end

local function lb_active(sim, lb)
  return not lb.active_at or sim.clock:now() >= lb.active_at
end

--- True when the load balancer named `host` is healthy as an alias target with
--- EvaluateTargetHealth (Route 53 developer guide): active, and every target group its
--- listeners forward to has at least one healthy target (a target group with no healthy or
--- no registered targets makes it unhealthy). Unknown names are unhealthy. A region outage
--- shows through the targets, which the ALB's own checks mark unhealthy only after their
--- UnhealthyThresholdCount × interval (services/elbv2.lua), as on AWS.
function M.lb_healthy(sim, account, host)
  local lb, region, db = M.find_lb(sim, account, host)
  if not lb or not lb_active(sim, lb) then return false end
  local tgs, seen = {}, {}
  for _, l in ipairs(listeners_of(db, lb.desc.LoadBalancerArn)) do
    for _, arn in ipairs(M.listener_tgs(db, l)) do
      if not seen[arn] then seen[arn] = true; tgs[#tgs + 1] = arn end
    end
  end
  if #tgs == 0 then return false end
  for _, arn in ipairs(tgs) do
    if healthy_targets(sim, account, region, arn) == 0 then return false end
  end
  return true
end

--- What a Route 53 checker sees for an endpoint health check configuration: ok (bool),
--- the status text and, when its HTTP request reached a load balancer's listener, what
--- the load balancer made of it: { region=, lb= ARN, tg= target group ARN it went to or
--- nil, elb= the code the load balancer answered itself or nil, target= the target's
--- code or nil, counted= false for a 503 given before any target was chosen }.
function M.probe(sim, account, cfg, checker)
  local tcp = cfg.Type == "TCP"
  local host = cfg.FullyQualifiedDomainName
  if not host then return false, TIMEOUT end -- IP endpoints are not simulated
  local lb, region, db = M.find_lb(sim, account, host)
  if not lb or not lb_active(sim, lb) then return false, NXDOMAIN end
  if sim.knobs:in_outage(region) then return false, TIMEOUT end
  -- a path problem between this checker's region and the endpoint's (the drill's knob)
  for _, c in ipairs(checker and sim.knobs:fault_of(region, "checkers") or {}) do
    if c == checker then return false, TIMEOUT end
  end
  local listener
  for _, l in ipairs(listeners_of(db, lb.desc.LoadBalancerArn)) do
    if l.Port == cfg.Port then listener = l end
  end
  if not listener then return false, TIMEOUT end -- nothing listens: the SG drops it
  if tcp then return true, OK_TCP end
  -- The listener's rules decide what the check's request gets (a GET of ResourcePath with
  -- the Host header FullyQualifiedDomainName, from an address the simulator does not
  -- model: source-ip conditions do not match it); otherwise its default actions.
  local path, query = elb_rules.split_target(cfg.ResourcePath or "/")
  local actions = elb_rules.route(listener, elb_rules.listener_rules(db, listener.ListenerArn), {
    method = "GET", host = host, path = path, query = query,
    headers = { host = host, ["user-agent"] = "Amazon-Route53-Health-Check-Service" } })
  local req = { region = region, lb = lb.desc.LoadBalancerArn, counted = true }
  local first = actions and actions[#actions] or {}
  if first.Type == "redirect" then
    local code = (first.RedirectConfig or {}).StatusCode == "HTTP_302" and 302 or 301
    req.elb, req.redirect = code, first.RedirectConfig
    return true, ("Success: HTTP Status Code %d, %s"):format(code,
      code == 302 and "Found" or "Moved Permanently"), req
  elseif first.Type == "fixed-response" then
    local code = tonumber((first.FixedResponseConfig or {}).StatusCode) or 503
    req.elb = code
    return code < 400, ("%s: HTTP Status Code %d"):format(code < 400 and "Success" or "Failure", code),
      req
  end
  -- the load balancer answers 5xx itself while its targets stay healthy (the drill's knob)
  local bad = sim.knobs:fault_of(region, "alb_5xx")
  if bad then
    req.elb = bad
    local _, text = http_status(bad)
    return false, text, req
  end
  local registered, best = 0, nil
  for _, arn in ipairs(forwarded(actions)) do
    local h, n, descs = healthy_targets(sim, account, region, arn)
    registered = registered + n
    if n > 0 and (not best or (h > 0 and best.h == 0)) then
      best = { arn = arn, h = h, descs = descs }
    end
  end
  -- An ALB with no registered targets answers 503 itself, before choosing any target.
  if registered == 0 then
    req.elb, req.counted = 503, false
    return false, "Failure: HTTP Status Code 503, Service Temporarily Unavailable", req
  end
  -- Otherwise the check's request reaches a target (healthy, or unhealthy when there is
  -- no healthy one): what it answers for the check's own path on the target's traffic
  -- port decides.
  local code, by_target = forward_status(sim, account, region, db, lb, best.arn, best.descs,
    cfg.ResourcePath or "/")
  req.tg = best.arn
  if by_target then req.target = code else req.elb = code end
  local ok, text = http_status(code)
  return ok, text, req
end

-------------------------------------------------------------------------------
-- Health checks

local function put_status(sim, account, hc, t)
  local db = sim.store:db(account, M.METRIC_REGION, "cloudwatch")
  metrics.put(db, "AWS/Route53", "HealthCheckStatus", { { Name = "HealthCheckId", Value = hc.Id } },
    t, hc.eval.healthy and 1.0 or 0.0)
end

-- The raw result of one evaluation of `hc` at time t: ok, status text.
local function raw_result(sim, account, hc, checker)
  local cfg = hc.HealthCheckConfig
  if cfg.Type == "CALCULATED" then
    local db, n = r53_db(sim, account), 0
    for _, id in ipairs(cfg.ChildHealthChecks or {}) do
      local child = db.health_checks and db.health_checks[id]
      if child and (not child.eval or child.eval.healthy) then n = n + 1 end
    end
    return n >= (cfg.HealthThreshold or 0), ("%d of %d child health checks healthy")
      :format(n, #(cfg.ChildHealthChecks or {}))
  elseif cfg.Type == "CLOUDWATCH_METRIC" then
    local ai = cfg.AlarmIdentifier or {}
    local cw = sim.store:db(account, ai.Region or M.METRIC_REGION, "cloudwatch")
    local a = cw.alarms and cw.alarms[ai.Name]
    local st = a and a.StateValue or "INSUFFICIENT_DATA"
    if st == "INSUFFICIENT_DATA" then
      local ins = cfg.InsufficientDataHealthStatus or "LastKnownStatus"
      if ins == "Healthy" then return true, "Insufficient data: Healthy" end
      if ins == "Unhealthy" then return false, "Insufficient data: Unhealthy" end
      return hc.eval.healthy, "Insufficient data: last known status"
    end
    return st == "OK", "Alarm state " .. st
  end
  return M.probe(sim, account, cfg, checker)
end

-- The requests of one evaluation reach the load balancer: one from each checker region
-- (fo.sim.route53.health), recorded in the ELBv2 state of the load balancer's region for
-- the metrics plane (request metrics, fo.sim.metrics_plane).
local function record_requests(sim, account, hc, req, t, n)
  local db = sim.store:db(account, req.region, "elbv2")
  db.traffic = db.traffic or {}
  n = n or #(hc.HealthCheckConfig.Regions or require("fo.sim.route53.health").CHECKERS)
  db.traffic[#db.traffic + 1] = { t = t, lb = req.lb, tg = req.tg, elb = req.elb,
    target = req.target, counted = req.counted, n = n }
end

local function aggregate_type(cfg)
  return cfg.Type == "CALCULATED" or cfg.Type == "CLOUDWATCH_METRIC" or cfg.Disabled
end

-- The checker regions of `hc`, in order.
local function checker_regions(hc)
  local regions = hc.HealthCheckConfig.Regions
  if regions and #regions > 0 then return regions end
  local out = {}
  for i, c in ipairs(require("fo.sim.route53.health").CHECKERS) do out[i] = c[1] end
  return out
end

-- hc.eval.checkers: one {region=, next=, fails=, oks=, healthy=, last=} per checker region
-- (made from the check's own counters when a saved state or a changed Regions list lacks
-- them: all on the check's clock).
local function checkers_of(hc)
  local ev, regions = hc.eval, checker_regions(hc)
  local list = ev.checkers
  local same = list and #list == #regions
  for i = 1, same and #regions or 0 do
    if list[i].region ~= regions[i] then same = false end
  end
  if not same then
    list = {}
    for i, r in ipairs(regions) do
      list[i] = { region = r, next = ev.next, fails = ev.fails, oks = ev.oks,
        healthy = ev.healthy, last = ev.last }
    end
    ev.checkers = list
  end
  return list
end

-- Route 53's rule: healthy while more than 18% of the checkers report healthy.
M.HEALTHY_SHARE = 0.18

local evaluate

-- A CALCULATED check follows its children at once (it has no interval of its own): called
-- when child `id` changed status at t.
local function follow_parents(sim, account, id, t)
  local db = r53_db(sim, account)
  for _, parent in pairs(db.health_checks or {}) do
    local cfg = parent.HealthCheckConfig
    if parent.eval and cfg.Type == "CALCULATED" then
      for _, child in ipairs(cfg.ChildHealthChecks or {}) do
        if child == id then evaluate(sim, account, parent, t) break end
      end
    end
  end
end

-- The evaluations of endpoint check `hc` due by t, checker by checker in time order
-- (checkers due at the same moment see the same endpoint: one probe).
local function evaluate_checkers(sim, account, hc, t)
  local cfg, ev = hc.HealthCheckConfig, hc.eval
  local list = checkers_of(hc)
  local threshold = cfg.FailureThreshold or 3
  while true do
    local at
    for _, c in ipairs(list) do
      if c.next <= t and (not at or c.next < at) then at = c.next end
    end
    if not at then break end
    local shared, reqs = nil, 0
    for _, c in ipairs(list) do
      if c.next == at then
        local ok, text, req = raw_result(sim, account, hc, c.region)
        if req then
          if not shared then shared = req end
          reqs = reqs + 1
        end
        -- (GetHealthCheckLastFailureReason: each checker's latest failed request)
        if not ok then
          c.last_failure = { status = text, t = at }
          ev.last_failure = c.last_failure
        end
        if cfg.Inverted then ok = not ok end
        if ok then c.oks, c.fails = c.oks + 1, 0 else c.fails, c.oks = c.fails + 1, 0 end
        if c.healthy and c.fails >= threshold then c.healthy = false
        elseif not c.healthy and c.oks >= threshold then c.healthy = true end
        c.last = { status = text, t = at }
        c.next = at + (cfg.RequestInterval or 30)
        ev.last = c.last
      end
    end
    if shared then record_requests(sim, account, hc, shared, at, reqs) end
    local up, fails, oks = 0, 0, 0
    for _, c in ipairs(list) do
      if c.healthy then up = up + 1 end
      fails, oks = math.max(fails, c.fails), math.max(oks, c.oks)
    end
    ev.fails, ev.oks, ev.healthy_checkers, ev.checker_count = fails, oks, up, #list
    local healthy = up > M.HEALTHY_SHARE * #list
    local changed = healthy ~= ev.healthy
    if changed then ev.healthy, ev.changed_at = healthy, at end
    put_status(sim, account, hc, at)
    if changed then follow_parents(sim, account, hc.Id, at) end
  end
  local next
  for _, c in ipairs(list) do
    if not next or c.next < next then next = c.next end
  end
  ev.next = next
end

-- One evaluation of health check `hc` of `account` at virtual time t (an endpoint check:
-- every checker due by t).
evaluate = function(sim, account, hc, t)
  local cfg, ev = hc.HealthCheckConfig, hc.eval
  if not aggregate_type(cfg) then return evaluate_checkers(sim, account, hc, t) end
  ev.checkers = nil -- (a disabled check's checkers start again from its state when enabled)
  local ok, text, req
  if cfg.Disabled then
    ok, text = true, "Health check disabled"
  else
    ok, text, req = raw_result(sim, account, hc)
    if req then record_requests(sim, account, hc, req, t) end
    -- (GetHealthCheckLastFailureReason: the checkers' latest failed request)
    if not ok then ev.last_failure = { status = text, t = t } end
    if cfg.Inverted then ok = not ok end
  end
  if ok then ev.oks, ev.fails = ev.oks + 1, 0 else ev.fails, ev.oks = ev.fails + 1, 0 end
  local was = ev.healthy
  if ev.healthy and not ok then
    ev.healthy, ev.changed_at = false, t
  elseif not ev.healthy and ok then
    ev.healthy, ev.changed_at = true, t
  end
  ev.last = { status = text, t = t }
  put_status(sim, account, hc, t)
  ev.next = t + (cfg.RequestInterval or 30)
  if was ~= ev.healthy then follow_parents(sim, account, hc.Id, t) end
end

-------------------------------------------------------------------------------
-- The driver

local function each_account(sim)
  local list = {}
  for account in pairs(sim.store.data.accounts) do list[#list + 1] = account end
  table.sort(list)
  return list
end

local function alarm_dbs(sim, account)
  local out = {}
  for region, r in pairs(sim.store.data.accounts[account] or {}) do
    if region ~= "global" and r.cloudwatch and r.cloudwatch.alarms then
      out[#out + 1] = { region, r.cloudwatch }
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

local function health_checks(sim, account)
  local g = sim.store.data.accounts[account] and sim.store.data.accounts[account].global
  local db = g and g.route53
  local list = {}
  for _, hc in pairs(db and db.health_checks or {}) do
    if hc.eval then list[#list + 1] = hc end
  end
  table.sort(list, function(a, b)
    if a.eval.next ~= b.eval.next then return a.eval.next < b.eval.next end
    return (a.seq or 0) < (b.seq or 0)
  end)
  return list
end

-- Regions of `account` whose services publish metrics: {region, record, due}, by region.
local function planes(sim, account)
  local out = {}
  for region, r in pairs(sim.store.data.accounts[account] or {}) do
    local due = plane.due(sim, account, region, r, sim.clock:now())
    if due then out[#out + 1] = { region, r, due } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- The earliest time anything is due.
local function earliest(sim)
  local best
  for _, account in ipairs(each_account(sim)) do
    for _, p in ipairs(planes(sim, account)) do
      if not best or p[3] < best then best = p[3] end
    end
    for _, hc in ipairs(health_checks(sim, account)) do
      if not best or hc.eval.next < best then best = hc.eval.next end
    end
    for _, rd in ipairs(alarm_dbs(sim, account)) do
      for _, a in pairs(rd[2].alarms) do
        if a.next_eval and (not best or a.next_eval < best) then best = a.next_eval end
      end
    end
  end
  return best
end

local tick

--- (Re)schedules the driver at the earliest due time (nothing due: no job).
function M.arm(sim)
  local st = rawget(sim, "_failover")
  if not st then
    st = {}
    rawset(sim, "_failover", st)
  end
  local t = earliest(sim)
  -- (which sets the regions' next metrics minute, reading the state directly)
  for _, account in ipairs(each_account(sim)) do
    for region in pairs(sim.store.data.accounts[account]) do
      sim.store:touch(account, region, "cloudwatch", "plane_next")
    end
  end
  if st.job and st.t == t then return end
  if st.job then st.job.cancel() end
  st.job, st.t = nil, nil
  if t then
    st.t = t
    st.job = sim.clock:at(t, function(due) tick(sim, due) end)
  end
end

-- Runs everything due at `t`: health checks first (their datapoints stamped t), then the
-- services' own metrics (fo.sim.metrics_plane), then the alarms, each at its own due time.
tick = function(sim, t)
  local st = rawget(sim, "_failover")
  if st then st.job, st.t = nil, nil end
  for _, account in ipairs(each_account(sim)) do
    -- what this reads from the state directly and may change (health checks, alarms,
    -- metrics, the groups' instances) is saved with the next call (fo.sim.store; the rest
    -- goes through sim.store:db, which marks it)
    for region, r in pairs(sim.store.data.accounts[account]) do
      for service in pairs(r) do sim.store:touch(account, region, service) end
    end
    for _, hc in ipairs(health_checks(sim, account)) do
      if hc.eval.next <= t then
        evaluate(sim, account, hc, aggregate_type(hc.HealthCheckConfig) and hc.eval.next or t)
      end
    end
    for _, p in ipairs(planes(sim, account)) do
      local cw = p[2].cloudwatch
      while cw.plane_next <= t do
        plane.publish(sim, account, p[1], p[2], cw.plane_next)
        cw.plane_next = cw.plane_next + plane.INTERVAL
      end
    end
    for _, rd in ipairs(alarm_dbs(sim, account)) do
      metrics.run_alarms(ctx_for(sim, account, "cloudwatch", rd[1]), rd[2], t)
    end
  end
  M.arm(sim)
end

--- Called by the Route 53 handlers when a health check is created, updated or deleted.
function M.health_check_changed(ctx, hc, deleted)
  if not deleted and not hc.eval then
    -- Route 53 starts checking at once; a new check is healthy until proven otherwise.
    hc.eval = { healthy = true, fails = 0, oks = 0, next = ctx:now() }
  end
  M.arm(ctx.sim)
end

--- Gives each checker region of endpoint health check `id` (opts.account) its own phase:
--- checker i next evaluates `offsets[i]` seconds from now (0 ≤ offset < RequestInterval),
--- keeping its verdict and counts. Route 53's checkers are not synchronised; the drill
--- draws the offsets from its seed. Returns the check's checker regions.
function M.set_checker_phases(sim, id, offsets, opts)
  sim.clock:run_due()
  local hc = r53_db(sim, opts and opts.account or sim.account).health_checks
  hc = hc and hc[id]
  if not (hc and hc.eval) or aggregate_type(hc.HealthCheckConfig) then
    error(("sim:set_checker_phases: %s is not an endpoint health check"):format(tostring(id)), 2)
  end
  local list, now = checkers_of(hc), sim:now()
  local regions = {}
  for i, c in ipairs(list) do
    c.next = now + (offsets[i] or 0)
    regions[i] = c.region
  end
  local next
  for _, c in ipairs(list) do
    if not next or c.next < next then next = c.next end
  end
  hc.eval.next = next
  M.arm(sim)
  return regions
end

--- The last checker result of `hc` ({status=, t=}); before the first evaluation, what a
--- checker would see now.
function M.last_result(ctx, hc)
  if hc.eval and hc.eval.last then return hc.eval.last end
  local ok, text = raw_result(ctx.sim, ctx.account, hc)
  return { status = text, t = ctx:now() }
end

--- Starts the model for a sim (fo.sim.new calls it): schedules what the saved state says
--- is due.
function M.attach(sim)
  M.arm(sim)
end

-------------------------------------------------------------------------------
-- DNS answers

-- The health of one record of a group, as Route 53 judges it when choosing.
local function record_health(sim, account, zone, rr, depth)
  local healthy = true
  if rr.HealthCheckId then
    local hc = r53_db(sim, account).health_checks[rr.HealthCheckId]
    -- A deleted health check: AWS calls the outcome unpredictable; the sim keeps it healthy.
    if hc and hc.eval then healthy = hc.eval.healthy end
  end
  local at = rr.AliasTarget
  if healthy and at and at.EvaluateTargetHealth then
    if at.DNSName:find("%.elb%.amazonaws%.com%.$") then
      healthy = M.lb_healthy(sim, account, at.DNSName)
    elseif at.HostedZoneId == zone.Id and depth < 8 then
      local r = M.resolve(sim, at.DNSName, rr.Type, { account = account, depth = depth + 1,
        draw = 0 })
      healthy = r.answer ~= nil and #r.answer > 0 and r.healthy ~= false
    else
      healthy = false
    end
  end
  return healthy
end

local function answer_of(sim, rr)
  if rr.AliasTarget then
    return { rr.AliasTarget.DNSName }, 60 -- alias records use the target's TTL (ELB: 60)
  end
  local vals = {}
  for i, r in ipairs(rr.ResourceRecords or {}) do vals[i] = r.Value end
  return vals, rr.TTL
end

local function draw_of(sim, opts)
  if opts.draw then return opts.draw end
  local r = rawget(sim, "_resolve_rng")
  if not r then
    r = rng.new(rng.mix(sim.store.data.seed ~ 0x5eed3))
    rawset(sim, "_resolve_rng", r)
  end
  return r:float()
end

--- Answers a DNS query for `name` and `type` (default "A") as Route 53 would, from the
--- hosted zones of the account (opts.account, default the sim's): the most specific zone
--- holding the name (opts.zone_id: that zone only); a CNAME at the name answers any type.
--- Weighted groups (Route 53 developer guide, "How Route 53 chooses records when health
--- checking is configured"): records are judged healthy (a record with no health check
--- and no EvaluateTargetHealth alias always is); the choice is among the healthy records
--- of non-zero weight by weight; if none, among the healthy weight-0 records evenly; if
--- no record is healthy at all, Route 53 treats them all as healthy (non-zero weights
--- first again). Every record of weight 0 in an all-zero group shares evenly.
--- The draw is deterministic: opts.draw in [0, 1) picks the record (cumulative weights in
--- SetIdentifier order), else a stream seeded from the sim's seed.
--- Returns {rcode = "NOERROR"|"NXDOMAIN"|"REFUSED", zone =, answer = {values or the alias
--- target name}, ttl =, record = the chosen record set (copy), chosen = its
--- SetIdentifier, eligible = {SetIdentifiers chosen among}, records = { {SetIdentifier=,
--- Weight=, healthy=} }, healthy = false when every record was unhealthy (fail-open)}.
function M.resolve(sim, name, rtype, opts)
  opts = opts or {}
  if not opts.depth then sim.clock:run_due() end
  rtype = rtype or "A"
  local account = opts.account or sim.account
  local qname = names.fqdn(name)
  local db = r53_db(sim, account)
  local zone
  for _, z in pairs(db.zones or {}) do
    if names.in_zone(qname, z.Name) and (not zone or #z.Name > #zone.Name)
        and (not opts.zone_id or z.Id == opts.zone_id) then zone = z end
  end
  if not zone then return { rcode = "REFUSED", answer = {} } end
  local group, any = {}, false
  for _, rr in pairs(zone.records) do
    if rr.Name == qname then
      any = true
      if rr.Type == rtype or (rr.Type == "CNAME" and rtype ~= "CNAME") then
        group[#group + 1] = rr
      end
    end
  end
  if #group == 0 then
    return { rcode = any and "NOERROR" or "NXDOMAIN", zone = zone.Name, answer = {} }
  end
  table.sort(group, function(a, b) return (a.SetIdentifier or "") < (b.SetIdentifier or "") end)
  local depth = opts.depth or 0
  local infos = {}
  local any_healthy = false
  for i, rr in ipairs(group) do
    infos[i] = { rr = rr, SetIdentifier = rr.SetIdentifier, Weight = rr.Weight,
      healthy = record_health(sim, account, zone, rr, depth) }
    any_healthy = any_healthy or infos[i].healthy
  end
  -- Fail open: with no healthy record, every record counts as healthy.
  local function ok(info) return info.healthy or not any_healthy end
  local pool = {}
  for _, info in ipairs(infos) do
    if ok(info) and (info.Weight or 1) > 0 then pool[#pool + 1] = info end
  end
  if #pool == 0 then
    for _, info in ipairs(infos) do
      if ok(info) then pool[#pool + 1] = info end
    end
  end
  local total = 0
  for _, info in ipairs(pool) do total = total + (info.Weight or 1) end
  local d = draw_of(sim, opts)
  local chosen = pool[#pool]
  local acc = 0
  for _, info in ipairs(pool) do
    local w = total > 0 and (info.Weight or 1) / total or 1 / #pool
    acc = acc + w
    if d < acc then chosen = info break end
  end
  local answer, ttl = answer_of(sim, chosen.rr)
  local out = { rcode = "NOERROR", zone = zone.Name, answer = answer, ttl = ttl,
    record = require("fo.sim.route53.rrsets").copy(chosen.rr), chosen = chosen.SetIdentifier,
    eligible = {}, records = {}, healthy = any_healthy }
  for _, info in ipairs(pool) do out.eligible[#out.eligible + 1] = info.SetIdentifier end
  for i, info in ipairs(infos) do
    out.records[i] = { SetIdentifier = info.SetIdentifier, Weight = info.Weight,
      healthy = info.healthy }
  end
  return out
end

-------------------------------------------------------------------------------
-- Deliveries

--- The messages published to SNS topic `arn` (Publish calls and alarm notifications),
--- oldest first: {MessageId=, TopicArn=, Subject=, Message=, MessageAttributes=,
--- Timestamp=, Deliveries = { {SubscriptionArn=, Protocol=, Endpoint=} }}.
function M.deliveries(sim, arn)
  sim.clock:run_due()
  local region, account = sns_state.parse_arn(arn)
  if not region then error(("sim:deliveries: not an SNS topic ARN: %s"):format(tostring(arn)), 2) end
  local acct = sim.store.data.accounts[account]
  local db = acct and acct[region] and acct[region].sns
  local list = db and db.messages and db.messages[arn] or {}
  local out = {}
  for i, m in ipairs(list) do out[i] = require("fo.sim.route53.rrsets").copy(m) end
  return out
end

--- The current status of health check `id` (opts.account): {healthy=, fails=, oks=,
--- last = {status=, t=}, next=, changed_at=, checkers = { {region=, healthy=, fails=,
--- oks=, next=, last=} } (endpoint checks), healthy_checkers=, checker_count=} or nil
--- (fails and oks: the longest run among the checkers).
function M.health_check_status(sim, id, opts)
  sim.clock:run_due()
  local hc = r53_db(sim, opts and opts.account or sim.account).health_checks
  hc = hc and hc[id]
  return hc and hc.eval and require("fo.sim.route53.rrsets").copy(hc.eval) or nil
end

--- Methods fo.sim adds to every sim.
M.methods = {
  resolve = function(sim, name, rtype, opts) return M.resolve(sim, name, rtype, opts) end,
  deliveries = function(sim, arn) return M.deliveries(sim, arn) end,
  health_check_status = function(sim, id, opts) return M.health_check_status(sim, id, opts) end,
  set_checker_phases = function(sim, id, offsets, opts)
    return M.set_checker_phases(sim, id, offsets, opts)
  end,
}

return M
