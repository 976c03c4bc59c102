-- An object store in memory with S3's conditional writes, for the S3 backend's unit tests
-- (lua/fo/engine/backend/s3_state.lua describes the interface): a PUT with If-None-Match: *
-- fails (412) when the key exists, one with If-Match: ETAG when the object's ETag is not
-- ETAG (or there is none); each PUT gives a new ETag. Not a test (no test_ prefix).
local M = {}
local Store = {}
Store.__index = Store

--- A new empty store; `where` names it in messages (default "s3://mem/p").
function M.new(where)
  return setmetatable({ where = where or "s3://mem/p", objects = {}, etags = 0, puts = 0,
    hooks = {} }, Store)
end

function Store:get(key)
  local o = self.objects[key]
  if not o then return nil end
  return o.body, o.etag
end

function Store:put(key, body, cond)
  assert(type(body) == "string", "body must be a string")
  if self.hooks.before_put then self.hooks.before_put(key, body, cond) end
  local o = self.objects[key]
  cond = cond or {}
  if cond.if_none_match and o then return nil, "precondition" end
  if cond.if_match and (not o or o.etag ~= cond.if_match) then return nil, "precondition" end
  self.etags, self.puts = self.etags + 1, self.puts + 1
  local etag = ('"%08x"'):format(self.etags)
  self.objects[key] = { body = body, etag = etag }
  return etag
end

function Store:delete(key, cond)
  local o = self.objects[key]
  if cond and cond.if_match and (not o or o.etag ~= cond.if_match) then
    return nil, "precondition"
  end
  self.objects[key] = nil
  return true
end

function Store:delete_many(keys)
  for _, k in ipairs(keys) do self.objects[k] = nil end
  return true
end

function Store:list(prefix)
  local out = {}
  for k in pairs(self.objects) do
    if k:sub(1, #prefix) == prefix then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

return M
