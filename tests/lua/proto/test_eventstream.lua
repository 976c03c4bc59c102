-- fo.awsproto's event streams (application/vnd.amazon.eventstream) beyond AWS's compliance
-- suites: the framing shared by the protocols (src/aws/proto/eventstream.c: every header
-- type, lengths, checksums) and rest-xml's event-stream payloads (S3 SelectObjectContent's
-- form: XML event payloads, blob payloads, header members), malformed streams included.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local proto = require "fo.awsproto"

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do c = (c >> 1) ~ (0xEDB88320 & -(c & 1)) end
  end
  return (~c) & 0xFFFFFFFF
end

-- One header: name, type (0-9), value.
local PACK = { [2] = ">i1", [3] = ">i2", [4] = ">i4", [5] = ">i8", [6] = ">s2", [7] = ">s2", [8] = ">i8" }
local function header(name, ty, v)
  local h = string.pack(">s1B", name, ty)
  if PACK[ty] then return h .. string.pack(PACK[ty], v) end
  return h .. (v or "") -- 0, 1 (no value), 9 (16 bytes)
end

local function frame(headers, payload)
  local prelude = string.pack(">I4I4", 16 + #headers + #payload, #headers)
  local m = prelude .. string.pack(">I4", crc32(prelude)) .. headers .. payload
  return m .. string.pack(">I4", crc32(m))
end

local function event(name, payload, extra)
  return frame(header(":message-type", 7, "event") .. header(":event-type", 7, name) .. (extra or ""),
    payload)
end

local SHAPES = {
  Out = { type = "structure", payload = "Stream", members = { Stream = { shape = "Stream" },
          H = { shape = "Str", location = "header", locationName = "x-h" } } },
  Stream = { type = "structure", eventstream = true, members = { Records = { shape = "Records" },
             Stats = { shape = "Stats" }, Info = { shape = "Info" }, Plain = { shape = "Plain" } } },
  Records = { type = "structure", event = true,
              members = { Payload = { shape = "Blob", eventpayload = true } } },
  Stats = { type = "structure", event = true,
            members = { Details = { shape = "Details", eventpayload = true } } },
  Info = { type = "structure", event = true, members = {
           Details = { shape = "Details", eventpayload = true },
           T = { shape = "Ts", eventheader = true }, I = { shape = "Int", eventheader = true },
           S = { shape = "Str", eventheader = true }, B = { shape = "Bool", eventheader = true } } },
  Plain = { type = "structure", event = true, members = { S = { shape = "Str" },
            L = { shape = "List" }, T = { shape = "Ts", eventheader = true } } },
  Details = { type = "structure", members = { Scanned = { shape = "Long" }, Sub = { shape = "Details" } } },
  List = { type = "list", member = { shape = "Str" } },
  Str = { type = "string" }, Int = { type = "integer" }, Long = { type = "long" },
  Ts = { type = "timestamp" }, Blob = { type = "blob" }, Bool = { type = "boolean" },
}
local RX = { name = "svc", metadata = { protocol = "rest-xml" }, shapes = SHAPES,
             operations = { Op = { name = "Op", http = { method = "POST", requestUri = "/" },
                                   output = { shape = "Out" } } } }

local function resp(body, headers) return { status = 200, headers = headers or {}, body = body } end

local function fails(body, pattern)
  local ok, err = pcall(proto.parse, RX, "Op", resp(body))
  lu.assertFalse(ok)
  lu.assertStrMatches(err, "^.-svc%.Op: " .. pattern)
end

TestRestXmlEventStream = {}

function TestRestXmlEventStream.test_events()
  local body = event("Records", "a,b\n\0c")
    .. event("Stats", "<Stats><Scanned>12</Scanned><Sub><Scanned>1</Scanned></Sub></Stats>")
    .. event("Info", "<Details><Scanned>5</Scanned></Details>",
      header("T", 8, 1422172800500) .. header("I", 4, -5) .. header("S", 7, "hi") .. header("B", 1))
    .. event("Plain", "<Plain><S>q</S><L><m>a</m><m>b</m></L></Plain>", header("T", 8, 1000))
    .. event("Plain", "")
    .. event("Stats", " \n")
    .. event("Unknown", "<x/>")
    .. frame(header(":message-type", 7, "something-else"), "ignored")
  lu.assertEquals(proto.parse(RX, "Op", resp(body, { ["x-h"] = "v" })), {
    H = "v",
    Stream = {
      { Records = { Payload = "a,b\n\0c" } },
      { Stats = { Details = { Scanned = 12, Sub = { Scanned = 1 } } } },
      { Info = { Details = { Scanned = 5 }, T = 1422172800.5, I = -5, S = "hi", B = false } },
      { Plain = { S = "q", L = { "a", "b" }, T = 1 } },
      { Plain = {} },
      { Stats = { Details = {} } },
      {},
    },
  })
  lu.assertEquals(proto.parse(RX, "Op", resp("")), { Stream = {} })
end

function TestRestXmlEventStream.test_header_types()
  local headers = header("t", 0) .. header("f", 1) .. header("b", 2, -1) .. header("s", 3, -2)
    .. header("i", 4, 2147483647) .. header("l", 5, -9007199254740993) .. header("by", 6, "\0\1")
    .. header("ts", 8, 42) .. header("u", 9, ("\171"):rep(16))
  local shapes = {}
  for k, v in pairs(SHAPES) do shapes[k] = v end
  local members = {}
  for _, n in ipairs{ "t", "f", "b", "s", "i", "l", "by", "ts", "u" } do
    members[n] = { shape = n == "ts" and "Int" or "Str", eventheader = true }
  end
  shapes.Plain = { type = "structure", event = true, members = members }
  local model = { name = "svc", metadata = RX.metadata, shapes = shapes, operations = RX.operations }
  local out = proto.parse(model, "Op", resp(event("Plain", "", headers)))
  lu.assertEquals(out.Stream, { { Plain = { t = true, f = false, b = -1, s = -2, i = 2147483647,
    l = -9007199254740993, by = "\0\1", ts = 42, u = ("\171"):rep(16) } } })
end

function TestRestXmlEventStream.test_exceptions_and_errors()
  fails(event("Records", "x") .. frame(header(":message-type", 7, "exception")
    .. header(":exception-type", 7, "Boom"), "<Boom><Message>bad</Message></Boom>"),
    "event stream exception Boom: .*bad.*")
  fails(frame(header(":message-type", 7, "error") .. header(":error-code", 7, "E")
    .. header(":error-message", 7, "m"), ""), "event stream error E: m$")
end

function TestRestXmlEventStream.test_malformed_streams()
  local good = event("Records", "abc") .. event("Stats", "<Stats><Scanned>1</Scanned></Stats>")
  local first = #event("Records", "abc")
  fails(good:sub(1, -2), "malformed event stream response: bad message length at byte " .. first .. "$")
  fails(good .. "xyz", "malformed event stream response: truncated message at byte " .. #good .. "$")
  fails(good:sub(1, 20) .. "X" .. good:sub(22), "malformed event stream response: message checksum "
    .. "mismatch at byte 0$")
  fails(good:sub(1, 9) .. "X" .. good:sub(11), "malformed event stream response: prelude checksum "
    .. "mismatch at byte 0$")
  fails(frame("\0", ""), "malformed event stream response: truncated header at byte 12$")
  fails(frame(string.pack(">s1B", "x", 10), ""), "malformed event stream response: unknown header "
    .. "value type at byte 12$")
  fails(frame(string.pack(">s1BI2", "x", 7, 5) .. "ab", ""),
    "malformed event stream response: truncated header at byte 12$")
  -- the headers length past the message
  local prelude = string.pack(">I4I4", 16, 1)
  local m = prelude .. string.pack(">I4", crc32(prelude))
  fails(m .. string.pack(">I4", crc32(m)), "malformed event stream response: bad headers length at byte 0$")
  -- an event payload that is not XML: the offset is the payload's
  local bad = event("Stats", "<Stats><Scanned>1</Scanned>")
  fails(bad, "malformed event stream response: XML event payload %(.*%) at byte "
    .. (#bad - 4 - #"<Stats><Scanned>1</Scanned>") .. "$")
  fails(event("Stats", "<Stats><Scanned>x</Scanned></Stats>"), "malformed response: invalid long .x.")
  -- every truncation fails cleanly (but the end of the first message is a whole stream)
  for i = 1, #good - 1 do
    if i ~= first then lu.assertFalse(pcall(proto.parse, RX, "Op", resp(good:sub(1, i))), i) end
  end
end

-- Mutated streams, with lengths and checksums made right again so that the header and
-- payload decoding is reached: each parse gives a table or a clear "svc.Op: " error.
function TestRestXmlEventStream.test_mutations()
  local pieces = {
    { header(":message-type", 7, "event") .. header(":event-type", 7, "Info") .. header("T", 8, 5)
      .. header("I", 4, 1), "<Details><Scanned>5</Scanned><Sub><Scanned>1</Scanned></Sub></Details>" },
    { header(":message-type", 7, "event") .. header(":event-type", 7, "Plain"),
      "<Plain><S>q</S><L><m>a</m></L></Plain>" },
    { header(":message-type", 7, "event") .. header(":event-type", 7, "Records"), "bytes" },
  }
  local rng = 12345
  local function rand(n) -- a small LCG: the same cases on every run
    rng = (rng * 1103515245 + 12345) % 2147483648
    return rng % n + 1
  end
  local function mutate(s)
    local t = { s:byte(1, -1) }
    for _ = 1, rand(4) do
      local op, i = rand(3), rand(#t + 1)
      if op == 1 and t[i] then t[i] = rand(256) - 1
      elseif op == 2 and t[i] then table.remove(t, i)
      else table.insert(t, i, rand(256) - 1) end
    end
    return string.char(table.unpack(t))
  end
  for _ = 1, 600 do
    local parts = {}
    for j = 1, rand(3) do
      local p = pieces[rand(#pieces)]
      parts[j] = rand(2) == 1 and frame(mutate(p[1]), p[2]) or frame(p[1], mutate(p[2]))
    end
    local ok, err = pcall(proto.parse, RX, "Op", resp(table.concat(parts)))
    if not ok then lu.assertStrMatches(err, "^svc%.Op: .*") end
  end
end

os.exit(lu.LuaUnit.run())
