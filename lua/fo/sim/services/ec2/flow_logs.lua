-- Simulated VPC flow logs, as AWS behaves:
--   * CreateFlowLogs makes one flow log per resource (VPC, subnet or ENI, of the type
--     ResourceType names); a resource that does not exist, or already has a flow log with
--     the same traffic type and destination, is answered in Unsuccessful, not as an error;
--   * to CloudWatch Logs (the default destination type) by LogGroupName or a log-group
--     LogDestination ARN, with DeliverLogsPermissionArn: the role must exist, trust
--     vpc-flow-logs.amazonaws.com (with aws:SourceAccount and aws:SourceArn, the flow log's
--     ARN, as the service passes them) and grant logs:CreateLogStream, logs:PutLogEvents
--     and logs:DescribeLogStreams on the destination group; otherwise the flow log is still
--     created, with DeliverLogsStatus FAILED and DeliverLogsErrorMessage "Access error";
--   * a role created less than sim.timing.role_propagation seconds ago (default 0: never)
--     is refused with InvalidParameter "Unable to assume given IAM role: '<arn>'", as AWS
--     answers while a new role has not reached the service yet;
--   * MaxAggregationInterval 60 or 600 (default 600); the default log format;
--     TagSpecifications (vpc-flow-log); ClientToken makes a create idempotent;
--   * DeleteFlowLogs answers unknown ids in Unsuccessful; deleting a VPC, subnet or ENI
--     leaves its flow logs to AWS's clean-up (the simulator keeps them).
-- The simulator writes no flow records (docs/simulator.md, known differences).
local C = require "fo.sim.services.ec2.common"
local trust = require "fo.sim.trust"
local iam_policy = require "fo.sim.iam_policy"
local asg_state = require "fo.sim.asg_state"

local M = {}

M.DEFAULT_FORMAT = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} "
  .. "${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} "
  .. "${log-status}"

-- The permissions a delivery role must grant to deliver to an existing log group, each on
-- the group (its ARN with ":*", which IAM matches for the group and its streams). The VPC
-- User Guide's example role also grants logs:CreateLogGroup and logs:DescribeLogGroups on
-- "*"; these three on the group are what delivery uses (the AWS CDK's FlowLog grants
-- exactly them).
local DELIVERY_ACTIONS = { "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams" }

local RESOURCE_KIND = { VPC = "vpc", Subnet = "subnet", NetworkInterface = "eni" }

local function invalid(ctx, msg) ctx:fail("InvalidParameter", msg) end

-- True when the role `arn` names one of this account created less than
-- sim.timing.role_propagation seconds ago (not yet visible to the flow logs service).
local function role_too_new(ctx, arn)
  local account, name = (arn or ""):match("^arn:aws:iam::(%d+):role/(.+)$")
  if not name or account ~= ctx.account then return false end
  local role = (ctx:db_of("iam").roles or {})[name:match("([^/]+)$"):lower()]
  local since = role and role.created_at
  return since ~= nil and ctx:now() - since < asg_state.timing(ctx, "role_propagation")
end

local function flow_logs(ctx) return C.coll(ctx, "flow_logs") end

-- ENIs the simulator knows: those of interface VPC endpoints.
local function eni_exists(ctx, id)
  for _, e in pairs(ctx.db.vpc_endpoints or {}) do
    for _, eni in ipairs(e.NetworkInterfaceIds or {}) do
      if eni == id then return true end
    end
  end
  return false
end

-- nil when resource `id` of type `rtype` exists, else {Code, Message} for Unsuccessful.
local function missing(ctx, rtype, id)
  if rtype == "NetworkInterface" then
    if eni_exists(ctx, id) then return nil end
    return { Code = "InvalidNetworkInterfaceID.NotFound",
      Message = ("The networkInterface ID '%s' does not exist"):format(id) }
  end
  local kind = C.KINDS[RESOURCE_KIND[rtype]]
  if C.find(ctx, RESOURCE_KIND[rtype], id) then return nil end
  if not C.well_formed(id, kind.prefix) then
    return { Code = kind.malformed, Message = ('Invalid id: "%s" (expecting "%s-...")'):format(id, kind.prefix) }
  end
  return { Code = kind.notfound, Message = kind.one:format(id) }
end

