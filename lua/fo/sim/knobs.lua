-- The simulator's fault and timing knobs: latency (fixed + jitter), throttling and
-- transient 5xx probabilities, the eventual-consistency window, the regions in outage,
-- the opt-in regions the account has not enabled, and an injected failure of the k-th
-- mutating call. Options win over FO_SIM_* environment variables; bad values are errors
-- that name the knob.
local regions = require "fo.sim.regions"

local M = {}
local Knobs = {}
Knobs.__index = Knobs

-- knob → {environment variable, kind}; kind: "ms" (≥ 0), "p" (0..1), "list" (of regions),
-- "domains" (a list of domain names), "count" (a whole number ≥ 0).
M.SPEC = {
  latency_ms = { "FO_SIM_LATENCY_MS", "ms" },
  latency_jitter_ms = { "FO_SIM_LATENCY_JITTER_MS", "ms" },
  throttle = { "FO_SIM_THROTTLE", "p" },
  fail_5xx = { "FO_SIM_FAIL_5XX", "p" },
  consistency_ms = { "FO_SIM_CONSISTENCY_MS", "ms" },
  outage = { "FO_SIM_OUTAGE", "list" },
  disabled_regions = { "FO_SIM_DISABLED_REGIONS", "list" },
  fail_mutating_call = { "FO_SIM_FAIL_MUTATING_CALL", "count" },
  -- domains whose registrar points at the sim's Route 53 (fo.sim.acm.dns)
  registered_domains = { "FO_SIM_REGISTERED_DOMAINS", "domains" },
  -- the account's applied EC2 On-Demand Standard vCPU quota (L-1216C47A) in every region
  -- (fo.sim.services.servicequotas)
  ec2_vcpu_quota = { "FO_SIM_EC2_VCPU_QUOTA", "count" },
}

-- The applied vCPU quota when the knob is not set: what an account that has run
-- workloads for a while has (a new account starts lower; GetAWSDefaultServiceQuota).
M.DEFAULT_EC2_VCPU_QUOTA = 32

-- The error an injected failure answers: a client error no SDK retries.
M.INJECTED_CODE = "FoInjectedFault"

