-- SSM handlers: the public parameters the failover stack reads (the Amazon Linux 2 AMI
-- id per region). Anything else is ParameterNotFound, as for a parameter nobody created.
local amis = require "fo.sim.amis"

local M = {}

-- Public parameter name → function(ctx) returning its value.
local PUBLIC = {
  [amis.AL2_PARAMETER] = function(ctx) return amis.al2(ctx.region) end,
}

-- "name", "name:3" (version) or "name:label" → name (selectors are not kept apart here:
-- public parameters have one current version).
local function base_name(name)
  return name:match("^(.-):[^/:]*$") or name
end

local function parameter(ctx, name)
  local value = PUBLIC[base_name(name)]
  if not value then return nil end
  return {
    Name = base_name(name), Type = "String", Value = value(ctx),
    Version = amis.AL2_PARAMETER_VERSION, LastModifiedDate = amis.AL2_MODIFIED,
    -- Public parameters belong to no account: the ARN's account field is empty.
    ARN = ctx:arn("parameter" .. base_name(name), { account = "" }), DataType = "text",
  }
end

function M.GetParameter(ctx, p)
  local param = parameter(ctx, p.Name)
  if not param then ctx:fail("ParameterNotFound", "") end
  return { Parameter = param }
end

function M.GetParameters(ctx, p)
  local found, invalid = {}, {}
  for _, name in ipairs(p.Names) do
    local param = parameter(ctx, name)
    if param then found[#found + 1] = param else invalid[#invalid + 1] = name end
  end
  return { Parameters = found, InvalidParameters = invalid }
end

return M
