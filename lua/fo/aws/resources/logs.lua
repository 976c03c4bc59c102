-- Logging resource types: aws:logs:log_group (a CloudWatch Logs log group) and
-- aws:ec2:flow_log (a VPC flow log delivered to a log group).
--
-- Facts this file relies on (CloudWatch Logs and VPC API references, VPC user guide):
-- - A log group's name is its identity (1-512 characters of [.-_/#A-Za-z0-9]);
--   CreateLogGroup takes the tags (fo:token among them) and the KMS key ARN; an existing
--   name is ResourceAlreadyExistsException. Retention is one of PutRetentionPolicy's
--   values (or none: kept forever); the key changes with Associate/DisassociateKmsKey, and
--   the key's policy must let logs.<region>.amazonaws.com use it for this group's ARN.
-- - DeleteLogGroup deletes the group and every event in it: fo deletes only a group whose
--   tags say this stack's create made it.
-- - CreateFlowLogs answers per resource: a failure comes in Unsuccessful, not as an
--   error; ClientToken makes a retried create answer the same flow log. A flow log cannot
--   be modified (only its tags): any other change makes a new one, after the old one is
--   deleted (a second flow log of the same resource, traffic type and destination is
--   FlowLogAlreadyExists). A delivery role that
--   cannot deliver still gives a flow log, with DeliverLogsStatus FAILED ("Access error"):
--   the type reports that status as an output.
local common = require "fo.aws.resources.common"

local M = {}

M.RETENTION_DAYS = { 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
  1827, 2192, 2557, 2922, 3288, 3653 }
local RETENTION = {}
for _, d in ipairs(M.RETENTION_DAYS) do RETENTION[d] = true end

local function logs(ctx) return ctx:client("logs") end

-- fo's and the user's tags as the map CloudWatch Logs takes.
local function tag_map(ctx, tags)
  local out = {}
  for _, t in ipairs(common.tag_list(ctx, tags)) do out[t.Key] = t.Value end
  return out
end

-- The group named `name` as DescribeLogGroups answers it, or nil. The groups are listed by
-- name, so the one named exactly the prefix is the first of the first page.
local function find_group_alone(ctx, name)
  local out = logs(ctx):DescribeLogGroups{ logGroupNamePrefix = name }
  for _, g in ipairs(out.logGroups or {}) do
    if g.logGroupName == name then return g end
  end
  return nil
end

-- In a refresh, one DescribeLogGroups names the groups read at once (logGroupIdentifiers:
-- up to 50 names).
local function find_group(ctx, name)
  return common.batched(ctx, "logs.DescribeLogGroups", name, function(names)
    return common.index_by(logs(ctx):DescribeLogGroups{ logGroupIdentifiers = names,
      limit = 50 }.logGroups, "logGroupName")
  end, function(n) return find_group_alone(ctx, n) end, 50)
end

