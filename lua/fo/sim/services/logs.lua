-- CloudWatch Logs handlers: log groups (name rules, tags old and new style, retention,
-- KMS keys judged by the key's policy through fo.sim.kms_use), log streams, and events
-- (PutLogEvents with AWS's batch rules and rejections, GetLogEvents with forward and
-- backward tokens, FilterLogEvents with plain-term filter patterns). Retention runs on the
-- simulator's virtual clock: events older than the group's retention are gone.
--
-- State (ctx.db of service "logs", per account and region; JSON-safe):
--   groups[name] = {name=, created= (ms), retention= (days or nil), kms= (key ARN or nil),
--                   tags = {k = v}, seq=, streams = {[name] = {name=, created=, seq=,
--                   last_ingestion=, events = {{t=, m=, i=}...} (sorted by t)}}}
local records = require "fo.sim.records"
local kms_use = require "fo.sim.kms_use"

local M = {}

-- PutRetentionPolicy's allowed values (API reference, retentionInDays).
M.RETENTION_DAYS = { 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
  1827, 2192, 2557, 2922, 3288, 3653 }
local RETENTION = {}
for _, d in ipairs(M.RETENTION_DAYS) do RETENTION[d] = true end

-- PutLogEvents quotas (API reference): bytes count each message plus 26 bytes.
M.MAX_BATCH_BYTES = 1048576
M.EVENT_OVERHEAD = 26
local DAY_MS = 24 * 3600 * 1000
local MAX_AGE_MS = 14 * DAY_MS
local MAX_AHEAD_MS = 2 * 3600 * 1000
local MAX_TAGS = 50

local NO_GROUP = "The specified log group does not exist."
local NO_STREAM = "The specified log stream does not exist."

local function invalid(ctx, msg) ctx:fail("InvalidParameterException", msg) end

local function now_ms(ctx) return math.floor(ctx:now() * 1000) end

local function groups(ctx)
  ctx.db.groups = ctx.db.groups or {}
  return ctx.db.groups
end

--- The log group's ARN without the ":*" suffix (logGroupArn, TagResource's form).
local function group_arn(ctx, name)
  return ctx:arn("log-group:" .. name)
end

