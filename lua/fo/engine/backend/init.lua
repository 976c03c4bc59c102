-- Where a stack's state, lock and config are kept: a backend. The local backend (the state
-- directory, .fo/) is the default; `--backend s3://bucket/prefix`, or `backend` in the
-- stack's config file (.fo/<stack>.config.json), keeps them in S3 (docs/state-backends.md).
-- One small interface, whichever it is:
--   b.kind ("local" | "s3"), b.where (the state, for messages), b.config_where
--   b:prepare()                      checks before anything is read (directory, bucket)
--   b:lock(command, opts) -> lock    opts: break_lock, yes, timeout (seconds), recipe;
--                                    lock:unlock(), lock:check() (before each state write)
--   b:read_state() -> doc, text, info         as state.read
--   b:store(doc, original, opts) -> store     as state.store
--   b:config_values() -> {key = value} | nil  the stack's config kept with its state
--   b.key_path                       the local key file (nil: the backend keeps none)
local errors = require "fo.engine.errors"

local M = {}

--- The keys of a stack's config file that are fo's settings, not the recipe's config.
M.SETTINGS = { backend = "string", secrets_provider = "string", lease_seconds = "number" }

--- The settings in config values `values` (removed from it): {backend=, ...}; raises a
--- config error for one of the wrong type.
function M.take_settings(values, where)
  local out = {}
  for k, t in pairs(M.SETTINGS) do
    local v = values and values[k]
    if v ~= nil then
      if type(v) ~= t then
        errors.raise("config", ("%s: %s must be a %s"):format(where or "config", k, t))
      end
      out[k] = v
      values[k] = nil
    end
  end
  return out
end

--- The backend spec named by `text`: "local", or s3://...; nil and why otherwise.
function M.check_spec(text)
  if text == "local" then return text end
  if tostring(text):match("^s3://") then
    local ok, why = require("fo.engine.backend.s3").parse(text)
    if not ok then return nil, why end
    return text
  end
  return nil, "use s3://BUCKET/PREFIX or local"
end

--- Opens the backend of a stack. opts: spec (--backend, else settings.backend, else
--- local), dir, stack, region, unsafe_ok, settings (from the config file), objects (tests).
function M.open(opts)
  local settings = opts.settings or {}
  local spec = opts.spec or settings.backend or "local"
  local ok, why = M.check_spec(spec)
  if not ok then
    errors.raise("usage", ("backend %s%s: %s"):format(spec, opts.spec and " (--backend)"
      or " (the config file's backend)", why))
  end
  if spec == "local" then
    return require("fo.engine.backend.local").open{ dir = opts.dir, stack = opts.stack }
  end
  return require("fo.engine.backend.s3").open{ spec = spec, stack = opts.stack,
    region = opts.region, unsafe_ok = opts.unsafe_ok, objects = opts.objects,
    lease_seconds = settings.lease_seconds }
end

return M
