-- SigV4 verification of requests reaching the simulator: find the key (and its session
-- token, for temporary keys), check the request time, recompute the signature over what
-- arrived (fo.sigv4) and compare. The signature comes in the Authorization header or, for
-- presigned requests, in the query string (X-Amz-Algorithm, -Credential, -Date, -Expires,
-- -SignedHeaders, -Security-Token, -Signature). Failures are fo.sim errors with the code
-- each protocol's AWS service answers.
local sigv4 = require "fo.sigv4"
local SimError = require "fo.sim.error"
local codes = require "fo.sim.codes"

local M = {}

M.MAX_SKEW = 15 * 60 -- seconds, as AWS allows

local BAD_SIGNATURE_MESSAGE = "The request signature we calculated does not match the "
  .. "signature you provided. Check your AWS Secret Access Key and signing method. Consult "
  .. "the service documentation for details."

local function raise(entry, message)
  SimError.raise(entry.code, message or entry.message, entry.status)
end

-- "20150830T123600Z" → epoch seconds (UTC), or nil.
local function amz_time(s)
  local y, mo, d, h, mi, sec = tostring(s):match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
  if not y then return nil end
  return require("fo.aws.credentials").epoch_of(("%s-%s-%sT%s:%s:%s"):format(y, mo, d, h, mi, sec))
end

local function amz_format(t)
  return os.date("!%Y%m%dT%H%M%SZ", math.floor(t))
end

-- Constant-time comparison, so the check does not leak how much of a signature matched.
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do diff = diff | (a:byte(i) ~ b:byte(i)) end
  return diff == 0
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The query-string parameters that carry a presigned request's signature.
local QUERY_AUTH = { ["X-Amz-Algorithm"] = true, ["X-Amz-Credential"] = true,
  ["X-Amz-Date"] = true, ["X-Amz-Expires"] = true, ["X-Amz-SignedHeaders"] = true,
  ["X-Amz-Security-Token"] = true, ["X-Amz-Signature"] = true }

