-- Authorization of a signed call by the caller's identity policies (fo.sim.iam_policy).
-- Which callers: a role session (credentials from sts AssumeRole) whose role, in the sim's
-- IAM, has at least one inline policy: those policies alone decide (plus an attached
-- AdministratorAccess, which allows everything). Every other caller — the sim's default
-- key, the keys given to fo.sim.new, users, roles without inline policies — keeps full
-- access, as before (the sim has no AWS-managed policy documents to evaluate).
--
-- Each call is one IAM action (M.action) on the resources AWS authorizes it on
-- (M.resources): the ARN of the role, instance profile, DynamoDB table, SNS topic or SSM
-- parameter (GetParameter) the request names (M.resource); the EC2 resources, load
-- balancers, groups, alarms, log groups, keys, certificates, zones and buckets it names
-- (fo.sim.authz_resources, which also gives EC2 resources', KMS keys' and certificates'
-- tags as aws:ResourceTag/<key>); else "*" — which only a statement with Resource "*"
-- matches, as for the actions AWS authorizes on no resource ARN. Every resource must be
-- allowed. The implicit checks AWS adds (iam:PassRole when a launch template or instance
-- names a profile, iam:CreateServiceLinkedRole when a service creates its role) are not
-- made. A denied call gets the service's answer: EC2 UnauthorizedOperation with an
-- encoded message, SNS AuthorizationError, the JSON services AccessDeniedException, the
-- others AccessDenied.
local iam_policy = require "fo.sim.iam_policy"
local SimError = require "fo.sim.error"
local codes = require "fo.sim.codes"

local M = {}

-- fo's service name → the IAM service prefix, where they differ.
M.PREFIX = { elbv2 = "elasticloadbalancing" }

-- Actions IAM never checks (any valid credentials may call them).
M.UNCHECKED = { ["sts:GetCallerIdentity"] = true }

--- The IAM action of an operation: "ec2:CreateVpc", "elasticloadbalancing:CreateListener";
--- S3's are not all named after the operation (HeadBucket is s3:ListBucket ...: params tell
--- versioned ones apart).
function M.action(service, operation, params)
  if service == "s3" then return require("fo.sim.s3.state").iam_action(operation, params) end
  return (M.PREFIX[service] or service) .. ":" .. operation
end

local function iam_arn(sim, account, kind, name, path)
  local db = sim.store:db(account, "global", "iam")
  local t = kind == "role" and db.roles or db.instance_profiles
  local r = t and t[name:lower()]
  if r and r.Arn then return r.Arn end
  return ("arn:aws:iam::%s:%s%s%s"):format(account, kind, path or "/", name)
end

--- The resource ARN a call is authorized on (see the header), from its parameters.
function M.resource(sim, service, operation, params, region, account)
  params = params or {}
  if service == "iam" then
    if params.InstanceProfileName then
      return iam_arn(sim, account, "instance-profile", params.InstanceProfileName, params.Path)
    end
    if params.RoleName then return iam_arn(sim, account, "role", params.RoleName, params.Path) end
    if operation == "CreateServiceLinkedRole" and params.AWSServiceName then
      return ("arn:aws:iam::%s:role/aws-service-role/%s/*"):format(account, params.AWSServiceName)
    end
  elseif service == "ssm" and operation == "GetParameter" and params.Name then
    -- AWS's public parameters (/aws/service/...) belong to no account
    local name = params.Name:gsub("^arn:aws:ssm:[^:]*:[^:]*:parameter", "")
    if name:sub(1, 1) ~= "/" then name = "/" .. name end
    return ("arn:aws:ssm:%s:%s:parameter%s"):format(region,
      name:match("^/aws/service/") and "" or account, name)
  elseif service == "dynamodb" then
    if params.TableName then
      return ("arn:aws:dynamodb:%s:%s:table/%s"):format(region, account, params.TableName)
    end
    if params.ResourceArn then return params.ResourceArn end
  elseif service == "sns" then
    if params.TopicArn then return params.TopicArn end
    if operation == "CreateTopic" and params.Name then
      return ("arn:aws:sns:%s:%s:%s"):format(region, account, params.Name)
    end
    if params.SubscriptionArn then -- a subscription is authorized on its topic
      return (params.SubscriptionArn:gsub(":[^:]*$", ""))
    end
    if params.ResourceArn then return params.ResourceArn end
  end
  return "*"
end

-- The request's tags as aws:RequestTag/<key> condition keys: Tags ({Key, Value} lists, or
-- a map) and EC2's TagSpecifications.
local function request_tags(params, context)
  local function add(tags)
    if type(tags) ~= "table" then return end
    if tags[1] == nil then
      for k, v in pairs(tags) do context["aws:RequestTag/" .. k] = tostring(v) end
    end
    for _, t in ipairs(tags) do
      if type(t) == "table" and t.Key then context["aws:RequestTag/" .. t.Key] = t.Value or "" end
    end
  end
  add(params.Tags)
  for _, spec in ipairs(type(params.TagSpecifications) == "table" and params.TagSpecifications or {}) do
    add(spec.Tags)
  end
end

