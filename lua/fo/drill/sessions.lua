-- The drill's sessions in the stack's DynamoDB global table (output table_name): each
-- client's session item is written in the primary region before the outage and read from
-- the standby's replica after the switch, through the simulator's DynamoDB handlers called
-- directly (internal calls: nothing is recorded or saved). An item says when it was
-- written (before_outage: d for d - 0.5 s before the outage); a read that finds an older
-- one, or none, is a session lost to the replication lag.
local ctx_mod = require "fo.sim.ctx"

local M = {}

local function ctx(sim, op, region)
  return ctx_mod.new{ sim = sim, service = "dynamodb", operation = op, region = region,
    account = sim.account }
end

-- The table's partition key name (nil when the table is not in `region`).
local function hash_key(sim, name, region)
  local ok, out = pcall(sim:_handlers("dynamodb").DescribeTable, ctx(sim, "DescribeTable", region),
    { TableName = name })
  if not ok then return nil end
  for _, k in ipairs(out.Table.KeySchema or {}) do
    if k.KeyType == "HASH" then return k.AttributeName end
  end
end

local function key(i) return ("fo-drill-client-%05d"):format(i) end

--- fn(i, d): writes client i's session, made d seconds before the outage, in `region`;
--- nil when the table is not there.
function M.writer(sim, o, region)
  local hash = hash_key(sim, o.table_name, region)
  if not hash then return nil end
  local put = sim:_handlers("dynamodb").PutItem
  return function(i, d)
    put(ctx(sim, "PutItem", region), { TableName = o.table_name,
      Item = { [hash] = { S = key(i) }, before_outage = { N = tostring(d) } } })
  end
end

--- fn(i, client) → true when the standby's replica in `region` has the client's last
--- session write (client.last seconds before the outage).
function M.reader(sim, o, region)
  local hash = hash_key(sim, o.table_name, region)
  if not hash then return nil end
  local get = sim:_handlers("dynamodb").GetItem
  return function(i, c)
    local ok, out = pcall(get, ctx(sim, "GetItem", region), { TableName = o.table_name,
      Key = { [hash] = { S = key(i) } } })
    local item = ok and out.Item
    return item ~= nil and tonumber(item.before_outage.N) == c.last
  end
end

return M
