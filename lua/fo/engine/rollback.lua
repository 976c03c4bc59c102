-- Rollback: undo what this run did before its failure, in reverse dependency order —
-- delete what it created (and adopt-then-delete what an interrupted create may have left),
-- update back what it updated, re-create what a delete-first replacement deleted. A step
-- that fails is reported and the state keeps the truth (it never forgets a live resource).
local schedule = require "fo.engine.schedule"
local ops = require "fo.engine.ops"
local types = require "fo.engine.types"

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

local function undo(run, e, node)
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
    local outputs = tdef.update(ops.ctx(run, cur), cur.id, from, e.old.inputs, cur.outputs)
    store:put(e.urn, ops.with(e.old, { outputs = outputs or e.old.outputs }))
    store:commit()
    node.detail = "restored its previous properties"
  elseif e.kind == "delete" and e.status == "done" then
    local rec = ops.create_from(run, e.old, ops.type_of(e.old))
    node.detail = ("re-created (new id %s; it was %s)"):format(rec.id, e.old.id)
  end
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

--- Undoes the entries of run.journal. Returns the scheduler's result; node.urn,
--- node.detail describe each step.
function M.run(run)
  local by_urn, order = {}, {}
  for _, e in ipairs(run.journal) do
    -- a delete that failed changed nothing to undo
    if e.kind == "delete" and e.status ~= "done" then goto continue end
    if not by_urn[e.urn] then by_urn[e.urn] = {}; order[#order + 1] = e.urn end
    table.insert(by_urn[e.urn], e)
    ::continue::
  end
  local nodes, index = {}, {}
  for _, urn in ipairs(order) do
    local entries = by_urn[urn]
    local first = entries[1]
    local rec = first.rec or first.old or first.replaced or {}
    local node = { key = urn, deps = {}, entries = entries,
      step = { urn = urn, type = first.type or rec.type, name = first.name or rec.name },
      action = "rollback",
      run = function(node)
        for i = #entries, 1, -1 do undo(run, entries[i], node) end
      end }
    nodes[#nodes + 1], index[urn] = node, node
  end
  -- undo(u) waits for undo(v) when v depends on u
  for _, v in ipairs(nodes) do
    for _, e in ipairs(v.entries) do
      for _, d in ipairs(deps_of(e)) do
        local u = index[d]
        if u and u ~= v then u.deps[#u.deps + 1] = v.key end
      end
    end
  end
  return schedule.run(nodes, {
    parallel = run.parallel,
    on_start = function(node) run.report:op_start(node) end,
    on_done = function(node) run.report:op_done(node) end,
  })
end

return M
