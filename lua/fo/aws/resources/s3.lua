-- S3 resource type: aws:s3:bucket, a general purpose bucket with its versioning, default
-- encryption, public access block, bucket policy and tags.
--
-- Facts this file relies on (S3 API reference and user guide):
-- - Bucket names are global across accounts. CreateBucket answers 409 BucketAlreadyExists
--   for another account's bucket and BucketAlreadyOwnedByYou for one of this account (in
--   us-east-1 it answers 200 again instead). Tags go in the create call
--   (CreateBucketConfiguration.Tags), fo:token among them: a bucket that answers as existing
--   or as created is this create's only if it carries the token; otherwise it is a
--   conflict, never taken over.
-- - Outside us-east-1 the LocationConstraint must name the endpoint's region; us-east-1
--   takes none.
-- - Versioning, once enabled, can only be suspended (a bucket never returns to unversioned).
-- - Every bucket encrypts new objects (SSE-S3 by default since January 2023);
--   PutBucketEncryption chooses SSE-S3 or SSE-KMS (a key id, alias or ARN) and the bucket key.
-- - New buckets block public access by default (April 2023); the block is set explicitly
--   here so that the bucket says what the recipe says. The block is put before the policy
--   (BlockPublicPolicy refuses a public one).
-- - DeleteBucket refuses a bucket that still holds objects, versions or delete markers
--   (BucketNotEmpty). By default fo never deletes data: destroying a non-empty bucket stops
--   with that message until someone empties it. With empty_on_destroy = true (typed by the
--   user, per bucket) the delete first removes every object version and delete marker
--   (ListObjectVersions, DeleteObjects in batches of up to 1,000 keys, AWS's limit), and
--   only of a bucket that carries this stack's tags and the token of the create that made
--   it; the plan of the deletion says "empties and deletes" so the operator sees the data go.
local common = require "fo.aws.resources.common"

local M = {}

local function s3(ctx) return ctx:client("s3") end

-- AWS's rules for general purpose bucket names.
function M.valid_name(v)
  local ok = #v >= 3 and #v <= 63 and v:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") ~= nil
    and not v:find("..", 1, true) and not v:match("^%d+%.%d+%.%d+%.%d+$")
    and not v:match("^xn%-%-") and not v:match("^sthree%-") and not v:match("%-s3alias$")
    and not v:match("%-%-ol%-s3$")
  return ok, "3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a "
    .. "letter or digit, no '..', not an IP address"
end

local function arn_of(name) return "arn:aws:s3:::" .. name end

local function outputs(ctx, name)
  return { name = name, arn = arn_of(name), region = ctx.region,
    domain_name = ("%s.s3.%s.amazonaws.com"):format(name, ctx.region) }
end

local function bucket_tags(ctx, name)
  local client = s3(ctx)
  local out = common.unless({ "NoSuchTagSet" }, client.GetBucketTagging, client, { Bucket = name })
  return out and out.TagSet or {}
end

local function encryption_config(p)
  local d = { SSEAlgorithm = p.encryption }
  if p.encryption ~= "AES256" and p.kms_key_id ~= "" then d.KMSMasterKeyID = p.kms_key_id end
  return { Rules = { { ApplyServerSideEncryptionByDefault = d,
    BucketKeyEnabled = p.encryption ~= "AES256" and p.bucket_key or nil } } }
end

-- Every object version and delete marker of the bucket, deleted; returns how many.
-- Each round deletes the first page of what is left, so it ends when a listing is empty.
local function empty(ctx, name)
  local client = s3(ctx)
  local n = 0
  while true do
    local out = client:ListObjectVersions{ Bucket = name, MaxKeys = 1000 }
    local objects = {}
    for _, list in ipairs({ out.Versions or {}, out.DeleteMarkers or {} }) do
      for _, v in ipairs(list) do objects[#objects + 1] = { Key = v.Key, VersionId = v.VersionId } end
    end
    if #objects == 0 then return n end
    local res = client:DeleteObjects{ Bucket = name, Delete = { Objects = objects, Quiet = true } }
    local e = res.Errors and res.Errors[1]
    if e then
      error(("S3 bucket %s: deleting object %s (version %s) failed: %s: %s"):format(name,
        e.Key, tostring(e.VersionId), tostring(e.Code), tostring(e.Message)), 0)
    end
    n = n + #objects
  end
end

local BLOCK_ALL = { BlockPublicAcls = true, IgnorePublicAcls = true, BlockPublicPolicy = true,
  RestrictPublicBuckets = true }

local function put_versioning(ctx, name, on)
  s3(ctx):PutBucketVersioning{ Bucket = name,
    VersioningConfiguration = { Status = on and "Enabled" or "Suspended" } }
end

local function put_policy(ctx, name, policy)
  local client = s3(ctx)
  if policy == "" or policy == nil then
    client:DeleteBucketPolicy{ Bucket = name }
  else
    client:PutBucketPolicy{ Bucket = name, Policy = common.json_text(policy) }
  end
end

local function put_block(ctx, name, on)
  local client = s3(ctx)
  if on then
    client:PutPublicAccessBlock{ Bucket = name, PublicAccessBlockConfiguration = BLOCK_ALL }
  else
    client:DeletePublicAccessBlock{ Bucket = name }
  end
end

-- The settings after CreateBucket, in the order S3 needs them.
local function configure(ctx, name, p)
  put_block(ctx, name, p.block_public_access)
  s3(ctx):PutBucketEncryption{ Bucket = name, ServerSideEncryptionConfiguration = encryption_config(p) }
  if p.versioning then put_versioning(ctx, name, true) end
  if p.policy ~= "" then put_policy(ctx, name, p.policy) end
end

fo.type("aws:s3:bucket", {
  doc = "an S3 bucket with versioning, default encryption, public access block, policy and "
    .. "tags (tagged at creation; a bucket of that name not made by this create is a conflict; "
    .. "a bucket that still holds objects is never deleted)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = M.valid_name },
      versioning = { type = "boolean", default = false },
      encryption = { type = "string", default = "AES256", enum = { "AES256", "aws:kms", "aws:kms:dsse" } },
      -- with aws:kms: the key (id, alias/name or ARN); "" the account's aws/s3 key
      kms_key_id = { type = "string", default = "" },
      bucket_key = { type = "boolean", default = false },
      -- all four public access block settings on (true) or the block removed (false)
      block_public_access = { type = "boolean", default = true },
      -- the bucket policy: a Lua table (written as JSON) or JSON text; "" none
      policy = { type = "any", default = "", check = function(v)
        return type(v) == "table" or type(v) == "string", "a table or JSON text"
      end },
      tags = { type = "map", default = {} },
      -- destroy (or a replacement) deletes every object version and delete marker first;
      -- only ever of the bucket this stack's create made (its tags and token say so)
      empty_on_destroy = { type = "boolean", default = false },
    },
    outputs = { "name", "arn", "region", "domain_name" },
    replace_on = { "name" },
  },
  diff = common.diff({ "name" }, { policy = common.json_equal }),
  create = function(ctx, p)
    local client = s3(ctx)
    local what = ("an S3 bucket named %q"):format(p.name)
    local cfg = { Tags = common.tag_list(ctx, p.tags) }
    if ctx.region ~= "us-east-1" then cfg.LocationConstraint = ctx.region end
    local ok, err = pcall(client.CreateBucket, client, { Bucket = p.name,
      CreateBucketConfiguration = cfg })
    if not ok then
      if common.is(err, "BucketAlreadyExists") then
        common.conflict(ctx, what .. " (owned by another AWS account)", p.name, nil)
      elseif not common.is(err, "BucketAlreadyOwnedByYou") then
        error(err, 0)
      end
    end
    -- an existing bucket answered (us-east-1) or refused as ours is this create's only if
    -- it carries its token; outside us-east-1 a bucket answered is a new one (an existing
    -- one of the account is BucketAlreadyOwnedByYou there), made with these tags
    if not ok or ctx.region == "us-east-1" then
      common.claim(ctx, what, p.name, common.retry(ctx, "not_found_after_create", bucket_tags,
        ctx, p.name))
    end
    configure(ctx, p.name, p)
    return p.name, outputs(ctx, p.name)
  end,
  read = function(ctx, name, props)
    local client = s3(ctx)
    -- the bucket and its settings, read at once (none depends on another)
    local head, r = common.read_at_once(function()
      return common.unless({ "NoSuchBucket", "404", "NotFound" }, client.HeadBucket, client,
        { Bucket = name })
    end, {
      function() return client:GetBucketVersioning{ Bucket = name } end,
      function() return client:GetBucketEncryption{ Bucket = name } end,
      function()
        return common.unless({ "NoSuchPublicAccessBlockConfiguration" },
          client.GetPublicAccessBlock, client, { Bucket = name }) or false
      end,
      function()
        return common.unless({ "NoSuchBucketPolicy" }, client.GetBucketPolicy, client,
          { Bucket = name }) or false
      end,
      function() return bucket_tags(ctx, name) end,
    })
    if not head then return nil end
    local v = r[1].Status
    local rule = r[2].ServerSideEncryptionConfiguration.Rules[1] or {}
    local d = rule.ApplyServerSideEncryptionByDefault or {}
    local pab = r[3] or nil
    local block = pab ~= nil
    for k in pairs(BLOCK_ALL) do
      block = block and pab.PublicAccessBlockConfiguration[k] == true
    end
    local pol = r[4] or nil
    local policy = pol and common.as_recorded(pol.Policy, props.policy, common.json_equal) or ""
    return outputs(ctx, name), { name = name, versioning = v == "Enabled",
      encryption = d.SSEAlgorithm or "AES256", kms_key_id = d.KMSMasterKeyID or "",
      bucket_key = rule.BucketKeyEnabled == true, block_public_access = block, policy = policy,
      tags = common.user_tags(r[5]) }
  end,
  update = function(ctx, name, old, new, outs)
    local client = s3(ctx)
    -- the block first: lifting it lets a public policy in; setting it before the policy
    -- changes keeps BlockPublicPolicy's check on the new policy
    if old.block_public_access ~= new.block_public_access then
      put_block(ctx, name, new.block_public_access)
    end
    if old.encryption ~= new.encryption or old.kms_key_id ~= new.kms_key_id
        or old.bucket_key ~= new.bucket_key then
      client:PutBucketEncryption{ Bucket = name, ServerSideEncryptionConfiguration = encryption_config(new) }
    end
    if old.versioning ~= new.versioning then put_versioning(ctx, name, new.versioning) end
    if not common.json_equal(old.policy, new.policy) then put_policy(ctx, name, new.policy) end
    local set, del = common.tag_delta(old.tags, new.tags)
    if #set > 0 or #del > 0 then
      -- PutBucketTagging replaces the whole set: fo's own tags go with the user's
      client:PutBucketTagging{ Bucket = name, Tagging = { TagSet = common.tag_list(ctx, new.tags) } }
    end
    return outs
  end,
  delete_note = function(props)
    if props.empty_on_destroy then
      return ("empties (every object version) and deletes bucket %s"):format(props.name)
    end
  end,
  delete = function(ctx, name, props)
    local client = s3(ctx)
    if props and props.empty_on_destroy then
      local tags = common.unless({ "NoSuchBucket" }, bucket_tags, ctx, name)
      if tags and not ctx:owns(tags) then
        error(("S3 bucket %s does not carry the tags of the create that made it (fo:stack, "
          .. "fo:token): fo empties only a bucket its stack created. Empty it yourself (every version and "
          .. "delete marker), then rerun"):format(name), 0)
      end
      if tags then
        local n = empty(ctx, name)
        if n > 0 then ctx:info("emptied bucket %s: %d object versions and delete markers", name, n) end
      end
    end
    local ok, err = pcall(client.DeleteBucket, client, { Bucket = name })
    if ok or common.is(err, "NoSuchBucket") then return end
    if common.is(err, "BucketNotEmpty") then
      error(("S3 bucket %s still holds objects (or object versions): fo does not delete data. "
        .. "Empty it (all versions and delete markers, e.g. in the S3 console), then rerun")
        :format(name), 0)
    end
    error(err, 0)
  end,
  adopt = function(ctx, p)
    if ctx.known_ids[p.name] then return nil end
    local client = s3(ctx)
    local head = common.unless({ "NoSuchBucket", "404", "NotFound", "403", "AccessDenied" },
      client.HeadBucket, client, { Bucket = p.name })
    if not head or not ctx:owns(bucket_tags(ctx, p.name)) then return nil end
    -- settings the interrupted create did not reach show as drift at the refresh that
    -- follows, and the plan puts them right
    return p.name, outputs(ctx, p.name)
  end,
})

return M
