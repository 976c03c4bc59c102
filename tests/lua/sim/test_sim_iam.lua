-- The simulator's IAM through fo's own client (the wire path, query protocol): the
-- failover stack's role + inline policy + instance profile built and torn down with
-- every DeleteConflict on the way, ids/ARNs/URL-encoded documents as AWS answers them,
-- IAM's errors, tags and Marker paging.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"

local TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
  .. '{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
local POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem",'
  .. '"dynamodb:PutItem"],"Resource":["arn:aws:dynamodb:eu-south-1:123456789012:table/t",'
  .. '"arn:aws:dynamodb:eu-central-1:123456789012:table/t"]},{"Effect":"Allow","Action":'
  .. '"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"Trading/App"}}}]}'
local SSM = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"

local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function aws_error(code, fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected " .. code)
  lu.assertTrue(aws.Error.is(e), tostring(e))
  lu.assertEquals(e.code, code, tostring(e))
  return e
end

TestSimIam = {}

function TestSimIam:setUp()
  self.sim = simlib.new{ seed = "iam" }
  self.iam = self.sim:client("iam", {})
end

local function make_role(iam, name, extra)
  local p = { RoleName = name, Path = "/fo/", AssumeRolePolicyDocument = TRUST,
    Description = "EC2 app instances", Tags = { { Key = "fo:stack", Value = "trading-prod" } } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return iam:CreateRole(p).Role
end

function TestSimIam:test_role_policy_and_instance_profile_build_and_teardown()
  local iam = self.iam
  local role = make_role(iam, "role-trading-app-prod")
  lu.assertStrMatches(role.RoleId, "AROA[A-Z0-9]+")
  lu.assertEquals(#role.RoleId, 21)
  lu.assertEquals(role.Arn, "arn:aws:iam::123456789012:role/fo/role-trading-app-prod")
  lu.assertEquals(role.Path, "/fo/")
  lu.assertEquals(role.MaxSessionDuration, 3600)
  lu.assertEquals(type(role.CreateDate), "number")
  lu.assertEquals(role.Tags, { { Key = "fo:stack", Value = "trading-prod" } })
  -- The trust policy comes back URL-encoded, as IAM sends it (the AWS CLI decodes it).
  lu.assertStrContains(role.AssumeRolePolicyDocument, "%7B%22Version%22%3A%222012-10-17%22")
  local got = iam:GetRole{ RoleName = "role-trading-app-prod" }.Role
  lu.assertEquals(url_decode(got.AssumeRolePolicyDocument), TRUST)
  lu.assertEquals(got.RoleLastUsed, {})
  lu.assertEquals(got.Description, "EC2 app instances")

  iam:PutRolePolicy{ RoleName = role.RoleName, PolicyName = "trading-sessions-access", PolicyDocument = POLICY }
  local rp = iam:GetRolePolicy{ RoleName = role.RoleName, PolicyName = "trading-sessions-access" }
  lu.assertEquals(url_decode(rp.PolicyDocument), POLICY)
  lu.assertEquals(rp.RoleName, role.RoleName)
  lu.assertEquals(iam:ListRolePolicies{ RoleName = role.RoleName }.PolicyNames, { "trading-sessions-access" })
  iam:AttachRolePolicy{ RoleName = role.RoleName, PolicyArn = SSM }
  lu.assertEquals(iam:ListAttachedRolePolicies{ RoleName = role.RoleName }.AttachedPolicies,
    { { PolicyName = "AmazonSSMManagedInstanceCore", PolicyArn = SSM } })

  local ip = iam:CreateInstanceProfile{ InstanceProfileName = "ip-trading-app-prod", Path = "/fo/",
    Tags = { { Key = "fo:stack", Value = "trading-prod" } } }.InstanceProfile
  lu.assertStrMatches(ip.InstanceProfileId, "AIPA[A-Z0-9]+")
  lu.assertEquals(#ip.InstanceProfileId, 21)
  lu.assertEquals(ip.Arn, "arn:aws:iam::123456789012:instance-profile/fo/ip-trading-app-prod")
  lu.assertEquals(ip.Roles, {})
  iam:AddRoleToInstanceProfile{ InstanceProfileName = ip.InstanceProfileName, RoleName = role.RoleName }
  local gip = iam:GetInstanceProfile{ InstanceProfileName = ip.InstanceProfileName }.InstanceProfile
  lu.assertEquals(#gip.Roles, 1)
  lu.assertEquals(gip.Roles[1].RoleId, role.RoleId)
  lu.assertEquals(gip.Tags, { { Key = "fo:stack", Value = "trading-prod" } })
  local profiles = iam:ListInstanceProfilesForRole{ RoleName = role.RoleName }.InstanceProfiles
  lu.assertEquals(#profiles, 1)
  lu.assertEquals(profiles[1].InstanceProfileName, "ip-trading-app-prod")
  -- The creation and role times other services use to model propagation.
  local rec = self.sim.store:db("123456789012", "global", "iam").instance_profiles["ip-trading-app-prod"]
  lu.assertEquals(type(rec.created_at), "number")
  lu.assertTrue(rec.role_added_at >= rec.created_at)

  -- Teardown in the wrong order: every DeleteConflict AWS gives.
  local e = aws_error("DeleteConflict", iam.DeleteRole, iam, { RoleName = role.RoleName })
  lu.assertEquals(e.message, "Cannot delete entity, must remove roles from instance profile first.")
  lu.assertEquals(e.status, 409)
  e = aws_error("DeleteConflict", iam.DeleteInstanceProfile, iam, { InstanceProfileName = ip.InstanceProfileName })
  lu.assertEquals(e.message, "Cannot delete entity, must remove roles from instance profile first.")
  iam:RemoveRoleFromInstanceProfile{ InstanceProfileName = ip.InstanceProfileName, RoleName = role.RoleName }
  e = aws_error("DeleteConflict", iam.DeleteRole, iam, { RoleName = role.RoleName })
  lu.assertEquals(e.message, "Cannot delete entity, must delete policies first.")
  iam:DeleteRolePolicy{ RoleName = role.RoleName, PolicyName = "trading-sessions-access" }
  e = aws_error("DeleteConflict", iam.DeleteRole, iam, { RoleName = role.RoleName })
  lu.assertEquals(e.message, "Cannot delete entity, must detach all policies first.")
  iam:DetachRolePolicy{ RoleName = role.RoleName, PolicyArn = SSM }
  iam:DeleteRole{ RoleName = role.RoleName }
  iam:DeleteInstanceProfile{ InstanceProfileName = ip.InstanceProfileName }
  e = aws_error("NoSuchEntity", iam.GetRole, iam, { RoleName = role.RoleName })
  lu.assertEquals(e.message, "The role with name role-trading-app-prod cannot be found.")
  lu.assertEquals(e.status, 404)
  e = aws_error("NoSuchEntity", iam.GetInstanceProfile, iam, { InstanceProfileName = ip.InstanceProfileName })
  lu.assertEquals(e.message, "Instance Profile ip-trading-app-prod cannot be found.")
  lu.assertEquals(iam:ListRoles{}.Roles, {})
end

function TestSimIam:test_names_and_duplicates()
  local iam = self.iam
  make_role(iam, "app-role")
  local e = aws_error("EntityAlreadyExists", iam.CreateRole, iam,
    { RoleName = "APP-ROLE", AssumeRolePolicyDocument = TRUST })
  lu.assertEquals(e.message, "Role with name APP-ROLE already exists.")
  lu.assertEquals(iam:GetRole{ RoleName = "App-Role" }.Role.RoleName, "app-role", "names ignore case")
  aws_error("ValidationError", iam.CreateRole, iam, { RoleName = "bad name", AssumeRolePolicyDocument = TRUST })
  aws_error("ValidationError", iam.CreateRole, iam, { RoleName = "p", Path = "fo", AssumeRolePolicyDocument = TRUST })
  -- Lengths and ranges: fo's client refuses them before sending, so ask the sim directly
  -- (what another client such as the AWS CLI would get).
  local function sim_error(code, op, params)
    local ok, err = pcall(self.sim.invoke, self.sim, "iam", "global", op, params)
    lu.assertFalse(ok)
    lu.assertTrue(simlib.Error.is(err, code), tostring(err))
  end
  sim_error("ValidationError", "CreateRole", { RoleName = ("r"):rep(65), AssumeRolePolicyDocument = TRUST })
  sim_error("ValidationError", "CreateRole", { RoleName = "m", MaxSessionDuration = 60, AssumeRolePolicyDocument = TRUST })
  iam:CreateInstanceProfile{ InstanceProfileName = ("i"):rep(128) }
  sim_error("ValidationError", "CreateInstanceProfile", { InstanceProfileName = ("i"):rep(129) })
  e = aws_error("EntityAlreadyExists", iam.CreateInstanceProfile, iam, { InstanceProfileName = ("I"):rep(128) })
  lu.assertStrContains(e.message, "already exists")
  sim_error("ValidationError", "PutRolePolicy", { RoleName = "app-role", PolicyName = ("p"):rep(129),
    PolicyDocument = POLICY })
  e = aws_error("NoSuchEntity", iam.GetRolePolicy, iam, { RoleName = "app-role", PolicyName = "none" })
  lu.assertEquals(e.message, "The role policy with name none cannot be found.")
  aws_error("NoSuchEntity", iam.PutRolePolicy, iam, { RoleName = "ghost", PolicyName = "p", PolicyDocument = POLICY })
end

function TestSimIam:test_policy_documents_are_checked()
  local iam = self.iam
  local function malformed(doc, fragment, op)
    local e
    if op == "trust" then
      e = aws_error("MalformedPolicyDocument", iam.CreateRole, iam, { RoleName = "r1", AssumeRolePolicyDocument = doc })
    else
      e = aws_error("MalformedPolicyDocument", iam.PutRolePolicy, iam, { RoleName = "base", PolicyName = "p",
        PolicyDocument = doc })
    end
    lu.assertStrContains(e.message, fragment)
  end
  make_role(iam, "base")
  malformed("{not json", "Syntax errors in policy.", "trust")
  malformed('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}',
    "Missing required field Principal", "trust")
  malformed('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},'
    .. '"Action":"sts:AssumeRole","Resource":"*"}]}', "Has prohibited field Resource", "trust")
  malformed('{"Version":"2012-10-17"}', "Missing required field Statement")
  malformed('{"Version":"2000-01-01","Statement":[]}', "legacy parsing")
  malformed('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}', "must contain resources")
  malformed('{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}', "Invalid effect")
  malformed('{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}', "must contain actions")
  malformed('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}',
    "should not specify a principal")
  aws_error("MalformedPolicyDocument", iam.UpdateAssumeRolePolicy, iam, { RoleName = "base", PolicyDocument = "[]" })
  -- A single statement object (not a list) is valid JSON policy grammar.
  iam:PutRolePolicy{ RoleName = "base", PolicyName = "single", PolicyDocument =
    '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}' }
  local new_trust = TRUST:gsub("ec2", "ecs-tasks")
  iam:UpdateAssumeRolePolicy{ RoleName = "base", PolicyDocument = new_trust }
  lu.assertEquals(url_decode(iam:GetRole{ RoleName = "base" }.Role.AssumeRolePolicyDocument), new_trust)
  iam:UpdateRole{ RoleName = "base", Description = "updated", MaxSessionDuration = 7200 }
  local r = iam:GetRole{ RoleName = "base" }.Role
  lu.assertEquals(r.Description, "updated")
  lu.assertEquals(r.MaxSessionDuration, 7200)
end

function TestSimIam:test_managed_policies_and_profile_limits()
  local iam = self.iam
  make_role(iam, "a")
  make_role(iam, "b")
  local e = aws_error("NoSuchEntity", iam.AttachRolePolicy, iam, { RoleName = "a",
    PolicyArn = "arn:aws:iam::aws:policy/NoSuchPolicyAnywhere" })
  lu.assertEquals(e.message, "Policy arn:aws:iam::aws:policy/NoSuchPolicyAnywhere does not exist or is not attachable.")
  aws_error("NoSuchEntity", iam.AttachRolePolicy, iam, { RoleName = "a",
    PolicyArn = "arn:aws:iam::123456789012:policy/mine" })
  aws_error("InvalidInput", iam.AttachRolePolicy, iam, { RoleName = "a", PolicyArn = "not-an-arn-at-all-really" })
  iam:AttachRolePolicy{ RoleName = "a", PolicyArn = SSM }
  iam:AttachRolePolicy{ RoleName = "a", PolicyArn = "arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM" }
  local only = iam:ListAttachedRolePolicies{ RoleName = "a", PathPrefix = "/service-role/" }.AttachedPolicies
  lu.assertEquals(only, { { PolicyName = "AmazonEC2RoleforSSM",
    PolicyArn = "arn:aws:iam::aws:policy/service-role/AmazonEC2RoleforSSM" } })
  aws_error("NoSuchEntity", iam.DetachRolePolicy, iam, { RoleName = "b", PolicyArn = SSM })

  iam:CreateInstanceProfile{ InstanceProfileName = "ip" }
  iam:AddRoleToInstanceProfile{ InstanceProfileName = "ip", RoleName = "a" }
  e = aws_error("LimitExceeded", iam.AddRoleToInstanceProfile, iam, { InstanceProfileName = "ip", RoleName = "b" })
  lu.assertEquals(e.message, "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
  aws_error("NoSuchEntity", iam.AddRoleToInstanceProfile, iam, { InstanceProfileName = "nope", RoleName = "b" })
  aws_error("NoSuchEntity", iam.RemoveRoleFromInstanceProfile, iam, { InstanceProfileName = "ip", RoleName = "b" })
  lu.assertEquals(iam:ListInstanceProfilesForRole{ RoleName = "b" }.InstanceProfiles, {})
end

function TestSimIam:test_tags()
  local iam = self.iam
  make_role(iam, "tagged")
  iam:TagRole{ RoleName = "tagged", Tags = { { Key = "Environment", Value = "Production" },
    { Key = "FailoverRole", Value = "Primary" } } }
  iam:TagRole{ RoleName = "tagged", Tags = { { Key = "environment", Value = "Staging" } } }
  iam:UntagRole{ RoleName = "tagged", TagKeys = { "FAILOVERROLE", "absent" } }
  local tags = iam:ListRoleTags{ RoleName = "tagged" }
  lu.assertEquals(tags.Tags, { { Key = "fo:stack", Value = "trading-prod" }, { Key = "environment", Value = "Staging" } })
  lu.assertFalse(tags.IsTruncated)
  aws_error("InvalidInput", iam.TagRole, iam, { RoleName = "tagged",
    Tags = { { Key = "a", Value = "1" }, { Key = "A", Value = "2" } } })
  local many = {}
  for i = 1, 48 do many[i] = { Key = "k" .. i, Value = "v" } end
  iam:TagRole{ RoleName = "tagged", Tags = many }
  local e = aws_error("LimitExceeded", iam.TagRole, iam, { RoleName = "tagged", Tags = { { Key = "one-more", Value = "x" } } })
  lu.assertEquals(e.message, "The number of tags has reached the maximum limit.")
  local all, pages = {}, 0
  local marker
  repeat
    local page = iam:ListRoleTags{ RoleName = "tagged", MaxItems = 20, Marker = marker }
    pages = pages + 1
    for _, t in ipairs(page.Tags) do all[#all + 1] = t.Key end
    marker = page.IsTruncated and page.Marker or nil
  until not marker
  lu.assertEquals(#all, 50)
  lu.assertEquals(pages, 3)

  iam:CreateInstanceProfile{ InstanceProfileName = "ip-tags" }
  iam:TagInstanceProfile{ InstanceProfileName = "ip-tags", Tags = { { Key = "FailoverRole", Value = "Standby" } } }
  lu.assertEquals(iam:ListInstanceProfileTags{ InstanceProfileName = "ip-tags" }.Tags,
    { { Key = "FailoverRole", Value = "Standby" } })
  aws_error("NoSuchEntity", iam.ListInstanceProfileTags, iam, { InstanceProfileName = "nope" })
end

function TestSimIam:test_list_roles_pages_by_marker_and_path()
  local iam = self.iam
  for i = 1, 5 do make_role(iam, ("fo-role-%d"):format(i)) end
  make_role(iam, "other-role", { Path = "/elsewhere/" })
  local first = iam:ListRoles{ PathPrefix = "/fo/", MaxItems = 2 }
  lu.assertTrue(first.IsTruncated)
  lu.assertEquals(#first.Roles, 2)
  lu.assertNil(first.Roles[1].Tags, "ListRoles does not answer tags")
  local names = {}
  for role in iam:items("ListRoles", { PathPrefix = "/fo/" }, { page_size = 2 }) do names[#names + 1] = role.RoleName end
  lu.assertEquals(names, { "fo-role-1", "fo-role-2", "fo-role-3", "fo-role-4", "fo-role-5" })
  lu.assertEquals(#iam:ListRoles{}.Roles, 6)
  aws_error("ValidationError", iam.ListRoles, iam, { Marker = "not-a-marker" })
end

function TestSimIam:test_a_new_role_is_not_found_during_the_consistency_window()
  local sim = simlib.new{ seed = "iam-ec", consistency_ms = 5000 }
  local iam = sim:client("iam", {})
  make_role(iam, "eventual")
  aws_error("NoSuchEntity", iam.GetRole, iam, { RoleName = "eventual" })
  -- also the calls that name it (an inline policy, an instance profile's role)
  aws_error("NoSuchEntity", iam.PutRolePolicy, iam, { RoleName = "eventual", PolicyName = "p",
    PolicyDocument = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}' })
  iam:CreateInstanceProfile{ InstanceProfileName = "eventual-ip" }
  aws_error("NoSuchEntity", iam.AddRoleToInstanceProfile, iam, { InstanceProfileName = "eventual-ip",
    RoleName = "eventual" })
  aws_error("NoSuchEntity", iam.GetInstanceProfile, iam, { InstanceProfileName = "eventual-ip" })
  sim:advance(6)
  lu.assertEquals(iam:GetRole{ RoleName = "eventual" }.Role.RoleName, "eventual")
  lu.assertEquals(iam:GetInstanceProfile{ InstanceProfileName = "eventual-ip" }.InstanceProfile.Roles, {})
end

function TestSimIam:test_untag_instance_profile()
  local iam = self.iam
  iam:CreateInstanceProfile{ InstanceProfileName = "ip-tags", Tags = {
    { Key = "a", Value = "1" }, { Key = "B", Value = "2" } } }
  iam:UntagInstanceProfile{ InstanceProfileName = "ip-tags", TagKeys = { "b", "missing" } }
  lu.assertEquals(iam:ListInstanceProfileTags{ InstanceProfileName = "ip-tags" }.Tags,
    { { Key = "a", Value = "1" } })
  aws_error("NoSuchEntity", iam.UntagInstanceProfile, iam, { InstanceProfileName = "nope", TagKeys = { "a" } })
end

os.exit(lu.LuaUnit.run())
