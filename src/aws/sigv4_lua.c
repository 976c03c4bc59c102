/* fo.sigv4: the SigV4 signer as Lua sees it — sign{...}, parse_authorization(header),
 * signing_key(...). Argument checking and table conversion only; signing is sigv4.c. */
#include "fo/runtime.h"
#include "fo/sigv4.h"
#include "dl/libcrypto.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *opt_field(lua_State *L, const char *name)
{
    lua_getfield(L, 1, name);
    const char *s = NULL;
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "fo.sigv4.sign: %s must be a string", name);
    lua_pop(L, 1); /* the string stays alive in the argument table */
    return s;
}

static const char *field(lua_State *L, const char *name)
{
    const char *s = opt_field(L, name);
    if (!s)
        luaL_error(L, "fo.sigv4.sign: %s is required", name);
    return s;
}

static int flag(lua_State *L, const char *name, int def)
{
    lua_getfield(L, 1, name);
    int v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Reads `time` (epoch seconds, "YYYYMMDDTHHMMSSZ" or "YYYY-MM-DDTHH:MM:SSZ") into out. */
static void amz_date(lua_State *L, char out[17])
{
    lua_getfield(L, 1, "time");
    if (lua_isinteger(L, -1) || lua_isnil(L, -1)) {
        time_t t = lua_isnil(L, -1) ? time(NULL) : (time_t)lua_tointeger(L, -1);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        size_t n = strlen(s);
        if (n == 16) {
            memcpy(out, s, 17);
        } else if (n == 20 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
                   s[16] == ':' && s[19] == 'Z') {
            snprintf(out, 17, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", s, s + 5, s + 8, s + 11, s + 14,
                     s + 17);
        } else {
            luaL_error(L, "fo.sigv4.sign: time must be epoch seconds, YYYYMMDDTHHMMSSZ or "
                          "YYYY-MM-DDTHH:MM:SSZ");
        }
    } else {
        luaL_error(L, "fo.sigv4.sign: time must be an integer or a string");
    }
    lua_pop(L, 1);
}

/* Collects headers (map of string or list of strings, or list of {name, value}) into a
 * userdata array kept on the stack; returns the count. */
static fo_sigv4_header *collect_headers(lua_State *L, size_t *count)
{
    lua_getfield(L, 1, "headers");
    int idx = lua_gettop(L);
    size_t n = 0;
    if (lua_isnil(L, idx)) {
        *count = 0;
        return NULL;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "fo.sigv4.sign: headers must be a table");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n += lua_istable(L, -1) ? lua_rawlen(L, -1) : 1;
        lua_pop(L, 1);
    }
    fo_sigv4_header *hs = lua_newuserdatauv(L, (n + 1) * sizeof *hs, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TNUMBER && lua_istable(L, -1)) { /* {name, value} */
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
                luaL_error(L, "fo.sigv4.sign: header pairs must be {name, value}");
            hs[k].name = lua_tostring(L, -2);
            hs[k++].value = lua_tostring(L, -1);
            lua_pop(L, 2);
        } else if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1)) {
            size_t m = lua_rawlen(L, -1);
            for (size_t i = 1; i <= m; i++) {
                lua_rawgeti(L, -1, (lua_Integer)i);
                if (!lua_isstring(L, -1))
                    luaL_error(L, "fo.sigv4.sign: header %s: values must be strings",
                               lua_tostring(L, -3));
                lua_tostring(L, -1);
                hs[k].name = lua_tostring(L, -3);
                hs[k++].value = lua_tostring(L, -1);
                lua_pop(L, 1);
            }
        } else if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
            lua_tostring(L, -1); /* numbers become strings in place, anchored in the table */
            hs[k].name = lua_tostring(L, -2);
            hs[k++].value = lua_tostring(L, -1);
        } else {
            luaL_error(L, "fo.sigv4.sign: headers must map names to strings");
        }
        lua_pop(L, 1);
    }
    *count = k;
    return hs;
}

