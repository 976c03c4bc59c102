-- The main job until the simulator and the trading recipe exist: a loopback AWS-style
-- STS endpoint verifies the SigV4 signature of every request that 50 concurrent tasks
-- send through the real client stack (credentials, endpoint override, retries, trace);
-- it throttles one request in five, so retries show too.
local crypto, sigv4 = fo.crypto, fo.sigv4

local ACCESS_KEY = "AKIDSMOKE" .. crypto.hex(crypto.random(4)):upper()
local SECRET = crypto.base64_encode(crypto.random(30))
local CALLS = 50
local verified, rejected, throttled = 0, 0, 0

local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
  local auth = sigv4.parse_authorization(req.headers.authorization or "")
  local ok = auth and auth.access_key == ACCESS_KEY
  if ok then
    local again = sigv4.sign{ method = req.method, path = req.path, query = req.query,
      headers = req.headers, body = req.body, region = auth.region, service = auth.service,
      access_key = auth.access_key, secret_key = SECRET, time = req.headers["x-amz-date"],
      signed_headers = auth.signed_headers }
    ok = again.signature == auth.signature
  end
  if not ok then
    rejected = rejected + 1
    return { status = 403, body = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code>"
      .. "</Error></ErrorResponse>" }
  end
  verified = verified + 1
  if math.random() < 0.2 then
    throttled = throttled + 1
    return { status = 400, body = "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate "
      .. "exceeded</Message></Error></ErrorResponse>" }
  end
  fo.sleep(0.05) -- a little service latency, so the calls overlap
  return { status = 200, body = "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>"
    .. "123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>" }
end }

print(("fo %s smoke run: %d concurrent signed calls to a loopback endpoint (no AWS account "
  .. "needed; the embedded simulator is not built yet)"):format(fo.version, CALLS))
local env = { AWS_ACCESS_KEY_ID = ACCESS_KEY, AWS_SECRET_ACCESS_KEY = SECRET,
              AWS_EC2_METADATA_DISABLED = "true", AWS_MAX_ATTEMPTS = "6" }
local started = fo.now()
local tasks = {}
for i = 1, CALLS do
  tasks[i] = fo.spawn(fo.aws.call, { service = "sts", operation = "GetCallerIdentity",
    region = i % 2 == 0 and "eu-south-1" or "eu-central-1",
    endpoint = "http://127.0.0.1:" .. srv.port, method = "POST", path = "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    body = "Action=GetCallerIdentity&Version=2011-06-15",
    env = function(k) return env[k] or os.getenv(k) end })
end
local results = fo.all(tasks)
srv:close()
local attempts = 0
for _, r in ipairs(results) do attempts = attempts + r.attempts end
print(("%d calls succeeded in %.2f s: %d signatures verified by the server, %d rejected, "
  .. "%d throttled and retried (%d attempts in all)"):format(#results, fo.now() - started,
  verified, rejected, throttled, attempts))
assert(rejected == 0 and #results == CALLS, "smoke run failed")
