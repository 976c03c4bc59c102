-- The simulator on the wire: sim:handle(request) answers an HTTP request as AWS would
-- (route by the SigV4 scope, verify the signature, knobs, parse, validate, handler,
-- serialize), sim:transport() is an `http` hook for fo's clients that hands their
-- requests to handle() without a socket, and sim:client(service) builds such a client.
local models = require "fo.aws.models"
local endpoints = require "fo.aws.endpoints"
local SimError = require "fo.sim.error"
local codes = require "fo.sim.codes"
local auth = require "fo.sim.auth"
local errdoc = require "fo.sim.errdoc"
local regions = require "fo.sim.regions"
local keys = require "fo.sim.keys"
local core = require "fo.core"
local limits = require "fo.sim.limits"
local protocols = require "fo.sim.protocols"
local gzip = require "fo.sim.gzip"

local W = {}

-- SigV4 signing name (and endpoint prefix) → fo service, from the endpoint table.
local BY_SIGNING, BY_PREFIX = {}, {}
for svc, s in pairs(endpoints.SERVICES) do
  BY_SIGNING[s.signing] = svc
  BY_PREFIX[s.prefix or svc] = svc
end
local BY_TARGET = { DynamoDB_20120810 = "dynamodb", AmazonSSM = "ssm",
  TrentService = "kms", Logs_20140328 = "logs", CertificateManager = "acm",
  ServiceQuotasV20190624 = "servicequotas" }
-- Operations AWS answers without a signature (the caller has no credentials yet).
local UNSIGNED = { sts = { AssumeRoleWithWebIdentity = true } }
local ROUTE53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"

-- Request fields as the codec takes them: path, query (raw), lower-case headers. A
-- request given with a url (the fo.http form) is split; Host comes from the url when
-- the client left it to curl, as the signer signed it.
local function normalize(req)
  local headers = {}
  for k, v in pairs(req.headers or {}) do headers[k:lower()] = v end
  local path, query = req.path, req.query
  if req.url then
    local scheme, host, rest = req.url:match("^(https?)://([^/?#]+)(.*)$")
    if not host then error("sim:handle: bad url " .. tostring(req.url), 0) end
    path, query = rest:match("^([^?#]*)%??([^#]*)")
    if headers.host == nil then -- curl's Host: the port only when not the scheme's default
      headers.host = host:gsub(scheme == "https" and ":443$" or ":80$", "")
    end
  end
  if path == nil or path == "" then path = "/" end
  return { method = req.method or "GET", path = path, query = query or "", headers = headers,
    body = req.body or "" }
end

-- The fo service a request is for: from the signature's scope, else (unsigned requests)
-- from the host name or X-Amz-Target. Returns service, parsed authorization or nil.
local function route(req)
  local a = auth.scope(req)
  if a then return BY_SIGNING[a.service], a, a.service end
  local target = req.headers["x-amz-target"]
  if target then
    local svc = BY_TARGET[target:match("^([^.]+)")]
    if svc then return svc end
  end
  local prefix = (req.headers.host or ""):match("^([%w-]+)%.")
  if prefix and BY_PREFIX[prefix] then return BY_PREFIX[prefix], nil end
  -- an unsigned STS call sent to an endpoint override (a served sim on 127.0.0.1)
  local body = req.body or "" -- nil when routed before the body is read (body caps)
  if req.method == "POST" and (body:match("^Action=AssumeRoleWithWebIdentity&")
      or body:match("&Action=AssumeRoleWithWebIdentity&")) then
    return "sts", nil
  end
  return nil, nil
end

local function namespace(service, model)
  if service == "route53" then return ROUTE53_NS end
  return model and model.metadata.xmlNamespace
end

