-- S3 bucket settings in the simulator: default encryption, the public access block, the
-- bucket policy (checked by fo.sim.s3.policy), bucket and object tags.
local state = require "fo.sim.s3.state"
local policy = require "fo.sim.s3.policy"
local cjson = require "cjson"

local M = {}

local function s3() return require "fo.sim.services.s3" end

-- The handler of a Delete... of a bucket setting kept in the bucket's field `field`: the
-- bucket must exist; deleting a setting the bucket does not have succeeds all the same.
local function remover(field)
  return function(ctx, p)
    local b = state.bucket(ctx, p.Bucket, p)
    b[field] = nil
    return {}
  end
end

-- Encryption ---------------------------------------------------------------------------

function M.PutBucketEncryption(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local rules = p.ServerSideEncryptionConfiguration.Rules or {}
  if #rules ~= 1 then
    ctx:fail("MalformedXML", "The XML you provided was not well-formed or did not validate "
      .. "against our published schema", 400)
  end
  local d = rules[1].ApplyServerSideEncryptionByDefault
  if d then
    if d.SSEAlgorithm == "AES256" and d.KMSMasterKeyID then
      ctx:fail("InvalidArgument", "a KMSMasterKeyID is not applicable if the default sse "
        .. "algorithm is not aws:kms or aws:kms:dsse", 400)
    end
    if d.KMSMasterKeyID then s3().kms_key_for(ctx, d.KMSMasterKeyID) end
  end
  b.encryption = p.ServerSideEncryptionConfiguration
  return {}
end

function M.GetBucketEncryption(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  -- every bucket has SSE-S3 by default since January 2023
  return { ServerSideEncryptionConfiguration = b.encryption or { Rules = { {
    ApplyServerSideEncryptionByDefault = { SSEAlgorithm = "AES256" }, BucketKeyEnabled = false } } } }
end

M.DeleteBucketEncryption = remover("encryption")

-- Public access block -------------------------------------------------------------------

function M.PutPublicAccessBlock(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local c = p.PublicAccessBlockConfiguration
  b.public_access_block = { BlockPublicAcls = c.BlockPublicAcls or false,
    IgnorePublicAcls = c.IgnorePublicAcls or false, BlockPublicPolicy = c.BlockPublicPolicy or false,
    RestrictPublicBuckets = c.RestrictPublicBuckets or false }
  return {}
end

function M.GetPublicAccessBlock(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  if not b.public_access_block then
    ctx:fail("NoSuchPublicAccessBlockConfiguration", "The public access block configuration "
      .. "was not found", 404, { BucketName = b.name })
  end
  return { PublicAccessBlockConfiguration = b.public_access_block }
end

M.DeletePublicAccessBlock = remover("public_access_block")

-- Policy ----------------------------------------------------------------------------------

function M.PutBucketPolicy(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local doc = policy.parse(p.Policy, b.name)
  if b.public_access_block and b.public_access_block.BlockPublicPolicy and policy.is_public(doc) then
    ctx:fail("AccessDenied", "User: " .. tostring(ctx.caller and ctx.caller.arn) .. " is not "
      .. "authorized to perform: s3:PutBucketPolicy on resource: \"arn:aws:s3:::" .. b.name
      .. "\" because public policies are blocked by the BlockPublicPolicy block public access setting.", 403)
  end
  b.policy = p.Policy
  return {}
end

-- The bucket's policy document (text), or S3's 404 when it has none.
local function policy_text(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  if not b.policy then
    ctx:fail("NoSuchBucketPolicy", "The bucket policy does not exist", 404, { BucketName = b.name })
  end
  return b.policy
end

function M.GetBucketPolicy(ctx, p)
  return { Policy = policy_text(ctx, p) }
end

M.DeleteBucketPolicy = remover("policy")

function M.GetBucketPolicyStatus(ctx, p)
  return { PolicyStatus = { IsPublic = policy.is_public(cjson.decode(policy_text(ctx, p))) } }
end

-- Tags --------------------------------------------------------------------------------------

function M.check_tags(ctx, set, max)
  local seen = {}
  if #set > max then
    ctx:fail(max == 10 and "BadRequest" or "InvalidTag", ("Object tags cannot be greater than %d"):format(max), 400)
  end
  for _, t in ipairs(set) do
    if seen[t.Key] then
      ctx:fail("InvalidTag", "Cannot provide multiple Tags with the same key", 400, { TagKey = t.Key })
    end
    seen[t.Key] = true
    if #t.Key > 128 or #t.Key == 0 or #t.Value > 256 then
      ctx:fail("InvalidTag", "The TagKey you have provided is invalid", 400, { TagKey = t.Key })
    end
    if t.Key:lower():match("^aws:") then
      ctx:fail("InvalidTag", "Your TagKey cannot be prefixed with aws:", 400, { TagKey = t.Key })
    end
  end
end

function M.PutBucketTagging(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  M.check_tags(ctx, p.Tagging.TagSet, 50)
  b.tags = p.Tagging.TagSet
  return {}
end

function M.GetBucketTagging(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  if not b.tags then
    ctx:fail("NoSuchTagSet", "The TagSet does not exist", 404, { BucketName = b.name })
  end
  return { TagSet = b.tags }
end

M.DeleteBucketTagging = remover("tags")

-- "k1=v1&k2=v2" (x-amz-tagging) ↔ TagSet
local function decode_form(s)
  local set = {}
  local function un(x)
    return (x:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end
  for pair in (s or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    set[#set + 1] = { Key = un(k), Value = un(v) }
  end
  return set
end

local function object_version(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  return b, s3().read_version(ctx, b, p, true)
end

function M.PutObjectTagging(ctx, p)
  local b, v = object_version(ctx, p)
  M.check_tags(ctx, p.Tagging.TagSet, 10)
  v.tag_set = p.Tagging.TagSet
  v.tagging = nil
  return { VersionId = b.versioning and v.version_id or nil }
end

function M.GetObjectTagging(ctx, p)
  local b, v = object_version(ctx, p)
  return { TagSet = v.tag_set or decode_form(v.tagging),
    VersionId = b.versioning and v.version_id or nil }
end

function M.DeleteObjectTagging(ctx, p)
  local b, v = object_version(ctx, p)
  v.tag_set, v.tagging = nil, nil
  return { VersionId = b.versioning and v.version_id or nil }
end

return M