-- Only opt-in regions can be disabled: AWS enables the others for every account.
local function check_disabled(list, where)
  for _, r in ipairs(list) do
    local info = regions.REGIONS[r]
    if not (info and info.opt_in) then
      local opt = {}
      for _, name in ipairs(regions.names()) do
        if regions.REGIONS[name].opt_in then opt[#opt + 1] = name end
      end
      error(("sim knob disabled_regions (%s): %s is not an opt-in region the sim serves "
        .. "(opt-in: %s)"):format(where, tostring(r), table.concat(opt, ", ")), 0)
    end
  end
end

local function set_of(list)
  local t = {}
  for _, r in ipairs(list) do t[r] = true end
  return t
end

local function check(name, kind, v, where)
  if kind == "list" or kind == "domains" then
    if type(v) == "string" then
      local t = {}
      for r in v:gmatch("[^,%s]+") do t[#t + 1] = r end
      v = t
    end
    if type(v) ~= "table" then
      error(("sim knob %s (%s): expected a list of %s"):format(name, where,
        kind == "list" and "regions" or "domain names"), 0)
    end
    return v
  end
  local n = tonumber(v)
  if not n or n ~= n then
    error(("sim knob %s (%s): expected a number, got %q"):format(name, where, tostring(v)), 0)
  end
  if kind == "count" then
    n = math.tointeger(n)
    if not n or n < 0 then
      error(("sim knob %s (%s): %s is not a whole number, 0 or more"):format(name, where,
        tostring(v)), 0)
    end
    return n
  end
  if n < 0 or (kind == "p" and n > 1) then
    error(("sim knob %s (%s): %s is out of range (%s)"):format(name, where, tostring(v),
      kind == "p" and "a probability, 0 to 1" or "milliseconds, 0 or more"), 0)
  end
  return n
end

--- Checks a table that holds only knobs (a stack's knobs file): raises naming the first key
--- that is no knob, with the known names; then the values as M.new checks them.
function M.check_table(t)
  for name in pairs(t) do
    if not M.SPEC[name] then
      local known = {}
      for k in pairs(M.SPEC) do known[#known + 1] = k end
      table.sort(known)
      error(("unknown sim knob '%s' (known: %s)"):format(tostring(name),
        table.concat(known, ", ")), 0)
    end
  end
  M.new(t, function() return nil end)
end

--- Knobs from options (a table with the knob names) over environment variables read
--- through `env` (default os.getenv).
function M.new(opts, env)
  opts, env = opts or {}, env or os.getenv
  local k = setmetatable({ latency_ms = 0, latency_jitter_ms = 0, throttle = 0, fail_5xx = 0,
    consistency_ms = 0, outages = {}, disabled = {}, fail_mutating_call = 0, mutating_seen = 0,
    registered_domains = {}, ec2_vcpu_quota = M.DEFAULT_EC2_VCPU_QUOTA },
    Knobs)
  for name, spec in pairs(M.SPEC) do
    local v, where = opts[name], "option " .. name
    if v == nil then
      local e = env(spec[1])
      if e ~= nil and e ~= "" then v, where = e, spec[1] end
    end
    if v ~= nil then
      v = check(name, spec[2], v, where)
      if name == "outage" then
        for _, r in ipairs(v) do -- a misspelt region would silently be no outage at all
          if not regions.REGIONS[r] then
            error(("sim knob outage (%s): %s is not a region the sim serves (%s)"):format(where,
              tostring(r), table.concat(regions.names(), ", ")), 0)
          end
        end
        k.outages = set_of(v)
      elseif name == "disabled_regions" then
        check_disabled(v, where)
        k.disabled = set_of(v)
      else
        k[name] = v
      end
    end
  end
  return k
end

--- Changes a knob at run time (same names and checks as the options).
function Knobs:set(name, value)
  local spec = M.SPEC[name]
  if not spec or name == "outage" then
    error(("unknown sim knob '%s' (use latency_ms, latency_jitter_ms, throttle, fail_5xx, "
      .. "consistency_ms, disabled_regions, fail_mutating_call, registered_domains, ec2_vcpu_quota; outages with sim:set_outage)")
      :format(tostring(name)), 2)
  end
  local v = check(name, spec[2], value, "set")
  if name == "disabled_regions" then
    check_disabled(v, "set")
    self.disabled = set_of(v) -- the whole list: regions not named are enabled
  elseif name == "fail_mutating_call" then
    self.fail_mutating_call, self.mutating_seen = v, 0 -- counting starts again now
  else
    self[name] = v
  end
end

--- Puts `region` in outage (on = true) or ends it, at virtual time `now` (recorded so that
--- the load balancers' own health checks can take their time to notice, see outage_times).
function Knobs:set_outage(region, on, now)
  local was = self.outages[region] == true
  self.outages[region] = on and true or nil
  self.outage_times = self.outage_times or {}
  local t = self.outage_times[region] or {}
  if on and not was then
    t.started, t.ended = now, nil
  elseif not on and was then
    t.ended = now
  end
  self.outage_times[region] = t
end

--- When the region's last outage started and ended (virtual times; nil when unknown or
--- still going on).
function Knobs:outage_times_of(region)
  local t = (self.outage_times or {})[region] or {}
  return t.started, t.ended
end

-- Faults short of a region outage (the drill's scenarios, docs/sim-failover.md "Partial
-- outages"), per region: "az" = an Availability Zone name whose instances stop answering;
-- "app" = true, the instances' application answers 500 to every path while EC2 runs;
-- "alb_5xx" = a status code the load balancer answers to every request while its targets
-- stay healthy; "checkers" = a list of Route 53 checker regions that cannot reach the
-- region's endpoints (a path problem). value nil ends the fault. Start and end times are
-- kept, as for outages, so the load balancers' own checks take their time to notice.
M.FAULTS = { az = "string", app = "boolean", alb_5xx = "number", checkers = "table" }

function Knobs:set_fault(region, kind, value, now)
  local want = M.FAULTS[kind]
  if not want then
    error(("sim fault '%s': use az, app, alb_5xx or checkers"):format(tostring(kind)), 2)
  end
  if value ~= nil and type(value) ~= want then
    error(("sim fault %s for %s: expected a %s"):format(kind, tostring(region), want), 2)
  end
  if value == false then value = nil end
  self.faults = self.faults or {}
  local f = self.faults[region] or {}
  self.faults[region] = f
  local was = f[kind]
  local t = f[kind .. "_times"] or {}
  if value ~= nil and was == nil then t.started, t.ended = now, nil
  elseif value == nil and was ~= nil then t.ended = now end
  if kind == "az" and was ~= nil then f.az_last = was end
  f[kind], f[kind .. "_times"] = value, t
end

--- The fault `kind` of `region`: its value (nil when none), when it last started and ended.
function Knobs:fault_of(region, kind)
  local f = (self.faults or {})[region]
  if not f then return nil end
  local t = f[kind .. "_times"] or {}
  return f[kind], t.started, t.ended
end

--- True when `region` is in outage.
function Knobs:in_outage(region)
  return self.outages[region] == true
end

--- True when `region` is an opt-in region the account has not enabled.
function Knobs:region_disabled(region)
  return self.disabled[region] == true
end

--- Seconds one call waits: fixed + uniform jitter, drawn from `rng`.
function Knobs:latency(rng)
  local ms = self.latency_ms
  if self.latency_jitter_ms > 0 then ms = ms + rng:float() * self.latency_jitter_ms end
  return ms / 1000
end

--- "throttle", "5xx" or nil for one call, drawn from `rng` (one draw per knob that is on,
--- so turning one knob on does not shift the other's draws when it is off).
function Knobs:fault(rng)
  if self.throttle > 0 and rng:float() < self.throttle then return "throttle" end
  if self.fail_5xx > 0 and rng:float() < self.fail_5xx then return "5xx" end
  return nil
end

--- Counts one mutating call about to reach its handler; returns its number (counting
--- from the sim's creation or the last set_knob("fail_mutating_call", k)) when the
--- fail_mutating_call knob says it must fail, else nil.
function Knobs:injected_failure()
  self.mutating_seen = self.mutating_seen + 1
  if self.fail_mutating_call > 0 and self.mutating_seen == self.fail_mutating_call then
    return self.mutating_seen
  end
  return nil
end

return M
