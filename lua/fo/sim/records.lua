-- What the simulated services do alike to the records they store: deep copies (handlers
-- never hand out their stored tables), creation sequence numbers, index-token pages.
local M = {}

--- A deep copy of plain data (records hold only strings, numbers, booleans and tables).
function M.copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.copy(x) end
  return out
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