-- The tags of group `g` (as DescribeLogGroups answers it: a map, fo's included), or nil
-- when the group is gone.
local function group_tags(ctx, g)
  if not g then return nil end
  local c = logs(ctx)
  local out = common.unless({ "ResourceNotFoundException" }, c.ListTagsForResource, c,
    { resourceArn = g.logGroupArn })
  return out and (out.tags or {}) or nil
end

-- The group right after its create (DescribeLogGroups may not list it yet).
local function created_group(ctx, name)
  return common.retry(ctx, "not_found_after_create", function()
    local g = find_group(ctx, name)
    if not g then
      error(require("fo.aws.error").new{ code = "ResourceNotFoundException",
        message = name .. " is not listed yet" }, 0)
    end
    return g
  end)
end

local function group_outputs(g) return { name = g.logGroupName, arn = g.logGroupArn } end

fo.type("aws:logs:log_group", {
  doc = "a CloudWatch Logs log group (retention, KMS key and tags change in place)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = function(v)
        return #v >= 1 and #v <= 512 and v:match("^[%.%-_/#%w]+$") ~= nil,
          "1 to 512 characters of letters, digits, . - _ / #"
      end },
      -- days to keep events (one of CloudWatch Logs' values); absent = kept forever
      retention_in_days = { type = "integer", check = function(v)
        return RETENTION[v] == true, "one of " .. table.concat(M.RETENTION_DAYS, ", ")
      end },
      -- the ARN of the KMS key that encrypts the group (an aws:kms:key's arn)
      kms_key_id = { type = "string", check = function(v)
        return v:match("^arn:aws[%w-]*:kms:") ~= nil, "a KMS key ARN (arn:aws:kms:...)"
      end },
      tags = { type = "map", default = {} },
    },
    outputs = { "name", "arn" },
    replace_on = { "name" },
  },
  diff = common.diff({ "name" }),
  create = function(ctx, p)
    local c = logs(ctx)
    local ok, err = pcall(c.CreateLogGroup, c, { logGroupName = p.name, kmsKeyId = p.kms_key_id,
      tags = tag_map(ctx, p.tags) })
    if not ok then
      if not common.is(err, "ResourceAlreadyExistsException") then error(err, 0) end
      -- a retried call of this create made it only if it carries this create's token
      common.claim(ctx, ("a CloudWatch Logs log group named %q in %s"):format(p.name, ctx.region),
        p.name, group_tags(ctx, find_group(ctx, p.name)))
    end
    if p.retention_in_days then
      common.retry(ctx, "not_found_after_create", c.PutRetentionPolicy, c,
        { logGroupName = p.name, retentionInDays = p.retention_in_days })
    end
    -- the ARN is the documented form: built, not described (when the account is known)
    local arn = ctx:arn("logs", "log-group:" .. p.name)
    if arn then return p.name, { name = p.name, arn = arn } end
    return p.name, group_outputs(created_group(ctx, p.name))
  end,
  -- The plan of a destroy says the events go with the group (an operator may want to
  -- export them first).
  delete_note = function(props)
    return ("deletes log group %s with every event in it"):format(props.name)
  end,
  read = function(ctx, name)
    -- the group and its tags at the same time, by the ARN the group has (one call's time)
    local arn = ctx:arn("logs", "log-group:" .. name)
    local got = common.together{ function() return find_group(ctx, name) end,
      function() return arn and group_tags(ctx, { logGroupArn = arn }) end }
    local g, tags = got[1], got[2]
    if not g then return nil end
    if g.logGroupArn ~= arn then tags = group_tags(ctx, g) end
    if not tags then return nil end
    return group_outputs(g), { name = name, retention_in_days = g.retentionInDays,
      kms_key_id = g.kmsKeyId, tags = common.user_tags(tags) }
  end,
  update = function(ctx, name, old, new, outputs)
    local c = logs(ctx)
    if old.retention_in_days ~= new.retention_in_days then
      if new.retention_in_days then
        c:PutRetentionPolicy{ logGroupName = name, retentionInDays = new.retention_in_days }
      else
        c:DeleteRetentionPolicy{ logGroupName = name }
      end
    end
    if old.kms_key_id ~= new.kms_key_id then
      if new.kms_key_id then
        c:AssociateKmsKey{ logGroupName = name, kmsKeyId = new.kms_key_id }
      else
        c:DisassociateKmsKey{ logGroupName = name }
      end
    end
    local set, del = common.tag_delta(old.tags, new.tags)
    local arn = outputs.arn
    if #set > 0 then
      local map = {}
      for _, t in ipairs(set) do map[t.Key] = t.Value end
      c:TagResource{ resourceArn = arn, tags = map }
    end
    if #del > 0 then c:UntagResource{ resourceArn = arn, tagKeys = del } end
    return outputs
  end,
  delete = function(ctx, name)
    local tags = group_tags(ctx, find_group(ctx, name))
    if not tags then return end -- gone already
    if not ctx:owns(tags) then
      error(("log group %s in %s does not carry this stack's tags (fo:stack, fo:name, "
        .. "fo:token): fo deletes only log groups its own create made (deleting one deletes "
        .. "its events). Check the group, then remove it from the state or delete it "
        .. "yourself"):format(name, ctx.region), 0)
    end
    local c = logs(ctx)
    common.unless({ "ResourceNotFoundException" }, c.DeleteLogGroup, c, { logGroupName = name })
  end,
  adopt = function(ctx, p)
    if ctx.known_ids[p.name] then return nil end
    local g = find_group(ctx, p.name)
    if g and ctx:owns(group_tags(ctx, g) or {}) then
      return p.name, group_outputs(g)
    end
    return nil
  end,
})

-- aws:ec2:flow_log -------------------------------------------------------------------------

local RESOURCE_TYPE = { vpc = "VPC", subnet = "Subnet", eni = "NetworkInterface" }
local TRAFFIC = { ACCEPT = true, REJECT = true, ALL = true }

local function ec2(ctx) return ctx:client("ec2") end

local function describe_flow_log(ctx, id)
  return common.describe_one(ec2(ctx), "DescribeFlowLogs", { FlowLogIds = { id } }, "FlowLogs",
    { "InvalidFlowLogId.NotFound" })
end

local function flow_outputs(f)
  return { id = f.FlowLogId, deliver_logs_status = f.DeliverLogsStatus }
end

fo.type("aws:ec2:flow_log", {
  doc = "a VPC flow log of a VPC, subnet or network interface delivered to a CloudWatch "
    .. "Logs log group (tags change in place; any other change makes a new flow log)",
  schema = {
    properties = {
      -- vpc-..., subnet-... or eni-...
      resource_id = { type = "string", required = true, check = function(v)
        local prefix = v:match("^(%a+)%-%x+$")
        return RESOURCE_TYPE[prefix] ~= nil, "a VPC (vpc-...), subnet (subnet-...) or "
          .. "network interface (eni-...) id"
      end },
      traffic_type = { type = "string", default = "ALL", check = function(v)
        return TRAFFIC[v] == true, "ACCEPT, REJECT or ALL"
      end },
      log_group_name = { type = "string", required = true },
      -- the IAM role flow logs assume to deliver (trusts vpc-flow-logs.amazonaws.com)
      role_arn = { type = "string", required = true },
      max_aggregation_interval = { type = "integer", default = 600, check = function(v)
        return v == 60 or v == 600, "60 or 600 (seconds)"
      end },
      tags = { type = "map", default = {} },
    },
    outputs = { "id", "deliver_logs_status" },
    mutable_outputs = { "deliver_logs_status" },
    -- AWS refuses a second flow log of the same resource, traffic type and destination
    delete_first = true,
    replace_on = { "resource_id", "traffic_type", "log_group_name", "role_arn",
      "max_aggregation_interval" },
  },
  diff = common.diff({ "resource_id", "traffic_type", "log_group_name", "role_arn",
    "max_aggregation_interval" }),
  create = function(ctx, p)
    -- a role made a moment ago is refused until flow logs can assume it ("Unable to assume
    -- given IAM role"): retried (the ClientToken makes a repeated create one flow log)
    local c = ec2(ctx)
    local out = common.retry(ctx, "flow_log_role", c.CreateFlowLogs, c, { ResourceIds = { p.resource_id },
      ResourceType = RESOURCE_TYPE[p.resource_id:match("^(%a+)%-")],
      TrafficType = p.traffic_type, LogDestinationType = "cloud-watch-logs",
      LogGroupName = p.log_group_name, DeliverLogsPermissionArn = p.role_arn,
      MaxAggregationInterval = p.max_aggregation_interval,
      TagSpecifications = common.ec2_tag_specs(ctx, "vpc-flow-log", p.tags),
      ClientToken = ctx.token })
    local id = out.FlowLogIds and out.FlowLogIds[1]
    if not id then
      local u = out.Unsuccessful and out.Unsuccessful[1] or {}
      local e = u.Error or {}
      error(require("fo.aws.error").new{ service = "ec2", operation = "CreateFlowLogs",
        region = ctx.region, code = e.Code or "Unsuccessful",
        message = ("%s: %s"):format(p.resource_id, e.Message or "refused") }, 0)
    end
    local f = common.retry(ctx, "not_found_after_create", function()
      local found = describe_flow_log(ctx, id)
      if not found then
        error(require("fo.aws.error").new{ code = "InvalidFlowLogId.NotFound",
          message = id .. " is not listed yet" }, 0)
      end
      return found
    end)
    return id, flow_outputs(f)
  end,
  read = function(ctx, id, props)
    local f = describe_flow_log(ctx, id)
    if not f then return nil end
    return flow_outputs(f), { resource_id = f.ResourceId, traffic_type = f.TrafficType,
      log_group_name = f.LogGroupName, role_arn = f.DeliverLogsPermissionArn,
      max_aggregation_interval = f.MaxAggregationInterval or props.max_aggregation_interval,
      tags = common.user_tags(f.Tags) }
  end,
  update = function(ctx, id, old, new, outputs)
    common.ec2_retag(ec2(ctx), id, old.tags, new.tags)
    return outputs
  end,
  delete = function(ctx, id)
    local f = describe_flow_log(ctx, id)
    if not f then return end
    if not ctx:owns(f.Tags or {}) then
      error(("flow log %s in %s does not carry this stack's tags (fo:stack, fo:name, "
        .. "fo:token): fo deletes only flow logs its own create made. Check it, then remove "
        .. "it from the state or delete it yourself"):format(id, ctx.region), 0)
    end
    -- DeleteFlowLogs answers a failure in Unsuccessful, not as an error
    local out = ec2(ctx):DeleteFlowLogs{ FlowLogIds = { id } }
    local u = out.Unsuccessful and out.Unsuccessful[1]
    local e = u and u.Error or {}
    if u and e.Code ~= "InvalidFlowLogId.NotFound" then
      error(require("fo.aws.error").new{ service = "ec2", operation = "DeleteFlowLogs",
        region = ctx.region, code = e.Code or "Unsuccessful",
        message = ("%s: %s"):format(id, e.Message or "refused") }, 0)
    end
  end,
  adopt = function(ctx, p)
    local out = ec2(ctx):DescribeFlowLogs{ Filter = { { Name = "resource-id", Values = { p.resource_id } } } }
    local f = common.unknown_owned(ctx, out.FlowLogs, "FlowLogId")
    if f then return f.FlowLogId, flow_outputs(f) end
    return nil
  end,
})

return M
