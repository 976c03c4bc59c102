-- How close a parallel apply comes to the graph's critical path, measured in one run and
-- printed as ratios (docs/engine.md, "Performance").
--
-- The graph (test types of tests/lua/support/engine_types.lua on the in-process simulator):
-- topic chains of 2, 4 and 6 (each topic's display name is the previous one's ARN), a VPC
-- fanning out to 30 subnets that fan back in to a security group, then a chain of 4 topics
-- after it (the critical path), and 20 independent roles. A zero-latency dry run counts the calls each
-- resource's create makes (the sim's recorder, per resource); the critical path is the
-- longest dependency path weighted by those counts. Then the same graph is applied on a
-- fresh simulator with LATENCY ms per call at several --parallel limits, and the wall time
-- is compared with critical path x LATENCY and, for a bounded --parallel, with the lower
-- bound max(critical path, total calls / parallel) x LATENCY. Each figure is the median
-- of RUNS applies (the machine may be shared).
-- usage: fo-run bench/engine_critical_path.lua [LATENCY_MS] [RUNS]   (from the repository root)
package.path = "tests/lua/?.lua;" .. package.path
local H = require "support.engine_harness"
local types = require "fo.engine.types"

local LATENCY_MS = tonumber(arg[1] or "100")
local RUNS = tonumber(arg[2] or "3")
local UNBOUNDED = 1000 -- fo-run's largest --parallel: more than the graph is wide

-- The graph as data: { name=, type=, deps = {names}, props = function(h) (h: handles) }.
local graph, by_name = {}, {}
local function node(name, tname, deps, props)
  local n = { name = name, type = tname, deps = deps, props = props }
  graph[#graph + 1], by_name[name] = n, n
  return n
end

local function topic_chain(prefix, len, first_dep)
  local prev = first_dep
  for i = 1, len do
    local name = ("%s%d"):format(prefix, i)
    local p = prev
    node(name, "test:topic", { p }, function(h)
      -- 2 calls (CreateTopic, SetTopicAttributes) when a display name is set
      return { name = name, display_name = p and h[p][by_name[p].ref] or "" }
    end)
    prev = name
  end
  return prev
end

topic_chain("short", 2)
topic_chain("mid", 4)
topic_chain("long", 6)
node("vpc", "test:vpc", {}, function()
  return { cidr = "10.0.0.0/16", dns_hostnames = true }  -- CreateVpc + ModifyVpcAttribute
end)
by_name.vpc.ref = "id"
local subnets = {}
for i = 1, 30 do
  local name = "subnet" .. i
  subnets[#subnets + 1] = name
  node(name, "test:subnet", { "vpc" }, function(h)
    return { vpc_id = h.vpc.id, cidr = ("10.0.%d.0/24"):format(i), public_ip = i % 2 == 0 }
  end)
end
local sg_deps = { "vpc" }
for _, s in ipairs(subnets) do sg_deps[#sg_deps + 1] = s end
node("sg", "test:security_group", sg_deps, function(h)
  return { vpc_id = h.vpc.id, name = "web" }
end)
by_name.sg.ref = "id"
topic_chain("after", 4, "sg")
for i = 1, 20 do
  node("role" .. i, "test:role", {}, function() return { name = "role" .. i } end)
end
for _, n in ipairs(graph) do
  if n.type == "test:topic" then n.ref = "arn" end
end

local function recipe()
  local h = {}
  for _, n in ipairs(graph) do
    local deps = {}
    for _, d in ipairs(n.deps) do deps[#deps + 1] = h[d] end
    h[n.name] = fo.resource(n.type, n.name, n.props(h), { depends_on = deps })
  end
end

-- Calls per resource: every create counts the sim's calls it made (the dry run applies one
-- operation at a time, so the difference is its own).
local calls_of, counting_sim = {}, nil
for _, tname in ipairs({ "test:topic", "test:vpc", "test:subnet", "test:security_group",
  "test:role" }) do
  local t = types.get(tname)
  local create = t.create
  t.create = function(ctx, p)
    local before = counting_sim and counting_sim:count() or 0
    local id, outputs = create(ctx, p)
    if counting_sim then calls_of[ctx.name] = counting_sim:count() - before end
    return id, outputs
  end
end

local function apply(sim, parallel)
  local dir = H.dir()
  local t0 = fo.now()
  local code, _, out, err = H.run(recipe, { sim = sim, dir = dir, parallel = parallel })
  local wall = fo.now() - t0
  H.cleanup(dir)
  assert(code == 0, ("apply failed (%d): %s%s"):format(code, out, err))
  return wall
end

-- 1. Dry run: zero latency, one operation at a time, calls per resource.
counting_sim = H.sim()
apply(counting_sim, 1)
local total = counting_sim:count()
local sum = 0
for _, n in ipairs(graph) do
  assert(calls_of[n.name], "no create counted for " .. n.name)
  sum = sum + calls_of[n.name]
end
assert(sum == total, ("creates made %d calls, the sim answered %d"):format(sum, total))
counting_sim = nil

-- 2. Critical path: the longest path, each resource weighing its calls.
local finish, path_of = {}, {}
for _, n in ipairs(graph) do -- declared after its dependencies
  local best, via = 0, nil
  for _, d in ipairs(n.deps) do
    if finish[d] > best then best, via = finish[d], d end
  end
  finish[n.name] = best + calls_of[n.name]
  path_of[n.name] = via
end
local cp, last = 0, nil
for _, n in ipairs(graph) do
  if finish[n.name] > cp then cp, last = finish[n.name], n.name end
end
local path = {}
while last do table.insert(path, 1, ("%s(%d)"):format(last, calls_of[last])); last = path_of[last] end

-- 3. The same graph with latency, at several --parallel limits.
local lat = LATENCY_MS / 1000
print(("graph: %d resources, %d calls; critical path %d calls: %s"):format(#graph, total, cp,
  table.concat(path, " > ")))
print(("latency %d ms per call; critical path x latency = %.2f s"):format(LATENCY_MS, cp * lat))
print(("%-10s %9s %10s %14s %12s"):format("parallel", "wall s", "wall/cp", "bound s", "wall/bound"))
for _, p in ipairs({ UNBOUNDED, 50, 10, 4 }) do
  local walls = {}
  for r = 1, RUNS do walls[r] = apply(H.sim{ latency_ms = LATENCY_MS }, p) end
  table.sort(walls)
  local wall = walls[(RUNS + 1) // 2]
  local bound = math.max(cp, math.ceil(total / p)) * lat
  print(("%-10s %9.3f %10.3f %14.2f %12.3f"):format(p == UNBOUNDED and p .. " (all)" or p, wall,
    wall / (cp * lat), bound, wall / bound))
end
print("target: wall / critical path <= 1.2 with --parallel above the graph's width")
