-- gzip-compressed requests (Content-Encoding: gzip), as botocore 1.43 and the current AWS
-- CLI send CloudWatch PutMetricData bodies of 10,240 bytes or more (the model's
-- `requestcompression` trait) and AWS accepts: fo.sim.gzip against gzip(1) and Python's
-- gzip, and PutMetricData on the wire, JSON 1.0 and query, signed over the compressed bytes.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local simlib = require "fo.sim"
local sigv4 = require "fo.sigv4"
local proto = require "fo.awsproto"
local models = require "fo.aws.models"
local gzip = require "fo.sim.gzip"

local dir = t.tmpdir()

-- `data` compressed by an outside compressor: gzip(1) at `level`, or Python's gzip module
-- (level 0: stored blocks, which gzip(1) never writes).
local function compress(data, level)
  local path = dir .. "/in"
  t.write(path, data)
  local r
  if level == 0 then
    r = fo.process.run{ argv = { "python3", "-c", "import gzip, sys\n"
      .. "sys.stdout.buffer.write(gzip.compress(open(sys.argv[1], 'rb').read(), 0))", path } }
  else
    r = fo.process.run{ argv = { "gzip", "-c", "-" .. level, "-n", path } }
  end
  assert(r.code == 0, r.stderr)
  return r.stdout
end

-- Bytes of every kind (text that repeats, and a pseudo-random run that does not).
local function sample(n)
  local parts, x = {}, 12345
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    parts[i] = (i % 3 == 0) and string.char(x % 256) or ("Latency,Host=h%d;"):format(x % 50)
  end
  return table.concat(parts)
end

TestSimGzip = {}

function TestSimGzip.test_decompress_what_gzip_and_python_write()
  for _, data in ipairs({ "", "x", sample(20), sample(20000) }) do
    for _, level in ipairs({ 0, 1, 6, 9 }) do
      local got, err = gzip.decompress(compress(data, level), 1024 * 1024)
      lu.assertNil(err)
      lu.assertTrue(got == data, ("level %d, %d bytes"):format(level, #data))
    end
  end
  -- two members, one after the other (RFC 1952 2.2)
  local got = gzip.decompress(compress("first ", 6) .. compress("second", 1), 100)
  lu.assertEquals(got, "first second")
end

function TestSimGzip.test_not_gzip_corrupt_truncated_and_over_the_cap()
  local z = compress(sample(2000), 9)
  local got, err = gzip.decompress("Action=PutMetricData", 1000)
  lu.assertNil(got)
  lu.assertStrContains(err, "not gzip data")
  got, err = gzip.decompress(z:sub(1, -9) .. ("\0"):rep(8), 1024 * 1024) -- CRC and size zeroed
  lu.assertNil(got)
  lu.assertStrContains(err, "CRC-32 mismatch")
  got, err = gzip.decompress(z:sub(1, #z // 2), 1024 * 1024)
  lu.assertNil(got)
  lu.assertStrContains(err, "truncated")
  local too_large
  got, err, too_large = gzip.decompress(compress(("0"):rep(200000), 9), 100000)
  lu.assertNil(got)
  lu.assertTrue(too_large)
  lu.assertStrContains(err, "more than 100000 bytes")
end

-- On the wire ------------------------------------------------------------------------

local HOST = "monitoring.us-east-1.amazonaws.com"

-- CloudWatch's model in `protocol` (botocore 1.43's metadata: JSON 1.0 in query mode).
local function wire_model(protocol)
  local m = models.load("cloudwatch")
  if protocol == "query" then return m end
  local meta = {}
  for k, v in pairs(m.metadata) do meta[k] = v end
  meta.protocol, meta.targetPrefix = protocol, "GraniteServiceVersion20100801"
  meta.jsonVersion, meta.awsQueryCompatible = "1.0", {}
  return { name = m.name, metadata = meta, operations = m.operations, shapes = m.shapes }
end

-- op(params) in `protocol`, its body compressed by gzip(1) (or replaced by opts.body), with
-- Content-Encoding: gzip, signed over the bytes sent, as botocore does. Returns the response.
local function call(sim, protocol, op, params, opts)
  opts = opts or {}
  local r = proto.serialize(wire_model(protocol), op, params)
  local body = r.body
  local headers = { Host = HOST }
  for k, v in pairs(r.headers) do headers[k] = v end
  if opts.gzip ~= false then
    body = opts.body or compress(body, 6)
    headers["Content-Encoding"] = "gzip"
  end
  local s = sigv4.sign{ method = "POST", path = r.path, query = "", headers = headers,
    body = body, region = "us-east-1", service = "monitoring",
    access_key = simlib.DEFAULT_KEY.access_key, secret_key = simlib.DEFAULT_KEY.secret_key,
    time = os.time() }
  for k, v in pairs(s.headers) do headers[k] = v end
  return sim:handle{ method = "POST", url = "https://" .. HOST .. r.path, headers = headers,
    body = body }
end

-- n datapoints, one per metric (100: about 16 KB, over botocore's 10,240-byte threshold).
local function metric_data(n)
  local data = {}
  for i = 1, n do
    data[i] = { MetricName = "Latency", Value = i, Unit = "Milliseconds",
      Dimensions = { { Name = "Host", Value = ("host-%04d-compressed-request"):format(i) },
        { Name = "AvailabilityZone", Value = "us-east-1a" } } }
  end
  return data
end

local function metric_count(sim, namespace)
  local resp = call(sim, "query", "ListMetrics", { Namespace = namespace }, { gzip = false })
  lu.assertEquals(resp.status, 200, resp.body)
  return #(proto.parse(models.load("cloudwatch"), "ListMetrics", resp).Metrics or {})
end

function TestSimGzip.test_put_metric_data_gzip_json_and_query()
  local sim = simlib.new{}
  for _, protocol in ipairs({ "json", "query" }) do
    local ns = "Fo/Gzip/" .. protocol
    local resp = call(sim, protocol, "PutMetricData",
      { Namespace = ns, MetricData = metric_data(100) })
    lu.assertEquals(resp.status, 200, resp.body)
    lu.assertEquals(metric_count(sim, ns), 100)
  end
end

-- A body that says gzip and is not: the protocol's validation error, naming why; one that
-- inflates past the service's body cap (1 MB): 413, as a body over the cap.
function TestSimGzip.test_bad_and_oversized_gzip_bodies()
  local sim = simlib.new{}
  local params = { Namespace = "Fo/Gzip/bad", MetricData = metric_data(1) }
  local resp = call(sim, "json", "PutMetricData", params, { body = "{\"Namespace\":\"x\"}" })
  lu.assertEquals(resp.status, 400)
  lu.assertStrContains(resp.headers["x-amzn-query-error"] or "", "ValidationError;Sender")
  lu.assertStrContains(resp.body, "not valid gzip data")
  resp = call(sim, "query", "PutMetricData", params,
    { body = compress(("Action=PutMetricData&"):rep(60000), 9) })
  lu.assertEquals(resp.status, 413)
  lu.assertStrContains(resp.body, "RequestEntityTooLarge")
  lu.assertEquals(metric_count(sim, "Fo/Gzip/bad"), 0)
end

local rc = lu.LuaUnit.run()
t.rmtree(dir)
os.exit(rc)
