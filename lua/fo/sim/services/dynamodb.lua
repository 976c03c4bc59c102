-- DynamoDB for the simulator: tables with their lifecycle (CREATING → ACTIVE,
-- DELETING → gone) on the sim's clock, global tables version 2019.11.21 (replicas in
-- other regions' state, created and removed through UpdateTable ReplicaUpdates), streams,
-- SSE-KMS, billing modes, point-in-time recovery, tags, and items (PutItem, GetItem,
-- UpdateItem, DeleteItem, Query with expressions) replicated to every replica.
--
-- State (ctx.db, per region): tables[name] = the table record below; kms_keys maps key
-- aliases to fabricated key ids so an alias always resolves to the same key ARN.
-- Statuses are not stored but derived from timestamps each time (status()), so virtual
-- time (sim:advance) and real time both move a table along without any scheduled work.
local V = require "fo.sim.services.dynamodb_values"
local X = require "fo.sim.services.dynamodb_expr"
local regions = require "fo.sim.regions"
local kms_use = require "fo.sim.kms_use"
local kms_keys = require "fo.sim.kms.keys"
local kms_access = require "fo.sim.kms.access"

local M = {}

--- How long (seconds of the sim's clock) each transition takes. AWS takes seconds for a
--- small table and minutes for a replica; these keep tests short while still making
--- callers wait (the TableExists waiter sees CREATING first). Tests may change them.
M.TIMING = {
  table_create = 2,     -- CREATING → ACTIVE
  table_delete = 2,     -- DELETING → gone
  table_update = 1,     -- UPDATING → ACTIVE after a stream/SSE/billing change
  replica_create = 10,  -- replica CREATING → ACTIVE (source table UPDATING meanwhile)
  replica_delete = 5,   -- replica DELETING → gone
  -- A write reaches the other replicas this long after it is made (AWS: typically within
  -- a second); 0: at once. A sim's own `_replication_lag` (set by fo-run --drill's
  -- traffic) overrides it.
  replication_lag = 0,
}

-- Source regions refuse DeleteTable this long after they sourced a new replica.
M.SOURCE_DELETE_BLOCK = 24 * 3600
M.GLOBAL_TABLE_VERSION = "2019.11.21"
M.TAGS_PAGE = 10 -- ListTagsOfResource page size (AWS pages tags; the size is unpublished)
M.MAX_TAGS = 50

local function fail(ctx, code, msg) ctx:fail(code, msg) end
local function invalid(ctx, msg) ctx:fail("ValidationException", msg) end
local function pinvalid(ctx, msg)
  ctx:fail("ValidationException", "One or more parameter values were invalid: " .. msg)
end
local function failer(ctx) return function(code, msg) ctx:fail(code, msg) end end

-- Tables -------------------------------------------------------------------------------

local function tables_of(db)
  db.tables = db.tables or {}
  return db.tables
end

--- The status of a table record at time `now`: CREATING, ACTIVE, UPDATING, DELETING or
--- "GONE" (deleted: the record is dropped by lookup()).
local function status(rec, now)
  if rec.gone_at and now >= rec.gone_at then return "GONE" end
  if rec.deleting then return "DELETING" end
  if now < rec.active_at then return "CREATING" end
  if rec.update_until and now < rec.update_until then return "UPDATING" end
  return "ACTIVE"
end
M.status = status

