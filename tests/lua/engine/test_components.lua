-- fo.component as a user meets it (fo-run child processes on the simulator's file, one
-- stack through --target aws on a served simulator): resources named <instance>/<name>,
-- instances nested, the plan as a tree, --graph clusters, `state list --tree` and
-- --component, --json events carrying the component, the live view naming the path, a
-- component module found next to the recipe, the refusals (an instance declared twice, a
-- bad name, an unknown option), and a stack whose recipe adopts components keeping every
-- resource (the URNs do not move: "No changes", no cloud call that changes anything).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"
local term = require "fo.engine.term"

local dir
TestComponents = {}
local fixture = H.fixture(TestComponents, function(f) dir = f.dir end)

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

-- A network component (a VPC and, in a nested "subnets" component, one subnet) used for
-- two instances, and a topic at the top level.
local COMPONENTS = [[
local subnets = fo.component("subnets", function(c, args)
  return fo.resource("test:subnet", "a", { vpc_id = args.vpc.id, cidr = args.cidr })
end)
local net = fo.component("net", function(c, args)
  local vpc = fo.resource("test:vpc", "vpc", { cidr = args.cidr .. ".0.0/16" })
  local subnet = subnets("subnets", { vpc = vpc, cidr = args.cidr .. ".1.0/24" })
  return { vpc = vpc, subnet = subnet, path = c.path }
end)
fo.resource("test:topic", "t", { name = "t" })
local p = net("primary", { cidr = "10.0" })
local s = net("standby", { cidr = "10.1" })
fo.output("primary_vpc", p.vpc.id)
fo.output("paths", p.path .. "," .. s.path)
]]

-- The same resources written out by hand, as a recipe did before components.
local BY_HAND = [[
fo.resource("test:topic", "t", { name = "t" })
for _, x in ipairs({ { "primary", "10.0" }, { "standby", "10.1" } }) do
  local vpc = fo.resource("test:vpc", x[1] .. "/vpc", { cidr = x[2] .. ".0.0/16" })
  fo.resource("test:subnet", x[1] .. "/subnets/a", { vpc_id = vpc.id, cidr = x[2] .. ".1.0/24" })
  if x[1] == "primary" then fo.output("primary_vpc", vpc.id) end
end
fo.output("paths", "primary,standby")
]]

local function recipe(body, name)
  local path = dir .. "/" .. (name or "net.lua")
  testlib.write(path, PRELUDE .. body)
  return path
end

local function fo_run(args, env) return testlib.run_fo_in(dir, args, env) end

-- The events of a --json command, each checked against docs/json-events.schema.json.
local function events(r) return json_events.checked(r.stdout) end

local function state()
  return testlib.state_doc(dir)
end

