-- The simulator's DynamoDB through fo's own client (the wire path): the failover
-- stack's global table built and torn down (streams + SSE-KMS, TableExists waiter,
-- replica in eu-central-1, PITR, tags, items replicated both ways, replica removal,
-- delete), AWS's errors for tables and replicas, items with expressions, and paging.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local ddb_mod = require "fo.sim.services.dynamodb"

local PRIMARY, STANDBY = "eu-south-1", "eu-central-1"
local NAME = "trading-sessions-test"
-- Customer managed keys of each region (made by make_keys in the sim of each test).
local KEY1, KEY2
local function make_keys(sim)
  KEY1 = sim:client("kms", { region = PRIMARY }):CreateKey{}.KeyMetadata.Arn
  KEY2 = sim:client("kms", { region = STANDBY }):CreateKey{}.KeyMetadata.Arn
end
local FAST = { table_create = 0.2, table_delete = 0.2, table_update = 0.1,
  replica_create = 0.4, replica_delete = 0.3, replication_lag = 0 }

-- Short transitions so the waiters finish in a fraction of a second of real time.
local saved_timing
local function fast_timing()
  saved_timing = {}
  for k, v in pairs(ddb_mod.TIMING) do saved_timing[k] = v; ddb_mod.TIMING[k] = FAST[k] end
end
local function restore_timing()
  for k, v in pairs(saved_timing or {}) do ddb_mod.TIMING[k] = v end
end

