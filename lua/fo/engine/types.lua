-- The registry of resource types: what a type implements (create, read, update, delete,
-- diff, adopt) and its schema. Types register themselves when their module is required;
-- the registry notes which module that was, so --destroy can require it from the state.
local schema = require "fo.engine.schema"
local errors = require "fo.engine.errors"

local M = {}
local registry = {}

local FIELDS = { schema = "table", create = "function", read = "function",
  update = "function", delete = "function", diff = "function", adopt = "function",
  doc = "string", data = "boolean", delete_note = "function" }
local REQUIRED = { "schema", "create", "read" }

--- What the state records as the module of a data type (docs/recipes.md, "Data types")
--- defined outside a module, e.g. in the recipe: --destroy needs nothing of it but to
--- forget its records, so it registers a stand-in instead of running the recipe.
M.DATA_MODULE = "fo.engine.data"

local function forget() end

-- The stand-in for a data type whose definition is not loaded: it only reads back what the
-- state recorded, and deleting it forgets it.
local function data_stand_in(name)
  return { data = true, doc = "a data type (" .. name .. ") known from the state only",
    schema = { properties = {} },
    create = function()
      error(("data type %s is known from the state only; run the recipe that defines it")
        :format(name), 0)
    end,
    read = function(_, _, _, outputs) return outputs end }
end

-- The module whose loading registers a type: the nearest main chunk on the stack, when
-- `require` runs it (require passes a chunk the module's name and its file). nil for a
-- type that a recipe, a -e chunk or a function called later defines.
local function registering_module()
  local level = 3
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return nil end
    if info.what == "main" then
      local _, name = debug.getlocal(level, -1)
      local _, file = debug.getlocal(level, -2)
      if type(name) == "string" and type(file) == "string" and info.source == "@" .. file then
        return name
      end
      return nil
    end
    level = level + 1
  end
end

--- Registers type `name` ("ns:kind", e.g. "aws:ec2:vpc") with its definition:
--- { schema = { properties =, outputs =, replace_on =, delete_first =, mutable_outputs = },
---   create =, read =, update =, delete =, diff =, adopt = } (docs/recipes.md). A type without
--- update replaces on every change. Registering a name again replaces the definition.
function M.register(name, def)
  if type(name) ~= "string" or not name:match("^[%w_%-]+:[%w_%-:]+$") then
    error(("resource type name must look like 'ns:kind' (letters, digits, _ and -), got %s")
      :format(tostring(name)), 2)
  end
  if name:find("::", 1, true) then error("resource type name cannot hold '::': " .. name, 2) end
  if type(def) ~= "table" then error("resource type " .. name .. ": expected a table", 2) end
  for k, v in pairs(def) do
    if not FIELDS[k] then
      error(("resource type %s: unknown field %s (fields: %s)"):format(name, tostring(k),
        errors.list(FIELDS)), 2)
    end
    if type(v) ~= FIELDS[k] then
      error(("resource type %s: %s must be a %s"):format(name, k, FIELDS[k]), 2)
    end
  end
  for _, k in ipairs(REQUIRED) do
    if def[k] == nil then error(("resource type %s: %s is required"):format(name, k), 2) end
  end
  if def.delete == nil and not def.data then
    error(("resource type %s: delete is required (or data = true: a type that only reads, "
      .. "whose records destroy forgets)"):format(name), 2)
  end
  schema.check_definition(name, def.schema)
  local outputs = {}
  for k, v in pairs(def.schema.outputs or {}) do
    outputs[type(k) == "string" and k or v] = true
  end
  local replace_on = {}
  for _, k in ipairs(def.schema.replace_on or {}) do replace_on[k] = true end
  local mutable = {}
  for _, k in ipairs(def.schema.mutable_outputs or {}) do mutable[k] = true end
  local entry = { name = name, outputs = outputs, replace_on = replace_on,
    mutable_outputs = mutable, delete_first = def.schema.delete_first == true,
    delete = def.delete or forget, module = registering_module() }
  -- the type gets plain values; what it returns keeps the secret marks (secret.lua)
  for k, f in pairs(require("fo.engine.secret").type_calls(def)) do entry[k] = f end
  registry[name] = setmetatable(entry, { __index = def })
  return registry[name]
end

--- The module that registered type `name` (what `require` loaded); M.DATA_MODULE for a data
--- type defined outside a module; nil: not registered, or another type defined outside a
--- module (in a recipe).
function M.module_of(name)
  local t = registry[name]
  return t and (t.module or t.data and M.DATA_MODULE or nil)
end

--- Registers the types `names` (a list) by requiring the modules that `modules` (type →
--- module name, as the state records them) gives for them, each once. Returns those still
--- unknown, sorted, each { type =, module = (or nil), why = (one line) }.
function M.require_modules(names, modules)
  local tried, missing = {}, {}
  for _, name in ipairs(names) do
    local module = modules[name]
    if module == M.DATA_MODULE and not registry[name] then
      M.register(name, data_stand_in(name))
    elseif module and not registry[name] and tried[module] == nil then
      local ok, err = pcall(require, module)
      tried[module] = ok or ("require %q failed: %s"):format(module,
        (tostring(err):match("^[^\n]*"):gsub(":$", "")))
    end
    if not registry[name] then
      local why = "the state does not record the module that defines it (a type the recipe "
        .. "defines itself, or a state written before fo recorded modules)"
      if module then
        why = tried[module] == true and ("module %s does not register it"):format(module)
          or tried[module]
      end
      missing[#missing + 1] = { type = name, module = module, why = why }
    end
  end
  table.sort(missing, function(a, b) return a.type < b.type end)
  return missing
end

--- The registered type, or nil.
function M.get(name)
  return registry[name]
end

--- The type or an engine error naming the known ones (where: the declaration's place).
function M.need(name, where, what)
  local t = registry[name]
  if t then return t end
  local known = M.names()
  errors.raise("recipe", ("unknown resource type '%s'%s%s. Known types: %s. A type exists once "
    .. "the module defining it is required (e.g. require \"fo.aws.resources\")")
    :format(tostring(name), errors.did_you_mean(tostring(name), known), what or "",
      #known > 0 and table.concat(known, ", ") or "none"), where)
end

function M.names()
  local out = {}
  for k in pairs(registry) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return M
