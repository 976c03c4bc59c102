-- Elastic Load Balancing v2 resource types: aws:elbv2:load_balancer (an Application Load
-- Balancer), aws:elbv2:target_group, aws:elbv2:listener.
--
-- AWS facts they keep (Elastic Load Balancing API reference and user guide):
-- - load balancer and target group names: 1-32 characters, alphanumerics and hyphens, no
--   hyphen at either end, a load balancer's not beginning with "internal-"; unique per
--   region and account, so both are replaced delete-first and adopted by name + fo tags
--   (fo:token included). Their creates are idempotent by name when the settings match (the
--   existing one is answered as if new): one of that name that does not carry this create's
--   token is a conflict, looked for before the call and checked again on what it answers;
-- - an ALB needs subnets in at least two AZs (AWS checks it; the schema checks there are
--   two); its subnets and security groups change in place (SetSubnets,
--   SetSecurityGroups); create waits until it is `active` (LoadBalancerAvailable), delete
--   until it is gone (LoadBalancersDeleted). Its ENIs stay in the subnets and security
--   groups for a while after that: the EC2 types retry DependencyViolation;
-- - deletion protection is never on (the schema refuses it: nothing is retained on
--   destroy), and a delete that meets it (turned on by hand) turns it off first;
-- - a target group used by a listener cannot be deleted (ResourceInUse): retried as
--   "dependency_violation" while the listener's deletion settles;
-- - tags are given in the create call (Tags), so nothing exists untagged.
local common = require "fo.aws.resources.common"

local M = {}

-- Names ---------------------------------------------------------------------------------

--- The ELBv2 rule for load balancer (`lb` true) and target group names: nil when fine,
--- else why not.
function M.name_problem(name, lb)
  if type(name) ~= "string" then return "must be a string" end
  if #name < 1 or #name > 32 then
    return ("%q has %d characters; ELBv2 names have 1 to 32"):format(name, #name)
  end
  if name:find("[^%w%-]") then
    return ("%q may contain only letters, digits and hyphens"):format(name)
  end
  if name:sub(1, 1) == "-" or name:sub(-1) == "-" then
    return ("%q must not begin or end with a hyphen"):format(name)
  end
  if lb and name:sub(1, 9):lower() == "internal-" then
    return ("%q must not begin with \"internal-\""):format(name)
  end
  return nil
end

local function name_check(lb)
  return function(v)
    local why = M.name_problem(v, lb)
    return why == nil, why
  end
end

-- Shared pieces ---------------------------------------------------------------------------

local function elb(ctx) return ctx:client("elbv2") end

-- The part of an ELBv2 ARN CloudWatch uses as the LoadBalancer / TargetGroup dimension:
-- "app/<name>/<id>", "targetgroup/<name>/<id>".
local function arn_suffix(arn)
  return arn:match(":loadbalancer/(.+)$") or arn:match(":(targetgroup/.+)$") or arn
end

local function user_tags_of(ctx, arn)
  local function one(x)
    local out = elb(ctx):DescribeTags{ ResourceArns = { x } }.TagDescriptions
    return out[1] and out[1].Tags or {}
  end
  -- in a refresh, one DescribeTags (up to 20 ARNs) for the resources read at once
  return common.batched(ctx, "elbv2.DescribeTags", arn, function(arns)
    local got = {}
    for _, d in ipairs(elb(ctx):DescribeTags{ ResourceArns = arns }.TagDescriptions or {}) do
      got[d.ResourceArn] = d.Tags or {}
    end
    return got
  end, one, 20)
end

-- A load balancer or target group of that name met by a create (found before the call, or
-- answered by it: ELBv2 creates are idempotent by name when the settings match) is this
-- create's only if it carries its token; else a conflict.
local function claim(ctx, what, arn)
  common.claim(ctx, what, arn, common.retry(ctx, "not_found_after_create", user_tags_of, ctx, arn))
end

-- Creates a load balancer or target group named `name` with `op` (CreateLoadBalancer,
-- CreateTargetGroup) and `params`, claiming it (above) whether it was there before the
-- call, made in the meantime with other settings (`duplicate`, the code ELBv2 answers
-- then), or answered by the call although it existed. `find(ctx, filter)` describes one by
-- name and `arn_field` names its ARN. Returns the description the call answered.
local function create_named(ctx, kind, name, op, params, duplicate, find, arn_field, list)
  local what = ("a %s named %q in %s (names are unique per region)"):format(kind, name,
    ctx.region)
  local existing = find(ctx, { Names = { name } })
  if existing then claim(ctx, what, existing[arn_field]) end
  local c = elb(ctx)
  local ok, out = pcall(common.retry, ctx, "not_found_after_create", c[op], c, params)
  if not ok then
    local other = common.is(out, duplicate) and find(ctx, { Names = { name } })
    if other then claim(ctx, what, other[arn_field]) end
    error(out, 0)
  end
  local d = out[list][1]
  if not existing then claim(ctx, what, d[arn_field]) end
  return d
end

local function retag(ctx, arn, old, new)
  local set, del = common.tag_delta(old, new)
  if #set > 0 then elb(ctx):AddTags{ ResourceArns = { arn }, Tags = set } end
  if #del > 0 then elb(ctx):RemoveTags{ ResourceArns = { arn }, TagKeys = del } end
end

-- Attribute maps: values as ELBv2 keeps them (strings); booleans and numbers accepted.
local function attr_string(v)
  if type(v) == "number" and math.type(v) == "float" and v == math.floor(v) then
    return tostring(math.tointeger(v))
  end
  return tostring(v)
end

local function attrs_equal(a, b)
  a, b = a or {}, b or {}
  for k, v in pairs(a) do
    if b[k] == nil or attr_string(v) ~= attr_string(b[k]) then return false end
  end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function attr_list(map)
  local keys = {}
  for k in pairs(map) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out + 1] = { Key = k, Value = attr_string(map[k]) } end
  return out
