-- Import: bring a resource that exists in the cloud (made by hand, by another tool) under a
-- stack. A declaration says `import = "<id>"` in its options; before the plan, a run reads
-- the resource by that id (the type's read, as refresh reads a recorded one), records what
-- it read as the resource's state, and the plan then compares the declaration with it like
-- any other: what differs is what the first apply changes. A declaration whose resource
-- the state already holds under that id imports nothing (the option may stay in the recipe).
-- `fo-run state import` (import_cmd.lua) does the same for one resource without a recipe.
--
-- A type's id is what its create returns; for types whose id is composite (a route is
-- "<route table>_<destination>") or whose read finds the resource by its properties, a
-- module registers the id's format (M.id_format): a check of an id given by hand, and the
-- properties the id itself says (the read locates the resource by them).
local errors = require "fo.engine.errors"
local ref = require "fo.engine.ref"
local schema = require "fo.engine.schema"
local graph = require "fo.engine.graph"
local ops = require "fo.engine.ops"
local lifecycle = require "fo.engine.lifecycle"

local M = {}

local formats = {}

--- Registers the import id format of type `name`: spec = { format = "text for people",
--- example = "an id", check = function(id) → true or nil, why (optional),
--- props = function(id) → the properties the id names (optional), tags = function(ctx, id)
--- → the resource's tags as a map, nil when not known (optional: fo:stack is checked) }.
function M.id_format(name, spec)
  formats[name] = spec
end

--- The registered format of a type, or nil (the id is then what the type's create returns).
--- fo's AWS types have theirs in one module, loaded when first needed (a recipe may require
--- one area's module alone).
function M.format_of(name)
  if not formats[name] and type(name) == "string" and name:match("^aws:") then
    pcall(require, "fo.aws.resources.import_ids")
  end
  return formats[name]
end

--- The types with a registered format, sorted.
function M.formatted_types()
  local out = {}
  for k in pairs(formats) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- The import option of fo.resource: a non-empty string, checked against the type's id
--- format. Returns it (nil when not given). `decl` has type, name, tdef.
function M.option(decl, v, where)
  if v == nil then return nil end
  if type(v) ~= "string" or v == "" or ref.is(v) then
    errors.raise("recipe", ("%s %s: import takes the resource's id as a string (e.g. import = "
      .. "%q), got %s"):format(decl.type, decl.name, (M.format_of(decl.type) or {}).example
        or "vpc-0a1b2c3d", ref.is(v) and "a reference" or type(v) == "string" and "\"\""
        or type(v)), where)
  end
  M.check_id(decl.type, v, where, decl.name)
  return v
end

--- Raises a recipe error when `id` is not of the format registered for the type.
function M.check_id(type_name, id, where, name)
  local f = M.format_of(type_name)
  if not f or not f.check then return end
  local ok, why = f.check(id)
  if not ok then
    errors.raise(where and "recipe" or "usage", ("%s%s: import id %q is not an id of this type%s: "
      .. "its id is %s (e.g. %s)"):format(type_name, name and " " .. name or "", id,
      why and " (" .. why .. ")" or "", f.format, f.example), where)
  end
end

-- Services whose ids name one resource in the whole account (IAM, Route 53, S3's bucket
-- names); elsewhere a name (a table's, a log group's, a parameter's) is per region.
local ACCOUNT_WIDE = { iam = true, route53 = true, s3 = true }

-- True when record `rec` is resource `id` of `type_name` in `region`.
local function same(rec, type_name, id, region)
  return rec.type == type_name and rec.id == id and (rec.region == region
    or region == nil or ACCOUNT_WIDE[type_name:match("^aws:([^:]+):") or ""] == true)
end

-- Why `id` of `type_name` in `region` cannot be imported as `urn` into the state `doc`
-- (nil: it can).
function M.taken(doc, type_name, id, urn, region)
  for u, rec in pairs(doc.resources) do
    if u ~= urn and same(rec, type_name, id, region) then
      return ("the stack already manages %s as %s"):format(id, u)
    end
  end
  for _, rec in ipairs(doc.deposed) do
    if same(rec, type_name, id, region) then
      return ("%s is an old instance of %s that the stack is deleting"):format(id, rec.urn)
    end
  end
  if doc.intents[urn] then
    return ("the state holds an interrupted create of %s (rerun without import first: the run "
      .. "adopts what it made)"):format(urn)
  end
  return nil
end

-- props with every unknown value left out (at the top level: a property whose value is or
-- holds one is not known yet).
local function known_only(props)
  local out = {}
  for k, v in pairs(props) do
    if not ref.has_unknown(v) then out[k] = v end
  end
  return out
end

--- Why the resource tagged `tags` (a map) cannot be imported into stack `stack` as the
--- one `info` ({type=, name=}) names, or nil. fo's tags say whose it is: another stack's
--- (fo:stack), or this stack's under another name (fo:name: another copy of the stack made
--- it, or its record was forgotten). This stack's under this very name is its own, as a
--- stack whose state was lost imports it back.
function M.owned(tags, stack, info)
  local owner, name = tags["fo:stack"], tags["fo:name"]
  if owner == nil then return nil end
  if owner ~= stack then
    return ("it is tagged as resource %q of fo stack %q, which manages it. Forget it there "
      .. "(`fo-run state rm --stack %s ...`: nothing is deleted) and remove its fo: tags, "
      .. "then import it"):format(tostring(name), owner, owner)
  end
  if name ~= nil and name ~= info.name then
    return ("it is tagged as resource %q of this stack (%s): another copy of the stack made "
      .. "it under that name, or the state forgot it. Import it under that name (%s::%s), or "
      .. "remove its fo: tags first"):format(tostring(name), stack, info.type, tostring(name))
  end
  return nil
end

--- Reads resource `id` of type `tdef` as the one `info` ({urn=, type=, name=, region=})
--- names, with `props` (the declaration's, references resolved; unknown ones left out)
--- telling the read what the recipe says. Returns the record to put in the state (inputs:
--- props with what the read observed over them), or nil, why, "missing" when there is no
--- such resource, nil, why, "failed" when the read failed, nil, why, "owned" when another
--- fo stack tagged it as its own.
function M.read(run, tdef, info, id, props, deps)
  local f = M.format_of(info.type)
  local located = {}
  for k, v in pairs(props) do located[k] = v end
  if f and f.props then
    for k, v in pairs(f.props(id) or {}) do located[k] = v end
  end
  located = schema.with_defaults(tdef.schema, located)
  local rec = ops.record{ urn = info.urn, type = info.type, name = info.name,
    region = info.region, id = id, inputs = located, deps = deps or {}, generation = 1 }
  local ctx = ops.ctx(run, rec)
  local ok, outputs, observed
  if tdef.data then
    -- a data type only reads: its create is the read that gives its outputs (its read
    -- gives back what was recorded, and nothing is yet)
    local got
    ok, got, outputs = pcall(tdef.create, ctx, located)
    if ok and got ~= id then
      return nil, ("this data type reads %s for the declaration, not %s"):format(tostring(got),
        id), "missing"
    end
    observed = {}
  else
    ok, outputs, observed = pcall(tdef.read, ctx, id, located, {})
  end
  if not ok then
    return nil, ("reading it failed: %s"):format(require("fo.engine.secret").scrub(
      tostring(require("fo.engine.report").describe_error(outputs).text))), "failed"
  end
  if outputs == nil then
    return nil, ("there is no such %s in %s (the type's read found none)"):format(info.type,
      info.region), "missing"
  end
  -- fo never changes what its stack did not create, unless told: an import is told, but a
  -- resource another fo stack tagged as its own is that stack's (docs/recipes.md)
  if f and f.tags and not tdef.data then
    local got, tags = pcall(f.tags, ctx, id)
    if not got then
      return nil, ("reading its tags failed, so nothing tells whether another fo stack "
        .. "manages it: %s"):format(require("fo.engine.secret").scrub(tostring(
        require("fo.engine.report").describe_error(tags).text))), "failed"
    end
    local why = M.owned(tags, run.stack, info)
    if why then return nil, why, "owned" end
    -- this stack's own resource under this name (its state was lost): its token is the
    -- one fo's tags on it carry
    rec.token = tags["fo:token"]
  end
  local inputs = {}
  for k, v in pairs(located) do inputs[k] = v end
  for k, v in pairs(observed or {}) do inputs[k] = v end
  rec.inputs, rec.outputs = inputs, outputs
  return rec
end

-- The declaration's properties, references resolved from the run's imports and the state
-- (unknown ones left out).
local function resolved(d, made, doc)
  return known_only(ref.resolve(d.props, function(dep)
    local r = made[dep.urn] or doc.resources[dep.urn]
    return r and r.outputs
  end))
end

-- The declaration's dependencies that the run imported or the state holds.
local function recorded_deps(d, made, doc)
  local deps = {}
  for _, dep in ipairs(d.deps) do
    if made[dep.urn] or doc.resources[dep.urn] then deps[#deps + 1] = dep.urn end
  end
  return deps
end

--- Imports the declarations of `recipe` that say `import` and that the state does not hold
--- yet, in dependency order (an imported resource's outputs resolve its dependents'
--- references). Run after refresh, before the plan; a --plan's store records nothing (the
--- import is planned). Returns { [urn] = id } of the imports. Raises a recipe error, before
--- anything is recorded, for one that cannot be made.
function M.settle(run, recipe)
  local store, doc = run.store, run.store.doc
  -- a targeted run (--only, only.lua) imports what it selected, nothing else
  local only = run.only and run.only.members
  local todo = {}
  for _, d in ipairs(recipe.decls) do
    -- (and those `fo-run state import` read without a declaration: read again with it)
    local rec = doc.resources[d.urn]
    if (d.import or rec and rec.read_undeclared) and (not only or only[d.urn]) then
      todo[#todo + 1] = d
    end
  end
  local done = {}
  if #todo == 0 then return done, {} end
  local order = graph.order(recipe.decls, function(d) return d.deps end)
  local recs, made, reread = {}, {}, {}
  local wanted = {}
  for _, d in ipairs(todo) do wanted[d] = true end
  for _, d in ipairs(order) do
    local rec = wanted[d] and doc.resources[d.urn]
    if not wanted[d] then
      goto next -- no import (or not selected by --only)
    end
    if rec and (not d.import or rec.id == d.import) and rec.read_undeclared then
      -- The command's read had no declaration to tell it what to observe (a subnet's zone
      -- is read only when declared: left out, AWS picks it), so its record may lack what
      -- the declaration says, and the plan would see a difference there (a replacement for
      -- a zone). Read again with the declaration, as its import = ID reads it.
      local r, failed = M.read(run, d.tdef, d, rec.id, resolved(d, made, doc),
        recorded_deps(d, made, doc))
      if not r then
        errors.raise("recipe", ("%s %s: reading %s (recorded by fo-run state import) with the "
          .. "declaration failed: %s; nothing was changed"):format(d.type, d.name, rec.id,
          failed), d.where)
      end
      r.token = r.token or rec.token
      made[d.urn] = lifecycle.with(r, d)
      reread[#reread + 1] = made[d.urn]
    elseif rec then
      if rec.id ~= d.import then
        errors.raise("recipe", ("%s %s: import = %q, but the stack already manages %s as %s. An "
          .. "import brings in a resource the stack does not hold: remove the import option (the "
          .. "resource is managed), or forget the one it holds first (`fo-run state rm %s`, "
          .. "nothing is deleted); nothing was changed"):format(d.type, d.name, d.import, d.urn,
          rec.id, d.urn), d.where)
      end
    else
      local why = M.taken(doc, d.type, d.import, d.urn, d.region)
      if why then
        errors.raise("recipe", ("%s %s: cannot import %s: %s; nothing was changed"):format(d.type,
          d.name, d.import, why), d.where)
      end
      local props = resolved(d, made, doc)
      local r, failed, kind = M.read(run, d.tdef, d, d.import, props,
        recorded_deps(d, made, doc))
      if kind == "owned" then
        errors.raise("recipe", ("%s %s: cannot import %s: %s; nothing was recorded"):format(
          d.type, d.name, d.import, failed), d.where)
      elseif not r then
        errors.raise("recipe", ("%s %s: cannot import %s: %s. Check the id and the resource's "
          .. "region (%s); nothing was recorded"):format(d.type, d.name, d.import, failed,
          d.region), d.where)
      end
      made[d.urn] = lifecycle.with(r, d)
      recs[#recs + 1] = made[d.urn]
    end
    ::next::
  end
  -- Recorded with the apply's first write (or its last): a run that stops before any change
  -- (a refused confirmation, a protected resource) records no import either.
  for _, r in ipairs(recs) do
    store:put(r.urn, r)
    done[r.urn] = r.id
  end
  local commanded = {}
  for _, r in ipairs(reread) do
    store:put(r.urn, r)
    commanded[r.urn] = r.id
  end
  local report = run.report
  for _, r in ipairs(recs) do
    report:emit("import", { urn = r.urn, type = r.type, id = r.id, region = r.region })
    report:out("Import %s (%s): read from the cloud%s; the plan compares it with the declaration\n",
      r.urn, r.id, store.readonly and " (--plan: not recorded)" or " and recorded")
  end
  return done, commanded
end

--- Marks the steps of `plan` that import (`imported`: M.settle's) and counts them; warns
--- loudly of an import the plan would replace (the imported resource deleted), and of a
--- replacement of what `fo-run state import` recorded (`commanded`: M.settle's second).
function M.mark(plan, imported, report, commanded)
  commanded = commanded or {}
  if not next(imported) and not next(commanded) then return end
  local n = 0
  for _, s in ipairs(plan.steps) do
    local id = not s.deposed and (imported[s.urn] or commanded[s.urn])
    if id then
      if imported[s.urn] then s.import, n = id, n + 1 end
      if s.action == "replace" then
        local why = {}
        for _, c in ipairs(s.changes or {}) do
          if s.forcing and s.forcing[c.key] then why[#why + 1] = c.path end
        end
        report:warn(("%s: the import of %s is followed by a REPLACEMENT: the declaration "
          .. "differs from the resource in %s, which force%s replacement, so the apply DELETES "
          .. "the imported resource %s and creates a new one. To keep it, make the declaration "
          .. "match what the plan shows as the resource's values (--plan shows it and changes "
          .. "nothing)"):format(s.urn, id, table.concat(why, ", "), #why == 1 and "s" or "",
          id))
      end
    end
  end
  if n == 0 then return end
  plan.counts.import = n
  plan.changed = true
end

return M
