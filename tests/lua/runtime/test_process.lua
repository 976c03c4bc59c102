-- fo.process: child processes without a shell, on the loop: output, exit codes, signals,
-- environment, deadlines and spawn failures.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"

function test_captures_stdout_stderr_and_exit_code()
  local r = fo.process.run{ argv = { "sh", "-c", "printf out; printf err >&2; exit 3" } }
  lu.assertEquals(r.code, 3)
  lu.assertEquals(r.stdout, "out")
  lu.assertEquals(r.stderr, "err")
end

function test_arguments_are_not_interpreted_by_a_shell()
  local r = fo.process.run{ argv = { "printf", "%s|", "a b", "$HOME", ";x" } }
  lu.assertEquals(r.stdout, "a b|$HOME|;x|")
end

-- More arguments than the Lua stack's guaranteed slots (each stays on it until the spawn):
-- the stack grows first (it used to be written past its end: heap corruption, an abort).
function test_many_arguments()
  local argv = { "sh", "-c", 'echo "$#" "$300"', "sh" }
  for i = 1, 300 do argv[#argv + 1] = "arg" .. i end
  for _ = 1, 3 do
    local r = fo.process.run{ argv = argv }
    collectgarbage()
    lu.assertEquals(r.stdout, "300 arg300\n")
  end
end

function test_large_output_is_read_fully()
  local r = fo.process.run{ argv = { "head", "-c", "1000000", "/dev/zero" } }
  lu.assertEquals(#r.stdout, 1000000)
end

function test_environment_is_inherited_with_overrides_and_removals()
  local r = fo.process.run{ argv = { "sh", "-c", 'echo "$FO_X|${HOME:-unset}|$N"' },
                            env = { FO_X = "set", HOME = false, N = 3 } }
  lu.assertEquals(r.stdout, "set|unset|3\n")
end

function test_deadline_kills_the_child_and_raises_timeout()
  local started = fo.now()
  local ok, err = pcall(fo.process.run, { argv = { "sleep", "10" }, timeout = 0.2 })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "timeout")
  lu.assertTrue(fo.now() - started < 5)
end

function test_deadline_kills_what_the_child_started()
  -- The shell forks sleep, which inherits the pipes: killing only the shell would leave
  -- the call waiting for sleep to close them.
  local started = fo.now()
  local ok, err = pcall(fo.process.run, { argv = { "sh", "-c", "sleep 5; echo late" }, timeout = 0.3 })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "timeout")
  lu.assertTrue(fo.now() - started < 2, "waited " .. (fo.now() - started) .. " s")
end

function test_deadline_does_not_wait_for_a_descendant_that_left_the_group()
  local started = fo.now()
  local ok, err = pcall(fo.process.run,
                        { argv = { "sh", "-c", "setsid sleep 3 & sleep 5" }, timeout = 0.3 })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "timeout")
  lu.assertTrue(fo.now() - started < 2, "waited " .. (fo.now() - started) .. " s")
end

function test_killed_by_signal_reports_it()
  local r = fo.process.run{ argv = { "sh", "-c", "kill -TERM $$" } }
  lu.assertEquals(r.signal, 15)
  lu.assertEquals(r.code, 128 + 15)
end

function test_missing_program_raises_spawn_error()
  local ok, err = pcall(fo.process.run, { argv = { "/no/such/program" } })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "spawn")
  lu.assertStrContains(tostring(err), "/no/such/program")
end

function test_children_run_concurrently_with_other_tasks()
  local log = {}
  local t = fo.spawn(function()
    fo.process.run{ argv = { "sleep", "0.2" } }
    log[#log + 1] = "child done"
  end)
  fo.sleep(0.01)
  log[#log + 1] = "loop free"
  t:join()
  lu.assertEquals(log, { "loop free", "child done" })
end

function test_cpu_counts_this_process_work_in_user_and_kernel_time()
  local u0, s0 = fo.process.cpu()
  lu.assertTrue(u0 >= 0 and s0 >= 0)
  -- user time: a loop of Lua; kernel time: writes of a file, each fsync'd
  -- (0.2 s of this process's CPU, however busy the machine is; the clock is read every
  -- 100,000 turns: reading it is a system call, kernel time)
  local c0 = os.clock()
  local x = 0
  repeat
    for _ = 1, 100000 do x = x + 1 end
  until os.clock() - c0 >= 0.2
  local u1, s1 = fo.process.cpu()
  lu.assertTrue(u1 - u0 > 0.1, ("user time %.3f s for 0.2 s of CPU in a Lua loop")
    :format(u1 - u0))
  -- (the kernel may count its time by ticks: write until one lands, 5 s at most)
  local path, data, s2, u2 = os.tmpname(), string.rep("x", 1 << 20), s1, nil
  local t1 = fo.now()
  repeat
    fo.fs.write_atomic(path, data)
    u2, s2 = fo.process.cpu()
  until s2 > s1 or fo.now() - t1 > 5
  os.remove(path)
  lu.assertTrue(s2 > s1, "kernel time grows with file writes")
  lu.assertTrue(u2 >= u1)
  -- a child's time is its own
  fo.process.run{ argv = { "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done" } }
  local u3 = fo.process.cpu()
  lu.assertTrue(u3 - u2 < 0.05, ("the child's loop counted as ours: %.3f s"):format(u3 - u2))
end

function test_bad_arguments()
  lu.assertErrorMsgContains("argv must be a non-empty list", fo.process.run, { argv = {} })
  lu.assertErrorMsgContains("argv[2] must be a string", fo.process.run, { argv = { "a", 1 } })
end

os.exit(lu.LuaUnit.run())
