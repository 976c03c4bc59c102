-- One load balancer health check of one instance target, through the simulated data
-- plane, as AWS decides it (docs/simulator.md, "Target health"):
--
--   1. the network lets it through: some security group of the load balancer allows
--      egress to the instance on the health-check port (a rule referencing one of the
--      instance's groups, or a CIDR holding its private address), and one of the
--      instance's groups admits it (a rule referencing one of the load balancer's groups,
--      or CIDRs covering every subnet of the load balancer, where its nodes take their
--      addresses). Otherwise the check's packets are dropped: Target.Timeout;
--   2. something listens there for the load balancer: a server the instance's user data
--      starts (fo.sim.user_data) on the health-check port, on all interfaces or the
--      instance's address, speaking the check's protocol (the servers read are plain
--      HTTP, so an HTTPS check fails its handshake). Otherwise: Target.FailedHealthChecks;
--   3. it answers the check's path with a code the matcher accepts. Otherwise:
--      Target.ResponseCodeMismatch with the code.
local ec2 = require "fo.sim.ec2_lookup"
local C = require "fo.sim.services.ec2.common"
local user_data = require "fo.sim.user_data"

local M = {}

local TIMEOUT = { State = "unhealthy", Reason = "Target.Timeout",
  Description = "Request timed out" }
local FAILED = { State = "unhealthy", Reason = "Target.FailedHealthChecks",
  Description = "Health checks failed" }

-- Does rule `r` carry TCP to `port`?
local function carries(r, port)
  if r.IpProtocol == "-1" then return true end
  if r.IpProtocol ~= "tcp" and r.IpProtocol ~= "6" then return false end
  return (r.FromPort or -1) <= port and port <= (r.ToPort or -1)
end

local function contains_block(cidr, block)
  local b1, n1 = C.parse_cidr(cidr)
  local b2, n2 = C.parse_cidr(block)
  return b1 ~= nil and b2 ~= nil and C.contains(b1, n1, b2, n2)
end

local function set_of(list)
  local s = {}
  for _, x in ipairs(list or {}) do s[x] = true end
  return s
end

