-- fo.crypto against published vectors (FIPS 180-2 SHA-256, RFC 4231 HMAC-SHA256, RFC 4648).
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

os.exit(lu.LuaUnit.run())
