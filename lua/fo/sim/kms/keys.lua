-- The simulator's KMS keys and aliases: where they live (per account and region, as in
-- AWS), how a KeyId names one (key id, key ARN, alias name, alias ARN), the AWS managed keys
-- made on first use (alias/aws/s3 ...), the end of a deletion window, and KeyMetadata.
local crypto = require "fo.crypto"
local policy = require "fo.sim.kms.policy"
local records = require "fo.sim.records"

local M = {}

-- AWS managed keys the simulator makes on first use: alias → the service that uses it
-- (its kms:ViaService prefix) and its description.
M.MANAGED = {
  ["alias/aws/s3"] = { service = "s3", what = "S3 objects" },
  ["alias/aws/sns"] = { service = "sns", what = "SNS data" },
  ["alias/aws/dynamodb"] = { service = "dynamodb", what = "Amazon DynamoDB tables" },
  ["alias/aws/ebs"] = { service = "ec2", what = "EBS volumes" },
  ["alias/aws/ssm"] = { service = "ssm", what = "SSM parameters" },
  ["alias/aws/sqs"] = { service = "sqs", what = "SQS queues" },
  ["alias/aws/secretsmanager"] = { service = "secretsmanager", what = "Secrets Manager secrets" },
  ["alias/aws/lambda"] = { service = "lambda", what = "Lambda functions" },
  ["alias/aws/rds"] = { service = "rds", what = "RDS databases" },
}

M.DAY = 86400

--- The KMS state of `account` in `region` (keys by id, aliases by name).
function M.db(sim, account, region)
  local db = sim.store:db(account, region, "kms")
  db.keys = db.keys or {}
  db.aliases = db.aliases or {}
  return db
end

function M.key_arn(region, account, id)
  return ("arn:aws:kms:%s:%s:key/%s"):format(region, account, id)
end

function M.alias_arn(region, account, name)
  return ("arn:aws:kms:%s:%s:%s"):format(region, account, name)
end

--- Forgets the keys whose deletion window has ended at `now` (and their aliases), as KMS
--- deletes them then.
function M.purge(db, now)
  for id, k in pairs(db.keys) do
    if k.KeyState == "PendingDeletion" and k.DeletionDate and now >= k.DeletionDate then
      db.keys[id] = nil
      for name, a in pairs(db.aliases) do
        if a.TargetKeyId == id then db.aliases[name] = nil end
      end
    end
  end
end

local function uuid(ctx)
  local h = ctx:chars(32, "0123456789abcdef")
  return ("%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
    ("89ab"):sub(1 + (h:byte(13) % 4), 1 + (h:byte(13) % 4)), h:sub(18, 20), h:sub(21, 32))
end

--- A new key in db (ctx: account and region of the call, time, ids). f: Description,
--- Policy (JSON text), Tags, KeyManager ("CUSTOMER" default, "AWS").
function M.create(ctx, db, account, region, f)
  local id = uuid(ctx)
  local k = {
    KeyId = id, Arn = M.key_arn(region, account, id), AWSAccountId = account,
    CreationDate = ctx:now(), Enabled = true, Description = f.Description or "",
    KeyUsage = "ENCRYPT_DECRYPT", KeyState = "Enabled", Origin = "AWS_KMS",
    KeyManager = f.KeyManager or "CUSTOMER", KeySpec = "SYMMETRIC_DEFAULT",
    Policy = f.Policy or policy.default(account), Tags = records.copy(f.Tags or {}),
    rotation = f.KeyManager == "AWS", RotationPeriodInDays = 365,
    -- the key material: only the simulator holds it (never in an answer)
    material = crypto.base64_encode(crypto.random(32)),
    grants = {}, seq = records.next_seq(db),
  }
  db.keys[id] = k
  return k
end

-- The AWS managed key of alias `name`, made on first use.
local function managed(ctx, db, account, region, name)
  local m = M.MANAGED[name]
  local a = db.aliases[name]
  if a then return db.keys[a.TargetKeyId] end
  local k = M.create(ctx, db, account, region, { KeyManager = "AWS",
    Description = ("Default key that protects my %s when no other key is defined"):format(m.what),
    Policy = policy.managed(account, region, m.service) })
  local t = ctx:now()
  db.aliases[name] = { AliasName = name, TargetKeyId = k.KeyId, CreationDate = t,
    LastUpdatedDate = t }
  ctx.changed_state = true -- made by a read (DescribeKey): the sim saves it all the same
  return k
end

local function not_found(msg) return nil, "NotFoundException", msg end

--- The key `ref` names (key id, key ARN, alias/name, alias ARN) for a call in `region` of
--- `account` (ctx: time and ids): the key record, its db; or nil, error code and message
--- as KMS answers them. An alias/aws/... of a known service makes its AWS managed key.
function M.resolve(ctx, account, region, ref)
  if type(ref) ~= "string" or ref == "" then return not_found("Invalid keyId ''") end
  local r_region, r_account, rest = ref:match("^arn:aws:kms:([^:]*):(%d*):(.+)$")
  if r_region then
    if r_region ~= region then return not_found("Invalid arn " .. r_region) end
    account = r_account
    if not (rest:match("^key/") or rest:match("^alias/")) then
      return not_found(("Invalid keyId '%s'"):format(ref))
    end
  else
    rest = ref
  end
  local db = M.db(ctx.sim, account, region)
  M.purge(db, ctx:now())
  if rest:match("^alias/") then
    if M.MANAGED[rest] then return managed(ctx, db, account, region, rest), db end
    local a = db.aliases[rest]
    if not a then
      return not_found(("Alias %s is not found."):format(M.alias_arn(region, account, rest)))
    end
    return db.keys[a.TargetKeyId], db
  end
  local id = rest:match("^key/(.+)$") or rest
  if not id:match("^%x+%-%x+%-%x+%-%x+%-%x+$") and not r_region then
    return not_found(("Invalid keyId '%s'"):format(ref))
  end
  local k = db.keys[id]
  if not k then
    return not_found(("Key '%s' does not exist"):format(M.key_arn(region, account, id)))
  end
  return k, db
end

--- KeyMetadata of key record k.
function M.metadata(k)
  return {
    AWSAccountId = k.AWSAccountId, KeyId = k.KeyId, Arn = k.Arn, CreationDate = k.CreationDate,
    Enabled = k.Enabled, Description = k.Description, KeyUsage = k.KeyUsage,
    KeyState = k.KeyState, DeletionDate = k.DeletionDate, Origin = k.Origin,
    KeyManager = k.KeyManager, CustomerMasterKeySpec = k.KeySpec, KeySpec = k.KeySpec,
    EncryptionAlgorithms = { "SYMMETRIC_DEFAULT" }, MultiRegion = false,
  }
end

--- Key records of db in creation order.
function M.sorted(db)
  local out = {}
  for _, k in pairs(db.keys) do out[#out + 1] = k end
  table.sort(out, function(a, b) return a.seq < b.seq end)
  return out
end

return M
