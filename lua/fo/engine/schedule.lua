-- Runs operations along a dependency graph: each starts, in a task (a worker, see start),
-- as soon as the operations it depends on are done, with at most `parallel` in flight. After a failure
-- nothing new starts (stop_on_failure) or only what does not depend on it.
local task = require "fo.task"
local core = require "fo.core"
local waitlist = require "fo.engine.waitlist"

local M = {}

local NONE = {} -- (the dependencies of a node that has none; read only)

-- Keeps the error value (a table error keeps its fields) and where it was raised.
local function capture(err)
  return { value = err, traceback = debug.traceback(task.describe(err), 2) }
end

-- The node each running task's coroutine runs (the report ties AWS retries to their
-- operation with it).
local running = {}

--- The node whose operation the coroutine `co` runs now (nil: none).
function M.node_of(co)
  return running[co]
end

--- nodes: array of { key=, deps = {keys}, run = function(node, release) (may wait; default
--- opts.run), inline = bool (cheap, runs without a task or a parallel slot) }. opts: parallel
--- (default 10), run, stop_on_failure, on_start(node), on_done(node), stop() (true: start
--- nothing more, as after a failure; an interrupt). Each node gets started, finished
--- (fo.now() seconds), ok, error, traceback. release(), run's second argument: called by a
--- running node, it lets the nodes that depend on it start now, before it returns (it keeps
--- its slot); they are started from the caller's task, so they run before the caller's next
--- turn (phase 1 releases once a record is in memory: the dependents' intents join the
--- record's write). Returns { done = {...}, failed = {...}, skipped = {...} } (nodes, in
--- completion order; skipped in input order), interrupted = true when stop() ended it.
--- (A node holds no more than that: a run of thousands keeps them all until it ends.)
function M.run(nodes, opts)
  opts = opts or {}
  local parallel = opts.parallel or 10
  local by_key, waiting, succ, released = {}, {}, {}, {}
  for _, n in ipairs(nodes) do by_key[n.key] = n end
  for _, n in ipairs(nodes) do
    local w = 0
    for _, k in ipairs(n.deps or NONE) do
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

  -- The nodes waiting for `node` may start (once).
  local function release(node)
    if released[node] then return end
    released[node] = true
    for _, s in ipairs(succ[node] or NONE) do
      waiting[s] = waiting[s] - 1
      if waiting[s] == 0 then push(s) end
    end
  end

  local function handle(node)
    node.finished = core.now()
    if opts.on_done then opts.on_done(node) end
    if node.ok then
      result.done[#result.done + 1] = node
      release(node)
    else
      result.failed[#result.failed + 1] = node
      if opts.stop_on_failure then stopped = true end
    end
  end

  local function execute(node, release_early)
    local co = coroutine.running()
    running[co] = node
    local ok, err = xpcall(node.run or opts.run, capture, node, release_early)
    running[co] = nil
    node.ok = ok
    if not ok then node.error, node.traceback = err.value, err.traceback end
  end

  local dispatch

  -- The nodes' tasks are workers, each running one node after another: a task (a coroutine,
  -- its stack, a closure and a Task) per node made ~2 KB of garbage per operation, and a
  -- worker's stack stays warm. An idle worker is woken with its next node through the same
  -- queue a new task starts from (fo.core), so nodes run in the order they would as tasks.
  -- `idle`: the parked workers' coroutines; a worker woken with nil ends. `workers`: those
  -- not ended yet.
  local idle, workers = {}, 0
  local function worker(node)
    local co = coroutine.running()
    local function release_early()
      release(node)
      dispatch(true)
      wake:wake_all()
    end
    while node do
      execute(node, release_early)
      finished[#finished + 1] = node
      wake:wake_all()
      idle[#idle + 1] = co
      node = core.suspend()
    end
    workers = workers - 1
    if workers == 0 then wake:wake_all() end
  end

  -- the inline node running now: only the scheduler's own task starts inline nodes, one at
  -- a time (dispatch from a node's release leaves them), so one closure serves them all
  local inline_node
  local function release_inline()
    release(inline_node)
    dispatch(true)
    wake:wake_all()
  end

  local function start(node)
    node.started = core.now()
    if opts.on_start then opts.on_start(node) end
    if node.inline then
      inline_node = node
      execute(node, release_inline)
      handle(node)
      return
    end
    in_flight = in_flight + 1
    if #idle > 0 then
      local co = idle[#idle]
      idle[#idle] = nil
      core.wake(co, node)
    else
      workers = workers + 1
      task.spawn(worker, node)
    end
  end

  -- Starts ready nodes while there are slots (inline nodes need none). From a node's task
  -- (release), inline nodes are left to the scheduler's own task.
  function dispatch(from_node)
    if not stopped and opts.stop and head <= tail and opts.stop() then
      stopped, result.interrupted = true, true
    end
    while not stopped and head <= tail do
      local n = ready[head]
      if n.inline then
        if from_node then break end
      elseif in_flight >= parallel then
        break
      end
      ready[head], head = nil, head + 1
      start(n)
    end
  end

  while true do
    dispatch(false)
    if in_flight == 0 and (stopped or head > tail) then break end
    if #finished == 0 then wake:wait() end
    local batch = finished
    finished = {}
    for _, n in ipairs(batch) do
      in_flight = in_flight - 1
      handle(n)
    end
  end
  -- every worker is idle now: they end before this returns (a parked one would keep this
  -- run's nodes and tables alive with its closures until the next turn)
  for _, co in ipairs(idle) do core.wake(co) end
  while workers > 0 do wake:wait() end
  for _, n in ipairs(nodes) do
    if n.ok == nil then result.skipped[#result.skipped + 1] = n end
  end
  return result
end

return M
