-- fo.sim.records.copy (in C, fo.tables.copy) against its Lua reference (records.lua_copy):
-- deep copies equal to the original, sharing no table with it nor among themselves, the
-- same next() order as the Lua copy's, and tables with metatables copied through their
-- __pairs as the Lua copy does.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local records = require "fo.sim.records"
local json = require "fo.json"
local equal = require("fo.tables").equal

-- Every table reachable from v, each once.
local function tables_of(v, out)
  out = out or {}
  if type(v) == "table" and not out[v] then
    out[v] = true
    for k, x in pairs(v) do
      tables_of(k, out)
      tables_of(x, out)
    end
  end
  return out
end

-- The keys of t in next() order, recursively, as text (an order test, not a content one).
local function order_of(t, out)
  out = out or {}
  for k, x in pairs(t) do
    out[#out + 1] = tostring(k)
    if type(x) == "table" then
      out[#out + 1] = "{"
      order_of(x, out)
      out[#out + 1] = "}"
    end
  end
  return table.concat(out, " ")
end

TestRecords = {}

function TestRecords.test_copy_is_deep_equal_and_shares_no_table()
  local shared = { Key = "a", Value = "b" }
  local rec = { Name = "/p", Version = 3, Ratio = 2.0, Enabled = true, Tags = { shared, shared },
    Meta = { shared = shared, nested = { { { deep = { 1, 2, 3 } } } } }, Empty = {} }
  for i = 1, 40 do rec["k" .. i] = { i, i * 0.5, tostring(i) } end
  local copy = records.copy(rec)
  lu.assertTrue(equal(copy, rec))
  lu.assertTrue(equal(copy, records.lua_copy(rec)))
  lu.assertEquals(order_of(copy), order_of(records.lua_copy(rec)))
  local originals = tables_of(rec)
  local n = 0
  for t in pairs(tables_of(copy)) do
    lu.assertNil(originals[t], "a table of the copy is one of the original's")
    n = n + 1
  end
  -- the table met three times is copied three times (as the Lua copy does)
  local copies = 0
  for _ in pairs(tables_of(records.lua_copy(rec))) do copies = copies + 1 end
  lu.assertEquals(n, copies)
  lu.assertNotIs(copy.Tags[1], copy.Tags[2])
  lu.assertNotIs(copy.Meta.shared, copy.Tags[1])
  -- changing the copy leaves the original alone
  copy.Meta.nested[1][1].deep[1] = 99
  lu.assertEquals(rec.Meta.nested[1][1].deep[1], 1)
end

function TestRecords.test_values_that_are_not_tables_are_returned_as_they_are()
  for _, v in ipairs({ "s", 1, 1.5, math.mininteger, true, false, print }) do
    lu.assertIs(records.copy(v), v)
  end
  lu.assertNil(records.copy(nil))
  local key = {}
  local copy = records.copy({ [key] = "k", f = print })
  lu.assertEquals(copy[key], "k") -- keys are not copied
  lu.assertIs(copy.f, print)
end

function TestRecords.test_tables_with_metatables_are_copied_through_their_pairs()
  local real = { a = 1, b = { 2 } }
  local view = setmetatable({}, { __index = real, __pairs = function() return next, real, nil end })
  local copy = records.copy({ v = view, e = json.EMPTY_ARRAY })
  lu.assertEquals(copy.v, { a = 1, b = { 2 } })
  lu.assertNil(getmetatable(copy.v))
  lu.assertNotIs(copy.v.b, real.b)
  -- EMPTY_ARRAY becomes a plain empty table, as with the Lua copy
  lu.assertNil(getmetatable(copy.e))
  lu.assertEquals(copy.e, {})
  lu.assertNotIs(copy.e, json.EMPTY_ARRAY)
end

function TestRecords.test_deep_nesting_is_copied_whole()
  local deep = { leaf = "x" }
  for i = 1, 300 do deep = { [i % 2 == 0 and "k" or 1] = deep } end
  local copy = records.copy(deep)
  lu.assertNotIs(copy, deep)
  lu.assertTrue(json.line(copy) == json.line(deep))
end

os.exit(lu.LuaUnit.run())
