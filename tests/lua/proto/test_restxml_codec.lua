-- fo.awsproto's rest-xml request serializer with the real Route 53 model, compared with what
-- botocore sends, plus the serializer's own checks (focused models).
--
-- The expected requests below were produced by Debian's python3-botocore (1.29.27) with a
-- route53 client whose before-send hook captured the prepared request (method, URL, headers,
-- body); they are hardcoded here so the test needs no Python. botocore writes XML elements
-- and query parameters in the order of the caller's dict, fo in the model's member order
-- (memberOrder): XML is compared as trees with differently named siblings in name order
-- (list items keep theirs), query strings as sets of encoded parts; one test pins fo's exact
-- bytes.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local proto = require "fo.awsproto"
local suite = require "support.protocol_suite"

local load_model = require("fo.aws.models").load

local route53 = load_model("route53")

-- XML as trees with differently named siblings in name order, query strings as sorted sets
-- of encoded parts: the protocol suites' comparisons.
local tree, parts = suite.xml_tree, suite.query_parts

-- Compares fo's request for (op, params) with botocore's: method, URL (https://host + path
-- + "?" + query), body (XML trees) and no Content-Type (botocore sends none).
local function same_as_botocore(op, params, want)
  local req = proto.serialize(route53, op, params)
  lu.assertEquals(req.method, want.method)
  local path, query = want.url:match("^https://[^/]+([^?]*)%??(.*)$")
  lu.assertEquals(req.path, path)
  lu.assertEquals(parts(req.query), parts(query))
  lu.assertNil(req.headers["Content-Type"])
  if want.body then
    lu.assertEquals(tree(req.body), tree(want.body), "body:\n" .. req.body)
  else
    lu.assertEquals(req.body, "")
  end
  return req
end

TestRoute53 = {}

function TestRoute53.test_change_resource_record_sets_weighted_and_alias()
  same_as_botocore("ChangeResourceRecordSets", {
    HostedZoneId = "/hostedzone/Z0123456789ABC",
    ChangeBatch = {
      Comment = "failover <a&b>",
      Changes = {
        { Action = "UPSERT", ResourceRecordSet = {
            Name = "api.example.com.", Type = "A", SetIdentifier = "primary", Weight = 100,
            TTL = 60, HealthCheckId = "abcdef01-2345-6789-abcd-ef0123456789",
            ResourceRecords = { { Value = "192.0.2.10" }, { Value = "192.0.2.11" } } } },
        { Action = "CREATE", ResourceRecordSet = {
            Name = "www.example.com.", Type = "A",
            AliasTarget = { HostedZoneId = "Z32O12XQLNTSW2",
                            DNSName = "my-lb-123.eu-south-1.elb.amazonaws.com.",
                            EvaluateTargetHealth = true } } },
      },
    },
  }, {
    method = "POST",
    url = "https://route53.amazonaws.com/2013-04-01/hostedzone/Z0123456789ABC/rrset/",
    body = '<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>failover &lt;a&amp;b&gt;</Comment><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>api.example.com.</Name><Type>A</Type><SetIdentifier>primary</SetIdentifier><Weight>100</Weight><TTL>60</TTL><HealthCheckId>abcdef01-2345-6789-abcd-ef0123456789</HealthCheckId><ResourceRecords><ResourceRecord><Value>192.0.2.10</Value></ResourceRecord><ResourceRecord><Value>192.0.2.11</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change><Change><Action>CREATE</Action><ResourceRecordSet><Name>www.example.com.</Name><Type>A</Type><AliasTarget><HostedZoneId>Z32O12XQLNTSW2</HostedZoneId><DNSName>my-lb-123.eu-south-1.elb.amazonaws.com.</DNSName><EvaluateTargetHealth>true</EvaluateTargetHealth></AliasTarget></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>',
  })
end

