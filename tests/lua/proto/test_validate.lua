-- Validation before sending (fo.awsproto.validate) with the real AWS models: each kind of
-- problem is named with the operation and the member path, and valid params pass.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local proto = require "fo.awsproto"

local model = require("fo.aws.models").load

local function problems(service, op, params)
  local ok, err = pcall(proto.validate, model(service), op, params)
  if ok then return nil end
  return err
end

local function assert_valid(service, op, params)
  local err = problems(service, op, params)
  lu.assertNil(err, err)
end

local function assert_problem(service, op, params, expected)
  local err = problems(service, op, params)
  lu.assertNotNil(err, "expected a validation error for " .. service .. "." .. op)
  lu.assertStrContains(err, expected)
  lu.assertStrContains(err, service .. "." .. op .. ": ")
  return err
end

TestValidate = {}

function TestValidate.test_valid_params_pass()
  assert_valid("ec2", "CreateSubnet", {
    VpcId = "vpc-0abc", CidrBlock = "10.0.1.0/24", AvailabilityZone = "eu-south-1a",
    TagSpecifications = { { ResourceType = "subnet",
                            Tags = { { Key = "fo:stack", Value = "trading" } } } } })
  assert_valid("route53", "CreateHealthCheck", { CallerReference = "trading-hc-1",
    HealthCheckConfig = { Type = "HTTPS", RequestInterval = 10, FailureThreshold = 3,
                          FullyQualifiedDomainName = "alb.example.com", Port = 443 } })
  assert_valid("dynamodb", "PutItem", { TableName = "trading-sessions",
    Item = { id = { S = "s-1" }, blob = { B = "\0\1\2" }, n = { N = "3" } } })
  assert_valid("sts", "GetCallerIdentity", {})
  assert_valid("ec2", "DescribeVpcs", {})
end

function TestValidate.test_wrong_scalar_type_names_member_and_types()
  local err = assert_problem("ec2", "CreateSubnet", { VpcId = "vpc-1", CidrBlock = 10 },
    "CidrBlock: expected string, got number")
  lu.assertEquals(err, "ec2.CreateSubnet: CidrBlock: expected string, got number")
  assert_problem("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPS", RequestInterval = "10" } },
    "HealthCheckConfig.RequestInterval: expected integer, got string")
  assert_problem("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPS", RequestInterval = 10.5 } },
    "HealthCheckConfig.RequestInterval: expected integer, got 10.5")
  assert_problem("ec2", "CreateVpc", { CidrBlock = "10.0.0.0/16", AmazonProvidedIpv6CidrBlock = "yes" },
    "AmazonProvidedIpv6CidrBlock: expected boolean, got string")
  assert_problem("dynamodb", "PutItem", { TableName = "t", Item = { k = { B = 42 } } },
    'Item["k"].B: expected blob (a string of bytes), got number')
end

function TestValidate.test_integral_floats_are_integers()
  assert_valid("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPS", RequestInterval = 30.0, FailureThreshold = 1 } })
end

function TestValidate.test_missing_required_member()
  assert_problem("ec2", "CreateSubnet", { CidrBlock = "10.0.1.0/24" },
    "VpcId: required member is missing")
  assert_problem("elbv2", "CreateLoadBalancer", {}, "Name: required member is missing")
  -- nested: a Tag inside a list inside a structure
  assert_problem("route53", "ChangeResourceRecordSets", { HostedZoneId = "Z1",
    ChangeBatch = { Changes = { { Action = "UPSERT" } } } },
    "ChangeBatch.Changes[1].ResourceRecordSet: required member is missing")
end

function TestValidate.test_unknown_member_lists_the_valid_ones()
  local err = assert_problem("ec2", "CreateVpc", { CidrBlock = "10.0.0.0/16", Cidr = "x" },
    "Cidr: unknown member (valid members: ")
  lu.assertStrContains(err, "CidrBlock")
  -- wire names are not member names
  assert_problem("ec2", "DescribeVpcs", { ["Filter.1.Name"] = "vpc-id" },
    "Filter.1.Name: unknown member")
  assert_problem("sts", "GetCallerIdentity", { Foo = 1 }, "Foo: unknown member (valid members: none)")
end

function TestValidate.test_enum_violation()
  assert_problem("ec2", "CreateSubnet", { VpcId = "v",
    TagSpecifications = { { ResourceType = "subnets" } } },
    "TagSpecifications[1].ResourceType: 'subnets' is not one of ")
  assert_problem("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPX" } }, "HealthCheckConfig.Type: 'HTTPX' is not one of 'HTTP'")
end

