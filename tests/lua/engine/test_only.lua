-- Targeted runs (--only PATTERN, docs/recipes.md "Targeted runs"): the selected resources
-- and what they depend on are read, planned and applied, nothing else; globs; a pattern
-- that matches nothing; --destroy --only (the selected and their dependents); a resource
-- removed from the recipe deleted by naming it; the rollback of a failed targeted run; the
-- lifecycle options; --json events; fo-run --only through --target aws on a served
-- simulator; the trading recipe (one subnet brings its VPC).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"
local types = require "support.engine_types"
local graph = require "support.engine_graph"
local json_events = require "support.json_events"
local only = require "fo.engine.only"

local sim, dir
TestOnly = {}
local run = H.fixture(TestOnly, function(f) sim, dir = f.sim, f.dir end).run

local function urn(s) return "dev::" .. s end

local function apply(recipe, opts)
  local code, doc, out, err = run(recipe, opts)
  lu.assertEquals(code, 0, out .. err)
  return doc, out, err
end

-- The URNs the state records, sorted.
local function recorded()
  local st = H.state(dir)
  local out = {}
  for u in pairs(st and st.resources or {}) do out[#out + 1] = u end
  table.sort(out)
  return out
end

-- The URNs of the plan's steps with `action`, sorted.
local function planned(doc, action)
  local out = {}
  for _, s in ipairs(doc.plan.steps) do
    if s.action == action then out[#out + 1] = s.urn end
  end
  table.sort(out)
  return out
end

local function urns(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = urn(s) end
  table.sort(out)
  return out
end

-- The URNs of graph version 1 (all 22) but those in `except`.
local function all_v1_but(except)
  local skip = {}
  for _, s in ipairs(except or {}) do skip[urn(s)] = true end
  local code, doc = run(graph.recipe(1), { mode = "plan", explicit = true,
    dir = dir .. "/scratch" })
  lu.assertEquals(code, 0)
  local out = {}
  for _, s in ipairs(doc.plan.steps) do
    if not skip[s.urn] then out[#out + 1] = s.urn end
  end
  table.sort(out)
  return out
end

-- Selection ------------------------------------------------------------------------------

function TestOnly:test_one_resource_brings_its_dependencies_and_nothing_else()
  local code, doc, out, err = run(graph.recipe(1), { only = { "test:subnet::a1" } })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(planned(doc, "create"), urns{ "test:subnet::a1", "test:vpc::main" })
  lu.assertEquals(doc.plan.counts.create, 2)
  lu.assertEquals(recorded(), urns{ "test:subnet::a1", "test:vpc::main" })
  lu.assertEquals(#H.inventory(sim), 2, table.concat(H.inventory(sim), ", "))
  lu.assertStrContains(err, "fo: warning: --only: this run plans and applies only "
    .. "test:subnet::a1 and what it depends on (1: test:vpc::main); the stack may now differ "
    .. "from the recipe")
  lu.assertStrContains(err, "run without --only to converge the whole stack")
  lu.assertEquals(doc.only.selected, urns{ "test:subnet::a1" })
  lu.assertEquals(doc.only.included, urns{ "test:vpc::main" })
  -- the output names the VPC, now recorded: it is set
  lu.assertEquals(H.state(dir).outputs.main, H.state(dir).resources[urn("test:vpc::main")].outputs.id)
  -- again: nothing to do, and only the selection is read
  sim.recorder:clear()
  code, doc, out = run(graph.recipe(1), { only = { "test:subnet::a1" } })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "No changes.")
  -- (the VPC and the subnet are EC2's; the identity check is STS's)
  local ops = H.ops(sim)
  lu.assertNotNil(H.index(ops, "ec2.DescribeSubnets"))
  for _, op in ipairs(ops) do
    lu.assertTrue(op:match("^ec2%.Describe") ~= nil or op == "sts.GetCallerIdentity", op)
  end
  -- a run without --only converges the rest
  doc = apply(graph.recipe(1))
  lu.assertEquals(doc.plan.counts.create, 20)
  lu.assertEquals(recorded(), all_v1_but())
end

function TestOnly:test_refresh_only_reads_and_records_the_selection()
  apply(graph.recipe(1))
  -- both topics changed outside fo
  sim:invoke("sns", H.REGION, "SetTopicAttributes", { TopicArn = H.state(dir).resources[
    urn("test:topic::alerts")].outputs.arn, AttributeName = "DisplayName", AttributeValue = "x" })
  sim:invoke("sns", H.REGION, "SetTopicAttributes", { TopicArn = H.state(dir).resources[
    urn("test:topic::legacy")].outputs.arn, AttributeName = "DisplayName", AttributeValue = "y" })
  sim.recorder:clear()
  local code, doc, out, err = run(graph.recipe(1), { mode = "refresh", explicit = true,
    only = { "test:topic::alerts" } })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(err, "--only: this run reads only test:topic::alerts")
  lu.assertEquals(#doc.drift, 1)
  lu.assertEquals(doc.drift[1].urn, urn("test:topic::alerts"))
  for _, op in ipairs(H.ops(sim)) do
    lu.assertTrue(op:match("^sns%.") ~= nil or op == "sts.GetCallerIdentity", op)
  end
  lu.assertEquals(H.state(dir).resources[urn("test:topic::legacy")].inputs.display_name, "")
end

function TestOnly:test_a_targeted_update_leaves_the_other_changes_of_the_recipe_alone()
  apply(graph.recipe(1))
  local before = H.state(dir)
  sim.recorder:clear()
  -- version 2 changes 17 resources; the topic alerts alone is selected (a display name)
  local doc = apply(graph.recipe(2), { only = { "test:topic::alerts" } })
  lu.assertEquals(planned(doc, "update"), urns{ "test:topic::alerts" })
  lu.assertEquals(doc.plan.counts, { create = 0, update = 1, replace = 0, delete = 0, noop = 0 })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.SetTopicAttributes" })
  local after = H.state(dir)
  for u, rec in pairs(before.resources) do
    if u ~= urn("test:topic::alerts") then
      lu.assertEquals(after.resources[u].inputs, rec.inputs, u)
    end
  end
  lu.assertEquals(after.resources[urn("test:topic::alerts")].inputs.display_name, "Alarms")
  -- the removed resources are still recorded, the new ones not made
  lu.assertNotNil(after.resources[urn("test:topic::legacy")])
  lu.assertNil(after.resources[urn("test:topic::orders")])
  lu.assertEquals(after.outputs, before.outputs)
end

function TestOnly:test_globs_select_by_urn_type_name_or_name()
  local function selected(patterns)
    local code, doc, out, err = run(graph.recipe(1), { mode = "plan", explicit = true,
      only = patterns })
    lu.assertEquals(code, 0, out .. err)
    return doc.only.selected, planned(doc, "create")
  end
  local sel, creates = selected{ "test:subnet::a*" }
  lu.assertEquals(sel, urns{ "test:subnet::a1", "test:subnet::a2", "test:subnet::a3",
    "test:subnet::a4" })
  lu.assertEquals(creates, urns{ "test:subnet::a1", "test:subnet::a2", "test:subnet::a3",
    "test:subnet::a4", "test:vpc::main" })
  lu.assertEquals(selected{ "test:subnet::?1" }, urns{ "test:subnet::a1", "test:subnet::e1" })
  -- repeated, by name, by URN, overlapping
  lu.assertEquals(selected{ "e1", "dev::test:zone::public", "test:subnet::e*" },
    urns{ "test:subnet::e1", "test:subnet::e2", "test:zone::public" })
  lu.assertEquals(#selected{ "**" }, 22)
  -- '*' stops at '/', '**' does not
  local slashed = function()
    local v = fo.resource("test:vpc", "primary/vpc", { cidr = "10.0.0.0/16" })
    fo.resource("test:subnet", "primary/a", { vpc_id = v.id, cidr = "10.0.1.0/24" })
    fo.resource("test:topic", "standby/alerts/sns", { name = "alerts" })
  end
  local code, doc = run(slashed, { mode = "plan", explicit = true, only = { "primary/*" } })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.only.selected, urns{ "test:subnet::primary/a", "test:vpc::primary/vpc" })
  code, doc = run(slashed, { mode = "plan", explicit = true, only = { "standby/**" } })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.only.selected, urns{ "test:topic::standby/alerts/sns" })
  local out, err
  code, _, out, err = run(slashed, { mode = "plan", explicit = true, only = { "standby/*" } })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "--only standby/* matches no resource of stack dev")
end

function TestOnly:test_glob_patterns()
  lu.assertEquals(only.pattern("a*b"), "^a[^/]*b$")
  lu.assertEquals(only.pattern("x/**"), "^x%/.*$")
  lu.assertEquals(only.pattern("t:x::a?.b"), "^t%:x%:%:a[^/]%.b$")
  lu.assertNotNil(("test:subnet::a1"):match(only.pattern("test:sub*::a?")))
  lu.assertNil(("primary/a/b"):match(only.pattern("primary/*")))
  lu.assertNotNil(("primary/a/b"):match(only.pattern("primary/**")))
  lu.assertNil(("a%b"):match(only.pattern("a.b")), "'.' is no wildcard")
end

function TestOnly:test_a_pattern_that_matches_nothing_is_a_usage_error_naming_close_ones()
  apply(graph.recipe(1), { only = { "test:topic::alerts" } })
  local _, state_text = H.state(dir)
  local n = H.mutating(sim)
  local code, _, out, err = run(graph.recipe(1), { only = { "test:topic::alerts", "test:subnet::a9" } })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "--only test:subnet::a9 matches no resource of stack dev (did you "
    .. "mean test:subnet::a1 or test:subnet::a2 or test:subnet::a3?); nothing was changed")
  lu.assertNotStrContains(err, "traceback")
  code, _, out, err = run(graph.recipe(1), { only = { "zzz*" } })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "--only zzz* matches no resource of stack dev; nothing was changed")
  -- a name several types share: which one is meant
  local shared = function()
    local v = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:security_group", "main", { vpc_id = v.id, name = "main" })
  end
  code, _, out, err = run(shared, { only = { "main" } })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "--only main names 2 resources of stack dev "
    .. "(test:security_group::main, test:vpc::main): give type::name")
  lu.assertEquals(H.mutating(sim), n, "no mutating call")
  lu.assertEquals(select(2, H.state(dir)), state_text, "the state is as it was")
