-- Auto Scaling resource types: aws:autoscaling:group and aws:autoscaling:policy (target
-- tracking).
--
-- AWS facts they keep (Auto Scaling API reference and user guide):
-- - a group's launch template may name an instance profile created seconds ago, which
--   Auto Scaling refuses for a while ("Invalid IAM Instance Profile name"): create and
--   update retry that as the "instance_profile" situation of consistency.lua; and the
--   launch template itself may be one EC2 created a moment ago, which Auto Scaling does not
--   see yet ("The specified launch template ... does not exist"): retried as
--   "launch_template_not_visible" (the template's create does not wait until it is listed);
-- - group names are unique per region (replaced delete-first, adopted by name + fo tags,
--   fo:token included; a group of that name that is not this create's is a conflict);
--   tags go in the create call, fo's own not propagated to instances, the user's with
--   propagate_at_launch;
-- - target groups attach and detach in place (AttachLoadBalancerTargetGroups /
--   DetachLoadBalancerTargetGroups: UpdateAutoScalingGroup has no such member); group
--   metrics at granularity 1Minute (Enable/DisableMetricsCollection);
-- - desired_capacity is the capacity a create (or a change of the declared value) sets:
--   scaling policies move it afterwards, so it is not read back as drift;
-- - delete: ForceDelete (or, with force_delete = false, scale to 0 and wait for the
--   instances first), then wait until the group is gone — its instances terminated — so
--   that the launch template, target group and subnets can go after it;
-- - instances keep the launch template version they were launched from: a group whose
--   template or version changes starts an instance refresh (StartInstanceRefresh, Rolling,
--   SkipMatching: only instances not on the new version are replaced; MinHealthyPercentage
--   = refresh_min_healthy_percentage) and the update waits until it is Successful, so that
--   every instance runs the declared version (a refresh already in progress, e.g. of an
--   interrupted run, is waited for first);
-- - PutScalingPolicy is an upsert: a policy is updated in place by putting it again (same
--   ARN, same alarms); the alarms Auto Scaling makes for it are outputs.
local common = require "fo.aws.resources.common"

local M = {}

--- How long (seconds) the waits of this type may take.
M.WAIT = { refresh = 7200 } -- an instance refresh: batches × warmup

local function asg(ctx) return ctx:client("autoscaling") end

-- Group metrics of EnableMetricsCollection (AWS documents these; no list = all of them).
local GROUP_METRICS = { "GroupMinSize", "GroupMaxSize", "GroupDesiredCapacity",
  "GroupInServiceInstances", "GroupPendingInstances", "GroupStandbyInstances",
  "GroupTerminatingInstances", "GroupTotalInstances", "GroupInServiceCapacity",
  "GroupPendingCapacity", "GroupStandbyCapacity", "GroupTerminatingCapacity",
  "GroupTotalCapacity" }

-- AWS's answer for a group it does not know (ValidationError, not a NotFound code).
local function is_not_found(err)
  return common.is(err, "ValidationError") and tostring(err.message or ""):find("not found", 1, true) ~= nil
end

--- The group `name` as DescribeAutoScalingGroups answers it, or nil (also while its
--- deletion is in progress when `live` is true).
local function find(ctx, name, live)
  local function one(n)
    return asg(ctx):DescribeAutoScalingGroups{ AutoScalingGroupNames = { n } }.AutoScalingGroups[1]
  end
  -- (in a refresh, one call names the groups read at once: up to 50 in one answer page)
  local g = common.batched(ctx, "autoscaling.DescribeAutoScalingGroups", name, function(names)
    return common.index_by(asg(ctx):DescribeAutoScalingGroups{ AutoScalingGroupNames = names,
      MaxRecords = 50 }.AutoScalingGroups, "AutoScalingGroupName")
  end, one, 50)
  if g and live and g.Status == "Delete in progress" then return nil end
  return g
end
M.find = find

local function outputs_of(g)
  return { name = g.AutoScalingGroupName, arn = g.AutoScalingGroupARN }
end

local function split(s)
  local out = {}
  for id in tostring(s or ""):gmatch("[^,%s]+") do out[#out + 1] = id end
  return out
end

-- launch_template = { id = | name =, version = } → the API's LaunchTemplateSpecification.
local function lt_spec(lt)
  return { LaunchTemplateId = lt.id, LaunchTemplateName = lt.name,
    Version = lt.version ~= nil and tostring(lt.version) or "$Default" }
end

local function lt_check(v)
  if (v.id == nil) == (v.name == nil) then return false, "launch_template needs id or name (one of them)" end
  for k in pairs(v) do
    if k ~= "id" and k ~= "name" and k ~= "version" then
      return false, ("launch_template has no key %s (id, name, version)"):format(tostring(k))
    end
  end
  return true
end

local function lt_equal(a, b)
  return common.deep_equal(lt_spec(a), lt_spec(b))
end

-- The observed template in the declared form (id or name, as declared).
local function lt_observed(spec, declared)
  declared = declared or {}
  local out = { version = spec.Version }
  if declared.name ~= nil then out.name = spec.LaunchTemplateName else out.id = spec.LaunchTemplateId end
  if declared.version == nil and spec.Version == "$Default" then out.version = nil end
  return out
end

-- metrics_collection = {} (none) or { granularity = "1Minute", metrics = {...} } (no
-- metrics or an empty list: all of them).
local function mc_on(mc) return mc ~= nil and next(mc) ~= nil end

local function mc_metrics(mc)
  local m = mc.metrics or {}
  if #m == 0 then return GROUP_METRICS, true end
  return m, false
end

local function mc_equal(a, b)
  if not mc_on(a) or not mc_on(b) then return mc_on(a) == mc_on(b) end
  if (a.granularity or "1Minute") ~= (b.granularity or "1Minute") then return false end
  local ma, all_a = mc_metrics(a)
  local mb, all_b = mc_metrics(b)
  if all_a or all_b then
    -- "all" matches any list holding every group metric
    local other = all_a and mb or ma
    local have = {}
    for _, m in ipairs(other) do have[m] = true end
    for _, m in ipairs(GROUP_METRICS) do if not have[m] then return false end end
    return true
  end
  return common.same_set(ma, mb)
end

local function mc_check(v)
  for k in pairs(v) do
    if k ~= "granularity" and k ~= "metrics" then
      return false, ("metrics_collection has no key %s (granularity, metrics)"):format(tostring(k))
    end
  end
  if v.granularity ~= nil and v.granularity ~= "1Minute" then
    return false, "metrics_collection.granularity: Auto Scaling publishes group metrics at 1Minute only"
  end
  return true
end

local function mc_observed(enabled)
  if not enabled or #enabled == 0 then return {} end
  local out = { granularity = enabled[1].Granularity or "1Minute", metrics = {} }
  for _, m in ipairs(enabled) do out.metrics[#out.metrics + 1] = m.Metric end
  table.sort(out.metrics)
  return out
end

local function set_metrics(ctx, name, old, new)
  if mc_equal(old, new) then return end
  local c = asg(ctx)
  if not mc_on(new) then
    c:DisableMetricsCollection{ AutoScalingGroupName = name }
    return
  end
  local want, all = mc_metrics(new)
  c:EnableMetricsCollection{ AutoScalingGroupName = name, Granularity = new.granularity or "1Minute",
    Metrics = not all and want or nil }
  if mc_on(old) and not all then
    local keep, drop = {}, {}
    for _, m in ipairs(want) do keep[m] = true end
    for _, m in ipairs((mc_metrics(old))) do
      if not keep[m] then drop[#drop + 1] = m end
    end
    if #drop > 0 then c:DisableMetricsCollection{ AutoScalingGroupName = name, Metrics = drop } end
  end
end

-- The group's tags in the API's form: fo's own (not propagated: instances are not fo's
-- resources) and the user's (propagated to instances when propagate_at_launch).
local function tag_entries(name, list, propagate)
  local out = {}
  for _, t in ipairs(list) do
    out[#out + 1] = { ResourceId = name, ResourceType = "auto-scaling-group", Key = t.Key,
      Value = t.Value, PropagateAtLaunch = propagate and not t.Key:match("^fo:") or false }
  end
  return out
end

local function positive_len(max)
  return function(v)
    if #v < 1 or #v > max then return false, ("1 to %d characters"):format(max) end
    return true
  end
end

-- Waits until the group is listed with its desired capacity in service and returns it
-- (nothing when `seconds` is 0: no wait).
local function wait_capacity(ctx, name, seconds)
  if seconds <= 0 then return nil end
  return common.poll(ctx, ("Auto Scaling group %s reaching its desired capacity"):format(name),
    seconds, function()
      local g = find(ctx, name, true)
      if not g then return false end
      local n = 0
      for _, i in ipairs(g.Instances or {}) do
        if i.LifecycleState == "InService" then n = n + 1 end
      end
      return n >= g.DesiredCapacity and g
    end)
end

-- Waits for the group's refresh `id` (nil: the newest) to end; raises unless Successful.
local function wait_refresh(ctx, name, id)
  local c = asg(ctx)
  local r = common.poll(ctx, ("instance refresh of Auto Scaling group %s"):format(name), M.WAIT.refresh,
    function()
      local list = c:DescribeInstanceRefreshes{ AutoScalingGroupName = name,
        InstanceRefreshIds = id and { id } or nil }.InstanceRefreshes or {}
      local r = list[1]
      if not r then return { Status = "Successful" } end
      if r.Status == "Pending" or r.Status == "InProgress" or r.Status == "Cancelling"
          or r.Status == "RollbackInProgress" or r.Status == "Baking" then
        return false
      end
      return r
    end)
  if r.Status ~= "Successful" then
    error(("Auto Scaling group %s: instance refresh %s ended %s%s"):format(name,
      tostring(r.InstanceRefreshId), tostring(r.Status),
      r.StatusReason and (": " .. r.StatusReason) or ""), 0)
  end
end

-- Replaces the instances not on the group's launch template version (a rolling instance
-- refresh that keeps min_healthy percent of the capacity in service) and waits for it.
local function refresh_instances(ctx, name, min_healthy, warmup)
  local c = asg(ctx)
  local params = { AutoScalingGroupName = name, Strategy = "Rolling",
    Preferences = { MinHealthyPercentage = min_healthy, SkipMatching = true, InstanceWarmup = warmup } }
  local ok, out = pcall(c.StartInstanceRefresh, c, params)
  if not ok and common.is(out, "InstanceRefreshInProgress") then
    ctx:info("Auto Scaling group %s: waiting for the instance refresh in progress", name)
    wait_refresh(ctx, name, nil)
    ok, out = pcall(c.StartInstanceRefresh, c, params)
  end
  if not ok then error(out, 0) end
  ctx:info("Auto Scaling group %s: instance refresh %s replaces the instances of the old "
    .. "launch template version", name, out.InstanceRefreshId)
  wait_refresh(ctx, name, out.InstanceRefreshId)
end

local function wait_gone(ctx, name)
  common.poll(ctx, ("deletion of Auto Scaling group %s"):format(name), 1800, function()
    return find(ctx, name) == nil
  end)
end

fo.type("aws:autoscaling:group", {
  doc = "an Auto Scaling group over a launch template (name-unique: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = positive_len(255) },
      launch_template = { type = "map", required = true, check = lt_check },
      min_size = { type = "integer", required = true },
      max_size = { type = "integer", required = true },
      desired_capacity = { type = "integer" },
      vpc_zone_identifier = { type = "list", required = true, check = function(v)
        return #v > 0, "at least one subnet" end },
      target_group_arns = { type = "list", default = {} },
      health_check_type = { type = "string", default = "EC2", enum = { "EC2", "ELB" } },
      health_check_grace_period = { type = "integer", default = 300 },
      metrics_collection = { type = "map", default = {}, check = mc_check },
      tags = { type = "map", default = {} },
      propagate_at_launch = { type = "boolean", default = true },
      force_delete = { type = "boolean", default = true },
      wait_for_capacity_timeout = { type = "integer", default = 600 },
      -- a change of launch template or version replaces the instances (instance refresh)
      -- keeping this percentage of the capacity in service
      refresh_min_healthy_percentage = { type = "integer", default = 90, check = function(v)
        return v >= 0 and v <= 100, "a percentage, 0 to 100" end },
    },
    outputs = { "name", "arn" },
    replace_on = { "name" },
    delete_first = true,
  },
  diff = common.diff({ "name" }, {
    launch_template = lt_equal, vpc_zone_identifier = common.same_set,
    target_group_arns = common.same_set, metrics_collection = mc_equal,
  }),
  create = function(ctx, p)
    local c = asg(ctx)
    local params = { AutoScalingGroupName = p.name, LaunchTemplate = lt_spec(p.launch_template),
      MinSize = p.min_size, MaxSize = p.max_size, DesiredCapacity = p.desired_capacity,
      VPCZoneIdentifier = table.concat(p.vpc_zone_identifier, ","),
      TargetGroupARNs = #p.target_group_arns > 0 and p.target_group_arns or nil,
      HealthCheckType = p.health_check_type, HealthCheckGracePeriod = p.health_check_grace_period,
      Tags = tag_entries(p.name, common.tag_list(ctx, p.tags), p.propagate_at_launch) }
    -- (a new launch template and its new instance profile may not be visible yet)
    local NEW = { "launch_template_not_visible", "instance_profile" }
    local ok, err = pcall(common.retry, ctx, NEW, c.CreateAutoScalingGroup, c, params)
    if not ok and common.is(err, "AlreadyExists") then
      local old = find(ctx, p.name)
      if old and old.Status == "Delete in progress" then
        -- a group of that name is still going away (deleted by hand): wait, then create
        wait_gone(ctx, p.name)
        ok, err = pcall(common.retry, ctx, NEW, c.CreateAutoScalingGroup, c, params)
      end
    end
    if not ok then
      if not common.is(err, "AlreadyExists") then error(err, 0) end
      -- made by a call of this create whose answer was lost (its token), or a conflict
      local g = find(ctx, p.name, true)
      if not g then error(err, 0) end
      common.claim(ctx, ("an Auto Scaling group named %q in %s"):format(p.name, ctx.region),
        g.AutoScalingGroupARN, g.Tags)
    end
    common.made(c, p.name) -- (its scaling policies: common.fresh_slot)
    -- The wait for capacity lists the group (its ARN, for the outputs) once it is visible
    -- and in service: one poll for both, and metrics collection turned on after it. Without
    -- that wait, a poll until the group is listed.
    local g = wait_capacity(ctx, p.name, p.wait_for_capacity_timeout)
      or common.poll(ctx, ("Auto Scaling group %s to be visible"):format(p.name), 120, function()
        return find(ctx, p.name, true)
      end)
    set_metrics(ctx, p.name, {}, p.metrics_collection)
    return p.name, outputs_of(g)
  end,
  read = function(ctx, name, props)
    local g = find(ctx, name, true)
    if not g then return nil end
    local user = {}
    local propagate = props.propagate_at_launch
    local mixed = {}
    for _, t in ipairs(g.Tags or {}) do
      if not t.Key:match("^fo:") then
        user[t.Key] = t.Value
        mixed[t.PropagateAtLaunch == true] = true
      end
    end
    if mixed[true] and not mixed[false] then propagate = true
    elseif mixed[false] and not mixed[true] then propagate = false end
    return outputs_of(g), {
      name = g.AutoScalingGroupName,
      launch_template = common.as_recorded(lt_observed(g.LaunchTemplate or {}, props.launch_template),
        props.launch_template, lt_equal),
      min_size = g.MinSize, max_size = g.MaxSize,
      vpc_zone_identifier = common.as_recorded(split(g.VPCZoneIdentifier), props.vpc_zone_identifier,
        common.same_set),
      target_group_arns = common.as_recorded(g.TargetGroupARNs or {}, props.target_group_arns,
        common.same_set),
      health_check_type = g.HealthCheckType, health_check_grace_period = g.HealthCheckGracePeriod,
      metrics_collection = common.as_recorded(mc_observed(g.EnabledMetrics), props.metrics_collection,
        mc_equal),
      tags = user, propagate_at_launch = propagate,
    }
  end,
  update = function(ctx, name, old, new, outputs)
    local c = asg(ctx)
    local params, any = { AutoScalingGroupName = name }, false
    local function set(member, value) params[member], any = value, true end
    if not lt_equal(old.launch_template, new.launch_template) then set("LaunchTemplate", lt_spec(new.launch_template)) end
    if old.min_size ~= new.min_size then set("MinSize", new.min_size) end
    if old.max_size ~= new.max_size then set("MaxSize", new.max_size) end
    if new.desired_capacity ~= nil and old.desired_capacity ~= new.desired_capacity then
      set("DesiredCapacity", new.desired_capacity)
    end
    if not common.same_set(old.vpc_zone_identifier, new.vpc_zone_identifier) then
      set("VPCZoneIdentifier", table.concat(new.vpc_zone_identifier, ","))
    end
    if old.health_check_type ~= new.health_check_type then set("HealthCheckType", new.health_check_type) end
    if old.health_check_grace_period ~= new.health_check_grace_period then
      set("HealthCheckGracePeriod", new.health_check_grace_period)
    end
    if any then
      common.retry(ctx, { "launch_template_not_visible", "instance_profile" },
        c.UpdateAutoScalingGroup, c, params)
    end
    if params.LaunchTemplate then
      refresh_instances(ctx, name, new.refresh_min_healthy_percentage or 90,
        new.health_check_grace_period)
    end
    -- target groups: attach the new ones before detaching the old (no gap in service)
    local had, has = {}, {}
    for _, a in ipairs(old.target_group_arns or {}) do had[a] = true end
    for _, a in ipairs(new.target_group_arns or {}) do has[a] = true end
    local attach, detach = {}, {}
    for _, a in ipairs(new.target_group_arns or {}) do if not had[a] then attach[#attach + 1] = a end end
    for _, a in ipairs(old.target_group_arns or {}) do if not has[a] then detach[#detach + 1] = a end end
    if #attach > 0 then c:AttachLoadBalancerTargetGroups{ AutoScalingGroupName = name, TargetGroupARNs = attach } end
    if #detach > 0 then c:DetachLoadBalancerTargetGroups{ AutoScalingGroupName = name, TargetGroupARNs = detach } end
    set_metrics(ctx, name, old.metrics_collection, new.metrics_collection)
    -- tags: a changed propagate_at_launch puts every user tag again
    local set_tags, del = common.tag_delta(old.tags, new.tags)
    if old.propagate_at_launch ~= new.propagate_at_launch then
      set_tags = common.tag_delta({}, new.tags)
    end
    if #set_tags > 0 then
      c:CreateOrUpdateTags{ Tags = tag_entries(name, set_tags, new.propagate_at_launch) }
    end
    if #del > 0 then
      local list = {}
      for _, k in ipairs(del) do list[#list + 1] = { Key = k } end
      c:DeleteTags{ Tags = tag_entries(name, list, false) }
    end
    return outputs
  end,
  delete = function(ctx, name, props)
    local c = asg(ctx)
    local ok, err = pcall(function()
      if props.force_delete == false then
        -- scale to 0 and let the instances go first, then delete the empty group
        c:UpdateAutoScalingGroup{ AutoScalingGroupName = name, MinSize = 0, MaxSize = 0, DesiredCapacity = 0 }
        common.poll(ctx, ("Auto Scaling group %s scaling to 0"):format(name), 1800, function()
          local g = find(ctx, name)
          if not g then return true end
          for _, i in ipairs(g.Instances or {}) do
            if i.LifecycleState ~= "Terminated" then return false end
          end
          return true
        end)
      end
      c:DeleteAutoScalingGroup{ AutoScalingGroupName = name, ForceDelete = props.force_delete ~= false }
    end)
    if not ok and not is_not_found(err) then error(err, 0) end
    wait_gone(ctx, name)
  end,
  adopt = function(ctx, p)
    local g = find(ctx, p.name, true)
    if g and not ctx.known_ids[g.AutoScalingGroupName] and ctx:owns(g.Tags) then
      return g.AutoScalingGroupName, outputs_of(g)
    end
    return nil
  end,
})

-- aws:autoscaling:policy ------------------------------------------------------------------------

local function policy_params(p)
  local spec = { PredefinedMetricType = p.metric_type, ResourceLabel = p.resource_label }
  return { AutoScalingGroupName = p.group_name, PolicyName = p.policy_name,
    PolicyType = "TargetTrackingScaling", EstimatedInstanceWarmup = p.estimated_instance_warmup,
    TargetTrackingConfiguration = { PredefinedMetricSpecification = spec,
      TargetValue = p.target_value + 0.0, DisableScaleIn = p.disable_scale_in } }
end

local function policy_outputs(arn, name, alarms)
  local names, arns = {}, {}
  for _, a in ipairs(alarms or {}) do
    names[#names + 1] = a.AlarmName
    arns[#arns + 1] = a.AlarmARN
  end
  return { arn = arn, name = name, alarm_names = names, alarm_arns = arns }
end

local function find_policy(ctx, group, name)
  local ok, out = pcall(function()
    return asg(ctx):DescribePolicies{ AutoScalingGroupName = group, PolicyNames = { name } }
  end)
  if not ok then
    if is_not_found(out) then return nil end
    error(out, 0)
  end
  return out.ScalingPolicies[1]
end

fo.type("aws:autoscaling:policy", {
  doc = "a target tracking scaling policy of an Auto Scaling group",
  schema = {
    properties = {
      group_name = { type = "string", required = true },
      policy_name = { type = "string", required = true, check = positive_len(255) },
      metric_type = { type = "string", default = "ASGAverageCPUUtilization", enum = {
        "ASGAverageCPUUtilization", "ASGAverageNetworkIn", "ASGAverageNetworkOut",
        "ALBRequestCountPerTarget" } },
      resource_label = { type = "string" },
      target_value = { type = "number", required = true },
      disable_scale_in = { type = "boolean", default = false },
      estimated_instance_warmup = { type = "integer" },
    },
    outputs = { "arn", "name", "alarm_names", "alarm_arns" },
    mutable_outputs = { "alarm_names", "alarm_arns" },
    replace_on = { "group_name", "policy_name" },
  },
  create = function(ctx, p)
    -- an upsert: a policy of that name already in the group is not this create's (policies
    -- carry no tags; after a crash, adopt takes the interrupted one). A group this run
    -- created holds only the policies this run put in it: not read (common.fresh_slot).
    local have = not common.fresh_slot(asg(ctx), p.group_name, "policy " .. p.policy_name)
      and find_policy(ctx, p.group_name, p.policy_name)
    if have then
      common.conflict(ctx, ("a scaling policy named %q of Auto Scaling group %q"):format(
        p.policy_name, p.group_name), have.PolicyARN)
    end
    local out = asg(ctx):PutScalingPolicy(policy_params(p))
    return out.PolicyARN, policy_outputs(out.PolicyARN, p.policy_name, out.Alarms)
  end,
  read = function(ctx, arn, props)
    local pol = find_policy(ctx, props.group_name, props.policy_name)
    if not pol or pol.PolicyARN ~= arn then return nil end
    -- a group being deleted takes its policies with it
    if not find(ctx, props.group_name, true) then return nil end
    local ttc = pol.TargetTrackingConfiguration or {}
    local pre = ttc.PredefinedMetricSpecification or {}
    return policy_outputs(arn, pol.PolicyName, pol.Alarms), {
      group_name = pol.AutoScalingGroupName, policy_name = pol.PolicyName,
      metric_type = pre.PredefinedMetricType, resource_label = pre.ResourceLabel,
      target_value = ttc.TargetValue, disable_scale_in = ttc.DisableScaleIn == true,
      estimated_instance_warmup = props.estimated_instance_warmup ~= nil and pol.EstimatedInstanceWarmup or nil,
    }
  end,
  update = function(ctx, arn, old, new)
    local out = asg(ctx):PutScalingPolicy(policy_params(new))
    return policy_outputs(out.PolicyARN, new.policy_name, out.Alarms)
  end,
  delete = function(ctx, arn, props)
    -- gone with its group (ValidationError "not found"), or already: success
    local ok, err = pcall(function()
      return asg(ctx):DeletePolicy{ AutoScalingGroupName = props.group_name, PolicyName = props.policy_name }
    end)
    if not ok and not (is_not_found(err) or (common.is(err, "ValidationError")
        and tostring(err.message or ""):find("does not exist", 1, true))) then
      error(err, 0)
    end
  end,
  adopt = function(ctx, p)
    -- a policy's name is its identity in its group (policies carry no tags)
    local pol = find_policy(ctx, p.group_name, p.policy_name)
    if pol and not ctx.known_ids[pol.PolicyARN] then
      return pol.PolicyARN, policy_outputs(pol.PolicyARN, pol.PolicyName, pol.Alarms)
    end
    return nil
  end,
})

return M
