-- Terminal text for the human report: ANSI colours only on a terminal (never with NO_COLOR
-- or TERM=dumb), widths that count UTF-8 characters, and truncation to a width.
local M = {}

local CODES = { bold = "1", dim = "2", red = "31", green = "32", yellow = "33", blue = "34",
  magenta = "35", cyan = "36" }

--- True when text written to `f` (a Lua file) should be coloured: f is a terminal, NO_COLOR
--- is unset or empty (no-color.org), TERM is not "dumb". `env` defaults to os.getenv.
function M.color_wanted(f, env)
  env = env or os.getenv
  local no = env("NO_COLOR")
  if no and no ~= "" then return false end
  if env("TERM") == "dumb" then return false end
  return require("fo.fs").isatty(f)
end

--- A styler: s.green(text), s.bold(text), ... wrap text in ANSI codes when `enabled`, else
--- return it as is. s.enabled tells which.
function M.style(enabled)
  local s = { enabled = enabled }
  for name, code in pairs(CODES) do
    if enabled then
      s[name] = function(text) return "\27[" .. code .. "m" .. text .. "\27[0m" end
    else
      s[name] = function(text) return text end
    end
  end
  return s
end

--- The text without ANSI escape sequences.
function M.strip(text)
  return (text:gsub("\27%[[%d;?]*%a", ""))
end

--- Columns `text` takes (UTF-8 characters, escapes not counted; every character one column).
function M.width(text)
  local plain = M.strip(text)
  return utf8.len(plain) or #plain
end

--- Plain `text` (no escapes) cut to at most `cols` columns, "…" marking the cut.
function M.truncate(text, cols)
  if cols < 1 then return "" end
  local n = utf8.len(text)
  if not n then text, n = text:gsub("[\128-\255]", "?"), #text end
  if n <= cols then return text end
  return text:sub(1, (utf8.offset(text, cols) or #text + 1) - 1) .. "…"
end

--- `text` padded with spaces to `cols` columns.
function M.pad(text, cols)
  local w = M.width(text)
  if w >= cols then return text end
  return text .. (" "):rep(cols - w)
end

return M
