-- The structured AWS error raised by every AWS call: which service, operation and region,
-- AWS's error code and message, HTTP status, request id, and whether a retry could help.
local log = require "fo.log"

local Error = {}
Error.__index = Error
Error.__name = "fo.aws.Error"

--- "ec2.CreateVpc: InvalidParameterValue (HTTP 400): message [request id R] [region X]"
--- (and "[endpoint URL]" for a transport error: which address did not answer)
--- — the one place an AWS error is formatted for people (redacted, as every output is).
function Error.__tostring(e)
  local s = ("%s.%s: %s"):format(e.service or "?", e.operation or "?", e.code or "Error")
  if e.status then s = s .. (" (HTTP %d)"):format(e.status) end
  if e.message and e.message ~= "" then s = s .. ": " .. e.message end
  if e.request_id then s = s .. (" [request id %s]"):format(e.request_id) end
  if e.region then s = s .. (" [region %s]"):format(e.region) end
  if e.endpoint then s = s .. (" [endpoint %s]"):format(e.endpoint) end
  if e.why and e.retryable then
    local n = e.attempts or 1
    s = s .. (" (%s after %d attempt%s)"):format(e.why, n, n == 1 and "" or "s")
  end
  return log.redact(s)
end

--- Creates an error from a table of fields (service, operation, code, message, status,
--- request_id, retryable, region, attempts, kind = "service"|"transport", why, endpoint:
--- the URL a transport error could not reach).
function Error.new(fields)
  return setmetatable(fields, Error)
end

--- True when e is an fo.aws.Error (and, if given, has that code).
function Error.is(e, code)
  return getmetatable(e) == Error and (code == nil or e.code == code)
end

return Error
