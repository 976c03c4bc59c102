-- Conformance of fo's protocol codecs (fo.awsproto) with botocore, for every operation
-- the failover stack calls (tests/conformance/operations.json; docs/aws-operations.md).
--
-- tests/conformance/oracle.py runs Debian's botocore (python3-botocore, a test-only
-- dependency) once and prints, per operation: the request botocore sends for the
-- entry's params, a response document generated from the output shape with botocore's
-- parse of it, and an error document with botocore's parse of it. For each operation
-- this suite defines three tests named after it:
--   test_<service>_<Operation>_request   proto.validate accepts the params; proto.serialize
--       agrees with botocore on method, path, query (decoded key/value multiset),
--       Content-Type and X-Amz-Target, and body (form bodies: decoded key/value
--       multisets; JSON: decoded values; XML: element trees, insignificant whitespace
--       and escaping ignored)
--   test_<service>_<Operation>_response  proto.parse deep-equals botocore's parse
--       (botocore's ResponseMetadata is dropped: it is botocore's own addition)
--   test_<service>_<Operation>_response_sparse  the same on a document with the other
--       edge of each type: empty lists and maps, empty strings, zero/negative numbers,
--       false booleans
--   test_<service>_<Operation>_error     proto.parse_error: code, message, request id,
--       type (XML protocols) and the modelled error members (members named
--       message/Message are left out of `fields`: the message is compared on its own)
-- Value conventions on both sides: timestamps are epoch seconds, blobs raw strings
-- (the oracle writes {"$bytes": base64}), numbers compare by value (1 == 1.0), and a
-- form value that spells the same number ("1" / "1.0") or the same ISO 8601 instant
-- ("...20.500Z" / "...20.500000Z") differently counts as equal. The oracle gives botocore
-- the params in a canonical order (structure members in model order, map keys sorted),
-- since botocore writes XML elements and query map entries in its dict's order and a
-- Lua table has none.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local testlib = require "support.testlib"
local models = require "fo.aws.models"

local PYTHON = "/usr/bin/python3" -- Debian's, with python3-botocore (not a pyenv shim)
local ORACLE = testlib.tests_dir .. "/conformance/oracle.py"
local OPERATIONS = testlib.tests_dir .. "/conformance/operations.json"

-- ---------------------------------------------------------------- helpers

local function b64(s)
  local raw, err = fo.crypto.base64_decode(s)
  assert(raw, err)
  return raw
end

-- The oracle's JSON values -> fo's Lua values: {"$bytes": b64} -> raw string.
local function from_oracle(v)
  if v == cjson.null then return nil end
  if type(v) ~= "table" then return v end
  if v["$bytes"] ~= nil and next(v, next(v)) == nil then return b64(v["$bytes"]) end
  local out = {}
  for k, x in pairs(v) do out[k] = from_oracle(x) end
  return out
end

-- operations.json params -> what Lua code would pass: integer shapes as Lua integers
-- (cjson decodes every number as a float), blobs as raw strings.
local function to_params(model, v, ref)
  local shape = ref and model.shapes[ref.shape]
  if not shape then return from_oracle(v) end
  local t = shape.type
  if t == "structure" and type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = to_params(model, x, (shape.members or {})[k]) end
    return out
  elseif t == "list" and type(v) == "table" then
    local out = {}
    for i, x in ipairs(v) do out[i] = to_params(model, x, shape.member) end
    return out
  elseif t == "map" and type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = to_params(model, x, shape.value) end
    return out
  elseif (t == "integer" or t == "long") and math.type(v) == "float" then
    return math.tointeger(v) or v
  elseif t == "blob" and type(v) == "table" then
    return b64(v["$bytes"])
  end
  return v
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, s = pcall(cjson.encode, v)
    if ok then return #s > 300 and s:sub(1, 300) .. "..." or s end
  end
  return tostring(v)
end

