-- The simulator's S3, continued: multipart uploads (part rules, the md5-of-md5s ETag,
-- composite checksums, conditional completes and the 409 conflict), bucket settings (default
-- encryption, public access block, tags) and bucket policies (a Deny of unencrypted puts,
-- Allows for log delivery services and other accounts, BlockPublicPolicy).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws
local crypto = fo.crypto

local MiB = 1024 * 1024

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function setup()
  local sim = simlib.new{ seed = 11 }
  local s3 = sim:client("s3", { region = "eu-west-1", max_attempts = 1 })
  s3:CreateBucket{ Bucket = "mp-bucket", CreateBucketConfiguration = { LocationConstraint = "eu-west-1" } }
  return sim, s3
end

TestS3Multipart = {}

function TestS3Multipart.test_upload_complete_and_etag()
  local _, s3 = setup()
  local id = s3:CreateMultipartUpload{ Bucket = "mp-bucket", Key = "big", ContentType = "text/plain" }.UploadId
  local p1, p2 = ("a"):rep(5 * MiB), "tail"
  local e1 = s3:UploadPart{ Bucket = "mp-bucket", Key = "big", UploadId = id, PartNumber = 1, Body = p1 }.ETag
  local e2 = s3:UploadPart{ Bucket = "mp-bucket", Key = "big", UploadId = id, PartNumber = 2, Body = p2 }.ETag
  local parts = s3:ListParts{ Bucket = "mp-bucket", Key = "big", UploadId = id }.Parts
  lu.assertEquals({ #parts, parts[1].Size, parts[2].ETag }, { 2, 5 * MiB, e2 })
  lu.assertEquals(s3:ListMultipartUploads{ Bucket = "mp-bucket" }.Uploads[1].UploadId, id)
  local done = s3:CompleteMultipartUpload{ Bucket = "mp-bucket", Key = "big", UploadId = id,
    MultipartUpload = { Parts = { { PartNumber = 1, ETag = e1 }, { PartNumber = 2, ETag = e2 } } } }
  local want = ('"%s-2"'):format(crypto.hex(crypto.md5(crypto.md5(p1) .. crypto.md5(p2))))
  lu.assertEquals(done.ETag, want)
  local got = s3:GetObject{ Bucket = "mp-bucket", Key = "big" }
  lu.assertEquals({ #got.Body, got.ETag, got.ContentType }, { 5 * MiB + 4, want, "text/plain" })
  lu.assertEquals(got.Body:sub(-4), "tail")
  lu.assertNil(s3:ListMultipartUploads{ Bucket = "mp-bucket" }.Uploads)
  lu.assertEquals(err_of(s3.UploadPart, s3, { Bucket = "mp-bucket", Key = "big", UploadId = id,
    PartNumber = 3, Body = "x" }).code, "NoSuchUpload")
end

function TestS3Multipart.test_part_rules()
  local _, s3 = setup()
  local id = s3:CreateMultipartUpload{ Bucket = "mp-bucket", Key = "k" }.UploadId
  local e1 = s3:UploadPart{ Bucket = "mp-bucket", Key = "k", UploadId = id, PartNumber = 1, Body = "small" }.ETag
  local e2 = s3:UploadPart{ Bucket = "mp-bucket", Key = "k", UploadId = id, PartNumber = 2, Body = "last" }.ETag
  local function complete(parts)
    return err_of(s3.CompleteMultipartUpload, s3, { Bucket = "mp-bucket", Key = "k", UploadId = id,
      MultipartUpload = { Parts = parts } })
  end
  lu.assertEquals(complete{ { PartNumber = 1, ETag = e1 }, { PartNumber = 2, ETag = e2 } }.code, "EntityTooSmall")
  lu.assertEquals(complete{ { PartNumber = 2, ETag = e2 }, { PartNumber = 1, ETag = e1 } }.code, "InvalidPartOrder")
  lu.assertEquals(complete{ { PartNumber = 1, ETag = e2 } }.code, "InvalidPart")
  lu.assertEquals(complete{ { PartNumber = 3, ETag = e1 } }.code, "InvalidPart")
  lu.assertEquals(err_of(s3.UploadPart, s3, { Bucket = "mp-bucket", Key = "k", UploadId = id,
    PartNumber = 10001, Body = "x" }).code, "InvalidArgument")
  -- one part under 5 MiB is fine: it is the last
  s3:CompleteMultipartUpload{ Bucket = "mp-bucket", Key = "k", UploadId = id,
    MultipartUpload = { Parts = { { PartNumber = 2, ETag = e2 } } } }
  lu.assertEquals(s3:GetObject{ Bucket = "mp-bucket", Key = "k" }.Body, "last")
  local id2 = s3:CreateMultipartUpload{ Bucket = "mp-bucket", Key = "k2" }.UploadId
  s3:AbortMultipartUpload{ Bucket = "mp-bucket", Key = "k2", UploadId = id2 }
  lu.assertEquals(err_of(s3.AbortMultipartUpload, s3, { Bucket = "mp-bucket", Key = "k2",
    UploadId = id2 }).code, "NoSuchUpload")
end

function TestS3Multipart.test_conditional_complete()
  local _, s3 = setup()
  local function upload(key, extra)
    local id = s3:CreateMultipartUpload{ Bucket = "mp-bucket", Key = key }.UploadId
    local e = s3:UploadPart{ Bucket = "mp-bucket", Key = key, UploadId = id, PartNumber = 1, Body = "x" }.ETag
    local p = { Bucket = "mp-bucket", Key = key, UploadId = id,
      MultipartUpload = { Parts = { { PartNumber = 1, ETag = e } } } }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end
  -- If-None-Match: another writer got there first
  local p = upload("lock", { IfNoneMatch = "*" })
  s3:PutObject{ Bucket = "mp-bucket", Key = "lock", Body = "winner" }
  lu.assertEquals(err_of(s3.CompleteMultipartUpload, s3, p).status, 412)
  -- If-Match over an object deleted while the upload was in flight: 409
  local first = s3:PutObject{ Bucket = "mp-bucket", Key = "state", Body = "v1" }
  p = upload("state", { IfMatch = first.ETag })
  s3:DeleteObject{ Bucket = "mp-bucket", Key = "state" }
  local e = err_of(s3.CompleteMultipartUpload, s3, p)
  lu.assertEquals({ e.code, e.status }, { "ConditionalRequestConflict", 409 })
  -- and when nothing changed, the conditional complete succeeds
  local cur = s3:PutObject{ Bucket = "mp-bucket", Key = "state", Body = "v2" }
  s3:CompleteMultipartUpload(upload("state", { IfMatch = cur.ETag }))
  lu.assertEquals(s3:GetObject{ Bucket = "mp-bucket", Key = "state" }.Body, "x")
end

TestS3Settings = {}

function TestS3Settings.test_default_encryption_applies_to_new_objects()
  local _, s3 = setup()
  lu.assertEquals(s3:GetBucketEncryption{ Bucket = "mp-bucket" }.ServerSideEncryptionConfiguration
    .Rules[1].ApplyServerSideEncryptionByDefault.SSEAlgorithm, "AES256")
  s3:PutBucketEncryption{ Bucket = "mp-bucket", ServerSideEncryptionConfiguration = { Rules = { {
    ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "aws:kms", KMSMasterKeyID = "alias/state" },
    BucketKeyEnabled = true } } } }
  local put = s3:PutObject{ Bucket = "mp-bucket", Key = "k", Body = "v" }
  lu.assertEquals({ put.ServerSideEncryption, put.SSEKMSKeyId, put.BucketKeyEnabled },
    { "aws:kms", "arn:aws:kms:eu-west-1:123456789012:alias/state", true })
  lu.assertEquals(s3:HeadObject{ Bucket = "mp-bucket", Key = "k" }.SSEKMSKeyId,
    "arn:aws:kms:eu-west-1:123456789012:alias/state")
  s3:DeleteBucketEncryption{ Bucket = "mp-bucket" }
  lu.assertEquals(s3:PutObject{ Bucket = "mp-bucket", Key = "k2", Body = "v" }.ServerSideEncryption, "AES256")
end

function TestS3Settings.test_public_access_block_and_tags()
  local _, s3 = setup()
  lu.assertEquals(err_of(s3.GetPublicAccessBlock, s3, { Bucket = "mp-bucket" }).code,
    "NoSuchPublicAccessBlockConfiguration")
  s3:PutPublicAccessBlock{ Bucket = "mp-bucket", PublicAccessBlockConfiguration = {
    BlockPublicAcls = true, IgnorePublicAcls = true, BlockPublicPolicy = true, RestrictPublicBuckets = true } }
  lu.assertTrue(s3:GetPublicAccessBlock{ Bucket = "mp-bucket" }.PublicAccessBlockConfiguration.BlockPublicPolicy)
  local public = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
    .. '"Action":"s3:GetObject","Resource":"arn:aws:s3:::mp-bucket/*"}]}'
  lu.assertEquals(err_of(s3.PutBucketPolicy, s3, { Bucket = "mp-bucket", Policy = public }).code, "AccessDenied")
  lu.assertEquals(err_of(s3.GetBucketTagging, s3, { Bucket = "mp-bucket" }).code, "NoSuchTagSet")
  s3:PutBucketTagging{ Bucket = "mp-bucket", Tagging = { TagSet = { { Key = "fo:token", Value = "t1" } } } }
  lu.assertEquals(s3:GetBucketTagging{ Bucket = "mp-bucket" }.TagSet, { { Key = "fo:token", Value = "t1" } })
  lu.assertEquals(err_of(s3.PutBucketTagging, s3, { Bucket = "mp-bucket", Tagging = { TagSet = {
    { Key = "aws:x", Value = "1" } } } }).code, "InvalidTag")
  s3:PutObject{ Bucket = "mp-bucket", Key = "o", Body = "v", Tagging = "a=1&b=two%20words" }
  lu.assertEquals(s3:GetObjectTagging{ Bucket = "mp-bucket", Key = "o" }.TagSet,
    { { Key = "a", Value = "1" }, { Key = "b", Value = "two words" } })
end

TestS3Policy = {}

local DENY_UNENCRYPTED = [[{"Version":"2012-10-17","Statement":[
 {"Sid":"DenyUnencrypted","Effect":"Deny","Principal":"*","Action":"s3:PutObject",
  "Resource":"arn:aws:s3:::mp-bucket/*",
  "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}},
 {"Sid":"DenyInsecure","Effect":"Deny","Principal":"*","Action":"s3:*",
  "Resource":["arn:aws:s3:::mp-bucket","arn:aws:s3:::mp-bucket/*"],
  "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}]]

function TestS3Policy.test_deny_unencrypted_puts()
  local _, s3 = setup()
  s3:PutBucketPolicy{ Bucket = "mp-bucket", Policy = DENY_UNENCRYPTED }
  lu.assertEquals(s3:GetBucketPolicy{ Bucket = "mp-bucket" }.Policy, DENY_UNENCRYPTED)
  local e = err_of(s3.PutObject, s3, { Bucket = "mp-bucket", Key = "plain", Body = "v" })
  lu.assertEquals({ e.code, e.status }, { "AccessDenied", 403 })
  lu.assertEquals(err_of(s3.PutObject, s3, { Bucket = "mp-bucket", Key = "plain", Body = "v",
    ServerSideEncryption = "AES256" }).code, "AccessDenied")
  s3:PutObject{ Bucket = "mp-bucket", Key = "ok", Body = "v", ServerSideEncryption = "aws:kms" }
  -- reads are not puts: allowed
  lu.assertEquals(s3:GetObject{ Bucket = "mp-bucket", Key = "ok" }.Body, "v")
  s3:DeleteBucketPolicy{ Bucket = "mp-bucket" }
  s3:PutObject{ Bucket = "mp-bucket", Key = "plain", Body = "v" }
  lu.assertEquals(err_of(s3.GetBucketPolicy, s3, { Bucket = "mp-bucket" }).code, "NoSuchBucketPolicy")
end

function TestS3Policy.test_null_condition()
  local _, s3 = setup()
  s3:PutBucketPolicy{ Bucket = "mp-bucket", Policy = [[{"Version":"2012-10-17","Statement":[
    {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::mp-bucket/*",
     "Condition":{"Null":{"s3:x-amz-server-side-encryption":"true"}}}]}]] }
  lu.assertEquals(err_of(s3.PutObject, s3, { Bucket = "mp-bucket", Key = "k", Body = "v" }).code, "AccessDenied")
  s3:PutObject{ Bucket = "mp-bucket", Key = "k", Body = "v", ServerSideEncryption = "AES256" }
end

function TestS3Policy.test_malformed_policies()
  local _, s3 = setup()
  local function code(policy)
    return err_of(s3.PutBucketPolicy, s3, { Bucket = "mp-bucket", Policy = policy }).code
  end
  lu.assertEquals(code("not json"), "MalformedPolicy")
  lu.assertEquals(code('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
    .. '"Action":"s3:GetObject","Resource":"arn:aws:s3:::other-bucket/*"}]}'), "MalformedPolicy")
  lu.assertEquals(code('{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*",'
    .. '"Action":"s3:GetObject","Resource":"arn:aws:s3:::mp-bucket/*"}]}'), "MalformedPolicy")
end

function TestS3Policy.test_log_delivery_and_other_accounts_need_an_allow()
  local sim, s3 = setup()
  local policy = require "fo.sim.s3.policy"
  local state = require "fo.sim.s3.state"
  local bucket = state.buckets({ sim = sim })["mp-bucket"]
  local elb = { service = "logdelivery.elasticloadbalancing.amazonaws.com" }
  local logs = { service = "delivery.logs.amazonaws.com" }
  local elb_account = { account = "156460612806" } -- eu-west-1's ELB account
  lu.assertFalse(policy.permits(bucket, elb, "s3:PutObject", { Key = "AWSLogs/x" }))
  s3:PutBucketPolicy{ Bucket = "mp-bucket", Policy = [[{"Version":"2012-10-17","Statement":[
    {"Effect":"Allow","Principal":{"Service":["logdelivery.elasticloadbalancing.amazonaws.com",
      "delivery.logs.amazonaws.com"]},"Action":"s3:PutObject",
     "Resource":"arn:aws:s3:::mp-bucket/AWSLogs/123456789012/*"},
    {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::156460612806:root"},"Action":"s3:PutObject",
     "Resource":"arn:aws:s3:::mp-bucket/AWSLogs/123456789012/*"}]}]] }
  lu.assertTrue(policy.permits(bucket, elb, "s3:PutObject", { Key = "AWSLogs/123456789012/elb/log.gz" }))
  lu.assertTrue(policy.permits(bucket, logs, "s3:PutObject", { Key = "AWSLogs/123456789012/x" }))
  lu.assertTrue(policy.permits(bucket, elb_account, "s3:PutObject", { Key = "AWSLogs/123456789012/x" }))
  lu.assertFalse(policy.permits(bucket, elb, "s3:PutObject", { Key = "elsewhere/x" }))
  lu.assertFalse(policy.permits(bucket, elb, "s3:DeleteObject", { Key = "AWSLogs/123456789012/x" }))
  -- another account through the API: only what the policy allows it
  sim:add_key{ access_key = "AKIAOTHERACCOUNT0002", secret_key = "other-secret", account = "210987654321" }
  local other = sim:client("s3", { region = "eu-west-1", max_attempts = 1,
    access_key = "AKIAOTHERACCOUNT0002", secret_key = "other-secret" })
  lu.assertEquals(err_of(other.PutObject, other, { Bucket = "mp-bucket", Key = "AWSLogs/123456789012/x",
    Body = "v" }).code, "AccessDenied")
end

TestS3Served = {}

-- fo's client over real HTTP to a sim served in this process, each request's headers seen.
function TestS3Served.test_large_put_expects_100_continue_and_head_has_the_size()
  local sim = simlib.new{ seed = 12 }
  local seen = {}
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, max_body = sim.body_limit,
    handler = function(req)
      seen[#seen + 1] = req
      local resp = sim:handle(req)
      if req.method == "HEAD" and resp.head_length then resp.body = ("\0"):rep(resp.head_length) end
      return resp
    end }
  local s3 = sim:client("s3", { region = "eu-west-1", endpoint = "http://127.0.0.1:" .. srv.port,
    max_attempts = 1 })
  s3:CreateBucket{ Bucket = "served-bucket", CreateBucketConfiguration = { LocationConstraint = "eu-west-1" } }
  local body = ("0123456789abcdef"):rep(128 * 1024) -- 2 MiB
  s3:PutObject{ Bucket = "served-bucket", Key = "big", Body = body }
  s3:PutObject{ Bucket = "served-bucket", Key = "small", Body = "s" }
  local function header(req, name)
    for k, v in pairs(req.headers) do if k:lower() == name then return v end end
  end
  lu.assertEquals(seen[2].path, "/served-bucket/big") -- path-style: the endpoint is an IP
  lu.assertEquals(header(seen[2], "expect"), "100-continue")
  lu.assertNil(header(seen[3], "expect"))
  lu.assertEquals(s3:HeadObject{ Bucket = "served-bucket", Key = "big" }.ContentLength, #body)
  lu.assertEquals(s3:GetObject{ Bucket = "served-bucket", Key = "big" }.Body, body)
  lu.assertEquals(err_of(s3.HeadObject, s3, { Bucket = "served-bucket", Key = "none" }).status, 404)
  srv:close()
end

os.exit(lu.LuaUnit.run())
