-- The resources AWS authorizes a call on (the Service Authorization Reference's resource
-- types of its action), worked out from the call's parameters and the sim's records.
-- Each is {arn = the resource's ARN, scope = that ARN with the parts a stack cannot know
-- in advance (generated ids) as "*", tags = its tags (key → value) where the service
-- evaluates aws:ResourceTag/<key> for the action, else nil}. An action AWS authorizes on
-- no resource (Describe*/List* calls, creates of resources with generated ids such as
-- kms:CreateKey or route53:CreateHostedZone) has the single resource "*", which only a
-- statement with Resource "*" matches. fo.sim.authz evaluates a call's policies once per
-- resource; fo.engine.deployer_policy prints the scopes.
local M = {}

local function one(arn, scope, tags)
  return { arn = arn, scope = scope or arn, tags = tags }
end

local STAR = { one("*") }

local function list(v)
  if v == nil then return {} end
  if type(v) ~= "table" then return { v } end
  return v
end

-- EC2 ---------------------------------------------------------------------------------
-- What each EC2 action on existing resources names: parameter → resource kind (the kinds
-- of fo.sim.services.ec2.common). AWS's reference: AssociateRouteTable on route-table and
-- subnet (and the gateway it names), Attach/DetachInternetGateway on internet-gateway and
-- vpc, Authorize/RevokeSecurityGroup* on security-group, CreateRoute/DeleteRoute/
-- ReplaceRoute on route-table, each Delete*/Modify* on its own resource. All of them
-- support aws:ResourceTag on those resources.
local EC2 = {
  AssociateRouteTable = { RouteTableId = "rtb", SubnetId = "subnet", GatewayId = "igw" },
  AttachInternetGateway = { InternetGatewayId = "igw", VpcId = "vpc" },
  DetachInternetGateway = { InternetGatewayId = "igw", VpcId = "vpc" },
  AuthorizeSecurityGroupIngress = { GroupId = "sg" },
  AuthorizeSecurityGroupEgress = { GroupId = "sg" },
  RevokeSecurityGroupIngress = { GroupId = "sg" },
  RevokeSecurityGroupEgress = { GroupId = "sg" },
  ModifySecurityGroupRules = { GroupId = "sg" },
  CreateRoute = { RouteTableId = "rtb" },
  DeleteRoute = { RouteTableId = "rtb" },
  ReplaceRoute = { RouteTableId = "rtb" },
  DeleteRouteTable = { RouteTableId = "rtb" },
  DeleteSubnet = { SubnetId = "subnet" },
  ModifySubnetAttribute = { SubnetId = "subnet" },
  DeleteVpc = { VpcId = "vpc" },
  ModifyVpcAttribute = { VpcId = "vpc" },
  DeleteInternetGateway = { InternetGatewayId = "igw" },
  DeleteSecurityGroup = { GroupId = "sg" },
  DeleteLaunchTemplate = { LaunchTemplateId = "lt" },
  ModifyLaunchTemplate = { LaunchTemplateId = "lt" },
  CreateLaunchTemplateVersion = { LaunchTemplateId = "lt" },
  DeleteLaunchTemplateVersions = { LaunchTemplateId = "lt" },
  DeleteFlowLogs = { FlowLogIds = "fl" },
  DeleteVpcEndpoints = { VpcEndpointIds = "vpce" },
  ModifyVpcEndpoint = { VpcEndpointId = "vpce" },
  ReleaseAddress = { AllocationId = "eipalloc" },
  DeleteNatGateway = { NatGatewayId = "nat" },
}

local function tag_map(tags)
  local out = {}
  for _, t in ipairs(tags or {}) do
    if type(t) == "table" and t.Key then out[t.Key] = t.Value or "" end
  end
  return out
end

