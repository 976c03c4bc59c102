-- Which region a client talks to: explicit option, AWS_REGION, AWS_DEFAULT_REGION, then
-- the profile's `region` in the shared config file.
local credentials = require "fo.aws.credentials"

local M = {}

-- Strict on purpose: the region becomes part of a host name and of the signature scope.
local function valid(r)
  return type(r) == "string" and r:match("^[a-z][a-z]%-[a-z%-]+%-%d+$") ~= nil
end
M.valid = valid

--- Returns the region, or raises a message saying where it looked.
--- opts: region (explicit), profile, env (lookup function, default os.getenv).
function M.resolve(opts)
  opts = opts or {}
  local env = opts.env or os.getenv
  local candidates = {
    { opts.region, "the region option" },
    { env("AWS_REGION"), "AWS_REGION" },
    { env("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION" },
  }
  for _, c in ipairs(candidates) do
    if c[1] and c[1] ~= "" then
      if not valid(c[1]) then
        error(("%s is '%s', which is not a region name (like eu-south-1)"):format(c[2],
          tostring(c[1])), 0)
      end
      return c[1]
    end
  end
  local settings, files, profile = credentials.profile_settings{ env = env, profile = opts.profile }
  if settings and type(settings.region) == "string" and settings.region ~= "" then
    if not valid(settings.region) then
      error(("profile '%s' has region '%s', which is not a region name (like eu-south-1)")
        :format(profile, settings.region), 0)
    end
    return settings.region
  end
  error(("no AWS region: give region = ..., set AWS_REGION or AWS_DEFAULT_REGION, or set "
    .. "region in profile '%s' (%s%s)"):format(profile, settings and "" or "not found in ",
    files), 0)
end

return M
