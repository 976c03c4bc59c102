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

function TestCredentials.test_message_format_lists_sources_in_order()
  local ok, err = pcall(credentials.resolve, { env = env_of(base_env()) })
  lu.assertFalse(ok)
  lu.assertStrMatches(err, "no AWS credentials found: environment: AWS_ACCESS_KEY_ID not set; "
    .. "assume%-role profile: profile 'default' has no role_arn; web identity: no "
    .. "AWS_WEB_IDENTITY_TOKEN_FILE or web_identity_token_file; SSO: profile 'default' has no "
    .. "sso_%* settings; shared files: profile 'default' not in .-; container: "
    .. "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set; IMDS: disabled by "
    .. "AWS_EC2_METADATA_DISABLED%..*")
end

function TestCredentials.test_empty_or_partial_environment_falls_through()
  testlib.write(dir .. "/creds", "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n")
  local c = credentials.resolve{ env = env_of(base_env{ AWS_ACCESS_KEY_ID = "",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds" }) }
  lu.assertEquals(c.access_key, "FILEKEY")
  local ok, err = pcall(credentials.resolve, { env = env_of(base_env{ AWS_ACCESS_KEY_ID = "ONLYID" }) })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "environment: AWS_SECRET_ACCESS_KEY not set")
end

function TestCredentials.test_default_files_under_home()
  fo.process.run{ argv = { "mkdir", "-p", dir .. "/.aws" } }
  testlib.write(dir .. "/.aws/config", "[default]\nregion = eu-south-1\naws_access_key_id = CFGDEF\n"
    .. "aws_secret_access_key = cfgdefsecret\n")
  local c = credentials.resolve{ env = env_of(base_env()) }
  lu.assertEquals(c.access_key, "CFGDEF")
  testlib.write(dir .. "/.aws/credentials", "[default]\naws_access_key_id = CREDDEF\n"
    .. "aws_secret_access_key = creddefsecret\n")
  c = credentials.resolve{ env = env_of(base_env()) }
  lu.assertEquals(c.access_key, "CREDDEF", "the credentials file wins over the config file")
end

function TestCredentials.test_profile_option_beats_aws_profile()
  testlib.write(dir .. "/creds", "[a]\naws_access_key_id = AKEY\naws_secret_access_key = asecret\n"
    .. "[b]\naws_access_key_id = BKEY\naws_secret_access_key = bsecret\n")
  local c = credentials.resolve{ profile = "b", env = env_of(base_env{ AWS_PROFILE = "a",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/creds" }) }
  lu.assertEquals(c.access_key, "BKEY")
end

function TestCredentials.test_explicit_missing_profile_is_an_error_not_a_fall_through()
  -- With IMDS reachable, a mistyped profile must not silently become the instance role.
  local hits = 0
  local srv = fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function()
    hits = hits + 1
    return { status = 500 }
  end }
  local env = { HOME = dir, AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. srv.port }
  local ok, err = pcall(credentials.resolve, { profile = "prod-admn", env = env_of(env) })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "AWS profile 'prod-admn' not found in " .. dir .. "/.aws/credentials or "
    .. dir .. "/.aws/config")
  env.AWS_PROFILE = "prod-admn"
  ok, err = pcall(credentials.resolve, { env = env_of(env) })
  lu.assertStrContains(err, "AWS profile 'prod-admn' not found")
  srv:close()
  lu.assertEquals(hits, 0)
  -- Environment credentials still come first, as in the SDKs.
  env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY = "ENVKEY", "envsecret"
  lu.assertEquals(credentials.resolve{ env = env_of(env) }.access_key, "ENVKEY")
end

function TestCredentials.test_profile_without_keys_or_process()
  testlib.write(dir .. "/config", "[profile r]\nregion = eu-south-1\n")
  local ok, err = pcall(credentials.resolve, { profile = "r", env = env_of(base_env{
    AWS_CONFIG_FILE = dir .. "/config" }) })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "shared files: profile 'r' has no aws_access_key_id/aws_secret_access_key "
    .. "or credential_process")
end

local function process_profile(body, name)
  local script = dir .. "/" .. (name or "helper") .. ".sh"
  testlib.write(script, "#!/bin/sh\n" .. body, "755")
  testlib.write(dir .. "/config", ("[profile p]\ncredential_process = %s\n"):format(script))
  return env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" })
end

function TestCredentials.test_credential_process_gets_its_arguments_without_a_shell()
  local out = dir .. "/args"
  local script = dir .. "/args.sh"
  testlib.write(script, ('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done > %s\n'
    .. 'echo \'{"Version": 1, "AccessKeyId": "K", "SecretAccessKey": "S3cretS3cret", "SessionToken": null}\'\n')
    :format(out), "755")
  testlib.write(dir .. "/config", ("[profile p]\ncredential_process = %s --role 'ops admin' \"x y\" $HOME|cat\n")
    :format(script))
  local c = credentials.resolve{ profile = "p", env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" }) }
  lu.assertEquals(testlib.read(out), "[--role]\n[ops admin]\n[x y]\n[$HOME|cat]\n")
  lu.assertNil(c.session_token, "JSON null is no token")
  lu.assertNil(c.expiration)
end

function TestCredentials.test_credential_process_bad_json_hides_stdout()
  local env = process_profile("echo 'AccessKeyId=LEAKY SecretAccessKey=SECRETSTDOUT'\n")
  local ok, err = pcall(credentials.resolve, { profile = "p", env = env })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "credential_process of profile 'p' (" .. dir .. "/helper.sh) did not print a JSON object")
  lu.assertNotStrContains(err, "SECRETSTDOUT")
  env = process_profile([[echo '{"Version": 2, "AccessKeyId": "K", "SecretAccessKey": "SECRETSTDOUT"}']] .. "\n")
  ok, err = pcall(credentials.resolve, { profile = "p", env = env })
  lu.assertStrContains(err, "printed Version 2; only Version 1 is supported")
  lu.assertNotStrContains(err, "SECRETSTDOUT")
  env = process_profile([[echo '{"Version": 1, "SecretAccessKey": "SECRETSTDOUT"}']] .. "\n")
  ok, err = pcall(credentials.resolve, { profile = "p", env = env })
  lu.assertStrContains(err, "without AccessKeyId and SecretAccessKey")
  lu.assertNotStrContains(err, "SECRETSTDOUT")
end

function TestCredentials.test_credential_process_that_cannot_start_or_hangs()
  testlib.write(dir .. "/config", "[profile p]\ncredential_process = /nonexistent/helper --x\n")
  local env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config", AWS_SHARED_CREDENTIALS_FILE = dir .. "/none" })
  local ok, err = pcall(credentials.resolve, { profile = "p", env = env })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "credential_process of profile 'p' (/nonexistent/helper)")
  -- exec: fo.process's deadline kills the child it started (a grandchild holding the
  -- pipes would keep the run waiting; reported to the fo.process owner).
  env = process_profile("exec sleep 5\n")
  local t0 = fo.now()
  ok, err = pcall(credentials.resolve, { profile = "p", env = env, process_timeout = 0.3 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "did not finish within")
  lu.assertTrue(fo.now() - t0 < 3)
end

function TestCredentials.test_credential_process_bad_expiration()
  local env = process_profile([[echo '{"Version": 1, "AccessKeyId": "K", "SecretAccessKey": "S3cretS3cret", "Expiration": "tomorrow"}']] .. "\n")
  lu.assertErrorMsgContains("Expiration 'tomorrow' is not an ISO 8601 UTC time", credentials.resolve,
    { profile = "p", env = env })
end

-- A fake IMDS whose credentials expire at `expires` and that counts token requests.
local function fake_imds(state)
  state.tokens, state.docs = 0, 0
  return fo.httpd.listen{ host = "127.0.0.1", port = 0, handler = function(req)
    if state.delay_first and state.tokens == 0 and req.method == "PUT" then
      state.tokens = state.tokens + 1
      fo.sleep(state.delay_first)
      return { status = 200, body = "LATE" }
    end
    if req.method == "PUT" then state.tokens = state.tokens + 1; return { status = 200, body = "T" } end
    if req.headers["x-aws-ec2-metadata-token"] ~= "T" then return { status = 401 } end
    if req.path == "/latest/meta-data/iam/security-credentials/" then
      if state.no_role then return { status = 404 } end
      return { status = 200, body = "role-a\n" }
    end
    state.docs = state.docs + 1
    if state.fail_docs then return { status = 500 } end
    return { status = 200, body = ('{"AccessKeyId":"IMDS%d","SecretAccessKey":"imdssecret%d","Token":"t%d",'
      .. '"Expiration":"%s"}'):format(state.docs, state.docs, state.docs, state.expires) }
  end }
end

function TestCredentials.test_imds_retries_once_after_a_timeout()
  local state = { delay_first = 0.6, expires = "2099-01-01T00:00:00Z" }
  local srv = fake_imds(state)
  local c = credentials.resolve{ imds_timeout = 0.2, env = env_of{ HOME = dir,
    AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. srv.port .. "/" } }
  lu.assertEquals(c.access_key, "IMDS1")
  lu.assertEquals(state.tokens, 2)
  lu.assertStrContains(c.source, "role-a")
  fo.sleep(0.5)
  srv:close()
end

function TestCredentials.test_imds_without_a_role()
  local state = { no_role = true }
  local srv = fake_imds(state)
  local ok, err = pcall(credentials.resolve, { env = env_of{ HOME = dir,
    AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. srv.port } })
  srv:close()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "IMDS: the instance has no IAM role (HTTP 404)")
