-- Logging for fo: levels from FO_LOG or set_level, one line per event on stderr, and
-- redaction of every registered secret as a second line of defence (secrets are never
-- formatted in the first place).
local M = {}

local LEVELS = { error = 1, warn = 2, info = 3, debug = 4, trace = 5 }
local NAMES = { "error", "warn", "info", "debug", "trace" }
local secrets = {}
local sink = function(line) io.stderr:write(line, "\n") end

local env_level = os.getenv("FO_LOG")
local current = LEVELS[(env_level or ""):lower()] or LEVELS.warn
if env_level and env_level ~= "" and not LEVELS[env_level:lower()] then
  sink(("fo: FO_LOG='%s' is not a log level (error, warn, info, debug, trace); using warn")
    :format(env_level))
end

--- Sets the level by name; raises on an unknown name.
function M.set_level(name)
  local l = LEVELS[tostring(name):lower()]
  if not l then
    error(("unknown log level '%s' (use error, warn, info, debug or trace)"):format(name), 2)
  end
  current = l
end

--- The current level's name.
function M.level()
  return NAMES[current]
end

--- True when lines of `level` are written.
function M.enabled(level)
  return LEVELS[level] <= current
end

--- Registers a value that must never be printed (secret keys, session tokens; the engine's
--- secret config values, masked as "[secret]"), shown as `mask` (default "****").
function M.add_secret(s, mask)
  if type(s) == "string" and #s >= 4 then secrets[s] = secrets[s] or mask or "****" end
end

--- Replaces every registered secret in s by its mask (plain text, not patterns).
function M.redact(s)
  s = tostring(s)
  for secret, mask in pairs(secrets) do
    local out, pos = nil, 1
    while true do
      local i, j = s:find(secret, pos, true)
      if not i then break end
      out = out or {} -- (made on a match only: every line of output comes through here)
      out[#out + 1] = s:sub(pos, i - 1)
      out[#out + 1] = mask
      pos = j + 1
    end
    if pos > 1 then
      out[#out + 1] = s:sub(pos)
      s = table.concat(out)
    end
  end
  return s
end

--- Redirects output (tests); returns the previous sink.
function M.set_sink(fn)
  local old = sink
  sink = fn
  return old
end

local function emit(level, fmt, ...)
  if LEVELS[level] > current then return end
  local msg = select("#", ...) > 0 and fmt:format(...) or tostring(fmt)
  -- One event, one line: embedded line breaks (server bodies, tracebacks) are escaped.
  msg = M.redact(msg):gsub("\r?\n", "\\n")
  sink(("%s %-5s %s"):format(os.date("!%Y-%m-%dT%H:%M:%SZ"), level, msg))
end

for name in pairs(LEVELS) do
  M[name] = function(fmt, ...) emit(name, fmt, ...) end
end

return M
