-- What every AWS resource type needs: tags in AWS's shapes, "already gone" detection,
-- bounded retries for eventual consistency (the situations are data in consistency.lua),
-- and waits that yield on the event loop.
local consistency = require "fo.aws.resources.consistency"

local M = {}

--- True when err is an fo.aws.Error with one of the codes.
function M.is(err, ...)
  local Error = require "fo.aws.error"
  for i = 1, select("#", ...) do
    if Error.is(err, (select(i, ...))) then return true end
  end
  return false
end

--- Runs fn(...); an AWS error with one of `codes` (a list) gives nil instead.
function M.unless(codes, fn, ...)
  local ok, v = pcall(fn, ...)
  if ok then return v end
  if M.is(v, table.unpack(codes)) then return nil end
  error(v, 0)
end

--- The one record a Describe call lists for a resource (`client[op](client, params)`,
--- params naming it, e.g. { VpcIds = { id } }; the records in out[list_member]), or nil
--- when AWS answers one of the codes of the list `gone` (it does not exist) or lists none.
function M.describe_one(client, op, params, list_member, gone)
  local out = M.unless(gone, client[op], client, params)
  return out and out[list_member] and out[list_member][1] or nil
end

--- The tags of what a type creates: ctx's fo:stack/fo:name/fo:token plus the resource's own
--- map, as AWS lists them ({Key=, Value=}, sorted by key after the fo: ones).
function M.tag_list(ctx, tags)
  local list = ctx:tag_list()
  local keys = {}
  for k in pairs(tags or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do list[#list + 1] = { Key = k, Value = tags[k] } end
  return list
end

--- A tag list (or map) as a map, without fo's own tags: what a user declared.
function M.user_tags(tags)
  local out = {}
  for _, t in ipairs(tags or {}) do
    if type(t) == "table" and not t.Key:match("^fo:") then out[t.Key] = t.Value end
  end
  for k, v in pairs(tags or {}) do
    if type(k) == "string" and not k:match("^fo:") then out[k] = v end
  end
  return out
end

--- Tag changes from map `old` to map `new`: tags to set ({Key=, Value=}, sorted) and keys
--- to remove (sorted).
function M.tag_delta(old, new)
  local set, del = {}, {}
  for k, v in pairs(new or {}) do
    if (old or {})[k] ~= v then set[#set + 1] = { Key = k, Value = v } end
  end
  for k in pairs(old or {}) do
    if (new or {})[k] == nil then del[#del + 1] = k end
  end
  table.sort(set, function(a, b) return a.Key < b.Key end)
  table.sort(del)
  return set, del
end

--- EC2's TagSpecifications for a create call: ctx's tags plus the user's `tags` map on a
--- resource of type `rtype` ("vpc", "subnet", "security-group", ...).
function M.ec2_tag_specs(ctx, rtype, tags)
  return { { ResourceType = rtype, Tags = M.tag_list(ctx, tags) } }
end

--- EC2 tag changes on resource `id` from map `old` to map `new` (user tags): CreateTags
--- for new or changed values, DeleteTags for removed keys; no call when nothing changed.
function M.ec2_retag(ec2, id, old, new)
  local set, del = M.tag_delta(old, new)
  for i, k in ipairs(del) do del[i] = { Key = k } end
  if #set > 0 then ec2:CreateTags{ Resources = { id }, Tags = set } end
  if #del > 0 then ec2:DeleteTags{ Resources = { id }, Tags = del } end
end

--- The update of an EC2 resource whose only property that changes in place is its tags
--- (the others replace it): retags it and keeps its outputs.
function M.ec2_update_tags(ctx, id, old, new, outputs)
  M.ec2_retag(ctx:client("ec2"), id, old.tags, new.tags)
  return outputs
end

--- The first record of `list` tagged for ctx (its token included) that the state does not
--- already know (adoption after a crash). `id_field` names the record's id; `tags_of(record)`
--- gives its tags when they are not in record.Tags.
function M.unknown_owned(ctx, list, id_field, tags_of)
  for _, r in ipairs(list or {}) do
    local tags = tags_of and tags_of(r) or r.Tags
    if not ctx.known_ids[r[id_field]] and ctx:owns(tags or {}) then return r end
  end
  return nil
end

-- Conflicts: what a create finds already there ---------------------------------------------

local function tag_map(tags)
  local map = {}
  for k, v in pairs(tags or {}) do
    if type(v) == "table" then map[v.Key] = v.Value else map[k] = v end
  end
  return map
end

--- Raises the conflict of a create that found `what` (e.g. 'a DynamoDB table named
--- "trades" in eu-south-1') already there, with physical id `id`, not made by this create.
--- `tags` (a map or an AWS {Key=, Value=} list; nil for a resource without tags) say whose
--- it is. The error is fo.engine.errors' kind "conflict" (field id): the operation fails and
--- the run rolls back what it created. A type raises it only when its create made nothing:
--- the intent is dropped, nothing is adopted, and the resource is left as it is.
function M.conflict(ctx, what, id, tags)
  local map = tag_map(tags)
  local whose
  if map["fo:stack"] then
    whose = ("it is tagged as resource %q of stack %q, so another copy of the stack (another "
      .. "checkout, or a state file moved away or lost) created it"):format(
      tostring(map["fo:name"]), tostring(map["fo:stack"]))
  else
    whose = "it was made outside fo"
  end
  local e = require("fo.engine.errors").new("conflict", ("conflict: %s already exists (%s) "
    .. "and no create of this stack made it: %s. fo never changes or deletes what it did not "
    .. "create. Remove it, or rename the resource in the recipe, then rerun")
    :format(what, tostring(id), whose))
  e.id = id
  error(e, 0)
end

--- For a create that meets an existing resource (an error saying it exists, a pre-check,
--- or an API that answers an existing resource as if new): returns when `tags` carry this
--- create's fo:token (a retried call of this very create made it), else raises M.conflict.
function M.claim(ctx, what, id, tags)
  if not ctx:owns(tags or {}) then M.conflict(ctx, what, id, tags) end
end

-- What this run learnt -------------------------------------------------------------------
-- Kept with the run's clients: the engine gives every resource of a run the same client of
-- a service and region (fo.engine.target), and each run new ones, so nothing kept here
-- outlives the run (weak keys: it goes with the clients).
local run_memory = setmetatable({}, { __mode = "k" })

--- The table `name` this run keeps with `client` (empty at first).
function M.run_memo(client, name)
  local m = run_memory[client]
  if not m then
    m = {}
    run_memory[client] = m
  end
  local t = m[name]
  if not t then
    t = {}
    m[name] = t
  end
  return t
end

--- Notes that a create of this run made `id` through `client`: the call answered it as
--- new, or it carries the create's token (M.claim). See M.fresh_slot.
function M.made(client, id)
  local made = M.run_memo(client, "made")
  made[id] = made[id] or {}
end

--- For a create that reads first whether a child of `parent` with identity `slot` is
--- there (an inline policy of a role, a route of a route table, the association of a
--- subnet), because its call would overwrite or answer one not made by the stack: true
--- when that read can be skipped. It can when `parent` was made by a create of this run
--- (M.made, through the same `client`) and no other create of this run has taken `slot` on
--- it: a resource this run made a moment ago holds only what this run put in it. (Another
--- party could add a child in the seconds since, knowing an id that did not exist before;
--- the read does not stop that either: a child can appear between the read and the write.)
--- Takes the slot: another create of the same child of the same parent in this run reads
--- as before, and finds the first one.
function M.fresh_slot(client, parent, slot)
  local children = M.run_memo(client, "made")[parent]
  if not children or children[slot] then return false end
  children[slot] = true
  return true
end

local function matches(situation, err)
  local Error = require "fo.aws.error"
  if not Error.is(err) then return false end
  local hit = false
  for _, code in ipairs(situation.codes) do
    if err.code == code then hit = true break end
  end
  if not hit then return false end
  return situation.message == nil or tostring(err.message or ""):match(situation.message) ~= nil
end

-- The time on ctx's clock (a test's ctx may bring its own).
local function now(ctx)
  if ctx.now then return ctx:now() end
  return require("fo.core").now()
end

--- A delete call fn(...) for which an AWS error with one of `gone` (a list) means the
--- resource is already gone — except for a resource this run created moments ago
--- (ctx.created_at): EC2 and others are eventually consistent, so any call naming a new
--- id may answer NotFound for a while, and a rollback that took that for "gone" would
--- leave the resource behind. Within not_found_after_create's window from its creation,
--- the delete is repeated; after it, NotFound is believed.
function M.delete_unless_gone(ctx, gone, fn, ...)
  local window = consistency.not_found_after_create
  local delay = window.delay
  while true do
    local ok, err = pcall(fn, ...)
    if ok then return err end
    if not M.is(err, table.unpack(gone)) then error(err, 0) end
    if not (ctx.created_at and matches(window, err))
        or now(ctx) + delay > ctx.created_at + window.seconds then
      return nil
    end
    ctx:debug("delete of a resource created %.1fs ago: %s, retrying in %gs",
      now(ctx) - ctx.created_at, tostring(err.code), delay)
    ctx:sleep(delay)
    delay = math.min(delay * 2, window.max_delay)
  end
end

--- Runs fn(...) and repeats it while it fails with an error of the named situation of
--- consistency.lua (e.g. "not_found_after_create"), waiting on the event loop, up to the
--- situation's bound; then the last error is raised. Returns fn's results. `situations`
--- is a name or a list of names, for a call that may meet several (a group naming a new
--- launch template and a new instance profile): each error is retried under the first
--- situation it matches, each situation with its own bound and delays counted from the
--- first call. The delays: on AWS (ctx.target "aws") the waiters' notice schedule
--- (fo.aws.waiter: after 1 s, then 10 % of the time waited so far, at most the situation's
--- max_delay), so that an instance profile usable after 8 s is used at once, not at the
--- doubling's 14 s; elsewhere the situation's delay, doubling up to max_delay.
function M.retry(ctx, situations, fn, ...)
  local names = type(situations) == "table" and situations or { situations }
  local state = {}
  for i, name in ipairs(names) do
    local s = assert(consistency[name], "unknown consistency situation " .. tostring(name))
    state[i] = { name = name, situation = s, delay = s.delay, cap = s.max_delay or s.delay }
  end
  local waiter = require "fo.aws.waiter"
  local started = now(ctx)
  local notice = ctx.target == "aws"
  while true do
    local r = table.pack(pcall(fn, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    local hit
    for _, st in ipairs(state) do
      if matches(st.situation, err) then hit = st break end
    end
    if not hit then error(err, 0) end
    local t = now(ctx)
    if notice then hit.delay = waiter.notice_delay(t - started, hit.cap) end
    if t + hit.delay > started + hit.situation.seconds then error(err, 0) end
    ctx:debug("%s: %s, retrying in %gs", hit.name, tostring(err.code), hit.delay)
    ctx:sleep(hit.delay)
    if not notice then hit.delay = math.min(hit.delay * 2, hit.cap) end
  end
end

--- Runs the functions of `fns` at once (each in its own task) and returns their first
--- results, in order; once all have finished, raises the first error (in list order) as it
--- was raised. For a read whose calls do not depend on one another: it takes one call's
--- time instead of their sum.
function M.together(fns)
  local tasks = {}
  for i, fn in ipairs(fns) do
    tasks[i] = fo.spawn(function() return table.pack(pcall(fn)) end)
  end
  local done = {}
  for i, t in ipairs(tasks) do done[i] = t:join() end
  local out = {}
  for i = 1, #tasks do
    if not done[i][1] then error(done[i][2], 0) end
    out[i] = done[i][2] -- (nil results leave holes: index by position)
  end
  return out
end

--- A read's describe and its other calls at once (one call's time, not two in a row):
--- `describe()` tells whether the resource is there (nil: gone); `others` (functions) read
--- the rest of it. Their errors count only when it is there (on a resource gone meanwhile
--- they fail as AWS refuses them). Returns describe's result and the list of the others'
--- results, or nil when it is gone; a describe error is raised first.
function M.read_at_once(describe, others)
  local fns = { describe }
  for i, f in ipairs(others) do fns[i + 1] = function() return table.pack(pcall(f)) end end
  local r = M.together(fns)
  if r[1] == nil then return nil end
  local out = {}
  for i = 1, #others do
    if not r[i + 1][1] then error(r[i + 1][2], 0) end
    out[i] = r[i + 1][2]
  end
  return r[1], out
end

-- Batched reads ---------------------------------------------------------------------------
-- A refresh reads every resource at once; the reads that describe one record by its id
-- (a subnet, a route table, an alarm ...) go out as one call naming them all where the API
-- takes a list, one per (key: service, region, operation) and turn of the event loop. The
-- refresh gives each read's ctx the run's batches (ctx.batches: a table, empty at first);
-- without it (a create, an update, an import) a read describes its own record.

M.BATCH_MAX = 100 -- ids in one call (DescribeAlarms' AlarmNames takes 100, EC2's lists 1000)

--- The records of `list` by their member `field` ({record[field] → record}): what a batched
--- read's `many` returns from a Describe's list.
function M.index_by(list, field)
  local out = {}
  for _, r in ipairs(list or {}) do out[r[field]] = r end
  return out
end

--- The record of `id`: `many(ids)` → {id → record} reads a batch in one call; `one(id)`
--- reads a record alone (nil when gone). A record the batch did not hold, or a batch that
--- failed (EC2 refuses a whole list when one id of it is gone: NotFound), is read alone, so
--- that what is gone and every error come out as the one read would tell them. `max`: the
--- most ids the API takes in one call (default M.BATCH_MAX).
function M.batched(ctx, key, id, many, one, max)
  local all = ctx.batches
  if not all then return one(id) end
  key = ctx.region .. "\0" .. key
  local b = all[key]
  if b and not b.sent and #b.ids < (max or M.BATCH_MAX) then
    b.ids[#b.ids + 1] = id
    if not b.done then b.waiting:wait() end
  else
    b = { ids = { id }, waiting = require("fo.engine.waitlist").new() }
    all[key] = b
    ctx:sleep(0) -- the reads started in this turn join
    b.sent = true
    if all[key] == b then all[key] = nil end
    local ok, got = pcall(many, b.ids)
    b.got = ok and got or nil
    b.done = true
    b.waiting:wake_all()
  end
  local r = b.got and b.got[id]
  if r ~= nil then return r end
  return one(id)
end

-- How often waits poll on the simulator: its transitions take (virtual) seconds where
-- AWS's take minutes, so the models' delays (15 s for ELBv2) would only slow tests down.
M.SIM_POLL = 0.25

-- A sleep for the simulator's polls that keeps them M.SIM_POLL apart from start to start:
-- the time a poll's call took comes off the next sleep, so a transition is noticed within
-- one period whatever the call's latency (sleeping the whole period after each answer
-- would make it period + latency). It still sleeps half a period at least, so that a slow
-- simulator is not polled back to back.
local function paced_sleep(ctx)
  local last = now(ctx)
  return function(d)
    ctx:sleep(math.max(last + d - now(ctx), d / 2))
    last = now(ctx)
  end
end

-- The longest gap between two polls of M.poll on AWS (the models' waiters' usual delay).
M.POLL_CAP = 15

--- Runs a model waiter (client:wait) with a bound in seconds (default 600). On AWS the
--- notice schedule (fo.aws.waiter): the first re-check after 1 s, then every 10 % of the
--- time waited so far, never more than the model's delay apart, within the model's
--- maxAttempts x delay; on the simulator (ctx.target == "sim") every M.SIM_POLL, with the
--- bound in seconds still the limit. A resource's custom timeout (lifecycle option
--- `timeouts`) replaces the bound: the wait ends when the operation's time is up, however
--- many polls that takes.
---
--- `pending` true: the answer of the call that began the wait already said "not ready
--- yet" (CreateTable's TableStatus CREATING, CreateLoadBalancer's State provisioning), and
--- the service takes longer than a period to get there: a poll at once would only repeat
--- that answer, so the first poll comes one period after the start (M.SIM_POLL on the
--- simulator, the notice schedule's first re-check on AWS), where the second would have
--- been. Not for transitions the service may finish at once (a VPC, a Route 53 change):
--- there it would add a period of latency.
function M.wait(ctx, client, waiter, params, seconds, pending)
  seconds = require("fo.engine.lifecycle").bound(ctx, seconds or 600)
  local opts = { timeout = seconds, schedule = "notice",
    sleep = function(d) ctx:sleep(d) end, now = function() return now(ctx) end }
  if ctx.deadline then opts.max_attempts = 1e9 end
  if pending then opts.first_after = require("fo.aws.waiter").NOTICE_FIRST end
  if ctx.target == "sim" then
    opts.schedule = "model"
    opts.delay = M.SIM_POLL
    opts.sleep = paced_sleep(ctx)
    opts.max_attempts = math.ceil(seconds / M.SIM_POLL) + 1
    if pending then opts.first_after = M.SIM_POLL end
  end
  return client:wait(waiter, params, opts)
end

--- Polls `probe()` until it returns a true value (returned), sleeping on the event loop
--- between polls (on AWS the waiters' notice schedule: after 1 s, then every 10 % of the
--- time waited so far, at most M.POLL_CAP apart; M.SIM_POLL on the simulator); after
--- `seconds` raises "<what> did not finish within N s". A probe that fails with a
--- retryable AWS error (throttling, 5xx, timeout, the client's retries used up) is polled
--- again, as a waiter does, and on AWS the polls back off (each such answer doubles the
--- delay, up to M.POLL_CAP); other errors end the poll. A resource's custom timeout
--- (lifecycle option `timeouts`) replaces `seconds` by the time its operation has left. For waits the models have no
--- waiter for (Auto Scaling group deleted, instances in service). `pending` true: the
--- call that began the wait answered "not ready yet" and the transition takes longer than
--- a period: the first poll comes one period after the start (as M.wait's `pending`).
function M.poll(ctx, what, seconds, probe, pending)
  local Error = require "fo.aws.error"
  local waiter = require "fo.aws.waiter"
  seconds = require("fo.engine.lifecycle").bound(ctx, seconds)
  local started = now(ctx)
  local deadline = started + seconds
  local sim = ctx.target == "sim"
  local floor, delay = waiter.NOTICE_FIRST, nil
  local sleep = sim and paced_sleep(ctx) or function(d) ctx:sleep(d) end
  if pending then
    sleep(math.min(sim and M.SIM_POLL or waiter.NOTICE_FIRST, seconds))
  end
  while true do
    local ok, v = pcall(probe)
    if not ok and not (Error.is(v) and v.retryable) then error(v, 0) end
    if ok and v then return v end
    if not ok and not sim then floor = waiter.backed_off(floor, delay, M.POLL_CAP) end
    local t = now(ctx)
    delay = sim and M.SIM_POLL or waiter.notice_delay(t - started, M.POLL_CAP, floor)
    if t + delay > deadline then
      if not ok then error(v, 0) end
      error(("%s did not finish within %g s%s"):format(what, ctx.timeout or seconds,
        ctx.timeout and " (the resource's custom timeout)" or ""), 0)
    end
    if not ok then ctx:debug("%s: %s, polling again in %gs", what, tostring(v.code), delay) end
    sleep(delay)
  end
end

-- JSON documents (IAM policies, ...) ---------------------------------------------------

local function json_quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local esc = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
      ["\t"] = "\\t" }
    return esc[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_encode(v, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = json_quote(v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    out[#out + 1] = math.type(v) == "integer" and tostring(v) or ("%.17g"):format(v)
  elseif t == "table" then
    local n, count = #v, 0
    for _ in pairs(v) do count = count + 1 end
    if n > 0 and n == count then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        json_encode(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        local x = v[k]
        if x == nil then x = v[tonumber(k)] end
        out[#out + 1] = json_quote(k) .. ":"
        json_encode(x, out)
      end
      out[#out + 1] = "}"
    end
  else
    error(("a %s cannot be written as JSON"):format(t), 0)
  end
end

--- The JSON text of a document given as a Lua table (compact, keys sorted) or already as
--- JSON text (returned as is).
function M.json_text(doc)
  if type(doc) == "string" then return doc end
  local out = {}
  json_encode(doc, out)
  return table.concat(out)
end

--- Decodes percent-encoding (IAM returns policy documents URL-encoded).
function M.url_decode(s)
  return (tostring(s or ""):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function deep_equal(a, b)
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.deep_equal = deep_equal

--- True when two JSON documents (Lua tables or JSON texts) have the same content: key
--- order and white space do not count. Text that is not JSON compares as text.
function M.json_equal(a, b)
  local function value(d)
    if type(d) ~= "string" then return d end
    local v = require("cjson.safe").decode(d)
    if v == nil then return d end
    return v
  end
  return deep_equal(value(a), value(b))
end

-- Comparing what AWS answers with what was declared -------------------------------------

--- True when lists a and b hold the same elements, in any order (AWS answers subnets,
--- security groups and target groups in its own order).
function M.same_set(a, b)
  a, b = a or {}, b or {}
  if #a ~= #b then return false end
  local count = {}
  for _, x in ipairs(a) do count[x] = (count[x] or 0) + 1 end
  for _, x in ipairs(b) do
    if not count[x] or count[x] == 0 then return false end
    count[x] = count[x] - 1
  end
  return true
end

--- For a type's read: the recorded value when `observed` is the same by `equal` (so
--- refresh reports no drift for a reordering or a reformatting), else `observed`.
function M.as_recorded(observed, recorded, equal)
  if recorded ~= nil and (equal or deep_equal)(observed, recorded) then return recorded end
  return observed
end

--- A type's diff(old, new) from per-property comparisons: `compare` maps a property to
--- an equality function (M.same_set, M.json_equal, ...; others compare deeply); a
--- changed property of `replace_on` forces a replacement. Returns changed property
--- names and the replace flag, as the engine's type contract asks.
function M.diff(replace_on, compare)
  local forces = {}
  for _, k in ipairs(replace_on or {}) do forces[k] = true end
  return function(old, new)
    local keys, seen = {}, {}
    for _, t in ipairs{ old or {}, new or {} } do
      for k in pairs(t) do
        if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
      end
    end
    table.sort(keys)
    local changed, replace = {}, false
    for _, k in ipairs(keys) do
      local eq = (compare or {})[k] or deep_equal
      local a, b = (old or {})[k], (new or {})[k]
      if not ((a == nil and b == nil) or (a ~= nil and b ~= nil and eq(a, b))) then
        changed[#changed + 1] = k
        if forces[k] then replace = true end
      end
    end
    return changed, replace
  end
end

return M
