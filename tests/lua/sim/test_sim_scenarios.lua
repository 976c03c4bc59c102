-- Issue 4's second proof: the scenarios the AWS CLI runs against the served simulator
-- (test_awscli.lua) — every resource kind of the failover stack created, described
-- (the same JMESPath checks, through fo.aws.jmespath), deleted and gone, in eu-south-1,
-- eu-central-1 and us-east-1, with the same error codes — run by fo's own clients
-- in-process (sim:client: signed requests handed to the sim without a socket).
-- Scenarios: tests/lua/support/sim_scenarios.lua. The sim's transitions are shortened
-- (sim.timing, the DynamoDB handler's TIMING) so waiters and polls end quickly; the
-- states a caller sees on the way are the same.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local scn = require "support.sim_scenarios"
local jmespath = require "fo.aws.jmespath"
local simlib = require "fo.sim"
local ddb = require "fo.sim.services.dynamodb"

local sim = simlib.new{ seed = "sim-scenarios" }
sim.timing = { lb_provisioning = 0.3, instance_terminate = 0.2, group_delete = 0.3,
  profile_propagation = 1, lb_eni_release = 0.3 }
local saved_timing = ddb.TIMING
ddb.TIMING = { table_create = 0.3, table_delete = 0.3, table_update = 0.2, replica_create = 0.6,
  replica_delete = 0.4 }
scn.POLL_INTERVAL = 0.1

-- The runner interface of sim_scenarios.run, with fo's clients.
local Runner = { clients = {}, calls = 0 }

function Runner:client(svc, region)
  local key = svc .. "@" .. region
  if not self.clients[key] then
    self.clients[key] = sim:client(svc, { region = region, max_attempts = 1 })
  end
  return self.clients[key]
end

local function failure(e)
  if type(e) == "table" and e.code then return { code = e.code, message = e.message } end
  return { code = "(error)", message = tostring(e) }
end

-- IAM answers policy documents as URL-encoded JSON, which fo's client returns as is;
-- botocore (and so the CLI) decodes them (its json_decode_policies handler). The same
-- checks read the decoded document here.
local function decode_policies(v)
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do
    if (k == "AssumeRolePolicyDocument" or k == "PolicyDocument") and type(x) == "string" then
      local text = x:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
      local ok, doc = pcall(cjson.decode, text)
      if ok then v[k] = doc end
    else
      decode_policies(x)
    end
  end
  return v
end

-- Every page of op, merged as the CLI merges them: lists concatenated, the rest from the
-- first page.
local function all_pages(c, op, params, page_size)
  local merged
  for page in c:paginate(op, params, { page_size = page_size }) do
    if not merged then
      merged = page
    else
      for k, v in pairs(page) do
        if type(v) == "table" and type(merged[k]) == "table" and (v[1] ~= nil or next(v) == nil) then
          for _, x in ipairs(v) do table.insert(merged[k], x) end
        end
      end
    end
  end
  return merged or {}
end

function Runner:call(region, svc, op, params, query, opts)
  self.calls = self.calls + 1
  local c = self:client(svc, region)
  local ok, out
  if opts and opts.page_size then
    ok, out = pcall(all_pages, c, op, params, opts.page_size)
  else
    ok, out = pcall(c[op], c, params)
  end
  if not ok then return false, failure(out) end
  if svc == "iam" then decode_policies(out) end
  if query then return true, jmespath.search(query, out) end
  return true, out
end

function Runner:wait(region, svc, name, params)
  self.calls = self.calls + 1
  local c = self:client(svc, region)
  local ok, e = pcall(c.wait, c, name, params, { delay = 0.2, timeout = 30 })
  if not ok then return false, failure(e) end
  return true
end

function Runner:error_problems() return {} end

local runs = scn.start_all(Runner)

TestSimScenarios = {}
scn.add_tests(TestSimScenarios, runs)

--- Authentication failures per protocol, as the CLI test checks them.
function TestSimScenarios.test_error_bad_signature_and_unknown_key_per_protocol()
  local problems = {}
  for _, c in ipairs(scn.auth_cases) do
    for kind, key in pairs({ bad_secret = { simlib.DEFAULT_KEY.access_key, "wrong" },
      unknown_key = { scn.UNKNOWN_KEY, simlib.DEFAULT_KEY.secret_key } }) do
      local client = sim:client(c[1], { region = "eu-central-1", max_attempts = 1,
        access_key = key[1], secret_key = key[2] })
      local ok, e = pcall(client[c[2]], client, c[3])
      if ok or e.code ~= c[kind] then
        problems[#problems + 1] = ("%s %s.%s: want %s, got %s"):format(kind, c[1], c[2], c[kind],
          ok and "success" or tostring(e.code))
      end
    end
  end
  if #problems > 0 then lu.fail(table.concat(problems, "\n")) end
end

--- Last: everything went through the wire path and was recorded.
function TestSimScenarios.test_zz_recorded()
  for _, list in pairs(runs) do for _, r in ipairs(list) do r.task:wait() end end
  ddb.TIMING = saved_timing
  lu.assertTrue(sim:count() >= Runner.calls, ("%d recorded, %d calls"):format(sim:count(), Runner.calls))
  local by = sim:counts().by_operation
  for _, op in ipairs({ "ec2.CreateVpc", "elbv2.CreateLoadBalancer", "autoscaling.CreateAutoScalingGroup",
    "dynamodb.UpdateTable", "route53.ChangeResourceRecordSets", "iam.AddRoleToInstanceProfile",
    "cloudwatch.SetAlarmState", "sns.Publish", "ssm.GetParameter", "sts.GetCallerIdentity" }) do
    lu.assertTrue((by[op] or 0) > 0, op)
  end
end

os.exit(lu.LuaUnit.run())
