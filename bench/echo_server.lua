-- A minimal loopback server for benchmarks: answers "ok" to everything until GET /quit
-- (or 120 s pass). usage: fo-run bench/echo_server.lua PORTFILE
local portfile = arg[1]
local srv, quitting
srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
  if req.path == "/quit" then
    quitting = true
    fo.spawn(function() srv:close() end)
  end
  return { status = 200, body = "ok" }
end }
local tmp = portfile .. ".tmp"
local f = assert(io.open(tmp, "w"))
f:write(srv.port, "\n")
f:close()
assert(os.rename(tmp, portfile))
local deadline = fo.now() + 120
fo.spawn(function()
  -- The watchdog ends with the server, so that /quit lets the process exit at once.
  while not quitting and fo.now() < deadline do fo.sleep(0.05) end
  if not quitting then srv:close() end
end)
