-- fo.sim: the embedded AWS-compatible simulator. fo.sim.new{...} makes one; handlers
-- for each service (lua/fo/sim/services/<svc>.lua) answer operations against its store.
-- Entry points: sim:invoke (a handler call, for tests), sim:handle (an HTTP request, as
-- AWS receives it), sim:transport / sim:client (fo's clients talking to it in-process).
local models = require "fo.aws.models"
local Store = require "fo.sim.store"
local Clock = require "fo.sim.clock"
local Knobs = require "fo.sim.knobs"
local Recorder = require "fo.sim.recorder"
local SimError = require "fo.sim.error"
local ctx_mod = require "fo.sim.ctx"
local codes = require "fo.sim.codes"
local keys = require "fo.sim.keys"
local regions = require "fo.sim.regions"
local rng = require "fo.sim.rng"
local log = require "fo.log"
local core = require "fo.core"
local waitlist = require "fo.engine.waitlist"

local M = {}
local Sim = {}
Sim.__index = Sim
M.Error = SimError
M.regions = regions
M.DEFAULT_ACCOUNT = keys.DEFAULT_ACCOUNT
M.DEFAULT_KEY = { access_key = keys.DEFAULT.access_key, secret_key = keys.DEFAULT.secret_key }

local SERVICES = { ec2 = true, elbv2 = true, autoscaling = true, route53 = true, dynamodb = true,
  sns = true, cloudwatch = true, iam = true, ssm = true, sts = true,
  kms = true, logs = true, s3 = true,
  acm = true, servicequotas = true }
M.SERVICES = SERVICES

--- A simulator. opts (all optional):
---   account     account id of the default key (default "123456789012")
---   seed        number or string: reproducible ids and fault draws (else FO_SIM_SEED;
---               a file's saved seed wins for ids, so a reloaded sim never repeats one)
---   file        state file (".fo/<stack>.sim.json"): loaded if present (with its log,
---               ".fo/<stack>.sim.log"), each mutating call's changes appended to the log
---   keys        more access keys: { {access_key=, secret_key=, session_token=, account=,
---               user=}, ... } (see Sim:add_key)
---   strict      check handlers' answers against the output shapes (default true)
---   handlers    { svc = { Op = function(ctx, params) ... end } }: extra or replacing
---               handlers (tests)
---   load_services  false: use only `handlers`, not lua/fo/sim/services/*.lua (tests)
---   knobs       a table of knobs (or the knob names directly in opts): latency_ms,
---               latency_jitter_ms, throttle, fail_5xx, consistency_ms, outage,
---               disabled_regions, fail_mutating_call
---   record_calls  how many calls the recorder keeps (the last ones; default 10000, else
---               FO_SIM_RECORD_CALLS); its counts cover every call
---   env         lookup function for FO_SIM_* variables (default os.getenv)
---   record_actions  true: keep the IAM action and resource of every authenticated call
---               in sim.actions ({action=, resource=, service=, operation=, region=};
---               fo.sim.authz), as fo-run --print-policy reads them
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("fo.sim.new{...}: expected a table of options", 2) end
  local env = opts.env or os.getenv
  local seed = opts.seed
  if seed == nil then
    local e = env("FO_SIM_SEED")
    if e and e ~= "" then seed = e end
  end
  local store = opts.file and Store.load(opts.file) or Store.new{ seed = seed }
  local account = opts.account or keys.DEFAULT_ACCOUNT
  local draw_seed = seed ~= nil and rng.seed_of(seed) or store.data.seed
  local self = setmetatable({
    store = store, file = opts.file, account = account,
    clock = Clock.new{ time = opts.time },
    knobs = Knobs.new(opts.knobs or opts, env),
    recorder = Recorder.new(M.record_calls(opts.record_calls, env)),
    keys = keys.table(account, opts.keys),
    strict = opts.strict ~= false,
    overrides = opts.handlers or {},
    load_services = opts.load_services ~= false,
    handlers = {},
    faults = rng.new(rng.mix(draw_seed ~ 0x5eed1)), -- fault and latency draws
    request_ids = rng.new(rng.mix(draw_seed ~ 0x5eed2)), -- request ids
    created_tables = setmetatable({}, { __mode = "k" }),
    created_ids = {},
    actions = opts.record_actions and {} or nil,
  }, Sim)
  -- The failover model (health checks, alarms) runs on the clock from the saved state.
  require("fo.sim.failover").attach(self)
  return self
end

--- The recorder's size: the option, else FO_SIM_RECORD_CALLS, else the default (nil); a
--- value that is not a whole number ≥ 1 is an error naming where it came from.
function M.record_calls(option, env)
  local where, v = "option record_calls", option
  if v == nil then
    local e = (env or os.getenv)("FO_SIM_RECORD_CALLS")
    if e == nil or e == "" then return nil end
    where, v = "FO_SIM_RECORD_CALLS", math.tointeger(tonumber(e))
    if v == nil then v = e end
  end
  if math.type(v) ~= "integer" or v < 1 then
    error(("fo.sim: %s must be a whole number of calls ≥ 1, got %s"):format(where,
      tostring(v)), 0)
  end
  return v
end

-- Handlers --------------------------------------------------------------------------

-- The handler table of `service`: lua/fo/sim/services/<svc>.lua (loaded once; absent
-- file = no handlers) with the sim's overrides on top.
function Sim:_handlers(service)
  local h = self.handlers[service]
  if h then return h end
  h = {}
  local name = "fo.sim.services." .. service
  if self.load_services and package.searchpath(name, package.path) then
    for k, v in pairs(require(name)) do h[k] = v end
  end
  for k, v in pairs(self.overrides[service] or {}) do h[k] = v end
  self.handlers[service] = h
  return h
end

--- Adds or replaces handlers of `service` ({Op = function(ctx, params)}).
function Sim:add_handlers(service, t)
  self.overrides[service] = self.overrides[service] or {}
  for k, v in pairs(t) do self.overrides[service][k] = v end
  self.handlers[service] = nil
end

--- Registers an access key the sim accepts from now on (replacing one of the same id):
--- k = {access_key=, secret_key=, session_token=, account=, user=, arn=}. With
--- session_token it is a temporary key (as STS issues them, ASIA…): requests must carry
--- that token (X-Amz-Security-Token header, or query parameter when presigned), else they
--- get the protocol's unknown-key code. Returns the key's entry.
function Sim:add_key(k)
  local e = keys.entry(k, self.account, "sim:add_key")
  self.keys[e.access_key] = e
  return e
end

--- Stands in for `aws sso login` against the simulated IAM Identity Center (fo.sim.sso):
--- opts = {assignments = {{account=, role=}}, user=, seconds=, start_url=, region=}.
--- Returns the token cache document the AWS CLI writes to ~/.aws/sso/cache.
function Sim:sso_login(opts)
  return require("fo.sim.sso").login(self, opts or {})
end

-- Eventual consistency -------------------------------------------------------------

function Sim:_mark_created(res)
  local t = self.clock:now()
  if type(res) == "table" then self.created_tables[res] = t
  elseif type(res) == "string" then self.created_ids[res] = t end
end

function Sim:_is_fresh(res)
  local window = self.knobs.consistency_ms / 1000
  if window <= 0 then return false end
  local t
  if type(res) == "table" then t = self.created_tables[res]
  elseif type(res) == "string" then t = self.created_ids[res] end
  if not t then return false end
  if self.clock:now() - t < window then return true end
  if type(res) == "string" then self.created_ids[res] = nil end
  return false
end

-- Calls -----------------------------------------------------------------------------

--- A request id in the service's format: DynamoDB's 52 upper-case characters, a UUID
--- elsewhere.
function Sim:_request_id(service)
  if service == "dynamodb" then return self.request_ids:chars(52, rng.UPPER_ALNUM) end
  return self.request_ids:uuid()
end

-- service.Op: message → message (the codec's messages start with the operation).
local function strip_op(msg, service, op)
  msg = tostring(msg)
  local prefix = service .. "." .. op .. ": "
  local at = msg:find(prefix, 1, true)
  return at and msg:sub(at + #prefix) or msg
end

--- The AWS error for params that break the model (the code AWS's own validation gives).
function M.validation_error(service, op, message)
  local code = codes.VALIDATION_BY_SERVICE[service] or codes.for_service(codes.VALIDATION, service)
  message = strip_op(message, service, op)
  if service == "s3" and message:match("LocationConstraint") then
    -- an unknown region named as a bucket's location
    return SimError.new("InvalidLocationConstraint", "The specified location-constraint is not valid")
  end
  if service == "ec2" and message:match("required member is missing") and
    not message:find(";", 1, true) then
    return SimError.new(codes.EC2_MISSING, ("The request must contain the parameter %s")
      :format(message:match("^([^:]+)") or "?"))
  end
  return SimError.new(code, message)
end

-- Runs the handler for c = {service=, region=, operation=, params=, caller=,
-- request_id=}; returns the output or raises a SimError. A handler's Lua error (a bug)
-- becomes the protocol's 500 with the error and traceback in the message.
function Sim:_run_handler(c)
  local handler = self:_handlers(c.service)[c.operation]
  if not handler then
    SimError.raise(codes.for_service(codes.UNKNOWN_OPERATION, c.service),
      ("The action %s is not valid for this web service (the fo simulator does not "
        .. "implement %s.%s)"):format(c.operation, c.service, c.operation))
  end
  local ctx = ctx_mod.new{ sim = self, service = c.service, operation = c.operation,
    region = c.region, account = c.caller and c.caller.account or self.account,
    request_id = c.request_id, caller = c.caller, http = c.http }
  local ok, out = xpcall(handler, function(e)
    if SimError.is(e) then return e end
    return { bug = tostring(e), traceback = debug.traceback(tostring(e), 2) }
  end, ctx, c.params)
  -- a read that changed the state (KMS makes AWS managed keys on first use) is saved too
  c.changed_state = ctx.changed_state
  if not ok then
    if SimError.is(out) then error(out, 0) end
    log.error("sim handler %s.%s failed: %s", c.service, c.operation, out.traceback)
    local e = SimError.new(codes.for_service(codes.SERVER, c.service)[1].code,
      ("simulator bug in handler %s.%s: %s"):format(c.service, c.operation, out.bug), 500)
    e.traceback = out.traceback
    error(e, 0)
  end
  out = out or {}
  if self.strict then
    local proto = require "fo.awsproto"
    if proto.validate_output then
      local vok, verr = pcall(proto.validate_output, models.load(c.service), c.operation, out)
      if not vok then
        log.error("sim handler %s.%s answered what AWS never would: %s", c.service,
          c.operation, tostring(verr))
        error(SimError.new(codes.for_service(codes.SERVER, c.service)[1].code,
          ("simulator bug: handler %s.%s answered outside the output shape: %s")
            :format(c.service, c.operation, strip_op(verr, c.service, c.operation)), 500), 0)
      end
    end
  end
  return out
end

-- Records a finished call and saves the state after a mutating one.
function Sim:_finish(c, status, code)
  local mutating = c.operation ~= "-" and Recorder.is_mutating(c.operation)
  self.recorder:add{ service = c.service, operation = c.operation, region = c.region,
    mutating = mutating, status = status, code = code, t = self.clock:now(),
    request_id = c.request_id }
  if (mutating or c.changed_state) and self.file and status < 500 then self:_persist() end
end

-- Makes the call's changes durable before it is answered. Calls that finish in the same
-- turn of the loop (a served sim answers many at once, the engine runs operations in
-- parallel) share one append and one flush (group commit): the first of a group lets the
-- others finish their handlers (to the loop's next turn), writes, and wakes them in that
-- turn (core.wake_in_turn), so that their answers go out with its own at the loop's next
-- poll, not one turn later. The flush runs in the loop's thread (fo.sim.store_log): handing
-- it to a writer thread and back cost more than it (docs/simulator.md, "State file"); the
-- calls that arrive meanwhile form the next group.
function Sim:_persist()
  local batch = self._batch
  if batch then
    batch.waiting:wait()
    if batch.err then error(batch.err, 0) end
    return
  end
  batch = { waiting = waitlist.new() }
  self._batch = batch
  -- (outside a task of the loop there is no one to wait for: saved at once)
  pcall(core.sleep, 0)
  self._batch = nil
  local ok, err = pcall(self.store.persist, self.store, self.file)
  batch.err = not ok and err or nil
  batch.waiting:wake_all(true)
  if not ok then error(err, 0) end
end

--- Normalizes a region for `service`: the global services answer in "us-east-1" (their
--- signing region), whatever name the caller used ("global", nil).
function M.call_region(service, region)
  if regions.GLOBAL_SERVICES[service] then return regions.GLOBAL_SIGNING_REGION end
  return region
end

--- Calls the handler of service.operation in `region` with `params` as the wire path
--- would after parsing: validates params against the model, runs the handler, checks its
--- answer (strict), records the call, saves after a mutating one. Returns the output;
--- raises a fo.sim.Error (sim.Error.is(e, "Code")). opts.access_key: the caller.
function Sim:invoke(service, region, operation, params, opts)
  if not SERVICES[service] then
    error(("fo.sim: unknown service '%s'"):format(tostring(service)), 2)
  end
  local model = models.load(service)
  if not model.operations[operation] then
    error(("fo.sim: %s has no operation '%s'"):format(service, tostring(operation)), 2)
  end
  region = M.call_region(service, region)
  if not regions.known(region) then
    error(("fo.sim: unknown region '%s' (known: %s)"):format(tostring(region),
      table.concat(regions.names(), ", ")), 2)
  end
  params = params or {}
  local caller = self.keys[opts and opts.access_key or keys.DEFAULT.access_key]
  if not caller then error("fo.sim: unknown access key " .. tostring(opts.access_key), 2) end
  local c = { service = service, region = region, operation = operation, params = params,
    caller = caller, request_id = self:_request_id(service) }
  self.clock:run_due()
  local ok, out = pcall(function()
    local vok, verr = pcall(require("fo.awsproto").validate, model, operation, params)
    if not vok then error(M.validation_error(service, operation, verr), 0) end
    return self:_run_handler(c)
  end)
  if ok then
    self:_finish(c, 200)
    return out
  end
  if SimError.is(out) then self:_finish(c, out.status, out.code) end
  error(out, 0)
end

-- State, clock, knobs ---------------------------------------------------------------

--- Saves the whole state to the sim's file and starts a new log (no-op without a file).
function Sim:save()
  if self.file then self.store:save(self.file) end
end

--- Forgets every resource (and saves the empty state when there is a file). Recorded
--- calls, keys, knobs and scheduled clock work stay.
function Sim:reset()
  self.store:reset()
  self.created_tables = setmetatable({}, { __mode = "k" })
  self.created_ids = {}
  require("fo.sim.failover").arm(self) -- nothing left to evaluate
  self:save()
end

--- Moves virtual time forward by `seconds`, running scheduled work that falls due.
function Sim:advance(seconds)
  self.clock:advance(seconds)
end

--- Virtual time, seconds since the epoch.
function Sim:now()
  return self.clock:now()
end

--- Puts `region` in outage (on defaults to true) or ends it.
function Sim:set_outage(region, on)
  self.knobs:set_outage(region, on == nil or on, self:now())
end

--- Injects a fault short of a region outage in `region` (fo.sim.knobs FAULTS: "az" =
--- zone name, "app" = true, "alb_5xx" = status code, "checkers" = list of Route 53
--- checker regions that cannot reach it); value nil ends it.
function Sim:set_fault(region, kind, value)
  self.knobs:set_fault(region, kind, value, self:now())
end

--- Changes a knob (latency_ms, latency_jitter_ms, throttle, fail_5xx, consistency_ms,
--- disabled_regions: the whole list of opt-in regions the account has not enabled,
--- fail_mutating_call: k, counted from now; 0 turns it off).
function Sim:set_knob(name, value)
  self.knobs:set(name, value)
end

--- Recorded calls matching `filter` (nil, a table of equal fields, or a function).
function Sim:calls(filter)
  return self.recorder:calls(filter)
end

--- Number of recorded calls matching `filter`.
function Sim:count(filter)
  return self.recorder:count(filter)
end

--- {total=, mutating=, by_operation=} of the recorded calls matching `filter`.
function Sim:counts(filter)
  return self.recorder:counts(filter)
end

-- sim:resolve, sim:deliveries, sim:health_check_status: the failover model (failover.lua).
for k, v in pairs(require("fo.sim.failover").methods) do Sim[k] = v end

-- The wire path lives in its own file; its methods join Sim here.
for k, v in pairs(require("fo.sim.wire")) do Sim[k] = v end

return M
