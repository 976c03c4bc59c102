-- aws:logs:log_group and aws:ec2:flow_log driven by the engine on the simulator: a group
-- created with its tags (fo:token among them), retention and KMS key; a rerun without
-- mutating calls; retention, key and tags updated in place; drift; destroy deleting only a
-- group this stack made; a group of the same name made elsewhere is a conflict; adoption of
-- an interrupted create; a flow log of a VPC to the group with its delivery role, replaced
-- when a property changes, its delivery status an output.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local H = require "support.engine_harness"
local T = require "support.type_tests"
require "fo.aws.resources.logs"
require "fo.aws.resources.kms"
require "fo.aws.resources.ec2_network"
require "fo.aws.resources.iam"

local REGION = "eu-central-1"
local ACCOUNT = "123456789012"
local sim, dir

local function logs() return sim:client("logs", { region = REGION }) end
local function ec2() return sim:client("ec2", { region = REGION }) end

local run, apply, res = T.runner(function() return sim, dir end, REGION)

local function key_policy(group)
  return { Version = "2012-10-17", Statement = {
    { Sid = "root", Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" },
      Action = "kms:*", Resource = "*" },
    { Sid = "logs", Effect = "Allow", Principal = { Service = "logs." .. REGION .. ".amazonaws.com" },
      Action = { "kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*" },
      Resource = "*", Condition = { ArnLike = { ["kms:EncryptionContext:aws:logs:arn"] =
        "arn:aws:logs:" .. REGION .. ":" .. ACCOUNT .. ":log-group:" .. group } } } } }
end

local function recipe(o)
  o = o or {}
  return function()
    local key
    if o.kms then key = fo.resource("aws:kms:key", "logs", { policy = key_policy("/fo/app") }) end
    local g = fo.resource("aws:logs:log_group", "app", { name = o.name or "/fo/app",
      retention_in_days = o.retention, kms_key_id = key and key.arn,
      tags = o.tags or { Team = "trading" } })
    fo.output("arn", g.arn)
  end
end

local function describe(name)
  for _, g in ipairs(logs():DescribeLogGroups{ logGroupNamePrefix = name }.logGroups) do
    if g.logGroupName == name then return g end
  end
  return nil
end

local function tags(name) return logs():ListTagsLogGroup{ logGroupName = name }.tags end

TestLogGroupType = {}

function TestLogGroupType:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestLogGroupType:tearDown()
  H.cleanup(dir)
end

function TestLogGroupType:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(recipe{ retention = 30, kms = true })
  local g = describe("/fo/app")
  lu.assertEquals(doc.outputs.arn, ("arn:aws:logs:%s:%s:log-group:/fo/app"):format(REGION, ACCOUNT))
  lu.assertEquals(g.retentionInDays, 30)
  lu.assertEquals(g.kmsKeyId, res("aws:kms:key::logs").outputs.arn)
  lu.assertEquals(tags("/fo/app"), { Team = "trading", ["fo:name"] = "app", ["fo:stack"] = "dev",
    ["fo:token"] = res("aws:logs:log_group::app").token })
  -- tagged in the create call
  lu.assertEquals(H.ops(sim, { operation = "TagResource" }), {})
  local before = H.mutating(sim)
  local _, out = apply(recipe{ retention = 30, kms = true })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestLogGroupType:test_updates_in_place()
  apply(recipe{ retention = 30 })
  sim.recorder:clear()
  apply(recipe{ retention = 7, kms = true, tags = { Team = "ops" } })
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "kms.CreateKey", "kms.EnableKeyRotation", "logs.AssociateKmsKey",
    "logs.PutRetentionPolicy", "logs.TagResource" })
  local g = describe("/fo/app")
  lu.assertEquals(g.retentionInDays, 7)
  lu.assertNotNil(g.kmsKeyId)
  lu.assertEquals(tags("/fo/app").Team, "ops")
  sim.recorder:clear()
  apply(recipe{ tags = { Team = "ops", Env = "prod" } })
  ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "kms.ScheduleKeyDeletion", "logs.DeleteRetentionPolicy",
    "logs.DisassociateKmsKey", "logs.TagResource" })
  g = describe("/fo/app")
  lu.assertNil(g.retentionInDays)
  lu.assertNil(g.kmsKeyId)
