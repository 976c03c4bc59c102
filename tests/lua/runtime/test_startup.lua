-- What an fo-run start loads (docs/runtime.md, "Start-up"): the shared libraries a run
-- needs only for some of its work — libcurl (and the TLS stacks it links) for HTTP,
-- libmicrohttpd (and GnuTLS) to serve HTTP, libcrypto for hashes and signatures, libedit
-- for the REPL's line editing — are
-- mapped when the run first needs them, not at start. Read from the process's own
-- /proc/self/maps, so no timing is involved.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"

-- A child fo-run's answer: which of the libraries are mapped after `code` ran.
local function loaded_after(code)
  local probe = code .. [[
    local f = assert(io.open("/proc/self/maps")); local maps = f:read("a"); f:close()
    for _, lib in ipairs{ "libcurl", "libmicrohttpd", "libgnutls", "libcrypto", "libssl", "libedit" } do
      if maps:find(lib .. "[%.%-]") then io.write(lib, " ") end
    end]]
  local r = fo.process.run{ argv = { os.getenv("FO_RUN") or arg[-1], "-e", probe } }
  lu.assertEquals(r.code, 0, r.stderr)
  local set = {}
  for lib in r.stdout:gmatch("%S+") do set[lib] = true end
  return set
end

function test_an_empty_run_loads_no_http_tls_or_crypto_library()
  lu.assertEquals(loaded_after(""), {})
end

function test_the_aws_table_and_timers_load_nothing_more()
  -- `aws` and the event loop's timers and child processes come without HTTP.
  lu.assertEquals(loaded_after("assert(aws.ec2); fo.sleep(0.01); fo.process.run{argv={'true'}}"),
    {})
end

function test_the_repl_input_loads_libedit()
  lu.assertEquals(loaded_after("assert(require('fo.edit').open)"), { libedit = true })
end

function test_hashing_loads_libcrypto_only()
  local set = loaded_after("assert(#fo.crypto.sha256('x') >= 32)")
  lu.assertTrue(set.libcrypto)
  lu.assertNil(set.libcurl)
  lu.assertNil(set.libmicrohttpd)
end

function test_the_first_http_request_loads_libcurl_and_works()
  local set = loaded_after([[
    local ok, err = pcall(fo.http.request, { url = "http://127.0.0.1:1/", connect_timeout = 2 })
    assert(not ok and err.kind == "connect", tostring(err))]])
  lu.assertTrue(set.libcurl)
  lu.assertNil(set.libmicrohttpd) -- (Debian's libcurl4 brings GnuTLS too, through librtmp)
end

function test_serving_http_loads_libmicrohttpd()
  local set = loaded_after([[
    local s = fo.httpd.listen{ port = 0, handler = function() return { status = 204 } end }
    assert(fo.http.request{ url = "http://127.0.0.1:" .. s.port .. "/" }.status == 204)
    s:close()]])
  lu.assertTrue(set.libmicrohttpd)
  lu.assertTrue(set.libcurl)
end

os.exit(lu.LuaUnit.run())
