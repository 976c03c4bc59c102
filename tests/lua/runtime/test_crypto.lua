-- fo.crypto against published vectors (FIPS 180-2 SHA-256, RFC 4231 HMAC-SHA256, RFC 4648,
-- the GCM specification's AES-256 test case 16, RFC 7914 section 11 PBKDF2-HMAC-SHA256).
package.path = (os.getenv("FO_TESTS_DIR") or "tests") .. "/lua/?.lua;" .. package.path
local lu = require "luaunit"
local c = fo.crypto

function test_sha256_vectors()
  lu.assertEquals(c.hex(c.sha256("abc")),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  lu.assertEquals(c.hex(c.sha256("")),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
end

function test_hmac_sha256_rfc4231_case_2()
  lu.assertEquals(c.hex(c.hmac_sha256("Jefe", "what do ya want for nothing?")),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
end

function test_base64_rfc4648_vectors_round_trip()
  local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                    fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
  for plain, enc in pairs(vectors) do
    lu.assertEquals(c.base64_encode(plain), enc)
    lu.assertEquals(c.base64_decode(enc), plain)
  end
  local bytes = c.random(300)
  lu.assertEquals(c.base64_decode(c.base64_encode(bytes)), bytes)
end

function test_base64_decode_rejects_invalid_input()
  local v, msg = c.base64_decode("abc")
  lu.assertNil(v)
  lu.assertStrContains(msg, "multiple of 4")
  v, msg = c.base64_decode("ab!d")
  lu.assertNil(v)
  lu.assertStrContains(msg, "invalid")
end

local function unhex(s)
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- The GCM specification (McGrew & Viega), test case 16: AES-256, 96-bit IV, with AAD.
local GCM16 = {
  key = unhex(("feffe9928665731c6d6a8f9467308308"):rep(2)),
  iv = unhex("cafebabefacedbaddecaf888"),
  p = unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809"
    .. "532fcf0e2449a6b525b16aedf5aa0de657ba637b39"),
  a = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
  c = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b"
    .. "08b1056828838c5f61e6393ba7a0abcc9f662",
  t = "76fc6ece0f4e1768cddf8853bb2d551b",
}

function test_gcm_seal_matches_the_specification_vector()
  lu.assertEquals(c.hex(c.gcm_seal(GCM16.key, GCM16.iv, GCM16.p, GCM16.a)), GCM16.c .. GCM16.t)
end

function test_gcm_open_round_trips_and_refuses_a_changed_byte_or_key()
  local sealed = unhex(GCM16.c .. GCM16.t)
  lu.assertEquals(c.gcm_open(GCM16.key, GCM16.iv, sealed, GCM16.a), GCM16.p)
  local flipped = sealed:sub(1, 5) .. string.char(sealed:byte(6) ~ 1) .. sealed:sub(7)
  local v, why = c.gcm_open(GCM16.key, GCM16.iv, flipped, GCM16.a)
  lu.assertNil(v)
  lu.assertStrContains(why, "authentication failed")
  lu.assertNil(c.gcm_open(("k"):rep(32), GCM16.iv, sealed, GCM16.a))
  lu.assertNil(c.gcm_open(GCM16.key, GCM16.iv, sealed, "other aad"))
  lu.assertNil(c.gcm_open(GCM16.key, GCM16.iv, "short"))
  local key, iv = c.random(32), c.random(12)
  lu.assertEquals(c.gcm_open(key, iv, c.gcm_seal(key, iv, "")), "")
end

function test_gcm_checks_key_and_nonce_sizes()
  lu.assertErrorMsgContains("key must be 32 bytes", c.gcm_seal, "short", GCM16.iv, "x")
  lu.assertErrorMsgContains("nonce must be 12 bytes", c.gcm_seal, GCM16.key, "short", "x")
end

function test_pbkdf2_sha256_vectors()
  -- RFC 7914, section 11
  lu.assertEquals(c.hex(c.pbkdf2_sha256("passwd", "salt", 1, 64)),
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d"
    .. "77ef317c71b845b1e30bd509112041d3a19783")
  lu.assertEquals(c.hex(c.pbkdf2_sha256("password", "salt", 4096, 32)),
    "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")
  lu.assertErrorMsgContains("iterations", c.pbkdf2_sha256, "p", "s", 0, 32)
end

os.exit(lu.LuaUnit.run())
