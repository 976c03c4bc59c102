-- Refresh: read every recorded resource from the cloud (the type's read) and record what
-- is there — changed properties and outputs, resources deleted behind fo's back. The
-- differences are the drift that the next apply repairs. Resources read as gone are not
-- forgotten here: the caller shows them and forgets them (M.forget) only once the user
-- agreed, since a wrong account, region or endpoint reads a whole stack as gone.
local schedule = require "fo.engine.schedule"
local ops = require "fo.engine.ops"
local diff = require "fo.engine.diff"

local M = {}

-- A read that fails with a retryable AWS error (throttling, 5xx, timeout) after the
-- client's own retries is read again, up to READ_TRIES times with READ_DELAY s, 2× that,
-- ... between; any other error fails the read at once. One resource's failed read does
-- not stop the others': the refresh reports every resource it could not read.
M.READ_TRIES = 3
M.READ_DELAY = 1

-- Reads in flight at once, whatever --parallel is: --parallel bounds the writes (what the
-- account sees change at once); reads change nothing, and each client's rate limiter
-- (fo.aws.ratelimit: a bucket per service and region, Route 53's documented rate from the
-- start, the others' after their first throttling answer) keeps them to what the service
-- allows. A larger --parallel raises it too.
M.READ_PARALLEL = 100

-- The default the type's schema gives property k (nil when it has none).
local function schema_default(tdef, k)
  local prop = tdef.schema and tdef.schema.properties and tdef.schema.properties[k]
  return prop and prop.default
end

local function read(tdef, ctx, rec)
  local tries = 0
  while true do
    tries = tries + 1
    local r = table.pack(pcall(tdef.read, ctx, rec.id, rec.inputs, rec.outputs))
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    if tries >= M.READ_TRIES or not (require("fo.aws.error").is(err) and err.retryable) then
      error(err, 0)
    end
    ctx:sleep(M.READ_DELAY * 2 ^ (tries - 1))
  end
end

--- Reads every resource and deposed instance; updates the store (not committed).
--- Returns the drift: { {urn=, kind = "changed"|"deleted", changes=} }, and the scheduler
--- result (failed reads).
function M.run(run)
  local store = run.store
  local nodes, drift = {}, {}
  local urns = {}
  -- a targeted run (--only, only.lua) reads its selection alone
  local wanted = run.only and run.only.reads
  for urn in pairs(store.doc.resources) do
    if not wanted or wanted[urn] then urns[#urns + 1] = urn end
  end
  table.sort(urns)
  local recs = {}
  for _, urn in ipairs(urns) do recs[#recs + 1] = { rec = store.doc.resources[urn] } end
  for _, rec in ipairs(store.doc.deposed) do
    if not wanted or wanted[rec.urn] then recs[#recs + 1] = { rec = rec, deposed = true } end
  end
  -- this refresh's batches of reads (fo.aws.resources.common.batched), shared by its reads
  local batches = {}
  -- one function for every node (the scheduler's default run), not a closure per node;
  -- a node's `entry` is its record ({ rec =, deposed = })
  local function read_one(node)
    local r = node.entry
    local rec = r.rec
    local tdef = ops.type_of(rec)
    local c = ops.ctx(run, rec)
    c.batches = batches -- reads of one record each go out together (common.batched)
    local outputs, observed = read(tdef, c, rec)
    if outputs == nil then
      -- gone: a replaced instance, or one an interrupted run of fo was deleting, is
      -- simply done; anything else is drift that the user agrees to forget
      if r.deposed then store:remove_deposed(rec)
      elseif rec.deleting then store:remove(rec.urn)
      else
        drift[#drift + 1] = { urn = rec.urn, kind = "deleted", id = rec.id, rec = rec }
      end
      return
    end
    local inputs, recorded = rec.inputs, rec.inputs
    if observed then
      inputs, recorded = {}, {}
      for k, v in pairs(rec.inputs) do inputs[k], recorded[k] = v, v end
      for k, v in pairs(observed) do
        inputs[k] = v
        -- A property the record lacks (written by an fo whose type did not have it yet)
        -- that reads as the type's default is not a change made outside fo.
        if recorded[k] == nil then recorded[k] = schema_default(tdef, k) end
      end
    end
    local changes = diff.changes(recorded, inputs)
    if #changes > 0 and not r.deposed then
      drift[#drift + 1] = { urn = rec.urn, kind = "changed", changes = changes }
    end
    if not diff.equal(rec.inputs, inputs) or not diff.equal(rec.outputs, outputs) then
      local new = ops.with(rec, { inputs = inputs, outputs = outputs })
      if r.deposed then
        store:remove_deposed(rec)
        store:add_deposed(new)
      else
        store:put(rec.urn, new)
      end
    end
  end
  for i, r in ipairs(recs) do
    local rec = r.rec
    -- (sized for the fields the scheduler adds: started, finished, ok)
    nodes[i] = { key = i, step = { urn = rec.urn, type = rec.type, name = rec.name },
      action = "read", quiet = true, entry = r, started = nil, finished = nil, ok = nil }
  end
  local result = schedule.run(nodes,
    { parallel = math.max(run.parallel or 0, M.READ_PARALLEL), run = read_one })
  table.sort(drift, function(a, b) return a.urn < b.urn end)
  return drift, result
end

--- The drift entries of resources read as gone.
function M.gone(drift)
  local out = {}
  for _, d in ipairs(drift) do
    if d.kind == "deleted" then out[#out + 1] = d end
  end
  return out
end

--- True when `gone` (M.gone's) is most of the stack: at least three resources and more than
--- half of those the state holds, data types (reads, not resources) left out. That is more
--- likely a wrong account, region or endpoint than deletions by hand. `read`: the URNs the
--- refresh read when not all (--only), the whole it is measured against.
function M.most_of_stack(store, gone, read)
  local types = require "fo.engine.types"
  local function counts(rec)
    local t = types.get(rec.type)
    return not (t and t.data)
  end
  local total, n = 0, 0
  for urn, rec in pairs(store.doc.resources) do
    if counts(rec) and (not read or read[urn]) then total = total + 1 end
  end
  for _, d in ipairs(gone) do
    if counts(d.rec) then n = n + 1 end
  end
  return n >= 3 and n * 2 > total, n, total
end

--- Forgets the resources of `gone` (M.gone's) that the state still holds as read.
function M.forget(run, gone)
  for _, d in ipairs(gone) do
    if run.store:resource(d.urn) == d.rec then run.store:remove(d.urn) end
  end
end

return M
