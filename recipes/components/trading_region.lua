-- The trading recipe's region (recipes/trading.lua) as a component: one region's network
-- (VPC, public and private subnets in two AZs, route tables, private egress through
-- interface endpoints or NAT gateways, gateway endpoints), security groups, flow logs, the
-- launch template, the ALB with its access-log bucket and listeners, the Auto Scaling group
-- with CPU target tracking, the region's topic and its alarms.
--
--   local region = require "components.trading_region"
--   local primary = region("primary", { role = "Primary", region = "eu-south-1", ... })
--
-- Its resources are named primary/vpc, primary/alb, ... (fo.component, docs/recipes.md).
-- args: role ("Primary"/"Standby", tags), region, vpc_cidr (a /16), capacity (the ASG's),
-- https ({ domain_name, zone_id, timeout }: the stack's own certificate) or certificate_arn
-- (a given one; neither: HTTP only), cfg (the recipe's config: availabilityZones,
-- private_egress, appPort, healthPath, cpuTarget, maxCapacity, instanceType,
-- logRetentionDays, alarmEmail), suffix, tags(role, name), probes (the region probes every
-- root waits for), global_region (IAM's), key (the region's KMS key: topic, log groups),
-- profile (the instances' profile), ami ({ parameter }), user_data, log_kinds,
-- log_group_name(kind), topic_policy(arn).
-- Tests: tests/recipes/test_trading_region_component.lua.
local elb_log_delivery = require "fo.aws.elb_log_delivery"

local INTERFACE_ENDPOINTS = { "ssm", "ssmmessages", "ec2messages", "monitoring", "logs" }

-- "10.10.0.0/16", 3 → "10.10.3.0/24"
local function subnet_cidr(vpc_cidr, n)
  local a, b = vpc_cidr:match("^(%d+)%.(%d+)%.")
  return ("%s.%s.%d.0/24"):format(a, b, n)
end

--- One region: its certificate (with args.https), network, security groups, launch
--- template, ALB, ASG, topic and alarms. The instance's name (primary, standby) names its
--- resources (primary/vpc); args: see the header. Returns the handles the global part needs.
return fo.component("region", function(c, args)
  local cfg, S, tags, probes, GLOBAL = args.cfg, args.suffix, args.tags, args.probes,
    args.global_region
  local role_name, region, vpc_cidr, capacity = args.role, args.region, args.vpc_cidr,
    args.capacity
  local profile, AMI, LOG_KINDS, key = args.profile, args.ami, args.log_kinds, args.key
  local topic_policy = args.topic_policy
  local r = c.name
  local function name(kind) return ("%s-%s-%s"):format(kind, r, S) end
  -- root: a resource that depends on nothing else of the recipe waits for the probes
  local function res(type, logical, props, root, depends_on)
    return fo.resource(type, logical, props, { region = region,
      depends_on = root and probes or depends_on })
  end

  -- The HTTPS listener's certificate: the stack's own for the FQDN (ACM's are regional),
  -- validated by the CNAME fo puts in the zone and waited for until ISSUED; or the ARN
  -- given (args.certificate_arn); nil: HTTP only.
  local certificate_arn = args.certificate_arn
  if args.https then
    certificate_arn = fo.resource("aws:acm:certificate", "certificate", {
      domain_name = args.https.domain_name, validation_zone_id = args.https.zone_id,
      validation_timeout = args.https.timeout,
      tags = tags(role_name, ("certificate-%s-%s"):format(r, S)) }, { region = region }).arn
  end

  -- Network
  local vpc = res("aws:ec2:vpc", "vpc", { cidr_block = vpc_cidr, enable_dns_support = true,
    enable_dns_hostnames = true, tags = tags(role_name, name("vpc")) }, true)
  local igw = res("aws:ec2:internet_gateway", "igw", { vpc_id = vpc.id,
    tags = tags(role_name, name("igw")) })
  local public_rt = res("aws:ec2:route_table", "public-rt", { vpc_id = vpc.id,
    tags = tags(role_name, name("public-rt")) })
  res("aws:ec2:route", "public-default", { route_table_id = public_rt.id,
    destination_cidr_block = "0.0.0.0/0", gateway_id = igw.id })
  local public, private, private_rts = {}, {}, {}
  for i, letter in ipairs(cfg.availabilityZones) do
    local az = region .. letter
    public[i] = res("aws:ec2:subnet", "public-" .. i, { vpc_id = vpc.id,
      cidr_block = subnet_cidr(vpc_cidr, i - 1), availability_zone = az,
      map_public_ip_on_launch = false, tags = tags(role_name, name("public-subnet-" .. letter)) })
    res("aws:ec2:route_table_association", "public-" .. i, { route_table_id = public_rt.id,
      subnet_id = public[i].id })
    private[i] = res("aws:ec2:subnet", "private-" .. i, { vpc_id = vpc.id,
      cidr_block = subnet_cidr(vpc_cidr, 10 + i - 1), availability_zone = az,
      map_public_ip_on_launch = false, tags = tags(role_name, name("private-subnet-" .. letter)) })
    -- one private route table per AZ, so that each can route to its AZ's NAT gateway
    private_rts[i] = res("aws:ec2:route_table", "private-rt-" .. i, { vpc_id = vpc.id,
      tags = tags(role_name, name("private-rt-" .. letter)) })
    res("aws:ec2:route_table_association", "private-" .. i, { route_table_id = private_rts[i].id,
      subnet_id = private[i].id })
    if cfg.private_egress == "nat" then
      -- the AZ's NAT gateway in its public subnet (after the internet gateway: AWS fails a
      -- public NAT gateway in a VPC without one), the AZ's private default route to it
      local eip = res("aws:ec2:eip", "nat-eip-" .. i,
        { tags = tags(role_name, name("nat-eip-" .. letter)) })
      local nat = res("aws:ec2:nat_gateway", "nat-" .. i, { subnet_id = public[i].id,
        allocation_id = eip.id, tags = tags(role_name, name("nat-" .. letter)) }, false, { igw })
      res("aws:ec2:route", "private-default-" .. i, { route_table_id = private_rts[i].id,
        destination_cidr_block = "0.0.0.0/0", nat_gateway_id = nat.id })
    end
  end
  -- Instances reach DynamoDB privately through the gateway endpoint (no NAT needed for it).
  res("aws:ec2:vpc_endpoint", "dynamodb", { vpc_id = vpc.id,
    service_name = ("com.amazonaws.%s.dynamodb"):format(region), vpc_endpoint_type = "Gateway",
    route_table_ids = { private_rts[1].id, private_rts[2].id },
    tags = tags(role_name, name("dynamodb-endpoint")) })

  -- Security groups: the ALB admits 80 from the internet (clients and Route 53's health
  -- checkers; with HTTPS, for the redirect) and 443 only when it has an HTTPS listener;
  -- instances admit the app port from the ALB only.
  local alb_sg = res("aws:ec2:security_group", "alb-sg", { vpc_id = vpc.id,
    group_name = name("alb-sg"), description = "ALB: HTTP and HTTPS from the internet",
    tags = tags(role_name, name("alb-sg")) })
  for _, port in ipairs(certificate_arn and { 80, 443 } or { 80 }) do
    res("aws:ec2:security_group_rule", "alb-in-" .. port, { security_group_id = alb_sg.id,
      type = "ingress", protocol = "tcp", from_port = port, to_port = port,
      cidr_ipv4 = "0.0.0.0/0", description = "from the internet",
      tags = tags(role_name, name("alb-in-" .. port)) })
  end
  local app_sg = res("aws:ec2:security_group", "app-sg", { vpc_id = vpc.id,
    group_name = name("app-sg"), description = "instances: the app port from the ALB",
    tags = tags(role_name, name("app-sg")) })
  res("aws:ec2:security_group_rule", "app-from-alb", { security_group_id = app_sg.id,
    type = "ingress", protocol = "tcp", from_port = cfg.appPort, to_port = cfg.appPort,
    source_security_group_id = alb_sg.id, description = "from the ALB",
    tags = tags(role_name, name("app-from-alb")) })

  -- Private egress without the internet: interface endpoints (one network interface in
  -- each private subnet, private DNS so the SDKs' default hostnames resolve to them) for
  -- SSM Agent, CloudWatch metrics and Logs; their group admits HTTPS from the instances
  -- only. The S3 gateway endpoint serves the package repositories (AL2's are in S3).
  -- Replaced create-before-delete (its name carries the suffix, so old and new differ):
  -- the endpoints, updated in place, move to the new group before the old one can go.
  -- With private_egress = "nat" the NAT gateways (above) carry that traffic instead.
  if cfg.private_egress == "endpoints" then
    local vpce_sg = fo.resource("aws:ec2:security_group", "vpce-sg", { vpc_id = vpc.id,
      group_name = name("vpce-sg"), description = "interface endpoints: HTTPS from the instances",
      tags = tags(role_name, name("vpce-sg")) }, { region = region, delete_first = false })
    res("aws:ec2:security_group_rule", "vpce-from-app", { security_group_id = vpce_sg.id,
      type = "ingress", protocol = "tcp", from_port = 443, to_port = 443,
      source_security_group_id = app_sg.id, description = "HTTPS from the instances",
      tags = tags(role_name, name("vpce-from-app")) })
    for _, svc in ipairs(INTERFACE_ENDPOINTS) do
      res("aws:ec2:vpc_endpoint", svc, { vpc_id = vpc.id,
        service_name = ("com.amazonaws.%s.%s"):format(region, svc),
        vpc_endpoint_type = "Interface", subnet_ids = { private[1].id, private[2].id },
        security_group_ids = { vpce_sg.id }, private_dns_enabled = true,
        tags = tags(role_name, name(svc .. "-endpoint")) })
    end
  end
  res("aws:ec2:vpc_endpoint", "s3", { vpc_id = vpc.id,
    service_name = ("com.amazonaws.%s.s3"):format(region), vpc_endpoint_type = "Gateway",
    route_table_ids = { private_rts[1].id, private_rts[2].id },
    tags = tags(role_name, name("s3-endpoint")) })

  -- Logs: the region's groups (encrypted with the region's key, events kept
  -- logRetentionDays) and the VPC's flow logs of all traffic, delivered by a role that
  -- trusts this account's flow logs of this region and may only write to its group.
  local groups = {}
  for _, kind in ipairs(LOG_KINDS) do
    groups[kind] = res("aws:logs:log_group", "logs-" .. kind, { name = args.log_group_name(kind),
      retention_in_days = cfg.logRetentionDays, kms_key_id = key.arn,
      tags = tags(role_name, name(kind .. "-logs")) })
  end
  local flow_role = fo.resource("aws:iam:role", "flow-logs", { name = name("flow-logs-role"),
    description = "VPC flow logs of " .. region .. " deliver to their log group",
    assume_role_policy = fo.apply(probes[1].account, function(account) return {
      Version = "2012-10-17",
      Statement = { { Effect = "Allow", Principal = { Service = "vpc-flow-logs.amazonaws.com" },
        Action = "sts:AssumeRole", Condition = { StringEquals = { ["aws:SourceAccount"] = account },
          ArnLike = { ["aws:SourceArn"] = ("arn:aws:ec2:%s:%s:vpc-flow-log/*"):format(region,
            account) } } } } } end),
    tags = tags(role_name, name("flow-logs-role")) }, { region = GLOBAL })
  local flow_grant = fo.resource("aws:iam:role_policy", "flow-logs", {
    role_name = flow_role.name, policy_name = name("flow-logs-policy"),
    policy_document = fo.apply(groups["vpc-flow-logs"].arn, function(arn) return {
      Version = "2012-10-17",
      Statement = { { Sid = "DeliverToTheGroup", Effect = "Allow", Action = {
        "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents" },
        Resource = arn .. ":*" } } } end) }, { region = GLOBAL })
  res("aws:ec2:flow_log", "vpc", { resource_id = vpc.id, traffic_type = "ALL",
    log_group_name = groups["vpc-flow-logs"].name, role_arn = flow_role.arn,
    tags = tags(role_name, name("vpc-flow-log")) }, false, { flow_grant })

  -- Launch template: the family's latest image from its public SSM parameter, IMDSv2 only,
  -- encrypted root volume; what it launches (instance, volume, network interface) tagged.
  local ami = res("aws:ssm:parameter_value", "al2-ami", { name = AMI.parameter }, true)
  local lt = res("aws:ec2:launch_template", "lt", {
    name = name("lt"),
    image_id = ami.value,
    instance_type = cfg.instanceType,
    iam_instance_profile = profile.arn,
    security_group_ids = { app_sg.id },
    metadata_options = { http_tokens = "required", http_endpoint = "enabled",
      http_put_response_hop_limit = 1 },
    -- detailed monitoring: CPUUtilization every minute, so target tracking scales the
    -- standby out after 3 minutes above the target, not 3 × 5 (basic monitoring)
    monitoring = true,
    block_device_mappings = { { device_name = "/dev/xvda", ebs = { volume_size = 20,
      volume_type = "gp3", encrypted = true, delete_on_termination = true } } },
    user_data = args.user_data,
    resource_tags = { instance = tags(role_name, name("instance")),
      volume = tags(role_name, name("volume")),
      ["network-interface"] = tags(role_name, name("eni")) },
    tags = tags(role_name, name("lt")),
  })

  -- ALB access logs: a bucket in the ALB's region (ELB delivers only there), encrypted with
  -- SSE-S3 (the only encryption ALB log delivery supports), versioned, public access
  -- blocked; its policy lets the region's ELB log deliverer put under alb/AWSLogs/<account>/
  -- and refuses any request without TLS. Named with the account and region (bucket names
  -- are global). Destroy empties it: the logs go with the stack.
  local probe = region == cfg.primaryRegion and probes[1] or probes[2] -- (root: waits for both)
  local function log_bucket(account) return ("alb-logs-%s-%s-%s"):format(account, region, S) end
  local alb_logs = res("aws:s3:bucket", "alb-logs", { name = fo.apply(probe.account, log_bucket),
    versioning = true, encryption = "AES256", block_public_access = true, empty_on_destroy = true,
    policy = fo.apply(probe.account, function(account)
      local arn = "arn:aws:s3:::" .. log_bucket(account)
      return { Version = "2012-10-17", Statement = {
        { Sid = "ELBAccessLogDelivery", Effect = "Allow", Principal = elb_log_delivery.principal(region),
          Action = "s3:PutObject", Resource = ("%s/alb/AWSLogs/%s/*"):format(arn, account) },
        { Sid = "DenyWithoutTLS", Effect = "Deny", Principal = "*", Action = "s3:*",
          Resource = { arn, arn .. "/*" }, Condition = { Bool = { ["aws:SecureTransport"] = "false" } } } } }
    end),
    tags = tags(role_name, name("alb-logs")) }, true)

  -- Load balancer, target group (health check on the app's health path), listener(s).
  -- An internet-facing load balancer needs its VPC's internet gateway attached
  -- (CreateLoadBalancer: InvalidSubnet "VPC ... has no internet gateway"): nothing of its
  -- properties names the gateway, so the dependency is said.
  local alb = res("aws:elbv2:load_balancer", "alb", { name = name("alb"), type = "application",
    scheme = "internet-facing", subnets = { public[1].id, public[2].id },
    security_groups = { alb_sg.id }, tags = tags(role_name, name("alb")),
    attributes = { ["access_logs.s3.enabled"] = "true", ["access_logs.s3.bucket"] = alb_logs.name,
      ["access_logs.s3.prefix"] = "alb" } }, false, { igw })
  local tg = res("aws:elbv2:target_group", "tg", { name = name("tg"), protocol = "HTTP",
    port = cfg.appPort, vpc_id = vpc.id, target_type = "instance",
    -- 10 s × 3: the ALB drops a dead target as fast as Route 53 drops the region
    health_check = { protocol = "HTTP", path = cfg.healthPath, interval_seconds = 10,
      timeout_seconds = 5, healthy_threshold = 2, unhealthy_threshold = 3, matcher = "200" },
    tags = tags(role_name, name("tg")) })
  local forward = { { type = "forward", target_group_arn = tg.arn } }
  local listener -- the one clients and Route 53's checkers use
  if certificate_arn then
    -- TLS 1.2 and 1.3 only (the policy AWS recommends); 80 redirects once 443 serves
    listener = res("aws:elbv2:listener", "https", { load_balancer_arn = alb.arn,
      protocol = "HTTPS", port = 443, ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06",
      certificate_arn = certificate_arn, default_actions = forward,
      tags = tags(role_name, name("https-listener")) })
    res("aws:elbv2:listener", "http", { load_balancer_arn = alb.arn, protocol = "HTTP", port = 80,
      default_actions = { { type = "redirect", protocol = "HTTPS", port = 443,
        status_code = "HTTP_301" } },
      tags = tags(role_name, name("http-listener")) }, false, { listener })
  else
    listener = res("aws:elbv2:listener", "http", { load_balancer_arn = alb.arn, protocol = "HTTP",
      port = 80, default_actions = forward, tags = tags(role_name, name("http-listener")) })
  end

  -- Auto Scaling: in the private subnets, ELB health checks, group metrics, CPU tracking.
  local asg = res("aws:autoscaling:group", "asg", {
    name = name("asg"),
    -- pinned to the template's version number: both regions run the image it names
    launch_template = { id = lt.id, version = lt.latest_version },
    min_size = capacity, max_size = math.max(cfg.maxCapacity, capacity),
    desired_capacity = capacity,
    vpc_zone_identifier = { private[1].id, private[2].id },
    target_group_arns = { tg.arn },
    health_check_type = "ELB", health_check_grace_period = 120,
    metrics_collection = { granularity = "1Minute" }, -- every group metric
    tags = tags(role_name, name("asg")),
  })
  res("aws:autoscaling:policy", "cpu", { group_name = asg.name, policy_name = name("cpu-target"),
    metric_type = "ASGAverageCPUUtilization", target_value = cfg.cpuTarget })

  -- The region's topic (encrypted with the region's key) and its alarms (ALB and ASG metrics).
  local topic = res("aws:sns:topic", "topic", { name = name("failover-topic"),
    kms_master_key_id = key.arn,
    tags = tags(role_name, name("failover-topic")) }, true)
  res("aws:sns:topic_policy", "topic", { topic_arn = topic.arn,
    policy = fo.apply(topic.arn, topic_policy) })
  if cfg.alarmEmail ~= "" then
    res("aws:sns:subscription", "email", { topic_arn = topic.arn, protocol = "email",
      endpoint = cfg.alarmEmail })
  end
  local lb_dim, tg_dim = alb.arn_suffix, tg.arn_suffix
  local function alarm(logical, props)
    props.name = name(logical)
    props.alarm_actions = { topic.arn }
    props.ok_actions = { topic.arn }
    props.tags = tags(role_name, props.name)
    return res("aws:cloudwatch:alarm", logical, props)
  end
  alarm("alb-unhealthy-hosts-alarm", {
    description = "targets failing the ALB health check in " .. region,
    namespace = "AWS/ApplicationELB", metric_name = "UnHealthyHostCount", statistic = "Maximum",
    dimensions = { LoadBalancer = lb_dim, TargetGroup = tg_dim },
    period = 60, evaluation_periods = 2, datapoints_to_alarm = 2, threshold = 0,
    comparison_operator = "GreaterThanThreshold", treat_missing_data = "notBreaching" })
  alarm("alb-5xx-alarm", {
    description = "the ALB answers 5xx itself (no healthy target) in " .. region,
    namespace = "AWS/ApplicationELB", metric_name = "HTTPCode_ELB_5XX_Count", statistic = "Sum",
    dimensions = { LoadBalancer = lb_dim },
    period = 60, evaluation_periods = 1, datapoints_to_alarm = 1, threshold = 10,
    comparison_operator = "GreaterThanThreshold", treat_missing_data = "notBreaching" })
  alarm("asg-in-service-alarm", {
    description = "fewer instances in service than desired in " .. region,
    namespace = "AWS/AutoScaling", metric_name = "GroupInServiceInstances", statistic = "Minimum",
    dimensions = { AutoScalingGroupName = asg.name },
    period = 60, evaluation_periods = 3, datapoints_to_alarm = 3, threshold = capacity,
    comparison_operator = "LessThanThreshold", treat_missing_data = "breaching" })

  return { alb = alb, asg = asg, listener = listener, topic = topic, region = region,
    role = role_name }
end)
