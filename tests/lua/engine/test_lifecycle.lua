-- Lifecycle options per resource (docs/recipes.md, "Lifecycle options"): protect refuses a
-- deletion or replacement before any change (also after the declaration is gone, and on
-- --destroy), retain_on_delete forgets instead of deleting, ignore_changes leaves paths
-- alone, create_before_destroy / delete_before_replace override the replacement order,
-- replace_triggered_by replaces with another resource, timeouts bound an operation's waits.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"
local json_events = require "support.json_events"
local common = require "fo.aws.resources.common"

local sim, dir
TestLifecycle = {}
local run = H.fixture(TestLifecycle, function(f) sim, dir = f.sim, f.dir end).run

local VPC = "dev::test:vpc::main"
local TOPIC = "dev::test:topic::alerts"

local function apply(recipe, opts)
  local code, doc, out, err = run(recipe, opts)
  lu.assertEquals(code, 0, out .. err)
  return doc, out, err
end

-- A VPC (with `vpc_opts`) and a topic (with `topic_opts`); `with_vpc` false leaves the VPC out.
local function stack(o)
  o = o or {}
  return function()
    if o.with_vpc ~= false then
      fo.resource("test:vpc", "main", { cidr = o.cidr or "10.0.0.0/16", tags = o.vpc_tags },
        o.vpc_opts)
    end
    fo.resource("test:topic", "alerts", { name = o.topic_name or "alerts",
      display_name = o.display or "Alerts", tags = o.topic_tags }, o.topic_opts)
  end
end

local function count_kind(kind)
  local n = 0
  for _, item in ipairs(H.inventory(sim)) do
    if item:match("^" .. kind .. " ") then n = n + 1 end
  end
  return n
end

-- protect -------------------------------------------------------------------------------

function TestLifecycle:test_protect_refuses_removal_replacement_and_destroy_before_any_change()
  apply(stack{ vpc_opts = { protect = true } })
  lu.assertIsTrue(H.state(dir).resources[VPC].protect, "the state records the protection")
  local before, _, state_text = H.mutating(sim), nil, select(2, H.state(dir))
  -- removed from the recipe: the record's protection holds without the declaration
  for _, mode in ipairs({ "apply", "plan" }) do
    local code, _, out, err = run(stack{ with_vpc = false }, { mode = mode })
    lu.assertEquals(code, 1, mode .. ": " .. out .. err)
    lu.assertStrContains(out, "delete REFUSED: protected")
    lu.assertStrContains(err, VPC .. " is protected: this run would delete it (to delete it, "
      .. "put it back in the recipe with protect = false and apply, then remove it)")
    lu.assertStrContains(err, "nothing was changed")
    lu.assertNotStrContains(err, "traceback")
  end
  -- a replacement (the CIDR forces one)
  local code, _, _, err = run(stack{ cidr = "10.9.0.0/16", vpc_opts = { protect = true } })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, VPC .. " is protected: this run would replace it (to replace it, set "
    .. "protect = false, apply, then make the change)")
  -- --destroy (from the state alone)
  code, _, _, err = run(stack(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, VPC .. " is protected: this run would destroy it")
  lu.assertEquals(H.mutating(sim), before, "no mutating call")
  lu.assertEquals(select(2, H.state(dir)), state_text, "the state is as it was")
  lu.assertEquals(count_kind("vpc"), 1)
  -- the fix: protect = false (a state-only change), then the removal goes through
  sim.recorder:clear()
  local _, out = apply(stack{ vpc_opts = { protect = false } })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
  lu.assertIsNil(H.state(dir).resources[VPC].protect)
  apply(stack{ with_vpc = false })
  lu.assertIsNil(H.state(dir).resources[VPC])
  lu.assertEquals(count_kind("vpc"), 0)
end

function TestLifecycle:test_what_an_interrupted_create_made_is_adopted_protected()
  apply(stack{ vpc_opts = { protect = true } })
  -- the state as a run killed during the VPC's create leaves it: the intent, no record
  local cjson = require "cjson"
  local _, text = H.state(dir)
  local doc = cjson.decode(text)
  local rec = doc.resources[VPC]
  doc.resources[VPC] = nil
  doc.intents = { [VPC] = { op = "create", urn = VPC, type = rec.type, name = rec.name,
    region = rec.region, token = rec.token, generation = rec.generation, inputs = rec.inputs,
    deps = {}, protect = true } }
  testlib.write(dir .. "/dev.state.json", cjson.encode(doc))
  os.remove(dir .. "/dev.state.log")
  local code, _, out, err = run(stack{ with_vpc = false })
  lu.assertEquals(code, 1, out .. err)
  lu.assertStrContains(out, "Adopted " .. VPC)
  lu.assertStrContains(err, VPC .. " is protected")
  lu.assertEquals(count_kind("vpc"), 1)
end

function TestLifecycle:test_a_state_whose_protect_is_not_a_boolean_is_refused()
  apply(stack{ vpc_opts = { protect = true } })
  local cjson = require "cjson"
  local doc = cjson.decode((select(2, H.state(dir))))
  doc.resources[VPC].protect = "no"
  testlib.write(dir .. "/dev.state.json", cjson.encode(doc))
  os.remove(dir .. "/dev.state.log")
  local code, _, _, err = run(stack{ with_vpc = false })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "resources." .. VPC .. ".protect must be a boolean")
  lu.assertEquals(count_kind("vpc"), 1)
