-- The deployer's least privilege: `fo-run --print-policy recipes/trading.lua` prints a
-- policy; a role in the simulator holding exactly that policy (an inline policy, which the
-- sim evaluates for the role's sessions: fo.sim.authz) deploys, updates and destroys the
-- stack with the temporary credentials sts AssumeRole issues; without one of its actions
-- the apply fails with the access-denied error naming that action.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local cjson = require "cjson"
local engine = require "fo.engine"
local dynamodb_sim = require "fo.sim.services.dynamodb"

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"

-- Transitions take no virtual time (as in the fault matrix): a run takes a fraction of a second.
local TIMING = { lb_provisioning = 0, lb_eni_release = 0, instance_terminate = 0, group_delete = 0,
  profile_propagation = 0, terminated_visible = 0 }

local printed -- the policy document fo-run printed (decoded), once for the suite
local function policy()
  if not printed then
    local r = testlib.run_fo({ "--print-policy", RECIPE }, { timeout = 120 })
    lu.assertEquals(r.code, 0, r.stderr)
    printed = cjson.decode(r.stdout)
  end
  return printed
end

-- A simulator with role "deployer" holding `doc` (inline) and the sim's clients speaking
-- with that role's temporary credentials (sim.client_key). Returns the sim and the key.
local function as_deployer(doc)
  local sim = fo.sim.new{ seed = "deployer-policy" }
  sim.timing = TIMING
  local iam, sts = sim:client("iam"), sim:client("sts")
  iam:CreateRole{ RoleName = "deployer", MaxSessionDuration = 43200,
    AssumeRolePolicyDocument = cjson.encode{ Version = "2012-10-17", Statement = { {
      Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. sim.account .. ":root" },
      Action = "sts:AssumeRole" } } } }
  -- as fo-run prints it: "/" not escaped (cjson writes "\\/", which IAM would count)
  iam:PutRolePolicy{ RoleName = "deployer", PolicyName = "fo-deployer",
    PolicyDocument = (cjson.encode(doc):gsub("\\/", "/")) }
  local c = sts:AssumeRole{ RoleArn = ("arn:aws:iam::%s:role/deployer"):format(sim.account),
    RoleSessionName = "ci", DurationSeconds = 43200 }.Credentials
  local key = { access_key = c.AccessKeyId, secret_key = c.SecretAccessKey,
    session_token = c.SessionToken }
  sim.client_key = key
  return sim, key
end

