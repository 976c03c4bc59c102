-- AWS's protocol compliance tests of json_1_0-query-compatible (input and output), minus the cases
-- botocore's own ignore list skips (its "json_1_0" entry).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
require("support.protocol_suite").run("json_1_0-query-compatible", "json_1_0")