local function aws_error(code, fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected " .. code)
  lu.assertTrue(aws.Error.is(e), tostring(e))
  lu.assertEquals(e.code, code, tostring(e))
  return e
end

local function create_params(extra)
  local p = {
    TableName = NAME,
    AttributeDefinitions = { { AttributeName = "sessionId", AttributeType = "S" } },
    KeySchema = { { AttributeName = "sessionId", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST",
    StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
    SSESpecification = { Enabled = true, SSEType = "KMS", KMSMasterKeyId = KEY1 },
    Tags = { { Key = "Environment", Value = "Production" }, { Key = "FailoverRole", Value = "Primary" } },
  }
  for k, v in pairs(extra or {}) do
    if v == false then p[k] = nil else p[k] = v end -- false: leave the member out
  end
  return p
end

-- Polls DescribeTable until fn(table) is true (the sim's clock is real time here).
local function until_table(c, fn, what)
  local deadline = fo.now() + 60 -- (returns as soon as it holds: room for a loaded machine)
  while fo.now() < deadline do
    local ok, out = pcall(c.DescribeTable, c, { TableName = NAME })
    if fn(ok and out.Table or nil, out) then return ok and out.Table or nil end
    fo.sleep(0.05)
  end
  lu.fail("timed out waiting for " .. what)
end

TestSimDynamoDB = {}

function TestSimDynamoDB:setUp()
  fast_timing()
  self.sim = simlib.new{ seed = "dynamodb" }
  make_keys(self.sim)
  self.p = self.sim:client("dynamodb", { region = PRIMARY })
  self.s = self.sim:client("dynamodb", { region = STANDBY })
end

function TestSimDynamoDB:tearDown()
  restore_timing()
end

function TestSimDynamoDB:test_global_table_build_and_teardown()
  local p, s = self.p, self.s
  local d = p:CreateTable(create_params()).TableDescription
  lu.assertEquals(d.TableStatus, "CREATING")
  lu.assertEquals(d.TableArn, "arn:aws:dynamodb:eu-south-1:123456789012:table/" .. NAME)
  lu.assertStrMatches(d.TableId, "%x+%-%x+%-4%x+%-[89ab]%x+%-%x+")
  lu.assertEquals(d.BillingModeSummary.BillingMode, "PAY_PER_REQUEST")
  lu.assertEquals(d.StreamSpecification, { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" })
  lu.assertStrMatches(d.LatestStreamArn, "arn:aws:dynamodb:eu%-south%-1:123456789012:table/" ..
    NAME:gsub("%-", "%%-") .. "/stream/%d+%-%d+%-%d+T%d+:%d+:%d+%.%d%d%d")
  lu.assertEquals(d.LatestStreamArn:match("/stream/(.*)$"), d.LatestStreamLabel)
  lu.assertEquals(d.SSEDescription, { Status = "ENABLED", SSEType = "KMS", KMSMasterKeyArn = KEY1 })
  lu.assertNil(d.Replicas)

  -- Right after CreateTable, PITR cannot be switched on yet; the model waiter polls.
  aws_error("ContinuousBackupsUnavailableException", p.UpdateContinuousBackups, p,
    { TableName = NAME, PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = true } })
  local out, attempts = p:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertTrue(attempts >= 2, "the first poll saw CREATING")

  -- A replica with its own region's key: the source is UPDATING until it is ACTIVE.
  d = p:UpdateTable{ TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } }.TableDescription
  lu.assertEquals(d.TableStatus, "UPDATING")
  lu.assertEquals(d.GlobalTableVersion, "2019.11.21")
  lu.assertEquals(d.Replicas, { { RegionName = STANDBY, ReplicaStatus = "CREATING", KMSMasterKeyId = KEY2 } })
  aws_error("ResourceInUseException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = "us-east-1", KMSMasterKeyId = "alias/x" } } } })
  local st = s:DescribeTable{ TableName = NAME }.Table
  lu.assertEquals(st.TableStatus, "CREATING")
  lu.assertEquals(st.TableArn, "arn:aws:dynamodb:eu-central-1:123456789012:table/" .. NAME)
  lu.assertEquals(st.SSEDescription.KMSMasterKeyArn, KEY2)
  lu.assertEquals(st.Replicas, { { RegionName = PRIMARY, ReplicaStatus = "ACTIVE" } })
  lu.assertEquals(s:ListTables{}.TableNames, { NAME })

  until_table(p, function(t) return t.TableStatus == "ACTIVE" and t.Replicas[1].ReplicaStatus == "ACTIVE" end,
    "the replica")
  s:wait("TableExists", { TableName = NAME }, { delay = 0.05 })

  -- PITR on, and described.
  local cb = p:UpdateContinuousBackups{ TableName = NAME,
    PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = true } }.ContinuousBackupsDescription
  lu.assertEquals(cb.ContinuousBackupsStatus, "ENABLED")
  lu.assertEquals(cb.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "ENABLED")
  cb = p:DescribeContinuousBackups{ TableName = NAME }.ContinuousBackupsDescription
  local pitr = cb.PointInTimeRecoveryDescription
  lu.assertTrue(pitr.EarliestRestorableDateTime <= pitr.LatestRestorableDateTime)
  lu.assertEquals(s:DescribeContinuousBackups{ TableName = NAME }.ContinuousBackupsDescription
    .PointInTimeRecoveryDescription.PointInTimeRecoveryStatus, "DISABLED")

  -- Tags on the table ARN, read back across pages.
  local arn = p:DescribeTable{ TableName = NAME }.Table.TableArn
  local more = {}
  for i = 1, 12 do more[i] = { Key = ("k%02d"):format(i), Value = tostring(i) } end
  p:TagResource{ ResourceArn = arn, Tags = more }
  p:TagResource{ ResourceArn = arn, Tags = { { Key = "FailoverRole", Value = "Standby" } } }
  p:UntagResource{ ResourceArn = arn, TagKeys = { "k01", "k02", "absent" } }
  local tags, pages = {}, 0
  for page in p:paginate("ListTagsOfResource", { ResourceArn = arn }) do
    pages = pages + 1
    for _, t in ipairs(page.Tags) do tags[t.Key] = t.Value end
  end
  lu.assertTrue(pages >= 2, "12 tags come in more than one page")
  lu.assertEquals(tags.FailoverRole, "Standby")
  lu.assertEquals(tags.Environment, "Production")
  lu.assertNil(tags.k01)
  lu.assertEquals(tags.k12, "12")
  lu.assertEquals(s:ListTagsOfResource{ ResourceArn = st.TableArn }.Tags, {},
    "tags belong to one region's table")

  -- Items written in either region reach the other.
  p:PutItem{ TableName = NAME, Item = { sessionId = { S = "sess-1" }, userId = { S = "trader-42" },
    expiresAt = { N = "1700003600" }, token = { B = "tok\0\255" } },
    ConditionExpression = "attribute_not_exists(sessionId)" }
  local got = s:GetItem{ TableName = NAME, Key = { sessionId = { S = "sess-1" } }, ConsistentRead = true }.Item
  lu.assertEquals(got.userId, { S = "trader-42" })
  lu.assertEquals(got.token, { B = "tok\0\255" })
  s:UpdateItem{ TableName = NAME, Key = { sessionId = { S = "sess-1" } },
    UpdateExpression = "SET expiresAt = expiresAt + :ext", ExpressionAttributeValues = { [":ext"] = { N = "3600" } },
    ConditionExpression = "attribute_exists(sessionId)" }
  lu.assertEquals(p:GetItem{ TableName = NAME, Key = { sessionId = { S = "sess-1" } } }.Item.expiresAt,
    { N = "1700007200" })
  lu.assertEquals(p:DescribeTable{ TableName = NAME }.Table.ItemCount, 1)

  -- The source region cannot be deleted for 24 h after it sourced the replica.
  local e = aws_error("ValidationException", p.DeleteTable, p, { TableName = NAME })
  lu.assertStrContains(e.message, "acted as a source region")

  -- Remove the replica; wait until it is gone, in both views.
  d = p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Delete = { RegionName = STANDBY } } } }.TableDescription
  lu.assertEquals(d.Replicas[1].ReplicaStatus, "DELETING")
  lu.assertEquals(s:DescribeTable{ TableName = NAME }.Table.TableStatus, "DELETING")
  s:wait("TableNotExists", { TableName = NAME }, { delay = 0.05 })
  local t = until_table(p, function(x) return x.TableStatus == "ACTIVE" end, "the source to settle")
  lu.assertNil(t.Replicas)
  lu.assertNil(t.GlobalTableVersion)
  lu.assertEquals(s:ListTables{}.TableNames, {})
  aws_error("ResourceNotFoundException", s.GetItem, s, { TableName = NAME, Key = { sessionId = { S = "sess-1" } } })

  -- Now the table goes.
  d = p:DeleteTable{ TableName = NAME }.TableDescription
  lu.assertEquals(d.TableStatus, "DELETING")
  lu.assertEquals(p:DeleteTable{ TableName = NAME }.TableDescription.TableStatus, "DELETING",
    "deleting a DELETING table is no error")
  p:wait("TableNotExists", { TableName = NAME }, { delay = 0.05 })
  e = aws_error("ResourceNotFoundException", p.DescribeTable, p, { TableName = NAME })
  lu.assertEquals(e.message, "Requested resource not found: Table: " .. NAME .. " not found")
end

-- A protected table cannot be deleted until UpdateTable turns the protection off
-- (DeleteTable: ValidationException); DescribeTable tells which.
function TestSimDynamoDB:test_deletion_protection()
  local p = self.p
  p:CreateTable(create_params({ DeletionProtectionEnabled = true }))
  local t = until_table(p, function(t) return t and t.TableStatus == "ACTIVE" end, "ACTIVE")
  lu.assertIsTrue(t.DeletionProtectionEnabled)
  local e = aws_error("ValidationException", p.DeleteTable, p, { TableName = NAME })
  lu.assertStrContains(e.message, "protected against deletion")
  p:UpdateTable{ TableName = NAME, DeletionProtectionEnabled = false }
  lu.assertIsFalse(p:DescribeTable{ TableName = NAME }.Table.DeletionProtectionEnabled)
  lu.assertEquals(p:DeleteTable{ TableName = NAME }.TableDescription.TableStatus, "DELETING")
end

function TestSimDynamoDB:test_table_errors()
  local p = self.p
  p:CreateTable(create_params())
  local e = aws_error("ResourceInUseException", p.CreateTable, p, create_params())
  lu.assertEquals(e.message, "Table already exists: " .. NAME)
  -- UpdateTable and DeleteTable refuse a table that is still CREATING.
  aws_error("ResourceInUseException", p.UpdateTable, p, { TableName = NAME, BillingMode = "PAY_PER_REQUEST" })
  aws_error("ResourceInUseException", p.DeleteTable, p, { TableName = NAME })
  e = aws_error("ResourceNotFoundException", p.DescribeTable, p, { TableName = "missing-table" })
  lu.assertEquals(e.message, "Requested resource not found: Table: missing-table not found")
  e = aws_error("ResourceNotFoundException", p.PutItem, p, { TableName = NAME, Item = { sessionId = { S = "x" } } })
  lu.assertEquals(e.message, "Requested resource not found", "items of a CREATING table")
  e = aws_error("TableNotFoundException", p.DescribeContinuousBackups, p, { TableName = "missing-table" })
  lu.assertEquals(e.message, "Table not found: missing-table")

  -- Key schema against attribute definitions.
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "other-a",
    AttributeDefinitions = { { AttributeName = "id", AttributeType = "S" } } })
  lu.assertStrContains(e.message, "Some index key attributes are not defined in AttributeDefinitions")
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "other-b",
    AttributeDefinitions = { { AttributeName = "sessionId", AttributeType = "S" },
      { AttributeName = "extra", AttributeType = "N" } } })
  lu.assertStrContains(e.message, "Number of attributes in KeySchema does not exactly match")
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "other-c",
    KeySchema = { { AttributeName = "sessionId", KeyType = "RANGE" } } })
  lu.assertStrContains(e.message, "not a HASH key type")
  -- Billing modes.
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "other-d",
    ProvisionedThroughput = { ReadCapacityUnits = 5, WriteCapacityUnits = 5 } })
  lu.assertStrContains(e.message, "can be specified when BillingMode is PAY_PER_REQUEST")
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "other-e",
    BillingMode = "PROVISIONED" })
  lu.assertStrContains(e.message, "must both be specified when BillingMode is PROVISIONED")
  local prov = p:CreateTable(create_params{ TableName = "other-f", BillingMode = "PROVISIONED",
    ProvisionedThroughput = { ReadCapacityUnits = 5, WriteCapacityUnits = 7 } }).TableDescription
  lu.assertEquals(prov.ProvisionedThroughput.WriteCapacityUnits, 7)
  lu.assertNil(prov.BillingModeSummary)
  e = aws_error("ValidationException", p.CreateTable, p, create_params{ TableName = "bad name!" })
  lu.assertStrContains(e.message, "regular expression pattern")
  -- A table without SSE or streams describes neither.
  local plain = p:CreateTable(create_params{ TableName = "plain-table", SSESpecification = false,
    StreamSpecification = false }).TableDescription
  lu.assertNil(plain.SSEDescription)
  lu.assertNil(plain.StreamSpecification)
  lu.assertNil(plain.LatestStreamArn)
