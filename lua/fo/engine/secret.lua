-- Secrets: a config value marked `secret` is a wrapped value, and so is everything computed
-- from it (fo.format, fo.apply, `..`, references resolved through it, resource outputs
-- that echo it, stack outputs). People and programs see "[secret]" (plan, live view,
-- --json events, outputs, error messages); the state, its log and its backup hold it
-- encrypted (AES-256-GCM); resource types get the plain value when they run.
--
-- Keys, per stack (docs/engine.md "Secrets"): a passphrase from FO_CONFIG_PASSPHRASE or the
-- file FO_CONFIG_PASSPHRASE_FILE names (PBKDF2-HMAC-SHA256 with a random salt), else a key
-- file .fo/<stack>.key (32 random bytes, mode 0600) made on first use. The state records the
-- scheme, the salt and a check value sealed with the key — never the key.
local errors = require "fo.engine.errors"
local json = require "fo.json"
local log = require "fo.log"

local M = {}

M.TEXT = "[secret]"
M.FIELD = "fo:secret" -- the member of a sealed value in the state: {"fo:secret": "v1:..."}
M.ITERATIONS = 600000 -- PBKDF2 rounds for a new passphrase-keyed stack (OWASP 2023)

local PREFIX = "v1:"
local AAD = "fo-secret-v1"
local CHECK_TEXT = "fo secrets check"

local Secret = { __name = "fo.Secret" }
-- wrapper → { value = plain value (once known), sealed = "v1:...", keys = keyring }; weak.
local data = setmetatable({}, { __mode = "k" })
-- Secrets made so far in this process: while none, the walks below are skipped (a stack
-- without secrets pays nothing for them).
local made = 0

local function crypto()
  return require "fo.crypto"
end

function M.is(v)
  return type(v) == "table" and data[v] ~= nil
end

-- Every string the secret holds is registered with fo.log: all output (logs, errors, the
-- report) masks it as "[secret]", a second line of defence behind the wrapper.
local function note(v)
  if type(v) == "string" then log.add_secret(v, M.TEXT)
  elseif type(v) == "table" and getmetatable(v) == nil then
    for _, x in pairs(v) do note(x) end
  end
end

M.note = note

-- A plain table (no metatable: not a reference, an unknown, a secret or EMPTY_ARRAY).
local function plain_table(v)
  return type(v) == "table" and getmetatable(v) == nil
end

--- The secret holding `v` (v itself when it is one).
function M.wrap(v)
  if M.is(v) then return v end
  local s = setmetatable({}, Secret)
  made = made + 1
  -- one secret holds plain values: a table built with secrets inside is secret as a whole
  v = M.reveal(v)
  data[s] = { value = v, known = true }
  note(v)
  return s
end

local function value_of(s)
  local d = data[s]
  if not d.known then
    d.value, d.known = d.keys:open(d.sealed), true
    note(d.value)
  end
  return d.value
end

--- True when `v` holds a secret anywhere (plain tables walked).
function M.contains(v, seen)
  if made == 0 then return false end
  if M.is(v) then return true end
  if not plain_table(v) then return false end
  seen = seen or {}
  if seen[v] then return false end
  seen[v] = true
  for k, x in pairs(v) do
    if M.contains(k, seen) or M.contains(x, seen) then return true end
  end
  return false
end

