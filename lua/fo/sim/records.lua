-- What the simulated services do alike to the records they store: deep copies (handlers
-- never hand out their stored tables), creation sequence numbers, index-token pages.
local M = {}

-- The deep copy in Lua: the reference of the C one (fo.tables.copy), which hands it the
-- tables that have metatables (their __pairs) and those nested deeper than 64.
local function lua_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = lua_copy(x) end
  return out
end
M.lua_copy = lua_copy

local c_copy = require("fo.tables").copy

--- A deep copy of plain data (records hold only strings, numbers, booleans and tables):
--- a table met twice is copied twice, the copies have no metatables.
function M.copy(v)
  return c_copy(v, lua_copy)
end

--- The next creation sequence number of `db` (db.seq, from 1): records listed in
--- creation order sort by it.
function M.next_seq(db)
  db.seq = (db.seq or 0) + 1
  return db.seq
end

--- One page of `items`: `size` of them from the position `token` names ("<prefix><index>",
--- made by this function: AWS's tokens are opaque strings, so any format serves), or
--- from the first when `token` is nil. Returns the page and the next page's token (nil
--- after the last page); nil when `token` is not one of ours (the caller answers its
--- service's error).
function M.page(items, token, prefix, size)
  local start = 1
  if token then
    local digits = token:sub(1, #prefix) == prefix and token:sub(#prefix + 1):match("^%d+$")
    start = digits and math.tointeger(tonumber(digits))
    if not start or start < 1 then return nil end
  end
  local out = {}
  for i = start, math.min(#items, start + size - 1) do out[#out + 1] = items[i] end
  return out, (start + size <= #items) and (prefix .. (start + size)) or nil
end

return M
