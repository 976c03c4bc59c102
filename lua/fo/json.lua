-- JSON for fo's own files (the simulator's state, the engine's state and report, config
-- files). lua-cjson turns every number into a float and writes 2.0 as "2", which would make
-- integer members (Weight, Port) floats after a reload; this codec keeps Lua's
-- integer/float distinction across a save and load. Keys are written sorted, one level per
-- line, so the files diff well.
local M = {}

--- Encodes as [] (an empty Lua table is written as {}: it cannot tell a list from a map).
M.EMPTY_ARRAY = setmetatable({}, { __name = "fo.json.EMPTY_ARRAY",
  __newindex = function() error("fo.json.EMPTY_ARRAY is read-only", 2) end })

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
              ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function escape(c)
  return ESC[c] or ("\\u%04x"):format(c:byte())
end

local function quote(s)
  -- (most strings need no escape: no gsub for them)
  if not s:find('[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', escape) .. '"'
end

local function number(v, path)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v or v == math.huge or v == -math.huge then
    error(("%s: %s cannot be stored in JSON"):format(path, tostring(v)), 0)
  end
  local s = ("%.17g"):format(v)
  if tonumber(("%.15g"):format(v)) == v then s = ("%.15g"):format(v) end
  if not s:find("[%.eE]") then s = s .. ".0" end -- stays a float when read back
  return s
end

-- An array: keys exactly 1..n (an empty table is written as an object, {}).
local function is_array(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- `at`: the keys from the top down to `v` (at[1..depth]), for the path an error names
-- (built only then: most encodes never need it).
local function where(at, depth)
  local parts = { "$" }
  for i = 1, depth do
    local k = at[i]
    parts[#parts + 1] = math.type(k) == "integer" and ("[%d]"):format(k) or "." .. k
  end
  return table.concat(parts)
end

local function encode(v, out, indent, at, seen, line)
  local tv = type(v)
  if tv == "string" then out[#out + 1] = quote(v)
  elseif tv == "number" then
    if math.type(v) == "integer" then out[#out + 1] = tostring(v)
    else out[#out + 1] = number(v, where(at, indent)) end
  elseif tv == "boolean" then out[#out + 1] = tostring(v)
  elseif v == M.EMPTY_ARRAY then out[#out + 1] = "[]"
  elseif tv == "table" then
    if seen[v] then error(where(at, indent) .. ": a cycle cannot be stored in JSON", 0) end
    seen[v] = true
    local pad = line and "" or "\n" .. ("  "):rep(indent + 1)
    local close = line and "" or "\n" .. ("  "):rep(indent)
    if is_array(v) then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = pad
        at[indent + 1] = i
        encode(x, out, indent + 1, at, seen, line)
      end
      out[#out + 1] = close .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          error(("%s: key %s is not a string (store maps with string keys, or arrays)")
            :format(where(at, indent), tostring(k)), 0)
        end
        keys[#keys + 1] = k
      end
      local lead = line and indent == 0 and line.lead
      table.sort(keys, lead and function(a, b)
        local ra, rb = lead[a] or math.huge, lead[b] or math.huge
        if ra ~= rb then return ra < rb end
        return a < b
      end or nil)
      if #keys == 0 then out[#out + 1] = "{}"
      else
        local colon = line and ":" or ": "
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          if i > 1 then out[#out + 1] = "," end
          out[#out + 1] = pad
          out[#out + 1] = quote(k)
          out[#out + 1] = colon
          at[indent + 1] = k
          encode(v[k], out, indent + 1, at, seen, line)
        end
        out[#out + 1] = close .. "}"
      end
    end
    seen[v] = nil
  else
    error(("%s: a %s cannot be stored in JSON"):format(where(at, indent), tv), 0)
  end
end

--- JSON text of v; raises "<path>: why" for what JSON cannot hold.
function M.encode(v)
  local out = {}
  encode(v, out, 0, {}, {})
  return table.concat(out)
end

--- JSON text of v on one line, no spaces (JSON Lines); the top-level keys named in `lead`
--- (an array) come first in that order, the others sorted.
function M.line(v, lead)
  local rank
  if lead then
    rank = {}
    for i, k in ipairs(lead) do rank[k] = i end
  end
  local out = {}
  encode(v, out, 0, {}, {}, { lead = rank })
  return table.concat(out)
end

-- Decoding ------------------------------------------------------------------------

local function fail(s, i, why)
  local line = select(2, s:sub(1, i):gsub("\n", "")) + 1
  error(("%s at line %d (byte %d)"):format(why, line, i), 0)
end

local function skip(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

local decode_value

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local a, b = s:find('["\\%c]', j)
    if not a then fail(s, i, "unterminated string") end
    out[#out + 1] = s:sub(j, a - 1)
    local c = s:sub(a, a)
    if c == '"' then return table.concat(out), b + 1 end
    if c ~= "\\" then fail(s, a, "control character in string") end
    local e = s:sub(a + 1, a + 1)
    local simple = ({ b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"',
                      ["\\"] = "\\", ["/"] = "/" })[e]
    if simple then out[#out + 1], j = simple, a + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", a + 2)
      if not hex then fail(s, a, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      j = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = s:match("^\\u(%x%x%x%x)", j)
        if not lo then fail(s, a, "lone surrogate") end
        cp = 0x10000 + ((cp - 0xD800) << 10) + (tonumber(lo, 16) - 0xDC00)
        j = j + 6
      end
      out[#out + 1] = utf8.char(cp)
    else fail(s, a, "bad escape") end
  end
end

function decode_value(s, i, depth)
  if depth > 200 then fail(s, i, "nesting too deep") end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then fail(s, i, "expected a string key") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then fail(s, i, "expected ':'") end
      t[k], i = decode_value(s, i + 1, depth + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then fail(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      t[#t + 1], i = decode_value(s, i, depth + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then return decode_string(s, i)
  elseif s:find("^true", i) then return true, i + 4
  elseif s:find("^false", i) then return false, i + 5
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    local v = num and tonumber(num)
    if not v then fail(s, i, c == "" and "unexpected end of text" or "unexpected character") end
    return v, i + #num -- tonumber keeps "2" an integer and "2.0" a float
  end
end

--- The value of JSON text s; raises "why at line L (byte B)". null is not accepted (fo
--- never writes it).
function M.decode(s)
  local v, i = decode_value(s, 1, 0)
  i = skip(s, i)
  if i <= #s then fail(s, i, "text after the document") end
  return v
end

--- Reads the JSON file at `path`: its value and its text; nil when there is no such file;
--- nil and why when the file is there but unusable — it cannot be read, is not valid JSON,
--- or (with `expect` = {format=, version=, what=}) is not an object whose `format` and
--- `version` members are those (`what` names the document: "an fo state document").
--- Callers add their own advice to `why`; a file that cannot be used is never "empty".
function M.read_file(path, expect)
  local f, err = io.open(path, "rb")
  if not f then
    if require("fo.fs").exists(path) then return nil, err end
    return nil
  end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, ("cannot read %s: %s"):format(path, tostring(rerr)) end
  local ok, v = pcall(M.decode, text)
  if not ok then return nil, "invalid JSON: " .. tostring(v) end
  if expect then
    if type(v) ~= "table" or v.format ~= expect.format then
      return nil, ("not %s (format must be %q)"):format(expect.what or "the expected document",
        expect.format)
    end
    if v.version ~= expect.version then
      return nil, ("schema version %s; this fo reads version %s"):format(tostring(v.version),
        tostring(expect.version))
    end
  end
  return v, text
end

return M
