-- Where a stack's files are, and what a recipe is called in them: found from the recipe
-- file, not from the shell's current directory, so `fo-run recipes/trading.lua` and
-- `cd recipes && fo-run trading.lua` are the same stack (docs/engine.md, "Stack identity").
local fs = require "fo.fs"

local M = {}

M.DIR_NAME = ".fo"

local function parent(path)
  if path == "/" then return nil end
  local p = path:match("^(.*)/[^/]*$")
  if p == "" then return "/" end
  return p
end

--- The project root of a recipe file: walking up from the file's directory, the first
--- directory that holds a `.fo` (the stack directory already made), or else the first that
--- holds `.git` (the search stops at a repository's root, as git's own does); the recipe's
--- own directory when neither is found. nil when neither the file nor its folder exists.
function M.root(recipe_path)
  local start = fs.realpath(recipe_path)
  start = start and parent(start)
  if not start then -- a recipe that is gone (--destroy needs none): its folder may be there
    local folder = recipe_path:match("^(.*)/[^/]*$")
    start = fs.realpath(folder == nil and "." or folder == "" and "/" or folder)
    if not start then return nil end
  end
  local dir = start
  while dir do
    local here = dir == "/" and "" or dir
    if fs.exists(here .. "/" .. M.DIR_NAME) or fs.exists(here .. "/.git") then return dir end
    dir = parent(dir)
  end
  return start
end

--- The stack directory: `dir` when given (--state-dir), else $FO_STATE_DIR, else `.fo` in the
--- recipe file's project root (M.root), else `.fo` in the current directory (a recipe read
--- from standard input, or a function).
function M.state_dir(dir, recipe_path)
  if dir then return dir end
  local env = os.getenv("FO_STATE_DIR")
  if env and env ~= "" then return env end
  if type(recipe_path) == "string" and recipe_path ~= "-" then
    local root = M.root(recipe_path)
    if root then return (root == "/" and "" or root) .. "/" .. M.DIR_NAME end
  end
  return M.DIR_NAME
end

--- The name a stack records for its recipe: the file's path relative to the directory
--- that holds the stack directory (so it reads the same from any current directory and
--- after the checkout moves), or its absolute path when it lies outside; "-" for standard
--- input; nil for a recipe that is no file.
function M.recipe_name(recipe_path, state_dir)
  if type(recipe_path) ~= "string" then return nil end
  if recipe_path == "-" then return "-" end
  local abs = fs.realpath(recipe_path)
  if not abs then return recipe_path end
  local holder = state_dir:match("^(.*)/[^/]+/*$")
  local root = fs.realpath(holder == nil and "." or holder == "" and "/" or holder)
  if root then
    local prefix = root == "/" and "/" or root .. "/"
    if abs:sub(1, #prefix) == prefix then return abs:sub(#prefix + 1) end
  end
  return abs
end

--- The region of a run's AWS calls that name none (a recipe's default, the S3 backend's
--- and KMS key's clients): AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1.
function M.default_region()
  for _, k in ipairs({ "AWS_REGION", "AWS_DEFAULT_REGION" }) do
    local r = os.getenv(k)
    if r and r ~= "" then return r end
  end
  return "us-east-1"
end

return M
