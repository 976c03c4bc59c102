-- S3 of the served simulator driven by the AWS CLI, both the current one (the `aws` on PATH,
-- or FO_AWS_CLI_CURRENT: botocore 1.43, CRC32 checksums in aws-chunked trailers by default)
-- and Debian's (/usr/bin/aws, 2.9): s3api bucket/object/versioning calls, conditional
-- writes, errors, a bucket policy, and `s3 cp` of a small file and of one over the 8 MiB
-- multipart threshold (uploaded in parts, downloaded in ranges) and back, `s3 ls`.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"

local dir = t.tmpdir()

-- The CLIs found here: {name, path, env}.
local function clis()
  local out = {}
  local current = os.getenv("FO_AWS_CLI_CURRENT")
  if not current then
    local r = fo.process.run{ argv = { "sh", "-c", "command -v aws" } }
    current = r.code == 0 and r.stdout:match("^%s*(.-)%s*$") or nil
  end
  if current and current ~= "" then
    local env = cli.env(dir)
    local root = current:match("^(.*)/shims/aws$")
    if root then env.PYENV_ROOT = os.getenv("PYENV_ROOT") or root end
    out.current = { path = current, env = env }
  end
  local f = io.open(cli.AWS, "rb")
  if f then
    f:close()
    out.debian = { path = cli.AWS, env = cli.env(dir) }
  end
  return out
end

local CLIS = clis()
local sim = next(CLIS) and cli.start_sim(dir, 600)

local function run(which, args)
  local c = CLIS[which]
  local argv = { c.path, "--endpoint-url", sim.url, "--region", "eu-south-1", "--output", "text" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = fo.process.run{ argv = argv, env = c.env, timeout = 180, cwd = dir }
  return r.code, r.stdout:match("^%s*(.-)%s*$"), r.stderr
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
  lu.skipIf(not CLIS[which], "no " .. which .. " aws CLI here")
  local bucket = "cli-" .. which .. "-bucket"
  ok(which, { "s3api", "create-bucket", "--bucket", bucket,
    "--create-bucket-configuration", "LocationConstraint=eu-south-1" })
  fails_with(which, { "s3api", "create-bucket", "--bucket", bucket,
    "--create-bucket-configuration", "LocationConstraint=eu-south-1" }, "BucketAlreadyOwnedByYou")
  ok(which, { "s3api", "put-bucket-versioning", "--bucket", bucket,
    "--versioning-configuration", "Status=Enabled" })
  lu.assertEquals(ok(which, { "s3api", "get-bucket-versioning", "--bucket", bucket }), "Enabled")
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
  lu.assertStrContains(ok(which, { "s3", "ls", "s3://" .. bucket .. "/big/" }), tostring(#data) .. " big.bin")
  lu.assertEquals(ok(which, { "s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "small/",
    "--query", "Contents[].Key" }), "small/one.txt")
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

TestAwsCliS3 = {}

function TestAwsCliS3.test_current_cli()
  scenario("current")
end

function TestAwsCliS3.test_debian_cli()
  scenario("debian")
end

local rc = lu.LuaUnit.run()
if sim then
  local r = cli.stop_sim(sim)
  if not tostring(r.stdout):find("exit=0", 1, true) then
    print("the served sim did not stop cleanly: " .. tostring(r.stdout) .. tostring(r.stderr))
    rc = 1
  end
end
t.rmtree(dir)
os.exit(rc)
