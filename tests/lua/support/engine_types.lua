-- Test-only resource types over the simulator's real services, to prove the engine (not
-- named test_*.lua: it is no test): test:vpc, test:subnet, test:security_group (EC2),
-- test:topic (SNS), test:role (IAM), test:zone (Route 53: adopted by its idempotency
-- token, the CallerReference).
-- Each implements create/read/update/delete/diff-by-schema/adopt-by-tags as a real type
-- would (the AWS types of the recipe issue follow the same contract).
local M = {}

local C = require "fo.aws.resources.common"
local tag_list, tag_delta, user_tags = C.tag_list, C.tag_delta, C.user_tags
local unless_gone, unknown_owned, ec2_retag = C.unless, C.unknown_owned, C.ec2_retag

-- The EC2 kinds differ only in names: k = { describe=, list=, ids= (DescribeX ids
-- parameter), id= (id field), delete=, id_param= (DeleteX/ModifyX id parameter),
-- notfound=, outputs = fn(record), attribute = {prop=, op=, member=} (one boolean
-- property updated in place) }. Gives find(ctx, id) → record or nil, and the type's
-- update, delete and adopt.
local function ec2_kind(k)
  local ops = {}
  function ops.find(ctx, id)
    local ec2 = ctx:client("ec2")
    local out = unless_gone({ k.notfound }, function()
      return ec2[k.describe](ec2, { [k.ids] = { id } })
    end)
    return out and out[k.list][1]
  end
  function ops.update(ctx, id, old, new, outputs)
    local ec2 = ctx:client("ec2")
    local a = k.attribute
    if a and old[a.prop] ~= new[a.prop] then
      ec2[a.op](ec2, { [k.id_param] = id, [a.member] = { Value = new[a.prop] } })
    end
    ec2_retag(ec2, id, old.tags, new.tags)
    return outputs
  end
  function ops.delete(ctx, id)
    local ec2 = ctx:client("ec2")
    unless_gone({ k.notfound }, function() return ec2[k.delete](ec2, { [k.id_param] = id }) end)
  end
  function ops.adopt(ctx)
    local ec2 = ctx:client("ec2")
    local list = ec2[k.describe](ec2, { Filters = ctx:tag_filters() })[k.list]
    local r = unknown_owned(ctx, list, k.id)
    if r then return r[k.id], k.outputs(r) end
    return nil
  end
  return ops
end

-- test:vpc -------------------------------------------------------------------------

local function dns_hostnames(ec2, id)
  return ec2:DescribeVpcAttribute{ VpcId = id, Attribute = "enableDnsHostnames" }
    .EnableDnsHostnames.Value == true
end

local function vpc_outputs(v)
  return { id = v.VpcId, cidr = v.CidrBlock }
end

local VPC = ec2_kind{ describe = "DescribeVpcs", list = "Vpcs", ids = "VpcIds", id = "VpcId",
  delete = "DeleteVpc", id_param = "VpcId", notfound = "InvalidVpcID.NotFound",
  outputs = vpc_outputs,
  attribute = { prop = "dns_hostnames", op = "ModifyVpcAttribute", member = "EnableDnsHostnames" } }

