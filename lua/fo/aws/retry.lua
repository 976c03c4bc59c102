-- AWS SDK "standard" retry mode: which failures are retryable (data, in one place),
-- exponential backoff with full jitter capped at 20 s, Retry-After, and a retry quota
-- so that a burst of failures does not multiply the load on a struggling service.
local M = {}

-- Error codes, as botocore's standard mode and the other SDKs list them; the extra
-- transient codes are the ones EC2, STS and the query services answer with under load.
M.THROTTLING = {
  Throttling = true, ThrottlingException = true, ThrottledException = true,
  RequestThrottledException = true, TooManyRequestsException = true,
  ProvisionedThroughputExceededException = true, TransactionInProgressException = true,
  RequestLimitExceeded = true, BandwidthLimitExceeded = true, LimitExceededException = true,
  RequestThrottled = true, SlowDown = true, PriorRequestNotComplete = true,
  EC2ThrottledException = true,
}
M.TRANSIENT = {
  RequestTimeout = true, RequestTimeoutException = true, InternalError = true,
  InternalFailure = true, ServiceUnavailable = true, IDPCommunicationError = true,
}
M.TRANSIENT_STATUS = { [500] = true, [502] = true, [503] = true, [504] = true }
-- fo.http error kinds: a refused connection, a broken transfer and a timeout may succeed
-- next time; resolve (no such host), tls (bad certificate) and url errors will not.
M.TRANSIENT_TRANSPORT = { timeout = true, connect = true, io = true }
-- Answers that mean "your credentials expired": refresh them once and try again.
M.EXPIRED_CREDENTIALS = { ExpiredToken = true, ExpiredTokenException = true,
                          RequestExpired = true }

M.DEFAULT_MAX_ATTEMPTS = 3
M.BASE = 1           -- seconds
M.MAX_BACKOFF = 20   -- seconds; also the cap on a server's Retry-After
M.QUOTA = 500
M.RETRY_COST = 5
M.TIMEOUT_COST = 10
M.NO_RETRY_REFUND = 1

--- Classifies a failure: "throttle", "transient", "timeout" or nil (not retryable).
--- `code`/`status` describe an AWS error response, `kind` a transport error.
function M.classify(f)
  if f.kind then
    if not M.TRANSIENT_TRANSPORT[f.kind] then return nil end
    return f.kind == "timeout" and "timeout" or "transient"
  end
  if f.code and M.THROTTLING[f.code] then return "throttle" end
  if f.code and M.TRANSIENT[f.code] then return "transient" end
  if f.status and M.TRANSIENT_STATUS[f.status] then return "transient" end
  return nil
end

--- Seconds to wait after failed attempt `attempt` (1-based): full jitter,
--- random() × min(MAX_BACKOFF, BASE × 2^(attempt-1)).
function M.backoff(attempt, random)
  random = random or math.random
  return random() * math.min(M.MAX_BACKOFF, M.BASE * 2 ^ (attempt - 1))
end

--- The server's requested delay in seconds (x-amz-retry-after in ms, Retry-After in
--- seconds; an HTTP-date Retry-After is ignored), or nil.
function M.retry_after(headers)
  if not headers then return nil end
  local ms = tonumber(headers["x-amz-retry-after"] or "")
  if ms and ms >= 0 then return ms / 1000 end
  local s = tonumber(headers["retry-after"] or "")
  if s and s >= 0 then return s end
  return nil
end

--- A retry quota (token bucket): acquire(class) takes the cost of one retry or returns
--- nil when too little is left; release(cost) gives back (1 when no retry was needed).
function M.new_quota(capacity)
  local q = { capacity = capacity or M.QUOTA }
  q.available = q.capacity
  function q:acquire(class)
    local cost = class == "timeout" and M.TIMEOUT_COST or M.RETRY_COST
    if self.available < cost then return nil end
    self.available = self.available - cost
    return cost
  end
  function q:release(cost)
    self.available = math.min(self.capacity, self.available + (cost or M.NO_RETRY_REFUND))
  end
  return q
end

-- One quota per endpoint URL, shared by every call to it (the SDKs keep one per client).
local quotas = {}
--- The quota of an endpoint URL (created on first use).
function M.quota_for(url)
  local q = quotas[url]
  if not q then q = M.new_quota(); quotas[url] = q end
  return q
end

-- The retry modes a user can choose (AWS_RETRY_MODE, the profile's retry_mode, the
-- retry_mode option). "legacy" is accepted for configurations written for older SDKs and
-- behaves as "standard" (fo has no other); "adaptive" adds the client-side rate limiter
-- (fo.aws.ratelimit).
M.MODES = { standard = true, adaptive = true, legacy = true }
M.DEFAULT_MODE = "standard"

