/* fo.crypto: the hashing and encoding primitives Lua code needs (SHA-256, HMAC-SHA256,
 * hex, base64, random bytes; MD5, SHA-1, CRC32 and CRC32C for S3's ETags and checksums), the
 * authenticated cipher of the engine's secrets (AES-256-GCM) and key derivation from a passphrase
 * (PBKDF2-HMAC-SHA256), on OpenSSL. */
#include "fo/runtime.h"
#include "dl/libcrypto.h"

#include <lauxlib.h>
#include <limits.h>
#include <string.h>
#include <stdint.h>

/* Pushes the `size`-byte digest of the string argument 1 made by one of libcrypto's
 * one-shot hashes (SHA256, SHA1: libcrypto is loaded when the module opens). */
static int push_digest(lua_State *L,
                       unsigned char *(*hash)(const unsigned char *, size_t, unsigned char *),
                       size_t size)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[SHA256_DIGEST_LENGTH]; /* the larger of the two */
    hash((const unsigned char *)s, n, md);
    lua_pushlstring(L, (const char *)md, size);
    return 1;
}

static int crypto_sha256(lua_State *L)
{
    return push_digest(L, fo_libcrypto()->SHA256, SHA256_DIGEST_LENGTH);
}

/* SHA-1 for S3's x-amz-checksum-sha1 and to name files the AWS CLI names with it (the SSO
 * token cache), never for security. */
static int crypto_sha1(lua_State *L)
{
    return push_digest(L, fo_libcrypto()->SHA1, SHA_DIGEST_LENGTH);
}

static int crypto_hmac_sha256(lua_State *L)
{
    size_t klen, n;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *s = luaL_checklstring(L, 2, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!fo_libcrypto()->HMAC(fo_libcrypto()->EVP_sha256(), key, (int)klen,
                              (const unsigned char *)s, n, md, &mdlen))
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
    int len = fo_libcrypto()->EVP_EncodeBlock((unsigned char *)out, s, (int)n);
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
    int len = fo_libcrypto()->EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
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
    if (fo_libcrypto()->RAND_bytes(out, (int)n) != 1)
        return luaL_error(L, "fo.crypto.random: OpenSSL has no entropy");
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

enum { GCM_KEY = 32, GCM_NONCE = 12, GCM_TAG = 16 };

/* One AES-256-GCM pass over `in` (n bytes) into `out`; for decryption `tag` is checked.
 * Returns 1 on success, 0 when OpenSSL fails or (decrypting) the tag does not match. */
static int gcm(int encrypt, const unsigned char *key, const unsigned char *nonce,
               const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t n,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = fo_libcrypto()->EVP_CIPHER_CTX_new();
    int len = 0, ok = c != NULL;
    ok = ok && fo_libcrypto()->EVP_CipherInit_ex(c, fo_libcrypto()->EVP_aes_256_gcm(), NULL, NULL,
                                                 NULL, encrypt) == 1;
    ok = ok && fo_libcrypto()->EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) == 1;
    ok = ok && fo_libcrypto()->EVP_CipherInit_ex(c, NULL, NULL, key, nonce, encrypt) == 1;
    ok = ok &&
         (aadlen == 0 || fo_libcrypto()->EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) == 1);
    ok = ok && (n == 0 || fo_libcrypto()->EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
    if (ok && !encrypt)
        ok = fo_libcrypto()->EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1;
    /* GCM writes nothing at the end; the final call checks the tag when decrypting */
    ok = ok && fo_libcrypto()->EVP_CipherFinal_ex(c, out + n, &len) == 1;
    if (ok && encrypt)
        ok = fo_libcrypto()->EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) == 1;
    fo_libcrypto()->EVP_CIPHER_CTX_free(c);
    return ok;
}

static const unsigned char *check_sized(lua_State *L, int arg, size_t want, const char *what)
{
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    if (n != want)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be %d bytes", what, (int)want));
    return (const unsigned char *)s;
}

/* gcm_seal(key32, nonce12, plaintext [, aad]) → ciphertext .. tag (16 bytes). The caller
 * never reuses a nonce with a key (fo draws a random one per value). */
static int crypto_gcm_seal(lua_State *L)
{
    const unsigned char *key = check_sized(L, 1, GCM_KEY, "key");
    const unsigned char *nonce = check_sized(L, 2, GCM_NONCE, "nonce");
    size_t n, aadlen;
    const unsigned char *in = (const unsigned char *)luaL_checklstring(L, 3, &n);
    const unsigned char *aad = (const unsigned char *)luaL_optlstring(L, 4, "", &aadlen);
    luaL_argcheck(L, n <= (size_t)INT_MAX - GCM_TAG && aadlen <= (size_t)INT_MAX, 3, "too long");
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n + GCM_TAG);
    if (!gcm(1, key, nonce, aad, aadlen, in, n, out, out + n))
        return luaL_error(L, "fo.crypto.gcm_seal: OpenSSL failed");
    luaL_pushresultsize(&b, n + GCM_TAG);
    return 1;
}

/* gcm_open(key32, nonce12, ciphertext .. tag [, aad]) → plaintext, or nil and a message
 * when the tag does not match (a wrong key, or data changed). */
