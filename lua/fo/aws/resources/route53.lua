-- Route 53 resource types: aws:route53:zone (a public hosted zone), aws:route53:health_check
-- and aws:route53:record (one resource record set: plain or alias, simple or weighted).
--
-- Route 53 is global: every call goes to route53.amazonaws.com signed for us-east-1,
-- whatever the resource's region. Facts this file relies on (Route 53 API reference and
-- developer guide):
-- - CreateHostedZone and CreateHealthCheck take a CallerReference: ctx.token, which the
--   engine makes new for every create (URN, generation and a random nonce) and journals
--   with the intent, so a create after a rollback or a destroy never reuses one. That
--   matters: Route 53 refuses a reference it has seen forever (HostedZoneAlreadyExists, even
--   after that zone was deleted; a used health check reference with other settings, or of
--   a deleted check, is HealthCheckAlreadyExists). Adoption after an interrupted create
--   (the intent's token) lists zones or checks and matches the reference exactly. A fresh
--   reference makes a second zone of a name that has one: a public zone of that name this
--   create did not make is a conflict (a duplicate would silently split delegation).
-- - Zones and health checks cannot be tagged in the create call: ChangeTagsForResource
--   follows (at most 10 tags per call); their identity for adoption is the CallerReference.
-- - A health check's RequestInterval (10|30), Type and MeasureLatency cannot change after
--   creation (replace_on); the rest is UpdateHealthCheck with HealthCheckVersion.
-- - Record sets: UPSERT creates and updates, DELETE must name the current values exactly;
--   changes are PENDING until GetChange says INSYNC (waiter ResourceRecordSetsChanged).
--   A create finds no record set of its identity first (else a conflict): UPSERT would
--   overwrite one made outside the stack.
--   Identity: name + type + set identifier. Names are stored lower-case, fully qualified,
--   with "*" as "\052".
local common = require "fo.aws.resources.common"

local ROUTE53_REGION = "us-east-1" -- the signing region of the global endpoint

local function r53(ctx)
  return ctx:client("route53", ROUTE53_REGION)
end

-- How long a change may stay PENDING (AWS: usually well under a minute).
local CHANGE_WAIT = 600

local function bare_id(id)
  return (tostring(id or ""):match("([^/]+)$"))
end

--- A DNS name as Route 53 stores it: lower-case, fully qualified, "*" as "\052".
local function fqdn(name)
  name = tostring(name):lower():gsub("\\052", "*")
  if name:sub(-1) ~= "." then name = name .. "." end
  return name
end

-- The same name without the final dot, as declared names usually are.
local function short(name)
  return (fqdn(name):gsub("%.$", ""))
end

-- An alias target's DNS name compared loosely: case, final dot and the "dualstack."
-- prefix AWS may put in front of a load balancer's name do not count.
local function alias_name(name)
  return (fqdn(name):gsub("^dualstack%.", ""))
end

local function wait_change(ctx, change_info)
  if change_info and change_info.Id then
    common.wait(ctx, r53(ctx), "ResourceRecordSetsChanged", { Id = change_info.Id }, CHANGE_WAIT)
  end
end

-- Tags (zones and health checks) ----------------------------------------------------------

local function list_tags(ctx, rtype, id)
  return r53(ctx):ListTagsForResource{ ResourceType = rtype, ResourceId = id }
    .ResourceTagSet.Tags or {}
end

-- ChangeTagsForResource takes at most 10 tags to add and 10 keys to remove per call.
local function change_tags(ctx, rtype, id, add, remove)
  local client = r53(ctx)
  local i, j = 1, 1
  while i <= #add or j <= #remove do
    local p = { ResourceType = rtype, ResourceId = id }
    if i <= #add then p.AddTags = table.move(add, i, math.min(i + 9, #add), 1, {}) end
    if j <= #remove then p.RemoveTagKeys = table.move(remove, j, math.min(j + 9, #remove), 1, {}) end
    common.retry(ctx, "not_found_after_create", client.ChangeTagsForResource, client, p)
    i, j = i + 10, j + 10
  end
end

-- Tag changes of an update: the user's delta; fo's own tags go with any change, so a
-- resource adopted before its tags were written gets them back.
local function retag(ctx, rtype, id, old, new)
  local set, del = common.tag_delta(old, new)
  if #set == 0 and #del == 0 then return end
  local add = ctx:tag_list()
  for _, t in ipairs(set) do add[#add + 1] = t end
  change_tags(ctx, rtype, id, add, del)
end

-- True when a CallerReference is this create's (or, for adopt, the interrupted create's).
local function my_reference(ctx, ref)
  return ref == ctx.token
end

-- aws:route53:zone --------------------------------------------------------------------------

local function zone_outputs(out)
  local z = out.HostedZone
  local ns = {}
  for i, n in ipairs((out.DelegationSet or {}).NameServers or {}) do ns[i] = n end
  return { id = bare_id(z.Id), name = short(z.Name), name_servers = ns }
end

local function get_zone(ctx, id)
  local client = r53(ctx)
  return common.unless({ "NoSuchHostedZone" }, client.GetHostedZone, client, { Id = id })
end

local function find_zone_by_reference(ctx)
  for z in r53(ctx):items("ListHostedZones") do
    local id = bare_id(z.Id)
    if my_reference(ctx, z.CallerReference) and not ctx.known_ids[id] then return id end
  end
  return nil
end

-- The public zones named `name` (ListHostedZonesByName lists zones in name order from it).
local function public_zones_named(ctx, name)
  local client, want, out = r53(ctx), fqdn(name), {}
  local params = { DNSName = want }
  while true do
    local page = client:ListHostedZonesByName(params)
    for _, z in ipairs(page.HostedZones or {}) do
      if fqdn(z.Name) ~= want then return out end
      if not (z.Config or {}).PrivateZone then out[#out + 1] = z end
    end
    if not page.IsTruncated then return out end
    params = { DNSName = page.NextDNSName, HostedZoneId = page.NextHostedZoneId }
  end
end

fo.type("aws:route53:zone", {
  doc = "a public Route 53 hosted zone (CallerReference = the resource's token)",
  schema = {
    properties = {
      name = { type = "string", required = true },
      comment = { type = "string", default = "" },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "name", "name_servers" },
    replace_on = { "name" },
  },
  create = function(ctx, p)
    local client = r53(ctx)
    -- A fresh CallerReference makes another zone of the same name: two public zones of a
    -- name split its delegation, so one this create did not make (not its reference, not
    -- an instance the state records) is a conflict.
    for _, z in ipairs(public_zones_named(ctx, p.name)) do
      local id = bare_id(z.Id)
      if not my_reference(ctx, z.CallerReference) and not ctx.known_ids[id] then
        common.conflict(ctx, ("a public hosted zone named %q"):format(fqdn(p.name)), id,
          list_tags(ctx, "hostedzone", id))
      end
    end
    local out = client:CreateHostedZone{ Name = p.name, CallerReference = ctx.token,
      HostedZoneConfig = p.comment ~= "" and { Comment = p.comment } or nil }
    local id = bare_id(out.HostedZone.Id)
    common.made(client, id) -- (its record sets: common.fresh_slot)
    change_tags(ctx, "hostedzone", id, common.tag_list(ctx, p.tags), {})
    wait_change(ctx, out.ChangeInfo)
    return id, zone_outputs(out)
  end,
  read = function(ctx, id, props)
    local out = get_zone(ctx, id)
    if not out then return nil end
    local z = out.HostedZone
    local name = fqdn(props.name) == z.Name and props.name or short(z.Name)
    return zone_outputs(out), { name = name, comment = (z.Config or {}).Comment or "",
      tags = common.user_tags(list_tags(ctx, "hostedzone", id)) }
  end,
  update = function(ctx, id, old, new, outputs)
    if old.comment ~= new.comment then
      r53(ctx):UpdateHostedZoneComment{ Id = id,
        Comment = new.comment ~= "" and new.comment or nil }
    end
    retag(ctx, "hostedzone", id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id, props)
    local client = r53(ctx)
    local ok, err = pcall(client.DeleteHostedZone, client, { Id = id })
    if ok or common.is(err, "NoSuchHostedZone") then return end
    if common.is(err, "HostedZoneNotEmpty") then
      -- Records are resources of their own: name what is left so the user can act.
      local left = {}
      for rr in client:items("ListResourceRecordSets", { HostedZoneId = id }) do
        if not ((rr.Type == "SOA" or rr.Type == "NS") and fqdn(rr.Name) == fqdn(props.name)) then
          left[#left + 1] = ("%s %s%s"):format(rr.Name, rr.Type,
            rr.SetIdentifier and (" (" .. rr.SetIdentifier .. ")") or "")
        end
        if #left >= 10 then left[#left + 1] = "..." break end
      end
      error(("hosted zone %s still holds record sets fo does not delete with it: %s. Declare "
        .. "them as aws:route53:record resources (then removing them deletes them) or delete "
        .. "them by hand, and rerun"):format(id, table.concat(left, ", ")), 0)
    end
    error(err, 0)
  end,
  adopt = function(ctx)
    local id = find_zone_by_reference(ctx)
    if not id then return nil end
    local out = get_zone(ctx, id)
    if not out then return nil end
    return id, zone_outputs(out)
  end,
})

-- aws:route53:health_check ------------------------------------------------------------------

local HC_TYPES = { "HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP", "CALCULATED",
  "CLOUDWATCH_METRIC" }
-- Checks of other checks or of an alarm: no checker of their own (no interval, threshold).
local HC_AGGREGATE = { CALCULATED = true, CLOUDWATCH_METRIC = true }

local function default_port(t)
  if t == "HTTPS" or t == "HTTPS_STR_MATCH" then return 443 end
  if t == "HTTP" or t == "HTTP_STR_MATCH" then return 80 end
  return nil
end

local function default_sni(t)
  return t == "HTTPS" or t == "HTTPS_STR_MATCH"
end

local function hc_config(p)
  local aggregate = HC_AGGREGATE[p.type]
  local ai = p.alarm_identifier
  return { Type = p.type, FullyQualifiedDomainName = p.fqdn, IPAddress = p.ip_address,
    Port = p.port, ResourcePath = p.resource_path, SearchString = p.search_string,
    RequestInterval = not aggregate and p.request_interval or nil,
    FailureThreshold = not aggregate and p.failure_threshold or nil,
    MeasureLatency = not aggregate and p.measure_latency or nil, Regions = p.regions,
    Inverted = p.inverted, Disabled = p.disabled, EnableSNI = p.enable_sni,
    ChildHealthChecks = p.child_health_checks, HealthThreshold = p.health_threshold,
    AlarmIdentifier = ai and { Region = ai.region, Name = ai.name } or nil,
    InsufficientDataHealthStatus = p.insufficient_data_health_status }
end

local function get_hc(ctx, id)
  local client = r53(ctx)
  local out = common.unless({ "NoSuchHealthCheck" }, client.GetHealthCheck, client,
    { HealthCheckId = id })
  return out and out.HealthCheck
end

-- The properties a health check's configuration shows, in the declared form: values
-- AWS filled in by default (port, SNI) and what differs only by case or order are
-- reported as declared.
local function hc_observed(c, props)
  local o = { type = c.Type, ip_address = c.IPAddress, resource_path = c.ResourcePath,
    search_string = c.SearchString, request_interval = c.RequestInterval,
    failure_threshold = c.FailureThreshold, measure_latency = c.MeasureLatency,
    inverted = c.Inverted, disabled = c.Disabled }
  if c.FullyQualifiedDomainName then
    o.fqdn = (props.fqdn and props.fqdn:lower() == c.FullyQualifiedDomainName:lower())
      and props.fqdn or c.FullyQualifiedDomainName
  end
  if not (props.port == nil and c.Port == default_port(c.Type)) then o.port = c.Port end
  if not (props.enable_sni == nil and (c.EnableSNI or false) == default_sni(c.Type)) then
    o.enable_sni = c.EnableSNI
  end
  if c.Regions then o.regions = common.as_recorded(c.Regions, props.regions, common.same_set) end
  if HC_AGGREGATE[c.Type] then
    -- (no checker of their own: what Route 53 reports of these is not theirs to set)
    o.request_interval, o.failure_threshold = props.request_interval, props.failure_threshold
    o.measure_latency = props.measure_latency
  end
  if c.ChildHealthChecks then
    o.child_health_checks = common.as_recorded(c.ChildHealthChecks, props.child_health_checks,
      common.same_set)
  end
  o.health_threshold = c.HealthThreshold
  if c.AlarmIdentifier then
    o.alarm_identifier = { region = c.AlarmIdentifier.Region, name = c.AlarmIdentifier.Name }
  end
  o.insufficient_data_health_status = c.InsufficientDataHealthStatus
  return o
end

-- What UpdateHealthCheck can change (property → member), and what it can reset.
local HC_UPDATABLE = { fqdn = "FullyQualifiedDomainName", ip_address = "IPAddress",
  port = "Port", resource_path = "ResourcePath", search_string = "SearchString",
  failure_threshold = "FailureThreshold", inverted = "Inverted", disabled = "Disabled",
  enable_sni = "EnableSNI", regions = "Regions", child_health_checks = "ChildHealthChecks",
  health_threshold = "HealthThreshold",
  insufficient_data_health_status = "InsufficientDataHealthStatus" }
local HC_RESETTABLE = { fqdn = "FullyQualifiedDomainName", regions = "Regions",
  resource_path = "ResourcePath", child_health_checks = "ChildHealthChecks" }

local function hc_update_params(old, new)
  local p, any = {}, false
  for prop, member in pairs(HC_UPDATABLE) do
    if not common.deep_equal(old[prop], new[prop]) then
      if new[prop] == nil then
        if HC_RESETTABLE[prop] then
          p.ResetElements = p.ResetElements or {}
          p.ResetElements[#p.ResetElements + 1] = member
          any = true
        elseif prop == "port" then
          p.Port, any = default_port(new.type), true
        elseif prop == "enable_sni" then
          p.EnableSNI, any = default_sni(new.type), true
        end
      else
        p[member], any = new[prop], true
      end
    end
  end
  if p.ResetElements then table.sort(p.ResetElements) end
  return any and p or nil
end

fo.type("aws:route53:health_check", {
  doc = "a Route 53 health check of an endpoint (CallerReference = the resource's token)",
  schema = {
    properties = {
      type = { type = "string", default = "HTTP", enum = HC_TYPES },
      fqdn = { type = "string" },
      ip_address = { type = "string" },
      port = { type = "integer", check = function(v) return v >= 1 and v <= 65535, "1..65535" end },
      resource_path = { type = "string" },
      search_string = { type = "string" },
      request_interval = { type = "integer", default = 30,
        check = function(v) return v == 10 or v == 30, "10 or 30 (seconds)" end },
      failure_threshold = { type = "integer", default = 3,
        check = function(v) return v >= 1 and v <= 10, "1..10" end },
      measure_latency = { type = "boolean", default = false },
      regions = { type = "list", check = function(v) return #v >= 3, "at least 3 checker regions" end },
      inverted = { type = "boolean", default = false },
      disabled = { type = "boolean", default = false },
      enable_sni = { type = "boolean" },
      -- CALCULATED: healthy while at least health_threshold of the child checks are
      child_health_checks = { type = "list" },
      health_threshold = { type = "integer",
        check = function(v) return v >= 0 and v <= 256, "0..256" end },
      -- CLOUDWATCH_METRIC: healthy while the alarm { region =, name = } is OK
      alarm_identifier = { type = "map" },
      insufficient_data_health_status = { type = "string",
        enum = { "Healthy", "Unhealthy", "LastKnownStatus" } },
      tags = { type = "map", default = {} },
    },
    outputs = { "id" },
    -- Route 53 cannot change these after creation: a new health check.
    replace_on = { "type", "request_interval", "measure_latency", "alarm_identifier" },
  },
  create = function(ctx, p)
    local client = r53(ctx)
    local hc = client:CreateHealthCheck{ CallerReference = ctx.token,
      HealthCheckConfig = hc_config(p) }.HealthCheck
    change_tags(ctx, "healthcheck", hc.Id, common.tag_list(ctx, p.tags), {})
    return hc.Id, { id = hc.Id }
  end,
  read = function(ctx, id, props)
    local hc = get_hc(ctx, id)
    if not hc then return nil end
    local o = hc_observed(hc.HealthCheckConfig, props)
    o.tags = common.user_tags(list_tags(ctx, "healthcheck", id))
    return { id = id }, o
  end,
  update = function(ctx, id, old, new, outputs)
    local params = hc_update_params(old, new)
    if params then
      -- HealthCheckVersion guards against a concurrent update: read it, and on a mismatch
      -- read again (a few times).
      local client = r53(ctx)
      for attempt = 1, 3 do
        local hc = get_hc(ctx, id)
        if not hc then error(("health check %s no longer exists"):format(id), 0) end
        params.HealthCheckId, params.HealthCheckVersion = id, hc.HealthCheckVersion
        local ok, err = pcall(client.UpdateHealthCheck, client, params)
        if ok then break end
        if attempt == 3 or not common.is(err, "HealthCheckVersionMismatch") then error(err, 0) end
      end
    end
    retag(ctx, "healthcheck", id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    local client = r53(ctx)
    common.unless({ "NoSuchHealthCheck" }, client.DeleteHealthCheck, client, { HealthCheckId = id })
  end,
  adopt = function(ctx)
    for hc in r53(ctx):items("ListHealthChecks") do
      if my_reference(ctx, hc.CallerReference) and not ctx.known_ids[hc.Id] then
        return hc.Id, { id = hc.Id }
      end
    end
    return nil
  end,
})

-- aws:route53:record ------------------------------------------------------------------------

local RR_TYPES = { "A", "AAAA", "CAA", "CNAME", "DS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF",
  "SRV", "TXT" }

local function record_id(p)
  local id = ("%s_%s_%s"):format(bare_id(p.zone_id), short(p.name), p.type)
  if p.set_identifier then id = id .. "_" .. p.set_identifier end
  return id
end

-- The record set of the properties, as ChangeResourceRecordSets takes it.
local function rrset(p)
  local rr = { Name = fqdn(p.name), Type = p.type, SetIdentifier = p.set_identifier,
    Weight = p.weight, HealthCheckId = p.health_check_id }
  if p.alias then
    rr.AliasTarget = { DNSName = p.alias.dns_name, HostedZoneId = bare_id(p.alias.hosted_zone_id),
      EvaluateTargetHealth = p.alias.evaluate_target_health == true }
  else
    rr.TTL = p.ttl
    rr.ResourceRecords = {}
    for i, v in ipairs(p.records or {}) do rr.ResourceRecords[i] = { Value = v } end
  end
  return rr
end

-- The record set with this identity (name, type, set identifier) as Route 53 has it, or
-- nil (also when the zone is gone). ListResourceRecordSets starts at the name.
local function find_record(ctx, p)
  local client = r53(ctx)
  local name = fqdn(p.name)
  local out = common.unless({ "NoSuchHostedZone" }, client.ListResourceRecordSets, client, {
    HostedZoneId = bare_id(p.zone_id), StartRecordName = name, StartRecordType = p.type,
    StartRecordIdentifier = p.set_identifier, MaxItems = "10" })
  for _, rr in ipairs(out and out.ResourceRecordSets or {}) do
    if fqdn(rr.Name) == name and rr.Type == p.type and rr.SetIdentifier == p.set_identifier then
      return rr
    end
  end
  return nil
end

local function record_observed(rr, props)
  local o = { name = fqdn(rr.Name) == fqdn(props.name) and props.name or short(rr.Name),
    type = rr.Type, set_identifier = rr.SetIdentifier, weight = rr.Weight, ttl = rr.TTL,
    health_check_id = rr.HealthCheckId }
  if rr.AliasTarget then
    local a, pa = rr.AliasTarget, props.alias or {}
    o.alias = {
      dns_name = (pa.dns_name and alias_name(pa.dns_name) == alias_name(a.DNSName))
        and pa.dns_name or a.DNSName,
      hosted_zone_id = (pa.hosted_zone_id and bare_id(pa.hosted_zone_id) == a.HostedZoneId)
        and pa.hosted_zone_id or a.HostedZoneId,
      evaluate_target_health = a.EvaluateTargetHealth,
    }
  else
    local values = {}
    for i, r in ipairs(rr.ResourceRecords or {}) do values[i] = r.Value end
    o.records = common.as_recorded(values, props.records, common.same_set)
  end
  -- a property declared but absent now (alias ↔ records, weight dropped) shows as false
  -- so the drift is seen (nil would keep the recorded value)
  for _, k in ipairs{ "alias", "records", "ttl", "weight", "health_check_id" } do
    if props[k] ~= nil and o[k] == nil then o[k] = false end
  end
  return o
end

local function change(ctx, zone_id, action, rr)
  local out = r53(ctx):ChangeResourceRecordSets{ HostedZoneId = bare_id(zone_id),
    ChangeBatch = { Changes = { { Action = action, ResourceRecordSet = rr } } } }
  wait_change(ctx, out.ChangeInfo)
end

local function check_record(p)
  if p.alias and (p.ttl ~= nil or p.records ~= nil) then
    error(("aws:route53:record %s: an alias record has no ttl or records of its own (alias "
      .. "records inherit the target's TTL)"):format(short(p.name)), 0)
  end
  if not p.alias and (p.ttl == nil or p.records == nil or #p.records == 0) then
    error(("aws:route53:record %s: give ttl and records, or alias"):format(short(p.name)), 0)
  end
  if p.weight ~= nil and p.set_identifier == nil then
    error(("aws:route53:record %s: a weighted record needs a set_identifier")
      :format(short(p.name)), 0)
  end
end

local function record_outputs(p)
  return { fqdn = short(p.name), id = record_id(p) }
end

fo.type("aws:route53:record", {
  doc = "a Route 53 resource record set (plain or alias; simple or weighted)",
  schema = {
    properties = {
      zone_id = { type = "string", required = true },
      name = { type = "string", required = true },
      type = { type = "string", required = true, enum = RR_TYPES },
      set_identifier = { type = "string" },
      weight = { type = "integer", check = function(v) return v >= 0 and v <= 255, "0..255" end },
      ttl = { type = "integer", check = function(v) return v >= 0, "not negative" end },
      records = { type = "list" },
      alias = { type = "table", check = function(v)
        if type(v.dns_name) ~= "string" or type(v.hosted_zone_id) ~= "string" then
          return false, "alias needs dns_name and hosted_zone_id (the target's canonical "
            .. "hosted zone id, e.g. the load balancer's canonical_hosted_zone_id)"
        end
        return true
      end },
      health_check_id = { type = "string" },
    },
    outputs = { "id", "fqdn" },
    replace_on = { "zone_id", "name", "type", "set_identifier" },
  },
  create = function(ctx, p)
    check_record(p)
    -- UPSERT would overwrite a record set of this identity: one there is not this create's
    -- (record sets carry no tags; after a crash, adopt takes the interrupted one). A zone
    -- this run created holds only its own NS and SOA record sets and those this run wrote:
    -- other types are not read first there (common.fresh_slot).
    local own = p.type == "NS" or p.type == "SOA"
    if (own or not common.fresh_slot(r53(ctx), bare_id(p.zone_id), record_id(p)))
        and find_record(ctx, p) then
      common.conflict(ctx, ("a %s record set %q%s in hosted zone %s"):format(p.type,
        fqdn(p.name), p.set_identifier and (" (set identifier " .. p.set_identifier .. ")") or "",
        bare_id(p.zone_id)), record_id(p))
    end
    change(ctx, p.zone_id, "UPSERT", rrset(p))
    return record_id(p), record_outputs(p)
  end,
  read = function(ctx, _, props)
    local rr = find_record(ctx, props)
    if not rr then return nil end
    return record_outputs(props), record_observed(rr, props)
  end,
  update = function(ctx, _, _, new, outputs)
    check_record(new)
    change(ctx, new.zone_id, "UPSERT", rrset(new))
    return outputs
  end,
  delete = function(ctx, _, props)
    -- DELETE must carry the current values exactly: read them first; a change in between
    -- (or the record already gone) is seen by reading again.
    for attempt = 1, 3 do
      local rr = find_record(ctx, props)
      if not rr then return end
      local ok, err = pcall(change, ctx, props.zone_id, "DELETE", rr)
      if ok or common.is(err, "NoSuchHostedZone") then return end
      if attempt == 3 or not common.is(err, "InvalidChangeBatch") then error(err, 0) end
    end
  end,
  adopt = function(ctx, p)
    -- Record sets carry no tags: one with this identity is what the interrupted UPSERT
    -- wrote (an UPSERT would overwrite it anyway).
    local id = record_id(p)
    if ctx.known_ids[id] or not find_record(ctx, p) then return nil end
    return id, record_outputs(p)
  end,
})

return {
  fqdn = fqdn,
  bare_id = bare_id,
}
