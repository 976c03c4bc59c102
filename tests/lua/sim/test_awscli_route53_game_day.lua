-- The AWS CLI's Route 53 calls a game day makes, against the served simulator, with both
-- CLIs (the current one and Debian's): test-dns-answer following a health-checked weighted
-- pair, update-health-check --inverted/--no-inverted guarded by --health-check-version
-- (HealthCheckVersionMismatch as the CLI prints it), get-health-check-status and
-- get-health-check-last-failure-reason. The served simulator runs on the real clock: the
-- check (interval 10 s, threshold 1) turns after its next evaluation, within about 10 s.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 900)

local function scenario(which)
  local c = cli.cli(which)
  local aws, version = cli.text_runner(which, dir, sim.url, "us-east-1")
  local domain = ("gameday-%s.fo.test"):format(which)
  local code, out, err = aws{ "route53", "create-hosted-zone", "--name", domain,
    "--caller-reference", "zone-" .. which, "--query", "HostedZone.Id" }
  lu.assertEquals(code, 0, err)
  local zone = out:match("([^/]+)$")
  -- an endpoint no checker can reach (IP endpoints time out), inverted: healthy
  t.write(dir .. "/hc-" .. which .. ".json", [[{"Type": "TCP", "IPAddress": "3.3.3.3",
    "Port": 80, "RequestInterval": 10, "FailureThreshold": 1, "Inverted": true}]])
  code, out, err = aws{ "route53", "create-health-check", "--caller-reference", "hc-" .. which,
    "--health-check-config", "file://" .. dir .. "/hc-" .. which .. ".json", "--query",
    "HealthCheck.[Id,HealthCheckVersion]" }
  lu.assertEquals(code, 0, err)
  local hc, v = out:match("^(%S+)%s+(%d+)$")
  lu.assertEquals(v, "1")
  local name = "app." .. domain
  t.write(dir .. "/rr-" .. which .. ".json", ([[{"Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "%s", "Type": "A",
      "SetIdentifier": "primary", "Weight": 100, "TTL": 60, "HealthCheckId": "%s",
      "ResourceRecords": [{"Value": "203.0.113.10"}]}},
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "%s", "Type": "A",
      "SetIdentifier": "standby", "Weight": 0, "TTL": 60,
      "ResourceRecords": [{"Value": "203.0.113.20"}]}}]}]]):format(name, hc, name))
  code, _, err = aws{ "route53", "change-resource-record-sets", "--hosted-zone-id", zone,
    "--change-batch", "file://" .. dir .. "/rr-" .. which .. ".json" }
  lu.assertEquals(code, 0, err)
  local function answer()
    local rc, text, e = aws{ "route53", "test-dns-answer", "--hosted-zone-id", zone,
      "--record-name", name, "--record-type", "A", "--query",
      "[ResponseCode,Protocol,RecordData[0]]" }
    lu.assertEquals(rc, 0, e)
    return (text:gsub("%s+", " "))
  end
  lu.assertEquals(answer(), "NOERROR UDP 203.0.113.10")
  code, out, err = aws{ "route53", "get-health-check-status", "--health-check-id", hc,
    "--query", "length(HealthCheckObservations)" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "8")
  -- the checkers' failures are there to read (the inverted verdict is healthy)
  code, out, err = aws{ "route53", "get-health-check-last-failure-reason", "--health-check-id",
    hc, "--query", "HealthCheckObservations[0].[Region,StatusReport.Status]" }
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "us-east-1")
  lu.assertStrContains(out, "Failure: Connection timed out")
  -- set it back, as a game day's restore does: guarded by the version
  code, out, err = aws{ "route53", "update-health-check", "--health-check-id", hc,
    "--health-check-version", "1", "--no-inverted", "--query",
    "HealthCheck.[HealthCheckVersion,HealthCheckConfig.Inverted]" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "2 False")
  code, _, err = aws{ "route53", "update-health-check", "--health-check-id", hc,
    "--health-check-version", "1", "--inverted" }
  lu.assertEquals(code, c.rc_service, err)
  lu.assertStrContains(err, "An error occurred (HealthCheckVersionMismatch) when calling the "
    .. "UpdateHealthCheck operation")
  -- the next evaluation (10 s) fails the check: the standby answers
  local deadline = fo.now() + 30
  local a = answer()
  while a ~= "NOERROR UDP 203.0.113.20" and fo.now() < deadline do
    fo.sleep(1)
    a = answer()
  end
  lu.assertEquals(a, "NOERROR UDP 203.0.113.20")
  code, out, err = aws{ "route53", "test-dns-answer", "--hosted-zone-id", zone,
    "--record-name", "nothing." .. domain, "--record-type", "A", "--query", "ResponseCode" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "NXDOMAIN")
  print("  " .. version)
end

TestAwsCliRoute53GameDay = {}

function TestAwsCliRoute53GameDay.test_current_cli() scenario("current") end
function TestAwsCliRoute53GameDay.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
