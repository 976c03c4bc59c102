-- `fo-run state import TYPE::NAME ID [--region R]`: the one-off form of a declaration's
-- `import = ID` (import.lua). Reads the resource by its id on the stack's target and
-- records it under TYPE::NAME, as the state holds it after an import; the recipe's next run
-- compares its declaration with it. Takes the lock and writes as the other state commands
-- (state_cmd.lua): the state log, then the fold.
local errors = require "fo.engine.errors"
local import = require "fo.engine.import"
local types = require "fo.engine.types"

local M = {}
local EXIT = errors.EXIT

local NAME = "^[%w_][%w_%.%-/]*$" -- as recipe.lua's names

local function usage(fmt, ...)
  errors.raise("usage", fmt:format(...))
end

-- TYPE::NAME (or STACK::TYPE::NAME) → type, name.
local function parse(stack, word)
  local rest = word
  if rest:sub(1, #stack + 2) == stack .. "::" and rest:find("::", #stack + 3, true) then
    rest = rest:sub(#stack + 3)
  end
  local type_name, name = rest:match("^(.-)::(.*)$")
  if not type_name or type_name == "" then
    usage("state import %s: give the resource as TYPE::NAME (e.g. aws:ec2:vpc::main), the "
      .. "name the recipe declares it under", word)
  end
  if not name:match(NAME) then
    usage("state import: name %q: use letters, digits, _ . - / (as fo.resource's names)", name)
  end
  return type_name, name
end

-- The type, registered by the module the state records for it, or fo's AWS types.
local function type_def(doc, type_name)
  if not types.get(type_name) then
    local module = doc.types and doc.types[type_name]
      or type_name:match("^aws:") and "fo.aws.resources"
    if module then pcall(require, module) end
  end
  local t = types.get(type_name)
  if not t then
    local known = types.names()
    usage("state import: unknown resource type %s%s (a type of a module the state does not "
      .. "record: declare the resource with import = ID in its recipe instead)", type_name,
      errors.did_you_mean(type_name, known))
  end
  return t
end

local default_region = require("fo.engine.location").default_region

function M.run(st, doc, original, info, args)
  local opts = st.opts
  local type_name, name = parse(opts.stack, args[1])
  local id = args[2]
  local tdef = type_def(doc, type_name)
  local urn = require("fo.engine.recipe").urn(opts.stack, type_name, name)
  local region = opts.region or default_region()
  if doc.resources[urn] then
    usage("stack %s already manages %s (as %s); nothing was changed. To take another resource "
      .. "under that name, forget this one first (`fo-run state rm %s`: nothing is deleted)",
      opts.stack, urn, doc.resources[urn].id, urn)
  end
  import.check_id(type_name, id)
  local why = import.taken(doc, type_name, id, urn, region)
  if why then usage("cannot import %s as %s: %s; nothing was changed", id, urn, why) end
  local target = require("fo.engine.target").open{ kind = doc.target, dir = opts.dir,
    stack = opts.stack, sim = opts.sim }
  if doc.account then -- the stack's account, as a run checks it (binding.lua)
    local binding = require "fo.engine.binding"
    local ok, now = pcall(binding.identity, target, region)
    if not ok then
      errors.raise("cloud", ("cannot tell which AWS account the credentials belong to (STS "
        .. "GetCallerIdentity): %s. Nothing was changed."):format(require("fo.log").redact(
        tostring(now))))
    end
    if now.account ~= doc.account then
      usage("stack %s is bound to AWS account %s, but these credentials are for account %s; "
        .. "nothing was changed", opts.stack, doc.account, tostring(now.account))
    end
  end
  local run = { stack = opts.stack, report = st.report, target = target }
  local rec, failed, kind = import.read(run, tdef, { urn = urn, type = type_name, name = name,
    region = region }, id, {}, {})
  if kind == "owned" then
    usage("cannot import %s as %s: %s; nothing was changed", id, urn, failed)
  elseif not rec then
    errors.raise(kind == "failed" and "cloud" or "usage", ("cannot import %s as %s: %s. Check "
      .. "the id and the region (--region, default %s); nothing was changed"):format(id, urn,
      failed, region))
  end
  local store = st.backend:store(doc, original, { log = info.log,
    keys = require("fo.engine.commands").keyring(st, doc) })
  -- read with no declaration: the recipe's next run reads it again with its own
  -- (import.settle), so what a read observes only when declared is compared then
  rec.read_undeclared = true
  store:put(urn, rec)
  store:commit()
  store:finish()
  local r = st.report
  r:emit("import", { urn = urn, type = type_name, id = id, region = region })
  r:summary("ok", ("Imported %s as %s (in %s): stack %s manages it now; nothing was changed in "
    .. "the cloud. Declare it in the recipe as fo.resource(%q, %q, ...): its next run shows "
    .. "what differs from the declaration (--plan)."):format(id, urn, region, opts.stack,
    type_name, name))
  return EXIT.ok
end

return M
