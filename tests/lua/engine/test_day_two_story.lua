-- Issue 15's user story, end to end through fo-run processes on the simulator, as a
-- Terraform or Pulumi user would live it on day two: a VPC made by hand is imported into a
-- stack, renamed with fo.moved, protected; a subnet in it is applied alone with --only; the
-- next change is saved as a plan and that plan applied; then the state is listed and shown
-- and the outputs read. Throughout, the hand-made VPC is the one the stack manages: never
-- recreated, never deleted.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local cjson = require "cjson"

TestDayTwoStory = {}

local dir, sim

function TestDayTwoStory:setUp()
  dir = testlib.tmpdir()
end

function TestDayTwoStory:tearDown()
  testlib.rmtree(dir)
end

local function fo_run(args)
  local r = testlib.run_fo(args, { env = { FO_STATE_DIR = dir .. "/.fo", NO_COLOR = "1",
    AWS_REGION = "eu-central-1" },
    timeout = 120 })
  return r, r.stdout .. r.stderr
end

-- The recipe at each step of the story: `vpc_name` the VPC's name, `import` its import id,
-- `moved` a fo.moved line, `protect` its protection, `subnets` the subnets declared in it.
local function recipe(o)
  local lines = {
    'require "fo.aws.resources"',
    ("local vpc = fo.resource('aws:ec2:vpc', %q, { cidr_block = '10.42.0.0/16', "
      .. "tags = { Name = 'legacy' } }, { import = %q, protect = %s })"):format(o.vpc_name,
      o.import, tostring(o.protect or false)),
    "fo.output('vpc_id', vpc.id)",
  }
  if o.moved then lines[#lines + 1] = ("fo.moved{ from = %q, to = %q }"):format(o.moved, o.vpc_name) end
  for i, s in ipairs(o.subnets or {}) do
    lines[#lines + 1] = ("local s%d = fo.resource('aws:ec2:subnet', %q, { vpc_id = vpc.id, "
      .. "cidr_block = '10.42.%d.0/24', availability_zone = 'eu-central-1a' })"):format(i, s, i)
    lines[#lines + 1] = ("fo.output(%q, s%d.id)"):format(s .. "_id", i)
  end
  local path = dir .. "/net.lua"
  testlib.write(path, table.concat(lines, "\n") .. "\n")
  return path
end

-- The VPCs of CIDR 10.42.0.0/16 the simulator holds: id → true.
local function vpcs()
  local out = {}
  local ec2 = sim:client("ec2", { region = "eu-central-1" })
  for _, v in ipairs(ec2:DescribeVpcs{}.Vpcs) do
    if v.CidrBlock == "10.42.0.0/16" then out[v.VpcId] = true end
  end
  return out
end

local function subnets()
  local out = {}
  local ec2 = sim:client("ec2", { region = "eu-central-1" })
  for _, s in ipairs(ec2:DescribeSubnets{}.Subnets) do out[s.CidrBlock] = s.SubnetId end
  return out
end

function TestDayTwoStory:test_import_move_protect_target_save_apply_list_show_outputs()
  -- the simulator the stack will use, holding a VPC someone made by hand
  local sim_file = dir .. "/.fo/dev.sim.json"
  fo.fs.mkdir_p(dir .. "/.fo")
  sim = fo.sim.new{ file = sim_file }
  local made = sim:client("ec2", { region = "eu-central-1" }):CreateVpc{ CidrBlock = "10.42.0.0/16",
    TagSpecifications = { { ResourceType = "vpc", Tags = { { Key = "Name", Value = "legacy" } } } } }
  local vpc_id = made.Vpc.VpcId
  sim = nil

  -- 1. import: the plan shows it, then the apply records it with no change in the cloud
  local path = recipe{ vpc_name = "legacy", import = vpc_id }
  local r, text = fo_run({ "--plan", path })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(text, "import " .. vpc_id)
  lu.assertStrContains(text, "Plan: 1 to import")
  r, text = fo_run({ path })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(text, "Import complete: 1 imported")
  sim = fo.sim.new{ file = sim_file }
  lu.assertEquals(vpcs(), { [vpc_id] = true })

  -- 2. renamed with fo.moved: no delete, no create
  path = recipe{ vpc_name = "network", import = vpc_id, moved = "legacy" }
  r, text = fo_run({ path })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(text, "Moved")
  lu.assertNotStrContains(text, "created")
  lu.assertNotStrContains(text, "deleted")

  -- 3. protected: the protection is recorded; a destroy is refused before any change
  path = recipe{ vpc_name = "network", import = vpc_id, moved = "legacy", protect = true }
  r, text = fo_run({ path })
  lu.assertEquals(r.code, 0, text)
  r, text = fo_run({ "--destroy", "--yes", path })
  lu.assertEquals(r.code, 1, text)
  lu.assertStrContains(text, "protect")
  sim = fo.sim.new{ file = sim_file }
  lu.assertEquals(vpcs(), { [vpc_id] = true })

  -- 4. two subnets declared; a targeted run applies the first only
  path = recipe{ vpc_name = "network", import = vpc_id, moved = "legacy", protect = true,
    subnets = { "a", "b" } }
  r, text = fo_run({ "--only", "aws:ec2:subnet::a", path })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(text, "may now differ from the recipe")
  sim = fo.sim.new{ file = sim_file }
  local s = subnets()
  lu.assertNotNil(s["10.42.1.0/24"])
  lu.assertNil(s["10.42.2.0/24"])

  -- 5. the rest saved as a plan, reviewed, then that very plan applied
  local plan_file = dir .. "/review.plan"
  r, text = fo_run({ "--plan", "--out", plan_file, path })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(text, "aws:ec2:subnet b")
  r, text = fo_run({ "apply", plan_file })
  lu.assertEquals(r.code, 0, text)
  sim = fo.sim.new{ file = sim_file }
  s = subnets()
  lu.assertNotNil(s["10.42.2.0/24"])
  -- a plan applies once
  r, text = fo_run({ "apply", plan_file })
  lu.assertEquals(r.code, 1, text)
  lu.assertStrContains(text, "the state of stack dev changed")

  -- 6. the state listed and shown, the outputs read
  r, text = fo_run({ "state", "list" })
  lu.assertEquals(r.code, 0, text)
  for _, want in ipairs({ "aws:ec2:vpc::network", "aws:ec2:subnet::a", "aws:ec2:subnet::b", vpc_id }) do
    lu.assertStrContains(r.stdout, want)
  end
  lu.assertNotStrContains(r.stdout, "legacy")
  r, text = fo_run({ "state", "show", "aws:ec2:vpc::network", "--json" })
  lu.assertEquals(r.code, 0, text)
  local shown
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.event == "state" then shown = ev.resource end
  end
  lu.assertEquals(shown.id, vpc_id)
  r, text = fo_run({ "outputs", "vpc_id" })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(r.stdout, vpc_id)
  r, text = fo_run({ "outputs", "--json" })
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(r.stdout, s["10.42.2.0/24"])

  -- and through it all, the hand-made VPC is the stack's: never recreated, still there
  sim = fo.sim.new{ file = sim_file }
  lu.assertEquals(vpcs(), { [vpc_id] = true })
end

os.exit(lu.LuaUnit.run())