end

function TestLogGroupType:test_bad_retention_is_a_recipe_error_before_any_call()
  local code, _, out, err = run(recipe{ retention = 10 })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "one of 1, 3, 5, 7, 14, 30")
  code, _, out, err = run(recipe{ name = "bad name" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "letters, digits")
  lu.assertEquals(T.mutating(sim), {})
end

function TestLogGroupType:test_drift_is_found_and_repaired()
  apply(recipe{ retention = 30 })
  logs():PutRetentionPolicy{ logGroupName = "/fo/app", retentionInDays = 1 }
  local code, rdoc, out = run(recipe{ retention = 30 }, { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "retention_in_days: 30 → 1")
  lu.assertEquals(#rdoc.drift, 1)
  apply(recipe{ retention = 30 })
  lu.assertEquals(describe("/fo/app").retentionInDays, 30)
end

-- Three log groups, `retention` days each unless retentions[i].
local function three_groups(retentions)
  return function()
    for i = 1, 3 do
      fo.resource("aws:logs:log_group", "g" .. i, { name = "/fo/g" .. i,
        retention_in_days = retentions and retentions[i] or 7 })
    end
  end
end

function TestLogGroupType:test_a_create_describes_nothing_and_its_arn_is_the_groups()
  local doc = apply(recipe{ retention = 7 })
  lu.assertEquals(H.ops(sim, { service = "logs" }), { "logs.CreateLogGroup", "logs.PutRetentionPolicy" })
  lu.assertEquals(doc.outputs.arn, describe("/fo/app").logGroupArn)
end

function TestLogGroupType:test_a_refresh_reads_its_groups_in_one_describe_and_sees_each_change()
  apply(three_groups())
  sim.recorder:clear()
  local _, out = apply(three_groups())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(sim:count{ operation = "DescribeLogGroups" }, 1)
  logs():PutRetentionPolicy{ logGroupName = "/fo/g2", retentionInDays = 30 }
  logs():DeleteLogGroup{ logGroupName = "/fo/g3" }
  local code, doc, rout = run(three_groups(), { mode = "refresh" })
  lu.assertEquals(code, 0, rout)
  lu.assertStrContains(rout, "retention_in_days: 7 → 30")
  local kinds = {}
  for _, d in ipairs(doc.drift) do kinds[#kinds + 1] = d.urn .. " " .. d.kind end
  lu.assertEquals(kinds, { "dev::aws:logs:log_group::g2 changed", "dev::aws:logs:log_group::g3 deleted" })
end

function TestLogGroupType:test_destroy_deletes_only_what_this_stack_made()
  apply(recipe())
  logs():TagResource{ resourceArn = describe("/fo/app").logGroupArn, tags = { ["fo:token"] = "someone-else" } }
  local code, _, out, err = run(recipe(), { mode = "destroy", explicit = true })
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "does not carry this stack's tags")
  lu.assertNotNil(describe("/fo/app"))
  lu.assertEquals(H.ops(sim, { operation = "DeleteLogGroup" }), {})
  -- a group of ours goes
  sim:reset()
  H.cleanup(dir)
  dir = H.dir()
  apply(recipe())
  local rdoc
  code, rdoc, out = run(recipe(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertNil(describe("/fo/app"))
  -- the plan said the events go with it
  lu.assertStrContains(out, "deletes log group /fo/app with every event in it")
  lu.assertEquals(rdoc.plan.steps[1].note, "deletes log group /fo/app with every event in it")
end

function TestLogGroupType:test_a_group_made_elsewhere_is_a_conflict()
  logs():CreateLogGroup{ logGroupName = "/fo/app", tags = { owner = "someone" } }
  local code, _, out, err = run(recipe())
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "conflict: a CloudWatch Logs log group named \"/fo/app\"")
  lu.assertEquals(tags("/fo/app"), { owner = "someone" })
end

function TestLogGroupType:test_interrupted_create_is_adopted_by_its_tags()
  apply(recipe())
  T.interrupt(dir, "dev::aws:logs:log_group::app")
  sim.recorder:clear()
  local _, out = apply(recipe())
  lu.assertStrContains(out, "Adopted dev::aws:logs:log_group::app")
  lu.assertEquals(H.ops(sim, { operation = "CreateLogGroup" }), {})
end

-- aws:ec2:flow_log ---------------------------------------------------------------------

local TRUST = { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Principal = { Service = "vpc-flow-logs.amazonaws.com" }, Action = "sts:AssumeRole" } } }
local DELIVER = { Version = "2012-10-17", Statement = { { Effect = "Allow",
  Action = { "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
    "logs:DescribeLogStreams" }, Resource = "*" } } }

local function flow_recipe(o)
  o = o or {}
  return function()
    local vpc = fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.20.0.0/16" })
    local g = fo.resource("aws:logs:log_group", "flow", { name = "/fo/flow", retention_in_days = 14 })
    local role = fo.resource("aws:iam:role", "flow", { name = "fo-flow", assume_role_policy = TRUST })
    local pol = fo.resource("aws:iam:role_policy", "deliver", { role_name = role.name,
      policy_name = "deliver", policy_document = o.no_perms and { Version = "2012-10-17",
        Statement = { { Effect = "Allow", Action = "s3:GetObject", Resource = "*" } } } or DELIVER })
    local f = fo.resource("aws:ec2:flow_log", "vpc", { resource_id = vpc.id,
      traffic_type = o.traffic or "ALL", log_group_name = g.name, role_arn = role.arn,
      max_aggregation_interval = o.interval, tags = o.tags }, { depends_on = { pol } })
    fo.output("flow_log_id", f.id)
    fo.output("status", f.deliver_logs_status)
  end
end

TestFlowLogType = {}

function TestFlowLogType:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestFlowLogType:tearDown()
  H.cleanup(dir)
end

local function flow(id) return ec2():DescribeFlowLogs{ FlowLogIds = { id } }.FlowLogs[1] end

function TestFlowLogType:test_create_rerun_tags_in_place_replace_and_destroy()
  local doc = apply(flow_recipe{ tags = { Team = "net" } })
  local id = doc.outputs.flow_log_id
  local f = flow(id)
  lu.assertEquals({ f.ResourceId, f.TrafficType, f.LogGroupName, f.MaxAggregationInterval, f.DeliverLogsStatus },
    { res("aws:ec2:vpc::main").id, "ALL", "/fo/flow", 600, "SUCCESS" })
  lu.assertEquals(doc.outputs.status, "SUCCESS")
  local tagmap = {}
  for _, t in ipairs(f.Tags) do tagmap[t.Key] = t.Value end
  lu.assertEquals(tagmap.Team, "net")
  lu.assertEquals(tagmap["fo:token"], res("aws:ec2:flow_log::vpc").token)
  local before = H.mutating(sim)
  local _, out = apply(flow_recipe{ tags = { Team = "net" } })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
  -- tags in place
  sim.recorder:clear()
  apply(flow_recipe{ tags = { Team = "ops" } })
  lu.assertEquals(T.mutating(sim), { "ec2.CreateTags" })
  lu.assertEquals(flow(id).FlowLogId, id)
  -- another traffic type: a new flow log, the old one deleted
  sim.recorder:clear()
  doc = apply(flow_recipe{ tags = { Team = "ops" }, traffic = "REJECT", interval = 60 })
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "ec2.CreateFlowLogs", "ec2.DeleteFlowLogs" })
  lu.assertNotEquals(doc.outputs.flow_log_id, id)
  lu.assertEquals(#ec2():DescribeFlowLogs{}.FlowLogs, 1)
  lu.assertEquals(flow(doc.outputs.flow_log_id).MaxAggregationInterval, 60)
  local code, _, o2 = run(flow_recipe{ tags = { Team = "ops" }, traffic = "REJECT", interval = 60 },
    { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, o2)
  lu.assertEquals(ec2():DescribeFlowLogs{}.FlowLogs, {})
end

function TestFlowLogType:test_a_change_to_the_same_destination_deletes_the_old_flow_log_first()
  -- AWS refuses a second flow log of the same resource, traffic type and destination
  -- (FlowLogAlreadyExists): the old one must go before the new one is made
  local doc = apply(flow_recipe())
  sim.recorder:clear()
  local doc2 = apply(flow_recipe{ interval = 60 })
  lu.assertEquals(T.mutating(sim), { "ec2.DeleteFlowLogs", "ec2.CreateFlowLogs" })
  lu.assertNotEquals(doc2.outputs.flow_log_id, doc.outputs.flow_log_id)
  lu.assertEquals(flow(doc2.outputs.flow_log_id).MaxAggregationInterval, 60)
end

function TestFlowLogType:test_a_role_that_cannot_deliver_shows_in_the_status_output()
  local doc = apply(flow_recipe{ no_perms = true })
  lu.assertEquals(doc.outputs.status, "FAILED")
  lu.assertEquals(flow(doc.outputs.flow_log_id).DeliverLogsErrorMessage, "Access error")
end

-- AWS refuses CreateFlowLogs with a role it cannot assume yet ("Unable to assume given IAM
-- role", a role made a moment ago): the create is repeated until it can, and makes one
-- flow log (fo does not wait for the role with GetRole: IAM showing it says nothing about
-- the flow logs service).
function TestFlowLogType:test_a_role_not_yet_assumable_is_waited_out()
  sim.timing = sim.timing or {}
  sim.timing.role_propagation = 1.5
  local doc = apply(flow_recipe())
  lu.assertEquals(doc.outputs.status, "SUCCESS")
  lu.assertTrue(sim.recorder:count{ operation = "CreateFlowLogs", code = "InvalidParameter" } >= 1,
    "the simulator refused the new role at first")
  lu.assertEquals(#ec2():DescribeFlowLogs{}.FlowLogs, 1)
  lu.assertEquals(H.ops(sim, { operation = "GetRole" }), {})
end

-- Only "Unable to assume given IAM role" is waited out: another InvalidParameter answer of
-- CreateFlowLogs (the recipe's mistake) fails at the first call, not after two minutes.
function TestFlowLogType:test_only_the_role_not_yet_assumable_answer_is_retried()
  local common = require "fo.aws.resources.common"
  local Error = require "fo.aws.error"
  local ctx = { target = "sim", t = 0, debug = function() end }
  function ctx:now() return self.t end
  function ctx:sleep(d) self.t = self.t + d end
  local calls = 0
  local function refuse(message)
    return function()
      calls = calls + 1
      error(Error.new{ service = "ec2", operation = "CreateFlowLogs", code = "InvalidParameter",
        message = message }, 0)
    end
  end
  local ok = pcall(common.retry, ctx, "flow_log_role",
    refuse("DeliverLogsPermissionArn fo-flow is not a valid IAM role ARN."))
  lu.assertFalse(ok)
  lu.assertEquals(calls, 1)
  calls = 0
  ok = pcall(common.retry, ctx, "flow_log_role",
    refuse("Unable to assume given IAM role: 'arn:aws:iam::123456789012:role/fo-flow'."))
  lu.assertFalse(ok)
  lu.assertTrue(calls > 1, "the propagation answer was retried")
  lu.assertTrue(ctx.t <= 120 + 1e-9, ("gave up after %g s"):format(ctx.t))
end

function TestFlowLogType:test_bad_interval_is_a_recipe_error()
  local code, _, out, err = run(flow_recipe{ interval = 300 })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "60 or 600")
  lu.assertEquals(T.mutating(sim), {})
end

function TestFlowLogType:test_interrupted_create_is_adopted_by_its_tags()
  local doc = apply(flow_recipe())
  T.interrupt(dir, "dev::aws:ec2:flow_log::vpc")
  sim.recorder:clear()
  local _, out = apply(flow_recipe())
  lu.assertStrContains(out, "Adopted dev::aws:ec2:flow_log::vpc")
  lu.assertEquals(H.ops(sim, { operation = "CreateFlowLogs" }), {})
  lu.assertEquals(res("aws:ec2:flow_log::vpc").id, doc.outputs.flow_log_id)
end

os.exit(lu.LuaUnit.run())
