-- User data for simulated instances that serve a health endpoint, in the form the
-- simulator reads (docs/simulator.md, "What the simulator reads from user data"; the same
-- form as recipes/trading.lua's): a Python HTTP server on `port` answering 200 on `path`
-- and 404 elsewhere, run by a systemd unit. opts change one part to make a broken
-- instance: program (ExecStart's interpreter), script_path (what ExecStart runs),
-- host (the address the server binds), start (false: the unit is written, never started).
local M = {}

function M.script(port, path, opts)
  opts = opts or {}
  local lines = {
    "#!/bin/bash",
    "set -euo pipefail",
    "mkdir -p /opt/app",
    "cat > /opt/app/health.py <<'EOF'",
    "try:",
    "    from http.server import BaseHTTPRequestHandler, HTTPServer",
    "except ImportError:",
    "    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer",
    "class Health(BaseHTTPRequestHandler):",
    "    def do_GET(self):",
    ("        ok = self.path.split(\"?\")[0] == %q"):format(path),
    "        self.send_response(200 if ok else 404)",
    "        self.end_headers()",
    ("HTTPServer((%q, %d), Health).serve_forever()"):format(opts.host or "", port),
    "EOF",
    "cat > /etc/systemd/system/app-health.service <<'EOF'",
    "[Unit]",
    "Description=health endpoint",
    "[Service]",
    ("ExecStart=%s %s"):format(opts.program or "/usr/bin/python3",
      opts.script_path or "/opt/app/health.py"),
    "Restart=always",
    "[Install]",
    "WantedBy=multi-user.target",
    "EOF",
    "systemctl daemon-reload",
    opts.start == false and "systemctl enable app-health.service"
      or "systemctl enable --now app-health.service",
  }
  return table.concat(lines, "\n") .. "\n"
end

--- The same, base64-encoded as LaunchTemplateData.UserData takes it.
function M.base64(port, path, opts)
  return require("fo.crypto").base64_encode(M.script(port, path, opts))
end

return M
