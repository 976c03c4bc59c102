-- Tasks parked until another task says something happened: the state writer's followers
-- wait for its write, the scheduler waits for any operation to finish.
local core = require "fo.core"

local M = {}
local Waitlist = {}
Waitlist.__index = Waitlist

function M.new()
  return setmetatable({ parked = {} }, Waitlist)
end

--- Parks the calling task until wake_all (call it from a task).
function Waitlist:wait()
  self.parked[#self.parked + 1] = coroutine.running()
  core.suspend()
end

--- Resumes every parked task: at the next turn of the loop, or in this one (before the
--- loop polls for I/O: core.wake_in_turn) when `in_turn`.
function Waitlist:wake_all(in_turn)
  local parked = self.parked
  self.parked = {}
  local wake = in_turn and core.wake_in_turn or core.wake
  for _, co in ipairs(parked) do wake(co) end
end

return M
