-- Every call the simulator answers: service, operation, region, mutating, status, error
-- code, virtual time. Tests and benchmarks count calls with it ("a rerun makes zero
-- mutating calls").
local M = {}
local Recorder = {}
Recorder.__index = Recorder

function M.new()
  return setmetatable({ list = {} }, Recorder)
end

--- Operations named Describe*, List*, Get* read; everything else mutates.
function M.is_mutating(operation)
  return not (operation:match("^Describe") or operation:match("^List") or operation:match("^Get"))
end

function Recorder:add(call)
  self.list[#self.list + 1] = call
end

-- A filter is nil (everything), a function(call) → bool, or a table of fields that must
-- be equal ({service="ec2", mutating=true}).
local function matches(call, filter)
  if filter == nil then return true end
  if type(filter) == "function" then return filter(call) and true or false end
  for k, v in pairs(filter) do
    if call[k] ~= v then return false end
  end
  return true
end

--- The recorded calls that match `filter`, oldest first (copies).
function Recorder:calls(filter)
  local out = {}
  for _, c in ipairs(self.list) do
    if matches(c, filter) then
      local copy = {}
      for k, v in pairs(c) do copy[k] = v end
      out[#out + 1] = copy
    end
  end
  return out
end

--- How many recorded calls match `filter`.
function Recorder:count(filter)
  local n = 0
  for _, c in ipairs(self.list) do
    if matches(c, filter) then n = n + 1 end
  end
  return n
end

--- {total=, mutating=, by_operation = {["ec2.CreateVpc"] = n, ...}} over the matching calls.
function Recorder:counts(filter)
  local out = { total = 0, mutating = 0, by_operation = {} }
  for _, c in ipairs(self.list) do
    if matches(c, filter) then
      out.total = out.total + 1
      if c.mutating then out.mutating = out.mutating + 1 end
      local key = c.service .. "." .. c.operation
      out.by_operation[key] = (out.by_operation[key] or 0) + 1
    end
  end
  return out
end

--- Forgets every recorded call.
function Recorder:clear()
  self.list = {}
end

return M
