-- The AWS CLI's Elastic IP and NAT gateway commands against the served simulator, with
-- both CLIs a user may have: the current one (the `aws` on PATH, or FO_AWS_CLI_CURRENT)
-- and Debian's (/usr/bin/aws). An address allocated with tags and found by filter, a NAT
-- gateway that becomes available (the served sim runs on the real clock: a few seconds),
-- a route to it, the address refused release while the gateway holds it, the gateway
-- deleted (the route a blackhole, both waiters), then the address released.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"
local json = require "fo.json"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 900)

-- Polls `aws ...` (text output) until it prints `want`; the sim's transitions take
-- seconds of real time when served. Bounded: 60 s.
local function until_prints(aws, args, want)
  local deadline, out = fo.now() + 60, nil
  while fo.now() < deadline do
    local code, o, err = aws(args)
    lu.assertEquals(code, 0, err)
    out = o
    if out == want then return end
    fo.sleep(0.5)
  end
  lu.fail(("%s: still %q, not %q"):format(table.concat(args, " "), tostring(out), want))
end

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url)
  local function ok(args)
    local code, out, err = aws(args)
    lu.assertEquals(code, 0, table.concat(args, " ") .. ": " .. err)
    return out
  end
  local vpc = ok{ "ec2", "create-vpc", "--cidr-block", "10.7.0.0/16", "--query", "Vpc.VpcId" }
  local igw = ok{ "ec2", "create-internet-gateway", "--query", "InternetGateway.InternetGatewayId" }
  ok{ "ec2", "attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc }
  local subnet = ok{ "ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.7.0.0/24",
    "--availability-zone", "eu-south-1a", "--query", "Subnet.SubnetId" }
  local rtb = ok{ "ec2", "create-route-table", "--vpc-id", vpc, "--query", "RouteTable.RouteTableId" }

  -- an address, tagged at allocation
  local out = ok{ "ec2", "allocate-address", "--domain", "vpc", "--tag-specifications",
    "ResourceType=elastic-ip,Tags=[{Key=Name,Value=cli-" .. which .. "}]", "--output", "json" }
  local a = json.decode(out)
  lu.assertStrMatches(a.AllocationId, "eipalloc%-%x+")
  lu.assertEquals(a.Domain, "vpc")
  lu.assertEquals(ok{ "ec2", "describe-addresses", "--filters", "Name=tag:Name,Values=cli-" .. which,
    "Name=domain,Values=vpc", "--query", "Addresses[0].[AllocationId,PublicIp]" }:gsub("%s+", " "),
    a.AllocationId .. " " .. a.PublicIp)
  lu.assertEquals(ok{ "ec2", "describe-addresses", "--public-ips", a.PublicIp,
    "--query", "Addresses[0].AllocationId" }, a.AllocationId)

  -- the gateway: pending, then available with the address
  out = ok{ "ec2", "create-nat-gateway", "--subnet-id", subnet, "--allocation-id", a.AllocationId,
    "--client-token", "cli-" .. which, "--tag-specifications",
    "ResourceType=natgateway,Tags=[{Key=Name,Value=cli-" .. which .. "}]", "--output", "json" }
  local g = json.decode(out)
  lu.assertEquals(g.ClientToken, "cli-" .. which)
  local nat = g.NatGateway.NatGatewayId
  lu.assertStrMatches(nat, "nat%-%x+")
  lu.assertEquals({ g.NatGateway.State, g.NatGateway.ConnectivityType, g.NatGateway.VpcId },
    { "pending", "public", vpc })
  until_prints(aws, { "ec2", "describe-nat-gateways", "--nat-gateway-ids", nat,
    "--query", "NatGateways[0].State" }, "available")
  ok{ "ec2", "wait", "nat-gateway-available", "--nat-gateway-ids", nat }
  lu.assertEquals(ok{ "ec2", "describe-nat-gateways", "--filter", "Name=subnet-id,Values=" .. subnet,
    "Name=tag:Name,Values=cli-" .. which, "--page-size", "5",
    "--query", "NatGateways[0].NatGatewayAddresses[0].[AllocationId,PublicIp]" }:gsub("%s+", " "),
    a.AllocationId .. " " .. a.PublicIp)

  -- a route to it
  lu.assertEquals(ok{ "ec2", "create-route", "--route-table-id", rtb, "--destination-cidr-block",
    "0.0.0.0/0", "--nat-gateway-id", nat }, "True")
  local route_query = { "ec2", "describe-route-tables", "--route-table-ids", rtb, "--query",
    "RouteTables[0].Routes[?DestinationCidrBlock=='0.0.0.0/0'].[NatGatewayId,State]" }
  lu.assertEquals(ok(route_query):gsub("%s+", " "), nat .. " active")

  -- the address is the gateway's while it lives
  local code, _, err = aws{ "ec2", "release-address", "--allocation-id", a.AllocationId }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidIPAddress.InUse")

  lu.assertEquals(ok{ "ec2", "delete-nat-gateway", "--nat-gateway-id", nat,
    "--query", "NatGatewayId" }, nat)
  lu.assertEquals(ok(route_query):gsub("%s+", " "), nat .. " blackhole")
  until_prints(aws, { "ec2", "describe-nat-gateways", "--nat-gateway-ids", nat,
    "--query", "NatGateways[0].State" }, "deleted")
  ok{ "ec2", "wait", "nat-gateway-deleted", "--nat-gateway-ids", nat }
  ok{ "ec2", "release-address", "--allocation-id", a.AllocationId }
  code, _, err = aws{ "ec2", "describe-addresses", "--allocation-ids", a.AllocationId }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidAllocationID.NotFound")
  code, _, err = aws{ "ec2", "describe-nat-gateways", "--nat-gateway-ids", "nat-0123456789abcdef0" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "NatGatewayNotFound")
  print("  " .. version)
end

TestAwsCliNat = {}

function TestAwsCliNat.test_current_cli() scenario("current") end
function TestAwsCliNat.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