end

-- The attribute changes from map `old` to `new`: keys set or changed, and keys no longer
-- declared put back to AWS's default (`defaults`; a key without a known default is left
-- as it is, with a warning).
local function attr_delta(ctx, old, new, defaults)
  local out = {}
  for k, v in pairs(new or {}) do
    if (old or {})[k] == nil or attr_string(old[k]) ~= attr_string(v) then out[k] = v end
  end
  for k in pairs(old or {}) do
    if (new or {})[k] == nil then
      if defaults[k] ~= nil then out[k] = defaults[k]
      else ctx:warn("attribute %s is no longer declared; it keeps its value (no known default)", k) end
    end
  end
  return out
end

-- The observed values of the declared attribute keys (what read reports).
local function observed_attrs(list, declared)
  local have = {}
  for _, a in ipairs(list or {}) do have[a.Key] = a.Value end
  local out = {}
  for k in pairs(declared or {}) do out[k] = have[k] end
  return out
end

local function map_check(v)
  for k, x in pairs(v) do
    if type(x) ~= "string" and type(x) ~= "number" and type(x) ~= "boolean" then
      return false, ("attribute %s: a string, number or boolean, not a %s"):format(k, type(x))
    end
  end
  return true
end

-- aws:elbv2:load_balancer ------------------------------------------------------------------

-- AWS's defaults of an ALB's attributes (DescribeLoadBalancerAttributes of a new ALB):
-- a key no longer declared goes back to its default.
local LB_DEFAULTS = {
  ["access_logs.s3.enabled"] = "false", ["access_logs.s3.bucket"] = "",
  ["access_logs.s3.prefix"] = "", ["idle_timeout.timeout_seconds"] = "60",
  ["deletion_protection.enabled"] = "false", ["routing.http2.enabled"] = "true",
  ["routing.http.drop_invalid_header_fields.enabled"] = "false",
  ["routing.http.xff_client_port.enabled"] = "false",
  ["routing.http.preserve_host_header.enabled"] = "false",
  ["routing.http.xff_header_processing.mode"] = "append",
  ["load_balancing.cross_zone.enabled"] = "true",
  ["routing.http.desync_mitigation_mode"] = "defensive",
  ["waf.fail_open.enabled"] = "false",
  ["routing.http.x_amzn_tls_version_and_cipher_suite.enabled"] = "false",
}

