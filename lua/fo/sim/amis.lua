-- The public Amazon Linux 2 AMI as the simulator publishes it: one id per region, the
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

return M
