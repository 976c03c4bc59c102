-- The STS calls of the credentials chain (AssumeRole signed with the source credentials,
-- AssumeRoleWithWebIdentity unsigned), sent through aws.call so that they get the same
-- endpoint overrides, CA bundle, retries and redaction as every other call.
local log = require "fo.log"

local M = {}

M.VERSION = "2011-06-15"

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function text(node, name)
  if type(node) ~= "table" then return nil end
  if node.name == name then return type(node[1]) == "string" and node[1] or nil end
  for _, child in ipairs(node) do
    local r = text(child, name)
    if r then return r end
  end
end

-- The STS region: the profile's or the environment's, else us-east-1 (the regional
-- endpoint the SDKs default to when no region is configured).
local function region_of(opts)
  local ok, r = pcall(require("fo.aws.region").resolve, { env = opts.env, profile = opts.profile })
  return ok and r or "us-east-1"
end

--- Calls STS `operation` with `params` (name → value, nil values left out); `creds`:
--- the credentials to sign with (nil: unsigned). Returns credentials (fo.aws.credentials
--- make) labelled `source`; raises a message starting with `what` on failure.
function M.call(opts, operation, params, creds, source, what)
  local names = {}
  for k in pairs(params) do names[#names + 1] = k end
  table.sort(names)
  local body = { "Action=" .. operation, "Version=" .. M.VERSION }
  for _, k in ipairs(names) do body[#body + 1] = k .. "=" .. escape(params[k]) end
  local provider = creds and { get = function() return creds end, invalidate = function() end }
  local ok, resp = pcall(require("fo.aws.call"), {
    service = "sts", operation = operation, region = region_of(opts), profile = opts.profile,
    env = opts.env, http = opts.http, method = "POST", path = "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" },
    body = table.concat(body, "&"), credentials = provider, unsigned = creds == nil,
    sleep = opts.sleep,
  })
  if not ok then error(("%s: %s"):format(what, log.redact(tostring(resp))), 0) end
  local doc = require("fo.xml").decode(resp.body or "")
  local id, secret = text(doc, "AccessKeyId"), text(doc, "SecretAccessKey")
  local token, expiration = text(doc, "SessionToken"), text(doc, "Expiration")
  if not id or not secret or not token then
    error(("%s: STS answered without Credentials"):format(what), 0)
  end
  return require("fo.aws.credentials").make(id, secret, token, expiration, source)
end

return M
