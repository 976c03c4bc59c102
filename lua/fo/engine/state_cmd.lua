-- `fo-run state list|show|rm|mv|pull|push`: a stack's state read and changed without its
-- recipe and without any cloud call. Each holds the stack's lock (commands.locked) and
-- writes through the store a run writes through (state.lua: the crash-safe log, then the
-- fold into the snapshot), so a command killed midway leaves the state as it was or as it
-- asked. Secret values stay sealed: nothing here decrypts them (shown as [secret]).
local errors = require "fo.engine.errors"
local commands = require "fo.engine.commands"
local secret = require "fo.engine.secret"
local state = require "fo.engine.state"
local diff = require "fo.engine.diff"
local json = require "fo.json"
local fs = require "fo.fs"
local component_list = require "fo.engine.component_list"

local M = {}
local EXIT = errors.EXIT
local MODE = tonumber("600", 8)

local function usage(fmt, ...)
  errors.raise("usage", fmt:format(...))
end

local function sorted_urns(doc)
  local out = {}
  for urn in pairs(doc.resources) do out[#out + 1] = urn end
  table.sort(out)
  return out
end

-- A copy of a state value with each sealed secret as a secret that is never opened (it
-- shows as [secret] in text and in events; secret.lua).
local function hidden(v)
  return secret.unseal(json.decode(json.encode(v)), nil)
end

--- The URN that `word` names in `doc`: a URN (stack::type::name), type::name, or a name
--- no other type uses. Raises a usage error naming the stack's resources otherwise.
function M.resolve(doc, stack, word)
  if doc.resources[word] then return word end
  local urn = stack .. "::" .. word
  if doc.resources[urn] then return urn end
  local found = {}
  for u, rec in pairs(doc.resources) do
    if rec.name == word then found[#found + 1] = u end
  end
  table.sort(found)
  if #found == 1 then return found[1] end
  if #found > 1 then
    usage("%s names %d resources of stack %s (%s): give type::name", word, #found, stack,
      table.concat(found, ", "))
  end
  -- the closest by any of its spellings: URN, type::name, name
  local urns, spellings, urn_of = sorted_urns(doc), {}, {}
  for _, u in ipairs(urns) do
    local rec = doc.resources[u]
    for _, w in ipairs({ u, rec.type .. "::" .. rec.name, rec.name }) do
      spellings[#spellings + 1], urn_of[w] = w, urn_of[w] or u
    end
  end
  local best = require("fo.aws.suggest").closest(word, spellings)
  usage("stack %s has no resource %s%s (`fo-run state list --stack %s` lists its %d)", stack,
    word, best and (" (did you mean %s?)"):format(urn_of[best]) or "", stack, #urns)
end

-- A --type/--region/--id filter: exact, or a glob with * (any run of characters).
local function matcher(glob)
  if not glob then return function() return true end end
  local pattern = "^" .. glob:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return function(s) return s ~= nil and tostring(s):match(pattern) ~= nil end
end

local function row(urn, rec, deposed)
  return { urn = urn, type = rec.type, name = rec.name, region = rec.region, id = rec.id,
    deposed = deposed or nil, component = rec.name and rec.name:match("^(.+)/[^/]+$") or nil }
end

function M.list(st, doc)
  local o = st.opts
  local by_type, by_region, by_id = matcher(o.type), matcher(o.region), matcher(o.id)
  local function wanted(rec)
    return by_type(rec.type) and by_region(rec.region) and by_id(rec.id)
      and component_list.within(rec.name, o.component)
  end
  local rows = {}
  for _, urn in ipairs(sorted_urns(doc)) do
    local rec = doc.resources[urn]
    if wanted(rec) then rows[#rows + 1] = row(urn, rec) end
  end
  for _, rec in ipairs(doc.deposed) do
    if wanted(rec) then rows[#rows + 1] = row(rec.urn, rec, true) end
  end
  rows = component_list.order(rows)
  local r = st.report
  r:emit("state", { command = "list", resources = rows })
  if o.tree then
    component_list.tree(r, rows)
  end
  local width = 0
  for _, x in ipairs(rows) do width = math.max(width, utf8.len(x.urn) or #x.urn) end
  for _, x in ipairs(o.tree and {} or rows) do
    r:out("%s%s  %-12s %s%s\n", x.urn, (" "):rep(width - (utf8.len(x.urn) or #x.urn)),
      x.region or "", x.id, x.deposed and "  (replaced: deleted by the next apply)" or "")
  end
  if #rows == 0 then -- on stderr: standard output stays the list alone, for scripts
    r:err("fo: stack %s holds no resource%s\n", o.stack,
      (o.type or o.region or o.id or o.component)
        and " matching --type, --region, --id, --component" or "")
  end
  return EXIT.ok
end

function M.show(st, doc, word)
  local urn = M.resolve(doc, st.opts.stack, word)
  local rec = hidden(doc.resources[urn])
  local r = st.report
  local deposed = {}
  for _, d in ipairs(doc.deposed) do
    if d.urn == urn then deposed[#deposed + 1] = d.id end
  end
  local dependents = {}
  for _, u in ipairs(sorted_urns(doc)) do
    for _, d in ipairs(doc.resources[u].deps or {}) do
      if d == urn then dependents[#dependents + 1] = u end
    end
  end
  r:emit("state", { command = "show", resource = { urn = urn, type = rec.type, name = rec.name,
    region = rec.region, id = rec.id, inputs = rec.inputs, outputs = rec.outputs,
    deps = rec.deps or {}, dependents = dependents, deposed = #deposed > 0 and deposed or nil,
    interrupted_create = doc.intents[urn] ~= nil or nil } })
  r:out("%s\n", urn)
  for _, f in ipairs({ "type", "name", "region", "id" }) do
    r:out("  %-11s %s\n", f, tostring(rec[f]))
  end
  r:out("  %-11s %s\n", "depends on", #(rec.deps or {}) > 0 and table.concat(rec.deps, ", ")
    or "(nothing)")
  r:out("  %-11s %s\n", "needed by", #dependents > 0 and table.concat(dependents, ", ")
    or "(nothing)")
  if #deposed > 0 then
    r:out("  %-11s %s (deleted by the next apply)\n", "replaced", table.concat(deposed, ", "))
  end
  for _, part in ipairs({ "inputs", "outputs" }) do
    local keys = {}
    for k in pairs(rec[part] or {}) do keys[#keys + 1] = k end
    table.sort(keys)
    r:out("  %s:%s\n", part, #keys == 0 and " (none)" or "")
    for _, k in ipairs(keys) do
      r:out("    %s = %s\n", k, diff.show(rec[part][k], 400))
    end
  end
  return EXIT.ok
end

-- A store over the document a command changes (the run's store: the log, then the fold).
local function store_for(st, doc, original, info)
  return st.backend:store(doc, original, { log = info.log, keys = commands.keyring(st, doc) })
end

local function done(store)
  store:commit()
  store:finish()
end

function M.rm(st, doc, original, info, words)
  local urns, seen = {}, {}
  for _, w in ipairs(words) do -- every name is checked before anything is forgotten
    local urn = M.resolve(doc, st.opts.stack, w)
    if not seen[urn] then seen[urn], urns[#urns + 1] = true, urn end
  end
  for _, urn in ipairs(urns) do
    if doc.intents[urn] then
      usage("%s has an interrupted create in the state: run the recipe first (it adopts or "
        .. "drops it), then forget the resource; nothing was changed", urn)
    end
  end
  local store = store_for(st, doc, original, info)
  local rows = {}
  for _, urn in ipairs(urns) do
    rows[#rows + 1] = row(urn, doc.resources[urn])
    store:remove(urn)
  end
  done(store)
  local r = st.report
  r:emit("state", { command = "rm", resources = rows })
  for _, x in ipairs(rows) do
    r:out("Forgot %s (%s %s, in %s).\n", x.urn, x.type, x.id, x.region or "?")
  end
  for _, urn in ipairs(sorted_urns(doc)) do
    for _, d in ipairs(doc.resources[urn].deps or {}) do
      if seen[d] then
        r:warn(("%s depends on %s, which stack %s no longer manages"):format(urn, d,
          st.opts.stack))
      end
    end
  end
  local one = #rows == 1
  r:summary("ok", ("Forgot %d resource%s: %s still in the cloud, no longer managed by stack "
    .. "%s (nothing was deleted). If the recipe still declares %s, its next apply creates %s "
    .. "again: remove %s from the recipe too."):format(#rows, one and "" or "s",
      one and "it is" or "they are", st.opts.stack, one and "it" or "them",
      one and "it" or "them", one and "it" or "them"))
  return EXIT.ok
end

local NAME = "^[%w_][%w_%.%-/]*$" -- as recipe.lua's names

--- The URN a new name means for a resource of type `type_name`: a name, type::name or a
--- URN of the stack, of the same type. Raises a usage error otherwise.
function M.new_urn(stack, type_name, word)
  local rest = word
  if rest:sub(1, #stack + 2) == stack .. "::" and rest:find("::", #stack + 3, true) then
    rest = rest:sub(#stack + 3)
  end
  local name = rest
  if rest:sub(1, #type_name + 2) == type_name .. "::" then
    name = rest:sub(#type_name + 3)
  elseif rest:find("::", 1, true) then
    usage("state mv renames a resource; its type stays %s: give the new name (or %s::NAME), "
      .. "not %s", type_name, type_name, word)
  end
  if not name:match(NAME) then
    usage("new name %q: use letters, digits, _ . - / (as fo.resource's names)", name)
  end
  return require("fo.engine.recipe").urn(stack, type_name, name), name
end

-- A copy of a record with `changes` (records are replaced, never changed: state.lua).
local function with(rec, changes)
  local out = {}
  for k, v in pairs(rec) do out[k] = v end
  for k, v in pairs(changes) do out[k] = v end
  return out
end

--- Renames the record `old` to `new` (named `name`) in `store`: the record, its replaced
--- instances and the dependencies of the others on it. The caller checked both.
function M.rename(store, old, new, name)
  local doc = store.doc
  store:put(new, with(doc.resources[old], { urn = new, name = name }))
  store:remove(old)
  for _, urn in ipairs(sorted_urns(doc)) do
    local rec = doc.resources[urn]
    local deps, changed = {}, false
    for i, d in ipairs(rec.deps or {}) do
      deps[i] = d == old and new or d
      changed = changed or d == old
    end
    if changed then store:put(urn, with(rec, { deps = deps })) end
  end
  for i = #doc.deposed, 1, -1 do
    local rec = doc.deposed[i]
    if rec.urn == old then
      store:remove_deposed(rec)
      store:add_deposed(with(rec, { urn = new, name = name }))
    end
  end
end

--- Why `new` cannot be the name of a moved resource in `doc` (nil when it can).
function M.taken(doc, new)
  if doc.resources[new] then return "the state already holds " .. new end
  if doc.intents[new] then return "the state holds an interrupted create of " .. new end
  for _, d in ipairs(doc.deposed) do
    if d.urn == new then return "the state holds a replaced instance of " .. new end
  end
  return nil
end

function M.mv(st, doc, original, info, words)
  local old = M.resolve(doc, st.opts.stack, words[1])
  local rec = doc.resources[old]
  local new, name = M.new_urn(st.opts.stack, rec.type, words[2])
  if new == old then usage("%s already has that name: nothing to do", old) end
  local why = M.taken(doc, new)
    or doc.intents[old] and ("%s has an interrupted create: run the recipe first"):format(old)
  if why then usage("cannot move %s to %s: %s; nothing was changed", old, new, why) end
  local store = store_for(st, doc, original, info)
  M.rename(store, old, new, name)
  done(store)
  local r = st.report
  r:emit("state", { command = "mv", from = old, to = new, id = rec.id })
  r:summary("ok", ("Moved %s to %s (%s, unchanged in the cloud). Rename it in the recipe too, "
    .. "or the next apply deletes it and creates the old name again."):format(old, new, rec.id))
  return EXIT.ok
end

-- The state as text, as the snapshot is written (secret values sealed as they are).
local function state_text(doc)
  return state.store("-", doc, nil, { readonly = true, medium = {} }):encode()
end

function M.pull(st, doc, _, _, words)
  local file = words[1]
  local text = state_text(doc)
  local r = st.report
  local n = 0
  for _ in pairs(doc.resources) do n = n + 1 end
  if not file or file == "-" then
    if st.opts.json then
      usage("state pull without FILE writes the state to standard output: it takes no --json")
    end
    io.stdout:write(text)
    return EXIT.ok
  end
  if fs.exists(file) and not st.opts.force then
    usage("%s exists: fo does not overwrite it; give another FILE, or --force", file)
  end
  fs.write_atomic(file, text, MODE)
  r:emit("state", { command = "pull", file = file, serial = doc.serial, count = n })
  r:summary("ok", ("Stack %s's state (serial %s, %d resources) written to %s."):format(
    st.opts.stack, tostring(doc.serial or 0), n, file))
  return EXIT.ok
end

-- The state document in `file`, checked as fo checks the state it reads; raises a usage
-- error naming the file and what is wrong.
function M.read_backup(file)
  local f, err = io.open(file, "rb")
  if not f then usage("state push %s: %s", file, tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(json.decode, text)
  local function bad(why)
    usage("%s is not a usable fo state: %s; nothing was changed", file, why)
  end
  if not ok or type(doc) ~= "table" then bad("it is not a JSON object") end
  if doc.format ~= state.FORMAT or doc.version ~= state.VERSION then
    bad(("format %s version %s, where fo writes %s version %d"):format(tostring(doc.format),
      tostring(doc.version), state.FORMAT, state.VERSION))
  end
  local checked, why = pcall(state.check, file, doc)
  if not checked then
    bad(errors.is(why) and why.message:match("cannot be used: (.-)%. fo never") or tostring(why))
  end
  if type(doc.stack) ~= "string" then bad("it names no stack") end
  if doc.serial ~= nil and (math.type(doc.serial) ~= "integer" or doc.serial < 0) then
    bad("serial must be a whole number")
  end
  if #doc.deposed ~= (function() local n = 0 for _ in pairs(doc.deposed) do n = n + 1 end
      return n end)() then
    bad("deposed must be an array")
  end
  for urn, rec in pairs(doc.resources) do
    if rec.urn ~= nil and rec.urn ~= urn then
      bad(("resources.%s holds the record of %s"):format(urn, tostring(rec.urn)))
    end
  end
  for urn, intent in pairs(doc.intents) do
    if type(intent) ~= "table" or type(intent.type) ~= "string" then
      bad(("intents.%s is not an interrupted create"):format(urn))
    end
  end
  return doc
end

-- Every sealed value of `v`, opened with `keys` (a damaged one, or another key, raises).
local function open_all(v, keys)
  if type(v) ~= "table" then return end
  local text = v[secret.FIELD]
  if type(text) == "string" and next(v, next(v)) == nil then
    keys:open(text)
    return
  end
  for _, x in pairs(v) do open_all(x, keys) end
end

-- The top-level members a push replaces one by one (the others: resources, deposed,
-- intents, types, format, version).
local OWN_MEMBERS = { resources = true, deposed = true, intents = true, types = true,
  format = true, version = true, serial = true }

function M.push(st, cur, original, info, words)
  local file, o = words[1], st.opts
  local doc = M.read_backup(file)
  local refusals = {}
  local function refuse(fmt, ...) refusals[#refusals + 1] = fmt:format(...) end
  if doc.stack ~= o.stack then
    refuse("it is the state of stack %s, not %s", doc.stack, o.stack)
  end
  if cur then
    if cur.target ~= doc.target then
      refuse("it is bound to target %s; stack %s is bound to %s", doc.target, o.stack, cur.target)
    end
    if cur.account and doc.account and cur.account ~= doc.account then
      refuse("it is bound to AWS account %s; stack %s to %s", doc.account, o.stack, cur.account)
    end
    if (doc.serial or 0) < (cur.serial or 0) then
      refuse("its serial %d is lower than the stack's %d (an older state: the stack changed "
        .. "since it was pulled)", doc.serial or 0, cur.serial or 0)
    end
    if cur.secrets ~= nil and doc.secrets ~= nil and not diff.equal(cur.secrets, doc.secrets) then
      refuse("its secret values are sealed with another key than the stack's")
    end
  end
  if #refusals > 0 and not o.force then
    usage("state push %s refused: %s. Nothing was changed; --force pushes it anyway",
      file, table.concat(refusals, "; "))
  end
  if secret.sealed_in(doc) then
    local keys = commands.keyring(st, doc)
    local ok, err = pcall(open_all, doc, keys)
    if not ok then
      usage("state push %s refused: a secret value in it does not open with the key of stack "
        .. "%s (%s); nothing was changed", file, o.stack, errors.is(err) and err.message
          or tostring(err))
    end
  end
  local base = cur or state.empty(o.stack, doc.target)
  local store = store_for(st, base, original, info)
  for t, m in pairs(doc.types) do store.modules[t] = m end -- kept for a --destroy
  for k in pairs(base) do
    if not OWN_MEMBERS[k] and doc[k] == nil then store:set(k, nil) end
  end
  for k, v in pairs(doc) do
    if not OWN_MEMBERS[k] and not diff.equal(base[k], v) then store:set(k, v) end
  end
  for _, urn in ipairs(sorted_urns(base)) do
    if not doc.resources[urn] then store:remove(urn) end
  end
  for _, urn in ipairs(sorted_urns(doc)) do
    if not diff.equal(base.resources[urn], doc.resources[urn]) then
      store:put(urn, doc.resources[urn])
    end
  end
  for i = #base.deposed, 1, -1 do store:remove_deposed(base.deposed[i]) end
  for _, rec in ipairs(doc.deposed) do store:add_deposed(rec) end
  local intents = {}
  for urn in pairs(base.intents) do intents[urn] = true end
  for urn in pairs(doc.intents) do intents[urn] = true end
  for urn in pairs(intents) do
    if not diff.equal(base.intents[urn], doc.intents[urn]) then
      store:set_intent(urn, doc.intents[urn])
    end
  end
  -- the pushed state's serial, counted once more by the write (never below the stack's)
  store:set("serial", math.max(doc.serial or 0, cur and cur.serial or 0))
  done(store)
  local n = 0
  for _ in pairs(doc.resources) do n = n + 1 end
  local r = st.report
  r:emit("state", { command = "push", file = file, serial = store.doc.serial, count = n,
    forced = #refusals > 0 or nil })
  for _, why in ipairs(refusals) do r:warn("--force: pushed although " .. why) end
  r:summary("ok", ("Stack %s's state replaced by %s (%d resources; serial now %d)."):format(
    o.stack, file, n, store.doc.serial))
  return EXIT.ok
end

--- Runs `fo-run state <sub>` on the stack `st` (commands.open) with its arguments.
function M.run(sub, st, args)
  st.new_ok = sub == "push"
  return commands.locked(st, function(_, doc, original, info)
    if sub == "list" then return M.list(st, doc) end
    if sub == "show" then return M.show(st, doc, args[1]) end
    if sub == "rm" then return M.rm(st, doc, original, info, args) end
    if sub == "mv" then return M.mv(st, doc, original, info, args) end
    if sub == "pull" then return M.pull(st, doc, original, info, args) end
    if sub == "import" then
      return require("fo.engine.import_cmd").run(st, doc, original, info, args)
    end
    return M.push(st, doc, original, info, args)
  end)
end

return M
