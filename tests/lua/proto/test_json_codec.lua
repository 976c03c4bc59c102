-- fo.awsproto's json protocol beyond AWS's compliance suites: the JSON parser's strictness
-- (malformed, truncated, deep, numbers, unicode), real DynamoDB and SSM documents with the
-- real models, error documents in every form AWS sends, event streams, and the serializer.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local proto = require "fo.awsproto"

local load_model = require("fo.aws.models").load

local dynamodb = load_model("dynamodb")
local ssm = load_model("ssm")

local function ok(body, headers, status)
  return { status = status or 200, headers = headers or {}, body = body }
end

-- A one-operation json model: Out is the output shape, In the input shape.
local SHAPES = {
  Out = { type = "structure", members = {
    S = { shape = "Str" }, I = { shape = "Int" }, L = { shape = "Long" },
    D = { shape = "Double" }, F = { shape = "Float" }, B = { shape = "Bool" },
    T = { shape = "Ts" }, Bl = { shape = "Blob" }, Doc = { shape = "Doc" },
    List = { shape = "StrList" }, Map = { shape = "StrMap" }, Sub = { shape = "Out" },
    Renamed = { shape = "Str", locationName = "wire_name" },
    U = { shape = "Union" },
  } },
  Str = { type = "string" }, Int = { type = "integer" }, Long = { type = "long" },
  Double = { type = "double" }, Float = { type = "float" }, Bool = { type = "boolean" },
  Ts = { type = "timestamp" }, Blob = { type = "blob" },
  Iso = { type = "timestamp", timestampFormat = "iso8601" },
  Doc = { type = "structure", members = {}, document = true },
  StrList = { type = "list", member = { shape = "Str" } },
  StrMap = { type = "map", key = { shape = "Str" }, value = { shape = "Str" } },
  Union = { type = "structure", union = true, members = { A = { shape = "Str" } } },
  Err = { type = "structure", exception = true, error = { code = "Legacy.Code", senderFault = true },
          members = { Reason = { shape = "Str" }, message = { shape = "Str" } } },
}

local function model(extra_op, version)
  local op = { name = "Op", http = { method = "POST", requestUri = "/" },
               input = { shape = "Out" }, output = { shape = "Out" } }
  for k, v in pairs(extra_op or {}) do op[k] = v end
  return { name = "svc", metadata = { protocol = "json", jsonVersion = version or "1.1",
                                      targetPrefix = "Svc_2020" },
           shapes = SHAPES, operations = { Op = op } }
end
local M = model()

local function parse(body) return proto.parse(M, "Op", ok(body)) end

