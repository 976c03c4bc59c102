-- The local backend: a stack's files in its state directory (.fo/<stack>.state.json and
-- .state.log, .lock, .config.json, .key), as fo always kept them. The backend interface
-- (backend/init.lua) over state.lua, lock.lua and statedir.lua.
local errors = require "fo.engine.errors"
local state = require "fo.engine.state"

local M = {}

local Backend = {}
Backend.__index = Backend

--- The paths of a stack's files in `dir`.
function M.paths(dir, stack)
  local base = dir .. "/" .. stack
  return { state = base .. ".state.json", config = base .. ".config.json",
    lock = base .. ".lock", sim = base .. ".sim.json", key = base .. ".key" }
end

--- opts: dir (the state directory), stack.
function M.open(opts)
  local paths = M.paths(opts.dir, opts.stack)
  return setmetatable({ kind = "local", dir = opts.dir, stack = opts.stack, paths = paths,
    where = paths.state, config_where = paths.config, key_path = paths.key }, Backend)
end

function Backend:prepare()
  require("fo.engine.statedir").prepare(self.dir, self.paths.state)
end

local Held = {}
Held.__index = Held
function Held:unlock() self.lk:unlock() end
function Held:check() end

--- Takes the stack's lock file. opts: break_lock, timeout (seconds to wait for a holder,
--- polling; 0 or nil: refuse at once). Returns the lock (:unlock(), :check()).
function Backend:lock(command, opts)
  opts = opts or {}
  local lock = require "fo.engine.lock"
  local core = require "fo.core"
  local deadline = core.now() + (opts.timeout or 0)
  local told
  while true do
    local ok, lk = pcall(lock.acquire, self.paths.lock, self.stack, command, opts.break_lock)
    if ok then return setmetatable({ lk = lk }, Held) end
    if not errors.is(lk) or lk.kind ~= "lock" or core.now() >= deadline then error(lk, 0) end
    if not told then
      told = true
      io.stderr:write(("fo: %s; waiting up to %ds\n"):format(lk.message:match("^[^;]*"),
        math.ceil(deadline - core.now())))
    end
    core.sleep(math.min(1, math.max(0.05, deadline - core.now())))
  end
end

-- The mark of a stack moved elsewhere (fo-run --migrate-state), next to its old files.
function Backend:_moved_path()
  return self.dir .. "/" .. self.stack .. ".moved.json"
end

function Backend:read_state()
  local moved = require("fo.json").read_file(self:_moved_path())
  if type(moved) == "table" then
    errors.raise("usage", ("stack %s was moved to %s (fo-run --migrate-state, %s; mark %s): run "
      .. "it with --backend %s, or `backend = \"%s\"` in %s"):format(self.stack,
      tostring(moved.to), tostring(moved.at), self:_moved_path(), tostring(moved.to),
      tostring(moved.to), self.config_where))
  end
  return state.read(self.paths.state)
end

--- Marks the stack as moved to `to`: its state and log are renamed *.migrated (kept), and
--- the mark names where it went.
function Backend:mark_moved(to, hash)
  local fs = require "fo.fs"
  fs.write_atomic(self:_moved_path(), require("fo.json").encode({ to = to, sha256 = hash,
    at = os.date("!%Y-%m-%dT%H:%M:%SZ") }), tonumber("600", 8))
  for _, p in ipairs({ self.paths.state, state.log_path(self.paths.state) }) do
    if fs.exists(p) then assert(os.rename(p, p .. ".migrated")) end
  end
end

function Backend:clear_moved()
  os.remove(self:_moved_path())
end

--- Writes the stack's config values into its config file (fo's settings there kept).
function Backend:write_config(values)
  local file = require("fo.engine.config").read_file(self.paths.config) or {}
  for k, v in pairs(values) do file[k] = v end
  require("fo.fs").mkdir_p(self.dir, tonumber("700", 8))
  require("fo.fs").write_atomic(self.paths.config, require("fo.json").encode(file),
    tonumber("600", 8))
end

--- A store over `doc` (opts as state.store's).
function Backend:store(doc, original, opts)
  return state.store(self.paths.state, doc, original, opts)
end

--- The stack's config values in the backend (the config file's), or nil.
function Backend:config_values()
  return require("fo.engine.config").read_file(self.paths.config)
end

return M
