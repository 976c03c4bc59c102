-- fo-run --serve-sim: the simulator served over HTTP, called by fo's clients with the
-- served URL as endpoint (real sockets, real SigV4 over Host 127.0.0.1:PORT), state in
-- --sim-file, one log line per request, a clean stop on SIGTERM.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local simlib = require "fo.sim"

local AL2 = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"

-- Starts `fo-run --serve-sim` (testlib.serve_sim). Returns url, task (its result:
-- {code=, stdout=, stderr=}), stop file.
local function start(dir, extra)
  local s = t.serve_sim(dir, extra, 60)
  return s.url, s.task, s.stop
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

-- raw_http.py (a bare-socket client) against `url`: returns the answer's status line and
-- body ("timeout" when none came).
local RAW = t.tests_dir .. "/lua/support/raw_http.py"
local function raw(url, mode, n, dir, headers)
  local argv = { "/usr/bin/python3", RAW, url:match(":(%d+)$"), mode, tostring(n), dir }
  for _, h in ipairs(headers or {}) do argv[#argv + 1] = h end
  local r = fo.process.run{ argv = argv, timeout = 120 }
  lu.assertEquals(r.code, 0, r.stderr)
  return r.stdout:match("^([^\n]*)\n(.*)$")
end

-- An Authorization header naming `service` in its scope (what the body cap is chosen by;
-- the signature is never checked: the body is refused before).
local function scoped(service)
  return ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAFOSIMULATOR00001/20240101/eu-south-1/"
    .. "%s/aws4_request, SignedHeaders=host;x-amz-date, Signature=%s"):format(service, ("0"):rep(64))
end

local MiB = 1024 * 1024

function TestServe.test_bodies_over_the_service_cap_are_refused_before_they_are_read()
  local dir = t.tmpdir()
  local url, task, stop = start(dir)
  -- Content-Length over SNS's 1 MiB: 413 while not a byte of the body was sent
  local status, body = raw(url, "announce", 2 * MiB, dir, { scoped("sns"),
    "Content-Type: application/x-www-form-urlencoded" })
  lu.assertStrContains(status, "HTTP/1.1 413 ")
  lu.assertStrContains(body, "<Code>RequestEntityTooLarge</Code>")
  lu.assertStrContains(body, "the request body is 2097152 bytes; sns accepts at most 1048576")
  -- DynamoDB's cap is 16 MB, in its JSON error document
  status, body = raw(url, "announce", 17 * MiB, dir, { "X-Amz-Target: DynamoDB_20120810.BatchWriteItem",
    "Content-Type: application/x-amz-json-1.0" })
  lu.assertStrContains(status, "HTTP/1.1 413 ")
  lu.assertStrContains(require("cjson").decode(body).__type, "RequestEntityTooLargeException")
  -- no Content-Length (chunked): refused once the stream passes the cap, the rest thrown away
  status, body = raw(url, "chunked", 3 * MiB, dir, { scoped("sts") })
  lu.assertStrContains(status, "HTTP/1.1 413 ")
  lu.assertStrContains(body, "the request body is more than 1048576 bytes; sts accepts at most 1048576")
  -- and the sim goes on answering
  local sim = simlib.new{}
  lu.assertEquals(sim:client("sts", { region = "eu-south-1", endpoint = url }):GetCallerIdentity{}.Account,
    "123456789012")
  t.write(stop, "")
  local res = task:join()
  t.rmtree(dir)
  lu.assertStrContains(res.stderr, "sim POST sns.- region=eu-south-1 status=413 code=RequestEntityTooLarge")
  lu.assertStrContains(res.stderr, "sim POST dynamodb.- region=- status=413 code=RequestEntityTooLargeException")
end

function TestServe.test_clients_trickling_their_bodies_do_not_hold_up_the_others()
  local dir = t.tmpdir()
  local url, task, stop = start(dir)
  local slow = {}
  for i = 1, 3 do
    local d = dir .. "/slow" .. i
    assert(fo.fs.mkdir_p(d))
    slow[i] = { dir = d, task = fo.spawn(raw, url, "trickle", 64, d) }
  end
  for _, c in ipairs(slow) do
    while not fo.fs.exists(c.dir .. "/holding") do fo.sleep(0.02) end
  end
  -- each slow client holds its connection, mid-body; the others are answered meanwhile
  local sim = simlib.new{}
  local sts = sim:client("sts", { region = "eu-south-1", endpoint = url })
  for _ = 1, 20 do lu.assertEquals(sts:GetCallerIdentity{}.Account, "123456789012") end
  for _, c in ipairs(slow) do
    lu.assertFalse(c.task.done, "a slow client finished before it was released")
    t.write(c.dir .. "/release", "")
  end
  for _, c in ipairs(slow) do
    local status = c.task:join()
    lu.assertEquals(status, "HTTP/1.1 403 Forbidden") -- unsigned: MissingAuthenticationToken
  end
  t.write(stop, "")
  local res = task:join()
  t.rmtree(dir)
  local _, answered = res.stderr:gsub("sts%.GetCallerIdentity region=eu%-south%-1 status=200", "")
  lu.assertEquals(answered, 20)
