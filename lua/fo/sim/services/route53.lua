-- Route 53 (global; state in region "global"): hosted zones with their SOA/NS records and
-- delegation set, record-set change batches and their changes (PENDING → INSYNC), health
-- checks, tags, and the API's rate limits. The record rules live in
-- fo.sim.route53.rrsets, health-check rules in fo.sim.route53.health; health checks are
-- evaluated on the virtual clock by fo.sim.failover.
local names = require "fo.sim.route53.names"
local rrsets = require "fo.sim.route53.rrsets"
local health = require "fo.sim.route53.health"
local throttle = require "fo.sim.route53.throttle"
local records = require "fo.sim.records"

local M = {}

--- Seconds of virtual time a change stays PENDING before GetChange answers INSYNC. AWS
--- takes up to about a minute; 0 keeps waiters fast (the change response itself always
--- says PENDING, as AWS's does). Tests raise it to watch the transition.
M.SYNC_SECONDS = 0

-- Default quotas (Route 53 "Quotas on API entities"): 500 hosted zones, 200 health checks.
M.MAX_ZONES = 500
M.MAX_HEALTH_CHECKS = 200

local ENDPOINT = "https://route53.amazonaws.com/2013-04-01/"
local DIGITS = "0123456789"

local function failover()
  return require "fo.sim.failover"
end

local function tables(db)
  db.zones = db.zones or {}
  db.zone_refs = db.zone_refs or {}
  db.changes = db.changes or {}
  db.health_checks = db.health_checks or {}
  db.hc_refs = db.hc_refs or {}
  db.seq = db.seq or 0
  return db
end

local next_seq = records.next_seq

-- Every handler: the rate limit first (a throttled call does nothing), then the tables.
local function begin(ctx)
  local db = tables(ctx.db)
  throttle.take(ctx, db, ctx.operation)
  return db
end

-- MaxItems is a string in Route 53's model.
local function max_items(ctx, v, default, limit)
  if v == nil then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 1 then
    ctx:fail("InvalidInput", ("1 validation error detected: Value '%s' at 'maxItems' failed "
      .. "to satisfy constraint: Member must be a positive integer"):format(tostring(v)), 400)
  end
  return math.min(n, limit)
end

-- Ids: zones Z + 20 and changes C + 20 upper-case letters and digits (AWS's current form,
-- e.g. Z0123456789ABCDEFGHIJ), health checks a lower-case UUID.
local function zone_id(ctx) return "Z" .. ctx:chars(20) end
local function change_id(ctx) return "C" .. ctx:chars(20) end
local function uuid(ctx)
  local h = ctx:chars(32, "0123456789abcdef")
  return ("%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
    ("89ab"):sub(tonumber(h:sub(17, 17), 16) % 4 + 1, tonumber(h:sub(17, 17), 16) % 4 + 1),
    h:sub(18, 20), h:sub(21, 32))
end

-- A change record; its ChangeInfo says PENDING until SYNC_SECONDS have passed.
local function new_change(ctx, db, comment)
  local c = { Id = change_id(ctx), SubmittedAt = ctx:now(), Comment = comment }
  c.insync_at = c.SubmittedAt + M.SYNC_SECONDS
  db.changes[c.Id] = c
  return c
end

local function change_info(ctx, c, fresh)
  local status = (not fresh and ctx:now() >= c.insync_at) and "INSYNC" or "PENDING"
  return { Id = "/change/" .. c.Id, Status = status, SubmittedAt = c.SubmittedAt,
    Comment = c.Comment }
end

-- (A resource inside its eventual-consistency window is not found yet, knob consistency_ms.)
local function get_zone(ctx, db, id, fresh_hides)
  local z = db.zones[names.bare_id(id)]
  if not z or (fresh_hides and ctx:fresh(z)) then
    ctx:fail("NoSuchHostedZone", ("No hosted zone found with ID: %s"):format(names.bare_id(id)), 404)
  end
  return z
end

local function get_hc(ctx, db, id, fresh_hides)
  local hc = db.health_checks[id]
  if not hc or (fresh_hides and ctx:fresh(hc)) then
    ctx:fail("NoSuchHealthCheck", ("A health check with id %s does not exist."):format(id), 404)
  end
  return hc
end

local function zone_output(z)
  return { Id = "/hostedzone/" .. z.Id, Name = z.Name, CallerReference = z.CallerReference,
    Config = { Comment = z.Comment, PrivateZone = false },
    ResourceRecordSetCount = rrsets.count(z) }
end

local function delegation(z)
  local ns = {}
  for i, n in ipairs(z.NameServers) do ns[i] = n end
  return { NameServers = ns }
end

-- Four name servers, one per Route 53 top-level domain, with the numbering AWS uses
-- (ns-0..511 .com, 512..1023 .net, 1024..1535 .org, 1536..2047 .co.uk; awsdns-00..63).
local function name_servers(ctx)
  local out = {}
  for i, tld in ipairs{ "com", "net", "org", "co.uk" } do
    local n = (i - 1) * 512 + tonumber(ctx:chars(3, DIGITS)) % 512
    out[i] = ("ns-%d.awsdns-%02d.%s"):format(n, tonumber(ctx:chars(2, DIGITS)) % 64, tld)
  end
  return out
end

-------------------------------------------------------------------------------
-- Hosted zones

function M.CreateHostedZone(ctx, p)
  local db = begin(ctx)
  local name = names.fqdn(p.Name)
  if not names.valid_domain(name) then
    ctx:fail("InvalidDomainName", ("%s is not a valid domain name"):format(p.Name), 400)
  end
  -- (a single label is a top-level domain: the API reference says no zone for one, and
  -- Route 53 answers it as reserved)
  if names.reserved(name) or not name:sub(1, -2):find(".", 1, true) then
    ctx:fail("InvalidDomainName", ("%s is reserved by AWS!"):format(name:sub(1, -2)), 400)
  end
  -- A CallerReference is used once, even after its zone was deleted (API reference:
  -- HostedZoneAlreadyExists "has already been created with the specified CallerReference").
  if db.zone_refs[p.CallerReference] then
    ctx:fail("HostedZoneAlreadyExists", ("A hosted zone has already been created with the "
      .. "specified caller reference."), 409)
  end
  local cfg = p.HostedZoneConfig or {}
  if cfg.PrivateZone or p.VPC then
    ctx:fail("InvalidInput", "Private hosted zones are not supported by the simulator", 400)
  end
  local count = 0
  for _ in pairs(db.zones) do count = count + 1 end
  if count >= M.MAX_ZONES then
    ctx:fail("TooManyHostedZones", "Limits Exceeded: MAX_HOSTED_ZONES_BY_OWNER - Cannot create "
      .. "more hosted zones.", 400)
  end
  local z = { Id = zone_id(ctx), Name = name, CallerReference = p.CallerReference,
    Comment = cfg.Comment, NameServers = name_servers(ctx), records = {},
    seq = next_seq(db), tags = {} }
  local ns_values = {}
  for i, n in ipairs(z.NameServers) do ns_values[i] = { Value = n .. "." } end
  local soa = { Name = name, Type = "SOA", TTL = 900, ResourceRecords = { { Value =
    z.NameServers[1] .. ". awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400" } } }
  local ns = { Name = name, Type = "NS", TTL = 172800, ResourceRecords = ns_values }
  z.records[rrsets.key(soa)] = soa
  z.records[rrsets.key(ns)] = ns
  db.zones[z.Id] = z
  db.zone_refs[p.CallerReference] = z.Id
  ctx:created(z)
  local c = new_change(ctx, db)
  return { HostedZone = zone_output(z), DelegationSet = delegation(z),
    ChangeInfo = change_info(ctx, c, true), Location = ENDPOINT .. "hostedzone/" .. z.Id }
end

function M.GetHostedZone(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.Id, true)
  return { HostedZone = zone_output(z), DelegationSet = delegation(z) }
end

local function zones_sorted(db, by_name)
  local list = {}
  for _, z in pairs(db.zones) do list[#list + 1] = z end
  table.sort(list, function(a, b)
    if by_name then
      local ka, kb = names.sort_key(a.Name), names.sort_key(b.Name)
      if ka ~= kb then return ka < kb end
      return a.Id < b.Id
    end
    return a.seq < b.seq
  end)
  return list
end

-- Route 53's Marker paging, shared by ListHostedZones and ListHealthChecks: the page of at
-- most n records of `list` (in listing order) from the one whose Id is p.Marker (read
-- through id_of when given: a zone marker may carry the "/hostedzone/" prefix), shown by
-- view, as out[key] with Marker, MaxItems, IsTruncated and NextMarker.
local function marker_page(ctx, p, list, n, key, view, id_of)
  local i = 1
  if p.Marker and p.Marker ~= "" then
    local marker = id_of and id_of(p.Marker) or p.Marker
    while list[i] and list[i].Id ~= marker do i = i + 1 end
    if not list[i] then
      ctx:fail("InvalidInput", ("Invalid marker: %s"):format(p.Marker), 400)
    end
  end
  local out = { [key] = {}, Marker = p.Marker or "", MaxItems = tostring(n),
    IsTruncated = false }
  local page = out[key]
  for j = i, #list do
    if #page == n then
      out.IsTruncated, out.NextMarker = true, list[j].Id
      break
    end
    page[#page + 1] = view(list[j])
  end
  return out
end

function M.ListHostedZones(ctx, p)
  local db = begin(ctx)
  if p.DelegationSetId then
    ctx:fail("NoSuchDelegationSet", ("Delegation set %s does not exist"):format(p.DelegationSetId), 400)
  end
  local n = max_items(ctx, p.MaxItems, 100, 100)
  return marker_page(ctx, p, zones_sorted(db), n, "HostedZones", zone_output, names.bare_id)
end

function M.ListHostedZonesByName(ctx, p)
  local db = begin(ctx)
  if p.HostedZoneId and not p.DNSName then
    ctx:fail("InvalidInput", "Invalid request: HostedZoneId may be specified only with DNSName", 400)
  end
  local n = max_items(ctx, p.MaxItems, 100, 100)
  local list = zones_sorted(db, true)
  local i = 1
  local dns = p.DNSName and names.fqdn(p.DNSName)
  if dns then
    local key, id = names.sort_key(dns), p.HostedZoneId and names.bare_id(p.HostedZoneId)
    while list[i] do
      local k = names.sort_key(list[i].Name)
      if k > key or (k == key and (not id or list[i].Id >= id)) then break end
      i = i + 1
    end
  end
  local out = { HostedZones = {}, DNSName = dns, HostedZoneId = p.HostedZoneId and
    names.bare_id(p.HostedZoneId), MaxItems = tostring(n), IsTruncated = false }
  for j = i, #list do
    if #out.HostedZones == n then
      out.IsTruncated, out.NextDNSName, out.NextHostedZoneId = true, list[j].Name, list[j].Id
      break
    end
    out.HostedZones[#out.HostedZones + 1] = zone_output(list[j])
  end
  return out
end

-- GetHostedZoneCount: the account's hosted zones (public and private; the simulator has
-- public ones only).
function M.GetHostedZoneCount(ctx)
  local db = begin(ctx)
  local n = 0
  for _ in pairs(db.zones) do n = n + 1 end
  return { HostedZoneCount = n }
end

-- UpdateHostedZoneComment: a missing or empty Comment removes the comment (API reference).
function M.UpdateHostedZoneComment(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.Id)
  z.Comment = (p.Comment ~= nil and p.Comment ~= "") and p.Comment or nil
  return { HostedZone = zone_output(z) }
end

function M.DeleteHostedZone(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.Id)
  if not rrsets.only_defaults(z) then
    ctx:fail("HostedZoneNotEmpty", "The specified hosted zone contains non-required resource "
      .. "record sets  and so cannot be deleted.", 400)
  end
  db.zones[z.Id] = nil
  local c = new_change(ctx, db)
  return { ChangeInfo = change_info(ctx, c, true) }
end

-------------------------------------------------------------------------------
-- Record sets and changes

function M.ChangeResourceRecordSets(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.HostedZoneId)
  local batch = p.ChangeBatch or {}
  if not batch.Changes or #batch.Changes == 0 then
    ctx:fail("InvalidInput", "Invalid request: ChangeBatch must contain at least one change", 400)
  end
  rrsets.apply(ctx, z, batch.Changes, function(id) return db.health_checks[id] ~= nil end)
  local c = new_change(ctx, db, batch.Comment)
  return { ChangeInfo = change_info(ctx, c, true) }
end

function M.ListResourceRecordSets(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.HostedZoneId)
  if p.StartRecordType and not p.StartRecordName then
    ctx:fail("InvalidInput", "The input is not valid: StartRecordType requires StartRecordName", 400)
  end
  if p.StartRecordIdentifier and not p.StartRecordType then
    ctx:fail("InvalidInput", "The input is not valid: StartRecordIdentifier requires "
      .. "StartRecordType", 400)
  end
  local n = max_items(ctx, p.MaxItems, 300, 300)
  return rrsets.page(z, p.StartRecordName, p.StartRecordType, p.StartRecordIdentifier, n)
end

function M.GetChange(ctx, p)
  local db = begin(ctx)
  local id = names.bare_id(p.Id)
  local c = db.changes[id]
  if not c then
    ctx:fail("NoSuchChange", ("A change with the specified change ID does not exist: %s")
      :format(id), 404)
  end
  return { ChangeInfo = change_info(ctx, c) }
end

-------------------------------------------------------------------------------
-- Health checks

local function hc_count(db)
  local n = 0
  for _ in pairs(db.health_checks) do n = n + 1 end
  return n
end

function M.CreateHealthCheck(ctx, p)
  local db = begin(ctx)
  local cfg = health.config(ctx, p.HealthCheckConfig)
  -- CallerReference (API reference, CreateHealthCheck): same reference and settings as an
  -- existing check → that check; different settings, or the reference of a deleted check
  -- → HealthCheckAlreadyExists.
  local ref = db.hc_refs[p.CallerReference]
  if ref then
    local existing = db.health_checks[ref]
    if existing and health.same(existing.HealthCheckConfig, cfg) then
      return { HealthCheck = health.output(existing),
        Location = ENDPOINT .. "healthcheck/" .. existing.Id }
    end
    ctx:fail("HealthCheckAlreadyExists", ("A health check has already been created with the "
      .. "specified caller reference: %s"):format(p.CallerReference), 409)
  end
  if hc_count(db) >= M.MAX_HEALTH_CHECKS then
    ctx:fail("TooManyHealthChecks", "Limits Exceeded: MAX_HEALTH_CHECKS_BY_OWNER - Cannot "
      .. "create more health checks.", 400)
  end
  local hc = { Id = uuid(ctx), CallerReference = p.CallerReference, HealthCheckConfig = cfg,
    HealthCheckVersion = 1, seq = next_seq(db), tags = {} }
  db.health_checks[hc.Id] = hc
  db.hc_refs[p.CallerReference] = hc.Id
  ctx:created(hc)
  failover().health_check_changed(ctx, hc)
  return { HealthCheck = health.output(hc), Location = ENDPOINT .. "healthcheck/" .. hc.Id }
end

function M.GetHealthCheck(ctx, p)
  local db = begin(ctx)
  local hc = get_hc(ctx, db, p.HealthCheckId, true)
  return { HealthCheck = health.output(hc) }
end

function M.UpdateHealthCheck(ctx, p)
  local db = begin(ctx)
  local hc = get_hc(ctx, db, p.HealthCheckId)
  health.update(ctx, hc, p)
  failover().health_check_changed(ctx, hc)
  return { HealthCheck = health.output(hc) }
end

function M.ListHealthChecks(ctx, p)
  local db = begin(ctx)
  local n = max_items(ctx, p.MaxItems, 100, 1000)
  local list = {}
  for _, hc in pairs(db.health_checks) do list[#list + 1] = hc end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  return marker_page(ctx, p, list, n, "HealthChecks", health.output)
end

-- The health check p names, for the two reads of its checkers' observations: Route 53
-- refuses them (naming the operation `op`) for checks that have no checkers of their own.
local function observed_hc(ctx, p, op)
  local db = begin(ctx)
  local hc = get_hc(ctx, db, p.HealthCheckId)
  local t = hc.HealthCheckConfig.Type
  if t == "CALCULATED" or t == "CLOUDWATCH_METRIC" or t == "RECOVERY_CONTROL" then
    ctx:fail("InvalidInput", ("%s is not supported for health checks of type %s"):format(op, t),
      400)
  end
  return hc
end

function M.GetHealthCheckStatus(ctx, p)
  local hc = observed_hc(ctx, p, "GetHealthCheckStatus")
  return { HealthCheckObservations = health.observations(hc, failover().last_result(ctx, hc)) }
end

-- GetHealthCheckLastFailureReason: per checker, the latest request that failed (its status
-- text and time, whatever Inverted makes of it); no observation before the first failure.
-- Like GetHealthCheckStatus, not for calculated, metric or recovery-control checks.
function M.GetHealthCheckLastFailureReason(ctx, p)
  local hc = observed_hc(ctx, p, "GetHealthCheckLastFailureReason")
  local last = hc.eval and hc.eval.last_failure
  return { HealthCheckObservations = last and health.observations(hc, last, "last_failure") or {} }
end

-- TestDNSAnswer: what one of the zone's name servers answers for RecordName and RecordType,
-- as Route 53 chooses among the record sets (health checks, weights, alias targets'
-- health: fo.sim.failover's resolve). An alias to a load balancer answers its addresses
-- (fo.sim.lb_front), an alias to a record set of the zone that record's values. ResolverIP
-- and the EDNS0 client subnet are accepted and change nothing (no geolocation or latency
-- records here).
function M.TestDNSAnswer(ctx, p)
  local db = begin(ctx)
  local z = get_zone(ctx, db, p.HostedZoneId)
  if p.EDNS0ClientSubnetMask ~= nil and p.EDNS0ClientSubnetIP == nil then
    ctx:fail("InvalidInput", "Invalid request: EDNS0ClientSubnetMask requires "
      .. "EDNS0ClientSubnetIP", 400)
  end
  local rtype = p.RecordType
  local data, rcode = {}, "NOERROR"
  local name = names.fqdn(p.RecordName)
  for _ = 1, 8 do -- alias chains inside the zone, bounded
    local r = failover().resolve(ctx.sim, name, rtype, { account = ctx.account, zone_id = z.Id })
    if r.rcode ~= "NOERROR" then
      rcode = r.rcode == "REFUSED" and "REFUSED" or r.rcode
      break
    end
    local at = r.record and r.record.AliasTarget
    if not at then
      data = r.answer or {}
      break
    end
    if at.DNSName:lower():find("%.elb%.amazonaws%.com%.?$") then
      if rtype == "A" then
        data = require("fo.sim.lb_front").addresses(ctx.sim, ctx.account, at.DNSName) or {}
      end
      break
    end
    name = names.fqdn(at.DNSName)
  end
  return { Nameserver = z.NameServers[1], RecordName = p.RecordName, RecordType = rtype,
    RecordData = data, ResponseCode = rcode, Protocol = "UDP" }
end

-- Current AWS lets a health check be deleted while records still name it (the API
-- reference warns that their routing then becomes unpredictable; HealthCheckInUse is no
-- longer returned for that).
function M.DeleteHealthCheck(ctx, p)
  local db = begin(ctx)
  local hc = get_hc(ctx, db, p.HealthCheckId)
  db.health_checks[hc.Id] = nil
  failover().health_check_changed(ctx, hc, true)
  return {}
end

-------------------------------------------------------------------------------
-- Tags

local function tagged(ctx, db, rtype, rid)
  if rtype == "healthcheck" then return get_hc(ctx, db, rid) end
  if rtype == "hostedzone" then return get_zone(ctx, db, rid) end
  ctx:fail("InvalidInput", ("Invalid resource type: %s"):format(tostring(rtype)), 400)
end

function M.ChangeTagsForResource(ctx, p)
  local db = begin(ctx)
  local res = tagged(ctx, db, p.ResourceType, p.ResourceId)
  if not p.AddTags and not p.RemoveTagKeys then
    ctx:fail("InvalidInput", "Invalid request: AddTags or RemoveTagKeys must be specified", 400)
  end
  local tags, n = {}, 0
  for k, v in pairs(res.tags or {}) do tags[k] = v end
  for _, k in ipairs(p.RemoveTagKeys or {}) do tags[k] = nil end
  for _, t in ipairs(p.AddTags or {}) do tags[t.Key] = t.Value or "" end
  for _ in pairs(tags) do n = n + 1 end
  if n > 50 then
    ctx:fail("InvalidInput", "Invalid request: a resource can have at most 50 tags", 400)
  end
  res.tags = tags
  return {}
end

function M.ListTagsForResource(ctx, p)
  local db = begin(ctx)
  local res = tagged(ctx, db, p.ResourceType, p.ResourceId)
  local keys = {}
  for k in pairs(res.tags or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local tags = {}
  for i, k in ipairs(keys) do tags[i] = { Key = k, Value = res.tags[k] } end
  return { ResourceTagSet = { ResourceType = p.ResourceType,
    ResourceId = names.bare_id(p.ResourceId), Tags = tags } }
end

return M
