-- fo.config: typed schema with defaults, the stack's config file, --config overrides with
-- typed conversion, validation, unknown keys rejected with the known ones.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local testlib = require "support.testlib"

local sim, dir
TestConfig = {}
local run = H.fixture(TestConfig, function(f) sim, dir = f.sim, f.dir end).run

local SCHEMA = {
  cidr = { type = "string", default = "10.0.0.0/16", doc = "the VPC's range" },
  subnets = { type = "integer", default = 1, check = function(n)
    return n >= 1 and n <= 4, "between 1 and 4 subnets"
  end },
  public = { type = "boolean", default = false },
  env = { type = "string", enum = { "dev", "prod" }, default = "dev" },
  azs = { type = "list", default = { "us-east-1a" } },
  token = { type = "string", secret = true },
}

-- Runs a recipe that declares SCHEMA and records the values it got.
local function run_with(overrides, extra_schema)
  local got
  local code, doc, out, err = run(function()
    local schema = {}
    for k, v in pairs(SCHEMA) do schema[k] = v end
    for k, v in pairs(extra_schema or {}) do schema[k] = v end
    got = fo.config(schema)
    fo.resource("test:topic", "t", { name = "t", display_name = got.env })
  end, { config = overrides, mode = "plan" })
  return code, got, err, doc
end

function TestConfig:test_defaults_apply_without_file_or_overrides()
  local code, got, err = run_with({})
  lu.assertEquals(code, 0, err)
  lu.assertEquals(got.cidr, "10.0.0.0/16")
  lu.assertEquals(got.subnets, 1)
  lu.assertIsTrue(math.type(got.subnets) == "integer")
  lu.assertEquals(got.public, false)
  lu.assertEquals(got.azs, { "us-east-1a" })
  lu.assertNil(got.token)
end

function TestConfig:test_file_values_and_overrides_with_typed_conversion()
  testlib.write(dir .. "/dev.config.json", '{"cidr": "10.9.0.0/16", "subnets": 2, "env": "prod"}')
  local code, got, err = run_with({ subnets = "3", public = "yes", azs = "us-east-1a, us-east-1b" })
  lu.assertEquals(code, 0, err)
  lu.assertEquals(got.cidr, "10.9.0.0/16")     -- file
  lu.assertEquals(got.env, "prod")             -- file
  lu.assertEquals(got.subnets, 3)              -- --config wins over the file
  lu.assertEquals(got.public, true)
  lu.assertEquals(got.azs, { "us-east-1a", "us-east-1b" })
  code, got = run_with({ azs = '["a","b","c"]' })
  lu.assertEquals(got.azs, { "a", "b", "c" })
end

function TestConfig:test_bad_values_name_the_key_and_source()
  local code, _, err = run_with({ subnets = "two" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "--config subnets=two: expected an integer")
  code, _, err = run_with({ subnets = "9" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "config subnets (--config): between 1 and 4 subnets")
  code, _, err = run_with({ env = "staging" })
  lu.assertStrContains(err, "config env (--config): staging is not one of dev, prod")
  testlib.write(dir .. "/dev.config.json", '{"public": "yes"}')
  code, _, err = run_with({})
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "config public (config file " .. dir .. "/dev.config.json): expected boolean")
end

function TestConfig:test_unknown_keys_are_rejected_with_the_known_ones()
  local code, _, err = run_with({ subnet = "2" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "unknown config key subnet (did you mean 'subnets'?); the recipe declares: "
    .. "azs, cidr, env, public, subnets, token")
  testlib.write(dir .. "/dev.config.json", '{"regoin": "x"}')
  code, _, err = run_with({})
  lu.assertStrContains(err, "unknown config key regoin")
end

function TestConfig:test_required_key_missing_says_how_to_set_it()
  local code, _, err = run_with({ regoin = "x" }, { region = { type = "string", required = true,
    doc = "primary region" } })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "config region is required (primary region): set it with --config region=VALUE")
  lu.assertStrContains(err, "(given but not declared: regoin)")
end

function TestConfig:test_reading_an_undeclared_key_is_an_error()
  local code, _, _, err = run(function()
    local c = fo.config{ a = { type = "string", default = "x" } }
    fo.resource("test:topic", "t", { name = c.b })
  end, { mode = "plan" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(err, "config key 'b' is not declared in fo.config")
end

function TestConfig:test_config_is_recorded_in_the_state_with_secrets_encrypted()
  local code, _, _, err = run(function()
    local c = fo.config(SCHEMA)
    fo.resource("test:topic", "t", { name = "t", display_name = c.token })
  end, { config = { token = "s3cr3t-value" } })
  lu.assertEquals(code, 0, err)
  local st, text = H.state(dir)
  lu.assertEquals(st.config.cidr, "10.0.0.0/16")
  lu.assertStrContains(st.config.token["fo:secret"], "v1:")
  lu.assertStrContains(st.resources["dev::test:topic::t"].inputs.display_name["fo:secret"], "v1:")
  lu.assertNil(text:find("s3cr3t-value", 1, true)) -- nor the property derived from it
end

os.exit(lu.LuaUnit.run())
