-- One AWS call: region and endpoint resolution, credentials, SigV4, sending on the event
-- loop, standard-mode retries, and one trace line. Service modules build the request
-- (protocol codecs) and parse the response; everything about the wire's edges is here.
local endpoints = require "fo.aws.endpoints"
local region_mod = require "fo.aws.region"
local credentials = require "fo.aws.credentials"
local retry = require "fo.aws.retry"
local ratelimit = require "fo.aws.ratelimit"
local Error = require "fo.aws.error"
local log = require "fo.log"
local sigv4 = require "fo.sigv4"
local core = require "fo.core"

local TRACE_BODY = 1024 -- bytes of an error body shown at trace level
-- Headers whose values are never formatted, whatever the level (the primary defence;
-- redaction of registered secrets is the second).
local HIDDEN = { authorization = true, ["x-amz-security-token"] = true }

local function text_of(node)
  return node and type(node[1]) == "string" and node[1] or nil
end

local function find(node, name)
  if type(node) ~= "table" then return nil end
  if node.name == name then return node end
  for _, child in ipairs(node) do
    local r = find(child, name)
    if r then return r end
  end
end

-- "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException" and
-- "ValidationException:http://internal.amazon.com/..." both mean the short name.
local function short_code(code)
  if type(code) ~= "string" then return nil end
  code = code:match("#([^#]*)$") or code
  return code:match("^([^:]+)") or code
end

--- Default error parsing: JSON {__type|code, message|Message} (and the x-amzn-errortype
--- header of rest-json) or XML <Code>/<Message>/<RequestId> (query, ec2, rest-xml).
local function default_parse_error(resp)
  local body = resp.body or ""
  local header_code = short_code(resp.headers and resp.headers["x-amzn-errortype"])
  if body:match("^%s*{") then
    local ok, doc = pcall(require("cjson").decode, body)
    if ok and type(doc) == "table" then
      local msg = doc.message or doc.Message
      return { code = short_code(doc.__type or doc.code or doc.Code) or header_code,
               message = type(msg) == "string" and msg or nil }
    end
  elseif body:match("^%s*<") then
    local doc = require("fo.xml").decode(body)
    if doc then
      return { code = text_of(find(doc, "Code")), message = text_of(find(doc, "Message")),
               request_id = text_of(find(doc, "RequestId")) or text_of(find(doc, "RequestID")) }
    end
  end
  return { code = header_code }
end

local function url_of(base, path, query)
  local url = base .. (path or "/")
  if query and query ~= "" then url = url .. "?" .. query end
  return url
end

local function host_of(url)
  return url:match("^https?://([^/]+)")
end

