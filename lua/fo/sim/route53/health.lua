-- Route 53 health checks: the configuration AWS stores (its defaults filled in), the
-- checks CreateHealthCheck and UpdateHealthCheck make beyond the model, CallerReference
-- reuse, and GetHealthCheckStatus's per-checker observations (from the failover model's
-- last evaluation, fo.sim.failover).
local M = {}

-- The checker regions Route 53 uses when a health check names none (the
-- HealthCheckRegion enum), each with an address from its published checker range.
M.CHECKERS = {
  { "us-east-1", "107.23.255.10" }, { "us-west-1", "54.183.255.140" },
  { "us-west-2", "54.244.52.200" }, { "eu-west-1", "54.228.16.10" },
  { "ap-southeast-1", "54.251.31.140" }, { "ap-southeast-2", "54.252.79.140" },
  { "ap-northeast-1", "54.248.220.10" }, { "sa-east-1", "54.232.40.70" },
}
local CHECKER_IP = {}
for _, c in ipairs(M.CHECKERS) do CHECKER_IP[c[1]] = c[2] end

local ENDPOINT_TYPES = { HTTP = true, HTTPS = true, HTTP_STR_MATCH = true,
  HTTPS_STR_MATCH = true, TCP = true }

local function invalid(ctx, msg)
  ctx:fail("InvalidInput", msg, 400)
end

local copy = require("fo.sim.records").copy

