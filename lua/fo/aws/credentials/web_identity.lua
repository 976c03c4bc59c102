-- Web identity (botocore's AssumeRoleWithWebIdentityProvider): an OIDC token in a file
-- (GitHub Actions, EKS service accounts) exchanged for a role's credentials with the
-- unsigned STS call AssumeRoleWithWebIdentity. From AWS_WEB_IDENTITY_TOKEN_FILE,
-- AWS_ROLE_ARN and AWS_ROLE_SESSION_NAME (unless a profile was given as an option), else
-- the profile's web_identity_token_file, role_arn and role_session_name. The file is read
-- again on every refresh: the platform rotates the token in place.
local sts = require "fo.aws.credentials.sts"
local log = require "fo.log"

local M = {}

local ENV = { web_identity_token_file = "AWS_WEB_IDENTITY_TOKEN_FILE",
  role_arn = "AWS_ROLE_ARN", role_session_name = "AWS_ROLE_SESSION_NAME" }

local function str(v) return type(v) == "string" and v ~= "" and v or nil end

-- settings: the profile's (nil when none); env vars win unless the profile is explicit.
local function fetch(opts, settings, name, use_env)
  local function get(key)
    if use_env then
      local v = str(opts.env(ENV[key]))
      if v then return v, ENV[key] end
    end
    return settings and str(settings[key]), ("%s of profile '%s'"):format(key, name)
  end
  local file, file_where = get("web_identity_token_file")
  if not file then return nil, "no AWS_WEB_IDENTITY_TOKEN_FILE or web_identity_token_file" end
  local role_arn = get("role_arn")
  if not role_arn then
    error(("%s is set but no role ARN is: set AWS_ROLE_ARN or role_arn in the profile")
      :format(file_where), 0)
  end
  local session = get("role_session_name")
    or (require("fo.aws.credentials.roles").SESSION_PREFIX
      .. math.floor((opts.clock or require("fo.core").time)()))
  local f, err = io.open(file, "rb")
  if not f then
    error(("web identity token file %s (%s) cannot be read: %s"):format(file, file_where,
      tostring(err)), 0)
  end
  local token = f:read("a"):gsub("%s+$", "")
  f:close()
  if token == "" then error(("web identity token file %s is empty"):format(file), 0) end
  log.add_secret(token)
  return sts.call(opts, "AssumeRoleWithWebIdentity",
    { RoleArn = role_arn, RoleSessionName = session, WebIdentityToken = token }, nil,
    ("web identity (%s)"):format(role_arn),
    ("web identity: AssumeRoleWithWebIdentity of %s failed"):format(role_arn))
end

--- The chain's web identity source for the selected profile; nil, why when not set up.
function M.from_selected(opts)
  local creds = require "fo.aws.credentials"
  local where = creds.locate(opts)
  local settings = creds.profile_settings(opts)
  return fetch(opts, settings, where.profile, opts.profile == nil)
end

--- A source_profile's web identity settings (no environment): credentials or nil, why.
function M.from_profile(opts, settings, name)
  return fetch(opts, settings, name, false)
end

return M
