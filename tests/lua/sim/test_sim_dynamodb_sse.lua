-- The simulator's DynamoDB encryption at rest through KMS (fo's own client, the wire path):
-- a global table under a customer managed key of each replica's region, checked by the
-- KMS simulator as DynamoDB asks it (DescribeKey and CreateGrant as the caller, through
-- dynamodb.<region>.amazonaws.com), with AWS's errors; SSEDescription in each region;
-- switching between the AWS owned, the AWS managed and customer managed keys by
-- UpdateTable; a disabled key making the table INACCESSIBLE_ENCRYPTION_CREDENTIALS.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local json = require "fo.json"
local ddb_mod = require "fo.sim.services.dynamodb"

local PRIMARY, STANDBY = "eu-south-1", "eu-central-1"
local ACCOUNT = "123456789012"
local NAME = "sessions-sse"
local FAST = { table_create = 0.2, table_delete = 0.2, table_update = 0.1,
  replica_create = 0.4, replica_delete = 0.3 }

local function aws_error(code, fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected " .. code)
  lu.assertTrue(aws.Error.is(e), tostring(e))
  lu.assertEquals(e.code, code, tostring(e))
  return e
end

local function params(sse, name)
  return {
    TableName = name or NAME,
    AttributeDefinitions = { { AttributeName = "sessionId", AttributeType = "S" } },
    KeySchema = { { AttributeName = "sessionId", KeyType = "HASH" } },
    BillingMode = "PAY_PER_REQUEST",
    StreamSpecification = { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" },
    SSESpecification = sse,
  }
end

TestSimDynamoDBSSE = {}

function TestSimDynamoDBSSE:setUp()
  self.saved = {}
  for k, v in pairs(ddb_mod.TIMING) do self.saved[k] = v; ddb_mod.TIMING[k] = FAST[k] end
  self.sim = simlib.new{ seed = "dynamodb-sse" }
  self.p = self.sim:client("dynamodb", { region = PRIMARY })
  self.s = self.sim:client("dynamodb", { region = STANDBY })
  self.kp = self.sim:client("kms", { region = PRIMARY })
  self.ks = self.sim:client("kms", { region = STANDBY })
  self.key1 = self.kp:CreateKey{}.KeyMetadata
  self.key2 = self.ks:CreateKey{}.KeyMetadata
  self.ks:CreateAlias{ AliasName = "alias/sessions", TargetKeyId = self.key2.KeyId }
end

function TestSimDynamoDBSSE:tearDown()
  for k, v in pairs(self.saved) do ddb_mod.TIMING[k] = v end
end

-- The table ACTIVE (and the replica, when there is one), waited on the sim's clock.
function TestSimDynamoDBSSE:settle(name)
  self.sim.clock:advance(1)
  return self.p:DescribeTable{ TableName = name or NAME }.Table
end

function TestSimDynamoDBSSE:global_table()
  self.p:CreateTable(params{ Enabled = true, SSEType = "KMS", KMSMasterKeyId = self.key1.Arn })
  self:settle()
  self.p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Create = { RegionName = STANDBY,
    KMSMasterKeyId = "alias/sessions" } } } }
  return self:settle()
end

function TestSimDynamoDBSSE:test_each_replica_under_its_regions_key()
  local t = self:global_table()
  lu.assertEquals(t.TableStatus, "ACTIVE")
  lu.assertEquals(t.SSEDescription, { Status = "ENABLED", SSEType = "KMS",
    KMSMasterKeyArn = self.key1.Arn })
  -- the alias resolved to its key, in the replica's region
  lu.assertEquals(t.Replicas, { { RegionName = STANDBY, ReplicaStatus = "ACTIVE",
    KMSMasterKeyId = self.key2.Arn } })
  local r = self.s:DescribeTable{ TableName = NAME }.Table
  lu.assertEquals(r.SSEDescription.KMSMasterKeyArn, self.key2.Arn)
  lu.assertEquals(r.Replicas, { { RegionName = PRIMARY, ReplicaStatus = "ACTIVE" } })
  -- items are written through both keys' tables
  self.p:PutItem{ TableName = NAME, Item = { sessionId = { S = "s1" } } }
  lu.assertEquals(self.s:GetItem{ TableName = NAME, Key = { sessionId = { S = "s1" } } }.Item,
    { sessionId = { S = "s1" } })