static void set_string(lua_State *L, const char *key, const char *value)
{
    if (!value)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

/* sign{...} → {headers=, header_list=, query=, canonical_request=, string_to_sign=,
 * signature=, signed_headers=, credential_scope=} (see docs/sigv4.md). */
static int sigv4_sign(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    fo_sigv4_params p;
    memset(&p, 0, sizeof p);
    p.method = field(L, "method");
    p.path = opt_field(L, "path");
    if (!p.path || !*p.path)
        p.path = "/";
    p.query = opt_field(L, "query");
    p.region = field(L, "region");
    p.service = field(L, "service");
    p.access_key = field(L, "access_key");
    p.secret_key = field(L, "secret_key");
    p.session_token = opt_field(L, "session_token");
    p.normalize = flag(L, "normalize", 1);
    p.sign_body = flag(L, "sign_body", 0);
    p.omit_session_token = flag(L, "omit_session_token", 0);
    const char *mode = opt_field(L, "mode");
    if (mode && strcmp(mode, "query") != 0 && strcmp(mode, "header") != 0)
        return luaL_error(L, "fo.sigv4.sign: mode must be \"header\" or \"query\"");
    p.query_mode = mode && strcmp(mode, "query") == 0;
    lua_getfield(L, 1, "expires");
    p.expires = (long)luaL_optinteger(L, -1, 3600);
    lua_pop(L, 1);
    char date[17];
    amz_date(L, date);
    p.amz_date = date;

    char hash[65];
    p.payload_hash = opt_field(L, "payload_hash");
    if (!p.payload_hash) {
        lua_getfield(L, 1, "body");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "fo.sigv4.sign: body must be a string");
        size_t n = 0;
        const char *body = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &n);
        unsigned char d[32];
        fo_libcrypto()->SHA256((const unsigned char *)body, n, d);
        lua_pop(L, 1);
        static const char digits[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            hash[2 * i] = digits[d[i] >> 4];
            hash[2 * i + 1] = digits[d[i] & 15];
        }
        hash[64] = '\0';
        p.payload_hash = hash;
    }

    p.headers = collect_headers(L, &p.nheaders);
    lua_getfield(L, 1, "signed_headers");
    if (lua_istable(L, -1)) {
        size_t n = lua_rawlen(L, -1);
        const char **only = lua_newuserdatauv(L, (n + 1) * sizeof *only, 0);
        for (size_t i = 0; i < n; i++) {
            lua_rawgeti(L, -2, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_error(L, "fo.sigv4.sign: signed_headers must be a list of names");
            only[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
        p.only_headers = only;
        p.nonly = n;
    } else if (!lua_isnil(L, -1)) {
        return luaL_error(L, "fo.sigv4.sign: signed_headers must be a list of names");
    }

    fo_sigv4_result r;
    const char *why = NULL;
    if (fo_sigv4_sign(&p, &r, &why) != 0)
        return luaL_error(L, "fo.sigv4.sign: %s", why);
    lua_createtable(L, 0, 8);
    set_string(L, "canonical_request", r.canonical_request);
    set_string(L, "string_to_sign", r.string_to_sign);
    set_string(L, "signature", r.signature);
    set_string(L, "signed_headers", r.signed_headers);
    set_string(L, "credential_scope", r.scope);
    set_string(L, "query", r.query);
    set_string(L, "amz_date", date);
    /* Headers to add, as a map and in the order the SDKs (and the suite) send them. */
    lua_newtable(L);
    lua_newtable(L);
    int n = 0;
    const char *names[4], *values[4];
    if (!p.query_mode) {
        if (p.session_token && *p.session_token) {
            names[n] = "X-Amz-Security-Token";
            values[n++] = p.session_token;
        }
        names[n] = "X-Amz-Date";
        values[n++] = date;
        if (p.sign_body) {
            names[n] = "x-amz-content-sha256";
            values[n++] = p.payload_hash;
        }
        names[n] = "Authorization";
        values[n++] = r.authorization;
    }
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 2, 0);
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, 1);
        lua_pushstring(L, values[i]);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
        lua_pushstring(L, values[i]);
        lua_setfield(L, -3, names[i]);
    }
    lua_setfield(L, -3, "header_list");
    lua_setfield(L, -2, "headers");
    fo_sigv4_result_free(&r);
    return 1;
}

