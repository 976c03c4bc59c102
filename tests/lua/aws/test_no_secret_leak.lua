-- Secrets never appear in any output: a child fo-run with FO_LOG=trace makes AWS calls
-- that fail in every way (service errors echoing the secret, retries, transport errors,
-- a failing credential_process) and every byte it prints is searched for the secrets.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"

local SECRET = "leakcheckSECRETkey0123456789abcdefABCDEF"
local TOKEN = "leakcheckTOKEN9876543210zyxwvutsrqponmlk"

function test_trace_output_and_errors_never_contain_secrets()
  -- The server echoes back every header it got, including the session token, inside an
  -- error message: the client must still print nothing secret.
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    local echo = {}
    for k, v in pairs(req.headers) do echo[#echo + 1] = k .. "=" .. v end
    return { status = 400, body = "<ErrorResponse><Error><Code>Throttling</Code><Message>"
      .. fo.xml.escape(table.concat(echo, " ") .. " " .. SECRET) .. "</Message></Error></ErrorResponse>" }
  end }
  local dir = testlib.tmpdir()
  local script = dir .. "/leak.lua"
  testlib.write(script, ([[
local ok, e = pcall(fo.aws.call, { service = "sts", operation = "GetCallerIdentity",
  region = "eu-south-1", endpoint = "http://127.0.0.1:%d", body = "Action=GetCallerIdentity" })
print("error:", tostring(e), e.message)
ok, e = pcall(fo.aws.call, { service = "sts", operation = "GetCallerIdentity",
  region = "eu-south-1", endpoint = "http://127.0.0.1:1", body = "x" })
print("error:", tostring(e))
error(e)
]]):format(srv.port))
  local r = testlib.run_fo({ script }, { env = { FO_LOG = "trace", AWS_ACCESS_KEY_ID = "AKIDLEAK",
    AWS_SECRET_ACCESS_KEY = SECRET, AWS_SESSION_TOKEN = TOKEN, AWS_MAX_ATTEMPTS = "2",
    AWS_EC2_METADATA_DISABLED = "true" } })
  srv:close()
  testlib.rmtree(dir)
  local out = r.stdout .. r.stderr
  lu.assertEquals(r.code, 1)
  lu.assertStrContains(out, "aws call service=sts operation=GetCallerIdentity")
  lu.assertStrContains(out, "aws retry")
  lu.assertStrContains(out, "Throttling")
  lu.assertStrContains(out, "AKIDLEAK") -- the access key id is not a secret
  lu.assertNotStrContains(out, SECRET)
  lu.assertNotStrContains(out, TOKEN)
end

os.exit(lu.LuaUnit.run())
