-- The stack's state file (.fo/<stack>.state.json, mode 0600): what the stack owns — per
-- resource its type, region, physical id, inputs, outputs, dependencies — plus the intent
-- journal and replaced instances awaiting deletion. Written atomically after every
-- completed operation; the previous version is kept as .bak once per mutating run.
local json = require "fo.json"
local errors = require "fo.engine.errors"
local types = require "fo.engine.types"
local waitlist = require "fo.engine.waitlist"

local M = {}
M.FORMAT, M.VERSION = "fo-state", 1

local Store = {}
Store.__index = Store

--- An empty state document.
function M.empty(stack, target)
  return { format = M.FORMAT, version = M.VERSION, stack = stack, target = target,
    config = {}, outputs = {}, resources = {}, deposed = {}, intents = {}, types = {} }
end

local function corrupt(path, why)
  local bak = path .. ".bak"
  local has_bak = require("fo.fs").exists(bak)
  errors.raise("state", ("state file %s cannot be used: %s. fo never overwrites a state file it "
    .. "cannot read, so nothing was done. %s, or repair the file by hand; without a usable state, "
    .. "fo would create the stack's resources a second time."):format(path, why, has_bak
      and ("The state before the last mutating run is in %s: check it and restore it with "
        .. "`cp %s %s`"):format(bak, bak, path)
      or ("There is no backup (%s)"):format(bak)))
end

local RECORD_FIELDS = { type = "string", name = "string", id = "string", inputs = "table",
  outputs = "table", deps = "table" }

-- Checks the document's shape (format and version are checked by json.read_file);
-- raises a state error naming what is wrong.
local function check(path, doc)
  if doc.target ~= "sim" and doc.target ~= "aws" then corrupt(path, "target must be sim or aws") end
  for _, k in ipairs({ "resources", "deposed", "intents", "config", "outputs", "types" }) do
    doc[k] = doc[k] or {}
    if type(doc[k]) ~= "table" then corrupt(path, k .. " must be a JSON object or array") end
  end
  for t, m in pairs(doc.types) do
    if type(m) ~= "string" then corrupt(path, ("types.%s must be a module name"):format(t)) end
  end
  local function check_record(where, rec)
    if type(rec) ~= "table" then corrupt(path, where .. " is not an object") end
    for f, t in pairs(RECORD_FIELDS) do
      if type(rec[f]) ~= t then corrupt(path, ("%s.%s must be a %s"):format(where, f, t)) end
    end
  end
  for urn, rec in pairs(doc.resources) do check_record("resources." .. urn, rec) end
  for i, rec in ipairs(doc.deposed) do check_record("deposed[" .. i .. "]", rec) end
end

--- The document at `path` and its text, or nil when there is no file. An unreadable or
--- invalid file raises a state error naming the file, the backup and what to do.
function M.read(path)
  local doc, text = json.read_file(path, { format = M.FORMAT, version = M.VERSION,
    what = "an fo state document" })
  if not doc then
    if text then corrupt(path, text) end
    return nil
  end
  check(path, doc)
  return doc, text
end

--- A store over `doc` (read from `path`, whose text was `original`). opts.readonly: commits
--- write nothing (plan).
function M.store(path, doc, original, opts)
  local modules = {}
  for t, m in pairs(doc.types or {}) do modules[t] = m end
  return setmetatable({ path = path, doc = doc, original = original, modules = modules,
    readonly = opts and opts.readonly, fragments = setmetatable({}, { __mode = "k" }),
    changes = 0, written = 0, writers = waitlist.new(), writes = 0 }, Store)
end

-- Changes (records are replaced, never changed in place: the encoded text of each record
-- is cached by identity, so a write costs what changed plus a concatenation).

function Store:resource(urn)
  return self.doc.resources[urn]
end

-- The position of `urn` in the sorted array `order` (or where it would go), and whether
-- it is there.
local function find(order, urn)
  local lo, hi = 1, #order
  while lo <= hi do
    local mid = (lo + hi) // 2
    local m = order[mid]
    if m == urn then return mid, true end
    if m < urn then lo = mid + 1 else hi = mid - 1 end
  end
  return lo, false
