-- fo-run with recipes, as a user runs it: plain scripts stay scripts, exit codes per
-- class of failure, --json, the stack lock, AWS confirmation, kill -9 in the middle of an
-- apply and the rerun that converges.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"

local dir
TestCli = {}
H.fixture(TestCli, function(f) dir = f.dir end)

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

local function recipe(name, body)
  local path = dir .. "/" .. name
  testlib.write(path, PRELUDE .. body)
  return path
end

local NETWORK = [[
local c = fo.config{ subnet = { type = "string", default = "10.0.1.0/24" } }
local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = c.subnet })
fo.resource("test:topic", "t", { name = "t" })
fo.output("vpc", vpc.id)
]]

local function fo_run(args, env) return testlib.run_fo_in(dir, args, env) end

function TestCli:test_a_file_without_resources_is_a_plain_script()
  local path = recipe("script.lua", "print('hello', ...)\n")
  local r = fo_run({ path, "x" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "hello\tx\n")
  lu.assertEquals(r.stderr, "")
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo"))
end

function TestCli:test_apply_rerun_plan_and_json()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "stack dev is new and bound to the embedded simulator")
  lu.assertStrContains(r.stdout, "Apply complete: 3 created")
  lu.assertStrContains(r.stdout, 'vpc = "vpc-')
  lu.assertIsTrue(fo.fs.exists(dir .. "/.fo/dev.sim.json"))
  r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local events = json_events.parse(r.stdout) -- one event per line (docs/json-events.md)
  local summary = json_events.last(events, "summary")
  lu.assertEquals(summary.exit_code, 0)
  lu.assertEquals(summary.status, "ok")
  lu.assertEquals(summary.calls.mutating, 0) -- rerun against the sim file: nothing to do
  lu.assertEquals(json_events.last(events, "plan").counts.noop, 3)
  lu.assertNil(json_events.last(events, "op_start"))
  r = fo_run({ "--plan", "--config", "subnet=10.0.2.0/24", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, '-/+ test:subnet a')
  lu.assertStrContains(r.stdout, "Plan only (--plan): nothing was changed.")
end

function TestCli:test_options_after_the_recipe_are_fo_s_a_plan_changes_nothing()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ path, "--plan" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy.")
  lu.assertStrContains(r.stdout, "Plan only (--plan): nothing was changed.")
  lu.assertNotStrContains(r.stdout, "Apply complete")
  -- nothing made: the state (if the plan bound the stack) records no resource, and the sim
  -- holds nothing to save
  local st = testlib.read(dir .. "/.fo/dev.state.json")
  lu.assertEquals(st and json.decode(st).resources or {}, {})
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo/dev.sim.json"))
  -- --opt=value as well as --opt value, anywhere before `--`
  r = fo_run({ "--stack=other", path, "--config=subnet=10.0.3.0/24", "--json", "--plan" })
  lu.assertEquals(r.code, 0, r.stderr)
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.last(events, "run").stack, "other")
  lu.assertEquals(json_events.last(events, "run").mode, "plan")
  local summary = json_events.last(events, "summary")
  lu.assertEquals(summary.calls.mutating, 0)
  lu.assertEquals(summary.done, { create = 0, update = 0, replace = 0, delete = 0, rollback = 0 })
  local subnet
  for _, s in ipairs(json_events.last(events, "plan").steps) do
    if s.name == "a" then subnet = s end
  end
  local cidr
  for _, c in ipairs(subnet.changes) do if c.path == "cidr" then cidr = c.new end end
  lu.assertEquals(cidr, "10.0.3.0/24")
end

