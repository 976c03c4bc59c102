-- Tasks: coroutines run by the event loop, with join, error propagation and tracebacks.
-- Built on fo.core's park/wake primitives; the main chunk of fo-run is a task too.
local core = require "fo.core"

local M = {}

local Task = {}
Task.__index = Task
Task.__name = "fo.Task"

-- Tasks that failed and that nobody joined: reported when the program ends.
local unjoined_failures = {}
local next_id = 0

local function describe(err)
  if type(err) == "string" then return err end
  local mt = getmetatable(err)
  if mt and mt.__tostring then return tostring(err) end
  if type(err) == "table" and err.message then return tostring(err.message) end
  return tostring(err)
end
M.describe = describe

-- Message handler: keep the error value, record the traceback where it was raised.
-- The frames below the task's own function (xpcall, this module) are noise to users.
local function capture(err)
  local tb = debug.traceback(describe(err), 2)
  tb = tb:gsub("\n\t%[C%]: in function 'xpcall'.*$", "")
  return { value = err, traceback = tb }
end

-- The task each running coroutine belongs to, for coroutines that die without finishing.
local task_of = setmetatable({}, { __mode = "k" })

local function finish(task)
  task.done = true
  local waiters = task.waiters
  task.waiters = {}
  for _, co in ipairs(waiters) do core.wake(co) end
end

local function run(task, fn, ...)
  task_of[coroutine.running()] = task
  local r = table.pack(xpcall(fn, capture, ...))
  if r[1] then
    task.ok, task.results = true, table.pack(table.unpack(r, 2, r.n))
  else
    task.ok, task.error, task.traceback = false, r[2].value, r[2].traceback
    if not task.joined then unjoined_failures[task] = true end
  end
  finish(task)
end

core.on_abandon(function(co, message)
  local task = task_of[co]
  if not task or task.done then return end
  task.ok, task.error = false, message
  task.traceback = debug.traceback(co, message)
  if not task.joined then unjoined_failures[task] = true end
  finish(task)
end)

--- Starts fn(...) as a new task on the event loop; returns the task.
function M.spawn(fn, ...)
  if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
    error("fo.spawn: expected a function, got " .. type(fn), 2)
  end
  next_id = next_id + 1
  local task = setmetatable({ id = next_id, waiters = {}, done = false }, Task)
  core.start(run, task, fn, ...)
  return task
end

function Task:__tostring()
  local state = not self.done and "running" or (self.ok and "done" or "failed")
  return ("fo.Task %d (%s)"):format(self.id, state)
end

--- Waits for the task to end without raising its error.
function Task:wait()
  while not self.done do
    local co = coroutine.running()
    table.insert(self.waiters, co)
    core.suspend()
  end
  self.joined = true
  unjoined_failures[self] = nil
  return self.ok
end

local function raise(task)
  local err = task.error
  if type(err) == "table" then
    if rawget(err, "traceback") == nil then pcall(rawset, err, "traceback", task.traceback) end
    error(err, 0)
  end
  -- A string error comes back with the traceback of the task that raised it.
  error(task.traceback, 0)
end

--- Waits for the task; returns its results or re-raises its error. A table error is
--- raised as the same value (with a `traceback` field); a string error comes back
--- followed by the failed task's traceback.
function Task:join()
  if self:wait() then return table.unpack(self.results, 1, self.results.n) end
  raise(self)
end

--- Waits for every task in the list (all of them, even when one fails), then returns a
--- list of their first results, or raises the error of the first task (in list order)
--- that failed.
function M.all(tasks)
  for _, t in ipairs(tasks) do t:wait() end
  local out = {}
  for i, t in ipairs(tasks) do
    if not t.ok then raise(t) end
    out[i] = t.results[1]
  end
  return out
end

--- fo-run's entry: runs the main chunk as a task; returns the function that, after the
--- loop has drained, reports failures and returns the exit code.
function M.main(chunk, ...)
  local main = M.spawn(chunk, ...)
  main.joined = true
  return function()
    -- Last line of defence: a secret that slipped into an error message is still masked.
    local redact = require("fo.log").redact
    local code = 0
    if not main.done then
      io.stderr:write("fo-run: the main chunk is waiting for something that can no longer ",
        "happen (a join or wake with nothing left to run)\n")
      code = 1
    elseif not main.ok then
      io.stderr:write("fo-run: ", redact(main.traceback), "\n")
      code = 1
    end
    for task in pairs(unjoined_failures) do
      io.stderr:write("fo-run: a task failed and nobody joined it: ", redact(task.traceback), "\n")
      unjoined_failures[task] = nil
      code = 1
    end
    return code
  end
end

return M
