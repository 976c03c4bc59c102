-- The simulator's ACM through fo's acm client over the in-process wire: DNS-validated
-- certificates and their validation records (shown shortly after the request, the same
-- for a name in an account, from the sim's seed), validation from the data plane (issued
-- only when public DNS — a registered domain's zone, or a zone delegated to by NS records
-- — answers the record exactly), the 72-hour timeout on the virtual clock, idempotency
-- tokens, domain-name rules and the 10-name quota, listing filters and pages, tags,
-- GetCertificate, and ELBv2 listeners that take only issued certificates of their region
-- and keep them from being deleted.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local net = require "support.sim_net"
local certs = require "fo.sim.acm.certs"
local aws = fo.aws

local R = "eu-south-1"
local ACCOUNT = "123456789012"

local function setup(opts)
  local sim = simlib.new(opts or { seed = 11 })
  return sim, sim:client("acm", { region = R, max_attempts = 1 }),
    sim:client("route53", { region = "us-east-1", max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function request(acm, domain, extra)
  local p = { DomainName = domain, ValidationMethod = "DNS" }
  for k, v in pairs(extra or {}) do p[k] = v end
  return acm:RequestCertificate(p).CertificateArn
end

local function describe(acm, arn) return acm:DescribeCertificate{ CertificateArn = arn }.Certificate end

-- The validation records of `arn`, once ACM shows them.
local function records_of(sim, acm, arn)
  sim:advance(certs.RECORD_SECONDS)
  local out = {}
  for _, d in ipairs(describe(acm, arn).DomainValidationOptions) do out[#out + 1] = d.ResourceRecord end
  return out
end

local function zone(r53, name)
  local out = r53:CreateHostedZone{ Name = name, CallerReference = "ref-" .. name .. "-" .. os.clock() }
  return out.HostedZone.Id, out.DelegationSet.NameServers
end

local function upsert(r53, zone_id, name, rtype, values)
  local rrs = {}
  for i, v in ipairs(values) do rrs[i] = { Value = v } end
  r53:ChangeResourceRecordSets{ HostedZoneId = zone_id, ChangeBatch = { Changes = { { Action = "UPSERT",
    ResourceRecordSet = { Name = name, Type = rtype, TTL = 300, ResourceRecords = rrs } } } } }
end

local function put_record(r53, zone_id, rr, value)
  upsert(r53, zone_id, rr.Name, "CNAME", { value or rr.Value })
end

TestAcmRequest = {}

function TestAcmRequest.test_dns_certificate_pending_with_records_after_a_moment()
  local sim, acm = setup()
  local arn = request(acm, "trading.fo.test", { SubjectAlternativeNames = { "*.trading.fo.test", "api.fo.test" } })
  lu.assertStrMatches(arn, "arn:aws:acm:eu%-south%-1:" .. ACCOUNT
    .. ":certificate/%x+%-%x+%-4%x+%-[89ab]%x+%-%x+")
  local c = describe(acm, arn)
  lu.assertEquals({ c.Status, c.DomainName, c.Type, c.KeyAlgorithm }, { "PENDING_VALIDATION",
    "trading.fo.test", "AMAZON_ISSUED", "RSA_2048" })
  lu.assertEquals(c.SubjectAlternativeNames, { "trading.fo.test", "*.trading.fo.test", "api.fo.test" })
  -- right after the request ACM has not made the records yet: callers poll
  for _, d in ipairs(c.DomainValidationOptions) do
    lu.assertNil(d.ResourceRecord)
    lu.assertEquals({ d.ValidationMethod, d.ValidationStatus }, { "DNS", "PENDING_VALIDATION" })
  end
  local rr = records_of(sim, acm, arn)
  lu.assertEquals(#rr, 3)
  lu.assertStrMatches(rr[1].Name, "_%x+%.trading%.fo%.test%.")
  lu.assertEquals(rr[1].Type, "CNAME")
  lu.assertStrMatches(rr[1].Value, "_%x+%.%l+%.acm%-validations%.aws%.")
  -- a wildcard is validated as its base name: the same record
  lu.assertEquals(rr[2], rr[1])
  lu.assertStrMatches(rr[3].Name, "_%x+%.api%.fo%.test%.")
  -- the same name in the same account: the same record (one record serves every certificate)
  local again = request(acm, "trading.fo.test")
  lu.assertEquals(records_of(sim, acm, again)[1], rr[1])
  -- from the sim's seed: the same seed answers the same record, another seed another
  local same, same_acm = setup{ seed = 11 }
  lu.assertEquals(records_of(same, same_acm, request(same_acm, "trading.fo.test"))[1], rr[1])
  local other, other_acm = setup{ seed = 12 }
  lu.assertNotEquals(records_of(other, other_acm, request(other_acm, "trading.fo.test"))[1], rr[1])
end

function TestAcmRequest.test_idempotency_token_within_an_hour()
  local sim, acm = setup()
  local a = request(acm, "trading.fo.test", { IdempotencyToken = "tok1" })
  lu.assertEquals(request(acm, "trading.fo.test", { IdempotencyToken = "tok1" }), a)
  lu.assertNotEquals(request(acm, "trading.fo.test", { IdempotencyToken = "tok2" }), a)
  sim:advance(3601)
  lu.assertNotEquals(request(acm, "trading.fo.test", { IdempotencyToken = "tok1" }), a)
  lu.assertEquals(err_of(acm.RequestCertificate, acm, { DomainName = "a.fo.test",
    IdempotencyToken = "not-word" }).code, "ValidationException")
end

function TestAcmRequest.test_domain_name_rules_and_the_ten_name_quota()
  local _, acm = setup()
  for _, bad in ipairs{ "localhost", "*.*.fo.test", "a.*.fo.test", "-a.fo.test", "a_b.fo.test",
    ("a"):rep(64) .. ".fo.test" } do
    local e = err_of(acm.RequestCertificate, acm, { DomainName = bad, ValidationMethod = "DNS" })
    lu.assertEquals(e.code, "ValidationException", bad)
  end
  -- 253 characters is still a name (fo's client refuses a longer one before sending it)
  local long = ("abcdefghi."):rep(24) .. "fo.test"
  long = ("x"):rep(253 - #long - 1) .. "." .. long
  lu.assertEquals(#long, 253)
  request(acm, long)
  local sans = {}
  for i = 1, 9 do sans[i] = ("n%d.fo.test"):format(i) end
  request(acm, "fo.test", { SubjectAlternativeNames = sans }) -- 10 names with the domain
  sans[10] = "n10.fo.test"
  local e = err_of(acm.RequestCertificate, acm, { DomainName = "fo.test", ValidationMethod = "DNS",
    SubjectAlternativeNames = sans })
  lu.assertEquals(e.code, "LimitExceededException")
  e = err_of(acm.RequestCertificate, acm, { DomainName = "fo.test", ValidationMethod = "DNS",
    KeyAlgorithm = "RSA_4096" })
  lu.assertEquals(e.code, "InvalidParameterException")
  e = err_of(acm.RequestCertificate, acm, { DomainName = "fo.test", ValidationMethod = "DNS",
    DomainValidationOptions = { { DomainName = "other.test", ValidationDomain = "other.test" } } })
  lu.assertEquals(e.code, "InvalidDomainValidationOptionsException")
end

TestAcmValidation = {}

function TestAcmValidation.test_issued_when_the_record_is_in_a_registered_domains_zone()
  local sim, acm, r53 = setup()
  sim:set_knob("registered_domains", { "fo.test" })
  local zid = zone(r53, "fo.test")
  local arn = request(acm, "trading.fo.test")
  local rr = records_of(sim, acm, arn)[1]
  lu.assertEquals(err_of(acm.GetCertificate, acm, { CertificateArn = arn }).code, "RequestInProgressException")
  -- a wrong value is no validation
  put_record(r53, zid, rr, "_0.wrong.acm-validations.aws.")
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  put_record(r53, zid, rr)
  local c = describe(acm, arn)
  lu.assertEquals(c.Status, "ISSUED")
  lu.assertEquals(c.DomainValidationOptions[1].ValidationStatus, "SUCCESS")
  lu.assertNotNil(c.IssuedAt)
  lu.assertTrue(c.NotAfter > c.NotBefore)
  local pem = acm:GetCertificate{ CertificateArn = arn }
  lu.assertStrContains(pem.Certificate, "-----BEGIN CERTIFICATE-----")
  -- a later certificate of the name finds the record in place and is issued at once
  lu.assertEquals(describe(acm, request(acm, "trading.fo.test")).Status, "ISSUED")
end

function TestAcmValidation.test_pending_while_the_zone_is_not_delegated_then_timed_out()
  local sim, acm, r53 = setup()
  local zid = zone(r53, "trading.fo.test")
  local arn = request(acm, "trading.fo.test")
  put_record(r53, zid, records_of(sim, acm, arn)[1])
  -- a public zone nobody delegates to: the internet cannot see the record
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  sim:advance(71 * 3600)
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  sim:advance(3600)
  local c = describe(acm, arn)
  lu.assertEquals(c.Status, "VALIDATION_TIMED_OUT")
  lu.assertEquals(c.DomainValidationOptions[1].ValidationStatus, "FAILED")
  -- registering the domain now is too late
  sim:set_knob("registered_domains", { "trading.fo.test" })
  lu.assertEquals(describe(acm, arn).Status, "VALIDATION_TIMED_OUT")
  lu.assertEquals(acm:ListCertificates{ CertificateStatuses = { "VALIDATION_TIMED_OUT" } }
    .CertificateSummaryList[1].CertificateArn, arn)
  lu.assertEquals(err_of(acm.GetCertificate, acm, { CertificateArn = arn }).code, "RequestInProgressException")
end

function TestAcmValidation.test_a_child_zone_validates_once_its_parent_delegates_to_it()
  local sim, acm, r53 = setup()
  sim:set_knob("registered_domains", { "fo.test" })
  local parent = zone(r53, "fo.test")
  local child, child_ns = zone(r53, "trading.fo.test")
  local _, other_ns = zone(r53, "trading.fo.test") -- a second zone of the name
  local arn = request(acm, "trading.fo.test")
  put_record(r53, child, records_of(sim, acm, arn)[1])
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  -- the parent delegates to the other zone: the record there is not what DNS answers
  upsert(r53, parent, "trading.fo.test", "NS", other_ns)
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  -- name servers nobody hosts: a lame delegation
  upsert(r53, parent, "trading.fo.test", "NS", { "ns-1.example.net" })
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  local values = {}
  for i, ns in ipairs(child_ns) do values[i] = ns .. "." end
  upsert(r53, parent, "trading.fo.test", "NS", values)
  lu.assertEquals(describe(acm, arn).Status, "ISSUED")
end

-- "*": every zone is reached under its own name, and delegations below it still count.
function TestAcmValidation.test_registered_domains_star_reaches_every_zone_by_its_own_name()
  local sim, acm, r53 = setup()
  local zid = zone(r53, "trading.fo.test")
  local arn = request(acm, "app.trading.fo.test")
  put_record(r53, zid, records_of(sim, acm, arn)[1])
  lu.assertEquals(describe(acm, arn).Status, "PENDING_VALIDATION")
  sim:set_knob("registered_domains", { "*" })
  lu.assertEquals(describe(acm, arn).Status, "ISSUED")
  -- a zone of a deeper name, not delegated to by the zone above it: DNS goes through the
  -- shallowest zone (trading.fo.test), which answers nothing for it
  local deep = zone(r53, "eu.trading.fo.test")
  local arn2 = request(acm, "x.eu.trading.fo.test")
  put_record(r53, deep, records_of(sim, acm, arn2)[1])
  lu.assertEquals(describe(acm, arn2).Status, "PENDING_VALIDATION")
end

function TestAcmValidation.test_email_validation_is_never_completed()
  local sim, acm = setup()
  sim:set_knob("registered_domains", { "fo.test" })
  local arn = acm:RequestCertificate{ DomainName = "www.fo.test" }.CertificateArn
  local d = describe(acm, arn).DomainValidationOptions[1]
  lu.assertEquals(d.ValidationMethod, "EMAIL")
  lu.assertEquals(d.ValidationEmails[1], "admin@www.fo.test")
  sim:advance(72 * 3600)
  lu.assertEquals(describe(acm, arn).Status, "VALIDATION_TIMED_OUT")
end

TestAcmList = {}

function TestAcmList.test_status_and_key_type_filters_paging_and_tags()
  local sim, acm, r53 = setup()
  sim:set_knob("registered_domains", { "fo.test" })
  local zid = zone(r53, "fo.test")
  local a = request(acm, "a.fo.test", { Tags = { { Key = "team", Value = "x" } } })
  local b = request(acm, "b.fo.test")
  local ec = request(acm, "c.fo.test", { KeyAlgorithm = "EC_prime256v1" })
  put_record(r53, zid, records_of(sim, acm, a)[1])
  local function arns(p)
    local out = {}
    for _, s in ipairs(acm:ListCertificates(p).CertificateSummaryList) do out[#out + 1] = s.CertificateArn end
    return out
  end
  lu.assertEquals(arns{}, { a, b }) -- RSA_2048 only without Includes
  lu.assertEquals(arns{ Includes = { keyTypes = { "EC_prime256v1", "RSA_2048" } } }, { a, b, ec })
  lu.assertEquals(arns{ CertificateStatuses = { "ISSUED" } }, { a })
  lu.assertEquals(arns{ CertificateStatuses = { "PENDING_VALIDATION" } }, { b })
  local p1 = acm:ListCertificates{ MaxItems = 1 }
  lu.assertEquals(#p1.CertificateSummaryList, 1)
  lu.assertNotNil(p1.NextToken)
  local p2 = acm:ListCertificates{ MaxItems = 1, NextToken = p1.NextToken }
  lu.assertEquals(p2.CertificateSummaryList[1].CertificateArn, b)
  lu.assertNil(p2.NextToken)
  local all = {}
  for s in acm:items("ListCertificates", { MaxItems = 1 }) do all[#all + 1] = s.CertificateArn end
  lu.assertEquals(all, { a, b })
  -- tags
  acm:AddTagsToCertificate{ CertificateArn = a, Tags = { { Key = "env", Value = "prod" }, { Key = "team", Value = "y" } } }
  local tags = acm:ListTagsForCertificate{ CertificateArn = a }.Tags
  lu.assertEquals(tags, { { Key = "team", Value = "y" }, { Key = "env", Value = "prod" } })
  acm:RemoveTagsFromCertificate{ CertificateArn = a, Tags = { { Key = "team", Value = "other" }, { Key = "env" } } }
  lu.assertEquals(acm:ListTagsForCertificate{ CertificateArn = a }.Tags, { { Key = "team", Value = "y" } })
  lu.assertEquals(err_of(acm.AddTagsToCertificate, acm, { CertificateArn = a,
    Tags = { { Key = "aws:x", Value = "1" } } }).code, "InvalidTagException")
  -- deleted: gone
  acm:DeleteCertificate{ CertificateArn = b }
  lu.assertEquals(err_of(acm.DescribeCertificate, acm, { CertificateArn = b }).code, "ResourceNotFoundException")
  lu.assertEquals(err_of(acm.DescribeCertificate, acm, { CertificateArn = "arn:aws:s3:::a-bucket-not-a-certificate" }).code,
    "InvalidArnException")
end

TestAcmElbv2 = {}

local function alb(sim, region)
  local n = net.build(sim, region)
  local elb = sim:client("elbv2", { region = region, max_attempts = 1 })
  local lb = elb:CreateLoadBalancer{ Name = "alb-acm", Type = "application", Scheme = "internet-facing",
    Subnets = n.public, SecurityGroups = { n.alb_sg } }.LoadBalancers[1]
  local tg = elb:CreateTargetGroup{ Name = "tg-acm", Protocol = "HTTP", Port = 8080, VpcId = n.vpc,
    TargetType = "instance" }.TargetGroups[1]
  return elb, lb, tg
end

function TestAcmElbv2.test_listener_takes_only_an_issued_certificate_of_its_region_and_holds_it()
  local sim = net.sim()
  local acm = sim:client("acm", { region = R, max_attempts = 1 })
  local r53 = sim:client("route53", { region = "us-east-1", max_attempts = 1 })
  sim:set_knob("registered_domains", { "fo.test" })
  local zid = zone(r53, "fo.test")
  local elb, lb, tg = alb(sim, R)
  local arn = request(acm, "trading.fo.test")
  local listener = { LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTPS", Port = 443,
    Certificates = { { CertificateArn = arn } },
    DefaultActions = { { Type = "forward", TargetGroupArn = tg.TargetGroupArn } } }
  -- pending validation: not usable
  local e = err_of(elb.CreateListener, elb, listener)
  lu.assertEquals(e.code, "CertificateNotFound")
  lu.assertStrContains(e.message, arn)
  put_record(r53, zid, records_of(sim, acm, arn)[1])
  -- an issued certificate of another region is not found either
  local acm2 = sim:client("acm", { region = "eu-central-1", max_attempts = 1 })
  local other = request(acm2, "trading.fo.test")
  lu.assertEquals(acm2:DescribeCertificate{ CertificateArn = other }.Certificate.Status, "ISSUED")
  listener.Certificates[1].CertificateArn = other
  lu.assertEquals(err_of(elb.CreateListener, elb, listener).code, "CertificateNotFound")
  listener.Certificates[1].CertificateArn = arn
  local l = elb:CreateListener(listener).Listeners[1]
  lu.assertEquals(l.Certificates, { { CertificateArn = arn } })
  -- in use: ACM says by whom and refuses the delete
  lu.assertEquals(describe(acm, arn).InUseBy, { lb.LoadBalancerArn })
  lu.assertTrue(acm:ListCertificates{}.CertificateSummaryList[1].InUse)
  e = err_of(acm.DeleteCertificate, acm, { CertificateArn = arn })
  lu.assertEquals(e.code, "ResourceInUseException")
  elb:DeleteListener{ ListenerArn = l.ListenerArn }
  acm:DeleteCertificate{ CertificateArn = arn }
  lu.assertEquals(err_of(acm.DescribeCertificate, acm, { CertificateArn = arn }).code,
    "ResourceNotFoundException")
end

os.exit(lu.LuaUnit.run())
