-- A recipe's declarations: fo.resource(type, name, props, opts) adds a resource and gives
-- its handle (whose fields are references to its outputs), fo.output publishes a value.
-- Everything is checked where it is declared, and errors name that file:line.
local ref = require "fo.engine.ref"
local types = require "fo.engine.types"
local schema = require "fo.engine.schema"
local errors = require "fo.engine.errors"
local graph = require "fo.engine.graph"
local lifecycle = require "fo.engine.lifecycle"

local M = {}
local Recipe = {}
Recipe.__index = Recipe

local current -- the recipe being run (fo.resource adds to it)

--- A new, empty recipe for `stack`; opts.region: the default region of its resources.
function M.new(opts)
  return setmetatable({ stack = opts.stack, region = opts.region, decls = {}, by_urn = {},
    outputs = {}, output_names = {}, warnings = {} }, Recipe)
end

--- Makes `r` the recipe that fo.resource/fo.output declare into (nil: none).
function M.set_current(r)
  current = r
end

--- The current recipe, or an error saying declarations need one.
function M.current(what)
  if not current then
    errors.raise("recipe", ("%s: no recipe is being run (declare resources in a recipe file: "
      .. "fo-run recipe.lua)"):format(what), errors.where(3))
  end
  return current
end

--- The URNs a declaration depends on, in declaration order.
function M.dep_urns(decl)
  local out = {}
  for i, d in ipairs(decl.deps) do out[i] = d.urn end
  return out
end

function M.urn(stack, type_name, name)
  return ("%s::%s::%s"):format(stack, type_name, name)
end

-- Handles ---------------------------------------------------------------------------

local Handle = { __name = "fo.engine.Resource" }
local decl_of = setmetatable({}, { __mode = "k" })

Handle.__index = function(h, key)
  local decl = decl_of[h]
  local outputs = decl.tdef.outputs
  if type(key) ~= "string" then
    error(("resource %s: output names are strings, got %s"):format(decl.urn, type(key)), 2)
  end
  if next(outputs) and not outputs[key] then
    errors.raise("recipe", ("%s %s has no output '%s'%s; its outputs: %s"):format(decl.type,
      decl.name, key, errors.did_you_mean(key, outputs), errors.list(outputs)), errors.where(2))
  end
  return ref.output(decl, key, errors.where(2))
end
Handle.__newindex = function(h)
  errors.raise("recipe", ("resource %s is read-only: change its properties in fo.resource(...)")
    :format(decl_of[h].urn), errors.where(2))
end
Handle.__tostring = function(h) return "fo resource " .. decl_of[h].urn end

--- The declaration behind a handle, or nil for anything else.
function M.decl_of(v)
  return type(v) == "table" and decl_of[v] or nil
end

-- Declarations ----------------------------------------------------------------------

local OPTS = { depends_on = true, region = true, delete_first = true }
for k in pairs(lifecycle.OPTS) do OPTS[k] = true end
OPTS.import = true -- import.lua
local NAME = "^[%w_][%w_%.%-/]*$"

-- A handle put where a value belongs: say what to write instead. (A function of the
-- module, not a closure made for each declaration.)
local function reject_handle(v, path, decl, where)
  if type(v) ~= "table" or ref.is(v) then return end
  local d = decl_of[v]
  if d then
    errors.raise("recipe", ("%s %s: property %s holds the resource %s itself; use one of its "
      .. "outputs (e.g. %s.%s)"):format(decl.type, decl.name, path, d.name, d.name,
      next(d.tdef.outputs) or "id"), where)
  end
  for k, x in pairs(v) do reject_handle(x, path .. "." .. tostring(k), decl, where) end
end

local function reject_handles(props, decl, where)
  for k, v in pairs(props) do reject_handle(v, tostring(k), decl, where) end
end

