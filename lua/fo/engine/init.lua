-- The engine's entry: runs a recipe for a stack — declarations, lock, state, intents,
-- refresh, plan, apply (with rollback) or destroy — and returns fo-run's exit code. A file
-- that declares no resources is a plain script: the engine does nothing after it.
local errors = require "fo.engine.errors"
local recipe_mod = require "fo.engine.recipe"
local config = require "fo.engine.config"
local api = require "fo.engine.api"
local state = require "fo.engine.state"
local backend_mod = require "fo.engine.backend"
local target = require "fo.engine.target"
local journal = require "fo.engine.journal"
local refresh = require "fo.engine.refresh"
local plan_mod = require "fo.engine.plan"
local apply = require "fo.engine.apply"
local rollback = require "fo.engine.rollback"
local interrupt = require "fo.engine.interrupt"
local report_mod = require "fo.engine.report"
local ref = require "fo.engine.ref"
local diff = require "fo.engine.diff"
local types = require "fo.engine.types"
local secret = require "fo.engine.secret"
local task = require "fo.task"
local location = require "fo.engine.location"
local binding = require "fo.engine.binding"

local M = {}
local EXIT = errors.EXIT
M.EXIT = EXIT

M.MODES = { apply = true, plan = true, destroy = true, refresh = true }

--- The state directory: `dir` (--state-dir), else $FO_STATE_DIR, else `.fo` in the project
--- root of the recipe file `recipe_path` (location.lua), else `.fo` here.
function M.state_dir(dir, recipe_path)
  return location.state_dir(dir, recipe_path)
end

--- Paths of a stack's files in `dir`.
function M.paths(dir, stack)
  return require("fo.engine.backend.local").paths(dir, stack)
end

