/* fo.crypto: the hashing and encoding primitives Lua code needs (SHA-256, HMAC-SHA256,
 * hex, base64, random bytes), on OpenSSL. */
#include "fo/runtime.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static int crypto_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, md);
    lua_pushlstring(L, (const char *)md, sizeof md);
    return 1;
}

static int crypto_hmac_sha256(lua_State *L)
{
    size_t klen, n;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *s = luaL_checklstring(L, 2, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)s, n, md, &mdlen))
        return luaL_error(L, "fo.crypto.hmac_sha256: OpenSSL failed");
    lua_pushlstring(L, (const char *)md, mdlen);
    return 1;
}

static int crypto_hex(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    static const char digits[] = "0123456789abcdef";
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, n * 2);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    luaL_pushresultsize(&b, n * 2);
    return 1;
}

static int crypto_base64_encode(lua_State *L)
{
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
    luaL_Buffer b;
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = luaL_buffinitsize(L, &b, cap);
    int len = EVP_EncodeBlock((unsigned char *)out, s, (int)n);
    luaL_pushresultsize(&b, (size_t)len);
    return 1;
}

/* base64_decode(s) → bytes, or nil and a message when s is not valid base64. */
static int crypto_base64_decode(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    if (n % 4 != 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "base64: length is not a multiple of 4");
        return 2;
    }
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 1);
    int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (len < 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "base64: invalid character");
        return 2;
    }
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (n >= 1 && s[n - 1] == '=')
        len--;
    if (n >= 2 && s[n - 2] == '=')
        len--;
    luaL_pushresultsize(&b, (size_t)len);
    return 1;
}

static int crypto_random(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 4096, 1, "0..4096 bytes");
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, (size_t)n);
    if (RAND_bytes(out, (int)n) != 1)
        return luaL_error(L, "fo.crypto.random: OpenSSL has no entropy");
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

static const luaL_Reg crypto_funcs[] = {
    {"sha256", crypto_sha256},
    {"hmac_sha256", crypto_hmac_sha256},
    {"hex", crypto_hex},
    {"base64_encode", crypto_base64_encode},
    {"base64_decode", crypto_base64_decode},
    {"random", crypto_random},
    {NULL, NULL},
};

int luaopen_fo_crypto(lua_State *L)
{
    luaL_newlib(L, crypto_funcs);
    return 1;
}
