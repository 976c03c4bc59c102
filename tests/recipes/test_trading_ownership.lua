-- Issue 10's reproducer as a user meets it: `fo-run --target aws` applies recipes/trading.lua
-- to a served simulator (the AWS wire protocol, SigV4, the documented keys), the stack's
-- state files are moved away (a second checkout, a lost .fo directory), and the same
-- command again must not touch the first deployment: it exits 4 naming the conflicts, and
-- the simulator holds exactly what it held before (canonical dump). With the state put back
-- the stack is whole: "No changes.". (tests/recipes/test_trading.lua proves the same with
-- the engine in-process.)
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"
local SUFFIX = "own"

-- Short AWS transition windows: the sim's clock runs in real time when it is served, and
-- fo-run (target aws) polls as it would at AWS.
local FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1 }
local DDB_FAST = { table_create = 0.3, table_delete = 0.3, table_update = 0.2,
  replica_create = 1, replica_delete = 0.5 }

TestTradingOwnership = {}

local dir, srv, sim, saved_ddb

function TestTradingOwnership:setUp()
  dir = testlib.tmpdir()
  srv, sim = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0 }
  sim.timing = FAST
  local ddb = require "fo.sim.services.dynamodb"
  saved_ddb = ddb.TIMING
  local t = {}
  for k, v in pairs(saved_ddb) do t[k] = v end
  for k, v in pairs(DDB_FAST) do t[k] = v end
  ddb.TIMING = t
end

function TestTradingOwnership:tearDown()
  srv:close()
  require("fo.sim.services.dynamodb").TIMING = saved_ddb
  testlib.rmtree(dir)
end

-- `fo-run --target aws --yes --stack prod` on the trading recipe, at the served sim.
local function apply()
  local k = require("fo.sim.keys").DEFAULT
  local env = { FO_STATE_DIR = dir .. "/.fo", AWS_ACCESS_KEY_ID = k.access_key,
    AWS_SECRET_ACCESS_KEY = k.secret_key, AWS_REGION = "us-east-1",
    AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port), NO_COLOR = "1" }
  local r = testlib.run_fo({ "--target", "aws", "--yes", "--stack", "prod", "--config",
    "environmentSuffix=" .. SUFFIX, RECIPE }, { env = env, timeout = 300 })
  return r, r.stdout .. r.stderr
end

local function sh(script)
  local r = fo.process.run{ argv = { "sh", "-c", script, "sh", dir .. "/.fo" } }
  lu.assertEquals(r.code, 0, r.stderr)
end

function TestTradingOwnership:test_a_state_moved_away_leaves_the_first_deployment_as_it_was()
  local r, text = apply()
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(r.stdout, "Apply complete")
  local before = H.sim_holdings(sim)
  -- the stack's state files (state, log, backup) go; its key file and lock stay
  sh('mkdir "$1/away" && mv "$1"/prod.state.* "$1/away/"')
  r, text = apply()
  lu.assertEquals(r.code, 4, text)
  -- the roles start with the probes, so the first conflict is always theirs; what else
  -- started before it stopped the run depends on timing (the log bucket waits for its
  -- region's probe, and a loaded machine may answer a role's conflict first), but whatever
  -- did start met its conflict
  lu.assertStrContains(text, 'conflict: an IAM role named "ec2-role-' .. SUFFIX .. '"')
  if text:find("aws:s3:bucket primary/alb-logs: creating", 1, true) then
    lu.assertStrContains(text, 'conflict: an S3 bucket named "alb-logs-123456789012-eu-south-1-'
      .. SUFFIX .. '"')
  end
  lu.assertStrContains(text, 'tagged as resource "ec2" of stack "prod"')
  lu.assertStrContains(text, "Remove it, or rename the resource in the recipe")
  lu.assertStrContains(text, "Apply failed; rolled back")
  -- (the topics' keys the second apply made are pending deletion: KMS deletes none at once)
  local d = H.first_difference(before, H.without_new_pending_keys(before, H.sim_holdings(sim)))
  lu.assertNil(d, d)
  -- the first deployment's state still drives its stack
  sh('rm -f "$1"/prod.state.* && mv "$1"/away/prod.state.* "$1/"')
  r, text = apply()
  lu.assertEquals(r.code, 0, text)
  lu.assertStrContains(r.stdout, "No changes.")
  d = H.first_difference(before, H.without_new_pending_keys(before, H.sim_holdings(sim)))
  lu.assertNil(d, d)
end

os.exit(lu.LuaUnit.run("-v"))
