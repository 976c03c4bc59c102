-- Lazy values: a reference to another resource's output (`vpc.id`, `vpc.tags.Name`) or a
-- value derived from references (fo.format, fo.apply, `..`). Declaring a resource whose
-- properties hold one makes it depend on the referenced resources; the value is known
-- only once they are applied.
local errors = require "fo.engine.errors"
local secret = require "fo.engine.secret"

local M = {}

-- The marker of a value not known before apply (plan output shows it as such).
M.UNKNOWN = setmetatable({}, {
  __name = "fo.engine.Unknown",
  __tostring = function() return "(known after apply)" end,
})

local Ref = { __name = "fo.engine.Ref" }
-- ref → { kind = "output"|"derived", decl, path, inputs, fn, where }; weak so refs die.
local data = setmetatable({}, { __mode = "k" })

local function new(d)
  local r = setmetatable({}, Ref)
  data[r] = d
  return r
end

function M.is(v)
  return data[v] ~= nil
end

--- A reference to output `key` of the declaration `decl`.
function M.output(decl, key, where)
  return new{ kind = "output", decl = decl, path = { key }, where = where }
end

--- A value computed by fn(...) from `inputs` (an array that may hold references) once
--- they are known.
function M.derive(inputs, fn, where)
  return new{ kind = "derived", inputs = inputs, n = inputs.n or #inputs, fn = fn,
    where = where or errors.where(2) }
end

-- `vpc.tags.Name`: a deeper path into an output.
Ref.__index = function(r, k)
  local d = data[r]
  if d.kind ~= "output" then
    error(("a derived value has no field '%s': use fo.apply(value, fn) to reach into it")
      :format(tostring(k)), 2)
  end
  local path = table.move(d.path, 1, #d.path, 1, {})
  path[#path + 1] = k
  return new{ kind = "output", decl = d.decl, path = path, where = errors.where(2) }
end

Ref.__newindex = function()
  error("a reference to a resource output is read-only", 2)
end

-- `vpc.id .. "-suffix"` stays lazy.
Ref.__concat = function(a, b)
  return M.derive({ a, b, n = 2 }, function(x, y) return tostring(x) .. tostring(y) end,
    errors.where(2))
end

-- A reference has no value yet: turning it into a string would silently bake a
-- placeholder into a resource, so it is an error that says what to do instead.
Ref.__tostring = function(r)
  errors.raise("recipe", ("%s is known only after apply: use fo.format(\"...%%s...\", ref) or "
    .. "fo.apply(ref, fn) to build a value from it"):format(M.describe(r)), errors.where(2))
end

--- "main.id" (the resource's logical name and the output path) for messages.
function M.describe(r)
  local d = data[r]
  if d.kind == "derived" then return "a derived value" end
  local parts = { d.decl.name }
  for _, k in ipairs(d.path) do parts[#parts + 1] = tostring(k) end
  return table.concat(parts, ".")
end

function M.where(r)
  return data[r].where
end

--- Calls visit(decl, ref) for every output reference inside `value` (tables walked,
--- derived values through their inputs).
function M.each(value, visit, seen)
  seen = seen or {}
  if type(value) ~= "table" or seen[value] then return end
  seen[value] = true
  local d = data[value]
  if d then
    if d.kind == "output" then visit(d.decl, value)
    else
      for i = 1, d.n do M.each(d.inputs[i], visit, seen) end
    end
    return
  end
  for k, v in pairs(value) do
    M.each(k, visit, seen)
    M.each(v, visit, seen)
  end
end

--- True when `value` holds a reference anywhere.
function M.contains(value)
  local found = false
  M.each(value, function() found = true end)
  return found
end

local function resolve(value, outputs_of)
  if type(value) ~= "table" then return value end
  if value == M.UNKNOWN or secret.is(value) then return value end
  local d = data[value]
  if not d then
    local out, any_unknown = {}, false
    for k, v in pairs(value) do
      local r = resolve(v, outputs_of)
      if r == M.UNKNOWN then any_unknown = true end
      out[k] = r
    end
    return out, any_unknown
  end
  if d.kind == "output" then
    local v = outputs_of(d.decl)
    if v == nil then return M.UNKNOWN end
    for i, k in ipairs(d.path) do
      if type(v) ~= "table" then
        errors.raise("recipe", ("%s: %s has no output %s (its outputs are known; "
          .. "this path is not in them)"):format(M.describe(value), d.decl.name,
          table.concat(d.path, ".", 1, i)), d.where)
      end
      if secret.is(v) then
        -- a path into a secret output: the value found there is secret too
        local plain = secret.reveal(v)
        for j = i, #d.path do plain = type(plain) == "table" and plain[d.path[j]] or nil end
        if plain == nil then
          errors.raise("recipe", ("%s has no value: resource %s has no output '%s'")
            :format(M.describe(value), d.decl.urn, table.concat(d.path, ".")), d.where)
        end
        return secret.wrap(plain)
      end
      v = v[k]
      if v == M.UNKNOWN then return v end
    end
    if v == nil then
      errors.raise("recipe", ("%s has no value: resource %s has no output '%s'")
        :format(M.describe(value), d.decl.urn, table.concat(d.path, ".")), d.where)
    end
    return v
  end
  local args = {}
  for i = 1, d.n do
    local r = resolve(d.inputs[i], outputs_of)
    if r == M.UNKNOWN or (type(r) == "table" and M.has_unknown(r)) then return M.UNKNOWN end
    args[i] = r
  end
  -- a value computed from a secret is secret (its function gets the plain values)
  local ok, v = pcall(secret.lift, d.fn, table.unpack(args, 1, d.n))
  if not ok then
    errors.raise("recipe", "computing a derived value failed: " .. secret.scrub(tostring(v)),
      d.where)
  end
  if M.is(v) then return resolve(v, outputs_of) end
  return v
end

--- A copy of `value` with every reference replaced by its value. outputs_of(decl) gives
--- the outputs of a declaration, or nil when they are not known yet: those references
--- become M.UNKNOWN (a derived value with an unknown input too).
function M.resolve(value, outputs_of)
  return (resolve(value, outputs_of))
end

--- True when `value` (resolved) holds M.UNKNOWN anywhere.
function M.has_unknown(value, seen)
  if value == M.UNKNOWN then return true end
  if type(value) ~= "table" then return false end
  seen = seen or {}
  if seen[value] then return false end
  seen[value] = true
  for _, v in pairs(value) do
    if M.has_unknown(v, seen) then return true end
  end
  return false
end

return M
