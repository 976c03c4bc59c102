-- The simulator's KMS through fo's kms client over the in-process wire: symmetric keys and
-- their metadata, aliases and their reserved prefix, enable/disable, scheduled deletion
-- (window, use refused, cancel → Disabled, deleted when the window ends), key policies and
-- rotation, grants, and ciphertext that is really encrypted and bound to its encryption
-- context and key.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local json = require "fo.json"
local aws = fo.aws

local ACCOUNT = "123456789012"

local function setup(opts)
  local sim = simlib.new(opts or { seed = 7 })
  return sim, sim:client("kms", { region = "eu-south-1", max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

local function new_key(kms, p)
  return kms:CreateKey(p or { Description = "orders" }).KeyMetadata
end

TestKmsKeys = {}

function TestKmsKeys.test_create_describe_list_symmetric_key()
  local sim, kms = setup()
  local md = kms:CreateKey{ Description = "orders", Tags = { { TagKey = "fo:token", TagValue = "t1" } } }.KeyMetadata
  lu.assertStrMatches(md.KeyId, "%x+%-%x+%-4%x+%-%x+%-%x+")
  lu.assertEquals(md.Arn, ("arn:aws:kms:eu-south-1:%s:key/%s"):format(ACCOUNT, md.KeyId))
  lu.assertEquals({ md.KeySpec, md.KeyUsage, md.KeyState, md.Enabled, md.KeyManager, md.Origin,
    md.MultiRegion, md.Description }, { "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "Enabled", true,
    "CUSTOMER", "AWS_KMS", false, "orders" })
  lu.assertEquals(md.EncryptionAlgorithms, { "SYMMETRIC_DEFAULT" })
  -- by id, by ARN
  lu.assertEquals(kms:DescribeKey{ KeyId = md.Arn }.KeyMetadata.KeyId, md.KeyId)
  local keys = kms:ListKeys{}.Keys
  lu.assertEquals(keys, { { KeyId = md.KeyId, KeyArn = md.Arn } })
  lu.assertEquals(kms:ListResourceTags{ KeyId = md.KeyId }.Tags, { { TagKey = "fo:token", TagValue = "t1" } })
  -- keys are regional: the standby region does not know it
  local standby = sim:client("kms", { region = "eu-central-1", max_attempts = 1 })
  local e = err_of(standby.DescribeKey, standby, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "NotFoundException")
  lu.assertStrContains(e.message, "Key 'arn:aws:kms:eu-central-1:" .. ACCOUNT
    .. ":key/" .. md.KeyId .. "' does not exist")
  lu.assertEquals(err_of(standby.DescribeKey, standby, { KeyId = md.Arn }).code, "NotFoundException")
end

function TestKmsKeys.test_only_symmetric_keys_and_clear_refusals()
  local _, kms = setup()
  local e = err_of(kms.CreateKey, kms, { KeySpec = "RSA_2048", KeyUsage = "SIGN_VERIFY" })
  lu.assertEquals(e.code, "UnsupportedOperationException")
  lu.assertStrContains(e.message, "RSA_2048")
  e = err_of(kms.CreateKey, kms, { KeyUsage = "SIGN_VERIFY" })
  lu.assertEquals(e.code, "ValidationException")
  e = err_of(kms.CreateKey, kms, { Tags = { { TagKey = "aws:x", TagValue = "1" } } })
  lu.assertEquals(e.code, "TagException")
  e = err_of(kms.CreateKey, kms, { Policy = "{not json" })
  lu.assertEquals(e.code, "MalformedPolicyDocumentException")
  lu.assertEquals(#kms:ListKeys{}.Keys, 0)
end

function TestKmsKeys.test_disable_enable_and_use_while_disabled()
  local _, kms = setup()
  local md = new_key(kms)
  kms:DisableKey{ KeyId = md.KeyId }
  local d = kms:DescribeKey{ KeyId = md.KeyId }.KeyMetadata
  lu.assertEquals({ d.KeyState, d.Enabled }, { "Disabled", false })
  local e = err_of(kms.Encrypt, kms, { KeyId = md.KeyId, Plaintext = "x" })
  lu.assertEquals(e.code, "DisabledException")
  lu.assertStrContains(e.message, md.Arn .. " is disabled.")
  kms:EnableKey{ KeyId = md.KeyId }
  lu.assertEquals(kms:Encrypt{ KeyId = md.KeyId, Plaintext = "x" }.KeyId, md.Arn)
end

function TestKmsKeys.test_schedule_deletion_window_use_cancel_and_end()
  local sim, kms = setup()
  local md = new_key(kms)
  kms:CreateAlias{ AliasName = "alias/orders", TargetKeyId = md.KeyId }
  for _, days in ipairs({ 6, 31 }) do
    local e = err_of(kms.ScheduleKeyDeletion, kms, { KeyId = md.KeyId, PendingWindowInDays = days })
    lu.assertEquals(e.code, "ValidationException")
  end
  local now = sim:now()
  local s = kms:ScheduleKeyDeletion{ KeyId = md.KeyId }
  lu.assertEquals({ s.KeyId, s.KeyState, s.PendingWindowInDays }, { md.Arn, "PendingDeletion", 30 })
  lu.assertAlmostEquals(s.DeletionDate - now, 30 * 86400, 1)
  local e = err_of(kms.Encrypt, kms, { KeyId = "alias/orders", Plaintext = "x" })
  lu.assertEquals(e.code, "KMSInvalidStateException")
  lu.assertStrContains(e.message, "is pending deletion")
  e = err_of(kms.EnableKey, kms, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "KMSInvalidStateException")
  e = err_of(kms.ScheduleKeyDeletion, kms, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "KMSInvalidStateException")
  -- cancelling leaves the key disabled, as AWS does
  lu.assertEquals(kms:CancelKeyDeletion{ KeyId = md.KeyId }.KeyId, md.Arn)
  local d = kms:DescribeKey{ KeyId = md.KeyId }.KeyMetadata
  lu.assertEquals({ d.KeyState, d.Enabled, d.DeletionDate }, { "Disabled", false, nil })
  e = err_of(kms.CancelKeyDeletion, kms, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "KMSInvalidStateException")
  -- the shortest window, then the window ends on the virtual clock: key and alias are gone
  kms:ScheduleKeyDeletion{ KeyId = md.KeyId, PendingWindowInDays = 7 }
  sim:advance(7 * 86400 - 10)
  lu.assertEquals(kms:DescribeKey{ KeyId = md.KeyId }.KeyMetadata.KeyState, "PendingDeletion")
  sim:advance(20)
  e = err_of(kms.DescribeKey, kms, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "NotFoundException")
  lu.assertEquals(kms:ListKeys{}.Keys, {})
  for _, a in ipairs(kms:ListAliases{}.Aliases) do lu.assertNotEquals(a.AliasName, "alias/orders") end
end

TestKmsAliases = {}

function TestKmsAliases.test_create_update_delete_and_rules()
  local _, kms = setup()
  local a, b = new_key(kms), new_key(kms, { Description = "second" })
  kms:CreateAlias{ AliasName = "alias/app", TargetKeyId = a.KeyId }
  lu.assertEquals(kms:DescribeKey{ KeyId = "alias/app" }.KeyMetadata.KeyId, a.KeyId)
  lu.assertEquals(kms:DescribeKey{ KeyId = "arn:aws:kms:eu-south-1:" .. ACCOUNT .. ":alias/app" }
    .KeyMetadata.KeyId, a.KeyId)
  local e = err_of(kms.CreateAlias, kms, { AliasName = "alias/app", TargetKeyId = b.KeyId })
  lu.assertEquals(e.code, "AlreadyExistsException")
  e = err_of(kms.CreateAlias, kms, { AliasName = "app2", TargetKeyId = b.KeyId })
  lu.assertEquals(e.code, "ValidationException")
  lu.assertStrContains(e.message, 'Alias must start with the prefix "alias/"')
  e = err_of(kms.CreateAlias, kms, { AliasName = "alias/aws/mine", TargetKeyId = b.KeyId })
  lu.assertEquals(e.code, "NotAuthorizedException")
  e = err_of(kms.CreateAlias, kms, { AliasName = "alias/other", TargetKeyId = "alias/app" })
  lu.assertEquals(e.code, "ValidationException")
  kms:UpdateAlias{ AliasName = "alias/app", TargetKeyId = b.KeyId }
  lu.assertEquals(kms:DescribeKey{ KeyId = "alias/app" }.KeyMetadata.KeyId, b.KeyId)
  local mine = kms:ListAliases{ KeyId = b.KeyId }.Aliases
  lu.assertEquals(#mine, 1)
  lu.assertEquals({ mine[1].AliasName, mine[1].TargetKeyId, mine[1].AliasArn },
    { "alias/app", b.KeyId, "arn:aws:kms:eu-south-1:" .. ACCOUNT .. ":alias/app" })
  lu.assertEquals(kms:ListAliases{ KeyId = a.KeyId }.Aliases, {})
  kms:DeleteAlias{ AliasName = "alias/app" }
  e = err_of(kms.DeleteAlias, kms, { AliasName = "alias/app" })
  lu.assertEquals(e.code, "NotFoundException")
  lu.assertStrContains(e.message, "Alias arn:aws:kms:eu-south-1:" .. ACCOUNT .. ":alias/app is not found.")
  e = err_of(kms.DeleteAlias, kms, { AliasName = "alias/aws/s3" })
  lu.assertEquals(e.code, "NotAuthorizedException")
end

function TestKmsAliases.test_aws_managed_keys_are_made_on_first_use()
  local _, kms = setup()
  local listed = {}
  for _, a in ipairs(kms:ListAliases{}.Aliases) do listed[a.AliasName] = a end
  lu.assertNotNil(listed["alias/aws/s3"])
  lu.assertNil(listed["alias/aws/s3"].TargetKeyId)
  local md = kms:DescribeKey{ KeyId = "alias/aws/s3" }.KeyMetadata
  lu.assertEquals({ md.KeyManager, md.KeyState }, { "AWS", "Enabled" })
  lu.assertEquals(kms:DescribeKey{ KeyId = "alias/aws/s3" }.KeyMetadata.KeyId, md.KeyId)
  lu.assertTrue(kms:GetKeyRotationStatus{ KeyId = md.KeyId }.KeyRotationEnabled)
  -- its policy lets the account use it only through S3: direct use is refused
  local e = err_of(kms.Encrypt, kms, { KeyId = "alias/aws/s3", Plaintext = "x" })
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "is not authorized to perform: kms:Encrypt on resource: " .. md.Arn)
  e = err_of(kms.ScheduleKeyDeletion, kms, { KeyId = md.KeyId })
  lu.assertEquals(e.code, "AccessDeniedException")
end

TestKmsPolicy = {}

function TestKmsPolicy.test_default_policy_get_put_and_lockout_check()
  local _, kms = setup()
  local md = new_key(kms)
  local got = kms:GetKeyPolicy{ KeyId = md.KeyId }
  lu.assertEquals(got.PolicyName, "default")
  local doc = json.decode(got.Policy)
  lu.assertEquals(doc.Statement[1].Principal.AWS, "arn:aws:iam::" .. ACCOUNT .. ":root")
  lu.assertEquals(doc.Statement[1].Action, "kms:*")
  lu.assertEquals(kms:ListKeyPolicies{ KeyId = md.KeyId }.PolicyNames, { "default" })
  local e = err_of(kms.GetKeyPolicy, kms, { KeyId = md.KeyId, PolicyName = "other" })
  lu.assertEquals(e.code, "NotFoundException")
  -- a policy that would lock the caller out is refused unless the caller bypasses the check
  local lockout = json.encode({ Version = "2012-10-17", Statement = { { Effect = "Allow",
    Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":role/ops" }, Action = "kms:*", Resource = "*" } } })
  e = err_of(kms.PutKeyPolicy, kms, { KeyId = md.KeyId, Policy = lockout })
  lu.assertEquals(e.code, "MalformedPolicyDocumentException")
  lu.assertStrContains(e.message, "will not allow you to update the key policy")
  kms:PutKeyPolicy{ KeyId = md.KeyId, Policy = lockout, BypassPolicyLockoutSafetyCheck = true }
  -- and now the default caller may neither read the policy nor use the key
  e = err_of(kms.Encrypt, kms, { KeyId = md.KeyId, Plaintext = "x" })
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "because no resource-based policy allows the kms:Encrypt action")
  lu.assertEquals(err_of(kms.GetKeyPolicy, kms, { KeyId = md.KeyId }).code, "AccessDeniedException")
end

function TestKmsPolicy.test_explicit_deny_wins()
  local _, kms = setup()
  local policy = json.encode({ Version = "2012-10-17", Statement = {
    { Effect = "Allow", Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":root" }, Action = "kms:*", Resource = "*" },
    { Effect = "Deny", Principal = { AWS = "*" }, Action = "kms:Decrypt", Resource = "*",
      Condition = { StringNotEquals = { ["kms:EncryptionContext:app"] = "orders" } } } } })
  local md = new_key(kms, { Policy = policy })
  local ok = kms:Encrypt{ KeyId = md.KeyId, Plaintext = "p", EncryptionContext = { app = "orders" } }
  lu.assertEquals(kms:Decrypt{ CiphertextBlob = ok.CiphertextBlob, EncryptionContext = { app = "orders" } }.Plaintext, "p")
  local other = kms:Encrypt{ KeyId = md.KeyId, Plaintext = "p", EncryptionContext = { app = "billing" } }
  local e = err_of(kms.Decrypt, kms, { CiphertextBlob = other.CiphertextBlob, EncryptionContext = { app = "billing" } })
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "with an explicit deny in a resource-based policy")
end

