-- What one fo-run start costs, measured in one run and printed as ratios (docs/runtime.md,
-- "Start-up"): `fo-run -e ''` against the stock interpreter `lua5.4 -e ''` (Debian's lua5.4
-- package), the two started alternately N times each so that both see the same machine;
-- `/bin/true` beside them is the cost of starting any process from here (fork, exec, the
-- pipes and the wait), which the second ratio takes off both. A `--plan` of a one-resource
-- recipe on the simulator shows what a small recipe run costs on top.
-- usage: fo-run bench/startup.lua [N]   (from the repository root; N defaults to 200)
local N = tonumber(arg[1] or "200")
local fo_run = arg[-1] or "fo-run"

local function tmpdir()
  local r = fo.process.run{ argv = { "mktemp", "-d" } }
  return (r.stdout:gsub("%s+$", ""))
end

-- (before the scratch directory: a missing baseline leaves nothing behind)
local found, probe = pcall(fo.process.run, { argv = { "lua5.4", "-v" } })
if not (found and probe.code == 0) then
  io.stderr:write("bench/startup.lua: the baseline interpreter lua5.4 is not installed "
    .. "(apt-get install lua5.4)\n")
  os.exit(2)
end

local dir = tmpdir()
local recipe = dir .. "/tiny.lua"
local f = assert(io.open(recipe, "w"))
f:write('require "fo.aws.resources"\nfo.resource("aws:sns:topic", "alerts", { name = "alerts" })\n')
f:close()

local commands = {
  { name = "fo-run -e ''", argv = { fo_run, "-e", "" } },
  { name = "lua5.4 -e ''", argv = { "lua5.4", "-e", "" } },
  { name = "/bin/true", argv = { "/bin/true" } },
  { name = "fo-run --plan (1 resource)",
    argv = { fo_run, "--plan", "--state-dir", dir .. "/state", recipe } },
}

local times = {}
for i = 1, #commands do times[i] = {} end
for round = 1, N do
  -- The order turns each round, so no command always follows the same one.
  for k = 0, #commands - 1 do
    local i = (round + k) % #commands + 1
    local c = commands[i]
    local t0 = fo.now()
    local r = fo.process.run{ argv = c.argv, timeout = 60 }
    times[i][#times[i] + 1] = fo.now() - t0
    assert(r.code == 0, c.name .. " failed: " .. r.stderr)
  end
end
fo.process.run{ argv = { "rm", "-rf", dir } }

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local m = {}
for i, c in ipairs(commands) do
  m[i] = median(times[i])
  print(("%-28s median %6.2f ms  (%d runs)"):format(c.name, m[i] * 1000, N))
end
local fo_e, lua_e, spawn, plan = m[1], m[2], m[3], m[4]
print(("fo-run -e '' / lua5.4 -e ''                 %.2f"):format(fo_e / lua_e))
print(("the same above /bin/true (start-up only)    %.2f"):format(
  (fo_e - spawn) / math.max(lua_e - spawn, 1e-6)))
print(("fo-run --plan (1 resource) / lua5.4 -e ''   %.2f"):format(plan / lua_e))
