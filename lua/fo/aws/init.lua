-- fo.aws (also the global `aws`): the AWS core — the call function, credentials, regions,
-- endpoints, retries and the structured error — and one constructor per service module
-- (aws.ec2{region = ...}). The service names are registered from C (fo.aws.services);
-- the core's modules load on first use, so that every fo-run can have `aws` for free.
local M = {}

local lazy = {
  call = "fo.aws.call",
  credentials = "fo.aws.credentials",
  region = "fo.aws.region",
  endpoints = "fo.aws.endpoints",
  retry = "fo.aws.retry",
  Error = "fo.aws.error",
  WaiterError = false, -- fo.aws.waiter's Error
  client = "fo.aws.client",
  jmespath = "fo.aws.jmespath",
}

--- The names of the service modules, in the order C registers them.
M.services = {}
for i, name in ipairs(require "fo.aws.services") do
  M.services[i] = name
  M[name] = function(opts) return require("fo.aws.client").new(name, opts) end
end

-- The names loaded on first use, for the REPL's completion (lua/fo/repl/complete.lua).
local names = {}
for k in pairs(lazy) do names[#names + 1] = k end

return setmetatable(M, {
  __complete = names,
  __index = function(t, k)
    local name = lazy[k]
    if name == nil then return nil end
    local m = name and require(name) or require("fo.aws.waiter").Error
    rawset(t, k, m)
    return m
  end,
})
