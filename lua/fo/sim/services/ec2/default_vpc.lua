-- The default VPC every AWS account has in every region, as AWS sets it up:
--   * 172.31.0.0/16, IsDefault = true, the region's default DHCP option set;
--   * one default subnet per AZ (172.31.0.0/20, 172.31.16.0/20, ... in AZ order),
--     DefaultForAz = true and MapPublicIpOnLaunch = true;
--   * an internet gateway attached, and the main route table routing 0.0.0.0/0 to it;
--   * the VPC's "default" security group and default network ACL (as for every VPC).
-- It is made on the region's first EC2 call, with ids derived from the sim's seed, the
-- account and the region (not drawn from the id stream, so the ids of everything else
-- stay what they were and the same seed always gives the same default VPC). It carries no
-- tags, so fo (which owns only what carries its fo:token tag) never adopts it. Deleting it
-- works as on AWS (DependencyViolation while its subnets, gateway ... remain); once
-- deleted it stays deleted, and DescribeAccountAttributes' default-vpc answers "none".
local C = require "fo.sim.services.ec2.common"

local M = {}

M.CIDR = "172.31.0.0/16"

-- A deterministic id for the n-th default resource of this account and region.
local function seeded_ids(ctx)
  local seed = tostring(ctx.sim.store.data.seed)
  local n = 0
  return function(_, prefix, digits)
    n = n + 1
    local hex = C.hash_hex(("default-vpc %s %s %s %d"):format(seed, ctx.account, ctx.region, n),
      digits or 17)
    if prefix == nil or prefix == "" then return hex end
    return prefix .. "-" .. hex
  end
end

--- The region's default DHCP option set id (shared by every VPC of the region, as the
--- default set is on AWS).
function M.dhcp_options_id(ctx)
  if not ctx.db.dhcp_options_id then
    ctx.db.dhcp_options_id = "dopt-" .. C.hash_hex(("default-dopt %s %s %s")
      :format(tostring(ctx.sim.store.data.seed), ctx.account, ctx.region))
  end
  return ctx.db.dhcp_options_id
end

--- Creates the default VPC of ctx's region unless it was made (or made and deleted)
--- before. `build` = {vpc = fn(ctx, fields) → record, subnet = ..., igw = ..., route = ...}
--- are ec2.lua's constructors (they draw ids through ctx:id, redirected here).
function M.ensure(ctx, build)
  if ctx.db.default_vpc ~= nil then return end
  -- Set before building: a failure below must not make every later call retry it.
  ctx.db.default_vpc = { id = false }
  local real_id, real_created = rawget(ctx, "id"), rawget(ctx, "created")
  ctx.id = seeded_ids(ctx)
  ctx.created = function(_, r) return r end -- not inside a consistency window
  local ok, err = pcall(function()
    local vpc = build.vpc(ctx, M.CIDR)
    ctx.db.default_vpc.id = vpc.VpcId
    local base = C.parse_cidr(M.CIDR)
    for i, z in ipairs(ctx:azs()) do
      if i > 16 then break end -- 16 /20 blocks fill the /16
      build.subnet(ctx, vpc, C.ip(base + (i - 1) * 4096) .. "/20", z)
    end
    build.igw(ctx, vpc)
  end)
  ctx.id, ctx.created = real_id, real_created
  if not ok then error(err, 0) end
end

--- The default VPC's id, or nil (none: deleted).
function M.id(ctx)
  local d = ctx.db.default_vpc
  local id = d and d.id or nil
  if id and C.find(ctx, "vpc", id) then return id end
  return nil
end

--- The default subnet of `az` (a zone name), or nil.
function M.subnet_for(ctx, az)
  local vpc = M.id(ctx)
  if not vpc then return nil end
  for _, s in ipairs(C.sorted(ctx.db.subnets or {})) do
    if s.VpcId == vpc and s.DefaultForAz and (az == nil or s.AvailabilityZone == az) then
      return s
    end
  end
  return nil
end

---------------------------------------------------------------------------------------
-- DescribeAccountAttributes: the account's EC2 attributes (supported-platforms "VPC"
-- only since EC2-Classic retired; default-vpc the default VPC's id or "none"; the
-- default per-region quotas).

