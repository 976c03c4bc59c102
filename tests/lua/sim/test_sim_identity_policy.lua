-- The simulator's identity-policy evaluation (fo.sim.iam_policy, fo.sim.authz): IAM's
-- statement matching, and a role session refused in each protocol's words.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local iam_policy = require "fo.sim.iam_policy"

local function decide(statements, action, resource, context)
  return iam_policy.decide({ cjson.encode{ Version = "2012-10-17", Statement = statements } },
    action, resource, context or {})
end

TestIdentityPolicy = {}

function TestIdentityPolicy:test_actions_match_with_wildcards_and_in_any_case()
  local s = { { Effect = "Allow", Action = { "ec2:Describe*", "IAM:getrole" }, Resource = "*" } }
  lu.assertEquals(decide(s, "ec2:DescribeVpcs", "*"), "allow")
  lu.assertEquals(decide(s, "iam:GetRole", "arn:aws:iam::1:role/r"), "allow")
  lu.assertEquals(decide(s, "ec2:CreateVpc", "*"), "implicit")
end

function TestIdentityPolicy:test_not_action_and_not_resource()
  local s = { { Effect = "Allow", NotAction = "iam:*", Resource = "*" } }
  lu.assertEquals(decide(s, "ec2:CreateVpc", "*"), "allow")
  lu.assertEquals(decide(s, "iam:CreateRole", "*"), "implicit")
  s = { { Effect = "Allow", Action = "sns:*", NotResource = "arn:aws:sns:*:*:secret-*" } }
  lu.assertEquals(decide(s, "sns:Publish", "arn:aws:sns:eu-south-1:1:topic"), "allow")
  lu.assertEquals(decide(s, "sns:Publish", "arn:aws:sns:eu-south-1:1:secret-x"), "implicit")
end

function TestIdentityPolicy:test_an_arn_resource_does_not_cover_calls_authorized_on_star()
  local s = { { Effect = "Allow", Action = "ec2:*", Resource = "arn:aws:ec2:*:*:vpc/*" } }
  lu.assertEquals(decide(s, "ec2:DescribeVpcs", "*"), "implicit")
end

function TestIdentityPolicy:test_policy_variables_in_resources()
  local s = { { Effect = "Allow", Action = "iam:GetRole",
    Resource = "arn:aws:iam::${aws:PrincipalAccount}:role/app" } }
  lu.assertEquals(decide(s, "iam:GetRole", "arn:aws:iam::111122223333:role/app",
    { ["aws:PrincipalAccount"] = "111122223333" }), "allow")
  lu.assertEquals(decide(s, "iam:GetRole", "arn:aws:iam::444455556666:role/app",
    { ["aws:PrincipalAccount"] = "111122223333" }), "implicit")
end

function TestIdentityPolicy:test_conditions_and_an_explicit_deny()
  local s = { { Effect = "Allow", Action = "iam:CreateServiceLinkedRole", Resource = "*",
    Condition = { StringEquals = { ["iam:AWSServiceName"] = { "autoscaling.amazonaws.com" } } } } }
  lu.assertEquals(decide(s, "iam:CreateServiceLinkedRole", "*",
    { ["iam:AWSServiceName"] = "autoscaling.amazonaws.com" }), "allow")
  lu.assertEquals(decide(s, "iam:CreateServiceLinkedRole", "*",
    { ["iam:AWSServiceName"] = "rds.amazonaws.com" }), "implicit")
  lu.assertEquals(decide(s, "iam:CreateServiceLinkedRole", "*", {}), "implicit")
  s = { { Effect = "Allow", Action = "*", Resource = "*" },
    { Effect = "Deny", Action = "ec2:CreateVpc", Resource = "*",
      Condition = { StringNotEquals = { ["aws:RequestTag/fo:stack"] = "prod" } } } }
  lu.assertEquals(decide(s, "ec2:CreateVpc", "*", { ["aws:RequestTag/fo:stack"] = "dev" }), "deny")
  lu.assertEquals(decide(s, "ec2:CreateVpc", "*", { ["aws:RequestTag/fo:stack"] = "prod" }), "allow")
