-- A stack's state in an object store (the S3 backend): under <prefix>/<stack>/,
--   state.json                 the snapshot (state.lua's document, plus log_seq: the number of
--                              the last change-log commit folded into it)
--   log/000000000042.json      one object per group commit, numbered from 1 for the life of
--                              the stack (never reused), each one state.lua's record line
--                              ({"n":42,"sum":..,"len":..,"changes":[...]})
-- A commit n is written with If-None-Match: *, so of two writers exactly one writes commit
-- n: the other gets 412 and stops ("lost update prevented"). A fold writes the snapshot
-- with If-Match: the ETag it read (If-None-Match: * for a new stack), then removes the
-- folded commits. Reading replays the commits after log_seq, which must follow each other.
--
-- The object store (`objects`) is this interface (backend/s3_objects.lua over fo's S3
-- client; tests/lua/support/memory_objects.lua in memory):
--   objects:get(key) -> body, etag | nil (no such key)
--   objects:put(key, body, {if_none_match = true} | {if_match = etag} | nil)
--     -> etag | nil, "precondition" (412)
--   objects:delete(key, {if_match = etag} | nil) -> true | nil, "precondition"
--   objects:delete_many(keys) -> true (unconditional deletes, batched)
--   objects:list(prefix) -> the keys under prefix, sorted
--   objects.where -> "s3://bucket/prefix" (for messages)
-- Other failures raise.
local errors = require "fo.engine.errors"
local json = require "fo.json"
local state = require "fo.engine.state"

local M = {}

local function log_key(base, n)
  return ("%slog/%012d.json"):format(base, n)
end

--- The keys of stack `stack` under the store: {base=, state=, lock=, config=, log=}.
function M.keys(stack)
  local base = stack .. "/"
  return { base = base, state = base .. "state.json", lock = base .. "lock.json",
    config = base .. "config.json", log = base .. "log/" }
end

local Medium = {}
Medium.__index = Medium

--- The medium of stack `stack` in `objects`. info: what M.read found ({etag=, seq=,
--- last=, folded={keys}}); lease: checked before every write (nil: no lease, tests).
function M.medium(objects, stack, info, lease)
  local keys = M.keys(stack)
  info = info or {}
  return setmetatable({ objects = objects, keys = keys, etag = info.etag, seq = info.seq or 0,
    last = info.last or 0, folded = info.folded or {}, lease = lease,
    where = ("%s/%s"):format(objects.where, keys.state) }, Medium)
end

function Medium:_lost(what, key)
  errors.raise("lock", ("lost update prevented: %s %s/%s was written by another run since this "
    .. "run read the state (held by %s); this run stopped writing the state. What it did since "
    .. "its last state write is not recorded: the next run adopts it or finds it by its "
    .. "intent"):format(what, self.objects.where, key, self.lease and self.lease:holder_text()
    or "another writer"))
end

function Medium:_check()
  if self.lease then self.lease:check() end
end

