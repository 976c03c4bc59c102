-- The ciphertext blobs of the simulated KMS: really encrypted (AES-256-GCM under the key's
-- material, which only the simulator holds), with the key's ARN inside so that Decrypt
-- needs no KeyId, and the encryption context bound as associated data so that Decrypt
-- with another context fails. Layout: version byte 1, key ARN (1-byte length), 12-byte
-- nonce, ciphertext and 16-byte tag. Not AWS's byte layout (AWS's is undocumented).
local crypto = require "fo.crypto"

local M = {}

local VERSION = "\1"

-- The context as bytes, independent of table order.
local function aad(arn, context)
  local names = {}
  for k in pairs(context or {}) do names[#names + 1] = k end
  table.sort(names)
  local parts = { string.pack(">s2", arn) }
  for _, k in ipairs(names) do parts[#parts + 1] = string.pack(">s2>s2", k, context[k]) end
  return table.concat(parts)
end

local function material(key) return crypto.base64_decode(key.material) end

--- The blob of `plaintext` under key record `key` with encryption `context`.
function M.seal(key, plaintext, context)
  local nonce = crypto.random(12)
  return VERSION .. string.pack(">s1", key.Arn) .. nonce
    .. crypto.gcm_seal(material(key), nonce, plaintext, aad(key.Arn, context))
end

--- The key ARN inside `blob`, or nil when it is not one of the simulator's blobs.
function M.key_arn(blob)
  if type(blob) ~= "string" or blob:sub(1, 1) ~= VERSION or #blob < 2 then return nil end
  local ok, arn = pcall(string.unpack, ">s1", blob, 2)
  if not ok or not arn:match("^arn:aws:kms:") then return nil end
  return arn
end

--- The plaintext of `blob` under key record `key` with `context`, or nil when the blob was
--- not made by that key with that context (or was changed).
function M.open(key, blob, context)
  local arn = M.key_arn(blob)
  if arn ~= key.Arn then return nil end
  local at = 2 + 1 + #arn
  local nonce = blob:sub(at, at + 11)
  if #nonce ~= 12 then return nil end
  return (crypto.gcm_open(material(key), nonce, blob:sub(at + 12), aad(arn, context)))
end

return M
