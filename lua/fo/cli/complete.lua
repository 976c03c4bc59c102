-- Shell completion for fo-run (dist/completion: bash and zsh call M.main through
-- `fo-run -e`): the options --help lists (fo.cli.help, so a new one completes without
-- touching the shells' scripts), the values of those whose values are a known few, stack
-- names from the state directory and URNs from a stack's state file. Reads local files
-- only: never a backend, never the network, never a lock.
local help = require "fo.cli.help"
local location = require "fo.engine.location"
local fs = require "fo.fs"

local M = {}

-- Subcommand words after which the next word is a URN of the stack's state (and --only,
-- whose value is one, takes a value even before --help lists it).
local URN_AFTER = { show = true, rm = true, mv = true }

local function sorted_keys(t)
  local list = {}
  for k in pairs(t) do list[#list + 1] = k end
  table.sort(list)
  return list
end

--- The state directory the command line's run would use (--state-dir, $FO_STATE_DIR, the
--- recipe's project root), else the `.fo` found walking up from the current directory.
function M.state_dir(ctx)
  if ctx.state_dir or (os.getenv("FO_STATE_DIR") or "") ~= "" then
    return location.state_dir(ctx.state_dir)
  end
  if ctx.recipe and fs.exists(ctx.recipe) then return location.state_dir(nil, ctx.recipe) end
  -- a file name that is not there: its project root is found from the current directory
  return location.state_dir(nil, "./.fo-complete")
end

--- The stacks of a state directory: every NAME with a NAME.state.json or NAME.config.json.
function M.stacks(dir)
  local names = {}
  for _, e in ipairs(fs.listdir(dir) or {}) do
    local name = e:match("^(.+)%.state%.json$") or e:match("^(.+)%.config%.json$")
    if name then names[name] = true end
  end
  return sorted_keys(names)
end

--- The URNs a stack's state file records (none when there is no such file or it is not
--- JSON: a completion never fails).
function M.urns(dir, stack)
  local f = io.open(dir .. "/" .. stack .. ".state.json", "rb")
  if not f then return {} end
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(require("cjson").decode, text)
  if not ok or type(doc) ~= "table" or type(doc.resources) ~= "table" then return {} end
  return sorted_keys(doc.resources)
end

-- The values an option takes, when they are a known few; nil: any (the shell offers files).
local function values(name, ctx)
  if name == "--stack" then return M.stacks(M.state_dir(ctx)) end
  if name == "--only" then return M.urns(M.state_dir(ctx), ctx.stack or "dev") end
  if name == "--target" then return sorted_keys(require("fo.engine.target").KINDS) end
  if name == "--drill-scenario" then return require("fo.drill.scenarios").NAMES end
  if name == "--backend" or name == "--migrate-state" then return { "local", "s3://" } end
  return nil
end

-- The words of a command line up to the cursor: the last is the one being completed (""
-- after a space). Quotes are dropped; a completion needs no more of the shell's syntax.
local function words_of(line)
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = (w:gsub("[\"']", "")) end
  if line == "" or line:match("%s$") then words[#words + 1] = "" end
  return words
end

local function matching(list, prefix, add)
  local out = {}
  for _, c in ipairs(list or {}) do
    if c:sub(1, #prefix) == prefix then out[#out + 1] = (add or "") .. c end
  end
  return out
end

--- The candidates for the last word of `line` (the command line up to the cursor), each
--- the whole word; `text` is fo-run's --help. An empty list lets the shell offer files.
function M.candidates(line, text)
  local doc = help.parse(text)
  local options = help.options(doc, text)
  local commands, follow = help.commands(doc)
  local words = words_of(line)
  local cur = table.remove(words)
  local ctx, positional, ended, prev_value = {}, {}, false, nil
  for i = 2, #words do
    local w = words[i]
    if prev_value then
      if prev_value == "--stack" then ctx.stack = w end
      if prev_value == "--state-dir" then ctx.state_dir = w end
      prev_value = nil
    elseif ended or not w:match("^%-.") then
      positional[#positional + 1] = w
    elseif w == "--" then
      ended = true
    else
      local name, value = w:match("^(%-%-[%w-]+)=(.*)$")
      if name == "--stack" then ctx.stack = value end
      if name == "--state-dir" then ctx.state_dir = value end
      if not name and (options.value[w] or w == "--only") then prev_value = w end
    end
  end
  ctx.recipe = positional[1] and positional[1]:match("%.lua$") and positional[1] or nil
  if prev_value then return matching(values(prev_value, ctx), cur) end
  if not ended then
    local name, value = cur:match("^(%-%-[%w-]+)=(.*)$")
    if name and options.value[name] then return matching(values(name, ctx), value, name .. "=") end
    if cur:match("^%-") then return matching(options.list, cur) end
  end
  if #positional == 0 and #commands > 0 and cur ~= "" and not cur:match("[/.]") then
    return matching(commands, cur)
  end
  local cmd = follow[positional[1]]
  if cmd and #positional == 1 then return matching(cmd, cur) end
  if cmd and #positional >= 2 and URN_AFTER[positional[2]] then
    return matching(M.urns(M.state_dir(ctx), ctx.stack or "dev"), cur)
  end
  return {}
end

--- Prints the candidates for $COMP_LINE up to $COMP_POINT (as bash sets them for
--- `complete -C`; the scripts in dist/completion set them too), one per line.
function M.main()
  local line = os.getenv("COMP_LINE") or ""
  local point = tonumber(os.getenv("COMP_POINT") or "")
  if point then line = line:sub(1, point) end
  for _, c in ipairs(M.candidates(line, help.text())) do print(c) end
end

return M
