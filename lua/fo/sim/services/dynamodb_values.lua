-- DynamoDB AttributeValues for the simulator: checking them as DynamoDB checks them,
-- normalizing numbers as DynamoDB stores them, comparing, ordering and copying them.
-- Values are fo's Lua form of the model's AttributeValue union: {S="x"}, {N="1.5"},
-- {B=<raw bytes>}, {BOOL=true}, {NULL=true}, {M={...}}, {L={...}}, {SS={...}}, ...
local M = {}

local TYPES = { "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS" }
M.TYPES = TYPES

-- DynamoDB answers ValidationException for every malformed value; the raiser is passed
-- in so this module stays free of the ctx.
local function invalid(fail, msg)
  fail("ValidationException", msg)
end

--- The type letter of an AttributeValue (nil when it has none or several).
function M.type_of(v)
  if type(v) ~= "table" then return nil end
  local found
  for _, t in ipairs(TYPES) do
    if v[t] ~= nil then
      if found then return nil end
      found = t
    end
  end
  return found
end

-- Numbers -----------------------------------------------------------------------------

--- A decimal number string in DynamoDB's canonical form (no leading/trailing zeros, no
--- exponent, "-" only for negatives, "0" for zero): DynamoDB stores numbers normalized
--- and answers "250000.5" for "250000.50". nil when `s` is not a number. Precision: at
--- most 38 significant digits, magnitude 1e-130 .. 1e126 (DynamoDB's limits).
function M.normalize_number(s)
  if type(s) ~= "string" then return nil end
  local str = s:match("^%s*(.-)%s*$")
  local sign, int, frac, exp = str:match("^([-+]?)(%d*)%.?(%d*)[eE]([-+]?%d+)$")
  if not sign then
    sign, int, frac = str:match("^([-+]?)(%d*)%.?(%d*)$")
    exp = "0"
  end
  if not sign or (int == "" and frac == "") then return nil end
  if str:find("%.") and not str:find("%d%.") and not str:find("%.%d") then return nil end
  local digits = int .. frac
  local point = #int + tonumber(exp) -- decimal point position within digits
  local lead = digits:match("^0*()")
  digits = digits:sub(lead)
  point = point - (lead - 1)
  digits = digits:gsub("0+$", "")
  if digits == "" then return "0" end
  if #digits > 38 then return nil, "precision" end
  if point > 126 or point < -129 then return nil, "magnitude" end
  local out
  if point <= 0 then
    out = "0." .. ("0"):rep(-point) .. digits
  elseif point >= #digits then
    out = digits .. ("0"):rep(point - #digits)
  else
    out = digits:sub(1, point) .. "." .. digits:sub(point + 1)
  end
  return (sign == "-" and "-" or "") .. out
end

-- Sign, integer part and fraction part of a canonical number string.
local function parts(n)
  local neg = n:sub(1, 1) == "-"
  if neg then n = n:sub(2) end
  local int, frac = n:match("^(%d+)%.?(%d*)$")
  return neg, int, frac
end

-- Compares two non-negative decimal strings: -1, 0, 1.
local function cmp_abs(ai, af, bi, bf)
  if ai == "0" then ai = "" end
  if bi == "0" then bi = "" end
  if #ai ~= #bi then return #ai < #bi and -1 or 1 end
  if ai ~= bi then return ai < bi and -1 or 1 end
  local n = math.max(#af, #bf)
  af, bf = af .. ("0"):rep(n - #af), bf .. ("0"):rep(n - #bf)
  if af == bf then return 0 end
  return af < bf and -1 or 1
end

--- Compares two canonical number strings exactly (no float rounding): -1, 0, 1.
function M.compare_numbers(a, b)
  local an, ai, af = parts(a)
  local bn, bi, bf = parts(b)
  if a == "0" then an = false end
  if b == "0" then bn = false end
  if an ~= bn then return an and -1 or 1 end
  local c = cmp_abs(ai, af, bi, bf)
  return an and -c or c
end

-- Adds two non-negative decimal strings (int, frac) → canonical string.
local function add_abs(ai, af, bi, bf)
  local n = math.max(#af, #bf)
  af, bf = af .. ("0"):rep(n - #af), bf .. ("0"):rep(n - #bf)
  local a, b = ai .. af, bi .. bf
  local len = math.max(#a, #b)
  a, b = ("0"):rep(len - #a) .. a, ("0"):rep(len - #b) .. b
  local out, carry = {}, 0
  for i = len, 1, -1 do
    local d = a:byte(i) - 48 + b:byte(i) - 48 + carry
    out[i], carry = d % 10, d // 10
  end
  local s = (carry > 0 and tostring(carry) or "") .. table.concat(out)
  return s:sub(1, #s - n) .. (n > 0 and "." .. s:sub(#s - n + 1) or "")
end

-- Subtracts b from a, both non-negative with a >= b.
local function sub_abs(ai, af, bi, bf)
  local n = math.max(#af, #bf)
  af, bf = af .. ("0"):rep(n - #af), bf .. ("0"):rep(n - #bf)
  local a, b = ai .. af, bi .. bf
  local len = math.max(#a, #b)
  a, b = ("0"):rep(len - #a) .. a, ("0"):rep(len - #b) .. b
  local out, borrow = {}, 0
  for i = len, 1, -1 do
    local d = (a:byte(i) - 48) - (b:byte(i) - 48) - borrow
    if d < 0 then d, borrow = d + 10, 1 else borrow = 0 end
    out[i] = d
  end
  local s = table.concat(out)
  return s:sub(1, #s - n) .. (n > 0 and "." .. s:sub(#s - n + 1) or "")
end

--- a + b (or a - b when `negate_b`), exact decimal arithmetic on canonical strings, as
--- DynamoDB's SET x = x + :n and ADD do. Returns the canonical result or nil on overflow.
function M.add_numbers(a, b, negate_b)
  local an, ai, af = parts(a)
  local bn, bi, bf = parts(b)
  if negate_b then bn = not bn end
  local r
  if an == bn then
    r = add_abs(ai, af, bi, bf)
    if an then r = "-" .. r end
  else
    local c = cmp_abs(ai, af, bi, bf)
    if c == 0 then return "0" end
    if c > 0 then
      r = sub_abs(ai, af, bi, bf)
      if an then r = "-" .. r end
    else
      r = sub_abs(bi, bf, ai, af)
      if bn then r = "-" .. r end
    end
  end
  return M.normalize_number(r)
end

-- Checking -----------------------------------------------------------------------------

local SET_NAME = { SS = "string set", NS = "number set", BS = "binary set" }

--- Checks an AttributeValue as DynamoDB does and returns a stored copy (numbers
--- normalized). `fail(code, msg)` raises. Messages are DynamoDB's.
function M.check(v, fail, depth)
  depth = depth or 0
  if depth > 32 then
    invalid(fail, "Nesting Levels have exceeded supported limits")
  end
  if type(v) ~= "table" then
    invalid(fail, "Supplied AttributeValue is empty, must contain exactly one of the "
      .. "supported datatypes")
  end
  local n = 0
  for _, t in ipairs(TYPES) do if v[t] ~= nil then n = n + 1 end end
  if n == 0 then
    invalid(fail, "Supplied AttributeValue is empty, must contain exactly one of the "
      .. "supported datatypes")
  elseif n > 1 then
    invalid(fail, "Supplied AttributeValue has more than one datatypes set, must contain "
      .. "exactly one of the supported datatypes")
  end
  local t = M.type_of(v)
  local x = v[t]
  if t == "S" or t == "B" then
    return { [t] = x }
  elseif t == "N" then
    local norm, why = M.normalize_number(x)
    if not norm then
      if why == "precision" then
        invalid(fail, "Attempting to store more than 38 significant digits in a Number")
      elseif why == "magnitude" then
        invalid(fail, "Number overflow. Attempting to store a number with magnitude larger "
          .. "than supported range")
      end
      invalid(fail, "A value provided cannot be converted into a number")
    end
    return { N = norm }
  elseif t == "BOOL" then
    return { BOOL = x }
  elseif t == "NULL" then
    if x ~= true then
      invalid(fail, "One or more parameter values were invalid: Null attribute value types "
        .. "must have the value of true")
    end
    return { NULL = true }
  elseif t == "M" then
    local out = {}
    for k, e in pairs(x) do out[k] = M.check(e, fail, depth + 1) end
    return { M = out }
  elseif t == "L" then
    local out = {}
    for i, e in ipairs(x) do out[i] = M.check(e, fail, depth + 1) end
    return { L = out }
  else -- sets
    if #x == 0 then
      invalid(fail, ("One or more parameter values were invalid: An %s  may not be empty")
        :format(SET_NAME[t]))
    end
    local seen, out = {}, {}
    for i, e in ipairs(x) do
      local key = e
      if t == "NS" then
        key = M.normalize_number(e)
        if not key then invalid(fail, "A value provided cannot be converted into a number") end
      end
      if seen[key] then
        local shown = {}
        for j, y in ipairs(x) do shown[j] = t == "BS" and "<binary>" or y end
        invalid(fail, ("One or more parameter values were invalid: Input collection [%s] "
          .. "contains duplicates."):format(table.concat(shown, ", ")))
      end
      seen[key] = true
      out[i] = key
    end
    return { [t] = out }
  end
end

--- A deep copy of a stored value (handlers never hand out their stored tables).
M.copy = require("fo.sim.records").copy

-- Sets are unordered: equal when they hold the same members.
local function set_equal(a, b)
  if #a ~= #b then return false end
  local seen = {}
  for _, x in ipairs(a) do seen[x] = true end
  for _, x in ipairs(b) do if not seen[x] then return false end end
  return true
end

--- Deep equality of two stored AttributeValues (DynamoDB's = operator).
function M.equal(a, b)
  local ta, tb = M.type_of(a), M.type_of(b)
  if ta ~= tb or ta == nil then return false end
  local x, y = a[ta], b[tb]
  if ta == "N" then return M.compare_numbers(x, y) == 0 end
  if ta == "SS" or ta == "BS" then return set_equal(x, y) end
  if ta == "NS" then
    if #x ~= #y then return false end
    for _, e in ipairs(x) do
      local found = false
      for _, f in ipairs(y) do if M.compare_numbers(e, f) == 0 then found = true break end end
      if not found then return false end
    end
    return true
  end
  if ta == "M" then
    for k, e in pairs(x) do if not M.equal(e, y[k]) then return false end end
    for k in pairs(y) do if x[k] == nil then return false end end
    return true
  end
  if ta == "L" then
    if #x ~= #y then return false end
    for i = 1, #x do if not M.equal(x[i], y[i]) then return false end end
    return true
  end
  return x == y
end

--- Orders two scalar values of the same type (S and B by bytes, N numerically): -1/0/1,
--- or nil when they cannot be ordered (different or non-scalar types).
function M.order(a, b)
  local ta, tb = M.type_of(a), M.type_of(b)
  if ta ~= tb then return nil end
  if ta == "N" then return M.compare_numbers(a.N, b.N) end
  if ta == "S" or ta == "B" then
    local x, y = a[ta], b[ta]
    if x == y then return 0 end
    return x < y and -1 or 1 -- Lua compares strings bytewise in the C locale
  end
  return nil
end

--- The key string an item is stored under: its key values, type-tagged and hex-encoded so
--- any bytes (binary keys) are a safe JSON object key.
function M.key_string(item, hash_name, range_name)
  local function enc(v)
    local t = M.type_of(v)
    return t .. (v[t]:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
  end
  local s = enc(item[hash_name])
  if range_name then s = s .. "." .. enc(item[range_name]) end
  return s
end

return M
