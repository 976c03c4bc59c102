-- aws:iam:role, aws:iam:role_policy, aws:iam:instance_profile driven by the engine on the
-- simulator, read back through fo's IAM client: create (tags in the create call), rerun
-- without mutating calls, updates in place (trust policy compared as JSON, PutRolePolicy
-- upsert, the profile's role swapped), replacement delete-first, drift and repair,
-- destroy, adoption after an interrupted create, and IAM's rules (names, DeleteConflict
-- from a leftover named in the error).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local common = require "fo.aws.resources.common"
require "fo.aws.resources.iam"

local sim, dir, iam

local TRUST = { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" } } }
-- the same trust policy as JSON text, keys in another order and spaced
local TRUST_TEXT = '{ "Statement": [ { "Action": "sts:AssumeRole", "Principal": '
  .. '{ "Service": "ec2.amazonaws.com" }, "Effect": "Allow" } ], "Version": "2012-10-17" }'

local function policy(actions)
  return { Version = "2012-10-17", Statement = {
    { Effect = "Allow", Action = actions,
      Resource = "arn:aws:dynamodb:eu-south-1:123456789012:table/trading-sessions-prod" },
    { Effect = "Allow", Action = "cloudwatch:PutMetricData", Resource = "*",
      Condition = { StringEquals = { ["cloudwatch:namespace"] = "Trading/App" } } } } }
end

local function recipe(o)
  o = o or {}
  return function()
    local role = fo.resource("aws:iam:role", "app", { name = o.role or "role-app-prod",
      path = o.path, assume_role_policy = o.trust or TRUST, description = o.description or "app instances",
      tags = o.tags or { Environment = "Production" } })
    fo.resource("aws:iam:role_policy", "app", { role_name = role.name, policy_name = "app-access",
      policy_document = o.policy or policy({ "dynamodb:GetItem", "dynamodb:PutItem" }) })
    local other = o.other and fo.resource("aws:iam:role", "other", { name = "role-other-prod",
      assume_role_policy = TRUST })
    fo.resource("aws:iam:instance_profile", "app", { name = o.profile or "ip-app-prod",
      role_name = (o.other and other or role).name, tags = o.profile_tags or { Environment = "Production" } })
    fo.output("role_arn", role.arn)
  end
end

TestIam = {}

function TestIam:setUp()
  sim, dir = H.sim{ seed = "iam-types" }, H.dir()
  iam = sim:client("iam", { region = "us-east-1" })
end

function TestIam:tearDown()
  H.cleanup(dir)
end

local tags_map = T.tag_map

function TestIam:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = T.run(sim, dir, recipe())
  local r = iam:GetRole{ RoleName = "role-app-prod" }.Role
  lu.assertEquals(tags_map(r.Tags), { ["fo:stack"] = "dev", ["fo:name"] = "app",
    ["fo:token"] = T.record(dir, "dev::aws:iam:role::app").token, Environment = "Production" })
  lu.assertTrue(common.json_equal(common.url_decode(r.AssumeRolePolicyDocument), TRUST))
  lu.assertEquals(r.Description, "app instances")
  lu.assertEquals(doc.outputs.role_arn, r.Arn)
  local pol = iam:GetRolePolicy{ RoleName = "role-app-prod", PolicyName = "app-access" }
  lu.assertTrue(common.json_equal(common.url_decode(pol.PolicyDocument),
    policy({ "dynamodb:GetItem", "dynamodb:PutItem" })))
  local ip = iam:GetInstanceProfile{ InstanceProfileName = "ip-app-prod" }.InstanceProfile
  lu.assertEquals(#ip.Roles, 1)
  lu.assertEquals(ip.Roles[1].RoleName, "role-app-prod")
  lu.assertEquals(tags_map(ip.Tags)["fo:name"], "app")
  local rec = T.record(dir, "dev::aws:iam:instance_profile::app")
  lu.assertEquals(rec.outputs, { arn = ip.Arn, name = "ip-app-prod", id = ip.InstanceProfileId })
  -- the role's tags were in CreateRole itself: no TagRole call
  lu.assertNil(T.index(T.mutating(sim), "iam.TagRole"))

  sim.recorder:clear()
  local _, out = T.run(sim, dir, recipe())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
  -- the trust policy as JSON text with the same content is no change either
  _, out = T.run(sim, dir, recipe{ trust = TRUST_TEXT })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(T.mutating(sim), {})
end

function TestIam:test_updates_in_place()
  T.run(sim, dir, recipe())
  local arn = iam:GetRole{ RoleName = "role-app-prod" }.Role.Arn
  sim.recorder:clear()
  local trust2 = { Version = "2012-10-17", Statement = { { Effect = "Allow",
    Principal = { Service = { "ec2.amazonaws.com", "ssm.amazonaws.com" } }, Action = "sts:AssumeRole" } } }
  T.run(sim, dir, recipe{ trust = trust2, description = "app", tags = { Environment = "Staging", Team = "t" },
    policy = policy({ "dynamodb:GetItem" }), other = true, profile_tags = {} })
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "iam.AddRoleToInstanceProfile", "iam.CreateRole", "iam.PutRolePolicy",
    "iam.RemoveRoleFromInstanceProfile", "iam.TagRole", "iam.UntagInstanceProfile",
    "iam.UpdateAssumeRolePolicy", "iam.UpdateRole" })
  local r = iam:GetRole{ RoleName = "role-app-prod" }.Role
  lu.assertEquals(r.Arn, arn)
  lu.assertTrue(common.json_equal(common.url_decode(r.AssumeRolePolicyDocument), trust2))
  lu.assertEquals(r.Description, "app")
  lu.assertEquals(tags_map(r.Tags).Team, "t")
  local ip = iam:GetInstanceProfile{ InstanceProfileName = "ip-app-prod" }.InstanceProfile
  lu.assertEquals(ip.Roles[1].RoleName, "role-other-prod")
  lu.assertNil(tags_map(ip.Tags).Environment)
  lu.assertTrue(common.json_equal(common.url_decode(iam:GetRolePolicy{ RoleName = "role-app-prod",
    PolicyName = "app-access" }.PolicyDocument), policy({ "dynamodb:GetItem" })))
