-- The AWS credentials chain in botocore's order: environment, assume-role profiles
-- (role_arn with source_profile or credential_source), web identity (AssumeRoleWithWebIdentity
-- from a token file), IAM Identity Center (SSO) profiles, shared files (static keys,
-- credential_process), container credentials (ECS/EKS), EC2 IMDSv2. Caches per profile,
-- refreshes before expiry, and when nothing yields credentials says what each source
-- answered. The sources that call AWS live in fo.aws.credentials.* (roles, sso, container).
local ini = require "fo.aws.ini"
local log = require "fo.log"
local core = require "fo.core"

local M = {}

M.REFRESH_BEFORE = 300 -- seconds before Expiration that credentials are renewed
M.IMDS_TIMEOUT = 1
M.PROCESS_TIMEOUT = 60
local IMDS_DEFAULT = "http://169.254.169.254"

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

-- JSON documents may carry null (cjson.null, a userdata) or numbers: keep strings only.
local function str(v)
  return type(v) == "string" and v ~= "" and v or nil
end

-- Every credential is built here, so every secret is registered for redaction here.
local function make(access_key, secret_key, token, expiration, source)
  log.add_secret(secret_key)
  log.add_secret(token)
  local exp
  if math.type(expiration) == "integer" then -- already epoch seconds (STS, SSO answers)
    exp = expiration
  elseif str(expiration) then
    exp = epoch_of(expiration)
    if not exp then
      error(("%s: Expiration '%s' is not an ISO 8601 UTC time"):format(source, expiration), 0)
    end
  end
  return { access_key = access_key, secret_key = secret_key, session_token = str(token),
           expiration = exp, source = source }
end

M.make = make
M.str = str

local function nonempty(env, name)
  local v = env(name)
  if v == nil or v == "" then return nil end
  return v
end
M.nonempty = nonempty

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

--- Where the shared files are and which profile is selected: {profile=, explicit=,
--- credentials_file=, config_file=}. `explicit` is true when the profile was asked for
--- (option or AWS_PROFILE) rather than defaulted.
function M.locate(opts)
  local env = opts.env or os.getenv
  local home = nonempty(env, "HOME") or "~"
  local profile = opts.profile or nonempty(env, "AWS_PROFILE") or nonempty(env, "AWS_DEFAULT_PROFILE")
  return {
    profile = profile or "default",
    explicit = profile ~= nil,
    credentials_file = nonempty(env, "AWS_SHARED_CREDENTIALS_FILE") or (home .. "/.aws/credentials"),
    config_file = nonempty(env, "AWS_CONFIG_FILE") or (home .. "/.aws/config"),
  }
end

--- The parsed config file (nil when absent), for settings outside profiles
--- (`[services name]` sections).
function M.config_file(opts)
  return ini.read(M.locate(opts).config_file)
end

--- The profile's merged settings: config file `[profile x]` (or `[default]`), overlaid
--- by the credentials file `[x]`, as botocore merges them. Returns settings (nil when
--- the profile is in neither file), "credentials-file or config-file", profile name.
function M.profile_settings(opts)
  local where = M.locate(opts)
  local all = M.load_config(opts, where)
  return all.profiles[where.profile], all.files, where.profile, where.explicit
end

--- Every profile of both files as botocore's full_config sees them: {profiles = {name →
--- merged settings}, sso_sessions = {name → settings}, files = "credentials or config"}.
--- `where`: M.locate(opts) when already known.
function M.load_config(opts, where)
  where = where or M.locate(opts)
  local profiles, sessions = {}, {}
  local function merge(name, section)
    local p = profiles[name] or {}
    for k, v in pairs(section) do p[k] = v end
    profiles[name] = p
  end
  local config = ini.read(where.config_file)
  if config then
    -- "[profile default]" counts, "[default]" wins over it, as in botocore
    for section_name, section in pairs(config) do
      local pname = section_name:match("^profile%s+(%S+)$")
      if pname then merge(pname, section) end
      local sname = section_name:match("^sso%-session%s+(%S+)$")
      if sname then sessions[sname] = section end
    end
    if config.default then merge("default", config.default) end
  end
  local creds = ini.read(where.credentials_file)
  for name, section in pairs(creds or {}) do merge(name, section) end
  return { profiles = profiles, sso_sessions = sessions,
    files = ("%s or %s"):format(where.credentials_file, where.config_file) }
