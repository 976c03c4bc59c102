-- The alias-target checks ChangeResourceRecordSets makes for CREATE and UPSERT, in AWS's
-- words ("Tried to create an alias that targets <name>, type A in zone <id>, but the alias
-- target name does not lie within the target zone" / "... but that target was not
-- found"): an alias to a record set of the same zone needs that record set (same name
-- and type) as the batch leaves it; an alias to a load balancer needs the load balancer
-- and its own canonical hosted zone id (each ELB region and type has its own). Targets
-- the simulator does not model (CloudFront, S3 website endpoints, API Gateway, ...) are
-- not checked.
local names = require "fo.sim.route53.names"
local elb_zones = require "fo.sim.elb_zones"

local M = {}

local function lb_exists(ctx, dns, lb_type)
  local lb = require("fo.sim.failover").find_lb(ctx.sim, ctx.account, dns)
  return lb ~= nil and (lb.desc.Type or "application") == lb_type
end

--- The problem with rr's AliasTarget in `zone` whose record sets are `work` (the batch so
--- far), or nil. rr is normalized (names fully qualified, ids bare).
function M.problem(ctx, zone, rr, work)
  local at = rr.AliasTarget
  local target, tz = at.DNSName, at.HostedZoneId
  local function say(why)
    return ("Tried to create an alias that targets %s, type %s in zone %s, but %s")
      :format(target, rr.Type, tz, why)
  end
  local outside = "the alias target name does not lie within the target zone"
  local missing = "that target was not found"
  if tz == zone.Id then
    if not names.in_zone(target, zone.Name) then return say(outside) end
    for _, other in pairs(work) do
      if other.Name == target and other.Type == rr.Type then return nil end
    end
    return say(missing)
  end
  local lb_type, region = elb_zones.of_name(target)
  if lb_type then
    if elb_zones.canonical(lb_type, region) ~= tz then return say(outside) end
    if not lb_exists(ctx, target, lb_type) then return say(missing) end
    return nil
  end
  if elb_zones.is_elb_zone(tz) then return say(outside) end
  return nil
end

return M
