-- SSM Parameter Store handlers: the public parameters the failover stack reads (the Amazon
-- Linux 2 AMI id per region) and the account's own parameters (PutParameter, versions and
-- their history, labels, selectors "name:3" / "name:label", DeleteParameter,
-- GetParametersByPath). A SecureString's value is
-- answered as an opaque ciphertext unless WithDecryption is true, as AWS does (the
-- simulator has no KMS: the default key is assumed).
local amis = require "fo.sim.amis"

local M = {}

-- Public parameter name → function(ctx) returning its value.
local PUBLIC = amis.PARAMETERS

local TYPES = { String = true, StringList = true, SecureString = true }
local MAX_LEVELS = 15
-- Parameter Store keeps the 100 latest versions of a parameter; a version has at most 10
-- labels (API reference, PutParameter and LabelParameterVersion).
local MAX_VERSIONS = 100
local MAX_LABELS = 10
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function invalid(ctx, msg) ctx:fail("ValidationException", msg) end

local function db(ctx)
  ctx.db.parameters = ctx.db.parameters or {}
  return ctx.db.parameters
end

-- "name", "name:3" (a version) or "name:label" → name, selector (":3" / ":label" / nil).
local function split(name)
  local base, sel = name:match("^(.-)(:[^/:]*)$")
  if base and base ~= "" then return base, sel end
  return name, nil
end

local function arn(ctx, name)
  return ctx:arn("parameter" .. (name:sub(1, 1) == "/" and "" or "/") .. name)
end

-- The Parameter output of version `v` of stored parameter `param`.
local function output(ctx, param, v, selector, decrypt)
  local value = v.Value
  if param.Type == "SecureString" and not decrypt then value = v.cipher end
  return { Name = param.Name, Type = param.Type, Value = value, Version = v.Version,
    Selector = selector, LastModifiedDate = v.LastModifiedDate, ARN = arn(ctx, param.Name),
    DataType = param.DataType }
end

local function public(ctx, name, selector)
  local p = PUBLIC[name]
  if not p then return nil end
  return {
    Name = name, Type = "String", Value = p.value(ctx.region), Selector = selector,
    Version = p.version, LastModifiedDate = p.modified,
    -- Public parameters belong to no account: the ARN's account field is empty.
    ARN = ctx:arn("parameter" .. name, { account = "" }), DataType = "text",
  }
end