function TestCli:test_an_unknown_option_after_the_recipe_runs_nothing()
  local marker = dir .. "/ran"
  local path = recipe("marked.lua", ("io.open(%q, 'w'):close()\n"):format(marker) .. NETWORK)
  local r = fo_run({ path, "--pln" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option --pln; did you mean --plan?")
  lu.assertIsFalse(fo.fs.exists(marker), "the recipe's main chunk did not run")
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo"))
end

function TestCli:test_double_dash_gives_plan_to_a_plain_script()
  local path = recipe("script.lua", "print('args', ...)\n")
  local r = fo_run({ path, "--", "--plan", "x" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "args\t--plan\tx\n")
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo"))
end

function TestCli:test_graph_dash_writes_the_dot_to_stdout()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ path, "--graph", "-" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrMatches(r.stdout, "// Generated by: fo%-run %-%-graph %- .*\ndigraph \"dev\" {\n.*}\n")
  lu.assertStrContains(r.stdout, '"test:vpc::main" -> "test:subnet::a";')
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo"))
  r = fo_run({ "--graph=-", "--json", path })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--graph - writes the DOT text to standard output: it takes no --json")
end

local TRADING = testlib.tests_dir .. "/../recipes/trading.lua"

local function count(text, plain)
  local n, at = 0, 1
  while true do
    local i = text:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + #plain
  end
end

function TestCli:test_a_recipe_s_check_of_its_config_is_one_line_without_a_traceback()
  -- fo.fail: the recipe's file:line, no traceback
  local r = fo_run({ "--plan", "--config", "primaryRegion=eu-central-1", TRADING })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrMatches(r.stderr, "fo: [^\n]*/recipes/trading%.lua:%d+: config primaryRegion and "
    .. "standbyRegion must differ %(both are eu%-central%-1%): give one of them another region, "
    .. "e%.g%. %-%-config standbyRegion=eu%-west%-1\n")
  lu.assertEquals(r.stdout, "")
  local path = recipe("fails.lua", "local c = fo.config{ n = { type = 'integer', default = 1 } }\n"
    .. "if c.n > 0 then fo.fail('n must be 0 here: --config n=0') end\n")
  r = fo_run({ path })
  lu.assertEquals(r.code, 1)
  lu.assertEquals(r.stderr, "fo: " .. path .. ":4: n must be 0 here: --config n=0\n")
end

-- fo.warn: the run goes on; the warning is on stderr before the plan, and a notice event
-- of level warning with --json; a non-string is the recipe's bug.
function TestCli:test_fo_warn_is_a_warning_the_run_goes_on()
  local path = recipe("warns.lua", "fo.warn('image x is past its end of support')\n")
  local r = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "fo: warning: image x is past its end of support\n")
  r = fo_run({ "--plan", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, '"level":"warning","text":"image x is past its end of support"')
  path = recipe("warns_badly.lua", "fo.warn(42)\n")
  r = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo.warn(text): text must be a string")
end

function TestCli:test_a_bad_sim_knob_in_the_environment_is_one_config_error()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ "--plan", path }, { FO_SIM_THROTTLE = "abc" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, 'fo: sim knob throttle (FO_SIM_THROTTLE): expected a number, '
    .. 'got "abc"; fix or unset the variable\n')
  lu.assertEquals(count(r.stderr, "FO_SIM_THROTTLE"), 1)
  lu.assertNotStrContains(r.stderr, "traceback")
  r = fo_run({ "--plan", path }, { FO_SIM_OUTAGE = "eu-south1" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo: sim knob outage (FO_SIM_OUTAGE): eu-south1 is not a region "
    .. "the sim serves (eu-central-1, eu-south-1")
  lu.assertNotStrContains(r.stderr, "traceback")
end

function TestCli:test_paths_that_cannot_be_written_are_one_line_without_a_traceback()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ "--graph", dir .. "/no/such/dir/g.dot", path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo: --graph " .. dir .. "/no/such/dir/g.dot: cannot write it: ")
  lu.assertNotStrContains(r.stderr, "traceback")
  testlib.write(dir .. "/file", "")
  r = fo_run({ "--plan", "--state-dir", dir .. "/file/.fo", path })
  lu.assertEquals(r.code, 2) -- statedir.lua: a usage problem, before anything runs
  lu.assertStrContains(r.stderr, "fo: state directory " .. dir .. "/file/.fo cannot be created ")
  lu.assertNotStrContains(r.stderr, "traceback")
end

function TestCli:test_a_failed_operation_is_reported_once()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ "--config", "subnet=10.9.0.0/24", path })
  lu.assertEquals(r.code, 4, r.stdout .. r.stderr)
  lu.assertEquals(count(r.stdout .. r.stderr, "InvalidSubnet.Range"), 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "Error: test:subnet a (dev::test:subnet::a): create failed: "
    .. "ec2.CreateSubnet: InvalidSubnet.Range (HTTP 400)")
  r = fo_run({ "--json", "--config", "subnet=10.9.0.0/24", path })
  lu.assertEquals(r.code, 4)
  lu.assertEquals(count(r.stderr, "InvalidSubnet.Range"), 1, r.stderr)
  local events = json_events.parse(r.stdout)
  lu.assertEquals(#json_events.all(events, "error"), 1)
  lu.assertEquals(json_events.last(events, "summary").failed, 1)
end

function TestCli:test_a_connection_error_names_the_endpoint()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ "--target", "aws", "--stack", "prod", "--yes", path },
    { AWS_ACCESS_KEY_ID = "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY = "x", AWS_REGION = "us-east-1",
      AWS_ENDPOINT_URL = "http://127.0.0.1:1", AWS_MAX_ATTEMPTS = "1" })
  lu.assertNotEquals(r.code, 0)
  lu.assertStrContains(r.stderr, "TransportConnect")
  lu.assertStrContains(r.stderr, "[endpoint http://127.0.0.1:1]")
