/* libcurl on first use (libcurl.h). */
#include "dl/libcurl.h"
#include "dl/dl.h"

#include <stdio.h>

#ifndef FO_CURL_SONAME
#define FO_CURL_SONAME "libcurl.so.4"
#endif
#ifndef FO_CURL_PACKAGE
#define FO_CURL_PACKAGE "libcurl4"
#endif

static struct fo_curl api;
static const struct fo_curl *loaded;

const struct fo_curl *fo_curl_load(char *err, size_t errsize)
{
    if (loaded)
        return loaded;
    void *lib = fo_dl_open(FO_CURL_SONAME, FO_CURL_PACKAGE, "HTTP", err, errsize);
    if (!lib)
        return NULL;
#define FO_CURL_RESOLVE(name)                                                                      \
    if (fo_dl_sym(lib, FO_CURL_SONAME, "curl_" #name, &api.name, sizeof api.name, err, errsize))   \
        return NULL;
    FO_CURL_FUNCTIONS(FO_CURL_RESOLVE)
#undef FO_CURL_RESOLVE
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errsize, "libcurl failed to initialise");
        return NULL;
    }
    loaded = &api;
    return loaded;
}

const struct fo_curl *fo_curl_loaded(void)
{
    return loaded;
}

void fo_curl_cleanup(void)
{
    if (loaded)
        loaded->global_cleanup();
    loaded = NULL;
}
