-- Property-level differences between recorded inputs and desired properties: which paths
-- changed (old → new) and whether the change forces a replacement (the type's replace_on,
-- or its own diff).
local ref = require "fo.engine.ref"
local secret = require "fo.engine.secret"

local M = {}

local function plain_table(v)
  return type(v) == "table" and v ~= ref.UNKNOWN and not ref.is(v) and not secret.is(v)
end

--- Deep equality of plain values; an unknown value equals nothing.
function M.equal(a, b)
  if a == ref.UNKNOWN or b == ref.UNKNOWN then return false end
  if a == b then return true end
  -- a secret is compared by its value (the state's is decrypted for it)
  if secret.is(a) or secret.is(b) then return M.equal(secret.reveal(a), secret.reveal(b)) end
  if not (plain_table(a) and plain_table(b)) then
    -- 1 and 1.0 are the same value to AWS
    return type(a) == "number" and type(b) == "number" and a == b
  end
  for k, v in pairs(a) do
    if not M.equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function key_path(path, k)
  if math.type(k) == "integer" then return ("%s[%d]"):format(path, k) end
  if path == "" then return tostring(k) end
  return path .. "." .. tostring(k)
end

-- numbers first, then strings, each in their order
local function key_before(x, y)
  if type(x) == type(y) then return x < y end
  return type(x) == "number"
end

local function add_keys(t, seen, keys)
  if not plain_table(t) then return end
  for k in pairs(t) do
    if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
  end
end

local function sorted_keys(a, b)
  local seen, keys = {}, {}
  add_keys(a, seen, keys)
  add_keys(b, seen, keys)
  table.sort(keys, key_before)
  return keys
end

local function walk(old, new, path, top, out)
  if M.equal(old, new) then return end
  if plain_table(old) and plain_table(new) then
    for _, k in ipairs(sorted_keys(old, new)) do
      walk(old[k], new[k], key_path(path, k), top or k, out)
    end
    return
  end
  out[#out + 1] = { path = path, key = top, old = old, new = new }
end

--- The differences between `old` and `new` (tables of properties): an array of
--- {path=, key= (the top-level property), old=, new=}, sorted by path.
function M.changes(old, new)
  local out = {}
  -- Nothing changed (a rerun: every resource): one comparison instead of sorting the keys
  -- and building each path. Two distinct plain tables equal by M.equal have every key's
  -- values equal by it, which is all the walk below would check (the same table twice is
  -- walked: an unknown in it is a change, though the table equals itself).
  if old ~= new and plain_table(old) and plain_table(new) and M.equal(old, new) then
    return out
  end
  for _, k in ipairs(sorted_keys(old or {}, new or {})) do
    walk((old or {})[k], (new or {})[k], key_path("", k), k, out)
  end
  return out
end

--- Diff of a resource: changes (as M.changes), replace (bool) and the properties forcing
--- it. Uses the type's diff(old, new) → changed paths, replace when the new properties are
--- all known; else the schema (replace_on; a type without update replaces on any change).
function M.resource(tdef, old, new)
  local changes = M.changes(old, new)
  local forcing = {}
  if tdef.diff and not ref.has_unknown(new) then
    local paths, replace = tdef.diff(old, new)
    paths = paths or {}
    local keep = {}
    for _, p in ipairs(paths) do
      local matched = false
      for _, c in ipairs(changes) do
        if c.path == p or c.path:sub(1, #p + 1) == p .. "." or c.path:sub(1, #p + 1) == p .. "[" then
          keep[c], matched = true, true
        end
      end
      if not matched then
        changes[#changes + 1] = { path = p, key = p:match("^[^.%[]+"), changed = true }
        keep[changes[#changes]] = true
      end
    end
    local out = {}
    for _, c in ipairs(changes) do if keep[c] then out[#out + 1] = c end end
    if replace and #out > 0 then
      for _, c in ipairs(out) do forcing[c.key] = true end
    end
    return out, replace == true and #out > 0, forcing
  end
  local replace = false
  for _, c in ipairs(changes) do
    if tdef.replace_on[c.key] or not tdef.update then
      replace, forcing[c.key] = true, true
    end
  end
  return changes, replace, forcing
end

--- A value for people: strings quoted, tables as compact JSON-like text, unknowns as
--- "(known after apply)"; at most `max` characters (default 80).
function M.show(v, max)
  max = max or 80
  local s
  if v == ref.UNKNOWN then return "(known after apply)" end
  if v == nil then return "(none)" end
  if secret.is(v) then return secret.TEXT end
  if type(v) == "string" then s = ("%q"):format(v):gsub("\\\n", "\\n")
  elseif type(v) == "table" then
    local parts = {}
    if #v > 0 then
      for _, x in ipairs(v) do parts[#parts + 1] = M.show(x, max) end
      s = "[" .. table.concat(parts, ", ") .. "]"
    else
      local keys = sorted_keys(v, {})
      for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. " = " .. M.show(v[k], max) end
      s = "{" .. table.concat(parts, ", ") .. "}"
    end
  else s = tostring(v) end
  if #s > max then s = s:sub(1, max - 1) .. "…" end
  return s
end

return M
