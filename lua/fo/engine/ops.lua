-- One operation on one resource, with its state bookkeeping: create (after journaling the
-- intent), update, replace, delete. Each ends with a durable state write and an entry in
-- the run's journal of what was done (rollback reads it).
local ref = require "fo.engine.ref"
local diff = require "fo.engine.diff"
local schema = require "fo.engine.schema"
local errors = require "fo.engine.errors"
local ctx_mod = require "fo.engine.ctx"
local types = require "fo.engine.types"
local lifecycle = require "fo.engine.lifecycle"

local M = {}

local dep_urns = require("fo.engine.recipe").dep_urns

-- A record is replaced, never changed (state.lua caches each record's text).
-- (`deleting`, ops.delete's mark, is not copied: a record made from another is not being
-- deleted.)
local function record(fields)
  return { urn = fields.urn, type = fields.type, name = fields.name, region = fields.region,
    id = fields.id, inputs = fields.inputs, outputs = fields.outputs or {}, deps = fields.deps,
    generation = fields.generation, token = fields.token,
    -- lifecycle options a deletion must honour without the declaration (lifecycle.lua)
    protect = fields.protect, retain = fields.retain, timeouts = fields.timeouts,
    -- read by fo-run state import without a declaration, until the recipe's next run reads
    -- it with one (import.settle)
    read_undeclared = fields.read_undeclared }
end
M.record = record

local function with(rec, changes)
  local r = record(rec)
  for k, v in pairs(changes) do r[k] = v end
  return r
end
M.with = with

--- The type of a recorded resource (it may no longer be declared).
function M.type_of(rec)
  -- (the message's text is made only when it is needed: this runs for every operation)
  return types.get(rec.type) or types.need(rec.type, nil, (" (resource %s in the state; "
    .. "require the module that defines the type, even after removing the resource from the "
    .. "recipe)"):format(rec.urn))
end

--- Ids the state knows for `urn`, current and deposed (adopt must not take them for a new
--- resource): a set.
function M.known_ids(store, urn)
  local out = {}
  local cur = store:resource(urn)
  if cur then out[cur.id] = true end
  for _, r in ipairs(store.doc.deposed) do
    if r.urn == urn then out[r.id] = true end
  end
  return out
end

local function next_generation(store, urn)
  local g = 0
  local cur = store:resource(urn)
  if cur then g = math.max(g, cur.generation or 1) end
  for _, r in ipairs(store.doc.deposed) do
    if r.urn == urn then g = math.max(g, r.generation or 1) end
  end
  local intent = store.doc.intents[urn]
  if intent then g = math.max(g, intent.generation or 1) end
  return g + 1
end

-- ctx_mod.new's argument, filled anew for each context (every operation and read makes
-- one): new reads it and keeps none of it but its values, and does not yield.
local info = {}

function M.ctx(run, rec, extra)
  local op = extra and extra.op
  local timeouts = extra and extra.timeouts or rec.timeouts
  info.urn, info.type, info.name, info.region = rec.urn, rec.type, rec.name, rec.region
  info.generation, info.known_ids = rec.generation, extra and extra.known_ids
  info.token = extra and extra.token or rec.token
  info.timeout = op and timeouts and timeouts[op]
  info.created_at = run.created_at and rec.id and run.created_at[rec.id]
  return ctx_mod.new(run, info)
end

--- The declaration's properties with every reference resolved from the state (its
--- dependencies are applied), defaults filled in and checked against the schema.
function M.resolve(run, decl)
  local props = ref.resolve(decl.props, function(d)
    local rec = run.store:resource(d.urn)
    return rec and rec.outputs
  end)
  if ref.has_unknown(props) then
    errors.raise("recipe", ("%s: a referenced resource has no recorded outputs"):format(decl.urn),
      decl.where)
  end
  props = schema.with_defaults(decl.tdef.schema, props)
  local problems = schema.problems(decl.type, decl.tdef.schema, props)
  if #problems > 0 then
    errors.raise("recipe", ("%s %s: %s"):format(decl.type, decl.name, table.concat(problems, "; ")),
      decl.where)
  end
  return props
end

local function check_created(tdef, urn, id, outputs, what)
  if type(id) ~= "string" or id == "" then
    error(("resource type %s: %s of %s returned no physical id (got %s)"):format(tdef.name, what,
      urn, type(id)), 0)
  end
  if outputs ~= nil and type(outputs) ~= "table" then
    error(("resource type %s: %s of %s returned outputs that are not a table"):format(tdef.name,
      what, urn), 0)
  end
end

