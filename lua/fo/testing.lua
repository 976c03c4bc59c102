-- Recipe tests: apply a recipe file on a fresh in-process simulator (its own temporary
-- state directory, config overrides), read back what it built through fo's AWS clients
-- bound to that simulator, move the virtual clock, run the failover drill, destroy, clean
-- up. docs/testing.md shows a whole test.
--
--   local testing = require "fo.testing"
--   local st = testing.apply("recipes/trading.lua", { config = { environmentSuffix = "ci" } })
--   st:check()                                   -- exit 0, else an error with the output
--   local ec2 = st:client("ec2", "eu-south-1")   -- aws.ec2 bound to the simulator
--   ...
--   st:destroy(); st:close()
local engine = require "fo.engine"
local drill = require "fo.drill"

local M = {}

-- AWS transition windows shortened (virtual seconds) so that an apply takes seconds;
-- waiters still see every intermediate state. M.FAST is per simulator (sim.timing),
-- M.FAST_DYNAMODB process-wide (set around each run of the engine, then restored).
M.FAST = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1, refresh_batch = 0.3 }
M.FAST_DYNAMODB = { table_create = 0.3, table_delete = 0.3, table_update = 0.2,
  replica_create = 1, replica_delete = 0.5 }

--- A fresh directory under /tmp (mktemp -d), for a stack's state files.
function M.tmpdir()
  local r = fo.process.run{ argv = { "mktemp", "-d", "/tmp/fo-test.XXXXXX" } }
  if r.code ~= 0 then error("fo.testing: mktemp -d failed: " .. r.stderr, 2) end
  return (r.stdout:gsub("%s+$", ""))
end

--- Removes a directory made by M.tmpdir (and refuses any other).
function M.rmtree(dir)
  if not tostring(dir):match("^/tmp/fo%-test%.[%w]+$") then
    error("fo.testing: refusing to remove " .. tostring(dir) .. " (not made by fo.testing.tmpdir)", 2)
  end
  fo.process.run{ argv = { "rm", "-rf", dir } }
end

-- Runs fn with DynamoDB's transition times shortened (process-wide), restored after.
local function with_fast_dynamodb(fast, fn)
  if not fast then return fn() end
  local ddb = require "fo.sim.services.dynamodb"
  local saved, t = ddb.TIMING, {}
  for k, v in pairs(saved) do t[k] = v end
  for k, v in pairs(M.FAST_DYNAMODB) do t[k] = v end
  ddb.TIMING = t
  local ok, a, b = pcall(fn)
  ddb.TIMING = saved
  if not ok then error(a, 0) end
  return a, b
end

local Stack = {}
Stack.__index = Stack

-- The stacks applied and not closed yet (M.close_all).
local open = {}

--- Applies `recipe` (a path) on a new simulator. opts: config ({key = value}, the
--- recipe's fo.config overrides), stack (default "test"), seed (the simulator's, default
--- "fo.testing"), fast (default true: M.FAST timings), sim_options (more fo.sim.new
--- options: knobs, disabled_regions, ...), before (fn(sim, config) called on the new
--- simulator before the apply: what the account holds already, e.g. an issued ACM
--- certificate whose ARN it puts in config). Returns a stack: st.code (the exit code),
--- st.doc (the report document), st.outputs, st.out and st.err (the text printed),
--- st.sim, st.dir. opts.parallel: the engine's --parallel (default its own) for every run
--- of the stack. An apply that fails is returned too (st.code ~= 0): assert on it, or
--- st:check().
function M.apply(recipe, opts)
  opts = opts or {}
  local sim_opts = { seed = opts.seed or "fo.testing" }
  for k, v in pairs(opts.sim_options or {}) do sim_opts[k] = v end
  local st = setmetatable({ recipe = recipe, stack = opts.stack or "test",
    config = opts.config or {}, fast = opts.fast ~= false, parallel = opts.parallel }, Stack)
  st.sim = fo.sim.new(sim_opts)
  if st.fast then st.sim.timing = M.FAST end
  st.dir = M.tmpdir()
  open[st] = true
  if opts.before then opts.before(st.sim, st.config) end
  st:run()
  return st
