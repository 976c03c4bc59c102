-- Deterministic sample values for a shape of an AWS model, in fo's Lua conventions
-- (docs/aws-services.md, Values): every member set (one member of a union), two list items
-- and two map entries, enum values from the model, strings with markup and non-ASCII text
-- now and then (not in headers or URI labels), timestamps with and without a fraction
-- (whole seconds in headers: RFC 822 has none), blobs with NUL and 0xFF bytes.
-- opts.sparse gives the other edge of each type: empty lists and maps, empty strings
-- (outside headers and labels), zero and negative numbers, false.
local M = {}

local T0 = 1700000000
local MAX_DEPTH = 6

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- The sample of the shape reference `ref` of `model`; nil for what cannot be sampled
--- (event streams, jsonvalue strings).
function M.value(model, ref, opts)
  opts = opts or {}
  local n = 0
  local function next_n() n = n + 1; return n end

  local function sample(r, name, depth, stack, located)
    local shape = model.shapes[r.shape]
    local t = shape.type
    if shape.eventstream or (r.jsonvalue or shape.jsonvalue) then return nil end
    if t == "structure" then
      local out, required = {}, {}
      for _, m in ipairs(shape.required or {}) do required[m] = true end
      local members = sorted_keys(shape.members)
      if shape.union then members = { members[1] } end
      for _, m in ipairs(members) do
        local mref = shape.members[m]
        local mshape = model.shapes[mref.shape]
        local loc = mref.location or mshape.location
        local container = mshape.type == "structure" or mshape.type == "list" or mshape.type == "map"
        if loc == "statusCode" or loc == "headers" then
          -- left out: the status code and header maps are not round-trip material here
        elseif opts.sparse and (mshape.type == "list" or mshape.type == "map") and not loc then
          out[m] = {}
        elseif container and (stack[mref.shape] or (depth >= MAX_DEPTH and not required[m])) then
          -- recursive, or too deep and optional: a required list or map is left empty
          if required[m] and mshape.type ~= "structure" then out[m] = {} end
        else
          stack[r.shape] = true
          out[m] = sample(mref, m, depth + 1, stack, loc)
          stack[r.shape] = nil
        end
      end
      return out
    elseif t == "list" then
      local out = {}
      for i = 1, 2 do out[i] = sample(shape.member, name, depth + 1, stack, located) end
      return out
    elseif t == "map" then
      local out = {}
      local kshape = model.shapes[shape.key.shape]
      for i = 1, 2 do
        local k = kshape.enum and kshape.enum[(i - 1) % #kshape.enum + 1] or (name .. "Key" .. i)
        out[k] = sample(shape.value, name, depth + 1, stack, located)
      end
      return out
    end
    local k = next_n()
    if t == "string" then
      if shape.enum then return shape.enum[k % #shape.enum + 1] end
      if opts.sparse and k % 3 == 0 and not located then return "" end
      if k % 7 == 0 and not located then return name .. "-" .. k .. " & <café> \"€\" 'x'" end
      return name .. "-" .. k
    elseif t == "integer" or t == "long" or t == "short" or t == "byte" then
      if opts.sparse then return k % 2 == 1 and 0 or -k end
      return t == "long" and 5000000000 + k or k
    elseif t == "float" or t == "double" then
      return opts.sparse and -k - 0.25 or k + 0.5
    elseif t == "boolean" then
      return not opts.sparse and k % 2 == 1
    elseif t == "timestamp" then
      return (k % 2 == 1 and not located) and T0 + k + 0.5 or T0 + k
    elseif t == "blob" then
      return "blob-" .. k .. "\0\255"
    end
    error("no sample for type " .. tostring(t) .. " (" .. r.shape .. ")")
  end

  return sample(ref, ref.shape, 0, {}, nil)
end

return M
