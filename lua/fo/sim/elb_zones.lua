-- Route 53 hosted zone ids of Elastic Load Balancing's DNS names, per load balancer type
-- and region, as AWS publishes them ("Elastic Load Balancing endpoints and quotas"): the
-- ALB (and Classic) and NLB columns differ, and so does every region. ELBv2 answers them
-- as CanonicalHostedZoneId; Route 53 accepts an alias to a load balancer only with its own.
local M = {}

M.BY_TYPE = {
  application = { ["eu-south-1"] = "Z3ULH7SSC9OV64", ["eu-central-1"] = "Z215JYRZR1TBD5",
    ["us-east-1"] = "Z35SXDOTRQ7X7K", ["us-west-2"] = "Z1H1FL5HABSF5",
    ["eu-west-1"] = "Z32O12XQLNTSW2" },
  network = { ["eu-south-1"] = "Z23146JA1KNAFP", ["eu-central-1"] = "Z3F0SRJ5LGBH90",
    ["us-east-1"] = "Z26RNL4JYFTOTI", ["us-west-2"] = "Z18D5FSROUN65G",
    ["eu-west-1"] = "Z2IFOLAFXWLO4F" },
}

--- The canonical hosted zone id of a load balancer of `lb_type` in `region` (regions the
--- table lacks use us-east-1's, as the simulator's ELBv2 does).
function M.canonical(lb_type, region)
  local t = M.BY_TYPE[lb_type] or M.BY_TYPE.application
  return t[region] or t["us-east-1"]
end

--- True when `id` is one of the ELB zone ids above.
function M.is_elb_zone(id)
  for _, t in pairs(M.BY_TYPE) do
    for _, z in pairs(t) do
      if z == id then return true end
    end
  end
  return false
end

--- The type and region an ELB DNS name belongs to, from its form: ALB/Classic
--- "<name>-<n>.<region>.elb.amazonaws.com", NLB "<name>-<hex>.elb.<region>.amazonaws.com"
--- (either with a "dualstack." prefix; any case, trailing dot or not). nil otherwise.
function M.of_name(dns)
  local host = tostring(dns):lower():gsub("%.$", ""):gsub("^dualstack%.", "")
  local region = host:match("^[^.]+%.([%w%-]+)%.elb%.amazonaws%.com$")
  if region then return "application", region end
  region = host:match("^[^.]+%.elb%.([%w%-]+)%.amazonaws%.com$")
  if region then return "network", region end
end

return M
