-- Tasks on the event loop: spawn/join, error propagation with tracebacks, fo.all, timers
-- in deadline order, interleaving, and misuse reported clearly.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"

function test_join_returns_all_results()
  local t = fo.spawn(function(a, b) fo.sleep(0.01); return a + b, "x", nil, 4 end, 1, 2)
  local a, b, c, d = t:join()
  lu.assertEquals({ a, b, c, d }, { 3, "x", nil, 4 })
  lu.assertEquals(select("#", t:join()), 4)
end

function test_join_reraises_string_error_with_its_traceback()
  local t = fo.spawn(function() local x = nil; return x.field end)
  local ok, err = pcall(t.join, t)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "test_task.lua:14:")
  lu.assertStrContains(err, "attempt to index")
  lu.assertStrContains(err, "stack traceback:")
end

function test_join_reraises_table_error_as_the_same_value()
  local e = { code = "Boom" }
  local t = fo.spawn(function() error(e) end)
  local ok, err = pcall(t.join, t)
  lu.assertFalse(ok)
  lu.assertIs(err, e)
  lu.assertStrContains(err.traceback, "stack traceback:")
end

function test_all_waits_for_every_task_then_raises_the_first_failure()
  local finished = {}
  local tasks = {
    fo.spawn(function() fo.sleep(0.02); finished[#finished + 1] = "slow" end),
    fo.spawn(function() error("first failure") end),
    fo.spawn(function() fo.sleep(0.01); finished[#finished + 1] = "fast" end),
  }
  local ok, err = pcall(fo.all, tasks)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "first failure")
  lu.assertEquals(finished, { "fast", "slow" })
end

function test_timers_fire_in_deadline_order_not_start_order()
  local order = {}
  local tasks = {}
  for _, d in ipairs({ 0.05, 0.01, 0.03, 0.0, 0.02, 0.04 }) do
    tasks[#tasks + 1] = fo.spawn(function() fo.sleep(d); order[#order + 1] = d end)
  end
  fo.all(tasks)
  lu.assertEquals(order, { 0.0, 0.01, 0.02, 0.03, 0.04, 0.05 })
end

function test_tasks_interleave_while_one_sleeps()
  local log = {}
  local a = fo.spawn(function()
    log[#log + 1] = "a start"; fo.sleep(0.05); log[#log + 1] = "a end"
  end)
  local b = fo.spawn(function()
    log[#log + 1] = "b start"; fo.sleep(0.01); log[#log + 1] = "b end"
  end)
  fo.all({ a, b })
  lu.assertEquals(log, { "a start", "b start", "b end", "a end" })
end

function test_join_of_a_finished_task_does_not_wait()
  local t = fo.spawn(function() return 7 end)
  fo.sleep(0)
  lu.assertTrue(t.done)
  lu.assertEquals(t:join(), 7)
end

function test_many_joiners_of_one_task_all_wake()
  local t = fo.spawn(function() fo.sleep(0.01); return "v" end)
  local joiners = {}
  for i = 1, 10 do joiners[i] = fo.spawn(function() return t:join() end) end
  local r = fo.all(joiners)
  for i = 1, 10 do lu.assertEquals(r[i], "v") end
end

function test_direct_coroutine_yield_in_a_task_is_reported()
  local t = fo.spawn(function() coroutine.yield(1) end)
  -- Nobody could ever resume it: the task fails instead of hanging its joiners.
  local ok, err = pcall(t.join, t)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "coroutine.yield() was called directly")
end

function test_sleep_rejects_bad_arguments()
  lu.assertErrorMsgContains("non-negative", fo.sleep, -1)
  lu.assertErrorMsgContains("number expected", fo.sleep, "x")
end

function test_spawn_rejects_non_functions()
  lu.assertErrorMsgContains("expected a function", fo.spawn, 42)
end

function test_sleep_in_a_plain_coroutine_is_refused()
  local co = coroutine.wrap(function() fo.sleep(0) end)
  lu.assertErrorMsgContains("must run in a task of the fo event loop", co)
end

function test_user_coroutines_still_work_inside_tasks()
  local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
  lu.assertEquals({ gen(), gen(), gen() }, { 1, 2, 3 })
end

-- core.wake_in_turn: the task woken resumes in this turn of the loop, once the others ready
-- in it have run and before the loop polls; core.wake queues it for the next turn, after
-- what was queued before it (here a task started just before the wake).
function test_wake_in_turn_resumes_the_task_in_this_turn()
  local core = require "fo.core"
  for _, how in ipairs({ "wake", "wake_in_turn" }) do
    local order, parked, started = {}, nil, nil
    local woken = fo.spawn(function()
      parked = coroutine.running()
      core.suspend()
      order[#order + 1] = "woken"
    end)
    local waker = fo.spawn(function()
      order[#order + 1] = "waker"
      started = fo.spawn(function() order[#order + 1] = "started" end)
      lu.assertTrue(core[how](parked))
    end)
    fo.all{ woken, waker }
    started:join()
    lu.assertEquals(order, how == "wake" and { "waker", "started", "woken" }
      or { "waker", "woken", "started" }, how)
  end
end

-- Two tasks waking each other in turn, again and again, do not keep the loop from polling:
-- a timer due now still fires.
function test_tasks_waking_each_other_in_turn_let_the_loop_poll()
  local core = require "fo.core"
  local fired, done, wakes = false, false, 0
  local a, b
  local timer = fo.spawn(function() fo.sleep(0); fired = true end)
  local ta = fo.spawn(function()
    a = coroutine.running()
    while true do
      core.suspend()
      wakes = wakes + 1
      if fired then done = true end
      core.wake_in_turn(b)
      if done then return end
    end
  end)
  local tb = fo.spawn(function()
    b = coroutine.running()
    while true do
      core.wake_in_turn(a)
      if done then return end
      core.suspend()
    end
  end)
  fo.all{ timer, ta, tb }
  lu.assertTrue(fired)
  lu.assertTrue(wakes < 100, "woken " .. wakes .. " times before the timer fired")
end

os.exit(lu.LuaUnit.run())