end

function TestLifecycle:test_protect_is_a_json_plan_field_and_an_error_event()
  apply(stack{ topic_opts = { protect = true } })
  local code, _, out = run(stack{ topic_name = "alerts2", topic_opts = { protect = true } },
    { json = true })
  lu.assertEquals(code, 1)
  local lines = json_events.parse(out)
  lu.assertEquals(json_events.problems(lines), {}, "the events follow the schema")
  local plan = json_events.last(lines, "plan")
  local step
  for _, s in ipairs(plan.steps) do if s.urn == TOPIC then step = s end end
  lu.assertEquals({ step.action, step.lifecycle }, { "replace", "protected" })
  local err = json_events.last(lines, "error")
  lu.assertStrContains(err.error.text or err.error.message, TOPIC .. " is protected")
  lu.assertEquals(json_events.last(lines, "summary").exit_code, 1)
end

function TestLifecycle:test_rollback_deletes_a_protected_resource_this_run_created()
  -- protect guards what the stack had before the run: a run that fails is undone whole
  local code, doc, out, err = run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" }, { protect = true })
    fo.resource("test:subnet", "bad", { vpc_id = vpc.id, cidr = "10.9.0.0/24" }) -- outside it
  end)
  lu.assertEquals(code, 4, out .. err)
  local undone = {}
  for _, o in ipairs(doc.rollback) do undone[o.urn] = o.ok end
  lu.assertIsTrue(undone[VPC])
  lu.assertEquals(count_kind("vpc"), 0)
  lu.assertIsNil(next(H.state(dir).resources))
end

-- retain_on_delete -------------------------------------------------------------------------

function TestLifecycle:test_retain_on_delete_forgets_on_removal_without_deleting()
  apply(stack{ vpc_opts = { retain_on_delete = true } })
  local id = H.state(dir).resources[VPC].id
  lu.assertIsTrue(H.state(dir).resources[VPC].retain)
  local code, doc, out = run(stack{ with_vpc = false }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "test:vpc main")
  lu.assertStrContains(out, "retain (forget, not deleted)")
  lu.assertStrContains(out, "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 1 to forget "
    .. "(retain_on_delete).")
  lu.assertEquals(doc.plan.counts.retain, 1)
  sim.recorder:clear()
  local _, out2 = apply(stack{ with_vpc = false })
  lu.assertStrContains(out2, "retained (forgotten, not deleted)")
  lu.assertStrContains(out2, "Apply complete: 0 created, 0 updated, 0 replaced, 0 deleted, 1 "
    .. "retained (forgotten, not deleted).")
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
  lu.assertIsNil(H.state(dir).resources[VPC])
  lu.assertIsTrue(H.index(H.inventory(sim), "vpc " .. id) ~= nil, "the VPC is still there")
