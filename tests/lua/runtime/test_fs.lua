-- fo.fs: atomic writes (content, mode, no temp file left, errors naming the path), durable
-- appends, mkdir_p, exists, listdir and mode.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local t = require "support.testlib"

local function listing(dir)
  local r = fo.process.run{ argv = { "ls", "-A", dir } }
  return r.stdout
end

local function mode_of(path)
  return fo.process.run{ argv = { "stat", "-c", "%a", path } }.stdout:gsub("%s+$", "")
end

TestFs = {}

function TestFs.test_write_atomic_replaces_content_with_mode_0600_and_no_temp_file()
  local dir = t.tmpdir()
  local path = dir .. "/state.json"
  lu.assertTrue(fo.fs.write_atomic(path, "one"))
  lu.assertTrue(fo.fs.write_atomic(path, "two\0bytes"))
  lu.assertEquals(t.read(path), "two\0bytes")
  lu.assertEquals(mode_of(path), "600")
  lu.assertEquals(listing(dir), "state.json\n")
  fo.fs.write_atomic(dir .. "/pub", "x", tonumber("644", 8))
  lu.assertEquals(mode_of(dir .. "/pub"), "644")
  t.rmtree(dir)
end

function TestFs.test_write_atomic_errors_name_the_path()
  local dir = t.tmpdir()
  local ok, e = pcall(fo.fs.write_atomic, dir .. "/missing/state.json", "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, dir .. "/missing/state.json")
  lu.assertStrContains(e, "No such file or directory")
  fo.fs.mkdir_p(dir .. "/target.json")
  ok, e = pcall(fo.fs.write_atomic, dir .. "/target.json", "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "rename")
  lu.assertEquals(listing(dir), "target.json\n") -- the temp file was removed
  t.rmtree(dir)
end

function TestFs.test_append_adds_to_the_end_creates_0600_and_returns_the_size()
  local dir = t.tmpdir()
  local path = dir .. "/state.log"
  lu.assertEquals(fo.fs.append(path, "one\n"), 4)
  lu.assertEquals(mode_of(path), "600")
  lu.assertEquals(fo.fs.append(path, "two\0\n"), 9)
  lu.assertEquals(t.read(path), "one\ntwo\0\n")
  lu.assertEquals(fo.fs.append(path, ""), 9)
  fo.fs.append(dir .. "/pub", "x", tonumber("640", 8))
  lu.assertEquals(mode_of(dir .. "/pub"), "640")
  local ok, e = pcall(fo.fs.append, dir .. "/missing/state.log", "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, dir .. "/missing/state.log")
  lu.assertStrContains(e, "No such file or directory")
  t.rmtree(dir)
end

function TestFs.test_mode_gives_permission_bits_or_nil()
  local dir = t.tmpdir()
  local path = dir .. "/key"
  lu.assertNil(fo.fs.mode(path))
  fo.fs.write_atomic(path, "x", tonumber("600", 8))
  lu.assertEquals(fo.fs.mode(path), tonumber("600", 8))
  fo.process.run{ argv = { "chmod", "644", path } }
  lu.assertEquals(fo.fs.mode(path), tonumber("644", 8))
  t.rmtree(dir)
end

function TestFs.test_mkdir_p_and_exists()
  local dir = t.tmpdir()
  lu.assertFalse(fo.fs.exists(dir .. "/a"))
  lu.assertTrue(fo.fs.mkdir_p(dir .. "/a/b/c"))
  lu.assertTrue(fo.fs.mkdir_p(dir .. "/a/b/c/")) -- again: fine
  lu.assertTrue(fo.fs.exists(dir .. "/a/b/c"))
  lu.assertEquals(mode_of(dir .. "/a/b"), "700")
  t.write(dir .. "/file", "x")
  local ok, e = pcall(fo.fs.mkdir_p, dir .. "/file/sub")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "a file of that name exists")
  t.rmtree(dir)
end

function TestFs.test_listdir_names_every_entry_or_says_why_not()
  local dir = t.tmpdir()
  lu.assertEquals(fo.fs.listdir(dir), {})
  t.write(dir .. "/b.state.json", "{}")
  t.write(dir .. "/.hidden", "")
  fo.fs.mkdir_p(dir .. "/sub")
  local names = fo.fs.listdir(dir)
  table.sort(names)
  lu.assertEquals(names, { ".hidden", "b.state.json", "sub" })
  local none, why = fo.fs.listdir(dir .. "/missing")
  lu.assertNil(none)
  lu.assertEquals(why, dir .. "/missing: No such file or directory")
  t.rmtree(dir)
end

function TestFs.test_isatty_is_false_off_a_terminal_and_checks_its_argument()
  local f = io.open(t.tests_dir .. "/lua/runtime/test_fs.lua")
  lu.assertFalse(fo.fs.isatty(f))
  f:close()
  lu.assertErrorMsgContains("attempt to use a closed file", fo.fs.isatty, f)
  lu.assertFalse(fo.fs.isatty(-1))
  lu.assertFalse(fo.fs.isatty(999999))
  lu.assertErrorMsgContains("file or descriptor expected, got string", fo.fs.isatty, "0")
  lu.assertErrorMsgContains("number has no integer representation", fo.fs.isatty, 1.5)
  lu.assertErrorMsgContains("descriptor out of range", fo.fs.isatty, math.maxinteger)
  -- fo.process.run gives a child /dev/null as stdin and pipes as stdout
  local r = t.run_fo({ "-e", "print(fo.fs.isatty(io.stdin), fo.fs.isatty(0), fo.fs.isatty(1))" })
  lu.assertEquals(r.stdout, "false\tfalse\tfalse\n", r.stderr)
end

function TestFs.test_isatty_is_true_on_a_pseudo_terminal()
  lu.skipIf(not t.has_command("script"), "script(1) (util-linux) is needed for a pseudo-terminal")
  -- script(1) runs the command with stdin, stdout and stderr on a new pseudo-terminal
  local r = fo.process.run{ argv = { "script", "-qec", t.fo_run
    .. " -e 'print(fo.fs.isatty(io.stdin), fo.fs.isatty(io.stdout), fo.fs.isatty(2))'",
    "/dev/null" } }
  lu.assertEquals(r.code, 0, r.stderr)
  lu.assertStrContains(r.stdout, "true\ttrue\ttrue")
end

-- append_async: the same append, the task waiting while others run; only from a task.
function TestFs.test_append_async_appends_while_other_tasks_run()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  lu.assertEquals(fo.fs.append_async(path, "one\n"), 4)
  lu.assertEquals(mode_of(path), "600")
  local ticks, done = 0, false
  local other = fo.spawn(function()
    while not done do ticks = ticks + 1; fo.sleep(0) end
  end)
  local sizes = {}
  for i = 1, 20 do sizes[i] = fo.fs.append_async(path, "two\0\n") end
  done = true
  other:join()
  lu.assertEquals(sizes[20], 4 + 20 * 5)
  lu.assertTrue(ticks > 0, "another task ran while the appends waited")
  lu.assertEquals(t.read(path), "one\n" .. ("two\0\n"):rep(20))
  fo.fs.append_async(dir .. "/pub", "x", tonumber("640", 8))
  lu.assertEquals(mode_of(dir .. "/pub"), "640")
  local ok, e = pcall(fo.fs.append_async, dir .. "/missing/sim.log", "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, dir .. "/missing/sim.log")
  lu.assertStrContains(e, "No such file or directory")
  ok, e = pcall(coroutine.wrap(function() return fo.fs.append_async(path, "x") end))
  lu.assertFalse(ok)
  lu.assertStrContains(e, "task")
  lu.assertEquals(#t.read(path), 4 + 20 * 5, "nothing written outside a task")
  t.rmtree(dir)
end

-- append_async from several tasks at once: the appends land whole, in the order they were
-- made (one writer thread runs them in turn), each answered with the size it left.
function TestFs.test_append_async_from_several_tasks_lands_in_order()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  local sizes, tasks = {}, {}
  for i = 1, 8 do
    tasks[i] = fo.spawn(function() sizes[i] = fo.fs.append_async(path, ("%d\n"):format(i)) end)
  end
  for _, task in ipairs(tasks) do task:join() end
  lu.assertEquals(t.read(path), "1\n2\n3\n4\n5\n6\n7\n8\n")
  for i = 1, 8 do lu.assertEquals(sizes[i], 2 * i) end
  t.rmtree(dir)
end

-- After an append to a file failed, the appends queued behind it to the same file fail too
-- (none lands after a record that may be torn); other files are not affected.
function TestFs.test_append_async_after_a_failed_one_to_that_file_fails()
  local dir = t.tmpdir()
  local results = {}
  local tasks = {}
  for i = 1, 2 do
    tasks[i] = fo.spawn(function() results[i] = { pcall(fo.fs.append_async, "/dev/full", "x\n") } end)
  end
  for _, task in ipairs(tasks) do task:join() end
  lu.assertFalse(results[1][1])
  lu.assertStrContains(results[1][2], "cannot write '/dev/full'")
  lu.assertFalse(results[2][1])
  lu.assertStrContains(results[2][2], "an earlier append to it failed")
  local ok, e = pcall(fo.fs.append_async, "/dev/full", "x\n")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "an earlier append to it failed")
  lu.assertEquals(fo.fs.append_async(dir .. "/other.log", "y\n"), 2)
  t.rmtree(dir)
end

-- The file an append goes to is the one its path names when it is made: after the file was
-- replaced by a rename (as a fold rewrites a log) or deleted, appends go to the new file,
-- counting its size from there; the old file gets nothing more.
function TestFs.test_append_async_follows_the_file_its_path_names()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  lu.assertEquals(fo.fs.append_async(path, "old\n"), 4)
  lu.assertTrue(os.rename(path, dir .. "/kept.log"))
  fo.fs.write_atomic(path, "header\n")
  lu.assertEquals(fo.fs.append_async(path, "new\n"), 11)
  lu.assertEquals(t.read(path), "header\nnew\n")
  lu.assertEquals(t.read(dir .. "/kept.log"), "old\n")
  lu.assertTrue(os.remove(path))
  lu.assertEquals(fo.fs.append_async(path, "again\n", tonumber("640", 8)), 6)
  lu.assertEquals(mode_of(path), "640", "a new file, made with the mode asked")
  lu.assertEquals(t.read(path), "again\n")
  lu.assertEquals(t.read(dir .. "/kept.log"), "old\n")
  t.rmtree(dir)
end

-- append_kept: the same append on the calling thread, to a file kept open between appends;
-- the task does not yield (no other task runs until it returns), outside a task too.
function TestFs.test_append_kept_appends_without_yielding()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  lu.assertEquals(fo.fs.append_kept(path, "one\n"), 4)
  lu.assertEquals(mode_of(path), "600")
  local ticks, sizes = 0, {}
  fo.spawn(function()
    local other = fo.spawn(function()
      while #sizes < 20 do ticks = ticks + 1; fo.sleep(0) end
    end)
    for i = 1, 20 do sizes[i] = fo.fs.append_kept(path, "two\0\n") end
    other:join()
  end):join()
  lu.assertEquals(sizes[1], 9)
  lu.assertEquals(sizes[20], 4 + 20 * 5)
  lu.assertEquals(ticks, 0, "no other task ran while the appends were written")
  lu.assertEquals(t.read(path), "one\n" .. ("two\0\n"):rep(20))
  fo.fs.append_kept(dir .. "/pub", "x", tonumber("640", 8))
  lu.assertEquals(mode_of(dir .. "/pub"), "640")
  local ok, e = pcall(fo.fs.append_kept, dir .. "/missing/sim.log", "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "cannot open '" .. dir .. "/missing/sim.log': No such file or directory")
  t.rmtree(dir)
end

-- As append_async, append_kept goes to the file its path names: after a rename over it or
-- a delete, to the new file; the old one gets nothing more.
function TestFs.test_append_kept_follows_the_file_its_path_names()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  lu.assertEquals(fo.fs.append_kept(path, "old\n"), 4)
  lu.assertTrue(os.rename(path, dir .. "/kept.log"))
  fo.fs.write_atomic(path, "header\n")
  lu.assertEquals(fo.fs.append_kept(path, "new\n"), 11)
  lu.assertEquals(t.read(path), "header\nnew\n")
  lu.assertTrue(os.remove(path))
  lu.assertEquals(fo.fs.append_kept(path, "again\n", tonumber("640", 8)), 6)
  lu.assertEquals(mode_of(path), "640", "a new file, made with the mode asked")
  lu.assertEquals(t.read(path), "again\n")
  lu.assertEquals(t.read(dir .. "/kept.log"), "old\n")
  t.rmtree(dir)
end

-- With a reserve, append_kept keeps that many zeros written past the data (a flush then
-- commits no new size) and answers where the data ends; the next append overwrites the
-- zeros, and so does one from another process, which finds the end of the data again.
function TestFs.test_append_kept_with_a_reserve_writes_over_zeros_kept_ahead()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  lu.assertEquals(fo.fs.append_kept(path, "one\n", nil, 100), 4)
  lu.assertEquals(t.read(path), "one\n" .. ("\0"):rep(100))
  lu.assertEquals(fo.fs.append_kept(path, "two\n", nil, 100), 8)
  lu.assertEquals(t.read(path), "one\ntwo\n" .. ("\0"):rep(96))
  -- past the zeros: more are written after the data
  lu.assertEquals(fo.fs.append_kept(path, ("x"):rep(199) .. "\n", nil, 100), 208)
  lu.assertEquals(t.read(path), "one\ntwo\n" .. ("x"):rep(199) .. "\n" .. ("\0"):rep(100))
  local r = t.run_fo({ "-e", ("print(fo.fs.append_kept(%q, 'three\\n', nil, 100))"):format(path) })
  lu.assertEquals(r.stdout, "214\n", r.stderr)
  lu.assertEquals(t.read(path), "one\ntwo\n" .. ("x"):rep(199) .. "\nthree\n" .. ("\0"):rep(94))
  local ok, e = pcall(fo.fs.append_async, path, "x")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "keeps a reserve of zeros")
  lu.assertErrorMsgContains("reserve out of range", fo.fs.append_kept, path, "x", nil, -1)
  t.rmtree(dir)
end

-- Two processes appending with a reserve to one file at once (O_APPEND cannot serve: the
-- data ends before the file does): each finds the other's records and writes after them,
-- none is overwritten, and each is told an end past what it alone wrote (what the
-- simulator's log takes for another writer: it then writes its whole state).
function TestFs.test_append_kept_with_a_reserve_from_two_processes_loses_no_record()
  local dir = t.tmpdir()
  local path = dir .. "/sim.log"
  local script = dir .. "/writer.lua"
  t.write(script, ([[
    local who, mine, foreign = arg[1], 0, false
    for i = 1, 400 do
      local line = ("%%s %%03d %%s\n"):format(who, i, ("x"):rep(40))
      mine = mine + #line
      local at = fo.fs.append_kept(%q, line, nil, 4096)
      if at ~= mine then foreign = true end
    end
    print(foreign and "saw the other" or "alone")
  ]]):format(path))
  local a = fo.spawn(t.run_fo, { script, "a" })
  local b = fo.spawn(t.run_fo, { script, "b" })
  local ra, rb = a:join(), b:join()
  lu.assertEquals({ ra.code, rb.code }, { 0, 0 }, ra.stderr .. rb.stderr)
  local text = t.read(path):gsub("%z+$", "")
  local lines, seen = 0, {}
  for line in text:gmatch("([^\n]*)\n") do
    lines = lines + 1
    lu.assertStrMatches(line, "[ab] %d%d%d " .. ("x"):rep(40))
    seen[line:sub(1, 5)] = true
  end
  lu.assertEquals(#text, 800 * 47, "every byte is a record's")
  lu.assertEquals(lines, 800)
  for _, who in ipairs({ "a", "b" }) do
    for i = 1, 400 do lu.assertTrue(seen[("%s %03d"):format(who, i)], who .. i) end
  end
  -- one of them at least wrote after the other's records, and was told so
  lu.assertStrContains(ra.stdout .. rb.stdout, "saw the other")
  t.rmtree(dir)
end

-- After an append_kept to a file failed, the next ones to that file fail too (none lands
-- after a record that may be torn); other files are not affected.
function TestFs.test_append_kept_after_a_failed_one_to_that_file_fails()
  local dir = t.tmpdir()
  local ok, e = pcall(fo.fs.append_kept, "/dev/full", "x\n")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "cannot write '/dev/full'")
  ok, e = pcall(fo.fs.append_kept, "/dev/full", "x\n")
  lu.assertFalse(ok)
  lu.assertStrContains(e, "an earlier append to it failed")
  lu.assertEquals(fo.fs.append_kept(dir .. "/other.log", "y\n"), 2)
  t.rmtree(dir)
end

-- Appends queued together (more than one writev takes) to two files land each in its own
-- file, in order, each answered with the size it left in its file.
function TestFs.test_append_async_to_two_files_at_once_lands_in_each()
  local dir = t.tmpdir()
  local right, tasks, want = 0, {}, { a = {}, b = {} }
  for i = 1, 299 do
    local name = i % 3 == 0 and "b" or "a"
    local line = ("%03d\n"):format(i)
    table.insert(want[name], line)
    local size = 4 * #want[name]
    tasks[i] = fo.spawn(function()
      if fo.fs.append_async(("%s/%s.log"):format(dir, name), line) == size then right = right + 1 end
    end)
  end
  for _, task in ipairs(tasks) do task:join() end
  lu.assertEquals(right, 299, "each answered with the size it left")
  lu.assertEquals(t.read(dir .. "/a.log"), table.concat(want.a))
  lu.assertEquals(t.read(dir .. "/b.log"), table.concat(want.b))
  t.rmtree(dir)
end

-- A failed write fails every append waiting with it, not only the first: none is answered
-- as if it were on disk.
function TestFs.test_append_async_failure_fails_every_waiting_append()
  local results, tasks = {}, {}
  for i = 1, 99 do
    tasks[i] = fo.spawn(function() results[i] = { pcall(fo.fs.append_async, "/dev/full", "x\n") } end)
  end
  for _, task in ipairs(tasks) do task:join() end
  for i = 1, 99 do
    lu.assertFalse(results[i][1], "append " .. i)
    lu.assertStrContains(results[i][2], "'/dev/full'")
  end
end

-- fo.tables.equal: plain data compared as JSON holds it.
function TestFs.test_tables_equal_compares_plain_data_as_json_holds_it()
  local equal = require("fo.tables").equal
  lu.assertTrue(equal({ a = { 1, 2, { x = 1.5 } }, b = "s", c = true },
    { a = { 1, 2, { x = 1.5 } }, b = "s", c = true }))
  lu.assertFalse(equal({ n = 1 }, { n = 1.0 }), "an integer is not a float")
  lu.assertFalse(equal({ 1, 2 }, { 1, 2, 3 }))
  lu.assertFalse(equal({ a = 1, b = 2 }, { a = 1 }))
  lu.assertFalse(equal({ a = 1 }, { a = 1, b = 2 }))
  lu.assertFalse(equal({ a = { b = { c = "x" } } }, { a = { b = { c = "y" } } }))
  lu.assertTrue(equal({}, {}))
  lu.assertFalse(equal({}, nil))
  local deep, copy = {}, {}
  local d, c = deep, copy
  for _ = 1, 100 do d.next, c.next = {}, {}; d, c = d.next, c.next end
  lu.assertFalse(equal(deep, copy), "beyond the depth limit: different (saved, never lost)")
end

os.exit(lu.LuaUnit.run())
