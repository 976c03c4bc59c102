-- For adoption tests of resource types: turn recorded resources back into the create
-- intents a run that died right after creating them would have left (the resource exists,
-- the state does not know it), so the next run must adopt them through the type's adopt.
local json = require "fo.json"

local M = {}

--- Rewrites the state of `stack` (default "dev") in `dir`: each resource whose URN is in
--- `urns` (all when nil) leaves `resources` and becomes an intent with its inputs,
--- generation, dependencies and the token it was created with (what adoption looks for).
--- Returns the URNs turned into intents, sorted.
function M.forget_as_intents(dir, urns, stack)
  local path = ("%s/%s.state.json"):format(dir, stack or "dev")
  local f = assert(io.open(path, "rb"))
  local doc = json.decode(f:read("a"))
  f:close()
  local wanted
  if urns then
    wanted = {}
    for _, u in ipairs(urns) do wanted[u] = true end
  end
  local done = {}
  for urn, rec in pairs(doc.resources) do
    if not wanted or wanted[urn] then
      doc.intents[urn] = { op = "create", urn = urn, type = rec.type, name = rec.name,
        region = rec.region, token = assert(rec.token, urn .. ": no token in the record"),
        generation = rec.generation, inputs = rec.inputs,
        deps = rec.deps }
      doc.resources[urn] = nil
      done[#done + 1] = urn
    end
  end
  table.sort(done)
  fo.fs.write_atomic(path, json.encode(doc))
  return done
end

return M