fo.type("test:vpc", {
  doc = "an EC2 VPC",
  schema = {
    properties = {
      cidr = { type = "string", required = true },
      dns_hostnames = { type = "boolean", default = false },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "cidr" },
    replace_on = { "cidr" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local vpc = ec2:CreateVpc{ CidrBlock = p.cidr,
      TagSpecifications = C.ec2_tag_specs(ctx, "vpc", p.tags) }.Vpc
    if p.dns_hostnames then
      ec2:ModifyVpcAttribute{ VpcId = vpc.VpcId, EnableDnsHostnames = { Value = true } }
    end
    return vpc.VpcId, vpc_outputs(vpc)
  end,
  read = function(ctx, id)
    local vpc = VPC.find(ctx, id)
    if not vpc then return nil end
    return vpc_outputs(vpc), { cidr = vpc.CidrBlock,
      dns_hostnames = dns_hostnames(ctx:client("ec2"), id), tags = user_tags(vpc.Tags) }
  end,
  update = VPC.update,
  delete = VPC.delete,
  adopt = VPC.adopt,
})

-- test:subnet ------------------------------------------------------------------------

local function subnet_outputs(s)
  return { id = s.SubnetId, az = s.AvailabilityZone }
end

local SUBNET = ec2_kind{ describe = "DescribeSubnets", list = "Subnets", ids = "SubnetIds",
  id = "SubnetId", delete = "DeleteSubnet", id_param = "SubnetId",
  notfound = "InvalidSubnetID.NotFound", outputs = subnet_outputs,
  attribute = { prop = "public_ip", op = "ModifySubnetAttribute", member = "MapPublicIpOnLaunch" } }

fo.type("test:subnet", {
  doc = "an EC2 subnet",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      cidr = { type = "string", required = true },
      az = { type = "string" },
      public_ip = { type = "boolean", default = false },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "az" },
    replace_on = { "vpc_id", "cidr", "az" },
  },
  create = function(ctx, p)
    local ec2 = ctx:client("ec2")
    local s = ec2:CreateSubnet{ VpcId = p.vpc_id, CidrBlock = p.cidr, AvailabilityZone = p.az,
      TagSpecifications = C.ec2_tag_specs(ctx, "subnet", p.tags) }.Subnet
    if p.public_ip then
      ec2:ModifySubnetAttribute{ SubnetId = s.SubnetId, MapPublicIpOnLaunch = { Value = true } }
    end
    return s.SubnetId, subnet_outputs(s)
  end,
  read = function(ctx, id, props)
    local s = SUBNET.find(ctx, id)
    if not s then return nil end
    return subnet_outputs(s), { vpc_id = s.VpcId, cidr = s.CidrBlock,
      az = props.az and s.AvailabilityZone or nil, public_ip = s.MapPublicIpOnLaunch == true,
      tags = user_tags(s.Tags) }
  end,
  update = SUBNET.update,
  delete = SUBNET.delete,
  adopt = SUBNET.adopt,
})

-- test:security_group ------------------------------------------------------------------

local SG = ec2_kind{ describe = "DescribeSecurityGroups", list = "SecurityGroups",
  ids = "GroupIds", id = "GroupId", delete = "DeleteSecurityGroup", id_param = "GroupId",
  notfound = "InvalidGroup.NotFound", outputs = function(g) return { id = g.GroupId } end }

fo.type("test:security_group", {
  doc = "an EC2 security group (its name is unique in its VPC: replaced delete-first)",
  schema = {
    properties = {
      vpc_id = { type = "string", required = true },
      name = { type = "string", required = true },
      description = { type = "string", default = "managed by fo" },
      tags = { type = "map", default = {} },
    },
    outputs = { "id" },
    replace_on = { "vpc_id", "name", "description" },
    delete_first = true,
  },
  create = function(ctx, p)
    local out = ctx:client("ec2"):CreateSecurityGroup{ VpcId = p.vpc_id, GroupName = p.name,
      Description = p.description,
      TagSpecifications = C.ec2_tag_specs(ctx, "security-group", p.tags) }
    return out.GroupId, { id = out.GroupId }
  end,
  read = function(ctx, id)
    local g = SG.find(ctx, id)
    if not g then return nil end
    return { id = g.GroupId }, { vpc_id = g.VpcId, name = g.GroupName,
      description = g.Description, tags = user_tags(g.Tags) }
  end,
  update = SG.update,
  delete = SG.delete,
  adopt = SG.adopt,
})

-- test:topic ---------------------------------------------------------------------------

local function sns_tags(sns, arn)
  return sns:ListTagsForResource{ ResourceArn = arn }.Tags or {}
end

