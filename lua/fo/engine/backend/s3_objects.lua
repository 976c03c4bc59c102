-- The S3 backend's object store (backend/s3_state.lua's interface) over fo's S3 client:
-- objects under s3://bucket/prefix, conditional writes with PutObject's If-None-Match /
-- If-Match (412 PreconditionFailed is "precondition"), deletes with DeleteObject's
-- If-Match.
local M = {}

local Objects = {}
Objects.__index = Objects

--- opts: bucket, prefix ("" or "a/b"), client (an S3 client: fo.aws.s3{...}).
function M.new(opts)
  local prefix = (opts.prefix or ""):gsub("^/+", ""):gsub("/+$", "")
  return setmetatable({ bucket = opts.bucket, prefix = prefix ~= "" and prefix .. "/" or "",
    s3 = opts.client, where = "s3://" .. opts.bucket .. (prefix ~= "" and "/" .. prefix or "") },
    Objects)
end

local function code_of(e)
  return type(e) == "table" and (e.code or e.Code) or nil
end

local function status_of(e)
  return type(e) == "table" and (e.status or e.http_status) or nil
end

local function precondition(e)
  return code_of(e) == "PreconditionFailed" or status_of(e) == 412
end

-- A concurrent conditional write in flight on the same key (409): S3 asks to retry.
local function conflict(e)
  return code_of(e) == "ConditionalRequestConflict" or status_of(e) == 409
end

function Objects:get(key)
  local ok, out = pcall(self.s3.GetObject, self.s3, { Bucket = self.bucket,
    Key = self.prefix .. key })
  if ok then return out.Body or "", out.ETag end
  if code_of(out) == "NoSuchKey" or status_of(out) == 404 then return nil end
  error(out, 0)
end

function Objects:put(key, body, cond)
  local input = { Bucket = self.bucket, Key = self.prefix .. key, Body = body,
    ContentType = "application/json" }
  if cond and cond.if_none_match then input.IfNoneMatch = "*" end
  if cond and cond.if_match then input.IfMatch = cond.if_match end
  for attempt = 1, 5 do
    local ok, out = pcall(self.s3.PutObject, self.s3, input)
    if ok then return out.ETag end
    if precondition(out) then return nil, "precondition" end
    if not conflict(out) or attempt == 5 then error(out, 0) end
    require("fo.core").sleep(0.05 * attempt)
  end
end

function Objects:delete(key, cond)
  local input = { Bucket = self.bucket, Key = self.prefix .. key }
  if cond and cond.if_match then input.IfMatch = cond.if_match end
  local ok, out = pcall(self.s3.DeleteObject, self.s3, input)
  if ok then return true end
  if precondition(out) then return nil, "precondition" end
  if code_of(out) == "NoSuchKey" or status_of(out) == 404 then return true end
  error(out, 0)
end

--- Deletes `keys` (unconditionally) in batches of 1000 (DeleteObjects); raises when one
--- of them cannot be deleted.
function Objects:delete_many(keys)
  for first = 1, #keys, 1000 do
    local batch = {}
    for i = first, math.min(#keys, first + 999) do
      batch[#batch + 1] = { Key = self.prefix .. keys[i] }
    end
    local out = self.s3:DeleteObjects{ Bucket = self.bucket, Delete = { Objects = batch,
      Quiet = true } }
    local e = out.Errors and out.Errors[1]
    if e then error(("DeleteObjects: %s: %s %s"):format(e.Key, e.Code, e.Message or ""), 0) end
  end
  return true
end

function Objects:list(prefix)
  local out, token = {}, nil
  repeat
    local page = self.s3:ListObjectsV2{ Bucket = self.bucket, Prefix = self.prefix .. prefix,
      ContinuationToken = token }
    for _, o in ipairs(page.Contents or {}) do out[#out + 1] = o.Key:sub(#self.prefix + 1) end
    token = page.IsTruncated and page.NextContinuationToken or nil
  until not token
  table.sort(out)
  return out
end

return M
