-- S3 of the served simulator through the current AWS CLI (the `aws` on PATH, or
-- FO_AWS_CLI_CURRENT): the scenario of support/awscli_s3.lua.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
require("support.awscli_s3").main("current")
