-- S3 of the served simulator driven by an AWS CLI, for tests/lua/sim/test_awscli_s3*.lua (one
-- file per CLI, each within its own time limit): the current one (the `aws` on PATH, or
-- FO_AWS_CLI_CURRENT: botocore 1.43, CRC32 checksums in aws-chunked trailers by default) and
-- Debian's (/usr/bin/aws, 2.9). The scenario: s3api bucket/object/versioning calls,
-- conditional writes, errors, a bucket policy, a presigned URL, and `s3 cp` of a small file
-- and of one over the 8 MiB multipart threshold (uploaded in parts, downloaded in ranges)
-- and back, `s3 ls`.
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local M = {}
local dir, RUN, sim

local function run(which, args)
  return RUN[which](args)
end

local function ok(which, args)
  local code, out, err = run(which, args)
  lu.assertEquals(code, 0, ("aws %s: %s"):format(table.concat(args, " "), err))
  return out
end

-- A service error: exit code 254 (aws-cli v2) or 255 (v1), the code in stderr.
local function fails_with(which, args, code_text)
  local code, _, err = run(which, args)
  lu.assertTrue(code == 254 or code == 255, ("aws %s: exit %d"):format(table.concat(args, " "), code))
  lu.assertStrContains(err, code_text)
end

local function write_file(name, data)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
  return dir .. "/" .. name
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local d = f:read("a")
  f:close()
  return d
end

-- 9 MiB of varied bytes: over the CLI's 8 MiB multipart threshold.
local function big_data()
  local chunk = {}
  for i = 1, 4096 do chunk[i] = string.char((i * 7) % 251) end
  local block = table.concat(chunk)
  local parts = {}
  for i = 1, 9 * 256 do parts[i] = block:sub(i % 17 + 1) .. block:sub(1, i % 17) end
  return table.concat(parts)
end

local function scenario(which)
  local bucket = "cli-" .. which .. "-bucket"
  ok(which, { "s3api", "create-bucket", "--bucket", bucket,
    "--create-bucket-configuration", "LocationConstraint=eu-south-1" })
  fails_with(which, { "s3api", "create-bucket", "--bucket", bucket,
    "--create-bucket-configuration", "LocationConstraint=eu-south-1" }, "BucketAlreadyOwnedByYou")
  ok(which, { "s3api", "put-bucket-versioning", "--bucket", bucket,
    "--versioning-configuration", "Status=Enabled" })
  local one = write_file(which .. "-one.txt", "first version\n")
  local two = write_file(which .. "-two.txt", "second version\n")
  local v1 = ok(which, { "s3api", "put-object", "--bucket", bucket, "--key", "doc.txt",
    "--body", one, "--query", "VersionId" })
  local v2 = ok(which, { "s3api", "put-object", "--bucket", bucket, "--key", "doc.txt",
    "--body", two, "--metadata", "team=ops", "--query", "VersionId" })
  lu.assertNotEquals(v1, v2)
  ok(which, { "s3api", "get-object", "--bucket", bucket, "--key", "doc.txt", "--version-id", v1,
    dir .. "/" .. which .. "-v1.out" })
  lu.assertEquals(read_file(dir .. "/" .. which .. "-v1.out"), "first version\n")
  lu.assertEquals(ok(which, { "s3api", "head-object", "--bucket", bucket, "--key", "doc.txt",
    "--query", "Metadata.team" }), "ops")
  lu.assertEquals(ok(which, { "s3api", "list-object-versions", "--bucket", bucket,
    "--query", "length(Versions)" }), "2")
  fails_with(which, { "s3api", "get-object", "--bucket", bucket, "--key", "missing",
    dir .. "/missing.out" }, "NoSuchKey")
  -- conditional writes (the current CLI knows --if-none-match; Debian's 2.9 predates it)
  if which == "current" then
    fails_with(which, { "s3api", "put-object", "--bucket", bucket, "--key", "doc.txt",
      "--body", one, "--if-none-match", "*" }, "PreconditionFailed")
  end
  -- s3 cp: small, then over the multipart threshold, and back
  ok(which, { "s3", "cp", "--no-progress", one, "s3://" .. bucket .. "/small/one.txt" })
  -- a presigned URL (the signature in the query string) fetched without credentials
  local url = ok(which, { "s3", "presign", "s3://" .. bucket .. "/small/one.txt" })
  local got = fo.http.request{ url = url }
  lu.assertEquals({ got.status, got.body }, { 200, "first version\n" })
  local data = big_data()
  local big = write_file(which .. "-big.bin", data)
  ok(which, { "s3", "cp", "--no-progress", big, "s3://" .. bucket .. "/big/big.bin" })
  lu.assertStrMatches(ok(which, { "s3api", "head-object", "--bucket", bucket, "--key",
    "big/big.bin", "--query", "ETag" }), '"%x+%-2"')
  ok(which, { "s3", "cp", "--no-progress", "s3://" .. bucket .. "/big/big.bin", big .. ".back" })
  lu.assertTrue(read_file(big .. ".back") == data, "the downloaded file differs")
  local listed = ok(which, { "s3", "ls", "s3://" .. bucket })
  lu.assertStrContains(listed, "PRE big/")
  lu.assertStrContains(listed, "doc.txt")
  lu.assertEquals(ok(which, { "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "big/",
    "--query", "Contents[].[Key, Size]" }), "big/big.bin\t" .. #data)
  -- a policy denying unencrypted puts: s3 cp without --sse is refused, with it accepted
  local policy = write_file(which .. "-policy.json", ([[{"Version":"2012-10-17","Statement":[
    {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::%s/*",
     "Condition":{"StringNotEquals":{"s3:x-amz-server-side-encryption":"aws:kms"}}}]}]]):format(bucket))
  ok(which, { "s3api", "put-bucket-policy", "--bucket", bucket, "--policy", "file://" .. policy })
  local code, _, err = run(which, { "s3", "cp", "--no-progress", one, "s3://" .. bucket .. "/denied.txt" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "AccessDenied")
  ok(which, { "s3", "cp", "--no-progress", "--sse", "aws:kms", one, "s3://" .. bucket .. "/kms.txt" })
  lu.assertEquals(ok(which, { "s3api", "head-object", "--bucket", bucket, "--key", "kms.txt",
    "--query", "ServerSideEncryption" }), "aws:kms")
end

--- Runs the scenario with CLI `which` ("current" or "debian") as a LuaUnit suite and exits
--- with its result; a missing CLI fails the suite, naming why.
function M.main(which)
  dir = t.tmpdir()
  sim = cli.start_sim(dir, 600)
  RUN = { [which] = cli.text_runner(which, dir, sim.url) }
  _G.TestAwsCliS3 = { ["test_" .. which .. "_cli"] = function() scenario(which) end }
  cli.finish(lu, sim, dir)
end

return M
