-- resources/common.lua's poll: a probe that fails with a retryable AWS error (throttling,
-- 5xx past the client's retries) is polled again; any other error ends the poll at once.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local common = require "fo.aws.resources.common"
local AwsError = require "fo.aws.error"

-- A ctx as the engine gives resource types, on the simulator (short polls), quiet.
local ctx = { target = "sim", sleep = function() end, debug = function() end }

local function aws_error(code, retryable)
  return AwsError.new{ service = "autoscaling", operation = "DescribeAutoScalingGroups",
    region = "eu-south-1", code = code, message = "x", status = retryable and 503 or 400,
    retryable = retryable, attempts = 1, kind = "service" }
end

TestPoll = {}

function TestPoll.test_retryable_errors_are_polled_through()
  local n = 0
  local v = common.poll(ctx, "group deleted", 60, function()
    n = n + 1
    if n <= 2 then error(aws_error("ServiceUnavailable", true), 0) end
    return n == 4 and "done"
  end)
  lu.assertEquals(v, "done")
  lu.assertEquals(n, 4)
end

function TestPoll.test_other_errors_end_the_poll_at_once()
  local n = 0
  local ok, err = pcall(common.poll, ctx, "group deleted", 60, function()
    n = n + 1
    error(aws_error("AccessDenied", false), 0)
  end)
  lu.assertFalse(ok)
  lu.assertTrue(AwsError.is(err, "AccessDenied"))
  lu.assertEquals(n, 1)
end

function TestPoll.test_a_retryable_error_at_the_deadline_is_raised()
  local ok, err = pcall(common.poll, ctx, "group deleted", 0, function()
    error(aws_error("Throttling", true), 0)
  end)
  lu.assertFalse(ok)
  lu.assertTrue(AwsError.is(err, "Throttling"))
end

-- describe_one on the simulator's EC2: the record of an id, nil for an id AWS does not know
-- (its NotFound code named as "gone"), any other error raised.
TestDescribeOne = {}

function TestDescribeOne.test_finds_the_record_and_takes_not_found_as_gone()
  local H = require "support.engine_harness"
  local ec2 = H.sim():client("ec2", { region = H.REGION })
  local id = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }.Vpc.VpcId
  local v = common.describe_one(ec2, "DescribeVpcs", { VpcIds = { id } }, "Vpcs",
    { "InvalidVpcID.NotFound" })
  lu.assertEquals({ v.VpcId, v.CidrBlock }, { id, "10.0.0.0/16" })
  lu.assertNil(common.describe_one(ec2, "DescribeVpcs", { VpcIds = { "vpc-0123456789abcdef0" } },
    "Vpcs", { "InvalidVpcID.NotFound" }))
  local ok, err = pcall(common.describe_one, ec2, "DescribeVpcs",
    { VpcIds = { "vpc-0123456789abcdef0" } }, "Vpcs", { "InvalidSubnetID.NotFound" })
  lu.assertFalse(ok)
  lu.assertTrue(AwsError.is(err, "InvalidVpcID.NotFound"))
end

-- fresh_slot: a child's pre-read is skipped only on a parent this run's client saw made,
-- once per child; another run (other clients) knows nothing of it.
TestFreshSlot = {}

function TestFreshSlot.test_only_a_parent_this_run_made_and_each_child_once()
  local run1, run2 = {}, {}
  lu.assertFalse(common.fresh_slot(run1, "rtb-1", "0.0.0.0/0")) -- not made by this run
  common.made(run1, "rtb-1")
  lu.assertTrue(common.fresh_slot(run1, "rtb-1", "0.0.0.0/0"))
  -- a second create of the same child reads as before (and finds the first one)
  lu.assertFalse(common.fresh_slot(run1, "rtb-1", "0.0.0.0/0"))
  lu.assertTrue(common.fresh_slot(run1, "rtb-1", "10.1.0.0/16"))
  -- the next run has its own clients: the table is not fresh there
  lu.assertFalse(common.fresh_slot(run2, "rtb-1", "10.2.0.0/16"))
end

os.exit(lu.LuaUnit.run())