static int crypto_gcm_open(lua_State *L)
{
    const unsigned char *key = check_sized(L, 1, GCM_KEY, "key");
    const unsigned char *nonce = check_sized(L, 2, GCM_NONCE, "nonce");
    size_t n, aadlen;
    const unsigned char *in = (const unsigned char *)luaL_checklstring(L, 3, &n);
    const unsigned char *aad = (const unsigned char *)luaL_optlstring(L, 4, "", &aadlen);
    if (n < GCM_TAG || n > (size_t)INT_MAX || aadlen > (size_t)INT_MAX) {
        luaL_pushfail(L);
        lua_pushliteral(L, "ciphertext too short or too long");
        return 2;
    }
    n -= GCM_TAG;
    unsigned char tag[GCM_TAG];
    memcpy(tag, in + n, GCM_TAG);
    luaL_Buffer b;
    unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n + 1);
    if (!gcm(0, key, nonce, aad, aadlen, in, n, out, tag)) {
        fo_libcrypto()->OPENSSL_cleanse(out, n);
        luaL_pushfail(L);
        lua_pushliteral(L, "authentication failed (wrong key, or the data was changed)");
        return 2;
    }
    luaL_pushresultsize(&b, n);
    return 1;
}

/* pbkdf2_sha256(passphrase, salt, iterations, length) → key bytes. */
static int crypto_pbkdf2_sha256(lua_State *L)
{
    size_t plen, slen;
    const char *pass = luaL_checklstring(L, 1, &plen);
    const unsigned char *salt = (const unsigned char *)luaL_checklstring(L, 2, &slen);
    lua_Integer iter = luaL_checkinteger(L, 3);
    lua_Integer len = luaL_checkinteger(L, 4);
    luaL_argcheck(L, iter >= 1 && iter <= 100000000, 3, "1..100000000 iterations");
    luaL_argcheck(L, len >= 1 && len <= 1024, 4, "1..1024 bytes");
    luaL_argcheck(L, plen <= (size_t)INT_MAX && slen <= (size_t)INT_MAX, 1, "too long");
    unsigned char out[1024];
    if (fo_libcrypto()->PKCS5_PBKDF2_HMAC(pass, (int)plen, salt, (int)slen, (int)iter,
                                          fo_libcrypto()->EVP_sha256(), (int)len, out) != 1)
        return luaL_error(L, "fo.crypto.pbkdf2_sha256: OpenSSL failed");
    lua_pushlstring(L, (const char *)out, (size_t)len);
    fo_libcrypto()->OPENSSL_cleanse(out, (size_t)len);
    return 1;
}

/* MD5 through EVP (the low-level MD5() is deprecated in OpenSSL 3): S3's ETags and
 * Content-MD5 are MD5 digests; nothing here relies on it for security. */
static int crypto_md5(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!fo_libcrypto()->EVP_Digest(s, n, md, &len, fo_libcrypto()->EVP_md5(), NULL))
        return luaL_error(L, "fo.crypto.md5: OpenSSL failed");
    lua_pushlstring(L, (const char *)md, len);
    return 1;
}

/* Reflected CRC-32 with polynomial `poly` (0xEDB88320: CRC32 of zlib/S3; 0x82F63B78:
 * CRC32C, Castagnoli), bitwise: S3 bodies in the sim are small enough. */
static uint32_t crc32_reflected(const unsigned char *p, size_t n, uint32_t crc, uint32_t poly)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (poly & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* crc32(s [, previous]) and crc32c(s [, previous]): the checksum as an integer; pass the
 * previous value to continue over concatenated data. */
static int crc_common(lua_State *L, uint32_t poly)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    uint32_t prev = (uint32_t)luaL_optinteger(L, 2, 0);
    lua_pushinteger(L, (lua_Integer)crc32_reflected((const unsigned char *)s, n, prev, poly));
    return 1;
}

static int crypto_crc32(lua_State *L)
{
    return crc_common(L, 0xEDB88320u);
}

static int crypto_crc32c(lua_State *L)
{
    return crc_common(L, 0x82F63B78u);
}

int fo_crypto_self_signed(lua_State *L); /* self_signed.c */

static const luaL_Reg crypto_funcs[] = {
    {"md5", crypto_md5},
    {"sha1", crypto_sha1},
    {"crc32", crypto_crc32},
    {"crc32c", crypto_crc32c},
    {"sha256", crypto_sha256},
    {"hmac_sha256", crypto_hmac_sha256},
    {"hex", crypto_hex},
    {"base64_encode", crypto_base64_encode},
    {"base64_decode", crypto_base64_decode},
    {"random", crypto_random},
    {"gcm_seal", crypto_gcm_seal},
    {"gcm_open", crypto_gcm_open},
    {"pbkdf2_sha256", crypto_pbkdf2_sha256},
    {"self_signed", fo_crypto_self_signed},
    {NULL, NULL},
};

int luaopen_fo_crypto(lua_State *L)
{
    char err[256];
    if (!fo_libcrypto_load(err, sizeof err)) /* said here, as a Lua error, not at first use */
        return luaL_error(L, "fo.crypto: %s", err);
    luaL_newlib(L, crypto_funcs);
    return 1;
}
