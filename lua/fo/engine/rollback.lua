-- Rollback: undo what this run did before its failure, in reverse dependency order —
-- delete what it created (and adopt-then-delete what an interrupted create may have left),
-- update back what it updated, re-create what a delete-first replacement deleted. A step
-- that fails is reported and the state keeps the truth (it never forgets a live resource).
local schedule = require "fo.engine.schedule"
local ops = require "fo.engine.ops"
local types = require "fo.engine.types"
local secret = require "fo.engine.secret"
local diff = require "fo.engine.diff"

local M = {}

-- Puts back the record a create-before-delete replacement moved to the deposed list.
local function restore_replaced(run, e)
  if e.replaced and run.store:remove_deposed(e.replaced) then
    run.store:put(e.urn, e.replaced)
  end
end

-- Undoes a create that did not finish: whatever it may have made is found by adopt
-- (tags, name or idempotency token) and deleted.
local function undo_started_create(run, e, node)
  local intent = run.store.doc.intents[e.urn]
  if intent then
    local tdef = types.get(intent.type)
    if tdef and tdef.data then
      node.detail = "a data type: nothing was made"
    elseif tdef and tdef.adopt then
      local rec = ops.record{ urn = e.urn, type = intent.type, name = intent.name,
        region = intent.region, inputs = intent.inputs, deps = intent.deps,
        generation = intent.generation }
      local known = {}
      if e.replaced then known[e.replaced.id] = true end
      local id, outputs = tdef.adopt(ops.ctx(run, rec, { known_ids = known, token = intent.token }),
        intent.inputs)
      if id then
        node.detail = "deleted what the interrupted create left: " .. id
        tdef.delete(ops.ctx(run, rec), id, intent.inputs, outputs or {})
      end
    else
      node.detail = "the type cannot adopt: check that no half-created resource is left"
    end
    run.store:set_intent(e.urn, nil)
  end
  restore_replaced(run, e)
  run.store:commit()
end

