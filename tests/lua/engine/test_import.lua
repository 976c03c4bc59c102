-- Import (fo.resource's import option, fo-run state import): every AWS type fo has, made
-- outside the stack, imported with no difference and no mutating call, a rerun that changes
-- nothing; a difference shown in the plan and made by the apply; a replacement said loudly;
-- the refusals (no such resource, an id of another format, a resource the stack already
-- manages); the command form; and a run through --target aws on a served simulator.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"
require "fo.aws.resources"

local TRADING = testlib.tests_dir .. "/../recipes/trading.lua"
local REGION = H.REGION

local f, sim, dir
TestImport = {}
f = H.fixture(TestImport, function(x) sim, dir = x.sim, x.dir end)

local function ec2()
  return sim:client("ec2", { region = REGION })
end

-- A VPC made by hand (not by fo): its id.
local function hand_vpc(cidr, tags)
  local list = {}
  for k, v in pairs(tags or {}) do list[#list + 1] = { Key = k, Value = v } end
  return ec2():CreateVpc{ CidrBlock = cidr or "10.9.0.0/16",
    TagSpecifications = #list > 0 and { { ResourceType = "vpc", Tags = list } } or nil }.Vpc.VpcId
end

local function vpc_recipe(props, opts)
  return function() fo.resource("aws:ec2:vpc", "main", props, opts) end
end

local function mutating()
  return H.ops(sim, { mutating = true })
end

-- Every AWS type fo registers: the trading recipe, applied by stack dev in one state
-- directory, makes at least one of each (over two configurations: its VPC endpoints, or its
-- NAT gateways); the same recipe, its every declaration given import = the id the first
-- stack recorded, is run by stack dev in another directory (a state that knows none of
-- them). The plan imports all and changes nothing, the apply makes no mutating call, a
-- rerun imports nothing.
local function import_trading(config)
  local seed_dir = H.dir()
  local code, _, out, err = H.run(TRADING, { sim = sim, dir = seed_dir, config = config,
    yes = true })
  lu.assertEquals(code, 0, out .. err)
  local seed = H.state(seed_dir)
  H.cleanup(seed_dir)
  local ids, have = {}, {}
  for _, r in pairs(seed.resources) do
    ids[r.type .. "::" .. r.name] = r.id
    have[r.type] = true
  end
  local function wrapped()
    local resource = fo.resource
    local recipe = require "fo.engine.recipe"
    local component = require "fo.engine.component"
    fo.resource = function(t, n, p, o)
      o = o or {}
      -- (the name as recorded: inside a component, with its path)
      local full = component.place(recipe.current("fo.resource"), n)
      o.import = assert(ids[t .. "::" .. full], t .. "::" .. full)
      return resource(t, n, p, o)
    end
    local ok, e = pcall(dofile, TRADING)
    fo.resource = resource
    if not ok then error(e, 0) end
  end
  local n = 0
  for _ in pairs(ids) do n = n + 1 end

  sim.recorder:clear()
  local doc
  code, doc, out, err = H.run(wrapped, { sim = sim, dir = dir, config = config, mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertEquals(doc.plan.counts, { import = n, create = 0, update = 0, replace = 0,
    delete = 0, noop = n })
  for _, s in ipairs(doc.plan.steps) do
    lu.assertEquals(s.import, ids[s.type .. "::" .. s.name], s.urn)
    lu.assertEquals(s.action, "noop", s.urn .. ": " .. json.encode(s.changes))
  end
  lu.assertStrContains(out, ("Plan: %d to import, 0 to add"):format(n))
  lu.assertNil(next(H.state(dir).resources)) -- --plan records no import

  code, doc, out, err = H.run(wrapped, { sim = sim, dir = dir, config = config, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertStrContains(out, ("Import complete: %d imported, no other change."):format(n))
  local st = H.state(dir)
  for key, id in pairs(ids) do
    lu.assertEquals(st.resources["dev::" .. key].id, id, key)
  end

  code, doc, out, err = H.run(wrapped, { sim = sim, dir = dir, config = config, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertNil(doc.plan.counts.import)
  lu.assertStrContains(out, "No changes.")
  lu.assertNotStrContains(out, "Import ")
  return have
end

function TestImport:test_every_type_imports_with_no_difference()
  -- https: the certificates too (ACM issues them once the zone's domain is delegated)
  sim:set_knob("registered_domains", { "trading.fo.test" })
  local have = import_trading({ alarmEmail = "ops@example.com", https = "true" })
  f.renew()
  for t in pairs(import_trading({ private_egress = "nat" })) do have[t] = true end
  for _, t in ipairs(require("fo.engine.types").names()) do
    if t:match("^aws:") then lu.assertTrue(have[t], t .. ": the trading recipe makes none") end
  end
end

-- What the declaration says and the resource lacks is the plan's update; the apply makes
-- it (and creates nothing); the import option left in the recipe does nothing more.
function TestImport:test_the_plan_shows_what_the_first_apply_changes()
  local id = hand_vpc("10.9.0.0/16", { Name = "legacy" })
  local r = vpc_recipe({ cidr_block = "10.9.0.0/16", enable_dns_hostnames = true,
    tags = { Name = "legacy", Team = "core" } }, { import = id })
  sim.recorder:clear()
  local code, doc, out, err = f.run(r, { mode = "plan", json = false })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  local s = doc.plan.steps[1]
  lu.assertEquals({ s.action, s.import }, { "update", id })
  lu.assertStrContains(out, "import " .. id .. ", then update in place")
  lu.assertStrContains(out, "enable_dns_hostnames: false → true")
  lu.assertStrContains(out, 'tags.Team:')
  lu.assertStrContains(out, "(--plan: not recorded)")
  lu.assertNil(H.state(dir).resources["dev::aws:ec2:vpc::main"])

  code, doc, out, err = f.run(r, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), { "ec2.ModifyVpcAttribute", "ec2.CreateTags" })
  lu.assertStrContains(out, "Apply complete: 1 imported, 0 created, 1 updated")
  local rec = H.state(dir).resources["dev::aws:ec2:vpc::main"]
  lu.assertEquals(rec.id, id)
  lu.assertEquals(rec.inputs.tags, { Name = "legacy", Team = "core" })
  sim.recorder:clear()
  code, doc, out, err = f.run(r, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertStrContains(out, "No changes.")
end

-- A declaration that differs in a property forcing replacement: the plan says, loudly and
-- before any change, that the apply deletes the imported resource.
function TestImport:test_an_import_that_would_be_replaced_is_said_loudly()
  local id = hand_vpc("10.9.0.0/16")
  sim.recorder:clear()
  local code, doc, out, err = f.run(vpc_recipe({ cidr_block = "10.8.0.0/16" }, { import = id }),
    { mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertEquals(doc.plan.steps[1].action, "replace")
  lu.assertStrContains(out, "import " .. id .. ", then REPLACE")
  lu.assertStrContains(out, "(the imported resource is deleted)")
  lu.assertStrContains(err, "followed by a REPLACEMENT")
  lu.assertStrContains(err, "DELETES the imported resource " .. id)
  lu.assertStrContains(err, "cidr_block")
end

-- Refusals: each names the resource and the id, exits 1, and records nothing.
function TestImport:test_refusals_record_nothing()
  local function refused(r, want)
    local code, _, out, err = f.run(r, { yes = true })
    lu.assertEquals(code, 1, out .. err)
    lu.assertStrContains(err, want)
    return err
  end
  -- no such resource
  local err = refused(vpc_recipe({ cidr_block = "10.9.0.0/16" }, { import = "vpc-0123abcd" }),
    "aws:ec2:vpc main: cannot import vpc-0123abcd: there is no such aws:ec2:vpc in us-east-1")
  lu.assertStrContains(err, "nothing was recorded")
  lu.assertEquals(H.state(dir).resources, {})
  -- an id of another type's format, at the declaration's line
  err = refused(vpc_recipe({ cidr_block = "10.9.0.0/16" }, { import = "subnet-0123abcd" }),
    'import id "subnet-0123abcd" is not an id of this type')
  lu.assertStrContains(err, "vpc-")
  refused(vpc_recipe({ cidr_block = "10.9.0.0/16" }, { import = 42 }),
    "import takes the resource's id as a string")
  -- what another fo stack tagged as its own
  local theirs = hand_vpc("10.6.0.0/16", { ["fo:stack"] = "prod", ["fo:name"] = "core" })
  refused(vpc_recipe({ cidr_block = "10.6.0.0/16" }, { import = theirs }),
    'it is tagged as resource "core" of fo stack "prod", which manages it')
  -- the same for every taggable type (an SNS topic here; all of them below)
  local topic = sim:client("sns", { region = REGION }):CreateTopic{ Name = "alerts", Tags = {
    { Key = "fo:stack", Value = "prod" }, { Key = "fo:name", Value = "alerts" } } }.TopicArn
  refused(function() fo.resource("aws:sns:topic", "alerts", { name = "alerts" }, { import = topic })
  end, 'aws:sns:topic alerts: cannot import ' .. topic .. ': it is tagged as resource "alerts" '
    .. 'of fo stack "prod", which manages it')
  lu.assertEquals(H.state(dir).resources, {})
  -- a route's id is composite
  refused(function()
    fo.resource("aws:ec2:route", "r", { route_table_id = "rtb-01", destination_cidr_block =
      "0.0.0.0/0", gateway_id = "igw-01" }, { import = "rtb-01" })
  end, "<route table id>_<destination>")
  -- a resource the stack already manages, under another name or the same name
  local code, _, out, e2 = f.run(vpc_recipe({ cidr_block = "10.9.0.0/16" }), { yes = true })
  lu.assertEquals(code, 0, out .. e2)
  local managed = H.state(dir).resources["dev::aws:ec2:vpc::main"].id
  refused(function()
    fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.9.0.0/16" })
    fo.resource("aws:ec2:vpc", "other", { cidr_block = "10.9.0.0/16" }, { import = managed })
  end, "the stack already manages " .. managed .. " as dev::aws:ec2:vpc::main")
  local other = hand_vpc("10.7.0.0/16")
  refused(vpc_recipe({ cidr_block = "10.9.0.0/16" }, { import = other }),
    "but the stack already manages dev::aws:ec2:vpc::main as " .. managed)
  lu.assertNil(H.state(dir).resources["dev::aws:ec2:vpc::other"])
  -- the option stays harmless once imported: the same id is no import at all
  sim.recorder:clear()
  code, _, out, e2 = f.run(vpc_recipe({ cidr_block = "10.9.0.0/16" }, { import = managed }),
    { yes = true })
  lu.assertEquals(code, 0, out .. e2)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(mutating(), {})
end

-- A targeted run (--only) imports what it selects, nothing else.
function TestImport:test_only_imports_what_it_selects()
  local a, b = hand_vpc("10.1.0.0/16"), hand_vpc("10.2.0.0/16")
  local r = function()
    fo.resource("aws:ec2:vpc", "a", { cidr_block = "10.1.0.0/16" }, { import = a })
    fo.resource("aws:ec2:vpc", "b", { cidr_block = "10.2.0.0/16" }, { import = b })
  end
  sim.recorder:clear()
  local code, doc, out, err = f.run(r, { yes = true, only = { "aws:ec2:vpc::a" } })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertEquals(doc.plan.counts.import, 1)
  local st = H.state(dir)
  lu.assertEquals(st.resources["dev::aws:ec2:vpc::a"].id, a)
  lu.assertNil(st.resources["dev::aws:ec2:vpc::b"])
  code, doc, out, err = f.run(r, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.counts.import, 1)
  lu.assertEquals(H.state(dir).resources["dev::aws:ec2:vpc::b"].id, b)
  lu.assertEquals(mutating(), {})
end

-- A saved plan (--plan --out) that imports: fo-run apply FILE imports and applies it.
function TestImport:test_a_saved_plan_imports()
  local env = { FO_STATE_DIR = dir .. "/.fo" }
  local path = dir .. "/net.lua"
  testlib.write(path, 'require "fo.aws.resources"\n'
    .. 'fo.resource("aws:ec2:vpc", "seed", { cidr_block = "10.5.0.0/16" })\n')
  local r = testlib.run_fo({ path }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  local id = testlib.state_doc(dir).resources[
    "dev::aws:ec2:vpc::seed"].id
  r = testlib.run_fo({ "state", "rm", "seed" }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  testlib.write(path, ('require "fo.aws.resources"\n'
    .. 'fo.resource("aws:ec2:vpc", "seed", { cidr_block = "10.5.0.0/16", tags = { T = "x" } }, '
    .. '{ import = %q })\n'):format(id))
  r = testlib.run_fo({ path, "--plan", "--out", dir .. "/p.json" }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "import " .. id .. ", then update in place")
  lu.assertNil(testlib.state_doc(dir).resources[
    "dev::aws:ec2:vpc::seed"])
  r = testlib.run_fo({ "apply", dir .. "/p.json" }, { env = env })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Apply complete: 1 imported, 0 created, 1 updated")
  local rec = testlib.state_doc(dir).resources[
    "dev::aws:ec2:vpc::seed"]
  lu.assertEquals({ rec.id, rec.inputs.tags }, { id, { T = "x" } })
end

-- fo-run state import TYPE::NAME ID, in-process as fo-run runs it.
local function command(args, extra)
  local out, err = {}, {}
  local report = require("fo.engine.report").new{ out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end, stack = "dev", mode = "state-import" }
  local opts = { stack = "dev", dir = dir, sim = sim, command = "fo-run state import" }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local code = require("fo.engine.commands").run("state import", opts, args, report)
  return code, table.concat(out), table.concat(err)
end

function TestImport:test_the_command_imports_one_resource()
  -- the stack exists (its state names its target)
  local code, _, out, err = f.run(function()
    fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  local id = hand_vpc("10.9.0.0/16", { Name = "legacy" })
  sim.recorder:clear()
  code, out, err = command({ "aws:ec2:vpc::main", id })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), {})
  lu.assertStrContains(out, "Imported " .. id .. " as dev::aws:ec2:vpc::main")
  local rec = H.state(dir).resources["dev::aws:ec2:vpc::main"]
  lu.assertEquals({ rec.id, rec.region, rec.inputs.cidr_block, rec.inputs.tags },
    { id, REGION, "10.9.0.0/16", { Name = "legacy" } })
  -- the recipe that declares it compares with what was read
  code, _, out, err = f.run(function()
    fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
    fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.9.0.0/16", tags = { Name = "legacy" } })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(mutating(), {})
  -- refusals: already managed (both ways), no such id, a bad format, an unknown type
  local serial = H.state(dir).serial
  code, _, err = command({ "aws:ec2:vpc::main", id })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "already manages dev::aws:ec2:vpc::main")
  code, _, err = command({ "aws:ec2:vpc::again", id })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "the stack already manages " .. id .. " as dev::aws:ec2:vpc::main")
  code, _, err = command({ "aws:ec2:vpc::gone", "vpc-0123abcd" })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "there is no such aws:ec2:vpc in us-east-1")
  code, _, err = command({ "aws:ec2:vpc::bad", "sg-0123abcd" })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "is not an id of this type")
  code, _, err = command({ "aws:ec2:vcp::x", id })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "unknown resource type aws:ec2:vcp")
  code, _, err = command({ "main", id })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "TYPE::NAME")
  lu.assertEquals(H.state(dir).serial, serial)
end

-- What another fo stack made is refused, for every taggable AWS type: the trading recipe,
-- applied by stack prod, makes one of each (over two configurations); stack dev's command
-- imports each by its id and is refused, naming prod; prod itself, in another state
-- directory, is refused the same resource under another name (fo:name says which it is).
-- Nothing is recorded, and no call changes anything.
function TestImport:test_every_taggable_type_refuses_another_stacks_resource()
  local ids = require "fo.aws.resources.import_ids"
  local types = require "fo.engine.types"
  local function stack_exists(stack, d)
    local code, _, out, err = H.run(function()
      fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
    end, { sim = sim, dir = d, stack = stack, yes = true })
    lu.assertEquals(code, 0, out .. err)
  end
  local seen = {}
  local function refuse_all(config)
    stack_exists("dev", dir)
    local prod_dir = H.dir()
    stack_exists("prod", prod_dir)
    local seed_dir = H.dir()
    local code, _, out, err = H.run(TRADING, { sim = sim, dir = seed_dir, stack = "prod",
      config = config, yes = true })
    lu.assertEquals(code, 0, out .. err)
    local seed = H.state(seed_dir, "prod")
    H.cleanup(seed_dir)
    local dev_serial, prod_serial = H.state(dir).serial, H.state(prod_dir, "prod").serial
    sim.recorder:clear()
    for _, r in pairs(seed.resources) do
      if ids.TAGS_OF[r.type] then
        seen[r.type] = true
        local c, _, e = command({ r.type .. "::" .. r.name, r.id }, { region = r.region })
        lu.assertEquals(c, 2, r.urn .. ": " .. e)
        lu.assertStrContains(e, ('it is tagged as resource %q of fo stack "prod", which '
          .. 'manages it'):format(r.name))
        c, _, e = command({ r.type .. "::other", r.id }, { region = r.region, stack = "prod",
          dir = prod_dir })
        lu.assertEquals(c, 2, r.urn .. ": " .. e)
        lu.assertStrContains(e, ('it is tagged as resource %q of this stack (prod)')
          :format(r.name))
      end
    end
    lu.assertEquals(mutating(), {})
    lu.assertEquals({ H.state(dir).serial, H.state(prod_dir, "prod").serial },
      { dev_serial, prod_serial })
    H.cleanup(prod_dir)
  end
  sim:set_knob("registered_domains", { "trading.fo.test" })
  refuse_all({ alarmEmail = "ops@example.com", https = "true" })
  f.renew()
  refuse_all({ private_egress = "nat" })
  -- every AWS type that has tags has its owner check, and the trading recipe tried it
  for _, t in ipairs(types.names()) do
    if t:match("^aws:") and not types.get(t).data and types.get(t).schema.properties.tags then
      lu.assertNotNil(ids.TAGS_OF[t], t .. " has tags but no owner check")
      lu.assertTrue(seen[t], t .. ": the trading recipe makes none")
    end
  end
end

-- The types that carry no tags of their own cannot name an owner: docs/recipes.md says
-- which they are, and each of them is one.
function TestImport:test_the_docs_name_the_types_that_carry_no_owner()
  local ids = require "fo.aws.resources.import_ids"
  local types = require "fo.engine.types"
  local docs = testlib.read(testlib.tests_dir .. "/../docs/recipes.md"):gsub("%s+", " ")
  local listed = docs:match("carry no tags, so nothing on them names an owner: ([^.]+)%.")
  lu.assertNotNil(listed, "docs/recipes.md lists the types without an owner check")
  local named = {}
  for t in listed:gmatch("`(aws:[%w_:]+)`") do named[t] = true end
  for _, t in ipairs(types.names()) do
    if t:match("^aws:") and not ids.TAGS_OF[t] and not types.get(t).data then
      lu.assertTrue(named[t], t .. " has no owner check and docs/recipes.md does not say so")
      lu.assertNil(types.get(t).schema.properties.tags, t)
      named[t] = nil
    end
  end
  lu.assertEquals(named, {}, "types the docs list that do have an owner check")
end

-- The command imports every AWS type fo has: the trading recipe, applied by stack dev in
-- one state directory, makes one of each (over two configurations); stack dev's command,
-- in another directory, imports each by the id the first recorded, under its name, with
-- no mutating call. The recipe run on that state then changes nothing: each declaration
-- is compared with its resource read again with the declaration.
local function command_imports_trading(config, have)
  local seed_dir = H.dir()
  local code, _, out, err = H.run(TRADING, { sim = sim, dir = seed_dir, config = config,
    yes = true })
  lu.assertEquals(code, 0, out .. err)
  local seed = H.state(seed_dir)
  H.cleanup(seed_dir)
  -- the stack exists in the other directory (its state names the target)
  code, _, out, err = f.run(function()
    fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  sim.recorder:clear()
  local n = 0
  for _, r in pairs(seed.resources) do
    local c, o, e = command({ r.type .. "::" .. r.name, r.id }, { region = r.region })
    lu.assertEquals(c, 0, r.urn .. ": " .. o .. e)
    lu.assertEquals(H.state(dir).resources[r.urn].id, r.id)
    have[r.type] = true
    n = n + 1
  end
  lu.assertEquals(mutating(), {})
  local doc
  code, doc, out, err = f.run(TRADING, { config = config, mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  -- every declaration finds its resource as recorded and the same as declared: the first
  -- run reads each again with its declaration (as import = ID does), so what the read
  -- observes only when declared (a subnet's zone, a certificate's validation zone) is
  -- compared, and nothing is replaced or changed (keep, the stack's first, is not declared)
  local changed = {}
  for _, s in ipairs(doc.plan.steps) do
    if s.action ~= "noop" and s.urn ~= "dev::aws:ec2:vpc::keep" then
      changed[#changed + 1] = s.action .. " " .. s.urn .. ": " .. json.encode(s.changes)
    end
  end
  lu.assertEquals(changed, {})
  lu.assertEquals(doc.plan.counts, { create = 0, update = 0, replace = 0, delete = 1,
    noop = n })
  lu.assertNotStrContains(err, "REPLACEMENT")
  -- the apply records what it read with the declaration; the next run changes nothing
  sim.recorder:clear()
  code, doc, out, err = f.run(TRADING, { config = config, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(mutating(), { "ec2.DeleteVpc" })
  for urn, r in pairs(H.state(dir).resources) do lu.assertNil(r.read_undeclared, urn) end
  sim.recorder:clear()
  code, doc, out, err = f.run(TRADING, { config = config, yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(mutating(), {})
  return n
end

function TestImport:test_the_command_imports_every_type()
  sim:set_knob("registered_domains", { "trading.fo.test" })
  local have = {}
  command_imports_trading({ alarmEmail = "ops@example.com", https = "true" }, have)
  f.renew()
  command_imports_trading({ private_egress = "nat" }, have)
  for _, t in ipairs(require("fo.engine.types").names()) do
    if t:match("^aws:") then lu.assertTrue(have[t], t .. ": the trading recipe makes none") end
  end
end

-- A subnet's zone is read only when declared (left out, AWS picks it): the command records
-- none, and the recipe's next run reads the subnet again with its declaration. A zone as
-- declared plans nothing (it replaced the subnet before); left out, nothing either; another
-- zone is a replacement, said loudly.
function TestImport:test_the_next_run_reads_a_command_import_with_its_declaration()
  local code, _, out, err = f.run(function()
    fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  local vpc = hand_vpc("10.9.0.0/16")
  local subnet = ec2():CreateSubnet{ VpcId = vpc, CidrBlock = "10.9.1.0/24",
    AvailabilityZone = "us-east-1b" }.Subnet.SubnetId
  sim.recorder:clear()
  lu.assertEquals(command({ "aws:ec2:vpc::main", vpc }), 0)
  lu.assertEquals(command({ "aws:ec2:subnet::a", subnet }), 0)
  local rec = H.state(dir).resources["dev::aws:ec2:subnet::a"]
  lu.assertEquals({ rec.inputs.availability_zone, rec.read_undeclared }, { nil, true })
  local function declared(zone)
    return function()
      fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
      local v = fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.9.0.0/16" })
      fo.resource("aws:ec2:subnet", "a", { vpc_id = v.id, cidr_block = "10.9.1.0/24",
        availability_zone = zone })
    end
  end
  -- another zone: the imported subnet would be deleted
  local doc
  code, doc, out, err = f.run(declared("us-east-1c"), { mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.counts.replace, 1)
  lu.assertNil(doc.plan.counts.import) -- the command imported it, not this run
  lu.assertStrContains(err, "followed by a REPLACEMENT")
  lu.assertStrContains(err, "DELETES the imported resource " .. subnet)
  lu.assertStrContains(err, "availability_zone")
  -- left out: AWS's pick, nothing to change
  code, doc, out, err = f.run(declared(nil), { mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.counts.replace, 0)
  lu.assertEquals(doc.plan.counts.update, 0)
  lu.assertTrue(H.state(dir).resources["dev::aws:ec2:subnet::a"].read_undeclared)
  -- as declared: nothing changes, and the record holds the zone read with the declaration
  code, doc, out, err = f.run(declared("us-east-1b"), { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertNotStrContains(err, "REPLACEMENT")
  lu.assertEquals(mutating(), {})
  rec = H.state(dir).resources["dev::aws:ec2:subnet::a"]
  lu.assertEquals({ rec.id, rec.inputs.availability_zone, rec.read_undeclared },
    { subnet, "us-east-1b", nil })
  code, doc, out, err = f.run(declared("us-east-1b"), { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(mutating(), {})
end

-- A subscription is read back by its ARN alone (GetSubscriptionAttributes): the command
-- records its topic, protocol, endpoint and attributes, and the recipe that declares it
-- the same plans nothing; a pending one (email) too. A declaration whose import id is
-- another subscription than its protocol and endpoint say is refused.
function TestImport:test_the_command_imports_a_subscription()
  local code, _, out, err = f.run(function()
    fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  local sns = sim:client("sns", { region = REGION })
  local topic = sns:CreateTopic{ Name = "alerts" }.TopicArn
  local queue = "arn:aws:sqs:us-east-1:123456789012:orders"
  local filter = '{"severity":["critical"]}'
  local sqs = sns:Subscribe{ TopicArn = topic, Protocol = "sqs", Endpoint = queue,
    Attributes = { FilterPolicy = filter, RawMessageDelivery = "true" },
    ReturnSubscriptionArn = true }.SubscriptionArn
  local mail = sns:Subscribe{ TopicArn = topic, Protocol = "email", Endpoint = "ops@example.com",
    ReturnSubscriptionArn = true }.SubscriptionArn
  sim.recorder:clear()
  local c, o, e = command({ "aws:sns:subscription::queue", sqs })
  lu.assertEquals(c, 0, o .. e)
  c, o, e = command({ "aws:sns:subscription::mail", mail })
  lu.assertEquals(c, 0, o .. e)
  lu.assertEquals(mutating(), {})
  local st = H.state(dir)
  local rec = st.resources["dev::aws:sns:subscription::queue"]
  lu.assertEquals({ rec.id, rec.inputs.topic_arn, rec.inputs.protocol, rec.inputs.endpoint,
    rec.inputs.attributes, rec.outputs.pending }, { sqs, topic, "sqs", queue,
    { FilterPolicy = filter, RawMessageDelivery = "true" }, false })
  rec = st.resources["dev::aws:sns:subscription::mail"]
  lu.assertEquals({ rec.inputs.protocol, rec.inputs.endpoint, rec.outputs.pending },
    { "email", "ops@example.com", true })
  local function declared(extra)
    return function()
      fo.resource("aws:ec2:vpc", "keep", { cidr_block = "10.1.0.0/16" })
      fo.resource("aws:sns:subscription", "queue", { topic_arn = topic, protocol = "sqs",
        endpoint = queue, attributes = { FilterPolicy = filter, RawMessageDelivery = "true" } })
      fo.resource("aws:sns:subscription", "mail", { topic_arn = topic, protocol = "email",
        endpoint = "ops@example.com" })
      if extra then extra() end
    end
  end
  code, _, out, err = f.run(declared(), { yes = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(mutating(), {})
  -- an ARN SNS does not know
  c, _, e = command({ "aws:sns:subscription::gone", topic .. ":0a1b2c3d-0000-4000-8000-0a1b2c3d4e5f" })
  lu.assertEquals(c, 2, e)
  lu.assertStrContains(e, "there is no such aws:sns:subscription in us-east-1")
  -- the import id is one subscription, the declaration's endpoint another's
  local function subscribe(name)
    return sns:Subscribe{ TopicArn = topic, Protocol = "sqs", ReturnSubscriptionArn = true,
      Endpoint = "arn:aws:sqs:us-east-1:123456789012:" .. name }.SubscriptionArn
  end
  local spare = subscribe("spare")
  subscribe("audit")
  code, _, out, err = f.run(declared(function()
    fo.resource("aws:sns:subscription", "audit", { topic_arn = topic, protocol = "sqs",
      endpoint = "arn:aws:sqs:us-east-1:123456789012:audit" }, { import = spare })
  end), { mode = "plan" })
  lu.assertEquals(code, 1, out .. err)
  lu.assertStrContains(err, "cannot import " .. spare .. ": there is no such aws:sns:subscription")
  lu.assertNil(H.state(dir).resources["dev::aws:sns:subscription::audit"])
end

-- An id the stack manages is refused in the same region, and everywhere for an account-wide
-- name (an IAM role); a name of a regional service in another region is another resource
-- (a log group).
function TestImport:test_an_id_is_taken_per_region_unless_account_wide()
  local code, _, out, err = f.run(function()
    fo.resource("aws:iam:role", "app", { name = "app", assume_role_policy = { Version =
      "2012-10-17", Statement = { { Effect = "Allow", Principal = { Service =
      "ec2.amazonaws.com" }, Action = "sts:AssumeRole" } } } })
    fo.resource("aws:logs:log_group", "app", { name = "/app" })
  end, { yes = true })
  lu.assertEquals(code, 0, out .. err)
  sim:client("logs", { region = "eu-west-1" }):CreateLogGroup{ logGroupName = "/app" }
  local c, o, e = command({ "aws:iam:role::again", "app" }, { region = "eu-west-1" })
  lu.assertEquals(c, 2, o .. e)
  lu.assertStrContains(e, "the stack already manages app as dev::aws:iam:role::app")
  c, o, e = command({ "aws:logs:log_group::again", "/app" })
  lu.assertEquals(c, 2, o .. e)
  lu.assertStrContains(e, "the stack already manages /app as dev::aws:logs:log_group::app")
  c, o, e = command({ "aws:logs:log_group::west", "/app" }, { region = "eu-west-1" })
  lu.assertEquals(c, 0, o .. e)
  lu.assertEquals(H.state(dir).resources["dev::aws:logs:log_group::west"].region, "eu-west-1")
end

-- --target aws against a served simulator: the recipe's import and the command, as a user
-- runs fo-run, with --json events checked against the schema.
function TestImport:test_import_through_target_aws()
  local served = fo.sim.new{ seed = 5 }
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = served }
  local c = served:client("ec2", { region = REGION })
  local vpc = c:CreateVpc{ CidrBlock = "10.9.0.0/16" }.Vpc.VpcId
  local subnet = c:CreateSubnet{ VpcId = vpc, CidrBlock = "10.9.1.0/24" }.Subnet.SubnetId
  local env = testlib.served_sim_env(srv.port, REGION, dir, { FO_STATE_DIR = dir .. "/.fo" })
  local path = dir .. "/net.lua"
  testlib.write(path, ([[
require "fo.aws.resources"
local vpc = fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.9.0.0/16" }, { import = %q })
fo.resource("aws:ec2:subnet", "a", { vpc_id = vpc.id, cidr_block = "10.9.2.0/24",
  tags = { Team = "core" } })
]]):format(vpc))
  local function run(args)
    local r
    local t = fo.spawn(function() r = testlib.run_fo(args, { env = env }) end)
    t:join()
    return r
  end
  local function events(r)
    local ev = json_events.parse(r.stdout)
    lu.assertEquals(json_events.problems(ev, json_events.schema()), {}, r.stdout)
    return ev
  end
  local r = run({ "--target", "aws", "--plan", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events(r)
  lu.assertEquals(json_events.last(ev, "import").id, vpc)
  local plan = json_events.last(ev, "plan")
  lu.assertEquals(plan.counts, { import = 1, create = 1, update = 0, replace = 0, delete = 0,
    noop = 1 })
  lu.assertEquals(plan.steps[1].import, vpc)
  -- not confirmed (no --yes, no terminal): nothing changes, no import is recorded
  r = run({ "--target", "aws", path })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "needs --yes")
  lu.assertNil(testlib.state_doc(dir).resources[
    "dev::aws:ec2:vpc::main"])
  r = run({ "--target", "aws", "--yes", "--json", path })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events(r)
  lu.assertEquals(json_events.last(ev, "summary").done,
    { create = 1, update = 0, replace = 0, delete = 0, rollback = 0 })
  local st = testlib.state_doc(dir)
  lu.assertEquals(st.resources["dev::aws:ec2:vpc::main"].id, vpc)
  -- the subnet made by hand, by the command
  r = run({ "state", "import", "aws:ec2:subnet::b", subnet, "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events(r)
  lu.assertEquals(json_events.last(ev, "import"), { v = 1, event = "import",
    t = json_events.last(ev, "import").t, urn = "dev::aws:ec2:subnet::b",
    type = "aws:ec2:subnet", id = subnet, region = REGION })
  st = testlib.state_doc(dir)
  lu.assertEquals(st.resources["dev::aws:ec2:subnet::b"].inputs.vpc_id, vpc)
  -- another stack's topic: refused, an error event and nothing recorded
  local topic = served:client("sns", { region = REGION }):CreateTopic{ Name = "alerts",
    Tags = { { Key = "fo:stack", Value = "prod" }, { Key = "fo:name", Value = "alerts" } } }
    .TopicArn
  r = run({ "state", "import", "aws:sns:topic::alerts", topic, "--json" })
  lu.assertEquals(r.code, 2, r.stderr)
  ev = events(r)
  lu.assertStrContains(json_events.last(ev, "error").error.text,
    'it is tagged as resource "alerts" of fo stack "prod", which manages it')
  lu.assertNil(json_events.last(ev, "import"))
  lu.assertEquals(json_events.last(ev, "summary").exit_code, 2)
  lu.assertNil(testlib.state_doc(dir).resources[
    "dev::aws:sns:topic::alerts"])
  srv:close()
end

-- Composite ids name the properties the read locates the resource by; a DNS name may hold
-- "_" (the record type is the part that is one), and a set identifier follows the type.
function TestImport:test_composite_ids_name_their_properties()
  local import = require "fo.engine.import"
  local function props(t, id)
    local f = import.format_of(t)
    lu.assertTrue(f.check(id), id)
    return f.props(id)
  end
  lu.assertEquals(props("aws:route53:record", "Z0123_dmarc_x.example.com_TXT"),
    { zone_id = "Z0123", name = "dmarc_x.example.com", type = "TXT" })
  lu.assertEquals(props("aws:route53:record", "Z0123__acme.example.com_CNAME_blue_1"),
    { zone_id = "Z0123", name = "_acme.example.com", type = "CNAME", set_identifier = "blue_1" })
  lu.assertEquals(props("aws:ec2:route", "rtb-0a1b_::/0"),
    { route_table_id = "rtb-0a1b", destination_ipv6_cidr_block = "::/0" })
  lu.assertEquals(props("aws:ec2:route", "rtb-0a1b_pl-63a5400a"),
    { route_table_id = "rtb-0a1b", destination_prefix_list_id = "pl-63a5400a" })
  lu.assertEquals(props("aws:iam:role_policy", "app:inline"),
    { role_name = "app", policy_name = "inline" })
  lu.assertEquals(props("aws:sns:subscription", "arn:aws:sns:us-east-1:123456789012:t:abc-1"),
    { topic_arn = "arn:aws:sns:us-east-1:123456789012:t" })
  lu.assertEquals(props("aws:autoscaling:policy", "arn:aws:autoscaling:us-east-1:123456789012:"
    .. "scalingPolicy:u-1:autoScalingGroupName/web:policyName/cpu"),
    { group_name = "web", policy_name = "cpu" })
  for t, bad in pairs({ ["aws:route53:record"] = "Z0123_example.com", ["aws:ec2:route"] =
      "rtb-0a1b", ["aws:iam:role_policy"] = "app", ["aws:kms:key"] = "alias/x",
      ["aws:sns:topic"] = "alerts", ["aws:s3:bucket"] = "arn:aws:s3:::b" }) do
    lu.assertFalse(import.format_of(t).check(bad) and true or false, t .. " " .. bad)
  end
end

-- --print-policy runs the recipe's lifecycle on a private simulator, which holds none of
-- what the recipe imports: it creates them instead, and the policy has their actions.
function TestImport:test_print_policy_of_a_recipe_that_imports()
  local path = dir .. "/net.lua"
  testlib.write(path, [[
require "fo.aws.resources"
fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.9.0.0/16" }, { import = "vpc-0a1b2c3d" })
]])
  local r = testlib.run_fo({ "--print-policy", path }, { env = { FO_STATE_DIR = dir .. "/.fo" },
    timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  for _, a in ipairs({ "ec2:CreateVpc", "ec2:DescribeVpcs", "ec2:DeleteVpc" }) do
    lu.assertStrContains(r.stdout, '"' .. a .. '"')
  end
end

-- docs/recipes.md has one row per AWS type in its table of import ids, as the types
-- register their formats (lua/fo/aws/resources/import_ids.lua).
function TestImport:test_the_docs_give_every_type_its_id_format()
  local import = require "fo.engine.import"
  local rows = {}
  for line in testlib.read(testlib.tests_dir .. "/../docs/recipes.md"):gmatch("[^\n]+") do
    local t, format, example = line:match("^| `(aws:[%w_:]+)` | (.-) | `(.-)` |$")
    if t then rows[t] = { format, example } end
  end
  local n = 0
  for _, t in ipairs(require("fo.engine.types").names()) do
    if t:match("^aws:") then
      n = n + 1
      local f = import.format_of(t)
      lu.assertNotNil(f, t .. " registers no import id format")
      lu.assertEquals(rows[t], { f.format, f.example }, t .. "'s row in docs/recipes.md")
      lu.assertTrue(f.check(f.example), t .. ": its example is not of its format")
      rows[t] = nil
    end
  end
  lu.assertEquals(rows, {}, "rows of types fo does not have")
  lu.assertTrue(n >= 35)
end

os.exit(lu.LuaUnit.run())
