-- Simulated EC2 security groups and their rules, as AWS behaves:
--   * every group is created with the default egress rule (all traffic to 0.0.0.0/0);
--     the VPC's "default" group also admits all traffic from itself;
--   * each rule is a record with its sgr- id (DescribeSecurityGroupRules, revoke by id);
--     DescribeSecurityGroups groups them into IpPermissions by protocol and ports;
--   * names are unique per VPC ignoring case (InvalidGroup.Duplicate), cannot be
--     "default" or start with "sg-" (CreateSecurityGroup's documented constraints);
--   * a rule that exists already → InvalidPermission.Duplicate (nothing is added);
--     revoking rules none of which exist → InvalidPermission.NotFound, some of which
--     exist → those are revoked and the others answered as UnknownIpPermissions;
--   * deleting a group still referenced by another group's rule, or used by a load
--     balancer, an instance or an interface endpoint → DependencyViolation; the default
--     group cannot be deleted (CannotDelete).
local C = require "fo.sim.services.ec2.common"

local M = {}

-- Inbound and outbound rules per group (AWS's default quota).
local RULES_PER_DIRECTION = 60

-- Protocol names and numbers as AWS stores them: the names of tcp/udp/icmp/icmpv6 and
-- "-1" for all; any other IANA number stays a number string.
local PROTOCOLS = { tcp = "tcp", ["6"] = "tcp", udp = "udp", ["17"] = "udp",
  icmp = "icmp", ["1"] = "icmp", icmpv6 = "icmpv6", ["58"] = "icmpv6",
  ["-1"] = "-1", all = "-1" }

local function protocol(ctx, p)
  local s = tostring(p or ""):lower()
  local name = PROTOCOLS[s]
  if name then return name end
  local n = tonumber(s)
  if n and math.type(n) == "integer" and n >= 0 and n <= 255 then return s end
  ctx:fail("InvalidParameterValue",
    ("Invalid value '%s' for IP protocol. Unknown protocol."):format(tostring(p)))
end

-- (protocol, from, to) normalized: tcp/udp need both ports 0..65535, from ≤ to; icmp
-- takes type/code (-1 = all); "-1" and other protocols cover every port (-1/-1).
local function ports(ctx, proto, from, to)
  if proto == "tcp" or proto == "udp" then
    if from == nil or to == nil then
      ctx:fail("InvalidParameterValue",
        "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
    end
    if from < 0 or to > 65535 or from > to then
      ctx:fail("InvalidParameterValue",
        ("Invalid TCP/UDP port range (%d, %d): from port must not exceed to port and "
          .. "both must be in 0..65535"):format(from, to))
    end
    return from, to
  end
  if proto == "icmp" or proto == "icmpv6" then
    return from or -1, to or -1
  end
  return -1, -1
end

local function group_name(ctx, id)
  local g = C.find(ctx, "sg", id)
  return g and g.GroupName or nil
end

---------------------------------------------------------------------------------------
-- Views

local function rule_view(r)
  local ref = nil
  if r.ReferencedGroupInfo then
    ref = { GroupId = r.ReferencedGroupInfo.GroupId, UserId = r.ReferencedGroupInfo.UserId }
  end
  local tags = C.copy_tags(r.Tags)
  return { SecurityGroupRuleId = r.SecurityGroupRuleId, GroupId = r.GroupId,
    GroupOwnerId = r.GroupOwnerId, IsEgress = r.IsEgress, IpProtocol = r.IpProtocol,
    FromPort = r.FromPort, ToPort = r.ToPort, CidrIpv4 = r.CidrIpv4, CidrIpv6 = r.CidrIpv6,
    PrefixListId = r.PrefixListId, ReferencedGroupInfo = ref, Description = r.Description,
    Tags = tags }
end

--- The group's rules of one direction, in creation order.
function M.rules_of(ctx, group_id, egress)
  local out = {}
  for _, r in ipairs(C.sorted(ctx.db.security_group_rules or {})) do
    if r.GroupId == group_id and r.IsEgress == egress then out[#out + 1] = r end
  end
  return out
end

-- IpPermissions as DescribeSecurityGroups answers them: one entry per (protocol, ports)
-- with the peers listed by kind; all-traffic entries carry no ports.
local function permissions(ctx, group_id, egress)
  local out, by_key = {}, {}
  for _, r in ipairs(M.rules_of(ctx, group_id, egress)) do
    local key = ("%s|%d|%d"):format(r.IpProtocol, r.FromPort, r.ToPort)
    local perm = by_key[key]
    if not perm then
      perm = { IpProtocol = r.IpProtocol, IpRanges = {}, Ipv6Ranges = {}, PrefixListIds = {},
        UserIdGroupPairs = {} }
      if r.IpProtocol ~= "-1" then perm.FromPort, perm.ToPort = r.FromPort, r.ToPort end
      by_key[key] = perm
      out[#out + 1] = perm
    end
    if r.CidrIpv4 then
      perm.IpRanges[#perm.IpRanges + 1] = { CidrIp = r.CidrIpv4, Description = r.Description }
    elseif r.CidrIpv6 then
      perm.Ipv6Ranges[#perm.Ipv6Ranges + 1] = { CidrIpv6 = r.CidrIpv6,
        Description = r.Description }
    elseif r.PrefixListId then
      perm.PrefixListIds[#perm.PrefixListIds + 1] = { PrefixListId = r.PrefixListId,
        Description = r.Description }
    elseif r.ReferencedGroupInfo then
      perm.UserIdGroupPairs[#perm.UserIdGroupPairs + 1] = {
        GroupId = r.ReferencedGroupInfo.GroupId, UserId = r.ReferencedGroupInfo.UserId,
        Description = r.Description }
    end
  end
  return out
end

function M.group_view(ctx, g)
  local tags = C.copy_tags(g.Tags)
  return { GroupId = g.GroupId, GroupName = g.GroupName, Description = g.Description,
    VpcId = g.VpcId, OwnerId = g.OwnerId, IpPermissions = permissions(ctx, g.GroupId, false),
    IpPermissionsEgress = permissions(ctx, g.GroupId, true),
    Tags = #tags > 0 and tags or nil }
end

---------------------------------------------------------------------------------------
-- Rules

local function new_rule(ctx, g, egress, fields, tags)
  local r = { SecurityGroupRuleId = ctx:id("sgr"), GroupId = g.GroupId,
    GroupOwnerId = ctx.account, IsEgress = egress, Tags = C.copy_tags(tags) }
  for k, v in pairs(fields) do r[k] = v end
  r._seq = C.next_seq(ctx)
  C.coll(ctx, "security_group_rules")[r.SecurityGroupRuleId] = r
  return r
end

-- The identity of a rule: direction, protocol, ports and peer (descriptions aside).
local function rule_key(r)
  local peer = r.CidrIpv4 or r.CidrIpv6 or r.PrefixListId
    or (r.ReferencedGroupInfo and r.ReferencedGroupInfo.GroupId) or ""
  return ("%s|%s|%d|%d|%s"):format(r.IsEgress and "out" or "in", r.IpProtocol, r.FromPort,
    r.ToPort, peer)
end

-- AWS's wording of a rule in InvalidPermission.Duplicate.
local function rule_text(r)
  local peer = r.CidrIpv4 or r.CidrIpv6 or r.PrefixListId
    or (r.ReferencedGroupInfo and r.ReferencedGroupInfo.GroupId) or ""
  if r.IpProtocol == "-1" then
    return ("peer: %s, ALL, ALLOW"):format(peer)
  end
  return ("peer: %s, %s, from port: %d, to port: %d, ALLOW"):format(peer,
    r.IpProtocol:upper(), r.FromPort, r.ToPort)
end

local function check_cidr(ctx, cidr)
  local base, n = C.parse_cidr(cidr)
  if not base then
    ctx:fail("InvalidParameterValue", ("CIDR block %s is malformed"):format(tostring(cidr)))
  end
  if not C.is_network(base, n) then
    -- AWS refuses a rule CIDR with host bits set (10.0.0.1/16) with the same message.
    ctx:fail("InvalidParameterValue", ("CIDR block %s is malformed"):format(cidr))
  end
  return cidr
end

-- The referenced group of a UserIdGroupPair: by id, or by name within the group's VPC;
-- it must exist in the same VPC (no peering in the simulator).
local function pair_group(ctx, g, pair)
  if pair.GroupId then
    local other = C.get(ctx, "sg", pair.GroupId)
    if other.VpcId ~= g.VpcId then
      ctx:fail("InvalidGroup.NotFound",
        ("You have specified two resources that belong to different networks."))
    end
    return other
  end
  if pair.GroupName then
    for _, other in pairs(ctx.db.security_groups or {}) do
      if other.VpcId == g.VpcId and other.GroupName:lower() == pair.GroupName:lower() then
        return other
      end
    end
    ctx:fail("InvalidGroup.NotFound",
      ("The security group '%s' does not exist in VPC '%s'"):format(pair.GroupName, g.VpcId))
  end
  ctx:fail("InvalidParameterValue", "A UserIdGroupPair needs a GroupId or a GroupName")
end

-- The rule field sets that one IpPermission stands for (one per peer), each with its
-- protocol and ports.
local function expand(ctx, g, perm)
  local proto = protocol(ctx, perm.IpProtocol)
  local from, to = ports(ctx, proto, perm.FromPort, perm.ToPort)
  local out = {}
  local function add(fields)
    fields.IpProtocol, fields.FromPort, fields.ToPort = proto, from, to
    out[#out + 1] = fields
  end
  for _, r in ipairs(perm.IpRanges or {}) do
    add({ CidrIpv4 = check_cidr(ctx, r.CidrIp), Description = r.Description })
  end
  for _, r in ipairs(perm.Ipv6Ranges or {}) do
    if type(r.CidrIpv6) ~= "string" or not r.CidrIpv6:match("^[%x:]+/%d+$") then
      ctx:fail("InvalidParameterValue",
        ("CIDR block %s is malformed"):format(tostring(r.CidrIpv6)))
    end
    add({ CidrIpv6 = r.CidrIpv6:lower(), Description = r.Description })
  end
  for _, r in ipairs(perm.PrefixListIds or {}) do
    if not (type(r.PrefixListId) == "string" and r.PrefixListId:match("^pl%-%x+$")) then
      ctx:fail("InvalidPrefixListId.Malformed",
        ("Invalid id: \"%s\" (expecting \"pl-...\")"):format(tostring(r.PrefixListId)))
    end
    add({ PrefixListId = r.PrefixListId, Description = r.Description })
  end
  for _, pair in ipairs(perm.UserIdGroupPairs or {}) do
    local other = pair_group(ctx, g, pair)
    add({ ReferencedGroupInfo = { GroupId = other.GroupId, UserId = ctx.account },
      Description = pair.Description })
  end
  return out
end

-- The IpPermissions of a call, including the legacy top-level form (CidrIp, IpProtocol,
-- FromPort, ToPort, SourceSecurityGroupName) that older clients send.
local function call_permissions(p)
  if p.IpPermissions and #p.IpPermissions > 0 then return p.IpPermissions end
  if p.CidrIp or p.SourceSecurityGroupName or p.IpProtocol then
    local perm = { IpProtocol = p.IpProtocol or "-1", FromPort = p.FromPort, ToPort = p.ToPort }
    if p.CidrIp then perm.IpRanges = { { CidrIp = p.CidrIp } } end
    if p.SourceSecurityGroupName then
      perm.UserIdGroupPairs = { { GroupName = p.SourceSecurityGroupName } }
    end
    return { perm }
  end
  return {}
end

-- The target group of an ingress/egress call: GroupId, or GroupName (EC2-Classic and
-- default VPC only; the simulator has no default VPC, as an account that deleted it).
local function target_group(ctx, p)
  if p.GroupId then return C.get(ctx, "sg", p.GroupId) end
  if p.GroupName then
    ctx:fail("VPCIdNotSpecified",
      "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
  end
  ctx:fail("MissingParameter", "The request must contain the parameter groupId")
end

local function authorize(ctx, p, egress)
  local g = target_group(ctx, p)
  local wanted = {}
  for _, perm in ipairs(call_permissions(p)) do
    for _, f in ipairs(expand(ctx, g, perm)) do
      f.IsEgress = egress
      wanted[#wanted + 1] = f
    end
  end
  if #wanted == 0 then
    ctx:fail("MissingParameter", "No IP permissions were specified (IpPermissions)")
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "security-group-rule")
  -- Duplicates (with existing rules or within the call) refuse the whole call.
  local have = {}
  local existing = M.rules_of(ctx, g.GroupId, egress)
  for _, r in ipairs(existing) do have[rule_key(r)] = true end
  for _, f in ipairs(wanted) do
    local key = rule_key(f)
    if have[key] then
      ctx:fail("InvalidPermission.Duplicate",
        ('the specified rule "%s" already exists'):format(rule_text(f)))
    end
    have[key] = true
  end
  if #existing + #wanted > RULES_PER_DIRECTION then
    ctx:fail("RulesPerSecurityGroupLimitExceeded",
      "The maximum number of rules per security group has been reached.")
  end
  local made = {}
  for _, f in ipairs(wanted) do made[#made + 1] = rule_view(new_rule(ctx, g, egress, f, tags)) end
  return { Return = true, SecurityGroupRules = made }
end

local function revoke(ctx, p, egress)
  local g = target_group(ctx, p)
  local rules = C.coll(ctx, "security_group_rules")
  if p.SecurityGroupRuleIds and #p.SecurityGroupRuleIds > 0 then
    -- Every id must be a rule of this group in this direction; none is revoked otherwise.
    for _, id in ipairs(p.SecurityGroupRuleIds) do
      local r = rules[id]
      if r == nil or r.GroupId ~= g.GroupId or r.IsEgress ~= egress then
        ctx:fail("InvalidSecurityGroupRuleId.NotFound",
          ("The security group rule ID '%s' does not exist"):format(id))
      end
    end
    for _, id in ipairs(p.SecurityGroupRuleIds) do rules[id] = nil end
    return { Return = true }
  end
  local by_key = {}
  for _, r in ipairs(M.rules_of(ctx, g.GroupId, egress)) do by_key[rule_key(r)] = r end
  local found, unknown = {}, {}
  for _, perm in ipairs(call_permissions(p)) do
    local all_known = true
    for _, f in ipairs(expand(ctx, g, perm)) do
      f.IsEgress = egress
      local r = by_key[rule_key(f)]
      if r then found[#found + 1] = r else all_known = false end
    end
    if not all_known then unknown[#unknown + 1] = C.copy(perm) end
  end
  if #found == 0 then
    ctx:fail("InvalidPermission.NotFound",
      "The specified rule does not exist in this security group.")
  end
  for _, r in ipairs(found) do rules[r.SecurityGroupRuleId] = nil end
  return { Return = true, UnknownIpPermissions = #unknown > 0 and unknown or nil }
end

---------------------------------------------------------------------------------------
-- Groups

--- Creates a group in `vpc` with the default rules (egress to everywhere; the default
--- group also admits itself). Returns the record.
function M.create_group(ctx, vpc, name, description, tags, is_default)
  local g = { GroupId = ctx:id("sg"), GroupName = name, Description = description,
    VpcId = vpc.VpcId, OwnerId = ctx.account, Tags = tags or {}, _default = is_default }
  C.coll(ctx, "security_groups")[g.GroupId] = g
  C.created(ctx, g)
  new_rule(ctx, g, true, { IpProtocol = "-1", FromPort = -1, ToPort = -1,
    CidrIpv4 = "0.0.0.0/0" })
  if is_default then
    new_rule(ctx, g, false, { IpProtocol = "-1", FromPort = -1, ToPort = -1,
      ReferencedGroupInfo = { GroupId = g.GroupId, UserId = ctx.account } })
  end
  return g
end

--- Removes a group and its rules (no checks).
function M.remove_group(ctx, g)
  local rules = C.coll(ctx, "security_group_rules")
  for id, r in pairs(rules) do
    if r.GroupId == g.GroupId then rules[id] = nil end
  end
  ctx.db.security_groups[g.GroupId] = nil
end

-- Group names: ≤ 255 characters of AWS's set; not "default" (reserved for the VPC's
-- own group) nor starting with "sg-" (it would read as an id).
local NAME_CHARS = "^[%w %._%-:/%(%)#,@%[%]%+=&;{}!%$%*]+$"

function M.CreateSecurityGroup(ctx, p)
  -- Without a VpcId the group goes to the default VPC, if the region still has one.
  local vpc_id = p.VpcId or require("fo.sim.services.ec2.default_vpc").id(ctx)
  if vpc_id == nil then
    ctx:fail("VPCIdNotSpecified", "No default VPC for this user")
  end
  local vpc = C.get(ctx, "vpc", vpc_id)
  local name, desc = p.GroupName, p.Description
  if #name == 0 or #name > 255 or not name:match(NAME_CHARS) then
    ctx:fail("InvalidParameterValue",
      ("Invalid value '%s' for groupName. Up to 255 characters: a-z, A-Z, 0-9, spaces, "
        .. "and ._-:/()#,@[]+=&;{}!$*"):format(name))
  end
  if name:lower():sub(1, 3) == "sg-" then
    ctx:fail("InvalidParameterValue", "Group names may not be in the format sg-*")
  end
  if name:lower() == "default" then
    ctx:fail("InvalidParameterValue", "Cannot use reserved security group name: default")
  end
  if #desc > 255 or (#desc > 0 and not desc:match(NAME_CHARS)) then
    ctx:fail("InvalidParameterValue",
      ("Invalid value '%s' for GroupDescription. Up to 255 characters: a-z, A-Z, 0-9, "
        .. "spaces, and ._-:/()#,@[]+=&;{}!$*"):format(desc))
  end
  for _, g in pairs(ctx.db.security_groups or {}) do
    if g.VpcId == vpc.VpcId and g.GroupName:lower() == name:lower() then
      ctx:fail("InvalidGroup.Duplicate",
        ("The security group '%s' already exists for VPC '%s'"):format(name, vpc.VpcId))
    end
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "security-group")
  local g = M.create_group(ctx, vpc, name, desc, tags, false)
  local out_tags = C.copy_tags(g.Tags)
  return { GroupId = g.GroupId, Tags = #out_tags > 0 and out_tags or nil }
end

local GROUP_FILTERS = {
  ["group-id"] = function(g) return g.GroupId end,
  ["group-name"] = function(g) return g.GroupName end,
  ["vpc-id"] = function(g) return g.VpcId end,
  ["description"] = function(g) return g.Description end,
  ["owner-id"] = function(g) return g.OwnerId end,
}
-- ip-permission.* and egress.ip-permission.* look at the group's rules.
local function rule_filter(egress, pick)
  return function(g, ctx)
    local out = {}
    for _, r in ipairs(M.rules_of(ctx, g.GroupId, egress)) do
      local v = pick(r)
      if v ~= nil then out[#out + 1] = v end
    end
    return out
  end
end
local RULE_PICKS = {
  protocol = function(r) return r.IpProtocol end,
  ["from-port"] = function(r) return r.FromPort end,
  ["to-port"] = function(r) return r.ToPort end,
  cidr = function(r) return r.CidrIpv4 end,
  ["ipv6-cidr"] = function(r) return r.CidrIpv6 end,
  ["prefix-list-id"] = function(r) return r.PrefixListId end,
  ["group-id"] = function(r) return r.ReferencedGroupInfo and r.ReferencedGroupInfo.GroupId end,
}
for name, pick in pairs(RULE_PICKS) do
  GROUP_FILTERS["ip-permission." .. name] = rule_filter(false, pick)
  GROUP_FILTERS["egress.ip-permission." .. name] = rule_filter(true, pick)
end

function M.DescribeSecurityGroups(ctx, p)
  if p.GroupNames and #p.GroupNames > 0 then
    -- Names select groups of the default VPC only; the simulator has none.
    ctx:fail("VPCIdNotSpecified",
      "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
  end
  local list = C.candidates(ctx, "sg", p.GroupIds)
  local fields = {}
  for k, f in pairs(GROUP_FILTERS) do fields[k] = function(g) return f(g, ctx) end end
  list = C.filter(ctx, list, p.Filters, fields)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, g in ipairs(page) do out[i] = M.group_view(ctx, g) end
  return { SecurityGroups = out, NextToken = token }
end

local RULE_FILTERS = {
  ["group-id"] = function(r) return r.GroupId end,
  ["security-group-rule-id"] = function(r) return r.SecurityGroupRuleId end,
}

function M.DescribeSecurityGroupRules(ctx, p)
  local list = {}
  if p.SecurityGroupRuleIds and #p.SecurityGroupRuleIds > 0 then
    list = C.describe_ids(ctx, "sgr", p.SecurityGroupRuleIds)
  else
    for _, r in ipairs(C.sorted(ctx.db.security_group_rules or {})) do
      local g = C.find(ctx, "sg", r.GroupId)
      if g and C.visible(ctx, g) then list[#list + 1] = r end
    end
  end
  list = C.filter(ctx, list, p.Filters, RULE_FILTERS)
  local page, token = C.page(ctx, list, p)
  local out = {}
  for i, r in ipairs(page) do out[i] = rule_view(r) end
  return { SecurityGroupRules = out, NextToken = token }
end

function M.AuthorizeSecurityGroupIngress(ctx, p) return authorize(ctx, p, false) end
function M.AuthorizeSecurityGroupEgress(ctx, p) return authorize(ctx, p, true) end
function M.RevokeSecurityGroupIngress(ctx, p) return revoke(ctx, p, false) end
function M.RevokeSecurityGroupEgress(ctx, p) return revoke(ctx, p, true) end

--- Why group `g` cannot be deleted (a message), or nil.
local function group_in_use(ctx, g)
  for _, r in pairs(ctx.db.security_group_rules or {}) do
    if r.GroupId ~= g.GroupId and r.ReferencedGroupInfo
      and r.ReferencedGroupInfo.GroupId == g.GroupId then
      return true
    end
  end
  for _, lb in ipairs(C.load_balancers(ctx)) do
    for _, id in ipairs(lb.security_groups) do
      if id == g.GroupId then return true end
    end
  end
  for _, e in pairs(ctx.db.vpc_endpoints or {}) do
    for _, grp in ipairs(e.Groups or {}) do
      if grp.GroupId == g.GroupId then return true end
    end
  end
  for _, inst in ipairs(C.instances(ctx)) do
    if inst.state ~= "terminated" then
      for _, id in ipairs(M.instance_groups(ctx, inst)) do
        if id == g.GroupId then return true end
      end
    end
  end
  return false
end

--- The security group ids an instance runs with: its own list, else its launch
--- template's, else its VPC's default group.
function M.instance_groups(ctx, inst)
  if type(inst.security_groups) == "table" and #inst.security_groups > 0 then
    local out = {}
    for _, s in ipairs(inst.security_groups) do
      out[#out + 1] = type(s) == "table" and s.GroupId or s
    end
    return out
  end
  local data = M.lt_data and M.lt_data(ctx, inst.lt) or nil
  if data and data.SecurityGroupIds and #data.SecurityGroupIds > 0 then
    return data.SecurityGroupIds
  end
  local subnet = inst.subnet and C.find(ctx, "subnet", inst.subnet)
  if subnet then
    for _, g in pairs(ctx.db.security_groups or {}) do
      if g.VpcId == subnet.VpcId and g._default then return { g.GroupId } end
    end
  end
  return {}
end

function M.DeleteSecurityGroup(ctx, p)
  local g
  if p.GroupId == nil then
    -- A name names a group of the default VPC.
    local vpc_id = require("fo.sim.services.ec2.default_vpc").id(ctx)
    if p.GroupName and vpc_id == nil then
      ctx:fail("VPCIdNotSpecified",
        "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
    end
    if p.GroupName == nil then
      ctx:fail("MissingParameter", "The request must contain the parameter groupId")
    end
    for _, x in pairs(ctx.db.security_groups or {}) do
      if x.VpcId == vpc_id and x.GroupName == p.GroupName then g = x end
    end
    if g == nil then
      ctx:fail("InvalidGroup.NotFound", ("The security group '%s' does not exist in default VPC '%s'")
        :format(p.GroupName, vpc_id))
    end
  else
    g = C.get(ctx, "sg", p.GroupId)
  end
  if g._default then
    ctx:fail("CannotDelete",
      ('the specified group: "%s" name: "default" cannot be deleted by a user'):format(g.GroupId))
  end
  if group_in_use(ctx, g) then
    ctx:fail("DependencyViolation", ("resource %s has a dependent object"):format(g.GroupId))
  end
  M.remove_group(ctx, g)
  return {}
end

return M
