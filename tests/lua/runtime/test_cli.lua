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
