-- fo.aws: the AWS core — the call function, credentials, regions, endpoints, retries and
-- the structured error. Service modules are built on aws.call.
return {
  call = require "fo.aws.call",
  credentials = require "fo.aws.credentials",
  region = require "fo.aws.region",
  endpoints = require "fo.aws.endpoints",
  retry = require "fo.aws.retry",
  Error = require "fo.aws.error",
}
