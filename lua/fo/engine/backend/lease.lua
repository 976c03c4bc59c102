-- The S3 backend's lock: a lease, one object (<stack>/lock.json) that says who holds the
-- stack (user, host, pid), where (directory, recipe), what (the command), since when and
-- until when. Taken with a PUT If-None-Match: * (of two runs, exactly one makes it),
-- renewed by its holder while the run lives (a PUT If-Match: its ETag, every third of the
-- lease, from a task on the engine's loop), released by deleting it. A lease whose
-- expiry has passed is taken over by the next run (it was left by a run that died); a
-- live one only with --break-lock --yes. A holder that cannot renew in time has lost the
-- lease: it stops writing the state (check() before every write raises), so a run that
-- stalled past its expiry cannot overwrite what the next holder did (docs/state-backends.md).
local errors = require "fo.engine.errors"
local json = require "fo.json"

local M = {}

M.FORMAT, M.VERSION = "fo-lease", 1
--- Seconds a lease lasts without renewal (FO_LEASE_SECONDS or the stack's lease_seconds
--- setting replace it; tests make it short).
M.DEFAULT_SECONDS = 60
--- How often a waiting run (--lock-timeout) looks again, at most.
M.POLL_SECONDS = 5

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

local function now_default()
  return require("fo.core").time()
end

-- The user name of this process: $USER or $LOGNAME, else its uid's entry in /etc/passwd.
local function user_name()
  local name = os.getenv("USER") or os.getenv("LOGNAME")
  if name and name ~= "" then return name end
  local f = io.open("/proc/self/status", "rb")
  local uid = f and (f:read("a") or ""):match("\nUid:%s*(%d+)")
  if f then f:close() end
  local p = uid and io.open("/etc/passwd", "rb")
  if p then
    for line in p:lines() do
      local n, id = line:match("^([^:]*):[^:]*:(%d+):")
      if id == uid then name = n; break end
    end
    p:close()
  end
  return name or (uid and "uid " .. uid) or "?"
end

--- This process's identity: {user=, host=, pid=}.
function M.who()
  local lock = require "fo.engine.lock"
  local f = io.open("/proc/self/stat", "rb")
  local pid = f and tonumber((f:read("l") or ""):match("^(%d+)"))
  if f then f:close() end
  return { user = user_name(), host = lock.this_host(),
    pid = pid }
end

--- "user@host pid 12 (fo-run ... in /dir), acquired ..., expires ...": a holder, from a
--- lease document.
function M.describe(h)
  if type(h) ~= "table" then return "an unknown holder (the lock object is not fo's)" end
  local who, where = h.who or {}, h.where or {}
  return ("%s@%s pid %s (%s, in %s), acquired %s, expires %s"):format(tostring(who.user or "?"),
    tostring(who.host or "?"), tostring(who.pid or "?"), tostring(h.command or "command unknown"),
    tostring(where.cwd or "?"), tostring(h.acquired or "?"), tostring(h.expires or "?"))
end

local Lease = {}
Lease.__index = Lease

--- A lease on `key` in the object store `objects` (backend/s3_state.lua's interface) for
--- stack `stack`. opts: command, recipe, seconds (the lease's length), now (wall clock,
--- for tests), sleep (for tests), who (for tests).
function M.new(objects, key, stack, opts)
  opts = opts or {}
  return setmetatable({ objects = objects, key = key, stack = stack, command = opts.command,
    recipe = opts.recipe, seconds = opts.seconds or M.DEFAULT_SECONDS,
    now = opts.now or now_default, sleep = opts.sleep or function(s) require("fo.core").sleep(s) end,
    who = opts.who or M.who(), cwd = opts.cwd or os.getenv("PWD") or "?" }, Lease)
end

function Lease:_document(acquired)
  local t = self.now()
  return json.encode({ format = M.FORMAT, version = M.VERSION, stack = self.stack,
    who = self.who, where = { cwd = self.cwd, recipe = self.recipe }, command = self.command,
    acquired = iso(acquired or t), expires = iso(t + self.seconds),
    expires_at = t + self.seconds, seconds = self.seconds }), t + self.seconds
end

--- The lease as it is now: the holder's document (a table; a string when it is not fo's),
--- its ETag; nil when nobody holds it.
function Lease:holder()
  local body, etag = self.objects:get(self.key)
  if not body then return nil end
  local ok, h = pcall(json.decode, body)
  if not ok or type(h) ~= "table" or h.format ~= M.FORMAT then return body, etag end
  return h, etag
end

--- Who holds it now, in words ("nobody" when the lock object is gone).
function Lease:holder_text()
  local ok, h = pcall(self.holder, self)
  if not ok then return "an unknown holder (the lock object cannot be read: " .. tostring(h) .. ")" end
  if h == nil then return "nobody (the lock object is gone)" end
  return M.describe(h)
end

function Lease:where()
  return (self.objects.where or "") .. "/" .. self.key
end

-- One try: true when taken.
function Lease:_try()
  local body, expires = self:_document()
  local etag = self.objects:put(self.key, body, { if_none_match = true })
  if not etag then return false end
  self.etag, self.expires_at, self.acquired, self.lost = etag, expires, self.now(), nil
  return true
end

local function locked(fmt, ...)
  errors.raise("lock", fmt:format(...))
end

--- Takes the lease. opts: timeout (seconds to wait for a live holder, polling; 0: refuse
--- at once), break_lock (take over a live lease: only with yes), yes. A lease past its
--- expiry is taken over (with a notice on stderr naming the holder it replaces). Raises a
--- lock error (exit 5) naming the holder when it cannot be had.
function Lease:acquire(opts)
  opts = opts or {}
  local deadline = self.now() + (opts.timeout or 0)
  local told
  while true do
    if self:_try() then return self end
    local h, etag = self:holder()
    if h ~= nil then
      local expired = type(h) == "table" and type(h.expires_at) == "number"
        and self.now() > h.expires_at
      local breaking = opts.break_lock and opts.yes
      if opts.break_lock and not expired and not opts.yes then
        locked("stack %s is locked by %s (lease %s, still live). --break-lock takes a live "
          .. "lease only with --yes as well: check that this run is gone first (a run that is "
          .. "still working would go on changing resources without recording them)",
          self.stack, M.describe(h), self:where())
      end
      if expired or breaking then
        io.stderr:write(("fo: %s the lease of stack %s held by %s\n"):format(expired
          and "the lease expired: taking over" or "--break-lock --yes: breaking", self.stack,
          M.describe(h)))
        -- only the lease that was read goes: a run that took it in between keeps it
        self.objects:delete(self.key, { if_match = etag })
      else
        if self.now() >= deadline then
          locked("stack %s is locked by %s (lease %s); wait for it to finish, wait with "
            .. "--lock-timeout DURATION, or, if that run is gone, let its lease expire "
            .. "(it is taken over then) or take it with --break-lock --yes", self.stack,
            M.describe(h), self:where())
        end
        if not told then
          told = true
          io.stderr:write(("fo: stack %s is locked by %s; waiting up to %ds\n"):format(
            self.stack, M.describe(h), math.ceil(deadline - self.now())))
        end
        local left = deadline - self.now()
        local until_expiry = type(h) == "table" and type(h.expires_at) == "number"
          and h.expires_at - self.now() + 0.05 or M.POLL_SECONDS
        self.sleep(math.max(0.05, math.min(M.POLL_SECONDS, left, until_expiry)))
      end
    end
  end
end

--- Renews the lease (If-Match its ETag). Returns true, or false when it is lost (another
--- run holds it, or it was removed); a call that fails otherwise (the network) raises,
--- and the lease stays as it was until it expires.
function Lease:renew()
  if self.lost then return false end
  if self.released then return true end
  local body, expires = self:_document(self.acquired)
  -- one renewal at a time (the timer's and a state write's), and none under a release
  while self.renewing do require("fo.core").sleep(0.01) end
  if self.released or self.lost then return not self.lost end
  self.renewing = true
  local ok, etag = pcall(self.objects.put, self.objects, self.key, body, { if_match = self.etag })
  self.renewing = false
  if not ok then error(etag, 0) end
  if not etag then
    self.lost = ("the lease of stack %s was lost (now held by %s)"):format(self.stack,
      self:holder_text())
    return false
  end
  self.etag, self.expires_at = etag, expires
  return true
end

--- Before a state write: raises a lock error when the lease is lost, or expires within
--- a third of its length and cannot be renewed now.
function Lease:check()
  if self.released then return end
  if not self.lost and self.now() > self.expires_at - self.seconds / 3 then
    local ok, renewed = pcall(self.renew, self)
    if not ok and self.now() > self.expires_at then
      self.lost = ("the lease of stack %s expired and could not be renewed (%s)"):format(
        self.stack, tostring(renewed))
    end
  end
  if self.lost then
    errors.raise("lock", self.lost .. "; this run stopped writing the state so as not to "
      .. "overwrite what another run recorded (lost update prevented). What it did since its "
      .. "last state write is not recorded: the next run adopts it or finds it by its intent")
  end
end

--- Renews the lease from a task on the loop every third of its length until released;
--- a lost lease is kept in self.lost (check() raises it at the next state write).
function Lease:keep_alive()
  self.renewer = require("fo.task").spawn(function()
    local step = math.min(0.2, self.seconds / 6)
    local next_at = self.now() + self.seconds / 3
    while not self.released and not self.lost do
      require("fo.core").sleep(step)
      if self.released then return end
      if self.now() >= next_at then
        local ok = pcall(self.renew, self)
        if not ok and self.now() > self.expires_at then
          self.lost = ("the lease of stack %s expired: it could not be renewed in time")
            :format(self.stack)
        end
        next_at = self.now() + (ok and self.seconds / 3 or 1)
      end
    end
  end)
  return self
end

--- Releases the lease: deleted when it is still this run's (If-Match its ETag).
function Lease:unlock()
  if self.released then return end
  self.released = true
  -- a renewal in flight changes the ETag: the delete waits for it
  while self.renewing do require("fo.core").sleep(0.01) end
  if self.lost then return end
  -- read first: an endpoint that ignores If-Match on DELETE must not remove another's lease
  local ok, _, etag = pcall(self.objects.get, self.objects, self.key)
  if ok and etag == self.etag then
    pcall(self.objects.delete, self.objects, self.key, { if_match = self.etag })
  end
end

return M