function TestRoute53.test_change_resource_record_sets_exact_bytes()
  -- fo's own bytes (members in the model's order, which Route 53's XML schema checks;
  -- text escaped), pinned so that a change shows.
  local req = proto.serialize(route53, "ChangeResourceRecordSets", {
    HostedZoneId = "Z1",
    ChangeBatch = { Changes = { { Action = "DELETE", ResourceRecordSet = {
      Name = "a.example.com.", Type = "TXT", TTL = 300,
      ResourceRecords = { { Value = '"v=spf1 -all"' } } } } } },
  })
  lu.assertEquals(req.body, '<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>a.example.com.</Name><Type>TXT</Type><TTL>300</TTL><ResourceRecords><ResourceRecord><Value>&quot;v=spf1 -all&quot;</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>')
  lu.assertEquals(req.path, "/2013-04-01/hostedzone/Z1/rrset/")
  lu.assertEquals(req.query, "")
  lu.assertEquals(req.headers, {})
end

function TestRoute53.test_create_health_check()
  same_as_botocore("CreateHealthCheck", {
    CallerReference = "fo-trading-hc-1",
    HealthCheckConfig = {
      IPAddress = "192.0.2.10", Port = 443, Type = "HTTPS", ResourcePath = "/health?x=1&y=2",
      FullyQualifiedDomainName = "api.example.com", RequestInterval = 10, FailureThreshold = 3,
      MeasureLatency = false, Regions = { "us-east-1", "eu-west-1", "ap-southeast-1" },
    },
  }, {
    method = "POST",
    url = "https://route53.amazonaws.com/2013-04-01/healthcheck",
    body = '<CreateHealthCheckRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><CallerReference>fo-trading-hc-1</CallerReference><HealthCheckConfig><IPAddress>192.0.2.10</IPAddress><Port>443</Port><Type>HTTPS</Type><ResourcePath>/health?x=1&amp;y=2</ResourcePath><FullyQualifiedDomainName>api.example.com</FullyQualifiedDomainName><RequestInterval>10</RequestInterval><FailureThreshold>3</FailureThreshold><MeasureLatency>false</MeasureLatency><Regions><Region>us-east-1</Region><Region>eu-west-1</Region><Region>ap-southeast-1</Region></Regions></HealthCheckConfig></CreateHealthCheckRequest>',
  })
end

function TestRoute53.test_list_resource_record_sets_querystring()
  same_as_botocore("ListResourceRecordSets", {
    HostedZoneId = "Z0123456789ABC", StartRecordName = "api.example.com.", StartRecordType = "A",
    StartRecordIdentifier = "primary id/1", MaxItems = "100",
  }, {
    method = "GET",
    url = "https://route53.amazonaws.com/2013-04-01/hostedzone/Z0123456789ABC/rrset?name=api.example.com.&type=A&identifier=primary%20id%2F1&maxitems=100",
  })
  -- only the members given
  local req = proto.serialize(route53, "ListResourceRecordSets", { HostedZoneId = "Z1" })
  lu.assertEquals(req.query, "")
end

function TestRoute53.test_get_change_strips_the_change_prefix()
  -- botocore's fix_route53_ids (before-parameter-build.route53) keeps what follows the last
  -- '/' of ResourceId, DelegationSetId and ChangeId members, so ChangeInfo.Id
  -- ("/change/C...") can be passed back as is.
  same_as_botocore("GetChange", { Id = "/change/C2682N5HXP0BZ4" }, {
    method = "GET", url = "https://route53.amazonaws.com/2013-04-01/change/C2682N5HXP0BZ4",
  })
  same_as_botocore("GetChange", { Id = "C2682N5HXP0BZ4" }, {
    method = "GET", url = "https://route53.amazonaws.com/2013-04-01/change/C2682N5HXP0BZ4",
  })
end

function TestRoute53.test_ids_are_stripped_in_the_body_and_query_too()
  same_as_botocore("CreateHostedZone", {
    Name = "example.com.", CallerReference = "fo-trading-zone-1",
    HostedZoneConfig = { Comment = "trading", PrivateZone = false },
    DelegationSetId = "/delegationset/N1PA6795SAMPLE",
  }, {
    method = "POST", url = "https://route53.amazonaws.com/2013-04-01/hostedzone",
    body = '<CreateHostedZoneRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Name>example.com.</Name><CallerReference>fo-trading-zone-1</CallerReference><HostedZoneConfig><Comment>trading</Comment><PrivateZone>false</PrivateZone></HostedZoneConfig><DelegationSetId>N1PA6795SAMPLE</DelegationSetId></CreateHostedZoneRequest>',
  })
  same_as_botocore("ListHostedZonesByName", { DNSName = "example.com.", HostedZoneId = "/hostedzone/Z123" }, {
    method = "GET",
    url = "https://route53.amazonaws.com/2013-04-01/hostedzonesbyname?dnsname=example.com.&hostedzoneid=Z123",
  })
  -- the caller's table is left alone
  local params = { Id = "/change/C1" }
  proto.serialize(route53, "GetChange", params)
  lu.assertEquals(params.Id, "/change/C1")
