-- The regions the simulator serves and their Availability Zones, named as AWS names them.
-- Data only: ctx:azs(), DescribeAvailabilityZones and validation read it.
--
-- AZ ids follow AWS's scheme (first letters of the region code + its number, "-az", a
-- number: eus1-az1). AWS maps zone names to ids per account in its oldest regions, so
-- the name → id pairing below is one plausible account's, not a universal fact:
-- eu-south-1 a/b/c → eus1-az1/2/3; eu-central-1 a/b/c → euc1-az2/3/1 (as commonly seen);
-- us-east-1 a..f → use1-az1..az6 (order chosen, documented in docs/simulator.md).
local M = {}

local function zones(region, pairs_)
  local out = {}
  for i, p in ipairs(pairs_) do
    out[i] = { ZoneName = region .. p[1], ZoneId = p[2] }
  end
  return out
end

--- region name → {azs = {{ZoneName=, ZoneId=}...}, opt_in = bool (opt-in region)}
M.REGIONS = {
  ["eu-south-1"] = { opt_in = true,
    azs = zones("eu-south-1", { { "a", "eus1-az1" }, { "b", "eus1-az2" }, { "c", "eus1-az3" } }) },
  ["eu-central-1"] = { opt_in = false,
    azs = zones("eu-central-1", { { "a", "euc1-az2" }, { "b", "euc1-az3" }, { "c", "euc1-az1" } }) },
  ["us-east-1"] = { opt_in = false,
    azs = zones("us-east-1", { { "a", "use1-az1" }, { "b", "use1-az2" }, { "c", "use1-az3" },
      { "d", "use1-az4" }, { "e", "use1-az5" }, { "f", "use1-az6" } }) },
  ["us-west-2"] = { opt_in = false,
    azs = zones("us-west-2", { { "a", "usw2-az1" }, { "b", "usw2-az2" }, { "c", "usw2-az3" },
      { "d", "usw2-az4" } }) },
  ["eu-west-1"] = { opt_in = false,
    azs = zones("eu-west-1", { { "a", "euw1-az1" }, { "b", "euw1-az2" }, { "c", "euw1-az3" } }) },
}

--- Services with one global endpoint (signed for us-east-1); their state lives under the
--- store's region "global".
M.GLOBAL_SERVICES = { iam = true, route53 = true }
M.GLOBAL = "global"
M.GLOBAL_SIGNING_REGION = "us-east-1"

--- True when the simulator serves `region`.
function M.known(region)
  return M.REGIONS[region] ~= nil
end

--- Sorted region names.
function M.names()
  local out = {}
  for k in pairs(M.REGIONS) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- The AZs of `region` as fresh tables in DescribeAvailabilityZones' shape (a handler
--- may keep or change them); nil for an unknown region.
function M.azs(region)
  local r = M.REGIONS[region]
  if not r then return nil end
  local out = {}
  for i, z in ipairs(r.azs) do
    out[i] = { ZoneName = z.ZoneName, ZoneId = z.ZoneId, RegionName = region,
      State = "available", ZoneType = "availability-zone", GroupName = region,
      NetworkBorderGroup = region,
      OptInStatus = "opt-in-not-required", Messages = {} }
  end
  return out
end

return M
