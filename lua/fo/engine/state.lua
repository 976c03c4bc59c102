-- The stack's state: a snapshot (.fo/<stack>.state.json, mode 0600) — what the stack owns,
-- per resource its type, region, physical id, inputs, outputs, dependencies, plus the intent
-- journal and replaced instances awaiting deletion — and an append-only change log next to
-- it (.fo/<stack>.state.log, 0600). `serial` counts the stores that wrote the state (one
-- per run or state command that changed it). Each durable write (a group commit: the changes of the
-- operations that finished in one turn of the loop) appends one self-checking line to the
-- log and fsyncs it; reading replays the log's valid lines onto the snapshot (a torn last
-- line is dropped with a notice). The log is folded into the snapshot (atomically, the
-- previous snapshot kept as .bak once per mutating run) at the first write of a run whose
-- log is not empty, when it outgrows the snapshot, and at the end of a run.
--
-- Log format: a header line {"base": sha256 of the snapshot it extends, "format":
-- "fo-state-log", "version": 1}, then one line per commit:
--   {"n":<1, 2, ...>,"sum":"<sha256 of BODY, 16 hex>","len":<bytes of BODY>,"changes":BODY}
-- with BODY a JSON array of changes: {"put":URN,"rec":{...}}, {"remove":URN},
-- {"intent":URN,"value":{...}} (no value: cleared), {"depose":{...}},
-- {"undepose":{"urn":..,"id":..}}, {"set":FIELD,"value":..}, {"type":T,"module":M}.
-- A log whose base is not the snapshot's hash is stale (a compaction died between writing
-- the snapshot and resetting the log): the snapshot already holds its changes.
local json = require "fo.json"
local errors = require "fo.engine.errors"
local types = require "fo.engine.types"
local waitlist = require "fo.engine.waitlist"
local fs = require "fo.fs"
local seal = require("fo.engine.secret").seal

local M = {}
M.FORMAT, M.VERSION = "fo-state", 1
M.LOG_FORMAT, M.LOG_VERSION = "fo-state-log", 1
--- The log is folded into the snapshot once its records outgrow LOG_FACTOR times the
--- snapshot, and not before they reach LOG_MIN_BYTES (tests lower it). The folds of a long
--- run add up to a geometric series: with a factor of 3 the snapshots a run writes come to
--- about 1.5 times the last one (with 1, 3 times: a 10k-resource apply wrote 12 MB of
--- snapshots for a 4 MB state), while the log stays within a constant factor of the state
--- (it is replayed only after a crash: every run ends with a fold).
M.LOG_MIN_BYTES = 1 << 20
M.LOG_FACTOR = 3

local MODE = tonumber("600", 8)

local Store = {}
Store.__index = Store

--- The log next to the state file at `path` (x.state.json → x.state.log).
function M.log_path(path)
  return (path:gsub("%.json$", "")) .. ".log"
end

local function sha256_hex(text)
  local crypto = require "fo.crypto"
  return crypto.hex(crypto.sha256(text))
end

-- JSON on one line: fo.json writes one value per line, and escapes newlines in strings.
local function flat(text)
  return (text:gsub("\n *", ""))
end

--- An empty state document.
function M.empty(stack, target)
  return { format = M.FORMAT, version = M.VERSION, stack = stack, target = target,
    config = {}, outputs = {}, resources = {}, deposed = {}, intents = {}, types = {} }
end

local function corrupt(path, why)
  local bucket, key = path:match("^s3://([^/]+)/(.*)$")
  if bucket then -- the S3 backend: the bucket's versioning keeps the earlier snapshots
    errors.raise("state", ("state object %s cannot be used: %s. fo never overwrites a state it "
      .. "cannot read, so nothing was done. The bucket keeps the earlier versions of the object "
      .. "(`aws s3api list-object-versions --bucket %s --prefix %s`): restore the last good one, "
      .. "or repair it by hand; without a usable state, fo would create the stack's resources a "
      .. "second time."):format(path, why, bucket, key))
  end
  local bak = path .. ".bak"
  local has_bak = fs.exists(bak)
  errors.raise("state", ("state file %s cannot be used: %s. fo never overwrites a state file it "
    .. "cannot read, so nothing was done. %s, or repair the file by hand; without a usable state, "
    .. "fo would create the stack's resources a second time."):format(path, why, has_bak
      and ("The state before the last mutating run is in %s: check it and restore it with "
        .. "`cp %s %s`"):format(bak, bak, path)
      or ("There is no backup (%s)"):format(bak)))
