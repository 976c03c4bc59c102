-- fo-run --serve-sim: the simulator served over HTTP, called by fo's clients with the
-- served URL as endpoint (real sockets, real SigV4 over Host 127.0.0.1:PORT), state in
-- --sim-file, one log line per request, a clean stop on SIGTERM.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local fake = require "support.fake_aws"
local simlib = require "fo.sim"

local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

-- Starts `fo-run --serve-sim` under a shell that sends SIGTERM once `stop` exists.
-- Returns url, task (its result: {code=, stdout=, stderr=}), stop file.
local function start(dir, extra)
  local port = fake.dead_port()
  local stop = dir .. "/stop"
  local script = [[port=$1; shift; "$0" --serve-sim 127.0.0.1:$port "$@" & pid=$!
while [ ! -e "$STOP" ]; do sleep 0.05; done
kill -TERM $pid; wait $pid; echo "exit=$?"]]
  local argv = { "sh", "-c", script, t.fo_run, tostring(port) }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  local task = fo.spawn(fo.process.run, { argv = argv, timeout = 60,
    env = { STOP = stop, FO_LOG = "info" } })
  local url = "http://127.0.0.1:" .. port
  local deadline = fo.now() + 20
  while fo.now() < deadline do
    if pcall(fo.http.request, { url = url .. "/", timeout = 1 }) then return url, task, stop end
    fo.sleep(0.05)
  end
  error("the served sim did not come up")
end

TestServe = {}

function TestServe.test_clients_call_the_served_sim_and_it_stops_on_sigterm()
  local dir = t.tmpdir()
  local file = dir .. "/trading.sim.json"
  local url, task, stop = start(dir, { "--sim-file", file })
  local sim = simlib.new{} -- only for its client factory: the requests go to `url`
  local id = sim:client("sts", { region = "eu-south-1", endpoint = url }):GetCallerIdentity{}
  lu.assertEquals(id.Account, "123456789012")
  local p = sim:client("ssm", { region = "us-east-1", endpoint = url }):GetParameter{ Name = AL2 }
  lu.assertStrMatches(p.Parameter.Value, "ami%-" .. ("%x"):rep(17))
  local bad = sim:client("sts", { region = "eu-south-1", endpoint = url, max_attempts = 1,
    access_key = simlib.DEFAULT_KEY.access_key, secret_key = "wrong" })
  local ok, e = pcall(bad.GetCallerIdentity, bad, {})
  lu.assertFalse(ok)
  lu.assertEquals(e.code, "SignatureDoesNotMatch")
  -- An unsigned request with fo.http.
  local r = fo.http.request{ method = "POST", url = url .. "/",
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
    body = "Action=GetCallerIdentity&Version=2011-06-15" }
  lu.assertEquals(r.status, 403)
  t.write(stop, "")
  local res = task:join()
  t.rmtree(dir)
  lu.assertStrContains(res.stdout, "fo sim listening on " .. url)
  lu.assertStrContains(res.stdout, "AWS_ACCESS_KEY_ID=AKIAFOSIMULATOR00001")
  lu.assertNotStrContains(res.stdout .. res.stderr, simlib.DEFAULT_KEY.secret_key)
  lu.assertStrContains(res.stdout, "fo sim stopped (SIGTERM)")
  lu.assertStrContains(res.stdout, "exit=0")
  lu.assertStrContains(res.stderr, "sim POST sts.GetCallerIdentity region=eu-south-1 status=200")
  lu.assertStrContains(res.stderr, "ssm.GetParameter region=us-east-1 status=200")
  lu.assertStrContains(res.stderr, "status=403 code=SignatureDoesNotMatch")
end

function TestServe.test_bad_command_lines()
  local r = t.run_fo{ "--sim-file", "x.json" }
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--sim-file goes with --serve-sim")
  r = t.run_fo{ "--serve-sim", "localhost" }
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--serve-sim wants IPV4:PORT")
  r = t.run_fo{ "--serve-sim", "127.0.0.256:0" }
  lu.assertEquals(r.code, 2)
  lu.assertStrContains(r.stderr, "--serve-sim wants IPV4:PORT")
  lu.assertNotStrContains(r.stderr, "traceback")
  r = t.run_fo{ "--serve-sim" }
  lu.assertEquals(r.code, 2)
end

os.exit(lu.LuaUnit.run())
