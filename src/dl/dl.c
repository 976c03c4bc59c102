/* Opening a shared library on first use, by SONAME, with one clear message when it is
 * missing (see dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *fo_dl_open(const char *soname, const char *package, const char *purpose, char *err,
                 size_t errsize)
{
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        snprintf(err, errsize,
                 "cannot load %s, which fo needs for %s: install the Debian package %s "
                 "(apt-get install %s)",
                 soname, purpose, package, package);
    return lib;
}

int fo_dl_sym(void *lib, const char *soname, const char *name, void *slot, size_t size, char *err,
              size_t errsize)
{
    void *sym = dlsym(lib, name);
    if (!sym || size != sizeof sym) {
        snprintf(err, errsize, "%s has no %s: it is older than the one fo was built with", soname,
                 name);
        return -1;
    }
    /* POSIX guarantees a function pointer survives the round trip through void *. */
    memcpy(slot, &sym, sizeof sym);
    return 0;
}
