-- The S3 backend with real fo-run processes (docs/state-backends.md): two "machines" (two
-- directories, nothing shared but the environment's endpoint) run one stack kept in ONE
-- served simulator's S3 (--backend s3://fo-state/team, --target aws on the same served
-- simulator). One applies while the other is refused with the holder named (exit 5) or
-- waits (--lock-timeout); the holder is killed (SIGKILL) in the middle of an apply, its
-- lease (FO_LEASE_SECONDS, short here) expires and the other takes over and adopts what
-- the first left; a crash-trial loop (SIGKILL at state writes and at random times, as
-- test_crash_trials.lua does on the local backend) leaves no leak, no duplicate and no lost
-- state write; two writers race on a commit against the simulator's S3 and exactly one
-- wins every time.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local s3_state = require "fo.engine.backend.s3_state"
local s3_objects = require "fo.engine.backend.s3_objects"
local errors = require "fo.engine.errors"

TestBackendS3 = {}

-- The children and this process read the simulator's Route 53 (token buckets on the real
-- clock): as in test_crash_trials.lua, this process's own lists must not be throttled.
require("fo.sim.route53.throttle").enabled = false

local BUCKET, PREFIX = "fo-state", "team"
local SPEC = ("s3://%s/%s"):format(BUCKET, PREFIX)
-- the sanitizer build (several times slower) runs fewer trials, with longer leases
-- (tests/CMakeLists.txt)
local TRIALS = tonumber(os.getenv("FO_S3_CRASH_TRIALS") or "") or 27
local MIN_KILLS = tonumber(os.getenv("FO_S3_CRASH_MIN_KILLS") or "") or 20
local CRASH_LEASE = os.getenv("FO_S3_CRASH_LEASE") or "2"
local SEED = tonumber(os.getenv("FO_CRASH_SEED") or "") or 20261206

local RECIPE = ([[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
require 'support.crash_points'
local c = fo.config{ version = { type = "integer", default = 1 } }
require('support.engine_graph').declare(c.version)
]]):format(testlib.tests_dir)

local srv, sim, s3, objects, root, extra, delay

function TestBackendS3:setUp()
  sim = fo.sim.new{ seed = 11 }
  -- latency for the served requests (the latency knob is the in-process transport's)
  delay = 0
  local handle = sim.handle
  sim.handle = function(self, req)
    if delay > 0 then fo.sleep(delay) end
    return handle(self, req)
  end
  srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  s3 = sim:client("s3", { region = H.REGION })
  s3:CreateBucket{ Bucket = BUCKET }
  s3:PutBucketVersioning{ Bucket = BUCKET, VersioningConfiguration = { Status = "Enabled" } }
  -- fit for fo's state (as recipes/state-bucket.lua makes it): versioning, SSE-KMS, the
  -- public access block
  s3:PutBucketEncryption{ Bucket = BUCKET, ServerSideEncryptionConfiguration = { Rules = {
    { ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "aws:kms" }, BucketKeyEnabled = true } } } }
  s3:PutPublicAccessBlock{ Bucket = BUCKET, PublicAccessBlockConfiguration = {
    BlockPublicAcls = true, IgnorePublicAcls = true, BlockPublicPolicy = true,
    RestrictPublicBuckets = true } }
  objects = s3_objects.new{ bucket = BUCKET, prefix = PREFIX, client = s3 }
  extra = {}
  root = H.dir()
  for _, m in ipairs({ "a", "b" }) do
    fo.fs.mkdir_p(root .. "/" .. m)
    testlib.write(root .. "/" .. m .. "/stack.lua", RECIPE)
  end
end

function TestBackendS3:tearDown()
  srv:close()
  H.cleanup(root)
end

local function env(machine, more)
  local e = testlib.served_sim_env(srv.port, H.REGION, root .. "/" .. machine,
    { FO_STATE_DIR = root .. "/" .. machine .. "/.fo", AWS_PROFILE = false,
      FO_LEASE_SECONDS = "5" })
  for k, v in pairs(more or {}) do e[k] = v end
  return e
