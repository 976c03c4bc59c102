-- What a run tells people and programs. Human: the plan (grouped by action, properties
-- aligned, colours on a terminal), progress (a live view of the operations in flight on a
-- terminal, else one plain line per operation start and end), failures, rollback, outputs,
-- a summary. --json: one JSON event per line (docs/json-events.md). The facts are also kept
-- in report.doc, which engine.run returns to in-process callers.
local diff = require "fo.engine.diff"
local schema = require "fo.engine.schema"
local term = require "fo.engine.term"
local core = require "fo.core"
local task = require "fo.task"
local json = require "fo.json"
local secret = require "fo.engine.secret"

local M = {}
local Report = {}
Report.__index = Report

--- The version of the event schema (docs/json-events.schema.json): bumped when a field
--- changes meaning or goes away; new events and fields keep it.
M.EVENTS_VERSION = 1

local SYMBOL = { create = "+", update = "~", replace = "-/+", delete = "-", noop = " " }
local COLOR = { create = "green", update = "yellow", replace = "magenta", delete = "red" }
local PAST = { create = "created", update = "updated", replace = "replaced", delete = "deleted",
  noop = "unchanged", read = "read", rollback = "rolled back",
  ["delete (replace)"] = "deleted (to replace it)", ["delete (replaced)"] = "deleted (replaced)",
  retain = "retained (forgotten, not deleted)" }
local ING = { create = "creating", update = "updating", replace = "replacing", delete = "deleting",
  noop = "checking", read = "reading", rollback = "rolling back",
  ["delete (replace)"] = "deleting (to replace it)", ["delete (replaced)"] = "deleting (replaced)",
  retain = "forgetting (retained)" }

local function stdout_write(s)
  io.stdout:write(s)
  io.stdout:flush()
end

--- opts: json (bool), out(text), err(text) writers (default stdout/stderr), live (bool: the
--- live view; default when stdout is a terminal and no writer is given), color (bool;
--- default: stdout is a terminal, NO_COLOR unset), size() → columns, rows (the live view's
--- terminal size; default fo.fs.termsize(stdout)), stack, mode.
function M.new(opts)
  opts = opts or {}
  local tty = opts.out == nil and not opts.json and require("fo.fs").isatty(io.stdout)
  local color = opts.color
  if color == nil then color = opts.out == nil and not opts.json and term.color_wanted(io.stdout) end
  local self = setmetatable({
    json = opts.json, t0 = core.now(), style = term.style(color),
    -- every line goes out with the secret values masked, a second line of defence
    write_out = secret.masked(opts.out or stdout_write),
    write_err = secret.masked(opts.err or function(s) io.stderr:write(s) end),
    doc = { notices = {}, operations = {}, rollback = {}, errors = {}, stack = opts.stack,
      mode = opts.mode },
    stage = "refresh", -- refresh reads come first; phase() moves it on
  }, Report)
  local live = opts.live
  if live == nil then live = tty end
  if live and not opts.json then
    self.view = require("fo.engine.progress").new{ write = self.write_out, style = self.style,
      size = opts.size or function() return require("fo.fs").termsize(io.stdout) end }
  end
  return self
end

-- Events ---------------------------------------------------------------------------

local LEAD = { "v", "event", "t" }

-- Lists in event payloads: written as [] when empty (JSON cannot tell from a Lua table).
local LISTS = { steps = true, changes = true, resources = true, items = true }

local function plain(v, key)
  local ref = require "fo.engine.ref"
  if v == ref.UNKNOWN then return "(known after apply)" end
  if secret.is(v) then return secret.TEXT end
  if type(v) ~= "table" or v == json.EMPTY_ARRAY then return v end
  if LISTS[key] and next(v) == nil then return json.EMPTY_ARRAY end
  local t = {}
  for k, x in pairs(v) do t[k] = plain(x, k) end
  return t
end
M.plain = plain

--- Writes one event (with --json): {"v":1,"event":name,"t":seconds since the start, ...}.
function Report:emit(name, fields)
  if not self.json then return end
  if not self.started_event and name ~= "run" then
    self.started_event = true
    self:emit("run", { stack = self.doc.stack, mode = self.doc.mode,
      fo_version = require("fo").version })
  end
  self.started_event = true
  local e = plain(fields or {})
  e.v, e.event = M.EVENTS_VERSION, name
  e.t = math.floor((core.now() - self.t0) * 1000 + 0.5) / 1000
  local ok, text = pcall(json.line, e, LEAD)
  if not ok then
    text = json.line({ v = M.EVENTS_VERSION, event = "error", t = e.t,
      error = { text = "report: " .. tostring(text) } }, LEAD)
  end
  self.write_out(text .. "\n")