--- The security group ids the instance runs with (its own, else its VPC's default).
function M.instance_groups(ctx, inst)
  if inst.SecurityGroups and #inst.SecurityGroups > 0 then return inst.SecurityGroups end
  local g = ec2.default_security_group(ctx, inst.VpcId)
  return g and { g.GroupId } or {}
end

--- true when the groups of load balancer `lb` (its description) and of `inst` let a
--- health check through to `port`.
function M.reachable(ctx, lb, inst, port)
  local lb_groups, inst_groups = set_of(lb.SecurityGroups), M.instance_groups(ctx, inst)
  local inst_set = set_of(inst_groups)
  local ip = inst.PrivateIpAddress and (inst.PrivateIpAddress .. "/32")
  -- a load balancer without groups (a Network Load Balancer's may have none) filters nothing
  local out = #(lb.SecurityGroups or {}) == 0
  for _, g in ipairs(lb.SecurityGroups or {}) do
    for _, r in ipairs(ec2.security_group_rules(ctx, g, true)) do
      if carries(r, port) and ((r.ReferencedGroupInfo and inst_set[r.ReferencedGroupInfo.GroupId])
          or (r.CidrIpv4 and ip and contains_block(r.CidrIpv4, ip))) then
        out = true
      end
    end
  end
  if not out then return false end
  -- The load balancer's nodes take addresses in its subnets: each must be admitted.
  local subnets = {}
  for _, az in ipairs(lb.AvailabilityZones or {}) do
    local s = ec2.subnet(ctx, az.SubnetId)
    subnets[#subnets + 1] = s and s.CidrBlock or "255.255.255.255/32"
  end
  local covered = {}
  for _, g in ipairs(inst_groups) do
    for _, r in ipairs(ec2.security_group_rules(ctx, g, false)) do
      if carries(r, port) then
        if r.ReferencedGroupInfo and lb_groups[r.ReferencedGroupInfo.GroupId] then return true end
        for k, block in ipairs(subnets) do
          if r.CidrIpv4 and contains_block(r.CidrIpv4, block) then covered[k] = true end
        end
      end
    end
  end
  for k = 1, #subnets do
    if not covered[k] then return false end
  end
  return #subnets > 0
end

-- Does HttpCode ("200", "200,202", "200-299") accept `code`?
local function matches(http_code, code)
  for part in tostring(http_code or "200"):gmatch("[^,%s]+") do
    local lo, hi = part:match("^(%d+)%-(%d+)$")
    if lo and code >= tonumber(lo) and code <= tonumber(hi) then return true end
    if tonumber(part) == code then return true end
  end
  return false
end

--- The user data (base64) instance `inst` was launched with: the copy taken at launch,
--- else its launch template version's.
function M.user_data_of(ctx, inst)
  if inst.UserData ~= nil then return inst.UserData end
  local spec = inst.LaunchTemplate or {}
  local lt = ec2.launch_template(ctx, spec.LaunchTemplateId, spec.LaunchTemplateName)
  local v = lt and ec2.launch_template_version(lt, spec.Version)
  return v and v.LaunchTemplateData and v.LaunchTemplateData.UserData or nil
end

--- The health-check port of target group `tg` (its description) for a target on `port`.
function M.check_port(tg, port)
  local p = tg.HealthCheckPort
  if p == nil or p == "traffic-port" then return port or tg.Port end
  return tonumber(p)
end

-- The server of `inst` that the load balancer reaches on `port`, or nil.
local function listening(ctx, inst, port)
  local family = require("fo.sim.amis").family(ctx.region, inst.ImageId)
  for _, s in ipairs(user_data.servers(M.user_data_of(ctx, inst), family)) do
    if s.port == port and (s.host == "" or s.host == "0.0.0.0" or s.host == "::"
        or s.host == inst.PrivateIpAddress) then
      return s
    end
  end
  return nil
end

--- What the load balancer gets when it forwards a GET of `path` to `inst` on `port` (the
--- target's traffic port) for target group `tg` (description): the target's status code,
--- or nil and "timeout" (dropped) or "error" (refused, failed handshake, no response).
function M.request(ctx, tg, lb, inst, port, path)
  if not M.reachable(ctx, lb, inst, port) then return nil, "timeout" end
  -- the drill's faults (fo.sim.knobs FAULTS): the instance's AZ is down, or its application
  -- answers 500 to everything while EC2 runs
  local knobs = ctx.sim.knobs
  if knobs:fault_of(ctx.region, "az") == inst.AvailabilityZone then return nil, "timeout" end
  if knobs:fault_of(ctx.region, "app") then return 500 end
  local server = listening(ctx, inst, port)
  if not server or tg.Protocol ~= "HTTP" then return nil, "error" end
  local code = server.answer(path)
  if not code then return nil, "error" end
  return code
end

--- The result of the health check of `tg` (description) from load balancer `lb`
--- (description) on instance `inst` registered on `port`: nil when it passes, else the
--- TargetHealth DescribeTargetHealth reports.
function M.check(ctx, tg, lb, inst, port)
  local hc_port = M.check_port(tg, port)
  if not hc_port or not M.reachable(ctx, lb, inst, hc_port) then return TIMEOUT end
  local server = listening(ctx, inst, hc_port)
  if not server then return FAILED end
  if (tg.HealthCheckProtocol or tg.Protocol) ~= "HTTP" then return FAILED end
  local code = server.answer(tg.HealthCheckPath or "/")
  if not code then return FAILED end -- the handler sends nothing: a malformed response
  local matcher = tg.Matcher and tg.Matcher.HttpCode or "200"
  if not matches(matcher, code) then
    return { State = "unhealthy", Reason = "Target.ResponseCodeMismatch",
      Description = ("Health checks failed with these codes: [%d]"):format(code) }
  end
  return nil
end

return M
