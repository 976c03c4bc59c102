-- Reproducible pseudo-random numbers for the simulator (splitmix64 on Lua's wrapping
-- 64-bit integers): the same seed gives the same ids and the same fault draws.
local M = {}
local Rng = {}
Rng.__index = Rng

local GAMMA = 0x9E3779B97F4A7C15

-- One splitmix64 output for state x (the state itself advances by GAMMA per draw).
local function mix(x)
  x = (x ~ (x >> 30)) * 0xBF58476D1CE4E5B9
  x = (x ~ (x >> 27)) * 0x94D049BB133111EB
  return x ~ (x >> 31)
end
M.mix = mix

--- A 64-bit integer seed from a number or string (strings are hashed, so any text works).
function M.seed_of(v)
  if math.type(v) == "integer" then return v end
  if type(v) == "number" then return math.floor(v) end
  local h = require("fo.crypto").sha256(tostring(v))
  return (string.unpack("<i8", h))
end

--- A generator; `counter` resumes a stream (draws already made), so a stream saved with
--- the sim's file continues where it stopped instead of repeating.
function M.new(seed, counter)
  return setmetatable({ seed = M.seed_of(seed), counter = counter or 0 }, Rng)
end

--- The next 64-bit integer.
function Rng:next()
  self.counter = self.counter + 1
  return mix(self.seed + self.counter * GAMMA)
end

--- A float in [0, 1).
function Rng:float()
  return (self:next() >> 11) * (1.0 / 9007199254740992.0)
end

--- `n` characters drawn from `alphabet`.
function Rng:chars(n, alphabet)
  local out, k = {}, #alphabet
  for i = 1, n do
    local r = (self:next() >> 1) % k + 1
    out[i] = alphabet:sub(r, r)
  end
  return table.concat(out)
end

M.HEX = "0123456789abcdef"
M.UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

--- A version-4 UUID (lower case), as AWS request ids are written.
function Rng:uuid()
  local h = self:chars(32, M.HEX)
  local v = (self:next() >> 1) % 4
  local variant = ("89ab"):sub(v + 1, v + 1)
  return ("%s-%s-4%s-%s%s-%s"):format(h:sub(1, 8), h:sub(9, 12), h:sub(14, 16), variant,
    h:sub(18, 20), h:sub(21, 32))
end

return M
