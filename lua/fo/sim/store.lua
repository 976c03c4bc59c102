-- The simulator's state: accounts → regions → services, each a plain table the service
-- handlers own, plus the id stream. Saved as a JSON snapshot (atomically, through fo.fs)
-- and a change log next to it (fo.sim.store_log) so that reruns against the sim see what
-- earlier runs created. Once it saves to a file, a service's table handed out by Store:db
-- is a view that marks the records a call reads or writes (fo.sim.store_track): a
-- mutating call appends to the log those of them that differ from a copy of what was saved
-- (the records that changed, not their whole tables: O(change)), and the log is folded into
-- a new snapshot once it outgrows it.
local json = require "fo.json"
local rng = require "fo.sim.rng"
local slog = require "fo.sim.store_log"
local records = require "fo.sim.records"
local track = require "fo.sim.store_track"

local M = {}
local Store = {}
Store.__index = Store

M.FORMAT = "fo-sim-state"
M.VERSION = 1
--- The log is folded into the snapshot once its records outgrow the snapshot, and not
--- before they reach this many bytes (tests lower it).
M.LOG_MIN_BYTES = 1 << 20

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
  local s = setmetatable({ data = fresh_data(seed), db_texts = {} }, Store)
  s.ids = rng.new(seed, 0)
  return s
end

local function key_of(account, region, service)
  return account .. "\0" .. region .. "\0" .. service
end

--- The table of `service` in `region` of `account`, created on first use. Once the store
--- saves to a file it is a view of the table (fo.sim.store_track) that marks the records
--- a call reads or writes, so that only those are compared with what was saved.
function Store:db(account, region, service)
  local accounts = self.data.accounts
  local a = accounts[account]
  if not a then a = {}; accounts[account] = a end
  local r = a[region]
  if not r then r = {}; a[region] = r end
  local d = r[service]
  local created = not d
  if created then d = {}; r[service] = d end
  local tracker = self.tracker
  if not tracker then return d end
  return track.view(tracker, key_of(account, region, service), { account, region, service },
    d, created)
end

--- Marks what code reading `data.accounts` directly may change (the failover model's
--- clock work): `service` of `region` of `account` when it exists, compared whole with
--- what was saved at the next save — or only its member `member` when given.
function Store:touch(account, region, service, member)
  local a = self.data.accounts[account]
  if self.tracker and a and a[region] and a[region][service] then
    track.touch(self.tracker, key_of(account, region, service), { account, region, service },
      member)
  end
end

--- Stops marking what calls touch (a store no longer saved to a file: its state stays in
--- memory only).
function Store:detach()
  self.tracker, self.log, self.shadow = nil, nil, nil
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
  if self.tracker then track.take(self.tracker) end
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

