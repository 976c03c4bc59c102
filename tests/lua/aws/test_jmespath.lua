-- JMESPath: every waiter and paginator expression of the ten models compiles; each
-- construct evaluates as the specification says (expected values checked against
-- jmespath.py 1.1); unsupported or malformed syntax fails at compile time.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local jmespath = require "fo.aws.jmespath"
local models = require "fo.aws.models"
local cjson = require "cjson"

local function search(expr, doc)
  if type(doc) == "string" then doc = cjson.decode(doc) end
  return jmespath.search(expr, doc)
end

-- Every expression the models hand to JMESPath: acceptor arguments and the paginators'
-- output_token, result_key, more_results and non_aggregate_keys.
local function model_expressions()
  local list = {}
  local function add(where, v)
    if v == nil then return end
    if type(v) == "table" then
      for _, x in ipairs(v) do list[#list + 1] = { where = where, expr = x } end
    else
      list[#list + 1] = { where = where, expr = v }
    end
  end
  for _, svc in ipairs(aws.services) do
    local m = models.load(svc)
    for name, w in pairs(m.waiters) do
      for i, a in ipairs(w.acceptors) do
        add(("%s waiter %s acceptor %d"):format(svc, name, i), a.argument)
      end
    end
    for op, p in pairs(m.paginators) do
      for _, k in ipairs{ "output_token", "result_key", "more_results", "non_aggregate_keys" } do
        add(("%s paginator %s %s"):format(svc, op, k), p[k])
      end
    end
  end
  return list
end

TestModels = {}

function TestModels.test_every_waiter_and_paginator_expression_compiles()
  local list = model_expressions()
  lu.assertTrue(#list > 500, "expected hundreds of expressions, found " .. #list)
  local failed = {}
  for _, e in ipairs(list) do
    local ok, err = pcall(jmespath.compile, e.expr)
    if not ok then failed[#failed + 1] = e.where .. ": " .. err end
  end
  lu.assertEquals(failed, {})
end

function TestModels.test_the_kinds_of_expression_the_models_use_evaluate()
  local doc = cjson.decode([[{
    "Reservations": [{"Instances": [{"State": {"Name": "running"}}, {"State": {"Name": "pending"}}]},
                     {"Instances": [{"State": {"Name": "running"}}]}],
    "InternetGateways": [{"InternetGatewayId": "igw-1"}],
    "Table": {"TableStatus": "ACTIVE"}, "PasswordData": "",
    "ResourceRecordSets": [], "IsTruncated": false, "NextRecordName": "b.example.com."}]])
  lu.assertEquals(search("Reservations[].Instances[].State.Name", doc),
    { "running", "pending", "running" })
  lu.assertEquals(search("length(Reservations[]) > `0`", doc), true)
  lu.assertEquals(search("length(InternetGateways[].InternetGatewayId) > `0`", doc), true)
  lu.assertEquals(search("length(PasswordData) > `0`", doc), false)
  lu.assertEquals(search("Table.TableStatus", doc), "ACTIVE")
  lu.assertEquals(search("IsTruncated", doc), false)
  lu.assertEquals(search("NextRecordName", doc), "b.example.com.")
  lu.assertNil(search("NextRecordIdentifier", doc))
  lu.assertNil(search("Missing[].State", doc))
end

TestSyntax = {}

function TestSyntax.test_identifiers_and_subexpressions()
  lu.assertEquals(search("a.b.c", '{"a":{"b":{"c":1}}}'), 1)
  lu.assertEquals(search('"with space"', '{"with space":2}'), 2)
  lu.assertEquals(search('a."b-c"', '{"a":{"b-c":3}}'), 3)
  lu.assertNil(search("a.b", '{"a":"text"}'))
  lu.assertNil(search("a.b", '{"a":[1]}'))
  lu.assertEquals(search("@", '{"a":1}'), { a = 1 })
end

function TestSyntax.test_indexes_and_slices()
  local doc = '{"a":[10,20,30,40]}'
  lu.assertEquals(search("a[0]", doc), 10)
  lu.assertEquals(search("a[-1]", doc), 40)
  lu.assertNil(search("a[9]", doc))
  lu.assertEquals(search("a[1:3]", doc), { 20, 30 })
  lu.assertEquals(search("a[::-1]", doc), { 40, 30, 20, 10 })
  lu.assertEquals(search("a[:2]", doc), { 10, 20 })
  lu.assertEquals(search("[0]", "[5,6]"), 5)
end

function TestSyntax.test_projections_and_flatten()
  local doc = '{"a":[{"b":1},{"c":2},{"b":3}], "o":{"x":{"v":1},"y":{"v":2}}, "n":[[1,2],3,[4]]}'
  lu.assertEquals(search("a[*].b", doc), { 1, 3 })
  lu.assertEquals(search("a[].b", doc), { 1, 3 })
  lu.assertEquals(search("o.*.v", doc), { 1, 2 })
  lu.assertEquals(search("n[]", doc), { 1, 2, 3, 4 })
  lu.assertNil(search("o[*]", doc))
  lu.assertEquals(search("a[*].b | [0]", doc), 1)
end

function TestSyntax.test_filters_comparators_and_literals()
  local doc = '{"i":[{"s":"running","n":1},{"s":"stopped","n":5},{"s":"running","n":7}]}'
  lu.assertEquals(search("i[?s == 'running'].n", doc), { 1, 7 })
  lu.assertEquals(search("i[?s != `\"running\"`].n", doc), { 5 })
  lu.assertEquals(search("i[?n > `4`].s", doc), { "stopped", "running" })
  lu.assertEquals(search("i[?n >= `5` && s == 'running'].n", doc), { 7 })
  lu.assertEquals(search("i[?n < `2` || n == `7`].n", doc), { 1, 7 })
  lu.assertEquals(search("i[?!(n == `5`)].n", doc), { 1, 7 })
  lu.assertEquals(search("`[1, {\"a\": true}]`", "{}"), { 1, { a = true } })
end

function TestSyntax.test_logic_returns_operands_as_jmespath_does()
  lu.assertEquals(search("a || b", '{"b":2}'), 2)
  lu.assertEquals(search("a && b", '{"a":[],"b":2}'), {})
  lu.assertEquals(search("a && b", '{"a":1,"b":2}'), 2)
  lu.assertEquals(search("!a", '{"a":""}'), true)
  lu.assertEquals(search("a > b", '{"a":"x","b":"y"}'), false) -- strings order as in jmespath.py
  lu.assertNil(search("a > b", '{"a":1}')) -- other types do not order: null
  lu.assertNil(search("a < b", '{"a":true,"b":1}'))
end

function TestSyntax.test_multiselect()
  lu.assertEquals(search("[a, b]", '{"a":1,"b":2}'), { 1, 2 })
  lu.assertEquals(search("{x: a, y: b}", '{"a":1,"b":2}'), { x = 1, y = 2 })
  lu.assertEquals(search("r[].[id, s][]", '{"r":[{"id":"a","s":1},{"id":"b","s":2}]}'),
    { "a", 1, "b", 2 })
  lu.assertNil(search("missing.[a]", "{}"))
end

function TestSyntax.test_functions()
  local doc = '{"l":["a","bc"],"s":"hello","o":{"k":1,"j":2},"n":[3,1,2]}'
  lu.assertEquals(search("length(l)", doc), 2)
  lu.assertEquals(search("length(s)", doc), 5)
  lu.assertEquals(search("length(o)", doc), 2)
  lu.assertEquals(search("contains(l, 'bc')", doc), true)
  lu.assertEquals(search("contains(s, 'ell')", doc), true)
  lu.assertEquals(search("contains(l, 'x')", doc), false)
  lu.assertEquals(search("starts_with(s, 'he')", doc), true)
  lu.assertEquals(search("ends_with(s, 'lo')", doc), true)
  lu.assertEquals(search("keys(o)", doc), { "j", "k" })
  lu.assertEquals(search("max(n)", doc), 3)
  lu.assertEquals(search("min(n)", doc), 1)
  lu.assertEquals(search("sum(n)", doc), 6)
  lu.assertEquals(search("sort(n)", doc), { 1, 2, 3 })
  lu.assertEquals(search("not_null(x, s)", doc), "hello")
  lu.assertEquals(search("type(o)", doc), "object")
  lu.assertEquals(search("join(', ', l)", doc), "a, bc")
  lu.assertEquals(search("to_number('12')", doc), 12)
  lu.assertEquals(search("to_string(n)", doc), "[3,1,2]")
end

function TestSyntax.test_function_type_errors_raise()
  local ok, err = pcall(search, "length(missing)", "{}")
  lu.assertFalse(ok)
  lu.assertStrContains(err, "length() argument 1: expected string or array or object, got null")
end

TestErrors = {}

local function compile_error(expr)
  local ok, err = pcall(jmespath.compile, expr)
  lu.assertFalse(ok, expr .. " should not compile")
  return err
end

function TestErrors.test_unsupported_and_malformed_syntax_fails_at_compile_time()
  lu.assertStrContains(compile_error("sort_by(a, &b)"), "expression references (&) are not supported")
  lu.assertStrContains(compile_error("nosuch(a)"), "unknown function nosuch()")
  lu.assertStrContains(compile_error("length(a, b)"), "length() takes 1 argument, got 2")
  lu.assertStrContains(compile_error("a["), "unexpected end of expression")
  lu.assertStrContains(compile_error("a..b"), "position 3")
  lu.assertStrContains(compile_error("a ]"), "expected end of expression")
  lu.assertStrContains(compile_error("[?a == `x]"), "unterminated literal")
  lu.assertStrContains(compile_error("`{bad json}`"), "bad JSON literal")
  lu.assertStrContains(compile_error("a # b"), "unexpected character '#'")
  lu.assertStrContains(compile_error("a[::0]"), "slice step cannot be 0")
  lu.assertStrContains(compile_error(""), "expected an expression")
end

function TestErrors.test_compiled_expressions_are_cached()
  local a = jmespath.compile("Vpcs[].State")
  lu.assertIs(jmespath.compile("Vpcs[].State"), a)
  lu.assertEquals(a:search({ Vpcs = { { State = "available" } } }), { "available" })
end

os.exit(lu.LuaUnit.run())