end

-- Human text -------------------------------------------------------------------------

--- Human text on stdout (nothing with --json); through the live view when there is one.
function Report:out(fmt, ...)
  if self.json then return end
  local text = select("#", ...) > 0 and fmt:format(...) or fmt
  if self.view then self.view:print(text) else self.write_out(text) end
end

--- Text on stderr (also with --json); the live view steps aside for it.
function Report:err(fmt, ...)
  local text = select("#", ...) > 0 and fmt:format(...) or fmt
  if self.view then
    self.view:around(function() self.write_err(text) end)
  else
    self.write_err(text)
  end
end

local function label(step)
  return ("%s %s"):format(step.type or "?", step.name or step.urn or "?")
end

--- An error value as a table for people and JSON: AWS errors keep their fields.
function M.describe_error(e)
  if secret.is(e) then return { text = secret.TEXT } end
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
  self:emit("notice", { level = "notice", text = text })
  self:err("%s %s\n", self.style.bold("fo:"), text)
end

function Report:warn(text)
  table.insert(self.doc.notices, text)
  self:emit("notice", { level = "warning", text = text })
  self:err("%s %s\n", self.style.yellow("fo: warning:"), text)
end

function Report:adopted(items)
  self.doc.adopted = items
  for _, it in ipairs(items) do
    self:emit("adopted", { urn = it.urn, id = it.id, note = it.note })
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
    local entry = { urn = d.urn, kind = d.kind, id = d.id, changes = {} }
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
  self:emit("drift", { resources = self.doc.drift })
end

local function secret(step, key)
  local tdef = step.decl and step.decl.tdef
  return tdef and key and schema.is_secret(tdef.schema, key)
end

-- The plan ----------------------------------------------------------------------------

-- Actions in the order the plan shows its groups.
local GROUPS = { "create", "update", "replace", "delete" }

local function what_of(s)
  if s.import then -- import.lua: read by this id, then whatever else the plan does
    local was = s.import
    s.import = nil
    local rest = s.action ~= "noop" and what_of(s)
    s.import = was
    return ("import %s%s"):format(was, s.action == "noop" and " (no changes)"
      or s.action == "replace" and ", then REPLACE" .. rest:gsub("^replace", "")
        .. " (the imported resource is deleted)"
      or ", then " .. rest)
  end
  if s.protected then
    return s.action .. " REFUSED: protected (lifecycle option protect)"
  elseif s.retain and s.action == "delete" then
    return "retain (forget, not deleted)" .. (s.deposed and ": old instance of a replaced resource"
      or "")
  elseif s.action == "replace" then
    return (s.delete_first and "replace (delete first)" or "replace (create before delete)")
      .. (s.retain and "; the old one retained (forgotten, not deleted)"
        or s.note and "; the old one: " .. s.note or "")
  elseif s.action == "update" then return "update in place"
  elseif s.deposed then
    return "delete (old instance of a replaced resource)" .. (s.note and "; " .. s.note or "")
  end
  return s.action == "delete" and s.note or s.action
end

-- A value in the plan: unknowns and secrets dimmed.
function Report:value(step, c, v)
  local st = self.style
  if secret(step, c.key) then return st.dim("(sensitive)") end
  local ref = require "fo.engine.ref"
  if v == ref.UNKNOWN then return st.dim("(known after apply)") end
  return diff.show(v)
end

-- The property lines of one step, aligned on the widest path.
function Report:plan_changes(s, indent)
  local st = self.style
  local function out(fmt, ...) self:out((indent or "") .. fmt, ...) end
  local width = 0
  for _, c in ipairs(s.changes or {}) do width = math.max(width, term.width(c.path)) end
  for _, c in ipairs(s.changes or {}) do
    local path = term.pad(c.path, width)
    local forces = s.forcing and s.forcing[c.key] and s.action == "replace"
    local tail = forces and "  " .. st.red("(forces replacement)") or ""
    if s.action == "create" then
      out("        %s = %s\n", path, self:value(s, c, c.new))
    elseif c.changed then
      out("        %s: changed%s\n", c.path, tail)
    else
      out("        %s %s%s → %s%s\n", c.path .. ":", (" "):rep(width - term.width(c.path)),
        self:value(s, c, c.old), self:value(s, c, c.new), tail)
    end
  end
end

