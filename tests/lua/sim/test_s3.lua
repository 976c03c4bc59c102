-- The simulator's S3 through fo's s3 client over the in-process wire: buckets (names,
-- LocationConstraint rules, ownership, regions), objects with metadata and encryption,
-- conditional writes and reads, versioning with delete markers, listings with
-- prefixes/delimiters/pagination, S3's error document, and the client's addressing
-- (virtual-hosted by default, path-style for an endpoint override or a name that cannot
-- be a host) and signing (x-amz-content-sha256 on every request).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local aws = fo.aws

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

-- A client whose requests go to `sim` in-process, recording what was sent.
local function client(sim, region, opts)
  opts = opts or {}
  local sent = {}
  local transport = sim:transport()
  local key = simlib.DEFAULT_KEY
  local c = aws.s3{ region = region or "eu-west-1", env = sim:env_for(key), max_attempts = 1,
    endpoint = opts.endpoint, addressing_style = opts.addressing_style,
    http = { request = function(r)
      sent[#sent + 1] = r
      return transport(r)
    end } }
  return c, sent
end

local function setup(region)
  local sim = simlib.new{ seed = 7 }
  local s3, sent = client(sim, region)
  return sim, s3, sent
end

local function make_bucket(s3, name, region)
  region = region or "eu-west-1"
  return s3:CreateBucket{ Bucket = name, CreateBucketConfiguration =
    region ~= "us-east-1" and { LocationConstraint = region } or nil }
end

-- A raw request signed as a client would, with header overrides.
local function raw(sim, method, url, body, headers, payload_hash, region)
  local h = { Host = url:match("^https?://([^/]+)") }
  for k, v in pairs(headers or {}) do h[k] = v end
  h["x-amz-content-sha256"] = payload_hash or fo.crypto.hex(fo.crypto.sha256(body or ""))
  local path, query = url:match("^https?://[^/]+([^?]*)%??(.*)$")
  local s = fo.sigv4.sign{ method = method, path = path, query = query, headers = h, body = body or "",
    region = region or "eu-west-1", service = "s3", access_key = simlib.DEFAULT_KEY.access_key,
    secret_key = simlib.DEFAULT_KEY.secret_key, normalize = false,
    payload_hash = h["x-amz-content-sha256"] }
  for k, v in pairs(s.headers) do h[k] = v end
  return sim:handle{ method = method, url = url, headers = h, body = body }
end

TestS3Client = {}

function TestS3Client.test_virtual_hosted_by_default_with_content_sha256()
  local _, s3, sent = setup()
  make_bucket(s3, "logs-bucket")
  s3:PutObject{ Bucket = "logs-bucket", Key = "a b/c.txt", Body = "hi" }
  lu.assertEquals(sent[1].url, "https://logs-bucket.s3.eu-west-1.amazonaws.com/")
  lu.assertEquals(sent[2].url, "https://logs-bucket.s3.eu-west-1.amazonaws.com/a%20b/c.txt")
  local h = {}
  for k, v in pairs(sent[2].headers) do h[k:lower()] = v end
  lu.assertEquals(h["x-amz-content-sha256"], fo.crypto.hex(fo.crypto.sha256("hi")))
  lu.assertStrContains(h.authorization, "/eu-west-1/s3/aws4_request")
  lu.assertStrContains(h.authorization, "x-amz-content-sha256")
end

function TestS3Client.test_us_east_1_is_regional_and_takes_no_location_constraint()
  local _, s3, sent = setup("us-east-1")
  make_bucket(s3, "east-bucket", "us-east-1")
  lu.assertEquals(sent[1].url, "https://east-bucket.s3.us-east-1.amazonaws.com/")
  lu.assertEquals(s3:GetBucketLocation{ Bucket = "east-bucket" }.LocationConstraint, nil)
end

function TestS3Client.test_path_style_when_the_name_or_endpoint_rules_out_a_host()
  local sim = simlib.new{ seed = 7 }
  local s3, sent = client(sim, "eu-west-1")
  make_bucket(s3, "dotted.bucket.name") -- dots: the https certificate covers one label
  lu.assertEquals(sent[1].url, "https://s3.eu-west-1.amazonaws.com/dotted.bucket.name")
  local ov, sent2 = client(sim, "eu-west-1", { endpoint = "http://127.0.0.1:1" })
  pcall(ov.HeadBucket, ov, { Bucket = "plain-bucket" })
  lu.assertEquals(sent2[1].url, "http://127.0.0.1:1/plain-bucket")
  local forced, sent3 = client(sim, "eu-west-1", { addressing_style = "path" })
  forced:HeadBucket{ Bucket = "dotted.bucket.name" }
  pcall(forced.HeadBucket, forced, { Bucket = "plain-bucket" })
  lu.assertEquals(sent3[2].url, "https://s3.eu-west-1.amazonaws.com/plain-bucket")
end

function TestS3Client.test_checksum_required_operations_send_content_md5()
  local _, s3, sent = setup()
  make_bucket(s3, "v-bucket")
  s3:PutBucketVersioning{ Bucket = "v-bucket", VersioningConfiguration = { Status = "Enabled" } }
  local h = {}
  for k, v in pairs(sent[2].headers) do h[k:lower()] = v end
  lu.assertEquals(h["content-md5"], fo.crypto.base64_encode(fo.crypto.md5(sent[2].body)))
end

function TestS3Client.test_redirect_to_the_buckets_region_once()
  local sim = simlib.new{ seed = 7 }
  local west = client(sim, "eu-west-1")
  make_bucket(west, "west-bucket")
  west:PutObject{ Bucket = "west-bucket", Key = "k", Body = "v" }
  local east, sent = client(sim, "us-east-1")
  lu.assertEquals(east:GetObject{ Bucket = "west-bucket", Key = "k" }.Body, "v")
  lu.assertEquals(#sent, 2)
  lu.assertEquals(sent[1].url, "https://west-bucket.s3.us-east-1.amazonaws.com/k")
  lu.assertEquals(sent[2].url, "https://west-bucket.s3.eu-west-1.amazonaws.com/k")
end

TestS3Buckets = {}

function TestS3Buckets.test_location_constraint_rules()
  local sim = simlib.new{ seed = 7 }
  local west = client(sim, "eu-west-1")
  lu.assertEquals(err_of(west.CreateBucket, west, { Bucket = "no-lc-bucket" }).code,
    "IllegalLocationConstraintException")
  lu.assertEquals(err_of(west.CreateBucket, west, { Bucket = "wrong-lc-bucket",
    CreateBucketConfiguration = { LocationConstraint = "eu-central-1" } }).code,
    "IllegalLocationConstraintException")
  local east = client(sim, "us-east-1")
  lu.assertEquals(err_of(east.CreateBucket, east, { Bucket = "east-lc-bucket",
    CreateBucketConfiguration = { LocationConstraint = "eu-west-1" } }).code,
    "IllegalLocationConstraintException")
  -- us-east-1 named as a constraint (the client's model refuses it; a raw request)
  local e = raw(sim, "PUT", "https://s3.us-east-1.amazonaws.com/east-lc-bucket",
    '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
      .. "<LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>",
    nil, nil, "us-east-1")
  lu.assertStrContains(e.body, "<Code>InvalidLocationConstraint</Code>")
end

function TestS3Buckets.test_names_and_ownership()
  local sim = simlib.new{ seed = 7 }
  local s3 = client(sim)
  for _, bad in ipairs{ "ab", "Upper-case", "under_score", "a..b", "192.168.1.1", "-start",
      "xn--punycode", "end-s3alias" } do
    local e = err_of(s3.CreateBucket, s3, { Bucket = bad,
      CreateBucketConfiguration = { LocationConstraint = "eu-west-1" } })
    lu.assertEquals(e.code, "InvalidBucketName", bad)
  end
  make_bucket(s3, "taken-bucket")
  lu.assertEquals(err_of(make_bucket, s3, "taken-bucket").code, "BucketAlreadyOwnedByYou")
  sim:add_key{ access_key = "AKIAOTHERACCOUNT0001", secret_key = "other-secret", account = "210987654321" }
  local other = aws.s3{ region = "eu-west-1", max_attempts = 1, http = sim:transport(),
    env = sim:env_for{ access_key = "AKIAOTHERACCOUNT0001", secret_key = "other-secret" } }
  lu.assertEquals(err_of(make_bucket, other, "taken-bucket").code, "BucketAlreadyExists")
  lu.assertEquals(err_of(other.GetObject, other, { Bucket = "taken-bucket", Key = "x" }).code,
    "AccessDenied")
  lu.assertEquals(#other:ListBuckets{}.Buckets, 0)
  lu.assertEquals(s3:ListBuckets{}.Buckets[1].Name, "taken-bucket")
end

function TestS3Buckets.test_delete_bucket_not_empty_then_empty()
  local _, s3 = setup()
  make_bucket(s3, "full-bucket")
  s3:PutObject{ Bucket = "full-bucket", Key = "k", Body = "v" }
  local e = err_of(s3.DeleteBucket, s3, { Bucket = "full-bucket" })
  lu.assertEquals({ e.code, e.status }, { "BucketNotEmpty", 409 })
  s3:DeleteObject{ Bucket = "full-bucket", Key = "k" }
  s3:DeleteBucket{ Bucket = "full-bucket" }
  lu.assertEquals(err_of(s3.HeadBucket, s3, { Bucket = "full-bucket" }).status, 404)
end

TestS3Objects = {}

function TestS3Objects.test_put_get_head_with_metadata_and_encryption()
  local _, s3 = setup()
  make_bucket(s3, "obj-bucket")
  local put = s3:PutObject{ Bucket = "obj-bucket", Key = "dir/file.json", Body = "{\"a\":1}",
    ContentType = "application/json", Metadata = { Owner = "team-a" } }
  lu.assertEquals(put.ETag, '"' .. fo.crypto.hex(fo.crypto.md5("{\"a\":1}")) .. '"')
  lu.assertEquals(put.ServerSideEncryption, "AES256") -- S3 encrypts every new object
  local got = s3:GetObject{ Bucket = "obj-bucket", Key = "dir/file.json" }
  lu.assertEquals({ got.Body, got.ContentType, got.Metadata.owner, got.ETag, got.ContentLength },
    { "{\"a\":1}", "application/json", "team-a", put.ETag, 7 })
  local head = s3:HeadObject{ Bucket = "obj-bucket", Key = "dir/file.json" }
  lu.assertEquals({ head.ContentLength, head.ETag }, { 7, put.ETag })
  local kms = s3:PutObject{ Bucket = "obj-bucket", Key = "secret", Body = "s",
    ServerSideEncryption = "aws:kms", SSEKMSKeyId = "1234abcd-12ab-34cd-56ef-1234567890ab" }
  lu.assertEquals(kms.SSEKMSKeyId,
    "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
  lu.assertEquals(s3:HeadObject{ Bucket = "obj-bucket", Key = "secret" }.ServerSideEncryption, "aws:kms")
  local e = err_of(s3.GetObject, s3, { Bucket = "obj-bucket", Key = "missing" })
  lu.assertEquals({ e.code, e.status }, { "NoSuchKey", 404 })
  lu.assertEquals(err_of(s3.GetObject, s3, { Bucket = "no-such-bucket", Key = "k" }).code, "NoSuchBucket")
  lu.assertEquals(s3:GetObject{ Bucket = "obj-bucket", Key = "dir/file.json", Range = "bytes=1-3" }.Body, "\"a\"")
end

function TestS3Objects.test_conditional_writes()
  local _, s3 = setup()
  make_bucket(s3, "cond-bucket")
  local first = s3:PutObject{ Bucket = "cond-bucket", Key = "state", Body = "v1", IfNoneMatch = "*" }
  local e = err_of(s3.PutObject, s3, { Bucket = "cond-bucket", Key = "state", Body = "v2", IfNoneMatch = "*" })
  lu.assertEquals({ e.code, e.status }, { "PreconditionFailed", 412 })
  local second = s3:PutObject{ Bucket = "cond-bucket", Key = "state", Body = "v2", IfMatch = first.ETag }
  e = err_of(s3.PutObject, s3, { Bucket = "cond-bucket", Key = "state", Body = "v3", IfMatch = first.ETag })
  lu.assertEquals({ e.code, e.status }, { "PreconditionFailed", 412 })
  lu.assertEquals(s3:GetObject{ Bucket = "cond-bucket", Key = "state" }.ETag, second.ETag)
  e = err_of(s3.PutObject, s3, { Bucket = "cond-bucket", Key = "absent", Body = "x", IfMatch = first.ETag })
  lu.assertEquals({ e.code, e.status }, { "NoSuchKey", 404 })
  -- a delete marker is no object: If-None-Match succeeds over it
  s3:DeleteObject{ Bucket = "cond-bucket", Key = "state" }
  s3:PutObject{ Bucket = "cond-bucket", Key = "state", Body = "v4", IfNoneMatch = "*" }
end

function TestS3Objects.test_conditional_reads()
  local _, s3 = setup()
  make_bucket(s3, "read-bucket")
  local put = s3:PutObject{ Bucket = "read-bucket", Key = "k", Body = "v" }
  lu.assertEquals(err_of(s3.GetObject, s3, { Bucket = "read-bucket", Key = "k", IfMatch = '"00"' }).status, 412)
  lu.assertEquals(err_of(s3.GetObject, s3, { Bucket = "read-bucket", Key = "k", IfNoneMatch = put.ETag }).status, 304)
  lu.assertEquals(s3:GetObject{ Bucket = "read-bucket", Key = "k", IfMatch = put.ETag }.Body, "v")
end

function TestS3Objects.test_versioning_and_delete_markers()
  local _, s3 = setup()
  make_bucket(s3, "ver-bucket")
  lu.assertEquals(s3:GetBucketVersioning{ Bucket = "ver-bucket" }.Status, nil)
  s3:PutObject{ Bucket = "ver-bucket", Key = "k", Body = "unversioned" }
  s3:PutBucketVersioning{ Bucket = "ver-bucket", VersioningConfiguration = { Status = "Enabled" } }
  lu.assertEquals(s3:GetBucketVersioning{ Bucket = "ver-bucket" }.Status, "Enabled")
  local v1 = s3:PutObject{ Bucket = "ver-bucket", Key = "k", Body = "one" }.VersionId
  local v2 = s3:PutObject{ Bucket = "ver-bucket", Key = "k", Body = "two" }.VersionId
  lu.assertNotEquals(v1, v2)
  lu.assertEquals(s3:GetObject{ Bucket = "ver-bucket", Key = "k", VersionId = v1 }.Body, "one")
  lu.assertEquals(s3:GetObject{ Bucket = "ver-bucket", Key = "k", VersionId = "null" }.Body, "unversioned")
  local del = s3:DeleteObject{ Bucket = "ver-bucket", Key = "k" }
  lu.assertTrue(del.DeleteMarker)
  lu.assertEquals(err_of(s3.GetObject, s3, { Bucket = "ver-bucket", Key = "k" }).code, "NoSuchKey")
  local lv = s3:ListObjectVersions{ Bucket = "ver-bucket" }
  lu.assertEquals(#lv.Versions, 3)
  lu.assertEquals(#lv.DeleteMarkers, 1)
  lu.assertTrue(lv.DeleteMarkers[1].IsLatest)
  lu.assertEquals(lv.Versions[1].VersionId, v2)
  lu.assertEquals(s3:ListObjectsV2{ Bucket = "ver-bucket" }.KeyCount, 0)
  -- deleting the marker brings the object back
  s3:DeleteObject{ Bucket = "ver-bucket", Key = "k", VersionId = del.VersionId }
  lu.assertEquals(s3:GetObject{ Bucket = "ver-bucket", Key = "k" }.Body, "two")
  lu.assertEquals(err_of(s3.GetObject, s3, { Bucket = "ver-bucket", Key = "k", VersionId = "nope" }).code,
    "NoSuchVersion")
end

function TestS3Objects.test_list_objects_v2_prefix_delimiter_pages()
  local _, s3 = setup()
  make_bucket(s3, "list-bucket")
  for _, k in ipairs{ "a/1", "a/2", "b/1", "c", "d", "e" } do
    s3:PutObject{ Bucket = "list-bucket", Key = k, Body = k }
  end
  local top = s3:ListObjectsV2{ Bucket = "list-bucket", Delimiter = "/" }
  lu.assertEquals(top.KeyCount, 5)
  lu.assertEquals({ top.CommonPrefixes[1].Prefix, top.CommonPrefixes[2].Prefix }, { "a/", "b/" })
  lu.assertEquals(#top.Contents, 3)
  local pre = s3:ListObjectsV2{ Bucket = "list-bucket", Prefix = "a/" }
  lu.assertEquals({ pre.Contents[1].Key, pre.Contents[2].Key }, { "a/1", "a/2" })
  local keys, token, pages = {}, nil, 0
  repeat
    local page = s3:ListObjectsV2{ Bucket = "list-bucket", MaxKeys = 4, ContinuationToken = token }
    pages = pages + 1
    for _, o in ipairs(page.Contents or {}) do keys[#keys + 1] = o.Key end
    token = page.NextContinuationToken
  until not page.IsTruncated
  lu.assertEquals(pages, 2)
  lu.assertEquals(keys, { "a/1", "a/2", "b/1", "c", "d", "e" })
  local after = s3:ListObjectsV2{ Bucket = "list-bucket", StartAfter = "c" }
  lu.assertEquals(after.KeyCount, 2)
  local v1 = s3:ListObjects{ Bucket = "list-bucket", Marker = "b/1", MaxKeys = 2 }
  lu.assertEquals({ v1.Contents[1].Key, v1.Contents[2].Key, v1.IsTruncated }, { "c", "d", true })
  lu.assertEquals(err_of(s3.ListObjectsV2, s3, { Bucket = "list-bucket", ContinuationToken = "bogus" }).code,
    "InvalidArgument")
end

function TestS3Objects.test_copy_object()
  local _, s3 = setup()
  make_bucket(s3, "copy-bucket")
  s3:PutObject{ Bucket = "copy-bucket", Key = "src", Body = "data", Metadata = { m = "1" } }
  local out = s3:CopyObject{ Bucket = "copy-bucket", Key = "dst", CopySource = "copy-bucket/src" }
  lu.assertEquals(out.CopyObjectResult.ETag, '"' .. fo.crypto.hex(fo.crypto.md5("data")) .. '"')
  local got = s3:GetObject{ Bucket = "copy-bucket", Key = "dst" }
  lu.assertEquals({ got.Body, got.Metadata.m }, { "data", "1" })
  lu.assertEquals(err_of(s3.CopyObject, s3, { Bucket = "copy-bucket", Key = "src",
    CopySource = "copy-bucket/src" }).code, "InvalidRequest")
end

TestS3Wire = {}

function TestS3Wire.test_error_document_is_s3s()
  local sim, s3 = setup()
  make_bucket(s3, "err-bucket")
  local resp = raw(sim, "GET", "https://err-bucket.s3.eu-west-1.amazonaws.com/nope")
  lu.assertEquals(resp.status, 404)
  lu.assertStrMatches(resp.body, '^<%?xml version="1.0" encoding="UTF%-8"%?>\n<Error><Code>NoSuchKey</Code>.*<Key>nope</Key>.*</Error>$')
  lu.assertNotNil(resp.headers["x-amz-request-id"])
end

function TestS3Wire.test_content_sha256_is_checked()
  local sim, s3 = setup()
  make_bucket(s3, "sha-bucket")
  local resp = raw(sim, "PUT", "https://sha-bucket.s3.eu-west-1.amazonaws.com/k", "body", nil,
    fo.crypto.hex(fo.crypto.sha256("other")))
  lu.assertEquals(resp.status, 400)
  lu.assertStrContains(resp.body, "<Code>XAmzContentSHA256Mismatch</Code>")
  resp = raw(sim, "PUT", "https://sha-bucket.s3.eu-west-1.amazonaws.com/k", "body", nil, "UNSIGNED-PAYLOAD")
  lu.assertEquals(resp.status, 200)
  resp = raw(sim, "PUT", "https://s3.eu-west-1.amazonaws.com/sha-bucket/k2", "body", { ["Content-MD5"] = fo.crypto.base64_encode(fo.crypto.md5("x")) })
  lu.assertEquals(resp.status, 400)
  lu.assertStrContains(resp.body, "<Code>BadDigest</Code>")
end

function TestS3Wire.test_aws_chunked_body_with_trailing_checksum()
  local sim, s3 = setup()
  make_bucket(s3, "chunk-bucket")
  local data = ("0123456789"):rep(10)
  local crc = fo.crypto.base64_encode(string.pack(">I4", fo.crypto.crc32(data)))
  local body = ("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n"):format(#data, data, crc)
  local h = { ["Content-Encoding"] = "aws-chunked", ["x-amz-decoded-content-length"] = tostring(#data),
    ["x-amz-trailer"] = "x-amz-checksum-crc32" }
  local resp = raw(sim, "PUT", "https://chunk-bucket.s3.eu-west-1.amazonaws.com/k", body, h,
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
  lu.assertEquals(resp.status, 200, resp.body)
  lu.assertEquals(s3:GetObject{ Bucket = "chunk-bucket", Key = "k" }.Body, data)
  local bad = body:gsub(crc:gsub("%p", "%%%0"), fo.crypto.base64_encode("\0\0\0\0"))
  resp = raw(sim, "PUT", "https://chunk-bucket.s3.eu-west-1.amazonaws.com/k", bad, h,
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
  lu.assertEquals(resp.status, 400)
  lu.assertStrContains(resp.body, "<Code>BadDigest</Code>")
end

-- The example of the S3 API reference ("Signature Calculations for the Authorization Header:
-- Transferring Payload in Multiple Chunks"): 66,560 bytes of 'a' in chunks of 64 KiB and 1 KiB.
local DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
local DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
local function doc_body(first_sig)
  return ("10000;chunk-signature=%s\r\n%s\r\n"
    .. "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n%s\r\n"
    .. "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
    :format(first_sig, ("a"):rep(65536), ("a"):rep(1024))
end

function TestS3Wire.test_chunk_signatures_of_awss_example()
  local chunks = require "fo.sim.s3.chunks"
  chunks.verify(doc_body("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"), DOC_SECRET,
    "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", DOC_SEED, false)
  local ok, e = pcall(chunks.verify, doc_body(("0"):rep(64)), DOC_SECRET, "20130524T000000Z",
    "20130524/us-east-1/s3/aws4_request", DOC_SEED, false)
  lu.assertFalse(ok)
  lu.assertEquals({ e.code, e.status }, { "SignatureDoesNotMatch", 403 })
end

-- A signed aws-chunked PUT as an SDK sends it (seed: the request's signature).
local function signed_chunked(sim, url, data, tamper)
  local key = simlib.DEFAULT_KEY
  local h = { Host = url:match("^https?://([^/]+)"), ["Content-Encoding"] = "aws-chunked",
    ["x-amz-decoded-content-length"] = tostring(#data),
    ["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" }
  local path = url:match("^https?://[^/]+(/.*)$")
  local s = fo.sigv4.sign{ method = "PUT", path = path, headers = h, region = "eu-west-1",
    service = "s3", access_key = key.access_key, secret_key = key.secret_key, normalize = false,
    payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" }
  for k, v in pairs(s.headers) do h[k] = v end
  local skey = fo.sigv4.signing_key(key.secret_key, s.amz_date:sub(1, 8), "eu-west-1", "s3")
  local prev, out = s.signature, {}
  local empty = fo.crypto.hex(fo.crypto.sha256(""))
  for _, chunk in ipairs{ data, "" } do
    local sts = table.concat({ "AWS4-HMAC-SHA256-PAYLOAD", s.amz_date, s.credential_scope, prev,
      empty, fo.crypto.hex(fo.crypto.sha256(chunk)) }, "\n")
    prev = fo.crypto.hex(fo.crypto.hmac_sha256(skey, sts))
    out[#out + 1] = ("%x;chunk-signature=%s\r\n%s\r\n"):format(#chunk, prev,
      tamper and chunk ~= "" and chunk:upper() or chunk)
  end
  return sim:handle{ method = "PUT", url = url, headers = h, body = table.concat(out) }
end

function TestS3Wire.test_signed_chunked_upload()
  local sim, s3 = setup()
  make_bucket(s3, "signed-bucket")
  local resp = signed_chunked(sim, "https://signed-bucket.s3.eu-west-1.amazonaws.com/k", "chunked data")
  lu.assertEquals(resp.status, 200, resp.body)
  lu.assertEquals(s3:GetObject{ Bucket = "signed-bucket", Key = "k" }.Body, "chunked data")
  resp = signed_chunked(sim, "https://signed-bucket.s3.eu-west-1.amazonaws.com/k", "chunked data", true)
  lu.assertEquals(resp.status, 403)
  lu.assertStrContains(resp.body, "<Code>SignatureDoesNotMatch</Code>")
  lu.assertEquals(s3:GetObject{ Bucket = "signed-bucket", Key = "k" }.Body, "chunked data")
end

os.exit(lu.LuaUnit.run())
