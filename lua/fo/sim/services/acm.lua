-- ACM handlers: public certificates requested with DNS (or email) validation, their
-- validation records and status on the virtual clock (fo.sim.acm.certs: issued when public
-- DNS answers the records, timed out after 72 hours), listing with status and key-type
-- filters, tags, deletion refused while an ELBv2 listener uses the certificate, and
-- GetCertificate for an issued one. Imported and private-CA certificates, renewal, export
-- and revocation are not simulated (docs/simulator.md, "ACM").
local certs = require "fo.sim.acm.certs"
local records = require "fo.sim.records"
local crypto = require "fo.crypto"

local M = {}

-- The default quota "Domain names per ACM certificate" (the DomainName counts).
M.MAX_NAMES = 10
local MAX_TAGS = 50
local IDEMPOTENCY_SECONDS = 3600
local PUBLIC_KEY_ALGORITHMS = { RSA_2048 = true, EC_prime256v1 = true, EC_secp384r1 = true }
local STATUSES = { PENDING_VALIDATION = true, ISSUED = true, INACTIVE = true, EXPIRED = true,
  VALIDATION_TIMED_OUT = true, REVOKED = true, FAILED = true }

local function validation(ctx, msg) ctx:fail("ValidationException", msg) end

local function db(ctx) return certs.db(ctx.db) end

-- DomainNameString's rules: at most 253 characters, labels of letters, digits and inner
-- hyphens (1-63), at least two labels, at most one wildcard and only as the first label.
local function check_domain(ctx, name, member)
  local fail = function()
    validation(ctx, ("1 validation error detected: Value '%s' at '%s' failed to satisfy "
      .. "constraint: Member must satisfy regular expression pattern: "
      .. "(\\*\\.)?(((?!-)[A-Za-z0-9-]{0,62}[A-Za-z0-9])\\.)+((?!-)[A-Za-z0-9-]{1,62}[A-Za-z0-9])")
      :format(tostring(name), member))
  end
  if type(name) ~= "string" or #name < 1 or #name > 253 then
    validation(ctx, ("1 validation error detected: Value '%s' at '%s' failed to satisfy "
      .. "constraint: Member must have length less than or equal to 253"):format(tostring(name),
      member))
  end
  local rest = name:gsub("^%*%.", "")
  local labels = 0
  for label in (rest .. "."):gmatch("([^.]*)%.") do
    labels = labels + 1
    if #label < 1 or #label > 63 or label:find("[^%w%-]") or label:sub(1, 1) == "-"
        or label:sub(-1) == "-" then
      fail()
    end
  end
  if labels < 2 then fail() end
end

local function check_tags(ctx, tags)
  for _, t in ipairs(tags or {}) do
    if type(t.Key) ~= "string" or #t.Key < 1 or #t.Key > 128 or (t.Value and #t.Value > 256) then
      ctx:fail("InvalidTagException", ("Tag %s is not valid."):format(tostring(t.Key)))
    end
    if t.Key:lower():sub(1, 4) == "aws:" then
      ctx:fail("InvalidTagException", "Tags beginning with aws: are reserved.")
    end
  end
end

-- certificate/<UUID version 4>, as ACM's ids are
local function arn_of(ctx)
  local h = ctx:chars(32, "0123456789abcdef")
  local variant = ("89ab"):sub(tonumber(h:sub(17, 17), 16) % 4 + 1, tonumber(h:sub(17, 17), 16) % 4 + 1)
  return ctx:arn(("certificate/%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12),
    h:sub(14, 16), variant, h:sub(18, 20), h:sub(21, 32)))
end

-- The certificate `arn` names in this region, refreshed, or the error ACM answers.
local function get(ctx, arn)
  if type(arn) ~= "string" or not arn:match("^arn:aws[%w%-]*:acm:[%w%-]+:%d+:certificate/.+$") then
    ctx:fail("InvalidArnException", ("String '%s' is not a valid ARN."):format(tostring(arn)))
  end
  local c = db(ctx).certs[arn]
  if not c or ctx:fresh(c) then
    ctx:fail("ResourceNotFoundException", ("Could not find certificate %s."):format(arn))
  end
  if certs.refresh(ctx.sim, ctx.account, c, ctx:now()) then ctx.changed_state = true end
  return c
