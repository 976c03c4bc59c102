-- Service clients: aws.ec2{region=, profile=, endpoint=} returns a client whose methods
-- are the operations of the service's API model (client:CreateVpc{...}). Each call
-- validates the params against the model, serializes them with the protocol codec
-- (fo.awsproto), sends them with aws.call (signing, retries, structured errors) and
-- parses the answer into a Lua table. Pagination, waiters and help live in their own
-- modules; this file is the dispatch between them.
local models = require "fo.aws.models"
local suggest = require "fo.aws.suggest"
local region_mod = require "fo.aws.region"
local AwsError = require "fo.aws.error"

local M = {}

local Client = {}
local ClientMT = { __name = "fo.aws.Client" }
-- A client's own fields; reading one that is unset (profile, endpoint) gives nil, while
-- any other unknown name is a mistyped operation and raises.
local FIELDS = { service = true, region = true, profile = true, endpoint = true, model = true }

-- Options passed through to aws.call unchanged; env/http/sleep/random are test hooks.
-- (max_attempts, retry_mode and retry_defaults go in as the client's resolved settings.)
local CALL_OPTIONS = { "timeout", "env", "http", "sleep", "random", "on_retry" }

-- The client's retry settings (fo.aws.retry.config), resolved on its first call and kept:
-- the profile is read once, and a bad setting is reported when a call is made.
local function retry_settings(client)
  local r = rawget(client, "_retry")
  if not r then
    local o = client._options
    r = require("fo.aws.retry").config({ max_attempts = o.max_attempts,
      retry_mode = o.retry_mode, retry_defaults = o.retry_defaults, profile = client.profile },
      o.env)
    rawset(client, "_retry", r)
  end
  return r
end

-- A random UUID (version 4) for idempotency-token members left empty, as the SDKs do,
-- so that aws.call's retries of one call reuse one token.
local function uuid4()
  local b = { require("fo.crypto").random(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  local hex = ("%02x"):rep(16):format(table.unpack(b))
  return ("%s-%s-%s-%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(13, 16),
    hex:sub(17, 20), hex:sub(21, 32))
end

-- params with the input's idempotency-token members filled in (a copy when any is).
local function with_idempotency_tokens(model, op, params)
  local input = op.input and model.shapes[op.input.shape]
  if not input then return params end
  local copy
  for name, ref in pairs(input.members or {}) do
    if ref.idempotencyToken and params[name] == nil then
      if not copy then
        copy = {}
        for k, v in pairs(params) do copy[k] = v end
      end
      copy[name] = uuid4()
    end
  end
  return copy or params
end

-- Runs a codec step; its messages start with "<service>.<Op>:", and a position prefix
-- added on the way ("client.lua:80: ") would only point into this file, so it goes.
local function codec_step(fn, model, service, op_name, arg)
  local ok, res = pcall(fn, model, op_name, arg)
  if ok then return res end
  if type(res) == "string" then
    local at = res:find(service .. "." .. op_name .. ":", 1, true)
    if at then res = res:sub(at) end
  end
  error(res, 0)
end

local function codec(client)
  local p = rawget(client, "_proto")
  if not p then
    p = require "fo.awsproto"
    rawset(client, "_proto", p)
  end
  return p
end

--- Calls operation `op` with `params`: → output table, meta {status=, headers=,
--- request_id=, attempts=, latency=}. Raises a string for bad params (nothing is sent)
--- and an fo.aws.Error for an error answer or a transport failure.
function Client:_invoke(op_name, params)
  local model, service = self.model, self.service
  local op = model.operations[op_name]
  if not op then
    error(("%s has no operation '%s'%s"):format(service, tostring(op_name),
      suggest.hint(op_name, model.operations)), 0)
  end
  if params == nil then params = {} end
  if type(params) ~= "table" then
    error(("%s.%s: params must be a table, got %s"):format(service, op_name, type(params)), 0)
  end
  if not op.input and next(params) ~= nil then
    error(("%s.%s takes no parameters"):format(service, op_name), 0)
  end
  params = with_idempotency_tokens(model, op, params)
  local proto = codec(self)
  codec_step(proto.validate, model, service, op_name, params)
  local req = codec_step(proto.serialize, model, service, op_name, params)
  -- Operations whose model requires a body checksum (S3's PutBucketPolicy,
  -- PutBucketVersioning, DeleteObjects...): Content-MD5, which S3 accepts for all of them.
  local hc = op.httpChecksum
  if (op.httpChecksumRequired or (hc and hc.requestChecksumRequired)) and req.body then
    local has = false
    for k in pairs(req.headers or {}) do
      local l = k:lower()
      if l == "content-md5" or l:match("^x%-amz%-checksum%-") then has = true end
    end
    if not has then
      req.headers = req.headers or {}
      local crypto = require "fo.crypto"
      req.headers["Content-MD5"] = crypto.base64_encode(crypto.md5(req.body))
    end
  end

  -- The codec knows the protocol's error documents; keep its whole answer (modelled
  -- error members) to attach to the error aws.call raises.
  local parsed_error
  local call_req = {
    service = service, operation = op_name, region = self.region, profile = self.profile,
    endpoint = self.endpoint, method = req.method, path = req.path, query = req.query,
    headers = req.headers, body = req.body,
    bucket = service == "s3" and params.Bucket or nil,
    addressing_style = self._options.addressing_style,
    parse_error = function(resp)
      local ok, e = pcall(proto.parse_error, model, op_name, resp)
      parsed_error = ok and type(e) == "table" and e or nil
      return parsed_error
    end,
  }
  for _, k in ipairs(CALL_OPTIONS) do call_req[k] = self._options[k] end
  call_req.retry = retry_settings(self)
  local ok, resp = pcall(require "fo.aws.call", call_req)
  if not ok then
    if AwsError.is(resp) and resp.kind == "service" and parsed_error then
      resp.type, resp.fields = parsed_error.type, parsed_error.fields
    end
    error(resp, 0)
  end
  local output = {}
  if op.output then
    output = codec_step(proto.parse, model, service, op_name,
      { status = resp.status, headers = resp.headers, body = resp.body })
  end
  return output, { status = resp.status, headers = resp.headers, attempts = resp.attempts,
    latency = resp.latency,
    request_id = resp.headers["x-amzn-requestid"] or resp.headers["x-amz-request-id"] }
end

-- One function per (service, operation), shared by every client of the service.
local op_methods = {}

local function op_method(service, op_name)
  local per = op_methods[service]
  if not per then
    per = {}
    op_methods[service] = per
  end
  local f = per[op_name]
  if not f then
    f = function(self, params)
      if getmetatable(self) ~= ClientMT then
        error(("call %s:%s{...} with a colon (the client comes first)"):format(service,
          op_name), 2)
      end
      return self:_invoke(op_name, params)
    end
    per[op_name] = f
  end
  return f
end

ClientMT.__index = function(self, key)
  local m = Client[key]
  if m ~= nil then return m end
  if type(key) ~= "string" or key:sub(1, 1) == "_" or FIELDS[key] then return nil end
  local model = rawget(self, "model")
  if model.operations[key] then return op_method(self.service, key) end
  error(("%s has no operation or method '%s'%s"):format(self.service, key,
    suggest.hint(key, model.operations)), 2)
end

ClientMT.__tostring = function(self)
  return ("aws.%s client (region %s)"):format(self.service, self.region)
end

--- Sorted names of the service's operations.
function Client:operations()
  local names = {}
  for k in pairs(self.model.operations) do names[#names + 1] = k end
  table.sort(names)
  return names
end

--- Sorted names of the service's waiters.
function Client:waiters()
  local names = {}
  for k in pairs(self.model.waiters) do names[#names + 1] = k end
  table.sort(names)
  return names
end

--- Text describing operation `op` (input members with types, required, enums, ranges;
--- the output's top level; its paginator and waiters); without `op`, the service.
--- opts.print: also print it; opts.depth: structure levels shown (default 3).
function Client:help(op, opts)
  if type(op) == "table" and opts == nil then op, opts = nil, op end
  opts = opts or {}
  local text
  if op == nil then
    local md = self.model.metadata or {}
    text = ("aws.%s: %s (protocol %s, API %s), region %s\n%d operations: %s:operations() "
      .. "lists them, %s:help(\"Name\") describes one\nwaiters: %s"):format(self.service,
      md.serviceFullName or self.service, md.protocol or "?", md.apiVersion or "?",
      self.region, #self:operations(), self.service, self.service,
      #self:waiters() > 0 and table.concat(self:waiters(), ", ") or "none")
  else
    if not self.model.operations[op] then
      error(("%s has no operation '%s'%s"):format(self.service, tostring(op),
        suggest.hint(op, self.model.operations)), 2)
    end
    text = require("fo.aws.shape_help").operation(self.model, self.service, op, opts)
  end
  if opts.print then print(text) end
  return text
end

--- for page in client:paginate(op, params, {page_size=}) do ... end
function Client:paginate(op, params, opts)
  return require("fo.aws.paginate").pages(self, op, params, opts)
end

--- for item in client:items(op, params, {result_key=, page_size=}) do ... end
function Client:items(op, params, opts)
  return require("fo.aws.paginate").items(self, op, params, opts)
end

--- client:wait(waiter, params, {delay=, max_attempts=, timeout=}) → last output, attempts
function Client:wait(name, params, opts)
  return require("fo.aws.waiter").wait(self, name, params, opts)
end

--- A client of `service` (one of the names in fo.aws.services). opts: region, profile,
--- endpoint, max_attempts, retry_mode ("standard", "adaptive"; both default to AWS_MAX_ATTEMPTS,
--- AWS_RETRY_MODE, the profile's settings, then retry_defaults = {mode=, max_attempts=,
--- max_transient=}, then standard with 3 attempts), timeout (per attempt), on_retry (called with {service, operation,
--- region, attempt, reason, class, status, delay} before each retry); proto (a codec with fo.awsproto's API)
--- and env/http/sleep/random are hooks for tests. S3 only: addressing_style ("auto", the
--- default: virtual-hosted unless the bucket name or endpoint rules it out; "virtual";
--- "path"), see fo.aws.s3_address.
function M.new(service, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(("aws.%s{...}: expected a table of options, got %s"):format(service, type(opts)), 2)
  end
  opts = opts or {}
  local model = models.load(service)
  local region = region_mod.resolve{ region = opts.region, profile = opts.profile, env = opts.env }
  local client = {
    service = service, region = region, profile = opts.profile, endpoint = opts.endpoint,
    model = model, _options = opts, _proto = opts.proto,
  }
  return setmetatable(client, ClientMT)
end

--- True when v is a service client.
function M.is(v)
  return getmetatable(v) == ClientMT
end

return M
