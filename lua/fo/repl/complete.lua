-- The REPL's completion: from the text before the cursor, the names that can follow —
-- session variables and globals, fields after `a.b.`, a client's operations and methods
-- after `ec2:`, and an operation's member names inside its params table (from the model).
local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until",
  "while" }

local function client_mod()
  local ok, m = pcall(require, "fo.aws.client")
  return ok and m or nil
end

local function is_client(v)
  local c = client_mod()
  return c ~= nil and c.is(v)
end

-- v[k] without raising (clients raise on unknown names, objects may have odd __index).
local function get(v, k)
  local t = type(v)
  if t ~= "table" and t ~= "userdata" and t ~= "string" then return nil end
  local ok, r = pcall(function() return v[k] end)
  if ok then return r end
  return nil
end

-- The names a value offers: its keys, its metatable's __index table's keys and the
-- names its metatable lists in __complete (modules loaded on first use).
local function names_of(v, seen)
  seen = seen or {}
  local out = {}
  if seen[v] then return out end
  seen[v] = true
  if type(v) == "table" then
    pcall(function()
      for k, x in pairs(v) do
        if type(k) == "string" then out[k] = x end
      end
    end)
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    local extra = rawget(mt, "__complete")
    if type(extra) == "function" then
      local ok, r = pcall(extra, v)
      extra = ok and r or nil
    end
    if type(extra) == "table" then
      for _, k in ipairs(extra) do if out[k] == nil then out[k] = true end end
    end
    local index = rawget(mt, "__index")
    if type(index) == "table" and index ~= v then
      for k, x in pairs(names_of(index, seen)) do
        if out[k] == nil and not k:match("^__") then out[k] = x end
      end
    end
  end
  return out
end

-- Looks up a dotted path ("aws", "s.client") in the session environment.
local function resolve(env, path)
  local v = env
  for name in path:gmatch("[^%.]+") do
    if not name:match("^[%a_][%w_]*$") then return nil end
    v = get(v, name)
    if v == nil then return nil end
  end
  return v
end

local function client_methods(v)
  local out = {}
  for _, op in ipairs(v:operations()) do out[#out + 1] = op end
  for _, m in ipairs({ "operations", "waiters", "help", "paginate", "items", "wait" }) do
    out[#out + 1] = m
  end
  return out
end

-- Names after `path.` (fields) or `path:` (methods: functions only).
local function member_names(v, sep)
  if sep == ":" and is_client(v) then return client_methods(v) end
  if sep == ":" and type(v) == "string" then v = string end
  if sep == "." and is_client(v) then
    return { "service", "region", "profile", "endpoint", "model" }
  end
  local out = {}
  for k, x in pairs(names_of(v)) do
    if k:match("^[%a_][%w_]*$") and (sep == "." or type(x) == "function" or x == true) then
      out[#out + 1] = k
    end
  end
  return out
end

-- Skips a quoted string starting at i (the quote); returns the index after it, or nil
-- when it is not closed before the end of the text.
local function skip_string(s, i)
  local q = s:sub(i, i)
  local j = i + 1
  while j <= #s do
    local c = s:sub(j, j)
    if c == "\\" then
      j = j + 2
    elseif c == q then
      return j + 1
    else
      j = j + 1
    end
  end
  return nil
end

-- The open table constructors at the end of `s`, outermost first: each {label = what
-- precedes the `{` ("call", "key" or "item"), name = the key or `path:Op`}. nil when
-- the cursor is inside a string.
local function open_braces(s)
  local stack = {}
  local i = 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == '"' or c == "'" then
      i = skip_string(s, i)
      if not i then return nil end
    elseif c == "-" and s:sub(i, i + 1) == "--" then
      return nil
    elseif c == "{" then
      local before = s:sub(1, i - 1)
      local path, op = before:match("([%a_][%w_%.]*):([%a_][%w_]*)%s*%(?%s*$")
      local key = before:match("([%a_][%w_]*)%s*=%s*$")
      if path then
        stack[#stack + 1] = { label = "call", path = path, op = op }
      elseif key then
        stack[#stack + 1] = { label = "key", name = key }
      else
        stack[#stack + 1] = { label = "item" }
      end
      i = i + 1
    elseif c == "}" then
      stack[#stack] = nil
      i = i + 1
    else
      i = i + 1
    end
  end
  return stack
end

-- The structure shape the innermost open brace stands for, following the braces from
-- the operation's input shape; nil when they lead elsewhere.
local function shape_at(env, braces)
  local start
  for i = #braces, 1, -1 do
    if braces[i].label == "call" then
      start = i
      break
    end
  end
  if not start then return nil end
  local client = resolve(env, braces[start].path)
  if not is_client(client) then return nil end
  local model = client.model
  local op = model.operations[braces[start].op]
  if not op or not op.input then return nil end
  local shapes = model.shapes
  local shape = shapes[op.input.shape]
  for i = start + 1, #braces do
    if not shape then return nil end
    local b = braces[i]
    if b.label == "key" and shape.type == "structure" then
      local m = shape.members and shape.members[b.name]
      shape = m and shapes[m.shape]
    elseif b.label == "item" and shape.type == "list" then
      shape = shapes[shape.member.shape]
    else
      return nil
    end
    -- a list member's items are the structures whose keys are completed
    if shape and shape.type == "list" and i == #braces and b.label == "key" then
      return nil
    end
  end
  if shape and shape.type == "list" then shape = shapes[shape.member.shape] end
  return shape and shape.type == "structure" and shape or nil
end

local function sorted_matches(names, partial)
  local seen, out = {}, {}
  for _, n in ipairs(names) do
    if not seen[n] and n:sub(1, #partial) == partial then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  table.sort(out)
  return out
end

--- The names that complete the identifier before the cursor, given the line up to the
--- cursor and the session environment (whose __index is _G).
function M.names(env, line)
  local partial = line:match("[%a_][%w_]*$") or ""
  local before = line:sub(1, #line - #partial)
  local path, sep = before:match("([%a_][%w_%.]*)([%.:])$")
  if path and not before:sub(1, #before - #path - 1):match("[%w_%.:]$") then
    local v = resolve(env, path)
    if v == nil then return {} end
    return sorted_matches(member_names(v, sep), partial)
  end
  if before:match("[%.:]$") then return {} end
  local braces = open_braces(before)
  if braces == nil then return {} end
  if #braces > 0 and before:match("[{,;]%s*$") then
    local shape = shape_at(env, braces)
    if shape then
      local names = {}
      for k in pairs(shape.members or {}) do names[#names + 1] = k end
      return sorted_matches(names, partial)
    end
  end
  local names = {}
  for k in pairs(names_of(env)) do names[#names + 1] = k end
  for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
  local out = {}
  for _, n in ipairs(sorted_matches(names, partial)) do
    if n:match("^[%a_][%w_]*$") and not n:match("^_[%u]") then out[#out + 1] = n end
  end
  return out
end

--- The completer for fo.edit: (line before the cursor, the word libedit replaces) →
--- replacements for that word (its text up to the name being completed, then each name).
function M.completer(env)
  return function(line, word)
    local partial = line:match("[%a_][%w_]*$") or ""
    if #partial > #word then return {} end
    local head = word:sub(1, #word - #partial)
    local out = {}
    for i, n in ipairs(M.names(env, line)) do out[i] = head .. n end
    return out
  end
end

return M
