-- The recipe API as the `fo` table shows it: fo.resource, fo.output, fo.config, fo.format,
-- fo.apply, fo.moved, fo.type, fo.fail, fo.warn. Each checks its arguments and names the caller's file:line.
local recipe = require "fo.engine.recipe"
local ref = require "fo.engine.ref"
local errors = require "fo.engine.errors"
local secret = require "fo.engine.secret"

local M = {}

-- The config session of the run (set by the engine before the recipe runs).
local config_session

function M.set_config_session(s)
  config_session = s
end

--- fo.resource(type, name, props, opts) → handle (docs/recipes.md).
function M.resource(type_name, name, props, opts)
  local where = errors.where(2)
  return recipe.current("fo.resource"):declare(type_name, name, props, opts, where)
end

--- fo.output(name, value): publishes a stack output.
function M.output(name, value)
  recipe.current("fo.output"):output(name, value, errors.where(2))
end

--- fo.config{ key = {type=, default=, required=, check=, enum=, doc=, secret=} } → values.
function M.config(schema)
  local where = errors.where(2)
  if not config_session then
    config_session = require("fo.engine.config").session(nil, {})
  end
  return config_session:declare(schema, where)
end

local function check_no_handle(v, what)
  if recipe.decl_of(v) then
    errors.raise("recipe", ("%s: got the resource %s itself; give one of its outputs (e.g. "
      .. "%s.id)"):format(what, recipe.decl_of(v).name, recipe.decl_of(v).name), errors.where(3))
  end
end

--- fo.format(fmt, ...) → a string, or a lazy one when an argument is a reference.
function M.format(fmt, ...)
  if type(fmt) ~= "string" then error("fo.format(fmt, ...): fmt must be a string", 2) end
  local args = table.pack(...)
  for i = 1, args.n do check_no_handle(args[i], "fo.format") end
  if not ref.contains(args) then
    return secret.lift(function(...) return fmt:format(...) end, ...)
  end
  return ref.derive(args, function(...) return fmt:format(...) end, errors.where(2))
end

--- fo.apply(value, fn) → fn(value) once value (which may hold references) is known.
function M.apply(value, fn)
  if type(fn) ~= "function" then error("fo.apply(value, fn): fn must be a function", 2) end
  check_no_handle(value, "fo.apply")
  if not ref.contains(value) then return secret.lift(fn, value) end
  return ref.derive({ value, n = 1 }, fn, errors.where(2))
end

--- fo.fail(message): stops the recipe with a recipe error (exit 1) that names the caller's
--- file:line and says `message`, without a traceback: for a mistake of whoever runs the
--- recipe (two config values that do not go together), not of the recipe's code.
function M.fail(message)
  if type(message) ~= "string" then error("fo.fail(message): message must be a string", 2) end
  errors.raise("recipe", message, errors.where(2))
end

--- fo.warn(text): a warning about the recipe's choices (an image past its end of support),
--- shown with the plan and the run ("fo: warning: ...") and as a --json notice event; the
--- run goes on.
function M.warn(text)
  if type(text) ~= "string" then error("fo.warn(text): text must be a string", 2) end
  local r = recipe.current("fo.warn")
  r.warnings[#r.warnings + 1] = text
end

--- fo.moved{ from = "old name", to = "new name" }: a renamed resource keeps its record
--- (moved.lua).
M.moved = require("fo.engine.moved").declare

--- fo.component(type, fn): a function that groups resources under an instance name
--- (component.lua).
M.component = require("fo.engine.component").define

--- fo.type(name, definition): registers a resource type (docs/recipes.md).
M.type = require("fo.engine.types").register

--- The marker of values known only after apply (plan output, custom diffs).
M.unknown = ref.UNKNOWN

return M
