-- Endpoint resolution: partition aws's regional and global endpoints with their signing
-- names and regions, and the SDK override order (explicit > AWS_ENDPOINT_URL_<ID> >
-- AWS_ENDPOINT_URL > config file [services] > profile endpoint_url), with the ignore flag.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local fake = require "support.fake_aws"
local endpoints = require "fo.aws.endpoints"

local dir
local function env(extra)
  return fake.env(fake.merge({ HOME = dir or "/nonexistent",
    AWS_CONFIG_FILE = (dir or "/nonexistent") .. "/config",
    AWS_SHARED_CREDENTIALS_FILE = (dir or "/nonexistent") .. "/credentials" }, extra))
end

TestEndpoints = {}
function TestEndpoints.setUp() dir = testlib.tmpdir() end
function TestEndpoints.tearDown() testlib.rmtree(dir) end

function TestEndpoints.test_regional_endpoints_and_signing_names()
  local expected = {
    ec2 = { "https://ec2.eu-south-1.amazonaws.com", "ec2" },
    elbv2 = { "https://elasticloadbalancing.eu-south-1.amazonaws.com", "elasticloadbalancing" },
    autoscaling = { "https://autoscaling.eu-south-1.amazonaws.com", "autoscaling" },
    dynamodb = { "https://dynamodb.eu-south-1.amazonaws.com", "dynamodb" },
    sns = { "https://sns.eu-south-1.amazonaws.com", "sns" },
    cloudwatch = { "https://monitoring.eu-south-1.amazonaws.com", "monitoring" },
    ssm = { "https://ssm.eu-south-1.amazonaws.com", "ssm" },
    sts = { "https://sts.eu-south-1.amazonaws.com", "sts" },
  }
  for service, want in pairs(expected) do
    local ep = endpoints.resolve(service, "eu-south-1", { env = env() })
    lu.assertEquals({ ep.url, ep.signing_name, ep.signing_region, ep.overridden },
      { want[1], want[2], "eu-south-1", false }, service)
  end
end

function TestEndpoints.test_global_services_are_signed_for_us_east_1()
  local iam = endpoints.resolve("iam", "eu-south-1", { env = env() })
  lu.assertEquals({ iam.url, iam.signing_name, iam.signing_region },
    { "https://iam.amazonaws.com", "iam", "us-east-1" })
  local r53 = endpoints.resolve("route53", "eu-central-1", { env = env() })
  lu.assertEquals({ r53.url, r53.signing_name, r53.signing_region },
    { "https://route53.amazonaws.com", "route53", "us-east-1" })
  -- Overridden, they are still signed for us-east-1.
  local o = endpoints.resolve("iam", "eu-south-1", { env = env{ AWS_ENDPOINT_URL_IAM = "http://127.0.0.1:9" } })
  lu.assertEquals({ o.url, o.signing_region }, { "http://127.0.0.1:9", "us-east-1" })
end

function TestEndpoints.test_real_endpoints_are_https()
  for service in pairs(endpoints.SERVICES) do
    lu.assertStrMatches(endpoints.resolve(service, "eu-south-1", { env = env() }).url, "https://.*")
  end
end

function TestEndpoints.test_every_service_has_its_documented_variable()
  local ids = { ec2 = "EC2", elbv2 = "ELASTIC_LOAD_BALANCING_V2", autoscaling = "AUTO_SCALING",
    route53 = "ROUTE_53", dynamodb = "DYNAMODB", sns = "SNS", cloudwatch = "CLOUDWATCH",
    iam = "IAM", ssm = "SSM", sts = "STS", kms = "KMS", logs = "CLOUDWATCH_LOGS",
    s3 = "S3", acm = "ACM", servicequotas = "SERVICE_QUOTAS" }
  for service, id in pairs(ids) do
    local ep = endpoints.resolve(service, "eu-south-1",
      { env = env{ ["AWS_ENDPOINT_URL_" .. id] = "http://127.0.0.1:4566" } })
    lu.assertEquals({ ep.url, ep.overridden, ep.source },
      { "http://127.0.0.1:4566", true, "AWS_ENDPOINT_URL_" .. id }, service)
  end
end

