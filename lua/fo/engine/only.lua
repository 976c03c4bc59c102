-- --only PATTERN (repeatable): a targeted run, as Terraform's -target. The resources the
-- patterns name are selected; an apply (or --plan, --refresh) then works on them and on
-- what they depend on, transitively — nothing else is read, planned, changed or deleted.
-- A selected resource that the recipe no longer declares is deleted (with what still
-- depends on it). --destroy deletes the selected resources and what depends on them (the
-- reverse direction: a dependent cannot outlive what it uses). The stack may then differ
-- from the recipe; the run says so, and a run without --only converges it.
local errors = require "fo.engine.errors"
local suggest = require "fo.aws.suggest"
local ref = require "fo.engine.ref"
local json = require "fo.json"

local M = {}

M.WARNING = "the stack may now differ from the recipe: resources outside the selection "
  .. "were not read, planned or changed, and outputs that depend on them were not updated. "
  .. "--only is for exceptional cases (recovering from an error, one urgent change); run "
  .. "without --only to converge the whole stack"

--- True when `word` is a glob (holds * or ?), not a plain name.
function M.is_glob(word)
  return word:find("[%*%?]") ~= nil
end

--- The Lua pattern of a glob: `*` any run of characters but `/`, `**` any run at all,
--- `?` one character but `/`; everything else stands for itself. Anchored at both ends.
function M.pattern(glob)
  local out, i = { "^" }, 1
  while i <= #glob do
    local c = glob:sub(i, i)
    if c == "*" and glob:sub(i + 1, i + 1) == "*" then
      out[#out + 1] = ".*"
      while glob:sub(i, i) == "*" do i = i + 1 end
    else
      if c == "*" then out[#out + 1] = "[^/]*"
      elseif c == "?" then out[#out + 1] = "[^/]"
      elseif c:match("%w") then out[#out + 1] = c
      else out[#out + 1] = "%" .. c end
      i = i + 1
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

-- The spellings a pattern is matched against, as `state` commands take them: the URN
-- (stack::type::name), type::name, and the name.
local function spellings(c)
  return { c.urn, c.type .. "::" .. c.name, c.name }
end

-- Up to three candidates' type::name closest to `word` (by any spelling), for the message.
local function close_to(word, cands)
  local plain = word:gsub("[%*%?]", "")
  local scored = {}
  for _, c in ipairs(cands) do
    local best
    for _, s in ipairs(spellings(c)) do
      local d = suggest.distance(plain, s)
      if s:lower():find(plain:lower(), 1, true) and #plain >= 3 then d = math.min(d, 1) end
      best = best and math.min(best, d) or d
    end
    if best <= math.max(2, #plain // 3) then
      scored[#scored + 1] = { d = best, text = c.type .. "::" .. c.name }
    end
  end
  table.sort(scored, function(a, b)
    if a.d ~= b.d then return a.d < b.d end
    return a.text < b.text
  end)
  local out = {}
  for i = 1, math.min(3, #scored) do out[i] = scored[i].text end
  return out
end

-- The resources a run can select: the recipe's declarations (none for --destroy, which
-- works from the state) and what the state records, by URN, sorted.
local function candidates(stack, decls, doc)
  local by_urn, list = {}, {}
  local function add(urn, type_name, name)
    if by_urn[urn] then return by_urn[urn] end
    local c = { urn = urn, type = type_name, name = name }
    by_urn[urn] = c
    list[#list + 1] = c
    return c
  end
  for _, d in ipairs(decls) do add(d.urn, d.type, d.name).decl = d end
  for urn, rec in pairs(doc.resources) do add(urn, rec.type, rec.name).rec = rec end
  for _, rec in ipairs(doc.deposed) do add(rec.urn, rec.type, rec.name).deposed = true end
  table.sort(list, function(a, b) return a.urn < b.urn end)
  return list, by_urn, stack
end

-- The URNs `word` selects: a glob every candidate it matches by any spelling; a plain word
-- the one candidate it names (several types sharing the name: a usage error, as `state
-- show` says). Raises a usage error when it selects none.
local function matches(word, cands, stack)
  local out = {}
  if M.is_glob(word) then
    local pat = M.pattern(word)
    for _, c in ipairs(cands) do
      for _, s in ipairs(spellings(c)) do
        if s:match(pat) then out[#out + 1] = c; break end
      end
    end
  else
    for _, c in ipairs(cands) do
      for _, s in ipairs(spellings(c)) do
        if s == word then out[#out + 1] = c; break end
      end
    end
    if #out > 1 then
      local names = {}
      for i, c in ipairs(out) do names[i] = c.type .. "::" .. c.name end
      errors.raise("usage", ("--only %s names %d resources of stack %s (%s): give type::name, "
        .. "or a glob to select them all"):format(word, #out, stack, table.concat(names, ", ")))
    end
  end
  if #out == 0 then
    local near = close_to(word, cands)
    errors.raise("usage", ("--only %s matches no resource of stack %s%s; nothing was changed "
      .. "(`fo-run state list` lists what the stack holds, `--plan` what the recipe declares; "
      .. "a glob's * stops at '/', ** does not)"):format(word, stack, #near > 0
        and (" (did you mean %s?)"):format(table.concat(near, " or ")) or ""))
  end
  return out
end

local function sorted(set)
  local out = {}
  for urn in pairs(set) do out[#out + 1] = urn end
  table.sort(out)
  return out
end

--- The selection of a run: `patterns` (--only, in order), `mode`, the recipe's finished
--- declarations `decls` (none for --destroy) and the state document `doc`. Returns
--- { members = {urn = true} (declared resources planned), deletes = {urn = true} (recorded
--- resources deleted), reads = members ∪ deletes (what refresh reads), info = the JSON
--- description }. Raises a usage error for a pattern that selects nothing.
function M.select(patterns, mode, stack, decls, doc)
  local cands, by_urn = candidates(stack, mode == "destroy" and {} or decls, doc)
  local selected = {}
  for _, word in ipairs(patterns) do
    for _, c in ipairs(matches(word, cands, stack)) do selected[c.urn] = c end
  end
  local members, deletes = {}, {}
  -- recorded dependents of a URN, from the records' deps (what still uses it)
  local users = {}
  for urn, rec in pairs(doc.resources) do
    for _, d in ipairs(rec.deps or {}) do
      users[d] = users[d] or {}
      table.insert(users[d], urn)
    end
  end
  local function add_member(decl)
    if members[decl.urn] then return end
    members[decl.urn] = true
    for _, d in ipairs(decl.deps) do add_member(d) end
  end
  local add_delete
  -- what uses a deleted resource goes too (undeclared) or is updated away from it first
  -- (declared: planned with its dependencies)
  local function add_user(urn)
    local c = by_urn[urn]
    if c.decl then add_member(c.decl) else add_delete(urn) end
  end
  function add_delete(urn)
    if deletes[urn] then return end
    deletes[urn] = true
    for _, u in ipairs(users[urn] or {}) do add_user(u) end
  end
  for urn, c in pairs(selected) do
    if mode == "destroy" then add_delete(urn)
    elseif c.decl then add_member(c.decl)
    else add_delete(urn) end
  end
  local reads = {}
  for urn in pairs(members) do reads[urn] = true end
  for urn in pairs(deletes) do reads[urn] = true end
  local included = {}
  for urn in pairs(reads) do
    if not selected[urn] then included[urn] = true end
  end
  local sel = { members = members, deletes = deletes, reads = reads, mode = mode,
    selected = sorted(selected), included = sorted(included) }
  local function list(t) return #t > 0 and t or json.EMPTY_ARRAY end
  sel.info = { patterns = patterns, selected = sel.selected, included = list(sel.included),
    direction = mode == "destroy" and "dependents" or "dependencies" }
  return sel
end

--- The plan restricted to the selection: declared resources of `members`, deletions of
--- `deletes`, and the old instances (deposed) of either. Steps keep their order; counts
--- are recomputed by `count` (plan.lua's).
function M.filter(plan, sel, count)
  local steps, by_urn = {}, {}
  for _, s in ipairs(plan.steps) do
    local keep
    if s.deposed then keep = sel.reads[s.urn]
    elseif s.decl then keep = sel.members[s.urn]
    else keep = sel.deletes[s.urn] end
    if keep then
      steps[#steps + 1] = s
      if not s.deposed then by_urn[s.urn] = s end
    end
  end
  return count({ steps = steps, by_urn = by_urn })
end

--- Raises a usage error (before any change) when the filtered plan replaces a resource
--- that recorded resources outside the selection use: they would be left naming the old
--- instance, which the replacement deletes.
function M.check(plan, sel, doc)
  local lines = {}
  for _, s in ipairs(plan.steps) do
    if s.action == "replace" and not s.deposed then
      local users = {}
      for urn, rec in pairs(doc.resources) do
        if not sel.reads[urn] then
          for _, d in ipairs(rec.deps or {}) do
            if d == s.urn then users[#users + 1] = urn; break end
          end
        end
      end
      if #users > 0 then
        table.sort(users)
        lines[#lines + 1] = ("%s would be replaced, but %s, not selected, use%s it: select %s "
          .. "too (--only), or run without --only"):format(s.urn, table.concat(users, ", "),
          #users == 1 and "s" or "", #users == 1 and "it" or "them")
      end
    end
  end
  if #lines == 0 then return end
  errors.raise("usage", ("refusing the targeted run: nothing was changed.\n  %s")
    :format(table.concat(lines, "\n  ")))
end

local function listed(urns, max)
  max = max or 8
  local out = {}
  -- type::name: the stack is the run's
  for i = 1, math.min(max, #urns) do out[i] = urns[i]:gsub("^[^:]+::", "", 1) end
  if #urns > max then out[#out + 1] = ("%d more"):format(#urns - max) end
  return table.concat(out, ", ")
end

--- The run's warning: what is selected, what comes with it, and that the stack may now
--- differ from the recipe.
function M.warning(sel)
  local what = sel.mode == "destroy" and "destroys only" or sel.mode == "refresh"
    and "reads only" or "plans and applies only"
  local with = sel.mode == "destroy" and "what depends on" or "what %s depend%s on"
  local n = #sel.selected
  if sel.mode ~= "destroy" then
    with = with:format(n == 1 and "it" or "they", n == 1 and "s" or "")
  else
    with = with .. (n == 1 and " it" or " them")
  end
  return ("--only: this run %s %s and %s (%s); %s."):format(what, listed(sel.selected), with,
    #sel.included == 0 and "nothing more" or #sel.included .. ": " .. listed(sel.included),
    M.WARNING)
end

--- The stack's outputs after a targeted apply: `values` (outputs_of's) where every resource
--- an output references is recorded; the recorded value (`recorded`) where one is not (it
--- was outside the selection and never created), or none.
function M.outputs(values, order, recorded)
  local out, names = {}, {}
  for _, name in ipairs(order) do
    local v = values[name]
    if ref.has_unknown(v) then v = recorded and recorded[name] end
    if v ~= nil then out[name], names[#names + 1] = v, name end
  end
  return out, names
end

return M
