-- aws:dynamodb:table driven by the engine on the simulator: the global table of the
-- failover stack (sessionId key, on-demand, streams NEW_AND_OLD_IMAGES, SSE, PITR, a
-- replica in the standby region) read back through fo's dynamodb client in both regions;
-- rerun without mutating calls; updates in place (tags on table and replica, PITR, a
-- replica added and removed one at a time); drift; destroy (replica first, then the table);
-- adoption; a wait interrupted mid-replica resumed by the next run; the rules for replicas.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local types = require "support.engine_types"
local ddb_sim = require "fo.sim.services.dynamodb"
require "fo.aws.resources.dynamodb"

local PRIMARY, STANDBY, THIRD = "eu-south-1", "eu-central-1", "eu-west-1"
local sim, dir, saved_timing

local function ddb(region) return sim:client("dynamodb", { region = region or PRIMARY }) end

local run, apply = T.runner(function() return sim, dir end, PRIMARY)

local function sessions(o)
  o = o or {}
  return function()
    local t = fo.resource("aws:dynamodb:table", "sessions", { name = "trading-sessions-test",
      hash_key = { name = "sessionId", type = "S" }, billing_mode = "PAY_PER_REQUEST",
      stream_view_type = o.stream or "NEW_AND_OLD_IMAGES", sse = o.sse or { enabled = true },
      point_in_time_recovery = o.pitr ~= false, replicas = o.replicas or { STANDBY },
      tags = o.tags or { Environment = "Production", FailoverRole = "Primary" } })
    fo.output("arn", t.arn)
    fo.output("replica_arns", t.replica_arns)
    fo.output("stream_arn", t.stream_arn)
  end
end

local function describe(region)
  local ok, out = pcall(ddb(region).DescribeTable, ddb(region), { TableName = "trading-sessions-test" })
  return ok and out.Table or nil
end

local function tags(arn, region)
  return T.tag_map(ddb(region):ListTagsOfResource{ ResourceArn = arn }.Tags)
end

local function tables(region) return ddb(region):ListTables{}.TableNames end

TestDynamoDbTypes = {}

function TestDynamoDbTypes:setUp()
  sim, dir = H.sim(), H.dir()
  saved_timing = {}
  for k, v in pairs(ddb_sim.TIMING) do saved_timing[k] = v end
  -- seconds of the sim's clock (real time here): short, but every wait still sees the
  -- intermediate states
  ddb_sim.TIMING.table_create, ddb_sim.TIMING.table_delete = 0.3, 0.3
  ddb_sim.TIMING.table_update, ddb_sim.TIMING.replica_create = 0.3, 0.6
  ddb_sim.TIMING.replica_delete = 0.4
end

function TestDynamoDbTypes:tearDown()
  for k, v in pairs(saved_timing) do ddb_sim.TIMING[k] = v end
  H.cleanup(dir)
end

-- CreateTable answers the table CREATING and UpdateTable the new replica CREATING, and
-- both take longer than a poll period: the waits do not poll at once to hear that again.
-- Their first DescribeTable comes a period (common.SIM_POLL) after the call.
function TestDynamoDbTypes:test_no_poll_right_after_a_create_that_answered_creating()
  local poll = require("fo.aws.resources.common").SIM_POLL
  lu.assertTrue(ddb_sim.TIMING.table_create > poll and ddb_sim.TIMING.replica_create > poll)
  apply(sessions())
  local calls = sim.recorder:calls{ service = "dynamodb", region = PRIMARY }
  local checked = 0
  for i, c in ipairs(calls) do
    if c.operation == "CreateTable" or c.operation == "UpdateTable" then
      local nxt
      for j = i + 1, #calls do
        if calls[j].operation == "DescribeTable" then nxt = calls[j] break end
      end
      lu.assertNotNil(nxt, c.operation .. " was waited on")
      -- sleeps last at least as long as asked: a lower bound, not a timing race
      lu.assertTrue(nxt.t - c.t >= poll - 1e-3, ("%s, then DescribeTable %.3f s later")
        :format(c.operation, nxt.t - c.t))
      checked = checked + 1
    end
  end
  lu.assertEquals(checked, 2, "CreateTable and the replica's UpdateTable")
end