local function lb_attr_check(v)
  local ok, why = map_check(v)
  if not ok then return ok, why end
  local dp = v["deletion_protection.enabled"]
  if dp ~= nil and attr_string(dp) ~= "false" then
    return false, "deletion_protection.enabled must stay false: fo retains nothing on destroy"
  end
  return true
end

local function list_check(min, what)
  return function(v)
    if #v < min then return false, ("at least %d %s"):format(min, what) end
    return true
  end
end

local function lb_outputs(d)
  return { arn = d.LoadBalancerArn, dns_name = d.DNSName,
    canonical_hosted_zone_id = d.CanonicalHostedZoneId, name = d.LoadBalancerName,
    vpc_id = d.VpcId, arn_suffix = arn_suffix(d.LoadBalancerArn) }
end

local function find_lb(ctx, params)
  return common.describe_one(elb(ctx), "DescribeLoadBalancers", params, "LoadBalancers",
    { "LoadBalancerNotFound" })
end

-- The load balancer once `active`: the wait's last answer describes it (nil when it
-- ended on an error acceptor). `pending`: the create's answer said "provisioning" (minutes
-- on AWS), so the first poll comes a period later (common.wait).
local function wait_available(ctx, arn, pending)
  local out = common.wait(ctx, elb(ctx), "LoadBalancerAvailable", { LoadBalancerArns = { arn } },
    900, pending)
  return out and out.LoadBalancers and out.LoadBalancers[1]
    or find_lb(ctx, { LoadBalancerArns = { arn } })
end

local function set_lb_attributes(ctx, arn, changes)
  if next(changes) then
    common.retry(ctx, "not_found_after_create", function()
      return elb(ctx):ModifyLoadBalancerAttributes{ LoadBalancerArn = arn, Attributes = attr_list(changes) }
    end)
  end
end

