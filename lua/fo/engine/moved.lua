-- fo.moved{ from = "old", to = "new" }: a resource renamed in the recipe keeps what it is in
-- the cloud. Before the plan, a run moves the state's record of `from` to `to` (as `fo-run
-- state mv` does), so the plan shows it as moved, not as a delete and a create, and no
-- cloud call is made for the rename. A declaration whose `from` the state no longer holds
-- does nothing: it may stay in the recipe as long as any stack still has the old name.
-- Moves chain (Terraform's moved blocks do): with A → B and B → C declared (C in the
-- recipe), a stack that holds A or B gets C. Inside a component (fo.component), a name
-- without "/" is one of the component's own ("vpc" is "primary/vpc"), as depends_on's are;
-- a name with "/" is a whole name.
local errors = require "fo.engine.errors"
local recipe_mod = require "fo.engine.recipe"

local M = {}

local NAME = "^[%w_][%w_%.%-/]*$" -- as recipe.lua's names

--- fo.moved{ from = "name" or "type::name", to = "name" or "type::name" }.
function M.declare(spec)
  local where = errors.where(2)
  local r = recipe_mod.current("fo.moved")
  if type(spec) ~= "table" then
    errors.raise("recipe", "fo.moved{ from = \"old name\", to = \"new name\" }: give a table",
      where)
  end
  for k in pairs(spec) do
    if k ~= "from" and k ~= "to" then
      errors.raise("recipe", ("fo.moved: unknown field %s (fields: from, to)"):format(
        tostring(k)), where)
    end
  end
  for _, k in ipairs({ "from", "to" }) do
    local v = spec[k]
    local name = type(v) == "string" and (v:match("::(.*)$") or v)
    if not name or not name:match(NAME) then
      errors.raise("recipe", ("fo.moved: %s must be a resource's name or type::name (got %s)")
        :format(k, type(v) == "string" and ("%q"):format(v) or type(v)), where)
    end
  end
  if spec.from == spec.to then
    errors.raise("recipe", ("fo.moved: from and to are both %s"):format(spec.from), where)
  end
  -- inside a component, its own names (component.scoped: "vpc" → "primary/vpc")
  local from, to = spec.from, spec.to
  if r.scope then
    local component = require "fo.engine.component"
    local function own(v) return (v:match("::(.*)$") or v):find("/", 1, true) and v
      or component.scoped(v, r.scope) end
    from, to = own(from), own(to)
  end
  spec = { from = from, to = to }
  r.moved = r.moved or {}
  for _, m in ipairs(r.moved) do
    if m.from == spec.from then
      errors.raise("recipe", ("fo.moved: %s is moved twice (first at %s)"):format(spec.from,
        m.where), where)
    end
  end
  r.moved[#r.moved + 1] = { from = spec.from, to = spec.to, where = where }
end

-- The declaration `to` (a name or type::name) names in the recipe, or nil; raises when it
-- names several.
local function declared(recipe, to, where)
  local found
  for _, d in ipairs(recipe.decls) do
    if d.type .. "::" .. d.name == to or (not to:find("::", 1, true) and d.name == to) then
      if found then
        errors.raise("recipe", ("fo.moved: to = %q names several resources: write type::name")
          :format(to), where)
      end
      found = d
    end
  end
  return found
end

local function name_of(s) return s:match("::(.*)$") or s end

-- The declaration move `m` ends at (after recipe:finish): its `to`, or where the moves
-- from there lead (A → B, B → C: C).
local function target(recipe, m)
  local next_of = {}
  for _, other in ipairs(recipe.moved) do next_of[name_of(other.from)] = other end
  local to, seen = m.to, {}
  local d = declared(recipe, to, m.where)
  while not d and next_of[name_of(to)] and not seen[name_of(to)] do
    seen[name_of(to)] = true
    to = next_of[name_of(to)].to
    d = declared(recipe, to, m.where)
  end
  if not d then
    errors.raise("recipe", ("fo.moved: to = %q names no resource of the recipe%s"):format(m.to,
      to ~= m.to and (" (nor does %q, where the moves from it lead)"):format(to) or ""), m.where)
  end
  return d
end

--- Moves the state's records of the recipe's fo.moved declarations (run.store; a --plan's
--- store records nothing: the move is planned). Returns { {from=, to=, id=} } of the moves.
--- Raises a recipe error, before any change, for one that cannot be made.
function M.settle(run, recipe)
  if not recipe.moved then return {} end
  local state_cmd = require "fo.engine.state_cmd"
  local store, doc = run.store, run.store.doc
  local todo, claimed = {}, {}
  for _, m in ipairs(recipe.moved) do
    local d = target(recipe, m)
    local from_type, from_name = m.from:match("^(.*)::(.*)$")
    from_type, from_name = from_type or d.type, from_name or m.from
    if from_type ~= d.type then
      errors.raise("recipe", ("fo.moved: %s is a %s and %s a %s: a move renames, the type "
        .. "stays"):format(m.from, from_type, m.to, d.type), m.where)
    end
    local old = recipe_mod.urn(recipe.stack, from_type, from_name)
    if recipe.by_urn[old] then
      errors.raise("recipe", ("fo.moved: %s is still declared (at %s): a moved resource is "
        .. "declared under its new name only"):format(m.from, recipe.by_urn[old].where), m.where)
    end
    if doc.resources[old] then
      local why = state_cmd.taken(doc, d.urn) or doc.intents[old]
        and "the state holds an interrupted create of " .. old
      if why then
        errors.raise("recipe", ("fo.moved from %s to %s: %s. Forget one of them (`fo-run state "
          .. "rm`) or remove the fo.moved; nothing was changed"):format(old, d.urn, why), m.where)
      end
      if claimed[d.urn] then
        errors.raise("recipe", ("fo.moved: the state holds both %s and %s, which both move to "
          .. "%s. Forget one of them (`fo-run state rm`); nothing was changed"):format(
          claimed[d.urn], old, d.urn), m.where)
      end
      claimed[d.urn] = old
      todo[#todo + 1] = { from = old, to = d.urn, name = d.name, id = doc.resources[old].id }
    end
  end
  for _, t in ipairs(todo) do state_cmd.rename(store, t.from, t.to, t.name) end
  if #todo > 0 then store:commit() end
  local report = run.report
  for _, t in ipairs(todo) do
    report:emit("moved", { from = t.from, to = t.to, id = t.id })
    report:out("Moved %s to %s (%s): fo.moved, no cloud call\n", t.from, t.to, t.id)
    t.name = nil
  end
  return todo
end

return M
