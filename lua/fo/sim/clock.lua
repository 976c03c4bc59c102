-- Virtual time for the simulator: the wall clock plus an offset that advance() grows,
-- and a queue of scheduled work (the failover model's periodic checks) run in time
-- order as virtual time passes it.
local core = require "fo.core"

local M = {}
local Clock = {}
Clock.__index = Clock

--- A clock. opts.time: the real clock (default fo.time, wall seconds); opts.offset.
function M.new(opts)
  opts = opts or {}
  return setmetatable({ real = opts.time or core.time, offset = opts.offset or 0,
    jobs = {}, seq = 0, running = false }, Clock)
end

--- Virtual time, seconds since the epoch (fractions included).
function Clock:now()
  return self.real() + self.offset
end

-- Earliest job first; equal times in scheduling order.
local function earliest(jobs)
  local best, bi
  for i, j in ipairs(jobs) do
    if not best or j.t < best.t or (j.t == best.t and j.seq < best.seq) then best, bi = j, i end
  end
  return best, bi
end

local function add(self, job)
  self.seq = self.seq + 1
  job.seq = self.seq
  self.jobs[#self.jobs + 1] = job
  job.cancel = function()
    for i, j in ipairs(self.jobs) do
      if j == job then table.remove(self.jobs, i) return end
    end
  end
  return job
end

--- Runs fn(t) once at virtual time t. Returns a handle with :cancel().
function Clock:at(t, fn)
  assert(type(t) == "number" and type(fn) == "function", "clock:at(t, fn)")
  return add(self, { t = t, fn = fn })
end

--- Runs fn(t) every `interval` seconds of virtual time, the first time one interval from
--- now (opts.start: the first time instead). Returns a handle with :cancel().
function Clock:every(interval, fn, opts)
  assert(type(interval) == "number" and interval > 0 and type(fn) == "function",
    "clock:every(interval > 0, fn)")
  local start = opts and opts.start or self:now() + interval
  return add(self, { t = start, fn = fn, interval = interval })
end

-- Runs every job due at or before `target`, in time order. While a job runs, now()
-- reads the job's time, so what it does is stamped when it happened.
local function run_until(self, target)
  if self.running then error("the sim clock cannot advance from inside a scheduled job", 3) end
  self.running = true
  local ok, err = pcall(function()
    while true do
      local job, i = earliest(self.jobs)
      if not job or job.t > target then break end
      table.remove(self.jobs, i)
      local due = job.t
      if job.interval then
        job.t = due + job.interval
        self.jobs[#self.jobs + 1] = job -- same handle: cancel() still finds it
      end
      local real_now = self.real() + self.offset
      if due > real_now then self.offset = self.offset + (due - real_now) end
      job.fn(due)
    end
  end)
  self.running = false
  if not ok then error(err, 0) end
end

--- Moves virtual time forward by `seconds`, running what falls due on the way.
function Clock:advance(seconds)
  assert(type(seconds) == "number" and seconds >= 0, "clock:advance(seconds >= 0)")
  local target = self:now() + seconds
  run_until(self, target)
  local now = self:now()
  if now < target then self.offset = self.offset + (target - now) end
end

--- Runs what real time has made due (the sim calls it before each request, so a served
--- sim's health checks keep running without anyone advancing the clock).
function Clock:run_due()
  if self.running or #self.jobs == 0 then return end
  run_until(self, self:now())
end

--- Number of scheduled jobs.
function Clock:pending()
  return #self.jobs
end

return M
