-- The AWS CLI's `aws kms` against the served simulator, with both CLIs a user may have: the
-- current one (the `aws` on PATH, or FO_AWS_CLI_CURRENT) and Debian's (/usr/bin/aws, or
-- FO_AWS_CLI). Keys, aliases, encrypt/decrypt with an encryption context (ciphertext in a
-- file, as the CLI passes blobs), data keys, scheduled deletion and its cancellation, and
-- the error codes the CLI prints.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local cli = require "support.awscli"
local crypto = require "fo.crypto"

local dir = t.tmpdir()

local sim = cli.start_sim(dir, 900)

local function scenario(which)
  local aws, version = cli.text_runner(which, dir, sim.url)
  local alias = "alias/cli-" .. which
  local code, out, err = aws{ "kms", "create-key", "--description", "cli proof",
    "--tags", "TagKey=fo:token,TagValue=" .. which,
    "--query", "KeyMetadata.[KeyId,KeyState,KeySpec,KeyManager]" }
  lu.assertEquals(code, 0, err)
  local id, state, spec, manager = out:match("^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)$")
  lu.assertEquals({ state, spec, manager }, { "Enabled", "SYMMETRIC_DEFAULT", "CUSTOMER" }, out)
  code, _, err = aws{ "kms", "create-alias", "--alias-name", alias, "--target-key-id", id }
  lu.assertEquals(code, 0, err)
  -- encrypt a file's bytes under the alias, with an encryption context
  local plain = "order 42: buy 100 @ 17.5\n" .. string.char(0, 255, 10)
  t.write(dir .. "/plain-" .. which, plain)
  code, out, err = aws{ "kms", "encrypt", "--key-id", alias, "--plaintext",
    "fileb://" .. dir .. "/plain-" .. which, "--encryption-context", "app=orders",
    "--query", "CiphertextBlob" }
  lu.assertEquals(code, 0, err)
  local blob = crypto.base64_decode(out)
  lu.assertNil(blob:find("order 42", 1, true))
  local cipher = dir .. "/cipher-" .. which
  t.write(cipher, blob)
  -- decrypt needs no key id; the context must match
  code, out, err = aws{ "kms", "decrypt", "--ciphertext-blob", "fileb://" .. cipher,
    "--encryption-context", "app=orders", "--query", "[KeyId,Plaintext]" }
  lu.assertEquals(code, 0, err)
  local arn, b64 = out:match("^(%S+)%s+(%S+)$")
  lu.assertEquals(arn, "arn:aws:kms:eu-south-1:123456789012:key/" .. id)
  lu.assertEquals(crypto.base64_decode(b64), plain)
  code, _, err = aws{ "kms", "decrypt", "--ciphertext-blob", "fileb://" .. cipher,
    "--encryption-context", "app=billing" }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "InvalidCiphertextException")
  code, out, err = aws{ "kms", "generate-data-key", "--key-id", id, "--key-spec", "AES_256",
    "--query", "KeyId" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, arn)
  -- an AWS managed key is usable only through its service
  code, _, err = aws{ "kms", "encrypt", "--key-id", "alias/aws/s3", "--plaintext",
    "fileb://" .. dir .. "/plain-" .. which }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "AccessDeniedException")
  lu.assertStrContains(err, "is not authorized to perform: kms:Encrypt")
  -- reserved alias prefix
  code, _, err = aws{ "kms", "create-alias", "--alias-name", "alias/aws/" .. which,
    "--target-key-id", id }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "NotAuthorizedException")
  -- scheduled deletion: use refused, cancel leaves the key disabled
  code, out, err = aws{ "kms", "schedule-key-deletion", "--key-id", id,
    "--pending-window-in-days", "7", "--query", "[KeyState,PendingWindowInDays]" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out:gsub("%s+", " "), "PendingDeletion 7")
  code, _, err = aws{ "kms", "encrypt", "--key-id", alias, "--plaintext",
    "fileb://" .. dir .. "/plain-" .. which }
  lu.assertNotEquals(code, 0)
  lu.assertStrContains(err, "KMSInvalidStateException")
  lu.assertStrContains(err, "is pending deletion")
  code, _, err = aws{ "kms", "cancel-key-deletion", "--key-id", id }
  lu.assertEquals(code, 0, err)
  code, out, err = aws{ "kms", "describe-key", "--key-id", alias, "--query", "KeyMetadata.KeyState" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, "Disabled")
  code, out, err = aws{ "kms", "list-aliases", "--key-id", id, "--query", "Aliases[].AliasName" }
  lu.assertEquals(code, 0, err)
  lu.assertEquals(out, alias)
  print("  " .. version)
end

TestAwsCliKms = {}

function TestAwsCliKms.test_current_cli() scenario("current") end
function TestAwsCliKms.test_debian_cli() scenario("debian") end

cli.finish(lu, sim, dir)