end

-- A damaged log: not a torn tail (that is dropped with a notice), but a record that cannot
-- be used with valid ones after it, or a record that passes its checksum and means nothing.
local function log_corrupt(path, lpath, line, why)
  errors.raise("state", ("state log %s cannot be used: line %d: %s. It holds the changes made "
    .. "since the snapshot %s was written, in order; fo never skips one, so nothing was done. "
    .. "Keeping only the lines before line %d (`head -n %d %s > %s.tmp && mv %s.tmp %s`) "
    .. "loses the changes after it: the next run then adopts what their creates made (tags, "
    .. "names, tokens), but check the stack by hand (the intact snapshot and log are best kept "
    .. "as a copy first)."):format(lpath, line, why, path, line, line - 1, lpath, lpath, lpath,
      lpath))
end

local RECORD_FIELDS = { type = "string", name = "string", id = "string", inputs = "table",
  outputs = "table", deps = "table" }
local LIFECYCLE_FIELDS = { protect = "boolean", retain = "boolean", timeouts = "table" }
local MEMBERS = { "resources", "deposed", "intents", "config", "outputs", "types" }

-- The document's members default to empty; raises a state error when one is not a table.
local function fill(path, doc)
  for _, k in ipairs(MEMBERS) do
    doc[k] = doc[k] or {}
    if type(doc[k]) ~= "table" then corrupt(path, k .. " must be a JSON object or array") end
  end
end

-- Checks the document's shape (format and version are checked by json.read_file);
-- raises a state error naming what is wrong.
local function check(path, doc)
  if doc.target ~= "sim" and doc.target ~= "aws" then corrupt(path, "target must be sim or aws") end
  fill(path, doc)
  for t, m in pairs(doc.types) do
    if type(m) ~= "string" then corrupt(path, ("types.%s must be a module name"):format(t)) end
  end
  local function check_record(where, rec)
    if type(rec) ~= "table" then corrupt(path, where .. " is not an object") end
    for f, t in pairs(RECORD_FIELDS) do
      if type(rec[f]) ~= t then corrupt(path, ("%s.%s must be a %s"):format(where, f, t)) end
    end
    -- lifecycle options (lifecycle.lua): absent, or of their type
    for f, t in pairs(LIFECYCLE_FIELDS) do
      if rec[f] ~= nil and type(rec[f]) ~= t then
        corrupt(path, ("%s.%s must be a %s"):format(where, f, t))
      end
    end
  end
  for urn, rec in pairs(doc.resources) do check_record("resources." .. urn, rec) end
  for i, rec in ipairs(doc.deposed) do check_record("deposed[" .. i .. "]", rec) end
end

-- The log ------------------------------------------------------------------------------

