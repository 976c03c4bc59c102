-- SNS (regional): topics (idempotent by name, AWS's attribute set and default policy),
-- subscriptions (email/http(s) wait for confirmation; sqs/lambda/firehose/application are
-- confirmed at once), tags, and Publish (recorded with its deliveries; fo.sim.sns_state).
-- Codes and messages as SNS writes them: InvalidParameter "Invalid parameter: <what>",
-- NotFound "Topic does not exist", ResourceNotFound for tags of a missing topic.
local state = require "fo.sim.sns_state"
local crypto = require "fo.crypto"
local records = require "fo.sim.records"
local kms_use = require "fo.sim.kms_use"
local sns_policy = require "fo.aws.sns_policy"

local M = {}

local PAGE = 100 -- ListTopics and ListSubscriptionsByTopic pages

-- Attributes SetTopicAttributes accepts (and CreateTopic, plus FifoTopic). Delivery-status
-- logging attributes exist for each protocol.
local SETTABLE = { DeliveryPolicy = true, DisplayName = true, Policy = true,
  TracingConfig = true, KmsMasterKeyId = true, SignatureVersion = true,
  ContentBasedDeduplication = true, ArchivePolicy = true, FifoThroughputScope = true,
  DataProtectionPolicy = true }
for _, proto in ipairs{ "HTTP", "Firehose", "Lambda", "Application", "SQS" } do
  for _, suffix in ipairs{ "SuccessFeedbackRoleArn", "SuccessFeedbackSampleRate",
    "FailureFeedbackRoleArn" } do
    SETTABLE[proto .. suffix] = true
  end
end

local SUB_ATTRS = { DeliveryPolicy = true, FilterPolicy = true, FilterPolicyScope = true,
  RawMessageDelivery = true, RedrivePolicy = true, SubscriptionRoleArn = true,
  ReplayPolicy = true }

local function invalid(ctx, what)
  ctx:fail("InvalidParameter", "Invalid parameter: " .. what, 400)
end

local function not_found(ctx, what)
  ctx:fail("NotFound", what or "Topic does not exist", 404)
end

local function db_of(ctx)
  return state.tables(ctx.db)
end

local next_seq = records.next_seq

-- The topic an ARN names in this region and account (NotFound otherwise, as SNS answers
-- for a well-formed ARN of a missing topic; a malformed one is InvalidParameter).
local function topic_of(ctx, db, arn, param)
  local region, account = state.parse_arn(arn)
  if not region then invalid(ctx, param or "TopicArn") end
  local t = db.topics[arn]
  if not t or region ~= ctx.region or account ~= ctx.account or ctx:fresh(t) then
    not_found(ctx)
  end
  return t
end

local EFFECTIVE_DELIVERY_POLICY = '{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,'
  .. '"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,'
  .. '"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,'
  .. '"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}'

local function json_ok(s)
  return (pcall(require("cjson").decode, s))
end

-- Checks one topic attribute value (what SNS refuses beyond the name).
local function check_attr(ctx, name, value, fifo)
  if (name == "Policy" or name == "DeliveryPolicy" or name == "DataProtectionPolicy"
      or name == "ArchivePolicy") and value ~= "" and not json_ok(value) then
    invalid(ctx, ("Attributes Reason: %s: failed to parse JSON"):format(name))
  end
  if name == "ContentBasedDeduplication" and not fifo then
    invalid(ctx, "ContentBasedDeduplication Reason: Content-based deduplication can only be "
      .. "set for FIFO topics")
  end
  if name == "SignatureVersion" and value ~= "1" and value ~= "2" then
    invalid(ctx, "SignatureVersion Reason: must be 1 or 2")
  end
  if name == "TracingConfig" and value ~= "Active" and value ~= "PassThrough" then
    invalid(ctx, "TracingConfig Reason: must be Active or PassThrough")
  end
end

local function tags_map(list)
  local t = {}
  for _, tag in ipairs(list or {}) do t[tag.Key] = tag.Value end
  return t
end

local function same_map(a, b)
  for k, v in pairs(a) do if b[k] ~= v then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-------------------------------------------------------------------------------
-- Topics

function M.CreateTopic(ctx, p)
  local db = db_of(ctx)
  local name = p.Name
  local attrs = p.Attributes or {}
  local fifo = attrs.FifoTopic == "true"
  local base = name:match("^(.*)%.fifo$")
  if #name < 1 or #name > 256 or not (base or name):match("^[%w_%-]+$")
      or (base ~= nil) ~= fifo then
    -- 1..256 of letters, digits, _ and -; FIFO topics end in .fifo and set FifoTopic=true.
    invalid(ctx, fifo and "Topic Name Reason: FIFO topic names must end with .fifo"
      or "Topic Name")
  end
  for k, v in pairs(attrs) do
    if not SETTABLE[k] and k ~= "FifoTopic" then
      invalid(ctx, ("Attributes Reason: Unknown attribute %s"):format(k))
    end
    check_attr(ctx, k, v, fifo)
  end
  local arn = ctx:arn(name)
  local existing = db.topics[arn]
  if existing then
    -- Idempotent by name: the same ARN, unless the request sets other attribute values or
    -- other tags than the topic has.
    for k, v in pairs(attrs) do
      local cur = existing.attrs[k]
      if k == "FifoTopic" then cur = existing.fifo and "true" or "false" end
      if cur ~= v then
        invalid(ctx, "Attributes Reason: Topic already exists with different attributes")
      end
    end
    if p.Tags and not same_map(tags_map(p.Tags), existing.tags) then
      invalid(ctx, "Tags Reason: Topic already exists with different tags")
    end
    return { TopicArn = arn }
  end
  if p.Tags and #p.Tags > 50 then
    ctx:fail("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded",
      400)
  end
  local t = { TopicArn = arn, Name = name, attrs = {}, tags = tags_map(p.Tags), fifo = fifo,
    seq = next_seq(db), deleted_subs = 0 }
  for k, v in pairs(attrs) do
    if k ~= "FifoTopic" then t.attrs[k] = v end
  end
  db.topics[arn] = t
  ctx:created(t)
  return { TopicArn = arn }
end

function M.GetTopicAttributes(ctx, p)
  local db = db_of(ctx)
  local t = topic_of(ctx, db, p.TopicArn)
  local confirmed, pending = 0, 0
  for _, s in pairs(db.subscriptions) do
    if s.TopicArn == t.TopicArn then
      if s.confirmed then confirmed = confirmed + 1 else pending = pending + 1 end
    end
  end
  local a = { TopicArn = t.TopicArn, Owner = ctx.account,
    Policy = t.attrs.Policy or sns_policy.default_topic_policy(t.TopicArn, ctx.account),
    DisplayName = t.attrs.DisplayName or "",
    SubscriptionsConfirmed = tostring(confirmed), SubscriptionsPending = tostring(pending),
    SubscriptionsDeleted = tostring(t.deleted_subs or 0),
    EffectiveDeliveryPolicy = EFFECTIVE_DELIVERY_POLICY }
  for k, v in pairs(t.attrs) do
    if a[k] == nil then a[k] = v end
  end
  if t.fifo then
    a.FifoTopic = "true"
    a.ContentBasedDeduplication = t.attrs.ContentBasedDeduplication or "false"
  end
  return { Attributes = a }
end

function M.SetTopicAttributes(ctx, p)
  local db = db_of(ctx)
  local t = topic_of(ctx, db, p.TopicArn)
  if not SETTABLE[p.AttributeName] then invalid(ctx, "AttributeName") end
  local v = p.AttributeValue or ""
  check_attr(ctx, p.AttributeName, v, t.fifo)
  -- An empty value removes an optional attribute (KmsMasterKeyId "" turns SSE off).
  if v == "" and p.AttributeName ~= "DisplayName" then v = nil end
  t.attrs[p.AttributeName] = v
  return {}
end

-- Opaque page tokens naming where the next page starts (the creation sequence number of
-- its first item), so deleting items between calls neither skips nor repeats any.
local function token_of(seq) return crypto.base64_encode(("{\"seq\":%d}"):format(seq)) end
local function start_of(ctx, tok)
  if tok == nil or tok == "" then return 0 end
  local ok, raw = pcall(crypto.base64_decode, tok)
  local seq = ok and raw and tonumber(raw:match('^{"seq":(%d+)}$'))
  if not seq then invalid(ctx, "NextToken") end
  return math.tointeger(seq)
end

-- One page of `list` (sorted by seq) from the token's position: items, next token.
local function page(ctx, list, tok)
  local from = start_of(ctx, tok)
  local items, nxt = {}, nil
  for _, x in ipairs(list) do
    if x.seq >= from then
      if #items == PAGE then nxt = token_of(x.seq) break end
      items[#items + 1] = x
    end
  end
  return items, nxt
end

function M.ListTopics(ctx, p)
  local db = db_of(ctx)
  local list = {}
  for _, t in pairs(db.topics) do list[#list + 1] = t end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  local items, nxt = page(ctx, list, p.NextToken)
  local out = { Topics = {}, NextToken = nxt }
  for i, t in ipairs(items) do out.Topics[i] = { TopicArn = t.TopicArn } end
  return out
end

-- DeleteTopic is idempotent: deleting a topic that does not exist succeeds. Its
-- subscriptions go with it.
function M.DeleteTopic(ctx, p)
  local db = db_of(ctx)
  if not state.parse_arn(p.TopicArn) then invalid(ctx, "TopicArn") end
  db.topics[p.TopicArn] = nil
  db.messages[p.TopicArn] = nil
  for arn, s in pairs(db.subscriptions) do
    if s.TopicArn == p.TopicArn then db.subscriptions[arn] = nil end
  end
  return {}
end

-------------------------------------------------------------------------------
-- Subscriptions

-- protocol → {check of the endpoint, confirmed at once?}
local PROTOCOLS = {
  email = { function(e) return e:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") end, false, "Email address" },
  ["email-json"] = { function(e) return e:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") end, false,
    "Email address" },
  http = { function(e) return e:match("^http://[^%s]+$") end, false, "Endpoint" },
  https = { function(e) return e:match("^https://[^%s]+$") end, false, "Endpoint" },
  sqs = { function(e) return e:match("^arn:aws:sqs:[%w%-]+:%d+:[%w_%-%.]+$") end, true,
    "SQS endpoint ARN" },
  lambda = { function(e) return e:match("^arn:aws:lambda:[%w%-]+:%d+:function:[%w_%-:]+$") end,
    true, "Lambda endpoint ARN" },
  firehose = { function(e) return e:match("^arn:aws:firehose:[%w%-]+:%d+:deliverystream/.+$") end,
    true, "Firehose endpoint ARN" },
  application = { function(e) return e:match("^arn:aws:sns:[%w%-]+:%d+:endpoint/.+$") end, true,
    "Application endpoint ARN" },
  sms = { function(e) return e:match("^%+?%d[%d%-]+$") end, true, "SMS endpoint" },
}

function M.Subscribe(ctx, p)
  local db = db_of(ctx)
  local t = topic_of(ctx, db, p.TopicArn)
  local spec = PROTOCOLS[p.Protocol]
  if not spec then invalid(ctx, "Invalid protocol type: " .. tostring(p.Protocol)) end
  local endpoint = p.Endpoint or ""
  if not spec[1](endpoint) then invalid(ctx, spec[3]) end
  local attrs = p.Attributes or {}
  for k, v in pairs(attrs) do
    if not SUB_ATTRS[k] then invalid(ctx, ("Attributes Reason: Unknown attribute %s"):format(k)) end
    if (k == "FilterPolicy" or k == "DeliveryPolicy" or k == "RedrivePolicy")
        and not json_ok(v) then
      invalid(ctx, ("%s: failed to parse JSON"):format(k))
    end
    if k == "RawMessageDelivery" and v ~= "true" and v ~= "false" then
      invalid(ctx, "Attributes Reason: RawMessageDelivery: Invalid value [" .. v
        .. "]. Must be true or false.")
    end
  end
  if p.Protocol == "firehose" and not attrs.SubscriptionRoleArn then
    invalid(ctx, "Attributes Reason: SubscriptionRoleArn is required for "
      .. "firehose subscriptions")
  end
  -- Subscribing the same endpoint again returns the existing subscription.
  for _, s in pairs(db.subscriptions) do
    if s.TopicArn == t.TopicArn and s.Protocol == p.Protocol and s.Endpoint == endpoint then
      if not same_map(attrs, s.attrs) and next(attrs) then
        invalid(ctx, "Attributes Reason: Subscription already exists with different attributes")
      end
      if not s.confirmed and not p.ReturnSubscriptionArn then
        return { SubscriptionArn = "pending confirmation" }
      end
      return { SubscriptionArn = s.SubscriptionArn }
    end
  end
  local s = { SubscriptionArn = t.TopicArn .. ":" .. state.uuid(ctx), TopicArn = t.TopicArn,
    Protocol = p.Protocol, Endpoint = endpoint, Owner = ctx.account, confirmed = spec[2],
    attrs = attrs, seq = next_seq(db) }
  db.subscriptions[s.SubscriptionArn] = s
  if not s.confirmed and not p.ReturnSubscriptionArn then
    return { SubscriptionArn = "pending confirmation" }
  end
  return { SubscriptionArn = s.SubscriptionArn }
end

function M.ListSubscriptionsByTopic(ctx, p)
  local db = db_of(ctx)
  local t = topic_of(ctx, db, p.TopicArn)
  local list = {}
  for _, s in pairs(db.subscriptions) do
    if s.TopicArn == t.TopicArn then list[#list + 1] = s end
  end
  table.sort(list, function(a, b) return a.seq < b.seq end)
  local items, nxt = page(ctx, list, p.NextToken)
  local out = { Subscriptions = {}, NextToken = nxt }
  for _, s in ipairs(items) do
    out.Subscriptions[#out.Subscriptions + 1] = { SubscriptionArn = s.confirmed
      and s.SubscriptionArn or "PendingConfirmation", Owner = s.Owner, Protocol = s.Protocol,
      Endpoint = s.Endpoint, TopicArn = s.TopicArn }
  end
  return out
end

-- The topic ARN a subscription ARN (<topic ARN>:<id>) names; a malformed one is refused.
local function subscription_topic(ctx, arn)
  local topic_arn = type(arn) == "string" and arn:match("^(arn:aws:sns:[^:]+:%d+:[^:]+):[%x%-]+$")
  if not topic_arn then invalid(ctx, "SubscriptionArn") end
  return topic_arn
end

-- A subscription's properties, as SNS gives them (all strings): its identity (ARN, topic,
-- owner, protocol, endpoint), whether it waits for confirmation, and the attributes set
-- at Subscribe with SNS's defaults (RawMessageDelivery false; a filter policy's scope).
-- A pending subscription has its ARN too (Subscribe with ReturnSubscriptionArn gives it).
function M.GetSubscriptionAttributes(ctx, p)
  local db = db_of(ctx)
  local arn = p.SubscriptionArn
  local topic_arn = subscription_topic(ctx, arn)
  local s = db.subscriptions[arn]
  if not s or state.parse_arn(topic_arn) ~= ctx.region then
    not_found(ctx, "Subscription does not exist")
  end
  local out = { SubscriptionArn = s.SubscriptionArn, TopicArn = s.TopicArn, Owner = s.Owner,
    Protocol = s.Protocol, Endpoint = s.Endpoint,
    PendingConfirmation = tostring(not s.confirmed),
    ConfirmationWasAuthenticated = tostring(s.confirmed and PROTOCOLS[s.Protocol][2]),
    RawMessageDelivery = "false" }
  for k, v in pairs(s.attrs or {}) do out[k] = v end
  if out.FilterPolicy and not out.FilterPolicyScope then
    out.FilterPolicyScope = "MessageAttributes"
  end
  return { Attributes = out }
end

function M.Unsubscribe(ctx, p)
  local db = db_of(ctx)
  local arn = p.SubscriptionArn
  local topic_arn = subscription_topic(ctx, arn)
  local s = db.subscriptions[arn]
  if not s then not_found(ctx, "Subscription does not exist") end
  db.subscriptions[arn] = nil
  local t = db.topics[s.TopicArn]
  if t then t.deleted_subs = (t.deleted_subs or 0) + 1 end
  return {}
end

-------------------------------------------------------------------------------
-- Tags

local function tagged(ctx, db, arn)
  local t = state.parse_arn(arn) and db.topics[arn]
  if not t then ctx:fail("ResourceNotFound", "Resource does not exist", 404) end
  return t
end

function M.TagResource(ctx, p)
  local db = db_of(ctx)
  local t = tagged(ctx, db, p.ResourceArn)
  local tags = {}
  for k, v in pairs(t.tags) do tags[k] = v end
  for _, tag in ipairs(p.Tags) do tags[tag.Key] = tag.Value end
  if count(tags) > 50 then
    ctx:fail("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded",
      400)
  end
  t.tags = tags
  return {}
end

function M.UntagResource(ctx, p)
  local db = db_of(ctx)
  local t = tagged(ctx, db, p.ResourceArn)
  for _, k in ipairs(p.TagKeys) do t.tags[k] = nil end
  return {}
end

function M.ListTagsForResource(ctx, p)
  local db = db_of(ctx)
  local t = tagged(ctx, db, p.ResourceArn)
  local keys = {}
  for k in pairs(t.tags) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = { Key = k, Value = t.tags[k] } end
  return { Tags = out }
end

-------------------------------------------------------------------------------
-- Publish

local MAX_MESSAGE = 262144 -- 256 KB

-- Message attributes as SNS checks them; Binary values are kept base64 in the record
-- (the state file is text).
local function message_attributes(ctx, attrs)
  if not attrs then return nil end
  local out = {}
  for name, a in pairs(attrs) do
    if not name:match("^[%w_%-%.]+$") or #name > 256 or name:sub(1, 4):lower() == "aws."
        or name:sub(1, 7):lower() == "amazon." then
      invalid(ctx, ("The message attribute name '%s' is invalid"):format(name))
    end
    local dt = a.DataType or ""
    local base = dt:match("^([%a%.]+)")
    if base ~= "String" and base ~= "Number" and base ~= "Binary" and base ~= "String.Array" then
      invalid(ctx, ("The message attribute '%s' has an invalid message attribute type, the set "
        .. "of supported type prefixes is Binary, Number, and String."):format(name))
    end
    if base == "Binary" then
      if not a.BinaryValue or a.BinaryValue == "" then
        invalid(ctx, ("The message attribute '%s' must contain non-empty message attribute "
          .. "value for message attribute type '%s'."):format(name, dt))
      end
      out[name] = { DataType = dt, BinaryValue = crypto.base64_encode(a.BinaryValue) }
    else
      if not a.StringValue or a.StringValue == "" then
        invalid(ctx, ("The message attribute '%s' must contain non-empty message attribute "
          .. "value for message attribute type '%s'."):format(name, dt))
      end
      if base == "Number" and not tonumber(a.StringValue) then
        invalid(ctx, ("Could not cast message attribute '%s' value to number."):format(name))
      end
      out[name] = { DataType = dt, StringValue = a.StringValue }
    end
  end
  return out
end

function M.Publish(ctx, p)
  local db = db_of(ctx)
  if p.PhoneNumber then
    invalid(ctx, "PhoneNumber Reason: SMS is not supported by the simulator")
  end
  local arn = p.TopicArn or p.TargetArn
  if not arn then invalid(ctx, "TopicArn or TargetArn Reason: no value for required parameter") end
  if p.TopicArn and p.TargetArn then
    invalid(ctx, "TopicArn Reason: Only one of TopicArn or TargetArn may be specified")
  end
  local t = topic_of(ctx, db, arn, p.TopicArn and "TopicArn" or "TargetArn")
  if #p.Message == 0 then invalid(ctx, "Empty message") end
  if #p.Message > MAX_MESSAGE then invalid(ctx, "Message too long") end
  if p.Subject and (#p.Subject == 0 or #p.Subject > 100 or p.Subject:find("[\r\n]")) then
    invalid(ctx, "Subject")
  end
  if p.MessageStructure then
    if p.MessageStructure ~= "json" then invalid(ctx, "MessageStructure") end
    local ok, doc = pcall(require("cjson").decode, p.Message)
    if not ok or type(doc) ~= "table" then
      invalid(ctx, "Message Structure - JSON message body failed to parse")
    end
    if doc.default == nil then invalid(ctx, "Message Structure - No default entry in JSON message body") end
  end
  if t.fifo and not p.MessageGroupId then
    invalid(ctx, "The MessageGroupId parameter is required for FIFO topics")
  end
  if not t.fifo and (p.MessageGroupId or p.MessageDeduplicationId) then
    invalid(ctx, "MessageGroupId Reason: The request includes MessageGroupId parameter that is "
      .. "not valid for this topic type")
  end
  local attrs = message_attributes(ctx, p.MessageAttributes)
  -- An encrypted topic: SNS generates a data key and decrypts it on the publisher's behalf,
  -- so the publisher needs both on the topic's key (KMSNotFound, KMSAccessDenied ... else).
  -- The key is checked here, not when it is set (AWS stores KmsMasterKeyId unchecked).
  local key = state.kms_key(t)
  if key then
    for _, action in ipairs{ "kms:GenerateDataKey", "kms:Decrypt" } do
      local ok, code, msg, status = kms_use.use(ctx, { key = key, action = action,
        service = "sns.amazonaws.com", context = { ["aws:sns:topicArn"] = t.TopicArn } })
      if not ok then ctx:fail(code, msg, status) end
    end
  end
  local id = state.uuid(ctx)
  state.publish(db, t, { Message = p.Message, Subject = p.Subject, MessageAttributes = attrs,
    MessageGroupId = p.MessageGroupId }, id, ctx:now())
  local out = { MessageId = id }
  if t.fifo then
    db.fifo_seq = (db.fifo_seq or 0) + 1
    out.SequenceNumber = ("%020d"):format(db.fifo_seq)
  end
  return out
end

return M
