-- AWS's protocol compliance tests for the query protocol (current and legacy suites,
-- input and output), minus the cases botocore's own ignore list skips.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local suite = require "support.protocol_suite"

TestProtocol = {}
local total = 0
for _, file in ipairs{ "input/query.json", "output/query.json", "legacy/input/query.json",
                       "legacy/output/query.json" } do
  local f = io.open(suite.root .. "/" .. file)
  if f then
    f:close()
    total = total + suite.define(TestProtocol, file, "query")
  end
end
assert(total > 0, "no protocol test cases found under " .. suite.root)

os.exit(lu.LuaUnit.run())
