-- `fo-run outputs [NAME] [--json] [--show-secrets]`: a stack's outputs (fo.output in the
-- recipe), as its last apply recorded them in the state — without the recipe, a lock or a
-- cloud call, so a runbook reads them while a run goes on. A secret output shows as
-- [secret] unless --show-secrets; its value is decrypted only then.
local errors = require "fo.engine.errors"
local commands = require "fo.engine.commands"
local secret = require "fo.engine.secret"
local diff = require "fo.engine.diff"
local json = require "fo.json"

local M = {}

-- One value alone, for a shell (`X=$(fo-run outputs NAME)`): a string as it is, anything
-- else as JSON.
local function raw(v)
  if type(v) == "string" then return v end
  return (json.encode(v):gsub("\n%s*", ""))
end

--- Prints the outputs of the stack `st` (commands.open); args[1]: one output's name.
function M.run(st, args)
  local be, o, r = st.backend, st.opts, st.report
  local fs = require "fo.fs"
  if be.kind == "local" then
    if not fs.exists(be.where) and not fs.exists(require("fo.engine.state").log_path(be.where)) then
      commands.no_state(st)
    end
  else
    be:prepare()
  end
  local doc, _, info = be:read_state()
  for _, text in ipairs(info.notices or {}) do r:notice(text) end
  if not doc then commands.no_state(st) end
  local values = secret.unseal(doc.outputs or {}, o.show_secrets and commands.keyring(st, doc)
    or nil)
  local names = {}
  for k in pairs(values) do names[#names + 1] = k end
  table.sort(names)
  local name = args[1]
  if name and values[name] == nil then
    errors.raise("usage", ("stack %s has no output %s%s; its outputs: %s"):format(o.stack, name,
      errors.did_you_mean(name, names), #names > 0 and table.concat(names, ", ")
        or "none (the recipe declares none with fo.output, or it was never applied)"))
  end
  if name and secret.is(values[name]) and not o.show_secrets and not o.json then
    errors.raise("usage", ("output %s of stack %s is secret: add --show-secrets to print it")
      :format(name, o.stack))
  end
  if o.show_secrets then
    values = secret.reveal(values)
    -- asked for: the report's writers would mask the values it just decrypted
    r.write_out = function(s) io.stdout:write(s) io.stdout:flush() end
  end
  local shown = values
  if name then shown = { [name] = values[name] } end
  r:emit("outputs", { outputs = shown })
  if o.json then return errors.EXIT.ok end
  if name then
    local v = values[name]
    r:out("%s\n", secret.is(v) and secret.TEXT or raw(v))
    return errors.EXIT.ok
  end
  if #names == 0 then
    r:err("fo: stack %s has no outputs\n", o.stack)
  end
  for _, k in ipairs(names) do r:out("%s = %s\n", k, diff.show(values[k], 100000)) end
  return errors.EXIT.ok
end

return M
