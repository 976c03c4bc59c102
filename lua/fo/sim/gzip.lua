-- gzip (RFC 1952) request bodies, for the simulator: a client may send an operation whose
-- model has the `requestcompression` trait (CloudWatch PutMetricData) gzip-compressed with
-- `Content-Encoding: gzip`, as the AWS SDKs do by default for bodies of 10,240 bytes or
-- more (botocore since 1.31, so the AWS CLI 1.45 / botocore 1.43). AWS accepts those;
-- fo-run links no zlib, so the inflater (RFC 1951) is here, in Lua, after zlib's puff.c.
-- Bodies are small (capped, fo.sim.limits), so clarity wins over speed.
local M = {}

local byte, char, concat = string.byte, string.char, table.concat

-- Raised for a body that is not valid gzip; `what` says why.
local function bad(what) error({ gzip = true, message = what }, 0) end

-- Length and distance codes: base values and extra bits (RFC 1951 3.2.5).
local LEN_BASE = { 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67,
  83, 99, 115, 131, 163, 195, 227, 258 }
local LEN_EXTRA = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5,
  5, 5, 0 }
local DIST_BASE = { 1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
  1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 }
local DIST_EXTRA = { 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11,
  11, 12, 12, 13, 13 }
-- The order code-length code lengths come in (RFC 1951 3.2.7).
local CL_ORDER = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 }

-- Bit reader over s from byte pos: bits come least significant first.
local function reader(s, pos)
  return { s = s, pos = pos, buf = 0, cnt = 0 }
end

local function bits(r, n)
  while r.cnt < n do
    local b = byte(r.s, r.pos)
    if not b then bad("truncated deflate data") end
    r.buf = r.buf | (b << r.cnt)
    r.pos, r.cnt = r.pos + 1, r.cnt + 8
  end
  local v = r.buf & ((1 << n) - 1)
  r.buf, r.cnt = r.buf >> n, r.cnt - n
  return v
end

