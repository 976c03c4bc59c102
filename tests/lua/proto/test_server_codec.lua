-- The server side of fo.awsproto (docs/simulator.md, "Server-side codecs"): what the
-- simulator reads and writes, checked against fo's own client side, AWS's protocol
-- compliance suites in reverse, and Debian's botocore.
--   * every operation of tests/conformance/operations.json: proto.serialize (the client) →
--     parse_request gives the same operation and params back;
--   * every operation of the ten models: a sample input round-trips the same way, and a
--     sample output (full and sparse) passes validate_output and comes back from
--     serialize_response → proto.parse (the client) unchanged;
--   * the compliance INPUT suites read backwards: the serialized request of each case
--     parses into the case's params;
--   * error documents of every protocol parse back (proto.parse_error) with their code,
--     message, request id, type and modelled fields;
--   * requests that cannot be read raise {code=, message=, status=} as AWS answers;
--   * botocore's parsers read serialize_response's documents (tests/conformance/
--     server_check.py).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local proto = require "fo.awsproto"
local models = require "fo.aws.models"
local testlib = require "support.testlib"
local suite = require "support.protocol_suite"
local sample = require "support.shape_sample"

local SERVICES = { "ec2", "elbv2", "autoscaling", "route53", "dynamodb", "sns", "cloudwatch",
  "iam", "ssm", "sts", "kms", "logs", "acm", "servicequotas" }
local RID = "5f0e1d2c-3b4a-4968-8776-655443322110"

---------------------------------------------------------------- helpers

-- Deep comparison (protocol_suite's: numbers by value, NaN equal to NaN).
local function assert_same(what, want, got)
  local d = suite.diff(want, got, "params")
  if d then lu.fail(what .. ": " .. d) end
end

local lower_headers = suite.lower_headers

-- The request as the simulator's transport hands it over.
local function as_received(req)
  return { method = req.method, path = req.path, query = req.query or "",
           headers = lower_headers(req.headers), body = req.body or "" }
end

-- What a round trip of `params` through the client may change on the way (documented
-- wire facts, not codec choices): Route 53's ids keep what follows their last '/'
-- (customize.c, as the SDKs send them), the ec2 protocol sends no empty list, and neither
-- query protocol an empty map or a structure with nothing in it.
local function expected_params(model, op_name, params)
  local input = model.operations[op_name].input
  if not input then return {} end
  local function walk(ref, v, top)
    local shape = model.shapes[ref.shape]
    if type(v) ~= "table" then
      if top and model.metadata.serviceId == "Route 53" and type(v) == "string" and
          (ref.shape == "ResourceId" or ref.shape == "DelegationSetId" or ref.shape == "ChangeId") then
        return v:match("([^/]*)$")
      end
      return v
    end
    local out = {}
    if shape.document then
      return v
    elseif shape.type == "structure" then
      for k, x in pairs(v) do out[k] = walk(shape.members[k], x, false) end
      if top then
        for k, x in pairs(v) do out[k] = walk(shape.members[k], x, true) end
      end
      -- a structure with nothing in it writes no query parameter at all
      if not top and next(out) == nil and
          (model.metadata.protocol == "ec2" or model.metadata.protocol == "query") then
        return nil
      end
    elseif shape.type == "list" then
      if #v == 0 and model.metadata.protocol == "ec2" then return nil end
      for i, x in ipairs(v) do out[i] = walk(shape.member, x, false) end
    elseif shape.type == "map" then
      if next(v) == nil and (model.metadata.protocol == "ec2" or model.metadata.protocol == "query") then
        return nil
      end
      for k, x in pairs(v) do out[k] = walk(shape.value, x, false) end
    else
      return v
    end
    return out
  end
  return walk(input, params, true)
end

-- operations.json params → fo's Lua values: integers as Lua integers (cjson decodes every
-- number as a float), blobs ({"$bytes": b64} or a plain string) as raw strings.
local function from_json(model, ref, v)
  if v == cjson.null then return nil end
  local shape = ref and model.shapes[ref.shape]
  if not shape or type(v) ~= "table" then
    if shape and (shape.type == "integer" or shape.type == "long") and math.type(v) == "float" then
      return math.tointeger(v) or v
    end
    return v
  end
  if shape.type == "blob" then return assert(fo.crypto.base64_decode(v["$bytes"])) end
  local out = {}
  for k, x in pairs(v) do
    local sub = shape.type == "structure" and shape.members[k]
      or shape.type == "list" and shape.member or shape.type == "map" and shape.value or nil
    out[k] = from_json(model, sub, x)
  end
  return out