fo.type("test:topic", {
  doc = "an SNS topic",
  schema = {
    properties = {
      name = { type = "string", required = true },
      display_name = { type = "string", default = "" },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name" },
    replace_on = { "name" },
  },
  create = function(ctx, p)
    local sns = ctx:client("sns")
    local arn = sns:CreateTopic{ Name = p.name, Tags = tag_list(ctx, p.tags) }.TopicArn
    if p.display_name ~= "" then
      sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName",
        AttributeValue = p.display_name }
    end
    return arn, { arn = arn, name = p.name }
  end,
  read = function(ctx, arn, props)
    local sns = ctx:client("sns")
    local out = unless_gone({ "NotFound" }, function()
      return sns:GetTopicAttributes{ TopicArn = arn }
    end)
    if not out then return nil end
    return { arn = arn, name = props.name }, { display_name = out.Attributes.DisplayName or "",
      tags = user_tags(sns_tags(sns, arn)) }
  end,
  update = function(ctx, arn, old, new, outputs)
    local sns = ctx:client("sns")
    if old.display_name ~= new.display_name then
      sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName",
        AttributeValue = new.display_name }
    end
    local set, del = tag_delta(old.tags, new.tags)
    if #set > 0 then sns:TagResource{ ResourceArn = arn, Tags = set } end
    if #del > 0 then sns:UntagResource{ ResourceArn = arn, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, arn)
    ctx:client("sns"):DeleteTopic{ TopicArn = arn } -- deleting a missing topic succeeds at AWS
  end,
  adopt = function(ctx, p)
    local sns = ctx:client("sns")
    for t in sns:items("ListTopics") do
      if t.TopicArn:match(":" .. p.name:gsub("%p", "%%%0") .. "$") and not ctx.known_ids[t.TopicArn]
        and ctx:owns(sns_tags(sns, t.TopicArn)) then
        return t.TopicArn, { arn = t.TopicArn, name = p.name }
      end
    end
    return nil
  end,
})

-- test:role ----------------------------------------------------------------------------

local ASSUME_EC2 = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
  .. '{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
M.ASSUME_EC2 = ASSUME_EC2