-- A replica this apply adds has no tags and no point-in-time recovery (AWS copies neither
-- from the table): its tags and recovery are written without reading them first, in the
-- create and in an update that adds one.
function TestDynamoDbTypes:test_a_new_replicas_tags_and_recovery_are_written_unread()
  local function reads(region)
    return H.ops(sim, { region = region, operation = "ListTagsOfResource" }),
      H.ops(sim, { region = region, operation = "DescribeContinuousBackups" })
  end
  apply(sessions{ tags = { Environment = "Production" } })
  local lt, dcb = reads(STANDBY)
  lu.assertEquals(lt, {})
  lu.assertEquals(dcb, {})
  local arn = describe(STANDBY).TableArn
  lu.assertEquals(tags(arn, STANDBY).Environment, "Production")
  lu.assertEquals(tags(arn, STANDBY)["fo:stack"], "dev")
  lu.assertEquals(ddb(STANDBY):DescribeContinuousBackups{ TableName = "trading-sessions-test" }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  lu.assertEquals(H.ops(sim, { region = STANDBY, operation = "UpdateContinuousBackups" }),
    { "dynamodb.UpdateContinuousBackups" })
  -- one added by an update, with its own tags and recovery off: tagged, recovery untouched
  sim.recorder:clear()
  apply(sessions{ tags = { Environment = "Production" }, replicas = { STANDBY,
    { region_name = THIRD, tags = { Site = "dr" }, point_in_time_recovery = false } } })
  lt, dcb = reads(THIRD)
  lu.assertEquals(lt, {})
  lu.assertEquals(dcb, {})
  lu.assertEquals(H.ops(sim, { region = THIRD, mutating = true }), { "dynamodb.TagResource" })
  local t3 = tags(describe(THIRD).TableArn, THIRD)
  lu.assertEquals({ t3.Environment, t3.Site, t3["fo:stack"] }, { "Production", "dr", "dev" })
  -- and the rerun sees both replicas as declared
  local _, out = apply(sessions{ tags = { Environment = "Production" }, replicas = { STANDBY,
    { region_name = THIRD, tags = { Site = "dr" }, point_in_time_recovery = false } } })
  lu.assertStrContains(out, "No changes.")
end

function TestDynamoDbTypes:test_global_table_created_and_read_back_in_both_regions()
  local doc = apply(sessions())
  local t = describe(PRIMARY)
  lu.assertEquals(t.TableStatus, "ACTIVE")
  lu.assertEquals(t.KeySchema, { { AttributeName = "sessionId", KeyType = "HASH" } })
  lu.assertEquals(t.AttributeDefinitions, { { AttributeName = "sessionId", AttributeType = "S" } })
  lu.assertEquals(t.BillingModeSummary.BillingMode, "PAY_PER_REQUEST")
  lu.assertEquals(t.StreamSpecification, { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" })
  lu.assertEquals(t.SSEDescription.Status, "ENABLED")
  lu.assertEquals(t.GlobalTableVersion, "2019.11.21")
  lu.assertEquals(t.Replicas[1].RegionName, STANDBY)
  lu.assertEquals(t.Replicas[1].ReplicaStatus, "ACTIVE")
  lu.assertEquals(ddb():DescribeContinuousBackups{ TableName = "trading-sessions-test" }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  local replica = describe(STANDBY)
  lu.assertEquals(replica.TableStatus, "ACTIVE")
  -- outputs: ARNs of the table and its replica, the stream
  lu.assertEquals(doc.outputs.arn, t.TableArn)
  lu.assertEquals(doc.outputs.replica_arns, { [STANDBY] = replica.TableArn })
  lu.assertEquals(doc.outputs.stream_arn, t.LatestStreamArn)
  -- tags on the table (in CreateTable) and on the replica (TagResource in its region)
  local want = { Environment = "Production", FailoverRole = "Primary",
    ["fo:name"] = "sessions", ["fo:stack"] = "dev",
    ["fo:token"] = T.record(dir, "dev::aws:dynamodb:table::sessions").token }
  lu.assertEquals(tags(t.TableArn), want)
  lu.assertEquals(tags(replica.TableArn, STANDBY), want)
  lu.assertEquals(H.ops(sim, { operation = "TagResource", region = PRIMARY }), {})
  -- an item written in the primary is read in the standby
  ddb():PutItem{ TableName = "trading-sessions-test", Item = { sessionId = { S = "s-1" } } }
  lu.assertEquals(ddb(STANDBY):GetItem{ TableName = "trading-sessions-test",
    Key = { sessionId = { S = "s-1" } } }.Item.sessionId.S, "s-1")

  local before = H.mutating(sim)
  local _, out = apply(sessions())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestDynamoDbTypes:test_updates_in_place_tags_pitr_and_replicas_one_at_a_time()
  apply(sessions())
  sim.recorder:clear()
  local doc = apply(sessions{ pitr = false, replicas = { STANDBY, THIRD },
    tags = { Environment = "Production" } })
  local t = describe(PRIMARY)
  lu.assertEquals(#t.Replicas, 2)
  lu.assertEquals(ddb():DescribeContinuousBackups{ TableName = "trading-sessions-test" }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "DISABLED")
  lu.assertEquals(tags(t.TableArn).FailoverRole, nil)
  lu.assertEquals(tags(describe(STANDBY).TableArn, STANDBY).FailoverRole, nil)
  lu.assertEquals(tags(describe(THIRD).TableArn, THIRD).Environment, "Production")
  lu.assertEquals(doc.outputs.replica_arns[THIRD], describe(THIRD).TableArn)
  lu.assertEquals(H.ops(sim, { operation = "UpdateTable" }), { "dynamodb.UpdateTable" })
  -- the replica removed again: UpdateTable Delete, waited until gone
  sim.recorder:clear()
  doc = apply(sessions{ pitr = false, tags = { Environment = "Production" } })
  lu.assertEquals(#describe(PRIMARY).Replicas, 1)
  lu.assertEquals(tables(THIRD), {})
  lu.assertNil(doc.outputs.replica_arns[THIRD])
  local _, out = apply(sessions{ pitr = false, tags = { Environment = "Production" } })
  lu.assertStrContains(out, "No changes.")
end

function TestDynamoDbTypes:test_stream_view_change_disables_then_enables()
  apply(sessions{ replicas = {}, stream = "KEYS_ONLY" })
  local old = describe(PRIMARY).LatestStreamArn
  sim.recorder:clear()
  local doc = apply(sessions{ replicas = {}, stream = "NEW_AND_OLD_IMAGES" })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "dynamodb.UpdateTable", "dynamodb.UpdateTable" })
  local t = describe(PRIMARY)
  lu.assertEquals(t.StreamSpecification.StreamViewType, "NEW_AND_OLD_IMAGES")
  lu.assertEquals(doc.outputs.stream_arn, t.LatestStreamArn)
  lu.assertNotEquals(doc.outputs.stream_arn, old)
end

function TestDynamoDbTypes:test_refresh_finds_drift_and_apply_repairs_it()
  apply(sessions())
  local t = describe(PRIMARY)
  ddb():UpdateContinuousBackups{ TableName = "trading-sessions-test",
    PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = false } }
  ddb():UntagResource{ ResourceArn = t.TableArn, TagKeys = { "Environment" } }
  local code, rdoc, out = run(sessions(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "point_in_time_recovery: true → false")
  lu.assertEquals(#rdoc.drift, 1)
  apply(sessions())
  lu.assertEquals(ddb():DescribeContinuousBackups{ TableName = "trading-sessions-test" }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  lu.assertEquals(tags(t.TableArn).Environment, "Production")
  -- the replica removed by hand: seen, and added back
  ddb():UpdateTable{ TableName = "trading-sessions-test",
    ReplicaUpdates = { { Delete = { RegionName = STANDBY } } } }
  sim:advance(1)
  local _, out2 = apply(sessions())
  lu.assertStrContains(out2, "replicas")
  lu.assertEquals(describe(PRIMARY).Replicas[1].ReplicaStatus, "ACTIVE")
  local _, again = apply(sessions())
  lu.assertStrContains(again, "No changes.")
end

local function pitr_status(region)
  return ddb(region):DescribeContinuousBackups{ TableName = "trading-sessions-test" }
    .ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus
end

function TestDynamoDbTypes:test_pitr_tags_and_sse_are_set_and_read_in_the_replicas_region()
  -- PITR and tags are the replica's own (AWS carries neither over): set in its region
  local replica = { region_name = STANDBY, tags = { FailoverRole = "Standby" } }
  apply(sessions{ replicas = { replica } })
  lu.assertEquals(pitr_status(PRIMARY), "ENABLED")
  lu.assertEquals(pitr_status(STANDBY), "ENABLED")
  local t, r = describe(PRIMARY), describe(STANDBY)
  lu.assertEquals(tags(t.TableArn).FailoverRole, "Primary")
  lu.assertEquals(tags(r.TableArn, STANDBY).FailoverRole, "Standby")
  lu.assertEquals(tags(r.TableArn, STANDBY).Environment, "Production")
  lu.assertEquals(r.SSEDescription.Status, "ENABLED")
  local _, again = apply(sessions{ replicas = { replica } })
  lu.assertStrContains(again, "No changes.")
  -- the replica's PITR turned off and its tag changed by hand, in its region: drift, fixed
  ddb(STANDBY):UpdateContinuousBackups{ TableName = "trading-sessions-test",
    PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = false } }
  ddb(STANDBY):TagResource{ ResourceArn = r.TableArn,
    Tags = { { Key = "FailoverRole", Value = "Primary" } } }
  local code, rdoc, out = run(sessions{ replicas = { replica } }, { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#rdoc.drift, 1)
  lu.assertStrContains(out, "replicas")
  apply(sessions{ replicas = { replica } })
  lu.assertEquals(pitr_status(STANDBY), "ENABLED")
  lu.assertEquals(tags(r.TableArn, STANDBY).FailoverRole, "Standby")
  -- a replica may turn its own PITR off; the table keeps its own
  apply(sessions{ replicas = { { region_name = STANDBY, point_in_time_recovery = false } } })
  lu.assertEquals(pitr_status(STANDBY), "DISABLED")
  lu.assertEquals(pitr_status(PRIMARY), "ENABLED")
  lu.assertEquals(tags(r.TableArn, STANDBY).FailoverRole, "Primary") -- the table's again
end

function TestDynamoDbTypes:test_destroy_removes_the_replica_first_then_the_table()
  apply(sessions())
  sim.recorder:clear()
  local code, _, out = run(sessions(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0, out)
  local ops = H.ops(sim, { mutating = true })
  lu.assertEquals(ops, { "dynamodb.UpdateTable", "dynamodb.DeleteTable" })
  lu.assertEquals(tables(PRIMARY), {})
  lu.assertEquals(tables(STANDBY), {})
  code = run(sessions(), { mode = "destroy", explicit = true })
  lu.assertEquals(code, 0)
end

function TestDynamoDbTypes:test_a_wait_interrupted_mid_replica_is_resumed_by_the_next_run()
  -- the run stops while the replica is CREATING (a DescribeTable fails after the
  -- replica's UpdateTable), as if killed during the wait; no rollback
  local updated, failed = false, false
  sim:add_handlers("dynamodb", {
    UpdateTable = function(ctx, p)
      if p.ReplicaUpdates then updated = true end
      return ddb_sim.UpdateTable(ctx, p)
    end,
    DescribeTable = function(ctx, p)
      if updated and not failed then
        failed = true
        ctx:fail("InternalServerErrorX", "injected: the run dies here", 400)
      end
      return ddb_sim.DescribeTable(ctx, p)
    end,
  })
  local code = run(sessions(), { rollback = false })
  lu.assertEquals(code, 3)
  lu.assertEquals(describe(PRIMARY).Replicas[1].ReplicaStatus, "CREATING")
  lu.assertNotNil(H.state(dir).intents["dev::aws:dynamodb:table::sessions"])
  sim.recorder:clear()
  local doc, out = apply(sessions())
  lu.assertStrContains(out, "Adopted dev::aws:dynamodb:table::sessions: trading-sessions-test")
  -- no second CreateTable, no second replica create: the run waited for the one in flight
  lu.assertEquals(H.ops(sim, { mutating = true, service = "dynamodb", region = PRIMARY }),
    {})
  lu.assertEquals(describe(PRIMARY).Replicas[1].ReplicaStatus, "ACTIVE")
  lu.assertEquals(tags(describe(STANDBY).TableArn, STANDBY)["fo:name"], "sessions")
  lu.assertEquals(doc.outputs.replica_arns[STANDBY], describe(STANDBY).TableArn)
  local _, again = apply(sessions())
  lu.assertStrContains(again, "No changes.")
end

function TestDynamoDbTypes:test_interrupted_create_is_adopted_by_name_and_tags()
  -- CreateTable (1) succeeds; PITR (2) fails; no rollback
  types.fail_mutating_call(sim, 2)
  local code = run(sessions{ replicas = {} }, { rollback = false })
  lu.assertEquals(code, 3)
  sim.recorder:clear()
  local _, out = apply(sessions{ replicas = {} })
  lu.assertStrContains(out, "Adopted dev::aws:dynamodb:table::sessions")
  lu.assertEquals(H.ops(sim, { operation = "CreateTable" }), {})
  lu.assertEquals(H.ops(sim, { mutating = true }), { "dynamodb.UpdateContinuousBackups" })
end

function TestDynamoDbTypes:test_a_rolled_back_create_deletes_table_and_replica()
  -- the replica's TagResource (4th mutating call: CreateTable, PITR, UpdateTable, TagResource)
  -- fails: rollback finds the table by its tags and deletes replica and table
  types.fail_mutating_call(sim, 4)
  local code, _, out = run(sessions())
  lu.assertEquals(code, 4, out)
  lu.assertEquals(tables(PRIMARY), {})
  lu.assertEquals(tables(STANDBY), {})
end

-- A customer managed key of `region` (the sim's default key policy: the account decides),
-- with alias `alias` when given; returns its ARN.
local function key_with_alias(region, alias)
  local kms = sim:client("kms", { region = region })
  local k = kms:CreateKey{}.KeyMetadata
  if alias then kms:CreateAlias{ AliasName = alias, TargetKeyId = k.KeyId } end
  return k.Arn
end

local function sse_key(region)
  local d = describe(region).SSEDescription
  return d and d.KMSMasterKeyArn
end

function TestDynamoDbTypes:test_customer_managed_keys_per_replica_updated_in_place()
  local k1, k2 = key_with_alias(PRIMARY), key_with_alias(STANDBY, "alias/sessions-standby")
  local cmk = { sse = { enabled = true, kms_master_key_id = k1 },
    replicas = { { region_name = STANDBY, kms_master_key_id = "alias/sessions-standby" } } }
  -- from the AWS managed key to each region's own key: one UpdateTable, in place
  apply(sessions())
  local id = describe(PRIMARY).TableId
  sim.recorder:clear()
  apply(sessions(cmk))
  lu.assertEquals(H.ops(sim, { operation = "UpdateTable" }), { "dynamodb.UpdateTable" })
  lu.assertEquals(H.ops(sim, { operation = "CreateTable" }), {})
  lu.assertEquals(describe(PRIMARY).TableId, id)
  lu.assertEquals(sse_key(PRIMARY), k1)
  lu.assertEquals(sse_key(STANDBY), k2)
  lu.assertEquals(describe(PRIMARY).Replicas[1].KMSMasterKeyId, k2)
  local _, again = apply(sessions(cmk))
  lu.assertStrContains(again, "No changes.")
  -- the replica's key changed by hand: drift read in its region, put back
  local other = key_with_alias(STANDBY)
  ddb():UpdateTable{ TableName = "trading-sessions-test",
    ReplicaUpdates = { { Update = { RegionName = STANDBY, KMSMasterKeyId = other } } } }
  sim:advance(1)
  local code, rdoc, out = run(sessions(cmk), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#rdoc.drift, 1)
  lu.assertStrContains(out, other)
  apply(sessions(cmk))
  lu.assertEquals(sse_key(STANDBY), k2)
  lu.assertEquals(sse_key(PRIMARY), k1)
  -- another key for the replica alone: only a ReplicaUpdates Update
  sim.recorder:clear()
  apply(sessions{ sse = cmk.sse, replicas = { { region_name = STANDBY, kms_master_key_id = other } } })
  lu.assertEquals(sse_key(STANDBY), other)
  lu.assertEquals(sse_key(PRIMARY), k1)
  -- back to the AWS owned key: no SSEDescription in either region, the same table
  apply(sessions{ sse = { enabled = false } })
  lu.assertNil(describe(PRIMARY).SSEDescription)
  lu.assertNil(describe(STANDBY).SSEDescription)
  lu.assertEquals(describe(PRIMARY).TableId, id)
  _, again = apply(sessions{ sse = { enabled = false } })
  lu.assertStrContains(again, "No changes.")
end

function TestDynamoDbTypes:test_replica_rules_are_checked_before_any_call()
  local code, _, out, err = run(sessions{ stream = "KEYS_ONLY" })
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, 'replicas need stream_view_type = "NEW_AND_OLD_IMAGES"')
  code, _, out, err = run(sessions{ sse = { enabled = true, kms_master_key_id = "alias/sessions" } })
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "replica eu-central-1 needs its own key of that region")
  lu.assertEquals(H.ops(sim, { operation = "CreateTable" }), {})
  -- a replica key without the table's
  code, _, out, err = run(sessions{ replicas = { { region_name = STANDBY,
    kms_master_key_id = "alias/sessions-standby" } } })
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "replica eu-central-1 has a kms_master_key_id but the table "
    .. "is not encrypted with a customer-managed key")
  lu.assertEquals(H.ops(sim, { operation = "CreateTable" }), {})
  -- with a key per replica region it works
  key_with_alias(PRIMARY, "alias/sessions")
  key_with_alias(STANDBY, "alias/sessions-standby")
  apply(sessions{ sse = { enabled = true, kms_master_key_id = "alias/sessions" },
    replicas = { { region_name = STANDBY, kms_master_key_id = "alias/sessions-standby" } } })
  lu.assertStrContains(describe(STANDBY).SSEDescription.KMSMasterKeyArn, ":" .. STANDBY .. ":")
  local _, again = apply(sessions{ sse = { enabled = true, kms_master_key_id = "alias/sessions" },
    replicas = { { region_name = STANDBY, kms_master_key_id = "alias/sessions-standby" } } })
  lu.assertStrContains(again, "No changes.")
end

-- A table of the name, with an item, made outside the stack (tags: nil or another copy's).
local function existing_table(tags)
  local arn = ddb():CreateTable{ TableName = "trading-sessions-test",
    AttributeDefinitions = { { AttributeName = "sessionId", AttributeType = "S" } },
    KeySchema = { { AttributeName = "sessionId", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST", Tags = tags }.TableDescription.TableArn
  while describe(PRIMARY).TableStatus ~= "ACTIVE" do require("fo.core").sleep(0.05) end
  ddb():PutItem{ TableName = "trading-sessions-test", Item = { sessionId = { S = "kept" } } }
  return arn
end

-- The sessions table after a test topic this run creates first.
local function sessions_after_probe()
  local probe = fo.resource("test:topic", "probe", { name = "probe-created-first" })
  fo.resource("aws:dynamodb:table", "sessions", { name = "trading-sessions-test",
    hash_key = { name = "sessionId", type = "S" }, stream_view_type = "NEW_AND_OLD_IMAGES",
    replicas = { STANDBY } },
    { depends_on = probe })
end

function TestDynamoDbTypes:test_a_table_made_outside_the_stack_is_a_conflict_left_as_it_is()
  local arn = existing_table()
  T.assert_conflict(sim, dir, sessions_after_probe, arn, { region = PRIMARY })
  lu.assertEquals(ddb():GetItem{ TableName = "trading-sessions-test",
    Key = { sessionId = { S = "kept" } } }.Item, { sessionId = { S = "kept" } })
end

function TestDynamoDbTypes:test_another_copy_of_the_stacks_table_is_neither_adopted_nor_deleted()
  -- the reproducer of a state moved away: same stack and name in the tags, another token
  local arn = existing_table(T.other_copy_tags("sessions"))
  local out = T.assert_conflict(sim, dir, sessions_after_probe, arn, { region = PRIMARY })
  lu.assertStrContains(out, 'tagged as resource "sessions" of stack "dev"')
  lu.assertEquals(ddb():GetItem{ TableName = "trading-sessions-test",
    Key = { sessionId = { S = "kept" } } }.Item, { sessionId = { S = "kept" } })
end

os.exit(lu.LuaUnit.run())
