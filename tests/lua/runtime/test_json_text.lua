-- fo.json's C text encoder (src/json_text.c, behind json.encode and json.line) against its
-- Lua reference (json.lua_encode, json.lua_line): the same text byte for byte — or the same
-- error — for random nested documents and for what JSON cannot hold, and the cases the C
-- one hands back to the Lua one (tables with metatables, odd leads, deep nesting).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local json = require "fo.json"
local json_text = require("fo.tables").json_text

local EMPTY = json.EMPTY_ARRAY

-- A small deterministic generator (xorshift64*): the same documents on every run.
local function rng(seed)
  local s = seed
  local r = {}
  function r.next()
    s = s ~ (s << 13)
    s = s ~ (s >> 7)
    s = s ~ (s << 17)
    return s
  end
  function r.int(a, b) return a + (r.next() >> 1) % (b - a + 1) end
  function r.pick(list) return list[r.int(1, #list)] end
  function r.chance(p) return r.int(1, 1000) <= p * 1000 end
  return r
end

local BYTES = { "a", "b", "z", "A", "Z", "0", "9", " ", "/", ".", "_", "-", "\0", "\1", "\8",
  "\t", "\n", "\11", "\12", "\r", "\27", "\31", "\127", '"', "\\", "\128", "\195\169",
  "\255", "\240\159\152\128", "\194" }

local function random_string(r, max)
  local parts = {}
  for i = 1, r.int(0, max or 12) do parts[i] = r.pick(BYTES) end
  return table.concat(parts)
end

-- keys that sort close to each other: prefixes, case, bytes above 0x7f, an embedded NUL
local KEYS = { "", "a", "a\0", "a\0b", "ab", "aB", "B", "b", "Z", "\127", "\128", "\255",
  "a b", "é", "id", "Id", "ID", "name", "Name", "v", "event", "t", "x\"y", "x\\y", "\n" }

local function random_key(r)
  if r.chance(0.6) then return r.pick(KEYS) end
  return random_string(r, 8)
end

local FLOATS = { 0.0, -0.0, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1e300, -1e300, 1e-300, 5e-324,
  2.2250738585072014e-308, 2.0 ^ 53, 2.0 ^ 53 + 2, -2.0 ^ 53, 2.0 ^ 63, -2.0 ^ 63, 2.0 ^ 64,
  1e15, 1e16, 1e17, 1e21, 1e22, 123456789012345.0, 1234567890123456.0, 12345678901234567.0,
  1.5, -1.5, 2.0, 100.0, 1e-7, 1.7976931348623157e308, 0.1 + 0.2, 3.14159, 1e100 / 3 }

local INTEGERS = { 0, 1, -1, 2, 10, 255, 65535, 2 ^ 31, -2 ^ 31, math.maxinteger,
  math.mininteger, math.maxinteger - 1, math.mininteger + 1, 9007199254740993 }

local function random_number(r)
  local k = r.int(1, 6)
  if k == 1 then return r.pick(FLOATS)
  elseif k == 2 then return r.pick(INTEGERS)
  elseif k == 3 then return r.next() -- any integer
  elseif k == 4 then
    -- any finite double, from random bits
    local v = string.unpack("<d", string.pack("<i8", r.next()))
    if v ~= v or v == math.huge or v == -math.huge then return 0.5 end
    return v
  elseif k == 5 then return r.int(-1000000, 1000000) / r.pick({ 1, 10, 100, 1000, 3, 7 })
  else return r.int(-100, 100) * 1.0 end
end

local gen

local function random_array(r, depth)
  local t = {}
  for i = 1, r.int(1, 6) do t[i] = gen(r, depth + 1) end
  return t
end

local function random_map(r, depth)
  local t = {}
  for _ = 1, r.int(1, 7) do t[random_key(r)] = gen(r, depth + 1) end
  return t
end

-- A table that is not an array: holes, keys from 0 or 2, integer and string keys mixed,
-- float keys (all of them errors: a map's keys must be strings).
local function random_mixed(r, depth)
  local t = {}
  local k = r.int(1, 5)
  if k == 1 then t[1], t[3] = gen(r, depth + 1), gen(r, depth + 1)
  elseif k == 2 then t[0], t[1] = gen(r, depth + 1), gen(r, depth + 1)
  elseif k == 3 then t[1], t.x = gen(r, depth + 1), gen(r, depth + 1)
  elseif k == 4 then t[2] = gen(r, depth + 1)
  else t[1.5], t[true] = 1, 2 end
  return t
end

-- Rarely, what JSON cannot hold (the same error from both).
local function random_bad(r)
  return r.pick({ 0 / 0, -(0 / 0), math.huge, -math.huge, print, coroutine.create(print),
    io.stdout })
end

function gen(r, depth)
  local leaf = depth >= 6 or r.chance(0.45)
  if leaf then
    local k = r.int(1, 100)
    if k <= 35 then return random_string(r)
    elseif k <= 75 then return random_number(r)
    elseif k <= 85 then return r.chance(0.5)
    elseif k <= 90 then return EMPTY
    elseif k <= 95 then return {}
    elseif k <= 99 or depth == 0 or r.chance(0.7) then return random_string(r, 40)
    else return random_bad(r) end
  end
  local k = r.int(1, 100)
  if k <= 40 then return random_array(r, depth)
  elseif k <= 98 or r.chance(0.5) then return random_map(r, depth)
  else return random_mixed(r, depth) end
end

-- ok, text-or-error of f(...)
local function outcome(f, ...)
  local ok, v = pcall(f, ...)
  return { ok = ok, v = v }
end

local function assert_same(v, lead, what)
  lu.assertEquals(outcome(json.encode, v), outcome(json.lua_encode, v), what .. ": encode")
  lu.assertEquals(outcome(json.line, v), outcome(json.lua_line, v), what .. ": line")
  lu.assertEquals(outcome(json.line, v, lead), outcome(json.lua_line, v, lead),
    what .. ": line with a lead")
end

-- The top-level keys of v (when a table) and some that are not there, shuffled.
local function random_lead(r, v)
  local names = {}
  if type(v) == "table" then
    for k in pairs(v) do if type(k) == "string" and r.chance(0.5) then names[#names + 1] = k end end
  end
  for _ = 1, r.int(0, 2) do names[#names + 1] = random_key(r) end
  for i = #names, 2, -1 do
    local j = r.int(1, i)
    names[i], names[j] = names[j], names[i]
  end
  return names
end

TestJsonText = {}

function TestJsonText.test_random_documents_give_the_lua_encoders_text_or_error()
  local r = rng(0x5eed1234abcd)
  local texts, errors = 0, 0
  for i = 1, 3000 do
    local v = gen(r, 0)
    if r.chance(0.05) then -- the same table twice, not a cycle
      local shared = random_map(r, 3)
      v = { first = shared, second = { shared, shared } }
    end
    local lead = random_lead(r, v)
    assert_same(v, lead, "document " .. i)
    -- it is the C encoder that made the text, not the Lua one it hands back to
    local ok, text = pcall(json_text, v, true, lead, EMPTY)
    if ok then
      lu.assertIsString(text, "document " .. i .. " was handed back to the Lua encoder")
      texts = texts + 1
    else
      errors = errors + 1
    end
  end
  -- both outcomes are exercised
  lu.assertTrue(texts > 1800, texts)
  lu.assertTrue(errors > 300, errors)
end

function TestJsonText.test_numbers_strings_and_layout_byte_for_byte()
  local v = { i = { math.mininteger, math.maxinteger, 0, -7 },
    f = { 0.1, 1e300, -0.0, 2.0 ^ 53, 2.0, 1 / 3, 5e-324, 1e21, 123456789012345.0 },
    s = "\0\1\8\t\n\12\r\31\127\"\\/é\255", e = EMPTY, o = {} }
  local want = '{"e":[],"f":[0.1,1e+300,-0.0,9007199254740992.0,2.0,0.33333333333333331,'
    .. '4.94065645841247e-324,1e+21,123456789012345.0],'
    .. '"i":[-9223372036854775808,9223372036854775807,0,-7],"o":{},'
    .. '"s":"\\u0000\\u0001\\b\\t\\n\\f\\r\\u001f\\u007f\\"\\\\/é\255"}'
  lu.assertEquals(json.line(v), want)
  lu.assertEquals(json.lua_line(v), want)
  lu.assertEquals(json.encode({ b = { 1, { c = EMPTY } }, a = {} }),
    '{\n  "a": {},\n  "b": [\n    1,\n    {\n      "c": []\n    }\n  ]\n}')
  lu.assertEquals(json.line({ t = 1, v = 1, event = "x", a = 2, B = 3 }, { "v", "event", "t" }),
    '{"v":1,"event":"x","t":1,"B":3,"a":2}')
  -- a name twice in the lead: its last place, as the Lua encoder
  lu.assertEquals(json.line({ a = 1, b = 2, c = 3 }, { "c", "b", "c" }), '{"b":2,"c":3,"a":1}')
  lu.assertEquals(json.lua_line({ a = 1, b = 2, c = 3 }, { "c", "b", "c" }), '{"b":2,"c":3,"a":1}')
  -- the lead orders the top level only
  lu.assertEquals(json.line({ z = { b = 1, a = 2 } }, { "b" }), '{"z":{"a":2,"b":1}}')
end

function TestJsonText.test_what_json_cannot_hold_is_the_lua_encoders_error()
  local cycle = { a = {} }
  cycle.a.b = { 1, cycle }
  local self_cycle = {}
  self_cycle[1] = self_cycle
  local key_table = {}
  local cases = {
    { { a = { 1, 0 / 0 } }, "$.a[2]: " },
    { { x = { y = math.huge } }, "$.x.y: inf cannot be stored in JSON" },
    { { -math.huge }, "$[1]: -inf cannot be stored in JSON" },
    { cycle, "$.a.b[2]: a cycle cannot be stored in JSON" },
    { self_cycle, "$[1]: a cycle cannot be stored in JSON" },
    { { f = print }, "$.f: a function cannot be stored in JSON" },
    { { co = coroutine.create(print) }, "$.co: a thread cannot be stored in JSON" },
    { { io.stdout }, "$[1]: a userdata cannot be stored in JSON" },
    { { [1] = 1, x = 2 }, "is not a string (store maps with string keys, or arrays)" },
    { { a = { [2] = "x" } }, "$.a: key 2 is not a string" },
    { { [1.5] = 1 }, "$: key 1.5 is not a string" },
    { { [key_table] = 1 }, "$: key " .. tostring(key_table) .. " is not a string" },
    { { ["a\0b"] = { 0 / 0 } }, "$.a\0b[1]: " },
    { nil, "$: a nil cannot be stored in JSON" },
  }
  for i, c in ipairs(cases) do
    for _, pair in ipairs({ { json.encode, json.lua_encode }, { json.line, json.lua_line } }) do
      local ok, e = pcall(pair[1], c[1])
      lu.assertFalse(ok, "case " .. i)
      lu.assertStrContains(e, c[2], false, "case " .. i)
      local lok, le = pcall(pair[2], c[1])
      lu.assertFalse(lok)
      lu.assertEquals(e, le, "case " .. i)
    end
  end
  -- an error leaves nothing behind: the next encode is whole
  lu.assertEquals(json.line({ a = { 1, 2 } }), '{"a":[1,2]}')
end

-- A view: an empty table whose metatable reads another (like fo.sim.store_track's).
local function view_of(t)
  return setmetatable({}, { __index = t, __len = function() return #t end,
    __pairs = function() return next, t, nil end })
end

function TestJsonText.test_tables_with_metatables_are_left_to_the_lua_encoder()
  local doc = { name = "n", list = view_of({ 1, 2 }), map = view_of({ b = 1, a = { 3 } }) }
  lu.assertFalse(json_text(doc, false, nil, EMPTY))
  lu.assertFalse(json_text(doc.map, true, nil, EMPTY))
  lu.assertEquals(json.line(doc), '{"list":[1,2],"map":{"a":[3],"b":1},"name":"n"}')
  lu.assertEquals(json.encode(doc), json.lua_encode(doc))
  -- an error met before the view is the C encoder's own, the same
  local bad = { a = { 0 / 0 }, b = view_of({}) }
  local ok, e = pcall(json_text, bad, true, nil, EMPTY)
  lu.assertFalse(ok)
  lu.assertEquals(e, select(2, pcall(json.lua_line, bad)))
  -- EMPTY_ARRAY (a metatable too) is the C encoder's
  lu.assertEquals(json_text({ EMPTY }, true, nil, EMPTY), "[[]]")
end

function TestJsonText.test_odd_leads_and_deep_nesting_are_left_to_the_lua_encoder()
  local v = { b = 1, a = 2 }
  lu.assertFalse(json_text(v, true, { "b", 1 }, EMPTY))
  lu.assertEquals(json.line(v, { "b", 1 }), '{"b":1,"a":2}')
  lu.assertFalse(json_text(v, true, view_of({ "b" }), EMPTY))
  lu.assertEquals(json.line(v, view_of({ "b" })), '{"b":1,"a":2}')
  lu.assertFalse(json_text(v, true, "b", EMPTY))
  lu.assertEquals(json.line(v, "b"), json.lua_line(v, "b"))
  -- 256 levels are the C encoder's, more the Lua one's: the same text either way
  for _, levels in ipairs({ 200, 256, 257, 400 }) do
    local deep = "x"
    for i = 1, levels do deep = (i % 2 == 0) and { deep } or { k = deep } end
    lu.assertEquals(json.encode(deep), json.lua_encode(deep), levels)
    lu.assertEquals(json.line(deep), json.lua_line(deep), levels)
    lu.assertEquals(json_text(deep, true, nil, EMPTY) ~= false, levels <= 256, levels)
  end
end

function TestJsonText.test_a_large_document_and_the_next_small_one()
  local big = {}
  for i = 1, 20000 do big["k" .. i] = { i, ("v"):rep(i % 50), i / 7 } end
  -- (compared as booleans: LuaUnit's report of two unequal megabyte strings takes minutes)
  lu.assertTrue(json.encode(big) == json.lua_encode(big), "encode differs")
  lu.assertTrue(json.line(big) == json.lua_line(big), "line differs")
  lu.assertEquals(json.line({ "small" }), '["small"]')
end

os.exit(lu.LuaUnit.run())
