-- fo.cli.help reads fo-run's --help as a structure, and fo.cli.complete completes from it:
-- a help text with subcommands and options fo-run may gain (state, --only) completes them
-- with no change to the completion.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local testlib = require "support.testlib"
local help = require "fo.cli.help"
local complete = require "fo.cli.complete"

local HELP = table.concat({
  "usage: fo-run [options] [FILE [args...]]",
  "       fo-run state list|show URN|rm URN|mv URN NEW [--stack NAME]",
  "       fo-run outputs [NAME] [--json]",
  "",
  "Runs FILE.",
  "",
  "options:",
  "  -e CODE        run CODE",
  "  -v, --version  print the version",
  "  --stack NAME   the stack; with --drill-runs N, more",
  "  --only URN     only URN and what it depends on",
  "  --plan         plan only",
  "  --state-dir D  where the stacks are",
  "  --accept-removals forget resources",
  "                 that are gone",
  "",
  "environment:",
  "  FO_LOG         log level",
  "",
  "exit codes: 0 success.",
}, "\n") .. "\n"

function test_parse_reads_synopsis_sections_entries_and_paragraphs()
  local doc = help.parse(HELP)
  lu.assertEquals(doc.synopsis, { "fo-run [options] [FILE [args...]]",
    "fo-run state list|show URN|rm URN|mv URN NEW [--stack NAME]",
    "fo-run outputs [NAME] [--json]" })
  lu.assertEquals(doc.blocks[1], { paragraph = "Runs FILE." })
  lu.assertEquals(doc.blocks[2].section, "options")
  lu.assertEquals(doc.blocks[2].entries[2], { term = "-v, --version", desc = "print the version" })
  -- a term followed by one space only, its description continued on the next line
  lu.assertEquals(doc.blocks[2].entries[7],
    { term = "--accept-removals", desc = "forget resources that are gone" })
  lu.assertEquals(doc.blocks[3].entries, { { term = "FO_LOG", desc = "log level" } })
  lu.assertEquals(doc.blocks[4], { paragraph = "exit codes: 0 success." })
end

function test_options_and_commands_come_from_the_text()
  local doc = help.parse(HELP)
  local o = help.options(doc, HELP)
  lu.assertEquals(o.list, { "-e", "-v", "--version", "--stack", "--only", "--plan",
    "--state-dir", "--accept-removals", "--json", "--drill-runs" })
  lu.assertEquals(o.value, { ["-e"] = true, ["--stack"] = true, ["--only"] = true,
    ["--state-dir"] = true, ["--drill-runs"] = true })
  local names, follow = help.commands(doc)
  lu.assertEquals(names, { "state", "outputs" })
  lu.assertEquals(follow.state, { "list", "show", "rm", "mv" })
  lu.assertEquals(follow.outputs, {})
end

function test_candidates_complete_subcommands_and_the_urns_after_them()
  local dir = testlib.tmpdir()
  testlib.write(dir .. "/blue.state.json",
    '{"resources": {"blue::test:vpc::main": {}, "blue::test:subnet::a": {}}}')
  testlib.write(dir .. "/dev.state.json", '{"resources": {"dev::test:vpc::main": {}}}')
  testlib.write(dir .. "/red.config.json", "{}")
  testlib.write(dir .. "/broken.state.json", "{not json")
  local sd = "fo-run --state-dir " .. dir .. " "
  lu.assertEquals(complete.candidates("fo-run st", HELP), { "state" })
  lu.assertEquals(complete.candidates("fo-run state ", HELP), { "list", "show", "rm", "mv" })
  lu.assertEquals(complete.candidates(sd .. "state show ", HELP), { "dev::test:vpc::main" })
  lu.assertEquals(complete.candidates(sd .. "--stack blue state rm blue::test:s", HELP),
    { "blue::test:subnet::a" })
  lu.assertEquals(complete.candidates(sd .. "--stack ", HELP),
    { "blue", "broken", "dev", "red" })
  -- a state file that is not JSON, or none: no URNs, no error
  lu.assertEquals(complete.candidates(sd .. "--stack broken --only ", HELP), {})
  lu.assertEquals(complete.candidates(sd .. "--stack red --only ", HELP), {})
  -- after `--`, words are the script's: no options offered
  lu.assertEquals(complete.candidates("fo-run x.lua -- --p", HELP), {})
  lu.assertEquals(complete.candidates("fo-run x.lua --p", HELP), { "--plan" })
  -- a value option's value is not taken for an option or a subcommand
  lu.assertEquals(complete.candidates("fo-run -e st", HELP), {})
  testlib.rmtree(dir)
end

os.exit(lu.LuaUnit.run())
