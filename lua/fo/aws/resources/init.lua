-- Every AWS resource type of recipes (docs/aws-types.md): `require "fo.aws.resources"`
-- registers them all. One line per area module.
require "fo.aws.resources.ec2_network"
require "fo.aws.resources.ec2_nat"
require "fo.aws.resources.ec2_launch"
require "fo.aws.resources.ssm"
require "fo.aws.resources.kms"
require "fo.aws.resources.logs"
require "fo.aws.resources.route53"
require "fo.aws.resources.acm"
require "fo.aws.resources.sns"
require "fo.aws.resources.cloudwatch"
require "fo.aws.resources.dynamodb"
require "fo.aws.resources.iam"
require "fo.aws.resources.elbv2"
require "fo.aws.resources.autoscaling"
require "fo.aws.resources.s3"
require "fo.aws.resources.import_ids" -- the id each type's import takes

return true
