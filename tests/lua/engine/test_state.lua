-- The state file: mode 0600, format and schema version, written after every completed
-- operation, a backup of the previous version, a clear refusal of a corrupt file, and the
-- intent journal: an interrupted create is adopted, not made twice. The state log: one line
-- appended per durable write, folded into the state file at the end of a run and when it
-- outgrows it, a torn last record dropped with a notice, a damaged one refused, a log
-- older than its state file ignored, and the lock held over both.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"
local json = require "fo.json"

local sim, dir
TestState = {}
local run = H.fixture(TestState, function(f) sim, dir = f.sim, f.dir end).run

local function mode_of(path)
  return fo.process.run{ argv = { "stat", "-c", "%a", path } }.stdout:gsub("%s+$", "")
end

function TestState:test_state_file_is_private_versioned_and_backed_up()
  lu.assertEquals((run(H.network())), 0)
  local path = dir .. "/dev.state.json"
  lu.assertEquals(mode_of(path), "600")
  lu.assertEquals(mode_of(dir), "700")
  local st, first = H.state(dir)
  lu.assertEquals(st.format, "fo-state")
  lu.assertEquals(st.version, 1)
  lu.assertEquals(st.target, "sim")
  local vpc = st.resources["dev::test:vpc::main"]
  lu.assertEquals(vpc.type, "test:vpc")
  lu.assertEquals(vpc.region, "us-east-1")
  lu.assertStrMatches(vpc.id, "vpc%-%x+")
  lu.assertEquals(vpc.inputs.cidr, "10.0.0.0/16")
  lu.assertEquals(vpc.outputs.id, vpc.id)
  lu.assertEquals(st.resources["dev::test:subnet::s1"].deps, { "dev::test:vpc::main" })
  lu.assertNil(testlib.read(path .. ".bak"))          -- nothing before the first run
  lu.assertEquals((run(H.network{ display = "Other" })), 0)
  lu.assertEquals(testlib.read(path .. ".bak"), first) -- the state before that run
  lu.assertEquals(mode_of(path .. ".bak"), "600")
  local left = fo.process.run{ argv = { "sh", "-c", "ls -a " .. dir .. " | grep tmp || true" } }
  lu.assertEquals(left.stdout, "")
end

function TestState:test_the_state_names_the_module_of_each_type_it_holds()
  lu.assertEquals((run(H.network())), 0)
  local m = "support.engine_types"
  lu.assertEquals(H.state(dir).types, { ["test:vpc"] = m, ["test:subnet"] = m,
    ["test:security_group"] = m, ["test:topic"] = m, ["test:role"] = m })
  -- kept in step with what the state holds
  lu.assertEquals((run(function() fo.resource("test:topic", "t", { name = "t" }) end)), 0)
  lu.assertEquals(H.state(dir).types, { ["test:topic"] = m })
  -- a type defined outside a module (here: by this test file) has no module to record
  fo.type("test:unmoduled", { schema = { properties = {}, outputs = { "id" } },
    create = function() return "u-1", { id = "u-1" } end, read = function(_, _, _, o) return o end,
    delete = function() end })
  lu.assertNil(require("fo.engine.types").module_of("test:unmoduled"))
  lu.assertEquals((run(function() fo.resource("test:unmoduled", "u", {}) end)), 0)
  lu.assertEquals(H.state(dir).types, {})
end

function TestState:test_state_is_written_after_every_completed_operation()
  local seen
  fo.type("test:observer", {
    schema = { properties = { after = { type = "string" } }, outputs = { "id" } },
    create = function()
      -- the resource this one depends on is already in the state file
      seen = H.state(dir).resources["dev::test:vpc::main"]
      return "obs-1", { id = "obs-1" }
    end,
    read = function() return { id = "obs-1" } end,
    delete = function() end,
  })
  lu.assertEquals((run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    fo.resource("test:observer", "o", { after = vpc.id })
  end)), 0)
  lu.assertNotNil(seen)
  lu.assertStrMatches(seen.id, "vpc%-%x+")
end

