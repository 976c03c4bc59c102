-- The trading recipe converges in one run under real faults, with default settings: 30%
-- of calls throttled, 5% answered with a 5xx, a 2 s eventual-consistency window (and no
-- latency, for speed). The apply must succeed (exit 0) and a rerun find "No changes.".
-- One seed per run (FO_CONVERGENCE_SEED); tests/CMakeLists.txt adds one ctest entry per
-- seed (recipes.convergence.seedN), so they run side by side. Not named test_*.lua: the
-- recipe glob would add it once more without a seed.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"
local SEED = os.getenv("FO_CONVERGENCE_SEED") or "1"

local function faulty_env()
  return { FO_SIM_SEED = SEED, FO_SIM_THROTTLE = "0.3", FO_SIM_FAIL_5XX = "0.05",
    FO_SIM_CONSISTENCY_MS = "2000", FO_SIM_LATENCY_MS = "0", FO_SIM_LATENCY_JITTER_MS = "0",
    -- default settings: whatever the machine running the tests has set does not count
    AWS_RETRY_MODE = "", AWS_MAX_ATTEMPTS = "", AWS_PROFILE = "", AWS_CONFIG_FILE = "/nonexistent" }
end

TestConvergence = {}

-- The events of a --json run's stdout.
local function events(stdout)
  local list = {}
  for line in stdout:gmatch("[^\n]+") do
    local ok, e = pcall(require("cjson").decode, line)
    if ok and type(e) == "table" then list[#list + 1] = e end
  end
  return list
end

function TestConvergence.test_apply_under_faults_converges_in_one_run_and_reruns_clean()
  local dir = testlib.tmpdir()
  local args = { "--state-dir", dir .. "/.fo", RECIPE }
  local r = testlib.run_fo({ "--json", table.unpack(args) }, { env = faulty_env(), timeout = 600 })
  lu.assertEquals(r.code, 0, ("seed %s: apply failed:\n%s%s"):format(SEED,
    r.stdout:sub(-3000), r.stderr:sub(-3000)))
  local ev = events(r.stdout)
  local summary, throttled, failed5xx = ev[#ev], 0, 0
  for _, e in ipairs(ev) do
    if e.event == "retry" and e.class == "throttle" then throttled = throttled + 1 end
    if e.event == "retry" and e.class == "transient" then failed5xx = failed5xx + 1 end
  end
  lu.assertEquals(summary.event, "summary")
  lu.assertEquals(summary.done.create, 111)
  -- the faults were really there, and retried
  lu.assertTrue(throttled > 20 and failed5xx > 0, ("seed %s: %d throttled, %d 5xx retries")
    :format(SEED, throttled, failed5xx))
  local again = testlib.run_fo(args, { env = faulty_env(), timeout = 600 })
  lu.assertEquals(again.code, 0, ("seed %s: rerun failed:\n%s%s"):format(SEED,
    again.stdout:sub(-3000), again.stderr:sub(-3000)))
  lu.assertStrContains(again.stdout, "No changes.")
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
