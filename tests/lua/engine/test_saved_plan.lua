-- Saved plans, as a user runs them (fo-run child processes on the simulator's file, and one
-- stack through --target aws on a served simulator): `--plan --out FILE` then `fo-run apply
-- FILE` ends as a direct apply does; the apply refuses, naming what changed and changing
-- nothing, when the state, the recipe (or a module of the project it loads), the config or
-- the cloud moved since, when the file was edited, or for another stack; secret values are
-- in the file only sealed; the --json events follow the schema.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"

local dir
TestSavedPlan = {}
H.fixture(TestSavedPlan, function(f) dir = f.dir end)

-- The recipe's project modules are found in its folder (package.path), as a project's own
-- Lua modules would be.
local function prelude(d)
  return ("package.path = %q .. '/lua/?.lua;' .. %q .. '/?.lua;' .. package.path\n"
    .. "require 'support.engine_types'\n"):format(testlib.tests_dir, d)
end

local CANARY = "Canary-5d1c-secret"      -- a secret config value's default
local GIVEN = "Given-93ab-on-the-command" -- a secret value given with --config at plan time

local function network(suffix)
  return ([[
local names = require "netnames"
local c = fo.config{ token = { type = "string", secret = true, default = %q },
  size = { type = "string", default = "small" } }
local vpc = fo.resource("test:vpc", names.vpc, { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
fo.resource("test:topic", "t", { name = "t-" .. c.size .. %q,
  display_name = fo.format("token %%s", c.token) })
fo.output("vpc", vpc.id)
]]):format(CANARY, suffix or "")
end

local function recipe(d, body, module)
  testlib.write(d .. "/netnames.lua", module or 'return { vpc = "main" }\n')
  testlib.write(d .. "/net.lua", prelude(d) .. body)
  return d .. "/net.lua"
end

local function fo_run(args, env, d) return testlib.run_fo_in(d or dir, args, env) end

local function events(r) return json_events.checked(r.stdout) end

local function state(d)
  return json.decode(testlib.read((d or dir) .. "/.fo/dev.state.json"))
end

local function sim_text()
  return testlib.sim_text(dir .. "/.fo")
end

-- A stack applied once, then a plan that updates it saved to dir/plan.json.
local function planned(extra)
  local path = recipe(dir, network())
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  testlib.write(dir .. "/net.lua", prelude(dir) .. network("-v2"))
  local args = { path, "--plan", "--out", dir .. "/plan.json" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  r = fo_run(args)
  lu.assertEquals(r.code, 0, r.stderr)
  return path, r
end

-- A refused apply: exit 1 (or `code`), the stderr naming `what`, no cloud call that
-- changes anything and no state write.
local function refused(what, code)
  local sim, serial = sim_text(), state().serial
  local r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, code or 1, r.stderr)
  for _, text in ipairs(type(what) == "table" and what or { what }) do
    lu.assertStrContains(r.stderr, text)
  end
  lu.assertNotStrContains(r.stderr, "traceback")
  lu.assertEquals(sim_text(), sim)
  lu.assertEquals(state().serial, serial)
  return r
end

function TestSavedPlan:test_a_saved_plan_applies_as_a_direct_apply_does()
  -- the same history on two stacks: one applies through a saved plan, the other directly
  local other = testlib.tmpdir()
  local direct = recipe(other, network())
  lu.assertEquals(fo_run({ direct }, nil, other).code, 0)
  testlib.write(other .. "/net.lua", prelude(other) .. network("-v2"))
  local _, plan_run = planned({ "--json" })
  local saved_ev = json_events.last(events(plan_run), "saved_plan")
  lu.assertEquals(saved_ev.step, "written")
  lu.assertEquals(saved_ev.serial, state().serial)
  local r = fo_run({ "apply", dir .. "/plan.json", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertEquals(json_events.last(ev, "saved_plan").step, "verified")
  lu.assertEquals(json_events.last(ev, "saved_plan").digest, saved_ev.digest)
  -- the plan applied is the one saved, step for step
  lu.assertEquals(json_events.last(ev, "plan").steps, json_events.last(events(plan_run), "plan").steps)
  local d = fo_run({ direct, "--json" }, nil, other)
  lu.assertEquals(d.code, 0, d.stderr)
  lu.assertEquals(json_events.last(ev, "summary").done, json_events.last(events(d), "summary").done)
  lu.assertEquals(json_events.last(ev, "summary").done.replace, 1)
  -- both stacks hold the same resources with the same properties (ids aside)
  local a, b = state(), state(other)
  local function shape(doc)
    local out = {}
    for urn, rec in pairs(doc.resources) do
      out[urn] = { type = rec.type, region = rec.region, name = rec.inputs.name,
        cidr = rec.inputs.cidr }
    end
    return out
  end
  lu.assertEquals(shape(a), shape(b))
  lu.assertEquals(a.resources["dev::test:topic::t"].inputs.name, "t-small-v2")
  -- and the stack now matches the recipe
  r = fo_run({ dir .. "/net.lua", "--plan" })
  lu.assertStrContains(r.stdout, "No changes.")
  -- a plan is applied once: the apply wrote the state, so the same file is stale now
  refused("the state of stack dev changed")
  testlib.rmtree(other)
end

-- A targeted plan (--only) keeps its selection: the apply changes the selection only.
function TestSavedPlan:test_a_targeted_saved_plan_applies_its_selection_only()
  local path = recipe(dir, network())
  lu.assertEquals(fo_run({ path }).code, 0)
  -- the topic's name and a new subnet change; the plan targets the subnet only
  testlib.write(dir .. "/net.lua", prelude(dir) .. network("-v2")
    .. 'fo.resource("test:subnet", "b", { vpc_id = vpc.id, cidr = "10.0.2.0/24" })\n')
  local r = fo_run({ path, "--plan", "--only", "test:subnet::b", "--out", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = state()
  lu.assertNotNil(st.resources["dev::test:subnet::b"])
  lu.assertEquals(st.resources["dev::test:topic::t"].inputs.name, "t-small")
end

function TestSavedPlan:test_refused_when_another_run_wrote_the_state_since()
  local path = planned()
  -- another apply in between (with other config: it changes the topic)
  local r = fo_run({ path, "--config", "size=large" })
  lu.assertEquals(r.code, 0, r.stderr)
  local serial = state().serial
  r = refused({ ("its serial is %d, the plan was made at serial %d"):format(serial, serial - 1),
    "Make a new plan" })
  -- a state command writes the state too
  r = fo_run({ path, "--plan", "--out", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  r = fo_run({ "state", "mv", "main", "core" })
  lu.assertEquals(r.code, 0, r.stderr)
  refused("the state of stack dev changed")
end

function TestSavedPlan:test_refused_when_the_recipe_or_a_module_it_loads_changed()
  planned()
  local text = testlib.read(dir .. "/net.lua")
  testlib.write(dir .. "/net.lua", text .. "-- an edit\n")
  refused("recipe file net.lua changed since the plan")
  testlib.write(dir .. "/net.lua", text)
  -- a Lua module of the project the recipe loads is part of it
  testlib.write(dir .. "/netnames.lua", 'return { vpc = "main" } -- edited\n')
  local r = refused("recipe file netnames.lua changed since the plan")
  lu.assertNotStrContains(r.stderr, "net.lua changed")
  -- as they were: the plan applies
  testlib.write(dir .. "/netnames.lua", 'return { vpc = "main" }\n')
  r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
end

function TestSavedPlan:test_refused_when_the_config_changed_naming_each_thing()
  planned()
  testlib.write(dir .. "/.fo/dev.config.json", json.encode({ size = "large", token = "other" }))
  -- the recipe changed too: both named in one refusal; the secret's values never shown
  testlib.write(dir .. "/net.lua", testlib.read(dir .. "/net.lua") .. "\n")
  local r = refused({ "config size changed", "config token changed", "recipe file net.lua" })
  lu.assertNotStrContains(r.stderr, "other")
  lu.assertNotStrContains(r.stderr, CANARY)
  r = fo_run({ "apply", dir .. "/plan.json", "--json" })
  local ev = events(r)
  local e = json_events.last(ev, "saved_plan")
  lu.assertEquals(e.step, "refused")
  local what = {}
  for _, p in ipairs(e.problems) do what[#what + 1] = p.what end
  lu.assertEquals(what, { "recipe", "config", "config" })
  lu.assertEquals(json_events.last(ev, "summary").exit_code, 1)
  lu.assertEquals(json_events.last(ev, "error").error.kind, "stale_plan")
end

function TestSavedPlan:test_refused_when_the_cloud_drifted_since_the_plan()
  planned()
  local st = state()
  local arn = st.resources["dev::test:topic::t"].id
  local sim = fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }
  sim:client("sns", { region = H.REGION }):SetTopicAttributes{ TopicArn = arn,
    AttributeName = "DisplayName", AttributeValue = "changed by hand" }
  sim:save()
  refused("dev::test:topic::t changed in the cloud since the plan")
  -- a plan that saw the drift applies (and brings the topic back)
  local r = fo_run({ dir .. "/net.lua", "--plan", "--out", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Apply complete")
end

function TestSavedPlan:test_a_tampered_file_or_another_stack_is_refused()
  planned()
  local text = testlib.read(dir .. "/plan.json")
  local doc = json.decode(text)
  -- an operation changed by hand: the digest no longer matches
  for _, s in ipairs(doc.steps) do
    if s.action == "replace" then s.action = "delete" end
  end
  testlib.write(dir .. "/plan.json", json.encode(doc))
  refused("its content does not match its digest: it was changed after fo wrote it", 2)
  -- not a plan at all
  testlib.write(dir .. "/plan.json", "{}")
  refused("its format is nil, not fo-plan", 2)
  -- a plan made by another version of fo (or with other AWS models), its digest right
  for _, k in ipairs({ "fo", "models" }) do
    local d = json.decode(text)
    d.versions[k] = "0.0.1"
    d.digest = require("fo.engine.saved_plan").digest(d)
    testlib.write(dir .. "/plan.json", json.encode(d))
    refused(k == "fo" and "fo's version changed: " .. require("fo").version
      .. ", the plan was made with 0.0.1" or "the AWS models changed")
  end
  testlib.write(dir .. "/plan.json", text)
  -- another stack named on the command line
  local r = fo_run({ "apply", dir .. "/plan.json", "--stack", "prod" })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "the plan " .. dir .. "/plan.json is for stack dev, not prod")
  -- another stack of the same name (another checkout's .fo): its state is not the plan's
  local other = testlib.tmpdir()
  local path = recipe(other, network())
  lu.assertEquals(fo_run({ path }, nil, other).code, 0)
  lu.assertEquals(fo_run({ path }, nil, other).code, 0)
  local serial = state(other).serial
  r = fo_run({ "apply", dir .. "/plan.json", "--state-dir", other .. "/.fo" })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stderr, "stack dev's secrets key is not the one the plan sealed")
  lu.assertEquals(state(other).serial, serial)
  testlib.rmtree(other)
  -- --out goes with --plan
  r = fo_run({ dir .. "/net.lua", "--out", dir .. "/x.json" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--out FILE saves a plan: it goes with --plan")
  -- no file
  r = fo_run({ "apply", dir .. "/none.json" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "cannot read the plan file")
end

function TestSavedPlan:test_a_stack_without_secrets_or_config()
  local path = dir .. "/plain.lua"
  testlib.write(path, prelude(dir) .. 'fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })\n')
  local r = fo_run({ path, "--plan", "--out", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  -- (--apply PLANFILE is the same command)
  r = fo_run({ "--apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Apply complete: 1 created")
  r = fo_run({ "--apply", dir .. "/plan.json", path })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--apply PLANFILE takes no FILE: the plan names its recipe")
  lu.assertNil(state().secrets)
end

function TestSavedPlan:test_the_apply_takes_the_stacks_lock()
  planned()
  local lk = assert(fo.fs.lock(dir .. "/.fo/dev.lock", "fo-run another run"))
  local r = refused("fo-run another run", 5)
  lk:unlock()
  r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
end

function TestSavedPlan:test_secrets_are_in_the_file_only_sealed()
  -- a new stack: its first plan saved to a file makes the stack's key (and records its
  -- scheme) to seal the secrets with
  local path = recipe(dir, network())
  local r = fo_run({ path, "--plan", "--out", dir .. "/plan.json", "--config", "token=" .. GIVEN,
    "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local text = testlib.read(dir .. "/plan.json")
  lu.assertNotStrContains(text, GIVEN)
  lu.assertNotStrContains(text, CANARY)
  lu.assertStrContains(text, '"fo:secret": "v1:')
  lu.assertNotStrContains(r.stdout .. r.stderr, GIVEN)
  lu.assertEquals(state().secrets.key, "file")
  -- the apply opens them: the topic gets the value given at plan time
  r = fo_run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertNotStrContains(r.stdout .. r.stderr, GIVEN)
  lu.assertStrContains(sim_text(), "token " .. GIVEN)
  lu.assertNotStrContains(testlib.read(dir .. "/.fo/dev.state.json"), GIVEN)
end

-- --target aws on a served simulator (the local backend).
function TestSavedPlan:test_through_target_aws_on_a_served_simulator()
  local sim = fo.sim.new{ seed = 5 }
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local env = testlib.served_sim_env(srv.port, "us-east-1", dir,
    { FO_CONFIG_PASSPHRASE = "correct horse battery staple" })
  local function run(args) return fo.spawn(fo_run, args, env):join() end
  local path = recipe(dir, network())
  local r = run({ "--target", "aws", path, "--plan", "--out", dir .. "/plan.json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(#sim:client("sns", { region = "us-east-1" }):ListTopics{}.Topics, 0)
  lu.assertEquals(json.decode(testlib.read(dir .. "/plan.json")).target, "aws")
  -- against AWS, an apply asks (or needs --yes): nothing is created without it
  r = run({ "apply", dir .. "/plan.json" })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "needs --yes")
  r = run({ "apply", dir .. "/plan.json", "--yes", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertEquals(json_events.last(ev, "summary").target, "aws")
  lu.assertEquals(json_events.last(ev, "summary").done.create, 3)
  lu.assertEquals(#sim:client("sns", { region = "us-east-1" }):ListTopics{}.Topics, 1)
  lu.assertNotStrContains(testlib.read(dir .. "/plan.json"), CANARY)
  -- a second apply of the same file: stale
  r = run({ "apply", dir .. "/plan.json", "--yes" })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stderr, "the state of stack dev changed")
  srv:close()
end

os.exit(lu.LuaUnit.run())
