-- The game day (`fo-run --game-day RECIPE --target aws`, docs/runbook.md "Game day on a
-- real account"): on a deployed stack, fail the primary the reversible way Route 53 offers
-- — invert the stack's primary health check — and measure from Route 53's own answers when
-- it switched: GetHealthCheckStatus per checker (each checker's verdict after
-- FailureThreshold consecutive results, the check unhealthy once no more than 18 % of the
-- checkers call it healthy) and TestDNSAnswer for the app name from the stack's zone. Then
-- a client's request for the app sent to the standby's load balancer (HTTPS when it has an
-- HTTPS listener) shows the standby serves, the health check is set back as it was, and
-- failback is measured the same way. The stack's state is read through its backend (local,
-- or S3 with --backend), as the apply reads it, under the stack's lock; never written.
--
-- It touches one thing: the health check the stack created (its id in the stack's state,
-- its fo:stack tag naming the stack), and only its Inverted setting, guarded by
-- HealthCheckVersion. Whatever ends the run early — an error, a timeout, a failed probe,
-- SIGINT or SIGTERM — sets Inverted back before anything else.
local json = require "fo.json"
local verdict = require "fo.game_day_verdict"

local M = {}

M.POLL = 2           -- seconds between two reads of Route 53's answers
-- How long to wait for a switch beyond RequestInterval × FailureThreshold: Route 53 says
-- DNS changes reach its name servers within 60 s; the rest is margin for a slow account.
M.SLACK = 120

local NEEDED = { "app_dns_name", "hosted_zone_id", "health_check_id", "primary_alb_dns_name",
  "standby_alb_dns_name", "primary_region", "standby_region" }

local EXIT = require("fo.engine.errors").EXIT
local INTERRUPTED = 130

-- An error the run ends on: the text for people, and the exit code.
local function stop(code, text)
  error({ game_day = true, code = code, text = text }, 0)
end

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. "Z"
end

local function join(list)
  return #list > 0 and table.concat(list, ", ") or "(no data)"
end

-------------------------------------------------------------------------------
-- Output: the timeline for people, or events (--json)

local function new_out(opts)
  local o = { json = opts.json, t0 = fo.time(), err = opts.err or function(s)
    io.stderr:write(s) end, out = opts.out or function(s) io.stdout:write(s) io.stdout:flush() end }
  function o.emit(name, fields)
    if not o.json then return end
    local e = {}
    for k, v in pairs(fields or {}) do e[k] = v end
    e.v, e.event = 1, name
    e.t = math.floor((fo.time() - o.t0) * 1000 + 0.5) / 1000
    o.out(json.line(e, { "v", "event", "t" }) .. "\n")
  end
  function o.say(fmt, ...)
    if not o.json then o.out(fmt:format(...) .. "\n") end
  end
  -- One timeline step: `at` (wall time) relative to `since` (the inversion, the restore).
  function o.step(step, at, since, text, fields)
    local f = fields or {}
    f.step, f.text, f.at = step, text, iso(at)
    if since then f.after = math.floor((at - since) * 10 + 0.5) / 10 end
    o.emit("game_day", f)
    o.say("  %s  %s  %s", iso(at), since and ("+%5.1fs"):format(at - since) or "       ", text)
  end
  return o
end

local function overlaps(a, b)
  local set = {}
  for _, v in ipairs(a or {}) do set[v] = true end
  for _, v in ipairs(b or {}) do if set[v] then return true end end
  return false
end

-------------------------------------------------------------------------------
-- The run

-- The stack's backend, as the apply opens it (engine.run): --backend, else the local config
-- file's `backend`, else the state directory.
local function open_backend(opts, stack)
  local engine = require "fo.engine"
  local backend_mod = require "fo.engine.backend"
  if not tostring(stack):match("^[%w][%w_.%-]*$") then
    stop(EXIT.usage, ("stack name %q: use letters, digits, _ . -"):format(tostring(stack)))
  end
  local dir = engine.state_dir(opts.dir, opts.recipe)
  local paths = engine.paths(dir, stack)
  local settings = backend_mod.take_settings(require("fo.engine.config").read_file(paths.config)
    or {}, paths.config)
  local region = opts.region or os.getenv("AWS_REGION") or os.getenv("AWS_DEFAULT_REGION")
  if region == "" then region = nil end
  local be = backend_mod.open{ spec = opts.backend, settings = settings, dir = dir,
    stack = stack, region = region or "us-east-1", unsafe_ok = opts.backend_unsafe_ok }
  -- (the local backend's prepare makes the directory writable for a state write; the game
  -- day writes none)
  if be.kind ~= "local" then be:prepare() end
  return be, dir