function TestKmsPolicy.test_rotation_status()
  local sim, kms = setup()
  local md = new_key(kms)
  lu.assertFalse(kms:GetKeyRotationStatus{ KeyId = md.KeyId }.KeyRotationEnabled)
  kms:EnableKeyRotation{ KeyId = md.KeyId, RotationPeriodInDays = 180 }
  local st = kms:GetKeyRotationStatus{ KeyId = md.KeyId }
  lu.assertEquals({ st.KeyRotationEnabled, st.RotationPeriodInDays, st.KeyId }, { true, 180, md.Arn })
  -- AWS's range for the period is 90-2560 days (the model's, checked by the simulator)
  for _, days in ipairs({ 89, 2561 }) do
    local ok, e = pcall(sim.invoke, sim, "kms", "eu-south-1", "EnableKeyRotation",
      { KeyId = md.KeyId, RotationPeriodInDays = days })
    lu.assertFalse(ok)
    lu.assertEquals(e.code, "ValidationException")
    lu.assertStrContains(e.message, days < 90 and "minimum 90" or "maximum 2560")
  end
  lu.assertEquals(kms:GetKeyRotationStatus{ KeyId = md.KeyId }.RotationPeriodInDays, 180)
  kms:DisableKeyRotation{ KeyId = md.KeyId }
  lu.assertFalse(kms:GetKeyRotationStatus{ KeyId = md.KeyId }.KeyRotationEnabled)
  kms:DisableKey{ KeyId = md.KeyId }
  lu.assertEquals(err_of(kms.EnableKeyRotation, kms, { KeyId = md.KeyId }).code, "DisabledException")