local function ec2(sim, operation, params, region, account)
  local spec = EC2[operation]
  if not spec then return STAR end
  local common = require "fo.sim.services.ec2.common"
  local db = sim.store:db(account, region, "ec2")
  local out = {}
  local function add(kname, id)
    local kind = common.KINDS[kname]
    local coll = db[kind.coll] or {}
    local r = coll[id]
    if not r and kname == "lt" then -- a launch template named rather than id'd
      for _, lt in pairs(coll) do
        if lt.LaunchTemplateName == params.LaunchTemplateName then r = lt; id = lt.LaunchTemplateId end
      end
    end
    if id == nil then return end
    local base = ("arn:aws:ec2:%s:%s:%s/"):format(region, account, kind.rtype)
    -- a resource that does not exist has no tags: a tag condition on it does not hold
    out[#out + 1] = one(base .. id, base .. "*", tag_map(r and r.Tags))
  end
  local names = {}
  for param in pairs(spec) do names[#names + 1] = param end
  table.sort(names)
  for _, param in ipairs(names) do
    for _, id in ipairs(list(params[param])) do add(spec[param], id) end
  end
  if spec.LaunchTemplateId and params.LaunchTemplateId == nil and params.LaunchTemplateName then
    add("lt", nil)
  end
  return #out > 0 and out or STAR
end

-- DisassociateRouteTable names an association: AWS authorizes on its route table and subnet.
local function ec2_disassociate(sim, params, region, account)
  local db = sim.store:db(account, region, "ec2")
  for _, rt in pairs(db.route_tables or {}) do
    for _, a in ipairs(rt.Associations or {}) do
      if a.RouteTableAssociationId == params.AssociationId then
        return ec2(sim, "AssociateRouteTable", { RouteTableId = rt.RouteTableId,
          SubnetId = a.SubnetId, GatewayId = a.GatewayId }, region, account)
      end
    end
  end
  -- an unknown association: the route table's ARN with no resource to carry a tag
  local base = ("arn:aws:ec2:%s:%s:route-table/"):format(region, account)
  return { one(base .. "unknown", base .. "*", {}) }
end

-- Elastic Load Balancing v2 -----------------------------------------------------------
-- ARNs carry the names the stack chose and ids ELB generates: the scope keeps the names.
local function elb_scope(arn)
  return (arn:gsub("(:loadbalancer/%a+/[^/]+)/[^/]+$", "%1/*")
    :gsub("(:targetgroup/[^/]+)/[^/]+$", "%1/*")
    :gsub("(:listener/%a+/[^/]+)/[^/]+/[^/]+$", "%1/*/*")
    :gsub("(:listener%-rule/%a+/[^/]+)/[^/]+/[^/]+/[^/]+$", "%1/*/*/*"))
end

local function elbv2(operation, params, region, account)
  if operation:match("^Describe") then return STAR end
  local base = ("arn:aws:elasticloadbalancing:%s:%s:"):format(region, account)
  local arns = {}
  if operation == "CreateLoadBalancer" and params.Name then
    local kind = ({ network = "net", gateway = "gwy" })[params.Type] or "app"
    arns[1] = ("%sloadbalancer/%s/%s/*"):format(base, kind, params.Name)
  elseif operation == "CreateTargetGroup" and params.Name then
    arns[1] = ("%stargetgroup/%s/*"):format(base, params.Name)
  else
    for _, p in ipairs{ "ListenerArn", "RuleArn", "LoadBalancerArn", "TargetGroupArn" } do
      if params[p] then arns[#arns + 1] = params[p]; break end
    end
    for _, a in ipairs(list(params.ResourceArns)) do arns[#arns + 1] = a end
  end
  if #arns == 0 then return STAR end
  local out = {}
  for _, a in ipairs(arns) do out[#out + 1] = one(a, elb_scope(a)) end
  return out
end

-- Auto Scaling: the group's ARN holds a generated UUID before its name ----------------
local function autoscaling(sim, operation, params, region, account)
  if operation:match("^Describe") then return STAR end
  local names = {}
  if params.AutoScalingGroupName then names[1] = params.AutoScalingGroupName end
  for _, t in ipairs(list(params.Tags)) do
    if type(t) == "table" and t.ResourceType == "auto-scaling-group" and t.ResourceId then
      names[#names + 1] = t.ResourceId
    end
  end
  if #names == 0 then return STAR end
  local groups = sim.store:db(account, region, "autoscaling").groups or {}
  local out, seen = {}, {}
  for _, name in ipairs(names) do
    if not seen[name] then
      seen[name] = true
      local scope = ("arn:aws:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s")
        :format(region, account, name)
      local g = groups[name]
      out[#out + 1] = one(g and g.AutoScalingGroupARN or scope, scope)
    end
  end
  return out
end

-- CloudWatch alarms, by name -----------------------------------------------------------
local function cloudwatch(operation, params, region, account)
  local names = {}
  if params.AlarmName then names[1] = params.AlarmName end
  for _, n in ipairs(list(params.AlarmNames)) do names[#names + 1] = n end
  local out = {}
  for _, n in ipairs(names) do
    out[#out + 1] = one(("arn:aws:cloudwatch:%s:%s:alarm:%s"):format(region, account, n))
  end
  if params.ResourceARN then out[#out + 1] = one(params.ResourceARN) end
  if operation == "DescribeAlarms" and #names == 0 then return STAR end
  return #out > 0 and out or STAR
end

-- CloudWatch Logs: a log group's ARN as IAM matches it: log-group:<name>:* for the group's
-- actions, log-group:<name> (as the request names it) for TagResource, UntagResource and
-- ListTagsForResource (the CloudWatch Logs User Guide's "CloudWatch Logs resources and
-- operations") ----------------------------------------------------------------------------
local TAG_APIS = { TagResource = true, UntagResource = true, ListTagsForResource = true }

-- The scope covers both forms with one pattern, log-group:<name>* (it also covers groups
-- whose names begin with the stack's group's name: the price of fitting IAM's size quota).
local function logs(operation, params, region, account)
  if operation:match("^Describe") and operation ~= "DescribeLogStreams" then return STAR end
  if TAG_APIS[operation] and type(params.resourceArn) == "string" then
    local arn = params.resourceArn:gsub(":%*$", "")
    return { one(arn, arn .. "*") }
  end
  local name = params.logGroupName
  if not name then return STAR end
  local arn = ("arn:aws:logs:%s:%s:log-group:%s"):format(region, account, name)
  return { one(arn .. ":*", arn .. "*") }
end

-- KMS: keys by generated id (aws:ResourceTag applies), aliases by name -----------------
local function kms(sim, operation, params, region, account)
  local keys = require "fo.sim.kms.keys"
  local db = keys.db(sim, account, region)
  local out = {}
  local function key(k, id)
    local arn = keys.key_arn(region, account, id)
    local tags = {}
    for _, t in ipairs(k and k.Tags or {}) do tags[t.TagKey] = t.TagValue end
    out[#out + 1] = one(arn, keys.key_arn(region, account, "*"), tags)
  end
  local function ref(r)
    if type(r) ~= "string" then return end
    local rest = r:match("^arn:aws:kms:[^:]*:%d*:(.+)$") or r
    if rest:match("^alias/") then
      local a = db.aliases[rest]
      if a then key(db.keys[a.TargetKeyId], a.TargetKeyId) end
      return
    end
    local id = rest:match("^key/(.+)$") or rest
    key(db.keys[id], id)
  end
  if params.AliasName then
    out[#out + 1] = one(keys.alias_arn(region, account, params.AliasName))
    if operation == "DeleteAlias" then ref(params.AliasName) end
  end
  ref(params.TargetKeyId)
  ref(params.KeyId)
  return #out > 0 and out or STAR
end

-- Route 53: zones, health checks and changes by generated id; no aws:ResourceTag --------
local function route53(operation, params)
  local out = {}
  local function add(kind, id)
    if type(id) ~= "string" then return end
    id = id:match("([^/]+)$")
    out[#out + 1] = one(("arn:aws:route53:::%s/%s"):format(kind, id),
      ("arn:aws:route53:::%s/*"):format(kind))
  end
  if operation == "GetChange" then add("change", params.Id)
  elseif operation == "GetHostedZone" or operation == "DeleteHostedZone" then add("hostedzone", params.Id)
  elseif params.HostedZoneId and operation ~= "ListHostedZonesByName" then
    add("hostedzone", params.HostedZoneId)
  elseif params.HealthCheckId then add("healthcheck", params.HealthCheckId)
  elseif params.ResourceType and params.ResourceId then add(params.ResourceType, params.ResourceId)
  end
  return #out > 0 and out or STAR
end

-- ACM: certificates by generated id (aws:ResourceTag applies); RequestCertificate and
-- ListCertificates on no resource
local function acm(sim, params, region, account)
  local arn = params.CertificateArn
  if type(arn) ~= "string" then return STAR end
  local c = (sim.store:db(account, region, "acm").certs or {})[arn]
  return { one(arn, ("arn:aws:acm:%s:%s:certificate/*"):format(region, account),
    tag_map(c and c.tags)) }
end

-- S3: buckets by name (global: no region or account), objects under them ---------------
local function s3(operation, params)
  if type(params.Bucket) ~= "string" then return STAR end
  local bucket = "arn:aws:s3:::" .. params.Bucket
  if operation == "DeleteObjects" then return { one(bucket .. "/*") } end
  if params.Key ~= nil then return { one(bucket .. "/" .. params.Key, bucket .. "/*") } end
  return { one(bucket) }
end

--- The resources call (service, operation, params) in `region` of `account` is authorized
--- on (see the header). `single` (the one-resource answer of the services fo.sim.authz
--- already scoped) is used for the others.
function M.of(sim, service, operation, params, region, account, single)
  params = params or {}
  if service == "ec2" then
    if operation == "DisassociateRouteTable" then
      return ec2_disassociate(sim, params, region, account)
    end
    return ec2(sim, operation, params, region, account)
  elseif service == "elbv2" then return elbv2(operation, params, region, account)
  elseif service == "autoscaling" then return autoscaling(sim, operation, params, region, account)
  elseif service == "cloudwatch" then return cloudwatch(operation, params, region, account)
  elseif service == "logs" then return logs(operation, params, region, account)
  elseif service == "kms" then return kms(sim, operation, params, region, account)
  elseif service == "route53" then return route53(operation, params)
  elseif service == "s3" then return s3(operation, params)
  elseif service == "acm" then return acm(sim, params, region, account)
  end
  return { one(single) }
end

return M
