-- Listener rule conditions of an Application Load Balancer: their validation as ELBv2
-- applies it (CreateRule / ModifyRule), the form DescribeRules answers them in, and how
-- a request is matched against them (docs/simulator.md, "ELBv2 listener rules").
--
-- AWS's rules (API reference RuleCondition and its *ConditionConfig types; ALB guide,
-- "Condition types for listener rules" and "Quotas"):
--   * at most one each of host-header, http-request-method, path-pattern and source-ip;
--     any number of http-header and query-string conditions;
--   * Values only for host-header and path-pattern (a single value there), otherwise the
--     field's *Config; a value is never empty;
--   * host names up to 128 characters of A-Z a-z 0-9 - . and the wildcards * ?; path
--     patterns up to 128 characters of A-Z a-z 0-9 _ - . $ / ~ " ' @ : + & and * ?;
--     header names up to 40 characters without wildcards, header values up to 128;
--     methods up to 40 characters of A-Z _ - without wildcards; query-string keys and
--     values up to 128; source-ip values are CIDR blocks, without wildcards;
--   * at most 5 condition values and 5 wildcards in a whole rule.
local C = require "fo.sim.services.ec2.common"

local M = {}

M.MAX_VALUES = 5
M.MAX_WILDCARDS = 5

local ONCE = { ["host-header"] = true, ["http-request-method"] = true,
  ["path-pattern"] = true, ["source-ip"] = true }
local CONFIG = { ["host-header"] = "HostHeaderConfig", ["path-pattern"] = "PathPatternConfig",
  ["http-header"] = "HttpHeaderConfig", ["http-request-method"] = "HttpRequestMethodConfig",
  ["query-string"] = "QueryStringConfig", ["source-ip"] = "SourceIpConfig" }

local function wildcards(s)
  local _, n = s:gsub("[%*%?]", "")
  return n
end

-- A CIDR block, IPv4 ("10.0.0.0/8") or IPv6 ("2001:db8::/32").
local function cidr(v)
  if C.parse_cidr(v) then return true end
  local addr, n = v:match("^([%x:]+)/(%d+)$")
  return addr ~= nil and addr:find(":", 1, true) ~= nil and tonumber(n) <= 128
end

-- Checks one value of `field` (`what` names it in messages); returns its wildcard count.
local function check_value(fail, field, what, v)
  if v == nil or v == "" then fail(("A condition value cannot be empty (%s)"):format(what)) end
  local function bad(rule)
    fail(("The %s condition value '%s' is not valid: %s"):format(field, v, rule))
  end
  if field == "host-header" then
    if #v > 128 or not v:match("^[%w%-%.%*%?]+$") then
      bad("up to 128 characters of A-Z, a-z, 0-9, - . * ?")
    end
  elseif field == "path-pattern" then
    if #v > 128 or not v:match("^[%w_%-%.%$/~\"'@:%+&%*%?;]+$") then
      bad("up to 128 characters of A-Z, a-z, 0-9, _ - . $ / ~ \" ' @ : + & * ?")
    end
  elseif field == "http-request-method" then
    if #v > 40 or not v:match("^[A-Z_%-]+$") then
      bad("up to 40 characters of A-Z, _ and -, without wildcards")
    end
  elseif field == "source-ip" then
    if not cidr(v) then bad("a CIDR block such as 192.0.2.0/24, without wildcards") end
    return 0
  elseif #v > 128 then
    bad("at most 128 characters")
  end
  return wildcards(v)
end

