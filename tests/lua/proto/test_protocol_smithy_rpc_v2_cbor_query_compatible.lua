-- AWS's protocol compliance tests of smithy-rpc-v2-cbor-query-compatible (input and output), minus the cases
-- botocore's own ignore list skips (its "smithy-rpc-v2-cbor" entry).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
require("support.protocol_suite").run("smithy-rpc-v2-cbor-query-compatible", "smithy-rpc-v2-cbor")
