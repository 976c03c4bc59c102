-- Components in `fo-run state list`, from the state alone: a resource's component is the
-- part of its name before the last "/" (a component names its resources
-- "<instance path>/<name>", component.lua), so the hierarchy shows without the recipe.
local component = require "fo.engine.component"
local term = require "fo.engine.term"

local M = {}

--- Whether the resource named `name` is in component `path` or one inside it (path nil:
--- every resource). "primary" and "primary/" mean the same.
function M.within(name, path)
  if path == nil then return true end
  path = path:gsub("/+$", "")
  return type(name) == "string" and name:sub(1, #path + 1) == path .. "/"
end

--- `rows` (each with .component) in tree order: top-level first, then by component path;
--- stable within one component.
function M.order(rows)
  for i, x in ipairs(rows) do x._i = i end
  table.sort(rows, function(a, b)
    local ca, cb = a.component or "", b.component or ""
    if ca ~= cb then return ca < cb end
    return a._i < b._i
  end)
  for _, x in ipairs(rows) do x._i = nil end
  return rows
end

--- Prints `rows` (in tree order) indented under a heading per component.
function M.tree(r, rows)
  local width = 0
  for _, x in ipairs(rows) do
    width = math.max(width, 2 * #component.lineage(x.component) + term.width(x.urn))
  end
  local shown = {}
  for _, x in ipairs(rows) do
    local lin = component.lineage(x.component)
    for depth, path in ipairs(lin) do
      if shown[depth] ~= path then
        shown[depth] = path
        r:out("%s%s/\n", ("  "):rep(depth - 1), path:match("[^/]+$"))
      end
    end
    for depth = #lin + 1, #shown do shown[depth] = nil end
    local indent = ("  "):rep(#lin)
    r:out("%s%s  %-12s %s%s\n", indent, term.pad(x.urn, width - #indent), x.region or "",
      x.id, x.deposed and "  (replaced: deleted by the next apply)" or "")
  end
end

return M
