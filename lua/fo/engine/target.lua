-- Where a stack's resources live: `sim` (the embedded simulator, its state in
-- .fo/<stack>.sim.json) or `aws` (real endpoints). Gives resource types their clients.
local M = {}
local Target = {}
Target.__index = Target

M.KINDS = { sim = true, aws = true }

-- The retry settings of the engine's clients when the user chose none (docs/engine.md,
-- "Retries"): an apply makes hundreds of calls, often in bursts on one account, so the
-- SDKs' 3 attempts are too few (IaC tools choose their own budget: Terraform's AWS
-- provider retries 25 times). Throttling is retried up to 25 attempts, slowed down by the
-- adaptive mode's client-side rate limiter; other failures (5xx, timeouts, refused
-- connections) up to 5, so that a service that is down is reported in seconds, not
-- minutes. AWS_MAX_ATTEMPTS / AWS_RETRY_MODE or max_attempts / retry_mode in the profile
-- replace them.
M.RETRY_DEFAULTS = { mode = "adaptive", max_attempts = 25, max_transient = 5 }

-- The stack's simulator knobs from its config file `<dir>/<stack>.sim-knobs.json` (a JSON
-- object of knob names → values, docs/simulator.md "Knobs"), or nil when there is none.
-- FO_SIM_* variables still apply to the knobs the file does not set.
local function knobs_file(dir, stack)
  local errors = require "fo.engine.errors"
  local path = ("%s/%s.sim-knobs.json"):format(dir, stack)
  local v, why = require("fo.json").read_file(path)
  if v == nil and why then
    errors.raise("config", ("%s: %s (fix it or delete it: it holds the simulator's knobs)")
      :format(path, why))
  end
  if v ~= nil and type(v) ~= "table" then
    errors.raise("config", ("%s: expected a JSON object of sim knobs, e.g. {\"latency_ms\": 100}")
      :format(path))
  end
  if v ~= nil then -- the knobs' own checks, named after the file
    local ok, err = pcall(require("fo.sim.knobs").check_table, v)
    if not ok then errors.raise("config", ("%s: %s"):format(path, tostring(err))) end
  end
  return v
end

--- opts: kind ("sim"|"aws"), dir, stack, sim (a simulator to use instead of the stack's
--- file, for tests), on_retry (given to every client: told of each retry of a call).
function M.open(opts)
  local t = setmetatable({ kind = opts.kind, clients = {}, on_retry = opts.on_retry }, Target)
  if opts.kind == "sim" and not opts.sim then
    local knobs = knobs_file(opts.dir, opts.stack)
    -- FO_SIM_* fill what the file leaves out: a bad one is the user's config error too
    local ok, err = pcall(require("fo.sim.knobs").new, knobs)
    if not ok then
      require("fo.engine.errors").raise("config", ("%s; fix or unset the variable"):format(
        tostring(err)))
    end
    t.sim = require("fo.sim").new{ file = ("%s/%s.sim.json"):format(opts.dir, opts.stack),
      knobs = knobs }
  else
    t.sim = opts.sim
  end
  return t
end

--- A client of `service` in `region`, shared by every resource of the run.
function Target:client(service, region)
  local key = service .. "\0" .. tostring(region)
  local c = self.clients[key]
  if c then return c end
  if self.kind == "sim" then
    c = self.sim:client(service, { region = region, on_retry = self.on_retry,
      retry_defaults = M.RETRY_DEFAULTS })
  else
    local ctor = require("fo.aws")[service]
    if not ctor then error(("no AWS client for service '%s'"):format(tostring(service)), 2) end
    c = ctor{ region = region, on_retry = self.on_retry, retry_defaults = M.RETRY_DEFAULTS }
  end
  self.clients[key] = c
  return c
end

--- Calls counted by the simulator ({total=, mutating=}), nil for AWS.
function Target:counts()
  if not self.sim then return nil end
  local c = self.sim:counts()
  return { total = c.total, mutating = c.mutating }
end

return M