end

local function round_trip_input(model, op_name, params)
  local req = proto.serialize(model, op_name, params)
  local ok, got_op, got = pcall(proto.parse_request, model, as_received(req))
  if not ok then
    lu.fail(("%s.%s: parse_request raised %s\nrequest body: %s"):format(model.name, op_name,
      type(got_op) == "table" and cjson.encode(got_op) or tostring(got_op), req.body))
  end
  lu.assertEquals(got_op, op_name)
  assert_same(model.name .. "." .. op_name .. " params", expected_params(model, op_name, params), got)
end

local function round_trip_output(model, op_name, output)
  proto.validate_output(model, op_name, output)
  local resp = proto.serialize_response(model, op_name, output, { request_id = RID })
  local ok, got = pcall(proto.parse, model, op_name, resp)
  if not ok then lu.fail(("%s.%s: %s\nbody: %s"):format(model.name, op_name, got, resp.body)) end
  assert_same(model.name .. "." .. op_name .. " output", output, got)
  return resp
end

-- True when the operation answers with an event stream (a member of eventstream shape).
local function streams_events(model, op)
  local out = op.output and model.shapes[op.output.shape]
  for _, m in pairs(out and out.members or {}) do
    if model.shapes[m.shape] and model.shapes[m.shape].eventstream then return true end
  end
  return false
end

local function read_operations()
  return suite.read_json(testlib.tests_dir .. "/conformance/operations.json").operations
end

---------------------------------------------------------------- (1) fo's client, both ways

TestServerRoundTrip = {}

