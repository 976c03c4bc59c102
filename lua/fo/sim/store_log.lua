-- The simulator's change log: an append-only file next to the state file
-- (.fo/<stack>.sim.json → .fo/<stack>.sim.log, mode 0600) that makes each mutating call
-- durable with one small append and one fsync, instead of rewriting the whole state. It
-- uses the engine's state log format (fo.engine.state): a header line naming the snapshot
-- it extends, {"base": sha256 of the snapshot, "format": "fo-sim-log", "version": 1}, then
-- one self-checking line per saved call:
--   {"n":<1, 2, ...>,"sum":"<sha256 of BODY, 16 hex>","len":<bytes of BODY>,"changes":BODY}
-- with BODY a JSON array of changes to a service's table (DB = [account, region, service]):
--   {"db":DB,"value":{...}}                      the whole table
--   {"db":DB,"field":F,"value":V}                its member F (no value: removed)
--   {"db":DB,"field":F,"entry":K,"value":V}      entry K of its table member F (a resource
--                                                by its id; no value: removed)
-- and {"set":"id_draws","value":n}.
-- After the records come zeros written ahead (M.RESERVE), which a reader drops: the end of
-- the log is its last byte that is not NUL.
-- A log whose base is not the snapshot's hash is stale (a fold died between writing the
-- snapshot and resetting the log): the snapshot already holds its changes.
local json = require "fo.json"
local fs = require "fo.fs"
local state = require "fo.engine.state"

local M = {}
M.FORMAT, M.VERSION = "fo-sim-log", 1
M.MODE = tonumber("600", 8)
--- The zeros kept written past the log's records (bytes): an append overwrites them, so
--- its flush commits no new size (no journal commit to wait for: fo.fs.append_kept).
M.RESERVE = 256 * 1024

--- The log next to the state file at `path` (x.sim.json → x.sim.log, F → F.log).
function M.path(path)
  return (path:gsub("%.json$", "")) .. ".log"
end

--- The header line of a log extending the snapshot whose text is `snapshot`.
function M.header(snapshot)
  return state.flat(json.encode({ format = M.FORMAT, version = M.VERSION,
    base = state.sha256_hex(snapshot) })) .. "\n"
end

--- The record line of the n-th saved call whose changes are the JSON array `body`.
function M.record(n, body)
  return ('{"n":%d,"sum":"%s","len":%d,"changes":%s}\n'):format(n,
    state.sha256_hex(body):sub(1, 16), #body, body)
end

--- Appends `line` to the log at `lpath` and flushes it (fdatasync) before returning where
--- the log's records end. The log stays open between appends, and is kept M.RESERVE zero
--- bytes longer than its records (fo.fs.append_kept); the flush runs on the calling thread:
--- the loop waits for it, which costs less than handing it to a writer thread and back
--- (docs/simulator.md, "State file").
function M.append(lpath, line)
  return fs.append_kept(lpath, line, M.MODE, M.RESERVE)
end

local ZEROS = ("\0"):rep(4096)

-- The length of `text` without the zeros at its end (a log's reserve).
local function without_zero_tail(text)
  local e = #text
  while e >= #ZEROS and text:sub(e - #ZEROS + 1, e) == ZEROS do e = e - #ZEROS end
  while e > 0 and text:byte(e) == 0 do e = e - 1 end
  return e
end

-- Applies one change to the state document `data`; returns nil, or why it is not one.
local function apply(data, c)
  if type(c) ~= "table" then return "a change is not a JSON object" end
  if c.db ~= nil then
    local key = c.db
    if type(key) ~= "table" or #key ~= 3 or type(key[1]) ~= "string"
      or type(key[2]) ~= "string" or type(key[3]) ~= "string" then
      return "a bad db change"
    end
    local a = data.accounts[key[1]]
    if not a then a = {}; data.accounts[key[1]] = a end
    local r = a[key[2]]
    if not r then r = {}; a[key[2]] = r end
    if c.field == nil then
      if type(c.value) ~= "table" then return "a bad db change" end
      r[key[3]] = c.value
      return nil
    end
    local d = r[key[3]]
    if not d then d = {}; r[key[3]] = d end
    local ft, et = type(c.field), type(c.entry)
    if (ft ~= "string" and math.type(c.field) ~= "integer")
      or (c.entry ~= nil and et ~= "string" and math.type(c.entry) ~= "integer") then
      return "a bad db change"
    end
    if c.entry == nil then
      d[c.field] = c.value
    else
      if type(d[c.field]) ~= "table" then d[c.field] = {} end
      d[c.field][c.entry] = c.value
    end
  elseif c.set == "id_draws" then
    if math.type(c.value) ~= "integer" then return "a bad id_draws" end
    data.id_draws = c.value
  else
    return "an unknown change"
  end
end

--- Replays the log at `lpath` onto `data` (the snapshot whose text is `snap_text`).
--- Returns { bytes =, header_bytes =, records = n, clean = bool (a header for this snapshot and only valid
--- records: appending may go on), torn = why or nil, stale = bool }; a torn last record (a
--- write a crash cut short, never answered) is dropped. Damage that is not a torn tail
--- raises `fail(line, why)`'s error.
function M.replay(lpath, data, snap_text, fail)
  local out = { bytes = 0, records = 0, clean = false }
  local f = io.open(lpath, "rb")
  if not f then
    if fs.exists(lpath) then fail(1, "it cannot be read") end
    return out
  end
  local text = f:read("a") or ""
  f:close()
  -- the reserve written ahead of the records is not data; zeros inside a line (a write a
  -- crash cut short, over the reserve) make it a damaged record like any other
  text = text:sub(1, without_zero_tail(text))
  out.bytes = #text
  local lines, pos = {}, 1
  while true do
    local e = text:find("\n", pos, true)
    if not e then break end
    lines[#lines + 1] = text:sub(pos, e - 1)
    pos = e + 1
  end
  local unfinished = pos <= #text
  if #lines == 0 then
    -- the header is written atomically: an empty file is a log that never started
    out.torn = unfinished and "a header line with no end" or nil
    return out
  end
  local ok, h = pcall(json.decode, lines[1])
  if not ok or type(h) ~= "table" or h.format ~= M.FORMAT then
    fail(1, "it is not an fo simulator log header")
  end
  if h.version ~= M.VERSION then
    fail(1, ("log version %s; this fo reads version %d"):format(tostring(h.version), M.VERSION))
  end
  out.header_bytes = #lines[1] + 1
  if h.base ~= state.sha256_hex(snap_text) then
    out.stale = true
    return out
  end
  local first_bad, why
  for i = 2, #lines do
    local changes, bad = state.parse_record(lines[i], i - 1)
    if changes then
      if first_bad then
        fail(first_bad, why .. ", and valid records follow it (not a torn last write)")
      end
      for _, c in ipairs(changes) do
        local cwhy = apply(data, c)
        if cwhy then fail(i, cwhy) end
      end
      out.records = out.records + 1
    elseif not first_bad then
      first_bad, why = i, bad
    end
  end
  if unfinished and not first_bad then first_bad, why = #lines + 1, "an unfinished line" end
  out.torn = first_bad and why or nil
  out.clean = not first_bad
  return out
end

return M
