-- What a resource type gets for one operation: the stack and logical name, the tags that
-- identify what it creates, an idempotency token, clients bound to the stack's target,
-- and a logger.
local log = require "fo.log"

local M = {}
local Ctx = {}
Ctx.__index = Ctx

--- The idempotency token of one create of `urn`: 32 hex digits from the URN, the
--- generation and the create's `nonce` (M.nonce(); without one, from the URN and generation
--- alone). A create journals its token with its intent, so adoption after a crash looks for
--- the same token; every other create — a replacement, a create again after a rollback or a
--- destroy — has a new one: APIs remember tokens (Route 53 refuses a used CallerReference
--- forever; EC2 answers a repeated ClientToken with the first call's resource).
function M.token(urn, generation, nonce)
  local crypto = require "fo.crypto"
  -- (one concatenation: the seed without its nonce is not made first)
  local seed = nonce and urn .. "#" .. tostring(generation) .. "#" .. nonce
    or urn .. "#" .. tostring(generation)
  return crypto.hex(crypto.sha256(seed)):sub(1, 32)
end

--- A fresh nonce for M.token (16 hex digits).
function M.nonce()
  local crypto = require "fo.crypto"
  return crypto.hex(crypto.random(8))
end

-- The known ids of a context given none (most): one shared set, read only.
local NO_IDS = setmetatable({}, { __newindex = function()
  error("ctx.known_ids is read only", 2)
end })

--- info: {urn=, type=, name=, region=, generation=, known_ids = {id=true}, token= (a
--- create's, the intent's for adopt, the one a record was created with; default
--- M.token(urn, generation)), timeout = seconds (the operation's custom timeout)}. A given token is also the tag fo:token, next to fo:stack
--- and fo:name: what carries it was made by that very create, and adoption takes nothing
--- else (another copy of the stack tags its resources with the same stack and name).
--- Records written before fo kept tokens have none: their tags stay stack and name.
function M.new(run, info)
  local generation = info.generation or 1
  local tags = { ["fo:stack"] = run.stack, ["fo:name"] = info.name }
  if info.token then tags["fo:token"] = info.token end
  return setmetatable({
    stack = run.stack, urn = info.urn, type = info.type, name = info.name,
    region = info.region, target = run.target.kind, generation = generation,
    token = info.token or M.token(info.urn, generation),
    tags = tags,
    known_ids = info.known_ids or NO_IDS,
    -- the operation's custom timeout (lifecycle option timeouts): every wait of the
    -- operation ends by this deadline (fo.aws.resources.common)
    timeout = info.timeout,
    deadline = info.timeout and require("fo.core").now() + info.timeout or nil,
    -- when this run created the resource (nil: an earlier run did): AWS may not see it yet
    created_at = info.created_at,
    _target = run.target,
    _store = run.store,
  }, Ctx)
end

--- A client of `service` (aws.<service> or the simulator's), in `region` (default the
--- resource's region).
function Ctx:client(service, region)
  return self._target:client(service, region or self.region)
end

--- The ARN of `resource` ("alarm:NAME") of `service` in the resource's region, in the
--- account and partition the stack is bound to (binding.lua records them before any
--- change); nil when the state has no account yet. For a create whose answer holds no ARN
--- to build it rather than describe the new resource (an ARN's form is AWS's documented one).
function Ctx:arn(service, resource)
  local doc = self._store and self._store.doc
  if not (doc and doc.account) then return nil end
  return ("arn:%s:%s:%s:%s:%s"):format(doc.partition or "aws", service, self.region,
    doc.account, resource)
end

--- The regions the stack holds resources in (its state's records), this resource's first:
--- what an account-wide fact shared across regions (an ACM validation record) is checked in.
function Ctx:stack_regions()
  local out, seen = { self.region }, { [self.region] = true }
  local resources = self._store and self._store.doc.resources or {}
  local more = {}
  for _, rec in pairs(resources) do
    if rec.region and not seen[rec.region] then
      seen[rec.region] = true
      more[#more + 1] = rec.region
    end
  end
  table.sort(more)
  for _, r in ipairs(more) do out[#out + 1] = r end
  return out
end

--- The tags as AWS lists them: { {Key=, Value=}, ... }, sorted by key.
function Ctx:tag_list()
  local keys = {}
  for k in pairs(self.tags) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = { Key = k, Value = self.tags[k] } end
  return out
end

--- EC2-style filters that match the tags: { {Name="tag:fo:stack", Values={stack}}, ... }.
function Ctx:tag_filters()
  local out = {}
  for i, t in ipairs(self:tag_list()) do out[i] = { Name = "tag:" .. t.Key, Values = { t.Value } } end
  return out
end

--- True when `tags` (a map or an AWS {Key=, Value=} list) carry this resource's tags —
--- fo:token included when the ctx has a token (a create, an adopt, a record that kept its
--- token): true then means this very create made the resource.
function Ctx:owns(tags)
  local map = {}
  for k, v in pairs(tags or {}) do
    if type(v) == "table" then map[v.Key] = v.Value else map[k] = v end
  end
  for k, v in pairs(self.tags) do
    if map[k] ~= v then return false end
  end
  return true
end

for _, level in ipairs({ "error", "warn", "info", "debug" }) do
  Ctx[level] = function(self, fmt, ...)
    log[level]("%s: " .. fmt, self.urn, ...)
  end
end

--- Waits `seconds` on the event loop (other operations go on meanwhile).
function Ctx:sleep(seconds)
  require("fo.core").sleep(seconds)
end

return M
