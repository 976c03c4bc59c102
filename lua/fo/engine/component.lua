-- Components: a recipe function that groups resources, declared with
-- fo.component(type, function(c, args) ... end). Calling the definition with an instance
-- name (region("primary", args, opts)) runs the function with the resources it declares
-- named "<instance>/<name>" and belonging to the instance; instances nest ("primary/net/vpc").
-- The prefix is the whole mechanism of identity: a resource's URN is what it would be had
-- the recipe written the full name itself, so a recipe that adopts components keeps its
-- stack (primary/vpc stays primary/vpc). Plans, --graph, the live view, --json events and
-- `fo-run state list` show the hierarchy from it.
local errors = require "fo.engine.errors"
local graph = require "fo.engine.graph"

local M = {}

local NAME = "^[%w_][%w_%.%-]*$"
local OPTS = { region = true }

local Definition = { __name = "fo.engine.Component" }
Definition.__index = Definition

--- fo.component(type, fn) → a definition; calling it, def(name, args, opts), declares an
--- instance and returns what fn(c, args) returns. c: { type, name, path, region, parent }.
function M.define(type_name, fn)
  local where = errors.where(2)
  if type(type_name) ~= "string" or not type_name:match(NAME) then
    errors.raise("recipe", ("fo.component(type, fn): type must be a string of letters, digits, "
      .. "_ . - (got %s)"):format(type(type_name) == "string" and ("%q"):format(type_name)
      or type(type_name)), where)
  end
  if type(fn) ~= "function" then
    errors.raise("recipe", ("fo.component(%q, fn): fn must be a function(c, args)"):format(type_name),
      where)
  end
  return setmetatable({ type = type_name, fn = fn, where = where }, Definition)
end

function M.is(v)
  return getmetatable(v) == Definition
end

Definition.__tostring = function(def) return "fo component " .. def.type end

