/* OpenSSL's libcrypto (hashes, HMAC, base64, AES-GCM, random bytes, a self-signed
 * certificate), loaded when a run
 * first needs it: by the modules that use it (fo.crypto, fo.sigv4, fo.awsproto) when they
 * are required, or by the first call. Its relocation alone was a quarter of fo-run's start. */
#ifndef FO_DL_LIBCRYPTO_H
#define FO_DL_LIBCRYPTO_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
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
    X(OPENSSL_cleanse)                                                                             \
    X(BIO_free)                                                                                    \
    X(BIO_ctrl)                                                                                    \
    X(BIO_new)                                                                                     \
    X(BIO_s_mem)                                                                                   \
    X(BN_bin2bn)                                                                                   \
    X(BN_free)                                                                                     \
    X(BN_to_ASN1_INTEGER)                                                                          \
    X(EVP_PKEY_Q_keygen)                                                                           \
    X(EVP_PKEY_free)                                                                               \
    X(PEM_write_bio_PrivateKey)                                                                    \
    X(PEM_write_bio_X509)                                                                          \
    X(X509V3_EXT_conf_nid)                                                                         \
    X(X509V3_set_ctx)                                                                              \
    X(X509_EXTENSION_free)                                                                         \
    X(X509_NAME_add_entry_by_txt)                                                                  \
    X(X509_add_ext)                                                                                \
    X(X509_free)                                                                                   \
    X(X509_get_serialNumber)                                                                       \
    X(X509_get_subject_name)                                                                       \
    X(X509_getm_notAfter)                                                                          \
    X(X509_getm_notBefore)                                                                         \
    X(X509_gmtime_adj)                                                                             \
    X(X509_new)                                                                                    \
    X(X509_set_issuer_name)                                                                        \
    X(X509_set_pubkey)                                                                             \
    X(X509_set_version)                                                                            \
    X(X509_sign)

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