local function run(sim, dir, config, mode)
  local out = {}
  local saved, t = dynamodb_sim.TIMING, {}
  for k in pairs(saved) do t[k] = 0 end
  dynamodb_sim.TIMING = t
  local ok, code = pcall(engine.run, { recipe = RECIPE, sim = sim, dir = dir, config = config,
    mode = mode, out = function(s) out[#out + 1] = s end, err = function(s) out[#out + 1] = s end })
  dynamodb_sim.TIMING = saved
  if not ok then error(code, 0) end
  return code, table.concat(out)
end

TestDeployerPolicy = {}

function TestDeployerPolicy:test_the_printed_policy_is_scoped_to_the_stack()
  local doc = policy()
  lu.assertEquals(doc.Version, "2012-10-17")
  local by_action, by_sid = {}, {}
  for _, s in ipairs(doc.Statement) do
    lu.assertEquals(s.Effect, "Allow")
    if s.Sid then by_sid[s.Sid] = s end
    for _, a in ipairs(type(s.Action) == "table" and s.Action or { s.Action }) do
      by_action[a] = s
    end
  end
  local role = "arn:aws:iam::${aws:PrincipalAccount}:role/ec2-role-dev"
  local flow_roles = { "arn:aws:iam::${aws:PrincipalAccount}:role/flow-logs-role-primary-dev",
    "arn:aws:iam::${aws:PrincipalAccount}:role/flow-logs-role-standby-dev" }
  -- the roles among the ARNs iam:CreateRole's statement lists (the statement serves other
  -- services' actions too: a role action is authorized on roles only)
  local roles = {}
  for _, r in ipairs(by_action["iam:CreateRole"].Resource) do
    if r:find("^arn:aws:iam::") and r:find(":role/", 1, true) then roles[#roles + 1] = r end
  end
  lu.assertItemsEquals(roles, { role, flow_roles[1], flow_roles[2] })
  -- the instance role is passed to EC2 only; the flow logs' roles with CreateFlowLogs
  lu.assertEquals(by_sid.PassInstanceRole.Resource, role)
  lu.assertEquals(by_sid.PassInstanceRole.Condition,
    { StringEquals = { ["iam:PassedToService"] = "ec2.amazonaws.com" } })
  lu.assertEquals(by_sid.PassFlowLogsRoles.Action, "iam:PassRole")
  lu.assertItemsEquals(by_sid.PassFlowLogsRoles.Resource, flow_roles)
  lu.assertItemsEquals(by_action["iam:CreateServiceLinkedRole"].Condition.StringEquals["iam:AWSServiceName"],
    { "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com",
      "replication.dynamodb.amazonaws.com" })
  lu.assertStrContains(cjson.encode(by_action["dynamodb:UpdateTable"].Resource),
    "table\\/trading-sessions-dev")
  lu.assertEquals(by_action["ec2:CreateVpc"].Resource, "*")
  lu.assertEquals(by_action["ec2:CreateVpc"].Condition,
    { StringEquals = { ["aws:RequestTag/fo:stack"] = "dev" } })
  -- what the lifecycle's update and rollback call is there, what fo never calls is not
  lu.assertNotNil(by_action["autoscaling:UpdateAutoScalingGroup"])
  lu.assertNil(by_action["sts:GetCallerIdentity"]) -- IAM never checks it
  lu.assertNil(by_action["ec2:RunInstances"]) -- Auto Scaling launches them
  -- S3's IAM actions are not all its operations' names: HeadBucket is s3:ListBucket,
  -- GetBucketEncryption s3:GetEncryptionConfiguration, deleting versions (the log buckets'
  -- emptying) s3:DeleteObjectVersion after s3:ListBucketVersions; tags in CreateBucket
  -- need s3:TagResource
  for _, a in ipairs({ "s3:ListBucket", "s3:GetEncryptionConfiguration", "s3:ListBucketVersions",
      "s3:DeleteObjectVersion", "s3:PutBucketPublicAccessBlock", "s3:TagResource" }) do
    lu.assertNotNil(by_action[a], a)
  end
  for _, a in ipairs({ "s3:HeadBucket", "s3:GetBucketEncryption", "s3:DeleteObjects",
      "s3:ListObjectVersions", "s3:PutPublicAccessBlock" }) do
    lu.assertNil(by_action[a], a .. " is no IAM action")
  end
end

function TestDeployerPolicy:test_the_policy_alone_deploys_updates_and_destroys()
  local sim, key = as_deployer(policy())
  local dir = testlib.tmpdir()
  local code, out = run(sim, dir, {})
  lu.assertEquals(code, 0, out)
  code, out = run(sim, dir, { primaryCapacity = "3", standbyCapacity = "2", maxCapacity = "7" })
  lu.assertEquals(code, 0, out)
  code, out = run(sim, dir, {}, "destroy")
  lu.assertEquals(code, 0, out)
  -- the role's policy was enforced all along: what it does not allow is refused
  local ok, err = pcall(function() return sim:client("sns"):ListTopics{} end)
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "AuthorizationError")
  lu.assertStrContains(err.message, "sns:ListTopics")
  lu.assertStrContains(tostring(key.access_key), "ASIA")
  -- EC2 creates are allowed only for resources tagged as the stack's
  local ec2 = sim:client("ec2", { region = "eu-south-1" })
  local function create_vpc(stack)
    return pcall(ec2.CreateVpc, ec2, { CidrBlock = "10.99.0.0/16", TagSpecifications = { {
      ResourceType = "vpc", Tags = { { Key = "fo:stack", Value = stack } } } } })
  end
  ok, err = create_vpc("other")
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "UnauthorizedOperation")
  lu.assertTrue((create_vpc("dev")))
  testlib.rmtree(dir)
end

-- The actions AWS's Service Authorization Reference authorizes on no resource type (their
-- Resource element must be "*"): the only ones the policy may allow on "*" unconditionally.
-- A change that widens another action to "*" fails here.
local NO_RESOURCE_TYPE = {
  "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribePolicies",
  "ec2:DescribeFlowLogs", "ec2:DescribeInternetGateways", "ec2:DescribeLaunchTemplateVersions",
  "ec2:DescribeLaunchTemplates", "ec2:DescribePrefixLists", "ec2:DescribeRouteTables",
  "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
  "ec2:DescribeVpcAttribute", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs",
  "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerAttributes",
  "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTags",
  "elasticloadbalancing:DescribeTargetGroups",
  "kms:CreateKey", "kms:ListAliases",
  "logs:DescribeLogGroups",
  "route53:CreateHealthCheck", "route53:CreateHostedZone", "route53:ListHostedZonesByName",
}

function TestDeployerPolicy:test_no_action_aws_scopes_to_a_resource_is_allowed_on_star()
  local allowed = {}
  for _, a in ipairs(NO_RESOURCE_TYPE) do allowed[a] = true end
  local seen = {}
  for _, s in ipairs(policy().Statement) do
    local resources = type(s.Resource) == "table" and s.Resource or { s.Resource }
    local star = false
    for _, r in ipairs(resources) do star = star or r == "*" end
    if star then
      local cond = s.Condition and s.Condition.StringEquals or {}
      for _, a in ipairs(type(s.Action) == "table" and s.Action or { s.Action }) do
        if cond["aws:RequestTag/fo:stack"] == "dev" then
          -- EC2 creates: only with the stack's tag in the request
          lu.assertStrMatches(a, "ec2:Create.*")
        elseif cond["ec2:CreateAction"] then
          lu.assertEquals(a, "ec2:CreateTags") -- tagging only within those creates
        else
          lu.assertTrue(allowed[a], a .. " is allowed on \"*\" but AWS authorizes it on a resource")
          seen[a] = true
        end
      end
    end
  end
  lu.assertItemsEquals(NO_RESOURCE_TYPE, (function()
    local out = {}
    for a in pairs(seen) do out[#out + 1] = a end
    return out
  end)())
  -- EC2 actions on existing resources: the types' ARNs, only with the stack's tag
  local by_action = {}
  for _, s in ipairs(policy().Statement) do
    for _, a in ipairs(type(s.Action) == "table" and s.Action or { s.Action }) do
      by_action[a] = by_action[a] or {}
      table.insert(by_action[a], s)
    end
  end
  for _, a in ipairs{ "ec2:DeleteVpc", "ec2:AuthorizeSecurityGroupIngress", "ec2:AssociateRouteTable",
      "ec2:DeleteSecurityGroup", "ec2:CreateRoute", "kms:ScheduleKeyDeletion" } do
    lu.assertEquals(#by_action[a], 1, a)
    local s = by_action[a][1]
    lu.assertEquals(s.Condition.StringEquals["aws:ResourceTag/fo:stack"], "dev", a)
  end
  local function set(resources)
    local out = {}
    for _, r in ipairs(type(resources) == "table" and resources or { resources }) do out[r] = true end
    return out
  end
  local tagged = set(by_action["ec2:DeleteVpc"][1].Resource)
  for _, t in ipairs{ "vpc", "subnet", "route-table", "security-group", "internet-gateway" } do
    lu.assertTrue(tagged["arn:aws:ec2:*:${aws:PrincipalAccount}:" .. t .. "/*"], t)
  end
  lu.assertItemsEquals(by_action["ec2:DeleteVpc"][1].Condition.StringEquals["aws:RequestedRegion"],
    { "eu-central-1", "eu-south-1", "us-east-1" })
  -- named resources: the stack's names (generated ids as "*"), in the stack's regions
  local named_stmt = by_action["elasticloadbalancing:DeleteLoadBalancer"][1]
  local named = set(named_stmt.Resource)
  local acct = "${aws:PrincipalAccount}"
  for _, arn in ipairs{
      "arn:aws:elasticloadbalancing:*:" .. acct .. ":loadbalancer/app/alb-primary-dev/*",
      "arn:aws:autoscaling:*:" .. acct .. ":autoScalingGroup:*:autoScalingGroupName/asg-primary-dev",
      "arn:aws:cloudwatch:*:" .. acct .. ":alarm:alb-5xx-alarm-primary-dev",
      "arn:aws:logs:*:" .. acct .. ":log-group:/trading/dev/primary/app*",
      "arn:aws:s3:::alb-logs-" .. acct .. "-eu-south-1-dev",
      "arn:aws:route53:::hostedzone/*" } do
    lu.assertTrue(named[arn], arn)
  end
  lu.assertItemsEquals(named_stmt.Condition.StringEquals["aws:RequestedRegion"],
    { "eu-central-1", "eu-south-1", "us-east-1" })
  -- Route 53 has no aws:ResourceTag: its zones and checks are scoped by type only
  lu.assertNil(by_action["route53:DeleteHostedZone"][1].Condition.StringEquals["aws:ResourceTag/fo:stack"])
  -- IAM's limit for a role's inline policies: 10,240 characters without white space
  local size = #(cjson.encode(policy()):gsub("\\/", "/"))
  lu.assertTrue(size <= 10240, size)
end

-- The deployer acts on the EC2 resources tagged as the stack's only: a VPC and a security
-- group made by hand in the same account (untagged, or another stack's) are refused with
-- EC2's UnauthorizedOperation; the same calls on resources tagged fo:stack = dev succeed.
function TestDeployerPolicy:test_the_deployer_cannot_touch_what_its_stack_did_not_tag()
  local sim, key = as_deployer(policy())
  local region = "eu-south-1"
  sim.client_key = nil -- the account's administrator
  local admin = sim:client("ec2", { region = region })
  local function make(tags)
    local spec = tags and { { ResourceType = "vpc", Tags = tags } } or nil
    local vpc = admin:CreateVpc{ CidrBlock = "10.42.0.0/16", TagSpecifications = spec }.Vpc.VpcId
    local sg = admin:CreateSecurityGroup{ GroupName = "hand-made", Description = "by hand",
      VpcId = vpc, TagSpecifications = tags and { { ResourceType = "security-group", Tags = tags } }
        or nil }.GroupId
    return vpc, sg
  end
  local untagged_vpc, untagged_sg = make(nil)
  local other_vpc, other_sg = make({ { Key = "fo:stack", Value = "prod" } })
  local own_vpc, own_sg = make({ { Key = "fo:stack", Value = "dev" } })
  sim.client_key = key
  local ec2 = sim:client("ec2", { region = region })
  local function try(op, params)
    return pcall(ec2[op], ec2, params)
  end
  for _, ids in ipairs{ { untagged_vpc, untagged_sg }, { other_vpc, other_sg } } do
    local vpc, sg = ids[1], ids[2]
    for _, call in ipairs{
        { "AuthorizeSecurityGroupIngress", { GroupId = sg, IpPermissions = { { IpProtocol = "tcp",
          FromPort = 22, ToPort = 22, IpRanges = { { CidrIp = "0.0.0.0/0" } } } } } },
        { "DeleteSecurityGroup", { GroupId = sg } },
        { "ModifyVpcAttribute", { VpcId = vpc, EnableDnsHostnames = { Value = true } } },
        { "DeleteVpc", { VpcId = vpc } } } do
      local ok, err = try(call[1], call[2])
      lu.assertFalse(ok, call[1] .. " on a resource the stack did not tag")
      lu.assertEquals(err.code, "UnauthorizedOperation", call[1])
      lu.assertStrContains(err.message, "is not authorized to perform: ec2:" .. call[1])
    end
  end
  -- still there: the refused calls changed nothing
  sim.client_key = nil
  lu.assertEquals(#admin:DescribeSecurityGroups{ GroupIds = { untagged_sg, other_sg } }.SecurityGroups, 2)
  sim.client_key = key
  -- the stack's own (tagged fo:stack = dev): allowed
  lu.assertTrue((try("AuthorizeSecurityGroupIngress", { GroupId = own_sg, IpPermissions = { {
    IpProtocol = "tcp", FromPort = 443, ToPort = 443, IpRanges = { { CidrIp = "10.0.0.0/8" } } } } })))
  lu.assertTrue((try("ModifyVpcAttribute", { VpcId = own_vpc, EnableDnsHostnames = { Value = true } })))
  -- AssociateRouteTable acts on the route table and the subnet: both must be the stack's
  sim.client_key = nil
  local function tagged(rtype) return { { ResourceType = rtype, Tags = { { Key = "fo:stack", Value = "dev" } } } } end
  local rtb = admin:CreateRouteTable{ VpcId = own_vpc, TagSpecifications = tagged("route-table") }
    .RouteTable.RouteTableId
  local own_subnet = admin:CreateSubnet{ VpcId = own_vpc, CidrBlock = "10.42.1.0/24",
    TagSpecifications = tagged("subnet") }.Subnet.SubnetId
  local bare_subnet = admin:CreateSubnet{ VpcId = own_vpc, CidrBlock = "10.42.2.0/24" }.Subnet.SubnetId
  sim.client_key = key
  local ok, err = try("AssociateRouteTable", { RouteTableId = rtb, SubnetId = bare_subnet })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "UnauthorizedOperation")
  lu.assertStrContains(err.message, "subnet/" .. bare_subnet)
  local assoc
  ok, assoc = try("AssociateRouteTable", { RouteTableId = rtb, SubnetId = own_subnet })
  lu.assertTrue(ok, tostring(assoc and assoc.message))
  lu.assertTrue((try("DisassociateRouteTable", { AssociationId = assoc.AssociationId })))
  lu.assertTrue((try("DeleteSubnet", { SubnetId = own_subnet })))
  lu.assertTrue((try("DeleteRouteTable", { RouteTableId = rtb })))
  sim.client_key = nil
  admin:DeleteSubnet{ SubnetId = bare_subnet }
  sim.client_key = key
  lu.assertTrue((try("DeleteSecurityGroup", { GroupId = own_sg })))
  lu.assertTrue((try("DeleteVpc", { VpcId = own_vpc })))
  -- a KMS key is scoped by its fo:stack tag too (KMS answers AccessDeniedException); an
  -- alarm by the stack's alarm names (CloudWatch answers AccessDenied)
  sim.client_key = nil
  local key_id = sim:client("kms", { region = region }):CreateKey{}.KeyMetadata.KeyId
  sim.client_key = key
  ok, err = pcall(function()
    return sim:client("kms", { region = region }):ScheduleKeyDeletion{ KeyId = key_id,
      PendingWindowInDays = 7 }
  end)
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "AccessDeniedException")
  lu.assertStrContains(err.message, "kms:ScheduleKeyDeletion on resource: arn:aws:kms:" .. region)
  local cw = sim:client("cloudwatch", { region = region })
  ok, err = pcall(cw.DeleteAlarms, cw, { AlarmNames = { "someone-elses-alarm" } })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "AccessDenied")
  lu.assertStrContains(err.message, "alarm:someone-elses-alarm")
end

function TestDeployerPolicy:test_without_one_action_the_apply_is_denied_naming_it()
  local doc = cjson.decode(cjson.encode(policy()))
  local removed = false
  for _, s in ipairs(doc.Statement) do
    if type(s.Action) == "table" then
      for i, a in ipairs(s.Action) do
        if a == "ec2:CreateSubnet" then table.remove(s.Action, i); removed = true; break end
      end
    end
  end
  lu.assertTrue(removed)
  local sim = as_deployer(doc)
  local dir = testlib.tmpdir()
  local code, out = run(sim, dir, {})
  lu.assertTrue(code == 4 or code == 3, ("exit %d:\n%s"):format(code, out))
  lu.assertStrContains(out, "UnauthorizedOperation")
  lu.assertStrContains(out, "is not authorized to perform: ec2:CreateSubnet")
  testlib.rmtree(dir)
end

-- With https=true the lifecycle makes the certificates too (its private simulator has every
-- zone delegated, else ACM would never issue them): the policy holds the ACM actions and
-- alone deploys and destroys the HTTPS stack in an account whose domain is delegated.
function TestDeployerPolicy:test_with_https_the_policy_holds_acm_and_alone_deploys_and_destroys()
  local r = testlib.run_fo({ "--print-policy", "--config", "https=true", RECIPE }, { timeout = 120 })
  lu.assertEquals(r.code, 0, r.stderr)
  for _, a in ipairs{ "acm:RequestCertificate", "acm:DescribeCertificate", "acm:DeleteCertificate" } do
    lu.assertStrContains(r.stdout, '"' .. a .. '"')
  end
  local sim = as_deployer(cjson.decode(r.stdout))
  sim:set_knob("registered_domains", { "trading.fo.test" })
  local dir = testlib.tmpdir()
  local code, out = run(sim, dir, { https = "true" })
  lu.assertEquals(code, 0, out)
  code, out = run(sim, dir, { https = "true" }, "destroy")
  lu.assertEquals(code, 0, out)
  testlib.rmtree(dir)
end

function TestDeployerPolicy:test_print_policy_does_nothing_else()
  local r = testlib.run_fo({ "--print-policy", "--destroy", RECIPE })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "--print-policy runs the recipe's lifecycle on a private simulator")
  lu.assertEquals(r.stdout, "")
end

os.exit(lu.LuaUnit.run())
