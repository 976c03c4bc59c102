-- fo-run --json: every event of real runs — an apply with throttling (retry events), an
-- apply whose create fails and is rolled back, a refresh with drift, a destroy — is one JSON
-- object per line that validates against docs/json-events.schema.json (the validator in
-- support.json_events; also python3-jsonschema when it is installed, which checks the
-- schema itself too).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local je = require "support.json_events"

TestJsonEvents = {}

local RECIPE = require("support.engine_graph").stack_file(testlib.tests_dir)

local dir, path

function TestJsonEvents:setUp()
  dir = H.dir()
  path = dir .. "/stack.lua"
  testlib.write(path, RECIPE)
end

function TestJsonEvents:tearDown() H.cleanup(dir) end

local function fo_run(args, env)
  local e = { FO_STATE_DIR = dir .. "/.fo" }
  for k, v in pairs(env or {}) do e[k] = v end
  local argv = { "--json" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = path
  return testlib.run_fo(argv, { env = e, timeout = 120 })
end

local function python_validator()
  local ok, r = pcall(fo.process.run, { argv = { "python3", "-c", "import jsonschema" } })
  return ok and r.code == 0
end

-- The events of r, each validated (and by python3-jsonschema when there is one).
local function events_of(r, what)
  local events = je.parse(r.stdout)
  lu.assertTrue(#events >= 3, what .. ": " .. r.stdout)
  lu.assertEquals(je.problems(events), {}, what)
  lu.assertEquals(events[1].event, "run", what)
  lu.assertEquals(events[#events].event, "summary", what)
  lu.assertEquals(events[#events].exit_code, r.code, what)
  for i = 2, #events do lu.assertTrue(events[i].t >= events[i - 1].t, what) end
  if python_validator() then
    local file = dir .. "/events.jsonl"
    testlib.write(file, r.stdout)
    local py = fo.process.run{ argv = { "python3", "-c", [[
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = [f"line {i}: {e.message}" for i, line in enumerate(open(sys.argv[2]), 1) for e in v.iter_errors(json.loads(line))]
print("\n".join(bad[:10])); sys.exit(1 if bad else 0)
]], je.SCHEMA_PATH, file } }
    lu.assertEquals(py.code, 0, what .. ": python3-jsonschema: " .. py.stdout .. py.stderr)
  end
  return events
end

local function count(events, name, pred)
  local n = 0
  for _, e in ipairs(je.all(events, name)) do
    if not pred or pred(e) then n = n + 1 end
  end
  return n
end

function TestJsonEvents:test_apply_failure_rollback_refresh_and_destroy_events_validate()
  -- a first apply under throttling: retries are events tied to their operation
  -- (10 attempts: with the default 3, a 0.2 throttle fails some call of the ~40 about one
  -- run in three — 0.2^3 per call — and the apply would roll back)
  local r = fo_run({ "--parallel", "4" }, { FO_SIM_THROTTLE = "0.2", AWS_MAX_ATTEMPTS = "10" })
  lu.assertEquals(r.code, 0, r.stderr)
  local ev = events_of(r, "apply")
  lu.assertEquals(count(ev, "op_start"), 22)
  lu.assertEquals(count(ev, "op_end", function(e) return e.ok end), 22)
  lu.assertTrue(count(ev, "retry") > 0, "no retry event under throttling")
  lu.assertTrue(count(ev, "retry", function(e) return e.urn ~= nil end) > 0)
  local retry = je.last(ev, "retry")
  lu.assertEquals(retry.class, "throttle") -- the code is the service's (Throttling, RequestLimitExceeded)
  lu.assertTrue(require("fo.aws.retry").THROTTLING[retry.reason], retry.reason)
  lu.assertEquals(je.last(ev, "plan").counts.create, 22)
  lu.assertEquals(je.last(ev, "summary").status, "ok")
  lu.assertEquals(je.last(ev, "summary").done.create, 22)
  lu.assertNotNil(je.last(ev, "outputs"))
  lu.assertEquals(count(ev, "notice"), 1) -- the new stack's target

  -- v1 -> v2 with the 5th mutating call failing: error, rollback steps, rolled back
  r = fo_run({ "--config", "version=2" }, { FO_SIM_FAIL_MUTATING_CALL = "5" })
  lu.assertEquals(r.code, 4, r.stderr)
  ev = events_of(r, "failed apply")
  lu.assertEquals(count(ev, "op_end", function(e) return not e.ok end), 1)
  local failed = je.all(ev, "op_end")
  lu.assertTrue(count(ev, "error", function(e) return e.error.code == "FoInjectedFault" end) >= 1)
  lu.assertTrue(count(ev, "phase", function(e) return e.phase == "rollback" end) == 1)
  lu.assertTrue(count(ev, "op_end", function(e) return e.phase == "rollback" and e.ok end) > 0)
  lu.assertEquals(je.last(ev, "summary").status, "rolled_back")
  lu.assertTrue(#failed > 0)

  -- drift found by --refresh
  local sim = fo.sim.new{ file = dir .. "/.fo/dev.sim.json" }
  local st = H.state(dir .. "/.fo")
  local topic = st.resources["dev::test:topic::alerts"] or st.resources["dev::test:topic::legacy"]
  lu.assertNotNil(topic)
  sim:invoke("sns", H.REGION, "DeleteTopic", { TopicArn = topic.id })
  sim:save()
  r = fo_run({ "--refresh", "--yes" })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events_of(r, "refresh")
  lu.assertEquals(je.last(ev, "drift").resources[1].kind, "deleted")

  -- destroy
  r = fo_run({ "--destroy" })
  lu.assertEquals(r.code, 0, r.stderr)
  ev = events_of(r, "destroy")
  lu.assertEquals(count(ev, "op_end", function(e) return e.phase == "destroy" and e.ok end), 21)
  lu.assertEquals(je.last(ev, "summary").done.delete, 21)
end

function TestJsonEvents:test_an_engine_error_is_an_error_event_and_a_summary()
  testlib.write(path, "fo.resource('test:nope', 'x', {})\n")
  local r = fo_run({})
  lu.assertEquals(r.code, 1)
  local ev = events_of(r, "recipe error")
  lu.assertEquals(je.last(ev, "summary").status, "error")
  lu.assertStrContains(je.last(ev, "error").error.text, "test:nope")
end

function TestJsonEvents:test_the_validator_rejects_what_the_schema_forbids()
  local s = je.schema()
  lu.assertEquals(je.validate({ v = 1, event = "run", t = 0, stack = "dev", mode = "apply",
    fo_version = "0.1.0" }, s), {})
  lu.assertNotEquals(je.validate({ v = 1, event = "run", t = 0, stack = "dev", mode = "apply" }, s), {})
  lu.assertNotEquals(je.validate({ v = 2, event = "run", t = 0, stack = "dev", mode = "apply",
    fo_version = "x" }, s), {})
  lu.assertNotEquals(je.validate({ v = 1, event = "op_end", t = 0, phase = "apply", urn = "u",
    type = "t", name = "n", action = "create", ok = "yes", seconds = 1 }, s), {})
  lu.assertNotEquals(je.validate({ v = 1, event = "nope", t = 0 }, s), {})
  lu.assertNotEquals(je.validate({ v = 1, event = "notice", t = 0, level = "notice", text = "x",
    extra = 1 }, s), {})
end

os.exit(lu.LuaUnit.run())
