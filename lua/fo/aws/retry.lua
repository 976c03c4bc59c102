-- AWS SDK "standard" retry mode: which failures are retryable (data, in one place),
-- exponential backoff with full jitter capped at 20 s, Retry-After, and a retry quota
-- so that a burst of failures does not multiply the load on a struggling service.
local M = {}

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
M.TRANSIENT_TRANSPORT = { timeout = true, connect = true, io = true }
M.EXPIRED_CREDENTIALS = { ExpiredToken = true, ExpiredTokenException = true,
                          RequestExpired = true }

M.MAX_BACKOFF = 20
M.QUOTA = 500
M.RETRY_COST = 5
M.TIMEOUT_COST = 10

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

--- Seconds to wait before attempt `attempt` + 1: random in [0, min(20, 2^(attempt-1))).
function M.backoff(attempt, random)
  random = random or math.random
  return random() * math.min(M.MAX_BACKOFF, 2 ^ (attempt - 1))
end

--- The server's requested delay in seconds (Retry-After seconds, x-amz-retry-after ms).
function M.retry_after(headers)
  if not headers then return nil end
  local ms = tonumber(headers["x-amz-retry-after"] or "")
  if ms then return ms / 1000 end
  return tonumber(headers["retry-after"] or "")
end

--- A retry quota (token bucket) shared by the calls to one endpoint.
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
    self.available = math.min(self.capacity, self.available + (cost or 1))
  end
  return q
end

local quotas = {}
--- The quota of an endpoint URL (created on first use).
function M.quota_for(url)
  local q = quotas[url]
  if not q then q = M.new_quota(); quotas[url] = q end
  return q
end

--- Max attempts from the option, AWS_MAX_ATTEMPTS, or 3.
function M.max_attempts(opts, env)
  local v = opts.max_attempts or tonumber((env or os.getenv)("AWS_MAX_ATTEMPTS") or "")
  v = tonumber(v) or 3
  if v < 1 or v ~= math.floor(v) then
    error(("max attempts must be a positive integer, got %s"):format(tostring(v)), 0)
  end
  return v
end

return M
