-- A state directory fo cannot write is reported before anything is changed: exit 2, a
-- message naming the directory (or the file), no mutating call. A run that changed the
-- cloud and then could not record it would leave resources no state knows.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"

TestStateDir = {}

local V1 = H.network{}
local V2 = H.network{ display = "Alarms", role_name = "app2" }

local root -- a temporary directory holding the state directories of a test
function TestStateDir:setUp() root = H.dir() end
function TestStateDir:tearDown()
  os.execute(("chmod -R u+w %q 2>/dev/null"):format(root))
  H.cleanup(root)
end

-- An applied stack in `dir`; then `spoil()`, then the update: refused before any change.
local function refused_update(dir, spoil, names)
  local sim = H.sim()
  local code, _, out, err = H.run(V1, { sim = sim, dir = dir })
  lu.assertEquals(code, 0, out .. err)
  local st0 = testlib.read(dir .. "/dev.state.json")
  spoil()
  sim.recorder:clear()
  code, _, out, err = H.run(V2, { sim = sim, dir = dir })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, names)
  lu.assertNotStrContains(err, "traceback")
  lu.assertEquals(H.mutating(sim), 0, "nothing changed")
  lu.assertEquals(testlib.read(dir .. "/dev.state.json"), st0)
  return err
end

function TestStateDir:test_a_read_only_state_directory_stops_the_run_before_any_change()
  if io.popen("id -u"):read("l") == "0" then
    -- root writes through a mode of 555 (CAP_DAC_OVERRIDE): nothing to test; the probe is
    -- a real write, so root is stopped only where the write fails (the tests below)
    lu.skip("run as root: chmod 555 does not stop root's writes")
  end
  local dir = root .. "/.fo"
  local err = refused_update(dir, function() os.execute(("chmod 555 %q"):format(dir)) end,
    "state directory " .. dir .. " is not writable")
  lu.assertStrContains(err, "--state-dir")
end

function TestStateDir:test_a_state_log_that_cannot_be_written_stops_the_run_before_any_change()
  local dir = root .. "/.fo"
  refused_update(dir, function()
    os.remove(dir .. "/dev.state.log")
    require("fo.fs").mkdir_p(dir .. "/dev.state.log", tonumber("700", 8))
  end, dir .. "/dev.state.log")
end

function TestStateDir:test_a_state_directory_that_is_a_file_is_refused()
  local dir = root .. "/.fo"
  testlib.write(dir, "not a directory\n")
  local sim = H.sim()
  local code, _, out, err = H.run(V1, { sim = sim, dir = dir })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "state directory " .. dir .. " cannot be created")
  lu.assertNotStrContains(err, "traceback")
  lu.assertEquals(H.mutating(sim), 0)
end

function TestStateDir:test_a_state_directory_under_a_file_is_refused()
  testlib.write(root .. "/file", "x\n")
  local dir = root .. "/file/.fo"
  local sim = H.sim()
  local code, _, out, err = H.run(V1, { sim = sim, dir = dir })
  lu.assertEquals(code, 2, out .. err)
  lu.assertStrContains(err, "state directory " .. dir .. " cannot be created")
  lu.assertEquals(H.mutating(sim), 0)
end

-- The same through fo-run: exit 2 and one message, no Lua traceback.
function TestStateDir:test_fo_run_reports_an_unusable_state_directory_with_exit_2()
  testlib.write(root .. "/file", "x\n")
  local r = testlib.run_fo({ "--yes", "--state-dir", root .. "/file/.fo",
    testlib.tests_dir .. "/../recipes/trading.lua" })
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "state directory " .. root .. "/file/.fo cannot be created")
  lu.assertNotStrContains(r.stderr, "stack traceback")
end

os.exit(lu.LuaUnit.run())
