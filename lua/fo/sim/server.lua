-- fo-run --serve-sim HOST:PORT [--sim-file F]: the simulator behind fo.httpd, for the
-- AWS CLI, botocore or fo clients with an endpoint override. Runs until SIGINT/SIGTERM.
local log = require "fo.log"
local keys = require "fo.sim.keys"

local M = {}

--- "127.0.0.1:4566" → host, port (port 0 picks a free one); raises on anything else.
function M.parse_address(addr)
  local host, port = tostring(addr):match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  port = tonumber(port)
  local octets_ok = host ~= nil
  for o in (host or ""):gmatch("%d+") do octets_ok = octets_ok and tonumber(o) <= 255 end
  if not octets_ok or port > 65535 then
    error(("--serve-sim wants IPV4:PORT (e.g. 127.0.0.1:4566), got '%s'"):format(tostring(addr)), 0)
  end
  return host, port
end

-- Where the served simulator says how to reach its TLS front (GET, on its endpoint): a
-- JSON object {port=, ca=} (ca: the front's certificate, PEM). Not an AWS API: an fo one.
M.LB_TLS_PATH = "/_fo/sim/lb-tls"

-- The TLS front: client traffic to load balancers' HTTPS listeners (port 443 on AWS) on a
-- second port, with the simulator's own certificate, made at start for the load balancers'
-- names (*.<region>.elb.amazonaws.com) and the address; nothing trusts it but who is handed
-- it (GET LB_TLS_PATH). Returns the listener and its description, or nil and why.
local function serve_lb_tls(sim, host, logged)
  local names = {}
  for region in pairs(require("fo.sim.regions").REGIONS) do
    names[#names + 1] = "*." .. region .. ".elb.amazonaws.com"
  end
  table.sort(names)
  local made, cert, key = pcall(fo.crypto.self_signed, { names = names, ips = { host },
    days = 30 })
  if not made then return nil, tostring(cert) end
  local ok, front = pcall(fo.httpd.listen, { host = host, port = 0, tls_cert = cert,
    tls_key = key, handler = function(req)
      local resp, info = sim:handle(req, { port = 443 })
      return logged(req, resp, info)
    end })
  if not ok then return nil, tostring(front) end
  return front, require("fo.json").encode({ port = front.port, ca = cert })
end

--- Starts serving a sim; opts: host, port, file (state file), sim (an existing sim),
--- lb_tls (also serve load balancers' HTTPS listeners over TLS: the TLS front).
--- Returns the httpd server, the sim and, with lb_tls, the TLS front's listener (or nil
--- when TLS cannot be served here, and why).
function M.serve(opts)
  local sim = opts.sim or require("fo.sim").new{ file = opts.file }
  local function logged(req, resp, info)
    -- HEAD: the HTTP server announces the body's length and sends none (S3's HeadObject
    -- gives the object's size so: fo.sim.s3.response)
    if req.method == "HEAD" and resp.head_length then resp.body = ("\0"):rep(resp.head_length) end
    log.info("sim %s %s.%s region=%s status=%d%s", req.method, info.service, info.operation,
      info.region, info.status, info.code and (" code=" .. info.code) or "")
    return resp
  end
  local front, described
  if opts.lb_tls then front, described = serve_lb_tls(sim, opts.host, logged) end
  local listening, srv = pcall(fo.httpd.listen, { host = opts.host, port = opts.port,
    handler = function(req)
      if front and req.method == "GET" and req.path == M.LB_TLS_PATH then
        return { status = 200, headers = { ["Content-Type"] = "application/json" },
          body = described }
      end
      return logged(req, sim:handle(req))
    end,
    -- bodies over the service's cap are refused before they are read (fo.sim.limits)
    max_body = sim.body_limit,
    too_large = function(req, max, got) return logged(req, sim:too_large(req, max, got)) end })
  if not listening then
    if front then front:close() end
    error(srv, 0)
  end
  return srv, sim, front, not front and described or nil
end

--- The lock a served sim takes on its state file: a stack's file "<dir>/<stack>.sim.json"
--- → "<dir>/<stack>.lock" (the engine's lock of that stack, fo.engine.lock) and the stack;
--- any other file F → "F.lock".
function M.lock_path(file)
  local dir, stack = file:match("^(.-)([^/]+)%.sim%.json$")
  if stack then return dir .. stack .. ".lock", stack end
  return file .. ".lock", nil
end

-- Takes the lock of `file` for `command`; returns it, or nil and the message naming its
-- holder (as the engine words it for a stack's file).
local function lock_file(file, command)
  local lock = require "fo.engine.lock"
  local path, stack = M.lock_path(file)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then require("fo.fs").mkdir_p(dir, tonumber("700", 8)) end
  if stack then
    local ok, lk = pcall(lock.acquire, path, stack, command, false)
    if ok then return lk end
    if require("fo.engine.errors").is(lk, "lock") then return nil, lk.message end
    error(lk, 0)
  end
  local lk, holder = fo.fs.lock(path, command)
  if lk then return lk end
  return nil, ("sim file %s is locked by %s; wait for it to finish (lock file %s)"):format(
    file, lock.describe(lock.parse_holder(holder)), path)
end

--- The command: take the state file's lock, serve, say how to connect, wait for
--- SIGINT/SIGTERM, stop. A usage problem (a bad address; one off loopback without `public`,
--- --serve-sim-public) is exit code 2; a state file locked by another process (a run of its
--- stack, another served sim) is 5, as the engine's lock is.
function M.main(addr, file, public)
  local ok, host, port = pcall(M.parse_address, addr)
  local why = not ok and host
  if ok and not host:match("^127%.") and not public then
    why = ("--serve-sim %s: other machines may reach this address, and the simulator's "
      .. "access key is public; add --serve-sim-public to serve it there anyway, or use "
      .. "127.0.0.1"):format(addr)
  end
  if why then
    io.stderr:write("fo-run: ", tostring(why), "\nTry 'fo-run --help'.\n")
    debug.getregistry()["fo.exit_code"] = 2
    return
  end
  if not host:match("^127%.") then
    io.stderr:write(("fo-run: warning: the simulator listens on %s, off loopback; its access "
      .. "key is public (docs/simulator.md), so anyone who reaches this port can act on it\n")
      :format(addr))
  end
  if os.getenv("FO_LOG") == nil or os.getenv("FO_LOG") == "" then log.set_level("info") end
  local lk
  if file then
    lk, why = lock_file(file, ("fo-run --serve-sim %s --sim-file %s"):format(addr, file))
    if not lk then
      io.stderr:write("fo: ", why, "\n")
      debug.getregistry()["fo.exit_code"] = require("fo.engine.errors").EXIT.lock
      return
    end
  end
  local served, srv, _, front, no_tls = pcall(M.serve, { host = host, port = port, file = file,
    lb_tls = true })
  if not served then -- the port taken, an unreadable --sim-file: said once, no traceback
    if lk then lk:unlock() end
    io.stderr:write("fo-run: --serve-sim ", addr, ": ",
      (tostring(srv):gsub("^[^\n]-%.lua:%d+: ", "")), "\n")
    debug.getregistry()["fo.exit_code"] = 1
    return
  end
  local url = ("http://%s:%d"):format(host, srv.port)
  -- The key pair is public test data that unlocks nothing but this simulator; the secret
  -- is documented in docs/simulator.md rather than printed, so logs never carry it.
  io.stdout:write(("fo sim listening on %s\n"):format(url),
    ("  state file: %s\n"):format(file or "none (in memory; gone when it stops)"),
    ("  credentials: AWS_ACCESS_KEY_ID=%s, AWS_SECRET_ACCESS_KEY: the sim's documented "
      .. "secret (docs/simulator.md, \"Credentials\")\n"):format(keys.DEFAULT.access_key),
    ("  e.g. aws --endpoint-url %s --region eu-south-1 sts get-caller-identity\n"):format(url),
    front and ("  load balancers' HTTPS listeners: TLS on port %d with the simulator's own "
      .. "certificate (%s%s)\n"):format(front.port, url, M.LB_TLS_PATH)
      or ("  load balancers' HTTPS listeners: not served (%s)\n"):format(tostring(no_tls)))
  io.stdout:flush()
  local sig = fo.signal.wait{ "INT", "TERM" }
  srv:close()
  if front then front:close() end
  if lk then lk:unlock() end
  io.stdout:write(("fo sim stopped (SIG%s)\n"):format(sig))
end

return M
