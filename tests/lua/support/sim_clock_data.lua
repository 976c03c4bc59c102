-- What the simulator changes by itself, as its clock runs (the wall clock's, in tests that
-- run the engine) or as calls come: a comparison of what it holds before and after a run
-- leaves these out, or it would fail on timing alone. One list for every such comparison
-- (engine_harness's H.sim_holdings, trading_faults' normalize).
-- An entry names a key of a service's state in a region; `within`: a key of each record of
-- that map instead.
local M = {}

M.LIST = {
  -- metric data points: health checks and Auto Scaling groups keep adding them (a deleted
  -- health check's stay, as in CloudWatch)
  { service = "cloudwatch", key = "metrics" },
  -- EC2's memo of the load balancers' ENIs, filled by whichever EC2 call comes first (the
  -- load balancers themselves are compared in ELBv2's data)
  { service = "ec2", key = "lb_enis" },
  -- the requests Route 53's checkers sent the load balancers: the clock decides how many
  { service = "elbv2", key = "traffic" },
  -- the health checks' evaluations: each checker's last result, on that clock
  { service = "route53", within = "health_checks", key = "eval" },
  -- the alarms' evaluations on that clock: state, reason and when it changed, the history
  -- items and the notifications of each transition
  { service = "cloudwatch", within = "alarms", key = "StateValue" },
  { service = "cloudwatch", within = "alarms", key = "StateReason" },
  { service = "cloudwatch", within = "alarms", key = "StateReasonData" },
  { service = "cloudwatch", within = "alarms", key = "StateUpdatedTimestamp" },
  { service = "cloudwatch", within = "alarms", key = "history_reason" },
  -- when each alarm is evaluated next: a step further each time the clock passes it
  { service = "cloudwatch", within = "alarms", key = "next_eval" },
  { service = "cloudwatch", key = "history" },
  -- when the services' own metrics are published next (fo.sim.metrics_plane)
  { service = "cloudwatch", key = "plane_next" },
  { service = "sns", key = "messages" },
}

--- The keys of M.LIST as a set ({metrics = true, ...}), for a comparison that leaves them
--- out wherever they stand.
function M.keys()
  local out = {}
  for _, e in ipairs(M.LIST) do out[e.key] = true end
  return out
end

--- Removes M.LIST's data from a simulator dump (accounts → regions → services), in place.
function M.strip(dump)
  for _, account in pairs(dump) do
    for _, region in pairs(type(account) == "table" and account or {}) do
      for _, e in ipairs(M.LIST) do
        local svc = type(region) == "table" and region[e.service]
        if type(svc) == "table" and e.within then
          for _, r in pairs(type(svc[e.within]) == "table" and svc[e.within] or {}) do
            if type(r) == "table" then r[e.key] = nil end
          end
        elseif type(svc) == "table" then
          svc[e.key] = nil
        end
      end
    end
  end
  return dump
end

return M
