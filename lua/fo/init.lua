-- The `fo` table that every script sees: tasks, sleep, clocks, HTTP, and (loaded on first
-- use) the AWS core. Keep start-up cheap: submodules load lazily.
local core = require "fo.core"
local task = require "fo.task"

local fo = {
  version = "0.1.0",
  spawn = task.spawn,
  all = task.all,
  sleep = core.sleep,
  now = core.now,
  time = core.time,
}

local lazy = {
  http = "fo.http",
  httpd = "fo.httpd",
  crypto = "fo.crypto",
  sigv4 = "fo.sigv4",
  process = "fo.process",
  xml = "fo.xml",
  log = "fo.log",
  aws = "fo.aws",
  fs = "fo.fs",
  signal = "fo.signal",
  sim = "fo.sim",
}

-- The recipe API (fo.resource, fo.output, fo.config, fo.format, fo.apply, fo.type,
-- fo.fail, fo.warn, fo.unknown) is lua/fo/engine/api.lua, loaded on first use.
local engine_api = { resource = true, output = true, config = true, format = true,
  apply = true, type = true, fail = true, warn = true, unknown = true, moved = true,
  component = true }

-- The names loaded on first use, for the REPL's completion (lua/fo/repl/complete.lua).
local names = {}
for k in pairs(lazy) do names[#names + 1] = k end
for k in pairs(engine_api) do names[#names + 1] = k end

return setmetatable(fo, {
  __complete = names,
  __index = function(t, k)
    if engine_api[k] then
      local v = require("fo.engine.api")[k]
      rawset(t, k, v)
      return v
    end
    local name = lazy[k]
    if not name then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})
