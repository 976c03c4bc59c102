-- The trading application's multi-region failover topology (docs/architecture.md):
-- one component builds a region (network, ALB, ASG, alarms), then the global parts.
--
--   fo-run recipes/trading.lua                                  # on the embedded simulator
--   fo-run --target aws --stack prod --config environmentSuffix=prod recipes/trading.lua
--
-- Every name is <resource-type>[-<role>]-<environmentSuffix>; every taggable resource
-- carries Environment=Production and FailoverRole=Primary|Standby (the global parts,
-- which watch or serve the primary, are Primary). Nothing is retained on destroy.
require "fo.aws.resources"

-------------------------------------------------------------------------------
-- Configuration

-- AWS's name limits that the suffix must fit (ELBv2 names ≤ 32 characters).
local NAME_LIMITS = {
  elbv2 = 32, iam_role = 64, iam_profile = 128, iam_policy = 128, security_group = 255,
  launch_template = 128, autoscaling = 255, sns_topic = 256, alarm = 255, dynamodb = 255,
}

-- The names the recipe derives from a suffix, each with the limit it must fit.
local function derived_names(s)
  local list = {}
  local function add(kind, name) list[#list + 1] = { kind = kind, name = name } end
  for _, role in ipairs({ "primary", "standby" }) do
    add("elbv2", ("alb-%s-%s"):format(role, s))
    add("elbv2", ("tg-%s-%s"):format(role, s))
    add("security_group", ("alb-sg-%s-%s"):format(role, s))
    add("security_group", ("app-sg-%s-%s"):format(role, s))
    add("security_group", ("vpce-sg-%s-%s"):format(role, s))
    add("launch_template", ("lt-%s-%s"):format(role, s))
    add("autoscaling", ("asg-%s-%s"):format(role, s))
    add("sns_topic", ("failover-topic-%s-%s"):format(role, s))
    add("alarm", ("alb-unhealthy-hosts-alarm-%s-%s"):format(role, s))
  end
  add("iam_role", "ec2-role-" .. s)
  for _, role in ipairs({ "primary", "standby" }) do
    add("iam_role", ("flow-logs-role-%s-%s"):format(role, s))
  end
  add("iam_profile", "ec2-profile-" .. s)
  add("iam_policy", "ec2-policy-" .. s)
  add("dynamodb", "trading-sessions-" .. s)
  add("sns_topic", "failover-topic-global-" .. s)
  add("alarm", "health-check-alarm-primary-" .. s)
  return list
end

--- ok, why: the suffix is lower-case letters, digits and inner hyphens, and every name
--- derived from it fits AWS's limits.
local function check_suffix(s)
  if not s:match("^[a-z0-9][a-z0-9-]*$") or s:match("%-$") or s:match("%-%-") then
    return false, ("%q: use lower-case letters, digits and single inner hyphens (it goes "
      .. "into load balancer, table and DNS-visible names)"):format(s)
  end
  for _, n in ipairs(derived_names(s)) do
    local limit = NAME_LIMITS[n.kind]
    if #n.name > limit then
      return false, ("%q is too long: the %s name %q would be %d characters, AWS allows %d "
        .. "(use at most %d characters)"):format(s, n.kind, n.name, #n.name, limit,
        #s - (#n.name - limit))
    end
  end
  return true
end

local function check_cidr16(v)
  local a, b, c, d, bits = v:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a or tonumber(bits) ~= 16 or tonumber(c) ~= 0 or tonumber(d) ~= 0
      or tonumber(a) > 255 or tonumber(b) > 255 then
    return false, ("%q: expected a /16 such as 10.10.0.0/16 (the subnets are /24s in it)"):format(v)
  end
  return true
end

local function check_arn(v)
  if v == "" or v:match("^arn:aws[%w-]*:acm:[%w-]+:%d+:certificate/[%w-]+$") then return true end
  return false, ("%q: expected an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID) "
    .. "or empty"):format(v)
end

-- Route 53 refuses the documentation domains RFC 2606 reserves (InvalidDomainName "... is
-- reserved by AWS!"): said before anything is created rather than half-way through a run.
local function check_domain(v)
  local name = v:lower():gsub("%.$", "")
  for _, r in ipairs{ "example.com", "example.net", "example.org" } do
    if name == r or name:sub(-#r - 1) == "." .. r then
      return false, ("%q: Route 53 refuses %s and every name below it (reserved by AWS); set a "
        .. "domain you own"):format(v, r)
    end
  end
  return true
end

local function positive(n) return n >= 1, "must be at least 1" end

-- The Amazon Linux families the instances may run: the public SSM parameter naming the
-- region's latest image, the end of standard support (AWS's published dates), the
-- Python the health endpoint runs with (AL2023 has only python3) and the package manager.
local AMI_FAMILIES = {
  al2 = { label = "Amazon Linux 2", end_of_support = "2026-06-30", python = "/usr/bin/python",
    packages = "yum",
    parameter = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2" },
  al2023 = { label = "Amazon Linux 2023", end_of_support = "2029-06-30",
    python = "/usr/bin/python3", packages = "dnf",
    parameter = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" },
}

local cfg = fo.config{
  environmentSuffix = { type = "string", default = "dev", check = check_suffix,
    doc = "appended to every resource name (resource-type-<suffix>); at most 20 characters" },
  primaryRegion = { type = "string", default = "eu-south-1", doc = "normal traffic (opt-in region)" },
  standbyRegion = { type = "string", default = "eu-central-1", doc = "takes traffic on failover" },
  -- The default is under .test (RFC 6761: reserved for testing, nobody's domain) and
  -- serves the simulator; on AWS the user sets a domain they own.
  domainName = { type = "string", default = "trading.fo.test", check = check_domain,
    doc = "the Route 53 hosted zone (for --target aws: a domain you own); the application "
      .. "answers at app.<domainName>" },
  appSubdomain = { type = "string", default = "app", doc = "the application's record in the zone" },
  primaryVpcCidr = { type = "string", default = "10.10.0.0/16", check = check_cidr16 },
  standbyVpcCidr = { type = "string", default = "10.20.0.0/16", check = check_cidr16 },
  availabilityZones = { type = "list", default = { "a", "b" },
    check = function(l) return #l == 2 and l[1] ~= l[2], "two different AZ letters, e.g. a,b" end,
    doc = "AZ letters of the two subnets of each kind, in both regions" },
  primaryCapacity = { type = "integer", default = 2, check = positive },
  standbyCapacity = { type = "integer", default = 1, check = positive },
  maxCapacity = { type = "integer", default = 6, check = positive,
    doc = "the most instances CPU scaling may run per region" },
  instanceType = { type = "string", default = "t3.medium" },
  ami_family = { type = "string", default = "al2", enum = { "al2", "al2023" },
    doc = "al2 (Amazon Linux 2, past its end of support on 2026-06-30: the plan warns) or "
      .. "al2023 (Amazon Linux 2023)" },
  private_egress = { type = "string", default = "endpoints", enum = { "endpoints", "nat" },
    doc = "how the private subnets reach AWS: endpoints (interface endpoints, no internet) or "
      .. "nat (a NAT gateway with an Elastic IP per AZ: the internet too; docs/deploy-aws.md "
      .. "compares their cost)" },
  appPort = { type = "integer", default = 8080,
    check = function(p) return p >= 1024 and p <= 65535, "1024-65535" end },
  healthPath = { type = "string", default = "/health",
    check = function(p) return p:match("^/[%w%-._/]*$") ~= nil, "a path such as /health" end },
  cpuTarget = { type = "number", default = 60,
    check = function(n) return n > 0 and n < 100, "a CPU percentage" end },
  -- Off by default: ACM issues a certificate only once public DNS answers its validation
  -- record, and the default domain is delegated to nobody.
  https = { type = "boolean", default = false,
    doc = "true: an ACM certificate per region for app.<domainName>, validated by DNS in the "
      .. "stack's zone (which must be delegated: docs/deploy-aws.md), HTTPS:443 with TLS 1.3, "
      .. "80 redirecting, an HTTPS health check; false: plain HTTP on 80 (the plan warns)" },
  certificateTimeout = { type = "integer", default = 1800, check = positive,
    doc = "with https: seconds to wait for ACM to issue each certificate once its validation "
      .. "record is in the zone (minutes once the zone is delegated), then stop naming what is missing" },
  primaryCertificateArn = { type = "string", default = "", check = check_arn,
    doc = "instead of https: your own issued ACM certificate for app.<domainName> in the "
      .. "primary region (HTTPS when set)" },
  standbyCertificateArn = { type = "string", default = "", check = check_arn,
    doc = "the same in the standby region (ACM certificates are regional)" },
  alarmEmail = { type = "string", default = "",
    doc = "an address subscribed to the three topics (confirm the email AWS sends)" },
  tableEncryption = { type = "string", default = "cmk", enum = { "cmk", "aws-managed", "aws-owned" },
    doc = "the session table at rest: cmk (each replica under its region's customer managed "
      .. "key, the topics' key), aws-managed (aws/dynamodb) or aws-owned (DynamoDB's default)" },
  logRetentionDays = { type = "integer", default = 90, check = function(d)
      for _, ok in ipairs(require("fo.aws.resources.logs").RETENTION_DAYS) do
        if d == ok then return true end
      end
      return false, "one of CloudWatch Logs' retention periods: "
        .. table.concat(require("fo.aws.resources.logs").RETENTION_DAYS, ", ") .. " (days)"
    end, doc = "days the log groups (flow logs, application, health service) keep events" },
  manualFailover = { type = "boolean", default = false,
    doc = "true: weights 0 (primary) / 100 (standby) — a planned failover; false to fail back" },
  failbackHoldMinutes = { type = "integer", default = 0,
    check = function(n) return n >= 0 and n <= 60, "0 (fail back at once) to 60 minutes" end,
    doc = "0: DNS fails back as soon as the primary passes 3 checks; N: only after N whole "
      .. "minutes without a failed verdict (a calculated health check gates the primary record)" },
}

local S = cfg.environmentSuffix
if cfg.primaryRegion == cfg.standbyRegion then
  fo.fail(("config primaryRegion and standbyRegion must differ (both are %s): give one of them "
    .. "another region, e.g. --config standbyRegion=%s"):format(cfg.primaryRegion,
    cfg.primaryRegion == "eu-central-1" and "eu-west-1" or "eu-central-1"))
end
if (cfg.primaryCertificateArn == "") ~= (cfg.standbyCertificateArn == "") then
  fo.fail("config primaryCertificateArn and standbyCertificateArn go together: give both "
    .. "(HTTPS in both regions) or neither (HTTP)")
end
if cfg.https and cfg.primaryCertificateArn ~= "" then
  fo.fail("config https=true makes the stack's own certificates; primaryCertificateArn and "
    .. "standbyCertificateArn bring your own: give one or the other")
end
local HTTPS = cfg.https or cfg.primaryCertificateArn ~= ""
local TABLE_CMK = cfg.tableEncryption == "cmk"
local GLOBAL = "us-east-1" -- IAM and Route 53 are global (signed for us-east-1); its metrics live there
local FQDN = cfg.appSubdomain .. "." .. cfg.domainName
local METRIC_NAMESPACE = "Trading/App"
if not HTTPS then
  fo.warn(("https off: clients reach %s over plain HTTP (port 80, unencrypted). HTTPS needs an "
    .. "ACM certificate, and ACM validates it by DNS: the zone %s must be delegated (its "
    .. "registrar or parent zone lists the name servers of output name_servers). Delegate it, "
    .. "then rerun with --config https=true (docs/deploy-aws.md)"):format(FQDN, cfg.domainName))
end
local AMI = AMI_FAMILIES[cfg.ami_family]
-- Past the family's end of support (today's UTC date against AWS's published date): said
-- with the plan, the run goes on (the request asks for AL2).
if os.date("!%Y-%m-%d") > AMI.end_of_support then
  fo.warn(("ami_family %s: %s reached its end of support on %s (no more security updates); "
    .. "set --config ami_family=al2023 to move to Amazon Linux 2023"):format(cfg.ami_family,
    AMI.label, AMI.end_of_support))
end

local function tags(role, name)
  return { Environment = "Production", FailoverRole = role, Name = name }
end

-- The log groups of each region (r: primary or standby): the VPC's flow logs, the
-- application's log and the health service's log, /trading/<suffix>/<r>/<kind>.
local LOG_KINDS = { "vpc-flow-logs", "app", "health" }
local LOG_REGIONS = { { cfg.primaryRegion, "primary" }, { cfg.standbyRegion, "standby" } }
local function log_group_name(r, kind) return ("/trading/%s/%s/%s"):format(S, r, kind) end
-- The group's ARN as IAM and KMS name it (without the ":*" that also covers its streams).
local function log_group_arn(region, account, r, kind)
  return ("arn:aws:logs:%s:%s:log-group:%s"):format(region, account, log_group_name(r, kind))
end

-- A topic's policy: the owner account as SNS's default policy allows it, and CloudWatch
-- alarms of this account publishing (the topics are the alarms' actions).
local function topic_policy(arn)
  local account = arn:match("^arn:[^:]+:sns:[^:]*:(%d+):")
  return {
    Version = "2012-10-17",
    Statement = {
      { Sid = "Owner", Effect = "Allow", Principal = { AWS = "*" },
        Action = { "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
          "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
          "SNS:ListSubscriptionsByTopic", "SNS:Publish" },
        Resource = arn, Condition = { StringEquals = { ["AWS:SourceOwner"] = account } } },
      { Sid = "CloudWatchAlarms", Effect = "Allow",
        Principal = { Service = "cloudwatch.amazonaws.com" }, Action = "SNS:Publish",
        Resource = arn, Condition = { StringEquals = { ["aws:SourceAccount"] = account } } },
    },
  }
end

-- The instance's user data: a health endpoint on appPort (the family's Python; the script
-- runs on Python 2 and 3, and uses nothing AL2023 lacks, such as yum-cron), as a
-- systemd service so it survives reboots. The real application replaces it. The simulator
-- reads this form to decide target health (docs/simulator.md, "What the simulator reads
-- from user data"): keep the unit, ExecStart and server in this shape. The health service
-- writes its request log to /var/log/trading/health.log, the application its own to
-- app.log; the CloudWatch agent (Amazon Linux's package, from the repositories in S3
-- through the gateway endpoint) ships both to the region's log groups through the logs
-- interface endpoint (private DNS: the default endpoint name resolves to it).
local function user_data(role)
  local script = ([[
#!/bin/bash
# trading instance bootstrap (%s): health endpoint on port %d, path %s
set -euo pipefail
mkdir -p /opt/trading /var/log/trading
cat > /opt/trading/health.py <<'EOF'
import sys
sys.stderr = open("/var/log/trading/health.log", "a", 1)  # the request log, line-buffered
try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
except ImportError:
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split("?")[0] == "%s"
        body = b'{"status":"ok"}' if ok else b'{"status":"not found"}'
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("", %d), Health).serve_forever()
EOF
cat > /etc/systemd/system/trading-health.service <<'EOF'
[Unit]
Description=trading health endpoint
After=network-online.target
[Service]
ExecStart=%s /opt/trading/health.py
Restart=always
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now trading-health.service
%s install -y amazon-cloudwatch-agent
cat > /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'EOF'
{
  "agent": { "run_as_user": "root" },
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          { "file_path": "/var/log/trading/app.log", "log_group_name": "%s",
            "log_stream_name": "{instance_id}" },
          { "file_path": "/var/log/trading/health.log", "log_group_name": "%s",
            "log_stream_name": "{instance_id}" }
        ]
      }
    }
  }
}
EOF
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json
]]):format(role, cfg.appPort, cfg.healthPath, cfg.healthPath, cfg.appPort, AMI.python,
    AMI.packages, log_group_name(role, "app"), log_group_name(role, "health"))
  return script -- the launch template type base64-encodes it
end

-------------------------------------------------------------------------------
-- Preflight: each region answers (probe every region once before creating anything
-- anywhere). Every other resource depends on both probes, so an account that has not
-- enabled the opt-in eu-south-1 stops here with zero resources made.

-- What AWS answers in an opt-in region the account has not enabled (STS, JSON APIs, EC2).
local REFUSED = { InvalidClientTokenId = true, UnrecognizedClientException = true,
  AuthFailure = true }

local function probe(ctx)
  local ok, out = pcall(function() return ctx:client("sts"):GetCallerIdentity{} end)
  if ok then return out.Account end
  if type(out) == "table" and REFUSED[out.code] then
    -- The same credentials in us-east-1 (never opt-in) tell a disabled region from bad keys.
    local fine = pcall(function() return ctx:client("sts", "us-east-1"):GetCallerIdentity{} end)
    if fine then
      error(("region %s refuses these credentials (%s) although us-east-1 accepts them: it "
        .. "is an opt-in region not enabled for this account. Enable it (aws account "
        .. "enable-region --region-name %s, or the console's AWS Regions page), wait until "
        .. "aws account get-region-opt-status --region-name %s says ENABLED, then rerun "
        .. "(docs/deploy-aws.md)"):format(ctx.region, out.code, ctx.region, ctx.region), 0)
    end
  end
  error(out, 0)
end

-- A data type: it only reads, so --destroy forgets it without needing this recipe.
fo.type("trading:region_probe", {
  doc = "STS GetCallerIdentity in a region before anything is created (a read; nothing to delete)",
  data = true,
  schema = { properties = {}, outputs = { "account" } },
  create = function(ctx) return ctx.region, { account = probe(ctx) } end,
  read = function(_, _, _, outputs) return outputs end,
  update = function(_, _, _, _, outputs) return outputs end,
})

local probes = {
  fo.resource("trading:region_probe", "primary", {}, { region = cfg.primaryRegion }),
  fo.resource("trading:region_probe", "standby", {}, { region = cfg.standbyRegion }),
}
-- A root of the graph (a resource that references no other): it waits for the probes.
local function declare(type_name, name, props, region)
  return fo.resource(type_name, name, props, { region = region, depends_on = probes })
end

-------------------------------------------------------------------------------
-- The topics' keys: one customer managed key per region that has a topic. SNS encrypts
-- topics at rest, and CloudWatch alarms publish to an encrypted topic only with
-- kms:GenerateDataKey* and kms:Decrypt on its key: the AWS managed key alias/aws/sns never
-- allows CloudWatch (its policy cannot be changed), so the key is the stack's own, its
-- policy naming CloudWatch for this account's alarms of the key's region. The account's
-- root administers it (the account's IAM policies decide for its users and roles, SNS
-- included). Rotation yearly; destroying the stack schedules the key's deletion after 7
-- days, as short as AWS allows. In the primary and standby regions the key also encrypts
-- the log groups: CloudWatch Logs (logs.<region>.amazonaws.com) may use it for this stack's
-- groups only (the encryption context aws:logs:arn names the group, as AWS documents).
local function logs_key_statement(region, account)
  local arns = {}
  for _, lr in ipairs(LOG_REGIONS) do
    for _, kind in ipairs(lr[1] == region and LOG_KINDS or {}) do
      arns[#arns + 1] = log_group_arn(region, account, lr[2], kind)
    end
  end
  return #arns > 0 and { Sid = "CloudWatchLogsEncrypt", Effect = "Allow",
    Principal = { Service = ("logs.%s.amazonaws.com"):format(region) },
    Action = { "kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
      "kms:Describe*" }, Resource = "*",
    Condition = { ArnEquals = { ["kms:EncryptionContext:aws:logs:arn"] = arns } } } or nil
end
local function topic_key_policy(region)
  return function(account)
    local doc = {
      Version = "2012-10-17",
      Statement = {
        { Sid = "AccountAdministers", Effect = "Allow",
          Principal = { AWS = "arn:aws:iam::" .. account .. ":root" }, Action = "kms:*",
          Resource = "*" },
        { Sid = "CloudWatchAlarmsPublish", Effect = "Allow",
          Principal = { Service = "cloudwatch.amazonaws.com" },
          Action = { "kms:Decrypt", "kms:GenerateDataKey*" }, Resource = "*",
          Condition = { StringEquals = { ["aws:SourceAccount"] = account },
            ArnLike = { ["aws:SourceArn"] = ("arn:aws:cloudwatch:%s:%s:alarm:*"):format(region,
              account) } } },
        logs_key_statement(region, account), -- last: nil (no log groups) leaves it out
      },
    }
    -- tableEncryption = "cmk": the session table's replica of this region is under this key.
    -- DynamoDB uses it as its callers (DescribeKey and CreateGrant when the table is put
    -- under it, then data keys): this account's principals, only through DynamoDB here.
    if TABLE_CMK and (region == cfg.primaryRegion or region == cfg.standbyRegion) then
      doc.Statement[#doc.Statement + 1] = { Sid = "SessionTableThroughDynamoDB", Effect = "Allow",
        Principal = { AWS = "*" }, Action = { "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*",
          "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant" }, Resource = "*",
        Condition = { StringEquals = { ["kms:CallerAccount"] = account,
          ["kms:ViaService"] = ("dynamodb.%s.amazonaws.com"):format(region) } } }
    end
    return doc
  end
end

local topic_keys = {}
--- The customer managed key of `region` (made once per region; r names it, role_name tags
--- it), with its alias alias/trading-data-<r>-<suffix>: the topics', and in the primary
--- and standby regions also the session table's (tableEncryption = cmk) and the log
--- groups'. (Its logical name stays <r>/topic-key: renaming it would replace the key.)
local function topic_key(region, r, role_name)
  if topic_keys[region] then return topic_keys[region] end
  local uses = { "failover topics" }
  if TABLE_CMK and (region == cfg.primaryRegion or region == cfg.standbyRegion) then
    uses[#uses + 1] = "session table"
  end
  if logs_key_statement(region, "0") then uses[#uses + 1] = "log groups" end
  local key = fo.resource("aws:kms:key", r .. "/topic-key", {
    description = ("trading %s in %s: %s"):format(S, region, table.concat(uses, ", ")),
    policy = fo.apply(probes[1].account, topic_key_policy(region)),
    enable_key_rotation = true, deletion_window_in_days = 7,
    tags = tags(role_name, ("trading-data-key-%s-%s"):format(r, S)),
  }, { region = region, depends_on = probes })
  fo.resource("aws:kms:alias", r .. "/topic-key", {
    name = ("alias/trading-data-%s-%s"):format(r, S), target_key_id = key.key_id,
  }, { region = region })
  topic_keys[region] = key
  return key
end

-------------------------------------------------------------------------------
-- Global: IAM (needed by both regions' launch templates) and the session table

local TABLE_NAME = "trading-sessions-" .. S
local sessions = declare("aws:dynamodb:table", "sessions", {
  name = TABLE_NAME,
  hash_key = { name = "sessionId", type = "S" },
  billing_mode = "PAY_PER_REQUEST",
  stream_view_type = "NEW_AND_OLD_IMAGES",   -- what a replica needs
  -- cmk: each replica under its region's key (the topics'); else aws/dynamodb or AWS owned
  sse = TABLE_CMK and { enabled = true, kms_master_key_id = topic_key(cfg.primaryRegion,
    "primary", "Primary").arn } or { enabled = cfg.tableEncryption == "aws-managed" },
  point_in_time_recovery = true,
  -- the replica's PITR, tags and key are its own, set in its region (the table's PITR, its role)
  replicas = { { region_name = cfg.standbyRegion, tags = { FailoverRole = "Standby" },
    kms_master_key_id = TABLE_CMK and topic_key(cfg.standbyRegion, "standby", "Standby").arn
      or nil } },
  tags = tags("Primary", TABLE_NAME),
}, cfg.primaryRegion)

-- The replica's ARN: the table's, in the standby region.
local replica_arn = fo.apply(sessions.arn, function(arn)
  return (arn:gsub("^(arn:[^:]+:dynamodb:)[^:]+", "%1" .. cfg.standbyRegion))
end)

local role = declare("aws:iam:role", "ec2", {
  name = "ec2-role-" .. S,
  description = "trading instances in both regions",
  assume_role_policy = {
    Version = "2012-10-17",
    Statement = { { Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" },
      Action = "sts:AssumeRole" } },
  },
  tags = tags("Primary", "ec2-role-" .. S),
}, GLOBAL)

-- Least privilege: item actions on the table and its replica; PutMetricData (which takes
-- no resource) only into the application's namespace; what SSM Agent needs to register
-- the instance and run Session Manager, inline (AmazonSSMManagedInstanceCore grants more:
-- documents, associations, inventory, parameters). These actions take no resource ARN.
local DYNAMODB_ACTIONS = { "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
  "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
  "dynamodb:Query", "dynamodb:UpdateItem" }
local SSM_AGENT_ACTIONS = { "ssm:UpdateInstanceInformation",
  "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
  "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
  "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
  "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply" }
fo.resource("aws:iam:role_policy", "ec2", {
  role_name = role.name,
  policy_name = "ec2-policy-" .. S,
  policy_document = fo.apply({ sessions.arn, replica_arn, probes[1].account }, function(arns)
    -- the CloudWatch agent writes the app's and health service's logs: its streams in those
    -- groups only (":*" covers the group's streams), never creating or retaining groups
    local log_arns = {}
    for _, lr in ipairs(LOG_REGIONS) do
      for _, kind in ipairs({ "app", "health" }) do
        log_arns[#log_arns + 1] = log_group_arn(lr[1], arns[3], lr[2], kind) .. ":*"
      end
    end
    return {
      Version = "2012-10-17",
      Statement = {
        { Sid = "SessionTable", Effect = "Allow", Action = DYNAMODB_ACTIONS,
          Resource = { arns[1], arns[2] } },
        { Sid = "AppMetrics", Effect = "Allow", Action = "cloudwatch:PutMetricData",
          Resource = "*",
          Condition = { StringEquals = { ["cloudwatch:namespace"] = METRIC_NAMESPACE } } },
        { Sid = "SsmAgent", Effect = "Allow", Action = SSM_AGENT_ACTIONS, Resource = "*" },
        { Sid = "InstanceLogs", Effect = "Allow", Action = { "logs:CreateLogStream",
          "logs:DescribeLogStreams", "logs:PutLogEvents" }, Resource = log_arns },
      },
    }
  end),
}, { region = GLOBAL })

local profile = fo.resource("aws:iam:instance_profile", "ec2", {
  name = "ec2-profile-" .. S,
  role_name = role.name,
  tags = tags("Primary", "ec2-profile-" .. S),
}, { region = GLOBAL })

-------------------------------------------------------------------------------
-- One region

-- The AWS services the instances reach through interface endpoints: SSM Agent (ssm,
-- ssmmessages, ec2messages), CloudWatch metrics (monitoring) and Logs (logs).
-- One region (network, ALB, ASG, alarms): a component (recipes/components/trading_region.lua),
-- so its resources are primary/vpc, standby/alb, ... and plans, --graph and `fo-run state
-- list` show them under their region.
local region = require "components.trading_region"

local zone = declare("aws:route53:zone", "zone", { name = cfg.domainName,
  comment = "trading failover " .. S, tags = tags("Primary", "zone-" .. S) }, GLOBAL)

-- A region: with https, the listener's certificate is the stack's own for FQDN (ACM's are
-- regional), validated by the CNAME fo puts in the zone and waited for until ISSUED (the
-- zone must be delegated, else the run stops naming its name servers); the ARN given in
-- config otherwise; HTTP only without either.
local function build_region(role_name, region_name, vpc_cidr, capacity, certificate_arn)
  local r = role_name:lower()
  -- the region's key first: declared here, it keeps its top-level name <r>/topic-key
  local key = topic_key(region_name, r, role_name)
  return region(r, {
    role = role_name, region = region_name, vpc_cidr = vpc_cidr, capacity = capacity,
    https = cfg.https and { domain_name = FQDN, zone_id = zone.id,
      timeout = cfg.certificateTimeout } or nil,
    certificate_arn = not cfg.https and certificate_arn ~= "" and certificate_arn or nil,
    cfg = cfg, suffix = S, tags = tags, probes = probes, global_region = GLOBAL, key = key,
    profile = profile, ami = AMI, user_data = user_data(r), log_kinds = LOG_KINDS,
    log_group_name = function(kind) return log_group_name(r, kind) end,
    topic_policy = topic_policy,
  }, { region = region_name })
end

local primary = build_region("Primary", cfg.primaryRegion, cfg.primaryVpcCidr,
  cfg.primaryCapacity, cfg.primaryCertificateArn)
local standby = build_region("Standby", cfg.standbyRegion, cfg.standbyVpcCidr,
  cfg.standbyCapacity, cfg.standbyCertificateArn)

-------------------------------------------------------------------------------
-- Global: DNS failover and its alarm

-- Interval 10 (the fast checkers) × threshold 3: unhealthy about 30 s after a failure.
-- With HTTPS the checkers use the 443 listener (80 only redirects); SNI sends the ALB's
-- name, the ALB answers with its default certificate, and Route 53 does not validate
-- certificates, so the check passes although app.<domainName> is the certificate's name.
local health_check = fo.resource("aws:route53:health_check", "primary", {
  type = HTTPS and "HTTPS" or "HTTP",
  fqdn = primary.alb.dns_name,
  port = HTTPS and 443 or 80,
  resource_path = cfg.healthPath,
  request_interval = 10,
  failure_threshold = 3,
  enable_sni = HTTPS or nil,
  tags = tags("Primary", "health-check-primary-" .. S),
}, { region = GLOBAL, depends_on = { primary.asg, primary.listener } }) -- checked once it serves

-- Failback hold-down (failbackHoldMinutes = N > 0): Route 53 fails back after 3 good checks
-- with no hold-down, so a flapping primary takes the traffic back each time it answers. An
-- alarm on the check's own verdict goes to ALARM on 1 unhealthy minute out of N and back
-- to OK only after N clean minutes; a CLOUDWATCH_METRIC check follows it, and a CALCULATED
-- check (both children healthy) gates the primary record: failover stays immediate (the
-- endpoint check alone turns the gate unhealthy), failback waits N minutes (docs/runbook.md
-- "Failback hold-down").
local gate -- the primary record's check when failback is held
if cfg.failbackHoldMinutes > 0 then
  local hold_alarm = "failback-hold-alarm-primary-" .. S
  local alarm = fo.resource("aws:cloudwatch:alarm", "failback-hold", {
    name = hold_alarm,
    description = ("The primary's health check failed within the last %d minutes: DNS for %s "
      .. "stays on the standby until it has not"):format(cfg.failbackHoldMinutes, FQDN),
    namespace = "AWS/Route53", metric_name = "HealthCheckStatus",
    dimensions = { HealthCheckId = health_check.id },
    statistic = "Minimum", period = 60, evaluation_periods = cfg.failbackHoldMinutes,
    datapoints_to_alarm = 1, comparison_operator = "LessThanThreshold", threshold = 1,
    treat_missing_data = "notBreaching", tags = tags("Primary", hold_alarm),
  }, { region = GLOBAL })
  local hold = fo.resource("aws:route53:health_check", "failback-hold", {
    type = "CLOUDWATCH_METRIC", alarm_identifier = { region = GLOBAL, name = hold_alarm },
    insufficient_data_health_status = "LastKnownStatus",
    tags = tags("Primary", "health-check-failback-hold-" .. S),
  }, { region = GLOBAL, depends_on = alarm }) -- (named, not referenced: say the order)
  gate = fo.resource("aws:route53:health_check", "primary-gate", {
    type = "CALCULATED", child_health_checks = { health_check.id, hold.id }, health_threshold = 2,
    tags = tags("Primary", "health-check-primary-gate-" .. S),
  }, { region = GLOBAL })
  fo.output("failback_hold_minutes", cfg.failbackHoldMinutes)
end

local weights = cfg.manualFailover and { 0, 100 } or { 100, 0 }
for i, side in ipairs({ primary, standby }) do
  local r = side.role:lower()
  local health_check = gate or health_check
  fo.resource("aws:route53:record", r, {
    zone_id = zone.id, name = FQDN, type = "A",
    set_identifier = ("%s-%s"):format(r, S), weight = weights[i],
    health_check_id = side == primary and health_check.id or nil,
    alias = { dns_name = side.alb.dns_name,
      hosted_zone_id = side.alb.canonical_hosted_zone_id, evaluate_target_health = true },
  }, { region = GLOBAL })
end

-- Route 53 publishes HealthCheckStatus only in us-east-1, and an alarm notifies topics of
-- its own region: the alarm and its topic live there.
local global_topic = declare("aws:sns:topic", "global", { name = "failover-topic-global-" .. S,
  kms_master_key_id = topic_key(GLOBAL, "global", "Primary").arn,
  tags = tags("Primary", "failover-topic-global-" .. S) }, GLOBAL)
fo.resource("aws:sns:topic_policy", "global", { topic_arn = global_topic.arn,
  policy = fo.apply(global_topic.arn, topic_policy) }, { region = GLOBAL })
if cfg.alarmEmail ~= "" then
  fo.resource("aws:sns:subscription", "global-email", { topic_arn = global_topic.arn,
    protocol = "email", endpoint = cfg.alarmEmail }, { region = GLOBAL })
end
-- The metric is the check's own verdict (1/0 after its 3 consecutive results): one
-- breaching minute is the verdict, so 1 of 1; no data means the checkers are gone.
local hc_alarm = "health-check-alarm-primary-" .. S
fo.resource("aws:cloudwatch:alarm", "health-check", {
  name = hc_alarm,
  description = ("Route 53 health check of the primary ALB (%s) is unhealthy: DNS for %s "
    .. "now answers with the standby in %s"):format(cfg.primaryRegion, FQDN, cfg.standbyRegion),
  namespace = "AWS/Route53", metric_name = "HealthCheckStatus",
  dimensions = { HealthCheckId = health_check.id },
  statistic = "Minimum", period = 60, evaluation_periods = 1, datapoints_to_alarm = 1,
  threshold = 1, comparison_operator = "LessThanThreshold", treat_missing_data = "breaching",
  alarm_actions = { global_topic.arn }, ok_actions = { global_topic.arn },
  tags = tags("Primary", hc_alarm),
}, { region = GLOBAL })

-------------------------------------------------------------------------------
-- Outputs

fo.output("app_dns_name", FQDN)
fo.output("primary_alb_dns_name", primary.alb.dns_name)
fo.output("standby_alb_dns_name", standby.alb.dns_name)
fo.output("hosted_zone_id", zone.id)
fo.output("name_servers", zone.name_servers)
fo.output("health_check_id", health_check.id)
fo.output("health_check_alarm_name", hc_alarm)
fo.output("table_name", sessions.name)
fo.output("table_arn", sessions.arn)
fo.output("replica_arn", replica_arn)
fo.output("primary_topic_arn", primary.topic.arn)
fo.output("standby_topic_arn", standby.topic.arn)
fo.output("global_topic_arn", global_topic.arn)
fo.output("primary_region", cfg.primaryRegion)
fo.output("standby_region", cfg.standbyRegion)