-- The config session of a run: the local backend's config file; the S3 backend's config
-- object. With S3 the local config file holds fo's settings (it may name the backend
-- itself); a recipe value there that the bucket lacks or holds otherwise would make this
-- machine's runs differ from the team's without anyone seeing it, so it is refused.
local function session_for(be, paths, overrides, recorded)
  if be.kind == "local" then return config.session(paths.config, overrides, recorded) end
  be:prepare()
  local values = be:config_values() or {}
  local here = config.read_file(paths.config) or {}
  require("fo.engine.backend").take_settings(here, paths.config)
  local keys = {}
  for k, v in pairs(here) do
    if not diff.equal(values[k], v) then keys[#keys + 1] = k end
  end
  table.sort(keys)
  if #keys > 0 then
    local what = {}
    for _, k in ipairs(keys) do
      -- values unshown: the schema that would say which are secret is the recipe's
      what[#what + 1] = k .. (values[k] == nil and " (not set in the bucket)"
        or " (the bucket holds another value)")
    end
    errors.raise("config", ("%s holds config values of the recipe that differ from the stack's "
      .. "config in %s, which every machine's run uses: %s. Remove them from %s (the stack's "
      .. "values are the bucket's: change them there, for everyone), or give a value for one run "
      .. "with --config KEY=VALUE"):format(paths.config, be.config_where,
        table.concat(what, ", "), paths.config))
  end
  return config.session(be.config_where, overrides, recorded, values)
end

local default_region = require("fo.engine.location").default_region

-- Runs fn(...) with declarations going to `recipe` and fo.config to `session`. Returns nil
-- or the failure: an engine error, or {text=} (with the traceback) for anything else.
local function in_recipe(recipe, session, fn, ...)
  recipe_mod.set_current(recipe)
  api.set_config_session(session)
  local ok, err = xpcall(fn, function(e)
    if errors.is(e) then return e end
    -- the recipe's frames only: below them is fo's own call of the recipe
    local text = debug.traceback(task.describe(e), 2)
    text = text:gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    return { text = text }
  end, ...)
  recipe_mod.set_current(nil)
  api.set_config_session(nil)
  if not ok then return err end
  return nil
end

-- Runs the recipe's main chunk with declarations going to `recipe`; as in_recipe.
local function run_chunk(opts, recipe, session)
  local chunk = opts.recipe
  if type(chunk) ~= "function" then
    local path = chunk
    local f, err = loadfile(path ~= "-" and path or nil)
    if not f then return { text = err } end
    chunk = f
  end
  local args = opts.args or {}
  -- the recipe's own modules (its components) load from its directory
  require("fo.engine.component").recipe_path(opts.recipe)
  return in_recipe(recipe, session, chunk, table.unpack(args, 1, args.n or #args))
end

-- Reports a failure from in_recipe (or a run): an engine error, or {text=} with a traceback.
local function report_failure(report, failure)
  if errors.is(failure) then return report:error(failure) end
  report:crash(failure, require("fo.log").redact(failure.text))
end

-- The types of what the state holds (resources, replaced instances, intents) that are not
-- registered, sorted.
local function unregistered_types(doc)
  local seen, out = {}, {}
  local function note(t)
    if not seen[t] and not types.get(t) then seen[t] = true; out[#out + 1] = t end
  end
  for _, r in pairs(doc.resources) do note(r.type) end
  for _, r in ipairs(doc.deposed) do note(r.type) end
  for _, i in pairs(doc.intents) do note(i.type) end
  table.sort(out)
  return out
end

-- --destroy works from the state: the recipe may no longer load, or want config nobody
-- has any more. The types the state holds are registered by requiring the modules it
-- records for them; only when one is still unknown (a type the recipe defines itself) does
-- the recipe run, with the state's recorded config for the keys not given. Raises a recipe
-- error naming each type still unknown and why.
local function destroy_types(opts, doc, report, paths)
  local names = unregistered_types(doc)
  if #names == 0 then return end
  local scratch = recipe_mod.new{ stack = opts.stack, region = opts.region or default_region() }
  local ok, session = pcall(session_for, paths.backend, paths, opts.config, doc.config)
  local failure
  if not ok then
    failure = errors.is(session) and session or { text = tostring(session) }
    session = config.session(nil, nil, doc.config)
  end
  local missing
  in_recipe(scratch, session, function() missing = types.require_modules(names, doc.types) end)
  if #missing == 0 then return end
  if opts.recipe then
    local f = run_chunk(opts, scratch, session)
    failure = failure or f
    local still = {}
    for _, m in ipairs(missing) do
      if not types.get(m.type) then still[#still + 1] = m end
    end
    missing = still
  end
  local recipe_name = type(opts.recipe) == "string" and "recipe " .. opts.recipe or "recipe"
  local what_failed = failure and require("fo.log").redact(errors.is(failure)
    and tostring(failure) or failure.text):match("^[^\n]*")
  if #missing == 0 then
    if failure then
      report:warn(("the %s failed (%s), but it registered every type the state holds: destroying "
        .. "from the state"):format(recipe_name, what_failed))
    end
    return
  end
  local lines, by_why = {}, {}
  for _, m in ipairs(missing) do
    local line = by_why[m.why]
    if not line then
      line = { why = m.why }
      by_why[m.why] = line
      lines[#lines + 1] = line
    end
    line[#line + 1] = m.type
  end
  for i, line in ipairs(lines) do
    lines[i] = ("  %s: %s"):format(table.concat(line, ", "), line.why)
  end
  errors.raise("recipe", ("cannot destroy stack %s: the state holds resources of types that no "
    .. "module registers:\n%s\n%s. Make the modules loadable (on package.path: LUA_PATH, or "
    .. "the current directory) or fix the recipe, and rerun --destroy; nothing was changed.")
    :format(opts.stack, table.concat(lines, "\n"), not opts.recipe and "No recipe was given"
      or failure and ("The %s, run to register them, failed: %s"):format(recipe_name, what_failed)
      or ("The %s, run to register them, did not register them either"):format(recipe_name)))
end

-- Asks the user to agree to `what` (--yes agrees; opts.confirm answers for tests); raises a
-- usage error when they do not. `prompt` is what a terminal is asked, `needs` what a run
-- without a terminal is told it needs.
local function agree(opts, report, what, prompt, needs)
  if opts.yes then return end
  if opts.confirm then
    if opts.confirm(what) then return end
    errors.raise("usage", "not confirmed: nothing was changed")
  end
  if not require("fo.fs").isatty(io.stdin) then errors.raise("usage", needs) end
  report:err("%s Type 'yes' to go on: ", prompt)
  local answer = io.read("l")
  if answer ~= "yes" then errors.raise("usage", "not confirmed: nothing was changed") end
end

local function confirm(opts, report, what)
  agree(opts, report, what, what .. " against AWS (real resources, real costs).",
    ("%s against AWS needs --yes when the input is not a terminal; nothing was changed")
      :format(what))
end

-- Resources a refresh read as gone are forgotten only when the user agrees (--yes), and
-- never when they are most of the stack unless --accept-removals says they really are gone:
-- a wrong account, region or endpoint reads everything as gone. A --plan records nothing,
-- so it only shows them (forgotten in memory: the plan re-creates them); a --destroy wants
-- them gone.
local function settle_removals(opts, run, gone)
  if #gone == 0 then return end
  local most, n, total = refresh.most_of_stack(run.store, gone, run.only and run.only.reads)
  if most and not opts.accept_removals then
    errors.raise("usage", ("refresh read %d of the %d resources of stack %s as gone at once. "
      .. "That is more likely the wrong AWS account, region or endpoint (AWS_PROFILE, AWS_REGION, "
      .. "AWS_ENDPOINT_URL*, ~/.aws/config) than deletions; nothing was recorded or changed. "
      .. "Check where this run points; if the resources really were deleted outside fo, rerun "
      .. "with --accept-removals to forget them."):format(n, total, opts.stack))
  end
  -- a destroy wants them gone: its own confirmation (against AWS) covers them
  if opts.mode ~= "plan" and opts.mode ~= "destroy" then
    agree(opts, run.report, "forget resources read as gone",
      ("Refresh found %d resource%s gone (listed above); fo will forget %s (remove %s from the "
        .. "state)%s."):format(#gone, #gone == 1 and "" or "s", #gone == 1 and "it" or "them",
        #gone == 1 and "it" or "them", opts.mode == "apply" and " and create them again" or ""),
      ("refresh found %d resource%s gone (listed above): recording that needs --yes (or a "
        .. "terminal to confirm on); nothing was changed"):format(#gone, #gone == 1 and "" or "s"))
  end
  refresh.forget(run, gone)
end

-- Stack outputs from the recorded outputs of the resources they reference.
local function outputs_of(recipe, store)
  local values, order = {}, {}
  for _, o in ipairs(recipe.outputs) do
    values[o.name] = ref.resolve(o.value, function(d)
      local rec = store:resource(d.urn)
      return rec and rec.outputs
    end)
    order[#order + 1] = o.name
  end
  return values, order
end

-- Records a field of the state document when it changed.
local function set_if_changed(store, field, value)
  if not diff.equal(store.doc[field], value) then store:set(field, value) end
end

local function what_failed(run, report, result)
  report:failure(result.failed)
end

-- A run whose lease was lost (backend/lease.lua) stops where it is: another run holds the
-- stack now, so this one neither rolls back nor records anything more (the other adopts
-- what it did, by tags and intents). True after reporting it.
local function lease_lost(run)
  local lost = run.lock and run.lock.lost
  if not lost then return false end
  run.report:summary("failed", ("%s. This run stopped: no new operation started and nothing "
    .. "was rolled back (the stack's next run adopts what this one made, by its tags and "
    .. "intents)."):format(lost))
  return true
end

-- Phase 2 (deletions of what `declared` lacks); nil after reporting a failure.
local function deletions(run, declared, what_next, summary)
  local r = apply.phase2(run, declared)
  if lease_lost(run) then return nil end
  if #r.failed == 0 then return r end
  run.report:failure(r.failed, what_next)
  run.report:summary("failed", summary)
  return nil
end

-- Apply: phase 1 (rollback on failure), phase 2 (deletions), outputs.
local function do_apply(run, opts, recipe, plan, session)
  local report, store = run.report, run.store
  if plan.changed then
    report:phase(("Applying (up to %d operations at once):"):format(run.parallel), "apply")
  else
    report:phase(nil, "apply")
  end
  local r1 = apply.phase1(run, plan)
  if lease_lost(run) then return EXIT.lock end
  local stopped = run.interrupted
  if #r1.failed > 0 or stopped then
    what_failed(run, report, r1)
    if not opts.rollback then
      store:commit()
      if stopped then
        report:summary("interrupted", ("Apply interrupted; --no-rollback: what was done is kept "
          .. "and recorded in the state (%d operation%s never started). Rerun to finish.")
          :format(#r1.skipped, #r1.skipped == 1 and "" or "s"))
        return EXIT.interrupted
      end
      report:summary("failed", "Apply failed; --no-rollback: what was done is kept and recorded "
        .. "in the state. Fix the cause and rerun.")
      return EXIT.cloud
    end
    report:phase("Rolling back what this run did (reverse dependency order):", "rollback")
    local rb = rollback.run(run)
    if #rb.failed > 0 or #rb.skipped > 0 then
      for _, n in ipairs(rb.skipped) do
        report:err("  not rolled back: %s (%s): a rollback step it depends on failed\n",
          n.step.urn, n.action)
      end
      report:failure(rb.failed, "ROLLBACK FAILED: the resources above are left as they are and "
        .. "the state records them as they are. Fix the cause and rerun (an apply converges them "
        .. "to the recipe; --destroy removes them).")
      report:summary("rollback_failed", ("Apply %s and could not be fully rolled back.")
        :format(stopped and "interrupted" or "failed"))
      return EXIT.cloud
    end
    report:summary(stopped and "interrupted" or "rolled_back", ("Apply %s; rolled back: the "
      .. "stack is as it was before this run (%d step%s undone).%s"):format(
      stopped and "interrupted" or "failed", #rb.done, #rb.done == 1 and "" or "s",
      #r1.skipped > 0 and (" %d operation%s never started."):format(#r1.skipped,
        #r1.skipped == 1 and "" or "s") or ""))
    return stopped and EXIT.interrupted or EXIT.rolled_back
  end
  local declared = {}
  for _, d in ipairs(recipe.decls) do declared[d.urn] = d end
  report:phase(nil, "delete")
  local r2 = deletions(run, declared, "Every create and update succeeded; the deletions above "
    .. "did not. The resources are still recorded in the state: fix the cause and rerun to delete "
    .. "them.", "Apply incomplete: deletions failed.")
  if not r2 then return run.lock and run.lock.lost and EXIT.lock or EXIT.cloud end
  if run.interrupted then
    store:commit()
    report:summary("interrupted", ("Apply interrupted during the deletions: every create and "
      .. "update is done and recorded; %d deletion%s did not run. Rerun to finish them.")
      :format(#r2.skipped, #r2.skipped == 1 and "" or "s"))
    return EXIT.interrupted
  end
  local values, order = outputs_of(recipe, store)
  if run.only then -- outputs of resources outside the selection stay as recorded
    values, order = require("fo.engine.only").outputs(values, order, store.doc.outputs)
  end
  set_if_changed(store, "outputs", values)
  set_if_changed(store, "config", session:recorded())
  store:commit()
  report:outputs(values, order)
  local counts = report_mod.done_counts(report.doc.operations) -- as the plan counts
  local imports = report.doc.plan and report.doc.plan.counts.import
  if counts.create + counts.update + counts.replace + counts.delete + (counts.retain or 0) == 0 then
    report:summary("ok", imports and ("Import complete: %d imported, no other change.")
      :format(imports) or "No changes.")
  else
    report:summary("ok", ("Apply complete: %s%d created, %d updated, %d replaced, %d deleted%s.")
      :format(imports and imports .. " imported, " or "", counts.create, counts.update,
        counts.replace, counts.delete, counts.retain
        and (", %d retained (forgotten, not deleted)"):format(counts.retain) or ""))
  end
  return EXIT.ok
end

local function do_destroy(run)
  local report = run.report
  report:phase(("Destroying (up to %d operations at once):"):format(run.parallel), "destroy")
  local r = deletions(run, {}, "Destroy stopped: what is left is still recorded in the state; "
    .. "fix the cause and rerun --destroy.", "Destroy incomplete.")
  if not r then return run.lock and run.lock.lost and EXIT.lock or EXIT.cloud end
  if run.interrupted then
    run.store:commit()
    report:summary("interrupted", ("Destroy interrupted: %d deleted, %d not started; what is "
      .. "left is recorded in the state. Rerun --destroy to finish."):format(#r.done, #r.skipped))
    return EXIT.interrupted
  end
  if not run.only then set_if_changed(run.store, "outputs", {}) end
  run.store:commit()
  local retained = 0
  for _, n in ipairs(r.done) do
    if n.action == "retain" then retained = retained + 1 end
  end
  report:summary("ok", ("Destroy complete: %d deleted.%s"):format(#r.done - retained,
    retained > 0 and (" %d retained (forgotten, not deleted: retain_on_delete)."):format(retained)
      or ""))
  return EXIT.ok
end

-- Checks that this run's account (and recipe) are the stack's, before any call that could
-- change something; records them when the stack has none yet. A new stack is written at
-- once, even by --plan, so that its binding holds from its first run.
local function bind(opts, run, doc, original, paths)
  local ok, now = pcall(binding.identity, run.target, opts.region or default_region())
  if not ok then
    errors.raise("cloud", ("cannot tell which AWS account the credentials belong to (STS "
      .. "GetCallerIdentity): %s. Nothing was changed."):format(require("fo.log").redact(
      tostring(now))))
  end
  now.recipe = location.recipe_name(opts.recipe_path, opts.dir)
  local set, notices = binding.check(doc, now, { stack = opts.stack,
    state_path = paths.backend.where, rebind_account = opts.rebind_account, rebind_recipe = opts.rebind_recipe,
    check_recipe = opts.mode ~= "destroy" })
  for _, text in ipairs(notices) do run.report:notice(text) end
  if not next(set) then return end
  local store = run.store
  if store.readonly then
    if original then return end -- --plan on a bound stack records nothing
    store = paths.backend:store(doc, nil, {})
  end
  for k, v in pairs(set) do store:set(k, v) end
  store:commit()
  if store ~= run.store then store:finish() end
end

-- Everything after the lock is taken.
local function locked_run(opts, recipe, session, report, paths)
  local be = paths.backend
  local doc, original, read_info = be:read_state()
  for _, text in ipairs(read_info.notices) do report:notice(text) end
  -- secret values in the state are decrypted when first needed (secret.lua)
  -- a remote backend makes no key file (it would be this machine's only), but a stack
  -- moved there with one (--migrate-state) still opens with it
  local keys = secret.keyring{ stack = opts.stack, key_path = paths.key,
    meta = doc and doc.secrets, provider = paths.settings.secrets_provider,
    region = opts.region or default_region(), no_key_file = be.kind ~= "local", kms = opts.kms }
  if doc then secret.unseal(doc, keys) end
  local kind
  if doc then
    kind = doc.target
    if opts.target and opts.target ~= kind then
      errors.raise("usage", ("stack %s is bound to target %s (%s); a stack cannot change "
        .. "target: use another --stack for %s"):format(opts.stack, kind, be.where, opts.target))
    end
  else
    kind = opts.target or "sim"
    if opts.mode == "destroy" or opts.mode == "refresh" then
      report:summary("ok", ("Stack %s has no state (%s): nothing to %s."):format(opts.stack,
        be.where, opts.mode))
      return EXIT.ok
    end
    if not opts.target then
      report:notice(("stack %s is new and bound to the embedded simulator (target sim, kept in %s), "
        .. "NOT to AWS. Use --target aws on a new stack to deploy to AWS.")
        :format(opts.stack, opts.sim and "memory" or paths.sim))
    else
      report:notice(("stack %s is new and bound to target %s"):format(opts.stack, kind))
    end
    doc = state.empty(opts.stack, kind)
  end
  -- a plan saved to a file seals its secrets with the stack's key: it needs one too
  local new_secrets = keys:prepare(doc, session and session:has_secrets(),
    opts.mode ~= "plan" or opts.plan_out ~= nil)
  if new_secrets and opts.mode == "plan" then
    require("fo.engine.saved_plan").record_secrets(paths.backend, doc, new_secrets)
  end
  if opts.mode == "destroy" then destroy_types(opts, doc, report, paths)
  end
  local store = be:store(doc, original, { readonly = opts.mode == "plan",
    log = read_info.log, keys = keys })
  if new_secrets then store:set("secrets", new_secrets) end
  local run = { stack = opts.stack, store = store, report = report, parallel = opts.parallel,
    journal = {}, lock = paths.lock_held, target = target.open{ kind = kind, dir = opts.dir, stack = opts.stack,
      sim = opts.sim, on_retry = function(info) report:retry(info) end } }
  report.doc.target = kind
  report.run = run
  bind(opts, run, doc, original, paths)
  local saved = opts.saved -- fo-run apply FILE: the plan's inputs, before anything changes
  if saved then
    require("fo.engine.saved_plan").check_inputs(saved, report, { doc = store.doc,
      files = opts.recipe_files, session = session, keys = keys })
  end

  report:adopted(journal.settle(run))
  if opts.mode ~= "destroy" then require("fo.engine.moved").settle(run, recipe) end
  local only = opts.only and require("fo.engine.only")
  if only then -- --only: the selection, before anything is read (only.lua)
    run.only = only.select(opts.only, opts.mode, opts.stack, recipe.decls, store.doc)
    report.doc.only = run.only.info
    report:warn(only.warning(run.only))
  end
  if opts.mode == "refresh" or (opts.refresh ~= false and next(store.doc.resources)) then
    local drift, r = refresh.run(run)
    if #r.failed > 0 then
      report:failure(r.failed, "Refresh failed: nothing was changed.")
      return EXIT.cloud
    end
    report:drift(drift)
    if saved then require("fo.engine.saved_plan").check_drift(saved, report, store, report.doc.drift) end
    settle_removals(opts, run, refresh.gone(drift))
    if opts.mode == "refresh" then
      store:commit()
      report:summary("ok", #drift == 0 and "Refresh complete: no drift."
        or ("Refresh complete: %d resource%s drifted; the state records them as they are now, and "
          .. "the next apply brings them back to the recipe."):format(#drift, #drift == 1 and "" or "s"))
      return EXIT.ok
    end
    store:commit()
  end

  local import = require "fo.engine.import"
  -- (--print-policy's private simulator has none of them: it creates what is declared)
  local imported, commanded = {}, {}
  if opts.mode ~= "destroy" and not opts.no_import then
    imported, commanded = import.settle(run, recipe)
  end
  local plan = opts.mode == "destroy" and plan_mod.destroy(store) or plan_mod.build(recipe, store)
  if only then plan = only.filter(plan, run.only, plan_mod.count) end
  import.mark(plan, imported, report, commanded)
  report:plan(plan, { stack = opts.stack, target = kind, only = report.doc.only })
  if only then only.check(plan, run.only, store.doc) end -- before any change
  require("fo.engine.lifecycle").check(plan, opts.mode) -- protect: before any change
  if saved then require("fo.engine.saved_plan").check_plan(saved, report, store, plan) end
  if opts.mode == "plan" and opts.plan_out then
    require("fo.engine.saved_plan").save{ file = opts.plan_out, opts = opts, plan = plan,
      doc = store.doc, keys = keys, session = session, drift = report.doc.drift, report = report,
      files = opts.recipe_files }
  end
  if opts.mode == "plan" then
    report:summary("ok", "Plan only (--plan): nothing was changed.")
    return EXIT.ok
  end
  if plan.changed and kind == "aws" then
    confirm(opts, report, opts.mode == "destroy" and "Destroying stack " .. opts.stack
      or "Applying these changes to stack " .. opts.stack)
  end
  -- fo-run's Ctrl-C: the first stops scheduling (interrupt.lua), a second exits at once.
  local disarm = opts.interrupt and interrupt.arm(run, function(name)
    report:interrupted(name, "Ctrl-C: no new operation starts; those in flight finish and are "
      .. "recorded, then " .. (opts.mode == "destroy" and "the destroy stops"
        or opts.rollback and "this run is rolled back" or "what was done is kept (--no-rollback)")
      .. ". Press Ctrl-C again to exit at once (the next run recovers from the journal).")
  end)
  local _ <close> = disarm and setmetatable({}, { __close = disarm })
  if opts.mode == "destroy" then return do_destroy(run) end
  return do_apply(run, opts, recipe, plan, session)
end

--- The garbage collector's pause during a run: a new cycle starts when the heap reaches
--- this percentage of what the last one left alive (Lua's default: 200). A run keeps its
--- declarations, plan, state and operations alive (about 4 KB per resource) and makes three
--- to four times that in short-lived garbage; collecting less often spares it most of the
--- walks through what stays alive, which grow with the stack (docs/engine.md, "Scale"), for a
--- peak of about 13.5 KB per resource.
M.GC_PAUSE = 300

local run

--- Runs a recipe. opts (docs/engine.md): recipe (path or function), recipe_path, args,
--- stack, target, mode, explicit, yes, parallel, rollback, refresh, config ({key = text}),
--- json, dir, break_lock, sim, out, err, command, confirm, region, interrupt (handle Ctrl-C:
--- fo-run sets it), graph (write the dependency graph to this file instead of planning), only
--- (--only: a list of patterns, only.lua). Returns the exit code
--- and the report document.
function M.run(opts)
  local previous = collectgarbage("setpause", M.GC_PAUSE)
  local ok, code, report_doc = pcall(run, opts)
  collectgarbage("setpause", previous)
  if not ok then error(code, 0) end
  return code, report_doc
end

function run(opts)
  opts = opts or {}
  opts.stack = opts.stack or "dev"
  opts.mode = opts.mode or "apply"
  opts.parallel = opts.parallel or 10
  if opts.rollback == nil then opts.rollback = true end
  if type(opts.recipe) == "string" and not opts.recipe_path then opts.recipe_path = opts.recipe end
  opts.dir = M.state_dir(opts.dir, opts.recipe_path)
  local report = report_mod.new{ json = opts.json, out = opts.out, err = opts.err,
    stack = opts.stack, mode = opts.mode }
  report.doc.stack, report.doc.mode = opts.stack, opts.mode
  local paths = M.paths(opts.dir, opts.stack)
  local function finish(code)
    local extra = { state_file = paths.backend and paths.backend.where or paths.state }
    if report.run and report.run.target then extra.calls = report.run.target:counts() end
    report:finish(code, extra)
    return code, report.doc
  end

  local session
  local ok, err = pcall(function()
    if not opts.stack:match("^[%w][%w_.%-]*$") then
      errors.raise("usage", ("stack name %q: use letters, digits, _ . -"):format(opts.stack))
    end
    -- fo's settings in the stack's config file (backend, secrets_provider, lease_seconds)
    local file = config.read_file(paths.config)
    paths.settings = backend_mod.take_settings(file or {}, paths.config)
    paths.region = opts.region or default_region()
    paths.backend = backend_mod.open{ spec = opts.backend, settings = paths.settings,
      dir = opts.dir, stack = opts.stack, region = opts.region or default_region(),
      unsafe_ok = opts.backend_unsafe_ok, objects = opts.objects, client = opts.s3_client }
    if opts.mode ~= "destroy" and not opts.migrate_to then
      session = session_for(paths.backend, paths, opts.config)
    end
  end)
  if not ok then
    report:error(err)
    return finish(errors.is(err) and errors.exit_code(err) or EXIT.recipe)
  end
  if opts.migrate_to then -- the state moves; the recipe does not run (migrate.lua)
    local code
    ok, err = xpcall(function() code = require("fo.engine.migrate").run(opts, paths, report) end,
      function(e)
        if errors.is(e) then return e end
        -- the recipe's frames only: below them is fo's own call of the recipe
    local text = debug.traceback(task.describe(e), 2)
    text = text:gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    return { text = text }
      end)
    if not ok then
      report_failure(report, err)
      return finish(errors.is(err) and errors.exit_code(err) or EXIT.recipe)
    end
    return finish(code)
  end

  local recipe = recipe_mod.new{ stack = opts.stack, region = opts.region or default_region() }
  if opts.mode ~= "destroy" then -- --destroy works from the state (destroy_types)
    local failure = run_chunk(opts, recipe, session)
    if failure then
      report_failure(report, failure)
      return finish(EXIT.recipe)
    end
    for _, text in ipairs(recipe.warnings) do report:warn(text) end
    if opts.saved or opts.plan_out then -- what a saved plan was computed from (saved_plan.lua)
      opts.recipe_files = require("fo.engine.saved_plan").recipe_files(opts.recipe_path, opts.dir)
    end
    ok, err = pcall(function()
      recipe:finish()
      session:finish()
    end)
    if not ok then
      report:error(err)
      return finish(errors.is(err) and errors.exit_code(err) or EXIT.recipe)
    end
    if opts.graph then
      local written, why = require("fo.engine.dot").write(recipe, opts.graph,
        { name = opts.stack, source = opts.command and secret.scrub(opts.command) })
      if not written then
        report:error(errors.new("usage", why))
        return finish(EXIT.recipe)
      end
      if opts.graph ~= "-" then -- else standard output is the DOT text alone
        report:summary("ok", ("Dependency graph of %d resource%s written to %s; nothing was "
          .. "planned or changed."):format(#recipe.decls, #recipe.decls == 1 and "" or "s",
          opts.graph))
      end
      return finish(EXIT.ok)
    end
    if #recipe.decls == 0 and #recipe.outputs == 0 and not opts.explicit then
      return EXIT.ok, nil -- a plain script
    end
  end

  local lk
  local code
  ok, err = xpcall(function()
    paths.backend:prepare()
    -- the command line may hold a secret (--config key=value): masked (secret.lua)
    lk = paths.backend:lock(secret.scrub(opts.command or "fo-run"), { break_lock = opts.break_lock,
      yes = opts.yes, timeout = opts.lock_timeout,
      recipe = location.recipe_name(opts.recipe_path, opts.dir) })
    paths.lock_held = lk
    code = locked_run(opts, recipe, session, report, paths)
    -- the state log is folded into the state file, under the lock (a failure is no error:
    -- the log holds every change, and the next run folds it)
    local store = report.run and report.run.store
    local folded, why = pcall(function() if store then store:finish() end end)
    if not folded then report:warn(errors.is(why) and why.message or tostring(why)) end
  end, function(e)
    if errors.is(e) then return e end
    -- the recipe's frames only: below them is fo's own call of the recipe
    local text = debug.traceback(task.describe(e), 2)
    text = text:gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    return { text = text }
  end)
  if lk then lk:unlock() end
  if not ok then
    report_failure(report, err)
    return finish(errors.is(err) and errors.exit_code(err) or EXIT.recipe)
  end
  return finish(code)
end

return M
