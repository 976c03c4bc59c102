-- Helpers shared by the simulated EC2's handlers (lua/fo/sim/services/ec2.lua and the
-- files beside this one): resource kinds and their NotFound codes, lookups that honour
-- the eventual-consistency window, tags, Describe filters, pagination, CIDR arithmetic,
-- ClientToken idempotency, and the views of other services' state (ELBv2 load
-- balancers, Auto Scaling instances) that EC2 answers about.
--
-- State layout (ctx.db of service "ec2", per account and region; JSON-safe):
--   seq                 counter giving every resource its creation order (_seq)
--   vpcs, subnets, internet_gateways, route_tables, security_groups,
--   security_group_rules, vpc_endpoints, launch_templates, flow_logs,
--   addresses, nat_gateways                                             maps id → record
--     (names and record fields read by lua/fo/sim/ec2_lookup.lua for ELBv2 and Auto
--     Scaling; a launch template keeps versions[n] = {VersionNumber, LaunchTemplateData})
--   client_tokens       "Op|token" → {id=, digest=}
--   instance_tags       instance id → Tags set with CreateTags on ASG instances
--   instances           instance id → an instance RunInstances started (layout at the
--                       top of ec2/run_instances.lua)
--   default_vpc         {id = the default VPC's id} once made (ec2/default_vpc.lua)
--   dhcp_options_id     the region's default DHCP option set
--   lb_enis             load balancer ARN → what EC2 last saw of it (subnets, groups),
--                       kept a while after its deletion (its ENIs detach late)
-- Records keep AWS member names for what they answer, and `_`-prefixed fields for the
-- simulator's own bookkeeping; the view functions copy only output members, so nothing
-- internal reaches a response (the sim validates outputs against the model).
local crypto = require "fo.crypto"

local M = {}

M.DRY_RUN = "Request would have succeeded, but DryRun flag is set."

---------------------------------------------------------------------------------------
-- Collections and ordering

--- The map `name` of this region's EC2 state, created on first use.
function M.coll(ctx, name)
  local t = ctx.db[name]
  if not t then t = {}; ctx.db[name] = t end
  return t
end

--- The next creation sequence number (Describe answers in creation order).
function M.next_seq(ctx)
  local n = (ctx.db.seq or 0) + 1
  ctx.db.seq = n
  return n
end

--- The records of map `t` in creation order.
function M.sorted(t)
  local out = {}
  for _, r in pairs(t) do out[#out + 1] = r end
  table.sort(out, function(a, b) return (a._seq or 0) < (b._seq or 0) end)
  return out
end

--- A shallow-to-deep copy of plain data (records hold only strings, numbers, booleans
--- and tables).
M.copy = require("fo.sim.records").copy

--- Deterministic lower-case hex derived from `text` (ids that must stay the same for the
--- same input: reservation ids, private IPs, prefix lists).
function M.hash_hex(text, n)
  return crypto.hex(crypto.sha256(text)):sub(1, n or 17)
end

---------------------------------------------------------------------------------------
-- Resource kinds: where they live, their DescribeTags type and their error codes.
-- Messages follow AWS's wording ("The vpc ID 'vpc-…' does not exist").

M.KINDS = {
  vpc = { coll = "vpcs", rtype = "vpc", prefix = "vpc",
    notfound = "InvalidVpcID.NotFound", malformed = "InvalidVpcID.Malformed",
    one = "The vpc ID '%s' does not exist", many = "The vpc IDs '%s' do not exist" },
  subnet = { coll = "subnets", rtype = "subnet", prefix = "subnet",
    notfound = "InvalidSubnetID.NotFound", malformed = "InvalidSubnetID.Malformed",
    one = "The subnet ID '%s' does not exist", many = "The subnet IDs '%s' do not exist" },
  igw = { coll = "internet_gateways", rtype = "internet-gateway", prefix = "igw",
    notfound = "InvalidInternetGatewayID.NotFound",
    malformed = "InvalidInternetGatewayID.Malformed",
    one = "The internetGateway ID '%s' does not exist",
    many = "The internetGateway IDs '%s' do not exist" },
  rtb = { coll = "route_tables", rtype = "route-table", prefix = "rtb",
    notfound = "InvalidRouteTableID.NotFound", malformed = "InvalidRouteTableID.Malformed",
    one = "The routeTable ID '%s' does not exist",
    many = "The routeTable IDs '%s' do not exist" },
  sg = { coll = "security_groups", rtype = "security-group", prefix = "sg",
    notfound = "InvalidGroup.NotFound", malformed = "InvalidGroupId.Malformed",
    one = "The security group '%s' does not exist",
    many = "The security groups '%s' do not exist" },
  sgr = { coll = "security_group_rules", rtype = "security-group-rule", prefix = "sgr",
    notfound = "InvalidSecurityGroupRuleId.NotFound",
    malformed = "InvalidSecurityGroupRuleId.Malformed",
    one = "The security group rule ID '%s' does not exist",
    many = "The security group rule IDs '%s' do not exist" },
  vpce = { coll = "vpc_endpoints", rtype = "vpc-endpoint", prefix = "vpce",
    notfound = "InvalidVpcEndpointId.NotFound", malformed = "InvalidVpcEndpointId.Malformed",
    one = "The Vpc Endpoint Id '%s' does not exist",
    many = "The Vpc Endpoint Ids '%s' do not exist" },
  lt = { coll = "launch_templates", rtype = "launch-template", prefix = "lt",
    notfound = "InvalidLaunchTemplateId.NotFound",
    malformed = "InvalidLaunchTemplateId.Malformed",
    one = "The specified launch template, with template ID %s, does not exist.",
    many = "The specified launch templates, with template IDs %s, do not exist." },
  fl = { coll = "flow_logs", rtype = "vpc-flow-log", prefix = "fl",
    notfound = "InvalidFlowLogId.NotFound", malformed = "InvalidFlowLogId.Malformed",
    one = "These flow log ids in the input list are not found: [TotalCount: 1] %s",
    many = "These flow log ids in the input list are not found: %s" },
  eipalloc = { coll = "addresses", rtype = "elastic-ip", prefix = "eipalloc",
    notfound = "InvalidAllocationID.NotFound", malformed = "InvalidAllocationID.Malformed",
    one = "The allocation ID '%s' does not exist",
    many = "The allocation IDs '%s' do not exist" },
  nat = { coll = "nat_gateways", rtype = "natgateway", prefix = "nat",
    notfound = "NatGatewayNotFound", malformed = "NatGatewayMalformed",
    one = "The Nat Gateway %s was not found", many = "The Nat Gateways %s were not found" },
}
-- Id prefix → kind (CreateTags/DeleteTags take ids of any kind).
M.BY_PREFIX = {}
for name, k in pairs(M.KINDS) do k.name = name; M.BY_PREFIX[k.prefix] = k end

--- True when `id` has the form AWS gives its ids: prefix, '-', 8 or 17 lower-case hex
--- digits (the short form predates 2016 and is still accepted).
function M.well_formed(id, prefix)
  local hex = type(id) == "string" and id:match("^" .. prefix:gsub("%-", "%%-") .. "%-(%x+)$")
  return hex ~= nil and (#hex == 8 or #hex == 17) and hex == hex:lower()
end

local function malformed(ctx, kind, id)
  ctx:fail(kind.malformed, ('Invalid id: "%s" (expecting "%s-...")'):format(id, kind.prefix))
end

--- The record of `id` (a mutation's target: no consistency window), or raises the
--- kind's NotFound (Malformed for an id that cannot be one).
function M.get(ctx, kname, id)
  local kind = M.KINDS[kname]
  local r = ctx.db[kind.coll] and ctx.db[kind.coll][id]
  if r then return r end
  if not M.well_formed(id, kind.prefix) then malformed(ctx, kind, id) end
  ctx:fail(kind.notfound, kind.one:format(id))
end

--- The record of `id` or nil (no error).
function M.find(ctx, kname, id)
  local kind = M.KINDS[kname]
  return id ~= nil and ctx.db[kind.coll] and ctx.db[kind.coll][id] or nil
end

--- True when a Describe may show `r`: EC2 is eventually consistent, and a resource
--- inside its window is invisible (Describe by id answers NotFound, as AWS does right
--- after a create).
function M.visible(ctx, r)
  return not ctx:fresh(r)
end

--- The records named by `ids` for a Describe (nil/empty → nil); any id unknown or still
--- inside its consistency window → the kind's NotFound naming every such id.
function M.describe_ids(ctx, kname, ids)
  if ids == nil or #ids == 0 then return nil end
  local kind = M.KINDS[kname]
  local t = ctx.db[kind.coll] or {}
  local out, missing, seen = {}, {}, {}
  for _, id in ipairs(ids) do
    local r = t[id]
    if r == nil and not M.well_formed(id, kind.prefix) then malformed(ctx, kind, id) end
    if r == nil or not M.visible(ctx, r) then
      missing[#missing + 1] = id
    elseif not seen[id] then
      seen[id] = true
      out[#out + 1] = r
    end
  end
  if #missing == 1 then ctx:fail(kind.notfound, kind.one:format(missing[1])) end
  if #missing > 1 then ctx:fail(kind.notfound, kind.many:format(table.concat(missing, ", "))) end
  table.sort(out, function(a, b) return (a._seq or 0) < (b._seq or 0) end)
  return out
end

--- The records a Describe starts from: those named by `ids`, or every visible one.
function M.candidates(ctx, kname, ids)
  local named = M.describe_ids(ctx, kname, ids)
  if named then return named end
  local out = {}
  for _, r in ipairs(M.sorted(ctx.db[M.KINDS[kname].coll] or {})) do
    if M.visible(ctx, r) then out[#out + 1] = r end
  end
  return out
end

--- Marks a new record: creation order, and the start of its consistency window.
function M.created(ctx, r)
  r._seq = M.next_seq(ctx)
  ctx:created(r)
  return r
end

---------------------------------------------------------------------------------------
-- Tags

local function check_tag(ctx, tag)
  local key, value = tag.Key, tag.Value
  if key == nil or key == "" then
    ctx:fail("InvalidParameterValue", "Tag key cannot be empty")
  end
  if utf8.len(key) == nil or utf8.len(key) > 127 then
    ctx:fail("InvalidParameterValue",
      ("Tag key exceeds the maximum length of 127 characters: %s"):format(key))
  end
  -- AWS reserves the aws: prefix for its own tags (aws:autoscaling:groupName, ...).
  if key:lower():sub(1, 4) == "aws:" then
    ctx:fail("InvalidParameterValue",
      "Tag keys starting with 'aws:' are reserved for internal use")
  end
  if value ~= nil and (utf8.len(value) == nil or utf8.len(value) > 256) then
    ctx:fail("InvalidParameterValue",
      ("Tag value exceeds the maximum length of 256 characters for key %s"):format(key))
  end
end

--- A copy of a tag list ({Key, Value}...), nil Values as "" (CreateTags allows omitting
--- the value; AWS stores an empty string).
function M.copy_tags(tags)
  local out = {}
  for i, t in ipairs(tags or {}) do out[i] = { Key = t.Key, Value = t.Value or "" } end
  return out
end

--- Merges `tags` into record r's Tags (same key → new value), at most 50 per resource.
function M.add_tags(ctx, r, tags)
  r.Tags = r.Tags or {}
  for _, t in ipairs(tags) do
    check_tag(ctx, t)
    local found = false
    for _, have in ipairs(r.Tags) do
      if have.Key == t.Key then have.Value = t.Value or ""; found = true end
    end
    if not found then
      if #r.Tags >= 50 then
        ctx:fail("TagLimitExceeded",
          "The maximum number of Tags for a resource has been reached.")
      end
      r.Tags[#r.Tags + 1] = { Key = t.Key, Value = t.Value or "" }
    end
  end
end

--- Removes tags from r: with no list, every tag; a tag with a Value only when the value
--- matches (DeleteTags semantics).
function M.remove_tags(r, tags)
  if tags == nil then r.Tags = {}; return end
  local keep = {}
  for _, have in ipairs(r.Tags or {}) do
    local drop = false
    for _, t in ipairs(tags) do
      if t.Key == have.Key and (t.Value == nil or t.Value == have.Value) then drop = true end
    end
    if not drop then keep[#keep + 1] = have end
  end
  r.Tags = keep
end

--- The tags that `TagSpecifications` give a resource of type `rtype` (validated: each
--- spec must name this type, as AWS refuses a spec for another resource type).
function M.tags_from_specs(ctx, specs, rtype)
  local r = { Tags = {} }
  for _, spec in ipairs(specs or {}) do
    if spec.ResourceType ~= rtype then
      ctx:fail("InvalidParameterValue",
        ("'%s' is not a valid taggable resource type for this operation.")
          :format(tostring(spec.ResourceType)))
    end
    if spec.Tags == nil or #spec.Tags == 0 then
      ctx:fail("InvalidParameterValue", "Tag specification must have at least one tag")
    end
    M.add_tags(ctx, r, spec.Tags)
  end
  return r.Tags
end

--- The value of tag `key` on r, or nil.
function M.tag(r, key)
  for _, t in ipairs(r.Tags or {}) do
    if t.Key == key then return t.Value end
  end
  return nil
end

---------------------------------------------------------------------------------------
-- Describe filters. A filter matches when any of the resource's values for that name
-- matches any of the filter's values; filters combine with AND. Values may use AWS's
-- wildcards: * (any run) and ? (one character). tag:<key>, tag-key and tag-value work on
-- every resource with Tags. An unknown filter name is refused as AWS does.

local function wildcard(pattern)
  if not pattern:find("[%*%?]") then return nil end
  local lua = pattern:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".")
  return "^" .. lua .. "$"
end

local function value_matches(have, wanted)
  local pat = wildcard(wanted)
  if pat then return have:match(pat) ~= nil end
  return have == wanted
end

local function as_strings(v)
  if v == nil then return {} end
  if type(v) ~= "table" then return { tostring(v) } end
  local out = {}
  for _, x in ipairs(v) do out[#out + 1] = tostring(x) end
  return out
end

--- The records of `list` that pass `filters` ({Name=, Values=}...). `fields` maps a
--- filter name to function(record) → value or list of values.
function M.filter(ctx, list, filters, fields)
  if filters == nil or #filters == 0 then return list end
  local tests = {}
  for _, f in ipairs(filters) do
    local name = f.Name or ""
    local getter
    local tag_key = name:match("^tag:(.+)$")
    if tag_key then
      getter = function(r) return M.tag(r, tag_key) end
    elseif name == "tag-key" then
      getter = function(r)
        local out = {}
        for _, t in ipairs(r.Tags or {}) do out[#out + 1] = t.Key end
        return out
      end
    elseif name == "tag-value" then
      getter = function(r)
        local out = {}
        for _, t in ipairs(r.Tags or {}) do out[#out + 1] = t.Value end
        return out
      end
    else
      getter = fields[name]
    end
    if getter == nil then
      ctx:fail("InvalidParameterValue", ("The filter '%s' is invalid"):format(name))
    end
    tests[#tests + 1] = { get = getter, values = f.Values or {} }
  end
  local out = {}
  for _, r in ipairs(list) do
    local ok = true
    for _, t in ipairs(tests) do
      local haves, hit = as_strings(t.get(r)), false
      for _, h in ipairs(haves) do
        for _, w in ipairs(t.values) do
          if value_matches(h, w) then hit = true; break end
        end
        if hit then break end
      end
      if not hit then ok = false; break end
    end
    if ok then out[#out + 1] = r end
  end
  return out
end

---------------------------------------------------------------------------------------
-- Pagination: MaxResults/NextToken. The token is opaque to clients (base64 of the
-- offset and the operation, so a token of another operation is refused).

-- MaxResults ranges the API reference documents for operations whose model leaves the
-- member a plain integer (the modelled ranges, 5..1000 for DescribeVpcs and the like, are
-- checked with the rest of the input). A value outside is InvalidParameterValue in AWS's
-- words ("Value ( 1 ) for parameter maxResults is invalid. Expecting a value greater than
-- 5."); DescribeLaunchTemplateVersions words it its own way.
local MAX_RESULTS = {
  DescribeInstances = { 5, 1000 }, DescribeTags = { 5, 1000 },
  DescribeInstanceStatus = { 5, 1000 }, DescribePrefixLists = { 5, 1000 },
  DescribeLaunchTemplateVersions = { 1, 200,
    message = "Maximum results allowed are between 1 and 200" },
}
M.MAX_RESULTS = MAX_RESULTS

local function check_max_results(ctx, n)
  local r = MAX_RESULTS[ctx.operation]
  if n == nil or not r or (n >= r[1] and n <= r[2]) then return end
  local msg = r.message or (n < r[1]
    and ("Value ( %d ) for parameter maxResults is invalid. Expecting a value greater than %d.")
      :format(n, r[1])
    or ("Value ( %d ) for parameter maxResults is invalid. Expecting a value less than or "
      .. "equal to %d."):format(n, r[2]))
  ctx:fail("InvalidParameterValue", msg)
end

--- The slice of `items` for this page and the NextToken (nil on the last page).
--- opts.max caps MaxResults (AWS answers at most that many items per call).
function M.page(ctx, items, p, opts)
  opts = opts or {}
  check_max_results(ctx, p.MaxResults)
  local start = 1
  if p.NextToken ~= nil then
    local ok, raw = pcall(crypto.base64_decode, p.NextToken)
    local op, n = (ok and raw or ""):match("^(%w+):(%d+)$")
    if op ~= ctx.operation or tonumber(n) == nil then
      ctx:fail("InvalidPaginationToken",
        ("The pagination token '%s' is invalid or has expired."):format(p.NextToken))
    end
    start = tonumber(n)
  end
  local max = p.MaxResults
  if max == nil and p.NextToken == nil then
    if opts.max == nil or #items <= opts.max then return items, nil end
    max = opts.max
  end
  max = max or opts.max or #items
  if opts.max and max > opts.max then max = opts.max end
  local out = {}
  for i = start, math.min(#items, start + max - 1) do out[#out + 1] = items[i] end
  local next_start = start + max
  if next_start <= #items then
    return out, crypto.base64_encode(("%s:%d"):format(ctx.operation, next_start))
  end
  return out, nil
end

---------------------------------------------------------------------------------------
-- IPv4 CIDR arithmetic (addresses as integers).

--- base, prefix length of "a.b.c.d/n", or nil when it is not a CIDR block.
function M.parse_cidr(s)
  if type(s) ~= "string" then return nil end
  local a, b, c, d, n = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a then return nil end
  local parts = { tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
  for _, x in ipairs(parts) do
    if x > 255 then return nil end
  end
  n = tonumber(n)
  if n > 32 then return nil end
  local base = ((parts[1] * 256 + parts[2]) * 256 + parts[3]) * 256 + parts[4]
  return base, n
end

--- The network mask of a prefix length.
function M.mask(n)
  if n == 0 then return 0 end
  return (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF
end

--- True when the CIDR has no bits set beyond its prefix (10.0.0.0/16, not 10.0.0.1/16).
function M.is_network(base, n)
  return base & M.mask(n) == base
end

--- True when block (b2, n2) lies inside (b1, n1).
function M.contains(b1, n1, b2, n2)
  return n2 >= n1 and (b2 & M.mask(n1)) == b1
end

--- True when two blocks share any address.
function M.overlaps(b1, n1, b2, n2)
  local n = math.min(n1, n2)
  return (b1 & M.mask(n)) == (b2 & M.mask(n))
end

--- Dotted-quad of an address.
function M.ip(addr)
  return ("%d.%d.%d.%d"):format(addr >> 24 & 255, addr >> 16 & 255, addr >> 8 & 255,
    addr & 255)
end

---------------------------------------------------------------------------------------
-- ClientToken idempotency (CreateVpcEndpoint, CreateLaunchTemplate, ...): the same
-- token with the same parameters answers the resource the first call made; with other
-- parameters, IdempotentParameterMismatch.

local function canonical(v, out)
  local tv = type(v)
  if tv == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      local x = v[k]
      if x == nil then x = v[tonumber(k)] end
      out[#out + 1] = k .. "="
      canonical(x, out)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = tv:sub(1, 1) .. tostring(v)
  end
end

local function digest(p)
  local q = {}
  for k, v in pairs(p) do
    if k ~= "DryRun" and k ~= "ClientToken" then q[k] = v end
  end
  local out = {}
  canonical(q, out)
  return M.hash_hex(table.concat(out), 32)
end

--- The id the first call with this token made (nil when the token is new or absent);
--- raises IdempotentParameterMismatch when the parameters differ.
function M.token_lookup(ctx, p)
  if p.ClientToken == nil then return nil end
  local e = M.coll(ctx, "client_tokens")[ctx.operation .. "|" .. p.ClientToken]
  if e == nil then return nil end
  if e.digest ~= digest(p) then
    ctx:fail("IdempotentParameterMismatch",
      "The client token you have provided is associated with a resource that has "
        .. "different parameters. Use a new client token or the original parameters.")
  end
  return e.id
end

--- Records that this call's token made resource `id`.
function M.token_store(ctx, p, id)
  if p.ClientToken == nil then return end
  M.coll(ctx, "client_tokens")[ctx.operation .. "|" .. p.ClientToken] =
    { id = id, digest = digest(p) }
end

---------------------------------------------------------------------------------------
-- Other services' state that EC2 answers about. Their handlers own those tables (layouts
-- at the top of services/elbv2.lua and services/autoscaling.lua); this reads them and
-- treats a missing table or member as "nothing there".

local asg_state = require "fo.sim.asg_state"

local function peer_db(ctx, service)
  local ok, db = pcall(ctx.db_of, ctx, service)
  if ok and type(db) == "table" then return db end
  return {}
end

-- How long (virtual seconds) a deleted load balancer's ENIs stay in its subnets and
-- groups: AWS detaches them minutes after DeleteLoadBalancer, so a destroy that deletes
-- the subnets right away meets DependencyViolation and must retry. The sim
-- keeps it short; sim.timing.lb_eni_release overrides.
local LB_ENI_RELEASE = 5

local function lb_eni_release(ctx)
  local t = ctx.sim and rawget(ctx.sim, "timing")
  return type(t) == "table" and type(t.lb_eni_release) == "number" and t.lb_eni_release
    or LB_ENI_RELEASE
end

--- The load balancers of this region, and those deleted so recently that their ENIs are
--- still attached: {arn=, vpc=, scheme=, subnets={id...}, security_groups={id...}}; each
--- holds one ENI per subnet, as an ALB does. EC2 remembers the load balancers it has seen
--- (db.lb_enis) to notice a deletion; ELBv2 may also mark one with deleted_at.
function M.load_balancers(ctx)
  local now = ctx:now()
  local seen = M.coll(ctx, "lb_enis")
  local lbs = peer_db(ctx, "elbv2").load_balancers or {}
  local live = {}
  for arn, lb in pairs(lbs) do
    local d = type(lb) == "table" and lb.desc or nil
    if type(d) == "table" then
      local subnets = {}
      for _, az in ipairs(d.AvailabilityZones or {}) do
        if type(az) == "table" and az.SubnetId then subnets[#subnets + 1] = az.SubnetId end
      end
      local rec = { vpc = d.VpcId, scheme = d.Scheme, subnets = subnets,
        security_groups = M.copy(d.SecurityGroups or {}) }
      if type(lb.deleted_at) == "number" then rec.gone_at = lb.deleted_at end
      seen[arn] = rec
      live[arn] = true
    end
  end
  local out, arns = {}, {}
  for arn, rec in pairs(seen) do
    if not live[arn] and rec.gone_at == nil then rec.gone_at = now end
    if rec.gone_at and now >= rec.gone_at + lb_eni_release(ctx) then
      seen[arn] = nil
    else
      arns[#arns + 1] = arn
    end
  end
  table.sort(arns)
  for _, arn in ipairs(arns) do
    local rec = seen[arn]
    out[#out + 1] = { arn = arn, vpc = rec.vpc, scheme = rec.scheme, subnets = rec.subnets,
      security_groups = rec.security_groups, deleted = rec.gone_at ~= nil }
  end
  return out
end

-- Auto Scaling lifecycle state → EC2 instance state.
local LIFECYCLE = {
  Pending = "pending", ["Pending:Wait"] = "pending", ["Pending:Proceed"] = "pending",
  Quarantined = "running", InService = "running", EnteringStandby = "running",
  Standby = "running", Detaching = "running", Detached = "running",
  ["Warmed:Running"] = "running", ["Warmed:Stopped"] = "stopped",
  Terminating = "shutting-down", ["Terminating:Wait"] = "shutting-down",
  ["Terminating:Proceed"] = "shutting-down", Terminated = "terminated",
}
M.STATE_CODES = { pending = 0, running = 16, ["shutting-down"] = 32, terminated = 48,
  stopping = 64, stopped = 80 }

--- The instances the simulated Auto Scaling groups run (and the terminated ones EC2
--- still lists) in this region, oldest first: {id=, asg=, az=, subnet=, state= (EC2's
--- name), lt=, instance_type=, image_id=, launch_time=, private_ip=,
--- security_groups={ids}, profile=, tags={{Key,Value}}}.
function M.asg_instances(ctx)
  local db = peer_db(ctx, "autoscaling")
  -- Auto Scaling's transitions fall due with time; apply them before reading.
  pcall(asg_state.settle, db, ctx:now(), asg_state.timing(ctx, "terminated_visible"))
  local out = {}
  local function add(g, inst)
    if type(inst) ~= "table" or type(inst.InstanceId) ~= "string" then return end
    local subnet = inst.SubnetId
    if subnet == nil then
      -- the group's subnet in the instance's AZ
      for sid in tostring(g.VPCZoneIdentifier or ""):gmatch("[^,%s]+") do
        local s = ctx.db.subnets and ctx.db.subnets[sid]
        if s and s.AvailabilityZone == inst.AvailabilityZone then subnet = sid; break end
      end
    end
    out[#out + 1] = { id = inst.InstanceId, asg = inst.AutoScalingGroupName
        or g.AutoScalingGroupName, az = inst.AvailabilityZone, subnet = subnet,
      state = LIFECYCLE[inst.LifecycleState or "InService"] or "running",
      lt = inst.LaunchTemplate or g.LaunchTemplate, instance_type = inst.InstanceType,
      image_id = inst.ImageId, launch_time = inst.LaunchTime or g.CreatedTime,
      private_ip = inst.PrivateIpAddress, security_groups = inst.SecurityGroups,
      profile = inst.IamInstanceProfile, tags = inst.InstanceTags, _seq = inst.seq }
  end
  for _, g in pairs(db.groups or {}) do
    for _, inst in ipairs(type(g) == "table" and g.Instances or {}) do add(g, inst) end
  end
  for _, g in pairs(db.retired or {}) do
    for _, inst in ipairs(type(g) == "table" and g.Instances or {}) do add(g, inst) end
  end
  table.sort(out, function(a, b)
    local ta, tb = a.launch_time or 0, b.launch_time or 0
    if ta ~= tb then return ta < tb end
    return a.id < b.id
  end)
  return out
end

-- How long (virtual seconds) an instance RunInstances started stays "pending";
-- sim.timing.instance_start overrides (shutting-down → terminated takes Auto Scaling's
-- instance_terminate, terminated ones stay listed for its terminated_visible).
M.INSTANCE_START = 5

function M.timing(ctx, key)
  local t = ctx.sim and rawget(ctx.sim, "timing")
  if type(t) == "table" and type(t[key]) == "number" then return t[key] end
  if key == "instance_start" then return M.INSTANCE_START end
  return asg_state.timing(ctx, key)
end

--- The instances RunInstances started (db.instances, id → record), their states brought
--- to `now`: pending → running at running_at, shutting-down → terminated at
--- terminated_at; terminated ones are forgotten after terminated_visible.
function M.own_instances(ctx)
  local now, visible = ctx:now(), M.timing(ctx, "terminated_visible")
  local t = ctx.db.instances or {}
  local out = {}
  for id, inst in pairs(t) do
    if inst.state == "pending" and now >= inst.running_at then inst.state = "running" end
    if inst.state == "shutting-down" and now >= inst.terminated_at then
      inst.state = "terminated"
    end
    if inst.state == "terminated" and now >= inst.terminated_at + visible then
      t[id] = nil
    else
      out[#out + 1] = inst
    end
  end
  return out
end

--- Every instance of the region (Auto Scaling's and RunInstances'), in launch order
--- (one reservation's in launch index order); the records of asg_instances, those of
--- RunInstances carrying own = true and more (services/ec2/run_instances.lua).
function M.instances(ctx)
  local out = M.asg_instances(ctx)
  for _, inst in ipairs(M.own_instances(ctx)) do out[#out + 1] = inst end
  table.sort(out, function(a, b)
    local ta, tb = a.launch_time or 0, b.launch_time or 0
    if ta ~= tb then return ta < tb end
    local ra, rb = a.reservation or a.id, b.reservation or b.id
    if ra ~= rb then return ra < rb end
    return (a.launch_index or 0) < (b.launch_index or 0)
  end)
  return out
end

return M
