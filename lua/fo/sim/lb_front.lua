-- What a client of an Application Load Balancer meets: the addresses its DNS name (and a
-- Route 53 alias to it) resolves to, and the HTTP answer to a request sent to it. The
-- simulator runs no servers: the answer comes from the model Route 53's checkers use
-- (fo.sim.failover.probe: region outage, listener, rules, target health, what the targets'
-- user data serves), so a client sees what the health checks see.
local failover = require "fo.sim.failover"

local M = {}

-- FNV-1a over a string: a stable number per name (the addresses must not move between
-- runs or reloads, and the state keeps none).
local function hash(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xFFFFFFFF end
  return h
end

--- The IPv4 addresses load balancer `host` (its DNS name) answers with: one per
--- Availability Zone it is enabled in (as an ALB's nodes), derived from the name; nil
--- when no load balancer of `account` has that name.
function M.addresses(sim, account, host)
  local lb = failover.find_lb(sim, account, host)
  if not lb then return nil end
  local name = tostring(host):lower():gsub("%.$", ""):gsub("^dualstack%.", "")
  local out = {}
  for i = 1, math.max(#(lb.desc.AvailabilityZones or {}), 1) do
    local h = hash(name .. "#" .. i)
    -- 3.0.0.0/9: a block Amazon announces for EC2; octets 1..254 avoid .0 and .255
    out[i] = ("3.%d.%d.%d"):format(h % 128, (h >> 8) % 254 + 1, (h >> 16) % 254 + 1)
  end
  return out
end

-- The Location of a redirect action's answer: its RedirectConfig with the #{protocol},
-- #{host}, #{port}, #{path} and #{query} of the request put in (ELBv2's redirect actions);
-- the port left out when it is the protocol's own.
local function location(cfg, scheme, host, port, path, query)
  local function fill(v)
    return (tostring(v):gsub("#{(%a+)}", { protocol = scheme:upper(), host = host,
      port = tostring(port), path = path:gsub("^/", ""), query = query }))
  end
  local proto = fill(cfg.Protocol or "#{protocol}"):lower()
  local to_port = fill(cfg.Port or "#{port}")
  local default = (proto == "https" and "443") or (proto == "http" and "80")
  local q = fill(cfg.Query or "#{query}")
  return ("%s://%s%s%s%s"):format(proto, fill(cfg.Host or "#{host}"), to_port == default and ""
    or (":" .. to_port), fill(cfg.Path or "/#{path}"), q ~= "" and ("?" .. q) or "")
end

local function is_lb_name(host)
  return host:match("%.elb%.amazonaws%.com$") ~= nil
end

--- sim:handle's first look at a request (normalized: method, path, query, lower-case
--- headers): one whose Host is a load balancer's DNS name is a client's request to that
--- load balancer (the served simulator stands in for it on loopback), answered as the
--- load balancer's listener on port 80 would — or on 443 when `via` says the request came
--- over TLS ({port = 443}: the served simulator's TLS front, fo.sim.server): the status the
--- model gives a GET of the path, with a short text body. Returns the response and a log
--- summary, or nil for every other request.
function M.answer(sim, req, via)
  local host = tostring(req.headers.host or ""):lower():gsub(":%d+$", "")
  if not is_lb_name(host) then return nil end
  local path = req.path or "/"
  if req.query and req.query ~= "" then path = path .. "?" .. req.query end
  local info = { service = "elbv2", operation = "(client request to a load balancer)",
    region = host:match("%.([%w%-]+)%.elb%.amazonaws%.com$") or "-" }
  local status, text, headers = nil, nil, { ["Content-Type"] = "text/plain" }
  if not failover.find_lb(sim, sim.account, host) then
    -- (no such name: on AWS the client's DNS lookup fails and nothing is sent)
    status, text = 502, "no load balancer has this name"
  else
    local port = via and via.port or 80
    local _, said, got = failover.probe(sim, sim.account, { Type = port == 443 and "HTTPS"
      or "HTTP", FullyQualifiedDomainName = host, Port = port, ResourcePath = path })
    status = tonumber(tostring(said):match("HTTP Status Code (%d+)"))
    if got and got.redirect then
      headers.Location = location(got.redirect, port == 443 and "https" or "http", host, port,
        req.path or "/", req.query or "")
    end
    text = said
    -- A timed-out connection (region outage, nothing listening on the port) cannot be shown
    -- over the loopback connection the client already has: 504, saying so.
    if not status then status = 504 end
  end
  info.status = status
  return { status = status, headers = headers, body = tostring(text) .. "\n" }, info
end

return M
