-- The intent journal: before each create, the state records what is about to be created
-- (URN, type, idempotency token, inputs). An intent still there when a run starts means a
-- run died mid-create; the type's adopt() finds what it made — what carries the intent's
-- token (tag fo:token, or the API's own token) — so it is taken over instead of created
-- twice. A resource merely tagged with the stack and name is another create's: not adopted.
local ops = require "fo.engine.ops"
local types = require "fo.engine.types"

local M = {}

--- Settles every intent left in the state: adopted (the resource is recorded) or
--- dropped (nothing was made). Returns a list of {urn=, id= or nil, note=}.
function M.settle(run)
  local store = run.store
  local urns = {}
  for urn in pairs(store.doc.intents) do urns[#urns + 1] = urn end
  table.sort(urns)
  local out = {}
  for _, urn in ipairs(urns) do
    local intent = store.doc.intents[urn]
    local tdef = types.need(intent.type, nil, (" (an interrupted create of %s is in the state; "
      .. "require the module that defines the type)"):format(urn))
    local rec = ops.record{ urn = urn, type = intent.type, name = intent.name,
      region = intent.region, inputs = intent.inputs, deps = intent.deps or {},
      generation = intent.generation, token = intent.token,
      -- (the lifecycle options hold for what an interrupted create made)
      protect = intent.protect, retain = intent.retain, timeouts = intent.timeouts }
    local known = ops.known_ids(store, urn)
    local cur = store:resource(urn)
    local item = { urn = urn }
    if tdef.data then
      -- a data type makes nothing: there is nothing to take over
    elseif not tdef.adopt then
      item.note = "the type cannot adopt: if the interrupted create made something, it is not "
        .. "tracked (check by hand)"
    else
      local id, outputs = tdef.adopt(ops.ctx(run, rec, { known_ids = known }), intent.inputs)
      if id then
        if cur then
          -- a record already there is another instance: keep it for deletion
          store:add_deposed(cur)
        end
        store:put(urn, ops.with(rec, { id = id, outputs = outputs or {} }))
        item.id = id
      end
    end
    store:set_intent(urn, nil)
    out[#out + 1] = item
  end
  if #urns > 0 then store:commit() end
  return out
end

return M
