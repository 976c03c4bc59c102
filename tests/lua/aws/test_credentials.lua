-- The credentials chain: each source (env, credentials file, config file profiles,
-- credential_process with Expiration and refresh, IMDSv2 on a loopback fake), the order
-- between them, and the one message that lists what was tried when nothing works.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local credentials = require "fo.aws.credentials"

local dir
TestCredentials = {}
local function env_of(t) return function(k) return t[k] end end

function TestCredentials.setUp() dir = testlib.tmpdir() end
function TestCredentials.tearDown() testlib.rmtree(dir) end

local function base_env(extra)
  local e = { HOME = dir, AWS_EC2_METADATA_DISABLED = "true" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

function TestCredentials.test_environment_comes_first()
  testlib.write(dir .. "/creds", "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n")
  local c = credentials.resolve{ env = env_of(base_env{ AWS_ACCESS_KEY_ID = "ENVKEY",
    AWS_SECRET_ACCESS_KEY = "envsecret", AWS_SESSION_TOKEN = "envtoken",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds" }) }
  lu.assertEquals(c.access_key, "ENVKEY")
  lu.assertEquals(c.session_token, "envtoken")
  lu.assertEquals(c.source, "environment")
end

function TestCredentials.test_credentials_file_profile_from_aws_profile()
  testlib.write(dir .. "/creds", "# comment\n[default]\naws_access_key_id = D\naws_secret_access_key = d\n\n"
    .. "[trading]\naws_access_key_id = TKEY ; note\naws_secret_access_key = tsecret\naws_session_token = ttok\n")
  local c = credentials.resolve{ env = env_of(base_env{ AWS_PROFILE = "trading",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds" }) }
  lu.assertEquals({ c.access_key, c.secret_key, c.session_token }, { "TKEY", "tsecret", "ttok" })
  lu.assertStrContains(c.source, "profile trading")
end

function TestCredentials.test_config_file_profile_section_and_credentials_file_wins()
  testlib.write(dir .. "/config", "[profile ops]\nregion = eu-south-1\naws_access_key_id = CFG\n"
    .. "aws_secret_access_key = cfgsecret\n")
  local c = credentials.resolve{ profile = "ops", env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }) }
  lu.assertEquals(c.access_key, "CFG")
  testlib.write(dir .. "/creds", "[ops]\naws_access_key_id = CRED\naws_secret_access_key = credsecret\n")
  c = credentials.resolve{ profile = "ops", env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds" }) }
  lu.assertEquals(c.access_key, "CRED")
end

function TestCredentials.test_credential_process_with_expiration_and_refresh()
  local counter = dir .. "/count"
  local script = dir .. "/helper.sh"
  -- Each run counts itself and prints credentials that expire in 60 s (inside the
  -- 5-minute refresh window, so the next get() must run the process again).
  testlib.write(script, ([[#!/bin/sh
n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s
exp=$(date -u -d '+60 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)
printf '{"Version": 1, "AccessKeyId": "PROC%%s", "SecretAccessKey": "procsecret", "SessionToken": "proctoken", "Expiration": "%%s"}' $n $exp
]]):format(counter, counter), "755")
  testlib.write(dir .. "/config", ("[profile p]\ncredential_process = %s --flag 'a b'\n"):format(script))
  local env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" })
  local provider = credentials.provider{ profile = "p", env = env }
  local c1 = provider:get()
  lu.assertEquals(c1.access_key, "PROC1")
  lu.assertEquals(c1.session_token, "proctoken")
  lu.assertTrue(c1.expiration > os.time())
  local c2 = provider:get()
  lu.assertEquals(c2.access_key, "PROC2", "expiring credentials are refreshed")
  -- Concurrent callers during a refresh share one run of the process.
  local tasks = {}
  for i = 1, 5 do tasks[i] = fo.spawn(function() return provider:get().access_key end) end
  local keys = fo.all(tasks)
  for i = 1, 5 do lu.assertEquals(keys[i], "PROC3") end
  lu.assertEquals(testlib.read(counter), "3\n")
end

function TestCredentials.test_credential_process_failure_names_profile_and_hides_stdout()
  local script = dir .. "/bad.sh"
  testlib.write(script, "#!/bin/sh\necho SECRETSTDOUT\necho 'token expired' >&2\nexit 4\n", "755")
  testlib.write(dir .. "/config", ("[profile bad]\ncredential_process = %s\n"):format(script))
  local ok, err = pcall(credentials.resolve, { profile = "bad", env = env_of(base_env{
    AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }) })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "profile 'bad'")
  lu.assertStrContains(err, "exited with 4")
  lu.assertStrContains(err, "token expired")
  lu.assertNotStrContains(err, "SECRETSTDOUT")
end

function TestCredentials.test_imdsv2_on_a_loopback_fake()
  local seen = {}
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    seen[#seen + 1] = req.method .. " " .. req.path
    if req.method == "PUT" and req.path == "/latest/api/token" then
      if not req.headers["x-aws-ec2-metadata-token-ttl-seconds"] then return { status = 400 } end
      return { status = 200, body = "TOKEN123" }
    end
    if req.headers["x-aws-ec2-metadata-token"] ~= "TOKEN123" then return { status = 401 } end
    if req.path == "/latest/meta-data/iam/security-credentials/" then
      return { status = 200, body = "app-role" }
    end
    if req.path == "/latest/meta-data/iam/security-credentials/app-role" then
      return { status = 200, body = '{"Code":"Success","AccessKeyId":"IMDSKEY","SecretAccessKey":"imdssecret",'
        .. '"Token":"imdstoken","Expiration":"2099-01-01T00:00:00Z"}' }
    end
    return { status = 404 }
  end }
  local c = credentials.resolve{ env = env_of{ HOME = dir,
    AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. srv.port } }
  srv:close()
  lu.assertEquals({ c.access_key, c.secret_key, c.session_token }, { "IMDSKEY", "imdssecret", "imdstoken" })
  lu.assertEquals(c.expiration, credentials.epoch_of("2099-01-01T00:00:00Z"))
  lu.assertEquals(seen, { "PUT /latest/api/token", "GET /latest/meta-data/iam/security-credentials/",
                          "GET /latest/meta-data/iam/security-credentials/app-role" })
end

function TestCredentials.test_nothing_found_lists_every_source()
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function() return { status = 200 } end }
  local port = srv.port
  srv:close()
  local ok, err = pcall(credentials.resolve, { env = env_of{ HOME = dir,
    AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. port } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "no AWS credentials found")
  lu.assertStrContains(err, "environment: AWS_ACCESS_KEY_ID not set")
  lu.assertStrContains(err, "shared files: profile 'default' not in " .. dir .. "/.aws/credentials")
  lu.assertStrContains(err, "IMDS: no instance metadata service at http://127.0.0.1:" .. port)
  ok, err = pcall(credentials.resolve, { env = env_of(base_env()) })
  lu.assertStrContains(err, "IMDS: disabled by AWS_EC2_METADATA_DISABLED")
end

function TestCredentials.test_epoch_of_is_utc()
  lu.assertEquals(credentials.epoch_of("1970-01-01T00:00:00Z"), 0)
  lu.assertEquals(credentials.epoch_of("2015-08-30T12:36:00Z"), 1440938160)
end

function TestCredentials.test_split_command_like_shlex()
  lu.assertEquals(credentials.split_command([[/bin/x --a 'b c' "d \"e\"" f\ g]]),
    { "/bin/x", "--a", "b c", 'd "e"', "f g" })
end

os.exit(lu.LuaUnit.run())
