-- What a run tells people: the plan table, a progress line per operation with timing, the
-- failure (resource, operation, AWS code and message) and rollback, a summary, outputs.
-- With --json, the same facts as one JSON document on stdout at the end.
local diff = require "fo.engine.diff"
local schema = require "fo.engine.schema"
local core = require "fo.core"
local task = require "fo.task"
local json = require "fo.json"

local M = {}
local Report = {}
Report.__index = Report

local SYMBOL = { create = "+", update = "~", replace = "-/+", delete = "-", noop = " " }
local PAST = { create = "created", update = "updated", replace = "replaced", delete = "deleted",
  noop = "unchanged", read = "read", rollback = "rolled back",
  ["delete (replace)"] = "deleted (to replace it)", ["delete (replaced)"] = "deleted (replaced)" }
local ING = { create = "creating", update = "updating", replace = "replacing", delete = "deleting",
  noop = "checking", read = "reading", rollback = "rolling back",
  ["delete (replace)"] = "deleting (to replace it)", ["delete (replaced)"] = "deleting (replaced)" }

--- opts: json (bool), out(text), err(text) writers (default stdout/stderr).
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    json = opts.json, t0 = core.now(),
    write_out = opts.out or function(s) io.stdout:write(s) end,
    write_err = opts.err or function(s) io.stderr:write(s) end,
    doc = { notices = {}, operations = {}, rollback = {}, errors = {} },
  }, Report)
  return self
end

function Report:out(fmt, ...)
  if self.json then return end
  self.write_out(select("#", ...) > 0 and fmt:format(...) or fmt)
end

function Report:err(fmt, ...)
  self.write_err(select("#", ...) > 0 and fmt:format(...) or fmt)
end

local function label(step)
  return ("%s %s"):format(step.type or "?", step.name or step.urn or "?")
end

--- An error value as a table for people and JSON: AWS errors keep their fields.
function M.describe_error(e)
  if type(e) == "table" and e.code and e.service then
    return { service = e.service, operation = e.operation, code = e.code, message = e.message,
      status = e.status, request_id = e.request_id, region = e.region, text = tostring(e) }
  end
  if type(e) == "table" and e.kind and e.message then
    return { kind = e.kind, message = e.message, where = e.where, text = tostring(e) }
  end
  return { text = task.describe(e) }
end

