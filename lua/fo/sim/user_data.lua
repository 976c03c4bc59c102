-- What an instance serves, read from its user data (the launch template's base64
-- UserData, fixed at launch). The simulator does not run the script: it reads one narrow,
-- documented form of it (docs/simulator.md, "What the simulator reads from user data"),
-- the form of recipes/trading.lua's health endpoint:
--
--   * the user data is a script (it starts with "#!": cloud-init runs nothing else here);
--   * it writes files with here-documents (`cat > PATH <<'EOF'` … `EOF`, also `cat <<EOF >
--     PATH` and `tee PATH <<EOF`);
--   * it starts systemd units it wrote under /etc/systemd/system (`systemctl enable --now
--     NAME`, `systemctl start NAME`, `systemctl restart NAME`);
--   * a unit's ExecStart runs a Python interpreter the image provides (the AL2 image:
--     /usr/bin/python = 2.7, /usr/bin/python3 = 3.7) on a script the user data wrote;
--   * that script is a standard-library HTTP server: `HTTPServer((HOST, PORT), Handler)`
--     with literal HOST and PORT, importing http.server (Python 3) or BaseHTTPServer
--     (Python 2); its do_GET answers `send_response(A if … else B)` where the condition
--     compares `self.path` (optionally `.split("?")[0]`) with a literal path, or `if
--     <that comparison>:` … `send_response(A)` … `send_response(B)` (or send_error), or
--     `send_response(A)` for every path.
--
-- Anything else serves nothing the simulator can see, as an instance whose bootstrap
-- failed: its targets fail their health checks. M.servers explains why (notes).
local crypto = require "fo.crypto"

local M = {}

--- Programs of each simulated image family that can run a server, with the Python major
--- version each one is: Amazon Linux 2 has Python 2.7 as python and 3.7 as python3;
--- Amazon Linux 2023 has only Python 3.9 (no /usr/bin/python).
M.PYTHONS = {
  al2 = { ["/usr/bin/python"] = 2, ["/usr/bin/python2"] = 2, ["/usr/bin/python2.7"] = 2,
    ["/usr/bin/python3"] = 3, ["/usr/bin/python3.7"] = 3 },
  al2023 = { ["/usr/bin/python3"] = 3, ["/usr/bin/python3.9"] = 3 },
}
M.IMAGE_PYTHONS = M.PYTHONS.al2

