/* libcurl, loaded on a run's first HTTP request (fo.http), with curl_global_init: a run that
 * makes none never loads libcurl, OpenSSL's TLS or the libraries libcurl links. */
#ifndef FO_DL_LIBCURL_H
#define FO_DL_LIBCURL_H

#include <curl/curl.h>
#include <stddef.h>

/* The functions fo calls, typed by <curl/curl.h>: curl_X is fo_curl()->X. */
#define FO_CURL_FUNCTIONS(X)                                                                       \
    X(global_init)                                                                                 \
    X(global_cleanup)                                                                              \
    X(version)                                                                                     \
    X(easy_init)                                                                                   \
    X(easy_cleanup)                                                                                \
    X(easy_setopt)                                                                                 \
    X(easy_getinfo)                                                                                \
    X(easy_strerror)                                                                               \
    X(slist_append)                                                                                \
    X(slist_free_all)                                                                              \
    X(multi_init)                                                                                  \
    X(multi_cleanup)                                                                               \
    X(multi_setopt)                                                                                \
    X(multi_add_handle)                                                                            \
    X(multi_remove_handle)                                                                         \
    X(multi_timeout)                                                                               \
    X(multi_poll)                                                                                  \
    X(multi_perform)                                                                               \
    X(multi_info_read)

struct fo_curl {
#define FO_CURL_SLOT(name) __typeof__(curl_##name) *name;
    FO_CURL_FUNCTIONS(FO_CURL_SLOT)
#undef FO_CURL_SLOT
};

/* libcurl, loaded and initialised on the first call; NULL when it cannot be (`err` then
 * says why and what to install). */
const struct fo_curl *fo_curl_load(char *err, size_t errsize);

/* libcurl once fo_curl_load succeeded, else NULL. */
const struct fo_curl *fo_curl_loaded(void);

/* curl_global_cleanup when libcurl was loaded: at the end of fo-run. */
void fo_curl_cleanup(void);

#endif
