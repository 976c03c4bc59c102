-- Stack configuration: fo.config{ key = {type=, default=, required=, check=, enum=, doc=,
-- secret=} } gives typed values from the schema's defaults, the stack's config file
-- (.fo/<stack>.config.json) and `--config key=value`, in that order of precedence.
local errors = require "fo.engine.errors"
local json = require "fo.json"
local secret = require "fo.engine.secret"

local M = {}
local Session = {}
Session.__index = Session

local TYPES = { string = true, number = true, integer = true, boolean = true, list = true,
  map = true }
local ENTRY_FIELDS = { type = true, default = true, required = true, check = true, doc = true,
  secret = true, enum = true }

--- Reads a config file: a JSON object of key → value; nil when there is none.
function M.read_file(path)
  local v, why = json.read_file(path)
  if v == nil and why == nil then return nil end
  if type(v) ~= "table" then
    errors.raise("config", ("config file %s is not a JSON object of key → value (%s); fix it "
      .. "or remove it"):format(path, why or "got " .. type(v)))
  end
  return v
end

--- A session for one run: file values (from `path`) and overrides ({key = "text"} from
--- --config). `recorded` (optional, --destroy): the values the state recorded at the last
--- apply, used for keys neither the file nor --config gives (above the defaults). `file`
--- (optional): the file values already read (the backend's, backend/init.lua), `path`
--- then only names where they are. The keys that are fo's settings (backend/init.lua's
--- SETTINGS) are not config values.
function M.session(path, overrides, recorded, file)
  if file == nil then file = path and M.read_file(path) or {} end
  require("fo.engine.backend").take_settings(file, path)
  return setmetatable({ path = path, file = file,
    overrides = overrides or {}, from_state = recorded or {}, schema = {}, values = {},
    where = {} }, Session)
end