--- The condition context of a call: the principal, the region, the tags it sets, and the
--- iam:AWSServiceName of a service-linked role.
function M.context(caller, region, params)
  params = params or {}
  local context = { ["aws:PrincipalAccount"] = caller.account, ["aws:PrincipalArn"] = caller.arn,
    ["aws:RequestedRegion"] = region, ["iam:AWSServiceName"] = params.AWSServiceName }
  request_tags(params, context)
  return context
end

-- The policy texts that decide for `caller`, or nil when it keeps full access.
local function policies_of(sim, caller)
  local account, name = (caller.arn or ""):match("^arn:aws:sts::(%d+):assumed%-role/([^/]+)/")
  if not account then return nil end
  local roles = sim.store:db(account, "global", "iam").roles or {}
  local role = roles[name:lower()]
  if not role or not next(role.inline or {}) then return nil end
  local names = {}
  for n in pairs(role.inline) do names[#names + 1] = n end
  table.sort(names)
  local docs = {}
  for i, n in ipairs(names) do docs[i] = role.inline[n] end
  for _, a in ipairs(role.attached or {}) do
    if a.PolicyArn == "arn:aws:iam::aws:policy/AdministratorAccess" then
      docs[#docs + 1] = { Statement = { { Effect = "Allow", Action = "*", Resource = "*" } } }
    end
  end
  return docs
end

local function b64(s)
  return require("fo.crypto").base64_encode(s)
end

-- The service's refusal, in the words AWS uses.
local function refuse(service, caller, action, resource, decision)
  local why = decision == "deny" and "with an explicit deny in an identity-based policy"
    or ("because no identity-based policy allows the %s action"):format(action)
  local msg = ("User: %s is not authorized to perform: %s on resource: %s %s"):format(
    caller.arn, action, resource, why)
  if service == "ec2" then
    -- AWS encrypts the details (sts:DecodeAuthorizationMessage reads them); the sim
    -- base64-encodes the same JSON document, readable by anyone holding the message.
    local encoded = b64(require("cjson").encode{ allowed = false,
      explicitDeny = decision == "deny", context = { principal = { arn = caller.arn },
        action = action, resource = resource } })
    SimError.raise("UnauthorizedOperation", ("You are not authorized to perform this operation. "
      .. "User: %s is not authorized to perform: %s on resource: %s %s. Encoded authorization "
      .. "failure message: %s"):format(caller.arn, action, resource, why, encoded), 403)
  elseif service == "sns" then
    SimError.raise("AuthorizationError", msg, 403)
  elseif codes.PROTOCOL[service] == "json" then
    SimError.raise("AccessDeniedException", msg, 400)
  end
  SimError.raise("AccessDenied", msg, 403)
end

--- The resources call c is authorized on: {arn=, scope=, tags=} (fo.sim.authz_resources).
function M.resources(sim, c, account)
  local single = M.resource(sim, c.service, c.operation, c.params, c.region, account)
  return require("fo.sim.authz_resources").of(sim, c.service, c.operation, c.params, c.region,
    account, single)
end

--- Checks call c = {service=, operation=, params=, region=, caller=} against the caller's
--- identity policies, once for each resource the action is authorized on (each must be
--- allowed, with that resource's tags as aws:ResourceTag/<key>); raises the service's
--- access-denied error naming the first refused. Records {action, resource, resources} in
--- sim.actions (when the sim keeps them: fo.sim.new{record_actions = true}).
function M.check(sim, c)
  local action = M.action(c.service, c.operation, c.params)
  local account = c.caller.account or sim.account
  local resources
  if sim.actions then
    resources = M.resources(sim, c, account)
    local replicas -- DynamoDB replica changes: region → "Create" | "Delete"
    for _, u in ipairs(c.service == "dynamodb" and c.params.ReplicaUpdates or {}) do
      replicas = replicas or {}
      if u.Create then replicas[u.Create.RegionName] = "Create" end
      if u.Delete then replicas[u.Delete.RegionName] = "Delete" end
    end
    local tags = {}
    request_tags(c.params, tags)
    sim.actions[#sim.actions + 1] = { action = action, resource = resources[1].arn,
      resources = resources, service = c.service, request_tags = tags,
      operation = c.operation, region = c.region, replicas = replicas,
      -- the role a flow log's delivery uses: AWS checks iam:PassRole on it
      passed_role = c.operation == "CreateFlowLogs" and c.params.DeliverLogsPermissionArn or nil,
      tagged = next(c.params.Tags or {}) ~= nil or next(c.params.TagSpecifications or {}) ~= nil }
  end
  if M.UNCHECKED[action] then return end
  local docs = policies_of(sim, c.caller)
  if not docs then return end
  resources = resources or M.resources(sim, c, account)
  local context = M.context(c.caller, c.region, c.params)
  for _, r in ipairs(resources) do
    local ctx = context
    if r.tags then
      ctx = {}
      for k, v in pairs(context) do ctx[k] = v end
      for k, v in pairs(r.tags) do ctx["aws:ResourceTag/" .. k] = v end
    end
    local decision = iam_policy.decide(docs, action, r.arn, ctx)
    if decision ~= "allow" then refuse(c.service, c.caller, action, r.arn, decision) end
  end
end

return M
