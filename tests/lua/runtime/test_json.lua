-- fo.json: the exact-type codec of fo's own files (integers stay integers, floats floats),
-- sorted keys, [] on request, errors with a path or line, and read_file's three outcomes.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local json = require "fo.json"

TestJson = {}

function TestJson.test_integers_and_floats_keep_their_type_across_a_round_trip()
  local v = json.decode(json.encode({ port = 443, weight = 2.0, ratio = 0.1, big = 1e300,
    neg = -7, list = { 1, 2.5, "x", true } }))
  lu.assertEquals(math.type(v.port), "integer")
  lu.assertEquals(math.type(v.weight), "float")
  lu.assertEquals(v.weight, 2.0)
  lu.assertEquals(v.ratio, 0.1)
  lu.assertEquals(v.big, 1e300)
  lu.assertEquals(math.type(v.neg), "integer")
  lu.assertEquals(v.list, { 1, 2.5, "x", true })
end

function TestJson.test_keys_are_sorted_one_per_line_and_strings_escaped()
  lu.assertEquals(json.encode({ b = 1, a = { "q\"\n\1" } }),
    '{\n  "a": [\n    "q\\"\\n\\u0001"\n  ],\n  "b": 1\n}')
  lu.assertEquals(json.decode('"\\u00e9\\ud83d\\ude00"'), "é😀")
end

function TestJson.test_an_empty_table_is_an_object_and_EMPTY_ARRAY_a_list()
  lu.assertEquals(json.encode({}), "{}")
  lu.assertEquals(json.encode({ steps = json.EMPTY_ARRAY }), '{\n  "steps": []\n}')
  lu.assertEquals(json.decode("[]"), {})
  lu.assertError(function() json.EMPTY_ARRAY[1] = 1 end)
end

function TestJson.test_what_json_cannot_hold_is_an_error_naming_its_path()
  local ok, e = pcall(json.encode, { a = { 1, 0 / 0 } })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "$.a[2]: ")
  ok, e = pcall(json.encode, { f = print })
  lu.assertStrContains(e, "$.f: a function cannot be stored in JSON")
  ok, e = pcall(json.encode, { [1] = 1, x = 2 })
  lu.assertStrContains(e, "key 1 is not a string")
end

function TestJson.test_decode_errors_name_the_line()
  local ok, e = pcall(json.decode, '{\n  "a": 1,\n  "b": nope\n}')
  lu.assertFalse(ok)
  lu.assertStrContains(e, "unexpected character at line 3")
  ok, e = pcall(json.decode, '{"a": 1} x')
  lu.assertStrContains(e, "text after the document")
end

function TestJson.test_read_file_no_file_unusable_file_and_a_document()
  local dir = t.tmpdir()
  lu.assertEquals(select("#", json.read_file(dir .. "/none.json")), 1)
  lu.assertNil(json.read_file(dir .. "/none.json"))

  t.write(dir .. "/bad.json", '{"a": ')
  local v, why = json.read_file(dir .. "/bad.json")
  lu.assertNil(v)
  lu.assertStrContains(why, "invalid JSON: unexpected end of text at line 1")

  v, why = json.read_file(dir) -- a directory: there, but not readable as a file
  lu.assertNil(v)
  lu.assertStrContains(why, "Is a directory")

  local expect = { format = "fo-test", version = 2, what = "a test document" }
  t.write(dir .. "/other.json", '{"format": "x", "version": 2}')
  v, why = json.read_file(dir .. "/other.json", expect)
  lu.assertNil(v)
  lu.assertEquals(why, 'not a test document (format must be "fo-test")')
  t.write(dir .. "/old.json", '{"format": "fo-test", "version": 1}')
  v, why = json.read_file(dir .. "/old.json", expect)
  lu.assertEquals(why, "schema version 1; this fo reads version 2")

  local text = '{"format": "fo-test", "version": 2, "n": 3}'
  t.write(dir .. "/good.json", text)
  local doc, got = json.read_file(dir .. "/good.json", expect)
  lu.assertEquals(doc, { format = "fo-test", version = 2, n = 3 })
  lu.assertEquals(got, text)
  t.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
