-- S3's addressing and signing rules, as current SDKs apply them: a bucket is addressed
-- virtual-hosted (https://bucket.s3.<region>.amazonaws.com/key) unless path-style is asked
-- for (addressing_style = "path"), the name is not DNS-compatible (upper case, '_', '..',
-- or dots under https, which the wildcard certificate does not cover), or the endpoint is
-- an override (the simulator at 127.0.0.1, LocalStack, an IP: path-style, as botocore does
-- for an IP endpoint; addressing_style = "virtual" forces the host form there too).
-- Requests are signed without path normalization and always carry x-amz-content-sha256.
local M = {}

--- True when `bucket` can be a DNS label set in a host name (3-63 characters of lower-case
--- letters, digits, '-' and '.', starting and ending with a letter or digit, no '..', not
--- an IP address); with `https`, dots are refused too (the certificate covers one label).
function M.dns_compatible(bucket, https)
  if type(bucket) ~= "string" or #bucket < 3 or #bucket > 63 then return false end
  if not bucket:match("^[a-z0-9][a-z0-9.-]*[a-z0-9]$") or bucket:find("..", 1, true)
      or bucket:find(".-", 1, true) or bucket:find("-.", 1, true)
      or bucket:match("^%d+%.%d+%.%d+%.%d+$") then
    return false
  end
  return not (https and bucket:find(".", 1, true))
end

-- "/bucket" or "/bucket/rest" → "/rest" (at least "/").
local function strip_bucket(path, bucket)
  local enc = bucket:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)
  for _, b in ipairs{ bucket, enc } do
    if path == "/" .. b then return "/" end
    if path:sub(1, #b + 2) == "/" .. b .. "/" then return path:sub(#b + 2) end
  end
  return nil
end

--- The URL base and path for a request to `bucket`: ep = fo.aws.endpoints.resolve's
--- answer; style "auto" (default), "virtual" or "path". Returns base, path.
function M.address(ep, bucket, path, style)
  style = style or "auto"
  if not bucket or style == "path" then return ep.url, path end
  local scheme, host, rest = ep.url:match("^(https?)://([^/]+)(.*)$")
  if not scheme then return ep.url, path end
  if style == "auto" and (ep.overridden or not M.dns_compatible(bucket, scheme == "https")) then
    return ep.url, path
  end
  if style == "virtual" and not M.dns_compatible(bucket, false) then return ep.url, path end
  local stripped = strip_bucket(path, bucket)
  if not stripped then return ep.url, path end
  return ("%s://%s.%s%s"):format(scheme, bucket, host, rest), stripped
end

--- The x-amz-content-sha256 value for a body: its SHA-256 in hex (S3 requires the header
--- on every request; fo signs the payload rather than sending UNSIGNED-PAYLOAD).
function M.payload_hash(body)
  local crypto = require "fo.crypto"
  return crypto.hex(crypto.sha256(body or ""))
end

-- Bodies from this size on are sent with Expect: 100-continue (S3 answers before the body
-- is sent when it refuses the request).
M.EXPECT_CONTINUE_BYTES = 1024 * 1024

-- Answers that name the bucket's region in x-amz-bucket-region: the call is sent again,
-- once, to that region.
M.REDIRECT_CODES = { PermanentRedirect = true, AuthorizationHeaderMalformed = true,
  ["301"] = true, ["400"] = true, IllegalLocationConstraintException = true }

return M
