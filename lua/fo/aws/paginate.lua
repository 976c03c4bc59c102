-- Pagination from the models' paginators-1 definitions: input_token/output_token (one
-- name or several in step, like Route 53's record name/type/identifier), more_results,
-- limit_key and result_key. Tokens are JMESPath expressions on the output.
local jmespath = require "fo.aws.jmespath"
local suggest = require "fo.aws.suggest"

local M = {}

local function as_list(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end

local function empty(v)
  return v == nil or v == jmespath.null or v == "" or (type(v) == "table" and next(v) == nil)
end

-- A stable text for a token (strings, numbers, or DynamoDB's key maps) to spot repeats.
local function canonical(v)
  if type(v) ~= "table" then return type(v) .. ":" .. tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. canonical(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- The paginator of `op` in `model`, or raises naming the operations that have one.
function M.definition(model, service, op)
  local p = model.paginators[op]
  if p then return p end
  if model.operations[op] then
    error(("%s.%s does not paginate%s"):format(service, op,
      suggest.hint(op, model.paginators)), 0)
  end
  error(("%s has no operation '%s'%s"):format(service, tostring(op),
    suggest.hint(op, model.operations)), 0)
end

-- The next request's tokens from a page: a list aligned with input_token, or nil when the
-- paginator says there are no more pages.
local function next_tokens(p, page)
  if p.more_results and not jmespath.truthy(jmespath.search(p.more_results, page)) then
    return nil
  end
  local tokens, any = {}, false
  for i, expr in ipairs(as_list(p.output_token)) do
    local v = jmespath.search(expr, page)
    if not empty(v) then tokens[i], any = v, true end
  end
  return any and tokens or nil
end

-- The page size as the limit member's shape wants it: Route 53's MaxItems is a string.
local function limit_value(model, op, key, size)
  local input = model.operations[op].input
  local shape = input and model.shapes[input.shape]
  local member = shape and shape.members and shape.members[key]
  local target = member and model.shapes[member.shape]
  if target and target.type == "string" then return tostring(math.tointeger(size) or size) end
  return size
end

--- Iterator over the pages of client:<op>(params). opts.page_size sets the paginator's
--- limit_key. A service that answers a token it already gave (a loop) raises after the
--- page that carried it has been returned.
function M.pages(client, op, params, opts)
  local p = M.definition(client.model, client.service, op)
  opts = opts or {}
  local input_names = as_list(p.input_token)
  local req = {}
  for k, v in pairs(params or {}) do req[k] = v end
  if opts.page_size then
    if not p.limit_key then
      error(("%s.%s has no page size parameter"):format(client.service, op), 0)
    end
    req[p.limit_key] = limit_value(client.model, op, p.limit_key, opts.page_size)
  end
  local seen = {}
  do -- a starting token given by the caller counts as seen
    local start, any = {}, false
    for i, name in ipairs(input_names) do
      if not empty(req[name]) then start[i], any = req[name], true end
    end
    if any then seen[canonical(start)] = true end
  end
  local done, pending_error = false, nil
  return function()
    if pending_error then
      local e = pending_error
      pending_error, done = nil, true
      error(e, 0)
    end
    if done then return nil end
    local page = client:_invoke(op, req)
    local tokens = next_tokens(p, page)
    if not tokens then
      done = true
    else
      local key = canonical(tokens)
      if seen[key] then
        pending_error = ("%s.%s: the service returned a pagination token it had already "
          .. "given (%s); stopping to avoid an endless loop"):format(client.service, op,
          table.concat(as_list(p.output_token), ", "))
      end
      seen[key] = true
      local nxt = {}
      for k, v in pairs(req) do nxt[k] = v end
      for i, name in ipairs(input_names) do nxt[name] = tokens[i] end
      req = nxt
    end
    return page
  end
end

--- Iterator over the items of every page under result_key (the first one when the
--- paginator has several, unless opts.result_key names another).
function M.items(client, op, params, opts)
  local p = M.definition(client.model, client.service, op)
  opts = opts or {}
  local keys = as_list(p.result_key)
  local key = opts.result_key or keys[1]
  if not key then error(("%s.%s has no result key"):format(client.service, op), 0) end
  local pages = M.pages(client, op, params, opts)
  local items, i = {}, 0
  return function()
    while true do
      i = i + 1
      if items[i] ~= nil then return items[i] end
      local page = pages()
      if page == nil then return nil end
      local v = jmespath.search(key, page)
      items, i = type(v) == "table" and v or {}, 0
    end
  end
end

return M
