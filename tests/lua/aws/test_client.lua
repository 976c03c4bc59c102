-- Service clients: the global `aws` and its constructors (one per service module), a call's path through the
-- codec (validate → serialize → aws.call → parse) against a loopback server, local
-- validation errors (nothing sent), structured AWS errors, unknown operations, help and
-- the operation list. The codec is a stand-in with fo.awsproto's API (support/fake_codec).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local fake = require "support.fake_aws"
local codec_mod = require "support.fake_codec"

local SERVICES = { "ec2", "elbv2", "autoscaling", "route53", "dynamodb", "sns", "cloudwatch", "iam",
              "ssm", "sts", "kms", "logs", "s3", "acm", "servicequotas" }

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  return err
end

TestGlobal = {}

function TestGlobal.test_aws_is_global_and_is_fo_aws_with_the_core_still_there()
  lu.assertIs(aws, fo.aws)
  lu.assertIs(require "fo.aws", aws)
  lu.assertEquals(aws.services, SERVICES)
  for _, name in ipairs(SERVICES) do lu.assertIsFunction(aws[name], name) end
  lu.assertIsFunction(aws.call)
  lu.assertIsFunction(aws.region.resolve)
  lu.assertIsFunction(aws.endpoints.resolve)
  lu.assertIsFunction(aws.credentials.for_profile)
  lu.assertIsTable(aws.retry)
  lu.assertIsFunction(aws.Error.is)
end

