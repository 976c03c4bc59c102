-- The state backends (docs/state-backends.md) over an object store in memory with S3's
-- conditional writes (support.memory_objects): the S3 backend's state (snapshot, one
-- object per group commit, folded), its lease (taken by one run, refused to the next with
-- the holder named, taken over when expired, broken only with --break-lock --yes, lost →
-- no more writes), and the race of two writers on one commit, which exactly one wins.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local memory = require "support.memory_objects"
local json = require "fo.json"
local s3_state = require "fo.engine.backend.s3_state"
local lease_mod = require "fo.engine.backend.lease"
local errors = require "fo.engine.errors"
local engine = require "fo.engine"

local sim, dir, objects
TestBackend = {}
local run = H.fixture(TestBackend, function(f)
  sim, dir = f.sim, f.dir
  objects = memory.new("s3://state-bucket/team")
end).run

local SPEC = "s3://state-bucket/team"

local function s3run(recipe, opts)
  local o = { backend = SPEC, objects = objects }
  for k, v in pairs(opts or {}) do o[k] = v end
  return run(recipe, o)
end

local function keys_under(prefix)
  return objects:list(prefix)
end

-- The state as the S3 backend reads it.
local function read(stack)
  return s3_state.read(objects, stack or "dev")
end

-- A lease object of another run, as it would write it ({expires_at} relative to now).
local function foreign_lease(stack, expires_in)
  local now = require("fo.core").time()
  return json.encode({ format = "fo-lease", version = 1, stack = stack,
    who = { user = "alice", host = "build-7", pid = 4242 }, where = { cwd = "/home/alice/infra" },
    command = "fo-run --stack dev net.lua", acquired = "2026-01-01T00:00:00Z",
    expires = "later", expires_at = now + expires_in, seconds = 60 })
end

function TestBackend:test_s3_backend_applies_folds_and_reruns_with_no_changes()
  local code, _, out, err = s3run(H.network())
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "Apply complete")
  -- between runs the snapshot alone is the state: the commits are folded and removed, the
  -- lease released; nothing was written to the local state directory but the sim's
  lu.assertEquals(keys_under("dev/"), { "dev/state.json" })
  local st = json.decode((objects:get("dev/state.json")))
  lu.assertEquals(st.format, "fo-state")
  lu.assertTrue(st.log_seq > 0)
  lu.assertNotNil(st.resources["dev::test:vpc::main"])
  lu.assertNil(fo.fs.exists(dir .. "/dev.state.json") or nil)
  lu.assertNil(fo.fs.exists(dir .. "/dev.lock") or nil)
  local doc = read()
  lu.assertEquals(doc.resources["dev::test:vpc::main"].id, st.resources["dev::test:vpc::main"].id)
  code, _, out = s3run(H.network())
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "No changes.")
  -- a change: the commits of the run are numbered on from the last folded one
  local seq = st.log_seq
  code = s3run(H.network{ display = "Other" })
  lu.assertEquals(code, 0)
  lu.assertTrue(json.decode((objects:get("dev/state.json"))).log_seq > seq)
end

