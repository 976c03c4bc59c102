-- fo.xml: documents to trees (elements, attributes, merged text, CDATA), errors with
-- line:col, refusal of DTDs and of excessive nesting, and escaping that round-trips.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local xml = fo.xml

function test_decode_builds_a_tree_of_elements_attributes_and_text()
  local doc = xml.decode([==[<?xml version="1.0" encoding="UTF-8"?>
<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId><vpcSet><item><vpcId>vpc-1</vpcId></item><item><vpcId>vpc-2</vpcId></item></vpcSet><x:Note xmlns:x="urn:x" a="1">a &amp; b<![CDATA[ <raw> ]]>c</x:Note></DescribeVpcsResponse>]==])
  lu.assertEquals(doc.name, "DescribeVpcsResponse")
  lu.assertEquals(doc.attr.xmlns, "http://ec2.amazonaws.com/doc/2016-11-15/")
  lu.assertEquals(doc[1].name, "requestId")
  lu.assertEquals(doc[1][1], "r-1")
  lu.assertEquals(#doc[2], 2)
  lu.assertEquals(doc[2][2][1][1], "vpc-2")
  lu.assertEquals(doc[3].name, "Note") -- namespace prefix stripped
  lu.assertEquals(doc[3].attr.a, "1")
  lu.assertEquals(doc[3][1], "a & b <raw> c") -- one text run, however expat split it
end

function test_malformed_documents_return_nil_and_position()
  local v, err = xml.decode("<a>\n<b></a>")
  lu.assertNil(v)
  lu.assertStrMatches(err, "2:%d+: mismatched tag")
  v, err = xml.decode("")
  lu.assertNil(v)
  v, err = xml.decode("<a></a><b/>")
  lu.assertNil(v)
  lu.assertStrContains(err, "junk after document element")
end

function test_dtds_are_refused()
  local v, err = xml.decode('<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')
  lu.assertNil(v)
  lu.assertStrContains(err, "DTDs are not allowed")
end

function test_nesting_is_bounded()
  local deep = string.rep("<a>", 300) .. string.rep("</a>", 300)
  local v, err = xml.decode(deep)
  lu.assertNil(v)
  lu.assertStrContains(err, "nested too deeply")
  lu.assertNotNil(xml.decode(deep, 400))
end

function test_escape_round_trips_through_decode()
  local s = "a<b>&\"c'\r\n\td"
  local doc = xml.decode("<v>" .. xml.escape(s) .. "</v>")
  lu.assertEquals(doc[1], s)
end

os.exit(lu.LuaUnit.run())
