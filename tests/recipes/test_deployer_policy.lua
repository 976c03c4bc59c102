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
  iam:PutRolePolicy{ RoleName = "deployer", PolicyName = "fo-deployer",
    PolicyDocument = cjson.encode(doc) }
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
  lu.assertItemsEquals(by_action["iam:CreateRole"].Resource, { role, flow_roles[1], flow_roles[2] })
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