end

function TestSimDynamoDB:test_replica_rules()
  local p = self.p
  p:CreateTable(create_params{ StreamSpecification = { StreamEnabled = true, StreamViewType = "KEYS_ONLY" } })
  p:CreateTable(create_params{ TableName = "prov-table", BillingMode = "PROVISIONED",
    ProvisionedThroughput = { ReadCapacityUnits = 1, WriteCapacityUnits = 1 } })
  p:CreateTable(create_params{ TableName = "ok-table" })
  p:wait("TableExists", { TableName = "ok-table" }, { delay = 0.05 })
  local e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } })
  lu.assertStrContains(e.message, "NEW_AND_OLD_IMAGES")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "prov-table",
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } })
  lu.assertStrContains(e.message, "Pay-Per-Request or AutoScaled")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table",
    ReplicaUpdates = { { Create = { RegionName = PRIMARY } } } })
  lu.assertStrContains(e.message, "Cannot add, delete, or update the local region")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table",
    ReplicaUpdates = { { Create = { RegionName = STANDBY } } } })
  lu.assertStrContains(e.message, "KMSMasterKeyId must be specified for each replica")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table",
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY1 } } } })
  lu.assertStrContains(e.message, "not in region eu-central-1")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table",
    ReplicaUpdates = { { Delete = { RegionName = STANDBY } } } })
  lu.assertStrContains(e.message, "not part of the global table")
  -- A table of that name already in the other region.
  self.s:CreateTable(create_params{ TableName = "ok-table", SSESpecification = { Enabled = true,
    KMSMasterKeyId = KEY2 } })
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table",
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } })
  lu.assertStrContains(e.message, "already existed as tables")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = "ok-table" })
  lu.assertStrContains(e.message, "At least one of")