end

function TestSimDynamoDBSSE:test_keys_kms_refuses()
  local p = self.p
  -- no such key, in this region
  local e = aws_error("ValidationException", p.CreateTable, p, params{ Enabled = true,
    KMSMasterKeyId = "alias/missing" })
  lu.assertStrContains(e.message, "KMS validation error: NotFoundException")
  -- the standby's key named for the primary's table
  e = aws_error("ValidationException", p.CreateTable, p, params{ Enabled = true,
    KMSMasterKeyId = self.key2.Arn })
  lu.assertStrContains(e.message, "is not in region eu-south-1")
  -- disabled, then pending deletion
  self.kp:DisableKey{ KeyId = self.key1.KeyId }
  e = aws_error("ValidationException", p.CreateTable, p, params{ Enabled = true,
    KMSMasterKeyId = self.key1.KeyId })
  lu.assertStrContains(e.message, "DisabledException: " .. self.key1.Arn .. " is disabled.")
  self.kp:ScheduleKeyDeletion{ KeyId = self.key1.KeyId, PendingWindowInDays = 7 }
  e = aws_error("ValidationException", p.CreateTable, p, params{ Enabled = true,
    KMSMasterKeyId = self.key1.KeyId })
  lu.assertStrContains(e.message, "KMSInvalidStateException")
  -- a key whose policy refuses grants to DynamoDB in this region
  local deny = self.kp:CreateKey{ Policy = json.encode{ Version = "2012-10-17", Statement = {
    { Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" },
      Action = "kms:*", Resource = "*" },
    { Effect = "Deny", Principal = { AWS = "*" }, Action = "kms:CreateGrant", Resource = "*",
      Condition = { StringEquals = { ["kms:ViaService"] = "dynamodb.eu-south-1.amazonaws.com" } } },
  } } }.KeyMetadata
  e = aws_error("AccessDeniedException", p.CreateTable, p, params{ Enabled = true,
    KMSMasterKeyId = deny.Arn })
  lu.assertStrContains(e.message, "KMS key access denied error")
  lu.assertStrContains(e.message, "kms:CreateGrant")
  -- nothing was made by the refused calls
  lu.assertEquals(p:ListTables{}.TableNames, {})
end

function TestSimDynamoDBSSE:test_replica_keys_are_checked_in_the_replicas_region()
  local p = self.p
  p:CreateTable(params{ Enabled = true, KMSMasterKeyId = self.key1.Arn })
  self:settle()
  local e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = STANDBY } } } })
  lu.assertStrContains(e.message, "KMSMasterKeyId must be specified for each replica")
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = self.key1.Arn } } } })
  lu.assertStrContains(e.message, "not in region eu-central-1")
  self.ks:DisableKey{ KeyId = self.key2.KeyId }
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Create = { RegionName = STANDBY, KMSMasterKeyId = self.key2.Arn } } } })
  lu.assertStrContains(e.message, "DisabledException")
  lu.assertEquals(self.s:ListTables{}.TableNames, {})
  lu.assertNil(self:settle().Replicas)
end