function TestBackend:test_commits_are_objects_replayed_in_order_and_a_gap_is_refused()
  lu.assertEquals((s3run(H.network())), 0)
  local doc, text, info = read()
  local store = s3_state.store(objects, "dev", doc, text, info.medium, { log = info.log })
  store:set("outputs", { a = 1 })
  store:commit()
  store:set("outputs", { a = 2 })
  store:commit()
  local logs = keys_under("dev/log/")
  lu.assertEquals(#logs, 2)
  lu.assertStrMatches(logs[1], "dev/log/%d%d%d%d%d%d%d%d%d%d%d%d%.json")
  -- a reader replays them onto the snapshot
  lu.assertEquals(read().outputs, { a = 2 })
  -- a commit missing in the middle: refused, naming it
  objects:delete(logs[1])
  local ok, e = pcall(read)
  lu.assertFalse(ok)
  lu.assertTrue(errors.is(e, "state"), tostring(e))
  lu.assertStrContains(e.message, "jumps from commit")
  lu.assertStrContains(e.message, logs[1])
end

-- Both writers read the same state and make a change; both commit at once (in either
-- order). `fold`: their first write folds a new snapshot (If-Match the ETag they read),
-- else it appends commit n (If-None-Match: *). Returns the winners' indexes.
local function race(round, fold)
  local stores = {}
  for i = 1, 2 do
    local doc, text, info = read()
    stores[i] = s3_state.store(objects, "dev", doc, text, info.medium,
      { log = fold and { clean = false } or info.log })
    stores[i]:set("outputs", { round = round, writer = i, fold = fold })
  end
  local first = round % 2 + 1 -- either may go first
  local winners = {}
  for _, i in ipairs({ first, 3 - first }) do
    local ok, e = pcall(stores[i].commit, stores[i])
    if ok then
      winners[#winners + 1] = i
    else
      lu.assertTrue(errors.is(e, "state"), tostring(e))
      lu.assertStrContains(e.message, "lost update prevented")
    end
  end
  -- the loser writes nothing more; the winner folds at its end
  for i = 1, 2 do stores[i]:finish() end
  return winners, first
end

function TestBackend:test_two_writers_race_on_a_commit_and_exactly_one_wins()
  lu.assertEquals((s3run(H.network())), 0)
  local wins = { append = 0, fold = 0 }
  for round = 1, 50 do
    for _, fold in ipairs({ false, true }) do
      local winners, first = race(round, fold)
      lu.assertEquals(winners, { first }, ("round %d (%s)"):format(round, fold and "fold"
        or "append"))
      lu.assertEquals(read().outputs, { round = round, writer = first, fold = fold })
      lu.assertEquals(keys_under("dev/log/"), {})
      wins[fold and "fold" or "append"] = wins[fold and "fold" or "append"] + 1
    end
  end
  lu.assertEquals(wins, { append = 50, fold = 50 })
end

function TestBackend:test_a_fold_that_missed_another_writers_commit_is_refused()
  lu.assertEquals((s3run(H.network())), 0)
  local doc, text, info = read()
  local folding = s3_state.store(objects, "dev", doc, text, info.medium, { log = { clean = false } })
  doc, text, info = read()
  local appending = s3_state.store(objects, "dev", doc, text, info.medium, { log = info.log })
  appending:set("outputs", { by = "appender" })
  appending:commit()
  folding:set("outputs", { by = "folder" })
  local ok, e = pcall(folding.commit, folding)
  lu.assertFalse(ok)
  lu.assertStrContains(e.message, "lost update prevented: commit ")
  lu.assertEquals(read().outputs, { by = "appender" })
end

function TestBackend:test_a_second_run_is_refused_with_the_holder_named_exit_5()
  objects:put("dev/lock.json", foreign_lease("dev", 60), { if_none_match = true })
  local code, _, _, err = s3run(H.network())
  lu.assertEquals(code, 5, err)
  lu.assertStrContains(err, "alice@build-7 pid 4242")
  lu.assertStrContains(err, "fo-run --stack dev net.lua")
  lu.assertStrContains(err, "/home/alice/infra")
  lu.assertNil(objects:get("dev/state.json"))
  -- --break-lock alone does not take a live lease
  code, _, _, err = s3run(H.network(), { break_lock = true })
  lu.assertEquals(code, 5)
  lu.assertStrContains(err, "--break-lock takes a live lease only with --yes")
  lu.assertStrContains(err, "alice@build-7 pid 4242")
  -- with --yes it does
  code, _, _, err = s3run(H.network(), { break_lock = true, yes = true })
  lu.assertEquals(code, 0, err)
  lu.assertNil(objects:get("dev/lock.json"))
end

function TestBackend:test_an_expired_lease_is_taken_over()
  objects:put("dev/lock.json", foreign_lease("dev", -1), { if_none_match = true })
  local code, _, _, err = s3run(H.network())
  lu.assertEquals(code, 0, err)
  lu.assertNil(objects:get("dev/lock.json"))
end

-- A lease on a clock of the test's: taken, refused to another, renewed, lost.
local function clocked(who)
  local clock = { t = 1000 }
  local l = lease_mod.new(objects, "dev/lock.json", "dev", { command = "fo-run x", seconds = 30,
    now = function() return clock.t end, sleep = function(s) clock.t = clock.t + s end,
    who = { user = who, host = "h-" .. who, pid = 1 }, cwd = "/w/" .. who })
  return l, clock
end

function TestBackend:test_lease_renewal_loss_and_waiting()
  local a, ca = clocked("ann")
  a:acquire()
  local b, cb = clocked("bob")
  local ok, e = pcall(b.acquire, b)
  lu.assertFalse(ok)
  lu.assertEquals(errors.exit_code(e), 5)
  lu.assertStrContains(e.message, "ann@h-ann pid 1 (fo-run x, in /w/ann)")
  -- a renews in time: b, waiting 20 s, is still refused
  ca.t, cb.t = 1020, 1020
  lu.assertTrue(a:renew())
  ok, e = pcall(b.acquire, b, { timeout = 20 })
  lu.assertFalse(ok)
  lu.assertStrContains(e.message, "ann@h-ann")
  -- a stalls past its expiry: b waits for it, then takes it over
  cb.t = cb.t + 5
  lu.assertTrue(pcall(b.acquire, b, { timeout = 60 }))
  lu.assertTrue(cb.t >= 1050, cb.t)
  -- a wakes up: its renewal fails, its next state write is refused
  ca.t = cb.t
  lu.assertFalse(a:renew())
  ok, e = pcall(a.check, a)
  lu.assertFalse(ok)
  lu.assertStrContains(e.message, "lost update prevented")
  lu.assertStrContains(e.message, "bob@h-bob")
  -- a's release leaves b's lease alone
  a:unlock()
  lu.assertNotNil(objects:get("dev/lock.json"))
  b:unlock()
  lu.assertNil(objects:get("dev/lock.json"))
end

function TestBackend:test_a_stalled_writer_past_its_lease_writes_nothing()
  lu.assertEquals((s3run(H.network())), 0)
  local a, ca = clocked("ann")
  a:acquire()
  local doc, text, info = read()
  local store = s3_state.store(objects, "dev", doc, text, info.medium,
    { log = info.log, lease = a })
  store:set("outputs", { by = "ann" })
  store:commit()
  local puts = objects.puts
  -- ann stalls; bob takes the expired lease over and commits
  ca.t = ca.t + 31
  local b, cb = clocked("bob")
  cb.t = ca.t
  b:acquire()
  store:set("outputs", { by = "ann, late" })
  local ok, e = pcall(store.commit, store)
  lu.assertFalse(ok)
  lu.assertStrContains(e.message, "lost update prevented")
  lu.assertStrContains(e.message, "bob@h-bob")
  lu.assertEquals(objects.puts, puts + 1, "only bob's lease was written")
  lu.assertEquals(read().outputs, { by = "ann" })
end

-- A type whose create takes the stack's lease away (as `--break-lock --yes` on another
-- machine would), then works on long enough for the holder's renewal to find it gone.
fo.type("test:lease_thief", { schema = { properties = {}, outputs = { "id" } },
  create = function()
    objects:put("dev/lock.json", foreign_lease("dev", 60))
    fo.sleep(0.8)
    return "thief-1", { id = "thief-1" }
  end,
  read = function(_, _, _, o) return o end, delete = function() end })

function TestBackend:test_a_run_that_loses_its_lease_stops_and_does_not_roll_back()
  require("support.testlib").write(dir .. "/dev.config.json", json.encode({ lease_seconds = 0.6 }))
  local recipe = function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    local thief = fo.resource("test:lease_thief", "t", {})
    fo.resource("test:subnet", "after", { vpc_id = vpc.id, cidr = "10.0.1.0/24",
      tags = { after = thief.id } })
  end
  local code, _, out, err = s3run(recipe)
  lu.assertEquals(code, 5, out .. err)
  lu.assertStrContains(out .. err, "the lease of stack dev was lost (now held by alice@build-7 pid 4242")
  lu.assertStrContains(out .. err, "nothing was rolled back")
  -- the VPC it made is left for the next holder to adopt; nothing after the loss started
  lu.assertEquals(H.ops(sim, { mutating = true }), { "ec2.CreateVpc" })
  -- the thief's lease is untouched
  lu.assertStrContains(objects:get("dev/lock.json"), "build-7")
end

function TestBackend:test_the_local_backend_waits_with_lock_timeout()
  local lk = assert(fo.fs.lock(dir .. "/dev.lock", "fo-run other-run"))
  -- refused at once, then after waiting a second
  local code, _, _, err = run(H.network())
  lu.assertEquals(code, 5)
  lu.assertStrContains(err, "stack dev is locked by pid")
  lu.assertStrContains(err, "other-run")
  code, _, _, err = run(H.network(), { lock_timeout = 1 })
  lu.assertEquals(code, 5)
  lu.assertStrContains(err, "other-run")
  -- the holder ends while this run waits: it goes on
  fo.spawn(function() fo.sleep(0.3); lk:unlock() end)
  code, _, _, err = run(H.network(), { lock_timeout = 30 })
  lu.assertEquals(code, 0, err)
end

function TestBackend:test_bucket_checks_name_what_is_missing_and_the_fix()
  local checks = require "fo.engine.backend.bucket_checks"
  local function client(v, enc, pab)
    local function fail(code) error({ code = code }, 0) end
    return {
      GetBucketVersioning = function() return v end,
      GetBucketEncryption = function() return enc or fail("ServerSideEncryptionConfigurationNotFoundError") end,
      GetPublicAccessBlock = function() return pab or fail("NoSuchPublicAccessBlockConfiguration") end,
    }
  end
  local problems = checks.problems(client({}), "b1")
  lu.assertEquals(#problems, 3)
  local text = checks.message("b1", problems)
  lu.assertStrContains(text, "state bucket b1")
  lu.assertStrContains(text, "aws s3api put-bucket-versioning --bucket b1 "
    .. "--versioning-configuration Status=Enabled")
  lu.assertStrContains(text, "aws s3api put-bucket-encryption --bucket b1")
  lu.assertStrContains(text, "aws s3api put-public-access-block --bucket b1")
  local fit = client({ Status = "Enabled" }, { ServerSideEncryptionConfiguration = { Rules = {
    { ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "aws:kms" } } } } },
    { PublicAccessBlockConfiguration = { BlockPublicAcls = true, IgnorePublicAcls = true,
      BlockPublicPolicy = true, RestrictPublicBuckets = false } })
  problems = checks.problems(fit, "b1")
  lu.assertEquals(#problems, 1)
  lu.assertStrContains(problems[1].what, "RestrictPublicBuckets")
end

function TestBackend:test_the_backend_setting_in_the_config_file_and_bad_specs()
  require("support.testlib").write(dir .. "/dev.config.json",
    json.encode({ backend = SPEC }))
  local code, _, _, err = run(H.network(), { objects = objects })
  lu.assertEquals(code, 0, err)
  lu.assertNotNil(objects:get("dev/state.json"))
  local cli = require "fo.engine.cli"
  local _, why = cli.parse({ { "--backend", "s3://Bad_Bucket/x" } })
  lu.assertStrContains(why, "--backend s3://Bad_Bucket/x")
  _, why = cli.parse({ { "--backend", "gs://x/y" } })
  lu.assertStrContains(why, "use s3://BUCKET/PREFIX or local")
  _, why = cli.parse({ { "--lock-timeout", "soon" } })
  lu.assertStrContains(why, "--lock-timeout soon")
  lu.assertEquals(cli.parse({ { "--lock-timeout", "5m" } }).lock_timeout, 300)
end

function TestBackend:test_new_secrets_on_a_shared_backend_need_a_passphrase_or_kms()
  local recipe = function()
    local c = fo.config{ token = { secret = true, default = "s3cr3t-value" } }
    fo.resource("test:topic", "t", { name = "t", display_name = c.token })
  end
  local code, _, _, err = s3run(recipe)
  lu.assertEquals(code, 2, err)
  lu.assertStrContains(err, "secrets_provider")
  lu.assertNil(fo.fs.exists(dir .. "/dev.key") or nil)
  -- a KMS key wraps the data key (a KMS of the test's: the wrap is a reversible marker)
  local kms = {
    GenerateDataKey = function(_, input)
      lu.assertEquals(input.KeyId, "alias/fo-state")
      return { Plaintext = string.rep("k", 32), CiphertextBlob = "wrapped:" .. string.rep("k", 32) }
    end,
    Decrypt = function(_, input)
      return { Plaintext = input.CiphertextBlob:match("^wrapped:(.*)$") }
    end,
  }
  require("support.testlib").write(dir .. "/dev.config.json",
    json.encode({ secrets_provider = "awskms://alias/fo-state" }))
  code, _, _, err = s3run(recipe, { kms = kms })
  lu.assertEquals(code, 0, err)
  local text = objects:get("dev/state.json")
  lu.assertNotStrContains(text, "s3cr3t-value")
  local st = json.decode(text)
  lu.assertEquals(st.secrets.key, "awskms")
  lu.assertEquals(st.secrets.kms_key, "alias/fo-state")
  code, _, _, err = s3run(recipe, { kms = kms })
  lu.assertEquals(code, 0, err)
end

function TestBackend:test_migrate_a_local_stack_to_s3_and_back_without_loss()
  local testlib = require "support.testlib"
  testlib.write(dir .. "/dev.config.json", json.encode({ display = "From the file" }))
  local recipe = function()
    local c = fo.config{ display = { type = "string" } }
    fo.resource("test:topic", "t", { name = "t", display_name = c.display })
    H.network()()
  end
  local code, _, _, err = run(recipe)
  lu.assertEquals(code, 0, err)
  local before = H.state(dir)
  local n = 0
  for _ in pairs(before.resources) do n = n + 1 end
  -- to S3: the copy verified, the source marked, this machine's config names the bucket
  local out
  code, _, out, err = run(nil, { migrate_to = SPEC, migrate_objects = objects })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, ("Stack dev migrated from %s/dev.state.json to %s/dev/state.json (%d "
    .. "resources; sha256 "):format(dir, SPEC, n))
  lu.assertEquals(read().resources, before.resources)
  lu.assertNil(objects:get("dev/lock.json"))
  lu.assertEquals(json.decode((objects:get("dev/config.json"))), { display = "From the file" })
  lu.assertEquals(json.decode(testlib.read(dir .. "/dev.config.json")), { backend = SPEC })
  lu.assertNil(fo.fs.exists(dir .. "/dev.state.json") or nil)
  lu.assertNotNil(testlib.read(dir .. "/dev.state.json.migrated"))
  -- the next run goes to the bucket (the config file's backend) and has nothing to do
  code, _, out, err = run(recipe, { objects = objects })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "No changes.")
  -- the old place refuses, naming the new one
  code, _, _, err = run(recipe, { backend = "local", config = { display = "From the file" } })
  lu.assertEquals(code, 2, err)
  lu.assertStrContains(err, "stack dev was moved to " .. SPEC)
  -- a second migration to the same place is refused
  code, _, _, err = run(nil, { objects = objects, migrate_to = SPEC })
  lu.assertEquals(code, 2, err)
  lu.assertStrContains(err, "already kept in")
  -- and back to the local directory
  code, _, out, err = run(nil, { objects = objects, migrate_to = "local" })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "migrated from " .. SPEC .. "/dev/state.json to " .. dir)
  lu.assertEquals(H.state(dir).resources, before.resources)
  lu.assertEquals(json.decode(testlib.read(dir .. "/dev.config.json")), { display = "From the file" })
  lu.assertNil(objects:get("dev/state.json"))
  lu.assertNotNil(objects:get("dev/moved.json"))
  code, _, out, err = run(recipe)
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "No changes.")
  code, _, _, err = run(recipe, { objects = objects, backend = SPEC })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "stack dev was moved to local")
end

os.exit(lu.LuaUnit.run())