-- The plan's steps as the document and the plan event list them (secret values hidden).
local function plan_rows(plan, recipe)
  local components = require "fo.engine.component"
  local rows = {}
  for _, s in ipairs(plan.steps) do
    local row = { urn = s.urn, action = s.action, type = s.type, name = s.name,
      deposed = s.deposed or nil, delete_first = s.delete_first or nil, note = s.note,
      lifecycle = s.lifecycle, import = s.import,
      component = components.path_of(s, recipe), changes = {} }
    rows[#rows + 1] = row
    for _, c in ipairs(s.changes or {}) do
      local hidden = secret(s, c.key)
      row.changes[#row.changes + 1] = { path = c.path,
        old = hidden and "(sensitive)" or c.old, new = hidden and "(sensitive)" or c.new,
        forces_replacement = s.forcing and s.forcing[c.key] or nil }
    end
  end
  return rows
end

--- The plan: resources grouped by action (create, update, replace, delete), each with its
--- property changes, and the summary line.
function Report:plan(plan, info)
  local st = self.style
  self:out("Plan for stack %s (target %s):\n", info.stack, info.target)
  local by_action = {}
  local components = require "fo.engine.component"
  local recipe = components.recipe_of(plan.steps)
  self.recipe = recipe
  for _, s in ipairs(plan.steps) do
    by_action[s.action] = by_action[s.action] or {}
    table.insert(by_action[s.action], s)
  end
  local lw = 40
  for _, s in ipairs(plan.steps) do
    if s.action ~= "noop" or s.import then lw = math.max(lw, term.width(label(s))) end
  end
  for _, s in ipairs(by_action.noop or {}) do -- imports that change nothing (import.lua)
    if s.import then
      self:out("  %s %s %s\n", st.cyan("<= "), term.pad(label(s), lw), st.cyan(what_of(s)))
    end
  end
  for _, action in ipairs(GROUPS) do
    -- with components: a tree, each component's heading once per group, its resources below
    local shown = {}
    for _, it in ipairs(components.tree_order(by_action[action] or {}, self.recipe)) do
      local s, indent = it.step, (" "):rep(2 * #it.lin)
      for depth, path in ipairs(it.lin) do
        if shown[depth] ~= path then
          shown[depth] = path
          local c = self.recipe.components.by_path[path]
          self:out("      %s%s %s\n", (" "):rep(2 * (depth - 1)), st.bold(c.name .. "/"),
            st.dim("(" .. c.type .. ")"))
        end
      end
      for depth = #it.lin + 1, #shown do shown[depth] = nil end
      local color = st[COLOR[action]]
      self:out("  %s %s%s %s\n", color(("%-3s"):format(SYMBOL[action])), indent,
        term.pad(label(s), lw - #indent), color(what_of(s)))
      self:plan_changes(s, indent)
    end
  end
  local n = plan.counts
  -- the document's rows copy what the plan's steps hold: made when first read (the plan
  -- stays alive with the run anyway), not kept beside it for every resource of a large run
  self.doc.plan = setmetatable({ counts = n }, { __index = function(t, k)
    if k ~= "steps" then return nil end
    local rows = plan_rows(plan, recipe)
    rawset(t, "steps", rows)
    return rows
  end })
  if self.json then
    local crows = recipe and components.rows(recipe) or {}
    self:emit("plan", { stack = info.stack, target = info.target, steps = plan_rows(plan, recipe),
      counts = n, changed = plan.changed, only = info.only,
      components = #crows > 0 and crows or nil })
  end
  if not plan.changed then
    self:out("No changes. The stack matches the recipe (%d resource%s).\n", n.noop,
      n.noop == 1 and "" or "s")
  else
    self:out("%s %s%s to add, %s to change, %s to replace, %s to destroy%s.%s\n", st.bold("Plan:"),
      n.import and ("%d to import, "):format(n.import) or "", st.green(tostring(n.create)),
      st.yellow(tostring(n.update)),
      st.magenta(tostring(n.replace)), st.red(tostring(n.delete)),
      n.retain and (", %d to forget (retain_on_delete)"):format(n.retain) or "",
      n.noop > 0 and (" %d unchanged."):format(n.noop) or "")
  end
end

-- Progress ----------------------------------------------------------------------------

--- A stage of the run begins: `name` is apply, delete, destroy or rollback; `text` its
--- heading for people (nil: none); `total` the operations it will run (nil: not known ahead).
function Report:phase(text, name, total)
  self.stage = name or self.stage
  self:emit("phase", { phase = self.stage, text = text, total = total })
  if text then self:out("%s\n", text) end
  if self.view then
    self.view:reopen()
    self.view:begin(total)
  end
end

--- The number of operations the current stage will run (known once its graph is built).
function Report:expect(total)
  if self.view then self.view.total = total end
end

local function stage_of(self, node)
  return node.action == "rollback" and "rollback" or self.stage
end

function Report:op_start(node)
  if node.quiet then return end
  node.action = node.action or (node.step and node.step.action)
  if node.inline then return end
  self.running = self.running or {}
  self.running[node] = true
  -- (the event's fields only with --json: emit drops them otherwise, per operation)
  if self.json then
    self:emit("op_start", { phase = stage_of(self, node), urn = node.step.urn,
      type = node.step.type, name = node.step.name, action = node.action,
      component = self:component_of(node.step) })
  end
  if self.view then
    self.view:started(node, ("%s %s"):format(ING[node.action] or node.action, label(node.step)))
    return
  end
  self:out("  [%7.2fs] %s: %s…\n", node.started - self.t0, label(node.step),
    ING[node.action] or node.action)
end

-- The component path of an operation's resource (nil: top level), for its events.
function Report:component_of(step)
  return require("fo.engine.component").path_of(step, self.recipe)
end

-- "type name (urn): action failed: error" — the one line of a failed operation.
local function failure_text(node, e)
  return ("%s (%s): %s failed: %s"):format(label(node.step), node.step.urn,
    node.action or "operation", e.text)
end

function Report:op_done(node)
  if self.running then self.running[node] = nil end
  if node.quiet and node.ok then return end
  if node.ok and node.action == "noop" then return end -- (nothing to record or say)
  local st = self.style
  local took = node.finished - node.started
  local entry = { urn = node.step.urn, action = node.action, ok = node.ok,
    started = node.started - self.t0, seconds = took, id = node.rec and node.rec.id or nil,
    detail = node.detail }
  local list = node.action == "rollback" and self.doc.rollback or self.doc.operations
  if node.ok then
    list[#list + 1] = entry
    if self.json then
      self:emit("op_end", { phase = stage_of(self, node), urn = entry.urn,
        type = node.step.type, name = node.step.name, action = node.action, ok = true,
        seconds = took, id = entry.id, detail = node.detail,
        component = self:component_of(node.step) })
    end
    if self.json and not self.view then return end
    local tail = node.rec and node.rec.id and (" " .. node.rec.id) or ""
    if node.detail then tail = tail .. ": " .. node.detail end
    local line = ("  [%7.2fs] %s: %s%s (%.2fs)\n"):format(node.finished - self.t0,
      label(node.step), st.green(PAST[node.action] or node.action), tail, took)
    if self.view then self.view:finished(node, true, not self.json and line or nil)
    else self.write_out(line) end
  else
    entry.error = M.describe_error(node.error)
    list[#list + 1] = entry
    self:emit("op_end", { phase = stage_of(self, node), urn = entry.urn, type = node.step.type,
      name = node.step.name, action = node.action, ok = false, seconds = took,
      error = entry.error, component = self:component_of(node.step) })
    if self.view then self.view:finished(node, false) end
    -- said here, as it happens, and only here: Report:failure does not repeat it
    node.reported = true
    self:err("%s %s\n", st.red("Error:"), failure_text(node, entry.error))
    require("fo.log").debug("%s", node.traceback or "")
  end
end

--- A retry of an AWS call (the client's on_retry): an event, and a note on the operation
--- in flight in the live view. The operation is the one whose task made the call.
function Report:retry(info)
  local node = require("fo.engine.schedule").node_of(coroutine.running())
  if not (self.running and self.running[node]) then node = nil end
  self:emit("retry", { urn = node and node.step.urn, service = info.service,
    operation = info.operation, region = info.region, attempt = info.attempt,
    reason = info.reason, class = info.class, status = info.status, delay = info.delay })
  if self.view and node then
    self.view:note(node, ("retry %d: %s"):format(info.attempt, tostring(info.reason)))
  end
end

--- The first Ctrl-C: said at once, on stderr.
function Report:interrupted(signal, what)
  self.doc.interrupted = true
  self:emit("interrupt", { signal = signal, text = what })
  self:err("\n%s %s\n", self.style.yellow("fo: interrupted:"), what)
end

--- The failure that stopped a run: each failed operation as an error (the document, an
--- `error` event), its line on stderr unless op_done already printed it; then what next.
function Report:failure(failed, what_next)
  for _, node in ipairs(failed) do
    local e = M.describe_error(node.error)
    self.doc.errors[#self.doc.errors + 1] = { urn = node.step.urn, action = node.action, error = e }
    self:emit("error", { urn = node.step.urn, action = node.action, error = e })
    if not node.reported then
      self:err("%s %s\n", self.style.red("Error:"), failure_text(node, e))
    end
  end
  if what_next then self:err("%s\n", what_next) end
end

--- An engine error (recipe, config, state, lock, usage) for people.
function Report:error(e)
  local d = M.describe_error(e)
  self.doc.errors[#self.doc.errors + 1] = { error = d }
  self:emit("error", { error = d })
  self:err("fo: %s\n", d.text)
end

--- An error that is not an engine error ({text=}, with a traceback), for people.
function Report:crash(failure, text)
  self.doc.errors[#self.doc.errors + 1] = { error = failure }
  self:emit("error", { error = { text = text } })
  self:err("fo-run: %s\n", text)
end

function Report:outputs(values, order)
  self.doc.outputs = values
  self:emit("outputs", { outputs = values })
  if #order == 0 then return end
  self:out("Outputs:\n")
  for _, name in ipairs(order) do self:out("  %s = %s\n", name, diff.show(values[name], 200)) end
end

--- The last line: what happened and how long it took.
function Report:summary(status, text)
  if self.view then self.view:close() end
  self.doc.status = status
  self.doc.summary = text
  self.doc.seconds = core.now() - self.t0
  local st = self.style
  local color = status == "ok" and st.green or status == "rolled_back" and st.yellow
    or status == "interrupted" and st.yellow or st.red
  self:out("%s (%.2fs)\n", color(text), core.now() - self.t0)
end

-- Fields of the document that are lists: written as [] when empty.
local DOC_LISTS = { notices = true, operations = true, rollback = true, errors = true,
  adopted = true, drift = true, steps = true, changes = true }

local function mark_lists(v, key)
  if type(v) ~= "table" then return v end
  if DOC_LISTS[key] and next(v) == nil then return json.EMPTY_ARRAY end
  for k, x in pairs(v) do v[k] = mark_lists(x, k) end
  return v
end
M.mark_lists = mark_lists

--- What the run's operations did, counted per resource as the plan counts them
--- ({create, update, replace, delete}): a replacement is one `replace` whichever way it
--- went — delete first (a `delete (replace)`, then a create) or create before delete (a
--- replace, then the old instance's `delete (replaced)`, which is part of it); a deposed
--- instance left by an earlier run is a `delete`, as in the plan. Successful operations of
--- the apply, delete and destroy stages (`operations`), not rollback steps.
function M.done_counts(operations)
  local by_urn = {}
  for _, o in ipairs(operations) do
    if o.ok then
      local u = by_urn[o.urn] or {}
      by_urn[o.urn] = u
      u[o.action] = (u[o.action] or 0) + 1
    end
  end
  local n = { create = 0, update = 0, replace = 0, delete = 0 }
  for _, u in pairs(by_urn) do
    local replaced = (u.replace or 0) + ((u["delete (replace)"] and u.create) and 1 or 0)
    n.replace = n.replace + replaced
    if not u["delete (replace)"] then n.create = n.create + (u.create or 0) end
    n.update = n.update + (u.update or 0)
    n.delete = n.delete + (u.delete or 0) + math.max(0, (u["delete (replaced)"] or 0)
      - (u.replace or 0))
    -- a resource forgotten (retain_on_delete); not the old instance of one replaced here
    if u.retain and not u.replace then n.retain = (n.retain or 0) + u.retain end
  end
  return n
end

--- The end of the run: with --json, the summary event (status, exit code, seconds, counts
--- of what was done, calls on the sim, the state file); `extra` fields join the document.
function Report:finish(code, extra)
  if self.view then self.view:close() end
  self.doc.exit_code = code
  for k, v in pairs(extra or {}) do self.doc[k] = v end
  local d = self.doc
  if self.json then
    local done = M.done_counts(d.operations)
    done.rollback = #d.rollback
    self:emit("summary", { status = d.status or (code == 0 and "ok" or "error"),
      text = d.summary, exit_code = code, seconds = core.now() - self.t0, stack = d.stack,
      mode = d.mode, target = d.target, done = done, failed = #d.errors,
      calls = d.calls, state_file = d.state_file, interrupted = d.interrupted or nil,
      only = d.only })
  end
end

return M