-- Here-documents: {path = body} of the files the script writes.
local function written_files(lines)
  local files, commands = {}, {}
  local i = 1
  while i <= #lines do
    local line = lines[i]
    local dash, delim = line:match("<<(%-?)%s*['\"]?([%w_]+)['\"]?")
    local target = line:match(">%s*([^%s<>;&|]+)") or line:match("tee%s+([^%s<>;&|-][^%s<>;&|]*)")
    if delim and target then
      local body = {}
      i = i + 1
      while i <= #lines do
        local l = lines[i]
        if (dash == "-" and l:match("^\t*(.-)%s*$") or l) == delim then break end
        body[#body + 1] = l
        i = i + 1
      end
      files[target] = table.concat(body, "\n") .. "\n"
    else
      commands[#commands + 1] = line
    end
    i = i + 1
  end
  return files, commands
end

-- Units the commands start now (enable without --now waits for a reboot).
local function started_units(commands)
  local out = {}
  for _, c in ipairs(commands) do
    local words = {}
    for w in c:gmatch("%S+") do words[#words + 1] = w end
    local k = 1
    while words[k] and words[k] ~= "systemctl" do k = k + 1 end
    local verb = words[k + 1]
    local now = verb == "start" or verb == "restart"
    for j = k + 2, #words do
      if words[j] == "--now" and verb == "enable" then now = true end
    end
    if words[k] and now then
      for j = k + 2, #words do
        local w = words[j]
        if w:sub(1, 1) == "#" then break end
        if w:sub(1, 1) ~= "-" then
          out[#out + 1] = w:find("%.") and w or (w .. ".service")
        end
      end
    end
  end
  return out
end

-- The [Service] ExecStart of a unit file's text: its words.
local function exec_start(unit)
  local section
  for line in unit:gmatch("[^\n]+") do
    local s = line:match("^%s*%[(.-)%]%s*$")
    if s then section = s end
    local v = section == "Service" and line:match("^%s*ExecStart%s*=%s*(.-)%s*$")
    if v and v ~= "" then
      v = v:gsub("^[-@:+!]+", "")
      local words = {}
      for w in v:gmatch("%S+") do words[#words + 1] = w end
      return words
    end
  end
  return nil
end

-- What a Python HTTP server script listens on and answers: {host=, port=, answer =
-- function(path) → status code} or nil, why.
local function python_server(text, major, script)
  local module = major == 2 and "BaseHTTPServer" or "http.server"
  if not text:find(module, 1, true) then
    return nil, ("%s imports no %s, which Python %d needs: it exits at once"):format(script,
      module, major)
  end
  local _, host, port = text:match("HTTPServer%s*%(%s*%(%s*(['\"])(.-)%1%s*,%s*(%d+)%s*%)")
  if not port then
    return nil, ("%s starts no HTTPServer((HOST, PORT), …) with a literal host and port")
      :format(script)
  end
  local get_at = text:find("def%s+do_GET")
  local body = get_at and text:sub(get_at) or ""
  local code_ok, code_else = body:match("send_response%s*%(%s*(%d+)%s+if%s+.-%s+else%s+(%d+)%s*%)")
  -- literal codes in order: send_response(N) / send_error(N)
  local codes = {}
  for _, call in ipairs({ "send_response", "send_error" }) do
    for pos, n in body:gmatch("()" .. call .. "%s*%(%s*(%d+)%s*[,)]") do
      codes[#codes + 1] = { pos = pos, code = tonumber(n) }
    end
  end
  table.sort(codes, function(a, b) return a.pos < b.pos end)
  local modifier, _, want = body:match("self%.path([^=\n]-)%s*==%s*(['\"])(.-)%2")
  local strips_query = modifier ~= nil and (modifier:find("split", 1, true) ~= nil
    or modifier:find("partition", 1, true) ~= nil or modifier:find(".path", 1, true) ~= nil)
  -- The status code a GET of `path` gets, nil when the handler sends none (a malformed
  -- response for the load balancer).
  local function answer(path)
    if not get_at then return 501 end -- BaseHTTPRequestHandler: "Unsupported method"
    local matched = want ~= nil and (strips_query and path:match("^[^?]*") or path) == want
    if code_ok then
      if want == nil then return tonumber(code_ok) end
      return tonumber(matched and code_ok or code_else)
    end
    if want == nil then return codes[1] and codes[1].code end
    -- `if <path comparison>: send_response(A) … else: send_response(B)` (or send_error)
    if matched then return codes[1] and codes[1].code end
    return codes[2] and codes[2].code
  end
  return { host = host, port = tonumber(port), answer = answer }
end

-- Parsed results by user data text: a stack has a few distinct user data, read often.
local by_text = {}

--- The servers the user data (base64, as the launch template holds it; nil = none)
--- starts: a list of {port=, host=, answer = function(path) → HTTP status, unit=}, and
--- notes = {texts} saying why what it starts serves nothing. family: the image's family
--- ("al2" default, "al2023"), whose Python programs the units may run.
function M.servers(user_data_b64, family)
  family = M.PYTHONS[family] and family or "al2"
  local pythons = M.PYTHONS[family]
  local text_key = user_data_b64 or ""
  local key = family .. " " .. text_key
  if by_text[key] then return by_text[key].servers, by_text[key].notes end
  local servers, notes = {}, {}
  local ok, text = pcall(crypto.base64_decode, text_key)
  if not ok or text == "" then
    notes[1] = "the instance has no user data: nothing serves on it"
  elseif text:sub(1, 2) ~= "#!" then
    notes[1] = "the user data is not a script (it does not start with #!)"
  else
    local lines = {}
    for l in (text:gsub("\r\n", "\n") .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    local files, commands = written_files(lines)
    local units = started_units(commands)
    if #units == 0 then
      notes[#notes + 1] = "the user data starts no systemd unit (systemctl enable --now / start)"
    end
    for _, u in ipairs(units) do
      local path = "/etc/systemd/system/" .. u
      local unit = files[path]
      local words = unit and exec_start(unit)
      if not unit then
        notes[#notes + 1] = ("unit %s is started but the user data never writes %s"):format(u, path)
      elseif not words then
        notes[#notes + 1] = ("unit %s has no ExecStart in [Service]"):format(u)
      else
        local program = words[1]
        local major = pythons[program]
        if not major then
          if program:sub(1, 1) ~= "/" then
            notes[#notes + 1] = ("unit %s: ExecStart %s is not an absolute path, which the "
              .. "image's systemd refuses"):format(u, program)
          elseif files[program] then
            notes[#notes + 1] = ("unit %s runs %s, a program the simulator does not read (it "
              .. "reads Python servers run by the image's python)"):format(u, program)
          else
            notes[#notes + 1] = ("unit %s runs %s, which neither the image nor the user data "
              .. "provides: the unit fails (status 203/EXEC)"):format(u, program)
          end
        else
          local k = 2
          while words[k] and words[k]:sub(1, 1) == "-" do k = k + 1 end
          local script = words[k]
          if not script or not files[script] then
            notes[#notes + 1] = ("unit %s runs %s on %s, which the user data never writes")
              :format(u, program, tostring(script))
          else
            local s, why = python_server(files[script], major, script)
            if s then
              s.unit = u
              servers[#servers + 1] = s
            else
              notes[#notes + 1] = ("unit %s: %s"):format(u, why)
            end
          end
        end
      end
    end
  end
  by_text[key] = { servers = servers, notes = notes }
  return servers, notes
end

return M