end

-- The stack's facts from its state, read through its backend; nothing is written.
local function stack_facts(opts, be)
  local stack = be.stack
  local doc = be:read_state()
  if not doc then
    stop(EXIT.usage, ("stack %s has no state in %s: apply it on AWS first "
      .. "(fo-run --target aws --stack %s %s)"):format(stack, be.where, stack, opts.recipe))
  end
  if doc.target ~= "aws" then
    stop(EXIT.usage, ("stack %s is bound to target %s: the game day runs on AWS; on the "
      .. "simulator, use fo-run --drill"):format(stack, tostring(doc.target)))
  end
  local o = doc.outputs or {}
  local missing = {}
  for _, k in ipairs(NEEDED) do if o[k] == nil then missing[#missing + 1] = k end end
  if #missing > 0 then
    stop(EXIT.usage, ("stack %s has no output %s: the game day needs the trading recipe's "
      .. "outputs (recipes/trading.lua); apply the recipe first"):format(stack,
      table.concat(missing, ", ")))
  end
  -- the health check must be one the stack created, by its state
  local owned
  for _, rec in pairs(doc.resources or {}) do
    if rec.type == "aws:route53:health_check" and rec.id == o.health_check_id then owned = rec end
  end
  if not owned then
    stop(EXIT.usage, ("health check %s (output health_check_id) is not a resource of stack %s: "
      .. "the game day changes nothing the stack did not create"):format(o.health_check_id, stack))
  end
  return doc, o
end

-- Asks for the go-ahead: --yes, or the stack's name typed on a terminal.
local function agree(opts, out, stack, account, hc_id)
  if opts.yes then return end
  local what = ("The game day inverts Route 53 health check %s of stack %s in account %s: "
    .. "Route 53 then routes the app's traffic to the standby until it is set back (within "
    .. "a few minutes; an error or Ctrl-C sets it back first)."):format(hc_id, stack, account)
  if opts.confirm then
    if opts.confirm(what) then return end
    stop(EXIT.usage, "not confirmed: nothing was changed")
  end
  if not require("fo.fs").isatty(io.stdin) then
    stop(EXIT.usage, ("the game day changes a health check of stack %s on AWS: it needs --yes "
      .. "when the input is not a terminal; nothing was changed"):format(stack))
  end
  out.err(what .. ("\nType the stack's name (%s) to go on: "):format(stack))
  local answer = io.read("l")
  if answer ~= stack then stop(EXIT.usage, "not confirmed: nothing was changed") end
end

local function bare(name)
  return (tostring(name):gsub("%.$", "")):lower()
end

-- The standby load balancer's listeners, as ELBv2 has them now (the stack as it is, not as
-- the recipe says it).
local function standby_listeners(o)
  local elb = require("fo.aws").elbv2{ region = o.standby_region }
  local want = bare(o.standby_alb_dns_name)
  for lb in elb:items("DescribeLoadBalancers", {}) do
    if bare(lb.DNSName) == want then
      local out = {}
      for l in elb:items("DescribeListeners", { LoadBalancerArn = lb.LoadBalancerArn }) do
        out[#out + 1] = l
      end
      return out
    end
  end
  stop(EXIT.cloud, ("the standby's load balancer %s (output standby_alb_dns_name) is not in "
    .. "ELBv2 of %s: the stack's state is stale; run fo-run --refresh"):format(want,
    o.standby_region))
end

-- The listener a client of the app uses: HTTPS (443 first) when there is one, else HTTP
-- (80 first).
local function client_listener(listeners)
  for _, proto in ipairs({ "HTTPS", "HTTP" }) do
    local pick
    for _, l in ipairs(listeners) do
      if l.Protocol == proto and (not pick or l.Port == (proto == "HTTPS" and 443 or 80)) then
        pick = l
      end
    end
    if pick then return pick end
  end
end

local DEFAULT_PORT = { http = 80, https = 443 }

-- scheme, host, port, path-and-query of an absolute http(s) URL; nil for anything else.
local function split_url(url)
  local scheme, authority, rest = tostring(url):match("^(%a+)://([^/?#]+)(.*)$")
  scheme = scheme and scheme:lower()
  if not DEFAULT_PORT[scheme] then return nil end
  local host, port = authority:match("^(.-):(%d+)$")
  host = host or authority
  if rest == "" or rest:sub(1, 1) ~= "/" then rest = "/" .. rest end
  return scheme, bare(host), tonumber(port) or DEFAULT_PORT[scheme], (rest:gsub("#.*$", ""))
end

-- The served simulator's TLS front for load balancer traffic (fo.sim.server), asked of
-- the overridden endpoint: {host=, port=, ca_file=} (its certificate written to a private
-- temporary file, which the probe removes), or nil when the endpoint has none (another emulator).
-- Only with an endpoint override: against AWS nothing but the system's roots is trusted.
local function sim_tls(ep)
  local ok, resp = pcall(fo.http.request, { url = ep.url:gsub("/+$", "")
    .. require("fo.sim.server").LB_TLS_PATH, timeout = 10, connect_timeout = 5 })
  if not ok or resp.status ~= 200 then return nil end
  local dok, d = pcall(json.decode, resp.body)
  if not dok or type(d) ~= "table" or type(d.port) ~= "number" or type(d.ca) ~= "string" then
    return nil
  end
  local path = os.tmpname()
  require("fo.fs").write_atomic(path, d.ca, tonumber("600", 8))
  return { host = ep.url:match("^%a+://([^/:]+)"), port = math.floor(d.port), ca_file = path }
end

-- The request to the standby's load balancer, made the way a client of the app makes it:
-- a GET of the health check's path for the app's name (Host, and on HTTPS the TLS name and
-- the certificate's, verified against the system's trusted roots), over the listener a
-- client uses (HTTPS when the load balancer has one: its port-80 listener then only
-- redirects), sent to the standby's load balancer itself (curl's connect-to: the app's
-- name answers with the primary until Route 53 switches). One redirect is followed when
-- it stays on the app's name or the load balancer's; only a 2xx counts as serving.
-- With an endpoint override (a served simulator) the request goes to that endpoint, naming
-- the load balancer (not the app) as the simulator expects: over plain HTTP, or for an
-- HTTPS listener to the simulator's TLS front, verified with the certificate it hands out.
-- Returns { ok=, status=, error=, url=, redirected= }.
local function probe(o, cfg)
  local ep = require("fo.aws.endpoints").resolve("elbv2", o.standby_region)
  local app, alb = bare(o.app_dns_name), bare(o.standby_alb_dns_name)
  local l = client_listener(standby_listeners(o))
  if not l then
    return { ok = false, url = alb, error = ("the standby's load balancer %s has no HTTP or "
      .. "HTTPS listener"):format(alb) }
  end
  local scheme = l.Protocol:lower()
  local url = ("%s://%s%s%s"):format(scheme, app, l.Port == DEFAULT_PORT[scheme] and ""
    or (":" .. l.Port), cfg.ResourcePath or "/")
  local tls -- the simulator's TLS front, asked for once
  local function get(to)
    local sch, host, port, path = split_url(to)
    local req = { method = "GET", headers = { ["User-Agent"] = "fo-game-day" }, timeout = 10,
      connect_timeout = 5 }
    if not sch then return nil, ("%s is not an http(s) URL"):format(tostring(to)) end
    if host ~= app and host ~= alb then
      return nil, ("redirected to %s: not the app's name nor the standby's load balancer")
        :format(to)
    end
    if ep.overridden and sch == "https" then
      -- the served simulator's TLS front, trusted with the certificate it hands out (and
      -- for this request only): the load balancer's name, as its certificate has it
      tls = tls or sim_tls(ep) or false
      if not tls then
        return nil, ("%s needs HTTPS (the standby's listener on port %d): the endpoint %s "
          .. "serves no TLS front for load balancers (fo-run --serve-sim does), so the probe "
          .. "cannot reach the standby as a client does"):format(to, port, ep.url)
      end
      req.url = ("https://%s%s%s"):format(alb, port == 443 and "" or (":" .. port), path)
      req.connect_to = ("%s:%d:%s:%d"):format(alb, port, tls.host, tls.port)
      req.ca_file = tls.ca_file
    elseif ep.overridden then
      req.url = ep.url:gsub("/+$", "") .. path
      req.headers.Host = alb
    else
      req.url = to
      req.connect_to = ("%s:%d:%s:%d"):format(host, port, alb, port)
    end
    local ok, resp = pcall(fo.http.request, req)
    if not ok then return nil, tostring(type(resp) == "table" and resp.message or resp) end
    return resp
  end
  local resp, err = get(url)
  local out = { url = url }
  if resp and resp.status >= 300 and resp.status < 400 then
    local loc = resp.headers and resp.headers.location
    if not loc then
      err = "a redirect without a Location"
    elseif loc:sub(1, 1) == "/" then
      local sch, host, port = split_url(url)
      loc = ("%s://%s%s%s"):format(sch, host, port == DEFAULT_PORT[sch] and "" or (":" .. port),
        loc)
    end
    if loc then
      out.redirected = { from = url, status = resp.status }
      out.url = loc
      resp, err = get(loc)
      if resp and resp.status >= 300 and resp.status < 400 then
        err = ("a second redirect, to %s: not followed"):format(tostring(resp.headers
          and resp.headers.location))
      end
    end
  end
  if tls then os.remove(tls.ca_file) end
  out.status = resp and resp.status
  out.ok = resp ~= nil and resp.status >= 200 and resp.status < 300
  out.error = err
  return out
