-- Helpers for the AWS resource type tests (tests/lua/resources/): apply a recipe to a
-- sim-backed stack, check the exit code, list mutating calls, and turn a recorded resource
-- back into an interrupted create (an intent, as a crash between the create call and the
-- state write leaves it) to prove adoption.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local json = require "fo.json"

local T = {}

--- Runs `recipe` on (sim, dir) and asserts exit code `want` (default 0). Returns doc,
--- stdout, stderr.
function T.run(sim, dir, recipe, opts, want)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.sim, o.dir = sim, dir
  if o.yes == nil then o.yes = true end -- as T.runner's
  local code, doc, out, err = H.run(recipe, o)
  lu.assertEquals(code, want or 0, out .. err)
  return doc, out, err
end

--- The mutating calls answered since the recorder was last cleared ("svc.Op" strings),
--- failed ones included.
function T.mutating(sim)
  return H.ops(sim, { mutating = true })
end

--- The mutating calls that succeeded.
function T.mutating_ok(sim)
  return H.ops(sim, function(c) return c.mutating and c.code == nil end)
end

--- The state record of `urn` in dir's dev stack.
function T.record(dir, urn)
  return H.state(dir).resources[urn]
end

--- Moves the record of `urn` into the intents of the state file, as if the run that
--- created the resource died before recording it. Returns the record.
function T.interrupt(dir, urn)
  local doc = H.state(dir)
  local rec = assert(doc.resources[urn], "no record of " .. urn)
  doc.resources[urn] = nil
  doc.intents = doc.intents or {}
  if next(doc.intents) == nil then doc.intents = {} end
  doc.intents[urn] = { op = "create", urn = urn, type = rec.type, name = rec.name,
    region = rec.region, generation = rec.generation,
    token = require("fo.engine.ctx").token(urn, rec.generation), inputs = rec.inputs,
    deps = rec.deps }
  fo.fs.write_atomic(dir .. "/dev.state.json", json.encode(doc))
  return rec
end

--- A test file's run, apply and res, for the sim and dir its setUp makes anew: `env()`
--- returns them; `region` is the runs' region unless opts.region names one (nil: H's).
--- run(recipe, opts) gives H.run's code, doc, stdout, stderr; apply(recipe, opts) asserts
--- exit 0 and gives doc, stdout; res(urn_tail) is the record of "dev::<urn_tail>".
function T.runner(env, region)
  local function run(recipe, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.sim, o.dir = env()
    o.region = o.region or region
    -- resources deleted by hand are the types' drift tests: agree to forget them (the
    -- engine's asking is tested in tests/lua/engine)
    if o.yes == nil then o.yes = true end
    return H.run(recipe, o)
  end
  local function apply(recipe, opts)
    local code, doc, out, err = run(recipe, opts)
    lu.assertEquals(code, 0, out .. err)
    return doc, out
  end
  local function res(urn_tail)
    local _, dir = env()
    return H.state(dir).resources["dev::" .. urn_tail]
  end
  return run, apply, res
end

--- A tag list ({Key=, Value=}, ...) as a map, fo's own tags included.
function T.tag_map(list)
  local out = {}
  for _, t in ipairs(list or {}) do out[t.Key] = t.Value end
  return out
end

--- Applies `recipe`, turns the records of `urns` back into interrupted creates
--- (T.interrupt) and applies it again: asserts the rerun adopts each, with the same id,
--- and makes no mutating call.
function T.assert_adopted(sim, dir, recipe, urns)
  T.run(sim, dir, recipe)
  local want = {}
  for _, urn in ipairs(urns) do want[urn] = T.interrupt(dir, urn).id end
  sim.recorder:clear()
  local doc, out = T.run(sim, dir, recipe)
  lu.assertEquals(T.mutating(sim), {})
  lu.assertEquals(#doc.adopted, #urns, out)
  for urn, id in pairs(want) do lu.assertEquals(T.record(dir, urn).id, id) end
end

--- Position of the first "svc.Op" in `list` (nil when absent).
T.index = H.index

return T
