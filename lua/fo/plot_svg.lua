-- Time-series pictures as SVG, written directly (no plotting dependency): stacked panels
-- sharing one time axis, vertical markers across all panels, a legend per panel. What a
-- browser shows as it is; the text is escaped with fo.xml.
--
-- M.render{ title =, t = {seconds}, xlabel =, panels = { panel }, markers = { {t=, label=,
-- color=} } } → the SVG text. A panel: { title =, kind = "lines"|"bands", height =,
--   lines: ylabel =, ymax = (default: the largest value), integer = (whole ticks), series = { {name=, color=,
--     values = {…, one per t}, dash = bool, step = bool} };
--   bands: rows = { {name=, values = {…}, colors = {value = color}, labels = {value =
--     text}} } (one coloured strip per row) }.
local escape = require("fo.xml").escape

local M = {}

local W, LEFT, RIGHT, TOP, GAP = 1100, 170, 30, 52, 34

local function num(x) return (("%.1f"):format(x):gsub("%.0$", "")) end

-- A "nice" step for an axis up to `max` with about `n` ticks.
local function nice_step(max, n)
  local raw = max / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs{ 1, 2, 5, 10 } do
    if m * mag >= raw then return m * mag end
  end
  return 10 * mag
end

local function text(out, x, y, s, attrs)
  out[#out + 1] = ('<text x="%s" y="%s"%s>%s</text>'):format(num(x), num(y), attrs or "", escape(s))
end

-- The points of a series: steps keep the value until the next sample.
local function path_of(t, values, X, Y, step)
  local parts, last = {}, nil
  for i, v in ipairs(values) do
    if v ~= nil then
      local x, y = X(t[i]), Y(v)
      if #parts == 0 then
        parts[1] = ("M%s %s"):format(num(x), num(y))
      elseif step then
        if last ~= v then
          parts[#parts + 1] = ("H%s V%s"):format(num(x), num(y))
        end
      else
        parts[#parts + 1] = ("L%s %s"):format(num(x), num(y))
      end
      last = v
    end
  end
  if step and #t > 0 then parts[#parts + 1] = ("H%s"):format(num(X(t[#t]))) end
  return table.concat(parts, " ")
end

local function lines_panel(out, p, t, X, y0, h)
  local ymax = p.ymax or 0
  for _, s in ipairs(p.series) do
    for _, v in ipairs(s.values) do if v > ymax then ymax = v end end
  end
  if ymax <= 0 then ymax = 1 end
  local step = nice_step(ymax, 4)
  if p.integer then step = math.max(1, math.floor(step + 0.5)) end
  ymax = math.ceil(ymax / step) * step
  local function Y(v) return y0 + h - v / ymax * h end
  for v = 0, ymax + 1e-9, step do
    out[#out + 1] = ('<line x1="%s" x2="%s" y1="%s" y2="%s" class="grid"/>'):format(LEFT, W - RIGHT,
      num(Y(v)), num(Y(v)))
    text(out, LEFT - 6, Y(v) + 4, num(v), ' class="tick" text-anchor="end"')
  end
  if p.ylabel then
    local x = LEFT - 48
    text(out, x, y0 + h / 2, p.ylabel, (' class="axis" transform="rotate(-90 %d %s)" text-anchor="middle"')
      :format(x, num(y0 + h / 2)))
  end
  for _, s in ipairs(p.series) do
    out[#out + 1] = ('<path d="%s" fill="none" stroke="%s" stroke-width="2"%s><title>%s</title></path>')
      :format(path_of(t, s.values, X, Y, s.step), s.color, s.dash and ' stroke-dasharray="6 4"' or "",
        escape(s.name))
  end
  -- legend, right-aligned above the panel
  local x = W - RIGHT
  for k = #p.series, 1, -1 do
    local s = p.series[k]
    local width = 8 * #s.name + 30
    x = x - width
    out[#out + 1] = ('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-width="3"%s/>'):format(
      num(x), num(x + 20), num(y0 - 8), num(y0 - 8), s.color, s.dash and ' stroke-dasharray="6 4"' or "")
    text(out, x + 24, y0 - 4, s.name, ' class="legend"')
  end
end

local function bands_panel(out, p, t, X, y0, h)
  local rh = h / #p.rows
  local seen, legend = {}, {}
  for r, row in ipairs(p.rows) do
    local y = y0 + (r - 1) * rh
    text(out, LEFT - 6, y + rh / 2 + 4, row.name, ' class="tick" text-anchor="end"')
    local i = 1
    while i <= #t do
      local v = row.values[i]
      local j = i
      while j < #t and row.values[j + 1] == v do j = j + 1 end
      local x1 = X(t[i] - (i > 1 and (t[i] - t[i - 1]) or 0))
      local x2 = X(t[j])
      local color = row.colors[v] or "#ccc"
      local label = row.labels and row.labels[v] or tostring(v)
      out[#out + 1] = ('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s: %s from %ss to %ss</title></rect>')
        :format(num(x1), num(y + 2), num(math.max(0.5, x2 - x1)), num(rh - 4), color, escape(row.name),
          escape(label), num(t[i]), num(t[j]))
      if not seen[color] then
        seen[color] = true
        legend[#legend + 1] = { color = color, label = label }
      end
      i = j + 1
    end
  end
  local x = W - RIGHT
  for k = #legend, 1, -1 do
    local l = legend[k]
    x = x - (8 * #l.label + 30)
    out[#out + 1] = ('<rect x="%s" y="%s" width="14" height="10" fill="%s"/>'):format(num(x), num(y0 - 13), l.color)
    text(out, x + 18, y0 - 4, l.label, ' class="legend"')
  end
end

--- The SVG text of a picture (see the header for its description).
function M.render(d)
  local t = d.t
  local t0, t1 = t[1] or 0, t[#t] or 1
  for _, m in ipairs(d.markers or {}) do
    if m.t < t0 then t0 = m.t end
    if m.t > t1 then t1 = m.t end
  end
  if t1 <= t0 then t1 = t0 + 1 end
  local function X(v) return LEFT + (v - t0) / (t1 - t0) * (W - LEFT - RIGHT) end
  local height = TOP
  for _, p in ipairs(d.panels) do height = height + GAP + (p.height or 110) end
  local bottom = height
  local label_rows = 0
  local out = {}
  out[#out + 1] = '<?xml version="1.0" encoding="UTF-8"?>'
  local marker_space = 18 * math.min(#(d.markers or {}), 14) + 60
  out[#out + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif">')
    :format(W, bottom + marker_space, W, bottom + marker_space)
  out[#out + 1] = '<style>.grid{stroke:#e3e3e3}.tick{font-size:11px;fill:#444}.axis{font-size:12px;fill:#222}'
    .. '.legend{font-size:11px;fill:#222}.ptitle{font-size:13px;font-weight:bold;fill:#222}'
    .. '.marker{stroke-width:1.2;stroke-dasharray:3 3}.mlabel{font-size:11px}</style>'
  out[#out + 1] = '<rect width="100%" height="100%" fill="white"/>'
  text(out, LEFT, 22, d.title or "", ' class="ptitle" font-size="15px"')
  local y = TOP
  for _, p in ipairs(d.panels) do
    y = y + GAP
    local h = p.height or 110
    out[#out + 1] = ('<g class="panel" data-title="%s">'):format(escape(p.title))
    text(out, LEFT, y - 18, p.title, ' class="ptitle"')
    out[#out + 1] = ('<rect x="%d" y="%s" width="%d" height="%s" fill="none" stroke="#999"/>')
      :format(LEFT, num(y), W - LEFT - RIGHT, num(h))
    if p.kind == "bands" then bands_panel(out, p, t, X, y, h) else lines_panel(out, p, t, X, y, h) end
    out[#out + 1] = '</g>'
    y = y + h
  end
  -- the time axis under the last panel
  local step = nice_step(t1 - t0, 10)
  for v = math.ceil(t0 / step) * step, t1 + 1e-9, step do
    out[#out + 1] = ('<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#999"/>'):format(num(X(v)), num(X(v)),
      num(y), num(y + 5))
    text(out, X(v), y + 18, num(v), ' class="tick" text-anchor="middle"')
  end
  text(out, LEFT + (W - LEFT - RIGHT) / 2, y + 36, d.xlabel or "seconds", ' class="axis" text-anchor="middle"')
  -- markers across every panel, their labels listed under the axis
  out[#out + 1] = '<g class="markers">'
  local last_x, shift = nil, 0
  for k, m in ipairs(d.markers or {}) do
    local x = X(m.t)
    -- numbers of markers at (nearly) the same time sit side by side
    if last_x and x - last_x < 12 then shift = shift + 12 else shift = 0 end
    last_x = x
    out[#out + 1] = ('<line x1="%s" x2="%s" y1="%d" y2="%s" stroke="%s" class="marker" data-t="%s"><title>%s</title></line>')
      :format(num(x), num(x), TOP, num(y), m.color or "#555", num(m.t), escape(m.label))
    text(out, x + 2 + shift, TOP - 4, tostring(k), (' class="mlabel" fill="%s"'):format(m.color or "#555"))
    if k <= 14 then
      label_rows = label_rows + 1
      text(out, LEFT, y + 52 + 18 * (label_rows - 1), ("%d  t=%ss  %s"):format(k, num(m.t), m.label),
        (' class="mlabel" fill="%s"'):format(m.color or "#555"))
    end
  end
  out[#out + 1] = '</g>'
  out[#out + 1] = '</svg>'
  return table.concat(out, "\n") .. "\n"
end

return M
