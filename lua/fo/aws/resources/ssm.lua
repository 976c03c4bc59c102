-- aws:ssm:parameter_value: a read-only lookup of an SSM parameter in the resource's region
-- (e.g. the Amazon Linux 2 AMI id of /aws/service/ami-amazon-linux-latest/...). Creating
-- it reads the parameter; refresh reads it again, so a new AMI reaches what references
-- the value; deleting it deletes nothing.
local common = require "fo.aws.resources.common"

local M = {}

--- The public parameter holding the latest Amazon Linux 2 AMI id (x86_64, gp2) of a region.
M.AL2_AMI = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

local function get(ctx, name)
  local ssm = ctx:client("ssm")
  local out = common.unless({ "ParameterNotFound" }, ssm.GetParameter, ssm, { Name = name })
  return out and out.Parameter
end

local function outputs(p)
  return { name = p.Name, value = p.Value, version = p.Version, type = p.Type, arn = p.ARN }
end

fo.type("aws:ssm:parameter_value", {
  doc = "the value of an SSM parameter (a lookup: nothing is created or deleted)",
  schema = {
    properties = {
      name = { type = "string", required = true },
    },
    outputs = { "name", "value", "version", "type", "arn" },
    mutable_outputs = { "value", "version" },
    replace_on = { "name" },
  },
  create = function(ctx, p)
    local param = get(ctx, p.name)
    if not param then
      error(("SSM parameter %s does not exist in %s"):format(p.name, ctx.region), 0)
    end
    return p.name, outputs(param)
  end,
  read = function(ctx, name)
    local param = get(ctx, name)
    if not param then return nil end
    return outputs(param), { name = name }
  end,
  delete = function() end,
  adopt = function(ctx, p)
    -- Nothing was created: taking it over is reading it.
    if ctx.known_ids[p.name] then return nil end
    local param = get(ctx, p.name)
    if param then return p.name, outputs(param) end
    return nil
  end,
})

return M