-- "--config key=text" → the typed value, or nil and why. A Lua value (fo.testing's
-- config, the REPL's) of the entry's type is taken as it is; another is read as its text.
local function convert(text, t)
  if type(text) ~= "string" then
    local check = require("fo.engine.schema").TYPES[t]
    if check and check(text) then return text end
    text = tostring(text)
  end
  if t == "string" then return text end
  if t == "number" then
    local n = tonumber(text)
    if n then return n end
    return nil, "expected a number"
  end
  if t == "integer" then
    local n = math.tointeger(tonumber(text))
    if n then return n end
    return nil, "expected an integer"
  end
  if t == "boolean" then
    local b = ({ ["true"] = true, yes = true, on = true, ["1"] = true, ["false"] = false,
      no = false, off = false, ["0"] = false })[text:lower()]
    if b ~= nil then return b end
    return nil, "expected true or false"
  end
  if text:match("^%s*[%[{]") then
    local ok, v = pcall(json.decode, text)
    if not ok then return nil, "invalid JSON: " .. v end
    return v
  end
  if t == "list" then
    local out = {}
    for item in text:gmatch("[^,]+") do out[#out + 1] = item:match("^%s*(.-)%s*$") end
    return out
  end
  return nil, "expected a JSON object"
end

local function type_ok(v, t)
  local check = require("fo.engine.schema").TYPES[t]
  return check(v)
end

-- Checks one value against its entry; raises a config error naming the key and source
-- (never quoting a secret value).
local function validate(key, entry, v, source, where)
  local t = entry.type or "string"
  local shown = entry.secret and secret.TEXT or tostring(v)
  if not type_ok(v, t) then
    errors.raise("config", ("config %s (%s): expected %s, got %s"):format(key, source, t,
      type(v) == "table" and "a table" or shown), where)
  end
  if entry.enum then
    local found = false
    for _, e in ipairs(entry.enum) do found = found or e == v end
    if not found then
      errors.raise("config", ("config %s (%s): %s is not one of %s"):format(key, source,
        shown, table.concat(entry.enum, ", ")), where)
    end
  end
  if entry.check then
    local ok, why = entry.check(v)
    if not ok then
      errors.raise("config", ("config %s (%s): %s"):format(key, source,
        secret.scrub(why or "rejected by its check")), where)
    end
  end
end

-- Keys given (file or --config) that no fo.config call declares.
function Session:unknown_keys()
  local out = {}
  for k in pairs(self.file) do if not self.schema[k] then out[#out + 1] = k end end
  for k in pairs(self.overrides) do
    if not self.schema[k] and self.file[k] == nil then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

local function strict(values, declared, where)
  return setmetatable(values, { __index = function(_, k)
    if declared[k] then return nil end
    error(("config key '%s' is not declared in fo.config{...} (at %s)"):format(tostring(k),
      where), 2)
  end })
end

--- fo.config(schema): the typed values of the keys `schema` declares (a table that raises
--- on an undeclared key). May be called more than once (e.g. by modules); a key declared
--- twice is an error.
function Session:declare(schema, where)
  if type(schema) ~= "table" then
    errors.raise("config", "fo.config{...}: expected a table of key = {type=, default=, ...}", where)
  end
  local keys = {}
  for k in pairs(schema) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local values = {}
  for _, key in ipairs(keys) do
    local entry = schema[key]
    if type(key) ~= "string" or type(entry) ~= "table" then
      errors.raise("config", ("fo.config: entry %s must be key = {type=, default=, ...}")
        :format(tostring(key)), where)
    end
    for f in pairs(entry) do
      if not ENTRY_FIELDS[f] then
        errors.raise("config", ("fo.config: %s: unknown field %s (fields: %s)"):format(key,
          tostring(f), errors.list(ENTRY_FIELDS)), where)
      end
    end
    local t = entry.type or "string"
    if not TYPES[t] then
      errors.raise("config", ("fo.config: %s: unknown type %s (types: %s)"):format(key,
        tostring(t), errors.list(TYPES)), where)
    end
    if self.schema[key] then
      errors.raise("config", ("fo.config: key %s is declared twice (first at %s)"):format(key,
        self.where[key]), where)
    end
    self.schema[key], self.where[key] = entry, where
    local v, source = entry.default, "default"
    if self.from_state[key] ~= nil then
      v, source = self.from_state[key], "the state's recorded config"
    end
    if self.file[key] ~= nil then v, source = self.file[key], "config file " .. self.path end
    local text = self.overrides[key]
    if text ~= nil then
      if entry.secret then secret.note(text) end -- masked in every message from now on
      local conv, why = convert(text, t)
      if conv == nil then
        errors.raise("config", ("--config %s=%s: %s"):format(key,
          entry.secret and secret.TEXT or text, entry.secret and secret.scrub(why) or why), where)
      end
      v, source = conv, "--config"
    end
    if v == nil then
      if entry.required then
        local unknown = self:unknown_keys()
        errors.raise("config", ("config %s is required%s: set it with --config %s=VALUE or in %s%s")
          :format(key, entry.doc and " (" .. entry.doc .. ")" or "", key, self.path or "the config file",
            #unknown > 0 and (" (given but not declared: %s)"):format(table.concat(unknown, ", ")) or ""),
          where)
      end
    else
      -- a secret is a wrapped value (secret.lua); one recorded in the state stays secret
      if entry.secret or secret.is(v) then
        v = secret.wrap(v)
        validate(key, entry, secret.reveal(v), source, where)
      else
        validate(key, entry, v, source, where)
      end
    end
    values[key] = v
    self.values[key] = v
  end
  return strict(values, schema, where)
end

--- After the recipe ran: keys given but never declared are an error naming the known ones.
function Session:finish()
  local unknown = self:unknown_keys()
  if #unknown == 0 then return end
  local known = {}
  for k in pairs(self.schema) do known[#known + 1] = k end
  table.sort(known)
  errors.raise("config", ("unknown config key%s %s%s; the recipe declares: %s"):format(
    #unknown > 1 and "s" or "", table.concat(unknown, ", "),
    errors.did_you_mean(unknown[1], known),
    #known > 0 and table.concat(known, ", ") or "no config (no fo.config{...} call)"))
end

--- The values to record in the state (secrets are wrapped: the state holds them encrypted).
function Session:recorded()
  local out = {}
  for k, v in pairs(self.values) do out[k] = v end
  return out
end

--- True when a value of this run is secret (the stack needs its key).
function Session:has_secrets()
  for _, v in pairs(self.values) do
    if secret.is(v) then return true end
  end
  return false
end

return M
