-- The S3 backend (--backend s3://bucket/prefix, or `backend` in the stack's config file):
-- a stack's state, change log, lock (a lease) and config under s3://bucket/prefix/<stack>/
-- (backend/s3_state.lua, backend/lease.lua), shared by everyone who runs the stack. The
-- bucket is checked first (backend/bucket_checks.lua). Secrets are sealed with a
-- passphrase or a KMS key (secrets_provider): a local key file would be one machine's.
local errors = require "fo.engine.errors"
local s3_state = require "fo.engine.backend.s3_state"
local lease_mod = require "fo.engine.backend.lease"

local M = {}

--- bucket, prefix from "s3://bucket/prefix" (prefix "" when none); nil and why when the
--- text is not one.
function M.parse(spec)
  local bucket, rest = tostring(spec):match("^s3://([^/]+)/?(.*)$")
  if not bucket then return nil, "expected s3://BUCKET/PREFIX" end
  -- the rules of bucket names (general purpose buckets): 3-63 of a-z 0-9 . -
  if #bucket < 3 or #bucket > 63 or not bucket:match("^[a-z0-9][a-z0-9.%-]*[a-z0-9]$") then
    return nil, ("%s is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')"):format(bucket)
  end
  rest = rest:gsub("/+$", "")
  if rest:find("//", 1, true) then return nil, "the prefix has an empty part (//)" end
  return bucket, rest
end

local Backend = {}
Backend.__index = Backend

--- opts: spec (s3://bucket/prefix), stack, region, objects (an object store instead of
--- S3: tests), client (an S3 client instead of fo.aws.s3's), unsafe_ok
--- (--backend-unsafe-ok), lease_seconds.
function M.open(opts)
  local bucket, prefix = M.parse(opts.spec)
  if not bucket then
    errors.raise("usage", ("backend %s: %s"):format(tostring(opts.spec), prefix))
  end
  local b = setmetatable({ kind = "s3", spec = opts.spec, bucket = bucket, prefix = prefix,
    stack = opts.stack, unsafe_ok = opts.unsafe_ok, lease_seconds = opts.lease_seconds,
    objects = opts.objects, client = opts.client, region = opts.region,
    keys = s3_state.keys(opts.stack) }, Backend)
  if not b.objects then
    b.client = b.client or require("fo.aws").s3{ region = opts.region,
      retry_defaults = require("fo.engine.target").RETRY_DEFAULTS }
    b.objects = require("fo.engine.backend.s3_objects").new{ bucket = bucket, prefix = prefix,
      client = b.client }
  end
  b.where = ("%s/%s"):format(b.objects.where, b.keys.state)
  b.config_where = ("%s/%s"):format(b.objects.where, b.keys.config)
  return b
end

local function cloud(fmt, ...)
  errors.raise("cloud", fmt:format(...))
end

--- Checks the bucket (versioning, encryption, public access block) before anything is
--- read: refuses an unfit one with the commands that fix it, unless unsafe_ok.
function Backend:prepare()
  if not self.client or self.prepared then return end -- (not for an object store of a test)
  self.prepared = true
  local checks = require "fo.engine.backend.bucket_checks"
  local ok, problems = pcall(checks.problems, self.client, self.bucket)
  if not ok then
    cloud("cannot read the settings of state bucket %s (%s): check that it exists, in this "
      .. "account and region, and that these credentials may read it (s3:GetBucketVersioning, "
      .. "s3:GetEncryptionConfiguration, s3:GetBucketPublicAccessBlock); nothing was done",
      self.bucket, require("fo.log").redact(require("fo.task").describe(problems)))
  end
  if #problems == 0 then return end
  if self.unsafe_ok then
    io.stderr:write(("fo: warning: --backend-unsafe-ok: state bucket %s is used although it "
      .. "is not fit to hold a stack's state:\n%s\n"):format(self.bucket,
      checks.message(self.bucket, problems):match("^[^\n]*\n(.-)\nNothing")))
    return
  end
  errors.raise("usage", checks.message(self.bucket, problems))
end

--- Takes the stack's lease. opts: break_lock, yes, timeout (seconds), recipe. Returns the
--- lease (:unlock(), :check()), renewed from a task until unlocked.
function Backend:lock(command, opts)
  opts = opts or {}
  local seconds = self.lease_seconds
  local env = tonumber(os.getenv("FO_LEASE_SECONDS") or "")
  if env then seconds = env end
  if seconds ~= nil and (seconds <= 0 or seconds ~= seconds) then
    errors.raise("usage", ("lease of %s seconds (FO_LEASE_SECONDS or lease_seconds): give a "
      .. "positive number"):format(tostring(seconds)))
  end
  local lease = lease_mod.new(self.objects, self.keys.lock, self.stack, { command = command,
    recipe = opts.recipe, seconds = seconds })
  local ok, err = pcall(lease.acquire, lease, opts)
  if not ok then
    if errors.is(err) then error(err, 0) end
    cloud("cannot take the lease of stack %s (%s): %s; nothing was done", self.stack,
      lease:where(), require("fo.log").redact(require("fo.task").describe(err)))
  end
  self.lease = lease:keep_alive()
  return lease
end

function Backend:read_state()
  local body = self.objects:get(self.keys.base .. "moved.json")
  if body then
    local ok, moved = pcall(require("fo.json").decode, body)
    moved = ok and type(moved) == "table" and moved or {}
    errors.raise("usage", ("stack %s was moved to %s (fo-run --migrate-state, %s; mark %s/%s): "
      .. "run it with --backend %s, or `backend = \"%s\"` in the stack's config file")
      :format(self.stack, tostring(moved.to), tostring(moved.at), self.objects.where,
      self.keys.base .. "moved.json", tostring(moved.to), tostring(moved.to)))
  end
  local doc, text, info = s3_state.read(self.objects, self.stack)
  self.read_info = info.medium
  return doc, text, info
end

--- A store over `doc` writing to the bucket, checked against the lease (opts as
--- state.store's).
function Backend:store(doc, original, opts)
  opts = opts or {}
  return s3_state.store(self.objects, self.stack, doc, original, self.read_info,
    { readonly = opts.readonly, log = opts.log, keys = opts.keys, lease = self.lease })
end

--- Marks the stack as moved to `to`: the mark first, then its snapshot and commits are
--- deleted (the bucket's versioning keeps them).
function Backend:mark_moved(to, hash)
  self.lease:check()
  assert(self.objects:put(self.keys.base .. "moved.json", require("fo.json").encode({ to = to,
    sha256 = hash, at = os.date("!%Y-%m-%dT%H:%M:%SZ") })))
  self.objects:delete_many(self.objects:list(self.keys.log))
  self.objects:delete(self.keys.state)
end

function Backend:clear_moved()
  self.objects:delete(self.keys.base .. "moved.json")
end

--- Writes the stack's config values to the bucket (<stack>/config.json).
function Backend:write_config(values)
  self.lease:check()
  assert(self.objects:put(self.keys.config, require("fo.json").encode(values)))
end

--- The stack's config values kept in the bucket (<stack>/config.json), or nil.
function Backend:config_values()
  local body = self.objects:get(self.keys.config)
  if not body then return nil end
  local ok, v = pcall(require("fo.json").decode, body)
  if not ok or type(v) ~= "table" then
    errors.raise("config", ("config %s is not a JSON object of key → value; fix it or remove it")
      :format(self.config_where))
  end
  return v
end

return M
