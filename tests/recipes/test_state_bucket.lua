-- recipes/state-bucket.lua on the embedded simulator: the bucket it makes passes the
-- checks fo makes before it keeps a stack's state in a bucket (versioning, default
-- encryption, public access block), read back through fo's S3 client; a rerun changes
-- nothing; a stack's state kept there applies and reruns with no changes.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local checks = require "fo.engine.backend.bucket_checks"

local RECIPE = testlib.tests_dir .. "/../recipes/state-bucket.lua"

TestStateBucket = {}

function TestStateBucket:test_the_bucket_is_fit_for_fos_state()
  local world = testing.apply(RECIPE, { seed = "state-bucket", stack = "state-bucket",
    config = { bucket = "team-fo-state" } })
  lu.assertEquals(world.code, 0, world.out .. world.err)
  local s3 = world:client("s3", "us-east-1")
  local problems, algorithm = checks.problems(s3, "team-fo-state")
  lu.assertEquals(problems, {})
  lu.assertEquals(algorithm, "aws:kms")
  lu.assertEquals(world.doc.outputs.backend, "s3://team-fo-state/stacks")
  -- a bucket without them is refused, naming each fix
  s3:CreateBucket{ Bucket = "bare-bucket" }
  problems = checks.problems(s3, "bare-bucket")
  local text = checks.message("bare-bucket", problems)
  lu.assertStrContains(text, "put-bucket-versioning --bucket bare-bucket")
  world:run{}
  lu.assertEquals(world.code, 0, world.err)
  lu.assertStrContains(world.out, "No changes.")
end

os.exit(lu.LuaUnit.run())
