-- ACM resource type aws:acm:certificate: a public certificate validated by DNS in a
-- Route 53 zone of the stack.
--
-- Facts this file relies on (ACM API reference and user guide):
-- - RequestCertificate with ValidationMethod DNS answers an ARN at once; the validation
--   records (DomainValidationOptions[].ResourceRecord, a CNAME) appear in
--   DescribeCertificate a few seconds later, so they are polled for. The same
--   IdempotencyToken within an hour answers the same certificate: the create passes
--   ctx.token, so a retried call does not make a second one. Tags go in the request
--   (fo:token among them): adoption after a crash finds the certificate by its tags.
-- - The record of a name is the same for every certificate of that name in the account
--   (a wildcard shares its base name's): one record may serve several certificates, so
--   destroy removes a record only when it still holds this certificate's value and no
--   other certificate needs it, in any region the stack holds resources in (the trading
--   recipe's two regional certificates share theirs). So the certificate goes first and
--   its records after: two certificates of a name deleted together each see the other
--   still there or gone, never both there (which would leave the record, and the zone,
--   behind). Both may then remove the record: a DELETE that finds it gone has nothing left
--   to do. The records are kept as the output validation_records, so a delete retried
--   after the certificate went still removes them.
-- - ACM issues the certificate only when public DNS answers the record: the zone must be
--   delegated (NS records at its parent, or the registrar, naming its name servers). A
--   certificate still pending after 72 hours is VALIDATION_TIMED_OUT. fo waits a bounded
--   time (validation_timeout) and then says what is missing.
-- - DeleteCertificate refuses a certificate a load balancer listener uses
--   (ResourceInUseException); the engine deletes the listener first (it depends on arn).
-- - Names and the algorithm cannot change: a new certificate replaces the old one, created
--   before the old one is deleted (listeners move to the new ARN in between).
local common = require "fo.aws.resources.common"

local M = {}

local ROUTE53_REGION = "us-east-1"
local RECORD_TTL = 300
-- How long ACM may take to show the validation records (AWS: seconds).
local RECORDS_WAIT = 300

local function acm(ctx) return ctx:client("acm") end
local function r53(ctx) return ctx:client("route53", ROUTE53_REGION) end

local function bare_zone(id) return (tostring(id or ""):match("([^/]+)$")) end

local function fqdn(name)
  name = tostring(name):lower()
  if name:sub(-1) ~= "." then name = name .. "." end
  return name
end

-- ACM's certificate, or nil when it is gone.
local function describe(ctx, arn)
  local c = acm(ctx)
  local out = common.unless({ "ResourceNotFoundException" }, c.DescribeCertificate, c,
    { CertificateArn = arn })
  return out and out.Certificate
end

local function tags_of(ctx, arn)
  local c = acm(ctx)
  local out = common.unless({ "ResourceNotFoundException" }, c.ListTagsForCertificate, c,
    { CertificateArn = arn })
  return out and out.Tags or {}
end

-- The distinct validation records of certificate `cert` (nil while ACM has not made all).
local function records_of(cert)
  local out, seen = {}, {}
  for _, d in ipairs(cert.DomainValidationOptions or {}) do
    local rr = d.ResourceRecord
    if not rr then return nil end
    local name = fqdn(rr.Name)
    if not seen[name] then
      seen[name] = true
      out[#out + 1] = { Name = name, Type = rr.Type, Value = fqdn(rr.Value) }
    end
  end
  return out
end

-- The record set of `name`/`rtype` in zone `zone_id`, or nil.
local function record_set(ctx, zone_id, name, rtype)
  local out = r53(ctx):ListResourceRecordSets{ HostedZoneId = zone_id, StartRecordName = name,
    StartRecordType = rtype, MaxItems = "1" }
  local rr = out.ResourceRecordSets and out.ResourceRecordSets[1]
  if rr and fqdn(rr.Name) == name and rr.Type == rtype and not rr.SetIdentifier then return rr end
  return nil
end

local function value_of(rr)
  return rr and rr.ResourceRecords and rr.ResourceRecords[1] and fqdn(rr.ResourceRecords[1].Value)
end

local function change(ctx, zone_id, changes)
  local out = r53(ctx):ChangeResourceRecordSets{ HostedZoneId = zone_id,
    ChangeBatch = { Comment = "fo: ACM validation records", Changes = changes } }
  common.wait(ctx, r53(ctx), "ResourceRecordSetsChanged", { Id = out.ChangeInfo.Id }, 600)
end

-- Puts the validation records in the zone. A record set of the name that holds another
-- value was not made for this account's ACM: fo does not overwrite it. One already there, for
-- another certificate of the name, stays as it is.
local function put_records(ctx, zone_id, recs)
  local changes = {}
  for _, rr in ipairs(recs) do
    local existing = record_set(ctx, zone_id, rr.Name, rr.Type)
    if existing and value_of(existing) ~= rr.Value then
      common.conflict(ctx, ("a %s record %s in Route 53 zone %s with another value (%s)")
        :format(rr.Type, rr.Name, zone_id, tostring(value_of(existing))), rr.Name, nil)
    end
    if not existing then
      changes[#changes + 1] = { Action = "UPSERT", ResourceRecordSet = { Name = rr.Name,
        Type = rr.Type, TTL = RECORD_TTL, ResourceRecords = { { Value = rr.Value } } } }
    end
  end
  if #changes > 0 then change(ctx, zone_id, changes) end
end

-- Other certificates that need record `rr` (same name and value), in any region of the
-- stack and in us-east-1 (where CloudFront's certificates of the name live): the record of
-- a name is the same in every region of the account.
local function needed_elsewhere(ctx, arn, rr)
  local all = { "RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1",
    "EC_secp521r1" }
  local regions = ctx:stack_regions()
  local has_us_east_1 = false
  for _, r in ipairs(regions) do has_us_east_1 = has_us_east_1 or r == "us-east-1" end
  if not has_us_east_1 then regions[#regions + 1] = "us-east-1" end
  for _, region in ipairs(regions) do
    local c = ctx:client("acm", region)
    for s in c:items("ListCertificates", { Includes = { keyTypes = all } }) do
      if s.CertificateArn ~= arn and (s.Status == "ISSUED" or s.Status == "PENDING_VALIDATION") then
        local other = common.unless({ "ResourceNotFoundException" }, c.DescribeCertificate, c,
          { CertificateArn = s.CertificateArn })
        for _, o in ipairs(other and records_of(other.Certificate) or {}) do
          if o.Name == rr.Name and o.Value == rr.Value then return true end
        end
      end
    end
  end
  return false
end

-- Removes this certificate's records from the zone: only those that still hold its value
-- and that no other certificate needs.
local function remove_records(ctx, zone_id, arn, recs)
  local changes = {}
  for _, rr in ipairs(recs or {}) do
    local existing = record_set(ctx, zone_id, rr.Name, rr.Type)
    if existing and value_of(existing) == rr.Value and not needed_elsewhere(ctx, arn, rr) then
      changes[#changes + 1] = { Action = "DELETE", ResourceRecordSet = existing }
    end
  end
  if #changes == 0 then return end
  local ok, err = pcall(change, ctx, zone_id, changes)
  if ok then return end
  -- another certificate's delete (the other region's) removed a shared record meanwhile
  if type(err) == "table" and err.code == "InvalidChangeBatch" then
    local left = {}
    for _, ch in ipairs(changes) do
      local rr = ch.ResourceRecordSet
      local now = record_set(ctx, zone_id, fqdn(rr.Name), rr.Type)
      if now and value_of(now) == value_of(rr) then left[#left + 1] = ch end
    end
    if #left == 0 then return end
    if #left < #changes then return change(ctx, zone_id, left) end
  end
  error(err, 0)
end

local function zone_label(ctx, zone_id)
  local ok, out = pcall(function() return r53(ctx):GetHostedZone{ Id = zone_id } end)
  local name = ok and out.HostedZone.Name:gsub("%.$", "") or "?"
  local ns = ok and out.DelegationSet and out.DelegationSet.NameServers or {}
  return name, ns
end

-- Waits for ISSUED; raises what is missing when ACM does not get there in `seconds`.
local function wait_issued(ctx, arn, p, recs)
  local last
  local ok, err = pcall(common.poll, ctx, "ACM certificate " .. arn, p.validation_timeout, function()
    last = describe(ctx, arn)
    if not last then
      error(("ACM certificate %s is gone while fo waited for its validation"):format(arn), 0)
    end
    if last.Status == "ISSUED" then return true end
    if last.Status ~= "PENDING_VALIDATION" then
      error(("ACM certificate %s for %s is %s%s, not issued"):format(arn, p.domain_name,
        last.Status, last.FailureReason and (" (" .. last.FailureReason .. ")") or ""), 0)
    end
    return false
  end)
  if ok then return end
  if not (last and last.Status == "PENDING_VALIDATION") then error(err, 0) end
  local zone, ns = zone_label(ctx, p.validation_zone_id)
  local names = {}
  for _, rr in ipairs(recs) do names[#names + 1] = rr.Name .. " CNAME " .. rr.Value end
  error(("ACM certificate for %s is still PENDING_VALIDATION after %g s: the zone %s (%s) holds "
    .. "the validation record%s %s, but ACM cannot see %s, so the zone %s is not delegated (its "
    .. "parent zone or registrar must list its name servers %s). Delegate it, or leave https "
    .. "off"):format(p.domain_name, p.validation_timeout, zone, p.validation_zone_id,
    #recs > 1 and "s" or "", table.concat(names, ", "), #recs > 1 and "them" or "it", zone,
    table.concat(ns, ", ")), 0)
end

-- After RequestCertificate (or adoption): the records in the zone, then ISSUED. A failure
-- removes what this create made (the records it put, the certificate) and raises.
local function finish(ctx, p, arn)
  local cert = common.poll(ctx, "the validation records of ACM certificate " .. arn, RECORDS_WAIT,
    function()
      local c = common.retry(ctx, "not_found_after_create", function()
        local found = describe(ctx, arn)
        if not found then
          error(require("fo.aws.error").new{ code = "ResourceNotFoundException",
            message = arn .. " is not found yet" }, 0)
        end
        return found
      end)
      return records_of(c) and c
    end)
  local recs = records_of(cert)
  local ok, err = pcall(function()
    put_records(ctx, p.validation_zone_id, recs)
    wait_issued(ctx, arn, p, recs)
  end)
  if not ok then
    -- the certificate first, then every record of it no other certificate needs (not only
    -- those this create put: the other region's certificate may have put the shared one,
    -- and fail or go meanwhile, as delete explains)
    pcall(function() acm(ctx):DeleteCertificate{ CertificateArn = arn } end)
    pcall(remove_records, ctx, p.validation_zone_id, arn, recs)
    error(err, 0)
  end
  return { arn = arn, validation_records = recs }
end

local function sans_of(p)
  local out = {}
  for _, s in ipairs(p.subject_alternative_names or {}) do
    if s:lower() ~= p.domain_name:lower() then out[#out + 1] = s:lower() end
  end
  return out
end

local function check_name(v)
  return type(v) == "string" and #v >= 1 and #v <= 253
    and v:gsub("^%*%.", ""):match("^[%w%-]+%.[%w%-%.]+$") ~= nil,
    "a domain name (at most 253 characters; one leading *. for a wildcard)"
end

fo.type("aws:acm:certificate", {
  doc = "a public ACM certificate validated by DNS records fo puts in a Route 53 zone",
  schema = {
    properties = {
      domain_name = { type = "string", required = true, check = check_name },
      subject_alternative_names = { type = "list", default = {}, check = function(v)
        for _, s in ipairs(v) do
          local ok, why = check_name(s)
          if not ok then return false, why end
        end
        return #v <= 9, "at most 9 names besides domain_name (ACM's default quota: 10 names)"
      end },
      -- the Route 53 hosted zone (an aws:route53:zone's id) that answers for the names
      validation_zone_id = { type = "string", required = true },
      key_algorithm = { type = "string", default = "RSA_2048", check = function(v)
        return v == "RSA_2048" or v == "EC_prime256v1" or v == "EC_secp384r1",
          "RSA_2048, EC_prime256v1 or EC_secp384r1"
      end },
      -- seconds to wait for ACM to issue the certificate once the records are in the zone
      validation_timeout = { type = "integer", default = 1800, check = function(v)
        return v >= 1, "a number of seconds, 1 or more"
      end },
      tags = { type = "map", default = {} },
    },
    -- validation_records: the CNAMEs ACM validates by ({Name=, Type=, Value=}, distinct)
    outputs = { "arn", "validation_records" },
    replace_on = { "domain_name", "subject_alternative_names", "key_algorithm",
      "validation_zone_id" },
  },
  diff = common.diff({ "domain_name", "subject_alternative_names", "key_algorithm",
    "validation_zone_id" }, {
    domain_name = function(a, b) return a:lower() == b:lower() end,
    subject_alternative_names = function(a, b)
      return common.same_set(sans_of{ domain_name = "", subject_alternative_names = a },
        sans_of{ domain_name = "", subject_alternative_names = b })
    end,
    validation_zone_id = function(a, b) return bare_zone(a) == bare_zone(b) end,
  }),
  create = function(ctx, p)
    local sans = sans_of(p)
    local arn = acm(ctx):RequestCertificate{ DomainName = p.domain_name,
      SubjectAlternativeNames = #sans > 0 and { p.domain_name, table.unpack(sans) } or nil,
      ValidationMethod = "DNS", IdempotencyToken = ctx.token, KeyAlgorithm = p.key_algorithm,
      Tags = common.tag_list(ctx, p.tags) }.CertificateArn
    return arn, finish(ctx, p, arn)
  end,
  read = function(ctx, arn, props)
    local c = describe(ctx, arn)
    if not c then return nil end
    local sans = {}
    for _, s in ipairs(c.SubjectAlternativeNames or {}) do
      if s ~= c.DomainName then sans[#sans + 1] = s end
    end
    local declared = props.subject_alternative_names or {}
    return { arn = arn, validation_records = records_of(c) }, {
      domain_name = props.domain_name and props.domain_name:lower() == c.DomainName
        and props.domain_name or c.DomainName,
      subject_alternative_names = common.as_recorded(sans, declared, function(a, b)
        return common.same_set(a, sans_of{ domain_name = c.DomainName, subject_alternative_names = b })
      end),
      -- (the model's enum is RSA_2048; answers written RSA-2048 are the same algorithm)
      key_algorithm = (c.KeyAlgorithm or "RSA_2048"):gsub("%-", "_"),
      -- where the records went: nothing on ACM to compare
      validation_zone_id = props.validation_zone_id,
      validation_timeout = props.validation_timeout,
      tags = common.user_tags(tags_of(ctx, arn)),
    }
  end,
  update = function(ctx, arn, old, new, outputs)
    local set, del = common.tag_delta(old.tags, new.tags)
    local c = acm(ctx)
    if #set > 0 then c:AddTagsToCertificate{ CertificateArn = arn, Tags = set } end
    if #del > 0 then
      local keys = {}
      for i, k in ipairs(del) do keys[i] = { Key = k } end
      c:RemoveTagsFromCertificate{ CertificateArn = arn, Tags = keys }
    end
    return outputs
  end,
  delete = function(ctx, arn, props, outputs)
    local cert = describe(ctx, arn)
    local recs = cert and records_of(cert) or (outputs and outputs.validation_records)
    if cert then
      if not ctx:owns(tags_of(ctx, arn)) then
        error(("ACM certificate %s in %s does not carry this stack's tags (fo:stack, fo:name, "
          .. "fo:token): fo deletes only certificates its own create made. Check it, then "
          .. "remove it from the state or delete it yourself"):format(arn, ctx.region), 0)
      end
      common.unless({ "ResourceNotFoundException" }, acm(ctx).DeleteCertificate, acm(ctx),
        { CertificateArn = arn })
    end
    if props and props.validation_zone_id and recs then
      remove_records(ctx, props.validation_zone_id, arn, recs)
    end
  end,
  adopt = function(ctx, p)
    local all = { "RSA_2048", "EC_prime256v1", "EC_secp384r1" }
    for s in acm(ctx):items("ListCertificates", { Includes = { keyTypes = all } }) do
      if not ctx.known_ids[s.CertificateArn] and ctx:owns(tags_of(ctx, s.CertificateArn)) then
        return s.CertificateArn, finish(ctx, p, s.CertificateArn)
      end
    end
    return nil
  end,
})

return M
