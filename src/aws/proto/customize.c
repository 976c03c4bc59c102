/* Parameter customizations the AWS SDKs apply before validating and serializing.
 *
 * Route 53 (botocore's fix_route53_ids): top-level members of shape ResourceId,
 * DelegationSetId or ChangeId keep only what follows their last '/', so that the
 * "/hostedzone/Z1" and "/change/C1" that responses carry can be passed back as they are
 * (a full "/hostedzone/..." id would also break ResourceId's 32-character limit). */
#include "proto.h"

#include <lauxlib.h>
#include <string.h>

static int is_route53(lua_State *L, const fo_op *op)
{
    int r53 = 0;
    if (lua_getfield(L, op->model, "metadata") == LUA_TTABLE) {
        const char *id = fo_field_str(L, -1, "serviceId");
        r53 = id && strcmp(id, "Route 53") == 0;
    }
    lua_pop(L, 1);
    return r53;
}

static int is_route53_id(const char *shape)
{
    return shape && (strcmp(shape, "ResourceId") == 0 || strcmp(shape, "DelegationSetId") == 0 ||
                     strcmp(shape, "ChangeId") == 0);
}

/* Replaces the params at `params` by a shallow copy with the ids fixed; the caller's
 * table is left as it was. */
static void fix_route53_ids(lua_State *L, const fo_op *op, int params)
{
    fo_shape_push(L, op->shapes, op->input);
    if (lua_getfield(L, -1, "members") != LUA_TTABLE) {
        lua_pop(L, 2);
        return;
    }
    int members = lua_gettop(L);
    lua_newtable(L);
    int copy = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, params)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_settable(L, copy);
    }
    lua_pushnil(L);
    while (lua_next(L, members)) {
        const char *shape = lua_istable(L, -1) ? fo_field_str(L, lua_gettop(L), "shape") : NULL;
        lua_pop(L, 1);
        if (!is_route53_id(shape) || lua_type(L, -1) != LUA_TSTRING)
            continue;
        lua_pushvalue(L, -1);
        if (lua_gettable(L, copy) == LUA_TSTRING) {
            const char *slash = strrchr(lua_tostring(L, -1), '/');
            if (slash) {
                lua_pushvalue(L, -2);
                lua_pushstring(L, slash + 1);
                lua_settable(L, copy);
            }
        }
        lua_pop(L, 1);
    }
    lua_replace(L, params);
    lua_pop(L, 2); /* members, input shape */
}

void fo_customize_params(lua_State *L, const fo_op *op, int params)
{
    if (op->input && lua_istable(L, params) && is_route53(L, op))
        fix_route53_ids(L, op, params);
}