end

function TestCli:test_exit_codes()
  local path = recipe("net.lua", NETWORK)
  -- usage
  lu.assertEquals(fo_run({ "--target", "gcp", path }).code, 2)
  lu.assertEquals(fo_run({ "--plan", "--destroy", path }).code, 2)
  lu.assertEquals(fo_run({ "--parallel", "0", path }).code, 2)
  local r = fo_run({ "--plan" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "recipe options need a RECIPE file")
  -- recipe error
  r = fo_run({ recipe("bad.lua", "fo.resource('test:nope', 'x', {})\n") })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "bad.lua:3: unknown resource type 'test:nope'")
  r = fo_run({ "--config", "nope=1", path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "unknown config key nope; the recipe declares: subnet")
  -- cloud error, rolled back (a subnet outside its VPC)
  r = fo_run({ "--config", "subnet=10.9.0.0/24", path })
  lu.assertEquals(r.code, 4, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "ec2.CreateSubnet: InvalidSubnet.Range")
  -- cloud error, not rolled back
  r = fo_run({ "--no-rollback", "--config", "subnet=10.9.0.0/24", path })
  lu.assertEquals(r.code, 3)
  -- then fixed
  lu.assertEquals(fo_run({ path }).code, 0)
  lu.assertEquals(fo_run({ "--destroy", path }).code, 0)
end

function TestCli:test_lock_held_and_broken()
  local path = recipe("net.lua", NETWORK)
  lu.assertEquals(fo_run({ path }).code, 0)
  local lockfile = dir .. "/.fo/dev.lock"
  -- another process holds the lock
  local holder = testlib.tmpdir()
  local script = holder .. "/hold.lua"
  testlib.write(script, ([[
    local l = assert(fo.fs.lock(%q, "fo-run --plan other.lua"))
    local f = io.open(%q, "w") f:write("locked") f:close()
    -- holds the lock until the test says so (a fixed sleep ran out under load)
    local deadline = fo.now() + 900
    while not io.open(%q) and fo.now() < deadline do fo.sleep(0.02) end
  ]]):format(lockfile, holder .. "/ready", holder .. "/release"))
  -- (run_fo kills a child after 60 s by default: under load that could end the hold early)
  local t = fo.spawn(testlib.run_fo, { script }, { timeout = 900 })
  while not testlib.read(holder .. "/ready") do fo.sleep(0.02) end
  local r = fo_run({ path })
  lu.assertEquals(r.code, 5, r.stderr)
  lu.assertStrMatches(r.stderr, ".*stack dev is locked by pid %d+ on host [^ ]+ since [%dT:%-]+Z "
    .. "%(fo%-run %-%-plan other%.lua%); wait for it to finish.*")
  r = fo_run({ "--break-lock", path })
  lu.assertEquals(r.code, 5)
  lu.assertStrContains(r.stderr, "--break-lock refused: that process is alive")
  -- the holder's info names a process that is gone (an inherited descriptor keeps the lock)
  testlib.write(lockfile, "pid=999999999\nhost=" .. require("fo.engine.lock").this_host()
    .. "\nstarted=2020-01-01T00:00:00Z\ncommand=fo-run crashed.lua\n")
  r = fo_run({ path })
  lu.assertEquals(r.code, 5)
  lu.assertStrContains(r.stderr, "that process is gone: rerun with --break-lock")
  r = fo_run({ "--break-lock", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "breaking the lock of stack dev held by dead pid 999999999")
  testlib.write(holder .. "/release", "")
  t:join()
  testlib.rmtree(holder)
end

-- The environment of a --target aws run against a simulator served by this process (the
-- stack binds to the account that STS GetCallerIdentity names before anything else).
local function aws_env()
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local k = require("fo.sim.keys").DEFAULT
  return { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = "us-east-1", AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port) }, srv
end

function TestCli:test_aws_target_needs_yes_without_a_terminal()
  local path = recipe("net.lua", NETWORK)
  local env, srv = aws_env()
  local r = fo_run({ "--target", "aws", "--stack", "prod", path }, env)
  srv:close()
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "stack prod is new and bound to target aws")
  lu.assertStrContains(r.stdout, "Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy.")
  lu.assertStrContains(r.stderr, "against AWS needs --yes when the input is not a terminal; "
    .. "nothing was changed")
