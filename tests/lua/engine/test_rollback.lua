-- Rollback on error: after a non-retryable failure nothing new starts, in-flight work ends,
-- then what the run created is deleted and what it updated restored; the simulator and the
-- state end as before the run. --no-rollback keeps partial progress; a failed rollback
-- step is reported and the state keeps the truth.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local types = require "support.engine_types"

local sim, dir
TestRollback = {}
local F = H.fixture(TestRollback, function(f) sim, dir = f.sim, f.dir end)
local run = F.run

-- What the state says the stack owns: URN → {id, inputs}.
local function owned()
  local st = H.state(dir)
  local out = {}
  for urn, r in pairs(st and st.resources or {}) do out[urn] = { id = r.id, inputs = r.inputs } end
  return out, st
end

local function bad_subnet()
  local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
  fo.resource("test:topic", "alerts", { name = "alerts" })
  fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.9.1.0/24" })
end

function TestRollback:test_failed_create_rolls_back_everything_this_run_made()
  local code, doc, out, err = run(bad_subnet)
  lu.assertEquals(code, 4, out .. err)
  lu.assertStrContains(err, "Error: test:subnet a (dev::test:subnet::a): create failed: "
    .. "ec2.CreateSubnet: InvalidSubnet.Range (HTTP 400)")
  lu.assertStrContains(out, "Rolling back what this run did")
  lu.assertStrContains(out, "Apply failed; rolled back: the stack is as it was before this run")
  lu.assertEquals(H.inventory(sim), {})
  local res, st = owned()
  lu.assertEquals(res, {})
  lu.assertEquals(next(st.intents), nil)
  lu.assertEquals(doc.errors[1].error.code, "InvalidSubnet.Range")
  lu.assertEquals(#doc.rollback, 3) -- the VPC, the topic, and the failed subnet (nothing left)
end

-- Every mutating call of an apply fails in turn: each time, nothing is left.
function TestRollback:test_fault_at_each_mutating_call_of_a_first_apply_leaves_nothing()
  local recipe = H.network()
  local clean = H.sim()
  local d = H.dir()
  lu.assertEquals((H.run(recipe, { sim = clean, dir = d })), 0)
  local n = H.mutating(clean)
  H.cleanup(d)
  lu.assertIsTrue(n >= 7)
  for k = 1, n do
    F.renew()
    types.fail_mutating_call(sim, k)
    local code, _, out, err = run(recipe)
    lu.assertEquals(code, 4, ("k=%d: %s%s"):format(k, out, err))
    lu.assertStrContains(err, "FoInjectedFault")
    lu.assertEquals(H.inventory(sim), {}, "k=" .. k)
    lu.assertEquals(owned(), {}, "k=" .. k)
  end
end

-- An update run (update in place, a delete-first replacement, a new resource, a removed
-- one) fails at each of its mutating calls in turn: the stack is as before.
function TestRollback:test_fault_at_each_mutating_call_of_an_update_restores_the_stack()
  local base = H.network{ subnets = 2 }
  local change = H.network{ subnets = 1, display = "Alarms", sg_name = "web2" }
  local function fresh()
    F.renew()
    lu.assertEquals((run(base)), 0)
    return H.inventory(sim), owned()
  end
  local inv0 = fresh()
  local before = H.mutating(sim)
  lu.assertEquals((run(change)), 0)
  local n = H.mutating(sim) - before
  lu.assertIsTrue(n >= 4)
  for k = 1, n do
    local inv, res = fresh()
    lu.assertEquals(#inv, #inv0)
    types.fail_mutating_call(sim, k)
    local code, _, out, err = run(change)
    if k <= n - 1 then
      -- the last calls are phase 2 deletions (after the commit point) when k hits them
      lu.assertIsTrue(code == 4 or code == 3, ("k=%d: %s%s"):format(k, out, err))
    end
    if code == 4 then
      local now, st = owned()
      local ids_before, ids_now = {}, {}
      for urn, r in pairs(res) do ids_before[urn] = r.inputs end
      for urn, r in pairs(now) do ids_now[urn] = r.inputs end
      lu.assertEquals(ids_now, ids_before, "k=" .. k)
      lu.assertEquals(#H.inventory(sim), #inv, "k=" .. k)
      lu.assertEquals(#st.deposed, 0)
      -- the topic's display name is back
      lu.assertEquals(sim:invoke("sns", H.REGION, "GetTopicAttributes",
        { TopicArn = res["dev::test:topic::alerts"].id }).Attributes.DisplayName, "Alerts")
    end
  end
end

function TestRollback:test_no_rollback_keeps_partial_progress_and_a_rerun_converges()
  local code, _, out, err = run(bad_subnet, { rollback = false })
  lu.assertEquals(code, 3, out .. err)
  lu.assertStrContains(out, "--no-rollback: what was done is kept")
  local res = owned()
  lu.assertNotNil(res["dev::test:vpc::main"])
  lu.assertNil(res["dev::test:subnet::a"])
  lu.assertEquals(#H.inventory(sim), 2)
  -- fixed recipe: the rerun completes what is missing, no duplicates
  code = run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:topic", "alerts", { name = "alerts" })
    fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
  end)
  lu.assertEquals(code, 0)
  lu.assertEquals(#H.inventory(sim), 3)
end

-- Regression: every create gets a new idempotency token, a create again after a rollback
-- or a destroy included (tokens were made of URN and generation alone, the same again:
-- Route 53 refuses a used CallerReference forever, HostedZoneAlreadyExists).
function TestRollback:test_a_create_made_again_after_a_rollback_or_a_destroy_has_a_new_token()
  local zone = function() fo.resource("test:zone", "z", { name = "example-com.test" }) end
  types.fail_mutating_call(sim, 2) -- the tags after CreateHostedZone: the zone is deleted
  local code, _, out, err = run(zone)
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(H.inventory(sim), {})
  for i = 1, 3 do
    code, _, out, err = run(zone)
    lu.assertEquals(code, 0, ("apply %d: %s%s"):format(i, out, err))
    lu.assertEquals(#H.inventory(sim), 1)
    code, _, out, err = run(zone, { mode = "destroy", explicit = true })
    lu.assertEquals(code, 0, out .. err)
  end
  local refs = {}
  for _, c in ipairs(sim:calls{ operation = "CreateHostedZone" }) do
    lu.assertNil(c.code, "every CreateHostedZone succeeded")
  end
  for ref in pairs(sim.store.data.accounts[fo.sim.DEFAULT_ACCOUNT].global.route53.zone_refs) do
    refs[#refs + 1] = ref
  end
  lu.assertEquals(#refs, 4) -- four creates, four references
end

-- A type whose delete always fails: the rollback cannot delete it.
fo.type("test:sticky", {
  schema = { properties = { n = { type = "integer", default = 1 } }, outputs = { "id" } },
  create = function() return "sticky-1", { id = "sticky-1" } end,
  read = function() return { id = "sticky-1" } end,
  delete = function() error(aws.Error.new{ service = "test", operation = "DeleteSticky",
    code = "StillInUse", message = "something still uses it", status = 400 }) end,
})

function TestRollback:test_a_failed_rollback_step_is_loud_and_the_state_keeps_the_truth()
  local code, _, out, err = run(function()
    fo.resource("test:sticky", "s", {})
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.9.1.0/24" }, { depends_on = "s" })
  end)
  lu.assertEquals(code, 3, out .. err)
  lu.assertStrContains(err, "test:sticky s (dev::test:sticky::s): rollback failed: test.DeleteSticky: "
    .. "StillInUse (HTTP 400): something still uses it")
  lu.assertStrContains(err, "ROLLBACK FAILED")
  local res = owned()
  lu.assertNotNil(res["dev::test:sticky::s"])     -- still there, still recorded
  lu.assertNil(res["dev::test:vpc::main"])        -- rolled back
  lu.assertEquals(H.inventory(sim), {})
end

-- An internet gateway attached to its VPC by its create; with fail = true the create
-- fails after both calls took effect (a half-made gateway: created, tagged, attached).
-- Its adopt waits a little first, so that a VPC delete not ordered after this undo would
-- run while the gateway is still attached.
fo.type("test:gateway", {
  schema = { properties = { vpc_id = { type = "string", required = true },
    fail = { type = "boolean", default = false } }, outputs = { "id" } },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local id = ec2:CreateInternetGateway{ TagSpecifications = { { ResourceType = "internet-gateway",
      Tags = ctx:tag_list() } } }.InternetGateway.InternetGatewayId
    ec2:AttachInternetGateway{ InternetGatewayId = id, VpcId = p.vpc_id }
    if p.fail then
      error(aws.Error.new{ service = "ec2", operation = "CreateRoute", code = "InvalidRoute",
        message = "the gateway's route failed", status = 400 })
    end
    return id, { id = id }
  end,
  read = function(_, id) return { id = id } end,
  delete = function(ctx, id, p)
    local ec2 = ctx:client("ec2")
    ec2:DetachInternetGateway{ InternetGatewayId = id, VpcId = p.vpc_id }
    ec2:DeleteInternetGateway{ InternetGatewayId = id }
  end,
  adopt = function(ctx)
    fo.sleep(0.05)
    local list = ctx:client("ec2"):DescribeInternetGateways{ Filters = ctx:tag_filters() }
      .InternetGateways
    for _, g in ipairs(list) do
      if not ctx.known_ids[g.InternetGatewayId] then return g.InternetGatewayId, { id = g.InternetGatewayId } end
    end
    return nil
  end,
})

-- Regression: the undo of a create that failed midway waits for nothing of its own, but
-- what it depends on waits for it. Its journal entry had no record, so no dependencies:
-- the VPC was deleted while the half-made gateway was still attached (DependencyViolation).
function TestRollback:test_a_create_that_failed_midway_is_undone_before_its_dependencies()
  local code, doc, out, err = run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:gateway", "igw", { vpc_id = vpc.id, fail = true })
  end)
  lu.assertEquals(code, 4, out .. err)
  lu.assertStrContains(err, "test:gateway igw (dev::test:gateway::igw): create failed: "
    .. "ec2.CreateRoute: InvalidRoute")
  lu.assertStrContains(out, "Apply failed; rolled back")
  lu.assertEquals(H.inventory(sim), {})
  -- no gateway but the default VPC's
  local gws = sim:invoke("ec2", H.REGION, "DescribeInternetGateways", {}).InternetGateways
  lu.assertEquals(#gws, 1)
  lu.assertEquals(gws[1].Attachments[1].VpcId, sim:invoke("ec2", H.REGION, "DescribeAccountAttributes",
    { AttributeNames = { "default-vpc" } }).AccountAttributes[1].AttributeValues[1].AttributeValue)
  lu.assertEquals(owned(), {})
  lu.assertEquals(#doc.rollback, 2)
  local calls = H.ops(sim)
  local detach, delete_vpc = H.index(calls, "ec2.DetachInternetGateway"),
    H.index(calls, "ec2.DeleteVpc")
  lu.assertNotNil(detach, table.concat(calls, " "))
  lu.assertTrue(delete_vpc > detach, table.concat(calls, " "))
  lu.assertEquals(#sim:calls{ code = "DependencyViolation" }, 0)
end

-- Delete-first replacements rolled back (issue 10): a VPC replaced delete-first takes its
-- subnets and security group with it (replaced delete-first too: they name it); a topic
-- tagged with its id is updated. The rollback re-creates the old VPC first, then its
-- dependents with their old properties naming the re-created VPC (a new id), and puts the
-- topic's old tags back naming it too. Failing at every mutating call of the update, the
-- stack ends as before the run: the same resources with the same properties, but for the
-- ids of what was re-created.
local function vpc_stack(cidr, sg_name)
  return function()
    local vpc = fo.resource("test:vpc", "main", { cidr = cidr }, { delete_first = true })
    fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = cidr:gsub("0%.0/16$", "1.0/24") })
    fo.resource("test:security_group", "web", { vpc_id = vpc.id, name = sg_name })
    fo.resource("test:topic", "alerts", { name = "alerts", tags = { vpc = vpc.id } })
  end
end

-- The state's inputs with every id of `renamed` (new id → old id) written back as before.
local function inputs_as_before(st, renamed)
  local text = require("fo.json").encode((function()
    local out = {}
    for urn, r in pairs(st.resources) do out[urn] = r.inputs end
    return out
  end)())
  for new, old in pairs(renamed) do text = text:gsub(new:gsub("%p", "%%%0"), (old:gsub("%%", "%%%%"))) end
  return require("fo.json").decode(text)
end

function TestRollback:test_rolling_back_delete_first_replacements_restores_them_and_their_dependents()
  local v1, v2 = vpc_stack("10.0.0.0/16", "web"), vpc_stack("10.5.0.0/16", "web2")
  local function fresh()
    F.renew()
    lu.assertEquals((run(v1)), 0)
    return owned()
  end
  fresh()
  local before = H.mutating(sim)
  local code, doc = run(v2)
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.plan.counts.replace, 3)
  local n = H.mutating(sim) - before
  local deletes = 0
  for _, op in ipairs(H.ops(sim, { mutating = true })) do
    if op:match("Delete") then deletes = deletes + 1 end
  end
  for k = 1, n do
    local what = "k=" .. k
    local res0 = fresh()
    types.fail_mutating_call(sim, k)
    local out, err
    code, doc, out, err = run(v2)
    lu.assertEquals(code, 4, ("%s: %s%s"):format(what, out, err))
    local res, st = owned()
    -- the same resources; re-created ones have new ids, which their dependents now name
    local renamed = {}
    for urn, r in pairs(res) do
      lu.assertNotNil(res0[urn], what .. " " .. urn)
      if r.id ~= res0[urn].id then renamed[r.id] = res0[urn].id end
    end
    local inputs0 = {}
    for urn, r in pairs(res0) do inputs0[urn] = r.inputs end
    lu.assertEquals(inputs_as_before(st, renamed), inputs0, what)
    lu.assertEquals(H.ownership_problems(sim, st), {}, what)
    lu.assertEquals(#st.deposed, 0, what)
    local vpc = res["dev::test:vpc::main"].id
    lu.assertEquals(res["dev::test:subnet::a"].inputs.vpc_id, vpc, what)
    lu.assertEquals(res["dev::test:topic::alerts"].inputs.tags.vpc, vpc, what)
    lu.assertEquals(sim:invoke("ec2", H.REGION, "DescribeSubnets",
      { SubnetIds = { res["dev::test:subnet::a"].id } }).Subnets[1].VpcId, vpc, what)
    -- and the rerun converges
    code, _, out, err = run(v2)
    lu.assertEquals(code, 0, what .. " rerun: " .. out .. err)
    lu.assertEquals(H.ownership_problems(sim, H.state(dir)), {}, what)
  end
  lu.assertTrue(deletes >= 3)
end

os.exit(lu.LuaUnit.run())
