-- ACM certificates as the simulator keeps them (per account and region, db.certs by ARN)
-- and their validation: a DNS-validated certificate becomes ISSUED when public DNS
-- (fo.sim.acm.dns: registered domains and NS delegations over the sim's Route 53) answers
-- the validation CNAME of every one of its names with exactly ACM's value; 72 hours after
-- the request it is VALIDATION_TIMED_OUT instead. ACM checks on its own schedule; the
-- simulator checks whenever the certificate is read (M.refresh), on the virtual clock.
-- ELBv2 asks M.usable before it puts a certificate on a listener.
local crypto = require "fo.crypto"
local dns = require "fo.sim.acm.dns"

local M = {}

--- Seconds of virtual time a DNS-validated certificate waits for its validation record
--- before it is VALIDATION_TIMED_OUT (AWS: 72 hours).
M.TIMEOUT_SECONDS = 72 * 3600
--- Seconds of virtual time after the request before DescribeCertificate shows the
--- validation records (AWS: "a few seconds"; callers poll for them).
M.RECORD_SECONDS = 1

function M.db(db)
  db.certs = db.certs or {}
  db.tokens = db.tokens or {}
  db.seq = db.seq or 0
  return db
end

-- Hex of sha256 over the parts, `n` digits.
local function digest(n, ...)
  return crypto.hex(crypto.sha256(table.concat({ ... }, "|"))):sub(1, n)
end

--- The name a validation checks for `domain` ("*.a.b" is validated as "a.b").
function M.validation_name(domain)
  return (domain:lower():gsub("^%*%.", ""))
end

--- ACM's validation CNAME for `domain` in `account`: the same for every certificate of
--- that name in the account (so one record serves renewals and new requests, as on AWS),
--- and from the sim's seed, so a seeded sim answers the same records every time.
function M.record(seed, account, domain)
  local base = M.validation_name(domain)
  local letters = digest(20, "acm-value-host", seed, account, base):gsub("%x", function(c)
    return string.char(97 + tonumber(c, 16))
  end)
  return {
    Name = ("_%s.%s."):format(digest(32, "acm-name", seed, account, base), base),
    Type = "CNAME",
    Value = ("_%s.%s.acm-validations.aws."):format(digest(32, "acm-value", seed, account, base),
      letters:sub(1, 10)),
  }
end

local function registered(sim)
  return sim.knobs.registered_domains or {}
end

--- Brings `cert`'s status up to virtual time `now`: a PENDING_VALIDATION DNS certificate
--- whose records public DNS answers is ISSUED; one past its 72 hours VALIDATION_TIMED_OUT.
--- True when something changed (the caller's state is then saved).
function M.refresh(sim, account, cert, now)
  if cert.Status ~= "PENDING_VALIDATION" then return false end
  if now >= cert.CreatedAt + M.TIMEOUT_SECONDS then
    cert.Status = "VALIDATION_TIMED_OUT"
    for _, d in ipairs(cert.validations) do
      if d.ValidationStatus ~= "SUCCESS" then d.ValidationStatus = "FAILED" end
    end
    return true
  end
  -- (a record already in place, e.g. for an earlier certificate of the name, counts at once)
  if cert.ValidationMethod ~= "DNS" then return false end
  local all, changed = true, false
  for _, d in ipairs(cert.validations) do
    if d.ValidationStatus ~= "SUCCESS" then
      local value = dns.cname(sim.store, registered(sim), d.ResourceRecord.Name, account)
      if value and value == d.ResourceRecord.Value:lower() then
        d.ValidationStatus, changed = "SUCCESS", true
      else
        all = false
      end
    end
  end
  if all then
    cert.Status = "ISSUED"
    cert.IssuedAt = now
    cert.NotBefore = now
    cert.NotAfter = now + 395 * 86400 -- ACM's public certificates: 13 months
    changed = true
  end
  return changed
end

--- The certificate `arn` names in `ctx`'s account and the ARN's region, refreshed; nil
--- when there is none.
function M.find(ctx, arn)
  local region = tostring(arn):match("^arn:aws:acm:([%w%-]+):%d+:certificate/")
  if not region then return nil end
  local db = M.db(ctx:db_of("acm", region))
  local cert = db.certs[arn]
  if cert and M.refresh(ctx.sim, ctx.account, cert, ctx:now()) then ctx.changed_state = true end
  return cert
end

--- True when the certificate `arn` can serve an ELBv2 listener of `ctx`'s region: an
--- ISSUED ACM certificate of the same account and region.
function M.usable(ctx, arn)
  local region = tostring(arn):match("^arn:aws:acm:([%w%-]+):(%d+):certificate/")
  if region ~= ctx.region then return false end
  local cert = M.find(ctx, arn)
  return cert ~= nil and cert.Status == "ISSUED"
end

return M
