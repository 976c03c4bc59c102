-- fo-run state list|show|rm|mv|pull|push, fo.moved and fo-run outputs, as a user runs them
-- (fo-run child processes on the simulator's file, and one stack on a served simulator with
-- the S3 backend): each command's refusals (unknown URN, a locked stack, another stack's
-- or a stale backup), the lock held while a command writes, a moved resource that the
-- cloud never sees recreated, secret values that never show unless asked for.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"

local dir
TestStateCmd = {}
H.fixture(TestStateCmd, function(f) dir = f.dir end)

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

local CANARY = "Canary-7f3e-secret"

-- {vpc} names the VPC's logical name; {moved} adds declarations after it.
local function network(vpc, moved)
  return ([[
local c = fo.config{ token = { type = "string", secret = true, default = %q } }
local vpc = fo.resource("test:vpc", %q, { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
fo.resource("test:topic", "t", { name = "t", display_name = fo.format("token %%s", c.token) })
fo.output("vpc", vpc.id)
fo.output("token", c.token)
%s
]]):format(CANARY, vpc, moved or "")
end

local function recipe(body)
  local path = dir .. "/net.lua"
  testlib.write(path, PRELUDE .. body)
  return path
end

local function fo_run(args, env) return testlib.run_fo_in(dir, args, env) end

-- The events of a --json command, each checked against docs/json-events.schema.json.
local function events(r) return json_events.checked(r.stdout) end

local function state()
  return testlib.state_doc(dir)
end

local function sim_text()
  return testlib.sim_text(dir .. "/.fo")
end

local function applied()
  local path = recipe(network("main"))
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  return path
end

function TestStateCmd:test_list_and_show_filter_and_never_show_a_secret()
  applied()
  local sim_before = sim_text()
  local r = fo_run({ "state", "list" })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = state()
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
  lu.assertEquals(#lines, 3, r.stdout)
  lu.assertEquals(lines[3]:gsub(" +", " "), "dev::test:vpc::main us-east-1 "
    .. st.resources["dev::test:vpc::main"].id)
  r = fo_run({ "state", "list", "--type", "test:s*", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  local rows = json_events.last(ev, "state").resources
  lu.assertEquals(#rows, 1)
  lu.assertEquals(rows[1].urn, "dev::test:subnet::a")
  lu.assertEquals(json_events.last(ev, "summary").mode, "state-list")
  r = fo_run({ "state", "list", "--id", st.resources["dev::test:vpc::main"].id, "--region", "us-east-1" })
  lu.assertEquals(r.stdout:match("^(%S+)"), "dev::test:vpc::main")
  lu.assertNotStrContains(r.stdout, "subnet")
  r = fo_run({ "state", "list", "--region", "eu-west-1" })
  lu.assertEquals({ r.code, r.stdout }, { 0, "" })
  lu.assertStrContains(r.stderr, "holds no resource matching")
  -- show, by URN, type::name or name; the topic's input derived from the secret is sealed
  -- in the state and shown as [secret], in text and in events
  r = fo_run({ "state", "show", "test:topic::t" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "dev::test:topic::t\n  type        test:topic\n")
  lu.assertStrContains(r.stdout, "display_name = [secret]")
  r = fo_run({ "state", "show", "dev::test:topic::t", "--json" })
  local res = json_events.last(events(r), "state").resource
  lu.assertEquals(res.inputs.display_name, "[secret]")
  r = fo_run({ "state", "show", "main" })
  lu.assertStrContains(r.stdout, "needed by   dev::test:subnet::a")
  for _, text in ipairs({ r.stdout, r.stderr, testlib.read(dir .. "/.fo/dev.state.json") }) do
    lu.assertNotStrContains(text, CANARY)
  end
  -- an unknown URN: a usage error naming the closest, exit 2
  r = fo_run({ "state", "show", "mian" })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "stack dev has no resource mian (did you mean dev::test:vpc::main?)")
  lu.assertNotStrContains(r.stderr, "traceback")
  -- another stack that has no state: exit 2, nothing made
  r = fo_run({ "state", "list", "--stack", "prod" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "stack prod has no state")
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo/prod.lock"))
  -- reading changed nothing: no serial counted, no cloud call
  lu.assertEquals(state().serial, st.serial)
  lu.assertEquals(sim_text(), sim_before)
end

function TestStateCmd:test_usage_errors_name_the_command()
  local cases = {
    { { "state" }, "fo-run state needs a command: list, show, rm, mv, pull, push" },
    { { "state", "lst" }, "fo-run state lst: no such command (did you mean 'list'?)" },
    { { "state", "list", "x" }, "fo-run state list takes no arguments" },
    { { "state", "show" }, "fo-run state show takes 1 argument" },
    { { "state", "rm", "--plan", "x" }, "fo-run state rm takes no --plan" },
    { { "state", "list", "--show-secrets" }, "fo-run state list takes no --show-secrets" },
    { { "outputs", "-e", "print(1)" }, "fo-run outputs takes no -e or -i" },
    { { dir .. "/x.lua", "--force" }, "--force goes with the state and outputs commands" },
  }
  for _, c in ipairs(cases) do
    local r = fo_run(c[1])
    lu.assertEquals(r.code, 2, table.concat(c[1], " ") .. ": " .. r.stderr)
    lu.assertStrContains(r.stderr, c[2])
  end
  -- a script named `state` runs as ./state
  testlib.write(dir .. "/state", "print('the script, ' .. ...)\n")
  local r = fo.process.run{ argv = { "sh", "-c", 'cd "$0" && exec "$1" ./state list', dir,
    testlib.fo_run } }
  lu.assertEquals({ r.code, r.stdout }, { 0, "the script, list\n" }, r.stderr)
  r = fo_run({ "--help" })
  lu.assertStrContains(r.stdout, "  state rm URN...  forget resources")
  lu.assertStrContains(r.stdout, "  outputs [NAME]  the stack's outputs")
end

function TestStateCmd:test_rm_forgets_without_deleting_and_mv_renames_without_a_cloud_call()
  local path = applied()
  local before = state()
  local sim_before = sim_text()
  local topic = before.resources["dev::test:topic::t"]
  -- every name is checked before anything is forgotten
  local r = fo_run({ "state", "rm", "t", "nope" })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertEquals(state().resources, before.resources)
  r = fo_run({ "state", "rm", "main", "--plan" })
  lu.assertEquals(r.code, 2)
  r = fo_run({ "state", "rm", "t", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json_events.last(events(r), "state").resources[1].id, topic.id)
  local st = state()
  lu.assertNil(st.resources["dev::test:topic::t"])
  lu.assertEquals(st.serial, before.serial + 1)
  -- nothing deleted in the cloud: the simulator's file is as it was
  lu.assertEquals(sim_text(), sim_before)
  -- mv: the record, and the subnet's dependency on it, under the new name
  r = fo_run({ "state", "mv", "main", "core" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Moved dev::test:vpc::main to dev::test:vpc::core")
  st = state()
  lu.assertEquals(st.resources["dev::test:vpc::core"].id, before.resources["dev::test:vpc::main"].id)
  lu.assertEquals(st.resources["dev::test:vpc::core"].name, "core")
  lu.assertEquals(st.resources["dev::test:subnet::a"].deps, { "dev::test:vpc::core" })
  lu.assertEquals(sim_text(), sim_before)
  -- refusals: a name taken, a type changed, an unknown one; nothing changed
  r = fo_run({ "state", "mv", "core", "test:subnet::core" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "state mv renames a resource; its type stays test:vpc")
  r = fo_run({ "state", "mv", "nope", "x" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "stack dev has no resource nope")
  fo_run({ "state", "mv", "a", "b" })
  r = fo_run({ "state", "mv", "b", "test:subnet::b" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "already has that name")
  -- the recipe still declares main and t: the plan creates them again (what rm and mv say)
  r = fo_run({ "--plan", path })
  lu.assertStrMatches(r.stdout, ".*%+ +test:vpc main +create\n.*")
  lu.assertStrMatches(r.stdout, ".*%+ +test:topic t +create\n.*")
  -- forgetting what others depend on says so
  r = fo_run({ "state", "rm", "core" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "dev::test:subnet::b depends on dev::test:vpc::core, which "
    .. "stack dev no longer manages")
  lu.assertEquals(sim_text(), sim_before)
end

function TestStateCmd:test_fo_moved_adopts_the_old_record_no_delete_no_create()
  local path = applied()
  local before = state()
  -- without fo.moved, the rename plans a delete and a create (the case fo.moved is for)
  recipe(network("core"))
  local r = fo_run({ "--plan", "--json", path })
  local plan = json_events.last(events(r), "plan")
  lu.assertEquals({ plan.counts.create, plan.counts.delete }, { 1, 1 })
  -- with it: a move in the plan and the apply, and no cloud call that changes anything
  recipe(network("core", 'fo.moved{ from = "main", to = "core" }'))
  r = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Moved dev::test:vpc::main to dev::test:vpc::core")
  lu.assertStrContains(r.stdout, "No changes.")
  lu.assertNotNil(state().resources["dev::test:vpc::main"]) -- a plan records nothing
  local sim_before = sim_text()
  r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  local moved = json_events.last(ev, "moved")
  lu.assertEquals({ moved.from, moved.to, moved.id }, { "dev::test:vpc::main", "dev::test:vpc::core",
    before.resources["dev::test:vpc::main"].id })
  local summary = json_events.last(ev, "summary")
  lu.assertEquals(summary.calls.mutating, 0)
  lu.assertEquals(summary.done, { create = 0, update = 0, replace = 0, delete = 0, rollback = 0 })
  lu.assertEquals(sim_text(), sim_before)
  local st = state()
  lu.assertNil(st.resources["dev::test:vpc::main"])
  lu.assertEquals(st.resources["dev::test:vpc::core"].id, before.resources["dev::test:vpc::main"].id)
  -- the declaration may stay: the next run has nothing to move
  r = fo_run({ "--json", path })
  lu.assertNil(json_events.last(events(r), "moved"))
  -- a bad declaration is a recipe error at its line
  recipe(network("core", 'fo.moved{ from = "core", to = "nowhere" }'))
  r = fo_run({ path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, 'net.lua:9: fo.moved: to = "nowhere" names no resource of the recipe')
  recipe(network("core", 'fo.moved{ from = "test:subnet::a", to = "core" }'))
  r = fo_run({ path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo.moved: test:subnet::a is a test:subnet and core a test:vpc: a move renames")
  recipe(network("core", 'fo.resource("test:vpc", "main", { cidr = "10.1.0.0/16" })\n'
    .. 'fo.moved{ from = "main", to = "core" }'))
  r = fo_run({ path })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo.moved: main is still declared (at ")
  lu.assertEquals(sim_text(), sim_before)
end

-- Moves chain: main → core, then core → hub; a stack still on main goes straight to hub,
-- one on core too; a state holding both is refused.
function TestStateCmd:test_fo_moved_chains_and_refuses_two_records_for_one_name()
  local path = applied()
  local id = state().resources["dev::test:vpc::main"].id
  local chain = 'fo.moved{ from = "main", to = "core" }\nfo.moved{ from = "core", to = "hub" }'
  recipe(network("hub", chain))
  local sim_before = sim_text()
  local r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local moved = json_events.last(events(r), "moved")
  lu.assertEquals({ moved.from, moved.to }, { "dev::test:vpc::main", "dev::test:vpc::hub" })
  lu.assertEquals(json_events.last(events(r), "summary").calls.mutating, 0)
  lu.assertEquals(state().resources["dev::test:vpc::hub"].id, id)
  lu.assertEquals(sim_text(), sim_before)
  -- a stack on the middle name moves on as well
  lu.assertEquals(fo_run({ "state", "mv", "hub", "core" }).code, 0)
  r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Moved dev::test:vpc::core to dev::test:vpc::hub")
  -- both old names in the state: which one is hub? refused, nothing changed
  lu.assertEquals(fo_run({ "state", "mv", "hub", "main" }).code, 0)
  recipe(network("main", 'fo.resource("test:vpc", "core", { cidr = "10.2.0.0/16" })'))
  lu.assertEquals(fo_run({ path }).code, 0)
  recipe(network("hub", chain))
  local before = state()
  r = fo_run({ path })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "the state holds both dev::test:vpc::main and "
    .. "dev::test:vpc::core, which both move to dev::test:vpc::hub")
  lu.assertEquals(state().resources, before.resources)
end

-- Inside a component, fo.moved's names are the component's own, as depends_on's are.
function TestStateCmd:test_fo_moved_inside_a_component_names_its_own_resources()
  local function body(name, moved)
    return ([[
local net = fo.component("net", function(c)
  fo.resource("test:vpc", %q, { cidr = "10.0.0.0/16" })
  %s
end)
net("blue")
]]):format(name, moved or "")
  end
  local path = recipe(body("main"))
  lu.assertEquals(fo_run({ path }).code, 0)
  local id = state().resources["dev::test:vpc::blue/main"].id
  recipe(body("core", 'fo.moved{ from = "main", to = "core" }'))
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Moved dev::test:vpc::blue/main to dev::test:vpc::blue/core")
  lu.assertEquals(state().resources["dev::test:vpc::blue/core"].id, id)
  lu.assertNil(state().resources["dev::test:vpc::blue/main"])
end

function TestStateCmd:test_pull_and_push_refuse_another_stack_or_a_stale_backup()
  local path = applied()
  local backup = dir .. "/backup.json"
  local r = fo_run({ "state", "pull", backup })
  lu.assertEquals(r.code, 0, r.stderr)
  local pulled = json.decode(testlib.read(backup))
  lu.assertEquals(pulled.resources, state().resources)
  lu.assertNotStrContains(testlib.read(backup), CANARY) -- secrets stay sealed
  lu.assertEquals(fo_run({ "state", "pull", backup }).code, 2) -- not overwritten
  r = fo_run({ "state", "pull" })
  lu.assertEquals(json.decode(r.stdout).serial, pulled.serial)
  -- the state moves on: the backup is stale
  lu.assertEquals(fo_run({ "state", "rm", "t" }).code, 0)
  local now = testlib.read(dir .. "/.fo/dev.state.json")
  r = fo_run({ "state", "push", backup })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, ("its serial %d is lower than the stack's %d"):format(
    pulled.serial, pulled.serial + 1))
  lu.assertEquals(testlib.read(dir .. "/.fo/dev.state.json"), now)
  -- another stack's state
  lu.assertEquals(fo_run({ "--stack", "other", path }).code, 0)
  local other = dir .. "/other.json"
  lu.assertEquals(fo_run({ "state", "pull", "--stack", "other", other }).code, 0)
  r = fo_run({ "state", "push", other })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "it is the state of stack other, not dev")
  -- damaged files: checked in full before anything is written
  local bad = json.decode(testlib.read(backup))
  bad.resources["dev::test:vpc::main"].id = nil
  testlib.write(dir .. "/bad.json", json.encode(bad))
  r = fo_run({ "state", "push", dir .. "/bad.json", "--force" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "bad.json is not a usable fo state: resources.dev::test:vpc::main.id must be a string")
  testlib.write(dir .. "/bad.json", testlib.read(backup):sub(1, 200))
  lu.assertEquals(fo_run({ "state", "push", dir .. "/bad.json", "--force" }).code, 2)
  bad = json.decode(testlib.read(backup))
  local sealed = bad.resources["dev::test:topic::t"].inputs.display_name
  sealed["fo:secret"] = sealed["fo:secret"]:sub(1, -5) .. "AAAA"
  testlib.write(dir .. "/bad.json", json.encode(bad))
  r = fo_run({ "state", "push", dir .. "/bad.json", "--force" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "a secret value in it does not open with the key of stack dev")
  lu.assertEquals(testlib.read(dir .. "/.fo/dev.state.json"), now)
  -- --force pushes the stale backup: the topic is back, the serial still goes up
  r = fo_run({ "state", "push", backup, "--force", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertTrue(json_events.last(events(r), "state").forced)
  local st = state()
  lu.assertEquals(st.resources, pulled.resources)
  lu.assertEquals(st.serial, pulled.serial + 2)
  -- a restore into a stack whose state is gone; the apply then finds nothing to do
  for _, f in ipairs({ "dev.state.json", "dev.state.log", "dev.state.json.bak" }) do
    os.remove(dir .. "/.fo/" .. f)
  end
  lu.assertEquals(fo_run({ "state", "push", backup }).code, 0)
  r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json_events.last(events(r), "summary").calls.mutating, 0)
end

function TestStateCmd:test_outputs_hide_secrets_unless_asked()
  applied()
  local vpc = state().resources["dev::test:vpc::main"].id
  local r = fo_run({ "outputs" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, ('token = [secret]\nvpc = "%s"\n'):format(vpc))
  r = fo_run({ "outputs", "vpc" })
  lu.assertEquals(r.stdout, vpc .. "\n")
  r = fo_run({ "outputs", "token" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "output token of stack dev is secret: add --show-secrets")
  lu.assertNotStrContains(r.stdout .. r.stderr, CANARY)
  r = fo_run({ "outputs", "--json" })
  lu.assertEquals(json_events.last(events(r), "outputs").outputs, { token = "[secret]", vpc = vpc })
  lu.assertNotStrContains(r.stdout, CANARY)
  r = fo_run({ "outputs", "token", "--show-secrets" })
  lu.assertEquals({ r.code, r.stdout }, { 0, CANARY .. "\n" }, r.stderr)
  r = fo_run({ "outputs", "--show-secrets", "--json" })
  lu.assertEquals(json_events.last(events(r), "outputs").outputs.token, CANARY)
  r = fo_run({ "outputs", "vcp" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "stack dev has no output vcp (did you mean 'vpc'?)")
end

-- A holder of the stack's lock (another process), until released.
local function hold_lock()
  local holder = testlib.tmpdir()
  local script = holder .. "/hold.lua"
  testlib.write(script, ([[
    local l = assert(fo.fs.lock(%q, "fo-run --plan other.lua"))
    local f = io.open(%q, "w") f:write("locked") f:close()
    local deadline = fo.now() + 900 -- (a stray holder ends; the test releases it long before)
    while not io.open(%q) and fo.now() < deadline do fo.sleep(0.02) end
  ]]):format(dir .. "/.fo/dev.lock", holder .. "/ready", holder .. "/release"))
  -- (run_fo kills a child after 60 s by default: under load that could end the hold early)
  local t = fo.spawn(testlib.run_fo, { script }, { timeout = 900 })
  while not testlib.read(holder .. "/ready") do fo.sleep(0.02) end
  return function()
    testlib.write(holder .. "/release", "")
    t:join()
    testlib.rmtree(holder)
  end
end

function TestStateCmd:test_a_locked_stack_refuses_every_state_command()
  applied()
  local before = testlib.read(dir .. "/.fo/dev.state.json")
  testlib.write(dir .. "/b.json", before)
  local release = hold_lock()
  for _, args in ipairs({ { "list" }, { "show", "main" }, { "rm", "t" }, { "mv", "main", "x" },
      { "pull", dir .. "/p.json" }, { "push", dir .. "/b.json" } }) do
    table.insert(args, 1, "state")
    local r = fo_run(args)
    lu.assertEquals(r.code, 5, table.concat(args, " ") .. ": " .. r.stderr)
    lu.assertStrContains(r.stderr, "stack dev is locked by pid")
  end
  -- outputs reads the last recorded state without the lock
  lu.assertEquals(fo_run({ "outputs", "vpc" }).code, 0)
  -- a command waits for the lock with --lock-timeout, then goes on
  -- (it says it waited, below: so it met the lock, whenever it started; meanwhile it
  -- changes nothing)
  local t = fo.spawn(fo_run, { "state", "rm", "t", "--lock-timeout", "60s" })
  local deadline = fo.now() + 5
  while fo.now() < deadline and not t.done and testlib.read(dir .. "/.fo/dev.state.json") == before do
    fo.sleep(0.05)
  end
  lu.assertEquals(testlib.read(dir .. "/.fo/dev.state.json"), before) -- still waiting
  release()
  local r = t:join()
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "waiting up to 60s")
  lu.assertNil(state().resources["dev::test:topic::t"])
end

-- In this process: the lock is held at every write of a command's store.
function TestStateCmd:test_the_lock_is_held_while_a_command_writes()
  applied()
  local state_mod = require "fo.engine.state"
  local store = state_mod.store
  local checks = {}
  state_mod.store = function(...)
    local s = store(...)
    local write = s._write
    s._write = function(self)
      local lk = fo.fs.lock(dir .. "/.fo/dev.lock", "probe")
      checks[#checks + 1] = lk == nil
      if lk then lk:unlock() end
      return write(self)
    end
    return s
  end
  local commands = require "fo.engine.commands"
  local ok, code = pcall(function()
    local report = require("fo.engine.report").new{ out = function() end, err = function() end }
    local name, opts, args = commands.parse({ { "--state-dir", dir .. "/.fo" } },
      { "state", "mv", "main", "core" })
    return commands.run(name, opts, args, report)
  end)
  state_mod.store = store
  lu.assertTrue(ok, tostring(code))
  lu.assertEquals(code, 0)
  lu.assertTrue(#checks >= 1)
  for _, held in ipairs(checks) do lu.assertTrue(held) end
  -- and released after
  local lk = assert(fo.fs.lock(dir .. "/.fo/dev.lock", "probe"))
  lk:unlock()
  lu.assertNotNil(state().resources["dev::test:vpc::core"])
end

-- In this process: a command that dies at any of its state writes (before it, after it, or
-- in the middle of an append: a torn line) leaves the state as it was or as it asked —
-- never a mix, never unreadable. (An error raised there stands for the death: what is on
-- disk is what a killed process leaves.)
function TestStateCmd:test_a_command_stopped_at_any_state_write_leaves_the_old_or_the_new_state()
  applied()
  local fodir = dir .. "/.fo"
  testlib.write(dir .. "/b.json", testlib.read(fodir .. "/dev.state.json"))
  lu.assertEquals(fo_run({ "state", "rm", "t" }).code, 0) -- the backup is one change behind
  local saved = {}
  for _, f in ipairs({ "dev.state.json", "dev.state.log", "dev.state.json.bak" }) do
    saved[f] = testlib.read(fodir .. "/" .. f)
  end
  local function restore()
    for f, text in pairs(saved) do testlib.write(fodir .. "/" .. f, text) end
  end
  local state_mod = require "fo.engine.state"
  local function resources()
    return (state_mod.read(fodir .. "/dev.state.json")).resources
  end
  local commands = require "fo.engine.commands"
  local fs = fo.fs
  local write_atomic, append = fs.write_atomic, fs.append
  local count, stop_at, how
  local function stop(k, path)
    if k == stop_at and path:match("%.state%.") then error("stopped at write " .. k, 0) end
  end
  fs.write_atomic = function(path, ...)
    if not path:match("%.state%.json$") and not path:match("%.state%.log$") then
      return write_atomic(path, ...)
    end
    count = count + 1
    if how == "before" then stop(count, path) end
    local r = write_atomic(path, ...)
    if how == "after" then stop(count, path) end
    return r
  end
  fs.append = function(path, data, mode)
    count = count + 1
    if how == "before" then stop(count, path) end
    if how == "torn" and count == stop_at then
      append(path, data:sub(1, #data * 2 // 3), mode)
      stop(count, path)
    end
    local r = append(path, data, mode)
    if how == "after" then stop(count, path) end
    return r
  end
  local ok, err = pcall(function()
    for _, cmd in ipairs({ { "state", "mv", "main", "core" }, { "state", "push", dir .. "/b.json", "--force" } }) do
      local pairs_, words = { { "--state-dir", fodir } }, {}
      for _, w in ipairs(cmd) do
        if w:match("^%-%-") then pairs_[#pairs_ + 1] = { w } else words[#words + 1] = w end
      end
      local function run()
        local report = require("fo.engine.report").new{ out = function() end, err = function() end }
        local name, opts, args = commands.parse(pairs_, words)
        return commands.run(name, opts, args, report)
      end
      restore()
      local old = resources()
      count, stop_at, how = 0, nil, nil
      lu.assertEquals(run(), 0)
      local new, writes = resources(), count
      lu.assertNotEquals(new, old)
      lu.assertTrue(writes >= 2, table.concat(cmd, " "))
      for k = 1, writes do
        for _, h in ipairs({ "before", "after", "torn" }) do
          restore()
          count, stop_at, how = 0, k, h
          local code = run()
          local got = resources()
          local what = ("%s, stopped %s write %d: exit %d"):format(table.concat(cmd, " "), h, k, code)
          lu.assertTrue(code == 0 or code == 1, what)
          lu.assertTrue(require("fo.engine.diff").equal(got, old) or
            require("fo.engine.diff").equal(got, new), what)
        end
      end
    end
  end)
  fs.write_atomic, fs.append = write_atomic, append
  if not ok then error(err, 0) end
end

-- --target aws on a served simulator, the state in its S3 (the S3 backend).
function TestStateCmd:test_commands_on_an_aws_stack_with_the_s3_backend()
  local sim = fo.sim.new{ seed = 5 }
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local s3 = sim:client("s3", { region = "us-east-1" })
  s3:CreateBucket{ Bucket = "fo-state" }
  s3:PutBucketVersioning{ Bucket = "fo-state", VersioningConfiguration = { Status = "Enabled" } }
  s3:PutBucketEncryption{ Bucket = "fo-state", ServerSideEncryptionConfiguration = { Rules = {
    { ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "aws:kms" } } } } }
  s3:PutPublicAccessBlock{ Bucket = "fo-state", PublicAccessBlockConfiguration = {
    BlockPublicAcls = true, IgnorePublicAcls = true, BlockPublicPolicy = true,
    RestrictPublicBuckets = true } }
  local env = testlib.served_sim_env(srv.port, "us-east-1", dir,
    { FO_CONFIG_PASSPHRASE = "correct horse battery staple" })
  local B = { "--stack", "prod", "--backend", "s3://fo-state/team" }
  local function run(args)
    local a = {}
    for _, x in ipairs(args) do a[#a + 1] = x end
    for _, x in ipairs(B) do a[#a + 1] = x end
    return fo.spawn(fo_run, a, env):join()
  end
  local path = recipe(network("main"))
  local r = run({ "--target", "aws", "--yes", path })
  lu.assertEquals(r.code, 0, r.stderr)
  r = run({ "state", "list" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "prod::test:vpc::main")
  r = run({ "state", "mv", "main", "core", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json_events.last(events(r), "summary").state_file,
    "s3://fo-state/team/prod/state.json")
  r = run({ "outputs", "token" })
  lu.assertEquals(r.code, 2)
  r = run({ "outputs", "token", "--show-secrets" })
  lu.assertEquals(r.stdout, CANARY .. "\n", r.stderr)
  r = run({ "state", "pull", dir .. "/prod.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json.decode(testlib.read(dir .. "/prod.json")).target, "aws")
  -- the renamed VPC, moved back by the recipe: no cloud call that changes anything
  recipe(network("main", 'fo.moved{ from = "core", to = "main" }'))
  r = run({ "--yes", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertNotNil(json_events.last(ev, "moved"))
  lu.assertEquals(json_events.last(ev, "summary").done,
    { create = 0, update = 0, replace = 0, delete = 0, rollback = 0 })
  -- the pulled backup is now stale
  r = run({ "state", "push", dir .. "/prod.json" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "is lower than the stack's")
  srv:close()
end

os.exit(lu.LuaUnit.run())
