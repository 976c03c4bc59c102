/* libedit on first use (libedit.h). */
#include "dl/libedit.h"
#include "dl/dl.h"

#ifndef FO_LIBEDIT_SONAME
#define FO_LIBEDIT_SONAME "libedit.so.2"
#endif
#ifndef FO_LIBEDIT_PACKAGE
#define FO_LIBEDIT_PACKAGE "libedit2"
#endif

static struct fo_libedit api;
static const struct fo_libedit *loaded;

const struct fo_libedit *fo_libedit_load(char *err, size_t errsize)
{
    if (loaded)
        return loaded;
    void *lib =
        fo_dl_open(FO_LIBEDIT_SONAME, FO_LIBEDIT_PACKAGE, "the REPL's line editing", err, errsize);
    if (!lib)
        return NULL;
#define FO_LIBEDIT_RESOLVE(name)                                                                   \
    if (fo_dl_sym(lib, FO_LIBEDIT_SONAME, #name, &api.name, sizeof api.name, err, errsize))        \
        return NULL;
    FO_LIBEDIT_FUNCTIONS(FO_LIBEDIT_RESOLVE)
    FO_LIBEDIT_VARIABLES(FO_LIBEDIT_RESOLVE)
#undef FO_LIBEDIT_RESOLVE
    loaded = &api;
    return loaded;
}