fo.type("test:role", {
  doc = "an IAM role (its name is unique in the account: replaced delete-first)",
  schema = {
    properties = {
      name = { type = "string", required = true },
      assume_role_policy = { type = "string", default = ASSUME_EC2 },
      description = { type = "string", default = "" },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name", "id" },
    replace_on = { "name" },
    delete_first = true,
  },
  create = function(ctx, p)
    local role = ctx:client("iam"):CreateRole{ RoleName = p.name,
      AssumeRolePolicyDocument = p.assume_role_policy,
      Description = p.description ~= "" and p.description or nil,
      Tags = tag_list(ctx, p.tags) }.Role
    return role.RoleName, { arn = role.Arn, name = role.RoleName, id = role.RoleId }
  end,
  read = function(ctx, name)
    local out = unless_gone({ "NoSuchEntity" }, function()
      return ctx:client("iam"):GetRole{ RoleName = name }
    end)
    if not out then return nil end
    local r = out.Role
    return { arn = r.Arn, name = r.RoleName, id = r.RoleId },
      { name = r.RoleName, description = r.Description or "",
        assume_role_policy = C.url_decode(r.AssumeRolePolicyDocument), tags = user_tags(r.Tags) }
  end,
  update = function(ctx, name, old, new, outputs)
    local iam = ctx:client("iam")
    if old.description ~= new.description then
      iam:UpdateRole{ RoleName = name, Description = new.description }
    end
    if old.assume_role_policy ~= new.assume_role_policy then
      iam:UpdateAssumeRolePolicy{ RoleName = name, PolicyDocument = new.assume_role_policy }
    end
    local set, del = tag_delta(old.tags, new.tags)
    if #set > 0 then iam:TagRole{ RoleName = name, Tags = set } end
    if #del > 0 then iam:UntagRole{ RoleName = name, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, name)
    local iam = ctx:client("iam")
    unless_gone({ "NoSuchEntity" }, function() return iam:DeleteRole{ RoleName = name } end)
  end,
  adopt = function(ctx, p)
    local out = unless_gone({ "NoSuchEntity" }, function()
      return ctx:client("iam"):GetRole{ RoleName = p.name }
    end)
    local r = out and out.Role
    if r and not ctx.known_ids[r.RoleName] and ctx:owns(r.Tags) then
      return r.RoleName, { arn = r.Arn, name = r.RoleName, id = r.RoleId }
    end
    return nil
  end,
})

-- test:zone ----------------------------------------------------------------------------
-- A public hosted zone. Its CallerReference is ctx.token, so an interrupted create is
-- adopted by the token even before its tags are on (Route 53 tags after the create).
-- Route 53 never accepts a reference twice, even after its zone was deleted: this type
-- relies on the engine giving every create a new token (a create again after a rollback
-- or a destroy included), and on adoption getting the interrupted create's.

local function zone_id(id)
  return (id:match("([^/]+)$"))
end

local function zone_tags(r53, id)
  return r53:ListTagsForResource{ ResourceType = "hostedzone", ResourceId = id }
    .ResourceTagSet.Tags or {}
end

local function zone_outputs(z, ds)
  return { id = zone_id(z.Id), name_server = ds and ds.NameServers[1] or nil }
end

fo.type("test:zone", {
  doc = "a Route 53 public hosted zone (CallerReference = the idempotency token)",
  schema = {
    properties = {
      name = { type = "string", required = true },
      comment = { type = "string", default = "" },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "name_server" },
    replace_on = { "name", "comment" },
  },
  create = function(ctx, p)
    local r53 = ctx:client("route53")
    local out = r53:CreateHostedZone{ Name = p.name, CallerReference = ctx.token,
      HostedZoneConfig = p.comment ~= "" and { Comment = p.comment } or nil }
    local id = zone_id(out.HostedZone.Id)
    r53:ChangeTagsForResource{ ResourceType = "hostedzone", ResourceId = id,
      AddTags = tag_list(ctx, p.tags) }
    return id, zone_outputs(out.HostedZone, out.DelegationSet)
  end,
  read = function(ctx, id)
    local r53 = ctx:client("route53")
    local out = unless_gone({ "NoSuchHostedZone" }, function() return r53:GetHostedZone{ Id = id } end)
    if not out then return nil end
    local z = out.HostedZone
    return zone_outputs(z, out.DelegationSet), { name = (z.Name:gsub("%.$", "")),
      comment = z.Config and z.Config.Comment or "", tags = user_tags(zone_tags(r53, id)) }
  end,
  update = function(ctx, id, old, new, outputs)
    local set, del = tag_delta(old.tags, new.tags)
    if #set > 0 or #del > 0 then
      ctx:client("route53"):ChangeTagsForResource{ ResourceType = "hostedzone", ResourceId = id,
        AddTags = #set > 0 and set or nil, RemoveTagKeys = #del > 0 and del or nil }
    end
    return outputs
  end,
  delete = function(ctx, id)
    local r53 = ctx:client("route53")
    unless_gone({ "NoSuchHostedZone" }, function() return r53:DeleteHostedZone{ Id = id } end)
  end,
  adopt = function(ctx)
    local r53 = ctx:client("route53")
    for z in r53:items("ListHostedZones") do
      local id = zone_id(z.Id)
      if z.CallerReference == ctx.token and not ctx.known_ids[id] then
        local ds = r53:GetHostedZone{ Id = id }.DelegationSet
        return id, zone_outputs(z, ds)
      end
    end
    return nil
  end,
})

--- Makes the k-th mutating call `sim` answers on the wire (counting from now) fail with
--- a non-retryable AWS error (FoInjectedFault, HTTP 400): the simulator's
--- fail_mutating_call knob (docs/simulator.md). Returns a function that tells how many
--- mutating calls were counted.
function M.fail_mutating_call(sim, k)
  sim:set_knob("fail_mutating_call", k)
  return function() return sim.knobs.mutating_seen end
end

return M
