-- Engine errors and exit codes: every failure a user can cause is one of these kinds, with
-- the place it comes from (recipe file:line, resource, AWS operation); report.lua formats them.
local M = {}

--- fo-run's exit codes for recipes (docs/recipes.md).
M.EXIT = {
  ok = 0,
  recipe = 1,      -- the recipe or script raised, a recipe error, an unreadable state file
  usage = 2,       -- bad command line, a mutating run against AWS without --yes
  cloud = 3,       -- a cloud error left partial progress (--no-rollback, a failed delete or rollback)
  rolled_back = 4, -- a cloud error, and everything this run did was undone
  lock = 5,        -- another run holds the stack's lock
  interrupted = 130, -- the first Ctrl-C stopped an apply or a destroy (128 + SIGINT, as shells say)
}

-- kind → exit code
local CODE = { recipe = M.EXIT.recipe, config = M.EXIT.recipe, state = M.EXIT.recipe,
  usage = M.EXIT.usage, lock = M.EXIT.lock, cloud = M.EXIT.cloud, conflict = M.EXIT.cloud }

local Error = {}
Error.__index = Error
Error.__name = "fo.engine.Error"

function Error.__tostring(e)
  if e.where then return e.where .. ": " .. e.message end
  return e.message
end

--- An engine error: kind (recipe, config, state, usage, lock, cloud, conflict), message,
--- where ("file:line" of the declaration it is about, or nil). A conflict is a create that
--- found the resource already there, made by something other than this create (another
--- stack or copy of it, a person): the operation fails, nothing is taken over.
function M.new(kind, message, where)
  return setmetatable({ kind = kind, message = message, where = where }, Error)
end

--- Raises an engine error (as a table: callers test e.kind).
function M.raise(kind, message, where)
  error(M.new(kind, message, where), 0)
end

function M.is(e, kind)
  return getmetatable(e) == Error and (kind == nil or e.kind == kind)
end

function M.exit_code(e)
  return CODE[e.kind] or M.EXIT.recipe
end

-- Frames inside these files are the engine's own, never the user's place.
local function internal(source)
  return source:find("/fo/engine/", 1, true) or source:find("/fo/init.lua", 1, true)
    or source == "=[C]"
end

--- "file:line" of the first caller outside the engine, from `level` up (default 2).
function M.where(level)
  level = (level or 2) + 1
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return nil end
    if info.currentline and info.currentline > 0 and not internal(info.source) then
      local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
      return src .. ":" .. info.currentline
    end
    level = level + 1
  end
end

--- "…; did you mean 'x'?" when a close name exists, for unknown names typed by people.
function M.did_you_mean(wanted, names)
  local best = require("fo.aws.suggest").closest(wanted, names)
  return best and (" (did you mean '%s'?)"):format(best) or ""
end

--- Sorted, comma-separated names of a set or array.
function M.list(names)
  local out = {}
  for k, v in pairs(names) do out[#out + 1] = type(k) == "string" and k or tostring(v) end
  table.sort(out)
  return table.concat(out, ", ")
end

return M