end

-- Load balancers of this account and region with a listener using `arn`.
local function in_use_by(ctx, arn)
  local elb = ctx:db_of("elbv2")
  local seen, out = {}, {}
  for _, l in pairs(elb.listeners or {}) do
    for _, c in ipairs(l.desc.Certificates or {}) do
      if c.CertificateArn == arn and not seen[l.desc.LoadBalancerArn] then
        seen[l.desc.LoadBalancerArn] = true
        out[#out + 1] = l.desc.LoadBalancerArn
      end
    end
  end
  table.sort(out)
  return out
end

function M.RequestCertificate(ctx, p)
  local d = db(ctx)
  check_domain(ctx, p.DomainName, "domainName")
  for i, san in ipairs(p.SubjectAlternativeNames or {}) do
    check_domain(ctx, san, ("subjectAlternativeNames.%d.member"):format(i))
  end
  local method = p.ValidationMethod or "EMAIL" -- ACM's default when none is given
  if method ~= "DNS" and method ~= "EMAIL" then
    validation(ctx, ("1 validation error detected: Value '%s' at 'validationMethod' failed to "
      .. "satisfy constraint: Member must satisfy enum value set: [EMAIL, DNS, HTTP]"):format(method))
  end
  if p.CertificateAuthorityArn then
    ctx:fail("InvalidParameterException", "Private certificates (CertificateAuthorityArn) are "
      .. "not supported by the fo simulator.")
  end
  local algorithm = p.KeyAlgorithm or "RSA_2048"
  if not PUBLIC_KEY_ALGORITHMS[algorithm] then
    ctx:fail("InvalidParameterException", ("KeyAlgorithm %s is not supported for public "
      .. "certificates: use RSA_2048, EC_prime256v1 or EC_secp384r1."):format(algorithm))
  end
  if p.IdempotencyToken ~= nil and not tostring(p.IdempotencyToken):match("^[%w_]+$") then
    validation(ctx, ("1 validation error detected: Value '%s' at 'idempotencyToken' failed to "
      .. "satisfy constraint: Member must satisfy regular expression pattern: \\w+")
      :format(tostring(p.IdempotencyToken)))
  end
  -- the same token within an hour is the same request (ACM answers the first certificate)
  local prior = p.IdempotencyToken and d.tokens[p.IdempotencyToken]
  if prior and ctx:now() - prior.t < IDEMPOTENCY_SECONDS and d.certs[prior.arn] then
    return { CertificateArn = prior.arn }
  end
  check_tags(ctx, p.Tags)
  if #(p.Tags or {}) > MAX_TAGS then
    ctx:fail("TooManyTagsException", "the TagSet exceeds the number of tags allowed (50).")
  end
  local domains, seen = {}, {}
  for _, n in ipairs{ p.DomainName, table.unpack(p.SubjectAlternativeNames or {}) } do
    local key = n:lower()
    if not seen[key] then seen[key] = true; domains[#domains + 1] = key end
  end
  if #domains > M.MAX_NAMES then
    ctx:fail("LimitExceededException", ("Cannot issue certificate with more than %d domain "
      .. "names (%d given); request a higher quota."):format(M.MAX_NAMES, #domains))
  end
  local validation_domain = {}
  for _, o in ipairs(p.DomainValidationOptions or {}) do
    if not seen[tostring(o.DomainName):lower()] then
      ctx:fail("InvalidDomainValidationOptionsException", ("DomainValidationOption %s is not "
        .. "one of the certificate's domain names."):format(tostring(o.DomainName)))
    end
    validation_domain[o.DomainName:lower()] = o.ValidationDomain:lower()
  end
  local seed = ctx.sim.store.data.seed
  local validations = {}
  for i, name in ipairs(domains) do
    local v = { DomainName = name, ValidationMethod = method,
      ValidationStatus = "PENDING_VALIDATION",
      ValidationDomain = validation_domain[name] or certs.validation_name(name) }
    if method == "DNS" then
      v.ResourceRecord = certs.record(seed, ctx.account, name)
    else
      v.ValidationEmails = {}
      for _, box in ipairs{ "admin", "administrator", "hostmaster", "postmaster", "webmaster" } do
        v.ValidationEmails[#v.ValidationEmails + 1] = box .. "@" .. certs.validation_name(v.ValidationDomain)
      end
    end
    validations[i] = v
  end
  local arn = arn_of(ctx)
  local tags = {}
  for i, t in ipairs(p.Tags or {}) do tags[i] = { Key = t.Key, Value = t.Value } end
  local cert = { CertificateArn = arn, DomainName = p.DomainName:lower(), domains = domains,
    ValidationMethod = method, validations = validations, Status = "PENDING_VALIDATION",
    CreatedAt = ctx:now(), KeyAlgorithm = algorithm, Type = "AMAZON_ISSUED",
    Options = { CertificateTransparencyLoggingPreference = p.Options
      and p.Options.CertificateTransparencyLoggingPreference or "ENABLED" },
    Serial = ctx:chars(32, "0123456789abcdef"):gsub("(%x%x)", "%1:"):sub(1, -2),
    tags = tags, seq = records.next_seq(d) }
  d.certs[arn] = ctx:created(cert)
  if p.IdempotencyToken then d.tokens[p.IdempotencyToken] = { arn = arn, t = ctx:now() } end
  return { CertificateArn = arn }
end

local function detail(ctx, c)
  local show_records = ctx:now() >= c.CreatedAt + certs.RECORD_SECONDS
  local dvo = {}
  for i, v in ipairs(c.validations) do
    local o = records.copy(v)
    if not show_records then o.ResourceRecord = nil end
    dvo[i] = o
  end
  local issued = c.Status == "ISSUED"
  local rsa = c.KeyAlgorithm:sub(1, 3) == "RSA"
  return {
    CertificateArn = c.CertificateArn, DomainName = c.DomainName,
    SubjectAlternativeNames = records.copy(c.domains), DomainValidationOptions = dvo,
    Serial = issued and c.Serial or nil, Subject = "CN=" .. c.DomainName,
    Issuer = issued and "Amazon" or nil, CreatedAt = c.CreatedAt, IssuedAt = c.IssuedAt,
    Status = c.Status, NotBefore = c.NotBefore, NotAfter = c.NotAfter,
    KeyAlgorithm = c.KeyAlgorithm,
    SignatureAlgorithm = rsa and "SHA256WITHRSA" or "SHA256WITHECDSA",
    InUseBy = in_use_by(ctx, c.CertificateArn), Type = c.Type,
    KeyUsages = issued and { { Name = "DIGITAL_SIGNATURE" }, { Name = "KEY_ENCIPHERMENT" } } or nil,
    ExtendedKeyUsages = issued and {
      { Name = "TLS_WEB_SERVER_AUTHENTICATION", OID = "1.3.6.1.5.5.7.3.1" },
      { Name = "TLS_WEB_CLIENT_AUTHENTICATION", OID = "1.3.6.1.5.5.7.3.2" } } or nil,
    RenewalEligibility = "INELIGIBLE", Options = records.copy(c.Options),
  }
end

function M.DescribeCertificate(ctx, p)
  return { Certificate = detail(ctx, get(ctx, p.CertificateArn)) }
end

function M.ListCertificates(ctx, p)
  local d = db(ctx)
  local statuses
  for _, s in ipairs(p.CertificateStatuses or {}) do
    if not STATUSES[s] then
      validation(ctx, ("1 validation error detected: Value '[%s]' at 'certificateStatuses' "
        .. "failed to satisfy constraint: Member must satisfy enum value set"):format(s))
    end
    statuses = statuses or {}
    statuses[s] = true
  end
  -- without Includes.keyTypes ACM lists RSA_2048 certificates only
  local key_types = { RSA_2048 = true }
  if p.Includes and p.Includes.keyTypes then
    key_types = {}
    for _, k in ipairs(p.Includes.keyTypes) do key_types[k] = true end
  end
  local list = {}
  for _, c in pairs(d.certs) do
    if certs.refresh(ctx.sim, ctx.account, c, ctx:now()) then ctx.changed_state = true end
    if (not statuses or statuses[c.Status]) and key_types[c.KeyAlgorithm] then
      list[#list + 1] = c
    end
  end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  local size = p.MaxItems or 1000
  local page, next_token = records.page(list, p.NextToken, "acm-", size)
  if not page then
    ctx:fail("InvalidArgsException", ("The NextToken %s is not valid."):format(tostring(p.NextToken)))
  end
  local out = {}
  for i, c in ipairs(page) do
    local used = #in_use_by(ctx, c.CertificateArn) > 0
    out[i] = { CertificateArn = c.CertificateArn, DomainName = c.DomainName,
      SubjectAlternativeNameSummaries = records.copy(c.domains),
      HasAdditionalSubjectAlternativeNames = false, Status = c.Status, Type = c.Type,
      KeyAlgorithm = c.KeyAlgorithm, InUse = used,
      CreatedAt = c.CreatedAt, IssuedAt = c.IssuedAt, NotBefore = c.NotBefore,
      NotAfter = c.NotAfter, RenewalEligibility = "INELIGIBLE", Exported = false }
  end
  return { CertificateSummaryList = out, NextToken = next_token }
end

function M.DeleteCertificate(ctx, p)
  local c = get(ctx, p.CertificateArn)
  if #in_use_by(ctx, c.CertificateArn) > 0 then
    ctx:fail("ResourceInUseException", ("Certificate %s in account %s is in use.")
      :format(c.CertificateArn, ctx.account))
  end
  db(ctx).certs[c.CertificateArn] = nil
  return {}
end

function M.GetCertificate(ctx, p)
  local c = get(ctx, p.CertificateArn)
  if c.Status ~= "ISSUED" then
    ctx:fail("RequestInProgressException", ("Certificate %s is %s: it has not been issued.")
      :format(c.CertificateArn, c.Status))
  end
  -- a PEM envelope around bytes derived from the certificate (the simulator signs nothing)
  local body = crypto.base64_encode(crypto.sha256(c.CertificateArn) .. c.DomainName)
  local pem = "-----BEGIN CERTIFICATE-----\n" .. body .. "\n-----END CERTIFICATE-----\n"
  return { Certificate = pem, CertificateChain = pem }
end

function M.AddTagsToCertificate(ctx, p)
  local c = get(ctx, p.CertificateArn)
  check_tags(ctx, p.Tags)
  local merged = records.copy(c.tags)
  for _, t in ipairs(p.Tags or {}) do
    local found = false
    for _, x in ipairs(merged) do
      if x.Key == t.Key then x.Value, found = t.Value, true end
    end
    if not found then merged[#merged + 1] = { Key = t.Key, Value = t.Value } end
  end
  if #merged > MAX_TAGS then
    ctx:fail("TooManyTagsException", "the TagSet exceeds the number of tags allowed (50).")
  end
  c.tags = merged
  return {}
end

function M.RemoveTagsFromCertificate(ctx, p)
  local c = get(ctx, p.CertificateArn)
  local keep = {}
  for _, x in ipairs(c.tags) do
    local drop = false
    for _, t in ipairs(p.Tags or {}) do
      if t.Key == x.Key and (t.Value == nil or t.Value == x.Value) then drop = true end
    end
    if not drop then keep[#keep + 1] = x end
  end
  c.tags = keep
  return {}
end

function M.ListTagsForCertificate(ctx, p)
  local c = get(ctx, p.CertificateArn)
  return { Tags = records.copy(c.tags) }
end

return M
