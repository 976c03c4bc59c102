-- The REPL's printer: a value as Lua-like text — nested tables indented (short ones on one
-- line), keys sorted, long lists elided with a count, strings quoted, cycles marked.
local M = {}

M.MAX_ITEMS = 20     -- list items (and map entries beyond MAX_KEYS) shown before "… N more"
M.MAX_KEYS = 200
M.MAX_STRING = 2000  -- string bytes shown before "… (N more bytes)"
M.WIDTH = 78         -- a table fits on one line up to this width

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function quote(s)
  local more = #s - M.MAX_STRING
  if more > 0 then s = s:sub(1, M.MAX_STRING) end
  local q = ("%q"):format(s):gsub("\\\n", "\\n"):gsub("\\9", "\\t"):gsub("\r", "\\r")
  if more > 0 then q = q .. (" … (%d more bytes)"):format(more) end
  return q
end
M.quote = quote

local function scalar(v)
  local t = type(v)
  if t == "string" then return quote(v) end
  if math.type(v) == "float" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    local s = ("%.14g"):format(v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  end
  return tostring(v)
end

-- Keys of mixed types sort by type first (numbers, strings, then the rest).
local RANK = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (RANK[ta] or 9) < (RANK[tb] or 9) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function key_text(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k] then return k end
  return "[" .. scalar(k) .. "]"
end

-- How a value with a metatable is shown: fo.aws.Error with its fields; anything with
-- __tostring as that text; other objects as their tables (pairs honours __pairs).
local function object_label(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local name = rawget(mt, "__name")
  if name == "fo.aws.Error" then return "fo.aws.Error", true end
  if rawget(mt, "__tostring") then
    local ok, s = pcall(tostring, v)
    return ok and s or ("<" .. tostring(name or "object") .. ": __tostring failed>"), false
  end
  return nil
end

-- The entries of a table: list part (1..n without holes), then the other keys sorted.
local function entries(t)
  local ok, n = pcall(function() return #t end)
  if not ok or math.type(n) ~= "integer" then n = 0 end
  local keys, values = {}, {}
  local okp = pcall(function()
    for k, v in pairs(t) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        keys[#keys + 1] = k
        values[k] = v
      end
    end
  end)
  if not okp then keys = {} end
  table.sort(keys, key_less)
  return n, keys, values
end

local render

-- The table `t` as lines (indented by `pad`); one line when it fits in `room`.
local function render_table(t, pad, room, path, label)
  if path[t] then return "<cycle: " .. tostring(t) .. ">" end
  path[t] = true
  local n, keys, values = entries(t)
  local items = {}
  local shown_n = math.min(n, M.MAX_ITEMS)
  for i = 1, shown_n do
    local ok, v = pcall(function() return t[i] end)
    items[#items + 1] = { value = ok and v or "<error>" }
  end
  local more_list = n - shown_n
  local shown_k = math.min(#keys, M.MAX_KEYS)
  for i = 1, shown_k do
    local k = keys[i]
    items[#items + 1] = { key = key_text(k), value = values[k] }
  end
  local more_keys = #keys - shown_k
  local open = label and (label .. " {") or "{"
  if #items == 0 and more_list == 0 then
    path[t] = nil
    return open .. "}"
  end
  -- One line when every item is short and the whole fits.
  local parts, flat, width = {}, true, #open + 2
  for _, it in ipairs(items) do
    local s = render(it.value, "", math.huge, path)
    if s:find("\n") then
      flat = false
      break
    end
    s = it.key and (it.key .. " = " .. s) or s
    parts[#parts + 1] = s
    width = width + #s + 2
    if width > room then
      flat = false
      break
    end
  end
  if flat and more_list == 0 and more_keys == 0 then
    path[t] = nil
    return open .. " " .. table.concat(parts, ", ") .. " }"
  end
  local inner = pad .. "  "
  local out = { open }
  if #keys == 0 and shown_n > 0 then
    -- A list of scalars: as many per line as fit.
    local all_scalar = true
    for _, it in ipairs(items) do
      if type(it.value) == "table" then all_scalar = false end
    end
    if all_scalar then
      local line = inner
      for _, it in ipairs(items) do
        local s = render(it.value, inner, math.huge, path) .. ","
        if #line > #inner and #line + #s + 1 > M.WIDTH then
          out[#out + 1] = line
          line = inner .. s
        else
          line = line .. (#line > #inner and " " or "") .. s
        end
      end
      out[#out + 1] = line
      if more_list > 0 then out[#out + 1] = ("%s… %d more"):format(inner, more_list) end
      out[#out + 1] = pad .. "}"
      path[t] = nil
      return table.concat(out, "\n")
    end
  end
  for i, it in ipairs(items) do
    local prefix = it.key and (it.key .. " = ") or ""
    out[#out + 1] = inner .. prefix
      .. render(it.value, inner, M.WIDTH - #inner - #prefix, path) .. ","
    if i == shown_n and more_list > 0 then
      out[#out + 1] = ("%s… %d more"):format(inner, more_list)
    end
  end
  if shown_n == 0 and more_list > 0 then out[#out + 1] = ("%s… %d more"):format(inner, more_list) end
  if more_keys > 0 then out[#out + 1] = ("%s… %d more keys"):format(inner, more_keys) end
  out[#out + 1] = pad .. "}"
  path[t] = nil
  return table.concat(out, "\n")
end

function render(v, pad, room, path)
  if type(v) ~= "table" then
    if type(v) == "userdata" then
      local label = object_label(v)
      if label then return label end
    end
    return scalar(v)
  end
  local label, fields = object_label(v)
  if label and not fields then return label end
  return render_table(v, pad, room, path, label)
end

--- The text of one value (several lines for large tables).
function M.format(v)
  return render(v, "", M.WIDTH, {})
end

--- The text of several values (n of them): one per line.
function M.format_all(n, ...)
  local out = {}
  for i = 1, n do out[i] = M.format((select(i, ...))) end
  return table.concat(out, "\n")
end

return M