local function check_attempts(v, where)
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) then
    error(("%s must be a positive integer, got '%s'"):format(where, tostring(v)), 0)
  end
  return math.tointeger(n)
end

local function check_mode(v, where)
  if type(v) ~= "string" or not M.MODES[v] then
    error(("%s must be standard, adaptive or legacy, got '%s'"):format(where, tostring(v)), 0)
  end
  return v == "legacy" and "standard" or v
end

local function set(v)
  return v ~= nil and v ~= ""
end

--- The retry settings of a client (or of one aws.call): { mode = "standard"|"adaptive",
--- max_attempts = n, max_transient = n or nil, source = {mode=, max_attempts=} (where each
--- came from) }. Each setting is taken from, first found: the option (opts.retry_mode,
--- opts.max_attempts), AWS_RETRY_MODE / AWS_MAX_ATTEMPTS, `retry_mode` / `max_attempts` in
--- the profile (opts.profile or the selected one) of the shared config file, then
--- opts.retry_defaults ({mode=, max_attempts=, max_transient=}: a caller's own defaults,
--- the engine's), then the SDKs' (standard, 3 attempts). max_transient (a smaller budget
--- for failures other than throttling) comes only with the defaults, never with a user's
--- max_attempts. Raises a message naming the setting for a bad value.
function M.config(opts, env)
  opts, env = opts or {}, env or os.getenv
  local mode, mode_from = opts.retry_mode, "retry_mode"
  local attempts, attempts_from = opts.max_attempts, "max_attempts"
  if mode == nil and set(env("AWS_RETRY_MODE")) then
    mode, mode_from = env("AWS_RETRY_MODE"), "AWS_RETRY_MODE"
  end
  if attempts == nil and set(env("AWS_MAX_ATTEMPTS")) then
    attempts, attempts_from = env("AWS_MAX_ATTEMPTS"), "AWS_MAX_ATTEMPTS"
  end
  if mode == nil or attempts == nil then
    local settings, files, profile = require("fo.aws.credentials").profile_settings{ env = env,
      profile = opts.profile }
    settings = settings or {}
    if mode == nil and type(settings.retry_mode) == "string" and set(settings.retry_mode) then
      mode, mode_from = settings.retry_mode,
        ("retry_mode in profile '%s' (%s)"):format(profile, files)
    end
    if attempts == nil and type(settings.max_attempts) == "string"
        and set(settings.max_attempts) then
      attempts, attempts_from = settings.max_attempts,
        ("max_attempts in profile '%s' (%s)"):format(profile, files)
    end
  end
  local defaults = opts.retry_defaults or {}
  local max_transient
  if mode == nil then mode, mode_from = defaults.mode or M.DEFAULT_MODE, "default" end
  if attempts == nil then
    attempts, attempts_from = defaults.max_attempts or M.DEFAULT_MAX_ATTEMPTS, "default"
    max_transient = defaults.max_transient
  end
  return { mode = check_mode(mode, mode_from),
           max_attempts = check_attempts(attempts, attempts_from), max_transient = max_transient,
           source = { mode = mode_from, max_attempts = attempts_from } }
end

--- Max attempts from the option, AWS_MAX_ATTEMPTS, the profile, or 3; raises on a bad value.
function M.max_attempts(opts, env)
  return M.config(opts, env).max_attempts
end

--- The retry state of one call: policy:decide(failure, attempt) → delay in seconds, or
--- nil and why not ("not retryable", "attempts exhausted", "retry quota exhausted");
--- policy:succeeded() refunds the quota. opts: max_attempts (all attempts), max_transient
--- (optional: the failures other than throttling after which the call gives up, so that a
--- large budget for throttling does not keep retrying a service that is down), quota,
--- random.
function M.policy(opts)
  local p = { max_attempts = opts.max_attempts or M.DEFAULT_MAX_ATTEMPTS,
              max_transient = opts.max_transient,
              quota = opts.quota or M.new_quota(), random = opts.random or math.random,
              held = nil, transient_failures = 0 }
  function p:decide(failure, attempt)
    local class = M.classify(failure)
    if not class then return nil, "not retryable" end
    if attempt >= self.max_attempts then return nil, "attempts exhausted", class end
    if class ~= "throttle" and self.max_transient then
      self.transient_failures = self.transient_failures + 1
      if self.transient_failures >= self.max_transient then
        return nil, "attempts exhausted", class
      end
    end
    local cost = self.quota:acquire(class)
    if not cost then return nil, "retry quota exhausted", class end
    self.held = cost
    local delay = M.backoff(attempt, self.random)
    local after = M.retry_after(failure.headers)
    -- The server knows its load better than our jitter does, within our cap.
    if after then delay = math.min(math.max(delay, after), M.MAX_BACKOFF) end
    return delay, class
  end
  function p:succeeded()
    self.quota:release(self.held)
  end
  return p
end

return M
