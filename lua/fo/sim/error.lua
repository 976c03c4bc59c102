-- The error a simulated AWS call answers with: raised by handlers (ctx:fail) and by the
-- sim's own checks, written by the codec in the protocol's error format.
local M = {}
local MT = { __name = "fo.sim.Error" }
MT.__index = MT

MT.__tostring = function(e)
  return ("%s (HTTP %d): %s"):format(e.code, e.status, e.message or "")
end

--- A sim error: {code=, message=, status= (default 400), type= "Sender"|"Receiver"
--- (from the status when absent), fields= (modelled error members)}.
function M.new(code, message, status, fields)
  status = status or 400
  return setmetatable({ code = code, message = message or "", status = status,
    type = status >= 500 and "Receiver" or "Sender", fields = fields }, MT)
end

--- Raises a sim error (level 0: the position of a handler line means nothing to AWS
--- clients).
function M.raise(code, message, status, fields)
  error(M.new(code, message, status, fields), 0)
end

--- True when v is a sim error (with code `code` when given).
function M.is(v, code)
  return getmetatable(v) == MT and (code == nil or v.code == code)
end

return M
