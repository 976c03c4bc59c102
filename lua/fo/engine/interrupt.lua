-- The first Ctrl-C (SIGINT) of an apply or a destroy: no new operation starts, those in
-- flight finish and are recorded, then the engine rolls back (or keeps what was done with
-- --no-rollback). fo.signal restores SIGINT's previous action once it fired, so a second
-- Ctrl-C ends the process at once; the journal lets the next run recover (engine.md).
local M = {}

--- Arms the handler for the length of a stage: on the first SIGINT, run.interrupted is set
--- (the scheduler then starts nothing more) and on_interrupt(signal name) is called.
--- Returns disarm(), to call when the stage is over. Nothing is armed when another task
--- already waits for signals (a REPL or a script of the user's): Ctrl-C acts as it does there.
function M.arm(run, on_interrupt)
  local signal = require "fo.signal"
  local armed, waiting = true, false
  require("fo.task").spawn(function()
    if not armed then return end
    waiting = true
    local ok, name = pcall(signal.wait, { "INT" })
    waiting = false
    if ok and name and armed then
      run.interrupted = name
      on_interrupt(name)
    end
  end)
  return function()
    armed = false
    if waiting then signal.cancel() end
  end
end

return M
