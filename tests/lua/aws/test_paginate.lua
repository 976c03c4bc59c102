-- client:paginate and client:items against loopback servers that check every page's
-- token: NextToken chains, a caller's starting token, more_results (IAM's IsTruncated),
-- several tokens in step (Route 53 record sets), map tokens (DynamoDB), and a service
-- that hands out a token again (a loop: an error, after the page that carried it).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local codec_mod = require "support.fake_codec"

local function client(service, s, extra)
  return aws[service](codec_mod.client_options(codec_mod.new(), s, extra))
end

local function collect(iter)
  local out = {}
  for x in iter do out[#out + 1] = x end
  return out
end

-- A DescribeVpcs server over `chain`: the page for token t is chain[t] = {ids, next}.
-- A request with any other token is answered with an error the test would see.
local function vpc_server(chain)
  return codec_mod.server{ DescribeVpcs = function(params)
    local page = chain[params.NextToken or "start"]
    if not page then
      return codec_mod.error(400, "InvalidNextToken", "unexpected token " .. tostring(params.NextToken))
    end
    local vpcs = {}
    for i, id in ipairs(page[1]) do vpcs[i] = { VpcId = id } end
    return codec_mod.ok{ Vpcs = vpcs, NextToken = page[2] }
  end }
end

TestPages = {}

function TestPages.test_three_pages_follow_the_tokens_and_keep_the_params()
  local s = vpc_server{ start = { { "vpc-1", "vpc-2" }, "t2" }, t2 = { { "vpc-3" }, "t3" },
                        t3 = { { "vpc-4" } } }
  local ec2 = client("ec2", s)
  local filters = { { Name = "tag:stack", Values = { "trading" } } }
  local pages = collect(ec2:paginate("DescribeVpcs", { Filters = filters }, { page_size = 5 }))
  s.close()
  lu.assertEquals(#pages, 3)
  lu.assertEquals(pages[1].Vpcs, { { VpcId = "vpc-1" }, { VpcId = "vpc-2" } })
  lu.assertEquals(pages[3].Vpcs, { { VpcId = "vpc-4" } })
  lu.assertEquals(s.params, {
    { Filters = filters, MaxResults = 5 },
    { Filters = filters, MaxResults = 5, NextToken = "t2" },
    { Filters = filters, MaxResults = 5, NextToken = "t3" },
  })
end

function TestPages.test_an_empty_token_ends_and_a_starting_token_is_sent()
  local s = vpc_server{ t2 = { { "vpc-3" }, "" } }
  local ec2 = client("ec2", s)
  local pages = collect(ec2:paginate("DescribeVpcs", { NextToken = "t2" }))
  s.close()
  lu.assertEquals(#pages, 1)
  lu.assertEquals(s.params, { { NextToken = "t2" } })
end

function TestPages.test_a_repeated_token_is_an_error_after_its_page()
  local s = vpc_server{ start = { { "vpc-1" }, "t2" }, t2 = { { "vpc-2" }, "t2" } }
  local ec2 = client("ec2", s)
  local iter = ec2:paginate("DescribeVpcs", {})
  lu.assertEquals(iter().Vpcs[1].VpcId, "vpc-1")
  lu.assertEquals(iter().Vpcs[1].VpcId, "vpc-2")
  local ok, err = pcall(iter)
  s.close()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "ec2.DescribeVpcs: the service returned a pagination token it had "
    .. "already given (NextToken)")
  lu.assertEquals(#s.requests, 2, "the looping token is never sent again")
  lu.assertNil(iter(), "the iterator stays finished")
end

function TestPages.test_a_longer_token_cycle_is_caught_too()
  local s = vpc_server{ start = { { "a" }, "t2" }, t2 = { { "b" }, "t3" }, t3 = { { "c" }, "t2" } }
  local ec2 = client("ec2", s)
  local seen = {}
  local ok, err = pcall(function()
    for page in ec2:paginate("DescribeVpcs") do seen[#seen + 1] = page.Vpcs[1].VpcId end
  end)
  s.close()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "already given")
  lu.assertEquals(seen, { "a", "b", "c" })
end

function TestPages.test_more_results_false_stops_even_with_a_marker()
  local s = codec_mod.server{ ListRoles = function(params, _, n)
    if n == 1 then
      lu.assertNil(params.Marker)
      return codec_mod.ok{ Roles = { { RoleName = "a" } }, IsTruncated = true, Marker = "m2" }
    end
    lu.assertEquals(params.Marker, "m2")
    return codec_mod.ok{ Roles = { { RoleName = "b" } }, IsTruncated = false, Marker = "m3" }
  end }
  local iam = client("iam", s)
  local names = {}
  for role in iam:items("ListRoles", {}, { page_size = 1 }) do names[#names + 1] = role.RoleName end
  s.close()
  lu.assertEquals(names, { "a", "b" })
  lu.assertEquals(#s.requests, 2)
  lu.assertEquals(s.params[1].MaxItems, 1)
end

function TestPages.test_several_tokens_move_in_step_and_an_absent_one_is_not_sent()
  local s = codec_mod.server{ ListResourceRecordSets = function(params, _, n)
    if n == 1 then
      return codec_mod.ok{ ResourceRecordSets = { { Name = "a." } }, IsTruncated = true,
        NextRecordName = "b.", NextRecordType = "A", NextRecordIdentifier = "primary" }
    elseif n == 2 then
      return codec_mod.ok{ ResourceRecordSets = { { Name = "b." } }, IsTruncated = true,
        NextRecordName = "c.", NextRecordType = "CNAME" }
    end
    return codec_mod.ok{ ResourceRecordSets = { { Name = "c." } }, IsTruncated = false }
  end }
  local r53 = client("route53", s)
  local names = {}
  for rr in r53:items("ListResourceRecordSets", { HostedZoneId = "Z1" }) do names[#names + 1] = rr.Name end
  s.close()
  lu.assertEquals(names, { "a.", "b.", "c." })
  lu.assertEquals(s.params, {
    { HostedZoneId = "Z1" },
    { HostedZoneId = "Z1", StartRecordName = "b.", StartRecordType = "A", StartRecordIdentifier = "primary" },
    { HostedZoneId = "Z1", StartRecordName = "c.", StartRecordType = "CNAME" },
  })
end

function TestPages.test_map_tokens_are_passed_back_whole()
  local key = { pk = { S = "item-7" } }
  local s = codec_mod.server{ Scan = function(params, _, n)
    if n == 1 then return codec_mod.ok{ Items = { { pk = { S = "item-1" } } }, Count = 1, LastEvaluatedKey = key } end
    lu.assertEquals(params.ExclusiveStartKey, key)
    return codec_mod.ok{ Items = { { pk = { S = "item-8" } } }, Count = 1 }
  end }
  local ddb = client("dynamodb", s)
  local items = collect(ddb:items("Scan", { TableName = "orders" }))
  s.close()
  lu.assertEquals(items, { { pk = { S = "item-1" } }, { pk = { S = "item-8" } } })
  lu.assertEquals(#s.requests, 2)
end

function TestPages.test_items_of_another_result_key()
  local s = codec_mod.server{ DescribeAlarms = function()
    return codec_mod.ok{ MetricAlarms = { { AlarmName = "m" } }, CompositeAlarms = { { AlarmName = "c" } } }
  end }
  local cw = client("cloudwatch", s)
  lu.assertEquals(collect(cw:items("DescribeAlarms")), { { AlarmName = "m" } })
  lu.assertEquals(collect(cw:items("DescribeAlarms", {}, { result_key = "CompositeAlarms" })),
    { { AlarmName = "c" } })
  s.close()
end

function TestPages.test_an_aws_error_on_a_later_page_reaches_the_loop()
  local s = vpc_server{ start = { { "vpc-1" }, "bad" } }
  local ec2 = client("ec2", s)
  local pages = 0
  local ok, err = pcall(function()
    for _ in ec2:paginate("DescribeVpcs") do pages = pages + 1 end
  end)
  s.close()
  lu.assertFalse(ok)
  lu.assertTrue(aws.Error.is(err, "InvalidNextToken"))
  lu.assertEquals(pages, 1)
end

function TestPages.test_page_size_takes_the_limit_members_type()
  -- Route 53's MaxItems is a string in the model: page_size = 2 must be sent as "2".
  local sim = require("fo.sim").new{ seed = 3 }
  local r53 = sim:client("route53")
  for i = 1, 3 do
    r53:CreateHealthCheck{ CallerReference = "page-" .. i, HealthCheckConfig = {
      Type = "HTTP", FullyQualifiedDomainName = "a" .. i .. ".example.com", Port = 80,
      RequestInterval = 30, FailureThreshold = 3 } }
  end
  local sizes = {}
  for page in r53:paginate("ListHealthChecks", {}, { page_size = 2 }) do
    sizes[#sizes + 1] = #page.HealthChecks
  end
  lu.assertEquals(sizes, { 2, 1 })
end

TestMistakes = {}

local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  lu.assertFalse(ok)
  return err
end

function TestMistakes.test_operations_without_paginator_or_page_size_are_clear_errors()
  local ec2 = aws.ec2{ region = "eu-south-1" }
  lu.assertStrContains(error_of(ec2.paginate, ec2, "CreateVpc", {}), "ec2.CreateVpc does not paginate")
  lu.assertStrContains(error_of(ec2.paginate, ec2, "DescribeVpc", {}),
    "ec2 has no operation 'DescribeVpc' (did you mean 'DescribeVpcs'?)")
  local r53 = aws.route53{ region = "eu-south-1" }
  lu.assertStrContains(error_of(r53.paginate, r53, "ListVPCAssociationAuthorizations",
    { HostedZoneId = "Z1" }, { page_size = 5 }), "has no page size parameter")
end

os.exit(lu.LuaUnit.run())
