-- What the public DNS answers for a name, as far as the simulator knows it: the hosted
-- zones of its Route 53 that the internet can reach. A zone is reached from a registered
-- domain (knob registered_domains: the registrar points the domain at the Route 53 zone of
-- that name) and then down NS delegations: a reached zone holding an NS record set for a
-- name below it hands that name to the zone whose name servers are exactly that record's
-- values. A zone no registration or delegation leads to answers nothing, however public —
-- which is why ACM cannot validate a certificate from it. docs/simulator.md, "ACM".
local names = require "fo.sim.route53.names"
local rrsets = require "fo.sim.route53.rrsets"

local M = {}

-- name server → true, written without the final dot, lower case.
local function ns_set(list)
  local out, n = {}, 0
  for _, v in ipairs(list) do
    local s = tostring(v):lower():gsub("%.$", "")
    if not out[s] then out[s], n = true, n + 1 end
  end
  return out, n
end

local function same_set(a_list, b_list)
  local a, na = ns_set(a_list)
  local b, nb = ns_set(b_list)
  if na ~= nb or na == 0 then return false end
  for k in pairs(a) do if not b[k] then return false end end
  return true
end

-- Every hosted zone of the simulator (all accounts), oldest first within an account,
-- accounts in a fixed order so the answer is deterministic.
local function all_zones(store, first_account)
  local accounts = {}
  for a in pairs(store.data.accounts) do accounts[#accounts + 1] = a end
  table.sort(accounts, function(x, y)
    if (x == first_account) ~= (y == first_account) then return x == first_account end
    return x < y
  end)
  local out = {}
  for _, a in ipairs(accounts) do
    local g = store.data.accounts[a].global
    local zones = g and g.route53 and g.route53.zones or {}
    local list = {}
    for _, z in pairs(zones) do list[#list + 1] = z end
    table.sort(list, function(x, y) return (x.seq or 0) < (y.seq or 0) end)
    for _, z in ipairs(list) do out[#out + 1] = z end
  end
  return out
end

-- The registered domain `name` lies in (the longest), fully qualified, or nil.
local function registration(registered, name)
  local best
  for _, d in ipairs(registered or {}) do
    local fq = names.fqdn(d)
    if names.in_zone(name, fq) and (not best or #fq > #best) then best = fq end
  end
  return best
end

--- The zone that answers for `name` (fully qualified, lower case) on the public internet,
--- or nil and why not: "unregistered" (no registered domain above it), "no_zone" (the
--- registered domain has no hosted zone), or "lame" and the delegated name (an NS
--- delegation on the way names servers no hosted zone has).
function M.authoritative(store, registered, name, account)
  local domain = registration(registered, name)
  local zones = all_zones(store, account)
  for _, d in ipairs(domain and {} or registered or {}) do
    -- "*": every hosted zone's own name is registered to it (a simulator playing an account
    -- whose domains are all delegated: fo-run --print-policy's)
    if d == "*" then
      for _, z in ipairs(zones) do
        if names.in_zone(name, z.Name) and (not domain or #z.Name < #domain) then domain = z.Name end
      end
    end
  end
  if not domain then return nil, "unregistered" end
  local zone
  for _, z in ipairs(zones) do
    if z.Name == domain then zone = z break end
  end
  if not zone then return nil, "no_zone", domain end
  while true do
    -- the deepest delegation in this zone on the way to `name`
    local cut
    for _, rr in pairs(zone.records) do
      if rr.Type == "NS" and rr.Name ~= zone.Name and names.in_zone(name, rr.Name)
          and (not cut or #rr.Name > #cut.Name) then
        cut = rr
      end
    end
    if not cut then return zone end
    local values = {}
    for i, v in ipairs(cut.ResourceRecords or {}) do values[i] = v.Value end
    local child
    for _, z in ipairs(zones) do
      if z.Name == cut.Name and same_set(z.NameServers, values) then child = z break end
    end
    if not child then return nil, "lame", cut.Name end
    zone = child
  end
end

--- The CNAME value (lower case, fully qualified) public DNS answers for `name`, or nil
--- and why not (see M.authoritative; "no_record" when the zone has none).
function M.cname(store, registered, name, account)
  name = names.fqdn(name)
  local zone, why, where = M.authoritative(store, registered, name, account)
  if not zone then return nil, why, where end
  local rr = zone.records[rrsets.key{ Name = name, Type = "CNAME" }]
  local v = rr and rr.ResourceRecords and rr.ResourceRecords[1] and rr.ResourceRecords[1].Value
  if not v then return nil, "no_record", zone.Name end
  return names.fqdn(v), nil, zone.Name
end

--- True when `zone` (a stored hosted zone) is reached from a registered domain.
function M.delegated(store, registered, zone, account)
  local z = M.authoritative(store, registered, zone.Name, account)
  return z == zone
end

return M