end

function TestCli:test_aws_target_asks_on_a_terminal_and_no_changes_nothing()
  lu.skipIf(not testlib.has_command("script"),
    "script(1) (util-linux) is needed for a pseudo-terminal")
  local path = recipe("net.lua", NETWORK)
  -- script(1) puts fo-run on a pseudo-terminal; the answer typed is "no"
  local env, srv = aws_env()
  env.FO_STATE_DIR, env.NO_COLOR = dir .. "/.fo", "1"
  local r = fo.process.run{ argv = { "sh", "-c", 'printf "no\\n" | script -qec "$0" /dev/null',
    ("%s --target aws --stack prod %s"):format(testlib.fo_run, path) }, env = env, timeout = 30 }
  srv:close()
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Plan: 3 to add, 0 to change, 0 to replace, 0 to destroy.")
  lu.assertStrContains(r.stdout, "Applying these changes to stack prod against AWS (real "
    .. "resources, real costs). Type 'yes' to go on: ")
  lu.assertStrContains(r.stdout, "not confirmed: nothing was changed")
  lu.assertNotStrContains(r.stdout, "needs --yes")
  -- the stack is bound (target, account) but holds nothing
  local st = json.decode(testlib.read(dir .. "/.fo/prod.state.json"))
  lu.assertEquals({ st.target, st.account, next(st.resources) }, { "aws", "123456789012", nil })
end

