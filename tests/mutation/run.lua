-- The mutation suite of recipes/trading.lua: proves that its tests fail when the recipe is
-- wrong. Each mutant of tests/mutation/mutants.lua (one find/replace that real AWS would
-- punish) is applied to a copy of the recipe, and tests/recipes/test_trading.lua runs on
-- that copy (FO_RECIPE) in its fast mode (one shared apply: read-back and drill;
-- fast+destroy for the mutants that say destroy = true; https for those that say https =
-- true: the read-back of a stack applied with https=true). Tests failing = KILLED; passing =
-- SURVIVED, which fails this suite. The tests stop at their first failure. A find string not in the recipe exactly once is an
-- error: the mutant must really mutate. The unmutated recipe runs first and must pass, so
-- that a broken test run is not counted as kills.
--
--   fo-run tests/mutation/run.lua                 # every mutant (ctest mutation.trading)
--   fo-run tests/mutation/run.lua -- NAME ...     # only these
-- FO_MUTATION_JOBS: mutants run side by side (default 2; they mostly wait on the
-- simulator's transition windows, little CPU).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local testlib = require "support.testlib"
local testing = require "fo.testing"

local TESTS = testlib.tests_dir
local RECIPE = TESTS .. "/../recipes/trading.lua"
local SUITE = TESTS .. "/recipes/test_trading.lua"
local JOBS = tonumber(os.getenv("FO_MUTATION_JOBS") or "") or 2

-- The recipe's files (the recipe and its region component), relative to its directory.
local FILES = { "trading.lua", "components/trading_region.lua" }
local RECIPE_DIR = RECIPE:match("^(.*)/[^/]*$")
local sources = {}
for _, f in ipairs(FILES) do
  sources[f] = assert(testlib.read(RECIPE_DIR .. "/" .. f), "cannot read " .. RECIPE_DIR .. "/" .. f)
end
local mutants = dofile(TESTS .. "/mutation/mutants.lua")

local wanted = {}
for _, a in ipairs(arg or {}) do wanted[a] = true end
if next(wanted) then
  local list = {}
  for _, m in ipairs(mutants) do if wanted[m.name] then list[#list + 1] = m; wanted[m.name] = nil end end
  local unknown = next(wanted)
  if unknown then
    io.stderr:write("tests/mutation/run.lua: no mutant named " .. unknown .. "\n")
    os.exit(2)
  end
  mutants = list
end

-- The recipe's files with `find` replaced by `replace` in the one that holds it; an error
-- unless `find` occurs exactly once in all of them.
local function mutate(m)
  local out, found = {}, nil
  for _, f in ipairs(FILES) do
    local source = sources[f]
    out[f] = source
    local first, last = source:find(m.find, 1, true)
    if first then
      if found or source:find(m.find, last + 1, true) then
        error(("mutant %s: its find string occurs more than once in %s: make it unique"):format(
          m.name, RECIPE_DIR .. "/{" .. table.concat(FILES, ",") .. "}"), 0)
      end
      found = f
      out[f] = source:sub(1, first - 1) .. m.replace .. source:sub(last + 1)
    end
  end
  if not found then error(("mutant %s: its find string is not in %s (the recipe changed? "
    .. "update tests/mutation/mutants.lua)"):format(m.name, RECIPE_DIR .. "/{"
    .. table.concat(FILES, ",") .. "}"), 0) end
  return out
end

local dir = testing.tmpdir()

-- Runs the recipe's fast tests on `files` (name → text): passed (bool), the failing tests'
-- names. The files go to a directory of their own, as the recipe's sit in recipes/.
local function run_tests(name, files, mode)
  local path = ("%s/%s/trading.lua"):format(dir, name)
  for f, text in pairs(files) do
    local file = ("%s/%s/%s"):format(dir, name, f)
    require("fo.fs").mkdir_p(file:match("^(.*)/[^/]*$"), tonumber("755", 8))
    testlib.write(file, text)
  end
  -- -f: LuaUnit stops at the first failure (the mutant is killed; the drill, which takes
  -- longest on a broken stack, need not run)
  local r = testlib.run_fo({ SUITE, "--", "-f" }, { timeout = 300, env = { FO_RECIPE = path,
    FO_RECIPE_TESTS = mode, FO_TESTS_DIR = TESTS } })
  local failed = {}
  for test in r.stdout:gmatch("\n%s*(Test[%w_]+%.[%w_]+) %.%.%. [FE]") do failed[#failed + 1] = test end
  if r.code ~= 0 and #failed == 0 then failed[1] = "(exit " .. r.code .. ") " .. r.stderr:sub(-300) end
  return r.code == 0, failed
end

local ok, err = pcall(function()
  for _, m in ipairs(mutants) do mutate(m) end -- every find string checked before any run

  local started = fo.now()
  local passed, failed = run_tests("unmutated", sources, "fast+destroy")
  if passed then passed, failed = run_tests("unmutated-https", sources, "https") end
  if not passed then
    error("the recipe's fast tests fail on the unmutated recipe: " .. table.concat(failed, ", "), 0)
  end
  print(("unmutated recipe: the fast tests pass (%.1f s)"):format(fo.now() - started))

  local results, next_i = {}, 1
  local function worker()
    while next_i <= #mutants do
      local i = next_i
      next_i = next_i + 1
      local m = mutants[i]
      local t0 = fo.now()
      local survived, why = run_tests(m.name, mutate(m),
        m.https and "https" or m.destroy and "fast+destroy" or "fast")
      results[i] = { m = m, killed = not survived, by = why, secs = fo.now() - t0 }
      local res = results[i]
      print(("%-40s %s%s (%.1f s)"):format(m.name, res.killed and "KILLED" or
        (m.pending and "SURVIVED, pending: " .. m.pending or "SURVIVED"),
        res.killed and " by " .. tostring(res.by[1]) or " — " .. m.why, res.secs))
    end
  end
  local t0 = fo.now()
  local tasks = {}
  for j = 1, math.min(JOBS, #mutants) do tasks[j] = fo.spawn(worker) end
  for _, t in ipairs(tasks) do t:join() end

  local killed, survivors, pending = 0, {}, 0
  for _, res in ipairs(results) do
    if res.killed then killed = killed + 1
    elseif res.m.pending then pending = pending + 1
    else survivors[#survivors + 1] = res.m.name .. " (" .. res.m.why .. ")" end
  end
  print(("\n%d of %d mutants killed, %d survived, %d pending (%.0f s, %d side by side)"):format(
    killed, #results, #survivors, pending, fo.now() - t0, JOBS))
  if #survivors > 0 then
    error("the recipe's tests pass on these wrong recipes: " .. table.concat(survivors, "; "), 0)
  end
end)
testing.rmtree(dir)
if not ok then
  io.stderr:write("tests/mutation/run.lua: " .. tostring(err) .. "\n")
  os.exit(1)
end
os.exit(0)
