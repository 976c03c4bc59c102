-- What persisting the simulator's state costs (docs/simulator.md, "State file"), measured
-- in one run and printed as ratios:
--   * served: requests/s of `fo-run --serve-sim` answering mutating calls (SSM
--     PutParameter, CLIENTS concurrent clients, CALLS calls each, fo's clients over real
--     sockets), with --sim-file against in memory;
--   * apply: the CPU time (os.clock, this process) of a zero-delay trading apply
--     (recipes/trading.lua) on the in-process simulator, with its state file (snapshot and
--     change log) against without, and against the whole-state rewrite after every
--     mutating call that fo did before the log (fo.fs.write_atomic of the whole state).
-- Each figure is the median of RUNS (the machine may be shared).
-- usage: fo-run bench/sim_persistence.lua [RUNS] [CLIENTS] [CALLS]   (from the repository root)
local engine = require "fo.engine"
local testing = require "fo.testing"
local Store = require "fo.sim.store"

local RUNS = tonumber(arg[1] or "3")
local CLIENTS = tonumber(arg[2] or "16")
local CALLS = tonumber(arg[3] or "100")
local FO_RUN = arg[-1] or "build/fo-run"

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function rmtree(dir) fo.process.run{ argv = { "rm", "-rf", dir } } end

-- A free port: bind 0, read it back, close.
local function free_port()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function() return {} end }
  local port = srv.port
  srv:close()
  return port
end

-- Serves a sim (with `file` or in memory) and sends it CLIENTS x CALLS PutParameter calls;
-- returns requests per second.
local function served(file)
  local port = free_port()
  local url = "http://127.0.0.1:" .. port
  local dir = testing.tmpdir()
  local stop = dir .. "/stop"
  local script = [[port=$1; shift; "$0" --serve-sim 127.0.0.1:$port "$@" & pid=$!
while [ ! -e "$STOP" ]; do sleep 0.05; done
kill -TERM $pid; wait $pid]]
  local argv = { "sh", "-c", script, FO_RUN, tostring(port) }
  if file then argv[#argv + 1] = "--sim-file"; argv[#argv + 1] = file end
  local task = fo.spawn(fo.process.run, { argv = argv, timeout = 600,
    env = { STOP = stop, FO_LOG = "error" } })
  local deadline = fo.now() + 20
  while not pcall(fo.http.request, { url = url .. "/", timeout = 1 }) do
    assert(fo.now() < deadline, "the served sim did not come up")
    fo.sleep(0.05)
  end
  local factory = fo.sim.new{}
  local tasks = {}
  local t0 = fo.now()
  for c = 1, CLIENTS do
    tasks[c] = fo.spawn(function()
      local ssm = factory:client("ssm", { region = "eu-south-1", endpoint = url })
      for i = 1, CALLS do
        ssm:PutParameter{ Name = ("c%d-%d"):format(c, i), Value = "v", Type = "String" }
      end
    end)
  end
  for _, t in ipairs(tasks) do t:join() end
  local rate = CLIENTS * CALLS / (fo.now() - t0)
  local f = io.open(stop, "w"); f:close()
  task:join()
  rmtree(dir)
  return rate
end

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
-- returns its CPU seconds and the state's bytes.
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
  rmtree(dir)
  return cpu, bytes
end

apply("memory", 0) -- loads what an apply needs, so the first measured one does not pay it
local rates = { memory = {}, file = {} }
local cpus = { memory = {}, log = {}, rewrite = {} }
local bytes
for i = 1, RUNS do
  rates.memory[#rates.memory + 1] = served(nil)
  local dir = testing.tmpdir()
  rates.file[#rates.file + 1] = served(dir .. "/served.sim.json")
  rmtree(dir)
  for _, kind in ipairs({ "memory", "log", "rewrite" }) do
    local cpu, b = apply(kind, i)
    cpus[kind][#cpus[kind] + 1] = cpu
    bytes = b
  end
end
local rm, rf = median(rates.memory), median(rates.file)
print(("sim_persistence: median of %d runs (log folded past max(%d bytes, snapshot))"):format(
  RUNS, Store.LOG_MIN_BYTES))
print(("served sim, %d clients x %d PutParameter calls:"):format(CLIENTS, CALLS))
print(("  in memory        %8.0f requests/s"):format(rm))
print(("  --sim-file       %8.0f requests/s"):format(rf))
print(("  ratio memory/file %7.2f"):format(rm / rf))
local cm, cl, cr = median(cpus.memory), median(cpus.log), median(cpus.rewrite)
print(("trading apply, zero delay, CPU (state at the end: %d bytes):"):format(bytes))
print(("  no state file    %7.3f s"):format(cm))
print(("  snapshot + log   %7.3f s  (ratio %.2f)"):format(cl, cl / cm))
print(("  whole rewrite    %7.3f s  (ratio %.2f, before the log)"):format(cr, cr / cm))
