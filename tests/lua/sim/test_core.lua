-- The simulator's core without the wire: handlers called through sim:invoke, the ctx
-- they get (ids, ARNs, errors, AZs, state per region/service), validation, recorder.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"

local function vpc_handlers()
  return { ec2 = {
    CreateVpc = function(ctx, p)
      local v = { VpcId = ctx:id("vpc"), CidrBlock = p.CidrBlock, State = "available" }
      ctx.db.vpcs = ctx.db.vpcs or {}
      ctx.db.vpcs[v.VpcId] = v
      ctx:created(v)
      return { Vpc = v }
    end,
    DescribeVpcs = function(ctx, p)
      local out = {}
      for _, id in ipairs(p.VpcIds or {}) do
        local v = (ctx.db.vpcs or {})[id]
        if not v or ctx:fresh(v) then
          ctx:fail("InvalidVpcID.NotFound", ("The vpc ID '%s' does not exist"):format(id))
        end
        out[#out + 1] = v
      end
      return { Vpcs = out }
    end,
  } }
end

TestCore = {}

function TestCore.test_invoke_runs_handler_and_keeps_state_per_region()
  local sim = simlib.new{ seed = 7, handlers = vpc_handlers() }
  local a = sim:invoke("ec2", "eu-south-1", "CreateVpc", { CidrBlock = "10.0.0.0/16" })
  lu.assertStrMatches(a.Vpc.VpcId, "vpc%-" .. ("%x"):rep(17))
  local d = sim:invoke("ec2", "eu-south-1", "DescribeVpcs", { VpcIds = { a.Vpc.VpcId } })
  lu.assertEquals(d.Vpcs[1].CidrBlock, "10.0.0.0/16")
  local ok, e = pcall(sim.invoke, sim, "ec2", "eu-central-1", "DescribeVpcs",
    { VpcIds = { a.Vpc.VpcId } })
  lu.assertFalse(ok)
  lu.assertTrue(simlib.Error.is(e, "InvalidVpcID.NotFound"))
  lu.assertEquals(e.status, 400)
end

function TestCore.test_ids_are_reproducible_with_a_seed()
  local a = simlib.new{ seed = "abc", handlers = vpc_handlers() }
  local b = simlib.new{ seed = "abc", handlers = vpc_handlers() }
  local c = simlib.new{ seed = "abd", handlers = vpc_handlers() }
  local p = { CidrBlock = "10.0.0.0/16" }
  local ia = a:invoke("ec2", "eu-south-1", "CreateVpc", p).Vpc.VpcId
  lu.assertEquals(b:invoke("ec2", "eu-south-1", "CreateVpc", p).Vpc.VpcId, ia)
  lu.assertNotEquals(c:invoke("ec2", "eu-south-1", "CreateVpc", p).Vpc.VpcId, ia)
  lu.assertNotEquals(a:invoke("ec2", "eu-south-1", "CreateVpc", p).Vpc.VpcId, ia)
end

function TestCore.test_params_are_validated_with_the_codes_aws_uses()
  local sim = simlib.new{ handlers = vpc_handlers() }
  local ok, e = pcall(sim.invoke, sim, "ec2", "eu-south-1", "CreateVpc", { CidrBlock = 5 })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "InvalidParameterValue")
  lu.assertStrContains(e.message, "CidrBlock: expected string")
  ok, e = pcall(sim.invoke, sim, "ec2", "eu-south-1", "DeleteVpc", {})
  lu.assertEquals(e.code, "MissingParameter")
  ok, e = pcall(sim.invoke, sim, "dynamodb", "eu-south-1", "DescribeTable", {})
  lu.assertEquals(e.code, "ValidationException")
  ok, e = pcall(sim.invoke, sim, "iam", "global", "GetRole", {})
  lu.assertEquals(e.code, "ValidationError")
  ok, e = pcall(sim.invoke, sim, "route53", nil, "GetHostedZone", {})
  lu.assertEquals(e.code, "InvalidInput")
end

function TestCore.test_operation_without_handler_is_the_protocols_unknown_action()
  local sim = simlib.new{ load_services = false }
  local ok, e = pcall(sim.invoke, sim, "ec2", "eu-south-1", "DeleteVpc", { VpcId = "vpc-1" })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "InvalidAction")
  lu.assertStrContains(e.message, "ec2.DeleteVpc")
  ok, e = pcall(sim.invoke, sim, "dynamodb", "eu-south-1", "DeleteTable", { TableName = "tbl" })
  lu.assertEquals(e.code, "UnknownOperationException")
end

