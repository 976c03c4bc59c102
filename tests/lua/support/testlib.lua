-- Helpers shared by the Lua test suites: temp dirs, running fo-run as a child process,
-- and files that a server child uses to tell its port.
local M = {}

M.tests_dir = os.getenv("FO_TESTS_DIR") or (arg and arg[0]:match("^(.*)/lua/")) or "tests"
M.fo_run = os.getenv("FO_RUN") or "fo-run"
-- AWS's test suites kept in the repository (tests/data/README.md); FO_TESTDATA overrides.
M.data_dir = os.getenv("FO_TESTDATA") or (M.tests_dir .. "/data")

--- A fresh temporary directory (removed by the OS's tmp cleaning; tests remove theirs).
function M.tmpdir()
  local r = fo.process.run{ argv = { "mktemp", "-d", "/tmp/fo-test.XXXXXX" } }
  assert(r.code == 0, r.stderr)
  return (r.stdout:gsub("%s+$", ""))
end

function M.rmtree(dir)
  assert(dir:match("^/tmp/fo%-test%."), "refusing to remove " .. dir)
  fo.process.run{ argv = { "rm", "-rf", dir } }
end

function M.write(path, content, mode)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  if mode then fo.process.run{ argv = { "chmod", mode, path } } end
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- True when `name` is a command on PATH (for lu.skipIf).
function M.has_command(name)
  return fo.process.run{ argv = { "sh", "-c", 'command -v "$0" >/dev/null', name } }.code == 0
end

--- Runs fo-run with the given arguments; returns {code=, stdout=, stderr=}.
function M.run_fo(args, opts)
  opts = opts or {}
  local argv = { M.fo_run }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return fo.process.run{ argv = argv, env = opts.env, timeout = opts.timeout or 60 }
end

--- The text of a stack's simulator files in `state_dir` (its snapshot, then the log of the
--- calls since: docs/simulator.md): what a test compares to see that nothing changed there.
function M.sim_text(state_dir, stack)
  local base = ("%s/%s.sim"):format(state_dir, stack or "dev")
  return (M.read(base .. ".json") or "") .. (M.read(base .. ".log") or "")
end

--- Starts `fo-run ARGS` in the background, its stdout and stderr going to `pidfile`.out
--- and `pidfile`.err so a test can read them while it runs (the report flushes each line).
--- The shell execs fo-run, so the pid it writes to `pidfile` is fo-run's, the one to signal.
--- Returns the task (fo.process.run's result, with stdout and stderr read back from the
--- files) and the pid.
function M.spawn_fo(args, opts)
  local pidfile = assert(opts.pidfile, "spawn_fo needs opts.pidfile")
  for _, f in ipairs({ pidfile, pidfile .. ".out", pidfile .. ".err" }) do os.remove(f) end
  local argv = { "sh", "-c",
    'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@" > "$0.out" 2> "$0.err"', pidfile,
    M.fo_run }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local task = fo.spawn(function()
    local r = fo.process.run{ argv = argv, env = opts.env, timeout = opts.timeout or 120 }
    r.stdout = M.read(pidfile .. ".out") or ""
    r.stderr = M.read(pidfile .. ".err") or ""
    return r
  end)
  local deadline = fo.now() + 20
  while not M.read(pidfile) and fo.now() < deadline and not task.done do fo.sleep(0.01) end
  local pid = tonumber((M.read(pidfile) or ""):match("%d+"))
  assert(pid, "fo-run did not start")
  return task, pid
end

--- fo-run ARGS with the stack directory `dir`/.fo (FO_STATE_DIR) and `env`'s variables more.
function M.run_fo_in(dir, args, env)
  local e = { FO_STATE_DIR = dir .. "/.fo" }
  for k, v in pairs(env or {}) do e[k] = v end
  return M.run_fo(args, { env = e })
end

--- The state document of stack `stack` (default dev) in `dir`/.fo, as a finished run left
--- it (the log folded into the file).
function M.state_doc(dir, stack)
  return require("fo.json").decode(M.read(("%s/.fo/%s.state.json"):format(dir, stack or "dev")))
