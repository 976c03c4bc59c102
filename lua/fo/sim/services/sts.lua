-- STS handlers: who is calling (the access key's account and user).
local M = {}

function M.GetCallerIdentity(ctx)
  local c = ctx.caller
  return { Account = c.account, Arn = c.arn, UserId = c.user_id }
end

return M
