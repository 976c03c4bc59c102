-- Runs operations along a dependency graph: each starts, as a task, as soon as the
-- operations it depends on are done, with at most `parallel` in flight. After a failure
-- nothing new starts (stop_on_failure) or only what does not depend on it.
local task = require "fo.task"
local core = require "fo.core"
local waitlist = require "fo.engine.waitlist"

local M = {}

-- Keeps the error value (a table error keeps its fields) and where it was raised.
local function capture(err)
  return { value = err, traceback = debug.traceback(task.describe(err), 2) }
end

--- nodes: array of { key=, deps = {keys}, run = function(node) (may wait), inline = bool
--- (cheap, runs without a task or a parallel slot) }. opts: parallel (default 10),
--- stop_on_failure, on_start(node), on_done(node). Each node gets started, finished
--- (fo.now() seconds), ok, error, traceback. Returns { done = {...}, failed = {...},
--- skipped = {...} } (nodes, in completion order; skipped in input order).
function M.run(nodes, opts)
  opts = opts or {}
  local parallel = opts.parallel or 10
  local by_key, waiting, succ = {}, {}, {}
  for _, n in ipairs(nodes) do by_key[n.key] = n end
  for _, n in ipairs(nodes) do
    local w = 0
    for _, k in ipairs(n.deps or {}) do
      local d = by_key[k]
      if d and d ~= n then
        w = w + 1
        succ[d] = succ[d] or {}
        table.insert(succ[d], n)
      end
    end
    waiting[n] = w
  end
  local ready, head, tail = {}, 1, 0 -- a FIFO queue
  local function push(n)
    tail = tail + 1
    ready[tail] = n
  end
  for _, n in ipairs(nodes) do
    if waiting[n] == 0 then push(n) end
  end
  local result = { done = {}, failed = {}, skipped = {} }
  local in_flight, stopped = 0, false
  local finished = {}
  local wake = waitlist.new()

  local function handle(node)
    node.finished = core.now()
    if opts.on_done then opts.on_done(node) end
    if node.ok then
      result.done[#result.done + 1] = node
      for _, s in ipairs(succ[node] or {}) do
        waiting[s] = waiting[s] - 1
        if waiting[s] == 0 then push(s) end
      end
    else
      result.failed[#result.failed + 1] = node
      if opts.stop_on_failure then stopped = true end
    end
  end

  local function execute(node)
    local ok, err = xpcall(node.run, capture, node)
    node.ok = ok
    if not ok then node.error, node.traceback = err.value, err.traceback end
  end

  local function start(node)
    node.started = core.now()
    if opts.on_start then opts.on_start(node) end
    if node.inline then
      execute(node)
      handle(node)
      return
    end
    in_flight = in_flight + 1
    task.spawn(function()
      execute(node)
      finished[#finished + 1] = node
      wake:wake_all()
    end)
  end

  while true do
    while not stopped and head <= tail and (in_flight < parallel or ready[head].inline) do
      local n = ready[head]
      ready[head], head = nil, head + 1
      start(n)
    end
    if in_flight == 0 and (stopped or head > tail) then break end
    if #finished == 0 then wake:wait() end
    local batch = finished
    finished = {}
    for _, n in ipairs(batch) do
      in_flight = in_flight - 1
      handle(n)
    end
  end
  for _, n in ipairs(nodes) do
    if n.ok == nil then result.skipped[#result.skipped + 1] = n end
  end
  return result
end

return M