end

-- fo-run on `machine` ("a" or "b") for stack trial; its pid goes to <machine>.pid.
-- Returns fo.process.run's result.
local function fo_run(machine, args, more_env, timeout)
  local argv = { "sh", "-c", 'echo $$ > "$0"; exec "$@"', root .. "/" .. machine .. ".pid",
    testlib.fo_run, "--stack", "trial", "--target", "aws", "--yes", "--backend", SPEC }
  for _, a in ipairs(extra) do argv[#argv + 1] = a end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = root .. "/" .. machine .. "/stack.lua"
  return fo.process.run{ argv = argv, env = env(machine, more_env), timeout = timeout or 120 }
end

local function pid_of(machine)
  return (testlib.read(root .. "/" .. machine .. ".pid") or ""):match("%d+")
end

local function wait_until(what, fn, seconds)
  local deadline = fo.now() + (seconds or 60)
  while fo.now() < deadline do
    if fn() then return end
    fo.sleep(0.01)
  end
  error("timed out waiting for " .. what)
end

-- Mutating calls on the stack's resources (not the backend's S3 writes).
local function changes()
  return sim:count(function(c) return c.mutating and c.service ~= "s3" end)
end

local function read_state()
  return s3_state.read(objects, "trial")
end

local function lock_object()
  return (objects:get("trial/lock.json"))
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- The simulator holds exactly what the state records (no leak, no duplicate, no intent).
local function check_owned(what, version)
  local st = read_state()
  local problems = H.ownership_problems(sim, st)
  lu.assertEquals(problems, {}, what .. ": " .. table.concat(problems, "; "))
  lu.assertEquals(count(st.resources), version == 2 and 23 or 22, what)
  lu.assertEquals(#st.deposed, 0, what)
  return st
end

function TestBackendS3:test_an_unfit_bucket_is_refused_naming_each_fix()
  s3:CreateBucket{ Bucket = "bare-bucket" }
  local argv = { testlib.fo_run, "--stack", "trial", "--target", "aws", "--yes", "--backend",
    "s3://bare-bucket/team", root .. "/a/stack.lua" }
  local r = fo.process.run{ argv = argv, env = env("a"), timeout = 60 }
  lu.assertEquals(r.code, 2, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "state bucket bare-bucket is not fit to hold a stack's state")
  lu.assertStrContains(r.stderr, "aws s3api put-bucket-versioning --bucket bare-bucket "
    .. "--versioning-configuration Status=Enabled")
  lu.assertStrContains(r.stderr, "aws s3api put-public-access-block --bucket bare-bucket")
  lu.assertEquals(s3:ListObjectsV2{ Bucket = "bare-bucket" }.KeyCount, 0, "nothing written")
  lu.assertEquals(changes(), 0, "nothing changed")
  -- --backend-unsafe-ok: a warning, and the run goes on
  table.insert(argv, 2, "--backend-unsafe-ok")
  r = fo.process.run{ argv = argv, env = env("a"), timeout = 60 }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stderr, "warning: --backend-unsafe-ok")
  table.insert(argv, 2, "--destroy")
  lu.assertEquals(fo.process.run{ argv = argv, env = env("a"), timeout = 60 }.code, 0)
end

