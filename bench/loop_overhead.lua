-- The event loop's overhead per request, measured in one run and printed as ratios:
--   fo.http sequential vs. the curl command line (same libcurl, same keep-alive, no loop),
--   the cost of one park/resume cycle of a task, and throughput at 100 in flight.
-- usage: fo-run bench/loop_overhead.lua [N]   (run from the repository root)
local N = tonumber(arg[1] or "2000")
local here = arg[0]:match("^(.*)/") or "."
local fo_run = arg[-1] or "fo-run"

local function tmpdir()
  local r = fo.process.run{ argv = { "mktemp", "-d" } }
  return (r.stdout:gsub("%s+$", ""))
end

-- Server in its own process so client and server do not share the loop.
local dir = tmpdir()
local portfile = dir .. "/port"
local server = fo.spawn(fo.process.run, { argv = { fo_run, here .. "/echo_server.lua", portfile },
                                          timeout = 300 })
local port
for _ = 1, 500 do
  local f = io.open(portfile)
  if f then port = tonumber(f:read("l")); f:close() end
  if port then break end
  fo.sleep(0.01)
end
assert(port, "echo server did not start")
local base = "http://127.0.0.1:" .. port

-- Warm up the connection.
for _ = 1, 50 do fo.http.request{ url = base .. "/w" } end

-- 1. fo.http, one request at a time (each one a park and a resume of this task).
local t0 = fo.now()
for i = 1, N do fo.http.request{ url = base .. "/s" .. i } end
local fo_seq = (fo.now() - t0) / N

-- 2. The curl command line, same requests in one process with keep-alive.
t0 = fo.now()
local r = fo.process.run{ argv = { "curl", "-s", ("%s/c[1-%d]"):format(base, N) }, timeout = 300 }
local curl_seq = (fo.now() - t0) / N
assert(r.code == 0 and #r.stdout == 2 * N, "curl baseline failed: " .. r.stderr)

-- 3. One park/resume cycle of a task (fo.sleep(0)): the loop's own cost.
t0 = fo.now()
for _ = 1, N * 10 do fo.sleep(0) end
local cycle = (fo.now() - t0) / (N * 10)

-- 4. 100 tasks in flight.
t0 = fo.now()
local per = N // 100
local tasks = {}
for k = 1, 100 do
  tasks[k] = fo.spawn(function()
    for i = 1, per do fo.http.request{ url = base .. "/p" .. k .. "-" .. i } end
  end)
end
fo.all(tasks)
local par = (fo.now() - t0) / (per * 100)

fo.http.request{ url = base .. "/quit" }
server:join()
fo.process.run{ argv = { "rm", "-rf", dir } }

local us = function(s) return s * 1e6 end
print(("requests: %d to a loopback server in another process"):format(N))
print(("fo.http sequential:          %8.1f us/request"):format(us(fo_seq)))
print(("curl CLI sequential:         %8.1f us/request"):format(us(curl_seq)))
print(("task park/resume cycle:      %8.2f us"):format(us(cycle)))
print(("fo.http, 100 in flight:      %8.1f us/request (%.0f requests/s)"):format(us(par), 1 / par))
print(("ratio fo.http / curl CLI:    %8.2f"):format(fo_seq / curl_seq))
print(("loop share of a request:     %8.2f %%"):format(100 * cycle / fo_seq))