--- Declares a resource; returns its handle. See fo.resource in docs/recipes.md.
function Recipe:declare(type_name, name, props, opts, where)
  if type(type_name) ~= "string" then
    errors.raise("recipe", "fo.resource(type, name, props, opts): type must be a string", where)
  end
  local tdef = types.need(type_name, where)
  if type(name) ~= "string" or not name:match(NAME) then
    errors.raise("recipe", ("fo.resource(%q, name, ...): name must be a string of letters, digits, "
      .. "_ . - / (got %s)"):format(type_name, type(name) == "string" and ("%q"):format(name)
      or type(name)), where)
  end
  props = props == nil and {} or props
  opts = opts == nil and {} or opts
  if type(props) ~= "table" or ref.is(props) or decl_of[props] then
    errors.raise("recipe", ("%s %s: properties must be a table"):format(type_name, name), where)
  end
  if type(opts) ~= "table" then
    errors.raise("recipe", ("%s %s: options must be a table"):format(type_name, name), where)
  end
  for k in pairs(opts) do
    if not OPTS[k] then
      errors.raise("recipe", ("%s %s: unknown option %s%s (options: %s)"):format(type_name, name,
        tostring(k), errors.did_you_mean(tostring(k), OPTS), errors.list(OPTS)), where)
    end
  end
  -- inside a component: "<component path>/<name>" (lua/fo/engine/component.lua)
  local component
  name, component = require("fo.engine.component").place(self, name)
  local urn = M.urn(self.stack, type_name, name)
  local first = self.by_urn[urn]
  if first then
    errors.raise("recipe", ("%s %s is declared twice (first at %s); names are unique per type "
      .. "in a stack"):format(type_name, name, first.where), where)
  end
  local decl = { recipe = self, index = #self.decls + 1, urn = urn, type = type_name,
    name = name, tdef = tdef, props = props, where = where,
    region = opts.region or component and component.region or self.region,
    delete_first = opts.delete_first, component = component }
  reject_handles(props, decl, where)
  lifecycle.declare(decl, opts, where)
  decl.import = require("fo.engine.import").option(decl, opts.import, where)
  local problems = schema.problems(type_name, tdef.schema, props)
  if #problems > 0 then
    errors.raise("recipe", ("%s %s: %s"):format(type_name, name, table.concat(problems, "; ")),
      where)
  end
  -- Dependencies: every resource referenced in props, and depends_on.
  local deps, dep_where = {}, {}
  ref.each(props, function(d, r)
    if not deps[d] then deps[d], dep_where[d] = true, ref.where(r) or where end
  end)
  local depends_on = opts.depends_on
  if depends_on ~= nil then
    if type(depends_on) ~= "table" or decl_of[depends_on] then depends_on = { depends_on } end
    for _, h in ipairs(depends_on) do
      local d = decl_of[h]
      if d then
        deps[d], dep_where[d] = true, where
      elseif type(h) == "string" then
        decl.named_deps = decl.named_deps or {}
        decl.named_deps[#decl.named_deps + 1] = h
      else
        errors.raise("recipe", ("%s %s: depends_on takes resources (handles) or their names, got %s")
          :format(type_name, name, type(h)), where)
      end
    end
  end
  decl.dep_set, decl.dep_where = deps, dep_where
  self.decls[#self.decls + 1] = decl
  self.by_urn[urn] = decl
  local h = setmetatable({}, Handle)
  decl_of[h] = decl
  decl.handle = h
  return h
end

--- fo.output(name, value): a stack output (value may hold references).
function Recipe:output(name, value, where)
  if type(name) ~= "string" or name == "" then
    errors.raise("recipe", "fo.output(name, value): name must be a non-empty string", where)
  end
  if self.output_names[name] then
    errors.raise("recipe", ("output %s is declared twice (first at %s)"):format(name,
      self.output_names[name]), where)
  end
  if decl_of[value] then
    errors.raise("recipe", ("output %s: give one of the resource's outputs (e.g. %s.id), not the "
      .. "resource"):format(name, decl_of[value].name), where)
  end
  self.output_names[name] = where
  self.outputs[#self.outputs + 1] = { name = name, value = value, where = where }
end

-- The declaration a depends_on name means: "name" (unique across types) or "type::name";
-- from inside a component, a name of its own resources first ("vpc": "primary/vpc").
function Recipe:_by_name(s, component)
  if component then
    local d = self:_by_name(require("fo.engine.component").scoped(s, component))
    if d then return d end
  end
  local found = self.by_urn[self.stack .. "::" .. s]
  if found then return found end
  local matches = {}
  for _, d in ipairs(self.decls) do
    if d.name == s then matches[#matches + 1] = d end
  end
  if #matches == 1 then return matches[1] end
  return nil, #matches > 1
end

--- After the recipe ran: resolves depends_on names, rejects references to resources not
--- declared in this recipe, and dependency cycles (naming the members in order). Sets
--- decl.deps (array of declarations, in declaration order).
function Recipe:finish()
  local names = {}
  for _, d in ipairs(self.decls) do names[#names + 1] = d.name end
  local function check_ref(owner, d, where)
    if d.recipe ~= self or self.by_urn[d.urn] ~= d then
      errors.raise("recipe", ("%s %s references %s, which is not declared in this recipe (a "
        .. "handle from another run or stack)"):format(owner.type, owner.name, d.urn), where)
    end
  end
  for _, decl in ipairs(self.decls) do
    for _, s in ipairs(decl.named_deps or {}) do
      local d, ambiguous = self:_by_name(s, decl.component)
      if not d then
        errors.raise("recipe", ambiguous
          and ("%s %s: depends_on '%s' is ambiguous (several types use that name): write 'type::name'")
            :format(decl.type, decl.name, s)
          or ("%s %s: depends_on '%s' names no declared resource%s"):format(decl.type, decl.name, s,
            errors.did_you_mean(s, names)), decl.where)
      end
      decl.dep_set[d], decl.dep_where[d] = true, decl.where
    end
    lifecycle.finish(decl, function(s) return self:_by_name(s, decl.component) end, names)
    local deps = {}
    for d in pairs(decl.dep_set) do
      check_ref(decl, d, decl.dep_where[d])
      if d == decl then
        errors.raise("recipe", ("dependency cycle: %s depends on itself"):format(decl.urn),
          decl.where)
      end
      deps[#deps + 1] = d
    end
    table.sort(deps, function(a, b) return a.index < b.index end)
    decl.deps = deps
  end
  -- the sets the dependencies were gathered in are done with (a recipe of thousands of
  -- resources keeps its declarations for the whole run)
  for _, decl in ipairs(self.decls) do decl.dep_set, decl.dep_where = nil, nil end
  for _, o in ipairs(self.outputs) do
    ref.each(o.value, function(d)
      check_ref({ type = "output", name = o.name }, d, o.where)
    end)
  end
  local cycle = graph.cycle(self.decls, function(d) return d.deps end)
  if cycle then
    local parts = {}
    for _, d in ipairs(cycle) do parts[#parts + 1] = ("%s (%s)"):format(d.urn, d.where) end
    errors.raise("recipe", "dependency cycle: " .. table.concat(parts, " → "), cycle[1].where)
  end
end

return M
