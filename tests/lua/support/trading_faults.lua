-- The fault matrix of recipes/trading.lua's update runs (tests/recipes/test_trading_faults_*.lua,
-- one ctest entry per kind of update so that ctest -j runs them side by side): the stack is
-- applied once, its simulator and state files are kept, and for every mutating call k = 1..N
-- of the update both are copied back, the update runs with call k failing
-- (fail_mutating_call), and then:
--   * k in phase 1: exit 4, and the stack is as before the run — the same resources with
--     the same properties (state), the simulator holding the same things (a canonical dump
--     of every account, region and service) — up to what re-creating a deleted resource
--     changes by design (docs/engine.md, "Rollback"): its new ids, and the ids the
--     dependents restored with it name; a refresh finds no drift;
--   * k in phase 2 (a deletion after the commit point): exit 3, the state is what the
--     simulator holds (a refresh finds no drift), a rerun converges to exactly what a
--     clean update leaves (nothing leaked, nothing twice) and a second rerun changes nothing.
-- Zero simulated latency and zero transition times: a run takes a fraction of a second.
-- FO_FAULT_MATRIX_STRIDE=s runs every s-th k only (and always the last); the sanitizer
-- build sets it (tests/CMakeLists.txt).
-- Not a test (no test_ prefix).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local engine = require "fo.engine"
local dynamodb_sim = require "fo.sim.services.dynamodb"

local M = {}

local RECIPE = testlib.tests_dir .. "/../recipes/trading.lua"

-- Transitions take no time: waiters see the end state at their first poll.
local TIMING = { lb_provisioning = 0, lb_eni_release = 0, instance_terminate = 0, group_delete = 0,
  profile_propagation = 0, terminated_visible = 0 }

