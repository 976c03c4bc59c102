-- An AWS CLI against a served simulator (`fo-run --serve-sim`), for
-- tests/lua/sim/test_awscli.lua. Two CLIs (M.cli(name)):
--   debian   Debian's awscli, /usr/bin/aws: AWS CLI v2 (2.9, its own botocore 1.29);
--   current  the `aws` first on PATH (FO_AWS_CLI_CURRENT overrides), the pip awscli: AWS
--            CLI v1 (1.45, botocore 1.43, what fo's models are generated from).
-- They differ in what the tests must say explicitly, not in what they assert: v2 has a
-- pager (--no-cli-pager; v1 has neither pager nor option) and exits 254 on a service
-- error and 252 when its own model check refuses a value; v1 exits 255 for both. Both get
-- --output json, AWS_PAGER="" and cli_timestamp_format = iso8601 (v1 would print a
-- timestamp as the wire carried it, v2 as ISO 8601).
--
-- Two ways to run a command, same arguments, same answers:
--   exec   one CLI process per command (what a user runs; ~1 s of Python start-up each);
--   batch  the CLI's own entry point kept warm in Python processes (two helpers,
--          support/awscli_server.py, run by the CLI's own interpreter): each command
--          still goes through awscli.clidriver's main(argv) with a new driver and
--          session; the models stay loaded between commands.
-- The scenario tests use batch (FO_AWSCLI_MODE=exec runs them all through processes);
-- output, exit codes and error texts are also checked through exec.
--
-- Isolation from the user's own AWS setup: HOME, AWS_CONFIG_FILE and
-- AWS_SHARED_CREDENTIALS_FILE point into a temp dir (the credentials file holds only the
-- profiles of the authentication-failure cases), no instance metadata, no proxies, and
-- every call carries --endpoint-url (loopback) and --region. AWS_RETRY_MODE=standard and
-- AWS_MAX_ATTEMPTS=1: an error is the sim's first answer (the sim draws no faults here).
local cjson = require "cjson"
local core = require "fo.core"
local t = require "support.testlib"

local M = {}

M.KEY = "AKIAFOSIMULATOR00001"
M.SECRET = "foSimulatorSecretKey/PublicTestData+0001"

-- The interpreter of a script (its #! line; `#!/usr/bin/env python3` looked up on PATH).
local function interpreter(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local first = f:read("l") or ""
  f:close()
  local prog, arg1 = first:match("^#!%s*(%S+)%s*(%S*)")
  if prog and prog:match("/env$") and arg1 ~= "" then
    local r = fo.process.run{ argv = { "sh", "-c", 'command -v "$0"', arg1 } }
    prog = r.code == 0 and r.stdout:match("^%s*(.-)%s*$") or nil
  end
  return prog
end

-- The `aws` first on PATH (or FO_AWS_CLI_CURRENT); for a pyenv shim, the script the shim
-- runs (`pyenv which aws`), so that it runs with the CLI's own interpreter whatever HOME is.
local function current_path()
  local aws = os.getenv("FO_AWS_CLI_CURRENT")
  if not aws or aws == "" then
    local r = fo.process.run{ argv = { "sh", "-c", "command -v aws" } }
    aws = r.code == 0 and r.stdout:match("^%s*(.-)%s*$") or nil
  end
  if aws and aws:match("/shims/aws$") then
    local r = fo.process.run{ argv = { "sh", "-c", "pyenv which aws" } }
    aws = r.code == 0 and r.stdout:match("^%s*(.-)%s*$") or nil
  end
  return aws
end

--- The CLI `name` ("debian" | "current"): {name=, aws= (the program), python= (its
--- interpreter), version=, major=, global= (options every command gets), rc_service= (exit
--- code of a service error), rc_refused= (a value the CLI's own model check refuses)}.
--- Returns nil and why when it is missing.
function M.cli(name)
  local aws
  if name == "debian" then
    aws = os.getenv("FO_AWS_CLI") or "/usr/bin/aws"
  elseif name == "current" then
    aws = current_path()
  else
    error(("unknown CLI %q (FO_AWSCLI: debian or current)"):format(tostring(name)))
  end
  if name == "current" and aws then
    -- Debian's again would prove nothing about the current CLI
    local r = fo.process.run{ argv = { "readlink", "-f", aws, "/usr/bin/aws" } }
    local real, debian = r.stdout:match("^(.-)\n(.-)\n")
    if real and real == debian then
      return nil, ("current: `aws` on PATH is Debian's %s, not the current CLI"):format(aws)
    end
  end
  local python = aws and interpreter(aws)
  if not python then
    return nil, ("%s: no AWS CLI at %s"):format(name, tostring(aws))
  end
  local r = fo.process.run{ argv = { aws, "--version" } }
  local version = (r.stdout .. r.stderr):match("aws%-cli/(%S+)")
  if r.code ~= 0 or not version then
    return nil, ("%s: %s --version failed: %s"):format(name, aws, r.stdout .. r.stderr)
  end
  local c = { name = name, aws = aws, python = python, version = version,
    major = tonumber(version:match("^(%d+)")) }
  if c.major >= 2 then
    c.global, c.rc_service, c.rc_refused = { "--no-cli-pager", "--output", "json" }, 254, 252
  else
    c.global, c.rc_service, c.rc_refused = { "--output", "json" }, 255, 255
  end
  return c
end

-- The batch runners the text runners started (M.finish stops them).
local open_runners = {}

--- A plain command runner for CLI `name` against the served sim at `url` (text output: for
--- the short per-service proofs): run{args...} → exit code, trimmed stdout, stderr; and the
--- CLI's description ("aws-cli/1.45.11 ..."). Commands go through one batch helper (the
--- CLI's main(argv), see above), or one process each with FO_AWSCLI_MODE=exec (and always
--- for `aws s3`). Raises,
--- naming why, when the CLI is missing (a requirement of the suite, not a reason to skip).
function M.text_runner(name, dir, url, region)
  local c, why = M.cli(name)
  if not c then error(why, 0) end
  local mode = os.getenv("FO_AWSCLI_MODE") == "exec" and "exec" or "batch"
  local runner
  local function run(args)
    local argv = { "--endpoint-url", url, "--region", region or "eu-south-1", "--output", "text" }
    if c.major >= 2 then argv[#argv + 1] = "--no-cli-pager" end
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    if not runner then
      runner = M.runner{ cli = c, url = url, dir = dir, mode = mode, helpers = 1 }
      open_runners[#open_runners + 1] = runner
    end
    -- `aws s3 ...` (the transfer commands) print from the transfer's worker threads, which
    -- a batch helper cannot route to the command's output: one process each
    local r = runner:send(argv, region or "eu-south-1", { exec = args[1] == "s3" })
    return r.rc, r.stdout:match("^%s*(.-)%s*$"), r.stderr
  end
  return run, ("%s %s (%s, %s)"):format(name, c.version, c.aws, mode)
end

--- The end of a CLI suite's script: runs its LuaUnit tests, stops the served sim (one that
--- does not stop cleanly fails the run), removes `dir` and exits with the result.
function M.finish(lu, sim, dir)
  local rc = lu.LuaUnit.run()
  for _, r in ipairs(open_runners) do r:close() end
  if sim then
    local r = M.stop_sim(sim)
    if not tostring(r.stdout):find("exit=0", 1, true) then
      print("the served sim did not stop cleanly: " .. tostring(r.stdout) .. tostring(r.stderr))
      rc = 1
    end
  end
  t.rmtree(dir)
  os.exit(rc)
end

M.UNKNOWN_KEY = "AKIAFOSIMUNKNOWN0001"

--- Profiles of the credentials file for the authentication failures (an explicit
--- --profile wins over the AWS_* variables): a wrong secret for the sim's key id, a key
--- id the sim does not know.
M.PROFILES = { bad_secret = "fo-sim-bad-secret", unknown_key = "fo-sim-unknown-key" }

--- The CLI's environment: credentials, temp config files, nothing of the user's.
function M.env(dir, over)
  -- Timestamps printed as ISO 8601 by both CLIs, for every profile.
  local config = {}
  for _, section in ipairs({ "default", "profile " .. M.PROFILES.bad_secret,
    "profile " .. M.PROFILES.unknown_key }) do
    config[#config + 1] = "[" .. section .. "]\ncli_timestamp_format = iso8601\n"
  end
  t.write(dir .. "/config", table.concat(config))
  t.write(dir .. "/credentials", table.concat({
    "[" .. M.PROFILES.bad_secret .. "]",
    "aws_access_key_id = " .. M.KEY,
    "aws_secret_access_key = wrong" .. M.SECRET:sub(6),
    "[" .. M.PROFILES.unknown_key .. "]",
    "aws_access_key_id = " .. M.UNKNOWN_KEY,
    "aws_secret_access_key = " .. M.SECRET, "" }, "\n"), "600")
  local env = {
    AWS_ACCESS_KEY_ID = M.KEY, AWS_SECRET_ACCESS_KEY = M.SECRET, AWS_SESSION_TOKEN = false,
    AWS_SECURITY_TOKEN = false, AWS_PROFILE = false, AWS_DEFAULT_PROFILE = false,
    AWS_REGION = false, AWS_DEFAULT_REGION = "us-east-1",
    AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials",
    AWS_EC2_METADATA_DISABLED = "true", AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = false,
    AWS_CONTAINER_CREDENTIALS_FULL_URI = false, AWS_WEB_IDENTITY_TOKEN_FILE = false,
    AWS_ENDPOINT_URL = false, AWS_CA_BUNDLE = false, AWS_PAGER = "", AWS_CLI_AUTO_PROMPT = "off",
    AWS_RETRY_MODE = "standard", AWS_MAX_ATTEMPTS = "1", AWS_DATA_PATH = false,
    HOME = dir, PYTHONPATH = false, PYTHONHOME = false, PYTHONDONTWRITEBYTECODE = "1",
    HTTP_PROXY = false, HTTPS_PROXY = false, http_proxy = false, https_proxy = false,
    ALL_PROXY = false, all_proxy = false, NO_PROXY = "127.0.0.1", no_proxy = "127.0.0.1",
    LC_ALL = "C.UTF-8",
  }
  for k, v in pairs(over or {}) do env[k] = v end
  return env
end

-- The served sim --------------------------------------------------------------------

--- Starts `fo-run --serve-sim 127.0.0.1:0 --sim-file DIR/sim.json` (testlib.serve_sim: a
--- free port the sim picks, SIGTERM once DIR/stop exists); `timeout`: seconds it may run
--- (default 600); `env`: more environment variables for it (FO_SIM_* knobs).
--- Returns {url=, file=, task=, stop=, pid_file=}.
function M.start_sim(dir, timeout, env)
  local s = t.serve_sim(dir, { "--sim-file", dir .. "/sim.json" }, timeout, env)
  s.file = dir .. "/sim.json"
  return s
end

--- CPU seconds the served sim has used so far (from /proc), or nil.
function M.sim_cpu(s)
  local pid = (t.read(s.pid_file) or ""):match("%d+")
  local stat = pid and t.read("/proc/" .. pid .. "/stat")
  if not stat then return nil end
  local fields = {}
  for f in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = f end
  -- utime, stime: fields 14 and 15 of stat, 12 and 13 after "pid (comm)"
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100
end

--- Stops it; returns fo.process.run's result ({code=, stdout=, stderr=}).
function M.stop_sim(s)
  t.write(s.stop, "")
  return s.task:join()
end

-- The runner --------------------------------------------------------------------------

local Runner = {}
Runner.__index = Runner

--- opts: cli (M.cli's), url (the served sim), dir (temp dir), mode ("batch" | "exec"),
--- helpers (batch processes, default 2: one per core), concurrency (commands in flight).
function M.runner(opts)
  local r = setmetatable({ cli = opts.cli, url = opts.url, dir = opts.dir, mode = opts.mode or "batch",
    limit = opts.concurrency or 4, busy = 0, commands = 0, helpers = {}, queue = {}, seq = 0 },
    Runner)
  r.env = M.env(opts.dir)
  if r.mode == "batch" then
    local starting = {}
    for i = 1, opts.helpers or 2 do starting[i] = fo.spawn(r.start_helper, r, i) end
    for i, task in ipairs(starting) do r.helpers[i] = task:join() end
  end
  return r
end

local helper_files = 0

--- Starts batch helper i (support/awscli_server.py); returns {url=, task=, busy=}.
function Runner:start_helper(i)
  -- one file per helper of the process (several runners may share `dir`)
  helper_files = helper_files + 1
  local portfile = ("%s/awscli-%d-%d.port"):format(self.dir, helper_files, i)
  local script = t.tests_dir .. "/lua/support/awscli_server.py"
  local task = fo.spawn(fo.process.run, { argv = { self.cli.python, script, portfile },
    env = self.env, timeout = 600 })
  local deadline = fo.now() + 30
  while fo.now() < deadline do
    local s = t.read(portfile)
    if s and s:match("^%d+\n$") then
      return { url = "http://127.0.0.1:" .. s:match("%d+"), task = task, busy = 0 }
    end
    if task.done then break end
    fo.sleep(0.05)
  end
  local ok, res = pcall(task.join, task)
  error("the AWS CLI batch helper did not start: " .. (ok and res.stderr or tostring(res)))
end

--- Stops the helpers; returns the CPU seconds they used.
function Runner:close()
  local cpu = 0
  for _, h in ipairs(self.helpers) do
    local ok, resp = pcall(fo.http.request, { method = "POST", url = h.url .. "/quit",
      body = "{}", timeout = 5 })
    if ok then cpu = cpu + (cjson.decode(resp.body).cpu or 0) end
    h.task:join()
  end
  self.helpers = {}
  return cpu
end

--- The argument list of one command: global options, then `args`.
function Runner:argv(region, args)
  local argv = { "--endpoint-url", self.url, "--region", region }
  for _, a in ipairs(self.cli.global) do argv[#argv + 1] = a end
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return argv
end

--- Runs `aws <global options> args...`; opts.exec forces a process, opts.env adds to its
--- environment (exec only), opts.waiting: a waiter, mostly asleep (not counted against
--- the concurrency limit). Returns {rc=, stdout=, stderr=}.
-- At most `limit` commands at once; the others wait their turn, lowest priority number
-- first, then in arrival order (so scenarios with long waits ahead go first).
function Runner:acquire(priority)
  if self.busy < self.limit and #self.queue == 0 then
    self.busy = self.busy + 1
    return
  end
  self.seq = self.seq + 1
  local entry = { co = coroutine.running(), priority = priority or 10, seq = self.seq }
  self.queue[#self.queue + 1] = entry
  while not entry.granted do core.suspend() end
end

function Runner:release()
  self.busy = self.busy - 1
  if #self.queue > 0 and self.busy < self.limit then
    table.sort(self.queue, function(a, b)
      if a.priority ~= b.priority then return a.priority < b.priority end
      return a.seq < b.seq
    end)
    local entry = table.remove(self.queue, 1)
    entry.granted = true
    self.busy = self.busy + 1
    core.wake(entry.co)
  end
end

function Runner:aws(region, args, opts)
  return self:send(self:argv(region, args), region, opts)
end

--- Runs `aws argv...` (the whole argument list after `aws`) as Runner:aws does.
function Runner:send(argv, region, opts)
  opts = opts or {}
  local limited = not opts.waiting
  if limited then self:acquire(opts.priority) end
  self.commands = self.commands + 1
  local ok, res = pcall(function()
    if self.mode == "exec" or opts.exec or opts.env then
      local env = {}
      for k, v in pairs(self.env) do env[k] = v end
      env.AWS_DEFAULT_REGION = region
      for k, v in pairs(opts.env or {}) do env[k] = v end
      table.insert(argv, 1, self.cli.aws)
      local r = fo.process.run{ argv = argv, env = env, timeout = 300 }
      return { rc = r.code, stdout = r.stdout, stderr = r.stderr }
    end
    -- the least busy helper
    local h = self.helpers[1]
    for _, x in ipairs(self.helpers) do if x.busy < h.busy then h = x end end
    h.busy = h.busy + 1
    local hok, resp = pcall(fo.http.request, { method = "POST", url = h.url .. "/run",
      headers = { ["Content-Type"] = "application/json" },
      body = cjson.encode({ argv = argv }), timeout = 300 })
    h.busy = h.busy - 1
    if not hok then error(resp, 0) end
    local r = cjson.decode(resp.body)
    r.rc = math.tointeger(r.rc) or r.rc
    return r
  end)
  if limited then self:release() end
  if not ok then error(res, 0) end
  return res
end

--- "CreateVpc" → "create-vpc" (botocore's xform_name for these simple names).
function M.command(op)
  return (op:gsub("(%l)(%u)", "%1-%2"):gsub("(%d)(%u)", "%1-%2"):lower())
end

--- The CLI's error line: "An error occurred (Code) when calling the Op operation: msg"
--- (with " (reached max retries: N)" after "operation" once retries are exhausted).
function M.parse_error(stderr)
  local code, op, rest = stderr:match("An error occurred %(([^)]+)%) when calling the (%w+) operation(.*)$")
  if not code then return nil end
  local msg = rest:match("^ %(reached max retries: %d+%): (.-)%s*$") or rest:match("^: (.-)%s*$")
  return code, op, msg
end

local function result(res, op)
  if res.rc == 0 then
    if res.stdout:match("^%s*$") then return true, nil end
    local ok, v = pcall(cjson.decode, res.stdout)
    if not ok then return false, { code = "(unreadable output)", message = res.stdout, res = res } end
    return true, v
  end
  local code, eop, msg = M.parse_error(res.stderr)
  return false, { code = code or ("(exit " .. tostring(res.rc) .. ")"),
    message = msg or res.stderr, op = eop, rc = res.rc, stderr = res.stderr, want_op = op }
end

local function input_args(params)
  if next(params) == nil then return {} end
  return { "--cli-input-json", cjson.encode(params) }
end

--- sim_scenarios runner interface: one operation, its input as --cli-input-json, the
--- checks as --query.
function Runner:call(region, svc, op, params, query, opts)
  local args = { svc, M.command(op) }
  for _, a in ipairs(input_args(params)) do args[#args + 1] = a end
  if query then args[#args + 1] = "--query"; args[#args + 1] = query end
  if opts and opts.page_size then
    args[#args + 1] = "--page-size"; args[#args + 1] = tostring(opts.page_size)
  end
  return result(self:aws(region, args, { priority = opts and opts.priority }), op)
end

--- A waiter: `aws <svc> wait <name>`.
function Runner:wait(region, svc, name, params)
  local args = { svc, "wait", M.command(name) }
  for _, a in ipairs(input_args(params)) do args[#args + 1] = a end
  return result(self:aws(region, args, { waiting = true }), name)
end

--- An expected service error, as the CLI reports it: its exit code for one (v2 254, v1
--- 255) and the error line naming the operation.
function Runner:error_problems(step, err)
  local out = {}
  if err.rc ~= self.cli.rc_service then
    out[#out + 1] = ("exit code %s, want %d"):format(tostring(err.rc), self.cli.rc_service)
  end
  if err.op ~= step[2] then
    out[#out + 1] = ("error line names operation %s, want %s"):format(tostring(err.op), step[2])
  end
  return out
end

return M