end

--- Runs the engine again on the same simulator and state directory: mode "apply"
--- (default: a rerun, or an update with other config), "plan" or "destroy". opts.config
--- replaces the config given so far; opts.parallel: this run's --parallel. Returns the exit code (also st.code; st.doc,
--- st.outputs, st.out, st.err are this run's).
function Stack:run(opts)
  opts = opts or {}
  if opts.config then self.config = opts.config end
  local out, err = {}, {}
  local o = { recipe = self.recipe, sim = self.sim, dir = self.dir, stack = self.stack,
    config = self.config, mode = opts.mode, parallel = opts.parallel or self.parallel,
    out = function(s) out[#out + 1] = s end,
    err = function(s) err[#err + 1] = s end }
  self.code, self.doc = with_fast_dynamodb(self.fast, function() return engine.run(o) end)
  self.out, self.err = table.concat(out), table.concat(err)
  self.outputs = self.doc and self.doc.outputs or {}
  return self.code
end

--- Raises an error with the run's output unless it exited 0.
function Stack:check()
  if self.code ~= 0 then
    error(("fo.testing: %s exited %s:\n%s%s"):format(self.recipe, tostring(self.code),
      self.out, self.err), 2)
  end
  return self
end

--- The stack's resources destroyed (from its state); returns the exit code.
function Stack:destroy() return self:run{ mode = "destroy" } end

--- An AWS client (aws.<service>) bound to the stack's simulator, in `region` (IAM and
--- Route 53 are global: any region, us-east-1 by convention).
function Stack:client(service, region)
  return self.sim:client(service, { region = region or "us-east-1" })
end

--- Moves the simulator's virtual clock `seconds` forward (health checks, alarms and
--- transitions falling due run on the way).
function Stack:advance(seconds) self.sim:advance(seconds) end

--- Mutating calls the simulator has answered so far (a rerun that changes nothing adds none).
function Stack:mutating_calls() return self.sim:count{ mutating = true } end

--- The failover drill (lua/fo/drill.lua) on the stack's outputs: returns its result
--- (res.ok, res.problems, res.detection, res.traffic, ...) and the timeline's lines. opts:
--- drill.run's (traffic = {knob = value}, or false for none).
function Stack:drill(opts)
  local lines = {}
  local o = { print = function(l) lines[#lines + 1] = l end }
  for k, v in pairs(opts or {}) do o[k] = v end
  local res = drill.run(self.sim, self.outputs, o)
  return res, lines
end

--- Removes the state directory (the simulator goes with the stack's last reference).
function Stack:close()
  if self.dir then M.rmtree(self.dir) end
  self.dir = nil
  open[self] = nil
end

--- Closes every stack M.apply made that is still open (their state directories go): for a
--- suite's end, e.g. LuaUnit's global teardownSuite, when stacks are shared between tests.
function M.close_all()
  for st in pairs(open) do st:close() end
end

-- Reading back ---------------------------------------------------------------------------

--- {Key=, Value=} lists (EC2, ELBv2, IAM, ...) as a {key = value} map.
function M.tag_map(list)
  local m = {}
  for _, t in ipairs(list or {}) do m[t.Key] = t.Value end
  return m
end

--- An IAM policy document as IAM returns it (URL-encoded JSON) decoded to a table.
function M.policy(text)
  if text:sub(1, 1) ~= "{" then
    text = text:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return require("cjson").decode(text)
end

--- A launch template's user data (base64, as EC2 returns it) as text.
function M.user_data(b64) return fo.crypto.base64_decode(b64) end

--- The part of an ELBv2 ARN that CloudWatch's LoadBalancer and TargetGroup dimensions
--- take: "app/NAME/ID" for a load balancer, "targetgroup/NAME/ID" for a target group.
function M.arn_suffix(arn)
  return arn:match(":loadbalancer/(.+)$") or arn:match(":(targetgroup/.+)$")
end

return M