end

function TestCredentials.test_imds_credentials_are_refreshed_before_they_expire()
  local now = 1000000
  local state = { expires = os.date("!%Y-%m-%dT%H:%M:%SZ", now + 3600) }
  local srv = fake_imds(state)
  local p = credentials.provider{ clock = function() return now end, env = env_of{ HOME = dir,
    AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. srv.port } }
  lu.assertEquals(p:get().access_key, "IMDS1")
  now = now + 3600 - 301
  lu.assertEquals(p:get().access_key, "IMDS1", "still 5 minutes and 1 s to go: cached")
  state.expires = os.date("!%Y-%m-%dT%H:%M:%SZ", now + 7200)
  now = now + 2
  lu.assertEquals(p:get().access_key, "IMDS2", "inside the 5-minute window: refreshed")
  -- A failed refresh keeps the current credentials while they are still valid...
  now = now + 7200 - 100
  state.fail_docs = true
  local log = require "fo.log"
  local lines = {}
  local old = log.set_sink(function(l) lines[#lines + 1] = l end)
  local ok_get, c = pcall(p.get, p)
  log.set_sink(old)
  lu.assertTrue(ok_get, tostring(c))
  lu.assertEquals(c.access_key, "IMDS2")
  lu.assertEquals(#lines, 1)
  lu.assertStrContains(lines[1], "warn  credentials refresh failed, using the current ones")
  -- ...but not once they have expired.
  now = now + 200
  local ok, err = pcall(p.get, p)
  srv:close()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "cannot read the credentials of role role-a")
end

function TestCredentials.test_provider_errors_reach_every_waiter_unchanged()
  local env = process_profile("sleep 0.2; echo 'helper: login required' >&2; exit 2\n")
  local p = credentials.provider{ profile = "p", env = env }
  local tasks = {}
  for i = 1, 3 do tasks[i] = fo.spawn(function() return select(2, pcall(p.get, p)) end) end
  local errs = fo.all(tasks)
  for i = 1, 3 do
    lu.assertEquals(errs[i], "credential_process of profile 'p' (" .. dir .. "/helper.sh) exited "
      .. "with 2: helper: login required")
  end
end

function TestCredentials.test_malformed_or_unreadable_files_name_the_file()
  testlib.write(dir .. "/config", "[profile p]\nregion = eu-south-1\nthis line is wrong\n")
  lu.assertErrorMsgContains(dir .. "/config:3: expected key = value inside a [section]",
    credentials.resolve, { profile = "p", env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config" }) })
  testlib.write(dir .. "/config", "region = eu-south-1\n")
  lu.assertErrorMsgContains(dir .. "/config:1: expected key = value inside a [section]",
    credentials.resolve, { env = env_of(base_env{ AWS_CONFIG_FILE = dir .. "/config" }) })
  lu.assertErrorMsgContains("cannot read " .. dir .. ": Is a directory", credentials.resolve,
    { env = env_of(base_env{ AWS_CONFIG_FILE = dir }) })
end

function TestCredentials.test_shared_provider_per_profile_and_environment()
  local e1, e2 = env_of{}, env_of{}
  lu.assertIs(credentials.for_profile(nil, e1), credentials.for_profile(nil, e1))
  lu.assertIs(credentials.for_profile("x", e1), credentials.for_profile("x", e1))
  lu.assertNotIs(credentials.for_profile("x", e1), credentials.for_profile("y", e1))
  lu.assertNotIs(credentials.for_profile("x", e1), credentials.for_profile("x", e2))
end

function TestCredentials.test_loaded_secrets_are_registered_for_redaction()
  credentials.resolve{ env = env_of(base_env{ AWS_ACCESS_KEY_ID = "K",
    AWS_SECRET_ACCESS_KEY = "registeredSecret123", AWS_SESSION_TOKEN = "registeredToken456" }) }
  local log = require "fo.log"
  lu.assertEquals(log.redact("a registeredSecret123 b registeredToken456 c K"), "a **** b **** c K")
end


os.exit(lu.LuaUnit.run())
