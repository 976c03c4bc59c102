/* fo.fs.lock: an exclusive advisory lock on a file (flock, non-blocking) whose content names
 * the holder (pid, host, start time, command), so that a refused run can say who holds it.
 * The kernel releases the lock when its holder dies; the file itself is left in place. */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_MT "fo.fs.Lock"

typedef struct {
    int fd; /* -1 once released */
} fo_lock;

/* Releases the lock: the holder info is cleared first, while the lock is still held, so a
 * reader never sees a stale holder on a free lock. Idempotent. */
static int lock_unlock(lua_State *L)
{
    fo_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    if (lk->fd >= 0) {
        if (ftruncate(lk->fd, 0) != 0) { /* nothing to do: the lock goes anyway */
        }
        flock(lk->fd, LOCK_UN);
        close(lk->fd);
        lk->fd = -1;
    }
    return 0;
}

static int lock_held(lua_State *L)
{
    fo_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

static int lock_tostring(lua_State *L)
{
    fo_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    lua_pushstring(L, lk->fd >= 0 ? "fo.fs.Lock (held)" : "fo.fs.Lock (released)");
    return 1;
}

/* The holder's text: "pid=…\nhost=…\nstarted=…\ncommand=…\n"; newlines in `command` become
 * spaces so that every field stays on its line. */
static void holder_text(char *out, size_t size, const char *command)
{
    char host[256] = "?";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    char started[32] = "?";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(out, size, "pid=%ld\nhost=%s\nstarted=%s\ncommand=", (long)getpid(), host,
                     started);
    if (n < 0 || (size_t)n >= size)
        return;
    size_t at = (size_t)n;
    for (const char *c = command; *c && at + 2 < size; c++)
        out[at++] = (*c == '\n' || *c == '\r') ? ' ' : *c;
    out[at++] = '\n';
    out[at] = '\0';
}

/* Reads what the holder wrote (at most size-1 bytes) into out. */
static void read_holder(int fd, char *out, size_t size)
{
    ssize_t n = pread(fd, out, size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
}

/* fo.fs.lock(path [, command]) → lock, or nil and the holder's text when another process
 * holds it. The file is created with mode 0600. Raises on other failures (naming the path).
 * After locking, the path must still name the locked file: a lock broken meanwhile (the file
 * unlinked and made again by someone else) is retried on the new file. */
int fo_fs_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *command = luaL_optstring(L, 2, "");
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return luaL_error(L, "fo.fs.lock: cannot open '%s': %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int saved = errno;
            if (saved == EWOULDBLOCK) {
                char holder[4096];
                read_holder(fd, holder, sizeof holder);
                close(fd);
                lua_pushnil(L);
                lua_pushstring(L, holder);
                return 2;
            }
            close(fd);
            return luaL_error(L, "fo.fs.lock: cannot lock '%s': %s", path, strerror(saved));
        }
        struct stat mine, named;
        if (fstat(fd, &mine) != 0 || stat(path, &named) != 0 || mine.st_ino != named.st_ino ||
            mine.st_dev != named.st_dev) {
            close(fd);
            continue;
        }
        char text[4096];
        holder_text(text, sizeof text, command);
        size_t len = strlen(text);
        if (ftruncate(fd, 0) != 0 || pwrite(fd, text, len, 0) != (ssize_t)len || fsync(fd) != 0) {
            int saved = errno;
            close(fd);
            return luaL_error(L, "fo.fs.lock: cannot write the holder info to '%s': %s", path,
                              strerror(saved));
        }
        fo_lock *lk = lua_newuserdatauv(L, sizeof *lk, 0);
        lk->fd = fd;
        if (luaL_newmetatable(L, LOCK_MT)) {
            static const luaL_Reg methods[] = {
                {"unlock", lock_unlock},
                {"held", lock_held},
                {NULL, NULL},
            };
            luaL_newlib(L, methods);
            lua_setfield(L, -2, "__index");
            lua_pushcfunction(L, lock_unlock);
            lua_setfield(L, -2, "__gc");
            lua_pushcfunction(L, lock_unlock);
            lua_setfield(L, -2, "__close");
            lua_pushcfunction(L, lock_tostring);
            lua_setfield(L, -2, "__tostring");
        }
        lua_setmetatable(L, -2);
        return 1;
    }
    return luaL_error(L, "fo.fs.lock: '%s' keeps being replaced while locking it", path);
}
