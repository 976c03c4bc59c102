-- fo.http: requests on the event loop against loopback servers — round trips, headers,
-- errors, keep-alive reuse, and 200 requests in flight at once counted by the server.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"

local function with_server(handler, fn)
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = handler }
  local ok, err = pcall(fn, "http://127.0.0.1:" .. srv.port, srv)
  srv:close()
  if not ok then error(err, 0) end
end

function test_round_trip_carries_method_target_headers_and_body()
  local seen
  with_server(function(req)
    seen = req
    return { status = 201, headers = { ["X-Reply"] = "yes", ["Content-Type"] = "text/plain" },
             body = "created" }
  end, function(base)
    local r = fo.http.request{ method = "PUT", url = base .. "/a/b?x=1&y", body = "payload",
                               headers = { ["X-Custom"] = "v", ["Content-Type"] = "text/x" } }
    lu.assertEquals(r.status, 201)
    lu.assertEquals(r.body, "created")
    lu.assertEquals(r.headers["x-reply"], "yes")
    lu.assertEquals(r.headers["content-type"], "text/plain")
  end)
  lu.assertEquals(seen.method, "PUT")
  lu.assertEquals(seen.target, "/a/b?x=1&y")
  lu.assertEquals(seen.path, "/a/b")
  lu.assertEquals(seen.query, "x=1&y")
  lu.assertEquals(seen.body, "payload")
  lu.assertEquals(seen.headers["x-custom"], "v")
  lu.assertEquals(seen.headers["content-type"], "text/x")
end

function test_no_header_is_added_that_the_caller_did_not_set()
  -- Bytes sent must be bytes signed: curl's default Content-Type/Accept/Expect are removed.
  local seen
  with_server(function(req) seen = req.headers; return { status = 200, body = "" } end,
    function(base)
      fo.http.request{ method = "POST", url = base .. "/", body = string.rep("x", 2048) }
    end)
  lu.assertNil(seen["content-type"])
  lu.assertNil(seen["accept"])
  lu.assertNil(seen["expect"])
  lu.assertEquals(seen["content-length"], "2048")
end

function test_get_without_body_and_empty_response()
  with_server(function(req)
    return { status = 204, body = "" }
  end, function(base)
    local r = fo.http.request{ url = base .. "/" }
    lu.assertEquals(r.status, 204)
    lu.assertEquals(r.body, "")
  end)
end

function test_timeout_raises_structured_error()
  with_server(function() fo.sleep(2); return { status = 200 } end, function(base)
    local ok, err = pcall(fo.http.request, { url = base .. "/slow", timeout = 0.2 })
    lu.assertFalse(ok)
    lu.assertEquals(err.kind, "timeout")
    lu.assertEquals(err.url, base .. "/slow")
    lu.assertStrContains(tostring(err), "timeout")
  end)
end

function test_connection_refused_raises_connect_error()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function() end }
  local port = srv.port
  srv:close()
  local ok, err = pcall(fo.http.request, { url = "http://127.0.0.1:" .. port .. "/" })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "connect")
  lu.assertStrContains(err.message, "onnect")
end

function test_bad_arguments_are_lua_errors_naming_the_field()
  lu.assertErrorMsgContains("url must be a string", fo.http.request, {})
  lu.assertErrorMsgContains("timeout must be a positive number",
    fo.http.request, { url = "http://127.0.0.1:1/", timeout = -1 })
  lu.assertErrorMsgContains("headers must", fo.http.request,
    { url = "http://127.0.0.1:1/", headers = "x" })
  local ok, err = pcall(fo.http.request, { url = "ftp://127.0.0.1/" })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "url")
end

