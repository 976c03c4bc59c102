-- JMESPath (https://jmespath.org/specification.html) for the AWS models' waiter acceptors
-- and paginator tokens: a Pratt parser with jmespath.py's binding powers and a tree
-- evaluator. Everything but expression references (`&expr`, used by sort_by/max_by/...)
-- is supported; unsupported or malformed syntax fails at compile time, so a test can
-- compile every expression of every model.
--
-- Values are the Lua tables the codecs produce: arrays for lists, string keys for
-- structures and maps, nil for absent members. An empty table counts as an empty list.
-- JMESPath's null is nil, except inside arrays built by the expression itself
-- (multi-select lists, literals) where it is cjson.null so that arrays keep no holes.
local cjson = require "cjson"

local M = {}
local NULL = cjson.null
M.null = NULL

-- ---------------------------------------------------------------------------------------
-- Values

local function is_null(v) return v == nil or v == NULL end
local function denull(v) if v == NULL then return nil end return v end

local function is_array(v)
  return type(v) == "table" and (v[1] ~= nil or next(v) == nil)
end

local function is_object(v)
  return type(v) == "table" and v[1] == nil and next(v) ~= nil
end

local function jtype(v)
  if is_null(v) then return "null" end
  local t = type(v)
  if t == "string" then return "string" end
  if t == "number" then return "number" end
  if t == "boolean" then return "boolean" end
  if is_array(v) then return "array" end
  if is_object(v) then return "object" end
  return t
end

local function truthy(v)
  if is_null(v) or v == false or v == "" then return false end
  if type(v) == "table" and next(v) == nil then return false end
  return true
end
M.truthy = truthy

local function equal(a, b)
  a, b = denull(a), denull(b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.equal = equal

-- ---------------------------------------------------------------------------------------
-- Lexer

local SIMPLE = {
  ["."] = "dot", ["*"] = "star", ["]"] = "rbracket", ["{"] = "lbrace", ["}"] = "rbrace",
  ["("] = "lparen", [")"] = "rparen", [","] = "comma", [":"] = "colon", ["@"] = "current",
}

local function lex_error(expr, pos, what)
  error(("jmespath: %s at position %d in '%s'"):format(what, pos, expr), 0)
end

-- A JSON string literal (quoted identifier) starting at pos ('"'); returns value, next.
local function lex_quoted(expr, pos)
  local i = pos + 1
  while true do
    local c = expr:sub(i, i)
    if c == "" then lex_error(expr, pos, "unterminated quoted identifier") end
    if c == "\\" then i = i + 2
    elseif c == '"' then break
    else i = i + 1 end
  end
  local ok, v = pcall(cjson.decode, expr:sub(pos, i))
  if not ok then lex_error(expr, pos, "bad quoted identifier") end
  return v, i + 1
end

local function tokenize(expr)
  local tokens, pos, n = {}, 1, #expr
  local function add(type_, value, start)
    tokens[#tokens + 1] = { type = type_, value = value, pos = start }
  end
  while pos <= n do
    local c = expr:sub(pos, pos)
    local two = expr:sub(pos, pos + 1)
    if c:match("%s") then
      pos = pos + 1
    elseif c:match("[%a_]") then
      local word = expr:match("^[%w_]+", pos)
      add("unquoted_identifier", word, pos)
      pos = pos + #word
    elseif c:match("%d") or (c == "-" and expr:sub(pos + 1, pos + 1):match("%d")) then
      local num = expr:match("^%-?%d+", pos)
      add("number", tonumber(num), pos)
      pos = pos + #num
    elseif c == "[" then
      if two == "[]" then add("flatten", nil, pos); pos = pos + 2
      elseif two == "[?" then add("filter", nil, pos); pos = pos + 2
      else add("lbracket", nil, pos); pos = pos + 1 end
    elseif two == "||" then add("or", nil, pos); pos = pos + 2
    elseif two == "&&" then add("and", nil, pos); pos = pos + 2
    elseif two == "==" then add("eq", nil, pos); pos = pos + 2
    elseif two == "!=" then add("ne", nil, pos); pos = pos + 2
    elseif two == "<=" then add("lte", nil, pos); pos = pos + 2
    elseif two == ">=" then add("gte", nil, pos); pos = pos + 2
    elseif c == "<" then add("lt", nil, pos); pos = pos + 1
    elseif c == ">" then add("gt", nil, pos); pos = pos + 1
    elseif c == "!" then add("not", nil, pos); pos = pos + 1
    elseif c == "|" then add("pipe", nil, pos); pos = pos + 1
    elseif c == "&" then
      lex_error(expr, pos, "expression references (&) are not supported")
    elseif SIMPLE[c] then
      add(SIMPLE[c], nil, pos); pos = pos + 1
    elseif c == '"' then
      local v, nxt = lex_quoted(expr, pos)
      add("quoted_identifier", v, pos)
      pos = nxt
    elseif c == "'" then
      -- Raw string: only \' is an escape.
      local i, buf = pos + 1, {}
      while true do
        local ch = expr:sub(i, i)
        if ch == "" then lex_error(expr, pos, "unterminated raw string") end
        if ch == "\\" and expr:sub(i + 1, i + 1) == "'" then buf[#buf + 1] = "'"; i = i + 2
        elseif ch == "'" then break
        else buf[#buf + 1] = ch; i = i + 1 end
      end
      add("literal", table.concat(buf), pos)
      pos = i + 1
    elseif c == "`" then
      local i, buf = pos + 1, {}
      while true do
        local ch = expr:sub(i, i)
        if ch == "" then lex_error(expr, pos, "unterminated literal") end
        if ch == "\\" and expr:sub(i + 1, i + 1) == "`" then buf[#buf + 1] = "`"; i = i + 2
        elseif ch == "`" then break
        else buf[#buf + 1] = ch; i = i + 1 end
      end
      local ok, v = pcall(cjson.decode, table.concat(buf))
      if not ok then lex_error(expr, pos, "bad JSON literal") end
      add("literal", v, pos)
      pos = i + 1
    else
      lex_error(expr, pos, ("unexpected character '%s'"):format(c))
    end
  end
  add("eof", nil, n + 1)
  return tokens
end

-- ---------------------------------------------------------------------------------------
-- Parser (binding powers as in jmespath.py)

local BP = {
  eof = 0, unquoted_identifier = 0, quoted_identifier = 0, literal = 0, rbracket = 0,
  rparen = 0, comma = 0, rbrace = 0, number = 0, current = 0, colon = 0,
  pipe = 1, ["or"] = 2, ["and"] = 3,
  eq = 5, ne = 5, gt = 5, lt = 5, gte = 5, lte = 5,
  flatten = 9, star = 20, filter = 21, dot = 40, ["not"] = 45, lbrace = 50, lbracket = 55,
  lparen = 60,
}
local PROJECTION_STOP = 10
local COMPARATORS = { eq = "==", ne = "!=", gt = ">", lt = "<", gte = ">=", lte = "<=" }

local Parser = {}
Parser.__index = Parser

function Parser:peek(k) return self.tokens[self.i + (k or 0)] end
function Parser:advance() self.i = self.i + 1 end

function Parser:fail(tok, what)
  local shown = tok.type == "eof" and "end of expression" or ("'%s'"):format(
    tok.value ~= nil and tostring(tok.value) or tok.type)
  error(("jmespath: %s: unexpected %s at position %d in '%s'"):format(what, shown, tok.pos,
    self.expr), 0)
end

function Parser:match(type_, what)
  local tok = self:peek()
  if tok.type ~= type_ then self:fail(tok, what or ("expected " .. type_)) end
  self:advance()
  return tok
end

function Parser:expression(bp)
  local tok = self:peek()
  self:advance()
  local left = self:nud(tok)
  while bp < (BP[self:peek().type] or 0) do
    local op = self:peek()
    self:advance()
    left = self:led(op, left)
  end
  return left
end

local IDENTITY = { type = "identity" }

function Parser:projection_rhs(bp)
  local t = self:peek().type
  if (BP[t] or 0) < PROJECTION_STOP then return IDENTITY end
  if t == "lbracket" or t == "filter" then return self:expression(bp) end
  if t == "dot" then
    self:advance()
    return self:dot_rhs(bp)
  end
  self:fail(self:peek(), "after a projection")
end

function Parser:dot_rhs(bp)
  local t = self:peek().type
  if t == "quoted_identifier" or t == "unquoted_identifier" or t == "star" then
    return self:expression(bp)
  elseif t == "lbracket" then
    self:advance()
    return self:multiselect_list()
  elseif t == "lbrace" then
    self:advance()
    return self:multiselect_hash()
  end
  self:fail(self:peek(), "after '.'")
end

function Parser:multiselect_list()
  local items = {}
  repeat
    items[#items + 1] = self:expression(0)
    local more = self:peek().type == "comma"
    if more then self:advance() end
  until not more
  self:match("rbracket", "in a multi-select list")
  return { type = "multiselect_list", items = items }
end

function Parser:multiselect_hash()
  local pairs_ = {}
  repeat
    local key = self:peek()
    if key.type ~= "quoted_identifier" and key.type ~= "unquoted_identifier" then
      self:fail(key, "expected a key in a multi-select hash")
    end
    self:advance()
    self:match("colon", "in a multi-select hash")
    pairs_[#pairs_ + 1] = { key = key.value, value = self:expression(0) }
    local more = self:peek().type == "comma"
    if more then self:advance() end
  until not more
  self:match("rbrace", "in a multi-select hash")
  return { type = "multiselect_hash", pairs = pairs_ }
end

-- After '[' when the next token is a number or ':': an index or a slice.
function Parser:index_expression()
  local parts, idx = { nil, nil, nil }, 1
  local saw_colon = false
  while self:peek().type ~= "rbracket" do
    local t = self:peek()
    if t.type == "colon" then
      saw_colon = true
      idx = idx + 1
      if idx > 3 then self:fail(t, "too many ':' in a slice") end
      self:advance()
    elseif t.type == "number" then
      parts[idx] = t.value
      self:advance()
    else
      self:fail(t, "in an index or slice")
    end
  end
  self:advance()
  if not saw_colon then return { type = "index", value = parts[1] } end
  if parts[3] == 0 then error(("jmespath: slice step cannot be 0 in '%s'"):format(self.expr), 0) end
  return { type = "slice", start = parts[1], stop = parts[2], step = parts[3] }
end

function Parser:project_if_slice(left, right)
  local node = { type = "index_expression", left = left, right = right }
  if right.type == "slice" then
    return { type = "projection", left = node, right = self:projection_rhs(BP.star) }
  end
  return node
end

function Parser:nud(tok)
  local t = tok.type
  if t == "literal" then return { type = "literal", value = tok.value } end
  if t == "unquoted_identifier" or t == "quoted_identifier" then
    return { type = "field", name = tok.value }
  end
  if t == "current" then return IDENTITY end
  if t == "star" then
    return { type = "value_projection", left = IDENTITY, right = self:projection_rhs(BP.star) }
  end
  if t == "filter" then return self:led(tok, IDENTITY) end
  if t == "lbrace" then return self:multiselect_hash() end
  if t == "lparen" then
    local e = self:expression(0)
    self:match("rparen", "expected ')'")
    return e
  end
  if t == "flatten" then
    return { type = "projection", left = { type = "flatten", node = IDENTITY },
             right = self:projection_rhs(BP.flatten) }
  end
  if t == "not" then return { type = "not", node = self:expression(BP["not"]) } end
  if t == "lbracket" then
    local nt = self:peek().type
    if nt == "number" or nt == "colon" then
      return self:project_if_slice(IDENTITY, self:index_expression())
    elseif nt == "star" and self:peek(1).type == "rbracket" then
      self:advance(); self:advance()
      return { type = "projection", left = IDENTITY, right = self:projection_rhs(BP.star) }
    end
    return self:multiselect_list()
  end
  self:fail(tok, "expected an expression")
end

function Parser:led(tok, left)
  local t = tok.type
  if t == "dot" then
    if self:peek().type ~= "star" then
      local right = self:dot_rhs(BP.dot)
      return { type = "subexpression", left = left, right = right }
    end
    self:advance()
    return { type = "value_projection", left = left, right = self:projection_rhs(BP.dot) }
  end
  if t == "pipe" then return { type = "pipe", left = left, right = self:expression(BP.pipe) } end
  if t == "or" then return { type = "or", left = left, right = self:expression(BP["or"]) } end
  if t == "and" then return { type = "and", left = left, right = self:expression(BP["and"]) } end
  if COMPARATORS[t] then
    return { type = "comparator", op = t, left = left, right = self:expression(BP[t]) }
  end
  if t == "lparen" then
    if left.type ~= "field" then self:fail(tok, "only a function name can be called") end
    local args = {}
    while self:peek().type ~= "rparen" do
      args[#args + 1] = self:expression(0)
      if self:peek().type == "comma" then self:advance() end
    end
    self:advance()
    local fn = M.functions[left.name]
    if not fn then
      error(("jmespath: unknown function %s() in '%s'"):format(left.name, self.expr), 0)
    end
    if #args < fn.min or #args > fn.max then
      error(("jmespath: %s() takes %s argument%s, got %d in '%s'"):format(left.name,
        fn.min == fn.max and tostring(fn.min) or (fn.min .. " to " .. fn.max),
        fn.max == 1 and "" or "s", #args, self.expr), 0)
    end
    return { type = "function", name = left.name, args = args }
  end
  if t == "filter" then
    local cond = self:expression(0)
    self:match("rbracket", "expected ']' after a filter")
    local right = self:peek().type == "flatten" and IDENTITY or self:projection_rhs(BP.filter)
    return { type = "filter_projection", left = left, right = right, cond = cond }
  end
  if t == "flatten" then
    return { type = "projection", left = { type = "flatten", node = left },
             right = self:projection_rhs(BP.flatten) }
  end
  if t == "lbracket" then
    local nt = self:peek().type
    if nt == "number" or nt == "colon" then
      return self:project_if_slice(left, self:index_expression())
    end
    self:match("star", "expected a number, ':' or '*' after '['")
    self:match("rbracket", "expected ']'")
    return { type = "projection", left = left, right = self:projection_rhs(BP.star) }
  end
  self:fail(tok, "unexpected operator")
end

-- ---------------------------------------------------------------------------------------
-- Evaluation

local eval

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function slice(list, start, stop, step)
  step = step or 1
  local n = #list
  local function clamp(v, dflt)
    if v == nil then return dflt end
    if v < 0 then v = v + n; if v < 0 then v = step < 0 and -1 or 0 end
    elseif v >= n then v = step < 0 and n - 1 or n end
    return v
  end
  local out = {}
  local s = clamp(start, step < 0 and n - 1 or 0)
  local e = clamp(stop, step < 0 and -1 or n)
  local i = s
  while (step > 0 and i < e) or (step < 0 and i > e) do
    out[#out + 1] = list[i + 1]
    i = i + step
  end
  return out
end

local function project(list, node)
  local out = {}
  for _, item in ipairs(list) do
    local v = eval(node, item)
    if not is_null(v) then out[#out + 1] = v end
  end
  return out
end

function eval(node, v)
  local t = node.type
  if t == "identity" then return v end
  if t == "field" then
    if type(v) == "table" then return denull(v[node.name]) end
    return nil
  end
  if t == "literal" then return denull(node.value) end
  if t == "subexpression" or t == "pipe" then return eval(node.right, eval(node.left, v)) end
  if t == "index_expression" then return eval(node.right, eval(node.left, v)) end
  if t == "index" then
    if not is_array(v) then return nil end
    local i = node.value
    if i < 0 then i = #v + i end
    return denull(v[i + 1])
  end
  if t == "slice" then
    if not is_array(v) then return nil end
    return slice(v, node.start, node.stop, node.step)
  end
  if t == "projection" then
    local base = eval(node.left, v)
    if not is_array(base) then return nil end
    return project(base, node.right)
  end
  if t == "value_projection" then
    local base = eval(node.left, v)
    if not is_object(base) then return nil end
    local values = {}
    for _, k in ipairs(sorted_keys(base)) do values[#values + 1] = base[k] end
    return project(values, node.right)
  end
  if t == "flatten" then
    local base = eval(node.node, v)
    if not is_array(base) then return nil end
    local out = {}
    for _, item in ipairs(base) do
      if is_array(item) then
        for _, x in ipairs(item) do out[#out + 1] = x end
      else
        out[#out + 1] = item
      end
    end
    return out
  end
  if t == "filter_projection" then
    local base = eval(node.left, v)
    if not is_array(base) then return nil end
    local out = {}
    for _, item in ipairs(base) do
      if truthy(eval(node.cond, item)) then
        local r = eval(node.right, item)
        if not is_null(r) then out[#out + 1] = r end
      end
    end
    return out
  end
  if t == "comparator" then
    local a, b = eval(node.left, v), eval(node.right, v)
    if node.op == "eq" then return equal(a, b) end
    if node.op == "ne" then return not equal(a, b) end
    -- Ordering: numbers, or two strings (as jmespath.py does); anything else is null.
    if not ((type(a) == "number" and type(b) == "number")
        or (type(a) == "string" and type(b) == "string")) then
      return nil
    end
    if node.op == "gt" then return a > b end
    if node.op == "lt" then return a < b end
    if node.op == "gte" then return a >= b end
    return a <= b
  end
  if t == "or" then
    local a = eval(node.left, v)
    if truthy(a) then return a end
    return eval(node.right, v)
  end
  if t == "and" then
    local a = eval(node.left, v)
    if not truthy(a) then return a end
    return eval(node.right, v)
  end
  if t == "not" then return not truthy(eval(node.node, v)) end
  if is_null(v) and (t == "multiselect_list" or t == "multiselect_hash") then return nil end
  if t == "multiselect_list" then
    local out = {}
    for i, item in ipairs(node.items) do
      local r = eval(item, v)
      if r == nil then r = NULL end
      out[i] = r
    end
    return out
  end
  if t == "multiselect_hash" then
    local out = {}
    for _, p in ipairs(node.pairs) do out[p.key] = eval(p.value, v) end
    return out
  end
  if t == "function" then
    local args = {}
    for i, a in ipairs(node.args) do args[i] = eval(a, v) end
    return M.functions[node.name].fn(node.name, args, #node.args)
  end
  error("jmespath: internal error: unknown node " .. tostring(t), 0)
end

-- ---------------------------------------------------------------------------------------
-- Functions (type errors raise, as the specification says)

local function want(name, i, v, ...)
  local got = jtype(v)
  for k = 1, select("#", ...) do
    if got == select(k, ...) then return v end
  end
  error(("jmespath: %s() argument %d: expected %s, got %s"):format(name, i,
    table.concat({ ... }, " or "), got), 0)
end

local function numbers_or_strings(name, list)
  want(name, 1, list, "array")
  local kind
  for _, x in ipairs(list) do
    local k = jtype(x)
    if (k ~= "number" and k ~= "string") or (kind and k ~= kind) then
      error(("jmespath: %s() expects an array of numbers or of strings"):format(name), 0)
    end
    kind = k
  end
  return list
end

local function fn(min, max, f) return { min = min, max = max, fn = f } end

M.functions = {
  length = fn(1, 1, function(name, a)
    local v = want(name, 1, a[1], "string", "array", "object")
    if type(v) == "string" then return utf8.len(v) or #v end
    if is_array(v) then return #v end
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    return n
  end),
  contains = fn(2, 2, function(name, a)
    local subject = want(name, 1, a[1], "array", "string")
    if type(subject) == "string" then
      return type(a[2]) == "string" and subject:find(a[2], 1, true) ~= nil
    end
    for _, x in ipairs(subject) do
      if equal(x, a[2]) then return true end
    end
    return false
  end),
  starts_with = fn(2, 2, function(name, a)
    local s, p = want(name, 1, a[1], "string"), want(name, 2, a[2], "string")
    return s:sub(1, #p) == p
  end),
  ends_with = fn(2, 2, function(name, a)
    local s, p = want(name, 1, a[1], "string"), want(name, 2, a[2], "string")
    return p == "" or s:sub(-#p) == p
  end),
  not_null = fn(1, math.huge, function(_, a, n)
    for i = 1, n do
      if not is_null(a[i]) then return a[i] end
    end
    return nil
  end),
  type = fn(1, 1, function(_, a) return jtype(a[1]) end),
  keys = fn(1, 1, function(name, a)
    local v = want(name, 1, a[1], "object", "array")
    return is_array(v) and {} or sorted_keys(v)
  end),
  values = fn(1, 1, function(name, a)
    local v = want(name, 1, a[1], "object", "array")
    if is_array(v) then return v end
    local out = {}
    for _, k in ipairs(sorted_keys(v)) do out[#out + 1] = v[k] end
    return out
  end),
  to_string = fn(1, 1, function(_, a)
    if type(a[1]) == "string" then return a[1] end
    return cjson.encode(is_null(a[1]) and NULL or a[1])
  end),
  to_number = fn(1, 1, function(_, a)
    if type(a[1]) == "number" then return a[1] end
    if type(a[1]) == "string" then return tonumber(a[1]) end
    return nil
  end),
  to_array = fn(1, 1, function(_, a)
    if is_array(a[1]) then return a[1] end
    return { a[1] == nil and NULL or a[1] }
  end),
  join = fn(2, 2, function(name, a)
    local sep, list = want(name, 1, a[1], "string"), want(name, 2, a[2], "array")
    for _, x in ipairs(list) do want(name, 2, x, "string") end
    return table.concat(list, sep)
  end),
  abs = fn(1, 1, function(name, a) return math.abs(want(name, 1, a[1], "number")) end),
  ceil = fn(1, 1, function(name, a) return math.ceil(want(name, 1, a[1], "number")) end),
  floor = fn(1, 1, function(name, a) return math.floor(want(name, 1, a[1], "number")) end),
  sum = fn(1, 1, function(name, a)
    local total = 0
    for _, x in ipairs(want(name, 1, a[1], "array")) do total = total + want(name, 1, x, "number") end
    return total
  end),
  max = fn(1, 1, function(name, a)
    local best
    for _, x in ipairs(numbers_or_strings(name, a[1])) do
      if best == nil or x > best then best = x end
    end
    return best
  end),
  min = fn(1, 1, function(name, a)
    local best
    for _, x in ipairs(numbers_or_strings(name, a[1])) do
      if best == nil or x < best then best = x end
    end
    return best
  end),
  sort = fn(1, 1, function(name, a)
    local out = {}
    for i, x in ipairs(numbers_or_strings(name, a[1])) do out[i] = x end
    table.sort(out)
    return out
  end),
  reverse = fn(1, 1, function(name, a)
    local v = want(name, 1, a[1], "array", "string")
    if type(v) == "string" then return v:reverse() end
    local out = {}
    for i = #v, 1, -1 do out[#out + 1] = v[i] end
    return out
  end),
}

-- ---------------------------------------------------------------------------------------
-- API

local cache = {}

--- Compiles an expression (cached); raises "jmespath: ..." on syntax it does not support.
--- Returns an object with :search(value).
function M.compile(expr)
  local c = cache[expr]
  if c then return c end
  if type(expr) ~= "string" then error("jmespath: expression must be a string", 2) end
  local p = setmetatable({ expr = expr, tokens = tokenize(expr), i = 1 }, Parser)
  local ast = p:expression(0)
  if p:peek().type ~= "eof" then p:fail(p:peek(), "expected end of expression") end
  c = { expr = expr, ast = ast, search = function(self, value) return eval(self.ast, value) end }
  cache[expr] = c
  return c
end

--- Evaluates expr on value; JMESPath null is nil.
function M.search(expr, value)
  return eval(M.compile(expr).ast, value)
end

return M
