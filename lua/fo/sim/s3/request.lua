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

-- The operations of the model by method and level ("root" /, "bucket" /{Bucket},
-- "object" /{Bucket}/{Key+}), each with the literal query keys of its requestUri and the
-- query parameters and headers it requires: S3 tells apart operations that share a URI by
-- those (UploadPart needs partNumber and uploadId, CopyObject x-amz-copy-source, ListParts
-- uploadId, GetBucketAnalyticsConfiguration id, ...).
local routes
local function route_table()
  if routes then return routes end
  routes = {}
  local model = require("fo.aws.models").load("s3")
  for name, op in pairs(model.operations) do
    local uri = op.http.requestUri
    local path, q = uri:match("^([^?]*)%??(.*)$")
    local level = path == "/" and "root" or path:find("{Key+}", 1, true) and "object" or "bucket"
    local literal = {}
    for pair in q:gmatch("[^&]+") do literal[#literal + 1] = pair:match("^([^=]*)") end
    local required = {}
    local input = op.input and model.shapes[op.input.shape]
    for _, m in ipairs(input and input.required or {}) do
      local ref = input.members[m]
      if ref.location == "querystring" then
        required[#required + 1] = { query = ref.locationName }
      elseif ref.location == "header" then
        required[#required + 1] = { header = ref.locationName:lower() }
      end
    end
    local key = op.http.method .. " " .. level
    routes[key] = routes[key] or {}
    table.insert(routes[key], { name = name, literal = literal, required = required,
      deprecated = op.deprecated and true or false })
  end
  return routes
end

-- The operation a request names: among the operations of its method and level whose
-- literal query keys it has and whose required query parameters and headers it carries,
-- the one with the most literal keys, then the most such requirements, then not deprecated.
local function operation_of(method, level, query, headers)
  local keys = {}
  for pair in (query or ""):gmatch("[^&]+") do keys[pair:match("^([^=]*)")] = true end
  local best, best_score
  for _, c in ipairs(route_table()[method .. " " .. level] or {}) do
    local fits = true
    for _, k in ipairs(c.literal) do fits = fits and keys[k] == true end
    for _, r in ipairs(c.required) do
      if r.query then fits = fits and keys[r.query] == true
      else fits = fits and headers[r.header] ~= nil end
    end
    if fits then
      local score = #c.literal * 10000 + #c.required * 10 + (c.deprecated and 0 or 1)
      if not best_score or score > best_score or (score == best_score and c.name < best) then
        best, best_score = c.name, score
      end
    end
  end
  return best
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
--- operation (nil when none fits: the codec answers that no operation matches)}. req: the wire request
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
  local b = path:match("^/([^/]+)/.")
  local level = b and "object" or path:match("^/[^/]+/?$") and "bucket" or "root"
  return { method = req.method, path = path, query = req.query, headers = headers, body = body,
    operation = operation_of(req.method, level, req.query, headers) }
end

return M
