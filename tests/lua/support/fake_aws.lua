-- Loopback fakes for the AWS core's tests: a server that answers from a script of
-- responses and records every request, AWS-style error bodies, and injectable env tables.
local M = {}

--- An environment lookup function over a table (what the AWS modules take as `env`).
function M.env(t)
  return function(k) return t[k] end
end

--- Merges tables left to right into a new one.
function M.merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do out[k] = v end
  end
  return out
end

--- A query/ec2-protocol XML error body.
function M.xml_error(code, message, request_id)
  return ("<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message>"
    .. "</Error><RequestId>%s</RequestId></ErrorResponse>"):format(code, message or "",
    request_id or ("req-" .. code))
end

--- A json-protocol error body.
function M.json_error(code, message)
  return ('{"__type":"com.amazonaws.test#%s","message":"%s"}'):format(code, message or "")
end

--- Starts a server on 127.0.0.1 that answers request n with responses[n] (the last one
--- repeats; a function entry is called with the request). Returns
--- {url=, requests=, times=, close=}; times[n] is fo.now() when request n arrived.
function M.scripted(responses)
  local s = { requests = {}, times = {} }
  s.srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    local n = #s.requests + 1
    s.requests[n], s.times[n] = req, fo.now()
    local r = responses[math.min(n, #responses)]
    if type(r) == "function" then r = r(req, n) end
    return r
  end }
  s.port = s.srv.port
  s.url = "http://127.0.0.1:" .. s.srv.port
  function s.close() s.srv:close() end
  return s
end

--- A port on 127.0.0.1 where nothing listens (bound, then closed).
function M.dead_port()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function() end }
  local port = srv.port
  srv:close()
  return port
end

return M
