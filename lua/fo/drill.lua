-- The failover drill: on the simulator's virtual clock, take the primary region down and
-- record when the Route 53 health check turns unhealthy, when DNS answers with the
-- standby, when the us-east-1 alarm fires and notifies; then end the outage and record
-- the failback. `fo-run --drill RECIPE` runs it after converging the stack.
--
-- It reads a stack's outputs (app_dns_name, primary_alb_dns_name, standby_alb_dns_name,
-- health_check_id, health_check_alarm_name, global_topic_arn, primary_region; and, when
-- the stack has them, primary_topic_arn / standby_topic_arn, whose notifications show
-- which of the regions' own alarms fire) and observes
-- through the simulator: sim:resolve (Route 53's answer), sim:health_check_status (the
-- checkers' verdict), CloudWatch DescribeAlarms through fo's client, sim:deliveries (SNS).
-- It makes no mutating call and does not save the simulator: the stack is left as it was.
-- Meanwhile clients use the app, the standby scales and sessions replicate
-- (fo.drill.report: the traffic model, its timeline lines, figures and verdict).
local M = {}

M.INTERVAL, M.THRESHOLD = 10, 3 -- the recipe's health check: detection ≤ 10 × 3 s
M.LIMIT = 30                     -- the requirement: failures detected within 30 s
-- The outage lasts at least this long, so that the regions' per-minute alarms (ALB host
-- counts, Auto Scaling group metrics: two or three whole minutes) have time to fire.
M.HOLD = 180

local NEEDED = { "app_dns_name", "primary_alb_dns_name", "standby_alb_dns_name",
  "health_check_id", "health_check_alarm_name", "global_topic_arn", "primary_region" }

-- The traffic model's hook (fo.drill.report) of the run in progress: fed every second.
local traffic

local function norm(name) return (tostring(name or ""):lower():gsub("%.$", "")) end

