-- The failover drill with traffic, capacity and sessions (lua/fo/drill/traffic.lua) on
-- recipes/trading.lua applied to the simulator: the figures it promises, measured by the
-- drill itself (client-visible recovery ≤ detection + TTL, the standby at the primary's
-- capacity within alarm + boot + registration, sessions lost ≤ writes inside the lag), its
-- picture (well-formed SVG with the drill's own values) and `fo-run --drill --json --plot`.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local testing = require "fo.testing"
local xml = require "fo.xml"
local cjson = require "cjson"

local ROOT = testlib.tests_dir .. "/.."
local RECIPE = ROOT .. "/recipes/trading.lua"

local stack
local function applied()
  if not stack then
    stack = testing.apply(RECIPE, { seed = "drill-traffic", stack = "drt",
      config = { environmentSuffix = "drt" } })
    stack:check()
  end
  return stack
end

-- The elements named `name` anywhere under tree node `n`.
local function find_all(n, name, out)
  out = out or {}
  if type(n) ~= "table" then return out end
  if n.name == name then out[#out + 1] = n end
  for _, c in ipairs(n) do find_all(c, name, out) end
  return out
end

local function approx(a, b) return math.abs(a - b) < 0.051 end

TestDrillTraffic = {}

function TestDrillTraffic:test_1_the_drill_measures_recovery_capacity_and_sessions()
  local res, lines = applied():drill({ traffic = { replication_lag = "2" } })
  local text = table.concat(lines, "\n")
  lu.assertIsTrue(res.ok, table.concat(res.problems, "; ") .. "\n" .. text)
  local tr = res.traffic
  lu.assertEquals(tr.clients, 1000)
  lu.assertEquals(tr.ttl, 60) -- alias to an ALB: the ELB's TTL
  -- client-visible recovery ≤ detection + TTL (every client honouring the TTL)
  lu.assertTrue(tr.recovery.max <= res.detection + tr.ttl,
    ("slowest %s, detection %s"):format(tr.recovery.max, res.detection))
  lu.assertTrue(tr.recovery.p50 >= res.dns_switch, "nobody recovers before the switch")
  lu.assertTrue(tr.recovery.p99 <= tr.recovery.max)
  -- the recipe's standby (1 instance) takes 1000 req/s at 900 per instance: it scales out
  -- to the primary's 2 on its target tracking policy (target 60%, read from the sim)
  local c = tr.capacity
  lu.assertEquals(c.primary, 2)
  lu.assertEquals(c.standby_initial, 1)
  lu.assertEquals(c.target, 60)
  -- the target group's healthy threshold 2 × interval 10 s
  lu.assertEquals(c.register, 20)
  lu.assertNotNil(c.restored, text)
  lu.assertTrue(c.standby_final >= 2)
  lu.assertTrue(c.restored - c.loaded <= c.bound, ("took %s, bound %s"):format(c.restored - c.loaded, c.bound))
  lu.assertTrue(c.restored - c.loaded >= 3 * 60 - 60 + c.boot + c.register)
  lu.assertTrue(tr.requests.shed > 0, "the lone standby instance shed load before the scale-out")
  lu.assertTrue(tr.requests.timed_out > 0, "requests to the failed region timed out")
  -- sessions: 1000 clients writing every 30 s, 2 s of lag
  -- the sessions were written to the stack's global table in the primary and read from
  -- the standby's replica (the simulator's DynamoDB with a 2 s replication lag)
  local s = tr.sessions
  lu.assertEquals(s.table, "trading-sessions-drt")
  lu.assertEquals(s.read, 1000)
  lu.assertTrue(s.lost <= s.writes_in_window)
  -- every client read its session from the standby: each write of the window is lost
  lu.assertEquals(s.lost, s.writes_in_window)
  -- one write every 30 s per client: about 1000 × 2 / 30
  lu.assertTrue(s.lost >= 40 and s.lost <= 95, "lost " .. s.lost)
  -- after the failback the primary's writes have reached the replica
  local ddb = applied().sim:client("dynamodb", { region = "eu-central-1" })
  local got = ddb:Scan{ TableName = "trading-sessions-drt", Select = "COUNT" }
  lu.assertEquals(got.Count, 1000)
  -- the timeline and summary show the decisions and figures
  lu.assertStrMatches(text, ".*t%+%s*%d+s  standby scales out 1 → 2 %(CPU 100%% of 1 counted instance, target 60%%%).*")
  lu.assertStrContains(text, "standby at the primary's capacity")
  -- the simulator's metrics plane published the clients' CPU: the standby group's own
  -- target tracking alarm (Auto Scaling's AlarmHigh in the sim) went to ALARM at the
  -- second the model scaled out
  local scale, alarm
  for _, e in ipairs(tr.events) do
    if e.kind == "scale_out" and not scale then scale = e end
    if e.kind == "sim_alarm" and e.region == "standby" and e.text:find("→ ALARM$") and not alarm then alarm = e end
  end
  lu.assertNotNil(alarm, text)
  lu.assertStrMatches(alarm.text, "CloudWatch alarm TargetTracking%-asg%-standby%-drt%-AlarmHigh%-.*: OK → ALARM")
  lu.assertEquals(alarm.t, scale.t)
  local summary = table.concat(require("fo.drill").summary(res), "\n")
  lu.assertStrContains(summary, ("Client-visible recovery over %d clients (TTL 60s): p50 %ds, p99 %ds")
    :format(tr.recovery.n, math.floor(tr.recovery.p50 + 0.5), math.floor(tr.recovery.p99 + 0.5)))
  lu.assertStrContains(summary, ("Sessions lost: %d of %d read from the standby"):format(s.lost, s.read))
  lu.assertStrContains(summary, "Capacity restored: the standby serves with 2 instances (the primary's 2)")

  -- the picture: well-formed XML (libexpat through fo.xml), the panels, and markers at the
  -- drill's own times
  local doc = xml.decode(require("fo.drill.plot").svg(res))
  lu.assertEquals(doc.name, "svg")
  local titles = {}
  for _, g in ipairs(find_all(doc, "g")) do
    if g.attr and g.attr["data-title"] then titles[#titles + 1] = g.attr["data-title"] end
  end
  lu.assertEquals(titles, { "Health as Route 53 sees each record", "DNS answer for the app name",
    "Requests per second", "Instances serving (in service, healthy in the target group)",
    "CPU per instance (target tracking)" })
  local marks = {}
  for _, l in ipairs(find_all(doc, "line")) do
    if l.attr and l.attr["data-t"] then
      marks[#marks + 1] = { t = tonumber(l.attr["data-t"]), label = l[1] and l[1][1] }
    end
  end
  local function marked(t, label)
    for _, m in ipairs(marks) do
      if approx(m.t, t) and m.label:find(label, 1, true) then return true end
    end
    return false
  end
  lu.assertTrue(marked(0, "outage starts"))
  lu.assertTrue(marked(res.detection, "detection"))
  lu.assertTrue(marked(res.dns_switch, "DNS answers the standby"))
  lu.assertTrue(marked(c.restored, "standby at the primary's capacity"))
  for _, e in ipairs(tr.events) do
    if e.kind == "scale_out" then lu.assertTrue(marked(e.t, "scales out"), "scale-out at " .. e.t) end
    if e.kind == "recovered" then lu.assertTrue(marked(e.t, "outage ends")) end
  end
  -- the DNS band turns to the standby where the drill saw the switch
  local switched
  for _, r in ipairs(find_all(doc, "rect")) do
    local title = r[1] and r[1][1]
    if title and title:find("^answer: standby ALB from ") then switched = title end
  end
  lu.assertNotNil(switched)
  local from = tonumber(switched:match("from ([%d%.]+)s"))
  lu.assertTrue(math.abs(from - res.dns_switch) <= 1, switched)
end

function TestDrillTraffic:test_2_a_light_load_needs_no_scale_out_and_passes()
  local res, lines = applied():drill({ traffic = { clients = "300" } })
  lu.assertIsTrue(res.ok, table.concat(res.problems, "; ") .. "\n" .. table.concat(lines, "\n"))
  lu.assertTrue(res.traffic.capacity.enough)
  lu.assertEquals(res.traffic.capacity.steps, 0)
  lu.assertEquals(res.traffic.requests.shed, 0)
  lu.assertStrContains(table.concat(require("fo.drill").summary(res), "\n"),
    "no scale-out needed")
end

-- The command a user types: JSON after the apply's events, the picture in a file.
function TestDrillTraffic:test_3_fo_run_drill_json_and_plot()
  local dir = testlib.tmpdir()
  local svg = dir .. "/drill.svg"
  local r = testlib.run_fo({ "--drill", "--json", "--plot", svg, "--traffic", "clients=1500",
    "--state-dir", dir, "--config", "environmentSuffix=cliplot", RECIPE }, { timeout = 110 })
  local f = io.open(svg)
  local picture = f and f:read("a")
  if f then f:close() end
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stdout:sub(-3000) .. r.stderr)
  local last
  for line in r.stdout:gmatch("[^\n]+") do last = line end
  local ev = cjson.decode(last)
  lu.assertEquals(ev.event, "drill")
  lu.assertEquals(ev.v, 1)
  lu.assertIsTrue(ev.ok)
  lu.assertStrContains(table.concat(ev.summary, "\n"), "Capacity restored: the standby serves with 3 instances")
  local doc = ev.result
  lu.assertEquals(doc.traffic.clients, 1500)
  -- 1500 req/s need 3 primary instances under 60%: the standby follows in two steps
  lu.assertEquals(doc.traffic.capacity.primary, 3)
  lu.assertEquals(doc.traffic.capacity.sized, { from = 2, to = 3 })
  lu.assertEquals(doc.traffic.capacity.standby_final, 3)
  lu.assertEquals(doc.traffic.capacity.steps, 2)
  lu.assertTrue(doc.traffic.capacity.restored - doc.traffic.capacity.loaded <= doc.traffic.capacity.bound)
  lu.assertTrue(doc.traffic.recovery.max <= doc.detection + doc.traffic.ttl)
  lu.assertIsNil(doc.traffic.series)
  -- every line, the apply's events and the drill's, validates against the event schema
  local events = require "support.json_events"
  lu.assertEquals(events.problems(events.parse(r.stdout)), {})
  lu.assertNotNil(picture)
  lu.assertEquals(xml.decode(picture).name, "svg")
end

function TestDrillTraffic:test_4_usage_mistakes_are_named()
  for _, case in ipairs{
    { { "--plot", "x.svg" }, "--plot goes with --drill" },
    { { "--traffic", "clients=5" }, "--traffic goes with --drill" },
    { { "--drill", "--traffic", "clients" }, "--traffic clients: expected knob=value" },
    { { "--drill", "--traffic", "cpu=5" }, "--traffic cpu: unknown knob (use one of clients" },
  } do
    local args = {}
    for _, a in ipairs(case[1]) do args[#args + 1] = a end
    args[#args + 1] = RECIPE
    local r = testlib.run_fo(args)
    lu.assertEquals(r.code, 2, table.concat(case[1], " "))
    lu.assertStrContains(r.stderr, case[2])
    lu.assertNotStrContains(r.stderr, "traceback")
  end
end

local code = lu.LuaUnit.run("-v", table.unpack(arg or {}))
if stack then stack:close() end
os.exit(code)
