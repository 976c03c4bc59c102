-- Lifecycle options of a declared resource (docs/recipes.md, "Lifecycle options"): protect,
-- retain_on_delete, ignore_changes, create_before_destroy / delete_before_replace,
-- replace_triggered_by, timeouts. Checked where declared; protect, retain_on_delete and the
-- timeouts are also recorded with the resource, so that a removal from the recipe or a
-- --destroy (which work without the declaration) still honour them.
local ref = require "fo.engine.ref"
local errors = require "fo.engine.errors"
local schema = require "fo.engine.schema"

local M = {}

--- The fo.resource options this module owns.
M.OPTS = { protect = true, retain_on_delete = true, ignore_changes = true,
  create_before_destroy = true, delete_before_replace = true, replace_triggered_by = true,
  timeouts = true }

local OPERATIONS = { create = true, update = true, delete = true }
local NONE = setmetatable({}, { __newindex = function()
  error("the lifecycle options of a declaration that has none are shared: not to be changed", 2)
end })
local UNIT = { s = 1, m = 60, h = 3600 }

--- Seconds of a duration: a number of seconds, or text like "90s", "15m", "1h30m".
--- nil when it is not one.
function M.seconds(v)
  if type(v) == "number" then return v > 0 and v or nil end
  if type(v) ~= "string" or v == "" then return nil end
  local total, rest = 0, v
  while rest ~= "" do
    local n, unit, after = rest:match("^(%d+%.?%d*)([smh])(.*)$")
    if not n then return nil end
    total, rest = total + tonumber(n) * UNIT[unit], after
  end
  return total > 0 and total or nil
end

local function fail(decl, where, fmt, ...)
  errors.raise("recipe", ("%s %s: " .. fmt):format(decl.type, decl.name, ...), where)
end

local function boolean(decl, opts, key, where)
  local v = opts[key]
  if v ~= nil and type(v) ~= "boolean" then
    fail(decl, where, "%s must be true or false, got %s", key, type(v))
  end
  return v
end