end

--- The CA bundle HTTPS calls trust instead of the system store: AWS_CA_BUNDLE, else the
--- profile's ca_bundle (nil: the system store). opts: env, profile.
function M.ca_bundle(opts)
  local env = opts.env or os.getenv
  local v = nonempty(env, "AWS_CA_BUNDLE")
  if v then return v end
  local ok, settings = pcall(M.profile_settings, opts)
  return ok and settings and str(settings.ca_bundle) or nil
end

local function from_env(opts)
  local env = opts.env
  if opts.profile and not opts.sourcing then
    -- botocore: a profile given explicitly (not through AWS_PROFILE) wins over the
    -- environment's keys
    return nil, ("skipped: profile '%s' was given"):format(opts.profile)
  end
  local id, secret = nonempty(env, "AWS_ACCESS_KEY_ID"), nonempty(env, "AWS_SECRET_ACCESS_KEY")
  if not id then return nil, "AWS_ACCESS_KEY_ID not set" end
  if not secret then return nil, "AWS_SECRET_ACCESS_KEY not set" end
  return make(id, secret, nonempty(env, "AWS_SESSION_TOKEN"), nil, "environment")
end

-- Runs the command through fo.process (no shell). Its stdout holds secrets: it is parsed,
-- never shown; stderr is shown (bounded, redacted) because that is where helpers explain.
local function from_process(opts, command, profile)
  local what = ("credential_process of profile '%s'"):format(profile)
  local argv, err = split_command(command)
  if not argv or #argv == 0 then error(("%s: %s"):format(what, err or "empty command"), 0) end
  what = ("%s (%s)"):format(what, argv[1])
  local run = opts.run_process or require("fo.process").run
  local ok, r = pcall(run, { argv = argv, timeout = opts.process_timeout or M.PROCESS_TIMEOUT })
  if not ok then
    local why = type(r) == "table" and r.message or tostring(r)
    if type(r) == "table" and r.kind == "timeout" then
      why = ("did not finish within %g s"):format(opts.process_timeout or M.PROCESS_TIMEOUT)
    end
    error(("%s: %s"):format(what, log.redact(why)), 0)
  end
  if r.code ~= 0 then
    local stderr = (r.stderr or ""):sub(1, 500):gsub("%s+$", "")
    error(("%s exited with %d%s"):format(what, r.code,
      stderr ~= "" and (": " .. log.redact(stderr)) or ""), 0)
  end
  local parsed, doc = pcall(require("cjson").decode, r.stdout)
  if not parsed or type(doc) ~= "table" then
    error(what .. " did not print a JSON object", 0)
  end
  if doc.Version ~= 1 then
    local v = doc.Version
    v = type(v) == "number" and ("%g"):format(v) or str(v) or "(none)"
    error(("%s printed Version %s; only Version 1 is supported"):format(what, v), 0)
  end
  if not str(doc.AccessKeyId) or not str(doc.SecretAccessKey) then
    error(what .. " printed JSON without AccessKeyId and SecretAccessKey", 0)
  end
  return make(doc.AccessKeyId, doc.SecretAccessKey, doc.SessionToken, doc.Expiration,
    "credential_process (profile " .. profile .. ")")
end