/* parse_authorization(value) → {access_key=, date=, region=, service=, signed_headers={},
 * signature=} or nil, message. */
static int sigv4_parse_authorization(lua_State *L)
{
    const char *s = luaL_checkstring(L, 1);
    static const char prefix[] = "AWS4-HMAC-SHA256 ";
    if (strncmp(s, prefix, sizeof prefix - 1) != 0) {
        luaL_pushfail(L);
        lua_pushliteral(L, "not an AWS4-HMAC-SHA256 authorization");
        return 2;
    }
    s += sizeof prefix - 1;
    const char *cred = strstr(s, "Credential=");
    const char *sh = strstr(s, "SignedHeaders=");
    const char *sig = strstr(s, "Signature=");
    if (!cred || !sh || !sig) {
        luaL_pushfail(L);
        lua_pushliteral(L, "authorization lacks Credential, SignedHeaders or Signature");
        return 2;
    }
    cred += 11;
    sh += 14;
    sig += 10;
    lua_createtable(L, 0, 6);
    static const char *const parts[] = {"access_key", "date", "region", "service", "terminator"};
    const char *c = cred;
    for (int i = 0; i < 5; i++) {
        const char *end = c;
        while (*end && *end != '/' && *end != ',')
            end++;
        lua_pushlstring(L, c, (size_t)(end - c));
        lua_setfield(L, -2, parts[i]);
        if (*end != '/' && i < 4) {
            luaL_pushfail(L);
            lua_pushliteral(L, "malformed Credential (want KEY/DATE/REGION/SERVICE/aws4_request)");
            return 2;
        }
        c = end + 1;
    }
    lua_newtable(L);
    int k = 0;
    const char *h = sh;
    while (*h && *h != ',' && *h != ' ') {
        const char *end = h;
        while (*end && *end != ';' && *end != ',' && *end != ' ')
            end++;
        lua_pushlstring(L, h, (size_t)(end - h));
        lua_rawseti(L, -2, ++k);
        h = *end == ';' ? end + 1 : end;
    }
    lua_setfield(L, -2, "signed_headers");
    const char *end = sig;
    while (*end && *end != ',' && *end != ' ')
        end++;
    lua_pushlstring(L, sig, (size_t)(end - sig));
    lua_setfield(L, -2, "signature");
    return 1;
}

/* signing_key(secret, date8, region, service) → 32 raw bytes. */
static int sigv4_signing_key(lua_State *L)
{
    unsigned char key[32];
    if (fo_sigv4_signing_key(luaL_checkstring(L, 1), luaL_checkstring(L, 2), luaL_checkstring(L, 3),
                             luaL_checkstring(L, 4), key) != 0)
        return luaL_error(L, "fo.sigv4.signing_key: OpenSSL failed");
    lua_pushlstring(L, (const char *)key, sizeof key);
    fo_libcrypto()->OPENSSL_cleanse(key, sizeof key);
    return 1;
}

static const luaL_Reg sigv4_funcs[] = {
    {"sign", sigv4_sign},
    {"parse_authorization", sigv4_parse_authorization},
    {"signing_key", sigv4_signing_key},
    {NULL, NULL},
};

int luaopen_fo_sigv4(lua_State *L)
{
    char err[256];
    if (!fo_libcrypto_load(err, sizeof err)) /* said here, as a Lua error, not at first use */
        return luaL_error(L, "fo.sigv4: %s", err);
    luaL_newlib(L, sigv4_funcs);
    return 1;
}
