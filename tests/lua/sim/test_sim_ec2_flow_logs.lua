-- The simulator's VPC flow logs through fo's ec2 client: create for VPCs, subnets and
-- ENIs to CloudWatch Logs, the delivery role's trust and permissions (FAILED "Access error"
-- when wrong, as AWS reports it), Unsuccessful items, aggregation interval, tags,
-- ClientToken, DescribeFlowLogs filters, DeleteFlowLogs.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local json = require "fo.json"
local aws = fo.aws

local ACCOUNT = "123456789012"
local REGION = "eu-south-1"

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local TRUST = json.encode{ Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "vpc-flow-logs.amazonaws.com" }, Action = "sts:AssumeRole" } } }
local WRONG_TRUST = json.encode{ Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" } } }
local DELIVER = json.encode{ Version = "2012-10-17", Statement = { { Effect = "Allow",
  Action = { "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "logs:DescribeLogGroups", "logs:DescribeLogStreams" }, Resource = "*" } } }

local function setup()
  local sim = simlib.new{ seed = 9 }
  local ec2 = sim:client("ec2", { region = REGION, max_attempts = 1 })
  local iam = sim:client("iam", { region = REGION, max_attempts = 1 })
  local vpc = ec2:CreateVpc{ CidrBlock = "10.1.0.0/16" }.Vpc.VpcId
  local subnet = ec2:CreateSubnet{ VpcId = vpc, CidrBlock = "10.1.1.0/24",
    AvailabilityZone = REGION .. "a" }.Subnet.SubnetId
  local function role(name, trust, policy)
    local arn = iam:CreateRole{ RoleName = name, AssumeRolePolicyDocument = trust }.Role.Arn
    if policy then iam:PutRolePolicy{ RoleName = name, PolicyName = "deliver", PolicyDocument = policy } end
    return arn
  end
  return { sim = sim, ec2 = ec2, vpc = vpc, subnet = subnet, role = role }
end

local function one(ec2, id)
  return ec2:DescribeFlowLogs{ FlowLogIds = { id } }.FlowLogs[1]
end

TestFlowLogs = {}

function TestFlowLogs.test_vpc_flow_log_to_a_log_group_with_a_good_role()
  local t = setup()
  local role = t.role("flow", TRUST, DELIVER)
  local out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ALL",
    LogGroupName = "/fo/flow", DeliverLogsPermissionArn = role, MaxAggregationInterval = 60,
    TagSpecifications = { { ResourceType = "vpc-flow-log", Tags = { { Key = "fo:token", Value = "t1" } } } } }
  lu.assertEquals(#out.FlowLogIds, 1)
  lu.assertNil(out.Unsuccessful)
  local f = one(t.ec2, out.FlowLogIds[1])
  lu.assertStrMatches(f.FlowLogId, "fl%-%x+")
  lu.assertEquals({ f.ResourceId, f.TrafficType, f.LogDestinationType, f.LogGroupName,
    f.DeliverLogsPermissionArn, f.DeliverLogsStatus, f.FlowLogStatus, f.MaxAggregationInterval },
    { t.vpc, "ALL", "cloud-watch-logs", "/fo/flow", role, "SUCCESS", "ACTIVE", 60 })
  lu.assertEquals(f.LogDestination, ("arn:aws:logs:%s:%s:log-group:/fo/flow"):format(REGION, ACCOUNT))
  lu.assertNil(f.DeliverLogsErrorMessage)
  lu.assertEquals(f.Tags, { { Key = "fo:token", Value = "t1" } })
  lu.assertStrContains(f.LogFormat, "${interface-id}")
  -- the same resource, traffic type and destination again: Unsuccessful, not an error
  out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ALL",
    LogGroupName = "/fo/flow", DeliverLogsPermissionArn = role }
  lu.assertEquals(out.FlowLogIds, {})
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "FlowLogAlreadyExists")
  -- by LogDestination ARN, for a subnet, default interval 600
  out = t.ec2:CreateFlowLogs{ ResourceType = "Subnet", ResourceIds = { t.subnet }, TrafficType = "REJECT",
    LogDestinationType = "cloud-watch-logs", DeliverLogsPermissionArn = role,
    LogDestination = ("arn:aws:logs:%s:%s:log-group:/fo/subnet-flow"):format(REGION, ACCOUNT) }
  f = one(t.ec2, out.FlowLogIds[1])
  lu.assertEquals({ f.LogGroupName, f.MaxAggregationInterval, f.TrafficType }, { "/fo/subnet-flow", 600, "REJECT" })
end

function TestFlowLogs.test_a_missing_role_or_wrong_trust_or_permissions_fails_delivery()
  local t = setup()
  local cases = {
    { "arn:aws:iam::" .. ACCOUNT .. ":role/nobody" },
    { t.role("wrongtrust", WRONG_TRUST, DELIVER) },
    { t.role("noperms", TRUST, nil) },
    { t.role("partial", TRUST, json.encode{ Version = "2012-10-17", Statement = {
      { Effect = "Allow", Action = "logs:PutLogEvents", Resource = "*" } } }) },
  }
  for i, c in ipairs(cases) do
    local out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ALL",
      LogGroupName = "/fo/flow" .. i, DeliverLogsPermissionArn = c[1] }
    local f = one(t.ec2, out.FlowLogIds[1])
    lu.assertEquals(f.DeliverLogsStatus, "FAILED", c[1])
    lu.assertEquals(f.DeliverLogsErrorMessage, "Access error", c[1])
  end
  -- logs:* through a wildcard is enough
  local ok = t.role("wild", TRUST, json.encode{ Version = "2012-10-17", Statement = {
    { Effect = "Allow", Action = "logs:*", Resource = "*" } } })
  local out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ACCEPT",
    LogGroupName = "/fo/ok", DeliverLogsPermissionArn = ok }
  lu.assertEquals(one(t.ec2, out.FlowLogIds[1]).DeliverLogsStatus, "SUCCESS")
end

-- Least privilege as AWS documents it for flow logs: a trust scoped to this account's flow
-- logs (aws:SourceAccount, aws:SourceArn) and the three delivery actions on the group only.
-- A trust naming another account's or region's flow logs, or grants on another group, fail.
function TestFlowLogs.test_a_scoped_role_delivers_only_to_its_group_for_its_flow_logs()
  local t = setup()
  local function trust(account, region)
    return json.encode{ Version = "2012-10-17", Statement = { { Effect = "Allow",
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }, Action = "sts:AssumeRole",
      Condition = { StringEquals = { ["aws:SourceAccount"] = account },
        ArnLike = { ["aws:SourceArn"] = ("arn:aws:ec2:%s:%s:vpc-flow-log/*"):format(region, account) } } } } }
  end
  local function grants(group)
    return json.encode{ Version = "2012-10-17", Statement = { { Effect = "Allow",
      Action = { "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams" },
      Resource = ("arn:aws:logs:%s:%s:log-group:%s:*"):format(REGION, ACCOUNT, group) } } }
  end
  local cases = {
    { "scoped", trust(ACCOUNT, REGION), grants("/fo/mine"), "SUCCESS" },
    { "otheraccount", trust("210987654321", REGION), grants("/fo/mine"), "FAILED" },
    { "otherregion", trust(ACCOUNT, "eu-west-1"), grants("/fo/mine"), "FAILED" },
    { "othergroup", trust(ACCOUNT, REGION), grants("/fo/other"), "FAILED" },
    -- the group's ARN without ":*" names the group only, not what delivery acts on
    { "bare", trust(ACCOUNT, REGION), json.encode{ Version = "2012-10-17", Statement = { {
      Effect = "Allow", Action = { "logs:CreateLogStream", "logs:PutLogEvents",
        "logs:DescribeLogStreams" },
      Resource = ("arn:aws:logs:%s:%s:log-group:/fo/mine"):format(REGION, ACCOUNT) } } }, "FAILED" },
  }
  for _, c in ipairs(cases) do
    local role = t.role(c[1], c[2], c[3])
    local out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc },
      TrafficType = "ALL", LogGroupName = "/fo/mine", DeliverLogsPermissionArn = role }
    local f = one(t.ec2, out.FlowLogIds[1])
    lu.assertEquals(f.DeliverLogsStatus, c[4], c[1])
    t.ec2:DeleteFlowLogs{ FlowLogIds = { f.FlowLogId } }
  end