function test_keep_alive_reuses_the_connection_per_host()
  local remotes = {}
  with_server(function(req)
    remotes[#remotes + 1] = req.remote
    return { status = 200, body = "ok" }
  end, function(base)
    for _ = 1, 5 do fo.http.request{ url = base .. "/" } end
  end)
  lu.assertEquals(#remotes, 5)
  for i = 2, 5 do lu.assertEquals(remotes[i], remotes[1]) end
end

function test_request_outside_a_task_is_refused()
  local co = coroutine.create(function() return fo.http.request{ url = "http://127.0.0.1:1/" } end)
  local ok, err = coroutine.resume(co)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "must run in a task of the fo event loop")
end

function test_200_requests_from_200_coroutines_are_in_flight_at_once()
  -- The server is a separate fo-run process; it counts requests in flight on its side
  -- and holds each one until it has seen 200 at the same time.
  local port, server = testlib.start_server(testlib.tests_dir .. "/lua/support/hold_server.lua",
    { "200" })
  local tasks = {}
  for i = 1, 200 do
    tasks[i] = fo.spawn(function()
      return fo.http.request{ url = ("http://127.0.0.1:%d/%d"):format(port, i), timeout = 30 }
    end)
  end
  local responses = fo.all(tasks)
  for i = 1, 200 do
    lu.assertEquals(responses[i].status, 200)
    lu.assertEquals(tonumber(responses[i].body), 200, "server saw fewer than 200 in flight")
  end
  local r = server:join()
  lu.assertEquals(r.code, 0, r.stderr)
end

-- A self-signed certificate for 127.0.0.1, made for this run with the openssl CLI.
local function self_signed()
  local dir = testlib.tmpdir()
  local r = fo.process.run{ argv = { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
    "-keyout", dir .. "/key.pem", "-out", dir .. "/cert.pem", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1" } }
  assert(r.code == 0, r.stderr)
  return dir, testlib.read(dir .. "/cert.pem"), testlib.read(dir .. "/key.pem")
end

function test_tls_certificates_are_verified()
  local dir, cert, key = self_signed()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, tls_cert = cert, tls_key = key,
                               handler = function() return { status = 200, body = "secure" } end }
  local url = "https://127.0.0.1:" .. srv.port .. "/"
  -- Not in the system CA store: refused.
  local ok, err = pcall(fo.http.request, { url = url })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "tls")
  -- Trusted explicitly (as AWS_CA_BUNDLE does): accepted, and verification still ran.
  local r = fo.http.request{ url = url, ca_file = dir .. "/cert.pem" }
  lu.assertEquals(r.body, "secure")
  srv:close()
  testlib.rmtree(dir)
end

-- connect_to: the URL's name stays what is asked (Host, the TLS name, the certificate's
-- check) while the connection goes elsewhere, as the game day's probe of one load balancer
-- of an app's name; with a certificate from fo.crypto.self_signed for that name.
function test_connect_to_keeps_the_name_and_verifies_it()
  local cert, key = fo.crypto.self_signed{ names = { "app.example.test" }, days = 1 }
  lu.assertStrContains(cert, "-----BEGIN CERTIFICATE-----")
  lu.assertStrContains(key, "PRIVATE KEY-----")
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, tls_cert = cert, tls_key = key,
    handler = function(req) return { status = 200, body = req.headers.host } end }
  local dir = testlib.tmpdir()
  fo.fs.write_atomic(dir .. "/ca.pem", cert)
  local to = ("app.example.test:%d:127.0.0.1:%d"):format(srv.port, srv.port)
  local r = fo.http.request{ url = ("https://app.example.test:%d/"):format(srv.port),
    connect_to = to, ca_file = dir .. "/ca.pem" }
  lu.assertEquals(r.status, 200)
  lu.assertEquals(r.body, "app.example.test:" .. srv.port)
  -- another name at the same address: the certificate does not name it
  local ok, err = pcall(fo.http.request, { url = ("https://other.example.test:%d/"):format(
    srv.port), connect_to = ("other.example.test:%d:127.0.0.1:%d"):format(srv.port, srv.port),
    ca_file = dir .. "/ca.pem" })
  lu.assertFalse(ok)
  lu.assertEquals(err.kind, "tls")
  lu.assertErrorMsgContains("connect_to must be a string", fo.http.request,
    { url = "http://127.0.0.1/", connect_to = 1 })
  lu.assertErrorMsgContains("give names or ips", fo.crypto.self_signed, {})
  srv:close()
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
