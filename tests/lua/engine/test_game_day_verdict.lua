-- How the game day reads Route 53's verdict from GetHealthCheckStatus (fo.game_day_verdict):
-- each checker changes its mind after FailureThreshold consecutive results the other way
-- (a result read twice counts once; results from before the change do not count; an
-- inverted check's Success is a failure), and the check is healthy while more than 18 % of
-- the checkers say so. Checkers that disagree, as AWS's in different regions do.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local gd = require "fo.game_day_verdict"

TestGameDayVerdict = {}

-- Observations of `n` checkers; results[i] = {status, time} for checker i (default: the
-- endpoint answers, at time t).
local function obs(n, t, results)
  local out = {}
  for i = 1, n do
    local r = results and results[i] or { "Success: HTTP Status Code 200, OK", t }
    out[i] = { Region = "r" .. i, IPAddress = "10.0.0." .. i,
      StatusReport = { Status = r[1], CheckedTime = r[2] } }
  end
  return out
end

function TestGameDayVerdict.test_inverted_checkers_turn_after_the_threshold()
  local tr = gd.new(3, true, 100, true)
  -- results from before the inversion do not count
  local h, n, healthy = gd.track(tr, obs(8, 95))
  lu.assertEquals({ h, n, healthy }, { 8, 8, true })
  gd.track(tr, obs(8, 105))
  gd.track(tr, obs(8, 105)) -- read again: the same result
  h, _, healthy = gd.track(tr, obs(8, 115))
  lu.assertEquals({ h, healthy }, { 8, true })
  local flipped
  h, _, healthy, flipped = gd.track(tr, obs(8, 125))
  lu.assertEquals({ h, healthy, flipped }, { 0, false, 125 })
end

function TestGameDayVerdict.test_the_18_percent_rule()
  -- failback: checkers turn healthy one at a time
  local tr = gd.new(1, false, 0, false)
  local fail = { "Failure: Connection timed out.", 10 }
  local results = {}
  for i = 1, 8 do results[i] = fail end
  results[1] = { "Success: HTTP Status Code 200, OK", 10 }
  local h, n, healthy = gd.track(tr, obs(8, 10, results))
  -- 1 of 8 = 12.5 %: not more than 18 %
  lu.assertEquals({ h, n, healthy }, { 1, 8, false })
  results[2] = { "Success: HTTP Status Code 200, OK", 11 }
  h, n, healthy = gd.track(tr, obs(8, 10, results))
  -- 2 of 8 = 25 %
  lu.assertEquals({ h, n, healthy }, { 2, 8, true })
  -- no observations: no verdict of health
  lu.assertFalse(select(3, gd.track(gd.new(3, true, 0, false), {})))
end

function TestGameDayVerdict.test_a_result_the_other_way_resets_the_run()
  local tr = gd.new(3, true, 0, false)
  local function at(t, ok)
    local r = { ok and "Success: HTTP Status Code 200, OK" or "Failure: HTTP Status Code 503", t }
    return select(3, gd.track(tr, obs(1, t, { r })))
  end
  lu.assertTrue(at(10, false))
  lu.assertTrue(at(20, false))
  lu.assertTrue(at(30, true)) -- the run of failures starts again
  lu.assertTrue(at(40, false))
  lu.assertTrue(at(50, false))
  lu.assertFalse(at(60, false))
end

os.exit(lu.LuaUnit.run())
