-- Service Quotas handlers: the quotas fo reads, GetServiceQuota (the value applied to the
-- account in the call's region) and GetAWSDefaultServiceQuota (AWS's default, without
-- increases). One quota is modelled: EC2's "Running On-Demand Standard (A, C, D, H, I, M, R,
-- T, Z) instances" (L-1216C47A), a per-region count of vCPUs whose applied value is the knob
-- ec2_vcpu_quota (fo.sim.knobs). A service or quota code Service Quotas does not know
-- answers NoSuchResourceException, as AWS does (the codes are case-sensitive).
local M = {}

local SERVICES = {
  ec2 = { name = "Amazon Elastic Compute Cloud (Amazon EC2)" },
}

-- quota code → what GetServiceQuota describes; `default` is AWS's default for a new
-- account; `applied(ctx)` the value applied to the account.
local QUOTAS = {
  ec2 = {
    ["L-1216C47A"] = {
      name = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
      description = "Maximum number of vCPUs assigned to the Running On-Demand Standard "
        .. "(A, C, D, H, I, M, R, T, Z) instances.",
      unit = "None", adjustable = true, default = 5,
      applied = function(ctx) return ctx.sim.knobs.ec2_vcpu_quota end,
      -- the CloudWatch metric AWS publishes the usage in (namespace AWS/Usage)
      usage = { MetricNamespace = "AWS/Usage", MetricName = "ResourceCount",
        MetricDimensions = { Class = "Standard/OnDemand", Resource = "vCPU", Service = "EC2",
          Type = "Resource" }, MetricStatisticRecommendation = "Maximum" },
    },
  },
}

-- The quota p names, or the NoSuchResourceException AWS answers.
local function lookup(ctx, p)
  local service = SERVICES[p.ServiceCode]
  if not service then
    ctx:fail("NoSuchResourceException",
      "The request failed because the specified service does not exist.")
  end
  local q = QUOTAS[p.ServiceCode][p.QuotaCode]
  if not q then
    ctx:fail("NoSuchResourceException",
      "The request failed because the specified quota and service do not exist.")
  end
  return service, q
end

local function quota(ctx, p, value, applied)
  local service, q = lookup(ctx, p)
  return { Quota = {
    ServiceCode = p.ServiceCode, ServiceName = service.name,
    -- the applied value's ARN names the account; AWS's default has none
    QuotaArn = ctx:arn(("%s/%s"):format(p.ServiceCode, p.QuotaCode),
      { service = "servicequotas", account = applied and ctx.account or "" }),
    QuotaCode = p.QuotaCode, QuotaName = q.name, Value = value(q), Unit = q.unit,
    Adjustable = q.adjustable, GlobalQuota = false, UsageMetric = q.usage,
    Description = q.description,
    QuotaAppliedAtLevel = applied and "ACCOUNT" or nil,
  } }
end

function M.GetServiceQuota(ctx, p)
  if p.ContextId ~= nil then
    -- resource-level quotas: the EC2 quotas are account-level, no value is applied per
    -- resource
    lookup(ctx, p)
    ctx:fail("NoSuchResourceException",
      "The request failed because applied value for the specified context Id do not exist.")
  end
  return quota(ctx, p, function(q) return q.applied(ctx) end, true)
end

function M.GetAWSDefaultServiceQuota(ctx, p)
  return quota(ctx, p, function(q) return q.default end, false)
end

return M