fo.type("aws:elbv2:load_balancer", {
  doc = "an Application Load Balancer (name-unique: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = name_check(true) },
      scheme = { type = "string", default = "internet-facing", enum = { "internet-facing", "internal" } },
      type = { type = "string", default = "application", enum = { "application" } },
      subnets = { type = "list", required = true, check = list_check(2, "subnets (in two AZs)") },
      security_groups = { type = "list", default = {} },
      attributes = { type = "map", default = {}, check = lb_attr_check },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "dns_name", "canonical_hosted_zone_id", "name", "vpc_id", "arn_suffix" },
    replace_on = { "name", "scheme", "type" },
    delete_first = true,
  },
  diff = common.diff({ "name", "scheme", "type" }, {
    subnets = common.same_set, security_groups = common.same_set, attributes = attrs_equal,
  }),
  create = function(ctx, p)
    local d = create_named(ctx, "load balancer", p.name, "CreateLoadBalancer", { Name = p.name,
      Subnets = p.subnets, SecurityGroups = #p.security_groups > 0 and p.security_groups or nil,
      Scheme = p.scheme, Type = p.type, Tags = common.tag_list(ctx, p.tags) },
      "DuplicateLoadBalancerName", find_lb, "LoadBalancerArn", "LoadBalancers")
    common.made(elb(ctx), d.LoadBalancerArn) -- (its listeners: common.fresh_slot)
    set_lb_attributes(ctx, d.LoadBalancerArn, attr_delta(ctx, {}, p.attributes, LB_DEFAULTS))
    d = wait_available(ctx, d.LoadBalancerArn, (d.State or {}).Code == "provisioning") or d
    return d.LoadBalancerArn, lb_outputs(d)
  end,
  read = function(ctx, arn, props)
    local d = find_lb(ctx, { LoadBalancerArns = { arn } })
    if not d then return nil end
    local subnets = {}
    for _, z in ipairs(d.AvailabilityZones or {}) do subnets[#subnets + 1] = z.SubnetId end
    -- its attributes and tags read at once
    local r = common.together{
      function()
        if not next(props.attributes or {}) then return {} end
        return observed_attrs(elb(ctx):DescribeLoadBalancerAttributes{ LoadBalancerArn = arn }
          .Attributes, props.attributes)
      end,
      function() return user_tags_of(ctx, arn) end,
    }
    local attrs = r[1]
    return lb_outputs(d), {
      name = d.LoadBalancerName, scheme = d.Scheme, type = d.Type,
      subnets = common.as_recorded(subnets, props.subnets, common.same_set),
      -- none declared: AWS gives the VPC's default group, which fo leaves alone
      security_groups = #(props.security_groups or {}) == 0 and props.security_groups
        or common.as_recorded(d.SecurityGroups or {}, props.security_groups, common.same_set),
      attributes = common.as_recorded(attrs, props.attributes, attrs_equal),
      tags = common.user_tags(r[2]),
    }
  end,
  update = function(ctx, arn, old, new, outputs)
    local c = elb(ctx)
    if not common.same_set(old.subnets, new.subnets) then
      c:SetSubnets{ LoadBalancerArn = arn, Subnets = new.subnets }
    end
    if #new.security_groups > 0 and not common.same_set(old.security_groups, new.security_groups) then
      c:SetSecurityGroups{ LoadBalancerArn = arn, SecurityGroups = new.security_groups }
    end
    set_lb_attributes(ctx, arn, attr_delta(ctx, old.attributes, new.attributes, LB_DEFAULTS))
    retag(ctx, arn, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, arn)
    local c = elb(ctx)
    local ok, err = pcall(c.DeleteLoadBalancer, c, { LoadBalancerArn = arn })
    if not ok then
      if common.is(err, "LoadBalancerNotFound") then return end
      if not common.is(err, "OperationNotPermitted") then error(err, 0) end
      -- deletion protection turned on by hand: fo keeps nothing on destroy
      ctx:warn("deletion protection was on; turning it off to delete")
      c:ModifyLoadBalancerAttributes{ LoadBalancerArn = arn,
        Attributes = { { Key = "deletion_protection.enabled", Value = "false" } } }
      c:DeleteLoadBalancer{ LoadBalancerArn = arn }
    end
    common.wait(ctx, c, "LoadBalancersDeleted", { LoadBalancerArns = { arn } }, 900)
  end,
  adopt = function(ctx, p)
    local d = find_lb(ctx, { Names = { p.name } })
    if d and not ctx.known_ids[d.LoadBalancerArn] and ctx:owns(user_tags_of(ctx, d.LoadBalancerArn)) then
      d = wait_available(ctx, d.LoadBalancerArn) or d
      return d.LoadBalancerArn, lb_outputs(d)
    end
    return nil
  end,
})

-- aws:elbv2:target_group ---------------------------------------------------------------------

-- health_check keys → CreateTargetGroup/ModifyTargetGroup members.
local HEALTH = {
  path = "HealthCheckPath", protocol = "HealthCheckProtocol", port = "HealthCheckPort",
  interval_seconds = "HealthCheckIntervalSeconds", timeout_seconds = "HealthCheckTimeoutSeconds",
  healthy_threshold = "HealthyThresholdCount", unhealthy_threshold = "UnhealthyThresholdCount",
  enabled = "HealthCheckEnabled", matcher = "Matcher",
}

-- A health_check table with AWS's defaults for an HTTP(S) target group filled in (what
-- AWS answers when a key is left out), so declared and observed compare key by key.
local function health_full(hc, protocol)
  hc = hc or {}
  local out = { path = "/", protocol = protocol, port = "traffic-port", interval_seconds = 30,
    timeout_seconds = 5, healthy_threshold = 5, unhealthy_threshold = 2, matcher = "200",
    enabled = true }
  for k, v in pairs(hc) do out[k] = v end
  out.port = tostring(out.port)
  return out
end

