-- S3's state in the simulator: one bucket namespace for every account and region (bucket
-- names are global at AWS), each bucket with its owner, region, settings and objects. An
-- object is a list of versions, oldest first; the last is the current one (a delete marker
-- when the object was deleted in a versioned bucket). Bodies are kept base64-encoded so
-- that a saved state file stays valid JSON for any bytes.
local crypto = require "fo.crypto"
local SimError = require "fo.sim.error"

local M = {}

M.NAMESPACE = "aws-s3" -- the store "account" that holds the global bucket namespace

--- The table of all buckets (name → bucket).
function M.buckets(ctx)
  local db = ctx.sim.store:db(M.NAMESPACE, "global", "s3")
  db.buckets = db.buckets or {}
  return db.buckets
end

-- The IAM action of each operation where it is not "s3:" .. the operation's name; false:
-- parts of a multipart upload, allowed to the bucket's owner (the policy was evaluated for
-- CreateMultipartUpload, whose headers carry the encryption the conditions look at).
M.ACTIONS = { ListObjects = "s3:ListBucket", ListObjectsV2 = "s3:ListBucket",
  ListObjectVersions = "s3:ListBucketVersions", HeadObject = "s3:GetObject",
  HeadBucket = "s3:ListBucket", CopyObject = "s3:PutObject", CreateMultipartUpload = "s3:PutObject",
  UploadPart = false, UploadPartCopy = false, CompleteMultipartUpload = false,
  AbortMultipartUpload = "s3:AbortMultipartUpload", ListParts = "s3:ListMultipartUploadParts",
  ListMultipartUploads = "s3:ListBucketMultipartUploads", DeleteObjects = "s3:DeleteObject",
  PutBucketEncryption = "s3:PutEncryptionConfiguration", GetBucketEncryption = "s3:GetEncryptionConfiguration",
  DeleteBucketEncryption = "s3:PutEncryptionConfiguration",
  PutPublicAccessBlock = "s3:PutBucketPublicAccessBlock", GetPublicAccessBlock = "s3:GetBucketPublicAccessBlock",
  DeletePublicAccessBlock = "s3:PutBucketPublicAccessBlock", GetBucketTagging = "s3:GetBucketTagging",
  DeleteBucketTagging = "s3:PutBucketTagging", DeleteObjectTagging = "s3:DeleteObjectTagging" }

--- The IAM action an identity policy must allow for S3 operation `op` with `params`: the
--- operation's own (M.ACTIONS, else "s3:" .. op); a multipart part is s3:PutObject; naming
--- a version needs the ...Version action (s3:GetObjectVersion, s3:DeleteObjectVersion), and
--- DeleteObjects listing any version needs s3:DeleteObjectVersion.
function M.iam_action(op, params)
  params = params or {}
  local a = M.ACTIONS[op]
  if a == false then return "s3:PutObject" end
  a = a or ("s3:" .. tostring(op))
  local versioned = params.VersionId ~= nil
  if op == "DeleteObjects" then
    for _, o in ipairs(params.Delete and params.Delete.Objects or {}) do
      versioned = versioned or o.VersionId ~= nil
    end
  end
  if versioned and (a == "s3:GetObject" or a == "s3:DeleteObject") then a = a .. "Version" end
  return a
end

--- The bucket `name` the caller may use for this call, or raises NoSuchBucket (404); one in
--- another region is a 301 PermanentRedirect naming it; the bucket policy (fo.sim.s3.policy)
--- decides the rest (403 AccessDenied). params: the call's (key and headers for the
--- policy's conditions); action: the IAM action, default the operation's.
function M.bucket(ctx, name, params, action)
  local b = M.buckets(ctx)[name]
  if not b then
    SimError.raise("NoSuchBucket", "The specified bucket does not exist", 404, { BucketName = name })
  end
  if b.region ~= ctx.region then
    -- sent to the bucket's regional endpoint but signed for another region: S3 names the
    -- region the signature should have used
    local host = ctx.http and ctx.http.headers.host or ""
    if host:match("s3[.-]" .. b.region:gsub("%-", "%%-") .. "%.amazonaws%.com") then
      local e = SimError.new("AuthorizationHeaderMalformed", ("The authorization header is "
        .. "malformed; the region '%s' is wrong; expecting '%s'"):format(ctx.region, b.region),
        400, { Region = b.region })
      e.headers = { ["x-amz-bucket-region"] = b.region }
      error(e, 0)
    end
    local e = SimError.new("PermanentRedirect", "The bucket you are attempting to access must be "
      .. "addressed using the specified endpoint. Please send all future requests to this "
      .. "endpoint.", 301, { Bucket = name, Endpoint = ("%s.s3.%s.amazonaws.com"):format(name, b.region) })
    e.headers = { ["x-amz-bucket-region"] = b.region }
    error(e, 0)
  end
  if action == nil then
    action = M.ACTIONS[ctx.operation]
    if action == nil then action = "s3:" .. tostring(ctx.operation) end
  end
  if action then
    require("fo.sim.s3.policy").authorize(ctx, b, action, params)
  elseif b.account ~= ctx.account then
    SimError.raise("AccessDenied", "Access Denied", 403)
  end
  b.objects = b.objects or {}
  return b
end

--- "<32 hex digits>" quoted, as S3 writes an ETag.
function M.etag(body)
  return '"' .. crypto.hex(crypto.md5(body)) .. '"'
end

function M.body(version)
  return version.data and crypto.base64_decode(version.data) or ""
end

function M.set_body(version, body)
  version.data = crypto.base64_encode(body)
  version.size = #body
end

--- The current version of `key` (nil when there is none; may be a delete marker).
function M.current(bucket, key)
  local versions = bucket.objects[key]
  return versions and versions[#versions] or nil
end

--- The version `id` of `key` (nil when absent).
function M.version(bucket, key, id)
  for _, v in ipairs(bucket.objects[key] or {}) do
    if v.version_id == id then return v end
  end
  return nil
end

--- A new version id (32 characters, as S3's look) or "null" when versioning is off or
--- suspended.
function M.new_version_id(ctx, bucket)
  if bucket.versioning == "Enabled" then
    return ctx:chars(32, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._")
  end
  return "null"
end

--- Adds `version` as the current version of `key`; a "null" version replaces the previous
--- "null" one (unversioned and suspended buckets keep one).
function M.add_version(bucket, key, version)
  local list = bucket.objects[key] or {}
  if version.version_id == "null" then
    for i = #list, 1, -1 do
      if list[i].version_id == "null" then table.remove(list, i) end
    end
  end
  list[#list + 1] = version
  bucket.objects[key] = list
end

--- Removes version `id` of `key` for good; returns it.
function M.remove_version(bucket, key, id)
  local list = bucket.objects[key] or {}
  for i, v in ipairs(list) do
    if v.version_id == id then
      table.remove(list, i)
      if #list == 0 then bucket.objects[key] = nil end
      return v
    end
  end
  return nil
end

--- The sorted keys of the bucket whose current version is an object (not a marker).
function M.live_keys(bucket)
  local keys = {}
  for k, list in pairs(bucket.objects) do
    local cur = list[#list]
    if cur and not cur.delete_marker then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

--- True when the bucket holds any object version or delete marker.
function M.has_objects(bucket)
  return next(bucket.objects or {}) ~= nil
end

return M
