-- A stack is bound to one account and one recipe, is found from its recipe wherever the
-- shell is, never forgets most of itself on one refresh, and is destroyed from its state
-- even when the recipe that defined some of its types is gone (docs/engine.md, "Stack
-- identity" and "Refresh").
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"

local dir
TestStackIdentity = {}
local fixture = H.fixture(TestStackIdentity, function(f) dir = f.dir end)

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

local NETWORK = [[
local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
fo.resource("test:topic", "t", { name = "t" })
]]

local function write_recipe(path, body)
  testlib.write(path, PRELUDE .. (body or NETWORK))
  return path
end

-- fo-run in directory `cwd` (the stack's files found by fo itself unless env says).
local function fo_in(cwd, args, env)
  local argv = { "sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", cwd, testlib.fo_run }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local e = { FO_STATE_DIR = false }
  for k, v in pairs(env or {}) do e[k] = v end
  return fo.process.run{ argv = argv, env = e, timeout = 60 }
end

local network = H.network() -- 6 resources: a VPC, 2 subnets, a security group, a topic, a role

function TestStackIdentity:test_credentials_of_another_account_stop_before_any_call_that_changes()
  local a = H.sim{ account = "111111111111" }
  local code, _, out, err = H.run(network, { sim = a, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  local st = H.state(dir)
  lu.assertEquals({ st.account, st.partition, st.target }, { "111111111111", "aws", "sim" })
  local before = testlib.read(dir .. "/dev.state.json")
  local b = H.sim{ account = "222222222222" }
  for _, mode in ipairs({ "apply", "plan", "destroy", "refresh" }) do
    b.recorder:clear()
    code, _, out, err = H.run(network, { sim = b, dir = dir, mode = mode, explicit = true,
      yes = true })
    lu.assertEquals(code, 2, mode .. ": " .. out .. err)
    lu.assertStrContains(err, "stack dev is bound to AWS account 111111111111")
    lu.assertStrContains(err, "these credentials are for account 222222222222")
    lu.assertStrContains(err, "--rebind-account")
    lu.assertEquals(H.ops(b), { "sts.GetCallerIdentity" }, mode)
    lu.assertEquals(testlib.read(dir .. "/dev.state.json"), before, mode)
  end
  -- the user says the stack moved: it goes on (and re-creates what account b lacks)
  code, _, out, err = H.run(network, { sim = b, dir = dir, rebind_account = true,
    accept_removals = true, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(err, "rebound from account 111111111111 to account 222222222222")
  lu.assertEquals(H.state(dir).account, "222222222222")
  lu.assertEquals(#H.inventory(b), 6)
end

function TestStackIdentity:test_another_recipe_file_stops_before_any_change()
  local first = write_recipe(dir .. "/first.lua")
  local other = write_recipe(dir .. "/other.lua", 'fo.resource("test:topic", "t", { name = "t" })\n')
  local env = { FO_STATE_DIR = dir .. "/.fo" }
  local r = testlib.run_fo({ first }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = testlib.state_doc(dir)
  lu.assertEquals(st.recipe, "first.lua") -- relative to the folder holding .fo
  for _, mode in ipairs({ {}, { "--plan" } }) do
    local args = { table.unpack(mode) }
    args[#args + 1] = other
    r = testlib.run_fo(args, { env = env })
    lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
    lu.assertStrContains(r.stderr, "stack dev is bound to recipe first.lua")
    lu.assertStrContains(r.stderr, "this run's recipe is other.lua")
    lu.assertStrContains(r.stderr, "--rebind-recipe")
  end
  local sim = fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }
  lu.assertEquals(#H.inventory(sim), 3, "nothing deleted")
  r = testlib.run_fo({ "--rebind-recipe", other }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Apply complete: 0 created, 0 updated, 0 replaced, 2 deleted.")
  lu.assertEquals(testlib.state_doc(dir).recipe, "other.lua")
end

function TestStackIdentity:test_the_stack_is_found_from_the_recipe_not_the_current_directory()
  local project = dir .. "/project"
  fo.fs.mkdir_p(project .. "/.git", tonumber("700", 8)) -- a repository root bounds the search
  fo.fs.mkdir_p(project .. "/recipes", tonumber("700", 8))
  write_recipe(project .. "/recipes/net.lua")
  local r = fo_in(project, { "recipes/net.lua" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertTrue(fo.fs.exists(project .. "/.fo/dev.state.json"))
  lu.assertEquals(testlib.state_doc(project).recipe,
    "recipes/net.lua")
  for _, case in ipairs({ { project .. "/recipes", "net.lua" }, { dir, "project/recipes/net.lua" },
    { "/", project .. "/recipes/net.lua" } }) do
    r = fo_in(case[1], { case[2] })
    lu.assertEquals(r.code, 0, case[1] .. ": " .. r.stderr)
    lu.assertStrContains(r.stdout, "No changes.", false, case[1])
    lu.assertNotStrContains(r.stderr, "is new", false, case[1])
  end
  lu.assertIsFalse(fo.fs.exists(project .. "/recipes/.fo"))
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo"))
  -- --destroy finds it too, even with the recipe gone (the test types' module on LUA_PATH)
  os.remove(project .. "/recipes/net.lua")
  r = fo_in(project .. "/recipes", { "--destroy", "net.lua" },
    { LUA_PATH = testlib.tests_dir .. "/lua/?.lua;;" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 3 deleted.")
end

function TestStackIdentity:test_plan_on_a_new_aws_stack_binds_it_and_other_credentials_stop()
  local srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local k = require("fo.sim.keys").DEFAULT
  local path = write_recipe(dir .. "/net.lua")
  local env = { FO_STATE_DIR = dir .. "/.fo", AWS_ACCESS_KEY_ID = k.access_key,
    AWS_SECRET_ACCESS_KEY = k.secret_key, AWS_REGION = "us-east-1",
    AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port) }
  local r = testlib.run_fo({ "--plan", "--target", "aws", "--stack", "prod", path }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "stack prod is new and bound to target aws")
  local st = testlib.state_doc(dir, "prod")
  lu.assertEquals({ st.target, st.account, st.recipe, next(st.resources) },
    { "aws", "123456789012", "net.lua", nil })
  -- a later run without --target is the same aws stack; --target sim is refused
  r = testlib.run_fo({ "--plan", "--target", "sim", "--stack", "prod", path }, { env = env })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "stack prod is bound to target aws")
  -- credentials of another account (a key of the served simulator's other account)
  sim:add_key{ access_key = "AKIAOTHERACCOUNT0001", secret_key = "other-secret",
    account = "210987654321" }
  env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY = "AKIAOTHERACCOUNT0001", "other-secret"
  r = testlib.run_fo({ "--yes", "--stack", "prod", path }, { env = env })
  srv:close()
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "stack prod is bound to AWS account 123456789012")
  lu.assertStrContains(r.stderr, "these credentials are for account 210987654321")
  lu.assertEquals(#H.inventory(sim), 0, "nothing created in either account")
end

function TestStackIdentity:test_most_of_a_stack_read_as_gone_is_refused_and_nothing_is_forgotten()
  local a = H.sim()
  local code, _, out, err = H.run(network, { sim = a, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  local before = testlib.read(dir .. "/dev.state.json")
  -- the same account, but an endpoint that holds none of it (a wrong endpoint or region)
  local empty = H.sim()
  for _, mode in ipairs({ "refresh", "apply", "plan" }) do
    code, _, out, err = H.run(network, { sim = empty, dir = dir, mode = mode, explicit = true,
      yes = true })
    lu.assertEquals(code, 2, mode .. ": " .. out .. err)
    lu.assertStrContains(err, "refresh read 6 of the 6 resources of stack dev as gone at once")
    lu.assertStrContains(err, "--accept-removals")
    lu.assertEquals(H.mutating(empty), 0, mode)
    lu.assertEquals(testlib.read(dir .. "/dev.state.json"), before, mode)
  end
  -- back on the right endpoint: nothing was lost
  code, _, out = H.run(network, { sim = a, dir = dir })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "No changes.")
  -- one resource of six deleted by hand is drift, recorded once agreed
  local id = H.state(dir).resources["dev::test:topic::alerts"].id
  a:invoke("sns", H.REGION, "DeleteTopic", { TopicArn = id })
  code, _, out, err = H.run(network, { sim = a, dir = dir, mode = "refresh", explicit = true })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(out, "dev::test:topic::alerts: deleted (was " .. id .. ")")
  lu.assertNotNil(H.state(dir).resources["dev::test:topic::alerts"])
  code = H.run(network, { sim = a, dir = dir, mode = "refresh", explicit = true, yes = true })
  lu.assertEquals(code, 0)
  lu.assertNil(H.state(dir).resources["dev::test:topic::alerts"])
end

function TestStackIdentity:test_destroy_forgets_data_types_of_a_recipe_that_is_gone()
  local path = write_recipe(dir .. "/probe.lua", [[
fo.type("local:probe", {
  data = true,
  schema = { properties = {}, outputs = { "account" } },
  create = function(ctx)
    return ctx.region, { account = ctx:client("sts"):GetCallerIdentity{}.Account }
  end,
  read = function(_, _, _, outputs) return outputs end,
})
local p = fo.resource("local:probe", "here", {})
fo.resource("test:topic", "t", { name = "t" }, { depends_on = { p } })
]])
  -- the test types' module is on the path without the recipe's help
  local env = { FO_STATE_DIR = dir .. "/.fo", LUA_PATH = testlib.tests_dir .. "/lua/?.lua;;" }
  local r = testlib.run_fo({ path }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = testlib.state_doc(dir)
  lu.assertEquals(st.types["local:probe"], "fo.engine.data")
  os.remove(path)
  r = testlib.run_fo({ "--destroy", path }, { env = env })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 2 deleted.")
  lu.assertEquals(H.inventory(fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }), {})
  lu.assertEquals(next(testlib.state_doc(dir).resources), nil)
end

local _ = fixture
os.exit(lu.LuaUnit.run())
