-- The AWS credentials chain in the SDKs' order: environment, shared files (static keys,
-- credential_process), EC2 IMDSv2. Caches per profile, refreshes before expiry, and
-- when nothing yields credentials says what each source answered.
local ini = require "fo.aws.ini"
local log = require "fo.log"
local core = require "fo.core"

local M = {}

local REFRESH_BEFORE = 300 -- seconds before Expiration that credentials are renewed
local IMDS_TIMEOUT = 1

-- Days-from-civil (UTC), so ISO 8601 times convert without the local time zone.
local function epoch_of(iso)
  local y, mo, d, h, mi, s = tostring(iso):match("^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end
M.epoch_of = epoch_of

local function make(access_key, secret_key, token, expiration, source)
  log.add_secret(secret_key)
  log.add_secret(token)
  return { access_key = access_key, secret_key = secret_key, session_token = token,
           expiration = expiration and epoch_of(expiration) or nil, source = source }
end

local function home(env)
  return env("HOME") or "~"
end

-- botocore splits credential_process like shlex: whitespace, quotes, backslashes.
local function split_command(s)
  local argv, cur, i, quote, have = {}, {}, 1, nil, false
  while i <= #s do
    local c = s:sub(i, i)
    if quote then
      if c == quote then quote = nil
      elseif c == "\\" and quote == '"' and i < #s then i = i + 1; cur[#cur + 1] = s:sub(i, i)
      else cur[#cur + 1] = c end
    elseif c == "'" or c == '"' then quote, have = c, true
    elseif c == "\\" and i < #s then i = i + 1; cur[#cur + 1] = s:sub(i, i); have = true
    elseif c:match("%s") then
      if have or #cur > 0 then argv[#argv + 1] = table.concat(cur); cur, have = {}, false end
    else cur[#cur + 1] = c; have = true end
    i = i + 1
  end
  if quote then return nil, "unbalanced quote" end
  if have or #cur > 0 then argv[#argv + 1] = table.concat(cur) end
  return argv
end
M.split_command = split_command

local function from_env(opts)
  local env = opts.env
  local id, secret = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
  if not id or id == "" then return nil, "AWS_ACCESS_KEY_ID not set" end
  if not secret or secret == "" then return nil, "AWS_SECRET_ACCESS_KEY not set" end
  local token = env("AWS_SESSION_TOKEN")
  return make(id, secret, token ~= "" and token or nil, nil, "environment")
end

--- The profile's merged settings: config file `[profile x]` (or `[default]`), overlaid
--- by the credentials file `[x]`. Returns settings, description of files, profile name.
function M.profile_settings(opts)
  local env = opts.env
  local name = opts.profile or env("AWS_PROFILE") or env("AWS_DEFAULT_PROFILE") or "default"
  local cred_file = env("AWS_SHARED_CREDENTIALS_FILE") or (home(env) .. "/.aws/credentials")
  local config_file = env("AWS_CONFIG_FILE") or (home(env) .. "/.aws/config")
  local settings, found = {}, false
  local config = ini.read(config_file)
  if config then
    local section = config[name == "default" and "default" or ("profile " .. name)]
      or (name == "default" and config["profile default"])
    if section then found = true; for k, v in pairs(section) do settings[k] = v end end
  end
  local creds = ini.read(cred_file)
  if creds and creds[name] then
    found = true
    for k, v in pairs(creds[name]) do settings[k] = v end
  end
  return found and settings or nil, ("%s or %s"):format(cred_file, config_file), name
end

local function from_process(opts, command, profile)
  local argv, err = split_command(command)
  if not argv or #argv == 0 then
    error(("credential_process of profile '%s': %s"):format(profile, err or "empty command"), 0)
  end
  local run = opts.run_process or require("fo.process").run
  local r = run{ argv = argv, timeout = 60 }
  if r.code ~= 0 then
    -- stdout may hold secrets: only stderr is shown.
    error(("credential_process of profile '%s' (%s) exited with %d: %s"):format(
      profile, argv[1], r.code, log.redact(r.stderr:sub(1, 500))), 0)
  end
  local ok, doc = pcall(require("cjson").decode, r.stdout)
  if not ok or type(doc) ~= "table" or doc.Version ~= 1 or not doc.AccessKeyId
      or not doc.SecretAccessKey then
    error(("credential_process of profile '%s' (%s) did not print the expected JSON "
      .. "({\"Version\": 1, \"AccessKeyId\", \"SecretAccessKey\", ...})"):format(profile, argv[1]), 0)
  end
  return make(doc.AccessKeyId, doc.SecretAccessKey, doc.SessionToken, doc.Expiration,
    "credential_process (profile " .. profile .. ")")
end

local function from_files(opts)
  local settings, files, profile = M.profile_settings(opts)
  if not settings then return nil, ("profile '%s' not in %s"):format(profile, files) end
  if settings.aws_access_key_id and settings.aws_secret_access_key then
    return make(settings.aws_access_key_id, settings.aws_secret_access_key,
      settings.aws_session_token, nil, "shared files (profile " .. profile .. ")")
  end
  if settings.credential_process then
    return from_process(opts, settings.credential_process, profile)
  end
  return nil, ("profile '%s' has no aws_access_key_id/aws_secret_access_key or "
    .. "credential_process"):format(profile)
end

local function from_imds(opts)
  local env = opts.env
  if (env("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then
    return nil, "disabled by AWS_EC2_METADATA_DISABLED"
  end
  local base = (env("AWS_EC2_METADATA_SERVICE_ENDPOINT") or "http://169.254.169.254"):gsub("/$", "")
  local http = opts.http or require("fo.http")
  local function req(r)
    r.timeout, r.connect_timeout = IMDS_TIMEOUT, IMDS_TIMEOUT
    local last
    for _ = 1, 2 do -- one retry, as the SDKs do
      local ok, res = pcall(http.request, r)
      if ok then return res end
      last = res
    end
    return nil, tostring(last and last.message or last)
  end
  local tok, err = req{ method = "PUT", url = base .. "/latest/api/token",
                        headers = { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21600" } }
  if not tok then return nil, "no instance metadata service at " .. base .. " (" .. err .. ")" end
  if tok.status ~= 200 then return nil, ("token request answered HTTP %d"):format(tok.status) end
  log.add_secret(tok.body)
  local h = { ["X-aws-ec2-metadata-token"] = tok.body }
  local path = "/latest/meta-data/iam/security-credentials/"
  local roles = req{ url = base .. path, headers = h }
  if not roles or roles.status ~= 200 or roles.body == "" then
    return nil, "the instance has no IAM role"
  end
  local role = roles.body:match("^[^\n]+")
  local doc = req{ url = base .. path .. role, headers = h }
  if not doc or doc.status ~= 200 then return nil, "cannot read credentials of role " .. role end
  local ok, c = pcall(require("cjson").decode, doc.body)
  if not ok or type(c) ~= "table" or not c.AccessKeyId then
    return nil, "malformed credentials document for role " .. role
  end
  return make(c.AccessKeyId, c.SecretAccessKey, c.Token, c.Expiration, "IMDS (role " .. role .. ")")
end

local SOURCES = {
  { name = "environment", fn = from_env },
  { name = "shared files", fn = from_files },
  { name = "IMDS", fn = from_imds },
}

--- Runs the chain once; returns credentials or raises one message naming every source.
function M.resolve(opts)
  opts = opts or {}
  opts.env = opts.env or os.getenv
  local tried = {}
  for _, src in ipairs(SOURCES) do
    local c, why = src.fn(opts)
    if c then return c end
    tried[#tried + 1] = src.name .. ": " .. why
  end
  error("no AWS credentials found; tried " .. table.concat(tried, "; ")
    .. ". Set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, configure a profile "
    .. "(aws configure), or run on an instance with a role.", 0)
end

local function fresh(c, now)
  return c and (not c.expiration or c.expiration - REFRESH_BEFORE > now)
end

--- A provider: provider:get() returns valid credentials, refreshing them before they
--- expire; concurrent callers during a refresh share one fetch.
function M.provider(opts)
  opts = opts or {}
  local p = { cached = nil, pending = nil }
  function p:get(force)
    local now = (opts.clock or core.time)()
    if not force and fresh(self.cached, now) then return self.cached end
    if self.pending then return self.pending:join() end
    local task = require("fo.task").spawn(M.resolve, opts)
    self.pending = task
    local ok = task:wait()
    self.pending = nil
    if ok then self.cached = task.results[1] end
    return task:join()
  end
  function p:invalidate() self.cached = nil end
  return p
end

return M
