-- A stack is bound to one target, one AWS account (with its partition) and one recipe. The
-- first plan or apply records them in the state; a later run whose credentials resolve to
-- another account, or that runs another recipe, stops before anything changes (exit 2)
-- unless the user says the stack moved (--rebind-account, --rebind-recipe).
local errors = require "fo.engine.errors"

local M = {}

--- The caller's identity on `target` (STS GetCallerIdentity in `region`):
--- { account =, partition =, arn = }.
function M.identity(target, region)
  local out = target:client("sts", region):GetCallerIdentity{}
  local partition = tostring(out.Arn or ""):match("^arn:([^:]+):") or "aws"
  return { account = out.Account, partition = partition, arn = out.Arn }
end

local function account_text(account, partition)
  return partition == "aws" and account or ("%s (partition %s)"):format(account, partition)
end

--- Compares the stack's recorded binding in `doc` with this run's `now` ({account=,
--- partition=, arn=, recipe= (nil for a recipe that is no file)}). Raises a usage error
--- naming both when they differ and the rebind option for it was not given. Returns the
--- fields to record ({account=, partition=, recipe=}; empty when nothing changes) and the
--- notices to show.
function M.check(doc, now, opts)
  local set, notices = {}, {}
  local where = opts.state_path
  if doc.account and (doc.account ~= now.account or (doc.partition or "aws") ~= now.partition) then
    if not opts.rebind_account then
      errors.raise("usage", ("stack %s is bound to AWS account %s (%s), but these credentials are "
        .. "for account %s (%s). Nothing was changed. Use the credentials (AWS_PROFILE) of account "
        .. "%s, or another --stack for account %s; if this stack's resources really moved to "
        .. "account %s, rerun with --rebind-account."):format(opts.stack,
        account_text(doc.account, doc.partition or "aws"), where,
        account_text(now.account, now.partition), now.arn or "GetCallerIdentity", doc.account,
        now.account, now.account))
    end
    notices[#notices + 1] = ("stack %s is rebound from account %s to account %s "
      .. "(--rebind-account)"):format(opts.stack, doc.account, now.account)
  end
  if doc.account ~= now.account then set.account = now.account end
  if doc.partition ~= now.partition then set.partition = now.partition end
  if now.recipe and opts.check_recipe then
    if doc.recipe and doc.recipe ~= now.recipe then
      if not opts.rebind_recipe then
        errors.raise("usage", ("stack %s is bound to recipe %s (%s), and this run's recipe is %s. "
          .. "Applying it would delete every resource that %s declares and %s does not. Nothing "
          .. "was changed. Use another --stack for %s; if it replaces %s (renamed or moved), "
          .. "rerun with --rebind-recipe."):format(opts.stack, doc.recipe, where, now.recipe,
          doc.recipe, now.recipe, now.recipe, doc.recipe))
      end
      notices[#notices + 1] = ("stack %s is rebound from recipe %s to %s (--rebind-recipe)")
        :format(opts.stack, doc.recipe, now.recipe)
    end
    if doc.recipe ~= now.recipe then set.recipe = now.recipe end
  end
  return set, notices
end

return M
