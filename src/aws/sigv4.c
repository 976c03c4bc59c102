/* AWS Signature Version 4 on OpenSSL: canonicalizes the request (path normalization and
 * encoding, sorted query, trimmed headers), derives the key and signs. No Lua here. */
#include "fo/sigv4.h"
#include "dl/libcrypto.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A growable string; `failed` makes every later append a no-op after an allocation
 * failure, so callers check once at the end. */
struct sb {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_addn(struct sb *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s)
{
    sb_addn(b, s, strlen(s));
}

static void sb_addc(struct sb *b, char c)
{
    sb_addn(b, &c, 1);
}

/* Takes the string out of the buffer (an empty string for an empty buffer). */
static char *sb_take(struct sb *b)
{
    if (!b->failed && !b->p)
        sb_addn(b, "", 0);
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    char *p = b->p;
    b->p = NULL;
    return p;
}

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Percent-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash). */
static void uri_encode(struct sb *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_addc(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_addn(b, esc, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX escapes ('+' stays '+': AWS query strings use %20 for spaces). */
static void uri_decode(struct sb *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            sb_addc(b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else {
            sb_addc(b, s[i]);
        }
    }
}

/* RFC 3986 remove_dot_segments plus collapsing of empty segments, keeping a trailing
 * slash, as AWS normalizes paths for every service but S3. */
static char *normalize_path(const char *path)
{
    size_t n = strlen(path);
    const char **segs = calloc(n + 1, sizeof *segs);
    size_t *lens = calloc(n + 1, sizeof *lens);
    struct sb b = {0};
    if (!segs || !lens) {
        free(segs);
        free(lens);
        return NULL;
    }
    size_t nseg = 0;
    int trailing = n > 0 && path[n - 1] == '/';
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t len = (size_t)(p - start);
        if (len == 0)
            continue;
        if (len == 1 && start[0] == '.') {
            trailing = 1;
            continue;
        }
        if (len == 2 && start[0] == '.' && start[1] == '.') {
            if (nseg > 0)
                nseg--;
            trailing = 1;
            continue;
        }
        segs[nseg] = start;
        lens[nseg++] = len;
        if (*p == '\0')
            trailing = path[n - 1] == '/';
    }
    for (size_t i = 0; i < nseg; i++) {
        sb_addc(&b, '/');
        sb_addn(&b, segs[i], lens[i]);
    }
    if (nseg == 0 || trailing)
        sb_addc(&b, '/');
    free(segs);
    free(lens);
    return sb_take(&b);
}

struct param {
    char *key, *value; /* encoded */
};

static int param_cmp(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Encodes a raw key or value into canonical form: decode any %XX, then encode. */
static char *canonical_component(const char *s, size_t n)
{
    struct sb raw = {0}, enc = {0};
    uri_decode(&raw, s, n);
    char *r = sb_take(&raw);
    if (!r)
        return NULL;
    uri_encode(&enc, r, strlen(r), 0);
    free(r);
    return sb_take(&enc);
}

/* Canonical query: every parameter of `query` plus `extra` (already canonical), sorted
 * by key then value, joined with '&'. */
static char *canonical_query(const char *query, const struct param *extra, size_t nextra)
{
    size_t cap = nextra + 1;
    for (const char *q = query ? query : ""; *q; q++)
        if (*q == '&')
            cap++;
    struct param *ps = calloc(cap + 1, sizeof *ps);
    if (!ps)
        return NULL;
    size_t n = 0;
    int failed = 0;
    const char *q = query ? query : "";
    while (*q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            ps[n].key = canonical_component(q, klen);
            ps[n].value = eq ? canonical_component(eq + 1, len - klen - 1) : strdup("");
            if (!ps[n].key || !ps[n].value)
                failed = 1;
            n++;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    for (size_t i = 0; i < nextra; i++) {
        ps[n].key = strdup(extra[i].key);
        ps[n].value = strdup(extra[i].value);
        if (!ps[n].key || !ps[n].value)
            failed = 1;
        n++;
    }
    struct sb b = {0};
    if (!failed) {
        qsort(ps, n, sizeof *ps, param_cmp);
        for (size_t i = 0; i < n; i++) {
            if (i)
                sb_addc(&b, '&');
            sb_add(&b, ps[i].key);
            sb_addc(&b, '=');
            sb_add(&b, ps[i].value);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(ps[i].key);
        free(ps[i].value);
    }
    free(ps);
    if (failed) {
        free(b.p);
        return NULL;
    }
    return sb_take(&b);
}

struct hdr {
    char *name; /* lower case */
    const char *value;
    size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends a header value trimmed, with runs of whitespace (including folded line
 * breaks) collapsed to one space. */
static void add_trimmed(struct sb *b, const char *v)
{
    int pending_space = 0, started = 0;
    for (const char *c = v; *c; c++) {
        if (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n') {
            pending_space = started;
            continue;
        }
        if (pending_space)
            sb_addc(b, ' ');
        pending_space = 0;
        started = 1;
        sb_addc(b, *c);
    }
}

static int wanted(const fo_sigv4_params *p, const char *lname)
{
    if (!p->only_headers)
        return 1;
    for (size_t i = 0; i < p->nonly; i++)
        if (strcmp(p->only_headers[i], lname) == 0)
            return 1;
    return 0;
}

/* Canonical headers block and the signed-headers list, from the given headers plus
 * `extra` (name/value pairs added by the signer). */
static int canonical_headers(const fo_sigv4_params *p, const fo_sigv4_header *extra, size_t nextra,
                             char **block, char **signed_list)
{
    size_t total = p->nheaders + nextra;
    struct hdr *hs = calloc(total + 1, sizeof *hs);
    if (!hs)
        return -1;
    size_t n = 0;
    int failed = 0;
    for (size_t i = 0; i < total; i++) {
        const fo_sigv4_header *h = i < p->nheaders ? &p->headers[i] : &extra[i - p->nheaders];
        char *lname = strdup(h->name);
        if (!lname) {
            failed = 1;
            break;
        }
        for (char *c = lname; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (!wanted(p, lname)) {
            free(lname);
            continue;
        }
        hs[n++] = (struct hdr){lname, h->value, i};
    }
    struct sb b = {0}, s = {0};
    if (!failed) {
        qsort(hs, n, sizeof *hs, hdr_cmp);
        for (size_t i = 0; i < n; i++) {
            int same = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
            if (same) {
                sb_addc(&b, ',');
            } else {
                if (i > 0) {
                    sb_addc(&b, '\n');
                    sb_addc(&s, ';');
                }
                sb_add(&b, hs[i].name);
                sb_addc(&b, ':');
                sb_add(&s, hs[i].name);
            }
            add_trimmed(&b, hs[i].value);
        }
        if (n > 0)
            sb_addc(&b, '\n');
    }
    for (size_t i = 0; i < n; i++)
        free(hs[i].name);
    free(hs);
    *block = failed ? NULL : sb_take(&b);
    *signed_list = failed ? NULL : sb_take(&s);
    if (failed || !*block || !*signed_list) {
        free(*block);
        free(*signed_list);
        free(b.p);
        free(s.p);
        *block = *signed_list = NULL;
        return -1;
    }
    return 0;
}

static void hex_encode(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    return fo_libcrypto()->HMAC(fo_libcrypto()->EVP_sha256(), key, (int)klen,
                                (const unsigned char *)msg, strlen(msg), out, &len)
               ? 0
               : -1;
}

int fo_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, unsigned char out[32])
{
    size_t slen = strlen(secret);
    unsigned char *k = malloc(slen + 5);
    if (!k)
        return -1;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen);
    unsigned char a[32], b[32];
    int rc = hmac(k, slen + 4, date8, a) || hmac(a, 32, region, b) || hmac(b, 32, service, a) ||
             hmac(a, 32, "aws4_request", out);
    fo_libcrypto()->OPENSSL_cleanse(k, slen + 4);
    fo_libcrypto()->OPENSSL_cleanse(a, sizeof a);
    fo_libcrypto()->OPENSSL_cleanse(b, sizeof b);
    free(k);
    return rc ? -1 : 0;
}

void fo_sigv4_result_free(fo_sigv4_result *r)
{
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->signature);
    free(r->signed_headers);
    free(r->scope);
    free(r->authorization);
    free(r->query);
    memset(r, 0, sizeof *r);
}

static int valid_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !isdigit((unsigned char)d[i]))
            return 0;
    return 1;
}

static int has_header(const fo_sigv4_params *p, const char *lname)
{
    for (size_t i = 0; i < p->nheaders; i++)
        if (strcasecmp(p->headers[i].name, lname) == 0)
            return 1;
    return 0;
}

static char *encoded(const char *s)
{
    struct sb b = {0};
    uri_encode(&b, s, strlen(s), 0);
    return sb_take(&b);
}

int fo_sigv4_sign(const fo_sigv4_params *p, fo_sigv4_result *r, const char **why)
{
    memset(r, 0, sizeof *r);
    *why = "out of memory";
    if (!p->method || !p->path || !p->region || !p->service || !p->access_key || !p->secret_key ||
        !p->payload_hash) {
        *why = "method, path, region, service, access_key, secret_key and the payload are "
               "required";
        return -1;
    }
    if (!valid_date(p->amz_date)) {
        *why = "time must be given as YYYYMMDDTHHMMSSZ";
        return -1;
    }
    char date8[9];
    memcpy(date8, p->amz_date, 8);
    date8[8] = '\0';
    struct sb scope = {0};
    sb_add(&scope, date8);
    sb_addc(&scope, '/');
    sb_add(&scope, p->region);
    sb_addc(&scope, '/');
    sb_add(&scope, p->service);
    sb_add(&scope, "/aws4_request");
    r->scope = sb_take(&scope);
    if (!r->scope)
        goto fail;

    int with_token = p->session_token && *p->session_token && !p->omit_session_token;
    fo_sigv4_header extra_h[3];
    size_t nextra_h = 0;
    char *path = NULL, *query = NULL, *headers = NULL, *cred = NULL, *signed_enc = NULL;
    char *token_enc = NULL;
    int rc = -1;
    /* A header the request already carries is signed as it is, not added twice (that is
     * how a verifier recomputes a received request's signature). */
    if (!p->query_mode) {
        if (!has_header(p, "x-amz-date"))
            extra_h[nextra_h++] = (fo_sigv4_header){"X-Amz-Date", p->amz_date};
        if (with_token && !has_header(p, "x-amz-security-token"))
            extra_h[nextra_h++] = (fo_sigv4_header){"X-Amz-Security-Token", p->session_token};
        if (p->sign_body && !has_header(p, "x-amz-content-sha256"))
            extra_h[nextra_h++] = (fo_sigv4_header){"x-amz-content-sha256", p->payload_hash};
    }
    if (canonical_headers(p, extra_h, nextra_h, &headers, &r->signed_headers) != 0)
        goto done;

    path = p->normalize ? normalize_path(p->path) : strdup(p->path);
    struct param qextra[6];
    size_t nq = 0;
    char expires[32];
    if (p->query_mode) {
        struct sb c = {0};
        sb_add(&c, p->access_key);
        sb_addc(&c, '/');
        sb_add(&c, r->scope);
        char *credential = sb_take(&c);
        cred = credential ? encoded(credential) : NULL;
        free(credential);
        signed_enc = encoded(r->signed_headers);
        token_enc = with_token ? encoded(p->session_token) : NULL;
        if (!cred || !signed_enc || (with_token && !token_enc))
            goto done;
        snprintf(expires, sizeof expires, "%ld", p->expires > 0 ? p->expires : 3600);
        qextra[nq++] = (struct param){"X-Amz-Algorithm", "AWS4-HMAC-SHA256"};
        qextra[nq++] = (struct param){"X-Amz-Credential", cred};
        qextra[nq++] = (struct param){"X-Amz-Date", (char *)p->amz_date};
        qextra[nq++] = (struct param){"X-Amz-SignedHeaders", signed_enc};
        qextra[nq++] = (struct param){"X-Amz-Expires", expires};
        if (with_token)
            qextra[nq++] = (struct param){"X-Amz-Security-Token", token_enc};
    }
    query = canonical_query(p->query, qextra, nq);
    if (!path || !query)
        goto done;

    struct sb cr = {0};
    sb_add(&cr, p->method);
    sb_addc(&cr, '\n');
    uri_encode(&cr, path, strlen(path), 1);
    sb_addc(&cr, '\n');
    sb_add(&cr, query);
    sb_addc(&cr, '\n');
    sb_add(&cr, headers);
    sb_addc(&cr, '\n');
    sb_add(&cr, r->signed_headers);
    sb_addc(&cr, '\n');
    sb_add(&cr, p->payload_hash);
    r->canonical_request = sb_take(&cr);
    if (!r->canonical_request)
        goto done;

    unsigned char digest[32];
    char hexd[65];
    fo_libcrypto()->SHA256((const unsigned char *)r->canonical_request,
                           strlen(r->canonical_request), digest);
    hex_encode(digest, 32, hexd);
    struct sb sts = {0};
    sb_add(&sts, "AWS4-HMAC-SHA256\n");
    sb_add(&sts, p->amz_date);
    sb_addc(&sts, '\n');
    sb_add(&sts, r->scope);
    sb_addc(&sts, '\n');
    sb_add(&sts, hexd);
    r->string_to_sign = sb_take(&sts);
    if (!r->string_to_sign)
        goto done;

    unsigned char key[32], sig[32];
    if (fo_sigv4_signing_key(p->secret_key, date8, p->region, p->service, key) != 0 ||
        hmac(key, 32, r->string_to_sign, sig) != 0) {
        fo_libcrypto()->OPENSSL_cleanse(key, sizeof key);
        goto done;
    }
    fo_libcrypto()->OPENSSL_cleanse(key, sizeof key);
    r->signature = malloc(65);
    if (!r->signature)
        goto done;
    hex_encode(sig, 32, r->signature);

    if (p->query_mode) {
        /* Sent order: the caller's parameters as given, then AWS's in the SDKs' order. */
        struct sb q = {0};
        if (p->query && *p->query) {
            sb_add(&q, p->query);
            sb_addc(&q, '&');
        }
        sb_add(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
        sb_add(&q, cred);
        sb_add(&q, "&X-Amz-Date=");
        sb_add(&q, p->amz_date);
        sb_add(&q, "&X-Amz-SignedHeaders=");
        sb_add(&q, signed_enc);
        sb_add(&q, "&X-Amz-Expires=");
        sb_add(&q, expires);
        if (p->session_token && *p->session_token) {
            char *t = token_enc ? NULL : encoded(p->session_token);
            sb_add(&q, "&X-Amz-Security-Token=");
            sb_add(&q, token_enc ? token_enc : (t ? t : ""));
            free(t);
        }
        sb_add(&q, "&X-Amz-Signature=");
        sb_add(&q, r->signature);
        r->query = sb_take(&q);
        if (!r->query)
            goto done;
    } else {
        struct sb a = {0};
        sb_add(&a, "AWS4-HMAC-SHA256 Credential=");
        sb_add(&a, p->access_key);
        sb_addc(&a, '/');
        sb_add(&a, r->scope);
        sb_add(&a, ", SignedHeaders=");
        sb_add(&a, r->signed_headers);
        sb_add(&a, ", Signature=");
        sb_add(&a, r->signature);
        r->authorization = sb_take(&a);
        if (!r->authorization)
            goto done;
    }
    rc = 0;

    /* The success and the failure paths free the same locals; only a failure also frees
     * what was set in r. */
done:
    free(path);
    free(query);
    free(headers);
    free(cred);
    free(signed_enc);
    free(token_enc);
    if (rc == 0)
        return 0;
fail:
    fo_sigv4_result_free(r);
    return -1;
}
