-- fo.testing (docs/testing.md), the recipe-test API: a recipe file applied on a fresh
-- simulator with config overrides, read back through bound clients, rerun, destroyed, its
-- directory removed; its helpers.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"

local RECIPE = [[
require "fo.aws.resources"
local cfg = fo.config{ suffix = { type = "string", default = "dev" } }
local topic = fo.resource("aws:sns:topic", "alerts", { name = "alerts-" .. cfg.suffix },
  { region = "eu-central-1" })
fo.output("topic_arn", topic.arn)
]]

local dir, recipe

TestFoTesting = {}

function TestFoTesting:setUp()
  dir = testlib.tmpdir()
  recipe = dir .. "/recipe.lua"
  testlib.write(recipe, RECIPE)
end

function TestFoTesting:tearDown() testlib.rmtree(dir) end

local function topics(st)
  local names = {}
  for _, t in ipairs(st:client("sns", "eu-central-1"):ListTopics{}.Topics) do
    names[#names + 1] = t.TopicArn:match("[^:]+$")
  end
  return names
end

function TestFoTesting:test_apply_read_back_rerun_destroy_close()
  local st = testing.apply(recipe, { config = { suffix = "ci" } })
  local state_dir = st.dir
  st:check()
  lu.assertEquals(st.code, 0)
  lu.assertStrContains(st.out, "Apply complete")
  lu.assertStrMatches(st.outputs.topic_arn, "arn:aws:sns:eu%-central%-1:%d+:alerts%-ci")
  lu.assertEquals(topics(st), { "alerts-ci" })
  lu.assertIsTrue(fo.fs.exists(state_dir .. "/test.state.json"))
  -- a rerun: nothing to do, no mutating call
  local before = st:mutating_calls()
  lu.assertEquals(st:run(), 0)
  lu.assertStrContains(st.out, "No changes.")
  lu.assertEquals(st:mutating_calls(), before)
  -- the virtual clock
  local t = st.sim:now()
  st:advance(120)
  lu.assertTrue(st.sim:now() >= t + 120)
  -- an update with other config, then the destroy
  lu.assertEquals(st:run{ config = { suffix = "two" } }, 0, st.out .. st.err)
  lu.assertEquals(topics(st), { "alerts-two" })
  lu.assertEquals(st:destroy(), 0, st.out .. st.err)
  lu.assertEquals(topics(st), {})
  st:close()
  lu.assertIsFalse(fo.fs.exists(state_dir))
end

function TestFoTesting:test_a_failed_apply_is_returned_and_check_raises_with_its_output()
  testlib.write(recipe, RECIPE .. 'fo.fail("no such thing")\n')
  local st = testing.apply(recipe)
  lu.assertEquals(st.code, 1)
  local ok, err = pcall(st.check, st)
  st:close()
  lu.assertIsFalse(ok)
  lu.assertStrContains(tostring(err), "no such thing")
  lu.assertStrContains(tostring(err), "exited 1")
  lu.assertEquals(st:mutating_calls(), 0)
end

-- config values given as Lua values (not --config text): taken when of the entry's type,
-- read as text otherwise; a wrong one is the usual config error, not a traceback
function TestFoTesting:test_config_values_may_be_lua_values()
  testlib.write(recipe, [[
local c = fo.config{ on = { type = "boolean", default = false }, n = { type = "integer", default = 1 },
  s = { type = "string", default = "x" } }
fo.output("v", tostring(c.on) .. "/" .. c.n .. "/" .. c.s)
]])
  local st = testing.apply(recipe, { config = { on = true, n = 3, s = 5 } })
  lu.assertEquals(st.code, 0, st.out .. st.err)
  lu.assertEquals(st.outputs.v, "true/3/5")
  st:close()
  st = testing.apply(recipe, { config = { n = true } })
  lu.assertEquals(st.code, 1)
  lu.assertStrContains(st.err, "n=true: expected an integer")
  lu.assertNotStrContains(st.out .. st.err, "traceback")
  st:close()
end

function TestFoTesting:test_close_all_removes_the_stacks_left_open()
  local a, b = testing.apply(recipe), testing.apply(recipe)
  local closed = testing.apply(recipe)
  local dirs = { a.dir, b.dir }
  closed:close()
  for _, d in ipairs(dirs) do lu.assertTrue(fo.fs.exists(d)) end
  testing.close_all()
  for _, d in ipairs(dirs) do lu.assertFalse(fo.fs.exists(d), d) end
  lu.assertNil(a.dir)
  testing.close_all() -- nothing left: a second call does nothing
end

function TestFoTesting:test_fast_dynamodb_timings_are_restored_after_each_run()
  local ddb = require "fo.sim.services.dynamodb"
  local saved = ddb.TIMING
  local st = testing.apply(recipe)
  st:close()
  lu.assertIs(ddb.TIMING, saved)
  lu.assertEquals(st.sim.timing, testing.FAST)
  local slow = testing.apply(recipe, { fast = false })
  slow:close()
  lu.assertNotEquals(slow.sim.timing, testing.FAST)
end

function TestFoTesting:test_sim_options_reach_the_simulator()
  local st = testing.apply(recipe, { sim_options = { disabled_regions = { "eu-south-1" } } })
  st:close()
  lu.assertEquals(st.code, 0, st.out .. st.err) -- eu-central-1 is not opt-in
  local ok, err = pcall(function() return st:client("sns", "eu-south-1"):ListTopics{} end)
  lu.assertIsFalse(ok)
  lu.assertEquals(err.code, "InvalidClientTokenId")
end

function TestFoTesting:test_rmtree_removes_only_its_own_directories()
  for _, d in ipairs({ "/tmp", "/", dir .. "/../x", "/tmp/fo-test.abc/..", "relative" }) do
    lu.assertErrorMsgContains("refusing to remove", testing.rmtree, d)
  end
  local mine = testing.tmpdir()
  lu.assertStrMatches(mine, "/tmp/fo%-test%.%w+")
  testing.rmtree(mine)
  lu.assertIsFalse(fo.fs.exists(mine))
end

function TestFoTesting:test_read_back_helpers()
  lu.assertEquals(testing.tag_map({ { Key = "a", Value = "1" }, { Key = "b", Value = "2" } }),
    { a = "1", b = "2" })
  lu.assertEquals(testing.policy("%7B%22Version%22%3A%222012-10-17%22%2C%22S%22%3A%22a+b%22%7D"),
    { Version = "2012-10-17", S = "a b" })
  lu.assertEquals(testing.policy('{"a":1}'), { a = 1 })
  lu.assertEquals(testing.user_data(fo.crypto.base64_encode("#!/bin/bash\necho hi\n")),
    "#!/bin/bash\necho hi\n")
  lu.assertEquals(testing.arn_suffix(
    "arn:aws:elasticloadbalancing:eu-south-1:123456789012:loadbalancer/app/alb-x/50dc6c495c0c9188"),
    "app/alb-x/50dc6c495c0c9188")
  lu.assertEquals(testing.arn_suffix(
    "arn:aws:elasticloadbalancing:eu-south-1:123456789012:targetgroup/tg-x/73e2d6bc24d8a067"),
    "targetgroup/tg-x/73e2d6bc24d8a067")
end

os.exit(lu.LuaUnit.run("-v"))
