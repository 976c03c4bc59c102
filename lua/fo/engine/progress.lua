-- The live view of a run on a terminal: below the lines already printed, the operations in
-- flight (what, elapsed seconds, ticking) and done/total counts, redrawn in place.
-- One write per frame (no flicker), at most one frame per `interval`, every line of the
-- view cut to the terminal's width (a wrapped line would break the redraw).
local core = require "fo.core"
local term = require "fo.engine.term"

local M = {}
local View = {}
View.__index = View

local SPIN = { "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏" }

--- opts: write(text) (to the terminal), size() → columns, rows (nil when unknown: 80×24),
--- style (term.style), interval (seconds between frames, default 0.1), now, sleep, spawn
--- (the ticker task; default fo's).
function M.new(opts)
  return setmetatable({
    write = opts.write, size = opts.size or function() return nil end,
    style = opts.style or term.style(false), interval = opts.interval or 0.1,
    now = opts.now or core.now, sleep = opts.sleep or core.sleep,
    spawn = opts.spawn or require("fo.task").spawn,
    inflight = {}, order = {}, pending = {}, drawn = 0, last = -math.huge, frame = 0,
    done = 0, failed = 0, total = nil, t0 = (opts.now or core.now)(),
  }, View)
end

--- A new stage (apply, deletions, rollback): counts start again; `total` operations are
--- expected (nil: unknown, the view counts what it sees).
function View:begin(total)
  self.done, self.failed, self.total, self.t0 = 0, 0, total, self.now()
end

--- Permanent text (lines ending in "\n"), printed above the view.
function View:print(text)
  self.pending[#self.pending + 1] = text
  self:dirty()
end

--- An operation started: `text` says what ("creating test:vpc main").
function View:started(key, text)
  if not self.inflight[key] then self.order[#self.order + 1] = key end
  self.inflight[key] = { text = text, t = self.now() }
  self:dirty()
end

--- A note on an operation in flight (a retry), shown after its text.
function View:note(key, text)
  local e = self.inflight[key]
  if e then e.note = text; self:dirty() end
end

--- An operation ended; `line` (optional) is printed above the view.
function View:finished(key, ok, line)
  if self.inflight[key] then
    self.inflight[key] = nil
    for i, k in ipairs(self.order) do
      if k == key then table.remove(self.order, i); break end
    end
  end
  if ok then self.done = self.done + 1 else self.failed = self.failed + 1 end
  if line then self.pending[#self.pending + 1] = line end
  self:dirty()
end

-- Draws now when the last frame is old enough, else leaves it to the ticker.
function View:dirty()
  if self.now() - self.last >= self.interval then self:draw() end
  self:tick()
end

-- The ticker: a task that redraws every `interval` while something is in flight or waits
-- to be printed (elapsed seconds keep moving); it ends when the view is idle.
function View:tick()
  if self.ticking or self.closed then return end
  if not next(self.inflight) and #self.pending == 0 then return end
  self.ticking = true
  self.spawn(function()
    while not self.closed and (next(self.inflight) or #self.pending > 0) do
      self.sleep(self.interval)
      if not self.closed then self:draw() end
    end
    self.ticking = false
  end)
end

local function clock(s)
  if s < 60 then return ("%.1fs"):format(s) end
  return ("%dm%02ds"):format(s // 60, math.floor(s % 60))
end

-- The lines of the view (plain text, each within `cols`), styled.
function View:block(cols, rows)
  local st, now = self.style, self.now()
  local lines = {}
  if #self.order == 0 then return lines end
  local room = math.max(1, rows - 2) -- the view never scrolls the terminal
  local shown = #self.order <= room and #self.order or room - 1
  local spin = SPIN[self.frame % #SPIN + 1]
  for i = 1, shown do
    local e = self.inflight[self.order[i]]
    local right = " " .. clock(now - e.t)
    local text = e.text .. (e.note and (" (" .. e.note .. ")") or "")
    local left = "  " .. spin .. " " .. text
    local space = cols - term.width(right)
    if space < 8 then -- very narrow: the text alone
      lines[#lines + 1] = term.truncate(left, cols)
    else
      left = term.pad(term.truncate(left, space), space)
      lines[#lines + 1] = st.cyan(left:sub(1, 2 + #spin)) .. left:sub(3 + #spin) .. st.dim(right)
    end
  end
  if shown < #self.order then
    lines[#lines + 1] = term.truncate(("  … and %d more in flight"):format(#self.order - shown), cols)
  end
  local count = self.total and ("%d/%d done"):format(self.done, math.max(self.total,
    self.done + self.failed + #self.order)) or ("%d done"):format(self.done)
  local footer = ("  %s, %d in flight%s · %s"):format(count, #self.order,
    self.failed > 0 and (", %d failed"):format(self.failed) or "", clock(now - self.t0))
  lines[#lines + 1] = st.bold(term.truncate(footer, cols))
  return lines
end

--- Draws a frame: the view's previous lines erased, pending text printed, the view again.
function View:draw()
  self.last = self.now()
  self.frame = self.frame + 1
  local cols, rows = self.size()
  cols, rows = math.max((cols or 80) - 1, 4), rows or 24
  local parts = {}
  if self.drawn > 0 then parts[1] = ("\27[%dA\r\27[J"):format(self.drawn) end
  for _, text in ipairs(self.pending) do parts[#parts + 1] = text end
  self.pending = {}
  local lines = self.closed and {} or self:block(cols, rows)
  for _, l in ipairs(lines) do parts[#parts + 1] = l .. "\n" end
  self.drawn = #lines
  if #parts > 0 then self.write(table.concat(parts)) end
end

--- Erases the view (text printed meanwhile stays), runs fn() (which may write elsewhere,
--- e.g. stderr), and draws it again.
function View:around(fn)
  if self.drawn > 0 then
    self.write(("\27[%dA\r\27[J"):format(self.drawn))
    self.drawn = 0
  end
  for _, text in ipairs(self.pending) do self.write(text) end
  self.pending = {}
  fn()
  if not self.closed and next(self.inflight) then self:draw() end
end

--- The last frame: pending text printed, the view erased; the ticker stops.
function View:close()
  self.closed = true
  self:draw()
end

--- Back in use after close (a later stage).
function View:reopen()
  self.closed = false
end

return M