-- Drops the events of `g` older than its retention (virtual clock); the state changed
-- even on a read, so the sim saves it.
local function expire(ctx, g)
  if not g.retention then return end
  local cutoff = now_ms(ctx) - g.retention * DAY_MS
  for _, s in pairs(g.streams) do
    local keep = {}
    for _, e in ipairs(s.events) do
      if e.t >= cutoff then keep[#keep + 1] = e end
    end
    if #keep ~= #s.events then
      s.events = keep
      ctx.changed_state = true
    end
  end
end

local function group_or_fail(ctx, name)
  local g = name and groups(ctx)[name]
  if not g then ctx:fail("ResourceNotFoundException", NO_GROUP) end
  expire(ctx, g)
  return g
end

-- The group a request names by logGroupName or logGroupIdentifier (name or ARN).
local function group_of(ctx, p)
  if p.logGroupName and p.logGroupIdentifier then
    invalid(ctx, "LogGroupName and LogGroupIdentifier are mutually exclusive parameters.")
  end
  local id = p.logGroupName or p.logGroupIdentifier
  if not id then invalid(ctx, "Either LogGroupName or LogGroupIdentifier must be provided.") end
  local name = id:match("^arn:aws[%w-]*:logs:[%w-]*:%d*:log%-group:(.-):?%*?$") or id
  return group_or_fail(ctx, name)
end

local function stream_or_fail(ctx, g, name)
  local s = g.streams[name]
  if not s then ctx:fail("ResourceNotFoundException", NO_STREAM) end
  return s
end

-- Log group names: 1-512 characters of [.-_/#A-Za-z0-9] (API reference, CreateLogGroup).
local function check_group_name(ctx, name)
  if not name:match("^[%.%-_/#%w]+$") or name:find("[^%z\1-\127]") then
    invalid(ctx, ("1 validation error detected: Value '%s' at 'logGroupName' failed to "
      .. "satisfy constraint: Member must satisfy regular expression pattern: "
      .. "[\\.\\-_/#A-Za-z0-9]+"):format(name))
  end
end

local function check_stream_name(ctx, name)
  if name:find("[:*]") then
    invalid(ctx, ("1 validation error detected: Value '%s' at 'logStreamName' failed to "
      .. "satisfy constraint: Member must satisfy regular expression pattern: [^:*]*")
      :format(name))
  end
end

local function merge_tags(ctx, g, tags, code)
  for k, v in pairs(tags or {}) do
    if k:lower():sub(1, 4) == "aws:" then
      invalid(ctx, "Tag keys beginning with 'aws:' are reserved for system use.")
    end
    g.tags[k] = v
  end
  local n = 0
  for _ in pairs(g.tags) do n = n + 1 end
  if n > MAX_TAGS then
    ctx:fail(code or "TooManyTagsException",
      ("A resource can have no more than %d tags."):format(MAX_TAGS))
  end
end

local function tags_out(g)
  return next(g.tags) and records.copy(g.tags) or nil
end

-- The key `ref` (a key ARN) after CloudWatch Logs' check: the key exists, is usable, and
-- its policy lets the service principal logs.<region>.amazonaws.com use it with the
-- group's ARN as encryption context. AWS words every refusal the same way.
local function key_for_group(ctx, ref, name)
  local arn = group_arn(ctx, name)
  if not ref:match("^arn:aws[%w-]*:kms:") then
    invalid(ctx, ("Specified KMS key '%s' is not a valid key ARN."):format(ref))
  end
  local key_arn, _, msg, _, kms_code = kms_use.use(ctx, { key = ref, action = "kms:Encrypt",
    service = "logs.amazonaws.com", caller = ("logs.%s.amazonaws.com"):format(ctx.region),
    context = { ["aws:logs:arn"] = arn }, source_account = ctx.account })
  if key_arn then return ref end
  if kms_code == "DisabledException" or kms_code == "KMSInvalidStateException" then
    invalid(ctx, ("The specified KMS key is not usable: %s"):format(msg or ""))
  end
  ctx:fail("AccessDeniedException", ("The specified KMS key does not exist or is not allowed "
    .. "to be used with Arn '%s'"):format(arn))
end

local function view(ctx, g)
  local stored = 0
  for _, s in pairs(g.streams) do
    for _, e in ipairs(s.events) do stored = stored + #e.m end
  end
  local arn = group_arn(ctx, g.name)
  return { logGroupName = g.name, creationTime = g.created, retentionInDays = g.retention,
    metricFilterCount = 0, arn = arn .. ":*", logGroupArn = arn, storedBytes = stored,
    kmsKeyId = g.kms, logGroupClass = g.class or "STANDARD",
    deletionProtectionEnabled = g.deletion_protection or false }
end

---------------------------------------------------------------------------------------
-- Log groups

function M.CreateLogGroup(ctx, p)
  local name = p.logGroupName
  check_group_name(ctx, name)
  if groups(ctx)[name] then
    ctx:fail("ResourceAlreadyExistsException", "The specified log group already exists")
  end
  if p.logGroupClass and p.logGroupClass ~= "STANDARD" and p.logGroupClass ~= "INFREQUENT_ACCESS"
      and p.logGroupClass ~= "DELIVERY" then
    invalid(ctx, "Invalid log group class: " .. p.logGroupClass)
  end
  local g = { name = name, created = now_ms(ctx), tags = {}, streams = {},
    seq = records.next_seq(ctx.db), class = p.logGroupClass,
    deletion_protection = p.deletionProtectionEnabled or nil }
  merge_tags(ctx, g, p.tags, "InvalidParameterException")
  if p.kmsKeyId then g.kms = key_for_group(ctx, p.kmsKeyId, name) end
  groups(ctx)[name] = g
  return {}
end

function M.DeleteLogGroup(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  if g.deletion_protection then
    ctx:fail("OperationAbortedException", ("Log group %s has deletion protection enabled."
      .. " Disable it with PutLogGroupDeletionProtection first."):format(g.name))
  end
  groups(ctx)[g.name] = nil
  return {}
end

local function sorted_groups(ctx)
  local out = {}
  for _, g in pairs(groups(ctx)) do out[#out + 1] = g end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

function M.DescribeLogGroups(ctx, p)
  if p.logGroupNamePrefix and p.logGroupNamePattern then
    invalid(ctx, "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.")
  end
  local pattern = p.logGroupNamePattern and p.logGroupNamePattern:lower()
  local wanted
  if p.logGroupIdentifiers then
    wanted = {}
    for _, id in ipairs(p.logGroupIdentifiers) do
      wanted[id:match("^arn:aws[%w-]*:logs:[%w-]*:%d*:log%-group:(.-):?%*?$") or id] = true
    end
  end
  local list = {}
  for _, g in ipairs(sorted_groups(ctx)) do
    local ok = (not p.logGroupNamePrefix or g.name:sub(1, #p.logGroupNamePrefix) == p.logGroupNamePrefix)
      and (not pattern or g.name:lower():find(pattern, 1, true) ~= nil)
      and (not wanted or wanted[g.name])
      and (not p.logGroupClass or (g.class or "STANDARD") == p.logGroupClass)
    if ok then
      expire(ctx, g)
      list[#list + 1] = view(ctx, g)
    end
  end
  local page, token = records.page(list, p.nextToken, "groups/", p.limit or 50)
  if not page then invalid(ctx, "The specified nextToken is invalid.") end
  return { logGroups = page, nextToken = token }
end

function M.PutRetentionPolicy(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  if not RETENTION[p.retentionInDays] then
    invalid(ctx, ("1 validation error detected: Value '%s' at 'retentionInDays' failed to "
      .. "satisfy constraint: Member must satisfy enum value set: [%s]")
      :format(tostring(p.retentionInDays), table.concat(M.RETENTION_DAYS, ", ")))
  end
  g.retention = p.retentionInDays
  expire(ctx, g)
  return {}
end

function M.DeleteRetentionPolicy(ctx, p)
  group_or_fail(ctx, p.logGroupName).retention = nil
  return {}
end

local function group_by_resource(ctx, p)
  if p.resourceIdentifier and p.logGroupName then
    invalid(ctx, "LogGroupName and ResourceIdentifier are mutually exclusive parameters.")
  end
  return group_of(ctx, { logGroupName = p.logGroupName, logGroupIdentifier = p.resourceIdentifier })
end

function M.AssociateKmsKey(ctx, p)
  local g = group_by_resource(ctx, p)
  g.kms = key_for_group(ctx, p.kmsKeyId, g.name)
  return {}
end

function M.DisassociateKmsKey(ctx, p)
  local g = group_by_resource(ctx, p)
  g.kms = nil
  return {}
end

---------------------------------------------------------------------------------------
-- Tags: TagResource/UntagResource/ListTagsForResource take the group's ARN; the older
-- TagLogGroup/UntagLogGroup/ListTagsLogGroup its name.

local function group_by_arn(ctx, arn)
  local region, account, name = arn:match("^arn:aws[%w-]*:logs:([%w-]*):(%d*):log%-group:(.-):?%*?$")
  if not name then
    invalid(ctx, ("Invalid resource ARN: %s"):format(arn))
  end
  if region ~= ctx.region or account ~= ctx.account then
    ctx:fail("ResourceNotFoundException", NO_GROUP)
  end
  return group_or_fail(ctx, name)
end

function M.TagResource(ctx, p)
  merge_tags(ctx, group_by_arn(ctx, p.resourceArn), p.tags)
  return {}
end

function M.UntagResource(ctx, p)
  local g = group_by_arn(ctx, p.resourceArn)
  for _, k in ipairs(p.tagKeys) do g.tags[k] = nil end
  return {}
end

function M.ListTagsForResource(ctx, p)
  return { tags = tags_out(group_by_arn(ctx, p.resourceArn)) }
end

function M.TagLogGroup(ctx, p)
  merge_tags(ctx, group_or_fail(ctx, p.logGroupName), p.tags, "InvalidParameterException")
  return {}
end

function M.UntagLogGroup(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  for _, k in ipairs(p.tags) do g.tags[k] = nil end
  return {}
end

function M.ListTagsLogGroup(ctx, p)
  return { tags = tags_out(group_or_fail(ctx, p.logGroupName)) }
end

---------------------------------------------------------------------------------------
-- Log streams

function M.CreateLogStream(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  check_stream_name(ctx, p.logStreamName)
  if g.streams[p.logStreamName] then
    ctx:fail("ResourceAlreadyExistsException", "The specified log stream already exists")
  end
  g.streams[p.logStreamName] = { name = p.logStreamName, created = now_ms(ctx), events = {},
    seq = records.next_seq(ctx.db) }
  return {}
end

function M.DeleteLogStream(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  stream_or_fail(ctx, g, p.logStreamName)
  g.streams[p.logStreamName] = nil
  return {}
end

local function stream_view(ctx, g, s)
  local first, last = s.events[1], s.events[#s.events]
  local stored = 0
  for _, e in ipairs(s.events) do stored = stored + #e.m end
  return { logStreamName = s.name, creationTime = s.created,
    firstEventTimestamp = first and first.t, lastEventTimestamp = last and last.t,
    lastIngestionTime = s.last_ingestion, storedBytes = stored,
    arn = group_arn(ctx, g.name) .. ":log-stream:" .. s.name }
end

function M.DescribeLogStreams(ctx, p)
  local g = group_of(ctx, p)
  local by_time = p.orderBy == "LastEventTime"
  if by_time and p.logStreamNamePrefix then
    invalid(ctx, "Cannot order by LastEventTime with a logStreamNamePrefix.")
  end
  local list = {}
  for _, s in pairs(g.streams) do
    if not p.logStreamNamePrefix or s.name:sub(1, #p.logStreamNamePrefix) == p.logStreamNamePrefix then
      list[#list + 1] = s
    end
  end
  local function key(s)
    local last = s.events[#s.events]
    return last and last.t or 0
  end
  table.sort(list, function(a, b)
    local x, y
    if by_time then x, y = key(a), key(b) else x, y = a.name, b.name end
    if x == y then x, y = a.seq, b.seq end
    if p.descending then return x > y end
    return x < y
  end)
  for i, s in ipairs(list) do list[i] = stream_view(ctx, g, s) end
  local page, token = records.page(list, p.nextToken, "streams/", p.limit or 50)
  if not page then invalid(ctx, "The specified nextToken is invalid.") end
  return { logStreams = page, nextToken = token }
end

---------------------------------------------------------------------------------------
-- Events

function M.PutLogEvents(ctx, p)
  local g = group_or_fail(ctx, p.logGroupName)
  local s = stream_or_fail(ctx, g, p.logStreamName)
  local events = p.logEvents
  local bytes = 0
  for i, e in ipairs(events) do
    bytes = bytes + #e.message + M.EVENT_OVERHEAD
    if i > 1 and e.timestamp < events[i - 1].timestamp then
      invalid(ctx, "Log events in a single PutLogEvents request must be in chronological order.")
    end
  end
  if bytes > M.MAX_BATCH_BYTES then
    invalid(ctx, ("Upload too large: %d bytes exceeds limit of %d"):format(bytes, M.MAX_BATCH_BYTES))
  end
  if events[#events].timestamp - events[1].timestamp > DAY_MS then
    invalid(ctx, "The batch of log events in a single PutLogEvents request cannot span more "
      .. "than 24 hours.")
  end
  local now = now_ms(ctx)
  local too_old = now - MAX_AGE_MS
  local expired = g.retention and now - g.retention * DAY_MS
  local info = {}
  local accepted = {}
  -- indexes in the rejection info are 0-based, as AWS counts them
  for i, e in ipairs(events) do
    if e.timestamp > now + MAX_AHEAD_MS then
      info.tooNewLogEventStartIndex = info.tooNewLogEventStartIndex or (i - 1)
    elseif expired and e.timestamp < expired then
      info.expiredLogEventEndIndex = i - 1
    elseif e.timestamp < too_old then
      info.tooOldLogEventEndIndex = i - 1
    else
      accepted[#accepted + 1] = { t = e.timestamp, m = e.message, i = now }
    end
  end
  if #accepted > 0 then
    -- events keep timestamp order in the stream; a batch may land before earlier ones
    for _, e in ipairs(accepted) do s.events[#s.events + 1] = e end
    table.sort(s.events, function(a, b)
      if a.t ~= b.t then return a.t < b.t end
      return a.i < b.i
    end)
    s.last_ingestion = now
  end
  s.token_n = (s.token_n or 0) + 1
  return { nextSequenceToken = ("%056d"):format(s.token_n),
    rejectedLogEventsInfo = next(info) and info or nil }
end

local function in_range(e, p)
  return (not p.startTime or e.t >= p.startTime) and (not p.endTime or e.t < p.endTime)
end

function M.GetLogEvents(ctx, p)
  local g = group_of(ctx, p)
  local s = stream_or_fail(ctx, g, p.logStreamName)
  local list = {}
  for _, e in ipairs(s.events) do
    if in_range(e, p) then list[#list + 1] = e end
  end
  local limit = p.limit or 10000
  local from, to -- 1-based inclusive range of `list` this page answers
  if p.nextToken then
    local dir, n = p.nextToken:match("^([fb])/(%d+)$")
    n = n and math.tointeger(tonumber(n))
    if not n then invalid(ctx, "The specified nextToken is invalid.") end
    if dir == "f" then from, to = n, math.min(#list, n + limit - 1)
    else from, to = math.max(1, n - limit), n - 1 end
  elseif p.startFromHead then
    from, to = 1, math.min(#list, limit)
  else
    from, to = math.max(1, #list - limit + 1), #list
  end
  local out = {}
  for i = from, to do
    local e = list[i]
    out[#out + 1] = { timestamp = e.t, message = e.m, ingestionTime = e.i }
  end
  -- tokens name positions: forward continues after the page, backward ends before it
  return { events = out, nextForwardToken = ("f/%d"):format(math.max(to, from - 1) + 1),
    nextBackwardToken = ("b/%d"):format(from) }
end

-- Filter patterns: the simulator matches plain terms. Terms are separated by spaces, a
-- quoted phrase is one term, and an event matches when it holds every term (case-sensitive),
-- as CloudWatch Logs does for unstructured log events. Empty: every event.
local function terms_of(ctx, pattern)
  local terms = {}
  local rest = pattern or ""
  while true do
    rest = rest:gsub("^%s+", "")
    if rest == "" then break end
    local quoted, after = rest:match('^"([^"]*)"(.*)$')
    if quoted then
      terms[#terms + 1] = quoted
      rest = after
    else
      local word, tail = rest:match("^(%S+)(.*)$")
      if word:find("^[{%[%?%-]") then
        invalid(ctx, ("The simulator matches plain terms only; filter pattern '%s' uses "
          .. "syntax it does not implement"):format(pattern))
      end
      terms[#terms + 1] = word
      rest = tail
    end
  end
  return terms
end

function M.FilterLogEvents(ctx, p)
  local g = group_of(ctx, p)
  if p.logStreamNames and p.logStreamNamePrefix then
    invalid(ctx, "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
  end
  local terms = terms_of(ctx, p.filterPattern)
  local names
  if p.logStreamNames then
    names = {}
    for _, n in ipairs(p.logStreamNames) do names[n] = true end
  end
  local hits, searched = {}, {}
  local streams = {}
  for _, s in pairs(g.streams) do streams[#streams + 1] = s end
  table.sort(streams, function(a, b) return a.name < b.name end)
  for _, s in ipairs(streams) do
    if (not names or names[s.name]) and (not p.logStreamNamePrefix
        or s.name:sub(1, #p.logStreamNamePrefix) == p.logStreamNamePrefix) then
      searched[#searched + 1] = { logStreamName = s.name, searchedCompletely = true }
      for idx, e in ipairs(s.events) do
        local ok = in_range(e, p)
        for _, t in ipairs(terms) do
          if not ok then break end
          ok = e.m:find(t, 1, true) ~= nil
        end
        if ok then
          hits[#hits + 1] = { logStreamName = s.name, timestamp = e.t, message = e.m,
            ingestionTime = e.i, eventId = ("%d%s%06d"):format(e.t, s.seq, idx) }
        end
      end
    end
  end
  table.sort(hits, function(a, b)
    if a.timestamp ~= b.timestamp then return a.timestamp < b.timestamp end
    return a.eventId < b.eventId
  end)
  local page, token = records.page(hits, p.nextToken, "events/", p.limit or 10000)
  if not page then invalid(ctx, "The specified nextToken is invalid.") end
  return { events = page, nextToken = token, searchedLogStreams = searched }
end

return M
