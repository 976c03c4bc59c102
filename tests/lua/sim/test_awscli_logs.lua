-- The AWS CLI's `aws logs` and `aws ec2 create-flow-logs` against the served simulator,
-- with both CLIs a user may have: the current one (the `aws` on PATH, or
-- FO_AWS_CLI_CURRENT) and Debian's (/usr/bin/aws, or FO_AWS_CLI). A log group with tags and
-- retention (a value Logs does not offer refused), a stream, events put and read back, and
-- a VPC flow log to the group with a good and a missing delivery role.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"
local json = require "fo.json"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 900)

local TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
  .. '{"Service":"vpc-flow-logs.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
local DELIVER = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":'
  .. '["logs:CreateLogStream","logs:PutLogEvents","logs:DescribeLogGroups",'
  .. '"logs:DescribeLogStreams"],"Resource":"*"}]}'

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url)
  local group = "/cli/" .. which
  local code, out, err = aws{ "logs", "create-log-group", "--log-group-name", group,
    "--tags", "fo:token=" .. which }
  lu.assertEquals(code, 0, err)
  code, _, err = aws{ "logs", "put-retention-policy", "--log-group-name", group,
    "--retention-in-days", "14" }
  lu.assertEquals(code, 0, err)
  code, _, err = aws{ "logs", "put-retention-policy", "--log-group-name", group,
    "--retention-in-days", "15" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidParameterException")
  code, out, err = aws{ "logs", "describe-log-groups", "--log-group-name-prefix", group,
    "--output", "json" }
  lu.assertEquals(code, 0, err)
  local g = json.decode(out).logGroups[1]
  lu.assertEquals({ g.logGroupName, g.retentionInDays, g.arn }, { group, 14,
    "arn:aws:logs:eu-south-1:123456789012:log-group:" .. group .. ":*" })
  code, _, err = aws{ "logs", "create-log-stream", "--log-group-name", group,
    "--log-stream-name", "app" }
  lu.assertEquals(code, 0, err)
  -- the sim's clock: the group's creation time
  local now = g.creationTime
  local events = json.encode{ { timestamp = now, message = "first line" },
    { timestamp = now + 1, message = "second line" } }
  code, out, err = aws{ "logs", "put-log-events", "--log-group-name", group,
    "--log-stream-name", "app", "--log-events", events, "--output", "json" }
  lu.assertEquals(code, 0, err)
  lu.assertNil(json.decode(out).rejectedLogEventsInfo)
  code, out, err = aws{ "logs", "get-log-events", "--log-group-name", group,
    "--log-stream-name", "app", "--start-from-head", "--query", "events[].message" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "first line second line")
  -- a VPC flow log to the group, delivered by a role that trusts vpc-flow-logs
  code, out, err = aws{ "ec2", "create-vpc", "--cidr-block", "10.9.0.0/16",
    "--query", "Vpc.VpcId" }
  lu.assertEquals(code, 0, err)
  local vpc = out
  local role_name = "cli-flow-" .. which
  code, out, err = aws{ "iam", "create-role", "--role-name", role_name,
    "--assume-role-policy-document", TRUST, "--query", "Role.Arn" }
  lu.assertEquals(code, 0, err)
  local role = out
  code, _, err = aws{ "iam", "put-role-policy", "--role-name", role_name,
    "--policy-name", "deliver", "--policy-document", DELIVER }
  lu.assertEquals(code, 0, err)
  code, out, err = aws{ "ec2", "create-flow-logs", "--resource-type", "VPC",
    "--resource-ids", vpc, "--traffic-type", "ALL", "--log-group-name", group,
    "--deliver-logs-permission-arn", role, "--max-aggregation-interval", "60",
    "--query", "FlowLogIds[0]" }
  lu.assertEquals(code, 0, err)
  local fl = out
  lu.assertStrMatches(fl, "fl%-%x+")
  code, out, err = aws{ "ec2", "describe-flow-logs", "--filter", "Name=resource-id,Values=" .. vpc,
    "--output", "json" }
  lu.assertEquals(code, 0, err)
  local f = json.decode(out).FlowLogs[1]
  lu.assertEquals({ f.FlowLogId, f.ResourceId, f.TrafficType, f.LogGroupName, f.DeliverLogsStatus,
    f.MaxAggregationInterval }, { fl, vpc, "ALL", group, "SUCCESS", 60 })
  -- a role that does not exist: created, but delivery FAILED with "Access error"
  code, out, err = aws{ "ec2", "create-flow-logs", "--resource-type", "VPC",
    "--resource-ids", vpc, "--traffic-type", "REJECT", "--log-group-name", group,
    "--deliver-logs-permission-arn", "arn:aws:iam::123456789012:role/nobody",
    "--query", "FlowLogIds[0]" }
  lu.assertEquals(code, 0, err)
  code, out, err = aws{ "ec2", "describe-flow-logs", "--flow-log-ids", out,
    "--query", "FlowLogs[0].[DeliverLogsStatus,DeliverLogsErrorMessage]" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "FAILED Access error")
  print("  " .. version)
end

TestAwsCliLogs = {}

function TestAwsCliLogs.test_current_cli() scenario("current") end
function TestAwsCliLogs.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
