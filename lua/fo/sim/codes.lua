-- The error codes the simulator itself answers with (not a handler's), per service, as
-- AWS answers them: throttling, transient 5xx, validation, unknown operation, and the
-- authentication failures. Data only, so one table says what each service does.
local M = {}

-- Protocol of each service: its model's metadata.protocol, the one tools/gen_models.py
-- chose (CloudWatch's model offers several; fo speaks query). nil for a service without one.
M.PROTOCOL = setmetatable({}, { __index = function(t, service)
  local ok, model = pcall(require("fo.aws.models").load, service)
  local protocol = ok and model.metadata.protocol or nil
  rawset(t, service, protocol)
  return protocol
end })

-- Throttling: EC2 answers 503 RequestLimitExceeded, S3 503 SlowDown; the query services and
-- Route 53 400 Throttling "Rate exceeded"; the JSON services 400 ThrottlingException.
M.THROTTLE = {
  ec2 = { code = "RequestLimitExceeded", status = 503, message = "Request limit exceeded." },
  query = { code = "Throttling", status = 400, message = "Rate exceeded" },
  ["rest-xml"] = { code = "Throttling", status = 400, message = "Rate exceeded" },
  json = { code = "ThrottlingException", status = 400, message = "Rate exceeded" },
  -- S3 slows a client down with 503 SlowDown, never a 400: a HEAD answer has no body,
  -- so its status is all a client sees, and 400 would not be retried.
  s3 = { code = "SlowDown", status = 503, message = "Please reduce your request rate." },
}

-- Transient server errors, drawn 500 or 503 with equal odds.
M.SERVER = {
  ec2 = { { code = "InternalError", status = 500,
            message = "An internal error has occurred" },
          { code = "Unavailable", status = 503,
            message = "The server is overloaded and can't handle the request." } },
  query = { { code = "InternalFailure", status = 500,
              message = "The request processing has failed because of an unknown error, exception or failure." },
            { code = "ServiceUnavailable", status = 503,
              message = "The request has failed due to a temporary failure of the server." } },
  json = { { code = "InternalServerError", status = 500, message = "Internal server error" },
           { code = "ServiceUnavailable", status = 503, message = "Service Unavailable" } },
}
M.SERVER["rest-xml"] = M.SERVER.query
M.SERVER.s3 = { { code = "InternalError", status = 500,
                  message = "We encountered an internal error. Please try again." },
                { code = "ServiceUnavailable", status = 503,
                  message = "Reduce your request rate." } }

-- Input that breaks the model (what AWS's server-side validation answers).
M.VALIDATION = {
  ec2 = "InvalidParameterValue", query = "ValidationError", json = "ValidationException",
  ["rest-xml"] = "InvalidInput",
}
-- S3 has no InvalidInput: its generic answer to a bad value is InvalidArgument.
M.VALIDATION_BY_SERVICE = { sns = "InvalidParameter", logs = "InvalidParameterException",
  s3 = "InvalidArgument" }
-- EC2 names a missing required parameter separately.
M.EC2_MISSING = "MissingParameter"

-- An operation of the model that the simulator has no handler for.
M.UNKNOWN_OPERATION = {
  ec2 = "InvalidAction", query = "InvalidAction", json = "UnknownOperationException",
  ["rest-xml"] = "InvalidAction",
}

-- Authentication. Unknown access key: query services InvalidClientTokenId 403, EC2
-- AuthFailure 401, JSON services UnrecognizedClientException 400, Route 53
-- InvalidClientTokenId 403. Missing Authorization: MissingAuthenticationToken 403 (EC2:
-- AuthFailure 401; JSON: MissingAuthenticationTokenException 400).
M.UNKNOWN_KEY = {
  ec2 = { code = "AuthFailure", status = 401,
          message = "AWS was not able to validate the provided access credentials" },
  query = { code = "InvalidClientTokenId", status = 403,
            message = "The security token included in the request is invalid." },
  ["rest-xml"] = { code = "InvalidClientTokenId", status = 403,
                   message = "The security token included in the request is invalid." },
  json = { code = "UnrecognizedClientException", status = 400,
           message = "The security token included in the request is invalid." },
}
M.MISSING_AUTH = {
  ec2 = { code = "AuthFailure", status = 401,
          message = "AWS was not able to validate the provided access credentials" },
  query = { code = "MissingAuthenticationToken", status = 403,
            message = "Request is missing Authentication Token" },
  ["rest-xml"] = { code = "MissingAuthenticationToken", status = 403,
                   message = "Request is missing Authentication Token" },
  json = { code = "MissingAuthenticationTokenException", status = 400,
           message = "Request is missing Authentication Token" },
}
-- A signature that does not match: 403 SignatureDoesNotMatch (EC2 too, in its own error
-- document; the JSON services give 400 InvalidSignatureException).
M.BAD_SIGNATURE = {
  ec2 = { code = "SignatureDoesNotMatch", status = 403 },
  query = { code = "SignatureDoesNotMatch", status = 403 },
  ["rest-xml"] = { code = "SignatureDoesNotMatch", status = 403 },
  json = { code = "InvalidSignatureException", status = 400 },
}
-- Request time more than 15 minutes off the server's clock.
M.SKEW = {
  ec2 = { code = "RequestExpired", status = 400 },
  query = { code = "SignatureDoesNotMatch", status = 403 },
  ["rest-xml"] = { code = "SignatureDoesNotMatch", status = 403 },
  json = { code = "InvalidSignatureException", status = 400 },
}

-- A temporary key (STS, SSO) used after its expiration: the query services and Route 53 403
-- ExpiredToken, the JSON services 400 ExpiredTokenException, EC2 400 RequestExpired (the
-- three codes the SDKs refresh credentials on).
M.EXPIRED_TOKEN = {
  ec2 = { code = "RequestExpired", status = 400, message = "Request has expired." },
  query = { code = "ExpiredToken", status = 403,
            message = "The security token included in the request is expired" },
  ["rest-xml"] = { code = "ExpiredToken", status = 403,
                   message = "The security token included in the request is expired" },
  json = { code = "ExpiredTokenException", status = 400,
           message = "The security token included in the request is expired" },
}

-- A request body over the service's cap (fo.sim.limits). AWS documents the limits, not the
-- answer to a body over them; its front ends answer HTTP 413 Request Entity Too Large, here
-- in the protocol's error document (JSON services: the ...Exception form of the code).
M.TOO_LARGE = {
  ec2 = { code = "RequestEntityTooLarge", status = 413 },
  query = { code = "RequestEntityTooLarge", status = 413 },
  ["rest-xml"] = { code = "RequestEntityTooLarge", status = 413 },
  json = { code = "RequestEntityTooLargeException", status = 413 },
}

-- SigV4 requests must sign the Host header: AWS refuses a SignedHeaders without it, with
-- the protocol's bad-signature code (BAD_SIGNATURE) and this message.
M.HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."

--- The entry of table t for `service` (by service, then by protocol).
function M.for_service(t, service)
  return t[service] or t[M.PROTOCOL[service]]
end

return M