-- Deep comparison that lists every difference with its path.
local function diff(a, b, path, out)
  out = out or {}
  path = path or ""
  if type(a) == "table" and type(b) == "table" then
    local keys = {}
    for k in pairs(a) do keys[k] = true end
    for k in pairs(b) do keys[k] = true end
    local sorted = {}
    for k in pairs(keys) do sorted[#sorted + 1] = k end
    table.sort(sorted, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(sorted) do
      local p = type(k) == "number" and ("%s[%d]"):format(path, k) or
        (path == "" and tostring(k) or path .. "." .. tostring(k))
      diff(a[k], b[k], p, out)
    end
  elseif type(a) == "number" and type(b) == "number" then
    if a ~= b and math.abs(a - b) > 1e-9 * math.max(1, math.abs(a)) then
      out[#out + 1] = ("%s: fo %s, botocore %s"):format(path, show(a), show(b))
    end
  elseif a ~= b then
    out[#out + 1] = ("%s: fo %s, botocore %s"):format(path, show(a), show(b))
  end
  return out
end

local function assert_same(what, fo_value, boto_value)
  local d = diff(fo_value, boto_value)
  if #d > 0 then
    local shown = {}
    for i = 1, math.min(#d, 25) do shown[i] = "  " .. d[i] end
    if #d > 25 then shown[#shown + 1] = ("  ... and %d more"):format(#d - 25) end
    lu.fail(("%s differs from botocore (%d difference%s):\n%s"):format(what, #d,
      #d == 1 and "" or "s", table.concat(shown, "\n")))
  end
end

local function url_decode(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "a=1&b=2&a=3" -> sorted {"a=1", "a=3", "b=2"} (decoded), with numeric spellings kept.
local function form_pairs(s)
  local list = {}
  for part in (s or ""):gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=(.*)$")
    if not k then k, v = part, "" end
    list[#list + 1] = { url_decode(k), url_decode(v) }
  end
  table.sort(list, function(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end)
  return list
end

-- ISO 8601 UTC "2023-11-14T22:13:20.5Z" -> "2023-11-14T22:13:20", 0.5
local function iso_instant(s)
  local whole, frac = s:match("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)(%.?%d*)Z$")
  if not whole then return nil end
  return whole, tonumber("0" .. (frac ~= "" and frac or ".0"))
end

-- Form values are equal when equal as strings, or when they spell the same number
-- ("1" / "1.0") or the same ISO 8601 instant ("...20.500Z" / "...20.500000Z").
local function same_form_value(a, b)
  if a == b then return true end
  if a == nil or b == nil then return false end
  local na, nb = tonumber(a), tonumber(b)
  if na ~= nil and nb ~= nil then return na == nb end
  local wa, fa = iso_instant(a)
  local wb, fb = iso_instant(b)
  return wa ~= nil and wa == wb and fa == fb
end

local function assert_same_form(what, fo_s, boto_s)
  local a, b = form_pairs(fo_s), form_pairs(boto_s)
  local ka, kb = {}, {}
  for _, p in ipairs(a) do ka[p[1]] = ka[p[1]] or {}; table.insert(ka[p[1]], p[2]) end
  for _, p in ipairs(b) do kb[p[1]] = kb[p[1]] or {}; table.insert(kb[p[1]], p[2]) end
  local problems = {}
  local keys = {}
  for k in pairs(ka) do keys[#keys + 1] = k end
  for k in pairs(kb) do if not ka[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local va, vb = ka[k] or {}, kb[k] or {}
    local ok = #va == #vb
    for i = 1, math.max(#va, #vb) do
      if ok and not same_form_value(va[i], vb[i]) then ok = false end
    end
    if not ok then
      problems[#problems + 1] = ("  %s: fo %s, botocore %s"):format(k,
        #va > 0 and show(table.concat(va, " | ")) or "(absent)",
        #vb > 0 and show(table.concat(vb, " | ")) or "(absent)")
    end
  end
  if #problems > 0 then
    lu.fail(("%s differs from botocore:\n%s"):format(what, table.concat(problems, "\n")))
  end
end

-- XML element tree with whitespace-only text dropped: {name, attr, children...}.
local function xml_tree(s)
  local doc, err = fo.xml.decode(s)
  if not doc then return nil, err end
  local function norm(node)
    if type(node) == "string" then
      if node:match("^%s*$") then return nil end
      return node
    end
    local out = { name = node.name, attr = node.attr or {} }
    for _, child in ipairs(node) do
      local c = norm(child)
      if c ~= nil then out[#out + 1] = c end
    end
    return out
  end
  return norm(doc)
end

local function header(headers, name)
  name = name:lower()
  for k, v in pairs(headers or {}) do
    if type(k) == "string" and k:lower() == name then return v end
  end
  return nil
end

local function drop_message(fields)
  local out = {}
  for k, v in pairs(fields or {}) do
    if type(k) ~= "string" or k:lower() ~= "message" then out[k] = v end
  end
  return out
end

-- ---------------------------------------------------------------- the oracle

local oracle, oracle_error
do
  local ok, r = pcall(fo.process.run, { argv = { PYTHON, ORACLE, OPERATIONS }, timeout = 60 })
  if not ok then
    oracle_error = ("could not run %s: %s"):format(PYTHON, tostring(type(r) == "table" and r.message or r))
  elseif r.code ~= 0 then
    oracle_error = ("%s %s failed (exit %d); install python3-botocore (tools/bootstrap.sh --test):\n%s")
      :format(PYTHON, ORACLE, r.code, r.stderr)
  else
    local okj, doc = pcall(cjson.decode, r.stdout)
    if okj then oracle = doc else oracle_error = "the oracle's output is not JSON: " .. doc end
  end
end

local function load_operations()
  local f = assert(io.open(OPERATIONS, "rb"))
  local doc = cjson.decode(f:read("a"))
  f:close()
  return doc.operations
end

TestConformance = {}

function TestConformance.test_oracle_runs_and_covers_every_listed_operation()
  if oracle_error then lu.fail(oracle_error) end
  local listed = load_operations()
  lu.assertEquals(#oracle.operations, #listed)
  lu.assertTrue(#listed >= 100, "the stack's operation list has " .. #listed .. " entries")
  local per_service = {}
  for i, e in ipairs(listed) do
    lu.assertEquals(oracle.operations[i].service .. "." .. oracle.operations[i].operation,
      e.service .. "." .. e.operation)
    per_service[e.service] = (per_service[e.service] or 0) + 1
  end
  for _, svc in ipairs{ "ec2", "elbv2", "autoscaling", "route53", "dynamodb", "sns",
    "cloudwatch", "iam", "ssm", "sts", "kms", "logs", "servicequotas" } do
    lu.assertTrue((per_service[svc] or 0) > 0, "no operation of " .. svc)
  end
end

-- docs/aws-operations.md lists every operation, in its service's section.
function TestConformance.test_every_operation_is_documented()
  local f = assert(io.open(testlib.tests_dir .. "/../docs/aws-operations.md", "rb"))
  local doc = f:read("a")
  f:close()
  local headings = { ["EC2"] = "ec2", ["Elastic Load Balancing"] = "elbv2",
    ["Auto Scaling"] = "autoscaling", ["Route 53"] = "route53", ["DynamoDB"] = "dynamodb",
    ["SNS"] = "sns", ["CloudWatch"] = "cloudwatch", ["IAM"] = "iam", ["KMS"] = "kms",
    ["CloudWatch Logs"] = "logs", ["Service Quotas"] = "servicequotas",
    ["SSM and STS"] = "*" }
  local sections, current = {}, nil
  for line in doc:gmatch("[^\n]*") do
    local heading = line:match("^## (.*)$")
    if heading then
      current = nil
      -- the longest heading that matches ("CloudWatch Logs" before "CloudWatch")
      local best = 0
      for prefix, svc in pairs(headings) do
        if (heading == prefix or heading:sub(1, #prefix + 1) == prefix .. " ") and #prefix > best then
          current, best = svc, #prefix
        end
      end
    elseif current then
      sections[current] = (sections[current] or "") .. line .. "\n"
    end
  end
  local missing = {}
  for _, e in ipairs(load_operations()) do
    local in_section = (sections[e.service] or ""):find("| " .. e.operation .. " |", 1, true)
    local in_misc = (sections["*"] or ""):find("| " .. e.service .. " " .. e.operation .. " |", 1, true)
    if not in_section and not in_misc then missing[#missing + 1] = e.service .. "." .. e.operation end
  end
  lu.assertEquals(missing, {}, "operations missing from docs/aws-operations.md")
end

-- The oracle is not vacuous: every response with output members parsed into a
-- non-empty table with many values, every error has a code and a message, and every
-- protocol's error documents are covered.
function TestConformance.test_oracle_documents_are_not_vacuous()
  if oracle_error then lu.fail(oracle_error) end
  local protocols_with_errors, leaves, empties = {}, 0, 0
  local function count_empty(v)
    if type(v) ~= "table" then return end
    if next(v) == nil then empties = empties + 1 end
    for _, x in pairs(v) do count_empty(x) end
  end
  local function count(v)
    if type(v) ~= "table" then leaves = leaves + 1; return end
    for _, x in pairs(v) do count(x) end
  end
  for _, o in ipairs(oracle.operations) do
    local model = models.load(o.service)
    local op = model.operations[o.operation]
    local out = op.output and model.shapes[op.output.shape]
    if out and next(out.members or {}) then
      lu.assertTrue(next(o.parsed) ~= nil, o.service .. "." .. o.operation .. ": empty parse")
    end
    count(o.parsed)
    count_empty(o.parsed_sparse)
    lu.assertTrue(#o.response.body > 0 or not out, o.operation .. ": empty response body")
    lu.assertTrue(#(o.parsed_error.code or "") > 0, o.operation .. ": error without code")
    lu.assertTrue(#(o.parsed_error.message or "") > 0, o.operation .. ": error without message")
    protocols_with_errors[o.protocol] = true
  end
  lu.assertTrue(leaves > 5000, "only " .. leaves .. " parsed values in all responses")
  lu.assertTrue(empties > 200, "only " .. empties .. " empty lists/maps in the sparse responses")
  for _, p in ipairs{ "ec2", "query", "json", "rest-xml" } do
    lu.assertTrue(protocols_with_errors[p], "no error document for protocol " .. p)
  end
end

local proto_ok, proto = pcall(require, "fo.awsproto")

local function check_request(o)
  lu.assertTrue(proto_ok, "fo.awsproto: " .. tostring(proto))
  local model = models.load(o.service)
  local op = model.operations[o.operation]
  local params = to_params(model, o.params, op.input)
  local okv, verr = pcall(proto.validate, model, o.operation, params)
  if not okv then lu.fail("proto.validate rejects the representative params: " .. tostring(verr)) end
  local req = proto.serialize(model, o.operation, params)
  local want = o.request
  local what = o.service .. "." .. o.operation .. " request"
  lu.assertEquals(req.method, want.method, what .. ": method")
  lu.assertEquals(req.path, want.path, what .. ": path")
  assert_same_form(what .. " query", req.query or "", want.query)
  for _, h in ipairs{ "Content-Type", "X-Amz-Target" } do
    lu.assertEquals(header(req.headers, h), header(want.headers, h), what .. ": header " .. h)
  end
  local body = req.body or ""
  if o.protocol == "query" or o.protocol == "ec2" then
    assert_same_form(what .. " form body", body, want.body)
  elseif o.protocol == "json" then
    local okj, got = pcall(cjson.decode, body)
    if not okj then lu.fail(what .. ": body is not JSON: " .. show(body)) end
    assert_same(what .. " JSON body", from_oracle(got), cjson.decode(want.body))
  else
    if want.body == "" or body == "" then
      lu.assertEquals(body, want.body, what .. ": body")
    else
      local got, err = xml_tree(body)
      if not got then lu.fail(what .. ": body is not XML (" .. err .. "): " .. show(body)) end
      assert_same(what .. " XML body", got, assert(xml_tree(want.body)))
    end
  end
end

local function check_response(o, sparse)
  lu.assertTrue(proto_ok, "fo.awsproto: " .. tostring(proto))
  local model = models.load(o.service)
  local resp = sparse and o.response_sparse or o.response
  local got = proto.parse(model, o.operation, { status = math.tointeger(resp.status),
    headers = resp.headers, body = resp.body })
  assert_same(o.service .. "." .. o.operation .. " parsed " .. (sparse and "sparse " or "")
    .. "response", got, from_oracle(sparse and o.parsed_sparse or o.parsed))
end

local function check_error(o)
  lu.assertTrue(proto_ok, "fo.awsproto: " .. tostring(proto))
  local model = models.load(o.service)
  local e = proto.parse_error(model, o.operation, { status = math.tointeger(o.error.status),
    headers = o.error.headers, body = o.error.body })
  local want = from_oracle(o.parsed_error)
  local got = { code = e.code, message = e.message, request_id = e.request_id,
    fields = drop_message(e.fields) }
  local expect = { code = want.code, message = want.message, request_id = want.request_id,
    fields = drop_message(want.fields) }
  if want.type ~= nil then
    got.type, expect.type = e.type, want.type
  end
  assert_same(o.service .. "." .. o.operation .. " parsed error (" .. want.code .. ")", got, expect)
end

if oracle then
  for _, o in ipairs(oracle.operations) do
    local base = ("test_%s_%s_"):format(o.service, o.operation)
    TestConformance[base .. "request"] = function() check_request(o) end
    TestConformance[base .. "response"] = function() check_response(o, false) end
    TestConformance[base .. "response_sparse"] = function() check_response(o, true) end
    TestConformance[base .. "error"] = function() check_error(o) end
  end
end

os.exit(lu.LuaUnit.run())
