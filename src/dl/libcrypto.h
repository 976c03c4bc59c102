/* OpenSSL's libcrypto (hashes, HMAC, base64, AES-GCM, random bytes), loaded when a run
 * first needs it: by the modules that use it (fo.crypto, fo.sigv4, fo.awsproto) when they
 * are required, or by the first call. Its relocation alone was a quarter of fo-run's start. */
#ifndef FO_DL_LIBCRYPTO_H
#define FO_DL_LIBCRYPTO_H

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stddef.h>

/* The functions fo calls, typed by OpenSSL's headers: X is fo_libcrypto()->X. */
#define FO_LIBCRYPTO_FUNCTIONS(X)                                                                  \
    X(SHA1)                                                                                        \
    X(SHA256)                                                                                      \
    X(HMAC)                                                                                        \
    X(PKCS5_PBKDF2_HMAC)                                                                           \
    X(EVP_sha256)                                                                                  \
    X(EVP_md5)                                                                                     \
    X(EVP_Digest)                                                                                  \
    X(EVP_EncodeBlock)                                                                             \
    X(EVP_DecodeBlock)                                                                             \
    X(EVP_aes_256_gcm)                                                                             \
    X(EVP_CIPHER_CTX_new)                                                                          \
    X(EVP_CIPHER_CTX_free)                                                                         \
    X(EVP_CIPHER_CTX_ctrl)                                                                         \
    X(EVP_CipherInit_ex)                                                                           \
    X(EVP_CipherUpdate)                                                                            \
    X(EVP_CipherFinal_ex)                                                                          \
    X(RAND_bytes)                                                                                  \
    X(OPENSSL_cleanse)

struct fo_libcrypto {
#define FO_LIBCRYPTO_SLOT(name) __typeof__(name) *name;
    FO_LIBCRYPTO_FUNCTIONS(FO_LIBCRYPTO_SLOT)
#undef FO_LIBCRYPTO_SLOT
};

/* Loads libcrypto on the first call; NULL when it cannot be (`err` then says why and what
 * to install). The Lua modules call it when they open, to fail with that message. */
const struct fo_libcrypto *fo_libcrypto_load(char *err, size_t errsize);

/* libcrypto, loading it if no module did yet; a process that cannot load it stops here
 * with the message (fo cannot go on without its hashes). */
const struct fo_libcrypto *fo_libcrypto(void);

#endif
