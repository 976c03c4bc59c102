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

--- The tags of what a type creates: ctx's fo:stack/fo:name plus the resource's own map,
--- as AWS lists them ({Key=, Value=}, sorted by key after the fo: ones).
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

--- The first record of `list` tagged for ctx that the state does not already know
--- (adoption after a crash). `id_field` names the record's id; `tags_of(record)` gives its
--- tags when they are not in record.Tags.
function M.unknown_owned(ctx, list, id_field, tags_of)
  for _, r in ipairs(list or {}) do
    local tags = tags_of and tags_of(r) or r.Tags
    if not ctx.known_ids[r[id_field]] and ctx:owns(tags or {}) then return r end
  end
  return nil
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

--- Runs fn(...) and repeats it while it fails with an error of the named situation of
--- consistency.lua (e.g. "not_found_after_create"), waiting with growing delays on the
--- event loop, up to the situation's bound; then the last error is raised. Returns fn's
--- results.
function M.retry(ctx, situation_name, fn, ...)
  local situation = assert(consistency[situation_name], "unknown consistency situation "
    .. tostring(situation_name))
  local deadline = require("fo.core").now() + situation.seconds
  local delay = situation.delay
  while true do
    local r = table.pack(pcall(fn, ...))
    if r[1] then return table.unpack(r, 2, r.n) end
    local err = r[2]
    if not matches(situation, err) or require("fo.core").now() + delay > deadline then
      error(err, 0)
    end
    ctx:debug("%s: %s, retrying in %gs", situation_name, tostring(err.code), delay)
    ctx:sleep(delay)
    delay = math.min(delay * 2, situation.max_delay or delay)
  end
end

--- Runs a model waiter (client:wait) with a bound in seconds; a clear error names the
--- resource when it does not finish.
function M.wait(ctx, client, waiter, params, seconds)
  return client:wait(waiter, params, { timeout = seconds or 600 })
end

return M
