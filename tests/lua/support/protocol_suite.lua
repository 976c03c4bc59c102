-- AWS's protocol compliance tests (tests/data/aws-protocol-tests) as LuaUnit
-- tests of fo.awsproto: every input case serializes params to the exact request, every
-- output case parses the response to the expected result or error. Cases botocore itself
-- skips (protocol-tests-ignore-list.json) are skipped here too, and only those.
local cjson = require "cjson"
local proto = require "fo.awsproto"
local lu = require "luaunit"
local testlib = require "support.testlib"

local M = {}

M.root = testlib.data_dir .. "/aws-protocol-tests"

local function read_json(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local doc = cjson.decode(f:read("a"))
  f:close()
  return doc
end

local ignore = read_json(M.root .. "/protocol-tests-ignore-list.json")

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

-- Is the case skipped by botocore's own ignore list? (suite description or case id)
local function ignored(protocol, direction, suite, case)
  local general = ignore.general and ignore.general[direction] or {}
  if set_of(general.suites)[suite.description] then return true end
  local p = ignore.protocols and ignore.protocols[protocol] or {}
  local d = p[direction] or {}
  return (case.id and set_of(d.cases)[case.id]) or set_of(d.suites)[suite.description] or false
end

-- cjson.null and empty-table quirks: normalize expected values from the JSON files.
local function clean(v)
  if v == cjson.null then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = clean(x) end
  return out
end

-- What botocore's runner (tests/unit/test_protocols.py) does to a case before comparing:
--  * query and ec2 requests: the expected Content-Type gets "; charset=utf-8" (botocore
--    sends it, the suites leave it out);
--  * query outputs: the result element is <OperationNameResult> when a successful output
--    has members (the suites' models leave resultWrapper out);
--  * outputs without a body: an empty one, "<xml/>" for query.
local function botocore_expectations(suite, case, op)
  local protocol = suite.metadata.protocol
  local headers = case.serialized and case.serialized.headers
  if headers and (protocol == "query" or protocol == "ec2") then
    for name, value in pairs(headers) do
      if name:lower() == "content-type" and not value:find("charset=utf-8", 1, true) then
        headers[name] = value .. "; charset=utf-8"
      end
    end
  end
  if case.response then
    local shape = op.output and suite.shapes[op.output.shape]
    if protocol == "query" and not (case.error or case.errorCode) and shape
        and next(shape.members or {}) then
      op.output.resultWrapper = op.name .. "Result"
    end
    if case.response.body == nil or case.response.body == cjson.null then
      case.response.body = protocol == "query" and "<xml/>" or ""
    end
  end
end

local function model_for(suite, case)
  local op = clean(case.given)
  botocore_expectations(suite, case, op)
  return {
    name = "test",
    metadata = clean(suite.metadata),
    shapes = clean(suite.shapes),
    operations = { [op.name] = op },
  }, op.name
end

---------------------------------------------------------------- comparisons

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local SPECIAL = { NaN = "nan", Infinity = math.huge, ["-Infinity"] = -math.huge }

-- Deep comparison; returns nil or a description of the first difference.
local function diff(expected, actual, path)
  path = path or "result"
  if type(expected) == "string" and SPECIAL[expected] and type(actual) == "number" then
    local want = SPECIAL[expected]
    if want == "nan" then
      if actual ~= actual then return nil end
    elseif actual == want then
      return nil
    end
    return ("%s: expected %s, got %s"):format(path, expected, tostring(actual))
  end
  if type(expected) == "number" and type(actual) == "number" then
    if expected == actual or (expected ~= expected and actual ~= actual) then return nil end
    local scale = math.max(math.abs(expected), math.abs(actual), 1)
    if math.abs(expected - actual) / scale < 1e-9 then return nil end
    return ("%s: expected %.17g, got %.17g"):format(path, expected, actual)
  end
  if type(expected) ~= type(actual) then
    return ("%s: expected %s %s, got %s %s"):format(path, type(expected),
      cjson.encode(expected), type(actual), type(actual) == "table" and cjson.encode(actual)
        or tostring(actual))
  end
  if type(expected) ~= "table" then
    if expected == actual then return nil end
    return ("%s: expected %q, got %q"):format(path, tostring(expected), tostring(actual))
  end
  for k, v in pairs(expected) do
    local d = diff(v, actual[k], path .. "." .. tostring(k))
    if d then return d end
  end
  for k, v in pairs(actual) do
    if expected[k] == nil then
      return ("%s.%s: unexpected value %s"):format(path, tostring(k),
        type(v) == "table" and cjson.encode(v) or tostring(v))
    end
  end
  return nil
end
M.diff = diff
M.read_json, M.ignored, M.clean, M.model_for = read_json, ignored, clean, model_for

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "a=1&b=2" → sorted list of "key=value" with percent-decoding (order-insensitive compare)
local function form_pairs(s)
  local out = {}
  for part in (s or ""):gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=?(.*)$")
    out[#out + 1] = unescape(k) .. "=" .. unescape(v)
  end
  table.sort(out)
  return out
end

-- XML trees compared with whitespace-only text dropped. Sibling elements with different
-- names are put in name order (stable, so repeated elements such as list items keep their
-- order): botocore writes members in the order of the caller's params (an OrderedDict read
-- from the suite), fo in the model's memberOrder, which the suites' shape fragments (read
-- with cjson) do not carry, so fo falls back to name order there; everything else must
-- match.
local function xml_tree(s)
  local doc, err = fo.xml.decode(s)
  assert(doc, "not XML: " .. tostring(err) .. ": " .. s)
  local function strip(node)
    if type(node) ~= "table" then return node end
    local out = { name = node.name, attr = node.attr }
    local all_elements = true
    for _, child in ipairs(node) do
      if type(child) ~= "string" or child:match("%S") then
        out[#out + 1] = strip(child)
        if type(child) == "string" then all_elements = false end
      end
    end
    if all_elements then
      for i, child in ipairs(out) do child.index = i end
      table.sort(out, function(a, b)
        if a.name ~= b.name then return a.name < b.name end
        return a.index < b.index
      end)
      for _, child in ipairs(out) do child.index = nil end
    end
    return out
  end
  return strip(doc)
end
M.xml_tree = xml_tree

-- Form pairs with the entries of each (non-flattened) map keyed by their content instead of
-- their number: botocore numbers map entries in the order of the caller's dict (an
-- OrderedDict read from the suite), a Lua table has no order (fo numbers entries in sorted
-- key order). Each entry must still be complete and correct.
local function map_entries_by_content(pairs_list)
  local groups, order = {}, {}
  for _, kv in ipairs(pairs_list) do
    local prefix, index, rest = kv:match("^(.-%.entry%.)(%d+)(%..*)$")
    if prefix then
      local id = prefix .. index
      if not groups[id] then groups[id] = { prefix = prefix }; order[#order + 1] = id end
      table.insert(groups[id], rest)
    end
  end
  local sig = {}
  for _, id in ipairs(order) do
    table.sort(groups[id])
    sig[id] = groups[id].prefix .. "{" .. table.concat(groups[id], ";") .. "}"
  end
  local out = {}
  for _, kv in ipairs(pairs_list) do
    local prefix, index, rest = kv:match("^(.-%.entry%.)(%d+)(%..*)$")
    out[#out + 1] = prefix and (sig[prefix .. index] .. rest) or kv
  end
  table.sort(out)
  return out
end

-- A canonical text of a stripped tree (for sorting).
local function tree_text(node)
  if type(node) ~= "table" then return node end
  local attrs = {}
  for k, v in pairs(node.attr or {}) do attrs[#attrs + 1] = k .. "=" .. v end
  table.sort(attrs)
  local parts = { "<", node.name, " ", table.concat(attrs, " "), ">" }
  for _, child in ipairs(node) do parts[#parts + 1] = tree_text(child) end
  parts[#parts + 1] = "</>"
  return table.concat(parts)
end

-- Map entries in a request body: Lua tables keep no order, so fo writes a map's entries in
-- key order while botocore follows the caller's; the entries of a map (and only those:
-- list items keep their order) are put in a canonical order, walking the tree with the
-- shapes. `node` is the element of a value of the shape reference `ref`.
local function canon_maps(model, node, ref)
  local shape = model.shapes[ref.shape]
  if type(node) ~= "table" or not shape then return end
  local function sort_run(list, pick)
    local idx, items = {}, {}
    for i, child in ipairs(list) do
      if pick(child) then idx[#idx + 1] = i; items[#items + 1] = child end
    end
    table.sort(items, function(a, b) return tree_text(a) < tree_text(b) end)
    for k, i in ipairs(idx) do list[i] = items[k] end
  end
  local function entry(e, map)
    for _, kv in ipairs(e) do
      if type(kv) == "table" then
        local kname = map.key.locationName or model.shapes[map.key.shape].locationName or "key"
        canon_maps(model, kv, kv.name == kname and map.key or map.value)
      end
    end
  end
  if shape.type == "structure" or shape.type == "union" then
    for name, mref in pairs(shape.members or {}) do
      local mshape = model.shapes[mref.shape]
      local el = mref.locationName or mshape.locationName or name
      local flat = mref.flattened or mshape.flattened
      local function is_el(c) return type(c) == "table" and c.name == el end
      for _, child in ipairs(node) do
        if is_el(child) then
          if flat and mshape.type == "map" then
            entry(child, mshape)
          elseif flat and mshape.type == "list" then
            canon_maps(model, child, mshape.member)
          else
            canon_maps(model, child, mref)
          end
        end
      end
      if flat and mshape.type == "map" then sort_run(node, is_el) end
    end
  elseif shape.type == "list" then
    for _, child in ipairs(node) do canon_maps(model, child, shape.member) end
  elseif shape.type == "map" then
    for _, child in ipairs(node) do
      if type(child) == "table" then entry(child, shape) end
    end
    sort_run(node, function(c) return type(c) == "table" and c.name == "entry" end)
  end
end

-- The reference of the body's root element: the payload member, or the input.
local function body_ref(model, op_name)
  local input = model.operations[op_name].input
  local shape = input and model.shapes[input.shape]
  if shape and shape.payload then return shape.members[shape.payload] end
  return input
end

-- A CBOR body compared by its decoded value (map entries have no order; fo writes a
-- structure's members in name order, botocore in the caller's). The suites store the
-- expected body in base64.
local function compare_cbor_body(expected, actual)
  local want = assert(fo.crypto.base64_decode(expected))
  local e = want == "" and {} or proto.cbor_decode(want)
  local a = actual == "" and {} or proto.cbor_decode(actual)
  local d = diff(e, a, "body")
  if d then
    lu.fail(d .. "\nexpected body: " .. cjson.encode(e) .. "\nactual body:   " .. cjson.encode(a))
  end
end

local function compare_body(protocol, expected, actual, model, op_name)
  expected, actual = expected or "", actual or ""
  if protocol == "smithy-rpc-v2-cbor" then return compare_cbor_body(expected, actual) end
  if expected == actual then return end
  if protocol == "json" or protocol == "rest-json" then
    local e = expected == "" and {} or cjson.decode(expected)
    local a = actual == "" and {} or cjson.decode(actual)
    local d = diff(clean(e), clean(a), "body")
    if d then lu.fail(d .. "\nexpected body: " .. expected .. "\nactual body:   " .. actual) end
  elseif protocol == "query" or protocol == "ec2" then
    lu.assertEquals(map_entries_by_content(form_pairs(actual)),
      map_entries_by_content(form_pairs(expected)), "form body")
  elseif expected:match("^%s*<") and actual:match("^%s*<") then
    local e, a = xml_tree(expected), xml_tree(actual)
    local ref = body_ref(model, op_name)
    if ref then
      canon_maps(model, e, ref)
      canon_maps(model, a, ref)
    end
    lu.assertEquals(a, e, "XML body\nexpected: " .. expected .. "\nactual:   " .. actual)
  else
    lu.assertEquals(actual, expected, "body")
  end
end

local function header_of(headers, name)
  for k, v in pairs(headers or {}) do
    if k:lower() == name:lower() then return v end
  end
end

-- "a=1&b%2F=2" → sorted list of the encoded "key=value" parts. botocore compares the URI
-- byte for byte; the order of the parameters is the caller's (see xml_tree), the encoding
-- must match exactly.
local function query_parts(s)
  local out = {}
  for part in (s or ""):gmatch("[^&]+") do out[#out + 1] = part end
  table.sort(out)
  return out
end
M.query_parts = query_parts

-- The headers that go on the wire: the serializer's, plus Content-Length, which the
-- transport adds from the body (libcurl here; botocore's AWSRequest preparation there) for
-- methods other than GET/HEAD/OPTIONS.
local function sent_headers(req)
  local h = {}
  for k, v in pairs(req.headers or {}) do h[k] = v end
  local m = req.method
  if not header_of(h, "Content-Length") and m ~= "GET" and m ~= "HEAD" and m ~= "OPTIONS" then
    h["Content-Length"] = tostring(#(req.body or ""))
  end
  return h
end

local function input_members(model, op_name)
  local input = model.operations[op_name].input
  local shape = input and model.shapes[input.shape]
  return shape and shape.members or {}
end

-- botocore's _clean_list_header_values: the suites join list-header values with ", ",
-- botocore (and fo) with ","; expected values of list headers are compared with ", " → ",",
-- actual ones too when the list holds timestamps (RFC 822 dates contain ", ").
local function clean_list_headers(model, op_name, want_headers, headers)
  for _, ref in pairs(input_members(model, op_name)) do
    local shape = model.shapes[ref.shape]
    local name = ref.locationName or shape.locationName
    if (ref.location or shape.location) == "header" and shape.type == "list" and name then
      for k, v in pairs(want_headers) do
        if k:lower() == name:lower() then want_headers[k] = v:gsub(", ", ",") end
      end
      local member = model.shapes[shape.member.shape]
      if member.type == "timestamp" then
        for k, v in pairs(headers) do
          if k:lower() == name:lower() then headers[k] = v:gsub(", ", ",") end
        end
      end
    end
  end
end

local function check_request(protocol, want, req, model, op_name)
  if want.method ~= nil then lu.assertEquals(req.method, want.method, "method") end
  local want_path, want_query = want.uri:match("^([^?]*)%??(.*)$")
  lu.assertEquals(req.path, want_path, "path")
  lu.assertEquals(query_parts(req.query), query_parts(want_query), "query string")
  local want_headers = {}
  for name, value in pairs(want.headers or {}) do
    -- botocore's runner drops the expected Content-Type of rest-xml requests: botocore
    -- sends none for them (nor does fo).
    if not (protocol == "rest-xml" and name:lower() == "content-type") then
      want_headers[name] = value
    end
  end
  local headers = sent_headers(req)
  clean_list_headers(model, op_name, want_headers, headers)
  for name, value in pairs(want_headers) do
    lu.assertEquals(header_of(headers, name), value, "header " .. name)
  end
  for _, name in ipairs(want.forbidHeaders or {}) do
    lu.assertNil(header_of(headers, name), "forbidden header " .. name)
  end
  for _, name in ipairs(want.requireHeaders or {}) do
    lu.assertNotNil(header_of(headers, name), "required header " .. name)
  end
  if want.body ~= nil then compare_body(protocol, want.body, req.body, model, op_name) end
end

-- botocore's runner turns the suites' "NaN", "Infinity" and "-Infinity" strings of top-level
-- params into floats (_convert_strings_to_special_float); same here, for float/double members.
local SPECIAL_IN = { NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge }
function M.special_floats(model, op_name, params)
  local members = input_members(model, op_name)
  for k, v in pairs(params) do
    local ref = members[k]
    local shape = ref and model.shapes[ref.shape]
    if SPECIAL_IN[v] and shape and (shape.type == "float" or shape.type == "double") then
      params[k] = SPECIAL_IN[v]
    end
  end
  return params
end

function M.lower_headers(h)
  local out = {}
  for k, v in pairs(h or {}) do out[k:lower()] = v end
  return out
end
local lower_headers = M.lower_headers

-- Does the operation's output have an event-stream member?
local function has_event_stream(model, op_name)
  local out = model.operations[op_name].output
  local shape = out and model.shapes[out.shape]
  for _, ref in pairs(shape and shape.members or {}) do
    local target = model.shapes[ref.shape]
    if target and target.eventstream then return true end
  end
  return false
end

local function check_output(model, op_name, case)
  local resp = { status = case.response.status_code, headers = lower_headers(case.response.headers),
                 body = case.response.body or "" }
  if has_event_stream(model, op_name) or model.metadata.protocol == "smithy-rpc-v2-cbor" then
    -- The binary event stream (and any CBOR body) is stored in base64; botocore's runner decodes it before
    -- parsing (MockRawResponse), and so does this one.
    resp.body = assert(fo.crypto.base64_decode(resp.body))
  end
  if case.error or case.errorCode then
    local e = proto.parse_error(model, op_name, resp)
    if case.errorCode then lu.assertEquals(e.code, case.errorCode, "error code") end
    if case.errorMessage then lu.assertEquals(e.message, case.errorMessage, "error message") end
    local d = diff(clean(case.error or {}), e.fields or {}, "error")
    if d then lu.fail(d) end
  else
    local result = proto.parse(model, op_name, resp)
    local d = diff(clean(case.result or {}), result)
    if d then lu.fail(d) end
  end
end

---------------------------------------------------------------- definitions

--- Adds one test per case of `file` (e.g. "input/ec2.json") to the class `tests`.
--- Returns the number of cases defined and skipped.
function M.define(tests, file, protocol_name)
  local direction = file:match("input") and "input" or "output"
  local suites = read_json(M.root .. "/" .. file)
  local defined, skipped = 0, 0
  local prefix = (file:match("^legacy") and "legacy_" or "") .. direction .. "_"
  for si, suite in ipairs(suites) do
    local protocol = suite.metadata.protocol
    for ci, case in ipairs(suite.cases) do
      local id = case.id or ("%s_%d"):format(suite.description:gsub("%W+", "_"), ci)
      local name = "test_" .. prefix .. id
      while tests[name] do name = name .. "_" .. si end
      if ignored(protocol_name or protocol, direction, suite, case) then
        skipped = skipped + 1
      else
        defined = defined + 1
        tests[name] = function()
          local model, op_name = model_for(suite, case)
          if direction == "input" then
            local params = M.special_floats(model, op_name, clean(case.params) or {})
            check_request(protocol, case.serialized, proto.serialize(model, op_name, params),
              model, op_name)
          else
            check_output(model, op_name, case)
          end
        end
      end
    end
  end
  return defined, skipped
end

--- Defines every case of the suite's current and legacy files (input and output) as
--- TestProtocol and runs LuaUnit; the exit status is the test result. `suite` names the
--- files (e.g. "json_1_0-query-compatible"), `protocol` the entry of botocore's ignore list
--- that applies (default: the suite's name).
function M.run(suite, protocol)
  TestProtocol = {}
  local total = 0
  for _, file in ipairs{ "input/", "output/", "legacy/input/", "legacy/output/" } do
    local path = file .. suite .. ".json"
    local f = io.open(M.root .. "/" .. path)
    if f then
      f:close()
      total = total + M.define(TestProtocol, path, protocol or suite)
    end
  end
  assert(total > 0, "no protocol test cases found under " .. M.root)
  os.exit(lu.LuaUnit.run())
end

return M
