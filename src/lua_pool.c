/* fo's Lua allocator. Nearly all that Lua allocates is small (strings, tables and their
 * small node and array parts, closures, upvalues) and dies young, and the collector frees
 * it in bursts. Through malloc, each such block carries a header, and the bursts of frees
 * fill malloc's fast bins (blocks up to 128 bytes), which it later merges with their
 * neighbours (malloc_consolidate) scattered through the whole heap: malloc and free were
 * a sixth of an apply's instructions and cache misses weighed, more so as the heap
 * outgrew the cache (docs/engine.md, "Scale"). Here a block of up to POOL_LIMIT bytes
 * comes from a free list per size class (8-byte steps), refilled from 64 KB slabs, with
 * no header: Lua tells a block's size when it frees or resizes it. A freed block goes back
 * to its list, never to malloc, so a list's memory serves only its class; larger blocks,
 * fewer and more varied in size, stay with malloc, whose free memory any size can reuse
 * (with a limit of 512 the classes held 0.8 KB more per resource at the peak of a 10k
 * stack; with 128, 0.2 KB). Under AddressSanitizer the free and not yet carved blocks are
 * poisoned, so a use after free is still caught, and each block is followed by a poisoned
 * redzone, as malloc's are, so that writing past a block (a C module's userdata, say) is
 * caught and not a silent write into its neighbour. */
#include "lua_pool.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define FO_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FO_POOL_ASAN 1
#endif
#endif
#ifdef FO_POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define POOL_REDZONE 16
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define POOL_REDZONE 0
#endif

enum {
    POOL_GRAIN = 8, /* Lua's alignment (LUAI_MAXALIGN: doubles, pointers, integers) */
    POOL_LIMIT = 128,
    POOL_CLASSES = (POOL_LIMIT + POOL_REDZONE) / POOL_GRAIN,
    POOL_SLAB = 64 * 1024,
};

/* A slab's header: the slabs are chained to be freed with the pool. */
typedef union slab {
    union slab *next;
    max_align_t align;
} slab;

struct fo_lua_pool {
    void *free[POOL_CLASSES]; /* each free block holds the address of the next */
    char *carve, *end;        /* the newest slab's bytes not handed out yet */
    slab *slabs;
};

/* The class of a block of `size` bytes (with its redzone under ASan). */
static size_t class_of(size_t size)
{
    return (size + POOL_REDZONE - 1) / POOL_GRAIN;
}

/* Under ASan: the block's first `size` bytes usable, the rest of its class poisoned. */
static void *shape(void *block, size_t size)
{
    size_t bytes = (class_of(size) + 1) * POOL_GRAIN;
    UNPOISON(block, size);
    POISON((char *)block + size, bytes - size);
    return block;
}

static int new_slab(fo_lua_pool *pool)
{
    slab *s = malloc(POOL_SLAB);
    if (!s)
        return 0;
    s->next = pool->slabs;
    pool->slabs = s;
    pool->carve = (char *)(s + 1);
    pool->end = (char *)s + POOL_SLAB;
    POISON(pool->carve, (size_t)(pool->end - pool->carve));
    return 1;
}

/* A block of `size` bytes (1..POOL_LIMIT), or NULL. */
static void *pool_get(fo_lua_pool *pool, size_t size)
{
    size_t c = class_of(size), bytes = (c + 1) * POOL_GRAIN;
    void *block = pool->free[c];
    if (block) {
        UNPOISON(block, sizeof(void *));
        pool->free[c] = *(void **)block;
        return shape(block, size);
    }
    if ((size_t)(pool->end - pool->carve) < bytes && !new_slab(pool))
        return NULL;
    block = pool->carve;
    pool->carve += bytes;
    return shape(block, size);
}

static void pool_put(fo_lua_pool *pool, void *block, size_t size)
{
    size_t c = class_of(size);
    UNPOISON(block, sizeof(void *)); /* (under ASan, a block of fewer bytes ends sooner) */
    *(void **)block = pool->free[c];
    pool->free[c] = block;
    POISON(block, (c + 1) * POOL_GRAIN);
}

static void *obtain(fo_lua_pool *pool, size_t size)
{
    return size <= POOL_LIMIT ? pool_get(pool, size) : malloc(size);
}

static void release(fo_lua_pool *pool, void *block, size_t size)
{
    if (!block)
        return;
    if (size <= POOL_LIMIT)
        pool_put(pool, block, size);
    else
        free(block);
}

/* lua_Alloc (the manual, lua_Alloc): osize is the block's size when ptr is not NULL. */
static void *pool_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fo_lua_pool *pool = ud;
    if (!ptr)
        osize = 0; /* it tells the kind of object being made, not a size */
    if (nsize == 0) {
        release(pool, ptr, osize);
        return NULL;
    }
    if (osize == 0)
        return obtain(pool, nsize);
    if (osize > POOL_LIMIT && nsize > POOL_LIMIT)
        return realloc(ptr, nsize);
    if (osize <= POOL_LIMIT && nsize <= POOL_LIMIT && class_of(osize) == class_of(nsize))
        return shape(ptr, nsize);
    void *block = obtain(pool, nsize);
    if (!block)
        return NULL; /* Lua keeps ptr */
    memcpy(block, ptr, osize < nsize ? osize : nsize);
    release(pool, ptr, osize);
    return block;
}

/* luaL_newstate's panic and warning functions (lauxlib.c, Lua 5.4), which it keeps
 * static: a panic prints the error; warnings are off until "@on" and go to stderr. */
static int panic(lua_State *L)
{
    const char *msg =
        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object is not a string";
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg);
    fflush(stderr);
    return 0; /* Lua aborts */
}

static void warn_off(void *ud, const char *message, int tocont);
static void warn_on(void *ud, const char *message, int tocont);

/* True when the message is a control message ("@on", "@off"), which it applies. */
static int warn_control(lua_State *L, const char *message, int tocont)
{
    if (tocont || *message != '@')
        return 0;
    if (strcmp(message + 1, "off") == 0)
        lua_setwarnf(L, warn_off, L);
    else if (strcmp(message + 1, "on") == 0)
        lua_setwarnf(L, warn_on, L);
    return 1;
}

static void warn_off(void *ud, const char *message, int tocont)
{
    warn_control(ud, message, tocont);
}

/* The rest of a warning: more pieces follow while tocont is set. */
static void warn_cont(void *ud, const char *message, int tocont)
{
    lua_State *L = ud;
    fprintf(stderr, "%s%s", message, tocont ? "" : "\n");
    fflush(stderr);
    lua_setwarnf(L, tocont ? warn_cont : warn_on, L);
}

static void warn_on(void *ud, const char *message, int tocont)
{
    if (warn_control(ud, message, tocont))
        return;
    fputs("Lua warning: ", stderr);
    warn_cont(ud, message, tocont);
}

lua_State *fo_lua_pool_newstate(fo_lua_pool **out)
{
    fo_lua_pool *pool = calloc(1, sizeof *pool);
    lua_State *L = pool ? lua_newstate(pool_alloc, pool) : NULL;
    if (!L) {
        fo_lua_pool_free(pool);
        return NULL;
    }
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_off, L);
    *out = pool;
    return L;
}

void fo_lua_pool_free(fo_lua_pool *pool)
{
    if (!pool)
        return;
    while (pool->slabs) {
        slab *s = pool->slabs;
        pool->slabs = s->next;
        UNPOISON(s, POOL_SLAB);
        free(s);
    }
    free(pool);
}