end

function Store:put(urn, rec)
  if self.order and self.doc.resources[urn] == nil then
    table.insert(self.order, (find(self.order, urn)), urn)
  end
  self.doc.resources[urn] = rec
  self.changes = self.changes + 1
end

function Store:remove(urn)
  if self.order and self.doc.resources[urn] ~= nil then
    local i, found = find(self.order, urn)
    if found then table.remove(self.order, i) end
  end
  self.doc.resources[urn] = nil
  self.changes = self.changes + 1
end

function Store:set_intent(urn, intent)
  self.doc.intents[urn] = intent
  self.changes = self.changes + 1
end

function Store:add_deposed(rec)
  table.insert(self.doc.deposed, rec)
  self.changes = self.changes + 1
end

function Store:remove_deposed(rec)
  for i, r in ipairs(self.doc.deposed) do
    if r == rec then
      table.remove(self.doc.deposed, i)
      self.changes = self.changes + 1
      return true
    end
  end
  return false
end

function Store:set(field, value)
  self.doc[field] = value
  if field == "resources" then self.order = nil end
  self.changes = self.changes + 1
end

-- Encoding ----------------------------------------------------------------------------

local function indented(v, pad)
  return (json.encode(v):gsub("\n", "\n" .. pad))
end

-- A record's member of "resources" (key and value), cached by the record's identity.
function Store:_member(urn, rec)
  local f = self.fragments[rec]
  if not f or f.urn ~= urn then
    f = { urn = urn, text = "\n    " .. json.encode(urn) .. ": " .. indented(rec, "    ") }
    self.fragments[rec] = f
  end
  return f.text
end

-- The resources' URNs, sorted: kept up to date by put and remove once built.
function Store:_order()
  if not self.order then
    local urns = {}
    for urn in pairs(self.doc.resources) do urns[#urns + 1] = urn end
    table.sort(urns)
    self.order = urns
  end
  return self.order
end

-- doc.types: for each type the state holds (resources, replaced instances, intents), the
-- module that registers it, so that --destroy can require it without the recipe. Kept in
-- step with the records at every write; a type a recipe defines itself has no entry.
function Store:_types()
  local doc, out = self.doc, {}
  local function note(t)
    if out[t] == nil then out[t] = types.module_of(t) or self.modules[t] or false end
  end
  for _, r in pairs(doc.resources) do note(r.type) end
  for _, r in ipairs(doc.deposed) do note(r.type) end
  for _, i in pairs(doc.intents) do note(i.type) end
  for t, m in pairs(out) do
    if not m then out[t] = nil end
  end
  return out
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
      -- O(resources) per write, but only a concatenation of cached members
      local members = {}
      for j, urn in ipairs(self:_order()) do members[j] = self:_member(urn, v[urn]) end
      out[#out + 1] = '\n  "resources": {' .. table.concat(members, ",") .. "\n  }" .. sep
    else
      out[#out + 1] = ("\n  %s: %s%s"):format(json.encode(k), indented(v, "  "), sep)
    end
  end
  out[#out + 1] = "\n}\n"
  return table.concat(out)
end

-- Writing -----------------------------------------------------------------------------

function Store:_write()
  local fs = require "fo.fs"
  if not self.backed_up then
    if self.original then fs.write_atomic(self.path .. ".bak", self.original, tonumber("600", 8)) end
    self.backed_up = true
  end
  local text = self:encode()
  if text ~= self.last_text then
    fs.write_atomic(self.path, text, tonumber("600", 8))
    self.last_text = text
    self.writes = self.writes + 1
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
    self.failed = ("cannot write the state file %s: %s (the last written state is still there; "
      .. "what happened since is not recorded)"):format(self.path, tostring(err))
  end
  self.writers:wake_all()
  if self.failed then errors.raise("state", self.failed) end
end

return M