-- Applies one change of a log record to `doc`; returns nil, or why it is not a change.
local function apply_change(doc, c)
  if type(c) ~= "table" then return "a change is not a JSON object" end
  if c.put ~= nil then
    if type(c.put) ~= "string" or type(c.rec) ~= "table" then return "a bad put" end
    doc.resources[c.put] = c.rec
  elseif c.remove ~= nil then
    if type(c.remove) ~= "string" then return "a bad remove" end
    doc.resources[c.remove] = nil
  elseif c.intent ~= nil then
    if type(c.intent) ~= "string" or (c.value ~= nil and type(c.value) ~= "table") then
      return "a bad intent"
    end
    doc.intents[c.intent] = c.value
  elseif c.depose ~= nil then
    if type(c.depose) ~= "table" then return "a bad depose" end
    doc.deposed[#doc.deposed + 1] = c.depose
  elseif c.undepose ~= nil then
    local r = math.type(c.undepose) == "integer" and doc.deposed[c.undepose]
    if not r or r.urn ~= c.urn or r.id ~= c.id then
      return "an undepose of a replaced instance that is not there"
    end
    table.remove(doc.deposed, c.undepose)
  elseif c.set ~= nil then
    if type(c.set) ~= "string" or c.set == "format" or c.set == "version" then
      return "a bad set"
    end
    doc[c.set] = c.value
  elseif c.type ~= nil then
    if type(c.type) ~= "string" or type(c.module) ~= "string" then return "a bad type" end
    doc.types[c.type] = c.module
  else
    return "an unknown change"
  end
  return nil
end

-- The changes of a record line (the n-th record), or nil and why it is not a valid one.
local function parse_record(line, n)
  local seq, sum, len, start = line:match('^{"n":(%d+),"sum":"(%x+)","len":(%d+),"changes":()')
  if not seq then return nil, "not a log record" end
  seq, len = tonumber(seq), tonumber(len)
  local body = line:sub(start, start + len - 1)
  if #body ~= len or line:sub(start + len) ~= "}" then
    return nil, "its length does not match (a torn write)"
  end
  if sha256_hex(body):sub(1, #sum) ~= sum or #sum ~= 16 then
    return nil, "its checksum does not match"
  end
  if seq ~= n then return nil, ("record %d where %d was expected"):format(seq, n) end
  local ok, changes = pcall(json.decode, body)
  if not ok or type(changes) ~= "table" then return nil, "its changes are not a JSON array" end
  return changes
end

-- Reads the log `lpath` of the state file `path`, whose text is `snap_text`. Returns
-- { exists =, bytes =, header_bytes =, batches = {changes...}, torn = why or nil,
-- torn_at = line, stale = bool, clean = bool (a header for this snapshot and nothing
-- else: appending may go on) }. Raises a state error for damage that is not a torn tail.
local function read_log(path, lpath, snap_text)
  local out = { exists = false, bytes = 0, header_bytes = 0, batches = {} }
  local f = io.open(lpath, "rb")
  if not f then
    if fs.exists(lpath) then log_corrupt(path, lpath, 1, "it cannot be read") end
    return out
  end
  local text = f:read("a") or ""
  f:close()
  out.exists, out.bytes = true, #text
  local pos, lineno = 1, 0
  local function next_line()
    local e = text:find("\n", pos, true)
    if not e then return nil end
    local line = text:sub(pos, e - 1)
    pos, lineno = e + 1, lineno + 1
    return line
  end
  local header_line = next_line()
  if not header_line then
    -- the header is written atomically: an empty file is a log that never started
    if #text > 0 then out.torn, out.torn_at = "a header line with no end", 1 end
    return out
  end
  local ok, h = pcall(json.decode, header_line)
  if not ok or type(h) ~= "table" or h.format ~= M.LOG_FORMAT then
    log_corrupt(path, lpath, 1, "it is not an fo state log header")
  end
  if h.version ~= M.LOG_VERSION then
    log_corrupt(path, lpath, 1, ("log version %s; this fo reads version %d"):format(
      tostring(h.version), M.LOG_VERSION))
  end
  out.header_bytes = pos - 1
  if not snap_text or h.base ~= sha256_hex(snap_text) then
    -- a compaction wrote the snapshot and died before resetting the log: the snapshot
    -- holds what the log says (or the snapshot was replaced by hand)
    out.stale = true
    return out
  end
  local first_bad, why
  while true do
    local line = next_line()
    if not line then break end
    local changes, bad = parse_record(line, lineno - 1) -- record n is line n + 1
    if changes then
      if first_bad then
        log_corrupt(path, lpath, first_bad, why .. ", and valid records follow it (not a torn "
          .. "last write)")
      end
      out.batches[#out.batches + 1] = changes
    elseif not first_bad then
      first_bad, why = lineno, bad
    end
  end
  if pos <= #text and not first_bad then
    first_bad, why = lineno + 1, "an unfinished line"
  end
  if first_bad then out.torn, out.torn_at = why, first_bad end
  out.clean = not out.torn and #out.batches == 0
  return out
end

--- The document at `path` with its log replayed, the text of the state as it was read
--- (the snapshot's, or the replayed document encoded), and { log = (read_log's),
--- notices = {text...} }; nil (and that) when there is no state file. An unreadable or
--- invalid file raises a state error naming the file, the backup and what to do; a torn
--- last record of the log is dropped with a notice.
function M.read(path)
  local doc, text = json.read_file(path, { format = M.FORMAT, version = M.VERSION,
    what = "an fo state document" })
  local lpath = M.log_path(path)
  local info = { notices = {} }
  if not doc then
    if text then corrupt(path, text) end
    if fs.exists(lpath) then
      info.notices[1] = ("the state log %s has no state file %s next to it: ignored (it is "
        .. "replaced at the next write)"):format(lpath, path)
    end
    return nil, nil, info
  end
  fill(path, doc)
  local log = read_log(path, lpath, text)
  info.log = log
  if log.stale and log.bytes > log.header_bytes then
    info.notices[#info.notices + 1] = ("the state log %s predates the state file (a fold of the "
      .. "log into it was interrupted, after the state file was written): the state file holds "
      .. "its changes, so it was ignored"):format(lpath)
  end
  for i, changes in ipairs(log.batches) do
    for _, c in ipairs(changes) do
      local why = apply_change(doc, c)
      if why then log_corrupt(path, lpath, i + 1, why) end
    end
  end
  if log.torn then
    info.notices[#info.notices + 1] = ("the state log %s ends with a torn record (line %d: %s), "
      .. "dropped: the run that wrote it was killed before that write was durable, so nothing "
      .. "had relied on it (an interrupted create is found by its intent)"):format(lpath,
        log.torn_at, log.torn)
  end
  check(path, doc)
  if #log.batches > 0 then
    text = M.store(path, doc, nil, { readonly = true }):encode()
  end
  return doc, text, info
end

--- A store over `doc` (read from `path`, whose state text was `original`). opts.readonly:
--- commits write nothing (plan); opts.log: read_log's result for the state read (from
--- M.read's info), without which the first write folds everything into a new snapshot;
--- opts.keys: the stack's keyring (secret.lua), which seals the secret values it writes;
--- opts.medium: where the writes go (default: the file medium of `path`).
function M.store(path, doc, original, opts)
  opts = opts or {}
  local medium = opts.medium or M.file_medium(path)
  local modules = {}
  for t, m in pairs(doc.types or {}) do modules[t] = m end
  local log = opts.log or {}
  return setmetatable({ path = path, medium = medium, doc = doc,
    original = original, modules = modules, readonly = opts.readonly, keys = opts.keys,
    fragments = setmetatable({}, { __mode = "k" }), changes = 0, written = 0,
    writers = waitlist.new(), writes = 0, compactions = 0, pending = {}, logged_types = {},
    seq = 0, log_clean = log.clean, log_bytes = log.bytes or 0,
    header_bytes = log.header_bytes or 0, snapshot_bytes = original and #original or 0 }, Store)
end

-- Changes (records are replaced, never changed in place: the encoded text of each record
-- is cached by identity). Each is made in memory and queued for the log.

function Store:resource(urn)
  return self.doc.resources[urn]
end

function Store:_log(change)
  if self.readonly then return end
  self.pending[#self.pending + 1] = change
end

-- The first change of this log that involves type `t` records the module that registers it
-- (doc.types, for --destroy without the recipe).
function Store:_note_type(t)
  if self.readonly or self.logged_types[t] then return end
  self.logged_types[t] = true
  local m = types.module_of(t) or self.modules[t]
  if m then self:_log({ type = t, module = m }) end
end

-- What a fold needs of the records, kept as they change (a large state's folds would
-- otherwise sort every URN and visit every record each time): `urns`, the URNs sorted as of
-- the last fold, with those put since in `added` (`removed`: one went, sort again), and the
-- number of records of each type, `counts`; for the resources table `of`.
function Store:_index_change(urn, old, rec)
  local ix = self.index
  if not ix or ix.of ~= self.doc.resources then return end
  if old then ix.counts[old.type] = ix.counts[old.type] - 1 end
  if rec then ix.counts[rec.type] = (ix.counts[rec.type] or 0) + 1 end
  if not old then ix.added[#ix.added + 1] = urn end
  if not rec then ix.removed = true end
end

function Store:put(urn, rec)
  self:_index_change(urn, self.doc.resources[urn], rec)
  self.doc.resources[urn] = rec
  self:_note_type(rec.type)
  self:_log({ put = urn, rec = rec })
  self.changes = self.changes + 1
end

function Store:remove(urn)
  local old = self.doc.resources[urn]
  if old then self:_index_change(urn, old, nil) end
  self.doc.resources[urn] = nil
  self:_log({ remove = urn })
  self.changes = self.changes + 1
end

function Store:set_intent(urn, intent)
  self.doc.intents[urn] = intent
  if intent then self:_note_type(intent.type) end
  self:_log({ intent = urn, value = intent })
  self.changes = self.changes + 1
end

function Store:add_deposed(rec)
  table.insert(self.doc.deposed, rec)
  self:_note_type(rec.type)
  self:_log({ depose = rec })
  self.changes = self.changes + 1
end

function Store:remove_deposed(rec)
  for i, r in ipairs(self.doc.deposed) do
    if r == rec then
      table.remove(self.doc.deposed, i)
      self:_log({ undepose = i, urn = rec.urn, id = rec.id })
      self.changes = self.changes + 1
      return true
    end
  end
  return false
end

function Store:set(field, value)
  self.doc[field] = value
  self:_log({ set = field, value = value })
  self.changes = self.changes + 1
end

-- Encoding ----------------------------------------------------------------------------

local function indented(v, pad)
  return (json.encode(v):gsub("\n", "\n" .. pad))
end

-- A record's member of "resources" in the snapshot (`"urn": {...}`, indented), cached by
-- the record's identity: a fold copies the records that did not change since the last one.
-- Only that text is kept (a put's log line is made from the same encoding, once): one
-- string per record stays alive, not two.
local function member_text(urn, raw, key)
  return "\n    " .. (key or json.encode(urn)) .. ": " .. raw:gsub("\n", "\n    ")
end

function Store:_member(urn, rec)
  local text = self.fragments[rec]
  if text and rec.urn == urn then return text end
  text = member_text(urn, json.encode(seal(rec, self.keys)))
  if rec.urn == urn then self.fragments[rec] = text end
  return text
end

-- A change as one line of JSON, in pieces appended to `out` (a write joins its body once,
-- not each change's text first: per resource, a kilobyte less of strings made to be
-- thrown away).
function Store:_change_pieces(c, out)
  local n = #out
  if c.put then
    local raw, key = json.encode(seal(c.rec, self.keys)), json.encode(c.put)
    if c.rec.urn == c.put then self.fragments[c.rec] = member_text(c.put, raw, key) end
    out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = '{"put":', key, ',"rec":',
      flat(raw), "}"
    return
  end
  out[n + 1] = flat(json.encode(seal(c, self.keys)))
end

-- doc.types: for each type the state holds (resources, replaced instances, intents), the
-- module that registers it, so that --destroy can require it without the recipe. Kept in
-- step with the records at every snapshot; a type a recipe defines itself has no entry.
function Store:_types()
  local doc, out = self.doc, {}
  local function note(t)
    if out[t] == nil then out[t] = types.module_of(t) or self.modules[t] or false end
  end
  for t, n in pairs(self:_index().counts) do
    if n > 0 then note(t) end
  end
  for _, r in ipairs(doc.deposed) do note(r.type) end
  for _, i in pairs(doc.intents) do note(i.type) end
  for t, m in pairs(out) do
    if not m then out[t] = nil end
  end
  return out
end

-- The fold's index of the records (_index_change), brought up to date: made from the
-- records the first time, and when the resources table is another.
function Store:_index()
  local v = self.doc.resources
  local ix = self.index
  if not ix or ix.of ~= v then
    ix = { of = v, counts = {}, added = {}, urns = {} }
    for urn, rec in pairs(v) do
      ix.urns[#ix.urns + 1] = urn
      ix.counts[rec.type] = (ix.counts[rec.type] or 0) + 1
    end
    table.sort(ix.urns)
    self.index = ix
    return ix
  end
  if ix.removed then
    local urns = {}
    for urn in pairs(v) do urns[#urns + 1] = urn end
    table.sort(urns)
    ix.urns, ix.added, ix.removed = urns, {}, false
  elseif #ix.added > 0 then
    -- the URNs put since the last fold, sorted, merged into the sorted ones
    local old, added, urns, i, j, n = ix.urns, ix.added, {}, 1, 1, 0
    table.sort(added)
    while true do
      local a, b = old[i], added[j]
      if a == nil and b == nil then break end
      n = n + 1
      if b == nil or (a ~= nil and a < b) then urns[n], i = a, i + 1
      else urns[n], j = b, j + 1 end
    end
    ix.urns, ix.added = urns, {}
  end
  return ix
end

--- The document as JSON text (keys sorted, one value per line, so it diffs well).
function Store:encode()
  local doc = self.doc
  doc.types = self:_types()
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = { "{" }
  for i, k in ipairs(keys) do
    local v = doc[k]
    local sep = i < #keys and "," or ""
    if k == "resources" and next(v) then
      -- the URNs in order (kept sorted from fold to fold) and the cached members, joined
      -- once with the rest (a large state is not copied into an intermediate string)
      local urns = self:_index().urns
      out[#out + 1] = '\n  "resources": {'
      for j, urn in ipairs(urns) do
        if j > 1 then out[#out + 1] = "," end
        out[#out + 1] = self:_member(urn, v[urn])
      end
      out[#out + 1] = "\n  }" .. sep
    else
      out[#out + 1] = ("\n  %s: %s%s"):format(json.encode(k), indented(seal(v, self.keys), "  "),
        sep)
    end
  end
  out[#out + 1] = "\n}\n"
  return table.concat(out)
end

-- Writing -----------------------------------------------------------------------------

-- Where a store's writes go: a medium. The file medium (below) is the local state
-- directory; the S3 backend has its own (backend/s3_state.lua). A medium has
-- compact(store) (write the whole document, start a new log; returns the snapshot's and
-- the new log's bytes), append(store, body) (one group commit; returns the log's bytes),
-- backup(store) (keep the state as it was read, once per mutating run), usable(store)
-- (false when the log is gone behind fo's back), and `where` (for messages).
local FileMedium = {}
FileMedium.__index = FileMedium

--- The file medium of the state file `path` (its log next to it).
function M.file_medium(path)
  return setmetatable({ path = path, log_path = M.log_path(path),
    where = ("files %s and %s"):format(path, M.log_path(path)) }, FileMedium)
end

-- Folds the log into the snapshot: the whole document is written atomically, then the log
-- is replaced by a header naming the new snapshot (a crash in between leaves a log whose
-- base is not the snapshot: ignored, the snapshot holds its changes).
function FileMedium:compact(store)
  local text = store:encode()
  fs.write_atomic(self.path, text, MODE)
  local header = flat(json.encode({ format = M.LOG_FORMAT, version = M.LOG_VERSION,
    base = sha256_hex(text) })) .. "\n"
  fs.write_atomic(self.log_path, header, MODE)
  return #text, #header
end

function FileMedium:append(store, body)
  local line = ('{"n":%d,"sum":"%s","len":%d,"changes":%s}\n'):format(store.seq,
    sha256_hex(body):sub(1, 16), #body, body)
  return fs.append(self.log_path, line, MODE)
end

-- The state as it was read goes to .bak.
function FileMedium:backup(store)
  if store.original then fs.write_atomic(self.path .. ".bak", store.original, MODE) end
end

-- a log removed behind fo's back: appending would start a log with no header
function FileMedium:usable()
  return fs.exists(self.log_path)
end

function Store:_compact()
  local snapshot_bytes, header_bytes = self.medium:compact(self)
  self.snapshot_bytes, self.header_bytes, self.log_bytes = snapshot_bytes, header_bytes,
    header_bytes
  self.pending, self.logged_types, self.seq, self.log_clean = {}, {}, 0, true
  self.writes, self.compactions = self.writes + 1, self.compactions + 1
end

-- The first write of a run saves the state as it was read (the file medium: to .bak).
function Store:_backup()
  if self.backed_up then return end
  self.medium:backup(self)
  self.backed_up = true
end

-- Makes the pending changes durable: one record appended to the log (a line, fsync'd).
-- The first write of a run whose log is not clean (records of an interrupted run, a torn
-- tail, a stale or missing log or snapshot) folds everything into a new snapshot instead,
-- so appends always follow a header for the snapshot next to them.
function Store:_write()
  self:_backup()
  if not self.log_clean or not self.medium:usable(self) then return self:_compact() end
  if #self.pending == 0 then return end
  local parts = { "[" }
  for i, c in ipairs(self.pending) do
    if i > 1 then parts[#parts + 1] = "," end
    self:_change_pieces(c, parts)
  end
  parts[#parts + 1] = "]"
  self.pending = {}
  local body = table.concat(parts)
  self.seq = self.seq + 1
  self.log_bytes = self.medium:append(self, body)
  self.writes = self.writes + 1
  if self.log_bytes - self.header_bytes > math.max(M.LOG_MIN_BYTES, M.LOG_FACTOR * self.snapshot_bytes) then
    self:_compact()
  end
end

--- Makes every change so far durable before returning (from a task). Changes of tasks
--- that finish in the same turn of the loop share one write (group commit). Raises a
--- state error when the file cannot be written.
function Store:commit()
  if self.readonly then return end
  local want = self.changes
  if self.failed then errors.raise("state", self.failed) end
  if self.written >= want then return end
  if self.writing then
    while self.written < want and not self.failed do self.writers:wait() end
    if self.failed then errors.raise("state", self.failed) end
    return
  end
  self.writing = true
  -- the first write of a store counts one more version of the state (`serial`): a backup
  -- pushed back (fo-run state push) must not be older than what it replaces
  if not self.serial_counted then
    self.serial_counted = true
    self:set("serial", (math.tointeger(self.doc.serial) or 0) + 1)
  end
  require("fo.core").sleep(0) -- let operations ending in this turn join the write
  local ok, err = pcall(function()
    while self.written < self.changes do
      local upto = self.changes
      self:_write()
      self.written = upto
    end
  end)
  self.writing = false
  if not ok then
    self.failed = ("cannot write the stack's state in %s: %s (what was written "
      .. "before is still there; what happened since is not recorded)"):format(self.medium.where,
      require("fo.task").describe(err))
  end
  self.writers:wake_all()
  if self.failed then errors.raise("state", self.failed) end
end

--- The end of a run: the log is folded into the snapshot when it holds records (or was
--- not clean when read), so that between runs the state file alone is the state. Raises
--- a state error when that write fails (the log still holds every change).
function Store:finish()
  if self.readonly or self.failed then return end
  self:commit()
  if not self.log_clean or self.log_bytes > self.header_bytes then
    self:_backup()
    local ok, err = pcall(self._compact, self)
    if not ok then
      errors.raise("state", ("cannot fold the state log into the snapshot in %s: %s (the log holds "
        .. "every change; the next run folds it)"):format(self.medium.where,
        require("fo.task").describe(err)))
    end
  end
end

-- For the other media's readers (backend/s3_state.lua): the record format and the checks.
M.parse_record, M.apply_change, M.check, M.sha256_hex, M.flat = parse_record, apply_change,
  check, sha256_hex, flat

return M