end

-- Destroy and deletions ----------------------------------------------------------------

function TestOnly:test_destroy_only_deletes_the_selection_and_what_depends_on_it()
  apply(graph.recipe(1))
  local n_before = #H.inventory(sim)
  local code, doc, out, err = run(graph.recipe(1), { mode = "destroy", explicit = true,
    only = { "test:subnet::a1" } })
  lu.assertEquals(code, 0, out .. err)
  -- the group db waits for a1 (depends_on): it goes first
  lu.assertEquals(planned(doc, "delete"), urns{ "test:security_group::db", "test:subnet::a1" })
  lu.assertEquals(doc.only.direction, "dependents")
  lu.assertEquals(doc.only.included, urns{ "test:security_group::db" })
  lu.assertStrContains(err, "--only: this run destroys only test:subnet::a1 and what depends "
    .. "on it (1: test:security_group::db)")
  lu.assertStrContains(out, "Destroy complete: 2 deleted.")
  lu.assertEquals(recorded(), all_v1_but{ "test:subnet::a1", "test:security_group::db" })
  lu.assertEquals(#H.inventory(sim), n_before - 2)
  lu.assertNotNil(H.state(dir).outputs.main, "outputs are kept")
  -- a VPC takes everything in it and what names it
  code, doc = run(graph.recipe(1), { mode = "destroy", explicit = true, only = { "test:vpc::edge" } })
  lu.assertEquals(code, 0)
  lu.assertEquals(planned(doc, "delete"), urns{ "test:role::app", "test:security_group::edge",
    "test:subnet::e1", "test:subnet::e2", "test:topic::events", "test:vpc::edge" })
  -- the apply brings them back
  doc = apply(graph.recipe(1))
  lu.assertEquals(doc.plan.counts.create, 8)
end

function TestOnly:test_a_resource_removed_from_the_recipe_is_deleted_by_naming_it()
  apply(graph.recipe(1))
  sim.recorder:clear()
  -- version 2 drops the topic legacy, the VPC spare and its subnet sp1 (and changes 17 more)
  local doc = apply(graph.recipe(2), { only = { "test:topic::legacy" } })
  lu.assertEquals(planned(doc, "delete"), urns{ "test:topic::legacy" })
  lu.assertEquals(doc.plan.counts, { create = 0, update = 0, replace = 0, delete = 1, noop = 0 })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.DeleteTopic" })
  -- naming the VPC deletes the subnet in it too (it cannot outlive it)
  doc = apply(graph.recipe(2), { only = { "test:vpc::spare" } })
  lu.assertEquals(planned(doc, "delete"), urns{ "test:subnet::sp1", "test:vpc::spare" })
  lu.assertEquals(doc.only.included, urns{ "test:subnet::sp1" })
  lu.assertEquals(recorded(), all_v1_but{ "test:topic::legacy", "test:vpc::spare",
    "test:subnet::sp1" })
  -- nothing else of version 2 happened
  lu.assertEquals(H.state(dir).resources[urn("test:topic::events")].inputs.name, "events")
end

function TestOnly:test_a_replacement_whose_users_are_not_selected_is_refused()
  apply(graph.recipe(1))
  local n, text = H.mutating(sim), select(2, H.state(dir))
  -- version 2 replaces a3 (its CIDR); the group db waits for it and is not selected
  local code, _, out, err = run(graph.recipe(2), { only = { "test:subnet::a3" } })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "refusing the targeted run: nothing was changed.\n  "
    .. "dev::test:subnet::a3 would be replaced, but dev::test:security_group::db, not "
    .. "selected, uses it: select it too (--only), or run without --only")
  lu.assertEquals(H.mutating(sim), n)
  lu.assertEquals(select(2, H.state(dir)), text)
  -- selected with it, the replacement goes through (db is updated in place: nothing)
  local doc = apply(graph.recipe(2), { only = { "test:subnet::a3", "test:security_group::db" } })
  lu.assertEquals(planned(doc, "replace"), urns{ "test:subnet::a3" })
