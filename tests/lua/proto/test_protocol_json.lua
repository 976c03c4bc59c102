-- AWS's protocol compliance tests for the json protocol (current and legacy suites,
-- input and output), minus the cases botocore's own ignore list skips.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
require("support.protocol_suite").run("json")