-- The parameter `full` names (with its selector), or nil and the error to answer.
local function lookup(ctx, full, decrypt)
  local name, selector = split(full)
  local pub = public(ctx, name, selector)
  if pub then return pub end
  local param = db(ctx)[name]
  if not param then return nil, "ParameterNotFound", "" end
  local v = param.versions[#param.versions]
  if selector then
    local n = math.tointeger(tonumber(selector:sub(2)))
    v = nil
    for _, x in ipairs(param.versions) do
      if (n and x.Version == n) or (not n and x.labels and x.labels[selector:sub(2)]) then v = x end
    end
    if not v then
      return nil, "ParameterVersionNotFound", ("Systems Manager could not find version %s of "
        .. "%s. Verify the version and try again."):format(selector:sub(2), name)
    end
  end
  return output(ctx, param, v, selector, decrypt)
end

function M.GetParameter(ctx, p)
  local param, code, msg = lookup(ctx, p.Name, p.WithDecryption)
  if not param then ctx:fail(code, msg) end
  return { Parameter = param }
end

function M.GetParameters(ctx, p)
  local found, invalid_names = {}, {}
  for _, name in ipairs(p.Names) do
    local param, code, msg = lookup(ctx, name, p.WithDecryption)
    -- a name nobody created and a version or label it does not have are both invalid
    -- here (GetParameter fails on them instead)
    if param then found[#found + 1] = param
    elseif code == "ParameterNotFound" or code == "ParameterVersionNotFound" then
      invalid_names[#invalid_names + 1] = name
    else ctx:fail(code, msg) end
  end
  -- "The results for GetParameters requests are listed in alphabetical order"
  table.sort(found, function(a, b)
    if a.Name ~= b.Name then return a.Name < b.Name end
    return a.Version < b.Version
  end)
  return { Parameters = found, InvalidParameters = invalid_names }
end

-- Name rules of PutParameter (API reference, "Parameter name requirements").
local function check_name(ctx, name)
  local lower = name:lower():gsub("^/", "")
  if lower:sub(1, 3) == "aws" or lower:sub(1, 3) == "ssm" then
    invalid(ctx, "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).")
  end
  if not name:match("^[%w_%.%-/]+$") then
    invalid(ctx, ("Parameter name %s is not valid: it can consist of letters, numbers and the "
      .. "symbols . - _ and, as a path, sub-paths divided by /"):format(name))
  end
  if name:find("/", 1, true) then
    if name:sub(1, 1) ~= "/" then invalid(ctx, "Parameter name must be a fully qualified name.") end
    local _, levels = name:gsub("/", "")
    if levels > MAX_LEVELS then
      ctx:fail("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of "
        .. MAX_LEVELS .. " levels.")
    end
  end
end

function M.PutParameter(ctx, p)
  check_name(ctx, p.Name)
  local params = db(ctx)
  local param = params[p.Name]
  if p.Type ~= nil and not TYPES[p.Type] then
    ctx:fail("UnsupportedParameterType", ("Parameter type %s is not supported."):format(p.Type))
  end
  if param and not p.Overwrite then
    ctx:fail("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, "
      .. "set the overwrite option in the request to true.")
  end
  if param and p.Tags then
    invalid(ctx, "Invalid request: tags and overwrite can't be used together. To create a "
      .. "parameter with tags, please remove overwrite flag. To update tags for an existing "
      .. "parameter, please use AddTagsToResource or RemoveTagsFromResource.")
  end
  if not param and p.Type == nil then
    invalid(ctx, "A parameter type is required when you create a parameter.")
  end
  if param and p.Type and p.Type ~= param.Type and (p.Type == "SecureString"
      or param.Type == "SecureString") then
    ctx:fail("HierarchyTypeMismatchException", "Parameter Type cannot be changed from "
      .. param.Type .. " to " .. p.Type .. ".")
  end
  if not param then
    param = { Name = p.Name, Type = p.Type, DataType = p.DataType or "text", versions = {},
      tags = {} }
    for _, t in ipairs(p.Tags or {}) do param.tags[t.Key] = t.Value end
    params[p.Name] = param
    ctx:created(param)
  elseif p.Type then
    param.Type = p.Type
  end
  -- At most 100 versions: the oldest goes, unless a label holds it.
  if #param.versions >= MAX_VERSIONS then
    local oldest = param.versions[1]
    if next(oldest.labels or {}) then
      ctx:fail("ParameterMaxVersionLimitExceeded", ("You attempted to create a new version of %s "
        .. "by calling the PutParameter API with the overwrite flag. Version %d, the oldest "
        .. "version, can't be deleted because it has a label associated with it. Move the label "
        .. "to another version of the parameter, and try again."):format(p.Name, oldest.Version))
    end
    table.remove(param.versions, 1)
  end
  local n = #param.versions > 0 and param.versions[#param.versions].Version + 1 or 1
  param.versions[#param.versions + 1] = { Version = n, Value = p.Value,
    LastModifiedDate = ctx:now(), Description = p.Description,
    cipher = "AQICAHg" .. ctx:chars(120, B64), user = ctx.caller and ctx.caller.arn }
  return { Version = n, Tier = "Standard" }
end

function M.DeleteParameter(ctx, p)
  local params = db(ctx)
  if not params[p.Name] then ctx:fail("ParameterNotFound", "") end
  params[p.Name] = nil
  return {}
end

-- GetParametersByPath: Path is a hierarchy ("/app/prod"); without Recursive only the
-- parameters directly below it. Pages of MaxResults (1..10, default 10), by name.
function M.GetParametersByPath(ctx, p)
  local path = p.Path
  if path:sub(1, 1) ~= "/" then
    invalid(ctx, "The parameter doesn't meet the parameter name requirements. The parameter "
      .. "name must begin with a forward slash \"/\".")
  end
  local prefix = path:gsub("/+$", "") .. "/"
  local names = {}
  for name in pairs(db(ctx)) do
    if name:sub(1, #prefix) == prefix and (p.Recursive
        or not name:sub(#prefix + 1):find("/", 1, true)) then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  local start = 1
  if p.NextToken then
    start = math.tointeger(tonumber((p.NextToken:match("^fo%-ssm%-(%d+)$"))))
    if not start then ctx:fail("InvalidNextToken", "The specified token is not valid.") end
  end
  local size = p.MaxResults or 10
  local out = { Parameters = {} }
  for i = start, math.min(#names, start + size - 1) do
    local param = db(ctx)[names[i]]
    out.Parameters[#out.Parameters + 1] = output(ctx, param, param.versions[#param.versions],
      nil, p.WithDecryption)
  end
  if start + size <= #names then out.NextToken = "fo-ssm-" .. (start + size) end
  return out
end

-- Labels -----------------------------------------------------------------------------

-- The stored parameter `name` and its version `n` (the latest when nil), or the error.
local function version_of(ctx, name, n)
  local param = db(ctx)[name]
  if not param then ctx:fail("ParameterNotFound", "") end
  if n == nil then return param, param.versions[#param.versions] end
  for _, v in ipairs(param.versions) do
    if v.Version == n then return param, v end
  end
  ctx:fail("ParameterVersionNotFound", ("Systems Manager could not find version %d of %s. "
    .. "Verify the version and try again."):format(n, name))
end

-- A label's rules (LabelParameterVersion): 1..100 letters, digits, "." "-" "_"; not
-- starting with a digit, "aws" or "ssm" (any case).
local function valid_label(l)
  if #l < 1 or #l > 100 or not l:match("^[%w%._%-]+$") or l:match("^%d") then return false end
  local head = l:sub(1, 3):lower()
  return head ~= "aws" and head ~= "ssm"
end

local function sorted_labels(v)
  local out = {}
  for l in pairs(v.labels or {}) do out[#out + 1] = l end
  table.sort(out)
  return out
end

-- LabelParameterVersion: attaches the valid labels to the version (the latest when no
-- ParameterVersion), moving any of them from the version that had it; invalid ones are
-- answered in InvalidLabels and attached nowhere.
function M.LabelParameterVersion(ctx, p)
  local param, v = version_of(ctx, p.Name, p.ParameterVersion)
  local good, bad = {}, {}
  for _, l in ipairs(p.Labels) do
    if valid_label(l) then good[#good + 1] = l else bad[#bad + 1] = l end
  end
  local after = {}
  for l in pairs(v.labels or {}) do after[l] = true end
  for _, l in ipairs(good) do after[l] = true end
  local n = 0
  for _ in pairs(after) do n = n + 1 end
  if n > MAX_LABELS then
    ctx:fail("ParameterVersionLabelLimitExceeded", "A parameter version can have a maximum of "
      .. "ten labels.")
  end
  for _, l in ipairs(good) do
    for _, other in ipairs(param.versions) do
      if other.labels then other.labels[l] = nil end
    end
  end
  v.labels = after
  return { InvalidLabels = #bad > 0 and bad or nil, ParameterVersion = v.Version }
end

-- UnlabelParameterVersion: removes the labels version ParameterVersion has; the others
-- are answered in InvalidLabels.
function M.UnlabelParameterVersion(ctx, p)
  local _, v = version_of(ctx, p.Name, p.ParameterVersion)
  local removed, bad = {}, {}
  for _, l in ipairs(p.Labels) do
    if v.labels and v.labels[l] then
      v.labels[l] = nil
      removed[#removed + 1] = l
    else
      bad[#bad + 1] = l
    end
  end
  return { RemovedLabels = #removed > 0 and removed or nil, InvalidLabels = #bad > 0 and bad or nil }
end

-- GetParameterHistory: every kept version, oldest first, with its labels; pages of
-- MaxResults (1..50, default 50). Name may be the parameter's ARN.
function M.GetParameterHistory(ctx, p)
  local name = p.Name
  local from_arn = name:match("^arn:aws[%w%-]*:ssm:[%w%-]+:%d+:parameter(/.*)$")
  if from_arn then
    name = db(ctx)[from_arn] and from_arn or from_arn:sub(2)
  end
  local param = db(ctx)[name]
  if not param then ctx:fail("ParameterNotFound", "") end
  local size = p.MaxResults or 50
  local start = 1
  if p.NextToken then
    start = math.tointeger(tonumber((p.NextToken:match("^fo%-ssmh%-(%d+)$"))))
    if not start or start > #param.versions then
      ctx:fail("InvalidNextToken", "The specified token is not valid.")
    end
  end
  local out = { Parameters = {} }
  for i = start, math.min(#param.versions, start + size - 1) do
    local v = param.versions[i]
    local value = v.Value
    if param.Type == "SecureString" and not p.WithDecryption then value = v.cipher end
    local labels = sorted_labels(v)
    out.Parameters[#out.Parameters + 1] = { Name = param.Name, Type = param.Type,
      KeyId = param.Type == "SecureString" and "alias/aws/ssm" or nil,
      LastModifiedDate = v.LastModifiedDate, LastModifiedUser = v.user,
      Description = v.Description, Value = value, Version = v.Version,
      Labels = #labels > 0 and labels or nil, Tier = "Standard", Policies = {},
      DataType = param.DataType }
  end
  if start + size <= #param.versions then out.NextToken = "fo-ssmh-" .. (start + size) end
  return out
end

return M
