-- The wire protocols a simulated service answers besides its model's own. A model may list
-- several (metadata.protocols, from botocore's): AWS moved CloudWatch from the query
-- protocol to Smithy RPC v2 CBOR and JSON 1.0 (both awsQueryCompatible: errors carry the
-- query error code in the x-amzn-query-error header) and accepts all three; current SDKs
-- speak CBOR or JSON, fo's client and older SDKs query. fo's clients speak
-- metadata.protocol; a request in another listed protocol is read and answered with a copy
-- of the model whose metadata.protocol names that one (same operations and shapes).
local M = {}

local cache = setmetatable({}, { __mode = "k" })

local function variant(model, protocol)
  local per_model = cache[model]
  if not per_model then per_model = {}; cache[model] = per_model end
  if per_model[protocol] then return per_model[protocol] end
  local meta = {}
  for k, v in pairs(model.metadata) do meta[k] = v end
  meta.protocol = protocol
  local m = { name = model.name, metadata = meta, operations = model.operations,
    shapes = model.shapes }
  per_model[protocol] = setmetatable(m, { __index = model })
  return per_model[protocol]
end

local function lists(model, protocol)
  for _, p in ipairs(model.metadata.protocols or {}) do
    if p == protocol then return true end
  end
  return false
end

--- The model to read and answer the request with (req: lower-case headers). When the
--- model lists other protocols: a request with the header smithy-protocol: rpc-v2-cbor is
--- CBOR, one with X-Amz-Target JSON (when the model's own protocol is not json); anything
--- else is the model's own protocol. Returns the model and whether it is another protocol.
function M.model_for(model, req)
  if not model or model.metadata.protocol == nil then return model, false end
  local headers = req.headers or {}
  local own = model.metadata.protocol
  if (headers["smithy-protocol"] or ""):lower() == "rpc-v2-cbor"
      and own ~= "smithy-rpc-v2-cbor" and lists(model, "smithy-rpc-v2-cbor") then
    return variant(model, "smithy-rpc-v2-cbor"), true
  elseif headers["x-amz-target"] and own ~= "json" and lists(model, "json") then
    return variant(model, "json"), true
  end
  return model, false
end

return M