function TestServerRoundTrip.test_every_listed_operation_reads_back_its_params()
  local ops = read_operations()
  lu.assertTrue(#ops >= 150, "operations.json lists " .. #ops)
  for _, e in ipairs(ops) do
    local model = models.load(e.service)
    local input = model.operations[e.operation].input
    round_trip_input(model, e.operation, from_json(model, input, e.params or {}) or {})
  end
end

-- Every operation of the ten models: a sample input (every member set) round-trips, and
-- a sample output, full and sparse, passes validate_output and parses back unchanged.
for _, svc in ipairs(SERVICES) do
  TestServerRoundTrip["test_" .. svc .. "_every_operation_input"] = function()
    local model = models.load(svc)
    local count = 0
    for op_name, op in pairs(model.operations) do
      local params = op.input and sample.value(model, op.input) or {}
      round_trip_input(model, op_name, params)
      count = count + 1
    end
    lu.assertTrue(count > 0)
  end
  for _, sparse in ipairs{ false, true } do
    TestServerRoundTrip["test_" .. svc .. "_every_operation_output" .. (sparse and "_sparse" or "")] =
      function()
        local model = models.load(svc)
        for op_name, op in pairs(model.operations) do
          -- an event-stream answer (logs StartLiveTail) is not one the server codec writes
          if not streams_events(model, op) then
            local output = op.output and sample.value(model, op.output, { sparse = sparse }) or {}
            round_trip_output(model, op_name, output)
          end
        end
      end
  end
end

function TestServerRoundTrip.test_response_formats()
  local ec2 = models.load("ec2")
  local r = proto.serialize_response(ec2, "DeleteVpc", {}, { request_id = RID })
  lu.assertEquals(r.status, 200)
  lu.assertEquals(r.headers["content-type"], "text/xml;charset=UTF-8")
  lu.assertEquals(r.headers["x-amzn-requestid"], RID)
  lu.assertEquals(r.body, '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteVpcResponse ' ..
    'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>' .. RID ..
    '</requestId><return>true</return></DeleteVpcResponse>')
  local sts = models.load("sts")
  r = proto.serialize_response(sts, "GetCallerIdentity",
    { Account = "123456789012", Arn = "arn:aws:iam::123456789012:user/x", UserId = "AIDA" },
    { request_id = RID })
  lu.assertEquals(r.headers["content-type"], "text/xml")
  lu.assertEquals(r.body, '<?xml version="1.0" encoding="UTF-8"?>\n<GetCallerIdentityResponse ' ..
    'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>' ..
    '<UserId>AIDA</UserId><Account>123456789012</Account>' ..
    '<Arn>arn:aws:iam::123456789012:user/x</Arn></GetCallerIdentityResult>' ..
    '<ResponseMetadata><RequestId>' .. RID .. '</RequestId></ResponseMetadata>' ..
    '</GetCallerIdentityResponse>')
  local iam = models.load("iam")
  r = proto.serialize_response(iam, "DeleteRole", {}, { request_id = RID })
  lu.assertStrContains(r.body, '<DeleteRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">' ..
    '<ResponseMetadata><RequestId>')
  local ddb = models.load("dynamodb")
  r = proto.serialize_response(ddb, "DescribeTable",
    { Table = { TableName = "orders", CreationDateTime = 1700000000.25, ItemCount = 3 } },
    { request_id = RID })
  lu.assertEquals(r.headers["content-type"], "application/x-amz-json-1.0")
  lu.assertEquals(r.body, '{"Table":{"CreationDateTime":1700000000.25,"ItemCount":3,"TableName":"orders"}}')
  local ssm = models.load("ssm")
  r = proto.serialize_response(ssm, "DeleteParameter", {}, { request_id = RID })
  lu.assertEquals(r.headers["content-type"], "application/x-amz-json-1.1")
  lu.assertEquals(r.body, "{}")
  local r53 = models.load("route53")
  r = proto.serialize_response(r53, "CreateHealthCheck", {
    HealthCheck = { Id = "abc", CallerReference = "ref", HealthCheckVersion = 1,
      HealthCheckConfig = { Type = "HTTPS", FullyQualifiedDomainName = "a.example.com",
        RequestInterval = 30, FailureThreshold = 3 } },
    Location = "https://route53.amazonaws.com/2013-04-01/healthcheck/abc" }, { request_id = RID })
  lu.assertEquals(r.status, 201)
  lu.assertEquals(r.headers.location, "https://route53.amazonaws.com/2013-04-01/healthcheck/abc")
  -- elements in the XML schema's order (memberOrder), not in name order
  lu.assertEquals(r.body, '<?xml version="1.0" encoding="UTF-8"?>\n<CreateHealthCheckResponse ' ..
    'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HealthCheck><Id>abc</Id>' ..
    '<CallerReference>ref</CallerReference><HealthCheckConfig><Type>HTTPS</Type>' ..
    '<FullyQualifiedDomainName>a.example.com</FullyQualifiedDomainName>' ..
    '<RequestInterval>30</RequestInterval><FailureThreshold>3</FailureThreshold>' ..
    '</HealthCheckConfig><HealthCheckVersion>1</HealthCheckVersion></HealthCheck>' ..
    '</CreateHealthCheckResponse>')
  r = proto.serialize_response(r53, "ChangeTagsForResource", {}, { request_id = RID })
  lu.assertStrContains(r.body, '<ChangeTagsForResourceResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"></ChangeTagsForResourceResponse>')
end

function TestServerRoundTrip.test_output_values_that_do_not_fit_raise()
  local ec2 = models.load("ec2")
  local function fails(op, out, pattern)
    local ok, err = pcall(proto.serialize_response, ec2, op, out, {})
    lu.assertFalse(ok)
    lu.assertStrContains(tostring(err), pattern)
  end
  fails("DescribeVpcs", { Vpcs = { { VpcId = 12 } } }, "ec2.DescribeVpcs (output): Vpcs[1].VpcId: expected a string, got number")
  fails("DescribeVpcs", { Vpcs = { { Bogus = "x" } } }, "Vpcs[1]: unknown member 'Bogus'")
  fails("DescribeVpcs", { Vpcs = "x" }, "Vpcs: expected a list")
  local ddb = models.load("dynamodb")
  local ok, err = pcall(proto.serialize_response, ddb, "DescribeTable", { Table = { ItemCount = "x" } }, {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "dynamodb.DescribeTable (output): Table.ItemCount: expected integer, got string")
end

function TestServerRoundTrip.test_validate_output()
  local ec2 = models.load("ec2")
  proto.validate_output(ec2, "DescribeVpcs", { Vpcs = { { VpcId = "vpc-1", State = "available" } } })
  local ok, err = pcall(proto.validate_output, ec2, "DescribeVpcs",
    { Vpcs = { { VpcId = 1, Foo = 2, State = "bogus" } } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "ec2.DescribeVpcs (output): ")
  lu.assertStrContains(err, "Vpcs[1].Foo: unknown member")
  lu.assertStrContains(err, "Vpcs[1].VpcId: expected string, got number")
  -- enums are not closed: AWS answers values a model lacks (an attached IGW is "available")
  lu.assertNotStrContains(err, "Vpcs[1].State")
  proto.validate_output(ec2, "DescribeInternetGateways",
    { InternetGateways = { { InternetGatewayId = "igw-1",
                             Attachments = { { State = "available", VpcId = "vpc-1" } } } } })
  -- required members are checked; ranges are not (shapes serve inputs and outputs)
  local r53 = models.load("route53")
  ok, err = pcall(proto.validate_output, r53, "GetChange", {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "route53.GetChange (output): ChangeInfo: required member is missing")
  proto.validate_output(r53, "GetChange", { ChangeInfo = { Id = string.rep("C", 40), Status = "INSYNC",
    SubmittedAt = 1700000000 } })
  ok, err = pcall(proto.validate_output, r53, "DeleteHealthCheck", { Foo = 1 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "route53.DeleteHealthCheck (output): Foo: unknown member")
end

---------------------------------------------------------------- (2) compliance suites backwards

TestServerSuites = {}

-- What the suites' params become on the server side when they cannot be read back as
-- given (documented categories):
--   * members the client fills in: idempotency tokens left out of params (the SDKs put
--     a UUID there; the case's serialized request carries it) → the case is skipped;
--   * ec2 sends no empty lists, query and ec2 no empty maps, rest-xml no header for an
--     empty list: such values come back absent;
--   * the json cases about endpoint host prefixes leave out X-Amz-Target, which the
--     serializer always sends (it is added here);
--   * rest-xml: a flattened list whose list member has its own locationName is named in
--     requests after the structure member (botocore's serializer) but read by the response
--     rule (botocore's parser: after the list member); the reader follows the response
--     rule, so such cases (none in Route 53's model) are skipped (SKIP_CASES);
--   * header maps: request header names are lower-case, so their keys come back so;
--   * a blob or string payload that is empty on the wire comes back absent.
local function suite_expected(model, op_name, params)
  local input = model.operations[op_name].input
  local shape = input and model.shapes[input.shape]
  if not shape then return params end
  for name, ref in pairs(shape.members or {}) do
    local mshape = model.shapes[ref.shape]
    local loc = ref.location or mshape.location
    if loc == "headers" and type(params[name]) == "table" then
      local lower = {}
      for k, v in pairs(params[name]) do lower[k:lower()] = v end
      params[name] = next(lower) and lower or nil
    end
    if shape.payload == name and (mshape.type == "blob" or mshape.type == "string") and params[name] == "" then
      params[name] = nil
    end
    if loc == "header" and mshape.type == "list" and type(params[name]) == "table" and #params[name] == 0 then
      params[name] = nil
    end
  end
  return expected_params(model, op_name, params)
end

local function fills_token(model, op_name, params)
  local input = model.operations[op_name].input
  local shape = input and model.shapes[input.shape]
  for name, ref in pairs(shape and shape.members or {}) do
    if ref.idempotencyToken and params[name] == nil then return true end
  end
  return false
end

local SUITE_COUNTS = {}
local SKIP_CASES = { XmlLists = true }

local function define_suite(file, protocol)
  local suites = suite.read_json(suite.root .. "/" .. file)
  local prefix = "test_" .. file:gsub("%.json$", ""):gsub("%W", "_") .. "_"
  SUITE_COUNTS[file] = { run = 0, skipped = 0 }
  for si, s in ipairs(suites) do
    for ci, case in ipairs(s.cases) do
      local id = case.id or ("%s_%d"):format(s.description:gsub("%W+", "_"), ci)
      local name = prefix .. id
      while TestServerSuites[name] do name = name .. "_" .. si end
      local model, op_name = suite.model_for(s, case)
      local params = suite.special_floats(model, op_name, suite.clean(case.params) or {})
      if suite.ignored(protocol, "input", s, case) or fills_token(model, op_name, params) or
          SKIP_CASES[case.id] then
        SUITE_COUNTS[file].skipped = SUITE_COUNTS[file].skipped + 1
      else
        SUITE_COUNTS[file].run = SUITE_COUNTS[file].run + 1
        TestServerSuites[name] = function()
          local want = case.serialized
          local path, query = want.uri:match("^([^?]*)%??(.*)$")
          local op = model.operations[op_name]
          local req = { method = want.method or (op.http and op.http.method) or "POST", path = path,
                        query = query, headers = lower_headers(want.headers), body = want.body or "" }
          if model.metadata.protocol == "json" and not req.headers["x-amz-target"] then
            req.headers["x-amz-target"] = model.metadata.targetPrefix .. "." .. op_name
          end
          local ok, got_op, got = pcall(proto.parse_request, model, req)
          if not ok then
            lu.fail("parse_request raised " .. (type(got_op) == "table" and cjson.encode(got_op) or tostring(got_op)))
          end
          lu.assertEquals(got_op, op_name)
          assert_same(op_name, suite_expected(model, op_name, params), got)
        end
      end
    end
  end
end

for _, protocol in ipairs{ "ec2", "query", "json", "json_1_0", "rest-xml" } do
  for _, dir in ipairs{ "input/", "legacy/input/" } do
    local file = dir .. protocol .. ".json"
    local f = io.open(suite.root .. "/" .. file)
    if f then
      f:close()
      define_suite(file, protocol)
    end
  end
end

function TestServerSuites.test_suites_were_found()
  local run = 0
  for _, c in pairs(SUITE_COUNTS) do run = run + c.run end
  lu.assertTrue(run > 200, "only " .. run .. " suite cases")
end

---------------------------------------------------------------- (3) error documents

TestServerErrors = {}

local function error_round_trip(svc, op_name, err)
  local model = models.load(svc)
  local resp = proto.serialize_error(model, op_name, err, { request_id = RID })
  lu.assertEquals(resp.status, err.status or 400)
  local got = proto.parse_error(model, op_name or next(model.operations), resp)
  lu.assertEquals(got.code, err.code)
  lu.assertEquals(got.message, err.message)
  lu.assertEquals(got.request_id, RID)
  return got, resp
end

function TestServerErrors.test_ec2()
  local got, resp = error_round_trip("ec2", "DeleteVpc", { code = "DependencyViolation",
    message = "The vpc 'vpc-1' has dependencies and cannot be deleted. <&>" })
  lu.assertEquals(resp.headers["content-type"], "text/xml;charset=UTF-8")
  lu.assertEquals(resp.body, '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>' ..
    "<Code>DependencyViolation</Code><Message>The vpc &apos;vpc-1&apos; has dependencies and " ..
    "cannot be deleted. &lt;&amp;&gt;</Message></Error></Errors><RequestID>" .. RID ..
    "</RequestID></Response>")
  lu.assertEquals(got.fields, {})
  got = error_round_trip("ec2", nil, { code = "RequestLimitExceeded", message = "Request limit exceeded.", status = 503 })
  lu.assertEquals(got.code, "RequestLimitExceeded")
end

function TestServerErrors.test_query()
  local got, resp = error_round_trip("elbv2", "CreateLoadBalancer", { code = "DuplicateLoadBalancerName",
    message = "A load balancer with the same name 'x' exists" })
  lu.assertEquals(got.type, "Sender")
  lu.assertEquals(resp.body, '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse ' ..
    'xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type>' ..
    "<Code>DuplicateLoadBalancerName</Code><Message>A load balancer with the same name &apos;x&apos; " ..
    "exists</Message></Error><RequestId>" .. RID .. "</RequestId></ErrorResponse>")
  got = error_round_trip("iam", nil, { code = "InternalFailure", message = "boom", status = 500 })
  lu.assertEquals(got.type, "Receiver")
  got = error_round_trip("sts", "GetCallerIdentity", { code = "InvalidClientTokenId",
    message = "The security token included in the request is invalid.", status = 403 })
  lu.assertEquals(got.type, "Sender")
end

function TestServerErrors.test_json_with_fields()
  local got, resp = error_round_trip("dynamodb", "TransactWriteItems", {
    code = "TransactionCanceledException", message = "Transaction cancelled",
    fields = { CancellationReasons = { { Code = "ConditionalCheckFailed", Message = "no" },
      { Code = "None" } } } })
  lu.assertEquals(resp.headers["x-amzn-errortype"], "TransactionCanceledException")
  lu.assertEquals(resp.headers["content-type"], "application/x-amz-json-1.0")
  lu.assertStrContains(resp.body, '{"__type":"com.amazonaws.dynamodb#TransactionCanceledException","message":"Transaction cancelled",')
  lu.assertEquals(got.fields.CancellationReasons,
    { { Code = "ConditionalCheckFailed", Message = "no" }, { Code = "None" } })
  got, resp = error_round_trip("dynamodb", nil, { code = "UnknownOperationException", message = "" })
  lu.assertEquals(resp.body, '{"__type":"com.amazon.coral.service#UnknownOperationException","message":""}')
  got, resp = error_round_trip("ssm", "GetParameter", { code = "ParameterNotFound", message = "" })
  lu.assertEquals(resp.headers["content-type"], "application/x-amz-json-1.1")
  got, resp = error_round_trip("dynamodb", "PutItem", { code = "ValidationException", message = "bad" })
  lu.assertStrContains(resp.body, "com.amazon.coral.validate#ValidationException")
end

function TestServerErrors.test_rest_xml()
  local got, resp = error_round_trip("route53", "GetHostedZone", { code = "NoSuchHostedZone",
    message = "No hosted zone found with ID: Z1", status = 404 })
  lu.assertEquals(got.type, "Sender")
  lu.assertEquals(resp.body, '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse ' ..
    'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>' ..
    "<Code>NoSuchHostedZone</Code><Message>No hosted zone found with ID: Z1</Message></Error>" ..
    "<RequestId>" .. RID .. "</RequestId></ErrorResponse>")
  got = error_round_trip("route53", "ChangeResourceRecordSets", { code = "InvalidChangeBatch",
    message = "bad batch", fields = { messages = { "one", "two" } } })
  lu.assertEquals(got.fields.messages, { "one", "two" })
  got = error_round_trip("route53", nil, { code = "Throttling", message = "Rate exceeded" })
end

function TestServerErrors.test_fields_need_a_modelled_error()
  local ec2 = models.load("ec2")
  local ok, err = pcall(proto.serialize_error, ec2, "DeleteVpc", { code = "X", message = "m", fields = { A = 1 } }, {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "error X has fields but ec2 models no such error")
  ok, err = pcall(proto.serialize_error, ec2, "DeleteVpc", { message = "m" }, {})
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the error has no code")
end

---------------------------------------------------------------- (4) bad requests

TestServerBadRequests = {}

local function refused(svc, req, code, status, message)
  local model = models.load(svc)
  req.headers = req.headers or {}
  req.method = req.method or "POST"
  req.path = req.path or "/"
  local ok, err = pcall(proto.parse_request, model, req)
  lu.assertFalse(ok, "accepted")
  lu.assertEquals(type(err), "table", tostring(err))
  lu.assertEquals(err.code, code, err.message)
  lu.assertEquals(err.status, status)
  if message then lu.assertStrContains(err.message, message) end
end

function TestServerBadRequests.test_query_and_ec2()
  refused("ec2", { body = "Version=2016-11-15" }, "MissingAction", 400)
  refused("ec2", { body = "Action=CreateVPC&Version=2016-11-15" }, "InvalidAction", 400,
    "The action CreateVPC is not valid for this web service.")
  refused("elbv2", { body = "Action=DescribeLoadBalancers&Version=2012-06-01" }, "InvalidAction", 400,
    "Could not find operation DescribeLoadBalancers for version 2012-06-01")
  refused("elbv2", { body = "Action=DescribeLoadBalancers" }, "MissingParameter", 400, "Version")
  refused("ec2", { body = "Action=DescribeVpcs&Version=2016-11-15&MaxResults=ten" },
    "InvalidParameterValue", 400, "Value (ten) for parameter MaxResults is invalid")
  refused("ec2", { body = "Action=CreateVpc&Version=2016-11-15&AmazonProvidedIpv6CidrBlock=yes" },
    "InvalidParameterValue", 400, "AmazonProvidedIpv6CidrBlock")
  refused("ec2", { body = "Action=DescribeVpcs&Version=2016-11-15&Filter.1.Nme=x" },
    "UnknownParameter", 400, "Filter.1.Nme")
  refused("ec2", { body = "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=%zz" },
    "MalformedQueryString", 404)
  refused("cloudwatch", { body = "Action=PutMetricData&Version=2010-08-01&Namespace=x&MetricData.member.1.MetricName=m&MetricData.member.1.Value=high" },
    "InvalidParameterValue", 400, "MetricData.member.1.Value")
  refused("sns", { body = "Action=Publish&Version=2010-03-31&MessageAttributes.entry.1.Value.DataType=String" },
    "MissingParameter", 400, "MessageAttributes.entry.1.Name")
  -- the query services ignore parameters they do not know (EC2 refuses them)
  local op, params = proto.parse_request(models.load("sts"),
    { method = "POST", path = "/", headers = {}, body = "Action=GetCallerIdentity&Version=2011-06-15&Foo=1" })
  lu.assertEquals(op, "GetCallerIdentity")
  lu.assertEquals(params, {})
  -- GET with the parameters in the query string
  op, params = proto.parse_request(models.load("iam"),
    { method = "GET", path = "/", headers = {}, query = "Action=GetRole&Version=2010-05-08&RoleName=r%20x", body = "" })
  lu.assertEquals(op, "GetRole")
  lu.assertEquals(params, { RoleName = "r x" })
end

function TestServerBadRequests.test_json()
  local target = { ["x-amz-target"] = "DynamoDB_20120810.DescribeTable" }
  refused("dynamodb", { body = "{}" }, "UnknownOperationException", 400)
  refused("dynamodb", { headers = { ["x-amz-target"] = "DynamoDB_20120810.Nope" }, body = "{}" },
    "UnknownOperationException", 400)
  refused("dynamodb", { headers = { ["x-amz-target"] = "AmazonSSM.GetParameter" }, body = "{}" },
    "UnknownOperationException", 400)
  refused("dynamodb", { headers = target, body = '{"TableName":' }, "SerializationException", 400,
    "malformed JSON body: truncated document at byte 13")
  refused("dynamodb", { headers = target, body = '{"TableName": 12}' }, "SerializationException", 400,
    "TableName: expected string, got number")
  refused("dynamodb", { headers = target, body = '[1]' }, "SerializationException", 400)
  refused("dynamodb", { headers = { ["x-amz-target"] = "DynamoDB_20120810.Scan" },
    body = '{"TableName":"t","Limit":1.5}' }, "SerializationException", 400, "Limit")
  refused("dynamodb", { headers = { ["x-amz-target"] = "DynamoDB_20120810.Scan" },
    body = '{"TableName":"t","AttributesToGet":{"a":1}}' }, "SerializationException", 400)
  -- an empty body is {}; unknown members are skipped (as the JSON services do)
  local op, params = proto.parse_request(models.load("dynamodb"),
    { method = "POST", path = "/", headers = { ["X-Amz-Target"] = "DynamoDB_20120810.ListTables" }, body = "" })
  lu.assertEquals(op, "ListTables")
  lu.assertEquals(params, {})
  op, params = proto.parse_request(models.load("dynamodb"),
    { method = "POST", path = "/", headers = target, body = '{"TableName":"t","Extra":[1]}' })
  lu.assertEquals(params, { TableName = "t" })
end

function TestServerBadRequests.test_rest_xml()
  refused("route53", { method = "GET", path = "/2013-04-01/nothing" }, "InvalidAction", 404)
  refused("route53", { method = "PATCH", path = "/2013-04-01/hostedzone/Z1" }, "InvalidAction", 404)
  refused("route53", { method = "POST", path = "/2013-04-01/healthcheck", body = "<CreateHealthCheckRequest" },
    "InvalidInput", 400, "invalid request body: ")
  refused("route53", { method = "POST", path = "/2013-04-01/healthcheck",
    body = '<CreateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">' ..
      "<CallerReference>c</CallerReference><HealthCheckConfig><RequestInterval>often</RequestInterval>" ..
      "</HealthCheckConfig></CreateHealthCheckRequest>" }, "InvalidInput", 400, "invalid integer 'often'")
  refused("route53", { method = "GET", path = "/2013-04-01/hostedzone/Z1/rrset", query = "maxitems=%g" },
    "InvalidInput", 400)
  -- routing: the most specific template wins, labels are percent-decoded
  local r53 = models.load("route53")
  local op, params = proto.parse_request(r53, { method = "GET", path = "/2013-04-01/hostedzone/Z1%2F2/rrset",
    headers = {}, query = "name=a.example.com.&type=A", body = "" })
  lu.assertEquals(op, "ListResourceRecordSets")
  lu.assertEquals(params, { HostedZoneId = "Z1/2", StartRecordName = "a.example.com.", StartRecordType = "A" })
  op, params = proto.parse_request(r53, { method = "GET", path = "/2013-04-01/hostedzone/Z1", headers = {}, body = "" })
  lu.assertEquals(op, "GetHostedZone")
  lu.assertEquals(params, { Id = "Z1" })
  op = proto.parse_request(r53, { method = "GET", path = "/2013-04-01/hostedzonesbyname", headers = {}, query = "", body = "" })
  lu.assertEquals(op, "ListHostedZonesByName")
end

function TestServerBadRequests.test_not_a_request()
  local ok, err = pcall(proto.parse_request, models.load("route53"), { path = "/" })
  lu.assertFalse(ok)
  lu.assertEquals(type(err), "string")
  lu.assertStrContains(err, "needs a method and a path")
end

---------------------------------------------------------------- (5) botocore reads them

TestServerBotocore = {}

local BOTO_OPS = {
  { "ec2", "DescribeVpcs" }, { "ec2", "DeleteVpc" }, { "ec2", "CreateSubnet" },
  { "elbv2", "DescribeLoadBalancers" }, { "elbv2", "CreateTargetGroup" },
  { "dynamodb", "DescribeTable" }, { "ssm", "GetParameter" },
  { "route53", "ListResourceRecordSets" }, { "route53", "GetChange" },
  { "route53", "CreateHealthCheck" }, { "iam", "GetRole" }, { "sts", "GetCallerIdentity" },
}

-- Lua values → JSON for the script: blobs ({"$bytes": b64}) per the model; everything
-- else as it is.
local function to_oracle(model, ref, v)
  local shape = ref and model.shapes[ref.shape]
  if shape and shape.type == "blob" then return { ["$bytes"] = fo.crypto.base64_encode(v) } end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    local sub = shape and (shape.type == "structure" and shape.members[k]
      or shape.type == "list" and shape.member or shape.type == "map" and shape.value) or nil
    out[k] = to_oracle(model, sub, x)
  end
  return out
end

function TestServerBotocore.test_botocore_parses_the_responses()
  local cases = {}
  for i, e in ipairs(BOTO_OPS) do
    local model = models.load(e[1])
    local op = model.operations[e[2]]
    local output = op.output and sample.value(model, op.output) or {}
    local resp = proto.serialize_response(model, e[2], output, { request_id = RID })
    local err = proto.serialize_error(model, e[2], { code = "SomethingWrong", message = "it <broke>",
      status = 400 }, { request_id = RID })
    cases[i] = { service = e[1], operation = e[2], response = resp, error = err,
                 expected = to_oracle(model, op.output, output) }
  end
  local dir = testlib.tmpdir()
  local path = dir .. "/cases.json"
  testlib.write(path, cjson.encode(cases))
  local r = fo.process.run{ argv = { "/usr/bin/python3", testlib.tests_dir .. "/conformance/server_check.py", path },
    timeout = 60 }
  testlib.rmtree(dir)
  lu.assertEquals(r.code, 0, r.stderr)
  local results = cjson.decode(r.stdout)
  lu.assertEquals(#results, #cases)
  for i, res in ipairs(results) do
    local name = cases[i].service .. "." .. cases[i].operation
    lu.assertEquals(res.problems, {}, name)
    lu.assertEquals(res.error, { code = "SomethingWrong", message = "it <broke>", request_id = RID }, name)
  end
end

os.exit(lu.LuaUnit.run())