-- Re-created resources have new ids (and new outputs: an ARN, a DNS name): their
-- dependents' old properties, resolved from the old outputs, are restored naming the new
-- ones. `renamed` is a list of {old, new} strings, longest first so that an output that is
-- part of another (an ARN's suffix) is not replaced inside it.
local function add_renames(renamed, old, new)
  local function walk(a, b)
    if type(a) == "string" and type(b) == "string" then
      if a ~= b and #a >= 8 then renamed[#renamed + 1] = { a, b } end
    elseif type(a) == "table" and type(b) == "table" then
      for k, v in pairs(a) do walk(v, b[k]) end
    end
  end
  walk(old.id, new.id)
  walk(old.outputs, new.outputs)
  table.sort(renamed, function(x, y) return #x[1] > #y[1] end)
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

local function renamed_value(v, renamed)
  if type(v) == "string" then
    for _, r in ipairs(renamed) do
      if v:find(r[1], 1, true) then v = v:gsub(plain(r[1]), (r[2]:gsub("%%", "%%%%"))) end
    end
    return v
  elseif type(v) == "table" and not secret.is(v) then -- a secret is kept whole (secret.lua)
    local out = {}
    for k, x in pairs(v) do out[k] = renamed_value(x, renamed) end
    return setmetatable(out, getmetatable(v))
  end
  return v
end

-- A delete that failed may have done part of its work (a global table loses its replicas
-- before the table goes): what is left is read and updated back to the recorded
-- properties. Returns false when nothing is left (the delete went through after all).
local function restore_partly_deleted(run, e, node)
  local cur = run.store:resource(e.urn)
  if not cur then return false end
  local tdef = ops.type_of(cur)
  local outputs, observed = tdef.read(ops.ctx(run, cur), cur.id, cur.inputs, cur.outputs)
  if outputs == nil then
    run.store:remove(e.urn)
    return false
  end
  local now = {}
  for k, v in pairs(cur.inputs) do now[k] = v end
  for k, v in pairs(observed or {}) do now[k] = v end
  if #diff.changes(now, cur.inputs) > 0 then
    outputs = tdef.update(ops.ctx(run, cur), cur.id, now, cur.inputs, outputs) or outputs
    node.detail = "restored what its failed delete had removed"
  end
  if not diff.equal(cur.outputs, outputs) then run.store:put(e.urn, ops.with(cur, { outputs = outputs })) end
  run.store:commit()
  return true
end

local function undo(run, e, node, renamed)
  local store = run.store
  if e.kind == "create" and e.status == "done" then
    ops.delete(run, e.rec)
    restore_replaced(run, e)
    store:commit()
    node.detail = node.detail or ("deleted %s"):format(e.rec.id)
  elseif e.kind == "create" then
    undo_started_create(run, e, node)
  elseif e.kind == "update" then
    local cur = store:resource(e.urn)
    if not cur then return end
    local tdef = ops.type_of(cur)
    local from = e.status == "done" and cur.inputs or e.props
    local to = renamed_value(e.old.inputs, renamed)
    local outputs = tdef.update(ops.ctx(run, cur), cur.id, from, to, cur.outputs)
    store:put(e.urn, ops.with(e.old, { inputs = to, outputs = outputs or e.old.outputs }))
    store:commit()
    node.detail = "restored its previous properties"
  elseif e.kind == "delete" then
    if e.status ~= "done" and restore_partly_deleted(run, e, node) then return end
    local old = ops.with(e.old, { inputs = renamed_value(e.old.inputs, renamed) })
    local rec = ops.create_from(run, old, ops.type_of(old))
    add_renames(renamed, e.old, rec)
    node.detail = ("re-created (new id %s; it was %s)"):format(rec.id, e.old.id)
  end
end

-- Points a resource the run did not change at the re-created instances of what it
-- depends on (its properties named the deleted ones): an update to the renamed properties.
local function repoint(run, urn, node, renamed)
  local cur = run.store:resource(urn)
  if not cur then return end
  local to = renamed_value(cur.inputs, renamed)
  local tdef = ops.type_of(cur)
  local changes, replace = diff.resource(tdef, cur.inputs, to)
  if #changes == 0 then return end
  if replace or not tdef.update then
    error(("%s names a re-created resource by its old id in %s, which it cannot change "
      .. "in place: rerun the apply to replace it"):format(urn, changes[1].path), 0)
  end
  local outputs = tdef.update(ops.ctx(run, cur), cur.id, cur.inputs, to, cur.outputs)
  run.store:put(urn, ops.with(cur, { inputs = to, outputs = outputs or cur.outputs }))
  run.store:commit()
  node.detail = "now names the re-created resources it depends on"
end

-- What the entry's resource depends on: the entry's own deps (a create's, known before it
-- has a record: one that failed midway has none) and those of its records — new, old,
-- replaced, whichever there are.
local function deps_of(e)
  local out = {}
  for _, list in ipairs({ e.deps or {}, e.rec and e.rec.deps or {}, e.old and e.old.deps or {},
    e.replaced and e.replaced.deps or {} }) do
    for _, d in ipairs(list) do out[#out + 1] = d end
  end
  return out
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do
    if v == x then return true end
  end
  return false
end

local function node_for(run, urn, entries, renamed)
  local first = entries[1]
  local rec = first.rec or first.old or first.replaced or {}
  return { deps = {}, entries = entries, urn = urn,
    step = { urn = urn, type = first.type or rec.type, name = first.name or rec.name },
    action = "rollback",
    run = function(node)
      for i = #entries, 1, -1 do undo(run, entries[i], node, renamed) end
    end }
end

--- Undoes the entries of run.journal. Returns the scheduler's result; node.urn,
--- node.detail describe each step.
---
--- A resource gets up to two steps: "U" undoes what the run created or updated (deletes
--- the new instance, puts the old properties back), "R" re-creates what a delete-first
--- replacement deleted, after its U (the name is free again). The order:
---   * U(u) after U(v) when v depends on u (dependents' new instances go first);
---   * R(v) after R(u) when v's old record depends on u (the old graph is re-created from
---     its roots);
---   * U(v) restoring an update after R(u) when v's old record depends on u, and then U(u)
---     does not wait for U(v): v's old properties name u's re-created instance.
function M.run(run)
  local undos, recreates, order = {}, {}, {}
  for _, e in ipairs(run.journal) do
    if e.kind == "delete" then
      -- (one that failed may have done part of its work: it is checked too)
      recreates[e.urn] = e
      if not order[e.urn] then order[#order + 1], order[e.urn] = e.urn, true end
    else
      if not undos[e.urn] then
        undos[e.urn] = {}
        if not order[e.urn] then order[#order + 1], order[e.urn] = e.urn, true end
      end
      table.insert(undos[e.urn], e)
    end
  end
  local renamed = {}
  local nodes, U, R = {}, {}, {}
  for _, urn in ipairs(order) do
    if undos[urn] then
      local n = node_for(run, urn, undos[urn], renamed)
      n.key = "U " .. urn
      nodes[#nodes + 1], U[urn] = n, n
    end
    if recreates[urn] then
      local n = node_for(run, urn, { recreates[urn] }, renamed)
      n.key = "R " .. urn
      if U[urn] then n.deps[1] = U[urn].key end
      nodes[#nodes + 1], R[urn] = n, n
    end
  end
  for urn, v in pairs(U) do
    for _, e in ipairs(v.entries) do
      local restores_onto = e.kind == "update" and e.old.deps or {}
      for _, d in ipairs(deps_of(e)) do
        if d ~= urn then
          if R[d] and contains(restores_onto, d) then
            v.deps[#v.deps + 1] = R[d].key
          elseif U[d] then
            U[d].deps[#U[d].deps + 1] = v.key
          end
        end
      end
    end
  end
  for urn, v in pairs(R) do
    for _, d in ipairs(recreates[urn].old.deps) do
      if d ~= urn and R[d] then v.deps[#v.deps + 1] = R[d].key end
    end
  end
  -- Resources the run did not get to (an update planned after the failure) still name
  -- what was re-created by its old id: they are pointed at the new one.
  if next(R) then
    local urns = {}
    for urn in pairs(run.store.doc.resources) do
      if not U[urn] and not R[urn] then urns[#urns + 1] = urn end
    end
    table.sort(urns)
    for _, urn in ipairs(urns) do
      local rec = run.store:resource(urn)
      local n
      for _, d in ipairs(rec.deps or {}) do
        if R[d] then
          n = n or { key = "P " .. urn, deps = {}, action = "rollback",
            step = { urn = urn, type = rec.type, name = rec.name },
            run = function(node) repoint(run, urn, node, renamed) end }
          n.deps[#n.deps + 1] = R[d].key
        end
      end
      if n then nodes[#nodes + 1] = n end
    end
  end
  return schedule.run(nodes, {
    parallel = run.parallel,
    on_start = function(node) run.report:op_start(node) end,
    on_done = function(node) run.report:op_done(node) end,
  })
end

return M
