-- Issued ACM certificates for tests that need one (an HTTPS listener): the domain is
-- registered with the simulator (knob registered_domains), gets a public hosted zone and
-- ACM's validation CNAME, so the certificate is issued as on AWS. Calls go through
-- sim:invoke, off the wire.
local certs = require "fo.sim.acm.certs"

local M = {}

M.DOMAIN = "certs.fo.test"

local function register(sim, domain)
  local list = {}
  for _, d in ipairs(sim.knobs.registered_domains or {}) do
    if d == domain then return end
    list[#list + 1] = d
  end
  list[#list + 1] = domain
  sim:set_knob("registered_domains", list)
end

local function zone_of(sim, domain)
  local found = sim:invoke("route53", "us-east-1", "ListHostedZonesByName",
    { DNSName = domain, MaxItems = "1" }).HostedZones[1]
  if found and found.Name == domain .. "." then return found.Id end
  return sim:invoke("route53", "us-east-1", "CreateHostedZone",
    { Name = domain, CallerReference = "support.acm " .. domain }).HostedZone.Id
end

--- An ISSUED certificate for `domain` (default M.DOMAIN) in `region`: its ARN.
function M.issued(sim, region, domain)
  domain = domain or M.DOMAIN
  register(sim, domain)
  local zone = zone_of(sim, domain)
  local arn = sim:invoke("acm", region, "RequestCertificate",
    { DomainName = domain, ValidationMethod = "DNS" }).CertificateArn
  local rr = certs.record(sim.store.data.seed, sim.account, domain)
  sim:invoke("route53", "us-east-1", "ChangeResourceRecordSets", { HostedZoneId = zone,
    ChangeBatch = { Changes = { { Action = "UPSERT", ResourceRecordSet = { Name = rr.Name,
      Type = "CNAME", TTL = 300, ResourceRecords = { { Value = rr.Value } } } } } } })
  local status = sim:invoke("acm", region, "DescribeCertificate", { CertificateArn = arn })
    .Certificate.Status
  assert(status == "ISSUED", "support.acm: the certificate is " .. tostring(status))
  return arn
end

return M