--- `v` with every secret replaced by its plain value (decrypted when it came from the
--- state); tables are copied only when they hold a secret.
function M.reveal(v)
  if M.is(v) then return M.reveal(value_of(v)) end
  if not plain_table(v) or not M.contains(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[M.reveal(k)] = M.reveal(x) end
  return out
end

--- fn(...) on the plain values of its arguments; the result is secret when any argument
--- holds one. An error's message is masked (it may quote the plain value).
function M.lift(fn, ...)
  local args = table.pack(...)
  local tainted = false
  for i = 1, args.n do
    if M.contains(args[i]) then tainted = true; args[i] = M.reveal(args[i]) end
  end
  if not tainted then return fn(...) end
  local ok, v = pcall(fn, table.unpack(args, 1, args.n))
  if not ok then error(type(v) == "string" and log.redact(v) or v, 0) end
  return M.wrap(v)
end

--- `s` with every registered secret shown as "[secret]".
function M.scrub(s)
  return log.redact(s)
end

--- A writer of text that writes it with the secret values masked.
function M.masked(write)
  return function(s) return write(log.redact(s)) end
end

-- Recipes use secrets through fo.format, fo.apply and `..`; anything else is a mistake
-- that must not show the value.
local function misuse(what)
  errors.raise("recipe", ("%s a secret value: build values from it with fo.format(\"...%%s...\", "
    .. "v), fo.apply(v, fn) or `..` (each gives a secret)"):format(what), errors.where(3))
end

Secret.__tostring = function() return M.TEXT end
Secret.__index = function(_, k)
  misuse(("cannot read field %s of"):format(tostring(k)))
end
Secret.__newindex = function() misuse("cannot change") end
Secret.__len = function() misuse("cannot take the length of") end
Secret.__concat = function(a, b)
  local ref = require "fo.engine.ref"
  if ref.is(a) or ref.is(b) then
    return ref.derive({ a, b, n = 2 }, function(x, y) return tostring(x) .. tostring(y) end,
      errors.where(2))
  end
  return M.lift(function(x, y) return tostring(x) .. tostring(y) end, a, b)
end

-- Outputs of resources --------------------------------------------------------------------

-- The plain strings of the secrets in `v` (a set), for M.mark.
local function secret_strings(v, out, inside)
  out = out or {}
  if M.is(v) then return secret_strings(value_of(v), out, true) end
  if type(v) == "string" and inside then out[v] = true
  elseif plain_table(v) then
    for _, x in pairs(v) do secret_strings(x, out, inside) end
  end
  return out
end

local function echoes(s, strings)
  for x in pairs(strings) do
    if s == x or (#x >= 4 and s:find(x, 1, true)) then return true end
  end
  return false
end

local function mark_with(v, strings, like)
  if M.is(like) and v ~= nil and not M.is(v) then return M.wrap(v) end
  if type(v) == "string" then return echoes(v, strings) and M.wrap(v) or v end
  if not plain_table(v) then return v end
  local out, changed = {}, false
  for k, x in pairs(v) do
    local y = mark_with(x, strings, plain_table(like) and like[k] or nil)
    out[k], changed = y, changed or y ~= x
  end
  return changed and out or v
end

--- What a resource type returned (outputs, or properties it observed), with the secret
--- marks put back: a value where `like` (what the state recorded there) was secret stays
--- secret, and so does a string that equals or contains a secret string of `sources`
--- (e.g. an output echoing a secret input).
function M.mark(v, like, ...)
  if made == 0 then return v end
  local strings = {}
  for i = 1, select("#", ...) do secret_strings(select(i, ...), strings) end
  secret_strings(like, strings)
  if next(strings) == nil and not M.contains(like) then return v end
  return mark_with(v, strings, like)
end

--- True when `a` and `b` (equal values) have their secrets in the same places: when not,
--- the state's record is rewritten with the new marks.
function M.same_marks(a, b)
  if M.is(a) or M.is(b) then return M.is(a) and M.is(b) end
  if not (plain_table(a) and plain_table(b)) then return true end
  for k, x in pairs(a) do if not M.same_marks(x, b[k]) then return false end end
  for k, y in pairs(b) do if a[k] == nil and M.is(y) then return false end end
  return true
end

--- A resource type's functions as the engine calls them: each gets plain values, and what
--- it returns gets the secret marks of what it was given (M.mark).
function M.type_calls(def)
  local out = {}
  local create, read, update, delete = def.create, def.read, def.update, def.delete
  local adopt, diff = def.adopt, def.diff
  local R = M.reveal
  out.create = function(ctx, p)
    local id, outputs = create(ctx, R(p))
    return id, M.mark(outputs, nil, p)
  end
  out.read = function(ctx, id, inputs, outputs)
    local o, observed = read(ctx, id, R(inputs), R(outputs))
    return M.mark(o, outputs, inputs), M.mark(observed, inputs, outputs)
  end
  if update then -- a type without update replaces on every change
    out.update = function(ctx, id, old, new, outputs)
      local o = update(ctx, id, R(old), R(new), R(outputs))
      return M.mark(o, outputs, new)
    end
  end
  if delete then -- a data type has none (types.lua)
    out.delete = function(ctx, id, inputs, outputs)
      return delete(ctx, id, R(inputs), R(outputs))
    end
  end
  if adopt then
    out.adopt = function(ctx, p)
      local id, outputs = adopt(ctx, R(p))
      return id, M.mark(outputs, nil, p)
    end
  end
  if diff then
    out.diff = function(old, new) return diff(R(old), R(new)) end
  end
  return out
end

-- The state ---------------------------------------------------------------------------

--- A copy of `v` fit for the state: each secret as {"fo:secret": "v1:<base64 of nonce,
--- ciphertext and tag>"}, sealed with `keys` (a value read from the state keeps its
--- ciphertext: nothing is decrypted to be written again). `v` itself when it holds none.
function M.seal(v, keys)
  if M.is(v) then
    local d = data[v]
    if not (d.sealed and d.keys == keys) then
      if not keys then
        errors.raise("state", "a secret value cannot be written to the state: no key (internal)")
      end
      d.sealed, d.keys = keys:seal(d.value), keys
    end
    return { [M.FIELD] = d.sealed }
  end
  if not plain_table(v) or not M.contains(v) then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.seal(x, keys) end
  return out
end

local function sealed_text(v)
  if not plain_table(v) then return nil end
  local text = v[M.FIELD]
  if type(text) == "string" and next(v, next(v)) == nil then return text end
  return nil
end

--- `v` as read from the state, with each sealed value turned into a secret decrypted with
--- `keys` when its value is first needed (tables changed in place).
function M.unseal(v, keys)
  local text = sealed_text(v)
  if text then
    local s = setmetatable({}, Secret)
    made = made + 1
    data[s] = { sealed = text, keys = keys, known = false }
    return s
  end
  if plain_table(v) then
    for k, x in pairs(v) do v[k] = M.unseal(x, keys) end
  end
  return v
end

--- True when the state document `doc` holds a sealed value.
function M.sealed_in(v)
  if sealed_text(v) then return true end
  if plain_table(v) then
    for _, x in pairs(v) do if M.sealed_in(x) then return true end end
  end
  return false
end

-- Keys ----------------------------------------------------------------------------------

local Keyring = {}
Keyring.__index = Keyring

local MODE = tonumber("600", 8)

--- The keys of a stack: opts = { stack =, key_path = (.fo/<stack>.key), meta = (the state's
--- `secrets` member, nil for a stack that never held one), getenv = (default os.getenv) }.
--- provider = (the stack's secrets_provider setting: "awskms://KEY" or "passphrase"),
--- region = (KMS's), no_key_file = (a backend shared by machines: a new stack gets no key
--- file), kms = (a KMS client, for tests).
--- Nothing is read or derived before a value is sealed or opened, or unlock() is called.
function M.keyring(opts)
  return setmetatable({ stack = opts.stack, key_path = opts.key_path, meta = opts.meta,
    getenv = opts.getenv or os.getenv, provider = opts.provider, region = opts.region,
    no_key_file = opts.no_key_file, kms = opts.kms }, Keyring)
end

M.KMS_PREFIX = "awskms://"

--- The KMS key named by a secrets_provider "awskms://alias/x" (or a key id or ARN), or nil.
function M.kms_key(provider)
  if type(provider) ~= "string" or provider:sub(1, #M.KMS_PREFIX) ~= M.KMS_PREFIX then
    return nil
  end
  local key = provider:sub(#M.KMS_PREFIX + 1)
  return key ~= "" and key or nil
end

-- The KMS client of the keyring (fo.aws.kms; the region of the key's ARN when it has one).
function Keyring:_kms(key_id)
  if self.kms then return self.kms end
  local ctor = require("fo.aws").kms
  if not ctor then
    errors.raise("usage", ("secrets_provider awskms://%s: this fo-run has no KMS client; use "
      .. "FO_CONFIG_PASSPHRASE instead; nothing was changed"):format(key_id))
  end
  self.kms = ctor{ region = tostring(key_id):match("^arn:[^:]+:kms:([^:]+):") or self.region }
  return self.kms
end

-- Calls KMS; a failure is a cloud error naming the key (never the data key).
function Keyring:_kms_call(op, key_id, input)
  local ok, out = pcall(function() return self:_kms(key_id)[op](self:_kms(key_id), input) end)
  if ok then return out end
  if errors.is(out) then error(out, 0) end
  errors.raise("cloud", ("KMS %s with key %s for the secrets of stack %s failed: %s; nothing was "
    .. "changed"):format(op, key_id, self.stack, log.redact(require("fo.task").describe(out))))
end

local function usage(fmt, ...)
  errors.raise("usage", fmt:format(...))
end

-- The passphrase from the environment, or nil; raises when it is given wrongly.
function Keyring:passphrase()
  local direct, file = self.getenv("FO_CONFIG_PASSPHRASE"), self.getenv("FO_CONFIG_PASSPHRASE_FILE")
  if direct and direct ~= "" and file and file ~= "" then
    usage("both FO_CONFIG_PASSPHRASE and FO_CONFIG_PASSPHRASE_FILE are set: set one; nothing "
      .. "was changed")
  end
  if file and file ~= "" then
    local f, why = io.open(file, "rb")
    if not f then usage("FO_CONFIG_PASSPHRASE_FILE: cannot read %s; nothing was changed", why) end
    local text = f:read("a") or ""
    f:close()
    text = text:gsub("\r?\n$", "")
    if text == "" then usage("FO_CONFIG_PASSPHRASE_FILE: %s is empty; nothing was changed", file) end
    return text
  end
  if direct == "" then
    usage("FO_CONFIG_PASSPHRASE is set but empty: give a passphrase or unset it; nothing was "
      .. "changed")
  end
  return direct
end

-- The key in the key file (made when `create` and there is none); raises when it is
-- readable by others or not a key.
function Keyring:file_key(create)
  local fs = require "fo.fs"
  local path = self.key_path
  local mode = fs.mode(path)
  if not mode then
    if not create then return nil end
    local key = crypto().random(32)
    fs.write_atomic(path, crypto().base64_encode(key) .. "\n", MODE)
    self.created_file = true
    return key
  end
  if mode & tonumber("077", 8) ~= 0 then
    usage("the key file %s of stack %s can be read by others (mode %03o): it must be readable "
      .. "by its owner only. Run `chmod 600 %s` (and consider the key seen: rotate the secrets "
      .. "it protects); nothing was changed", path, self.stack, mode, path)
  end
  local f = io.open(path, "rb")
  local text = f and f:read("a") or ""
  if f then f:close() end
  local key = crypto().base64_decode((text:gsub("%s+$", "")))
  if not key or #key ~= 32 then
    usage("the key file %s of stack %s is not an fo key (base64 of 32 bytes); nothing was "
      .. "changed", path, self.stack)
  end
  return key
end

function Keyring:_seal_with(key, plaintext)
  local nonce = crypto().random(12)
  return PREFIX .. crypto().base64_encode(nonce .. crypto().gcm_seal(key, nonce, plaintext, AAD))
end

function Keyring:_open_with(key, text)
  if type(text) ~= "string" or text:sub(1, #PREFIX) ~= PREFIX then return nil, "not a sealed value" end
  local raw = crypto().base64_decode(text:sub(#PREFIX + 1))
  if not raw or #raw < 12 + 16 then return nil, "not a sealed value" end
  return crypto().gcm_open(key, raw:sub(1, 12), raw:sub(13), AAD)
end

local function state_error(self, why)
  errors.raise("state", ("the secrets of stack %s in its state cannot be used: %s; nothing was "
    .. "changed"):format(self.stack, why))
end

--- Makes the key ready: from the scheme the state records (checked against its check
--- value: a wrong passphrase or key file is a usage error, exit 2), or, for a stack that
--- never held a secret, a new scheme (passphrase when one is set, else a new key file).
--- Returns the `secrets` member the state must record when it is new (else nil).
function Keyring:unlock()
  if self.key then return nil end
  local meta = self.meta
  if meta == nil then
    local pass = self:passphrase()
    local new = { cipher = "aes-256-gcm" }
    local kms_key = M.kms_key(self.provider)
    if self.provider and not kms_key and self.provider ~= "passphrase" then
      usage("secrets_provider %s of stack %s: use awskms://KEY (a KMS key id, ARN or alias/NAME) "
        .. "or passphrase; nothing was changed", self.provider, self.stack)
    end
    if kms_key then
      -- envelope encryption: a data key from KMS, kept in the state wrapped by the KMS key
      new.key, new.kms_key = "awskms", kms_key
      local out = self:_kms_call("GenerateDataKey", kms_key, { KeyId = kms_key,
        KeySpec = "AES_256" })
      self.key = out.Plaintext
      new.wrapped = crypto().base64_encode(out.CiphertextBlob)
    elseif self.provider == "passphrase" and not pass then
      usage("stack %s's secrets_provider is passphrase: set FO_CONFIG_PASSPHRASE (or "
        .. "FO_CONFIG_PASSPHRASE_FILE); nothing was changed", self.stack)
    elseif pass then
      new.key, new.kdf, new.iterations = "passphrase", "pbkdf2-hmac-sha256", M.ITERATIONS
      local salt = crypto().random(16)
      new.salt = crypto().base64_encode(salt)
      self.key = crypto().pbkdf2_sha256(pass, salt, new.iterations, 32)
    elseif self.no_key_file then
      usage("stack %s needs a key for its secrets, and its state is shared (a remote backend): a "
        .. "key file on this machine would be this machine's only. Set secrets_provider = "
        .. "\"awskms://alias/NAME\" in the stack's config file (a KMS key wraps the data key), or "
        .. "FO_CONFIG_PASSPHRASE; nothing was changed", self.stack)
    else
      new.key = "file"
      self.key = self:file_key(true)
    end
    new.check = self:_seal_with(self.key, CHECK_TEXT)
    self.meta = new
    return new
  end
  if type(meta) ~= "table" or meta.cipher ~= "aes-256-gcm" or type(meta.check) ~= "string" then
    state_error(self, "its `secrets` member is not one this fo knows (cipher aes-256-gcm)")
  end
  local key
  if meta.key == "passphrase" then
    local pass = self:passphrase()
    if not pass then
      usage("stack %s holds secrets encrypted with a passphrase: set FO_CONFIG_PASSPHRASE (or "
        .. "FO_CONFIG_PASSPHRASE_FILE) to it; nothing was changed", self.stack)
    end
    local salt = type(meta.salt) == "string" and crypto().base64_decode(meta.salt)
    if not salt or math.type(meta.iterations) ~= "integer" or meta.iterations < 1 then
      state_error(self, "its passphrase salt or iteration count is missing or invalid")
    end
    key = crypto().pbkdf2_sha256(pass, salt, meta.iterations, 32)
    if self:_open_with(key, meta.check) ~= CHECK_TEXT then
      usage("wrong passphrase for the secrets of stack %s (FO_CONFIG_PASSPHRASE%s): give the one "
        .. "its secrets were encrypted with; nothing was changed", self.stack,
        (self.getenv("FO_CONFIG_PASSPHRASE_FILE") or "") ~= "" and "_FILE" or "")
    end
  elseif meta.key == "awskms" then
    local wrapped = type(meta.wrapped) == "string" and crypto().base64_decode(meta.wrapped)
    if not wrapped or type(meta.kms_key) ~= "string" then
      state_error(self, "its KMS-wrapped data key or key id is missing")
    end
    key = self:_kms_call("Decrypt", meta.kms_key, { KeyId = meta.kms_key,
      CiphertextBlob = wrapped }).Plaintext
    if type(key) ~= "string" or #key ~= 32 or self:_open_with(key, meta.check) ~= CHECK_TEXT then
      state_error(self, ("the data key KMS key %s unwrapped does not open its check value"):format(
        meta.kms_key))
    end
  elseif meta.key == "file" then
    key = self:file_key(false)
    if not key then
      usage("stack %s holds secrets encrypted with the key file %s, which is missing: restore it "
        .. "(from where you keep a copy); without it the secrets in the state cannot be read. "
        .. "Nothing was changed", self.stack, self.key_path)
    end
    if self:_open_with(key, meta.check) ~= CHECK_TEXT then
      usage("the key file %s is not the key the secrets of stack %s were encrypted with: restore "
        .. "the right one; nothing was changed", self.key_path, self.stack)
    end
  else
    state_error(self, ("its key scheme %s is unknown (passphrase, file or awskms)"):format(
      tostring(meta.key)))
  end
  self.key = key
  return nil
end

--- Readies the keys of a run over the state document `doc` before anything is changed:
--- a stack whose state holds secrets needs its key now (every run decrypts: plans diff,
--- deletes and refreshes give types plain values), and is refused with a usage error
--- (exit 2) when the passphrase or key file is wrong or missing; a stack that does not yet
--- hold any gets its scheme when `wants` (this run has secret values) and the run writes
--- (`writes`). Returns the `secrets` member to record in the state when it is new.
function Keyring:prepare(doc, wants, writes)
  if doc.secrets == nil and M.sealed_in(doc) then
    state_error(self, "it holds encrypted values but no `secrets` member naming their key scheme")
  end
  if doc.secrets ~= nil or (wants and writes) then return self:unlock() end
  return nil
end

--- Seals one value: "v1:<base64>" (AES-256-GCM, a random 96-bit nonce per value).
function Keyring:seal(value)
  self:unlock()
  return self:_seal_with(self.key, json.encode({ v = value }))
end

--- Opens what seal gave; raises a state error when it is damaged.
function Keyring:open(text)
  self:unlock()
  local plaintext, why = self:_open_with(self.key, text)
  if not plaintext then state_error(self, "a sealed value does not open (" .. why .. ")") end
  local ok, doc = pcall(json.decode, plaintext)
  if not ok or type(doc) ~= "table" then state_error(self, "a sealed value is not fo's") end
  return doc.v
end

return M