function TestCore.test_handler_bug_is_a_500_naming_the_handler()
  local sim = simlib.new{ handlers = { sts = { GetCallerIdentity = function() local x; return x.y end } } }
  require("fo.log").set_sink(function() end)
  local ok, e = pcall(sim.invoke, sim, "sts", "us-east-1", "GetCallerIdentity", {})
  lu.assertFalse(ok)
  lu.assertEquals(e.status, 500)
  lu.assertEquals(e.code, "InternalFailure")
  lu.assertStrContains(e.message, "sts.GetCallerIdentity")
  lu.assertStrContains(e.traceback, "test_core.lua")
end

function TestCore.test_ctx_helpers()
  local seen
  local sim = simlib.new{ seed = 3, handlers = {
    iam = { CreateRole = function(ctx, p)
      seen = { arn = ctx:arn("role/" .. p.RoleName), region = ctx.region, account = ctx.account,
               chars = ctx:chars(8), ec2 = ctx:db_of("ec2", "eu-south-1") }
      ctx.db.roles = { [p.RoleName] = true }
      return { Role = { Path = "/", RoleName = p.RoleName, RoleId = "AROA" .. ctx:chars(17),
        Arn = seen.arn, CreateDate = ctx:now() } }
    end },
    elbv2 = { DescribeAccountLimits = function(ctx)
      seen.elb_arn = ctx:arn("loadbalancer/app/x/123")
      seen.azs = ctx:azs()
      seen.outage = ctx:outage()
      seen.iam = ctx:db_of("iam")
      return {}
    end },
  }, outage = { "eu-south-1" } }
  sim:invoke("iam", "global", "CreateRole", { RoleName = "r", AssumeRolePolicyDocument = "{}" })
  lu.assertEquals(seen.arn, "arn:aws:iam::123456789012:role/r")
  lu.assertEquals(seen.region, "us-east-1")
  lu.assertEquals(seen.account, "123456789012")
  lu.assertStrMatches(seen.chars, "[A-Z0-9]+")
  lu.assertEquals(seen.ec2, {})
  sim:invoke("elbv2", "eu-south-1", "DescribeAccountLimits", {})
  lu.assertEquals(seen.elb_arn, "arn:aws:elasticloadbalancing:eu-south-1:123456789012:loadbalancer/app/x/123")
  lu.assertEquals(#seen.azs, 3)
  lu.assertEquals(seen.azs[1].ZoneName, "eu-south-1a")
  lu.assertEquals(seen.azs[1].ZoneId, "eus1-az1")
  lu.assertTrue(seen.outage)
  lu.assertEquals(seen.iam, { roles = { r = true } })
end

function TestCore.test_regions_and_azs()
  local r = simlib.regions
  lu.assertEquals(#r.azs("us-east-1"), 6)
  lu.assertEquals(r.azs("us-east-1")[6].ZoneName, "us-east-1f")
  lu.assertEquals(r.azs("eu-central-1")[2].ZoneName, "eu-central-1b")
  lu.assertNil(r.azs("xx-none-1"))
end

function TestCore.test_recorder_counts_calls()
  local sim = simlib.new{ handlers = vpc_handlers() }
  local id = sim:invoke("ec2", "eu-south-1", "CreateVpc", { CidrBlock = "10.0.0.0/16" }).Vpc.VpcId
  sim:invoke("ec2", "eu-south-1", "DescribeVpcs", { VpcIds = { id } })
  pcall(sim.invoke, sim, "ec2", "eu-south-1", "DescribeVpcs", { VpcIds = { "vpc-nope" } })
  lu.assertEquals(sim:count(), 3)
  lu.assertEquals(sim:count{ mutating = true }, 1)
  lu.assertEquals(sim:count{ code = "InvalidVpcID.NotFound" }, 1)
  local c = sim:counts{ service = "ec2" }
  lu.assertEquals(c.by_operation["ec2.DescribeVpcs"], 2)
  local calls = sim:calls{ operation = "CreateVpc" }
  lu.assertEquals(calls[1].region, "eu-south-1")
  lu.assertEquals(calls[1].status, 200)
  lu.assertStrMatches(calls[1].request_id, "%x+%-%x+%-4%x+%-[89ab]%x+%-%x+")
end

function TestCore.test_consistency_window_with_fresh()
  local sim = simlib.new{ handlers = vpc_handlers(), consistency_ms = 2000 }
  local id = sim:invoke("ec2", "eu-south-1", "CreateVpc", { CidrBlock = "10.0.0.0/16" }).Vpc.VpcId
  local ok, e = pcall(sim.invoke, sim, "ec2", "eu-south-1", "DescribeVpcs", { VpcIds = { id } })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "InvalidVpcID.NotFound")
  sim:advance(2.5)
  lu.assertEquals(sim:invoke("ec2", "eu-south-1", "DescribeVpcs", { VpcIds = { id } }).Vpcs[1].VpcId, id)
end

os.exit(lu.LuaUnit.run())
