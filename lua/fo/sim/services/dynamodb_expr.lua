-- DynamoDB expressions for the simulator: condition/filter, key condition, update and
-- projection expressions, parsed with DynamoDB's grammar and evaluated on stored items.
-- Malformed expressions fail with ValidationException and DynamoDB's messages ("Invalid
-- UpdateExpression: Syntax error; token: ..."), so code that passes here is code AWS
-- would accept.
--
-- Usage (one env per request, since DynamoDB checks that every ExpressionAttributeNames
-- and ExpressionAttributeValues entry is used by some expression of the request):
--   local env = expr.env(params, fail)
--   local cond = expr.condition(env, params.ConditionExpression, "ConditionExpression")
--   local upd = expr.update(env, params.UpdateExpression)
--   expr.finish(env)                      -- unused names/values → ValidationException
--   if cond and not expr.eval(cond, item) then ... end
local V = require "fo.sim.services.dynamodb_values"
local RESERVED = require "fo.sim.services.dynamodb_reserved"

local M = {}

local function vfail(env, msg)
  env.fail("ValidationException", msg)
end

--- The request's expression environment. `p`: the request params (ExpressionAttributeNames
--- and ExpressionAttributeValues); `fail(code, message)` raises.
function M.env(p, fail)
  return { names = p.ExpressionAttributeNames or {}, values = p.ExpressionAttributeValues or {},
    used_names = {}, used_values = {}, fail = fail, checked_values = {} }
end

-- Tokens ------------------------------------------------------------------------------

