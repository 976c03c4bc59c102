-- `fo-run RECIPE --stack S --migrate-state URL`: moves a stack's state (and config) from
-- the backend it is in now to another one (s3://bucket/prefix, or local), without loss:
-- under both locks, the copy is read back and compared with the source by hash before the
-- source is marked as moved (a moved stack's old place refuses runs and names the new
-- one). The local config file then names the new backend (`backend`), so that the next
-- run on this machine goes there; other machines need the same setting
-- (docs/state-backends.md).
local errors = require "fo.engine.errors"
local json = require "fo.json"
local state = require "fo.engine.state"
local backend_mod = require "fo.engine.backend"

local M = {}

-- The canonical text of a state document (keys sorted, as the snapshot is written) and
-- its SHA-256.
local function canonical(doc, where)
  local text = state.store(where, doc, nil, { readonly = true, medium = {} }):encode()
  return text, state.sha256_hex(text)
end

-- A copy of a decoded JSON value.
local function copy(v)
  return json.decode(json.encode(v))
end

--- Moves the stack. opts: engine.run's (stack, dir, backend, migrate_to, ...); paths: the
--- stack's local paths with .backend (the source, opened) and .settings. Returns the exit
--- code after reporting.
function M.run(opts, paths, report)
  local source = paths.backend
  local to = opts.migrate_to
  local from = opts.backend or paths.settings.backend or "local"
  if from:gsub("/+$", "") == to:gsub("/+$", "") then
    errors.raise("usage", ("stack %s is already kept in %s: nothing to migrate"):format(
      opts.stack, source.where))
  end
  local target = backend_mod.open{ spec = to, dir = opts.dir, stack = opts.stack,
    region = opts.region or paths.region, unsafe_ok = opts.backend_unsafe_ok, objects = opts.migrate_objects,
    client = opts.migrate_client, settings = {} }
  if target.where == source.where then
    errors.raise("usage", ("stack %s is already kept in %s: nothing to migrate"):format(
      opts.stack, source.where))
  end
  source:prepare()
  target:prepare()
  local lock_opts = { timeout = opts.lock_timeout, break_lock = opts.break_lock, yes = opts.yes }
  local command = require("fo.engine.secret").scrub(opts.command or "fo-run --migrate-state")
  local held = {}
  local _ <close> = setmetatable({}, { __close = function()
    for i = #held, 1, -1 do pcall(held[i].unlock, held[i]) end
  end })
  held[1] = source:lock(command, lock_opts)
  held[2] = target:lock(command, lock_opts)

  local doc, _, info = source:read_state()
  for _, text in ipairs(info.notices or {}) do report:notice(text) end
  if not doc then
    errors.raise("usage", ("stack %s has no state in %s: nothing to migrate"):format(opts.stack,
      source.where))
  end
  target:clear_moved()
  if target:read_state() then
    errors.raise("usage", ("%s already holds a state of stack %s: fo does not overwrite it. "
      .. "Nothing was changed; migrate to another prefix, or remove that state once sure it is "
      .. "not needed"):format(target.where, opts.stack))
  end
  local _, source_hash = canonical(copy(doc), source.where)

  -- the copy: one snapshot, written as the first write of a new stack
  local store = target:store(copy(doc), nil, {})
  store.serial_counted = true -- a copy is the same version of the state: its serial stays
  store:set("stack", doc.stack)
  store:commit()
  store:finish()
  local back = target:read_state()
  local _, copy_hash = canonical(back, target.where)
  if copy_hash ~= source_hash then
    errors.raise("state", ("the copy of stack %s in %s does not read back as the source %s "
      .. "(sha256 %s, source %s): the source is left as it was; remove the copy and retry")
      :format(opts.stack, target.where, source.where, copy_hash, source_hash))
  end
  -- the config values kept with the state
  local values = source:config_values()
  if values then
    backend_mod.take_settings(values)
    target:write_config(values)
  end
  -- the source is marked as moved (its state kept beside the mark, never deleted)
  source:mark_moved(to, source_hash)
  -- this machine's config file names where the stack is now (the recipe's config values
  -- are the bucket's when it is S3)
  local fs = require "fo.fs"
  local file = require("fo.engine.config").read_file(paths.config) or {}
  if target.kind == "local" then
    file.backend = nil
  else
    for k in pairs(file) do
      if not backend_mod.SETTINGS[k] then file[k] = nil end
    end
    file.backend = to
  end
  fs.mkdir_p(opts.dir, tonumber("700", 8))
  if next(file) then
    fs.write_atomic(paths.config, json.encode(file), tonumber("600", 8))
  else
    os.remove(paths.config)
  end
  if type(doc.secrets) == "table" and doc.secrets.key == "file" then
    report:warn(("the secrets of stack %s are sealed with the key file %s, which stays on this "
      .. "machine: other machines need a copy of it"):format(opts.stack, paths.key))
  end
  report:summary("ok", ("Stack %s migrated from %s to %s (%d resources; sha256 %s verified). "
    .. "The source is marked as moved. Other machines running this stack need `backend = "
    .. "\"%s\"` in their config file (or --backend %s)."):format(opts.stack, source.where,
    target.where, (function() local n = 0 for _ in pairs(doc.resources) do n = n + 1 end
      return n end)(), source_hash:sub(1, 16), to, to))
  return errors.EXIT.ok
end

return M