end

--- Runs the game day; opts: the CLI's (stack, dir, recipe, yes, json), plus for tests
--- out/err writers and confirm. Returns the exit code.
function M.main(opts)
  local out = new_out(opts)
  local state = { interrupted = nil }
  local facts = { stack = opts.stack or "dev" }
  local r53, hc_id, inverted_version, original, restored
  local restoring = false

  -- Sets Inverted back as it was; idempotent. Guarded by the version the inversion left:
  -- when someone changed the check since, it is re-read and only Inverted is set back.
  local function restore(reason)
    if restored or not inverted_version then return true end
    restoring = true
    local last
    for attempt = 1, 5 do
      local ok, res = pcall(r53.UpdateHealthCheck, r53, { HealthCheckId = hc_id,
        HealthCheckVersion = inverted_version, Inverted = original.Inverted })
      if ok then
        restored = { at = fo.time(), version = res.HealthCheck.HealthCheckVersion }
        break
      end
      last = res
      if type(res) == "table" and res.code == "HealthCheckVersionMismatch" then
        local ok2, cur = pcall(r53.GetHealthCheck, r53, { HealthCheckId = hc_id })
        if ok2 then
          local c = cur.HealthCheck
          if c.HealthCheckConfig.Inverted == original.Inverted then
            restored = { at = fo.time(), version = c.HealthCheckVersion, by_other = true }
            break
          end
          inverted_version = c.HealthCheckVersion
        end
      else
        fo.sleep(math.min(attempt, 3))
      end
    end
    restoring = false
    if not restored then
      out.err(("fo-run: --game-day: COULD NOT SET THE HEALTH CHECK BACK (%s): %s\n  Do it now: "
        .. "aws route53 update-health-check --health-check-id %s --%sinverted\n"):format(
        reason, tostring(type(last) == "table" and (last.message or last.code) or last),
        hc_id, original.Inverted and "" or "no-"))
      return false
    end
    out.step("restored", restored.at, nil, ("health check set back: Inverted %s (version %d)%s")
      :format(tostring(original.Inverted), restored.version,
        restored.by_other and ", as someone else had already set it" or ""),
      { inverted = original.Inverted, version = restored.version, reason = reason })
    return true
  end

  -- SIGINT/SIGTERM: noted; the loop ends at its next step and restores first. A second
  -- signal while restoring is noted too (the restore finishes).
  local signal = require "fo.signal"
  local watching = true
  local function watch()
    require("fo.task").spawn(function()
      while watching do
        local ok, name = pcall(signal.wait, { "INT", "TERM" })
        if not ok or not name or not watching then return end
        if not state.interrupted then
          state.interrupted = name
          out.emit("interrupt", { signal = name, text = ("SIG%s: setting the health check "
            .. "back, then stopping"):format(name) })
          out.err(("\nfo-run: --game-day: SIG%s: setting the health check back first\n")
            :format(name))
        elseif restoring then
          out.err("fo-run: --game-day: still setting the health check back; one moment\n")
        end
      end
    end)
  end

  local function check_stop()
    if state.interrupted then stop(INTERRUPTED, "interrupted (SIG" .. state.interrupted .. ")") end
    -- a lost lease (S3 backend: taken over, or not renewed in time) ends the game day: the
    -- stack is no longer held against an apply
    if facts.lock and facts.lock.lost then facts.lock:check() end
  end

  local function pause(s)
    local t = fo.time() + s
    while fo.time() < t do
      check_stop()
      fo.sleep(math.min(0.2, t - fo.time()))
    end
    check_stop()
  end

  local summary = {}
  out.emit("run", { stack = facts.stack, mode = "game-day", fo_version = require("fo").version })
  local ok, err = pcall(function()
    local stack = facts.stack
    local be, dir = open_backend(opts, stack)
    -- The stack's lock (the S3 backend's lease, renewed meanwhile) for the game day's
    -- length, taken before the state is read: an apply meanwhile would set the check back
    -- (to it, the inversion is drift) and spoil the measure. Never broken: a run holding it
    -- is waited for only with --lock-timeout.
    local got, lock = pcall(be.lock, be, require("fo.engine.secret").scrub(opts.command
      or "fo-run --game-day"), { timeout = opts.lock_timeout,
      recipe = require("fo.engine.location").recipe_name(opts.recipe, dir) })
    if not got then
      if require("fo.engine.errors").is(lock, "lock") then
        stop(EXIT.lock, require("fo.engine.report").describe_error(lock).text)
      end
      error(lock, 0)
    end
    facts.lock = lock
    local doc, o = stack_facts(opts, be)
    hc_id = o.health_check_id
    r53 = require("fo.aws").route53{ region = "us-east-1" }
    local me = require("fo.aws").sts{ region = o.primary_region }:GetCallerIdentity{}
    if me.Account ~= doc.account then
      stop(EXIT.usage, ("the credentials are for account %s, stack %s is in account %s: "
        .. "nothing was changed"):format(tostring(me.Account), stack, tostring(doc.account)))
    end
    local tags = r53:ListTagsForResource{ ResourceType = "healthcheck", ResourceId = hc_id }
    local tagged
    for _, t in ipairs(tags.ResourceTagSet.Tags or {}) do
      if t.Key == "fo:stack" and t.Value == stack then tagged = true end
    end
    if not tagged then
      stop(EXIT.usage, ("health check %s has no tag fo:stack=%s: the game day changes nothing "
        .. "the stack did not create; nothing was changed"):format(hc_id, stack))
    end
    local hc = r53:GetHealthCheck{ HealthCheckId = hc_id }.HealthCheck
    local cfg = hc.HealthCheckConfig
    original = { Inverted = cfg.Inverted == true, Disabled = cfg.Disabled == true,
      version = hc.HealthCheckVersion }
    if original.Inverted or original.Disabled then
      stop(EXIT.usage, ("health check %s is already %s: a game day starts from the check as "
        .. "the stack made it (aws route53 update-health-check --health-check-id %s "
        .. "--no-inverted --no-disabled); nothing was changed"):format(hc_id,
        original.Inverted and "inverted" or "disabled", hc_id))
    end
    local interval, threshold = cfg.RequestInterval or 30, cfg.FailureThreshold or 3
    local limit = interval * threshold + M.SLACK
    -- Route 53 throttles these reads (GetHealthCheckStatus is "not for high query rates"):
    -- a read refused after the client's own retries is tried again at the next poll, up to
    -- ten polls, rather than ending the game day.
    local function patient(op, input)
      for attempt = 1, 10 do
        local ok, res = pcall(r53[op], r53, input)
        if ok then return res end
        if not (type(res) == "table" and res.code == "Throttling") or attempt == 10 then
          error(res, 0)
        end
        pause(M.POLL)
      end
    end
    local function dns()
      local a = patient("TestDNSAnswer", { HostedZoneId = o.hosted_zone_id,
        RecordName = o.app_dns_name, RecordType = "A" })
      return a.RecordData or {}, a.ResponseCode
    end
    local function observations()
      return patient("GetHealthCheckStatus", { HealthCheckId = hc_id }).HealthCheckObservations
        or {}
    end
    -- before: healthy, and the answer is the primary's
    local before, rcode = dns()
    local _, n, healthy = verdict.track(verdict.new(threshold, true, 0, false), observations())
    if #before == 0 or rcode ~= "NOERROR" or not healthy then
      stop(EXIT.usage, ("the primary is not serving now (Route 53: %s of the checkers; DNS "
        .. "%s %s): a game day starts from a healthy stack; nothing was changed")
        :format(healthy and "healthy for most" or "unhealthy for most", tostring(rcode),
          join(before)))
    end
    agree(opts, out, stack, doc.account, hc_id)
    out.say("Game day on stack %s (account %s): Route 53 health check %s of the primary (%s)",
      stack, doc.account, hc_id, o.primary_region)
    out.say("  before: Inverted false, Disabled false, version %d; %d checkers; %s answers %s "
      .. "(the primary's load balancer)", original.version, n, o.app_dns_name, join(before))
    out.say("  expected: unhealthy %d-%d s after the change (interval %d s x threshold %d), "
      .. "then the DNS answer moves to the standby", interval * (threshold - 1), interval
      * threshold, interval, threshold)

    watch()
    check_stop()
    local changed, up = pcall(r53.UpdateHealthCheck, r53, { HealthCheckId = hc_id,
      HealthCheckVersion = original.version, Inverted = true })
    if not changed then
      -- the answer was lost (a timeout, a dropped connection) but the change may be made:
      -- read it, so that the way out sets it back
      local read, cur = pcall(r53.GetHealthCheck, r53, { HealthCheckId = hc_id })
      if read and cur.HealthCheck.HealthCheckConfig.Inverted then
        inverted_version = cur.HealthCheck.HealthCheckVersion
      end
      error(up, 0)
    end
    inverted_version = up.HealthCheck.HealthCheckVersion
    local t_inv = fo.time()
    out.step("inverted", t_inv, t_inv, ("health check inverted (version %d): Route 53 now "
      .. "reads the primary's success as a failure"):format(inverted_version),
      { version = inverted_version })

    -- Wait for Route 53 to call it unhealthy and for the answer to move.
    local function follow(since, inverted, want_healthy, want_primary, what)
      local tr = verdict.new(threshold, not want_healthy, since, inverted)
      local seen_h, seen_dns, last_count
      while not (seen_h and seen_dns) do
        if fo.time() - since > limit then
          stop(EXIT.cloud, ("%s: Route 53 did not %s within %d s (%s)"):format(what,
            not seen_h and (want_healthy and "call the check healthy" or "call the check unhealthy")
            or "move the DNS answer", limit, seen_h and "the check flipped" or "no flip"))
        end
        local h, total, says_healthy, flipped = verdict.track(tr, observations())
        local flips = not seen_h and says_healthy == want_healthy
        if h ~= last_count and not flips then
          out.step("checkers", fo.time(), since, ("checkers: %d of %d see it healthy"):format(h,
            total), { healthy_checkers = h, checkers = total })
        end
        last_count = h
        if flips then
          seen_h = flipped or fo.time()
          out.step(want_healthy and "healthy" or "unhealthy", seen_h, since, ("Route 53 calls "
            .. "the check %s: %d of %d checkers healthy (%s 18 %%), at the checkers' time")
            :format(want_healthy and "healthy" or "unhealthy", h, total,
              want_healthy and ">" or "<="), { healthy_checkers = h, checkers = total })
        end
        local answer = dns()
        local is_primary = overlaps(answer, before)
        if not seen_dns and #answer > 0 and is_primary == want_primary then
          seen_dns = fo.time()
          out.step("dns", seen_dns, since, ("TestDNSAnswer %s: %s (%s)"):format(o.app_dns_name,
            join(answer), want_primary and "the primary's load balancer" or "no longer the "
            .. "primary's: the standby's"), { answer = answer, side = want_primary and "primary"
            or "standby" })
        end
        if not (seen_h and seen_dns) then pause(M.POLL) end
      end
      return seen_h - since, seen_dns - since
    end

    summary.to_unhealthy, summary.to_switch = follow(t_inv, true, false, false, "failover")
    -- the standby serves
    local p = probe(o, cfg)
    summary.probe = p
    local said = (p.redirected and ("%d, then GET %s -> "):format(p.redirected.status, p.url)
      or "") .. (p.status and tostring(p.status) or "") .. (p.error and ((p.status and " (" or "")
      .. p.error .. (p.status and ")" or "")) or "")
    out.step("probe", fo.time(), t_inv, ("standby probe: GET %s (via %s) -> %s"):format(
      p.redirected and p.redirected.from or p.url, bare(o.standby_alb_dns_name), said),
      { ok = p.ok, status = p.status, url = p.redirected and p.redirected.from or p.url,
        redirect_url = p.redirected and p.url or nil, error = p.error })
    if not p.ok then
      stop(EXIT.cloud, ("the standby did not serve: GET %s answered %s"):format(
        p.redirected and p.redirected.from or p.url, said))
    end
    check_stop()
    if not restore("the game day's failover is measured") then
      stop(EXIT.cloud, "the health check could not be set back")
    end
    -- the check is as the stack made it: an apply no longer fights the game day, which
    -- only reads Route 53 from here on, so the lock goes now
    facts.lock:unlock()
    facts.lock = nil
    summary.to_healthy, summary.to_failback = follow(restored.at, false, true, true, "failback")
  end)
  local code = EXIT.ok
  if not ok then
    local e = err
    if not (type(err) == "table" and err.game_day) then
      local d = require("fo.engine.report").describe_error(err)
      -- an engine error (an unreadable state file: 1) keeps its kind's exit code; an AWS
      -- or transport error is a cloud error
      local errors = require "fo.engine.errors"
      e = { code = d.kind and errors.exit_code(d) or EXIT.cloud, text = d.text, detail = d }
    end
    code = e.code
    -- (still watching signals: a second Ctrl-C does not cut the restore short)
    local restored_ok = restore(e.text)
    if not restored_ok then code = EXIT.cloud end
    out.emit("error", { error = e.detail or { text = e.text } })
    out.err(("fo-run: --game-day: %s%s\n"):format(e.text, inverted_version and (restored_ok
      and "; the health check was set back" or "") or ""))
  end
  watching = false
  signal.cancel()
  if facts.lock then facts.lock:unlock() end
  local function secs(v) return v and ("%.1f s"):format(v) or "-" end
  local text
  if code == EXIT.ok then
    text = ("Game day complete: unhealthy after %s, DNS on the standby after %s, standby "
      .. "answered %s; failback: healthy after %s, DNS back after %s."):format(
      secs(summary.to_unhealthy), secs(summary.to_switch), tostring(summary.probe.status),
      secs(summary.to_healthy), secs(summary.to_failback))
  else
    text = ("Game day stopped (exit %d)%s."):format(code, inverted_version
      and (restored and "; the health check was set back" or "; THE HEALTH CHECK IS STILL "
      .. "INVERTED") or "; nothing was changed")
  end
  local function r(v) return v and math.floor(v * 10 + 0.5) / 10 or nil end
  out.emit("game_day_summary", { stack = facts.stack, health_check_id = hc_id,
    seconds_to_unhealthy = r(summary.to_unhealthy), seconds_to_dns_switch = r(summary.to_switch),
    probe_status = summary.probe and summary.probe.status, probe_ok = summary.probe
    and summary.probe.ok, seconds_to_healthy = r(summary.to_healthy),
    seconds_to_failback = r(summary.to_failback), restored = restored ~= nil or nil,
    exit_code = code, text = text })
  out.emit("summary", { status = code == EXIT.ok and "ok" or code == INTERRUPTED
    and "interrupted" or (code == EXIT.usage or code == EXIT.lock) and "error" or "failed",
    text = text,
    exit_code = code, seconds = math.floor((fo.time() - out.t0) * 1000 + 0.5) / 1000,
    stack = facts.stack, mode = "game-day", target = "aws",
    done = { create = 0, update = 0, replace = 0, delete = 0, rollback = 0 },
    failed = code == EXIT.ok and 0 or 1, interrupted = code == INTERRUPTED or nil })
  if code == EXIT.ok then out.say("%s", text) else out.err(text .. "\n") end
  return code
end

return M
