-- The AWS CLI's `aws dynamodb` with customer managed KMS keys against the served simulator,
-- under both CLIs (the current one and Debian's): a table under its region's key, a replica
-- under the other region's key (the key named by its alias there), SSEDescription read in
-- each region, the errors the CLI prints for a key KMS refuses, a switch to the AWS owned
-- key, and a disabled key making the replica INACCESSIBLE_ENCRYPTION_CREDENTIALS.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local PRIMARY, STANDBY = "eu-south-1", "eu-central-1"
local dir = t.tmpdir()
local sim = cli.start_sim(dir, 900)

-- Runs `aws` until its trimmed output is `want` (the served sim moves on real time: the
-- table takes 2 s, the replica 10 s); returns the last output.
local function until_output(aws, args, want)
  local deadline, out = fo.now() + 60, nil
  while fo.now() < deadline do
    local code, o, err = aws(args)
    lu.assertEquals(code, 0, err)
    out = o
    if out == want then return out end
    fo.sleep(0.5)
  end
  lu.fail(("waited for %q, last saw %q"):format(want, tostring(out)))
end

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url, PRIMARY)
  local aws2 = cli.text_runner(which, dir, sim.url, STANDBY)
  local name = "sessions-" .. which
  local code, key1, err = aws{ "kms", "create-key", "--query", "KeyMetadata.Arn" }
  lu.assertEquals(code, 0, err)
  local key2
  code, key2, err = aws2{ "kms", "create-key", "--query", "KeyMetadata.Arn" }
  lu.assertEquals(code, 0, err)
  code, _, err = aws2{ "kms", "create-alias", "--alias-name", "alias/" .. name,
    "--target-key-id", key2 }
  lu.assertEquals(code, 0, err)
  local function create(key)
    return aws{ "dynamodb", "create-table", "--table-name", name,
      "--attribute-definitions", "AttributeName=sessionId,AttributeType=S",
      "--key-schema", "AttributeName=sessionId,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST",
      "--stream-specification", "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
      "--sse-specification", "Enabled=true,SSEType=KMS,KMSMasterKeyId=" .. key,
      "--query", "TableDescription.SSEDescription.KMSMasterKeyArn" }
  end
  -- a key of another region, and one that does not exist
  code, _, err = create(key2)
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "ValidationException")
  lu.assertStrContains(err, "is not in region eu-south-1")
  code, _, err = create("alias/none")
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "KMS validation error: NotFoundException")
  local out
  code, out, err = create(key1)
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, key1)
  until_output(aws, { "dynamodb", "describe-table", "--table-name", name, "--query",
    "Table.TableStatus" }, "ACTIVE")
  -- the replica without its region's key is refused; with it, made
  code, _, err = aws{ "dynamodb", "update-table", "--table-name", name, "--replica-updates",
    "Create={RegionName=" .. STANDBY .. "}" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "KMSMasterKeyId must be specified for each replica")
  code, _, err = aws{ "dynamodb", "update-table", "--table-name", name, "--replica-updates",
    "Create={RegionName=" .. STANDBY .. ",KMSMasterKeyId=alias/" .. name .. "}" }
  lu.assertEquals(code, 0, err)
  until_output(aws, { "dynamodb", "describe-table", "--table-name", name, "--query",
    "[Table.TableStatus,Table.Replicas[0].ReplicaStatus]" }, "ACTIVE\tACTIVE")
  code, out, err = aws{ "dynamodb", "describe-table", "--table-name", name, "--query",
    "Table.Replicas[0].KMSMasterKeyId" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, key2)
  code, out, err = aws2{ "dynamodb", "describe-table", "--table-name", name, "--query",
    "Table.SSEDescription.[Status,SSEType,KMSMasterKeyArn]" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "ENABLED KMS " .. key2)
  -- the standby's key disabled: its replica is inaccessible, and says since when
  code, _, err = aws2{ "kms", "disable-key", "--key-id", key2 }
  lu.assertEquals(code, 0, err)
  code, out, err = aws2{ "dynamodb", "describe-table", "--table-name", name, "--query",
    "[Table.TableStatus,Table.SSEDescription.InaccessibleEncryptionDateTime]" }
  lu.assertEquals(code, 0, err)
  lu.assertStrMatches(out, "INACCESSIBLE_ENCRYPTION_CREDENTIALS%s+%d%d%d%d%-%d%d%-%d%dT.+")
  code, _, err = aws2{ "kms", "enable-key", "--key-id", key2 }
  lu.assertEquals(code, 0, err)
  -- back to the AWS owned key: no SSEDescription in either region
  code, _, err = aws{ "dynamodb", "update-table", "--table-name", name,
    "--sse-specification", "Enabled=false" }
  lu.assertEquals(code, 0, err)
  until_output(aws2, { "dynamodb", "describe-table", "--table-name", name, "--query",
    "Table.SSEDescription" }, "None")
  print("  " .. version)
end

TestAwsCliDynamoDBSSE = {}

function TestAwsCliDynamoDBSSE.test_current_cli() scenario("current") end
function TestAwsCliDynamoDBSSE.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
