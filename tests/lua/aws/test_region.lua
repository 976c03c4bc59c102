-- Region resolution: the explicit option, AWS_REGION, AWS_DEFAULT_REGION, the profile's
-- region in the config file (and in the credentials file, as botocore merges them), and
-- the errors for a malformed region or none at all.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local fake = require "support.fake_aws"
local region = require "fo.aws.region"

local dir
TestRegion = {}
function TestRegion.setUp() dir = testlib.tmpdir() end
function TestRegion.tearDown() testlib.rmtree(dir) end

local function env(extra)
  return fake.env(fake.merge({ HOME = dir, AWS_CONFIG_FILE = dir .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = dir .. "/credentials" }, extra))
end

local function config(text) testlib.write(dir .. "/config", text) end

function TestRegion.test_option_beats_environment_and_files()
  config("[default]\nregion = ap-south-1\n")
  lu.assertEquals(region.resolve{ region = "eu-central-1",
    env = env{ AWS_REGION = "eu-south-1", AWS_DEFAULT_REGION = "us-east-1" } }, "eu-central-1")
end

function TestRegion.test_aws_region_beats_aws_default_region()
  lu.assertEquals(region.resolve{ env = env{ AWS_REGION = "eu-south-1",
    AWS_DEFAULT_REGION = "us-east-1" } }, "eu-south-1")
end

function TestRegion.test_aws_default_region_beats_the_profile()
  config("[default]\nregion = ap-south-1\n")
  lu.assertEquals(region.resolve{ env = env{ AWS_DEFAULT_REGION = "us-east-1" } }, "us-east-1")
end

function TestRegion.test_empty_variables_are_ignored()
  config("[default]\nregion = ap-south-1\n")
  lu.assertEquals(region.resolve{ env = env{ AWS_REGION = "", AWS_DEFAULT_REGION = "" } },
    "ap-south-1")
end

function TestRegion.test_default_profile_region_from_config_file()
  config("[default]\nregion = eu-south-1\n\n[profile other]\nregion = us-west-2\n")
  lu.assertEquals(region.resolve{ env = env() }, "eu-south-1")
end

function TestRegion.test_named_profile_from_option_and_from_aws_profile()
  config("[default]\nregion = eu-south-1\n\n[profile standby]\nregion = eu-central-1\n"
    .. "[profile ops]\nregion = us-west-2\n")
  lu.assertEquals(region.resolve{ profile = "standby", env = env() }, "eu-central-1")
  lu.assertEquals(region.resolve{ env = env{ AWS_PROFILE = "ops" } }, "us-west-2")
  -- The option names the profile even when AWS_PROFILE names another.
  lu.assertEquals(region.resolve{ profile = "standby", env = env{ AWS_PROFILE = "ops" } },
    "eu-central-1")
end

function TestRegion.test_profile_section_needs_the_profile_prefix_in_config()
  -- In the config file a named profile is [profile x]; a bare [x] section is not it.
  config("[standby]\nregion = eu-central-1\n")
  local ok, err = pcall(region.resolve, { profile = "standby", env = env() })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "no AWS region")
end

function TestRegion.test_region_in_credentials_file_counts_like_botocore()
  testlib.write(dir .. "/credentials", "[default]\nregion = sa-east-1\n")
  lu.assertEquals(region.resolve{ env = env() }, "sa-east-1")
end

function TestRegion.test_malformed_region_is_an_error_naming_its_source()
  lu.assertErrorMsgContains("the region option is 'Milan', which is not a region name",
    region.resolve, { region = "Milan", env = env() })
  lu.assertErrorMsgContains("AWS_REGION is 'eu-south-1.evil.com'", region.resolve,
    { env = env{ AWS_REGION = "eu-south-1.evil.com" } })
  config("[profile x]\nregion = somewhere\n")
  lu.assertErrorMsgContains("profile 'x' has region 'somewhere'", region.resolve,
    { profile = "x", env = env() })
end

function TestRegion.test_no_region_says_where_it_looked()
  local ok, err = pcall(region.resolve, { env = env() })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "no AWS region")
  lu.assertStrContains(err, "AWS_REGION")
  lu.assertStrContains(err, "profile 'default'")
  lu.assertStrContains(err, dir .. "/config")
end

function TestRegion.test_valid_names()
  for _, r in ipairs{ "eu-south-1", "eu-central-1", "us-gov-west-1", "ap-southeast-2",
                      "cn-north-1", "il-central-1" } do
    lu.assertTrue(region.valid(r), r)
  end
  for _, r in ipairs{ "", "eu", "eu-south", "EU-SOUTH-1", "eu-south-1/", "eu south 1" } do
    lu.assertFalse(region.valid(r), r)
  end
end

os.exit(lu.LuaUnit.run())
