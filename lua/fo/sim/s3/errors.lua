-- S3's error document: <Error><Code/><Message/>fields<RequestId/><HostId/></Error> with no
-- ErrorResponse wrapper (and no body at all for HEAD), the request id in x-amz-request-id
-- and x-amz-id-2, and the headers an error carries (x-amz-bucket-region on a redirect).
local xml_escape = require("fo.xml").escape

local M = {}

local function host_id(request_id)
  return require("fo.crypto").base64_encode(require("fo.crypto").sha256(request_id))
end

--- {status=, headers=, body=} for err {code=, message=, status=, fields=, headers=}.
function M.render(err, request_id, method)
  local headers = { ["x-amz-request-id"] = request_id, ["x-amz-id-2"] = host_id(request_id) }
  for k, v in pairs(err.headers or {}) do headers[k] = v end
  if method == "HEAD" then
    return { status = err.status or 400, headers = headers, body = "" }
  end
  headers["Content-Type"] = "application/xml"
  local parts = { '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>', xml_escape(err.code),
    "</Code><Message>", xml_escape(err.message or ""), "</Message>" }
  local names = {}
  for k in pairs(err.fields or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = err.fields[k]
    if type(v) == "string" or type(v) == "number" then
      parts[#parts + 1] = ("<%s>%s</%s>"):format(k, xml_escape(tostring(v)), k)
    end
  end
  parts[#parts + 1] = ("<RequestId>%s</RequestId><HostId>%s</HostId></Error>"):format(request_id,
    host_id(request_id))
  return { status = err.status or 400, headers = headers, body = table.concat(parts) }
end

return M
