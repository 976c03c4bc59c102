-- `fo-run --readiness RECIPE [--stack S] [--json]`: reads the stack's state (where its
-- resources are) and runs lua/fo/readiness.lua against the stack's target — the stack's
-- simulator file, or AWS with the caller's credentials (which must be the stack's
-- account). Read-only: no lock is taken, nothing is written, the simulator is not saved.
-- Exit codes: 0 every check passed (warnings allowed), 3 a check failed, 2 usage (no
-- such stack, another account), 1 a stack that is not the trading recipe's.
local engine = require "fo.engine"
local errors = require "fo.engine.errors"
local readiness = require "fo.readiness"

local M = {}

-- The stack's state document, read through its backend (local or S3) without the lock.
local function read_state(opts, dir)
  local config = require "fo.engine.config"
  local backend_mod = require "fo.engine.backend"
  local paths = engine.paths(dir, opts.stack)
  local settings = backend_mod.take_settings(config.read_file(paths.config) or {}, paths.config)
  local region = os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION") or "us-east-1"
  local be = backend_mod.open{ spec = opts.backend, settings = settings, dir = dir,
    stack = opts.stack, region = region, unsafe_ok = opts.backend_unsafe_ok }
  if be.kind ~= "local" then be:prepare() end
  local doc = be:read_state()
  return doc, be.where
end

--- Runs the readiness check for opts (cli.lua's: stack, target, json, dir, recipe,
--- backend); writes the report (text, or one JSON document with --json) to `out`
--- (default stdout). Returns the exit code and the result.
function M.main(opts, out)
  out = out or function(s) io.stdout:write(s) end
  local function fail(code, text)
    if opts.json then
      out(require("fo.json").line({ v = 1, event = "readiness", status = "error",
        exit_code = code, error = { text = text } }, { "v", "event" }) .. "\n")
    end
    io.stderr:write("fo-run: --readiness: ", text, "\n")
    return code
  end
  opts.stack = opts.stack or "dev"
  local ok, res = pcall(function()
    local dir = engine.state_dir(opts.dir, opts.recipe ~= "-" and opts.recipe or nil)
    local doc, where = read_state(opts, dir)
    if not doc then
      errors.raise("usage", ("stack %s has no state (%s): apply the recipe first (fo-run%s "
        .. "%s)"):format(opts.stack, where, opts.stack ~= "dev" and (" --stack " .. opts.stack)
        or "", tostring(opts.recipe)))
    end
    if opts.target and opts.target ~= doc.target then
      errors.raise("usage", ("stack %s is bound to target %s, not %s"):format(opts.stack,
        doc.target, opts.target))
    end
    local t = require("fo.engine.target").open{ kind = doc.target, dir = dir, stack = opts.stack,
      sim = opts.sim }
    -- the credentials must be the stack's account: another account's resources of the same
    -- names would answer for it
    if doc.target == "aws" and doc.account then
      local now = require("fo.engine.binding").identity(t, "us-east-1")
      if now.account ~= doc.account then
        errors.raise("usage", ("stack %s is bound to AWS account %s, but these credentials are "
          .. "for account %s: use the stack's account's credentials (AWS_PROFILE)")
          :format(opts.stack, doc.account, tostring(now.account)))
      end
    end
    local r = readiness.run(doc, function(service, region) return t:client(service, region) end)
    r.target = doc.target
    return r
  end)
  if not ok then
    if errors.is(res) then return fail(errors.exit_code(res), res.message or tostring(res)) end
    return fail(errors.EXIT.recipe, tostring(res))
  end
  local code = res.ok and errors.EXIT.ok or readiness.EXIT_FAILED
  if opts.json then
    local doc = { v = 1, event = "readiness", stack = opts.stack, target = res.target,
      primary_region = res.regions.primary, standby_region = res.regions.standby,
      status = res.ok and "ok" or "failed", exit_code = code, counts = res.counts,
      findings = {}, not_checked = res.not_checked }
    for i, f in ipairs(res.findings) do
      doc.findings[i] = { severity = f.severity, check = f.check, what = f.what,
        region = f.region, resource = f.resource, fix = f.fix }
    end
    out(require("fo.json").line(doc, { "v", "event" }) .. "\n")
  else
    for _, l in ipairs(readiness.lines(res, { stack = opts.stack, target = res.target })) do
      out(l .. "\n")
    end
  end
  return code, res
end

return M