function M.DescribeAccountAttributes(ctx, p)
  local values = {
    ["supported-platforms"] = { "VPC" },
    ["default-vpc"] = { M.id(ctx) or "none" },
    ["max-instances"] = { "20" },
    ["vpc-max-security-groups-per-interface"] = { "5" },
    ["max-elastic-ips"] = { "5" },
    ["vpc-max-elastic-ips"] = { "5" },
  }
  local order = { "supported-platforms", "vpc-max-security-groups-per-interface",
    "max-elastic-ips", "max-instances", "vpc-max-elastic-ips", "default-vpc" }
  local wanted = p.AttributeNames
  if wanted == nil or #wanted == 0 then wanted = order end
  local out = {}
  for _, name in ipairs(wanted) do
    local v = values[name]
    if not v then
      ctx:fail("InvalidParameterValue",
        ("Value (%s) for parameter attributeName is invalid."):format(tostring(name)))
    end
    local vals = {}
    for i, x in ipairs(v) do vals[i] = { AttributeValue = x } end
    out[#out + 1] = { AttributeName = name, AttributeValues = vals }
  end
  return { AccountAttributes = out }
end

---------------------------------------------------------------------------------------
-- DHCP option sets: the region's default one (every VPC uses it; the sim makes no other).

function M.DescribeDhcpOptions(ctx, p)
  local id = M.dhcp_options_id(ctx)
  local domain = ctx.region == "us-east-1" and "ec2.internal"
    or (ctx.region .. ".compute.internal")
  local set = { DhcpOptionsId = id, OwnerId = ctx.account, Tags = {},
    DhcpConfigurations = {
      { Key = "domain-name", Values = { { Value = domain } } },
      { Key = "domain-name-servers", Values = { { Value = "AmazonProvidedDNS" } } } } }
  local list = { set }
  for _, want in ipairs(p.DhcpOptionsIds or {}) do
    if want ~= id then
      ctx:fail("InvalidDhcpOptionID.NotFound",
        ("The dhcpOption ID '%s' does not exist"):format(want))
    end
  end
  list = C.filter(ctx, list, p.Filters, {
    ["dhcp-options-id"] = function(d) return d.DhcpOptionsId end,
    ["owner-id"] = function(d) return d.OwnerId end,
    key = function(d)
      local out = {}
      for _, c in ipairs(d.DhcpConfigurations) do out[#out + 1] = c.Key end
      return out
    end,
  })
  local page, token = C.page(ctx, list, p)
  return { DhcpOptions = page, NextToken = token }
end

---------------------------------------------------------------------------------------
-- Network ACLs: each VPC's default ACL (allow all in and out, then the final deny),
-- associated with every subnet of the VPC (the sim makes no custom ACLs). Its id derives
-- from the VPC's, so it needs no record of its own.

local function acl_id(vpc_id) return "acl-" .. C.hash_hex("acl " .. vpc_id) end

local function acl_view(ctx, vpc)
  local id = acl_id(vpc.VpcId)
  local assocs = {}
  for _, s in ipairs(C.sorted(ctx.db.subnets or {})) do
    if s.VpcId == vpc.VpcId then
      assocs[#assocs + 1] = { NetworkAclId = id, SubnetId = s.SubnetId,
        NetworkAclAssociationId = "aclassoc-" .. C.hash_hex("aclassoc " .. s.SubnetId) }
    end
  end
  local entries = {}
  for _, egress in ipairs({ true, false }) do
    entries[#entries + 1] = { RuleNumber = 100, Protocol = "-1", RuleAction = "allow",
      Egress = egress, CidrBlock = "0.0.0.0/0" }
    entries[#entries + 1] = { RuleNumber = 32767, Protocol = "-1", RuleAction = "deny",
      Egress = egress, CidrBlock = "0.0.0.0/0" }
  end
  return { NetworkAclId = id, VpcId = vpc.VpcId, IsDefault = true, OwnerId = ctx.account,
    Associations = assocs, Entries = entries, Tags = {} }
end

local ACL_FILTERS = {
  ["network-acl-id"] = function(a) return a.NetworkAclId end,
  ["vpc-id"] = function(a) return a.VpcId end,
  ["default"] = function(a) return a.IsDefault end,
  ["owner-id"] = function(a) return a.OwnerId end,
  ["association.subnet-id"] = function(a)
    local out = {}
    for _, x in ipairs(a.Associations) do out[#out + 1] = x.SubnetId end
    return out
  end,
  ["association.network-acl-id"] = function(a) return a.NetworkAclId end,
}

function M.DescribeNetworkAcls(ctx, p)
  local list = {}
  for _, v in ipairs(C.candidates(ctx, "vpc")) do list[#list + 1] = acl_view(ctx, v) end
  if p.NetworkAclIds and #p.NetworkAclIds > 0 then
    local by_id, named = {}, {}
    for _, a in ipairs(list) do by_id[a.NetworkAclId] = a end
    for _, id in ipairs(p.NetworkAclIds) do
      if not by_id[id] then
        ctx:fail("InvalidNetworkAclID.NotFound",
          ("The networkAcl ID '%s' does not exist"):format(id))
      end
      named[#named + 1] = by_id[id]
    end
    list = named
  end
  list = C.filter(ctx, list, p.Filters, ACL_FILTERS)
  local page, token = C.page(ctx, list, p)
  return { NetworkAcls = page, NextToken = token }
end

return M