function TestState:test_a_corrupt_state_file_is_refused_and_left_alone()
  testlib.write(dir .. "/dev.state.json", '{"format": "fo-state", "version": 1, "resources": {')
  local code, _, _, err = run(H.network())
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "state file " .. dir .. "/dev.state.json cannot be used: invalid JSON")
  lu.assertStrContains(err, "fo never overwrites a state file it cannot read")
  lu.assertStrContains(err, "There is no backup")
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(testlib.read(dir .. "/dev.state.json"),
    '{"format": "fo-state", "version": 1, "resources": {')
  testlib.write(dir .. "/dev.state.json.bak", "{}")
  testlib.write(dir .. "/dev.state.json", '{"format": "fo-state", "version": 99, "target": "sim"}')
  code, _, _, err = run(H.network())
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "schema version 99; this fo reads version 1")
  lu.assertStrContains(err, "cp " .. dir .. "/dev.state.json.bak " .. dir .. "/dev.state.json")
end

local function state_with_intent(inputs)
  local doc = { format = "fo-state", version = 1, stack = "dev", target = "sim", config = {},
    outputs = {}, resources = {}, deposed = {}, intents = {
      ["dev::test:vpc::main"] = { op = "create", urn = "dev::test:vpc::main", type = "test:vpc",
        name = "main", region = H.REGION, token = "t", generation = 1, inputs = inputs,
        deps = {} } } }
  fo.fs.mkdir_p(dir)
  fo.fs.write_atomic(dir .. "/dev.state.json", json.encode(doc))
end

local VPC_INPUTS = { cidr = "10.0.0.0/16", dns_hostnames = false, tags = {} }

local function one_vpc()
  fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
end

local function one_vpc_and_topic()
  local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
  fo.resource("test:topic", "alerts", { name = "alerts" }, { depends_on = { vpc } })
end

function TestState:test_an_interrupted_create_is_adopted_not_repeated()
  -- as if a run created the VPC (tagged) and died before recording it
  local vpc = sim:invoke("ec2", H.REGION, "CreateVpc", { CidrBlock = "10.0.0.0/16",
    TagSpecifications = { { ResourceType = "vpc", Tags = {
      { Key = "fo:name", Value = "main" }, { Key = "fo:stack", Value = "dev" },
      { Key = "fo:token", Value = "t" } } } } }).Vpc
  state_with_intent(VPC_INPUTS)
  sim.recorder:clear()
  local code, doc, out = run(one_vpc)
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "Adopted dev::test:vpc::main: " .. vpc.VpcId)
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(H.inventory(sim), { "vpc " .. vpc.VpcId })
  local st = H.state(dir)
  lu.assertEquals(st.resources["dev::test:vpc::main"].id, vpc.VpcId)
  lu.assertEquals(next(st.intents), nil)
  lu.assertEquals(doc.adopted[1].id, vpc.VpcId)
end

