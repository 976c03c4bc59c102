-- Saved plans: `fo-run --plan --out FILE` writes the plan with what it was computed from
-- (the state's serial, the recipe's files, the config, fo's and the AWS models' versions,
-- the drift its refresh saw); `fo-run apply FILE` applies exactly that plan, or refuses
-- (exit 1) naming each thing that moved since. Secret values are in the file only sealed
-- with the stack's key, as the state holds them (secret.lua). docs/recipes.md, "Saved
-- plans"; the checks and why they are stricter than Terraform's: docs/engine.md.
local errors = require "fo.engine.errors"
local json = require "fo.json"
local secret = require "fo.engine.secret"
local ref = require "fo.engine.ref"
local location = require "fo.engine.location"
local fs = require "fo.fs"

local M = {}

M.FORMAT, M.VERSION = "fo-plan", 1
local UNKNOWN = "fo:unknown" -- a value known after apply, in the file: {"fo:unknown": true}
local PLAIN = "fo:plain"     -- a secret's plain value, in memory only (comparisons)

local function sha256_hex(text)
  local crypto = require "fo.crypto"
  return crypto.hex(crypto.sha256(text))
end

local function read_text(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- The folder of fo's own Lua modules (not part of a recipe's digest).
local function fo_lua_dir()
  local p = package.searchpath("fo", package.path)
  p = p and fs.realpath(p)
  return p and p:match("^(.*)/fo/[^/]+$")
end

