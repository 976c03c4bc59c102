-- aws:kms:key and aws:kms:alias driven by the engine on the simulator: a key created with
-- its tags (fo:token among them), description, policy given as a Lua table and rotation;
-- a rerun without mutating calls; updates in place; drift; destroy scheduling the key's
-- deletion with the declared window (never a key this stack's create did not make);
-- adoption of an interrupted create by its tags; aliases moved and deleted.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local H = require "support.engine_harness"
local T = require "support.type_tests"
require "fo.aws.resources.kms"

local REGION = "eu-central-1"
local ACCOUNT = "123456789012"
local sim, dir

local function kms() return sim:client("kms", { region = REGION }) end

local run, apply, res = T.runner(function() return sim, dir end, REGION)

local function policy_doc(extra_sid)
  local doc = { Version = "2012-10-17", Statement = {
    { Sid = "root", Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" },
      Action = "kms:*", Resource = "*" },
    { Sid = extra_sid or "alarms", Effect = "Allow", Principal = { Service = "cloudwatch.amazonaws.com" },
      Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*" } } }
  return doc
end

local function recipe(o)
  o = o or {}
  return function()
    local k = fo.resource("aws:kms:key", "alarms", { description = o.description or "alarm topics",
      policy = o.policy == nil and policy_doc() or o.policy or nil,
      enable_key_rotation = o.rotation, deletion_window_in_days = o.window,
      tags = o.tags or { Team = "trading" } })
    if not o.no_alias then
      local k2 = o.second and fo.resource("aws:kms:key", "spare", {})
      fo.resource("aws:kms:alias", "alarms", { name = "alias/fo-alarms",
        target_key_id = o.second and k2.key_id or k.arn })
    end
    fo.output("key_id", k.key_id)
    fo.output("arn", k.arn)
  end
end

local function describe(id) return kms():DescribeKey{ KeyId = id }.KeyMetadata end

local function tags(id)
  local out = {}
  for _, t in ipairs(kms():ListResourceTags{ KeyId = id }.Tags) do out[t.TagKey] = t.TagValue end
  return out
end

TestKmsTypes = {}

function TestKmsTypes:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestKmsTypes:tearDown()
  H.cleanup(dir)
end

function TestKmsTypes:test_the_alias_outputs_are_built_as_kms_lists_them()
  -- CreateAlias answers nothing: the ARN is its documented form, not read back
  sim.recorder:clear()
  apply(recipe())
  lu.assertEquals(H.ops(sim, { operation = "ListAliases" }), {})
  local rec = H.state(dir).resources["dev::aws:kms:alias::alarms"]
  local listed
  for _, a in ipairs(kms():ListAliases{}.Aliases) do
    if a.AliasName == "alias/fo-alarms" then listed = a end
  end
  lu.assertEquals(rec.outputs, { name = listed.AliasName, arn = listed.AliasArn,
    target_key_id = listed.TargetKeyId })
end

function TestKmsTypes:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(recipe())
  local id = doc.outputs.key_id
  local md = describe(id)
  lu.assertEquals({ md.Description, md.KeyState, md.KeySpec, md.Arn }, { "alarm topics", "Enabled",
    "SYMMETRIC_DEFAULT", doc.outputs.arn })
  lu.assertEquals(tags(id), { Team = "trading", ["fo:name"] = "alarms", ["fo:stack"] = "dev",
    ["fo:token"] = res("aws:kms:key::alarms").token })
  lu.assertEquals(cjson.decode(kms():GetKeyPolicy{ KeyId = id }.Policy).Statement[2].Principal.Service,
    "cloudwatch.amazonaws.com")
  local rot = kms():GetKeyRotationStatus{ KeyId = id }
  lu.assertEquals({ rot.KeyRotationEnabled, rot.RotationPeriodInDays }, { true, 365 })
  lu.assertEquals(describe("alias/fo-alarms").KeyId, id)
  -- tagged in the create call
  lu.assertEquals(H.ops(sim, { operation = "TagResource" }), {})
  local before = H.mutating(sim)
  local _, out = apply(recipe())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestKmsTypes:test_updates_in_place_and_alias_moves()
  local doc = apply(recipe())
  local id = doc.outputs.key_id
  sim.recorder:clear()
  apply(recipe{ description = "alarm topics (eu)", policy = policy_doc("publishers"),
    rotation = false, tags = { Team = "ops" }, second = true })
  local ops = T.mutating(sim)
  table.sort(ops)
  lu.assertEquals(ops, { "kms.CreateKey", "kms.DisableKeyRotation", "kms.EnableKeyRotation",
    "kms.PutKeyPolicy", "kms.TagResource", "kms.UpdateAlias", "kms.UpdateKeyDescription" })
  lu.assertEquals(describe(id).Description, "alarm topics (eu)")
  lu.assertFalse(kms():GetKeyRotationStatus{ KeyId = id }.KeyRotationEnabled)
  lu.assertEquals(tags(id).Team, "ops")
  lu.assertEquals(cjson.decode(kms():GetKeyPolicy{ KeyId = id }.Policy).Statement[2].Sid, "publishers")
  lu.assertEquals(describe("alias/fo-alarms").KeyId, res("aws:kms:key::spare").id)
  lu.assertEquals(describe(id).KeyId, id) -- the same key: nothing replaced
end

function TestKmsTypes:test_policy_as_json_text_is_no_change()
  apply(recipe())
  local before = H.mutating(sim)
  local code, doc = run(recipe{ policy = cjson.encode(policy_doc()):gsub(",", ", ") }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.plan.counts.update, 0)
  lu.assertEquals(H.mutating(sim), before)
end

function TestKmsTypes:test_drift_is_found_and_repaired()
  local doc = apply(recipe())
  local id = doc.outputs.key_id
  kms():UpdateKeyDescription{ KeyId = id, Description = "by hand" }
  kms():DisableKeyRotation{ KeyId = id }
  local code, rdoc, out = run(recipe(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, 'description: "alarm topics" → "by hand"')
  lu.assertEquals(#rdoc.drift, 1)
  apply(recipe())
  lu.assertEquals(describe(id).Description, "alarm topics")
  lu.assertTrue(kms():GetKeyRotationStatus{ KeyId = id }.KeyRotationEnabled)
end

function TestKmsTypes:test_destroy_schedules_deletion_with_the_declared_window()
  local doc = apply(recipe{ window = 7 })
  local id = doc.outputs.key_id
  local now = sim:now()
  local code, _, out = run(recipe{ window = 7 }, { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  local md = describe(id)
  lu.assertEquals(md.KeyState, "PendingDeletion")
  lu.assertAlmostEquals(md.DeletionDate - now, 7 * 86400, 5)
  lu.assertEquals(kms():ListAliases{ KeyId = id }.Aliases, {})
  -- the default window is 30 days
  doc = apply(recipe{ no_alias = true })
  now = sim:now()
  run(recipe{ no_alias = true }, { mode = "destroy", explicit = true })
  lu.assertAlmostEquals(describe(doc.outputs.key_id).DeletionDate - now, 30 * 86400, 5)
  -- a window outside 7-30 is a recipe error before any call
  sim.recorder:clear()
  code, _, out = run(recipe{ window = 3 })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. select(4, run(recipe{ window = 3 })), "7 to 30")
  lu.assertEquals(T.mutating(sim), {})
end

function TestKmsTypes:test_a_key_without_this_stacks_tags_is_never_scheduled_for_deletion()
  local doc = apply(recipe{ no_alias = true })
  local id = doc.outputs.key_id
  -- someone took the key over by hand: its fo:token is not this create's any more
  kms():TagResource{ KeyId = id, Tags = { { TagKey = "fo:token", TagValue = "someone-else" } } }
  local code, _, out, err = run(recipe{ no_alias = true }, { mode = "destroy", explicit = true })
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "does not carry this stack's tags")
  lu.assertEquals(describe(id).KeyState, "Enabled")
  lu.assertEquals(H.ops(sim, { operation = "ScheduleKeyDeletion" }), {})
end

function TestKmsTypes:test_a_key_deleted_by_hand_is_recreated()
  local doc = apply(recipe{ no_alias = true })
  kms():ScheduleKeyDeletion{ KeyId = doc.outputs.key_id, PendingWindowInDays = 7 }
  local doc2, out = apply(recipe{ no_alias = true })
  lu.assertStrContains(out, "dev::aws:kms:key::alarms: deleted")
  lu.assertNotEquals(doc2.outputs.key_id, doc.outputs.key_id)
end

function TestKmsTypes:test_interrupted_create_is_adopted_by_its_tags()
  local doc = apply(recipe{ no_alias = true })
  local id = doc.outputs.key_id
  T.interrupt(dir, "dev::aws:kms:key::alarms")
  sim.recorder:clear()
  local _, out = apply(recipe{ no_alias = true })
  lu.assertStrContains(out, "Adopted dev::aws:kms:key::alarms")
  lu.assertEquals(H.ops(sim, { operation = "CreateKey" }), {})
  lu.assertEquals(res("aws:kms:key::alarms").id, id)
end

function TestKmsTypes:test_an_alias_that_is_not_ours_is_a_conflict()
  local other = kms():CreateKey{}.KeyMetadata
  kms():CreateAlias{ AliasName = "alias/fo-alarms", TargetKeyId = other.KeyId }
  local code, _, out, err = run(recipe())
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "conflict: a KMS alias named \"alias/fo-alarms\"")
  lu.assertEquals(describe("alias/fo-alarms").KeyId, other.KeyId)
end

os.exit(lu.LuaUnit.run())