--- The kinds of update (config on top of the applied stack's defaults).
M.KINDS = {
  -- every name changes: every name-unique resource is replaced delete-first
  suffix = { config = { environmentSuffix = "upd" } },
  -- the groups' sizes: updates in place
  capacity = { config = { primaryCapacity = 3, standbyCapacity = 2, maxCapacity = 8 } },
  -- HTTPS: a 443 listener with the certificate, port 80 redirects, an HTTPS health check
  -- (the certificates: issued ACM certificates the account holds before the stack is built)
  certificate = { certificates = true },
}

-- config of `kind` on the snapshot `snap`
local function config_of(kind, snap)
  local k = M.KINDS[kind]
  if k.certificates then
    return { primaryCertificateArn = snap.certs["eu-south-1"],
      standbyCertificateArn = snap.certs["eu-central-1"] }
  end
  return k.config
end

local function run(sim, dir, config, mode)
  local out, err = {}, {}
  local saved = dynamodb_sim.TIMING
  local t = {}
  for k in pairs(saved) do t[k] = 0 end
  dynamodb_sim.TIMING = t
  local ok, code, doc = pcall(engine.run, { recipe = RECIPE, sim = sim, dir = dir, config = config,
    mode = mode, out = function(s) out[#out + 1] = s end, err = function(s) err[#err + 1] = s end })
  dynamodb_sim.TIMING = saved
  if not ok then error(code, 0) end
  return code, doc, table.concat(out), table.concat(err)
end

-- The applied stack, kept as files: { sim = path, state = text, log = text or nil }.
local function snapshot(with_certificates)
  local sim, dir = fo.sim.new{ seed = "trading-faults" }, H.dir()
  sim.timing = TIMING
  local certs = {}
  if with_certificates then
    local issued = require("support.acm").issued
    certs["eu-south-1"], certs["eu-central-1"] = issued(sim, "eu-south-1"), issued(sim, "eu-central-1")
  end
  local code, _, out, err = run(sim, dir, {})
  lu.assertEquals(code, 0, out .. err)
  local snap = { dir = H.dir(), certs = certs }
  snap.sim = snap.dir .. "/sim.json"
  sim.store:save(snap.sim)
  snap.state = testlib.read(dir .. "/dev.state.json")
  snap.log = testlib.read(dir .. "/dev.state.log")
  H.cleanup(dir)
  return snap
end

-- A simulator and a state directory as the snapshot left them (the sim is in memory: it
-- is not saved after each call).
local function restore(snap)
  local sim = fo.sim.new{ file = snap.sim }
  sim.file, sim.timing = nil, TIMING
  local dir = H.dir()
  testlib.write(dir .. "/dev.state.json", snap.state)
  if snap.log then testlib.write(dir .. "/dev.state.log", snap.log) end
  return sim, dir
end

-- Renames ------------------------------------------------------------------------------

-- Pairs of {new, old} strings where `b` (after) has another value than `a` (before) at the
-- same place.
local function pair_strings(a, b, out)
  if type(a) == "string" and type(b) == "string" then
    if a ~= b then out[#out + 1] = { b, a } end
  elseif type(a) == "table" and type(b) == "table" then
    for k, v in pairs(a) do pair_strings(v, b[k], out) end
  end
end

-- What re-creating resources renamed, new → old: the ids and outputs the state records
-- (ARNs, DNS names, the alarms of a scaling policy) and a re-created table's internal id.
local function renames(st0, st1, dump0, dump1)
  local out = {}
  for urn, r in pairs(st0.resources) do
    local r1 = st1.resources[urn]
    if r1 then
      pair_strings(r.id, r1.id, out)
      pair_strings(r.outputs, r1.outputs, out)
    end
  end
  for account, regions in pairs(dump0) do
    for region, services in pairs(regions) do
      local after = dump1[account] and dump1[account][region] or {}
      local t0, t1 = services.dynamodb and services.dynamodb.tables or {},
        after.dynamodb and after.dynamodb.tables or {}
      for name, t in pairs(t0) do
        if t1[name] then pair_strings(t.id, t1[name].id, out) end
      end
    end
  end
  table.sort(out, function(x, y) return #x[1] > #y[1] end)
  return out
end

local ISO_TIME = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*"

-- `v` with every renamed string (in keys and values) back to its old value, times (epoch
-- seconds, ISO stamps) replaced by "T" and the simulator's history and bookkeeping left
-- out: what happened, not what is configured — what the simulator changes by itself
-- (support.sim_clock_data: metric data points, the load balancers' ENIs, the requests
-- Route 53's checkers sent them, the checks' and alarms' evaluations, alarm history and SNS
-- deliveries), Auto Scaling activities, a health check's version, spent idempotency tokens
-- (health checks' CallerReferences, EC2 ClientTokens: AWS keeps them), and the ELBAccessLogTestFile
-- objects ELB writes when a load balancer turns its access logs on (a rollback that
-- re-creates one writes another version).
local HISTORY = require("support.sim_clock_data").keys()
for _, k in ipairs{ "activities", "ip_counter", "HealthCheckVersion", "retired", "hc_refs",
    "client_tokens" } do
  HISTORY[k] = true
end
local normalize

-- An Auto Scaling group's instances are its capacity: which instances a scale-out and the
-- scale-in that undoes it leave is the group's choice (AWS's too: its termination policy
-- picks the AZ and the instance), so they are compared as a sorted list without ids,
-- addresses and placement, the terminating ones left out.
local PLACEMENT = { InstanceId = true, PrivateIpAddress = true, AvailabilityZone = true,
  SubnetId = true }
local function instances(list, renamed)
  local out = {}
  for _, inst in ipairs(list) do
    if inst.LifecycleState ~= "Terminating" and inst.LifecycleState ~= "Terminated" then
      local c = {}
      for k, x in pairs(inst) do
        if not PLACEMENT[k] then c[k] = x end
      end
      out[#out + 1] = normalize(c, renamed)
    end
  end
  local json = require "fo.json"
  table.sort(out, function(a, b) return json.encode(a) < json.encode(b) end)
  return out
end

-- Security group rules by content: a re-created group's own egress rule (AWS makes it
-- with the group, no state records it) has a new id.
local function unnamed(map, renamed)
  local out = {}
  for _, rule in pairs(map) do
    local c = {}
    for k, x in pairs(rule) do
      if k ~= "SecurityGroupRuleId" and k ~= "id" then c[k] = x end
    end
    out[#out + 1] = normalize(c, renamed)
  end
  local json = require "fo.json"
  table.sort(out, function(a, b) return json.encode(a) < json.encode(b) end)
  return out
end

function normalize(v, renamed)
  if type(v) == "string" then
    for _, r in ipairs(renamed) do
      if v:find(r[1], 1, true) then
        v = v:gsub(r[1]:gsub("%p", "%%%0"), (r[2]:gsub("%%", "%%%%")))
      end
    end
    return (v:gsub(ISO_TIME, "T"))
  elseif type(v) == "number" then
    return (v >= 1e9 and v < 1e10) and "T" or v
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do
      if k == "Instances" and x[1] and x[1].LifecycleState then
        out[k] = instances(x, renamed)
      elseif k == "security_group_rules" then
        out[k] = unnamed(x, renamed)
      elseif not HISTORY[k] and not (type(k) == "string" and k:match("/ELBAccessLogTestFile$")) then
        out[normalize(k, renamed)] = normalize(x, renamed)
      end
    end
    return out
  end
  return v
end
M.normalize = normalize

-- The state's resources as compared: type, name, region, inputs, outputs, deps.
local function resources(st, renamed)
  local out = {}
  for urn, r in pairs(st.resources) do
    out[urn] = normalize({ type = r.type, name = r.name, region = r.region, inputs = r.inputs,
      outputs = r.outputs, deps = r.deps }, renamed)
  end
  return out
end

-- The simulator's dump, after Auto Scaling and DynamoDB have settled what their clock made
-- due (an instance whose termination time has come is gone, a deleted replica too).
local function dump(sim)
  for _, region in ipairs({ "eu-south-1", "eu-central-1" }) do
    sim:invoke("autoscaling", region, "DescribeAutoScalingGroups", {})
    for _, t in ipairs(sim:invoke("dynamodb", region, "ListTables", {}).TableNames or {}) do
      sim:invoke("dynamodb", region, "DescribeTable", { TableName = t })
    end
  end
  return H.sim_dump(sim, { times = false })
end

local function assert_no_drift(sim, dir, config, what)
  local code, _, out, err = run(sim, dir, config, "refresh")
  lu.assertEquals(code, 0, what .. ": refresh\n" .. out .. err)
  lu.assertStrContains(out, "Refresh complete: no drift.", false, what .. ": the state is not what the simulator holds")
end

-- The matrix -----------------------------------------------------------------------------

--- Runs the matrix of update `kind` (a key of M.KINDS). Returns { n =, phase1 =, runs = }.
function M.matrix(kind)
  local snap = snapshot(M.KINDS[kind].certificates)
  local config = config_of(kind, snap)
  -- the clean update: N, and what it leaves
  local sim, dir = restore(snap)
  local dump0, st0 = dump(sim), H.state(dir)
  local code, doc, out, err = run(sim, dir, config)
  lu.assertEquals(code, 0, out .. err)
  lu.assertTrue(H.mutating(sim) > 0, kind .. ": the update changes something")
  local n = H.mutating(sim)
  local clean_dump, clean_st = dump(sim), H.state(dir)
  H.cleanup(dir)

  local stride = tonumber(os.getenv("FO_FAULT_MATRIX_STRIDE") or "1") or 1
  local phase1, runs, in_phase2 = 0, 0, false
  for k = 1, n do
    if (k - 1) % stride == 0 or k == n then
      runs = runs + 1
      local what = ("%s k=%d/%d"):format(kind, k, n)
      sim, dir = restore(snap)
      sim:set_knob("fail_mutating_call", k)
      code, doc, out, err = run(sim, dir, config)
      sim:set_knob("fail_mutating_call", 0)
      lu.assertStrContains(err, "FoInjectedFault", false, what)
      if code == 4 then
        lu.assertFalse(in_phase2, what .. ": rolled back, but an earlier k failed in phase 2\n" .. out .. err)
        phase1 = k
        local dump1, st1 = dump(sim), H.state(dir)
        lu.assertEquals({ st1.deposed, st1.intents }, { {}, {} }, what)
        local renamed = renames(st0, st1, dump0, dump1)
        local d = H.first_difference(resources(st0, {}), resources(st1, renamed))
        lu.assertNil(d, what .. ": the stack's resources are not as before the run: " .. tostring(d))
        d = H.first_difference(normalize(dump0, {}), normalize(dump1, renamed))
        lu.assertNil(d, what .. ": the simulator is not as before the run: " .. tostring(d))
        assert_no_drift(sim, dir, {}, what)
      else
        lu.assertEquals(code, 3, what .. ": neither rolled back nor stopped after the commit point\n"
          .. out .. err)
        lu.assertStrContains(err, "Every create and update succeeded", false, what)
        in_phase2 = true
        for _, e in ipairs(doc.errors) do
          if e.action then lu.assertNotNil(e.action:match("^delete"), what .. ": " .. e.action) end
        end
        assert_no_drift(sim, dir, config, what)
        code, _, out, err = run(sim, dir, config)
        lu.assertEquals(code, 0, what .. ": rerun\n" .. out .. err)
        local dump1, st1 = dump(sim), H.state(dir)
        local renamed = renames(clean_st, st1, clean_dump, dump1)
        local d = H.first_difference(resources(clean_st, {}), resources(st1, renamed))
        lu.assertNil(d, what .. ": the rerun's state is not a clean update's: " .. tostring(d))
        d = H.first_difference(normalize(clean_dump, {}), normalize(dump1, renamed))
        lu.assertNil(d, what .. ": the rerun does not leave what a clean update does: " .. tostring(d))
        sim.recorder:clear()
        code = run(sim, dir, config)
        lu.assertEquals(code, 0, what)
        lu.assertEquals(H.mutating(sim), 0, what .. ": a second rerun changes nothing")
      end
      H.cleanup(dir)
    end
  end
  H.cleanup(snap.dir)
  print(("\ntrading fault matrix, %s: N = %d mutating calls, %d runs (stride %d); phase 1 "
    .. "(rolled back): k <= %d (the last run there), phase 2 (exit 3, rerun converges): k > %d")
    :format(kind, n, runs, stride, phase1, phase1))
  return { n = n, phase1 = phase1, runs = runs }
end

return M
