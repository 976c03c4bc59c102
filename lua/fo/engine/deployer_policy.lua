-- fo-run --print-policy RECIPE: the IAM policy a deployer needs for this recipe, derived
-- from what fo actually calls. The recipe's whole lifecycle runs on a private in-process
-- simulator (its own temporary state directory; the user's stacks, state and sim files
-- are not touched): an apply, a rerun, an update (every number under 1024 of the stack's
-- config one higher: sizes, counts and thresholds change in place), an update back
-- that fails half-way and rolls back (the sim's fail_mutating_call knob), a rerun that
-- converges, and a destroy. The sim records each authenticated call's IAM action and the
-- resources it is authorized on (fo.sim.authz, fo.sim.authz_resources); the policy allows
-- exactly those: on the ARNs AWS authorizes each action on (the stack's names, generated
-- ids as "*"; EC2 resources, KMS keys and ACM certificates by type, only when tagged
-- fo:stack = <stack>) and on "*" only where AWS authorizes on no resource, plus what AWS
-- checks without fo calling it (iam:PassRole of the instance role and of flow logs'
-- delivery roles, the service-linked roles Elastic Load Balancing, Auto Scaling and
-- DynamoDB replication create, the DynamoDB replica permissions in the replica's region).
-- Running the lifecycle at print time (rather than reading a recorded profile) keeps the
-- policy true to the recipe and config as they are now; transitions take no virtual time
-- there, so it takes about a second. EC2 creates are allowed only with the stack's
-- fo:stack tag in the request.
local authz = require "fo.sim.authz"
local errors = require "fo.engine.errors"

local M = {}

M.MAX_INLINE = 10240 -- IAM: characters of a role's inline policies together

-- Actions AWS checks that fo does not call itself.
local SERVICE_LINKED = { elasticloadbalancing = "elasticloadbalancing.amazonaws.com",
  autoscaling = "autoscaling.amazonaws.com" }
local REPLICA_CREATE = { "dynamodb:CreateTable", "dynamodb:CreateTableReplica", "dynamodb:Scan",
  "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem",
  "dynamodb:DeleteItem", "dynamodb:BatchWriteItem" }
-- Services whose actions keep a statement per resource list (see M.document).
local SEPARATE = { dynamodb = true }
local REPLICA_DELETE = { "dynamodb:DeleteTable", "dynamodb:DeleteTableReplica" }

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

-- Transitions take no virtual time (as in the fault-matrix tests): waiters see the end
-- state at their first poll, and the lifecycle takes a fraction of a second per run.
local TIMING = { lb_provisioning = 0, lb_eni_release = 0, instance_terminate = 0, group_delete = 0,
  profile_propagation = 0, terminated_visible = 0 }

-- Runs the engine on `sim` with DynamoDB's transitions instant (process-wide, restored).
local function run(sim, dir, recipe, stack, config, mode)
  local ddb = require "fo.sim.services.dynamodb"
  local saved, t = ddb.TIMING, {}
  for k in pairs(saved) do t[k] = 0 end
  ddb.TIMING = t
  local out = {}
  local function keep(s) out[#out + 1] = s end
  local ok, code = pcall(require("fo.engine").run, { recipe = recipe, sim = sim, dir = dir,
    stack = stack, config = config, mode = mode, out = keep, err = keep, no_import = true })
  ddb.TIMING = saved
  if not ok then error(code, 0) end
  return code, table.concat(out)
end

-- The lifecycle's steps on one stack. Returns the sim's recorded actions and its account,
-- or raises a fo.engine error naming the step that failed, with its output.
local function lifecycle(recipe, opts)
  local testing = require "fo.testing"
  local stack = opts.stack or "dev"
  -- every zone delegated (registered_domains "*"): what needs public DNS, such as ACM's
  -- validation of a recipe's certificates, works as in an account whose domain is delegated
  local sim = require("fo.sim").new{ seed = "fo-print-policy", record_actions = true,
    registered_domains = { "*" } }
  sim.timing = TIMING
  local dir = testing.tmpdir()
  -- the stack's config file (.fo/<stack>.config.json), when it has one: read, copied into
  -- the private directory, so that the lifecycle runs with the values the real runs get
  local engine = require "fo.engine"
  local found, state_dir = pcall(engine.state_dir, opts.dir, recipe)
  local src = found and io.open(engine.paths(state_dir, stack).config, "rb")
  if src then
    local text = src:read("a")
    src:close()
    local f = assert(io.open(engine.paths(dir, stack).config, "w"))
    f:write(text)
    f:close()
  end
  local function step(what, config, mode, want)
    local ok, code, out = pcall(run, sim, dir, recipe, stack, config, mode)
    if not ok then testing.rmtree(dir); error(code, 0) end
    if not (want or { [0] = true })[code] then
      testing.rmtree(dir)
      errors.raise("recipe", ("--print-policy: the %s on the private simulator exited %d, so "
        .. "the policy would be incomplete; its output:\n%s"):format(what, code, out:sub(-3000)))
    end
    return code
  end
  step("apply", copy(opts.config))
  step("rerun", copy(opts.config))
  -- the config the apply recorded in the stack's state: defaults and the user's values
  local state = require("fo.json").read_file(("%s/%s.state.json"):format(dir, stack))
  local base = type(state) == "table" and state.config or {}
  local bumped, any = copy(opts.config), false
  for k, v in pairs(base) do
    -- sizes, counts and thresholds (recorded numbers: never secrets); not ports (≥ 1024):
    -- a port change replaces target groups and waits out their deregistration delay
    if math.type(v) and v < 1024 and opts.config[k] == nil then
      bumped[k] = tostring(v + 1)
      any = true
    end
  end
  -- a number whose recipe refuses one higher (one of a fixed set, such as a log retention
  -- period) keeps its value: a plan names the key its config check refuses
  while any do
    local code, out = run(sim, dir, recipe, stack, bumped, "plan")
    local refused = code == 1 and out:match("config ([%w_]+) %(%-%-config%)")
    if not refused or bumped[refused] == nil or opts.config[refused] ~= nil then break end
    bumped[refused] = nil
    any = false
    for k in pairs(bumped) do any = any or opts.config[k] == nil end
  end
  if any then
    local before = sim:count{ mutating = true }
    step("update", bumped)
    local n = sim:count{ mutating = true } - before
    -- the update back, failing at a mutating call half-way: rolled back (exit 4) or, past
    -- the commit point, stopped (3); a rerun converges
    sim:set_knob("fail_mutating_call", math.max(1, n // 2 + 1))
    step("update with a failure (rollback)", copy(opts.config), nil,
      { [0] = true, [3] = true, [4] = true })
    sim:set_knob("fail_mutating_call", 0)
    step("rerun after the rollback", copy(opts.config))
  end
  step("destroy", copy(opts.config), "destroy")
  testing.rmtree(dir)
  return sim.actions, sim.account
end

-- A Sid from its service and index: letters and digits only, as IAM requires.
local function sid(prefix, i)
  return (prefix:gsub("[^%w]", ""):gsub("^%l", string.upper)) .. i
end

--- The policy document (a Lua table) for `actions` ({action=, resource=, operation=,
--- region=, service=} as fo.sim.authz records them) made in `account` (its id is replaced
--- by ${aws:PrincipalAccount}: the policy serves any account).
function M.document(actions, account)
  -- action → scope → the fo:stack value every resource under it carried (where the service
  -- evaluates aws:ResourceTag for the action), or false: the scope is allowed unconditionally
  local by_action = {}
  local function generic(arn) return (arn:gsub(account, "${aws:PrincipalAccount}")) end
  local called_in = {} -- action → the regions it was called in (aws:RequestedRegion)
  local function add(action, r, region)
    if authz.UNCHECKED[action] then return end
    called_in[action] = called_in[action] or {}
    if region then called_in[action][region] = true end
    if type(r) == "string" then r = { arn = r } end
    local set = by_action[action] or {}
    by_action[action] = set
    local scope = generic(r.scope or r.arn)
    local stack = r.tags and r.tags["fo:stack"] or false
    if set[scope] == nil then set[scope] = stack
    elseif set[scope] ~= stack then set[scope] = false end
  end
  local function add_all(action, resources, region)
    for _, r in ipairs(resources) do add(action, r, region) end
  end
  local prefixes, roles, linked, flow_roles = {}, {}, {}, {}
  for _, a in ipairs(actions) do
    add_all(a.action, a.resources or { { arn = a.resource } }, a.region)
    prefixes[a.action:match("^([^:]+)")] = true
    if a.action == "iam:CreateRole" then roles[a.resource] = true end
    if a.passed_role then flow_roles[a.passed_role] = true end
  end
  -- DynamoDB replicas: what AWS checks in the replica's region (the table's ARN there)
  for _, a in ipairs(actions) do
    if a.action == "dynamodb:UpdateTable" and a.replicas then
      for region, kind in pairs(a.replicas) do
        local arn = a.resource:gsub("^(arn:aws:dynamodb:)[^:]+", "%1" .. region)
        for _, act in ipairs(kind == "Create" and REPLICA_CREATE or REPLICA_DELETE) do
          add(act, arn, region)
        end
        linked["replication.dynamodb.amazonaws.com"] = true
      end
    end
  end
  -- calls that create a resource: Create*, and EC2's AllocateAddress (an Elastic IP)
  local function creates(a)
    return a.operation:match("^Create") ~= nil
      or (a.service == "ec2" and a.operation == "AllocateAddress")
  end
  -- tags set by a create call need the tagging action too (EC2: ec2:CreateTags, limited
  -- to create calls by ec2:CreateAction; ELB: AddTags; Auto Scaling: CreateOrUpdateTags;
  -- S3: TagResource)
  local tag_on_create = {}
  for _, a in ipairs(actions) do
    if a.tagged and creates(a) then
      if a.service == "ec2" then tag_on_create[#tag_on_create + 1] = a.operation
      elseif a.service == "elbv2" then add_all("elasticloadbalancing:AddTags", a.resources, a.region)
      elseif a.service == "autoscaling" then
        add_all("autoscaling:CreateOrUpdateTags", a.resources, a.region)
      end
    end
    -- S3: a bucket tagged in CreateBucket (fo's always is) needs s3:TagResource
    if a.action == "s3:CreateBucket" then add_all("s3:TagResource", a.resources, a.region) end
  end
  -- EC2 creates whose every call tags the new resource fo:stack = <the stack>: allowed only
  -- with that tag in the request (aws:RequestTag), in a statement of their own
  local ec2_creates = {}
  for _, a in ipairs(actions) do
    if a.service == "ec2" and creates(a) then
      local v = a.request_tags["aws:RequestTag/fo:stack"]
      local was = ec2_creates[a.action]
      if v == nil or (was ~= nil and was ~= v) then ec2_creates[a.action] = false
      elseif was == nil then ec2_creates[a.action] = v end
    end
  end
  local tagged_creates = {}
  for action, v in pairs(ec2_creates) do
    if v then
      tagged_creates[#tagged_creates + 1] = action
      by_action[action] = nil
    end
  end
  table.sort(tagged_creates)
  -- Statements (the policy must stay within IAM's 10,240 characters for a role's inline
  -- policies, so actions share statements where that grants nothing more):
  -- - NoResourceScope: the actions any call made on "*" (AWS authorizes them on no resource);
  -- - StackTagged: actions on resources whose service evaluates aws:ResourceTag for them
  --   (EC2 resources, KMS keys), each type's ARN with any id, only with the stack's fo:stack
  --   tag, in the stack's regions (aws:RequestedRegion: a regional call acts in its region);
  -- - StackResources: the other actions on the ARNs the lifecycle used (names the stack
  --   chose, generated ids as "*"), in the regions the actions were called in (the ARNs'
  --   region as "*" and aws:RequestedRegion: the names carry the stack's region role);
  -- - DynamoDB: a statement per resource list (its actions differ by table region: the
  --   replica's permissions are checked in the replica's region only). A resource of a type an action is not authorized on grants that action
  --   nothing, so one resource list serves many actions of several services.
  local groups, order = {}, {}
  local names = {}
  for action in pairs(by_action) do names[#names + 1] = action end
  table.sort(names)
  local function group(key, action, list, extra)
    local g = groups[key]
    if not g then
      g = { key = key, resources = {}, seen = {}, actions = {}, regions = {}, extra = extra }
      groups[key] = g
      order[#order + 1] = key
    end
    local regional = extra and extra.regional
    for _, r in ipairs(list) do
      -- the ARN's region as "*", the regions the actions were called in as the condition
      if regional then r = r:gsub("^(arn:aws:[^:]+:)[^:]+:", "%1*:") end
      if not g.seen[r] then g.seen[r] = true; g.resources[#g.resources + 1] = r end
    end
    if regional then
      for region in pairs(called_in[action] or {}) do g.regions[region] = true end
    end
    table.insert(g.actions, action)
  end
  for _, action in ipairs(names) do
    local prefix = action:match("^([^:]+)")
    local set = by_action[action]
    if set["*"] ~= nil then
      group("NoResourceScope", action, { "*" })
    else
      local plain, tagged = {}, {} -- stack → scopes
      for scope, stack in pairs(set) do
        if stack then
          tagged[stack] = tagged[stack] or {}
          table.insert(tagged[stack], scope)
        else
          plain[#plain + 1] = scope
        end
      end
      table.sort(plain)
      if #plain > 0 then
        group(SEPARATE[prefix] and (prefix .. "\0" .. table.concat(plain, "\0")) or "StackResources",
          action, plain, { prefix = SEPARATE[prefix] and prefix, regional = not SEPARATE[prefix] })
      end
      for stack, list in pairs(tagged) do
        table.sort(list)
        group("StackTagged\0" .. stack, action, list, { stack = stack, regional = true })
      end
    end
  end
  table.sort(order, function(x, y)
    local rank = { NoResourceScope = 1, StackResources = 3 }
    local rx, ry = rank[x] or (x:match("^StackTagged") and 2 or 4), rank[y] or (y:match("^StackTagged") and 2 or 4)
    if rx ~= ry then return rx < ry end
    return x < y
  end)
  local statements, count = {}, {}
  for _, key in ipairs(order) do
    local g = groups[key]
    table.sort(g.resources)
    local prefix, stack = g.extra and g.extra.prefix, g.extra and g.extra.stack
    local name = key
    if prefix then
      count[prefix] = (count[prefix] or 0) + 1
      name = sid(prefix, count[prefix])
    elseif stack then
      name = "StackTagged"
    end
    local condition
    if g.extra and g.extra.regional then
      local regions = {}
      for r in pairs(g.regions) do regions[#regions + 1] = r end
      table.sort(regions)
      condition = { StringEquals = { ["aws:ResourceTag/fo:stack"] = stack,
        ["aws:RequestedRegion"] = #regions == 1 and regions[1] or regions } }
    end
    statements[#statements + 1] = { Sid = name, Effect = "Allow", Action = g.actions,
      Resource = #g.resources == 1 and g.resources[1] or g.resources, Condition = condition }
  end
  if #tagged_creates > 0 then
    statements[#statements + 1] = { Sid = "Ec2CreateStackTagged", Effect = "Allow",
      Action = tagged_creates, Resource = "*", Condition = { StringEquals = {
        ["aws:RequestTag/fo:stack"] = ec2_creates[tagged_creates[1]] } } }
  end
  if #tag_on_create > 0 then
    local seen, ops = {}, {}
    for _, op in ipairs(tag_on_create) do
      if not seen[op] then seen[op] = true; ops[#ops + 1] = op end
    end
    table.sort(ops)
    statements[#statements + 1] = { Sid = "Ec2TagOnCreate", Effect = "Allow",
      Action = "ec2:CreateTags", Resource = "*",
      Condition = { StringEquals = { ["ec2:CreateAction"] = #ops == 1 and ops[1] or ops } } }
  end
  -- the instance role, passed to EC2 by the launch templates / instances
  local passed = {}
  for r in pairs(roles) do
    if not flow_roles[r] then passed[#passed + 1] = (r:gsub(":" .. account .. ":", ":${aws:PrincipalAccount}:")) end
  end
  table.sort(passed)
  if #passed > 0 and (prefixes.ec2 or prefixes.autoscaling) then
    statements[#statements + 1] = { Sid = "PassInstanceRole", Effect = "Allow",
      Action = "iam:PassRole", Resource = #passed == 1 and passed[1] or passed,
      Condition = { StringEquals = { ["iam:PassedToService"] = "ec2.amazonaws.com" } } }
  end
  -- the flow logs' delivery roles, passed with CreateFlowLogs (the VPC User Guide's
  -- permission: iam:PassRole on the role)
  local flow_passed = {}
  for r in pairs(flow_roles) do
    flow_passed[#flow_passed + 1] = (r:gsub(":" .. account .. ":", ":${aws:PrincipalAccount}:"))
  end
  table.sort(flow_passed)
  if #flow_passed > 0 then
    statements[#statements + 1] = { Sid = "PassFlowLogsRoles", Effect = "Allow",
      Action = "iam:PassRole", Resource = #flow_passed == 1 and flow_passed[1] or flow_passed }
  end
  for prefix, name in pairs(SERVICE_LINKED) do
    if prefixes[prefix] then linked[name] = true end
  end
  local services = {}
  for name in pairs(linked) do services[#services + 1] = name end
  table.sort(services)
  if #services > 0 then
    statements[#statements + 1] = { Sid = "ServiceLinkedRoles", Effect = "Allow",
      Action = "iam:CreateServiceLinkedRole",
      Resource = "arn:aws:iam::${aws:PrincipalAccount}:role/aws-service-role/*",
      Condition = { StringEquals = { ["iam:AWSServiceName"] = #services == 1 and services[1]
        or services } } }
  end
  return { Version = "2012-10-17", Statement = statements }
end

--- The policy of `recipe` with opts (stack, config: as the run would get them) as JSON text.
function M.text(recipe, opts)
  local actions, account = lifecycle(recipe, opts)
  return require("fo.json").encode(M.document(actions, account))
end

--- fo-run --print-policy: prints the policy; returns the exit code.
function M.main(opts)
  local ok, text = pcall(M.text, opts.recipe, opts)
  if not ok then
    if not errors.is(text) then error(text, 0) end
    io.stderr:write("fo-run: ", text.message, "\n")
    return errors.exit_code(text)
  end
  io.stdout:write(text, "\n")
  -- IAM's quota for a role's inline policies together (white space not counted)
  local size = #(text:gsub("%s", ""))
  if size > M.MAX_INLINE then
    io.stderr:write(("fo-run: warning: this policy is %d characters (without white space); "
      .. "IAM allows %d for a role's inline policies together: attach its statements as "
      .. "customer managed policies instead (at most 6,144 characters each)\n"):format(size,
      M.MAX_INLINE))
  end
  return errors.EXIT.ok
end

return M
