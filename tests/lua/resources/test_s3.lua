-- aws:s3:bucket driven by the engine on the simulator: create (tags in the create call,
-- LocationConstraint, versioning, encryption, public access block, policy) read back through
-- fo's s3 client, a rerun without mutating calls, updates in place, drift repaired, a
-- name another account or another copy of the stack holds as a conflict, adoption after an
-- interrupted create, a destroy that never deletes data unless empty_on_destroy says so
-- (then every version and delete marker goes, only of the bucket this stack created, and the
-- plan says so).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local H = require "support.engine_harness"
local T = require "support.type_tests"
require "fo.aws.resources.s3"

local REGION = "eu-central-1"
local NAME = "fo-state-test-bucket"
local sim, dir

local function s3() return sim:client("s3", { region = REGION }) end

local run, apply = T.runner(function() return sim, dir end, REGION)

local function policy_for(arn)
  return { Version = "2012-10-17", Statement = { { Sid = "DenyUnencrypted", Effect = "Deny",
    Principal = "*", Action = "s3:PutObject", Resource = arn .. "/*",
    Condition = { StringNotEquals = { ["s3:x-amz-server-side-encryption"] = "aws:kms" } } } } }
end

local function bucket(o)
  o = o or {}
  return function()
    local b = fo.resource("aws:s3:bucket", "state", { name = o.name or NAME,
      versioning = o.versioning == nil and true or o.versioning,
      encryption = o.encryption or "aws:kms", kms_key_id = o.kms or "alias/fo-state",
      bucket_key = o.bucket_key == nil and true or o.bucket_key,
      block_public_access = o.block == nil and true or o.block,
      policy = o.policy or (o.no_policy and "" or policy_for("arn:aws:s3:::" .. (o.name or NAME))),
      tags = o.tags or { Purpose = "state" }, empty_on_destroy = o.empty })
    fo.output("bucket_arn", b.arn)
    fo.output("domain", b.domain_name)
  end
end

local function tags()
  return T.tag_map(s3():GetBucketTagging{ Bucket = NAME }.TagSet)
end

TestS3Types = {}

function TestS3Types:setUp()
  sim, dir = H.sim(), H.dir()
  -- the key the bucket's default encryption names (S3 asks KMS for it on each put)
  local kms = sim:client("kms", { region = REGION })
  kms:CreateAlias{ AliasName = "alias/fo-state", TargetKeyId = kms:CreateKey{}.KeyMetadata.KeyId }
end

function TestS3Types:tearDown()
  H.cleanup(dir)
end

function TestS3Types:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(bucket())
  lu.assertEquals(doc.outputs.bucket_arn, "arn:aws:s3:::" .. NAME)
  lu.assertEquals(doc.outputs.domain, NAME .. ".s3.eu-central-1.amazonaws.com")
  local c = s3()
  lu.assertEquals(c:GetBucketLocation{ Bucket = NAME }.LocationConstraint, REGION)
  lu.assertEquals(c:GetBucketVersioning{ Bucket = NAME }.Status, "Enabled")
  local rule = c:GetBucketEncryption{ Bucket = NAME }.ServerSideEncryptionConfiguration.Rules[1]
  lu.assertEquals({ rule.ApplyServerSideEncryptionByDefault.SSEAlgorithm,
    rule.ApplyServerSideEncryptionByDefault.KMSMasterKeyID, rule.BucketKeyEnabled },
    { "aws:kms", "alias/fo-state", true })
  lu.assertTrue(c:GetPublicAccessBlock{ Bucket = NAME }.PublicAccessBlockConfiguration.RestrictPublicBuckets)
  lu.assertEquals(cjson.decode(c:GetBucketPolicy{ Bucket = NAME }.Policy).Statement[1].Sid, "DenyUnencrypted")
  lu.assertEquals(tags(), { Purpose = "state", ["fo:name"] = "state", ["fo:stack"] = "dev",
    ["fo:token"] = H.state(dir).resources["dev::aws:s3:bucket::state"].token })
  -- tagged in the create call: no PutBucketTagging
  lu.assertEquals(H.ops(sim, { operation = "PutBucketTagging" }), {})
  -- the policy works: an unencrypted put is refused, a KMS one accepted
  local ok, e = pcall(c.PutObject, c, { Bucket = NAME, Key = "x", Body = "v" })
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "AccessDenied")
  c:PutObject{ Bucket = NAME, Key = "x", Body = "v", ServerSideEncryption = "aws:kms" }

  local before = H.mutating(sim)
  local _, out = apply(bucket())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), before)
