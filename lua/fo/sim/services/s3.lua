-- S3 handlers: buckets (one global namespace; each in its region, owned by an account),
-- objects with versioning and delete markers, conditional writes and reads, listings,
-- server-side encryption, and the bucket settings recipes use (versioning, default
-- encryption, public access block, policy, tags). Multipart uploads: fo.sim.s3.multipart;
-- bucket policies: fo.sim.s3.policy. Wire details (virtual-hosted buckets, aws-chunked,
-- checksums, the error document) are in fo.sim.s3.request / errors.
local state = require "fo.sim.s3.state"
local listing = require "fo.sim.s3.listing"
local crypto = require "fo.crypto"

local M = {}

local function fail(ctx, code, message, status, fields)
  ctx:fail(code, message, status, fields)
end

-- The canonical user id S3 shows for an account (64 hex digits).
local function owner(account)
  return { ID = crypto.hex(crypto.sha256("fo-sim-canonical-" .. account)), DisplayName = "fo-sim-" .. account }
end
M.owner = owner

-- Bucket names ------------------------------------------------------------------------

-- AWS's rules for general purpose buckets: 3-63 characters of lower-case letters, digits,
-- '.' and '-', beginning and ending with a letter or digit, no "..", not an IP address,
-- none of the reserved prefixes and suffixes.
local function check_name(ctx, name)
  local bad = #name < 3 or #name > 63 or not name:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    or name:find("..", 1, true) or name:match("^%d+%.%d+%.%d+%.%d+$")
    or name:match("^xn%-%-") or name:match("^sthree%-") or name:match("^amzn%-s3%-demo%-")
    or name:match("%-s3alias$") or name:match("%-%-ol%-s3$") or name:match("%.mrap$")
    or name:match("%-%-x%-s3$") or name:match("%-%-table%-s3$")
  if bad then fail(ctx, "InvalidBucketName", "The specified bucket is not valid.", 400, { BucketName = name }) end
end

-- Server-side encryption ----------------------------------------------------------------

--- The KMS key S3 encrypts with for `key_id` (an id, alias or ARN; nil: the account's
--- aws/s3 key). The ONE place S3 asks KMS: today it only turns the id into an ARN; key
--- policy and key state checks go here.
function M.kms_key_for(ctx, key_id)
  if key_id == nil or key_id == "" then
    return ctx:arn("alias/aws/s3", { service = "kms" })
  end
  if key_id:match("^arn:") then return key_id end
  if key_id:match("^alias/") then return ctx:arn(key_id, { service = "kms" }) end
  return ctx:arn("key/" .. key_id, { service = "kms" })
end

-- The encryption of a new object: the request's headers, else the bucket's default, else
-- SSE-S3 (AES256), as S3 encrypts every new object since January 2023.
local function encryption(ctx, bucket, p)
  local sse, key, bucket_key = p.ServerSideEncryption, p.SSEKMSKeyId, p.BucketKeyEnabled
  if sse == nil then
    local rule = bucket.encryption and bucket.encryption.Rules and bucket.encryption.Rules[1]
    local d = rule and rule.ApplyServerSideEncryptionByDefault
    sse = d and d.SSEAlgorithm or "AES256"
    if key == nil and d then key = d.KMSMasterKeyID end
    if bucket_key == nil and rule then bucket_key = rule.BucketKeyEnabled end
  end
  if sse ~= "AES256" and sse ~= "aws:kms" and sse ~= "aws:kms:dsse" then
    fail(ctx, "InvalidArgument", "The encryption method specified is not supported", 400)
  end
  if key ~= nil and sse == "AES256" then
    fail(ctx, "InvalidArgument", "Server Side Encryption with AWS KMS managed key requires "
      .. "HTTP header x-amz-server-side-encryption : aws:kms", 400)
  end
  local e = { sse = sse }
  if sse ~= "AES256" then
    e.kms_key = M.kms_key_for(ctx, key)
    e.bucket_key = bucket_key or nil
  end
  return e
end

local function sse_fields(out, v)
  out.ServerSideEncryption = v.sse
  out.SSEKMSKeyId = v.kms_key
  out.BucketKeyEnabled = v.bucket_key
  return out
