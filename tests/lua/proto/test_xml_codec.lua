-- fo.awsproto's XML protocols (ec2, query, rest-xml) beyond AWS's compliance suites: real
-- documents with the real models, error documents of each protocol, malformed, truncated,
-- deep and huge input, and the serializer's checks.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local proto = require "fo.awsproto"

local load_model = require("fo.aws.models").load

local ec2 = load_model("ec2")
local elbv2 = load_model("elbv2")

local function ok(body, headers, status)
  return { status = status or 200, headers = headers or {}, body = body }
end

-- "a=1&b=2" → { a = "1", b = "2" } (percent-decoded)
local function form(body)
  local t = {}
  for part in body:gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=(.*)$")
    local function dec(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end
    t[dec(k)] = dec(v)
  end
  return t
end

-- a small model of one operation for focused cases
local function tiny(protocol, output_shape, shapes, extra)
  local op = { name = "Op", http = { method = "POST", requestUri = "/" },
               output = output_shape and { shape = output_shape } }
  for k, v in pairs(extra or {}) do op[k] = v end
  return { name = "svc", metadata = { protocol = protocol, apiVersion = "2020-01-01" },
           shapes = shapes, operations = { Op = op } }
end

---------------------------------------------------------------- real documents

TestRealDocuments = {}

local DESCRIBE_VPCS = [[<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <vpcSet>
        <item>
            <vpcId>vpc-0a60eb65b4EXAMPLE</vpcId>
            <ownerId>111122223333</ownerId>
            <state>available</state>
            <cidrBlock>10.0.0.0/16</cidrBlock>
            <cidrBlockAssociationSet>
                <item>
                    <associationId>vpc-cidr-assoc-0a5ef0b1fdEXAMPLE</associationId>
                    <cidrBlock>10.0.0.0/16</cidrBlock>
                    <cidrBlockState>
                        <state>associated</state>
                    </cidrBlockState>
                </item>
            </cidrBlockAssociationSet>
            <dhcpOptionsId>dopt-19edf471</dhcpOptionsId>
            <tagSet>
                <item>
                    <key>Name</key>
                    <value>fo-primary</value>
                </item>
                <item>
                    <key>fo:stack</key>
                    <value>trading &amp; co</value>
                </item>
            </tagSet>
            <instanceTenancy>default</instanceTenancy>
            <isDefault>false</isDefault>
        </item>
        <item>
            <vpcId>vpc-06e4ab6c6cEXAMPLE</vpcId>
            <ownerId>111122223333</ownerId>
            <state>pending</state>
            <cidrBlock>172.31.0.0/16</cidrBlock>
            <ipv6CidrBlockAssociationSet/>
            <dhcpOptionsId>dopt-19edf471</dhcpOptionsId>
            <instanceTenancy>default</instanceTenancy>
            <isDefault>true</isDefault>
        </item>
    </vpcSet>
    <nextToken>eyJ2IjoiMiJ9</nextToken>
</DescribeVpcsResponse>]]

function TestRealDocuments.test_ec2_describe_vpcs()
  local out = proto.parse(ec2, "DescribeVpcs", ok(DESCRIBE_VPCS))
  lu.assertEquals(out.NextToken, "eyJ2IjoiMiJ9")
  lu.assertEquals(#out.Vpcs, 2)
  local v = out.Vpcs[1]
  lu.assertEquals(v.VpcId, "vpc-0a60eb65b4EXAMPLE")
  lu.assertEquals(v.OwnerId, "111122223333")
  lu.assertEquals(v.State, "available")
  lu.assertEquals(v.IsDefault, false)
  lu.assertEquals(v.CidrBlockAssociationSet, { {
    AssociationId = "vpc-cidr-assoc-0a5ef0b1fdEXAMPLE", CidrBlock = "10.0.0.0/16",
    CidrBlockState = { State = "associated" } } })
  lu.assertEquals(v.Tags, { { Key = "Name", Value = "fo-primary" },
                            { Key = "fo:stack", Value = "trading & co" } })
  lu.assertEquals(out.Vpcs[2].IsDefault, true)
  lu.assertEquals(out.Vpcs[2].Ipv6CidrBlockAssociationSet, {}) -- empty element → empty list
  lu.assertNil(out.Vpcs[2].Tags)                                 -- absent → nil
  lu.assertNil(out.requestId)
end

function TestRealDocuments.test_ec2_describe_vpcs_request()
  local req = proto.serialize(ec2, "DescribeVpcs", {
    Filters = { { Name = "tag:fo:stack", Values = { "trading", "a b/c" } },
                { Name = "is-default", Values = { "false" } } },
    VpcIds = { "vpc-1" }, MaxResults = 5, DryRun = false })
  lu.assertEquals(req.method, "POST")
  lu.assertEquals(req.path, "/")
  lu.assertEquals(req.headers["Content-Type"], "application/x-www-form-urlencoded; charset=utf-8")
  lu.assertEquals(form(req.body), {
    Action = "DescribeVpcs", Version = "2016-11-15",
    ["Filter.1.Name"] = "tag:fo:stack", ["Filter.1.Value.1"] = "trading",
    ["Filter.1.Value.2"] = "a b/c", ["Filter.2.Name"] = "is-default",
    ["Filter.2.Value.1"] = "false", ["VpcId.1"] = "vpc-1", MaxResults = "5", DryRun = "false" })
  -- percent-encoding as botocore: RFC 3986 unreserved kept, everything else encoded
  lu.assertStrContains(req.body, "Filter.1.Value.2=a%20b%2Fc")
  lu.assertStrContains(req.body, "Filter.1.Name=tag%3Afo%3Astack")
end

function TestRealDocuments.test_ec2_empty_list_omitted_query_empty_list_sent()
  local req = proto.serialize(ec2, "DescribeVpcs", { VpcIds = {} })
  lu.assertEquals(form(req.body), { Action = "DescribeVpcs", Version = "2016-11-15" })
  req = proto.serialize(elbv2, "DescribeLoadBalancers", { Names = {} })
  lu.assertEquals(form(req.body), { Action = "DescribeLoadBalancers", Version = "2015-12-01",
                                    Names = "" })
end

local DESCRIBE_LBS = [[<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <DescribeLoadBalancersResult>
    <LoadBalancers>
      <member>
        <LoadBalancerArn>arn:aws:elasticloadbalancing:eu-south-1:123456789012:loadbalancer/app/fo-alb/50dc6c495c0c9188</LoadBalancerArn>
        <Scheme>internet-facing</Scheme>
        <LoadBalancerName>fo-alb</LoadBalancerName>
        <VpcId>vpc-3ac0fb5f</VpcId>
        <CanonicalHostedZoneId>Z2P70J7EXAMPLE</CanonicalHostedZoneId>
        <CreatedTime>2016-03-25T21:26:12.920Z</CreatedTime>
        <AvailabilityZones>
          <member>
            <SubnetId>subnet-8360a9e7</SubnetId>
            <ZoneName>eu-south-1a</ZoneName>
          </member>
          <member>
            <SubnetId>subnet-b7d581c0</SubnetId>
            <ZoneName>eu-south-1b</ZoneName>
          </member>
        </AvailabilityZones>
        <SecurityGroups>
          <member>sg-5943793c</member>
        </SecurityGroups>
        <DNSName>fo-alb-1234567890.eu-south-1.elb.amazonaws.com</DNSName>
        <State>
          <Code>active</Code>
        </State>
        <Type>application</Type>
      </member>
    </LoadBalancers>
  </DescribeLoadBalancersResult>
  <ResponseMetadata>
    <RequestId>6581c0ac-f39f-11e5-bb98-57195a6eb84a</RequestId>
  </ResponseMetadata>
</DescribeLoadBalancersResponse>]]

function TestRealDocuments.test_elbv2_describe_load_balancers()
  local out = proto.parse(elbv2, "DescribeLoadBalancers", ok(DESCRIBE_LBS))
  lu.assertEquals(#out.LoadBalancers, 1)
  local lb = out.LoadBalancers[1]
  lu.assertEquals(lb.LoadBalancerName, "fo-alb")
  lu.assertEquals(lb.Scheme, "internet-facing")
  lu.assertEquals(lb.DNSName, "fo-alb-1234567890.eu-south-1.elb.amazonaws.com")
  lu.assertEquals(lb.State, { Code = "active" })
  lu.assertEquals(lb.SecurityGroups, { "sg-5943793c" })
  lu.assertEquals(lb.AvailabilityZones, {
    { SubnetId = "subnet-8360a9e7", ZoneName = "eu-south-1a" },
    { SubnetId = "subnet-b7d581c0", ZoneName = "eu-south-1b" } })
  lu.assertAlmostEquals(lb.CreatedTime, 1458941172.92, 1e-6) -- 2016-03-25T21:26:12.920Z
  lu.assertNil(out.ResponseMetadata)
end

---------------------------------------------------------------- error documents

TestErrors = {}

function TestErrors.test_query_error()
  local e = proto.parse_error(elbv2, "DescribeLoadBalancers", ok([[
<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
  <Error>
    <Type>Sender</Type>
    <Code>LoadBalancerNotFound</Code>
    <Message>One or more load balancers not found</Message>
  </Error>
  <RequestId>c9a5b1f6-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>]], {}, 400))
  lu.assertEquals(e.code, "LoadBalancerNotFound")
  lu.assertEquals(e.message, "One or more load balancers not found")
  lu.assertEquals(e.type, "Sender")
  lu.assertEquals(e.request_id, "c9a5b1f6-0000-4000-8000-000000000000")
  -- elbv2's LoadBalancerNotFoundException (error.code LoadBalancerNotFound) models no member
  lu.assertEquals(e.fields, {})
end

function TestErrors.test_query_error_modelled_fields()
  local m = tiny("query", nil, {
    Busy = { type = "structure", exception = true, error = { code = "Throttled.Busy" },
             members = { Message = { shape = "S" }, RetryIn = { shape = "I", locationName = "retryIn" },
                         Ids = { shape = "L" } } },
    S = { type = "string" }, I = { type = "integer" },
    L = { type = "list", member = { shape = "S", locationName = "id" } } })
  local e = proto.parse_error(m, "Op", ok([[
<ErrorResponse><Error><Type>Receiver</Type><Code>Throttled.Busy</Code><Message>slow down</Message>
<retryIn>3</retryIn><Ids><id>a</id><id>b</id></Ids><Other>x</Other></Error><RequestId>r</RequestId></ErrorResponse>]],
    {}, 400))
  lu.assertEquals(e.code, "Throttled.Busy")
  lu.assertEquals(e.fields, { Message = "slow down", RetryIn = 3, Ids = { "a", "b" } })
  -- an error code no shape models: no fields
  e = proto.parse_error(m, "Op", ok("<ErrorResponse><Error><Code>Busy2</Code></Error></ErrorResponse>", {}, 400))
  lu.assertEquals(e.code, "Busy2")
  lu.assertEquals(e.fields, {})
end

function TestErrors.test_ec2_error()
  local e = proto.parse_error(ec2, "DescribeVpcs", ok([[
<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-1' does not exist</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>]],
    {}, 400))
  lu.assertEquals(e.code, "InvalidVpcID.NotFound")
  lu.assertEquals(e.message, "The vpc ID 'vpc-1' does not exist")
  lu.assertEquals(e.request_id, "ea966190-f9aa-478e-9ede-example")
  lu.assertNil(e.type)
  lu.assertEquals(e.fields, {})
end

local route53_like = tiny("rest-xml", nil, {
  NoSuchHostedZone = { type = "structure", exception = true, error = { httpStatusCode = 404 },
                       members = { message = { shape = "S" } } },
  S = { type = "string" } })

function TestErrors.test_rest_xml_error_response()
  local e = proto.parse_error(route53_like, "Op", ok([[
<?xml version="1.0"?>
<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>NoSuchHostedZone</Code><Message>No hosted zone found with ID: Z1</Message></Error><RequestId>5d2d1e2a-0000</RequestId></ErrorResponse>]],
    {}, 404))
  lu.assertEquals(e.code, "NoSuchHostedZone")
  lu.assertEquals(e.message, "No hosted zone found with ID: Z1")
  lu.assertEquals(e.type, "Sender")
  lu.assertEquals(e.request_id, "5d2d1e2a-0000")
  lu.assertEquals(e.fields, {}) -- "message" (lower case) is not <Message>
end

function TestErrors.test_rest_xml_bare_error_s3_style()
  local e = proto.parse_error(route53_like, "Op", ok([[
<Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message><Resource>/b/k</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>]],
    { ["x-amz-request-id"] = "4442587FB7D0A2F9" }, 404))
  lu.assertEquals(e.code, "NoSuchKey")
  lu.assertEquals(e.message, "The resource you requested does not exist")
  lu.assertEquals(e.request_id, "4442587FB7D0A2F9")
end

function TestErrors.test_malformed_error_documents_still_give_an_error()
  for _, case in ipairs{ { elbv2, "DescribeLoadBalancers" }, { ec2, "DescribeVpcs" },
                         { route53_like, "Op" } } do
    for _, body in ipairs{ "<ErrorResponse><Error><Code>Thr", "", "<html><body>Bad gateway</body></html>",
                           "not xml at all", string.rep("<a>", 100000) } do
      local e = proto.parse_error(case[1], case[2],
        ok(body, { ["x-amzn-requestid"] = "rid-1" }, 503))
      lu.assertEquals(e.code, "503", body:sub(1, 30))
      lu.assertEquals(e.message, "Service Unavailable")
      lu.assertEquals(e.request_id, "rid-1")
      lu.assertEquals(e.fields, {})
    end
  end
end

---------------------------------------------------------------- malformed, deep, huge

TestLimits = {}

function TestLimits.test_malformed_success_response_is_a_lua_error()
  local truncated = DESCRIBE_VPCS:sub(1, 400)
  local okp, err = pcall(proto.parse, ec2, "DescribeVpcs", ok(truncated))
  lu.assertFalse(okp)
  lu.assertStrMatches(err, "ec2%.DescribeVpcs: malformed XML response: .+ at line %d+")
  okp, err = pcall(proto.parse, elbv2, "DescribeLoadBalancers", ok("<a><b></a>"))
  lu.assertFalse(okp)
  lu.assertStrContains(err, "elbv2.DescribeLoadBalancers: malformed XML response: mismatched tag at line 1")
  okp, err = pcall(proto.parse, elbv2, "DescribeLoadBalancers", ok(""))
  lu.assertFalse(okp)
  lu.assertStrContains(err, "malformed XML response")
end

function TestLimits.test_dtd_and_entities_refused()
  local bomb = [[<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<DescribeVpcsResponse><nextToken>&lol2;</nextToken></DescribeVpcsResponse>]]
  local okp, err = pcall(proto.parse, ec2, "DescribeVpcs", ok(bomb))
  lu.assertFalse(okp)
  lu.assertStrContains(err, "DTDs are not allowed")
end

function TestLimits.test_nesting_is_bounded()
  local deep = string.rep("<a>", 300) .. string.rep("</a>", 300)
  local okp, err = pcall(proto.parse, ec2, "DescribeVpcs", ok(deep))
  lu.assertFalse(okp)
  lu.assertStrContains(err, "nested too deeply")
  -- just under the bound is fine (the elements are unknown to the shape: ignored)
  local fine = string.rep("<a>", 200) .. string.rep("</a>", 200)
  lu.assertEquals(proto.parse(ec2, "DescribeVpcs", ok(fine)), {})
end

function TestLimits.test_huge_response()
  local items = {}
  for i = 1, 20000 do
    items[i] = ("<item><vpcId>vpc-%d</vpcId><tagSet><item><key>k</key><value>%s</value></item></tagSet></item>")
      :format(i, ("x"):rep(100))
  end
  local body = "<DescribeVpcsResponse><vpcSet>" .. table.concat(items) .. "</vpcSet></DescribeVpcsResponse>"
  lu.assertTrue(#body > 3000000)
  local out = proto.parse(ec2, "DescribeVpcs", ok(body))
  lu.assertEquals(#out.Vpcs, 20000)
  lu.assertEquals(out.Vpcs[20000].VpcId, "vpc-20000")
  lu.assertEquals(out.Vpcs[1].Tags[1].Value, ("x"):rep(100))
end

function TestLimits.test_values_that_do_not_fit_the_shape()
  local m = tiny("query", "Out", { Out = { type = "structure", members = {
    N = { shape = "I" }, T = { shape = "T" }, B = { shape = "B" } } },
    I = { type = "integer" }, T = { type = "timestamp" }, B = { type = "blob" } },
    nil)
  m.operations.Op.output.resultWrapper = "OpResult"
  local function parse(inner)
    return pcall(proto.parse, m, "Op", ok("<OpResponse><OpResult>" .. inner .. "</OpResult></OpResponse>"))
  end
  local okp, err = parse("<N>12x</N>")
  lu.assertFalse(okp)
  lu.assertStrContains(err, "svc.Op: malformed response: invalid integer '12x'")
  okp, err = parse("<T>yesterday</T>")
  lu.assertFalse(okp)
  lu.assertStrContains(err, "invalid timestamp")
  okp, err = parse("<B>!!!</B>")
  lu.assertFalse(okp)
  lu.assertStrContains(err, "invalid base64 blob")
  local out = assert(select(2, parse("<N> 42 </N><T>Tue, 29 Apr 2014 18:30:38 GMT</T><B>AP8=</B><Z>ignored</Z>")))
  lu.assertEquals(out, { N = 42, T = 1398796238, B = "\0\255" })
  -- the result wrapper absent: nothing in the result
  lu.assertEquals(proto.parse(m, "Op", ok("<OpResponse/>")), {})
end

---------------------------------------------------------------- serializer checks

TestSerialize = {}

function TestSerialize.test_unknown_member_and_wrong_types_are_errors()
  local okp, err = pcall(proto.serialize, ec2, "DescribeVpcs", { Filter = {} })
  lu.assertFalse(okp)
  lu.assertStrContains(err, "ec2.DescribeVpcs: (input): unknown member Filter")
  okp, err = pcall(proto.serialize, ec2, "DescribeVpcs", { VpcIds = "vpc-1" })
  lu.assertFalse(okp)
  lu.assertStrContains(err, "ec2.DescribeVpcs: VpcId: expected a list (an array), got string")
  okp, err = pcall(proto.serialize, ec2, "DescribeVpcs", { Filters = { { Values = { 1, {} } } } })
  lu.assertFalse(okp)
  lu.assertStrContains(err, "Filter.1.Value.2: expected a string, got table")
end

function TestSerialize.test_cycles_are_an_error_not_a_crash()
  local m = tiny("query", nil, {
    In = { type = "structure", members = { Next = { shape = "In" }, V = { shape = "S" } } },
    S = { type = "string" } }, { input = { shape = "In" } })
  local t = { V = "x" }
  t.Next = t
  local okp, err = pcall(proto.serialize, m, "Op", t)
  lu.assertFalse(okp)
  lu.assertStrContains(err, "nested too deeply")
end

function TestSerialize.test_scalars()
  local m = tiny("query", nil, {
    In = { type = "structure", members = {
      F = { shape = "F" }, D = { shape = "D" }, T = { shape = "T" }, E = { shape = "E" },
      B = { shape = "B" }, M = { shape = "M" } } },
    F = { type = "float" }, D = { type = "double" }, T = { type = "timestamp" },
    E = { type = "timestamp", timestampFormat = "unixTimestamp" }, B = { type = "blob" },
    M = { type = "map", key = { shape = "S" }, value = { shape = "S" } }, S = { type = "string" } },
    { input = { shape = "In" } })
  local cases = { { 1.5, "1.5" }, { 0.1, "0.1" }, { 1e22, "1e+22" }, { 1e-7, "1e-07" },
                  { 100000.0, "100000.0" }, { 3, "3" }, { -2.5e-3, "-0.0025" },
                  { 0 / 0, "NaN" }, { math.huge, "Infinity" }, { -math.huge, "-Infinity" } }
  for _, c in ipairs(cases) do
    lu.assertEquals(form(proto.serialize(m, "Op", { F = c[1] }).body).F, c[2], tostring(c[1]))
  end
  local b = form(proto.serialize(m, "Op", { T = 1398796238, E = "2014-04-29T18:30:38Z",
                                            B = "\0\255", M = { b = "2", a = "1" } }).body)
  lu.assertEquals(b.T, "2014-04-29T18:30:38Z")
  lu.assertEquals(b.E, "1398796238")
  lu.assertEquals(b.B, "AP8=")
  -- map entries in sorted key order
  lu.assertEquals({ b["M.entry.1.key"], b["M.entry.1.value"], b["M.entry.2.key"] }, { "a", "1", "b" })
end

os.exit(lu.LuaUnit.run())
