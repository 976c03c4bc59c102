-- IAM Identity Center (SSO) profiles, as botocore's SSOProvider reads them: sso_account_id
-- and sso_role_name, with sso_session (an [sso-session NAME] section: sso_start_url,
-- sso_region, sso_registration_scopes) or the legacy sso_start_url and sso_region in the
-- profile. `aws sso login` leaves the access token in ~/.aws/sso/cache/<sha1 of the session
-- name, or of the start URL for legacy profiles>.json; fo reads it, refreshes it (sso-session
-- profiles only, as botocore) with SSO OIDC CreateToken when it expires within 15 minutes,
-- writes the cache back atomically, and trades it for the role's credentials with the
-- portal's GetRoleCredentials. fo never logs in itself: without a valid token the message
-- says to run `aws sso login`.
local log = require "fo.log"
local json = require "fo.json"

local M = {}

M.REFRESH_WINDOW = 15 * 60 -- seconds, botocore's SSOTokenProvider window

local KEYS = { "sso_start_url", "sso_region", "sso_role_name", "sso_account_id", "sso_session" }

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

local function now(opts) return (opts.clock or require("fo.core").time)() end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

--- True when `settings` configure SSO (any sso_* key, as botocore decides).
function M.applies(settings)
  if not settings then return false end
  for _, k in ipairs(KEYS) do if str(settings[k]) then return true end end
  return false
end

local function login_hint(name)
  return ("run `aws sso login --profile %s`"):format(name)
end

