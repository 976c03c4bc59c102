-- Apply: the plan as a graph of operations run in parallel along the dependencies.
-- Phase 1 creates, updates and replaces declared resources (rollback covers it); phase 2
-- deletes what the stack no longer declares and the old instances of replaced resources,
-- in reverse dependency order, once nothing needs them.
local schedule = require "fo.engine.schedule"
local ops = require "fo.engine.ops"
local lifecycle = require "fo.engine.lifecycle"

local M = {}

-- Resources whose old instances must be gone before a delete-first replacement deletes
-- `urn`: removed ones depending on it (transitively).
local function removed_dependents(plan, urns)
  local out, changed = {}, true
  while changed do
    changed = false
    for _, s in ipairs(plan.steps) do
      if s.action == "delete" and not s.deposed and not out[s.urn] then
        for _, d in ipairs(s.old.deps) do
          if urns[d] or out[d] then out[s.urn], changed = true, true; break end
        end
      end
    end
  end
  return out
end

--- The phase 1 nodes of `plan` (those of declared resources have no `run`: M.phase1's).
function M.phase1_nodes(run, plan)
  local nodes = {}
  local first = {}
  for _, s in ipairs(plan.steps) do
    if s.action == "replace" and s.delete_first then first[s.urn] = s end
  end
  local early = removed_dependents(plan, first)
  -- one function (opts.run, M.phase1) and one key string per resource for all the nodes (a
  -- run of thousands of resources keeps its nodes until it ends: no closure per node, no
  -- copy of a key per edge)
  local key_of = {}
  for _, s in ipairs(plan.steps) do
    if s.decl then key_of[s.decl] = "M " .. s.urn end
  end
  for _, s in ipairs(plan.steps) do
    if s.decl then
      local deps = {}
      for i, d in ipairs(s.decl.deps) do deps[i] = key_of[d] or "M " .. d.urn end
      if first[s.urn] then deps[#deps + 1] = "D " .. s.urn end
      -- (sized once for the fields the run adds — the scheduler's started, finished and ok,
      -- the report's action, the converge's rec —, not grown twice: eight slots, which an
      -- operation's node fills, its `inline` being nil)
      nodes[#nodes + 1] = { key = key_of[s.decl], deps = deps, step = s,
        inline = s.action == "noop" or nil, started = nil, finished = nil, ok = nil,
        action = nil }
    end
  end
  -- Deletions that must precede a delete-first replacement: dependents' old instances first.
  for _, s in ipairs(plan.steps) do
    local is_first = first[s.urn] ~= nil
    if is_first or (s.action == "delete" and early[s.urn]) then
      local deps = {}
      for _, o in ipairs(plan.steps) do
        if (first[o.urn] or (o.action == "delete" and early[o.urn])) and o ~= s then
          for _, d in ipairs(o.old.deps) do
            if d == s.urn then deps[#deps + 1] = "D " .. o.urn end
          end
        end
      end
      nodes[#nodes + 1] = { key = "D " .. s.urn, deps = deps, step = s,
        action = is_first and "delete (replace)" or "delete",
        run = function() ops.delete_first(run, s.urn) end }
    end
  end
  return nodes
end

--- Phase 2 nodes: every recorded resource not declared, and every deposed instance,
--- deleted after all that depend on it (forgotten instead when retained: lifecycle.lua).
--- `declared`: URN → its declaration (or true).
function M.deletion_nodes(run, declared)
  local store = run.store
  local recs = {}
  local urns = {}
  -- a targeted run (--only, only.lua) deletes its selection's alone
  local only = run.only
  for urn, rec in pairs(store.doc.resources) do
    if not declared[urn] and (not only or only.deletes[urn]) then urns[#urns + 1] = urn end
  end
  table.sort(urns)
  for _, urn in ipairs(urns) do recs[#recs + 1] = { rec = store.doc.resources[urn] } end
  for _, rec in ipairs(store.doc.deposed) do
    if not only or only.reads[rec.urn] then recs[#recs + 1] = { rec = rec, deposed = true } end
  end
  local nodes = {}
  for i, r in ipairs(recs) do
    local decl = declared[r.rec.urn]
    local how = lifecycle.on_delete(r.rec, r.deposed, type(decl) == "table" and decl or nil)
    nodes[i] = { key = i, rec = r.rec, deposed = r.deposed, deps = {},
      step = { urn = r.rec.urn, type = r.rec.type, name = r.rec.name, deposed = r.deposed },
      action = how == "retain" and "retain" or r.deposed and "delete (replaced)" or "delete",
      run = function()
        -- (the plan refused protected ones; this holds should the state have changed since)
        if how == "protected" then error(("%s is protected: not deleted"):format(r.rec.urn), 0) end
        if how == "retain" then return lifecycle.forget(run, r.rec, r.deposed) end
        ops.delete(run, r.rec, r.deposed)
      end }
  end
  -- a waits for b when b depends on a's URN (b still uses a); indexed by URN so that
  -- destroying thousands of resources stays linear in the edges.
  local by_urn = {}
  for _, a in ipairs(nodes) do
    by_urn[a.rec.urn] = by_urn[a.rec.urn] or {}
    table.insert(by_urn[a.rec.urn], a)
  end
  for _, b in ipairs(nodes) do
    for _, d in ipairs(b.rec.deps) do
      for _, a in ipairs(by_urn[d] or {}) do
        if a.rec.urn ~= b.rec.urn then a.deps[#a.deps + 1] = b.key end
      end
    end
  end
  return nodes
end

local function hooks(run)
  return {
    parallel = run.parallel, stop_on_failure = true,
    on_start = function(node) run.report:op_start(node) end,
    on_done = function(node) run.report:op_done(node) end,
    -- the first Ctrl-C (interrupt.lua), or a lost lease (backend/lease.lua: another run
    -- holds the stack now)
    stop = function() return run.interrupted or (run.lock and run.lock.lost) end,
  }
end
M.hooks = hooks

-- Tells the report how many operations (not the inline no-ops) the stage runs, and runs them
-- (`default`: the run of the nodes that have none).
local function run_nodes(run, nodes, default)
  local n = 0
  for _, node in ipairs(nodes) do
    if not node.inline then n = n + 1 end
  end
  run.report:expect(n)
  local opts = hooks(run)
  opts.run = default
  return schedule.run(nodes, opts)
end

--- Runs phase 1; returns the scheduler's result.
function M.phase1(run, plan)
  return run_nodes(run, M.phase1_nodes(run, plan), function(node, release)
    node.action, node.rec = ops.converge(run, node.step.decl, release)
  end)
end

--- Runs phase 2 (deletions); returns the scheduler's result.
function M.phase2(run, declared)
  return run_nodes(run, M.deletion_nodes(run, declared))
end

return M
