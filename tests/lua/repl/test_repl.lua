-- fo-run -i, driven as a user drives it: under a pseudo-terminal (completion, history,
-- multi-line input, printing, errors, Ctrl-C during a sleep, a slow call and a waiter,
-- Ctrl-D), and line by line from a pipe; plus the printer and completer as modules.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local testlib = require "support.testlib"
local pretty = require "fo.repl.pretty"
local complete = require "fo.repl.complete"
local repl = require "fo.repl"

local PYTHON = "/usr/bin/python3"
local DRIVER = testlib.tests_dir .. "/lua/support/pty_session.py"

local function has_python()
  return fo.fs.exists(PYTHON)
end

local SIM = 's = fo.sim.new{}; ec2 = s:client("ec2", { region = "eu-south-1" })\r'

-- Runs fo-run -i under a pty with `steps`; returns the driver's report.
local function session(steps, opts)
  opts = opts or {}
  local dir = testlib.tmpdir()
  local env = { FO_HISTORY = opts.history or (dir .. "/history"), TERM = "xterm",
    HOME = dir, FO_STATE_DIR = opts.state_dir }
  local spec = { argv = { testlib.fo_run, "-i" }, env = env, steps = steps }
  local path = dir .. "/script.json"
  testlib.write(path, cjson.encode(spec))
  local r = fo.process.run{ argv = { PYTHON, DRIVER, path }, timeout = 90 }
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stderr)
  local report = cjson.decode(r.stdout)
  if not report.ok then
    local step = steps[report.failed]
    lu.fail(("step %d (%s) failed; screen:\n%s"):format(report.failed, cjson.encode(step),
      report.screen))
  end
  return report
end

local function send(s) return { send = s } end
-- The driver matches Python regular expressions; patterns here are written as Lua's
-- (%. %+ %s ...) and translated.
local function regex(pattern)
  local classes = { s = "\\s", d = "\\d", w = "\\w", a = "[A-Za-z]" }
  return (pattern:gsub("%%(.)", function(c) return classes[c] or ("\\" .. c) end))
end
local function expect(pattern, timeout) return { expect = regex(pattern), timeout = timeout or 10 } end
local PROMPT = expect("fo> ")
local EXIT = { { send = "\4" }, { exit = true, timeout = 10 } }