end

function TestRoute53.test_change_tags_for_resource()
  local req = same_as_botocore("ChangeTagsForResource", {
    ResourceType = "healthcheck", ResourceId = "abcdef01-2345-6789-abcd-ef0123456789",
    AddTags = { { Key = "fo:stack", Value = "trading" }, { Key = "Name", Value = "a b" } },
    RemoveTagKeys = { "old", "older" },
  }, {
    method = "POST",
    url = "https://route53.amazonaws.com/2013-04-01/tags/healthcheck/abcdef01-2345-6789-abcd-ef0123456789",
    body = '<ChangeTagsForResourceRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><AddTags><Tag><Key>fo:stack</Key><Value>trading</Value></Tag><Tag><Key>Name</Key><Value>a b</Value></Tag></AddTags><RemoveTagKeys><Key>old</Key><Key>older</Key></RemoveTagKeys></ChangeTagsForResourceRequest>',
  })
  lu.assertEquals(req.headers, {})
end

function TestRoute53.test_list_health_checks_marker_encoded()
  same_as_botocore("ListHealthChecks", { MaxItems = "10", Marker = "abc/def" }, {
    method = "GET", url = "https://route53.amazonaws.com/2013-04-01/healthcheck?maxitems=10&marker=abc%2Fdef",
  })
end

function TestRoute53.test_errors_name_the_member()
  local function err(op, params)
    local ok, e = pcall(proto.serialize, route53, op, params)
    lu.assertFalse(ok)
    return tostring(e)
  end
  lu.assertStrContains(err("GetChange", {}), "GetChange: Id: missing: it fills the {Id} of the URI")
  lu.assertStrContains(err("GetChange", { Id = "" }), "GetChange: Id: empty")
  lu.assertStrContains(err("GetChange", { Id = 5 }), "Id: expected a string, got number")
  lu.assertStrContains(err("GetChange", { Id = "C1", Bogus = 1 }), "unknown member 'Bogus'")
  lu.assertStrContains(err("ChangeResourceRecordSets", { HostedZoneId = "Z1", ChangeBatch = {
    Changes = { { Action = "UPSERT", ResourceRecordSet = { Name = "a.", Type = "A", TTL = "60" } } } } }),
    "ChangeResourceRecordSets: ChangeBatch.Changes[1].ResourceRecordSet.TTL: expected a number, got string")
  lu.assertStrContains(err("ChangeResourceRecordSets", { HostedZoneId = "Z1", ChangeBatch = {
    Changes = { { Action = "UPSERT", ResourceRecordSet = { Name = "a.", Type = "A", Weight = 1.5 } } } } }),
    "ResourceRecordSet.Weight: expected an integer, got 1.5")
  lu.assertStrContains(err("ChangeResourceRecordSets", { HostedZoneId = "Z1", ChangeBatch = {
    Changes = { { Action = "UPSERT", ResourceRecordSet = { Name = "a.", Type = "A", Nope = 1 } } } } }),
    "ChangeBatch.Changes[1].ResourceRecordSet: unknown member 'Nope'")
  lu.assertStrContains(err("CreateHealthCheck", { CallerReference = "x", HealthCheckConfig = {
    Type = "HTTP", MeasureLatency = "yes" } }), "HealthCheckConfig.MeasureLatency: expected a boolean")
  lu.assertStrContains(err("ChangeTagsForResource", { ResourceType = "healthcheck", ResourceId = "x",
    AddTags = "tag" }), "AddTags: expected a table (list), got string")
  lu.assertStrContains(err("ChangeTagsForResource", { ResourceType = "healthcheck", ResourceId = "x",
    [1] = "x" }), "unknown member (a number key)")
end

