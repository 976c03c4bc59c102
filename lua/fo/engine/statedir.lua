-- The state directory is usable before a run changes anything: created if missing, and
-- written to for real (a probe file made and removed — a mode bit does not stop root, a
-- read-only mount or a full disk stop everyone), the stack's state file and log writable.
-- A run that changed the cloud and then could not record it would leave resources that
-- no state knows; so an unusable directory is a usage error (exit 2) naming it.
local errors = require "fo.engine.errors"

local M = {}

local FIX = "give a writable directory with --state-dir (or FO_STATE_DIR)"

--- Creates `dir` if needed and checks that it and the state file `state_path` (and its
--- log) can be written. Raises a usage error naming the directory or file otherwise.
function M.prepare(dir, state_path)
  local ok, why = pcall(require("fo.fs").mkdir_p, dir, tonumber("700", 8))
  if not ok then
    why = tostring(why):gsub("^fo%.fs%.mkdir_p: ", "")
    errors.raise("usage", ("state directory %s cannot be created (%s): %s"):format(dir, why, FIX))
  end
  local nonce = require("fo.crypto").random(6):gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  local probe = ("%s/.write-probe-%s"):format(dir, nonce)
  local f, err = io.open(probe, "w")
  local written = f and f:write("fo\n") and f:close()
  os.remove(probe)
  if not written then
    errors.raise("usage", ("state directory %s is not writable (%s): fo records there what "
      .. "it does, and changes nothing it cannot record; %s"):format(dir, tostring(err), FIX))
  end
  -- existing files are opened for appending (nothing is written): a directory or a
  -- read-only file in their place is found now, not after the first change
  for _, path in ipairs({ state_path, require("fo.engine.state").log_path(state_path) }) do
    if require("fo.fs").exists(path) then
      local h, e = io.open(path, "a")
      if not h then
        errors.raise("usage", ("state file %s cannot be written (%s): fo records there what it "
          .. "does, and changes nothing it cannot record; fix it or %s"):format(path, e, FIX))
      end
      h:close()
    end
  end
end

return M
