-- Service clients with the real codec (fo.awsproto) against loopback servers that speak
-- each protocol's wire format: query (STS, IAM), ec2, json 1.0 (DynamoDB) and rest-xml
-- (Route 53). The servers check what arrives (form fields, X-Amz-Target, URI and query
-- string) and answer AWS-shaped documents; pagination and waiters run end to end.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local fake = require "support.fake_aws"
local cjson = require "cjson"

local function options(s, extra)
  return fake.merge({
    region = "eu-south-1", endpoint = s.url,
    env = fake.env{ AWS_ACCESS_KEY_ID = "AKIDTEST", AWS_SECRET_ACCESS_KEY = "secret/TEST",
                    AWS_EC2_METADATA_DISABLED = "true", HOME = "/nonexistent" },
    sleep = function() end, random = function() return 0 end,
  }, extra)
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "a=b&c=d" → {a="b", c="d"} (percent-decoded).
local function form(body)
  local t = {}
  for pair in (body or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[unescape(k)] = unescape(v)
  end
  return t
end

local function xml(status, body)
  return { status = status, headers = { ["Content-Type"] = "text/xml" }, body = body }
end

local function json(status, doc)
  return { status = status, headers = { ["Content-Type"] = "application/x-amz-json-1.0",
    ["x-amzn-RequestId"] = "ddb-req" }, body = type(doc) == "string" and doc or cjson.encode(doc) }
end

TestQuery = {}

function TestQuery.test_sts_get_caller_identity()
  local s = fake.scripted{ function(req)
    local f = form(req.body)
    if f.Action ~= "GetCallerIdentity" or f.Version ~= "2011-06-15" then
      return xml(400, fake.xml_error("BadRequest", req.body))
    end
    return xml(200, [[<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn>
    <UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>
  <ResponseMetadata><RequestId>sts-req-1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>]])
  end }
  local sts = aws.sts(options(s))
  local out = sts:GetCallerIdentity()
  s.close()
  lu.assertEquals(out, { Arn = "arn:aws:iam::123456789012:user/alice", UserId = "AIDAEXAMPLE",
                         Account = "123456789012" })
  lu.assertStrContains(s.requests[1].headers["content-type"], "application/x-www-form-urlencoded")
end

function TestQuery.test_iam_role_exists_waiter_with_a_404_then_the_role()
  local s = fake.scripted{
    xml(404, [[<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>
<Code>NoSuchEntity</Code><Message>The role with name app cannot be found.</Message></Error>
<RequestId>iam-req-1</RequestId></ErrorResponse>]]),
    xml(200, [[<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role>
<Path>/</Path><RoleName>app</RoleName><RoleId>AROAEXAMPLE</RoleId><Arn>arn:aws:iam::123456789012:role/app</Arn>
<CreateDate>2024-01-02T03:04:05Z</CreateDate><AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument>
</Role></GetRoleResult><ResponseMetadata><RequestId>iam-req-2</RequestId></ResponseMetadata></GetRoleResponse>]]),
  }
  local iam = aws.iam(options(s))
  local out, attempts = iam:wait("RoleExists", { RoleName = "app" }, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 2)
  lu.assertEquals(out.Role.RoleName, "app")
  lu.assertEquals(out.Role.CreateDate, 1704164645)
  lu.assertEquals(form(s.requests[2].body).RoleName, "app")
end

TestEc2 = {}

function TestEc2.test_validation_error_names_operation_and_member_and_nothing_is_sent()
  local s = fake.scripted{ xml(200, "<x/>") }
  local ec2 = aws.ec2(options(s))
  local ok, err = pcall(ec2.CreateSubnet, ec2, { VpcId = "vpc-1", CidrBlock = 5 })
  s.close()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "ec2.CreateSubnet: CidrBlock: expected string, got number")
  lu.assertEquals(#s.requests, 0)
end

function TestEc2.test_describe_vpcs_paginates_with_filters_on_every_page()
  local pages = {
    start = { "vpc-1", "t2" }, t2 = { "vpc-2", "t3" }, t3 = { "vpc-3" },
  }
  local s = fake.scripted{ function(req)
    local f = form(req.body)
    local page = pages[f.NextToken or "start"]
    if f.Action ~= "DescribeVpcs" or f["Filter.1.Name"] ~= "tag:stack"
        or f["Filter.1.Value.1"] ~= "trading" or not page then
      return xml(400, fake.xml_error("InvalidParameterValue", req.body))
    end
    return xml(200, ([[<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>ec2-req</requestId><vpcSet><item><vpcId>%s</vpcId><state>available</state>
<cidrBlock>10.0.0.0/16</cidrBlock><isDefault>false</isDefault></item></vpcSet>%s</DescribeVpcsResponse>]])
      :format(page[1], page[2] and ("<nextToken>%s</nextToken>"):format(page[2]) or ""))
  end }
  local ec2 = aws.ec2(options(s))
  local ids = {}
  for vpc in ec2:items("DescribeVpcs", { Filters = { { Name = "tag:stack", Values = { "trading" } } } }) do
    ids[#ids + 1] = vpc.VpcId
    lu.assertEquals(vpc.IsDefault, false)
    lu.assertEquals(vpc.State, "available")
  end
  s.close()
  lu.assertEquals(ids, { "vpc-1", "vpc-2", "vpc-3" })
  lu.assertEquals(form(s.requests[3].body).NextToken, "t3")
end

function TestEc2.test_error_document_becomes_a_structured_error()
  local s = fake.scripted{ xml(400, [[<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>DependencyViolation</Code><Message>The vpc 'vpc-1' has dependencies and cannot be deleted.</Message></Error></Errors><RequestID>ec2-err-1</RequestID></Response>]]) }
  local ec2 = aws.ec2(options(s))
  local ok, err = pcall(ec2.DeleteVpc, ec2, { VpcId = "vpc-1" })
  s.close()
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(err, "DependencyViolation"))
  lu.assertEquals(err.status, 400)
  lu.assertEquals(err.request_id, "ec2-err-1")
  lu.assertEquals(err.message, "The vpc 'vpc-1' has dependencies and cannot be deleted.")
  lu.assertFalse(err.retryable)
end

TestJson = {}

function TestJson.test_dynamodb_table_exists_waiter()
  local s = fake.scripted{
    json(400, '{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found: Table: orders not found"}'),
    json(200, { Table = { TableName = "orders", TableStatus = "CREATING", CreationDateTime = 1704164645.5 } }),
    json(200, { Table = { TableName = "orders", TableStatus = "ACTIVE", CreationDateTime = 1704164645.5 } }),
  }
  local ddb = aws.dynamodb(options(s))
  local out, attempts = ddb:wait("TableExists", { TableName = "orders" }, { delay = 0 })
  s.close()
  lu.assertEquals(attempts, 3)
  lu.assertEquals(out.Table.TableStatus, "ACTIVE")
  lu.assertEquals(out.Table.CreationDateTime, 1704164645.5)
  for _, req in ipairs(s.requests) do
    lu.assertEquals(req.headers["x-amz-target"], "DynamoDB_20120810.DescribeTable")
    lu.assertEquals(cjson.decode(req.body), { TableName = "orders" })
  end
end

function TestJson.test_dynamodb_error_code_and_message()
  local s = fake.scripted{ json(400, '{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}') }
  local ddb = aws.dynamodb(options(s))
  local ok, err = pcall(ddb.PutItem, ddb, { TableName = "orders", Item = { pk = { S = "1" } },
    ConditionExpression = "attribute_not_exists(pk)" })
  s.close()
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(err, "ConditionalCheckFailedException"))
  lu.assertEquals(err.message, "The conditional request failed")
  lu.assertEquals(err.request_id, "ddb-req")