end

function TestServe.test_a_signature_without_host_is_refused()
  local dir = t.tmpdir()
  local url, task, stop = start(dir)
  local host = url:match("^http://(.*)$")
  local key = simlib.DEFAULT_KEY
  local body = "Action=GetCallerIdentity&Version=2011-06-15"
  local headers = { Host = host, ["Content-Type"] = "application/x-www-form-urlencoded" }
  local s = require("fo.sigv4").sign{ method = "POST", path = "/", query = "", headers = headers,
    body = body, region = "eu-south-1", service = "sts", access_key = key.access_key,
    secret_key = key.secret_key, time = os.time(), signed_headers = { "content-type", "x-amz-date" } }
  for k, v in pairs(s.headers) do headers[k] = v end
  local r = fo.http.request{ method = "POST", url = url .. "/", headers = headers, body = body }
  t.write(stop, "")
  local res = task:join()
  t.rmtree(dir)
  lu.assertEquals(r.status, 403, r.body)
  lu.assertStrContains(r.body, "<Code>SignatureDoesNotMatch</Code>")
  lu.assertStrContains(r.body, "&apos;Host&apos; or &apos;:authority&apos; must be a &apos;SignedHeader&apos;")
  lu.assertStrContains(res.stderr, "sts.GetCallerIdentity region=eu-south-1 status=403 code=SignatureDoesNotMatch")
end

-- A recipe of stack dev on the simulator (state in dir/.fo), for the lock tests.
local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(t.tests_dir)
local function recipe(dir)
  local path = dir .. "/net.lua"
  t.write(path, PRELUDE .. 'fo.resource("test:topic", "t", { name = "t" })\n')
  return path
end

function TestServe.test_a_served_sim_locks_its_stack_against_runs()
  local dir = t.tmpdir()
  local file = dir .. "/.fo/dev.sim.json"
  local url, task, stop = start(dir, { "--sim-file", file })
  local r = t.run_fo({ recipe(dir) }, { env = { FO_STATE_DIR = dir .. "/.fo" } })
  lu.assertEquals(r.code, 5, r.stderr)
  lu.assertStrMatches(r.stderr, ".*stack dev is locked by pid %d+ on host [^ ]+ since [%dT:%-]+Z "
    .. "%(fo%-run %-%-serve%-sim 127%.0%.0%.1:0 %-%-sim%-file " -- (the command as given)
    .. file:gsub("%p", "%%%0") .. "%); wait for it to finish.*")
  -- a second served sim on the file is refused the same way
  r = t.run_fo{ "--serve-sim", "127.0.0.1:0", "--sim-file", file }
  lu.assertEquals(r.code, 5, r.stderr)
  lu.assertStrContains(r.stderr, "fo: stack dev is locked by pid")
  t.write(stop, "")
  lu.assertStrContains(task:join().stdout, "exit=0")
  -- stopped, it lets the run through
  r = t.run_fo({ recipe(dir) }, { env = { FO_STATE_DIR = dir .. "/.fo" } })
  lu.assertEquals(r.code, 0, r.stderr)
  t.rmtree(dir)
end

function TestServe.test_a_run_of_the_stack_locks_out_a_served_sim()
  local dir = t.tmpdir()
  local lockfile = dir .. "/.fo/dev.lock"
  local stop = dir .. "/stop"
  -- an apply whose calls wait (latency knob) holds the stack's lock until it is killed
  local script = [["$0" "$1" & pid=$!
while [ ! -e "$STOP" ]; do sleep 0.05; done
kill -KILL $pid; wait $pid]]
  local run = fo.spawn(fo.process.run, { argv = { "sh", "-c", script, t.fo_run, recipe(dir) },
    timeout = 120, env = { STOP = stop, FO_STATE_DIR = dir .. "/.fo", FO_SIM_LATENCY_MS = "600000" } })
  while not (t.read(lockfile) or ""):find("command=", 1, true) do fo.sleep(0.02) end
  local r = t.run_fo{ "--serve-sim", "127.0.0.1:0", "--sim-file", dir .. "/.fo/dev.sim.json" }
  t.write(stop, "")
  run:join()
  lu.assertEquals(r.code, 5, r.stderr)
  lu.assertStrMatches(r.stderr, "fo: stack dev is locked by pid %d+ on host [^ ]+ since [%dT:%-]+Z "
    .. "%(fo%-run [^)]*net%.lua%); wait for it to finish %(lock file .*/%.fo/dev%.lock%)\n")
  lu.assertNotStrContains(r.stdout, "listening")
  -- any other file F is locked as F.lock
  local other = dir .. "/shared.json"
  local lk = assert(fo.fs.lock(other .. ".lock", "fo-run --serve-sim 127.0.0.1:4566 --sim-file " .. other))
  r = t.run_fo{ "--serve-sim", "127.0.0.1:0", "--sim-file", other }
  lk:unlock()
  lu.assertEquals(r.code, 5, r.stderr)
  lu.assertStrContains(r.stderr, "fo: sim file " .. other .. " is locked by pid")
  t.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
