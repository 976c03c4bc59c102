-- Route 53's API rate limits: token buckets per account on the sim's virtual clock (Route
-- 53 developer guide, "throttling-api-requests"). Every call takes a
-- token from the account bucket; some operations also from their own. A call that finds
-- a bucket empty is refused with 400 Throttling "Rate exceeded" and takes nothing.
local M = {}

--- bucket name → {burst = tokens when full, rate = tokens refilled per second}.
--- Operations not listed use only `account`.
M.RATES = {
  account = { burst = 50, rate = 10 },
  CreateHealthCheck = { burst = 50, rate = 0.5 },
  DeleteHealthCheck = { burst = 15, rate = 3 },
  GetHealthCheckStatus = { burst = 4, rate = 1 },
}

--- Set to false to switch the limits off (tests that hammer the API on purpose).
M.enabled = true

local function level(b, spec, now)
  local tokens = b.tokens + (now - b.t) * spec.rate
  if tokens > spec.burst then tokens = spec.burst end
  return tokens
end

--- Takes the tokens for `op` from the buckets in `db` (the account's Route 53 state), or
--- raises Throttling.
function M.take(ctx, db, op)
  if not M.enabled then return end
  local now = ctx:now()
  db.rate_buckets = db.rate_buckets or {}
  local names = { "account" }
  if M.RATES[op] then names[2] = op end
  local levels = {}
  for i, name in ipairs(names) do
    local spec = M.RATES[name]
    local b = db.rate_buckets[name] or { tokens = spec.burst, t = now }
    db.rate_buckets[name] = b
    levels[i] = level(b, spec, now)
    if levels[i] < 1 then
      ctx:fail("Throttling", "Rate exceeded", 400)
    end
  end
  for i, name in ipairs(names) do
    db.rate_buckets[name] = { tokens = levels[i] - 1, t = now }
  end
end

return M