-- "tags.Owner" → { "tags", "Owner" }; the first part must be a property of the type.
local function ignore_paths(decl, list, where)
  if type(list) ~= "table" or ref.is(list) then
    fail(decl, where, 'ignore_changes takes a list of property paths (e.g. { "tags.Owner" })')
  end
  local out = {}
  for _, p in ipairs(list) do
    if type(p) ~= "string" or p == "" or p:match("^%.") or p:match("%.%.") or p:match("%.$") then
      fail(decl, where, "ignore_changes: %s is not a property path (name or name.key.key)",
        type(p) == "string" and ("%q"):format(p) or type(p))
    end
    local parts = {}
    for part in p:gmatch("[^.]+") do parts[#parts + 1] = part end
    local known = decl.tdef.schema.properties
    if not known[parts[1]] then
      fail(decl, where, "ignore_changes: unknown property %s%s; %s has: %s", parts[1],
        errors.did_you_mean(parts[1], known), decl.type, errors.list(known))
    end
    out[#out + 1] = { text = p, parts = parts }
  end
  return out
end

local function timeouts(decl, t, where)
  if type(t) ~= "table" or ref.is(t) then
    fail(decl, where, 'timeouts takes a table, e.g. { create = "15m", delete = "20m" }')
  end
  local out = {}
  for k, v in pairs(t) do
    if not OPERATIONS[k] then
      fail(decl, where, "timeouts: unknown operation %s%s (operations: %s)", tostring(k),
        errors.did_you_mean(tostring(k), OPERATIONS), errors.list(OPERATIONS))
    end
    local s = M.seconds(v)
    if not s then
      fail(decl, where, 'timeouts.%s: %s is not a duration (seconds, or text like "90s", "15m", '
        .. '"1h30m")', k, type(v) == "string" and ("%q"):format(v) or tostring(v))
    end
    out[k] = s
  end
  return next(out) and out or nil
end

--- Checks the lifecycle options of `opts` and puts them on `decl` (decl.lifecycle; the
--- replacement order in decl.delete_first). Raises a recipe error at `where`.
function M.declare(decl, opts, where)
  local lc = {}
  lc.protect = boolean(decl, opts, "protect", where) or nil
  lc.retain = boolean(decl, opts, "retain_on_delete", where) or nil
  local cbd = boolean(decl, opts, "create_before_destroy", where)
  local dbr = boolean(decl, opts, "delete_before_replace", where)
  if cbd ~= nil and dbr ~= nil and cbd == dbr then
    fail(decl, where, "create_before_destroy = %s and delete_before_replace = %s contradict each "
      .. "other: give one of them", tostring(cbd), tostring(dbr))
  end
  local first = dbr
  if cbd ~= nil then first = not cbd end
  if first ~= nil then
    if decl.delete_first ~= nil and decl.delete_first ~= first then
      fail(decl, where, "delete_first = %s contradicts %s: give one of them",
        tostring(decl.delete_first), cbd ~= nil and "create_before_destroy" or "delete_before_replace")
    end
    decl.delete_first, lc.create_first = first, not first
  end
  if opts.ignore_changes ~= nil then lc.ignore = ignore_paths(decl, opts.ignore_changes, where) end
  if opts.timeouts ~= nil then lc.timeouts = timeouts(decl, opts.timeouts, where) end
  local triggers = opts.replace_triggered_by
  if triggers ~= nil then
    if type(triggers) ~= "table" or ref.is(triggers) or require("fo.engine.recipe").decl_of(triggers) then
      triggers = { triggers }
    end
    lc.triggers = {}
    for _, t in ipairs(triggers) do
      local d = require("fo.engine.recipe").decl_of(t)
      if not d and ref.is(t) then ref.each(t, function(x) d = d or x end) end
      if d then lc.triggers[#lc.triggers + 1] = d
      elseif type(t) == "string" then lc.triggers[#lc.triggers + 1] = t
      else
        fail(decl, where, "replace_triggered_by takes resources (handles, their outputs or names), "
          .. "got %s", type(t))
      end
    end
  end
  -- none given (most resources): one shared empty table, not one per declaration
  decl.lifecycle = next(lc) and lc or NONE
end

--- After the recipe ran (recipe:finish): resolves replace_triggered_by names with
--- `by_name(s)` → decl, ambiguous; the triggers become dependencies (their plan is known
--- before this resource's, and they are applied first).
function M.finish(decl, by_name, names)
  local lc = decl.lifecycle
  for i, t in ipairs(lc and lc.triggers or {}) do
    if type(t) == "string" then
      local d, ambiguous = by_name(t)
      if not d then
        errors.raise("recipe", ambiguous
          and ("%s %s: replace_triggered_by '%s' is ambiguous (several types use that name): "
            .. "write 'type::name'"):format(decl.type, decl.name, t)
          or ("%s %s: replace_triggered_by '%s' names no declared resource%s"):format(decl.type,
            decl.name, t, errors.did_you_mean(t, names)), decl.where)
      end
      lc.triggers[i] = d
      t = d
    end
    if t == decl then
      errors.raise("recipe", ("%s %s: replace_triggered_by names the resource itself")
        :format(decl.type, decl.name), decl.where)
    end
    if not decl.dep_set[t] then decl.dep_set[t], decl.dep_where[t] = true, decl.where end
  end
end

--- What the state records of the declaration's lifecycle: { protect=, retain=, timeouts= }
--- (nil members when not set).
function M.recorded(decl)
  local lc = decl and decl.lifecycle or NONE
  -- none set (most): the shared empty table (its readers only read it)
  if lc.protect == nil and lc.retain == nil and lc.timeouts == nil then return NONE end
  return { protect = lc.protect, retain = lc.retain, timeouts = lc.timeouts }
end

--- `rec` (a fresh record: ops.record's) with the lifecycle fields the declaration records.
function M.with(rec, decl)
  local want = M.recorded(decl)
  rec.protect, rec.retain, rec.timeouts = want.protect, want.retain, want.timeouts
  return rec
end

--- True when the record's lifecycle fields differ from what the declaration records.
function M.record_differs(rec, decl)
  local want = M.recorded(decl)
  local diff = require "fo.engine.diff"
  return rec.protect ~= want.protect or rec.retain ~= want.retain
    or not diff.equal(rec.timeouts or NONE, want.timeouts or NONE)
end

-- ignore_changes ------------------------------------------------------------------------

local function get(t, parts)
  for _, p in ipairs(parts) do
    if type(t) ~= "table" or t == ref.UNKNOWN then return nil end
    t = t[p]
  end
  return t
end

local function set(t, parts, v)
  for i = 1, #parts - 1 do
    local nxt = t[parts[i]]
    if type(nxt) ~= "table" or nxt == ref.UNKNOWN then
      if v == nil then return end
      nxt = {}
    else
      nxt = schema.copy(nxt)
    end
    t[parts[i]] = nxt
    t = nxt
  end
  t[parts[#parts]] = v
end

--- The properties to converge to: `props` with every ignore_changes path holding the
--- recorded value from `old_inputs` (so neither a recipe change nor drift there is a
--- difference). Without a record (a create) the declared values are used.
function M.desired(decl, old_inputs, props)
  local lc = decl.lifecycle
  if not (lc and lc.ignore) or not old_inputs then return props end
  local out = schema.copy(props)
  for _, p in ipairs(lc.ignore) do set(out, p.parts, schema.copy(get(old_inputs, p.parts))) end
  return out
end

-- replace_triggered_by ------------------------------------------------------------------

--- The first trigger of `decl` whose action is a change (`action_of(urn)` → create,
--- update or replace), and that action; nil when none.
function M.triggered(decl, action_of)
  local lc = decl.lifecycle
  for _, d in ipairs(lc and lc.triggers or {}) do
    local a = action_of(d.urn)
    if a == "create" or a == "update" or a == "replace" then return d, a end
  end
  return nil
end

--- The change a trigger adds to a step's changes (shown in the plan).
function M.trigger_change(d, action)
  return { path = "(replace_triggered_by)", key = "(replace_triggered_by)",
    old = d.urn, new = ("%s %s"):format(d.urn, action == "create" and "created"
      or action == "update" and "updated" or "replaced") }
end

--- What this run did to `urn` so far (from its journal): create, update, replace or nil.
function M.done_action(run, urn)
  local action
  for _, e in ipairs(run.journal) do
    if e.urn == urn and e.status == "done" then
      if e.kind == "create" then action = e.replaced and "replace" or "create"
      elseif e.kind == "update" then action = action or "update" end
    end
  end
  return action
end

-- create_before_destroy on a name-unique type ----------------------------------------------

-- The properties that name an instance of the type (two live ones cannot share them): the
-- schema's `unique` list, else its properties called name or *_name.
local function unique_props(tdef)
  if tdef.schema.unique then return tdef.schema.unique end
  local out = {}
  for k in pairs(tdef.schema.properties) do
    if k == "name" or k:match("_name$") then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- Why a create-before-delete replacement that the recipe asked for cannot work (the type
-- replaces delete-first and the replacement keeps its unique name); nil when it can.
local function create_first_problem(s)
  local decl = s.decl
  if not (decl.lifecycle and decl.lifecycle.create_first and decl.tdef.delete_first) then return nil end
  local names = unique_props(decl.tdef)
  local changed = {}
  for _, c in ipairs(s.changes or {}) do changed[c.key] = true end
  for _, k in ipairs(names) do
    if changed[k] then return nil end
  end
  if #names == 0 then
    return ("%s (%s): create_before_destroy = true, but %s replaces delete-first: two instances "
      .. "with the same properties cannot exist at once. Drop create_before_destroy.")
      :format(s.urn, decl.where, decl.type)
  end
  return ("%s (%s): create_before_destroy = true, but %s is unique by %s and the replacement "
    .. "keeps %s = %s: it could not be created while the old one exists. Give it a new %s in "
    .. "the same change, or drop create_before_destroy."):format(s.urn, decl.where, decl.type,
    table.concat(names, ", "), names[1], require("fo.engine.diff").show(s.props[names[1]]),
    names[1])
end

-- Plans ----------------------------------------------------------------------------------

--- What deleting the record `rec` does: "protected" (refused), "retain" (forgotten, not
--- deleted) or nil (deleted). A resource no longer declared (or --destroy) goes by what its
--- record says; the old instance of a replaced resource (`deposed`) by its declaration
--- `decl` (its replacement was allowed, so protect does not hold it back).
function M.on_delete(rec, deposed, decl)
  if deposed then
    local lc = decl and decl.lifecycle
    if lc then return lc.retain and "retain" or nil end
    return rec.retain and "retain" or nil
  end
  if rec.protect then return "protected" end
  if rec.retain then return "retain" end
  return nil
end

--- Marks the plan's steps with their lifecycle (after plan.build/destroy): a deletion of a
--- retained resource forgets it (s.retain, s.lifecycle = "retain"); a deletion or a
--- replacement of a protected one is refused (s.protected, s.lifecycle = "protected").
function M.mark(plan)
  for _, s in ipairs(plan.steps) do
    local lc = s.decl and s.decl.lifecycle
    if s.action == "replace" then
      if lc and lc.protect then s.protected, s.lifecycle = true, "protected" end
      if lc and lc.retain then s.retain = true end
      s.problem = create_first_problem(s)
    elseif s.action == "delete" then
      local how = M.on_delete(s.old, s.deposed, s.declared)
      if how == "protected" then s.protected, s.lifecycle = true, "protected"
      elseif how == "retain" then s.retain, s.lifecycle = true, "retain" end
    end
  end
end

--- Raises a recipe error (exit 1, before any change) when the plan deletes or replaces a
--- protected resource, replaces a retained one delete-first, or asks a name-unique type to
--- create before deleting with the same name; names each resource and the fix.
function M.check(plan, mode)
  local lines = {}
  for _, s in ipairs(plan.steps) do
    if s.protected then
      local what = s.action == "replace" and "replace" or mode == "destroy" and "destroy" or "delete"
      local fix
      if s.action == "replace" then
        fix = "to replace it, set protect = false, apply, then make the change"
      elseif mode == "destroy" then
        fix = "to destroy it, set protect = false on it in the recipe and apply, then destroy"
      else
        fix = "to delete it, put it back in the recipe with protect = false and apply, then remove it"
      end
      lines[#lines + 1] = ("%s is protected: this run would %s it (%s)"):format(s.urn, what, fix)
    elseif s.action == "replace" and s.retain and s.delete_first then
      lines[#lines + 1] = ("%s has retain_on_delete: its replacement would forget the old one "
        .. "and then create one with the same name next to it (the type replaces delete-first); "
        .. "drop retain_on_delete for this change, or rename it in the same change"):format(s.urn)
    elseif s.problem then
      lines[#lines + 1] = s.problem
    end
  end
  if #lines == 0 then return end
  errors.raise("recipe", ("refusing to run: nothing was changed.\n  %s")
    :format(table.concat(lines, "\n  ")))
end

--- Forgets a record (or deposed instance) instead of deleting it: retain_on_delete. The
--- resource stays in the account, no longer managed by the stack.
function M.forget(run, rec, deposed)
  if deposed then run.store:remove_deposed(rec)
  elseif run.store:resource(rec.urn) == rec then run.store:remove(rec.urn) end
  run.store:commit()
end

-- Timeouts -------------------------------------------------------------------------------

--- The bound in seconds of a wait of `ctx`'s operation: the time left of the operation's
--- custom timeout (timeouts = {...}), else `seconds` (the type's own bound).
function M.bound(ctx, seconds)
  if ctx and ctx.deadline then
    return math.max(ctx.deadline - require("fo.core").now(), 0)
  end
  return seconds
end

return M
