-- Resource record sets of a hosted zone: the checks ChangeResourceRecordSets makes, its
-- atomic batches (every change is checked against the zone as the earlier changes of
-- the batch left it; one problem and nothing is applied), and ListResourceRecordSets'
-- order and paging. Messages are AWS's own wording (InvalidChangeBatch lists every
-- problem: "[Tried to create resource record set [name='a.example.com.', type='A'] but
-- it already exists]"; malformed record sets are InvalidInput "Invalid request: ...").
local names = require "fo.sim.route53.names"
local records = require "fo.sim.records"
local alias = require "fo.sim.route53.alias"

local M = {}

-- Members a record set of each routing policy carries; SetIdentifier requires one.
local POLICY = { "Weight", "Region", "Failover", "GeoLocation", "MultiValueAnswer",
  "CidrRoutingConfig", "GeoProximityLocation" }

--- The key of a record set in zone.records: name, type and set identifier.
function M.key(rr)
  return rr.Name .. "|" .. rr.Type .. "|" .. (rr.SetIdentifier or "")
end

local deep_copy = records.copy
M.copy = deep_copy

-- "[name='a.example.com.', type='A']" or with ", set-identifier='x'" as AWS writes it.
local function describe(rr)
  local s = ("[name='%s', type='%s'"):format(rr.Name, rr.Type)
  if rr.SetIdentifier then s = s .. (", set-identifier='%s'"):format(rr.SetIdentifier) end
  return s .. "]"
end

-- "Change with [Action=CREATE, Name=a.example.com., Type=A, SetIdentifier=null]"
local function change_ref(action, rr)
  return ("Change with [Action=%s, Name=%s, Type=%s, SetIdentifier=%s]"):format(action,
    rr.Name, rr.Type, rr.SetIdentifier or "null")
end

local function invalid_input(ctx, msg)
  ctx:fail("InvalidInput", "Invalid request: " .. msg, 400)
end

-- A record set as stored: names normalized; only the members it has.
local function normalize(rr)
  local out = deep_copy(rr)
  out.Name = names.fqdn(rr.Name)
  if out.AliasTarget then
    out.AliasTarget.DNSName = names.fqdn(out.AliasTarget.DNSName)
    out.AliasTarget.HostedZoneId = names.bare_id(out.AliasTarget.HostedZoneId)
  end
  if out.ResourceRecords and #out.ResourceRecords == 0 then out.ResourceRecords = nil end
  return out
end

local function ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, x in ipairs{ a, b, c, d } do
    if #x > 3 or tonumber(x) > 255 then return false end
  end
  return true
end