end

function TestFlowLogs.test_unknown_resources_and_bad_parameters()
  local t = setup()
  local role = t.role("flow", TRUST, DELIVER)
  local out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc, "vpc-0123456789abcdef0" },
    TrafficType = "ALL", LogGroupName = "g", DeliverLogsPermissionArn = role }
  lu.assertEquals(#out.FlowLogIds, 1)
  lu.assertEquals(out.Unsuccessful[1].ResourceId, "vpc-0123456789abcdef0")
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "InvalidVpcID.NotFound")
  -- a subnet id given as a VPC
  out = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.subnet },
    TrafficType = "ALL", LogGroupName = "g", DeliverLogsPermissionArn = role }
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "InvalidVpcID.Malformed")
  out = t.ec2:CreateFlowLogs{ ResourceType = "NetworkInterface", ResourceIds = { "eni-0123456789abcdef0" },
    TrafficType = "ALL", LogGroupName = "g", DeliverLogsPermissionArn = role }
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "InvalidNetworkInterfaceID.NotFound")
  local base = { ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ALL", LogGroupName = "g",
    DeliverLogsPermissionArn = role }
  local function with(k, v)
    local p = {}
    for a, b in pairs(base) do p[a] = b end
    p[k] = v
    return p
  end
  for _, p in ipairs({ with("MaxAggregationInterval", 300), with("TrafficType", nil),
      with("DeliverLogsPermissionArn", nil), with("LogGroupName", nil),
      with("LogDestination", "arn:aws:logs:" .. REGION .. ":" .. ACCOUNT .. ":log-group:x") }) do
    lu.assertEquals(err_of(t.ec2.CreateFlowLogs, t.ec2, p).code, "InvalidParameter")
  end
  lu.assertEquals(err_of(t.ec2.CreateFlowLogs, t.ec2, with("TagSpecifications",
    { { ResourceType = "vpc", Tags = { { Key = "a", Value = "b" } } } })).code, "InvalidParameterValue")
