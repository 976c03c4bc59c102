-- A loopback HTTP server (run as its own fo-run process) that holds every request until
-- `want` requests are in flight at once (or a deadline passes), then answers each with
-- the highest number of requests it saw in flight. Exits after `want` requests.
-- usage: fo-run hold_server.lua PORTFILE WANT
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local testlib = require "support.testlib"

local portfile, want = arg[1], tonumber(arg[2] or "200")
local in_flight, max_in_flight, served = 0, 0, 0
local waiting = {}
local deadline = fo.now() + 20

local srv, closed
srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
  in_flight = in_flight + 1
  if in_flight > max_in_flight then max_in_flight = in_flight end
  while max_in_flight < want and fo.now() < deadline do fo.sleep(0.005) end
  in_flight = in_flight - 1
  served = served + 1
  if served == want then srv:close(); closed = true end
  return { status = 200, body = tostring(max_in_flight) }
end }
testlib.publish_port(portfile, srv.port)

-- Never outlive a test that gave up: close after the deadline whatever happened.
while not closed and fo.now() < deadline + 5 do fo.sleep(0.1) end
if not closed then srv:close() end
