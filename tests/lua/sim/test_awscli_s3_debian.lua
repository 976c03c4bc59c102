-- S3 of the served simulator through Debian's AWS CLI (/usr/bin/aws, 2.9): the scenario of
-- support/awscli_s3.lua.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
require("support.awscli_s3").main("debian")