end

function TestIam:test_rename_replaces_delete_first_and_dependents_follow()
  T.run(sim, dir, recipe())
  sim.recorder:clear()
  T.run(sim, dir, recipe{ role = "role-app2-prod" })
  local ops = T.mutating(sim)
  -- the old inline policy and the profile's role go before the old role
  lu.assertTrue(T.index(ops, "iam.DeleteRolePolicy") < T.index(ops, "iam.DeleteRole"))
  lu.assertTrue(T.index(ops, "iam.RemoveRoleFromInstanceProfile") < T.index(ops, "iam.DeleteRole"))
  local names = {}
  for _, r in ipairs(iam:ListRoles{}.Roles) do names[#names + 1] = r.RoleName end
  lu.assertEquals(names, { "role-app2-prod" })
  lu.assertEquals(iam:GetInstanceProfile{ InstanceProfileName = "ip-app-prod" }.InstanceProfile.Roles[1].RoleName,
    "role-app2-prod")
  lu.assertEquals(iam:ListRolePolicies{ RoleName = "role-app2-prod" }.PolicyNames, { "app-access" })
end

function TestIam:test_a_path_change_replaces_the_role_under_the_same_name()
  T.run(sim, dir, recipe())
  local old = iam:GetRole{ RoleName = "role-app-prod" }.Role
  sim.recorder:clear()
  T.run(sim, dir, recipe{ path = "/app/" })
  local r = iam:GetRole{ RoleName = "role-app-prod" }.Role
  lu.assertEquals(r.Path, "/app/")
  lu.assertNotEquals(r.RoleId, old.RoleId)
  -- the stack's profile let go of the old role and holds the new one
  lu.assertEquals(iam:GetInstanceProfile{ InstanceProfileName = "ip-app-prod" }.InstanceProfile.Roles[1].RoleId,
    r.RoleId)
  lu.assertEquals(iam:ListRolePolicies{ RoleName = "role-app-prod" }.PolicyNames, { "app-access" })
  local _, out = T.run(sim, dir, recipe{ path = "/app/" })
  lu.assertStrContains(out, "No changes.")
end

function TestIam:test_drift_is_reported_and_repaired()
  T.run(sim, dir, recipe())
  iam:UpdateAssumeRolePolicy{ RoleName = "role-app-prod", PolicyDocument = '{"Version":"2012-10-17",'
    .. '"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}' }
  iam:PutRolePolicy{ RoleName = "role-app-prod", PolicyName = "app-access",
    PolicyDocument = common.json_text(policy({ "dynamodb:*" })) }
  iam:RemoveRoleFromInstanceProfile{ InstanceProfileName = "ip-app-prod", RoleName = "role-app-prod" }
  sim.recorder:clear()
  local doc, out = T.run(sim, dir, recipe(), { mode = "refresh", explicit = true })
  lu.assertEquals(T.mutating(sim), {})
  lu.assertEquals(#doc.drift, 3, out)
  lu.assertStrContains(out, "dev::aws:iam:role::app: changed")
  lu.assertStrContains(out, "dev::aws:iam:instance_profile::app: changed")
  T.run(sim, dir, recipe())
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "iam.AddRoleToInstanceProfile", "iam.PutRolePolicy", "iam.UpdateAssumeRolePolicy" })
  sim.recorder:clear()
  local _, again = T.run(sim, dir, recipe())
  lu.assertStrContains(again, "No changes.")
  -- a role deleted behind fo's back is created again
  iam:DeleteRolePolicy{ RoleName = "role-app-prod", PolicyName = "app-access" }
  iam:RemoveRoleFromInstanceProfile{ InstanceProfileName = "ip-app-prod", RoleName = "role-app-prod" }
  iam:DeleteRole{ RoleName = "role-app-prod" }
  T.run(sim, dir, recipe())
  lu.assertEquals(iam:ListRolePolicies{ RoleName = "role-app-prod" }.PolicyNames, { "app-access" })
