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

--- The key table entry of k = {access_key=, secret_key=, session_token=, account=, user=,
--- user_id=, arn=, expires= (virtual time after which the sim answers ExpiredToken)} (account defaults to `account`): a temporary key has the session token
--- it was issued with, and the sim accepts it only with that token. The secret and the
--- token are registered with fo.log (never logged). `where` names k in errors.
function M.entry(k, account, where)
  if type(k) ~= "table" or type(k.access_key) ~= "string" or type(k.secret_key) ~= "string" then
    error(("%s needs access_key and secret_key strings"):format(where), 3)
  end
  if k.session_token ~= nil and (type(k.session_token) ~= "string" or k.session_token == "") then
    error(("%s: session_token must be a non-empty string"):format(where), 3)
  end
  local acct = k.account or account
  local user = k.user or ("user-" .. k.access_key:lower())
  require("fo.log").add_secret(k.secret_key)
  if k.session_token then require("fo.log").add_secret(k.session_token) end
  return { access_key = k.access_key, secret_key = k.secret_key, session_token = k.session_token,
    account = acct, user = user, user_id = k.user_id or ("AIDA" .. k.access_key:sub(5):upper()
      :gsub("[^A-Z0-9]", "X")),
    arn = k.arn or ("arn:aws:iam::%s:user/%s"):format(acct, user), expires = k.expires,
    mfa = k.mfa }
end

--- The key table of a sim: access key id → entry (M.entry). `extra`: an array of
--- {access_key=, secret_key=, session_token=, account=, user=}.
function M.table(account, extra)
  local t = {}
  t[M.DEFAULT.access_key] = M.entry(M.DEFAULT, account, "fo.sim.new: keys[0]")
  for i, k in ipairs(extra or {}) do
    local e = M.entry(k, account, ("fo.sim.new: keys[%d]"):format(i))
    t[e.access_key] = e
  end
  return t
end

return M
