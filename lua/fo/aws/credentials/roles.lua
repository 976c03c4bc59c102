-- Assume-role profiles, as botocore's AssumeRoleProvider reads them: role_arn with either
-- source_profile (another profile's credentials, chains allowed, cycles refused) or
-- credential_source (Environment, Ec2InstanceMetadata, EcsContainer), plus external_id,
-- role_session_name, duration_seconds and mfa_serial (the code is asked on the terminal).
-- Assumed credentials are cached in-process by the call's arguments and source key, so a
-- chain or two profiles of one role call AssumeRole (and ask for an MFA code) once per
-- session rather than once per use; and in the AWS CLI's file cache (~/.aws/cli/cache,
-- same file names and format), so that fo and `aws` share a role session (and its MFA
-- code) across processes.
local sts = require "fo.aws.credentials.sts"

local M = {}

M.MIN_DURATION, M.MAX_DURATION = 900, 43200
M.SESSION_PREFIX = "fo-session-" -- botocore's is botocore-session-<seconds>

local cache = {}

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

--- True when `settings` make a profile an assume-role profile (a web identity profile has
--- role_arn too, and is not one).
function M.applies(settings)
  return settings ~= nil and str(settings.role_arn) ~= nil
    and str(settings.web_identity_token_file) == nil
end

local function has_static(settings)
  return settings.aws_access_key_id ~= nil or settings.aws_secret_access_key ~= nil
end

--- Forgets every cached assumed role (tests; a changed config).
function M.clear_cache() cache = {} end

local function now(opts) return (opts.clock or require("fo.core").time)() end

M.FILE_CACHE_WINDOW = 15 * 60 -- botocore's: a cached session with less left is not used

-- Python's json.dumps of a string (ensure_ascii): nil for what is not plain ASCII, which
-- then just is not file-cached.
local function py_string(v)
  if type(v) ~= "string" or v:find("[^\32-\126]") then return nil end
  return '"' .. v:gsub('[\\"]', "\\%0") .. '"'
end

-- The CLI's cache file name: sha1 of json.dumps(args, sort_keys=True), args being the
-- AssumeRole parameters without a generated RoleSessionName.
function M.cli_cache_key(args)
  local names = {}
  for k in pairs(args) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do
    local v = args[k]
    local enc = math.type(v) == "integer" and tostring(v) or py_string(v)
    if not enc then return nil end
    parts[#parts + 1] = ('"%s": %s'):format(k, enc)
  end
  local crypto = require "fo.crypto"
  return crypto.hex(crypto.sha1("{" .. table.concat(parts, ", ") .. "}"))
end

local function cli_cache_file(opts, key)
  local home = require("fo.aws.credentials").nonempty(opts.env, "HOME")
  return home and key and ("%s/.aws/cli/cache/%s.json"):format(home, key) or nil
end

-- A session from the CLI's cache with more than FILE_CACHE_WINDOW left, or nil.
local function from_cli_cache(opts, path, source)
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(require("fo.json").decode, text)
  local c = ok and type(doc) == "table" and type(doc.Credentials) == "table" and doc.Credentials
  if not c or type(c.AccessKeyId) ~= "string" or type(c.SecretAccessKey) ~= "string" then
    return nil
  end
  local creds = require "fo.aws.credentials"
  local exp = creds.epoch_of(c.Expiration)
  if not exp or exp - now(opts) < M.FILE_CACHE_WINDOW then return nil end
  return creds.make(c.AccessKeyId, c.SecretAccessKey, c.SessionToken, exp, source)
end

local function to_cli_cache(path, c)
  if not path then return end
  local doc = { Credentials = { AccessKeyId = c.access_key, SecretAccessKey = c.secret_key,
    SessionToken = c.session_token,
    Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(c.expiration)) } }
  local fs = require "fo.fs"
  -- a cache that cannot be written costs a later AssumeRole, nothing more
  pcall(function()
    fs.mkdir_p(path:match("^(.*)/"), tonumber("700", 8))
    fs.write_atomic(path, require("fo.json").encode(doc), tonumber("600", 8))
  end)
end

-- The MFA code for `serial`: opts.mfa_prompt (tests, embedders), else asked on the
-- terminal; without one, a message naming the profile and what to do instead.
local function mfa_code(opts, serial, profile)
  if opts.mfa_prompt then return opts.mfa_prompt(serial, profile) end
  if not fo.fs.isatty(io.stdin) then
    error(("profile '%s' needs an MFA code (mfa_serial %s) and stdin is not a terminal to "
      .. "ask for it: run fo interactively once (the credentials are cached while they "
      .. "last), or use a profile without mfa_serial in CI (web identity, SSO)")
      :format(profile, serial), 0)
  end
  -- not echoed, as botocore's getpass
  local code = fo.fs.read_hidden(io.stdin, ("Enter MFA code for %s: "):format(serial))
  code = code and code:match("^%s*(%d+)%s*$")
  if not code then error(("profile '%s': the MFA code must be digits"):format(profile), 0) end
  return code
end

