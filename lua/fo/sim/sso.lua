-- IAM Identity Center for the simulator: the portal's GetRoleCredentials (GET
-- /federation/credentials?account_id=&role_name= with the x-amz-sso_bearer_token header)
-- and SSO OIDC CreateToken's refresh_token grant (POST /token), the two calls a profile
-- with sso_session makes once `aws sso login` has left a token. Both are unsigned REST
-- JSON calls, answered here without the model pipeline. A test stands in for the login:
-- sim:sso_login{...} issues the token (what the CLI writes to its cache) and says which
-- account/role pairs (permission sets) it may use. Errors as AWS answers them: 401
-- UnauthorizedException (unknown or expired token), 403 ForbiddenException (no such
-- assignment), 400 InvalidGrantException / 401 InvalidClientException (CreateToken).
local json = require "fo.json"
local log = require "fo.log"

local M = {}

M.TOKEN_SECONDS = 8 * 3600 -- an access token's life (IAM Identity Center's default)
M.ROLE_SECONDS = 3600      -- the role credentials' life (a permission set's default)

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function state(sim)
  sim._sso = sim._sso or { tokens = {}, refresh = {}, clients = {} }
  return sim._sso
end

local function iso(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

local function new_token(sim, grant)
  local s = state(sim)
  local access = "aoa" .. sim.store:chars(60, B64)
  local refresh = "aor" .. sim.store:chars(60, B64)
  log.add_secret(access); log.add_secret(refresh)
  local expires = sim.clock:now() + (grant.seconds or M.TOKEN_SECONDS)
  s.tokens[access] = { expires = expires, assignments = grant.assignments, user = grant.user,
    client = grant.client }
  s.refresh[refresh] = { assignments = grant.assignments, user = grant.user,
    client = grant.client, seconds = grant.seconds }
  return access, refresh, expires
end

--- Stands in for `aws sso login`: registers a client and issues an access token (and
--- refresh token) for opts = {assignments = {{account=, role=}, ...}, user= (default
--- "fo-user"), seconds= (token life, default 8 h), start_url=, region=}. Returns the token
--- cache document the CLI writes (accessToken, expiresAt, refreshToken, clientId,
--- clientSecret, registrationExpiresAt, startUrl, region).
function M.login(sim, opts)
  local s = state(sim)
  local client = "cli" .. sim.store:chars(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
  local secret = "sec" .. sim.store:chars(60, B64)
  log.add_secret(secret)
  s.clients[client] = secret
  local access, refresh, expires = new_token(sim, { assignments = opts.assignments or {},
    user = opts.user or "fo-user", seconds = opts.seconds, client = client })
  return { accessToken = access, expiresAt = iso(expires), refreshToken = refresh,
    clientId = client, clientSecret = secret,
    registrationExpiresAt = iso(sim.clock:now() + 90 * 86400),
    startUrl = opts.start_url, region = opts.region }
end

local function respond(status, doc, code)
  local headers = { ["Content-Type"] = "application/json" }
  if code then headers["x-amzn-ErrorType"] = code end
  return { status = status, headers = headers, body = json.encode(doc) }
end

local function query_param(query, name)
  for pair in (query or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k == name then
      return (v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
  end
end

local function get_role_credentials(sim, req)
  local s = state(sim)
  local token = req.headers["x-amz-sso_bearer_token"]
  local t = token and s.tokens[token]
  if not t or t.expires <= sim.clock:now() then
    return respond(401, { message = "Session token not found or invalid" }, "UnauthorizedException"),
      "UnauthorizedException"
  end
  local account, role = query_param(req.query, "account_id"), query_param(req.query, "role_name")
  local ok = false
  for _, a in ipairs(t.assignments) do
    if a.account == account and a.role == role then ok = true end
  end
  if not ok then
    return respond(403, { message = "No access" }, "ForbiddenException"), "ForbiddenException"
  end
  local key = "ASIA" .. sim.store:chars(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
  local secret = sim.store:chars(40, B64)
  local session = "IQoJb3JpZ2luX2Vj" .. sim.store:chars(200, B64)
  local expires = sim.clock:now() + M.ROLE_SECONDS
  local role_name = ("AWSReservedSSO_%s_%s"):format(role, sim.store:chars(16, "0123456789abcdef"))
  sim:add_key{ access_key = key, secret_key = secret, session_token = session, account = account,
    user = role_name, user_id = "AROA" .. sim.store:chars(17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") .. ":" .. t.user,
    arn = ("arn:aws:sts::%s:assumed-role/%s/%s"):format(account, role_name, t.user),
    expires = expires }
  return respond(200, { roleCredentials = { accessKeyId = key, secretAccessKey = secret,
    sessionToken = session, expiration = math.floor(expires) * 1000 } })
end

local function create_token(sim, req)
  local s = state(sim)
  local ok, p = pcall(json.decode, req.body)
  if not ok or type(p) ~= "table" then
    return respond(400, { error = "invalid_request" }, "InvalidRequestException"),
      "InvalidRequestException"
  end
  if not p.clientId or s.clients[p.clientId] ~= p.clientSecret then
    return respond(401, { error = "invalid_client" }, "InvalidClientException"),
      "InvalidClientException"
  end
  if p.grantType ~= "refresh_token" then
    return respond(400, { error = "unsupported_grant_type" }, "UnsupportedGrantTypeException"),
      "UnsupportedGrantTypeException"
  end
  local r = p.refreshToken and s.refresh[p.refreshToken]
  if not r or r.client ~= p.clientId then
    return respond(400, { error = "invalid_grant", error_description = "Invalid refresh token provided" },
      "InvalidGrantException"), "InvalidGrantException"
  end
  s.refresh[p.refreshToken] = nil -- refresh tokens are single-use
  -- a refreshed token lives the default life, whatever the login's was
  local access, refresh, expires = new_token(sim, { assignments = r.assignments, user = r.user,
    client = r.client })
  return respond(200, { accessToken = access, tokenType = "Bearer",
    expiresIn = math.floor(expires - sim.clock:now()), refreshToken = refresh })
end

--- The answer to req (normalized: method, path, query, lower-case headers, body) when it
--- is an SSO portal or SSO OIDC call, with the server's log summary; nil otherwise.
function M.answer(sim, req)
  if req.headers.authorization then return nil end
  local resp, code, info
  if req.method == "GET" and req.path == "/federation/credentials" then
    resp, code = get_role_credentials(sim, req)
    info = { service = "sso", operation = "GetRoleCredentials" }
  elseif req.method == "POST" and req.path == "/token" then
    resp, code = create_token(sim, req)
    info = { service = "sso-oidc", operation = "CreateToken" }
  else
    return nil
  end
  info.region = (req.headers.host or ""):match("^[%w.-]-sso%.([%w-]+)%.amazonaws") or
    (req.headers.host or ""):match("^oidc%.([%w-]+)%.amazonaws") or "-"
  info.status, info.code = resp.status, code
  return resp, info
end

return M
