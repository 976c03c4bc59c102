-- The registry of resource types: what a type implements (create, read, update, delete,
-- diff, adopt) and its schema. Types register themselves when their module is required.
local schema = require "fo.engine.schema"
local errors = require "fo.engine.errors"

local M = {}
local registry = {}

local FIELDS = { schema = "table", create = "function", read = "function",
  update = "function", delete = "function", diff = "function", adopt = "function",
  doc = "string" }
local REQUIRED = { "schema", "create", "read", "delete" }

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
  schema.check_definition(name, def.schema)
  local outputs = {}
  for k, v in pairs(def.schema.outputs or {}) do
    outputs[type(k) == "string" and k or v] = true
  end
  local replace_on = {}
  for _, k in ipairs(def.schema.replace_on or {}) do replace_on[k] = true end
  local mutable = {}
  for _, k in ipairs(def.schema.mutable_outputs or {}) do mutable[k] = true end
  registry[name] = setmetatable({ name = name, outputs = outputs, replace_on = replace_on,
    mutable_outputs = mutable, delete_first = def.schema.delete_first == true }, { __index = def })
  return registry[name]
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