end

function TestS3Types:test_updates_in_place()
  apply(bucket())
  sim.recorder:clear()
  apply(bucket{ versioning = false, encryption = "AES256", kms = "", bucket_key = false,
    block = false, no_policy = true, tags = { Purpose = "logs" } })
  local ops = H.ops(sim, { mutating = true })
  table.sort(ops)
  lu.assertEquals(ops, { "s3.DeleteBucketPolicy", "s3.DeletePublicAccessBlock",
    "s3.PutBucketEncryption", "s3.PutBucketTagging", "s3.PutBucketVersioning" })
  local c = s3()
  lu.assertEquals(c:GetBucketVersioning{ Bucket = NAME }.Status, "Suspended")
  lu.assertEquals(c:GetBucketEncryption{ Bucket = NAME }.ServerSideEncryptionConfiguration.Rules[1]
    .ApplyServerSideEncryptionByDefault.SSEAlgorithm, "AES256")
  lu.assertFalse(pcall(c.GetPublicAccessBlock, c, { Bucket = NAME }))
  lu.assertFalse(pcall(c.GetBucketPolicy, c, { Bucket = NAME }))
  lu.assertEquals(tags().Purpose, "logs")
  lu.assertEquals(tags()["fo:stack"], "dev")
end

function TestS3Types:test_policy_as_json_text_is_no_change()
  apply(bucket())
  local before = H.mutating(sim)
  local text = cjson.encode(policy_for("arn:aws:s3:::" .. NAME)):gsub(",", ", ")
  local code, doc = run(bucket{ policy = text }, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertEquals(doc.plan.counts.update, 0)
  lu.assertEquals(H.mutating(sim), before)
end

function TestS3Types:test_refresh_finds_drift_and_apply_repairs_it()
  apply(bucket())
  local c = s3()
  c:PutBucketVersioning{ Bucket = NAME, VersioningConfiguration = { Status = "Suspended" } }
  c:DeletePublicAccessBlock{ Bucket = NAME }
  apply(bucket())
  lu.assertEquals(c:GetBucketVersioning{ Bucket = NAME }.Status, "Enabled")
  lu.assertTrue(c:GetPublicAccessBlock{ Bucket = NAME }.PublicAccessBlockConfiguration.BlockPublicPolicy)
end

function TestS3Types:test_a_bucket_of_another_copy_or_account_is_a_conflict()
  local c = s3()
  c:CreateBucket{ Bucket = NAME, CreateBucketConfiguration = { LocationConstraint = REGION,
    Tags = T.other_copy_tags("state") } }
  T.assert_conflict(sim, dir, bucket(), NAME)
  -- another account's bucket: BucketAlreadyExists
  sim:add_key{ access_key = "AKIAOTHERACCOUNT0003", secret_key = "other-secret", account = "210987654321" }
  local other = sim:client("s3", { region = REGION, access_key = "AKIAOTHERACCOUNT0003",
    secret_key = "other-secret" })
  other:CreateBucket{ Bucket = "taken-elsewhere", CreateBucketConfiguration = { LocationConstraint = REGION } }
  local code, _, out, err = H.run(bucket{ name = "taken-elsewhere" }, { sim = sim, dir = dir,
    region = REGION })
  lu.assertEquals(code, 4, out .. err)
  lu.assertStrContains(out .. err, "owned by another AWS account")
end

-- In us-east-1 CreateBucket answers 200 again for a bucket of the account (AWS's legacy
-- behaviour there): the create reads its tags after the call and finds it is not its own.
-- Elsewhere a bucket answered is a new one: its tags are not read.
function TestS3Types:test_us_east_1_answers_an_existing_bucket_and_the_create_reads_its_tags()
  local east = sim:client("s3", { region = "us-east-1" })
  east:CreateBucket{ Bucket = NAME, CreateBucketConfiguration = {
    Tags = T.other_copy_tags("state") } }
  T.assert_conflict(sim, dir, bucket(), NAME, { region = "us-east-1" })
  east:DeleteBucket{ Bucket = NAME }
  sim.recorder:clear()
  apply(bucket())
  lu.assertEquals(H.ops(sim, { operation = "GetBucketTagging" }), {})
end

function TestS3Types:test_adopted_after_an_interrupted_create()
  T.assert_adopted(sim, dir, bucket(), { "dev::aws:s3:bucket::state" })
end

function TestS3Types:test_destroy_deletes_an_empty_bucket_and_never_data()
  apply(bucket{ no_policy = true, versioning = false })
  s3():PutObject{ Bucket = NAME, Key = "state.json", Body = "{}" }
  local code, _, out, err = run(bucket{ no_policy = true, versioning = false }, { mode = "destroy" })
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "still holds objects")
  lu.assertEquals(s3():GetObject{ Bucket = NAME, Key = "state.json" }.Body, "{}")
  s3():DeleteObject{ Bucket = NAME, Key = "state.json" }
  code = run(bucket{ no_policy = true, versioning = false }, { mode = "destroy" })
  lu.assertEquals(code, 0)
  lu.assertFalse(pcall(s3().HeadBucket, s3(), { Bucket = NAME }))