function TestBackendS3:test_one_machine_applies_the_other_is_refused_then_waits()
  -- an apply of about ten seconds: b's refused run and its start with --lock-timeout must
  -- fall inside it even on a loaded machine under the sanitizers
  delay = 0.1
  local a = fo.spawn(fo_run, "a", {})
  wait_until("a's lease", lock_object)
  local r = fo_run("b", {})
  lu.assertEquals(r.code, 5, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "stack trial is locked by")
  lu.assertStrContains(r.stderr, (" pid %s ("):format(pid_of("a")))
  lu.assertStrContains(r.stderr, root .. "/a") -- where it runs
  lu.assertStrContains(r.stderr, "--lock-timeout")
  local b = fo.spawn(fo_run, "b", { "--lock-timeout", "2m" })
  local ra = a:join()
  lu.assertEquals(ra.code, 0, ra.stderr)
  lu.assertStrContains(ra.stdout, "Apply complete: 22 created")
  local rb = b:join()
  lu.assertEquals(rb.code, 0, rb.stderr)
  lu.assertStrContains(rb.stderr, "waiting up to 120s")
  lu.assertStrContains(rb.stdout, "No changes.")
  lu.assertNil(lock_object(), "the lease is released")
  check_owned("after both", 1)
  -- nothing of the stack's state is on either machine
  lu.assertNil(fo.fs.exists(root .. "/a/.fo/trial.state.json") or nil)
  lu.assertNil(fo.fs.exists(root .. "/b/.fo/trial.state.json") or nil)
  delay = 0
  lu.assertEquals(fo_run("b", { "--destroy" }).code, 0)
  lu.assertEquals(H.resources(sim), {})
end

function TestBackendS3:test_the_holder_killed_mid_apply_the_other_takes_over_and_adopts()
  delay = 0.03
  local a = fo.spawn(fo_run, "a", {})
  -- killed once some resources are recorded (two commits of the change log), others not
  wait_until("a's commits", function() return #objects:list("trial/log/") >= 2 end)
  os.execute("kill -KILL " .. pid_of("a"))
  local ra = a:join()
  lu.assertEquals(ra.signal, 9, ra.stdout .. ra.stderr)
  delay = 0
  local lease = require("fo.json").decode(lock_object())
  lu.assertEquals(tostring(lease.who.pid), pid_of("a"), "the dead run's lease is left")
  local partial = read_state()
  local recorded = count(partial.resources)
  lu.assertTrue(recorded < 22, "killed mid-apply: " .. recorded .. " recorded")
  -- its lease is live: refused, naming the dead holder; then waited for and taken over
  local r = fo_run("b", {})
  lu.assertEquals(r.code, 5, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, (" pid %s ("):format(pid_of("a")))
  local before = changes()
  r = fo_run("b", { "--lock-timeout", "1m" })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "the lease expired: taking over the lease of stack trial")
  lu.assertStrContains(r.stdout, "Apply complete")
  check_owned("after the takeover", 1)
  lu.assertTrue(changes() > before)
  -- the next run has nothing to do
  before = changes()
  r = fo_run("a", {})
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  lu.assertEquals(changes(), before)
  lu.assertEquals(fo_run("a", { "--destroy" }).code, 0)
  lu.assertEquals(H.resources(sim), {})
end

