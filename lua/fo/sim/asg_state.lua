-- The Auto Scaling state over time: instances that finish terminating, groups whose
-- deletion completes. Transitions are computed lazily from stored due times, so the state
-- file needs no scheduler. Shared by the Auto Scaling handlers, ELBv2 (target health) and
-- anyone reading the db (see its shape at the top of services/autoscaling.lua).
local M = {}

--- How long (virtual seconds) the simulated transitions take; sim.timing (a table set on
--- the sim) overrides each. AWS takes minutes; the sim keeps them short but non-zero so
--- clients see the intermediate states and their waiters poll.
M.DEFAULTS = {
  instance_terminate = 2,     -- Terminating → Terminated
  group_delete = 3,           -- Status "Delete in progress" → gone
  profile_propagation = 5,    -- a new IAM instance profile is not yet usable by EC2
  role_propagation = 0,       -- a new IAM role is not yet assumable by VPC flow logs (0: at once)
  terminated_visible = 3600,  -- EC2 still lists a terminated instance this long
  refresh_batch = 5,          -- an instance refresh's batch at most (its InstanceWarmup on AWS)
}

--- The duration `key` for this ctx's sim.
function M.timing(ctx, key)
  local t = ctx.sim and rawget(ctx.sim, "timing")
  if type(t) == "table" and type(t[key]) == "number" then return t[key] end
  return M.DEFAULTS[key]
end

-- Instances due to finish terminating become Terminated; Terminated ones older than
-- `visible` are forgotten.
local function settle_instances(list, now, visible)
  for k = #list, 1, -1 do
    local inst = list[k]
    if inst.LifecycleState == "Terminating" and inst.terminate_at and now >= inst.terminate_at then
      inst.LifecycleState = "Terminated"
      inst.terminated_at = inst.terminate_at
    end
    if inst.LifecycleState == "Terminated" and now >= (inst.terminated_at or now) + visible then
      table.remove(list, k)
    end
  end
end

--- Applies the transitions due at `now` to the autoscaling db: terminating instances
--- become Terminated, groups whose deletion is due disappear with their policies (their
--- terminated instances stay listed under `retired` for EC2, as AWS keeps showing
--- terminated instances for a while). Idempotent.
function M.settle(db, now, visible)
  visible = visible or M.DEFAULTS.terminated_visible
  db.retired = db.retired or {}
  for name, g in pairs(db.groups or {}) do
    settle_instances(g.Instances or {}, now, visible)
    if g.delete_at and now >= g.delete_at then
      for _, inst in ipairs(g.Instances or {}) do
        if inst.LifecycleState ~= "Terminated" then
          inst.LifecycleState = "Terminated"
          inst.terminated_at = g.delete_at
        end
      end
      db.retired[name .. "#" .. tostring(g.seq)] = { AutoScalingGroupName = name,
        VPCZoneIdentifier = g.VPCZoneIdentifier, Tags = g.Tags, Instances = g.Instances or {} }
      db.groups[name] = nil
      for arn, p in pairs(db.policies or {}) do
        if p.AutoScalingGroupName == name then db.policies[arn] = nil end
      end
      for _, a in ipairs(db.activities or {}) do
        if a.AutoScalingGroupName == name then a.group_deleted = true end
      end
    end
  end
  for key, r in pairs(db.retired) do
    settle_instances(r.Instances, now, visible)
    if #r.Instances == 0 then db.retired[key] = nil end
  end
end

--- The instances of group `name` that are still members (not Terminated), oldest first.
function M.members(db, name)
  local g = (db.groups or {})[name]
  local out = {}
  for _, inst in ipairs(g and g.Instances or {}) do
    if inst.LifecycleState ~= "Terminated" then out[#out + 1] = inst end
  end
  return out
end

--- The member instance `id` of any group, and its group, or nil.
function M.instance(db, id)
  for _, g in pairs(db.groups or {}) do
    for _, inst in ipairs(g.Instances or {}) do
      if inst.InstanceId == id and inst.LifecycleState ~= "Terminated" then return inst, g end
    end
  end
  return nil
end

return M
