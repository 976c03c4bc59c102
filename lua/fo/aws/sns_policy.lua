-- The access policy SNS gives a topic that has none of its own (owner-only access), in the
-- exact text SNS writes: one fact that the aws:sns:topic_policy resource (deleting it
-- restores this policy) and the simulator (GetTopicAttributes of a topic without a Policy)
-- must both state, so it lives once here.
local M = {}

--- The default policy of the topic `arn` owned by `account`.
function M.default_topic_policy(arn, account)
  return ('{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":'
    .. '"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":['
    .. '"SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission",'
    .. '"SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe",'
    .. '"SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"%s","Condition":'
    .. '{"StringEquals":{"AWS:SourceOwner":"%s"}}}]}'):format(arn, account)
end

return M
