-- The public Amazon Linux AMIs as the simulator publishes them (Amazon Linux 2 and Amazon
-- Linux 2023, x86_64): one id per region and family, the
-- same in every sim (public AMIs do not depend on the account or the seed), answered by
-- the SSM public parameter and known to EC2 (DescribeImages, launch templates).
local M = {}

M.AL2_PARAMETER = "/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"
M.AL2_NAME = "amzn2-ami-hvm-2.0.20240306.2-x86_64-gp2"
M.AL2_PARAMETER_VERSION = 102
M.AL2_MODIFIED = 1710460800 -- 2024-03-15T00:00:00Z, when this image was "published"
M.OWNER = "137112412989" -- Amazon's owner id for Amazon Linux images

--- ami-<17 hex digits> for `region`, stable across sims and runs.
function M.al2(region)
  local crypto = require "fo.crypto"
  return "ami-0" .. crypto.hex(crypto.sha256("fo-sim al2 " .. region)):sub(1, 16)
end

--- The image as DescribeImages describes it.
function M.al2_image(region)
  local id = M.al2(region)
  return {
    ImageId = id, Name = M.AL2_NAME, Description = "Amazon Linux 2 AMI 2.0.20240306.2 x86_64 HVM gp2",
    Architecture = "x86_64", ImageType = "machine", Public = true, State = "available",
    OwnerId = M.OWNER, ImageOwnerAlias = "amazon", PlatformDetails = "Linux/UNIX",
    UsageOperation = "RunInstances", RootDeviceType = "ebs", RootDeviceName = "/dev/xvda",
    VirtualizationType = "hvm", EnaSupport = true, Hypervisor = "xen",
    ImageLocation = "amazon/" .. M.AL2_NAME, CreationDate = "2024-03-06T22:20:48.000Z",
    BlockDeviceMappings = { { DeviceName = "/dev/xvda", Ebs = { DeleteOnTermination = true,
      SnapshotId = "snap-0" .. require("fo.crypto").hex(require("fo.crypto").sha256(
        "fo-sim al2 snap " .. region)):sub(1, 16), VolumeSize = 8, VolumeType = "gp2",
      Encrypted = false } } },
  }
end

M.AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
M.AL2023_NAME = "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64"
M.AL2023_PARAMETER_VERSION = 87
M.AL2023_MODIFIED = 1734048000 -- 2024-12-13T00:00:00Z

--- The AL2023 image id for `region`, stable across sims and runs.
function M.al2023(region)
  local crypto = require "fo.crypto"
  return "ami-0" .. crypto.hex(crypto.sha256("fo-sim al2023 " .. region)):sub(1, 16)
end

function M.al2023_image(region)
  local crypto = require "fo.crypto"
  local img = M.al2_image(region)
  img.ImageId, img.Name = M.al2023(region), M.AL2023_NAME
  img.Description = "Amazon Linux 2023 AMI 2023.6.20241212.0 x86_64 HVM kernel-6.1"
  img.ImageLocation = "amazon/" .. M.AL2023_NAME
  img.CreationDate = "2024-12-12T20:50:12.000Z"
  img.BootMode = "uefi-preferred"
  img.BlockDeviceMappings[1].Ebs.VolumeType = "gp3"
  img.BlockDeviceMappings[1].Ebs.SnapshotId = "snap-0"
    .. crypto.hex(crypto.sha256("fo-sim al2023 snap " .. region)):sub(1, 16)
  return img
end

--- The family ("al2", "al2023") of image `id` in `region` (nil: not a public image).
function M.family(region, id)
  if id == M.al2(region) then return "al2" end
  if id == M.al2023(region) then return "al2023" end
  return nil
end

--- Every public image of `region`.
function M.images(region) return { M.al2_image(region), M.al2023_image(region) } end

--- The public image `id` of `region`, or nil.
function M.image(region, id)
  for _, img in ipairs(M.images(region)) do
    if img.ImageId == id then return img end
  end
  return nil
end

--- The public SSM parameters naming the latest image of each family: name →
--- {value = function(region), version =, modified =}.
M.PARAMETERS = {
  -- (through M: a test may stand in another id for a family)
  [M.AL2_PARAMETER] = { value = function(region) return M.al2(region) end,
    version = M.AL2_PARAMETER_VERSION, modified = M.AL2_MODIFIED },
  [M.AL2023_PARAMETER] = { value = function(region) return M.al2023(region) end,
    version = M.AL2023_PARAMETER_VERSION,
    modified = M.AL2023_MODIFIED },
}

return M
