-- The AWS CLI's `aws acm` (and `aws route53` for the validation record) against the served
-- simulator, with both CLIs a user may have (support.awscli): the current one (the `aws`
-- on PATH, or FO_AWS_CLI_CURRENT) and Debian's (/usr/bin/aws). A DNS-validated
-- certificate requested (idempotency token honoured), its validation record polled for,
-- listed while pending, GetCertificate refused until it is issued, issued once the record
-- is in the zone of a registered domain (FO_SIM_REGISTERED_DOMAINS), refused quota, deleted.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 900, { FO_SIM_REGISTERED_DOMAINS = "fo.test" })

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url)
  local domain = which .. ".fo.test"
  local code, out, err = aws{ "acm", "request-certificate", "--domain-name", domain,
    "--validation-method", "DNS", "--subject-alternative-names", domain, "*." .. domain,
    "--idempotency-token", "cli" .. which, "--tags", "Key=fo:token,Value=" .. which,
    "--query", "CertificateArn" }
  lu.assertEquals(code, 0, err)
  local arn = out
  lu.assertStrMatches(arn, "arn:aws:acm:eu%-south%-1:123456789012:certificate/[%x%-]+")
  code, out, err = aws{ "acm", "request-certificate", "--domain-name", domain,
    "--validation-method", "DNS", "--idempotency-token", "cli" .. which, "--query", "CertificateArn" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, arn) -- the same token within the hour: the same certificate
  -- the validation record shows up shortly after the request: poll for it
  local name, value
  for _ = 1, 40 do
    code, out, err = aws{ "acm", "describe-certificate", "--certificate-arn", arn, "--query",
      "Certificate.DomainValidationOptions[0].ResourceRecord.[Name,Value]" }
    lu.assertEquals(code, 0, err)
    name, value = out:match("^(%S+)%s+(%S+)$")
    if name then break end
    fo.sleep(0.25)
  end
  lu.assertStrMatches(name or "", "_%x+%." .. domain:gsub("%.", "%%.") .. "%.")
  lu.assertStrMatches(value or "", "_%x+%.%l+%.acm%-validations%.aws%.")
  code, out, err = aws{ "acm", "list-certificates", "--certificate-statuses", "PENDING_VALIDATION",
    "--query", "CertificateSummaryList[].CertificateArn" }
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, arn)
  code, _, err = aws{ "acm", "get-certificate", "--certificate-arn", arn }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "RequestInProgressException")
  -- the record in the registered domain's zone: ACM issues the certificate
  code, out, err = aws{ "route53", "create-hosted-zone", "--name", domain, "--caller-reference",
    "cli-" .. which, "--query", "HostedZone.Id" }
  lu.assertEquals(code, 0, err)
  local zone = out
  -- (the zone of the registered domain fo.test delegates to it)
  code, out, err = aws{ "route53", "list-hosted-zones-by-name", "--dns-name", "fo.test",
    "--query", "HostedZones[?Name=='fo.test.'].Id" }
  lu.assertEquals(code, 0, err)
  local parent = out
  if parent == "" or parent == "None" then
    code, out, err = aws{ "route53", "create-hosted-zone", "--name", "fo.test", "--caller-reference",
      "cli-parent-" .. which, "--query", "HostedZone.Id" }
    lu.assertEquals(code, 0, err)
    parent = out
  end
  code, out, err = aws{ "route53", "get-hosted-zone", "--id", zone, "--query", "DelegationSet.NameServers" }
  lu.assertEquals(code, 0, err)
  local ns = {}
  for n in out:gmatch("%S+") do ns[#ns + 1] = ('{"Value":"%s."}'):format(n) end
  local function upsert(zone_id, rname, rtype, values)
    local batch = ('{"Changes":[{"Action":"UPSERT","ResourceRecordSet":{"Name":"%s","Type":"%s",'
      .. '"TTL":300,"ResourceRecords":[%s]}}]}'):format(rname, rtype, values)
    local c, _, e = aws{ "route53", "change-resource-record-sets", "--hosted-zone-id", zone_id,
      "--change-batch", batch }
    lu.assertEquals(c, 0, e)
  end
  upsert(zone, name, "CNAME", ('{"Value":"%s"}'):format(value))
  code, out, err = aws{ "acm", "describe-certificate", "--certificate-arn", arn, "--query", "Certificate.Status" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "PENDING_VALIDATION") -- nobody delegates to the zone yet
  upsert(parent, domain, "NS", table.concat(ns, ","))
  code, out, err = aws{ "acm", "describe-certificate", "--certificate-arn", arn, "--query",
    "Certificate.[Status,DomainValidationOptions[0].ValidationStatus]" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "ISSUED SUCCESS")
  code, out, err = aws{ "acm", "get-certificate", "--certificate-arn", arn, "--query", "Certificate" }
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "BEGIN CERTIFICATE")
  -- the default quota: 10 names
  local sans = {}
  for i = 1, 11 do sans[i] = ("n%d.%s"):format(i, domain) end
  local args = { "acm", "request-certificate", "--domain-name", domain, "--validation-method", "DNS",
    "--subject-alternative-names" }
  for _, s in ipairs(sans) do args[#args + 1] = s end
  code, _, err = aws(args)
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "LimitExceededException")
  code, _, err = aws{ "acm", "delete-certificate", "--certificate-arn", arn }
  lu.assertEquals(code, 0, err)
  code, _, err = aws{ "acm", "describe-certificate", "--certificate-arn", arn }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "ResourceNotFoundException")
  print("  " .. version)
end

TestAwsCliAcm = {}

function TestAwsCliAcm.test_current_cli() scenario("current") end
function TestAwsCliAcm.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
