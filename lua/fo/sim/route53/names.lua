-- DNS names as Route 53 keeps them: lower case, fully qualified (trailing dot), a leading
-- wildcard label written \052 (how ListResourceRecordSets returns "*"), and the sort
-- order of its listings (labels reversed, then ASCII: "com.example.www.").
local M = {}

--- `name` as Route 53 stores it: lower case, trailing dot, "*." → "\052.".
function M.fqdn(name)
  name = tostring(name):lower()
  if name:sub(-1) ~= "." then name = name .. "." end
  if name:sub(1, 2) == "*." then name = "\\052" .. name:sub(2) end
  if name == "*." then name = "\\052." end
  return name
end

--- The hosted-zone id without Route 53's path prefix: "/hostedzone/Z1" → "Z1" (clients
--- may send either; the SDKs strip the prefix, fo's codec too).
function M.bare_id(id)
  return (tostring(id):match("([^/]*)$"))
end

--- The key ListResourceRecordSets and ListHostedZonesByName sort by: the labels of the
--- name reversed ("www.example.com." → "com.example.www.").
function M.sort_key(name)
  local labels = {}
  for l in name:gmatch("[^.]+") do labels[#labels + 1] = l end
  local out = {}
  for i = #labels, 1, -1 do out[#out + 1] = labels[i] end
  return table.concat(out, ".") .. "."
end

--- True when `name` is `zone` or below it (both fully qualified).
function M.in_zone(name, zone)
  return name == zone or (#name > #zone and name:sub(-#zone - 1) == "." .. zone)
end

--- True when `name` is a valid domain name for a hosted zone: labels of 1..63 characters
--- (letters, digits, hyphen, underscore), at most 255 characters in all.
function M.valid_domain(name)
  if #name > 255 or name == "." then return false end
  for label in (name:sub(1, -2) .. "."):gmatch("([^.]*)%.") do
    if #label == 0 or #label > 63 or label:find("[^%w%-_\\]") then return false end
  end
  return true
end

-- Names Route 53 refuses to host (InvalidDomainName "<name> is reserved by AWS!"): the
-- second-level domains RFC 2606 reserves for documentation, and every name below them.
M.RESERVED = { "example.com.", "example.net.", "example.org." }

--- The reserved domain `name` (fully qualified) lies in, or nil.
function M.reserved(name)
  for _, r in ipairs(M.RESERVED) do
    if M.in_zone(name, r) then return r end
  end
end

return M
