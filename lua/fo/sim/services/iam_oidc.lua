-- IAM OpenID Connect identity providers for the simulator (joined to iam.lua's handlers):
-- what STS AssumeRoleWithWebIdentity checks a token's issuer and audience against.
-- State (ctx.db of IAM): oidc_providers[<url without https://>] = {Url=, ClientIDList=,
-- ThumbprintList=, CreateDate=, Arn=, tags=}.
local M = {}

local function providers(ctx)
  ctx.db.oidc_providers = ctx.db.oidc_providers or {}
  return ctx.db.oidc_providers
end

--- "https://token.actions.githubusercontent.com/" → "token.actions.githubusercontent.com",
--- as IAM keys a provider (and as the trust policy's condition keys are prefixed).
function M.key_of(url)
  return (tostring(url):gsub("^https://", ""):gsub("/+$", ""))
end

local function by_arn(ctx, arn)
  local url = tostring(arn):match("^arn:aws:iam::%d+:oidc%-provider/(.+)$")
  local p = url and providers(ctx)[url]
  if not p or p.Arn ~= arn then
    ctx:fail("NoSuchEntity", ("OpenIDConnect Provider not found for arn %s"):format(arn), 404)
  end
  return p
end

function M.CreateOpenIDConnectProvider(ctx, p)
  if not tostring(p.Url):match("^https://[^/%s]+") then
    ctx:fail("InvalidInput", "Invalid Open ID Connect Provider URL: the URL must begin with https://")
  end
  local key = M.key_of(p.Url)
  if providers(ctx)[key] then
    ctx:fail("EntityAlreadyExists", ("Provider with url %s already exists."):format(p.Url), 409)
  end
  local arn = ctx:arn("oidc-provider/" .. key)
  providers(ctx)[key] = { Url = key, ClientIDList = p.ClientIDList or {},
    ThumbprintList = p.ThumbprintList or {}, CreateDate = math.floor(ctx:now()), Arn = arn,
    tags = p.Tags or {} }
  return { OpenIDConnectProviderArn = arn, Tags = p.Tags }
end

function M.GetOpenIDConnectProvider(ctx, p)
  local o = by_arn(ctx, p.OpenIDConnectProviderArn)
  return { Url = o.Url, ClientIDList = o.ClientIDList, ThumbprintList = o.ThumbprintList,
    CreateDate = o.CreateDate, Tags = #o.tags > 0 and o.tags or nil }
end

function M.ListOpenIDConnectProviders(ctx)
  local arns = {}
  for _, o in pairs(providers(ctx)) do arns[#arns + 1] = o.Arn end
  table.sort(arns)
  local out = {}
  for i, a in ipairs(arns) do out[i] = { Arn = a } end
  return { OpenIDConnectProviderList = out }
end

function M.DeleteOpenIDConnectProvider(ctx, p)
  local o = by_arn(ctx, p.OpenIDConnectProviderArn)
  providers(ctx)[o.Url] = nil
  return {}
end

return M
