-- support.sim_clock_data lists what the simulator changes by itself as its clock runs, so
-- that a comparison of what it holds before and after a run (H.sim_holdings) fails on a
-- real change and never on timing alone. A recipe test's two snapshots can be minutes apart
-- on a loaded machine: a key missing from the list failed CI (an alarm's next_eval moved a
-- step when a minute passed between them). Here the clock runs minutes on a topology with
-- every clock-driven part (health checks, alarms of a health check and of a target tracking
-- policy, the metrics plane, SNS), and for an hour after a trading apply, and what it holds
-- must compare equal; a real change still shows.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local topo = require "support.sim_topology"
local H = require "support.engine_harness"

local B = math.ceil(os.time() / 60) * 60 + 60

local function world()
  local sim = simlib.new{ seed = 7, time = function() return B end }
  local p = topo.region(sim, "eu-south-1", 2)
  local s = topo.region(sim, "eu-central-1", 1)
  sim:advance(5) -- the load balancers leave "provisioning"
  topo.global(sim, p, s)
  -- a target tracking policy: Auto Scaling makes its two alarms in the region's CloudWatch
  sim:invoke("autoscaling", "eu-south-1", "PutScalingPolicy", { AutoScalingGroupName = p.asg,
    PolicyName = "cpu", PolicyType = "TargetTrackingScaling",
    TargetTrackingConfiguration = { TargetValue = 50, PredefinedMetricSpecification = {
      PredefinedMetricType = "ASGAverageCPUUtilization" } } })
  return sim, p
end

TestSimClockData = {}

function TestSimClockData.test_minutes_of_clock_change_nothing_a_comparison_sees()
  local sim = world()
  local raw_before, before = H.sim_dump(sim), H.sim_holdings(sim)
  sim:advance(185) -- three minutes and more: every alarm is evaluated, every check probes
  -- the clock did change what the simulator holds (or this test would prove nothing)
  lu.assertNotNil(H.first_difference(raw_before, H.sim_dump(sim)))
  local d = H.first_difference(before, H.sim_holdings(sim))
  lu.assertNil(d, d)
end

function TestSimClockData.test_a_real_change_still_shows()
  local sim, p = world()
  local before = H.sim_holdings(sim)
  sim:advance(65)
  sim:invoke("autoscaling", "eu-south-1", "UpdateAutoScalingGroup",
    { AutoScalingGroupName = p.asg, MaxSize = 5 })
  local d = H.first_difference(before, H.sim_holdings(sim))
  lu.assertNotNil(d)
  lu.assertStrContains(d, "MaxSize")
end

-- The whole trading stack (recipes/trading.lua, as the recipe tests deploy it): an hour of
-- the simulator's clock after its apply changes nothing a comparison sees.
function TestSimClockData.test_an_hour_after_the_trading_apply_nothing_a_comparison_sees_changed()
  local testing = require "fo.testing"
  local recipe = require("support.testlib").tests_dir .. "/../recipes/trading.lua"
  local st = testing.apply(recipe, { seed = "clock-data", stack = "clock",
    config = { environmentSuffix = "clock" } })
  lu.assertEquals(st.code, 0, st.err)
  local raw_before, before = H.sim_dump(st.sim), H.sim_holdings(st.sim)
  for _ = 1, 60 do st.sim:advance(60) end -- minute by minute, as a served sim's clock runs
  lu.assertNotNil(H.first_difference(raw_before, H.sim_dump(st.sim)))
  local d = H.first_difference(before, H.sim_holdings(st.sim))
  st:close()
  lu.assertNil(d, d)
end

os.exit(lu.LuaUnit.run("-v"))