--- Creates a resource from `fields` ({urn=, type=, name=, region=, inputs=, deps=}) with
--- type `tdef`; when `replaced` (the old record of a create-before-delete replacement) is
--- given, it moves to the deposed list in the same write as the intent. The intent is
--- durable before the type's create runs. `entry` (optional) is the journal entry to fill;
--- `release` (optional) is called once the record is in memory, before it is written (the
--- scheduler's release (schedule.lua): dependents start, and their intents join this write).
function M.create_from(run, fields, tdef, replaced, entry, release)
  local store = run.store
  local generation = next_generation(store, fields.urn)
  local rec = record{ urn = fields.urn, type = fields.type, name = fields.name,
    region = fields.region, inputs = fields.inputs, deps = fields.deps, generation = generation,
    token = ctx_mod.token(fields.urn, generation, ctx_mod.nonce()), protect = fields.protect,
    retain = fields.retain, timeouts = fields.timeouts }
  local c = M.ctx(run, rec, { known_ids = M.known_ids(store, fields.urn), op = "create" })
  if replaced then
    store:remove(fields.urn)
    store:add_deposed(replaced)
  end
  store:set_intent(fields.urn, { op = "create", urn = fields.urn, type = fields.type,
    name = fields.name, region = fields.region, token = c.token, generation = generation,
    inputs = fields.inputs, deps = rec.deps, protect = rec.protect, retain = rec.retain,
    timeouts = rec.timeouts })
  store:commit()
  local ok, id, outputs = pcall(tdef.create, c, fields.inputs)
  if not ok then
    if errors.is(id, "conflict") then
      -- The resource there is not this create's and it made nothing: no intent is left
      -- for a rollback or a later run to adopt (they would find only the other resource).
      store:set_intent(fields.urn, nil)
      store:commit()
    end
    error(id, 0)
  end
  check_created(tdef, fields.urn, id, outputs, "create")
  -- when: a delete of it soon after (a rollback) may meet AWS's consistency window
  run.created_at = run.created_at or {}
  run.created_at[id] = require("fo.core").now()
  rec = with(rec, { id = id, outputs = outputs or {} })
  store:put(fields.urn, rec)
  store:set_intent(fields.urn, nil)
  if entry then entry.status, entry.rec = "done", rec end
  if release then release() end
  store:commit()
  return rec
end

--- Creates the declared resource (a create-before-delete replacement of `replaced`). The
--- journal entry names its dependencies from the start: a create that fails midway has no
--- record, and its rollback (deleting what it made) must still come before theirs.
function M.create(run, decl, props, replaced, release)
  local deps = dep_urns(decl)
  local entry = { kind = "create", urn = decl.urn, type = decl.type, name = decl.name,
    replaced = replaced, deps = deps, status = "started" }
  run.journal[#run.journal + 1] = entry
  local lc = lifecycle.recorded(decl)
  return M.create_from(run, { urn = decl.urn, type = decl.type, name = decl.name,
    region = decl.region, inputs = props, deps = deps, protect = lc.protect, retain = lc.retain,
    timeouts = lc.timeouts }, decl.tdef, replaced, entry, release)
end

--- Deletes a recorded resource (or deposed instance) and forgets it. The type's delete
--- must treat "already gone" as done (it may run again after a crash). The record is marked
--- `deleting` (durably) first: a run killed after the delete took effect leaves a record
--- that the next refresh finds gone, and the mark tells it that fo itself deleted it
--- (forgotten without asking), not someone behind its back (refresh.lua).
function M.delete(run, rec, deposed)
  local tdef = M.type_of(rec)
  local store = run.store
  if not deposed and not tdef.data and store:resource(rec.urn) == rec then
    local unmarked = rec
    rec = with(rec, { deleting = true })
    store:put(rec.urn, rec)
    store:commit()
    local ok, err = pcall(tdef.delete, M.ctx(run, rec, { op = "delete" }), rec.id, rec.inputs,
      rec.outputs)
    if not ok then
      -- still there: a later disappearance would be someone else's doing
      if store:resource(rec.urn) == rec then store:put(rec.urn, unmarked) end
      error(err, 0)
    end
  else
    tdef.delete(M.ctx(run, rec, { op = "delete" }), rec.id, rec.inputs, rec.outputs)
  end
  if deposed then run.store:remove_deposed(rec)
  elseif run.store:resource(rec.urn) == rec then run.store:remove(rec.urn) end
  run.store:commit()
end

--- Brings the declared resource to its properties: create, update in place, replace
--- (create-before-delete: the old instance is deleted later with the other deletions) or
--- nothing. The plan's guess is re-checked now that every referenced value is known.
--- `release` (optional): as create_from's. Returns the action taken and the record.
--- A dependency's record may not be durable yet when this starts (it released its
--- dependents early): the first write here (an intent, or the barrier before an update's
--- calls) makes it durable before any call is made.
function M.converge(run, decl, release)
  local store = run.store
  local props = M.resolve(run, decl)
  local old = store:resource(decl.urn)
  if not old then return "create", M.create(run, decl, props, nil, release) end
  props = lifecycle.desired(decl, old.inputs, props)
  local changes, replace = diff.resource(decl.tdef, old.inputs, props)
  if old.region ~= decl.region then replace = true end
  if lifecycle.triggered(decl, function(urn) return lifecycle.done_action(run, urn) end) then
    replace = true
  end
  local deps = dep_urns(decl)
  if #changes == 0 and not replace then
    if not diff.equal(old.deps, deps) or lifecycle.record_differs(old, decl) then
      store:put(decl.urn, lifecycle.with(with(old, { deps = deps }), decl))
      store:commit()
    end
    return "noop", old
  end
  if replace then return "replace", M.create(run, decl, props, old, release) end
  local entry = { kind = "update", urn = decl.urn, old = old, props = props, status = "started" }
  run.journal[#run.journal + 1] = entry
  store:commit() -- what this update's inputs came from is durable before its calls
  local lc = lifecycle.recorded(decl)
  local outputs = decl.tdef.update(M.ctx(run, old, { op = "update", timeouts = lc.timeouts }),
    old.id, old.inputs, props, old.outputs)
  if outputs ~= nil and type(outputs) ~= "table" then
    error(("resource type %s: update of %s returned outputs that are not a table")
      :format(decl.type, decl.urn), 0)
  end
  local rec = lifecycle.with(with(old, { inputs = props, outputs = outputs or old.outputs,
    deps = deps }), decl)
  store:put(decl.urn, rec)
  entry.status, entry.rec = "done", rec
  if release then release() end
  store:commit()
  return "update", rec
end

--- The delete half of a delete-first replacement (name-unique resources): the old
--- instance goes before its replacement is created.
function M.delete_first(run, urn)
  local old = run.store:resource(urn)
  if not old then return end
  local entry = { kind = "delete", urn = urn, old = old, status = "started" }
  run.journal[#run.journal + 1] = entry
  M.delete(run, old)
  entry.status = "done"
end

return M