-- Record data problems, as AWS reports them ("Invalid Resource Record: 'FATAL problem:
-- ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with 'x''").
local function rdata_problem(rr)
  for _, r in ipairs(rr.ResourceRecords or {}) do
    local v = r.Value or ""
    if rr.Type == "A" and not ipv4(v) then
      return ("Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is "
        .. "not a valid IPv4 address) encountered with '%s''"):format(v)
    elseif rr.Type == "AAAA" and not (v:find(":") and v:match("^[%x:%.]+$")) then
      return ("Invalid Resource Record: 'FATAL problem: AAAARRDATAIllegalIPv6Address (Value "
        .. "is not a valid IPv6 address) encountered with '%s''"):format(v)
    elseif (rr.Type == "TXT" or rr.Type == "SPF") and not v:match('^".*"$') then
      return ("Invalid Resource Record: 'FATAL problem: InvalidCharacterString (Value should "
        .. "be enclosed in quotation marks) encountered with '%s''"):format(v)
    end
  end
  if rr.Type == "CNAME" and rr.ResourceRecords and #rr.ResourceRecords > 1 then
    return ("RRSet of type CNAME with DNS name %s has more than one value"):format(rr.Name)
  end
end

-- Shape checks AWS answers with InvalidInput before looking at the zone.
local function check_shape(ctx, action, rr)
  local alias = rr.AliasTarget ~= nil
  local plain = rr.TTL ~= nil or rr.ResourceRecords ~= nil
  local policy_of = {}
  for _, k in ipairs(POLICY) do
    if rr[k] ~= nil then policy_of[#policy_of + 1] = k end
  end
  if (alias and plain) or (not alias and not (rr.TTL ~= nil and rr.ResourceRecords ~= nil)
      and not rr.TrafficPolicyInstanceId) then
    invalid_input(ctx, ("Expected exactly one of [AliasTarget, all of [TTL, and "
      .. "ResourceRecords], or TrafficPolicyInstanceId], but found %s in %s")
      :format((alias and plain) and "more than one" or "none", change_ref(action, rr)))
  end
  if #policy_of > 0 and not rr.SetIdentifier then
    invalid_input(ctx, ("Missing field 'SetIdentifier' in %s"):format(change_ref(action, rr)))
  end
  if rr.SetIdentifier and #policy_of == 0 then
    invalid_input(ctx, ("Expected exactly one of [Weight, Region, Failover, GeoLocation, "
      .. "MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found none in %s")
      :format(change_ref(action, rr)))
  end
  if #policy_of > 1 then
    invalid_input(ctx, ("Expected exactly one of [Weight, Region, Failover, GeoLocation, "
      .. "MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found more than "
      .. "one in %s"):format(change_ref(action, rr)))
  end
  if rr.Weight ~= nil and (math.type(rr.Weight) ~= "integer" or rr.Weight < 0
      or rr.Weight > 255) then
    invalid_input(ctx, ("Weight must be between 0 and 255 in %s"):format(change_ref(action, rr)))
  end
  if rr.TTL ~= nil and (math.type(rr.TTL) ~= "integer" or rr.TTL < 0
      or rr.TTL > 2147483647) then
    invalid_input(ctx, ("TTL must be between 0 and 2147483647 in %s"):format(change_ref(action, rr)))
  end
end

-- Records equal as far as DELETE compares them (every member the caller sent).
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Conflicts of a new record with the others at its name (CNAME exclusivity, weighted and
-- non-weighted sets of one name and type).
local function conflict(records, rr, zone_name)
  if rr.Type == "CNAME" and rr.Name == zone_name then
    return ("RRSet of type CNAME with DNS name %s is not permitted at apex in zone %s")
      :format(rr.Name, zone_name)
  end
  for k, other in pairs(records) do
    if other.Name == rr.Name and k ~= M.key(rr) then
      if rr.Type == "CNAME" and other.Type ~= "CNAME" then
        return ("RRSet of type CNAME with DNS name %s is not permitted as it conflicts with "
          .. "other records with the same DNS name in zone %s"):format(rr.Name, zone_name)
      elseif other.Type == "CNAME" and rr.Type ~= "CNAME" then
        return ("RRSet of type %s with DNS name %s is not permitted because a conflicting "
          .. "RRSet of type  CNAME with the same DNS name already exists in zone %s")
          :format(rr.Type, rr.Name, zone_name)
      elseif other.Type == rr.Type and (other.SetIdentifier == nil) ~= (rr.SetIdentifier == nil) then
        return ("RRSet with DNS name %s, type %s%s cannot be created as %s with the same "
          .. "name and type"):format(rr.Name, rr.Type,
            rr.SetIdentifier and (", SetIdentifier %s"):format(rr.SetIdentifier) or "",
            rr.SetIdentifier and "a non-weighted set exists" or "weighted sets exist")
      elseif other.Type == rr.Type and other.Weight ~= nil and rr.SetIdentifier
          and rr.Weight == nil then
        return ("RRSet with DNS name %s, type %s, SetIdentifier %s cannot be created because "
          .. "other RRSets with the same name and type have a different routing policy")
          :format(rr.Name, rr.Type, rr.SetIdentifier)
      end
    end
  end
end

--- Checks and applies `changes` (ChangeBatch.Changes) to `zone` atomically. health_exists(id)
--- tells whether a health check exists. Raises InvalidInput / NoSuchHealthCheck /
--- InvalidChangeBatch (every problem of the batch, in `messages`) and changes nothing
--- then; otherwise replaces zone.records.
function M.apply(ctx, zone, changes, health_exists)
  local work = {}
  for k, v in pairs(zone.records) do work[k] = v end
  local problems = {}
  for _, ch in ipairs(changes) do
    local action = ch.Action
    local rr = normalize(ch.ResourceRecordSet)
    check_shape(ctx, action, rr)
    if rr.HealthCheckId and not health_exists(rr.HealthCheckId) then
      ctx:fail("NoSuchHealthCheck", ("No health check exists with the specified ID %s")
        :format(rr.HealthCheckId), 404)
    end
    -- (DELETE then CREATE of one record set in a batch is allowed: it was the way to
    -- change a record before UPSERT existed.)
    local key = M.key(rr)
    local problem
    if not names.in_zone(rr.Name, zone.Name) then
      problem = ("RRSet with DNS name %s is not permitted in zone %s"):format(rr.Name, zone.Name)
    else
      problem = rdata_problem(rr)
      if not problem and rr.AliasTarget and (action == "CREATE" or action == "UPSERT") then
        problem = alias.problem(ctx, zone, rr, work)
      end
    end
    if not problem then
      local apex_default = rr.Name == zone.Name and (rr.Type == "SOA" or rr.Type == "NS")
      if action == "CREATE" then
        if work[key] then
          problem = ("Tried to create resource record set %s but it already exists")
            :format(describe(rr))
        else
          problem = conflict(work, rr, zone.Name)
          if not problem then work[key] = rr end
        end
      elseif action == "DELETE" then
        if not work[key] then
          problem = ("Tried to delete resource record set %s but it was not found")
            :format(describe(rr))
        elseif not same(rr, work[key]) then
          problem = ("Tried to delete resource record set %s but the values provided do not "
            .. "match the current values"):format(describe(rr))
        elseif apex_default then
          problem = rr.Type == "SOA" and "A HostedZone must contain exactly one SOA record."
            or "A HostedZone must contain at least one NS record for the zone itself."
        else
          work[key] = nil
        end
      elseif action == "UPSERT" then
        problem = conflict(work, rr, zone.Name)
        if not problem then work[key] = rr end
      else
        invalid_input(ctx, ("Unknown action %s in %s"):format(tostring(action),
          change_ref(action, rr)))
      end
    end
    if problem then problems[#problems + 1] = problem end
  end
  if #problems > 0 then
    ctx:fail("InvalidChangeBatch", "[" .. table.concat(problems, ", ") .. "]", 400,
      { messages = problems })
  end
  zone.records = work
end

--- The zone's record sets in ListResourceRecordSets order: labels reversed, then type,
--- then set identifier.
function M.sorted(zone)
  local list = {}
  for _, rr in pairs(zone.records) do list[#list + 1] = rr end
  table.sort(list, function(a, b)
    local ka, kb = names.sort_key(a.Name), names.sort_key(b.Name)
    if ka ~= kb then return ka < kb end
    if a.Type ~= b.Type then return a.Type < b.Type end
    return (a.SetIdentifier or "") < (b.SetIdentifier or "")
  end)
  return list
end

--- Number of record sets in the zone (HostedZone.ResourceRecordSetCount).
function M.count(zone)
  local n = 0
  for _ in pairs(zone.records) do n = n + 1 end
  return n
end

--- True when the zone holds only its apex SOA and NS records (DeleteHostedZone's rule).
function M.only_defaults(zone)
  for _, rr in pairs(zone.records) do
    if not (rr.Name == zone.Name and (rr.Type == "SOA" or rr.Type == "NS")) then
      return false
    end
  end
  return true
end

--- One page of ListResourceRecordSets from the start position (name, type, identifier).
--- Returns the output table (MaxItems echoed as the string the model declares).
function M.page(zone, start_name, start_type, start_id, max_items)
  local list = M.sorted(zone)
  local i = 1
  if start_name then
    local sk = names.sort_key(names.fqdn(start_name))
    while list[i] do
      local rr = list[i]
      local k = names.sort_key(rr.Name)
      if k > sk then break end
      if k == sk then
        if not start_type or rr.Type > start_type then break end
        if rr.Type == start_type and (not start_id or (rr.SetIdentifier or "") >= start_id) then
          break
        end
      end
      i = i + 1
    end
  end
  local out = { ResourceRecordSets = {}, MaxItems = tostring(max_items), IsTruncated = false }
  for j = i, #list do
    if #out.ResourceRecordSets == max_items then
      local nx = list[j]
      out.IsTruncated = true
      out.NextRecordName, out.NextRecordType = nx.Name, nx.Type
      out.NextRecordIdentifier = nx.SetIdentifier
      break
    end
    out.ResourceRecordSets[#out.ResourceRecordSets + 1] = deep_copy(list[j])
  end
  return out
end

return M