local function tokenize(env, text, kind)
  local toks, i, n = {}, 1, #text
  while i <= n do
    local c = text:sub(i, i)
    if c:match("%s") then
      i = i + 1
    else
      local s, e, t
      if c:match("[%a_]") then
        s, e = text:find("^[%w_]+", i); t = "name"
      elseif c == "#" or c == ":" then
        s, e = text:find("^[#:][%w_]+", i); t = c
        if not s then s, e = i, i; t = "bad" end
      elseif c:match("%d") then
        s, e = text:find("^%d+", i); t = "num"
      elseif text:sub(i, i + 1) == "<>" or text:sub(i, i + 1) == "<=" or text:sub(i, i + 1) == ">=" then
        s, e = i, i + 1; t = "op"
      elseif c == "=" or c == "<" or c == ">" then
        s, e = i, i; t = "op"
      elseif c:match("[%(%),%.%[%]%+%-]") then
        s, e = i, i; t = c
      else
        s, e = i, i; t = "bad"
      end
      toks[#toks + 1] = { t = t, v = text:sub(s, e), pos = s }
      i = e + 1
    end
  end
  toks[#toks + 1] = { t = "eof", v = "<EOF>", pos = n + 1 }
  return { toks = toks, i = 1, env = env, kind = kind, text = text }
end

local function peek(P, k) return P.toks[P.i + (k or 0)] end

local function syntax(P, tok)
  tok = tok or peek(P)
  local prev = P.toks[P.i - 1]
  local near = tok.t == "eof" and (prev and prev.v or "") or ((prev and prev.v .. " " or "") .. tok.v)
  vfail(P.env, ("Invalid %s: Syntax error; token: \"%s\", near: \"%s\""):format(P.kind, tok.v, near))
end

local function next_tok(P)
  local t = P.toks[P.i]
  P.i = P.i + 1
  return t
end

local function expect(P, t)
  local tok = peek(P)
  if tok.t ~= t then syntax(P, tok) end
  return next_tok(P)
end

local function is_kw(tok, word)
  return tok.t == "name" and tok.v:upper() == word
end

local function invalid(P, msg)
  vfail(P.env, ("Invalid %s: %s"):format(P.kind, msg))
end

-- Names and values --------------------------------------------------------------------

local function attr_name(P, tok)
  if tok.t == "#" then
    local v = P.env.names[tok.v]
    if v == nil then
      invalid(P, "An expression attribute name used in the document path is not defined; "
        .. "attribute name: " .. tok.v)
    end
    P.env.used_names[tok.v] = true
    return v
  end
  if RESERVED[tok.v:upper()] then
    invalid(P, "Attribute name is a reserved keyword; reserved keyword: " .. tok.v)
  end
  return tok.v
end

local function attr_value(P, tok)
  local env = P.env
  local v = env.values[tok.v]
  if v == nil then
    invalid(P, "An expression attribute value used in expression is not defined; "
      .. "attribute value: " .. tok.v)
  end
  env.used_values[tok.v] = true
  if not env.checked_values[tok.v] then
    env.checked_values[tok.v] = V.check(v, env.fail)
  end
  return env.checked_values[tok.v]
end

-- path := element ( '.' element | '[' num ']' )*
local function parse_path(P)
  local tok = next_tok(P)
  if tok.t ~= "name" and tok.t ~= "#" then syntax(P, tok) end
  local path = { attr_name(P, tok) }
  while true do
    local t = peek(P)
    if t.t == "." then
      next_tok(P)
      local e = next_tok(P)
      if e.t ~= "name" and e.t ~= "#" then syntax(P, e) end
      path[#path + 1] = attr_name(P, e)
    elseif t.t == "[" then
      next_tok(P)
      local num = expect(P, "num")
      expect(P, "]")
      path[#path + 1] = math.tointeger(tonumber(num.v)) -- list index, 0-based
    else
      return path
    end
  end
end

local function path_text(path)
  local out = {}
  for i, e in ipairs(path) do
    if math.type(e) == "integer" then out[#out + 1] = "[" .. e .. "]"
    else out[#out + 1] = (i > 1 and "." or "") .. e end
  end
  return table.concat(out)
end
M.path_text = path_text

--- The value at `path` in `item` (a map of attribute name → value), or nil.
function M.resolve(item, path)
  local cur = item[path[1]]
  for i = 2, #path do
    if cur == nil then return nil end
    local e = path[i]
    if math.type(e) == "integer" then
      cur = cur.L and cur.L[e + 1]
    else
      cur = cur.M and cur.M[e]
    end
  end
  return cur
end

-- Conditions --------------------------------------------------------------------------
-- AST nodes: {k="path", path=}, {k="value", v=}, {k="size", path=}, {k="cmp", op=, a=, b=},
-- {k="between", a=, lo=, hi=}, {k="in", a=, list=}, {k="fn", name=, args=},
-- {k="and"/"or", a=, b=}, {k="not", a=}.

local COND_FUNCS = { attribute_exists = 1, attribute_not_exists = 1, attribute_type = 2,
  begins_with = 2, contains = 2 }

local parse_or

local function parse_operand(P)
  local tok = peek(P)
  if tok.t == ":" then
    next_tok(P)
    return { k = "value", v = attr_value(P, tok) }
  elseif tok.t == "name" and peek(P, 1).t == "(" then
    if tok.v ~= "size" then
      if COND_FUNCS[tok.v] then
        invalid(P, "The function is not allowed to be used this way in an expression; "
          .. "function: " .. tok.v)
      end
      invalid(P, "Invalid function name; function: " .. tok.v)
    end
    next_tok(P); next_tok(P)
    local path = parse_path(P)
    expect(P, ")")
    return { k = "size", path = path }
  elseif tok.t == "name" or tok.t == "#" then
    return { k = "path", path = parse_path(P) }
  end
  syntax(P, tok)
end

local function parse_function(P)
  local name = next_tok(P).v
  expect(P, "(")
  local args = {}
  if COND_FUNCS[name] == nil then
    if name == "size" then
      invalid(P, "The function is not allowed to be used this way in an expression; "
        .. "function: size")
    end
    invalid(P, "Invalid function name; function: " .. name)
  end
  repeat
    args[#args + 1] = parse_operand(P)
  until not (peek(P).t == "," and next_tok(P))
  expect(P, ")")
  if #args ~= COND_FUNCS[name] then
    invalid(P, ("Incorrect number of operands for operator or function; operator or "
      .. "function: %s, number of operands: %d"):format(name, #args))
  end
  if args[1].k ~= "path" then
    invalid(P, ("Operator or function requires a document path; operator or function: %s")
      :format(name))
  end
  return { k = "fn", name = name, args = args }
end

local function parse_primary(P)
  local tok = peek(P)
  if tok.t == "(" then
    next_tok(P)
    local c = parse_or(P)
    expect(P, ")")
    return c
  end
  if tok.t == "name" and peek(P, 1).t == "(" and tok.v ~= "size" then
    return parse_function(P)
  end
  local a = parse_operand(P)
  local t = peek(P)
  if t.t == "op" then
    next_tok(P)
    return { k = "cmp", op = t.v, a = a, b = parse_operand(P) }
  elseif is_kw(t, "BETWEEN") then
    next_tok(P)
    local lo = parse_operand(P)
    if not is_kw(peek(P), "AND") then syntax(P) end
    next_tok(P)
    return { k = "between", a = a, lo = lo, hi = parse_operand(P) }
  elseif is_kw(t, "IN") then
    next_tok(P)
    expect(P, "(")
    local list = {}
    repeat list[#list + 1] = parse_operand(P) until not (peek(P).t == "," and next_tok(P))
    expect(P, ")")
    return { k = "in", a = a, list = list }
  end
  syntax(P, t)
end

local function parse_not(P)
  if is_kw(peek(P), "NOT") then
    next_tok(P)
    return { k = "not", a = parse_not(P) }
  end
  return parse_primary(P)
end

local function parse_and(P)
  local a = parse_not(P)
  while is_kw(peek(P), "AND") do
    next_tok(P)
    a = { k = "and", a = a, b = parse_not(P) }
  end
  return a
end

function parse_or(P)
  local a = parse_and(P)
  while is_kw(peek(P), "OR") do
    next_tok(P)
    a = { k = "or", a = a, b = parse_and(P) }
  end
  return a
end

local function nonempty(env, text, kind)
  if text ~= nil and not text:find("%S") then
    vfail(env, ("Invalid %s: The expression can not be empty;"):format(kind))
  end
  return text ~= nil
end

--- A condition (ConditionExpression, FilterExpression) compiled, or nil when `text` is nil.
function M.condition(env, text, kind)
  if not nonempty(env, text, kind) then return nil end
  local P = tokenize(env, text, kind)
  local c = parse_or(P)
  if peek(P).t ~= "eof" then syntax(P) end
  return c
end

local function operand_value(node, item)
  if node.k == "value" then return node.v end
  if node.k == "path" then return M.resolve(item, node.path) end
  if node.k == "size" then
    local v = M.resolve(item, node.path)
    local t = V.type_of(v)
    if t == "S" or t == "B" then return { N = tostring(#v[t]) } end
    if t == "SS" or t == "NS" or t == "BS" or t == "L" then return { N = tostring(#v[t]) } end
    if t == "M" then
      local n = 0
      for _ in pairs(v.M) do n = n + 1 end
      return { N = tostring(n) }
    end
    return nil
  end
end

local function compare(op, a, b)
  if op == "=" then return a ~= nil and b ~= nil and V.equal(a, b) end
  if op == "<>" then return not (a ~= nil and b ~= nil and V.equal(a, b)) end
  if a == nil or b == nil then return false end
  local o = V.order(a, b)
  if o == nil then return false end
  if op == "<" then return o < 0 elseif op == "<=" then return o <= 0
  elseif op == ">" then return o > 0 else return o >= 0 end
end

local function has_member(set_type, list, v)
  for _, x in ipairs(list) do
    if set_type == "NS" then
      if V.compare_numbers(x, v) == 0 then return true end
    elseif x == v then return true end
  end
  return false
end

local function eval_fn(node, item)
  local name, args = node.name, node.args
  local v = M.resolve(item, args[1].path)
  if name == "attribute_exists" then return v ~= nil end
  if name == "attribute_not_exists" then return v == nil end
  local arg = operand_value(args[2], item)
  if name == "attribute_type" then
    return v ~= nil and arg ~= nil and arg.S ~= nil and V.type_of(v) == arg.S
  end
  if v == nil or arg == nil then return false end
  local t, at = V.type_of(v), V.type_of(arg)
  if name == "begins_with" then
    if (t == "S" or t == "B") and at == t then return v[t]:sub(1, #arg[t]) == arg[t] end
    return false
  end
  -- contains: substring of a string, member of a set, element of a list
  if t == "S" and at == "S" then return v.S:find(arg.S, 1, true) ~= nil end
  if t == "B" and at == "B" then return v.B:find(arg.B, 1, true) ~= nil end
  if (t == "SS" and at == "S") or (t == "BS" and at == "B") or (t == "NS" and at == "N") then
    return has_member(t, v[t], arg[at])
  end
  if t == "L" then
    for _, e in ipairs(v.L) do if V.equal(e, arg) then return true end end
  end
  return false
end

--- Evaluates a compiled condition on `item` (nil item: no item, every attribute missing).
function M.eval(node, item)
  item = item or {}
  local k = node.k
  if k == "and" then return M.eval(node.a, item) and M.eval(node.b, item) end
  if k == "or" then return M.eval(node.a, item) or M.eval(node.b, item) end
  if k == "not" then return not M.eval(node.a, item) end
  if k == "fn" then return eval_fn(node, item) end
  if k == "cmp" then
    return compare(node.op, operand_value(node.a, item), operand_value(node.b, item))
  end
  if k == "between" then
    local a = operand_value(node.a, item)
    return compare(">=", a, operand_value(node.lo, item)) and
      compare("<=", a, operand_value(node.hi, item))
  end
  if k == "in" then
    local a = operand_value(node.a, item)
    for _, o in ipairs(node.list) do
      if compare("=", a, operand_value(o, item)) then return true end
    end
    return false
  end
  error("unknown condition node " .. tostring(k))
end

-- Key conditions ----------------------------------------------------------------------

--- A KeyConditionExpression checked against the key schema (hash, range: attribute names,
--- range may be nil): returns {hash = value, range = {op=, a=, b=} or nil}. Only what
--- DynamoDB allows: hash = :v, optionally AND a range condition (=, <, <=, >, >=,
--- BETWEEN, begins_with).
function M.key_condition(env, text, hash, range)
  local kind = "KeyConditionExpression"
  if not nonempty(env, text, kind) then return nil end
  local P = tokenize(env, text, kind)
  local c = parse_or(P)
  if peek(P).t ~= "eof" then syntax(P) end
  local parts = {}
  local function collect(n)
    if n.k == "and" then collect(n.a); collect(n.b)
    elseif n.k == "or" or n.k == "not" or n.k == "in" then
      vfail(env, "Invalid operator used in KeyConditionExpression: " .. n.k:upper())
    else parts[#parts + 1] = n end
  end
  collect(c)
  local out = {}
  local function key_of(n)
    local path = n.k == "fn" and n.args[1].path or (n.a and n.a.k == "path" and n.a.path)
    if not path or #path ~= 1 then vfail(env, "Query key condition not supported") end
    return path[1]
  end
  for _, n in ipairs(parts) do
    local name = key_of(n)
    if name == hash then
      if n.k ~= "cmp" or n.op ~= "=" or n.b.k ~= "value" then
        vfail(env, "Query key condition not supported")
      end
      if out.hash then
        vfail(env, "KeyConditionExpressions must only contain one condition per key")
      end
      out.hash = n.b.v
    elseif range and name == range then
      if out.range then
        vfail(env, "KeyConditionExpressions must only contain one condition per key")
      end
      if n.k == "cmp" and n.op ~= "<>" and n.b.k == "value" then
        out.range = { op = n.op, a = n.b.v }
      elseif n.k == "between" and n.lo.k == "value" and n.hi.k == "value" then
        out.range = { op = "BETWEEN", a = n.lo.v, b = n.hi.v }
      elseif n.k == "fn" and n.name == "begins_with" and n.args[2].k == "value" then
        out.range = { op = "begins_with", a = n.args[2].v }
      else
        vfail(env, "Query key condition not supported")
      end
    else
      vfail(env, "Query condition missed key schema element: " .. hash)
    end
  end
  if not out.hash then vfail(env, "Query condition missed key schema element: " .. hash) end
  return out
end

--- True when the range value `v` satisfies the compiled range condition `rc`.
function M.range_matches(rc, v)
  if rc.op == "BETWEEN" then return compare(">=", v, rc.a) and compare("<=", v, rc.b) end
  if rc.op == "begins_with" then
    local t = V.type_of(v)
    return (t == "S" or t == "B") and V.type_of(rc.a) == t and v[t]:sub(1, #rc.a[t]) == rc.a[t]
  end
  return compare(rc.op, v, rc.a)
end

-- Projections -------------------------------------------------------------------------

--- A ProjectionExpression compiled to a list of paths, or nil.
function M.projection(env, text)
  local kind = "ProjectionExpression"
  if not nonempty(env, text, kind) then return nil end
  local P = tokenize(env, text, kind)
  local paths = {}
  repeat paths[#paths + 1] = parse_path(P) until not (peek(P).t == "," and next_tok(P))
  if peek(P).t ~= "eof" then syntax(P) end
  return paths
end

-- Copies the value at path[i..] of `src` into `dst` (a map's attribute table).
local function project_into(dst, src, path, i)
  local e = path[i]
  if math.type(e) == "integer" then return end -- handled by the caller's list branch
  local v = src[e]
  if v == nil then return end
  if i == #path then dst[e] = V.copy(v) return end
  local nxt = path[i + 1]
  if math.type(nxt) == "integer" then
    if not v.L or v.L[nxt + 1] == nil then return end
    local d = dst[e] or { L = {} }
    dst[e] = d
    if i + 1 == #path then d.L[#d.L + 1] = V.copy(v.L[nxt + 1])
    else
      local inner = v.L[nxt + 1]
      if inner.M then
        local m = { M = {} }
        project_into(m.M, inner.M, path, i + 2)
        d.L[#d.L + 1] = m
      end
    end
  elseif v.M then
    local d = dst[e] or { M = {} }
    if not d.M then return end
    dst[e] = d
    project_into(d.M, v.M, path, i + 1)
  end
end

--- The item reduced to the projected paths (a new table).
function M.project(paths, item)
  if not paths then return V.copy(item) end
  local out = {}
  for _, p in ipairs(paths) do project_into(out, item, p, 1) end
  return out
end

-- Updates -----------------------------------------------------------------------------
-- {set = {{path=, value=node}}, remove = {path...}, add = {{path=, value=}}, delete = ...}
-- where a SET value node is operand | {k="arith", op="+"|"-", a=, b=} |
-- {k="if_not_exists", path=, v=} | {k="list_append", a=, b=}.

local function parse_set_operand(P)
  local tok = peek(P)
  if tok.t == "name" and peek(P, 1).t == "(" then
    next_tok(P); next_tok(P)
    if tok.v == "if_not_exists" then
      local path = parse_path(P)
      expect(P, ",")
      local v = parse_set_operand(P)
      expect(P, ")")
      return { k = "if_not_exists", path = path, v = v }
    elseif tok.v == "list_append" then
      local a = parse_set_operand(P)
      expect(P, ",")
      local b = parse_set_operand(P)
      expect(P, ")")
      return { k = "list_append", a = a, b = b }
    elseif COND_FUNCS[tok.v] or tok.v == "size" then
      invalid(P, "The function is not allowed in an update expression; function: " .. tok.v)
    end
    invalid(P, "Invalid function name; function: " .. tok.v)
  end
  if tok.t == ":" then
    next_tok(P)
    return { k = "value", v = attr_value(P, tok) }
  end
  if tok.t == "name" or tok.t == "#" then return { k = "path", path = parse_path(P) } end
  syntax(P, tok)
end

local function parse_set_value(P)
  local a = parse_set_operand(P)
  local t = peek(P)
  if t.t == "+" or t.t == "-" then
    next_tok(P)
    return { k = "arith", op = t.v, a = a, b = parse_set_operand(P) }
  end
  return a
end

local CLAUSES = { SET = true, REMOVE = true, ADD = true, DELETE = true }

--- An UpdateExpression compiled, or nil.
function M.update(env, text)
  local kind = "UpdateExpression"
  if not nonempty(env, text, kind) then return nil end
  local P = tokenize(env, text, kind)
  local u = { set = {}, remove = {}, add = {}, delete = {}, paths = {} }
  local seen = {}
  while peek(P).t ~= "eof" do
    local tok = next_tok(P)
    local clause = tok.t == "name" and tok.v:upper()
    if not CLAUSES[clause] then syntax(P, tok) end
    if seen[clause] then
      invalid(P, ('The "%s" section can only be used once in an update expression;')
        :format(clause))
    end
    seen[clause] = true
    repeat
      local path = parse_path(P)
      u.paths[#u.paths + 1] = path
      if clause == "SET" then
        local eq = next_tok(P)
        if eq.t ~= "op" or eq.v ~= "=" then syntax(P, eq) end
        u.set[#u.set + 1] = { path = path, value = parse_set_value(P) }
      elseif clause == "REMOVE" then
        u.remove[#u.remove + 1] = path
      else
        local vt = expect(P, ":")
        local entry = { path = path, v = attr_value(P, vt) }
        table.insert(clause == "ADD" and u.add or u.delete, entry)
      end
    until not (peek(P).t == "," and next_tok(P))
  end
  -- Two actions on overlapping paths (one a prefix of the other) are refused.
  for i = 1, #u.paths do
    for j = i + 1, #u.paths do
      local a, b = u.paths[i], u.paths[j]
      local n, prefix = math.min(#a, #b), true
      for x = 1, n do if a[x] ~= b[x] then prefix = false break end end
      if prefix then
        invalid(P, ("Two document paths overlap with each other; must remove or rewrite one "
          .. "of these paths; path one: [%s], path two: [%s]"):format(
            table.concat(a, ", "), table.concat(b, ", ")))
      end
    end
  end
  return u
end

local function incorrect_operand(env, op, v)
  local names = { S = "STRING", N = "NUMBER", B = "BINARY", BOOL = "BOOLEAN", NULL = "NULL",
    M = "MAP", L = "LIST", SS = "SET", NS = "SET", BS = "SET" }
  vfail(env, ("Invalid UpdateExpression: Incorrect operand type for operator or function; "
    .. "operator: %s, operand type: %s"):format(op, names[V.type_of(v)] or "UNKNOWN"))
end

local function set_value(env, node, item)
  local k = node.k
  if k == "value" then return node.v end
  if k == "path" then
    local v = M.resolve(item, node.path)
    if v == nil then
      vfail(env, "The provided expression refers to an attribute that does not exist in the item")
    end
    return v
  end
  if k == "if_not_exists" then
    local v = M.resolve(item, node.path)
    if v ~= nil then return v end
    return set_value(env, node.v, item)
  end
  if k == "list_append" then
    local a, b = set_value(env, node.a, item), set_value(env, node.b, item)
    if not a.L then incorrect_operand(env, "list_append", a) end
    if not b.L then incorrect_operand(env, "list_append", b) end
    local out = {}
    for _, e in ipairs(a.L) do out[#out + 1] = V.copy(e) end
    for _, e in ipairs(b.L) do out[#out + 1] = V.copy(e) end
    return { L = out }
  end
  if k == "arith" then
    local a, b = set_value(env, node.a, item), set_value(env, node.b, item)
    if not a.N or not b.N then
      vfail(env, "An operand in the update expression has an incorrect data type")
    end
    local r = V.add_numbers(a.N, b.N, node.op == "-")
    if not r then
      vfail(env, "Number overflow. Attempting to store a number with magnitude larger than "
        .. "supported range")
    end
    return { N = r }
  end
end

-- The container that holds the last element of `path`, plus that element: a map's
-- attribute table and a key, or a list and a 1-based index. Fails when a parent is
-- missing or of the wrong type, as DynamoDB does.
local function parent_of(env, item, path)
  local cur = item
  for i = 1, #path - 1 do
    local e = path[i]
    local v
    if math.type(e) == "integer" then v = cur[e + 1] else v = cur[e] end
    local nxt = path[i + 1]
    if v == nil or (math.type(nxt) == "integer" and not v.L)
      or (math.type(nxt) ~= "integer" and not v.M) then
      vfail(env, "The document path provided in the update expression is invalid for update")
    end
    cur = v.L or v.M
  end
  local last = path[#path]
  if math.type(last) == "integer" then return cur, last + 1, true end
  return cur, last, false
end

local function assign(env, item, path, value)
  local c, key, is_list = parent_of(env, item, path)
  if is_list and key > #c then c[#c + 1] = value else c[key] = value end
end

--- Applies a compiled update to a copy of `item` (nil: a new item holding only the key
--- `key`). `key_names` are the table's key attributes, which no action may touch.
--- Returns the new item and the set of top-level attribute names the update touched
--- (for ReturnValues UPDATED_OLD / UPDATED_NEW).
function M.apply_update(env, u, item, key, key_names)
  local new = V.copy(item or key)
  local touched = {}
  for _, path in ipairs(u.paths) do
    if key_names[path[1]] then
      vfail(env, ("One or more parameter values were invalid: Cannot update attribute %s. "
        .. "This attribute is part of the key"):format(path[1]))
    end
    touched[path[1]] = true
  end
  -- Every right-hand side is evaluated against the item as it was before the update.
  local before = item or key
  local values = {}
  for i, a in ipairs(u.set) do values[i] = V.copy(set_value(env, a.value, before)) end
  for i, a in ipairs(u.set) do assign(env, new, a.path, values[i]) end
  for _, a in ipairs(u.add) do
    local cur = M.resolve(new, a.path)
    local t = V.type_of(a.v)
    if t == "N" then
      if cur ~= nil and not cur.N then incorrect_operand(env, "ADD", cur) end
      local r = cur and V.add_numbers(cur.N, a.v.N) or a.v.N
      assign(env, new, a.path, { N = r })
    elseif t == "SS" or t == "NS" or t == "BS" then
      if cur ~= nil and V.type_of(cur) ~= t then
        vfail(env, "An operand in the update expression has an incorrect data type")
      end
      local out = cur and V.copy(cur[t]) or {}
      for _, x in ipairs(a.v[t]) do
        if not has_member(t, out, x) then out[#out + 1] = x end
      end
      assign(env, new, a.path, { [t] = out })
    else
      incorrect_operand(env, "ADD", a.v)
    end
  end
  for _, a in ipairs(u.delete) do
    local t = V.type_of(a.v)
    if t ~= "SS" and t ~= "NS" and t ~= "BS" then incorrect_operand(env, "DELETE", a.v) end
    local cur = M.resolve(new, a.path)
    if cur ~= nil then
      if V.type_of(cur) ~= t then
        vfail(env, "An operand in the update expression has an incorrect data type")
      end
      local out = {}
      for _, x in ipairs(cur[t]) do
        if not has_member(t, a.v[t], x) then out[#out + 1] = x end
      end
      local c, k, is_list = parent_of(env, new, a.path)
      -- an emptied set disappears: DynamoDB stores no empty sets
      if #out == 0 then
        if is_list then table.remove(c, k) else c[k] = nil end
      else
        c[k] = { [t] = out }
      end
    end
  end
  -- Removals from one list go from the highest index down so indexes stay valid.
  local removes = {}
  for _, p in ipairs(u.remove) do removes[#removes + 1] = p end
  table.sort(removes, function(a, b)
    local x, y = a[#a], b[#b]
    if math.type(x) == "integer" and math.type(y) == "integer" then return x > y end
    return false
  end)
  for _, p in ipairs(removes) do
    local ok, c, k, is_list = pcall(parent_of, env, new, p)
    if ok then
      if is_list then
        if c[k] ~= nil then table.remove(c, k) end
      else
        c[k] = nil
      end
    end
  end
  return new, touched
end

--- Fails when some ExpressionAttributeNames/Values entry was used by no expression.
function M.finish(env)
  local function unused(given, used, what)
    local keys = {}
    for k in pairs(given) do if not used[k] then keys[#keys + 1] = k end end
    if #keys > 0 then
      table.sort(keys)
      vfail(env, ("Value provided in %s unused in expressions: keys: {%s}")
        :format(what, table.concat(keys, ", ")))
    end
  end
  unused(env.names, env.used_names, "ExpressionAttributeNames")
  unused(env.values, env.used_values, "ExpressionAttributeValues")
end

return M
