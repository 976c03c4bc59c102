/* Shared libraries fo loads when a run first needs them instead of at start: each costs
 * every fo-run its loading and relocation, and libcurl and libmicrohttpd bring TLS stacks
 * (OpenSSL, GnuTLS, p11-kit ...) whose initialisation would otherwise run on every start
 * (docs/runtime.md, "Start-up"). */
#ifndef FO_DL_H
#define FO_DL_H

#include <stddef.h>

/* Opens the library `soname` (e.g. "libcurl.so.4") for `purpose` (words completing "fo
 * needs it for ..."). NULL when it cannot: `err` then holds one line naming the Debian
 * `package` that installs it. */
void *fo_dl_open(const char *soname, const char *package, const char *purpose, char *err,
                 size_t errsize);

/* Resolves `name` in `lib` into the function pointer at `slot` (of `size` bytes). 0 on
 * success; -1 with `err` naming the missing symbol (a library older than fo's headers). */
int fo_dl_sym(void *lib, const char *soname, const char *name, void *slot, size_t size, char *err,
              size_t errsize);

#endif