local function urns()
  local out = {}
  for urn in pairs(state().resources) do out[#out + 1] = urn end
  table.sort(out)
  return out
end

local WANT_URNS = { "dev::test:subnet::primary/subnets/a", "dev::test:subnet::standby/subnets/a",
  "dev::test:topic::t", "dev::test:vpc::primary/vpc", "dev::test:vpc::standby/vpc" }

function TestComponents:test_resources_are_named_by_their_instance_path_and_nest()
  local r = fo_run({ recipe(COMPONENTS) })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(urns(), WANT_URNS)
  lu.assertEquals(state().outputs.paths, "primary,standby")
  -- the subnet's reference to its parent's VPC resolved across the nesting
  local st = state()
  lu.assertEquals(st.resources["dev::test:subnet::primary/subnets/a"].inputs.vpc_id,
    st.resources["dev::test:vpc::primary/vpc"].id)
end

function TestComponents:test_the_plan_shows_each_component_with_its_resources_below()
  local r = fo_run({ "--plan", recipe(COMPONENTS) })
  lu.assertEquals(r.code, 0, r.stderr)
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do -- the resource lines and headings, not properties
    if l:match(" create$") or l:match("/ %(%w+%)$") then
      lines[#lines + 1] = (l:gsub("(%S)%s%s+create$", "%1 create"))
    end
  end
  -- headings once per component, resources indented two more per level
  local want = {
    "  +   test:topic t create",
    "      primary/ (net)",
    "  +     test:vpc primary/vpc create",
    "        subnets/ (subnets)",
    "  +       test:subnet primary/subnets/a create",
    "      standby/ (net)",
    "  +     test:vpc standby/vpc create",
    "        subnets/ (subnets)",
    "  +       test:subnet standby/subnets/a create",
  }
  lu.assertEquals(lines, want, r.stdout)
end

function TestComponents:test_a_plan_without_components_is_unchanged()
  local r = fo_run({ "--plan", recipe(BY_HAND) })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertNotStrContains(r.stdout, "(net)")
  lu.assertStrContains(r.stdout, "\n  +   test:vpc primary/vpc ")
  lu.assertStrContains(r.stdout, "\n  +   test:subnet primary/subnets/a ")
end

function TestComponents:test_graph_draws_a_cluster_per_component_inside_its_region()
  local r = fo_run({ "--graph", "-", recipe(COMPONENTS) })
  lu.assertEquals(r.code, 0, r.stderr)
  local dot = r.stdout
  -- primary/subnets inside primary inside the region's cluster
  local region = dot:match('subgraph cluster_1 {(.*)\n  }\n')
  lu.assertNotNil(region, dot)
  local primary = region:match('subgraph "cluster_1_primary" {(.-)\n    }\n')
  lu.assertNotNil(primary, dot)
  lu.assertStrContains(primary, 'label="primary (net)"')
  lu.assertStrContains(primary, '"test:vpc::primary/vpc"')
  local sub = primary:match('subgraph "cluster_1_primary/subnets" {(.-)\n      }')
  lu.assertNotNil(sub, dot)
  lu.assertStrContains(sub, 'label="primary/subnets (subnets)"')
  lu.assertStrContains(sub, '"test:subnet::primary/subnets/a"')
  lu.assertNotStrContains(sub, '"test:vpc::primary/vpc"')
  -- the top-level topic in no component's cluster
  lu.assertNotStrContains(primary, "test:topic::t")
  lu.assertStrContains(region, '\n    "test:topic::t" [')
  lu.assertStrContains(dot, '"test:vpc::primary/vpc" -> "test:subnet::primary/subnets/a";')
  -- balanced braces: Graphviz reads it
  lu.assertEquals(select(2, dot:gsub("{", "")), select(2, dot:gsub("}", "")))
  if testlib.has_command("dot") then
    local svg = fo_run({ "--graph", dir .. "/g.svg", recipe(COMPONENTS) })
    lu.assertEquals(svg.code, 0, svg.stderr)
    lu.assertStrContains(testlib.read(dir .. "/g.svg"), "primary/subnets (subnets)")
  end
end

function TestComponents:test_state_list_shows_the_hierarchy_and_filters_by_component()
  lu.assertEquals(fo_run({ recipe(COMPONENTS) }).code, 0)
  local st = state()
  local function id(urn) return st.resources[urn].id end
  -- one line per resource (scripts), the top level first, then by component
  local r = fo_run({ "state", "list" })
  lu.assertEquals(r.code, 0, r.stderr)
  local first = {}
  for l in r.stdout:gmatch("[^\n]+") do first[#first + 1] = l:match("^(%S+)") end
  lu.assertEquals(first, { "dev::test:topic::t", "dev::test:vpc::primary/vpc",
    "dev::test:subnet::primary/subnets/a", "dev::test:vpc::standby/vpc",
    "dev::test:subnet::standby/subnets/a" })
  -- --tree: under a heading per component
  r = fo_run({ "state", "list", "--tree" })
  lu.assertEquals(r.code, 0, r.stderr)
  local lines = {}
  for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = (l:gsub("%s+", " "):gsub(" $", "")) end
  lu.assertEquals(lines, {
    "dev::test:topic::t us-east-1 " .. id("dev::test:topic::t"),
    "primary/",
    " dev::test:vpc::primary/vpc us-east-1 " .. id("dev::test:vpc::primary/vpc"),
    " subnets/",
    " dev::test:subnet::primary/subnets/a us-east-1 " .. id("dev::test:subnet::primary/subnets/a"),
    "standby/",
    " dev::test:vpc::standby/vpc us-east-1 " .. id("dev::test:vpc::standby/vpc"),
    " subnets/",
    " dev::test:subnet::standby/subnets/a us-east-1 " .. id("dev::test:subnet::standby/subnets/a"),
  })
  lu.assertStrContains(r.stdout, "\n    dev::test:subnet::primary/subnets/a ")
  -- --component: that component and those inside it; --json rows carry it
  r = fo_run({ "state", "list", "--component", "primary", "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  local rows = json_events.last(events(r), "state").resources
  lu.assertEquals(#rows, 2)
  lu.assertEquals(rows[1].component, "primary")
  lu.assertEquals(rows[2].component, "primary/subnets")
  r = fo_run({ "state", "list", "--component", "primary/subnets/" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(select(2, r.stdout:gsub("\n", "")), 1)
  lu.assertStrContains(r.stdout, "dev::test:subnet::primary/subnets/a")
  r = fo_run({ "state", "list", "--component", "prim" })
  lu.assertEquals(r.code, 0)
  lu.assertEquals(r.stdout, "")
  lu.assertStrContains(r.stderr, "holds no resource matching --type, --region, --id, --component")
end

function TestComponents:test_json_events_carry_the_component()
  local r = fo_run({ "--json", recipe(COMPONENTS) })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  local plan = json_events.last(ev, "plan")
  lu.assertEquals(#plan.components, 4)
  lu.assertEquals(plan.components[1].path, "primary")
  lu.assertEquals(plan.components[1].type, "net")
  lu.assertEquals(plan.components[2].path, "primary/subnets")
  lu.assertEquals(plan.components[2].type, "subnets")
  lu.assertStrContains(plan.components[2].where, "net.lua:")
  local by_urn = {}
  for _, s in ipairs(plan.steps) do by_urn[s.urn] = s end
  lu.assertNil(by_urn["dev::test:topic::t"].component)
  lu.assertEquals(by_urn["dev::test:subnet::standby/subnets/a"].component, "standby/subnets")
  local starts, ends = 0, 0
  for _, e in ipairs(ev) do
    if (e.event == "op_start" or e.event == "op_end") and e.name ~= "t" then
      lu.assertEquals(e.component, e.name:match("^(.+)/[^/]+$"), json.encode(e))
      if e.event == "op_start" then starts = starts + 1 else ends = ends + 1 end
    elseif e.event == "op_start" or e.event == "op_end" then
      lu.assertNil(e.component)
    end
  end
  lu.assertEquals(starts, 4)
  lu.assertEquals(ends, 4)
  -- a resource the recipe no longer declares is deleted as part of its component
  local less = COMPONENTS:gsub('local s = net%("standby", { cidr = "10.1" }%)\n', "")
    :gsub("s%.path", '"standby"')
  r = fo_run({ "--json", "--yes", recipe(less) })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events(r)
  local deleted = {}
  for _, s in ipairs(json_events.last(ev, "plan").steps) do
    if s.action == "delete" then deleted[s.name] = s.component or "(top)" end
  end
  -- standby is no component of this recipe any more: its resources are at the top level
  lu.assertEquals(deleted, { ["standby/vpc"] = "(top)", ["standby/subnets/a"] = "(top)" })
end

function TestComponents:test_a_stack_keeps_its_resources_when_its_recipe_adopts_components()
  local path = recipe(BY_HAND)
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  local before = state()
  recipe(COMPONENTS)
  r = fo_run({ "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertFalse(json_events.last(ev, "plan").changed)
  lu.assertEquals(json_events.last(ev, "summary").done,
    { create = 0, update = 0, replace = 0, delete = 0, rollback = 0 })
  lu.assertEquals(json_events.last(ev, "summary").calls.mutating, 0)
  local after = state()
  for urn, rec in pairs(before.resources) do
    lu.assertEquals(after.resources[urn].id, rec.id, urn)
  end
  lu.assertEquals(urns(), WANT_URNS)
  r = fo_run({ path })
  lu.assertStrContains(r.stdout, "No changes. The stack matches the recipe (5 resources).")
  -- and back: the hand-written recipe matches the stack the components made
  recipe(BY_HAND)
  r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
end

function TestComponents:test_a_component_module_next_to_the_recipe_is_required()
  require("fo.fs").mkdir_p(dir .. "/components", tonumber("755", 8))
  testlib.write(dir .. "/components/net.lua", [[
return fo.component("net", function(c, args)
  return fo.resource("test:vpc", "vpc", { cidr = args.cidr }, { region = args.region })
end)
]])
  local path = recipe([[
local net = require "components.net"
local v = net("edge", { cidr = "10.9.0.0/16" }, { region = "eu-west-1" })
-- inside: the instance's region is its resources' default
local inner = fo.component("inner", function(c)
  return fo.resource("test:vpc", "vpc", { cidr = "10.8.0.0/16" }), c.region
end)
local _, region = inner("in", nil, { region = "eu-central-1" })
fo.output("region", region)
]])
  -- from another directory: the module is found relative to the recipe, not the cwd
  local r = fo.process.run{ argv = { "sh", "-c", 'cd / && exec "$0" "$@"', testlib.fo_run, path },
    env = { FO_STATE_DIR = dir .. "/.fo" }, timeout = 60 }
  lu.assertEquals(r.code, 0, r.stderr)
  local st = state()
  lu.assertEquals(st.resources["dev::test:vpc::edge/vpc"].region, "eu-west-1")
  lu.assertEquals(st.resources["dev::test:vpc::in/vpc"].region, "eu-central-1")
  lu.assertEquals(st.outputs.region, "eu-central-1")
end

-- Two recipes in one process (fo.testing, the REPL), each with its own components/net.lua:
-- each run gets its own directory's module, as the file is now.
function TestComponents:test_each_recipe_gets_its_own_directorys_module_in_one_process()
  local fs = require "fo.fs"
  local function project(sub, cidr)
    fs.mkdir_p(dir .. "/" .. sub .. "/components", tonumber("755", 8))
    testlib.write(dir .. "/" .. sub .. "/components/net.lua", ([[
return fo.component("net", function() return fo.resource("test:vpc", "vpc", { cidr = %q }) end)
]]):format(cidr))
    testlib.write(dir .. "/" .. sub .. "/r.lua", PRELUDE .. 'require("components.net")("n")\n')
    return dir .. "/" .. sub .. "/r.lua"
  end
  local a, b = project("a", "10.1.0.0/16"), project("b", "10.2.0.0/16")
  local code, doc, out, err = fixture.run(a, { stack = "a", mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.steps[1].changes[1].new, "10.1.0.0/16")
  code, doc, out, err = fixture.run(b, { stack = "b", mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.steps[1].changes[1].new, "10.2.0.0/16")
  -- edited between two runs: the run sees the edit
  project("a", "10.3.0.0/16")
  code, doc, out, err = fixture.run(a, { stack = "a", mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.steps[1].changes[1].new, "10.3.0.0/16")
  lu.assertEquals(doc.plan.steps[1].name, "n/vpc")
end

-- A component module is one of the recipe's files: a saved plan made before it changed is
-- refused, naming it; --only selects a component's resources by their path.
function TestComponents:test_saved_plans_and_only_know_component_modules()
  require("fo.fs").mkdir_p(dir .. "/components", tonumber("755", 8))
  local module = [[
return fo.component("net", function(c, args)
  local vpc = fo.resource("test:vpc", "vpc", { cidr = args.cidr .. ".0.0/16" })
  return fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = args.cidr .. ".1.0/24" })
end)
]]
  testlib.write(dir .. "/components/net.lua", module)
  local path = recipe('local net = require "components.net"\nnet("primary", { cidr = "10.0" })\n'
    .. 'net("standby", { cidr = "10.1" })\n')
  local r = fo_run({ "--plan", "--out", dir .. "/p.plan", path })
  lu.assertEquals(r.code, 0, r.stderr)
  testlib.write(dir .. "/components/net.lua", (module:gsub('"%.1%.0/24" }', '".1.0/24", public_ip = true }')))
  r = fo_run({ "apply", dir .. "/p.plan" })
  lu.assertEquals(r.code, 1, r.stderr) -- a plan that no longer applies
  lu.assertStrContains(r.stderr, "recipe file components/net.lua changed since the plan")
  lu.assertEquals(urns(), {})
  r = fo_run({ "--only", "*::primary/*", "--yes", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(urns(), { "dev::test:subnet::primary/a", "dev::test:vpc::primary/vpc" })
end

-- depends_on (and replace_triggered_by) names inside a component mean its own resources
-- first; a name it does not hold still means the recipe's.
function TestComponents:test_names_in_depends_on_are_the_components_own_first()
  local path = recipe([[
fo.resource("test:topic", "t", { name = "top" })
local n = fo.component("net", function(c)
  fo.resource("test:topic", "t", { name = c.name .. "-t" })
  fo.resource("test:vpc", "vpc", { cidr = "10.5.0.0/16" }, { depends_on = { "t", "test:topic::t" } })
  fo.resource("test:vpc", "other", { cidr = "10.6.0.0/16" }, { depends_on = "test:topic::top-level" })
end)
fo.resource("test:topic", "top-level", { name = "top-level" })
n("a")
]])
  local r = fo_run({ path })
  lu.assertEquals(r.code, 0, r.stderr)
  local st = state()
  lu.assertEquals(st.resources["dev::test:vpc::a/vpc"].deps, { "dev::test:topic::a/t" })
  lu.assertEquals(st.resources["dev::test:vpc::a/other"].deps, { "dev::test:topic::top-level" })
end

-- Mistakes: one message naming the place, exit 1, no traceback, nothing created.
function TestComponents:test_refusals_name_the_place()
  local cases = {
    { 'local n = fo.component("net", function() fo.resource("test:topic", "t", { name = "t" }) end)\n'
      .. 'n("a")\nn("a")\n', "net.lua:5: component a is declared twice (first at " .. dir
      .. "/net.lua:4)", 3 },
    { 'local n = fo.component("net", function() end)\nn("a/b")\n',
      'the instance name must be a string of letters, digits, _ . - (no /', 2 },
    { 'local n = fo.component("net", function() end)\nn("a", {}, { parent = 1 })\n',
      "component net a: unknown option parent (options: region)", 2 },
    { 'fo.component("net")\n', 'fo.component("net", fn): fn must be a function(c, args)', 1 },
    { 'fo.component("a b", function() end)\n', 'fo.component(type, fn): type must be a string', 1 },
  }
  for _, c in ipairs(cases) do
    local r = fo_run({ recipe(c[1]) })
    lu.assertEquals(r.code, 1, c[1] .. r.stderr)
    lu.assertStrContains(r.stderr, c[2])
    lu.assertStrContains(r.stderr, ("net.lua:%d"):format(c[3] + 2)) -- the prelude's 2 lines
    lu.assertNotStrContains(r.stderr, "traceback")
    lu.assertEquals(r.stdout, "")
  end
  -- the same instance name under two parents is two components
  local r = fo_run({ recipe('local leaf = fo.component("leaf", function(c) '
    .. 'fo.resource("test:topic", "t", { name = (c.path:gsub("/", "-")) }) end)\n'
    .. 'local n = fo.component("net", function(c) leaf("x") end)\nn("a")\nn("b")\n') })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(urns(), { "dev::test:topic::a/x/t", "dev::test:topic::b/x/t" })
end

-- The live view on a terminal (script(1): a pseudo-terminal) names each operation with its
-- component path.
function TestComponents:test_the_live_view_names_the_component_path()
  lu.skipIf(not testlib.has_command("script"), "script(1) (util-linux) is needed for a pseudo-terminal")
  local path = recipe(COMPONENTS)
  local r = fo.process.run{ argv = { "script", "-qec",
    ("stty cols 100 rows 30; %s %s"):format(testlib.fo_run, path), "/dev/null" },
    -- each AWS call 150 ms: every operation is in flight for more than a frame (0.1 s)
    env = { FO_STATE_DIR = dir .. "/.fo", TERM = "xterm", FO_SIM_LATENCY_MS = "150" },
    timeout = 60 }
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local plain = term.strip(r.stdout)
  lu.assertStrContains(r.stdout, "\27[J") -- the live view
  lu.assertStrMatches(plain, ".*[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] creating test:subnet primary/subnets/a .*")
  lu.assertStrContains(plain, "primary/ (net)")
end

-- --target aws on a served simulator: the same names, the same "No changes" after the
-- recipe adopts components.
function TestComponents:test_through_target_aws()
  local sim = fo.sim.new{ seed = 11 }
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local env = testlib.served_sim_env(srv.port, "us-east-1", dir, { FO_STATE_DIR = dir .. "/.fo" })
  local function run(args)
    return fo.spawn(function() return testlib.run_fo(args, { env = env }) end):join()
  end
  local path = recipe(BY_HAND)
  local r = run({ "--target", "aws", "--stack", "prod", "--yes", path })
  lu.assertEquals(r.code, 0, r.stderr)
  recipe(COMPONENTS)
  local mutating = sim:count{ mutating = true }
  r = run({ "--stack", "prod", "--yes", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertEquals(json_events.last(ev, "plan").target, "aws")
  lu.assertFalse(json_events.last(ev, "plan").changed)
  lu.assertEquals(sim:count{ mutating = true }, mutating) -- AWS saw no change
  lu.assertEquals(#json_events.last(ev, "plan").components, 4)
  r = run({ "state", "list", "--tree", "--stack", "prod" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "primary/\n  prod::test:vpc::primary/vpc ")
  lu.assertStrContains(r.stdout, "  subnets/\n    prod::test:subnet::primary/subnets/a ")
  -- a change inside a component, applied through AWS's API: the plan names its component
  recipe((COMPONENTS:gsub('{ cidr = "10.1" }', '{ cidr = "10.2" }')))
  r = run({ "--stack", "prod", "--yes", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events(r)
  local replaced = {}
  for _, e in ipairs(json_events.all(ev, "op_end")) do
    if e.ok then replaced[#replaced + 1] = e.component or "(top)" end
  end
  lu.assertTrue(#replaced > 0)
  for _, c in ipairs(replaced) do lu.assertStrContains(c, "standby") end
  lu.assertEquals(#sim:invoke("ec2", "us-east-1", "DescribeVpcs",
    { Filters = { { Name = "cidr", Values = { "10.2.0.0/16" } } } }).Vpcs, 1)
  srv:close()
end

os.exit(lu.LuaUnit.run())
