-- Refresh: read every recorded resource from the cloud (the type's read) and record what
-- is there — changed properties and outputs, resources deleted behind fo's back. The
-- differences are the drift that the next apply repairs.
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
  for urn in pairs(store.doc.resources) do urns[#urns + 1] = urn end
  table.sort(urns)
  local recs = {}
  for _, urn in ipairs(urns) do recs[#recs + 1] = { rec = store.doc.resources[urn] } end
  for _, rec in ipairs(store.doc.deposed) do recs[#recs + 1] = { rec = rec, deposed = true } end
  for i, r in ipairs(recs) do
    local rec = r.rec
    nodes[i] = { key = i, deps = {}, step = { urn = rec.urn, type = rec.type, name = rec.name },
      action = "read", quiet = true,
      run = function()
        local tdef = ops.type_of(rec)
        local outputs, observed = read(tdef, ops.ctx(run, rec), rec)
        if outputs == nil then
          if r.deposed then store:remove_deposed(rec)
          else
            store:remove(rec.urn)
            drift[#drift + 1] = { urn = rec.urn, kind = "deleted", id = rec.id }
          end
          return
        end
        local inputs = rec.inputs
        if observed then
          inputs = {}
          for k, v in pairs(rec.inputs) do inputs[k] = v end
          for k, v in pairs(observed) do inputs[k] = v end
        end
        local changes = diff.changes(rec.inputs, inputs)
        if #changes > 0 and not r.deposed then
          drift[#drift + 1] = { urn = rec.urn, kind = "changed", changes = changes }
        end
        if #changes > 0 or not diff.equal(rec.outputs, outputs) then
          local new = ops.with(rec, { inputs = inputs, outputs = outputs })
          if r.deposed then
            store:remove_deposed(rec)
            store:add_deposed(new)
          else
            store:put(rec.urn, new)
          end
        end
      end }
  end
  local result = schedule.run(nodes, { parallel = run.parallel })
  table.sort(drift, function(a, b) return a.urn < b.urn end)
  return drift, result
end

return M
