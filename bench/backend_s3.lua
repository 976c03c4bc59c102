-- What keeping a stack's state in S3 costs an apply (docs/state-backends.md): the trading
-- recipe (recipes/trading.lua) applied on the in-process simulator with LATENCY ms per
-- call, once with the local backend (.fo/ files) and once with the S3 backend (its state,
-- change log and lease in the same simulator's S3, through fo's S3 client, at the same
-- latency), on fresh simulators. Prints the median wall time of each over RUNS applies,
-- the ratio S3 / local, and what the S3 backend sent (state PUTs, lease renewals).
-- usage: fo-run bench/backend_s3.lua [LATENCY_MS] [RUNS]   (from the repository root)
local engine = require "fo.engine"
local testing = require "fo.testing"
local s3_objects = require "fo.engine.backend.s3_objects"

local LATENCY_MS = tonumber(arg[1] or "20")
local RUNS = tonumber(arg[2] or "3")
local RECIPE = "recipes/trading.lua"
local BUCKET = "bench-fo-state"

-- DynamoDB's transition times shortened, as fo.testing does (the same for both).
local ddb = require "fo.sim.services.dynamodb"
local timing = {}
for k, v in pairs(ddb.TIMING) do timing[k] = v end
for k, v in pairs(testing.FAST_DYNAMODB) do timing[k] = v end
ddb.TIMING = timing

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- One apply on a fresh simulator; returns its wall time and the S3 backend's calls.
local function apply(kind, i)
  local sim = fo.sim.new{ seed = "bench-backend-" .. i, knobs = { latency_ms = LATENCY_MS } }
  sim.timing = testing.FAST
  local opts = { recipe = RECIPE, sim = sim, dir = testing.tmpdir(), stack = "bench",
    config = { environmentSuffix = "bench" }, out = function() end, err = function() end }
  if kind == "s3" then
    local s3 = sim:client("s3", { region = "us-east-1" })
    s3:CreateBucket{ Bucket = BUCKET }
    opts.backend = "s3://" .. BUCKET .. "/stacks"
    opts.objects = s3_objects.new{ bucket = BUCKET, prefix = "stacks", client = s3 }
  end
  local before = sim:counts(function(c) return c.service == "s3" end).by_operation
  local t0 = fo.now()
  local code = engine.run(opts)
  local wall = fo.now() - t0
  assert(code == 0, ("%s apply %d exited %d"):format(kind, i, code))
  local after = sim:counts(function(c) return c.service == "s3" end).by_operation
  local puts = (after["s3.PutObject"] or 0) - (before["s3.PutObject"] or 0)
  fo.process.run{ argv = { "rm", "-rf", opts.dir } }
  return wall, puts
end

local walls = { ["local"] = {}, s3 = {} }
local puts
for i = 1, RUNS do
  for _, kind in ipairs({ "local", "s3" }) do
    local wall, p = apply(kind, i)
    walls[kind][#walls[kind] + 1] = wall
    if kind == "s3" then puts = p end
  end
end
local l, s = median(walls["local"]), median(walls.s3)
print(("backend_s3: trading apply, sim latency %d ms per call, median of %d"):format(LATENCY_MS,
  RUNS))
print(("  local backend  %7.2f s"):format(l))
print(("  S3 backend     %7.2f s  (%d S3 PUTs: lease, change-log commits, snapshot)"):format(s,
  puts))
print(("  ratio S3/local %7.2f"):format(s / l))
