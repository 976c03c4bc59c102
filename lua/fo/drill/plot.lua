-- The drill's picture (fo-run --drill --plot FILE): per region, Route 53's view of its
-- record, the DNS answer, requests served and failed, instances serving, against seconds
-- from the outage, with the outage, detection, DNS switches and scaling marked. Drawn by
-- fo.plot_svg from the drill's own result (res.traffic.series and events).
local svg = require "fo.plot_svg"

local M = {}

local COLORS = { primary = "#1f77b4", standby = "#2ca02c" }

--- The markers of a drill result: { {t=, label=, color=} }, in time order.
function M.markers(res)
  local tr = res.traffic
  local back
  for _, e in ipairs(tr.events) do if e.kind == "recovered" then back = e.t end end
  local out = { { t = 0, label = "outage starts (primary down)", color = "#d62728" } }
  local function add(t, label, color) if t then out[#out + 1] = { t = t, label = label, color = color } end end
  add(res.detection, "health check unhealthy (detection)", "#9467bd")
  add(res.dns_switch, "DNS answers the standby", "#ff7f0e")
  for _, e in ipairs(tr.events) do
    if e.kind == "scale_out" then add(e.t, e.text, "#2ca02c")
    elseif e.kind == "capacity" then add(e.t, e.text, "#17becf") end
  end
  add(back, "outage ends (primary back)", "#d62728")
  if back then add(res.failback.dns and back + res.failback.dns, "DNS answers the primary again", "#ff7f0e") end
  table.sort(out, function(a, b) return a.t < b.t end)
  return out
end

--- The SVG text of drill result `res` (res.traffic with its series), titled `title`.
function M.svg(res, title)
  local tr = res.traffic
  local s = tr.series
  local panels = {
    { title = "Health as Route 53 sees each record", kind = "bands", height = 56, rows = {
      { name = "primary", values = s.primary.healthy, colors = { [1] = "#8fd18f", [0] = "#e57373" },
        labels = { [1] = "healthy", [0] = "unhealthy" } },
      { name = "standby", values = s.standby.healthy, colors = { [1] = "#8fd18f", [0] = "#e57373" },
        labels = { [1] = "healthy", [0] = "unhealthy" } } } },
    { title = "DNS answer for the app name", kind = "bands", height = 30, rows = {
      { name = "answer", values = s.dns, colors = { primary = COLORS.primary, standby = COLORS.standby,
        none = "#999" }, labels = { primary = "primary ALB", standby = "standby ALB", none = "none" } } } },
    { title = "Requests per second", kind = "lines", ylabel = "requests/s", height = 150, series = {
      { name = "primary served", color = COLORS.primary, values = s.primary.served },
      { name = "primary failed", color = "#d62728", values = s.primary.failed },
      { name = "standby served", color = COLORS.standby, values = s.standby.served },
      { name = "standby failed", color = "#ff7f0e", values = s.standby.failed, dash = true } } },
    { title = "Instances serving (in service, healthy in the target group)", kind = "lines",
      ylabel = "instances", height = 110, integer = true, series = {
      { name = "primary", color = COLORS.primary, values = s.primary.in_service, step = true },
      { name = "standby", color = COLORS.standby, values = s.standby.in_service, step = true },
      { name = "standby desired", color = "#98df8a", values = s.standby.desired, step = true,
        dash = true } } },
    { title = "CPU per instance (target tracking)", kind = "lines", ylabel = "CPU %", height = 90,
      ymax = 100, series = {
      { name = "primary", color = COLORS.primary, values = s.primary.cpu },
      { name = "standby", color = COLORS.standby, values = s.standby.cpu } } },
  }
  return svg.render{ title = title or "Failover drill", t = s.t, panels = panels,
    xlabel = "seconds from the outage", markers = M.markers(res) }
end

return M