end

-- Rollback, lifecycle ------------------------------------------------------------------

function TestOnly:test_a_failed_targeted_run_rolls_back_only_what_it_did()
  apply(graph.recipe(1))
  local inventory, st = H.inventory(sim), H.state(dir)
  sim.recorder:clear()
  -- version 2 adds the topic orders and the role orders naming it: the role's create fails
  types.fail_mutating_call(sim, 2)
  local code, doc, out, err = run(graph.recipe(2), { only = { "test:role::orders" } })
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(planned(doc, "create"), urns{ "test:role::orders", "test:topic::orders" })
  lu.assertStrContains(err, "FoInjectedFault")
  lu.assertStrContains(out, "rolled back: the stack is as it was before this run")
  -- the topic it made is gone; nothing else was touched, then or in the rollback
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.CreateTopic", "iam.CreateRole",
    "sns.DeleteTopic" })
  lu.assertEquals(H.inventory(sim), inventory)
  local now = H.state(dir)
  lu.assertEquals(now.resources, st.resources)
  lu.assertEquals(now.outputs, st.outputs)
end

function TestOnly:test_lifecycle_options_hold_for_the_selection_only()
  local function stack(o)
    return function()
      local v = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" }, { protect = true })
      fo.resource("test:subnet", "a", { vpc_id = v.id, cidr = "10.0.1.0/24" })
      if o.with_topic ~= false then
        fo.resource("test:topic", "t", { name = "t" }, { protect = true })
      end
      fo.resource("test:topic", "u", { name = o.u or "u" })
    end
  end
  apply(stack{})
  -- the protected topic t, removed, is not selected: untouched, no refusal
  local doc = apply(stack{ with_topic = false, u = "u2" }, { only = { "test:topic::u" } })
  lu.assertEquals(planned(doc, "replace"), urns{ "test:topic::u" })
  lu.assertNotNil(H.state(dir).resources[urn("test:topic::t")])
  -- selected, its protection refuses the deletion
  local code, _, out, err = run(stack{ with_topic = false, u = "u2" }, { only = { "test:topic::t" } })
  lu.assertEquals(code, 1, out .. err)
  lu.assertStrContains(err, "dev::test:topic::t is protected: this run would delete it")
  -- --destroy of the subnet leaves the protected VPC; of the VPC it refuses
  code, _, out, err = run(stack{}, { mode = "destroy", explicit = true, only = { "test:subnet::a" } })
  lu.assertEquals(code, 0, out .. err)
  code, _, out, err = run(stack{}, { mode = "destroy", explicit = true, only = { "test:vpc::main" } })
  lu.assertEquals(code, 1, out .. err)
  lu.assertStrContains(err, "dev::test:vpc::main is protected: this run would destroy it")
  lu.assertNotNil(H.state(dir).resources[urn("test:vpc::main")])
