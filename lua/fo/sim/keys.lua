-- The access keys the simulator accepts. The default pair is public test data (it is
-- printed in docs/simulator.md): it only ever unlocks a local simulator. More keys come
-- from fo.sim.new{keys = {...}}, each belonging to an account and an IAM user.
local M = {}

M.DEFAULT_ACCOUNT = "123456789012"
M.DEFAULT = {
  access_key = "AKIAFOSIMULATOR00001",
  secret_key = "foSimulatorSecretKey/PublicTestData+0001",
  user = "fo-sim",
  user_id = "AIDAFOSIMULATOR000001",
}

--- The key table of a sim: access key id → {access_key=, secret_key=, account=, user=,
--- user_id=, arn=}. `extra`: an array of {access_key=, secret_key=, account=, user=}.
function M.table(account, extra)
  local t = {}
  local function add(k, i)
    if type(k) ~= "table" or type(k.access_key) ~= "string" or type(k.secret_key) ~= "string" then
      error(("fo.sim.new: keys[%d] needs access_key and secret_key strings"):format(i), 3)
    end
    local acct = k.account or account
    local user = k.user or ("user-" .. k.access_key:lower())
    local entry = { access_key = k.access_key, secret_key = k.secret_key, account = acct,
      user = user, user_id = k.user_id or ("AIDA" .. k.access_key:sub(5):upper()
        :gsub("[^A-Z0-9]", "X")),
      arn = ("arn:aws:iam::%s:user/%s"):format(acct, user) }
    require("fo.log").add_secret(k.secret_key)
    t[k.access_key] = entry
  end
  add(M.DEFAULT, 0)
  for i, k in ipairs(extra or {}) do add(k, i) end
  return t
end

return M
