-- Who writes Elastic Load Balancing access logs into a bucket, per region (ELB user guide,
-- "Enable access logs for your Application Load Balancer", bucket permissions):
-- - Regions available before August 2022: the region's own ELB account (below), as
--   Principal {AWS = "arn:aws:iam::<elb-account-id>:root"}.
-- - Regions launched in August 2022 or later: the service principal
--   logdelivery.elasticloadbalancing.amazonaws.com.
-- Either way the grant is s3:PutObject on <bucket>/<prefix>/AWSLogs/<account-id>/*, and the
-- bucket may only use SSE-S3 (AES256) as its default encryption: ALB access logs do not
-- support SSE-KMS buckets.
local M = {}

M.SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"

-- The ELB account of each region available before August 2022.
M.ACCOUNTS = {
  ["us-east-1"] = "127311923021", ["us-east-2"] = "033677994240",
  ["us-west-1"] = "027434742980", ["us-west-2"] = "797873946194",
  ["af-south-1"] = "098369216593", ["ap-east-1"] = "754344448648",
  ["ap-southeast-3"] = "589379963580", ["ap-south-1"] = "718504428378",
  ["ap-northeast-1"] = "582318560864", ["ap-northeast-2"] = "600734575887",
  ["ap-northeast-3"] = "383597477331", ["ap-southeast-1"] = "114774131450",
  ["ap-southeast-2"] = "783225319266", ["ca-central-1"] = "985666609251",
  ["eu-central-1"] = "054676820928", ["eu-west-1"] = "156460612806",
  ["eu-west-2"] = "652711504416", ["eu-south-1"] = "635631232127",
  ["eu-west-3"] = "009996457667", ["eu-north-1"] = "897822967062",
  ["me-south-1"] = "076674570225", ["sa-east-1"] = "507241528517",
}

--- The Principal a bucket policy names for ELB log delivery in `region`.
function M.principal(region)
  local account = M.ACCOUNTS[region]
  if account then return { AWS = ("arn:aws:iam::%s:root"):format(account) } end
  return { Service = M.SERVICE }
end

--- Who delivers in `region`, as the simulator's policy evaluation names a caller
--- ({account=} or {service=}).
function M.deliverer(region)
  local account = M.ACCOUNTS[region]
  if account then return { account = account } end
  return { service = M.SERVICE }
end

--- The key prefix of a load balancer's logs: [prefix/]AWSLogs/<account-id>/.
function M.key_prefix(prefix, account)
  local p = (prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  return (p ~= "" and p .. "/" or "") .. "AWSLogs/" .. account .. "/"
end

return M
