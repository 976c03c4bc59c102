-- recipes/trading.lua's update run "capacity" (tests/lua/support/trading_faults.lua: M.KINDS)
-- fails at each of its mutating calls in turn: rolled back to the stack as it was, or, after
-- the commit point, stopped with the state true to the simulator and a rerun converging.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local matrix = require("support.trading_faults").matrix

TestTradingFaults = {}

function TestTradingFaults:test_a_fault_at_every_mutating_call_of_the_update()
  local r = matrix("capacity")
  lu.assertTrue(r.n >= 4 and r.phase1 >= 1, ("N = %d, phase 1 up to k = %d"):format(r.n, r.phase1))
end

os.exit(lu.LuaUnit.run())
