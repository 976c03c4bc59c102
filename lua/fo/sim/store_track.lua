-- Which records of the simulator's state a call may have changed, so that saving it
-- (fo.sim.store) compares those records with what was saved instead of whole service
-- tables: O(change) per call, not O(size of the table).
--
-- A service table (account → region → service) is handed to the handlers as a view: an
-- empty table whose metatable reads and writes the real one. Its members that are tables
-- (a service's maps of resources by id, and its lists) are views too, one level down.
-- What goes through them is marked, per service table:
--   * writing a member (db.seq = n, db.topics = {...}): that member is compared whole;
--   * reading a record out of a member (db.parameters[name]) or writing one: that
--     record is compared — the record itself is the real table, so a handler may change
--     it in place, at any depth, as before: it was marked when it was handed out;
--   * iterating a member (pairs): every record of that member is compared (a loop may
--     change any of them);
--   * a service table created, or marked by Store:touch (code that reads the state
--     directly, like the failover model's scheduled work): compared whole.
-- The marks gather until the next save of the changes (fo.sim.store), which reads them
-- and starts new ones. That save runs after a call's handler has returned, and handlers do
-- not yield to the event loop, so a record handed out is changed before the save that
-- takes its mark; code that keeps a record across calls (scheduled work) must fetch it
-- again through Store:db, or mark its table with Store:touch, when it changes it. Handlers keep using the views as tables: indexing, assignment,
-- pairs, ipairs, #, table.insert/remove/sort/concat all go through the metatable (Lua
-- 5.4); only next() and rawget/rawset on a view see an empty table (the real table is
-- M.raw(view)).
local M = {}

--- The mark of a member compared whole (rather than a set of its records).
M.ALL = true

-- view → the real table (weak: a view lives as long as someone holds it)
local RAW = setmetatable({}, { __mode = "k" })

--- The real table behind `v` when it is a view, else `v`.
function M.raw(v)
  return RAW[v] or v
end

-- `v` with the views in it replaced by their real tables (a handler may store what it
-- read through a view: a record copied from another, a list taken whole).
local function unwrap(v, seen)
  if type(v) ~= "table" then return v end
  local r = RAW[v]
  if r then return r end
  seen = seen or {}
  if seen[v] then return v end
  seen[v] = true
  for k, x in pairs(v) do
    if type(x) == "table" then
      local u = unwrap(x, seen)
      if u ~= x then v[k] = u end
    end
  end
  return v
end

-- The marks of the service table at `key` in `marks` (created empty).
local function marks_of(tracker, key, db)
  local m = tracker.marks[key]
  if not m then
    m = { db = db, fields = {} }
    tracker.marks[key] = m
  end
  return m
end

local function mark_member(tracker, key, db, field)
  marks_of(tracker, key, db).fields[field] = M.ALL
end

local function mark_entry(tracker, key, db, field, entry)
  local fields = marks_of(tracker, key, db).fields
  local f = fields[field]
  if f == M.ALL then return end
  if not f then
    f = {}
    fields[field] = f
  end
  f[entry] = true
end

-- The view of member `field` (the real table `t`) of the service table at `key`.
local function member_view(tracker, key, db, field, t)
  local v = tracker.views[t]
  if v then return v end
  v = setmetatable({}, {
    __index = function(_, entry)
      local x = t[entry]
      -- a record handed out may be changed in place: compared at the next save
      if type(x) == "table" then mark_entry(tracker, key, db, field, entry) end
      return x
    end,
    __newindex = function(_, entry, x)
      t[entry] = unwrap(x)
      mark_entry(tracker, key, db, field, entry)
    end,
    __pairs = function()
      mark_member(tracker, key, db, field)
      return next, t, nil
    end,
    __len = function() return #t end,
  })
  RAW[v] = t
  tracker.views[t] = v
  return v
end

-- The view of the service table `d` at `key` (db = {account, region, service}).
local function table_view(tracker, key, db, d)
  local v = tracker.views[d]
  if v then return v end
  v = setmetatable({}, {
    __index = function(_, field)
      local x = d[field]
      if type(x) == "table" then return member_view(tracker, key, db, field, x) end
      return x
    end,
    __newindex = function(_, field, x)
      x = unwrap(x)
      -- (db.topics = db.topics or {}: the same table again, nothing changed)
      if d[field] == x and type(x) == "table" then return end
      d[field] = x
      mark_member(tracker, key, db, field)
    end,
    __pairs = function()
      return function(_, field)
        local k, x = next(d, field)
        if type(x) == "table" then x = member_view(tracker, key, db, k, x) end
        return k, x
      end, v, nil
    end,
    __len = function() return #d end,
  })
  RAW[v] = d
  tracker.views[d] = v
  return v
end

--- A tracker: { marks = { [key] = { db = {account, region, service}, whole = bool,
--- fields = { [member] = M.ALL or { [record key] = true } } } } }.
function M.new()
  return { marks = {}, views = setmetatable({}, { __mode = "k" }) }
end

--- The view of the service table `d` (key: its account, region and service joined by
--- "\0"; db: {account, region, service}); `created`: it was just made (saved whole).
function M.view(tracker, key, db, d, created)
  if created then marks_of(tracker, key, db).whole = true end
  return table_view(tracker, key, db, d)
end

--- Marks the service table at `key` to be compared whole, or its member `member` alone.
function M.touch(tracker, key, db, member)
  if member ~= nil then return mark_member(tracker, key, db, member) end
  marks_of(tracker, key, db).whole = true
end

--- The marks gathered so far, and new ones begun.
function M.take(tracker)
  local marks = tracker.marks
  tracker.marks = {}
  return marks
end

return M
