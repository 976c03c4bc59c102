/* libedit (its readline interface), loaded when the REPL first opens its input (fo.edit):
 * with libtinfo, libbsd and libmd it is four libraries no other run needs. */
#ifndef FO_DL_LIBEDIT_H
#define FO_DL_LIBEDIT_H

#include <stddef.h>
#include <stdio.h>

#include <editline/readline.h>

/* The functions and variables fo uses, typed by <editline/readline.h>: a function X is
 * fo_libedit()->X(...), a variable X is *fo_libedit()->X. */
#define FO_LIBEDIT_FUNCTIONS(X)                                                                    \
    X(rl_initialize)                                                                               \
    X(rl_callback_handler_install)                                                                 \
    X(rl_callback_handler_remove)                                                                  \
    X(rl_callback_read_char)                                                                       \
    X(rl_resize_terminal)                                                                          \
    X(rl_replace_line)                                                                             \
    X(add_history)                                                                                 \
    X(stifle_history)                                                                              \
    X(read_history)                                                                                \
    X(write_history)
#define FO_LIBEDIT_VARIABLES(X)                                                                    \
    X(rl_readline_name)                                                                            \
    X(rl_line_buffer)                                                                              \
    X(rl_point)                                                                                    \
    X(rl_basic_word_break_characters)                                                              \
    X(rl_attempted_completion_function)                                                            \
    X(rl_attempted_completion_over)                                                                \
    X(rl_completion_append_character)                                                              \
    X(rl_catch_signals)                                                                            \
    X(rl_catch_sigwinch)                                                                           \
    X(rl_getc_function)

struct fo_libedit {
#define FO_LIBEDIT_SLOT(name) __typeof__(name) *name;
    FO_LIBEDIT_FUNCTIONS(FO_LIBEDIT_SLOT)
    FO_LIBEDIT_VARIABLES(FO_LIBEDIT_SLOT)
#undef FO_LIBEDIT_SLOT
};

/* libedit, loaded on the first call; NULL when it cannot be (`err` then says why and what
 * to install). */
const struct fo_libedit *fo_libedit_load(char *err, size_t errsize);

#endif