-- The table `name` in `region`'s state (default the call's), or nil; drops deleted ones.
-- Replicated writes that have arrived by now (rec.incoming: {due=, k=, item=, from=}, in
-- write order). A write still in its source region when that region went down arrives when
-- the region is back (global tables replicate what the failed region holds once it
-- recovers); until then readers of this replica do not see it.
local function settle_incoming(ctx, rec)
  local list = rec.incoming
  if not list then return end
  local now, keep = ctx:now(), {}
  for _, w in ipairs(list) do
    local arrives = w.due
    local started, ended = ctx.sim.knobs:outage_times_of(w.from)
    if started and started <= w.due and (not ended or ended > w.due) then
      arrives = ended or math.huge
    end
    if arrives <= now then rec.items[w.k] = w.item else keep[#keep + 1] = w end
  end
  rec.incoming = #keep > 0 and keep or nil
end

local function lookup(ctx, name, region)
  local db = region and region ~= ctx.region and ctx:db_of("dynamodb", region) or ctx.db
  local t = tables_of(db)
  local rec = t[name]
  if rec and status(rec, ctx:now()) == "GONE" then
    t[name] = nil
    return nil
  end
  if rec then settle_incoming(ctx, rec) end
  return rec
end

local function not_found(ctx, name)
  fail(ctx, "ResourceNotFoundException", ("Requested resource not found: Table: %s not found")
    :format(name))
end

-- The table for DescribeTable/UpdateTable/DeleteTable (named in the message when absent).
local function table_or_fail(ctx, name)
  local rec = lookup(ctx, name)
  if not rec then not_found(ctx, name) end
  return rec
end

-- The table for item operations: AWS answers a bare "Requested resource not found" for a
-- table that does not exist or is not yet (or no longer) usable.
local function table_for_items(ctx, name)
  local rec = lookup(ctx, name)
  if not rec then fail(ctx, "ResourceNotFoundException", "Requested resource not found") end
  local st = status(rec, ctx:now())
  if st == "CREATING" or st == "DELETING" then
    fail(ctx, "ResourceNotFoundException", "Requested resource not found")
  end
  return rec
end

local function iso_millis(t)
  local s = math.floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. (".%03d"):format(math.floor((t - s) * 1000))
end

local function uuid(ctx)
  local h = ctx:chars(32, "0123456789abcdef")
  return ("%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16),
    ("89ab"):sub(h:byte(17) % 4 + 1, h:byte(17) % 4 + 1), h:sub(18, 20), h:sub(21, 32))
end

local function table_arn(ctx, name, region)
  return ctx:arn("table/" .. name, { region = region })
end

-- KMS ---------------------------------------------------------------------------------
-- A table (each replica in its region) is encrypted under the AWS owned key (no
-- SSEDescription), the AWS managed key aws/dynamodb, or a customer managed key of its own
-- region. DynamoDB asks KMS as the caller, through dynamodb.<region>.amazonaws.com, when it
-- puts a table under a key (DescribeKey, then CreateGrant for the grant it works with), so
-- the key must exist in that region, be enabled, and its policy must let the caller do
-- both via DynamoDB. AWS answers a missing, disabled or pending key with a
-- ValidationException naming KMS's error, and a refusing policy with AccessDeniedException.

local function kms_region(id)
  return type(id) == "string" and id:match("^arn:aws:kms:([^:]*):")
end

-- The key ARN for a KMSMasterKeyId (key id, key ARN, alias name or alias ARN; nil = the
-- AWS managed key aws/dynamodb) in `region`, after KMS's checks for the caller.
local function use_key(ctx, id, region)
  local r = kms_region(id)
  if r and r ~= region then
    pinvalid(ctx, ("KMSMasterKeyId %s is not in region %s: a table or replica is encrypted "
      .. "with a key of its own region"):format(id, region))
  end
  local arn
  for _, action in ipairs({ "kms:DescribeKey", "kms:CreateGrant" }) do
    local got, _, msg, _, code = kms_use.use(ctx, { key = id, action = action,
      service = "dynamodb.amazonaws.com", region = region })
    if not got then
      if code == "AccessDeniedException" then
        fail(ctx, "AccessDeniedException", "KMS key access denied error: " .. msg)
      end
      invalid(ctx, ("KMS validation error: %s: %s"):format(code, msg))
    end
    arn = got
  end
  return arn
end

-- When the key of `sse` (a customer managed key in `region`) is unusable (disabled,
-- pending deletion, deleted): KMS's error code; nil while it is usable. AWS managed keys
-- cannot be disabled.
local function key_unusable(ctx, sse, region)
  if not sse or not sse.custom then return nil end
  local k, code = kms_keys.resolve(ctx, ctx.account, region, sse.key_arn)
  if not k then return code end
  return (kms_access.usable(k))
end

-- Records (or clears) when DynamoDB saw the table's key unusable: SSEDescription's
-- InaccessibleEncryptionDateTime. True while it is.
local function inaccessible(ctx, rec, region)
  if not key_unusable(ctx, rec.sse, region) then
    if rec.sse and rec.sse.inaccessible_at then
      rec.sse.inaccessible_at = nil
      ctx.changed_state = true
    end
    return false
  end
  if not rec.sse.inaccessible_at then
    rec.sse.inaccessible_at = ctx:now()
    ctx.changed_state = true -- seen by a read: saved all the same
  end
  return true
end

-- Key schema and table parameters ------------------------------------------------------

local function check_table_name(ctx, name)
  if not name:match("^[a-zA-Z0-9_.%-]+$") or #name < 3 or #name > 255 then
    invalid(ctx, ("1 validation error detected: Value '%s' at 'tableName' failed to satisfy "
      .. "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
      :format(name))
  end
end

-- Checks KeySchema against AttributeDefinitions as DynamoDB does; returns hash, range.
local function check_keys(ctx, p)
  local defs, names = {}, {}
  for _, d in ipairs(p.AttributeDefinitions) do
    if defs[d.AttributeName] then
      pinvalid(ctx, "Duplicate AttributeName in AttributeDefinitions: " .. d.AttributeName)
    end
    defs[d.AttributeName] = d.AttributeType
    names[#names + 1] = d.AttributeName
  end
  local ks = p.KeySchema
  local hash, range
  if ks[1].KeyType ~= "HASH" then
    pinvalid(ctx, "Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
  end
  hash = ks[1].AttributeName
  if ks[2] then
    if ks[2].KeyType ~= "RANGE" then
      pinvalid(ctx, "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
    end
    range = ks[2].AttributeName
    if range == hash then
      pinvalid(ctx, "Both the Hash Key and the Range Key element in the KeySchema have the "
        .. "same name")
    end
  end
  local missing = {}
  for _, k in ipairs(ks) do
    if not defs[k.AttributeName] then missing[#missing + 1] = k.AttributeName end
  end
  if #missing > 0 then
    pinvalid(ctx, ("Some index key attributes are not defined in AttributeDefinitions. Keys: "
      .. "[%s], AttributeDefinitions: [%s]"):format(table.concat(missing, ", "),
        table.concat(names, ", ")))
  end
  if #names ~= #ks then
    pinvalid(ctx, "Number of attributes in KeySchema does not exactly match number of "
      .. "attributes defined in AttributeDefinitions")
  end
  return hash, range, defs
end

-- BillingMode / ProvisionedThroughput rules; returns billing mode, rcu, wcu.
local function check_billing(ctx, mode, pt, current)
  mode = mode or current or "PROVISIONED"
  if mode == "PAY_PER_REQUEST" then
    if pt then
      pinvalid(ctx, "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when "
        .. "BillingMode is PAY_PER_REQUEST")
    end
    return mode
  end
  if not pt then
    if current == "PROVISIONED" then return mode end
    pinvalid(ctx, "ReadCapacityUnits and WriteCapacityUnits must both be specified when "
      .. "BillingMode is PROVISIONED")
  end
  if pt.ReadCapacityUnits < 1 or pt.WriteCapacityUnits < 1 then
    pinvalid(ctx, "Cannot have a ProvisionedThroughput value less than 1")
  end
  return mode, pt.ReadCapacityUnits, pt.WriteCapacityUnits
end

-- A stream for `rec` in `region` from a StreamSpecification (nil when disabled).
local function new_stream(ctx, rec, spec, region)
  if not spec or not spec.StreamEnabled then
    if spec and spec.StreamViewType then
      pinvalid(ctx, "StreamViewType cannot be set when StreamEnabled is false")
    end
    return nil
  end
  if not spec.StreamViewType then
    pinvalid(ctx, "StreamViewType is required when StreamEnabled is true")
  end
  local label = iso_millis(ctx:now())
  return { view = spec.StreamViewType, label = label,
    arn = table_arn(ctx, rec.name, region) .. "/stream/" .. label }
end

-- SSE from an SSESpecification: nil (AWS owned key: no SSEDescription) or {type, key_arn,
-- custom = true when the caller named the key}, the key checked through KMS in `region`.
local function new_sse(ctx, spec, region)
  if not spec or spec.Enabled == false then
    if spec and spec.KMSMasterKeyId then
      pinvalid(ctx, "KMSMasterKeyId can only be specified when SSE is enabled")
    end
    return nil
  end
  local kind = spec.SSEType or "KMS"
  if kind ~= "KMS" then
    pinvalid(ctx, "Unsupported SSEType " .. kind .. ": only KMS is supported")
  end
  return { type = "KMS", key_arn = use_key(ctx, spec.KMSMasterKeyId, region),
    custom = spec.KMSMasterKeyId ~= nil }
end

-- Item size as DynamoDB counts it (attribute names plus values), for TableSizeBytes,
-- the 400 KB limit and consumed capacity.
local function value_size(v)
  local t = V.type_of(v)
  local x = v[t]
  if t == "S" or t == "B" then return #x end
  if t == "N" then return math.ceil(#x:gsub("[-.]", "") / 2) + 1 end
  if t == "BOOL" or t == "NULL" then return 1 end
  local n = 3
  if t == "M" then for k, e in pairs(x) do n = n + #k + value_size(e) + 1 end
  elseif t == "L" then for _, e in ipairs(x) do n = n + value_size(e) + 1 end
  else for _, e in ipairs(x) do n = n + #e end end
  return n
end

local function item_size(item)
  local n = 0
  for k, v in pairs(item) do n = n + #k + value_size(v) end
  return n
end

-- Global tables --------------------------------------------------------------------------
-- rec.group (when the table has replicas) maps region → {active_at=, delete_at=,
-- gone_at=, kms=} for every member, this region included; every member holds a copy and
-- changes are written to all copies (write_group), so each region describes the same
-- group. Entries whose gone_at has passed are ignored and pruned.

local function replica_status(entry, now)
  if entry.delete_at then return "DELETING" end
  if now < entry.active_at then return "CREATING" end
  return "ACTIVE"
end

-- Regions of the live members of rec's group (sorted), this region included.
local function members(rec, now)
  local out = {}
  for region, e in pairs(rec.group or {}) do
    if not (e.gone_at and now >= e.gone_at) then out[#out + 1] = region end
  end
  table.sort(out)
  return out
end

-- Writes `group` (pruned of gone members) to the record of every member.
local function write_group(ctx, name, group)
  local now = ctx:now()
  for region, e in pairs(group) do
    if e.gone_at and now >= e.gone_at then group[region] = nil end
  end
  local n = 0
  for _ in pairs(group) do n = n + 1 end
  for region in pairs(group) do
    local rec = lookup(ctx, name, region)
    if rec then rec.group = n > 1 and V.copy(group) or nil end
  end
end

-- The other members' tables: writes made in one region reach them (synchronously here;
-- AWS replicates in about a second).
local function replica_tables(ctx, rec)
  local out = {}
  local now = ctx:now()
  for _, region in ipairs(members(rec, now)) do
    if region ~= ctx.region then
      local e = rec.group[region]
      local other = not e.delete_at and lookup(ctx, rec.name, region)
      if other then out[#out + 1] = other end
    end
  end
  return out
end

-- Descriptions ---------------------------------------------------------------------------

local function describe(ctx, rec, region)
  region = region or ctx.region
  local now = ctx:now()
  local st = status(rec, now)
  local count, size = 0, 0
  for _, item in pairs(rec.items) do
    count = count + 1
    size = size + item_size(item)
  end
  local d = {
    AttributeDefinitions = V.copy(rec.attrs),
    TableName = rec.name,
    KeySchema = V.copy(rec.key_schema),
    TableStatus = st == "GONE" and "DELETING" or st,
    CreationDateTime = rec.created,
    ProvisionedThroughput = { ReadCapacityUnits = rec.rcu or 0, WriteCapacityUnits = rec.wcu or 0 },
    TableSizeBytes = size,
    ItemCount = count,
    TableArn = rec.arn,
    TableId = rec.id,
    DeletionProtectionEnabled = rec.deletion_protection == true,
  }
  if rec.billing == "PAY_PER_REQUEST" then
    d.BillingModeSummary = { BillingMode = "PAY_PER_REQUEST",
      LastUpdateToPayPerRequestDateTime = rec.ppr_since }
  elseif rec.ppr_since then
    d.BillingModeSummary = { BillingMode = "PROVISIONED" }
  end
  if rec.stream then
    d.StreamSpecification = { StreamEnabled = true, StreamViewType = rec.stream.view }
    d.LatestStreamArn = rec.stream.arn
    d.LatestStreamLabel = rec.stream.label
  elseif rec.old_stream then
    -- a disabled stream stays readable for 24 h: AWS keeps reporting it as latest
    d.LatestStreamArn = rec.old_stream.arn
    d.LatestStreamLabel = rec.old_stream.label
  end
  if rec.sse then
    d.SSEDescription = { Status = now < (rec.sse.updating_until or 0) and "UPDATING" or "ENABLED",
      SSEType = rec.sse.type, KMSMasterKeyArn = rec.sse.key_arn }
    -- a customer managed key disabled or pending deletion: the table cannot be read or
    -- written (AWS notices within minutes; here at once), and says since when
    if st == "ACTIVE" and inaccessible(ctx, rec, region) then
      d.TableStatus = "INACCESSIBLE_ENCRYPTION_CREDENTIALS"
      d.SSEDescription.InaccessibleEncryptionDateTime = rec.sse.inaccessible_at
    end
  end
  if rec.table_class then
    d.TableClassSummary = { TableClass = rec.table_class }
  end
  -- Replicas lists the other regions only (a table does not list itself), as AWS's
  -- DescribeTable does for version 2019.11.21.
  local mem = members(rec, now)
  if #mem > 1 then
    d.GlobalTableVersion = M.GLOBAL_TABLE_VERSION
    d.Replicas = {}
    for _, r in ipairs(mem) do
      if r ~= region then
        local e = rec.group[r]
        local rs = replica_status(e, now)
        local other = rs == "ACTIVE" and e.kms and lookup(ctx, rec.name, r)
        if other and key_unusable(ctx, other.sse, r) then rs = "INACCESSIBLE_ENCRYPTION_CREDENTIALS" end
        d.Replicas[#d.Replicas + 1] = { RegionName = r, ReplicaStatus = rs, KMSMasterKeyId = e.kms }
      end
    end
  end
  return d
end

-- CreateTable / DescribeTable / ListTables / UpdateTable / DeleteTable ---------------------

local function new_table(ctx, p, region)
  local now = ctx:now()
  local rec = {
    name = p.TableName, arn = table_arn(ctx, p.TableName, region), id = uuid(ctx),
    created = now, active_at = now + M.TIMING.table_create,
    attrs = V.copy(p.AttributeDefinitions), key_schema = V.copy(p.KeySchema),
    items = {}, tags = {}, pitr = { enabled = false },
    table_class = p.TableClass, deletion_protection = p.DeletionProtectionEnabled == true,
  }
  rec.hash = p.KeySchema[1].AttributeName
  rec.range = p.KeySchema[2] and p.KeySchema[2].AttributeName
  return rec
end

function M.CreateTable(ctx, p)
  check_table_name(ctx, p.TableName)
  check_keys(ctx, p)
  if p.GlobalSecondaryIndexes or p.LocalSecondaryIndexes then
    invalid(ctx, "the fo simulator does not implement secondary indexes "
      .. "(GlobalSecondaryIndexes/LocalSecondaryIndexes)")
  end
  local billing, rcu, wcu = check_billing(ctx, p.BillingMode, p.ProvisionedThroughput)
  if lookup(ctx, p.TableName) then
    fail(ctx, "ResourceInUseException", "Table already exists: " .. p.TableName)
  end
  if p.Tags and #p.Tags > M.MAX_TAGS then
    pinvalid(ctx, "Too many tags: a table can have at most " .. M.MAX_TAGS)
  end
  local rec = new_table(ctx, p, ctx.region)
  rec.billing, rec.rcu, rec.wcu = billing, rcu, wcu
  if billing == "PAY_PER_REQUEST" then rec.ppr_since = rec.created end
  rec.stream = new_stream(ctx, rec, p.StreamSpecification, ctx.region)
  rec.sse = new_sse(ctx, p.SSESpecification, ctx.region)
  for _, t in ipairs(p.Tags or {}) do rec.tags[#rec.tags + 1] = { Key = t.Key, Value = t.Value } end
  tables_of(ctx.db)[p.TableName] = rec
  ctx:created(rec)
  return { TableDescription = describe(ctx, rec) }
end

function M.DescribeTable(ctx, p)
  local rec = table_or_fail(ctx, p.TableName)
  return { Table = describe(ctx, rec) }
end

function M.ListTables(ctx, p)
  local names = {}
  for name in pairs(tables_of(ctx.db)) do
    if lookup(ctx, name) then names[#names + 1] = name end
  end
  table.sort(names)
  local limit = p.Limit or 100
  local out = {}
  local more = false
  for _, name in ipairs(names) do
    if not p.ExclusiveStartTableName or name > p.ExclusiveStartTableName then
      if #out == limit then more = true break end
      out[#out + 1] = name
    end
  end
  return { TableNames = out, LastEvaluatedTableName = more and out[#out] or nil }
end

local function in_use(ctx)
  fail(ctx, "ResourceInUseException", "The resource which you are attempting to change is in use.")
end

-- A ReplicaUpdates entry (Create or Delete) may not name the table's own region.
local function not_local(ctx, region)
  if region == ctx.region then
    invalid(ctx, "Cannot add, delete, or update the local region through ReplicaUpdates. Use "
      .. "CreateTable, DeleteTable, or UpdateTable as required.")
  end
end

-- ReplicaUpdates Create: a new table in the other region, items copied, CREATING until
-- its time; the source table is UPDATING meanwhile.
local function create_replica(ctx, rec, c)
  local region = c.RegionName
  local now = ctx:now()
  not_local(ctx, region)
  if not regions.known(region) then
    pinvalid(ctx, ("Region %s is not a valid region for a replica (the simulator serves %s)")
      :format(region, table.concat(regions.names(), ", ")))
  end
  if (rec.group and rec.group[region] and not rec.group[region].gone_at)
    or lookup(ctx, rec.name, region) then
    invalid(ctx, ("Failed to create a the new replica of table with name: '%s' because one or "
      .. "more replicas already existed as tables."):format(rec.name))
  end
  -- The simulator insists on the documented setup: streams with both images (AWS
  -- enables them itself when a table has none, and refuses another view type).
  if not rec.stream or rec.stream.view ~= "NEW_AND_OLD_IMAGES" then
    invalid(ctx, "Table must have DynamoDB Streams enabled with StreamViewType "
      .. "NEW_AND_OLD_IMAGES to add a replica (version 2019.11.21 global tables replicate "
      .. "through the table's stream)")
  end
  if rec.billing ~= "PAY_PER_REQUEST" then
    pinvalid(ctx, "Table write capacity should either be Pay-Per-Request or AutoScaled.")
  end
  if rec.sse and rec.sse.custom and not c.KMSMasterKeyId then
    pinvalid(ctx, "KMSMasterKeyId must be specified for each replica.")
  end
  if not rec.sse and c.KMSMasterKeyId then
    pinvalid(ctx, "KMSMasterKeyId can only be specified when SSE is enabled")
  end
  -- the replica's key, checked in its region before anything is made
  local rep_sse = rec.sse and { type = "KMS", key_arn = use_key(ctx, c.KMSMasterKeyId, region),
    custom = c.KMSMasterKeyId ~= nil }
  local rep = new_table(ctx, { TableName = rec.name, AttributeDefinitions = rec.attrs,
    KeySchema = rec.key_schema, TableClass = rec.table_class }, region)
  rep.active_at = now + M.TIMING.replica_create
  rep.billing, rep.ppr_since = rec.billing, now
  rep.stream = new_stream(ctx, rep, { StreamEnabled = true, StreamViewType = rec.stream.view }, region)
  rep.sse = rep_sse
  for k, item in pairs(rec.items) do rep.items[k] = V.copy(item) end
  tables_of(ctx:db_of("dynamodb", region))[rec.name] = rep
  local group = V.copy(rec.group or { [ctx.region] = { active_at = rec.active_at } })
  group[region] = { active_at = rep.active_at, kms = rep_sse and rep_sse.custom and rep_sse.key_arn or nil }
  rec.group = group
  rec.update_until = math.max(rec.update_until or 0, rep.active_at)
  rec.sourced_at = now
  write_group(ctx, rec.name, group)
end

local function delete_replica(ctx, rec, d)
  local region = d.RegionName
  local now = ctx:now()
  not_local(ctx, region)
  local e = rec.group and rec.group[region]
  if not e or e.delete_at then
    invalid(ctx, ("Update global table operation failed because one or more replicas were not "
      .. "part of the global table. Replica: %s"):format(region))
  end
  local group = V.copy(rec.group)
  group[region].delete_at = now
  group[region].gone_at = now + M.TIMING.replica_delete
  local rep = lookup(ctx, rec.name, region)
  if rep then
    rep.deleting = true
    rep.gone_at = group[region].gone_at
  end
  rec.update_until = math.max(rec.update_until or 0, group[region].gone_at)
  write_group(ctx, rec.name, group)
end

-- The encryption an UpdateTable asks for, region → new SSE (false: the AWS owned key), or
-- nil when it changes none. SSESpecification sets the table's own; ReplicaUpdates Update
-- KMSMasterKeyId a replica's customer managed key. The encryption type is the global
-- table's: a switch to the AWS owned or managed key takes every replica along (each to its
-- region's aws/dynamodb), and a switch to customer managed keys needs one for every replica
-- that has none (the simulator's reading of "KMSMasterKeyId must be specified for each
-- replica").
local function plan_sse(ctx, rec, p)
  local plan, any = {}, false
  local mine = rec.sse
  if p.SSESpecification then
    mine = new_sse(ctx, p.SSESpecification, ctx.region)
    plan[ctx.region], any = mine or false, true
  end
  local now = ctx:now()
  for _, u in ipairs(p.ReplicaUpdates or {}) do
    local x = u.Update
    if x and x.KMSMasterKeyId ~= nil then
      local e = rec.group and rec.group[x.RegionName]
      if not e or e.delete_at or x.RegionName == ctx.region then
        invalid(ctx, ("Update global table operation failed because one or more replicas were "
          .. "not part of the global table. Replica: %s"):format(x.RegionName))
      end
      if not (mine and mine.custom) then
        pinvalid(ctx, "KMSMasterKeyId can only be specified for a replica when the table is "
          .. "encrypted with a customer managed key")
      end
      plan[x.RegionName] = { type = "KMS", key_arn = use_key(ctx, x.KMSMasterKeyId, x.RegionName),
        custom = true }
      any = true
    end
  end
  if p.SSESpecification then
    for _, region in ipairs(members(rec, now)) do
      local other = region ~= ctx.region and not rec.group[region].delete_at
        and lookup(ctx, rec.name, region)
      if other and plan[region] == nil then
        if not mine then plan[region] = false
        elseif not mine.custom then
          plan[region] = { type = "KMS", key_arn = use_key(ctx, nil, region), custom = false }
        elseif not (other.sse and other.sse.custom) then
          pinvalid(ctx, ("KMSMasterKeyId must be specified for each replica: give replica %s "
            .. "its key of that region (ReplicaUpdates Update KMSMasterKeyId)"):format(region))
        end
      end
    end
  end
  return any and plan or nil
end

-- Puts each region's table of the plan under its new encryption (UPDATING for a moment),
-- and records the replicas' customer managed keys in the group.
local function apply_sse(ctx, rec, plan)
  local now = ctx:now()
  local group = rec.group and V.copy(rec.group)
  for region, sse in pairs(plan) do
    local t = region == ctx.region and rec or lookup(ctx, rec.name, region)
    if sse then sse.updating_until = now + M.TIMING.table_update end
    t.sse = sse or nil
    if t ~= rec then t.update_until = math.max(t.update_until or 0, now + M.TIMING.table_update) end
    if group and group[region] then group[region].kms = sse and sse.custom and sse.key_arn or nil end
  end
  if group then write_group(ctx, rec.name, group) end
end

function M.UpdateTable(ctx, p)
  local rec = table_or_fail(ctx, p.TableName)
  if status(rec, ctx:now()) ~= "ACTIVE" then in_use(ctx) end
  if not (p.ProvisionedThroughput or p.BillingMode or p.StreamSpecification
    or p.GlobalSecondaryIndexUpdates or p.SSESpecification or p.ReplicaUpdates or p.TableClass
    or p.DeletionProtectionEnabled ~= nil) then
    invalid(ctx, "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, "
      .. "GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required")
  end
  if p.GlobalSecondaryIndexUpdates then
    invalid(ctx, "the fo simulator does not implement secondary indexes (GlobalSecondaryIndexUpdates)")
  end
  local now = ctx:now()
  local changed = false
  -- keys first: a key KMS refuses leaves the table as it was
  local sse_plan = plan_sse(ctx, rec, p)
  if p.BillingMode or p.ProvisionedThroughput then
    local mode, rcu, wcu = check_billing(ctx, p.BillingMode, p.ProvisionedThroughput, rec.billing)
    if mode == "PROVISIONED" and rec.group then
      pinvalid(ctx, "Table write capacity should either be Pay-Per-Request or AutoScaled.")
    end
    if mode ~= rec.billing then
      rec.ppr_since = now
    end
    rec.billing = mode
    if mode == "PROVISIONED" then rec.rcu, rec.wcu = rcu or rec.rcu, wcu or rec.wcu
    else rec.rcu, rec.wcu = nil, nil end
    changed = true
  end
  if p.StreamSpecification then
    local s = p.StreamSpecification
    if s.StreamEnabled and rec.stream then
      invalid(ctx, "Table already has an enabled stream: TableName: " .. rec.name)
    end
    if not s.StreamEnabled and not rec.stream then
      invalid(ctx, "Table already has no stream: TableName: " .. rec.name)
    end
    if not s.StreamEnabled and rec.group then
      invalid(ctx, "Cannot disable streams on a table that has replicas (global tables "
        .. "replicate through the stream)")
    end
    if s.StreamEnabled then
      rec.stream = new_stream(ctx, rec, s, ctx.region)
    else
      rec.old_stream, rec.stream = rec.stream, nil
      new_stream(ctx, rec, s, ctx.region) -- checks a view type given with StreamEnabled=false
    end
    changed = true
  end
  if sse_plan then
    apply_sse(ctx, rec, sse_plan)
    changed = true
  end
  if p.TableClass then
    rec.table_class = p.TableClass
    changed = true
  end
  -- a setting of the table itself: no UPDATING phase
  if p.DeletionProtectionEnabled ~= nil then rec.deletion_protection = p.DeletionProtectionEnabled end
  for _, u in ipairs(p.ReplicaUpdates or {}) do
    if u.Create then create_replica(ctx, rec, u.Create)
    elseif u.Delete then delete_replica(ctx, rec, u.Delete)
    elseif u.Update then
      local e = rec.group and rec.group[u.Update.RegionName]
      if not e or e.delete_at then
        invalid(ctx, ("Update global table operation failed because one or more replicas were "
          .. "not part of the global table. Replica: %s"):format(u.Update.RegionName))
      end
    end
  end
  if changed then rec.update_until = math.max(rec.update_until or 0, now + M.TIMING.table_update) end
  return { TableDescription = describe(ctx, rec) }
end

function M.DeleteTable(ctx, p)
  local rec = table_or_fail(ctx, p.TableName)
  local now = ctx:now()
  local st = status(rec, now)
  if st == "DELETING" then return { TableDescription = describe(ctx, rec) } end
  -- DeleteTable documents ResourceInUseException for CREATING and UPDATING tables.
  if st ~= "ACTIVE" then in_use(ctx) end
  if rec.deletion_protection then
    invalid(ctx, "Resource cannot be deleted as it is currently protected against deletion. "
      .. "Disable deletion protection first.")
  end
  local others = #members(rec, now) > 1
  if others and rec.sourced_at and now - rec.sourced_at < M.SOURCE_DELETE_BLOCK then
    invalid(ctx, "Replica cannot be deleted because it has acted as a source region for new "
      .. "replica(s) being added to the table in the last 24 hours.")
  end
  rec.deleting = true
  rec.gone_at = now + M.TIMING.table_delete
  if rec.group then
    -- deleting one replica's table removes it from the group; the others live on
    local group = V.copy(rec.group)
    group[ctx.region].delete_at, group[ctx.region].gone_at = now, rec.gone_at
    write_group(ctx, rec.name, group)
  end
  return { TableDescription = describe(ctx, rec) }
end

-- Tags -----------------------------------------------------------------------------------

local function table_by_arn(ctx, arn)
  local region, account, name = arn:match("^arn:aws:dynamodb:([^:]+):(%d+):table/([^/]+)$")
  if not region then
    invalid(ctx, "Invalid ResourceArn provided as input " .. arn)
  end
  local rec = region == ctx.region and account == ctx.account and lookup(ctx, name)
  if not rec then
    fail(ctx, "ResourceNotFoundException", ("Requested resource not found: ResourceArn: %s "
      .. "not found"):format(arn))
  end
  return rec
end

function M.TagResource(ctx, p)
  local rec = table_by_arn(ctx, p.ResourceArn)
  for _, t in ipairs(p.Tags) do
    if t.Key:sub(1, 4) == "aws:" then
      pinvalid(ctx, "Tag keys starting with 'aws:' are reserved for AWS use: " .. t.Key)
    end
  end
  for _, t in ipairs(p.Tags) do
    local found = false
    for _, x in ipairs(rec.tags) do
      if x.Key == t.Key then x.Value = t.Value; found = true end
    end
    if not found then rec.tags[#rec.tags + 1] = { Key = t.Key, Value = t.Value } end
  end
  if #rec.tags > M.MAX_TAGS then
    fail(ctx, "LimitExceededException", "Too many tags: a table can have at most "
      .. M.MAX_TAGS .. " tags")
  end
  return {}
end

function M.UntagResource(ctx, p)
  local rec = table_by_arn(ctx, p.ResourceArn)
  local drop = {}
  for _, k in ipairs(p.TagKeys) do drop[k] = true end
  local kept = {}
  for _, t in ipairs(rec.tags) do if not drop[t.Key] then kept[#kept + 1] = t end end
  rec.tags = kept
  return {}
end

function M.ListTagsOfResource(ctx, p)
  local rec = table_by_arn(ctx, p.ResourceArn)
  local start = 1
  if p.NextToken then
    start = tonumber(p.NextToken:match("^tags%-(%d+)$") or "")
    if not start or start < 1 then invalid(ctx, "Invalid NextToken: " .. p.NextToken) end
  end
  local out = {}
  for i = start, math.min(#rec.tags, start + M.TAGS_PAGE - 1) do
    out[#out + 1] = { Key = rec.tags[i].Key, Value = rec.tags[i].Value }
  end
  local nxt = start + M.TAGS_PAGE
  return { Tags = out, NextToken = nxt <= #rec.tags and ("tags-" .. nxt) or nil }
end

-- Continuous backups ----------------------------------------------------------------------

local function backups_description(ctx, rec)
  local pitr = { PointInTimeRecoveryStatus = rec.pitr.enabled and "ENABLED" or "DISABLED" }
  if rec.pitr.enabled then
    -- restorable from when PITR was enabled up to about five minutes ago
    local now = ctx:now()
    pitr.EarliestRestorableDateTime = rec.pitr.since
    pitr.LatestRestorableDateTime = math.max(rec.pitr.since, now - 300)
  end
  return { ContinuousBackupsStatus = "ENABLED", PointInTimeRecoveryDescription = pitr }
end

local function table_for_backups(ctx, name)
  local rec = lookup(ctx, name)
  if not rec or rec.deleting then
    fail(ctx, "TableNotFoundException", "Table not found: " .. name)
  end
  return rec
end

function M.UpdateContinuousBackups(ctx, p)
  local rec = table_for_backups(ctx, p.TableName)
  if status(rec, ctx:now()) == "CREATING" then
    -- continuous backups become available a moment after the table is created
    fail(ctx, "ContinuousBackupsUnavailableException", ("Backups are being enabled for the "
      .. "table: %s. Please retry later"):format(p.TableName))
  end
  local on = p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled
  if on and not rec.pitr.enabled then rec.pitr = { enabled = true, since = ctx:now() }
  elseif not on then rec.pitr = { enabled = false } end
  return { ContinuousBackupsDescription = backups_description(ctx, rec) }
end

function M.DescribeContinuousBackups(ctx, p)
  local rec = table_for_backups(ctx, p.TableName)
  return { ContinuousBackupsDescription = backups_description(ctx, rec) }
end

-- Items ----------------------------------------------------------------------------------

local LEGACY = { "Expected", "AttributesToGet", "AttributeUpdates", "KeyConditions",
  "QueryFilter", "ConditionalOperator" }

local function no_legacy(ctx, p)
  for _, k in ipairs(LEGACY) do
    if p[k] ~= nil then
      invalid(ctx, ("the fo simulator implements expressions only; use the expression "
        .. "parameter instead of the legacy parameter %s"):format(k))
    end
  end
end

local function key_names(rec)
  local k = { [rec.hash] = true }
  if rec.range then k[rec.range] = true end
  return k
end

local function attr_type(rec, name)
  for _, d in ipairs(rec.attrs) do
    if d.AttributeName == name then return d.AttributeType end
  end
end

-- Checks the key attributes in an item (Item of PutItem) as DynamoDB does.
local function check_item_keys(ctx, rec, item)
  for _, name in ipairs({ rec.hash, rec.range }) do
    local v = item[name]
    if v == nil then pinvalid(ctx, ("Missing the key %s in the item"):format(name)) end
    local want, got = attr_type(rec, name), V.type_of(v)
    if want ~= got then
      pinvalid(ctx, ("Type mismatch for key %s expected: %s actual: %s"):format(name, want, got))
    end
    if (got == "S" or got == "B") and v[got] == "" then
      invalid(ctx, ("One or more parameter values are not valid. The AttributeValue for a "
        .. "key attribute cannot contain an empty %s value. Key: %s"):format(
          got == "S" and "string" or "binary", name))
    end
  end
end

-- Checks a Key parameter: exactly the table's key attributes, with their types.
local function check_key(ctx, rec, key, what)
  local n = 0
  for _ in pairs(key) do n = n + 1 end
  local want = rec.range and 2 or 1
  if n ~= want or key[rec.hash] == nil or (rec.range and key[rec.range] == nil) then
    invalid(ctx, (what or "") .. "The provided key element does not match the schema")
  end
  local out = {}
  for name, v in pairs(key) do
    local c = V.check(v, failer(ctx))
    if V.type_of(c) ~= attr_type(rec, name) then
      invalid(ctx, (what or "") .. "The provided key element does not match the schema")
    end
    out[name] = c
  end
  return out
end

local function checked_item(ctx, rec, item)
  local out = {}
  for k, v in pairs(item) do out[k] = V.check(v, failer(ctx)) end
  check_item_keys(ctx, rec, out)
  if item_size(out) > 400 * 1024 then invalid(ctx, "Item size has exceeded the maximum allowed size") end
  return out
end

local function keystr(rec, item)
  return V.key_string(item, rec.hash, rec.range)
end

-- Stores (or with nil, deletes) an item here and in every replica (after the replication
-- lag, when there is one).
local function write_item(ctx, rec, k, item)
  rec.items[k] = item
  local lag = rawget(ctx.sim, "_replication_lag") or M.TIMING.replication_lag or 0
  for _, other in ipairs(replica_tables(ctx, rec)) do
    if lag > 0 then
      other.incoming = other.incoming or {}
      table.insert(other.incoming, { due = ctx:now() + lag, k = k, item = item and V.copy(item),
        from = ctx.region })
    else
      other.items[k] = item and V.copy(item) or nil
    end
  end
end

local function capacity(rec, p, units)
  local mode = p.ReturnConsumedCapacity
  if mode ~= "TOTAL" and mode ~= "INDEXES" then return nil end
  local c = { TableName = rec.name, CapacityUnits = units + 0.0 }
  if mode == "INDEXES" then c.Table = { CapacityUnits = units + 0.0 } end
  return c
end

local function write_units(item) return math.max(1, math.ceil(item_size(item or {}) / 1024)) end

local function read_units(size, consistent)
  local u = math.max(1, math.ceil(size / 4096))
  return consistent and u or u / 2
end

-- The part PutItem, UpdateItem and DeleteItem share: parses the request's expressions
-- (`more`, when given, parses the operation's own expression first, as DynamoDB reports its
-- errors before ConditionExpression's), then checks ConditionExpression against the item
-- stored at `key`. Returns the item's key string, the stored item (nil when none), the
-- expression environment and what `more` returned.
local function conditional_write(ctx, p, rec, key, more)
  local env = X.env(p, failer(ctx))
  local parsed = more and more(env)
  local cond = X.condition(env, p.ConditionExpression, "ConditionExpression")
  X.finish(env)
  local k = keystr(rec, key)
  local old = rec.items[k]
  if cond and not X.eval(cond, old) then
    fail(ctx, "ConditionalCheckFailedException", "The conditional request failed")
  end
  return k, old, env, parsed
end

local function return_values(ctx, p, allowed)
  local rv = p.ReturnValues or "NONE"
  if not allowed[rv] then invalid(ctx, "Return values set to invalid value") end
  return rv
end

local function nonempty(t)
  return t and next(t) ~= nil and t or nil
end

function M.PutItem(ctx, p)
  no_legacy(ctx, p)
  local rec = table_for_items(ctx, p.TableName)
  local rv = return_values(ctx, p, { NONE = true, ALL_OLD = true })
  local item = checked_item(ctx, rec, p.Item)
  local k, old = conditional_write(ctx, p, rec, item)
  write_item(ctx, rec, k, item)
  return { Attributes = rv == "ALL_OLD" and old and V.copy(old) or nil,
    ConsumedCapacity = capacity(rec, p, write_units(item)) }
end

function M.GetItem(ctx, p)
  no_legacy(ctx, p)
  local rec = table_for_items(ctx, p.TableName)
  local key = check_key(ctx, rec, p.Key)
  local env = X.env(p, failer(ctx))
  local proj = X.projection(env, p.ProjectionExpression)
  X.finish(env)
  local item = rec.items[keystr(rec, key)]
  return { Item = item and X.project(proj, item) or nil,
    ConsumedCapacity = capacity(rec, p, read_units(item and item_size(item) or 0, p.ConsistentRead)) }
end

function M.UpdateItem(ctx, p)
  no_legacy(ctx, p)
  local rec = table_for_items(ctx, p.TableName)
  local rv = return_values(ctx, p, { NONE = true, ALL_OLD = true, UPDATED_OLD = true,
    ALL_NEW = true, UPDATED_NEW = true })
  local key = check_key(ctx, rec, p.Key)
  local k, old, env, upd = conditional_write(ctx, p, rec, key,
    function(e) return X.update(e, p.UpdateExpression) end)
  local new, touched = old or V.copy(key), {}
  if upd then new, touched = X.apply_update(env, upd, old, key, key_names(rec)) end
  if item_size(new) > 400 * 1024 then
    invalid(ctx, "Item size to update has exceeded the maximum allowed size")
  end
  write_item(ctx, rec, k, new)
  local attrs
  if rv == "ALL_OLD" then attrs = old and V.copy(old)
  elseif rv == "ALL_NEW" then attrs = V.copy(new)
  elseif rv == "UPDATED_OLD" or rv == "UPDATED_NEW" then
    local src = rv == "UPDATED_OLD" and (old or {}) or new
    attrs = {}
    for name in pairs(touched) do attrs[name] = V.copy(src[name]) end
  end
  return { Attributes = nonempty(attrs), ConsumedCapacity = capacity(rec, p, write_units(new)) }
end

function M.DeleteItem(ctx, p)
  no_legacy(ctx, p)
  local rec = table_for_items(ctx, p.TableName)
  local rv = return_values(ctx, p, { NONE = true, ALL_OLD = true })
  local key = check_key(ctx, rec, p.Key)
  local k, old = conditional_write(ctx, p, rec, key)
  if old then write_item(ctx, rec, k, nil) end
  return { Attributes = rv == "ALL_OLD" and old and V.copy(old) or nil,
    ConsumedCapacity = capacity(rec, p, write_units(old)) }
end

-- Query's and Scan's Select, checked against ProjectionExpression as DynamoDB does (no
-- secondary indexes here, so ALL_PROJECTED_ATTRIBUTES never applies).
local function checked_select(ctx, p)
  local select = p.Select or (p.ProjectionExpression and "SPECIFIC_ATTRIBUTES" or "ALL_ATTRIBUTES")
  if select == "ALL_PROJECTED_ATTRIBUTES" then
    invalid(ctx, "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
  end
  if select == "ALL_ATTRIBUTES" and p.ProjectionExpression then
    invalid(ctx, "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES")
  end
  if select == "SPECIFIC_ATTRIBUTES" and not p.ProjectionExpression then
    invalid(ctx, "Select type SPECIFIC_ATTRIBUTES requires a ProjectionExpression")
  end
  return select
end

function M.Query(ctx, p)
  no_legacy(ctx, p)
  local rec = table_for_items(ctx, p.TableName)
  if p.IndexName then
    invalid(ctx, "The table does not have the specified index: " .. p.IndexName)
  end
  if not p.KeyConditionExpression then
    invalid(ctx, "Either the KeyConditions or KeyConditionExpression parameter must be "
      .. "specified in the request.")
  end
  local select = checked_select(ctx, p)
  local env = X.env(p, failer(ctx))
  local kc = X.key_condition(env, p.KeyConditionExpression, rec.hash, rec.range)
  local filter = X.condition(env, p.FilterExpression, "FilterExpression")
  local proj = X.projection(env, p.ProjectionExpression)
  X.finish(env)
  if V.type_of(kc.hash) ~= attr_type(rec, rec.hash) then
    invalid(ctx, "One or more parameter values were invalid: Condition parameter type does not "
      .. "match schema type")
  end
  local start
  if p.ExclusiveStartKey then
    start = check_key(ctx, rec, p.ExclusiveStartKey, "The provided starting key is invalid: ")
  end
  local matches = {}
  for _, item in pairs(rec.items) do
    if V.equal(item[rec.hash], kc.hash) and (not kc.range or X.range_matches(kc.range, item[rec.range])) then
      matches[#matches + 1] = item
    end
  end
  local forward = p.ScanIndexForward ~= false
  if rec.range then
    table.sort(matches, function(a, b)
      local o = V.order(a[rec.range], b[rec.range])
      if forward then return o < 0 else return o > 0 end
    end)
  end
  local first = 1
  if start then
    first = #matches + 1
    for i, item in ipairs(matches) do
      local after
      if not rec.range then after = false
      else
        local o = V.order(item[rec.range], start[rec.range])
        after = forward and o > 0 or (not forward and o < 0)
      end
      if after and V.equal(item[rec.hash], start[rec.hash]) then first = i break end
    end
  end
  local items, scanned, size, last = {}, 0, 0, nil
  for i = first, #matches do
    if p.Limit and scanned == p.Limit then break end
    local item = matches[i]
    scanned = scanned + 1
    size = size + item_size(item)
    if p.Limit and scanned == p.Limit then
      last = { [rec.hash] = V.copy(item[rec.hash]) }
      if rec.range then last[rec.range] = V.copy(item[rec.range]) end
    end
    if not filter or X.eval(filter, item) then
      items[#items + 1] = X.project(proj, item)
    end
  end
  return {
    Items = select ~= "COUNT" and items or nil,
    Count = #items,
    ScannedCount = scanned,
    LastEvaluatedKey = last,
    ConsumedCapacity = capacity(rec, p, read_units(size, p.ConsistentRead)),
  }
end

-- Scan: every item of the table in a stable order (by key), 1 MB of items read per page at
-- most (DynamoDB's page size), Limit items read per page, FilterExpression applied after
-- reading (Count after the filter, ScannedCount before), parallel scans by
-- Segment/TotalSegments (each item in exactly one segment).
local SCAN_PAGE_BYTES = 1024 * 1024

-- The segment of a parallel scan an item belongs to: from its partition key, as DynamoDB
-- splits by partition.
local function segment_of(item, hash, total)
  local crypto = require "fo.crypto"
  local h = crypto.hex(crypto.sha256(V.key_string(item, hash))):sub(1, 8)
  return tonumber(h, 16) % total
end

function M.Scan(ctx, p)
  no_legacy(ctx, p)
  if p.ScanFilter then
    invalid(ctx, "the fo simulator implements expressions only; use the expression parameter "
      .. "instead of the legacy parameter ScanFilter")
  end
  local rec = table_for_items(ctx, p.TableName)
  if p.IndexName then
    invalid(ctx, "The table does not have the specified index: " .. p.IndexName)
  end
  if (p.Segment == nil) ~= (p.TotalSegments == nil) then
    invalid(ctx, p.Segment == nil and "The Segment parameter is required but was not present "
      .. "in the request when parameter TotalSegments is present"
      or "The TotalSegments parameter is required but was not present in the request when "
      .. "Segment parameter is present")
  end
  if p.Segment and p.Segment >= p.TotalSegments then
    invalid(ctx, ("The Segment parameter is zero-based and must be less than parameter "
      .. "TotalSegments: Segment: %d is out of bounds of TotalSegments: %d")
      :format(p.Segment, p.TotalSegments))
  end
  local select = checked_select(ctx, p)
  local env = X.env(p, failer(ctx))
  local filter = X.condition(env, p.FilterExpression, "FilterExpression")
  local proj = X.projection(env, p.ProjectionExpression)
  X.finish(env)
  local start
  if p.ExclusiveStartKey then
    start = keystr(rec, check_key(ctx, rec, p.ExclusiveStartKey,
      "The provided starting key is invalid: "))
  end
  local keys = {}
  for k in pairs(rec.items) do
    if (not start or k > start) and (not p.Segment
        or segment_of(rec.items[k], rec.hash, p.TotalSegments) == p.Segment) then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  local items, scanned, size, last = {}, 0, 0, nil
  for i, k in ipairs(keys) do
    local item = rec.items[k]
    scanned = scanned + 1
    size = size + item_size(item)
    if not filter or X.eval(filter, item) then items[#items + 1] = X.project(proj, item) end
    -- (Limit reached: the key even of the last item, as DynamoDB answers)
    if (p.Limit and scanned == p.Limit) or (i < #keys and size >= SCAN_PAGE_BYTES) then
      last = { [rec.hash] = V.copy(item[rec.hash]) }
      if rec.range then last[rec.range] = V.copy(item[rec.range]) end
      break
    end
  end
  return {
    Items = select ~= "COUNT" and items or nil,
    Count = #items,
    ScannedCount = scanned,
    LastEvaluatedKey = last,
    ConsumedCapacity = capacity(rec, p, read_units(size, p.ConsistentRead)),
  }
end

return M
