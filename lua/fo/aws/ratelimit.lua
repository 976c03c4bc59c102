-- The client-side rate limiter of the "adaptive" retry mode, so that fo slows down instead
-- of provoking the throttling it then suffers: a token bucket per endpoint (a service in a
-- region; a global service has one) whose fill rate follows the SDKs' CUBIC rule
-- (botocore retries/adaptive.py, throttling.py): on a throttling answer the rate drops to
-- 0.7 × the rate fo was sending at, then grows back along a cubic curve — slowly at first,
-- faster once past the old rate. Two differences from botocore, both so that a burst of
-- throttling answers to requests sent together does not shrink the rate many times over:
-- the rate drops at most once per second, and the sending rate is counted over the last
-- second (botocore smooths it over time, idle time included, so the first throttling
-- after a pause cuts the rate to its minimum). Where AWS documents an account's API rate
-- (Route 53: 10 requests/s, burst 50), the bucket never fills faster, from the start; for
-- the others it limits nothing until the first throttling answer. Waiting is fo.sleep:
-- other tasks run meanwhile.
local core = require "fo.core"

local M = {}

M.BETA = 0.7          -- the share of the sending rate kept after a throttling answer
M.SCALE = 0.4         -- CUBIC's scale constant C (requests/s per s³)
M.MIN_RATE = 0.5      -- requests/s: the slowest the bucket ever fills
M.WINDOW = 1          -- seconds: the sending rate is counted over it; at most one drop per window

-- Documented API rates per account (requests/s and burst), by endpoint service name: Route
-- 53 developer guide, "throttling-api-requests". EC2 limits each action separately (per
-- action buckets), so no one rate for the endpoint applies there.
M.DOCUMENTED = {
  route53 = { rate = 10, burst = 50 },
}

local Limiter = {}
Limiter.__index = Limiter

--- A limiter. opts: rate and burst (a documented ceiling; nil: none), now (clock, seconds;
--- default fo.now) and sleep (default fo.sleep) as hooks for tests.
function M.new(opts)
  opts = opts or {}
  local now = opts.now or core.now
  local self = setmetatable({ now = now, sleep = opts.sleep or core.sleep,
    ceiling = opts.rate, burst = opts.burst or opts.rate,
    enabled = opts.rate ~= nil, -- limiting (from the start with a documented rate)
    fill_rate = opts.rate or 0, max_capacity = opts.burst or opts.rate or 0,
    capacity = opts.burst or opts.rate or 0, last_refill = now(),
    w_max = 0, k = 0, last_drop = nil, -- CUBIC: rate before the last drop, time to regain it
    sent = {}, sent_head = 1, sent_tail = 0, -- send times within the last WINDOW
    throttled = 0, answers = 0 }, Limiter)
  return self
end

local function refill(self)
  local t = self.now()
  self.capacity = math.min(self.max_capacity,
    self.capacity + (t - self.last_refill) * self.fill_rate)
  self.last_refill = t
end

-- Sets the fill rate (at least MIN_RATE, at most the ceiling); the bucket holds one second's
-- worth (the documented burst at the documented rate).
local function set_rate(self, rate)
  refill(self)
  if self.ceiling and rate >= self.ceiling then
    self.fill_rate, self.max_capacity = self.ceiling, self.burst
  else
    self.fill_rate = math.max(rate, M.MIN_RATE)
    self.max_capacity = math.max(self.fill_rate, 1)
  end
  self.capacity = math.min(self.capacity, self.max_capacity)
end

-- Requests sent within the last WINDOW, per second.
local function sending_rate(self, t)
  local sent, h = self.sent, self.sent_head
  while h <= self.sent_tail and sent[h] <= t - M.WINDOW do sent[h] = nil; h = h + 1 end
  self.sent_head = h
  return (self.sent_tail - h + 1) / M.WINDOW
end

-- Longest sleep between looks at the bucket: a rate that grows meanwhile is felt this soon;
-- and the shortest (a timer's granularity).
M.MAX_NAP = 0.25
M.MIN_NAP = 0.001

--- Waits (on the event loop) until a request may be sent; returns the seconds waited.
function Limiter:acquire()
  local started = self.now()
  while self.enabled do
    refill(self)
    if self.capacity >= 1 - 1e-9 then -- (refills of computed sleeps fall short by rounding)
      self.capacity = self.capacity - 1
      break
    end
    self.sleep(math.max(math.min((1 - self.capacity) / self.fill_rate, M.MAX_NAP), M.MIN_NAP))
  end
  local t = self.now()
  sending_rate(self, t)
  self.sent_tail = self.sent_tail + 1
  self.sent[self.sent_tail] = t
  return t - started
end

local function zero_point(w_max)
  return (w_max * (1 - M.BETA) / M.SCALE) ^ (1 / 3)
end

--- Records an answer (success, error or transport failure; `throttled`: a throttling
--- error) and adjusts the rate. Returns the fill rate (requests/s; 0 = not limiting).
function Limiter:record(throttled)
  local t = self.now()
  self.answers = self.answers + 1
  if throttled then
    self.throttled = self.throttled + 1
    if self.last_drop and t - self.last_drop < M.WINDOW then return self.fill_rate end
    local rate = math.max(sending_rate(self, t), M.MIN_RATE)
    if self.enabled then rate = math.min(rate, self.fill_rate) end
    self.w_max, self.k, self.last_drop = rate, zero_point(rate), t
    self.enabled = true
    set_rate(self, rate * M.BETA)
  elseif self.enabled and self.last_drop then
    set_rate(self, M.SCALE * (t - self.last_drop - self.k) ^ 3 + self.w_max)
  end
  return self.enabled and self.fill_rate or 0
end

-- Limiters by credentials lookup (weak: a dropped simulator takes its limiters along),
-- then endpoint URL.
local registry = setmetatable({}, { __mode = "k" })

--- The shared limiter of endpoint `url` of `service` (fo's name) for the credentials lookup
--- function `env`.
function M.for_endpoint(env, service, url)
  local per = registry[env]
  if not per then per = {}; registry[env] = per end
  local l = per[url]
  if not l then
    local d = M.DOCUMENTED[service] or {}
    l = M.new{ rate = d.rate, burst = d.burst }
    per[url] = l
  end
  return l
end

return M