-- IPv4 ranges Route 53 cannot check (API reference, HealthCheckConfig.IPAddress: "local,
-- private, non-routable, or multicast ranges", RFC 5735 and RFC 6598): {first octets, bits}.
local UNCHECKABLE_V4 = {
  { { 0 }, 8 }, { { 10 }, 8 }, { { 100, 64 }, 10 }, { { 127 }, 8 }, { { 169, 254 }, 16 },
  { { 172, 16 }, 12 }, { { 192, 0, 0 }, 24 }, { { 192, 0, 2 }, 24 }, { { 192, 88, 99 }, 24 },
  { { 192, 168 }, 16 }, { { 198, 18 }, 15 }, { { 198, 51, 100 }, 24 }, { { 203, 0, 113 }, 24 },
  { { 224 }, 4 }, { { 240 }, 4 },
}

local function v4_value(o) return ((o[1] or 0) << 24) | ((o[2] or 0) << 16) | ((o[3] or 0) << 8) | (o[4] or 0) end

-- nil when `ip` is a checkable public address, else why not.
local function ip_problem(ip)
  local o = { ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$") }
  if #o == 4 then
    for i = 1, 4 do
      o[i] = tonumber(o[i])
      if o[i] > 255 then return "is not a valid IPv4 address" end
    end
    local v = v4_value(o)
    for _, r in ipairs(UNCHECKABLE_V4) do
      local mask = (0xFFFFFFFF << (32 - r[2])) & 0xFFFFFFFF
      if v & mask == v4_value(r[1]) & mask then
        return "is in a local, private, non-routable, or multicast range"
      end
    end
    return nil
  end
  if ip:find(":") and ip:match("^[%x:%.]+$") then
    local l = ip:lower()
    if l == "::" or l == "::1" or l:match("^fe[89ab]%x?:") or l:match("^f[cd]%x%x:")
        or l:match("^ff") or l:match("^2001:0?db8:") then
      return "is in a local, private, non-routable, or multicast range"
    end
    return nil
  end
  return "is not a valid IPv4 or IPv6 address"
end

-- Checks a complete configuration (after defaults and updates).
local function check(ctx, c)
  if c.RequestInterval ~= 10 and c.RequestInterval ~= 30 then
    -- The model allows 10..30; Route 53 accepts only the two checker speeds.
    invalid(ctx, ("Invalid parameter : RequestInterval must be either 10 or 30 (got %s)")
      :format(tostring(c.RequestInterval)))
  end
  if math.type(c.FailureThreshold) ~= "integer" or c.FailureThreshold < 1
      or c.FailureThreshold > 10 then
    invalid(ctx, ("Invalid parameter : FailureThreshold must be between 1 and 10 (got %s)")
      :format(tostring(c.FailureThreshold)))
  end
  if ENDPOINT_TYPES[c.Type] then
    if not c.IPAddress and not c.FullyQualifiedDomainName then
      invalid(ctx, "Invalid parameter : Either IPAddress or FullyQualifiedDomainName must be "
        .. "specified for health check type " .. c.Type)
    end
    if c.Port == nil then
      invalid(ctx, "Invalid parameter : Port must be specified for health check type " .. c.Type)
    end
    -- (InvalidInput, AWS's wording)
    if c.Type == "TCP" and c.IPAddress and c.FullyQualifiedDomainName then
      invalid(ctx, "TCP health checks that have IP address must not have a fully qualified "
        .. "domain name specified.")
    end
    local why = c.IPAddress and ip_problem(c.IPAddress)
    if why then
      invalid(ctx, ("Invalid parameter : IPAddress %s %s: Route 53 cannot check its health")
        :format(c.IPAddress, why))
    end
    if c.Type:find("_STR_MATCH$") and (c.SearchString == nil or c.SearchString == "") then
      invalid(ctx, "Invalid parameter : SearchString must be specified for health check type "
        .. c.Type)
    end
  elseif c.Type == "CALCULATED" then
    if c.HealthThreshold == nil then
      invalid(ctx, "Invalid parameter : HealthThreshold must be specified for CALCULATED "
        .. "health checks")
    end
  elseif c.Type == "CLOUDWATCH_METRIC" and not c.AlarmIdentifier then
    invalid(ctx, "Invalid parameter : AlarmIdentifier must be specified for CLOUDWATCH_METRIC "
      .. "health checks")
  end
  if c.Regions and #c.Regions < 3 then
    invalid(ctx, "Invalid parameter : You must specify at least three regions for health "
      .. "checkers")
  end
  if c.Port and (c.Port < 1 or c.Port > 65535) then
    invalid(ctx, "Invalid parameter : Port must be between 1 and 65535")
  end
end

--- The configuration Route 53 stores for a CreateHealthCheck HealthCheckConfig: defaults
--- filled in (RequestInterval 30, FailureThreshold 3, Port 80/443, MeasureLatency,
--- Inverted, Disabled false, EnableSNI true for HTTPS). Raises InvalidInput.
function M.config(ctx, given)
  local c = copy(given)
  if c.RequestInterval == nil then c.RequestInterval = 30 end
  if c.FailureThreshold == nil and c.Type ~= "CALCULATED" then c.FailureThreshold = 3 end
  if c.Port == nil then
    if c.Type == "HTTP" or c.Type == "HTTP_STR_MATCH" then c.Port = 80
    elseif c.Type == "HTTPS" or c.Type == "HTTPS_STR_MATCH" then c.Port = 443 end
  end
  if c.MeasureLatency == nil then c.MeasureLatency = false end
  if c.Inverted == nil then c.Inverted = false end
  if c.Disabled == nil then c.Disabled = false end
  if c.EnableSNI == nil and ENDPOINT_TYPES[c.Type] then
    c.EnableSNI = c.Type == "HTTPS" or c.Type == "HTTPS_STR_MATCH"
  end
  if c.FullyQualifiedDomainName then c.FullyQualifiedDomainName = c.FullyQualifiedDomainName:lower() end
  if c.Type == "CALCULATED" then c.FailureThreshold = c.FailureThreshold or 1 end
  check(ctx, c)
  return c
end

--- True when two stored configurations are the same settings (CallerReference reuse).
function M.same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- What UpdateHealthCheck may change; RequestInterval, Type and MeasureLatency are not in
-- its input at all (a different interval means a new health check).
local UPDATABLE = { "IPAddress", "Port", "ResourcePath", "FullyQualifiedDomainName",
  "SearchString", "FailureThreshold", "Inverted", "Disabled", "HealthThreshold",
  "ChildHealthChecks", "EnableSNI", "Regions", "AlarmIdentifier",
  "InsufficientDataHealthStatus" }
-- ResetElements: back to the default (absent).
local RESETTABLE = { FullyQualifiedDomainName = true, Regions = true, ResourcePath = true,
  ChildHealthChecks = true }

--- Applies an UpdateHealthCheck request to hc (the stored health check): version check
--- (HealthCheckVersionMismatch, 409), resets, updates, checks, version + 1.
function M.update(ctx, hc, p)
  if p.HealthCheckVersion ~= nil and p.HealthCheckVersion ~= hc.HealthCheckVersion then
    ctx:fail("HealthCheckVersionMismatch", "The value of HealthCheckVersion in the request "
      .. "doesn't match the value of HealthCheckVersion in the health check.", 409)
  end
  local c = copy(hc.HealthCheckConfig)
  for _, e in ipairs(p.ResetElements or {}) do
    if not RESETTABLE[e] then
      invalid(ctx, ("Invalid parameter : ResetElements contains an invalid element: %s"):format(e))
    end
    c[e] = nil
  end
  for _, k in ipairs(UPDATABLE) do
    if p[k] ~= nil then c[k] = copy(p[k]) end
  end
  if c.FullyQualifiedDomainName then c.FullyQualifiedDomainName = c.FullyQualifiedDomainName:lower() end
  check(ctx, c)
  hc.HealthCheckConfig = c
  hc.HealthCheckVersion = hc.HealthCheckVersion + 1
end

--- The HealthCheck output shape for a stored health check.
function M.output(hc)
  return { Id = hc.Id, CallerReference = hc.CallerReference,
    HealthCheckConfig = copy(hc.HealthCheckConfig), HealthCheckVersion = hc.HealthCheckVersion }
end

--- GetHealthCheckStatus' observations: one per checker region (the configured Regions or
--- Route 53's default set), each the last result the failover model recorded (`last`:
--- {status=, t=}), or each checker's own last result when the model keeps them
--- (hc.eval.checkers: each checker region on its own clock).
function M.observations(hc, last)
  local own = {}
  for _, c in ipairs(hc.eval and hc.eval.checkers or {}) do
    if c.last then own[c.region] = c.last end
  end
  local regions = hc.HealthCheckConfig.Regions
  local list = {}
  if regions then
    for _, r in ipairs(regions) do list[#list + 1] = { r, CHECKER_IP[r] or "15.177.0.10" } end
  else
    list = M.CHECKERS
  end
  local out = {}
  for i, c in ipairs(list) do
    local mine = own[c[1]] or last
    out[i] = { Region = c[1], IPAddress = c[2],
      StatusReport = { Status = mine.status, CheckedTime = mine.t } }
  end
  return out
end

return M
