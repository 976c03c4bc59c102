-- The compact AWS API models (lua/fo/aws/models/<service>.json, made by
-- tools/gen_models.py): found next to the Lua modules, decoded once per service and
-- cached for the life of the Lua state.
local cjson = require "cjson"

local M = {}
local cache = {}

-- The models live beside this module, so look them up on the same path as Lua modules
-- (build tree, install prefix or FO_LUA_DIR alike).
local function model_path(service)
  local json_path = package.path:gsub("%?%.lua", "?.json"):gsub("%?/init%.json", "?.json")
  return package.searchpath("fo.aws.models." .. service, json_path)
end

--- The decoded model of `service` ({name, metadata, operations, shapes, waiters,
--- paginators}); raises a clear message when there is none.
function M.load(service)
  local model = cache[service]
  if model then return model end
  if type(service) ~= "string" or not service:match("^[%w]+$") then
    error(("no AWS model for service %s"):format(tostring(service)), 2)
  end
  local path, tried = model_path(service)
  if not path then
    error(("no AWS model for service '%s' (looked for%s)"):format(service, tried), 2)
  end
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local ok, decoded = pcall(cjson.decode, text)
  if not ok or type(decoded) ~= "table" or type(decoded.operations) ~= "table" then
    error(("the AWS model %s is not valid: %s"):format(path, ok and "no operations" or decoded), 2)
  end
  decoded.waiters = decoded.waiters or {}
  decoded.paginators = decoded.paginators or {}
  cache[service] = decoded
  return decoded
end

return M