end

function TestSimDynamoDB:test_a_source_with_the_aws_managed_key_needs_no_replica_key()
  local p = self.p
  p:CreateTable(create_params{ SSESpecification = { Enabled = true, SSEType = "KMS" } })
  p:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  local key = p:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn
  lu.assertStrMatches(key, "arn:aws:kms:eu%-south%-1:123456789012:key/%x+%-.*")
  p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Create = { RegionName = STANDBY } } } }
  local rkey = self.s:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn
  lu.assertStrMatches(rkey, "arn:aws:kms:eu%-central%-1:123456789012:key/.*")
end

function TestSimDynamoDB:test_deleting_the_replica_table_leaves_the_source_alone()
  local p, s = self.p, self.s
  p:CreateTable(create_params())
  p:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } }
  s:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  -- The replica region never sourced a replica: its table may be deleted directly.
  lu.assertEquals(s:DeleteTable{ TableName = NAME }.TableDescription.TableStatus, "DELETING")
  lu.assertEquals(p:DescribeTable{ TableName = NAME }.Table.Replicas[1].ReplicaStatus, "DELETING")
  s:wait("TableNotExists", { TableName = NAME }, { delay = 0.05 })
  local t = until_table(p, function(x) return x.TableStatus == "ACTIVE" end, "the source")
  lu.assertNil(t.Replicas)
  -- Items written now stay in the primary.
  p:PutItem{ TableName = NAME, Item = { sessionId = { S = "after" } } }
  lu.assertEquals(s:ListTables{}.TableNames, {})
end

-- A write reaches the replica after TIMING.replication_lag; one still in a region that
-- goes down arrives when the region is back (the failover drill's sessions lost).
function TestSimDynamoDB:test_replication_lag_and_writes_held_by_an_outage()
  local p, s = self.p, self.s
  p:CreateTable(create_params())
  p:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = KEY2 } } } }
  s:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  ddb_mod.TIMING.replication_lag = 2
  local function at_standby(id)
    return s:GetItem{ TableName = NAME, Key = { sessionId = { S = id } } }.Item
  end
  p:PutItem{ TableName = NAME, Item = { sessionId = { S = "a" } } }
  lu.assertNotNil(p:GetItem{ TableName = NAME, Key = { sessionId = { S = "a" } } }.Item)
  lu.assertNil(at_standby("a"))
  self.sim:advance(2)
  lu.assertNotNil(at_standby("a"))
  -- written 1 s before the primary fails: still there when it goes down
  p:PutItem{ TableName = NAME, Item = { sessionId = { S = "b" } } }
  self.sim:advance(1)
  self.sim:set_outage(PRIMARY, true)
  self.sim:advance(10)
  lu.assertNil(at_standby("b"))
  self.sim:set_outage(PRIMARY, false)
  lu.assertNotNil(at_standby("b"))
  -- the standby's own writes replicate back after the lag too
  s:PutItem{ TableName = NAME, Item = { sessionId = { S = "c" } } }
  lu.assertNil(p:GetItem{ TableName = NAME, Key = { sessionId = { S = "c" } } }.Item)
  self.sim:advance(2)
  lu.assertNotNil(p:GetItem{ TableName = NAME, Key = { sessionId = { S = "c" } } }.Item)
end

-- Items --------------------------------------------------------------------------------------

