-- A stand-in for fo.awsproto (same four functions) for the service-client tests: params
-- travel as JSON with the operation in X-Amz-Target, answers are JSON documents. It
-- records every call so tests can check the order (validate before serialize, nothing
-- sent after a validation error). Servers for it: M.server{Operation = handler}.
local cjson = require "cjson"
local fake = require "support.fake_aws"

local M = {}

--- A new codec. opts.reject = {Member = "message"} makes validate raise
--- "<svc>.<Op>: <Member>: <message>" when params has that member.
function M.new(opts)
  opts = opts or {}
  local c = { calls = {} }
  local function record(what, op, x) c.calls[#c.calls + 1] = { what = what, op = op, x = x } end
  function c.validate(model, op, params)
    record("validate", op, params)
    for member, msg in pairs(opts.reject or {}) do
      if params[member] ~= nil then error(("%s.%s: %s: %s"):format(model.name, op, member, msg), 0) end
    end
  end
  function c.serialize(model, op, params)
    record("serialize", op, params)
    return { method = "POST", path = "/", query = "",
             headers = { ["Content-Type"] = "application/x-amz-json-1.1",
                         ["X-Amz-Target"] = model.name .. "." .. op },
             body = cjson.encode(params) }
  end
  function c.parse(_, op, resp)
    record("parse", op, resp)
    return cjson.decode(resp.body)
  end
  function c.parse_error(_, op, resp)
    record("parse_error", op, resp)
    local d = cjson.decode(resp.body)
    return { code = d.code, message = d.message, type = "client", fields = d.fields }
  end
  return c
end

--- An error answer this codec parses: {status=, body=} with code, message, fields.
function M.error(status, code, message, fields)
  return { status = status, headers = { ["x-amzn-RequestId"] = "req-" .. code },
           body = cjson.encode{ code = code, message = message, fields = fields } }
end

--- A JSON answer.
function M.ok(doc)
  return { status = 200, headers = { ["x-amzn-RequestId"] = "req-ok" }, body = cjson.encode(doc) }
end

--- A loopback server that routes by operation: handlers[Op](params, req, n) returns an
--- answer ({status=, body=}, e.g. from M.ok/M.error). Records requests like
--- fake_aws.scripted, plus s.ops[n] (operation) and s.params[n] (decoded params).
function M.server(handlers)
  local s
  s = fake.scripted{ function(req, n)
    local op = (req.headers["x-amz-target"] or ""):match("%.(%w+)$")
    local params = cjson.decode(req.body ~= "" and req.body or "{}")
    s.ops[n], s.params[n] = op, params
    local h = handlers[op]
    if not h then return M.error(400, "UnknownOperation", "no handler for " .. tostring(op)) end
    return h(params, req, n)
  end }
  s.ops, s.params = {}, {}
  return s
end

--- The options every test client needs: fake credentials, no IMDS, no config files,
--- this codec, and the server's URL as endpoint.
function M.client_options(codec, s, extra)
  return fake.merge({
    region = "eu-south-1", endpoint = s and s.url, proto = codec,
    env = fake.env{ AWS_ACCESS_KEY_ID = "AKIDTEST", AWS_SECRET_ACCESS_KEY = "secret/TEST",
                    AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent" },
    sleep = function() end, random = function() return 0 end,
  }, extra)
end

return M