-- duration_seconds of profile `name`, checked (900–43200, botocore's accepted range).
local function duration_of(settings, name)
  local v = settings.duration_seconds
  if v == nil then return nil end
  local n = math.tointeger(tonumber(v))
  if not n or n < M.MIN_DURATION or n > M.MAX_DURATION then
    error(("profile '%s': duration_seconds is '%s'; it must be a whole number of seconds "
      .. "from %d to %d"):format(name, tostring(v), M.MIN_DURATION, M.MAX_DURATION), 0)
  end
  return n
end

-- The source credentials of assume-role profile `name`.
local function source_of(opts, config, name, settings, visited)
  local creds = require "fo.aws.credentials"
  local src_profile, cred_source = str(settings.source_profile), str(settings.credential_source)
  if src_profile and cred_source then
    error(("profile '%s' has both source_profile and credential_source; keep one of them")
      :format(name), 0)
  end
  if not src_profile and not cred_source then
    error(("profile '%s' has role_arn but neither source_profile nor credential_source: "
      .. "say where the credentials that assume the role come from"):format(name), 0)
  end
  if cred_source then
    local fn = creds.CREDENTIAL_SOURCES[cred_source]
    if not fn then
      error(("profile '%s': credential_source '%s' is not one of Environment, "
        .. "Ec2InstanceMetadata, EcsContainer"):format(name, cred_source), 0)
    end
    -- the named source itself, even when a profile was given (from_env skips then)
    local c, why = fn(setmetatable({ sourcing = true }, { __index = opts }))
    if not c then
      error(("profile '%s': credential_source %s gave no credentials (%s)"):format(name,
        cred_source, why or "nothing found"), 0)
    end
    return c
  end
  local source = config.profiles[src_profile]
  if not source then
    error(("profile '%s': its source_profile '%s' does not exist in %s"):format(name,
      src_profile, config.files), 0)
  end
  for _, seen in ipairs(visited) do
    if seen == src_profile then
      -- A profile may name itself to use its own static keys (botocore allows it).
      if src_profile == name and has_static(source) and #visited == 1 then
        local c, why = creds.from_profile(opts, { profiles = { [name] = {
          aws_access_key_id = source.aws_access_key_id,
          aws_secret_access_key = source.aws_secret_access_key,
          aws_session_token = source.aws_session_token } }, files = config.files }, name)
        if not c then error(("profile '%s': %s"):format(name, why), 0) end
        return c
      end
      local chain = {}
      for i, p in ipairs(visited) do chain[i] = p end
      chain[#chain + 1] = src_profile
      error(("the source_profile settings form a cycle: %s; make one of these profiles "
        .. "end the chain with keys, credential_source, SSO or web identity")
        :format(table.concat(chain, " -> ")), 0)
    end
  end
  visited[#visited + 1] = src_profile
  if M.applies(source) and not has_static(source) then
    return M.assume(opts, config, src_profile, visited)
  end
  local c, why = creds.from_profile(opts, config, src_profile)
  if not c then
    error(("profile '%s': its source_profile '%s' has no credentials (%s)"):format(name,
      src_profile, why or "none"), 0)
  end
  return c
end

--- The credentials of assume-role profile `name` (config: fo.aws.credentials.load_config).
--- `visited`: the profiles of the chain so far (cycle detection).
function M.assume(opts, config, name, visited)
  local creds = require "fo.aws.credentials"
  local settings = config.profiles[name]
  visited = visited or { name }
  local duration = duration_of(settings, name)
  local source = source_of(opts, config, name, settings, visited)
  local args = { RoleArn = settings.role_arn, ExternalId = str(settings.external_id),
    SerialNumber = str(settings.mfa_serial), DurationSeconds = duration,
    RoleSessionName = str(settings.role_session_name) }
  -- The cache key leaves a defaulted session name out (it has the time in it), as the
  -- CLI's cache does, and includes the source key: other source credentials, other role
  -- session.
  local key = table.concat({ args.RoleArn, args.ExternalId or "", args.SerialNumber or "",
    tostring(duration or ""), args.RoleSessionName or "", source.access_key }, "\0")
  local hit = cache[key]
  if hit and not opts.force_refresh
      and hit.expiration and hit.expiration - creds.REFRESH_BEFORE > now(opts) then
    return hit
  end
  local label = ("assume-role profile '%s' (%s)"):format(name, args.RoleArn)
  local file = cli_cache_file(opts, M.cli_cache_key(args))
  if not opts.force_refresh then
    local cached = from_cli_cache(opts, file, label)
    if cached then
      cache[key] = cached
      return cached
    end
  end
  args.RoleSessionName = args.RoleSessionName
    or (M.SESSION_PREFIX .. math.floor(now(opts)))
  if args.SerialNumber then
    local code = mfa_code(opts, args.SerialNumber, name)
    args.TokenCode = code
  end
  local c = sts.call(opts, "AssumeRole", args, source, label,
    ("profile '%s': AssumeRole of %s failed"):format(name, args.RoleArn))
  cache[key] = c
  if c.expiration then to_cli_cache(file, c) end
  return c
end

--- The chain's assume-role source: the selected profile when it has role_arn (and is not
--- a web identity profile); nil, why otherwise.
function M.from_selected(opts)
  local creds = require "fo.aws.credentials"
  local where = creds.locate(opts)
  local config = creds.load_config(opts, where)
  local settings = config.profiles[where.profile]
  if not M.applies(settings) then
    return nil, ("profile '%s' has no role_arn"):format(where.profile)
  end
  return M.assume(opts, config, where.profile)
end

return M
