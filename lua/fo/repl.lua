-- fo-run -i: the REPL. Reads lines through fo.edit (libedit on a terminal) without
-- blocking the event loop, runs each chunk as a task, prints its values; Ctrl-C interrupts.
local task = require "fo.task"
local edit = require "fo.edit"
local pretty = require "fo.repl.pretty"
local complete = require "fo.repl.complete"
local helpers = require "fo.repl.helpers"

local M = {}

M.PROMPT, M.PROMPT2 = "fo> ", "..> "
M.HISTORY_MAX = 1000
local INTERRUPTED = "interrupted" -- the error fo.edit's Ctrl-C hook raises in a task

--- The history file: $FO_HISTORY, else ~/.fo_history (nil without a home).
function M.history_path(getenv)
  getenv = getenv or os.getenv
  local p = getenv("FO_HISTORY")
  if p and p ~= "" then return p end
  local home = getenv("HOME")
  if home and home ~= "" then return home .. "/.fo_history" end
  return nil
end

--- A session environment: names set in the REPL land here; globals are read through.
function M.environment()
  local env = setmetatable({}, { __index = _G })
  env.help, env.stack, env.sim = helpers.help, helpers.stack, helpers.sim
  return env
end

-- `local a, b = ...` at the start of a chunk would die with the chunk: the names are
-- kept as session variables instead (`local function f` likewise).
local function keep_locals(src)
  local fn = src:match("^%s*local%s+(function%s.*)$")
  if fn then return fn end
  local names, rest = src:match("^%s*local%s+([%a_][%w_%s,<>]*)(=.*)$")
  if names then return (names:gsub("<%s*%a+%s*>", "")) .. rest end
  names = src:match("^%s*local%s+([%a_][%w_%s,<>]*)$")
  if names and not names:match("^%s*function") then
    return (names:gsub("<%s*%a+%s*>", "")) .. " = nil"
  end
  return src
end

--- Compiles a chunk typed in the REPL: as `return <chunk>` first (an expression shows its
--- values), else as statements. Returns the function; or nil, "incomplete" when more
--- lines could complete it; or nil and the syntax error.
function M.compile(src, env)
  local f, err_expr = load("return " .. src, "=stdin", "t", env)
  if f then return f end
  local err
  f, err = load(keep_locals(src), "=stdin", "t", env)
  if f then return f end
  -- "1 +" is an unfinished expression, "for i = 1, 2 do" an unfinished statement
  if err:match("<eof>$") or err_expr:match("<eof>$") then return nil, "incomplete" end
  return nil, err
end

-- The traceback of an error in a REPL chunk, without the REPL's own frames.
local function error_text(err)
  local msg = task.describe(err)
  local tb = debug.traceback(msg, 3)
  local lines = {}
  for l in tb:gmatch("[^\n]+") do
    if l:find("in function 'xpcall'", 1, true) or l:find("fo/repl", 1, true) then break end
    lines[#lines + 1] = l
  end
  if #lines <= 2 then return msg end -- "stack traceback:" and nothing of the user's
  return table.concat(lines, "\n")
end

local function capture(err)
  if err == INTERRUPTED then return { interrupted = true } end
  return { value = err, text = error_text(err) }
end

local Session = {}
Session.__index = Session

local function out(s)
  io.stdout:write(s, "\n")
  io.stdout:flush()
end

local function err_out(s)
  io.stdout:flush()
  io.stderr:write(s, "\n")
  io.stderr:flush()
end

function Session:show_error(e)
  local v = e.value
  if getmetatable(v) and getmetatable(v).__name == "fo.aws.Error" then
    err_out("error: " .. tostring(v))
    err_out(pretty.format(v))
  else
    err_out("error: " .. require("fo.log").redact(e.text))
  end
end

function Session:show(r)
  if r.n == 0 then return end
  self.env._ = r[1]
  if r.n == 1 and type(r[1]) == "string" and r[1]:find("\n") then
    out(r[1]) -- text meant for reading (client:help): shown as is
    return
  end
  out(pretty.format_all(r.n, table.unpack(r, 1, r.n)))
end

-- Runs `fn` as a task and waits for it, or for Ctrl-C (the task is then stopped where it
-- next runs, and abandoned).
function Session:run(fn)
  self.gen = self.gen + 1
  local gen = self.gen
  local t = task.spawn(function()
    edit.guard(coroutine.running())
    local r = table.pack(xpcall(fn, capture))
    edit.wake(gen, r)
  end)
  t.joined = true -- its outcome is shown here, never reported at exit
  while true do
    local v, r = edit.wait()
    if v == "interrupt" then
      edit.guard(nil)
      err_out(INTERRUPTED)
      return
    elseif v == gen then
      edit.guard(nil)
      if r[1] then
        self:show(table.pack(table.unpack(r, 2, r.n)))
      elseif r[2].interrupted then
        err_out(INTERRUPTED)
      else
        self:show_error(r[2])
      end
      return
    end
    -- a late answer from an evaluation abandoned earlier: keep waiting
  end
end

-- `.stack NAME`, `.help`, `.exit`: REPL commands. Returns false to end the session.
function Session:command(line)
  local cmd, arg = line:match("^%.(%a+)%s*(.-)%s*$")
  if cmd == "help" then
    helpers.help()
  elseif cmd == "exit" or cmd == "quit" then
    return false
  elseif cmd == "stack" then
    local name = arg ~= "" and arg or nil
    self:run(function() return helpers.stack(name) end)
  else
    err_out(("unknown command %s (try .help, .stack NAME, .exit)"):format(line))
  end
  return true
end

function Session:add_history(line)
  if line:match("^%s*$") or line == self.last_line then return end
  self.last_line = line
  local ok, why = edit.add_history(line)
  if not ok and not self.history_warned then
    self.history_warned = true
    err_out("fo: " .. why)
  end
end

function Session:loop()
  local buffer
  while true do
    local line, why = edit.read(buffer and M.PROMPT2 or M.PROMPT)
    if line == nil then
      if why == "eof" then
        if buffer then err_out("error: the input ended inside an unfinished chunk (dropped)") end
        break
      end
      buffer = nil -- Ctrl-C: the pending input is dropped
    else
      self:add_history(line)
      if not buffer and line:match("^%.%a") then
        if not self:command(line) then break end
      else
        local src = buffer and (buffer .. "\n" .. line) or line
        if src:match("^%s*$") then
          buffer = nil
        else
          local fn, err = M.compile(src, self.env)
          if fn then
            buffer = nil
            self:run(fn)
          elseif err == "incomplete" then
            buffer = src
          else
            buffer = nil
            err_out("error: " .. err)
          end
        end
      end
    end
  end
end

--- fo-run -i: the session until Ctrl-D (or .exit), then the process exits with code 0;
--- work still pending on the loop (an interrupted sleep, background tasks) is dropped.
function M.main()
  local env = M.environment()
  local tty = edit.open{ history = M.history_path(), history_max = M.HISTORY_MAX,
    completer = complete.completer(env) }
  local session = setmetatable({ env = env, gen = 0, tty = tty }, Session)
  if tty then
    out(("fo %s REPL (Lua 5.4) — help() for help, Ctrl-D to leave"):format(fo.version))
  end
  local ok, err = pcall(session.loop, session)
  edit.close()
  if tty then out("") end
  if not ok then error(err, 0) end
  -- Leaving ends the process at once, as lua's REPL does: an interrupted sleep or call,
  -- background tasks and servers started in the session end with it (the loop would
  -- otherwise wait for them).
  io.stdout:flush()
  io.stderr:flush()
  os.exit(0, false)
end

return M
