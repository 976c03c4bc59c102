-- Refresh finds drift (a property changed, a resource deleted behind fo's back) and the
-- next apply repairs it; destroy deletes everything the stack owns, dependents first.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"

local sim, dir
TestRefreshDestroy = {}
local run_recipe = H.fixture(TestRefreshDestroy, function(f)
  sim, dir = f.sim, f.dir
  lu.assertEquals((f.run(H.network())), 0)
end).run

local function run(opts)
  return run_recipe(H.network(), opts)
end

function TestRefreshDestroy:test_refresh_reports_a_changed_property_and_apply_repairs_it()
  local arn = H.state(dir).resources["dev::test:topic::alerts"].id
  local sns = sim:client("sns", { region = H.REGION })
  sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName", AttributeValue = "by hand" }
  local before = H.mutating(sim)
  local code, doc, out = run({ mode = "refresh", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertEquals(H.mutating(sim), before)
  lu.assertStrContains(out, "dev::test:topic::alerts: changed")
  lu.assertStrContains(out, 'display_name: "Alerts" → "by hand"')
  lu.assertEquals(doc.drift[1].urn, "dev::test:topic::alerts")
  lu.assertEquals(H.state(dir).resources["dev::test:topic::alerts"].inputs.display_name, "by hand")
  sim.recorder:clear()
  code, _, out = run()
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, 'display_name: "by hand" → "Alerts"')
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.SetTopicAttributes" })
  code, _, out = run()
  lu.assertStrContains(out, "No changes.")
end

-- A record written by an fo whose type did not have a property yet lacks it; the refresh
-- reads the property's default there, which nobody changed: no drift, and the plan is empty.
function TestRefreshDestroy:test_a_property_the_record_lacks_that_reads_as_its_default_is_no_drift()
  local cjson = require "cjson"
  local _, text = H.state(dir)
  local doc = cjson.decode(text)
  local inputs = doc.resources["dev::test:topic::alerts"].inputs
  lu.assertEquals(inputs.tags, {})
  inputs.tags = nil
  testlib.write(dir .. "/dev.state.json", cjson.encode(doc))
  os.remove(dir .. "/dev.state.log")
  local code, d, out = run({ mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(d.drift, {}, out)
  lu.assertStrContains(out, "Refresh complete: no drift.")
  -- and the state records it now, so the plan compares it with the recipe's
  lu.assertEquals(H.state(dir).resources["dev::test:topic::alerts"].inputs.tags, {})
  -- a property the record lacks that reads as something else is drift, from the default
  inputs.display_name = nil
  testlib.write(dir .. "/dev.state.json", cjson.encode(doc))
  local sns = sim:client("sns", { region = H.REGION })
  sns:SetTopicAttributes{ TopicArn = doc.resources["dev::test:topic::alerts"].id,
    AttributeName = "DisplayName", AttributeValue = "by hand" }
  code, d, out = run({ mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, 'display_name: "" → "by hand"')
end

function TestRefreshDestroy:test_apply_refreshes_first_and_recreates_a_deleted_resource()
  local id = H.state(dir).resources["dev::test:subnet::s1"].id
  sim:invoke("ec2", H.REGION, "DeleteSubnet", { SubnetId = id })
  sim.recorder:clear()
  -- what a refresh reads as gone is forgotten only when the user agrees
  local code, doc, out, err = run()
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "refresh found 1 resource gone (listed above): recording that needs "
    .. "--yes")
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(H.state(dir).resources["dev::test:subnet::s1"].id, id)
  code, doc, out = run({ yes = true })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "dev::test:subnet::s1: deleted (was " .. id .. ")")
  lu.assertEquals(H.ops(sim, { mutating = true }), { "ec2.CreateSubnet" })
  lu.assertEquals(doc.plan.counts.create, 1)
  lu.assertNotEquals(H.state(dir).resources["dev::test:subnet::s1"].id, id)
end

function TestRefreshDestroy:test_no_refresh_plans_against_the_state_only()
  sim.recorder:clear()
  local code = run({ refresh = false })
  lu.assertEquals(code, 0)
  -- only the stack's account check (docs/engine.md, "Stack identity")
  lu.assertEquals(H.ops(sim), { "sts.GetCallerIdentity" })
end

function TestRefreshDestroy:test_destroy_leaves_nothing_dependents_first()
  sim.recorder:clear()
  local default_vpc = H.default_vpc(sim)
  lu.assertStrMatches(default_vpc, "vpc%-%x+ subnets=%d+ igw=igw%-%x+ tags=0")
  local code, doc, out = run({ mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Destroy complete: 6 deleted.")
  lu.assertEquals(H.inventory(sim), {})
  -- the account's default VPC is not the stack's: left whole, untagged
  lu.assertEquals(H.default_vpc(sim), default_vpc)
  local ops = H.ops(sim, { mutating = true })
  lu.assertEquals(ops[#ops], "ec2.DeleteVpc")
  local st = H.state(dir)
  lu.assertEquals(next(st.resources), nil)
  lu.assertEquals(next(st.outputs), nil)
  lu.assertEquals(#doc.operations, 6)
  -- destroying again: nothing to do
  code, _, out = run({ mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "Destroy complete: 0 deleted.")
end

function TestRefreshDestroy:test_destroy_failure_stops_and_keeps_the_rest_recorded()
  require("support.engine_types").fail_mutating_call(sim, 1)
  local code, _, _, err = run({ mode = "destroy", explicit = true, parallel = 1 })
  lu.assertEquals(code, 3)
  lu.assertStrContains(err, "Destroy stopped")
  local st = H.state(dir)
  local n = 0
  for _ in pairs(st.resources) do n = n + 1 end
  lu.assertEquals(n, #H.inventory(sim))
end

function TestRefreshDestroy:test_destroy_does_not_run_the_recipe_nor_need_its_config()
  local ran = 0
  local function needs_config()
    ran = ran + 1
    local c = fo.config{ name = { type = "string", required = true } }
    fo.resource("test:topic", "extra", { name = c.name })
  end
  lu.assertEquals((run_recipe(needs_config, { config = { name = "extra" } })), 0)
  lu.assertEquals(H.state(dir).config, { name = "extra" })
  -- without the config, an apply refuses; a destroy needs neither the config nor the recipe
  local code, _, _, err = run_recipe(needs_config)
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "config name is required")
  ran = 0
  code, _, _, err = run_recipe(needs_config, { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, err)
  lu.assertEquals(ran, 0)
  lu.assertEquals(H.inventory(sim), {})
  -- a recipe that no longer loads does not matter either
  lu.assertEquals((run({})), 0)
  code, _, _, err = run_recipe(function() error("broken recipe") end,
    { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, err)
  lu.assertEquals(H.inventory(sim), {})
end

-- Drift on every kind of the 22-resource graph (support.engine_graph): properties and tags
-- changed by hand on a VPC, a subnet, a security group, a topic, a role and a zone, and a
-- subnet, a topic, a role and a zone deleted behind fo's back. --refresh reports each of
-- them (and changes nothing), the apply repairs them; afterwards a refresh sees no drift,
-- a rerun makes no mutating call, the simulator holds exactly what the state records, and
-- --destroy leaves nothing.
function TestRefreshDestroy:test_drift_on_every_kind_is_reported_and_repaired_then_destroy()
  local sim = H.sim() -- the graph's names (topic alerts, role app) are the network's too
  local recipe = require("support.engine_graph").recipe(1)
  local function run_graph(opts)
    opts = opts or {}
    opts.stack, opts.sim = "graph", sim
    return run_recipe(recipe, opts)
  end
  local code, _, out, err = run_graph()
  lu.assertEquals(code, 0, out .. err)
  local ids = {}
  for urn, r in pairs(H.state(dir, "graph").resources) do ids[urn:match("^[^:]+::(.*)$")] = r.id end
  local R = H.REGION
  sim:invoke("ec2", R, "ModifyVpcAttribute", { VpcId = ids["test:vpc::main"],
    EnableDnsHostnames = { Value = true } })
  sim:invoke("ec2", R, "ModifySubnetAttribute", { SubnetId = ids["test:subnet::a1"],
    MapPublicIpOnLaunch = { Value = true } })
  sim:invoke("ec2", R, "DeleteTags", { Resources = { ids["test:security_group::web"] },
    Tags = { { Key = "role" } } })
  sim:invoke("sns", R, "SetTopicAttributes", { TopicArn = ids["test:topic::alerts"],
    AttributeName = "DisplayName", AttributeValue = "by hand" })
  sim:invoke("iam", nil, "UpdateRole", { RoleName = "worker", Description = "by hand" })
  sim:invoke("route53", nil, "ChangeTagsForResource", { ResourceType = "hostedzone",
    ResourceId = ids["test:zone::public"], AddTags = { { Key = "env", Value = "by-hand" } } })
  sim:invoke("ec2", R, "DeleteSubnet", { SubnetId = ids["test:subnet::e2"] })
  sim:invoke("sns", R, "DeleteTopic", { TopicArn = ids["test:topic::legacy"] })
  sim:invoke("iam", nil, "DeleteRole", { RoleName = "auditor" })
  sim:invoke("route53", nil, "DeleteHostedZone", { Id = ids["test:zone::internal"] })
  local expected = {
    ["graph::test:vpc::main"] = "changed", ["graph::test:subnet::a1"] = "changed",
    ["graph::test:security_group::web"] = "changed", ["graph::test:topic::alerts"] = "changed",
    ["graph::test:role::worker"] = "changed", ["graph::test:zone::public"] = "changed",
    ["graph::test:subnet::e2"] = "deleted", ["graph::test:topic::legacy"] = "deleted",
    ["graph::test:role::auditor"] = "deleted", ["graph::test:zone::internal"] = "deleted",
  }
  sim.recorder:clear()
  local doc
  local before = testlib.read(dir .. "/graph.state.json")
  code, doc, out, err = run_graph({ mode = "refresh", explicit = true })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "refresh found 4 resources gone")
  lu.assertEquals(testlib.read(dir .. "/graph.state.json"), before, "nothing recorded")
  code, doc, out, err = run_graph({ mode = "refresh", explicit = true, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(H.mutating(sim), 0, "refresh changes nothing in the cloud")
  local got = {}
  for _, d in ipairs(doc.drift) do got[d.urn] = d.kind end
  lu.assertEquals(got, expected, out)
  lu.assertStrContains(out, 'display_name: "Alerts" → "by hand"')
  lu.assertStrContains(out, "graph::test:zone::internal: deleted (was " .. ids["test:zone::internal"] .. ")")
  -- the apply repairs: 6 updates back, 4 re-created
  code, doc, out, err = run_graph()
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals({ doc.plan.counts.update, doc.plan.counts.create }, { 6, 4 }, out)
  lu.assertEquals(sim:invoke("sns", R, "GetTopicAttributes", { TopicArn = ids["test:topic::alerts"] })
    .Attributes.DisplayName, "Alerts")
  code, doc, out = run_graph({ mode = "refresh", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.drift, {}, out)
  sim.recorder:clear()
  code, _, out = run_graph()
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), 0)
  local problems = H.ownership_problems(sim, H.state(dir, "graph"))
  lu.assertEquals(problems, {}, table.concat(problems, "; "))
  -- destroy leaves nothing
  code, _, out = run_graph({ mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Destroy complete: 22 deleted.")
  lu.assertEquals(H.resources(sim), {})
end

os.exit(lu.LuaUnit.run())
