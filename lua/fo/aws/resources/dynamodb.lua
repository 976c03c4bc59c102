-- DynamoDB resource type: aws:dynamodb:table, with its replicas as a property (global
-- tables version 2019.11.21).
--
-- Facts this file relies on (DynamoDB developer guide and API reference):
-- - Table names are unique per region: CreateTable of a taken name fails
--   (ResourceInUseException); unless the table carries this create's fo:token, that is a
--   conflict — fo never adopts, changes or deletes a table it did not create.
-- - CreateTable takes the tags, streams, SSE and billing mode in one call; the table is
--   CREATING, then ACTIVE (waiter TableExists). UpdateTable needs an ACTIVE table
--   (ResourceInUseException otherwise) and changes one thing at a time: every change here
--   is followed by a wait for ACTIVE.
-- - Replicas: UpdateTable ReplicaUpdates Create/Delete, one region per call; the table is
--   UPDATING and the replica CREATING until both are ACTIVE (minutes on AWS). Replicas need
--   streams with NEW_AND_OLD_IMAGES and on-demand (or autoscaled) capacity; a table
--   encrypted with a customer-managed KMS key needs a KMSMasterKeyId for each replica's
--   region.
-- - Tags and point-in-time recovery belong to each replica, not to the global table: AWS
--   carries neither over to a new replica (its PITR starts DISABLED, it has no tags), and
--   TagResource / UpdateContinuousBackups / DescribeContinuousBackups act on the replica
--   only when called in the replica's region. fo sets and reads both in every replica's
--   region (a replica may declare its own tags and point_in_time_recovery; by default it has
--   the table's). SSE is reported per replica too (DescribeTable in its region).
-- - The waits must survive a crash: read() reports only ACTIVE replicas, so a replica
--   still CREATING (the run died while waiting) is drift, and the update that follows
--   waits for it instead of creating it again.
-- - Destroy removes the replicas first (each waited until gone: a region that sourced a
--   replica refuses DeleteTable while the group has other members), then the table, and
--   waits until it is gone (TableNotExists).
-- - Point-in-time recovery is UpdateContinuousBackups, which answers
--   ContinuousBackupsUnavailableException for a while after the table is created
--   (consistency.lua: continuous_backups).
local common = require "fo.aws.resources.common"

local M = {}

--- How long (seconds) the waits of this type may take.
M.WAIT = {
  table = 1200,   -- CREATING/UPDATING → ACTIVE, DELETING → gone
  replica = 3600, -- a replica CREATING → ACTIVE, DELETING → gone (large tables take long)
}

local function ddb(ctx, region) return ctx:client("dynamodb", region) end

local function describe(ctx, name, region)
  local c = ddb(ctx, region)
  local out = common.unless({ "ResourceNotFoundException" }, c.DescribeTable, c, { TableName = name })
  return out and out.Table
end

-- The same table's ARN in another region.
local function arn_in(arn, region)
  return (arn:gsub("^(arn:[^:]+:dynamodb:)[^:]*:", "%1" .. region .. ":"))
end

-- Replicas as declared: a region name or {region_name=, kms_master_key_id=, tags=,
-- point_in_time_recovery=}; each with its effective tags (the table's, overridden by the
-- replica's own) and point-in-time recovery (the replica's, else the table's).
local function replicas_of(p)
  local out = {}
  for _, r in ipairs(p.replicas or {}) do
    local e = type(r) == "string" and { region = r }
      or { region = r.region_name, kms = r.kms_master_key_id, own_tags = r.tags,
        own_pitr = r.point_in_time_recovery }
    e.tags = {}
    for k, v in pairs(p.tags or {}) do e.tags[k] = v end
    if type(e.own_tags) == "table" then
      for k, v in pairs(e.own_tags) do e.tags[k] = v end
    end
    if e.own_pitr ~= nil then e.pitr = e.own_pitr == true
    else e.pitr = p.point_in_time_recovery == true end
    out[#out + 1] = e
  end
  return out
end

local function replica_status(t, region)
  for _, r in ipairs(t.Replicas or {}) do
    if r.RegionName == region then return r.ReplicaStatus end
  end
  return nil
end

-- Problems DynamoDB would answer late (after the table exists) or the simulator insists on,
-- told before any call.
local function check(ctx, p)
  local reps = replicas_of(p)
  local where = ("aws:dynamodb:table %s"):format(p.name)
  if p.billing_mode == "PROVISIONED" and (not p.read_capacity or not p.write_capacity) then
    error(where .. ": billing_mode PROVISIONED needs read_capacity and write_capacity", 0)
  end
  if #reps > 0 then
    if p.stream_view_type ~= "NEW_AND_OLD_IMAGES" then
      error(where .. ': replicas need stream_view_type = "NEW_AND_OLD_IMAGES" (global tables '
        .. "2019.11.21 replicate through the table's stream)", 0)
    end
    if p.billing_mode ~= "PAY_PER_REQUEST" then
      error(where .. ': replicas need billing_mode = "PAY_PER_REQUEST" (provisioned capacity '
        .. "would need autoscaling on every replica)", 0)
    end
    local seen = {}
    for _, r in ipairs(reps) do
      if type(r.region) ~= "string" then
        error(where .. ": a replica is a region name or {region_name = ..., kms_master_key_id "
          .. "= ..., tags = {...}, point_in_time_recovery = true|false}", 0)
      end
      if r.own_tags ~= nil and type(r.own_tags) ~= "table" then
        error(("%s: replica %s: tags is a map of tag keys to values"):format(where, r.region), 0)
      end
      if r.own_pitr ~= nil and type(r.own_pitr) ~= "boolean" then
        error(("%s: replica %s: point_in_time_recovery is true or false"):format(where, r.region), 0)
      end
      if r.region == ctx.region then
        error(("%s: replica %s is the table's own region"):format(where, r.region), 0)
      end
      if seen[r.region] then error(("%s: replica %s given twice"):format(where, r.region), 0) end
      seen[r.region] = true
      if p.sse and p.sse.enabled and p.sse.kms_master_key_id and not r.kms then
        error(("%s: the table is encrypted with a customer-managed KMS key: replica %s needs "
          .. "its own key of that region ({region_name = %q, kms_master_key_id = ...})")
          :format(where, r.region, r.region), 0)
      end
      if r.kms ~= nil and not (p.sse and p.sse.enabled and p.sse.kms_master_key_id) then
        error(("%s: replica %s has a kms_master_key_id but the table is not encrypted with a "
          .. "customer-managed key: give the table's too (sse = {enabled = true, "
          .. "kms_master_key_id = ...}) or drop the replica's"):format(where, r.region), 0)
      end
    end
  end
end

local function key_params(p)
  local defs = { { AttributeName = p.hash_key.name, AttributeType = p.hash_key.type } }
  local schema = { { AttributeName = p.hash_key.name, KeyType = "HASH" } }
  if p.range_key then
    defs[2] = { AttributeName = p.range_key.name, AttributeType = p.range_key.type }
    schema[2] = { AttributeName = p.range_key.name, KeyType = "RANGE" }
  end
  return defs, schema
end

local function sse_spec(sse)
  if not sse or not sse.enabled then return nil end
  return { Enabled = true, SSEType = "KMS", KMSMasterKeyId = sse.kms_master_key_id }
end

-- The key ARN a KMSMasterKeyId (key ARN, key id, alias name or alias ARN) names in
-- `region`: an ARN as it is, else as KMS's DescribeKey answers (the id itself when KMS
-- cannot say: it then shows as drift rather than failing the read).
local function key_arn(ctx, id, region)
  if id:match("^arn:aws[%w-]*:kms:[^:]+:%d+:key/") then return id end
  local ok, out = pcall(function()
    return ctx:client("kms", region):DescribeKey{ KeyId = id }
  end)
  return ok and out.KeyMetadata.Arn or id
end

-- Does the table's (or replica's) encryption in `region`, its SSEDescription `d`, match
-- what is declared: `sse` (nil/disabled: the AWS owned key, no SSEDescription; enabled
-- without a key: the AWS managed key, not compared further) and `kms` (a customer-managed
-- key; default sse's own)?
local function sse_matches(ctx, d, sse, kms, region)
  local on = d ~= nil and (d.Status == "ENABLED" or d.Status == "UPDATING")
  local want = sse ~= nil and sse.enabled == true
  if on ~= want then return false end
  kms = kms or (want and sse.kms_master_key_id)
  if not kms then return true end
  return d.KMSMasterKeyArn == key_arn(ctx, kms, region)
end

local function throughput(p)
  if p.billing_mode ~= "PROVISIONED" then return nil end
  return { ReadCapacityUnits = p.read_capacity, WriteCapacityUnits = p.write_capacity }
end

-- Waits until pred(table description) holds; returns the description. `pending`: the
-- call that began the wait answered "not yet" (common.poll's first poll a period later).
local function wait_for(ctx, name, what, seconds, pred, pending)
  return common.poll(ctx, ("DynamoDB table %s: %s"):format(name, what), seconds, function()
    local t = describe(ctx, name)
    if not t then error(("DynamoDB table %s disappeared while waiting for %s"):format(name, what), 0) end
    return pred(t) and t
  end, pending)
end

local function active(t) return t.TableStatus == "ACTIVE" end

local function wait_active(ctx, name)
  return wait_for(ctx, name, "ACTIVE", M.WAIT.table, active)
end

local function update_table(ctx, name, params)
  params.TableName = name
  ddb(ctx):UpdateTable(params)
  return wait_active(ctx, name)
end

-- region: a replica's region (default the table's own)
local function set_pitr(ctx, name, on, region)
  local c = ddb(ctx, region)
  common.retry(ctx, "continuous_backups", c.UpdateContinuousBackups, c, { TableName = name,
    PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled = on } })
end

local function pitr_enabled(ctx, name, region)
  local c = ddb(ctx, region)
  local out = common.unless({ "TableNotFoundException", "ResourceNotFoundException" },
    c.DescribeContinuousBackups, c, { TableName = name })
  local d = out and out.ContinuousBackupsDescription
  return d ~= nil and (d.PointInTimeRecoveryDescription or {}).PointInTimeRecoveryStatus == "ENABLED"
end

local function table_tags(ctx, arn, region)
  local out = {}
  for t in ddb(ctx, region):items("ListTagsOfResource", { ResourceArn = arn }) do out[#out + 1] = t end
  return out
end

local function retag(ctx, arn, region, old, new)
  local c = ddb(ctx, region)
  local set, del = common.tag_delta(old, new)
  if #set > 0 then c:TagResource{ ResourceArn = arn, Tags = set } end
  if #del > 0 then c:UntagResource{ ResourceArn = arn, TagKeys = del } end
end

-- Brings the table's encryption and each ACTIVE replica's key to what is declared, in one
-- UpdateTable: SSESpecification for the table's own region, ReplicaUpdates Update
-- KMSMasterKeyId for every replica whose key (read in its region) is another. One call,
-- because DynamoDB moves a global table to customer-managed keys only with a key for
-- every replica; a move to the AWS owned or managed key takes the replicas along.
local function settle_sse(ctx, name, old, new)
  local t = wait_active(ctx, name)
  local params = {}
  if not common.deep_equal(old.sse, new.sse)
      or not sse_matches(ctx, t.SSEDescription, new.sse, nil, ctx.region) then
    params.SSESpecification = sse_spec(new.sse) or { Enabled = false }
  end
  local updates = {}
  for _, r in ipairs(replicas_of(new)) do
    if r.kms and replica_status(t, r.region) == "ACTIVE" then
      local rt = describe(ctx, name, r.region)
      if not sse_matches(ctx, rt and rt.SSEDescription, new.sse, r.kms, r.region) then
        updates[#updates + 1] = { Update = { RegionName = r.region, KMSMasterKeyId = r.kms } }
      end
    end
  end
  if #updates > 0 then params.ReplicaUpdates = updates end
  if next(params) then update_table(ctx, name, params) end
end

-- Replicas -------------------------------------------------------------------------------

-- Brings a replica's own settings, in its region, to what is declared: its tags (AWS does
-- not carry the table's over; a replica without fo's tags gets them all) and its
-- point-in-time recovery (a new replica starts DISABLED). Reads first: a replica that is
-- as declared costs no write. `fresh`: the replica was added by this call a moment ago,
-- so it has neither (nothing to read): all its tags are written (TagResource sets the
-- keys it names, so a tag AWS did copy is only set again) and its recovery turned on if
-- declared.
local function settle_replica(ctx, t, r, fresh)
  local c = ddb(ctx, r.region)
  local arn = arn_in(t.TableArn, r.region)
  local have = not fresh
    and common.retry(ctx, "not_found_after_create", table_tags, ctx, arn, r.region)
  if fresh or not ctx:owns(have) then
    common.retry(ctx, "not_found_after_create", c.TagResource, c,
      { ResourceArn = arn, Tags = common.tag_list(ctx, r.tags) })
  else
    retag(ctx, arn, r.region, common.user_tags(have), r.tags)
  end
  local pitr = not fresh and pitr_enabled(ctx, t.TableName, r.region)
  if pitr ~= r.pitr then set_pitr(ctx, t.TableName, r.pitr, r.region) end
end

-- Removes the replicas of regions not in `keep` (a set), one at a time, each waited until
-- it is gone from the table's description.
local function remove_replicas(ctx, name, keep)
  local t = wait_active(ctx, name)
  for _, r in ipairs(t.Replicas or {}) do
    local region = r.RegionName
    if not keep[region] then
      if r.ReplicaStatus ~= "DELETING" then
        ctx:info("removing replica %s of table %s", region, name)
        ddb(ctx):UpdateTable{ TableName = name, ReplicaUpdates = { { Delete = { RegionName = region } } } }
      end
      wait_for(ctx, name, ("replica %s deleted"):format(region), M.WAIT.replica, function(x)
        return active(x) and replica_status(x, region) == nil
      end)
    end
  end
end

-- Creates the declared replicas that do not exist, one at a time, each waited until ACTIVE
-- (also one an interrupted run left CREATING), and settles each one's tags and point-in-time
-- recovery. `t`: the table as just seen ACTIVE, if it was (not read again before the first
-- replica). Returns the table as last seen ACTIVE with its replicas (nil without replicas).
local function add_replicas(ctx, p, t)
  local name, t_last = p.name, nil
  for _, r in ipairs(replicas_of(p)) do
    t = t or wait_active(ctx, name)
    local st = replica_status(t, r.region)
    if st == "DELETING" then
      wait_for(ctx, name, ("replica %s deleted"):format(r.region), M.WAIT.replica, function(x)
        return active(x) and replica_status(x, r.region) == nil
      end)
      st = nil
    end
    if st == "CREATION_FAILED" then
      error(("DynamoDB table %s: replica %s is CREATION_FAILED; remove it from replicas, apply, "
        .. "then add it again"):format(name, r.region), 0)
    end
    local fresh = false
    if st ~= "ACTIVE" then
      local pending = false
      if st == nil then
        fresh = true
        ctx:info("adding replica %s to table %s", r.region, name)
        local out = ddb(ctx):UpdateTable{ TableName = name, ReplicaUpdates = { { Create = {
          RegionName = r.region, KMSMasterKeyId = r.kms } } } }
        -- the answer shows the replica CREATING (minutes on AWS): no poll to repeat it
        pending = replica_status(out.TableDescription or {}, r.region) == "CREATING"
      end
      t = wait_for(ctx, name, ("replica %s ACTIVE"):format(r.region), M.WAIT.replica, function(x)
        local s = replica_status(x, r.region)
        if s == "CREATION_FAILED" then
          error(("DynamoDB table %s: replica %s failed to create"):format(name, r.region), 0)
        end
        return active(x) and s == "ACTIVE"
      end, pending)
    end
    -- also a replica an interrupted run created and never tagged (read first: what it has
    -- is not known)
    settle_replica(ctx, t, r, fresh)
    t_last, t = t, nil
  end
  return t_last
end

-- Outputs and observation ---------------------------------------------------------------

local function outputs_of(t)
  local o = { arn = t.TableArn, name = t.TableName, replica_arns = {} }
  if t.StreamSpecification and t.StreamSpecification.StreamEnabled then
    o.stream_arn = t.LatestStreamArn
  end
  for _, r in ipairs(t.Replicas or {}) do
    if r.ReplicaStatus == "ACTIVE" then o.replica_arns[r.RegionName] = arn_in(t.TableArn, r.RegionName) end
  end
  return o
end

local function key_of(t, key_type)
  local attr
  for _, k in ipairs(t.KeySchema or {}) do
    if k.KeyType == key_type then attr = k.AttributeName end
  end
  if not attr then return nil end
  for _, d in ipairs(t.AttributeDefinitions or {}) do
    if d.AttributeName == attr then return { name = attr, type = d.AttributeType } end
  end
  return { name = attr }
end

-- A replica as its region shows it: the declared entry when its tags, point-in-time
-- recovery and encryption are as declared, else an entry with what it has (drift).
local function observed_replica(ctx, t, r, declared, props)
  local arn = arn_in(t.TableArn, r.region)
  -- its tags, backups and description read at once (none depends on another)
  local got = common.together{
    function() return common.user_tags(table_tags(ctx, arn, r.region)) end,
    function() return pitr_enabled(ctx, t.TableName, r.region) end,
    function() return describe(ctx, t.TableName, r.region) or {} end,
  }
  local tags, pitr, rt = got[1], got[2], got[3]
  local d = rt.SSEDescription
  local sse_ok = sse_matches(ctx, d, props.sse, r.kms, r.region)
  if common.deep_equal(tags, r.tags) and pitr == r.pitr and sse_ok then
    return declared
  end
  -- its key as its region has it (a replica encrypted otherwise than declared is drift)
  local kms = r.kms
  if not sse_ok then kms = d and d.KMSMasterKeyArn or false end
  return { region_name = r.region, kms_master_key_id = kms, tags = tags,
    point_in_time_recovery = pitr }
end

-- What the table shows, in the declared form. Absent things that were declared show as
-- false (a nil would keep the recorded value: no drift seen).
local function observed(ctx, t, props)
  local o = { name = t.TableName, hash_key = key_of(t, "HASH"), range_key = key_of(t, "RANGE"),
    billing_mode = (t.BillingModeSummary or {}).BillingMode or "PROVISIONED" }
  if o.billing_mode == "PROVISIONED" then
    o.read_capacity = t.ProvisionedThroughput.ReadCapacityUnits
    o.write_capacity = t.ProvisionedThroughput.WriteCapacityUnits
  end
  if t.StreamSpecification and t.StreamSpecification.StreamEnabled then
    o.stream_view_type = t.StreamSpecification.StreamViewType
  elseif props.stream_view_type then
    o.stream_view_type = false
  end
  if not sse_matches(ctx, t.SSEDescription, props.sse, nil, ctx.region) then
    o.sse = t.SSEDescription and { enabled = true,
      kms_master_key_id = t.SSEDescription.KMSMasterKeyArn } or { enabled = false }
  end
  -- replicas: the declared ones that are ACTIVE (in declared form and order), then others;
  -- each replica's reads, the table's backups and its tags at once
  local status, declared_set = {}, {}
  for _, r in ipairs(t.Replicas or {}) do status[r.RegionName] = r.ReplicaStatus end
  local reads = {
    function() return pitr_enabled(ctx, t.TableName) end,
    function() return common.user_tags(table_tags(ctx, t.TableArn)) end,
  }
  for i, r in ipairs(replicas_of(props)) do
    declared_set[r.region] = true
    if status[r.region] == "ACTIVE" then
      reads[#reads + 1] = function()
        return observed_replica(ctx, t, r, (props.replicas or {})[i], props)
      end
    end
  end
  local got = common.together(reads)
  o.point_in_time_recovery = got[1]
  local reps = {}
  for i = 3, #reads do reps[#reps + 1] = got[i] end
  local extra = {}
  for region in pairs(status) do
    if not declared_set[region] then extra[#extra + 1] = region end
  end
  table.sort(extra)
  for _, region in ipairs(extra) do reps[#reps + 1] = region end
  o.replicas = reps
  o.tags = got[2]
  return o
end

-- The type ----------------------------------------------------------------------------------

local function key_check(v)
  if type(v.name) ~= "string" or (v.type ~= "S" and v.type ~= "N" and v.type ~= "B") then
    return false, 'a key is {name = "...", type = "S" | "N" | "B"}'
  end
  return true
end

fo.type("aws:dynamodb:table", {
  doc = "a DynamoDB table, with replicas in other regions (global tables 2019.11.21)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = function(v)
        return #v >= 3 and #v <= 255 and v:match("^[%w_.%-]+$") ~= nil,
          "3 to 255 letters, digits, _ . -"
      end },
      hash_key = { type = "table", required = true, check = key_check },
      range_key = { type = "table", check = key_check },
      billing_mode = { type = "string", default = "PAY_PER_REQUEST",
        enum = { "PAY_PER_REQUEST", "PROVISIONED" } },
      read_capacity = { type = "integer" },
      write_capacity = { type = "integer" },
      stream_view_type = { type = "string",
        enum = { "NEW_AND_OLD_IMAGES", "NEW_IMAGE", "OLD_IMAGE", "KEYS_ONLY" } },
      -- {enabled = true} (AWS-managed key aws/dynamodb) or {enabled = true,
      -- kms_master_key_id = "..."}; absent: the AWS-owned key
      sse = { type = "table" },
      point_in_time_recovery = { type = "boolean", default = false },
      -- region names, or {region_name = "...", kms_master_key_id = "...", tags = {...},
      -- point_in_time_recovery = bool}: a customer key of that region (needed when the
      -- table uses one), the replica's tags over the table's, its own PITR (default the
      -- table's); both are set and read in the replica's region
      replicas = { type = "list", default = {} },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name", "stream_arn", "replica_arns" },
    mutable_outputs = { "stream_arn", "replica_arns" },
    replace_on = { "name", "hash_key", "range_key" },
    delete_first = true, -- the name is unique in the region
  },
  create = function(ctx, p)
    check(ctx, p)
    local c = ddb(ctx)
    local defs, schema = key_params(p)
    local ok, out = pcall(c.CreateTable, c, { TableName = p.name, AttributeDefinitions = defs,
      KeySchema = schema, BillingMode = p.billing_mode, ProvisionedThroughput = throughput(p),
      StreamSpecification = p.stream_view_type and { StreamEnabled = true,
        StreamViewType = p.stream_view_type } or nil,
      SSESpecification = sse_spec(p.sse), Tags = common.tag_list(ctx, p.tags) })
    if not ok then
      -- the name is taken: by this create (a retried call) or by a table that is not its own
      local t = common.is(out, "ResourceInUseException") and describe(ctx, p.name)
      if not t then error(out, 0) end
      common.claim(ctx, ("a DynamoDB table named %q in %s"):format(p.name, ctx.region),
        t.TableArn, table_tags(ctx, t.TableArn))
    end
    -- The waiter's last answer is the table ACTIVE; point-in-time recovery leaves it so, and
    -- the replicas' wait's last answer is the table with them ACTIVE: the outputs come from
    -- these answers, the table is not described again.
    -- (a table the answer shows CREATING takes seconds: the first poll comes a period later)
    local creating = ok and (out.TableDescription or {}).TableStatus == "CREATING"
    local seen = common.wait(ctx, c, "TableExists", { TableName = p.name }, M.WAIT.table, creating)
    local t = seen and seen.Table
    if t and not active(t) then t = nil end
    if p.point_in_time_recovery then set_pitr(ctx, p.name, true) end
    t = add_replicas(ctx, p, t) or t
    return p.name, outputs_of(t or wait_active(ctx, p.name))
  end,
  read = function(ctx, name, props)
    local t = describe(ctx, name)
    if not t or t.TableStatus == "DELETING" then return nil end
    return outputs_of(t), observed(ctx, t, props)
  end,
  update = function(ctx, name, old, new)
    check(ctx, new)
    -- replicas no longer declared go first (streams cannot be turned off under them)
    local keep = {}
    for _, r in ipairs(replicas_of(new)) do keep[r.region] = true end
    remove_replicas(ctx, name, keep)
    if old.billing_mode ~= new.billing_mode or old.read_capacity ~= new.read_capacity
        or old.write_capacity ~= new.write_capacity then
      update_table(ctx, name, { BillingMode = new.billing_mode, ProvisionedThroughput = throughput(new) })
    end
    if (old.stream_view_type or nil) ~= (new.stream_view_type or nil) then
      local t = wait_active(ctx, name)
      if t.StreamSpecification and t.StreamSpecification.StreamEnabled then
        update_table(ctx, name, { StreamSpecification = { StreamEnabled = false } })
      end
      if new.stream_view_type then
        update_table(ctx, name, { StreamSpecification = { StreamEnabled = true,
          StreamViewType = new.stream_view_type } })
      end
    end
    settle_sse(ctx, name, old, new)
    if (old.point_in_time_recovery == true) ~= (new.point_in_time_recovery == true) then
      set_pitr(ctx, name, new.point_in_time_recovery == true)
    end
    add_replicas(ctx, new) -- also settles each replica's tags and PITR in its region
    local t = wait_active(ctx, name)
    if not common.deep_equal(old.tags, new.tags) then
      retag(ctx, t.TableArn, nil, old.tags, new.tags)
    end
    return outputs_of(t)
  end,
  delete = function(ctx, name)
    local t = describe(ctx, name)
    if not t then return end
    if t.TableStatus ~= "DELETING" then
      remove_replicas(ctx, name, {})
      local c = ddb(ctx)
      common.unless({ "ResourceNotFoundException" }, c.DeleteTable, c, { TableName = name })
    end
    common.wait(ctx, ddb(ctx), "TableNotExists", { TableName = name }, M.WAIT.table)
  end,
  adopt = function(ctx, p)
    local t = describe(ctx, p.name)
    if not t or ctx.known_ids[t.TableName] or t.TableStatus == "DELETING" then return nil end
    if not ctx:owns(table_tags(ctx, t.TableArn)) then return nil end
    return t.TableName, outputs_of(t)
  end,
})

return M
