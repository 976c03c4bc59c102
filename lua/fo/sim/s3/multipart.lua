-- S3 multipart uploads in the simulator: CreateMultipartUpload, UploadPart(Copy), ListParts,
-- ListMultipartUploads, AbortMultipartUpload and CompleteMultipartUpload with S3's rules:
-- part numbers 1-10,000, parts named in ascending order (InvalidPartOrder) with the ETags
-- they were uploaded with (InvalidPart), every part but the last at least 5 MiB
-- (EntityTooSmall), and the object's ETag the MD5 of the parts' MD5s followed by "-<count>".
-- A conditional Complete (If-None-Match / If-Match) checks the key as it is then; when the
-- object the upload started over was deleted meanwhile, S3 answers 409
-- ConditionalRequestConflict (the delete won a race with the conditional write).
local state = require "fo.sim.s3.state"
local checksums = require "fo.sim.s3.checksums"
local crypto = require "fo.crypto"

local M = {}

M.MIN_PART = 5 * 1024 * 1024
M.MAX_PARTS = 10000

local function s3() return require "fo.sim.services.s3" end

local function upload_of(ctx, b, key, id)
  local u = (b.uploads or {})[id]
  if not u or u.key ~= key then
    ctx:fail("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, "
      .. "or the upload may have been aborted or completed.", 404, { UploadId = id })
  end
  return u
end

local function check_part_number(ctx, n)
  if n < 1 or n > M.MAX_PARTS then
    ctx:fail("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive",
      400, { ArgumentName = "partNumber", ArgumentValue = tostring(n) })
  end
end