end

function TestFlowLogs.test_eni_of_an_interface_endpoint_and_client_token()
  local t = setup()
  local role = t.role("flow", TRUST, DELIVER)
  local ep = t.ec2:CreateVpcEndpoint{ VpcId = t.vpc, VpcEndpointType = "Interface",
    ServiceName = "com.amazonaws." .. REGION .. ".logs", SubnetIds = { t.subnet },
    PrivateDnsEnabled = false }.VpcEndpoint
  local eni = ep.NetworkInterfaceIds[1]
  local p = { ResourceType = "NetworkInterface", ResourceIds = { eni }, TrafficType = "ALL",
    LogGroupName = "g", DeliverLogsPermissionArn = role, ClientToken = "tok-1" }
  local a = t.ec2:CreateFlowLogs(p)
  local b = t.ec2:CreateFlowLogs(p)
  lu.assertEquals(b.FlowLogIds, a.FlowLogIds)
  lu.assertEquals(b.ClientToken, "tok-1")
  lu.assertEquals(#t.ec2:DescribeFlowLogs{}.FlowLogs, 1)
  p.TrafficType = "REJECT"
  lu.assertEquals(err_of(t.ec2.CreateFlowLogs, t.ec2, p).code, "IdempotentParameterMismatch")
end

function TestFlowLogs.test_describe_filters_and_delete()
  local t = setup()
  local role = t.role("flow", TRUST, DELIVER)
  local a = t.ec2:CreateFlowLogs{ ResourceType = "VPC", ResourceIds = { t.vpc }, TrafficType = "ALL",
    LogGroupName = "g1", DeliverLogsPermissionArn = role,
    TagSpecifications = { { ResourceType = "vpc-flow-log", Tags = { { Key = "team", Value = "ops" } } } } }.FlowLogIds[1]
  local b = t.ec2:CreateFlowLogs{ ResourceType = "Subnet", ResourceIds = { t.subnet }, TrafficType = "ALL",
    LogGroupName = "g2", DeliverLogsPermissionArn = role }.FlowLogIds[1]
  local function ids(filter)
    local r = {}
    for _, f in ipairs(t.ec2:DescribeFlowLogs{ Filter = filter }.FlowLogs) do r[#r + 1] = f.FlowLogId end
    return r
  end
  lu.assertEquals(ids(nil), { a, b })
  lu.assertEquals(ids{ { Name = "resource-id", Values = { t.subnet } } }, { b })
  lu.assertEquals(ids{ { Name = "flow-log-id", Values = { a } } }, { a })
  lu.assertEquals(ids{ { Name = "log-destination-type", Values = { "cloud-watch-logs" } } }, { a, b })
  lu.assertEquals(ids{ { Name = "log-destination-type", Values = { "s3" } } }, {})
  lu.assertEquals(ids{ { Name = "tag:team", Values = { "ops" } } }, { a })
  -- CreateTags works on flow logs too
  t.ec2:CreateTags{ Resources = { b }, Tags = { { Key = "team", Value = "ops" } } }
  lu.assertEquals(ids{ { Name = "tag:team", Values = { "ops" } } }, { a, b })
  local out = t.ec2:DeleteFlowLogs{ FlowLogIds = { a, "fl-0123456789abcdef0" } }
  lu.assertEquals(#out.Unsuccessful, 1)
  lu.assertEquals(out.Unsuccessful[1].ResourceId, "fl-0123456789abcdef0")
  lu.assertEquals(out.Unsuccessful[1].Error.Code, "InvalidFlowLogId.NotFound")
  lu.assertEquals(ids(nil), { b })
end

os.exit(lu.LuaUnit.run())