local function steps(...)
  local out = {}
  for _, list in ipairs({ ... }) do
    if list.send or list.expect or list.exit or list.sleep then list = { list } end
    for _, s in ipairs(list) do out[#out + 1] = s end
  end
  return out
end

TestReplTerminal = {}

function TestReplTerminal:setUp()
  lu.skipIf(not has_python(), "python3 (its pty module) drives the terminal")
end

function TestReplTerminal:test_tab_completes_globals_fields_operations_and_members()
  local r = session(steps(PROMPT,
    send("aws.ec\t"), expect("aws%.ec2"), send("\21"), -- Ctrl-U: clear the line
    send("fo.sle\t"), expect("fo%.sleep"), send("\21"),
    send(SIM), PROMPT,
    send("ec2:CreateVpcP\t"), expect("ec2:CreateVpcPeeringConnection"), send("\21"),
    -- two TABs list the candidates when they share no longer prefix
    send("ec2:CreateV\t\t"), expect("ec2:CreateVpc%s"), send("\21"),
    send("ec2:CreateVpc{Cidr\t"), expect("ec2:CreateVpc{CidrBlock"), send("\21"),
    send("ec2:CreateVpc{TagSpecifications={{Ta\t"), expect("{{Tags"), send("\21"),
    send("my_session_value = 7\r"), PROMPT,
    send("my_sess\t"), expect("my_session_value"), send("\r"), expect("\n7\n"), PROMPT,
    EXIT))
  lu.assertEquals(r.code, 0)
end

function TestReplTerminal:test_history_is_kept_across_sessions()
  local dir = testlib.tmpdir()
  local hist = dir .. "/hist"
  session(steps(PROMPT, send("marker_from_first = 40 + 2\r"), PROMPT, EXIT), { history = hist })
  local text = testlib.read(hist)
  lu.assertStrContains(text or "", "marker_from_first")
  -- Up arrow brings the line back in a new session; running it works.
  local r = session(steps(PROMPT, send("\27[A"), expect("marker_from_first = 40 %+ 2"),
    send("\r"), PROMPT, send("marker_from_first\r"), expect("\n42\n"), PROMPT, EXIT),
    { history = hist })
  lu.assertEquals(r.code, 0)
  local st = fo.process.run{ argv = { "stat", "-c", "%a", hist } }
  lu.assertEquals(st.stdout, "600\n")
  testlib.rmtree(dir)
end

function TestReplTerminal:test_multi_line_input_continues_with_a_second_prompt()
  session(steps(PROMPT,
    send("function sq(x)\r"), expect("%.%.> "),
    send("  return x * x\r"), expect("%.%.> "),
    send("end\r"), PROMPT,
    send("sq(7), sq(8)\r"), expect("\n49\n64\n"), PROMPT,
    send("t = {\r"), expect("%.%.> "), send("a = 1 }\r"), PROMPT,
    send("local kept = t.a + 1\r"), PROMPT, send("kept\r"), expect("\n2\n"), PROMPT,
    EXIT))
end

function TestReplTerminal:test_a_call_on_the_simulator_is_pretty_printed()
  local r = session(steps(PROMPT, send(SIM), PROMPT,
    send("ec2:DescribeAvailabilityZones{}\r"),
    expect('AvailabilityZones = {\n    {\n      GroupName = "eu%-south%-1",'),
    expect('ZoneName = "eu%-south%-1a",'), expect("status = 200"), PROMPT,
    send("r = ec2:DescribeAvailabilityZones{}\r"), PROMPT,
    send("#r.AvailabilityZones\r"), expect("\n3\n"), PROMPT,
    send("big = {} for i = 1, 150 do big[i] = i end\r"), PROMPT,
    send("big\r"), expect("… 130 more"), PROMPT,
    EXIT))
  lu.assertEquals(r.code, 0)
end

function TestReplTerminal:test_errors_are_shown_and_the_session_goes_on()
  session(steps(PROMPT,
    send("error('boom')\r"), expect("error: stdin:1: boom"), PROMPT,
    send("1 +\r"), expect("%.%.> "), send(")\r"), expect("error: stdin:"), PROMPT,
    send(SIM), PROMPT,
    send("ec2:DescribeVpcs{VpcIds={'vpc-nope'}}\r"),
    expect("error: ec2%.DescribeVpcs: InvalidVpcID%.Malformed"),
    expect("fo%.aws%.Error {"), expect('code = "InvalidVpcID%.Malformed"'), PROMPT,
    send("ec2:NoSuchOp{}\r"), expect("no operation or method 'NoSuchOp'"), PROMPT,
    send("1 + 1\r"), expect("\n2\n"), PROMPT,
    EXIT))
end

function TestReplTerminal:test_ctrl_c_interrupts_a_sleep_a_busy_loop_and_a_slow_call()
  local r = session(steps(PROMPT,
    send("fo.sleep(30)\r"), { sleep = 0.3 }, send("\3"), expect("interrupted", 1), PROMPT,
    send("while true do end\r"), { sleep = 0.3 }, send("\3"), expect("interrupted", 1), PROMPT,
    -- an HTTP server in this very session that holds every request for 30 s
    send("srv = fo.httpd.listen{ port = 0, handler = function() fo.sleep(30) return { status = 200 } end }\r"),
    PROMPT,
    send("fo.http.request{ url = 'http://127.0.0.1:' .. srv.port .. '/' }\r"), { sleep = 0.3 },
    send("\3"), expect("interrupted", 1), PROMPT,
    send("'still here'\r"), expect('"still here"'), PROMPT,
    EXIT))
  -- leaving does not wait for the abandoned sleep and request
  lu.assertTrue(r.steps[#r.steps].seconds < 5, r.steps[#r.steps].seconds)
  lu.assertEquals(r.code, 0)
end

function TestReplTerminal:test_ctrl_c_interrupts_a_waiter_on_a_served_simulator()
  session(steps(PROMPT,
    send("srv, s = require('fo.sim.server').serve{ port = 0 }\r"), PROMPT,
    send("ec2 = s:client('ec2', { region = 'eu-south-1', endpoint = 'http://127.0.0.1:' .. srv.port })\r"),
    PROMPT,
    -- DescribeInstances answers InvalidInstanceID.NotFound: the waiter sleeps 5 s and retries
    send("ec2:wait('InstanceExists', { InstanceIds = { 'i-0123456789abcdef0' } })\r"),
    { sleep = 1 }, send("\3"), expect("interrupted", 1), PROMPT,
    send("2 * 21\r"), expect("\n42\n"), PROMPT,
    EXIT))
end

function TestReplTerminal:test_background_tasks_run_while_the_prompt_waits()
  session(steps(PROMPT,
    send("fo.spawn(function() fo.sleep(0.3) print('from the background') end)\r"), PROMPT,
    expect("from the background", 3),
    EXIT))
end

function TestReplTerminal:test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_leaves_with_0()
  local r = session(steps(PROMPT,
    send("this is not lua"), send("\3"), PROMPT,
    send("1 + 2\r"), expect("\n3\n"), PROMPT,
    send("if true then\r"), expect("%.%.> "), send("\3"), PROMPT, -- drops the pending chunk
    send("4\r"), expect("\n4\n"), PROMPT,
    EXIT))
  lu.assertEquals(r.code, 0)
end

function TestReplTerminal:test_help_and_operation_shapes()
  session(steps(PROMPT,
    send("help()\r"), expect("Ctrl%-C interrupts"), PROMPT,
    send(SIM), PROMPT,
    send("help(ec2, 'CreateVpc')\r"), expect("input CreateVpcRequest:"), expect("CidrBlock"),
    PROMPT,
    send("ec2:help('CreateSubnet')\r"), expect("VpcId %(required%): string"), PROMPT,
    EXIT))
end

function TestReplTerminal:test_stack_state_graph_and_simulator()
  local dir = testlib.tmpdir()
  local recipe = dir .. "/r.lua"
  testlib.write(recipe, [[
require "fo.aws.resources"
local R = { region = "eu-south-1" }
local vpc = fo.resource("aws:ec2:vpc", "main", { cidr_block = "10.8.0.0/16" }, R)
fo.resource("aws:ec2:subnet", "a", { vpc_id = vpc.id, cidr_block = "10.8.1.0/24",
  availability_zone = "eu-south-1a" }, R)
fo.output("vpc_id", vpc.id)
]])
  local applied = testlib.run_fo({ "--stack", "dev", "--state-dir", dir .. "/.fo", "--yes", recipe })
  lu.assertEquals(applied.code, 0, applied.stderr .. applied.stdout)
  session(steps(PROMPT,
    send("st = stack('dev')\r"), PROMPT,
    send("st\r"), expect("resources = {"), PROMPT,
    send("st.outputs.vpc_id\r"), expect('"vpc%-'), PROMPT,
    send("st.graph['dev::aws:ec2:subnet::a'].depends_on\r"),
    expect('{ "dev::aws:ec2:vpc::main" }'), PROMPT,
    send("st.outputs.x = 1\r"), expect("read%-only"), PROMPT,
    send(".stack dev\r"), expect('target = "sim"'), PROMPT,
    send("e = sim():client('ec2', { region = 'eu-south-1' })\r"), PROMPT,
    send("e:DescribeVpcs{ VpcIds = { st.outputs.vpc_id } }.Vpcs[1].CidrBlock\r"),
    expect('"10%.8%.0%.0/16"'), PROMPT,
    EXIT), { state_dir = dir .. "/.fo" })
  testlib.rmtree(dir)
end

TestReplPipe = {}

-- `fo-run -i` with stdin from a pipe: no prompts, no editing; one chunk after another.
function TestReplPipe:test_lines_from_a_pipe_run_one_by_one()
  local input = table.concat({
    "x = 20",
    "local y = 22",
    "x + y",
    "function f(a)",
    "  return a, a * 2",
    "end",
    "f(5)",
    "error('bad')",
    "{ b = 1, a = { 1, 2 } }",
    "fo.sleep(0.01) return 'slept'",
    "",
  }, "\n")
  local r = fo.process.run{ argv = { "sh", "-c", 'printf "%s" "$0" | "$1" -i', input,
    testlib.fo_run }, timeout = 30 }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, '42\n5\n10\n{ a = { 1, 2 }, b = 1 }\n"slept"\n')
  lu.assertStrContains(r.stderr, "error: stdin:1: bad")
end

function TestReplPipe:test_an_unfinished_chunk_at_the_end_is_reported()
  local r = fo.process.run{ argv = { "sh", "-c", 'printf "1\\nfor i = 1, 2 do\\n" | "$0" -i',
    testlib.fo_run }, timeout = 30 }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(r.stdout, "1\n")
  lu.assertStrContains(r.stderr, "unfinished")
end

function TestReplPipe:test_no_arguments_without_a_terminal_is_still_a_usage_error()
  local r = testlib.run_fo({})
  lu.assertEquals(r.code, 2)
end

TestReplModules = {}

function TestReplModules:test_pretty_sorts_indents_elides_and_marks_cycles()
  local t = { 3, 4, z = "a\nb", a = { deep = true }, ["not id"] = 1 }
  t.me = t
  local s = pretty.format(t)
  lu.assertEquals(s, table.concat({
    "{",
    "  3,",
    "  4,",
    "  a = { deep = true },",
    "  me = <cycle: " .. tostring(t) .. ">,",
    '  ["not id"] = 1,',
    '  z = "a\\nb",',
    "}" }, "\n"))
  local list = {}
  for i = 1, 120 do list[i] = { id = i } end
  s = pretty.format(list)
  lu.assertStrContains(s, "{ id = 20 },\n  … 100 more\n}")
  lu.assertNotStrContains(s, "id = 21")
  lu.assertEquals(pretty.format_all(3, 1, "two", nil), '1\n"two"\nnil')
  lu.assertEquals(pretty.format(2.0), "2.0")
  local e = aws.Error.new{ service = "ec2", operation = "X", code = "Bad", status = 400 }
  lu.assertStrContains(pretty.format(e), 'fo.aws.Error { code = "Bad", operation = "X"')
end

function TestReplModules:test_completion_names_from_the_model_and_the_session()
  local env = repl.environment()
  env.ec2 = fo.sim.new{}:client("ec2", { region = "eu-south-1" })
  env.mine = { alpha = 1, beta = 2 }
  local c = complete.completer(env)
  lu.assertEquals(c("aws.ec", "aws.ec"), { "aws.ec2" })
  lu.assertEquals(c("x = mine.a", "mine.a"), { "mine.alpha" })
  lu.assertEquals(c("mi", "mi"), { "mine" })
  lu.assertEquals(c("ec2:CreateVpcPe", "ec2:CreateVpcPe"), { "ec2:CreateVpcPeeringConnection" })
  lu.assertEquals(c("ec2:CreateVpc{Cidr", "Cidr"), { "CidrBlock" })
  lu.assertEquals(c("ec2:CreateVpc({ Dry", "Dry"), { "DryRun" })
  lu.assertEquals(c("ec2:DescribeVpcs{Filters={{Na", "Na"), { "Name" })
  lu.assertEquals(c("ec2:CreateVpc{CidrBlock='x', Amazon", "Amazon"),
    { "AmazonProvidedIpv6CidrBlock" })
  lu.assertEquals(c("ec2:CreateVpc{CidrBlock='Cid", "Cid"), {}) -- inside a string
  lu.assertItemsEquals(c("fo.si", "fo.si"), { "fo.signal", "fo.sigv4", "fo.sim" })
end

function TestReplModules:test_compile_expression_statement_incomplete_and_locals()
  local env = repl.environment()
  lu.assertEquals(repl.compile("1 + 1", env)(), 2)
  lu.assertNil(repl.compile("x = 5", env)())
  lu.assertEquals(env.x, 5)
  local f, why = repl.compile("for i = 1, 2 do", env)
  lu.assertNil(f)
  lu.assertEquals(why, "incomplete")
  f, why = repl.compile("1 +* 2", env)
  lu.assertNil(f)
  lu.assertStrContains(why, "unexpected symbol")
  repl.compile("local a, b <const> = 1, 2", env)()
  lu.assertEquals({ env.a, env.b }, { 1, 2 })
  repl.compile("local function g() return 9 end", env)()
  lu.assertEquals(env.g(), 9)
end

function TestReplModules:test_history_path()
  lu.assertEquals(repl.history_path(function(k) return ({ FO_HISTORY = "/x/h" })[k] end), "/x/h")
  lu.assertEquals(repl.history_path(function(k) return ({ HOME = "/home/u" })[k] end),
    "/home/u/.fo_history")
end

os.exit(lu.LuaUnit.run())
