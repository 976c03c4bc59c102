-- The readiness check (`fo-run --readiness RECIPE`): is the standby region ready to take
-- the traffic, now, before an outage needs it? Like the readiness checks of AWS's
-- Application Recovery Controller, from read calls only:
--   alike     the two regions' load balancers, listeners, target groups, launch templates,
--             Auto Scaling groups (capacity aside), security groups and alarms configured
--             the same (modulo ids, ARNs, names and the role word);
--   data      the session table and its replica ACTIVE, point-in-time recovery ENABLED in
--             both regions;
--   health    the Route 53 health check healthy (more than 18% of its checkers report
--             success, as Route 53 decides), neither inverted nor disabled, healthy
--             targets behind both load balancers;
--   alarms    every alarm of the stack in OK; topics' subscriptions confirmed;
--   capacity  the standby group may grow to the primary's desired capacity (its max size),
--             and the account's EC2 vCPU quota in the standby region lets it run at the
--             primary's max size (lua/fo/readiness_quota.lua).
--
-- The stack's state says which resources are the stack's (their ids, their regions, the
-- outputs); what they are is read from AWS (or the simulator) through fo's clients: the
-- state can be stale, AWS is the truth. It makes no mutating call.
local M = {}

--- Exit code when a check fails (consistent with --drill's 3; warnings alone exit 0).
M.EXIT_FAILED = 3

-- Route 53 considers an endpoint healthy when more than 18% of its checkers report it
-- healthy (Route 53 Developer Guide, "How Route 53 determines whether a health check is
-- healthy").
M.HEALTHY_SHARE = 0.18

local SEVERITY_ORDER = { fail = 1, warning = 2, ok = 3 }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

-- A value as one short line (differences in findings).
local function show(v)
  if v == nil then return "(none)" end
  if type(v) ~= "table" then return tostring(v) end
  local ok, text = pcall(require("cjson").encode, v)
  return ok and text or tostring(v)
end

--- The differences of two normalized values: { {path=, primary=, standby=} }.
function M.differences(a, b, path, out)
  out = out or {}
  path = path or ""
  if type(a) == "table" and type(b) == "table" then
    local keys = {}
    for k in pairs(a) do keys[k] = true end
    for k in pairs(b) do keys[k] = true end
    for _, k in ipairs(sorted_keys(keys)) do
      local p = type(k) == "number" and ("%s[%d]"):format(path, k)
        or (path == "" and tostring(k) or path .. "." .. tostring(k))
      M.differences(a[k], b[k], p, out)
    end
  elseif a ~= b then
    out[#out + 1] = { path = path, primary = a, standby = b }
  end
  return out
end

-- The stack's resources of `type` in each role's region, paired by their logical name
-- without its first segment ("primary/alb" and "standby/alb" → "alb"): {key = {primary =
-- rec, standby = rec}}, keys sorted in `order`.
local function pairs_of(doc, regions, type_name)
  local by, order = {}, {}
  for _, rec in pairs(doc.resources or {}) do
    local key = rec.type == type_name and tostring(rec.name or ""):match("^[^/]+/(.+)$")
    local role = key and (rec.region == regions.primary and "primary"
      or rec.region == regions.standby and "standby")
    if role then
      if not by[key] then by[key] = {}; order[#order + 1] = key end
      by[key][role] = rec
    end
  end
  table.sort(order)
  return by, order
end

local function records_of(doc, type_name)
  local out = {}
  for _, rec in pairs(doc.resources or {}) do
    if rec.type == type_name then out[#out + 1] = rec end
  end
  table.sort(out, function(a, b) return a.urn < b.urn end)
  return out
end

-- An AWS error (or any) as one line.
local function why(e)
  if type(e) == "table" and e.code then
    return ("%s: %s"):format(e.code, tostring(e.message or ""))
  end
  return tostring(e)
end

-------------------------------------------------------------------------------
-- Normalizers: what must be alike, without what differs by design between the regions

local Normalize = {}
Normalize.__index = Normalize

-- The role words and region names replaced by placeholders in names and texts.
function Normalize:text(s, role)
  if type(s) ~= "string" then return s end
  s = s:gsub(self.regions[role]:gsub("%-", "%%-"), "<region>")
  for _, word in ipairs({ "primary", "standby" }) do
    s = s:gsub(word, "<role>"):gsub(word:sub(1, 1):upper() .. word:sub(2), "<Role>")
  end
  return s
end

-- A target group's ARN as the group's name (role word replaced); an unknown ARN as itself.
function Normalize:target_group(arn, role)
  local name = type(arn) == "string" and arn:match(":targetgroup/([^/]+)/")
  return name and self:text(name, role) or arn
end

local function listener_actions(n, actions, role)
  local out = {}
  for i, a in ipairs(actions or {}) do
    local fwd
    if a.ForwardConfig then
      fwd = { TargetGroups = {}, Stickiness = a.ForwardConfig.TargetGroupStickinessConfig }
      for j, tg in ipairs(a.ForwardConfig.TargetGroups or {}) do
        fwd.TargetGroups[j] = { TargetGroup = n:target_group(tg.TargetGroupArn, role),
          Weight = tg.Weight }
      end
    end
    out[i] = { Type = a.Type, Order = a.Order, TargetGroup = n:target_group(a.TargetGroupArn, role),
      Forward = fwd, Redirect = a.RedirectConfig, FixedResponse = a.FixedResponseConfig,
      AuthenticateCognito = a.AuthenticateCognitoConfig and true or nil,
      AuthenticateOidc = a.AuthenticateOidcConfig and true or nil }
  end
  return out
end

-- ELB attributes as a map; values naming the region's own things (a log bucket or prefix
-- with the role word or region in it) compare as the text normalizer makes them.
local function attribute_map(n, list, role)
  local m = {}
  for _, a in ipairs(list or {}) do m[a.Key] = n:text(a.Value, role) end
  return m
end

-------------------------------------------------------------------------------
-- The checks

local Check = {}
Check.__index = Check

function Check:add(severity, check, what, where, fix)
  local f = { severity = severity, check = check, what = what, fix = fix }
  if where then f.region, f.resource = where.region, where.resource end
  self.findings[#self.findings + 1] = f
  return f
end

-- Runs fn(); an error becomes a failed finding of `check` (what could not be read).
function Check:try(check, what, where, fn)
  local ok, err = pcall(fn)
  if not ok then
    self:add("fail", check, ("%s: could not read it (%s)"):format(what, why(err)), where,
      "check the credentials' read permissions and that the resource exists (fo-run --refresh "
        .. "shows what changed outside fo)")
  end
end

function Check:client(service, region) return self.clients(service, region) end

-- Compares the normalized shapes of a pair; one finding either way.
function Check:compare(what, key, pair, shape_of, fix)
  local where = { region = self.regions.standby, resource = pair.standby and pair.standby.id }
  if not (pair.primary and pair.standby) then
    local has = pair.primary and "primary" or "standby"
    local rec = pair.primary or pair.standby
    self:add("fail", "alike", ("%s %s: only the %s region (%s) has one in the stack's state")
      :format(what, key, has, rec.region), { region = rec.region, resource = rec.id },
      "apply the recipe (fo-run RECIPE) so that both regions have it")
    return
  end
  self:try("alike", ("%s %s"):format(what, key), where, function()
    local a = shape_of(pair.primary, "primary")
    local b = shape_of(pair.standby, "standby")
    local diffs = M.differences(a, b)
    if #diffs == 0 then
      self:add("ok", "alike", ("%s %s: configured alike in both regions"):format(what, key),
        where)
      return
    end
    local parts = {}
    for i, d in ipairs(diffs) do
      if i > 6 then
        parts[#parts + 1] = ("and %d more"):format(#diffs - 6)
        break
      end
      parts[#parts + 1] = ("%s: %s (%s) vs %s (%s)"):format(d.path, show(d.primary),
        self.regions.primary, show(d.standby), self.regions.standby)
    end
    local f = self:add("fail", "alike", ("%s %s differs between the regions: %s")
      :format(what, key, table.concat(parts, "; ")), where, fix)
    f.differences = diffs
  end)
end

-- Load balancers, with their listeners (all of them, as AWS lists them).
function Check:load_balancers()
  local by, order = pairs_of(self.doc, self.regions, "aws:elbv2:load_balancer")
  for _, key in ipairs(order) do
    local function lb(rec)
      local c = self:client("elbv2", rec.region)
      local d = c:DescribeLoadBalancers{ LoadBalancerArns = { rec.id } }.LoadBalancers[1]
      local attrs = c:DescribeLoadBalancerAttributes{ LoadBalancerArn = rec.id }.Attributes
      return c, d, attrs
    end
    self:compare("load balancer", key, by[key], function(rec, role)
      local _, d, attrs = lb(rec)
      return { Scheme = d.Scheme, Type = d.Type, IpAddressType = d.IpAddressType,
        AvailabilityZones = #(d.AvailabilityZones or {}), SecurityGroups = #(d.SecurityGroups or {}),
        Attributes = attribute_map(self.norm, attrs, role) }
    end, "make the load balancers' settings the same (the recipe sets them alike: fo-run "
      .. "--refresh then an apply puts them back)")
    self:compare("listeners of load balancer", key, by[key], function(rec, role)
      local c = self:client("elbv2", rec.region)
      local ls = c:DescribeListeners{ LoadBalancerArn = rec.id }.Listeners or {}
      local out = {}
      for _, l in ipairs(ls) do
        out[("%s:%s"):format(tostring(l.Protocol), tostring(l.Port))] = {
          SslPolicy = l.SslPolicy, Certificates = #(l.Certificates or {}),
          AlpnPolicy = l.AlpnPolicy, DefaultActions = listener_actions(self.norm, l.DefaultActions,
            role) }
      end
      return out
    end, "make the listeners the same in both regions (ports, protocols, TLS policy, actions); "
      .. "an apply of the recipe restores the ones it declares")
  end
end

function Check:target_groups()
  local by, order = pairs_of(self.doc, self.regions, "aws:elbv2:target_group")
  for _, key in ipairs(order) do
    self:compare("target group", key, by[key], function(rec, role)
      local c = self:client("elbv2", rec.region)
      local g = c:DescribeTargetGroups{ TargetGroupArns = { rec.id } }.TargetGroups[1]
      local attrs = c:DescribeTargetGroupAttributes{ TargetGroupArn = rec.id }.Attributes
      return { Protocol = g.Protocol, Port = g.Port, TargetType = g.TargetType,
        ProtocolVersion = g.ProtocolVersion, HealthCheckProtocol = g.HealthCheckProtocol,
        HealthCheckPort = g.HealthCheckPort, HealthCheckPath = g.HealthCheckPath,
        HealthCheckEnabled = g.HealthCheckEnabled,
        HealthCheckIntervalSeconds = g.HealthCheckIntervalSeconds,
        HealthCheckTimeoutSeconds = g.HealthCheckTimeoutSeconds,
        HealthyThresholdCount = g.HealthyThresholdCount,
        UnhealthyThresholdCount = g.UnhealthyThresholdCount, Matcher = g.Matcher,
        Attributes = attribute_map(self.norm, attrs, role) }
    end, "make the target groups' health checks the same: the standby's targets must be judged "
      .. "as the primary's are")
  end
end

-- The group of a role as AWS describes it (cached).
function Check:group(role)
  self.groups = self.groups or {}
  if self.groups[role] == nil then
    local by = pairs_of(self.doc, self.regions, "aws:autoscaling:group")
    local _, pair = next(by)
    local rec = pair and pair[role]
    local g = false
    if rec then
      g = self:client("autoscaling", rec.region):DescribeAutoScalingGroups{
        AutoScalingGroupNames = { rec.id } }.AutoScalingGroups[1] or false
    end
    self.groups[role] = g
  end
  return self.groups[role] or nil
end

-- The launch templates: the version each region's group launches from.
function Check:launch_templates()
  local by, order = pairs_of(self.doc, self.regions, "aws:ec2:launch_template")
  for _, key in ipairs(order) do
    self:compare("launch template", key, by[key], function(rec, role)
      local ec2 = self:client("ec2", rec.region)
      local version = "$Latest"
      local g = self:group(role)
      local spec = g and (g.LaunchTemplate or (g.MixedInstancesPolicy and g.MixedInstancesPolicy
        .LaunchTemplate and g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification))
      if spec and spec.LaunchTemplateId == rec.id and spec.Version then version = spec.Version end
      local v = ec2:DescribeLaunchTemplateVersions{ LaunchTemplateId = rec.id,
        Versions = { tostring(version) } }.LaunchTemplateVersions[1]
      local data = v.LaunchTemplateData or {}
      -- image ids are regional: the image's name says whether both run the same image
      local image = data.ImageId
      if image then
        local ok, out = pcall(ec2.DescribeImages, ec2, { ImageIds = { image } })
        local img = ok and out.Images and out.Images[1]
        image = img and img.Name or ("(image %s not found in %s)"):format(image, rec.region)
      end
      local devices = {}
      for i, b in ipairs(data.BlockDeviceMappings or {}) do
        local ebs = b.Ebs and { VolumeSize = b.Ebs.VolumeSize, VolumeType = b.Ebs.VolumeType,
          Encrypted = b.Ebs.Encrypted, DeleteOnTermination = b.Ebs.DeleteOnTermination,
          Iops = b.Ebs.Iops, Throughput = b.Ebs.Throughput, KmsKey = b.Ebs.KmsKeyId and true }
        devices[i] = { DeviceName = b.DeviceName, Ebs = ebs, VirtualName = b.VirtualName }
      end
      local user_data = data.UserData
      if user_data then
        local ok, text = pcall(fo.crypto.base64_decode, user_data)
        user_data = self.norm:text(ok and text or user_data, role)
      end
      local profile = data.IamInstanceProfile
      return { Image = image, InstanceType = data.InstanceType,
        MetadataOptions = data.MetadataOptions, BlockDeviceMappings = devices,
        UserData = user_data, Monitoring = data.Monitoring,
        IamInstanceProfile = profile and (profile.Arn or profile.Name),
        SecurityGroups = #(data.SecurityGroupIds or data.SecurityGroups or {}),
        EbsOptimized = data.EbsOptimized }
    end, "launch the same image, instance type and settings in both regions: apply the recipe, "
      .. "then start an instance refresh on the group whose instances are older")
  end
end

function Check:groups_alike()
  local by, order = pairs_of(self.doc, self.regions, "aws:autoscaling:group")
  for _, key in ipairs(order) do
    self:compare("Auto Scaling group", key, by[key], function(rec, role)
      local g = self:group(role)
      if not g then error(("no group %s in %s"):format(rec.id, rec.region), 0) end
      local metrics = {}
      for _, m in ipairs(g.EnabledMetrics or {}) do
        metrics[#metrics + 1] = m.Metric .. "/" .. tostring(m.Granularity)
      end
      table.sort(metrics)
      local policies = {}
      local as = self:client("autoscaling", rec.region)
      for _, p in ipairs(as:DescribePolicies{ AutoScalingGroupName = g.AutoScalingGroupName }
          .ScalingPolicies or {}) do
        policies[self.norm:text(p.PolicyName, role)] = { PolicyType = p.PolicyType,
          Enabled = p.Enabled, EstimatedInstanceWarmup = p.EstimatedInstanceWarmup,
          AdjustmentType = p.AdjustmentType, Cooldown = p.Cooldown,
          TargetTracking = p.TargetTrackingConfiguration, StepAdjustments = p.StepAdjustments }
      end
      return { HealthCheckType = g.HealthCheckType,
        HealthCheckGracePeriod = g.HealthCheckGracePeriod, DefaultCooldown = g.DefaultCooldown,
        EnabledMetrics = metrics, TargetGroups = #(g.TargetGroupARNs or {}),
        LoadBalancers = #(g.LoadBalancerNames or {}),
        Subnets = select(2, tostring(g.VPCZoneIdentifier or ""):gsub("[^,]+", "")),
        TerminationPolicies = g.TerminationPolicies, CapacityRebalance = g.CapacityRebalance,
        MaxInstanceLifetime = g.MaxInstanceLifetime,
        NewInstancesProtectedFromScaleIn = g.NewInstancesProtectedFromScaleIn,
        DefaultInstanceWarmup = g.DefaultInstanceWarmup, Policies = policies }
    end, "give both groups the same health checks, metrics and scaling policies (capacity "
      .. "aside): an apply of the recipe restores what it declares")
  end
end

function Check:security_groups()
  local by, order = pairs_of(self.doc, self.regions, "aws:ec2:security_group")
  -- group id → its logical key, so that rules naming a group compare by which group it is
  local key_of = {}
  for _, key in ipairs(order) do
    for _, rec in pairs(by[key]) do key_of[rec.id] = key end
  end
  for _, key in ipairs(order) do
    self:compare("security group", key, by[key], function(rec, role)
      local ec2 = self:client("ec2", rec.region)
      local g = ec2:DescribeSecurityGroups{ GroupIds = { rec.id } }.SecurityGroups[1]
      local function rules(perms)
        local out = {}
        for _, p in ipairs(perms or {}) do
          local function add(source, description)
            out[#out + 1] = ("%s %s-%s from %s%s"):format(tostring(p.IpProtocol),
              tostring(p.FromPort), tostring(p.ToPort), source,
              description and (" (" .. self.norm:text(description, role) .. ")") or "")
          end
          for _, r in ipairs(p.IpRanges or {}) do add(r.CidrIp, r.Description) end
          for _, r in ipairs(p.Ipv6Ranges or {}) do add(r.CidrIpv6, r.Description) end
          for _, r in ipairs(p.PrefixListIds or {}) do add("prefix list", r.Description) end
          for _, r in ipairs(p.UserIdGroupPairs or {}) do
            add("group " .. (key_of[r.GroupId] or "(not the stack's)"), r.Description)
          end
        end
        table.sort(out)
        return out
      end
      return { Description = self.norm:text(g.Description, role),
        Ingress = rules(g.IpPermissions), Egress = rules(g.IpPermissionsEgress) }
    end, "make the rules the same (modulo ids): a rule added by hand in one region is missing "
      .. "in the other when it takes the traffic")
  end
end

-- An alarm's threshold that is its group's capacity (asg-in-service) differs by design.
function Check:threshold(a, role)
  local g = self:group(role)
  for _, d in ipairs(a.Dimensions or {}) do
    if g and d.Name == "AutoScalingGroupName" and d.Value == g.AutoScalingGroupName then
      if a.Threshold == g.MinSize then return "<group min size>" end
      if a.Threshold == g.DesiredCapacity then return "<group desired capacity>" end
    end
  end
  return a.Threshold
end

function Check:alarm(rec)
  self.alarms = self.alarms or {}
  if self.alarms[rec.urn] == nil then
    self.alarms[rec.urn] = self:client("cloudwatch", rec.region):DescribeAlarms{
      AlarmNames = { rec.id } }.MetricAlarms[1] or false
  end
  return self.alarms[rec.urn] or error(("no alarm %s in %s"):format(rec.id, rec.region), 0)
end

function Check:alarms_alike()
  local by, order = pairs_of(self.doc, self.regions, "aws:cloudwatch:alarm")
  for _, key in ipairs(order) do
    self:compare("alarm", key, by[key], function(rec, role)
      local a = self:alarm(rec)
      local dims = {}
      for _, d in ipairs(a.Dimensions or {}) do dims[#dims + 1] = d.Name end
      table.sort(dims)
      return { Namespace = a.Namespace, MetricName = a.MetricName, Statistic = a.Statistic,
        ExtendedStatistic = a.ExtendedStatistic, Period = a.Period,
        EvaluationPeriods = a.EvaluationPeriods, DatapointsToAlarm = a.DatapointsToAlarm,
        Threshold = self:threshold(a, role), ComparisonOperator = a.ComparisonOperator,
        TreatMissingData = a.TreatMissingData, ActionsEnabled = a.ActionsEnabled,
        AlarmActions = #(a.AlarmActions or {}), OKActions = #(a.OKActions or {}),
        Dimensions = dims }
    end, "make the alarms the same (metric, threshold, periods, actions): an apply of the "
      .. "recipe restores them")
  end
end

-- The session table and its replica: ACTIVE, point-in-time recovery ENABLED.
function Check:data()
  for _, rec in ipairs(records_of(self.doc, "aws:dynamodb:table")) do
    local name = rec.id
    local regions = { rec.region }
    self:try("data", "table " .. name, { region = rec.region, resource = name }, function()
      local t = self:client("dynamodb", rec.region):DescribeTable{ TableName = name }.Table
      local replicas = {}
      for _, r in ipairs(t.Replicas or {}) do replicas[r.RegionName] = r end
      if t.TableStatus ~= "ACTIVE" then
        self:add("fail", "data", ("table %s is %s in %s"):format(name, tostring(t.TableStatus),
          rec.region), { region = rec.region, resource = name },
          "wait for ACTIVE; a table stuck in another state needs AWS support")
      end
      if rec.region == self.regions.primary then
        local r = replicas[self.regions.standby]
        if not r then
          self:add("fail", "data", ("table %s has no replica in the standby region %s")
            :format(name, self.regions.standby), { region = self.regions.standby, resource = name },
            "apply the recipe: it declares the replica (sessions are lost on failover without it)")
        elseif r.ReplicaStatus ~= "ACTIVE" then
          self:add("fail", "data", ("the replica of %s in %s is %s"):format(name,
            self.regions.standby, tostring(r.ReplicaStatus)),
            { region = self.regions.standby, resource = name },
            "wait for ACTIVE (a new replica takes minutes); INACCESSIBLE_ENCRYPTION_CREDENTIALS: "
              .. "restore access to the table's KMS key in that region")
        else
          self:add("ok", "data", ("the replica of %s in %s is ACTIVE"):format(name,
            self.regions.standby), { region = self.regions.standby, resource = name })
          regions[#regions + 1] = self.regions.standby
        end
      end
    end)
    for _, region in ipairs(regions) do
      local where = { region = region, resource = name }
      self:try("data", ("point-in-time recovery of %s in %s"):format(name, region), where, function()
        local d = self:client("dynamodb", region):DescribeContinuousBackups{ TableName = name }
          .ContinuousBackupsDescription or {}
        local pitr = d.PointInTimeRecoveryDescription or {}
        local status = pitr.PointInTimeRecoveryStatus or "DISABLED"
        if status == "ENABLED" then
          self:add("ok", "data", ("point-in-time recovery of %s is ENABLED in %s"):format(name,
            region), where)
        else
          self:add("fail", "data", ("point-in-time recovery of %s is %s in %s"):format(name,
            status, region), where, ("enable it: aws dynamodb update-continuous-backups "
            .. "--region %s --table-name %s --point-in-time-recovery-specification "
            .. "PointInTimeRecoveryEnabled=true (each replica has its own setting)")
            :format(region, name))
        end
      end)
    end
  end
end

-- The Route 53 health check: configuration (inverted, disabled) and the checkers' verdict.
function Check:health_check()
  local id = self.outputs.health_check_id
  if not id then
    local recs = records_of(self.doc, "aws:route53:health_check")
    id = recs[1] and recs[1].id
  end
  if not id then return end
  local where = { region = "global", resource = id }
  local r53 = self:client("route53", "us-east-1")
  self:try("health", "health check " .. id, where, function()
    local cfg = r53:GetHealthCheck{ HealthCheckId = id }.HealthCheck.HealthCheckConfig or {}
    if cfg.Inverted then
      self:add("fail", "health", ("health check %s is inverted: Route 53 reads a healthy "
        .. "primary as unhealthy"):format(id), where, ("aws route53 update-health-check "
        .. "--health-check-id %s --no-inverted (a game day left it so?)"):format(id))
    end
    if cfg.Disabled then
      self:add("fail", "health", ("health check %s is disabled: Route 53 considers it healthy "
        .. "whatever the primary does, so DNS never fails over"):format(id), where,
        ("aws route53 update-health-check --health-check-id %s --no-disabled"):format(id))
    end
    local obs = r53:GetHealthCheckStatus{ HealthCheckId = id }.HealthCheckObservations or {}
    local ok_n, last_fail = 0, nil
    for _, o in ipairs(obs) do
      local status = o.StatusReport and o.StatusReport.Status or ""
      if status:match("^Success") then ok_n = ok_n + 1 else last_fail = last_fail or status end
    end
    local share = #obs > 0 and ok_n / #obs or 0
    local text = ("health check %s: %d of %d checkers report success (%.0f%%; healthy above %.0f%%)")
      :format(id, ok_n, #obs, share * 100, M.HEALTHY_SHARE * 100)
    if share > M.HEALTHY_SHARE then
      self:add("ok", "health", text, where)
    else
      self:add("fail", "health", text .. (last_fail and (": " .. last_fail) or ""), where,
        "the primary is failing its health check (DNS answers with the standby): look at the "
          .. "primary's load balancer and targets (docs/runbook.md, \"Reading the alarms\")")
    end
  end)
end

-- Healthy targets behind each region's target groups.
function Check:targets()
  local by, order = pairs_of(self.doc, self.regions, "aws:elbv2:target_group")
  for _, key in ipairs(order) do
    for _, role in ipairs({ "primary", "standby" }) do
      local rec = by[key][role]
      if rec then
        local where = { region = rec.region, resource = rec.id }
        local name = rec.id:match(":targetgroup/([^/]+)/") or rec.id
        self:try("health", "targets of " .. name, where, function()
          local hs = self:client("elbv2", rec.region):DescribeTargetHealth{ TargetGroupArn = rec.id }
            .TargetHealthDescriptions or {}
          local healthy, other = 0, {}
          for _, h in ipairs(hs) do
            local s = h.TargetHealth and h.TargetHealth.State
            if s == "healthy" then healthy = healthy + 1
            else other[#other + 1] = ("%s %s"):format(h.Target and h.Target.Id or "?", tostring(s)) end
          end
          local text = ("%s target group %s: %d of %d targets healthy"):format(role, name,
            healthy, #hs)
          if healthy == 0 then
            self:add("fail", "health", text .. (#other > 0 and (" (" .. table.concat(other, ", ")
              .. ")") or ""), where, role == "standby"
              and "the standby cannot serve a failover: look at its group's activity history and "
                .. "the instances' /health (aws elbv2 describe-target-health)"
              or "the primary serves nothing: look at its group's activity history and the "
                .. "instances' /health")
          elseif #other > 0 then
            self:add("warning", "health", text .. " (" .. table.concat(other, ", ") .. ")", where,
              "look at the unhealthy instances (Auto Scaling replaces those that stay so)")
          else
            self:add("ok", "health", text, where)
          end
        end)
      end
    end
  end
end

-- Every alarm of the stack in OK.
function Check:alarm_states()
  for _, rec in ipairs(records_of(self.doc, "aws:cloudwatch:alarm")) do
    local where = { region = rec.region, resource = rec.id }
    self:try("alarms", "alarm " .. rec.id, where, function()
      local a = self:alarm(rec)
      local state = a.StateValue
      if state == "OK" then
        self:add("ok", "alarms", ("alarm %s is OK"):format(rec.id), where)
      elseif state == "INSUFFICIENT_DATA" then
        self:add("warning", "alarms", ("alarm %s has INSUFFICIENT_DATA (%s)"):format(rec.id,
          tostring(a.StateReason)), where, "expected for a few minutes after a deployment; "
          .. "later it means the metric is not published (is the resource serving?)")
      else
        self:add("fail", "alarms", ("alarm %s is in %s: %s"):format(rec.id, tostring(state),
          tostring(a.StateReason)), where, "see docs/runbook.md, \"Reading the alarms\"")
      end
    end)
  end
end

-- Subscriptions of the stack's topics: confirmed; a topic nobody reads is a warning.
function Check:subscriptions()
  for _, rec in ipairs(records_of(self.doc, "aws:sns:topic")) do
    local where = { region = rec.region, resource = rec.id }
    local name = rec.id:match("[^:]+$")
    self:try("alarms", "subscriptions of " .. name, where, function()
      local sns = self:client("sns", rec.region)
      local pending, confirmed = {}, 0
      for s in sns:items("ListSubscriptionsByTopic", { TopicArn = rec.id }) do
        if s.SubscriptionArn == "PendingConfirmation" then
          pending[#pending + 1] = ("%s %s"):format(tostring(s.Protocol), tostring(s.Endpoint))
        else
          confirmed = confirmed + 1
        end
      end
      if #pending > 0 then
        self:add("fail", "alarms", ("topic %s: %d subscription%s pending confirmation (%s)")
          :format(name, #pending, #pending == 1 and "" or "s", table.concat(pending, ", ")), where,
          "confirm it (the link in the email AWS sent; aws sns confirm-subscription); until then "
            .. "its alarms reach nobody there")
      elseif confirmed == 0 then
        self:add("warning", "alarms", ("topic %s has no subscription: its alarms notify nobody")
          :format(name), where, "set the recipe's alarmEmail (--config alarmEmail=...) and apply, "
          .. "or subscribe your pager to the topic")
      else
        self:add("ok", "alarms", ("topic %s: %d confirmed subscription%s"):format(name, confirmed,
          confirmed == 1 and "" or "s"), where)
      end
    end)
  end
end

-- Can the standby grow to the primary's size?
function Check:capacity()
  local where = { region = self.regions.standby }
  self:try("capacity", "the Auto Scaling groups", where, function()
    local p, s = self:group("primary"), self:group("standby")
    if not (p and s) then error("the stack has no Auto Scaling group in one of the regions", 0) end
    where.resource = s.AutoScalingGroupName
    local text = ("standby group %s may grow to %d instances; the primary runs %d (max %d)")
      :format(s.AutoScalingGroupName, s.MaxSize, p.DesiredCapacity, p.MaxSize)
    if s.MaxSize >= p.DesiredCapacity then
      self:add("ok", "capacity", text, where)
    else
      self:add("fail", "capacity", text .. ": it cannot take the primary's load",
        where, ("raise the standby's max size to at least %d (the recipe's maxCapacity; by hand: "
          .. "aws autoscaling update-auto-scaling-group --region %s --auto-scaling-group-name %s "
          .. "--max-size %d)"):format(p.DesiredCapacity, self.regions.standby,
          s.AutoScalingGroupName, math.max(p.DesiredCapacity, p.MaxSize)))
    end
  end)
  -- the groups as read above (a group that could not be read is already a finding)
  local ok, p, s = pcall(function() return self:group("primary"), self:group("standby") end)
  if ok and p and s then require("fo.readiness_quota").check(self, p, s) end
end

--- Runs every check. doc: the stack's state document (its resources and outputs); clients:
--- fn(service, region) → fo's client there. Returns {findings = {{severity, check, what,
--- region, resource, fix}}, not_checked = {{what, why, fix}}, counts = {ok, warning, fail},
--- regions = {primary, standby}, ok}.
function M.run(doc, clients)
  local outputs = doc.outputs or {}
  local regions = { primary = outputs.primary_region, standby = outputs.standby_region }
  if type(regions.primary) ~= "string" or type(regions.standby) ~= "string" then
    error("the stack has no outputs primary_region and standby_region: is it the trading "
      .. "recipe's, applied?", 0)
  end
  local c = setmetatable({ doc = doc, outputs = outputs, regions = regions, clients = clients,
    findings = {}, not_checked = {} }, Check)
  c.norm = setmetatable({ regions = regions }, Normalize)
  c:load_balancers()
  c:target_groups()
  c:launch_templates()
  c:groups_alike()
  c:security_groups()
  c:alarms_alike()
  c:data()
  c:health_check()
  c:targets()
  c:alarm_states()
  c:subscriptions()
  c:capacity()
  local counts = { ok = 0, warning = 0, fail = 0 }
  for _, f in ipairs(c.findings) do counts[f.severity] = counts[f.severity] + 1 end
  return { findings = c.findings, not_checked = c.not_checked, counts = counts,
    regions = regions, ok = counts.fail == 0 }
end

--- The report as lines for an operator: failures and warnings first, each with what to do.
function M.lines(res, opts)
  opts = opts or {}
  local out = {}
  out[#out + 1] = ("Readiness of stack %s (target %s): primary %s, standby %s"):format(
    tostring(opts.stack), tostring(opts.target), res.regions.primary, res.regions.standby)
  local list = {}
  for i, f in ipairs(res.findings) do list[i] = { i = i, f = f } end
  table.sort(list, function(a, b)
    local x, y = SEVERITY_ORDER[a.f.severity], SEVERITY_ORDER[b.f.severity]
    if x ~= y then return x < y end
    return a.i < b.i
  end)
  local label = { ok = "ok  ", warning = "WARN", fail = "FAIL" }
  for _, it in ipairs(list) do
    local f = it.f
    local where = f.region and (" [" .. f.region .. (f.resource and (" " .. f.resource) or "") .. "]")
      or ""
    out[#out + 1] = ("  %s  %-8s %s%s"):format(label[f.severity], f.check, f.what,
      f.severity ~= "ok" and where or "")
    if f.fix and f.severity ~= "ok" then out[#out + 1] = "                 do: " .. f.fix end
  end
  for _, n in ipairs(res.not_checked) do
    out[#out + 1] = ("  --    not checked: %s (%s)"):format(n.what, n.why)
    out[#out + 1] = "                 do: " .. n.fix
  end
  out[#out + 1] = ("Readiness: %d failed, %d warning%s, %d ok%s."):format(res.counts.fail,
    res.counts.warning, res.counts.warning == 1 and "" or "s", res.counts.ok,
    res.ok and " — the standby is ready" or " — NOT ready")
  return out
end

return M
