/* AWS Signature Version 4: canonical request, string to sign, signature, and the
 * Authorization header or presigned query string, following AWS's test suite. */
#ifndef FO_SIGV4_H
#define FO_SIGV4_H

#include <stddef.h>

typedef struct fo_sigv4_header {
    const char *name;
    const char *value;
} fo_sigv4_header;

typedef struct fo_sigv4_params {
    const char *method;
    const char *path;  /* as sent (already percent-encoded by the caller, or raw) */
    const char *query; /* raw query string without '?', may be NULL */
    const fo_sigv4_header *headers;
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
    const char *region, *service;
    const char *access_key, *secret_key, *session_token; /* token may be NULL */
    const char *amz_date;                                /* YYYYMMDDTHHMMSSZ */
    int normalize;                   /* remove dot segments and empty segments (non-S3) */
    int query_mode;                  /* presign: signature in the query string */
    int sign_body;                   /* header mode: add and sign x-amz-content-sha256 */
    int omit_session_token;          /* sign without the token, send it anyway (STS style) */
    long expires;                    /* query mode: X-Amz-Expires */
    const char *const *only_headers; /* lower-case names to sign; NULL: all given */
    size_t nonly;
} fo_sigv4_params;

typedef struct fo_sigv4_result {
    char *canonical_request;
    char *string_to_sign;
    char *signature; /* 64 hex digits */
    char *signed_headers;
    char *scope;
    char *authorization; /* header mode */
    char *query;         /* query mode: the full query string to send */
} fo_sigv4_result;

/* Signs; returns 0, or -1 when out of memory or a parameter is missing / malformed
 * (`*why` then names it, never a secret). Free the result with fo_sigv4_result_free. */
int fo_sigv4_sign(const fo_sigv4_params *p, fo_sigv4_result *r, const char **why);
void fo_sigv4_result_free(fo_sigv4_result *r);

/* The derived signing key for date (YYYYMMDD), region, service. */
int fo_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, unsigned char out[32]);

#endif
