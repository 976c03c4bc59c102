-- The stack's lock (.fo/<stack>.lock): one mutating or planning run per stack at a time.
-- The lock file names its holder (pid, host, start time, command); a refused run says who
-- holds it, and --break-lock removes a lock only when its holder is provably dead.
local errors = require "fo.engine.errors"
local fs = require "fo.fs"

local M = {}

--- {pid=, host=, started=, command=} from a lock file's text.
function M.parse_holder(text)
  local h = {}
  for k, v in (text or ""):gmatch("(%w+)=([^\n]*)") do h[k] = v end
  h.pid = tonumber(h.pid)
  return h
end

function M.this_host()
  local f = io.open("/proc/sys/kernel/hostname", "rb")
  local name = f and f:read("l")
  if f then f:close() end
  return name or "?"
end

--- True when process `pid` exists on this host (Linux: /proc/<pid>).
function M.pid_alive(pid)
  return pid ~= nil and fs.exists("/proc/" .. math.tointeger(pid))
end

--- "pid 12 on host h since 2024-…Z (command)": who holds a lock, from parse_holder's table.
local function describe(h)
  return ("pid %s on host %s since %s (%s)"):format(tostring(h.pid or "?"), h.host or "?",
    h.started or "?", h.command ~= "" and h.command or "command unknown")
end
M.describe = describe

--- Takes the lock at `path` for `command`; returns the lock (lock:unlock()). When held:
--- with break_dead, a holder that is dead on this host loses the lock; otherwise a lock
--- error names the holder and what to do.
function M.acquire(path, stack, command, break_dead)
  local lk, text = fs.lock(path, command)
  if lk then return lk end
  local h = M.parse_holder(text)
  local here = M.this_host()
  if break_dead then
    if h.host ~= here then
      errors.raise("lock", ("stack %s is locked by %s. --break-lock refused: the holder runs on "
        .. "another host, where fo cannot check it; stop it there or remove %s once sure no run "
        .. "is in progress"):format(stack, describe(h), path))
    end
    if M.pid_alive(h.pid) then
      errors.raise("lock", ("stack %s is locked by %s. --break-lock refused: that process is "
        .. "alive; wait for it or stop it"):format(stack, describe(h)))
    end
    io.stderr:write(("fo: breaking the lock of stack %s held by dead %s\n"):format(stack,
      describe(h)))
    os.remove(path)
    lk, text = fs.lock(path, command)
    if lk then return lk end
    h = M.parse_holder(text)
  end
  local hint = "wait for it to finish"
  if h.host == here and h.pid and not M.pid_alive(h.pid) then
    hint = "that process is gone: rerun with --break-lock to take the lock"
  end
  errors.raise("lock", ("stack %s is locked by %s; %s (lock file %s)"):format(stack,
    describe(h), hint, path))
end

return M
