-- aws:sns:topic, aws:sns:topic_policy and aws:sns:subscription driven by the engine on the
-- simulator: create (tags in the create call; read back through fo's sns client), rerun
-- without mutating calls, attributes and tags updated in place, a policy given as a table
-- or as JSON compared by content, the default policy restored on delete, drift, destroy,
-- adoption after an interrupted create, pending email subscriptions.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local types = require "support.engine_types"
require "fo.aws.resources.sns"

local REGION = "eu-central-1"
local sim, dir

local function sns() return sim:client("sns", { region = REGION }) end

local run, apply = T.runner(function() return sim, dir end, REGION)

local function policy_for(arn)
  return { Version = "2012-10-17", Statement = { { Sid = "cloudwatch", Effect = "Allow",
    Principal = { Service = "cloudwatch.amazonaws.com" }, Action = "sns:Publish",
    Resource = arn } } }
end

local function topics(o)
  o = o or {}
  return function()
    local t = fo.resource("aws:sns:topic", "alerts", { name = "failover-alerts-test",
      display_name = o.display or "Failover", kms_master_key_id = o.kms or "",
      attributes = o.attributes, tags = o.tags or { Environment = "Production",
        FailoverRole = "Standby" } })
    if not o.no_policy then
      fo.resource("aws:sns:topic_policy", "alerts", { topic_arn = t.arn,
        policy = o.policy or fo.apply(t.arn, policy_for) })
    end
    if not o.no_sub then
      fo.resource("aws:sns:subscription", "ops", { topic_arn = t.arn, protocol = "email",
        endpoint = "ops@example.com" })
    end
    fo.output("topic_arn", t.arn)
  end
end

local function attrs(arn) return sns():GetTopicAttributes{ TopicArn = arn }.Attributes end

local function tags(arn)
  return T.tag_map(sns():ListTagsForResource{ ResourceArn = arn }.Tags)
end

local function all_topics()
  local out = {}
  for _, t in ipairs(sns():ListTopics{}.Topics) do out[#out + 1] = t.TopicArn end
  return out
end

TestSnsTypes = {}

function TestSnsTypes:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestSnsTypes:tearDown()
  H.cleanup(dir)
end

function TestSnsTypes:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(topics{ kms = "alias/fo-alarms" })
  local arn = doc.outputs.topic_arn
  lu.assertEquals(arn, "arn:aws:sns:eu-central-1:123456789012:failover-alerts-test")
  local a = attrs(arn)
  lu.assertEquals(a.DisplayName, "Failover")
  lu.assertEquals(a.KmsMasterKeyId, "alias/fo-alarms")
  lu.assertEquals(cjson.decode(a.Policy).Statement[1].Principal.Service, "cloudwatch.amazonaws.com")
  lu.assertEquals(tags(arn), { Environment = "Production", FailoverRole = "Standby",
    ["fo:name"] = "alerts", ["fo:stack"] = "dev",
    ["fo:token"] = H.state(dir).resources["dev::aws:sns:topic::alerts"].token })
  -- tagged in the create call: no TagResource
  lu.assertEquals(H.ops(sim, { operation = "TagResource" }), {})
  local subs = sns():ListSubscriptionsByTopic{ TopicArn = arn }.Subscriptions
  lu.assertEquals(#subs, 1)
  lu.assertEquals(subs[1].SubscriptionArn, "PendingConfirmation")
  local sub = H.state(dir).resources["dev::aws:sns:subscription::ops"]
  lu.assertStrContains(sub.id, arn .. ":")
  lu.assertIsTrue(sub.outputs.pending)

  local before = H.mutating(sim)
  local _, out = apply(topics{ kms = "alias/fo-alarms" })
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestSnsTypes:test_attributes_tags_and_policy_update_in_place()
  local doc = apply(topics())
  local arn = doc.outputs.topic_arn
  sim.recorder:clear()
  apply(topics{ display = "Failover alerts", kms = "alias/fo-alarms",
    attributes = { TracingConfig = "Active" }, tags = { Environment = "Production" },
    policy = '{"Version":"2012-10-17","Statement":[]}' })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "sns.SetTopicAttributes", "sns.SetTopicAttributes",
    "sns.SetTopicAttributes", "sns.SetTopicAttributes", "sns.UntagResource" })
  local a = attrs(arn)
  lu.assertEquals({ a.DisplayName, a.KmsMasterKeyId, a.TracingConfig },
    { "Failover alerts", "alias/fo-alarms", "Active" })
  lu.assertEquals(cjson.decode(a.Policy).Statement, {})
  lu.assertNil(tags(arn).FailoverRole)
  lu.assertEquals(H.state(dir).outputs.topic_arn, arn)
  -- encryption off again: KmsMasterKeyId "" removes the attribute
  apply(topics{ display = "Failover alerts", attributes = { TracingConfig = "Active" },
    tags = { Environment = "Production" }, policy = '{"Version":"2012-10-17","Statement":[]}' })
  lu.assertNil(attrs(arn).KmsMasterKeyId)
end

function TestSnsTypes:test_policy_as_json_text_with_other_spacing_is_no_change()
  local arn = "arn:aws:sns:eu-central-1:123456789012:failover-alerts-test"
  apply(topics{ policy = policy_for(arn) })
  local before = H.mutating(sim)
  local text = cjson.encode(policy_for(arn)):gsub(",", ", ")
  local code, doc = run(topics{ policy = text }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.plan.counts.update, 0)
  lu.assertEquals(H.mutating(sim), before)
end

function TestSnsTypes:test_deleting_the_policy_restores_the_default()
  local doc = apply(topics())
  local arn = doc.outputs.topic_arn
  apply(topics{ no_policy = true })
  local p = cjson.decode(attrs(arn).Policy)
  lu.assertEquals(p.Id, "__default_policy_ID")
  lu.assertEquals(p.Statement[1].Condition.StringEquals["AWS:SourceOwner"], "123456789012")
end

function TestSnsTypes:test_refresh_finds_drift_and_apply_repairs_it()
  local doc = apply(topics())
  local arn = doc.outputs.topic_arn
  sns():SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName", AttributeValue = "by hand" }
  sns():SetTopicAttributes{ TopicArn = arn, AttributeName = "Policy",
    AttributeValue = '{"Version":"2012-10-17","Statement":[]}' }
  sns():TagResource{ ResourceArn = arn, Tags = { { Key = "Environment", Value = "Dev" } } }
  local code, rdoc, out = run(topics(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, 'display_name: "Failover" → "by hand"')
  lu.assertEquals(#rdoc.drift, 2)
  sim.recorder:clear()
  apply(topics())
  lu.assertEquals(attrs(arn).DisplayName, "Failover")
  lu.assertEquals(tags(arn).Environment, "Production")
  lu.assertEquals(cjson.decode(attrs(arn).Policy).Statement[1].Sid, "cloudwatch")
  local _, again = apply(topics())
  lu.assertStrContains(again, "No changes.")
end

function TestSnsTypes:test_destroy_leaves_nothing()
  apply(topics())
  local code, _, out = run(topics(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Destroy complete: 3 deleted.")
  lu.assertEquals(all_topics(), {})
  code = run(topics(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
end

function TestSnsTypes:test_a_topic_deleted_by_hand_is_recreated()
  local doc = apply(topics{ no_sub = true })
  sns():DeleteTopic{ TopicArn = doc.outputs.topic_arn }
  local _, out = apply(topics{ no_sub = true })
  lu.assertStrContains(out, "dev::aws:sns:topic::alerts: deleted")
  lu.assertStrContains(out, "dev::aws:sns:topic_policy::alerts: deleted")
  lu.assertEquals(cjson.decode(attrs(doc.outputs.topic_arn).Policy).Statement[1].Sid, "cloudwatch")
end

function TestSnsTypes:test_interrupted_policy_create_is_adopted_and_repaired()
  -- CreateTopic (1) succeeds, the policy's SetTopicAttributes (2) fails, no rollback: the
  -- policy's intent stays in the state
  types.fail_mutating_call(sim, 2)
  local code = run(topics{ no_sub = true }, { rollback = false })
  lu.assertEquals(code, 3)
  lu.assertNotNil(H.state(dir).intents["dev::aws:sns:topic_policy::alerts"])
  sim.recorder:clear()
  local doc, out = apply(topics{ no_sub = true })
  lu.assertStrContains(out, "Adopted dev::aws:sns:topic_policy::alerts")
  -- refresh saw the policy missing: the apply set it
  lu.assertEquals(cjson.decode(attrs(doc.outputs.topic_arn).Policy).Statement[1].Sid, "cloudwatch")
  lu.assertEquals(#all_topics(), 1)
  lu.assertEquals(H.ops(sim, { operation = "CreateTopic" }), {})
  lu.assertStrContains(select(2, apply(topics{ no_sub = true })), "No changes.")
end

-- A state whose only content is an interrupted create of `urn` with `inputs`.
local function state_with_intent(type_name, name, inputs)
  local urn = ("dev::%s::%s"):format(type_name, name)
  local doc = { format = "fo-state", version = 1, stack = "dev", target = "sim", config = {},
    outputs = {}, resources = {}, deposed = {}, intents = { [urn] = { op = "create", urn = urn,
      type = type_name, name = name, region = REGION, token = "t", generation = 1,
      inputs = inputs, deps = {} } } }
  fo.fs.mkdir_p(dir)
  fo.fs.write_atomic(dir .. "/dev.state.json", require("fo.json").encode(doc))
end

function TestSnsTypes:test_interrupted_topic_create_is_adopted_by_name_and_tags()
  -- another stack's topic of that name is left alone ...
  sim:invoke("sns", "us-east-1", "CreateTopic", { Name = "failover-alerts-test",
    Tags = { { Key = "fo:name", Value = "alerts" }, { Key = "fo:stack", Value = "dev" } } })
  -- ... the one the interrupted create made (tagged for it, in its region) is adopted
  local arn = sim:invoke("sns", REGION, "CreateTopic", { Name = "failover-alerts-test",
    Attributes = { DisplayName = "Failover" }, Tags = { { Key = "Environment", Value = "Production" },
      { Key = "FailoverRole", Value = "Standby" }, { Key = "fo:name", Value = "alerts" },
      { Key = "fo:stack", Value = "dev" }, { Key = "fo:token", Value = "t" } } }).TopicArn
  state_with_intent("aws:sns:topic", "alerts", { name = "failover-alerts-test",
    display_name = "Failover", kms_master_key_id = "", attributes = {},
    tags = { Environment = "Production", FailoverRole = "Standby" } })
  sim.recorder:clear()
  local _, out = apply(topics{ no_sub = true, no_policy = true })
  lu.assertStrContains(out, "Adopted dev::aws:sns:topic::alerts: " .. arn)
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(H.state(dir).resources["dev::aws:sns:topic::alerts"].id, arn)
end

-- A topic of the name (created first) and a test topic this run creates before it.
local function alerts_after_probe()
  local probe = fo.resource("test:topic", "probe", { name = "probe-created-first" })
  fo.resource("aws:sns:topic", "alerts", { name = "failover-alerts-test" },
    { depends_on = probe })
end

function TestSnsTypes:test_an_untagged_topic_of_that_name_is_neither_adopted_nor_taken_over()
  local arn = sim:invoke("sns", REGION, "CreateTopic", { Name = "failover-alerts-test" }).TopicArn
  state_with_intent("aws:sns:topic", "alerts", { name = "failover-alerts-test",
    display_name = "", kms_master_key_id = "", attributes = {}, tags = {} })
  -- not adopted; the create meets SNS's rule (same name, different tags): a conflict
  local out = T.assert_conflict(sim, dir, alerts_after_probe, arn, { region = REGION })
  lu.assertStrContains(out, "left nothing behind")
  lu.assertStrContains(out, "it was made outside fo")
end

function TestSnsTypes:test_another_copy_of_the_stacks_topic_is_neither_adopted_nor_deleted()
  -- same stack and name in its tags (a second checkout, a state moved away), another token
  local arn = sim:invoke("sns", REGION, "CreateTopic", { Name = "failover-alerts-test",
    Tags = T.other_copy_tags("alerts") }).TopicArn
  local out = T.assert_conflict(sim, dir, alerts_after_probe, arn, { region = REGION })
  lu.assertStrContains(out, 'tagged as resource "alerts" of stack "dev"')
end

function TestSnsTypes:test_the_create_is_one_call()
  -- SNS answers an existing topic's ARN only when the call's tags are its tags: fo:token in
  -- the call makes any topic this create did not make a refusal (InvalidParameter "Topic
  -- already exists with different tags"), so nothing is read after a CreateTopic answered
  sim.recorder:clear()
  apply(topics{ no_sub = true, no_policy = true })
  lu.assertEquals(H.ops(sim, function(c) return c.service == "sns" end), { "sns.CreateTopic" })
end

function TestSnsTypes:test_a_topic_of_another_copy_is_refused_by_sns_itself()
  -- the same name made by another copy of the stack (same stack and name, another token)
  local arn = sim:invoke("sns", REGION, "CreateTopic", { Name = "failover-alerts-test",
    Tags = T.other_copy_tags("alerts") }).TopicArn
  sim.recorder:clear()
  T.assert_conflict(sim, dir, alerts_after_probe, arn, { region = REGION })
  lu.assertEquals(H.ops(sim, function(c)
    return c.operation == "CreateTopic" and c.code == "InvalidParameter"
  end), { "sns.CreateTopic" })
end

function TestSnsTypes:test_a_subscription_already_on_the_topic_not_ours_is_a_conflict()
  -- a topic made outside the stack with its queue subscription; Subscribe answers the same
  -- protocol and endpoint with that subscription as if new (subscriptions carry no tags)
  local arn = sns():CreateTopic{ Name = "ops-events" }.TopicArn
  local sub = sns():Subscribe{ TopicArn = arn, Protocol = "sqs", ReturnSubscriptionArn = true,
    Endpoint = "arn:aws:sqs:eu-central-1:123456789012:ops-queue" }.SubscriptionArn
  sim.recorder:clear()
  local out = T.assert_conflict(sim, dir, function()
    local probe = fo.resource("test:topic", "probe", { name = "probe-created-first" })
    fo.resource("aws:sns:subscription", "queue", { topic_arn = arn, protocol = "sqs",
      endpoint = "arn:aws:sqs:eu-central-1:123456789012:ops-queue" }, { depends_on = probe })
  end, sub, { region = REGION })
  lu.assertStrContains(out, ("a sqs subscription of arn:aws:sqs:eu-central-1:123456789012:"
    .. "ops-queue to topic %s"):format(arn))
  T.assert_rolled_back(sim, { { "sns.CreateTopic", "sns.DeleteTopic" } })
  lu.assertEquals(H.ops(sim, { operation = "Subscribe" }), {})
  lu.assertEquals(H.ops(sim, { operation = "Unsubscribe" }), {})
end

function TestSnsTypes:test_subscriptions_confirmed_pending_and_removed()
  local function recipe(with_sqs, with_email)
    return function()
      local t = fo.resource("aws:sns:topic", "t", { name = "fanout-test" })
      if with_sqs then
        fo.resource("aws:sns:subscription", "queue", { topic_arn = t.arn, protocol = "sqs",
          endpoint = "arn:aws:sqs:eu-central-1:123456789012:ops-queue",
          attributes = { RawMessageDelivery = "true" } })
      end
      if with_email then
        fo.resource("aws:sns:subscription", "mail", { topic_arn = t.arn, protocol = "email",
          endpoint = "ops@example.com" })
      end
      fo.output("topic_arn", t.arn)
    end
  end
  local doc = apply(recipe(true, true))
  local st = H.state(dir).resources
  lu.assertIsFalse(st["dev::aws:sns:subscription::queue"].outputs.pending)
  lu.assertIsTrue(st["dev::aws:sns:subscription::mail"].outputs.pending)
  local subs = sns():ListSubscriptionsByTopic{ TopicArn = doc.outputs.topic_arn }.Subscriptions
  lu.assertEquals(#subs, 2)
  lu.assertEquals(subs[1].SubscriptionArn, st["dev::aws:sns:subscription::queue"].id)
  local _, out = apply(recipe(true, true))
  lu.assertStrContains(out, "No changes.")
  -- removed from the recipe: unsubscribed (the pending one too)
  sim.recorder:clear()
  apply(recipe(false, false))
  lu.assertEquals(H.ops(sim, { mutating = true }), { "sns.Unsubscribe", "sns.Unsubscribe" })
  lu.assertEquals(sns():ListSubscriptionsByTopic{ TopicArn = doc.outputs.topic_arn }.Subscriptions, {})
  -- an endpoint change is a new subscription (replace)
  apply(recipe(true, false))
  local code, pdoc = run(function()
    local t = fo.resource("aws:sns:topic", "t", { name = "fanout-test" })
    fo.resource("aws:sns:subscription", "queue", { topic_arn = t.arn, protocol = "sqs",
      endpoint = "arn:aws:sqs:eu-central-1:123456789012:other-queue",
      attributes = { RawMessageDelivery = "true" } })
  end, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertEquals(pdoc.plan.counts.replace, 1)
end

function TestSnsTypes:test_sns_rules()
  -- a name SNS refuses is a recipe error before anything is sent
  local code, _, out, err = run(function()
    fo.resource("aws:sns:topic", "bad", { name = "bad name!" })
  end)
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "letters, digits, _ and -")
  -- a policy that is not JSON: SNS's InvalidParameter, rolled back
  code, _, out, err = run(function()
    local t = fo.resource("aws:sns:topic", "t", { name = "t1" })
    fo.resource("aws:sns:topic_policy", "p", { topic_arn = t.arn, policy = "{not json" })
  end)
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "InvalidParameter")
  lu.assertEquals(all_topics(), {})
end

os.exit(lu.LuaUnit.run())
