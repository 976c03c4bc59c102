-- Container credentials (ECS task roles, EKS Pod Identity), as botocore's ContainerProvider
-- reads them: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (a path on 169.254.170.2) or
-- AWS_CONTAINER_CREDENTIALS_FULL_URI (https anywhere; http only to a loopback address or
-- the container agents' 169.254.170.2, 169.254.170.23, fd00:ec2::23), with the
-- Authorization header from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read on every fetch)
-- or AWS_CONTAINER_AUTHORIZATION_TOKEN.
local log = require "fo.log"

local M = {}

M.HOST = "169.254.170.2"
M.ALLOWED_HOSTS = { ["169.254.170.2"] = true, ["169.254.170.23"] = true,
  ["fd00:ec2::23"] = true, localhost = true }
M.TIMEOUT = 2
M.ATTEMPTS = 3

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

-- 127.0.0.0/8 and ::1, as ipaddress.is_loopback decides for botocore.
local function loopback(host)
  if host == "::1" or host == "0:0:0:0:0:0:0:1" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  return a == "127" and tonumber(b) <= 255 and tonumber(c) <= 255 and tonumber(d) <= 255
end

--- nil when `url` may be fetched, else why not.
function M.check_url(url)
  local scheme, host = tostring(url):match("^(%a+)://([^/]+)")
  if not scheme then return "it is not a URL" end
  scheme = scheme:lower()
  if scheme == "https" then return nil end
  if scheme ~= "http" then return "only http and https are allowed" end
  host = host:match("^%[(.-)%]") or host:match("^([^:]+)") -- [v6]:port or host:port
  if loopback(host) or M.ALLOWED_HOSTS[host] then return nil end
  return ("host '%s' is neither a loopback address nor one of 169.254.170.2, "
    .. "169.254.170.23, fd00:ec2::23, localhost (https is allowed anywhere)"):format(host)
end

--- The container source of the chain: credentials, or nil, why when not in a container.
function M.resolve(opts)
  local env = opts.env
  local relative, full = str(env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")),
    str(env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
  if not relative and not full then
    return nil, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set"
  end
  local url, where
  if relative then
    url, where = "http://" .. M.HOST .. relative, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
  else
    url, where = full, "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    local bad = M.check_url(url)
    if bad then error(("%s is '%s': %s"):format(where, url, bad), 0) end
  end
  local headers = { Accept = "application/json" }
  local token
  local token_file = str(env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
  if token_file then
    local f, err = io.open(token_file, "rb")
    if not f then
      error(("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s cannot be read: %s"):format(token_file,
        tostring(err)), 0)
    end
    token = f:read("a")
    f:close()
  else
    token = str(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
  end
  if token then
    log.add_secret(token)
    if token:find("[\r\n]") then
      error("the container authorization token contains a line break; it is not a legal "
        .. "header value", 0)
    end
    headers.Authorization = token
  end
  local http = opts.http or require("fo.http")
  local ca_file = require("fo.aws.credentials").ca_bundle(opts)
  local last
  for attempt = 1, M.ATTEMPTS do
    local ok, res = pcall(http.request, { url = url, headers = headers,
      timeout = opts.container_timeout or M.TIMEOUT,
      connect_timeout = opts.container_timeout or M.TIMEOUT, ca_file = ca_file })
    if ok and res.status == 200 then
      local dok, c = pcall(require("cjson").decode, res.body)
      if not dok or type(c) ~= "table" or not str(c.AccessKeyId) or not str(c.SecretAccessKey) then
        error(("container credentials at %s (%s): not a credentials document"):format(url,
          where), 0)
      end
      return require("fo.aws.credentials").make(c.AccessKeyId, c.SecretAccessKey, c.Token,
        c.Expiration, "container (" .. where .. ")")
    end
    last = ok and ("HTTP " .. res.status) or (type(res) == "table" and res.message or tostring(res))
    if attempt < M.ATTEMPTS and opts.sleep ~= false then
      (opts.sleep or require("fo.core").sleep)(opts.container_retry_delay or 1)
    end
  end
  error(("container credentials at %s (%s) could not be read: %s"):format(url, where,
    log.redact(last)), 0)
end

return M