-- AWS managed policies that grant the delivery actions (the simulator knows their
-- content only for these).
local MANAGED_LOGS = { CloudWatchLogsFullAccess = true, AdministratorAccess = true }

-- True when the role `arn` can deliver the flow log `flow_arn` to the group `group_arn`:
-- it exists, trusts the flow-logs service for this account and flow log, and grants the
-- delivery actions on the group (inline policies, or the managed ones above).
local function role_can_deliver(ctx, arn, flow_arn, group_arn)
  local account, name = (arn or ""):match("^arn:aws:iam::(%d+):role/(.+)$")
  if not name or account ~= ctx.account then return false end
  name = name:match("([^/]+)$")
  local role = (ctx:db_of("iam").roles or {})[name:lower()]
  if not role then return false end
  if not trust.allows(role.AssumeRolePolicyDocument, "sts:AssumeRole",
      { service = "vpc-flow-logs.amazonaws.com" },
      { ["aws:SourceAccount"] = ctx.account, ["aws:SourceArn"] = flow_arn }) then
    return false
  end
  for _, a in ipairs(role.attached or {}) do
    if MANAGED_LOGS[a.PolicyName] then return true end
  end
  local docs = {}
  for _, doc in pairs(role.inline or {}) do docs[#docs + 1] = doc end
  for _, action in ipairs(DELIVERY_ACTIONS) do
    if iam_policy.decide(docs, action, group_arn .. ":*") ~= "allow" then return false end
  end
  return true
end

-- The log group a request names: LogGroupName, or the name inside a log-group ARN.
local function destination(ctx, p)
  local dtype = p.LogDestinationType or "cloud-watch-logs"
  if dtype ~= "cloud-watch-logs" then
    invalid(ctx, ("LogDestinationType %s: the fo simulator delivers flow logs to "
      .. "cloud-watch-logs only"):format(dtype))
  end
  if p.LogGroupName and p.LogDestination then
    invalid(ctx, "Please only provide LogGroupName or only provide LogDestination.")
  end
  local group = p.LogGroupName
  local arn
  if p.LogDestination then
    group = p.LogDestination:match("^arn:aws[%w-]*:logs:[%w-]+:%d+:log%-group:([^:]+)")
    if not group then
      invalid(ctx, ("LogDestination: %s is not a CloudWatch Logs log group ARN"):format(p.LogDestination))
    end
    arn = p.LogDestination
  end
  if not group then
    invalid(ctx, "LogDestination or LogGroupName must be provided for cloud-watch-logs.")
  end
  if not p.DeliverLogsPermissionArn then
    invalid(ctx, "DeliverLogsPermissionArn must be provided for cloud-watch-logs.")
  end
  arn = arn or ctx:arn("log-group:" .. group, { service = "logs" })
  return dtype, group, arn
end

function M.view(f)
  local tags = C.copy_tags(f.Tags)
  return { FlowLogId = f.FlowLogId, CreationTime = f.CreationTime, ResourceId = f.ResourceId,
    TrafficType = f.TrafficType, LogDestinationType = f.LogDestinationType,
    LogDestination = f.LogDestination, LogGroupName = f.LogGroupName,
    DeliverLogsPermissionArn = f.DeliverLogsPermissionArn, DeliverLogsStatus = f.DeliverLogsStatus,
    DeliverLogsErrorMessage = f.DeliverLogsErrorMessage, FlowLogStatus = "ACTIVE",
    LogFormat = f.LogFormat, MaxAggregationInterval = f.MaxAggregationInterval,
    Tags = #tags > 0 and tags or nil }
end

function M.CreateFlowLogs(ctx, p)
  local existing = C.token_lookup(ctx, p)
  if existing then
    return { FlowLogIds = existing.ids, Unsuccessful = existing.unsuccessful, ClientToken = p.ClientToken }
  end
  if not RESOURCE_KIND[p.ResourceType] then
    invalid(ctx, ("ResourceType %s: the fo simulator makes flow logs of VPC, Subnet and "
      .. "NetworkInterface resources"):format(tostring(p.ResourceType)))
  end
  if not p.TrafficType then
    invalid(ctx, "TrafficType must be provided for this resource type.")
  end
  if #p.ResourceIds == 0 then invalid(ctx, "ResourceIds must not be empty.") end
  local interval = p.MaxAggregationInterval or 600
  if interval ~= 60 and interval ~= 600 then
    invalid(ctx, ("Invalid MaxAggregationInterval %d: the valid values are 60 and 600.")
      :format(interval))
  end
  local dtype, group, arn = destination(ctx, p)
  if role_too_new(ctx, p.DeliverLogsPermissionArn) then
    invalid(ctx, ("Unable to assume given IAM role: '%s'"):format(p.DeliverLogsPermissionArn))
  end
  local tags = C.tags_from_specs(ctx, p.TagSpecifications, "vpc-flow-log")
  local ids, unsuccessful = {}, {}
  for _, rid in ipairs(p.ResourceIds) do
    local err = missing(ctx, p.ResourceType, rid)
    if not err then
      for _, f in pairs(flow_logs(ctx)) do
        if f.ResourceId == rid and f.TrafficType == p.TrafficType and f.LogDestination == arn then
          err = { Code = "FlowLogAlreadyExists",
            Message = "Error. There is an existing Flow Log with the same configuration and log destination." }
        end
      end
    end
    if err then
      unsuccessful[#unsuccessful + 1] = { ResourceId = rid, Error = err }
    else
      local id = ctx:id("fl")
      local deliver = role_can_deliver(ctx, p.DeliverLogsPermissionArn,
        ctx:arn("vpc-flow-log/" .. id), (arn:gsub(":%*$", "")))
      local f = C.created(ctx, { FlowLogId = id, CreationTime = ctx:now(), ResourceId = rid,
        TrafficType = p.TrafficType, LogDestinationType = dtype, LogDestination = arn,
        LogGroupName = group, DeliverLogsPermissionArn = p.DeliverLogsPermissionArn,
        DeliverLogsStatus = deliver and "SUCCESS" or "FAILED",
        DeliverLogsErrorMessage = not deliver and "Access error" or nil,
        LogFormat = p.LogFormat or M.DEFAULT_FORMAT, MaxAggregationInterval = interval,
        Tags = C.copy(tags) })
      flow_logs(ctx)[f.FlowLogId] = f
      ids[#ids + 1] = f.FlowLogId
    end
  end
  local out = { FlowLogIds = ids, Unsuccessful = #unsuccessful > 0 and unsuccessful or nil,
    ClientToken = p.ClientToken }
  if p.ClientToken then C.token_store(ctx, p, { ids = ids, unsuccessful = out.Unsuccessful }) end
  return out
end

local FILTERS = {
  ["resource-id"] = function(f) return f.ResourceId end,
  ["log-destination-type"] = function(f) return f.LogDestinationType end,
  ["flow-log-id"] = function(f) return f.FlowLogId end,
  ["log-group-name"] = function(f) return f.LogGroupName end,
  ["traffic-type"] = function(f) return f.TrafficType end,
  ["deliver-log-status"] = function(f) return f.DeliverLogsStatus end,
}

function M.DescribeFlowLogs(ctx, p)
  local list = {}
  local wanted
  if p.FlowLogIds and #p.FlowLogIds > 0 then
    wanted = {}
    for _, id in ipairs(p.FlowLogIds) do wanted[id] = true end
  end
  for _, f in ipairs(C.sorted(flow_logs(ctx))) do
    if (not wanted or wanted[f.FlowLogId]) and C.visible(ctx, f) then list[#list + 1] = f end
  end
  list = C.filter(ctx, list, p.Filter, FILTERS)
  local page, token = C.page(ctx, list, p, { max = 1000 })
  local out = {}
  for i, f in ipairs(page) do out[i] = M.view(f) end
  return { FlowLogs = out, NextToken = token }
end

function M.DeleteFlowLogs(ctx, p)
  local unsuccessful = {}
  for _, id in ipairs(p.FlowLogIds) do
    if flow_logs(ctx)[id] then
      flow_logs(ctx)[id] = nil
    else
      unsuccessful[#unsuccessful + 1] = { ResourceId = id, Error = {
        Code = "InvalidFlowLogId.NotFound",
        Message = ("These flow log ids in the input list are not found: [TotalCount: 1] %s"):format(id) } }
    end
  end
  return { Unsuccessful = #unsuccessful > 0 and unsuccessful or nil }
end

return M
