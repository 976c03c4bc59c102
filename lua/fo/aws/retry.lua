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

--- Max attempts from the option, AWS_MAX_ATTEMPTS, or 3; raises on a bad value.
function M.max_attempts(opts, env)
  local v, where = opts and opts.max_attempts, "max_attempts"
  if v == nil then
    local e = (env or os.getenv)("AWS_MAX_ATTEMPTS")
    if e and e ~= "" then v, where = e, "AWS_MAX_ATTEMPTS" end
  end
  if v == nil then return M.DEFAULT_MAX_ATTEMPTS end
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) then
    error(("%s must be a positive integer, got '%s'"):format(where, tostring(v)), 0)
  end
  return math.tointeger(n)
end

--- The retry state of one call: policy:decide(failure, attempt) → delay in seconds, or
--- nil and why not ("not retryable", "attempts exhausted", "retry quota exhausted");
--- policy:succeeded() refunds the quota. opts: max_attempts, quota, random.
function M.policy(opts)
  local p = { max_attempts = opts.max_attempts or M.DEFAULT_MAX_ATTEMPTS,
              quota = opts.quota or M.new_quota(), random = opts.random or math.random,
              held = nil }
  function p:decide(failure, attempt)
    local class = M.classify(failure)
    if not class then return nil, "not retryable" end
    if attempt >= self.max_attempts then return nil, "attempts exhausted", class end
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