---------------------------------------------------------------- focused models

-- A one-operation rest-xml model: input shape "In" with `members`, other shapes in `shapes`.
local function tiny(members, shapes, http, input_extra)
  local all = { In = { type = "structure", members = members } }
  for k, v in pairs(shapes or {}) do all[k] = v end
  local input = { shape = "In", locationName = "InReq" }
  for k, v in pairs(input_extra or {}) do input[k] = v end
  return {
    name = "svc",
    metadata = { protocol = "rest-xml", serviceId = "Svc" },
    shapes = all,
    operations = { Op = { name = "Op", http = http or { method = "PUT", requestUri = "/r/{Key+}?tagging" },
                          input = input } },
  }
end

TestRestXml = {}

function TestRestXml.test_labels_greedy_and_literal_query()
  local m = tiny({ Key = { shape = "S", location = "uri", locationName = "Key" },
                   V = { shape = "S", location = "querystring", locationName = "v" } },
                 { S = { type = "string" } })
  local req = proto.serialize(m, "Op", { Key = "a b/c~d", V = "x y" })
  lu.assertEquals(req.method, "PUT")
  lu.assertEquals(req.path, "/r/a%20b/c~d")
  lu.assertEquals(req.query, "tagging&v=x%20y")
  lu.assertEquals(req.body, "")
  m.operations.Op.http.requestUri = "/r/{Key}"
  lu.assertEquals(proto.serialize(m, "Op", { Key = "a b/c~d" }).path, "/r/a%20b%2Fc~d")
end

function TestRestXml.test_headers()
  local m = tiny({
    T = { shape = "Ts", location = "header", locationName = "X-T" },
    Ti = { shape = "Ts", location = "header", locationName = "X-Ti", timestampFormat = "iso8601" },
    B = { shape = "Bool", location = "header", locationName = "X-B" },
    L = { shape = "SL", location = "header", locationName = "X-L" },
    E = { shape = "SL", location = "header", locationName = "X-E" },
    J = { shape = "Json", location = "header", locationName = "X-J" },
    D = { shape = "D", location = "header", locationName = "X-D" },
    Meta = { shape = "M", location = "headers", locationName = "x-meta-" },
  }, {
    Ts = { type = "timestamp" }, Bool = { type = "boolean" }, S = { type = "string" },
    SL = { type = "list", member = { shape = "S" } }, Json = { type = "string", jsonvalue = true },
    D = { type = "double" }, M = { type = "map", key = { shape = "S" }, value = { shape = "S" } },
  }, { method = "POST", requestUri = "/" })
  local req = proto.serialize(m, "Op", {
    T = 1576540098, Ti = "2019-12-16T23:48:18Z", B = false, L = { "a", "b,c", 'd"e' },
    E = {}, J = { a = { 1, 2 }, b = "x\n" }, D = 1.5, Meta = { one = "1", two = "" },
  })
  lu.assertEquals(req.headers, {
    ["X-T"] = "Mon, 16 Dec 2019 23:48:18 GMT", ["X-Ti"] = "2019-12-16T23:48:18Z",
    ["X-B"] = "false", ["X-L"] = 'a,"b,c","d\\"e"', ["X-D"] = "1.5",
    ["X-J"] = fo.crypto.base64_encode('{"a":[1,2],"b":"x\\n"}'),
    ["x-meta-one"] = "1", ["x-meta-two"] = "",
  })
end

function TestRestXml.test_payloads()
  local shapes = { S = { type = "string" }, B = { type = "blob" },
                   P = { type = "structure", members = { A = { shape = "S", xmlAttribute = true, locationName = "xsi:a" },
                                                         N = { shape = "S" } },
                         xmlNamespace = { prefix = "xsi", uri = "http://www.w3.org/2001/XMLSchema-instance" } } }
  local m = tiny({ Key = { shape = "S", location = "uri", locationName = "Key" }, Body = { shape = "B" },
                   H = { shape = "S", location = "header", locationName = "X-H" } }, shapes)
  m.shapes.In.payload = "Body"
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k", Body = "\0raw\255" }).body, "\0raw\255")
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k", H = "h" }).body, "")
  m.shapes.In.members.Body = { shape = "P", locationName = "Grant" }
  local req = proto.serialize(m, "Op", { Key = "k", Body = { A = "v&<\"", N = "n" } })
  lu.assertEquals(req.body, '<Grant xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:a="v&amp;&lt;&quot;"><N>n</N></Grant>')
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k", Body = {} }).body,
    '<Grant xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"></Grant>')
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k" }).body, "")
end

