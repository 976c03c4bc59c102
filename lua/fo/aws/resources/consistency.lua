-- AWS's eventual consistency, as data: the situations where a call that failed is expected
-- to succeed if repeated a little later, with the codes that signal them and how long to
-- keep trying. One table, so that every resource type retries the same way and the bounds
-- are reviewed in one place (NotFound right after create, IAM instance profiles not yet
-- usable, DependencyViolation while a deleted load balancer's ENIs detach).
--
-- Each entry: codes (AWS error codes), message (optional Lua pattern the message must
-- match too), seconds (give up after), delay (first wait; doubles up to max_delay; on AWS
-- the waiters' notice schedule replaces it, at most max_delay apart: common.retry).
return {
  -- A Describe/Modify right after the create answers NotFound for a while.
  not_found_after_create = {
    codes = {
      "InvalidVpcID.NotFound", "InvalidSubnetID.NotFound", "InvalidGroup.NotFound",
      "InvalidRouteTableID.NotFound", "InvalidInternetGatewayID.NotFound",
      "InvalidGatewayID.NotFound", -- CreateRoute to a gateway created a moment ago
      "InvalidVpcEndpointId.NotFound", "InvalidLaunchTemplateId.NotFound",
      "InvalidLaunchTemplateName.NotFoundException", "InvalidAllocationID.NotFound",
      "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound",
      "NoSuchEntity", "ResourceNotFoundException", "NotFound", "NoSuchHostedZone",
      "NoSuchHealthCheck",
      "NotFoundException", -- KMS: a key or alias read right after its create
      "InvalidFlowLogId.NotFound",
      -- ELBv2's CreateLoadBalancer naming a subnet or security group created a moment
      -- ago (fo does not describe what a create answered usable)
      "SubnetNotFound", "InvalidSecurityGroup",
    },
    seconds = 120, delay = 1, max_delay = 8,
  },
  -- A new IAM instance profile is not usable by EC2 / Auto Scaling for up to ~2 minutes:
  -- "Invalid IAM Instance Profile name" (InvalidParameterValue / ValidationError).
  instance_profile = {
    codes = { "InvalidParameterValue", "ValidationError", "InvalidParameterCombination" },
    message = "[Ii]nstance [Pp]rofile",
    seconds = 180, delay = 2, max_delay = 10,
  },
  -- Auto Scaling does not see a launch template EC2 created a moment ago: CreateAutoScalingGroup
  -- / UpdateAutoScalingGroup answer ValidationError "You must use a valid fully-formed
  -- launch template. The specified launch template, with template ID lt-..., does not
  -- exist." (or "with template name ...").
  launch_template_not_visible = {
    codes = { "ValidationError" },
    message = "The specified launch template, with template [IDnam]+ .- does not exist",
    seconds = 120, delay = 1, max_delay = 8,
  },
  -- A new IAM role is not yet assumable / visible to other services.
  iam_propagation = {
    codes = { "InvalidParameterValue", "ValidationError", "MalformedPolicyDocument",
              "InvalidInput" },
    message = "[Rr]ole",
    seconds = 120, delay = 2, max_delay = 10,
  },
  -- CreateFlowLogs naming a role IAM made a moment ago: InvalidParameter "Unable to assume
  -- given IAM role: '<arn>'". Only that message: other InvalidParameter answers of
  -- CreateFlowLogs (a bad ARN, a bad interval) are the recipe's and fail at once.
  flow_log_role = {
    codes = { "InvalidParameter" },
    message = "Unable to assume given IAM role",
    seconds = 120, delay = 2, max_delay = 10,
  },
  -- Deleting a VPC, subnet, security group or internet gateway while ENIs of a deleted
  -- load balancer or instance still detach; a target group still used for a moment.
  dependency_violation = {
    codes = { "DependencyViolation", "ResourceInUse", "ResourceInUseException" },
    seconds = 900, delay = 2, max_delay = 15,
  },
  -- ReleaseAddress while a NAT gateway deleted a moment ago still holds the address
  -- (it is freed when the gateway reaches "deleted", minutes on AWS).
  address_in_use = {
    codes = { "InvalidIPAddress.InUse" },
    seconds = 900, delay = 2, max_delay = 15,
  },
  -- UpdateContinuousBackups (point-in-time recovery) right after CreateTable: "Backups are
  -- being enabled for the table ... Please retry later" for a while after it is ACTIVE.
  continuous_backups = {
    codes = { "ContinuousBackupsUnavailableException" },
    seconds = 300, delay = 2, max_delay = 15,
  },
}
