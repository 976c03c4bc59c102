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

os.exit(lu.LuaUnit.run())