-- Static keys or credential_process of one profile's settings; nil, why when it has neither.
local function from_profile_keys(opts, settings, profile)
  local id, secret = str(settings.aws_access_key_id), str(settings.aws_secret_access_key)
  if id and secret then
    return make(id, secret, settings.aws_session_token, nil,
      "shared files (profile " .. profile .. ")")
  end
  if str(settings.credential_process) then
    return from_process(opts, settings.credential_process, profile)
  end
  return nil, ("profile '%s' has no aws_access_key_id/aws_secret_access_key or "
    .. "credential_process"):format(profile)
end

local function from_files(opts)
  local settings, files, profile, explicit = M.profile_settings(opts)
  if not settings then
    -- An explicitly chosen profile that does not exist is a mistake to report, not a
    -- reason to fall through to the instance's role (botocore: ProfileNotFound).
    if explicit then
      error(("AWS profile '%s' not found in %s"):format(profile, files), 0)
    end
    return nil, ("profile '%s' not in %s"):format(profile, files)
  end
  return from_profile_keys(opts, settings, profile)
end

--- The credentials of profile `name` from the providers that read a profile (web
--- identity, SSO, static keys, credential_process), as botocore resolves a source_profile;
--- nil, why when it has none of them.
function M.from_profile(opts, config, name)
  local settings = config.profiles[name]
  if not settings then return nil, ("profile '%s' not in %s"):format(name, config.files) end
  local c, why = require("fo.aws.credentials.web_identity").from_profile(opts, settings, name)
  if c then return c end
  c = require("fo.aws.credentials.sso").from_profile(opts, config, settings, name)
  if c then return c end
  return from_profile_keys(opts, settings, name)
end

local from_imds
local function from_assume_role(opts)
  return require("fo.aws.credentials.roles").from_selected(opts)
end
local function from_web_identity(opts)
  return require("fo.aws.credentials.web_identity").from_selected(opts)
end
local function from_sso(opts)
  return require("fo.aws.credentials.sso").from_selected(opts)
end
local function from_container(opts)
  return require("fo.aws.credentials.container").resolve(opts)
end

