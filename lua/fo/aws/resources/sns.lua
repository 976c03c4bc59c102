-- SNS resource types: aws:sns:topic, aws:sns:topic_policy (the topic's access policy, an
-- attribute of the topic) and aws:sns:subscription.
--
-- Facts this file relies on (SNS API reference and developer guide):
-- - CreateTopic is idempotent by name: the same name with the same attributes and tags
--   answers the existing topic's ARN; other tags or attributes are refused
--   (InvalidParameter "Invalid parameter: Tags Reason: Topic already exists with different
--   tags"), an existing topic without tags too. Tags go in the create call, fo:token among
--   them: a topic of that name that is not this create's does not carry the token, so SNS
--   refuses the call, and fo reports a conflict, never taking it over; an answered ARN is
--   the topic this create made (or a retried call of it did), so nothing is read after it.
--   Adoption finds the topic by name and fo's tags, the intent's token included.
-- - Attributes change one at a time with SetTopicAttributes; an empty value removes an
--   optional one (KmsMasterKeyId "" turns encryption off).
-- - Encryption with the AWS-managed key alias/aws/sns stops CloudWatch alarms from
--   publishing to the topic: alarm topics need a customer-managed key whose policy allows
--   cloudwatch.amazonaws.com (SNS developer guide, "Enable compatibility between event
--   sources from AWS services and encrypted topics"). kms_master_key_id names whichever key.
-- - A topic's policy is the Policy attribute; without one SNS shows its default policy
--   (owner-only access). Deleting an aws:sns:topic_policy puts that default back.
-- - Email, email-json, http and https subscriptions wait for the endpoint to confirm:
--   Subscribe answers "pending confirmation" (fo asks for ReturnSubscriptionArn so the
--   resource has an ARN anyway; outputs.pending says whether it is confirmed yet).
--   Unconfirmed subscriptions expire after 3 days; ListSubscriptionsByTopic shows their
--   ARN as "PendingConfirmation".
local common = require "fo.aws.resources.common"
local sns_policy = require "fo.aws.sns_policy"

local function sns(ctx) return ctx:client("sns") end

local function topic_name(arn)
  return (tostring(arn):match(":([^:]+)$"))
end

local function get_attributes_alone(ctx, arn)
  local client = sns(ctx)
  local out = common.unless({ "NotFound" }, client.GetTopicAttributes, client, { TopicArn = arn })
  return out and out.Attributes
end

-- In a refresh, a topic and its policy (a resource of its own) read the topic's attributes
-- once: the reads made at once share one call per topic.
local function get_attributes(ctx, arn)
  return common.batched(ctx, "sns.GetTopicAttributes", arn, function(arns)
    local unique, seen = {}, {}
    for _, a in ipairs(arns) do
      if not seen[a] then seen[a], unique[#unique + 1] = true, a end
    end
    local fns = {}
    for i, a in ipairs(unique) do fns[i] = function() return get_attributes_alone(ctx, a) end end
    local r, got = common.together(fns), {}
    for i, a in ipairs(unique) do got[a] = r[i] end
    return got
  end, function(a) return get_attributes_alone(ctx, a) end)
end

local function topic_tags(ctx, arn)
  local client = sns(ctx)
  local out = common.unless({ "ResourceNotFound", "NotFound" }, client.ListTagsForResource,
    client, { ResourceArn = arn })
  return out and out.Tags or {}
end

-- The ARN of the topic named `name` in the client's region, or nil.
local function find_topic(ctx, name)
  for t in sns(ctx):items("ListTopics") do
    if topic_name(t.TopicArn) == name then return t.TopicArn end
  end
  return nil
end

-- aws:sns:topic ------------------------------------------------------------------------------

-- The attributes the properties set: DisplayName, KmsMasterKeyId and the `attributes` map.
local function topic_attributes(p)
  local a = {}
  for k, v in pairs(p.attributes or {}) do a[k] = v end
  if p.display_name ~= "" then a.DisplayName = p.display_name end
  if p.kms_master_key_id ~= "" then a.KmsMasterKeyId = p.kms_master_key_id end
  return a
end

local function set_attribute(ctx, arn, name, value)
  local client = sns(ctx)
  common.retry(ctx, "not_found_after_create", client.SetTopicAttributes, client,
    { TopicArn = arn, AttributeName = name, AttributeValue = value })
end

fo.type("aws:sns:topic", {
  doc = "an SNS topic (tagged at creation; a topic of that name not made by this create is a "
    .. "conflict)",
  schema = {
    properties = {
      name = { type = "string", required = true, check = function(v)
        local base = v:match("^(.*)%.fifo$") or v
        return #v <= 256 and base:match("^[%w_%-]+$") ~= nil,
          "1 to 256 letters, digits, _ and - (FIFO topics end in .fifo)"
      end },
      display_name = { type = "string", default = "" },
      kms_master_key_id = { type = "string", default = "" },
      -- other topic attributes (DeliveryPolicy, TracingConfig, FifoTopic, ...), as strings
      attributes = { type = "map", default = {} },
      tags = { type = "map", default = {} },
    },
    outputs = { "arn", "name" },
    replace_on = { "name" },
  },
  create = function(ctx, p)
    local attrs = topic_attributes(p)
    local client = sns(ctx)
    local what = ("an SNS topic named %q in %s"):format(p.name, ctx.region)
    local ok, out = pcall(client.CreateTopic, client, { Name = p.name,
      Attributes = next(attrs) and attrs or nil, Tags = common.tag_list(ctx, p.tags) })
    if not ok then
      if common.is(out, "InvalidParameter") and tostring(out.message):find("already exists") then
        local arn = find_topic(ctx, p.name)
        common.conflict(ctx, what, arn or p.name, arn and topic_tags(ctx, arn))
      end
      error(out, 0)
    end
    -- (SNS answers an existing topic only when its tags are these, fo:token included)
    local arn = out.TopicArn
    return arn, { arn = arn, name = p.name }
  end,
  read = function(ctx, arn, props)
    -- the topic's attributes and its tags at once
    local a, r = common.read_at_once(function() return get_attributes(ctx, arn) end,
      { function() return topic_tags(ctx, arn) end })
    if not a then return nil end
    local attrs = {}
    for k in pairs(props.attributes or {}) do
      -- FifoTopic reads back as given; a removed attribute shows as ""
      attrs[k] = a[k] or ""
    end
    return { arn = arn, name = topic_name(arn) }, { name = topic_name(arn),
      display_name = a.DisplayName or "", kms_master_key_id = a.KmsMasterKeyId or "",
      attributes = attrs, tags = common.user_tags(r[1]) }
  end,
  update = function(ctx, arn, old, new, outputs)
    local before, after = topic_attributes(old), topic_attributes(new)
    local names = {}
    for k in pairs(before) do names[k] = true end
    for k in pairs(after) do names[k] = true end
    local sorted = {}
    for k in pairs(names) do sorted[#sorted + 1] = k end
    table.sort(sorted)
    for _, k in ipairs(sorted) do
      if before[k] ~= after[k] then set_attribute(ctx, arn, k, after[k] or "") end
    end
    local set, del = common.tag_delta(old.tags, new.tags)
    local client = sns(ctx)
    if #set > 0 then client:TagResource{ ResourceArn = arn, Tags = set } end
    if #del > 0 then client:UntagResource{ ResourceArn = arn, TagKeys = del } end
    return outputs
  end,
  delete = function(ctx, arn)
    -- DeleteTopic of a topic that does not exist succeeds (AWS); NotFound is tolerated too.
    local client = sns(ctx)
    common.unless({ "NotFound" }, client.DeleteTopic, client, { TopicArn = arn })
  end,
  adopt = function(ctx, p)
    for t in sns(ctx):items("ListTopics") do
      if topic_name(t.TopicArn) == p.name and not ctx.known_ids[t.TopicArn]
          and ctx:owns(topic_tags(ctx, t.TopicArn)) then
        return t.TopicArn, { arn = t.TopicArn, name = p.name }
      end
    end
    return nil
  end,
})

-- aws:sns:topic_policy -----------------------------------------------------------------------

--- The policy SNS gives a topic that has none of its own (owner-only access), as SNS
--- writes it: what deleting an aws:sns:topic_policy restores.
local function default_policy(arn)
  local account = tostring(arn):match("^arn:[^:]+:sns:[^:]*:(%d+):") or ""
  return sns_policy.default_topic_policy(arn, account)
end

fo.type("aws:sns:topic_policy", {
  doc = "the access policy of an SNS topic (its Policy attribute; deleting it restores SNS's "
    .. "default owner-only policy)",
  schema = {
    properties = {
      topic_arn = { type = "string", required = true },
      -- a Lua table (written as JSON) or JSON text
      policy = { type = "any", required = true, check = function(v)
        return type(v) == "table" or type(v) == "string", "a table or JSON text"
      end },
    },
    outputs = { "topic_arn" },
    replace_on = { "topic_arn" },
  },
  diff = common.diff({ "topic_arn" }, { policy = common.json_equal }),
  create = function(ctx, p)
    set_attribute(ctx, p.topic_arn, "Policy", common.json_text(p.policy))
    return p.topic_arn, { topic_arn = p.topic_arn }
  end,
  read = function(ctx, arn, props)
    local a = get_attributes(ctx, arn)
    if not a then return nil end
    return { topic_arn = arn }, { policy = common.as_recorded(a.Policy, props.policy,
      common.json_equal) }
  end,
  update = function(ctx, arn, _, new, outputs)
    set_attribute(ctx, arn, "Policy", common.json_text(new.policy))
    return outputs
  end,
  delete = function(ctx, arn)
    local client = sns(ctx)
    common.unless({ "NotFound" }, client.SetTopicAttributes, client, { TopicArn = arn,
      AttributeName = "Policy", AttributeValue = default_policy(arn) })
  end,
  adopt = function(ctx, p)
    -- Setting the attribute again is harmless: the topic is the identity.
    if ctx.known_ids[p.topic_arn] or not get_attributes(ctx, p.topic_arn) then return nil end
    return p.topic_arn, { topic_arn = p.topic_arn }
  end,
})

-- aws:sns:subscription -----------------------------------------------------------------------

-- The topic's subscription for protocol + endpoint, or nil (also when the topic is gone).
local function find_subscription(ctx, p)
  local client = sns(ctx)
  local ok, err = pcall(function()
    for s in client:items("ListSubscriptionsByTopic", { TopicArn = p.topic_arn }) do
      if s.Protocol == p.protocol and s.Endpoint == p.endpoint then error({ found = s }, 0) end
    end
  end)
  if ok then return nil end
  if type(err) == "table" and err.found then return err.found end
  if common.is(err, "NotFound") then return nil end
  error(err, 0)
end

-- The attributes a subscription is given at Subscribe (its `attributes`), as SNS reports
-- them, without the values SNS reports when none was given.
local SUB_ATTRIBUTES = { "DeliveryPolicy", "FilterPolicy", "FilterPolicyScope",
  "RawMessageDelivery", "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy" }
local SUB_DEFAULTS = { RawMessageDelivery = "false", FilterPolicyScope = "MessageAttributes" }

-- A subscription read by its ARN (GetSubscriptionAttributes, which answers pending ones
-- too): outputs and what it observes, or nil when SNS does not know it.
local function read_by_arn(ctx, arn)
  local client = sns(ctx)
  local out = common.unless({ "NotFound" }, client.GetSubscriptionAttributes, client,
    { SubscriptionArn = arn })
  local a = out and out.Attributes
  if not a then return nil end
  local attributes = {}
  for _, k in ipairs(SUB_ATTRIBUTES) do
    if a[k] ~= nil and a[k] ~= SUB_DEFAULTS[k] then attributes[k] = a[k] end
  end
  return { arn = arn, pending = a.PendingConfirmation == "true" }, { topic_arn = a.TopicArn,
    protocol = a.Protocol, endpoint = a.Endpoint, attributes = attributes }
end

local PENDING = { "email", "email-json", "http", "https" }
local function confirms(protocol)
  for _, p in ipairs(PENDING) do if p == protocol then return true end end
  return false
end

fo.type("aws:sns:subscription", {
  doc = "a subscription of an endpoint to an SNS topic (email/http(s) stay pending until "
    .. "the endpoint confirms)",
  schema = {
    properties = {
      topic_arn = { type = "string", required = true },
      protocol = { type = "string", required = true, enum = { "email", "email-json", "http",
        "https", "sqs", "lambda", "firehose", "application", "sms" } },
      endpoint = { type = "string", required = true },
      -- subscription attributes at Subscribe (FilterPolicy, RawMessageDelivery, ...);
      -- every property forces a new subscription (the type has no update)
      attributes = { type = "map", default = {} },
    },
    outputs = { "arn", "pending" },
    mutable_outputs = { "pending" },
    replace_on = { "topic_arn", "protocol", "endpoint", "attributes" },
  },
  create = function(ctx, p)
    local client = sns(ctx)
    -- Subscribe answers the topic's subscription of this protocol and endpoint as if new,
    -- and subscriptions carry no tags: a confirmed one already there is not this create's
    -- (after a crash, adopt takes the interrupted one). A pending one is listed without
    -- its ARN, so nothing tells whose it is: Subscribe gives it back (as adopt expects).
    local s = find_subscription(ctx, p)
    if s and s.SubscriptionArn ~= "PendingConfirmation" then
      common.conflict(ctx, ("a %s subscription of %s to topic %s"):format(p.protocol,
        p.endpoint, p.topic_arn), s.SubscriptionArn)
    end
    local arn = common.retry(ctx, "not_found_after_create", client.Subscribe, client, {
      TopicArn = p.topic_arn, Protocol = p.protocol, Endpoint = p.endpoint,
      Attributes = next(p.attributes) and p.attributes or nil,
      ReturnSubscriptionArn = true }).SubscriptionArn
    return arn, { arn = arn, pending = confirms(p.protocol) }
  end,
  read = function(ctx, arn, props)
    if props.protocol == nil or props.endpoint == nil then
      -- nothing declared (fo-run state import): the subscription is read by its ARN
      return read_by_arn(ctx, arn)
    end
    local s = find_subscription(ctx, props)
    -- the topic's subscription of this protocol and endpoint is another one than `arn`:
    -- `arn` is gone (or, in an import, not the declared subscription)
    if not s or s.SubscriptionArn ~= "PendingConfirmation" and s.SubscriptionArn ~= arn then
      return nil
    end
    return { arn = arn, pending = s.SubscriptionArn == "PendingConfirmation" }, {}
  end,
  delete = function(ctx, arn, props)
    local client = sns(ctx)
    local ok, err = pcall(client.Unsubscribe, client, { SubscriptionArn = arn })
    if ok or common.is(err, "NotFound") then return end
    if common.is(err, "InvalidParameter") and confirms(props.protocol) then
      -- AWS refuses to unsubscribe an unconfirmed subscription; it expires by itself
      ctx:warn("subscription %s is pending confirmation: AWS removes it after 3 days", arn)
      return
    end
    error(err, 0)
  end,
  adopt = function(ctx, p)
    -- Subscribe is idempotent for the same endpoint: the interrupted create's
    -- subscription is the one listed for this protocol and endpoint.
    -- A pending one is listed without its ARN: none is adopted, and the create that
    -- follows gets the same subscription back from Subscribe.
    local s = find_subscription(ctx, p)
    if not s or s.SubscriptionArn == "PendingConfirmation" or ctx.known_ids[s.SubscriptionArn] then
      return nil
    end
    return s.SubscriptionArn, { arn = s.SubscriptionArn, pending = false }
  end,
})
