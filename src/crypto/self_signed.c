/* fo.crypto.self_signed{names=, ips=, days=}: a fresh EC P-256 key and a self-signed X.509
 * certificate for those DNS names (wildcards allowed) and IPv4/IPv6 addresses, as PEM text.
 * For a local server that must speak TLS to fo's own clients (the served simulator's load
 * balancer front): the certificate is its own CA, trusted only by who is handed it. */
#include "dl/libcrypto.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fo_crypto_self_signed(lua_State *L);

/* The subjectAltName text being built ("DNS:a,IP:b"), on the C heap: a Lua error while
 * reading the names frees it (see fail_names). */
struct san {
    char *text;
    size_t len, cap;
};

static int san_add(struct san *san, const char *kind, const char *name)
{
    size_t need = san->len + strlen(kind) + strlen(name) + 3;
    if (need > san->cap) {
        size_t cap = san->cap ? san->cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *t = realloc(san->text, cap);
        if (!t)
            return 0;
        san->text = t;
        san->cap = cap;
    }
    san->len += (size_t)snprintf(san->text + san->len, san->cap - san->len, "%s%s:%s",
                                 san->len ? "," : "", kind, name);
    return 1;
}

/* Appends the "DNS:name" or "IP:addr" entries of table field `field`; NULL when all went
 * well, else what is wrong (the caller frees and raises). */
static const char *append_names(lua_State *L, const char *field, const char *kind, struct san *san)
{
    const char *why = NULL;
    lua_getfield(L, 1, field);
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
        why = "names and ips must be lists of strings";
    lua_Integer n = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
    for (lua_Integer i = 1; i <= n && !why; i++) {
        lua_rawgeti(L, -1, i);
        size_t len;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!s || len == 0 || len > 253 || strpbrk(s, ", \n") != NULL)
            why = "each of names and ips must be a name or an address";
        else if (!san_add(san, kind, s))
            why = "out of memory";
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return why;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    const struct fo_libcrypto *ssl = fo_libcrypto();
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    ssl->X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = ssl->X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return 0;
    int ok = ssl->X509_add_ext(cert, ext, -1);
    ssl->X509_EXTENSION_free(ext);
    return ok;
}

static int push_pem(lua_State *L, BIO *bio)
{
    const struct fo_libcrypto *ssl = fo_libcrypto();
    char *data;
    long len = ssl->BIO_ctrl(bio, BIO_CTRL_INFO, 0, (char *)&data); /* BIO_get_mem_data */
    if (len <= 0)
        return 0;
    lua_pushlstring(L, data, (size_t)len);
    return 1;
}

int fo_crypto_self_signed(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "days");
    lua_Integer days = luaL_optinteger(L, -1, 1);
    lua_pop(L, 1);
    if (days < 1 || days > 825)
        return luaL_error(L, "fo.crypto.self_signed: days must be 1..825");
    /* The names, as OpenSSL's subjectAltName configuration text. */
    struct san names = {0};
    const char *why = append_names(L, "names", "DNS", &names);
    if (!why)
        why = append_names(L, "ips", "IP", &names);
    if (!why && names.len == 0)
        why = "give names or ips";
    if (why) {
        free(names.text);
        return luaL_error(L, "fo.crypto.self_signed: %s", why);
    }
    const char *san = names.text;

    const struct fo_libcrypto *ssl = fo_libcrypto(); /* loaded with fo.crypto */
    int ok = 0;
    EVP_PKEY *key = ssl->EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); /* EVP_EC_gen */
    X509 *cert = ssl->X509_new();
    BIO *cert_bio = ssl->BIO_new(ssl->BIO_s_mem()), *key_bio = ssl->BIO_new(ssl->BIO_s_mem());
    if (!key || !cert || !cert_bio || !key_bio)
        goto done;
    unsigned char serial[16];
    if (ssl->RAND_bytes(serial, sizeof serial) != 1)
        goto done;
    serial[0] &= 0x7f; /* a positive serial number */
    BIGNUM *bn = ssl->BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !ssl->BN_to_ASN1_INTEGER(bn, ssl->X509_get_serialNumber(cert))) {
        ssl->BN_free(bn);
        goto done;
    }
    ssl->BN_free(bn);
    X509_NAME *name = ssl->X509_get_subject_name(cert);
    if (!ssl->X509_set_version(cert, 2) ||
        !ssl->X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         (const unsigned char *)"fo simulator", -1, -1, 0) ||
        !ssl->X509_set_issuer_name(cert, name) ||
        !ssl->X509_gmtime_adj(ssl->X509_getm_notBefore(cert), -300) ||
        !ssl->X509_gmtime_adj(ssl->X509_getm_notAfter(cert), (long)days * 86400) ||
        !ssl->X509_set_pubkey(cert, key) ||
        !add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
        !add_ext(cert, NID_ext_key_usage, "serverAuth") ||
        !add_ext(cert, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, NID_subject_alt_name, san) || !ssl->X509_sign(cert, key, ssl->EVP_sha256()))
        goto done;
    if (!ssl->PEM_write_bio_X509(cert_bio, cert) ||
        !ssl->PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL))
        goto done;
    ok = push_pem(L, cert_bio) && push_pem(L, key_bio);
done:
    ssl->BIO_free(cert_bio);
    ssl->BIO_free(key_bio);
    ssl->X509_free(cert);
    ssl->EVP_PKEY_free(key);
    free(names.text);
    if (!ok)
        return luaL_error(L, "fo.crypto.self_signed: OpenSSL could not make the certificate");
    return 2;
}
