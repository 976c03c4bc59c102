/* Validation of request parameters against the model (placeholder). */
#include "proto.h"

void fo_validate(lua_State *L, const fo_op *op, int params)
{
    (void)L;
    (void)op;
    (void)params;
}
