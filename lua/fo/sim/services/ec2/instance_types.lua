-- DescribeInstanceTypes: what an instance type is (vCPUs, cores, memory, hypervisor), for
-- the families a recipe of fo launches: t3 and t3a (burstable), m5 (general purpose), c5
-- (compute optimized), and m1.small, RunInstances' default type. Figures are AWS's
-- (EC2 User Guide, instance type specifications); every type is offered in every region
-- the simulator serves. A type it does not know, named in InstanceTypes, is
-- InvalidInstanceType as AWS answers for a type that does not exist.
local C = require "fo.sim.services.ec2.common"

local M = {}

local function current(vcpus, cores, mib, extra)
  local t = { vcpus = vcpus, cores = cores, threads = vcpus // cores, mib = mib }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- type → { vcpus, cores, threads, mib, manufacturer, burstable, metal, previous }
local TYPES = {}

local function family(prefix, manufacturer, sizes, extra)
  for _, s in ipairs(sizes) do
    local t = current(s[2], s[3], s[4], extra)
    t.manufacturer = manufacturer
    t.metal = s[1] == "metal"
    TYPES[prefix .. "." .. s[1]] = t
  end
end

local T3 = { { "nano", 2, 1, 512 }, { "micro", 2, 1, 1024 }, { "small", 2, 1, 2048 },
  { "medium", 2, 1, 4096 }, { "large", 2, 1, 8192 }, { "xlarge", 4, 2, 16384 },
  { "2xlarge", 8, 4, 32768 } }
family("t3", "Intel", T3, { burstable = true })
family("t3a", "AMD", T3, { burstable = true })
family("m5", "Intel", { { "large", 2, 1, 8192 }, { "xlarge", 4, 2, 16384 },
  { "2xlarge", 8, 4, 32768 }, { "4xlarge", 16, 8, 65536 }, { "8xlarge", 32, 16, 131072 },
  { "12xlarge", 48, 24, 196608 }, { "16xlarge", 64, 32, 262144 },
  { "24xlarge", 96, 48, 393216 }, { "metal", 96, 48, 393216 } })
family("c5", "Intel", { { "large", 2, 1, 4096 }, { "xlarge", 4, 2, 8192 },
  { "2xlarge", 8, 4, 16384 }, { "4xlarge", 16, 8, 32768 }, { "9xlarge", 36, 18, 73728 },
  { "12xlarge", 48, 24, 98304 }, { "18xlarge", 72, 36, 147456 },
  { "24xlarge", 96, 48, 196608 }, { "metal", 96, 48, 196608 } })
-- previous generation: Xen, one vCPU, an instance-store disk
TYPES["m1.small"] = { vcpus = 1, cores = 1, threads = 1, mib = 1740, manufacturer = "Intel",
  previous = true }

--- The vCPUs of `itype` (nil for a type the simulator does not know).
function M.vcpus_of(itype)
  local t = TYPES[itype]
  return t and t.vcpus
end

-- The InstanceTypeInfo AWS answers for `name`.
local function info(name, t)
  local i = {
    InstanceType = name, CurrentGeneration = not t.previous, BareMetal = t.metal == true,
    Hypervisor = not t.metal and (t.previous and "xen" or "nitro") or nil,
    SupportedUsageClasses = { "on-demand", "spot" },
    SupportedRootDeviceTypes = t.previous and { "ebs", "instance-store" } or { "ebs" },
    SupportedVirtualizationTypes = t.previous and { "hvm", "paravirtual" } or { "hvm" },
    ProcessorInfo = { SupportedArchitectures = t.previous and { "i386", "x86_64" }
      or { "x86_64" }, Manufacturer = t.manufacturer },
    VCpuInfo = { DefaultVCpus = t.vcpus, DefaultCores = t.cores,
      DefaultThreadsPerCore = t.threads },
    MemoryInfo = { SizeInMiB = t.mib },
    InstanceStorageSupported = t.previous == true,
    InstanceStorageInfo = t.previous and { TotalSizeInGB = 160,
      Disks = { { SizeInGB = 160, Count = 1, Type = "hdd" } } } or nil,
    BurstablePerformanceSupported = t.burstable == true,
    HibernationSupported = not t.previous and not t.metal,
    SupportedBootModes = t.previous and { "legacy-bios" } or { "legacy-bios", "uefi" },
  }
  return i
end

local FILTERS = {
  ["instance-type"] = function(i) return i.InstanceType end,
  ["vcpu-info.default-vcpus"] = function(i) return i.VCpuInfo.DefaultVCpus end,
  ["vcpu-info.default-cores"] = function(i) return i.VCpuInfo.DefaultCores end,
  ["memory-info.size-in-mib"] = function(i) return i.MemoryInfo.SizeInMiB end,
  ["current-generation"] = function(i) return tostring(i.CurrentGeneration) end,
  ["bare-metal"] = function(i) return tostring(i.BareMetal) end,
  ["burstable-performance-supported"] = function(i)
    return tostring(i.BurstablePerformanceSupported)
  end,
  hypervisor = function(i) return i.Hypervisor end,
  ["processor-info.supported-architecture"] = function(i)
    return i.ProcessorInfo.SupportedArchitectures
  end,
}

function M.DescribeInstanceTypes(ctx, p)
  local names = {}
  if p.InstanceTypes and #p.InstanceTypes > 0 then
    local missing = {}
    for _, n in ipairs(p.InstanceTypes) do
      if TYPES[n] then names[#names + 1] = n else missing[#missing + 1] = n end
    end
    if #missing > 0 then
      ctx:fail("InvalidInstanceType", ("The following supplied instance types do not exist: "
        .. "[%s]"):format(table.concat(missing, ", ")))
    end
  else
    for n in pairs(TYPES) do names[#names + 1] = n end
  end
  table.sort(names)
  local list = {}
  for _, n in ipairs(names) do list[#list + 1] = info(n, TYPES[n]) end
  list = C.filter(ctx, list, p.Filters, FILTERS)
  local page, token = C.page(ctx, list, p, { max = 100 })
  return { InstanceTypes = page, NextToken = token }
end

return M