function Medium:append(store, body)
  self:_check()
  local n = self.last + 1
  local line = ('{"n":%d,"sum":"%s","len":%d,"changes":%s}\n'):format(n,
    state.sha256_hex(body):sub(1, 16), #body, body)
  local key = log_key(self.keys.base, n)
  local etag = self.objects:put(key, line, { if_none_match = true })
  if not etag then self:_lost("commit " .. n, key) end
  self.last = n
  self.folded[#self.folded + 1] = key
  return store.log_bytes + #line
end

function Medium:compact(store)
  self:_check()
  -- a commit after the last this run knows (another writer's) would be replayed onto a
  -- snapshot that does not hold it: refused, as a commit of the same number would be
  local after = self.objects:list(self.keys.log)
  local newest = after[#after] and tonumber(after[#after]:match("(%d+)%.json$"))
  if newest and newest > self.last then
    self:_lost("commit " .. newest, after[#after])
  end
  local doc = store.doc
  doc.log_seq = self.last
  local ok, text = pcall(store.encode, store)
  doc.log_seq = nil
  if not ok then error(text, 0) end
  local etag = self.objects:put(self.keys.state, text,
    self.etag and { if_match = self.etag } or { if_none_match = true })
  if not etag then self:_lost("the snapshot", self.keys.state) end
  self.etag, self.seq = etag, self.last
  -- the folded commits are removed (the snapshot holds them; a leftover is ignored)
  if #self.folded > 0 then pcall(self.objects.delete_many, self.objects, self.folded) end
  self.folded = {}
  return #text, 0
end

-- The bucket's versioning keeps every snapshot: no .bak object.
function Medium:backup() end

function Medium:usable() return true end

local function corrupt(where, why)
  errors.raise("state", ("state %s cannot be used: %s. fo never skips a commit of the change "
    .. "log or overwrites a state it cannot read, so nothing was done; the bucket keeps the "
    .. "earlier versions of every object (docs/state-backends.md)"):format(where, why))
end

--- The stack's state as the engine reads it: doc (snapshot + commits replayed), its text,
--- and { log = {clean=, bytes=, header_bytes=0}, notices = {}, medium = {etag=, seq=,
--- last=, folded=} }; nil, nil, info when there is no snapshot.
function M.read(objects, stack)
  local keys = M.keys(stack)
  local where = ("%s/%s"):format(objects.where, keys.state)
  local info = { notices = {}, log = { clean = true, bytes = 0, header_bytes = 0 },
    medium = { seq = 0, last = 0, folded = {}, stale = {} } }
  local text, etag = objects:get(keys.state)
  local logs = objects:list(keys.log)
  local doc, seq
  if text then
    local ok, v = pcall(json.decode, text)
    if not ok or type(v) ~= "table" then corrupt(where, "it is not JSON") end
    if v.format ~= state.FORMAT or v.version ~= state.VERSION then
      corrupt(where, ("it is not an fo state document (format %s version %s)"):format(
        tostring(v.format), tostring(v.version)))
    end
    doc, seq = v, v.log_seq or 0
    if math.type(seq) ~= "integer" or seq < 0 then corrupt(where, "log_seq is not a count") end
    doc.log_seq = nil
  else
    seq = 0
  end
  info.medium.etag, info.medium.seq = etag, seq
  local expect, nlog = seq + 1, 0
  local batches = {}
  for _, key in ipairs(logs) do
    local n = tonumber(key:match("(%d+)%.json$"))
    if not n then corrupt(where, ("%s is not a commit of the change log"):format(key)) end
    if n <= seq then
      -- folded by a run that died before it removed them
      info.medium.stale[#info.medium.stale + 1] = key
    else
      if n ~= expect then
        corrupt(where, ("the change log jumps from commit %d to %d (%s/%s is missing)")
          :format(expect - 1, n, objects.where, log_key(keys.base, expect)))
      end
      local line = objects:get(key)
      if not line then corrupt(where, ("commit %s vanished while it was read"):format(key)) end
      local changes, why = state.parse_record(line:gsub("\n$", ""), n)
      if not changes then corrupt(where, ("commit %s/%s: %s"):format(objects.where, key, why)) end
      batches[#batches + 1] = changes
      info.medium.folded[#info.medium.folded + 1] = key
      info.log.bytes = info.log.bytes + #line
      expect, nlog = n + 1, nlog + 1
    end
  end
  info.medium.last = expect - 1
  if not doc then
    info.log.clean = false -- the first write makes the snapshot
    if nlog > 0 then
      info.notices[1] = ("the change log of stack %s has no snapshot %s: ignored"):format(stack,
        where)
      info.medium.last, info.medium.folded = expect - 1, {}
    end
    return nil, nil, info
  end
  for i, changes in ipairs(batches) do
    for _, c in ipairs(changes) do
      local why = state.apply_change(doc, c)
      if why then corrupt(where, ("commit %d: %s"):format(seq + i, why)) end
    end
  end
  state.check(where, doc)
  info.log.clean = #batches == 0
  if #batches > 0 then
    text = state.store(where, doc, nil, { readonly = true, medium = {} }):encode()
  end
  return doc, text, info
end

--- A store over `doc` that writes to `objects` (info: M.read's info.medium).
function M.store(objects, stack, doc, original, info, opts)
  opts = opts or {}
  local medium = M.medium(objects, stack, info, opts.lease)
  if not opts.readonly and info and #info.stale > 0 then
    -- under the lease: the commits a dead run folded and left are removed
    medium:_check()
    pcall(objects.delete_many, objects, info.stale)
    info.stale = {}
  end
  return state.store(medium.where, doc, original, { readonly = opts.readonly, log = opts.log,
    keys = opts.keys, medium = medium })
end

return M
