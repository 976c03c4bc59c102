-- Crash points for the engine's crash trials (tests/lua/engine/test_crash_trials.lua): a
-- recipe run by a real fo-run child requires this module; FO_TEST_CRASH="<point>:<n>" makes
-- the process SIGKILL itself at the n-th occurrence of <point>:
--   call.before   a mutating call reached the simulator, its handler has not run (the
--                 create/update/delete never happened)
--   call.after    the n-th mutating call took effect and the simulator saved it, the answer
--                 never reaches the engine (between the call and the state write)
--   state.before  the n-th write of the stack's state (an append to its log, or one of the
--                 two writes of a fold into the state file) is about to start
--   state.after   the n-th state write is durable, nothing after it ran
--   state.torn    the n-th append to the state log writes a part of its line, then dies
-- "<point>:<n>:<svc.Op>" counts only the calls of that operation (call points).
-- FO_TEST_CRASH="count" kills nothing and keeps the number of each point reached in the file
-- FO_TEST_CRASH_LOG. Before a kill, the point and what it was at ("call.after 7
-- ec2.CreateSubnet") are appended to FO_TEST_CRASH_LOG. Not a test (no test_ prefix).
local spec = os.getenv("FO_TEST_CRASH")
if not spec or spec == "" then return {} end
local log_path = os.getenv("FO_TEST_CRASH_LOG")
local counting = spec == "count"
local point, n, only = spec:match("^([%a.]+):(%d+):?([%w.]*)$")
n = tonumber(n)
if only == "" then only = nil end
assert(counting or (point and n), "FO_TEST_CRASH: expected count or <point>:<n>, got " .. spec)

local seen = { ["call.before"] = 0, ["call.after"] = 0, ["state.before"] = 0, ["state.after"] = 0,
  ["state.torn"] = 0 }

local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("l")
  f:close()
  return s:match("^(%d+)")
end

local function save_counts()
  local keys = {}
  for k in pairs(seen) do keys[#keys + 1] = k end
  table.sort(keys)
  local f = assert(io.open(log_path .. ".tmp", "w"))
  for _, k in ipairs(keys) do f:write(k, " ", seen[k], "\n") end
  f:close()
  assert(os.rename(log_path .. ".tmp", log_path))
end

-- Counts one occurrence of `p`; kills the process when it is the chosen one (after
-- calling last(), when given).
local function reached(p, what, last)
  if only and p:match("^call") and what ~= only then return end
  seen[p] = seen[p] + 1
  if counting then save_counts(); return end
  if p ~= point or seen[p] ~= n then return end
  if last then last() end
  local f = assert(io.open(log_path, "a"))
  f:write(("%s %d %s\n"):format(p, n, what))
  f:close()
  os.execute("kill -KILL " .. pid())
  error("crash_points: still alive after SIGKILL") -- never reached
end

-- The simulator: every simulator shares one metatable (lua/fo/sim/init.lua's Sim).
local Recorder = require "fo.sim.recorder"
local Sim = getmetatable(require("fo.sim").new{ seed = 1 })
local run_handler, finish = Sim._run_handler, Sim._finish
Sim._run_handler = function(self, c)
  if Recorder.is_mutating(c.operation) then
    reached("call.before", c.service .. "." .. c.operation)
  end
  return run_handler(self, c)
end
Sim._finish = function(self, c, status, code)
  finish(self, c, status, code) -- records the call and saves the simulator's file
  if c.operation ~= "-" and Recorder.is_mutating(c.operation) and status < 300 then
    reached("call.after", c.service .. "." .. c.operation)
  end
end

-- State writes: an append to <stack>.state.log (a group commit), and the two atomic writes
-- of a fold of the log into the snapshot (<stack>.state.json, then the log's new header) —
-- not the .bak, not the sim's file.
local fs = require "fo.fs"
local function hook(name, is_state)
  local real = fs[name]
  fs[name] = function(path, ...)
    local state = is_state(path)
    local what = name .. " " .. path:match("[^/]*$")
    if state then reached("state.before", what) end
    local r = table.pack(real(path, ...))
    if state then reached("state.after", what) end
    return table.unpack(r, 1, r.n)
  end
end
hook("write_atomic", function(path)
  return path:match("%.state%.json$") ~= nil or path:match("%.state%.log$") ~= nil
end)
hook("append", function(path) return path:match("%.state%.log$") ~= nil end)

-- The S3 backend's state writes (backend/s3_objects.lua): a PUT of a change-log commit
-- (<stack>/log/N.json) or of the snapshot (<stack>/state.json) — not the lease's. An S3
-- PUT is atomic: no torn write.
do
  local objects = require("fo.engine.backend.s3_objects")
  local Objects = getmetatable(objects.new{ bucket = "x", client = {} }).__index
  local put = Objects.put
  Objects.put = function(self, key, ...)
    local state = key:match("/log/%d+%.json$") or key:match("/state%.json$")
    local what = "put " .. key
    if state then reached("state.before", what) end
    local r = table.pack(put(self, key, ...))
    if state and r[1] then reached("state.after", what) end
    return table.unpack(r, 1, r.n)
  end
end

-- A torn append (what a power cut leaves, or a SIGKILL in the middle of a write of several
-- pages): the n-th append to the state log writes only the first part of its line (two
-- thirds, at least a byte short), then the process dies.
local append = fs.append
fs.append = function(path, data, mode)
  if path:match("%.state%.log$") then
    reached("state.torn", "append " .. path:match("[^/]*$"), function()
      append(path, data:sub(1, math.max(1, #data * 2 // 3)), mode)
    end)
  end
  return append(path, data, mode)
end

return {}
