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

function Backend:read_state()
  return state.read(self.paths.state)
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