-- The signature of a presigned request, from its query string, in parse_authorization's
-- shape plus presigned = true, amz_date, expires, token and rest (the raw query without
-- the auth parameters: what was signed besides them, and what the codec reads). nil when
-- the query has no X-Amz-Algorithm; nil and why when it is incomplete.
local function presigned(query)
  if not query or not query:find("X-Amz-Algorithm=", 1, true) then return nil end
  local p, rest = {}, {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k = unescape(k)
    if QUERY_AUTH[k] then p[k] = unescape(v) else rest[#rest + 1] = pair end
  end
  if p["X-Amz-Algorithm"] ~= "AWS4-HMAC-SHA256" then return nil, "X-Amz-Algorithm must be AWS4-HMAC-SHA256" end
  local access_key, date, region, service, terminator =
    (p["X-Amz-Credential"] or ""):match("^([^/]+)/(%d+)/([^/]+)/([^/]+)/([^/]+)$")
  if not access_key or not p["X-Amz-Date"] or not p["X-Amz-SignedHeaders"] or not p["X-Amz-Signature"] then
    return nil, "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', "
      .. "'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'"
  end
  local signed = {}
  for h in p["X-Amz-SignedHeaders"]:gmatch("[^;]+") do signed[#signed + 1] = h end
  return { presigned = true, access_key = access_key, date = date, region = region,
    service = service, terminator = terminator, signed_headers = signed,
    signature = p["X-Amz-Signature"], amz_date = p["X-Amz-Date"],
    expires = math.tointeger(tonumber(p["X-Amz-Expires"] or "")),
    token = p["X-Amz-Security-Token"], rest = table.concat(rest, "&") }
end

--- The parsed signature of `req` — its Authorization header ({access_key, date, region,
--- service, terminator, signed_headers, signature}) or its presigned query string (the
--- same, with presigned = true, amz_date, expires, token, rest) — or nil and why.
function M.scope(req)
  local value = req.headers.authorization
  if not value then
    local q, err = presigned(req.query)
    if q then return q end
    return nil, err or "missing"
  end
  local a, err = sigv4.parse_authorization(value)
  if not a then return nil, err end
  return a
end

--- Verifies `req` (lower-case header names) for `service` against `keys` (access key →
--- entry). Returns the caller's key entry; raises a fo.sim.Error otherwise. `now`: the
--- real wall clock (request times are checked against real time, not the virtual clock,
--- since clients sign with theirs).
function M.verify(req, service, keys, now)
  local auth, why = M.scope(req)
  if not auth then
    if why == "missing" then raise(codes.for_service(codes.MISSING_AUTH, service)) end
    if not req.headers.authorization then -- an incomplete presigned query string
      raise(codes.for_service(codes.MISSING_AUTH, service), why .. ". Re-examine the query-string parameters.")
    end
    raise(codes.for_service(codes.MISSING_AUTH, service),
      "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' (" .. why .. ")")
  end
  local key = keys[auth.access_key]
  if not key then raise(codes.for_service(codes.UNKNOWN_KEY, service)) end
  -- A temporary key is valid only with the token it was issued with, and a long-term key
  -- with none: AWS answers a missing, wrong or superfluous token like an unknown key.
  local token = auth.token
  if not auth.presigned then token = req.headers["x-amz-security-token"] end
  if (token or key.session_token) and not same(token or "", key.session_token or "") then
    raise(codes.for_service(codes.UNKNOWN_KEY, service))
  end
  local amz_date = auth.presigned and auth.amz_date or req.headers["x-amz-date"]
  local t = amz_time(amz_date)
  local bad = codes.for_service(codes.BAD_SIGNATURE, service)
  if not t then
    raise(bad, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
  end
  -- Presigned requests get the same 15-minute window, whatever their X-Amz-Expires: STS
  -- does not honour a longer one (aws/aws-sdk-go#2167), and an older request is
  -- "Signature expired" like a header-signed one.
  if math.abs(now - t) > M.MAX_SKEW then
    local skew = codes.for_service(codes.SKEW, service)
    if skew.code == "RequestExpired" then
      raise(skew, ("Request has expired. Timestamp date is %s"):format(amz_date))
    end
    raise(skew, ("Signature expired: %s is now earlier than %s (%s - 15 min.)"):format(
      amz_date, amz_format(now - M.MAX_SKEW), amz_format(now)))
  end
  -- An unsigned Host would let a signature be replayed against another endpoint: AWS
  -- refuses it (after the time checks), header-signed or presigned alike.
  local host_signed = false
  for _, name in ipairs(auth.signed_headers) do
    if name:lower() == "host" then host_signed = true end
  end
  if not host_signed then raise(bad, codes.HOST_NOT_SIGNED) end
  local headers = {}
  for _, name in ipairs(auth.signed_headers) do
    if req.headers[name] == nil then raise(bad, BAD_SIGNATURE_MESSAGE) end
    headers[name] = req.headers[name]
  end
  -- Recomputed in the mode it was signed in: a presigned request's auth parameters are
  -- put back by the signer (the token among them), the rest of the query is as received.
  -- S3 signs the path as sent and the payload hash it names in x-amz-content-sha256 (a
  -- SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* mode; fo.sim.s3.request checks the body).
  local s3 = auth.service == "s3"
  local payload_hash
  if s3 then
    payload_hash = auth.presigned and "UNSIGNED-PAYLOAD" or req.headers["x-amz-content-sha256"]
    if not payload_hash then
      SimError.raise("InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400)
    end
  end
  local ok, s = pcall(sigv4.sign, {
    method = req.method, path = req.path, query = auth.presigned and auth.rest or req.query or "",
    normalize = not s3, payload_hash = payload_hash,
    headers = headers, body = req.body or "", region = auth.region, service = auth.service,
    access_key = key.access_key, secret_key = key.secret_key, time = amz_date,
    signed_headers = auth.signed_headers, mode = auth.presigned and "query" or nil,
    session_token = auth.presigned and token or nil, expires = auth.expires,
  })
  if not ok or auth.terminator ~= "aws4_request" or not same(s.signature, auth.signature)
    or s.credential_scope ~= ("%s/%s/%s/aws4_request"):format(auth.date, auth.region,
      auth.service) then
    raise(bad, BAD_SIGNATURE_MESSAGE)
  end
  if s3 and (payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
      or payload_hash == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") then
    require("fo.sim.s3.chunks").verify(req.body or "", key.secret_key, amz_date,
      s.credential_scope, auth.signature, payload_hash:match("TRAILER$") ~= nil)
  end
  if s3 and payload_hash:match("^%x+$") and #payload_hash == 64
      and require("fo.crypto").hex(require("fo.crypto").sha256(req.body or "")) ~= payload_hash:lower() then
    SimError.raise("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does "
      .. "not match what was computed.", 400)
  end
  return key, auth
end

return M
