-- ELB access log delivery in the simulator: what ModifyLoadBalancerAttributes checks when it
-- turns access logs on (or moves them), as AWS does before answering:
-- - the bucket exists in the load balancer's region,
-- - its default encryption is SSE-S3 (AES256): ALB access logs do not support SSE-KMS,
-- - its policy lets the region's ELB log deliverer (fo.aws.elb_log_delivery: the region's
--   ELB account, or logdelivery.elasticloadbalancing.amazonaws.com in regions launched
--   since August 2022) s3:PutObject under <prefix>/AWSLogs/<account-id>/ (and denies it
--   nothing there),
-- and then writes the test object <prefix>/AWSLogs/<account-id>/ELBAccessLogTestFile, as
-- AWS does. Any failure is AWS's answer: InvalidConfigurationRequest "Access Denied for
-- bucket: <name>. Please check S3bucket permission", and nothing changes.
local s3state = require "fo.sim.s3.state"
local s3policy = require "fo.sim.s3.policy"
local delivery = require "fo.aws.elb_log_delivery"

local M = {}

local function denied(ctx, bucket)
  ctx:fail("InvalidConfigurationRequest",
    ("Access Denied for bucket: %s. Please check S3bucket permission"):format(bucket))
end

local function default_sse(b)
  local rule = b.encryption and b.encryption.Rules and b.encryption.Rules[1]
  local d = rule and rule.ApplyServerSideEncryptionByDefault
  return d and d.SSEAlgorithm or "AES256"
end

--- The bucket `name` ELB may deliver to for a load balancer of this ctx's region and
--- account, with its logs under `prefix`; raises AWS's InvalidConfigurationRequest otherwise.
function M.check(ctx, name, prefix)
  local b = s3state.buckets(ctx)[name]
  if not b or b.region ~= ctx.region or default_sse(b) ~= "AES256" then denied(ctx, name) end
  local key = delivery.key_prefix(prefix, ctx.account) .. "ELBAccessLogTestFile"
  if not s3policy.permits(b, delivery.deliverer(ctx.region), "s3:PutObject", { Key = key }) then
    denied(ctx, name)
  end
  return b, key
end

--- Writes `body` as a new object version `key` of bucket `b`, delivered by ELB (SSE-S3,
--- owned by the bucket owner, as buckets with ACLs disabled own every object).
function M.put(ctx, b, key, body)
  local v = { key = key, version_id = s3state.new_version_id(ctx, b), etag = s3state.etag(body),
    last_modified = math.floor(ctx:now()), content_type = "binary/octet-stream",
    storage_class = "STANDARD", sse = "AES256", owner = b.account }
  s3state.set_body(v, body)
  b.objects = b.objects or {}
  s3state.add_version(b, key, v)
  return v
end

--- Checks the bucket and writes the test object, as enabling access logs does.
function M.enable(ctx, lb_name, bucket, prefix)
  local b, key = M.check(ctx, bucket, prefix)
  M.put(ctx, b, key, ("Enable AccessLog for ELB: %s at %s"):format(lb_name,
    os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ctx:now()))))
end

return M
