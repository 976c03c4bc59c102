-- The `ctx` a service handler gets: the call (service, operation, region, account,
-- request id, caller), its service's state, and the helpers handlers share (ids, ARNs,
-- errors, time, AZs, outages, eventual consistency). docs/simulator.md has the table.
local SimError = require "fo.sim.error"
local regions = require "fo.sim.regions"

local M = {}
local Ctx = {}
Ctx.__index = Ctx

-- ARN service namespaces where they differ from fo's module names.
local ARN_SERVICE = { elbv2 = "elasticloadbalancing" }

--- Where a service keeps its state for a call in `region`: "global" for IAM and Route 53.
function M.store_region(service, region)
  return regions.GLOBAL_SERVICES[service] and regions.GLOBAL or region
end

--- A ctx for one call: c = {sim=, service=, operation=, region=, account=, request_id=,
--- caller=}.
function M.new(c)
  c.db = c.sim.store:db(c.account, M.store_region(c.service, c.region), c.service)
  return setmetatable(c, Ctx)
end

--- Another service's state (region defaults to this call's; IAM and Route 53 are global).
function Ctx:db_of(service, region)
  return self.sim.store:db(self.account, M.store_region(service, region or self.region), service)
end

--- Virtual time, seconds since the epoch.
function Ctx:now()
  return self.sim.clock:now()
end

--- Raises the AWS error `code` (status default 400; fields: modelled error members).
function Ctx:fail(code, message, status, fields)
  SimError.raise(code, message, status, fields)
end

--- A new id: prefix .. "-" .. `digits` lower-case hex digits (default 17: vpc-0a1b...).
function Ctx:id(prefix, digits)
  return self.sim.store:id(prefix, digits)
end

--- `n` characters of `alphabet` (default upper-case letters and digits) from the same
--- seeded stream as ids: Route 53 zone ids ("Z" .. ctx:chars(21)), IAM unique ids, ...
function Ctx:chars(n, alphabet)
  return self.sim.store:chars(n, alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
end

--- arn:aws:<service>:<region>:<account>:<resource>; opts.service/region/account override
--- (opts.region = "" for none). IAM and Route 53 ARNs have an empty region.
function Ctx:arn(resource, opts)
  opts = opts or {}
  local service = opts.service or ARN_SERVICE[self.service] or self.service
  local region = opts.region
  if region == nil then
    region = regions.GLOBAL_SERVICES[opts.service or self.service] and "" or self.region
  end
  return ("arn:aws:%s:%s:%s:%s"):format(service, region, opts.account or self.account, resource)
end

--- Marks `res` (the resource's table as stored, or its id string) as just created: for
--- the consistency window (knob consistency_ms) ctx:fresh(res) is true.
function Ctx:created(res)
  self.sim:_mark_created(res)
  return res
end

--- True while `res` is inside its eventual-consistency window: Describe/Get answer
--- NotFound for it then, as AWS does right after a create.
function Ctx:fresh(res)
  return self.sim:_is_fresh(res)
end

--- The AZs of `region` (default this call's), fresh tables in DescribeAvailabilityZones'
--- shape: {ZoneName=, ZoneId=, RegionName=, State="available", ...}.
function Ctx:azs(region)
  return regions.azs(region or self.region) or {}
end

--- True when `region` (default this call's) is in outage.
function Ctx:outage(region)
  return self.sim.knobs:in_outage(region or self.region)
end

--- When `region`'s last outage started and ended (virtual times, nil when unknown).
function Ctx:outage_times(region)
  return self.sim.knobs:outage_times_of(region or self.region)
end

return M
