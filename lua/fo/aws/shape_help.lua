-- Human-readable description of an operation's input (and top of its output) from the
-- model, for exploring in scripts and the REPL: members, types, required, enum values,
-- length/value ranges, nested structures down to a bounded depth.
local M = {}

local MAX_ENUM = 12 -- enum values shown before "... (N more)"
M.DEFAULT_DEPTH = 3

-- " (length 1..255)", " (value >= 1)", " (items <= 10)" from a shape's min/max, or "".
local function range(shape, what)
  -- cjson decodes every number as a float; show 5, not 5.0
  local lo, hi = shape.min and (math.tointeger(shape.min) or shape.min),
    shape.max and (math.tointeger(shape.max) or shape.max)
  if lo == nil and hi == nil then return "" end
  local r
  if lo and hi then r = ("%s..%s"):format(lo, hi)
  elseif lo then r = ">= " .. lo
  else r = "<= " .. hi end
  return (" (%s %s)"):format(what, r)
end

local function enum_text(values)
  local shown = {}
  for i = 1, math.min(#values, MAX_ENUM) do shown[i] = values[i] end
  local s = table.concat(shown, " | ")
  if #values > MAX_ENUM then s = s .. (" | ... (%d more)"):format(#values - MAX_ENUM) end
  return s
end

--- One-line type of the shape called `name`: "string", "list of Tag", "map of string to
--- string", "enum (a | b)", "integer (value 5..1000)", "structure Tag".
local function type_text(shapes, name)
  local s = shapes[name]
  if not s then return "?" .. tostring(name) end
  local t = s.type
  if t == "string" and s.enum then return "enum (" .. enum_text(s.enum) .. ")" end
  if t == "string" then return "string" .. range(s, "length") end
  if t == "list" then
    return "list of " .. type_text(shapes, s.member.shape) .. range(s, "items")
  end
  if t == "map" then
    return ("map of %s to %s"):format(type_text(shapes, s.key.shape),
      type_text(shapes, s.value.shape)) .. range(s, "entries")
  end
  if t == "structure" then return "structure " .. name end
  if t == "integer" or t == "long" or t == "double" or t == "float" then
    return t .. range(s, "value")
  end
  if t == "timestamp" then return "timestamp (epoch seconds)" end
  if t == "blob" then return "blob (raw string)" .. range(s, "length") end
  return t
end
M.type_text = type_text

-- The structure reached through lists and maps from the shape called `name`, if any.
local function inner_structure(shapes, name)
  local s = shapes[name]
  while s do
    if s.type == "structure" then return name, s end
    if s.type == "list" then name = s.member.shape
    elseif s.type == "map" then name = s.value.shape
    else return nil end
    s = shapes[name]
  end
end

-- Required members first, then the rest, each group alphabetical.
local function sorted_members(s, required)
  local names = {}
  for k in pairs(s.members or {}) do names[#names + 1] = k end
  table.sort(names, function(a, b)
    if (required[a] or false) ~= (required[b] or false) then return required[a] or false end
    return a < b
  end)
  return names
end

local function describe_members(out, shapes, s, indent, depth, path, elide)
  local required = {}
  for _, r in ipairs(s.required or {}) do required[r] = true end
  local names = sorted_members(s, required)
  if #names == 0 then out[#out + 1] = indent .. "(no members)" end
  for _, m in ipairs(names) do
    local ref = s.members[m]
    local line = ("%s%s%s: %s"):format(indent, m, required[m] and " (required)" or "",
      type_text(shapes, ref.shape))
    if ref.idempotencyToken then line = line .. " [filled in automatically when absent]" end
    if ref.deprecated then line = line .. " [deprecated]" end
    out[#out + 1] = line
    local inner_name, inner = inner_structure(shapes, ref.shape)
    if inner then
      if path[inner_name] then
        out[#out + 1] = indent .. "  (" .. inner_name .. ", recursive: see above)"
      elseif depth <= 1 then
        if elide then out[#out + 1] = indent .. "  ..." end
      else
        path[inner_name] = true
        describe_members(out, shapes, inner, indent .. "  ", depth - 1, path, elide)
        path[inner_name] = nil
      end
    end
  end
end

--- Text describing operation `op` of `model` (service name for the title). opts.depth:
--- structure levels expanded in the input (default 3); the output shows its top level.
function M.operation(model, service, op, opts)
  local depth = (opts and opts.depth) or M.DEFAULT_DEPTH
  local o = model.operations[op]
  local shapes = model.shapes
  local out = { ("%s:%s(params)"):format(service, op) }
  if o.input then
    out[#out + 1] = ("input %s:"):format(o.input.shape)
    describe_members(out, shapes, shapes[o.input.shape], "  ", depth,
      { [o.input.shape] = true }, true)
  else
    out[#out + 1] = "input: none (params optional)"
  end
  if o.output then
    out[#out + 1] = ("output %s:"):format(o.output.shape)
    describe_members(out, shapes, shapes[o.output.shape], "  ", 1, { [o.output.shape] = true })
  else
    out[#out + 1] = "output: none"
  end
  local extras = {}
  if model.paginators[op] then extras[#extras + 1] = ("paginate: %s:paginate(%q, params)"):format(service, op) end
  local waiters = {}
  for name, w in pairs(model.waiters) do
    if w.operation == op then waiters[#waiters + 1] = name end
  end
  table.sort(waiters)
  if #waiters > 0 then extras[#extras + 1] = "waiters: " .. table.concat(waiters, ", ") end
  for _, e in ipairs(extras) do out[#out + 1] = e end
  return table.concat(out, "\n")
end

return M
