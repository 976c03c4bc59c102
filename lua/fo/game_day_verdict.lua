-- Route 53's verdict on a health check, read from GetHealthCheckStatus as a game day polls
-- it (lua/fo/game_day.lua): each checker changes its verdict after FailureThreshold
-- consecutive results the other way; the check is healthy while more than 18 % of the
-- checkers call it healthy (Route 53 developer guide, "How Amazon Route 53 determines
-- whether a health check is healthy").
local M = {}

M.HEALTHY_SHARE = 0.18

--- A tracker: `threshold` (FailureThreshold), the checkers' verdict to start from
--- (`healthy`), `since` (only results checked after this time count: earlier ones were made
--- under the previous settings), `inverted` (a Success is a failure, and the other way).
function M.new(threshold, healthy, since, inverted)
  return { threshold = threshold, initial = healthy, since = since, inverted = inverted,
    checkers = {} }
end

--- Folds one GetHealthCheckStatus answer's observations into tracker `tr` (a result read
--- twice counts once). Returns the checkers calling it healthy, the checkers, Route 53's
--- verdict (true: healthy), the latest CheckedTime at which a checker changed its verdict
--- (nil: none did), and the latest CheckedTime seen.
function M.track(tr, observations)
  local healthy, total, latest = 0, 0, nil
  for _, o in ipairs(observations or {}) do
    local key = tostring(o.Region) .. "/" .. tostring(o.IPAddress)
    local c = tr.checkers[key]
    if not c then
      c = { healthy = tr.initial, run = 0 }
      tr.checkers[key] = c
    end
    local rep = o.StatusReport or {}
    local t = tonumber(rep.CheckedTime)
    if t and t > tr.since and t ~= c.last then
      c.last = t
      local ok = tostring(rep.Status or ""):match("^Success") ~= nil
      if tr.inverted then ok = not ok end
      if ok ~= c.healthy then c.run = c.run + 1 else c.run = 0 end
      if c.run >= tr.threshold then c.healthy, c.run, c.flipped = ok, 0, t end
    end
    if t and (not latest or t > latest) then latest = t end
    total = total + 1
    if c.healthy then healthy = healthy + 1 end
  end
  local flipped
  for _, c in pairs(tr.checkers) do
    if c.flipped and (not flipped or c.flipped > flipped) then flipped = c.flipped end
  end
  return healthy, total, total > 0 and healthy / total > M.HEALTHY_SHARE, flipped, latest
end

return M