end

function TestIam:test_destroy_leaves_nothing()
  T.run(sim, dir, recipe())
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  lu.assertEquals(iam:ListRoles{}.Roles, {})
  local e = select(2, pcall(iam.GetInstanceProfile, iam, { InstanceProfileName = "ip-app-prod" }))
  lu.assertEquals(e.code, "NoSuchEntity")
  lu.assertEquals(next(H.state(dir).resources), nil)
end

function TestIam:test_interrupted_creates_are_adopted_without_a_mutating_call()
  T.assert_adopted(sim, dir, recipe(), { "dev::aws:iam:role::app",
    "dev::aws:iam:role_policy::app", "dev::aws:iam:instance_profile::app" })
end

function TestIam:test_a_role_of_the_same_name_not_ours_is_not_taken_over()
  local arn = iam:CreateRole{ RoleName = "role-app-prod",
    AssumeRolePolicyDocument = common.json_text(TRUST) }.Role.Arn
  local out = T.assert_conflict(sim, dir, recipe(), arn)
  lu.assertStrContains(out, 'an IAM role named "role-app-prod"')
end

function TestIam:test_another_copy_of_the_stacks_role_and_profile_are_not_taken_over()
  local arn = iam:CreateRole{ RoleName = "role-app-prod", Tags = T.other_copy_tags("app"),
    AssumeRolePolicyDocument = common.json_text(TRUST) }.Role.Arn
  T.assert_conflict(sim, dir, recipe(), arn)
  -- a profile of another copy: the role this run created first is rolled back, not it
  iam:DeleteRole{ RoleName = "role-app-prod" }
  local ip = iam:CreateInstanceProfile{ InstanceProfileName = "ip-app-prod",
    Tags = T.other_copy_tags("app") }.InstanceProfile.Arn
  local out = T.assert_conflict(sim, dir, recipe(), ip)
  lu.assertStrContains(out, "rolled back")
end

function TestIam:test_an_inline_policy_the_state_does_not_record_is_not_overwritten()
  T.run(sim, dir, recipe())
  -- the policy's record is lost (a state restored from an old backup): it is not this
  -- run's to overwrite, nor to delete on rollback
  local doc = H.state(dir)
  doc.resources["dev::aws:iam:role_policy::app"] = nil
  fo.fs.write_atomic(dir .. "/dev.state.json", require("fo.json").encode(doc))
  local out = T.assert_conflict(sim, dir, recipe{ policy = policy({ "dynamodb:Query" }) },
    "role-app-prod:app-access")
  lu.assertStrContains(out, 'an inline policy "app-access" of IAM role "role-app-prod"')
