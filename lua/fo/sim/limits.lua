-- Data: the largest request body the simulator reads, per service, from AWS's documented
-- limits (a body over it is refused with 413 before it is read: fo.sim.wire, fo.httpd's
-- max_body). The caps are on the bytes on the wire, so they leave room for the encoding of
-- the largest request AWS accepts (form-encoding can triple a value; JSON and XML escape).
local KiB, MiB = 1024, 1024 * 1024

local M = {}

-- Services not named below, and requests that name no service.
M.DEFAULT_BODY = 1 * MiB

M.BODY = {
  -- BatchWriteItem "can transmit up to 16MB of data over the network" (items 400 KB each).
  dynamodb = 16 * MiB,
  -- Publish: a message of up to 256 KiB (PublishBatch: 256 KiB in all), form-encoded.
  sns = 1 * MiB,
  -- PutMetricData: 1 MB per HTTP POST request.
  cloudwatch = 1 * MiB,
  -- ChangeResourceRecordSets: at most 1,000 ResourceRecord elements and 32,000 characters
  -- of values (XML-escaped) in at most 100 changes.
  route53 = 512 * KiB,
  -- Policy documents (IAM: 6,144 characters managed, 10,240 inline per role; STS session
  -- policies 2,048), EC2 user data (16 KB), SSM parameters (8 KB): all far below.
  iam = 1 * MiB, sts = 1 * MiB, ec2 = 1 * MiB, ssm = 1 * MiB, elbv2 = 1 * MiB,
  autoscaling = 1 * MiB,
  -- PutLogEvents: 1,048,576 bytes of events (messages + 26 each), up to 10,000 of them,
  -- JSON-escaped and each with its member names.
  logs = 4 * MiB,
}

--- The body cap of `service` (nil: a request that names none) in bytes.
function M.body(service)
  return service and M.BODY[service] or M.DEFAULT_BODY
end

return M