function TestState:test_an_interrupted_create_that_made_nothing_is_created_once()
  state_with_intent(VPC_INPUTS)
  local code, _, out = run(one_vpc)
  lu.assertEquals(code, 0, out)
  lu.assertStrContains(out, "left nothing behind; it will be created")
  lu.assertEquals(#H.inventory(sim), 1)
end

function TestState:test_plan_reads_intents_without_writing_the_state()
  state_with_intent(VPC_INPUTS)
  local text = testlib.read(dir .. "/dev.state.json")
  local code = run(one_vpc, { mode = "plan", explicit = true })
  lu.assertEquals(code, 0)
  lu.assertEquals(testlib.read(dir .. "/dev.state.json"), text)
end

function TestState:test_a_stack_keeps_its_target()
  lu.assertEquals((run(one_vpc)), 0)
  local code, _, _, err = run(one_vpc, { target = "aws" })
  lu.assertEquals(code, 2)
  lu.assertStrContains(err, "stack dev is bound to target sim")
end

-- The state log ---------------------------------------------------------------------------

local state_mod = require "fo.engine.state"
local Store = getmetatable(state_mod.store("/nonexistent/x.state.json", state_mod.empty("dev", "sim")))

local function log_path() return dir .. "/dev.state.log" end
local function state_path() return dir .. "/dev.state.json" end

-- The log's lines (without their newlines) and what follows the last newline.
local function log_lines()
  local text = testlib.read(log_path()) or ""
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines, text:match("[^\n]*$")
end

-- Runs with the end-of-run fold of the log into the state file switched off: the files are
-- as a run killed right after its last write leaves them.
local function run_unfolded(recipe, opts)
  local finish = Store.finish
  Store.finish = function() end
  local r = table.pack(pcall(run, recipe, opts))
  Store.finish = finish
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- The state file alone (without its log).
local function snapshot()
  return json.decode(testlib.read(state_path()))
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

function TestState:test_each_write_appends_to_the_log_and_the_end_of_a_run_folds_it()
  lu.assertEquals((run(one_vpc)), 0)
  -- between runs, the state file is the whole state: the log is a header for it
  local lines, tail = log_lines()
  lu.assertEquals(#lines, 1)
  lu.assertEquals(tail, "")
  local header = json.decode(lines[1])
  lu.assertEquals(header.format, "fo-state-log")
  lu.assertEquals(header.base, fo.crypto.hex(fo.crypto.sha256(testlib.read(state_path()))))
  lu.assertEquals(mode_of(log_path()), "600")
  -- during a run, each durable write is one line appended to the log; the state file stays
  local before = testlib.read(state_path())
  local code = run_unfolded(H.network())
  lu.assertEquals(code, 0)
  lu.assertEquals(testlib.read(state_path()), before)
  lines = log_lines()
  lu.assertTrue(#lines >= 4, #lines .. " lines")
  for i = 2, #lines do
    local rec = json.decode(lines[i])
    lu.assertEquals(rec.n, i - 1)
    lu.assertEquals(type(rec.changes), "table")
  end
  lu.assertEquals(count(snapshot().resources), 1)
  local st = H.state(dir)
  lu.assertEquals(count(st.resources), 6) -- replayed: vpc, 2 subnets, sg, topic, role
  lu.assertEquals(next(st.intents), nil)
  lu.assertEquals(st.types["test:subnet"], "support.engine_types")
  -- a plan reads the log and writes nothing
  local log_text = testlib.read(log_path())
  lu.assertEquals((run(H.network(), { mode = "plan" })), 0)
  lu.assertEquals(testlib.read(log_path()), log_text)
  lu.assertEquals(testlib.read(state_path()), before)
  -- a run with nothing to do folds the log: the state file is the replayed state, the .bak
  -- too (the state as that run read it)
  sim.recorder:clear()
  local _, _, out = run(H.network())
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(#log_lines(), 1)
  lu.assertEquals(snapshot(), st)
  lu.assertEquals(json.decode(testlib.read(state_path() .. ".bak")), st)
end

-- What a power cut in the middle of an append leaves: the last line of the log is cut
-- short. It is dropped with a notice (never an error): that write was not durable, so
-- nothing relied on it; the interrupted create's intent (an earlier line) makes the next
-- run adopt what it made.
function TestState:test_a_torn_last_record_is_dropped_with_a_notice()
  local vpc_only = function() fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" }) end
  lu.assertEquals((run(vpc_only)), 0)
  lu.assertEquals((run_unfolded(one_vpc_and_topic)), 0)
  local lines = log_lines()
  -- the last line records the topic; the one before holds its intent
  lu.assertStrContains(lines[#lines], '"put":"dev::test:topic::alerts"')
  local intact = table.concat(lines, "\n", 1, #lines - 1) .. "\n"
  for _, torn in ipairs({
    lines[#lines]:sub(1, #lines[#lines] // 2),                    -- cut short, no newline
    lines[#lines]:gsub('"alerts"', '"alertz"', 1) .. "\n",        -- whole, checksum wrong
  }) do
    testlib.write(log_path(), intact .. torn)
    local st, _, notices = H.state(dir)
    lu.assertEquals(#notices, 1)
    lu.assertStrContains(notices[1], "ends with a torn record (line " .. #lines)
    lu.assertNil(st.resources["dev::test:topic::alerts"])
    lu.assertNotNil(st.intents["dev::test:topic::alerts"])
  end
  sim.recorder:clear()
  local code, _, out, err = run(one_vpc_and_topic)
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(err, "ends with a torn record")
  lu.assertStrContains(out, "Adopted dev::test:topic::alerts")
  lu.assertEquals(H.mutating(sim), 0) -- adopted, not created again
  lu.assertEquals(#H.inventory(sim), 2)
  lu.assertEquals(#log_lines(), 1) -- folded
  lu.assertNotNil(snapshot().resources["dev::test:topic::alerts"])
end

-- A damaged record with valid ones after it is no torn tail: fo refuses the state (exit 1)
-- and changes nothing, naming the log, the line and what to do.
function TestState:test_a_bad_record_followed_by_valid_ones_is_refused()
  lu.assertEquals((run(one_vpc)), 0)
  lu.assertEquals((run_unfolded(H.network())), 0)
  local lines = log_lines()
  lu.assertTrue(#lines >= 4)
  lines[2] = lines[2]:gsub("dev::test:", "dev::tost:", 1)
  local damaged = table.concat(lines, "\n") .. "\n"
  testlib.write(log_path(), damaged)
  local snap = testlib.read(state_path())
  sim.recorder:clear()
  local code, _, _, err = run(H.network())
  lu.assertEquals(code, 1, err)
  lu.assertStrContains(err, "state log " .. log_path() .. " cannot be used: line 2: its checksum "
    .. "does not match, and valid records follow it")
  lu.assertStrContains(err, "head -n 1 " .. log_path())
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertEquals(testlib.read(log_path()), damaged)
  lu.assertEquals(testlib.read(state_path()), snap)
  -- a record that passes its checksum but is no change is refused too
  local body = '[{"frobnicate":1}]'
  lines = log_lines()
  testlib.write(log_path(), lines[1] .. "\n" .. ('{"n":1,"sum":"%s","len":%d,"changes":%s}\n')
    :format(fo.crypto.hex(fo.crypto.sha256(body)):sub(1, 16), #body, body))
  code, _, _, err = run(H.network())
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "line 2: an unknown change")
end

-- A fold writes the state file, then resets the log: killed in between, the log's header
-- names the previous state file. Its records are in the new state file already: it is
-- ignored (replaying it again would depose a replaced instance twice).
function TestState:test_a_log_older_than_the_state_file_is_ignored()
  lu.assertEquals((run(one_vpc)), 0)
  -- a replacement: the old VPC is deposed, then deleted
  lu.assertEquals((run_unfolded(function()
    fo.resource("test:vpc", "main", { cidr = "10.1.0.0/16" })
  end)), 0)
  local st = H.state(dir)
  local log_text = testlib.read(log_path())
  lu.assertStrContains(log_text, '"depose"')
  -- the fold's first write, not its second
  fo.fs.write_atomic(state_path(), state_mod.store(state_path(), st):encode())
  lu.assertEquals(testlib.read(log_path()), log_text)
  local again, _, notices = H.state(dir)
  lu.assertEquals(again, st)
  lu.assertEquals(#notices, 1)
  lu.assertStrContains(notices[1], "predates the state file")
  local code, _, out, err = run(function() fo.resource("test:vpc", "main", { cidr = "10.1.0.0/16" }) end)
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "No changes.")
  lu.assertEquals(#log_lines(), 1)
  lu.assertEquals(#H.inventory(sim), 1)
end

-- The log is folded into the state file when its records outgrow LOG_FACTOR times it
-- (and reach LOG_MIN_BYTES), so it stays within a constant factor of the state: bytes
-- written per run stay linear.
function TestState:test_the_log_is_folded_when_it_outgrows_the_state_file()
  local min = state_mod.LOG_MIN_BYTES
  local write_atomic, folds = fo.fs.write_atomic, 0
  fo.fs.write_atomic = function(path, ...)
    if path == state_path() then folds = folds + 1 end
    return write_atomic(path, ...)
  end
  local function many(n)
    return function()
      for i = 1, n do fo.resource("test:topic", "t" .. i, { name = "t" .. i }) end
    end
  end
  local ok, err = pcall(function()
    state_mod.LOG_MIN_BYTES = 1 << 20
    lu.assertEquals((run(many(20), { parallel = 4 })), 0)
    lu.assertEquals(folds, 2) -- a new stack's first write, and the end of the run
    state_mod.LOG_MIN_BYTES = 0
    folds = 0
    lu.assertEquals((run_unfolded(many(100), { parallel = 4 })), 0)
    -- the state grows fivefold: a fold when the log's records outgrow LOG_FACTOR times the
    -- state file, then appending goes on
    lu.assertTrue(folds >= 1 and folds <= 4, folds .. " folds")
    local text = testlib.read(state_path())
    local lines = log_lines()
    local header = json.decode(lines[1])
    lu.assertEquals(header.base, fo.crypto.hex(fo.crypto.sha256(text)))
    lu.assertTrue(#lines >= 2)
    lu.assertTrue(#(testlib.read(log_path())) - #lines[1] - 1
      <= state_mod.LOG_FACTOR * #text + 4096)
    lu.assertEquals(count(H.state(dir).resources), 100)
  end)
  fo.fs.write_atomic, state_mod.LOG_MIN_BYTES = write_atomic, min
  if not ok then error(err, 0) end
  lu.assertEquals(#H.inventory(sim), 100)
end

-- A log removed mid-run (by hand): the next write folds everything into the state file
-- instead of starting a log with no header.
function TestState:test_a_log_removed_mid_run_is_written_again_by_a_fold()
  lu.assertEquals((run(one_vpc)), 0)
  fo.type("test:remover", {
    schema = { properties = {}, outputs = { "id" } },
    create = function()
      os.remove(log_path())
      return "rm-1", { id = "rm-1" }
    end,
    read = function() return { id = "rm-1" } end,
    delete = function() end,
  })
  local code = run_unfolded(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    local r = fo.resource("test:remover", "r", {}, { depends_on = { vpc } })
    fo.resource("test:topic", "alerts", { name = "alerts" }, { depends_on = { r } })
  end)
  lu.assertEquals(code, 0)
  local st, _, notices = H.state(dir)
  lu.assertEquals(notices, {})
  lu.assertNotNil(st.resources["dev::test:remover::r"])
  lu.assertNotNil(st.resources["dev::test:topic::alerts"])
  lu.assertEquals(json.decode(log_lines()[1]).format, "fo-state-log")
end

-- The stack's lock is taken before the state and its log are read and held until the log
-- is folded: a second run (apply, plan, or --break-lock while the holder lives) is refused
-- and touches neither file.
function TestState:test_the_lock_covers_the_log()
  lu.assertEquals((run(one_vpc)), 0)
  local seen = {}
  fo.type("test:probe", {
    schema = { properties = {}, outputs = { "id" } },
    create = function()
      -- mid-run: this create's intent is in the log, not in the state file
      local log_text, snap = testlib.read(log_path()), testlib.read(state_path())
      lu.assertStrContains(log_text, '"intent": "dev::test:probe::p"')
      for _, o in ipairs({ {}, { mode = "plan" }, { break_lock = true } }) do
        local code, _, _, err = run(one_vpc, o)
        seen[#seen + 1] = { code = code, err = err }
      end
      lu.assertEquals(testlib.read(log_path()), log_text)
      lu.assertEquals(testlib.read(state_path()), snap)
      return "probe-1", { id = "probe-1" }
    end,
    read = function() return { id = "probe-1" } end,
    delete = function() end,
  })
  local code, _, out, err = run(function() one_vpc(); fo.resource("test:probe", "p", {}) end)
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(#seen, 3)
  for _, r in ipairs(seen) do
    lu.assertEquals(r.code, 5, r.err)
    lu.assertStrContains(r.err, "stack dev is locked by pid")
  end
  lu.assertStrContains(seen[3].err, "--break-lock refused: that process is alive")
  lu.assertEquals(#log_lines(), 1)
  lu.assertNotNil(snapshot().resources["dev::test:probe::p"])
end

-- A store keeps the records' order and types from fold to fold (puts, replacements and
-- removals in between): what it writes is what a store made afresh over the same document
-- writes, resources sorted by URN and every type they hold named.
function TestState:test_a_fold_writes_what_a_fresh_store_writes_after_puts_and_removals()
  local doc = state_mod.empty("dev", "sim")
  local store = state_mod.store(dir .. "/x.state.json", doc, nil, { readonly = true })
  local function rec(i, t)
    local urn = ("dev::%s::r%d"):format(t, i)
    return urn, { urn = urn, type = t, name = "r" .. i, region = "us-east-1", id = "id-" .. i,
      inputs = {}, outputs = {}, deps = {} }
  end
  local function same()
    local fresh = state_mod.store(dir .. "/y.state.json", doc, nil, { readonly = true })
    lu.assertEquals(store:encode(), fresh:encode())
  end
  for i = 1, 40, 3 do store:put(rec(i, "test:topic")) end
  same()
  for i = 40, 2, -3 do store:put(rec(i, "test:vpc")) end -- new URNs, put out of order
  store:put(rec(1, "test:topic")) -- a replacement
  same()
  store:remove((rec(4, "test:topic")))
  store:put(rec(100, "test:role"))
  same()
  lu.assertNotNil(json.decode(store:encode()).types["test:role"])
  -- the last of a type goes: the type goes from the document's types too
  store:remove((rec(100, "test:role")))
  same()
  lu.assertNil(json.decode(store:encode()).types["test:role"])
end

os.exit(lu.LuaUnit.run())
