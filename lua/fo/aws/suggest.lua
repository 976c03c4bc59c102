-- "Did you mean ...?" for names typed by people (operations, waiters, paginators): the
-- same name in another case, else the nearest by edit distance when it is near enough.
local M = {}

local function distance(a, b)
  a, b = a:lower(), b:lower()
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = ca == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end
M.distance = distance

--- The name in `names` (an array or a set table) closest to `wanted`, or nil.
function M.closest(wanted, names)
  if type(wanted) ~= "string" then return nil end
  local list = {}
  for k, v in pairs(names) do list[#list + 1] = type(k) == "string" and k or v end
  table.sort(list)
  local lower = wanted:lower()
  for _, n in ipairs(list) do
    if n:lower() == lower then return n end
  end
  local best, best_d = nil, math.max(2, #wanted // 4) + 1
  for _, n in ipairs(list) do
    if math.abs(#n - #wanted) < best_d then
      local d = distance(wanted, n)
      if d < best_d then best, best_d = n, d end
    end
  end
  return best
end

--- " (did you mean 'X'?)" or "".
function M.hint(wanted, names)
  local c = M.closest(wanted, names)
  return c and (" (did you mean '%s'?)"):format(c) or ""
end

return M
