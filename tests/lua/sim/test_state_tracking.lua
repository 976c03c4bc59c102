-- What a call changed, as the simulator's state file saves it (fo.sim.store_track): the
-- records a call reads or writes through its service tables are compared with what was
-- saved, and only those that differ are appended to the log — records changed in place at
-- any depth, records deleted, members replaced, records changed in a loop over a table, and
-- what scheduled work changes outside a call. Each test checks that a sim loaded from the
-- file holds exactly what the sim in memory holds, and what the call's log record holds.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"
local simlib = require "fo.sim"
local json = require "fo.json"

local ACCOUNT = "123456789012"
local REGION = "eu-south-1"

-- Handlers on SNS's operations (their names and inputs are the model's; what they do is the
-- test's): `Name` picks a record of db.topics, `Attributes` says what to do to it.
local function topics(ctx)
  ctx.db.topics = ctx.db.topics or {}
  return ctx.db.topics
end

local handlers = { sns = {
  -- a new record with nested tables
  CreateTopic = function(ctx, p)
    topics(ctx)[p.Name] = { name = p.Name, attrs = { a = "1" }, list = { "x" }, n = 1,
      deep = { one = { two = { three = "old" } } } }
    ctx.db.count = (ctx.db.count or 0) + 1
    return { TopicArn = ctx:arn(p.Name) }
  end,
  -- in-place changes of a record read out of the table
  SetTopicAttributes = function(ctx, p)
    local rec = topics(ctx)[p.TopicArn]
    local what = p.AttributeName
    if what == "deep" then rec.deep.one.two.three = p.AttributeValue
    elseif what == "attr" then rec.attrs[p.AttributeValue] = "set"
    elseif what == "unset" then rec.attrs.a = nil
    elseif what == "append" then table.insert(rec.list, p.AttributeValue)
    elseif what == "pop" then table.remove(rec.list, 1)
    elseif what == "float" then rec.n = 1.0 -- same number, not the same JSON
    elseif what == "read" then local _ = rec.deep.one.two.three -- changes nothing
    end
    return {}
  end,
  DeleteTopic = function(ctx, p)
    topics(ctx)[p.TopicArn] = nil
    return {}
  end,
  -- every record changed in a loop over the table
  TagResource = function(ctx, p)
    for _, rec in pairs(topics(ctx)) do rec.attrs.tag = p.Tags[1].Value end
    return {}
  end,
  -- a member replaced whole by another (a view stored back), and a record moved between
  -- members
  UntagResource = function(ctx, p)
    ctx.db.moved = ctx.db.topics
    ctx.db.topics = {}
    ctx.db.topics[p.TagKeys[1]] = ctx.db.moved[p.TagKeys[1]]
    ctx.db.moved[p.TagKeys[1]] = nil
    return {}
  end,
} }

local function new_sim(file)
  return simlib.new{ file = file, handlers = handlers, strict = false }
end

local function call(sim, op, params)
  return sim:invoke("sns", REGION, op, params)
end

