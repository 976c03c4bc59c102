-- The plan: the desired graph (the recipe) against the recorded state → per resource
-- create / update / replace / delete / no-op, with the property-level changes. Values that
-- depend on resources not yet applied are ref.UNKNOWN ("known after apply").
local ref = require "fo.engine.ref"
local diff = require "fo.engine.diff"
local graph = require "fo.engine.graph"
local schema = require "fo.engine.schema"
local types = require "fo.engine.types"
local lifecycle = require "fo.engine.lifecycle"

local M = {}

-- The outputs a dependent may count on while planning: all of a resource left alone, those
-- an update keeps (all but the type's mutable_outputs), none of one created or replaced.
local function planned_outputs(step)
  if step.action == "noop" then return step.old.outputs end
  if step.action == "update" then
    local mutable = step.decl.tdef.mutable_outputs
    if not next(mutable) then return step.old.outputs end
    local out = {}
    for k, v in pairs(step.old.outputs) do out[k] = mutable[k] and ref.UNKNOWN or v end
    return out
  end
  return nil
end

-- A create's changes are its properties, each from nothing: made when read (the plan shows
-- them; a saved plan and the run's document list them), not kept with each of thousands of
-- steps for the whole run. Its properties are never changed once planned.
local CREATE = { __index = function(s, k)
  if k == "changes" then return diff.changes({}, rawget(s, "props")) end
end }

-- Replacing a delete-first resource deletes it before its replacement exists, so the old
-- instances of replaced resources that depend on it must go first: they become
-- delete-first too (else the delete would wait for a create that waits for the delete).
local function propagate_delete_first(steps)
  local changed = true
  while changed do
    changed = false
    local first = {}
    for _, s in ipairs(steps) do
      if s.action == "replace" and s.delete_first then first[s.urn] = true end
    end
    for _, s in ipairs(steps) do
      if s.action == "replace" and not s.delete_first then
        for _, d in ipairs(s.old.deps) do
          if first[d] then s.delete_first, changed = true, true; break end
        end
      end
    end
  end
end

-- What the plan says of deleting `rec` beyond "delete", from its type (delete_note: e.g.
-- the data that goes with it); nil when the type says nothing or is not loaded.
local function delete_note(rec)
  local tdef = types.get(rec.type)
  local f = tdef and tdef.delete_note
  return f and f(rec.inputs or {}) or nil
end

local function deletions(store, steps, by_urn, keep)
  local doc = store.doc
  local urns = {}
  for urn in pairs(doc.resources) do
    if not keep[urn] then urns[#urns + 1] = urn end
  end
  table.sort(urns)
  for _, urn in ipairs(urns) do
    local rec = doc.resources[urn]
    local s = { urn = urn, action = "delete", type = rec.type, name = rec.name, old = rec,
      note = delete_note(rec) }
    steps[#steps + 1], by_urn[urn] = s, s
  end
  for _, rec in ipairs(doc.deposed) do
    steps[#steps + 1] = { urn = rec.urn, action = "delete", type = rec.type, name = rec.name,
      old = rec, deposed = true, note = delete_note(rec),
      declared = type(keep[rec.urn]) == "table" and keep[rec.urn] or nil }
  end
end

local function count(p)
  lifecycle.mark(p)
  local counts = { create = 0, update = 0, replace = 0, delete = 0, noop = 0 }
  for _, s in ipairs(p.steps) do
    -- a retained resource is forgotten, not destroyed: counted apart
    local k = s.action == "delete" and s.retain and "retain" or s.action
    counts[k] = (counts[k] or 0) + 1
  end
  p.counts = counts
  p.changed = counts.create + counts.update + counts.replace + counts.delete
    + (counts.retain or 0) > 0
  return p
end
M.count = count -- (only.lua recounts a plan it restricts)

--- The plan of `recipe` (finished) against the state in `store`. Returns
--- { steps = { {urn=, action=, type=, name=, decl=, old=, props=, changes= (a create's: made
---   when read), forcing= (none for a create), delete_first=, deposed=} }, by_urn =,
---   counts =, changed = }.
function M.build(recipe, store)
  local steps, by_urn, keep = {}, {}, {}
  local order = graph.order(recipe.decls, function(d) return d.deps end)
  local planned = {}
  -- (one closure each for all the declarations)
  local function outputs_of(d) return planned_outputs(by_urn[d.urn]) end
  local function action_of(urn) return by_urn[urn] and by_urn[urn].action end
  for _, decl in ipairs(order) do
    local tdef = decl.tdef
    local props = schema.with_defaults(tdef.schema, ref.resolve(decl.props, outputs_of))
    local old = store:resource(decl.urn)
    local s = { urn = decl.urn, type = decl.type, name = decl.name, decl = decl, old = old,
      props = props }
    if not old then
      -- (nothing forces a create: no `forcing` table for each of thousands of creates)
      s.action = "create"
      setmetatable(s, CREATE)
    else
      props = lifecycle.desired(decl, old.inputs, props)
      s.props = props
      local changes, replace, forcing = diff.resource(tdef, old.inputs, props)
      if old.region ~= decl.region then
        replace = true
        table.insert(changes, 1, { path = "(region)", key = "(region)", old = old.region,
          new = decl.region })
        forcing["(region)"] = true
      end
      local trigger, how = lifecycle.triggered(decl, action_of)
      if trigger then
        table.insert(changes, 1, lifecycle.trigger_change(trigger, how))
        replace, forcing["(replace_triggered_by)"] = true, true
      end
      s.changes, s.forcing = changes, forcing
      s.action = #changes == 0 and "noop" or replace and "replace" or "update"
      if s.action == "replace" then
        s.note = delete_note(old)
        if decl.delete_first ~= nil then s.delete_first = decl.delete_first
        else s.delete_first = tdef.delete_first end
      end
    end
    by_urn[decl.urn], keep[decl.urn] = s, decl
    planned[#planned + 1] = s
  end
  -- Display and schedule in declaration order, which the topological order already is when
  -- each resource is declared after its dependencies (as handles make them): then n - 1
  -- comparisons instead of a sort's n log n
  local function declared_before(a, b) return a.decl.index < b.decl.index end
  if not graph.in_order(planned, declared_before) then
    table.sort(planned, declared_before)
  end
  for _, s in ipairs(planned) do steps[#steps + 1] = s end
  propagate_delete_first(steps)
  deletions(store, steps, by_urn, keep)
  return count({ steps = steps, by_urn = by_urn })
end

--- The plan of --destroy: every resource of the state (and replaced instances awaiting
--- deletion) deleted.
function M.destroy(store)
  local steps, by_urn = {}, {}
  deletions(store, steps, by_urn, {})
  return count({ steps = steps, by_urn = by_urn })
end

return M