--- Validates `conditions` (CreateRule/ModifyRule's Conditions) and answers them in the
--- form DescribeRules gives. `fail(message)` raises the ValidationError.
function M.normalize(conditions, fail)
  if not conditions or #conditions == 0 then fail("A rule must have at least one condition") end
  local seen, out, nvalues, nwild = {}, {}, 0, 0
  for i, c in ipairs(conditions) do
    local field = c.Field
    if not CONFIG[field] then
      fail(("Condition field '%s' is not valid; it must be one of host-header, http-header, "
        .. "http-request-method, path-pattern, query-string, source-ip"):format(tostring(field)))
    end
    if ONCE[field] and seen[field] then
      fail(("A rule can have at most one '%s' condition"):format(field))
    end
    seen[field] = true
    for f, key in pairs(CONFIG) do
      if f ~= field and c[key] ~= nil then
        fail(("%s can be specified only when the condition field is '%s'"):format(key, f))
      end
    end
    if c.RegexValues or (c[CONFIG[field]] and c[CONFIG[field]].RegexValues) then
      fail("Regular expression conditions (RegexValues) are not supported by the simulator")
    end
    local cfg = c[CONFIG[field]]
    local n = { Field = field }
    local what = ("condition %d"):format(i)
    if c.Values ~= nil and #c.Values > 0 then
      if cfg then
        fail(("Condition %d: specify either Values or %s, not both"):format(i, CONFIG[field]))
      end
      if field ~= "host-header" and field ~= "path-pattern" then
        fail(("Condition %d: Values can be used only for host-header and path-pattern conditions; "
          .. "use %s"):format(i, CONFIG[field]))
      end
      if #c.Values > 1 then
        fail(("Condition %d: Values takes a single value; use %s for more"):format(i, CONFIG[field]))
      end
      cfg = { Values = c.Values }
    end
    if not cfg then fail(("Condition %d (%s) has no values"):format(i, field)) end
    if field == "http-header" then
      local name = cfg.HttpHeaderName
      if not name or name == "" or #name > 40 or not name:match("^[!#$%%&'%*%+%-%.%^_`|~%w]+$")
          or name:find("[%*%?]") then
        fail(("Condition %d: the HTTP header name '%s' is not valid (1 to 40 characters of a "
          .. "header field name, without wildcards)"):format(i, tostring(name)))
      end
    end
    local values = {}
    if field == "query-string" then
      for _, kv in ipairs(cfg.Values or {}) do
        if kv.Key ~= nil then nwild = nwild + check_value(fail, field, what, kv.Key) end
        nwild = nwild + check_value(fail, field, what, kv.Value)
        values[#values + 1] = { Key = kv.Key, Value = kv.Value }
      end
    else
      for _, v in ipairs(cfg.Values or {}) do
        nwild = nwild + check_value(fail, field, what, v)
        values[#values + 1] = v
      end
    end
    if #values == 0 then fail(("Condition %d (%s) has no values"):format(i, field)) end
    nvalues = nvalues + #values
    if field == "http-header" then
      n.HttpHeaderConfig = { HttpHeaderName = cfg.HttpHeaderName, Values = values }
    else
      n[CONFIG[field]] = { Values = values }
    end
    -- host-header and path-pattern conditions are answered in both forms
    if field == "host-header" or field == "path-pattern" then
      local copy = {}
      for k, v in ipairs(values) do copy[k] = v end
      n.Values = copy
    end
    out[i] = n
  end
  if nvalues > M.MAX_VALUES then
    fail(("A rule can have at most %d condition values; this one has %d")
      :format(M.MAX_VALUES, nvalues))
  end
  if nwild > M.MAX_WILDCARDS then
    fail(("A rule can have at most %d wildcards in its conditions; this one has %d")
      :format(M.MAX_WILDCARDS, nwild))
  end
  return out
end

-- Request matching -------------------------------------------------------------------

-- Does `s` match the wildcard pattern `pat` (* any run, ? one character)?
local function like(pat, s, fold)
  if fold then pat, s = pat:lower(), s:lower() end
  local lua = pat:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".")
  return s:match("^" .. lua .. "$") ~= nil
end

local function in_cidr(block, ip)
  if not ip then return false end
  local b, n = C.parse_cidr(block)
  local a = C.parse_cidr(ip .. "/32")
  return b ~= nil and a ~= nil and C.contains(b, n, a, 32)
end

local function any_of(values, pred)
  for _, v in ipairs(values) do
    if pred(v) then return true end
  end
  return false
end

-- Does the stored condition `c` match request `req`?
local function condition_matches(c, req)
  local f = c.Field
  if f == "host-header" then
    local host = (req.host or ""):gsub(":%d+$", ""):gsub("%.$", "")
    return any_of(c.HostHeaderConfig.Values, function(v) return like(v, host, true) end)
  elseif f == "path-pattern" then
    return any_of(c.PathPatternConfig.Values, function(v) return like(v, req.path or "/") end)
  elseif f == "http-request-method" then
    return any_of(c.HttpRequestMethodConfig.Values, function(v) return v == req.method end)
  elseif f == "http-header" then
    local value = (req.headers or {})[c.HttpHeaderConfig.HttpHeaderName:lower()]
    return value ~= nil and any_of(c.HttpHeaderConfig.Values, function(v) return like(v, value, true) end)
  elseif f == "query-string" then
    return any_of(c.QueryStringConfig.Values, function(kv)
      return any_of(req.query or {}, function(q)
        return (kv.Key == nil or like(kv.Key, q[1], true)) and like(kv.Value, q[2], true)
      end)
    end)
  elseif f == "source-ip" then
    return any_of(c.SourceIpConfig.Values, function(v) return in_cidr(v, req.source_ip) end)
  end
  return false
end

--- Does a rule with `conditions` (stored form) match `req` = { method, host, path,
--- query = {{key, value}, …}, headers = {lower-case name = value}, source_ip }? All its
--- conditions must match; a condition matches when any of its values does.
function M.matches(conditions, req)
  for _, c in ipairs(conditions or {}) do
    if not condition_matches(c, req) then return false end
  end
  return true
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- A request's path and query pairs from a request target ("/a/b?x=1&y").
function M.split_target(target)
  local path, q = (target or "/"):match("^([^?]*)%??(.*)$")
  local query = {}
  for part in q:gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    query[#query + 1] = { unescape(k), unescape(v) }
  end
  return path ~= "" and path or "/", query
end

--- The rule descriptions ELBv2 stores for listener `arn` in its region's db (any order).
function M.listener_rules(db, arn)
  local out = {}
  for _, r in pairs(db.rules or {}) do
    if r.listener == arn then out[#out + 1] = r.desc end
  end
  return out
end

--- The actions a listener takes for `req`: those of its first rule, by priority, whose
--- conditions match, else its default actions. `rules` are stored rule descriptions.
function M.route(listener, rules, req)
  local sorted = {}
  for _, r in ipairs(rules) do sorted[#sorted + 1] = r end
  table.sort(sorted, function(a, b) return tonumber(a.Priority) < tonumber(b.Priority) end)
  for _, r in ipairs(sorted) do
    if M.matches(r.Conditions, req) then return r.Actions, r end
  end
  return listener.DefaultActions, nil
end

return M
