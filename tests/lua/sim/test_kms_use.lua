-- fo.sim.kms_use: how other simulated services use a KMS key on a caller's behalf (S3
-- SSE-KMS, SNS topics): AWS managed keys made on first use and usable only through their
-- service, key policies with service principals and the conditions used in practice
-- (kms:ViaService, kms:CallerAccount, aws:SourceArn/SourceAccount, ArnLike, StringLike),
-- and the errors each service reports when KMS refuses.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local ctx_mod = require "fo.sim.ctx"
local kms_use = require "fo.sim.kms_use"
local json = require "fo.json"

local ACCOUNT = "123456789012"
local USER = "arn:aws:iam::" .. ACCOUNT .. ":user/fo-sim"
local REGION = "eu-south-1"

local function setup()
  local sim = simlib.new{ seed = 11 }
  local kms = sim:client("kms", { region = REGION, max_attempts = 1 })
  -- a handler ctx of the service using the key, as the sim gives one to its handlers
  local function ctx_of(service)
    return ctx_mod.new{ sim = sim, service = service, operation = "PutObject", region = REGION,
      account = ACCOUNT, caller = sim.keys[simlib.DEFAULT_KEY.access_key] }
  end
  return sim, kms, ctx_of
end

local function policy_key(kms, statements)
  local doc = { Version = "2012-10-17", Statement = { { Sid = "admin", Effect = "Allow",
    Principal = { AWS = USER }, Action = "kms:*", Resource = "*" } } }
  for _, s in ipairs(statements) do doc.Statement[#doc.Statement + 1] = s end
  return kms:CreateKey{ Policy = json.encode(doc) }.KeyMetadata
end

TestKmsUse = {}

function TestKmsUse.test_s3_default_key_is_the_aws_managed_key_made_on_first_use()
  local _, kms, ctx_of = setup()
  local arn, md = kms_use.use(ctx_of("s3"), { action = "kms:GenerateDataKey", service = "s3.amazonaws.com" })
  lu.assertStrMatches(arn, "arn:aws:kms:eu%-south%-1:" .. ACCOUNT .. ":key/.+")
  lu.assertEquals(md.KeyManager, "AWS")
  lu.assertEquals(kms:DescribeKey{ KeyId = "alias/aws/s3" }.KeyMetadata.Arn, arn)
  -- the same key for Decrypt later, named by its ARN
  lu.assertEquals(kms_use.use(ctx_of("s3"), { key = arn, action = "kms:Decrypt", service = "s3.amazonaws.com" }), arn)
  -- the S3 managed key is not usable through SNS
  local none, code, msg, status = kms_use.use(ctx_of("sns"), { key = "alias/aws/s3",
    action = "kms:GenerateDataKey", service = "sns.amazonaws.com" })
  lu.assertNil(none)
  lu.assertEquals({ code, status }, { "KMSAccessDenied", 400 })
  lu.assertStrContains(msg, "kms:GenerateDataKey")
end

function TestKmsUse.test_errors_as_s3_reports_them()
  local _, kms, ctx_of = setup()
  local use = function(key, extra)
    local o = { key = key, action = "kms:GenerateDataKey", service = "s3.amazonaws.com" }
    for k, v in pairs(extra or {}) do o[k] = v end
    return kms_use.use(ctx_of("s3"), o)
  end
  local _, code, msg, status, kms_code = use("alias/missing")
  lu.assertEquals({ code, status, kms_code }, { "KMS.NotFoundException", 400, "NotFoundException" })
  lu.assertStrContains(msg, "alias/missing is not found")
  local md = kms:CreateKey{}.KeyMetadata
  lu.assertEquals(use(md.KeyId), md.Arn)
  kms:DisableKey{ KeyId = md.KeyId }
  _, code, msg = use(md.Arn)
  lu.assertEquals(code, "KMS.DisabledException")
  lu.assertStrContains(msg, md.Arn .. " is disabled.")
  kms:ScheduleKeyDeletion{ KeyId = md.KeyId, PendingWindowInDays = 7 }
  _, code = use(md.Arn)
  lu.assertEquals(code, "KMS.KMSInvalidStateException")
  -- another account's caller is not in the key's default policy
  local other = policy_key(kms, {})
  _, code, msg, status = use(other.Arn, { caller = "arn:aws:iam::210987654321:user/mallory" })
  lu.assertEquals({ code, status }, { "AccessDenied", 403 })
  lu.assertStrContains(msg, "User: arn:aws:iam::210987654321:user/mallory is not authorized to perform: "
    .. "kms:GenerateDataKey on resource: " .. other.Arn)
end

function TestKmsUse.test_service_principals_with_source_conditions()
  local _, kms, ctx_of = setup()
  local topic = "arn:aws:sns:eu-south-1:" .. ACCOUNT .. ":alerts"
  local alarm = "arn:aws:cloudwatch:eu-south-1:" .. ACCOUNT .. ":alarm:*"
  local md = policy_key(kms, { {
    Sid = "cloudwatch publishes to the encrypted topic", Effect = "Allow",
    Principal = { Service = "cloudwatch.amazonaws.com" },
    Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*",
    Condition = { ArnLike = { ["aws:SourceArn"] = alarm }, StringEquals = { ["aws:SourceAccount"] = ACCOUNT } },
  } })
  local function publish(extra)
    local o = { key = md.Arn, action = "kms:GenerateDataKey", service = "sns.amazonaws.com",
      caller = "cloudwatch.amazonaws.com", source_account = ACCOUNT,
      source_arn = "arn:aws:cloudwatch:eu-south-1:" .. ACCOUNT .. ":alarm:cpu-high",
      context = { ["aws:sns:topicArn"] = topic } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return kms_use.use(ctx_of("sns"), o)
  end
  lu.assertEquals(publish(), md.Arn)
  local _, code = publish({ source_account = "210987654321" })
  lu.assertEquals(code, "KMSAccessDenied")
  _, code = publish({ source_arn = "arn:aws:cloudwatch:eu-west-1:" .. ACCOUNT .. ":alarm:x" })
  lu.assertEquals(code, "KMSAccessDenied")
  -- a service the policy does not name
  _, code = publish({ caller = "events.amazonaws.com" })
  lu.assertEquals(code, "KMSAccessDenied")
end

function TestKmsUse.test_via_service_and_caller_account_conditions()
  local _, kms, ctx_of = setup()
  local role = "arn:aws:iam::" .. ACCOUNT .. ":role/app"
  local md = policy_key(kms, { {
    Sid = "the app role, only through S3", Effect = "Allow", Principal = { AWS = role },
    Action = { "kms:GenerateDataKey", "kms:Decrypt" }, Resource = "*",
    Condition = { StringLike = { ["kms:ViaService"] = "s3.*.amazonaws.com" },
      StringEquals = { ["kms:CallerAccount"] = ACCOUNT } },
  } })
  local session = "arn:aws:sts::" .. ACCOUNT .. ":assumed-role/app/i-0abc"
  lu.assertEquals(kms_use.use(ctx_of("s3"), { key = md.KeyId, action = "kms:Decrypt",
    service = "s3.amazonaws.com", caller = session }), md.Arn)
  local _, code = kms_use.use(ctx_of("dynamodb"), { key = md.KeyId, action = "kms:Decrypt",
    service = "dynamodb.amazonaws.com", caller = session })
  lu.assertEquals(code, "AccessDeniedException")
  -- not an operation the statement allows
  _, code = kms_use.use(ctx_of("s3"), { key = md.KeyId, action = "kms:Encrypt",
    service = "s3.amazonaws.com", caller = session })
  lu.assertEquals(code, "AccessDenied")
end

function TestKmsUse.test_bad_arguments_are_programming_errors()
  local _, _, ctx_of = setup()
  lu.assertErrorMsgContains("service must be a service principal", kms_use.use, ctx_of("s3"),
    { action = "kms:Decrypt", service = "s3" })
  lu.assertErrorMsgContains("action must be a KMS action", kms_use.use, ctx_of("s3"),
    { action = "Decrypt", service = "s3.amazonaws.com" })
end

os.exit(lu.LuaUnit.run())