end

-- Versions, a delete marker and more objects than one DeleteObjects call takes.
local function fill()
  local c = s3()
  c:PutObject{ Bucket = NAME, Key = "a", Body = "1" }
  c:PutObject{ Bucket = NAME, Key = "a", Body = "2" }
  c:DeleteObject{ Bucket = NAME, Key = "a" }
  for i = 1, 1005 do c:PutObject{ Bucket = NAME, Key = ("log/%04d"):format(i), Body = "x" } end
  local v = c:ListObjectVersions{ Bucket = NAME }
  lu.assertEquals(#v.DeleteMarkers, 1)
end

function TestS3Types:test_empty_on_destroy_deletes_every_version_then_the_bucket_and_the_plan_says_so()
  local recipe = bucket{ no_policy = true, empty = true }
  apply(recipe)
  fill()
  local code, doc, out, err = run(recipe, { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "empties (every object version) and deletes bucket " .. NAME)
  lu.assertEquals(doc.plan.steps[1].note, "empties (every object version) and deletes bucket " .. NAME)
  lu.assertFalse(pcall(s3().HeadBucket, s3(), { Bucket = NAME }))
  -- in batches of at most 1,000 keys (AWS's limit)
  lu.assertEquals(#H.ops(sim, { operation = "DeleteObjects" }), 2) -- 1,008 entries
end

function TestS3Types:test_a_replacement_plan_says_the_old_bucket_is_emptied()
  apply(bucket{ no_policy = true, empty = true })
  local code, doc, out, err = run(bucket{ no_policy = true, empty = true, name = NAME .. "-2" },
    { mode = "plan" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(doc.plan.steps[1].action, "replace")
  lu.assertStrContains(out, "replace (create before delete); the old one: empties (every object "
    .. "version) and deletes bucket " .. NAME)
end

function TestS3Types:test_without_empty_on_destroy_the_plan_says_plain_delete()
  apply(bucket{ no_policy = true })
  local code, doc, out, err = run(bucket{ no_policy = true }, { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertNil(doc.plan.steps[1].note)
  lu.assertNotStrContains(out, "empties")
end

function TestS3Types:test_empty_on_destroy_never_empties_a_bucket_this_create_did_not_make()
  local recipe = bucket{ no_policy = true, empty = true }
  apply(recipe)
  s3():PutObject{ Bucket = NAME, Key = "theirs", Body = "keep" }
  -- the tags no longer say this create made it (someone retagged it)
  local t = tags()
  t["fo:token"] = "someone-else"
  s3():PutBucketTagging{ Bucket = NAME, Tagging = { TagSet = (function()
    local l = {}
    for k, v in pairs(t) do l[#l + 1] = { Key = k, Value = v } end
    return l
  end)() } }
  sim.recorder:clear()
  local code, _, out, err = run(recipe, { mode = "destroy" })
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(out .. err, "fo empties only a bucket its stack created")
  lu.assertEquals(s3():GetObject{ Bucket = NAME, Key = "theirs" }.Body, "keep")
  lu.assertEquals(H.ops(sim, { operation = "DeleteObjects" }), {})
end

function TestS3Types:test_bad_names_are_refused_before_any_call()
  local before = H.mutating(sim)
  local code, _, out, err = run(bucket{ name = "Bad_Name" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "3 to 63 lower-case letters")
  lu.assertEquals(H.mutating(sim), before)
end

os.exit(lu.LuaUnit.run())
