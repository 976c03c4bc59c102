-- What fo asks of a state bucket before it keeps a stack there (docs/state-backends.md):
-- versioning on (every snapshot and commit stays recoverable), default encryption (SSE-KMS,
-- or at least SSE-S3), and a public access block with all four settings true. Each one
-- missing is named with the command that sets it; fo refuses the bucket until it is fixed
-- (or the user types --backend-unsafe-ok, which turns the refusal into a warning).
local M = {}

local function aws_code(e)
  return type(e) == "table" and e.code or nil
end

-- The IAM action that allows each read.
local ACTIONS = { GetBucketVersioning = "s3:GetBucketVersioning",
  GetBucketEncryption = "s3:GetEncryptionConfiguration",
  GetPublicAccessBlock = "s3:GetBucketPublicAccessBlock" }

--- The problems of `bucket` (a list of {what=, fix=}; empty when it is fit), read with the
--- S3 client `s3` (GetBucketVersioning, GetBucketEncryption, GetPublicAccessBlock). A
--- setting that cannot be read is a problem too (fo cannot tell that it is right); a
--- bucket that is not there raises.
function M.problems(s3, bucket)
  local out = {}
  -- s3:op(input): the output, or nil for the "not configured" codes in `absent`
  local function read(op, input, absent)
    local ok, res = pcall(s3[op], s3, input)
    if ok then return res end
    local code = aws_code(res) or ""
    if absent[code] then return nil end
    -- no bucket, no credentials, no network: nothing can be checked
    if code == "NoSuchBucket" or code == "" then error(res, 0) end
    out[#out + 1] = { unread = true, what = ("%s cannot be read (%s)"):format(op,
      require("fo.log").redact(require("fo.task").describe(res))),
      fix = code == "AccessDenied"
        and ("allow %s on arn:aws:s3:::%s to these credentials"):format(ACTIONS[op], bucket)
        or ("use an S3 endpoint that answers %s"):format(op) }
    return false
  end
  local v = read("GetBucketVersioning", { Bucket = bucket }, {})
  if v ~= false and (not v or v.Status ~= "Enabled") then
    out[#out + 1] = { what = ("versioning is %s (it must be Enabled: a damaged or deleted "
      .. "state is recovered from an earlier version)"):format(v and v.Status or "off"),
      fix = ("aws s3api put-bucket-versioning --bucket %s --versioning-configuration "
        .. "Status=Enabled"):format(bucket) }
  end
  local enc = read("GetBucketEncryption", { Bucket = bucket },
    { ServerSideEncryptionConfigurationNotFoundError = true })
  local algo
  for _, rule in ipairs(enc and enc.ServerSideEncryptionConfiguration
    and enc.ServerSideEncryptionConfiguration.Rules or {}) do
    local d = rule.ApplyServerSideEncryptionByDefault
    if d and d.SSEAlgorithm then algo = d.SSEAlgorithm end
  end
  if not algo and enc ~= false then
    out[#out + 1] = { what = "it has no default encryption (SSE-KMS is expected)",
      fix = ("aws s3api put-bucket-encryption --bucket %s --server-side-encryption-configuration "
        .. "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\"},"
        .. "\"BucketKeyEnabled\":true}]}'"):format(bucket) }
  end
  local pab = read("GetPublicAccessBlock", { Bucket = bucket },
    { NoSuchPublicAccessBlockConfiguration = true })
  local c = pab and pab.PublicAccessBlockConfiguration or {}
  local off = {}
  for _, k in ipairs({ "BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
    "RestrictPublicBuckets" }) do
    if c[k] ~= true then off[#off + 1] = k end
  end
  if #off > 0 and pab ~= false then
    out[#out + 1] = { what = ("its public access block does not set %s to true"):format(
      table.concat(off, ", ")),
      fix = ("aws s3api put-public-access-block --bucket %s --public-access-block-configuration "
        .. "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
        .. "RestrictPublicBuckets=true"):format(bucket) }
  end
  return out, algo
end

--- The refusal text for `problems` of `bucket`.
function M.message(bucket, problems)
  local lines = {}
  for i, p in ipairs(problems) do
    lines[i] = ("  - %s; fix: %s"):format(p.what, p.fix)
  end
  return ("state bucket %s is not fit to hold a stack's state:\n%s\nNothing was done. Fix the "
    .. "bucket (recipes/state-bucket.lua makes one that is fit), or rerun with "
    .. "--backend-unsafe-ok to use it as it is (not for production)"):format(bucket,
    table.concat(lines, "\n"))
end

return M
