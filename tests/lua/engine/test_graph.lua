-- Dependency graphs: cycles named in order, topological order, and the scheduler running
-- a graph with bounded parallelism.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local graph = require "fo.engine.graph"
local schedule = require "fo.engine.schedule"

local function g(edges)
  local nodes, deps = {}, {}
  for name, list in pairs(edges) do
    nodes[#nodes + 1] = name
    deps[name] = list
  end
  table.sort(nodes)
  return nodes, function(n) return deps[n] or {} end
end

function test_no_cycle_in_a_dag()
  local nodes, deps = g{ a = {}, b = { "a" }, c = { "a", "b" } }
  lu.assertNil(graph.cycle(nodes, deps))
  lu.assertEquals(graph.order(nodes, deps), { "a", "b", "c" })
end

function test_cycle_members_in_order()
  local nodes, deps = g{ a = { "b" }, b = { "c" }, c = { "a" }, d = {} }
  lu.assertEquals(graph.cycle(nodes, deps), { "a", "b", "c", "a" })
  nodes, deps = g{ x = { "y" }, y = { "y" } }
  lu.assertEquals(graph.cycle(nodes, deps), { "y", "y" })
end

function test_a_long_chain_does_not_overflow()
  local nodes, deps = {}, {}
  for i = 1, 20000 do nodes[i] = i; deps[i] = i > 1 and { i - 1 } or {} end
  lu.assertNil(graph.cycle(nodes, function(n) return deps[n] end))
  local reversed = {}
  for i = 20000, 1, -1 do reversed[#reversed + 1] = i end
  local order = graph.order(reversed, function(n) return deps[n] end)
  lu.assertEquals(#order, 20000)
  lu.assertEquals({ order[1], order[2], order[20000] }, { 1, 2, 20000 })
end

function test_in_order_tells_a_sorted_list_from_one_to_sort()
  local lt = function(a, b) return a < b end
  lu.assertIsTrue(graph.in_order({}, lt))
  lu.assertIsTrue(graph.in_order({ 1 }, lt))
  lu.assertIsTrue(graph.in_order({ 1, 2, 2, 5 }, lt))
  lu.assertIsFalse(graph.in_order({ 1, 3, 2 }, lt))
  lu.assertIsFalse(graph.in_order({ 2, 1 }, lt))
end

local function nodes_for(edges, log, seconds)
  local list = {}
  for _, name in ipairs({ "a", "b", "c", "d", "e" }) do
    if edges[name] then
      list[#list + 1] = { key = name, deps = edges[name], run = function()
        log[#log + 1] = "start " .. name
        fo.sleep(seconds)
        if name == "fail" then error("x") end
        log[#log + 1] = "end " .. name
      end }
    end
  end
  return list
end

function test_scheduler_respects_dependencies_and_the_parallel_bound()
  local log = {}
  local r = schedule.run(nodes_for({ a = {}, b = {}, c = { "a" }, d = { "a", "b" }, e = {} }, log, 0.02),
    { parallel = 2 })
  lu.assertEquals(#r.done, 5)
  -- a and b start together; e waits for a slot; c and d after a (and b)
  lu.assertEquals({ log[1], log[2] }, { "start a", "start b" })
  local pos = {}
  for i, v in ipairs(log) do pos[v] = i end
  lu.assertIsTrue(pos["start c"] > pos["end a"])
  lu.assertIsTrue(pos["start d"] > pos["end b"])
  local running, max = 0, 0
  for _, v in ipairs(log) do
    running = running + (v:match("^start") and 1 or -1)
    max = math.max(max, running)
  end
  lu.assertEquals(max, 2)
end

function test_scheduler_stops_starting_after_a_failure_and_lets_in_flight_finish()
  local log = {}
  local nodes = {
    { key = "slow", run = function() fo.sleep(0.05); log[#log + 1] = "slow done" end },
    { key = "bad", run = function() fo.sleep(0.01); error({ code = "Boom" }) end },
    { key = "after", deps = { "bad" }, run = function() log[#log + 1] = "after" end },
    { key = "queued", run = function() log[#log + 1] = "queued" end },
  }
  local r = schedule.run(nodes, { parallel = 2, stop_on_failure = true })
  lu.assertEquals(#r.failed, 1)
  lu.assertEquals(r.failed[1].error.code, "Boom")
  lu.assertEquals(log, { "slow done" })
  lu.assertEquals(#r.skipped, 2)
end

os.exit(lu.LuaUnit.run())
