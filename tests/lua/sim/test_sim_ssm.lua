-- The simulator's SSM Parameter Store through fo's ssm client over the in-process wire:
-- public parameters, the account's own (PutParameter, Overwrite, versions and the
-- "name:3" selector, SecureString ciphertext unless WithDecryption, name rules),
-- DeleteParameter and GetParametersByPath (direct children or Recursive, pages).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local simlib = require "fo.sim"
local amis = require "fo.sim.amis"
local aws = fo.aws

local function setup()
  local sim = simlib.new{ seed = 3 }
  return sim, sim:client("ssm", { region = "eu-central-1", max_attempts = 1 })
end

local function err_of(fn, ...)
  local ok, e = pcall(fn, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertTrue(aws.Error.is(e), tostring(e))
  return e
end

TestSsm = {}

function TestSsm.test_put_get_overwrite_versions_and_selectors()
  local _, ssm = setup()
  lu.assertEquals(ssm:PutParameter{ Name = "/app/prod/url", Value = "https://a", Type = "String" },
    { Version = 1, Tier = "Standard" })
  local e = err_of(ssm.PutParameter, ssm, { Name = "/app/prod/url", Value = "https://b", Type = "String" })
  lu.assertEquals(e.code, "ParameterAlreadyExists")
  lu.assertStrContains(e.message, "set the overwrite option in the request to true")
  lu.assertEquals(ssm:PutParameter{ Name = "/app/prod/url", Value = "https://b", Overwrite = true }.Version, 2)
  local p = ssm:GetParameter{ Name = "/app/prod/url" }.Parameter
  lu.assertEquals({ p.Name, p.Value, p.Version, p.Type, p.DataType },
    { "/app/prod/url", "https://b", 2, "String", "text" })
  lu.assertStrMatches(p.ARN, "arn:aws:ssm:eu%-central%-1:%d+:parameter/app/prod/url")
  local v1 = ssm:GetParameter{ Name = "/app/prod/url:1" }.Parameter
  lu.assertEquals({ v1.Name, v1.Value, v1.Version, v1.Selector }, { "/app/prod/url", "https://a", 1, ":1" })
  e = err_of(ssm.GetParameter, ssm, { Name = "/app/prod/url:7" })
  lu.assertEquals(e.code, "ParameterVersionNotFound")
  lu.assertStrContains(e.message, "could not find version 7 of /app/prod/url")
  e = err_of(ssm.GetParameter, ssm, { Name = "/app/prod/url:live" })
  lu.assertEquals(e.code, "ParameterVersionNotFound")
  -- GetParameters: found ones, and the names nobody created
  local got = ssm:GetParameters{ Names = { "/app/prod/url:1", "/nope", amis.AL2_PARAMETER } }
  lu.assertEquals(#got.Parameters, 2)
  lu.assertEquals(got.InvalidParameters, { "/nope" })
  -- a new parameter needs its type
  e = err_of(ssm.PutParameter, ssm, { Name = "untyped", Value = "x" })
  lu.assertEquals(e.code, "ValidationException")
  lu.assertStrContains(e.message, "parameter type is required")
end

-- The public parameters of both Amazon Linux families name each region's image, one EC2
-- describes and launches.
function TestSsm.test_public_parameters_of_al2_and_al2023()
  local sim, ssm = setup()
  local ec2 = sim:client("ec2", { region = "eu-central-1", max_attempts = 1 })
  local p2 = ssm:GetParameter{ Name = amis.AL2_PARAMETER }.Parameter
  local p23 = ssm:GetParameter{ Name = amis.AL2023_PARAMETER }.Parameter
  lu.assertEquals(p2.Value, amis.al2("eu-central-1"))
  lu.assertEquals(p23.Value, amis.al2023("eu-central-1"))
  lu.assertNotEquals(p23.Value, p2.Value)
  lu.assertEquals(p23.Version, amis.AL2023_PARAMETER_VERSION)
  lu.assertEquals(p23.ARN, "arn:aws:ssm:eu-central-1::parameter" .. amis.AL2023_PARAMETER)
  lu.assertEquals(ec2:DescribeImages{ ImageIds = { p23.Value } }.Images[1].Name, amis.AL2023_NAME)
end

function TestSsm.test_secure_string_is_ciphertext_unless_decrypted()
  local _, ssm = setup()
  ssm:PutParameter{ Name = "/app/db/password", Value = "hunter2-secret", Type = "SecureString" }
  local p = ssm:GetParameter{ Name = "/app/db/password" }.Parameter
  lu.assertEquals(p.Type, "SecureString")
  lu.assertNotEquals(p.Value, "hunter2-secret")
  lu.assertNotStrContains(p.Value, "hunter2")
  lu.assertEquals(ssm:GetParameter{ Name = "/app/db/password", WithDecryption = true }.Parameter.Value,
    "hunter2-secret")
  local e = err_of(ssm.PutParameter, ssm, { Name = "/app/db/password", Value = "x", Type = "String",
    Overwrite = true })
  lu.assertEquals(e.code, "HierarchyTypeMismatchException")
end

function TestSsm.test_name_rules()
  local _, ssm = setup()
  for _, name in ipairs{ "aws-thing", "/SSM/x", "/aws/service/mine" } do
    local e = err_of(ssm.PutParameter, ssm, { Name = name, Value = "x", Type = "String" })
    lu.assertEquals(e.code, "ValidationException", name)
    lu.assertStrContains(e.message, "can't be prefixed with \"aws\" or \"ssm\"")
  end
  local e = err_of(ssm.PutParameter, ssm, { Name = "app/x", Value = "x", Type = "String" })
  lu.assertStrContains(e.message, "fully qualified")
  e = err_of(ssm.PutParameter, ssm, { Name = "/" .. ("a/"):rep(15) .. "z", Value = "x", Type = "String" })
  lu.assertEquals(e.code, "HierarchyLevelLimitExceededException")
  ssm:PutParameter{ Name = "/tagged", Value = "x", Type = "String", Tags = { { Key = "k", Value = "v" } } }
  e = err_of(ssm.PutParameter, ssm, { Name = "/tagged", Value = "y", Overwrite = true,
    Tags = { { Key = "k", Value = "v" } } })
  lu.assertStrContains(e.message, "tags and overwrite can't be used together")
end

function TestSsm.test_delete_and_get_by_path()
  local _, ssm = setup()
  for _, n in ipairs{ "/app/prod/a", "/app/prod/b", "/app/prod/db/host", "/app/prodx/c", "/other" } do
    ssm:PutParameter{ Name = n, Value = n, Type = "String" }
  end
  local function names(r)
    local out = {}
    for i, p in ipairs(r.Parameters) do out[i] = p.Name end
    return out
  end
  lu.assertEquals(names(ssm:GetParametersByPath{ Path = "/app/prod" }), { "/app/prod/a", "/app/prod/b" })
  lu.assertEquals(names(ssm:GetParametersByPath{ Path = "/app/prod/", Recursive = true }),
    { "/app/prod/a", "/app/prod/b", "/app/prod/db/host" })
  local page = ssm:GetParametersByPath{ Path = "/app", Recursive = true, MaxResults = 2 }
  lu.assertEquals(#page.Parameters, 2)
  lu.assertNotNil(page.NextToken)
  local rest = ssm:GetParametersByPath{ Path = "/app", Recursive = true, MaxResults = 2,
    NextToken = page.NextToken }
  lu.assertEquals(names(rest), { "/app/prod/db/host", "/app/prodx/c" })
  lu.assertNil(rest.NextToken)
  lu.assertEquals(err_of(ssm.GetParametersByPath, ssm, { Path = "app" }).code, "ValidationException")
  ssm:DeleteParameter{ Name = "/app/prod/a" }
  lu.assertEquals(err_of(ssm.GetParameter, ssm, { Name = "/app/prod/a" }).code, "ParameterNotFound")
  lu.assertEquals(err_of(ssm.DeleteParameter, ssm, { Name = "/app/prod/a" }).code, "ParameterNotFound")
  lu.assertEquals(names(ssm:GetParametersByPath{ Path = "/app/prod" }), { "/app/prod/b" })
end

function TestSsm.test_labels_attach_move_limit_and_selectors()
  local _, ssm = setup()
  for i = 1, 3 do
    ssm:PutParameter{ Name = "/app/url", Value = "v" .. i, Type = "String", Overwrite = i > 1 }
  end
  -- no ParameterVersion: the latest; invalid labels are answered, not attached
  local r = ssm:LabelParameterVersion{ Name = "/app/url", Labels = { "prod", "1st", "AWSx",
    "ssm-x", "bad label", "ok.v-1_x" } }
  lu.assertEquals(r.ParameterVersion, 3)
  lu.assertEquals(r.InvalidLabels, { "1st", "AWSx", "ssm-x", "bad label" })
  lu.assertEquals(ssm:GetParameter{ Name = "/app/url:prod" }.Parameter.Value, "v3")
  lu.assertEquals(ssm:GetParameter{ Name = "/app/url:prod" }.Parameter.Selector, ":prod")
  -- moving a label: it leaves version 3 for version 1
  r = ssm:LabelParameterVersion{ Name = "/app/url", ParameterVersion = 1, Labels = { "prod" } }
  lu.assertEquals(r.ParameterVersion, 1)
  lu.assertNil(r.InvalidLabels)
  lu.assertEquals(ssm:GetParameter{ Name = "/app/url:prod" }.Parameter.Value, "v1")
  -- GetParameters: unknown versions and labels are invalid parameters, results by name
  local got = ssm:GetParameters{ Names = { "/app/url:prod", "/app/url:9", "/app/url:nolabel",
    "/app/url:ok.v-1_x" } }
  lu.assertEquals(got.InvalidParameters, { "/app/url:9", "/app/url:nolabel" })
  lu.assertEquals({ got.Parameters[1].Version, got.Parameters[2].Version }, { 1, 3 })
  lu.assertEquals(err_of(ssm.GetParameter, ssm, { Name = "/app/url:nolabel" }).code,
    "ParameterVersionNotFound")
  -- at most 10 labels on a version
  local ten = {}
  for i = 1, 9 do ten[i] = "l" .. i end
  ssm:LabelParameterVersion{ Name = "/app/url", ParameterVersion = 2, Labels = ten }
  ssm:LabelParameterVersion{ Name = "/app/url", ParameterVersion = 2, Labels = { "l10", "l1" } }
  local e = err_of(ssm.LabelParameterVersion, ssm, { Name = "/app/url", ParameterVersion = 2,
    Labels = { "l11" } })
  lu.assertEquals(e.code, "ParameterVersionLabelLimitExceeded")
  lu.assertEquals(err_of(ssm.LabelParameterVersion, ssm, { Name = "/app/url", ParameterVersion = 7,
    Labels = { "x" } }).code, "ParameterVersionNotFound")
  lu.assertEquals(err_of(ssm.LabelParameterVersion, ssm, { Name = "/nope", Labels = { "x" } }).code,
    "ParameterNotFound")
  -- unlabel: removed ones and the ones that version did not have
  r = ssm:UnlabelParameterVersion{ Name = "/app/url", ParameterVersion = 1, Labels = { "prod", "l1" } }
  lu.assertEquals(r.RemovedLabels, { "prod" })
  lu.assertEquals(r.InvalidLabels, { "l1" })
  lu.assertEquals(err_of(ssm.GetParameter, ssm, { Name = "/app/url:prod" }).code,
    "ParameterVersionNotFound")
end

function TestSsm.test_parameter_history_pages_labels_and_decryption()
  local _, ssm = setup()
  for i = 1, 5 do
    ssm:PutParameter{ Name = "/db/pw", Value = "secret-" .. i, Type = "SecureString", Overwrite = i > 1,
      Description = "d" .. i }
  end
  ssm:LabelParameterVersion{ Name = "/db/pw", ParameterVersion = 2, Labels = { "b", "a" } }
  local h = ssm:GetParameterHistory{ Name = "/db/pw", MaxResults = 2 }
  lu.assertEquals(#h.Parameters, 2)
  lu.assertEquals({ h.Parameters[1].Version, h.Parameters[2].Version }, { 1, 2 })
  lu.assertEquals(h.Parameters[2].Labels, { "a", "b" })
  lu.assertNil(h.Parameters[1].Labels)
  lu.assertNotStrContains(h.Parameters[1].Value, "secret")
  lu.assertEquals(h.Parameters[1].Description, "d1")
  lu.assertEquals(h.Parameters[1].KeyId, "alias/aws/ssm")
  lu.assertNotNil(h.NextToken)
  local rest = ssm:GetParameterHistory{ Name = "/db/pw", WithDecryption = true, NextToken = h.NextToken }
  lu.assertEquals(#rest.Parameters, 3)
  lu.assertEquals(rest.Parameters[3].Value, "secret-5")
  lu.assertNil(rest.NextToken)
  lu.assertEquals(err_of(ssm.GetParameterHistory, ssm, { Name = "/db/pw", NextToken = "zzz" }).code,
    "InvalidNextToken")
  lu.assertEquals(err_of(ssm.GetParameterHistory, ssm, { Name = "/nope" }).code, "ParameterNotFound")
  -- by ARN too
  local arn = ssm:GetParameter{ Name = "/db/pw" }.Parameter.ARN
  lu.assertEquals(#ssm:GetParameterHistory{ Name = arn }.Parameters, 5)
end

function TestSsm.test_hundred_versions_oldest_dropped_unless_labelled()
  local _, ssm = setup()
  for i = 1, 100 do
    ssm:PutParameter{ Name = "/v", Value = tostring(i), Type = "String", Overwrite = i > 1 }
  end
  lu.assertEquals(ssm:PutParameter{ Name = "/v", Value = "101", Overwrite = true }.Version, 101)
  lu.assertEquals(err_of(ssm.GetParameter, ssm, { Name = "/v:1" }).code, "ParameterVersionNotFound")
  lu.assertEquals(ssm:GetParameter{ Name = "/v:2" }.Parameter.Value, "2")
  ssm:LabelParameterVersion{ Name = "/v", ParameterVersion = 2, Labels = { "keep" } }
  local e = err_of(ssm.PutParameter, ssm, { Name = "/v", Value = "102", Overwrite = true })
  lu.assertEquals(e.code, "ParameterMaxVersionLimitExceeded")
  lu.assertStrContains(e.message, "Version 2, the oldest version, can't be deleted")
  lu.assertEquals(ssm:GetParameter{ Name = "/v" }.Parameter.Version, 101)
  -- moving the label frees it
  ssm:LabelParameterVersion{ Name = "/v", Labels = { "keep" } }
  lu.assertEquals(ssm:PutParameter{ Name = "/v", Value = "102", Overwrite = true }.Version, 102)
  local n = 0
  local page = { NextToken = nil }
  repeat
    page = ssm:GetParameterHistory{ Name = "/v", NextToken = page.NextToken }
    n = n + #page.Parameters
  until not page.NextToken
  lu.assertEquals(n, 100)
end

os.exit(lu.LuaUnit.run())