-- The changes of the log's last record (decoded; the zeros after the records dropped).
local function last_changes(file)
  local f = assert(io.open((file:gsub("%.json$", "")) .. ".log", "rb"))
  local text = f:read("a"):gsub("%z+$", "")
  f:close()
  local lines = {}
  for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return json.decode(lines[#lines]).changes
end

-- The changes of the last record that are not the id stream's.
local function record_changes(file)
  local out = {}
  for _, c in ipairs(last_changes(file)) do
    if c.set == nil then out[#out + 1] = c end
  end
  return out
end

-- A sim loaded from `file` holds what `sim` holds in memory.
local function assert_reload_equals(sim, file)
  local loaded = new_sim(file)
  lu.assertEquals(loaded.store.data.accounts, sim.store.data.accounts)
  lu.assertEquals(loaded.store.data.id_draws, sim.store.data.id_draws)
  return loaded
end

local function raw_topics(sim)
  return sim.store.data.accounts[ACCOUNT][REGION].sns.topics
end

TestStateTracking = {}

function TestStateTracking.test_in_place_changes_at_any_depth_are_saved_and_only_they()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = new_sim(file)
  for i = 1, 50 do call(sim, "CreateTopic", { Name = "t" .. i }) end
  local cases = {
    { "deep", "new", function(r) return r.deep.one.two.three == "new" end },
    { "attr", "b", function(r) return r.attrs.b == "set" end },
    { "unset", "-", function(r) return r.attrs.a == nil end },
    { "append", "y", function(r) return r.list[2] == "y" end },
    { "pop", "-", function(r) return r.list[1] == "y" and r.list[2] == nil end },
    { "float", "-", function(r) return math.type(r.n) == "float" end },
  }
  for _, c in ipairs(cases) do
    call(sim, "SetTopicAttributes", { TopicArn = "t7", AttributeName = c[1], AttributeValue = c[2] })
    lu.assertTrue(c[3](raw_topics(sim).t7), c[1])
    -- one change: the record changed (not the 50 of its table)
    local changes = record_changes(file)
    lu.assertEquals(#changes, 1, c[1])
    lu.assertEquals({ changes[1].db, changes[1].field, changes[1].entry },
      { { ACCOUNT, REGION, "sns" }, "topics", "t7" }, c[1])
    lu.assertEquals(changes[1].value, raw_topics(sim).t7, c[1])
    local loaded = assert_reload_equals(sim, file)
    lu.assertTrue(c[3](raw_topics(loaded).t7), c[1] .. " after a reload")
  end
  -- a record read but left as it was: nothing to save
  call(sim, "SetTopicAttributes", { TopicArn = "t8", AttributeName = "read", AttributeValue = "-" })
  lu.assertEquals(record_changes(file), {})
  assert_reload_equals(sim, file)
  t.rmtree(dir)
end

function TestStateTracking.test_a_deleted_record_is_saved_as_removed()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = new_sim(file)
  call(sim, "CreateTopic", { Name = "a" })
  call(sim, "CreateTopic", { Name = "b" })
  call(sim, "DeleteTopic", { TopicArn = "a" })
  local changes = record_changes(file)
  lu.assertEquals(#changes, 1)
  lu.assertEquals(changes[1].entry, "a")
  lu.assertNil(changes[1].value)
  local loaded = assert_reload_equals(sim, file)
  lu.assertNil(raw_topics(loaded).a)
  lu.assertNotNil(raw_topics(loaded).b)
  t.rmtree(dir)
end

function TestStateTracking.test_records_changed_in_a_loop_over_their_table_are_saved()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = new_sim(file)
  for i = 1, 5 do call(sim, "CreateTopic", { Name = "t" .. i }) end
  call(sim, "TagResource", { ResourceArn = "x", Tags = { { Key = "k", Value = "v" } } })
  lu.assertEquals(#record_changes(file), 5)
  local loaded = assert_reload_equals(sim, file)
  for i = 1, 5 do lu.assertEquals(raw_topics(loaded)["t" .. i].attrs.tag, "v") end
  t.rmtree(dir)
end

function TestStateTracking.test_members_replaced_whole_and_tables_stored_back_are_saved()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = new_sim(file)
  call(sim, "CreateTopic", { Name = "a" })
  call(sim, "CreateTopic", { Name = "b" })
  call(sim, "UntagResource", { ResourceArn = "x", TagKeys = { "b" } })
  local db = sim.store.data.accounts[ACCOUNT][REGION].sns
  -- what was stored is the state's own tables, not the views a handler holds
  lu.assertNil(getmetatable(db.moved))
  lu.assertNil(getmetatable(db.topics.b))
  lu.assertEquals(db.topics.b.name, "b")
  lu.assertNil(db.topics.a)
  local loaded = assert_reload_equals(sim, file)
  lu.assertEquals(raw_topics(loaded).b.name, "b")
  lu.assertEquals(loaded.store.data.accounts[ACCOUNT][REGION].sns.moved.a.name, "a")
  -- and changes through them go on being saved
  call(sim, "SetTopicAttributes", { TopicArn = "b", AttributeName = "deep", AttributeValue = "v" })
  assert_reload_equals(sim, file)
  t.rmtree(dir)
end

-- Scheduled work runs outside any call: what it changes through sim.store:db is saved with
-- the next call, and so is what code reading the state directly marks with Store:touch.
function TestStateTracking.test_what_scheduled_work_changes_is_saved_with_the_next_call()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = new_sim(file)
  call(sim, "CreateTopic", { Name = "a" })
  call(sim, "CreateTopic", { Name = "b" })
  local now = sim.clock:now()
  sim.clock:at(now + 10, function()
    sim.store:db(ACCOUNT, REGION, "sns").topics.a.deep.one.two.three = "by the clock"
  end)
  sim.clock:at(now + 20, function()
    -- (as the failover model does: the state read directly, its table marked)
    sim.store.data.accounts[ACCOUNT][REGION].sns.topics.b.attrs.a = "touched"
    sim.store:touch(ACCOUNT, REGION, "sns")
  end)
  sim.clock:advance(30)
  lu.assertEquals(raw_topics(sim).a.deep.one.two.three, "by the clock")
  call(sim, "CreateTopic", { Name = "c" })
  local loaded = assert_reload_equals(sim, file)
  lu.assertEquals(raw_topics(loaded).a.deep.one.two.three, "by the clock")
  lu.assertEquals(raw_topics(loaded).b.attrs.a, "touched")
  t.rmtree(dir)
end

-- The real services (SNS, SSM, DynamoDB with its transitions), a seeded mix of calls: the
-- file, snapshot and log replayed, holds what the sim holds, and a call that changes one
-- record of a large table logs that record alone.
function TestStateTracking.test_real_services_reload_equals_memory()
  local dir = t.tmpdir()
  local file = dir .. "/s.sim.json"
  local sim = simlib.new{ file = file, seed = "tracking" }
  local sns = sim:client("sns", { region = REGION })
  local ssm = sim:client("ssm", { region = REGION })
  local ddb = sim:client("dynamodb", { region = REGION })
  local arns = {}
  for i = 1, 10 do arns[i] = sns:CreateTopic{ Name = "topic" .. i }.TopicArn end
  for i = 1, 200 do ssm:PutParameter{ Name = "p" .. i, Value = "v", Type = "String" } end
  ddb:CreateTable{ TableName = "tracked", BillingMode = "PAY_PER_REQUEST",
    AttributeDefinitions = { { AttributeName = "k", AttributeType = "S" } },
    KeySchema = { { AttributeName = "k", KeyType = "HASH" } } }
  local rng = require("fo.sim.rng").new(7, 0)
  for i = 1, 60 do
    local pick = (rng:next() >> 1) % 5
    if pick == 0 then
      sns:SetTopicAttributes{ TopicArn = arns[(i % 10) + 1], AttributeName = "DisplayName",
        AttributeValue = "d" .. i }
    elseif pick == 1 then
      ssm:PutParameter{ Name = "p" .. (i % 200 + 1), Value = "w" .. i, Overwrite = true }
    elseif pick == 2 then
      ssm:LabelParameterVersion{ Name = "p" .. (i % 200 + 1), Labels = { "l" .. i } }
    elseif pick == 3 then
      ssm:DeleteParameter{ Name = "p" .. (i % 200 + 1) }
      ssm:PutParameter{ Name = "p" .. (i % 200 + 1), Value = "again", Type = "String" }
    else
      sim.clock:advance(5) -- the table's CREATING → ACTIVE and what the clock runs
      ddb:PutItem{ TableName = "tracked", Item = { k = { S = "k" .. i }, v = { N = tostring(i) } } }
    end
  end
  assert_reload_equals(sim, file)
  ssm:PutParameter{ Name = "p17", Value = "last", Overwrite = true }
  local changes = record_changes(file)
  lu.assertEquals(#changes, 1)
  lu.assertEquals({ changes[1].field, changes[1].entry }, { "parameters", "p17" })
  assert_reload_equals(sim, file)
  t.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