local function health_check_check(v)
  for k in pairs(v) do
    if not HEALTH[k] then
      local known = {}
      for n in pairs(HEALTH) do known[#known + 1] = n end
      table.sort(known)
      return false, ("health_check has no key %s (known: %s)"):format(tostring(k), table.concat(known, ", "))
    end
  end
  return true
end

local function health_params(hc, protocol)
  local full = health_full(hc, protocol)
  local out = {}
  for k, member in pairs(HEALTH) do
    if k == "matcher" then out[member] = { HttpCode = tostring(full.matcher) }
    else out[member] = full[k] end
  end
  return out
end

local function health_of(d)
  return { path = d.HealthCheckPath, protocol = d.HealthCheckProtocol,
    port = d.HealthCheckPort, interval_seconds = d.HealthCheckIntervalSeconds,
    timeout_seconds = d.HealthCheckTimeoutSeconds, healthy_threshold = d.HealthyThresholdCount,
    unhealthy_threshold = d.UnhealthyThresholdCount, enabled = d.HealthCheckEnabled,
    matcher = d.Matcher and d.Matcher.HttpCode }
end

-- Target group attribute defaults (DescribeTargetGroupAttributes of a new instance group).
local TG_DEFAULTS = {
  ["deregistration_delay.timeout_seconds"] = "300", ["stickiness.enabled"] = "false",
  ["stickiness.type"] = "lb_cookie", ["stickiness.lb_cookie.duration_seconds"] = "86400",
  ["stickiness.app_cookie.cookie_name"] = "", ["stickiness.app_cookie.duration_seconds"] = "86400",
  ["slow_start.duration_seconds"] = "0", ["load_balancing.algorithm.type"] = "round_robin",
  ["load_balancing.cross_zone.enabled"] = "use_load_balancer_configuration",
}

local function tg_outputs(d)
  return { arn = d.TargetGroupArn, name = d.TargetGroupName, arn_suffix = arn_suffix(d.TargetGroupArn) }
end

local function find_tg(ctx, params)
  return common.describe_one(elb(ctx), "DescribeTargetGroups", params, "TargetGroups",
    { "TargetGroupNotFound" })
end

local function set_tg_attributes(ctx, arn, changes)
  if next(changes) then
    common.retry(ctx, "not_found_after_create", function()
      return elb(ctx):ModifyTargetGroupAttributes{ TargetGroupArn = arn, Attributes = attr_list(changes) }
    end)
  end
end

local function health_equal_for(protocol)
  return function(a, b)
    return common.deep_equal(health_full(a, protocol), health_full(b, protocol))
  end
end

fo.type("aws:elbv2:target_group", {
  doc = "an ELBv2 target group of instances (name-unique: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = name_check(false) },
      protocol = { type = "string", default = "HTTP", enum = { "HTTP", "HTTPS" } },
      port = { type = "integer", required = true },
      vpc_id = { type = "string", required = true },
      target_type = { type = "string", default = "instance", enum = { "instance", "ip" } },
      health_check = { type = "map", default = {}, check = health_check_check },
      attributes = { type = "map", default = {}, check = map_check },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name", "arn_suffix" },
    replace_on = { "name", "protocol", "port", "vpc_id", "target_type" },
    delete_first = true,
  },
  diff = function(old, new)
    return common.diff({ "name", "protocol", "port", "vpc_id", "target_type" }, {
      health_check = health_equal_for(new.protocol), attributes = attrs_equal,
    })(old, new)
  end,
  create = function(ctx, p)
    local params = health_params(p.health_check, p.protocol)
    params.Name, params.Protocol, params.Port, params.VpcId, params.TargetType = p.name, p.protocol,
      p.port, p.vpc_id, p.target_type
    params.Tags = common.tag_list(ctx, p.tags)
    local d = create_named(ctx, "target group", p.name, "CreateTargetGroup", params,
      "DuplicateTargetGroupName", find_tg, "TargetGroupArn", "TargetGroups")
    set_tg_attributes(ctx, d.TargetGroupArn, attr_delta(ctx, {}, p.attributes, TG_DEFAULTS))
    return d.TargetGroupArn, tg_outputs(d)
  end,
  read = function(ctx, arn, props)
    local d = find_tg(ctx, { TargetGroupArns = { arn } })
    if not d then return nil end
    local attrs = {}
    if next(props.attributes or {}) then
      attrs = observed_attrs(elb(ctx):DescribeTargetGroupAttributes{ TargetGroupArn = arn }.Attributes,
        props.attributes)
    end
    return tg_outputs(d), {
      name = d.TargetGroupName, protocol = d.Protocol, port = d.Port, vpc_id = d.VpcId,
      target_type = d.TargetType,
      health_check = common.as_recorded(health_of(d), props.health_check, health_equal_for(d.Protocol)),
      attributes = common.as_recorded(attrs, props.attributes, attrs_equal),
      tags = common.user_tags(user_tags_of(ctx, arn)),
    }
  end,
  update = function(ctx, arn, old, new, outputs)
    if not health_equal_for(new.protocol)(old.health_check, new.health_check) then
      local params = health_params(new.health_check, new.protocol)
      params.TargetGroupArn = arn
      elb(ctx):ModifyTargetGroup(params)
    end
    set_tg_attributes(ctx, arn, attr_delta(ctx, old.attributes, new.attributes, TG_DEFAULTS))
    retag(ctx, arn, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, arn)
    -- a listener (being deleted, or an LB's listeners going with it) may still use it
    common.retry(ctx, "dependency_violation", function()
      return common.unless({ "TargetGroupNotFound" }, function()
        return elb(ctx):DeleteTargetGroup{ TargetGroupArn = arn }
      end)
    end)
  end,
  adopt = function(ctx, p)
    local d = find_tg(ctx, { Names = { p.name } })
    if d and not ctx.known_ids[d.TargetGroupArn] and ctx:owns(user_tags_of(ctx, d.TargetGroupArn)) then
      return d.TargetGroupArn, tg_outputs(d)
    end
    return nil
  end,
})

-- aws:elbv2:listener -------------------------------------------------------------------------

-- default_actions: a list of
--   { type = "forward", target_group_arn = ... }
--   { type = "redirect", protocol = "HTTPS", port = 443, status_code = "HTTP_301",
--     host =, path =, query = }            (left out: AWS's "#{host}", "/#{path}", ...)
--   { type = "fixed_response", status_code = "503", content_type = "text/plain",
--     message_body = "..." }
local REDIRECT_DEFAULTS = { protocol = "#{protocol}", port = "#{port}", host = "#{host}",
  path = "/#{path}", query = "#{query}" }

-- An action in one canonical form (defaults dropped, ports as strings, type names as
-- declared), so that declared and observed actions compare.
local function action_norm(a)
  local t = a.type
  if t == "forward" then return { type = t, target_group_arn = a.target_group_arn } end
  if t == "redirect" then
    local out = { type = t, status_code = a.status_code or "HTTP_301" }
    for k, def in pairs(REDIRECT_DEFAULTS) do
      local v = a[k] ~= nil and tostring(a[k]) or nil
      if v ~= nil and v ~= def then out[k] = v end
    end
    return out
  end
  if t == "fixed_response" then
    return { type = t, status_code = tostring(a.status_code or "200"),
      content_type = a.content_type, message_body = a.message_body }
  end
  return a
end

local function actions_equal(a, b)
  if #(a or {}) ~= #(b or {}) then return false end
  for i = 1, #a do
    if not common.deep_equal(action_norm(a[i]), action_norm(b[i])) then return false end
  end
  return true
end

local function actions_check(v)
  if #v == 0 then return false, "at least one action" end
  for i, a in ipairs(v) do
    if type(a) ~= "table" then return false, ("action %d: a table"):format(i) end
    if a.type == "forward" then
      if a.target_group_arn == nil then return false, ("action %d: forward needs target_group_arn"):format(i) end
    elseif a.type == "redirect" then
      if a.status_code ~= nil and a.status_code ~= "HTTP_301" and a.status_code ~= "HTTP_302" then
        return false, ("action %d: status_code HTTP_301 or HTTP_302"):format(i)
      end
    elseif a.type ~= "fixed_response" then
      return false, ("action %d: type forward, redirect or fixed_response, not %s"):format(i, tostring(a.type))
    end
  end
  return true
end

local function api_actions(list)
  local out = {}
  for i, a in ipairs(list) do
    local n = action_norm(a)
    if n.type == "forward" then
      out[i] = { Type = "forward", TargetGroupArn = n.target_group_arn }
    elseif n.type == "redirect" then
      local rc = { StatusCode = n.status_code }
      for k, member in pairs{ protocol = "Protocol", port = "Port", host = "Host", path = "Path", query = "Query" } do
        rc[member] = n[k]
      end
      out[i] = { Type = "redirect", RedirectConfig = rc }
    else
      out[i] = { Type = "fixed-response", FixedResponseConfig = { StatusCode = n.status_code,
        ContentType = n.content_type, MessageBody = n.message_body } }
    end
    if #list > 1 then out[i].Order = i end
  end
  return out
end

local function actions_of(api)
  local list = {}
  for _, a in ipairs(api or {}) do list[#list + 1] = a end
  table.sort(list, function(x, y) return (x.Order or 0) < (y.Order or 0) end)
  local out = {}
  for i, a in ipairs(list) do
    if a.Type == "forward" then
      local arn = a.TargetGroupArn
      if not arn and a.ForwardConfig and a.ForwardConfig.TargetGroups then
        arn = a.ForwardConfig.TargetGroups[1] and a.ForwardConfig.TargetGroups[1].TargetGroupArn
      end
      out[i] = { type = "forward", target_group_arn = arn }
    elseif a.Type == "redirect" then
      local rc = a.RedirectConfig or {}
      out[i] = action_norm{ type = "redirect", protocol = rc.Protocol, port = rc.Port, host = rc.Host,
        path = rc.Path, query = rc.Query, status_code = rc.StatusCode }
    elseif a.Type == "fixed-response" then
      local fc = a.FixedResponseConfig or {}
      out[i] = { type = "fixed_response", status_code = fc.StatusCode, content_type = fc.ContentType,
        message_body = fc.MessageBody }
    else
      out[i] = { type = a.Type }
    end
  end
  return out
end

-- The SSL policy an HTTPS listener gets when the recipe names none: AWS's recommended
-- TLS 1.3/1.2 policy.
local DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"

local function tls_params(p)
  if p.protocol ~= "HTTPS" then
    if p.certificate_arn then error("certificate_arn is for HTTPS listeners only", 0) end
    return nil, nil
  end
  if not p.certificate_arn then
    error("an HTTPS listener needs certificate_arn (an ACM certificate of the domain)", 0)
  end
  return { { CertificateArn = p.certificate_arn } }, p.ssl_policy or DEFAULT_SSL_POLICY
end

local function listener_outputs(l)
  return { arn = l.ListenerArn, port = l.Port, protocol = l.Protocol }
end

local function find_listener(ctx, arn)
  return common.describe_one(elb(ctx), "DescribeListeners", { ListenerArns = { arn } },
    "Listeners", { "ListenerNotFound", "LoadBalancerNotFound" })
end

-- The listener on `port` of the load balancer (nil when none, or the load balancer is not
-- there yet or any more).
local function listener_on(ctx, lb_arn, port)
  local out = common.unless({ "LoadBalancerNotFound" }, function()
    return elb(ctx):DescribeListeners{ LoadBalancerArn = lb_arn }
  end)
  for _, l in ipairs(out and out.Listeners or {}) do
    if l.Port == port then return l end
  end
  return nil
end

fo.type("aws:elbv2:listener", {
  doc = "a listener of a load balancer (forward, redirect or fixed response)",
  schema = {
    properties = {
      load_balancer_arn = { type = "string", required = true },
      port = { type = "integer", required = true },
      protocol = { type = "string", default = "HTTP", enum = { "HTTP", "HTTPS" } },
      certificate_arn = { type = "string" },
      ssl_policy = { type = "string" },
      default_actions = { type = "list", required = true, check = actions_check },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "port", "protocol" },
    mutable_outputs = { "port", "protocol" },
    replace_on = { "load_balancer_arn" },
  },
  diff = common.diff({ "load_balancer_arn" }, { default_actions = actions_equal }),
  create = function(ctx, p)
    local certs, policy = tls_params(p)
    -- A port takes one listener. CreateListener answers one there with the same settings
    -- as if new (else DuplicateListener): one that does not carry this create's token is a
    -- conflict, looked for before the call and checked again on what it answers.
    -- A load balancer this run created holds only the listeners this run put on it: then
    -- neither is read (common.fresh_slot), and what CreateListener answers is this create's.
    local what = ("a listener on port %d of load balancer %s"):format(p.port,
      arn_suffix(p.load_balancer_arn))
    local fresh = common.fresh_slot(elb(ctx), p.load_balancer_arn, "listener on " .. p.port)
    local existing = not fresh and listener_on(ctx, p.load_balancer_arn, p.port)
    if existing then claim(ctx, what, existing.ListenerArn) end
    local ok, out = pcall(common.retry, ctx, "not_found_after_create", function()
      return elb(ctx):CreateListener{ LoadBalancerArn = p.load_balancer_arn, Port = p.port,
        Protocol = p.protocol, Certificates = certs, SslPolicy = policy,
        DefaultActions = api_actions(p.default_actions), Tags = common.tag_list(ctx, p.tags) }
    end)
    if not ok then
      local other = common.is(out, "DuplicateListener")
        and listener_on(ctx, p.load_balancer_arn, p.port)
      if other then claim(ctx, what, other.ListenerArn) end
      error(out, 0)
    end
    local l = out.Listeners[1]
    if not (existing or fresh) then claim(ctx, what, l.ListenerArn) end
    return l.ListenerArn, listener_outputs(l)
  end,
  read = function(ctx, arn, props)
    local l = find_listener(ctx, arn)
    if not l then return nil end
    local cert = l.Certificates and l.Certificates[1] and l.Certificates[1].CertificateArn
    -- an undeclared policy is the default one (reported as undeclared while it is)
    local policy = l.SslPolicy
    if props.ssl_policy == nil and policy == (l.Protocol == "HTTPS" and DEFAULT_SSL_POLICY or nil) then
      policy = nil
    end
    return listener_outputs(l), {
      load_balancer_arn = l.LoadBalancerArn, port = l.Port, protocol = l.Protocol,
      certificate_arn = cert,
      ssl_policy = policy,
      default_actions = common.as_recorded(actions_of(l.DefaultActions), props.default_actions, actions_equal),
      tags = common.user_tags(user_tags_of(ctx, arn)),
    }
  end,
  update = function(ctx, arn, old, new, outputs)
    local l
    local changed = false
    for _, k in ipairs{ "port", "protocol", "certificate_arn", "ssl_policy" } do
      if old[k] ~= new[k] then changed = true end
    end
    if changed or not actions_equal(old.default_actions, new.default_actions) then
      local certs, policy = tls_params(new)
      l = elb(ctx):ModifyListener{ ListenerArn = arn, Port = new.port, Protocol = new.protocol,
        Certificates = certs, SslPolicy = policy, DefaultActions = api_actions(new.default_actions) }
        .Listeners[1]
    end
    retag(ctx, arn, old.tags, new.tags)
    return l and listener_outputs(l) or outputs
  end,
  delete = function(ctx, arn)
    -- gone with its load balancer, or already deleted: success
    common.unless({ "ListenerNotFound", "LoadBalancerNotFound" }, function()
      return elb(ctx):DeleteListener{ ListenerArn = arn }
    end)
  end,
  adopt = function(ctx, p)
    -- a port takes one listener per load balancer: the one there, if it is ours
    local out = common.unless({ "LoadBalancerNotFound" }, function()
      return elb(ctx):DescribeListeners{ LoadBalancerArn = p.load_balancer_arn }
    end)
    for _, l in ipairs(out and out.Listeners or {}) do
      if l.Port == p.port and not ctx.known_ids[l.ListenerArn]
          and ctx:owns(user_tags_of(ctx, l.ListenerArn)) then
        return l.ListenerArn, listener_outputs(l)
      end
    end
    return nil
  end,
})

return M