-- The error answer: the codec's when it knows the operation (or the request came in one of
-- the service's alternative protocols, fo.sim.protocols), else errdoc's envelope.
local function error_response(service, model, op_name, err, request_id, alternative, method)
  if service == "s3" then return require("fo.sim.s3.errors").render(err, request_id, method) end
  local proto = require "fo.awsproto"
  local protocol = codes.PROTOCOL[service] or "query"
  if (op_name or alternative) and proto.serialize_error then
    local ok, resp = pcall(proto.serialize_error, model, op_name, err, { request_id = request_id })
    if ok then return resp end
  end
  local resp = errdoc.render(protocol, err, request_id, namespace(service, model))
  if service == "dynamodb" then resp.headers["Content-Type"] = "application/x-amz-json-1.0" end
  return resp
end

local function as_sim_error(e, service)
  if SimError.is(e) then return e end
  if type(e) == "table" and e.code then
    return SimError.new(e.code, e.message, e.status or 400, e.fields)
  end
  return SimError.new(codes.for_service(codes.SERVER, service)[1].code,
    "simulator error: " .. tostring(e), 500)
end

--- The body cap of a request (fo.sim.limits): read before its body, from its signature's
--- scope, X-Amz-Target or host. req: lower-case headers, path, query.
function W.body_limit(req)
  return limits.body((route(req)))
end

-- The refusal of a body over the cap (`got`: its size; nil when it streamed in without one
-- and passed the cap) in the protocol's error document, recorded like any answered call
-- (operation "-"). Returns the response and the log summary.
local function refuse_body(self, req, max, got)
  local service, scope, signing = route(req)
  local e = codes.for_service(codes.TOO_LARGE, service or "sts")
  local err = SimError.new(e.code, ("Request Entity Too Large: the request body is %s bytes; "
    .. "%s accepts at most %d (the fo sim's body cap)"):format(
      got and tostring(got) or "more than " .. max, service or "a request naming no service",
      max), e.status)
  local request_id = service and self:_request_id(service) or self.request_ids:uuid()
  local model, alternative = protocols.model_for(service and models.load(service), req)
  local resp = error_response(service or "sts", model, nil, err, request_id, alternative,
    req.method)
  local info = { service = service or signing or "?", operation = "-",
    region = scope and scope.region or "-", status = resp.status, code = err.code }
  self:_finish({ service = info.service, region = info.region, operation = "-",
    request_id = request_id }, resp.status, err.code)
  return resp, info
end

--- The answer to a request whose body is over its cap, before the body is read (fo.httpd's
--- too_large hook; `got`: the size Content-Length announced, nil for a streamed body).
--- Returns {status=, headers=, body=} and the log summary, as handle() does.
function W:too_large(req, max, got)
  return refuse_body(self, normalize(req), max, got)
end

-- Whether `model` has an operation that takes gzip-compressed requests (the
-- `requestcompression` trait: CloudWatch PutMetricData). Cached per model.
local GZIP_MODELS = setmetatable({}, { __mode = "k" })
local function takes_gzip(model)
  local v = GZIP_MODELS[model]
  if v == nil then
    v = false
    for _, op in pairs(model and model.operations or {}) do
      for _, e in ipairs(op.requestcompression and op.requestcompression.encodings or {}) do
        if e == "gzip" then v = true end
      end
    end
    GZIP_MODELS[model] = v
  end
  return v
end