--- The versions a plan depends on beyond the recipe: fo's, and the AWS models' (their
--- generator's record: botocore's version and each model's digest).
function M.versions()
  local json_path = package.path:gsub("%?%.lua", "?.json"):gsub("%?/init%.json", "?.json")
  local models = package.searchpath("fo.aws.models.generated-from", json_path)
  local text = models and read_text(models)
  local decoded = text and json.decode(text) or {}
  return { fo = require("fo").version, botocore = decoded.botocore,
    models = text and sha256_hex(text) or nil }
end

--- The recipe's files: the recipe and every Lua module loaded in this process from its
--- project (the folder that holds the stack directory), fo's own modules left out. Each
--- { path = (as location.recipe_name names it), sha256 = }, sorted by path.
function M.recipe_files(recipe_path, dir)
  local holder = dir:match("^(.*)/[^/]+/*$")
  local root = fs.realpath(holder == nil and "." or holder == "" and "/" or holder)
  local own = fo_lua_dir()
  local seen, out = {}, {}
  local function add(path)
    local abs = fs.realpath(path)
    if not abs or seen[abs] then return end
    seen[abs] = true
    local text = read_text(abs)
    if text then
      out[#out + 1] = { path = location.recipe_name(abs, dir), sha256 = sha256_hex(text) }
    end
  end
  if type(recipe_path) == "string" and recipe_path ~= "-" then add(recipe_path) end
  if root then
    local prefix = root == "/" and "/" or root .. "/"
    for name in pairs(package.loaded) do
      local p = type(name) == "string" and package.searchpath(name, package.path)
      p = p and fs.realpath(p)
      if p and p:sub(1, #prefix) == prefix and not (own and p:sub(1, #own + 1) == own .. "/") then
        add(p)
      end
    end
  end
  table.sort(out, function(a, b) return a.path < b.path end)
  return out
end

-- The absolute path of a file named as location.recipe_name names it.
local function resolve(name, dir)
  if name:sub(1, 1) == "/" then return name end
  local holder = dir:match("^(.*)/[^/]+/*$")
  local root = fs.realpath(holder == nil and "." or holder == "" and "/" or holder) or "."
  return (root == "/" and "" or root) .. "/" .. name
end
M.resolve = resolve

-- `v` as the file holds it: unknowns as {"fo:unknown": true}; secrets by `secret_of(v)`
-- (sealed for the file, plain for a comparison in memory).
local function form(v, secret_of)
  if v == ref.UNKNOWN then return { [UNKNOWN] = true } end
  if secret.is(v) then return secret_of(v) end
  if type(v) ~= "table" or v == json.EMPTY_ARRAY then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = form(x, secret_of) end
  return out
end

local function changes_form(changes)
  local out = {}
  for _, c in ipairs(changes or {}) do
    out[#out + 1] = { path = c.path, old = c.old, new = c.new, changed = c.changed }
  end
  return out
end

-- The steps of a plan as the file records them (before `form`).
local function steps_of(plan)
  local out = {}
  for _, s in ipairs(plan.steps) do
    out[#out + 1] = { urn = s.urn, action = s.action, type = s.type, name = s.name,
      region = s.decl and s.decl.region or s.old and s.old.region,
      id = s.old and s.old.id, deposed = s.deposed or nil, delete_first = s.delete_first or nil,
      lifecycle = s.lifecycle, changes = changes_form(s.changes) }
  end
  return out
end

local function drift_of(items)
  local out = {}
  for _, d in ipairs(items or {}) do
    out[#out + 1] = { urn = d.urn, kind = d.kind, id = d.id, changes = changes_form(d.changes) }
  end
  return out
end

-- JSON text that reads back as itself: a value decoded from the file encodes the same, so
-- the digest of the file's body and the comparisons below do not depend on how an empty
-- list was built.
local function canonical(v)
  return json.encode(json.decode(json.encode(v)))
end

--- The digest of a plan file's document `doc` (every member but `digest`).
function M.digest(doc)
  local body = {}
  for k, v in pairs(doc) do if k ~= "digest" then body[k] = v end end
  return "sha256:" .. sha256_hex(canonical(body))
end

local function sealer(keys)
  return function(v) return secret.seal(v, keys) end
end

local function reveal(v) return { [PLAIN] = secret.reveal(v) } end

-- What a saved plan's run tells people, and programs (a `saved_plan` event, json-events.md):
-- `step` written, verified (the apply found everything as the plan was made: it applies
-- it) or refused (with the problems).
local function tell(report, step, saved, problems)
  report:emit("saved_plan", { step = step, file = saved.file, serial = saved.serial,
    digest = saved.digest, created = saved.created, problems = problems })
  if step == "written" then
    report:out("Plan saved to %s (state serial %d). Apply exactly this plan with: fo-run apply %s\n",
      saved.file, saved.serial, saved.file)
  elseif step == "verified" then
    report:out("The saved plan %s (made %s at state serial %d) matches the stack, its recipe "
      .. "and config: applying it.\n", saved.file, saved.created, saved.serial)
  end
end

--- A plan saved to a file on a stack that holds no secret yet: the key scheme it sealed
--- them with is recorded in the state before the plan records the state's serial (the
--- apply opens them with it).
function M.record_secrets(backend, doc, secrets)
  local store = backend:store(doc, nil, {})
  store:set("secrets", secrets)
  store:commit()
  store:finish()
end

--- Writes the plan file. `ctx`: { file, opts (the run's), plan, doc (the state document,
--- with its serial, binding and `secrets` scheme), keys, session (config), drift (the
--- report's), files (M.recipe_files at the recipe's run) }. Returns the document written.
function M.save(ctx)
  local opts, keys = ctx.opts, ctx.keys
  local seal = sealer(keys)
  local overrides = {}
  for k, text in pairs(opts.config or {}) do
    local entry = ctx.session and ctx.session.schema[k]
    overrides[k] = entry and entry.secret and secret.seal(secret.wrap(text), keys) or text
  end
  local args = {}
  for i = 1, (opts.args and (opts.args.n or #opts.args)) or 0 do args[i] = tostring(opts.args[i]) end
  local doc = ctx.doc
  local body = {
    format = M.FORMAT, version = M.VERSION,
    created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    versions = M.versions(),
    stack = opts.stack, target = doc.target, account = doc.account, partition = doc.partition,
    recipe = doc.recipe, args = args, files = ctx.files,
    state_dir = fs.realpath(opts.dir) or opts.dir,
    serial = math.tointeger(doc.serial) or 0,
    refresh = opts.refresh ~= false,
    -- a targeted plan (--only) is applied with the same selection
    only = opts.only,
    secrets = doc.secrets,
    config = form(ctx.session and ctx.session:recorded() or {}, seal),
    overrides = overrides,
    drift = form(drift_of(ctx.drift), seal),
    steps = form(steps_of(ctx.plan), seal),
    counts = ctx.plan.counts, changed = ctx.plan.changed,
  }
  body = json.decode(json.encode(body))
  body.digest = M.digest(body)
  local ok, err = pcall(fs.write_atomic, ctx.file, json.encode(body) .. "\n")
  if not ok then
    errors.raise("usage", ("--out %s: cannot write the plan file: %s"):format(ctx.file,
      tostring(err)))
  end
  body.file = ctx.file
  tell(ctx.report, "written", body)
  return body
end

local function refuse(file, why)
  errors.raise("usage", ("%s is not a plan fo can apply: %s; make one with `fo-run RECIPE "
    .. "--plan --out FILE`"):format(file, why))
end

--- The plan file `file`, read and checked (format, version, digest): raises a usage
--- error (exit 2) naming the problem.
function M.read(file)
  local text = read_text(file)
  if not text then errors.raise("usage", ("cannot read the plan file %s"):format(file)) end
  local ok, doc = pcall(json.decode, text)
  if not ok or type(doc) ~= "table" then refuse(file, "it is not JSON") end
  if doc.format ~= M.FORMAT then refuse(file, ("its format is %s, not %s"):format(
    tostring(doc.format), M.FORMAT)) end
  if doc.version ~= M.VERSION then
    refuse(file, ("its version is %s; this fo reads version %d"):format(tostring(doc.version),
      M.VERSION))
  end
  if doc.digest ~= M.digest(doc) then
    refuse(file, "its content does not match its digest: it was changed after fo wrote it")
  end
  for _, k in ipairs({ "stack", "target", "recipe" }) do
    if type(doc[k]) ~= "string" then refuse(file, "it has no " .. k) end
  end
  for _, k in ipairs({ "versions", "files", "steps", "config", "overrides", "drift" }) do
    if type(doc[k]) ~= "table" then refuse(file, "it has no " .. k) end
  end
  if math.type(doc.serial) ~= "integer" then refuse(file, "it has no serial") end
  return doc
end

-- Checks ------------------------------------------------------------------------------

-- A problem found: what changed, for people and for the refusal event.
local function problem(list, what, text)
  list[#list + 1] = { what = what, text = text }
end

-- The saved values `v` (sealed as in the file) in comparable form: secrets opened with
-- `keys`, kept apart from plain values by their PLAIN wrapper.
local function opened(v, keys)
  return form(secret.unseal(json.decode(json.encode(v)), keys), reveal)
end

local function same(a, b)
  return canonical({ a }) == canonical({ b }) -- (nil as [] on both sides)
end

--- The refusal: an error (exit 1) naming each problem and the way out; the report gets a
--- `saved_plan` event with them first.
local function stale(saved, report, problems)
  local lines = {}
  for _, p in ipairs(problems) do lines[#lines + 1] = "  " .. p.text end
  tell(report, "refused", saved, problems)
  errors.raise("stale_plan", ("the saved plan %s no longer applies, nothing was changed:\n%s\n"
    .. "Make a new plan (fo-run %s --plan --out FILE) and apply that.")
    :format(saved.file, table.concat(lines, "\n"), saved.recipe))
end

--- Before anything is changed: the stack (target, account, recipe), the state's serial,
--- fo's and the models' versions, the recipe's files and the config are what the plan was
--- computed from. `now`: { doc (the state as read), files (the recipe's, this run),
--- session, keys }. Raises a stale_plan error naming each difference.
function M.check_inputs(saved, report, now)
  local doc, problems = now.doc, {}
  for _, k in ipairs({ "target", "account", "partition", "recipe" }) do
    if saved[k] ~= doc[k] then
      problem(problems, k, ("the stack's %s is %s; the plan was made for %s"):format(k,
        tostring(doc[k]), tostring(saved[k])))
    end
  end
  local serial = math.tointeger(doc.serial) or 0
  if serial ~= saved.serial then
    problem(problems, "state", ("the state of stack %s changed: its serial is %d, the plan was "
      .. "made at serial %d (another run or state command wrote it since)")
      :format(saved.stack, serial, saved.serial))
  end
  local v = M.versions()
  for _, k in ipairs({ "fo", "botocore", "models" }) do
    if saved.versions[k] ~= v[k] then
      problem(problems, "versions", ("%s changed: %s, the plan was made with %s"):format(
        k == "fo" and "fo's version" or k == "botocore" and "the AWS models' botocore version"
          or "the AWS models", tostring(v[k]), tostring(saved.versions[k])))
    end
  end
  local was, is = {}, {}
  for _, f in ipairs(saved.files or {}) do was[f.path] = f.sha256 end
  for _, f in ipairs(now.files) do is[f.path] = f.sha256 end
  local names = {}
  for p in pairs(was) do names[#names + 1] = p end
  for p in pairs(is) do if not was[p] then names[#names + 1] = p end end
  table.sort(names)
  for _, p in ipairs(names) do
    if was[p] ~= is[p] then
      problem(problems, "recipe", ("recipe file %s %s since the plan"):format(p,
        not is[p] and "is no longer loaded (or is gone)" or not was[p] and "is loaded now, not"
          or "changed"))
    end
  end
  if not same(saved.secrets, doc.secrets) then
    -- the plan's secrets do not open with this stack's key: no config value is compared
    problem(problems, "state", ("stack %s's secrets key is not the one the plan sealed its "
      .. "secret values with (another copy of the stack, or a new key)"):format(saved.stack))
    stale(saved, report, problems)
  end
  local config_now = form(now.session and now.session:recorded() or {}, reveal)
  local config_then = opened(saved.config or {}, now.keys)
  local keys = {}
  for k in pairs(config_now) do keys[#keys + 1] = k end
  for k in pairs(config_then) do if config_now[k] == nil then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not same(config_now[k], config_then[k]) then
      -- named, never shown: the value may be secret
      problem(problems, "config", ("config %s changed since the plan (the stack's config file "
        .. "or its default)"):format(k))
    end
  end
  if #problems > 0 then stale(saved, report, problems) end
end

-- Compares saved entries with the ones now by URN (and kind); the URNs that differ.
local function differing(then_list, now_list, keys)
  local a, b, urns = {}, {}, {}
  local function key(e) return e.urn .. (e.deposed and "#" .. tostring(e.id) or "") end
  for _, e in ipairs(then_list) do a[key(e)] = e end
  for _, e in ipairs(now_list) do b[key(e)] = e end
  local seen = {}
  for k, e in pairs(a) do
    if not same(e, b[k]) then seen[k] = true end
  end
  for k in pairs(b) do if not a[k] then seen[k] = true end end
  for k in pairs(seen) do urns[#urns + 1] = k end
  table.sort(urns)
  return urns
end

-- Refuses the saved plan: one problem of `kind` per URN of `urns` (`why`: a format naming
-- it), and the run records nothing (the refresh's findings included).
local function refuse_differing(saved, report, store, urns, kind, why)
  store.readonly = true
  local problems = {}
  for _, u in ipairs(urns) do problem(problems, kind, why:format(u)) end
  stale(saved, report, problems)
end

--- After the refresh: the drift it found must be the drift the plan's refresh found (the
--- plan assumed the cloud as it was then). `store`'s changes are not written when it
--- refuses.
function M.check_drift(saved, report, store, drift)
  if not saved.refresh then return end
  local urns = differing(opened(saved.drift or {}, store.keys), form(drift_of(drift), reveal))
  if #urns == 0 then return end
  refuse_differing(saved, report, store, urns, "cloud", "%s changed in the cloud since the "
    .. "plan (the refresh reads it otherwise than the plan's refresh did)")
end

--- The plan built now must be the saved one, step for step (actions, properties, ids).
function M.check_plan(saved, report, store, plan)
  local urns = differing(opened(saved.steps or {}, store.keys), form(steps_of(plan), reveal))
  if #urns == 0 then
    tell(report, "verified", saved)
    return
  end
  refuse_differing(saved, report, store, urns, "plan", "%s: the plan made now differs from "
    .. "the saved one (a recipe that gives other values on each run: time, randomness, "
    .. "environment?)")
end

-- The command --------------------------------------------------------------------------

-- The stack directory of `fo-run apply FILE`: --state-dir, $FO_STATE_DIR, the one the plan
-- was made in when it is still there, else as the other commands find it.
local function state_dir(opts, saved)
  if opts.dir then return opts.dir end
  local env = os.getenv("FO_STATE_DIR")
  if env and env ~= "" then return env end
  if saved.state_dir and fs.exists(saved.state_dir) then return saved.state_dir end
  return nil
end

--- `fo-run apply FILE`: opts as commands.parse gives them (--stack, --state-dir, --backend,
--- --json, --yes, --parallel, --no-rollback, the lock's). Returns the exit code.
function M.main(opts, file)
  local engine = require "fo.engine"
  local report_mod = require "fo.engine.report"
  local saved
  local function early(err)
    local report = report_mod.new{ json = opts.json, stack = opts.stack, mode = "apply" }
    report.doc.stack, report.doc.mode = opts.stack, "apply"
    report:error(err)
    report:finish(errors.exit_code(err), {})
    return errors.exit_code(err)
  end
  local ok, err = pcall(function()
    saved = M.read(file)
    saved.file = file
    if opts.stack_given and opts.stack ~= saved.stack then
      errors.raise("usage", ("the plan %s is for stack %s, not %s: apply it without --stack, or "
        .. "make a plan for stack %s"):format(file, saved.stack, opts.stack, opts.stack))
    end
    opts.stack = saved.stack
    opts.dir = state_dir(opts, saved)
    if not opts.dir then
      opts.dir = require("fo.engine.commands").state_dir(nil)
    end
  end)
  if not ok then return early(errors.is(err) and err or errors.new("usage", tostring(err))) end
  -- the --config values of the plan: secret ones opened with the stack's key
  local overrides = {}
  ok, err = pcall(function()
    local paths = require("fo.engine.backend.local").paths(opts.dir, saved.stack)
    local settings = require("fo.engine.backend").take_settings(
      require("fo.engine.config").read_file(paths.config) or {}, paths.config)
    local keys = secret.keyring{ stack = saved.stack, key_path = paths.key, meta = saved.secrets,
      provider = settings.secrets_provider, region = os.getenv("AWS_REGION") or "us-east-1",
      no_key_file = (opts.backend or settings.backend or "local") ~= "local", kms = opts.kms }
    for k, v in pairs(saved.overrides or {}) do
      overrides[k] = type(v) == "table" and secret.reveal(secret.unseal(v, keys)) or v
    end
  end)
  if not ok then return early(errors.is(err) and err or errors.new("usage", tostring(err))) end
  local recipe = resolve(saved.recipe, opts.dir)
  return (engine.run{ recipe = recipe, recipe_path = recipe, args = saved.args and
    table.pack(table.unpack(saved.args)) or nil, stack = saved.stack, target = saved.target,
    mode = "apply", explicit = true, config = overrides, json = opts.json, dir = opts.dir,
    yes = opts.yes, parallel = opts.parallel, rollback = opts.rollback,
    refresh = saved.refresh, only = saved.only, break_lock = opts.break_lock, lock_timeout = opts.lock_timeout,
    backend = opts.backend, backend_unsafe_ok = opts.backend_unsafe_ok, interrupt = true,
    command = opts.command, saved = saved, sim = opts.sim, objects = opts.objects,
    s3_client = opts.s3_client, kms = opts.kms })
end

return M
