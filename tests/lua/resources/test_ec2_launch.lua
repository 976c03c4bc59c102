-- aws:ec2:launch_template and aws:ssm:parameter_value driven by the engine on the
-- simulator: the AMI looked up per region from the public SSM parameter, the template's
-- data read back through fo's ec2 client (user data base64 on the wire, IMDSv2, encrypted
-- root volume, instance profile by name or ARN), rerun without mutating calls, a change
-- as a new default version, drift (a default version set by hand) repaired, a new AMI
-- reaching the template, rename delete-first, destroy, adoption, and schema checks.
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local H = require "support.engine_harness"
local T = require "support.type_tests"
local interrupt = require "support.interrupt"
local amis = require "fo.sim.amis"
require "fo.aws.resources"

local REGION = "eu-south-1"
local sim, dir

local function ec2() return sim:client("ec2", { region = REGION }) end

local run, apply, res = T.runner(function() return sim, dir end, REGION)

local USER_DATA = "#!/bin/bash\nyum install -y python3\npython3 -m http.server 8080 &\n"

local function template(o)
  o = o or {}
  return function()
    local ami = fo.resource("aws:ssm:parameter_value", "al2",
      { name = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2" })
    local vpc = fo.resource("aws:ec2:vpc", "vpc", { cidr_block = "10.0.0.0/16" })
    local sg = fo.resource("aws:ec2:security_group", "app", { vpc_id = vpc.id,
      group_name = "app-sg-test" })
    local lt = fo.resource("aws:ec2:launch_template", "lt", {
      name = o.name or "lt-test", image_id = ami.value,
      instance_type = o.instance_type or "t3.medium",
      iam_instance_profile = o.profile or "app-profile-test",
      security_group_ids = { sg.id }, user_data = o.user_data or USER_DATA,
      metadata_options = o.metadata or { http_tokens = "required", http_endpoint = "enabled",
        http_put_response_hop_limit = 2 },
      block_device_mappings = { { device_name = "/dev/xvda", ebs = { volume_size = 20,
        volume_type = "gp3", encrypted = true, delete_on_termination = true } } },
      resource_tags = o.resource_tags,
      tags = o.tags or { Environment = "Production", FailoverRole = "Primary" },
    })
    fo.output("lt_id", lt.id)
    fo.output("ami", ami.value)
    fo.output("default_version", lt.default_version)
  end
end

local function default_data(id)
  return ec2():DescribeLaunchTemplateVersions{ LaunchTemplateId = id, Versions = { "$Default" } }
    .LaunchTemplateVersions[1]
end

local tags = T.tag_map

TestEc2Launch = {}

function TestEc2Launch:setUp()
  sim, dir = H.sim(), H.dir()
end

function TestEc2Launch:tearDown()
  H.cleanup(dir)
end

function TestEc2Launch:test_create_reads_back_and_rerun_makes_no_mutating_call()
  local doc = apply(template())
  lu.assertEquals(doc.outputs.ami, amis.al2(REGION))
  local ami = res("aws:ssm:parameter_value::al2")
  lu.assertEquals(ami.id, amis.AL2_PARAMETER)
  lu.assertEquals(ami.outputs.version, amis.AL2_PARAMETER_VERSION)

  local lt = ec2():DescribeLaunchTemplates{ LaunchTemplateIds = { doc.outputs.lt_id } }
    .LaunchTemplates[1]
  lu.assertEquals(lt.LaunchTemplateName, "lt-test")
  lu.assertEquals(tags(lt.Tags), { Environment = "Production", FailoverRole = "Primary",
    ["fo:stack"] = "dev", ["fo:name"] = "lt",
    ["fo:token"] = H.state(dir).resources["dev::aws:ec2:launch_template::lt"].token })
  local v = default_data(lt.LaunchTemplateId)
  lu.assertEquals(v.VersionNumber, 1)
  local d = v.LaunchTemplateData
  lu.assertEquals({ d.ImageId, d.InstanceType }, { amis.al2(REGION), "t3.medium" })
  lu.assertEquals(d.UserData, fo.crypto.base64_encode(USER_DATA))
  lu.assertEquals(d.MetadataOptions, { HttpTokens = "required", HttpEndpoint = "enabled",
    HttpPutResponseHopLimit = 2 })
  lu.assertEquals(d.BlockDeviceMappings, { { DeviceName = "/dev/xvda", Ebs = { VolumeSize = 20,
    VolumeType = "gp3", Encrypted = true, DeleteOnTermination = true } } })
  lu.assertEquals(d.IamInstanceProfile, { Name = "app-profile-test" })
  lu.assertEquals(d.SecurityGroupIds, { res("aws:ec2:security_group::app").id })
  lu.assertEquals(doc.outputs.default_version, 1)
  lu.assertEquals(res("aws:ec2:launch_template::lt").outputs.latest_version, 1)

  local before = H.mutating(sim)
  local _, out = apply(template())
  lu.assertEquals(H.mutating(sim), before)
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Launch:test_a_change_is_a_new_default_version()
  local doc = apply(template())
  local id = doc.outputs.lt_id
  sim.recorder:clear()
  local profile_arn = "arn:aws:iam::123456789012:instance-profile/app-profile-test"
  doc = apply(template{ instance_type = "t3.large", user_data = "#!/bin/bash\necho v2\n",
    profile = profile_arn })
  lu.assertEquals(H.ops(sim, { mutating = true }),
    { "ec2.CreateLaunchTemplateVersion", "ec2.ModifyLaunchTemplate" })
  lu.assertEquals(doc.outputs.lt_id, id)
  lu.assertEquals(doc.outputs.default_version, 2)
  lu.assertEquals(res("aws:ec2:launch_template::lt").outputs.latest_version, 2)
  local d = default_data(id).LaunchTemplateData
  lu.assertEquals({ d.InstanceType, d.IamInstanceProfile.Arn }, { "t3.large", profile_arn })
  lu.assertEquals(d.UserData, fo.crypto.base64_encode("#!/bin/bash\necho v2\n"))
  lu.assertEquals(d.MetadataOptions.HttpTokens, "required", "a version holds all the data")

  -- tags only: no new version
  sim.recorder:clear()
  apply(template{ instance_type = "t3.large", user_data = "#!/bin/bash\necho v2\n",
    profile = profile_arn, tags = { Environment = "Production" } })
  lu.assertEquals(H.ops(sim, { mutating = true }), { "ec2.DeleteTags" })
  local _, out = apply(template{ instance_type = "t3.large", user_data = "#!/bin/bash\necho v2\n",
    profile = profile_arn, tags = { Environment = "Production" } })
  lu.assertStrContains(out, "No changes.")
end

function TestEc2Launch:test_a_default_version_changed_by_hand_is_drift_and_repaired()
  local doc = apply(template())
  local id = doc.outputs.lt_id
  local c = ec2()
  c:CreateLaunchTemplateVersion{ LaunchTemplateId = id, SourceVersion = "1",
    LaunchTemplateData = { InstanceType = "t3.nano", MetadataOptions = { HttpTokens = "optional" } } }
  c:ModifyLaunchTemplate{ LaunchTemplateId = id, DefaultVersion = "2" }
  local code, rdoc, out = run(template(), { mode = "refresh" })
  lu.assertEquals(code, 0, out)
  lu.assertEquals(#rdoc.drift, 1)
  lu.assertEquals(rdoc.drift[1].urn, "dev::aws:ec2:launch_template::lt")
  local paths = {}
  for _, ch in ipairs(rdoc.drift[1].changes) do paths[#paths + 1] = ch.path end
  table.sort(paths)
  lu.assertEquals(paths, { "instance_type", "metadata_options.http_endpoint",
    "metadata_options.http_put_response_hop_limit", "metadata_options.http_tokens" })
  doc = apply(template())
  lu.assertEquals(doc.outputs.default_version, 3)
  local d = default_data(id).LaunchTemplateData
  lu.assertEquals({ d.InstanceType, d.MetadataOptions.HttpTokens }, { "t3.medium", "required" })
  local _, again = apply(template())
  lu.assertStrContains(again, "No changes.")
end

-- resource_tags: the template's TagSpecifications (instance, volume, network interface),
-- read back as declared; a change is a new default version; an unknown type is refused.
function TestEc2Launch:test_resource_tags_are_the_templates_tag_specifications()
  local rt = { instance = { Name = "i" }, volume = { Name = "v", Env = "p" },
    ["network-interface"] = { Name = "n" } }
  local doc = apply(template{ resource_tags = rt })
  local specs = default_data(doc.outputs.lt_id).LaunchTemplateData.TagSpecifications
  lu.assertEquals(specs, {
    { ResourceType = "instance", Tags = { { Key = "Name", Value = "i" } } },
    { ResourceType = "network-interface", Tags = { { Key = "Name", Value = "n" } } },
    { ResourceType = "volume", Tags = { { Key = "Env", Value = "p" }, { Key = "Name", Value = "v" } } } })
  local _, again = apply(template{ resource_tags = rt })
  lu.assertStrContains(again, "No changes.")
  rt.volume = nil
  doc = apply(template{ resource_tags = rt })
  lu.assertEquals(doc.outputs.default_version, 2)
  lu.assertEquals(#default_data(doc.outputs.lt_id).LaunchTemplateData.TagSpecifications, 2)
  local code, _, out, err = run(template{ resource_tags = { snapshot = { Name = "x" } } })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "a launch template tags instance, volume, network-interface")
end

function TestEc2Launch:test_a_new_ami_reaches_the_template_as_a_new_version()
  apply(template())
  local al2 = amis.al2
  amis.al2 = function(region) return "ami-0feedfacefeedface" end
  local ok, err = pcall(function()
    sim.recorder:clear()
    local doc = apply(template())
    lu.assertEquals(doc.outputs.ami, "ami-0feedfacefeedface")
    lu.assertEquals(H.ops(sim, { mutating = true }),
      { "ec2.CreateLaunchTemplateVersion", "ec2.ModifyLaunchTemplate" })
    lu.assertEquals(default_data(doc.outputs.lt_id).LaunchTemplateData.ImageId,
      "ami-0feedfacefeedface")
  end)
  amis.al2 = al2
  if not ok then error(err, 0) end
end

function TestEc2Launch:test_rename_replaces_delete_first_and_destroy_leaves_nothing()
  local doc = apply(template())
  sim.recorder:clear()
  local doc2 = apply(template{ name = "lt-renamed" })
  lu.assertEquals(H.ops(sim, { mutating = true }),
    { "ec2.DeleteLaunchTemplate", "ec2.CreateLaunchTemplate" })
  lu.assertNotEquals(doc2.outputs.lt_id, doc.outputs.lt_id)
  local code, _, out, err = run(template{ name = "lt-renamed" }, { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(ec2():DescribeLaunchTemplates{}.LaunchTemplates, {})
  lu.assertEquals(ec2():DescribeVpcs{ Filters = { { Name = "is-default", Values = { "false" } } } }
    .Vpcs, {})
end

function TestEc2Launch:test_an_interrupted_create_is_adopted_by_name_and_tags()
  local doc = apply(template())
  interrupt.forget_as_intents(dir, { "dev::aws:ec2:launch_template::lt",
    "dev::aws:ssm:parameter_value::al2" })
  sim.recorder:clear()
  local _, out = apply(template())
  lu.assertStrContains(out, "Adopted dev::aws:ec2:launch_template::lt: " .. doc.outputs.lt_id)
  lu.assertStrContains(out, "Adopted dev::aws:ssm:parameter_value::al2: " .. amis.AL2_PARAMETER)
  lu.assertEquals(H.ops(sim, { mutating = true }), {})
end

function TestEc2Launch:test_a_template_of_the_same_name_not_ours_is_a_conflict()
  -- made outside fo (untagged), then by another copy of the stack (its tags, another token)
  for _, tags in ipairs({ {}, T.other_copy_tags("lt", { { Key = "Owner", Value = "ops" } }) }) do
    local lt = ec2():CreateLaunchTemplate{ LaunchTemplateName = "lt-test",
      LaunchTemplateData = { ImageId = amis.al2(REGION), InstanceType = "t3.micro" },
      TagSpecifications = tags[1] and { { ResourceType = "launch-template", Tags = tags } } or nil,
    }.LaunchTemplate
    sim.recorder:clear()
    local out = T.assert_conflict(sim, dir, template(), lt.LaunchTemplateId, { region = REGION })
    lu.assertStrContains(out, 'a launch template named "lt-test" in eu-south-1')
    -- the VPC and security group the template needed were made, then rolled back
    T.assert_rolled_back(sim, { { "ec2.CreateVpc", "ec2.DeleteVpc" },
      { "ec2.CreateSecurityGroup", "ec2.DeleteSecurityGroup" } })
    lu.assertEquals(#H.ops(sim, { operation = "CreateLaunchTemplateVersion" }), 0)
    ec2():DeleteLaunchTemplate{ LaunchTemplateId = lt.LaunchTemplateId }
  end
end

function TestEc2Launch:test_schema_checks_name_options_and_user_data_at_declaration()
  local code, _, out, err = run(template{ metadata = { http_tokenz = "required" } })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "property metadata_options:")
  lu.assertStrContains(out .. err, "HttpTokenz")
  code, _, out, err = run(template{ name = "lt" })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "a launch template name has 3 to 128 characters")
  code, _, out, err = run(template{ user_data = ("x"):rep(16385) })
  lu.assertEquals(code, 1)
  lu.assertStrContains(out .. err, "user data is at most 16384 bytes")
  lu.assertEquals(sim:count(), 0)
end

function TestEc2Launch:test_the_ami_lookup_is_per_region_and_a_missing_parameter_fails_clearly()
  local function lookup(name)
    return function()
      local a = fo.resource("aws:ssm:parameter_value", "primary", { name = name },
        { region = "eu-south-1" })
      local b = fo.resource("aws:ssm:parameter_value", "standby", { name = name },
        { region = "eu-central-1" })
      fo.output("primary", a.value)
      fo.output("standby", b.value)
    end
  end
  local doc = apply(lookup(amis.AL2_PARAMETER))
  lu.assertEquals({ doc.outputs.primary, doc.outputs.standby },
    { amis.al2("eu-south-1"), amis.al2("eu-central-1") })
  lu.assertNotEquals(doc.outputs.primary, doc.outputs.standby)
  local code, _, out, err = run(lookup(amis.AL2_PARAMETER), { mode = "destroy" })
  lu.assertEquals(code, 0, out .. err)
  lu.assertEquals(H.mutating(sim), 0, "a lookup creates and deletes nothing")
  code, _, out, err = run(lookup("/aws/service/no-such-parameter"))
  lu.assertEquals(code, 4)
  lu.assertStrContains(out .. err, "SSM parameter /aws/service/no-such-parameter does not exist in eu-")
end

os.exit(lu.LuaUnit.run())
