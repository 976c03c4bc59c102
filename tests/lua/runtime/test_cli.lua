-- fo-run's command line: options, exit codes, `arg` and `...`, error messages with
-- file:line and traceback, and module lookup from the build tree and after install.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local run = testlib.run_fo

function test_version_and_help_exit_zero()
  local r = run({ "--version" })
  lu.assertEquals(r.code, 0)
  lu.assertStrMatches(r.stdout, "fo%-run %d+%.%d+%.%d+ %(Lua 5%.4.*\n")
  r = run({ "--help" })
  lu.assertEquals(r.code, 0)
  lu.assertStrContains(r.stdout, "usage: fo-run")
  lu.assertStrContains(r.stdout, "exit codes")
  lu.assertStrContains(r.stdout, "`fo-run script.lua -- --plan` gives --plan to the script")
  lu.assertStrContains(r.stdout, "--serve-sim-public")
end

function test_usage_errors_exit_two()
  local r = run({})
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "nothing to run")
  r = run({ "--bogus" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option --bogus")
  r = run({ "-e" })
  lu.assertEquals(r.code, 2)
end

function test_unknown_option_suggests_the_nearest_exits_two_and_runs_nothing()
  local dir = testlib.tmpdir()
  local marker, script = dir .. "/ran", dir .. "/s.lua"
  testlib.write(script, ("io.open(%q, 'w'):close()\n"):format(marker))
  local e = ("io.open(%q, 'w'):close()"):format(marker)
  -- before FILE, after it, joined with a value; and a prefix of several options
  for _, case in ipairs({ { "--pln", { "-e", e, "--pln", script } },
      { "--pln", { "-e", e, script, "--pln" } }, { "--pln", { script, "--pln=x" } },
      { "--plna", { script, "x", "--plna" } } }) do
    local word, args = case[1], case[2]
    local r = run(args)
    lu.assertEquals(r.code, 2, table.concat(args, " "))
    lu.assertStrContains(r.stderr, "unknown option " .. word .. "; did you mean --plan?")
    lu.assertNotStrContains(r.stderr, "traceback")
    lu.assertIsFalse(fo.fs.exists(marker), "nothing runs: " .. table.concat(args, " "))
  end
  local r = run({ "--no", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option --no; did you mean --no-refresh or --no-rollback?")
  r = run({ "-stack", "x", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option -stack; did you mean --stack?")
  -- a prefix is not taken for the option (what runs is what is typed)
  r = run({ "--pla", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "unknown option --pla; did you mean --plan?")
  -- a bad value of a recipe option: exit 2 before -e runs
  r = run({ "-e", e, "--parallel", "0", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--parallel 0: expected a whole number from 1 to 1000")
  lu.assertIsFalse(fo.fs.exists(marker))
  -- a forgotten value is not filled with the next option
  r = run({ "--stack", "--plan", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--stack needs a value, got '--plan'")
  r = run({ "--plan=yes", script })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--plan=yes: --plan takes no value")
  lu.assertIsFalse(fo.fs.exists(marker))
  testlib.rmtree(dir)
end

function test_double_dash_ends_the_options_and_the_rest_is_the_script_s()
  local dir = testlib.tmpdir()
  local script = dir .. "/s.lua"
  testlib.write(script, "print(select('#', ...), ...)\nprint(arg[-1], arg[0], arg[1])\n")
  local r = run({ script, "a", "--", "--plan", "-e", "b" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "4\ta\t--plan\t-e\tb\n--\t" .. script .. "\ta\n")
  -- `--` before FILE: the next word is FILE even when it starts with '-'
  r = run({ "--", script, "--json" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "1\t--json\n--\t" .. script .. "\t--json\n")
  testlib.rmtree(dir)
end

function test_serve_sim_off_loopback_needs_the_public_flag()
  -- 192.0.2.1 (TEST-NET-1) is on no interface: with the flag, the listen fails, after the
  -- warning; without it, nothing is tried
  for _, addr in ipairs({ "192.0.2.1:0", "0.0.0.0:0" }) do
    local r = run({ "--serve-sim", addr }, { timeout = 20 })
    lu.assertEquals(r.code, 2, addr)
    lu.assertStrContains(r.stderr, "--serve-sim " .. addr .. ": other machines may reach this "
      .. "address, and the simulator's access key is public; add --serve-sim-public")
    lu.assertEquals(r.stdout, "")
  end
  local r = run({ "--serve-sim=192.0.2.1:0", "--serve-sim-public" }, { timeout = 20 })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "fo-run: warning: the simulator listens on 192.0.2.1:0, off "
    .. "loopback; its access key is public")
  lu.assertStrContains(r.stderr, "--serve-sim 192.0.2.1:0: fo.httpd.listen: cannot listen")
  lu.assertNotStrContains(r.stderr, "traceback")
  r = run({ "--serve-sim-public", "-e", "print(1)" })
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--serve-sim-public goes with --serve-sim")
end

-- lua-cjson comes from Debian, not from fo: without it, fo-run says which package to
-- install in one line and runs nothing (no Lua traceback from deep inside a run).
function test_missing_lua_cjson_names_the_package_and_runs_nothing()
  local dir = testlib.tmpdir()
  local script = dir .. "/s.lua"
  testlib.write(script, "print('ran')\n")
  -- Lua's search paths without the system's directories (fo adds its own in front).
  local env = { LUA_CPATH_5_4 = dir .. "/?.so", LUA_PATH_5_4 = dir .. "/?.lua" }
  for _, argv in ipairs{ { "-e", "print('ran')" }, { script }, { "--plan", script } } do
    local r = run(argv, { env = env })
    lu.assertEquals(r.code, 1, table.concat(argv, " "))
    lu.assertEquals(r.stdout, "")
    lu.assertEquals(r.stderr, "fo-run: cannot load the Lua module cjson: install the Debian "
      .. "package lua-cjson (apt-get install lua-cjson)\n")
  end
  testlib.rmtree(dir)
end

function test_e_runs_code_with_fo_loaded()
  local r = run({ "-e", "fo.sleep(0.01) print(type(fo.spawn), type(fo.http.request))" })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "function\tfunction\n")
end

function test_script_gets_arg_and_varargs_like_lua()
  local dir = testlib.tmpdir()
  local script = dir .. "/s.lua"
  testlib.write(script, "print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)\n")
  local r = run({ script, "one", "two" })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, script .. "\tone\ttwo\t2\t2\tone\ttwo\n")
end

-- (more arguments than a Lua stack holds unless grown: 70 crashed fo-run with SIGSEGV)
function test_a_script_gets_a_long_argument_list()
  local dir = testlib.tmpdir()
  local script = dir .. "/s.lua"
  testlib.write(script, "print(select('#', ...), #arg, arg[5000], (select(5000, ...)))\n")
  local argv = { script }
  for i = 1, 5000 do argv[#argv + 1] = tostring(i) end
  local r = run(argv)
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "5000\t5000\t5000\t5000\n")
end

function test_runtime_error_prints_file_line_and_traceback_and_exits_one()
  local dir = testlib.tmpdir()
  local script = dir .. "/bad.lua"
  testlib.write(script, "local function f()\n  fo.sleep(0)\n  error('it broke')\nend\nf()\n")
  local r = run({ script })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, script .. ":3: it broke")
  lu.assertStrContains(r.stderr, "stack traceback:")
  lu.assertStrContains(r.stderr, script .. ":5:")
end

function test_syntax_error_names_file_and_line()
  local dir = testlib.tmpdir()
  local script = dir .. "/syntax.lua"
  testlib.write(script, "local x = 1\nlocal = 2\n")
  local r = run({ script })
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, script .. ":2:")
end

function test_missing_file_is_an_error_naming_it()
  local r = run({ "/nonexistent/script.lua" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "/nonexistent/script.lua")
end

function test_structured_error_is_printed_with_its_tostring()
  local r = run({ "-e", "fo.http.request{url='http://127.0.0.1:1/'}" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "http connect error: http://127.0.0.1:1/")
  lu.assertStrContains(r.stderr, "(command line):1:")
end

function test_failed_task_nobody_joined_makes_the_run_fail()
  local r = run({ "-e", "fo.spawn(function() error('lost failure') end)" })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "nobody joined it")
  lu.assertStrContains(r.stderr, "lost failure")
end

function test_registered_secrets_are_masked_in_a_fatal_error()
  local code = "require('fo.log').add_secret('wJalrXUtnFEMIK7MDENG'); "
    .. "fo.spawn(function() error('key wJalrXUtnFEMIK7MDENG leaked') end); "
    .. "error('main saw wJalrXUtnFEMIK7MDENG')"
  local r = run({ "-e", code })
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(r.stderr, "main saw ****")
  lu.assertStrContains(r.stderr, "key **** leaked")
  lu.assertNotStrContains(r.stderr, "wJalrXUtnFEMIK7MDENG")
end

function test_script_from_stdin_dash()
  local r = fo.process.run{ argv = { "sh", "-c", "echo 'print(1+1)' | \"$0\" -", testlib.fo_run } }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "2\n")
end

function test_modules_are_found_after_cmake_install()
  local build = testlib.fo_run:match("^(.*)/fo%-run$")
  local prefix = testlib.tmpdir()
  local r = fo.process.run{ argv = { "cmake", "--install", build, "--prefix", prefix } }
  lu.assertEquals(r.code, 0, r.stderr)
  -- Run the installed binary with no hint of the source tree.
  r = fo.process.run{ argv = { prefix .. "/bin/fo-run", "-e",
    "print(package.searchpath('fo.task', package.path))" }, env = { FO_LUA_DIR = false } }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, prefix .. "/bin/../share/fo/lua/fo/task.lua")
  testlib.rmtree(prefix)
end

os.exit(lu.LuaUnit.run())
