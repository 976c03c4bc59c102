-- The engine proofs' test graph (tests/lua/engine/test_fault_matrix.lua, test_crash_trials.lua):
-- 22 resources over EC2 (3 VPCs, 7 subnets, 3 security groups), SNS (4 topics), IAM (3
-- roles) and Route 53 (2 zones), with fan-out (a VPC's subnets and groups) and fan-in (a
-- group waiting for four subnets, a role naming two VPCs, tags holding other resources'
-- ids). Version 2 updates 7 in place, replaces 3 (create-before-delete: a subnet's CIDR, a
-- topic's name, a zone's comment), creates 4 and deletes 3.
-- Not a test (no test_ prefix); needs support.engine_types.
local M = {}

--- Declares the graph (in a recipe): version 1 or 2.
function M.declare(version)
  local v2 = version == 2
  local main = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16", dns_hostnames = v2,
    tags = v2 and {} or { tier = "core" } })
  local edge = fo.resource("test:vpc", "edge", { cidr = "10.1.0.0/16" })
  local subnets = {}
  for i = 1, v2 and 5 or 4 do
    local cidr = ("10.0.%d.0/24"):format((v2 and i == 3) and 13 or i) -- a3: replaced in v2
    subnets[i] = fo.resource("test:subnet", "a" .. i, { vpc_id = main.id, cidr = cidr,
      public_ip = v2 and i == 2 })
  end
  local e1 = fo.resource("test:subnet", "e1", { vpc_id = edge.id, cidr = "10.1.1.0/24" })
  fo.resource("test:subnet", "e2", { vpc_id = edge.id, cidr = "10.1.2.0/24" })
  if not v2 then
    local spare = fo.resource("test:vpc", "spare", { cidr = "10.2.0.0/16" })
    fo.resource("test:subnet", "sp1", { vpc_id = spare.id, cidr = "10.2.1.0/24" })
    fo.resource("test:topic", "legacy", { name = "legacy" })
  end
  fo.resource("test:security_group", "web", { vpc_id = main.id, name = "web",
    tags = v2 and { role = "web", env = "prod" } or { role = "web" } })
  fo.resource("test:security_group", "db", { vpc_id = main.id, name = "db" },
    { depends_on = { subnets[1], subnets[2], subnets[3], subnets[4] } })
  fo.resource("test:security_group", "edge", { vpc_id = edge.id, name = "edge" })
  fo.resource("test:topic", "alerts", { name = "alerts", display_name = v2 and "Alarms" or "Alerts" })
  local audit = fo.resource("test:topic", "audit", { name = "audit", tags = { vpc = main.id } })
  fo.resource("test:topic", "events", { name = v2 and "events-v2" or "events",
    display_name = fo.format("events of %s", e1.id) })
  fo.resource("test:role", "app", { name = "app",
    description = fo.format("app in %s and %s", main.id, edge.id) })
  fo.resource("test:role", "worker", { name = "worker", description = v2 and "batch worker" or "" })
  fo.resource("test:role", "auditor", { name = "auditor",
    tags = v2 and { topic = audit.arn, level = "high" } or { topic = audit.arn } })
  fo.resource("test:zone", "public", { name = "example-com.test",
    tags = { env = v2 and "prod" or "dev" } })
  fo.resource("test:zone", "internal", { name = "int.example-com.test",
    comment = v2 and "internal v2" or "internal" })
  if v2 then
    fo.resource("test:security_group", "cache", { vpc_id = main.id, name = "cache" },
      { depends_on = subnets[5] })
    local orders = fo.resource("test:topic", "orders", { name = "orders" })
    fo.resource("test:role", "orders", { name = "orders",
      description = fo.format("publishes to %s", orders.arn) })
  end
  fo.output("main", main.id)
end

--- The graph as a recipe function (for the engine harness).
function M.recipe(version)
  return function() M.declare(version) end
end

--- The text of a stack file declaring the graph, its version the config value `version`
--- (default 1; fo-run --config version=2): for tests that run fo-run on a file. `tests_dir`
--- holds lua/support/.
function M.stack_file(tests_dir)
  return ([[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
local c = fo.config{ version = { type = "integer", default = 1 } }
require('support.engine_graph').declare(c.version)
]]):format(tests_dir)
end

return M