--- A loud line (a new stack's target, a broken lock, ...), on stderr so it shows with --json.
function Report:notice(text)
  table.insert(self.doc.notices, text)
  self:err("fo: %s\n", text)
end

function Report:warn(text)
  table.insert(self.doc.notices, text)
  self:err("fo: warning: %s\n", text)
end

function Report:adopted(items)
  self.doc.adopted = items
  for _, it in ipairs(items) do
    if it.id then
      self:out("Adopted %s: %s (a run was interrupted after creating it)\n", it.urn, it.id)
    elseif it.note then
      self:warn(it.urn .. ": " .. it.note)
    else
      self:out("Interrupted create of %s left nothing behind; it will be created\n", it.urn)
    end
  end
end

function Report:drift(items)
  self.doc.drift = {}
  if #items == 0 then return end
  self:out("Drift (changed outside fo since the last run):\n")
  for _, d in ipairs(items) do
    local entry = { urn = d.urn, kind = d.kind, changes = {} }
    if d.kind == "deleted" then
      self:out("  %s: deleted (was %s)\n", d.urn, d.id)
    else
      self:out("  %s: changed\n", d.urn)
      for _, c in ipairs(d.changes) do
        self:out("      %s: %s → %s\n", c.path, diff.show(c.old), diff.show(c.new))
        entry.changes[#entry.changes + 1] = { path = c.path, old = c.old, new = c.new }
      end
    end
    table.insert(self.doc.drift, entry)
  end
end

local function secret(step, key)
  local tdef = step.decl and step.decl.tdef
  return tdef and key and schema.is_secret(tdef.schema, key)
end

local function shown(step, c, v)
  if secret(step, c.key) then return "(sensitive)" end
  return diff.show(v)
end

local function json_value(v)
  local ref = require "fo.engine.ref"
  if v == ref.UNKNOWN then return "(known after apply)" end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = json_value(x) end
    return t
  end
  return v
end

--- The plan table.
function Report:plan(plan, info)
  local rows = {}
  self:out("Plan for stack %s (target %s):\n", info.stack, info.target)
  for _, s in ipairs(plan.steps) do
    local row = { urn = s.urn, action = s.action, type = s.type, name = s.name,
      deposed = s.deposed or nil, delete_first = s.delete_first or nil, changes = {} }
    rows[#rows + 1] = row
    if s.action ~= "noop" then
      local what = s.action
      if s.action == "replace" then
        what = s.delete_first and "replace (delete first)" or "replace (create before delete)"
      elseif s.action == "update" then what = "update in place"
      elseif s.deposed then what = "delete (old instance of a replaced resource)" end
      self:out("  %-3s %-40s %s\n", SYMBOL[s.action], label(s), what)
      for _, c in ipairs(s.changes or {}) do
        local secret_value = secret(s, c.key)
        row.changes[#row.changes + 1] = { path = c.path,
          old = secret_value and "(sensitive)" or json_value(c.old),
          new = secret_value and "(sensitive)" or json_value(c.new),
          forces_replacement = s.forcing and s.forcing[c.key] or nil }
        if s.action == "create" then
          self:out("        %s = %s\n", c.path, shown(s, c, c.new))
        elseif c.changed then
          self:out("        %s: changed%s\n", c.path,
            s.forcing and s.forcing[c.key] and "  (forces replacement)" or "")
        else
          self:out("        %s: %s → %s%s\n", c.path, shown(s, c, c.old), shown(s, c, c.new),
            s.action == "replace" and s.forcing[c.key] and "  (forces replacement)" or "")
        end
      end
    end
  end
  local n = plan.counts
  self.doc.plan = { steps = rows, counts = n }
  if not plan.changed then
    self:out("No changes. The stack matches the recipe (%d resource%s).\n", n.noop,
      n.noop == 1 and "" or "s")
  else
    self:out("Plan: %d to create, %d to update, %d to replace, %d to delete, %d unchanged.\n",
      n.create, n.update, n.replace, n.delete, n.noop)
  end
end

function Report:phase(text)
  self:out("%s\n", text)
end

function Report:op_start(node)
  if node.quiet then return end
  node.action = node.action or (node.step and node.step.action)
  if node.inline then return end
  self:out("  [%7.2fs] %s: %s…\n", node.started - self.t0, label(node.step), ING[node.action] or node.action)
end

function Report:op_done(node)
  if node.quiet and node.ok then return end
  local took = node.finished - node.started
  local entry = { urn = node.step.urn, action = node.action, ok = node.ok,
    started = node.started - self.t0, seconds = took, id = node.rec and node.rec.id or nil,
    detail = node.detail }
  local list = node.action == "rollback" and self.doc.rollback or self.doc.operations
  if node.ok then
    if node.action == "noop" then return end
    list[#list + 1] = entry
    local tail = node.rec and node.rec.id and (" " .. node.rec.id) or ""
    if node.detail then tail = tail .. ": " .. node.detail end
    self:out("  [%7.2fs] %s: %s%s (%.2fs)\n", node.finished - self.t0, label(node.step),
      PAST[node.action] or node.action, tail, took)
  else
    entry.error = M.describe_error(node.error)
    list[#list + 1] = entry
    self:err("  [%7.2fs] %s: %s FAILED after %.2fs: %s\n", node.finished - self.t0,
      label(node.step), node.action or "operation", took, entry.error.text)
    require("fo.log").debug("%s", node.traceback or "")
  end
end

--- The failure that stopped a run, one paragraph per failed operation.
function Report:failure(failed, what_next)
  for _, node in ipairs(failed) do
    local e = M.describe_error(node.error)
    local text = ("%s (%s): %s failed: %s"):format(label(node.step), node.step.urn,
      node.action or "operation", e.text)
    self.doc.errors[#self.doc.errors + 1] = { urn = node.step.urn, action = node.action, error = e }
    self:err("Error: %s\n", text)
  end
  if what_next then self:err("%s\n", what_next) end
end

--- An engine error (recipe, config, state, lock, usage) for people.
function Report:error(e)
  local d = M.describe_error(e)
  self.doc.errors[#self.doc.errors + 1] = { error = d }
  self:err("fo: %s\n", d.text)
end

function Report:outputs(values, order)
  self.doc.outputs = values
  if #order == 0 then return end
  self:out("Outputs:\n")
  for _, name in ipairs(order) do self:out("  %s = %s\n", name, diff.show(values[name], 200)) end
end

--- The last line: what happened and how long it took.
function Report:summary(status, text)
  self.doc.status = status
  self.doc.seconds = core.now() - self.t0
  self:out("%s (%.2fs)\n", text, core.now() - self.t0)
end

-- Fields of the document that are lists: written as [] when empty (the JSON writer
-- cannot tell an empty list from an empty object).
local LISTS = { notices = true, operations = true, rollback = true, errors = true,
  adopted = true, drift = true, steps = true, changes = true }

local function mark_lists(v, key)
  if type(v) ~= "table" then return v end
  if LISTS[key] and next(v) == nil then return json.EMPTY_ARRAY end
  for k, x in pairs(v) do v[k] = mark_lists(x, k) end
  return v
end

--- Writes the JSON document (with --json); `extra` fields are added to it.
function Report:finish(code, extra)
  self.doc.exit_code = code
  for k, v in pairs(extra or {}) do self.doc[k] = v end
  if self.json then
    local ok, text = pcall(json.encode, mark_lists(json_value(self.doc)))
    if not ok then text = json.encode({ exit_code = code, error = "report: " .. text }) end
    self.write_out(text .. "\n")
  end
end

return M