function TestEndpoints.test_precedence_explicit_service_env_global_env()
  local vars = { AWS_ENDPOINT_URL = "http://127.0.0.1:1", AWS_ENDPOINT_URL_DYNAMODB = "http://127.0.0.1:2/" }
  lu.assertEquals(endpoints.resolve("dynamodb", "eu-south-1", { env = env(vars) }).url,
    "http://127.0.0.1:2", "service variable beats the global one; trailing slash dropped")
  lu.assertEquals(endpoints.resolve("sns", "eu-south-1", { env = env(vars) }).url, "http://127.0.0.1:1")
  lu.assertEquals(endpoints.resolve("dynamodb", "eu-south-1",
    { env = env(vars), endpoint = "http://127.0.0.1:3" }).url, "http://127.0.0.1:3",
    "the explicit option beats both")
end

local CONFIG = [[
[default]
endpoint_url = http://127.0.0.1:5000
services = local

[profile only-global]
endpoint_url = http://127.0.0.1:6000

[profile ignoring]
endpoint_url = http://127.0.0.1:6000
ignore_configured_endpoint_urls = true

[services local]
dynamodb =
  endpoint_url = http://127.0.0.1:5001
elastic_load_balancing_v2 =
  endpoint_url = http://127.0.0.1:5002/base/
]]

function TestEndpoints.test_config_file_services_section_and_profile_endpoint_url()
  testlib.write(dir .. "/config", CONFIG)
  local function url(service, extra, opts)
    return endpoints.resolve(service, "eu-south-1", fake.merge({ env = env(extra) }, opts)).url
  end
  lu.assertEquals(url("dynamodb"), "http://127.0.0.1:5001")
  lu.assertEquals(url("elbv2"), "http://127.0.0.1:5002/base")
  lu.assertEquals(url("sns"), "http://127.0.0.1:5000", "profile endpoint_url for the rest")
  lu.assertEquals(url("sns", nil, { profile = "only-global" }), "http://127.0.0.1:6000")
  lu.assertEquals(url("sns", { AWS_PROFILE = "only-global" }), "http://127.0.0.1:6000")
  local ep = endpoints.resolve("dynamodb", "eu-south-1", { env = env() })
  lu.assertStrContains(ep.source, "[services local]")
  -- Environment variables beat the config file, globally or per service.
  lu.assertEquals(url("dynamodb", { AWS_ENDPOINT_URL = "http://127.0.0.1:7000" }), "http://127.0.0.1:7000")
  lu.assertEquals(url("sns", { AWS_ENDPOINT_URL_SNS = "http://127.0.0.1:7001" }), "http://127.0.0.1:7001")
end

function TestEndpoints.test_ignore_configured_endpoint_urls()
  testlib.write(dir .. "/config", CONFIG)
  local vars = { AWS_IGNORE_CONFIGURED_ENDPOINT_URLS = "true", AWS_ENDPOINT_URL = "http://127.0.0.1:1" }
  lu.assertEquals(endpoints.resolve("dynamodb", "eu-south-1", { env = env(vars) }).url,
    "https://dynamodb.eu-south-1.amazonaws.com", "env and config overrides both ignored")
  lu.assertEquals(endpoints.resolve("dynamodb", "eu-south-1",
    { env = env(vars), endpoint = "http://127.0.0.1:2" }).url, "http://127.0.0.1:2",
    "an explicit endpoint still applies")
  lu.assertEquals(endpoints.resolve("sns", "eu-south-1", { env = env(), profile = "ignoring" }).url,
    "https://sns.eu-south-1.amazonaws.com", "the profile setting ignores the config file")
end

function TestEndpoints.test_bad_overrides_are_rejected_with_their_source()
  lu.assertErrorMsgContains("AWS_ENDPOINT_URL is 'ftp://x'", endpoints.resolve, "sns", "eu-south-1",
    { env = env{ AWS_ENDPOINT_URL = "ftp://x" } })
  lu.assertErrorMsgContains("the endpoint option is '127.0.0.1:4566'", endpoints.resolve, "sns",
    "eu-south-1", { env = env(), endpoint = "127.0.0.1:4566" })
  lu.assertErrorMsgContains("must be an http:// or https:// URL", endpoints.resolve, "sns",
    "eu-south-1", { env = env{ AWS_ENDPOINT_URL_SNS = "http://h/?x=1" } })
  testlib.write(dir .. "/config", "[default]\nendpoint_url = localhost:4566\n")
  lu.assertErrorMsgContains("endpoint_url of profile 'default' is 'localhost:4566'",
    endpoints.resolve, "sns", "eu-south-1", { env = env() })
end

function TestEndpoints.test_unknown_service_lists_known_ones()
  lu.assertErrorMsgContains("unknown AWS service 'sqs' (known: acm, autoscaling, cloudwatch, dynamodb",
    endpoints.resolve, "sqs", "eu-south-1", { env = env() })
end

os.exit(lu.LuaUnit.run())
