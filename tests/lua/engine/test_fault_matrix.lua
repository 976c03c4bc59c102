-- The fault matrix (issue 5, "Proof"): a 22-resource stack over four services (EC2 VPCs,
-- subnets and security groups, SNS topics, IAM roles, Route 53 zones: support.engine_graph),
-- with fan-out and fan-in, is applied (v1); then v2 updates in place, replaces
-- (create-before-delete), creates and deletes. Every mutating call k = 1..N of the
-- v2 run fails in turn (the simulator's fail_mutating_call knob):
--   * k in phase 1 (creates, updates, replacements): the run is rolled back (exit 4), the
--     simulator holds exactly what it held before the run (a canonical dump of every
--     account, region and service: resources, properties, tags) and the state file is the
--     pre-run state (resources, ids, inputs, outputs, intents, deposed);
--   * k in phase 2 (deletions, after the commit point, docs/engine.md): exit 3, every create
--     and update stands, the state records exactly what the simulator holds;
-- and in both cases a rerun without the fault converges (to exactly what a clean v2 run
-- leaves, in phase 2), with nothing leaked or duplicated.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local G = require "support.engine_graph"

TestFaultMatrix = {}

local V1, V2 = G.recipe(1), G.recipe(2)

-- The operations of phase 2 (deletions of resources and of replaced instances).
local DELETES = { ["ec2.DeleteVpc"] = true, ["ec2.DeleteSubnet"] = true,
  ["ec2.DeleteSecurityGroup"] = true, ["sns.DeleteTopic"] = true, ["iam.DeleteRole"] = true,
  ["route53.DeleteHostedZone"] = true }

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- A fresh simulator and state directory with v1 applied.
local function with_v1()
  local sim, dir = H.sim(), H.dir()
  local code, _, out, err = H.run(V1, { sim = sim, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  sim.recorder:clear()
  return sim, dir
end

-- Nothing leaked, nothing twice, nothing recorded that is not there (H.ownership_problems).
-- State records without the tokens of their creates (new for every create).
local function without_tokens(resources)
  local out = {}
  for urn, r in pairs(resources) do
    local c = {}
    for k, v in pairs(r) do if k ~= "token" then c[k] = v end end
    out[urn] = c
  end
  return out
end

local function assert_no_leak_no_duplicate(sim, dir, what)
  local problems = H.ownership_problems(sim, H.state(dir))
  lu.assertEquals(problems, {}, what .. ": " .. table.concat(problems, "; "))
end

function TestFaultMatrix:test_fault_at_every_mutating_call_of_an_update_run()
  -- The clean run: N and where phase 2 begins.
  local sim, dir = with_v1()
  local st1 = H.state(dir)
  lu.assertTrue(count(st1.resources) >= 20, "a graph of at least 20 resources")
  local code, doc, out, err = H.run(V2, { sim = sim, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  local c = doc.plan.counts
  lu.assertTrue(c.create >= 4 and c.update >= 6 and c.replace >= 3 and c.delete >= 3,
    require("fo.json").encode(c))
  local calls = H.ops(sim, { mutating = true })
  local n = #calls
  local n1 = 0 -- the last call of phase 1: after it, only deletions
  for i, op in ipairs(calls) do if not DELETES[op] then n1 = i end end
  for i = 1, n1 do lu.assertNil(DELETES[calls[i]], "phase 1 deletes nothing: " .. calls[i]) end
  lu.assertTrue(n1 >= 15 and n - n1 >= 6, ("N = %d, phase 1: %d calls"):format(n, n1))
  local clean_dump, clean_state = H.sim_dump(sim, { times = false }), H.state(dir)
  H.cleanup(dir)

  local codes = {}
  for k = 1, n do
    local what = ("k=%d (%s)"):format(k, calls[k])
    sim, dir = with_v1()
    local dump0, state0 = H.sim_dump(sim), H.state(dir)
    sim:set_knob("fail_mutating_call", k)
    code, doc, out, err = H.run(V2, { sim = sim, dir = dir })
    sim:set_knob("fail_mutating_call", 0)
    lu.assertStrContains(err, "FoInjectedFault", false, what)
    codes[code] = (codes[code] or 0) + 1
    if k <= n1 then
      lu.assertEquals(code, 4, what .. ": rolled back\n" .. out .. err)
      local d = H.first_difference(dump0, H.sim_dump(sim))
      lu.assertNil(d, what .. ": the simulator is not as before the run: " .. tostring(d))
      -- (the run wrote the state, its intents then their undoing: only the serial moved on)
      local state1 = H.state(dir)
      lu.assertTrue(state1.serial > state0.serial, what .. ": the serial counts the run's writes")
      state1.serial = state0.serial
      d = H.first_difference(state0, state1)
      lu.assertNil(d, what .. ": the state is not as before the run: " .. tostring(d))
      lu.assertEquals(doc.status, "rolled_back", what)
    else
      lu.assertEquals(code, 3, what .. ": a deletion after the commit point\n" .. out .. err)
      lu.assertNotNil(tostring(doc.errors[1].action):match("^delete"), what)
      assert_no_leak_no_duplicate(sim, dir, what)
      -- every create and update of phase 1 stands: the declared resources are v2's
      local st = H.state(dir)
      for urn, r in pairs(clean_state.resources) do
        lu.assertEquals(st.resources[urn] and st.resources[urn].inputs, r.inputs, what .. " " .. urn)
      end
    end
    -- the rerun without the fault converges, and then has nothing to do
    code, doc, out, err = H.run(V2, { sim = sim, dir = dir })
    lu.assertEquals(code, 0, what .. ": rerun\n" .. out .. err)
    assert_no_leak_no_duplicate(sim, dir, what .. " rerun")
    if k > n1 then
      local d = H.first_difference(clean_dump, H.sim_dump(sim, { times = false }))
      lu.assertNil(d, what .. ": the rerun does not end as a clean run: " .. tostring(d))
      d = H.first_difference(without_tokens(clean_state.resources),
        without_tokens(H.state(dir).resources))
      lu.assertNil(d, what .. ": the rerun's state is not a clean run's: " .. tostring(d))
    end
    sim.recorder:clear()
    code, doc = H.run(V2, { sim = sim, dir = dir })
    lu.assertEquals(code, 0, what)
    lu.assertEquals(H.mutating(sim), 0, what .. ": a second rerun changes nothing")
    H.cleanup(dir)
  end
  print(("\nfault matrix: N = %d mutating calls (phase 1: k = 1..%d rolled back exactly; "
    .. "phase 2: k = %d..%d stop after the commit point); exit codes: 4 × %d, 3 × %d")
    :format(n, n1, n1 + 1, n, codes[4] or 0, codes[3] or 0))
end

-- The first apply of the same 22 resources fails at each of its mutating calls in turn:
-- each time the simulator holds exactly what it held before (nothing of the stack) and the
-- state records nothing; the rerun converges.
function TestFaultMatrix:test_fault_at_every_mutating_call_of_a_first_apply()
  local sim, dir = H.sim(), H.dir()
  local code, _, out, err = H.run(V1, { sim = sim, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  local calls = H.ops(sim, { mutating = true })
  H.cleanup(dir)
  for k = 1, #calls do
    local what = ("k=%d (%s)"):format(k, calls[k])
    sim, dir = H.sim(), H.dir()
    local dump0 = H.sim_dump(sim)
    sim:set_knob("fail_mutating_call", k)
    code, _, out, err = H.run(V1, { sim = sim, dir = dir })
    sim:set_knob("fail_mutating_call", 0)
    lu.assertEquals(code, 4, what .. "\n" .. out .. err)
    local d = H.first_difference(dump0, H.sim_dump(sim))
    lu.assertNil(d, what .. ": the simulator is not as before the run: " .. tostring(d))
    local st = H.state(dir)
    lu.assertEquals({ st.resources, st.deposed, st.intents, st.outputs }, { {}, {}, {}, {} }, what)
    code, _, out, err = H.run(V1, { sim = sim, dir = dir })
    lu.assertEquals(code, 0, what .. ": rerun\n" .. out .. err)
    assert_no_leak_no_duplicate(sim, dir, what .. " rerun")
    H.cleanup(dir)
  end
  print(("\nfault matrix, first apply: k = 1..%d rolled back exactly"):format(#calls))
end

os.exit(lu.LuaUnit.run())
