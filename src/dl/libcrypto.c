/* libcrypto on first use (libcrypto.h). */
#include "dl/libcrypto.h"
#include "dl/dl.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef FO_LIBCRYPTO_SONAME
#define FO_LIBCRYPTO_SONAME "libcrypto.so.3"
#endif
#ifndef FO_LIBCRYPTO_PACKAGE
#define FO_LIBCRYPTO_PACKAGE "libssl3"
#endif

static struct fo_libcrypto api;
static const struct fo_libcrypto *loaded;

const struct fo_libcrypto *fo_libcrypto_load(char *err, size_t errsize)
{
    if (loaded)
        return loaded;
    void *lib =
        fo_dl_open(FO_LIBCRYPTO_SONAME, FO_LIBCRYPTO_PACKAGE, "hashing and signing", err, errsize);
    if (!lib)
        return NULL;
#define FO_LIBCRYPTO_RESOLVE(name)                                                                 \
    if (fo_dl_sym(lib, FO_LIBCRYPTO_SONAME, #name, &api.name, sizeof api.name, err, errsize))      \
        return NULL;
    FO_LIBCRYPTO_FUNCTIONS(FO_LIBCRYPTO_RESOLVE)
#undef FO_LIBCRYPTO_RESOLVE
    loaded = &api;
    return loaded;
}

const struct fo_libcrypto *fo_libcrypto(void)
{
    if (loaded)
        return loaded;
    char err[256];
    if (!fo_libcrypto_load(err, sizeof err)) {
        fprintf(stderr, "fo-run: %s\n", err);
        exit(1);
    }
    return loaded;
}
