-- How another simulated service uses a KMS key on a caller's behalf (S3 SSE-KMS, SNS
-- encrypted topics, DynamoDB tables): the key is found as KMS finds it (id, ARN, alias; an
-- AWS managed key alias/aws/<service> is made on first use), it must be usable (enabled,
-- not pending deletion), and its key policy (and grants) must let the caller do the action
-- through that service (kms:ViaService <service>.<region>.amazonaws.com, kms:CallerAccount,
-- aws:SourceArn/SourceAccount, the encryption context). Failures come back as the calling
-- service reports them (S3: KMS.NotFoundException, AccessDenied, KMS.DisabledException ...).
local keys = require "fo.sim.kms.keys"
local access = require "fo.sim.kms.access"

local M = {}

-- KMS's error code → {code, status} as each service answers it when KMS refuses.
local AS_SERVICE = {
  s3 = {
    AccessDeniedException = { "AccessDenied", 403 },
    NotFoundException = { "KMS.NotFoundException", 400 },
    DisabledException = { "KMS.DisabledException", 400 },
    KMSInvalidStateException = { "KMS.KMSInvalidStateException", 400 },
    InvalidCiphertextException = { "KMS.InvalidCiphertextException", 400 },
  },
  sns = {
    AccessDeniedException = { "KMSAccessDenied", 400 },
    NotFoundException = { "KMSNotFound", 400 },
    DisabledException = { "KMSDisabled", 400 },
    KMSInvalidStateException = { "KMSInvalidState", 400 },
    InvalidCiphertextException = { "KMSInvalidState", 400 },
  },
}

-- KMS's own status of each error code (all 400 on its JSON protocol).
local function failure(service, code, message)
  local m = AS_SERVICE[service] and AS_SERVICE[service][code]
  if m then return nil, m[1], message, m[2], code end
  return nil, code, message, 400, code
end

--- Uses a key on a caller's behalf. ctx: the calling service's handler ctx (its account and
--- region are the call's). opts:
---   key      key id, key ARN, alias name or alias ARN; nil = the service's AWS managed key
---            (alias/aws/<service>)
---   action   "kms:GenerateDataKey", "kms:Decrypt", "kms:Encrypt", "kms:DescribeKey" ...
---   service  the service acting, as its principal: "s3.amazonaws.com" (kms:ViaService
---            becomes "s3.<region>.amazonaws.com")
---   caller   the principal the key policy judges: an IAM ARN (default: ctx's caller), or a
---            service principal ("cloudwatch.amazonaws.com") when a service publishes
---   caller_account  the IAM caller's account (default: from its ARN, else ctx.account)
---   context  the encryption context {k = v}
---   region   the key's region when the service acts in another region than the call's (a
---            DynamoDB replica's key): key lookup and kms:ViaService use it (default ctx.region)
---   source_arn, source_account  aws:SourceArn / aws:SourceAccount (service principals)
--- Returns the key's ARN and its KeyMetadata; or nil, the error code as `service` answers
--- it, the message, the HTTP status, and KMS's own error code.
function M.use(ctx, opts)
  local svc = (opts.service or ""):match("^([%w-]+)%.amazonaws%.com$")
  if not svc then
    error("fo.sim.kms_use.use: service must be a service principal such as "
      .. "\"s3.amazonaws.com\", got " .. tostring(opts.service), 2)
  end
  if type(opts.action) ~= "string" or not opts.action:match("^kms:%a+$") then
    error("fo.sim.kms_use.use: action must be a KMS action such as \"kms:Decrypt\", got "
      .. tostring(opts.action), 2)
  end
  local ref = opts.key or ("alias/aws/" .. svc)
  local region = opts.region or ctx.region
  local k, code, msg = keys.resolve(ctx, ctx.account, region, ref)
  if not k then return failure(svc, code, msg) end
  code, msg = access.usable(k)
  if code then return failure(svc, code, msg) end
  local who
  local caller = opts.caller or (ctx.caller and ctx.caller.arn)
  if type(caller) == "string" and caller:match("^[%w.-]+%.amazonaws%.com$") then
    who = { service = caller }
  else
    who = { arn = caller, account = opts.caller_account
      or (type(caller) == "string" and caller:match("^arn:aws:[%w-]+::(%d+):")) or ctx.account }
  end
  code, msg = access.check(k, { action = opts.action, principal = who,
    via = ("%s.%s.amazonaws.com"):format(svc, region), context = opts.context,
    source_arn = opts.source_arn, source_account = opts.source_account })
  if code then return failure(svc, code, msg) end
  return k.Arn, keys.metadata(k)
end

return M