end

TestKmsCrypto = {}

function TestKmsCrypto.test_ciphertext_is_encrypted_and_bound_to_context()
  local _, kms = setup()
  local md = new_key(kms)
  local secret = "the plaintext of order 42"
  local c = kms:Encrypt{ KeyId = md.KeyId, Plaintext = secret, EncryptionContext = { order = "42" } }
  lu.assertEquals({ c.KeyId, c.EncryptionAlgorithm }, { md.Arn, "SYMMETRIC_DEFAULT" })
  lu.assertNil(c.CiphertextBlob:find(secret, 1, true))
  lu.assertNil(c.CiphertextBlob:find("order 42", 1, true))
  -- two encryptions of the same plaintext differ (a fresh nonce each)
  local c2 = kms:Encrypt{ KeyId = md.KeyId, Plaintext = secret, EncryptionContext = { order = "42" } }
  lu.assertNotEquals(c2.CiphertextBlob, c.CiphertextBlob)
  -- no KeyId needed to decrypt
  local d = kms:Decrypt{ CiphertextBlob = c.CiphertextBlob, EncryptionContext = { order = "42" } }
  lu.assertEquals({ d.Plaintext, d.KeyId }, { secret, md.Arn })
  for _, ctx in ipairs({ { order = "43" }, {}, { order = "42", extra = "1" } }) do
    local e = err_of(kms.Decrypt, kms, { CiphertextBlob = c.CiphertextBlob, EncryptionContext = ctx })
    lu.assertEquals(e.code, "InvalidCiphertextException")
  end
  -- a changed byte fails the tag check
  local bytes = c.CiphertextBlob
  local i = #bytes - 3
  local bad = bytes:sub(1, i - 1) .. string.char(bytes:byte(i) ~ 1) .. bytes:sub(i + 1)
  lu.assertEquals(err_of(kms.Decrypt, kms, { CiphertextBlob = bad, EncryptionContext = { order = "42" } }).code,
    "InvalidCiphertextException")
  lu.assertEquals(err_of(kms.Decrypt, kms, { CiphertextBlob = "not a blob" }).code, "InvalidCiphertextException")
  -- naming another key than the one that encrypted it
  local other = new_key(kms)
  local e = err_of(kms.Decrypt, kms, { CiphertextBlob = c.CiphertextBlob, KeyId = other.KeyId,
    EncryptionContext = { order = "42" } })
  lu.assertEquals(e.code, "IncorrectKeyException")
