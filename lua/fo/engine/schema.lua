-- Property schemas of resource types: which properties exist, their value types,
-- defaults, and which force a replacement. Checks declared properties (references are
-- checked once resolved) and fills in defaults.
local ref = require "fo.engine.ref"
local errors = require "fo.engine.errors"
local secret = require "fo.engine.secret"

local M = {}

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

-- value type name → check(v) → true or "what it is instead"
local CHECK = {
  string = function(v) return type(v) == "string" end,
  number = function(v) return type(v) == "number" end,
  integer = function(v) return math.type(v) == "integer" end,
  boolean = function(v) return type(v) == "boolean" end,
  list = function(v) return type(v) == "table" and is_array(v) end,
  map = function(v)
    if type(v) ~= "table" then return false end
    for k in pairs(v) do if type(k) ~= "string" then return false end end
    return true
  end,
  table = function(v) return type(v) == "table" end,
  any = function() return true end,
}
M.TYPES = CHECK

local function kind_of(v)
  if math.type(v) == "integer" then return "integer " .. tostring(v) end
  if type(v) == "table" then return is_array(v) and "a list" or "a table" end
  if type(v) == "string" then return ("string %q"):format(#v > 40 and v:sub(1, 40) .. "…" or v) end
  return type(v) .. " " .. tostring(v)
end

--- Checks a type's schema itself (at registration); raises on a mistake in it.
function M.check_definition(type_name, schema)
  if type(schema) ~= "table" or type(schema.properties) ~= "table" then
    error(("resource type %s: schema.properties must be a table"):format(type_name), 3)
  end
  for name, p in pairs(schema.properties) do
    if type(p) ~= "table" or not CHECK[p.type or "any"] then
      error(("resource type %s: property %s needs a type (%s)"):format(type_name, name,
        errors.list(CHECK)), 3)
    end
  end
  for _, name in ipairs(schema.replace_on or {}) do
    if not schema.properties[name] then
      error(("resource type %s: replace_on names unknown property %s"):format(type_name, name), 3)
    end
  end
end

-- One property's value against its spec: nil, or a problem.
local function check_value(name, spec, v)
  if ref.is(v) or v == ref.UNKNOWN then return nil end -- checked once resolved
  if secret.contains(v) then
    -- checked on the plain value; a problem never quotes it
    local why = check_value(name, spec, secret.reveal(v))
    return why and secret.scrub(why:gsub("^(property [^:]*): expected (%S+), got .*$",
      "%1: expected %2, got " .. secret.TEXT))
  end
  local t = spec.type or "any"
  if not CHECK[t](v) then
    return ("property %s: expected %s, got %s"):format(name, t, kind_of(v))
  end
  if spec.enum then
    for _, e in ipairs(spec.enum) do if e == v then return nil end end
    return ("property %s: %s is not one of %s"):format(name, kind_of(v),
      table.concat(spec.enum, ", "))
  end
  -- A table holding references (alias = {dns_name = lb.dns_name, ...}) is checked once
  -- they are resolved, like a reference itself.
  if spec.check and not ref.contains(v) then
    local ok, why = spec.check(v)
    if not ok then return ("property %s: %s"):format(name, why or "invalid value") end
  end
  return nil
end

local function by_text(a, b) return tostring(a) < tostring(b) end

--- Problems of `props` against the schema (an array of messages, empty when fine):
--- unknown properties (with the known ones), wrong value types, missing required ones.
function M.problems(type_name, schema, props)
  local out = {}
  local known = schema.properties
  local names = {}
  for k in pairs(props) do names[#names + 1] = k end
  table.sort(names, by_text)
  for _, k in ipairs(names) do
    local spec = known[k]
    if not spec then
      out[#out + 1] = ("unknown property %s%s; %s has: %s"):format(tostring(k),
        errors.did_you_mean(tostring(k), known), type_name, errors.list(known))
    else
      local why = check_value(k, spec, props[k])
      if why then out[#out + 1] = why end
    end
  end
  local required = {}
  for k, spec in pairs(known) do
    if spec.required and props[k] == nil and spec.default == nil then required[#required + 1] = k end
  end
  table.sort(required)
  for _, k in ipairs(required) do out[#out + 1] = ("property %s is required"):format(k) end
  return out
end

local function copy(v)
  if type(v) ~= "table" or ref.is(v) or v == ref.UNKNOWN or secret.is(v) then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end
M.copy = copy

--- A copy of props with the schema's defaults filled in.
function M.with_defaults(schema, props)
  local out = copy(props)
  for k, spec in pairs(schema.properties) do
    if out[k] == nil and spec.default ~= nil then out[k] = copy(spec.default) end
    -- a property the type marks secret is kept like a secret config value
    if spec.secret and out[k] ~= nil and out[k] ~= ref.UNKNOWN and not ref.is(out[k]) then
      out[k] = secret.wrap(out[k])
    end
  end
  return out
end

--- Names of properties marked secret (shown as "(sensitive)").
function M.is_secret(schema, name)
  local spec = schema.properties[name]
  return spec ~= nil and spec.secret == true
end

return M
