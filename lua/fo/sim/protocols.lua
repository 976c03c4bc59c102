-- The wire protocols a simulated service answers besides its model's own. AWS moved
-- CloudWatch from the query protocol to Smithy RPC v2 CBOR and JSON 1.0 (both marked
-- awsQueryCompatible: errors carry the query error code in the x-amzn-query-error header),
-- and accepts all three: current SDKs speak CBOR, fo's client and older SDKs query. fo's
-- models are the query ones; a request in another protocol is read and answered with a copy
-- of the model whose metadata names that protocol (same operations and shapes).
local M = {}

-- service → what its other protocols need beyond the model (botocore's metadata).
M.ALTERNATIVES = {
  cloudwatch = { targetPrefix = "GraniteServiceVersion20100801", jsonVersion = "1.0" },
}

local cache = setmetatable({}, { __mode = "k" })

local function variant(model, alt, protocol)
  local per_model = cache[model]
  if not per_model then per_model = {}; cache[model] = per_model end
  if per_model[protocol] then return per_model[protocol] end
  local meta = {}
  for k, v in pairs(model.metadata) do meta[k] = v end
  meta.protocol = protocol
  meta.targetPrefix = alt.targetPrefix
  meta.jsonVersion = alt.jsonVersion
  meta.awsQueryCompatible = {}
  local m = setmetatable({ metadata = meta }, { __index = model })
  -- the codecs read fields with raw access: copy the ones they use
  m.name, m.operations, m.shapes = model.name, model.operations, model.shapes
  per_model[protocol] = m
  return m
end

--- The model to read and answer the request with (req: lower-case headers): for a service
--- with alternatives, a request with the header smithy-protocol: rpc-v2-cbor is CBOR, one
--- with X-Amz-Target is JSON; anything else is the model's own protocol. Returns the model
--- and whether it is an alternative.
function M.model_for(service, model, req)
  local alt = M.ALTERNATIVES[service]
  if not alt or not model then return model, false end
  local headers = req.headers or {}
  if (headers["smithy-protocol"] or ""):lower() == "rpc-v2-cbor" then
    return variant(model, alt, "smithy-rpc-v2-cbor"), true
  elseif headers["x-amz-target"] then
    return variant(model, alt, "json"), true
  end
  return model, false
end

return M