end

-- fo-run: options, --json, --target aws ------------------------------------------------

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

local NETWORK = [[
local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
fo.resource("test:topic", "t", { name = "t" })
fo.output("vpc", vpc.id)
fo.output("topic", fo.format("topic %s", "t"))
]]

local function recipe_file()
  local path = dir .. "/net.lua"
  testlib.write(path, PRELUDE .. NETWORK)
  return path
end

local function fo_run(args, env) return testlib.run_fo_in(dir, args, env) end

function TestOnly:test_fo_run_options_and_json_events()
  local path = recipe_file()
  local r = fo_run({ "--only", "test:subnet::a", "--graph", "g.dot", path })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--only selects the resources of an apply, --plan, --destroy "
    .. "or --refresh: it takes no --drill, --graph")
  r = fo_run({ "--only=", path })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--only needs a resource")
  r = fo_run({ "--json", "--plan", "--only", "test:subnet::a", "--only", "t", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  local plan = json_events.last(events, "plan")
  lu.assertEquals(plan.only, { patterns = { "test:subnet::a", "t" },
    selected = { "dev::test:subnet::a", "dev::test:topic::t" },
    included = { "dev::test:vpc::main" }, direction = "dependencies" })
  lu.assertEquals(plan.counts.create, 3)
  lu.assertEquals(json_events.last(events, "summary").only, plan.only)
  local warned = false
  for _, e in ipairs(json_events.all(events, "notice")) do
    if e.level == "warning" and e.text:find("the stack may now differ from the recipe", 1, true) then
      warned = true
    end
  end
  lu.assertTrue(warned, r.stdout)
  -- an apply of the topic alone: its included list is empty, an array
  r = fo_run({ "--json", "--only", "test:topic::t", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, '"included":[]')
  events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.last(events, "summary").done.create, 1)
  -- the output naming the VPC (not made) is not recorded; the other is
  local st = H.state(dir .. "/.fo")
  lu.assertEquals(st.outputs, { topic = "topic t" })
end

function TestOnly:test_json_events_match_the_schema()
  local path = recipe_file()
  local r = fo_run({ "--json", "--only", "test:subnet::a", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  lu.assertNotNil(json_events.last(events, "plan").only)
  r = fo_run({ "--json", "--destroy", "--only", "test:vpc::main", path })
  lu.assertEquals(r.code, 0, r.stderr)
  events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {})
  lu.assertEquals(json_events.last(events, "summary").only.direction, "dependents")
end

-- --target aws against a simulator served by this process, as test_cli.lua does.
function TestOnly:test_target_aws_on_the_served_simulator()
  local path = recipe_file()
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local k = require("fo.sim.keys").DEFAULT
  local env = { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = "us-east-1", AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port) }
  local r = fo_run({ "--target", "aws", "--stack", "prod", "--yes", "--only", "test:subnet::a",
    path }, env)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy.")
  lu.assertStrContains(r.stderr, "the stack may now differ from the recipe")
  local st = H.state(dir .. "/.fo", "prod")
  local got = {}
  for u in pairs(st.resources) do got[#got + 1] = u end
  table.sort(got)
  lu.assertEquals(got, { "prod::test:subnet::a", "prod::test:vpc::main" })
  -- the served simulator holds them, and no topic
  local inv = H.inventory(sim)
  lu.assertEquals(#inv, 2, table.concat(inv, ", "))
  lu.assertStrMatches(inv[1], "subnet .*")
  lu.assertStrMatches(inv[2], "vpc .*")
  -- then the rest, and a targeted destroy of the VPC with its subnet
  r = fo_run({ "--target", "aws", "--stack", "prod", "--yes", path }, env)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  r = fo_run({ "--stack", "prod", "--yes", "--destroy", "--only", "test:vpc::main", path }, env)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 2 deleted.")
  st = H.state(dir .. "/.fo", "prod")
  got = {}
  for u in pairs(st.resources) do got[#got + 1] = u end
  lu.assertEquals(got, { "prod::test:topic::t" })
  inv = H.inventory(sim)
  lu.assertEquals(#inv, 1, table.concat(inv, ", "))
  lu.assertStrMatches(inv[1], "topic .*")
  srv:close()
end

-- The trading recipe ---------------------------------------------------------------------

function TestOnly:test_trading_recipe_one_subnet_creates_its_vpc_and_the_subnet_only()
  local recipe = testlib.tests_dir .. "/../recipes/trading.lua"
  local code, doc, out, err = run(recipe, { recipe_path = recipe,
    only = { "aws:ec2:subnet::primary/public-1" } })
  lu.assertEquals(code, 0, out .. err)
  local made = {}
  for _, s in ipairs(doc.plan.steps) do
    lu.assertEquals(s.action, "create", s.urn)
    -- the data sources (reads, no resource) that the VPC's region comes from come too
    if not s.type:match("^trading:region_probe") then made[#made + 1] = s.urn end
  end
  table.sort(made)
  lu.assertEquals(made, { "dev::aws:ec2:subnet::primary/public-1", "dev::aws:ec2:vpc::primary/vpc" })
  lu.assertEquals(#recorded(), #doc.plan.steps)
  -- the simulator holds that VPC and subnet, nothing else of the recipe (no topic, role)
  local inv = H.inventory(sim, "eu-south-1")
  lu.assertEquals(#inv, 2, table.concat(inv, ", "))
  lu.assertStrMatches(inv[1], "subnet .*")
  lu.assertStrMatches(inv[2], "vpc .*")
end
os.exit(lu.LuaUnit.run())
