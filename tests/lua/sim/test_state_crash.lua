-- The simulator's state file under crashes: a child fo-run makes a burst of mutating calls
-- on a sim persisted in a file (each answered call printed once its answer is back) and is
-- killed with SIGKILL once it has answered a random number of calls (seeded: FO_CRASH_SEED,
-- printed; the child goes on meanwhile, so the kill lands anywhere), the log folded
-- into the snapshot every few calls (a low fold bound) so kills land in appends and folds
-- alike. After each kill the file loads, and every call the child saw answered is in it.
-- Then the log's damage cases one by one: a torn last record is dropped, a damaged record
-- with valid ones after it is refused naming the file and the fix, a stale log is ignored.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local Store = require "fo.sim.store"
local slog = require "fo.sim.store_log"
local simlib = require "fo.sim"

local TRIALS = tonumber(os.getenv("FO_CRASH_TRIALS") or "") or 12
local SEED = tonumber(os.getenv("FO_CRASH_SEED") or "") or 20261206

-- The child: PutParameter calls named <trial>-<i>, each printed when answered.
local CHILD = [[
local file, trial, fold = arg[1], arg[2], tonumber(arg[3])
require("fo.sim.store").LOG_MIN_BYTES = fold
local sim = require("fo.sim").new{ file = file }
for i = 1, 100000 do
  local name = ("%s-%d"):format(trial, i)
  sim:invoke("ssm", "eu-south-1", "PutParameter", { Name = name, Value = ("v"):rep(200),
    Type = "String" })
  io.stdout:write("ok ", name, "\n")
  io.stdout:flush()
  -- a fold now and then besides the log's own (which waits for the log to outgrow the
  -- snapshot), so that kills land in folds too
  if i % 5 == 0 then sim:save() end
end
]]

-- The same from 8 tasks at once, as a served sim answers clients: calls share appends
-- (group commit) and a group's append is queued while the one before is being written.
local CHILD_TASKS = [[
local file, trial, fold = arg[1], arg[2], tonumber(arg[3])
require("fo.sim.store").LOG_MIN_BYTES = fold
local sim = require("fo.sim").new{ file = file }
local tasks = {}
for k = 1, 8 do
  tasks[k] = fo.spawn(function()
    for i = 1, 100000 do
      local name = ("%s-%d-%d"):format(trial, k, i)
      sim:invoke("ssm", "eu-south-1", "PutParameter", { Name = name, Value = ("v"):rep(200),
        Type = "String" })
      io.stdout:write("ok ", name, "\n")
      io.stdout:flush()
      if k == 1 and i % 5 == 0 then sim:save() end
    end
  end)
end
for _, task in ipairs(tasks) do task:join() end
]]

local function parameters(file)
  local store = Store.load(file)
  local db = store and store.data.accounts["123456789012"]
  db = db and db["eu-south-1"] and db["eu-south-1"].ssm
  return db and db.parameters or {}, store
end

TestStateCrash = {}

local function every_answered_call_survives_a_kill(script)
  local dir = t.tmpdir()
  local child = dir .. "/child.lua"
  t.write(child, script)
  local file = dir .. "/.fo/crash.sim.json"
  print(("crash trials: FO_CRASH_SEED=%d, %d trials"):format(SEED, TRIALS))
  math.randomseed(SEED)
  local answered, folds = 0, 0
  for trial = 1, TRIALS do
    local task, pid = t.spawn_fo({ child, file, "t" .. trial, tostring(4096) },
      { pidfile = dir .. "/pid" })
    -- killed once it has answered a random number of calls (wherever its work is then)
    local want, deadline = math.random(1, 60), fo.now() + 60
    while select(2, (t.read(dir .. "/pid.out") or ""):gsub("\n", "")) < want
      and not task.done and fo.now() < deadline do
      fo.sleep(0.002)
    end
    fo.process.run{ argv = { "kill", "-KILL", tostring(pid) } }
    local r = task:join()
    lu.assertNotEquals(r.code, 0, "the child was killed: " .. r.stderr)
    local params = parameters(file)
    local n = 0
    for name in r.stdout:gmatch("ok (%S+)\n") do
      n = n + 1
      lu.assertNotNil(params[name], ("trial %d: %s was answered, not in the state"):format(
        trial, name))
    end
    answered = answered + n
    -- the snapshot alone parses too (what a fold left); none yet: nothing was answered
    if fo.fs.exists(file) then
      lu.assertNotNil(require("fo.json").read_file(file, { format = Store.FORMAT,
        version = Store.VERSION }))
    else
      lu.assertEquals(n, 0)
    end
    local f = io.open(slog.path(file))
    if f then
      if select(2, f:read("a"):gsub("\n", "")) <= 1 then folds = folds + 1 end
      f:close()
    end
  end
  print(("crash trials: %d answered calls checked, %d kills right after a fold"):format(
    answered, folds))
  lu.assertTrue(answered > TRIALS, "the children answered calls before they were killed")
  t.rmtree(dir)
