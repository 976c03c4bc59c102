-- Temporary credentials that expire in the middle of a long apply: `fo-run --target aws`
-- with an assume-role profile (15-minute sessions) against a served simulator whose clock
-- jumps past a session's expiration once it has signed a few requests (one operation at a
-- time, so that which request meets the expiry does not depend on scheduling). Each expired session is answered ExpiredToken, fo
-- assumes the role again and the apply carries on to the end, as it must on AWS when an
-- apply outlives its role session.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local json = require "fo.json"

local RECIPE = [[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
for i = 1, 6 do
  fo.resource("test:subnet", "s" .. i, { vpc_id = vpc.id, cidr = ("10.0.%%d.0/24"):format(i) })
end
fo.resource("test:topic", "t", { name = "t" })
]]

function test_an_apply_outliving_its_role_session_renews_it_and_completes()
  local dir = testlib.tmpdir()
  local sim = require("fo.sim").new{ seed = "long-run" }
  -- Time passes as the run goes: once a session has signed two requests, the clock
  -- moves past its expiration (later sessions, issued later, stay valid).
  local uses = {}
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    local akid = (req.headers.authorization or ""):match("Credential=(ASIA%w+)/")
    if akid then
      uses[akid] = (uses[akid] or 0) + 1
      local k = sim.keys[akid]
      if uses[akid] == 3 and k and k.expires > sim:now() then sim:advance(k.expires - sim:now() + 1) end
    end
    return (sim:handle(req))
  end }
  local key = require("fo.sim").DEFAULT_KEY
  local arn = sim:invoke("iam", "us-east-1", "CreateRole", { RoleName = "deployer",
    AssumeRolePolicyDocument = json.encode{ Version = "2012-10-17", Statement = { {
      Effect = "Allow", Action = "sts:AssumeRole",
      Principal = { AWS = "arn:aws:iam::123456789012:root" } } } } }).Role.Arn
  fo.fs.mkdir_p(dir .. "/.aws", tonumber("700", 8))
  testlib.write(dir .. "/.aws/credentials", ("[base]\naws_access_key_id = %s\n"
    .. "aws_secret_access_key = %s\n"):format(key.access_key, key.secret_key))
  testlib.write(dir .. "/.aws/config", ("[profile deploy]\nrole_arn = %s\nsource_profile = base\n"
    .. "duration_seconds = 900\nregion = us-east-1\n"):format(arn))
  testlib.write(dir .. "/net.lua", RECIPE:format(testlib.tests_dir))
  local r = testlib.run_fo({ "--yes", "--parallel", "1", "--target", "aws", "--stack", "prod", dir .. "/net.lua" },
    { env = { HOME = dir, FO_STATE_DIR = dir .. "/.fo", AWS_PROFILE = "deploy",
      AWS_ACCESS_KEY_ID = false, AWS_SECRET_ACCESS_KEY = false, AWS_SESSION_TOKEN = false,
      AWS_CONFIG_FILE = false, AWS_SHARED_CREDENTIALS_FILE = false, AWS_REGION = false,
      AWS_EC2_METADATA_DISABLED = "true",
      AWS_ENDPOINT_URL = ("http://127.0.0.1:%d"):format(srv.port) }, timeout = 120 })
  srv:close()
  local out = r.stdout .. r.stderr
  lu.assertEquals(r.code, 0, out)
  lu.assertStrContains(r.stdout, "8 created")
  -- the sessions did expire mid-run, and were renewed each time
  local expired = sim:count{ code = "ExpiredToken" } + sim:count{ code = "RequestExpired" }
  lu.assertTrue(expired >= 3, "too few calls met an expired session: " .. out)
  lu.assertTrue(sim:count{ service = "sts", operation = "AssumeRole" } >= expired + 1)
  local state = json.decode(testlib.read(dir .. "/.fo/prod.state.json"))
  local n = 0
  for _ in pairs(state.resources) do n = n + 1 end
  lu.assertEquals(n, 8)
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
