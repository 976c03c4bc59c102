-- An S3 request as the simulator reads it, before the rest-xml codec: the bucket from a
-- virtual-hosted Host (bucket.s3.<region>.amazonaws.com) put back into the path, an
-- aws-chunked body (STREAMING-* x-amz-content-sha256) decoded with its trailing checksum
-- headers, the body's checksums (Content-MD5, x-amz-checksum-*) verified, and the operation
-- named where S3 tells several apart by query parameters and headers alone (PUT
-- /{Bucket}/{Key+} is PutObject, UploadPart, CopyObject or UploadPartCopy).
local SimError = require "fo.sim.error"
local checksums = require "fo.sim.s3.checksums"

local M = {}

local function fail(code, message, status)
  SimError.raise(code, message, status or 400)
end

--- The bucket a Host names virtual-hosted style, or nil (path-style: s3.<region>..., an IP,
--- localhost).
function M.host_bucket(host)
  host = (host or ""):gsub(":%d+$", ""):lower()
  if host:match("^%d+%.%d+%.%d+%.%d+$") then return nil end
  -- the last ".s3." / ".s3-" label: bucket names may hold dots themselves
  local best
  local from = 1
  while true do
    local i = host:find("%.s3[%.%-]", from)
    if not i then break end
    best, from = i, i + 1
  end
  if best and best > 1 then return host:sub(1, best - 1) end
  return nil
end

local function query_has(query, name)
  for pair in (query or ""):gmatch("[^&]+") do
    if (pair:match("^([^=]*)") or "") == name then return true end
  end
  return false
end

-- The object-level operation of a request (the ones sharing one requestUri).
local function object_operation(method, query, headers)
  local q = function(n) return query_has(query, n) end
  local copy = headers["x-amz-copy-source"] ~= nil
  if method == "PUT" then
    if q("partNumber") and q("uploadId") then return copy and "UploadPartCopy" or "UploadPart" end
    if q("tagging") then return "PutObjectTagging" end
    if q("acl") then return "PutObjectAcl" end
    return copy and "CopyObject" or "PutObject"
  elseif method == "POST" then
    if q("uploads") then return "CreateMultipartUpload" end
    if q("uploadId") then return "CompleteMultipartUpload" end
    if q("restore") then return "RestoreObject" end
  elseif method == "GET" then
    if q("uploadId") then return "ListParts" end
    if q("tagging") then return "GetObjectTagging" end
    if q("acl") then return "GetObjectAcl" end
    if q("attributes") then return "GetObjectAttributes" end
    return "GetObject"
  elseif method == "DELETE" then
    if q("uploadId") then return "AbortMultipartUpload" end
    if q("tagging") then return "DeleteObjectTagging" end
    return "DeleteObject"
  elseif method == "HEAD" then
    return "HeadObject"
  end
  return nil
end

-- Decodes an aws-chunked body: "<hex size>[;chunk-signature=...]\r\n<data>\r\n" ... a
-- zero-size chunk, then trailer lines "name:value\r\n" and "\r\n". Returns the data and
-- the trailers (lower-case names).
function M.decode_chunked(body)
  local out, trailers, pos = {}, {}, 1
  while true do
    local line_end = body:find("\r\n", pos, true)
    if not line_end then fail("IncompleteBody", "The request body is not valid aws-chunked encoding") end
    local size = tonumber((body:sub(pos, line_end - 1):match("^(%x+)")) or "", 16)
    if not size then fail("IncompleteBody", "The request body is not valid aws-chunked encoding") end
    pos = line_end + 2
    if size == 0 then break end
    if pos + size - 1 > #body then
      fail("IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
    end
    out[#out + 1] = body:sub(pos, pos + size - 1)
    pos = pos + size
    if body:sub(pos, pos + 1) ~= "\r\n" then
      fail("IncompleteBody", "The request body is not valid aws-chunked encoding")
    end
    pos = pos + 2
  end
  for line in body:sub(pos):gmatch("([^\r\n]+)") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then trailers[k:lower()] = v end
  end
  return table.concat(out), trailers
end

--- The request the codec reads: {method, path (path-style), query, headers, body (decoded),
--- operation (nil: the codec's own routing)} plus bucket and key. req: the wire request
--- (lower-case headers); its signature was checked over what arrived.
function M.prepare(req)
  local headers = {}
  for k, v in pairs(req.headers) do headers[k] = v end
  local path = req.path
  local bucket = M.host_bucket(headers.host)
  if bucket then path = "/" .. bucket .. (path == "/" and "" or path) end
  local body = req.body or ""
  local sha = headers["x-amz-content-sha256"] or ""
  if sha:match("^STREAMING%-") then
    local data, trailers = M.decode_chunked(body)
    local declared = tonumber(headers["x-amz-decoded-content-length"] or "")
    if declared and declared ~= #data then
      fail("IncompleteBody", "You did not provide the number of bytes specified by the "
        .. "x-amz-decoded-content-length header")
    end
    for k, v in pairs(trailers) do headers[k] = v end
    body = data
    -- aws-chunked is a transfer detail: the object's own Content-Encoding is the rest
    local ce = headers["content-encoding"]
    if ce then
      local rest = {}
      for part in ce:gmatch("[^,%s]+") do
        if part:lower() ~= "aws-chunked" then rest[#rest + 1] = part end
      end
      headers["content-encoding"] = #rest > 0 and table.concat(rest, ",") or nil
    end
  end
  checksums.verify(body, headers)
  local b, key = path:match("^/([^/]+)/(.+)$")
  local op
  if b then op = object_operation(req.method, req.query, headers) end
  return { method = req.method, path = path, query = req.query, headers = headers, body = body,
    operation = op }, b or path:match("^/([^/]+)/?$")
end

return M
