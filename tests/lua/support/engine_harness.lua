-- Helpers for the engine tests: run a recipe (a function) in-process against a simulator
-- with the output captured, list what the simulator holds, read the state file.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local testlib = require "support.testlib"
require "support.engine_types"
local engine = require "fo.engine"

local H = {}
H.REGION = "us-east-1"

--- A simulator for a test (seeded; opts are fo.sim.new's).
function H.sim(opts)
  opts = opts or {}
  opts.seed = opts.seed or 7
  local sim = fo.sim.new(opts)
  -- The test region holds its default VPC from the start, as an account's regions do (the
  -- simulator makes it on a region's first EC2 call): a dump taken before a run then has
  -- it, and only what the run did differs. The call is not one of the run's.
  sim:invoke("ec2", H.REGION, "DescribeVpcs", {})
  sim.recorder:clear()
  return sim
end

--- A fresh state directory (removed by H.cleanup).
function H.dir()
  return testlib.tmpdir()
end

function H.cleanup(dir)
  if dir then testlib.rmtree(dir) end
end

--- The per-test fixture of a LuaUnit class: before each test, a fresh simulator and state
--- directory (f.sim, f.dir) handed to setup(f), which keeps them in the test file's locals
--- (and may apply a starting stack with f.run); after it, the directory is removed. Returns
--- f: f.run(recipe, opts) is H.run with the current simulator and directory; f.renew()
--- replaces both mid-test (the old directory removed) and calls setup again.
function H.fixture(class, setup)
  local f = {}
  function f.run(recipe, opts)
    local o = { sim = f.sim, dir = f.dir }
    for k, v in pairs(opts or {}) do o[k] = v end
    return H.run(recipe, o)
  end
  function f.renew()
    H.cleanup(f.dir)
    f.sim, f.dir = H.sim(), H.dir()
    if setup then setup(f) end
  end
  function class.setUp() f.renew() end
  function class.tearDown()
    H.cleanup(f.dir)
    f.sim, f.dir = nil, nil
  end
  return f
end

--- Runs `recipe` (a function) with engine.run; opts are engine.run's (sim and dir needed).
--- Returns code, doc, stdout text, stderr text.
function H.run(recipe, opts)
  local out, err = {}, {}
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.recipe = recipe
  o.out = function(s) out[#out + 1] = s end
  o.err = function(s) err[#err + 1] = s end
  local code, doc = engine.run(o)
  return code, doc, table.concat(out), table.concat(err)
end

-- Filters leaving out the region's default VPC and its default subnets: AWS made them,
-- not the tests (H.default_vpc tells whether they are still whole).
local NOT_DEFAULT_VPC = { Filters = { { Name = "is-default", Values = { "false" } } } }
local NOT_DEFAULT_SUBNET = { Filters = { { Name = "default-for-az", Values = { "false" } } } }

--- Everything the test types can make that the simulator holds in `region`: a sorted
--- list of "kind id" strings (default VPC security groups and the default VPC left out).
function H.inventory(sim, region)
  region = region or H.REGION
  local out = {}
  for _, v in ipairs(sim:invoke("ec2", region, "DescribeVpcs", NOT_DEFAULT_VPC).Vpcs) do
    out[#out + 1] = "vpc " .. v.VpcId
  end
  for _, s in ipairs(sim:invoke("ec2", region, "DescribeSubnets", NOT_DEFAULT_SUBNET).Subnets) do
    out[#out + 1] = "subnet " .. s.SubnetId
  end
  for _, g in ipairs(sim:invoke("ec2", region, "DescribeSecurityGroups", {}).SecurityGroups) do
    if g.GroupName ~= "default" then out[#out + 1] = "sg " .. g.GroupId end
  end
  for _, t in ipairs(sim:invoke("sns", region, "ListTopics", {}).Topics or {}) do
    out[#out + 1] = "topic " .. t.TopicArn
  end
  for _, r in ipairs(sim:invoke("iam", nil, "ListRoles", {}).Roles) do
    out[#out + 1] = "role " .. r.RoleName
  end
  for _, z in ipairs(sim:invoke("route53", nil, "ListHostedZones", {}).HostedZones) do
    out[#out + 1] = "zone " .. z.Id:match("([^/]+)$")
  end
  table.sort(out)
  return out
end

--- The region's default VPC as the simulator holds it: "vpc-… subnets=N igw=igw-… tags=N"
--- (or "none"), to compare before and after a run that must leave it alone.
function H.default_vpc(sim, region)
  region = region or H.REGION
  local v = sim:invoke("ec2", region, "DescribeVpcs",
    { Filters = { { Name = "is-default", Values = { "true" } } } }).Vpcs[1]
  if not v then return "none" end
  local by_vpc = { Filters = { { Name = "vpc-id", Values = { v.VpcId } } } }
  local subnets = sim:invoke("ec2", region, "DescribeSubnets", by_vpc).Subnets
  local igw = sim:invoke("ec2", region, "DescribeInternetGateways",
    { Filters = { { Name = "attachment.vpc-id", Values = { v.VpcId } } } }).InternetGateways[1]
  return ("%s subnets=%d igw=%s tags=%d"):format(v.VpcId, #subnets,
    igw and igw.InternetGatewayId or "none", #(v.Tags or {}))
end

local function tag_map(tags)
  local m = {}
  for k, v in pairs(tags or {}) do
    if type(v) == "table" then m[v.Key] = v.Value else m[k] = v end
  end
  return m
end

--- What the test types can make that the simulator holds in `region`, with their tags:
--- a list of {kind=, id=, tags = {key = value}} (default security groups left out), sorted
--- by kind and id. Read through the API (sim:invoke), as a user would list them.
function H.resources(sim, region)
  region = region or H.REGION
  local out = {}
  local function add(kind, id, tags) out[#out + 1] = { kind = kind, id = id, tags = tag_map(tags) } end
  for _, v in ipairs(sim:invoke("ec2", region, "DescribeVpcs", NOT_DEFAULT_VPC).Vpcs) do
    add("vpc", v.VpcId, v.Tags)
  end
  for _, s in ipairs(sim:invoke("ec2", region, "DescribeSubnets", NOT_DEFAULT_SUBNET).Subnets) do
    add("subnet", s.SubnetId, s.Tags)
  end
  for _, g in ipairs(sim:invoke("ec2", region, "DescribeSecurityGroups", {}).SecurityGroups) do
    if g.GroupName ~= "default" then add("sg", g.GroupId, g.Tags) end
  end
  for _, t in ipairs(sim:invoke("sns", region, "ListTopics", {}).Topics or {}) do
    add("topic", t.TopicArn, sim:invoke("sns", region, "ListTagsForResource",
      { ResourceArn = t.TopicArn }).Tags)
  end
  for _, r in ipairs(sim:invoke("iam", nil, "ListRoles", {}).Roles) do
    add("role", r.RoleName, sim:invoke("iam", nil, "ListRoleTags", { RoleName = r.RoleName }).Tags)
  end
  for _, z in ipairs(sim:invoke("route53", nil, "ListHostedZones", {}).HostedZones) do
    local id = z.Id:match("([^/]+)$")
    add("zone", id, sim:invoke("route53", nil, "ListTagsForResource",
      { ResourceType = "hostedzone", ResourceId = id }).ResourceTagSet.Tags)
  end
  table.sort(out, function(a, b)
    if a.kind ~= b.kind then return a.kind < b.kind end
    return a.id < b.id
  end)
  return out
end

--- Leaks and duplicates: what the simulator holds (H.resources) against the state document
--- `st`. Returns a list of problems (empty when none): a resource the simulator holds that
--- the state does not record (leaked), a recorded one the simulator does not hold, two
--- resources with the same kind and fo:name tag (duplicate; the old instances of replaced
--- resources, recorded as deposed until phase 2 deletes them, are not; an untagged one
--- goes by the URN the state records it under), an intent left.
function H.ownership_problems(sim, st)
  local problems = {}
  local recorded, deposed = {}, {}
  for _, r in pairs(st.resources) do recorded[r.id] = r.urn end
  for _, r in ipairs(st.deposed) do recorded[r.id], deposed[r.id] = r.urn, true end
  local held, names = {}, {}
  for _, r in ipairs(H.resources(sim)) do
    held[r.id] = true
    if not recorded[r.id] then
      problems[#problems + 1] = ("leaked: %s %s (fo:name %s) is in the simulator, not in the state")
        :format(r.kind, r.id, tostring(r.tags["fo:name"]))
    end
    -- untagged (a zone whose create died before its ChangeTagsForResource, then adopted
    -- by its token): named by the URN the state records it under
    local key = deposed[r.id] and r.id
      or (r.kind .. " " .. tostring(r.tags["fo:name"] or recorded[r.id] or r.id))
    if names[key] then
      problems[#problems + 1] = ("duplicate: two resources %s (%s and %s)"):format(key, names[key], r.id)
    end
    names[key] = r.id
  end
  for id, urn in pairs(recorded) do
    if not held[id] then
      problems[#problems + 1] = ("the state records %s (%s), the simulator has no such resource")
        :format(urn, id)
    end
  end
  for urn in pairs(st.intents) do problems[#problems + 1] = "intent left: " .. urn end
  table.sort(problems)
  return problems
end

-- Bookkeeping of the simulator that is not a resource nor a property: counters (seq,
-- _seq), Route 53's rate buckets (virtual clock), change log and used CallerReferences
-- (a token is spent even when its zone is deleted, as at AWS), and the account's default
-- DHCP options (AWS has them from the start; the sim makes them on first use).
local DUMP_IGNORED = { seq = true, _seq = true, rate_buckets = true, changes = true,
  zone_refs = true, hc_refs = true, dhcp_options_id = true }

-- What differs between two runs that made the same things: creation times and the
-- idempotency tokens of creates (H.sim_dump(sim, {times = false})).
local TIMES = { CreateDate = true, created_at = true, created = true, CreationTime = true,
  CallerReference = true }

local function canonical(v, opts)
  if v == "" then return nil end -- "" is no value (IAM can set a description empty, not remove it)
  if type(v) ~= "table" then return v end
  -- a create's token tag (fo:token, in a tag list or map) is new for every create, too
  if opts.times == false and v.Key == "fo:token" then return nil end
  local out, n = {}, 0
  for k, x in pairs(v) do
    if not DUMP_IGNORED[k] and not (opts.times == false and (TIMES[k] or k == "fo:token")) then
      local c = canonical(x, opts)
      if c ~= nil then out[k] = c; n = n + 1 end
    end
  end
  if opts.times == false and n > 0 and #v > 0 and #out ~= n then
    -- a list that lost an element (a fo:token tag): closed up, in order
    local list = {}
    for i = 1, #v do if out[i] ~= nil then list[#list + 1] = out[i] end end
    if #list == n then out = list end
  end
  if n == 0 then return nil end -- an empty table is the same as none (made on first use)
  -- tag lists in key order (AWS does not order tags)
  if #out == n and type(out[1]) == "table" and out[1].Key ~= nil then
    table.sort(out, function(a, b) return tostring(a.Key) < tostring(b.Key) end)
  end
  return out
end

--- A canonical dump of everything the simulator holds (every account, region and
--- service): resources with their properties and tags, without counters, clocks of rate
--- limits, empty containers and empty strings; tag lists sorted. Two dumps are equal when the
--- simulator holds the same things. opts.times = false: without creation times and
--- idempotency tokens, the fo:token tag included (to compare two runs).
function H.sim_dump(sim, opts)
  return canonical(sim.store.data.accounts, opts or {}) or {}
end

--- What the simulator holds (H.sim_dump(sim, opts)) but for what it changes by itself as
--- the virtual clock runs or as calls come (support.sim_clock_data: metric data points,
--- the load balancers' ENIs, health checkers' requests and evaluations).
function H.sim_holdings(sim, opts)
  local d = require("support.sim_clock_data").strip(H.sim_dump(sim, opts))
  return canonical(d, opts or {}) or {} -- what is left empty is the same as none
end

--- `after` (a dump of H.sim_holdings) without the KMS keys `before` did not hold that are
--- pending deletion: KMS deletes no key at once, so a rollback or destroy leaves the keys it
--- undid scheduled for deletion (as good as gone). Any other new key stays (a difference).
function H.without_new_pending_keys(before, after)
  for account, regions in pairs(after) do
    for region, services in pairs(type(regions) == "table" and regions or {}) do
      local keys = type(services) == "table" and services.kms and services.kms.keys
      local had = ((before[account] or {})[region] or {}).kms
      for id, k in pairs(keys or {}) do
        if k.KeyState == "PendingDeletion" and not (had and had.keys and had.keys[id]) then
          keys[id] = nil
        end
      end
    end
  end
  return after
end

--- The first difference between two values, as a path and both values (nil when equal).
function H.first_difference(a, b, path)
  path = path or "$"
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then return nil end
    local function show(v) return v == nil and "(absent)" or require("fo.json").encode(v) end
    return ("%s: %s vs %s"):format(path, show(a), show(b))
  end
  local keys = {}
  for k in pairs(a) do keys[#keys + 1] = k end
  for k in pairs(b) do if a[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do
    local d = H.first_difference(a[k], b[k], path .. "." .. tostring(k))
    if d then return d end
  end
  return nil
end

--- The stack's state document (nil when there is no file) — the state file with its log
--- replayed, as the engine reads it — its text (the state file's, or the replayed document
--- encoded when the log holds records), and the read's notices (a torn log tail).
function H.state(dir, stack)
  local path = ("%s/%s.state.json"):format(dir, stack or "dev")
  if not testlib.read(path) then return nil end
  local doc, text, info = require("fo.engine.state").read(path)
  return doc, text, info.notices
end

--- Mutating calls the simulator answered since `since` (a count from sim:count).
function H.mutating(sim)
  return sim:count({ mutating = true })
end

--- Names of operations answered, in order, matching `filter` ("Service.Op" strings).
function H.ops(sim, filter)
  local out = {}
  for _, c in ipairs(sim:calls(filter)) do out[#out + 1] = c.service .. "." .. c.operation end
  return out
end

--- The position of the first call to service.Op in a list from H.ops (or nil).
function H.index(list, name)
  for i, v in ipairs(list) do if v == name then return i end end
  return nil
end

--- A small network: a VPC with `n` subnets, a security group, a topic and a role.
function H.network(opts)
  opts = opts or {}
  return function()
    local vpc = fo.resource("test:vpc", "main", { cidr = opts.cidr or "10.0.0.0/16",
      tags = opts.vpc_tags })
    for i = 1, opts.subnets or 2 do
      fo.resource("test:subnet", "s" .. i, { vpc_id = vpc.id,
        cidr = (opts.subnet_cidr or "10.0.%d.0/24"):format(i) })
    end
    fo.resource("test:security_group", "web", { vpc_id = vpc.id, name = opts.sg_name or "web" })
    fo.resource("test:topic", "alerts", { name = "alerts", display_name = opts.display or "Alerts" })
    fo.resource("test:role", "app", { name = opts.role_name or "app" })
    fo.output("vpc_id", vpc.id)
  end
end

return H
