-- Secrets stay secret: a config value marked secret, and every value derived from it
-- (fo.format, fo.apply, `..`, references through it, outputs a resource echoes, stack
-- outputs, error messages), shows as [secret] in every output stream and is stored
-- encrypted in the state, its log and its backup. Run through fo-run as a user runs it:
-- plan, apply, rerun, update, --json, failing applies that roll back, destroy; then every
-- output and every file fo wrote under the state directory is searched for the canary
-- (the simulator's own file stands for AWS, which holds what it was given).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local H = require "support.engine_harness"
local json = require "fo.json"
local json_events = require "support.json_events"

local CANARY = "canary-7f3e9a-SECRET"

local dir, sim
TestSecrets = {}
local run = H.fixture(TestSecrets, function(f) dir, sim = f.dir, f.sim end).run
local streams -- everything fo-run printed in the current test
local fixture_setup = TestSecrets.setUp
function TestSecrets.setUp()
  fixture_setup()
  streams = {}
end

local PRELUDE = ("package.path = %q .. '/lua/?.lua;' .. package.path\nrequire 'support.engine_types'\n")
  :format(testlib.tests_dir)

-- canary:echo — an SNS topic whose display name is the `shown` property, with an output
-- that echoes it (as AWS gives it back): an output equal to a secret input.
-- The recipe derives values from the secret every way a recipe can.
local RECIPE = [[
fo.type("canary:echo", {
  schema = { properties = { name = { type = "string", required = true },
      shown = { type = "string", required = true } },
    outputs = { "arn", "shown" }, mutable_outputs = { "shown" }, replace_on = { "name" } },
  create = function(ctx, p)
    local sns = ctx:client("sns")
    local arn = sns:CreateTopic{ Name = p.name }.TopicArn
    sns:SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName", AttributeValue = p.shown }
    return arn, { arn = arn, shown = p.shown }
  end,
  read = function(ctx, arn)
    local a = ctx:client("sns"):GetTopicAttributes{ TopicArn = arn }.Attributes
    return { arn = arn, shown = a.DisplayName }, { shown = a.DisplayName }
  end,
  update = function(ctx, arn, old, new, outputs)
    ctx:client("sns"):SetTopicAttributes{ TopicArn = arn, AttributeName = "DisplayName",
      AttributeValue = new.shown }
    return { arn = arn, shown = new.shown }
  end,
  delete = function(ctx, arn) ctx:client("sns"):DeleteTopic{ TopicArn = arn } end,
})

local c = fo.config{
  token = { type = "string", secret = true, required = true },
  label = { type = "string", default = "v1" },
  fail = { type = "string", default = "none", enum = { "none", "derived", "top" } },
}
if c.fail == "top" then error("refusing token " .. c.token) end
local topic = fo.resource("test:topic", "alerts", { name = "alerts",
  display_name = fo.format("%s:%s", c.label, c.token) })
local echo = fo.resource("canary:echo", "echo", { name = "echo", shown = c.label .. "-" .. c.token })
local desc = fo.apply({ topic.arn, c.token }, function(v)
  return "for " .. v[1] .. " key " .. v[2]:upper()
end)
if c.fail == "derived" then -- fails mid-apply: extra.arn is known once extra is created
  local extra = fo.resource("test:topic", "extra", { name = "extra" })
  fo.resource("test:role", "late", { name = "late-role", description = fo.apply(
    { extra.arn, c.token }, function(v) error("cannot use " .. v[2] .. " with " .. v[1]) end) })
end
fo.resource("test:role", "app", { name = "app-role", description = desc,
  tags = { token = fo.apply(echo.shown, function(s) return "t-" .. s end) } })
fo.output("formatted", fo.format("shown %s", c.token))
fo.output("concat", topic.arn .. c.token)
fo.output("upper", fo.apply(c.token, string.upper))
fo.output("echoed", echo.shown)
fo.output("arn", topic.arn)
]]

local function fo_run(args, env)
  local e = { FO_STATE_DIR = dir .. "/.fo" }
  for k, v in pairs(env or {}) do e[k] = v end
  local r = testlib.run_fo(args, { env = e })
  streams[#streams + 1] = r.stdout
  streams[#streams + 1] = r.stderr
  return r
end

local function recipe()
  local path = dir .. "/secrets.lua"
  testlib.write(path, PRELUDE .. RECIPE)
  return path
end

-- The files fo wrote under the state directory, but the simulator's own (AWS's side).
local function state_files()
  local r = fo.process.run{ argv = { "find", dir .. "/.fo", "-type", "f" } }
  local out = {}
  for path in r.stdout:gmatch("[^\n]+") do
    -- (the simulator stands for AWS: its state and log hold what AWS was sent)
    if not path:match("%.sim%.json$") and not path:match("%.sim%.log$") then
      out[#out + 1] = path
    end
  end
  table.sort(out)
  return out
end

local function hits(text)
  return text:lower():find(CANARY:lower(), 1, true) ~= nil
end

-- Every value derived from the canary, through every command, never shows nor is stored
-- in clear; the state's encrypted values decrypt back (a rerun changes nothing).
function TestSecrets:test_a_secret_and_all_derived_from_it_never_show_nor_are_stored_in_clear()
  local path = recipe()
  local tok = "token=" .. CANARY
  local r = fo_run({ "--plan", "--config", tok, path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, 'display_name = [secret]')

  r = fo_run({ "--config", tok, path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Apply complete: 3 created")
  for _, name in ipairs({ "formatted", "concat", "upper", "echoed" }) do
    lu.assertStrContains(r.stdout, name .. " = [secret]")
  end
  lu.assertStrContains(r.stdout, 'arn = "arn:aws:sns:')
  -- AWS (the simulator) got the plain values
  local sim = require("fo.sim.store").load(dir .. "/.fo/dev.sim.json")
  lu.assertIsTrue(hits(json.encode(sim.data)))

  local st = json.read_file(dir .. "/.fo/dev.state.json")
  lu.assertEquals(st.secrets.key, "file")
  lu.assertEquals(st.secrets.cipher, "aes-256-gcm")
  lu.assertEquals(fo.fs.mode(dir .. "/.fo/dev.key"), tonumber("600", 8))
  lu.assertIsString(st.config.token["fo:secret"])
  lu.assertIsString(st.outputs.upper["fo:secret"])
  lu.assertEquals(type(st.outputs.arn), "string")
  local echo = st.resources["dev::canary:echo::echo"]
  lu.assertIsString(echo.inputs.shown["fo:secret"])
  lu.assertIsString(echo.outputs.shown["fo:secret"]) -- an output echoing a secret input
  lu.assertIsString(st.resources["dev::test:role::app"].inputs.tags.token["fo:secret"])

  r = fo_run({ "--config", tok, path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.") -- the encrypted values decrypt to the same

  r = fo_run({ "--config", tok, "--config", "label=v2", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "display_name: [secret] → [secret]")
  lu.assertStrContains(r.stdout, "Apply complete: 0 created, 3 updated")

  r = fo_run({ "--json", "--config", tok, "--config", "label=v3", path })
  lu.assertEquals(r.code, 0, r.stderr)
  local events = json_events.parse(r.stdout)
  local plan = json_events.last(events, "plan")
  lu.assertEquals(plan.steps[1].changes[1].new, "[secret]")
  lu.assertEquals(json_events.last(events, "outputs").outputs.formatted, "[secret]")

  -- a derived value's function fails mid-apply, quoting the secret: rolled back, masked
  r = fo_run({ "--config", tok, "--config", "label=v4", "--config", "fail=derived", path })
  lu.assertEquals(r.code, 4, r.stderr)
  lu.assertStrContains(r.stderr, "cannot use [secret] with arn:aws:sns:us-east-1:123456789012:extra")
  lu.assertStrContains(r.stdout, "rolled back")

  -- AWS refuses a call of an update: rolled back
  r = fo_run({ "--config", tok, "--config", "label=v5", path }, { FO_SIM_FAIL_MUTATING_CALL = "2" })
  lu.assertEquals(r.code, 4, r.stdout .. r.stderr)

  -- the recipe raises with a message built from the secret
  r = fo_run({ "--config", tok, "--config", "fail=top", path })
  lu.assertEquals(r.code, 1, r.stderr)
  lu.assertStrContains(r.stderr, "[secret]")

  r = fo_run({ "--json", "--config", tok, "--config", "label=v3", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertEquals(json_events.last(json_events.parse(r.stdout), "summary").text, "No changes.")

  local files = state_files()
  lu.assertIsTrue(#files >= 4, table.concat(files, " ")) -- state, log, .bak, key (+ lock)
  for _, f in ipairs(files) do lu.assertIsFalse(hits(testlib.read(f)), f .. " holds the canary") end

  -- --destroy works from the state: its encrypted config decrypts for the recipe it runs
  -- (the recipe defines canary:echo itself)
  r = fo_run({ "--destroy", path })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "Destroy complete: 3 deleted")

  for i, s in ipairs(streams) do lu.assertIsFalse(hits(s), ("output %d holds the canary:\n%s"):format(i, s)) end
  for _, f in ipairs(state_files()) do lu.assertIsFalse(hits(testlib.read(f)), f .. " holds the canary") end
end

local function snapshot()
  local out = {}
  for _, f in ipairs(state_files()) do
    if not f:match("%.lock$") then out[f] = testlib.read(f) end
  end
  return out
end

-- A passphrase from the environment keys the stack (no key file); a wrong or missing one
-- is refused (exit 2) before anything changes.
function TestSecrets:test_a_passphrase_keys_the_stack_and_a_wrong_one_changes_nothing()
  local path = recipe()
  local tok = "token=" .. CANARY
  local good = { FO_CONFIG_PASSPHRASE = "correct horse battery staple" }
  local r = fo_run({ "--config", tok, path }, good)
  lu.assertEquals(r.code, 0, r.stderr)
  local st = json.read_file(dir .. "/.fo/dev.state.json")
  lu.assertEquals(st.secrets.key, "passphrase")
  lu.assertEquals(st.secrets.kdf, "pbkdf2-hmac-sha256")
  lu.assertIsString(st.secrets.salt)
  lu.assertIsFalse(fo.fs.exists(dir .. "/.fo/dev.key"))
  r = fo_run({ "--config", tok, "--config", "label=v2", path }, good) -- a .bak and a log
  lu.assertEquals(r.code, 0, r.stderr)

  local before = snapshot()
  r = fo_run({ "--config", tok, "--config", "label=v3", path },
    { FO_CONFIG_PASSPHRASE = "wrong" })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "wrong passphrase for the secrets of stack dev")
  lu.assertEquals(snapshot(), before)
  r = fo_run({ "--destroy", path })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "set FO_CONFIG_PASSPHRASE")
  lu.assertEquals(snapshot(), before)

  local pfile = dir .. "/pass"
  testlib.write(pfile, "correct horse battery staple\n")
  r = fo_run({ "--config", tok, "--config", "label=v2", path }, { FO_CONFIG_PASSPHRASE_FILE = pfile })
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "No changes.")
  for i, s in ipairs(streams) do lu.assertIsFalse(hits(s), ("output %d holds the canary"):format(i)) end
  for _, f in ipairs(state_files()) do lu.assertIsFalse(hits(testlib.read(f)), f .. " holds the canary") end
end

-- The key file must be readable by its owner only; a missing one is named.
function TestSecrets:test_a_key_file_others_can_read_or_a_missing_one_is_refused()
  local path = recipe()
  local tok = "token=" .. CANARY
  local r = fo_run({ "--config", tok, path })
  lu.assertEquals(r.code, 0, r.stderr)
  local key = dir .. "/.fo/dev.key"
  fo.process.run{ argv = { "chmod", "644", key } }
  local before = snapshot()
  r = fo_run({ "--config", tok, "--config", "label=v2", path })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "can be read by others (mode 644)")
  lu.assertStrContains(r.stderr, "chmod 600 " .. key)
  lu.assertEquals(snapshot(), before)
  os.remove(key)
  r = fo_run({ "--plan", "--config", tok, path })
  lu.assertEquals(r.code, 2, r.stderr)
  lu.assertStrContains(r.stderr, "which is missing")
end

-- Drift of a secret property: read from AWS in clear, shown and recorded as a secret.
function TestSecrets:test_drift_of_a_secret_property_stays_secret()
  local function recipe_fn()
    local c = fo.config{ token = { type = "string", secret = true } }
    fo.resource("test:topic", "t", { name = "t", display_name = fo.format("x-%s", c.token) })
  end
  local code, _, _, err = run(recipe_fn, { config = { token = CANARY } })
  lu.assertEquals(code, 0, err)
  local arn = sim:invoke("sns", H.REGION, "ListTopics", {}).Topics[1].TopicArn
  sim:invoke("sns", H.REGION, "SetTopicAttributes", { TopicArn = arn,
    AttributeName = "DisplayName", AttributeValue = "x-" .. CANARY .. "-changed" })
  local doc, out
  code, doc, out, err = run(recipe_fn, { config = { token = CANARY } })
  lu.assertEquals(code, 0, err)
  lu.assertStrContains(out, "display_name: [secret] → [secret]")
  lu.assertEquals(#doc.drift, 1)
  lu.assertIsFalse(hits(out .. err))
  lu.assertIsFalse(hits(testlib.read(dir .. "/dev.state.json")))
end

os.exit(lu.LuaUnit.run())