end

--- The environment of a fo-run child reaching the simulator served on 127.0.0.1:`port`
--- as AWS (--target aws): the simulator's default key, `region`, HOME `home`, nothing of the
--- user's AWS configuration; `more`'s variables on top.
function M.served_sim_env(port, region, home, more)
  local k = require("fo.sim.keys").DEFAULT
  local e = { AWS_ACCESS_KEY_ID = k.access_key, AWS_SECRET_ACCESS_KEY = k.secret_key,
    AWS_REGION = region, AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(port),
    AWS_EC2_METADATA_DISABLED = "true", AWS_CONFIG_FILE = "/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE = "/nonexistent", HOME = home }
  for k2, v in pairs(more or {}) do e[k2] = v end
  return e
end

--- Starts `fo-run --serve-sim 127.0.0.1:0 <args>` under a shell that sends it SIGTERM once
--- the file `stop` exists, and waits until it listens. Port 0: the sim picks a free port and
--- prints it (read from its stdout, kept in `dir`/sim.out); a port chosen here and handed on
--- could be taken meanwhile by a test running beside this one, whose server would then
--- answer for it. Returns { url =, task = (fo.process.run's result: its stdout is "exit=N"
--- then the sim's own stdout), stop =, pid_file = }.
function M.serve_sim(dir, args, timeout, env)
  local s = { stop = dir .. "/stop", pid_file = dir .. "/sim.pid" }
  local out = dir .. "/sim.out"
  local vars = { STOP = s.stop, OUT = out, PIDF = s.pid_file, FO_LOG = "info" }
  for k, v in pairs(env or {}) do vars[k] = v end
  local script = [["$0" --serve-sim 127.0.0.1:0 "$@" > "$OUT" & pid=$!; echo $pid > "$PIDF"
while [ ! -e "$STOP" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done
kill -TERM $pid 2>/dev/null; wait $pid; echo "exit=$?"; cat "$OUT"]]
  local argv = { "sh", "-c", script, M.fo_run }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  s.task = fo.spawn(fo.process.run, { argv = argv, timeout = timeout or 600, env = vars })
  local deadline = fo.now() + 20
  while fo.now() < deadline do
    s.url = (M.read(out) or ""):match("fo sim listening on (http://%S+)")
    if s.url then return s end
    if s.task.done then break end
    fo.sleep(0.05)
  end
  local r = s.task.done and s.task.results and s.task.results[1] or {}
  error(("the served sim did not come up: %s%s"):format(tostring(r.stdout or ""),
    tostring(r.stderr or "")), 0)
end

--- Starts fo-run on `script` in the background (a task); waits until the script writes
--- its port to the file given as its first argument. Returns port, task.
function M.start_server(script, args, opts)
  local dir = M.tmpdir()
  local portfile = dir .. "/port"
  local argv = { script, portfile }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local task = fo.spawn(M.run_fo, argv, opts)
  local deadline = fo.now() + 20
  while fo.now() < deadline do
    local s = M.read(portfile)
    if s and s:match("^%d+\n$") then
      M.rmtree(dir)
      return tonumber(s), task
    end
    if task.done then break end
    fo.sleep(0.02)
  end
  M.rmtree(dir)
  local ok, res = pcall(task.join, task)
  error("server " .. script .. " did not start: " .. (ok and res.stderr or tostring(res)))
end

--- Writes `port` to `file` atomically (rename), for M.start_server.
function M.publish_port(file, port)
  local tmp = file .. ".tmp"
  M.write(tmp, port .. "\n")
  assert(os.rename(tmp, file))
end

-- LuaUnit calls the global teardownSuite after a suite's last test: the fo.testing stacks
-- the suite left open (shared between its tests) go then with their state directories,
-- instead of staying in /tmp. A suite that defines its own calls fo.testing.close_all too.
if teardownSuite == nil then
  function teardownSuite() -- luacheck: ignore (LuaUnit looks it up as a global)
    require("fo.testing").close_all()
  end
end

return M