function M.CreateMultipartUpload(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local enc = s3().encryption(ctx, b, p)
  local id = ctx:chars(64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
  local cur = state.current(b, p.Key)
  b.uploads = b.uploads or {}
  b.uploads[id] = { key = p.Key, id = id, initiated = math.floor(ctx:now()), owner = ctx.account,
    params = { ContentType = p.ContentType, ContentEncoding = p.ContentEncoding,
      ContentDisposition = p.ContentDisposition, ContentLanguage = p.ContentLanguage,
      CacheControl = p.CacheControl, Metadata = p.Metadata, StorageClass = p.StorageClass,
      Tagging = p.Tagging },
    enc = enc, checksum_algorithm = p.ChecksumAlgorithm, checksum_type = p.ChecksumType,
    -- what the key held when the upload started (for ConditionalRequestConflict)
    base = cur and not cur.delete_marker and cur.etag or false,
    parts = {} }
  return s3().sse_fields({ Bucket = b.name, Key = p.Key, UploadId = id,
    ChecksumAlgorithm = p.ChecksumAlgorithm, ChecksumType = p.ChecksumType }, enc)
end

local function store_part(ctx, u, n, body, alg, sum)
  local limit = require("fo.sim.limits").S3_OBJECT
  if #body > limit then
    ctx:fail("EntityTooLarge", ("Your proposed upload exceeds the maximum allowed size (the fo "
      .. "sim takes parts of up to %d bytes)"):format(limit), 400,
      { ProposedSize = #body, MaxSizeAllowed = limit })
  end
  local part = { number = n, etag = state.etag(body), md5 = crypto.md5(body),
    last_modified = math.floor(ctx:now()) }
  state.set_body(part, body)
  if alg then part.checksum = { algorithm = alg, value = sum } end
  u.parts[tostring(n)] = part
  return part
end

function M.UploadPart(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local u = upload_of(ctx, b, p.Key, p.UploadId)
  check_part_number(ctx, p.PartNumber)
  local alg, sum = s3().request_checksum(ctx, p)
  local part = store_part(ctx, u, p.PartNumber, p.Body or "", alg, sum)
  local out = s3().sse_fields({ ETag = part.etag }, u.enc)
  if alg then out[s3().CHECKSUM_MEMBERS[alg]] = sum end
  return out
end

function M.UploadPartCopy(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local u = upload_of(ctx, b, p.Key, p.UploadId)
  check_part_number(ctx, p.PartNumber)
  local sb_name, skey, svid = s3().parse_copy_source(ctx, p.CopySource)
  local sb = state.bucket(ctx, sb_name, { Key = skey }, "s3:GetObject")
  local src = s3().read_version(ctx, sb, { Key = skey, VersionId = svid }, false)
  if p.CopySourceIfMatch and not s3().etag_matches(p.CopySourceIfMatch, src.etag) then
    s3().precondition_failed(ctx, "x-amz-copy-source-If-Match")
  end
  local body = state.body(src)
  if p.CopySourceRange then
    local a, z = p.CopySourceRange:match("^bytes=(%d+)%-(%d+)$")
    a, z = tonumber(a), tonumber(z)
    if not a or z < a or z >= #body then
      ctx:fail("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
        .. "bytes=first-last where first and last are the zero-based offsets of the first and "
        .. "last bytes to copy", 400)
    end
    body = body:sub(a + 1, z + 1)
  end
  local part = store_part(ctx, u, p.PartNumber, body)
  return s3().sse_fields({ CopyPartResult = { ETag = part.etag, LastModified = part.last_modified },
    CopySourceVersionId = sb.versioning and src.version_id or nil }, u.enc)
end

function M.AbortMultipartUpload(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  upload_of(ctx, b, p.Key, p.UploadId)
  b.uploads[p.UploadId] = nil
  return {}
end

local function sorted_parts(u)
  local list = {}
  for _, part in pairs(u.parts) do list[#list + 1] = part end
  table.sort(list, function(x, y) return x.number < y.number end)
  return list
end

local function part_entry(part)
  local e = { PartNumber = part.number, ETag = part.etag, Size = part.size,
    LastModified = part.last_modified }
  if part.checksum then e[s3().CHECKSUM_MEMBERS[part.checksum.algorithm]] = part.checksum.value end
  return e
end

function M.ListParts(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local u = upload_of(ctx, b, p.Key, p.UploadId)
  local max = math.min(p.MaxParts or 1000, 1000)
  local after = tonumber(p.PartNumberMarker or "0") or 0
  local out, truncated, last = {}, false, nil
  for _, part in ipairs(sorted_parts(u)) do
    if part.number > after then
      if #out >= max then truncated = true break end
      out[#out + 1] = part_entry(part)
      last = part.number
    end
  end
  local who = s3().owner(u.owner)
  return { Bucket = b.name, Key = u.key, UploadId = u.id, Parts = #out > 0 and out or nil,
    IsTruncated = truncated, MaxParts = max, PartNumberMarker = p.PartNumberMarker,
    NextPartNumberMarker = truncated and tostring(last) or nil,
    Initiator = { ID = who.ID, DisplayName = who.DisplayName }, Owner = who,
    StorageClass = u.params.StorageClass or "STANDARD",
    ChecksumAlgorithm = u.checksum_algorithm, ChecksumType = u.checksum_type }
end

function M.ListMultipartUploads(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local list = {}
  for _, u in pairs(b.uploads or {}) do list[#list + 1] = u end
  table.sort(list, function(x, y)
    if x.key ~= y.key then return x.key < y.key end
    return x.initiated < y.initiated or (x.initiated == y.initiated and x.id < y.id)
  end)
  local max = math.min(p.MaxUploads or 1000, 1000)
  local prefix = p.Prefix or ""
  local out, prefixes, seen, truncated, next_key, next_id = {}, {}, {}, false, nil, nil
  local delim = p.Delimiter ~= "" and p.Delimiter or nil
  for _, u in ipairs(list) do
    local after_marker = not p.KeyMarker or u.key > p.KeyMarker
      or (u.key == p.KeyMarker and p.UploadIdMarker and u.id > p.UploadIdMarker)
    if after_marker and u.key:sub(1, #prefix) == prefix then
      local i = delim and u.key:find(delim, #prefix + 1, true)
      local cp = i and u.key:sub(1, i + #delim - 1)
      if not (cp and seen[cp]) then
        if #out + #prefixes >= max then truncated = true break end
        if cp then
          seen[cp] = true
          prefixes[#prefixes + 1] = { Prefix = cp }
          next_key, next_id = cp, nil
        else
          local who = s3().owner(u.owner)
          out[#out + 1] = { Key = u.key, UploadId = u.id, Initiated = u.initiated,
            StorageClass = u.params.StorageClass or "STANDARD", Owner = who,
            Initiator = { ID = who.ID, DisplayName = who.DisplayName },
            ChecksumAlgorithm = u.checksum_algorithm, ChecksumType = u.checksum_type }
          next_key, next_id = u.key, u.id
        end
      end
    end
  end
  return { Bucket = b.name, Prefix = p.Prefix, Delimiter = p.Delimiter, MaxUploads = max,
    KeyMarker = p.KeyMarker or "", UploadIdMarker = p.UploadIdMarker or "",
    IsTruncated = truncated, NextKeyMarker = truncated and next_key or nil,
    NextUploadIdMarker = truncated and next_id or nil, Uploads = #out > 0 and out or nil,
    CommonPrefixes = #prefixes > 0 and prefixes or nil, EncodingType = p.EncodingType }
end

local function unquote(etag)
  return '"' .. tostring(etag):gsub('^"', ""):gsub('"$', "") .. '"'
end

function M.CompleteMultipartUpload(ctx, p)
  local b = state.bucket(ctx, p.Bucket, p)
  local u = upload_of(ctx, b, p.Key, p.UploadId)
  local named = p.MultipartUpload and p.MultipartUpload.Parts or {}
  if #named == 0 then
    ctx:fail("MalformedXML", "The XML you provided was not well-formed or did not validate "
      .. "against our published schema", 400)
  end
  local parts, prev = {}, 0
  for _, want in ipairs(named) do
    local n = want.PartNumber or 0
    if n <= prev then
      ctx:fail("InvalidPartOrder", "The list of parts was not in ascending order. The parts "
        .. "list must be specified in order by part number.", 400)
    end
    prev = n
    local part = u.parts[tostring(n)]
    if not part or unquote(want.ETag) ~= part.etag then
      ctx:fail("InvalidPart", "One or more of the specified parts could not be found. The part "
        .. "may not have been uploaded, or the specified entity tag may not match the part's "
        .. "entity tag.", 400, { UploadId = u.id, PartNumber = tostring(n), ETag = want.ETag })
    end
    parts[#parts + 1] = part
  end
  -- sizes once the list itself is right
  for i = 1, #parts - 1 do
    local part = parts[i]
    if part.size < M.MIN_PART then
      ctx:fail("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
        400, { UploadId = u.id, PartNumber = tostring(part.number), ProposedSize = part.size,
          MinSizeAllowed = M.MIN_PART, ETag = part.etag })
    end
  end
  if p.IfNoneMatch ~= nil or p.IfMatch ~= nil then
    local cur = state.current(b, p.Key)
    local live = cur and not cur.delete_marker
    if u.base and not live then
      ctx:fail("ConditionalRequestConflict", "A conflicting operation occurred. If using "
        .. "PutObject you can retry the request. If using multipart upload you should initiate "
        .. "another CreateMultipartUpload request and re-upload each part.", 409)
    end
    s3().check_write_conditions(ctx, b, p.Key, p)
  end
  local bodies, md5s = {}, {}
  for i, part in ipairs(parts) do
    bodies[i] = state.body(part)
    md5s[i] = part.md5
  end
  local body = table.concat(bodies)
  local v = s3().new_version(ctx, b, p.Key, body, u.params, u.enc)
  v.etag = ('"%s-%d"'):format(crypto.hex(crypto.md5(table.concat(md5s))), #parts)
  v.parts_count = #parts
  v.tagging = u.params.Tagging
  local out = s3().sse_fields({ Location = ("https://%s.s3.%s.amazonaws.com/%s"):format(b.name,
      b.region, p.Key), Bucket = b.name, Key = p.Key, ETag = v.etag,
    VersionId = b.versioning and v.version_id or nil }, v)
  -- a composite checksum (the checksum of the parts' checksums, "-<count>") when every
  -- part carried one of the upload's algorithm
  local alg = u.checksum_algorithm and u.checksum_algorithm:lower()
  if alg and checksums.DIGEST[alg] then
    local raws, all = {}, true
    for i, part in ipairs(parts) do
      if not part.checksum or part.checksum.algorithm ~= alg then all = false break end
      raws[i] = crypto.base64_decode(part.checksum.value)
    end
    if all then
      local value = u.checksum_type == "FULL_OBJECT" and checksums.of(alg, body)
        or ("%s-%d"):format(checksums.of(alg, table.concat(raws)), #parts)
      v.checksum = { algorithm = alg, value = value, type = u.checksum_type or "COMPOSITE" }
      out[s3().CHECKSUM_MEMBERS[alg]] = value
      out.ChecksumType = v.checksum.type
    end
  end
  state.add_version(b, p.Key, v)
  b.uploads[u.id] = nil
  return out
end

return M
