-- fo-run(1): the man page, written in roff from fo-run's --help (fo.cli.help), so the two
-- say the same. The build runs M.write (CMakeLists.txt) and installs the page gzipped.
local help = require "fo.cli.help"

local M = {}

-- Text for roff: backslashes escaped, a line starting with '.' or "'" not a request, and
-- the dashes of an option (--serve-sim-public, -e) as \- so that they copy as ASCII.
local function roff(text)
  text = text:gsub("\\", "\\e")
  text = ("\n" .. text):gsub("([%s%(%[`'\"/|,=])(%-+[%w-]*)", function(before, option)
    return before .. option:gsub("%-", "\\-")
  end):sub(2)
  return (text:gsub("\n([%.'])", "\n\\&%1"):gsub("^([%.'])", "\\&%1"))
end

-- An entry's term: options (and an environment variable's name) in bold, value
-- placeholders in italics.
local function term(t)
  local n = 0
  return (t:gsub("%S+", function(w)
    n = n + 1
    local word, comma = w:match("^(.-)(,?)$")
    local font = (n == 1 or word:match("^%-")) and "B" or "I"
    return ("\\f%s%s\\fR%s"):format(font, roff(" " .. word):sub(2), comma)
  end))
end

-- A section title: "recipe options (docs/recipes.md)" as RECIPE OPTIONS, and its note as
-- the section's first line.
local function title(t)
  local name, note = t:match("^(.-)%s*%((.*)%)$")
  return (name or t):upper(), note
end

--- The page as roff text, for fo-run's help `text` and `version`.
function M.render(text, version)
  local doc = help.parse(text)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add(('.TH FO-RUN 1 "" "fo %s" "User Commands"'):format(version))
  add(".nh") -- an option cut at a line end (--serve-sim-/public) would not copy right
  add(".SH NAME")
  add("fo-run \\- run Lua recipes and scripts with the fo runtime: plan and apply AWS stacks")
  add(".SH SYNOPSIS")
  for i, line in ipairs(doc.synopsis) do
    if i > 1 then add(".br") end
    local cmd, rest = line:match("^(%S+)%s*(.*)$")
    add(("\\fB%s\\fR %s"):format(roff(cmd), roff(rest)))
  end
  add(".SH DESCRIPTION")
  for _, block in ipairs(doc.blocks) do
    if block.section then
      local name, note = title(block.section)
      add(".SH " .. roff(name))
      if note then add(roff("See " .. note .. ".")) end
      for _, e in ipairs(block.entries) do
        add(".TP")
        add(term(e.term))
        add(roff(e.desc))
      end
    else
      -- "exit codes: 0 success, ..." is a section of its own in a man page
      local label, rest = block.paragraph:match("^(%l[%l ]*):%s+(.*)$")
      if label == "exit codes" then
        add(".SH EXIT STATUS")
        add(roff(rest))
      else
        add(".PP")
        add(roff(block.paragraph))
      end
    end
  end
  add(".SH FILES")
  add(".TP")
  add("\\fI.fo/\\fR")
  add("the stack directory at the project's root: each stack's state, config, lock and log")
  add(".TP")
  add("\\fI<prefix>/share/fo/lua/\\fR")
  add("fo's Lua modules, found next to fo\\-run (or in \\fBFO_LUA_DIR\\fR)")
  add(".TP")
  add("\\fI<prefix>/share/fo/recipes/\\fR")
  add("the recipes that come with fo (trading.lua: the multi-region failover topology)")
  add(".SH SEE ALSO")
  add("The user documentation in \\fI<prefix>/share/doc/fo/\\fR: README.md, docs/recipes.md "
    .. "(recipes and the command line), docs/engine.md, docs/install.md.")
  return table.concat(out, "\n") .. "\n"
end

--- Writes the page of the running fo-run to `path`.
function M.write(path, version)
  local page = M.render(help.text(), version)
  local f = assert(io.open(path, "wb"))
  assert(f:write(page))
  assert(f:close())
end

return M
