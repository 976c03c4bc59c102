-- What the adaptive mode's client-side rate limiter (lua/fo/aws/ratelimit.lua) buys: the
-- share of calls throttled, with and without it, and the wall time.
--
-- 1. Route 53 on the in-process simulator, whose API rate is a token bucket per account as
--    AWS documents it (burst 50, 10 requests/s; lua/fo/sim/route53/throttle.lua): TASKS
--    tasks each make CALLS GetHostedZone calls back to back (200 calls by default, four
--    times the burst). Standard mode sends as fast as backoff allows
--    and suffers the throttling it causes; adaptive mode keeps to the documented rate.
-- 2. EC2 with the simulator's random throttling (30% of calls, whatever the rate — as when
--    other callers use the account's budget): slowing down cannot help there, so this
--    shows the limiter's cost in time.
-- Figures: throttled answers / all answers, calls that failed for good, wall seconds.
-- usage: fo-run bench/retry_limiter.lua [TASKS] [CALLS]   (from the repository root)
local TASKS = tonumber(arg[1] or "20")
local CALLS = tonumber(arg[2] or "10")

local function run(mode, service, knobs, call)
  local sim = fo.sim.new(knobs)
  local setup = sim:client(service, { region = "us-east-1", max_attempts = 25 })
  local target = setup and call.prepare(setup)
  local client = sim:client(service, { region = "us-east-1", retry_mode = mode,
    max_attempts = 25 })
  local tasks, failed = {}, 0
  sim.recorder:clear()
  local started = fo.now()
  for i = 1, TASKS do
    tasks[i] = fo.spawn(function()
      for _ = 1, CALLS do
        local ok = pcall(call.run, client, target)
        if not ok then failed = failed + 1 end
      end
    end)
  end
  for _, t in ipairs(tasks) do t:join() end
  local seconds = fo.now() - started
  local all, throttled = 0, 0
  for _, c in ipairs(sim:calls{ service = service }) do
    all = all + 1
    if c.status == 400 or c.status == 503 then
      if c.code == "Throttling" or c.code == "RequestLimitExceeded" then
        throttled = throttled + 1
      end
    end
  end
  return { ratio = throttled / all, answers = all, failed = failed, seconds = seconds }
end

local ROUTE53 = {
  prepare = function(r53)
    return r53:CreateHostedZone{ Name = "bench.example.com", CallerReference = "bench" }
      .HostedZone.Id
  end,
  run = function(r53, id) return r53:GetHostedZone{ Id = id } end,
}
local EC2 = {
  prepare = function() return nil end,
  run = function(ec2) return ec2:DescribeVpcs{} end,
}

local function report(title, knobs, call, service)
  print(title)
  local rows = {}
  for _, mode in ipairs{ "standard", "adaptive" } do
    local r = run(mode, service, knobs, call)
    rows[mode] = r
    print(("  %-8s  throttled %5.1f%% of %4d answers   failed for good %3d   %6.1f s")
      :format(mode, 100 * r.ratio, r.answers, r.failed, r.seconds))
  end
  print(("  adaptive/standard: throttled-call ratio %.2f, wall time %.2f"):format(
    rows.adaptive.ratio / math.max(rows.standard.ratio, 1e-9),
    rows.adaptive.seconds / rows.standard.seconds))
end

print(("%d tasks x %d calls, 25 attempts per call"):format(TASKS, CALLS))
report("Route 53, documented rate limit (burst 50, 10/s per account):", {}, ROUTE53, "route53")
report("EC2, 30% of calls throttled at random:", { throttle = 0.3 }, EC2, "ec2")
