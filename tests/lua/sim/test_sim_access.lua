-- Who may call the simulator, through fo's clients on the wire path: opt-in regions the
-- account has not enabled (knob disabled_regions), temporary keys with their session
-- token (sim:add_key), and presigned (query-string) requests.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local sigv4 = require "fo.sigv4"
local net = require "support.sim_net"

local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

TestOptIn = {}

function TestOptIn.test_sts_in_a_disabled_primary_region_refuses_the_credentials()
  local sim = simlib.new{ disabled_regions = { "eu-south-1" } }
  local sts = sim:client("sts", { region = "eu-south-1", max_attempts = 1 })
  local e = net.expect(lu, "InvalidClientTokenId", nil, sts.GetCallerIdentity, sts, {})
  lu.assertEquals(e.status, 403)
  lu.assertStrContains(e.message, "The security token included in the request is invalid.")
  lu.assertStrContains(e.message, "eu-south-1")
  lu.assertEquals(sim:count{ service = "sts", region = "eu-south-1", code = "InvalidClientTokenId" }, 1)
  -- the standby region and the global endpoints answer
  lu.assertEquals(sim:client("sts", { region = "eu-central-1" }):GetCallerIdentity{}.Account, "123456789012")
  lu.assertEquals(sim:client("iam", { region = "us-east-1" }):ListRoles{}.Roles, {})
  -- enabling the region (the knob's whole list) lets the same call through
  sim:set_knob("disabled_regions", {})
  lu.assertEquals(sts:GetCallerIdentity{}.Account, "123456789012")
end

function TestOptIn.test_enabled_by_default()
  local sim = simlib.new{ env = function() return nil end }
  lu.assertEquals(sim:client("sts", { region = "eu-south-1" }):GetCallerIdentity{}.Account, "123456789012")
end

function TestOptIn.test_codes_per_service()
  local sim = simlib.new{ env = function(k) return k == "FO_SIM_DISABLED_REGIONS" and "eu-south-1" or nil end }
  local cases = {
    { "ec2", "DescribeVpcs", {}, "AuthFailure", 401 },
    { "dynamodb", "ListTables", {}, "UnrecognizedClientException", 400 },
    { "ssm", "GetParameter", { Name = AL2 }, "UnrecognizedClientException", 400 },
    { "elbv2", "DescribeLoadBalancers", {}, "InvalidClientTokenId", 403 },
    { "autoscaling", "DescribeAutoScalingGroups", {}, "InvalidClientTokenId", 403 },
    { "sns", "ListTopics", {}, "InvalidClientTokenId", 403 },
    { "cloudwatch", "DescribeAlarms", {}, "InvalidClientTokenId", 403 },
  }
  for _, c in ipairs(cases) do
    local client = sim:client(c[1], { region = "eu-south-1", max_attempts = 1 })
    local e = net.aws_error(lu, client[c[2]], client, c[3])
    lu.assertEquals({ e.code, e.status }, { c[4], c[5] }, c[1])
    -- the same call works in the standby region
    local other = sim:client(c[1], { region = "eu-central-1" })
    lu.assertTrue(pcall(other[c[2]], other, c[3]), c[1])
  end
end

function TestOptIn.test_only_opt_in_regions_can_be_disabled()
  local ok, e = pcall(simlib.new, { disabled_regions = { "eu-central-1" } })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "disabled_regions")
  lu.assertStrContains(e, "eu-central-1 is not an opt-in region")
  ok, e = pcall(simlib.new, { env = function(k) return k == "FO_SIM_DISABLED_REGIONS" and "mars-1" or nil end })
  lu.assertFalse(ok)
  lu.assertStrContains(e, "FO_SIM_DISABLED_REGIONS")
  local sim = simlib.new{}
  lu.assertErrorMsgContains("us-east-1 is not an opt-in region", sim.set_knob, sim, "disabled_regions", { "us-east-1" })
end

os.exit(lu.LuaUnit.run())
