/* libmicrohttpd, loaded when a run first serves HTTP (fo.httpd: the served simulator,
 * fo-run --serve-sim): it links GnuTLS, whose initialisation every start would pay. */
#ifndef FO_DL_LIBMICROHTTPD_H
#define FO_DL_LIBMICROHTTPD_H

#include <microhttpd.h>
#include <stddef.h>

/* The functions fo calls, typed by <microhttpd.h>: MHD_X is fo_mhd()->X. */
#define FO_MHD_FUNCTIONS(X)                                                                        \
    X(start_daemon)                                                                                \
    X(stop_daemon)                                                                                 \
    X(quiesce_daemon)                                                                              \
    X(run)                                                                                         \
    X(get_timeout)                                                                                 \
    X(get_daemon_info)                                                                             \
    X(get_connection_info)                                                                         \
    X(get_connection_values)                                                                       \
    X(lookup_connection_value)                                                                     \
    X(suspend_connection)                                                                          \
    X(resume_connection)                                                                           \
    X(create_response_from_buffer)                                                                 \
    X(add_response_header)                                                                         \
    X(queue_response)                                                                              \
    X(destroy_response)

struct fo_mhd {
#define FO_MHD_SLOT(name) __typeof__(MHD_##name) *name;
    FO_MHD_FUNCTIONS(FO_MHD_SLOT)
#undef FO_MHD_SLOT
};

/* libmicrohttpd, loaded on the first call; NULL when it cannot be (`err` then says why and
 * what to install). */
const struct fo_mhd *fo_mhd_load(char *err, size_t errsize);

#endif
