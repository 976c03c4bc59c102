-- The simulator's state: accounts → regions → services, each a plain table the service
-- handlers own, plus the id stream. Saved as one JSON document (atomically, through
-- fo.fs) so that reruns against the sim see what earlier runs created.
local json = require "fo.json"
local rng = require "fo.sim.rng"

local M = {}
local Store = {}
Store.__index = Store

M.FORMAT = "fo-sim-state"
M.VERSION = 1

local function fresh_data(seed)
  return { format = M.FORMAT, version = M.VERSION, seed = seed, id_draws = 0, accounts = {} }
end

-- Without a seed, a random one: ids still differ between sims, and the seed is saved
-- with the state so a reloaded sim never repeats an id.
local function default_seed()
  return (string.unpack("<i8", require("fo.crypto").random(8)))
end

--- A new empty store. opts: seed (number or string).
function M.new(opts)
  opts = opts or {}
  local seed = opts.seed ~= nil and rng.seed_of(opts.seed) or default_seed()
  local s = setmetatable({ data = fresh_data(seed) }, Store)
  s.ids = rng.new(seed, 0)
  return s
end

--- The table of `service` in `region` of `account`, created on first use.
function Store:db(account, region, service)
  local accounts = self.data.accounts
  local a = accounts[account]
  if not a then a = {}; accounts[account] = a end
  local r = a[region]
  if not r then r = {}; a[region] = r end
  local d = r[service]
  if not d then d = {}; r[service] = d end
  return d
end

--- `n` random characters of `alphabet` from the id stream (seeded, persisted).
function Store:chars(n, alphabet)
  local s = self.ids:chars(n, alphabet)
  self.data.id_draws = self.ids.counter
  return s
end

--- An id in AWS's form: prefix .. "-" .. `digits` lower-case hex digits (default 17, as
--- EC2's long ids); without a prefix, the hex digits alone.
function Store:id(prefix, digits)
  local hex = self:chars(digits or 17, rng.HEX)
  if prefix == nil or prefix == "" then return hex end
  return prefix .. "-" .. hex
end

--- Empties the state (a new id stream continues the old one's seed and draws, so ids
--- given before the reset are not given again).
function Store:reset()
  local seed, draws = self.data.seed, self.data.id_draws
  self.data = fresh_data(seed)
  self.data.id_draws = draws
end

--- The state as JSON text (raises "<path>: why" when a handler stored something JSON
--- cannot hold: a function, a cycle, a non-string key in a map).
function Store:encode()
  local ok, text = pcall(json.encode, self.data)
  if not ok then
    error(("the simulator state cannot be saved: %s (service handlers must store only "
      .. "strings, numbers, booleans, arrays and string-keyed tables)"):format(text), 0)
  end
  return text .. "\n"
end

--- Writes the state to `path` atomically (temp file, fsync, rename; mode 0600).
function Store:save(path)
  local fs = require "fo.fs"
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then fs.mkdir_p(dir, tonumber("700", 8)) end
  fs.write_atomic(path, self:encode(), tonumber("600", 8))
end

local function corrupt(path, why)
  error(("simulator state file %s is not usable: %s. Delete it (rm %s) or call sim:reset() "
    .. "to start from an empty simulator (everything the sim held is forgotten)")
    :format(path, why, path), 0)
end

--- The store saved at `path`, or nil when there is no such file. A file that cannot be
--- read back raises an error naming the file and the fix; it is never treated as empty.
function M.load(path)
  local data, why = json.read_file(path, { format = M.FORMAT, version = M.VERSION,
    what = "a simulator state document" })
  if not data then
    if why then corrupt(path, why) end
    return nil
  end
  if math.type(data.seed) ~= "integer" or math.type(data.id_draws) ~= "integer"
    or type(data.accounts) ~= "table" then
    corrupt(path, "seed, id_draws or accounts missing")
  end
  local s = setmetatable({ data = data }, Store)
  s.ids = rng.new(data.seed, data.id_draws)
  return s
end

return M