end

-- A sim with a role whose only policy allows `statements`, and clients of its session.
local function session(statements)
  local sim = fo.sim.new{ seed = "identity-policy" }
  local iam = sim:client("iam")
  iam:CreateRole{ RoleName = "r", AssumeRolePolicyDocument = cjson.encode{ Statement = { {
    Effect = "Allow", Principal = { AWS = sim.account }, Action = "sts:AssumeRole" } } } }
  iam:PutRolePolicy{ RoleName = "r", PolicyName = "p",
    PolicyDocument = cjson.encode{ Version = "2012-10-17", Statement = statements } }
  local c = sim:client("sts"):AssumeRole{ RoleArn = "arn:aws:iam::" .. sim.account .. ":role/r",
    RoleSessionName = "ci" }.Credentials
  return sim, function(service, region)
    return sim:client(service, { region = region, access_key = c.AccessKeyId,
      secret_key = c.SecretAccessKey, session_token = c.SessionToken })
  end
end

local function refused(f)
  local ok, err = pcall(f)
  lu.assertFalse(ok, "the call was allowed")
  return err
end

function TestIdentityPolicy:test_a_role_session_is_refused_in_each_protocols_words()
  local sim, client = session{ { Effect = "Allow", Action = "dynamodb:DescribeTable",
    Resource = "arn:aws:dynamodb:eu-south-1:${aws:PrincipalAccount}:table/t" } }
  local e = refused(function() return client("ec2", "eu-south-1"):DescribeVpcs{} end)
  lu.assertEquals(e.code, "UnauthorizedOperation")
  lu.assertEquals(e.status, 403)
  lu.assertStrContains(e.message, "is not authorized to perform: ec2:DescribeVpcs")
  lu.assertStrContains(e.message, "Encoded authorization failure message: ")
  e = refused(function() return client("dynamodb", "eu-south-1"):DescribeTable{ TableName = "u" } end)
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "on resource: arn:aws:dynamodb:eu-south-1:" .. sim.account
    .. ":table/u because no identity-based policy allows the dynamodb:DescribeTable action")
  -- allowed, the call reaches the handler (which answers the table is not there)
  e = refused(function() return client("dynamodb", "eu-south-1"):DescribeTable{ TableName = "t" } end)
  lu.assertEquals(e.code, "ResourceNotFoundException")
  e = refused(function() return client("route53"):ListHostedZones{} end)
  lu.assertEquals(e.code, "AccessDenied")
  e = refused(function() return client("elbv2", "eu-south-1"):DescribeLoadBalancers{} end)
  lu.assertEquals(e.code, "AccessDenied")
  lu.assertStrContains(e.message, "elasticloadbalancing:DescribeLoadBalancers")
  -- GetCallerIdentity needs no permission; the sim's own key keeps full access
  lu.assertStrContains(client("sts"):GetCallerIdentity{}.Arn, ":assumed-role/r/ci")
  lu.assertNotNil(sim:client("ec2", { region = "eu-south-1" }):DescribeVpcs{}.Vpcs)
end

function TestIdentityPolicy:test_a_role_without_inline_policies_keeps_full_access()
  local sim = fo.sim.new{ seed = "identity-policy" }
  sim:client("iam"):CreateRole{ RoleName = "open", AssumeRolePolicyDocument = cjson.encode{
    Statement = { { Effect = "Allow", Principal = { AWS = sim.account }, Action = "sts:AssumeRole" } } } }
  local c = sim:client("sts"):AssumeRole{ RoleArn = "arn:aws:iam::" .. sim.account .. ":role/open",
    RoleSessionName = "ci" }.Credentials
  local ec2 = sim:client("ec2", { region = "eu-south-1", access_key = c.AccessKeyId,
    secret_key = c.SecretAccessKey, session_token = c.SessionToken })
  lu.assertNotNil(ec2:DescribeVpcs{}.Vpcs)
end

os.exit(lu.LuaUnit.run())