-- The error raised for body, checked against a pattern.
local function parse_fails(body, pattern)
  local okp, err = pcall(parse, body)
  lu.assertFalse(okp, "accepted: " .. body)
  -- (luaL_error's "file:line:" of the Lua caller comes first)
  lu.assertStrMatches(tostring(err), "^.-svc%.Op: malformed JSON response: " .. pattern)
end

-- ---------------------------------------------------------------- malformed input

TestJsonMalformed = {}

function TestJsonMalformed.test_truncated_documents_name_the_byte()
  parse_fails('{"S": "abc', "truncated string at byte 10")
  parse_fails('{"S": ', "truncated document at byte 6")
  parse_fails('{"S"', "truncated object at byte 4")
  parse_fails('{"List": ["a",', "truncated document at byte 14")
  parse_fails('{"List": ["a"', "truncated array at byte 13")
  parse_fails('{"I": 12', "truncated object at byte 8")
  parse_fails('{"I": -', "truncated number at byte 7")
  parse_fails('{"B": tru', "truncated literal at byte 6")
  parse_fails('{"S": "\\u12', "truncated \\u escape at byte 9")
  parse_fails('{', "truncated object at byte 1")
  -- every prefix of a real document fails cleanly (or parses, for the empty one)
  local doc = '{"S":"x\\u00e9","I":-12,"D":1.5e3,"B":true,"List":["a",null],"Map":{"k":"v"}}'
  for i = 1, #doc - 1 do
    local okp, err = pcall(parse, doc:sub(1, i))
    lu.assertFalse(okp, "prefix accepted: " .. doc:sub(1, i))
    lu.assertStrContains(err, "malformed JSON response")
  end
end

function TestJsonMalformed.test_syntax_errors()
  parse_fails('{"S": "a",}', "trailing comma at byte 10")
  parse_fails('{"List": [1,]}', "trailing comma at byte 12")
  parse_fails('{"S" "a"}', "expected ':' at byte 5")
  parse_fails('{"S": "a" "I": 1}', "expected ',' or '}' at byte 10")
  parse_fails("{'S': 1}", "expected a member name at byte 1")
  parse_fails('{"S": "a"} x', "unexpected data after the document at byte 11")
  parse_fails('{"S": "a"}{}', "unexpected data after the document at byte 10")
  parse_fails('{"I": 01}', "leading zero in number at byte 7")
  parse_fails('{"I": 1.}', "invalid number at byte 8")
  parse_fails('{"I": .5}', "unexpected character at byte 6")
  parse_fails('{"I": +1}', "unexpected character at byte 6")
  parse_fails('{"I": 1e}', "invalid number at byte 8")
  parse_fails('{"B": True}', "unexpected character at byte 6")
  parse_fails('{"B": nul}', "invalid literal at byte 6")
  parse_fails('{"S": NaN}', "unexpected character at byte 6")
  parse_fails('{"S": "a\tb"}', "control character in string at byte 8")
  parse_fails('{"S": "\\x"}', "invalid escape in string at byte 7")
  parse_fails("\239\187\191{}", "unexpected character at byte 0") -- a BOM is not JSON
end

function TestJsonMalformed.test_invalid_utf8_and_surrogates()
  parse_fails('{"S": "\255"}', "invalid UTF%-8 in string at byte 7")
  parse_fails('{"S": "\192\175"}', "invalid UTF%-8 in string at byte 7") -- overlong '/'
  parse_fails('{"S": "\237\160\128"}', "invalid UTF%-8 in string at byte 7") -- U+D800
  parse_fails('{"S": "\244\144\128\128"}', "invalid UTF%-8 in string at byte 7") -- > U+10FFFF
  parse_fails('{"S": "\226\130"}', "invalid UTF%-8 in string at byte 7") -- truncated
  parse_fails('{"\255": 1}', "invalid UTF%-8 in string at byte 2") -- in a member name
  parse_fails('{"S": "\\ud83d"}', "lone high surrogate in \\u escape at byte 7")
  parse_fails('{"S": "\\ud83dx"}', "lone high surrogate in \\u escape at byte 7")
  parse_fails('{"S": "\\ud83d\\u0041"}', "lone high surrogate in \\u escape at byte 7")
  parse_fails('{"S": "\\ude00"}', "lone low surrogate in \\u escape at byte 7")
  parse_fails('{"S": "\\u12g4"}', "invalid \\u escape at byte 7")
end

function TestJsonMalformed.test_depth_is_bounded()
  -- an unknown member, a document and a list all count levels
  local function nested(n) return ("["):rep(n) .. ("]"):rep(n) end
  local r = parse('{"Unknown": ' .. nested(250) .. ', "Doc": ' .. nested(200) .. '}')
  lu.assertEquals(type(r.Doc), "table")
  parse_fails('{"Unknown": ' .. nested(300) .. '}', "nesting too deep at byte 267")
  parse_fails('{"Doc": ' .. nested(100000) .. '}', "nesting too deep at byte 263")
  parse_fails(("{\"Sub\": "):rep(300) .. "{}" .. ("}"):rep(300), "nesting too deep at byte 2048")
end

function TestJsonMalformed.test_shape_mismatches()
  parse_fails('{"Sub": [1]}', "an array where the model expects a structure at byte 8")
  parse_fails('{"List": {"a": 1}}', "an object where the model expects a list at byte 9")
  parse_fails('{"Map": "x"}', "a string where the model expects a map at byte 8")
  parse_fails('[]', "an array where the model expects a structure at byte 0")
  parse_fails('{"Bl": "not base64!"}', "invalid base64 in a blob at byte 7")
  parse_fails('{"T": "yesterday"}', "invalid timestamp at byte 6")
  -- scalars of another JSON type pass through, as botocore does
  local r = parse('{"S": 12, "I": "12", "B": "yes", "Map": {"k": {"x": [1]}}}')
  lu.assertEquals(r.S, 12)
  lu.assertEquals(r.I, "12")
  lu.assertEquals(r.B, "yes")
  lu.assertEquals(r.Map.k, { x = { 1 } })
end

function TestJsonMalformed.test_empty_and_null_bodies()
  lu.assertEquals(parse(""), {})
  lu.assertEquals(parse(" \r\n\t"), {})
  lu.assertEquals(parse("null"), {})
  lu.assertEquals(parse('{"S": null, "List": null, "Sub": null}'), {})
  lu.assertEquals(parse('{"S": "a", "S": null}'), {}) -- the last duplicate wins
  lu.assertEquals(parse('{"S": null, "S": "b"}'), { S = "b" })
end

-- ---------------------------------------------------------------- values

TestJsonValues = {}

function TestJsonValues.test_numbers()
  -- Integers are Lua integers while they fit 64 bits; beyond, they become floats (the value
  -- rounded to the nearest double) rather than an error: AWS's longs fit, and a float is
  -- the most faithful value Lua can hold for the others.
  local r = parse('{"I": 2147483647, "L": 9223372036854775807, "Sub": {"L": -9223372036854775808}}')
  lu.assertEquals(math.type(r.I), "integer")
  lu.assertEquals(r.L, math.maxinteger)
  lu.assertEquals(r.Sub.L, math.mininteger)
  r = parse('{"L": 9223372036854775808, "Sub": {"L": -99999999999999999999}}')
  lu.assertEquals(math.type(r.L), "float")
  lu.assertEquals(r.L, 2.0 ^ 63)
  lu.assertEquals(r.Sub.L, -1e20)
  -- an integer shape with an integral value written with a fraction or an exponent
  r = parse('{"I": 1.0, "L": 2e3, "Sub": {"I": 1.5}}')
  lu.assertEquals(math.type(r.I), "integer")
  lu.assertEquals(r.L, 2000)
  lu.assertEquals(math.type(r.L), "integer")
  lu.assertEquals(r.Sub.I, 1.5)
  -- floats are floats, even when written as integers; huge ones are infinite
  r = parse('{"D": 1, "F": -0.0, "Sub": {"D": 1e400, "F": 123456789.12345679}}')
  lu.assertEquals(math.type(r.D), "float")
  lu.assertEquals(1 / r.F, -math.huge)
  lu.assertEquals(r.Sub.D, math.huge)
  lu.assertEquals(r.Sub.F, 123456789.12345679)
  r = parse('{"D": "NaN", "F": "-Infinity", "Sub": {"D": "Infinity", "F": "other"}}')
  lu.assertNotEquals(r.D, r.D)
  lu.assertEquals(r.F, -math.huge)
  lu.assertEquals(r.Sub.D, math.huge)
  lu.assertEquals(r.Sub.F, "other")
  -- a very long number is read whole
  r = parse('{"D": 0.' .. ("1"):rep(5000) .. ', "I": ' .. ("9"):rep(400) .. '}')
  lu.assertAlmostEquals(r.D, 0.1111111111111111, 1e-15)
  lu.assertEquals(r.I, math.huge)
end

function TestJsonValues.test_unicode_escapes()
  local r = parse('{"S": "caf\\u00e9 \\u20ac \\ud83d\\ude00 \\u0000 \\"\\\\\\/\\b\\f\\n\\r\\t",'
    .. ' "List": ["\\uD834\\uDD1E", "raw: \226\130\172 \240\159\152\128"]}')
  lu.assertEquals(r.S, "café € 😀 \0 \"\\/\b\f\n\r\t")
  lu.assertEquals(r.List[1], "𝄞")
  lu.assertEquals(r.List[2], "raw: € 😀")
  -- escaped member names still find their member
  lu.assertEquals(parse('{"\\u0053": "x"}'), { S = "x" })
end

function TestJsonValues.test_shapes()
  local r = parse('{"T": 1398796238.5, "Sub": {"T": "2014-04-29T18:30:38Z", "Sub": {"T": '
    .. '"Tue, 29 Apr 2014 18:30:38 GMT"}}, "Bl": "aGkh", "B": false, "wire_name": "w",'
    .. ' "Renamed": "ignored", "List": ["a", null, "c"], "Map": {"k": "v", "n": null},'
    .. ' "Doc": {"a": [1, 2.5, "x", true, null, {}]}, "Unknown": {"deep": [1, {"x": 2}]}}')
  lu.assertEquals(r.T, 1398796238.5)
  lu.assertEquals(r.Sub.T, 1398796238)
  lu.assertEquals(math.type(r.Sub.T), "integer")
  lu.assertEquals(r.Sub.Sub.T, 1398796238)
  lu.assertEquals(r.Bl, "hi!")
  lu.assertEquals(r.B, false)
  lu.assertEquals(r.Renamed, "w")
  lu.assertEquals(r.List[1], "a")
  lu.assertNil(r.List[2])
  lu.assertEquals(r.List[3], "c")
  lu.assertEquals(r.Map, { k = "v" })
  lu.assertEquals(r.Doc, { a = { 1, 2.5, "x", true, [6] = {} } })
  lu.assertNil(r.Unknown)
end

function TestJsonValues.test_unions()
  lu.assertEquals(parse('{"U": {"A": "x", "__type": "ns#Union"}}').U, { A = "x" })
  lu.assertEquals(parse('{"U": {"New": {"y": 1}}}').U, { SDK_UNKNOWN_MEMBER = { name = "New" } })
  lu.assertEquals(parse('{"U": {"New": null, "A": "x"}}').U, { A = "x" })
end

-- ---------------------------------------------------------------- real documents

TestJsonRealDocuments = {}

local DESCRIBE_TABLE = [[
{"Table":{"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},
{"AttributeName":"sk","AttributeType":"S"},{"AttributeName":"gsi1pk","AttributeType":"S"}],
"BillingModeSummary":{"BillingMode":"PAY_PER_REQUEST","LastUpdateToPayPerRequestDateTime":1.700000123456E9},
"CreationDateTime":1.693926479937E9,"DeletionProtectionEnabled":false,"NotInTheModel":{"X":1},
"GlobalSecondaryIndexes":[{"IndexArn":"arn:aws:dynamodb:eu-south-1:123456789012:table/orders/index/gsi1",
"IndexName":"gsi1","IndexSizeBytes":0,"IndexStatus":"ACTIVE","ItemCount":0,
"KeySchema":[{"AttributeName":"gsi1pk","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"},
"ProvisionedThroughput":{"NumberOfDecreasesToday":0,"ReadCapacityUnits":0,"WriteCapacityUnits":0}}],
"ItemCount":1234567,"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
"LatestStreamArn":"arn:aws:dynamodb:eu-south-1:123456789012:table/orders/stream/2023-09-05T15:07:59.937",
"LatestStreamLabel":"2023-09-05T15:07:59.937",
"ProvisionedThroughput":{"NumberOfDecreasesToday":0,"ReadCapacityUnits":0,"WriteCapacityUnits":0},
"Replicas":[{"RegionName":"eu-central-1","ReplicaStatus":"ACTIVE","ReplicaTableClassSummary":{"TableClass":"STANDARD"}}],
"SSEDescription":{"SSEType":"KMS","Status":"ENABLED","KMSMasterKeyArn":"arn:aws:kms:eu-south-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
"StreamSpecification":{"StreamEnabled":true,"StreamViewType":"NEW_AND_OLD_IMAGES"},
"TableArn":"arn:aws:dynamodb:eu-south-1:123456789012:table/orders",
"TableClassSummary":{"TableClass":"STANDARD"},
"TableId":"4f0c4c9e-8d1e-4c52-9bb4-1f2a3b4c5d6e","TableName":"orders","TableSizeBytes":987654321012,
"TableStatus":"ACTIVE","GlobalTableVersion":"2019.11.21"}}]]

function TestJsonRealDocuments.test_dynamodb_describe_table()
  local r = proto.parse(dynamodb, "DescribeTable", ok(DESCRIBE_TABLE,
    { ["content-type"] = "application/x-amz-json-1.0", ["x-amzn-requestid"] = "ABC" }))
  local t = r.Table
  lu.assertEquals(t.TableName, "orders")
  lu.assertEquals(t.TableStatus, "ACTIVE")
  lu.assertEquals(t.ItemCount, 1234567)
  lu.assertEquals(math.type(t.ItemCount), "integer")
  lu.assertEquals(t.TableSizeBytes, 987654321012)
  lu.assertAlmostEquals(t.CreationDateTime, 1693926479.937, 1e-6)
  lu.assertEquals(t.BillingModeSummary.LastUpdateToPayPerRequestDateTime, 1700000123.456)
  lu.assertFalse(t.DeletionProtectionEnabled)
  lu.assertNil(t.NotInTheModel) -- a member the model lacks (a newer API's): skipped
  lu.assertEquals(#t.AttributeDefinitions, 3)
  lu.assertEquals(t.KeySchema[2], { AttributeName = "sk", KeyType = "RANGE" })
  lu.assertEquals(t.GlobalSecondaryIndexes[1].Projection.ProjectionType, "ALL")
  lu.assertEquals(t.GlobalSecondaryIndexes[1].ProvisionedThroughput.NumberOfDecreasesToday, 0)
  lu.assertEquals(t.Replicas[1].RegionName, "eu-central-1")
  lu.assertEquals(t.StreamSpecification, { StreamEnabled = true, StreamViewType = "NEW_AND_OLD_IMAGES" })
  lu.assertEquals(t.SSEDescription.SSEType, "KMS")
  lu.assertEquals(t.GlobalTableVersion, "2019.11.21")
end

function TestJsonRealDocuments.test_dynamodb_get_item_attribute_values()
  local body = [[{"Item":{"pk":{"S":"order#1"},"qty":{"N":"12"},"raw":{"B":"AAEC/w=="},
    "tags":{"SS":["a","b"]},"doc":{"M":{"nested":{"L":[{"BOOL":true},{"NULL":true},{"N":"-1.5e3"}]}}},
    "bins":{"BS":["AQ==","Ag=="]}}}]]
  local r = proto.parse(dynamodb, "GetItem", ok(body))
  lu.assertEquals(r.Item.pk, { S = "order#1" })
  lu.assertEquals(r.Item.qty, { N = "12" })
  lu.assertEquals(r.Item.raw, { B = "\0\1\2\255" })
  lu.assertEquals(r.Item.tags, { SS = { "a", "b" } })
  lu.assertEquals(r.Item.doc.M.nested.L, { { BOOL = true }, { NULL = true }, { N = "-1.5e3" } })
  lu.assertEquals(r.Item.bins, { BS = { "\1", "\2" } })
end

function TestJsonRealDocuments.test_ssm_get_parameter()
  local body = [[{"Parameter":{"ARN":"arn:aws:ssm:eu-south-1:123456789012:parameter/trading/primary",
    "DataType":"text","LastModifiedDate":1.700000000123E9,"Name":"/trading/primary","Selector":":3",
    "Type":"String","Value":"eu-south-1 \u2192 eu-central-1","Version":3}}]]
  local r = proto.parse(ssm, "GetParameter", ok(body))
  lu.assertEquals(r.Parameter.Name, "/trading/primary")
  lu.assertEquals(r.Parameter.Value, "eu-south-1 → eu-central-1")
  lu.assertEquals(r.Parameter.Version, 3)
  lu.assertEquals(math.type(r.Parameter.Version), "integer")
  lu.assertAlmostEquals(r.Parameter.LastModifiedDate, 1700000000.123, 1e-6)
  lu.assertEquals(r.Parameter.Type, "String")
end

function TestJsonRealDocuments.test_dynamodb_requests()
  local req = proto.serialize(dynamodb, "PutItem", {
    TableName = "orders",
    Item = { pk = { S = "order#1" }, raw = { B = "\0\1\2\255" }, qty = { N = "12" },
             doc = { M = { l = { L = { { BOOL = true }, { NULL = true } } } } } },
    ConditionExpression = "attribute_not_exists(pk)",
  })
  lu.assertEquals(req.method, "POST")
  lu.assertEquals(req.path, "/")
  lu.assertEquals(req.headers["X-Amz-Target"], "DynamoDB_20120810.PutItem")
  lu.assertEquals(req.headers["Content-Type"], "application/x-amz-json-1.0")
  lu.assertEquals(cjson.decode(req.body), {
    TableName = "orders", ConditionExpression = "attribute_not_exists(pk)",
    Item = { pk = { S = "order#1" }, raw = { B = "AAEC/w==" }, qty = { N = "12" },
             doc = { M = { l = { L = { { BOOL = true }, { NULL = true } } } } } } })
  -- deterministic: members in sorted order
  lu.assertEquals(req.body, proto.serialize(dynamodb, "PutItem", {
    ConditionExpression = "attribute_not_exists(pk)", TableName = "orders",
    Item = { qty = { N = "12" }, raw = { B = "\0\1\2\255" }, pk = { S = "order#1" },
             doc = { M = { l = { L = { { BOOL = true }, { NULL = true } } } } } } }).body)
  req = proto.serialize(ssm, "GetParameter", { Name = "/trading/primary", WithDecryption = true })
  lu.assertEquals(req.headers["X-Amz-Target"], "AmazonSSM.GetParameter")
  lu.assertEquals(req.headers["Content-Type"], "application/x-amz-json-1.1")
  lu.assertEquals(req.body, '{"Name":"/trading/primary","WithDecryption":true}')
end

-- ---------------------------------------------------------------- errors

TestJsonErrors = {}

local function perr(body, headers, status, m)
  return proto.parse_error(m or M, "Op", ok(body, headers, status or 400))
end

function TestJsonErrors.test_dynamodb_resource_not_found()
  local e = proto.parse_error(dynamodb, "DescribeTable", ok(
    '{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",'
      .. '"message":"Requested resource not found: Table: orders not found"}',
    { ["x-amzn-requestid"] = "REQ123", ["content-type"] = "application/x-amz-json-1.0" }, 400))
  lu.assertEquals(e, { code = "ResourceNotFoundException", type = "Sender",
    message = "Requested resource not found: Table: orders not found", request_id = "REQ123",
    fields = { message = "Requested resource not found: Table: orders not found" } })
end

function TestJsonErrors.test_ssm_parameter_not_found_with_header_case()
  local e = proto.parse_error(ssm, "GetParameter", ok('{"__type":"ParameterNotFound"}',
    { ["X-Amzn-RequestId"] = "R-1" }, 400))
  lu.assertEquals(e.code, "ParameterNotFound")
  lu.assertEquals(e.request_id, "R-1")
  lu.assertNil(e.message)
  lu.assertEquals(e.fields, {})
end

function TestJsonErrors.test_code_sources_and_forms()
  local forms = {
    { '{"__type": "FooError"}', {} },
    { '{"__type": "aws.protocoltests.json#FooError"}', {} },
    { '{"__type": "aws.protocoltests.json#FooError:http://internal.amazon.com/coral/x/"}', {} },
    { "", { ["x-amzn-errortype"] = "FooError" } },
    { "", { ["x-amzn-errortype"] = "FooError:http://internal.amazon.com/coral/x/" } },
    { "", { ["x-amzn-errortype"] = "aws.json#FooError:http://internal.amazon.com/coral/x/" } },
    { '{"code": "FooError"}', {} },
    { '{"code": "aws.protocoltests.json#FooError"}', {} },
    { '{"Code": "aws.protocoltests.json#FooError:http://internal.amazon.com/coral/x/"}', {} },
    { '{"__type": "FooError", "code": "Other"}', { ["x-amzn-errortype"] = "Other" } },
  }
  for _, f in ipairs(forms) do
    lu.assertEquals(perr(f[1], f[2]).code, "FooError", f[1] .. " " .. cjson.encode(f[2]))
  end
end

function TestJsonErrors.test_query_compatible_header_and_error_code_trait()
  local e = perr('{"__type": "ns#Err", "message": "m", "Reason": "r"}',
    { ["x-amzn-query-error"] = "Legacy.Code;Receiver" }, 400)
  lu.assertEquals(e.code, "Legacy.Code")
  lu.assertEquals(e.type, "Receiver")
  lu.assertEquals(e.fields, { Reason = "r", message = "m" }) -- found by its error.code
  e = perr('{"__type": "ns#Err", "Message": "M", "Reason": "r"}', {}, 400)
  lu.assertEquals(e.code, "Err")
  lu.assertEquals(e.message, "M")
  lu.assertEquals(e.type, "Sender") -- error.senderFault
  lu.assertEquals(e.fields, { Reason = "r" })
  -- a code that names a shape that is not an error shape has no fields
  lu.assertEquals(perr('{"__type": "Out", "S": "x"}').fields, {})
end

function TestJsonErrors.test_bodies_that_are_not_json()
  local e = perr("<html><body>503 Service Unavailable</body></html>",
    { ["x-amz-request-id"] = "R2" }, 503)
  lu.assertNil(e.code)
  lu.assertEquals(e.message, "<html><body>503 Service Unavailable</body></html>")
  lu.assertEquals(e.type, "Receiver")
  lu.assertEquals(e.request_id, "R2")
  lu.assertEquals(e.fields, {})
  lu.assertEquals(#perr(("x"):rep(2000)).message, 512)
  e = perr('{"__type": "Err", "Reason": "r"', {}, 400) -- truncated
  lu.assertNil(e.code)
  e = perr('{"__type": "Err", "Reason": ["not", "a", "string"]}', {}, 400)
  lu.assertEquals(e.code, "Err")
  lu.assertEquals(e.fields, { Reason = { "not", "a", "string" } })
  e = perr('{"__type": "Err", "Reason": {"x": 1}, "message": 5}', {}, 400)
  lu.assertNil(e.message) -- not a string
  lu.assertEquals(perr("", {}, 500), { type = "Receiver", fields = {} })
  e = perr('[1, 2]', {}, 400)
  lu.assertNil(e.code)
  lu.assertNil(e.message)
end

-- ---------------------------------------------------------------- event streams

TestJsonEventStream = {}

local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1) == 1 and (0xEDB88320 ~ (c >> 1)) or (c >> 1) end
  crc_table[i] = c
end
local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do c = crc_table[(c ~ s:byte(i)) & 0xFF] ~ (c >> 8) end
  return c ~ 0xFFFFFFFF
end

local function message(headers, payload)
  local h = {}
  for _, kv in ipairs(headers) do
    h[#h + 1] = string.pack(">s1B s2", kv[1], 7, kv[2])
  end
  h = table.concat(h)
  local total = 16 + #h + #payload
  local prelude = string.pack(">I4I4", total, #h)
  local m = prelude .. string.pack(">I4", crc32(prelude)) .. h .. payload
  return m .. string.pack(">I4", crc32(m))
end

local function event(name, payload)
  return message({ { ":message-type", "event" }, { ":event-type", name } }, payload)
end

local ES_SHAPES = {
  Out = { type = "structure", members = { Initial = { shape = "Str" }, Stream = { shape = "Stream" } } },
  Stream = { type = "structure", eventstream = true, members = { Ev = { shape = "Ev" } } },
  Ev = { type = "structure", event = true, members = { Data = { shape = "Str" } } },
  Str = { type = "string" },
}
local ES = { name = "svc", metadata = { protocol = "json", jsonVersion = "1.1", targetPrefix = "S" },
             shapes = ES_SHAPES, operations = { Op = { name = "Op", output = { shape = "Out" } } } }

function TestJsonEventStream.test_events()
  local body = event("initial-response", '{"Initial": "hi"}') .. event("Ev", '{"Data": "one"}')
    .. event("Unknown", "{}") .. event("Ev", '{"Data": "two"}')
  lu.assertEquals(proto.parse(ES, "Op", ok(body)),
    { Initial = "hi", Stream = { { Ev = { Data = "one" } }, {}, { Ev = { Data = "two" } } } })
end

function TestJsonEventStream.test_malformed_streams()
  local good = event("initial-response", "{}") .. event("Ev", '{"Data": "one"}')
  local function fails(body, pattern)
    local okp, err = pcall(proto.parse, ES, "Op", ok(body))
    lu.assertFalse(okp)
    lu.assertStrMatches(err, "^.-svc%.Op: " .. pattern)
  end
  fails(good:sub(1, -2), "malformed event stream response: bad message length at byte %d+")
  fails(good:sub(1, #good - 5), "malformed event stream response: .* at byte %d+")
  fails(good:sub(1, 20) .. "X" .. good:sub(22), "malformed event stream response: .*checksum.*")
  fails(event("Ev", "{}"), "malformed event stream response: the first event is not the "
    .. "initial%-response at byte 0")
  fails("", "malformed event stream response: no initial%-response event at byte 0")
  fails(event("initial-response", "{") , "malformed JSON response: truncated object at byte %d+")
  fails(event("initial-response", "{}") .. message({ { ":message-type", "exception" },
    { ":exception-type", "Boom" } }, '{"message": "bad"}'), "event stream exception Boom: .*bad.*")
  -- every truncation fails cleanly (but the end of the first message is a whole stream)
  local first = #event("initial-response", "{}")
  for i = 1, #good - 1 do
    if i ~= first then lu.assertFalse(pcall(proto.parse, ES, "Op", ok(good:sub(1, i))), i) end
  end
end

-- ---------------------------------------------------------------- serializer

TestJsonSerialize = {}

local function ser(params, m) return proto.serialize(m or M, "Op", params) end

function TestJsonSerialize.test_headers_and_empty_input()
  local req = ser({})
  lu.assertEquals(req.body, "{}")
  lu.assertEquals(req.headers, { ["Content-Type"] = "application/x-amz-json-1.1",
                                 ["X-Amz-Target"] = "Svc_2020.Op" })
  local m = model({ input = false }, "1.0")
  m.operations.Op.input = nil
  req = proto.serialize(m, "Op", nil)
  lu.assertEquals(req.body, "{}")
  lu.assertEquals(req.headers["Content-Type"], "application/x-amz-json-1.0")
  lu.assertNil(req.host_prefix)
  m = model({ endpoint = { hostPrefix = "data-{S}." } })
  lu.assertEquals(proto.serialize(m, "Op", { S = "abc" }).host_prefix, "data-abc.")
  lu.assertErrorMsgContains("S: required", proto.serialize, m, "Op", {})
end

function TestJsonSerialize.test_strings_are_escaped()
  local req = ser({ S = "q\" b\\ s/ \b\f\n\r\t \1 \31 \127 é € 😀" })
  lu.assertEquals(req.body,
    '{"S":"q\\" b\\\\ s/ \\b\\f\\n\\r\\t \\u0001 \\u001f \127 é € 😀"}')
  lu.assertEquals(cjson.decode(req.body).S, "q\" b\\ s/ \b\f\n\r\t \1 \31 \127 é € 😀")
  lu.assertErrorMsgContains("svc.Op: S: string is not valid UTF-8", ser, { S = "\255" })
  lu.assertErrorMsgContains("svc.Op: List[2]: string is not valid UTF-8", ser,
    { List = { "a", "\237\160\128" } })
  lu.assertErrorMsgContains("svc.Op: Map: string is not valid UTF-8", ser, { Map = { ["\192"] = "x" } })
end

function TestJsonSerialize.test_values()
  lu.assertEquals(ser({
    I = 3.0, L = math.maxinteger, D = 0.1, F = 1e300, B = false, T = 1398796238.25,
    Bl = "\0\255", Renamed = "r", List = {}, Map = {}, Sub = { T = "2014-04-29T18:30:38Z" },
    Doc = { a = { 1, 2.5, "x", true, {} } },
  }).body, '{"B":false,"Bl":"AP8=","D":0.1,"Doc":{"a":[1,2.5,"x",true,{}]},"F":1e+300,"I":3,'
    .. '"L":9223372036854775807,"List":[],"Map":{},"wire_name":"r","Sub":{"T":1398796238},'
    .. '"T":1398796238.25}')
  lu.assertStrContains(ser({ I = 3.0 }).body, '"I":3}')
  lu.assertStrContains(ser({ D = 0.1 }).body, '"D":0.1}')
  lu.assertStrContains(ser({ L = math.mininteger }).body, '"L":-9223372036854775808}')
  lu.assertEquals(ser({ D = 0 / 0, F = math.huge, Sub = { D = -math.huge, F = "NaN" } }).body,
    '{"D":"NaN","F":"Infinity","Sub":{"D":"-Infinity","F":"NaN"}}')
  lu.assertEquals(ser({ List = { "a", cjson.null, "c" }, S = cjson.null }).body,
    '{"List":["a",null,"c"]}')
  local iso = model()
  iso.shapes = setmetatable({ Out = { type = "structure", members = {
    T = { shape = "Ts", timestampFormat = "iso8601" }, R = { shape = "Ts", timestampFormat = "rfc822" },
    I = { shape = "Iso" } } } }, { __index = SHAPES })
  lu.assertEquals(cjson.decode(ser({ T = 1398796238.5, R = 1398796238, I = 1398796238 }, iso).body),
    { T = "2014-04-29T18:30:38.500Z", R = "Tue, 29 Apr 2014 18:30:38 GMT", I = "2014-04-29T18:30:38Z" })
end

function TestJsonSerialize.test_type_errors_name_the_member()
  local cases = {
    { { S = 1 }, "svc.Op: S: expected string, got number" },
    { { I = 1.5 }, "svc.Op: I: expected an integer, got a number with a fraction" },
    { { I = "1" }, "svc.Op: I: expected integer, got string" },
    { { D = "1.5" }, "svc.Op: D: expected number, got string" },
    { { B = 0 }, "svc.Op: B: expected boolean, got number" },
    { { T = "soon" }, "svc.Op: T: expected a timestamp" },
    { { T = {} }, "svc.Op: T: expected timestamp" },
    { { Bl = 1 }, "svc.Op: Bl: expected string (a blob), got number" },
    { { Sub = { Sub = { List = { "a", 2 } } } }, "svc.Op: Sub.Sub.List[2]: expected string, got number" },
    { { List = { x = "a" } }, "svc.Op: List: expected a list (a Lua array)" },
    { { List = "a" }, "svc.Op: List: expected table (a list), got string" },
    { { Map = { k = 1 } }, "svc.Op: Map.k: expected string, got number" },
    { { Map = { [1] = "x" } }, "svc.Op: Map: expected a table with string keys, got a number key" },
    { { Nope = 1 }, "svc.Op: Nope: unknown member" },
    { { Sub = 1 }, "svc.Op: Sub: expected table, got number" },
    { { Doc = { x = 0 / 0 } }, "svc.Op: Doc.x: a document cannot hold NaN or infinity" },
    { { Doc = { f = print } }, "svc.Op: Doc.f: expected a document value" },
  }
  for _, c in ipairs(cases) do
    lu.assertErrorMsgContains(c[2], ser, c[1])
  end
  local cyclic = {}
  cyclic.Sub = cyclic
  lu.assertErrorMsgContains("nesting too deep", ser, cyclic)
  local doc = {}
  doc[1] = doc
  lu.assertErrorMsgContains("nesting too deep", ser, { Doc = doc })
end

os.exit(lu.LuaUnit.run())
