-- Endpoints of partition `aws` for fo's services, and the SDK override convention:
-- explicit option > AWS_ENDPOINT_URL_<ID> > AWS_ENDPOINT_URL > config file > AWS default.
local credentials = require "fo.aws.credentials"

local M = {}

-- prefix: endpoint host prefix; signing: SigV4 service name; id: the service id as the
-- AWS_ENDPOINT_URL_<ID> variables spell it (lower-cased, it is also the key inside a
-- config file's [services name] section); global: one endpoint, signed for us-east-1.
M.SERVICES = {
  ec2 = { prefix = "ec2", signing = "ec2", id = "EC2" },
  elbv2 = { prefix = "elasticloadbalancing", signing = "elasticloadbalancing",
            id = "ELASTIC_LOAD_BALANCING_V2" },
  autoscaling = { prefix = "autoscaling", signing = "autoscaling", id = "AUTO_SCALING" },
  route53 = { global = "https://route53.amazonaws.com", signing = "route53", id = "ROUTE_53" },
  dynamodb = { prefix = "dynamodb", signing = "dynamodb", id = "DYNAMODB" },
  sns = { prefix = "sns", signing = "sns", id = "SNS" },
  cloudwatch = { prefix = "monitoring", signing = "monitoring", id = "CLOUDWATCH" },
  iam = { global = "https://iam.amazonaws.com", signing = "iam", id = "IAM" },
  ssm = { prefix = "ssm", signing = "ssm", id = "SSM" },
  sts = { prefix = "sts", signing = "sts", id = "STS" },
  kms = { prefix = "kms", signing = "kms", id = "KMS" },
  logs = { prefix = "logs", signing = "logs", id = "CLOUDWATCH_LOGS" },
  -- regional (s3.us-east-1.amazonaws.com too, as current SDKs use, not the legacy global
  -- s3.amazonaws.com); the bucket goes into the host or the path: fo.aws.s3_address
  s3 = { prefix = "s3", signing = "s3", id = "S3" },
  acm = { prefix = "acm", signing = "acm", id = "ACM" },
  servicequotas = { prefix = "servicequotas", signing = "servicequotas", id = "SERVICE_QUOTAS" },
}
-- Services the credentials chain calls without a client of its own (IAM Identity Center's
-- portal and OIDC token service); the same override variables apply (AWS_ENDPOINT_URL_SSO,
-- AWS_ENDPOINT_URL_SSO_OIDC).
M.CREDENTIAL_SERVICES = {
  sso = { prefix = "portal.sso", signing = "awsssoportal", id = "SSO" },
  sso_oidc = { prefix = "oidc", signing = "sso-oauth", id = "SSO_OIDC" },
}
M.PARTITION = "aws"
M.DNS_SUFFIX = "amazonaws.com"
M.GLOBAL_SIGNING_REGION = "us-east-1"

-- An override may be http:// (LocalStack, the sim on loopback); a path is allowed, a
-- query or fragment is not. Trailing slashes go so that path joining stays simple.
local function check_override(url, where)
  if type(url) ~= "string" or not url:match("^https?://[^/?#%s]+[^?#%s]*$") then
    error(("%s is '%s': an endpoint must be an http:// or https:// URL (scheme, host, "
      .. "optional port and path)"):format(where, tostring(url)), 0)
  end
  return (url:gsub("/+$", ""))
end

local function truthy(v)
  return type(v) == "string" and v:lower() == "true"
end

-- The config file's endpoints for the selected profile: the service's endpoint_url in
-- the profile's [services name] section, then the profile's own endpoint_url.
local function from_config(s, opts)
  local settings, _, profile = credentials.profile_settings(opts)
  if not settings or truthy(settings.ignore_configured_endpoint_urls) then return nil end
  local name = settings.services
  if type(name) == "string" and name ~= "" then
    local config = credentials.config_file(opts) or {}
    local section = config["services " .. name]
    local sub = section and section[s.id:lower()]
    if type(sub) == "table" and sub.endpoint_url then
      return sub.endpoint_url, ("endpoint_url for %s in [services %s] of profile '%s'")
        :format(s.id:lower(), name, profile)
    end
  end
  if type(settings.endpoint_url) == "string" and settings.endpoint_url ~= "" then
    return settings.endpoint_url, ("endpoint_url of profile '%s'"):format(profile)
  end
end

--- Resolves {url=, signing_region=, signing_name=, overridden=, source=} for a service
--- and region. opts: endpoint (explicit URL), env (lookup function), profile.
function M.resolve(service, region, opts)
  opts = opts or {}
  local env = opts.env or os.getenv
  local s = M.SERVICES[service] or M.CREDENTIAL_SERVICES[service]
  if not s then
    local known = {}
    for k in pairs(M.SERVICES) do known[#known + 1] = k end
    table.sort(known)
    error(("unknown AWS service '%s' (known: %s)"):format(tostring(service),
      table.concat(known, ", ")), 0)
  end
  local url, source
  local function env_var(name)
    local v = env(name)
    if v and v ~= "" then url, source = check_override(v, name), name end
    return url
  end
  if opts.endpoint then
    url, source = check_override(opts.endpoint, "the endpoint option"), "the endpoint option"
  elseif not truthy(env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
      and (env_var("AWS_ENDPOINT_URL_" .. s.id) or env_var("AWS_ENDPOINT_URL")) then
    -- set by env_var
  elseif not truthy(env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) then
    local u, where = from_config(s, { env = env, profile = opts.profile })
    if u then url, source = check_override(u, where), where end
  end
  if not url then
    url = s.global or ("https://%s.%s.%s"):format(s.prefix, region, M.DNS_SUFFIX)
    source = "partition " .. M.PARTITION
  end
  -- With an override too, a global service is signed for us-east-1, others for region.
  return { url = url, signing_region = s.global and M.GLOBAL_SIGNING_REGION or region,
           signing_name = s.signing, overridden = source ~= "partition " .. M.PARTITION,
           source = source }
end

return M
