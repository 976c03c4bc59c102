-- SigV4 verification of requests reaching the simulator: find the key, check the request
-- time, recompute the signature over what arrived (fo.sigv4) and compare. Failures are
-- fo.sim errors with the code each protocol's AWS service answers.
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

--- The parsed Authorization header of `req` ({access_key, date, region, service,
--- signed_headers, signature}), or nil and why.
function M.scope(req)
  local value = req.headers.authorization
  if not value then return nil, "missing" end
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
    raise(codes.for_service(codes.MISSING_AUTH, service),
      "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' (" .. why .. ")")
  end
  local key = keys[auth.access_key]
  if not key then raise(codes.for_service(codes.UNKNOWN_KEY, service)) end
  local amz_date = req.headers["x-amz-date"]
  local t = amz_time(amz_date)
  local bad = codes.for_service(codes.BAD_SIGNATURE, service)
  if not t then
    raise(bad, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header")
  end
  if math.abs(now - t) > M.MAX_SKEW then
    local skew = codes.for_service(codes.SKEW, service)
    if skew.code == "RequestExpired" then
      raise(skew, ("Request has expired. Timestamp date is %s"):format(amz_date))
    end
    raise(skew, ("Signature expired: %s is now earlier than %s (%s - 15 min.)"):format(
      amz_date, amz_format(now - M.MAX_SKEW), amz_format(now)))
  end
  local headers = {}
  for _, name in ipairs(auth.signed_headers) do
    if req.headers[name] == nil then raise(bad, BAD_SIGNATURE_MESSAGE) end
    headers[name] = req.headers[name]
  end
  local ok, s = pcall(sigv4.sign, {
    method = req.method, path = req.path, query = req.query or "", headers = headers,
    body = req.body or "", region = auth.region, service = auth.service,
    access_key = key.access_key, secret_key = key.secret_key, time = amz_date,
    signed_headers = auth.signed_headers,
  })
  if not ok or auth.terminator ~= "aws4_request" or not same(s.signature, auth.signature)
    or s.credential_scope ~= ("%s/%s/%s/aws4_request"):format(auth.date, auth.region,
      auth.service) then
    raise(bad, BAD_SIGNATURE_MESSAGE)
  end
  return key, auth
end

return M
