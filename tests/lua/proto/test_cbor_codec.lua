-- fo.awsproto's CBOR codec beyond AWS's compliance suites: the decoder against RFC 8949's
-- examples (Appendix A), its strictness (truncation, reserved values, breaks, UTF-8, tags,
-- nesting), the encoder's heads and floats, and the smithy-rpc-v2-cbor client and server
-- sides on a small model (round trips, errors with x-amzn-query-error).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local proto = require "fo.awsproto"

local function unhex(h)
  return (h:gsub("%s", ""):gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

TestCborDecode = {}

-- RFC 8949 Appendix A: encoded form → value.
local EXAMPLES = {
  { "00", 0 }, { "01", 1 }, { "0a", 10 }, { "17", 23 }, { "1818", 24 }, { "1819", 25 },
  { "1864", 100 }, { "1903e8", 1000 }, { "1a000f4240", 1000000 },
  { "1b000000e8d4a51000", 1000000000000 }, { "20", -1 }, { "29", -10 }, { "3863", -100 },
  { "3903e7", -1000 }, { "f90000", 0.0 }, { "f93c00", 1.0 }, { "fb3ff199999999999a", 1.1 },
  { "f93e00", 1.5 }, { "f97bff", 65504.0 }, { "fa47c35000", 100000.0 },
  { "fa7f7fffff", 3.4028234663852886e+38 }, { "fb7e37e43c8800759c", 1.0e+300 },
  { "f90001", 5.960464477539063e-8 }, { "f90400", 0.00006103515625 }, { "f9c400", -4.0 },
  { "fbc010666666666666", -4.1 }, { "f97c00", math.huge }, { "f9fc00", -math.huge },
  { "fa7f800000", math.huge }, { "fb7ff0000000000000", math.huge },
  { "f4", false }, { "f5", true },
  { "c11a514b67b0", 1363896240 }, { "c1fb41d452d9ec200000", 1363896240.5 },
  { "c074323031332d30332d32315432303a30343a30305a", "2013-03-21T20:04:00Z" },
  { "4401020304", "\1\2\3\4" }, { "60", "" }, { "6161", "a" }, { "6449455446", "IETF" },
  { "62225c", "\"\\" }, { "62c3bc", "ü" }, { "63e6b0b4", "水" },
  { "80", {} }, { "83010203", { 1, 2, 3 } }, { "8301820203820405", { 1, { 2, 3 }, { 4, 5 } } },
  { "a0", {} }, { "a201020304", { [1] = 2, [3] = 4 } },
  { "a26161016162820203", { a = 1, b = { 2, 3 } } },
  { "5f42010243030405ff", "\1\2\3\4\5" }, { "7f657374726561646d696e67ff", "streaming" },
  { "9fff", {} }, { "9f018202039f0405ffff", { 1, { 2, 3 }, { 4, 5 } } },
  { "bf61610161629f0203ffff", { a = 1, b = { 2, 3 } } },
  { "bf6346756ef563416d7421ff", { Fun = true, Amt = -2 } },
}

function TestCborDecode.test_rfc8949_examples()
  for _, ex in ipairs(EXAMPLES) do
    lu.assertEquals(proto.cbor_decode(unhex(ex[1])), ex[2], ex[1])
  end
end

function TestCborDecode.test_integers_keep_their_subtype()
  lu.assertEquals(math.type(proto.cbor_decode(unhex("1b000000e8d4a51000"))), "integer")
  lu.assertEquals(math.type(proto.cbor_decode(unhex("f93c00"))), "float")
  lu.assertEquals(proto.cbor_decode(unhex("3b7fffffffffffffff")), math.mininteger)
  -- beyond int64: a float, not a wrapped integer
  lu.assertEquals(proto.cbor_decode(unhex("1bffffffffffffffff")), 18446744073709551615.0)
end

function TestCborDecode.test_nan()
  local v = proto.cbor_decode(unhex("f97e00"))
  lu.assertTrue(v ~= v)
end

function TestCborDecode.test_null_and_undefined_are_dropped()
  lu.assertNil(proto.cbor_decode(unhex("f6")))
  lu.assertNil(proto.cbor_decode(unhex("f7")))
  lu.assertNil(proto.cbor_decode(""))
  lu.assertEquals(proto.cbor_decode(unhex("a2616101616af6")), { a = 1 })
  lu.assertEquals(proto.cbor_decode(unhex("8301f602")), { 1, 2 })
end

-- Malformed input: hex → the problem named in the error, with the byte offset.
local MALFORMED = {
  { "18", "truncated item at byte 1" },
  { "1c", "reserved additional information at byte 1" },
  { "ff", "unexpected break at byte 0" },
  { "1f", "indefinite length on an integer at byte 0" },
  { "6261", "truncated string at byte 1" },
  { "62c328", "text string not UTF-8 at byte 1" },
  { "62eda080", "text string not UTF-8" }, -- a surrogate
  { "5f6161ff", "bad chunk in an indefinite-length string at byte 1" },
  { "5f5fff", "bad chunk in an indefinite-length string at byte 1" },
  { "c16161", "epoch time (tag 1) that is not a number at byte 1" },
  { "0001", "data after the item at byte 1" },
  { "9f01", "truncated item at byte 2" },
  { "bf6161", "truncated item at byte 3" },
  { "a1800102", "map key that is neither a text string nor an integer at byte 1" },
  { "a1f601", "map key that is neither a text string nor an integer at byte 1" },
  { "f820", "unsupported simple value at byte 0" },
  { "f8", "unsupported simple value at byte 0" },
  { "9b0000000100000000", "truncated array at byte 9" },
  { "fb3ff1", "truncated item at byte 1" },
}

function TestCborDecode.test_malformed_input_raises_with_the_place()
  for _, m in ipairs(MALFORMED) do
    local ok, err = pcall(proto.cbor_decode, unhex(m[1]))
    lu.assertFalse(ok, m[1])
    lu.assertStrContains(err, "malformed CBOR response: " .. m[2], false, m[1])
  end
end

function TestCborDecode.test_nesting_is_bounded()
  lu.assertEquals(#proto.cbor_decode(unhex(("81"):rep(200) .. "01")), 1)
  local ok, err = pcall(proto.cbor_decode, unhex(("81"):rep(300) .. "01"))
  lu.assertFalse(ok)
  lu.assertStrContains(err, "nesting too deep")
  ok, err = pcall(proto.cbor_decode, unhex(("9f"):rep(100000)))
  lu.assertFalse(ok)
  lu.assertStrContains(err, "nesting too deep")
end

---------------------------------------------------------------- the protocol

-- A one-operation smithy-rpc-v2-cbor model.
local function model(metadata)
  local meta = { protocol = "smithy-rpc-v2-cbor", targetPrefix = "Svc", endpointPrefix = "svc" }
  for k, v in pairs(metadata or {}) do meta[k] = v end
  return {
    name = "svc",
    metadata = meta,
    operations = { Op = { name = "Op", input = { shape = "In" }, output = { shape = "In" },
                          errors = { { shape = "Bad" } } } },
    shapes = {
      In = { type = "structure", members = {
        S = { shape = "Str" }, I = { shape = "Long" }, F = { shape = "Float" },
        D = { shape = "Double" }, B = { shape = "Bool" }, T = { shape = "Ts" },
        Bl = { shape = "Blob" }, L = { shape = "List" }, M = { shape = "Map" },
        Sub = { shape = "In" } } },
      Str = { type = "string" }, Long = { type = "long" }, Float = { type = "float" },
      Double = { type = "double" }, Bool = { type = "boolean" }, Ts = { type = "timestamp" },
      Blob = { type = "blob" }, List = { type = "list", member = { shape = "Str" } },
      Map = { type = "map", key = { shape = "Str" }, value = { shape = "Long" } },
      Bad = { type = "structure", exception = true, error = { code = "Bad", senderFault = true },
              members = { message = { shape = "Str" }, Reason = { shape = "Str" } } },
    },
  }
end

TestRpcV2Cbor = {}

function TestRpcV2Cbor.test_heads_take_the_shortest_form()
  local long = ("x"):rep(300)
  local req = proto.serialize(model(), "Op", { S = long, I = 4294967296 })
  local body = req.body
  lu.assertStrContains(hex(body), "615379012c" .. ("78"):rep(300))
  lu.assertStrContains(hex(body), "61491b0000000100000000")
  req = proto.serialize(model(), "Op", { I = -4294967297 })
  lu.assertStrContains(hex(req.body), "61493b0000000100000000")
end

function TestRpcV2Cbor.test_floats_and_timestamps()
  local body = proto.serialize(model(), "Op", { F = 7.625, D = 1.889, T = 1398796238.5 }).body
  lu.assertStrContains(hex(body), "6146fa40f40000")
  lu.assertStrContains(hex(body), "6144fb3ffe395810624dd3")
  lu.assertStrContains(hex(body), "6154c1fb41d4d7fbf3a00000")
  body = proto.serialize(model(), "Op", { T = 1398796238, F = 0 / 0 }).body
  lu.assertStrContains(hex(body), "6154c11a535fefce")
  lu.assertStrContains(hex(body), "6146f97e00")
end

function TestRpcV2Cbor.test_request_round_trips_through_the_server_side()
  local params = { S = "héllo", I = -7, F = 0.5, D = -2.25, B = false, T = 1700000000,
                   Bl = "\0\255", L = { "a", "b" }, M = { x = 0 }, Sub = { S = "in" } }
  local req = proto.serialize(model(), "Op", params)
  lu.assertEquals(req.method, "POST")
  lu.assertEquals(req.path, "/service/Svc/operation/Op")
  lu.assertEquals(req.headers["smithy-protocol"], "rpc-v2-cbor")
  lu.assertEquals(req.headers["Content-Type"], "application/cbor")
  lu.assertNil(req.headers["x-amzn-query-mode"])
  local op, got = proto.parse_request(model(), { method = "POST", path = req.path,
    headers = { ["smithy-protocol"] = "rpc-v2-cbor" }, body = req.body })
  lu.assertEquals(op, "Op")
  lu.assertEquals(got, params)
  local resp = proto.serialize_response(model(), "Op", params, { request_id = "rid-1" })
  lu.assertEquals(resp.status, 200)
  lu.assertEquals(resp.headers["content-type"], "application/cbor")
  lu.assertEquals(resp.headers["smithy-protocol"], "rpc-v2-cbor")
  lu.assertEquals(proto.parse(model(), "Op", resp), params)
end

function TestRpcV2Cbor.test_wrong_types_name_the_member()
  local ok, err = pcall(proto.serialize, model(), "Op", { Sub = { I = "x" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "svc.Op: Sub.I: expected integer, got string")
  ok, err = pcall(proto.serialize, model(), "Op", { Nope = 1 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "svc.Op: Nope: unknown member")
  -- a response whose member has the wrong CBOR type
  ok, err = pcall(proto.parse, model(), "Op", { status = 200, headers = {}, body = unhex("a1614961") })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "malformed CBOR response")
end

function TestRpcV2Cbor.test_server_refuses_bad_requests()
  local ok, err = pcall(proto.parse_request, model(), { method = "POST",
    path = "/service/Other/operation/Op", headers = {}, body = "" })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "UnknownOperationException")
  ok, err = pcall(proto.parse_request, model(), { method = "POST",
    path = "/service/Svc/operation/Op", headers = {}, body = unhex("a16149") })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "SerializationException")
  lu.assertEquals(err.status, 400)
  ok, err = pcall(proto.parse_request, model(), { method = "POST",
    path = "/service/Svc/operation/Op", headers = {}, body = unhex("a1614961") })
  lu.assertFalse(ok)
  lu.assertEquals(err.code, "SerializationException")
end

function TestRpcV2Cbor.test_errors_round_trip()
  local resp = proto.serialize_error(model(), "Op",
    { code = "Bad", message = "no good", status = 400, fields = { Reason = "why" } })
  lu.assertEquals(resp.status, 400)
  lu.assertNil(resp.headers["x-amzn-query-error"])
  local doc = proto.cbor_decode(resp.body)
  lu.assertEquals(doc, { __type = "com.amazonaws.svc#Bad", message = "no good", Reason = "why" })
  local e = proto.parse_error(model(), "Op", resp)
  lu.assertEquals(e.code, "Bad")
  lu.assertEquals(e.message, "no good")
  lu.assertEquals(e.type, "Sender")
  lu.assertEquals(e.fields, { message = "no good", Reason = "why" })
end

function TestRpcV2Cbor.test_query_compatible_service()
  local m = model({ awsQueryCompatible = {} })
  lu.assertEquals(proto.serialize(m, "Op", {}).headers["x-amzn-query-mode"], "true")
  local resp = proto.serialize_error(m, "Op",
    { code = "InvalidParameterValue", message = "bad", status = 400 })
  lu.assertEquals(resp.headers["x-amzn-query-error"], "InvalidParameterValue;Sender")
  local e = proto.parse_error(m, "Op", resp)
  lu.assertEquals(e.code, "InvalidParameterValue")
  lu.assertEquals(e.type, "Sender")
end

os.exit(lu.LuaUnit.run())
