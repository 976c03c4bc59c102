-- Builds the failover topology's moving parts in a simulator through its handlers: per
-- region a VPC with two subnets in two AZs, an internet-facing ALB with an HTTP:80 listener
-- forwarding to a target group, and an Auto Scaling group attached to it; the global
-- pieces (zone, health check, weighted alias records, us-east-1 alarm and topic). Used by
-- the failover and Route 53 simulator tests.
local M = {}

--- One region's ALB and ASG. Returns {dns=, zone_id=, lb_arn=, tg_arn=, asg=}.
--- opts.user_data: the instances' base64 user data instead of the health server on 80;
--- opts.monitoring: the launch template's Monitoring.Enabled (nil: not given, basic).
function M.region(sim, region, desired, opts)
  opts = opts or {}
  local function call(svc, op, p) return sim:invoke(svc, region, op, p) end
  local vpc = call("ec2", "CreateVpc", { CidrBlock = "10.0.0.0/16" }).Vpc.VpcId
  local igw = call("ec2", "CreateInternetGateway", {}).InternetGateway.InternetGatewayId
  call("ec2", "AttachInternetGateway", { InternetGatewayId = igw, VpcId = vpc })
  local azs = sim:invoke("ec2", region, "DescribeAvailabilityZones", {}).AvailabilityZones
  local subnets = {}
  for i = 1, 2 do
    subnets[i] = call("ec2", "CreateSubnet", { VpcId = vpc, CidrBlock = ("10.0.%d.0/24"):format(i),
      AvailabilityZone = azs[i].ZoneName }).Subnet.SubnetId
  end
  local name = opts.name or ("alb-" .. region)
  local lb = call("elbv2", "CreateLoadBalancer", { Name = name, Subnets = subnets,
    Type = "application", Scheme = "internet-facing" }).LoadBalancers[1]
  local tg = call("elbv2", "CreateTargetGroup", { Name = "tg-" .. region, Protocol = "HTTP",
    Port = 80, VpcId = vpc, TargetType = "instance", HealthCheckPath = "/health",
    -- the trading recipe's checks: down after 3 × 10 s, up again after 2 × 10 s
    HealthCheckIntervalSeconds = 10, UnhealthyThresholdCount = 3, HealthyThresholdCount = 2,
  }).TargetGroups[1]
  call("elbv2", "CreateListener", { LoadBalancerArn = lb.LoadBalancerArn, Protocol = "HTTP",
    Port = 80, DefaultActions = { { Type = "forward", TargetGroupArn = tg.TargetGroupArn } } })
  local lt = call("ec2", "CreateLaunchTemplate", { LaunchTemplateName = "lt-" .. region,
    -- the VPC's default group (ALB and instances) admits itself; the user data serves /health
    LaunchTemplateData = { ImageId = "ami-0123456789abcdef0", InstanceType = "t3.medium",
      UserData = opts.user_data or require("support.health_user_data").base64(80, "/health"),
      Monitoring = opts.monitoring ~= nil and { Enabled = opts.monitoring } or nil } })
  local asg = "asg-" .. region
  call("autoscaling", "CreateAutoScalingGroup", { AutoScalingGroupName = asg, MinSize = 0,
    MaxSize = 4, DesiredCapacity = desired,
    LaunchTemplate = { LaunchTemplateId = lt.LaunchTemplate.LaunchTemplateId, Version = "$Latest" },
    VPCZoneIdentifier = table.concat(subnets, ","), TargetGroupARNs = { tg.TargetGroupArn },
    HealthCheckType = "ELB", HealthCheckGracePeriod = 60 })
  return { dns = lb.DNSName, zone_id = lb.CanonicalHostedZoneId, lb_arn = lb.LoadBalancerArn,
    tg_arn = tg.TargetGroupArn, asg = asg }
end

--- The global part: hosted zone, health check on the primary ALB, weighted alias A records
--- (primary weight 100 with the check, standby weight 0), the us-east-1 topic and the
--- HealthCheckStatus alarm. Returns {zone=, hc=, topic=, alarm=}.
function M.global(sim, primary, standby, opts)
  opts = opts or {}
  local zone = sim:invoke("route53", nil, "CreateHostedZone", { Name = "trading.fo.test",
    CallerReference = "zone-1" }).HostedZone.Id
  local hc = sim:invoke("route53", nil, "CreateHealthCheck", { CallerReference = "hc-1",
    HealthCheckConfig = { Type = "HTTP", FullyQualifiedDomainName = primary.dns, Port = 80,
      ResourcePath = "/health", RequestInterval = opts.interval or 10,
      FailureThreshold = opts.threshold or 3, Inverted = opts.inverted } }).HealthCheck.Id
  local function alias(id, weight, target, check, eth)
    return { Action = "UPSERT", ResourceRecordSet = { Name = "app.trading.fo.test",
      Type = "A", SetIdentifier = id, Weight = weight, HealthCheckId = check,
      AliasTarget = { HostedZoneId = target.zone_id, DNSName = target.dns,
        EvaluateTargetHealth = eth } } }
  end
  -- The primary relies on its health check (opts.primary_eth adds EvaluateTargetHealth);
  -- the standby on its ALB's target health.
  sim:invoke("route53", nil, "ChangeResourceRecordSets", { HostedZoneId = zone,
    ChangeBatch = { Changes = { alias("primary", 100, primary, hc, opts.primary_eth == true),
      alias("standby", 0, standby, nil, true) } } })
  local topic = sim:invoke("sns", "us-east-1", "CreateTopic", { Name = "failover-global" }).TopicArn
  sim:invoke("cloudwatch", "us-east-1", "PutMetricAlarm", { AlarmName = "hc-primary",
    Namespace = "AWS/Route53", MetricName = "HealthCheckStatus",
    Dimensions = { { Name = "HealthCheckId", Value = hc } }, Statistic = "Minimum", Period = 60,
    EvaluationPeriods = 1, DatapointsToAlarm = 1, Threshold = 1,
    ComparisonOperator = "LessThanThreshold", TreatMissingData = "breaching",
    AlarmActions = { topic }, OKActions = { topic } })
  return { zone = zone, hc = hc, topic = topic, alarm = "hc-primary" }
end

return M