end

TestRestXml = {}

function TestRestXml.test_route53_record_sets_paginate_with_three_tokens_in_the_query()
  local s = fake.scripted{ function(req, n)
    lu.assertEquals(req.method, "GET")
    lu.assertEquals(req.path, "/2013-04-01/hostedzone/Z1/rrset")
    local q = form(req.query)
    local body
    if n == 1 and q.name == nil then
      body = "<IsTruncated>true</IsTruncated><NextRecordName>b.example.com.</NextRecordName>"
        .. "<NextRecordType>A</NextRecordType><NextRecordIdentifier>primary</NextRecordIdentifier>"
    elseif n == 2 and q.name == "b.example.com." and q.type == "A" and q.identifier == "primary" then
      body = "<IsTruncated>false</IsTruncated>"
    else
      return xml(400, "<ErrorResponse><Error><Code>InvalidInput</Code><Message>" .. req.query
        .. "</Message></Error></ErrorResponse>")
    end
    return xml(200, ([[<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
<ResourceRecordSets><ResourceRecordSet><Name>r%d.example.com.</Name><Type>A</Type><TTL>60</TTL>
<ResourceRecords><ResourceRecord><Value>192.0.2.%d</Value></ResourceRecord></ResourceRecords>
</ResourceRecordSet></ResourceRecordSets>%s<MaxItems>1</MaxItems></ListResourceRecordSetsResponse>]])
      :format(n, n, body))
  end }
  local r53 = aws.route53(options(s))
  local sets = {}
  for rr in r53:items("ListResourceRecordSets", { HostedZoneId = "Z1" }) do sets[#sets + 1] = rr end
  s.close()
  lu.assertEquals(#sets, 2)
  lu.assertEquals(sets[1], { Name = "r1.example.com.", Type = "A", TTL = 60,
                             ResourceRecords = { { Value = "192.0.2.1" } } })
  lu.assertEquals(sets[2].Name, "r2.example.com.")
end

os.exit(lu.LuaUnit.run())
