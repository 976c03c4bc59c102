-- fo-run's --help text (src/main.c, usage_text) read as a structure: the one source of the
-- command line's documentation. The man page (fo.cli.man) and the shell completion
-- (fo.cli.complete) are made from it, so an option added to --help is in both.
--
-- The text's layout: a synopsis block ("usage: fo-run ..." and indented "fo-run ..." lines)
-- up to the first blank line; paragraphs; and sections, a line at column 0 ending in ':'
-- ("options:") followed by entries. An entry starts with two spaces: its term (options and
-- their value placeholders, or an environment variable), then its description, continued
-- on lines indented further.
local M = {}

--- The help text of the running fo-run (the executable itself, so that a build tree's and
--- an installed fo-run each describe themselves).
function M.text(exe)
  -- resolved here: in the shell io.popen starts, /proc/self/exe would be the shell
  exe = exe or require("fo.fs").realpath("/proc/self/exe")
  local p = assert(io.popen(("'%s' --help"):format(exe:gsub("'", "'\\''"))))
  local text = p:read("a")
  p:close()
  return text
end

-- A value placeholder in a term: NAME, K=V, IPV4:PORT, FILE (an upper-case letter, no
-- lower-case one).
local function is_placeholder(token)
  return token:match("%u") and not token:match("%l") and not token:match("^%-")
end

-- Splits an entry line (without its two leading spaces) into term and description: at the
-- first gap of two spaces or more, else after the option words and placeholders.
local function split_entry(line)
  local term, desc = line:match("^(%S.-)%s%s+(%S.*)$")
  if term then return term, desc end
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  local n = 1
  while words[n + 1] and (words[n]:match(",$") or is_placeholder(words[n + 1])) do n = n + 1 end
  return table.concat(words, " ", 1, n), table.concat(words, " ", n + 1)
end

--- The text as { synopsis = { lines }, blocks = { ... } } in order, each block either
--- { paragraph = "text" } or { section = "title", entries = { {term=, desc=} } }.
function M.parse(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  local doc = { synopsis = {}, blocks = {} }
  local i = 1
  while lines[i] and lines[i] ~= "" do
    doc.synopsis[#doc.synopsis + 1] = (lines[i]:gsub("^usage:%s*", ""):gsub("^%s+", ""))
    i = i + 1
  end
  local section, entry, para
  local function close_para()
    if para then doc.blocks[#doc.blocks + 1] = { paragraph = table.concat(para, "\n") } end
    para = nil
  end
  for k = i, #lines do
    local line = lines[k]
    if line == "" then
      close_para()
      entry = nil
    elseif line:match("^%S.*:$") then
      close_para()
      section = { section = line:sub(1, -2), entries = {} }
      doc.blocks[#doc.blocks + 1] = section
      entry = nil
    elseif section and not para and line:match("^  %S") then
      local term, desc = split_entry(line:sub(3))
      entry = { term = term, desc = desc }
      section.entries[#section.entries + 1] = entry
    elseif entry and line:match("^   ") then
      entry.desc = (entry.desc == "" and "" or entry.desc .. " ") .. line:gsub("^%s+", "")
    else
      entry, section = nil, nil
      para = para or {}
      para[#para + 1] = line
    end
  end
  close_para()
  return doc
end

--- The options the text names: { list = { "--plan", "-e", ... } in order of appearance,
--- value = { ["--stack"] = true, ... } for those that take a value }. An entry's term names
--- an option and shows whether it takes a value; an option the prose mentions (--drill-runs
--- N) counts too.
function M.options(doc, text)
  local list, value, seen = {}, {}, {}
  local function add(name, takes)
    if not seen[name] then
      seen[name] = true
      list[#list + 1] = name
    end
    if takes then value[name] = true end
  end
  for _, block in ipairs(doc.blocks) do
    for _, e in ipairs(block.entries or {}) do
      local words = {}
      for w in e.term:gmatch("[^%s,]+") do words[#words + 1] = w end
      for n, w in ipairs(words) do
        if w:match("^%-%a") or w:match("^%-%-%a[%w-]*$") then
          local name, joined = w:match("^(%-%-?[%w-]+)(=?)")
          add(name, joined == "=" or (words[n + 1] and is_placeholder(words[n + 1])))
        end
      end
    end
  end
  for name, after in (text or ""):gmatch("%f[%w%-](%-%-%a[%w-]*)([^\n]?[^%s]*)") do
    add(name, after:match("^ (%S+)") and is_placeholder(after:sub(2)))
  end
  return { list = list, value = value }
end

--- The subcommands the synopsis shows ("fo-run state list|show URN|rm URN": state), each
--- with the words that may follow it ({ state = { "list", "show", "rm" } }: the first word
--- of each '|' alternative, when it is a word and no placeholder), in order.
function M.commands(doc)
  local names, follow = {}, {}
  for _, line in ipairs(doc.synopsis) do
    local cmd, rest = line:match("^fo%-run%s+(%l[%l%d-]*)%f[%s%z]%s*(.*)$")
    if cmd and not follow[cmd] then
      names[#names + 1] = cmd
      follow[cmd] = {}
    end
    for alternative in (cmd and rest or ""):gmatch("[^|]+") do
      local w = alternative:match("^%s*(%l[%l%d-]*)%f[%s%z]")
      if w then follow[cmd][#follow[cmd] + 1] = w end
    end
  end
  return names, follow
end

return M
