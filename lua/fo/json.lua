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

local function quote(s)
  -- most strings (keys, ids, names) need no escape: no gsub copy for them
  if not s:find('[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESC[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

-- The JSONPath of the value being encoded ("$.a[2].b"), for error messages alone: the
-- encoder keeps the keys and indexes on a stack and makes the text only when it fails.
local function path_of(segs, depth)
  local out = { "$" }
  for i = 1, depth do
    local k = segs[i]
    out[#out + 1] = math.type(k) == "integer" and ("[%d]"):format(k) or "." .. k
  end
  return table.concat(out)
end

local function number(v, segs, depth)
  if math.type(v) == "integer" then return tostring(v) end
  if v ~= v or v == math.huge or v == -math.huge then
    error(("%s: %s cannot be stored in JSON"):format(path_of(segs, depth), tostring(v)), 0)
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

-- "\n" followed by two spaces per level, made once per level
local PAD = setmetatable({}, { __index = function(t, n)
  local s = "\n" .. ("  "):rep(n)
  t[n] = s
  return s
end })

-- The encoder's pieces go to one buffer, reused from call to call (encoding never yields
-- and calls nothing that encodes): an encode allocates its text, the sorted keys of each
-- object, and little else. `segs` holds the path to the value (path_of), `seen` the tables
-- being encoded (a cycle check).
local out, n, segs, seen = {}, 0, {}, {}
local busy = false
local encode_text_fn -- encode_text, for a nested call

local function put(s)
  n = n + 1
  out[n] = s
end

-- A string as a JSON string, in pieces: no copy of it is made unless it needs escapes.
local function put_string(s)
  if not s:find('[%c"\\]') then
    out[n + 1], out[n + 2], out[n + 3] = '"', s, '"'
    n = n + 3
  else
    put(quote(s))
  end
end

-- `line`: one line (json.line) instead of one value per line.
local function encode(v, indent, depth, line)
  local tv = type(v)
  if tv == "string" then put_string(v)
  elseif tv == "number" then put(number(v, segs, depth))
  elseif tv == "boolean" then put(v and "true" or "false")
  elseif v == M.EMPTY_ARRAY then put("[]")
  elseif tv == "table" then
    if seen[v] then error(path_of(segs, depth) .. ": a cycle cannot be stored in JSON", 0) end
    seen[v] = true
    local pad = line and "" or PAD[indent + 1]
    local close = line and "" or PAD[indent]
    if is_array(v) then
      put("[")
      for i, x in ipairs(v) do
        if i > 1 then put(",") end
        put(pad)
        segs[depth + 1] = i
        encode(x, indent + 1, depth + 1, line)
      end
      put(close)
      put("]")
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then
          error(("%s: key %s is not a string (store maps with string keys, or arrays)")
            :format(path_of(segs, depth), tostring(k)), 0)
        end
        keys[#keys + 1] = k
      end
      local lead = line and indent == 0 and line.lead
      table.sort(keys, lead and function(a, b)
        local ra, rb = lead[a] or math.huge, lead[b] or math.huge
        if ra ~= rb then return ra < rb end
        return a < b
      end or nil)
      if #keys == 0 then put("{}")
      else
        local colon = line and ":" or ": "
        put("{")
        for i, k in ipairs(keys) do
          if i > 1 then put(",") end
          put(pad)
          put_string(k)
          put(colon)
          segs[depth + 1] = k
          encode(v[k], indent + 1, depth + 1, line)
        end
        put(close)
        put("}")
      end
    end
    segs[depth + 1] = nil
    seen[v] = nil
  else
    error(("%s: a %s cannot be stored in JSON"):format(path_of(segs, depth), tv), 0)
  end
end

-- Runs the encoder on v; the text. After an error the buffers start afresh. (An encode
-- from within an encode — a metamethod — gets buffers of its own.)
local function encode_text(v, line)
  if busy then
    local saved = { out, n, segs, seen }
    out, segs, seen, busy = {}, {}, {}, false
    local ok, text = pcall(encode_text_fn, v, line)
    out, n, segs, seen, busy = saved[1], saved[2], saved[3], saved[4], true
    if not ok then error(text, 0) end
    return text
  end
  busy, n = true, 0
  local ok, err = pcall(encode, v, 0, 0, line)
  busy = false
  if not ok then
    out, segs, seen = {}, {}, {}
    error(err, 0)
  end
  local text = table.concat(out, "", 1, n)
  -- a large document's pieces are let go; a small buffer is kept for the next call
  if n > 4096 then out = {} else for i = 1, n do out[i] = nil end end
  return text
end
encode_text_fn = encode_text

-- The encoder above is the reference: M.encode and M.line run its C twin (src/json_text.c,
-- the same text byte for byte, several times faster: the simulator encodes each changed
-- record on every call it persists), which hands back to it (returns false) what only Lua
-- can encode — tables with metatables (their __pairs, __len, __index), a `lead` that is
-- not an array of strings, nesting deeper than 256.
local json_text = require("fo.tables").json_text
local EMPTY_ARRAY = M.EMPTY_ARRAY

--- The Lua encoder behind M.encode (the C one's reference, and what it hands back).
function M.lua_encode(v)
  return encode_text(v, nil)
end

--- The Lua encoder behind M.line.
function M.lua_line(v, lead)
  local rank = {}
  for i, k in ipairs(lead or {}) do rank[k] = i end
  return encode_text(v, { lead = rank })
end
local lua_encode, lua_line = M.lua_encode, M.lua_line

--- JSON text of v; raises "<path>: why" for what JSON cannot hold.
function M.encode(v)
  return json_text(v, false, nil, EMPTY_ARRAY) or lua_encode(v)
end

--- JSON text of v on one line, no spaces (JSON Lines); the top-level keys named in `lead`
--- (an array) come first in that order, the others sorted.
function M.line(v, lead)
  return json_text(v, true, lead, EMPTY_ARRAY) or lua_line(v, lead)
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

local SIMPLE = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"',
                 ["\\"] = "\\", ["/"] = "/" }

local function decode_string(s, i)
  local a = s:find('["\\%c]', i + 1)
  -- most strings have no escape: one copy, no buffer
  if a and s:byte(a) == 34 then return s:sub(i + 1, a - 1), a + 1 end
  local out, j = {}, i + 1
  while true do
    local a, b = s:find('["\\%c]', j)
    if not a then fail(s, i, "unterminated string") end
    out[#out + 1] = s:sub(j, a - 1)
    local c = s:sub(a, a)
    if c == '"' then return table.concat(out), b + 1 end
    if c ~= "\\" then fail(s, a, "control character in string") end
    local e = s:sub(a + 1, a + 1)
    local simple = SIMPLE[e]
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
