-- Waiters from the models' waiters-2 definitions: poll an operation every `delay` seconds
-- (fo.sleep, so other tasks run meanwhile) until an acceptor says success or failure,
-- for at most maxAttempts polls and, when asked, a timeout in seconds.
--
-- Acceptors are tried in order on each answer; the first that matches decides:
--   path     JMESPath argument on the output equals expected
--   pathAll  the argument is a non-empty list and every element equals expected
--   pathAny  the argument is a list and some element equals expected
--   status   the HTTP status equals expected (also for error answers)
--   error    the call failed with the error code expected (true: any error, false: none)
-- A failed call that no acceptor matches ends the wait at once (an unexpected error),
-- except a retryable one (throttling, 5xx, a timeout or refused connection) that the
-- client's own retries did not get past: the service is slow, not saying no, so the wait
-- goes on polling (state "retry") until its attempts or timeout run out.
--
-- Two schedules. The model's (botocore's): a poll every `delay` seconds, at most
-- maxAttempts polls. The notice schedule (opts.schedule = "notice", what fo uses against
-- AWS): the first re-check after NOTICE_FIRST seconds, then every NOTICE_FRACTION of the
-- time waited so far, never more than `delay` apart — so a wait that ends is noticed within
-- max(10 % of the time waited, NOTICE_FIRST) and never later than the model's schedule
-- would notice it (a DynamoDB table ACTIVE after 2 s is seen at 2-3 s, not at the
-- TableExists waiter's 20 s). maxAttempts then bounds the time the model's schedule would
-- wait ((maxAttempts - 1) x delay), not the number of polls. A poll answered with
-- throttling or another retryable error doubles the delay (up to `delay`) and the schedule
-- stays at least that slow for the rest of the wait.
local jmespath = require "fo.aws.jmespath"
local suggest = require "fo.aws.suggest"
local AwsError = require "fo.aws.error"
local core = require "fo.core"
local cjson = require "cjson"

local M = {}

--- The error raised when a wait ends without success: service, waiter, operation,
--- reason ("failure", "timeout", "max_attempts", "error"), attempts, state (the last
--- state seen: "retry", "pending" = no acceptor matched, "failure", "error"),
--- last (that state's evidence, as text), error (the AWS error, for reason "error" or
--- when the last answer was one).
local WaiterError = {}
WaiterError.__index = WaiterError
WaiterError.__name = "fo.aws.WaiterError"
M.Error = WaiterError

local REASONS = {
  failure = "reached a failure state",
  timeout = "timed out",
  max_attempts = "gave up",
  error = "stopped on an unexpected error",
}

function WaiterError.__tostring(e)
  local s = ("%s waiter %s %s after %d attempt%s"):format(e.service, e.waiter,
    REASONS[e.reason] or e.reason, e.attempts, e.attempts == 1 and "" or "s")
  if e.reason == "timeout" then s = s .. (" (timeout %g s)"):format(e.timeout) end
  if e.reason == "max_attempts" then s = s .. " (max attempts)" end
  return s .. ("; last state: %s (%s)"):format(e.state, e.last)
end

--- True when e is a waiter error (and, if given, ended for that reason).
function WaiterError.is(e, reason)
  return getmetatable(e) == WaiterError and (reason == nil or e.reason == reason)
end

local function show(v)
  if v == nil then return "null" end
  if type(v) == "string" then return ("%q"):format(v) end
  local ok, s = pcall(cjson.encode, v)
  return ok and s or tostring(v)
end

-- Evaluates an acceptor's argument; a type error (length() of a missing list) is no match.
local function search(expr, output)
  local ok, v = pcall(jmespath.search, expr, output)
  if ok then return v end
  return nil, v
end

local function matches(a, ok, result, status)
  local m = a.matcher
  if m == "error" then
    if a.expected == false then return ok end
    if ok then return false end
    return a.expected == true or result.code == a.expected
  end
  if m == "status" then return status == a.expected end
  if not ok then return false end
  local v = search(a.argument, result)
  if m == "path" then return jmespath.equal(v, a.expected) end
  if type(v) ~= "table" then return false end
  if m == "pathAll" then
    if #v == 0 then return false end
    for _, x in ipairs(v) do
      if not jmespath.equal(x, a.expected) then return false end
    end
    return true
  end
  if m == "pathAny" then
    for _, x in ipairs(v) do
      if jmespath.equal(x, a.expected) then return true end
    end
    return false
  end
  error(("waiter acceptor has an unknown matcher '%s'"):format(tostring(m)), 0)
end

-- What the last answer looked like, for the error message: the error code, or each
-- acceptor's argument with its value.
local function evidence(w, ok, result, status)
  if not ok then return ("error %s, HTTP %s"):format(tostring(result.code), tostring(status)) end
  local parts, seen = {}, {}
  for _, a in ipairs(w.acceptors) do
    if a.argument and not seen[a.argument] then
      seen[a.argument] = true
      local v, err = search(a.argument, result)
      parts[#parts + 1] = ("%s = %s"):format(a.argument, err and ("<" .. err .. ">") or show(v))
    end
  end
  if #parts == 0 then parts[1] = "HTTP " .. tostring(status) end
  return table.concat(parts, "; ")
end

local function describe_acceptor(a)
  if a.matcher == "error" or a.matcher == "status" then
    return ("%s == %s"):format(a.matcher, show(a.expected))
  end
  return ("%s %s == %s"):format(a.matcher, a.argument, show(a.expected))
end

--- The waiter definition called `name`, or raises naming the close one / listing all.
function M.definition(model, service, name)
  local w = model.waiters[name]
  if w then return w end
  local names = {}
  for k in pairs(model.waiters) do names[#names + 1] = k end
  table.sort(names)
  error(("%s has no waiter '%s'%s; waiters: %s"):format(service, tostring(name),
    suggest.hint(name, names), #names > 0 and table.concat(names, ", ") or "none"), 0)
end

--- The notice schedule's first re-check (seconds) and the share of the time waited so far
--- it sleeps before each next poll.
M.NOTICE_FIRST = 1
M.NOTICE_FRACTION = 0.1

--- The notice schedule's delay before the next poll of a wait that has lasted `elapsed`
--- seconds: NOTICE_FRACTION of it, at least `floor` (NOTICE_FIRST, more after throttling),
--- at most `cap` (the waiter's own delay).
function M.notice_delay(elapsed, cap, floor)
  return math.min(cap, math.max(floor or M.NOTICE_FIRST, elapsed * M.NOTICE_FRACTION))
end

--- The notice schedule's floor after a throttled (or otherwise retryable) answer: twice
--- the last delay, at most `cap`, never below the floor so far.
function M.backed_off(floor, last_delay, cap)
  return math.min(cap, math.max(floor, 2 * (last_delay or floor)))
end

local function positive(v, what)
  if v ~= nil and (type(v) ~= "number" or v < 0) then
    error(("wait: %s must be a number >= 0, got %s"):format(what, tostring(v)), 0)
  end
  return v
end

--- Runs waiter `name` of the client's model with the operation's params. opts: delay
--- (seconds between polls; with schedule "notice" the longest gap), max_attempts, timeout
--- (seconds overall), schedule ("model", the default, or "notice"), first_after (seconds
--- to sleep before the first poll, for a wait whose start is already known to be pending:
--- the answer of the call that began it said so; the schedule and the bounds still count
--- from the start), sleep and now (hooks: core.sleep and core.now by default).
--- Returns the last output (nil when success came from an error acceptor) and the
--- number of attempts; raises a WaiterError otherwise.
function M.wait(client, name, params, opts)
  opts = opts or {}
  local w = M.definition(client.model, client.service, name)
  local delay = positive(opts.delay, "delay") or w.delay
  local max_attempts = positive(opts.max_attempts, "max_attempts") or w.maxAttempts
  local timeout = positive(opts.timeout, "timeout")
  local first_after = positive(opts.first_after, "first_after")
  local sleep, now = opts.sleep or core.sleep, opts.now or core.now
  local schedule = opts.schedule or "model"
  if schedule ~= "model" and schedule ~= "notice" then
    error(("wait: schedule must be \"model\" or \"notice\", got %s"):format(tostring(schedule)), 0)
  end
  local started = now()
  local deadline = timeout and started + timeout
  -- notice: the model's attempts as time, the moment its last poll would come
  local budget = started + math.max(max_attempts - 1, 0) * delay
  local floor, last_delay = math.min(M.NOTICE_FIRST, delay), nil
  local attempt = 0
  if first_after and first_after > 0 then
    if deadline then first_after = math.min(first_after, deadline - started) end
    sleep(first_after)
  end

  local function fail(reason, state, last, err)
    error(setmetatable({ service = client.service, waiter = name, operation = w.operation,
      reason = reason, state = state, last = last, attempts = attempt, timeout = timeout,
      error = err }, WaiterError), 0)
  end

  while true do
    attempt = attempt + 1
    local ok, result, meta = pcall(client._invoke, client, w.operation, params)
    if not ok and not AwsError.is(result) then
      error(result, 0) -- not an answer from AWS: bad params, no credentials, ...
    end
    local status = ok and meta and meta.status or (not ok and result.status) or nil
    local state, acceptor
    for _, a in ipairs(w.acceptors) do
      if matches(a, ok, result, status) then
        state, acceptor = a.state, a
        break
      end
    end
    if state == "success" then return ok and result or nil, attempt end
    local last = evidence(w, ok, result, status)
    local err = not ok and result or nil
    if state == "failure" then
      fail("failure", "failure", describe_acceptor(acceptor) .. ": " .. last, err)
    end
    if not state and not ok then
      if not result.retryable then fail("error", "error", tostring(result), err) end
      state = "retry"
    end
    state = state or "pending"
    if schedule == "model" then
      if attempt >= max_attempts then fail("max_attempts", state, last, err) end
      if deadline and now() + delay > deadline then fail("timeout", state, last, err) end
      sleep(delay)
    else
      -- the service is slow or busy (not an acceptor's "not yet"): poll less often
      if not ok and result.retryable then floor = M.backed_off(floor, last_delay, delay) end
      local limit, reason = budget, "max_attempts"
      if deadline and deadline <= limit then limit, reason = deadline, "timeout" end
      local t = now()
      if t >= limit - 1e-6 then fail(reason, state, last, err) end
      -- the last poll comes at the limit rather than not at all
      last_delay = math.min(M.notice_delay(t - started, delay, floor), limit - t)
      sleep(last_delay)
    end
  end
end

return M
