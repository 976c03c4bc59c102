/* libmicrohttpd on first use (libmicrohttpd.h). */
#include "dl/libmicrohttpd.h"
#include "dl/dl.h"

#ifndef FO_MHD_SONAME
#define FO_MHD_SONAME "libmicrohttpd.so.12"
#endif
#ifndef FO_MHD_PACKAGE
#define FO_MHD_PACKAGE "libmicrohttpd12"
#endif

static struct fo_mhd api;
static const struct fo_mhd *loaded;

const struct fo_mhd *fo_mhd_load(char *err, size_t errsize)
{
    if (loaded)
        return loaded;
    void *lib = fo_dl_open(FO_MHD_SONAME, FO_MHD_PACKAGE, "serving HTTP (fo.httpd, --serve-sim)",
                           err, errsize);
    if (!lib)
        return NULL;
#define FO_MHD_RESOLVE(name)                                                                       \
    if (fo_dl_sym(lib, FO_MHD_SONAME, "MHD_" #name, &api.name, sizeof api.name, err, errsize))     \
        return NULL;
    FO_MHD_FUNCTIONS(FO_MHD_RESOLVE)
#undef FO_MHD_RESOLVE
    loaded = &api;
    return loaded;
}
