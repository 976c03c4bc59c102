-- S3's successful answers after the rest-xml codec wrote them: S3's request id headers and,
-- for HEAD, the object's size as head_length: a served sim (fo.sim.server) answers HEAD with
-- a body that long, which the HTTP server never sends but announces in Content-Length.
local M = {}

--- resp: the codec's response; out: the handler's output.
function M.finish(resp, out, request_id, method)
  resp.headers = resp.headers or {}
  resp.headers["x-amzn-RequestId"] = nil
  resp.headers["x-amz-request-id"] = request_id
  resp.headers["x-amz-id-2"] = require("fo.crypto").base64_encode(
    require("fo.crypto").sha256(request_id))
  if out.ContentRange then resp.status = 206 end -- a ranged GetObject
  if method == "HEAD" and type(out.ContentLength) == "number" then
    resp.head_length = out.ContentLength
  end
  -- an empty answer has no XML content type
  if (resp.body or "") == "" and method ~= "HEAD" then resp.headers["Content-Type"] = nil end
  return resp
end

return M