function TestGlobal.test_every_service_has_a_client_with_its_model()
  for _, name in ipairs(SERVICES) do
    local c = aws[name]{ region = "eu-central-1" }
    lu.assertEquals(c.service, name)
    lu.assertEquals(c.region, "eu-central-1")
    lu.assertEquals(c.model.name, name)
    lu.assertTrue(#c:operations() > 0)
  end
  lu.assertEquals(tostring(aws.sts{ region = "eu-south-1" }), "aws.sts client (region eu-south-1)")
end

function TestGlobal.test_region_comes_from_the_environment_when_not_given()
  local c = aws.ec2{ env = fake.env{ AWS_REGION = "eu-central-1", HOME = "/nonexistent" } }
  lu.assertEquals(c.region, "eu-central-1")
  local err = error_of(aws.ec2, { env = fake.env{ HOME = "/nonexistent" } })
  lu.assertStrContains(err, "no AWS region")
  lu.assertStrContains(error_of(aws.ec2, "eu-south-1"), "expected a table of options")
end

function TestGlobal.test_unknown_service_has_no_model()
  local err = error_of(require("fo.aws.client").new, "nosuch", { region = "eu-south-1" })
  lu.assertStrContains(err, "no AWS model for service 'nosuch'")
end

TestCalls = {}

function TestCalls:setUp()
  self.codec = codec_mod.new{ reject = { Bad = "expected string, got number" } }
end

function TestCalls:client(s, extra)
  return aws.ec2(codec_mod.client_options(self.codec, s, extra))
end

function TestCalls:test_a_call_validates_serializes_signs_sends_and_parses()
  local s = codec_mod.server{ CreateVpc = function(params)
    return codec_mod.ok{ Vpc = { VpcId = "vpc-1", CidrBlock = params.CidrBlock, State = "pending" } }
  end }
  local ec2 = self:client(s)
  local out, meta = ec2:CreateVpc{ CidrBlock = "10.0.0.0/16" }
  s.close()
  lu.assertEquals(out, { Vpc = { VpcId = "vpc-1", CidrBlock = "10.0.0.0/16", State = "pending" } })
  lu.assertEquals(meta.status, 200)
  lu.assertEquals(meta.attempts, 1)
  lu.assertEquals(meta.request_id, "req-ok")
  lu.assertEquals(s.ops, { "CreateVpc" })
  lu.assertEquals(s.params[1], { CidrBlock = "10.0.0.0/16" })
  local auth = assert(fo.sigv4.parse_authorization(s.requests[1].headers.authorization))
  lu.assertEquals({ auth.service, auth.region, auth.access_key }, { "ec2", "eu-south-1", "AKIDTEST" })
  local order = {}
  for i, c in ipairs(self.codec.calls) do order[i] = c.what .. " " .. c.op end
  lu.assertEquals(order, { "validate CreateVpc", "serialize CreateVpc", "parse CreateVpc" })
end

function TestCalls:test_validation_error_is_raised_locally_and_nothing_is_sent()
  local s = codec_mod.server{}
  local ec2 = self:client(s)
  local err = error_of(ec2.CreateSubnet, ec2, { VpcId = "vpc-1", Bad = 5 })
  s.close()
  lu.assertEquals(err, "ec2.CreateSubnet: Bad: expected string, got number")
  lu.assertEquals(#s.requests, 0)
  lu.assertEquals(#self.codec.calls, 1)
end

function TestCalls:test_a_position_prefix_on_a_codec_message_is_dropped()
  local codec = codec_mod.new()
  codec.validate = function() error("proto_lua.c:1: ec2.CreateVpc: CidrBlock: required member is missing", 0) end
  local ec2 = aws.ec2(codec_mod.client_options(codec, nil))
  lu.assertEquals(error_of(ec2.CreateVpc, ec2, {}), "ec2.CreateVpc: CidrBlock: required member is missing")
end

function TestCalls:test_params_must_be_a_table()
  local ec2 = self:client(nil)
  lu.assertStrContains(error_of(ec2.DescribeVpcs, ec2, "vpc-1"),
    "ec2.DescribeVpcs: params must be a table, got string")
end

function TestCalls:test_error_answer_is_a_structured_error_that_pcall_can_test()
  local s = codec_mod.server{ DeleteVpc = function()
    return codec_mod.error(400, "DependencyViolation", "The vpc has dependencies",
      { Extra = "modelled member" })
  end }
  local ec2 = self:client(s)
  local ok, err = pcall(ec2.DeleteVpc, ec2, { VpcId = "vpc-1" })
  s.close()
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(err, "DependencyViolation"))
  lu.assertFalse(aws.Error.is(err, "InvalidVpcID.NotFound"))
  lu.assertEquals(err.service, "ec2")
  lu.assertEquals(err.operation, "DeleteVpc")
  lu.assertEquals(err.region, "eu-south-1")
  lu.assertEquals(err.message, "The vpc has dependencies")
  lu.assertEquals(err.status, 400)
  lu.assertEquals(err.request_id, "req-DependencyViolation")
  lu.assertFalse(err.retryable)
  lu.assertEquals(err.type, "client")
  lu.assertEquals(err.fields, { Extra = "modelled member" })
  lu.assertEquals(tostring(err), "ec2.DeleteVpc: DependencyViolation (HTTP 400): The vpc has "
    .. "dependencies [request id req-DependencyViolation] [region eu-south-1]")
  lu.assertEquals(#s.requests, 1)
end

function TestCalls:test_retryable_errors_are_retried_by_aws_call()
  local s = codec_mod.server{ DescribeVpcs = function(_, _, n)
    if n == 1 then return codec_mod.error(503, "ServiceUnavailable", "busy") end
    return codec_mod.ok{ Vpcs = {} }
  end }
  local ec2 = self:client(s)
  local out, meta = ec2:DescribeVpcs()
  s.close()
  lu.assertEquals(out, { Vpcs = {} })
  lu.assertEquals(meta.attempts, 2)
end

function TestCalls:test_throttling_that_does_not_end_is_retryable_and_says_so()
  local s = codec_mod.server{ DescribeVpcs = function()
    return codec_mod.error(400, "Throttling", "slow down")
  end }
  local ec2 = self:client(s, { max_attempts = 2 })
  local err = error_of(ec2.DescribeVpcs, ec2, {})
  s.close()
  lu.assertTrue(aws.Error.is(err, "Throttling"))
  lu.assertTrue(err.retryable)
  lu.assertEquals(err.attempts, 2)
  lu.assertEquals(#s.requests, 2)
end

function TestCalls:test_transport_failure_is_a_structured_error_naming_the_endpoint()
  local port = fake.dead_port()
  local ec2 = self:client(nil, { endpoint = "http://user:pw@127.0.0.1:" .. port,
                                 max_attempts = 1 })
  local err = error_of(ec2.DescribeVpcs, ec2, {})
  lu.assertTrue(aws.Error.is(err, "TransportConnect"))
  lu.assertEquals(err.kind, "transport")
  -- which address did not answer, without what the URL carried before the host
  lu.assertEquals(err.endpoint, "http://127.0.0.1:" .. port)
  lu.assertStrContains(tostring(err), "[endpoint http://127.0.0.1:" .. port .. "]")
  lu.assertNotStrContains(tostring(err), "pw")
end

function TestCalls:test_operation_without_input_takes_no_params()
  local s = codec_mod.server{ DescribeAccountLimits = function(params)
    lu.assertEquals(params, {})
    return codec_mod.ok{ MaxNumberOfAutoScalingGroups = 200 }
  end }
  local asg = aws.autoscaling(codec_mod.client_options(self.codec, s))
  lu.assertEquals(asg:DescribeAccountLimits(), { MaxNumberOfAutoScalingGroups = 200 })
  lu.assertStrContains(error_of(asg.DescribeAccountLimits, asg, { X = 1 }),
    "autoscaling.DescribeAccountLimits takes no parameters")
  s.close()
end

function TestCalls:test_operation_without_output_returns_an_empty_table()
  local s = codec_mod.server{ DeleteVpc = function() return { status = 200, body = "" } end }
  local ec2 = self:client(s)
  lu.assertEquals(ec2:DeleteVpc{ VpcId = "vpc-1" }, {})
  s.close()
end

function TestCalls:test_idempotency_tokens_are_filled_in_once_per_call_and_kept_when_given()
  local s = codec_mod.server{ AllocateIpamPoolCidr = function(_, _, n)
    if n == 1 then return codec_mod.error(500, "InternalError", "retry me") end
    return codec_mod.ok{}
  end }
  local ec2 = self:client(s)
  local params = { IpamPoolId = "ipam-pool-1" }
  ec2:AllocateIpamPoolCidr(params)
  lu.assertNil(params.ClientToken, "the caller's table is not modified")
  lu.assertStrMatches(s.params[1].ClientToken,
    "%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x")
  lu.assertEquals(s.params[2].ClientToken, s.params[1].ClientToken, "a retry reuses the token")
  ec2:AllocateIpamPoolCidr{ IpamPoolId = "ipam-pool-1", ClientToken = "mine" }
  lu.assertEquals(s.params[3].ClientToken, "mine")
  s.close()
end

TestNames = {}

function TestNames.test_unknown_operation_names_a_close_one()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local err = error_of(function() return ec2.CreateVPC end)
  lu.assertStrContains(err, "ec2 has no operation or method 'CreateVPC' (did you mean 'CreateVpc'?)")
  err = error_of(function() return ec2:DescribeVpc{} end)
  lu.assertStrContains(err, "(did you mean 'DescribeVpcs'?)")
  err = error_of(function() return ec2.Zzzzzzzzzzzzzz end)
  lu.assertStrContains(err, "ec2 has no operation or method 'Zzzzzzzzzzzzzz'")
  lu.assertNotStrContains(err, "did you mean")
  lu.assertNil(ec2.endpoint) -- unset fields of the client read as nil
  lu.assertNil(ec2.profile)
end

function TestNames.test_calling_with_a_dot_says_to_use_a_colon()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  lu.assertStrContains(error_of(ec2.CreateVpc, { CidrBlock = "10.0.0.0/16" }),
    "call ec2:CreateVpc{...} with a colon")
end

function TestNames.test_operations_are_the_models_sorted()
  local sts = aws.sts{ region = "eu-south-1" }
  lu.assertEquals(sts:operations(), { "AssumeRole", "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity", "AssumeRoot", "DecodeAuthorizationMessage", "GetAccessKeyInfo",
    "GetCallerIdentity", "GetDelegatedAccessToken", "GetFederationToken", "GetSessionToken",
    "GetWebIdentityToken" })
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local ops = ec2:operations()
  local n = 0
  for _ in pairs(ec2.model.operations) do n = n + 1 end
  lu.assertEquals(#ops, n)
  for i = 2, #ops do lu.assertTrue(ops[i - 1] < ops[i]) end
end

TestHelp = {}

function TestHelp.test_help_shows_members_types_required_enums_and_ranges()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local h = ec2:help("CreateSubnet")
  lu.assertStrContains(h, "ec2:CreateSubnet(params)")
  lu.assertStrContains(h, "input CreateSubnetRequest:\n  VpcId (required): string\n")
  lu.assertStrContains(h, "  TagSpecifications: list of structure TagSpecification\n")
  lu.assertStrContains(h, "    ResourceType: enum (capacity-reservation | client-vpn-endpoint")
  lu.assertStrContains(h, "more))")
  lu.assertStrContains(h, "    Tags: list of structure Tag\n      Key: string\n      Value: string")
  lu.assertStrContains(h, "output CreateSubnetResult:\n  Subnet: structure Subnet")
  h = ec2:help("DescribeVpcs")
  lu.assertStrContains(h, "MaxResults: integer (value 5..1000)")
  lu.assertStrContains(h, 'paginate: ec2:paginate("DescribeVpcs", params)')
  lu.assertStrContains(h, "waiters: VpcAvailable, VpcExists")
end

function TestHelp.test_help_bounds_depth_and_recursion()
  local ddb = aws.dynamodb{ region = "eu-south-1" }
  local h = ddb:help("PutItem")
  lu.assertStrContains(h, "  Item (required): map of string (length <= 65535) to structure AttributeValue")
  lu.assertStrContains(h, "    L: list of structure AttributeValue\n      (AttributeValue, recursive: see above)")
  lu.assertStrContains(h, "TableName (required): string (length 1..1024)")
  local shallow = ddb:help("PutItem", { depth = 1 })
  lu.assertNotStrContains(shallow, "    L: ")
  lu.assertStrContains(shallow, "  Item (required)")
end

function TestHelp.test_help_print_option_prints_and_returns_the_text()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  local printed = {}
  local old = print
  print = function(s) printed[#printed + 1] = s end -- luacheck: ignore
  local ok, text = pcall(ec2.help, ec2, "DeleteVpc", { print = true })
  print = old -- luacheck: ignore
  lu.assertTrue(ok, text)
  lu.assertEquals(printed, { text })
  lu.assertStrContains(text, "output: none")
end

function TestHelp.test_help_without_operation_describes_the_service_and_errors_name_a_close_one()
  local iam = aws.iam{ region = "eu-south-1" }
  local h = iam:help()
  lu.assertStrContains(h, "aws.iam: AWS Identity and Access Management (protocol query")
  lu.assertStrContains(h, "waiters: InstanceProfileExists, PolicyExists, RoleExists, UserExists")
  lu.assertStrContains(error_of(iam.help, iam, "getrole"), "(did you mean 'GetRole'?)")
  local asg = aws.autoscaling{ region = "eu-south-1" }
  lu.assertStrContains(asg:help("DescribeAccountLimits"), "input: none (params optional)")
end

os.exit(lu.LuaUnit.run())
