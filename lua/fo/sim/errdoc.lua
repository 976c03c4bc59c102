-- Error documents for answers the sim gives before it knows the operation (no or bad
-- credentials, an unknown service) or while the server-side codec is missing: the same
-- envelopes fo.awsproto.serialize_error writes, without an operation to look up.
local xml_escape = require("fo.xml").escape

local M = {}

--- {status=, headers=, body=} for err {code=, message=, status=, type=} in `protocol`
--- ("query", "ec2", "json", "rest-xml"); `namespace`: the model's xmlNamespace.
function M.render(protocol, err, request_id, namespace)
  local code, msg = xml_escape(err.code), xml_escape(err.message or "")
  local status = err.status or 400
  if protocol == "json" then
    local cjson = require "cjson"
    return { status = status, headers = { ["Content-Type"] = "application/x-amz-json-1.1",
      ["x-amzn-RequestId"] = request_id, ["x-amzn-ErrorType"] = err.code },
      body = cjson.encode{ __type = err.code, message = err.message or "" } }
  elseif protocol == "ec2" then
    return { status = status, headers = { ["Content-Type"] = "text/xml;charset=UTF-8" },
      body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
        .. "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>")
        :format(code, msg, request_id) }
  end
  local ns = namespace and (' xmlns="%s"'):format(namespace) or ""
  return { status = status, headers = { ["Content-Type"] = "text/xml",
    ["x-amzn-RequestId"] = request_id },
    body = ('<ErrorResponse%s>\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
      .. "    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n")
      :format(ns, err.type or (status >= 500 and "Receiver" or "Sender"), code, msg, request_id) }
end

return M