function TestRestXml.test_body_scalars_lists_maps()
  local m = tiny({
    Key = { shape = "S", location = "uri", locationName = "Key" },
    F = { shape = "D" }, I = { shape = "I" }, Bl = { shape = "B" }, T = { shape = "Ts" },
    Te = { shape = "Ts", timestampFormat = "unixTimestamp" }, Flat = { shape = "FL" },
    M = { shape = "M" }, FM = { shape = "M", flattened = true },
  }, {
    S = { type = "string" }, D = { type = "double" }, I = { type = "long" }, B = { type = "blob" },
    Ts = { type = "timestamp" }, FL = { type = "list", member = { shape = "S" }, flattened = true },
    M = { type = "map", key = { shape = "S", locationName = "K" }, value = { shape = "S" } },
  }, nil, { xmlNamespace = "https://ns/" })
  local req = proto.serialize(m, "Op", {
    Key = "k", F = 0 / 0, I = 3.0, Bl = "foo", T = 1422172800.5, Te = 1422172800, Flat = { "x", "y" },
    M = { b = "2", a = "1" }, FM = { z = "26" },
  })
  lu.assertEquals(req.body, '<InReq xmlns="https://ns/"><Bl>Zm9v</Bl><F>NaN</F>'
    .. '<FM><K>z</K><value>26</value></FM><Flat>x</Flat><Flat>y</Flat><I>3</I>'
    .. '<M><entry><K>a</K><value>1</value></entry><entry><K>b</K><value>2</value></entry></M>'
    .. '<T>2015-01-25T08:00:00.500Z</T><Te>1422172800</Te></InReq>')
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k", F = 1.1 }).body, '<InReq xmlns="https://ns/"><F>1.1</F></InReq>')
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k", F = math.huge }).body, '<InReq xmlns="https://ns/"><F>Infinity</F></InReq>')
  -- members with a location never go into the body; nothing for the body → no body
  lu.assertEquals(proto.serialize(m, "Op", { Key = "k" }).body, "")
end

function TestRestXml.test_query_maps_lists_and_precedence()
  local m = tiny({
    Named = { shape = "S", location = "querystring", locationName = "a" },
    Map = { shape = "ML", location = "querystring" },
    List = { shape = "TL", location = "querystring", locationName = "t" },
    Bool = { shape = "Bool", location = "querystring", locationName = "b" },
  }, {
    S = { type = "string" }, Bool = { type = "boolean" }, Ts = { type = "timestamp" },
    SL = { type = "list", member = { shape = "S" } }, TL = { type = "list", member = { shape = "Ts" } },
    ML = { type = "map", key = { shape = "S" }, value = { shape = "SL" } },
  }, { method = "GET", requestUri = "/q" })
  local req = proto.serialize(m, "Op", { Named = "named", Map = { a = { "from-map" }, c = { "1", "2" } },
                                         List = { 0, 1.5 }, Bool = true })
  lu.assertEquals(parts(req.query), parts("a=named&c=1&c=2&t=1970-01-01T00%3A00%3A00Z&t=1970-01-01T00%3A00%3A01.500Z&b=true"))
end

function TestRestXml.test_deep_values_fail_cleanly()
  local m = tiny({ R = { shape = "R" } }, {
    R = { type = "structure", members = { R = { shape = "R" } } },
  }, { method = "POST", requestUri = "/" })
  local v = {}
  local top = v
  for _ = 1, 1000 do v.R = {}; v = v.R end
  local ok, e = pcall(proto.serialize, m, "Op", { R = top })
  lu.assertFalse(ok)
  lu.assertStrContains(tostring(e), "nested too deeply")
  -- and a reasonable depth works
  lu.assertStrContains(proto.serialize(m, "Op", { R = { R = { R = {} } } }).body, "<R><R><R></R></R></R>")
end

os.exit(lu.LuaUnit.run())