-- The body the codec reads: a `Content-Encoding: gzip` body inflated (at most the
-- service's body cap) when the service takes compressed requests, as AWS does; the
-- signature stays over the bytes sent. Returns the body, or nil and the error to answer.
local function decoded_body(req, service, model)
  local enc = req.headers["content-encoding"]
  if not enc or not takes_gzip(model) or not enc:lower():match("gzip%s*$") then
    return req.body
  end
  local cap = limits.body(service)
  local data, why, too_large = gzip.decompress(req.body, cap)
  if data then return data end
  if too_large then
    local e = codes.for_service(codes.TOO_LARGE, service)
    return nil, SimError.new(e.code, ("Request Entity Too Large: the gzip request body %s; "
      .. "%s accepts at most %d bytes (the fo sim's body cap)"):format(why, service, cap), e.status)
  end
  return nil, SimError.new(codes.VALIDATION_BY_SERVICE[service]
    or codes.for_service(codes.VALIDATION, service), "The request body is sent with "
    .. "Content-Encoding: gzip but is not valid gzip data: " .. why, 400)
end

-- One call on the wire. Returns the response and {service=, operation=, region=,
-- status=, code=} for the server's log line.
local function answer(self, req)
  -- IAM Identity Center's portal and OIDC token service: unsigned REST calls of their own
  local sso_resp, sso_info = require("fo.sim.sso").answer(self, req)
  if sso_resp then
    self:_finish({ service = sso_info.service, region = sso_info.region,
      operation = sso_info.operation, request_id = self.request_ids:uuid() }, sso_resp.status,
      sso_info.code)
    return sso_resp, sso_info
  end
  local service, scope, signing = route(req)
  local info = { service = service or (signing or "?"), operation = "-", region = "-" }
  local cap = limits.body(service)
  if #req.body > cap then -- what a served sim refuses before reading it (fo.httpd max_body)
    return refuse_body(self, req, cap, #req.body)
  end
  if not service then
    -- Unsigned and nothing names the service: AWS's answer to an unsigned request.
    local e = scope and SimError.new("UnrecognizedService",
        ("The fo simulator does not serve '%s'"):format(tostring(signing)), 400)
      or SimError.new(codes.MISSING_AUTH.query.code, codes.MISSING_AUTH.query.message,
        codes.MISSING_AUTH.query.status)
    info.status, info.code = e.status, e.code
    return errdoc.render("query", e, self.request_ids:uuid()), info
  end
  local model, alternative = protocols.model_for(models.load(service), req)
  local request_id = self:_request_id(service)
  local region = scope and require("fo.sim").call_region(service, scope.region) or "-"
  if not scope and UNSIGNED[service] then -- the host's region, else STS's global one
    region = (req.headers.host or ""):match("^[%w-]+%.([%w-]+)%.amazonaws%.com") or "us-east-1"
  end
  info.region = region

  -- Parse first so that the recorder and error documents can name the operation; an
  -- authentication failure still wins over a parse failure, as at AWS.
  local proto = require "fo.awsproto"
  local op_name, params, parse_err
  -- S3: the virtual-hosted bucket, aws-chunked bodies, checksums and the operation
  -- (fo.sim.s3.request); the signature is still checked over the request as it arrived.
  -- Other services: a gzip body (requestcompression) decompressed.
  local s3req, body, body_err
  if service == "s3" then
    local sok, r = pcall(require("fo.sim.s3.request").prepare, req)
    if sok then s3req, body = r, r.body else body_err = r end
  else
    body, body_err = decoded_body(req, service, model)
  end
  if body_err then
    parse_err = body_err -- reported after authentication, as any parse failure
  elseif proto.parse_request then
    local preq = s3req or req
    if scope and scope.presigned then
      -- a presigned request's X-Amz-* auth parameters are not the operation's (EC2 would
      -- call them unknown parameters)
      preq = { method = preq.method, path = preq.path, query = scope.rest,
        headers = preq.headers, body = body, operation = preq.operation }
    elseif body ~= preq.body then
      preq = { method = req.method, path = req.path, query = req.query, headers = req.headers,
        body = body }
    end
    local ok, a, b = pcall(proto.parse_request, model, preq)
    if ok then op_name, params = a, b else parse_err = a end
  else
    parse_err = SimError.new("NotImplemented", "this fo-run has no server-side codec "
      .. "(fo.awsproto.parse_request)", 501)
  end
  info.operation = op_name or "-"
  local c = { service = service, region = region, operation = op_name, params = params,
    request_id = request_id, http = s3req }

  local ok, out = pcall(function()
    if scope or not (UNSIGNED[service] and UNSIGNED[service][op_name]) then
      c.caller = auth.verify(req, service, self.keys, os.time(), self.clock:now())
    end
    if not regions.known(region) then
      local e = codes.for_service(codes.UNKNOWN_KEY, service)
      SimError.raise(e.code, ("%s (the fo simulator serves %s, not %s)"):format(e.message,
        table.concat(regions.names(), ", "), region), e.status)
    end
    -- An opt-in region the account has not enabled refuses the credentials, with the
    -- protocol's unknown-key code (STS and the query services InvalidClientTokenId 403,
    -- EC2 AuthFailure 401, DynamoDB/SSM UnrecognizedClientException 400), as AWS does.
    if not regions.GLOBAL_SERVICES[service] and self.knobs:region_disabled(region) then
      local e = codes.for_service(codes.UNKNOWN_KEY, service)
      SimError.raise(e.code, ("%s (%s is an opt-in region this account has not enabled: sim "
        .. "knob disabled_regions)"):format(e.message, region), e.status)
    end
    if not regions.GLOBAL_SERVICES[service] and self.knobs:in_outage(region) then
      local e = codes.for_service(codes.SERVER, service)[2]
      SimError.raise(e.code, e.message .. " (simulated outage of " .. region .. ")", e.status)
    end
    local fault = self.knobs:fault(self.faults)
    if fault == "throttle" then
      local e = codes.for_service(codes.THROTTLE, service)
      SimError.raise(e.code, e.message, e.status)
    elseif fault == "5xx" then
      local pick = codes.for_service(codes.SERVER, service)
      local e = pick[(self.faults:next() >> 1) % 2 + 1]
      SimError.raise(e.code, e.message, e.status)
    end
    if parse_err then error(as_sim_error(parse_err, service), 0) end
    local vok, verr = pcall(proto.validate, model, op_name, params)
    if not vok then error(require("fo.sim").validation_error(service, op_name, verr), 0) end
    -- the caller's identity policies, when its role has any (fo.sim.authz)
    if c.caller then require("fo.sim.authz").check(self, c) end
    -- The fail_mutating_call knob: the k-th mutating call that would reach its handler
    -- fails for good (a 400 no client retries); the handler does not run.
    if require("fo.sim.recorder").is_mutating(op_name) then
      local n = self.knobs:injected_failure()
      if n then
        SimError.raise(require("fo.sim.knobs").INJECTED_CODE, ("fo sim: injected failure of "
          .. "mutating call %d (%s.%s; sim knob fail_mutating_call)"):format(n, service, op_name), 400)
      end
    end
    return self:_run_handler(c)
  end)

  local resp
  if ok then
    local sok, r = pcall(proto.serialize_response, model, op_name, out,
      { request_id = request_id })
    if sok then
      resp = r
    else
      ok, out = false, SimError.new(codes.for_service(codes.SERVER, service)[1].code,
        ("simulator bug: %s.%s answer cannot be serialized: %s"):format(service, op_name,
          tostring(r)), 500)
      require("fo.log").error("sim %s", out.message)
    end
  end
  if not ok then
    out = as_sim_error(out, service)
    resp = error_response(service, model, op_name, out, request_id, alternative, req.method)
    info.code = out.code
  elseif service == "s3" then
    resp = require("fo.sim.s3.response").finish(resp, out, request_id, req.method)
  end
  info.status = resp.status
  c.operation = op_name or "-" -- unparsed calls are recorded too (as reads)
  self:_finish(c, resp.status, info.code)
  return resp, info
end

--- Answers one HTTP request as AWS would. req: {method=, url=, headers=, body=} (the
--- fo.http.request form) or {method=, path=, query=, headers=, body=} (fo.httpd's).
--- Returns {status=, headers=, body=} and a summary {service=, operation=, region=,
--- status=, code=}. via: how a client's request to a load balancer came (fo.sim.lb_front:
--- {port = 443} from the served simulator's TLS front), nil for plain HTTP.
function W:handle(req, via)
  self.clock:run_due()
  local r = normalize(req)
  -- a client's request to a load balancer's DNS name (fo.sim.lb_front), not an API call
  local resp, info = require("fo.sim.lb_front").answer(self, r, via)
  if resp then return resp, info end
  return answer(self, r)
end

-- The region a signed request is for, if it is in outage (global services never are).
local function outage_region(self, req)
  local a = auth.scope(req)
  if not a then return nil end
  local service = BY_SIGNING[a.service]
  if not service or regions.GLOBAL_SERVICES[service] then return nil end
  return self.knobs:in_outage(a.region) and a.region or nil
end

local function connect_error(url, message)
  require "fo.http" -- registers the error metatable
  return setmetatable({ kind = "connect", message = message, url = url, curl_code = 7 },
    debug.getregistry()["fo.http.Error"])
end

--- An `http` hook for aws.call and the service clients (the same call and result as
--- fo.http.request): each request waits the latency knob on the event loop, fails like a
--- refused connection when its region is in outage, and is otherwise answered by
--- sim:handle. Response header names are lower-case, as fo.http gives them.
function W:transport()
  if self._transport then return self._transport end
  local function request(r)
    local delay = self.knobs:latency(self.faults)
    if delay > 0 then core.sleep(delay) end
    local req = normalize(r)
    local region = outage_region(self, req)
    if region then
      local host = r.url:match("^https?://([^/?#:]+)") or "?"
      error(connect_error(r.url, ("Failed to connect to %s port 443: Connection refused "
        .. "(simulated outage of %s)"):format(host, region)), 0)
    end
    local resp = self:handle(req)
    local headers = {}
    for k, v in pairs(resp.headers or {}) do headers[k:lower()] = tostring(v) end
    return { status = resp.status, headers = headers, body = resp.body or "" }
  end
  self._transport = setmetatable({ request = request },
    { __call = function(_, r) return request(r) end })
  return self._transport
end

-- Settings of the process environment a sim client still honours.
local PASSED_THROUGH = { AWS_MAX_ATTEMPTS = true, AWS_RETRY_MODE = true }

--- An environment lookup that gives the sim's credentials (no profile, no config files, no
--- endpoint overrides, no instance metadata) and the retry settings: one per key pair, kept,
--- so the credentials cache of the AWS core (keyed by this function) is reused.
function W:env_for(key)
  self._envs = self._envs or {}
  local id = key.access_key .. "\0" .. key.secret_key .. "\0" .. (key.session_token or "")
  local f = self._envs[id]
  if f then return f end
  local t = { AWS_ACCESS_KEY_ID = key.access_key, AWS_SECRET_ACCESS_KEY = key.secret_key,
    AWS_SESSION_TOKEN = key.session_token,
    AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent",
    AWS_CONFIG_FILE = "/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/credentials" }
  -- The sim's identity and no profile, config file or endpoint override from the process;
  -- the retry settings are the user's to choose, against the sim as against AWS.
  f = function(name)
    if PASSED_THROUGH[name] then return os.getenv(name) end
    return t[name]
  end
  self._envs[id] = f
  return f
end

--- A client of `service` (aws.<service>) whose requests go to this sim in-process. It
--- keeps AWS's real endpoint URL (the sim routes by the signature). opts: region (default
--- us-east-1), access_key/secret_key/session_token (default sim.client_key when set, else
--- the sim's key), endpoint (e.g. a served
--- sim's URL: then real HTTP is used), max_attempts, retry_mode, retry_defaults, timeout, sleep,
--- random, on_retry.
function W:client(service, opts)
  opts = opts or {}
  local key = self.client_key or keys.DEFAULT
  if opts.access_key then
    key = { access_key = opts.access_key, secret_key = opts.secret_key or "",
      session_token = opts.session_token }
  end
  local ctor = require("fo.aws")[service]
  if type(ctor) ~= "function" and type(ctor) ~= "table" then
    error(("fo.sim: no AWS client for service '%s'"):format(tostring(service)), 2)
  end
  return ctor{
    region = opts.region or "us-east-1", env = self:env_for(key),
    http = not opts.endpoint and self:transport() or nil, endpoint = opts.endpoint,
    max_attempts = opts.max_attempts, retry_mode = opts.retry_mode,
    retry_defaults = opts.retry_defaults, timeout = opts.timeout, sleep = opts.sleep,
    random = opts.random, on_retry = opts.on_retry,
  }
end

return W
