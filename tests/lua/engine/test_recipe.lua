-- Recipe errors: each kind names the file:line of the declaration at fault and what to do;
-- nothing is planned or applied after one (exit code 1).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"

local THIS = debug.getinfo(1, "S").source:sub(2)
local sim, dir
TestRecipe = {}
local F = H.fixture(TestRecipe, function(f) sim, dir = f.sim, f.dir end)

local function line() return debug.getinfo(2, "l").currentline end

-- Runs a recipe that must fail; returns stderr.
local function fails(recipe)
  local code, doc, out, err = F.run(recipe)
  lu.assertEquals(code, 1, out .. err)
  lu.assertEquals(H.mutating(sim), 0)
  lu.assertNil(H.state(dir))
  return err, doc
end

function TestRecipe:test_unknown_type_names_the_line_and_the_nearest_type()
  local at
  local err = fails(function()
    at = line() + 1
    fo.resource("test:vcp", "main", { cidr = "10.0.0.0/16" })
  end)
  lu.assertStrContains(err, ("%s:%d: unknown resource type 'test:vcp' (did you mean 'test:vpc'?)")
    :format(THIS, at))
  lu.assertStrContains(err, "Known types: ")
end

function TestRecipe:test_duplicate_name_names_both_places()
  local first, second
  local err = fails(function()
    first = line() + 1
    fo.resource("test:topic", "alerts", { name = "a" })
    second = line() + 1
    fo.resource("test:topic", "alerts", { name = "b" })
  end)
  lu.assertStrContains(err, ("%s:%d: test:topic alerts is declared twice (first at %s:%d)")
    :format(THIS, second, THIS, first))
end

function TestRecipe:test_bad_properties_are_checked_by_the_schema()
  local at
  local err = fails(function()
    at = line() + 1
    fo.resource("test:vpc", "main", { cidrr = "10.0.0.0/16", dns_hostnames = "yes" })
  end)
  lu.assertStrContains(err, ("%s:%d: test:vpc main: "):format(THIS, at))
  lu.assertStrContains(err, "unknown property cidrr (did you mean 'cidr'?); test:vpc has: cidr, dns_hostnames, tags")
  lu.assertStrContains(err, "property dns_hostnames: expected boolean, got string \"yes\"")
  lu.assertStrContains(err, "property cidr is required")
end

function TestRecipe:test_unknown_output_and_handle_as_value_are_errors()
  local at
  local err = fails(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    at = line() + 1
    fo.resource("test:subnet", "a", { vpc_id = vpc.ids, cidr = "10.0.1.0/24" })
  end)
  lu.assertStrContains(err, ("%s:%d: test:vpc main has no output 'ids' (did you mean 'id'?); its outputs: cidr, id")
    :format(THIS, at))
  err = fails(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    at = line() + 1
    fo.resource("test:subnet", "a", { vpc_id = vpc, cidr = "10.0.1.0/24" })
  end)
  lu.assertStrContains(err, ("%s:%d: test:subnet a: property vpc_id holds the resource main itself; use one of its outputs")
    :format(THIS, at))
end

function TestRecipe:test_reference_to_an_undeclared_resource()
  local at
  local err = fails(function()
    at = line() + 1
    fo.resource("test:topic", "t", { name = "t" }, { depends_on = { "nothere" } })
  end)
  lu.assertStrContains(err, ("%s:%d: test:topic t: depends_on 'nothere' names no declared resource")
    :format(THIS, at))
  -- a handle kept from another run is not a declaration of this one
  local stale
  F.run(function() stale = fo.resource("test:vpc", "old", { cidr = "10.0.0.0/16" }) end,
    { mode = "plan" })
  F.renew()
  err = fails(function()
    at = line() + 1
    fo.resource("test:subnet", "a", { vpc_id = stale.id, cidr = "10.0.1.0/24" })
  end)
  lu.assertStrContains(err, ("%s:%d: test:subnet a references dev::test:vpc::old, which is not declared in this recipe")
    :format(THIS, at))
end

function TestRecipe:test_dependency_cycle_names_its_members_in_order()
  local la, lb, lc
  local err = fails(function()
    la = line() + 1
    fo.resource("test:topic", "a", { name = "a" }, { depends_on = "c" })
    lb = line() + 1
    fo.resource("test:topic", "b", { name = "b" }, { depends_on = "a" })
    lc = line() + 1
    fo.resource("test:topic", "c", { name = "c" }, { depends_on = "b" })
  end)
  lu.assertStrContains(err, ("dependency cycle: dev::test:topic::a (%s:%d) → dev::test:topic::c (%s:%d) → "
    .. "dev::test:topic::b (%s:%d) → dev::test:topic::a"):format(THIS, la, THIS, lc, THIS, lb))
end

function TestRecipe:test_a_reference_cannot_become_a_string_by_accident()
  local at
  local err = fails(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    at = line() + 1
    fo.resource("test:role", "r", { name = string.format("role-%s", vpc.id) })
  end)
  lu.assertStrContains(err, ("%s:%d: main.id is known only after apply: use fo.format"):format(THIS, at))
end

function TestRecipe:test_bad_arguments_and_options()
  local err = fails(function() fo.resource("test:topic", "bad name!", { name = "x" }) end)
  lu.assertStrContains(err, "name must be a string of letters, digits")
  err = fails(function() fo.resource("test:topic", "t", { name = "x" }, { dependson = {} }) end)
  lu.assertStrContains(err, "unknown option dependson (did you mean 'depends_on'?)")
  err = fails(function() fo.output("o", 1); fo.output("o", 2) end)
  lu.assertStrContains(err, "output o is declared twice")
end

function TestRecipe:test_a_script_error_is_reported_with_its_traceback()
  local at
  local err = fails(function()
    at = line() + 1
    error("recipe broke")
  end)
  lu.assertStrContains(err, ("%s:%d: recipe broke"):format(THIS, at))
  lu.assertStrContains(err, "stack traceback:")
  -- the recipe's frames, not fo's call of it
  lu.assertStrContains(err, ("%s:%d:"):format(THIS, at), false, err)
  lu.assertNotStrContains(err, "fo/engine/init.lua")
  lu.assertNotStrContains(err, "xpcall")
end

function TestRecipe:test_derived_values_resolve_after_apply()
  local code, _, out = F.run(function()
    local vpc = fo.resource("test:vpc", "main", { cidr = "10.0.0.0/16" })
    local t = fo.resource("test:topic", "t", { name = "alerts",
      display_name = fo.format("net %s", vpc.cidr) })
    fo.resource("test:role", "r", { name = fo.apply(t.name, function(n) return n .. "-role" end) })
    fo.output("joined", vpc.id .. "/" .. vpc.cidr)
  end)
  lu.assertEquals(code, 0, out)
  local st = H.state(dir)
  lu.assertEquals(st.resources["dev::test:topic::t"].inputs.display_name, "net 10.0.0.0/16")
  lu.assertEquals(st.resources["dev::test:role::r"].id, "alerts-role")
  lu.assertStrMatches(st.outputs.joined, "vpc%-%x+/10%.0%.0%.0/16")
end

os.exit(lu.LuaUnit.run())
