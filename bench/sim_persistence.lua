-- What persisting the simulator's state costs (docs/simulator.md, "State file"), measured
-- in one run and printed as ratios:
--   * apply: the CPU time (os.clock, this process) of a zero-delay trading apply
--     (recipes/trading.lua) on the in-process simulator, with its state file (snapshot and
--     change log) against without, and against the whole-state rewrite after every
--     mutating call that the simulator did before its log (fo.fs.write_atomic of it all);
--   * served: requests/s of a served simulator (fo.sim.server, in a child fo-run) holding
--     the state that apply left, with its state file against in memory: both served at
--     once, ROUNDS rounds in which CLIENTS concurrent clients (fo's clients over real
--     sockets) make CALLS mutating calls each to one then the other (which goes first
--     alternates) —
--     "update": SNS SetTopicAttributes on a topic of the client's own (the state stays
--     the same size), "create": SSM PutParameter of new parameters, all in one region
--     (that region's SSM table grows to ROUNDS x CLIENTS x CALLS parameters);
--   * append: the process CPU and wall time of a durable append, as the sim's log makes it
--     and two other ways.
-- The apply's figures are the median of RUNS; the served ratio the median of the rounds'
-- (short rounds back to back: the machine may be shared, and its load changes by the
-- second).
-- usage: fo-run bench/sim_persistence.lua [RUNS=3] [CLIENTS=16] [CALLS=10] [ROUNDS=31]
--        (from the repository root)
if arg[1] == "serve" then
  -- the child: serve the state in arg[2] (with its file, or a copy in memory), write the
  -- port to arg[4], stop on SIGTERM
  local sim = fo.sim.new{ file = arg[2] }
  if arg[3] == "memory" then
    sim.file = nil
    sim.store:detach()
  end
  local srv = require("fo.sim.server").serve{ host = "127.0.0.1", port = 0, sim = sim }
  local f = assert(io.open(arg[4] .. ".tmp", "w"))
  f:write(srv.port, "\n")
  f:close()
  assert(os.rename(arg[4] .. ".tmp", arg[4]))
  fo.signal.wait{ "INT", "TERM" }
  srv:close()
  return
end

local engine = require "fo.engine"
local testing = require "fo.testing"
local Store = require "fo.sim.store"

local RUNS = tonumber(arg[1] or "3")
local CLIENTS = tonumber(arg[2] or "16")
local CALLS = tonumber(arg[3] or "10")
local ROUNDS = tonumber(arg[4] or "31")
local FO_RUN = arg[-1] or "build/fo-run" -- (this file, run as `fo-run bench/...`)

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function rmtree(dir) fo.process.run{ argv = { "rm", "-rf", dir } } end
local function cp(from, to) fo.process.run{ argv = { "cp", from, to } } end

-- DynamoDB's transition times shortened, as fo.testing does.
local ddb = require "fo.sim.services.dynamodb"
local timing = {}
for k, v in pairs(ddb.TIMING) do timing[k] = v end
for k, v in pairs(testing.FAST_DYNAMODB) do timing[k] = v end
ddb.TIMING = timing

-- The whole-state rewrite after every mutating call, as the simulator saved before its log.
local function rewrite(self, path)
  require("fo.fs").write_atomic(path, self:encode(), tonumber("600", 8))
end

-- One zero-delay trading apply on a fresh simulator ("memory", "log" or "rewrite");
-- returns its CPU seconds, the state's bytes and (with a file) a copy of the state file.
local function apply(kind, i)
  local dir = testing.tmpdir()
  local file = kind ~= "memory" and dir .. "/bench.sim.json" or nil
  local sim = fo.sim.new{ seed = "bench-persist-" .. i, file = file }
  if kind == "rewrite" then sim.store.persist = rewrite end
  sim.timing = testing.FAST
  local opts = { recipe = "recipes/trading.lua", sim = sim, dir = dir .. "/.fo", stack = "bench",
    config = { environmentSuffix = "bench" }, out = function() end, err = function() end }
  collectgarbage()
  local c0 = os.clock()
  local code = engine.run(opts)
  local cpu = os.clock() - c0
  assert(code == 0, ("%s apply %d exited %d"):format(kind, i, code))
  local bytes = #sim.store:encode()
  local saved
  if kind == "log" then
    sim:save()
    saved = testing.tmpdir() .. "/trading.sim.json"
    cp(file, saved)
  end
  rmtree(dir)
  return cpu, bytes, saved
end

-- Serves a copy of the state `state` ("file" or "memory") in a child fo-run; returns
-- {url=, stop=function}.
local function serve(state, how)
  local dir = testing.tmpdir()
  local file = dir .. "/served.sim.json"
  cp(state, file)
  local portfile = dir .. "/port"
  local stop = dir .. "/stop"
  local script = [["$0" "$@" & pid=$!
while [ ! -e "$STOP" ]; do sleep 0.05; done
kill -TERM $pid; wait $pid]]
  local task = fo.spawn(fo.process.run, { argv = { "sh", "-c", script, FO_RUN,
    "bench/sim_persistence.lua", "--", "serve", file, how, portfile }, timeout = 1200,
    env = { STOP = stop, FO_LOG = "error" } })
  local deadline = fo.now() + 20
  local port
  repeat
    local f = io.open(portfile)
    if f then port = tonumber(f:read("l")); f:close() end
    if not port then
      if fo.now() > deadline then
        io.open(stop, "w"):close()
        error("the served sim did not come up: " .. task:join().stderr)
      end
      fo.sleep(0.02)
    end
  until port
  return { url = "http://127.0.0.1:" .. port, stop = function()
    io.open(stop, "w"):close()
    task:join()
    rmtree(dir)
  end }
end

-- CLIENTS clients of the served sim at `url` (each with a topic of its own for "update").
local function clients_of(url, workload)
  local factory = fo.sim.new{}
  local clients = {}
  for c = 1, CLIENTS do
    local k = { sns = factory:client("sns", { region = "eu-south-1", endpoint = url }),
      ssm = factory:client("ssm", { region = "eu-south-1", endpoint = url }), n = 0 }
    if workload == "update" then k.topic = k.sns:CreateTopic{ Name = "bench-" .. c }.TopicArn end
    clients[c] = k
  end
  return clients
end

-- CALLS calls of `workload` from each client at once; returns the seconds they took.
local function burst(clients, workload)
  local tasks = {}
  local t0 = fo.now()
  for c, k in ipairs(clients) do
    tasks[c] = fo.spawn(function()
      for _ = 1, CALLS do
        k.n = k.n + 1
        if workload == "update" then
          k.sns:SetTopicAttributes{ TopicArn = k.topic, AttributeName = "DisplayName",
            AttributeValue = "v" .. k.n }
        else
          k.ssm:PutParameter{ Name = ("c%d-%d"):format(c, k.n), Value = "v", Type = "String" }
        end
      end
    end)
  end
  for _, t in ipairs(tasks) do t:join() end
  return fo.now() - t0
end

-- The disk's fsync latency this run (a small fo.fs.append, median of 50): what a call
-- answered only once durable waits at least, shared by the calls of a group.
local function fsync_ms()
  local dir = testing.tmpdir()
  local t = {}
  for i = 1, 50 do
    local t0 = fo.now()
    require("fo.fs").append(dir .. "/probe", "x\n")
    t[i] = (fo.now() - t0) * 1000
  end
  rmtree(dir)
  return median(t)
end

-- The process CPU (both threads, os.clock) and wall time per durable append of a 300-byte
-- record, one at a time (median of 3 passes of 300 appends): `how` "reserve" as the sim's log
-- appends (fo.fs.append_kept on the calling thread, over zeros written ahead: the flush
-- commits no new size), "kept" (the same without the zeros), "async" (fo.fs.append_async:
-- the flush on the writer thread, the task waiting for it).
local function append_cost_us(how)
  local fs = require "fo.fs"
  local dir = testing.tmpdir()
  local line, n, cpu, wall = ("x"):rep(299) .. "\n", 300, {}, {}
  local reserve = require("fo.sim.store_log").RESERVE
  for pass = 1, 3 do
    local path = ("%s/log%d"):format(dir, pass)
    local c0, t0 = os.clock(), fo.now()
    for _ = 1, n do
      if how == "async" then fs.append_async(path, line)
      else fs.append_kept(path, line, 384, how == "reserve" and reserve or nil) end
    end
    cpu[pass] = (os.clock() - c0) / n * 1e6
    wall[pass] = (fo.now() - t0) / n * 1e6
  end
  rmtree(dir)
  return median(cpu), median(wall)
end

apply("memory", 0) -- loads what an apply needs, so the first measured one does not pay it
local cpus = { memory = {}, log = {}, rewrite = {} }
local bytes, state
for i = 1, RUNS do
  for _, kind in ipairs({ "memory", "log", "rewrite" }) do
    local cpu, b, saved = apply(kind, i)
    cpus[kind][#cpus[kind] + 1] = cpu
    bytes = b
    if saved then
      if state then rmtree(saved:match("^(.*)/[^/]*$")) else state = saved end
    end
  end
end

-- Served: both sims up at once, ROUNDS bursts of CLIENTS x CALLS calls to each in turn
-- (which goes first alternates), so that the machine's load weighs on both alike; the
-- ratio is the median of the rounds' (in-memory rate / with-file rate).
local rates, ratios = {}, {}
for _, workload in ipairs({ "update", "create" }) do
  local sims = { memory = serve(state, "memory"), file = serve(state, "file") }
  local clients = { memory = clients_of(sims.memory.url, workload),
    file = clients_of(sims.file.url, workload) }
  rates[workload], ratios[workload] = { memory = {}, file = {} }, {}
  for i = 1, ROUNDS do
    local order = i % 2 == 1 and { "memory", "file" } or { "file", "memory" }
    local got = {}
    for _, how in ipairs(order) do got[how] = CLIENTS * CALLS / burst(clients[how], workload) end
    local r = rates[workload]
    r.memory[i], r.file[i] = got.memory, got.file
    ratios[workload][i] = got.memory / got.file
  end
  sims.memory.stop()
  sims.file.stop()
end
rmtree(state:match("^(.*)/[^/]*$"))

print(("sim_persistence: apply median of %d runs, served median of %d paired rounds (log "
  .. "folded past max(%d bytes, snapshot))"):format(RUNS, ROUNDS, Store.LOG_MIN_BYTES))
local cm, cl, cr = median(cpus.memory), median(cpus.log), median(cpus.rewrite)
print(("trading apply, zero delay, CPU (state at the end: %d bytes):"):format(bytes))
print(("  no state file    %7.3f s"):format(cm))
print(("  snapshot + log   %7.3f s  (ratio %.2f)"):format(cl, cl / cm))
print(("  whole rewrite    %7.3f s  (ratio %.2f, before the log)"):format(cr, cr / cm))
print(("served sim holding the trading state, %d rounds of %d clients x %d calls (fsync of a "
  .. "small append: %.2f ms):"):format(ROUNDS, CLIENTS, CALLS, fsync_ms()))
print("a durable append of 300 bytes, one at a time (process CPU / wall, us):")
for _, how in ipairs({ { "reserve", "the sim's log (fo.fs.append_kept over zeros written ahead)" },
    { "kept", "fo.fs.append_kept without them" }, { "async", "fo.fs.append_async" } }) do
  local cpu, wall = append_cost_us(how[1])
  print(("  %-58s %5.0f / %5.0f"):format(how[2], cpu, wall))
end
for _, workload in ipairs({ "update", "create" }) do
  local rs = ratios[workload]
  local lo, hi = math.huge, 0
  for _, x in ipairs(rs) do lo, hi = math.min(lo, x), math.max(hi, x) end
  print(("  %-6s in memory %7.0f requests/s, with its file %7.0f requests/s, ratio %.2f "
    .. "(pairs %.2f-%.2f)"):format(workload, median(rates[workload].memory),
    median(rates[workload].file), median(rs), lo, hi))
end
