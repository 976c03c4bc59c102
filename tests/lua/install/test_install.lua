-- fo installed as a packaged tool (docs/install.md): `cmake --install` anywhere, the
-- installed fo-run planning the installed trading recipe from another directory; the man
-- page generated from --help naming every option --help names; bash completion of an
-- option, a value, a stack name and a URN; the .deb that cpack builds, its layout and
-- Depends, and its fo-run run from the unpacked tree.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"

local build = testlib.fo_run:match("^(.*)/[^/]+$")
local source = fo.fs.realpath(testlib.tests_dir .. "/..")

local function sh(script, ...)
  return fo.process.run{ argv = { "sh", "-c", script, "sh", ... }, timeout = 600 }
end

local function assert_ok(r, what)
  lu.assertEquals(r.code, 0, ("%s: %s%s"):format(what, r.stdout, r.stderr))
end

-- The options --help names, found here without fo's own parser: every --word, and -x
-- at the start of an option entry.
local function help_options()
  local r = testlib.run_fo({ "--help" })
  assert_ok(r, "fo-run --help")
  local names, seen = {}, {}
  local function add(n) if not seen[n] then seen[n], names[#names + 1] = true, n end end
  for n in r.stdout:gmatch("%f[%w%-](%-%-%a[%w-]*)") do add(n) end
  for n in r.stdout:gmatch("\n  (%-%a)[%s,]") do add(n) end
  return names, r.stdout
end

-- Plans the installed trading recipe with the installed fo-run under `root`, from a
-- directory that is neither the repository nor the prefix.
local function plan_installed_trading(bin, share, work)
  return sh('cd "$1" && exec "$2" --plan "$3/fo/recipes/trading.lua" --state-dir "$1/state"',
    work, bin .. "/fo-run", share)
end

function test_cmake_install_lays_out_a_tool_that_runs_from_anywhere()
  local prefix, work = testlib.tmpdir(), testlib.tmpdir()
  assert_ok(fo.process.run{ argv = { "cmake", "--install", build, "--prefix", prefix } },
    "cmake --install")
  for _, f in ipairs{ "bin/fo-run", "share/fo/lua/fo/init.lua", "share/fo/recipes/trading.lua",
      "share/man/man1/fo-run.1.gz", "share/bash-completion/completions/fo-run",
      "share/zsh/vendor-completions/_fo-run", "share/doc/fo/README.md",
      "share/doc/fo/copyright", "share/doc/fo/docs/install.md",
      "share/doc/fo/docs/engine.md" } do
    lu.assertIsTrue(fo.fs.exists(prefix .. "/" .. f), f)
  end
  local r = plan_installed_trading(prefix .. "/bin", prefix .. "/share", work)
  assert_ok(r, "installed fo-run --plan")
  lu.assertStrMatches(r.stdout, ".*Plan: %d+ to add, 0 to change, 0 to replace, 0 to destroy%..*")
  lu.assertStrContains(r.stdout, "nothing was changed")
  -- install.md's way: the recipes folder copied into a project of one's own (trading.lua
  -- loads its component from beside it), the state in that project's .fo
  r = sh('cp -r "$2/fo/recipes" "$1/trading" && cd / && exec "$3" --plan "$1/trading/trading.lua"',
    work, prefix .. "/share", prefix .. "/bin/fo-run")
  assert_ok(r, "fo-run --plan of a copy of the installed recipes")
  lu.assertStrMatches(r.stdout, ".*Plan: %d+ to add, 0 to change, 0 to replace, 0 to destroy%..*")
  lu.assertIsTrue(fo.fs.exists(work .. "/trading/.fo"), "the copy's stack is in its own .fo")
  -- the Lua modules it ran are the installed ones, not the source tree's
  r = sh('cd "$1" && exec "$2" -e "print(package.searchpath(\'fo.engine.cli\', package.path))"',
    work, prefix .. "/bin/fo-run")
  assert_ok(r, "searchpath")
  lu.assertStrContains(r.stdout, prefix .. "/bin/../share/fo/lua/fo/engine/cli.lua")
  testlib.rmtree(prefix)
  testlib.rmtree(work)
end

local function render_man(path)
  if testlib.has_command("man") then
    local r = fo.process.run{ argv = { "man", "-l", path },
      env = { MANWIDTH = "200", MANPAGER = "cat", PAGER = "cat", MAN_KEEP_FORMATTING = false } }
    assert_ok(r, "man -l")
    return (r.stdout:gsub(".\b", ""))
  end
  return nil
end

function test_man_page_is_generated_from_help_and_names_every_option()
  local page = testlib.read(build .. "/fo-run.1")
  lu.assertNotNil(page, "the build makes fo-run.1")
  for _, sh_ in ipairs{ "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "RECIPE OPTIONS",
      "ENVIRONMENT", "EXIT STATUS", "FILES", "SEE ALSO" } do
    lu.assertStrContains(page, "\n.SH " .. sh_ .. "\n")
  end
  lu.assertStrContains(page, '.TH FO-RUN 1 ')
  -- the installed, gzipped page is the same page
  local r = fo.process.run{ argv = { "gzip", "-dc", build .. "/fo-run.1.gz" } }
  assert_ok(r, "gzip -dc")
  lu.assertEquals(r.stdout, page)
  if testlib.has_command("groff") then
    r = fo.process.run{ argv = { "groff", "-man", "-Tutf8", "-ww", "-z", build .. "/fo-run.1" } }
    assert_ok(r, "groff")
    lu.assertEquals(r.stderr, "", "groff warns")
  end
  local rendered = render_man(build .. "/fo-run.1")
    or page:gsub("\\%-", "-"):gsub("\\f[BIR]", "") -- no man: the roff source, unescaped
  rendered = rendered:gsub("\226\136\146", "-") -- a \- rendered as U+2212
  local options, help = help_options()
  lu.assertIsTrue(#options > 30, help)
  for _, name in ipairs(options) do
    lu.assertIsTrue(rendered:find(name, 1, true) ~= nil, name .. " missing from the man page")
  end
  -- and what --help says of it, word for word (the page is made from the help text)
  lu.assertStrContains(rendered:gsub("%s+", " "), "do not ask for confirmation (needed for aws "
    .. "when stdin is no terminal)")
end

-- What the bash completion (dist/completion/fo-run.bash) offers for `line` typed up to its
-- end, in the project directory `dir`: bash's COMP_* set as bash sets them and the
-- completion function called.
local function bash_complete(dir, line)
  local script = [==[
cd "$1" || exit 1
source "$2"
COMP_LINE=$3
COMP_POINT=${#COMP_LINE}
COMP_WORDS=($COMP_LINE)
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_fo_run
printf '%s\n' "${COMPREPLY[@]}"
]==]
  local r = fo.process.run{ argv = { "bash", "-c", script, "bash", dir,
    source .. "/dist/completion/fo-run.bash", testlib.fo_run .. " " .. line },
    env = { FO_STATE_DIR = false } }
  assert_ok(r, "bash completion of " .. line)
  local list = {}
  for c in r.stdout:gmatch("[^\n]+") do list[#list + 1] = c end
  return list
end

function test_bash_completes_options_values_stacks_and_urns()
  local dir = testlib.tmpdir()
  testlib.write(dir .. "/net.lua", ([[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
fo.resource("test:subnet", "a", { vpc_id = vpc.id, cidr = "10.0.1.0/24" })
]]):format(testlib.tests_dir))
  for _, stack in ipairs{ "blue", "green" } do
    local r = sh('cd "$1" && exec "$2" net.lua --stack "$3"', dir, testlib.fo_run, stack)
    assert_ok(r, "apply " .. stack)
  end
  -- options, from --help
  lu.assertEquals(bash_complete(dir, "--no-r"), { "--no-refresh", "--no-rollback" })
  lu.assertEquals(bash_complete(dir, "--drill-r"), { "--drill-runs" })
  -- a value from a finite set
  lu.assertEquals(bash_complete(dir, "net.lua --target "), { "aws", "sim" })
  -- stack names from the state directory (found from the current directory), both forms
  lu.assertEquals(bash_complete(dir, "--stack "), { "blue", "green" })
  lu.assertEquals(bash_complete(dir, "net.lua --stack g"), { "green" })
  lu.assertEquals(bash_complete(dir, "net.lua --stack=b"), { "blue" }) -- '=' breaks the word
  -- URNs from the stack's state; bash replaces the word after its last ':'
  lu.assertEquals(bash_complete(dir, "net.lua --stack green --only "),
    { "green::test:subnet::a", "green::test:vpc::main" })
  lu.assertEquals(bash_complete(dir, "net.lua --stack blue --only blue::test:v"),
    { "vpc::main" })
  -- the state directory given on the command line or in FO_STATE_DIR is the one read
  lu.assertEquals(bash_complete("/", "--state-dir " .. dir .. "/.fo --stack "),
    { "blue", "green" })
  testlib.rmtree(dir)
end

-- The same through the zsh completion (dist/completion/_fo-run), run as zsh's completion
-- system runs it: BUFFER, CURSOR and words set; compadd and _files record what it offers.
local function zsh_complete(dir, line)
  local script = [==[
cd "$1" || exit 1
compadd() { shift; print -rl -- "$@"; }
_files() { print -r -- "<files>"; }
BUFFER=$3
CURSOR=${#BUFFER}
words=(${=BUFFER})
source "$2"
]==]
  local r = fo.process.run{ argv = { "zsh", "-f", "-c", script, "zsh", dir,
    source .. "/dist/completion/_fo-run", testlib.fo_run .. " " .. line },
    env = { FO_STATE_DIR = false } }
  assert_ok(r, "zsh completion of " .. line)
  local list = {}
  for c in r.stdout:gmatch("[^\n]+") do list[#list + 1] = c end
  return list
end

function test_zsh_completes_options_stacks_and_urns()
  lu.skipIf(not testlib.has_command("zsh"), "no zsh")
  local dir = testlib.tmpdir()
  testlib.write(dir .. "/net.lua", ([[
package.path = %q .. '/lua/?.lua;' .. package.path
require 'support.engine_types'
fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
]]):format(testlib.tests_dir))
  assert_ok(sh('cd "$1" && exec "$2" net.lua --stack blue', dir, testlib.fo_run), "apply")
  lu.assertEquals(zsh_complete(dir, "--no-r"), { "--no-refresh", "--no-rollback" })
  lu.assertEquals(zsh_complete(dir, "net.lua --stack=b"), { "--stack=blue" })
  lu.assertEquals(zsh_complete(dir, "net.lua --stack blue --only blue::"),
    { "blue::test:vpc::main" })
  lu.assertEquals(zsh_complete(dir, "ne"), { "<files>" })
  testlib.rmtree(dir)
end

function test_cpack_builds_a_deb_that_runs_unpacked()
  local r = sh('cd "$1" && exec cpack -G DEB', build)
  assert_ok(r, "cpack")
  local deb = r.stdout:match("package: (%S+%.deb) generated")
  lu.assertNotNil(deb, r.stdout)
  r = fo.process.run{ argv = { "dpkg-deb", "-f", deb, "Package", "Depends" } }
  assert_ok(r, "dpkg-deb -f")
  lu.assertStrContains(r.stdout, "Package: fo\n")
  -- the libraries fo-run links, as Debian 12 names their packages, and the Lua module
  for _, dep in ipairs{ "lua-cjson", "liblua5.4-0", "libcurl4", "libssl3", "libexpat1",
      "libmicrohttpd12", "libedit2" } do
    lu.assertStrContains(r.stdout, dep)
  end
  r = fo.process.run{ argv = { "dpkg-deb", "-c", deb } }
  assert_ok(r, "dpkg-deb -c")
  for _, f in ipairs{ "./usr/bin/fo-run", "./usr/share/fo/lua/fo/init.lua",
      "./usr/share/fo/recipes/trading.lua", "./usr/share/man/man1/fo-run.1.gz",
      "./usr/share/bash-completion/completions/fo-run",
      "./usr/share/zsh/vendor-completions/_fo-run", "./usr/share/doc/fo/copyright" } do
    lu.assertStrContains(r.stdout, " " .. f .. "\n")
  end
  local root, work = testlib.tmpdir(), testlib.tmpdir()
  assert_ok(fo.process.run{ argv = { "dpkg-deb", "-x", deb, root } }, "dpkg-deb -x")
  r = plan_installed_trading(root .. "/usr/bin", root .. "/usr/share", work)
  assert_ok(r, "unpacked fo-run --plan")
  lu.assertStrContains(r.stdout, "nothing was changed")
  testlib.rmtree(root)
  testlib.rmtree(work)
end

os.exit(lu.LuaUnit.run())