end

function TestIam:test_creates_read_only_what_they_must()
  sim.recorder:clear()
  T.run(sim, dir, recipe())
  local reads = {}
  for _, c in ipairs(sim:calls{ service = "iam", mutating = false }) do
    reads[c.operation] = (reads[c.operation] or 0) + 1
  end
  -- neither the role nor the profile is waited for (nothing of them is read: the calls
  -- that name them retry while they are not visible); the policy of a role this run
  -- created is not read first (common.fresh_slot); the profile's roles are its create's
  -- answer (none)
  lu.assertEquals(reads, {})
end

function TestIam:test_a_second_inline_policy_of_the_same_name_on_a_new_role_is_a_conflict()
  -- the role is this run's: the first policy needs no read; the second create of the same
  -- policy reads first, as on any other role, and finds the first one
  local code, doc, out, err = H.run(function()
    local role = fo.resource("aws:iam:role", "app", { name = "role-app-prod",
      assume_role_policy = TRUST })
    local one = fo.resource("aws:iam:role_policy", "one", { role_name = role.name,
      policy_name = "app-access", policy_document = policy({ "dynamodb:GetItem" }) })
    fo.resource("aws:iam:role_policy", "two", { role_name = role.name,
      policy_name = "app-access", policy_document = policy({ "dynamodb:Query" }) },
      { depends_on = { one } })
  end, { sim = sim, dir = dir })
  lu.assertEquals(code, 4, out .. err)
  lu.assertEquals(#doc.errors, 1)
  lu.assertEquals(doc.errors[1].error.kind, "conflict")
  lu.assertStrContains(out .. err, 'an inline policy "app-access" of IAM role "role-app-prod"')
  lu.assertEquals(next(H.state(dir).resources), nil)
end

function TestIam:test_names_are_checked_before_anything_is_made()
  local _, out, err = T.run(sim, dir, recipe{ role = "role app" }, nil, 1)
  lu.assertStrContains(out .. err, "property name: \"role app\": only letters, digits and _+=,.@-")
  _, out, err = T.run(sim, dir, recipe{ role = ("r"):rep(65) }, nil, 1)
  lu.assertStrContains(out .. err, "1 to 64 characters")
  lu.assertEquals(H.mutating(sim), 0)
end

function TestIam:test_delete_conflict_names_the_leftover()
  T.run(sim, dir, recipe())
  iam:AttachRolePolicy{ RoleName = "role-app-prod", PolicyArn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" }
  local _, out, err = T.run(sim, dir, recipe(), { mode = "destroy", explicit = true }, 3)
  lu.assertStrContains(out .. err, "IAM role role-app-prod cannot be deleted: managed policies attached: "
    .. "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
  iam:DetachRolePolicy{ RoleName = "role-app-prod", PolicyArn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" }
  T.run(sim, dir, recipe(), { mode = "destroy", explicit = true })
  lu.assertEquals(iam:ListRoles{}.Roles, {})
end

function TestIam:test_a_new_role_or_profile_not_yet_visible_is_retried_by_the_calls_that_name_it()
  sim:set_knob("consistency_ms", 600)
  T.run(sim, dir, recipe())
  local refused = H.ops(sim, function(c)
    return (c.operation == "PutRolePolicy" or c.operation == "AddRoleToInstanceProfile")
      and c.code == "NoSuchEntity"
  end)
  lu.assertTrue(#refused >= 1, "a call naming the new role was refused while it was not visible")
  lu.assertEquals(H.ops(sim, { operation = "GetRole" }), {})
  lu.assertEquals(H.ops(sim, { operation = "GetInstanceProfile" }), {})
  lu.assertEquals(#iam:ListRoles{}.Roles, 1)
  lu.assertEquals(iam:ListRolePolicies{ RoleName = "role-app-prod" }.PolicyNames, { "app-access" })
  local ip = iam:GetInstanceProfile{ InstanceProfileName = "ip-app-prod" }.InstanceProfile
  lu.assertEquals(ip.Roles[1].RoleName, "role-app-prod")
end

os.exit(lu.LuaUnit.run())
