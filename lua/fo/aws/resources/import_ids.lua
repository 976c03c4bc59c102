-- The id `import` takes for each AWS resource type (docs/recipes.md, "Importing existing
-- resources"): what the type's create returns and its state records. An id given by hand
-- is checked against the format before anything is read; for a composite id (a route, a
-- DNS record, a role's inline policy, a scaling policy, a subscription) the properties it
-- names are what the type's read locates the resource by.
local import = require "fo.engine.import"
local common = require "fo.aws.resources.common"

local M = {}

local function prefixed(prefix)
  return function(id)
    return id:match("^" .. prefix:gsub("%-", "%%-") .. "%x+$") ~= nil
  end
end

local function arn_of(service, resource)
  return function(id)
    return id:match("^arn:[%w-]+:" .. service .. ":[%w-]+:%d+:" .. resource) ~= nil
  end
end

local function name_check(id)
  return not id:match("^arn:") and not id:find("%s"), "a name, not an ARN"
end

-- The record types Route 53 has (a record's id names one).
local RR_TYPES = { A = true, AAAA = true, CAA = true, CNAME = true, DS = true, MX = true,
  NAPTR = true, NS = true, PTR = true, SOA = true, SPF = true, SRV = true, TXT = true,
  HTTPS = true, SVCB = true, TLSA = true, SSHFP = true }

-- "ZONE_name_TYPE[_SETID]": names may hold "_" (_dmarc.example.com), so the type is the
-- first part after the zone that is a record type and follows the name.
local function record_props(id)
  local zone, rest = id:match("^([^_]+)_(.+)$")
  if not zone then return nil end
  local pos = 1
  while true do
    local s, e, t = rest:find("_(%u+)", pos)
    if not s then return nil end
    local after = rest:sub(e + 1)
    if RR_TYPES[t] and (after == "" or after:sub(1, 1) == "_") and s > 1 then
      local set = after ~= "" and after:sub(2) or nil
      return { zone_id = zone, name = rest:sub(1, s - 1), type = t,
        set_identifier = set ~= "" and set or nil }
    end
    pos = e + 1
  end
end

local function route_props(id)
  local rtb, dest = id:match("^(rtb%-%x+)_(.+)$")
  if not rtb then return nil end
  local p = { route_table_id = rtb }
  if dest:match("^pl%-") then p.destination_prefix_list_id = dest
  elseif dest:find(":", 1, true) then p.destination_ipv6_cidr_block = dest
  else p.destination_cidr_block = dest end
  return p
end

-- arn:aws:autoscaling:REGION:ACCOUNT:scalingPolicy:UUID:autoScalingGroupName/G:policyName/P
local function scaling_policy_props(id)
  local group, name = id:match(":autoScalingGroupName/(.-):policyName/(.+)$")
  return group and { group_name = group, policy_name = name } or nil
end

-- Owner tags: what an import reads to refuse a resource another fo stack tagged as its own
-- (import.lua). Each reader gives the resource's tags, fo's included, as a map; it runs
-- after the type's read found the resource, so a failed call is an error (nothing tells
-- whose the resource is), not "none".

-- A {Key=, Value=} list (or KMS's {TagKey=, TagValue=}) as a map.
local function tag_map(list)
  local map = {}
  for _, t in ipairs(list or {}) do map[t.Key or t.TagKey] = t.Value or t.TagValue end
  return map
end

-- An EC2 resource's tags, read with the Describe call of its id's prefix.
local EC2_DESCRIBE = {
  vpc = { "DescribeVpcs", "VpcIds", "Vpcs" },
  subnet = { "DescribeSubnets", "SubnetIds", "Subnets" },
  igw = { "DescribeInternetGateways", "InternetGatewayIds", "InternetGateways" },
  rtb = { "DescribeRouteTables", "RouteTableIds", "RouteTables" },
  sg = { "DescribeSecurityGroups", "GroupIds", "SecurityGroups" },
  sgr = { "DescribeSecurityGroupRules", "SecurityGroupRuleIds", "SecurityGroupRules" },
  vpce = { "DescribeVpcEndpoints", "VpcEndpointIds", "VpcEndpoints" },
  eipalloc = { "DescribeAddresses", "AllocationIds", "Addresses" },
  nat = { "DescribeNatGateways", "NatGatewayIds", "NatGateways" },
  lt = { "DescribeLaunchTemplates", "LaunchTemplateIds", "LaunchTemplates" },
  fl = { "DescribeFlowLogs", "FlowLogIds", "FlowLogs" },
}

local function ec2_tags(ctx, id)
  local d = assert(EC2_DESCRIBE[id:match("^(%a+)%-")], id)
  local ec2 = ctx:client("ec2")
  local r = assert(ec2[d[1]](ec2, { [d[2]] = { id } })[d[3]][1], id)
  return tag_map(r.Tags or r.TagSet)
end

local function client(ctx, service) return ctx:client(service) end

local OWNER_TAGS = {
  acm = function(ctx, arn)
    return tag_map(client(ctx, "acm"):ListTagsForCertificate{ CertificateArn = arn }.Tags)
  end,
  autoscaling = function(ctx, name)
    local g = client(ctx, "autoscaling"):DescribeAutoScalingGroups{
      AutoScalingGroupNames = { name } }.AutoScalingGroups[1]
    return tag_map(assert(g, name).Tags)
  end,
  cloudwatch = function(ctx, name)
    local c = client(ctx, "cloudwatch")
    local a = assert(c:DescribeAlarms{ AlarmNames = { name }, AlarmTypes = { "MetricAlarm" } }
      .MetricAlarms[1], name)
    return tag_map(c:ListTagsForResource{ ResourceARN = a.AlarmArn }.Tags)
  end,
  dynamodb = function(ctx, name)
    local c = client(ctx, "dynamodb")
    local list = {}
    for t in c:items("ListTagsOfResource", { ResourceArn =
        c:DescribeTable{ TableName = name }.Table.TableArn }) do
      list[#list + 1] = t
    end
    return tag_map(list)
  end,
  elbv2 = function(ctx, arn)
    local d = client(ctx, "elbv2"):DescribeTags{ ResourceArns = { arn } }.TagDescriptions[1]
    return tag_map(d and d.Tags)
  end,
  iam_role = function(ctx, name)
    return tag_map(client(ctx, "iam"):GetRole{ RoleName = name }.Role.Tags)
  end,
  iam_profile = function(ctx, name)
    return tag_map(client(ctx, "iam"):GetInstanceProfile{ InstanceProfileName = name }
      .InstanceProfile.Tags)
  end,
  kms = function(ctx, key_id)
    return tag_map(client(ctx, "kms"):ListResourceTags{ KeyId = key_id }.Tags)
  end,
  logs = function(ctx, name)
    local c = client(ctx, "logs")
    for _, g in ipairs(c:DescribeLogGroups{ logGroupNamePrefix = name }.logGroups or {}) do
      if g.logGroupName == name then
        return c:ListTagsForResource{ resourceArn = g.logGroupArn }.tags or {}
      end
    end
    error(("log group %s is not listed"):format(name), 0)
  end,
  route53_zone = function(ctx, id)
    return tag_map(client(ctx, "route53"):ListTagsForResource{ ResourceType = "hostedzone",
      ResourceId = id }.ResourceTagSet.Tags)
  end,
  route53_health_check = function(ctx, id)
    return tag_map(client(ctx, "route53"):ListTagsForResource{ ResourceType = "healthcheck",
      ResourceId = id }.ResourceTagSet.Tags)
  end,
  s3 = function(ctx, name)
    local c = client(ctx, "s3")
    local out = common.unless({ "NoSuchTagSet" }, c.GetBucketTagging, c, { Bucket = name })
    return tag_map(out and out.TagSet)
  end,
  sns = function(ctx, arn)
    return tag_map(client(ctx, "sns"):ListTagsForResource{ ResourceArn = arn }.Tags)
  end,
}

-- The reader of each taggable type (every type whose schema has `tags`). The types not
-- here carry no tags of their own, so nothing on them names an owner: routes, route table
-- associations, inline role policies, scaling policies, KMS aliases, Route 53 records, SNS
-- subscriptions and topic policies, and the parameter value SSM reads (docs/recipes.md,
-- "Importing existing resources").
local TAGS_OF = {
  ["aws:acm:certificate"] = OWNER_TAGS.acm,
  ["aws:autoscaling:group"] = OWNER_TAGS.autoscaling,
  ["aws:cloudwatch:alarm"] = OWNER_TAGS.cloudwatch,
  ["aws:dynamodb:table"] = OWNER_TAGS.dynamodb,
  ["aws:elbv2:load_balancer"] = OWNER_TAGS.elbv2,
  ["aws:elbv2:target_group"] = OWNER_TAGS.elbv2,
  ["aws:elbv2:listener"] = OWNER_TAGS.elbv2,
  ["aws:iam:role"] = OWNER_TAGS.iam_role,
  ["aws:iam:instance_profile"] = OWNER_TAGS.iam_profile,
  ["aws:kms:key"] = OWNER_TAGS.kms,
  ["aws:logs:log_group"] = OWNER_TAGS.logs,
  ["aws:route53:zone"] = OWNER_TAGS.route53_zone,
  ["aws:route53:health_check"] = OWNER_TAGS.route53_health_check,
  ["aws:s3:bucket"] = OWNER_TAGS.s3,
  ["aws:sns:topic"] = OWNER_TAGS.sns,
}
for _, t in ipairs({ "vpc", "subnet", "internet_gateway", "route_table", "security_group",
  "security_group_rule", "vpc_endpoint", "eip", "nat_gateway", "launch_template", "flow_log" }) do
  TAGS_OF["aws:ec2:" .. t] = ec2_tags
end
M.TAGS_OF = TAGS_OF

local SPECS = {
  ["aws:ec2:vpc"] = { "vpc-…", "vpc-0a1b2c3d4e5f67890", prefixed("vpc-") },
  ["aws:ec2:subnet"] = { "subnet-…", "subnet-0a1b2c3d4e5f67890", prefixed("subnet-") },
  ["aws:ec2:internet_gateway"] = { "igw-…", "igw-0a1b2c3d4e5f67890", prefixed("igw-") },
  ["aws:ec2:route_table"] = { "rtb-…", "rtb-0a1b2c3d4e5f67890", prefixed("rtb-") },
  ["aws:ec2:route"] = { "`<route table id>_<destination>` (a CIDR block, an IPv6 block or a "
    .. "prefix list id)", "rtb-0a1b2c3d4e5f67890_0.0.0.0/0",
    function(id) return route_props(id) ~= nil end, route_props },
  ["aws:ec2:route_table_association"] = { "rtbassoc-…", "rtbassoc-0a1b2c3d4e5f67890",
    prefixed("rtbassoc-") },
  ["aws:ec2:security_group"] = { "sg-…", "sg-0a1b2c3d4e5f67890", prefixed("sg-") },
  ["aws:ec2:security_group_rule"] = { "sgr-… (the rule's id, DescribeSecurityGroupRules)",
    "sgr-0a1b2c3d4e5f67890", prefixed("sgr-") },
  ["aws:ec2:vpc_endpoint"] = { "vpce-…", "vpce-0a1b2c3d4e5f67890", prefixed("vpce-") },
  ["aws:ec2:eip"] = { "eipalloc-… (the allocation id)", "eipalloc-0a1b2c3d4e5f67890",
    prefixed("eipalloc-") },
  ["aws:ec2:nat_gateway"] = { "nat-…", "nat-0a1b2c3d4e5f67890", prefixed("nat-") },
  ["aws:ec2:launch_template"] = { "lt-…", "lt-0a1b2c3d4e5f67890", prefixed("lt-") },
  ["aws:ec2:flow_log"] = { "fl-…", "fl-0a1b2c3d4e5f67890", prefixed("fl-") },
  ["aws:logs:log_group"] = { "the log group's name", "/app/prod", name_check },
  ["aws:kms:key"] = { "the key id (a UUID, not its ARN or an alias)",
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    function(id) return id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil end },
  ["aws:kms:alias"] = { "`alias/<name>`", "alias/app-data",
    function(id) return id:match("^alias/.+") ~= nil end },
  ["aws:route53:zone"] = { "the hosted zone id (without /hostedzone/)", "Z0123456789ABCDEFGHIJ",
    function(id) return id:match("^Z[%u%d]+$") ~= nil end },
  ["aws:route53:health_check"] = { "the health check id (a UUID)",
    "abcdef11-2222-3333-4444-555555fedcba",
    function(id) return id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") ~= nil end },
  ["aws:route53:record"] = { "`<zone id>_<name>_<type>` and, for a record with a set "
    .. "identifier, `_<set identifier>`", "Z0123456789ABCDEFGHIJ_app.example.com_A",
    function(id) return record_props(id) ~= nil end, record_props },
  ["aws:acm:certificate"] = { "the certificate's ARN",
    "arn:aws:acm:eu-west-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab",
    arn_of("acm", "certificate/") },
  ["aws:sns:topic"] = { "the topic's ARN", "arn:aws:sns:eu-west-1:123456789012:alerts",
    arn_of("sns", "[^:]+$") },
  ["aws:sns:topic_policy"] = { "the topic's ARN", "arn:aws:sns:eu-west-1:123456789012:alerts",
    arn_of("sns", "[^:]+$"), function(id) return { topic_arn = id } end },
  ["aws:sns:subscription"] = { "the subscription's ARN (its topic is the ARN without the last "
    .. "part)",
    "arn:aws:sns:eu-west-1:123456789012:alerts:1234abcd-12ab-34cd-56ef-1234567890ab",
    arn_of("sns", "[^:]+:[^:]+$"),
    function(id) return { topic_arn = id:match("^(.*):[^:]+$") } end },
  ["aws:cloudwatch:alarm"] = { "the alarm's name", "cpu-high", name_check },
  ["aws:dynamodb:table"] = { "the table's name", "orders", name_check },
  ["aws:iam:role"] = { "the role's name", "app-role", name_check },
  ["aws:iam:role_policy"] = { "`<role name>:<policy name>`", "app-role:app-policy",
    function(id) return id:match("^[^:]+:[^:]+$") ~= nil end,
    function(id)
      local role, name = id:match("^([^:]+):([^:]+)$")
      return { role_name = role, policy_name = name }
    end },
  ["aws:iam:instance_profile"] = { "the instance profile's name", "app-profile", name_check },
  ["aws:elbv2:load_balancer"] = { "the load balancer's ARN",
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
    arn_of("elasticloadbalancing", "loadbalancer/") },
  ["aws:elbv2:target_group"] = { "the target group's ARN",
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067",
    arn_of("elasticloadbalancing", "targetgroup/") },
  ["aws:elbv2:listener"] = { "the listener's ARN",
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/"
      .. "f2f7dc8efc522ab2", arn_of("elasticloadbalancing", "listener/") },
  ["aws:autoscaling:group"] = { "the group's name", "web", name_check },
  ["aws:autoscaling:policy"] = { "the policy's ARN (it names the group and the policy)",
    "arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:1234abcd-12ab-34cd-56ef-"
      .. "1234567890ab:autoScalingGroupName/web:policyName/cpu-target",
    function(id) return scaling_policy_props(id) ~= nil end, scaling_policy_props },
  ["aws:s3:bucket"] = { "the bucket's name", "my-bucket",
    function(id) return id:match("^[a-z0-9][a-z0-9.%-]+$") ~= nil end },
  ["aws:ssm:parameter_value"] = { "the parameter's name",
    "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2", name_check },
}
M.SPECS = SPECS

for name, s in pairs(SPECS) do
  import.id_format(name, { format = s[1], example = s[2], check = s[3], props = s[4],
    tags = TAGS_OF[name] })
end

return M