-- The regions' own topics (their alarms' actions), when the stack outputs them.
local function regional_topics(o)
  local out = {}
  for _, k in ipairs{ "primary_topic_arn", "standby_topic_arn" } do
    if o[k] then out[#out + 1] = o[k] end
  end
  return out
end

-- What the world looks like now, through the simulator.
local function observe(sim, o, cw)
  local r = sim:resolve(o.app_dns_name, "A")
  local answer = r.answer and r.answer[1]
  local side = norm(answer) == norm(o.primary_alb_dns_name) and "primary"
    or norm(answer) == norm(o.standby_alb_dns_name) and "standby" or "none"
  local hc = sim:health_check_status(o.health_check_id) or {}
  local alarm = cw:DescribeAlarms{ AlarmNames = { o.health_check_alarm_name } }.MetricAlarms[1]
  local regional = {}
  for i, arn in ipairs(regional_topics(o)) do regional[i] = #sim:deliveries(arn) end
  return { regional = regional, dns = side, answer = answer, healthy = hc.healthy, fails = hc.fails or 0,
    oks = hc.oks or 0, last = hc.last and hc.last.status:match("^[^.]*%.?") or nil, alarm = alarm and alarm.StateValue,
    reason = alarm and alarm.StateReason, messages = #sim:deliveries(o.global_topic_arn),
    records = r.records }
end

local function decode(text)
  local ok, v = pcall(require("cjson").decode, text)
  return ok and v or {}
end

-- Advances the virtual clock a second at a time until done(state) or `limit` seconds,
-- calling on_change(t, old, new) when something observable changes. Returns the state.
local function watch(sim, o, cw, t0, limit, state, on_change, done)
  while not done(state) and sim:now() - t0 < limit do
    sim:advance(1)
    local new = observe(sim, o, cw)
    if traffic then traffic.tick(new) end
    on_change(sim:now() - t0, state, new)
    state = new
  end
  return state
end

--- Runs the drill on `sim` for a stack with outputs `o`. opts.print(line) shows the
--- timeline as it happens (default: nothing). Returns the result: {ok=, events = {{t=,
--- kind=, text=}}, detection=, dns_switch=, alarm=, notified=, failback = {detection=,
--- dns=, alarm_ok=, notified=}, problems = {text}} (times in seconds from the outage, or
--- from the recovery for failback).
function M.run(sim, o, opts)
  local ok, res = pcall(M.frozen, sim, M._run, sim, o, opts)
  if traffic then traffic.stop() end
  traffic = nil
  if not ok then error(res, 0) end
  return res
end

--- Calls fn(...) with the real clock frozen under the virtual one, so that only
--- sim:advance moves time and the timeline is exact; restored on the way out.
function M.frozen(sim, fn, ...)
  local clock = sim.clock
  local real = clock.real
  local frozen = real()
  clock.real = function() return frozen end
  local ok, res = pcall(fn, ...)
  clock.offset = clock.offset + frozen - real()
  clock.real = real
  if not ok then error(res, 0) end
  return res
end

function M._run(sim, o, opts)
  opts = opts or {}
  local say = opts.print or function() end
  for _, k in ipairs(NEEDED) do
    if o[k] == nil then
      error(("fo.drill: the stack has no output %s (the drill needs %s)"):format(k,
        table.concat(NEEDED, ", ")), 0)
    end
  end
  local cw = sim:client("cloudwatch", { region = "us-east-1" })
  local res = { events = {}, problems = {}, failback = {} }
  local phase_t0
  local function event(t, kind, fmt, ...)
    local text = fmt:format(...)
    res.events[#res.events + 1] = { t = t, kind = kind, text = text, phase = res.phase }
    say(("  t+%3ds  %s"):format(math.floor(t + 0.5), text))
  end

  -- Steady state first: primary answering, check healthy, alarm OK.
  local t_start = sim:now()
  local st = watch(sim, o, cw, t_start, 300, observe(sim, o, cw), function() end, function(s)
    return s.healthy and s.dns == "primary" and s.alarm == "OK"
  end)
  if not (st.healthy and st.dns == "primary" and st.alarm == "OK") then
    error(("fo.drill: the stack is not in its steady state after %ds (health check %s, DNS "
      .. "answer %s, alarm %s): apply the recipe first"):format(math.floor(sim:now() - t_start),
      st.healthy and "healthy" or "unhealthy", st.dns, tostring(st.alarm)), 0)
  end
  say(("Steady state: %s → %s (primary ALB), health check %s healthy, alarm %s OK.")
    :format(o.app_dns_name, norm(st.answer), o.health_check_id, o.health_check_alarm_name))

  -- The outage starts right after an evaluation of the check (its worst case: the next
  -- three evaluations are 10, 20 and 30 s later).
  local hc = sim:health_check_status(o.health_check_id)
  if hc and hc.next and hc.next > sim:now() then sim:advance(hc.next - sim:now()) end
  traffic = require("fo.drill.report").start(sim, o, opts)
  if traffic then traffic.before(M.INTERVAL) end -- sessions written; still right after a check
  st = observe(sim, o, cw)

  -- Failure.
  local region = o.primary_region
  local function changes(t, old, new)
    if new.fails > old.fails and new.healthy then
      event(t, "check_failure", "health check: failure %d of %d (%s)", new.fails, M.THRESHOLD,
        tostring(new.last))
    end
    if new.oks > old.oks and not new.healthy then
      event(t, "check_success", "health check: success %d of %d", new.oks, M.THRESHOLD)
    end
    if new.healthy ~= old.healthy then
      event(t, new.healthy and "check_healthy" or "check_unhealthy",
        "health check %s: %s", new.healthy and "HEALTHY" or "UNHEALTHY", tostring(new.last))
    end
    if new.dns ~= old.dns then
      local why = ""
      for _, r in ipairs(new.records or {}) do
        why = why .. (" %s(weight %s, %s)"):format(r.SetIdentifier, tostring(r.Weight),
          r.healthy and "healthy" or "unhealthy")
      end
      event(t, "dns_" .. new.dns, "DNS %s → %s (%s ALB);%s", o.app_dns_name, norm(new.answer),
        new.dns, why)
    end
    if new.alarm ~= old.alarm then
      event(t, "alarm_" .. tostring(new.alarm):lower(), "alarm %s: %s → %s", o.health_check_alarm_name,
        tostring(old.alarm), tostring(new.alarm))
    end
    for i, arn in ipairs(regional_topics(o)) do
      if (new.regional[i] or 0) > (old.regional[i] or 0) then
        local all = sim:deliveries(arn)
        for k = old.regional[i] + 1, new.regional[i] do
          local doc = decode(all[k].Message)
          local kind = "regional_" .. tostring(doc.NewStateValue):lower()
          event(t, kind, "alarm %s: %s → %s (SNS %s notified)", tostring(doc.AlarmName),
            tostring(doc.OldStateValue), tostring(doc.NewStateValue), arn:match("[^:]+$"))
          res.events[#res.events].alarm = doc.AlarmName
        end
      end
    end
    if new.messages > old.messages then
      local all = sim:deliveries(o.global_topic_arn)
      for i = old.messages + 1, new.messages do
        local doc = decode(all[i].Message)
        event(t, "notified", "SNS %s notified: %s", o.global_topic_arn:match("[^:]+$"),
          tostring(all[i].Subject or doc.NewStateValue))
      end
    end
  end
  local function first(kind, phase)
    for _, e in ipairs(res.events) do
      if e.kind == kind and e.phase == phase then return e.t end
    end
    return nil
  end

  say(("Failover: %s goes down."):format(region))
  res.phase = "failover"
  phase_t0 = sim:now()
  res.started_at = phase_t0
  sim:set_outage(region, true)
  if traffic then traffic.outage(phase_t0) end
  event(0, "outage", "%s down (simulated region outage)", region)
  local now = observe(sim, o, cw)
  changes(0, st, now)
  now = watch(sim, o, cw, phase_t0, traffic and 3600 or 400, now, changes, function(s)
    return not s.healthy and s.dns == "standby" and s.alarm == "ALARM" and first("notified", "failover")
      and sim:now() - phase_t0 >= M.HOLD and (not traffic or traffic.settled())
  end)
  res.detection = first("check_unhealthy", "failover")
  res.dns_switch = first("dns_standby", "failover")
  res.alarm = first("alarm_alarm", "failover")
  res.notified = first("notified", "failover")
  -- the regions' alarms that went to ALARM during the outage
  res.regional_alarms = {}
  for _, e in ipairs(res.events) do
    if e.phase == "failover" and e.kind == "regional_alarm" then
      res.regional_alarms[#res.regional_alarms + 1] = { t = e.t, name = e.alarm }
    end
  end

  -- Recovery.
  say(("Failback: %s recovers."):format(region))
  res.phase = "failback"
  phase_t0 = sim:now()
  sim:set_outage(region, false)
  if traffic then traffic.recovered(phase_t0) end
  event(0, "recovered", "%s back", region)
  local after = observe(sim, o, cw)
  changes(0, now, after)
  local seen = #res.events
  -- (a failback hold-down, recipes/trading.lua failbackHoldMinutes, delays it N minutes)
  local hold = 60 * (tonumber(o.failback_hold_minutes) or 0)
  after = watch(sim, o, cw, phase_t0, 400 + hold, after, changes, function(s)
    if not (s.healthy and s.dns == "primary" and s.alarm == "OK") then return false end
    for i = seen + 1, #res.events do
      if res.events[i].kind == "notified" then return true end
    end
    return false
  end)
  res.failback.detection = first("check_healthy", "failback")
  res.failback.dns = first("dns_primary", "failback")
  res.failback.alarm_ok = first("alarm_ok", "failback")
  res.failback.notified = first("notified", "failback")
  res.phase = nil
  res.traffic = traffic and traffic.result()

  -- Verdict.
  local function need(cond, text) if not cond then res.problems[#res.problems + 1] = text end end
  need(res.detection and res.detection <= M.LIMIT, ("health check unhealthy within %ds (got %s)")
    :format(M.LIMIT, tostring(res.detection)))
  need(res.dns_switch and res.detection and res.dns_switch <= res.detection,
    ("DNS answers with the standby at detection at the latest (switch %s, detection %s)")
    :format(tostring(res.dns_switch), tostring(res.detection)))
  need(res.alarm ~= nil, "the health-check alarm reaches ALARM")
  need(res.notified ~= nil, "the us-east-1 topic is notified")
  need(res.failback.dns ~= nil, "DNS answers with the primary again after recovery")
  need(res.failback.alarm_ok ~= nil, "the alarm returns to OK after recovery")
  for _, p in ipairs(require("fo.drill.report").problems(res)) do need(false, p) end
  res.ok = #res.problems == 0
  return res
end

local function secs(t) return t and ("%ds"):format(math.floor(t + 0.5)) or "never" end

--- The summary lines of a result.
function M.summary(res)
  local lines = {
    ("Detection: %s after the outage (limit %ds = interval %ds × threshold %d)")
      :format(secs(res.detection), M.LIMIT, M.INTERVAL, M.THRESHOLD),
    ("DNS switch to the standby: %s%s"):format(secs(res.dns_switch),
      res.dns_switch and res.detection and (res.dns_switch < res.detection
        and " (before the health check's verdict: the primary alias evaluates its ALB's target health)"
        or res.dns_switch == res.detection and " (at detection)" or "") or ""),
    ("Alarm in ALARM: %s; SNS notified: %s (the alarm evaluates whole minutes)")
      :format(secs(res.alarm), secs(res.notified)),
    ("Regional alarms in ALARM during the outage: %s"):format(#(res.regional_alarms or {}) == 0
      and "none" or (function()
        local parts = {}
        for i, a in ipairs(res.regional_alarms) do parts[i] = ("%s (%s)"):format(a.name, secs(a.t)) end
        return table.concat(parts, ", ")
      end)()),
    ("Failback: health check healthy %s after recovery, DNS back to the primary %s, alarm OK %s, "
      .. "notified %s"):format(secs(res.failback.detection), secs(res.failback.dns),
      secs(res.failback.alarm_ok), secs(res.failback.notified)),
  }
  for _, l in ipairs(require("fo.drill.report").summary(res)) do lines[#lines + 1] = l end
  if res.ok then
    lines[#lines + 1] = "Drill passed."
  else
    lines[#lines + 1] = "Drill FAILED: " .. table.concat(res.problems, "; ")
  end
  return lines
end

--- fo-run --drill: runs the drill on the simulator of a stack whose outputs are `outputs`
--- (its state file's). Prints the timeline; returns the exit code (0 passed, 3 failed).
--- opts.scenario (fo.drill.scenarios; default "region": the drill above), opts.runs,
--- opts.seed; opts.traffic (the region drill's traffic knobs, {name = text}), opts.plot (an
--- SVG file to draw the region drill into); opts.json: prints nothing, the caller reports
--- the result.
function M.main(sim, outputs, print_line, opts)
  opts = opts or {}
  print_line = print_line or print
  local out = print_line
  if opts.json then print_line = function() end end
  local scenario = opts.scenario or "region"
  print_line("")
  print_line(("Failover drill on the simulator's virtual clock (no real time passes)%s:")
    :format(scenario == "region" and "" or (", scenario " .. scenario)))
  local res, lines
  if scenario == "region" then
    res = M.run(sim, outputs, { print = print_line, traffic = opts.traffic })
    res.scenario = "region"
    lines = M.summary(res)
  else
    local scenarios = require "fo.drill.scenarios"
    res = scenarios.run(sim, outputs, scenario, { print = print_line, runs = opts.runs,
      seed = opts.seed })
    lines = scenarios.summary(res)
  end
  for _, l in ipairs(lines) do print_line(l) end
  res.summary = lines
  require("fo.drill.report").finish(res, opts, opts.json and print_line or out)
  return res.ok and 0 or 3, res
end

--- The `drill` event of `fo-run --drill --json` (docs/json-events.md): the scenario, the
--- verdict, its summary lines and the whole result (timeline events, figures), one line.
function M.json_event(res, t)
  local json = require "fo.json"
  local result = {}
  for k, v in pairs(res) do
    if k ~= "summary" and k ~= "ok" and k ~= "scenario" and k ~= "phase" then result[k] = v end
  end
  if result.problems and #result.problems == 0 then result.problems = json.EMPTY_ARRAY end
  return json.line({ v = 1, event = "drill", t = math.floor(t * 1000 + 0.5) / 1000,
    scenario = res.scenario, ok = res.ok, summary = res.summary, result = result },
    { "v", "event", "t" })
end

return M