end

function TestStateCrash.test_every_answered_call_survives_a_kill()
  every_answered_call_survives_a_kill(CHILD)
end

function TestStateCrash.test_every_answered_call_of_concurrent_tasks_survives_a_kill()
  every_answered_call_survives_a_kill(CHILD_TASKS)
end

-- Appends that fail while others are in flight (the log's appends go to /dev/full: no
-- space): the calls whose append failed get an error, and every call answered without one
-- is in the file after — no append lands behind a failed one, and the next call writes
-- the whole state.
function TestStateCrash.test_calls_in_flight_when_an_append_fails_are_answered_only_if_saved()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = simlib.new{ seed = 5, file = file }
  local function put(name)
    return pcall(sim.invoke, sim, "ssm", "eu-south-1", "PutParameter",
      { Name = name, Value = "v", Type = "String" })
  end
  lu.assertTrue((put("p0")))
  sim.store.log.lpath = "/dev/full"
  local answered, failed, tasks = {}, {}, {}
  for k = 1, 6 do
    tasks[k] = fo.spawn(function()
      for _ = 1, k do fo.sleep(0) end -- (in turn: groups of calls in flight at once)
      local ok, e = put("p" .. k)
      if ok then answered[#answered + 1] = "p" .. k else failed[#failed + 1] = tostring(e) end
    end)
  end
  for _, task in ipairs(tasks) do task:join() end
  lu.assertTrue(#failed >= 1, "the first append failed")
  for _, e in ipairs(failed) do lu.assertStrContains(e, "/dev/full") end
  lu.assertTrue((put("p7")))
  local params = parameters(file)
  for _, name in ipairs(answered) do lu.assertNotNil(params[name], name .. " was answered") end
  lu.assertNotNil(params.p7)
  t.rmtree(dir)
end

-- A sim with a few calls in its log: returns the file, the log and the sim.
local function logged_sim(dir, n)
  local file = dir .. "/s.sim.json"
  local sim = simlib.new{ seed = 3, file = file }
  for i = 1, n do
    sim:invoke("ssm", "eu-south-1", "PutParameter", { Name = "p" .. i, Value = "v",
      Type = "String" })
  end
  return file, slog.path(file), sim
end

-- A log's records, and the zeros written ahead after them (slog.RESERVE).
local function records_and_zeros(log)
  local text = t.read(log)
  local records = text:match("^(.-)%z*$")
  return records, text:sub(#records + 1)
end

function TestStateCrash.test_a_torn_last_record_is_dropped_and_the_next_call_folds()
  local dir = t.tmpdir()
  local file, log = logged_sim(dir, 3)
  local text = records_and_zeros(log)
  -- the first call wrote the snapshot; the next two are records after the header
  lu.assertEquals(select(2, text:gsub("\n", "")), 3)
  t.write(log, text:sub(1, #text - 10), "600")
  local params = parameters(file)
  lu.assertNotNil(params.p2)
  lu.assertNil(params.p3, "the torn record is dropped")
  -- appending after a torn tail would hide the next record: the next call folds instead
  local sim = simlib.new{ file = file }
  sim:invoke("ssm", "eu-south-1", "PutParameter", { Name = "p4", Value = "v", Type = "String" })
  lu.assertEquals(select(2, t.read(log):gsub("\n", "")), 1, "a new log: its header only")
  params = parameters(file)
  lu.assertNotNil(params.p2)
  lu.assertNotNil(params.p4)
  t.rmtree(dir)
end

-- The log is kept slog.RESERVE zero bytes longer than its records, so that an append's
-- flush commits no new size; loading drops those zeros, and reads a record a crash cut short
-- over them — its end not written, or a block of it (zeros left inside it) — as torn: a
-- call never answered, dropped like any torn record.
function TestStateCrash.test_the_zeros_after_the_records_are_not_read_as_records()
  local dir = t.tmpdir()
  local file, log = logged_sim(dir, 3)
  local records, zeros = records_and_zeros(log)
  lu.assertTrue(#zeros > 0 and #records + #zeros >= slog.RESERVE, "the zeros written ahead")
  lu.assertEquals(zeros, ("\0"):rep(#zeros))
  local params = parameters(file)
  lu.assertNotNil(params.p3, "the records before the zeros load")
  local before_last = records:match("^(.*\n)[^\n]+\n$")
  local last = records:sub(#before_last + 1)
  for _, torn in ipairs({
    last:sub(1, 20), -- its end not written: zeros after its start
    last:sub(1, 20) .. ("\0"):rep(30) .. last:sub(51), -- a hole of zeros inside it
    ("\0"):rep(40) .. last:sub(41), -- its start not written
  }) do
    t.write(log, before_last .. torn .. zeros, "600")
    params = parameters(file)
    lu.assertNotNil(params.p2)
    lu.assertNil(params.p3, "the torn record is dropped")
  end
  -- appends go on at the end of the records, not after the zeros
  t.write(log, records .. zeros, "600")
  local sim = simlib.new{ file = file }
  sim:invoke("ssm", "eu-south-1", "PutParameter", { Name = "p4", Value = "v", Type = "String" })
  local now = records_and_zeros(log)
  lu.assertEquals(now:sub(1, #records), records)
  lu.assertEquals(select(2, now:gsub("\n", "")), 4)
  lu.assertNotNil(parameters(file).p4)
  t.rmtree(dir)
end

-- Zeros inside the log with valid records after them are damage, not a torn tail.
function TestStateCrash.test_zeros_before_valid_records_are_refused()
  local dir = t.tmpdir()
  local file, log = logged_sim(dir, 4)
  local records, zeros = records_and_zeros(log)
  local header_and_first = records:match("^([^\n]*\n[^\n]*\n)")
  local rest = records:sub(#header_and_first + 1)
  t.write(log, header_and_first .. ("\0"):rep(10) .. rest:sub(11) .. zeros, "600")
  local ok, err = pcall(simlib.new, { file = file })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), "line 3: ")
  lu.assertStrContains(tostring(err), "and valid records follow it")
  t.rmtree(dir)
end

function TestStateCrash.test_a_damaged_record_before_valid_ones_is_refused()
  local dir = t.tmpdir()
  local file, log = logged_sim(dir, 4)
  local lines = {}
  for line in t.read(log):gmatch("[^\n]+") do lines[#lines + 1] = line end
  lines[2] = lines[2]:gsub('"sum":"%x', '"sum":"g')
  t.write(log, table.concat(lines, "\n") .. "\n", "600")
  local ok, err = pcall(simlib.new, { file = file })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(err), ("simulator state file %s is not usable: its log %s, "
    .. "line 2: not a log record, and valid records follow it"):format(file, log))
  lu.assertStrContains(tostring(err), ("Delete it and its log (rm %s %s)"):format(file, log))
  t.rmtree(dir)
end

function TestStateCrash.test_a_stale_log_is_ignored()
  local dir = t.tmpdir()
  local file, log = logged_sim(dir, 3)
  local old = t.read(log)
  local sim = simlib.new{ file = file }
  sim:save() -- a fold: the snapshot holds p1..p3, a new log
  sim:invoke("ssm", "eu-south-1", "DeleteParameter", { Name = "p1" })
  sim:save()
  -- a fold that died after writing the snapshot leaves the log of the snapshot before it
  t.write(log, old, "600")
  local params = parameters(file)
  lu.assertNil(params.p1, "the stale log's records are not replayed")
  lu.assertNotNil(params.p3)
  t.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