-- {start_url=, region=, session=, account=, role=} of profile `name`, checked.
local function config_of(config, settings, name)
  local c = { account = str(settings.sso_account_id), role = str(settings.sso_role_name),
    session = str(settings.sso_session) }
  if c.session then
    local s = config.sso_sessions[c.session]
    if not s then
      error(("profile '%s' names sso_session '%s', but there is no [sso-session %s] section "
        .. "in the config file"):format(name, c.session, c.session), 0)
    end
    c.start_url, c.region = str(s.sso_start_url), str(s.sso_region)
    for _, k in ipairs({ "sso_start_url", "sso_region" }) do
      local mine = str(settings[k])
      if mine and mine ~= str(s[k]) then
        error(("profile '%s': its %s differs from the one of [sso-session %s]; remove it "
          .. "from the profile"):format(name, k, c.session), 0)
      end
    end
  else
    c.start_url, c.region = str(settings.sso_start_url), str(settings.sso_region)
  end
  local missing = {}
  if not c.start_url then missing[#missing + 1] = "sso_start_url" end
  if not c.region then missing[#missing + 1] = "sso_region" end
  if not c.account then missing[#missing + 1] = "sso_account_id" end
  if not c.role then missing[#missing + 1] = "sso_role_name" end
  if #missing > 0 then
    error(("profile '%s' is configured for IAM Identity Center (SSO) but is missing %s")
      :format(name, table.concat(missing, ", ")), 0)
  end
  return c
end

--- The token cache file of a session name (sso-session profiles) or start URL (legacy).
function M.cache_file(opts, key)
  local home = require("fo.aws.credentials").nonempty(opts.env, "HOME") or "~"
  local crypto = require "fo.crypto"
  return ("%s/.aws/sso/cache/%s.json"):format(home, crypto.hex(crypto.sha1(key)))
end

local function secret(v) if type(v) == "string" then log.add_secret(v) end end

-- The cached token, its secrets registered; nil when there is none.
local function read_token(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, t = pcall(json.decode, text)
  if not ok or type(t) ~= "table" then return nil end
  secret(t.accessToken); secret(t.refreshToken); secret(t.clientSecret)
  return t
end

-- A new access token from SSO OIDC CreateToken (refresh_token grant), or nil (logged:
-- the old token is then used while it lasts, as botocore does).
local function refresh(opts, c, t)
  for _, k in ipairs({ "refreshToken", "clientId", "clientSecret", "registrationExpiresAt" }) do
    if not str(t[k]) then return nil end
  end
  local creds = require "fo.aws.credentials"
  local reg = creds.epoch_of(t.registrationExpiresAt)
  if not reg or reg <= now(opts) then return nil end
  local ok, resp = pcall(require("fo.aws.call"), {
    service = "sso_oidc", operation = "CreateToken", region = c.region, profile = opts.profile,
    env = opts.env, http = opts.http, method = "POST", path = "/token", unsigned = true,
    headers = { ["Content-Type"] = "application/json" }, sleep = opts.sleep,
    body = json.encode({ grantType = "refresh_token", clientId = t.clientId,
      clientSecret = t.clientSecret, refreshToken = t.refreshToken }),
  })
  if ok then
    local dok, doc = pcall(json.decode, resp.body or "")
    if dok and type(doc) == "table" and str(doc.accessToken) and tonumber(doc.expiresIn) then
      secret(doc.accessToken); secret(doc.refreshToken)
      return { startUrl = c.start_url, region = c.region, accessToken = doc.accessToken,
        expiresAt = iso(now(opts) + tonumber(doc.expiresIn)), clientId = t.clientId,
        clientSecret = t.clientSecret, registrationExpiresAt = t.registrationExpiresAt,
        refreshToken = str(doc.refreshToken) or t.refreshToken }
    end
    resp = "CreateToken answered without accessToken and expiresIn"
  end
  log.warn("SSO token refresh failed: %s", log.redact(tostring(resp)))
  return nil
end

-- The access token of profile `name`: the cached one, refreshed when it is about to
-- expire; raises the `aws sso login` message when there is no valid one.
local function access_token(opts, c, name)
  local path = M.cache_file(opts, c.session or c.start_url)
  local t = read_token(path)
  local expires = t and require("fo.aws.credentials").epoch_of(t.expiresAt)
  if not t or not str(t.accessToken) or not expires then
    error(("profile '%s': no IAM Identity Center (SSO) token in %s; %s"):format(name, path,
      login_hint(name)), 0)
  end
  if c.session and expires - now(opts) < M.REFRESH_WINDOW then
    local fresh = refresh(opts, c, t)
    if fresh then
      require("fo.fs").mkdir_p(path:match("^(.*)/"), tonumber("700", 8))
      require("fo.fs").write_atomic(path, json.encode(fresh), tonumber("600", 8))
      t, expires = fresh, require("fo.aws.credentials").epoch_of(fresh.expiresAt)
    end
  end
  if expires <= now(opts) then
    error(("profile '%s': the IAM Identity Center (SSO) session has expired; %s")
      :format(name, login_hint(name)), 0)
  end
  return t.accessToken
end

local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

--- The role credentials of SSO profile `name` (config: fo.aws.credentials.load_config).
function M.credentials(opts, config, settings, name)
  local c = config_of(config, settings, name)
  local token = access_token(opts, c, name)
  local ok, resp = pcall(require("fo.aws.call"), {
    service = "sso", operation = "GetRoleCredentials", region = c.region,
    profile = opts.profile, env = opts.env, http = opts.http, method = "GET",
    path = "/federation/credentials", unsigned = true, sleep = opts.sleep,
    query = ("account_id=%s&role_name=%s"):format(escape(c.account), escape(c.role)),
    headers = { ["x-amz-sso_bearer_token"] = token },
  })
  if not ok then
    local AwsError = require "fo.aws.error"
    if AwsError.is(resp, "UnauthorizedException") then
      error(("profile '%s': the IAM Identity Center (SSO) token was refused; %s"):format(name,
        login_hint(name)), 0)
    end
    error(("profile '%s': GetRoleCredentials of role %s in account %s failed: %s"):format(name,
      c.role, c.account, log.redact(tostring(resp))), 0)
  end
  local dok, doc = pcall(json.decode, resp.body or "")
  local rc = dok and type(doc) == "table" and doc.roleCredentials
  if type(rc) ~= "table" or not str(rc.accessKeyId) or not str(rc.secretAccessKey) then
    error(("profile '%s': GetRoleCredentials answered without roleCredentials"):format(name), 0)
  end
  local exp = tonumber(rc.expiration)
  return require("fo.aws.credentials").make(rc.accessKeyId, rc.secretAccessKey,
    rc.sessionToken, exp and math.tointeger(exp // 1000) or nil,
    ("SSO (profile %s, role %s)"):format(name, c.role))
end

--- A profile's SSO credentials (as a source_profile too): nil, why when not SSO.
function M.from_profile(opts, config, settings, name)
  if not M.applies(settings) then return nil, ("profile '%s' has no sso_* settings"):format(name) end
  return M.credentials(opts, config, settings, name)
end

--- The chain's SSO source for the selected profile.
function M.from_selected(opts)
  local creds = require "fo.aws.credentials"
  local where = creds.locate(opts)
  local config = creds.load_config(opts, where)
  return M.from_profile(opts, config, config.profiles[where.profile], where.profile)
end

return M
