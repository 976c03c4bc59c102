-- The current AWS CLI (the `aws` on PATH, or FO_AWS_CLI_CURRENT) against the served
-- simulator, for members newer than Debian's awscli knows: the simulator validates requests
-- against fo's models, so a member the current CLI sends and the models lack is refused as
-- UnknownParameter where AWS accepts it (issue 11: `aws ec2 create-route-table
-- --client-token`). Skipped when the CLI there predates the member (Debian's awscli,
-- which tests/lua/sim/test_awscli.lua covers), with a message saying so.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

-- The CLI and the environment it runs in. A pyenv shim finds its interpreter through
-- PYENV_ROOT (else $HOME/.pyenv, and HOME is a temp dir here).
local function current_cli(dir)
  local aws = os.getenv("FO_AWS_CLI_CURRENT")
  if not aws then
    local r = fo.process.run{ argv = { "sh", "-c", "command -v aws" } }
    aws = r.code == 0 and r.stdout:match("^%s*(.-)%s*$") or nil
  end
  if not aws or aws == "" then return nil end
  local env = cli.env(dir)
  local root = aws:match("^(.*)/shims/aws$")
  if root then env.PYENV_ROOT = os.getenv("PYENV_ROOT") or root end
  return aws, env
end

local dir = t.tmpdir()
local AWS, ENV = current_cli(dir)
local sim = AWS and cli.start_sim(dir, 300)

local function aws(args)
  local argv = { AWS, "--endpoint-url", sim.url, "--region", "eu-south-1",
    "--output", "text" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = fo.process.run{ argv = argv, env = ENV, timeout = 120 }
  return r.code, r.stdout:match("^%s*(.-)%s*$"), r.stderr
end

TestAwsCliCurrent = {}

function TestAwsCliCurrent.test_create_route_table_with_client_token()
  lu.skipIf(not AWS, "no aws on PATH")
  local code, vpc, err = aws{ "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16",
    "--query", "Vpc.VpcId" }
  lu.assertEquals(code, 0, err)
  local args = { "ec2", "create-route-table", "--vpc-id", vpc, "--client-token", "x",
    "--query", "[RouteTable.RouteTableId, ClientToken]" }
  local out
  code, out, err = aws(args)
  lu.skipIf(code == 252 and err:find("Unknown options: --client-token", 1, true),
    AWS .. " predates CreateRouteTable's ClientToken (Debian's awscli; the pip one has it)")
  lu.assertEquals(code, 0, err)
  local rtb, token = out:match("^(rtb%-%x+)%s+(%S+)$")
  lu.assertNotNil(rtb, out)
  lu.assertEquals(token, "x")
  -- the same token again: the same table (idempotent), not a second one
  code, out, err = aws(args)
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:match("^(rtb%-%x+)"), rtb)
  code, out, err = aws{ "ec2", "describe-route-tables", "--filters", "Name=vpc-id,Values=" .. vpc,
    "--query", "length(RouteTables)" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "2") -- the main table and this one
end

-- An operator's first instance: the default VPC's subnet (no --subnet-id), then
-- describe and terminate it, as `aws ec2 run-instances` does them.
function TestAwsCliCurrent.test_run_describe_terminate_in_the_default_vpc()
  lu.skipIf(not AWS, "no aws on PATH")
  local code, vpc, err = aws{ "ec2", "describe-account-attributes", "--attribute-names",
    "default-vpc", "--query", "AccountAttributes[0].AttributeValues[0].AttributeValue" }
  lu.assertEquals(code, 0, err)
  lu.assertStrMatches(vpc, "vpc%-%x+")
  local ami = require("fo.sim.amis").al2("eu-south-1")
  local out
  code, out, err = aws{ "ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.micro",
    "--count", "2", "--metadata-options", "HttpTokens=required",
    "--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=cli}]",
    "--query", "[ReservationId, Instances[0].InstanceId, Instances[0].State.Name, Instances[0].VpcId]" }
  lu.assertEquals(code, 0, err)
  local rid, id, state, in_vpc = out:match("^(r%-%x+)%s+(i%-%x+)%s+(%S+)%s+(vpc%-%x+)$")
  lu.assertNotNil(rid, out)
  lu.assertEquals(state, "pending")
  lu.assertEquals(in_vpc, vpc)
  code, out, err = aws{ "ec2", "describe-instances", "--filters", "Name=tag:Name,Values=cli",
    "--query", "Reservations[].Instances[].[NetworkInterfaces[0].SubnetId, "
      .. "BlockDeviceMappings[0].DeviceName, MetadataOptions.HttpTokens]" }
  lu.assertEquals(code, 0, err)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  lu.assertEquals(#lines, 2, out)
  lu.assertStrMatches(lines[1], "subnet%-%x+%s+/dev/xvda%s+required")
  code, out, err = aws{ "ec2", "terminate-instances", "--instance-ids", id, "--query",
    "TerminatingInstances[0].[PreviousState.Name, CurrentState.Name]" }
  lu.assertEquals(code, 0, err)
  lu.assertStrMatches(out, "^%S+%s+shutting%-down$")
  code, out, err = aws{ "ec2", "run-instances", "--image-id", ami, "--count", "1",
    "--security-group-ids", "sg-0123456789abcdef0" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidGroup.NotFound")
end

cli.finish(lu, sim, dir)