local function sessions_table(self)
  local p = self.p
  p:CreateTable{ TableName = "sessions-by-user", BillingMode = "PAY_PER_REQUEST",
    AttributeDefinitions = { { AttributeName = "userId", AttributeType = "S" },
      { AttributeName = "startedAt", AttributeType = "N" } },
    KeySchema = { { AttributeName = "userId", KeyType = "HASH" }, { AttributeName = "startedAt", KeyType = "RANGE" } } }
  p:wait("TableExists", { TableName = "sessions-by-user" }, { delay = 0.05 })
  return p
end

function TestSimDynamoDB:test_item_values_round_trip_normalized()
  local p = sessions_table(self)
  local item = { userId = { S = "u1" }, startedAt = { N = "0010.500" }, venues = { SS = { "MTA", "XETRA" } },
    sizes = { NS = { "1", "2.50" } }, blobs = { BS = { "\0\1", "\255" } }, ok = { BOOL = false },
    none = { NULL = true }, limits = { M = { maxOrder = { N = "250000.50" }, currency = { S = "EUR" } } },
    orders = { L = { { S = "ord-1" }, { N = "2e3" }, { NULL = true } } }, raw = { B = "\0\1\2\255" } }
  p:PutItem{ TableName = "sessions-by-user", Item = item }
  local got = p:GetItem{ TableName = "sessions-by-user", Key = { userId = { S = "u1" }, startedAt = { N = "10.5" } } }.Item
  lu.assertEquals(got.startedAt, { N = "10.5" })
  lu.assertEquals(got.sizes, { NS = { "1", "2.5" } })
  lu.assertEquals(got.limits.M.maxOrder, { N = "250000.5" })
  lu.assertEquals(got.orders.L[2], { N = "2000" })
  lu.assertEquals(got.raw, { B = "\0\1\2\255" })
  lu.assertEquals(got.blobs, { BS = { "\0\1", "\255" } })
  lu.assertEquals(got.none, { NULL = true })
  lu.assertEquals(got.ok, { BOOL = false })
  -- Projection with a name placeholder and a nested path.
  local proj = p:GetItem{ TableName = "sessions-by-user", Key = { userId = { S = "u1" }, startedAt = { N = "10.5" } },
    ProjectionExpression = "userId, #l.maxOrder, orders[0]", ExpressionAttributeNames = { ["#l"] = "limits" } }.Item
  lu.assertEquals(proj, { userId = { S = "u1" }, limits = { M = { maxOrder = { N = "250000.5" } } },
    orders = { L = { { S = "ord-1" } } } })
  -- Malformed values.
  local e = aws_error("ValidationException", p.PutItem, p, { TableName = "sessions-by-user",
    Item = { userId = { S = "u1" }, startedAt = { N = "abc" } } })
  lu.assertStrContains(e.message, "cannot be converted into a number")
  e = aws_error("ValidationException", p.PutItem, p, { TableName = "sessions-by-user",
    Item = { userId = { S = "u1" }, startedAt = { N = "1" }, dup = { SS = { "a", "a" } } } })
  lu.assertStrContains(e.message, "contains duplicates")
  e = aws_error("ValidationException", p.PutItem, p, { TableName = "sessions-by-user",
    Item = { userId = { S = "u1" } } })
  lu.assertStrContains(e.message, "Missing the key startedAt in the item")
  e = aws_error("ValidationException", p.PutItem, p, { TableName = "sessions-by-user",
    Item = { userId = { N = "1" }, startedAt = { N = "1" } } })
  lu.assertStrContains(e.message, "Type mismatch for key userId expected: S actual: N")
  e = aws_error("ValidationException", p.GetItem, p, { TableName = "sessions-by-user", Key = { userId = { S = "u1" } } })
  lu.assertEquals(e.message, "The provided key element does not match the schema")
  e = aws_error("ValidationException", p.PutItem, p, { TableName = "sessions-by-user",
    Item = { userId = { S = "" }, startedAt = { N = "1" } } })
  lu.assertStrContains(e.message, "cannot contain an empty string value")
end

