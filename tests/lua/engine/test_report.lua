-- What a run prints (report.lua, progress.lua, term.lua): the plan grouped by action with
-- aligned property diffs and the summary line; plain progress lines when stdout is not a
-- terminal (no colour codes); the live view on a pseudo-terminal (script(1)): redrawn in
-- place, colours unless NO_COLOR, lines within a narrow terminal's width, a bounded frame
-- rate; and the live view's frames built in-process with a fake clock.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local graph = require "support.engine_graph"
local term = require "fo.engine.term"

TestReport = {}

local F = H.fixture(TestReport)

fo.type("test:secretive", {
  doc = "a resource with a secret property (no cloud call)",
  schema = { properties = { name = { type = "string", required = true },
    password = { type = "string", secret = true } } },
  create = function(_, props) return "sec-" .. props.name, {} end,
  read = function(_, id, props) return props, {} end,
  update = function() return {} end,
  delete = function() end,
})

local function v(version) return function() graph.declare(version) end end

function TestReport:test_plan_groups_by_action_aligns_properties_and_sums_up()
  lu.assertEquals((F.run(v(1))), 0)
  local code, _, out = F.run(v(2), { mode = "plan" })
  lu.assertEquals(code, 0)
  -- groups: every create line before every update, replace and delete line
  local last = {}
  local order = {}
  for line in out:gmatch("[^\n]+") do
    local sym = line:match("^  (%S+)%s+test:")
    if sym then
      if not last[sym] then order[#order + 1] = sym end
      last[sym] = true
    end
  end
  lu.assertEquals(order, { "+", "~", "-/+", "-" })
  lu.assertStrContains(out, "Plan: 4 to add, 7 to change, 3 to replace, 3 to destroy. 9 unchanged.\n")
  lu.assertStrContains(out, "(forces replacement)")
  lu.assertStrContains(out, "(known after apply)")
  -- a create's properties: the "=" signs in one column
  local block = out:match("\n  %+   test:subnet a5[^\n]*\n(.-)\n  %S")
  lu.assertNotNil(block, out)
  local col
  for line in block:gmatch("[^\n]+") do
    local at = line:find(" = ", 1, true)
    lu.assertNotNil(at, line)
    col = col or at
    lu.assertEquals(at, col, block)
  end
  lu.assertNotStrContains(out, "\27[") -- not a terminal: no colours
end

function TestReport:test_plan_hides_sensitive_values()
  local code, doc, out = F.run(function()
    fo.resource("test:secretive", "db", { name = "db", password = "hunter2" })
  end, { mode = "plan" })
  lu.assertEquals(code, 0)
  lu.assertStrContains(out, "password = (sensitive)")
  lu.assertNotStrContains(out, "hunter2")
  lu.assertEquals(doc.plan.steps[1].changes[2], { path = "password", new = "(sensitive)",
    old = "(sensitive)" })
end

function TestReport:test_plain_progress_has_a_start_and_an_end_line_per_operation()
  local dir = H.dir()
  local path = dir .. "/r.lua"
  testlib.write(path, ("package.path = %q .. '/lua/?.lua;' .. package.path\n"
    .. "require 'support.engine_types'\nrequire('support.engine_graph').declare(1)\n")
    :format(testlib.tests_dir))
  local r = testlib.run_fo({ path }, { env = { FO_STATE_DIR = dir .. "/.fo" } })
  H.cleanup(dir)
  lu.assertEquals(r.code, 0, r.stderr)
  local starts = select(2, r.stdout:gsub("\n  %[%s*%d+%.%d%ds%] test:[%w_]+ [%w_]+: creating…", ""))
  local ends = select(2, r.stdout:gsub("\n  %[%s*%d+%.%d%ds%] test:[%w_]+ [%w_]+: created %S+ %(%d+%.%d%ds%)", ""))
  lu.assertEquals(starts, 22, r.stdout)
  lu.assertEquals(ends, 22, r.stdout)
  lu.assertNotStrContains(r.stdout, "\27[")
  lu.assertNotStrContains(r.stderr, "\27[")
end

-- Runs fo-run on a pseudo-terminal of `cols` x `rows`; returns its output (what the
-- terminal received) and the seconds it took.
local function on_terminal(cols, rows, env_extra)
  local dir = H.dir()
  local path = dir .. "/r.lua"
  testlib.write(path, ("package.path = %q .. '/lua/?.lua;' .. package.path\n"
    .. "require 'support.engine_types'\nrequire('support.engine_graph').declare(1)\n")
    :format(testlib.tests_dir))
  local env = { FO_STATE_DIR = dir .. "/.fo", FO_SIM_LATENCY_MS = "40", TERM = "xterm",
    NO_COLOR = false }
  for k, x in pairs(env_extra or {}) do env[k] = x end
  local t0 = fo.now()
  local r = fo.process.run{ argv = { "script", "-qec",
    ("stty cols %d rows %d; %s --parallel 4 %s"):format(cols, rows, testlib.fo_run, path),
    "/dev/null" }, env = env, timeout = 60 }
  local took = fo.now() - t0
  H.cleanup(dir)
  lu.assertEquals(r.code, 0, r.stdout .. r.stderr)
  return r.stdout, took
end

function TestReport:test_live_view_on_a_terminal_redraws_in_place_within_the_width()
  lu.skipIf(not testlib.has_command("script"), "script(1) (util-linux) is needed for a pseudo-terminal")
  local out, took = on_terminal(40, 8)
  lu.assertStrContains(out, "\27[32m") -- colours on a terminal
  lu.assertStrContains(out, "Apply complete: 22 created")
  local frames = select(2, out:gsub("\27%[%d+A\r\27%[J", ""))
  lu.assertTrue(frames >= 3, ("%d redraws"):format(frames))
  lu.assertTrue(frames <= took / 0.1 + 25, ("%d redraws in %.2fs: more than 10 a second")
    :format(frames, took))
  -- the view's lines: within 39 columns, at most rows - 2 operations shown
  local views = 0
  for frame in out:gmatch("\27%[J(.-)\27%[%d+A") do
    local lines = {}
    for line in frame:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
    for _, line in ipairs(lines) do
      local plain = term.strip(line):gsub("\r", "")
      -- the view's own lines (printed lines above it may wrap)
      local own = plain:find("in flight", 1, true) or plain:find("^  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]")
      if own then lu.assertTrue(term.width(plain) <= 39, ("a line of %d columns: %q"):format(term.width(plain), plain)) end
    end
    if frame:find("in flight", 1, true) then
      views = views + 1
      lu.assertStrContains(frame, "done")
      local ops = select(2, frame:gsub("creating", ""))
      lu.assertTrue(ops <= 6, frame)
    end
  end
  lu.assertTrue(views >= 1, "no live view seen")
  lu.assertStrMatches(out, ".*creating test:%w+ [%w_]+.-%d+%.%ds.*")
end

function TestReport:test_no_color_turns_colours_off_on_a_terminal()
  lu.skipIf(not testlib.has_command("script"), "script(1) (util-linux) is needed for a pseudo-terminal")
  local out = on_terminal(100, 30, { NO_COLOR = "1" })
  lu.assertNotStrContains(out, "\27[32m")
  lu.assertNotStrContains(out, "\27[1m")
  lu.assertStrContains(out, "\27[J") -- still the live view
  lu.assertStrContains(out, "Apply complete: 22 created")
end

-- The view in-process: a fake clock and terminal.
function TestReport:test_view_frames_are_rate_bounded_and_fit_the_width()
  local now, written = 0, {}
  local view = require("fo.engine.progress").new{
    write = function(s) written[#written + 1] = s end, size = function() return 41, 5 end,
    now = function() return now end, sleep = function() end, spawn = function() end,
  }
  view:begin(10)
  for i = 1, 6 do view:started(i, ("creating test:subnet a-very-long-name-%d"):format(i)) end
  lu.assertEquals(#written, 1) -- the first event draws; the others wait for the next tick
  now = 0.05
  view:finished(1, true, "  created 1\n")
  lu.assertEquals(#written, 1)
  now = 0.2
  view:draw()
  local frame = written[#written]
  lu.assertStrContains(frame, "\27[")
  lu.assertStrContains(frame, "  created 1\n")
  lu.assertStrContains(frame, "1/10 done, 5 in flight")
  lu.assertStrContains(frame, "… and")
  for line in frame:gsub("^\27%[%d+A\r\27%[J", ""):gmatch("([^\n]*)\n") do
    lu.assertTrue(term.width(line) <= 40, line)
  end
  view:close()
  lu.assertNotStrContains(written[#written], "in flight")
end

function TestReport:test_colours_follow_no_color_and_term()
  local env = function(t) return function(k) return t[k] end end
  lu.assertIsFalse(term.color_wanted(io.stdout, env{ NO_COLOR = "1" }))
  lu.assertIsFalse(term.color_wanted(io.stdout, env{ TERM = "dumb" }))
  lu.assertEquals(term.style(false).green("x"), "x")
  lu.assertEquals(term.style(true).green("x"), "\27[32mx\27[0m")
  lu.assertEquals(term.truncate("abcdef", 4), "abc…")
  lu.assertEquals(term.width("\27[1mé\27[0m"), 1)
end

os.exit(lu.LuaUnit.run())
