-- S3's body checksums: Content-MD5 and the x-amz-checksum-<algorithm> headers (or aws-chunked
-- trailers), each base64 of the big-endian digest. A mismatch is 400 BadDigest, a value
-- that is not a digest of the right size 400 InvalidRequest, as S3 answers. CRC64NVME is
-- accepted unchecked (fo.crypto has no CRC-64).
local crypto = require "fo.crypto"
local SimError = require "fo.sim.error"

local M = {}

local function be32(n)
  return string.pack(">I4", n & 0xffffffff)
end

-- algorithm (lower-case, as in the header name) → function(body) → raw digest
M.DIGEST = {
  crc32 = function(b) return be32(crypto.crc32(b)) end,
  crc32c = function(b) return be32(crypto.crc32c(b)) end,
  sha1 = crypto.sha1,
  sha256 = crypto.sha256,
}
M.NAME = { crc32 = "CRC32", crc32c = "CRC32C", sha1 = "SHA1", sha256 = "SHA256",
  crc64nvme = "CRC64NVME" }

--- The base64 checksum of `body` with `algorithm` ("crc32", "crc32c", "sha1", "sha256").
function M.of(algorithm, body)
  return crypto.base64_encode(M.DIGEST[algorithm](body))
end

--- Verifies the body against Content-MD5 and any x-amz-checksum-* header; raises.
--- Returns the algorithm and value of the checksum the request carried (or nil).
function M.verify(body, headers)
  local md5 = headers["content-md5"]
  if md5 then
    local raw = crypto.base64_decode(md5)
    if not raw or #raw ~= 16 then
      SimError.raise("InvalidDigest", "The Content-MD5 you specified was invalid.", 400)
    end
    if raw ~= crypto.md5(body) then
      SimError.raise("BadDigest", "The Content-MD5 you specified did not match what we received.", 400)
    end
  end
  local found_alg, found_value
  for alg, digest in pairs(M.DIGEST) do
    local v = headers["x-amz-checksum-" .. alg]
    if v then
      local want = digest(body)
      local raw = crypto.base64_decode(v)
      if not raw or #raw ~= #want then
        SimError.raise("InvalidRequest", ("Value for x-amz-checksum-%s header is invalid."):format(alg), 400)
      end
      if raw ~= want then
        SimError.raise("BadDigest", ("The %s you specified did not match the calculated checksum.")
          :format(M.NAME[alg]), 400)
      end
      found_alg, found_value = alg, v
    end
  end
  if not found_alg and headers["x-amz-checksum-crc64nvme"] then
    found_alg, found_value = "crc64nvme", headers["x-amz-checksum-crc64nvme"]
  end
  return found_alg, found_value
end

return M