end

function TestKmsCrypto.test_data_keys_and_reencrypt()
  local _, kms = setup()
  local a, b = new_key(kms), new_key(kms)
  local dk = kms:GenerateDataKey{ KeyId = a.KeyId, KeySpec = "AES_256", EncryptionContext = { t = "1" } }
  lu.assertEquals(#dk.Plaintext, 32)
  lu.assertEquals(kms:Decrypt{ CiphertextBlob = dk.CiphertextBlob, EncryptionContext = { t = "1" } }.Plaintext, dk.Plaintext)
  lu.assertEquals(#kms:GenerateDataKey{ KeyId = a.KeyId, NumberOfBytes = 16 }.Plaintext, 16)
  local e = err_of(kms.GenerateDataKey, kms, { KeyId = a.KeyId })
  lu.assertEquals(e.code, "ValidationException")
  local np = kms:GenerateDataKeyWithoutPlaintext{ KeyId = a.KeyId, KeySpec = "AES_128" }
  lu.assertNil(np.Plaintext)
  lu.assertEquals(#kms:Decrypt{ CiphertextBlob = np.CiphertextBlob }.Plaintext, 16)
  local re = kms:ReEncrypt{ CiphertextBlob = dk.CiphertextBlob, SourceEncryptionContext = { t = "1" },
    DestinationKeyId = b.KeyId, DestinationEncryptionContext = { t = "2" } }
  lu.assertEquals({ re.SourceKeyId, re.KeyId }, { a.Arn, b.Arn })
  local d = kms:Decrypt{ CiphertextBlob = re.CiphertextBlob, EncryptionContext = { t = "2" } }
  lu.assertEquals({ d.Plaintext, d.KeyId }, { dk.Plaintext, b.Arn })
  e = err_of(kms.Encrypt, kms, { KeyId = a.KeyId, Plaintext = "x", DryRun = true })
  lu.assertEquals(e.code, "DryRunOperationException")
end

function TestKmsCrypto.test_key_material_survives_a_saved_state()
  local dir = os.tmpname(); os.remove(dir)
  local file = dir .. ".sim.json"
  local sim = simlib.new{ seed = 7, file = file }
  local kms = sim:client("kms", { region = "eu-south-1" })
  local md = new_key(kms)
  local c = kms:Encrypt{ KeyId = md.KeyId, Plaintext = "kept" }.CiphertextBlob
  local again = simlib.new{ file = file }:client("kms", { region = "eu-south-1" })
  lu.assertEquals(again:Decrypt{ CiphertextBlob = c }.Plaintext, "kept")
  -- the state (snapshot and log) holds the key material, never the plaintext
  local log = require("fo.sim.store_log").path(file)
  for _, path in ipairs({ file, log }) do
    local f = assert(io.open(path)); local text = f:read("a"); f:close()
    lu.assertNil(text:find("kept", 1, true), path)
  end
  os.remove(file); os.remove(log)
end

function TestKmsCrypto.test_managed_key_made_by_a_read_is_saved()
  local file = os.tmpname()
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
  local kms = simlib.new{ seed = 7, file = file }:client("kms", { region = "eu-south-1" })
  local id = kms:DescribeKey{ KeyId = "alias/aws/sns" }.KeyMetadata.KeyId
  local again = simlib.new{ file = file }:client("kms", { region = "eu-south-1" })
  lu.assertEquals(again:DescribeKey{ KeyId = "alias/aws/sns" }.KeyMetadata.KeyId, id)
  os.remove(file); os.remove(require("fo.sim.store_log").path(file))
end

TestKmsGrants = {}

local ROLE = "arn:aws:iam::" .. ACCOUNT .. ":role/worker"
local WORKER = { access_key = "AKIAWORKER0000000001", secret_key = "worker/secret", arn = ROLE }

-- A key only the account's root may administer, plus a role principal that has no policy
-- statement: only grants let it act.
local function granted_setup()
  local sim = simlib.new{ seed = 9, keys = { WORKER } }
  local kms = sim:client("kms", { region = "eu-south-1", max_attempts = 1 })
  local worker = sim:client("kms", { region = "eu-south-1", max_attempts = 1,
    access_key = WORKER.access_key, secret_key = WORKER.secret_key })
  local policy = json.encode({ Version = "2012-10-17", Statement = { { Effect = "Allow",
    Principal = { AWS = "arn:aws:iam::" .. ACCOUNT .. ":user/fo-sim" }, Action = "kms:*", Resource = "*" } } })
  local md = new_key(kms, { Policy = policy })
  return sim, kms, worker, md
end

function TestKmsGrants.test_grant_adds_permissions_within_its_constraints()
  local _, kms, worker, md = granted_setup()
  local e = err_of(worker.Encrypt, worker, { KeyId = md.KeyId, Plaintext = "x" })
  lu.assertEquals(e.code, "AccessDeniedException")
  lu.assertStrContains(e.message, "User: " .. ROLE)
  local g = kms:CreateGrant{ KeyId = md.KeyId, GranteePrincipal = ROLE, Operations = { "Encrypt", "Decrypt" },
    Constraints = { EncryptionContextSubset = { app = "orders" } }, Name = "worker" }
  lu.assertStrMatches(g.GrantId, ("%x"):rep(64))
  lu.assertNotNil(g.GrantToken)
  -- same name, same grant: the same id (idempotent)
  lu.assertEquals(kms:CreateGrant{ KeyId = md.KeyId, GranteePrincipal = ROLE, Operations = { "Decrypt", "Encrypt" },
    Constraints = { EncryptionContextSubset = { app = "orders" } }, Name = "worker" }.GrantId, g.GrantId)
  local c = worker:Encrypt{ KeyId = md.KeyId, Plaintext = "x", EncryptionContext = { app = "orders", n = "1" } }
  lu.assertEquals(worker:Decrypt{ CiphertextBlob = c.CiphertextBlob,
    EncryptionContext = { app = "orders", n = "1" } }.Plaintext, "x")
  -- outside the constraint, or an operation the grant does not name
  lu.assertEquals(err_of(worker.Encrypt, worker, { KeyId = md.KeyId, Plaintext = "x",
    EncryptionContext = { app = "billing" } }).code, "AccessDeniedException")
  lu.assertEquals(err_of(worker.GenerateDataKey, worker, { KeyId = md.KeyId, NumberOfBytes = 8,
    EncryptionContext = { app = "orders" } }).code, "AccessDeniedException")
  local listed = kms:ListGrants{ KeyId = md.KeyId }.Grants
  lu.assertEquals(#listed, 1)
  lu.assertEquals({ listed[1].GrantId, listed[1].GranteePrincipal, listed[1].KeyId, listed[1].IssuingAccount, listed[1].Name },
    { g.GrantId, ROLE, md.Arn, "arn:aws:iam::" .. ACCOUNT .. ":root", "worker" })
  lu.assertEquals(listed[1].Constraints, { EncryptionContextSubset = { app = "orders" } })
  -- revoked: the worker loses access again
  kms:RevokeGrant{ KeyId = md.KeyId, GrantId = g.GrantId }
  lu.assertEquals(kms:ListGrants{ KeyId = md.KeyId }.Grants, {})
  lu.assertEquals(err_of(worker.Encrypt, worker, { KeyId = md.KeyId, Plaintext = "x",
    EncryptionContext = { app = "orders" } }).code, "AccessDeniedException")
end

function TestKmsGrants.test_equals_constraint_and_retire()
  local _, kms, worker, md = granted_setup()
  local g = kms:CreateGrant{ KeyId = md.KeyId, GranteePrincipal = ROLE, Operations = { "GenerateDataKey" },
    RetiringPrincipal = ROLE, Constraints = { EncryptionContextEquals = { app = "orders" } } }
  lu.assertEquals(#worker:GenerateDataKey{ KeyId = md.KeyId, NumberOfBytes = 8,
    EncryptionContext = { app = "orders" } }.Plaintext, 8)
  lu.assertEquals(err_of(worker.GenerateDataKey, worker, { KeyId = md.KeyId, NumberOfBytes = 8,
    EncryptionContext = { app = "orders", more = "1" } }).code, "AccessDeniedException")
  lu.assertEquals(err_of(worker.RetireGrant, worker, { GrantToken = "AQpAM2nope" }).code, "InvalidGrantTokenException")
  local retirable = kms:ListRetirableGrants{ RetiringPrincipal = ROLE }.Grants
  lu.assertEquals(#retirable, 1)
  lu.assertEquals({ retirable[1].GrantId, retirable[1].KeyId }, { g.GrantId, md.Arn })
  lu.assertEquals(kms:ListRetirableGrants{ RetiringPrincipal = "arn:aws:iam::" .. ACCOUNT .. ":role/other" }.Grants, {})
  worker:RetireGrant{ GrantToken = g.GrantToken }
  lu.assertEquals(kms:ListGrants{ KeyId = md.KeyId }.Grants, {})
  -- a grant the worker may not retire
  local g2 = kms:CreateGrant{ KeyId = md.KeyId, GranteePrincipal = ROLE, Operations = { "Encrypt" } }
  lu.assertEquals(err_of(worker.RetireGrant, worker, { KeyId = md.KeyId, GrantId = g2.GrantId }).code,
    "AccessDeniedException")
  kms:RetireGrant{ KeyId = md.KeyId, GrantId = g2.GrantId }
  lu.assertEquals(err_of(kms.RevokeGrant, kms, { KeyId = md.KeyId, GrantId = g2.GrantId }).code, "NotFoundException")
end

os.exit(lu.LuaUnit.run())
