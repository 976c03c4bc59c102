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
    token = assert(rec.token, "the record of " .. urn .. " keeps no token"), inputs = rec.inputs,
    deps = rec.deps }
  fo.fs.write_atomic(dir .. "/dev.state.json", json.encode(doc))
  return rec
end

--- A test file's run, apply and res, for the sim and dir its setUp makes anew: `env()`
--- returns them; `region` is the runs' region unless opts.region names one (nil: H's).
--- run(recipe, opts) gives H.run's code, doc, stdout, stderr; apply(recipe, opts) asserts
--- exit 0 and gives doc, stdout; res(urn_tail) is the record of "dev::<urn_tail>" and
--- id_of(urn_tail) its id (the record must exist).
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
  local function id_of(urn_tail)
    return assert(res(urn_tail), urn_tail).id
  end
  return run, apply, res, id_of
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

--- The tags another copy of the stack (another checkout, a state moved away) puts on its
--- resource `name`: the same fo:stack and fo:name, another create's fo:token. As AWS lists
--- them ({Key=, Value=}); `extra` (a list) is appended.
function T.other_copy_tags(name, extra)
  local out = { { Key = "fo:name", Value = name }, { Key = "fo:stack", Value = "dev" },
    { Key = "fo:token", Value = ("0"):rep(32) } }
  for _, t in ipairs(extra or {}) do out[#out + 1] = t end
  return out
end

--- The proof that a create never takes over what it did not make: `existing` (the id of a
--- resource made outside the stack, untagged or tagged by another copy of it) is in `sim`
--- already; applying `recipe` on (sim, dir) — `opts` for H.run — exits 4 with a conflict
--- (error kind "conflict") naming the id and what to do; the simulator then holds exactly
--- what it held before (the existing resource unchanged, tags included, and not deleted;
--- what the run created rolled back), the state's records are as before and no intent is
--- left. `snapshot(sim)` (default H.sim_holdings: all but what the simulator changes by
--- itself, support.sim_clock_data) is what must be the same before and after. Returns the
--- run's output.
function T.assert_conflict(sim, dir, recipe, existing, opts, snapshot)
  snapshot = snapshot or H.sim_holdings
  local before, recs = snapshot(sim), {}
  for urn, rec in pairs((H.state(dir) or { resources = {} }).resources) do recs[urn] = rec.id end
  local o = { sim = sim, dir = dir }
  for k, v in pairs(opts or {}) do o[k] = v end
  local code, doc, out, err = H.run(recipe, o)
  local text = out .. err
  lu.assertEquals(code, 4, text)
  lu.assertStrContains(text, "conflict: ")
  lu.assertStrContains(text, "(" .. existing .. ")")
  lu.assertStrContains(text, "Remove it, or rename the resource in the recipe")
  local kinds = {}
  for _, e in ipairs(doc.errors) do kinds[#kinds + 1] = e.error.kind end
  lu.assertEquals(kinds, { "conflict" }, text)
  local d = H.first_difference(before, snapshot(sim))
  lu.assertNil(d, d)
  local st = H.state(dir)
  local after = {}
  for urn, rec in pairs(st.resources) do after[urn] = rec.id end
  lu.assertEquals(after, recs)
  lu.assertEquals(next(st.intents), nil)
  return text
end

--- After T.assert_conflict on a sim whose recorder was cleared before the run: the run did
--- make its own resources before it met the conflict and its rollback deleted them.
--- `steps` lists { "svc.CreateX", "svc.DeleteX" }: both answered without error.
function T.assert_rolled_back(sim, steps)
  local ok = T.mutating_ok(sim)
  for _, p in ipairs(steps) do
    local made, undone = T.index(ok, p[1]), T.index(ok, p[2])
    lu.assertNotNil(made, p[1] .. " was not called: " .. table.concat(ok, " "))
    lu.assertNotNil(undone, p[2] .. " was not called: " .. table.concat(ok, " "))
    lu.assertTrue(made < undone, table.concat(ok, " "))
  end
end

--- Position of the first "svc.Op" in `list` (nil when absent).
T.index = H.index

return T