function TestSimDynamoDBSSE:test_switching_keys_by_update_table()
  local p, s = self.p, self.s
  self:global_table()
  -- to the AWS owned key: both regions lose their SSEDescription
  p:UpdateTable{ TableName = NAME, SSESpecification = { Enabled = false } }
  local t = self:settle()
  lu.assertNil(t.SSEDescription)
  lu.assertNil(t.Replicas[1].KMSMasterKeyId)
  lu.assertNil(s:DescribeTable{ TableName = NAME }.Table.SSEDescription)
  -- a replica key while the table is not under customer managed keys
  local e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    ReplicaUpdates = { { Update = { RegionName = STANDBY, KMSMasterKeyId = self.key2.Arn } } } })
  lu.assertStrContains(e.message, "customer managed key")
  -- to customer managed keys: the replica needs its own in the same call
  e = aws_error("ValidationException", p.UpdateTable, p, { TableName = NAME,
    SSESpecification = { Enabled = true, SSEType = "KMS", KMSMasterKeyId = self.key1.Arn } })
  lu.assertStrContains(e.message, "KMSMasterKeyId must be specified for each replica")
  lu.assertNil(self:settle().SSEDescription)
  local d = p:UpdateTable{ TableName = NAME,
    SSESpecification = { Enabled = true, SSEType = "KMS", KMSMasterKeyId = self.key1.Arn },
    ReplicaUpdates = { { Update = { RegionName = STANDBY, KMSMasterKeyId = self.key2.KeyId } } } }
    .TableDescription
  lu.assertEquals(d.SSEDescription.Status, "UPDATING")
  t = self:settle()
  lu.assertEquals(t.SSEDescription.Status, "ENABLED")
  lu.assertEquals(t.SSEDescription.KMSMasterKeyArn, self.key1.Arn)
  lu.assertEquals(t.Replicas[1].KMSMasterKeyId, self.key2.Arn)
  lu.assertEquals(s:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn, self.key2.Arn)
  -- another key for the replica alone
  local key3 = self.ks:CreateKey{}.KeyMetadata
  p:UpdateTable{ TableName = NAME, ReplicaUpdates = { { Update = { RegionName = STANDBY,
    KMSMasterKeyId = key3.Arn } } } }
  self:settle()
  lu.assertEquals(s:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn, key3.Arn)
  lu.assertEquals(p:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn, self.key1.Arn)
  -- to the AWS managed key: each region's aws/dynamodb
  p:UpdateTable{ TableName = NAME, SSESpecification = { Enabled = true, SSEType = "KMS" } }
  t = self:settle()
  lu.assertEquals(t.SSEDescription.KMSMasterKeyArn,
    self.kp:DescribeKey{ KeyId = "alias/aws/dynamodb" }.KeyMetadata.Arn)
  lu.assertEquals(s:DescribeTable{ TableName = NAME }.Table.SSEDescription.KMSMasterKeyArn,
    self.ks:DescribeKey{ KeyId = "alias/aws/dynamodb" }.KeyMetadata.Arn)
  lu.assertNil(t.Replicas[1].KMSMasterKeyId)
end

function TestSimDynamoDBSSE:test_a_disabled_key_makes_the_table_inaccessible()
  local p, s = self.p, self.s
  self:global_table()
  self.ks:DisableKey{ KeyId = self.key2.KeyId }
  local r = s:DescribeTable{ TableName = NAME }.Table
  lu.assertEquals(r.TableStatus, "INACCESSIBLE_ENCRYPTION_CREDENTIALS")
  local since = r.SSEDescription.InaccessibleEncryptionDateTime
  lu.assertNotNil(since)
  -- the primary sees its replica so, and is itself fine
  local t = p:DescribeTable{ TableName = NAME }.Table
  lu.assertEquals(t.TableStatus, "ACTIVE")
  lu.assertEquals(t.Replicas[1].ReplicaStatus, "INACCESSIBLE_ENCRYPTION_CREDENTIALS")
  -- the time DynamoDB first saw it stays
  self.sim.clock:advance(60)
  lu.assertEquals(s:DescribeTable{ TableName = NAME }.Table.SSEDescription
    .InaccessibleEncryptionDateTime, since)
  -- enabled again: accessible, the time cleared
  self.ks:EnableKey{ KeyId = self.key2.KeyId }
  r = s:DescribeTable{ TableName = NAME }.Table
  lu.assertEquals(r.TableStatus, "ACTIVE")
  lu.assertNil(r.SSEDescription.InaccessibleEncryptionDateTime)
  -- scheduled for deletion: inaccessible as well
  self.kp:ScheduleKeyDeletion{ KeyId = self.key1.KeyId, PendingWindowInDays = 7 }
  lu.assertEquals(p:DescribeTable{ TableName = NAME }.Table.TableStatus,
    "INACCESSIBLE_ENCRYPTION_CREDENTIALS")
end

os.exit(lu.LuaUnit.run())
