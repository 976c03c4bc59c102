-- Elastic Load Balancing v2 handlers: load balancers (provisioning → active), target
-- groups with health-check defaults, listeners (forward / redirect / fixed-response),
-- attributes, tags, and target health derived from the Auto Scaling groups attached to
-- a target group, with ELBv2's validation, idempotency and error codes.
--
-- The db (ctx.db = ctx:db_of("elbv2", region)); Auto Scaling reads target_groups:
--   load_balancers[arn] = { desc = LoadBalancer (output shape, State computed on read),
--                           active_at = virtual seconds, attributes = {key = value},
--                           tags = {{Key, Value}}, seq }
--   target_groups[arn]  = { desc = TargetGroup (LoadBalancerArns computed on read),
--                           attributes = {key = value}, tags, seq }
--   listeners[arn]      = { desc = Listener, tags, seq }
--   rules[arn]          = { desc = Rule (Priority a string), listener = ListenerArn, tags, seq }
--                         (a listener's default rule is not stored: it is its DefaultActions)
local access_logs = require "fo.sim.elb_access_logs"
local asg_state = require "fo.sim.asg_state"
local elb_rules = require "fo.sim.elb_rules"
local elb_zones = require "fo.sim.elb_zones"
local ec2 = require "fo.sim.ec2_lookup"
local records = require "fo.sim.records"
local target_checks = require "fo.sim.target_checks"

local M = {}

-- How long a new load balancer stays "provisioning" (virtual seconds; sim.timing
-- .lb_provisioning overrides). AWS takes minutes; long enough here that the
-- LoadBalancerAvailable waiter sees provisioning and polls again.
local PROVISIONING_SECONDS = 3

local function provisioning_seconds(ctx)
  local t = ctx.sim and rawget(ctx.sim, "timing")
  return type(t) == "table" and t.lb_provisioning or PROVISIONING_SECONDS
end

local MAX_TAGS = 50
local TYPE_PATH = { application = "app", network = "net" }

-- Attributes: keys in the order DescribeLoadBalancerAttributes lists them, with their
-- defaults, per load balancer type.
local LB_ATTRIBUTES = {
  application = {
    { "access_logs.s3.enabled", "false" }, { "access_logs.s3.bucket", "" },
    { "access_logs.s3.prefix", "" }, { "idle_timeout.timeout_seconds", "60" },
    { "deletion_protection.enabled", "false" }, { "routing.http2.enabled", "true" },
    { "routing.http.drop_invalid_header_fields.enabled", "false" },
    { "routing.http.xff_client_port.enabled", "false" },
    { "routing.http.preserve_host_header.enabled", "false" },
    { "routing.http.xff_header_processing.mode", "append" },
    { "load_balancing.cross_zone.enabled", "true" },
    { "routing.http.desync_mitigation_mode", "defensive" },
    { "waf.fail_open.enabled", "false" },
    { "routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false" },
  },
  network = {
    { "access_logs.s3.enabled", "false" }, { "access_logs.s3.bucket", "" },
    { "access_logs.s3.prefix", "" }, { "deletion_protection.enabled", "false" },
    { "load_balancing.cross_zone.enabled", "false" },
    { "dns_record.client_routing_policy", "any_availability_zone" },
  },
}

local TG_ATTRIBUTES = {
  { "deregistration_delay.timeout_seconds", "300" }, { "stickiness.enabled", "false" },
  { "stickiness.type", "lb_cookie" }, { "stickiness.lb_cookie.duration_seconds", "86400" },
  { "stickiness.app_cookie.cookie_name", "" },
  { "stickiness.app_cookie.duration_seconds", "86400" },
  { "slow_start.duration_seconds", "0" }, { "load_balancing.algorithm.type", "round_robin" },
  { "load_balancing.cross_zone.enabled", "use_load_balancer_configuration" },
  { "target_group_health.dns_failover.minimum_healthy_targets.count", "1" },
  { "target_group_health.dns_failover.minimum_healthy_targets.percentage", "off" },
  { "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1" },
  { "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off" },
}

-- Value checks per attribute key: returns true when the value is acceptable.
local function bool(v) return v == "true" or v == "false" end
local function int_in(lo, hi)
  return function(v)
    local n = math.tointeger(tonumber(v))
    return n ~= nil and n >= lo and n <= hi and tostring(n) == v
  end
end
local function one_of(...)
  local set = {}
  for _, x in ipairs{ ... } do set[x] = true end
  return function(v) return set[v] == true end
end
local function any() return true end

local ATTRIBUTE_CHECKS = {
  ["access_logs.s3.enabled"] = bool, ["access_logs.s3.bucket"] = any,
  ["access_logs.s3.prefix"] = any, ["idle_timeout.timeout_seconds"] = int_in(1, 4000),
  ["deletion_protection.enabled"] = bool, ["routing.http2.enabled"] = bool,
  ["routing.http.drop_invalid_header_fields.enabled"] = bool,
  ["routing.http.xff_client_port.enabled"] = bool,
  ["routing.http.preserve_host_header.enabled"] = bool,
  ["routing.http.xff_header_processing.mode"] = one_of("append", "preserve", "remove"),
  -- cross-zone load balancing is always on for ALBs and cannot be turned off
  ["load_balancing.cross_zone.enabled"] = bool,
  ["routing.http.desync_mitigation_mode"] = one_of("monitor", "defensive", "strictest"),
  ["waf.fail_open.enabled"] = bool,
  ["routing.http.x_amzn_tls_version_and_cipher_suite.enabled"] = bool,
  ["dns_record.client_routing_policy"] = one_of("availability_zone_affinity",
    "partial_availability_zone_affinity", "any_availability_zone"),
}

local TG_ATTRIBUTE_CHECKS = {
  ["deregistration_delay.timeout_seconds"] = int_in(0, 3600), ["stickiness.enabled"] = bool,
  ["stickiness.type"] = one_of("lb_cookie", "app_cookie", "source_ip"),
  ["stickiness.lb_cookie.duration_seconds"] = int_in(1, 604800),
  ["stickiness.app_cookie.cookie_name"] = any,
  ["stickiness.app_cookie.duration_seconds"] = int_in(1, 604800),
  ["slow_start.duration_seconds"] = function(v)
    return int_in(0, 0)(v) or int_in(30, 900)(v)
  end,
  ["load_balancing.algorithm.type"] = one_of("round_robin", "least_outstanding_requests",
    "weighted_random"),
  ["load_balancing.cross_zone.enabled"] = one_of("true", "false", "use_load_balancer_configuration"),
  ["target_group_health.dns_failover.minimum_healthy_targets.count"] = function(v)
    return v == "off" or int_in(1, 1000000)(v)
  end,
  ["target_group_health.dns_failover.minimum_healthy_targets.percentage"] = function(v)
    return v == "off" or int_in(1, 100)(v)
  end,
  ["target_group_health.unhealthy_state_routing.minimum_healthy_targets.count"] = int_in(1, 1000000),
  ["target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage"] = function(v)
    return v == "off" or int_in(1, 100)(v)
  end,
}

-- ELBv2's predefined security policies for HTTPS listeners (DescribeSSLPolicies).
local SSL_POLICIES = {}
for _, n in ipairs{ "ELBSecurityPolicy-2016-08", "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", "ELBSecurityPolicy-TLS13-1-1-2021-06",
    "ELBSecurityPolicy-TLS13-1-0-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS-1-2-2017-01", "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
    "ELBSecurityPolicy-TLS-1-1-2017-01", "ELBSecurityPolicy-FS-2018-06",
    "ELBSecurityPolicy-FS-1-1-2019-08", "ELBSecurityPolicy-FS-1-2-2019-08",
    "ELBSecurityPolicy-FS-1-2-Res-2019-08", "ELBSecurityPolicy-FS-1-2-Res-2020-10",
    "ELBSecurityPolicy-2015-05", "ELBSecurityPolicy-TLS-1-0-2015-04" } do
  SSL_POLICIES[n] = true
end
-- The policy CreateListener uses for HTTPS when none is given.
local DEFAULT_SSL_POLICY = "ELBSecurityPolicy-2016-08"

-- Helpers -----------------------------------------------------------------------------

local function invalid(ctx, message) ctx:fail("ValidationError", message) end

local copy = records.copy

-- A canonical text of a value (sorted keys): "same settings" comparisons.
local function canon(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local x = v[k]
    if x == nil then x = v[tonumber(k)] end
    parts[#parts + 1] = k .. "=" .. canon(x)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function sorted_copy(list)
  local o = copy(list or {})
  table.sort(o)
  return o
end

-- 16 hex digits, the id part of every ELBv2 ARN.
local function hex16(ctx) return ctx:id(nil, 16) end

local next_seq = records.next_seq

local function state(ctx)
  local db = ctx.db
  db.load_balancers = db.load_balancers or {}
  db.target_groups = db.target_groups or {}
  db.listeners = db.listeners or {}
  db.rules = db.rules or {}
  return db
end

-- Records of `map` in creation order.
local function ordered(map)
  local out = {}
  for _, r in pairs(map) do out[#out + 1] = r end
  table.sort(out, function(a, b) return (a.seq or 0) < (b.seq or 0) end)
  return out
end

-- Paging with ELBv2's Marker/NextMarker (opaque to clients; an index here).
local function page(ctx, items, marker, size)
  local out, next_marker = records.page(items, marker, "m-", size or 400)
  if not out then invalid(ctx, "The marker '" .. marker .. "' is not valid.") end
  return out, next_marker
end

-- One page of the records in `list` for the request p (Marker, PageSize), each shown by
-- view(record); returns the views and the NextMarker.
local function page_views(ctx, list, p, view)
  local items, marker = page(ctx, list, p.Marker, p.PageSize)
  local out = {}
  for _, r in ipairs(items) do out[#out + 1] = view(r) end
  return out, marker
end

-- Names -------------------------------------------------------------------------------

-- ELBv2's rules for load balancer and target group names: at most 32 characters,
-- alphanumerics and hyphens, no hyphen at either end; a load balancer's name must not
-- start with "internal-" (that prefix marks internal load balancers' DNS names).
local function check_name(ctx, name, what)
  if #name > 32 then
    invalid(ctx, ("%s name '%s' cannot be longer than '32' characters"):format(what, name))
  end
  if #name == 0 or name:find("[^%w%-]") then
    invalid(ctx, ("%s name '%s' can only contain characters that are alphanumeric characters or "
      .. "hyphens(-)"):format(what, name))
  end
  if name:sub(1, 1) == "-" or name:sub(-1) == "-" then
    invalid(ctx, ("%s name '%s' cannot begin or end with '-' character"):format(what, name))
  end
  if what == "Load balancer" and name:sub(1, 9):lower() == "internal-" then
    invalid(ctx, ("Load balancer name '%s' cannot begin with 'internal-'"):format(name))
  end
end

-- Tags --------------------------------------------------------------------------------

-- Validates a Tags parameter: no key twice, at most 50 (per resource, after merging).
local function check_tags(ctx, tags)
  local seen = {}
  for _, t in ipairs(tags or {}) do
    if seen[t.Key] then ctx:fail("DuplicateTagKeys", ("Tag key '%s' is duplicated"):format(t.Key)) end
    seen[t.Key] = true
    if t.Key:sub(1, 4) == "aws:" then
      invalid(ctx, ("Tag keys starting with 'aws:' are reserved: '%s'"):format(t.Key))
    end
  end
end

local function merge_tags(ctx, rec, tags, arn)
  for _, t in ipairs(tags or {}) do
    local found = false
    for _, e in ipairs(rec.tags) do
      if e.Key == t.Key then e.Value = t.Value or ""; found = true end
    end
    if not found then rec.tags[#rec.tags + 1] = { Key = t.Key, Value = t.Value or "" } end
  end
  if #rec.tags > MAX_TAGS then
    ctx:fail("TooManyTags", ("The following resource has too many tags (limit %d): %s")
      :format(MAX_TAGS, arn))
  end
  table.sort(rec.tags, function(a, b) return a.Key < b.Key end)
end

-- Lookups -----------------------------------------------------------------------------

-- The record `arn` of `map`, or the error `code` with `message` (a format of the ARN);
-- a record created this instant is not visible yet (ctx:fresh).
local function lookup(ctx, map, arn, code, message)
  local r = map[arn]
  if not r or ctx:fresh(r) then ctx:fail(code, message:format(arn)) end
  return r
end

local function lb_of(ctx, db, arn)
  return lookup(ctx, db.load_balancers, arn, "LoadBalancerNotFound", "Load balancer '%s' not found")
end

local function tg_of(ctx, db, arn)
  return lookup(ctx, db.target_groups, arn, "TargetGroupNotFound", "Target groups '%s' not found")
end

local function listener_of(ctx, db, arn)
  return lookup(ctx, db.listeners, arn, "ListenerNotFound", "Listener '%s' not found")
end

-- Target group ARNs an action list forwards to.
local function forwarded_tgs(actions)
  local out, seen = {}, {}
  local function add(arn)
    if arn and not seen[arn] then seen[arn] = true; out[#out + 1] = arn end
  end
  for _, a in ipairs(actions or {}) do
    if a.Type == "forward" then
      add(a.TargetGroupArn)
      for _, t in ipairs(a.ForwardConfig and a.ForwardConfig.TargetGroups or {}) do add(t.TargetGroupArn) end
    end
  end
  return out
end

-- The load balancers whose listeners (default actions or rules) forward to target group
-- `arn`.
local function lbs_using(db, arn)
  local out, seen = {}, {}
  local function scan(lb_arn, actions)
    for _, t in ipairs(forwarded_tgs(actions)) do
      if t == arn and not seen[lb_arn] then
        seen[lb_arn] = true
        out[#out + 1] = lb_arn
      end
    end
  end
  for _, l in ipairs(ordered(db.listeners)) do scan(l.desc.LoadBalancerArn, l.desc.DefaultActions) end
  for _, r in ipairs(ordered(db.rules or {})) do
    local l = db.listeners[r.listener]
    if l then scan(l.desc.LoadBalancerArn, r.desc.Actions) end
  end
  return out
end

-- Output views ------------------------------------------------------------------------

local function lb_view(ctx, lb)
  local d = copy(lb.desc)
  d.State = { Code = ctx:now() < lb.active_at and "provisioning" or "active" }
  return d
end

local function tg_view(db, tg)
  local d = copy(tg.desc)
  d.LoadBalancerArns = lbs_using(db, d.TargetGroupArn)
  return d
end

local function attribute_list(defaults, values)
  local out = {}
  for _, kv in ipairs(defaults) do out[#out + 1] = { Key = kv[1], Value = values[kv[1]] } end
  return out
end

local function default_attributes(defaults)
  local out = {}
  for _, kv in ipairs(defaults) do out[kv[1]] = kv[2] end
  return out
end

-- Load balancers ----------------------------------------------------------------------

-- A load balancer's AvailabilityZones for its subnets, in zone order as ELBv2 lists them.
local function zones_of(subnets)
  local azs = {}
  for _, s in ipairs(subnets) do
    azs[#azs + 1] = { ZoneName = s.AvailabilityZone, SubnetId = s.SubnetId, LoadBalancerAddresses = {} }
  end
  table.sort(azs, function(a, b) return a.ZoneName < b.ZoneName end)
  return azs
end

-- Subnet ids of a request (Subnets or SubnetMappings, not both) resolved against EC2:
-- returns the subnets and their VPC. Enforces one subnet per AZ and, for ALBs, two AZs.
local function resolve_lb_subnets(ctx, p, lb_type)
  if p.Subnets and p.SubnetMappings then
    invalid(ctx, "You can specify subnets or subnet mappings, but not both")
  end
  local ids = {}
  for _, id in ipairs(p.Subnets or {}) do ids[#ids + 1] = id end
  for _, m in ipairs(p.SubnetMappings or {}) do ids[#ids + 1] = m.SubnetId end
  local subnets, azs, vpc = {}, {}, nil
  for _, id in ipairs(ids) do
    local s = ec2.subnet(ctx, id)
    if not s then ctx:fail("SubnetNotFound", ("The subnet ID '%s' is not valid"):format(id)) end
    if vpc and s.VpcId ~= vpc then
      ctx:fail("InvalidConfigurationRequest", "All subnets must belong to the same VPC")
    end
    vpc = s.VpcId
    if azs[s.AvailabilityZone] then
      ctx:fail("InvalidConfigurationRequest", "A load balancer cannot be attached to multiple "
        .. "subnets in the same Availability Zone")
    end
    azs[s.AvailabilityZone] = true
    subnets[#subnets + 1] = s
  end
  local nazs = 0
  for _ in pairs(azs) do nazs = nazs + 1 end
  if lb_type == "application" and nazs < 2 then
    invalid(ctx, "At least two subnets in two different Availability Zones must be specified")
  end
  if #subnets == 0 then invalid(ctx, "At least one subnet must be specified") end
  return subnets, vpc
end

-- Security groups of a load balancer: each must exist in EC2 and be in the VPC.
local function resolve_security_groups(ctx, ids, vpc)
  local out = {}
  for _, id in ipairs(ids) do
    local sg = ec2.security_group(ctx, id)
    if not sg or (vpc and sg.VpcId and sg.VpcId ~= vpc) then
      ctx:fail("InvalidSecurityGroup", ("Security group '%s' does not exist"):format(id))
    end
    out[#out + 1] = id
  end
  return out
end

-- A DNS name as ELBv2 forms them: ALB "<name>-<digits>.<region>.elb.amazonaws.com"
-- ("internal-" first for internal ones); NLB "<name>-<hex>.elb.<region>.amazonaws.com".
local function dns_name(ctx, name, lb_type, scheme)
  local prefix = scheme == "internal" and "internal-" or ""
  if lb_type == "network" then
    return ("%s%s-%s.elb.%s.amazonaws.com"):format(prefix, name, hex16(ctx), ctx.region)
  end
  local digits = tostring(tonumber(ctx:id(nil, 8), 16) % 9000000000 + 1000000000)
  return ("%s%s-%s.%s.elb.amazonaws.com"):format(prefix, name, digits, ctx.region)
end

-- The settings that make two CreateLoadBalancer calls "the same" (AWS answers the
-- existing load balancer then).
local function lb_settings(d)
  local subnets = {}
  for _, z in ipairs(d.AvailabilityZones) do subnets[#subnets + 1] = z.SubnetId end
  table.sort(subnets)
  return canon{ d.Type, d.Scheme, d.IpAddressType, subnets, sorted_copy(d.SecurityGroups) }
end

-- CreateLoadBalancer and CreateTargetGroup are idempotent by name: the same settings answer
-- the existing resource (its tags merged in); other settings are the Duplicate* error.
-- Returns the existing record, or nil when the name is free.
local function same_named(ctx, records, name_key, name, settings, desc, code, what, tags, arn_key)
  for _, other in pairs(records) do
    if other.desc[name_key] == name then
      if settings(other.desc) ~= settings(desc) then
        ctx:fail(code, ("%s with the same name '%s' exists, but with different settings")
          :format(what, name))
      end
      merge_tags(ctx, other, tags, other.desc[arn_key])
      return other
    end
  end
  return nil
end

function M.CreateLoadBalancer(ctx, p)
  local db = state(ctx)
  local lb_type = p.Type or "application"
  if lb_type == "gateway" then
    invalid(ctx, "The fo simulator does not simulate Gateway Load Balancers")
  end
  check_name(ctx, p.Name, "Load balancer")
  check_tags(ctx, p.Tags)
  local scheme = p.Scheme or "internet-facing"
  local subnets, vpc = resolve_lb_subnets(ctx, p, lb_type)
  if scheme == "internet-facing" and ec2.has_internet_gateway(ctx, vpc) == false then
    ctx:fail("InvalidSubnet", ("VPC %s has no internet gateway"):format(vpc))
  end
  local sgs
  if p.SecurityGroups and #p.SecurityGroups > 0 then
    sgs = resolve_security_groups(ctx, p.SecurityGroups, vpc)
  elseif lb_type == "application" then
    -- an ALB without security groups gets its VPC's default group
    local default = ec2.default_security_group(ctx, vpc)
    sgs = default and { default.GroupId } or {}
  end
  local azs = zones_of(subnets)
  local desc = { Type = lb_type, Scheme = scheme, IpAddressType = p.IpAddressType or "ipv4",
    AvailabilityZones = azs, SecurityGroups = sgs }

  local same = same_named(ctx, db.load_balancers, "LoadBalancerName", p.Name, lb_settings, desc,
    "DuplicateLoadBalancerName", "A load balancer", p.Tags, "LoadBalancerArn")
  if same then return { LoadBalancers = { lb_view(ctx, same) } } end

  desc.LoadBalancerArn = ctx:arn(("loadbalancer/%s/%s/%s"):format(TYPE_PATH[lb_type], p.Name, hex16(ctx)))
  desc.DNSName = dns_name(ctx, p.Name, lb_type, scheme)
  desc.CanonicalHostedZoneId = elb_zones.canonical(lb_type, ctx.region)
  desc.CreatedTime = ctx:now()
  desc.LoadBalancerName = p.Name
  desc.VpcId = vpc
  desc.CustomerOwnedIpv4Pool = p.CustomerOwnedIpv4Pool
  local lb = { desc = desc, active_at = ctx:now() + provisioning_seconds(ctx),
    attributes = default_attributes(LB_ATTRIBUTES[lb_type]), tags = {}, seq = next_seq(db) }
  merge_tags(ctx, lb, p.Tags, desc.LoadBalancerArn)
  db.load_balancers[desc.LoadBalancerArn] = lb
  ctx:created(lb)
  require("fo.sim.failover").arm(ctx.sim) -- its metrics (fo.sim.metrics_plane)
  return { LoadBalancers = { lb_view(ctx, lb) } }
end

function M.DescribeLoadBalancers(ctx, p)
  local db = state(ctx)
  local list = {}
  local arns, names = p.LoadBalancerArns or {}, p.Names or {}
  if #arns > 0 and #names > 0 then
    invalid(ctx, "Load balancer names and load balancer ARNs cannot be specified at the same time")
  end
  if #arns > 0 then
    for _, arn in ipairs(arns) do
      local lb = db.load_balancers[arn]
      if not lb or ctx:fresh(lb) then
        ctx:fail("LoadBalancerNotFound", "One or more load balancers not found")
      end
      list[#list + 1] = lb
    end
  elseif #names > 0 then
    local by_name, missing = {}, {}
    for _, lb in pairs(db.load_balancers) do
      if not ctx:fresh(lb) then by_name[lb.desc.LoadBalancerName] = lb end
    end
    for _, n in ipairs(names) do
      if by_name[n] then list[#list + 1] = by_name[n] else missing[#missing + 1] = n end
    end
    if #missing > 0 then
      ctx:fail("LoadBalancerNotFound", ("Load balancers '[%s]' not found"):format(table.concat(missing, ", ")))
    end
  else
    for _, lb in ipairs(ordered(db.load_balancers)) do
      if not ctx:fresh(lb) then list[#list + 1] = lb end
    end
  end
  local out, marker = page_views(ctx, list, p, function(lb) return lb_view(ctx, lb) end)
  return { LoadBalancers = out, NextMarker = marker }
end

function M.DescribeLoadBalancerAttributes(ctx, p)
  local db = state(ctx)
  local lb = lb_of(ctx, db, p.LoadBalancerArn)
  return { Attributes = attribute_list(LB_ATTRIBUTES[lb.desc.Type], lb.attributes) }
end

-- Checks every attribute first (a bad one changes nothing), then applies them all.
local function modify_attributes(ctx, attrs, store, known, checks, what)
  for _, a in ipairs(attrs) do
    local key, value = a.Key or "", a.Value or ""
    if store[key] == nil or not known[key] then
      invalid(ctx, ("%s attribute key '%s' is not recognized"):format(what, key))
    end
    if not checks[key](value) then
      invalid(ctx, ("%s attribute '%s' has an invalid value '%s'"):format(what, key, value))
    end
  end
  for _, a in ipairs(attrs) do store[a.Key] = a.Value or "" end
end

local function key_set(defaults)
  local out = {}
  for _, kv in ipairs(defaults) do out[kv[1]] = true end
  return out
end

function M.ModifyLoadBalancerAttributes(ctx, p)
  local db = state(ctx)
  local lb = lb_of(ctx, db, p.LoadBalancerArn)
  local defaults = LB_ATTRIBUTES[lb.desc.Type]
  for _, a in ipairs(p.Attributes) do
    if lb.desc.Type == "application" and a.Key == "load_balancing.cross_zone.enabled"
        and a.Value ~= "true" then
      -- ALBs always balance across zones
      ctx:fail("InvalidConfigurationRequest", "Cross-zone load balancing cannot be disabled for "
        .. "Application Load Balancers")
    end
    if a.Key == "access_logs.s3.enabled" and a.Value == "true" then
      local bucket = lb.attributes["access_logs.s3.bucket"]
      for _, b in ipairs(p.Attributes) do
        if b.Key == "access_logs.s3.bucket" then bucket = b.Value end
      end
      if bucket == nil or bucket == "" then
        invalid(ctx, "The value of 'access_logs.s3.bucket' cannot be empty when access logs are enabled")
      end
    end
  end
  local before = {}
  for k, v in pairs(lb.attributes) do before[k] = v end
  modify_attributes(ctx, p.Attributes, lb.attributes, key_set(defaults), ATTRIBUTE_CHECKS, "Load balancer")
  -- access logs turned on (or moved while on): ELB checks the bucket and writes its test
  -- object; a refusal changes nothing
  local touches_logs = false
  for _, a in ipairs(p.Attributes) do
    if a.Key:match("^access_logs%.s3%.") then touches_logs = true end
  end
  if touches_logs and lb.attributes["access_logs.s3.enabled"] == "true" then
    local ok, err = pcall(access_logs.enable, ctx, lb.desc.LoadBalancerName,
      lb.attributes["access_logs.s3.bucket"], lb.attributes["access_logs.s3.prefix"])
    if not ok then
      lb.attributes = before
      error(err, 0)
    end
  end
  return { Attributes = attribute_list(defaults, lb.attributes) }
end

function M.SetSecurityGroups(ctx, p)
  local db = state(ctx)
  local lb = lb_of(ctx, db, p.LoadBalancerArn)
  if lb.desc.Type == "application" and #p.SecurityGroups == 0 then
    invalid(ctx, "At least one security group must be specified for an Application Load Balancer")
  end
  lb.desc.SecurityGroups = resolve_security_groups(ctx, p.SecurityGroups, lb.desc.VpcId)
  return { SecurityGroupIds = copy(lb.desc.SecurityGroups) }
end

-- Changes an ALB's subnets in place (AWS allows it for Application Load Balancers): the
-- same rules as at creation (known subnets, one per AZ, at least two AZs), in its VPC.
function M.SetSubnets(ctx, p)
  local db = state(ctx)
  local lb = lb_of(ctx, db, p.LoadBalancerArn)
  if lb.desc.Type ~= "application" then
    invalid(ctx, "The fo simulator changes the subnets of Application Load Balancers only")
  end
  local subnets, vpc = resolve_lb_subnets(ctx, p, lb.desc.Type)
  if vpc ~= lb.desc.VpcId then
    ctx:fail("InvalidConfigurationRequest", ("The subnets must belong to the load balancer's VPC "
      .. "'%s'"):format(lb.desc.VpcId))
  end
  local azs = zones_of(subnets)
  lb.desc.AvailabilityZones = azs
  if p.IpAddressType then lb.desc.IpAddressType = p.IpAddressType end
  return { AvailabilityZones = copy(azs), IpAddressType = lb.desc.IpAddressType }
end

function M.DeleteLoadBalancer(ctx, p)
  local db = state(ctx)
  local lb = db.load_balancers[p.LoadBalancerArn]
  if not lb then return {} end -- deleting a load balancer that is gone succeeds
  if lb.attributes["deletion_protection.enabled"] == "true" then
    ctx:fail("OperationNotPermitted", ("Load balancer '%s' cannot be deleted because deletion "
      .. "protection is enabled"):format(p.LoadBalancerArn))
  end
  -- its listeners go with it, and their rules
  for arn, l in pairs(db.listeners) do
    if l.desc.LoadBalancerArn == p.LoadBalancerArn then db.listeners[arn] = nil end
  end
  for arn, r in pairs(db.rules) do
    if not db.listeners[r.listener] then db.rules[arn] = nil end
  end
  db.load_balancers[p.LoadBalancerArn] = nil
  return {}
end

-- Target groups -----------------------------------------------------------------------

-- Health check defaults of a target group by protocol (HTTP/HTTPS: "/" answering 200
-- every 30 s, 5 healthy / 2 unhealthy checks, 5 s timeout; TCP-family: 30 s, 10 s
-- timeout).
local function health_check_defaults(protocol)
  if protocol == "HTTP" or protocol == "HTTPS" then
    return { HealthCheckProtocol = protocol, HealthCheckPort = "traffic-port",
      HealthCheckEnabled = true, HealthCheckIntervalSeconds = 30, HealthCheckTimeoutSeconds = 5,
      HealthyThresholdCount = 5, UnhealthyThresholdCount = 2, HealthCheckPath = "/",
      Matcher = { HttpCode = "200" } }
  end
  return { HealthCheckProtocol = "TCP", HealthCheckPort = "traffic-port", HealthCheckEnabled = true,
    HealthCheckIntervalSeconds = 30, HealthCheckTimeoutSeconds = 10, HealthyThresholdCount = 5,
    UnhealthyThresholdCount = 2 }
end

local HEALTH_FIELDS = { "HealthCheckProtocol", "HealthCheckPort", "HealthCheckEnabled",
  "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
  "UnhealthyThresholdCount", "HealthCheckPath", "Matcher" }

-- An HTTP code matcher: "200", "200,202", "200-299", each code 200-499 (ALB).
local function valid_http_codes(s)
  for part in (s .. ","):gmatch("([^,]*),") do
    local lo, hi = part:match("^(%d%d%d)%-(%d%d%d)$")
    lo = tonumber(lo or part:match("^(%d%d%d)$"))
    hi = tonumber(hi) or lo
    if not lo or lo < 200 or hi > 499 or hi < lo then return false end
  end
  return true
end

-- Checks a target group's health check settings after defaults are applied.
local function check_health(ctx, d)
  if d.HealthCheckTimeoutSeconds >= d.HealthCheckIntervalSeconds then
    invalid(ctx, "Health check interval must be greater than the timeout.")
  end
  local port = d.HealthCheckPort
  if port ~= "traffic-port" then
    local n = math.tointeger(tonumber(port))
    if not n or n < 1 or n > 65535 then
      invalid(ctx, ("Health check port '%s' must be 'traffic-port' or a port between 1 and 65535")
        :format(port))
    end
  end
  if d.HealthCheckPath and d.HealthCheckPath:sub(1, 1) ~= "/" then
    invalid(ctx, ("Health check path '%s' must begin with a '/' character"):format(d.HealthCheckPath))
  end
  if d.Matcher and d.Matcher.HttpCode and not valid_http_codes(d.Matcher.HttpCode) then
    invalid(ctx, ("Health check matcher HTTP code '%s' must be within '200-499' range")
      :format(d.Matcher.HttpCode))
  end
  if (d.Protocol == "HTTP" or d.Protocol == "HTTPS")
      and not (d.HealthCheckProtocol == "HTTP" or d.HealthCheckProtocol == "HTTPS") then
    invalid(ctx, ("Health check protocol '%s' is not supported for target groups with the "
      .. "protocol '%s'"):format(d.HealthCheckProtocol, d.Protocol))
  end
end

-- The settings that make two CreateTargetGroup calls "the same".
local function tg_settings(d)
  local s = { d.Protocol, d.Port, d.VpcId, d.TargetType, d.ProtocolVersion, d.IpAddressType }
  for _, f in ipairs(HEALTH_FIELDS) do s[#s + 1] = canon(d[f]) end
  return canon(s)
end

function M.CreateTargetGroup(ctx, p)
  local db = state(ctx)
  check_name(ctx, p.Name, "Target group")
  check_tags(ctx, p.Tags)
  local target_type = p.TargetType or "instance"
  if target_type == "lambda" then
    invalid(ctx, "The fo simulator does not simulate Lambda target groups")
  end
  if not p.Protocol then invalid(ctx, "A protocol must be specified") end
  if not p.Port then invalid(ctx, "A port must be specified") end
  if not p.VpcId then invalid(ctx, "A VPC ID must be specified") end
  if not ec2.vpc(ctx, p.VpcId) then invalid(ctx, ("The VPC ID '%s' is not found"):format(p.VpcId)) end
  local d = health_check_defaults(p.Protocol)
  for _, f in ipairs(HEALTH_FIELDS) do
    if p[f] ~= nil then d[f] = copy(p[f]) end
  end
  d.TargetGroupName, d.Protocol, d.Port, d.VpcId, d.TargetType = p.Name, p.Protocol, p.Port,
    p.VpcId, target_type
  if p.Protocol == "HTTP" or p.Protocol == "HTTPS" then d.ProtocolVersion = p.ProtocolVersion or "HTTP1" end
  d.IpAddressType = p.IpAddressType or "ipv4"
  check_health(ctx, d)

  local same = same_named(ctx, db.target_groups, "TargetGroupName", p.Name, tg_settings, d,
    "DuplicateTargetGroupName", "A target group", p.Tags, "TargetGroupArn")
  if same then return { TargetGroups = { tg_view(db, same) } } end
  d.TargetGroupArn = ctx:arn(("targetgroup/%s/%s"):format(p.Name, hex16(ctx)))
  local tg = { desc = d, attributes = default_attributes(TG_ATTRIBUTES), tags = {}, seq = next_seq(db) }
  merge_tags(ctx, tg, p.Tags, d.TargetGroupArn)
  db.target_groups[d.TargetGroupArn] = tg
  ctx:created(tg)
  return { TargetGroups = { tg_view(db, tg) } }
end

function M.DescribeTargetGroups(ctx, p)
  local db = state(ctx)
  local list = {}
  local arns, names = p.TargetGroupArns or {}, p.Names or {}
  if #arns > 0 then
    for _, arn in ipairs(arns) do
      local tg = db.target_groups[arn]
      if not tg or ctx:fresh(tg) then ctx:fail("TargetGroupNotFound", "One or more target groups not found") end
      list[#list + 1] = tg
    end
  elseif #names > 0 then
    local by_name = {}
    for _, tg in pairs(db.target_groups) do
      if not ctx:fresh(tg) then by_name[tg.desc.TargetGroupName] = tg end
    end
    for _, n in ipairs(names) do
      if not by_name[n] then ctx:fail("TargetGroupNotFound", "One or more target groups not found") end
      list[#list + 1] = by_name[n]
    end
  else
    local using
    if p.LoadBalancerArn then
      lb_of(ctx, db, p.LoadBalancerArn)
      using = p.LoadBalancerArn
    end
    for _, tg in ipairs(ordered(db.target_groups)) do
      local ok = not ctx:fresh(tg)
      if ok and using then
        ok = false
        for _, a in ipairs(lbs_using(db, tg.desc.TargetGroupArn)) do
          if a == using then ok = true end
        end
      end
      if ok then list[#list + 1] = tg end
    end
  end
  local out, marker = page_views(ctx, list, p, function(tg) return tg_view(db, tg) end)
  return { TargetGroups = out, NextMarker = marker }
end

function M.ModifyTargetGroup(ctx, p)
  local db = state(ctx)
  local tg = tg_of(ctx, db, p.TargetGroupArn)
  local d = copy(tg.desc)
  for _, f in ipairs(HEALTH_FIELDS) do
    if p[f] ~= nil then d[f] = copy(p[f]) end
  end
  check_health(ctx, d)
  tg.desc = d
  return { TargetGroups = { tg_view(db, tg) } }
end

function M.DescribeTargetGroupAttributes(ctx, p)
  local db = state(ctx)
  local tg = tg_of(ctx, db, p.TargetGroupArn)
  return { Attributes = attribute_list(TG_ATTRIBUTES, tg.attributes) }
end

function M.ModifyTargetGroupAttributes(ctx, p)
  local db = state(ctx)
  local tg = tg_of(ctx, db, p.TargetGroupArn)
  modify_attributes(ctx, p.Attributes, tg.attributes, key_set(TG_ATTRIBUTES), TG_ATTRIBUTE_CHECKS,
    "Target group")
  return { Attributes = attribute_list(TG_ATTRIBUTES, tg.attributes) }
end

function M.DeleteTargetGroup(ctx, p)
  local db = state(ctx)
  if not db.target_groups[p.TargetGroupArn] then return {} end -- gone already: success
  if #lbs_using(db, p.TargetGroupArn) > 0 then
    ctx:fail("ResourceInUse", ("Target group '%s' is currently in use by a listener or a rule")
      :format(p.TargetGroupArn))
  end
  db.target_groups[p.TargetGroupArn] = nil
  return {}
end

-- Listeners ---------------------------------------------------------------------------

-- A listener's certificate is an ISSUED ACM certificate of this account and region
-- (fo.sim.acm.certs), or an IAM server certificate ARN of this account (not simulated: its
-- form is what the sim checks).
local function check_certificates(ctx, certs)
  for _, c in ipairs(certs or {}) do
    local arn = c.CertificateArn or ""
    local iam_account = arn:match("^arn:aws:iam::(%d+):server%-certificate/.+$")
    if not (require("fo.sim.acm.certs").usable(ctx, arn) or iam_account == ctx.account) then
      ctx:fail("CertificateNotFound", ("Certificate '%s' not found"):format(arn))
    end
  end
end

-- The redirect defaults AWS fills in (the original request's parts).
local REDIRECT_DEFAULTS = { Protocol = "#{protocol}", Port = "#{port}", Host = "#{host}",
  Path = "/#{path}", Query = "#{query}" }

-- Normalizes and validates a listener's DefaultActions as ELBv2 stores them: forward
-- actions carry both TargetGroupArn (single group) and ForwardConfig; redirects get
-- their defaults. Returns the actions and the target group ARNs they use.
local function normalize_actions(ctx, db, lb, protocol, actions, what)
  local out, terminal = {}, 0
  -- Order: required when there are several actions, each its own; they run lowest first
  -- and the forward/redirect/fixed-response one must come last.
  if #actions > 1 then
    local orders = {}
    for _, a in ipairs(actions) do
      if a.Order == nil then
        invalid(ctx, "The action order must be specified when there are multiple actions")
      end
      if orders[a.Order] then
        invalid(ctx, ("The action order '%d' is specified more than once"):format(a.Order))
      end
      orders[a.Order] = true
    end
    actions = copy(actions)
    table.sort(actions, function(a, b) return a.Order < b.Order end)
    local last = actions[#actions].Type
    if last ~= "forward" and last ~= "redirect" and last ~= "fixed-response" then
      ctx:fail("InvalidLoadBalancerAction", "The last action must be a forward, redirect or "
        .. "fixed-response action")
    end
  end
  for _, a in ipairs(actions) do
    local n = copy(a)
    if a.Type == "forward" then
      terminal = terminal + 1
      local tgs = {}
      if a.ForwardConfig and a.ForwardConfig.TargetGroups and #a.ForwardConfig.TargetGroups > 0 then
        for _, t in ipairs(a.ForwardConfig.TargetGroups) do
          tgs[#tgs + 1] = { TargetGroupArn = t.TargetGroupArn, Weight = t.Weight or 1 }
        end
        if a.TargetGroupArn and (#tgs ~= 1 or tgs[1].TargetGroupArn ~= a.TargetGroupArn) then
          invalid(ctx, "You cannot specify both a target group ARN and a forward config with "
            .. "different target groups")
        end
      elseif a.TargetGroupArn then
        tgs[1] = { TargetGroupArn = a.TargetGroupArn, Weight = 1 }
      else
        invalid(ctx, "A target group ARN must be specified for forward actions")
      end
      n.TargetGroupArn = #tgs == 1 and tgs[1].TargetGroupArn or nil
      n.ForwardConfig = { TargetGroups = tgs, TargetGroupStickinessConfig =
        copy(a.ForwardConfig and a.ForwardConfig.TargetGroupStickinessConfig) or { Enabled = false } }
      for _, t in ipairs(tgs) do
        local tg = db.target_groups[t.TargetGroupArn]
        if not tg then ctx:fail("TargetGroupNotFound", ("Target groups '%s' not found"):format(t.TargetGroupArn)) end
        if lb.desc.Type == "application" and not (tg.desc.Protocol == "HTTP" or tg.desc.Protocol == "HTTPS") then
          ctx:fail("IncompatibleProtocols", ("The target group '%s' uses the protocol '%s', which "
            .. "is not compatible with an Application Load Balancer"):format(t.TargetGroupArn, tg.desc.Protocol))
        end
        if tg.desc.VpcId ~= lb.desc.VpcId then
          ctx:fail("InvalidConfigurationRequest", ("The target group '%s' is not in the same VPC "
            .. "as the load balancer"):format(t.TargetGroupArn))
        end
        -- a target group serves one load balancer
        for _, other in ipairs(lbs_using(db, t.TargetGroupArn)) do
          if other ~= lb.desc.LoadBalancerArn then
            ctx:fail("TargetGroupAssociationLimit", ("The following target groups cannot be "
              .. "associated with more than one load balancer: %s"):format(t.TargetGroupArn))
          end
        end
      end
    elseif a.Type == "redirect" then
      terminal = terminal + 1
      if not a.RedirectConfig then invalid(ctx, "A redirect configuration must be specified for redirect actions") end
      for k, v in pairs(REDIRECT_DEFAULTS) do
        if n.RedirectConfig[k] == nil then n.RedirectConfig[k] = v end
      end
    elseif a.Type == "fixed-response" then
      terminal = terminal + 1
      if not a.FixedResponseConfig then
        invalid(ctx, "A fixed response configuration must be specified for fixed-response actions")
      end
    elseif protocol ~= "HTTPS" then
      ctx:fail("InvalidLoadBalancerAction", "Authenticate actions are supported only on HTTPS listeners")
    end
    out[#out + 1] = n
  end
  if terminal ~= 1 then
    ctx:fail("InvalidLoadBalancerAction", ("%s must include exactly one forward, redirect or "
      .. "fixed-response action"):format(what or "A listener's default actions"))
  end
  return out
end

-- Validates protocol/port/certificates/policy of a listener on `lb`; returns the
-- listener fields they set.
local function listener_settings(ctx, lb, protocol, port, certs, policy)
  if lb.desc.Type == "application" then
    if protocol ~= "HTTP" and protocol ~= "HTTPS" then
      ctx:fail("UnsupportedProtocol", ("Protocol '%s' is not supported for Application Load "
        .. "Balancers"):format(tostring(protocol)))
    end
  end
  if not port then invalid(ctx, "A listener port must be specified") end
  local s = { Protocol = protocol, Port = port }
  if protocol == "HTTPS" or protocol == "TLS" then
    if not certs or #certs == 0 then
      invalid(ctx, ("A certificate must be specified for %s listeners"):format(protocol))
    end
    check_certificates(ctx, certs)
    policy = policy or DEFAULT_SSL_POLICY
    if not SSL_POLICIES[policy] then ctx:fail("SSLPolicyNotFound", ("SSL policy '%s' not found"):format(policy)) end
    s.Certificates = {}
    for _, c in ipairs(certs) do s.Certificates[#s.Certificates + 1] = { CertificateArn = c.CertificateArn } end
    s.SslPolicy = policy
  elseif certs and #certs > 0 then
    invalid(ctx, ("Certificates cannot be specified for %s listeners"):format(protocol))
  end
  return s
end

local function listener_on_port(db, lb_arn, port, except)
  for arn, l in pairs(db.listeners) do
    if l.desc.LoadBalancerArn == lb_arn and l.desc.Port == port and arn ~= except then return l end
  end
  return nil
end

function M.CreateListener(ctx, p)
  local db = state(ctx)
  local lb = lb_of(ctx, db, p.LoadBalancerArn)
  check_tags(ctx, p.Tags)
  local protocol = p.Protocol or (lb.desc.Type == "application" and "HTTP" or "TCP")
  local s = listener_settings(ctx, lb, protocol, p.Port, p.Certificates, p.SslPolicy)
  local actions = normalize_actions(ctx, db, lb, protocol, p.DefaultActions)
  local desc = { LoadBalancerArn = lb.desc.LoadBalancerArn, Port = s.Port, Protocol = s.Protocol,
    Certificates = s.Certificates, SslPolicy = s.SslPolicy, DefaultActions = actions,
    AlpnPolicy = copy(p.AlpnPolicy) }
  local existing = listener_on_port(db, lb.desc.LoadBalancerArn, p.Port)
  if existing then
    local mine = copy(desc)
    mine.ListenerArn = existing.desc.ListenerArn
    if canon(mine) == canon(existing.desc) then
      -- idempotent: the same listener again answers the existing one
      merge_tags(ctx, existing, p.Tags, existing.desc.ListenerArn)
      return { Listeners = { copy(existing.desc) } }
    end
    ctx:fail("DuplicateListener", ("A listener already exists on this port for this load balancer "
      .. "'%s'"):format(lb.desc.LoadBalancerArn))
  end
  local lb_path = lb.desc.LoadBalancerArn:match(":loadbalancer/(.+)$")
  desc.ListenerArn = ctx:arn(("listener/%s/%s"):format(lb_path, hex16(ctx)))
  local l = { desc = desc, tags = {}, seq = next_seq(db) }
  merge_tags(ctx, l, p.Tags, desc.ListenerArn)
  db.listeners[desc.ListenerArn] = l
  ctx:created(l)
  return { Listeners = { copy(desc) } }
end

function M.DescribeListeners(ctx, p)
  local db = state(ctx)
  local list = {}
  if p.ListenerArns and #p.ListenerArns > 0 then
    for _, arn in ipairs(p.ListenerArns) do
      local l = db.listeners[arn]
      if not l or ctx:fresh(l) then ctx:fail("ListenerNotFound", "One or more listeners not found") end
      list[#list + 1] = l
    end
  elseif p.LoadBalancerArn then
    lb_of(ctx, db, p.LoadBalancerArn)
    for _, l in ipairs(ordered(db.listeners)) do
      if l.desc.LoadBalancerArn == p.LoadBalancerArn and not ctx:fresh(l) then list[#list + 1] = l end
    end
  else
    invalid(ctx, "You must specify either listener ARNs or a load balancer ARN")
  end
  local out, marker = page_views(ctx, list, p, function(l) return copy(l.desc) end)
  return { Listeners = out, NextMarker = marker }
end

function M.ModifyListener(ctx, p)
  local db = state(ctx)
  local l = listener_of(ctx, db, p.ListenerArn)
  local lb = lb_of(ctx, db, l.desc.LoadBalancerArn)
  local protocol = p.Protocol or l.desc.Protocol
  local port = p.Port or l.desc.Port
  local certs = p.Certificates
  if certs == nil and (protocol == "HTTPS" or protocol == "TLS") then certs = l.desc.Certificates end
  local policy = p.SslPolicy
  if policy == nil and protocol == l.desc.Protocol then policy = l.desc.SslPolicy end
  local s = listener_settings(ctx, lb, protocol, port, certs, policy)
  if listener_on_port(db, lb.desc.LoadBalancerArn, port, p.ListenerArn) then
    ctx:fail("DuplicateListener", ("A listener already exists on this port for this load balancer "
      .. "'%s'"):format(lb.desc.LoadBalancerArn))
  end
  local actions = l.desc.DefaultActions
  if p.DefaultActions then actions = normalize_actions(ctx, db, lb, protocol, p.DefaultActions) end
  l.desc.Protocol, l.desc.Port, l.desc.Certificates, l.desc.SslPolicy = s.Protocol, s.Port,
    s.Certificates, s.SslPolicy
  l.desc.DefaultActions = actions
  if p.AlpnPolicy then l.desc.AlpnPolicy = copy(p.AlpnPolicy) end
  return { Listeners = { copy(l.desc) } }
end

-- Rules: a listener's default rule (its DefaultActions, priority "default", not stored;
-- its ARN is stable, derived from the listener's) and the rules CreateRule adds, each
-- with a priority 1..50000 unique in its listener, conditions (fo.sim.elb_rules) and
-- actions. An Application Load Balancer has at most 100 rules besides the default ones.
local MAX_RULES = 100

local function default_rule(l)
  local crypto = require "fo.crypto"
  local arn = l.desc.ListenerArn:gsub(":listener/", ":listener-rule/", 1) .. "/"
    .. crypto.hex(crypto.sha256("default rule " .. l.desc.ListenerArn)):sub(1, 16)
  return { RuleArn = arn, Priority = "default", Conditions = {},
    Actions = copy(l.desc.DefaultActions), IsDefault = true }
end

-- The listener whose default rule `arn` is, or nil.
local function default_rule_owner(db, arn)
  local listener_arn = arn:gsub(":listener%-rule/", ":listener/", 1):gsub("/%x+$", "")
  local l = db.listeners[listener_arn]
  if l and default_rule(l).RuleArn == arn then return l end
  return nil
end

local function rule_not_found(ctx, arn)
  ctx:fail("RuleNotFound", ("One or more rules not found: '%s'"):format(arn))
end

-- The stored rules of listener `arn`, by priority.
local function rules_of(db, arn)
  local out = {}
  for _, r in pairs(db.rules) do
    if r.listener == arn then out[#out + 1] = r end
  end
  table.sort(out, function(a, b) return tonumber(a.desc.Priority) < tonumber(b.desc.Priority) end)
  return out
end

local function check_priority(ctx, priority)
  if math.type(priority) ~= "integer" or priority < 1 or priority > 50000 then
    invalid(ctx, ("Priority '%s' must be between 1 and 50000"):format(tostring(priority)))
  end
end

local function priority_in_use(ctx, priority)
  ctx:fail("PriorityInUse", ("Priority '%d' is currently in use"):format(priority))
end

local function conditions(ctx, list)
  return elb_rules.normalize(list, function(msg) invalid(ctx, msg) end)
end

-- Rule transforms (host header and URL rewrites) are not simulated: refused, not ignored.
local function no_transforms(ctx, p)
  if (p.Transforms and #p.Transforms > 0) or p.ResetTransforms then
    invalid(ctx, "Rule transforms are not supported by the simulator")
  end
end

function M.CreateRule(ctx, p)
  local db = state(ctx)
  local l = listener_of(ctx, db, p.ListenerArn)
  local lb = lb_of(ctx, db, l.desc.LoadBalancerArn)
  if lb.desc.Type ~= "application" then
    ctx:fail("UnsupportedProtocol", ("Listener rules are supported only on Application Load "
      .. "Balancers; listener '%s' uses protocol '%s'"):format(p.ListenerArn, l.desc.Protocol))
  end
  check_tags(ctx, p.Tags)
  no_transforms(ctx, p)
  check_priority(ctx, p.Priority)
  local conds = conditions(ctx, p.Conditions)
  local actions = normalize_actions(ctx, db, lb, l.desc.Protocol, p.Actions, "A rule's actions")
  for _, r in ipairs(rules_of(db, p.ListenerArn)) do
    if tonumber(r.desc.Priority) == p.Priority then priority_in_use(ctx, p.Priority) end
  end
  local n = 0
  for _, r in pairs(db.rules) do
    local owner = db.listeners[r.listener]
    if owner and owner.desc.LoadBalancerArn == lb.desc.LoadBalancerArn then n = n + 1 end
  end
  if n >= MAX_RULES then
    ctx:fail("TooManyRules", ("The load balancer '%s' already has the maximum of %d rules")
      :format(lb.desc.LoadBalancerArn, MAX_RULES))
  end
  local arn = p.ListenerArn:gsub(":listener/", ":listener-rule/", 1) .. "/" .. hex16(ctx)
  local desc = { RuleArn = arn, Priority = tostring(p.Priority), Conditions = conds,
    Actions = actions, IsDefault = false }
  local r = { desc = desc, listener = p.ListenerArn, tags = {}, seq = next_seq(db) }
  merge_tags(ctx, r, p.Tags, arn)
  db.rules[arn] = r
  ctx:created(r)
  return { Rules = { copy(desc) } }
end

function M.DescribeRules(ctx, p)
  local db = state(ctx)
  local rules = {}
  if p.RuleArns and #p.RuleArns > 0 then
    for _, arn in ipairs(p.RuleArns) do
      local r, owner = db.rules[arn], default_rule_owner(db, arn)
      if r and not ctx:fresh(r) then rules[#rules + 1] = copy(r.desc)
      elseif owner and not ctx:fresh(owner) then rules[#rules + 1] = default_rule(owner)
      else ctx:fail("RuleNotFound", "One or more rules not found") end
    end
  elseif p.ListenerArn then
    local l = db.listeners[p.ListenerArn]
    if not l or ctx:fresh(l) then ctx:fail("ListenerNotFound", "One or more listeners not found") end
    for _, r in ipairs(rules_of(db, p.ListenerArn)) do
      if not ctx:fresh(r) then rules[#rules + 1] = copy(r.desc) end
    end
    rules[#rules + 1] = default_rule(l)
  else
    invalid(ctx, "You must specify either listener ARN or rule ARNs")
  end
  local items, marker = page(ctx, rules, p.Marker, p.PageSize)
  return { Rules = items, NextMarker = marker }
end

-- ModifyRule: replaces the conditions and/or actions given. The default rule takes new
-- actions (they become its listener's default actions) but no conditions.
function M.ModifyRule(ctx, p)
  local db = state(ctx)
  local r, owner = db.rules[p.RuleArn], default_rule_owner(db, p.RuleArn)
  if (not r or ctx:fresh(r)) and not owner then rule_not_found(ctx, p.RuleArn) end
  local l = owner or listener_of(ctx, db, r.listener)
  local lb = lb_of(ctx, db, l.desc.LoadBalancerArn)
  no_transforms(ctx, p)
  if owner then
    if p.Conditions and #p.Conditions > 0 then
      ctx:fail("OperationNotPermitted", ("The conditions of default rule '%s' cannot be "
        .. "modified"):format(p.RuleArn))
    end
    if p.Actions then
      l.desc.DefaultActions = normalize_actions(ctx, db, lb, l.desc.Protocol, p.Actions)
    end
    return { Rules = { default_rule(l) } }
  end
  local conds = p.Conditions and conditions(ctx, p.Conditions) or nil
  local actions = p.Actions
    and normalize_actions(ctx, db, lb, l.desc.Protocol, p.Actions, "A rule's actions") or nil
  if conds then r.desc.Conditions = conds end
  if actions then r.desc.Actions = actions end
  return { Rules = { copy(r.desc) } }
end

function M.DeleteRule(ctx, p)
  local db = state(ctx)
  if default_rule_owner(db, p.RuleArn) then
    ctx:fail("OperationNotPermitted", ("Default rule '%s' cannot be deleted"):format(p.RuleArn))
  end
  local r = db.rules[p.RuleArn]
  if not r or ctx:fresh(r) then rule_not_found(ctx, p.RuleArn) end
  db.rules[p.RuleArn] = nil
  return {}
end

-- SetRulePriorities: all or nothing; the new priorities may swap existing ones, but no
-- two rules of a listener may end up sharing one.
function M.SetRulePriorities(ctx, p)
  local db = state(ctx)
  local new = {}
  for _, pair in ipairs(p.RulePriorities) do
    if default_rule_owner(db, pair.RuleArn) then
      ctx:fail("OperationNotPermitted", ("The priority of default rule '%s' cannot be changed")
        :format(pair.RuleArn))
    end
    local r = db.rules[pair.RuleArn]
    if not r or ctx:fresh(r) then rule_not_found(ctx, pair.RuleArn) end
    check_priority(ctx, pair.Priority)
    new[pair.RuleArn] = pair.Priority
  end
  local taken = {}
  for arn, r in pairs(db.rules) do
    local prio = new[arn] or tonumber(r.desc.Priority)
    local key = r.listener .. "#" .. prio
    if taken[key] then priority_in_use(ctx, prio) end
    taken[key] = true
  end
  local out = {}
  for _, pair in ipairs(p.RulePriorities) do
    local r = db.rules[pair.RuleArn]
    r.desc.Priority = tostring(pair.Priority)
    out[#out + 1] = copy(r.desc)
  end
  return { Rules = out }
end

-- DescribeSSLPolicies: the predefined policies (SSL_POLICIES) with the TLS versions each
-- allows, as the ELB user guide lists them. Ciphers are not listed (see docs/simulator.md).
local TLS10, TLS11, TLS12, TLS13 = "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
local POLICY_PROTOCOLS = {
  ["ELBSecurityPolicy-2016-08"] = { TLS10, TLS11, TLS12 },
  ["ELBSecurityPolicy-TLS13-1-2-2021-06"] = { TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-2-Res-2021-06"] = { TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06"] = { TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06"] = { TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-1-2021-06"] = { TLS11, TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-0-2021-06"] = { TLS10, TLS11, TLS12, TLS13 },
  ["ELBSecurityPolicy-TLS13-1-3-2021-06"] = { TLS13 },
  ["ELBSecurityPolicy-TLS-1-2-2017-01"] = { TLS12 },
  ["ELBSecurityPolicy-TLS-1-2-Ext-2018-06"] = { TLS12 },
  ["ELBSecurityPolicy-TLS-1-1-2017-01"] = { TLS11, TLS12 },
  ["ELBSecurityPolicy-FS-2018-06"] = { TLS10, TLS11, TLS12 },
  ["ELBSecurityPolicy-FS-1-1-2019-08"] = { TLS11, TLS12 },
  ["ELBSecurityPolicy-FS-1-2-2019-08"] = { TLS12 },
  ["ELBSecurityPolicy-FS-1-2-Res-2019-08"] = { TLS12 },
  ["ELBSecurityPolicy-FS-1-2-Res-2020-10"] = { TLS12 },
  ["ELBSecurityPolicy-2015-05"] = { TLS10, TLS11, TLS12 },
  ["ELBSecurityPolicy-TLS-1-0-2015-04"] = { TLS10, TLS11, TLS12 },
}

function M.DescribeSSLPolicies(ctx, p)
  local names = {}
  if p.Names and #p.Names > 0 then
    for _, n in ipairs(p.Names) do
      if not SSL_POLICIES[n] then ctx:fail("SSLPolicyNotFound", "One or more ssl policies not found") end
      names[#names + 1] = n
    end
  else
    for n in pairs(SSL_POLICIES) do names[#names + 1] = n end
    table.sort(names)
  end
  if p.LoadBalancerType == "gateway" then names = {} end
  local list = {}
  for _, n in ipairs(names) do
    local protocols = {}
    for i, v in ipairs(POLICY_PROTOCOLS[n] or { TLS12 }) do protocols[i] = v end
    list[#list + 1] = { Name = n, SslProtocols = protocols,
      SupportedLoadBalancerTypes = { "application", "network" } }
  end
  local items, marker = page(ctx, list, p.Marker, p.PageSize)
  return { SslPolicies = items, NextMarker = marker }
end

function M.DeleteListener(ctx, p)
  local db = state(ctx)
  listener_of(ctx, db, p.ListenerArn)
  db.listeners[p.ListenerArn] = nil
  -- its rules go with it
  for arn, r in pairs(db.rules) do
    if r.listener == p.ListenerArn then db.rules[arn] = nil end
  end
  return {}
end

-- Tags on any resource ----------------------------------------------------------------

-- The record an ARN names, raising the NotFound of its kind.
local function resource_of(ctx, db, arn)
  if arn:find(":loadbalancer/", 1, true) then return lb_of(ctx, db, arn) end
  if arn:find(":targetgroup/", 1, true) then return tg_of(ctx, db, arn) end
  if arn:find(":listener/", 1, true) then return listener_of(ctx, db, arn) end
  if arn:find(":listener%-rule/") then
    local r = db.rules[arn]
    if not r or ctx:fresh(r) then ctx:fail("RuleNotFound", ("Rule '%s' not found"):format(arn)) end
    return r
  end
  invalid(ctx, ("'%s' is not a valid Elastic Load Balancing resource ARN"):format(arn))
end

function M.AddTags(ctx, p)
  local db = state(ctx)
  check_tags(ctx, p.Tags)
  local recs = {}
  for _, arn in ipairs(p.ResourceArns) do recs[#recs + 1] = resource_of(ctx, db, arn) end
  for k, rec in ipairs(recs) do merge_tags(ctx, rec, p.Tags, p.ResourceArns[k]) end
  return {}
end

function M.RemoveTags(ctx, p)
  local db = state(ctx)
  local drop = {}
  for _, k in ipairs(p.TagKeys) do drop[k] = true end
  for _, arn in ipairs(p.ResourceArns) do
    local rec = resource_of(ctx, db, arn)
    local keep = {}
    for _, t in ipairs(rec.tags) do
      if not drop[t.Key] then keep[#keep + 1] = t end
    end
    rec.tags = keep
  end
  return {}
end

function M.DescribeTags(ctx, p)
  local db = state(ctx)
  if #p.ResourceArns > 20 then
    invalid(ctx, "1 validation error detected: Value at 'resourceArns' failed to satisfy "
      .. "constraint: Member must have length less than or equal to 20")
  end
  local out = {}
  for _, arn in ipairs(p.ResourceArns) do
    local rec = resource_of(ctx, db, arn)
    -- an untagged resource is listed without Tags (the model's TagList has at least one)
    out[#out + 1] = { ResourceArn = arn, Tags = #rec.tags > 0 and copy(rec.tags) or nil }
  end
  return { TagDescriptions = out }
end

-- Target health -----------------------------------------------------------------------

-- Does a region outage make the group's targets unhealthy now? The ALB's own checks take
-- their time, as on AWS: a target turns unhealthy after UnhealthyThresholdCount failed
-- checks HealthCheckIntervalSeconds apart, and healthy again after HealthyThresholdCount
-- good ones once the region is back. (An outage of unknown start counts as long past.)
-- The same timing for any failure that is `on` now or was between `started` and `ended`.
local function noticed(ctx, tg, on, started, ended)
  local interval = tg.desc.HealthCheckIntervalSeconds or 30
  local down_after = (tg.desc.UnhealthyThresholdCount or 2) * interval
  if on then
    return started == nil or ctx:now() - started >= down_after
  end
  if not (started and ended) or ended - started < down_after then return false end
  return ctx:now() - ended < (tg.desc.HealthyThresholdCount or 5) * interval
end

local function outage_unhealthy(ctx, tg)
  local started, ended = ctx:outage_times(ctx.region)
  return noticed(ctx, tg, ctx:outage(ctx.region), started, ended)
end

-- A fault of the drill (fo.sim.knobs FAULTS) the group's checks have noticed on `inst`:
-- its AZ down (Target.Timeout) or its application answering 500 (ResponseCodeMismatch).
local function fault_unhealthy(ctx, tg, inst)
  local knobs = ctx.sim.knobs
  local az, started, ended = knobs:fault_of(ctx.region, "az")
  local last_az = az or (ended and knobs.faults[ctx.region].az_last)
  if (az or ended) and inst.AvailabilityZone == (az or last_az)
      and noticed(ctx, tg, az ~= nil, started, ended) then
    return { State = "unhealthy", Reason = "Target.Timeout", Description = "Request timed out" }
  end
  local app
  app, started, ended = knobs:fault_of(ctx.region, "app")
  if (app or ended) and noticed(ctx, tg, app ~= nil, started, ended) then
    return { State = "unhealthy", Reason = "Target.ResponseCodeMismatch",
      Description = "Health checks failed with these codes: [500]" }
  end
end

-- The health of one registered instance (on `port`), as the load balancer's health
-- checks would report it: through the security groups to what the instance's user data
-- serves (fo.sim.target_checks).
local function instance_health(ctx, db, tg, inst, port)
  if inst.LifecycleState ~= "InService" then
    return { State = "draining", Reason = "Target.DeregistrationInProgress",
      Description = "Target deregistration is in progress" }
  end
  local lbs = lbs_using(db, tg.desc.TargetGroupArn)
  if #lbs == 0 then
    return { State = "unused", Reason = "Target.NotInUse",
      Description = "Target group is not configured to receive traffic from the load balancer" }
  end
  if tg.desc.HealthCheckEnabled == false then
    return { State = "unavailable", Reason = "Target.HealthCheckDisabled",
      Description = "Health checks are disabled" }
  end
  if outage_unhealthy(ctx, tg) then
    -- nothing in the region answers its health checks
    return { State = "unhealthy", Reason = "Target.Timeout", Description = "Request timed out" }
  end
  local faulty = fault_unhealthy(ctx, tg, inst)
  if faulty then return faulty end
  if inst.HealthStatus ~= "Healthy" then
    return { State = "unhealthy", Reason = "Target.FailedHealthChecks",
      Description = "Health checks failed" }
  end
  local lb = db.load_balancers[lbs[1]]
  local failed = lb and target_checks.check(ctx, tg.desc, lb.desc, inst, port)
  if failed then return copy(failed) end
  return { State = "healthy" }
end

-- The instances registered in target group `arn`: those of the Auto Scaling groups of
-- this region that list it in TargetGroupARNs (terminated ones have left).
local function registered_instances(ctx, arn)
  local asdb = ctx:db_of("autoscaling")
  asg_state.settle(asdb, ctx:now(), asg_state.timing(ctx, "terminated_visible"))
  local out = {}
  local names = {}
  for name, g in pairs(asdb.groups or {}) do
    for _, t in ipairs(g.TargetGroupARNs or {}) do
      if t == arn then names[#names + 1] = name end
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    for _, inst in ipairs(asg_state.members(asdb, name)) do out[#out + 1] = inst end
  end
  return out
end

function M.DescribeTargetHealth(ctx, p)
  local db = state(ctx)
  local tg = tg_of(ctx, db, p.TargetGroupArn)
  local registered = registered_instances(ctx, p.TargetGroupArn)
  local port = tg.desc.Port
  local hc_port = tg.desc.HealthCheckPort == "traffic-port" and tostring(port) or tg.desc.HealthCheckPort
  local out = {}
  local function add(inst, target_port)
    out[#out + 1] = { Target = { Id = inst.InstanceId, Port = target_port or port },
      HealthCheckPort = hc_port,
      TargetHealth = instance_health(ctx, db, tg, inst, target_port or port) }
  end
  if p.Targets and #p.Targets > 0 then
    local by_id = {}
    for _, inst in ipairs(registered) do by_id[inst.InstanceId] = inst end
    for _, t in ipairs(p.Targets) do
      if not t.Id:match("^i%-%x+$") then
        ctx:fail("InvalidTarget", ("The following targets are not valid instances: '%s'"):format(t.Id))
      end
      local inst = by_id[t.Id]
      if inst and (t.Port == nil or t.Port == port) then
        add(inst, t.Port)
      else
        -- an instance no attached group holds (or not on that port) is not registered
        out[#out + 1] = { Target = { Id = t.Id, Port = t.Port or port }, HealthCheckPort = hc_port,
          TargetHealth = { State = "unused", Reason = "Target.NotRegistered",
            Description = "Target is not registered to the target group" } }
      end
    end
  else
    for _, inst in ipairs(registered) do add(inst) end
  end
  return { TargetHealthDescriptions = out }
end

return M