-- A canonical Huffman code from code lengths (lengths[0..n-1]): counts per length and the
-- symbols in code order (puff.c's construct). Over-subscribed codes are refused.
local function huffman(lengths, n)
  local count, offs, symbol = {}, {}, {}
  for len = 0, 15 do count[len] = 0 end
  for sym = 0, n - 1 do count[lengths[sym]] = count[lengths[sym]] + 1 end
  local left = 1
  for len = 1, 15 do
    left = left * 2 - count[len]
    if left < 0 then bad("over-subscribed Huffman code") end
  end
  offs[1] = 0
  for len = 1, 14 do offs[len + 1] = offs[len] + count[len] end
  for sym = 0, n - 1 do
    local len = lengths[sym]
    if len ~= 0 then
      symbol[offs[len]] = sym
      offs[len] = offs[len] + 1
    end
  end
  return { count = count, symbol = symbol }
end

local function decode(r, h)
  local code, first, index = 0, 0, 0
  for len = 1, 15 do
    code = code | bits(r, 1)
    local count = h.count[len]
    if code - count < first then return h.symbol[index + (code - first)] end
    index, first = index + count, (first + count) << 1
    code = code << 1
  end
  bad("invalid Huffman code")
end

local FIXED_LIT, FIXED_DIST
do
  local l = {}
  for s = 0, 143 do l[s] = 8 end
  for s = 144, 255 do l[s] = 9 end
  for s = 256, 279 do l[s] = 7 end
  for s = 280, 287 do l[s] = 8 end
  FIXED_LIT = huffman(l, 288)
  local d = {}
  for s = 0, 29 do d[s] = 5 end
  FIXED_DIST = huffman(d, 30)
end

local function dynamic_tables(r)
  local nlen, ndist, ncode = bits(r, 5) + 257, bits(r, 5) + 1, bits(r, 4) + 4
  if nlen > 286 or ndist > 30 then bad("bad dynamic block counts") end
  local lengths = {}
  for i = 0, 18 do lengths[i] = 0 end
  for i = 1, ncode do lengths[CL_ORDER[i]] = bits(r, 3) end
  local lencode = huffman(lengths, 19)
  local index = 0
  lengths = {}
  while index < nlen + ndist do
    local sym = decode(r, lencode)
    if sym < 16 then
      lengths[index], index = sym, index + 1
    else
      local len, rep = 0, nil
      if sym == 16 then
        if index == 0 then bad("repeat with no first length") end
        len, rep = lengths[index - 1], 3 + bits(r, 2)
      elseif sym == 17 then
        rep = 3 + bits(r, 3)
      else
        rep = 11 + bits(r, 7)
      end
      if index + rep > nlen + ndist then bad("too many lengths") end
      for _ = 1, rep do lengths[index], index = len, index + 1 end
    end
  end
  if lengths[256] == 0 then bad("no end-of-block code") end
  local dist = {}
  for i = 0, ndist - 1 do dist[i] = lengths[nlen + i] end
  return huffman(lengths, nlen), huffman(dist, ndist)
end

-- Inflates the deflate stream at s[pos...] into out (an array of byte values, appended),
-- at most `max` bytes in all. Returns the position after the stream.
local function inflate(s, pos, out, max)
  local r = reader(s, pos)
  repeat
    local last, kind = bits(r, 1), bits(r, 2)
    if kind == 0 then -- stored: byte-aligned LEN, NLEN, then LEN bytes
      r.buf, r.cnt = 0, 0
      local a, b, c, d = byte(s, r.pos, r.pos + 3)
      if not d then bad("truncated stored block") end
      local len = a | (b << 8)
      if len ~= (~(c | (d << 8)) & 0xffff) then bad("stored block length mismatch") end
      if r.pos + 3 + len > #s then bad("truncated stored block") end
      if #out + len > max then return nil end
      for i = r.pos + 4, r.pos + 3 + len do out[#out + 1] = byte(s, i) end
      r.pos = r.pos + 4 + len
    elseif kind == 1 or kind == 2 then
      local lit, dist = FIXED_LIT, FIXED_DIST
      if kind == 2 then lit, dist = dynamic_tables(r) end
      while true do
        local sym = decode(r, lit)
        if sym < 256 then
          if #out >= max then return nil end
          out[#out + 1] = sym
        elseif sym == 256 then
          break
        else
          sym = sym - 256
          if sym > 29 then bad("invalid length code") end
          local len = LEN_BASE[sym] + bits(r, LEN_EXTRA[sym])
          local dsym = decode(r, dist)
          if dsym > 29 then bad("invalid distance code") end
          local d = DIST_BASE[dsym + 1] + bits(r, DIST_EXTRA[dsym + 1])
          local n = #out
          if d > n then bad("distance too far back") end
          if n + len > max then return nil end
          for i = n + 1, n + len do out[i] = out[i - d] end
        end
      end
    else
      bad("invalid block type")
    end
  until last == 1
  return r.pos
end

local CRC = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do c = (c & 1 == 1) and (0xedb88320 ~ (c >> 1)) or (c >> 1) end
  CRC[i] = c
end

local function u32(s, pos)
  local a, b, c, d = byte(s, pos, pos + 3)
  if not d then bad("truncated gzip trailer") end
  return a | (b << 8) | (c << 16) | (d << 24)
end

--- The data of the gzip body `s` (one or more members, RFC 1952 2.2), each member's CRC-32
--- and size checked. Returns the data, or nil and a message when it is not valid gzip
--- (`too_large` = true when it inflates to more than `max` bytes).
function M.decompress(s, max)
  local out, pos = {}, 1
  local ok, err = pcall(function()
    repeat
      local id1, id2, cm, flg = byte(s, pos, pos + 3)
      if id1 ~= 0x1f or id2 ~= 0x8b then bad("not gzip data (no 1f 8b magic)") end
      if cm ~= 8 then bad("compression method " .. tostring(cm) .. ", not deflate") end
      if flg & 0xe0 ~= 0 then bad("reserved header flags set") end
      pos = pos + 10
      if flg & 4 ~= 0 then -- FEXTRA
        local a, b = byte(s, pos, pos + 1)
        if not b then bad("truncated gzip header") end
        pos = pos + 2 + (a | (b << 8))
      end
      for _, flag in ipairs({ 8, 16 }) do -- FNAME, FCOMMENT: zero-terminated
        if flg & flag ~= 0 then
          local z = s:find("\0", pos, true)
          if not z then bad("truncated gzip header") end
          pos = z + 1
        end
      end
      if flg & 2 ~= 0 then pos = pos + 2 end -- FHCRC
      if pos > #s then bad("truncated gzip header") end
      local start = #out
      pos = inflate(s, pos, out, max)
      if not pos then error({ too_large = true }, 0) end
      local crc = 0xffffffff
      for i = start + 1, #out do crc = CRC[(crc ~ out[i]) & 0xff] ~ (crc >> 8) end
      if u32(s, pos) ~= crc ~ 0xffffffff then bad("CRC-32 mismatch") end
      if u32(s, pos + 4) ~= (#out - start) & 0xffffffff then bad("size mismatch") end
      pos = pos + 8
    until pos > #s
  end)
  if not ok then
    if type(err) == "table" and err.too_large then
      return nil, ("inflates to more than %d bytes"):format(max), true
    end
    if type(err) == "table" and err.gzip then return nil, err.message end
    error(err, 0)
  end
  local parts = {}
  for i = 1, #out, 4096 do
    parts[#parts + 1] = char(table.unpack(out, i, math.min(i + 4095, #out)))
  end
  return concat(parts)
end

return M