Definition.__call = function(def, name, args, opts)
  local where = errors.where(2)
  local r = require("fo.engine.recipe").current("component " .. def.type)
  if type(name) ~= "string" or not name:match(NAME) then
    errors.raise("recipe", ("component %s: the instance name must be a string of letters, "
      .. "digits, _ . - (no /: instances nest by calling one inside another; got %s)")
      :format(def.type, type(name) == "string" and ("%q"):format(name) or type(name)), where)
  end
  opts = opts == nil and {} or opts
  if type(opts) ~= "table" then
    errors.raise("recipe", ("component %s %s: options must be a table"):format(def.type, name),
      where)
  end
  for k in pairs(opts) do
    if not OPTS[k] then
      errors.raise("recipe", ("component %s %s: unknown option %s (options: %s)"):format(def.type,
        name, tostring(k), errors.list(OPTS)), where)
    end
  end
  local parent = r.scope
  local path = parent and (parent.path .. "/" .. name) or name
  r.components = r.components or { list = {}, by_path = {} }
  local first = r.components.by_path[path]
  if first then
    errors.raise("recipe", ("component %s is declared twice (first at %s); instance names are "
      .. "unique within their parent"):format(path, first.where), where)
  end
  local c = { type = def.type, name = name, path = path, parent = parent, where = where,
    region = opts.region or (parent and parent.region) or nil,
    depth = parent and parent.depth + 1 or 1 }
  r.components.list[#r.components.list + 1] = c
  r.components.by_path[path] = c
  r.scope = c
  -- called directly (an error keeps its traceback); a raising recipe ends the run anyway
  local results = table.pack(def.fn(c, args))
  r.scope = parent
  return table.unpack(results, 1, results.n)
end

--- The name a resource declared now gets, and its component (nil at the top level).
function M.place(recipe, name)
  local c = recipe.scope
  if not c then return name, nil end
  return c.path .. "/" .. name, c
end

--- A name as a resource of component `c` calls another of its own: "vpc" → "primary/vpc",
--- "aws:ec2:vpc::vpc" → "aws:ec2:vpc::primary/vpc".
function M.scoped(s, c)
  local type_part, name = s:match("^(.*::)([^:]*)$")
  if type_part then return type_part .. c.path .. "/" .. name end
  return c.path .. "/" .. s
end

--- The component path of a plan step or declaration: its declaration's component, else
--- (a resource only the state knows) the part of its name before the last "/" when the
--- recipe has that component. nil: top level.
function M.path_of(step, recipe)
  local d = step.decl or (step.tdef and step) -- a plan step, or a declaration itself
  if d then return d.component and d.component.path or nil end
  local by_path = recipe and recipe.components and recipe.components.by_path
  local dir = step.name and step.name:match("^(.+)/[^/]+$")
  if by_path and dir and by_path[dir] then return dir end
  return nil
end

--- The component paths of `path` from the outermost: "a/b" → { "a", "a/b" }.
function M.lineage(path)
  local out, acc = {}, nil
  for part in (path or ""):gmatch("[^/]+") do
    acc = acc and (acc .. "/" .. part) or part
    out[#out + 1] = acc
  end
  return out
end

-- The lineage of a top-level step (no component): shared, read only.
local NO_LINEAGE = {}

--- `steps` in tree order: each component's resources and sub-components together, siblings
--- (resources and components) in the order they first appear. Returns { {step=, path=} }.
function M.tree_order(steps, recipe)
  local first, items = {}, {}
  for i, s in ipairs(steps) do
    local path = M.path_of(s, recipe)
    -- (lineage's gmatch alone allocates ~0.6 KB: not for the usual step, at every report)
    local lin = path and M.lineage(path) or NO_LINEAGE
    for _, p in ipairs(lin) do first[p] = first[p] or i end
    -- its sort key in its own array part (not a table more per step): the position of the
    -- first step of each of its components, outermost first, then its own (a top-level
    -- step's: its position alone, set here)
    items[i] = { i, step = s, path = path, lin = lin, pos = i }
  end
  for _, it in ipairs(items) do
    local lin = it.lin
    if #lin > 0 then
      for j, p in ipairs(lin) do it[j] = first[p] end
      it[#lin + 1] = it.pos
    end
  end
  local function before(a, b)
    for j = 1, math.min(#a, #b) do
      if a[j] ~= b[j] then return a[j] < b[j] end
    end
    return #a < #b
  end
  -- steps without components, or with each component's declared together, are in tree
  -- order already: n - 1 comparisons instead of a sort's n log n (calls of a Lua function:
  -- at 10k resources, a tenth of the apply's Lua code and growing with n)
  if not graph.in_order(items, before) then table.sort(items, before) end
  return items
end

--- The recipe behind plan steps (nil: no step has a declaration, e.g. --destroy).
function M.recipe_of(steps)
  for _, s in ipairs(steps) do
    if s.decl then return s.decl.recipe end
  end
  return nil
end

--- The components of a finished recipe as event rows: { path, type, where }.
function M.rows(recipe)
  local rows = {}
  for _, c in ipairs(recipe.components and recipe.components.list or {}) do
    rows[#rows + 1] = { path = c.path, type = c.type, where = c.where }
  end
  return rows
end

--- Puts the recipe file's directory first on package.path (require "components.x" finds
--- <recipe dir>/components/x.lua), where it stays for the rest of the process (what reads
--- the recipe's modules later, e.g. a saved plan's digest of them, finds them there).
--- Modules of that directory loaded before (another run in this process) are loaded again:
--- the recipe gets its own files as they are now.
function M.recipe_path(file)
  if type(file) ~= "string" or file == "-" then return end
  local dir = file:match("^(.*)/[^/]*$") or "."
  if dir == "" then dir = "/" end
  local own = ("%s/?.lua;%s/?/init.lua"):format(dir, dir)
  for name in pairs(package.loaded) do
    if type(name) == "string" and name ~= "fo" and not name:match("^fo%.")
      and package.searchpath(name, own) then
      package.loaded[name] = nil
    end
  end
  local rest = (";" .. package.path .. ";"):gsub(";" .. own:gsub("%p", "%%%0") .. ";", ";")
  package.path = own .. rest:gsub(";+$", "")
end

return M