end

function TestLifecycle:test_destroy_forgets_retained_resources_and_deletes_the_rest()
  apply(stack{ vpc_opts = { retain_on_delete = true } })
  sim.recorder:clear()
  local code, doc, out = run(stack(), { mode = "destroy", explicit = true, json = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.DeleteTopic" })
  local events = json_events.parse(out)
  lu.assertEquals(json_events.problems(events), {}, "the events follow the schema")
  local step
  for _, s in ipairs(json_events.last(events, "plan").steps) do
    if s.urn == VPC then step = s end
  end
  lu.assertEquals({ step.action, step.lifecycle }, { "delete", "retain" })
  lu.assertStrContains(json_events.last(events, "summary").text,
    "Destroy complete: 1 deleted. 1 retained")
  lu.assertEquals(doc.plan.counts.retain, 1)
  lu.assertIsNil(next(H.state(dir).resources))
  lu.assertEquals(count_kind("vpc"), 1)
end

function TestLifecycle:test_a_retained_resource_replaced_keeps_its_old_instance()
  apply(stack{ vpc_opts = { retain_on_delete = true } })
  local old = H.state(dir).resources[VPC].id
  local code, _, out = run(stack{ cidr = "10.8.0.0/16", vpc_opts = { retain_on_delete = true } })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "replace (create before delete); the old one retained (forgotten, "
    .. "not deleted)")
  lu.assertStrContains(out, "retained (forgotten, not deleted)")
  local new = H.state(dir).resources[VPC].id
  lu.assertNotEquals(new, old)
  lu.assertEquals(#H.state(dir).deposed, 0)
  lu.assertIsTrue(H.index(H.inventory(sim), "vpc " .. old) ~= nil, "the old VPC is kept")
  lu.assertEquals(count_kind("vpc"), 2)
  -- a delete-first replacement would forget the old one, then make one with its name
  apply(function()
    fo.resource("test:role", "app", { name = "app" }, { retain_on_delete = true })
  end)
  local before = H.mutating(sim)
  local err
  code, _, _, err = run(function()
    fo.resource("test:role", "app", { name = "app" }, { retain_on_delete = true,
      region = "eu-west-1" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "dev::test:role::app has retain_on_delete: its replacement would "
    .. "forget the old one")
  lu.assertEquals(H.mutating(sim), before)
end

-- ignore_changes ---------------------------------------------------------------------------

function TestLifecycle:test_ignore_changes_ignores_recipe_changes_and_drift_of_the_paths()
  apply(stack{ topic_opts = { ignore_changes = { "display_name" } } })
  -- the recipe's value changes: no update
  sim.recorder:clear()
  local _, out = apply(stack{ display = "Other", topic_opts = { ignore_changes = { "display_name" } } })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
  -- drift: kept as it is
  local arn = H.state(dir).resources[TOPIC].id
  sim:client("sns", { region = H.REGION }):SetTopicAttributes{ TopicArn = arn,
    AttributeName = "DisplayName", AttributeValue = "by hand" }
  sim.recorder:clear()
  apply(stack{ topic_opts = { ignore_changes = { "display_name" } } })
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
  lu.assertEquals(H.state(dir).resources[TOPIC].inputs.display_name, "by hand")
  -- without the option, the recipe wins again
  sim.recorder:clear()
  apply(stack())
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.SetTopicAttributes" })
end

function TestLifecycle:test_ignore_changes_of_one_map_key_keeps_the_others_managed()
  local opts = { ignore_changes = { "tags.Owner" } }
  -- on create the declared value is used
  apply(stack{ vpc_tags = { Owner = "ops", Env = "dev" }, vpc_opts = opts })
  lu.assertEquals(H.state(dir).resources[VPC].inputs.tags, { Owner = "ops", Env = "dev" })
  sim.recorder:clear()
  local _, out = apply(stack{ vpc_tags = { Owner = "finance", Env = "dev" }, vpc_opts = opts })
  lu.assertStrContains(out, "No changes.")
  local _, out2 = apply(stack{ vpc_tags = { Owner = "finance", Env = "prod" }, vpc_opts = opts })
  lu.assertStrContains(out2, 'tags.Env: "dev" → "prod"')
  lu.assertNotStrContains(out2, "tags.Owner")
  lu.assertEquals(H.state(dir).resources[VPC].inputs.tags, { Owner = "ops", Env = "prod" })
end

-- replacement order --------------------------------------------------------------------------

function TestLifecycle:test_delete_before_replace_and_create_before_destroy_override_the_type()
  apply(stack{ vpc_opts = { delete_before_replace = true } })
  sim.recorder:clear()
  local _, out = apply(stack{ cidr = "10.8.0.0/16", vpc_opts = { delete_before_replace = true } })
  lu.assertStrContains(out, "replace (delete first)")
  local ops = H.ops(sim, { mutating = true })
  lu.assertIsTrue(H.index(ops, "ec2.DeleteVpc") < H.index(ops, "ec2.CreateVpc"), table.concat(ops, " "))
  -- a name-unique type (the role replaces delete-first) creates first when the name changes
  apply(function() fo.resource("test:role", "app", { name = "app" }) end)
  sim.recorder:clear()
  _, out = apply(function()
    fo.resource("test:role", "app", { name = "app2" }, { create_before_destroy = true })
  end)
  lu.assertStrContains(out, "replace (create before delete)")
  ops = H.ops(sim, { mutating = true })
  lu.assertIsTrue(H.index(ops, "iam.CreateRole") < H.index(ops, "iam.DeleteRole"), table.concat(ops, " "))
end

function TestLifecycle:test_create_before_destroy_with_the_same_name_is_refused_in_the_plan()
  apply(function() fo.resource("test:role", "app", { name = "app" }) end)
  local before = H.mutating(sim)
  local code, _, _, err = run(function()
    fo.resource("test:role", "app", { name = "app", description = "x" },
      { create_before_destroy = true })
    fo.resource("test:topic", "t", { name = "t" })
  end)
  -- (the role updates in place: nothing to refuse); a forced replacement keeping the name is
  lu.assertEquals(code, 0, err)
  code, _, _, err = run(function()
    fo.resource("test:role", "app", { name = "app" },
      { create_before_destroy = true, region = "eu-west-1" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "dev::test:role::app")
  lu.assertStrContains(err, 'create_before_destroy = true, but test:role is unique by name and '
    .. 'the replacement keeps name = "app": it could not be created while the old one exists. '
    .. "Give it a new name in the same change, or drop create_before_destroy.")
  lu.assertEquals(H.mutating(sim), before + 2) -- the topic's create (and nothing since)
end

-- replace_triggered_by -------------------------------------------------------------------------

function TestLifecycle:test_replace_triggered_by_replaces_when_the_trigger_changes()
  local function recipe(o)
    return function()
      local vpc = fo.resource("test:vpc", "main", { cidr = o.cidr or "10.0.0.0/16",
        tags = o.tags })
      -- (a topic's name is unique: its replacement deletes first)
      fo.resource("test:topic", "alerts", { name = "alerts" },
        { replace_triggered_by = { vpc }, delete_before_replace = true })
    end
  end
  apply(recipe{})
  local _, out = apply(recipe{})
  lu.assertStrContains(out, "No changes.")
  -- the VPC is updated in place: the topic is replaced
  local code, doc, plan_out = run(recipe{ tags = { a = "b" } }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertStrContains(plan_out, "(replace_triggered_by): \"" .. VPC .. "\" → \"" .. VPC
    .. " updated\"  (forces replacement)")
  lu.assertEquals(doc.plan.counts, { create = 0, update = 1, replace = 1, delete = 0, noop = 0 })
  sim.recorder:clear()
  apply(recipe{ tags = { a = "b" } })
  local ops = H.ops(sim, { mutating = true })
  lu.assertIsTrue(H.index(ops, "sns.DeleteTopic") < H.index(ops, "sns.CreateTopic"),
    table.concat(ops, " "))
  -- by name too, and a replaced trigger replaces
  sim.recorder:clear()
  apply(function()
    fo.resource("test:vpc", "main", { cidr = "10.7.0.0/16", tags = { a = "b" } })
    fo.resource("test:topic", "alerts", { name = "alerts" },
      { replace_triggered_by = "test:vpc::main", delete_before_replace = true })
  end)
  ops = H.ops(sim, { mutating = true })
  lu.assertIsTrue(H.index(ops, "ec2.CreateVpc") ~= nil)
  lu.assertIsTrue(H.index(ops, "sns.DeleteTopic") < H.index(ops, "sns.CreateTopic"))
  -- a reference to one of its outputs means the resource
  local code2, doc2, out2 = run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.6.0.0/16", tags = { a = "b" } })
    fo.resource("test:topic", "alerts", { name = "alerts" },
      { replace_triggered_by = vpc.id, delete_before_replace = true })
  end, { mode = "plan" })
  lu.assertEquals(code2, 0, out2)
  lu.assertEquals(doc2.plan.counts.replace, 2, out2)
  lu.assertStrContains(out2, '"' .. VPC .. ' replaced"')
  -- and nothing changed: nothing replaced
  sim.recorder:clear()
  apply(function()
    fo.resource("test:vpc", "main", { cidr = "10.7.0.0/16", tags = { a = "b" } })
    fo.resource("test:topic", "alerts", { name = "alerts" },
      { replace_triggered_by = "test:vpc::main", delete_before_replace = true })
  end)
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
end

-- timeouts -----------------------------------------------------------------------------------

-- A type whose create waits (common.poll, bound 600 s) for something that never happens,
-- and records the bound the waits of each operation get.
local bounds = {}
fo.type("test:slow", {
  schema = { properties = { never = { type = "boolean", default = false } }, outputs = { "id" } },
  create = function(ctx, p)
    bounds.create = require("fo.engine.lifecycle").bound(ctx, 600)
    if p.never then common.poll(ctx, "the slow thing", 600, function() return false end) end
    return "slow-1", { id = "slow-1" }
  end,
  read = function() return { id = "slow-1" }, {} end,
  update = function(ctx) bounds.update = require("fo.engine.lifecycle").bound(ctx, 600) end,
  delete = function(ctx) bounds.delete = require("fo.engine.lifecycle").bound(ctx, 600) end,
})

function TestLifecycle:test_timeouts_bound_the_waits_of_each_operation()
  bounds = {}
  apply(function() fo.resource("test:slow", "s", {}, { timeouts = { create = "15m", delete = 90 } }) end)
  lu.assertIsTrue(bounds.create > 899 and bounds.create <= 900, tostring(bounds.create))
  lu.assertEquals(H.state(dir).resources["dev::test:slow::s"].timeouts, { create = 900, delete = 90 })
  -- destroy works from the state: the recorded delete timeout holds
  apply(stack(), { mode = "destroy", explicit = true })
  lu.assertIsTrue(bounds.delete > 89 and bounds.delete <= 90, tostring(bounds.delete))
  -- without timeouts, the type's own bound
  bounds = {}
  apply(function() fo.resource("test:slow", "s", {}) end)
  lu.assertEquals(bounds.create, 600)
end

function TestLifecycle:test_a_wait_past_its_custom_timeout_fails_the_operation()
  local code, _, out, err = run(function()
    fo.resource("test:slow", "s", { never = true }, { timeouts = { create = "1s" } })
  end)
  lu.assertEquals(code, 4, out .. err)
  lu.assertStrContains(err, "the slow thing did not finish within 1 s (the resource's custom "
    .. "timeout)")
end

-- recipe errors ----------------------------------------------------------------------------

function TestLifecycle:test_bad_options_are_recipe_errors_naming_the_place()
  local cases = {
    { { protect = "yes" }, "test:topic alerts: protect must be true or false, got string" },
    { { ignore_changes = { "nope" } }, "test:topic alerts: ignore_changes: unknown property nope" },
    { { ignore_changes = "name" }, "ignore_changes takes a list of property paths" },
    { { timeouts = { create = "5 minutes" } }, 'timeouts.create: "5 minutes" is not a duration' },
    { { timeouts = { craete = "5m" } }, "timeouts: unknown operation craete (did you mean 'create'?)" },
    { { create_before_destroy = true, delete_before_replace = true },
      "create_before_destroy = true and delete_before_replace = true contradict each other" },
    { { replace_triggered_by = { "nothing" } },
      "replace_triggered_by 'nothing' names no declared resource" },
    { { retain_on_destroy = true }, "unknown option retain_on_destroy (options: create_before_destroy, " },
  }
  for _, c in ipairs(cases) do
    local code, _, out, err = run(stack{ topic_opts = c[1] }, { mode = "plan" })
    lu.assertEquals(code, 1, c[2])
    lu.assertStrContains(err, c[2])
    lu.assertStrContains(err, "test_lifecycle.lua:")
    lu.assertNotStrContains(err .. out, "traceback")
  end
  lu.assertIsNil(H.state(dir))
end

-- through --target aws ---------------------------------------------------------------------

function TestLifecycle:test_protect_and_retain_through_target_aws_on_a_served_simulator()
  local srv, served = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  local k = require("fo.sim.keys").DEFAULT
  local env = { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = "us-east-1", AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port),
    FO_STATE_DIR = dir .. "/.fo" }
  local path = dir .. "/topics.lua"
  local function write(protect, keep)
    testlib.write(path, ([[
require "fo.aws.resources"
fo.resource("aws:sns:topic", "kept", { name = "lc-kept" }, { retain_on_delete = true })
%s
]]):format(keep and ('fo.resource("aws:sns:topic", "guarded", { name = "lc-guarded" }, '
      .. '{ protect = %s })'):format(tostring(protect)) or ""))
  end
  local function fo_run(args) return testlib.run_fo(args, { env = env }) end
  local function topics()
    local sns = served:client("sns", { region = "us-east-1" })
    local out = {}
    for _, t in ipairs(sns:ListTopics{}.Topics or {}) do out[#out + 1] = t.TopicArn:match("[^:]+$") end
    table.sort(out)
    return out
  end
  write(true, true)
  local r = fo_run({ "--target", "aws", "--yes", path })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  write(true, false)
  r = fo_run({ "--yes", "--json", path })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "dev::aws:sns:topic::guarded is protected")
  local events = json_events.parse(r.stdout)
  lu.assertEquals(json_events.problems(events), {}, "the events follow the schema")
  local plan = json_events.last(events, "plan")
  lu.assertEquals(plan.steps[#plan.steps].lifecycle, "protected")
  r = fo_run({ "--destroy", "--yes", path })
  lu.assertEquals(r.code, 1)
  lu.assertEquals(topics(), { "lc-guarded", "lc-kept" })
  write(false, true)
  lu.assertEquals(fo_run({ "--yes", path }).code, 0)
  r = fo_run({ "--destroy", "--yes", path })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 1 deleted. 1 retained")
  lu.assertEquals(topics(), { "lc-kept" })
  srv:close()
end

os.exit(lu.LuaUnit.run())
