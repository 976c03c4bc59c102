-- One AWS call: region and endpoint resolution, credentials, SigV4, sending on the event
-- loop, standard-mode retries, and one trace line. Service modules build the request
-- (protocol codecs) and parse the response; everything about the wire's edges is here.
local endpoints = require "fo.aws.endpoints"
local region_mod = require "fo.aws.region"
local credentials = require "fo.aws.credentials"
local retry = require "fo.aws.retry"
local Error = require "fo.aws.error"
local log = require "fo.log"
local sigv4 = require "fo.sigv4"
local core = require "fo.core"

local providers = {}

local function provider_for(opts)
  local key = opts.profile or "(default)"
  local p = providers[key]
  if not p then
    p = credentials.provider{ profile = opts.profile, env = opts.env }
    providers[key] = p
  end
  return p
end

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

--- Default error parsing: JSON {__type|code, message|Message} or XML <Code>/<Message>.
local function default_parse_error(resp)
  local body = resp.body or ""
  if body:match("^%s*{") then
    local ok, doc = pcall(require("cjson").decode, body)
    if ok and type(doc) == "table" then
      local code = doc.__type or doc.code or doc.Code
      if type(code) == "string" then code = code:match("#(.*)$") or code:match("^([^:]+)") end
      return { code = code, message = doc.message or doc.Message }
    end
  elseif body:match("^%s*<") then
    local doc = require("fo.xml").decode(body)
    if doc then
      return { code = text_of(find(doc, "Code")), message = text_of(find(doc, "Message")),
               request_id = text_of(find(doc, "RequestId")) or text_of(find(doc, "RequestID")) }
    end
  end
  return {}
end

local function url_of(base, path, query)
  local url = base .. (path or "/")
  if query and query ~= "" then url = url .. "?" .. query end
  return url
end

local function host_of(url)
  return url:match("^https?://([^/]+)")
end

--- aws.call{service=, operation=, region=, profile=, method=, path=, query=, headers=,
--- body=, parse_error=, endpoint=, max_attempts=, timeout=, env=}
--- → {status=, headers=, body=, attempts=, latency=} for 2xx; raises fo.aws.Error.
return function(req)
  local env = req.env or os.getenv
  local service, operation = req.service, req.operation or "?"
  local region = region_mod.resolve{ region = req.region, profile = req.profile, env = env }
  local ep = endpoints.resolve(service, region, { endpoint = req.endpoint, env = env })
  local max_attempts = retry.max_attempts(req, env)
  local quota = retry.quota_for(ep.url)
  local provider = provider_for(req)
  local parse_error = req.parse_error or default_parse_error
  local http = req.http or require("fo.http")
  local sleep = req.sleep or core.sleep
  local url = url_of(ep.url, req.path, req.query)
  local started = core.now()
  local attempt, refreshed, held = 0, false, nil

  local function trace(status, outcome)
    log.info("aws call service=%s operation=%s region=%s status=%s attempts=%d latency_ms=%d%s",
      service, operation, region, tostring(status or "-"), attempt,
      math.floor((core.now() - started) * 1000 + 0.5), outcome and (" " .. outcome) or "")
  end

  while true do
    attempt = attempt + 1
    local creds = provider:get(false)
    local headers = { Host = host_of(ep.url) }
    for k, v in pairs(req.headers or {}) do headers[k] = v end
    local signed = sigv4.sign{
      method = req.method or "POST", path = req.path or "/", query = req.query,
      headers = headers, body = req.body or "", region = ep.signing_region,
      service = ep.signing_name, access_key = creds.access_key, secret_key = creds.secret_key,
      session_token = creds.session_token, time = os.time(),
    }
    for k, v in pairs(signed.headers) do headers[k] = v end
    headers.Host = nil -- curl sends Host from the URL; it was signed with the same value
    log.debug("aws send %s %s attempt=%d", req.method or "POST", url, attempt)
    local ok, resp = pcall(http.request, { method = req.method or "POST", url = url,
      headers = headers, body = req.body, timeout = req.timeout })

    local failure
    if not ok then
      if type(resp) ~= "table" or not resp.kind then error(resp, 0) end
      failure = { kind = resp.kind, message = resp.message }
    elseif resp.status >= 200 and resp.status < 300 then
      quota:release(held)
      trace(resp.status)
      resp.attempts, resp.latency = attempt, core.now() - started
      return resp
    else
      local e = parse_error(resp) or {}
      failure = { code = e.code, message = e.message, status = resp.status,
                  request_id = e.request_id or resp.headers["x-amzn-requestid"]
                    or resp.headers["x-amz-request-id"], headers = resp.headers }
    end

    local class = retry.classify(failure)
    if failure.code and retry.EXPIRED_CREDENTIALS[failure.code] and not refreshed then
      refreshed = true
      provider:invalidate()
      class = "credentials"
    end
    local cost = class and class ~= "credentials" and attempt < max_attempts
      and quota:acquire(class)
    -- A credentials refresh gets one extra attempt of its own; others obey the limits.
    if not class or (class ~= "credentials" and (attempt >= max_attempts or not cost)) then
      local why = not class and "not retryable" or (attempt >= max_attempts
        and "attempts exhausted" or "retry quota exhausted")
      trace(failure.status, failure.code or failure.kind)
      error(Error.new{
        service = service, operation = operation, region = region,
        code = failure.code or (failure.kind and ("Transport" .. failure.kind:gsub("^%l", string.upper))),
        message = log.redact(failure.message or ""), status = failure.status,
        request_id = failure.request_id, retryable = class ~= nil, attempts = attempt,
        kind = failure.kind and "transport" or "service", why = why,
      }, 0)
    end
    held = cost or held
    local delay = class == "credentials" and 0 or retry.backoff(attempt, req.random)
    local after = retry.retry_after(failure.headers)
    if after then delay = math.min(math.max(delay, after), retry.MAX_BACKOFF) end
    log.debug("aws retry service=%s operation=%s attempt=%d reason=%s delay_ms=%d", service,
      operation, attempt, failure.code or failure.kind or tostring(failure.status),
      math.floor(delay * 1000))
    sleep(delay)
  end
end
