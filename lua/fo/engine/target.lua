-- Where a stack's resources live: `sim` (the embedded simulator, its state in
-- .fo/<stack>.sim.json) or `aws` (real endpoints). Gives resource types their clients.
local M = {}
local Target = {}
Target.__index = Target

M.KINDS = { sim = true, aws = true }

--- opts: kind ("sim"|"aws"), dir, stack, sim (a simulator to use instead of the stack's
--- file, for tests), on_retry (given to every client: told of each retry of a call).
function M.open(opts)
  local t = setmetatable({ kind = opts.kind, clients = {}, on_retry = opts.on_retry }, Target)
  if opts.kind == "sim" then
    t.sim = opts.sim or require("fo.sim").new{ file = ("%s/%s.sim.json"):format(opts.dir, opts.stack) }
  end
  return t
end

--- A client of `service` in `region`, shared by every resource of the run.
function Target:client(service, region)
  local key = service .. "\0" .. tostring(region)
  local c = self.clients[key]
  if c then return c end
  if self.kind == "sim" then
    c = self.sim:client(service, { region = region, on_retry = self.on_retry })
  else
    local ctor = require("fo.aws")[service]
    if not ctor then error(("no AWS client for service '%s'"):format(tostring(service)), 2) end
    c = ctor{ region = region, on_retry = self.on_retry }
  end
  self.clients[key] = c
  return c
end

--- Calls counted by the simulator ({total=, mutating=}), nil for AWS.
function Target:counts()
  if not self.sim then return nil end
  local c = self.sim:counts()
  return { total = c.total, mutating = c.mutating }
end

return M