function TestValidate.test_ranges()
  assert_problem("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPS", FailureThreshold = 11 } },
    "HealthCheckConfig.FailureThreshold: value 11 is above the maximum 10")
  assert_problem("route53", "CreateHealthCheck", { CallerReference = "r",
    HealthCheckConfig = { Type = "HTTPS", RequestInterval = 5 } },
    "HealthCheckConfig.RequestInterval: value 5 is below the minimum 10")
  assert_problem("route53", "ChangeTagsForResource", { ResourceType = "healthcheck",
    ResourceId = string.rep("a", 65) }, "ResourceId: length 65 is above the maximum 64")
  -- string length counts characters, not bytes
  assert_valid("route53", "ChangeTagsForResource", { ResourceType = "healthcheck",
    ResourceId = string.rep("é", 64) })
  assert_problem("route53", "ChangeResourceRecordSets", { HostedZoneId = "Z1",
    ChangeBatch = { Changes = {} } }, "ChangeBatch.Changes: number of elements 0 is below the minimum 1")
end

function TestValidate.test_list_and_map_shapes()
  assert_problem("elbv2", "CreateLoadBalancer", { Name = "trading", Subnets = "subnet-1" },
    "Subnets: expected list of SubnetId (a Lua array), got string")
  assert_problem("elbv2", "CreateLoadBalancer", { Name = "trading", Subnets = { a = "subnet-1" } },
    "Subnets: expected list of SubnetId (a Lua array), got a table with key a")
  assert_problem("elbv2", "CreateLoadBalancer", { Name = "trading", Subnets = { "s-1", 2 } },
    "Subnets[2]: expected string, got number")
  assert_problem("dynamodb", "PutItem", { TableName = "t", Item = { "x" } },
    "Item: map keys must be strings, got number key 1")
end

function TestValidate.test_union_needs_exactly_one_member()
  local m = model("dynamodb")
  if not m.shapes.AttributeValue.union then return end -- older models do not mark it
  assert_problem("dynamodb", "PutItem", { TableName = "t", Item = { k = { S = "a", N = "1" } } },
    'Item["k"]: exactly one member of this union must be set, got 2')
end

function TestValidate.test_timestamps()
  assert_valid("cloudwatch", "GetMetricData", { StartTime = 1700000000, EndTime = "2023-11-14T22:13:20Z",
    MetricDataQueries = { { Id = "q1", Expression = "SUM(METRICS())" } } })
  assert_problem("cloudwatch", "GetMetricData", { StartTime = "yesterday", EndTime = 1,
    MetricDataQueries = { { Id = "q1", Expression = "x" } } },
    "StartTime: expected timestamp (seconds since the epoch, or an ISO 8601 string), got yesterday")
end

function TestValidate.test_every_problem_is_reported_up_to_a_limit()
  local err = assert_problem("ec2", "CreateSubnet", { CidrBlock = 1, Foo = 2 }, "VpcId: required")
  lu.assertStrContains(err, "CidrBlock: expected string")
  lu.assertStrContains(err, "Foo: unknown member")
  local many = {}
  for i = 1, 30 do many["Bad" .. i] = i end
  err = problems("sts", "GetCallerIdentity", many)
  lu.assertStrContains(err, "; and 20 more problems")
end

function TestValidate.test_a_table_that_contains_itself_is_an_error_not_a_crash()
  local item = {}
  item.k = { M = item }
  assert_problem("dynamodb", "PutItem", { TableName = "t", Item = item },
    "nested more than 64 levels deep")
end

function TestValidate.test_route53_ids_from_responses_are_accepted_as_they_are()
  -- "/hostedzone/Z…" (34 characters) comes back from CreateHostedZone; ResourceId allows
  -- 32: like botocore, fo keeps what follows the last '/' before validating and sending.
  local params = { HostedZoneId = "/hostedzone/Z08117301ZPRPQ7CBF7NUX" }
  assert_valid("route53", "ListResourceRecordSets", params)
  lu.assertEquals(params.HostedZoneId, "/hostedzone/Z08117301ZPRPQ7CBF7NUX", "caller's table untouched")
  assert_valid("route53", "GetChange", { Id = "/change/C2682N5HXP0BZ4" })
  assert_problem("route53", "ListResourceRecordSets", { HostedZoneId = string.rep("Z", 33) },
    "HostedZoneId: length 33 is above the maximum 32")
end

function TestValidate.test_params_must_be_a_table_and_operation_must_exist()
  lu.assertErrorMsgContains("table expected", proto.validate, model("ec2"), "CreateVpc", "x")
  lu.assertErrorMsgContains("ec2: no operation named 'CreateVpcs'", proto.validate, model("ec2"),
    "CreateVpcs", {})
end

os.exit(lu.LuaUnit.run())