function TestBackendS3:test_two_writers_race_on_a_commit_in_the_simulators_s3()
  lu.assertEquals(fo_run("a", {}).code, 0)
  local wins = 0
  for round = 1, 50 do
    local stores = {}
    for i = 1, 2 do
      local doc, text, info = read_state()
      stores[i] = s3_state.store(objects, "trial", doc, text, info.medium, { log = info.log })
      stores[i]:set("outputs", { round = round, writer = i })
    end
    local first = round % 2 + 1
    local won = {}
    for _, i in ipairs({ first, 3 - first }) do
      local ok, e = pcall(stores[i].commit, stores[i])
      if ok then won[#won + 1] = i
      else
        lu.assertTrue(errors.is(e, "state"), tostring(e))
        lu.assertStrContains(e.message, "lost update prevented")
      end
    end
    lu.assertEquals(won, { first }, "round " .. round)
    for i = 1, 2 do stores[i]:finish() end
    lu.assertEquals(read_state().outputs, { round = round, writer = first })
    lu.assertEquals(objects:list("trial/log/"), {}, "the fold removes the commits it holds")
    wins = wins + #won
  end
  lu.assertEquals(wins, 50)
  print(("\nS3 commit race: 50 rounds, 50 single winners, 50 losers refused (412)"))
  lu.assertEquals(fo_run("a", { "--destroy" }).code, 0)
end

-- fo-run without --backend: the stack directory of the machine (or the config file's).
local function fo_local(machine, args)
  local argv = { testlib.fo_run, "--stack", "trial", "--target", "aws", "--yes" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = root .. "/" .. machine .. "/stack.lua"
  return fo.process.run{ argv = argv, env = env(machine), timeout = 120 }
end

function TestBackendS3:test_migrate_a_local_stack_to_s3_where_the_other_machine_finds_it()
  local r = fo_local("a", {})
  lu.assertEquals(r.code, 0, r.stderr)
  local before = require("fo.engine.state").read(root .. "/a/.fo/trial.state.json")
  local args = { "--migrate-state", SPEC }
  for _, a in ipairs(extra) do args[#args + 1] = a end
  r = fo_local("a", args)
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Stack trial migrated from " .. root .. "/a/.fo/trial.state.json to "
    .. SPEC .. "/trial/state.json (22 resources; sha256 ")
  lu.assertEquals(read_state().resources, before.resources)
  -- machine a's next run goes to the bucket by its config file; b names the bucket
  local n = changes()
  r = fo_local("a", extra)
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  r = fo_run("b", {})
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  lu.assertEquals(changes(), n)
  -- and back
  r = fo_local("a", { "--migrate-state", "local", table.unpack(extra) })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(require("fo.engine.state").read(root .. "/a/.fo/trial.state.json").resources,
    before.resources)
  r = fo_run("b", {})
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "stack trial was moved to local")
  lu.assertEquals(fo_local("a", { "--destroy" }).code, 0)
  lu.assertEquals(H.resources(sim), {})
end

-- The stack's config values are the bucket's: a recipe value in one machine's local config
-- file that the bucket lacks or holds otherwise is refused (naming the key, never the
-- value), not silently used by that machine alone.
function TestBackendS3:test_a_local_config_value_that_differs_from_the_buckets_is_refused()
  objects:put("trial/config.json", require("fo.json").encode({ version = 1 }))
  lu.assertEquals(fo_run("a", {}).code, 0)
  local n = changes()
  local function with_local(values)
    fo.fs.mkdir_p(root .. "/b/.fo")
    testlib.write(root .. "/b/.fo/trial.config.json", require("fo.json").encode(values))
    return fo_run("b", {})
  end
  local r = with_local({ backend = SPEC, version = 2 })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, root .. "/b/.fo/trial.config.json holds config values of the "
    .. "recipe that differ from the stack's config in " .. SPEC .. "/trial/config.json")
  lu.assertStrContains(r.stderr, "version (the bucket holds another value)")
  r = with_local({ backend = SPEC, version = 1, region_hint = "x" })
  lu.assertEquals(r.code, 1, r.stdout .. r.stderr)
  lu.assertStrContains(r.stderr, "region_hint (not set in the bucket)")
  lu.assertNotStrContains(r.stderr, "version (")
  lu.assertEquals(changes(), n)
  -- the same value, or fo's settings only: the run goes on
  r = with_local({ backend = SPEC, version = 1 })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  r = with_local({ backend = SPEC, lease_seconds = 30 })
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertEquals(fo_run("a", { "--destroy" }).code, 0)
end

function TestBackendS3:test_secrets_sealed_with_a_kms_key_open_on_both_machines()
  lu.skipIf(not require("fo.aws").kms, "this fo-run has no KMS client")
  local kms = sim:client("kms", { region = H.REGION })
  local key = kms:CreateKey{ Description = "fo state secrets" }.KeyMetadata.KeyId
  kms:CreateAlias{ AliasName = "alias/fo-state", TargetKeyId = key }
  local recipe = ([[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
local c = fo.config{ token = { type = "string", secret = true, required = true } }
fo.resource("test:topic", "t", { name = "sealed", display_name = c.token })
]]):format(testlib.tests_dir)
  local function run_on(machine)
    fo.fs.mkdir_p(root .. "/" .. machine .. "/.fo")
    testlib.write(root .. "/" .. machine .. "/.fo/sealed.config.json", require("fo.json").encode({
      backend = SPEC, secrets_provider = "awskms://alias/fo-state" }))
    testlib.write(root .. "/" .. machine .. "/sealed.lua", recipe)
    return fo.process.run{ argv = { testlib.fo_run, "--stack", "sealed", "--target", "aws",
      "--yes", "--config", "token=s3cr3t-Value", root .. "/" .. machine .. "/sealed.lua" },
      env = env(machine), timeout = 120 }
  end
  local r = run_on("a")
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  local text = objects:get("sealed/state.json")
  lu.assertNotStrContains(text, "s3cr3t-Value")
  local st = require("fo.json").decode(text)
  lu.assertEquals({ st.secrets.key, st.secrets.kms_key }, { "awskms", "alias/fo-state" })
  lu.assertEquals(sim:count{ service = "kms", operation = "GenerateDataKey" }, 1)
  -- the other machine unwraps the data key with KMS: the plan diffs the plain value
  r = run_on("b")
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  lu.assertTrue(sim:count{ service = "kms", operation = "Decrypt" } >= 1)
  lu.assertNil(fo.fs.exists(root .. "/a/.fo/sealed.key") or nil, "no key file")
end

-- The crash trials on the S3 backend ------------------------------------------------------

local KINDS = { { name = "first", version = 1 }, { name = "v1->v2", version = 2 },
  { name = "v2->v1", version = 1 } }
local POINTS = { "state.before", "state.after", "timer" }
local CRASH_ENV = { FO_LEASE_SECONDS = CRASH_LEASE }

local function vargs(version, more)
  local out = { "--config", "version=" .. version, "--lock-timeout", "1m" }
  for _, a in ipairs(more or {}) do out[#out + 1] = a end
  return out
end

local function with(t, more)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  for k, v in pairs(more or {}) do out[k] = v end
  return out
end

function TestBackendS3:test_crash_trials_on_the_s3_backend()
  math.randomseed(SEED)
  -- how many state writes a clean run of each kind makes, and how long a first apply takes
  local counts, seconds = {}, nil
  local log = root .. "/crash.log"
  for i, kind in ipairs(KINDS) do
    if i == 1 then lu.assertEquals(fo_run("a", vargs(1), CRASH_ENV).code, 0)
      lu.assertEquals(fo_run("a", { "--destroy" }, CRASH_ENV).code, 0) end
    os.remove(log)
    local t0 = fo.now()
    local r = fo_run("a", vargs(kind.version), with(CRASH_ENV, { FO_TEST_CRASH = "count",
      FO_TEST_CRASH_LOG = log }))
    if i == 1 then seconds = fo.now() - t0 end
    lu.assertEquals(r.code, 0, r.stderr)
    local c = {}
    for k, v in (testlib.read(log) or ""):gmatch("(%S+) (%d+)") do c[k] = tonumber(v) end
    lu.assertTrue((c["state.before"] or 0) >= 2, kind.name)
    counts[i] = c
  end
  lu.assertEquals(fo_run("a", vargs(1), CRASH_ENV).code, 0)
  lu.assertEquals(fo_run("a", { "--destroy" }, CRASH_ENV).code, 0)
  local kills, lost, landed, writes_checked = 0, 0, {}, 0
  for trial = 1, TRIALS do
    local kind = KINDS[(trial - 1) % #KINDS + 1]
    local point = POINTS[math.random(#POINTS)]
    -- the machines take turns: each run may follow a dead run of the other
    local m, other = trial % 2 == 0 and "a" or "b", trial % 2 == 0 and "b" or "a"
    if kind.name == "first" and trial > 1 then
      local r = fo_run(m, { "--destroy", "--lock-timeout", "1m" }, CRASH_ENV)
      lu.assertEquals(r.code, 0, "destroy before trial " .. trial .. "\n" .. r.stderr)
      lu.assertEquals(H.resources(sim), {})
    end
    os.remove(log)
    local what, killed
    if point == "timer" then
      local at = 0.05 + math.random() * seconds * 0.9
      what = ("trial %d (%s on %s): SIGKILL after %.2fs"):format(trial, kind.name, m, at)
      local ok, r = pcall(fo_run, m, vargs(kind.version), CRASH_ENV, at)
      killed = not ok
      if ok then lu.assertEquals(r.code, 0, what .. ": finished first\n" .. r.stderr) end
    else
      -- group commits depend on timing (the simulator is served, over HTTP): the n-th is
      -- drawn among the first two thirds of those a clean run made
      local n = math.random(math.max(1, counts[(trial - 1) % #KINDS + 1][point] * 2 // 3))
      what = ("trial %d (%s on %s): SIGKILL at %s #%d"):format(trial, kind.name, m, point, n)
      local r = fo_run(m, vargs(kind.version), with(CRASH_ENV, { FO_TEST_CRASH = point .. ":" .. n,
        FO_TEST_CRASH_LOG = log }))
      killed = r.signal == 9
      if not killed then lu.assertEquals(r.code, 0, what .. ": not killed\n" .. r.stderr) end
      local line = testlib.read(log) or ""
      what = what .. " (" .. (line:match("^%S+ %d+ (.-)\n") or "?") .. ")"
      -- a write that was durable is in the state the next run reads: none is lost
      local key = line:match("^state%.after %d+ put (%S+)")
      if key then
        writes_checked = writes_checked + 1
        local _, _, info = read_state()
        local n_written = tonumber(key:match("/log/(%d+)%.json$"))
        if n_written and info.medium.last < n_written then lost = lost + 1 end
        if key:match("/state%.json$") and info.medium.etag == nil then lost = lost + 1 end
      end
    end
    local key = killed and point or "finished first"
    landed[key] = (landed[key] or 0) + 1
    if killed then kills = kills + 1 end
    -- the state reads; the other machine's rerun waits out the dead run's lease, converges
    local ok, err = pcall(read_state)
    lu.assertTrue(ok, what .. ": the state does not read: " .. tostring(err))
    local r = fo_run(other, vargs(kind.version), CRASH_ENV)
    lu.assertEquals(r.code, 0, what .. ": rerun\n" .. r.stdout .. r.stderr)
    local before = changes()
    r = fo_run(m, vargs(kind.version), CRASH_ENV)
    lu.assertEquals(r.code, 0, what .. ": second rerun\n" .. r.stderr)
    lu.assertEquals(changes(), before, what .. ": the second rerun changed something")
    check_owned(what, kind.version)
    lu.assertNil(lock_object(), what .. ": the lease is left")
    lu.assertEquals(objects:list("trial/log/"), {}, what .. ": the log is not folded")
  end
  lu.assertEquals(fo_run("a", { "--destroy", "--lock-timeout", "1m" }, CRASH_ENV).code, 0)
  lu.assertEquals(H.resources(sim), {})
  local parts = {}
  for _, p in ipairs({ "state.before", "state.after", "timer", "finished first" }) do
    parts[#parts + 1] = ("%s %d"):format(p, landed[p] or 0)
  end
  print(("\nS3 crash trials: seed %d, %d trials, %d kills (%s); %d durable writes checked, %d "
    .. "lost; 0 leaks, 0 duplicates (every trial checked)"):format(SEED, TRIALS, kills,
    table.concat(parts, ", "), writes_checked, lost))
  lu.assertEquals(lost, 0)
  lu.assertTrue(kills >= MIN_KILLS, ("only %d kills landed (at least %d wanted)"):format(kills,
    MIN_KILLS))
end

os.exit(lu.LuaUnit.run())