function from_imds(opts)
  local env = opts.env
  if (env("AWS_EC2_METADATA_DISABLED") or ""):lower() == "true" then
    return nil, "disabled by AWS_EC2_METADATA_DISABLED"
  end
  local base = (nonempty(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_DEFAULT):gsub("/+$", "")
  local http = opts.http or require("fo.http")
  local timeout = opts.imds_timeout or M.IMDS_TIMEOUT
  -- One retry, as the SDKs do; returns the response or nil, why.
  local function req(r)
    r.timeout, r.connect_timeout = timeout, timeout
    local last
    for _ = 1, 2 do
      local ok, res = pcall(http.request, r)
      if ok and res.status < 500 then return res end
      last = ok and ("HTTP " .. res.status) or (type(res) == "table" and res.message or tostring(res))
    end
    return nil, last
  end
  local tok, err = req{ method = "PUT", url = base .. "/latest/api/token",
                        headers = { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21600" } }
  if not tok then return nil, ("no instance metadata service at %s (%s)"):format(base, err) end
  if tok.status ~= 200 then
    return nil, ("%s answered the IMDSv2 token request with HTTP %d"):format(base, tok.status)
  end
  log.add_secret(tok.body)
  local h = { ["X-aws-ec2-metadata-token"] = tok.body }
  local path = "/latest/meta-data/iam/security-credentials/"
  local roles
  roles, err = req{ url = base .. path, headers = h }
  local role = roles and roles.status == 200 and roles.body:match("^%s*([^%s]+)")
  if not role then
    return nil, "the instance has no IAM role" .. (err and (" (" .. err .. ")")
      or roles and roles.status ~= 200 and (" (HTTP " .. roles.status .. ")") or "")
  end
  local doc
  doc, err = req{ url = base .. path .. role, headers = h }
  if not doc or doc.status ~= 200 then
    return nil, ("cannot read the credentials of role %s (%s)"):format(role,
      err or ("HTTP " .. doc.status))
  end
  local ok, c = pcall(require("cjson").decode, doc.body)
  if not ok or type(c) ~= "table" or not str(c.AccessKeyId) or not str(c.SecretAccessKey) then
    return nil, "malformed credentials document for role " .. role
  end
  return make(c.AccessKeyId, c.SecretAccessKey, c.Token, c.Expiration, "IMDS (role " .. role .. ")")
end

-- The chain, in order: name for the message, function returning creds or nil, why.
M.SOURCES = {
  { name = "environment", fn = from_env },
  { name = "assume-role profile", fn = from_assume_role },
  { name = "web identity", fn = from_web_identity },
  { name = "SSO", fn = from_sso },
  { name = "shared files", fn = from_files },
  { name = "container", fn = from_container },
  { name = "IMDS", fn = from_imds },
}

-- What a profile's credential_source names (botocore's canonical names).
M.CREDENTIAL_SOURCES = { Environment = from_env, Ec2InstanceMetadata = from_imds,
  EcsContainer = from_container }

--- Runs the chain once; returns credentials or raises one message naming every source.
--- opts: profile, env (lookup function, default os.getenv), and for tests http,
--- run_process, imds_timeout.
function M.resolve(opts)
  opts = opts or {}
  local o = setmetatable({ env = opts.env or os.getenv }, { __index = opts })
  local tried = {}
  for _, src in ipairs(M.SOURCES) do
    local c, why = src.fn(o)
    if c then return c end
    tried[#tried + 1] = src.name .. ": " .. why
  end
  error("no AWS credentials found: " .. table.concat(tried, "; ")
    .. ". Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, configure a profile "
    .. "(aws configure), or run on an instance with an IAM role.", 0)
end

local function fresh(c, now)
  return c and (not c.expiration or c.expiration - M.REFRESH_BEFORE > now)
end

--- A provider: provider:get() returns valid credentials, refreshing them within
--- REFRESH_BEFORE seconds of their Expiration; concurrent callers during a refresh wait
--- for the one fetch in progress. If a refresh fails while the cached credentials have
--- not expired yet, those are used (and the failure logged) rather than failing calls.
function M.provider(opts)
  opts = opts or {}
  local clock = opts.clock or core.time
  local p = { cached = nil, pending = nil, force = false }

  local function refresh(previous)
    -- after a service said "expired", cached assumed roles are not trusted either
    local o = opts
    if p.force then o = setmetatable({ force_refresh = true }, { __index = opts }) end
    p.force = false
    local ok, c = pcall(M.resolve, o)
    if ok then return c end
    if previous and previous.expiration and previous.expiration > clock() then
      log.warn("credentials refresh failed, using the current ones until they expire: %s",
        tostring(c))
      return previous
    end
    error(c, 0)
  end

  function p:get()
    if fresh(self.cached, clock()) then return self.cached end
    local task = self.pending
    if not task then
      -- The fetch runs as its own task so that every caller waits on the same one; it
      -- returns pcall's results so that an error reaches callers as it was raised
      -- (a joined string error would come back with the task's traceback appended).
      task = require("fo.task").spawn(function(previous) return pcall(refresh, previous) end,
        self.cached)
      self.pending = task
    end
    local ok, value = task:join()
    if self.pending == task then self.pending = nil end
    if not ok then error(value, 0) end
    self.cached = value
    return value
  end

  --- Forgets the cached credentials (after the service said they expired).
  function p:invalidate() self.cached, self.force = nil, true end
  return p
end

-- Providers shared by every call: per environment lookup function, per profile.
local providers = setmetatable({}, { __mode = "k" })

--- The shared provider for a profile (nil = the selected one) and environment.
function M.for_profile(profile, env)
  env = env or os.getenv
  local by_profile = providers[env]
  if not by_profile then by_profile = {}; providers[env] = by_profile end
  local key = profile or "\0selected"
  local p = by_profile[key]
  if not p then
    p = M.provider{ profile = profile, env = env }
    by_profile[key] = p
  end
  return p
end

return M
