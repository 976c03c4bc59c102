-- AWS's SigV4 test suite (aws-c-auth's v4 vectors): for every case, header signing and
-- query (presigned) signing must reproduce the canonical request, the string to sign,
-- the signature and the signed request exactly.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local cjson = require "cjson"
local testlib = require "support.testlib"
local sigv4 = fo.sigv4

local suite = testlib.data_dir .. "/aws-sigv4-suite"

local function case_names()
  local r = fo.process.run{ argv = { "find", suite, "-mindepth", "1", "-maxdepth", "1", "-type", "d" } }
  assert(r.code == 0, "cannot list " .. suite .. ": " .. r.stderr)
  local names = {}
  for dir in r.stdout:gmatch("[^\n]+") do names[#names + 1] = dir:match("([^/]+)$") end
  table.sort(names)
  return names
end

-- Parses request.txt: request line, headers (a line starting with whitespace continues
-- the previous value), blank line, body.
local function parse_request(text)
  local head, body = text:match("^(.-)\n\n(.*)$")
  head = head or text
  local lines = {}
  for line in (head .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  local method, target = lines[1]:match("^(%S+) (.-) HTTP/1%.1$")
  local path, query = target:match("^([^?]*)%??(.*)$")
  local headers, raw_lines = {}, {}
  for i = 2, #lines do
    local line = lines[i]
    if line:match("^%s") and #headers > 0 then
      headers[#headers][2] = headers[#headers][2] .. "\n" .. line
      raw_lines[#raw_lines] = raw_lines[#raw_lines] .. "\n" .. line
    elseif line ~= "" then
      local name, value = line:match("^([^:]+):(.*)$")
      headers[#headers + 1] = { name, value }
      raw_lines[#raw_lines + 1] = line
    end
  end
  return { method = method, target = target, path = path, query = query,
           headers = headers, raw_lines = raw_lines, body = body or "" }
end

local function sign(req, ctx, mode)
  local c = ctx.credentials
  return sigv4.sign{
    method = req.method, path = req.path, query = req.query, headers = req.headers,
    body = req.body, region = ctx.region, service = ctx.service,
    access_key = c.access_key_id, secret_key = c.secret_access_key, session_token = c.token,
    time = ctx.timestamp, normalize = ctx.normalize, sign_body = ctx.sign_body and mode == "header",
    omit_session_token = ctx.omit_session_token, mode = mode,
    expires = ctx.expiration_in_seconds,
  }
end

local function signed_request(req, s, mode)
  local out = {}
  if mode == "query" then
    out[1] = ("%s %s?%s HTTP/1.1"):format(req.method, req.path, s.query)
  else
    out[1] = ("%s %s HTTP/1.1"):format(req.method, req.target)
  end
  for _, l in ipairs(req.raw_lines) do out[#out + 1] = l end
  for _, h in ipairs(s.header_list) do out[#out + 1] = h[1] .. ":" .. h[2] end
  return table.concat(out, "\n") .. "\n\n" .. req.body
end

local function read_expected(dir, name)
  return testlib.read(dir .. "/" .. name)
end

function test_every_case_of_the_suite_in_both_modes()
  local names = case_names()
  lu.assertTrue(#names >= 30, "suite not found at " .. suite)
  local checked, failures = 0, {}
  for _, name in ipairs(names) do
    local dir = suite .. "/" .. name
    local ctx = cjson.decode(testlib.read(dir .. "/context.json"))
    local req = parse_request(testlib.read(dir .. "/request.txt"))
    for _, mode in ipairs({ "header", "query" }) do
      local s = sign(req, ctx, mode)
      local expect = {
        ["canonical-request"] = s.canonical_request,
        ["string-to-sign"] = s.string_to_sign,
        ["signature"] = s.signature,
        ["signed-request"] = signed_request(req, s, mode),
      }
      for what, got in pairs(expect) do
        local want = read_expected(dir, mode .. "-" .. what .. ".txt")
        if want ~= nil then
          -- Files end with or without a final newline; the contents must match exactly.
          if got:gsub("\n+$", "") ~= want:gsub("\n+$", "") then
            failures[#failures + 1] = ("%s %s %s:\n--- want\n%s\n--- got\n%s"):format(
              name, mode, what, want, got)
          end
          checked = checked + 1
        end
      end
    end
  end
  print(("\nSigV4 suite: %d cases, %d expectations checked, %d failed"):format(#names, checked,
    #failures))
  lu.assertEquals(#failures, 0, table.concat(failures, "\n\n"))
  lu.assertEquals(checked, #names * 8, "every case has 4 expectations per mode")
end

os.exit(lu.LuaUnit.run())