end

-- Conditions ------------------------------------------------------------------------------

local function precondition_failed(ctx, condition)
  fail(ctx, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
    412, { Condition = condition })
end

local function etag_matches(list, etag)
  for e in (list or ""):gmatch("[^,]+") do
    e = e:match("^%s*(.-)%s*$")
    if e == "*" or e == etag or ('"' .. e .. '"') == etag then return true end
  end
  return false
end

local function time_of(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then
    local ok, t = pcall(require("fo.aws.credentials").epoch_of, v)
    if ok then return t end
  end
  return nil
end

-- Conditional writes (PutObject, CompleteMultipartUpload, CopyObject's destination):
-- If-None-Match "*" only when no object is there, If-Match only over the current ETag.
function M.check_write_conditions(ctx, bucket, key, p)
  local cur = state.current(bucket, key)
  local exists = cur and not cur.delete_marker
  if p.IfNoneMatch ~= nil then
    if p.IfNoneMatch ~= "*" then
      fail(ctx, "NotImplemented", "A header you provided implies functionality that is not implemented", 501,
        { Header = "If-None-Match" })
    end
    if exists then precondition_failed(ctx, "If-None-Match") end
  end
  if p.IfMatch ~= nil then
    if not exists then
      fail(ctx, "NoSuchKey", "The specified key does not exist.", 404, { Key = key })
    end
    if not etag_matches(p.IfMatch, cur.etag) then precondition_failed(ctx, "If-Match") end
  end
end

-- Conditional reads (GetObject, HeadObject), in RFC 7232's order.
local function check_read_conditions(ctx, v, p)
  if p.IfMatch ~= nil and not etag_matches(p.IfMatch, v.etag) then
    precondition_failed(ctx, "If-Match")
  end
  local ius = time_of(p.IfUnmodifiedSince)
  if p.IfMatch == nil and ius and v.last_modified > ius then
    precondition_failed(ctx, "If-Unmodified-Since")
  end
  if p.IfNoneMatch ~= nil and etag_matches(p.IfNoneMatch, v.etag) then
    fail(ctx, "NotModified", "Not Modified", 304)
  end
  local ims = time_of(p.IfModifiedSince)
  if p.IfNoneMatch == nil and ims and v.last_modified <= ims then
    fail(ctx, "NotModified", "Not Modified", 304)
  end
end

-- Buckets ---------------------------------------------------------------------------------

function M.CreateBucket(ctx, p)
  local name = p.Bucket
  check_name(ctx, name)
  local cfg = p.CreateBucketConfiguration
  local lc = cfg and cfg.LocationConstraint
  if lc == "" then lc = nil end
  -- us-east-1 takes no LocationConstraint; every other region must name itself
  if lc == "us-east-1" then
    fail(ctx, "InvalidLocationConstraint", "The specified location-constraint is not valid", 400,
      { LocationConstraint = lc })
  elseif ctx.region == "us-east-1" and lc == nil then
    -- the one region that takes none
  elseif lc == nil then
    fail(ctx, "IllegalLocationConstraintException", ("The unspecified location constraint is "
      .. "incompatible for the region specific endpoint this request was sent to."), 400)
  elseif lc ~= ctx.region then
    fail(ctx, "IllegalLocationConstraintException", ("The %s location constraint is incompatible "
      .. "for the region specific endpoint this request was sent to."):format(lc), 400)
  end
  local buckets = state.buckets(ctx)
  local b = buckets[name]
  if b then
    if b.account == ctx.account then
      -- us-east-1 answers 200 again for the owner's bucket there (legacy), else 409
      if b.region == "us-east-1" and ctx.region == "us-east-1" then
        return { Location = "/" .. name }
      end
      fail(ctx, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
        .. "succeeded and you already own it.", 409, { BucketName = name })
    end
    fail(ctx, "BucketAlreadyExists", "The requested bucket name is not available. The bucket "
      .. "namespace is shared by all users of the system. Please select a different name and try again.",
      409, { BucketName = name })
  end
  local tags = cfg and cfg.Tags
  if tags then require("fo.sim.s3.settings").check_tags(ctx, tags, 50) end
  buckets[name] = { name = name, account = ctx.account, region = ctx.region,
    tags = tags and #tags > 0 and tags or nil,
    created = math.floor(ctx:now()), objects = {}, uploads = {},
    object_lock = p.ObjectLockEnabledForBucket or nil,
    versioning = p.ObjectLockEnabledForBucket and "Enabled" or nil }
  return { Location = "/" .. name, BucketArn = ("arn:aws:s3:::%s"):format(name) }
end

function M.HeadBucket(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  return { BucketRegion = b.region, BucketArn = ("arn:aws:s3:::%s"):format(b.name) }
end

function M.ListBuckets(ctx, p)
  local names = {}
  for name, b in pairs(state.buckets(ctx)) do
    if b.account == ctx.account and (p.BucketRegion == nil or p.BucketRegion == b.region)
        and (p.Prefix == nil or name:sub(1, #p.Prefix) == p.Prefix) then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  local after = p.ContinuationToken and crypto.base64_decode(p.ContinuationToken) or nil
  local max = p.MaxBuckets or 10000
  local out, next_token = {}, nil
  for _, name in ipairs(names) do
    if not after or name > after then
      if #out >= max then next_token = crypto.base64_encode(out[#out].Name) break end
      local b = state.buckets(ctx)[name]
      out[#out + 1] = { Name = name, CreationDate = b.created, BucketRegion = b.region,
        BucketArn = ("arn:aws:s3:::%s"):format(name) }
    end
  end
  return { Buckets = out, Owner = owner(ctx.account), ContinuationToken = next_token,
    Prefix = p.Prefix }
end

function M.DeleteBucket(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  if state.has_objects(b) then
    fail(ctx, "BucketNotEmpty", "The bucket you tried to delete is not empty", 409, { BucketName = b.name })
  end
  state.buckets(ctx)[b.name] = nil
  return {}
end

function M.GetBucketLocation(ctx, p)
  local b = state.buckets(ctx)[p.Bucket]
  if not b then state.bucket(ctx, p.Bucket, p) end -- NoSuchBucket
  if b.account ~= ctx.account then fail(ctx, "AccessDenied", "Access Denied", 403) end
  -- answered from any region; us-east-1 is the empty constraint
  return { LocationConstraint = b.region ~= "us-east-1" and b.region or nil }
end

-- Versioning ------------------------------------------------------------------------------

function M.PutBucketVersioning(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local status = p.VersioningConfiguration and p.VersioningConfiguration.Status
  if status ~= "Enabled" and status ~= "Suspended" then
    fail(ctx, "MalformedXML", "The XML you provided was not well-formed or did not validate "
      .. "against our published schema", 400)
  end
  if status == "Suspended" and b.object_lock then
    fail(ctx, "InvalidBucketState", "An Object Lock configuration is present on this bucket, "
      .. "so the versioning state cannot be changed.", 409)
  end
  -- a bucket never returns to unversioned once versioning was enabled
  if status == "Suspended" and b.versioning == nil then return {} end
  b.versioning = status
  return {}
end

function M.GetBucketVersioning(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  return { Status = b.versioning }
end

-- Objects ---------------------------------------------------------------------------------

local function user_metadata(m)
  if m == nil then return nil end
  local out = {}
  for k, v in pairs(m) do out[k:lower()] = v end
  return out
end

-- A new object version from a body and the request's params.
local function new_version(ctx, b, key, body, p, enc)
  local v = { key = key, version_id = state.new_version_id(ctx, b), etag = state.etag(body),
    last_modified = math.floor(ctx:now()), content_type = p.ContentType or "binary/octet-stream",
    content_encoding = p.ContentEncoding, content_disposition = p.ContentDisposition,
    content_language = p.ContentLanguage, cache_control = p.CacheControl,
    metadata = user_metadata(p.Metadata), storage_class = p.StorageClass or "STANDARD",
    sse = enc.sse, kms_key = enc.kms_key, bucket_key = enc.bucket_key, tagging = p.Tagging,
    owner = ctx.account }
  state.set_body(v, body)
  return v
end

local CHECKSUM_MEMBERS = { crc32 = "ChecksumCRC32", crc32c = "ChecksumCRC32C", sha1 = "ChecksumSHA1",
  sha256 = "ChecksumSHA256", crc64nvme = "ChecksumCRC64NVME" }
M.CHECKSUM_MEMBERS = CHECKSUM_MEMBERS

-- The checksum a request carried (header or aws-chunked trailer), as algorithm and value.
local function request_checksum(ctx, p)
  local h = ctx.http and ctx.http.headers or {}
  for alg, member in pairs(CHECKSUM_MEMBERS) do
    local v = p[member] or h["x-amz-checksum-" .. alg]
    if v then return alg, v end
  end
  return nil
end

function M.PutObject(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local body = p.Body or ""
  local limit = require("fo.sim.limits").S3_OBJECT
  if #body > limit then
    fail(ctx, "EntityTooLarge", ("Your proposed upload exceeds the maximum allowed size (the fo "
      .. "sim takes single PUTs of up to %d bytes; use a multipart upload)"):format(limit), 400,
      { ProposedSize = #body, MaxSizeAllowed = limit })
  end
  M.check_write_conditions(ctx, b, p.Key, p)
  local enc = encryption(ctx, b, p)
  local v = new_version(ctx, b, p.Key, body, p, enc)
  local alg, sum = request_checksum(ctx, p)
  if alg then v.checksum = { algorithm = alg, value = sum } end
  state.add_version(b, p.Key, v)
  local out = sse_fields({ ETag = v.etag,
    VersionId = b.versioning and v.version_id or nil }, v)
  if alg then out[CHECKSUM_MEMBERS[alg]] = sum; out.ChecksumType = "FULL_OBJECT" end
  return out
end

-- The version a GET/HEAD/DELETE names (VersionId) or the current one; NoSuchKey /
-- NoSuchVersion otherwise, and a delete marker answers 404 (405 when named).
local function read_version(ctx, b, p, method_not_allowed)
  local v
  if p.VersionId ~= nil then
    v = state.version(b, p.Key, p.VersionId)
    if not v then
      if p.VersionId ~= "null" and not p.VersionId:match("^[%w._]+$") then
        fail(ctx, "InvalidArgument", "Invalid version id specified", 400)
      end
      fail(ctx, "NoSuchVersion", "The specified version does not exist.", 404,
        { Key = p.Key, VersionId = p.VersionId })
    end
    if v.delete_marker and method_not_allowed then
      local e = require("fo.sim.error").new("MethodNotAllowed",
        "The specified method is not allowed against this resource.", 405,
        { Method = "GET", ResourceType = "DeleteMarker" })
      e.headers = { ["x-amz-delete-marker"] = "true", ["x-amz-version-id"] = v.version_id }
      error(e, 0)
    end
  else
    v = state.current(b, p.Key)
    if not v or v.delete_marker then
      local e = require("fo.sim.error").new("NoSuchKey", "The specified key does not exist.", 404,
        { Key = p.Key })
      if v then e.headers = { ["x-amz-delete-marker"] = "true", ["x-amz-version-id"] = v.version_id } end
      error(e, 0)
    end
  end
  return v
end

local function object_headers(b, v)
  local out = sse_fields({ ETag = v.etag, LastModified = v.last_modified, ContentLength = v.size,
    ContentType = v.content_type, ContentEncoding = v.content_encoding,
    ContentDisposition = v.content_disposition, ContentLanguage = v.content_language,
    CacheControl = v.cache_control, Metadata = v.metadata, AcceptRanges = "bytes",
    VersionId = b.versioning and v.version_id or nil,
    StorageClass = v.storage_class ~= "STANDARD" and v.storage_class or nil,
    PartsCount = v.parts_count }, v)
  return out
end

local function with_checksum(out, v, p)
  if p.ChecksumMode == "ENABLED" and v.checksum then
    out[CHECKSUM_MEMBERS[v.checksum.algorithm]] = v.checksum.value
    out.ChecksumType = v.checksum.type or "FULL_OBJECT"
  end
  return out
end

-- "bytes=a-b", "bytes=a-", "bytes=-n" → first, last (1-based inclusive) or nil (ignored, as S3
-- ignores a malformed Range); 416 when it starts past the end.
local function byte_range(ctx, range, size)
  if range == nil then return nil end
  local a, z = range:match("^bytes=(%d*)%-(%d*)$")
  if not a or (a == "" and z == "") then return nil end
  local first, last
  if a == "" then
    first, last = math.max(size - tonumber(z), 0), size - 1
  else
    first = tonumber(a)
    last = z ~= "" and math.min(tonumber(z), size - 1) or size - 1
  end
  if first >= size or last < first then
    fail(ctx, "InvalidRange", "The requested range is not satisfiable", 416,
      { RangeRequested = range, ActualObjectSize = size })
  end
  return first + 1, last + 1
end

function M.GetObject(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local v = read_version(ctx, b, p, true)
  check_read_conditions(ctx, v, p)
  local body = state.body(v)
  local out = with_checksum(object_headers(b, v), v, p)
  local i, j = byte_range(ctx, p.Range, #body)
  if i then
    out.ContentRange = ("bytes %d-%d/%d"):format(i - 1, j - 1, #body)
    body = body:sub(i, j)
    out.ContentLength = #body -- 206 Partial Content: fo.sim.s3.response
  end
  out.Body = body
  out.ContentType = p.ResponseContentType or out.ContentType
  return out
end

function M.HeadObject(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local v = read_version(ctx, b, p, true)
  check_read_conditions(ctx, v, p)
  return with_checksum(object_headers(b, v), v, p)
end

function M.DeleteObject(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  if p.IfMatch ~= nil then
    local cur = state.current(b, p.Key)
    if not cur or cur.delete_marker then
      fail(ctx, "NoSuchKey", "The specified key does not exist.", 404, { Key = p.Key })
    end
    if not etag_matches(p.IfMatch, cur.etag) then precondition_failed(ctx, "If-Match") end
  end
  if p.VersionId ~= nil then
    local v = state.remove_version(b, p.Key, p.VersionId)
    return { VersionId = p.VersionId, DeleteMarker = v and v.delete_marker or nil }
  end
  if b.versioning == nil then
    state.remove_version(b, p.Key, "null")
    return {}
  end
  -- versioned: a delete marker becomes the current version (a "null" one when suspended)
  local marker = { key = p.Key, version_id = state.new_version_id(ctx, b), delete_marker = true,
    last_modified = math.floor(ctx:now()), owner = ctx.account }
  state.add_version(b, p.Key, marker)
  return { DeleteMarker = true, VersionId = marker.version_id }
end

function M.DeleteObjects(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local deleted, errors = {}, {}
  local quiet = p.Delete and p.Delete.Quiet
  for _, o in ipairs(p.Delete and p.Delete.Objects or {}) do
    local ok, out = pcall(M.DeleteObject, ctx, { Bucket = p.Bucket, Key = o.Key,
      VersionId = o.VersionId, IfMatch = o.ETag })
    if ok then
      if not quiet then
        deleted[#deleted + 1] = { Key = o.Key, VersionId = o.VersionId,
          DeleteMarker = out.DeleteMarker, DeleteMarkerVersionId = out.DeleteMarker and out.VersionId or nil }
      end
    else
      errors[#errors + 1] = { Key = o.Key, VersionId = o.VersionId,
        Code = type(out) == "table" and out.code or "InternalError",
        Message = type(out) == "table" and out.message or tostring(out) }
    end
  end
  local _ = b
  return { Deleted = #deleted > 0 and deleted or nil, Errors = #errors > 0 and errors or nil }
end

-- CopySource: "bucket/key[?versionId=v]", percent-encoded, an optional leading '/'.
local function parse_copy_source(ctx, src)
  local s = src:gsub("^/", "")
  local path, vid = s:match("^([^?]*)%?versionId=(.*)$")
  path = path or s
  path = path:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  local bucket, key = path:match("^([^/]+)/(.+)$")
  if not bucket then
    fail(ctx, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey", 400)
  end
  return bucket, key, vid
end
M.parse_copy_source = parse_copy_source

function M.CopyObject(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local sb_name, skey, svid = parse_copy_source(ctx, p.CopySource)
  local sb = state.bucket(ctx, sb_name, { Key = skey }, "s3:GetObject")
  local src = read_version(ctx, sb, { Key = skey, VersionId = svid }, false)
  if p.CopySourceIfMatch and not etag_matches(p.CopySourceIfMatch, src.etag) then
    precondition_failed(ctx, "x-amz-copy-source-If-Match")
  end
  if p.CopySourceIfNoneMatch and etag_matches(p.CopySourceIfNoneMatch, src.etag) then
    precondition_failed(ctx, "x-amz-copy-source-If-None-Match")
  end
  local replace = p.MetadataDirective == "REPLACE"
  if sb_name == p.Bucket and skey == p.Key and not replace and p.ServerSideEncryption == nil
      and p.StorageClass == nil and svid == nil then
    fail(ctx, "InvalidRequest", "This copy request is illegal because it is trying to copy an "
      .. "object to itself without changing the object's metadata, storage class, website "
      .. "redirect location or encryption attributes.", 400)
  end
  M.check_write_conditions(ctx, b, p.Key, p)
  local params = replace and p or { ContentType = src.content_type, ContentEncoding = src.content_encoding,
    ContentDisposition = src.content_disposition, ContentLanguage = src.content_language,
    CacheControl = src.cache_control, Metadata = src.metadata, StorageClass = p.StorageClass }
  local body = state.body(src)
  local v = new_version(ctx, b, p.Key, body, params, encryption(ctx, b, p))
  v.tagging = p.TaggingDirective == "REPLACE" and p.Tagging or src.tagging
  state.add_version(b, p.Key, v)
  return sse_fields({ CopyObjectResult = { ETag = v.etag, LastModified = v.last_modified },
    VersionId = b.versioning and v.version_id or nil,
    CopySourceVersionId = sb.versioning and src.version_id or nil }, v)
end

-- Shared with fo.sim.s3.multipart and fo.sim.s3.settings.
M.encryption, M.sse_fields, M.new_version, M.read_version = encryption, sse_fields, new_version,
  read_version
M.request_checksum, M.etag_matches, M.precondition_failed = request_checksum, etag_matches,
  precondition_failed

-- Listings --------------------------------------------------------------------------------

local function object_entry(b, key, fetch_owner)
  local v = state.current(b, key)
  return { Key = key, LastModified = v.last_modified, ETag = v.etag, Size = v.size,
    StorageClass = v.storage_class or "STANDARD",
    ChecksumAlgorithm = v.checksum and { ({ crc32 = "CRC32", crc32c = "CRC32C", sha1 = "SHA1",
      sha256 = "SHA256", crc64nvme = "CRC64NVME" })[v.checksum.algorithm] } or nil,
    Owner = fetch_owner and owner(v.owner or b.account) or nil }
end

local function split(b, entries, fetch_owner)
  local contents, prefixes = {}, {}
  for _, e in ipairs(entries) do
    if e.key then contents[#contents + 1] = object_entry(b, e.key, fetch_owner)
    else prefixes[#prefixes + 1] = { Prefix = e.prefix } end
  end
  return #contents > 0 and contents or nil, #prefixes > 0 and prefixes or nil
end

function M.ListObjectsV2(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local max = listing.max_keys(p.MaxKeys)
  local after = p.StartAfter
  if p.ContinuationToken ~= nil then
    local t = crypto.base64_decode(p.ContinuationToken)
    if not t or t:sub(1, 3) ~= "fo1" then
      fail(ctx, "InvalidArgument", "The continuation token provided is incorrect", 400,
        { ArgumentName = "continuation-token" })
    end
    after = t:sub(4)
  end
  local entries, truncated, last = listing.walk(state.live_keys(b), { prefix = p.Prefix,
    delimiter = p.Delimiter, after = after, max_keys = max })
  local contents, prefixes = split(b, entries, p.FetchOwner)
  return { Name = b.name, Prefix = p.Prefix or "", Delimiter = p.Delimiter, MaxKeys = max,
    KeyCount = #entries, IsTruncated = truncated, Contents = contents, CommonPrefixes = prefixes,
    ContinuationToken = p.ContinuationToken, StartAfter = p.StartAfter,
    NextContinuationToken = truncated and crypto.base64_encode("fo1" .. last) or nil,
    EncodingType = p.EncodingType }
end

function M.ListObjects(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local max = listing.max_keys(p.MaxKeys)
  local entries, truncated, last = listing.walk(state.live_keys(b), { prefix = p.Prefix,
    delimiter = p.Delimiter, after = p.Marker, max_keys = max })
  local contents, prefixes = split(b, entries, true)
  return { Name = b.name, Prefix = p.Prefix or "", Delimiter = p.Delimiter, MaxKeys = max,
    Marker = p.Marker or "", IsTruncated = truncated, Contents = contents,
    CommonPrefixes = prefixes,
    -- S3 gives NextMarker only with a delimiter; clients use the last key otherwise
    NextMarker = truncated and p.Delimiter and last or nil, EncodingType = p.EncodingType }
end

function M.ListObjectVersions(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local max = listing.max_keys(p.MaxKeys)
  local keys = {}
  for k in pairs(b.objects) do keys[#keys + 1] = k end
  table.sort(keys)
  -- walk keys; each version counts against max-keys
  local versions, markers, prefixes, seen = {}, {}, {}, {}
  local count, truncated, next_key, next_vid = 0, false, nil, nil
  local prefix, delim = p.Prefix or "", p.Delimiter
  if delim == "" then delim = nil end
  local started = p.KeyMarker == nil
  for _, k in ipairs(keys) do
    if k:sub(1, #prefix) == prefix and (not p.KeyMarker or k >= p.KeyMarker) then
      local cp = delim and k:find(delim, #prefix + 1, true) and k:sub(1, k:find(delim, #prefix + 1, true) + #delim - 1)
      if cp then
        if not seen[cp] and not (p.KeyMarker and cp <= p.KeyMarker) then
          if count >= max then truncated = true; next_key = cp; break end
          seen[cp] = true
          prefixes[#prefixes + 1] = { Prefix = cp }
          count = count + 1
        end
      else
        local list = b.objects[k]
        local skip = p.KeyMarker ~= nil and k == p.KeyMarker
        local skipping_to = skip and p.VersionIdMarker
        for i = #list, 1, -1 do -- newest first
          local v = list[i]
          if skipping_to then
            if v.version_id == skipping_to then skipping_to = nil end
          elseif not (skip and not p.VersionIdMarker) then
            if count >= max then truncated = true; next_key, next_vid = k, list[i + 1].version_id; break end
            local e = { Key = k, VersionId = v.version_id, IsLatest = i == #list,
              LastModified = v.last_modified, Owner = owner(v.owner or b.account) }
            if v.delete_marker then
              markers[#markers + 1] = e
            else
              e.ETag, e.Size, e.StorageClass = v.etag, v.size, v.storage_class or "STANDARD"
              versions[#versions + 1] = e
            end
            count = count + 1
          end
        end
        if truncated then break end
      end
    end
  end
  local _ = started
  return { Name = b.name, Prefix = p.Prefix or "", Delimiter = p.Delimiter, MaxKeys = max,
    KeyMarker = p.KeyMarker or "", VersionIdMarker = p.VersionIdMarker or "",
    IsTruncated = truncated, NextKeyMarker = next_key, NextVersionIdMarker = next_vid,
    Versions = #versions > 0 and versions or nil, DeleteMarkers = #markers > 0 and markers or nil,
    CommonPrefixes = #prefixes > 0 and prefixes or nil, EncodingType = p.EncodingType }
end

-- Bucket settings (encryption, public access block, policy, tags) and multipart uploads
-- live in their own files; their handlers join this table.
for _, name in ipairs{ "fo.sim.s3.settings", "fo.sim.s3.multipart" } do
  local ok, mod = pcall(require, name)
  if ok then
    for k, v in pairs(mod) do M[k] = v end
  elseif not tostring(mod):find("module '" .. name .. "' not found", 1, true) then
    error(mod, 0)
  end
end

return M