function TestSimDynamoDB:test_update_expressions_and_return_values()
  local p = sessions_table(self)
  local key = { userId = { S = "u1" }, startedAt = { N = "1" } }
  local function upd(extra)
    local params = { TableName = "sessions-by-user", Key = key }
    for k, v in pairs(extra) do params[k] = v end
    return p:UpdateItem(params)
  end
  -- UpdateItem creates the item when it does not exist (no condition).
  local out = upd{ UpdateExpression = "SET #s = :s, hits = :zero, tags = :tags",
    ExpressionAttributeNames = { ["#s"] = "status" },
    ExpressionAttributeValues = { [":s"] = { S = "open" }, [":zero"] = { N = "0" }, [":tags"] = { SS = { "a" } } },
    ReturnValues = "ALL_NEW" }
  lu.assertEquals(out.Attributes.status, { S = "open" })
  lu.assertEquals(out.Attributes.userId, { S = "u1" })
  out = upd{ UpdateExpression = "SET hits = hits + :one, history = list_append(if_not_exists(history, :empty), :h) "
    .. "ADD tags :more REMOVE #s",
    ExpressionAttributeNames = { ["#s"] = "status" },
    ExpressionAttributeValues = { [":one"] = { N = "1" }, [":empty"] = { L = {} }, [":h"] = { L = { { S = "login" } } },
      [":more"] = { SS = { "b", "a" } } },
    ReturnValues = "UPDATED_NEW" }
  lu.assertEquals(out.Attributes.hits, { N = "1" })
  lu.assertEquals(out.Attributes.history, { L = { { S = "login" } } })
  lu.assertEquals(out.Attributes.tags, { SS = { "a", "b" } })
  lu.assertNil(out.Attributes.status, "removed: not in UPDATED_NEW")
  out = upd{ UpdateExpression = "ADD hits :n", ExpressionAttributeValues = { [":n"] = { N = "-0.5" } },
    ReturnValues = "UPDATED_OLD" }
  lu.assertEquals(out.Attributes, { hits = { N = "1" } })
  out = upd{ UpdateExpression = "DELETE tags :a", ExpressionAttributeValues = { [":a"] = { SS = { "a" } } },
    ReturnValues = "ALL_OLD" }
  lu.assertEquals(out.Attributes.hits, { N = "0.5" })
  local item = p:GetItem{ TableName = "sessions-by-user", Key = key }.Item
  lu.assertEquals(item.tags, { SS = { "b" } })
  lu.assertNil(item.status)
  lu.assertNil(upd{ UpdateExpression = "SET hits = :n", ExpressionAttributeValues = { [":n"] = { N = "5" } } }.Attributes)

  -- Conditions.
  local e = aws_error("ConditionalCheckFailedException", upd, { UpdateExpression = "SET hits = :n",
    ConditionExpression = "hits > :n AND attribute_exists(userId)", ExpressionAttributeValues = { [":n"] = { N = "10" } } })
  lu.assertEquals(e.message, "The conditional request failed")
  upd{ UpdateExpression = "SET hits = :n", ConditionExpression = "hits BETWEEN :lo AND :hi OR NOT contains(tags, :t)",
    ExpressionAttributeValues = { [":n"] = { N = "6" }, [":lo"] = { N = "0" }, [":hi"] = { N = "5" }, [":t"] = { S = "b" } } }
  upd{ UpdateExpression = "SET hits = :n", ConditionExpression = "size(history) = :one AND hits IN (:a, :b) AND begins_with(userId, :u)",
    ExpressionAttributeValues = { [":n"] = { N = "7" }, [":one"] = { N = "1" }, [":a"] = { N = "6" }, [":b"] = { N = "9" },
      [":u"] = { S = "u" } } }
  lu.assertEquals(p:GetItem{ TableName = "sessions-by-user", Key = key }.Item.hits, { N = "7" })

  -- What DynamoDB refuses in expressions.
  local function refused(fragment, extra)
    local err = aws_error("ValidationException", upd, extra)
    lu.assertStrContains(err.message, fragment)
  end
  refused('Syntax error; token: "SETT"', { UpdateExpression = "SETT a = :v", ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("reserved keyword; reserved keyword: status", { UpdateExpression = "SET status = :v",
    ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("attribute name: #x", { UpdateExpression = "SET #x = :v", ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("attribute value: :w", { UpdateExpression = "SET a = :w", ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("unused in expressions: keys: {:extra}", { UpdateExpression = "SET a = :v",
    ExpressionAttributeValues = { [":v"] = { N = "1" }, [":extra"] = { N = "2" } } })
  refused("Cannot update attribute userId. This attribute is part of the key", { UpdateExpression = "SET userId = :v",
    ExpressionAttributeValues = { [":v"] = { S = "u2" } } })
  refused("Two document paths overlap", { UpdateExpression = "SET a = :v REMOVE a",
    ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("incorrect data type", { UpdateExpression = "SET a = hits + :v", ExpressionAttributeValues = { [":v"] = { S = "x" } } })
  refused("refers to an attribute that does not exist", { UpdateExpression = "SET a = absentAttr + :v",
    ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused("invalid for update", { UpdateExpression = "SET nope.deeper = :v", ExpressionAttributeValues = { [":v"] = { N = "1" } } })
  refused('The "SET" section can only be used once', { UpdateExpression = "SET a = :v SET b = :v",
    ExpressionAttributeValues = { [":v"] = { N = "1" } } })
end

function TestSimDynamoDB:test_put_and_delete_return_values_and_conditions()
  local p = self.p
  p:CreateTable(create_params())
  p:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  local item = { sessionId = { S = "s" }, v = { N = "1" } }
  lu.assertNil(p:PutItem{ TableName = NAME, Item = item, ReturnValues = "ALL_OLD" }.Attributes)
  local out = p:PutItem{ TableName = NAME, Item = { sessionId = { S = "s" }, v = { N = "2" } }, ReturnValues = "ALL_OLD",
    ReturnConsumedCapacity = "TOTAL" }
  lu.assertEquals(out.Attributes, item)
  lu.assertEquals(out.ConsumedCapacity, { TableName = NAME, CapacityUnits = 1.0 })
  aws_error("ValidationException", p.PutItem, p, { TableName = NAME, Item = item, ReturnValues = "ALL_NEW" })
  aws_error("ConditionalCheckFailedException", p.DeleteItem, p, { TableName = NAME, Key = { sessionId = { S = "s" } },
    ConditionExpression = "v = :one", ExpressionAttributeValues = { [":one"] = { N = "1" } } })
  out = p:DeleteItem{ TableName = NAME, Key = { sessionId = { S = "s" } }, ReturnValues = "ALL_OLD",
    ConditionExpression = "v = :two", ExpressionAttributeValues = { [":two"] = { N = "2.0" } } }
  lu.assertEquals(out.Attributes.v, { N = "2" })
  lu.assertNil(p:GetItem{ TableName = NAME, Key = { sessionId = { S = "s" } } }.Item)
  lu.assertNil(p:DeleteItem{ TableName = NAME, Key = { sessionId = { S = "s" } }, ReturnValues = "ALL_OLD" }.Attributes)
end

function TestSimDynamoDB:test_query_sort_key_conditions_filters_and_paging()
  local p = sessions_table(self)
  for i = 1, 7 do
    p:PutItem{ TableName = "sessions-by-user", Item = { userId = { S = "u1" }, startedAt = { N = tostring(i * 10) },
      kind = { S = i % 2 == 0 and "web" or "api" } } }
  end
  p:PutItem{ TableName = "sessions-by-user", Item = { userId = { S = "u2" }, startedAt = { N = "5" } } }
  local function q(extra)
    local params = { TableName = "sessions-by-user", KeyConditionExpression = "userId = :u",
      ExpressionAttributeValues = { [":u"] = { S = "u1" } } }
    for k, v in pairs(extra or {}) do
      if k == "values" then for vk, vv in pairs(v) do params.ExpressionAttributeValues[vk] = vv end
      else params[k] = v end
    end
    return p:Query(params)
  end
  local out = q()
  lu.assertEquals(out.Count, 7)
  lu.assertEquals(out.Items[1].startedAt, { N = "10" })
  lu.assertEquals(out.Items[7].startedAt, { N = "70" })
  out = q{ ScanIndexForward = false }
  lu.assertEquals(out.Items[1].startedAt, { N = "70" })
  out = q{ KeyConditionExpression = "userId = :u AND startedAt BETWEEN :a AND :b", values = { [":a"] = { N = "20" }, [":b"] = { N = "40" } } }
  lu.assertEquals(out.Count, 3)
  out = q{ KeyConditionExpression = "userId = :u AND startedAt > :a", values = { [":a"] = { N = "60" } } }
  lu.assertEquals(out.Count, 1)
  out = q{ FilterExpression = "kind = :k", values = { [":k"] = { S = "web" } } }
  lu.assertEquals(out.Count, 3)
  lu.assertEquals(out.ScannedCount, 7)
  out = q{ Select = "COUNT" }
  lu.assertNil(out.Items)
  lu.assertEquals(out.Count, 7)
  -- Pages of 3 with LastEvaluatedKey, through the model's paginator.
  local seen, pages = {}, 0
  for page in p:paginate("Query", { TableName = "sessions-by-user", KeyConditionExpression = "userId = :u",
    ExpressionAttributeValues = { [":u"] = { S = "u1" } } }, { page_size = 3 }) do
    pages = pages + 1
    for _, it in ipairs(page.Items) do seen[#seen + 1] = it.startedAt.N end
  end
  lu.assertEquals(seen, { "10", "20", "30", "40", "50", "60", "70" })
  lu.assertEquals(pages, 3)
  -- begins_with on a string sort key, and the key conditions DynamoDB refuses.
  local e = aws_error("ValidationException", q, { KeyConditionExpression = "startedAt = :u" })
  lu.assertStrContains(e.message, "Query condition missed key schema element: userId")
  e = aws_error("ValidationException", q, { KeyConditionExpression = "userId = :u OR userId = :u" })
  lu.assertStrContains(e.message, "KeyConditionExpression")
  e = aws_error("ValidationException", q, { KeyConditionExpression = "userId = :u AND kind = :u" })
  lu.assertStrContains(e.message, "Query")
  e = aws_error("ValidationException", q, { IndexName = "byKind" })
  lu.assertStrContains(e.message, "does not have the specified index")

  local s = self.p
  s:CreateTable{ TableName = "by-prefix", BillingMode = "PAY_PER_REQUEST",
    AttributeDefinitions = { { AttributeName = "pk", AttributeType = "S" }, { AttributeName = "sk", AttributeType = "S" } },
    KeySchema = { { AttributeName = "pk", KeyType = "HASH" }, { AttributeName = "sk", KeyType = "RANGE" } } }
  s:wait("TableExists", { TableName = "by-prefix" }, { delay = 0.05 })
  for _, sk in ipairs{ "order#1", "order#2", "trade#1" } do
    s:PutItem{ TableName = "by-prefix", Item = { pk = { S = "a" }, sk = { S = sk } } }
  end
  out = s:Query{ TableName = "by-prefix", KeyConditionExpression = "pk = :p AND begins_with(sk, :o)",
    ExpressionAttributeValues = { [":p"] = { S = "a" }, [":o"] = { S = "order#" } } }
  lu.assertEquals(out.Count, 2)
end

-- Scan: every item, Limit pages (LastEvaluatedKey / ExclusiveStartKey), FilterExpression
-- after reading (Count vs ScannedCount), projections, Select COUNT, parallel segments.
function TestSimDynamoDB:test_scan_filters_pages_and_segments()
  local p = sessions_table(self)
  for u = 1, 4 do
    for i = 1, 3 do
      p:PutItem{ TableName = "sessions-by-user", Item = { userId = { S = "u" .. u },
        startedAt = { N = tostring(i) }, kind = { S = i == 2 and "web" or "api" } } }
    end
  end
  local out = p:Scan{ TableName = "sessions-by-user" }
  lu.assertEquals(out.Count, 12)
  lu.assertEquals(out.ScannedCount, 12)
  lu.assertNil(out.LastEvaluatedKey)
  out = p:Scan{ TableName = "sessions-by-user", FilterExpression = "#k = :w",
    ExpressionAttributeNames = { ["#k"] = "kind" }, ExpressionAttributeValues = { [":w"] = { S = "web" } },
    ProjectionExpression = "userId" }
  lu.assertEquals(out.Count, 4)
  lu.assertEquals(out.ScannedCount, 12)
  lu.assertEquals(out.Items[1], { userId = out.Items[1].userId })
  lu.assertEquals(p:Scan{ TableName = "sessions-by-user", Select = "COUNT" }.Count, 12)
  -- pages of 5: every item once
  local seen, start, pages = {}, nil, 0
  repeat
    local page = p:Scan{ TableName = "sessions-by-user", Limit = 5, ExclusiveStartKey = start }
    pages = pages + 1
    for _, it in ipairs(page.Items or {}) do
      local k = it.userId.S .. "/" .. it.startedAt.N
      lu.assertNil(seen[k], k)
      seen[k] = true
    end
    start = page.LastEvaluatedKey
  until not start
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  lu.assertEquals(n, 12)
  lu.assertEquals(pages, 3)
  -- parallel scan: the segments split the items, each item in one
  local total = 0
  for seg = 0, 2 do
    total = total + p:Scan{ TableName = "sessions-by-user", Segment = seg, TotalSegments = 3 }.Count
  end
  lu.assertEquals(total, 12)
  local e = aws_error("ValidationException", p.Scan, p, { TableName = "sessions-by-user",
    Segment = 3, TotalSegments = 3 })
  lu.assertStrContains(e.message, "Segment: 3 is out of bounds of TotalSegments: 3")
  aws_error("ValidationException", p.Scan, p, { TableName = "sessions-by-user", Segment = 0 })
  aws_error("ResourceNotFoundException", p.Scan, p, { TableName = "nope" })
end

function TestSimDynamoDB:test_list_tables_pages()
  local p = self.p
  for i = 1, 5 do p:CreateTable(create_params{ TableName = ("table-%d"):format(i) }) end
  local out = p:ListTables{ Limit = 2 }
  lu.assertEquals(out.TableNames, { "table-1", "table-2" })
  lu.assertEquals(out.LastEvaluatedTableName, "table-2")
  local all = {}
  for name in p:items("ListTables", {}, { page_size = 2 }) do all[#all + 1] = name end
  lu.assertEquals(all, { "table-1", "table-2", "table-3", "table-4", "table-5" })
  lu.assertEquals(self.s:ListTables{}.TableNames, {}, "tables are regional")
end

function TestSimDynamoDB:test_state_survives_a_reload_with_binary_items()
  local dir = require("support.testlib").tmpdir()
  local file = dir .. "/stack.sim.json"
  local sim = simlib.new{ seed = 3, file = file }
  make_keys(sim)
  local c = sim:client("dynamodb", { region = PRIMARY })
  c:CreateTable(create_params())
  c:wait("TableExists", { TableName = NAME }, { delay = 0.05 })
  c:PutItem{ TableName = NAME, Item = { sessionId = { S = "bin" }, b = { B = "\0\1\127\128\255" }, n = { N = "1.25" } } }
  local again = simlib.new{ file = file }:client("dynamodb", { region = PRIMARY })
  local item = again:GetItem{ TableName = NAME, Key = { sessionId = { S = "bin" } } }.Item
  lu.assertEquals(item.b, { B = "\0\1\127\128\255" })
  lu.assertEquals(item.n, { N = "1.25" })
  lu.assertEquals(again:DescribeTable{ TableName = NAME }.Table.TableStatus, "ACTIVE")
  require("support.testlib").rmtree(dir)
end

os.exit(lu.LuaUnit.run())
