-- The S3 bucket a team keeps its fo stacks' state in (docs/state-backends.md): versioning
-- on (every snapshot and change-log commit stays recoverable), default encryption with
-- KMS (SSE-KMS with an S3 Bucket Key; the account's aws/s3 key unless kms_key_id names
-- one), all four public access block settings on. fo checks exactly these before it keeps
-- a stack in a bucket. Apply it once per account from a local stack:
--   fo-run recipes/state-bucket.lua --target aws --stack state-bucket --config bucket=NAME
-- then run the team's stacks with --backend s3://NAME/PREFIX (or `backend` in their
-- config files). Destroying this stack never deletes a bucket that holds objects.
require "fo.aws.resources"

local c = fo.config{
  bucket = { type = "string", required = true,
    doc = "the bucket's name (3-63 of a-z 0-9 . -, unique across AWS)" },
  kms_key_id = { type = "string", default = "",
    doc = "the KMS key of the default encryption (id, alias/NAME or ARN); empty: aws/s3" },
}

local bucket = fo.resource("aws:s3:bucket", "state", {
  name = c.bucket,
  versioning = true,
  encryption = "aws:kms",
  kms_key_id = c.kms_key_id,
  bucket_key = true,
  block_public_access = true,
  tags = { purpose = "fo-state" },
})

fo.output("bucket", bucket.name)
fo.output("backend", fo.format("s3://%s/stacks", bucket.name))
