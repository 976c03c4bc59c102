-- SNS state shared by the SNS handlers and the CloudWatch alarm actions (fo.sim.metrics):
-- the db layout, topic ARNs, and publishing (every published message is recorded with
-- the subscriptions it was delivered to; sim:deliveries(topic_arn) reads them back).
--
-- db (per account and region) = {
--   topics = { [arn] = {TopicArn=, Name=, attrs = {name → string}, tags = {k → v}, seq=} },
--   subscriptions = { [arn] = {SubscriptionArn=, TopicArn=, Protocol=, Endpoint=, Owner=,
--                     confirmed = bool, attrs = {...}, seq=} },
--   messages = { [topic arn] = { {MessageId=, TopicArn=, Subject=, Message=,
--                MessageAttributes=, Timestamp=, Deliveries = { {SubscriptionArn=,
--                Protocol=, Endpoint=} } }, ... } },  -- newest last, at most MAX_KEPT
--   seq = n }
local M = {}

--- Messages kept per topic (older ones are dropped so the state file stays small).
M.MAX_KEPT = 500

function M.tables(db)
  db.topics = db.topics or {}
  db.subscriptions = db.subscriptions or {}
  db.messages = db.messages or {}
  db.seq = db.seq or 0
  return db
end

--- region, account, name of a topic ARN (nil when it is not one).
function M.parse_arn(arn)
  if type(arn) ~= "string" then return nil end
  local region, account, name = arn:match("^arn:aws:sns:([%w%-]+):(%d+):([%w_%-%.]+)$")
  return region, account, name
end

--- The KMS key a topic is encrypted with (its KmsMasterKeyId: id, ARN or alias), or nil.
function M.kms_key(topic)
  local k = topic.attrs and topic.attrs.KmsMasterKeyId
  if k == nil or k == "" then return nil end
  return k
end

--- A lower-case version-4 UUID from the sim's id stream (message and subscription ids).
function M.uuid(ctx_or_store)
  local h = ctx_or_store:chars(32, "0123456789abcdef")
  local v = ("89ab"):sub(tonumber(h:sub(17, 17), 16) % 4 + 1, tonumber(h:sub(17, 17), 16) % 4 + 1)
  return ("%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), v,
    h:sub(18, 20), h:sub(21, 32))
end

--- Records a message published to `topic` (its stored table) at time `now`; delivered
--- to every confirmed subscription (pending ones receive nothing, as in AWS). `msg`:
--- {Message=, Subject=, MessageAttributes=, MessageGroupId=}. Returns the record.
function M.publish(db, topic, msg, message_id, now)
  M.tables(db)
  local subs = {}
  for _, s in pairs(db.subscriptions) do
    if s.TopicArn == topic.TopicArn and s.confirmed then subs[#subs + 1] = s end
  end
  table.sort(subs, function(a, b) return a.seq < b.seq end)
  local deliveries = {}
  for i, s in ipairs(subs) do
    deliveries[i] = { SubscriptionArn = s.SubscriptionArn, Protocol = s.Protocol,
      Endpoint = s.Endpoint }
  end
  local rec = { MessageId = message_id, TopicArn = topic.TopicArn, Subject = msg.Subject,
    Message = msg.Message, MessageAttributes = msg.MessageAttributes,
    MessageGroupId = msg.MessageGroupId, Timestamp = now, Deliveries = deliveries }
  local list = db.messages[topic.TopicArn] or {}
  db.messages[topic.TopicArn] = list
  list[#list + 1] = rec
  while #list > M.MAX_KEPT do table.remove(list, 1) end
  return rec
end

return M
