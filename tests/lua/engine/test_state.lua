-- The state file: mode 0600, format and schema version, written after every completed
-- operation, a backup of the previous version, a clear refusal of a corrupt file, and the
-- intent journal: an interrupted create is adopted, not made twice.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"
local json = require "fo.json"

local sim, dir
TestState = {}
local run = H.fixture(TestState, function(f) sim, dir = f.sim, f.dir end).run

local function mode_of(path)
  return fo.process.run{ argv = { "stat", "-c", "%a", path } }.stdout:gsub("%s+$", "")
end

function TestState:test_state_file_is_private_versioned_and_backed_up()
  lu.assertEquals((run(H.network())), 0)
  local path = dir .. "/dev.state.json"
  lu.assertEquals(mode_of(path), "600")
  lu.assertEquals(mode_of(dir), "700")
  local st, first = H.state(dir)
  lu.assertEquals(st.format, "fo-state")
  lu.assertEquals(st.version, 1)
  lu.assertEquals(st.target, "sim")
  local vpc = st.resources["dev::test:vpc::main"]
  lu.assertEquals(vpc.type, "test:vpc")
  lu.assertEquals(vpc.region, "us-east-1")
  lu.assertStrMatches(vpc.id, "vpc%-%x+")
  lu.assertEquals(vpc.inputs.cidr, "10.0.0.0/16")
  lu.assertEquals(vpc.outputs.id, vpc.id)
  lu.assertEquals(st.resources["dev::test:subnet::s1"].deps, { "dev::test:vpc::main" })
  lu.assertNil(testlib.read(path .. ".bak"))          -- nothing before the first run
  lu.assertEquals((run(H.network{ display = "Other" })), 0)
  lu.assertEquals(testlib.read(path .. ".bak"), first) -- the state before that run
  lu.assertEquals(mode_of(path .. ".bak"), "600")
  local left = fo.process.run{ argv = { "sh", "-c", "ls -a " .. dir .. " | grep tmp || true" } }
  lu.assertEquals(left.stdout, "")
end

function TestState:test_the_state_names_the_module_of_each_type_it_holds()
  lu.assertEquals((run(H.network())), 0)
  local m = "support.engine_types"
  lu.assertEquals(H.state(dir).types, { ["test:vpc"] = m, ["test:subnet"] = m,
    ["test:security_group"] = m, ["test:topic"] = m, ["test:role"] = m })
  -- kept in step with what the state holds
  lu.assertEquals((run(function() fo.resource("test:topic", "t", { name = "t" }) end)), 0)
  lu.assertEquals(H.state(dir).types, { ["test:topic"] = m })
  -- a type defined outside a module (here: by this test file) has no module to record
  fo.type("test:unmoduled", { schema = { properties = {}, outputs = { "id" } },
    create = function() return "u-1", { id = "u-1" } end, read = function(_, _, _, o) return o end,
    delete = function() end })
  lu.assertNil(require("fo.engine.types").module_of("test:unmoduled"))
  lu.assertEquals((run(function() fo.resource("test:unmoduled", "u", {}) end)), 0)
  lu.assertEquals(H.state(dir).types, {})
end

function TestState:test_state_is_written_after_every_completed_operation()
  local seen
  fo.type("test:observer", {
    schema = { properties = { after = { type = "string" } }, outputs = { "id" } },
    create = function()
      -- the resource this one depends on is already in the state file
      seen = H.state(dir).resources["dev::test:vpc::main"]
      return "obs-1", { id = "obs-1" }
    end,
    read = function() return { id = "obs-1" } end,
    delete = function() end,
  })
  lu.assertEquals((run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:observer", "o", { after = vpc.id })
  end)), 0)
  lu.assertNotNil(seen)
  lu.assertStrMatches(seen.id, "vpc%-%x+")
end

function TestState:test_a_corrupt_state_file_is_refused_and_left_alone()
  testlib.write(dir .. "/dev.state.json", '{"format": "fo-state", "version": 1, "resources": {')
  local code, _, _, err = run(H.network())
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "state file " .. dir .. "/dev.state.json cannot be used: invalid JSON")
  lu.assertStrContains(err, "fo never overwrites a state file it cannot read")
  lu.assertStrContains(err, "There is no backup")
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(testlib.read(dir .. "/dev.state.json"),
    '{"format": "fo-state", "version": 1, "resources": {')
  testlib.write(dir .. "/dev.state.json.bak", "{}")
  testlib.write(dir .. "/dev.state.json", '{"format": "fo-state", "version": 99, "target": "sim"}')
  code, _, _, err = run(H.network())
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "schema version 99; this fo reads version 1")
  lu.assertStrContains(err, "cp " .. dir .. "/dev.state.json.bak " .. dir .. "/dev.state.json")
end

local function state_with_intent(inputs)
  local doc = { format = "fo-state", version = 1, stack = "dev", target = "sim", config = {},
    outputs = {}, resources = {}, deposed = {}, intents = {
      ["dev::test:vpc::main"] = { op = "create", urn = "dev::test:vpc::main", type = "test:vpc",
        name = "main", region = H.REGION, token = "t", generation = 1, inputs = inputs,
        deps = {} } } }
  fo.fs.mkdir_p(dir)
  fo.fs.write_atomic(dir .. "/dev.state.json", json.encode(doc))
end

local VPC_INPUTS = { cidr = "10.0.0.0/16", dns_hostnames = false, tags = {} }

local function one_vpc()
  fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
end

function TestState:test_an_interrupted_create_is_adopted_not_repeated()
  -- as if a run created the VPC (tagged) and died before recording it
  local vpc = sim:invoke("ec2", H.REGION, "CreateVpc", { CidrBlock = "10.0.0.0/16",
    TagSpecifications = { { ResourceType = "vpc", Tags = {
      { Key = "fo:name", Value = "main" }, { Key = "fo:stack", Value = "dev" } } } } }).Vpc
  state_with_intent(VPC_INPUTS)
  sim.recorder:clear()
  local code, doc, out = run(one_vpc)
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Adopted dev::test:vpc::main: " .. vpc.VpcId)
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(H.inventory(sim), { "vpc " .. vpc.VpcId })
  local st = H.state(dir)
  lu.assertEquals(st.resources["dev::test:vpc::main"].id, vpc.VpcId)
  lu.assertEquals(next(st.intents), nil)
  lu.assertEquals(doc.adopted[1].id, vpc.VpcId)
end

function TestState:test_an_interrupted_create_that_made_nothing_is_created_once()
  state_with_intent(VPC_INPUTS)
  local code, _, out = run(one_vpc)
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "left nothing behind; it will be created")
  lu.assertEquals(#H.inventory(sim), 1)
end

function TestState:test_plan_reads_intents_without_writing_the_state()
  state_with_intent(VPC_INPUTS)
  local text = testlib.read(dir .. "/dev.state.json")
  local code = run(one_vpc, { mode = "plan", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertEquals(testlib.read(dir .. "/dev.state.json"), text)
end

function TestState:test_a_stack_keeps_its_target()
  lu.assertEquals((run(one_vpc)), 0)
  local code, _, _, err = run(one_vpc, { target = "aws" })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "stack dev is bound to target sim")
end

os.exit(lu.LuaUnit.run())