local function show_headers(h)
  local names = {}
  for k in pairs(h) do names[#names + 1] = k end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    out[#out + 1] = ("%s=%s"):format(k, HIDDEN[k:lower()] and "<hidden>" or tostring(h[k]))
  end
  return table.concat(out, " ")
end

local function transport_code(kind)
  return "Transport" .. kind:gsub("^%l", string.upper)
end

--- aws.call{service=, operation=, region=, profile=, method=, path=, query=, headers=,
--- body=, parse_error=, endpoint=, bucket= and addressing_style= (S3: fo.aws.s3_address), max_attempts=, retry_mode=, retry_defaults=, retry=
--- (settings already resolved by fo.aws.retry.config), timeout=}
--- → {status=, headers=, body=, attempts=, latency= (seconds)} for a 2xx answer;
--- raises fo.aws.Error otherwise. Test hooks: env (lookup function), http, sleep, random.
--- Configuration problems (no region, no credentials, a bad endpoint) raise a string.
return function(req)
  if type(req) ~= "table" then error("aws.call: expected a table of request fields", 2) end
  if type(req.service) ~= "string" or type(req.operation) ~= "string" then
    error("aws.call: service and operation are required strings", 2)
  end
  local env = req.env or os.getenv
  local service, operation, method = req.service, req.operation, req.method or "POST"
  local region = region_mod.resolve{ region = req.region, profile = req.profile, env = env }
  local ep = endpoints.resolve(service, region,
    { endpoint = req.endpoint, env = env, profile = req.profile })
  local settings = req.retry or retry.config(req, env)
  local policy = retry.policy{ max_attempts = settings.max_attempts,
                               max_transient = settings.max_transient,
                               quota = retry.quota_for(ep.url), random = req.random }
  -- adaptive mode: one rate limiter per endpoint (service and region) and credentials
  local limiter = settings.mode == "adaptive" and ratelimit.for_endpoint(env, service, ep.url)
  local provider = credentials.for_profile(req.profile, env)
  local parse_error = req.parse_error or default_parse_error
  local http = req.http or require("fo.http")
  local sleep = req.sleep or core.sleep
  local s3 = service == "s3" and require("fo.aws.s3_address") or nil
  local path = req.path or "/"
  local url
  -- S3: the bucket goes into the host or stays in the path (fo.aws.s3_address)
  local function locate()
    local base = ep.url
    if s3 then base, path = s3.address(ep, req.bucket, req.path or "/", req.addressing_style) end
    url = url_of(base, path, req.query)
  end
  locate()
  local redirected = false
  local started = core.now()
  local attempt, refreshed = 0, false

  local function trace(status, outcome)
    log.info("aws call service=%s operation=%s region=%s status=%s attempts=%d latency_ms=%d%s",
      service, operation, region, tostring(status or "-"), attempt,
      math.floor((core.now() - started) * 1000 + 0.5), outcome and (" " .. outcome) or "")
  end

  while true do
    attempt = attempt + 1
    local creds = provider:get()
    local headers = { Host = host_of(url) }
    for k, v in pairs(req.headers or {}) do headers[k] = v end
    local signed = sigv4.sign{
      method = method, path = path, query = req.query,
      headers = headers, body = req.body or "", region = ep.signing_region,
      service = ep.signing_name, access_key = creds.access_key, secret_key = creds.secret_key,
      session_token = creds.session_token, time = os.time(),
      -- S3 signs the path as sent and requires x-amz-content-sha256 on every request
      normalize = not s3, sign_body = s3 and true or nil,
      payload_hash = s3 and (headers["x-amz-content-sha256"] or s3.payload_hash(req.body)) or nil,
    }
    for k, v in pairs(signed.headers) do headers[k] = v end
    if s3 and #(req.body or "") >= s3.EXPECT_CONTINUE_BYTES then
      -- S3 may refuse a large upload (a wrong region, a denied PUT) before its body is
      -- sent; unsigned, as the SDKs send it
      headers.Expect = "100-continue"
    end
    headers.Host = nil -- curl sends Host from the URL; it was signed with the same value
    log.debug("aws send service=%s operation=%s %s %s attempt=%d", service, operation, method,
      url, attempt)
    if log.enabled("trace") then
      log.trace("aws send headers %s body_bytes=%d", show_headers(headers), #(req.body or ""))
    end
    if limiter then
      local waited = limiter:acquire()
      if waited > 0 then
        log.debug("aws rate limit service=%s operation=%s region=%s waited_ms=%d", service,
          operation, region, math.floor(waited * 1000 + 0.5))
      end
    end
    local ok, resp = pcall(http.request, { method = method, url = url, headers = headers,
      body = req.body, timeout = req.timeout })

    local failure
    if not ok then
      if type(resp) ~= "table" or not resp.kind then error(resp, 0) end
      failure = { kind = resp.kind, message = resp.message }
      log.trace("aws recv transport error kind=%s %s", resp.kind, tostring(resp.message))
    elseif resp.status >= 200 and resp.status < 300 then
      if limiter then limiter:record(false) end
      policy:succeeded()
      trace(resp.status)
      resp.attempts, resp.latency = attempt, core.now() - started
      return resp
    else
      local e = parse_error(resp) or {}
      failure = { code = e.code or tostring(resp.status), message = e.message,
                  status = resp.status, headers = resp.headers,
                  request_id = e.request_id or resp.headers["x-amzn-requestid"]
                    or resp.headers["x-amz-request-id"] }
      if log.enabled("trace") then
        log.trace("aws recv status=%d headers %s body %s", resp.status,
          show_headers(resp.headers), (resp.body or ""):sub(1, TRACE_BODY))
      end
    end

    if limiter then limiter:record(retry.classify(failure) == "throttle") end
    local delay, why, class
    local hint = s3 and failure.headers and failure.headers["x-amz-bucket-region"]
    if hint and not redirected and hint ~= ep.signing_region and s3.REDIRECT_CODES[failure.code] then
      -- The bucket lives in another region (301 PermanentRedirect, 400
      -- AuthorizationHeaderMalformed naming it): once, to the region S3 names, as the SDKs do.
      redirected = true
      log.debug("aws redirect service=s3 operation=%s from=%s to=%s", operation,
        ep.signing_region, hint)
      region = hint
      local url_before = ep.url
      ep = endpoints.resolve(service, region,
        { endpoint = req.endpoint, env = env, profile = req.profile })
      if ep.overridden then ep.url = url_before end
      locate()
      delay, class = 0, "redirect"
    elseif failure.code and retry.EXPIRED_CREDENTIALS[failure.code] and not refreshed then
      -- One refresh and one attempt of its own, outside the retry budget: the fault is
      -- ours (stale credentials), not the service's.
      refreshed = true
      provider:invalidate()
      delay, class = 0, "credentials"
    else
      delay, why, class = policy:decide(failure, attempt - (refreshed and 1 or 0))
      if delay then class, why = why, nil end
    end
    if not delay then
      trace(failure.status, failure.code or failure.kind)
      error(Error.new{
        service = service, operation = operation, region = region,
        code = failure.code or transport_code(failure.kind),
        message = log.redact(failure.message or ""), status = failure.status,
        request_id = failure.request_id, retryable = class ~= nil, attempts = attempt,
        kind = failure.kind and "transport" or "service", why = why,
        -- where a connection failed (a mistyped AWS_ENDPOINT_URL, a stopped --serve-sim),
        -- without any user:password part
        endpoint = failure.kind and (ep.url:gsub("^(%a+://)[^/@]*@", "%1")) or nil,
      }, 0)
    end
    log.debug("aws retry service=%s operation=%s attempt=%d reason=%s class=%s delay_ms=%d",
      service, operation, attempt, failure.code or failure.kind, class,
      math.floor(delay * 1000 + 0.5))
    if req.on_retry then
      -- an observer (the engine's report): its failure must not change the call's outcome
      pcall(req.on_retry, { service = service, operation = operation, region = region,
        attempt = attempt, reason = failure.code or failure.kind, class = class,
        status = failure.status, delay = delay })
    end
    if delay > 0 then sleep(delay) end
  end
end
