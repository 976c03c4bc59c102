-- Endpoints of partition `aws` for fo's services, and the SDK override convention:
-- explicit option > AWS_ENDPOINT_URL_<SERVICE_ID> > AWS_ENDPOINT_URL > the AWS default.
local M = {}

-- prefix: endpoint host prefix; signing: SigV4 service name; id: the service id as the
-- AWS_ENDPOINT_URL_<ID> variables spell it; global: one endpoint signed for us-east-1.
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
}
M.DNS_SUFFIX = "amazonaws.com"
M.GLOBAL_SIGNING_REGION = "us-east-1"

local function check_override(url, where)
  if not url:match("^https?://[^/]+") then
    error(("%s is '%s': an endpoint must be an http:// or https:// URL"):format(where, url), 0)
  end
  return (url:gsub("/+$", ""))
end

--- Resolves {url=, signing_region=, signing_name=, overridden=} for service and region.
function M.resolve(service, region, opts)
  opts = opts or {}
  local env = opts.env or os.getenv
  local s = M.SERVICES[service]
  if not s then error(("unknown service '%s'"):format(tostring(service)), 0) end
  local signing_region = s.global and M.GLOBAL_SIGNING_REGION or region
  local url, overridden
  if opts.endpoint then
    url, overridden = check_override(opts.endpoint, "the endpoint option"), true
  elseif env("AWS_ENDPOINT_URL_" .. s.id) then
    url = check_override(env("AWS_ENDPOINT_URL_" .. s.id), "AWS_ENDPOINT_URL_" .. s.id)
    overridden = true
  elseif env("AWS_ENDPOINT_URL") then
    url, overridden = check_override(env("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"), true
  elseif s.global then
    url = s.global
  else
    url = ("https://%s.%s.%s"):format(s.prefix, region, M.DNS_SUFFIX)
  end
  -- With an override, a global service is still signed for us-east-1, others for region.
  return { url = url, signing_region = signing_region, signing_name = s.signing,
           overridden = overridden or false }
end

return M
