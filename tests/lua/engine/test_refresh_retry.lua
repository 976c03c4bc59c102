-- Refresh under failing reads: a read that fails transiently past the client's retries is
-- read again; a read that fails for good fails the refresh naming that resource, and the
-- other resources are still read (one failure does not abort the rest).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local sns_handlers = require "fo.sim.services.sns"

local sim
TestRefreshRetry = {}
local f = H.fixture(TestRefreshRetry, function(fx)
  sim = fx.sim
  lu.assertEquals((fx.run(H.network())), 0)
end)

-- GetTopicAttributes answers `code` (HTTP `status`) `n` times, then as usual.
local function failing_topic_reads(code, status, n)
  local seen = 0
  sim:add_handlers("sns", { GetTopicAttributes = function(ctx, params)
    seen = seen + 1
    if seen <= n then ctx:fail(code, "injected by the test", status) end
    return sns_handlers.GetTopicAttributes(ctx, params)
  end })
  return function() return seen end
end

function TestRefreshRetry:test_a_read_failing_past_the_clients_retries_is_read_again()
  -- 6 × 503: more than the engine's clients retry a 5xx (5 attempts), so only a second
  -- read of the resource gets through.
  local seen = failing_topic_reads("ServiceUnavailable", 503, 6)
  local code, _, out, err = f.run(H.network(), { mode = "refresh", explicit = true })
  lu.assertEquals(code, 0, out .. err)
  lu.assertStrContains(out, "Refresh complete: no drift.")
  lu.assertEquals(seen(), 7)
end

function TestRefreshRetry:test_a_read_failing_for_good_is_named_and_the_others_are_still_read()
  failing_topic_reads("AuthorizationError", 403, math.huge)
  sim.recorder:clear()
  -- one read at a time, in the order of the resources' names: the topic comes before the
  -- VPC, which must still be read after the topic's read failed
  local code, doc, out, err = f.run(H.network(), { mode = "refresh", explicit = true,
    parallel = 1 })
  lu.assertEquals(code, 3, out .. err)
  lu.assertStrContains(err, "dev::test:topic::alerts")
  lu.assertStrContains(err, "AuthorizationError")
  lu.assertStrContains(err, "Refresh failed: nothing was changed.")
  lu.assertEquals(#doc.errors, 1)
  lu.assertEquals(doc.errors[1].urn, "dev::test:topic::alerts")
  local ops = H.ops(sim)
  lu.assertNotNil(H.index(ops, "ec2.DescribeVpcs"), table.concat(ops, " "))
  lu.assertEquals(#H.ops(sim, { operation = "GetTopicAttributes" }), 1,
    "a client error is not retried")
end

os.exit(lu.LuaUnit.run())
