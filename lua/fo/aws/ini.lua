-- Reads AWS shared config/credentials files (INI): [section] headers, key = value lines,
-- comments (# and ;), and indented sub-keys (which belong to the line above and are kept
-- as a nested table, as the AWS CLI does for s3 = ... blocks).
local M = {}

--- Parses INI text into { [section] = { key = value } }; returns nil, "file:line: why"
--- on a malformed line.
function M.parse(text, name)
  local sections, current, last_key = {}, nil, nil
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    local indented = line:match("^%s+%S") ~= nil
    local stripped = line:gsub("^%s+", ""):gsub("%s+$", "")
    if stripped == "" or stripped:match("^[#;]") then
      -- blank or comment
    elseif stripped:match("^%[") then
      local section = stripped:match("^%[%s*(.-)%s*%]$")
      if not section then return nil, ("%s:%d: malformed section header"):format(name, n) end
      current = sections[section] or {}
      sections[section] = current
      last_key = nil
    else
      local key, value = stripped:match("^([^=]-)%s*=%s*(.*)$")
      if not key or not current then
        return nil, ("%s:%d: expected key = value inside a [section]"):format(name, n)
      end
      value = value:gsub("%s+[#;].*$", "")
      if indented and last_key and type(current[last_key]) == "table" then
        current[last_key][key] = value
      else
        current[key] = value ~= "" and value or {}
        last_key = key
      end
    end
  end
  return sections
end

--- Reads and parses a file; returns nil (no error) when it does not exist.
function M.read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text, err = f:read("a")
  f:close()
  if not text then error(("cannot read %s: %s"):format(path, tostring(err)), 0) end
  local t, err = M.parse(text, path)
  if not t then error(err, 0) end
  return t
end

return M