--- Writes the whole state to `path` atomically (temp file, fsync, rename; mode 0600) and
--- starts a new log for it (a crash between the two leaves a log whose base is not the
--- snapshot: ignored, the snapshot holds its changes).
function Store:save(path)
  local fs = require "fo.fs"
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then fs.mkdir_p(dir, tonumber("700", 8)) end
  local text = self:encode()
  fs.write_atomic(path, text, slog.MODE)
  local header = slog.header(text)
  local lpath = slog.path(path)
  fs.write_atomic(lpath, header, slog.MODE)
  self.log = { path = path, lpath = lpath, snapshot_bytes = #text, header_bytes = #header,
    bytes = #header, seq = 0 }
  -- what the file holds, to tell the next calls' changes from it, and the marks of what
  -- they touch from now on (the whole state is saved: the marks so far are done with)
  self.shadow = records.copy(self.data.accounts)
  if self.tracker then track.take(self.tracker) else self.tracker = track.new() end
end

-- Plain data equal, integers and floats apart (JSON keeps them apart too); in C, since
-- every entry of a changed service table is compared.
local equal = require("fo.tables").equal

-- A change as JSON text: {"db":DB,"field":F,"entry":K,"value":V} (`db`: DB as JSON text;
-- field, entry, value: nil when absent), written piece by piece rather than as one
-- document (a log line is made per changed entry).
local line = json.line
local function change_body(db, field, entry, value)
  return '{"db":' .. db
    .. (field ~= nil and ',"field":' .. line(field) or "")
    .. (entry ~= nil and ',"entry":' .. line(entry) or "")
    .. (value ~= nil and ',"value":' .. line(value) or "") .. "}"
end

-- change_body, raising the error Store:encode raises for what JSON cannot hold.
local function change_text(db, field, entry, value)
  local ok, text = pcall(change_body, db, field, entry, value)
  if not ok then
    error(("the simulator state cannot be saved: %s (service handlers must store only "
      .. "strings, numbers, booleans, arrays and string-keyed tables)"):format(text), 0)
  end
  return text
end

-- The changes of member `k` of a service table, `v`, against its copy as last saved in
-- the table's copy `shadow` (updated to match), appended to `out` (`key`: the table's
-- key as JSON text): the entries of a table member that differ (a resource, by its id),
-- else the member itself.
local function diff_member(out, key, k, v, shadow)
  local sv = shadow[k]
  if type(v) == "table" and type(sv) == "table" then
    for kk, x in pairs(v) do
      if not equal(x, sv[kk]) then
        out[#out + 1] = change_text(key, k, kk, x)
        sv[kk] = records.copy(x)
      end
    end
    for kk in pairs(sv) do
      if v[kk] == nil then
        out[#out + 1] = change_text(key, k, kk)
        sv[kk] = nil
      end
    end
  elseif not equal(v, sv) then
    out[#out + 1] = change_text(key, k, nil, v)
    shadow[k] = records.copy(v)
  end
end

-- The changes of entries `entries` (a set of keys) of member `k` of a service table,
-- `v`, against the table's copy as last saved, `shadow` (updated to match).
local function diff_entries(out, key, k, v, shadow, entries)
  local sv = shadow[k]
  if type(v) ~= "table" or type(sv) ~= "table" then return diff_member(out, key, k, v, shadow) end
  for kk in pairs(entries) do
    local x = v[kk]
    if not equal(x, sv[kk]) then
      out[#out + 1] = change_text(key, k, kk, x)
      sv[kk] = records.copy(x)
    end
  end
end

-- Keys in a fixed order (a log's records the same from run to run): numbers first.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(x, y)
    local tx, ty = type(x), type(y)
    if tx ~= ty then return tx < ty end
    return x < y
  end)
  return keys
end

-- The changes of the service table `d` (marks `m`: fo.sim.store_track) against its copy
-- as last saved, `shadow`, appended to `out`: of a table marked whole every member, else
-- the members and records marked.
local function diff(out, key, d, shadow, m)
  if m.whole then
    for k, v in pairs(d) do diff_member(out, key, k, v, shadow) end
    for k in pairs(shadow) do
      if d[k] == nil then
        out[#out + 1] = change_text(key, k)
        shadow[k] = nil
      end
    end
    return
  end
  local fields = m.fields
  local only = next(fields)
  for _, k in ipairs(next(fields, only) == nil and { only } or sorted_keys(fields)) do
    local f = fields[k]
    if f == track.ALL then
      diff_member(out, key, k, d[k], shadow)
    else
      diff_entries(out, key, k, d[k], shadow, f)
    end
  end
end

-- The changes since the last save, as a log record's body (a JSON array).
function Store:_changes()
  local marks = track.take(self.tracker)
  local parts = {}
  local accounts, shadows = self.data.accounts, self.shadow
  for _, k in ipairs(sorted_keys(marks)) do
    local m = marks[k]
    local a, r, svc = m.db[1], m.db[2], m.db[3]
    local d = accounts[a] and accounts[a][r] and accounts[a][r][svc]
    if d then
      local dbtext = self.db_texts[k]
      if not dbtext then
        dbtext = json.line(m.db)
        self.db_texts[k] = dbtext
      end
      local sa = shadows[a]
      if not sa then sa = {}; shadows[a] = sa end
      local sr = sa[r]
      if not sr then sr = {}; sa[r] = sr end
      if sr[svc] then
        diff(parts, dbtext, d, sr[svc], m)
      else
        parts[#parts + 1] = change_text(dbtext, nil, nil, d)
        sr[svc] = records.copy(d)
      end
    end
  end
  parts[#parts + 1] = ('{"set":"id_draws","value":%d}'):format(self.data.id_draws)
  return "[" .. table.concat(parts, ",") .. "]"
end

--- Makes the changes since the last save durable in `path`: one record appended to its
--- log (one fsync). The first save of a store whose log cannot be appended to (none yet, a
--- torn tail, a stale log, another file), a log another process wrote to meanwhile, and a
--- log grown past its snapshot write the whole state instead (Store:save).
--- The append does not yield: records land in the order persists are made.
function Store:persist(path)
  local log = self.log
  if not log or log.path ~= path then return self:save(path) end
  local cok, body = pcall(self._changes, self)
  if not cok then
    -- (a handler stored what JSON cannot hold) the copy of what was saved may be partly
    -- updated: only a whole save is sure to hold every change now
    self.log = nil
    error(body, 0)
  end
  log.seq = log.seq + 1
  local line = slog.record(log.seq, body)
  local expected = log.bytes + #line
  log.bytes = expected
  local ok, bytes = pcall(slog.append, log.lpath, line)
  if not ok then
    -- what the record held is marked saved: only a whole save is sure to hold it now (the
    -- appends after a failed one fail too: fo.fs.append_kept)
    if self.log == log then self.log = nil end
    error(bytes, 0)
  end
  if bytes ~= expected
    or bytes - log.header_bytes > math.max(M.LOG_MIN_BYTES, log.snapshot_bytes) then
    -- another writer's records are interleaved with ours (its whole state wins, as a
    -- rewrite would), or the log outgrew the snapshot: fold
    self:save(path)
  end
end

local function corrupt(path, why)
  error(("simulator state file %s is not usable: %s. Delete it and its log (rm %s %s) or "
    .. "call sim:reset() to start from an empty simulator (everything the sim held is "
    .. "forgotten)"):format(path, why, path, slog.path(path)), 0)
end

--- The store saved at `path` with its log replayed, or nil when there is no such file. A
--- file that cannot be read back raises an error naming the file and the fix; it is never
--- treated as empty. A torn last record of the log (a call cut short by a crash before it
--- was answered) is dropped.
function M.load(path)
  local data, text = json.read_file(path, { format = M.FORMAT, version = M.VERSION,
    what = "a simulator state document" })
  if not data then
    if text then corrupt(path, text) end
    return nil
  end
  if math.type(data.seed) ~= "integer" or math.type(data.id_draws) ~= "integer"
    or type(data.accounts) ~= "table" then
    corrupt(path, "seed, id_draws or accounts missing")
  end
  local lpath = slog.path(path)
  local log = slog.replay(lpath, data, text, function(line, why)
    corrupt(path, ("its log %s, line %d: %s"):format(lpath, line, why))
  end)
  local s = setmetatable({ data = data, db_texts = {} }, Store)
  if log.clean then
    s.tracker = track.new()
    s.log = { path = path, lpath = lpath, snapshot_bytes = #text,
      header_bytes = log.header_bytes, bytes = log.bytes,
      seq = log.records }
    s.shadow = records.copy(data.accounts)
  end
  s.ids = rng.new(data.seed, data.id_draws)
  return s
end

return M
