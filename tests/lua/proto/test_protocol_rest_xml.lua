-- AWS's protocol compliance tests for the rest-xml protocol (current and legacy suites,
-- input and output), minus the cases botocore's own ignore list skips.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local suite = require "support.protocol_suite"

TestProtocol = {}
local total = 0
for _, file in ipairs{ "input/rest-xml.json", "output/rest-xml.json", "legacy/input/rest-xml.json",
                       "legacy/output/rest-xml.json" } do
  local f = io.open(suite.root .. "/" .. file)
  if f then
    f:close()
    total = total + suite.define(TestProtocol, file, "rest-xml")
  end
end
assert(total > 0, "no protocol test cases found under " .. suite.root)

os.exit(lu.LuaUnit.run())
