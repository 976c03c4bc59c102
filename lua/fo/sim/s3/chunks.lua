-- The chunk signatures of a signed aws-chunked body (x-amz-content-sha256
-- STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and -TRAILER with a signed trailer): each chunk is
-- signed over the previous signature, the request's signature seeding the chain, so no
-- chunk can be changed, dropped or reordered (S3 API reference, "Signature calculations for
-- the Authorization Header: Transferring Payload in Multiple Chunks"). A mismatch is 403
-- SignatureDoesNotMatch, as S3 answers.
local crypto = require "fo.crypto"
local sigv4 = require "fo.sigv4"
local SimError = require "fo.sim.error"

local M = {}

local EMPTY_SHA256 = crypto.hex(crypto.sha256(""))

local function bad(why)
  SimError.raise("SignatureDoesNotMatch", "The request signature we calculated does not match "
    .. "the signature you provided. Check your key and signing method. (" .. why .. ")", 403)
end

local function incomplete()
  SimError.raise("IncompleteBody", "The request body is not valid aws-chunked encoding", 400)
end

--- Verifies the chain of `body` for a request signed with `seed` (its signature) at
--- `amz_date` in `scope` ("20150830/us-east-1/s3/aws4_request") with `secret`; `trailer`:
--- the body ends with a signed trailer (…-PAYLOAD-TRAILER).
function M.verify(body, secret, amz_date, scope, seed, trailer)
  local date8, region, service = scope:match("^(%d+)/([^/]+)/([^/]+)/")
  local key = sigv4.signing_key(secret, date8, region, service)
  local prev, pos = seed, 1
  local function sign(kind, hash)
    local sts = table.concat({ kind, amz_date, scope, prev, kind == "AWS4-HMAC-SHA256-PAYLOAD"
      and EMPTY_SHA256 or nil, hash }, "\n")
    return crypto.hex(crypto.hmac_sha256(key, sts))
  end
  while true do
    local line_end = body:find("\r\n", pos, true)
    if not line_end then incomplete() end
    local size_hex, sig = body:sub(pos, line_end - 1):match("^(%x+);chunk%-signature=(%x+)$")
    if not size_hex then bad("a chunk without its chunk-signature") end
    local size = tonumber(size_hex, 16)
    pos = line_end + 2
    local data = body:sub(pos, pos + size - 1)
    if #data ~= size then incomplete() end
    local want = sign("AWS4-HMAC-SHA256-PAYLOAD", crypto.hex(crypto.sha256(data)))
    if want ~= sig:lower() then bad("chunk signature") end
    prev = want
    pos = pos + size
    if size == 0 then break end
    if body:sub(pos, pos + 1) ~= "\r\n" then incomplete() end
    pos = pos + 2
  end
  if trailer then
    -- trailing headers "name:value\r\n"..., then x-amz-trailer-signature:<sig>
    local lines, sig = {}, nil
    for line in body:sub(pos):gmatch("([^\r\n]+)") do
      local k, v = line:match("^([^:]+):(.*)$")
      if k and k:lower() == "x-amz-trailer-signature" then sig = v
      elseif k then lines[#lines + 1] = k:lower() .. ":" .. v .. "\n" end
    end
    if not sig then bad("a signed trailer without x-amz-trailer-signature") end
    local want = sign("AWS4-HMAC-SHA256-TRAILER", crypto.hex(crypto.sha256(table.concat(lines))))
    if want ~= sig:lower() then bad("trailer signature") end
  end
end

return M