function TestCli:test_destroy_works_from_the_state_when_the_recipe_no_longer_loads()
  local path = recipe("net.lua", NETWORK)
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  -- the state names the module that registers each type it holds
  local st = json.decode(testlib.read(dir .. "/.fo/dev.state.json"))
  lu.assertEquals(st.types, { ["test:subnet"] = "support.engine_types",
    ["test:topic"] = "support.engine_types", ["test:vpc"] = "support.engine_types" })
  testlib.write(path, "this is not Lua (\n")
  -- the module is not on fo-run's package.path (the recipe added its folder): nothing done
  r = fo_run({ "--destroy", path })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "cannot destroy stack dev: the state holds resources of types "
    .. "that no module registers:\n  test:subnet, test:topic, test:vpc: require "
    .. "\"support.engine_types\" failed: module 'support.engine_types' not found\n"
    .. "The recipe " .. path .. ", run to register them, failed: " .. path .. ":1: ")
  lu.assertStrContains(r.stderr, "nothing was changed")
  lu.assertEquals(#H.inventory(fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }), 3)
  -- with the module on LUA_PATH, the state alone is enough
  r = fo_run({ "--destroy", path }, { LUA_PATH = testlib.tests_dir .. "/lua/?.lua;;" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 3 deleted.")
  lu.assertEquals(H.inventory(fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }), {})
end

function TestCli:test_destroy_runs_a_recipe_that_defines_its_types_with_the_recorded_config()
  local path = recipe("inline.lua", [[
local c = fo.config{ topic = { type = "string", required = true } }
fo.type("local:topic", {
  schema = { properties = { name = { type = "string", required = true } }, outputs = { "arn" } },
  create = function(ctx, p)
    local arn = ctx:client("sns"):CreateTopic{ Name = p.name }.TopicArn
    return arn, { arn = arn }
  end,
  read = function(ctx, id, p, o) return o end,
  delete = function(ctx, id) ctx:client("sns"):DeleteTopic{ TopicArn = id } end,
})
fo.resource("local:topic", "t", { name = c.topic })
]])
  local r = fo_run({ "--config", "topic=inline", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = json.decode(testlib.read(dir .. "/.fo/dev.state.json"))
  lu.assertEquals(st.types, {}) -- defined by the recipe itself: no module to record
  lu.assertEquals(st.config, { topic = "inline" })
  r = fo_run({ "--destroy", path })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 1 deleted.")
  lu.assertEquals(H.inventory(fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }), {})
end

function TestCli:test_kill_9_during_apply_then_rerun_converges()
  local lines = {}
  for i = 1, 8 do
    lines[#lines + 1] = ("fo.resource('test:subnet', 's%d', { vpc_id = vpc.id, cidr = '10.0.%d.0/24' })")
      :format(i, i)
  end
  local path = recipe("big.lua", "local vpc = fo.resource('test:vpc', 'main', { cidr = '10.0.0.0/16' })\n"
    .. table.concat(lines, "\n") .. "\n")
  local env = { FO_STATE_DIR = dir .. "/.fo", FO_SIM_LATENCY_MS = "40" }
  for _, at in ipairs({ 0.1, 0.2, 0.3, 0.4, 0.5 }) do
    -- killed (SIGKILL at the deadline) somewhere in the apply, or done before it
    pcall(testlib.run_fo, { "--parallel", "2", path }, { timeout = at, env = env })
    local text = testlib.read(dir .. "/.fo/dev.state.json")
    if text then lu.assertEquals(json.decode(text).format, "fo-state") end
    local r = fo_run({ path })
    lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
    local sim = fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }
    lu.assertEquals(#H.inventory(sim), 9, "one VPC and eight subnets, none twice (killed at " .. at .. ")")
    r = fo_run({ "--destroy", path })
    lu.assertEquals(r.code, 0, r.stderr)
    sim = fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }
    lu.assertEquals(H.inventory(sim), {})
  end
end

function TestCli:test_sim_knobs_come_from_the_stack_knobs_file()
  -- .fo/<stack>.sim-knobs.json sets the stack's simulator knobs: 150 ms per call
  local path = recipe("knobs.lua", 'fo.resource("test:topic", "t", { name = "t" })\n')
  fo.fs.mkdir_p(dir .. "/.fo", tonumber("700", 8))
  testlib.write(dir .. "/.fo/dev.sim-knobs.json", '{"latency_ms": 150}')
  local r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local create_seconds
  for line in r.stdout:gmatch("[^\n]+") do
    local e = json.decode(line)
    if e.event == "op_end" and e.urn and e.urn:match("test:topic::t$") then create_seconds = e.seconds end
  end
  lu.assertNotNil(create_seconds, r.stdout)
  lu.assertTrue(create_seconds >= 0.15, "the create did not wait the knob's latency: " .. create_seconds)
  -- a bad file is a config error (exit 1) naming the file and the knob
  testlib.write(dir .. "/.fo/dev.sim-knobs.json", '{"latency_ms": "slow"}')
  r = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "dev.sim-knobs.json: sim knob latency_ms")
  testlib.write(dir .. "/.fo/dev.sim-knobs.json", '{"latency": 1}')
  r = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "unknown sim knob 'latency' (known: consistency_ms")
end

os.exit(lu.LuaUnit.run())
