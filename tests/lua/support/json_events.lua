-- fo-run --json output for tests: the events of a run (one JSON object per line), and a
-- JSON Schema validator for the subset docs/json-events.schema.json uses (type, const,
-- enum, required, properties, additionalProperties: false, items, minimum, oneOf, $ref to
-- #/$defs/...). Decoded with cjson, as a consumer in another language would.
local cjson = require "cjson"

local M = {}

M.SCHEMA_PATH = (os.getenv("FO_TESTS_DIR") or "tests") .. "/../docs/json-events.schema.json"

--- The events of `text` (stdout of fo-run --json): an array of tables, in order. Raises
--- naming the line when one is not a JSON object.
function M.parse(text)
  local out, n = {}, 0
  for line in text:gmatch("[^\n]+") do
    n = n + 1
    local ok, v = pcall(cjson.decode, line)
    if not ok or type(v) ~= "table" then
      error(("line %d of the --json output is not a JSON object: %s\n%s"):format(n, tostring(v),
        line), 2)
    end
    out[#out + 1] = v
  end
  return out
end

--- The events named `name`, in order.
function M.all(events, name)
  local out = {}
  for _, e in ipairs(events) do
    if e.event == name then out[#out + 1] = e end
  end
  return out
end

--- The last event named `name` (nil when none).
function M.last(events, name)
  local all = M.all(events, name)
  return all[#all]
end

--- The schema (decoded).
function M.schema()
  local f = assert(io.open(M.SCHEMA_PATH, "rb"))
  local s = cjson.decode(f:read("a"))
  f:close()
  return s
end

local function json_type(v)
  local t = type(v)
  if t == "string" or t == "boolean" then return t end
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  if v == cjson.null then return "null" end
  if t == "table" then
    if next(v) == nil then return "empty" end -- cjson decodes [] and {} alike
    return #v > 0 and "array" or "object"
  end
  return t
end

local function type_ok(v, want)
  local have = json_type(v)
  if have == want then return true end
  if want == "number" and have == "integer" then return true end
  if want == "integer" and have == "number" then return v == math.floor(v) end
  if have == "empty" then return want == "array" or want == "object" end
  return false
end

local function resolve(root, ref)
  local name = ref:match("^#/%$defs/(.+)$")
  local s = name and root["$defs"] and root["$defs"][name]
  if not s then error("schema: unsupported $ref " .. ref) end
  return s
end

local KNOWN = { type = true, const = true, enum = true, required = true, properties = true,
  additionalProperties = true, items = true, minimum = true, oneOf = true, ["$ref"] = true,
  description = true, title = true, ["$schema"] = true, ["$id"] = true, ["$defs"] = true }

local function check(root, s, v, path, errs)
  for k in pairs(s) do
    if not KNOWN[k] then error("schema: keyword " .. k .. " is not supported by this validator") end
  end
  if s["$ref"] then return check(root, resolve(root, s["$ref"]), v, path, errs) end
  if s.type and not type_ok(v, s.type) then
    errs[#errs + 1] = ("%s: expected %s, got %s"):format(path, s.type, json_type(v))
    return
  end
  if s.const ~= nil and v ~= s.const then
    errs[#errs + 1] = ("%s: expected %s, got %s"):format(path, tostring(s.const), tostring(v))
  end
  if s.enum then
    local found = false
    for _, x in ipairs(s.enum) do if x == v then found = true end end
    if not found then errs[#errs + 1] = ("%s: %s is not one of the allowed values"):format(path, tostring(v)) end
  end
  if s.minimum and type(v) == "number" and v < s.minimum then
    errs[#errs + 1] = ("%s: %s is below %s"):format(path, tostring(v), tostring(s.minimum))
  end
  if type(v) == "table" then
    for _, k in ipairs(s.required or {}) do
      if v[k] == nil then errs[#errs + 1] = ("%s: %s is required"):format(path, k) end
    end
    if s.properties and #v == 0 then
      for k, x in pairs(v) do
        local ps = s.properties[k]
        if ps then check(root, ps, x, path .. "." .. tostring(k), errs)
        elseif s.additionalProperties == false then
          errs[#errs + 1] = ("%s: %s is not allowed"):format(path, tostring(k))
        end
      end
    end
    if s.items and #v > 0 then
      for i, x in ipairs(v) do check(root, s.items, x, ("%s[%d]"):format(path, i), errs) end
    end
  end
  if s.oneOf then
    local matches, best = 0, nil
    for _, branch in ipairs(s.oneOf) do
      local e = {}
      check(root, branch, v, path, e)
      if #e == 0 then matches = matches + 1
      elseif not best or #e < #best then best = e end
    end
    if matches == 0 then
      for _, e in ipairs(best or { path .. ": matches no branch of oneOf" }) do errs[#errs + 1] = e end
    elseif matches > 1 then
      errs[#errs + 1] = ("%s: matches %d branches of oneOf, not one"):format(path, matches)
    end
  end
end

--- The problems of `value` against `schema` (default the event schema): a list of
--- "path: why" strings, empty when it is valid.
function M.validate(value, schema)
  schema = schema or M.schema()
  local errs = {}
  check(schema, schema, value, "$", errs)
  return errs
end

--- Every problem of every event of `events`, each prefixed with the event's index and name.
function M.problems(events, schema)
  schema = schema or M.schema()
  local out = {}
  for i, e in ipairs(events) do
    for _, p in ipairs(M.validate(e, schema)) do
      out[#out + 1] = ("event %d (%s): %s"):format(i, tostring(e.event), p)
    end
  end
  return out
end

--- The events of `text` (a --json run's stdout), each checked against
--- docs/json-events.schema.json; raises naming the problems (and the text) when one is not.
function M.checked(text)
  local events = M.parse(text)
  local problems = M.problems(events, M.schema())
  if #problems > 0 then
    error(("events that break docs/json-events.schema.json:\n  %s\n%s"):format(
      table.concat(problems, "\n  "), text), 2)
  end
  return events
end

return M
