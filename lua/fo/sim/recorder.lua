-- Every call the simulator answers: service, operation, region, mutating, status, error
-- code, virtual time. Tests and benchmarks count calls with it ("a rerun makes zero
-- mutating calls"). A served sim runs for days, so the calls themselves are kept in a ring
-- of the last `max` (the oldest make room); counts stay exact for every call since the
-- start (or clear): they are kept per shape — the fields other than time and request id —
-- and there are few shapes however many calls.
local M = {}
local Recorder = {}
Recorder.__index = Recorder

M.DEFAULT_MAX = 10000

-- The fields a call's shape is made of: filters on these alone are answered from the
-- counts; a filter on t or request_id (or a function) looks at the kept calls.
local SHAPE = { "service", "operation", "region", "mutating", "status", "code" }
local IN_SHAPE = {}
for _, k in ipairs(SHAPE) do IN_SHAPE[k] = true end

--- A recorder keeping the last `max` calls (default DEFAULT_MAX; a whole number ≥ 1).
function M.new(max)
  max = max or M.DEFAULT_MAX
  if math.type(max) ~= "integer" or max < 1 then
    error(("fo.sim: record_calls must be a whole number of calls ≥ 1, got %s"):format(
      tostring(max)), 0)
  end
  local self = setmetatable({ max = max }, Recorder)
  self:clear()
  return self
end

--- Operations named Describe*, List*, Get*, Head*, Test* read; everything else mutates.
function M.is_mutating(operation)
  return not (operation:match("^Describe") or operation:match("^List") or operation:match("^Get")
    or operation:match("^Head") -- S3's HeadBucket, HeadObject
    or operation:match("^Test")) -- Route 53's TestDNSAnswer
end

local function shape_key(call)
  local parts = {}
  for i, k in ipairs(SHAPE) do parts[i] = tostring(call[k]) end
  return table.concat(parts, "\0")
end

function Recorder:add(call)
  self.ring[self.next] = call
  self.next = self.next % self.max + 1
  if self.kept < self.max then self.kept = self.kept + 1 end
  self.total = self.total + 1
  local key = shape_key(call)
  local s = self.shapes[key]
  if not s then
    s = { n = 0 }
    for _, k in ipairs(SHAPE) do s[k] = call[k] end
    self.shapes[key] = s
  end
  s.n = s.n + 1
end

-- The kept calls, oldest first.
local function each_kept(self)
  local first = self.kept < self.max and 1 or self.next
  local i = 0
  return function()
    i = i + 1
    if i > self.kept then return nil end
    return self.ring[(first + i - 2) % self.max + 1]
  end
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

-- True when `filter` can be answered from the shape counts.
local function on_shapes(filter)
  if filter == nil then return true end
  if type(filter) ~= "table" then return false end
  for k in pairs(filter) do
    if not IN_SHAPE[k] then return false end
  end
  return true
end

-- Calls `fn(call, n)` for each group of matching calls: shapes with their counts when the
-- filter allows it, else each kept call once.
local function each_match(self, filter, fn)
  if on_shapes(filter) then
    for _, s in pairs(self.shapes) do
      if matches(s, filter) then fn(s, s.n) end
    end
  else
    for c in each_kept(self) do
      if matches(c, filter) then fn(c, 1) end
    end
  end
end

--- The kept calls (the last `max`) that match `filter`, oldest first (copies).
function Recorder:calls(filter)
  local out = {}
  for c in each_kept(self) do
    if matches(c, filter) then
      local copy = {}
      for k, v in pairs(c) do copy[k] = v end
      out[#out + 1] = copy
    end
  end
  return out
end

--- How many calls match `filter`: of every call since the start or clear when the filter is
--- nil or a table of shape fields, else of the kept calls.
function Recorder:count(filter)
  local n = 0
  each_match(self, filter, function(_, k) n = n + k end)
  return n
end

--- {total=, mutating=, by_operation = {["ec2.CreateVpc"] = n, ...}} over the matching calls
--- (which calls: as count).
function Recorder:counts(filter)
  local out = { total = 0, mutating = 0, by_operation = {} }
  each_match(self, filter, function(c, n)
    out.total = out.total + n
    if c.mutating then out.mutating = out.mutating + n end
    local key = c.service .. "." .. c.operation
    out.by_operation[key] = (out.by_operation[key] or 0) + n
  end)
  return out
end

--- How many calls were recorded since the start or clear, and how many of them are kept.
function Recorder:sizes()
  return self.total, self.kept
end

--- Forgets every recorded call and count.
function Recorder:clear()
  self.ring, self.next, self.kept, self.total, self.shapes = {}, 1, 0, 0, {}
end

return M
